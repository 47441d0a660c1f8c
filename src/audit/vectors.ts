/**
 * transcript-v1 test vectors: generation and checking (`tally vectors
 * generate|check --suite transcript-v1`). The files live in
 * protocols/transcript-v1/vectors, their JSON Schemas in
 * protocols/transcript-v1/schemas; spec §9 says what each kind fixes. Every
 * case comes from code with fixed seeds (the sample run of `sample.ts`, a
 * small lockstep session, DeterministicRng keys), never typed by hand; the
 * layout is that of the other suites, so the output is reproducible byte
 * for byte.
 *
 * Kinds: `record` (canonical lines and leaf hashes; lines the format check
 * refuses), `merkle` (RFC 6962 roots, inclusion and consistency proofs, and
 * proofs that must not verify), `checkpoint` (signed bytes and Ed25519
 * signatures of checkpoints and witnesses; forged ones), `transcript` (a
 * whole signed transcript, and each kind of single modification with the
 * checks it fails), `bundle` (a whole audit bundle with site logs, and the
 * tampered bundles each of `tally audit verify`'s checks must refuse).
 * @module
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeProvider as provider } from '../crypto/native.js';
import { DeterministicRng } from '../crypto/rng.js';
import type { SessionConfig } from '../secagg/config.js';
import { LockstepNetwork } from '../secagg/lockstep.js';
import { checkSuite, failureOf, type CheckResult } from '../vectors/check.js';
import { bytes, expectEqual, expectThat, formatJson, GENERATOR, hex, protocolDir, type TestCase, type VectorFileOf } from '../vectors/common.js';
import { canonicalJson } from '../canonical-json.js';
import { consistencyProof, inclusionProof, leafHash, rootOf, verifyConsistency, verifyInclusion } from './merkle.js';
import {
  auditListener, CHECKPOINT_LABEL, checkpointSignedBytes, Transcript, verifyCheckpointSignature, verifyTranscript, WITNESS_LABEL,
} from './transcript.js';
import { sampleInMemory, sampleSetup, SAMPLE_RUN, SAMPLE_SOFTWARE } from './sample.js';
import { verifyBundle, type AuditCheckId } from './verify.js';

/** Protocol version written in every transcript-v1 vector file. */
export const VERSION = 'transcript-v1';
/** Prefix of every seed the generator uses. */
export const SEED_PREFIX = 'tally/vectors/transcript-v1';

/** One transcript-v1 vector kind: its cases, and a checker that throws on any difference. */
export interface TranscriptVectorKind {
  readonly kind: string;
  readonly description: string;
  generate(): TestCase[];
  check(tc: TestCase): void;
}

const enc = new TextEncoder();
type Rec = Record<string, unknown> & { kind: string; seq: number };
const parse = (l: string): Rec => JSON.parse(l) as Rec;
const lh = (line: string): Uint8Array => leafHash(enc.encode(line));
const strings = (v: unknown, field: string): string[] => {
  expectThat(Array.isArray(v) && v.every((x) => typeof x === 'string'), `"${field}" expected an array of strings`);
  return v as string[];
};
const num = (v: unknown, field: string): number => {
  expectThat(typeof v === 'number', `"${field}" expected a number`);
  return v as number;
};

/** Rewrites a log as its signer could: records edited, seq renumbered, every checkpoint recomputed and re-signed. */
function resign(lines: readonly string[], seed: Uint8Array, edit: (recs: Rec[]) => Rec[]): string[] {
  const t = new Transcript({ signingSeed: seed });
  for (const r of edit(lines.map(parse))) {
    if (r.kind === 'checkpoint') { t.checkpoint(); continue; }
    const { kind, seq: _seq, ...fields } = r;
    t.append(kind as never, fields);
  }
  return [...t.lines];
}

/** Failing check names of verifyTranscript, sorted, once each. */
function failedChecks(lines: readonly string[], key: Uint8Array): string[] {
  return [...new Set(verifyTranscript(lines, key).checks.filter((c) => !c.ok).map((c) => c.check))].sort();
}

