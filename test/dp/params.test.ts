import { expect } from 'chai';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { DpError } from '../../src/errors.js';
import { chooseDdgParams, toEncodeParams, type DdgParamsInput } from '../../src/dp/params.js';
import { decodeSum, encodeUpdate, roundingNormBound } from '../../src/dp/encode.js';

const base: DdgParamsInput = { clip: 1, dim: 1_000_000, minSurvivors: 80, cohortSize: 100, bits: 20, noiseMultiplier: 1, kind: 'ddg' };

describe('dp/params', () => {
  it('calibrates per-site noise so that t survivors alone meet z·Δ₂', () => {
    const p = chooseDdgParams(base);
    expect(p.paddedDim).to.equal(2 ** 20);
    expect(p.beta).to.equal(Math.exp(-0.5));
    expect(p.gamma).to.be.closeTo(1 / p.scale, 1e-18);
    expect(p.l2Sensitivity).to.be.closeTo(roundingNormBound(p.scale, p.paddedDim, p.beta), 1e-6);
    expect(p.totalSigmaAtMinSurvivors).to.be.closeTo(p.perSiteSigma * Math.sqrt(80), 1e-6);
    // Rounded up onto the sampler grid: never below the target, and only just above it.
    expect(p.totalSigmaAtMinSurvivors).to.be.at.least(p.noiseMultiplier * p.l2Sensitivity);
    expect(p.totalSigmaAtMinSurvivors).to.be.below(p.noiseMultiplier * p.l2Sensitivity * (1 + 1e-6));
    expect(p.perSiteSigma2.num / p.perSiteSigma2.den).to.be.closeTo(p.perSiteSigma ** 2, 1e-6);
    expect(p.l1Sensitivity).to.be.closeTo(Math.min(p.l2Sensitivity ** 2, 1024 * p.l2Sensitivity), 1e-3);
    expect(p.normInflation).to.be.within(1, 1.001);
    expect(p.ddgTau).to.be.a('number').and.at.least(0);
  });

  it('picks the largest scale whose wrap bound is ≤ the tolerance (Chernoff, closed form for ddg)', () => {
    const p = chooseDdgParams(base);
    expect(p.wrapProbabilityBound).to.be.at.most(1e-9);
    expect(p.wrapProbabilityBound).to.be.above(0.9e-9); // tight: bisection stops at the boundary
    // Recompute the ddg bound independently from the reported values.
    const n = 100;
    const c = p.clip * p.scale;
    const v = (n * c) ** 2 / p.paddedDim;
    const a = 2 ** 19 - n;
    const bound = 2 * p.paddedDim * Math.exp(-(a * a) / (2 * (v + n * p.perSiteSigma ** 2)));
    expect(bound / p.wrapProbabilityBound).to.be.within(0.999, 1.001);
    expect(p.kStddevs).to.be.within(7, 10);
  });

  it('scales with the bit width, the tolerance and the noise kind', () => {
    const p20 = chooseDdgParams(base);
    const p21 = chooseDdgParams({ ...base, bits: 21 });
    expect(p21.scale / p20.scale).to.be.within(1.9, 2.1);
    const strict = chooseDdgParams({ ...base, wrapTolerance: 1e-15 });
    expect(strict.scale).to.be.below(p20.scale);
    const sk = chooseDdgParams({ ...base, kind: 'skellam' });
    expect(sk.scale).to.be.at.most(p20.scale); // Skellam tails are heavier than sub-Gaussian
    expect(sk.ddgTau).to.equal(undefined);
    expect(sk.wrapProbabilityBound).to.be.at.most(1e-9);
  });

  it('refuses bit widths whose wrap probability is not negligible', () => {
    for (const over of [{ bits: 8 }, { bits: 12, dim: 1 << 22 }, { bits: 7, cohortSize: 100, dim: 16 }, { bits: 16, cohortSize: 40000, minSurvivors: 100 }]) {
      expect(() => chooseDdgParams({ ...base, ...over }), JSON.stringify(over)).to.throw(DpError).with.property('code', 'DP_ERR_WRAP_RISK');
    }
    expect(() => chooseDdgParams({ ...base, bits: 16 })).to.not.throw();
  });

  it('rejects invalid input with DP_ERR_BAD_PARAM', () => {
    const cases: Partial<Record<keyof DdgParamsInput, unknown>>[] = [
      { clip: 0 }, { clip: Number.NaN }, { dim: 0 }, { dim: 1.5 }, { bits: 0 }, { bits: 33 },
      { minSurvivors: 0 }, { cohortSize: 79 }, { noiseMultiplier: 0 }, { beta: 1 }, { beta: -0.1 },
      { kind: 'laplace' }, { wrapTolerance: 0 }, { wrapTolerance: 1 },
    ];
    for (const over of cases) {
      expect(() => chooseDdgParams({ ...base, ...over } as DdgParamsInput), JSON.stringify(over)).to.throw(DpError).with.property('code', 'DP_ERR_BAD_PARAM');
    }
  });

  it('chosen parameters round-trip an adversarial (aligned) cohort without wrapping', () => {
    const dim = 256;
    const p = chooseDdgParams({ clip: 1, dim, minSurvivors: 8, cohortSize: 10, bits: 16, noiseMultiplier: 0.5, kind: 'ddg' });
    const u = new Float64Array(dim).fill(1 / Math.sqrt(dim)); // every site sends the same unit vector
    const enc = toEncodeParams(p, new Uint8Array(16).fill(9));
    expect(enc.noise.sigma).to.deep.equal(p.perSiteSigma2);
    const rng = new DeterministicRng('aligned');
    const sum = new Uint32Array(dim);
    for (let i = 0; i < 10; i++) {
      const e = encodeUpdate(u, enc, rng);
      expect(e.noiseSigma2).to.equal(p.perSiteSigma2.num / p.perSiteSigma2.den);
      e.encoded.forEach((v, j) => (sum[j] = (sum[j]! + v) % 65536));
    }
    const est = decodeSum(sum, dim, enc);
    // Decoded noise per coordinate: std σ_site·√n·γ; all coordinates must be within 6 std of 10/√d.
    const std = p.perSiteSigma * Math.sqrt(10) * p.gamma;
    for (const v of est) expect(Math.abs(v - 10 / Math.sqrt(dim))).to.be.below(6 * std);
  });
});
