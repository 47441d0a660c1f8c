import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { nativeProvider } from '../../src/crypto/native.js';
import { concatBytes } from '../../src/crypto/_validate.js';
import { CodecError, ValidationError, WIRE_CODES } from '../../src/errors.js';
import { maxMessageBytes, TYPE } from '../../src/secagg/codec.js';
import {
  authSignedBytes, decodeEnvelope, encodeEnvelope, ENVELOPE_KINDS, envelopeLimits, maxFrameBytes, type Envelope, type EnvelopeKind, type EnvelopeLimits,
} from '../../src/transport/envelope.js';
import { BODY_FIELD, bodyOf, frameOf, lenField, packed, u32Field, unpacked, varint } from '../../src/transport/vectors/raw.js';

// Tests run from dist/test/transport: the repository root is three levels up.
const PROTO = fileURLToPath(new URL('../../../protocols/wire-v1/envelope.proto', import.meta.url));
const ERRORS = fileURLToPath(new URL('../../../protocols/wire-v1/errors.md', import.meta.url));
const VECTORS = fileURLToPath(new URL('../../../protocols/wire-v1/vectors/envelope.json', import.meta.url));

const b = (n: number, v = 1) => new Uint8Array(n).fill(v);
const V = (n: number) => varint(n).length;
const frameSize = (body: number) => 3 + V(body) + body;

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    if (err instanceof CodecError || err instanceof ValidationError) return `${err.constructor.name}:${err.code}`;
    throw err;
  }
  return 'ok';
}
const decodeCode = (frame: Uint8Array, l: EnvelopeLimits) => codeOf(() => decodeEnvelope(frame, l));
const WIDE: EnvelopeLimits = { maxBytes: Object.fromEntries(ENVELOPE_KINDS.map((k) => [k, 1 << 24])) as Record<EnvelopeKind, number> };
const L = envelopeLimits({ rosterSize: 5, dim: 8, bits: 16, graph: { kind: 'complete' } });

const SS: Envelope = {
  kind: 'session-start', session: b(32, 9), clientIds: [2, 3, 5, 8, 13], threshold: 3, bits: 16, dim: 8, threat: 'semi-honest',
  graph: { kind: 'harary', degree: 2 }, roundDeadlinesMs: [10_000, 20_000, 30_000, 30_000, 60_000],
};
const SAMPLES: Envelope[] = [
  { kind: 'hello', siteId: 'hospital-a', consortium: b(32, 0xaa) },
  { kind: 'hello', siteId: 'Klinikum Süd · 東京', consortium: b(32, 0) },
  { kind: 'challenge', challenge: b(32, 0x5c) },
  { kind: 'auth', signature: b(64, 0xee) },
  { kind: 'welcome', siteId: 'hospital-a', clientId: 1 },
  { kind: 'welcome', siteId: 'x', clientId: 0xffffffff },
  SS,
  { ...SS, threat: 'malicious', graph: { kind: 'complete' }, clientIds: [1, 2, 3], threshold: 2 } as Envelope,
  { ...SS, task: Uint8Array.of(0x7b, 0x22, 0, 0xff) } as Envelope,
  { kind: 'secagg', session: b(32, 3), payload: Uint8Array.of(1, 3, 0xff) },
  { kind: 'result', session: b(32, 4), sum: Uint32Array.of(0, 1, 0xffffffff, 7, 8, 9, 10, 11), survivors: [2, 5, 8], dropped: [3, 13] },
  { kind: 'result', session: b(32, 4), sum: Uint32Array.of(42), survivors: [1], dropped: [] },
  { kind: 'abort', session: b(32, 5), code: 'SECAGG_ERR_BELOW_THRESHOLD', message: 'round 2' },
  { kind: 'abort', session: b(32, 5), code: 'X', message: '' },
  { kind: 'result', session: b(32, 4), sum: Uint32Array.of(42), survivors: [1], dropped: [], checkpoint: { size: 17, root: b(32, 6), signature: b(64, 7) } },
  { kind: 'abort', session: b(32, 5), code: 'X', message: 'm', checkpoint: { size: 3, root: b(32, 8), signature: b(64, 9) } },
  { kind: 'error', code: 'NET_ERR_AUTH_FAILED', message: 'the signature does not verify' },
  { kind: 'error', code: 'WIRE_ERR_OVERSIZE', message: '' },
];
/** Limits of L's consortium with tasks of up to 64 bytes. */
const LT = envelopeLimits({ rosterSize: 5, dim: 8, bits: 16, graph: { kind: 'complete' }, maxTaskBytes: 64 });
/** What decoding `e` gives: a session-start always has a task, empty when it carries none. */
const decoded = (e: Envelope): Envelope => (e.kind === 'session-start' ? { ...e, task: e.task ?? new Uint8Array(0) } : e);