// ---- a small session: 4 sites, threshold 2, site 4 silent from round 2 (semi-honest)

interface Small { lines: string[]; seed: Uint8Array; publicKey: Uint8Array }

function smallTranscript(): Small {
  const rng = new DeterministicRng(`${SEED_PREFIX}/transcript/small`);
  const seed = rng.bytes(32);
  const t = new Transcript({ signingSeed: seed });
  t.run({ run: SAMPLE_RUN, role: 'coordinator', software: SAMPLE_SOFTWARE, policy: { minSurvivors: 2, budget: null } });
  t.config({ note: 'transcript-v1 vectors: a small session' });
  t.checkpoint();
  const ids = [1, 2, 3, 4];
  const config: SessionConfig = { nonce: rng.bytes(32), clientIds: ids, threshold: 2, bits: 8, dim: 3, threat: 'semi-honest', graph: { kind: 'complete' } };
  const net = new LockstepNetwork({
    config, provider, silentFrom: new Map([[4, 2]]), listener: auditListener(t, 'small', config),
    clients: ids.map((id) => ({ id, rng: new DeterministicRng(`${SEED_PREFIX}/transcript/small/${id}`), input: Uint32Array.of(id, 2 * id, 3 * id) })),
  });
  const out = net.run();
  if (out.kind !== 'completed') throw new Error(`the small session did not complete: ${out.code}`);
  return { lines: [...t.lines], seed, publicKey: t.publicKey };
}

// ---- record

const recordKind: TranscriptVectorKind = {
  kind: 'record',
  description: 'Records as canonical JSON lines (spec §1, §2): each valid line is its own canonical encoding with its leaf hash SHA-256(0x00 || line) and passes the format check at index seq; each invalid line fails the format check at index seq.',
  generate() {
    const s = sampleInMemory();
    const lines = [...s.transcript.lines, ...s.sites.get('site-a')!.lines];
    const seen = new Set<string>();
    const tests: TestCase[] = [];
    let id = 1;
    for (const line of lines) {
      const r = parse(line);
      if (seen.has(r.kind)) continue;
      seen.add(r.kind);
      tests.push({ tcId: id++, comment: `the first ${r.kind} record of the sample run`, result: 'valid', seq: r.seq, line, leafHash: hex(lh(line)) });
    }
    const msg = parse(lines.find((l) => parse(l).kind === 'message')!);
    const cp = parse(lines.find((l) => parse(l).kind === 'checkpoint')!);
    const bad: [string, Rec | string][] = [
      ['whitespace after a colon', canonicalJson(msg).replace(':', ': ')],
      ['keys not in sorted order', JSON.stringify({ seq: msg.seq, kind: msg.kind, session: msg['session'], direction: msg['direction'], round: msg['round'], peer: msg['peer'], length: msg['length'], sha256: msg['sha256'] })],
      ['an unknown kind', canonicalJson({ ...msg, kind: 'note' })],
      ['a message with a field outside the spec (its bytes)', canonicalJson({ ...msg, bytes: '00ff' })],
      ['a message without its digest', canonicalJson(Object.fromEntries(Object.entries(msg).filter(([k]) => k !== 'sha256')))],
      ['a digest in uppercase hex', canonicalJson({ ...msg, sha256: String(msg['sha256']).toUpperCase() })],
      ['a length written as a string', canonicalJson({ ...msg, length: String(msg['length']) })],
      ['a checkpoint with a 31-byte root', canonicalJson({ ...cp, root: String(cp['root']).slice(2) })],
      ['not a JSON object', '[1,2,3]'],
      ['a line that is not JSON', '{"kind":"message",'],
    ];
    for (const [comment, line] of bad) tests.push({ tcId: id++, comment, result: 'invalid', seq: msg.seq, line: line as string });
    // A seq other than the line's index.
    tests.push({ tcId: id++, comment: 'seq is not the index of the line', result: 'invalid', seq: msg.seq + 1, line: canonicalJson(msg) });
    return tests;
  },
  check(tc) {
    const seq = num(tc['seq'], 'seq');
    const line = tc['line'];
    expectThat(typeof line === 'string', '"line" expected a string');
    const lines = [...Array.from({ length: seq }, () => '{}'), line as string];
    const formatAt = verifyTranscript(lines, new Uint8Array(32)).checks.filter((c) => c.check === 'format' && c.seq === seq && !c.ok);
    if (tc.result === 'valid') {
      expectEqual('canonical line', canonicalJson(JSON.parse(line as string)), line);
      expectEqual('leafHash', hex(lh(line as string)), tc['leafHash']);
      expectThat(formatAt.length === 0, `the format check refused it: ${formatAt[0]?.reason}`);
    } else {
      expectThat(formatAt.length > 0, 'the format check accepted it');
    }
  },
};

