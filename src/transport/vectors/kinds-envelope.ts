/**
 * The `envelope` vector kind of wire-v1: frames of every kind with their
 * decoded fields, frames the decoder must refuse with their code, the size
 * limits of several consortia and the auth signed bytes (spec §3–§6).
 * Random bytes come from DeterministicRngs seeded
 * `tally/vectors/wire-v1/envelope/<label>`; every invalid frame is written
 * by hand with the raw writer (raw.ts) or cut from a valid one.
 */
import { DeterministicRng } from '../../crypto/rng.js';
import { concatBytes } from '../../crypto/_validate.js';
import { nativeProvider } from '../../crypto/native.js';
import { encodeClientMessage, maxMessageBytes, TYPE } from '../../secagg/codec.js';
import { bytes, errorCodeOf, expectEqual, expectError, expectThat, hex, VectorMismatch, type TestCase } from '../../vectors/common.js';
import {
  authSignedBytes, decodeEnvelope, encodeEnvelope, envelopeLimits, maxFrameBytes, type Envelope, type EnvelopeKind, type WireCheckpoint,
} from '../envelope.js';
import { BODY_FIELD, bodyOf, frameOf, lenField, packed, u32Field, unpacked, varint } from './raw.js';

const KIND = 'envelope';
export const SEED_PREFIX = 'tally/vectors/wire-v1';

/** The consortium parameters a case's frame is decoded under (`envelopeLimits`' argument). */
type LimitsJson = Parameters<typeof envelopeLimits>[0];

const rngOf = (label: string) => new DeterministicRng(`${SEED_PREFIX}/${KIND}/${label}`);

// ---- envelopes as JSON: byte fields as lowercase hex, the sum as its little-endian bytes

const BYTE_FIELDS = new Set(['consortium', 'challenge', 'signature', 'session', 'payload', 'task', 'sealedSum']);

/** The sum's little-endian bytes. */
function sumHex(sum: Uint32Array): string {
  const out = new Uint8Array(sum.length * 4);
  const dv = new DataView(out.buffer);
  sum.forEach((v, i) => dv.setUint32(4 * i, v, true));
  return hex(out);
}

/** A session-start's empty task is left out: empty and absent are the same (spec §3.2), and the decoder always gives one. */
function envelopeToJson(e: Envelope): Record<string, unknown> {
  return Object.fromEntries(Object.entries(e)
    .filter(([k, v]) => !(e.kind === 'session-start' && k === 'task' && (v as Uint8Array).length === 0))
    .map(([k, v]) => {
      if (k === 'checkpoint') { const c = v as WireCheckpoint; return [k, { size: c.size, root: hex(c.root), signature: hex(c.signature) }]; }
      return [k, v instanceof Uint32Array ? sumHex(v) : v instanceof Uint8Array ? hex(v) : v];
    }));
}

function envelopeFromJson(j: Record<string, unknown>): Envelope {
  return Object.fromEntries(Object.entries(j).map(([k, v]) => {
    if (k === 'sum') {
      const b = bytes(v, k);
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      return [k, Uint32Array.from({ length: b.length / 4 }, (_, i) => dv.getUint32(4 * i, true))];
    }
    if (k === 'checkpoint') {
      const c = v as Record<string, unknown>;
      return [k, { size: c['size'], root: bytes(c['root'], 'checkpoint.root'), signature: bytes(c['signature'], 'checkpoint.signature') }];
    }
    return [k, BYTE_FIELDS.has(k) ? bytes(v, k) : v];
  })) as unknown as Envelope;
}

// ---- the cases

/** The consortium most frames are decoded under: n = 5, Harary k = 2, b = 16, m = 8. */
const MAIN: LimitsJson = { rosterSize: 5, dim: 8, bits: 16, graph: { kind: 'harary', degree: 2 } };
const MAIN_LIMITS = envelopeLimits(MAIN);
/** The largest secagg-v1 message of MAIN (P in spec §6). */
const P_MAIN = Math.max(...(Object.keys(TYPE) as (keyof typeof TYPE)[]).map((t) => maxMessageBytes(t, { clientIds: [1, 2, 3, 4, 5], graph: MAIN.graph, bits: MAIN.bits, dim: MAIN.dim })));
/** Ids that take five varint bytes each. */
const BIG_IDS = (n: number) => Array.from({ length: n }, (_, i) => 0x10000000 + 0x1000 * i);