describe('wire-v1 envelope: encoding and round trips', () => {
  it('round-trips every kind exactly', () => {
    expect(new Set(SAMPLES.map((e) => e.kind))).to.have.property('size', ENVELOPE_KINDS.length);
    for (const e of SAMPLES) {
      const f = encodeEnvelope(e);
      expect(f.constructor, e.kind).to.equal(Uint8Array);
      expect(decodeEnvelope(f, LT), e.kind).to.deep.equal(decoded(e));
      expect(encodeEnvelope(decodeEnvelope(f, LT)), e.kind).to.deep.equal(f);
    }
  });

  it('writes what protobufjs writes for the shipped envelope.proto (one schema)', () => {
    const root = protobuf.parse(readFileSync(PROTO, 'utf8'), { keepCase: true }).root;
    const env = root.lookupType('tally.wire.v1.Envelope');
    const hello = env.encode({ version: 1, hello: { site_id: 'hospital-a', consortium: b(32, 0xaa) } }).finish();
    expect(encodeEnvelope(SAMPLES[0]!)).to.deep.equal(new Uint8Array(hello));
    const ss = env.encode({
      version: 1, session_start: { session: b(32, 9), client_ids: [2, 3, 5, 8, 13], threshold: 3, bits: 16, dim: 8, threat: 1, graph: 2, degree: 2, round_deadlines_ms: [10_000, 20_000, 30_000, 30_000, 60_000] },
    }).finish();
    expect(encodeEnvelope(SS)).to.deep.equal(new Uint8Array(ss));
    const withTask = env.encode({
      version: 1, session_start: { session: b(32, 9), client_ids: [2, 3, 5, 8, 13], threshold: 3, bits: 16, dim: 8, threat: 1, graph: 2, degree: 2, round_deadlines_ms: [10_000, 20_000, 30_000, 30_000, 60_000], task: b(300, 7) },
    }).finish();
    expect(encodeEnvelope({ ...SS, task: b(300, 7) })).to.deep.equal(new Uint8Array(withTask));
    // And protobufjs reads every frame back as an Envelope with version 1 and the kind's body.
    for (const e of SAMPLES) {
      const m = env.decode(encodeEnvelope(e)) as unknown as Record<string, unknown>;
      expect(m.version).to.equal(1);
      expect(m.body).to.equal(e.kind.replace('-', '_'));
    }
  });

  it('round-trips a result without the sum (absent field) for consortia that keep the sum from the sites', () => {
    const e: Envelope = { kind: 'result', session: b(32, 1), sum: new Uint32Array(0), survivors: [1, 3], dropped: [2] };
    const f = encodeEnvelope(e);
    expect([...bodyOf(f)]).to.deep.equal([...lenField(1, b(32, 1)), ...packed(3, [1, 3]), ...packed(4, [2])]);
    expect(decodeEnvelope(f, L)).to.deep.equal(e);
  });

  it('starts every frame with 08 01 and the body tag, and writes the sum little-endian', () => {
    for (const e of SAMPLES) {
      const f = encodeEnvelope(e);
      expect([...f.subarray(0, 3)], e.kind).to.deep.equal([0x08, 0x01, BODY_FIELD[e.kind] * 8 + 2]);
    }
    const f = encodeEnvelope({ kind: 'result', session: b(32, 0), sum: Uint32Array.of(0x04030201), survivors: [1], dropped: [] });
    expect([...bodyOf(f)]).to.deep.equal([...lenField(1, b(32, 0)), ...lenField(2, Uint8Array.of(1, 2, 3, 4)), ...packed(3, [1])]);
  });

  it('returns bytes fields as views into the frame, and a copy of the sum', () => {
    const f = encodeEnvelope({ kind: 'secagg', session: b(32, 3), payload: b(500, 7) });
    const e = decodeEnvelope(f, L) as Extract<Envelope, { kind: 'secagg' }>;
    expect(e.payload.buffer).to.equal(f.buffer);
    expect(e.payload.constructor).to.equal(Uint8Array);
    const buf = Buffer.from(f);
    const e2 = decodeEnvelope(buf, L) as Extract<Envelope, { kind: 'secagg' }>;
    expect(e2.session.constructor, 'a Buffer frame still gives plain Uint8Array views').to.equal(Uint8Array);
    // An odd offset: the sum still decodes (copied, not an unaligned view).
    const r = encodeEnvelope(SAMPLES[10]!);
    const shifted = new Uint8Array(r.length + 1).subarray(1);
    shifted.set(r);
    expect((decodeEnvelope(shifted, L) as Extract<Envelope, { kind: 'result' }>).sum).to.deep.equal(Uint32Array.of(0, 1, 0xffffffff, 7, 8, 9, 10, 11));
  });

  it('refuses bad values on encoding with ValidationError WIRE_ERR_BAD_FIELD', () => {
    const bad: [string, unknown][] = [
      ['empty site id', { kind: 'hello', siteId: '', consortium: b(32) }],
      ['65-byte site id', { kind: 'hello', siteId: 'a'.repeat(65), consortium: b(32) }],
      ['site id of 33 two-byte characters (66 bytes)', { kind: 'welcome', siteId: 'é'.repeat(33), clientId: 1 }],
      ['site id with a newline', { kind: 'hello', siteId: 'a\nb', consortium: b(32) }],
      ['site id with a C1 control', { kind: 'hello', siteId: 'a\u0085', consortium: b(32) }],
      ['site id with a lone surrogate', { kind: 'hello', siteId: 'a\ud800', consortium: b(32) }],
      ['site id not a string', { kind: 'hello', siteId: 7, consortium: b(32) }],
      ['consortium of 31 bytes', { kind: 'hello', siteId: 'a', consortium: b(31) }],
      ['consortium not bytes', { kind: 'hello', siteId: 'a', consortium: 'x'.repeat(32) }],
      ['challenge of 33 bytes', { kind: 'challenge', challenge: b(33) }],
      ['signature of 63 bytes', { kind: 'auth', signature: b(63) }],
      ['client id 0', { kind: 'welcome', siteId: 'a', clientId: 0 }],
      ['client id 2^32', { kind: 'welcome', siteId: 'a', clientId: 2 ** 32 }],
      ['client id 1.5', { kind: 'welcome', siteId: 'a', clientId: 1.5 }],
      ['one client', { ...SS, clientIds: [1], threshold: 1, graph: { kind: 'complete' } }],
      ['ids not increasing', { ...SS, clientIds: [2, 3, 3, 8, 13] }],
      ['id 0', { ...SS, clientIds: [0, 3, 5, 8, 13] }],
      ['threshold 0', { ...SS, threshold: 0 }],
      ['threshold above n', { ...SS, threshold: 6 }],
      ['bits 0', { ...SS, bits: 0 }],
      ['bits 33', { ...SS, bits: 33 }],
      ['dim 0', { ...SS, dim: 0 }],
      ['unknown threat', { ...SS, threat: 'honest' }],
      ['unknown graph', { ...SS, graph: { kind: 'ring' } }],
      ['Harary degree 0', { ...SS, graph: { kind: 'harary', degree: 0 } }],
      ['Harary degree n', { ...SS, graph: { kind: 'harary', degree: 5 } }],
      ['4 deadlines', { ...SS, roundDeadlinesMs: [1, 2, 3, 4] }],
      ['6 deadlines', { ...SS, roundDeadlinesMs: [1, 2, 3, 4, 5, 6] }],
      ['deadline 0', { ...SS, roundDeadlinesMs: [1, 2, 0, 4, 5] }],
      ['task not bytes', { ...SS, task: [1, 2] }],
      ['task a string', { ...SS, task: 'task' }],
      ['task null', { ...SS, task: null }],
      ['session of 31 bytes', { kind: 'secagg', session: b(31), payload: b(1) }],
      ['empty payload', { kind: 'secagg', session: b(32), payload: b(0) }],
      ['sum not a Uint32Array', { kind: 'result', session: b(32), sum: [1, 2], survivors: [1], dropped: [] }],
      ['no survivor', { kind: 'result', session: b(32), sum: Uint32Array.of(1), survivors: [], dropped: [1] }],
      ['a survivor also dropped', { kind: 'result', session: b(32), sum: Uint32Array.of(1), survivors: [1, 4, 9], dropped: [2, 4] }],
      ['dropped not increasing', { kind: 'result', session: b(32), sum: Uint32Array.of(1), survivors: [1], dropped: [4, 2] }],
      ['a checkpoint of size 0', { kind: 'result', session: b(32), sum: Uint32Array.of(1), survivors: [1], dropped: [], checkpoint: { size: 0, root: b(32), signature: b(64) } }],
      ['a checkpoint root of 31 bytes', { kind: 'result', session: b(32), sum: Uint32Array.of(1), survivors: [1], dropped: [], checkpoint: { size: 2, root: b(31), signature: b(64) } }],
      ['a checkpoint without signature', { kind: 'abort', session: b(32), code: 'X', message: '', checkpoint: { size: 2, root: b(32), signature: new Uint8Array(0) } }],
      ['lowercase code', { kind: 'error', code: 'net_err', message: '' }],
      ['empty code', { kind: 'error', code: '', message: '' }],
      ['65-character code', { kind: 'abort', session: b(32), code: 'A'.repeat(65), message: '' }],
      ['code with a space', { kind: 'error', code: 'NET ERR', message: '' }],
      ['message of 1025 bytes', { kind: 'error', code: 'X', message: 'm'.repeat(1025) }],
      ['message of 513 two-byte characters', { kind: 'abort', session: b(32), code: 'X', message: 'ß'.repeat(513) }],
    ];
    for (const [what, e] of bad) expect(codeOf(() => encodeEnvelope(e as Envelope)), what).to.equal('ValidationError:WIRE_ERR_BAD_FIELD');
    expect(codeOf(() => encodeEnvelope({ kind: 'ping' } as unknown as Envelope))).to.equal('ValidationError:WIRE_ERR_UNKNOWN_TYPE');
    // The largest allowed values pass.
    expect(codeOf(() => encodeEnvelope({ kind: 'hello', siteId: 'é'.repeat(32), consortium: b(32) }))).to.equal('ok');
    expect(codeOf(() => encodeEnvelope({ kind: 'error', code: 'Z'.repeat(64), message: 'ß'.repeat(512) }))).to.equal('ok');
  });
});