// ---- merkle

const INCLUSION: readonly [number, number][] = [[0, 1], [0, 2], [1, 2], [2, 3], [0, 7], [5, 7], [6, 7], [0, 8], [7, 8], [3, 13], [8, 13], [12, 13]];
const CONSISTENCY: readonly [number, number][] = [[1, 1], [1, 2], [2, 3], [1, 8], [3, 7], [4, 8], [6, 8], [7, 13], [8, 13], [5, 13], [12, 13]];

const merkleKind: TranscriptVectorKind = {
  kind: 'merkle',
  description: 'The RFC 6962 tree of transcript lines (spec §3): leaf hashes, the root of every prefix (0..n records), inclusion proofs PATH(m, D[n]) and consistency proofs PROOF(m, D[n]); proofs that must not verify by RFC 9162 §2.1.3.2 and §2.1.4.2.',
  generate() {
    const entries = smallTranscript().lines.slice(0, 13);
    const leaves = entries.map(lh);
    const tests: TestCase[] = [{
      tcId: 1, comment: 'the first 13 lines of a small transcript', result: 'valid', op: 'tree', entries,
      leafHashes: leaves.map(hex),
      roots: Array.from({ length: entries.length + 1 }, (_, n) => hex(rootOf(leaves, n))),
      inclusion: INCLUSION.map(([index, size]) => ({ index, size, path: inclusionProof(leaves, index, size).map(hex) })),
      consistency: CONSISTENCY.map(([m, n]) => ({ m, n, proof: consistencyProof(leaves, m, n).map(hex) })),
    }];
    let id = 2;
    const inc = (comment: string, result: 'valid' | 'invalid', index: number, size: number, leaf: Uint8Array, path: Uint8Array[], root: Uint8Array): void => {
      tests.push({ tcId: id++, comment, result, op: 'inclusion', leafHash: hex(leaf), index, size, root: hex(root), path: path.map(hex) });
    };
    const con = (comment: string, result: 'valid' | 'invalid', m: number, n: number, oldRoot: Uint8Array, newRoot: Uint8Array, proof: Uint8Array[]): void => {
      tests.push({ tcId: id++, comment, result, op: 'consistency', m, n, oldRoot: hex(oldRoot), newRoot: hex(newRoot), proof: proof.map(hex) });
    };
    const path = inclusionProof(leaves, 5, 13);
    inc('record 5 in the tree of 13', 'valid', 5, 13, leaves[5]!, path, rootOf(leaves, 13));
    const flipped = path.map((p, i) => (i === 1 ? Uint8Array.from(p, (b, j) => (j === 0 ? b ^ 1 : b)) : p));
    inc('a path with one bit flipped', 'invalid', 5, 13, leaves[5]!, flipped, rootOf(leaves, 13));
    inc('the right path at another index', 'invalid', 4, 13, leaves[5]!, path, rootOf(leaves, 13));
    inc('another record\'s leaf hash', 'invalid', 5, 13, leaves[6]!, path, rootOf(leaves, 13));
    inc('a path one node short', 'invalid', 5, 13, leaves[5]!, path.slice(0, -1), rootOf(leaves, 13));
    inc('a path with an extra node', 'invalid', 5, 13, leaves[5]!, [...path, leaves[0]!], rootOf(leaves, 13));
    inc('the root of another size', 'invalid', 5, 13, leaves[5]!, path, rootOf(leaves, 12));
    inc('an index past the tree', 'invalid', 13, 13, leaves[5]!, path, rootOf(leaves, 13));
    const proof = consistencyProof(leaves, 5, 13);
    con('the tree of 5 records is a prefix of the tree of 13', 'valid', 5, 13, rootOf(leaves, 5), rootOf(leaves, 13), proof);
    con('a rewritten prefix: the root of another tree of 5', 'invalid', 5, 13, rootOf(leaves.map((l, i) => (i === 2 ? lh('{}') : l)), 5), rootOf(leaves, 13), proof);
    con('a proof with one bit flipped', 'invalid', 5, 13, rootOf(leaves, 5), rootOf(leaves, 13), proof.map((p, i) => (i === 0 ? Uint8Array.from(p, (b, j) => (j === 31 ? b ^ 0x80 : b)) : p)));
    con('the proof for another old size', 'invalid', 6, 13, rootOf(leaves, 6), rootOf(leaves, 13), proof);
    con('an old size beyond the new one', 'invalid', 13, 5, rootOf(leaves, 13), rootOf(leaves, 5), proof);
    return tests;
  },
  check(tc) {
    const op = tc['op'];
    if (op === 'tree') {
      const entries = strings(tc['entries'], 'entries');
      const leaves = entries.map(lh);
      expectEqual('leafHashes', leaves.map(hex), tc['leafHashes']);
      expectEqual('roots', Array.from({ length: entries.length + 1 }, (_, n) => hex(rootOf(leaves, n))), tc['roots']);
      const incl = tc['inclusion'] as { index: number; size: number; path: string[] }[];
      for (const p of incl) {
        expectEqual(`inclusion ${p.index} in ${p.size}`, inclusionProof(leaves, p.index, p.size).map(hex), p.path);
        expectThat(verifyInclusion(leaves[p.index]!, p.index, p.size, p.path.map((x) => bytes(x)), rootOf(leaves, p.size)), `inclusion ${p.index} in ${p.size} does not verify`);
      }
      const cons = tc['consistency'] as { m: number; n: number; proof: string[] }[];
      for (const p of cons) {
        expectEqual(`consistency ${p.m} to ${p.n}`, consistencyProof(leaves, p.m, p.n).map(hex), p.proof);
        expectThat(verifyConsistency(p.m, p.n, rootOf(leaves, p.m), rootOf(leaves, p.n), p.proof.map((x) => bytes(x))), `consistency ${p.m} to ${p.n} does not verify`);
      }
      return;
    }
    let ok: boolean;
    if (op === 'inclusion') {
      ok = verifyInclusion(bytes(tc['leafHash'], 'leafHash'), num(tc['index'], 'index'), num(tc['size'], 'size'), strings(tc['path'], 'path').map((x) => bytes(x)), bytes(tc['root'], 'root'));
    } else {
      expectThat(op === 'consistency', `unknown op ${String(op)}`);
      ok = verifyConsistency(num(tc['m'], 'm'), num(tc['n'], 'n'), bytes(tc['oldRoot'], 'oldRoot'), bytes(tc['newRoot'], 'newRoot'), strings(tc['proof'], 'proof').map((x) => bytes(x)));
    }
    expectEqual('verifies', ok, tc.result === 'valid');
  },
};

