/**
 * PLD accountant: agreement with exact values and published expectations,
 * and pessimism (never below the truth by more than 0.1%). Sources:
 * - dp-accounting `dp_accounting/pld/pld_privacy_accountant_test.py`
 *   (`test_gaussian_basic`, `test_poisson_subsampled_gaussian`);
 * - the exact (ε, δ) curve of the Gaussian mechanism, Balle and Wang, ICML
 *   2018, Thm. 8: δ(ε) = Φ(1/(2σ) − εσ) − e^ε·Φ(−1/(2σ) − εσ);
 * - for the subsampled Gaussian at 2250 steps, an independent NumPy
 *   computation that rounds every loss up (an upper bound) and down (a lower
 *   bound) on a fine grid: for q=0.04, σ=1.5, 2250 steps (grid 1e-6) the true ε
 *   at δ = 1e-5 lies in [6.767499, 6.770063]; for q=0.01, σ=1.1, 10,000 steps
 *   (grid 3e-7) in [5.190847, 5.194328].
 */
import { expect } from 'chai';
import { DpError } from '../../src/errors.js';
import { normCdf } from '../../src/dp/_math.js';
import { MAX_PLD_POINTS, PldAccountant, pldDelta, pldEpsilon, subsampledGaussianPld } from '../../src/dp/pld.js';
import { RdpAccountant } from '../../src/dp/rdp.js';
import { sampledGaussian } from '../../src/dp/events.js';

const gaussDelta = (eps: number, s: number): number => normCdf(1 / (2 * s) - eps * s) - Math.exp(eps) * normCdf(-1 / (2 * s) - eps * s);

