/**
 * The audit transcript of transcript-v1 (`protocols/transcript-v1/spec.md`):
 * an append-only list of JSON-lines records, each line the canonical JSON of
 * one record and each line's UTF-8 bytes one leaf of an RFC 6962 Merkle tree
 * (`merkle.ts`). A `checkpoint` record signs the tree of every record before
 * it with the coordinator's Ed25519 key. {@link auditListener} writes a
 * secagg-v1 session's records from the driver's listener events (the audit
 * feed): digests and lengths of messages, never their bytes.
 * {@link verifyTranscript} recomputes every checkpoint's root, checks its
 * signature, each record's format and the session invariants it can.
 */
import { createHash } from 'node:crypto';
import { InternalError, TallyError, ValidationError } from '../errors.js';
import { nativeProvider } from '../crypto/native.js';
import type { CryptoProvider } from '../crypto/types.js';
import { configHash, type SessionConfig } from '../secagg/config.js';
import type { ServerOutcome, SessionListener } from '../secagg/driver.js';
import { CompactRange, leafHash, rootOf, inclusionProof, consistencyProof } from './merkle.js';
import { canonicalJson } from '../canonical-json.js';
import { decodeClientMessage } from '../secagg/codec.js';

export { canonicalJson };

/** The record kinds of transcript-v1. */
export const RECORD_KINDS = [
  'run', 'config', 'session-start', 'round', 'message', 'rejected', 'reveal', 'outcome', 'site-result', 'fl-session', 'dp-event', 'witness', 'unwitnessed', 'checkpoint',
] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

/** One parsed record: `kind`, `seq` (its index in the transcript) and the kind's fields. */
export type TranscriptRecord = { readonly kind: RecordKind; readonly seq: number } & Readonly<Record<string, unknown>>;

const enc = new TextEncoder();
/** Domain-separation label of a checkpoint signature. */
export const CHECKPOINT_LABEL = 'tally/transcript-v1/checkpoint';

/** Domain-separation label of a site's countersignature of a coordinator checkpoint. */
export const WITNESS_LABEL = 'tally/transcript-v1/witness';

/** The bytes a checkpoint signs: label || 0x00 || size (8 bytes, big-endian) || root (32 bytes). */
export function checkpointSignedBytes(size: number, root: Uint8Array, label_: string = CHECKPOINT_LABEL): Uint8Array {
  const label = enc.encode(label_);
  const out = new Uint8Array(label.length + 1 + 8 + root.length);
  out.set(label, 0);
  new DataView(out.buffer).setBigUint64(label.length + 1, BigInt(size));
  out.set(root, label.length + 9);
  return out;
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Values a record may hold: plain JSON (finite numbers, strings, booleans, null, arrays, plain objects). */
function checkJson(v: unknown, where: string): void {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new ValidationError('AUDIT_ERR_BAD_RECORD', `${where} is not a finite number`);
    return;
  }
  if (Array.isArray(v)) { v.forEach((x, i) => checkJson(x, `${where}[${i}]`)); return; }
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    for (const [k, x] of Object.entries(v as object)) checkJson(x, `${where}.${k}`);
    return;
  }
  throw new ValidationError('AUDIT_ERR_BAD_RECORD', `${where} is not plain JSON (${typeof v})`);
}

export interface TranscriptOptions {
  /** The coordinator's Ed25519 seed (32 bytes): it signs every checkpoint. */
  readonly signingSeed: Uint8Array;
  /** Signs and hashes; default the native provider. */
  readonly provider?: CryptoProvider;
  /** Called with each record's line as it is appended (a bundle writes it to its file at once). */
  readonly sink?: (line: string) => void;
  /** Called once by {@link Transcript.close} (a bundle closes its file). */
  readonly close?: () => void;
  /**
   * Keep every record and leaf hash in memory (default true): for `lines`,
   * `text()`, the root at an earlier size and proofs. A log that streams to
   * a file (`sink`) passes false: it then holds O(log n) hashes, whatever
   * the number of records (a coordinator that serves for months).
   */
  readonly retain?: boolean;
}

/** The software that wrote a log (the `run` record). */
export interface SoftwareInfo { readonly name: string; readonly version: string; readonly node: string }