// ---- checkpoint

const checkpointKind: TranscriptVectorKind = {
  kind: 'checkpoint',
  description: 'Checkpoint signatures (spec §4) and site countersignatures (witnesses, spec §6): the signed bytes label || 0x00 || size (8 bytes, big-endian) || root, their Ed25519 signature by a seed; signatures that must not verify.',
  generate() {
    const rng = new DeterministicRng(`${SEED_PREFIX}/checkpoint`);
    const seed = rng.bytes(32), other = rng.bytes(32);
    const pk = provider.ed25519PublicKey(seed);
    const tests: TestCase[] = [];
    let id = 1;
    const sign = (comment: string, size: number, root: Uint8Array, label: string): void => {
      const signedBytes = checkpointSignedBytes(size, root, label);
      tests.push({ tcId: id++, comment, result: 'valid', op: 'sign', label, seed: hex(seed), publicKey: hex(pk), size, root: hex(root), signedBytes: hex(signedBytes), signature: hex(provider.ed25519Sign(seed, signedBytes)) });
    };
    const r0 = rootOf([], 0);
    sign('the checkpoint of the empty transcript', 0, r0, CHECKPOINT_LABEL);
    const root = rng.bytes(32);
    sign('a checkpoint of 2 records', 2, root, CHECKPOINT_LABEL);
    sign('a checkpoint of 2^32 + 5 records (all 8 size bytes)', 2 ** 32 + 5, rng.bytes(32), CHECKPOINT_LABEL);
    sign('a site\'s countersignature of the checkpoint of 2 records', 2, root, WITNESS_LABEL);
    const verify = (comment: string, publicKey: Uint8Array, size: number, r: Uint8Array, label: string, signature: Uint8Array): void => {
      tests.push({ tcId: id++, comment, result: 'invalid', op: 'verify', label, publicKey: hex(publicKey), size, root: hex(r), signature: hex(signature) });
    };
    const sig = provider.ed25519Sign(seed, checkpointSignedBytes(2, root));
    verify('a signature with one bit flipped', pk, 2, root, CHECKPOINT_LABEL, Uint8Array.from(sig, (b, j) => (j === 7 ? b ^ 4 : b)));
    verify('signed by another key', pk, 2, root, CHECKPOINT_LABEL, provider.ed25519Sign(other, checkpointSignedBytes(2, root)));
    verify('the signature of size 2 for size 3', pk, 3, root, CHECKPOINT_LABEL, sig);
    verify('the signature of another root', pk, 2, Uint8Array.from(root, (b, j) => (j === 0 ? b ^ 1 : b)), CHECKPOINT_LABEL, sig);
    verify('a checkpoint signature offered as a witness', pk, 2, root, WITNESS_LABEL, sig);
    verify('a witness offered as a checkpoint signature', pk, 2, root, CHECKPOINT_LABEL, provider.ed25519Sign(seed, checkpointSignedBytes(2, root, WITNESS_LABEL)));
    return tests;
  },
  check(tc) {
    const label = tc['label'];
    expectThat(label === CHECKPOINT_LABEL || label === WITNESS_LABEL, `unknown label ${String(label)}`);
    const size = num(tc['size'], 'size');
    const root = bytes(tc['root'], 'root');
    const pk = bytes(tc['publicKey'], 'publicKey');
    const signature = bytes(tc['signature'], 'signature');
    if (tc['op'] === 'sign') {
      const seed = bytes(tc['seed'], 'seed');
      expectEqual('publicKey', provider.ed25519PublicKey(seed), pk);
      const signed = checkpointSignedBytes(size, root, label as string);
      expectEqual('signedBytes', signed, tc['signedBytes']);
      expectEqual('signature', provider.ed25519Sign(seed, signed), signature);
    }
    expectEqual('verifies', verifyCheckpointSignature(pk, { size, root, signature }, label as string), tc.result === 'valid');
  },
};

