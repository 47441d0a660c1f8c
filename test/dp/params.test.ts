/** The noise and wrap arithmetic behind planRound (params.ts). */
import { expect } from 'chai';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { DpError } from '../../src/errors.js';
import { decodeSum, encodeUpdate } from '../../src/dp/encode.js';
import { largestSafeScale, siteVariance, wrapBound, type WrapSetting } from '../../src/dp/params.js';
import { encodeParams, planRound } from '../../src/dp/plan.js';

const s: WrapSetting = { kind: 'ddg', clip: 1, paddedDim: 2 ** 20, threshold: 80, clients: 100, bits: 20, noiseMultiplier: 1 };

describe('dp/params', () => {
  it('siteVariance is (z·C·scale)²/t rounded up onto the sampler grid, and refuses σ beyond 2^26', () => {
    // z·C·S/√t = 1·1·400/√80 = √2000: σ² = 2000 exactly on the grid (den 65536).
    expect(siteVariance(s, 400)).to.deep.equal({ num: 2000 * 65536, den: 65536, value: 2000 });
    // σ² = 1/3 is not on the grid: ⌈65536/3⌉ = 21846.
    expect(siteVariance({ ...s, threshold: 3 }, 1)).to.deep.equal({ num: 21846, den: 65536, value: 21846 / 65536 });
    expect(() => siteVariance({ ...s, threshold: 1 }, 2 ** 26 + 1)).to.throw(DpError, /2\^26/).with.property('code', 'DP_ERR_BAD_PARAM');
  });

  it('wrapBound: the ddg closed form 2d·exp(−a²/(2(v + nσ²))), and Skellam above it', () => {
    const scale = 100;
    const v = (100 * scale) ** 2 / s.paddedDim;
    const s2 = siteVariance(s, scale).value;
    const a = 2 ** 19 - 100;
    const w = wrapBound(s, scale);
    expect(w.logWrap).to.be.closeTo(Math.log(2 * s.paddedDim) - (a * a) / (2 * (v + 100 * s2)), 1e-9);
    expect(w.std).to.be.closeTo(Math.sqrt(v + 100 * s2 + 25), 1e-9);
    expect(wrapBound({ ...s, kind: 'skellam' }, scale).logWrap).to.be.above(w.logWrap);
    // Non-decreasing in the scale; capped at log 1 = 0.
    expect(wrapBound(s, 1000).logWrap).to.be.above(w.logWrap);
    expect(wrapBound(s, 1e6).logWrap).to.equal(0);
    // n ≥ 2^(b−1): the rounding alone can wrap.
    expect(wrapBound({ ...s, bits: 7, clients: 64, threshold: 64 }, 1e-6).logWrap).to.equal(0);
  });

  it('largestSafeScale sits on the tolerance boundary, or refuses with DP_ERR_WRAP_RISK', () => {
    const scale = largestSafeScale(s, 1e-9);
    expect(Math.exp(wrapBound(s, scale).logWrap)).to.be.within(0.9e-9, 1e-9);
    expect(Math.exp(wrapBound(s, scale * 1.001).logWrap)).to.be.above(1e-9);
    expect(largestSafeScale(s, 1e-15)).to.be.below(scale);
    // n = 100 ≥ 2^(7−1): the rounding alone can reach the modulus, at any scale.
    expect(() => largestSafeScale({ ...s, bits: 7 }, 1e-9)).to.throw(DpError, /bits=7 cannot hold the sum of 100 sites/).with.property('code', 'DP_ERR_WRAP_RISK');
  });

  it('a planned round carries an adversarial (aligned) cohort of n sites without wrapping', () => {
    const dim = 256;
    const plan = planRound({ kind: 'ddg', clip: 1, dim, threshold: 8, clients: 10, bits: 16, noiseMultiplier: 0.5 });
    const u = new Float64Array(dim).fill(1 / Math.sqrt(dim)); // every site sends the same unit vector
    const enc = encodeParams(plan, new Uint8Array(16).fill(9));
    const rng = new DeterministicRng('aligned');
    const sum = new Uint32Array(plan.paddedDim);
    for (let i = 0; i < 10; i++) encodeUpdate(u, enc, rng).encoded.forEach((v, j) => (sum[j] = (sum[j]! + v) % 65536));
    const est = decodeSum(sum, dim, enc);
    // Decoded noise per coordinate: std σ_site·√n·γ; a wrap would put a coordinate ~2^16·γ away.
    const std = plan.siteSigma * Math.sqrt(10) / plan.scale;
    for (const v of est) expect(Math.abs(v - 10 / Math.sqrt(dim))).to.be.below(6 * std);
  });
});