/** An append-only transcript held in memory: `lines` is what a JSON-lines file holds. */
export class Transcript {
  private readonly out: string[] = [];
  private readonly leaves: Uint8Array[] = [];
  private readonly seed: Uint8Array;
  private readonly provider: CryptoProvider;
  private readonly sink: ((line: string) => void) | undefined;
  private closeSink: (() => void) | undefined;
  private latest: CheckpointRef | undefined;
  private readonly retain: boolean;
  private readonly range = new CompactRange();
  /** The signer's Ed25519 public key (the coordinator's, or a site's for its own log), for {@link verifyTranscript}. */
  readonly publicKey: Uint8Array;

  constructor(o: TranscriptOptions) {
    if (!(o.signingSeed instanceof Uint8Array) || o.signingSeed.length !== 32) throw new ValidationError('AUDIT_ERR_BAD_RECORD', 'signingSeed must be 32 bytes');
    this.seed = Uint8Array.from(o.signingSeed);
    this.provider = o.provider ?? nativeProvider;
    this.sink = o.sink;
    this.closeSink = o.close;
    this.retain = o.retain ?? true;
    this.publicKey = this.provider.ed25519PublicKey(this.seed);
  }

  /** The records so far, one canonical JSON line each (no newline). @throws InternalError when the transcript retains none */
  get lines(): readonly string[] { this.retained('lines'); return this.out; }
  /** The number of records (the tree size). */
  get size(): number { return this.range.size; }
  /** The Merkle root of the first `size` records (an earlier size needs a retaining transcript). */
  root(size: number = this.range.size): Uint8Array {
    if (size === this.range.size) return this.range.root();
    this.retained('the root at an earlier size');
    return rootOf(this.leaves, size);
  }
  /** The RFC 6962 audit path of record `index` in the tree of the first `size` records. */
  inclusionProof(index: number, size: number = this.leaves.length): Uint8Array[] { this.retained('proofs'); return inclusionProof(this.leaves, index, size); }
  /** The RFC 6962 consistency proof from the tree of `m` records to that of `n`. */
  consistencyProof(m: number, n: number = this.leaves.length): Uint8Array[] { this.retained('proofs'); return consistencyProof(this.leaves, m, n); }
  /** The JSON-lines text (each line followed by a newline). */
  text(): string { this.retained('text()'); return this.out.map((l) => `${l}\n`).join(''); }

  private retained(what: string): void {
    if (!this.retain) throw new InternalError(`${what}: this transcript streams its records to its sink and keeps none in memory`);
  }

  /**
   * Releases the sink (a bundle's open file); idempotent. A record appended
   * afterwards fails with AUDIT_ERR_WRITE when the sink can no longer take it.
   */
  close(): void {
    const close = this.closeSink;
    this.closeSink = undefined;
    close?.();
  }

  /** Appends one record; returns its line. @throws ValidationError AUDIT_ERR_BAD_RECORD for a field that is not plain JSON. */
  append(kind: Exclude<RecordKind, 'checkpoint'>, fields: Readonly<Record<string, unknown>>): string {
    return this.push(kind, fields);
  }

  private push(kind: RecordKind, fields: Readonly<Record<string, unknown>>): string {
    if ('kind' in fields || 'seq' in fields) throw new ValidationError('AUDIT_ERR_BAD_RECORD', 'kind and seq are set by the transcript');
    checkJson(fields, kind);
    const line = canonicalJson({ ...fields, kind, seq: this.range.size });
    const leaf = leafHash(enc.encode(line));
    // The sink first: a record the file could not take is not in the tree either, so later checkpoints stay reproducible.
    if (this.sink !== undefined) {
      try {
        this.sink(line);
      } catch (err) {
        throw new TallyError('AUDIT_ERR_WRITE', `the audit record could not be written: ${(err as Error).message}`, { cause: err });
      }
    }
    if (this.retain) {
      this.out.push(line);
      this.leaves.push(leaf);
    }
    this.range.push(leaf);
    return line;
  }

  /**
   * The `run` record, a log's first: the run id (16 random bytes, hex), the
   * writer's role (and site id), the key that signs the log's checkpoints,
   * the software, and for the coordinator the policy a verifier holds the run
   * to (the fewest sites any sum may hold, the DP budget).
   */
  run(o: { run: string; role: 'coordinator' | 'site'; site?: string; software: SoftwareInfo; policy?: AuditPolicy }): string {
    return this.push('run', {
      run: o.run, role: o.role, signer: hex(this.publicKey), software: { ...o.software },
      ...(o.site !== undefined ? { site: o.site } : {}), ...(o.policy !== undefined ? { policy: { ...o.policy } } : {}),
    });
  }

