import { expect } from 'chai';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { CodecError, ValidationError } from '../../src/errors.js';
import { checkBits, checkRange, packReduced, packVector, packedLength, reduce, unpackInto, unpackVector } from '../../src/crypto/vector.js';

/** Reference bit-stream packer: one bit at a time, straight from the definition. */
function refPack(vec: Uint32Array, b: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((b * vec.length) / 8));
  for (let i = 0; i < vec.length; i++) {
    for (let k = 0; k < b; k++) {
      const bit = Math.floor(vec[i]! / 2 ** k) % 2;
      const pos = i * b + k;
      out[pos >> 3] |= bit << (pos & 7);
    }
  }
  return out;
}

/** Reference bit-stream unpacker: value i is Σ_k bit(i·b + k)·2^k. */
function refUnpack(bytes: Uint8Array, b: number, m: number): number[] {
  return Array.from({ length: m }, (_, i) => {
    let v = 0;
    for (let k = 0; k < b; k++) {
      const pos = i * b + k;
      v += ((bytes[pos >> 3]! >> (pos & 7)) & 1) * 2 ** k;
    }
    return v;
  });
}

/** A copy of `bytes` at byte offset `off` of a fresh buffer (the wire decoder's payloads sit at odd offsets). */
function at(bytes: Uint8Array, off: number): Uint8Array {
  const buf = new Uint8Array(bytes.length + off + 3).fill(0xa5);
  buf.set(bytes, off);
  return buf.subarray(off, off + bytes.length);
}

/** Lengths that end on every position of a 32-value group (every tail and padding case), plus longer ones. */
const LENGTHS = [...Array.from({ length: 34 }, (_, i) => i), 63, 64, 65, 255, 1027];

