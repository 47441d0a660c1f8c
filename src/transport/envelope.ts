/**
 * wire-v1: the versioned envelope of every frame between the coordinator and
 * a site (protocols/wire-v1/spec.md). One envelope per WebSocket binary
 * message: a protobuf `Envelope` (protocols/wire-v1/envelope.proto, parsed
 * here at module load, so the shipped file is the one schema) holding the
 * version and exactly one body.
 *
 * The decoder is strict and cheap, in the order of spec §5: the version and
 * the body's tag are read by hand, the kind's size bound is checked against
 * the whole frame before anything else is parsed, the body length must end
 * exactly at the frame end, and only then does protobufjs decode the body;
 * every field is range-checked and the body must be its own canonical
 * re-encoding. Every refusal is a `CodecError` with a `WIRE_ERR_*` code.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { concatFields, isBytes } from '../crypto/_validate.js';
import { CodecError, InternalError, ValidationError, type WireCode } from '../errors.js';
import { maxMessageBytes, TYPE } from '../secagg/codec.js';
import { packageRoot } from '../vectors/common.js';

export const ENVELOPE_VERSION = 1;

export type EnvelopeKind = 'hello' | 'challenge' | 'auth' | 'welcome' | 'session-start' | 'secagg' | 'result' | 'abort' | 'error';

/** Every kind, in the order of its body field number (2 … 10). */
export const ENVELOPE_KINDS: readonly EnvelopeKind[] = ['hello', 'challenge', 'auth', 'welcome', 'session-start', 'secagg', 'result', 'abort', 'error'];

/** A secagg-v1 session as the coordinator announces it (spec §3.2). */
export interface SessionStartBody {
  readonly session: Uint8Array;
  readonly clientIds: readonly number[];
  readonly threshold: number;
  readonly bits: number;
  readonly dim: number;
  readonly threat: 'semi-honest' | 'malicious';
  readonly graph: { readonly kind: 'complete' } | { readonly kind: 'harary'; readonly degree: number };
  readonly roundDeadlinesMs: readonly number[];
  /**
   * The application's task for this session (spec §3.2, §4.4): opaque bytes
   * that secagg-v1 never reads, e.g. the federated round's global adapter
   * and plan. Absent and empty are the same (nothing is written); decoding
   * always yields a Uint8Array, empty when the frame carries none, otherwise
   * a view into the frame.
   */
  readonly task?: Uint8Array;
}

export type Envelope =
  | { readonly kind: 'hello'; readonly siteId: string; readonly consortium: Uint8Array }
  | { readonly kind: 'challenge'; readonly challenge: Uint8Array }
  | { readonly kind: 'auth'; readonly signature: Uint8Array }
  | { readonly kind: 'welcome'; readonly siteId: string; readonly clientId: number }
  | ({ readonly kind: 'session-start' } & SessionStartBody)
  /** `checkpoint`: coordinator → site only, the coordinator's latest audit checkpoint for the site to witness. */
  | { readonly kind: 'secagg'; readonly session: Uint8Array; readonly payload: Uint8Array; readonly checkpoint?: WireCheckpoint }
  /** `sum` is empty when the consortium does not send the sum to the sites (`aggregation.sumToSites`). */
  /** `sealedSum`: a homomorphic consortium's sum, encrypted (he-sum-v1); `sum` is then empty. */
  | { readonly kind: 'result'; readonly session: Uint8Array; readonly sum: Uint32Array; readonly survivors: readonly number[]; readonly dropped: readonly number[]; readonly checkpoint?: WireCheckpoint; readonly sealedSum?: Uint8Array }
  | { readonly kind: 'abort'; readonly session: Uint8Array; readonly code: string; readonly message: string; readonly checkpoint?: WireCheckpoint }
  | { readonly kind: 'error'; readonly code: string; readonly message: string };

/** The coordinator's latest signed audit checkpoint (transcript-v1 §4), carried by result and abort for the sites to witness. */
export interface WireCheckpoint {
  readonly size: number;
  /** 32 bytes. */
  readonly root: Uint8Array;
  /** 64 bytes: Ed25519. */
  readonly signature: Uint8Array;
}

/** Largest accepted encoding (whole frame, bytes) of each kind. */
export interface EnvelopeLimits {
  readonly maxBytes: Readonly<Record<EnvelopeKind, number>>;
  /**
   * Longest session-start `task`, in bytes (spec §6: τ). When set, the
   * decoder refuses a longer task with `WIRE_ERR_BAD_FIELD` even inside the
   * frame bound; {@link envelopeLimits} always sets it.
   */
  readonly maxTaskBytes?: number;
}