  /** A `config` record: the run configuration (plain JSON) and the SHA-256 of its canonical JSON. */
  config(config: unknown): string {
    checkJson(config, 'config');
    return this.push('config', { config, hash: sha256Hex(enc.encode(canonicalJson(config))) });
  }

  /** A `session-start` record: the session id and its configuration's public shape and hash (no nonce, no keys). */
  sessionStart(session: string, c: SessionConfig): string {
    return this.push('session-start', {
      session, clientIds: [...c.clientIds], threshold: c.threshold, bits: c.bits, dim: c.dim, threat: c.threat, graph: { ...c.graph }, configHash: hex(configHash(this.provider, c)),
    });
  }

  /** A `dp-event` record: a DP event as its JSON (what `JSON.stringify` writes of it, as the ledger stores it) and ε after it. */
  dpEvent(event: unknown, epsilon: number, fields: Readonly<Record<string, unknown>> = {}): string {
    return this.push('dp-event', { ...fields, event: JSON.parse(JSON.stringify(event)) as unknown, epsilon });
  }

  /** A `checkpoint` record: size and root of the tree of every record before it, signed by the coordinator. */
  checkpoint(): string {
    const size = this.range.size;
    const root = this.root();
    const sig = this.provider.ed25519Sign(this.seed, checkpointSignedBytes(size, root));
    const line = this.push('checkpoint', { size, root: hex(root), signature: hex(sig) });
    this.latest = { size, root, signature: sig };
    return line;
  }

  /** The latest checkpoint (size, root, signature), or undefined before the first. */
  lastCheckpoint(): CheckpointRef | undefined {
    return this.latest;
  }

  /**
   * A `witness` record (a site's log): the coordinator's checkpoint as the
   * site received it, and the site's countersignature of the same size and
   * root under {@link WITNESS_LABEL}. The caller has checked the
   * coordinator's signature.
   */
  witness(c: CheckpointRef): string {
    const cosig = this.provider.ed25519Sign(this.seed, checkpointSignedBytes(c.size, c.root, WITNESS_LABEL));
    return this.push('witness', { size: c.size, root: hex(c.root), signature: hex(c.signature), cosignature: hex(cosig) });
  }
}

/** A signed checkpoint as it travels (wire-v1 result and abort carry the coordinator's latest). */
export interface CheckpointRef {
  readonly size: number;
  readonly root: Uint8Array;
  readonly signature: Uint8Array;
}

/** The policy of a run, in the coordinator's `run` record. */
export interface AuditPolicy {
  /** The fewest sites any released sum may hold (the threshold t). */
  readonly minSurvivors: number;
  /** The DP budget, or null without DP. */
  readonly budget: { readonly epsilon: number; readonly delta: number } | null;
  /** The accountant ε is computed with. */
  readonly accountant?: 'rdp' | 'pld';
}

/** Verifies a checkpoint's signature (coordinator: {@link CHECKPOINT_LABEL}; a site's countersignature: {@link WITNESS_LABEL}). */
export function verifyCheckpointSignature(publicKey: Uint8Array, c: CheckpointRef, label: string = CHECKPOINT_LABEL, provider: CryptoProvider = nativeProvider): boolean {
  try {
    return c.root.length === 32 && c.signature.length === 64 && provider.ed25519Verify(publicKey, checkpointSignedBytes(c.size, c.root, label), c.signature);
  } catch {
    return false;
  }
}


/**
 * A SessionListener that writes the session's records: `session-start` at
 * once when `config` is given, a `message` record (direction, round, peer,
 * length, SHA-256) for every message, `rejected`, a `round` record with the
 * round's participants and drops, then a checkpoint, as each round closes,
 * and the `outcome` followed by a checkpoint. Anything after the outcome is
 * followed by a checkpoint of its own. It returns a plain object (the
 * lockstep network spreads listeners).
 */
