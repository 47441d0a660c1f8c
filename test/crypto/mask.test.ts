import { expect } from 'chai';
import { createCipheriv } from 'node:crypto';
import { nativeProvider } from '../../src/crypto/native.js';
import { portableProvider } from '../../src/crypto/portable.js';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { ValidationError } from '../../src/errors.js';
import { MaskAccumulator, WASM_ADD_BYTES, expandMask } from '../../src/crypto/mask.js';
import { packVector } from '../../src/crypto/vector.js';

const WebAssemblyValidate = (b: Uint8Array): boolean =>
  (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } }).WebAssembly.validate(b);
const keyOf = (s: string): Uint8Array => new DeterministicRng(`key-${s}`).bytes(16);

/** Straightforward reference: one createCipheriv over dim·4 zero bytes, LE words. */
function nodeMask(key: Uint8Array, dim: number): Uint32Array {
  const ks = createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(dim * 4));
  const out = new Uint32Array(dim);
  for (let i = 0; i < dim; i++) out[i] = ks.readUInt32LE(4 * i);
  return out;
}

function randomVec(dim: number, seed: string): Uint32Array {
  const b = new DeterministicRng(seed).bytes(dim * 4);
  return new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + dim * 4));
}

/** Σ sign·vec mod 2^b with BigInt, the slow obvious way. */
function refSum(terms: [Uint32Array, number][], dim: number, b: number): number[] {
  const m = 1n << BigInt(b);
  return Array.from({ length: dim }, (_, i) => {
    let s = 0n;
    for (const [v, sign] of terms) s += BigInt(sign) * BigInt(v[i]!);
    return Number(((s % m) + m) % m);
  });
}

