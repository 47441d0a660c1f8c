/**
 * Property tests of the wire-v1 decoder: whatever bytes arrive, it returns an
 * envelope whose canonical encoding is exactly those bytes, or throws a
 * CodecError with a WIRE_ERR_* code, and nothing else; valid envelopes
 * round-trip exactly.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { CodecError, WIRE_CODES } from '../../src/errors.js';
import { decodeEnvelope, encodeEnvelope, ENVELOPE_KINDS, envelopeLimits, type Envelope, type EnvelopeKind, type EnvelopeLimits } from '../../src/transport/envelope.js';
import { BODY_FIELD } from '../../src/transport/vectors/raw.js';

const WIDE: EnvelopeLimits = { maxBytes: Object.fromEntries(ENVELOPE_KINDS.map((k) => [k, 1 << 20])) as Record<EnvelopeKind, number> };
const TIGHT = envelopeLimits({ rosterSize: 6, dim: 4, bits: 8, graph: { kind: 'harary', degree: 2 } });
/** TIGHT with session-start tasks of up to 24 bytes (the fuzzed tasks reach 40). */
const TASKED = envelopeLimits({ rosterSize: 6, dim: 4, bits: 8, graph: { kind: 'harary', degree: 2 }, maxTaskBytes: 24 });
const WIRE = new Set<string>(WIRE_CODES);
const utf8Bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/**
 * Decodes `frame`: either an envelope whose encoding is `frame` itself (the
 * decoder accepts canonical frames only), or a CodecError with a WIRE code.
 * Anything else fails the property.
 */
function decodesStrictly(frame: Uint8Array, limits: EnvelopeLimits): boolean {
  let e: Envelope;
  try {
    e = decodeEnvelope(frame, limits);
  } catch (err) {
    if (err instanceof CodecError && WIRE.has(err.code)) return true;
    throw err;
  }
  expect(Buffer.from(encodeEnvelope(e)).equals(frame), 'an accepted frame is canonical').to.equal(true);
  return true;
}

// ---- valid envelopes

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const u32 = fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 2 ** 32 - 1 }));
const siteId = fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }).filter((s) => utf8Bytes(s) <= 64 && !/[\u0000-\u001f\u007f-\u009f]/.test(s));
const code = fc.stringMatching(/^[A-Z0-9_]{1,64}$/);
const text = fc.string({ unit: 'binary', maxLength: 60 });
const ids = (min: number, max: number) => fc.uniqueArray(u32, { minLength: min, maxLength: max }).map((a) => a.sort((x, y) => x - y));

const sessionStart = ids(2, 12).chain((clientIds) => fc.record({
  kind: fc.constant('session-start' as const), session: bytes(32), clientIds: fc.constant(clientIds),
  threshold: fc.integer({ min: 1, max: clientIds.length }), bits: fc.integer({ min: 1, max: 32 }), dim: u32,
  threat: fc.constantFrom('semi-honest' as const, 'malicious' as const),
  graph: fc.oneof(fc.constant({ kind: 'complete' as const }), fc.integer({ min: 1, max: clientIds.length - 1 }).map((degree) => ({ kind: 'harary' as const, degree }))),
  roundDeadlinesMs: fc.array(u32, { minLength: 5, maxLength: 5 }),
  task: fc.oneof(fc.constant(undefined), fc.uint8Array({ maxLength: 40 })),
}));

const result = fc.tuple(ids(1, 16), fc.array(fc.boolean(), { minLength: 16, maxLength: 16 })).chain(([all, isDropped]) => {
  const dropped = all.filter((_, i) => i > 0 && isDropped[i]);
  const survivors = all.filter((_, i) => i === 0 || !isDropped[i]);
  return fc.record({ kind: fc.constant('result' as const), session: bytes(32), sum: fc.uint32Array({ minLength: 1, maxLength: 12 }), survivors: fc.constant(survivors), dropped: fc.constant(dropped) });
});