describe('dp/pld', () => {
  it('dp-accounting test_gaussian_basic: σ=√3 three times → δ(1)=0.126936, ε(0.126936)=1', () => {
    const acc = new PldAccountant();
    acc.compose({ kind: 'gaussian', noiseMultiplier: Math.sqrt(3) }, 1);
    acc.compose({ kind: 'gaussian', noiseMultiplier: Math.sqrt(3) }, 2);
    expect(acc.getDelta(1)).to.be.closeTo(0.126936, 1e-3);
    expect(acc.getEpsilon(0.126936)).to.be.closeTo(1, 1e-3);
    const exact = gaussDelta(1, 1); // three σ=√3 runs are one σ=1 run
    expect(acc.getDelta(1)).to.be.at.least(exact);
    expect(acc.getDelta(1)).to.be.at.most(exact * 1.001);
  });

  it('dp-accounting test_poisson_subsampled_gaussian: q=0.2, σ=0.5, 3 runs → δ(1)=0.15594', () => {
    const acc = new PldAccountant().compose({ kind: 'poisson_sampled', q: 0.2, event: { kind: 'gaussian', noiseMultiplier: 0.5 } }, 3);
    expect(acc.getDelta(1)).to.be.closeTo(0.15594, 1e-3);
    expect(acc.getEpsilon(0.15594)).to.be.closeTo(1, 1e-3);
  });

  it('10,000 Gaussian steps (σ=50) equal one σ=0.5 step: ε at δ=1e-5 within [truth, truth·1.001]', () => {
    // truth 9.997256146434298: root of the Balle–Wang curve for σ = 0.5 (SciPy brentq, xtol 1e-14)
    expect(gaussDelta(9.997256146434298, 0.5)).to.be.closeTo(1e-5, 1e-12);
    const eps = new PldAccountant().compose({ kind: 'gaussian', noiseMultiplier: 50 }, 10000).getEpsilon(1e-5);
    expect(eps).to.be.at.least(9.997256146434298 * 0.999);
    expect(eps).to.be.at.most(9.997256146434298 * 1.001);
  });

  it('subsampled Gaussian, q=0.04, σ=1.5, 2250 steps, δ=1e-5: inside the independent bracket, below RDP', () => {
    const ev = sampledGaussian(1.5, 0.04, 2250);
    const eps = new PldAccountant().compose(ev).getEpsilon(1e-5);
    expect(eps).to.be.at.least(6.770063 * 0.999); // never below the truth by more than 0.1%
    expect(eps).to.be.at.most(6.767499 * 1.01); // within 1% of the truth
    expect(eps).to.be.below(new RdpAccountant().compose(ev).getEpsilon(1e-5).epsilon); // RDP 7.329 here
  });

  it('10,000 steps of DP-SGD (q=0.01, σ=1.1): inside the independent bracket, below RDP (timed by bench/dp.ts)', () => {
    const ev = sampledGaussian(1.1, 0.01, 10000);
    const eps = new PldAccountant().compose(ev).getEpsilon(1e-5);
    expect(eps).to.be.at.least(5.194328 * 0.999);
    expect(eps).to.be.at.most(5.190847 * 1.01);
    expect(eps).to.be.below(new RdpAccountant().compose(ev).getEpsilon(1e-5).epsilon); // RDP 5.632
  });

  it('a coarser grid is never tighter (connect-the-dots chords on a sub-grid lie above)', () => {
    const ev = sampledGaussian(1.5, 0.04, 300);
    const fine = new PldAccountant({ discretization: 5e-4 }).compose(ev).getEpsilon(1e-5);
    const coarse = new PldAccountant({ discretization: 1e-3 }).compose(ev).getEpsilon(1e-5);
    expect(coarse).to.be.at.least(fine);
    expect(coarse).to.be.below(fine * 1.01);
  });

  it('single-step discrete PLD keeps total mass 1 and reproduces δ(ε) from above', () => {
    for (const dir of ['remove', 'add'] as const) {
      const p = subsampledGaussianPld(1, 1, dir, 1e-3);
      const total = p.mass.reduce((s, m) => s + m, p.inf);
      expect(total).to.be.closeTo(1, 1e-12);
      for (const e of [0, 0.5, 1, 2]) {
        expect(pldDelta(p, e)).to.be.at.least(gaussDelta(e, 1) - 1e-15);
        expect(pldDelta(p, e)).to.be.at.most(gaussDelta(e, 1) * 1.0001 + 1e-15);
      }
      expect(pldEpsilon(p, pldDelta(p, 1))).to.be.closeTo(1, 1e-9);
    }
  });

  it('both directions of the Gaussian are mirror images: equal ε even where e^(−ε) ≈ 1 − q would cancel (σ = 0.1732, ε ≈ 37)', () => {
    // Before, the add direction found its x-boundaries by log1p(expm1(−ε)), which rounds −37 to −36.7,
    // and reported ε = 36.77 below the exact 37.0357.
    const s = 0.17322878940338912;
    const delta = 0.00012464214593368387;
    const r = pldEpsilon(subsampledGaussianPld(1, s, 'remove', 0.01), delta);
    const a = pldEpsilon(subsampledGaussianPld(1, s, 'add', 0.01), delta);
    expect(a).to.be.closeTo(r, 1e-9);
    expect(gaussDelta(a, s)).to.be.at.most(delta); // at or above the exact ε
    expect(a).to.be.below(37.0358);
  });

  it('grid bound: a request beyond 2^22 points is refused before allocating, naming the fix', () => {
    const tiny = { kind: 'poisson_sampled', q: 0.5, event: { kind: 'gaussian', noiseMultiplier: 1e-4 } } as const;
    let err: unknown;
    try { new PldAccountant().compose(tiny, 3).getEpsilon(1e-5); } catch (e) { err = e; }
    expect((err as DpError).code).to.equal('DP_ERR_ACCOUNTING_LIMIT');
    expect((err as DpError).message).to.match(/about 1\.5e\+9 grid points at discretization 0\.1, above the bound of 2\^22 \(4194304\); use the RDP accountant$/);
    // An explicit spacing that is too fine is refused with the spacing that would fit.
    const ev = sampledGaussian(1, 0.01, 1000);
    try { new PldAccountant({ discretization: 1e-6 }).compose(ev).getEpsilon(1e-5); } catch (e) { err = e; }
    expect((err as DpError).code).to.equal('DP_ERR_ACCOUNTING_LIMIT');
    expect((err as DpError).message).to.match(/about 1\.2e\+7 grid points at discretization 1\.0e-6, .*a coarser discretization \(at least 2\.9e-6\) or the RDP accountant$/);
    expect(MAX_PLD_POINTS).to.equal(4194304);
  });

  it('a step count beyond 2^53 in total is refused, not rounded', () => {
    const g = { kind: 'gaussian', noiseMultiplier: 1 } as const;
    const huge = { kind: 'self_composed', event: { kind: 'self_composed', event: g, count: 2 ** 30 }, count: 2 ** 30 } as const;
    expect(() => new PldAccountant().compose(huge).getEpsilon(1e-5)).to.throw(DpError, /above 2\^53/);
  });

  it('truncation mass above δ is a refusal, not ε = ∞ (σ > 0 has no mass at ∞)', () => {
    // At δ = 1e-300 the pessimistically truncated tails (~1e-20) exceed δ.
    let err: unknown;
    try { new PldAccountant().compose({ kind: 'gaussian', noiseMultiplier: 1 }).getEpsilon(1e-300); } catch (e) { err = e; }
    expect((err as DpError).code).to.equal('DP_ERR_ACCOUNTING_UNRELIABLE');
    expect((err as DpError).message).to.match(/exceeds δ = 1e-300/);
  });

  it('q = 0 costs nothing; σ = 0 costs ∞; non-Gaussian events and bad δ are refused', () => {
    const zero = new PldAccountant().compose({ kind: 'poisson_sampled', q: 0, event: { kind: 'gaussian', noiseMultiplier: 1 } }, 10);
    expect(zero.getEpsilon(1e-9)).to.equal(0);
    const open = new PldAccountant().compose({ kind: 'poisson_sampled', q: 0.1, event: { kind: 'gaussian', noiseMultiplier: 0 } });
    expect(open.getEpsilon(0.05)).to.equal(Infinity);
    expect(open.getDelta(100)).to.be.closeTo(0.1, 1e-12);
    expect(() => new PldAccountant().compose({ kind: 'discrete_gaussian', noiseMultiplier: 1 })).to.throw(DpError, /only Gaussian/);
    expect(() => zero.getEpsilon(1)).to.throw(DpError, /delta/);
  });
});
