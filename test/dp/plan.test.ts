/**
 * planRound: one derivation of a round's encoder, session and DP event.
 * The regression figures are those of `tally dp epsilon --mechanism ddg
 * --noise-multiplier 1 --sampling-rate 1 --steps 10 --delta 1e-5 --clip 1
 * --threshold 10 --bits 20 --scale 4` at --dim 1025 and 2048.
 */
import { expect } from 'chai';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { DpError } from '../../src/errors.js';
import { DiscreteGaussianSampler } from '../../src/dp/discrete-gaussian.js';
import { encodeUpdate, roundingNormBound } from '../../src/dp/encode.js';
import { validateEvent, type DpEvent } from '../../src/dp/events.js';
import { encodeParams, planRound, type RoundPlanInput } from '../../src/dp/plan.js';
import { RdpAccountant } from '../../src/dp/rdp.js';
import { SkellamSampler } from '../../src/dp/skellam.js';

const example: RoundPlanInput = { kind: 'ddg', clip: 1, dim: 2048, threshold: 10, bits: 20, noiseMultiplier: 1, scale: 4 };
const epsilon10 = (ev: DpEvent): number => new RdpAccountant().compose({ kind: 'self_composed', event: ev, count: 10 }).getEpsilon(1e-5).epsilon;