const envelope: fc.Arbitrary<Envelope> = fc.oneof(
  fc.record({ kind: fc.constant('hello' as const), siteId, consortium: bytes(32) }),
  fc.record({ kind: fc.constant('challenge' as const), challenge: bytes(32) }),
  fc.record({ kind: fc.constant('auth' as const), signature: bytes(64) }),
  fc.record({ kind: fc.constant('welcome' as const), siteId, clientId: u32 }),
  sessionStart,
  fc.record({ kind: fc.constant('secagg' as const), session: bytes(32), payload: fc.uint8Array({ minLength: 1, maxLength: 200 }) }),
  result,
  fc.record({ kind: fc.constant('abort' as const), session: bytes(32), code, message: text }),
  fc.record({ kind: fc.constant('error' as const), code, message: text }),
);

// ---- mutations of valid frames

type Mutation = (f: Uint8Array) => Uint8Array;
const bitFlip = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })).map(([i, bit]): Mutation => (f) => {
  const g = f.slice();
  if (g.length > 0) g[i % g.length]! ^= 1 << bit;
  return g;
});
const truncate = fc.nat().map((i): Mutation => (f) => f.subarray(0, i % (f.length + 1)));
const insert = fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([i, ins]): Mutation => (f) => {
  const at = i % (f.length + 1);
  return Uint8Array.from([...f.subarray(0, at), ...ins, ...f.subarray(at)]);
});
const overwrite = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([i, v]): Mutation => (f) => {
  const g = f.slice();
  if (g.length > 0) g[i % g.length] = v;
  return g;
});
const remove = fc.tuple(fc.nat(), fc.integer({ min: 1, max: 8 })).map(([i, n]): Mutation => (f) => {
  const at = i % (f.length + 1);
  return Uint8Array.from([...f.subarray(0, at), ...f.subarray(at + n)]);
});
const mutation = fc.array(fc.oneof(bitFlip, truncate, insert, overwrite, remove), { minLength: 1, maxLength: 4 });

describe('wire-v1 envelope: property tests', function () {
  this.timeout(60_000);

  it('valid envelopes round-trip exactly', () => {
    fc.assert(fc.property(envelope, (e) => {
      const f = encodeEnvelope(e);
      const d = decodeEnvelope(f, WIDE);
      // A session-start decodes with a task, empty when it carries none.
      expect(d).to.deep.equal(e.kind === 'session-start' ? { ...e, task: e.task ?? new Uint8Array(0) } : e);
      expect(Buffer.from(encodeEnvelope(d)).equals(f)).to.equal(true);
    }), { numRuns: 3000 });
  });

  it('random bytes never throw anything but a WIRE_ERR_* CodecError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (f) => decodesStrictly(f, WIDE) && decodesStrictly(f, TIGHT) && decodesStrictly(f, TASKED)), { numRuns: 3000 });
  });

  it('random bodies behind a valid header never throw anything but a WIRE_ERR_* CodecError', () => {
    const kinds = Object.values(BODY_FIELD);
    fc.assert(fc.property(fc.constantFrom(...kinds), fc.uint8Array({ maxLength: 120 }), (field, body) => {
      const f = Uint8Array.from([0x08, 0x01, field * 8 + 2, body.length, ...body]);
      return decodesStrictly(f, WIDE) && decodesStrictly(f, TIGHT) && decodesStrictly(f, TASKED);
    }), { numRuns: 10_000 });
  });

  it('bit flips, truncation, insertion, overwrites and removals of valid frames never throw anything but a WIRE_ERR_* CodecError', () => {
    fc.assert(fc.property(envelope, mutation, (e, ms) => {
      const f = ms.reduce((g, m) => m(g), encodeEnvelope(e));
      return decodesStrictly(f, WIDE) && decodesStrictly(f, TIGHT) && decodesStrictly(f, TASKED);
    }), { numRuns: 10_000 });
  });

  it('splices of two valid frames never throw anything but a WIRE_ERR_* CodecError', () => {
    fc.assert(fc.property(envelope, envelope, fc.nat(), fc.nat(), (a, b, i, j) => {
      const fa = encodeEnvelope(a), fb = encodeEnvelope(b);
      const f = Uint8Array.from([...fa.subarray(0, i % (fa.length + 1)), ...fb.subarray(j % (fb.length + 1))]);
      return decodesStrictly(f, WIDE) && decodesStrictly(f, TIGHT) && decodesStrictly(f, TASKED);
    }), { numRuns: 3000 });
  });
});