/** Fixed field sizes and text bounds (spec §3.2). */
export const HASH_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const MAX_SITE_ID_BYTES = 64;
export const MAX_CODE_BYTES = 64;
export const MAX_MESSAGE_BYTES = 1024;
/** One deadline per secagg round, R0 … R4. */
export const ROUND_DEADLINES = 5;
/** The largest task bound `envelopeLimits` accepts (τ ≤ 2^28 bytes, spec §6). */
export const MAX_TASK_BYTES_LIMIT = 2 ** 28;
/** The label of the auth signed bytes (spec §4.3); prefix-free with every secagg-v1 label. */
export const AUTH_LABEL = new TextEncoder().encode('tally/wire-v1/auth');

// ---------------------------------------------------------------------------
// The schema: parsed once from the shipped .proto, and checked against the
// field numbers this module relies on.

const PROTO = protobuf.parse(readFileSync(join(packageRoot(), 'protocols', 'wire-v1', 'envelope.proto'), 'utf8'), { keepCase: true }).root;
const ENVELOPE = PROTO.lookupType('tally.wire.v1.Envelope');

/** A body as protobufjs hands it over (snake_case fields; proto3 defaults come from the prototype). */
type Body = Record<string, unknown>;

interface BodyType {
  readonly kind: EnvelopeKind;
  /** The one-byte tag of the body field: field number · 8 + 2 (wire type LEN). */
  readonly tag: number;
  readonly type: protobuf.Type;
}

const BODIES: readonly BodyType[] = ENVELOPE_KINDS.map((kind, i) => {
  const field = ENVELOPE.fields[kind.replace('-', '_')];
  const type = field?.resolve().resolvedType;
  if (field?.id !== i + 2 || field.partOf?.name !== 'body' || !(type instanceof protobuf.Type)) throw new InternalError(`envelope.proto: body '${kind}' is not field ${i + 2} of oneof body`);
  return { kind, tag: (field.id << 3) | 2, type };
});
if (ENVELOPE.fields.version?.id !== 1 || ENVELOPE.fields.version.type !== 'uint32') throw new InternalError('envelope.proto: version is not uint32 field 1');

const BODY_OF_KIND = new Map(BODIES.map((b) => [b.kind, b]));
const BODY_OF_TAG: readonly (BodyType | undefined)[] = Array.from({ length: 256 }, (_, t) => BODIES.find((b) => b.tag === t));

const THREAT = { 'semi-honest': 1, malicious: 2 } as const;
const GRAPH = { complete: 1, harary: 2 } as const;

// ---------------------------------------------------------------------------
// Sizes (spec §6).

/** Bytes of the minimal varint of `n` (0 ≤ n < 2^35). */
function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** A whole frame around a body of `body` bytes: 08 01 ‖ tag ‖ varint(body) ‖ body. */
function frameSize(body: number): number {
  return 3 + varintSize(body) + body;
}

/** A length-delimited field of `len` bytes (one-byte tag). */
const lenField = (len: number) => 1 + varintSize(len) + len;
/** A packed list of `count` uint32 of up to 5 bytes each. */
const packedField = (count: number) => lenField(5 * count);
/** A uint32 field (one-byte tag) holding a value below 2^32, or at most `max`. */
const u32Field = (max = 0xffffffff) => 1 + varintSize(max);

/**
 * Limits for a consortium: n roster sites, its graph, bits and dim, and the
 * longest session-start task τ (spec §6; default 0: no task). Every bound is
 * the largest frame an honest party sends, so the limits never refuse one:
 * session-start lists at most n ids and carries a task of at most τ bytes
 * (none when τ = 0, which leaves its bound as it was before tasks), a secagg
 * payload is at most the largest secagg-v1 message of the consortium
 * (secagg-v1 §6.4, with k = n − 1 for the complete graph), a result carries
 * 4·dim sum bytes and at most n ids; the control kinds have fixed bounds.
 * @throws ValidationError `SECAGG_ERR_BAD_CONFIG` when n ∉ [2, 2^24 − 1], b ∉ [1, 32],
 *   m ∉ [1, 2^28], a Harary degree ∉ [1, n − 1] or τ ∉ [0, 2^28]
 */
