import { expect } from 'chai';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { CodecError, ValidationError } from '../../src/errors.js';
import { checkBits, checkRange, packVector, packedLength, reduce, unpackVector } from '../../src/crypto/vector.js';

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