export function auditListener(t: Transcript, session: string, config?: SessionConfig): SessionListener {
  if (config !== undefined) t.sessionStart(session, config);
  const drops = new Map<number, { peer: number; code: string }[]>();
  let ended = false;
  const after = (): void => { if (ended) t.checkpoint(); };
  const takeDrops = (round: number): { peer: number; code: string }[] => {
    const d = drops.get(round) ?? [];
    drops.delete(round);
    return d.sort((a, b) => a.peer - b.peer);
  };
  return {
    message: (e) => {
      t.append('message', { session, direction: e.direction, round: e.round, peer: e.peer, length: e.bytes.length, sha256: sha256Hex(e.bytes) });
      if (e.direction === 'to-server' && e.round === 4) reveal(t, session, e.bytes, config);
      after();
    },
    rejected: (e) => {
      t.append('rejected', { session, round: e.round, peer: e.peer ?? null, code: e.code, message: e.message });
      after();
    },
    dropped: (e) => {
      if (ended) { t.append('round', { session, round: e.round, participants: null, dropped: [{ peer: e.peer, code: e.code }] }); after(); return; }
      const d = drops.get(e.round) ?? [];
      d.push({ peer: e.peer, code: e.code });
      drops.set(e.round, d);
    },
    roundClosed: (r) => {
      const dropped = [...drops.keys()].filter((k) => k <= r.round).sort((a, b) => a - b).flatMap((k) => takeDrops(k).map((d) => ({ ...d, round: k })));
      t.append('round', { session, round: r.round, participants: [...r.participants], dropped });
      t.checkpoint();
    },
    outcome: (o: ServerOutcome) => {
      const rest = [...drops.keys()].sort((a, b) => a - b).flatMap((k) => takeDrops(k).map((d) => ({ ...d, round: k })));
      if (o.kind === 'completed' && o.sealedSum !== undefined) {
        // A homomorphic session (he-sum-v1): the coordinator holds only the sealed sum; its envelope's digest is recorded.
        t.append('outcome', { session, result: 'completed', survivors: [...o.survivors], sumSha256: sha256Hex(o.sealedSum), sealed: true, dropped: rest });
      } else if (o.kind === 'completed') {
        const sum = new Uint8Array(o.sum.buffer, o.sum.byteOffset, o.sum.byteLength);
        t.append('outcome', { session, result: 'completed', survivors: [...o.survivors], sumSha256: sha256Hex(sum), dropped: rest });
      } else {
        t.append('outcome', { session, result: 'aborted', code: o.code, message: o.message, round: o.round, dropped: rest });
      }
      t.checkpoint();
      ended = true;
    },
  };
}

/** What a client's driver reports: the messages it sends (`to-server`) and receives (`to-client`). */
export interface ClientMessageListener {
  message?(e: { readonly direction: 'to-server' | 'to-client'; readonly round: number; readonly bytes: Uint8Array }): void;
}

/**
 * A site's log of one session from its client driver's listener
 * (transcript-v1 §6): `session-start` at once, then a `message` record for
 * every message it sends and receives, with `peer` its own client id, and
 * its `reveal`. The session's end is written by the caller (`site-result`).
 */
export function clientAuditListener(t: Transcript, session: string, config: SessionConfig, clientId: number): ClientMessageListener {
  const base = auditListener(t, session, config);
  return { message: (e) => base.message!({ ...e, peer: clientId }) };
}

/**
 * One listener that calls the audit listener first, then `other`: records
 * (and the checkpoint after an outcome) exist before the caller acts on an
 * event, so a result sent from `other.outcome` can carry that checkpoint.
 */
export function withAudit<L extends object>(audit: L | undefined, other: L): L {
  if (audit === undefined) return other;
  const out: Record<string, (e: never) => void> = {};
  const fns = (l: L): Record<string, ((e: never) => void) | undefined> => l as Record<string, ((e: never) => void) | undefined>;
  for (const k of new Set([...Object.keys(audit), ...Object.keys(other)])) {
    const a = fns(audit)[k];
    const b = fns(other)[k];
    out[k] = (e: never) => { a?.(e); b?.(e); };
  }
  return out as L;
}

/**
 * A `reveal` record from an unmasking message (R4): which peers' self-mask
 * shares and which peers' key shares its sender revealed, by id only (the
 * shares are not written). A message that does not decode is left to the
 * session's `rejected` record.
 */
function reveal(t: Transcript, session: string, bytes: Uint8Array, config?: SessionConfig): void {
  let m;
  try { m = decodeClientMessage(bytes, config); } catch { return; }
  if (m.type !== 'unmask') return;
  t.append('reveal', { session, peer: m.id, selfShares: m.selfShares.map((s) => s.of), keyShares: m.keyShares.map((s) => s.of) });
}