export function envelopeLimits(p: {
  readonly rosterSize: number; readonly dim: number; readonly bits: number; readonly graph: { kind: 'complete' } | { kind: 'harary'; degree: number };
  readonly maxTaskBytes?: number;
  /** A homomorphic consortium (he-sum-v1): the exact bytes of a masked input (a site's envelope) and of the sealed sum a result carries. */
  readonly maskedInputBytes?: number;
  readonly sealedSumBytes?: number;
}): EnvelopeLimits {
  const n = p.rosterSize;
  const bad = (what: string) => new ValidationError('SECAGG_ERR_BAD_CONFIG', `envelope limits: ${what}`);
  if (!Number.isInteger(n) || n < 2 || n > 0xffffff) throw bad(`rosterSize must be an integer in [2, 2^24 - 1], got ${n}`);
  if (!Number.isInteger(p.bits) || p.bits < 1 || p.bits > 32) throw bad(`bits must be an integer in [1, 32], got ${p.bits}`);
  if (!Number.isInteger(p.dim) || p.dim < 1 || p.dim > 2 ** 28) throw bad(`dim must be an integer in [1, 2^28], got ${p.dim}`);
  const graph = p.graph as { kind: unknown; degree?: unknown };
  if (graph?.kind === 'harary') {
    if (!Number.isInteger(graph.degree) || (graph.degree as number) < 1 || (graph.degree as number) > n - 1) throw bad(`Harary degree must be an integer in [1, ${n - 1}], got ${String(graph.degree)}`);
  } else if (graph?.kind !== 'complete') {
    throw bad(`graph must be complete or harary, got ${String(graph?.kind)}`);
  }
  const maxTask = p.maxTaskBytes === undefined ? 0 : p.maxTaskBytes;
  if (!Number.isInteger(maxTask) || maxTask < 0 || maxTask > MAX_TASK_BYTES_LIMIT) throw bad(`maxTaskBytes must be an integer in [0, 2^28], got ${String(p.maxTaskBytes)}`);
  // maxMessageBytes reads the roster size only (clientIds.length): a sparse array of n holes stands for it.
  const config = {
    clientIds: new Array<number>(n), graph: p.graph, bits: p.bits, dim: p.dim,
    ...(p.maskedInputBytes !== undefined ? { aggregator: { mode: 'he+masks' as const, params: new Uint8Array(16), keyId: new Uint8Array(16), inputBytes: p.maskedInputBytes } } : {}),
  };
  const payload = Math.max(...(Object.keys(TYPE) as (keyof typeof TYPE)[]).map((t) => maxMessageBytes(t, config)));
  const session = lenField(HASH_BYTES);
  const code = lenField(MAX_CODE_BYTES);
  const message = lenField(MAX_MESSAGE_BYTES);
  // An empty task is not written: τ = 0 adds nothing.
  const task = maxTask === 0 ? 0 : lenField(maxTask);
  const checkpoint = u32Field() + lenField(HASH_BYTES) + lenField(SIGNATURE_BYTES);
  return {
    maxBytes: {
      hello: frameSize(lenField(MAX_SITE_ID_BYTES) + lenField(HASH_BYTES)),
      challenge: frameSize(lenField(HASH_BYTES)),
      auth: frameSize(lenField(SIGNATURE_BYTES)),
      welcome: frameSize(lenField(MAX_SITE_ID_BYTES) + u32Field()),
      // session, ids, threshold ≤ n, bits ≤ 32, dim, threat, graph, degree ≤ n − 1, five deadlines, task ≤ τ
      'session-start': frameSize(session + packedField(n) + u32Field(n) + u32Field(32) + u32Field() + 2 + 2 + u32Field(n - 1) + packedField(ROUND_DEADLINES) + task),
      secagg: frameSize(session + lenField(payload) + checkpoint),
      // survivors and dropped are disjoint: n ids in all, two list headers
      result: frameSize(session + lenField(4 * p.dim) + 2 * (1 + varintSize(5 * n)) + 5 * n + checkpoint + (p.sealedSumBytes !== undefined ? lenField(p.sealedSumBytes) : 0)),
      abort: frameSize(session + code + message + checkpoint),
      error: frameSize(code + message),
    },
    maxTaskBytes: maxTask,
  };
}

/** The largest frame any kind may have under these limits (a WebSocket maxPayload). */
export function maxFrameBytes(l: EnvelopeLimits): number {
  return Math.max(...ENVELOPE_KINDS.map((k) => l.maxBytes[k]));
}

// ---------------------------------------------------------------------------
// Field rules (spec §3.2), shared by the encoder (ValidationError) and the
// decoder (CodecError): `fail` throws the right one.

type Fail = (what: string) => never;

const utf8 = new TextEncoder();
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const CODE = /^[A-Z0-9_]{1,64}$/;

const isU32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

function checkBytes(m: Body, field: string, fail: Fail, len?: number): void {
  const v = m[field];
  if (!(v instanceof Uint8Array)) fail(`${field} must be bytes`);
  if (len !== undefined ? v.length !== len : v.length === 0) fail(`${field} must be ${len ?? 'at least 1'} bytes, got ${v.length}`);
}

