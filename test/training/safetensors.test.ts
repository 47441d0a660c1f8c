/**
 * The safetensors reader and writer: round trips, one file checked byte for
 * byte against the format's rules, every malformed case refused with
 * TRAIN_ERR_BAD_SAFETENSORS, a fuzz that nothing else escapes, and exact
 * F16/BF16/F64 decoding.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TallyError, TRAIN_CODES, ValidationError } from '../../src/errors.js';
import { encodeSafetensors, MAX_HEADER_BYTES, parseSafetensors, readSafetensors, writeSafetensors, type SafetensorsFile } from '../../src/training/safetensors.js';

const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

/** A file from a header (text, or an object to stringify) and a data buffer, with the true header length unless `n` is given. */
function file(header: string | object | Uint8Array, data: Uint8Array | number = new Uint8Array(0), n?: number | bigint): Uint8Array {
  const h = header instanceof Uint8Array ? header : utf8(typeof header === 'string' ? header : JSON.stringify(header));
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(n ?? h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

/** Little-endian bytes of 16-bit words. */
const u16le = (...w: number[]) => new Uint8Array(Uint16Array.from(w).buffer); // tests run on little-endian hosts

function refused(bytes: Uint8Array, message: RegExp): void {
  let err: unknown;
  try {
    parseSafetensors(bytes);
  } catch (e) {
    err = e;
  }
  expect(err, 'refused').to.be.instanceOf(ValidationError);
  expect((err as ValidationError).code).to.equal('TRAIN_ERR_BAD_SAFETENSORS');
  expect((err as Error).message).to.match(message);
}

const f32 = (name: string, shape: number[], begin: number) => ({ dtype: 'F32', shape, data_offsets: [begin, begin + 4 * shape.reduce((a, b) => a * b, 1)] });

describe('training/safetensors: round trip', () => {
  it('encodes and parses tensors, metadata, scalars and empty tensors, 8-byte aligned', () => {
    const tensors = [
      { name: 'z.weight', shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 1e-30, -0, Infinity]) },
      { name: 'scalar', shape: [], data: Float32Array.of(Math.PI) },
      { name: 'empty', shape: [0, 4], data: new Float32Array(0) },
      { name: 'ünïcode', shape: [1], data: Float32Array.of(NaN) },
    ];
    const bytes = encodeSafetensors(tensors, { format: 'pt', note: 'a "quoted" ✓ value' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8, 'header padded to a multiple of 8').to.equal(0);
    expect(bytes[8 + n - 1], 'padding is spaces or the closing brace').to.be.oneOf([0x20, 0x7d]);
    const f = parseSafetensors(bytes);
    expect(f.metadata).to.deep.equal({ format: 'pt', note: 'a "quoted" ✓ value' });
    // Sorted by UTF-8 name; offsets follow the same order.
    expect([...f.tensors.keys()]).to.deep.equal(['empty', 'scalar', 'z.weight', 'ünïcode']);
    for (const t of tensors) {
      const info = f.tensors.get(t.name)!;
      expect(info.dtype).to.equal('F32');
      expect(info.shape).to.deep.equal(t.shape);
      expect(Buffer.from(f.float32(t.name).buffer).equals(Buffer.from(t.data.buffer)), t.name).to.equal(true);
      expect(f.bytes(t.name).length).to.equal(4 * t.data.length);
    }
    expect(f.tensors.get('scalar')!.begin).to.equal(0);
    expect(f.tensors.get('ünïcode')!.end).to.equal(bytes.length - 8 - n);
  });

  it('float32() returns a copy, bytes() a view', () => {
    const f = parseSafetensors(encodeSafetensors([{ name: 'w', shape: [2], data: Float32Array.of(1, 2) }]));
    f.float32('w')[0] = 99;
    expect([...f.float32('w')]).to.deep.equal([1, 2]);
    expect(f.bytes('w').buffer).to.equal(f.bytes('w').buffer);
  });

  it('omits __metadata__ when there is none and is deterministic whatever the input order', () => {
    const a = { name: 'a', shape: [1], data: Float32Array.of(1) }, b = { name: 'b', shape: [1], data: Float32Array.of(2) };
    const x = encodeSafetensors([a, b]), y = encodeSafetensors([b, a], {});
    expect(Buffer.from(x).equals(Buffer.from(y))).to.equal(true);
    expect(Buffer.from(x).toString('latin1')).to.not.include('__metadata__');
    expect(parseSafetensors(x).metadata).to.deep.equal({});
  });

  it('writes atomically and reads back from disk', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-st-'));
    try {
      const path = join(dir, 'm.safetensors');
      writeSafetensors(path, [{ name: 'w', shape: [3], data: Float32Array.of(1, 2, 3) }], { k: 'v' });
      const second = [{ name: 'w', shape: [2], data: Float32Array.of(4, 5) }];
      writeSafetensors(path, second, { k: 'v2' });
      expect(readdirSync(dir), 'no temporary file left').to.deep.equal(['m.safetensors']);
      expect(Buffer.from(readFileSync(path)).equals(Buffer.from(encodeSafetensors(second, { k: 'v2' })))).to.equal(true);
      const f = readSafetensors(path);
      expect(f.metadata).to.deep.equal({ k: 'v2' });
      expect([...f.float32('w')]).to.deep.equal([4, 5]);
      expect(() => readSafetensors(join(dir, 'missing.safetensors'))).to.throw(ValidationError, /cannot read .*missing\.safetensors/);
      writeFileSync(join(dir, 'bad.safetensors'), new Uint8Array(3));
      expect(() => readSafetensors(join(dir, 'bad.safetensors'))).to.throw(ValidationError, /bad\.safetensors: not a valid safetensors file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('training/safetensors: the exact encoding', () => {
  it('matches a file assembled by hand from the format rules', () => {
    const header = '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}';
    expect(header.length).to.equal(138); // counted by hand: 138 bytes, so 6 spaces of padding to 144
    const expected = Buffer.concat([
      Buffer.from([144, 0, 0, 0, 0, 0, 0, 0]), // u64le header length
      Buffer.from(header, 'ascii'),
      Buffer.from('      ', 'ascii'),
      Buffer.from([0x00, 0x00, 0x00, 0x3f]), // a = 0.5
      Buffer.from([0x00, 0x00, 0x80, 0x3f]), // b[0] = 1
      Buffer.from([0x00, 0x00, 0x00, 0xc0]), // b[1] = -2
    ]);
    const got = encodeSafetensors([
      { name: 'b', shape: [2], data: Float32Array.of(1, -2) },
      { name: 'a', shape: [], data: Float32Array.of(0.5) },
    ], { format: 'pt' });
    expect(Buffer.from(got).toString('hex')).to.equal(expected.toString('hex'));
    expect(got.length).to.equal(164);
  });
});

describe('training/safetensors: malformed files are refused', () => {
  const ok = { a: f32('a', [2], 0) };
  const cases: [string, Uint8Array, RegExp][] = [
    ['an empty file', new Uint8Array(0), /0 bytes, shorter than the 8-byte header length/],
    ['a 7-byte file', new Uint8Array(7), /7 bytes/],
    ['a header length beyond the file', file('{}', 0, 3), /header length is 3 bytes, but only 2 follow/],
    ['a header length over 100 MB', file('{}', 0, MAX_HEADER_BYTES + 1), /over the format's limit of 100000000/],
    ['a header length with the high word set', file('{}', 0, 2n ** 63n + 2n), /over the format's limit/],
    ['a zero header length', file(new Uint8Array(0)), /must start with '\{'/],
    ['invalid UTF-8', file(new Uint8Array([0x7b, 0xff, 0x7d])), /not valid UTF-8/],
    ['a byte-order mark', file(new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d])), /must start with '\{'/],
    ['a header not starting with {', file(' {}'), /must start with '\{'/],
    ['a JSON array', file('[]'), /must start with '\{'/],
    ['invalid JSON', file('{"a":}'), /not valid JSON/],
    ['text after the JSON', file('{} x'), /not valid JSON/],
    ['an unknown dtype', file({ a: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, 1), /tensor "a": dtype "F8_E4M3" is not one tally reads/],
    ['a lowercase dtype', file({ a: { dtype: 'f32', shape: [1], data_offsets: [0, 4] } }, 4), /dtype "f32"/],
    ['a shape that is not an array', file({ a: { dtype: 'F32', shape: 2, data_offsets: [0, 8] } }, 8), /tensor "a": shape must be an array of non-negative integers, got 2/],
    ['a negative dimension', file('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}'), /the number -1 in "a" → "shape" is not a plain non-negative integer/],
    ['a fractional dimension', file('{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}', 8), /the number 2.5 in "a" → "shape"/],
    ['a dimension written 2.0', file('{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}', 8), /the number 2.0/],
    ['a dimension written 2e0', file('{"a":{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}}', 8), /the number 2e0/],
    ['a dimension past 2^53', file('{"a":{"dtype":"F32","shape":[9007199254740993],"data_offsets":[0,8]}}', 8), /tensor "a": shape must be an array of non-negative integers/],
    ['a string dimension', file({ a: { dtype: 'F32', shape: ['2'], data_offsets: [0, 8] } }, 8), /tensor "a": shape/],
    ['an element count past 2^53', file({ a: { dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 8] } }, 8), /tensor "a": shape .* more elements than any file/],
    ['a byte size that is not product(shape)·itemsize', file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, 4), /tensor "a": F32 of shape \[2\] is 8 bytes, but data_offsets \[0, 4\] span 4/],
    ['a byte size of an F16 tensor', file({ a: { dtype: 'F16', shape: [3], data_offsets: [0, 8] } }, 8), /F16 of shape \[3\] is 6 bytes/],
    ['offsets that end before they begin', file({ a: { dtype: 'U8', shape: [0], data_offsets: [4, 0] } }, 4), /tensor "a": data_offsets \[4, 0\] end before they begin/],
    ['data_offsets of three numbers', file({ a: { dtype: 'U8', shape: [1], data_offsets: [0, 1, 2] } }, 1), /tensor "a": data_offsets must be \[begin, end\]/],
    ['overlapping tensors', file({ a: f32('a', [2], 0), b: f32('b', [2], 4) }, 12), /tensor "b" at \[4, 12\] overlaps the tensor before it, which ends at 8/],
    ['a hole between tensors', file({ a: f32('a', [1], 0), b: f32('b', [1], 8) }, 12), /hole of 4 bytes at 4, before tensor "b"/],
    ['a hole at the start', file({ a: f32('a', [1], 4) }, 8), /hole of 4 bytes at 0, before tensor "a"/],
    ['bytes after the last tensor', file(ok, 9), /1 bytes after the last tensor/],
    ['data that ends before the last tensor', file(ok, 7), /the tensors need 8 bytes of data, but the file holds 7/],
    ['duplicate tensor names', file(`{"a":${JSON.stringify(ok.a)},"a":${JSON.stringify(ok.a)}}`, 8), /the key "a" appears twice at the top level/],
    ['duplicate names written differently', file(`{"a":${JSON.stringify(ok.a)},"\\u0061":${JSON.stringify(ok.a)}}`, 8), /the key "a" appears twice/],
    ['a duplicate field of a tensor', file('{"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 8), /the key "dtype" appears twice in "a"/],
    ['a duplicate metadata key', file('{"__metadata__":{"k":"1","k":"2"}}'), /the key "k" appears twice in "__metadata__"/],
    ['a non-string metadata value', file({ __metadata__: { k: 1 } }), /"__metadata__" value "k" must be a string, got 1/],
    ['a nested metadata value', file({ __metadata__: { k: { x: 'y' } } }), /"__metadata__" value "k" must be a string/],
    ['metadata that is an array', file({ __metadata__: ['x'] }), /"__metadata__" must be an object of strings/],
    ['null metadata', file({ __metadata__: null }), /"__metadata__" must be an object of strings/],
    ['a tensor entry that is not an object', file({ a: [1] }), /tensor "a": expected an object/],
    ['a missing field', file({ a: { dtype: 'F32', shape: [0] } }), /tensor "a": missing field "data_offsets"/],
    ['an unknown field', file({ a: { ...f32('a', [1], 0), offsets: 1 } }, 4), /tensor "a": unknown field "offsets"/],
  ];
  for (const [what, bytes, message] of cases) {
    it(`refuses ${what}`, () => refused(bytes, message));
  }

  it('accepts the smallest valid file and trailing-space padding', () => {
    expect(parseSafetensors(file('{}')).tensors.size).to.equal(0);
    expect(parseSafetensors(file('{}      ')).tensors.size).to.equal(0);
    expect(parseSafetensors(file({ a: f32('a', [2], 0) }, 8)).tensors.get('a')!.shape).to.deep.equal([2]);
  });

  it('accepts tensors listed in any order in the header (the data order is by offset)', () => {
    const f = parseSafetensors(file(`{"b":${JSON.stringify(f32('b', [1], 4))},"a":${JSON.stringify(f32('a', [1], 0))}}`, new Uint8Array([0, 0, 0x80, 0x3f, 0, 0, 0, 0x40])));
    expect([...f.tensors.keys()]).to.deep.equal(['a', 'b']);
    expect([...f.float32('a'), ...f.float32('b')]).to.deep.equal([1, 2]);
  });

  it('refuses float32() of an integer tensor and of an unknown name', () => {
    const f = parseSafetensors(file({ i: { dtype: 'I32', shape: [1], data_offsets: [0, 4] } }, 4));
    expect(() => f.float32('i')).to.throw(ValidationError, /tensor "i" is I32, not a float tensor/);
    expect(() => f.bytes('nope')).to.throw(ValidationError, /no tensor named "nope"/);
    expect(() => parseSafetensors('x' as unknown as Uint8Array)).to.throw(ValidationError, /must be a Uint8Array/);
  });
});

describe('training/safetensors: the encoder refuses what would not be a valid file', () => {
  const t = (name: string, shape: number[], n: number) => ({ name, shape, data: new Float32Array(n) });
  const cases: [string, () => unknown, RegExp][] = [
    ['a duplicate name', () => encodeSafetensors([t('a', [1], 1), t('a', [1], 1)]), /"a" appears twice/],
    ['the reserved name', () => encodeSafetensors([t('__metadata__', [1], 1)]), /other than "__metadata__"/],
    ['a shape of the wrong size', () => encodeSafetensors([t('a', [2, 2], 3)]), /shape \[2, 2\] holds 4 values, data has 3/],
    ['a negative dimension', () => encodeSafetensors([t('a', [-1], 0)]), /shape must be an array of non-negative integers/],
    ['data that is not a Float32Array', () => encodeSafetensors([{ name: 'a', shape: [1], data: [1] as unknown as Float32Array }]), /data must be a Float32Array/],
    ['a non-string metadata value', () => encodeSafetensors([], { k: 1 as unknown as string }), /metadata value "k" must be a string/],
  ];
  for (const [what, fn, message] of cases) {
    it(`refuses ${what}`, () => {
      expect(fn).to.throw(ValidationError, message).with.property('code', 'TRAIN_ERR_BAD_SAFETENSORS');
    });
  }
});

describe('training/safetensors: float decoding', () => {
  it('decodes F16 exactly: normals, subnormals, zeros, infinities, NaN', () => {
    const cases: [number, number][] = [
      [0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0x3555, 0.333251953125], [0x0400, 2 ** -14],
      [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24], [0x8001, -(2 ** -24)], [0x0000, 0], [0x8000, -0],
      [0x7c00, Infinity], [0xfc00, -Infinity], [0x7e00, NaN], [0xfe01, NaN],
    ];
    const f = parseSafetensors(file({ h: { dtype: 'F16', shape: [cases.length], data_offsets: [0, 2 * cases.length] } }, u16le(...cases.map((c) => c[0]))));
    const got = f.float32('h');
    cases.forEach(([bits, want], i) => expect(Object.is(got[i], want), `0x${bits.toString(16)} → ${got[i]}, want ${want}`).to.equal(true));
  });

  it('decodes BF16 exactly (the top half of a float32)', () => {
    const cases: [number, number][] = [
      [0x3f80, 1], [0xc000, -2], [0x4049, 3.140625], [0x7f7f, 3.3895313892515355e38], [0x0080, 2 ** -126],
      [0x0001, 2 ** -133], [0x8000, -0], [0x7f80, Infinity], [0xff80, -Infinity], [0x7fc0, NaN],
    ];
    const f = parseSafetensors(file({ b: { dtype: 'BF16', shape: [cases.length], data_offsets: [0, 2 * cases.length] } }, u16le(...cases.map((c) => c[0]))));
    const got = f.float32('b');
    cases.forEach(([bits, want], i) => expect(Object.is(got[i], want), `0x${bits.toString(16)} → ${got[i]}, want ${want}`).to.equal(true));
  });

  it('rounds F64 to the nearest float32, and reads tensors at unaligned offsets', () => {
    const values = [0.1, -1 / 3, 1e300, 2 ** -149];
    const data = new Uint8Array(1 + 8 * values.length);
    data.set(new Uint8Array(Float64Array.from(values).buffer), 1);
    const f = parseSafetensors(file({ pad: { dtype: 'U8', shape: [1], data_offsets: [0, 1] }, d: { dtype: 'F64', shape: [2, 2], data_offsets: [1, 33] } }, data));
    expect([...f.float32('d')]).to.deep.equal(values.map(Math.fround));
    expect(f.bytes('pad').length).to.equal(1);
  });
});

describe('training/safetensors: fuzz (only TRAIN_ERR_BAD_SAFETENSORS escapes)', () => {
  /** Parses `bytes` and reads every tensor; true unless something other than the code escapes. */
  function strict(bytes: Uint8Array): boolean {
    let f: SafetensorsFile;
    try {
      f = parseSafetensors(bytes);
    } catch (err) {
      if (err instanceof TallyError && err.code === 'TRAIN_ERR_BAD_SAFETENSORS') return true;
      throw err;
    }
    for (const [name, t] of f.tensors) {
      expect(f.bytes(name).length).to.equal(t.end - t.begin);
      if (['F32', 'F16', 'BF16', 'F64'].includes(t.dtype)) expect(f.float32(name).length).to.equal(t.shape.reduce((a, b) => a * b, 1));
    }
    return true;
  }

  const valid = encodeSafetensors([
    { name: 'w', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
    { name: 'b', shape: [3], data: Float32Array.from([7, 8, 9]) },
  ], { format: 'pt' });

  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), strict), { numRuns: 2000 });
  });

  it('random bytes after a plausible header length', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.nat(220), (body, n) => strict(file(body, 0, n))), { numRuns: 2000 });
  });

  it('a valid file with bytes changed, cut or added', () => {
    const mutation = fc.oneof(
      fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }).map((edits) => {
        const b = valid.slice();
        for (const [at, v] of edits) b[at] = v;
        return b;
      }),
      fc.nat(valid.length).map((n) => valid.slice(0, n)),
      fc.uint8Array({ minLength: 1, maxLength: 16 }).map((tail) => Buffer.concat([valid, tail])),
    );
    fc.assert(fc.property(mutation, (b) => strict(new Uint8Array(b))), { numRuns: 3000 });
  });

  it('random headers over random data', () => {
    const dim = fc.oneof(fc.nat(4), fc.constant(-1), fc.constant(2.5), fc.constant(2 ** 53), fc.constant('1'));
    const entry = fc.record({
      dtype: fc.constantFrom('F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL', 'U16', 'x', 3),
      shape: fc.oneof(fc.array(dim, { maxLength: 3 }), fc.constant(null)),
      data_offsets: fc.oneof(fc.tuple(fc.nat(64), fc.nat(64)), fc.array(fc.nat(64), { maxLength: 3 })),
    }, { requiredKeys: [] });
    const header = fc.dictionary(fc.constantFrom('a', 'b', 'c', '__metadata__', 'd.weight'), fc.oneof(entry, fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.nat()))), { maxKeys: 4 });
    fc.assert(fc.property(header, fc.nat(64), fc.nat(7), (h, data, pad) => strict(file(JSON.stringify(h) + ' '.repeat(pad), data))), { numRuns: 3000 });
  });

  it('random JSON headers', () => {
    fc.assert(fc.property(fc.json(), fc.nat(16), (text, data) => strict(file(text, data))), { numRuns: 1000 });
  });

  it('valid random files round-trip', () => {
    const tensor = fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), fc.array(fc.nat(3), { maxLength: 3 }));
    fc.assert(fc.property(fc.uniqueArray(tensor, { selector: (t) => t[0], maxLength: 5 }).filter((ts) => ts.every((t) => t[0] !== '__metadata__')), (ts) => {
      const tensors = ts.map(([name, shape]) => ({ name, shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i - 1.5) }));
      const f = parseSafetensors(encodeSafetensors(tensors));
      for (const t of tensors) expect([...f.float32(t.name)]).to.deep.equal([...t.data]);
      return f.tensors.size === tensors.length;
    }), { numRuns: 300 });
  });
});

describe('docs/training.md', () => {
  it('has one Error codes row per TRAIN code of src/errors.ts', () => {
    const doc = readFileSync(new URL('../../../docs/training.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('\n## Error codes'));
    const rows = section.split('\n').filter((l) => l.startsWith('| `TRAIN_ERR_')).map((l) => /^\| `(TRAIN_ERR_[A-Z_]+)`/.exec(l)![1]);
    expect([...rows].sort()).to.deep.equal([...TRAIN_CODES].sort());
  });
});