function validEnvelopes(): [string, Envelope][] {
  const r = rngOf('valid');
  const h32 = () => r.bytes(32);
  const deadlines = [30_000, 30_000, 60_000, 30_000, 60_000];
  return [
    ['hello', { kind: 'hello', siteId: 'hospital-a', consortium: h32() }],
    ['hello, the largest: a site id of 64 UTF-8 bytes (non-ASCII)', { kind: 'hello', siteId: 'Universitätsklinikum Süd — Zentrum für Datenanalyse (Köln)', consortium: h32() }],
    ['challenge', { kind: 'challenge', challenge: h32() }],
    ['auth', { kind: 'auth', signature: r.bytes(64) }],
    ['welcome', { kind: 'welcome', siteId: 'hospital-a', clientId: 1 }],
    ['welcome, the largest: a 64-byte site id and client id 2^32 - 1', { kind: 'welcome', siteId: 's'.repeat(64), clientId: 0xffffffff }],
    ['session-start, semi-honest, Harary k = 2', {
      kind: 'session-start', session: h32(), clientIds: [1, 2, 3, 4, 5], threshold: 2, bits: 16, dim: 8, threat: 'semi-honest', graph: { kind: 'harary', degree: 2 }, roundDeadlinesMs: deadlines,
    }],
    ['session-start, malicious, complete graph (degree n - 1 on the wire), a subset of the roster', {
      kind: 'session-start', session: h32(), clientIds: [1, 3, 4, 5], threshold: 3, bits: 16, dim: 8, threat: 'malicious', graph: { kind: 'complete' }, roundDeadlinesMs: deadlines,
    }],
    ['session-start, the largest for n = 5: five-byte ids, dim and deadlines, threshold n', {
      kind: 'session-start', session: h32(), clientIds: BIG_IDS(5), threshold: 5, bits: 32, dim: 0x10000000, threat: 'malicious', graph: { kind: 'complete' }, roundDeadlinesMs: BIG_IDS(5),
    }],
    ['secagg carrying a secagg-v1 client abort message', { kind: 'secagg', session: h32(), payload: encodeClientMessage({ type: 'abort', id: 3, code: 'SECAGG_ERR_SELF_DROPPED' }) }],
    [`secagg, the largest: a payload of P = ${P_MAIN} bytes`, { kind: 'secagg', session: h32(), payload: r.bytes(P_MAIN) }],
    ['result, no client dropped', { kind: 'result', session: h32(), sum: Uint32Array.from({ length: 8 }, (_, i) => i * 0x01010101), survivors: [1, 2, 3, 4, 5], dropped: [] }],
    ['result without the sum (the consortium keeps it from the sites)', { kind: 'result', session: h32(), sum: new Uint32Array(0), survivors: [1, 2, 4, 5], dropped: [3] }],
    ['result, the largest for n = 5: five-byte ids, one dropped', {
      kind: 'result', session: h32(), sum: new Uint32Array(r.bytes(32).buffer), survivors: BIG_IDS(5).slice(1), dropped: BIG_IDS(5).slice(0, 1),
    }],
    ['abort', { kind: 'abort', session: h32(), code: 'SECAGG_ERR_BELOW_THRESHOLD', message: 'round 2: 1 of 5 clients left, threshold 2' }],
    ['abort with an empty message (not written)', { kind: 'abort', session: h32(), code: 'NET_ERR_SHUTDOWN', message: '' }],
    ['secagg to a site, carrying the coordinator\'s audit checkpoint', { kind: 'secagg', session: h32(), payload: Uint8Array.of(1, 2, 3), checkpoint: { size: 7, root: new Uint8Array(32).fill(0xf6), signature: new Uint8Array(64).fill(0x17) } }],
    ['result carrying the coordinator\'s audit checkpoint', { kind: 'result', session: h32(), sum: new Uint32Array(0), survivors: [1, 2, 4], dropped: [3, 5], checkpoint: { size: 41, root: new Uint8Array(32).fill(0xa1), signature: new Uint8Array(64).fill(0xb2) } }],
    ['result of a homomorphic consortium: the sealed sum (he-sum-v1), no sum', { kind: 'result', session: h32(), sum: new Uint32Array(0), survivors: [1, 2, 3, 5], dropped: [4], sealedSum: new Uint8Array(40).fill(0xe5) }],
    ['abort carrying the coordinator\'s audit checkpoint', { kind: 'abort', session: h32(), code: 'SECAGG_ERR_BELOW_THRESHOLD', message: 'round 1', checkpoint: { size: 12, root: new Uint8Array(32).fill(0xc3), signature: new Uint8Array(64).fill(0xd4) } }],
    ['error', { kind: 'error', code: 'NET_ERR_AUTH_FAILED', message: "the signature does not verify under the roster key of 'hospital-a'" }],
    ['error, the largest: a 64-character code and a 1024-byte message', { kind: 'error', code: 'E'.repeat(64), message: `${'€'.repeat(300)}${'m'.repeat(124)}` }],
  ];
}

type Invalid = [comment: string, error: string, frame: Uint8Array];

/** A frame of the kind with field number `field`, padded with an unknown field 15 to exactly `total` bytes. */
function paddedTo(field: number, body: Uint8Array, total: number): Uint8Array {
  for (let p = 0; p < total; p++) {
    const f = frameOf(field, concatBytes(body, lenField(15, new Uint8Array(p))));
    if (f.length === total) return f;
    if (f.length > total) break;
  }
  throw new VectorMismatch(`cannot pad a field-${field} frame to ${total} bytes`);
}