/** A string field of at most `max` UTF-8 bytes (and at least one when `min`); a well-formed string, so its UTF-8 is exact. */
function checkText(m: Body, field: string, fail: Fail, max: number, min = 0): string {
  const v = m[field];
  if (typeof v !== 'string' || LONE_SURROGATE.test(v)) fail(`${field} must be a well-formed string`);
  const n = Buffer.byteLength(v, 'utf8');
  if (n < min || n > max) fail(`${field} must be ${min}..${max} UTF-8 bytes, got ${n}`);
  return v;
}

function checkSiteId(m: Body, fail: Fail): void {
  const v = checkText(m, 'site_id', fail, MAX_SITE_ID_BYTES, 1);
  if (CONTROL.test(v)) fail('site_id must not hold a control character');
}

function checkCode(m: Body, fail: Fail): void {
  const v = m.code;
  if (typeof v !== 'string' || !CODE.test(v)) fail(`code must be 1..64 characters of [A-Z0-9_], got ${JSON.stringify(typeof v === 'string' ? v.slice(0, 80) : v)}`);
}

function checkU32(m: Body, field: string, fail: Fail, min: number, max = 0xffffffff): number {
  const v = m[field];
  if (!isU32(v) || v < min || v > max) fail(`${field} must be an integer in [${min}, ${max}], got ${String(v)}`);
  return v;
}

/** A list of ids ≥ 1, strictly increasing, of at least `min` entries. */
function checkIds(m: Body, field: string, fail: Fail, min: number): readonly number[] {
  const v = m[field];
  if (!Array.isArray(v) || v.length < min) fail(`${field} must list at least ${min} ids`);
  for (let i = 0; i < v.length; i++) {
    if (!isU32(v[i]) || v[i] < 1) fail(`${field}[${i}] must be an integer in [1, 2^32 - 1], got ${String(v[i])}`);
    if (i > 0 && v[i] <= v[i - 1]) fail(`${field} must be strictly increasing (${v[i - 1]} then ${v[i]})`);
  }
  return v as number[];
}

/** A result's or abort's checkpoint: absent (size 0, no root, no signature) or whole (size ≥ 1, 32-byte root, 64-byte signature). */
function checkCheckpoint(m: Body, fail: (why: string) => never): void {
  const size = m.checkpoint_size;
  if (!isU32(size)) fail(`checkpoint_size must be an integer in [0, 2^32 - 1], got ${String(size)}`);
  const root = optionalBytes(m.checkpoint_root);
  const sig = optionalBytes(m.checkpoint_signature);
  if (root === undefined || sig === undefined) fail('checkpoint_root and checkpoint_signature must be bytes');
  if (size === 0 && root.length === 0 && sig.length === 0) return;
  if (size === 0 || root.length !== HASH_BYTES || sig.length !== SIGNATURE_BYTES) {
    fail(`a checkpoint is absent or whole (size >= 1, a ${HASH_BYTES}-byte root, a ${SIGNATURE_BYTES}-byte signature), got size ${size}, ${root.length} and ${sig.length} bytes`);
  }
}