function randomVec(m: number, b: number, seed: string): Uint32Array {
  const raw = new DeterministicRng(seed).bytes(4 * m);
  const v = new Uint32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + 4 * m));
  return reduce(v, b);
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('secagg/vector', () => {
  it('checkBits accepts 1..32 only', () => {
    for (let b = 1; b <= 32; b++) checkBits(b);
    for (const b of [0, 33, 1.5, NaN, -1]) expect(() => checkBits(b)).to.throw(ValidationError, '"b" expected an integer in [1, 32]');
  });

  it('reduce masks entries mod 2^b in place', () => {
    const v = new Uint32Array([0xffffffff, 0x12345678, 5]);
    expect(Array.from(reduce(v, 4))).to.deep.equal([15, 8, 5]);
    expect(Array.from(v)).to.deep.equal([15, 8, 5]);
    expect(Array.from(reduce(new Uint32Array([0xffffffff]), 32))).to.deep.equal([0xffffffff]);
    expect(Array.from(reduce(new Uint32Array([0xffffffff]), 31))).to.deep.equal([0x7fffffff]);
  });

  it('pack matches the bit-by-bit reference and round-trips for every b', () => {
    for (let b = 1; b <= 32; b++) {
      for (const m of [0, 1, 3, 7, 33]) {
        const v = randomVec(m, b, `v${b}-${m}`);
        const packed = packVector(v, b);
        expect(packed.length, `b=${b} m=${m}`).to.equal(Math.ceil((b * m) / 8));
        expect(packed.length).to.equal(packedLength(m, b));
        expect(hex(packed), `b=${b} m=${m}`).to.equal(hex(refPack(v, b)));
        expect(Array.from(unpackVector(packed, b, m))).to.deep.equal(Array.from(v));
      }
    }
  });

  it('every b = 1..32 and every tail: pack = bit-by-bit reference, unpack = reference, from any byte offset', () => {
    for (let b = 1; b <= 32; b++) {
      for (const m of LENGTHS) {
        const v = randomVec(m, b, `x${b}-${m}`);
        if (m > 2) { v[0] = b === 32 ? 0xffffffff : 2 ** b - 1; v[m - 1] = b === 32 ? 0xffffffff : 2 ** b - 1; } // all-ones at both ends
        const packed = packVector(v, b);
        const ref = refPack(v, b);
        expect(hex(packed), `b=${b} m=${m}`).to.equal(hex(ref));
        expect(packed.byteOffset).to.equal(0);
        expect(packed.buffer.byteLength, 'an exact buffer').to.equal(packed.length);
        for (const off of [0, 1, 2, 3]) {
          expect(Array.from(unpackVector(at(packed, off), b, m)), `b=${b} m=${m} off=${off}`).to.deep.equal(refUnpack(ref, b, m));
        }
      }
    }
  });

  it('packReduced packs each entry mod 2^b, from Uint32Array or Int32Array, with no range check', () => {
    for (let b = 1; b <= 32; b++) {
      for (const m of [0, 1, 5, 31, 33, 100]) {
        const raw = randomVec(m, 32, `r${b}-${m}`);
        const expected = packVector(reduce(raw.slice(), b), b);
        expect(hex(packReduced(raw, m, b)), `b=${b} m=${m}`).to.equal(hex(expected));
        expect(hex(packReduced(new Int32Array(raw.buffer), m, b))).to.equal(hex(expected));
      }
    }
    // Only the first n entries are packed.
    expect(hex(packReduced(new Uint32Array([0x1ff, 0x2ff, 0xabc]), 2, 8))).to.equal('ffff');
    expect(() => packReduced(new Uint32Array(1), 1, 33)).to.throw(ValidationError, '"b" expected an integer in [1, 32]');
    expect(() => packReduced(new Uint32Array(2), 3, 8)).to.throw(ValidationError, '"src" expected Uint32Array or Int32Array of length ≥ n=3');
    expect(() => packReduced(new Uint8Array(4) as unknown as Uint32Array, 1, 8)).to.throw(ValidationError, '"src" expected');
  });

  it('unpackInto ignores stale bits in the staging buffer and past the last value', () => {
    for (let b = 1; b <= 31; b++) {
      const m = 45;
      const v = randomVec(m, b, `s${b}`);
      const packed = packVector(v, b);
      const out = new Uint32Array(m).fill(0xdeadbeef);
      const staging = new Uint32Array(Math.ceil(packed.length / 4) + 1).fill(0xffffffff);
      unpackInto(at(packed, 3), b, m, out, staging);
      expect(Array.from(out), `b=${b}`).to.deep.equal(Array.from(v));
    }
  });

  it('pack refuses an entry ≥ 2^b at every b < 32, wherever it sits (unrolled groups and tail)', () => {
    for (let b = 1; b <= 31; b++) {
      for (const idx of [0, 5, 7, 8, 20, 36]) {
        const v = randomVec(37, b, `o${b}`);
        v[idx] = v[idx]! + 2 ** b; // one bit too many
        expect(() => packVector(v, b), `b=${b} idx=${idx}`).to.throw(ValidationError, `entries < 2^${b}, got ${v[idx]} at index ${idx}`);
      }
      const top = randomVec(9, b, `t${b}`);
      top[8] = 0x80000000; // the sign bit of an int32 must not hide it
      expect(() => packVector(top, b), `b=${b} top bit`).to.throw(ValidationError, 'at index 8');
    }
  });

  it('unpack refuses every wrong length and every set padding bit, at every b', () => {
    for (let b = 1; b <= 32; b++) {
      for (const m of [1, 3, 7, 9, 33]) {
        const packed = packVector(randomVec(m, b, `p${b}-${m}`), b);
        for (const len of [packed.length - 1, packed.length + 1]) {
          const wrong = new Uint8Array(len);
          wrong.set(packed.subarray(0, Math.min(len, packed.length)));
          try { unpackVector(wrong, b, m); expect.fail(`b=${b} m=${m} len=${len}`); } catch (e) {
            expect(e, `b=${b} m=${m} len=${len}`).to.be.instanceOf(CodecError);
            expect((e as CodecError).code).to.equal('SECAGG_ERR_BAD_VECTOR');
          }
        }
        const padBits = packed.length * 8 - b * m;
        for (let bit = 8 - padBits; bit < 8; bit++) {
          const bad = at(packed, 1);
          bad[bad.length - 1]! |= 1 << bit;
          expect(() => unpackVector(bad, b, m), `b=${b} m=${m} bit=${bit}`).to.throw(CodecError, 'padding');
        }
      }
    }
  });

  it('documented layout: little-endian bit order, LE words on the fast paths', () => {
    expect(hex(packVector(new Uint32Array([1, 2, 3]), 3))).to.equal('d100'); // 001 010 011 → bits 1,0,0,0,1,0,1,1,0
    expect(hex(packVector(new Uint32Array([0x1234, 0xabcd]), 16))).to.equal('3412cdab');
    expect(hex(packVector(new Uint32Array([0x01020304]), 32))).to.equal('04030201');
    expect(hex(packVector(new Uint32Array([7, 255]), 8))).to.equal('07ff');
    expect(hex(packVector(new Uint32Array([0x1ff, 0]), 9))).to.equal('ff0100');
  });

  it('pack rejects out-of-range entries and non-Uint32Array input', () => {
    expect(() => packVector(new Uint32Array([8]), 3)).to.throw(ValidationError, '"vec" expected Uint32Array of length 1 with entries < 2^3, got 8 at index 0');
    expect(() => packVector(new Uint8Array(2) as unknown as Uint32Array, 8)).to.throw(ValidationError);
  });

  it('unpack rejects wrong lengths and non-zero padding bits (CodecError)', () => {
    const good = packVector(new Uint32Array([1, 2, 3]), 3); // 9 bits → 2 bytes, 7 padding bits
    expect(() => unpackVector(good.subarray(0, 1), 3, 3)).to.throw(CodecError, 'expected Uint8Array of length 2');
    expect(() => unpackVector(new Uint8Array(3), 3, 3)).to.throw(CodecError);
    const padded = Uint8Array.from(good); padded[1] |= 0x80;
    try { unpackVector(padded, 3, 3); expect.fail('no throw'); } catch (e) {
      expect(e).to.be.instanceOf(CodecError);
      expect((e as CodecError).code).to.equal('SECAGG_ERR_BAD_VECTOR');
    }
    const padded2 = Uint8Array.from(good); padded2[1] |= 0x02; // lowest padding bit
    expect(() => unpackVector(padded2, 3, 3)).to.throw(CodecError, 'padding');
    expect(Array.from(unpackVector(Uint8Array.from([0xd1, 0x01]), 3, 3))).to.deep.equal([1, 2, 7]);
  });

  it('checkRange reports type, length and entry errors', () => {
    checkRange(new Uint32Array([3, 0]), 2, 2);
    expect(() => checkRange(new Uint32Array(3), 4, 8)).to.throw(ValidationError, '"input" expected Uint32Array of length 4 with entries < 2^8, got length=3');
    expect(() => checkRange(new Uint32Array([1, 4]), 2, 2)).to.throw(ValidationError, 'got 4 at index 1');
    expect(() => checkRange([1, 2] as unknown as Uint32Array, 2, 8)).to.throw(ValidationError, 'got [object Array]');
    try { checkRange(new Uint32Array(1), 2, 8); } catch (e) { expect((e as ValidationError).code).to.equal('SECAGG_ERR_BAD_VECTOR'); }
  });

  it('accumulating mod 2^32 then reducing equals summing mod 2^b', () => {
    for (const b of [1, 7, 16, 31]) {
      const acc = new Uint32Array(16);
      const ref = new Array<bigint>(16).fill(0n);
      for (let k = 0; k < 20; k++) {
        const v = randomVec(16, 32, `acc${b}-${k}`);
        const sign = k % 3 === 0 ? -1 : 1;
        for (let i = 0; i < 16; i++) {
          acc[i] = acc[i]! + sign * v[i]!;
          ref[i] = ref[i]! + BigInt(sign * v[i]!);
        }
      }
      const m = 1n << BigInt(b);
      expect(Array.from(reduce(acc, b))).to.deep.equal(ref.map((x) => Number(((x % m) + m) % m)));
    }
  });
});