function invalidFrames(valid: Map<string, Uint8Array>): Invalid[] {
  const of = (kind: string) => valid.get(kind)!;
  const hello = of('hello'), ss = of('session-start, semi-honest, Harary k = 2');
  const helloBody = bodyOf(hello), ssBody = bodyOf(ss);
  const secagg = valid.get(`secagg, the largest: a payload of P = ${P_MAIN} bytes`)!;
  const r = rngOf('invalid');
  const none = new Uint8Array(0);
  const z = (n: number) => new Uint8Array(n);
  const h32 = r.bytes(32);
  const id = lenField(1, 'hospital-a');
  const cons = lenField(2, h32);
  const helloOf = (...f: Uint8Array[]) => frameOf(2, concatBytes(...f));
  const ssFields = {
    session: lenField(1, h32), ids: packed(2, [1, 2, 3, 4, 5]), threshold: u32Field(3, 2), bits: u32Field(4, 16), dim: u32Field(5, 8),
    threat: u32Field(6, 1), graph: u32Field(7, 2), degree: u32Field(8, 2), deadlines: packed(9, [30_000, 30_000, 60_000, 30_000, 60_000]),
  };
  const ssOf = (o: Partial<Record<keyof typeof ssFields, Uint8Array>>) => frameOf(6, concatBytes(...Object.values({ ...ssFields, ...o })));
  const resultOf = (...f: Uint8Array[]) => frameOf(8, concatBytes(lenField(1, h32), ...f));
  const sum = lenField(2, z(32));
  const errorOf = (...f: Uint8Array[]) => frameOf(10, concatBytes(...f));
  // One byte over each bound. Challenge and auth have one size: one more byte in their field; the others: a valid body padded with an unknown field.
  const oversize = (Object.keys(BODY_FIELD) as EnvelopeKind[]).map((k): Invalid => {
    const max = MAIN_LIMITS.maxBytes[k];
    if (k === 'challenge') return [`challenge of 33 bytes: a frame of ${max + 1} bytes, one more than the bound (refused before the field is read)`, 'WIRE_ERR_OVERSIZE', frameOf(3, lenField(1, z(33)))];
    if (k === 'auth') return [`auth with a signature of 65 bytes: a frame of ${max + 1} bytes, one more than the bound`, 'WIRE_ERR_OVERSIZE', frameOf(4, lenField(1, z(65)))];
    const base = [...valid].find(([c]) => c.startsWith(k))![1];
    return [`${k}: a frame of ${max + 1} bytes, one more than the bound (a valid body padded with an unknown field)`, 'WIRE_ERR_OVERSIZE', paddedTo(BODY_FIELD[k], bodyOf(base), max + 1)];
  });
  return [
    ['an empty frame', 'WIRE_ERR_UNKNOWN_VERSION', none],
    ['08 alone', 'WIRE_ERR_UNKNOWN_VERSION', Uint8Array.of(0x08)],
    ['no version field: the body first', 'WIRE_ERR_UNKNOWN_VERSION', concatBytes(Uint8Array.of(0x12), varint(helloBody.length), helloBody)],
    ['version 0 written explicitly', 'WIRE_ERR_UNKNOWN_VERSION', concatBytes(Uint8Array.of(0x08, 0x00), hello.subarray(2))],
    ['version 2', 'WIRE_ERR_UNKNOWN_VERSION', concatBytes(Uint8Array.of(0x08, 0x02), hello.subarray(2))],
    ['version 1 as a non-minimal varint (81 00)', 'WIRE_ERR_UNKNOWN_VERSION', concatBytes(Uint8Array.of(0x08, 0x81, 0x00), hello.subarray(2))],
    ['version 300', 'WIRE_ERR_UNKNOWN_VERSION', concatBytes(Uint8Array.of(0x08), varint(300), hello.subarray(2))],
    ['field 1 with wire type LEN', 'WIRE_ERR_UNKNOWN_VERSION', concatBytes(Uint8Array.of(0x0a, 0x01, 0x01), hello.subarray(2))],
    ['body field 11', 'WIRE_ERR_UNKNOWN_TYPE', concatBytes(Uint8Array.of(0x08, 0x01, 0x5a), hello.subarray(3))],
    ['body field 15', 'WIRE_ERR_UNKNOWN_TYPE', concatBytes(Uint8Array.of(0x08, 0x01, 0x7a), hello.subarray(3))],
    ['a second version field', 'WIRE_ERR_UNKNOWN_TYPE', concatBytes(Uint8Array.of(0x08, 0x01, 0x08, 0x01), hello.subarray(2))],
    ['field 2 with wire type VARINT', 'WIRE_ERR_UNKNOWN_TYPE', concatBytes(Uint8Array.of(0x08, 0x01, 0x10), hello.subarray(3))],
    ['the hello tag as a non-minimal varint (92 00)', 'WIRE_ERR_UNKNOWN_TYPE', concatBytes(Uint8Array.of(0x08, 0x01, 0x92, 0x00), hello.subarray(3))],
    ['08 01 alone: no body', 'WIRE_ERR_TRUNCATED', Uint8Array.of(0x08, 0x01)],
    ['a body tag without its length', 'WIRE_ERR_TRUNCATED', hello.subarray(0, 3)],
    ['secagg cut inside its two-byte body length', 'WIRE_ERR_TRUNCATED', secagg.subarray(0, 4)],
    ['hello cut in the middle of its body', 'WIRE_ERR_TRUNCATED', hello.subarray(0, 20)],
    ['hello one byte short', 'WIRE_ERR_TRUNCATED', hello.subarray(0, -1)],
    ['session-start one byte short', 'WIRE_ERR_TRUNCATED', ss.subarray(0, -1)],
    ['secagg one byte short', 'WIRE_ERR_TRUNCATED', secagg.subarray(0, -1)],
    ['a declared body length one more than the bytes that follow', 'WIRE_ERR_TRUNCATED', frameOf(6, ssBody, { declared: ssBody.length + 1 })],
    ['a body length varint unfinished after 10 bytes', 'WIRE_ERR_TRUNCATED', concatBytes(hello.subarray(0, 3), new Uint8Array(10).fill(0x80), Uint8Array.of(0x00))],
    ['hello with one trailing byte', 'WIRE_ERR_TRAILING_BYTES', concatBytes(hello, Uint8Array.of(0))],
    ['result with three trailing bytes', 'WIRE_ERR_TRAILING_BYTES', concatBytes(of('result, no client dropped'), Uint8Array.of(1, 2, 3))],
    ['a declared body length one less than the bytes that follow', 'WIRE_ERR_TRAILING_BYTES', frameOf(6, ssBody, { declared: ssBody.length - 1 })],
    ['a declared body length of 0', 'WIRE_ERR_TRAILING_BYTES', frameOf(2, helloBody, { declared: 0 })],
    ...oversize,
    ['an oversize frame with a declared length of 2^32 - 1: the bound is checked first', 'WIRE_ERR_OVERSIZE', concatBytes(Uint8Array.of(0x08, 0x01, 0x22), varint(0xffffffff), z(80))],
    ['hello without site id', 'WIRE_ERR_BAD_FIELD', helloOf(cons)],
    ['hello with a site id of 65 bytes (and no hash, under the bound)', 'WIRE_ERR_BAD_FIELD', helloOf(lenField(1, 'a'.repeat(65)))],
    ['site id with a tab', 'WIRE_ERR_BAD_FIELD', helloOf(lenField(1, 'hospital\ta'), cons)],
    ['site id with U+0085 (a C1 control)', 'WIRE_ERR_BAD_FIELD', helloOf(lenField(1, 'hospital\u0085'), cons)],
    ['site id that is not UTF-8', 'WIRE_ERR_BAD_FIELD', helloOf(lenField(1, Uint8Array.of(0x68, 0xc3, 0x28)), cons)],
    ['site id with an overlong encoding (c0 80)', 'WIRE_ERR_BAD_FIELD', helloOf(lenField(1, Uint8Array.of(0x68, 0xc0, 0x80)), cons)],
    ['site id with an encoded surrogate (ed a0 80)', 'WIRE_ERR_BAD_FIELD', helloOf(lenField(1, Uint8Array.of(0xed, 0xa0, 0x80)), cons)],
    ['consortium hash of 31 bytes', 'WIRE_ERR_BAD_FIELD', helloOf(id, lenField(2, h32.subarray(1)))],
    ['consortium hash of 33 bytes', 'WIRE_ERR_BAD_FIELD', helloOf(id, lenField(2, concatBytes(h32, Uint8Array.of(0))))],
    ['hello without consortium hash', 'WIRE_ERR_BAD_FIELD', helloOf(id)],
    ['challenge of 31 bytes', 'WIRE_ERR_BAD_FIELD', frameOf(3, lenField(1, h32.subarray(1)))],
    ['challenge with an empty body', 'WIRE_ERR_BAD_FIELD', frameOf(3, none)],
    ['signature of 63 bytes', 'WIRE_ERR_BAD_FIELD', frameOf(4, lenField(1, z(63)))],
    ['welcome without client id (client id 0)', 'WIRE_ERR_BAD_FIELD', frameOf(5, id)],
    ['session-start: session nonce of 31 bytes', 'WIRE_ERR_BAD_FIELD', ssOf({ session: lenField(1, h32.subarray(1)) })],
    ['session-start: one client id', 'WIRE_ERR_BAD_FIELD', ssOf({ ids: packed(2, [1]), threshold: u32Field(3, 1), graph: u32Field(7, 1), degree: none })],
    ['session-start: ids not increasing', 'WIRE_ERR_BAD_FIELD', ssOf({ ids: packed(2, [1, 2, 4, 3, 5]) })],
    ['session-start: an id twice', 'WIRE_ERR_BAD_FIELD', ssOf({ ids: packed(2, [1, 2, 2, 4, 5]) })],
    ['session-start: id 0', 'WIRE_ERR_BAD_FIELD', ssOf({ ids: packed(2, [0, 2, 3, 4, 5]) })],
    ['session-start: no threshold', 'WIRE_ERR_BAD_FIELD', ssOf({ threshold: none })],
    ['session-start: threshold 6 with 5 ids', 'WIRE_ERR_BAD_FIELD', ssOf({ threshold: u32Field(3, 6) })],
    ['session-start: bits 0 (absent)', 'WIRE_ERR_BAD_FIELD', ssOf({ bits: none })],
    ['session-start: bits 33', 'WIRE_ERR_BAD_FIELD', ssOf({ bits: u32Field(4, 33) })],
    ['session-start: dim 0 (absent)', 'WIRE_ERR_BAD_FIELD', ssOf({ dim: none })],
    ['session-start: threat unspecified (absent)', 'WIRE_ERR_BAD_FIELD', ssOf({ threat: none })],
    ['session-start: unknown threat value 3', 'WIRE_ERR_BAD_FIELD', ssOf({ threat: u32Field(6, 3) })],
    ['session-start: graph unspecified (absent)', 'WIRE_ERR_BAD_FIELD', ssOf({ graph: none })],
    ['session-start: unknown graph value 7', 'WIRE_ERR_BAD_FIELD', ssOf({ graph: u32Field(7, 7) })],
    ['session-start: complete graph with degree 2 for 5 ids (must be 4)', 'WIRE_ERR_BAD_FIELD', ssOf({ graph: u32Field(7, 1) })],
    ['session-start: Harary degree 5 for 5 ids', 'WIRE_ERR_BAD_FIELD', ssOf({ degree: u32Field(8, 5) })],
    ['session-start: Harary degree 0 (absent)', 'WIRE_ERR_BAD_FIELD', ssOf({ degree: none })],
    ['session-start: 4 round deadlines', 'WIRE_ERR_BAD_FIELD', ssOf({ deadlines: packed(9, [30_000, 30_000, 60_000, 30_000]) })],
    ['session-start: 6 round deadlines', 'WIRE_ERR_BAD_FIELD', ssOf({ deadlines: packed(9, [1, 2, 3, 4, 5, 6]) })],
    ['session-start: a deadline of 0', 'WIRE_ERR_BAD_FIELD', ssOf({ deadlines: packed(9, [30_000, 0, 60_000, 30_000, 60_000]) })],
    ['secagg with an empty payload (absent)', 'WIRE_ERR_BAD_FIELD', frameOf(7, lenField(1, h32))],
    ['secagg without session', 'WIRE_ERR_BAD_FIELD', frameOf(7, lenField(2, Uint8Array.of(1, 0x0f)))],
    ['result: sum of 6 bytes', 'WIRE_ERR_BAD_FIELD', resultOf(lenField(2, z(6)), packed(3, [1]))],
    ['result: no survivor', 'WIRE_ERR_BAD_FIELD', resultOf(sum, packed(4, [1, 2]))],
    ['result: survivors not increasing', 'WIRE_ERR_BAD_FIELD', resultOf(sum, packed(3, [2, 1]))],
    ['result: a survivor also dropped', 'WIRE_ERR_BAD_FIELD', resultOf(sum, packed(3, [1, 3, 5]), packed(4, [2, 3]))],
    ['abort without session', 'WIRE_ERR_BAD_FIELD', frameOf(9, lenField(2, 'NET_ERR_SHUTDOWN'))],
    ['result: both the sum and a sealed sum', 'WIRE_ERR_BAD_FIELD', resultOf(sum, packed(3, [1]), lenField(8, z(8)))],
    ['result: a checkpoint with a root but no size or signature', 'WIRE_ERR_BAD_FIELD', resultOf(sum, packed(3, [1]), lenField(6, z(32)))],
    ['result: a checkpoint signature of 63 bytes', 'WIRE_ERR_BAD_FIELD', resultOf(sum, packed(3, [1]), u32Field(5, 4), lenField(6, z(32)), lenField(7, z(63)))],
    ['error: a lowercase code', 'WIRE_ERR_BAD_FIELD', errorOf(lenField(1, 'net_err_closed'))],
    ['error: a code with a space', 'WIRE_ERR_BAD_FIELD', errorOf(lenField(1, 'NET ERR'))],
    ['error: a code of 65 characters', 'WIRE_ERR_BAD_FIELD', errorOf(lenField(1, 'E'.repeat(65)))],
    ['error: no code', 'WIRE_ERR_BAD_FIELD', errorOf(lenField(2, 'no code'))],
    ['error: a message of 1025 bytes', 'WIRE_ERR_BAD_FIELD', errorOf(lenField(1, 'E'), lenField(2, 'm'.repeat(1025)))],
    ['a field running past the end of the body', 'WIRE_ERR_BAD_FIELD', errorOf(Uint8Array.of(0x0a, 0x05, 0x45))],
    ['wire type 7 in a body', 'WIRE_ERR_BAD_FIELD', errorOf(lenField(1, 'E'), Uint8Array.of(0x0f))],
    ['a varint of 11 bytes in a body', 'WIRE_ERR_BAD_FIELD', frameOf(5, concatBytes(id, Uint8Array.of(0x10), new Uint8Array(10).fill(0x81), Uint8Array.of(0x01)))],
    ['field number 0 in a body', 'WIRE_ERR_BAD_FIELD', errorOf(lenField(1, 'E'), Uint8Array.of(0x00, 0x00))],
    ['a packed list ending inside a varint', 'WIRE_ERR_BAD_FIELD', resultOf(sum, lenField(3, Uint8Array.of(0x01, 0x81)))],
    ['non-minimal body length (2 bytes for 44)', 'WIRE_ERR_NON_CANONICAL', frameOf(2, helloBody, { extraLen: 1 })],
    ['non-minimal length of a field in the body', 'WIRE_ERR_NON_CANONICAL', helloOf(lenField(1, 'hospital-a', 1), cons)],
    ['non-minimal varint (client id 7 as 87 00)', 'WIRE_ERR_NON_CANONICAL', frameOf(5, concatBytes(id, u32Field(2, 7, 1)))],
    ['a uint32 written as a 10-byte varint (2^64 - 1, read as 2^32 - 1)', 'WIRE_ERR_NON_CANONICAL', frameOf(5, concatBytes(id, Uint8Array.of(0x10), new Uint8Array(9).fill(0xff), Uint8Array.of(0x01)))],
    ['fields out of order', 'WIRE_ERR_NON_CANONICAL', helloOf(cons, id)],
    ['a field twice with the same value', 'WIRE_ERR_NON_CANONICAL', helloOf(id, id, cons)],
    ['a field twice, the first one invalid (the last one counts)', 'WIRE_ERR_NON_CANONICAL', helloOf(lenField(1, 'a\nb'), id, cons)],
    ['an unknown LEN field in a body', 'WIRE_ERR_NON_CANONICAL', helloOf(id, cons, lenField(15, 'x'))],
    ['an unknown VARINT field in a body', 'WIRE_ERR_NON_CANONICAL', helloOf(id, cons, u32Field(3, 0))],
    ['a known field with another wire type', 'WIRE_ERR_NON_CANONICAL', helloOf(id, cons, u32Field(1, 5))],
    ['an unknown empty group', 'WIRE_ERR_NON_CANONICAL', helloOf(id, cons, Uint8Array.of(0x7b, 0x7c))],
    ['client ids unpacked', 'WIRE_ERR_NON_CANONICAL', ssOf({ ids: unpacked(2, [1, 2, 3, 4, 5]) })],
    ['round deadlines unpacked', 'WIRE_ERR_NON_CANONICAL', ssOf({ deadlines: unpacked(9, [30_000, 30_000, 60_000, 30_000, 60_000]) })],
    ['a packed list split in two', 'WIRE_ERR_NON_CANONICAL', ssOf({ ids: concatBytes(packed(2, [1, 2]), packed(2, [3, 4, 5])) })],
    ['bits written as 0, then as 16', 'WIRE_ERR_NON_CANONICAL', ssOf({ bits: concatBytes(u32Field(4, 0), u32Field(4, 16)) })],
    ['an empty message written explicitly', 'WIRE_ERR_NON_CANONICAL', errorOf(lenField(1, 'E'), lenField(2, ''))],
    ['an empty dropped list written explicitly', 'WIRE_ERR_NON_CANONICAL', resultOf(sum, packed(3, [1]), lenField(4, none))],
  ];
}