describe('wire-v1 envelope: decoding order and refusals (spec §5)', () => {
  const hello = encodeEnvelope(SAMPLES[0]!);
  const ssFrame = encodeEnvelope(SS);

  it('(1) refuses a missing or non-1 version with WIRE_ERR_UNKNOWN_VERSION', () => {
    const body = bodyOf(hello);
    const cases: [string, Uint8Array][] = [
      ['empty frame', new Uint8Array(0)],
      ['08 alone', Uint8Array.of(0x08)],
      ['no version field', concatBytes(Uint8Array.of(0x12), varint(body.length), body)],
      ['version 0', concatBytes(Uint8Array.of(0x08, 0x00), hello.subarray(2))],
      ['version 2', concatBytes(Uint8Array.of(0x08, 0x02), hello.subarray(2))],
      ['version 1 as a non-minimal varint', concatBytes(Uint8Array.of(0x08, 0x81, 0x00), hello.subarray(2))],
      ['version 300', concatBytes(Uint8Array.of(0x08), varint(300), hello.subarray(2))],
      ['version as a LEN field', concatBytes(Uint8Array.of(0x0a, 0x01, 0x01), hello.subarray(2))],
    ];
    for (const [what, f] of cases) expect(decodeCode(f, L), what).to.equal('CodecError:WIRE_ERR_UNKNOWN_VERSION');
  });

  it('(2) refuses any byte 2 other than a body tag with WIRE_ERR_UNKNOWN_TYPE', () => {
    const rest = hello.subarray(3);
    const tags = new Set(Object.values(BODY_FIELD).map((f) => f * 8 + 2));
    for (let t = 0; t < 256; t++) {
      const got = decodeCode(concatBytes(Uint8Array.of(0x08, 0x01, t), rest), WIDE);
      if (tags.has(t)) expect(got, `tag 0x${t.toString(16)}`).to.not.equal('CodecError:WIRE_ERR_UNKNOWN_TYPE');
      else expect(got, `tag 0x${t.toString(16)}`).to.equal('CodecError:WIRE_ERR_UNKNOWN_TYPE');
    }
    // A second version field, and a non-minimal tag of a known body, are not body tags either.
    expect(decodeCode(concatBytes(Uint8Array.of(0x08, 0x01, 0x08, 0x01), hello.subarray(2)), WIDE)).to.equal('CodecError:WIRE_ERR_UNKNOWN_TYPE');
    expect(decodeCode(concatBytes(Uint8Array.of(0x08, 0x01, 0x92, 0x00), hello.subarray(3)), WIDE)).to.equal('CodecError:WIRE_ERR_UNKNOWN_TYPE');
  });

  it('(3) checks the kind\'s bound on the whole frame before the length or any field', () => {
    const tight = { maxBytes: { ...WIDE.maxBytes, hello: hello.length } };
    expect(decodeCode(hello, tight)).to.equal('ok');
    expect(decodeCode(concatBytes(hello, Uint8Array.of(0)), tight), 'one trailing byte over the bound').to.equal('CodecError:WIRE_ERR_OVERSIZE');
    const garbage = concatBytes(Uint8Array.of(0x08, 0x01, 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f), b(hello.length));
    expect(decodeCode(garbage, tight), 'a declared length of 2^32 - 1').to.equal('CodecError:WIRE_ERR_OVERSIZE');
    // Version and type come first.
    expect(decodeCode(concatBytes(Uint8Array.of(0x08, 0x02), hello.subarray(2), b(200)), tight)).to.equal('CodecError:WIRE_ERR_UNKNOWN_VERSION');
    expect(decodeCode(concatBytes(Uint8Array.of(0x08, 0x01, 0x5a), hello.subarray(3), b(200)), tight)).to.equal('CodecError:WIRE_ERR_UNKNOWN_TYPE');
  });

  it('(4) refuses a frame cut anywhere with WIRE_ERR_TRUNCATED (UNKNOWN_VERSION before byte 2)', () => {
    for (const e of SAMPLES) {
      const f = encodeEnvelope(e);
      for (let cut = 0; cut < f.length; cut++) {
        expect(decodeCode(f.subarray(0, cut), L), `${e.kind} cut at ${cut}`).to.equal(cut < 2 ? 'CodecError:WIRE_ERR_UNKNOWN_VERSION' : 'CodecError:WIRE_ERR_TRUNCATED');
      }
    }
  });

  it('(4) refuses bytes after the body with WIRE_ERR_TRAILING_BYTES, and a wrong declared length', () => {
    const body = bodyOf(ssFrame);
    for (const extra of [1, 2, 17]) expect(decodeCode(concatBytes(ssFrame, b(extra, 0)), WIDE), `${extra} trailing`).to.equal('CodecError:WIRE_ERR_TRAILING_BYTES');
    expect(decodeCode(frameOf(6, body, { declared: body.length - 1 }), WIDE)).to.equal('CodecError:WIRE_ERR_TRAILING_BYTES');
    expect(decodeCode(frameOf(6, body, { declared: body.length + 1 }), WIDE)).to.equal('CodecError:WIRE_ERR_TRUNCATED');
    expect(decodeCode(frameOf(6, body, { declared: 0 }), WIDE)).to.equal('CodecError:WIRE_ERR_TRAILING_BYTES');
    // A length varint that never ends within 10 bytes declares more than any frame.
    expect(decodeCode(concatBytes(Uint8Array.of(0x08, 0x01, 0x32), b(11, 0x80), Uint8Array.of(0)), WIDE)).to.equal('CodecError:WIRE_ERR_TRUNCATED');
    expect(decodeCode(concatBytes(Uint8Array.of(0x08, 0x01, 0x32), b(10, 0x80)), WIDE)).to.equal('CodecError:WIRE_ERR_TRUNCATED');
  });

  const helloBody = (...fields: Uint8Array[]) => frameOf(2, concatBytes(...fields));
  const id = lenField(1, 'hospital-a');
  const cons = lenField(2, b(32, 0xaa));
  const ssFields = {
    session: lenField(1, b(32, 9)), ids: packed(2, [2, 3, 5, 8, 13]), threshold: u32Field(3, 3), bits: u32Field(4, 16), dim: u32Field(5, 8),
    threat: u32Field(6, 1), graph: u32Field(7, 2), degree: u32Field(8, 2), deadlines: packed(9, [10_000, 20_000, 30_000, 30_000, 60_000]),
  };
  const ss = (o: Partial<Record<keyof typeof ssFields, Uint8Array>>) => frameOf(6, concatBytes(...Object.values({ ...ssFields, ...o })));

  it('the hand-written fields make the canonical frames', () => {
    expect(helloBody(id, cons)).to.deep.equal(hello);
    expect(ss({})).to.deep.equal(ssFrame);
  });

  it('(5) refuses each bad field with WIRE_ERR_BAD_FIELD', () => {
    const none = new Uint8Array(0);
    const cases: [string, Uint8Array][] = [
      ['hello without site id', helloBody(cons)],
      ['hello with a 65-byte site id and no hash (under the bound)', helloBody(lenField(1, 'a'.repeat(65)))],
      ['site id with a tab', helloBody(lenField(1, 'a\tb'), cons)],
      ['site id with DEL', helloBody(lenField(1, 'a\u007f'), cons)],
      ['site id not UTF-8', helloBody(lenField(1, Uint8Array.of(0x61, 0xc3, 0x28)), cons)],
      ['site id with an overlong NUL', helloBody(lenField(1, Uint8Array.of(0x61, 0xc0, 0x80)), cons)],
      ['site id with an encoded surrogate', helloBody(lenField(1, Uint8Array.of(0xed, 0xa0, 0x80)), cons)],
      ['hash of 31 bytes', helloBody(id, lenField(2, b(31)))],
      ['hash of 33 bytes', helloBody(id, lenField(2, b(33)))],
      ['no hash', helloBody(id)],
      ['challenge of 31 bytes', frameOf(3, lenField(1, b(31)))],
      ['empty challenge body', frameOf(3, none)],
      ['signature of 65 bytes', frameOf(4, lenField(1, b(65)))],
      ['welcome without client id', frameOf(5, id)],
      ['session of 31 bytes', ss({ session: lenField(1, b(31)) })],
      ['one client id', ss({ ids: packed(2, [2]), threshold: u32Field(3, 1), graph: u32Field(7, 1), degree: none })],
      ['ids not increasing', ss({ ids: packed(2, [2, 5, 3, 8, 13]) })],
      ['duplicate id', ss({ ids: packed(2, [2, 3, 3, 8, 13]) })],
      ['id 0', ss({ ids: packed(2, [0, 3, 5, 8, 13]) })],
      ['no threshold', ss({ threshold: none })],
      ['threshold above n', ss({ threshold: u32Field(3, 6) })],
      ['bits 0 (absent)', ss({ bits: none })],
      ['bits 33', ss({ bits: u32Field(4, 33) })],
      ['dim 0 (absent)', ss({ dim: none })],
      ['threat unspecified (absent)', ss({ threat: none })],
      ['threat 3', ss({ threat: u32Field(6, 3) })],
      ['graph unspecified (absent)', ss({ graph: none })],
      ['graph 7', ss({ graph: u32Field(7, 7) })],
      ['complete graph with degree 2, n = 5', ss({ graph: u32Field(7, 1) })],
      ['Harary degree 5, n = 5', ss({ degree: u32Field(8, 5) })],
      ['Harary degree 0 (absent)', ss({ degree: none })],
      ['4 deadlines', ss({ deadlines: packed(9, [1, 2, 3, 4]) })],
      ['6 deadlines', ss({ deadlines: packed(9, [1, 2, 3, 4, 5, 6]) })],
      ['a deadline of 0', ss({ deadlines: packed(9, [1, 2, 0, 4, 5]) })],
      ['empty payload', frameOf(7, lenField(1, b(32)))],
      ['secagg without session', frameOf(7, lenField(2, b(8)))],
      ['sum of 6 bytes', frameOf(8, concatBytes(lenField(1, b(32)), lenField(2, b(6)), packed(3, [1])))],
      ['no survivor', frameOf(8, concatBytes(lenField(1, b(32)), lenField(2, b(4)), packed(4, [1])))],
      ['a survivor also dropped', frameOf(8, concatBytes(lenField(1, b(32)), lenField(2, b(4)), packed(3, [1, 2]), packed(4, [2])))],
      ['lowercase code', frameOf(10, lenField(1, 'bad_code'))],
      ['no code', frameOf(10, lenField(2, 'text'))],
      ['65-character code', frameOf(10, lenField(1, 'A'.repeat(65)))],
      ['message of 1025 bytes', frameOf(10, concatBytes(lenField(1, 'X'), lenField(2, 'm'.repeat(1025))))],
      ['abort without session', frameOf(9, lenField(2, 'X'))],
      ['a field running past the body', frameOf(10, Uint8Array.of(0x0a, 0x05, 0x41))],
      ['wire type 7', frameOf(10, concatBytes(lenField(1, 'X'), Uint8Array.of(0x0f)))],
      ['a varint of 11 bytes', frameOf(5, concatBytes(id, Uint8Array.of(0x10), b(10, 0x81), Uint8Array.of(0x01)))],
      ['field number 0', frameOf(10, concatBytes(lenField(1, 'X'), Uint8Array.of(0x00, 0x00)))],
      ['an unfinished packed list', frameOf(8, concatBytes(lenField(1, b(32)), lenField(2, b(4)), lenField(3, Uint8Array.of(0x01, 0x81))))],
    ];
    for (const [what, f] of cases) expect(decodeCode(f, WIDE), what).to.equal('CodecError:WIRE_ERR_BAD_FIELD');
  });

  it('(6) refuses anything but the canonical encoding with WIRE_ERR_NON_CANONICAL', () => {
    const cases: [string, Uint8Array][] = [
      ['non-minimal body length', frameOf(2, bodyOf(hello), { extraLen: 1 })],
      ['non-minimal inner length', helloBody(lenField(1, 'hospital-a', 1), cons)],
      ['non-minimal varint', frameOf(5, concatBytes(id, u32Field(2, 7, 1)))],
      ['uint32 written as 10 bytes (a negative int64)', frameOf(5, concatBytes(id, Uint8Array.of(0x10), b(9, 0xff), Uint8Array.of(0x01)))],
      ['fields out of order', helloBody(cons, id)],
      ['a field twice (same value)', helloBody(id, id, cons)],
      ['a field twice (the last is valid)', helloBody(lenField(1, ''), id, cons)],
      ['an unknown field', helloBody(id, cons, lenField(15, 'x'))],
      ['an unknown varint field', helloBody(id, cons, u32Field(3, 0))],
      ['a known field with another wire type', helloBody(id, cons, u32Field(1, 5))],
      ['an unknown group', helloBody(id, cons, Uint8Array.of(0x7b, 0x7c))],
      ['unpacked client ids', ss({ ids: unpacked(2, [2, 3, 5, 8, 13]) })],
      ['unpacked deadlines', ss({ deadlines: unpacked(9, [10_000, 20_000, 30_000, 30_000, 60_000]) })],
      ['a packed list split in two', ss({ ids: concatBytes(packed(2, [2, 3]), packed(2, [5, 8, 13])) })],
      ['an explicit empty message', frameOf(10, concatBytes(lenField(1, 'X'), lenField(2, '')))],
      ['an explicit empty dropped list', frameOf(8, concatBytes(lenField(1, b(32)), lenField(2, b(4)), packed(3, [1]), lenField(4, new Uint8Array(0))))],
      ['an explicit zero before the value', ss({ bits: concatBytes(u32Field(4, 0), u32Field(4, 16)) })],
    ];
    for (const [what, f] of cases) expect(decodeCode(f, WIDE), what).to.equal('CodecError:WIRE_ERR_NON_CANONICAL');
  });
});

