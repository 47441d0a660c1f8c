/**
 * Noise calibration against Opacus `opacus/tests/accountants_test.py`
 * (`test_get_noise_multiplier_rdp_steps`, `..._rdp_epochs`). Opacus stops its
 * bisection as soon as ε is within 0.01 below the target; this calibration
 * returns the smallest multiplier to a relative 1e-4, so it may be slightly
 * smaller than Opacus's, never larger.
 */
import { expect } from 'chai';
import { DpError } from '../../src/errors.js';
import { calibrateNoise, sampledGaussianEpsilon } from '../../src/dp/calibrate.js';

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

  it('rejects bad targets', () => {
    expect(() => calibrateNoise({ epsilon: 0, delta: 1e-5, q: 0.1, steps: 1 })).to.throw(DpError, /epsilon/);
    expect(() => calibrateNoise({ epsilon: 1, delta: 1, q: 0.1, steps: 1 })).to.throw(DpError, /delta/);
    expect(() => calibrateNoise({ epsilon: 1, delta: 1e-5, q: 0, steps: 1 })).to.throw(DpError, /"q"/);
    expect(() => calibrateNoise({ epsilon: 1, delta: 1e-5, q: 0.1, steps: 1.5 })).to.throw(DpError, /steps/);
  });
});
