import { expect } from 'chai';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { DpError } from '../../src/errors.js';
import { centredLift, decodeSum, encodeUpdate, roundingNormBound, wrapMod, type EncodeParams } from '../../src/dp/encode.js';
import { quantizeSigma2 } from '../../src/dp/discrete-gaussian.js';

const seed = new Uint8Array(16).fill(3);

function sumMod(vs: Uint32Array[], bits: number): Uint32Array {
  const m = 2 ** bits;
  const out = new Uint32Array(vs[0]!.length);
  for (const v of vs) for (let i = 0; i < v.length; i++) out[i] = (out[i]! + v[i]!) % m;
  return out;
}

function update(dim: number, label: string, amp: number): Float64Array {
  const b = new DeterministicRng(label).bytes(dim);
  return Float64Array.from(b, (v) => amp * (v / 255 - 0.5));
}

function clipped(x: Float64Array, c: number): Float64Array {
  const n = Math.sqrt(x.reduce((s, v) => s + v * v, 0));
  return n > c ? x.map((v) => (v * c) / n) : x;
}

const base: EncodeParams = { clip: 1, scale: 1000, bits: 20, beta: Math.exp(-0.5), noise: { kind: 'none' }, rotationSeed: seed };

describe('dp/encode', () => {
  it('roundingNormBound follows KLS21: the inflated bound, capped by (c + √d)²', () => {
    const [c, d, beta] = [100, 1024, Math.exp(-0.5)];
    expect(roundingNormBound(c, d, beta) ** 2).to.be.closeTo(c * c + d / 4 + 1 * (c + 16), 1e-6);
    expect(roundingNormBound(c, d, 0)).to.be.closeTo(c + 32, 1e-9);
    // Small d and tiny β: the worst-case (c + √d)² is the smaller term.
    expect(roundingNormBound(0.01, 4, 1e-10)).to.be.closeTo(2.01, 1e-9);
  });

  it('wraps negatives mod 2^b and lifts them back (b = 8, 20, 32)', () => {
    const v = Float64Array.from([0, 1, -1, 127, -128, 5000, -5000]);
    expect(Array.from(wrapMod(v, 8))).to.deep.equal([0, 1, 255, 127, 128, 5000 % 256, 256 - (5000 % 256)]);
    expect(Array.from(centredLift(wrapMod(v.subarray(0, 5), 8), 8))).to.deep.equal([0, 1, -1, 127, -128]);
    expect(Array.from(centredLift(wrapMod(v, 20), 20))).to.deep.equal(Array.from(v));
    expect(Array.from(centredLift(wrapMod(v, 32), 32))).to.deep.equal(Array.from(v));
  });

  it('round trip without noise: decode(Σ encode) ≈ Σ clipped updates within the rounding error', () => {
    const n = 6;
    const dim = 1000;
    const ups = Array.from({ length: n }, (_, i) => update(dim, `u${i}`, i === 0 ? 1 : 0.05)); // site 0 is clipped
    const rng = new DeterministicRng('rt');
    const encs = ups.map((u) => encodeUpdate(u, base, rng));
    expect(encs[0]!.clipped).to.equal(true);
    expect(encs[0]!.clippedNorm).to.equal(1);
    expect(encs[1]!.clippedNorm).to.equal(encs[1]!.norm);
    expect(encs[1]!.clipped).to.equal(false);
    for (const e of encs) {
      expect(e.paddedDim).to.equal(1024);
      expect(e.roundedNorm).to.be.at.most(e.normBound);
      for (const v of e.encoded) expect(v).to.be.below(2 ** 20);
    }
    const est = decodeSum(sumMod(encs.map((e) => e.encoded), 20), dim, base);
    const truth = new Float64Array(dim);
    for (const u of ups) clipped(u, 1).forEach((v, i) => (truth[i]! += v));
    let err2 = 0;
    for (let i = 0; i < dim; i++) err2 += (est[i]! - truth[i]!) ** 2;
    const gamma = 1 / base.scale;
    // Worst case γ·n·√d; in expectation each padded coordinate has variance ≤ n/4 steps.
    expect(Math.sqrt(err2)).to.be.below(gamma * n * Math.sqrt(1024));
    expect(err2).to.be.below(1.5 * gamma * gamma * (n / 4) * 1024);
    expect(err2).to.be.above(0);
  });

  it('decodes a sum whose coordinates are negative and wrap around 2^b', () => {
    const dim = 64;
    const u = new Float64Array(dim).fill(-0.1); // norm 0.8 < clip
    const p = { ...base, bits: 16, scale: 2000 };
    const encs = [0, 1, 2].map(() => encodeUpdate(u, p, new DeterministicRng('neg')));
    const est = decodeSum(sumMod(encs.map((e) => e.encoded), 16), dim, p);
    for (const v of est) expect(v).to.be.closeTo(-0.3, (3 * 8) / 2000);
  });

  for (const kind of ['ddg', 'skellam'] as const) {
    it(`${kind} noise: the decoded error variance matches n·σ²·γ²`, () => {
      const n = 4;
      const dim = 4096;
      const sigma = 20;
      const p: EncodeParams = { ...base, scale: 100, noise: { kind, sigma } };
      const zero = new Float64Array(dim); // rounding of 0 is exact, so the error is pure noise
      const rng = new DeterministicRng(`noise-${kind}`);
      const encs = Array.from({ length: n }, () => encodeUpdate(zero, p, rng));
      expect(encs[0]!.noiseSigma2).to.equal(quantizeSigma2(sigma).value);
      const est = decodeSum(sumMod(encs.map((e) => e.encoded), 20), dim, p);
      const v = est.reduce((s, x) => s + x * x, 0) / dim;
      const expected = (n * sigma * sigma) / (p.scale * p.scale);
      expect(v / expected).to.be.within(0.93, 1.07);
    });
  }

  it('conditional rounding never exceeds the bound and fails cleanly when retries run out', () => {
    // A one-hot update rotated into d = 512 coordinates of ±1/√d, scaled to ±0.5: each rounds to
    // 0 or ±1 with probability 1/2, so ‖x̃‖² ~ Bin(512, 1/2) with mean c² + d/4 = 256, and β close
    // to 1 makes Δ₂² ≈ 256: an unconditioned rounding misses it about half the time.
    const p: EncodeParams = { ...base, scale: Math.sqrt(512) / 2, beta: 0.999999, maxRoundingTries: 1 };
    const u = new Float64Array(512);
    u[5] = 1;
    let failures = 0;
    for (let i = 0; i < 12; i++) {
      try {
        const e = encodeUpdate(u, p, new DeterministicRng(`try-${i}`));
        expect(e.roundedNorm).to.be.at.most(e.normBound);
      } catch (err) {
        expect(err).to.be.instanceOf(DpError).with.property('code', 'DP_ERR_ROUNDING_FAILED');
        failures++;
      }
    }
    expect(failures).to.be.within(1, 11);
    const retried = encodeUpdate(u, { ...p, maxRoundingTries: 200 }, new DeterministicRng('retry'));
    expect(retried.roundedNorm).to.be.at.most(retried.normBound);
  });

  it('is reproducible for a fixed seed', () => {
    const u = update(300, 'rep', 0.1);
    const p: EncodeParams = { ...base, noise: { kind: 'ddg', sigma: 5 } };
    const a = encodeUpdate(u, p, new DeterministicRng('same')).encoded;
    const b = encodeUpdate(u, p, new DeterministicRng('same')).encoded;
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).to.equal(true);
  });

  it('rejects bad input with DP_ERR_BAD_PARAM', () => {
    const u = new Float64Array(8);
    const rng = new DeterministicRng('bad');
    const cases: [Float32Array | Float64Array, Partial<EncodeParams>][] = [
      [new Float64Array(0), {}],
      [Float64Array.from([1, Number.NaN]), {}],
      [u, { bits: 0 }],
      [u, { bits: 33 }],
      [u, { clip: 0 }],
      [u, { scale: -1 }],
      [u, { beta: 1 }],
      [u, { noise: { kind: 'ddg' } }],
      [u, { noise: { kind: 'laplace' as 'none' } }],
      [u, { rotationSeed: new Uint8Array(4) }],
    ];
    for (const [x, over] of cases) {
      expect(() => encodeUpdate(x, { ...base, ...over }, rng), JSON.stringify(over)).to.throw(DpError).with.property('code', 'DP_ERR_BAD_PARAM');
    }
    expect(() => decodeSum(new Uint32Array(7), 8, base)).to.throw(DpError).with.property('code', 'DP_ERR_BAD_PARAM');
    expect(() => decodeSum(new Uint32Array(8).fill(2 ** 20), 8, base)).to.throw(DpError).with.property('code', 'DP_ERR_BAD_PARAM');
  });
});