describe('wire-v1 envelope: size limits (spec §6)', () => {
  const cp = { size: 2 ** 32 - 1, root: b(32), signature: b(64) };
  const ids5 = (n: number) => Array.from({ length: n }, (_, i) => 2 ** 28 + i); // five-byte varints
  const P = (n: number, k: number, bits: number, dim: number) => {
    const cfg = { clientIds: Array.from({ length: n }, (_, i) => i + 1), graph: k === n - 1 ? { kind: 'complete' as const } : { kind: 'harary' as const, degree: k }, bits, dim };
    return Math.max(...(Object.keys(TYPE) as (keyof typeof TYPE)[]).map((t) => maxMessageBytes(t, cfg)));
  };

  it('gives the formulas of the spec', () => {
    for (const [n, k, bits, dim] of [[2, 1, 1, 1], [5, 4, 16, 8], [40, 8, 32, 5], [200, 199, 20, 100_000], [1000, 30, 32, 2 ** 20]] as const) {
      const l = envelopeLimits({ rosterSize: n, dim, bits, graph: k === n - 1 ? { kind: 'complete' } : { kind: 'harary', degree: k } });
      const p = P(n, k, bits, dim);
      expect(p, 'P = max(42 + 116k, 42 + ⌈bm/8⌉, 38 + 133n)').to.equal(Math.max(42 + 116 * k, 42 + Math.ceil((bits * dim) / 8), 38 + 133 * n));
      expect(l.maxBytes).to.deep.equal({
        hello: 104, challenge: 38, auth: 70, welcome: 76,
        'session-start': frameSize(76 + 5 * n + V(5 * n) + V(n) + V(n - 1)),
        secagg: frameSize(35 + V(p) + p + 106),
        // + 106: a checkpoint (size 6, root 34, signature 66 bytes)
        result: frameSize(35 + V(4 * dim) + 4 * dim + 2 + 2 * V(5 * n) + 5 * n + 106),
        abort: 1238, error: 1098,
      });
      expect(maxFrameBytes(l)).to.equal(Math.max(...Object.values(l.maxBytes)));
    }
  });

  it('accepts a frame at each bound and refuses one byte more with WIRE_ERR_OVERSIZE', () => {
    for (const [n, dim, graph] of [[3, 4, { kind: 'complete' }], [25, 1000, { kind: 'harary', degree: 6 }], [200, 3, { kind: 'complete' }]] as const) {
      const l = envelopeLimits({ rosterSize: n, dim, bits: 32, graph });
      const k = graph.kind === 'complete' ? n - 1 : graph.degree;
      const ids = ids5(n);
      const largest: Envelope[] = [
        { kind: 'hello', siteId: 'é'.repeat(32), consortium: b(32) },
        { kind: 'challenge', challenge: b(32) },
        { kind: 'auth', signature: b(64) },
        { kind: 'welcome', siteId: 's'.repeat(64), clientId: 2 ** 32 - 1 },
        { kind: 'session-start', session: b(32), clientIds: ids, threshold: n, bits: 32, dim: 2 ** 28, threat: 'malicious', graph: { kind: 'complete' }, roundDeadlinesMs: ids5(5) },
        { kind: 'secagg', session: b(32), payload: b(P(n, k, 32, dim)), checkpoint: cp },
        { kind: 'abort', session: b(32), code: 'C'.repeat(64), message: '€'.repeat(341) + 'x', checkpoint: cp },
        { kind: 'error', code: 'C'.repeat(64), message: 'm'.repeat(1024) },
      ];
      // result: survivors and dropped split so that both list lengths need as many varint bytes as 5n (n ≤ 25 here).
      if (5 * n < 128) largest.push({ kind: 'result', session: b(32), sum: new Uint32Array(dim), survivors: ids.slice(1), dropped: ids.slice(0, 1), checkpoint: cp });
      for (const e of largest) {
        const f = encodeEnvelope(e);
        expect(f.length, `${e.kind} n=${n}`).to.equal(l.maxBytes[e.kind]);
        expect(decodeCode(f, l), `${e.kind} n=${n}`).to.equal('ok');
        expect(decodeCode(concatBytes(f, Uint8Array.of(0)), l), `${e.kind} n=${n} + 1`).to.equal('CodecError:WIRE_ERR_OVERSIZE');
      }
    }
  });

  it('never refuses the largest result of a roster: every split of n ids between survivors and dropped fits', () => {
    for (const n of [2, 3, 26, 30, 200]) {
      const l = envelopeLimits({ rosterSize: n, dim: 3, bits: 8, graph: { kind: 'complete' } });
      const ids = ids5(n);
      let largest = 0;
      for (let d = 0; d < n; d++) {
        const f = encodeEnvelope({ kind: 'result', session: b(32), sum: new Uint32Array(3), survivors: ids.slice(d), dropped: ids.slice(0, d), checkpoint: cp });
        expect(decodeCode(f, l), `n=${n} d=${d}`).to.equal('ok');
        largest = Math.max(largest, f.length);
      }
      expect(l.maxBytes.result - largest, `n=${n}: slack`).to.be.within(0, 1 + V(5 * n));
    }
  });

  it('refuses bad consortium parameters with ValidationError SECAGG_ERR_BAD_CONFIG', () => {
    const ok = { rosterSize: 5, dim: 8, bits: 16, graph: { kind: 'complete' } } as const;
    for (const p of [
      { ...ok, rosterSize: 1 }, { ...ok, rosterSize: 2 ** 24 }, { ...ok, rosterSize: 2.5 }, { ...ok, bits: 0 }, { ...ok, bits: 33 }, { ...ok, dim: 0 },
      { ...ok, dim: 2 ** 28 + 1 }, { ...ok, graph: { kind: 'harary', degree: 0 } }, { ...ok, graph: { kind: 'harary', degree: 5 } }, { ...ok, graph: { kind: 'ring' } },
    ]) expect(codeOf(() => envelopeLimits(p as typeof ok)), JSON.stringify(p)).to.equal('ValidationError:SECAGG_ERR_BAD_CONFIG');
  });
});