describe('dp/plan', () => {
  it('a padded dimension is accounted at its padded length: dim 1025 and 2048 give the same event and ε', () => {
    const padded = planRound({ ...example, dim: 1025 });
    const exact = planRound(example);
    expect(padded.dim).to.equal(1025);
    expect(padded.paddedDim).to.equal(2048);
    expect(padded.event).to.deep.equal(exact.event);
    expect(padded.event.paddedDim).to.equal(2048);
    const e1025 = epsilon10(padded.event);
    expect(e1025).to.equal(epsilon10(exact.event));
    // The larger figure (an accountant told d = 1025 reported 154.6).
    expect(e1025).to.be.closeTo(261.3546, 1e-3);
  });

  it("the event's σ² is the variance the encoder's sampler draws from", () => {
    for (const kind of ['ddg', 'skellam'] as const) {
      const plan = planRound({ ...example, kind, dim: 100 });
      const { siteSigma2 } = plan.event;
      expect(plan.encode.noise).to.deep.equal({ kind, sigma: siteSigma2 });
      // The sampler the encoder builds from plan.encode keeps that rational exactly…
      const sampler = kind === 'ddg' ? new DiscreteGaussianSampler(plan.encode.noise.sigma) : new SkellamSampler(plan.encode.noise.sigma);
      expect(sampler.sigma2).to.deep.equal(siteSigma2);
      // …and encodeUpdate reports its sampler's parameter, num/den.
      const r = encodeUpdate(new Float64Array(100).fill(0.05), encodeParams(plan, new Uint8Array(16).fill(1)), new DeterministicRng(`sigma ${kind}`));
      expect(r.noiseSigma2).to.equal(siteSigma2.num / siteSigma2.den);
      expect(r.paddedDim).to.equal(plan.paddedDim);
    }
  });

  it('σ_site = z·C·scale/√t, rounded up onto the sampler grid; Δ₂ = roundingNormBound(C·scale, paddedDim, β)', () => {
    const plan = planRound(example);
    // z·C·S/√t = 4/√10: σ² = 1.6, below 2^16, so den = 65536 and num = ⌈1.6·65536⌉ = 104858.
    expect(plan.siteSigma2).to.deep.equal({ num: 104858, den: 65536 });
    expect(plan.siteSigma).to.equal(Math.sqrt(104858 / 65536));
    expect(plan.l2Sensitivity).to.equal(roundingNormBound(4, 2048, Math.exp(-0.5)));
    expect(plan.event).to.deep.equal({ kind: 'ddg', clip: 1, scale: 4, beta: Math.exp(-0.5), paddedDim: 2048, threshold: 10, siteSigma2: plan.siteSigma2, bits: 20 });
    expect(() => validateEvent(plan.event)).to.not.throw();
    expect(plan.session).to.deep.equal({ dim: 2048, bits: 20, threshold: 10 });
    expect(plan.clients).to.equal(10); // n defaults to t
  });

  it('without a scale, picks the largest whose wrap bound is ≤ the tolerance (tight), for the cohort n', () => {
    const input: RoundPlanInput = { kind: 'ddg', clip: 1, dim: 1_000_000, threshold: 80, clients: 100, bits: 20, noiseMultiplier: 1 };
    const p = planRound(input);
    expect(p.paddedDim).to.equal(2 ** 20);
    expect(p.wrapProbabilityBound).to.be.at.most(1e-9);
    expect(p.wrapProbabilityBound).to.be.above(0.9e-9);
    // The ddg bound recomputed from the plan: 2d·exp(−a²/(2(v + nσ²))), v = (nC·S)²/d, a = 2^19 − n.
    const v = (100 * p.scale) ** 2 / p.paddedDim;
    const a = 2 ** 19 - 100;
    const bound = 2 * p.paddedDim * Math.exp(-(a * a) / (2 * (v + 100 * p.siteSigma ** 2)));
    expect(bound / p.wrapProbabilityBound).to.be.within(0.999, 1.001);
    expect(p.kStddevs).to.be.within(7, 10);
    // The chosen scale, given back explicitly, passes the check and plans the same round.
    expect(planRound({ ...input, scale: p.scale }).event).to.deep.equal(p.event);
    // A bigger cohort needs a coarser scale; one more bit allows about twice the scale.
    expect(planRound({ ...input, clients: 200 }).scale).to.be.below(p.scale);
    expect(planRound({ ...input, bits: 21 }).scale / p.scale).to.be.within(1.9, 2.1);
    const sk = planRound({ ...input, kind: 'skellam' });
    expect(sk.scale).to.be.at.most(p.scale); // Skellam tails are heavier than sub-Gaussian
    expect(sk.wrapProbabilityBound).to.be.at.most(1e-9);
  });

  it('refuses a given scale that wraps at that width with DP_ERR_WRAP_RISK', () => {
    const input: RoundPlanInput = { kind: 'ddg', clip: 1, dim: 100_000, threshold: 80, clients: 100, bits: 20, noiseMultiplier: 10 };
    const safe = planRound(input).scale;
    expect(() => planRound({ ...input, scale: safe * 1.05 })).to.throw(DpError, /wraps at bits=20 for 100 sites/).with.property('code', 'DP_ERR_WRAP_RISK');
    expect(() => planRound({ ...input, scale: safe * 0.95 })).to.not.throw();
    // No scale at all when the rounding alone can reach 2^(b−1): n ≥ 2^(b−1) sites each move a coordinate by < 1.
    for (const over of [{ bits: 7 }, { bits: 8, clients: 128 }, { bits: 16, clients: 40000 }]) {
      expect(() => planRound({ ...input, ...over }), JSON.stringify(over)).to.throw(DpError, /cannot hold the sum/).with.property('code', 'DP_ERR_WRAP_RISK');
    }
  });

  it('rejects invalid input with DP_ERR_BAD_PARAM', () => {
    const cases: Record<string, unknown>[] = [
      { clip: 0 }, { clip: Number.NaN }, { dim: 0 }, { dim: 1.5 }, { dim: 2 ** 30 + 1 }, { bits: 0 }, { bits: 33 },
      { threshold: 0 }, { threshold: 2.5 }, { clients: 9 }, { noiseMultiplier: 0 }, { noiseMultiplier: -1 }, { beta: 1 }, { beta: -0.1 },
      { kind: 'gaussian' }, { kind: 'distributed_discrete_gaussian' }, { scale: 0 }, { scale: Number.POSITIVE_INFINITY },
      { wrapTolerance: 0 }, { wrapTolerance: 1 },
      { scale: 2 ** 40, bits: 32 }, // per-site σ beyond the samplers' 2^26
    ];
    for (const over of cases) {
      expect(() => planRound({ ...example, ...over } as RoundPlanInput), JSON.stringify(over)).to.throw(DpError).with.property('code', 'DP_ERR_BAD_PARAM');
    }
  });
});