// ---- transcript

const transcriptKind: TranscriptVectorKind = {
  kind: 'transcript',
  description: 'Whole transcripts verified with verifyTranscript (spec §5.1): a signed transcript of one secagg-v1 session with a dropout, and each single modification of it with the sorted names of the checks it fails.',
  generate() {
    const s = smallTranscript();
    const L = s.lines;
    const tests: TestCase[] = [];
    let id = 1;
    const add = (comment: string, lines: readonly string[], key: Uint8Array = s.publicKey): void => {
      const failed = failedChecks(lines, key);
      tests.push({ tcId: id++, comment, result: failed.length === 0 ? 'valid' : 'invalid', publicKey: hex(key), lines: [...lines], failed });
    };
    add('a session of 4 sites, threshold 2, site 4 silent from round 2 (semi-honest: no round 3)', L);
    const recs = L.map(parse);
    const mi = recs.findIndex((r) => r.kind === 'message');
    const set = (i: number, line: string): string[] => [...L.slice(0, i), line, ...L.slice(i + 1)];
    add('a changed record: a message\'s length', set(mi, canonicalJson({ ...recs[mi]!, length: (recs[mi]!['length'] as number) + 1 })));
    add('a changed record: whitespace only', set(mi, L[mi]!.replace(':', ': ')));
    const ri = recs.findIndex((r) => r.kind === 'round');
    add('a removed record (a round)', [...L.slice(0, ri), ...L.slice(ri + 1)]);
    add('two messages reordered', [...L.slice(0, mi), L[mi + 1]!, L[mi]!, ...L.slice(mi + 2)]);
    add('two messages reordered, seq renumbered', [...L.slice(0, mi), canonicalJson({ ...recs[mi + 1]!, seq: mi }), canonicalJson({ ...recs[mi]!, seq: mi + 1 }), ...L.slice(mi + 2)]);
    const extra = canonicalJson({ kind: 'message', seq: mi, session: 'small', direction: 'to-server', round: 1, peer: 2, length: 10, sha256: '00'.repeat(32) });
    add('an inserted record', [...L.slice(0, mi), extra, ...L.slice(mi)]);
    const ci = recs.findIndex((r, i) => i > 3 && r.kind === 'checkpoint');
    const cp = recs[ci]!;
    const rng = new DeterministicRng(`${SEED_PREFIX}/transcript/forger`);
    const forger = rng.bytes(32);
    add('a forged checkpoint signature (another key over the right bytes)', set(ci, canonicalJson({ ...cp, signature: hex(provider.ed25519Sign(forger, checkpointSignedBytes(ci, bytes(cp['root'])))) })));
    const root = Uint8Array.from(bytes(cp['root']), (b, j) => (j === 0 ? b ^ 0x80 : b));
    add('a changed root, signed by the coordinator', set(ci, canonicalJson({ ...cp, root: hex(root), signature: hex(provider.ed25519Sign(s.seed, checkpointSignedBytes(ci, root))) })));
    const oi = recs.findIndex((r) => r.kind === 'outcome');
    const cut = recs.findIndex((r, i) => i > mi && i < oi && r.kind === 'checkpoint');
    add('cut after a checkpoint inside the session (no outcome)', L.slice(0, cut + 1));
    add('an appended record after the last checkpoint', [...L, canonicalJson({ ...parse(extra), seq: L.length })]);
    add('a valid transcript checked under another key', L, provider.ed25519PublicKey(forger));
    return tests;
  },
  check(tc) {
    const lines = strings(tc['lines'], 'lines');
    const failed = failedChecks(lines, bytes(tc['publicKey'], 'publicKey'));
    expectEqual('failed', failed, tc['failed']);
    expectEqual('result', failed.length === 0 ? 'valid' : 'invalid', tc.result);
  },
};

