/**
 * The distributed mechanisms' RDP bounds, by hand from their papers, on the
 * event that `planRound` records (padded dimension, threshold t, exact σ²).
 */
import { expect } from 'chai';
import { DpError } from '../../src/errors.js';
import { roundingNormBound } from '../../src/dp/encode.js';
import type { DistributedEvent } from '../../src/dp/events.js';
import { ddgRdp, skellamRdp } from '../../src/dp/rdp-mechanisms.js';

// c = C·scale = 10, d = 4, β = 0: Δ₂ = c + √d = 12; σ² = 400 per site.
const base: DistributedEvent = { kind: 'ddg', clip: 1, scale: 10, beta: 0, paddedDim: 4, threshold: 1, siteSigma2: { num: 400, den: 1 } };

describe('dp/rdp-mechanisms', () => {
  it('DDG with one site is the discrete Gaussian: α/2·(Δ₂/σ)² with Δ₂ = 12, σ = 20 (by hand)', () => {
    expect(ddgRdp(base, 2)).to.be.closeTo((2 / 2) * (12 / 20) ** 2, 1e-15);
  });

  it('Δ₂ is roundingNormBound(C·scale, paddedDim, β): with β = e^(−1/2), Δ₂² = 100 + 1 + (10 + 1) = 112', () => {
    const beta = Math.exp(-0.5); // √(2·ln(1/β)) = 1
    expect(roundingNormBound(10, 4, beta) ** 2).to.be.closeTo(112, 1e-12);
    expect(ddgRdp({ ...base, beta }, 2)).to.be.closeTo(112 / 400, 1e-14);
    // The padded dimension enters Δ₂: d = 64 gives c² + 16 + (10 + 4) = 130.
    expect(ddgRdp({ ...base, beta, paddedDim: 64 }, 2)).to.be.closeTo(130 / 400, 1e-14);
  });

  it('DDG τ term (KLS21 Prop. 14): t = 4 sites with σ² = 1/4 in integer units, d = 1', () => {
    const p: DistributedEvent = { kind: 'ddg', clip: 1, scale: 1, beta: 0, paddedDim: 1, threshold: 4, siteSigma2: { num: 1, den: 4 } };
    // Δ₂ = 1 + 1 = 2, Δ₁ = 2·min(1, 2) = 2, total σ² = 4·1/4 = 1
    const tau = 10 * [1, 2, 3].reduce((s, k) => s + Math.exp(-2 * Math.PI ** 2 * 0.25 * (k / (k + 1))), 0);
    const a = 3;
    const want = Math.min((a / 2) * 4 + tau, (a / 2) * (4 + 2 * 2 * tau + tau * tau), (a / 2) * (2 + tau) ** 2);
    expect(ddgRdp(p, a)).to.be.closeTo(want, 1e-12);
    expect(() => ddgRdp({ ...p, siteSigma2: { num: 1, den: 5 } }, 2)).to.throw(DpError, /1\/2/);
  });

  it('the recorded σ² is charged, not a nominal one: 4·σ² gives a quarter of the leading term', () => {
    const four = { ...base, siteSigma2: { num: 1600, den: 1 } };
    expect(ddgRdp(four, 2)).to.be.closeTo(ddgRdp(base, 2) / 4, 1e-15);
    // t sites of σ² each are one site of t·σ² (τ vanishes at this σ).
    expect(ddgRdp({ ...base, threshold: 4 }, 2)).to.be.closeTo(ddgRdp(four, 2), 1e-12);
  });

  it('Skellam (AKL21 Thm. 3.5): αΔ₂²/(2μ) + min(((2α−1)Δ₂² + 6Δ₁)/(4μ²), 3Δ₁/(2μ)), by hand', () => {
    const sk: DistributedEvent = { ...base, kind: 'skellam' };
    // Δ₂ = 12, Δ₁ = 12·min(2, 12) = 24, μ = t·σ² = 400
    const want = (3 * 144) / 800 + Math.min((5 * 144 + 6 * 24) / (4 * 160000), (3 * 24) / 800);
    expect(skellamRdp(sk, 3)).to.be.closeTo(want, 1e-15);
    expect(skellamRdp(sk, 2.2)).to.equal(skellamRdp(sk, 3)); // fractional orders use ⌈α⌉
    expect(skellamRdp({ ...sk, threshold: 2, siteSigma2: { num: 200, den: 1 } }, 3)).to.equal(skellamRdp(sk, 3)); // μ = 2·200
  });
});
