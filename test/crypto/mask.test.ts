import { expect } from 'chai';
import { createCipheriv } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { nativeProvider } from '../../src/crypto/native.js';
import { portableProvider } from '../../src/crypto/portable.js';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { ValidationError } from '../../src/errors.js';
import { MaskAccumulator, WASM_ADD_BYTES, counterBlockAt, expandMask, type MaskTerm } from '../../src/crypto/mask.js';
import { maskedSum } from '../../src/crypto/aggregator.js';
import { PARALLEL_MIN_WORDS, maskPool, resolveThreads, windowBounds } from '../../src/crypto/_maskPool.js';
import { packVector, reduce } from '../../src/crypto/vector.js';

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
    // The range methods the worker pool uses refuse windows off the padded vector (16 words here).
    expect(code(() => acc.addMaskRange([], 0, 0, 32))).to.equal('SECAGG_ERR_BAD_MASK');
    expect(code(() => acc.addMaskRange([], 0, 8, 16))).to.equal('SECAGG_ERR_BAD_MASK');
    expect(code(() => acc.addMaskRange([], 2, 0, 16))).to.equal('SECAGG_ERR_BAD_MASK');
    expect(code(() => acc.addShared(new Int32Array(8), 0, 16))).to.equal('SECAGG_ERR_BAD_MASK');
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

  it('addPacked at b = 20 (the SIMD unpack-and-add kernel) equals addVector, with extreme values and wrapping sums', () => {
    for (const [dim, chunkBytes] of [[8, 64], [24, 64], [16384, 65536], [65576, 65536], [100003, 65536], [1000, 128]] as const) {
      // All-ones values, zeros and random ones: every bit of the 20 reaches the sum, and nothing beyond them.
      const v = reduce(randomVec(dim, `ap20-${dim}`), 20);
      for (let i = 0; i < dim; i += 3) v[i] = i % 2 === 0 ? 0xfffff : 0;
      const packed = packVector(v, 20);
      const want = new MaskAccumulator(dim, nativeProvider, { chunkBytes, backend: 'js' });
      want.addMask(keyOf('w'), 1); // a sum near 2^32 in places: the adds must wrap
      for (let r = 0; r < 3; r++) want.addVector(v, 1);
      for (const backend of ['js', 'wasm'] as const) {
        const a = new MaskAccumulator(dim, nativeProvider, { chunkBytes, backend });
        a.addMask(keyOf('w'), 1);
        for (let r = 0; r < 3; r++) a.addPacked(packed, 20, 1);
        expect(Array.from(a.result(32)), `dim=${dim} ${backend}`).to.deep.equal(Array.from(want.result(32)));
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

  it('addPacked at every b = 1..32, from every byte offset, equals addVector (and b = 32 straddling chunks)', () => {
    for (let b = 1; b <= 32; b++) {
      for (const [dim, chunkBytes] of [[37, 64], [1001, 256]] as const) {
        const v = reduce(randomVec(dim, `ap${b}-${dim}`), b);
        const packed = packVector(v, b);
        const ref = new MaskAccumulator(dim, nativeProvider, { chunkBytes });
        ref.addVector(v, 1);
        ref.addVector(v, 1);
        const want = Array.from(ref.result(b));
        for (const off of [1, 2, 3]) {
          const buf = new Uint8Array(packed.length + off);
          buf.set(packed, off);
          const a = new MaskAccumulator(dim, nativeProvider, { chunkBytes });
          a.addPacked(buf.subarray(off), b, 1);
          a.addPacked(packed, b, 1);
          expect(Array.from(a.result(b)), `b=${b} dim=${dim} off=${off}`).to.deep.equal(want);
        }
      }
    }
  });

  it('resultPacked equals packVector(result(b)); takeResult hands over the memory and finishes the accumulator', () => {
    const dim = 1003;
    for (const b of [1, 13, 20, 24, 32]) {
      const acc = new MaskAccumulator(dim, nativeProvider);
      acc.addMasks([{ key: keyOf('r1'), sign: 1 }, { key: keyOf('r2'), sign: -1 }]);
      const copy = acc.result(b);
      expect(Buffer.from(acc.resultPacked(b)).equals(Buffer.from(packVector(copy, b))), `b=${b}`).to.equal(true);
      const taken = acc.takeResult(b);
      expect(Array.from(taken)).to.deep.equal(Array.from(copy));
      expect(taken.length).to.equal(dim);
      for (const f of [() => acc.result(b), () => acc.takeResult(b), () => acc.addMask(keyOf('r3'), 1), () => acc.resultPacked(b),
        () => acc.addVector(new Uint32Array(dim), 1), () => acc.addPacked(new Uint8Array(Math.ceil((dim * b) / 8)), b, 1)]) {
        expect(f).to.throw(ValidationError, 'finished by takeResult()');
      }
      acc.clear(); // wipes the scratch only: the handed-over sum is the caller's
      expect(Array.from(taken)).to.deep.equal(Array.from(copy));
    }
  });

  it('maskedSum: result() is the sum, handed over; clear() after it keeps it; a finished aggregator refuses input', () => {
    const dim = 300, bits = 20;
    const agg = maskedSum(dim, bits, nativeProvider);
    const x = reduce(randomVec(dim, 'ms-x'), bits), y = reduce(randomVec(dim, 'ms-y'), bits);
    const wire = new Uint8Array(1 + packVector(x, bits).length);
    wire.set(packVector(x, bits), 1); // odd offset, as in a decoded message
    agg.addInput(wire.subarray(1));
    agg.addInput(packVector(y, bits));
    agg.removeMasks([{ key: keyOf('m'), sign: 1 }]);
    const sum = agg.result();
    agg.clear();
    expect(Array.from(sum)).to.deep.equal(refSum([[x, 1], [y, 1], [nodeMask(keyOf('m'), dim), 1]], dim, bits));
    expect(() => agg.addInput(packVector(y, bits))).to.throw(ValidationError, 'finished');
    try { agg.removeMasks([]); expect.fail('no throw'); } catch (e) { expect((e as ValidationError).code).to.equal('SECAGG_ERR_BAD_MASK'); }
  });

  it('counterBlockAt(w) continues the keystream at word w', () => {
    const key = keyOf('ctr');
    const whole = nodeMask(key, 64);
    for (const w of [0, 4, 8, 60]) {
      const part = new Uint8Array(16);
      nativeProvider.aes128Ctr(key, counterBlockAt(w)).fill(part);
      expect(Array.from(new Uint32Array(part.buffer))).to.deep.equal(Array.from(whole.subarray(w, w + 4)));
    }
    expect(Buffer.from(counterBlockAt(4 * 0x01020304)).toString('hex')).to.equal('00000000000000000000000001020304');
  });

  describe('both cores (worker pool)', () => {
    // Enough keystream for the pool to take it: 40 terms × 65 552 padded words > PARALLEL_MIN_WORDS.
    const dim = 65541;
    const terms: MaskTerm[] = Array.from({ length: 40 }, (_, i) => ({ key: keyOf(`w${i}`), sign: i % 3 === 0 ? -1 : 1 }));

    /**
     * Blocks the caller (inside its first window) until the job's window 1 has
     * left FREE, i.e. a worker has claimed it (window 0 is the caller's), or 10 s.
     * The job's control buffer is read from the message the pool posts.
     */
    function holdUntilWorkerClaims(pool: NonNullable<ReturnType<typeof maskPool>>): () => void {
      const [worker] = (pool as unknown as { workers: Set<{ postMessage(m: unknown): void }> }).workers;
      let ctrl: Int32Array | null = null;
      const post = worker!.postMessage;
      worker!.postMessage = function (m: unknown) {
        ctrl = new Int32Array((m as { ctrl: SharedArrayBuffer }).ctrl);
        worker!.postMessage = post;
        return post.call(this, m);
      };
      let first = true;
      return () => {
        if (!first || ctrl === null) return;
        first = false;
        for (let i = 0; i < 1000 && Atomics.load(ctrl, 2) === 0; i++) Atomics.wait(ctrl, 2, 0, 10);
      };
    }

    before(async function () {
      this.timeout(30_000);
      expect(terms.length * Math.ceil(dim / 16) * 16).to.be.greaterThan(PARALLEL_MIN_WORDS);
      const pool = maskPool()!;
      pool.grow(1);
      // Wait for a worker to load, so the tests below see it take windows.
      for (let i = 0; i < 600 && pool.ready < 1; i++) await new Promise((r) => setTimeout(r, 50));
      expect(pool.ready).to.be.greaterThan(0);
    });

    it('threads: 1 and 2 give bit-identical sums, equal to the one-key-at-a-time reference', () => {
      const ref = new MaskAccumulator(dim, nativeProvider, { threads: 1 });
      for (const t of terms) ref.addMask(t.key, t.sign);
      const want = Buffer.from(ref.result(32).buffer);
      for (const [threads, chunkBytes, backend] of [[1, 65536, 'wasm'], [2, 65536, 'wasm'], [2, 4096, 'js'], ['auto', 65536, 'auto']] as const) {
        const acc = new MaskAccumulator(dim, nativeProvider, { threads, chunkBytes, backend });
        acc.addVector(randomVec(dim, 'pool-x'), 1);
        acc.addMasks(terms);
        acc.addVector(randomVec(dim, 'pool-x'), -1);
        expect(Buffer.from(acc.result(32).buffer).equals(want), `threads=${threads} chunk=${chunkBytes} ${backend}`).to.equal(true);
      }
      expect(maskPool()!.size, 'one worker, reused across calls').to.equal(1);
      expect(Array.from(ref.result(32).subarray(0, 3))).to.deep.equal(refSum(terms.map((t) => [nodeMask(t.key, 3), t.sign]), 3, 32));
    });

    it('a worker takes windows while the caller works; the caller\'s keys are left as they were', () => {
      const pool = maskPool()!;
      const acc = new MaskAccumulator(dim, nativeProvider, { threads: 1 });
      const hold = holdUntilWorkerClaims(pool);
      const keys = terms.map((t) => t.key.slice());
      const done = pool.run({
        terms: keys.map((key, i) => ({ key, sign: terms[i]!.sign })), padded: Math.ceil(dim / 16) * 16, chunkBytes: 16384,
        expand: (lo, hi) => {
          hold();
          acc.addMaskRange(terms, lo, lo, hi);
        },
        addWindow: (src, lo, hi) => acc.addShared(src, lo, hi),
      }, 2);
      expect(done).to.be.greaterThan(0);
      const ref = new MaskAccumulator(dim, nativeProvider, { threads: 1 });
      ref.addMasks(terms);
      expect(Buffer.from(acc.result(32).buffer).equals(Buffer.from(ref.result(32).buffer))).to.equal(true);
      expect(keys.every((k) => k.some((x) => x !== 0)), 'the caller\'s keys are its own').to.equal(true);
    });

    it('the shared key buffer a job hands the workers is wiped when the job returns', () => {
      const pool = maskPool()!;
      const [worker] = (pool as unknown as { workers: Set<{ postMessage(m: unknown): void }> }).workers;
      const sent: { keys: SharedArrayBuffer; signs: SharedArrayBuffer }[] = [];
      const post = worker!.postMessage;
      worker!.postMessage = function (m: unknown) { sent.push(m as { keys: SharedArrayBuffer; signs: SharedArrayBuffer }); return post.call(this, m); };
      try {
        new MaskAccumulator(dim, nativeProvider, { threads: 2 }).addMasks(terms);
      } finally {
        worker!.postMessage = post;
      }
      expect(sent.length).to.equal(1);
      expect(new Uint8Array(sent[0]!.keys).length).to.equal(16 * terms.length);
      expect(new Uint8Array(sent[0]!.keys).every((x) => x === 0)).to.equal(true);
    });

    it('windows shrink as the work runs out (guided), in whole chunks, and cover the vector once', () => {
      expect(windowBounds(1_000_000, 16384, 2)).to.deep.equal([0, 262144, 458752, 606208, 720896, 802816, 868352, 917504, 950272, 966656, 983040, 999424, 1_000_000]);
      for (const [padded, chunk, threads] of [[16, 16, 2], [70000, 16384, 2], [2 ** 28, 16384, 8], [4096, 64, 3]] as const) {
        const b = windowBounds(padded, chunk, threads);
        expect(b[0]).to.equal(0);
        expect(b[b.length - 1]).to.equal(padded);
        for (let k = 1; k < b.length; k++) {
          const size = b[k]! - b[k - 1]!;
          expect(size).to.be.greaterThan(0);
          if (k < b.length - 1) expect(size % chunk).to.equal(0);
          if (k > 1) expect(size).to.be.at.most(b[1]!);
        }
      }
    });

    it('small work stays on the calling thread; thread counts are validated', () => {
      const pool = maskPool()!;
      const job = { terms, padded: 16, chunkBytes: 64, expand: () => { throw new Error('unused'); }, addWindow: () => { throw new Error('unused'); } };
      expect(pool.run(job, 2)).to.equal(-1); // one window: nothing to split
      expect(resolveThreads(3)).to.equal(3);
      expect(resolveThreads('auto')).to.equal(Math.min(8, availableParallelism()));
      expect(resolveThreads(16)).to.equal(16);
      for (const bad of [0, 17, 1.5, NaN, '2' as unknown as number]) {
        expect(() => new MaskAccumulator(4, nativeProvider, { threads: bad }), String(bad)).to.throw(ValidationError, '"threads" expected an integer in [1, 16]');
      }
    });

    it('a window a worker fails on is taken over by the caller; the pool is then retired', () => {
      const pool = maskPool()!;
      pool.grow(1);
      const seen: [number, number][] = [];
      const hold = holdUntilWorkerClaims(pool);
      // chunkBytes 100 is refused by the worker's accumulator, so every window it claims fails.
      const done = pool.run({
        terms, padded: 1000, chunkBytes: 100,
        expand: (lo, hi) => { hold(); seen.push([lo, hi]); },
        addWindow: () => { throw new Error('no worker window can succeed'); },
      }, 2);
      expect(done).to.equal(0);
      seen.sort((a, b) => a[0] - b[0]);
      // Every window exactly once, in order, covering [0, 1000).
      expect(seen[0]![0]).to.equal(0);
      for (let i = 1; i < seen.length; i++) expect(seen[i]![0]).to.equal(seen[i - 1]![1]);
      expect(seen[seen.length - 1]![1]).to.equal(1000);
      expect(pool.size).to.equal(0);
    });
  });
});