// ---- bundle

interface BundleJson { manifest: Record<string, unknown>; transcript: string[]; sites: Record<string, string[]>; files?: Record<string, string>; approved?: unknown }

const CHECK_IDS: readonly AuditCheckId[] = ['integrity', 'config', 'protocol', 'privacy', 'secrets'];

/** Writes a bundle case to a fresh folder, verifies it, removes it; returns the failed check ids. */
function failedOfBundle(b: BundleJson): AuditCheckId[] {
  const dir = mkdtempSync(join(tmpdir(), 'tally-transcript-v1-'));
  try {
    const bundle = join(dir, 'bundle');
    mkdirSync(join(bundle, 'sites'), { recursive: true });
    const text = (lines: readonly string[]): string => lines.map((l) => `${l}\n`).join('');
    writeFileSync(join(bundle, 'bundle.json'), `${JSON.stringify(b.manifest, null, 2)}\n`);
    writeFileSync(join(bundle, 'transcript.jsonl'), text(b.transcript));
    for (const [id, lines] of Object.entries(b.sites)) writeFileSync(join(bundle, 'sites', `${id}.jsonl`), text(lines));
    for (const [name, t] of Object.entries(b.files ?? {})) writeFileSync(join(bundle, name), t);
    let config: string | undefined;
    if (b.approved !== undefined) { config = join(dir, 'approved.json'); writeFileSync(config, JSON.stringify(b.approved, null, 2)); }
    const v = verifyBundle(bundle, config !== undefined ? { config } : {});
    return v.checks.filter((c) => !c.ok).map((c) => c.id);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const bundleKind: TranscriptVectorKind = {
  kind: 'bundle',
  description: 'Whole audit bundles checked by tally audit verify (spec §5.2): the sample run (two sessions of five sites with dropouts, DP events, site logs with witnesses) passes all five checks; each tampered copy fails the checks listed in "failed" (in the order integrity, config, protocol, privacy, secrets). "approved" is the file given with --config; "files" are extra files in the bundle folder.',
  generate() {
    const setup = sampleSetup();
    const s = sampleInMemory(setup);
    const base: BundleJson = {
      manifest: s.manifest, transcript: [...s.transcript.lines],
      sites: Object.fromEntries([...s.sites].map(([id, t]) => [id, [...t.lines]])),
    };
    const tests: TestCase[] = [];
    let id = 1;
    const add = (comment: string, b: BundleJson, must: readonly AuditCheckId[]): void => {
      const failed = failedOfBundle(b);
      for (const m of must) if (!failed.includes(m)) throw new Error(`transcript-v1 bundle vector '${comment}': check ${m} did not fail (failed: ${failed.join(', ') || 'none'})`);
      if (must.length === 0 && failed.length > 0) throw new Error(`transcript-v1 bundle vector '${comment}' failed ${failed.join(', ')}`);
      tests.push({ tcId: id++, comment, result: failed.length === 0 ? 'valid' : 'invalid', ...b, failed });
    };
    const coord = (edit: (r: Rec[]) => Rec[]): BundleJson => ({ ...base, transcript: resign(base.transcript, setup.coordinatorSeed, edit) });
    add('the sample run, checked against its approved consortium', { ...base, approved: setup.config.consortium }, []);
    add('ε of round 2 changed, the transcript re-signed by the coordinator', coord((rs) => rs.map((r) => (r.kind === 'dp-event' && r['round'] === 2 ? { ...r, epsilon: (r['epsilon'] as number) * 0.9 } : r))), ['privacy']);
    add('a message of round 1 changed and the transcript re-signed after the sites witnessed it', coord((rs) => rs.map((r) => (r.kind === 'message' && r.seq === rs.find((x) => x.kind === 'message')!.seq ? { ...r, length: (r['length'] as number) + 1 } : r))), ['integrity']);
    const fl = base.transcript.findIndex((l) => parse(l).kind === 'fl-session');
    add('the transcript cut after round 1, before a checkpoint the sites witnessed', { ...base, transcript: base.transcript.slice(0, fl + 2) }, ['integrity']);
    const siteA = setup.sites[0]!;
    add('site-a revealed both shares of site 5 (its log re-signed)', {
      ...base, sites: { ...base.sites, [siteA.id]: resign(base.sites[siteA.id]!, siteA.seed, (rs) => rs.map((r) => (r.kind === 'reveal' && r['session'] === 'train-r1' ? { ...r, selfShares: [...(r['selfShares'] as number[]), 5] } : r))) },
    }, ['protocol']);
    add('the seed of site-c pasted into a DP event\'s label (re-signed)', coord((rs) => rs.map((r) => (r.kind === 'dp-event' && r['round'] === 2 ? { ...r, label: `debug ${hex(setup.sites[2]!.seed)}` } : r))), ['secrets']);
    add('the coordinator\'s seed in a file of the bundle', { ...base, files: { 'notes.txt': `${hex(setup.coordinatorSeed)}\n` } }, ['secrets']);
    const agg = setup.config.consortium['aggregation'] as Record<string, unknown>;
    add('an approved consortium with another threshold', { ...base, approved: { ...setup.config.consortium, aggregation: { ...agg, threshold: 2 } } }, ['config']);
    add('a training session released without its DP event (re-signed)', coord((rs) => rs.filter((r) => !(r.kind === 'dp-event' && r['round'] === 1))), ['privacy']);
    return tests;
  },
  check(tc) {
    const b: BundleJson = {
      manifest: tc['manifest'] as Record<string, unknown>, transcript: strings(tc['transcript'], 'transcript'),
      sites: tc['sites'] as Record<string, string[]>,
      ...(tc['files'] !== undefined ? { files: tc['files'] as Record<string, string> } : {}),
      ...(tc['approved'] !== undefined ? { approved: tc['approved'] } : {}),
    };
    const failed = failedOfBundle(b);
    expectEqual('failed', failed, tc['failed']);
    expectThat(failed.every((f) => CHECK_IDS.includes(f)), 'unknown check id');
    expectEqual('result', failed.length === 0 ? 'valid' : 'invalid', tc.result);
  },
};

/** Every transcript-v1 vector kind, in the order they are generated and checked. */
export const TRANSCRIPT_KINDS: readonly TranscriptVectorKind[] = [recordKind, merkleKind, checkpointKind, transcriptKind, bundleKind];

/** protocols/transcript-v1/vectors */
export function defaultTranscriptVectorDir(): string { return protocolDir(VERSION, 'vectors'); }
/** protocols/transcript-v1/schemas */
export function defaultTranscriptSchemaDir(): string { return protocolDir(VERSION, 'schemas'); }

/** The text of every transcript-v1 vector file, by file name (`<kind>.json`). */
export function generateTranscriptVectorFiles(): Map<string, string> {
  return new Map(TRANSCRIPT_KINDS.map((k) => {
    const file: VectorFileOf<typeof VERSION> = { kind: k.kind, version: VERSION, generator: GENERATOR, description: k.description, tests: k.generate() };
    // Arrays of lines stay one line per element.
    return [`${k.kind}.json`, formatJson(file, (a) => a.every((x) => typeof x === 'number')) + '\n'];
  }));
}

/** Generates every transcript-v1 vector file into `dir` (created if needed); returns the paths written. */
export function generateTranscriptVectors(dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  return [...generateTranscriptVectorFiles()].map(([name, text]) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  });
}

export interface TranscriptCheckOptions {
  /** Where `<kind>.schema.json` and `common.schema.json` live (default protocols/transcript-v1/schemas). */
  readonly schemaDir?: string;
  /** Check only these kinds (default: every kind; other files in `dir` are then ignored). */
  readonly kinds?: readonly string[];
}

/** Checks every transcript-v1 vector file in `dir` against its schema, recomputing each case with src/audit. */
export function checkTranscriptVectors(dir: string, options: TranscriptCheckOptions = {}): CheckResult[] {
  return checkSuite(dir, {
    version: VERSION, kinds: TRANSCRIPT_KINDS, schemaDir: options.schemaDir ?? defaultTranscriptSchemaDir(),
    ...(options.kinds === undefined ? {} : { only: options.kinds }),
    runCase: (k, tc) => {
      try { k.check(tc); return []; } catch (err) { return [failureOf(err)]; }
    },
  });
}