/** Every field rule of one body (spec §3.2); `m` uses the .proto's field names. */
function checkBody(kind: EnvelopeKind, m: Body, fail: Fail): void {
  switch (kind) {
    case 'hello': checkSiteId(m, fail); checkBytes(m, 'consortium', fail, HASH_BYTES); return;
    case 'challenge': checkBytes(m, 'challenge', fail, HASH_BYTES); return;
    case 'auth': checkBytes(m, 'signature', fail, SIGNATURE_BYTES); return;
    case 'welcome': checkSiteId(m, fail); checkU32(m, 'client_id', fail, 1); return;
    case 'session-start': {
      checkBytes(m, 'session', fail, HASH_BYTES);
      const n = checkIds(m, 'client_ids', fail, 2).length;
      checkU32(m, 'threshold', fail, 1, n);
      checkU32(m, 'bits', fail, 1, 32);
      checkU32(m, 'dim', fail, 1);
      if (m.threat !== THREAT['semi-honest'] && m.threat !== THREAT.malicious) fail(`threat must be THREAT_SEMI_HONEST (1) or THREAT_MALICIOUS (2), got ${String(m.threat)}`);
      if (m.graph === GRAPH.complete) checkU32(m, 'degree', fail, n - 1, n - 1);
      else if (m.graph === GRAPH.harary) checkU32(m, 'degree', fail, 1, n - 1);
      else fail(`graph must be GRAPH_COMPLETE (1) or GRAPH_HARARY (2), got ${String(m.graph)}`);
      const d = m.round_deadlines_ms;
      if (!Array.isArray(d) || d.length !== ROUND_DEADLINES) fail(`round_deadlines_ms must hold ${ROUND_DEADLINES} entries (R0..R4), got ${Array.isArray(d) ? d.length : typeof d}`);
      for (let i = 0; i < d.length; i++) if (!isU32(d[i]) || d[i] < 1) fail(`round_deadlines_ms[${i}] must be an integer in [1, 2^32 - 1], got ${String(d[i])}`);
      // Opaque; its bound τ is a consortium parameter, checked by the decoder against its limits.
      if (optionalBytes(m.task) === undefined) fail('task must be bytes');
      return;
    }
    case 'secagg': checkBytes(m, 'session', fail, HASH_BYTES); checkBytes(m, 'payload', fail); checkCheckpoint(m, fail); return;
    case 'result': {
      checkBytes(m, 'session', fail, HASH_BYTES);
      // Empty (absent) when the consortium keeps the sum from the sites (spec §3.2).
      const sum = optionalBytes(m.sum);
      if (sum === undefined) fail('sum must be bytes');
      if (sum.length % 4 !== 0) fail(`sum must be 4·dim bytes (or none), got ${sum.length}`);
      const survivors = checkIds(m, 'survivors', fail, 1);
      const dropped = checkIds(m, 'dropped', fail, 0);
      // Both lists are sorted: one merge finds a common id.
      for (let i = 0, j = 0; i < survivors.length && j < dropped.length;) {
        if (survivors[i] === dropped[j]) fail(`client ${survivors[i]} is both a survivor and dropped`);
        if (survivors[i]! < dropped[j]!) i++; else j++;
      }
      checkCheckpoint(m, fail);
      const sealed = optionalBytes(m.sealed_sum);
      if (sealed === undefined) fail('sealed_sum must be bytes');
      if (sealed.length > 0 && sum.length > 0) fail('a result carries the sum or the sealed sum, not both');
      return;
    }
    case 'abort': checkBytes(m, 'session', fail, HASH_BYTES); checkCode(m, fail); checkText(m, 'message', fail, MAX_MESSAGE_BYTES); checkCheckpoint(m, fail); return;
    case 'error': checkCode(m, fail); checkText(m, 'message', fail, MAX_MESSAGE_BYTES); return;
  }
}

// ---------------------------------------------------------------------------
// Encoding.

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/** The sum as little-endian bytes (a view on little-endian hosts). */
function sumBytes(sum: Uint32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(sum.buffer, sum.byteOffset, sum.byteLength);
  const out = new Uint8Array(sum.length * 4);
  const dv = new DataView(out.buffer);
  sum.forEach((v, i) => dv.setUint32(4 * i, v, true));
  return out;
}

/**
 * A bytes field that may be absent: protobufjs leaves an absent proto3
 * `bytes` field at its default, an empty array, rather than a Uint8Array.
 */
function optionalBytes(v: unknown): Uint8Array | undefined {
  if (v instanceof Uint8Array) return v;
  return Array.isArray(v) && v.length === 0 ? new Uint8Array(0) : undefined;
}

function sumOf(b: Uint8Array): Uint32Array {
  if (LITTLE_ENDIAN) return new Uint32Array(b.slice().buffer);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Uint32Array.from({ length: b.length / 4 }, (_, i) => dv.getUint32(4 * i, true));
}

const encodeFail: Fail = (what) => { throw new ValidationError('WIRE_ERR_BAD_FIELD', what); };

/** The body of `e` with the .proto's field names (values unchecked: checkBody does that). */
function bodyOf(e: Envelope): Body {
  switch (e.kind) {
    case 'hello': return { site_id: e.siteId, consortium: e.consortium };
    case 'challenge': return { challenge: e.challenge };
    case 'auth': return { signature: e.signature };
    case 'welcome': return { site_id: e.siteId, client_id: e.clientId };
    case 'session-start': {
      const g = e.graph as { kind: unknown; degree?: unknown } | undefined;
      const ids = Array.isArray(e.clientIds) ? [...e.clientIds] : e.clientIds;
      return {
        session: e.session, client_ids: ids, threshold: e.threshold, bits: e.bits, dim: e.dim,
        threat: THREAT[e.threat] ?? encodeFail(`threat must be 'semi-honest' or 'malicious', got ${String(e.threat)}`),
        graph: GRAPH[g?.kind as 'complete'] ?? encodeFail(`graph must be complete or harary, got ${String(g?.kind)}`),
        // The complete graph's degree is implied: n − 1.
        degree: g?.kind === 'harary' ? g.degree : Array.isArray(ids) ? ids.length - 1 : undefined,
        round_deadlines_ms: Array.isArray(e.roundDeadlinesMs) ? [...e.roundDeadlinesMs] : e.roundDeadlinesMs,
        // Absent and empty are the same: protobufjs writes no empty bytes field.
        task: e.task === undefined ? new Uint8Array(0) : isBytes(e.task) ? e.task : encodeFail('task must be a Uint8Array'),
      };
    }
    case 'secagg': return { session: e.session, payload: e.payload, ...checkpointBody(e.checkpoint) };
    case 'result': {
      if (!(e.sum instanceof Uint32Array)) encodeFail('sum must be a Uint32Array');
      if (e.sealedSum !== undefined && !isBytes(e.sealedSum)) encodeFail('sealedSum must be a Uint8Array');
      return { session: e.session, sum: sumBytes(e.sum), survivors: e.survivors, dropped: e.dropped, ...checkpointBody(e.checkpoint), sealed_sum: e.sealedSum ?? new Uint8Array(0) };
    }
    case 'abort': return { session: e.session, code: e.code, message: e.message, ...checkpointBody(e.checkpoint) };
    case 'error': return { code: e.code, message: e.message };
  }
}