/** One check of {@link verifyTranscript}. */
export interface TranscriptCheck {
  readonly check: string;
  readonly ok: boolean;
  /** The record it is about, when there is one. */
  readonly seq?: number;
  readonly reason?: string;
}

export interface TranscriptVerdict {
  /** Every check passed. */
  readonly ok: boolean;
  readonly checks: readonly TranscriptCheck[];
}

const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const isHex = (x: unknown, bytes: number): x is string => typeof x === 'string' && x.length === bytes * 2 && /^[0-9a-f]*$/.test(x);
const isIds = (x: unknown): x is number[] => Array.isArray(x) && x.every(isInt) && x.every((v, i) => i === 0 || v > (x[i - 1] as number));
const isStr = (x: unknown): x is string => typeof x === 'string';

/** The fields each kind must have (beyond kind and seq), with their test. */
const isObj = (x: unknown): boolean => x !== null && typeof x === 'object' && !Array.isArray(x);
const isIdList = (x: unknown): x is number[] => Array.isArray(x) && x.every(isInt);
const FIELDS: Record<RecordKind, Record<string, (x: unknown) => boolean>> = {
  'run': { run: (x) => isHex(x, 16), role: (x) => x === 'coordinator' || x === 'site', signer: (x) => isHex(x, 32), software: (x) => isObj(x) && isStr((x as Record<string, unknown>)['version']) },
  'reveal': { session: isStr, peer: isInt, selfShares: isIdList, keyShares: isIdList },
  'site-result': { session: isStr, result: (x) => x === 'completed' || x === 'aborted' },
  'fl-session': { round: isInt, attempt: isInt, session: isStr, purpose: (x) => x === 'train' || x === 'eval', result: (x) => x === 'completed' || x === 'aborted', charged: (x) => typeof x === 'boolean' },
  'witness': { size: isInt, root: (x) => isHex(x, 32), signature: (x) => isHex(x, 64), cosignature: (x) => isHex(x, 64) },
  'unwitnessed': { session: (x) => x === null || isStr(x), reason: isStr },
  'config': { config: () => true, hash: (x) => isHex(x, 32) },
  'session-start': { session: isStr, clientIds: isIds, threshold: isInt, bits: isInt, dim: isInt, threat: (x) => x === 'semi-honest' || x === 'malicious', graph: (x) => x !== null && typeof x === 'object', configHash: (x) => isHex(x, 32) },
  'round': { session: isStr, round: isInt, participants: (x) => x === null || isIds(x), dropped: Array.isArray },
  'message': { session: isStr, direction: (x) => x === 'to-server' || x === 'to-client', round: isInt, peer: isInt, length: isInt, sha256: (x) => isHex(x, 32) },
  'rejected': { session: isStr, round: isInt, peer: (x) => x === null || isInt(x), code: isStr, message: isStr },
  'outcome': { session: isStr, result: (x) => x === 'completed' || x === 'aborted' },
  'dp-event': { event: () => true, epsilon: (x) => typeof x === 'number' && x >= 0 },
  'checkpoint': { size: isInt, root: (x) => isHex(x, 32), signature: (x) => isHex(x, 64) },
};

/** The optional fields of each kind with a closed field set (`config` and `dp-event` are open: the caller adds fields). */
const OPTIONAL: Partial<Record<RecordKind, readonly string[]>> = {
  'session-start': [], 'round': [], 'message': [], 'rejected': [], 'checkpoint': [], 'reveal': [], 'witness': [],
  'outcome': ['survivors', 'sumSha256', 'sealed', 'code', 'message', 'round', 'dropped'],
  'run': ['site', 'policy'],
  'site-result': ['survivors', 'dropped', 'sumSha256', 'code', 'message'],
  'fl-session': ['code', 'metrics', 'survivors'],
  'unwitnessed': ['size', 'root', 'signature'],
};

/**
 * Verifies a transcript: every line is a well-formed canonical record whose
 * `seq` is its index; every checkpoint's size is its own index, its root the
 * Merkle root of the records before it, and its signature the coordinator's;
 * the transcript ends with a checkpoint (nothing unsigned); and per session:
 * it started before its rounds, rounds increase, each round's participants
 * are in the roster and a subset of the previous round's, and a completed
 * session has at least `threshold` survivors, each a round-2 participant.
 * Never throws; each failure is a check with a reason.
 */