describe('wire-v1 envelope: the session-start task (spec §3.2, §4.4, §6)', () => {
  const ssFields = [
    lenField(1, b(32, 9)), packed(2, [2, 3, 5, 8, 13]), u32Field(3, 3), u32Field(4, 16), u32Field(5, 8), u32Field(6, 1), u32Field(7, 2), u32Field(8, 2),
    packed(9, [10_000, 20_000, 30_000, 30_000, 60_000]),
  ];
  const ssOf = (...extra: Uint8Array[]) => frameOf(6, concatBytes(...ssFields, ...extra));
  const limitsOf = (maxTaskBytes?: number, rosterSize = 5) => envelopeLimits({ rosterSize, dim: 8, bits: 16, graph: { kind: 'complete' }, ...(maxTaskBytes === undefined ? {} : { maxTaskBytes }) });

  it('round-trips a session-start with a task, written last as field 10; the decoded task is a view into the frame', () => {
    const task = Uint8Array.from({ length: 200 }, (_, i) => (i * 37) & 0xff);
    const f = encodeEnvelope({ ...SS, task });
    expect(f).to.deep.equal(ssOf(lenField(10, task)));
    expect(bodyOf(f).length).to.equal(bodyOf(encodeEnvelope(SS)).length + 1 + V(200) + 200);
    const e = decodeEnvelope(f, limitsOf(200)) as Extract<Envelope, { kind: 'session-start' }>;
    expect(e).to.deep.equal({ ...SS, task });
    expect(e.task!.constructor).to.equal(Uint8Array);
    expect(e.task!.buffer, 'a view, not a copy').to.equal(f.buffer);
    expect(encodeEnvelope(e)).to.deep.equal(f);
    // A Buffer task encodes like its bytes.
    expect(encodeEnvelope({ ...SS, task: Buffer.from(task) })).to.deep.equal(f);
  });

  it('round-trips a session-start without a task: absent and empty encode to the same bytes, and decode to an empty task', () => {
    const f = encodeEnvelope(SS);
    expect(f).to.deep.equal(ssOf());
    expect(encodeEnvelope({ ...SS, task: new Uint8Array(0) })).to.deep.equal(f);
    expect(encodeEnvelope({ ...SS, task: undefined } as Envelope)).to.deep.equal(f);
    for (const l of [L, limitsOf(64), WIDE]) {
      const e = decodeEnvelope(f, l) as Extract<Envelope, { kind: 'session-start' }>;
      expect(e.task).to.be.instanceOf(Uint8Array);
      expect(e.task).to.have.length(0);
      expect(encodeEnvelope(e)).to.deep.equal(f);
    }
  });

  it('leaves every session-start frame of the vectors without a task unchanged byte for byte', () => {
    const file = JSON.parse(readFileSync(VECTORS, 'utf8')) as { tests: { op: string; result: string; frame?: string; limits?: Parameters<typeof envelopeLimits>[0]; envelope?: { kind: string; task?: string } }[] };
    const frames = file.tests.filter((t) => t.op === 'decode' && t.result === 'valid' && t.envelope?.kind === 'session-start' && t.envelope.task === undefined);
    expect(frames.length).to.be.at.least(4);
    for (const t of frames) {
      const f = Buffer.from(t.frame!, 'hex');
      const e = decodeEnvelope(f, envelopeLimits(t.limits!)) as Extract<Envelope, { kind: 'session-start' }>;
      expect(e.task).to.have.length(0);
      expect(Buffer.from(encodeEnvelope(e)).equals(f)).to.equal(true);
      const { task: _, ...withoutTask } = e;
      expect(Buffer.from(encodeEnvelope(withoutTask as Envelope)).equals(f)).to.equal(true);
    }
  });

  it('carries a task of a few MB under a consortium that allows it', () => {
    const task = Uint8Array.from({ length: 3 * 2 ** 20 }, (_, i) => (i * 2654435761) >>> 24);
    const l = limitsOf(4 * 2 ** 20);
    const f = encodeEnvelope({ ...SS, task });
    expect(f.length).to.be.at.most(l.maxBytes['session-start']);
    const e = decodeEnvelope(f, l) as Extract<Envelope, { kind: 'session-start' }>;
    expect(Buffer.from(e.task!).equals(Buffer.from(task))).to.equal(true);
    expect(decodeCode(f, L), 'not where tasks are not allowed').to.equal('CodecError:WIRE_ERR_OVERSIZE');
  });

  it('refuses a task that makes the frame exceed the bound with WIRE_ERR_OVERSIZE, and a longer task within it with WIRE_ERR_BAD_FIELD', () => {
    for (const [n, tau] of [[5, 0], [5, 1], [5, 64], [5, 127], [5, 128], [40, 1000], [200, 2 ** 14]] as const) {
      const l = limitsOf(tau, n);
      const ids = Array.from({ length: n }, (_, i) => 2 ** 28 + i); // five-byte ids: the largest session-start
      const largest: Envelope = {
        kind: 'session-start', session: b(32), clientIds: ids, threshold: n, bits: 32, dim: 2 ** 28, threat: 'malicious', graph: { kind: 'complete' },
        roundDeadlinesMs: Array.from({ length: 5 }, () => 2 ** 28), task: b(tau, 3),
      };
      const f = encodeEnvelope(largest);
      expect(f.length, `n=${n} τ=${tau}: the largest frame is the bound`).to.equal(l.maxBytes['session-start']);
      expect(decodeCode(f, l), `n=${n} τ=${tau}`).to.equal('ok');
      const over = encodeEnvelope({ ...largest, task: b(tau + 1, 3) });
      expect(over.length, `n=${n} τ=${tau}`).to.be.above(l.maxBytes['session-start']);
      expect(decodeCode(over, l), `n=${n} τ=${tau}: τ + 1 bytes`).to.equal('CodecError:WIRE_ERR_OVERSIZE');
      // Small ids leave room in the frame: the task's own bound refuses it.
      const small = encodeEnvelope({ ...SS, task: b(tau + 1, 3) });
      expect(small.length).to.be.at.most(l.maxBytes['session-start']);
      expect(decodeCode(small, l), `n=${n} τ=${tau}: τ + 1 bytes, small ids`).to.equal('CodecError:WIRE_ERR_BAD_FIELD');
      expect(decodeCode(encodeEnvelope({ ...SS, task: b(tau, 3) }), l), `n=${n} τ=${tau}: τ bytes, small ids`).to.equal('ok');
    }
    // Limits without maxTaskBytes (built by hand) check the frame bound only.
    expect(decodeCode(encodeEnvelope({ ...SS, task: b(1000) }), WIDE)).to.equal('ok');
    expect(decodeCode(encodeEnvelope({ ...SS, task: b(1000) }), { ...WIDE, maxTaskBytes: 999 })).to.equal('CodecError:WIRE_ERR_BAD_FIELD');
  });

  it('refuses an explicit empty task, a task out of order or twice with WIRE_ERR_NON_CANONICAL', () => {
    const t = b(10, 5);
    const cases: [string, Uint8Array][] = [
      ['an explicit empty task (52 00)', ssOf(lenField(10, new Uint8Array(0)))],
      ['a task with a non-minimal length', ssOf(lenField(10, t, 1))],
      ['a task before the deadlines', frameOf(6, concatBytes(...ssFields.slice(0, 8), lenField(10, t), ssFields[8]!))],
      ['a task twice', ssOf(lenField(10, t), lenField(10, t))],
      ['an empty task, then a task', ssOf(lenField(10, new Uint8Array(0)), lenField(10, t))],
      ['field 10 as a varint', ssOf(u32Field(10, 5))],
    ];
    for (const [what, f] of cases) expect(decodeCode(f, limitsOf(64)), what).to.equal('CodecError:WIRE_ERR_NON_CANONICAL');
    expect(decodeCode(ssOf(lenField(10, t)), limitsOf(64)), 'the same task written once, canonically').to.equal('ok');
  });

  it('grows the session-start bound by 1 + V(τ) + τ and nothing else (τ = 0, the default, leaves every bound as it was)', () => {
    for (const n of [2, 5, 40, 1000]) {
      const base = limitsOf(undefined, n);
      expect(base.maxTaskBytes).to.equal(0);
      expect(limitsOf(0, n)).to.deep.equal(base);
      const B0 = 76 + 5 * n + V(5 * n) + V(n) + V(n - 1);
      expect(base.maxBytes['session-start']).to.equal(frameSize(B0));
      for (const tau of [1, 127, 128, 2 ** 14, 3 * 2 ** 20, 2 ** 28]) {
        const l = limitsOf(tau, n);
        expect(l.maxTaskBytes).to.equal(tau);
        expect(l.maxBytes['session-start'], `n=${n} τ=${tau}`).to.equal(frameSize(B0 + 1 + V(tau) + tau));
        for (const k of ENVELOPE_KINDS) if (k !== 'session-start') expect(l.maxBytes[k], `${k} n=${n} τ=${tau}`).to.equal(base.maxBytes[k]);
        expect(maxFrameBytes(l)).to.equal(Math.max(maxFrameBytes(base), l.maxBytes['session-start']));
      }
    }
  });

  it('refuses a bad task bound with ValidationError SECAGG_ERR_BAD_CONFIG', () => {
    const ok = { rosterSize: 5, dim: 8, bits: 16, graph: { kind: 'complete' } } as const;
    for (const maxTaskBytes of [-1, 1.5, 2 ** 28 + 1, NaN, Infinity, '5', null]) {
      expect(codeOf(() => envelopeLimits({ ...ok, maxTaskBytes } as unknown as typeof ok)), String(maxTaskBytes)).to.equal('ValidationError:SECAGG_ERR_BAD_CONFIG');
    }
    expect(codeOf(() => envelopeLimits({ ...ok, maxTaskBytes: 2 ** 28 }))).to.equal('ok');
  });
});