/** Consortia whose limits are listed (spec §6). */
const LIMITS: [string, LimitsJson][] = [
  ['the smallest consortium: n = 2, m = 1, b = 1', { rosterSize: 2, dim: 1, bits: 1, graph: { kind: 'complete' } }],
  ['the consortium of the frames: n = 5, Harary k = 2, b = 16, m = 8', MAIN],
  ['n = 40, Harary k = 8, b = 32, m = 1000', { rosterSize: 40, dim: 1000, bits: 32, graph: { kind: 'harary', degree: 8 } }],
  ['n = 200, complete, b = 20, m = 100000', { rosterSize: 200, dim: 100_000, bits: 20, graph: { kind: 'complete' } }],
  ['n = 1000, Harary k = 30, b = 32, m = 2^20', { rosterSize: 1000, dim: 2 ** 20, bits: 32, graph: { kind: 'harary', degree: 30 } }],
  ['n = 100000, Harary k = 64, b = 32, m = 2^28 (the largest m)', { rosterSize: 100_000, dim: 2 ** 28, bits: 32, graph: { kind: 'harary', degree: 64 } }],
];

/** The consortium of the task cases: MAIN, with session-start tasks of up to τ = 200 bytes (spec §6). */
const WITH_TASK: LimitsJson = { ...MAIN, maxTaskBytes: 200 };

