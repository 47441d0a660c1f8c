/**
 * `tally/audit`: the audit transcript (transcript-v1). A coordinator, and
 * each site, writes an append-only log of JSON-lines records fed by the
 * secure-aggregation driver's listener, hashed into an RFC 6962 Merkle tree
 * and signed at checkpoints; a run leaves a bundle that a privacy officer
 * verifies and reports on. The normative description is
 * protocols/transcript-v1/spec.md, the reader's guide
 * docs/privacy-officer-guide.md; every export is documented in docs/api.md.
 *
 * Importing this module loads neither Vega nor Vega-Lite: the report's
 * charts load them on first use.
 *
 * @example
 * import { openCoordinatorLog, auditListener, verifyBundle } from 'tally/audit';
 * const transcript = openCoordinatorLog(dir, { signingSeed, config, policy });
 * const server = new ServerDriver({ config, provider, channel, listener: auditListener(transcript, 'session-1', config) });
 * // … the session runs …
 * const verdict = verifyBundle(dir);
 */
export {
  Transcript, auditListener, clientAuditListener, withAudit, verifyTranscript, verifyCheckpointSignature, checkpointSignedBytes,
  CHECKPOINT_LABEL, WITNESS_LABEL, RECORD_KINDS,
  type RecordKind, type TranscriptRecord, type TranscriptOptions, type SoftwareInfo, type CheckpointRef, type AuditPolicy,
  type ClientMessageListener, type TranscriptCheck, type TranscriptVerdict,
} from './transcript.js';
export {
  leafHash, nodeHash, rootOf, merkleRoot, inclusionProof, consistencyProof, verifyInclusion, verifyConsistency, CompactRange,
} from './merkle.js';
export {
  openCoordinatorLog, openSiteLog, readBundle, readJsonLines, softwareInfo, newRunId, BUNDLE_FORMAT,
  type Bundle, type BundleManifest, type CoordinatorLogOptions,
} from './bundle.js';
export {
  verifyBundle, AUDIT_CHECKS,
  type VerifyOptions, type BundleVerdict, type AuditCheck, type AuditCheckId, type AuditFinding,
} from './verify.js';
export { writeReport, buildReport, ReportError } from './report.js';