/** A checkpoint's body fields (absent: the proto3 defaults, which protobufjs does not write). */
function checkpointBody(c: WireCheckpoint | undefined): Body {
  if (c === undefined) return { checkpoint_size: 0, checkpoint_root: new Uint8Array(0), checkpoint_signature: new Uint8Array(0) };
  return { checkpoint_size: c.size, checkpoint_root: c.root, checkpoint_signature: c.signature };
}

/** The checkpoint of a decoded body, when it carries one. */
function checkpointOf(m: Body): { checkpoint?: WireCheckpoint } {
  const size = m.checkpoint_size as number;
  return size === 0 ? {} : { checkpoint: { size, root: optionalBytes(m.checkpoint_root)!, signature: optionalBytes(m.checkpoint_signature)! } };
}

/**
 * Encodes one envelope into a fresh frame (canonical form, spec §5.2).
 * @throws ValidationError `WIRE_ERR_BAD_FIELD` when a field breaks its rule (spec §3.2),
 *   `WIRE_ERR_UNKNOWN_TYPE` for an unknown kind
 */
export function encodeEnvelope(e: Envelope): Uint8Array {
  const b = BODY_OF_KIND.get(e?.kind);
  if (b === undefined) throw new ValidationError('WIRE_ERR_UNKNOWN_TYPE', `unknown envelope kind ${String(e?.kind)}`);
  const m = bodyOf(e);
  checkBody(b.kind, m, encodeFail);
  const body = b.type.encode(m).finish();
  const out = new Uint8Array(frameSize(body.length));
  out[0] = 0x08;
  out[1] = ENVELOPE_VERSION;
  out[2] = b.tag;
  let off = 3;
  for (let n = body.length; ; n = Math.floor(n / 128)) {
    if (n < 0x80) { out[off++] = n; break; }
    out[off++] = (n & 0x7f) | 0x80;
  }
  out.set(body, off);
  return out;
}

// ---------------------------------------------------------------------------
// Decoding (spec §5).

const refuse = (code: WireCode, message: string, cause?: unknown): CodecError =>
  new CodecError(code, message, cause === undefined ? undefined : { cause });

/**
 * Reads the body length, a protobuf varint at `off`: its value and the offset
 * after it. A varint still unfinished after 10 bytes declares more than any
 * frame holds (Infinity).
 */
function readLength(frame: Uint8Array, off: number): { readonly len: number; readonly end: number } {
  let len = 0;
  for (let i = 0, scale = 1; i < 10; i++, scale *= 128) {
    if (off >= frame.length) throw refuse('WIRE_ERR_TRUNCATED', 'the frame ends inside the body length');
    const byte = frame[off++]!;
    len += (byte & 0x7f) * scale; // exact while it matters: any value past 2^53 is far beyond the frame
    if (byte < 0x80) return { len, end: off };
  }
  return { len: Infinity, end: off };
}

const same = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** A bytes field at least this long is checked where it lies instead of being copied by the re-encoding (§5.1 step 6). */
const IN_PLACE_BYTES = 64;

/**
 * Where the fields numbered above `id` begin in a canonical encoding (its
 * fields in increasing number): the walk skips each field by its wire type.
 */
function fieldsAbove(enc: Uint8Array, id: number): number {
  for (let at = 0; at < enc.length;) {
    const tag = readLength(enc, at); // a varint like the body length
    if (Math.floor(tag.len / 8) > id) return at;
    // wire-v1's fields are varints and length-delimited values only (envelope.proto).
    if (tag.len % 8 !== 0 && tag.len % 8 !== 2) throw new InternalError(`wire type ${tag.len % 8} in an encoding of wire-v1's own schema`);
    const value = readLength(enc, tag.end);
    at = tag.len % 8 === 0 ? value.end : value.end + value.len;
  }
  return enc.length;
}