/** A decode case of a session-start task: the frame, its consortium, and the envelope it gives or the code that refuses it. */
type TaskCase = [comment: string, limits: LimitsJson, frame: Uint8Array, outcome: Envelope | string];

/**
 * Session-starts with and without a task (spec §3.2, §6), appended after the
 * other cases so that their tcIds stay as they were.
 */
function taskCases(): TaskCase[] {
  const r = rngOf('task');
  const tau = WITH_TASK.maxTaskBytes!;
  const session = r.bytes(32);
  const deadlines = [30_000, 30_000, 60_000, 30_000, 60_000];
  const plain = {
    kind: 'session-start', session, clientIds: [1, 2, 3, 4, 5], threshold: 2, bits: 16, dim: 8, threat: 'semi-honest', graph: { kind: 'harary', degree: 2 }, roundDeadlinesMs: deadlines,
  } as const satisfies Envelope;
  const small = { ...plain, task: r.bytes(48) };
  const largest = {
    kind: 'session-start', session: r.bytes(32), clientIds: BIG_IDS(5), threshold: 5, bits: 32, dim: 0x10000000, threat: 'malicious', graph: { kind: 'complete' }, roundDeadlinesMs: BIG_IDS(5), task: r.bytes(tau),
  } as const satisfies Envelope;
  const bound = envelopeLimits(WITH_TASK).maxBytes['session-start'];
  if (encodeEnvelope(largest).length !== bound) throw new VectorMismatch(`the largest task frame has ${encodeEnvelope(largest).length} bytes, not the bound ${bound}`);
  const overBound = encodeEnvelope({ ...largest, task: r.bytes(tau + 1) });
  if (overBound.length !== bound + 1) throw new VectorMismatch(`the over-bound task frame has ${overBound.length} bytes, not ${bound + 1}`);
  // The plain session-start's fields by hand, to place the task out of order or write it empty.
  const fields = [
    lenField(1, session), packed(2, plain.clientIds), u32Field(3, 2), u32Field(4, 16), u32Field(5, 8), u32Field(6, 1), u32Field(7, 2), u32Field(8, 2), packed(9, deadlines),
  ];
  const plainFrame = encodeEnvelope(plain);
  if (hex(frameOf(6, concatBytes(...fields))) !== hex(plainFrame)) throw new VectorMismatch('the hand-written session-start differs from the encoder\'s');
  return [
    ['session-start with a task of 48 bytes (field 10, after the deadlines), τ = 200', WITH_TASK, encodeEnvelope(small), small],
    [`session-start, the largest for n = 5 and τ = ${tau}: five-byte ids, dim and deadlines, threshold n, a task of τ bytes`, WITH_TASK, encodeEnvelope(largest), largest],
    ['session-start without a task (a plain secure sum) where tasks are allowed: the same frame as where they are not', WITH_TASK, plainFrame, plain],
    [`session-start with a task of τ + 1 = ${tau + 1} bytes making the frame one byte over the bound (${bound + 1} bytes)`, WITH_TASK, overBound, 'WIRE_ERR_OVERSIZE'],
    ['session-start with a task of 48 bytes where tasks are not allowed (τ = 0): the frame is over the bound', MAIN, encodeEnvelope(small), 'WIRE_ERR_OVERSIZE'],
    [`session-start with a task of τ + 1 = ${tau + 1} bytes in a frame under the bound (one-byte ids): the task's own bound`, WITH_TASK, encodeEnvelope({ ...plain, task: r.bytes(tau + 1) }), 'WIRE_ERR_BAD_FIELD'],
    ['session-start with a task of 1 byte where tasks are not allowed (τ = 0), under the frame bound', MAIN, encodeEnvelope({ ...plain, task: r.bytes(1) }), 'WIRE_ERR_BAD_FIELD'],
    ['session-start with an empty task written explicitly (52 00)', WITH_TASK, frameOf(6, concatBytes(...fields, lenField(10, new Uint8Array(0)))), 'WIRE_ERR_NON_CANONICAL'],
    ['session-start with the task before the deadlines (fields out of order)', WITH_TASK, frameOf(6, concatBytes(...fields.slice(0, 8), lenField(10, small.task), fields[8]!)), 'WIRE_ERR_NON_CANONICAL'],
  ];
}