describe('secagg/mask', () => {
  it('expandMask equals AES-128-CTR(key, 0) read as little-endian uint32 (node:crypto reference)', () => {
    for (const dim of [0, 1, 3, 4, 5, 1000, 16389]) {
      const k = keyOf(`e${dim}`);
      expect(Array.from(expandMask(k, dim, nativeProvider)), `dim=${dim}`).to.deep.equal(Array.from(nodeMask(k, dim)));
    }
    expect(Array.from(expandMask(keyOf('p'), 77, portableProvider))).to.deep.equal(Array.from(nodeMask(keyOf('p'), 77)));
  });

  it('the WebAssembly SIMD kernel validates and is the default on Node', () => {
    expect(WebAssemblyValidate(WASM_ADD_BYTES)).to.equal(true);
    expect(new MaskAccumulator(8, nativeProvider).backend).to.equal('wasm');
  });

  for (const backend of ['wasm', 'js'] as const) {
    describe(`MaskAccumulator (${backend} kernel)`, () => {
      it('uses the requested kernel', () => {
        expect(new MaskAccumulator(8, nativeProvider, { backend }).backend).to.equal(backend);
      });

      it('x + m − m = x exactly, with chunk boundaries at odd dims', () => {
        for (const [dim, chunkBytes] of [[1, 64], [17, 64], [1000, 256], [70001, 65536], [33, 128]] as const) {
          const acc = new MaskAccumulator(dim, nativeProvider, { backend, chunkBytes });
          const x = randomVec(dim, `x${dim}`);
          acc.addVector(x, 1);
          acc.addMask(keyOf('a'), 1);
          acc.addMask(keyOf('b'), -1);
          acc.addMasks([{ key: keyOf('a'), sign: -1 }, { key: keyOf('b'), sign: 1 }]);
          expect(Array.from(acc.result(32)), `dim=${dim} chunk=${chunkBytes}`).to.deep.equal(Array.from(x));
        }
      });

      it('matches the BigInt reference sum for mixed signs and b < 32', () => {
        const dim = 5003;
        const keys = ['k1', 'k2', 'k3', 'k4'].map(keyOf);
        const signs = [1, -1, -1, 1] as const;
        const v1 = randomVec(dim, 'v1'), v2 = randomVec(dim, 'v2');
        for (const b of [1, 8, 13, 31, 32]) {
          const acc = new MaskAccumulator(dim, nativeProvider, { backend, chunkBytes: 1024 });
          acc.addVector(v1, 1);
          acc.addMasks(keys.map((key, i) => ({ key, sign: signs[i]! })));
          acc.addVector(v2, -1);
          const terms: [Uint32Array, number][] = [[v1, 1], [v2, -1], ...keys.map((k, i): [Uint32Array, number] => [nodeMask(k, dim), signs[i]!])];
          expect(Array.from(acc.result(b)), `b=${b}`).to.deep.equal(refSum(terms, dim, b));
        }
      });

      it('result() does not consume the accumulator; clear() zeroes it', () => {
        const acc = new MaskAccumulator(10, nativeProvider, { backend });
        acc.addMask(keyOf('c'), 1);
        expect(Array.from(acc.result(32))).to.deep.equal(Array.from(nodeMask(keyOf('c'), 10)));
        expect(Array.from(acc.result(8))).to.deep.equal(Array.from(nodeMask(keyOf('c'), 10)).map((w) => w & 0xff));
        acc.clear();
        expect(Array.from(acc.result(32))).to.deep.equal(new Array(10).fill(0));
      });
    });
  }

  it('the two kernels and the default chunk size agree', () => {
    const dim = 100003;
    const out = (['wasm', 'js'] as const).map((backend) => {
      const acc = new MaskAccumulator(dim, nativeProvider, { backend });
      acc.addMasks([{ key: keyOf('x'), sign: 1 }, { key: keyOf('y'), sign: -1 }, { key: keyOf('z'), sign: -1 }]);
      return acc.result(20);
    });
    expect(Buffer.from(out[0]!.buffer).equals(Buffer.from(out[1]!.buffer))).to.equal(true);
    const ref = refSum([[nodeMask(keyOf('x'), 50), 1], [nodeMask(keyOf('y'), 50), -1], [nodeMask(keyOf('z'), 50), -1]], 50, 20);
    expect(Array.from(out[0]!.subarray(0, 50))).to.deep.equal(ref);
  });

  it('rejects bad keys, signs, vectors, dims and chunk sizes', () => {
    const acc = new MaskAccumulator(4, nativeProvider);
    const code = (f: () => unknown): string => {
      try { f(); } catch (e) { expect(e).to.be.instanceOf(ValidationError); return (e as ValidationError).code; }
      return 'no throw';
    };
    expect(code(() => acc.addMask(new Uint8Array(15), 1))).to.equal('SECAGG_ERR_BAD_MASK');
    expect(code(() => acc.addMask(keyOf('a'), 0 as 1))).to.equal('SECAGG_ERR_BAD_MASK');
    expect(code(() => acc.addVector(new Uint32Array(5), 1))).to.equal('SECAGG_ERR_BAD_VECTOR');
    expect(code(() => new MaskAccumulator(-1, nativeProvider))).to.equal('SECAGG_ERR_BAD_MASK');
    expect(code(() => new MaskAccumulator(4, nativeProvider, { chunkBytes: 100 }))).to.equal('SECAGG_ERR_BAD_MASK');
    expect(code(() => expandMask(new Uint8Array(32), 4, nativeProvider))).to.equal('SECAGG_ERR_BAD_MASK');
    expect(code(() => acc.result(0))).to.equal('SECAGG_ERR_BAD_VECTOR');
    expect(() => acc.addMask(new Uint8Array(15), 1)).to.throw('"key" expected Uint8Array of length 16, got length=15');
  });

  it('addPacked equals addVector of the unpacked vector, for every width and chunk boundary', () => {
    for (const [dim, b, chunkBytes] of [[1000, 32, 64], [1000, 17, 128], [4097, 8, 256], [333, 1, 64], [70000, 16, 65536], [70001, 32, 65536]] as const) {
      for (const backend of ['js', 'wasm'] as const) {
        const v = randomVec(dim, `packed${dim}`).map((x) => (b === 32 ? x : x % 2 ** b));
        const packed = packVector(v, b);
        // An unaligned view exercises the copy path of the b = 32 fast path.
        const shifted = new Uint8Array(packed.length + 1);
        shifted.set(packed, 1);
        const a = new MaskAccumulator(dim, nativeProvider, { chunkBytes, backend });
        const c = new MaskAccumulator(dim, nativeProvider, { chunkBytes, backend });
        a.addMask(keyOf('p'), 1);
        c.addMask(keyOf('p'), 1);
        a.addPacked(shifted.subarray(1), b, 1);
        a.addPacked(packed, b, -1);
        a.addPacked(packed, b, 1);
        c.addVector(v, 1);
        expect(Array.from(a.result(b)), `dim=${dim} b=${b} ${backend}`).to.deep.equal(Array.from(c.result(b)));
      }
    }
  });

  it('addPacked refuses a wrong length or set padding bits before touching the sum', () => {
    const acc = new MaskAccumulator(10, nativeProvider);
    acc.addVector(Uint32Array.from({ length: 10 }, (_, i) => i), 1);
    const packed = packVector(new Uint32Array(10).fill(5), 15); // 150 bits: 2 padding bits
    const bad = packed.slice();
    bad[bad.length - 1]! |= 0x80;
    expect(() => acc.addPacked(packed.subarray(1), 15, 1)).to.throw(/expected Uint8Array of length 19/);
    expect(() => acc.addPacked(bad, 15, 1)).to.throw(/padding/);
    expect(Array.from(acc.result(15))).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});