/**
 * Whether `body` is the canonical encoding of `m`, which the decoder read
 * from it (§5.1 step 6): `encode(m)` equals `body`. Equivalent, without
 * copying a large bytes field (a masked input, a sum) into a re-encoding:
 * the decoder left that field, F, as a view into `body`, so `body` is
 * canonical exactly when F's tag and minimal length sit right before its
 * bytes and the rest of `body` on either side of them is the canonical
 * encoding of every other field, split where the fields numbered above F's
 * begin (protobufjs encodes fields in increasing number). A second copy of F
 * earlier in the body, or F out of its place, leaves bytes that the encoding
 * of the other fields does not have, and is refused like the full comparison
 * refuses it.
 */
function isCanonical(type: protobuf.Type, m: Body, body: Uint8Array): boolean {
  let big: { name: string; id: number; v: Uint8Array } | undefined;
  for (const f of type.fieldsArray) {
    const v = m[f.name];
    if (f.type !== 'bytes' || f.repeated || !(v instanceof Uint8Array) || v.length < IN_PLACE_BYTES || v.buffer !== body.buffer) continue;
    if (big === undefined || v.length > big.v.length) big = { name: f.name, id: f.id, v };
  }
  const at = big === undefined ? -1 : big.v.byteOffset - body.byteOffset;
  if (big === undefined || at < 0 || at + big.v.length > body.length) return same(type.encode(m).finish(), body);
  const head = protobuf.Writer.create().uint32(big.id * 8 + 2).uint32(big.v.length).finish(); // its tag and minimal length
  const start = at - head.length;
  if (start < 0 || !same(body.subarray(start, at), head)) return false;
  const { [big.name]: _omitted, ...others } = m;
  const rest = type.encode(others).finish();
  const split = fieldsAbove(rest, big.id);
  return start === split && body.length === rest.length + head.length + big.v.length &&
    same(body.subarray(0, start), rest.subarray(0, split)) && same(body.subarray(at + big.v.length), rest.subarray(split));
}

/** The decoded body as an Envelope (fields already checked). */
function envelopeOf(kind: EnvelopeKind, m: Body): Envelope {
  const bytes = (f: string) => m[f] as Uint8Array;
  const ids = (f: string) => [...(m[f] as number[])];
  switch (kind) {
    case 'hello': return { kind, siteId: m.site_id as string, consortium: bytes('consortium') };
    case 'challenge': return { kind, challenge: bytes('challenge') };
    case 'auth': return { kind, signature: bytes('signature') };
    case 'welcome': return { kind, siteId: m.site_id as string, clientId: m.client_id as number };
    case 'session-start': return {
      kind, session: bytes('session'), clientIds: ids('client_ids'), threshold: m.threshold as number, bits: m.bits as number, dim: m.dim as number,
      threat: m.threat === THREAT.malicious ? 'malicious' : 'semi-honest',
      graph: m.graph === GRAPH.harary ? { kind: 'harary', degree: m.degree as number } : { kind: 'complete' },
      roundDeadlinesMs: ids('round_deadlines_ms'),
      task: optionalBytes(m.task)!,
    };
    case 'secagg': return { kind, session: bytes('session'), payload: bytes('payload'), ...checkpointOf(m) };
    case 'result': {
      const sealed = optionalBytes(m.sealed_sum)!;
      return { kind, session: bytes('session'), sum: sumOf(optionalBytes(m.sum)!), survivors: ids('survivors'), dropped: ids('dropped'), ...checkpointOf(m), ...(sealed.length > 0 ? { sealedSum: sealed } : {}) };
    }
    case 'abort': return { kind, session: bytes('session'), code: m.code as string, message: m.message as string, ...checkpointOf(m) };
    case 'error': return { kind, code: m.code as string, message: m.message as string };
  }
}

/**
 * Decodes one frame, refusing anything but the canonical encoding of a valid
 * envelope, in the order of spec §5.1: (1) version, (2) body kind, (3) the
 * kind's size bound, before any parsing, (4) the body length, (5) the body's
 * fields, (6) canonical form. The `bytes` fields of the result (hashes,
 * challenge, signature, session, payload, a non-empty task) are views into
 * `frame`, not copies: `frame` must not change while they are in use. The
 * sum is a copy.
 * @param limits the consortium's bounds ({@link envelopeLimits})
 * @throws CodecError with a `WIRE_ERR_*` code on any bad frame (nothing else escapes);
 *   ValidationError `WIRE_ERR_BAD_FIELD` when `frame` is not a Uint8Array (a caller error)
 */