/** Consortia with tasks whose limits are listed (spec §6): the session-start bound grows by 1 + V(τ) + τ. */
const TASK_LIMITS: [string, LimitsJson][] = [
  ['the consortium of the task frames: n = 5, Harary k = 2, b = 16, m = 8, τ = 200', WITH_TASK],
  ['n = 40, Harary k = 8, b = 32, m = 1000, τ = 1 (the smallest task bound)', { rosterSize: 40, dim: 1000, bits: 32, graph: { kind: 'harary', degree: 8 }, maxTaskBytes: 1 }],
  ['n = 40, Harary k = 8, b = 32, m = 1000, τ = 2^22 (a task of 4 MiB)', { rosterSize: 40, dim: 1000, bits: 32, graph: { kind: 'harary', degree: 8 }, maxTaskBytes: 2 ** 22 }],
  ['n = 100000, Harary k = 64, b = 32, m = 2^28, τ = 2^28 (the largest m and τ)', { rosterSize: 100_000, dim: 2 ** 28, bits: 32, graph: { kind: 'harary', degree: 64 }, maxTaskBytes: 2 ** 28 }],
];

/** Site ids whose auth signed bytes are listed (spec §4.3). */
const AUTH_IDS: [string, string][] = [
  ['an ASCII site id', 'hospital-a'],
  ['a non-ASCII site id (its UTF-8 length is prefixed, not its characters)', 'Klinikum Süd'],
  ['a site id of 64 bytes', 'site-'.padEnd(64, '0')],
];