describe('wire-v1 envelope: auth signed bytes (spec §4.3)', () => {
  it('is label ‖ consortium ‖ challenge ‖ u32be(len) ‖ site id, and a roster key signs it', () => {
    const c = b(32, 1), ch = b(32, 2);
    const s = authSignedBytes(c, ch, 'Süd');
    const want = concatBytes(new TextEncoder().encode('tally/wire-v1/auth'), c, ch, Uint8Array.of(0, 0, 0, 4), Uint8Array.of(0x53, 0xc3, 0xbc, 0x64));
    expect(s).to.deep.equal(want);
    const seed = b(32, 3);
    const sig = nativeProvider.ed25519Sign(seed, s);
    expect(nativeProvider.ed25519Verify(nativeProvider.ed25519PublicKey(seed), authSignedBytes(c, ch, 'Süd'), sig)).to.equal(true);
    expect(nativeProvider.ed25519Verify(nativeProvider.ed25519PublicKey(seed), authSignedBytes(c, ch, 'Süe'), sig)).to.equal(false);
  });

  it('refuses a bad hash, challenge or site id with ValidationError WIRE_ERR_BAD_FIELD', () => {
    for (const f of [() => authSignedBytes(b(31), b(32), 'a'), () => authSignedBytes(b(32), b(33), 'a'), () => authSignedBytes(b(32), b(32), ''), () => authSignedBytes(b(32), b(32), 'a\u0000')]) {
      expect(codeOf(f)).to.equal('ValidationError:WIRE_ERR_BAD_FIELD');
    }
  });
});

describe('protocols/wire-v1/errors.md', () => {
  it('has one table row per WIRE code of src/errors.ts', () => {
    const rows = readFileSync(ERRORS, 'utf8').split('\n').filter((l) => l.startsWith('| `WIRE_ERR_')).map((l) => /^\| `(WIRE_ERR_[A-Z_]+)`/.exec(l)![1]);
    expect([...rows].sort()).to.deep.equal([...WIRE_CODES].sort());
  });
});
