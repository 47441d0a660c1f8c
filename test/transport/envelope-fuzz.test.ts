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
import { BODY_FIELD, frameOf, LEN, lenField, packed, tag, u32Field, varint } from '../../src/transport/vectors/raw.js';
import { concatBytes } from '../../src/crypto/_validate.js';

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

/**
 * The canonical-form check leaves a large bytes field (a masked input, a
 * sum) where it lies instead of re-encoding it. A frame that differs from
 * the canonical one only in how its fields are laid out around that field
 * must still be refused: every structural rewrite below of a canonical
 * secagg or result frame, whose large field is 64 bytes or more, is refused
 * (WIRE_ERR_NON_CANONICAL, or WIRE_ERR_BAD_FIELD where a repeated list read
 * twice no longer holds valid ids), and the canonical frame is accepted.
 */
describe('wire-v1 envelope: canonical form around a large bytes field', function () {
  this.timeout(120_000);
  type Field = { readonly id: number; readonly bytes: Uint8Array; readonly big?: true };
  const big = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
  /** A secagg or result body as its canonical fields, in increasing number. */
  const bodies: fc.Arbitrary<{ kind: 'secagg' | 'result'; fields: Field[] }> = fc.oneof(
    fc.record({ session: bytes(32), payload: fc.integer({ min: 64, max: 4096 }).chain(big), cp: fc.boolean(), root: bytes(32), sig: bytes(64) }).map((x) => ({
      kind: 'secagg' as const,
      fields: [
        { id: 1, bytes: lenField(1, x.session) }, { id: 2, bytes: lenField(2, x.payload), big: true as const },
        ...(x.cp ? [{ id: 3, bytes: u32Field(3, 7) }, { id: 4, bytes: lenField(4, x.root) }, { id: 5, bytes: lenField(5, x.sig) }] : []),
      ],
    })),
    fc.record({ session: bytes(32), words: fc.integer({ min: 16, max: 512 }), root: bytes(32), sig: bytes(64) }).chain((x) => big(4 * x.words).map((sum) => ({
      kind: 'result' as const,
      fields: [
        { id: 1, bytes: lenField(1, x.session) }, { id: 2, bytes: lenField(2, sum), big: true as const }, { id: 3, bytes: packed(3, [1, 2, 4]) },
        { id: 4, bytes: packed(4, [3]) }, { id: 5, bytes: u32Field(5, 9) }, { id: 6, bytes: lenField(6, x.root) }, { id: 7, bytes: lenField(7, x.sig) },
      ],
    }))),
  );
  const frame = (kind: 'secagg' | 'result', fields: readonly Field[]) => frameOf(BODY_FIELD[kind], concatBytes(...fields.map((f) => f.bytes)));
  const limits = WIDE;

  /** Structural rewrites, each giving a non-canonical layout of the same message (or of a message the decoder reads the same way). */
  const rewrite = fc.oneof(
    // The large field moved to another place among the others.
    fc.nat().map((k) => (fs: Field[]) => { const b = fs.findIndex((f) => f.big); const rest = fs.filter((f) => !f.big); const at = k % (rest.length + 1); const out = [...rest.slice(0, at), fs[b]!, ...rest.slice(at)]; return out.every((f, i) => f === fs[i]) ? null : out; }),
    // The large field twice (the same bytes), before or after its canonical place.
    fc.nat().map((k) => (fs: Field[]) => { const b = fs.find((f) => f.big)!; const at = k % (fs.length + 1); return [...fs.slice(0, at), b, ...fs.slice(at)]; }),
    // Another field twice.
    fc.nat().map((k) => (fs: Field[]) => { const others = fs.filter((f) => !f.big); const o = others[k % others.length]!; const at = k % (fs.length + 1); return [...fs.slice(0, at), o, ...fs.slice(at)]; }),
    // Two neighbouring fields swapped.
    fc.nat().map((k) => (fs: Field[]) => { const i = k % (fs.length - 1); const out = [...fs]; [out[i], out[i + 1]] = [out[i + 1]!, out[i]!]; return out; }),
    // The large field's length as a non-minimal varint.
    fc.integer({ min: 1, max: 3 }).map((extra) => (fs: Field[]) => fs.map((f) => {
      if (!f.big) return f;
      const data = bodyOfField(f.bytes);
      return { ...f, bytes: concatBytes(tag(f.id, LEN), varint(data.length, extra), data) };
    })),
    // An unknown field anywhere.
    fc.nat().map((k) => (fs: Field[]) => { const at = k % (fs.length + 1); return [...fs.slice(0, at), { id: 15, bytes: lenField(15, 'x') }, ...fs.slice(at)]; }),
  );
  /** The data of a length-delimited field with a one-byte tag. */
  function bodyOfField(f: Uint8Array): Uint8Array {
    let i = 1;
    while (f[i]! >= 0x80) i++;
    return f.subarray(i + 1);
  }

  it('accepts the canonical frame and refuses every rewrite of its layout', () => {
    fc.assert(fc.property(bodies, rewrite, ({ kind, fields }, r) => {
      const good = frame(kind, fields);
      const e = decodeEnvelope(good, limits);
      expect(Buffer.from(encodeEnvelope(e)).equals(good)).to.equal(true);
      const changed = r(fields);
      if (changed === null) return;
      const bad = frame(kind, changed);
      let code: string | undefined;
      try { decodeEnvelope(bad, limits); } catch (err) { code = (err as CodecError).code; }
      // Refused: as non-canonical, or earlier when the rewrite changes what the decoder reads (a repeated list read twice).
      expect(code !== undefined && WIRE.has(code), `a rewritten layout is refused (got ${String(code)})`).to.equal(true);
      if (!changed.some((f) => f.id === 3 || f.id === 4) || kind === 'secagg') expect(code).to.equal('WIRE_ERR_NON_CANONICAL');
    }), { numRuns: 600 });
  });
});