export const envelopeKind = {
  kind: KIND,
  description: 'The wire-v1 envelope (protocols/wire-v1/spec.md). `op` says what a case fixes. decode: `frame` decoded under the limits of the consortium `limits` (spec §6; `maxTaskBytes` is the task bound τ, 0 when absent) gives `envelope` (byte fields as hex, the sum as its little-endian bytes, the `task` of a session-start left out when empty), and `envelope` encodes to `frame`; an invalid frame is refused with `error` by the first failing step of spec §5.1. limits: the per-kind bounds `maxBytes` and their maximum `maxFrameBytes` of the consortium `limits`. auth: the bytes a site signs (spec §4.3) for `consortium`, `challenge` and `siteId`, the Ed25519 key of `seed`, its signature and the auth frame carrying it; an invalid one is refused with `error`.',
  generate(): TestCase[] {
    const tests: TestCase[] = [];
    const push = (t: Omit<TestCase, 'tcId'>) => tests.push({ tcId: tests.length + 1, ...t } as TestCase);
    const valid = new Map<string, Uint8Array>();
    for (const [comment, e] of validEnvelopes()) {
      const frame = encodeEnvelope(e);
      valid.set(comment, frame);
      push({ comment, result: 'valid', op: 'decode', limits: MAIN, frame: hex(frame), envelope: envelopeToJson(e) });
    }
    for (const [comment, error, frame] of invalidFrames(valid)) {
      // The generator checks its own cases: each frame fails with the code it states.
      const got = errorCodeOf(() => decodeEnvelope(frame, MAIN_LIMITS));
      if (got !== error) throw new VectorMismatch(`invalid case '${comment}': expected ${error}, the decoder gives ${got ?? 'success'}`);
      push({ comment, result: 'invalid', error, op: 'decode', limits: MAIN, frame: hex(frame) });
    }
    for (const [comment, limits] of LIMITS) {
      const l = envelopeLimits(limits);
      push({ comment, result: 'valid', op: 'limits', limits, maxBytes: { ...l.maxBytes }, maxFrameBytes: maxFrameBytes(l) });
    }
    const r = rngOf('auth');
    for (const [comment, siteId] of AUTH_IDS) {
      const consortium = r.bytes(32), challenge = r.bytes(32), seed = r.bytes(32);
      const signedBytes = authSignedBytes(consortium, challenge, siteId);
      const signature = nativeProvider.ed25519Sign(seed, signedBytes);
      push({
        comment, result: 'valid', op: 'auth', consortium: hex(consortium), challenge: hex(challenge), siteId, signedBytes: hex(signedBytes),
        seed: hex(seed), publicKey: hex(nativeProvider.ed25519PublicKey(seed)), signature: hex(signature), frame: hex(encodeEnvelope({ kind: 'auth', signature })),
      });
    }
    for (const [comment, siteId] of [['a site id with a newline', 'hospital\na'], ['an empty site id', '']]) {
      push({ comment, result: 'invalid', error: 'WIRE_ERR_BAD_FIELD', op: 'auth', consortium: hex(r.bytes(32)), challenge: hex(r.bytes(32)), siteId });
    }
    // Session-start tasks, last: the cases above keep their tcIds.
    for (const [comment, limits, frame, outcome] of taskCases()) {
      // The generator checks its own cases: each frame decodes to its envelope, or fails with its code.
      const got = errorCodeOf(() => decodeEnvelope(frame, envelopeLimits(limits)));
      if (typeof outcome === 'string') {
        if (got !== outcome) throw new VectorMismatch(`task case '${comment}': expected ${outcome}, the decoder gives ${got ?? 'success'}`);
        push({ comment, result: 'invalid', error: outcome, op: 'decode', limits, frame: hex(frame) });
      } else {
        if (got !== undefined) throw new VectorMismatch(`task case '${comment}': the decoder refuses it with ${got}`);
        push({ comment, result: 'valid', op: 'decode', limits, frame: hex(frame), envelope: envelopeToJson(outcome) });
      }
    }
    for (const [comment, limits] of TASK_LIMITS) {
      const l = envelopeLimits(limits);
      push({ comment, result: 'valid', op: 'limits', limits, maxBytes: { ...l.maxBytes }, maxFrameBytes: maxFrameBytes(l) });
    }
    return tests;
  },
  check(tc: TestCase): void {
    switch (tc.op) {
      case 'decode': {
        const limits = envelopeLimits(tc.limits as LimitsJson);
        const frame = bytes(tc.frame, 'frame');
        if (tc.result === 'invalid') { expectError(tc.error, () => decodeEnvelope(frame, limits)); return; }
        expectEqual('envelope (decoded from frame)', envelopeToJson(decodeEnvelope(frame, limits)), tc.envelope);
        expectEqual('frame (encoded from envelope)', encodeEnvelope(envelopeFromJson(tc.envelope as Record<string, unknown>)), frame);
        return;
      }
      case 'limits': {
        const l = envelopeLimits(tc.limits as LimitsJson);
        expectEqual('maxBytes', { ...l.maxBytes }, tc.maxBytes);
        expectEqual('maxFrameBytes', maxFrameBytes(l), tc.maxFrameBytes);
        return;
      }
      case 'auth': {
        const consortium = bytes(tc.consortium, 'consortium'), challenge = bytes(tc.challenge, 'challenge'), siteId = tc.siteId as string;
        if (tc.result === 'invalid') { expectError(tc.error, () => authSignedBytes(consortium, challenge, siteId)); return; }
        const signed = authSignedBytes(consortium, challenge, siteId);
        expectEqual('signedBytes', signed, tc.signedBytes);
        const seed = bytes(tc.seed, 'seed'), signature = bytes(tc.signature, 'signature');
        expectEqual('publicKey (from seed)', nativeProvider.ed25519PublicKey(seed), tc.publicKey);
        expectEqual('signature', nativeProvider.ed25519Sign(seed, signed), signature);
        expectThat(nativeProvider.ed25519Verify(bytes(tc.publicKey, 'publicKey'), signed, signature), 'the signature does not verify');
        expectEqual('frame', encodeEnvelope({ kind: 'auth', signature }), tc.frame);
        expectEqual('signature (decoded from frame)', (decodeEnvelope(bytes(tc.frame, 'frame'), MAIN_LIMITS) as Extract<Envelope, { kind: 'auth' }>).signature, signature);
        return;
      }
      default:
        throw new VectorMismatch(`unknown op ${String(tc.op)}`);
    }
  },
};