export function verifyTranscript(input: string | readonly string[], coordinatorPublicKey: Uint8Array, provider: CryptoProvider = nativeProvider): TranscriptVerdict {
  const lines = typeof input === 'string' ? input.split('\n').filter((l, i, a) => !(l === '' && i === a.length - 1)) : [...input];
  const checks: TranscriptCheck[] = [];
  const fail = (check: string, reason: string, seq?: number): void => { checks.push({ check, ok: false, reason, ...(seq !== undefined ? { seq } : {}) }); };
  const pass = (check: string, seq?: number): void => { checks.push({ check, ok: true, ...(seq !== undefined ? { seq } : {}) }); };
  const leaves = lines.map((l) => leafHash(enc.encode(l)));
  const records: (TranscriptRecord | undefined)[] = [];

  // Format.
  let formatOk = true;
  lines.forEach((line, i) => {
    let r: unknown;
    try { r = JSON.parse(line); } catch { formatOk = false; fail('format', 'not JSON', i); records.push(undefined); return; }
    const bad = (why: string): void => { formatOk = false; fail('format', why, i); records.push(undefined); };
    if (r === null || typeof r !== 'object' || Array.isArray(r)) return bad('not a JSON object');
    const o = r as Record<string, unknown>;
    if (canonicalJson(o) !== line) return bad('not canonical JSON');
    if (!RECORD_KINDS.includes(o['kind'] as RecordKind)) return bad(`unknown kind ${JSON.stringify(o['kind'])}`);
    if (o['seq'] !== i) return bad(`seq ${JSON.stringify(o['seq'])} at line ${i}`);
    const kind = o['kind'] as RecordKind;
    for (const [f, test] of Object.entries(FIELDS[kind])) if (!(f in o) || !test(o[f])) return bad(`${kind}: field ${f} missing or malformed`);
    const allowed = OPTIONAL[kind];
    if (allowed !== undefined) {
      const extra = Object.keys(o).filter((f) => f !== 'kind' && f !== 'seq' && !(f in FIELDS[kind]) && !allowed.includes(f));
      if (extra.length > 0) return bad(`${kind}: unknown fields ${extra.join(',')}`);
    }
    records.push(o as TranscriptRecord);
  });
  if (formatOk) pass('format');

  // Checkpoints.
  let last = -1;
  records.forEach((r, i) => {
    if (r?.kind !== 'checkpoint') return;
    last = i;
    if (r['size'] !== i) { fail('checkpoint-size', `checkpoint at ${i} claims size ${String(r['size'])}`, i); return; }
    const root = rootOf(leaves, i);
    if (hex(root) !== r['root']) fail('checkpoint-root', `root ${String(r['root'])} is not the root ${hex(root)} of records 0..${i - 1}`, i);
    else pass('checkpoint-root', i);
    const sig = Buffer.from(r['signature'] as string, 'hex');
    const claimed = Buffer.from(r['root'] as string, 'hex');
    let good = false;
    try { good = provider.ed25519Verify(coordinatorPublicKey, checkpointSignedBytes(i, claimed), sig); } catch { good = false; }
    if (good) pass('checkpoint-signature', i);
    else fail('checkpoint-signature', 'not signed by the coordinator key', i);
  });
  if (lines.length === 0) fail('signed', 'empty transcript');
  else if (last !== lines.length - 1) fail('signed', `records ${last + 1}..${lines.length - 1} follow the last checkpoint`);
  else pass('signed');

  // Config hashes.
  records.forEach((r, i) => {
    if (r?.kind !== 'config') return;
    const h = sha256Hex(enc.encode(canonicalJson(r['config'])));
    if (h !== r['hash']) fail('config-hash', `hash ${String(r['hash'])} is not ${h}`, i); else pass('config-hash', i);
  });

  // Sessions.
  interface S { start: TranscriptRecord; roster: Set<number>; lastRound: number; prev: number[] | undefined; ended: boolean; byRound: Map<number, number[]>; revealed: Map<number, { self: Set<number>; key: Set<number> }> }
  const sessions = new Map<string, S>();
  let invOk = true;
  const inv = (why: string, seq: number): void => { invOk = false; fail('session', why, seq); };
  records.forEach((r, i) => {
    if (r === undefined || r.kind === 'config' || r.kind === 'dp-event' || r.kind === 'checkpoint' || r.kind === 'run' || r.kind === 'witness' || r.kind === 'unwitnessed' || r.kind === 'fl-session') return;
    const sid = r['session'] as string;
    if (r.kind === 'session-start') {
      if (sessions.has(sid)) return inv(`session ${sid} starts twice`, i);
      sessions.set(sid, { start: r, roster: new Set(r['clientIds'] as number[]), lastRound: -1, prev: undefined, ended: false, byRound: new Map(), revealed: new Map() });
      return;
    }
    const s = sessions.get(sid);
    if (s === undefined) return inv(`${r.kind} of session ${sid} before its session-start`, i);
    if (r.kind === 'message' || r.kind === 'rejected') {
      const peer = r['peer'];
      if (peer !== null && !s.roster.has(peer as number)) inv(`${r.kind}: peer ${String(peer)} is not in the roster`, i);
      return;
    }
    if (r.kind === 'reveal') {
      // Bonawitz et al. 2017 §4: an honest client never reveals both the self-mask share and the key share of one peer.
      const peer = r['peer'] as number;
      if (!s.roster.has(peer)) return inv(`reveal: peer ${peer} is not in the roster`, i);
      const seen = s.revealed.get(peer) ?? { self: new Set<number>(), key: new Set<number>() };
      for (const v of r['selfShares'] as number[]) seen.self.add(v);
      for (const v of r['keyShares'] as number[]) seen.key.add(v);
      s.revealed.set(peer, seen);
      const both = [...seen.self].filter((v) => seen.key.has(v));
      if (both.length > 0) inv(`reveal: client ${peer} revealed both the self-mask and the key share of ${both.join(',')}`, i);
      return;
    }
    if (r.kind === 'site-result') { s.ended = true; return; }
    if (r.kind === 'round') {
      const p = r['participants'] as number[] | null;
      if (p === null) { if (!s.ended) inv('a round record without participants before the outcome', i); return; }
      if (s.ended) return inv(`round ${String(r['round'])} after the outcome`, i);
      const round = r['round'] as number;
      if (round <= s.lastRound) return inv(`round ${round} after round ${s.lastRound}`, i);
      // The semi-honest protocol has no consistency check: round 4 follows round 2.
      const skips3 = s.start['threat'] === 'semi-honest' && s.lastRound === 2 && round === 4;
      if (round !== s.lastRound + 1 && !skips3) inv(`round ${round} follows round ${s.lastRound}`, i);
      const out = p.filter((x) => !s.roster.has(x));
      if (out.length > 0) inv(`round ${round}: participants ${out.join(',')} not in the roster`, i);
      if (s.prev !== undefined) {
        const prev = new Set(s.prev);
        const extra = p.filter((x) => !prev.has(x));
        if (extra.length > 0) inv(`round ${round}: participants ${extra.join(',')} were not in round ${s.lastRound}`, i);
      }
      s.lastRound = round;
      s.prev = p;
      s.byRound.set(round, p);
      return;
    }
    // outcome
    if (s.ended) return inv(`session ${sid} has two outcomes`, i);
    s.ended = true;
    if (r['result'] === 'completed') {
      const surv = r['survivors'];
      if (!isIds(surv) || !isHex(r['sumSha256'], 32)) return inv('completed outcome: survivors or sumSha256 malformed', i);
      const t = s.start['threshold'] as number;
      if (surv.length < t) inv(`${surv.length} survivors, below the threshold ${t}`, i);
      // Survivors are the clients whose masked input (round 2) the sum holds.
      const masked = new Set(s.byRound.get(2) ?? []);
      const extra = surv.filter((x) => !masked.has(x));
      if (extra.length > 0) inv(`survivors ${extra.join(',')} sent no masked input in round 2`, i);
    } else if (!isStr(r['code']) || !/^[A-Z_]+$/.test(r['code'])) {
      inv('aborted outcome without an error code', i);
    }
  });
  for (const [sid, s] of sessions) if (!s.ended) inv(`session ${sid} has no outcome (truncated, or still running)`, s.start.seq);
  if (invOk) pass('session');
  return { ok: checks.every((c) => c.ok), checks };
}