export function decodeEnvelope(frame: Uint8Array, limits: EnvelopeLimits): Envelope {
  if (!isBytes(frame)) throw new ValidationError('WIRE_ERR_BAD_FIELD', 'a frame must be a Uint8Array');
  // (1) The frame starts 08 01: field 1 (varint) holding version 1, minimally.
  if (frame.length < 2 || frame[0] !== 0x08 || frame[1] !== ENVELOPE_VERSION) {
    const what = frame.length === 0 ? 'an empty frame' : frame[0] !== 0x08 ? 'no version field first' : frame.length < 2 ? 'an unfinished version' : `version byte 0x${frame[1]!.toString(16).padStart(2, '0')}`;
    throw refuse('WIRE_ERR_UNKNOWN_VERSION', `expected wire-v1 (08 01), got ${what}`);
  }
  // (2) One body field: its one-byte tag names the kind.
  if (frame.length < 3) throw refuse('WIRE_ERR_TRUNCATED', 'the frame ends before its body');
  const b = BODY_OF_TAG[frame[2]!];
  if (b === undefined) throw refuse('WIRE_ERR_UNKNOWN_TYPE', `byte 2 (0x${frame[2]!.toString(16).padStart(2, '0')}) is not the tag of a wire-v1 body`);
  // (3) The kind's bound, on the whole frame, before anything else is read.
  const max = limits.maxBytes[b.kind];
  if (!(frame.length <= max)) throw refuse('WIRE_ERR_OVERSIZE', `a ${b.kind} frame of ${frame.length} bytes, more than the ${max} this consortium allows`);
  // (4) The body ends exactly at the frame end.
  const { len, end } = readLength(frame, 3);
  const left = frame.length - end;
  if (len > left) throw refuse('WIRE_ERR_TRUNCATED', `the body declares ${len} bytes, ${left} follow`);
  if (len < left) throw refuse('WIRE_ERR_TRAILING_BYTES', `${left - len} bytes after the ${len}-byte body`);
  // (5) protobufjs decodes the body (a plain Uint8Array view, so its bytes fields are views too); every field is checked.
  const body = new Uint8Array(frame.buffer, frame.byteOffset + end, len);
  let m: Body;
  try {
    const r = protobuf.Reader.create(body);
    r.discardUnknown = true; // unknown fields are dropped, so (6) refuses them
    m = b.type.decode(r) as unknown as Body;
  } catch (err) {
    throw refuse('WIRE_ERR_BAD_FIELD', `the ${b.kind} body is not a well-formed protobuf message: ${(err as Error).message}`, err);
  }
  checkBody(b.kind, m, (what) => { throw refuse('WIRE_ERR_BAD_FIELD', `${b.kind}: ${what}`); });
  if (b.kind === 'session-start' && limits.maxTaskBytes !== undefined) {
    const task = optionalBytes(m.task)!.length;
    if (task > limits.maxTaskBytes) throw refuse('WIRE_ERR_BAD_FIELD', `session-start: a task of ${task} bytes, more than the ${limits.maxTaskBytes} this consortium allows`);
  }
  // (6) Canonical form: minimal body length, and the body is its own re-encoding
  // (refuses unknown, repeated or out-of-order fields, non-minimal varints, unpacked lists, written defaults).
  if (end - 3 !== varintSize(len) || !isCanonical(b.type, m, body)) throw refuse('WIRE_ERR_NON_CANONICAL', `the ${b.kind} frame is not in canonical form`);
  return envelopeOf(b.kind, m);
}

// ---------------------------------------------------------------------------
// Authentication (spec §4.3).

/**
 * The bytes a site signs in Auth: 'tally/wire-v1/auth' ‖ consortium (32) ‖
 * challenge (32) ‖ u32be(byte length of the site id) ‖ site id (UTF-8).
 * @throws ValidationError `WIRE_ERR_BAD_FIELD` on a hash or challenge not 32
 *   bytes, or a site id that breaks its rule (spec §3.2)
 */
export function authSignedBytes(consortium: Uint8Array, challenge: Uint8Array, siteId: string): Uint8Array {
  checkBytes({ consortium }, 'consortium', encodeFail, HASH_BYTES);
  checkBytes({ challenge }, 'challenge', encodeFail, HASH_BYTES);
  checkSiteId({ site_id: siteId }, encodeFail);
  const id = utf8.encode(siteId);
  return concatFields([AUTH_LABEL, consortium, challenge, id.length, id]);
}

/**
 * `s` cut to at most `maxBytes` UTF-8 bytes, never inside a character, for
 * the free-text fields (`message` of abort and error) whose bound is in bytes.
 */
export function clipText(s: string, maxBytes = MAX_MESSAGE_BYTES): string {
  const bytes = new TextEncoder().encode(s);
  if (bytes.length <= maxBytes) return s;
  let end = maxBytes;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // back to the start of a character
  return new TextDecoder().decode(bytes.subarray(0, end));
}
