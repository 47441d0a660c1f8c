/**
 * Noise calibration against Opacus `opacus/tests/accountants_test.py`
 * (`test_get_noise_multiplier_rdp_steps`, `..._rdp_epochs`). Opacus stops its
 * bisection as soon as ε is within 0.01 below the target; this calibration
 * returns the smallest multiplier to a relative 1e-4, so it may be slightly
 * smaller than Opacus's, never larger.
 */
import { expect } from 'chai';
import { DpError } from '../../src/errors.js';
import { NOISE_BRACKET, calibrateNoise, sampledGaussianEpsilon } from '../../src/dp/calibrate.js';

describe('dp/calibrate', () => {
  it('Opacus test_get_noise_multiplier_rdp_steps: ε=8, δ=1e-5, q=0.04, 2000 steps → 1.3562; ours is minimal and ≤ it', () => {
    const o = { epsilon: 8, delta: 1e-5, q: 0.04, steps: 2000 };
    const c = calibrateNoise(o);
    // The smallest z meeting the target is 1.3561342 (tolerance 1e-8); Opacus stops 6.6e-5 above it.
    const exact = calibrateNoise({ ...o, tolerance: 1e-8 }).noiseMultiplier;
    expect(exact).to.be.closeTo(1.3561342, 1e-7);
    expect(c.noiseMultiplier).to.be.at.least(exact);
    expect(c.noiseMultiplier).to.be.at.most(Math.min(1.3562, exact * (1 + 1e-4)));
    expect(c.epsilon).to.be.at.most(8);
  });

  it('Opacus test_get_noise_multiplier_rdp_epochs (90 epochs = 2250 steps) → 1.416; ours is minimal and ≤ it', () => {
    const o = { epsilon: 8, delta: 1e-5, q: 0.04, steps: 2250 };
    const c = calibrateNoise(o);
    expect(c.noiseMultiplier).to.be.at.most(1.416);
    expect(c.noiseMultiplier).to.be.above(1.415);
    expect(sampledGaussianEpsilon(c.noiseMultiplier, o)).to.be.at.most(8);
    expect(sampledGaussianEpsilon(c.noiseMultiplier * (1 - 2e-4), o)).to.be.above(8); // minimal to the tolerance
  });

  it('PLD needs less noise than RDP for the same target and still meets it', () => {
    const o = { epsilon: 2, delta: 1e-5, q: 0.01, steps: 1000 };
    const rdp = calibrateNoise(o);
    const pld = calibrateNoise({ ...o, accountant: 'pld' });
    expect(pld.noiseMultiplier).to.be.below(rdp.noiseMultiplier);
    expect(pld.epsilon).to.be.at.most(2);
    expect(sampledGaussianEpsilon(pld.noiseMultiplier * (1 - 2e-3), { ...o, accountant: 'pld' })).to.be.above(2);
  });

  it('PLD at ε = 500 (σ near 0.035, losses above 709): answers within the bracket, with ε computed, not refused', () => {
    const o = { epsilon: 500, delta: 1e-5, q: 0.01, steps: 1, accountant: 'pld' } as const;
    const c = calibrateNoise(o);
    expect(c.noiseMultiplier).to.be.within(0.0345, 0.035);
    expect(c.epsilon).to.be.at.most(500);
    expect(sampledGaussianEpsilon(c.noiseMultiplier * (1 - 2e-3), o)).to.be.above(500);
  });

  it('the bracket [1e-3, 1e6] bounds every answer: its lower end when that already meets the target, UNREACHABLE past its upper end', () => {
    expect(NOISE_BRACKET).to.deep.equal([1e-3, 1e6]);
    const loose = calibrateNoise({ epsilon: 1e12, delta: 1e-5, q: 1, steps: 1 });
    expect(loose.noiseMultiplier).to.equal(1e-3);
    expect(loose.epsilon).to.be.closeTo(5.5e5, 1e3); // α·(1/2σ²) at α = 1.1
    let err: unknown;
    try { calibrateNoise({ epsilon: 1e-3, delta: 1e-10, q: 1, steps: 1000000, accountant: 'pld' }); } catch (e) { err = e; }
    expect((err as DpError).code).to.equal('DP_ERR_UNREACHABLE');
    // PLD refuses z below ~0.002 at q = 0.01 (grid bound): the answer is the smallest z it certifies.
    const o = { epsilon: 1e7, delta: 1e-5, q: 0.01, steps: 1, accountant: 'pld' } as const;
    const c = calibrateNoise(o);
    expect(c.epsilon).to.be.at.most(1e7);
    expect(c.noiseMultiplier).to.be.within(1e-3, 0.01);
    expect(() => sampledGaussianEpsilon(c.noiseMultiplier * 0.99, o)).to.throw(DpError, /2\^22/);
  });

  it('rejects bad targets', () => {
    expect(() => calibrateNoise({ epsilon: 0, delta: 1e-5, q: 0.1, steps: 1 })).to.throw(DpError, /epsilon/);
    expect(() => calibrateNoise({ epsilon: 1, delta: 1, q: 0.1, steps: 1 })).to.throw(DpError, /delta/);
    expect(() => calibrateNoise({ epsilon: 1, delta: 1e-5, q: 0, steps: 1 })).to.throw(DpError, /"q"/);
    expect(() => calibrateNoise({ epsilon: 1, delta: 1e-5, q: 0.1, steps: 1.5 })).to.throw(DpError, /steps/);
  });
});
