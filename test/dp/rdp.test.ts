/**
 * RDP accountant against published reference values. Each case names its
 * source: Opacus `opacus/tests/accountants_test.py`, Google dp-accounting
 * `dp_accounting/rdp/rdp_privacy_accountant_test.py`, or an independent
 * 50-digit numerical integration of A_α = E_{z~N(0,σ²)}[((1−q) + q·e^((2z−1)/2σ²))^α]
 * with mpmath `quad` (the method of dp-accounting's `test_compute_log_a_equals_mp`).
 */
import { expect } from 'chai';
import { DpError } from '../../src/errors.js';
import { logBinom, lgamma, erfc } from '../../src/dp/_math.js';
import { DEFAULT_ORDERS, RdpAccountant, epsilonFromRdp, eventRdp, rdpPoissonGaussian } from '../../src/dp/rdp.js';

const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);
const OPACUS_ALPHAS = [...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10), ...Array.from({ length: 52 }, (_, i) => 12 + i)];

describe('dp/_math', () => {
  it('lgamma and signed log-binomials match known values', () => {
    expect(lgamma(0.5)).to.be.closeTo(0.5 * Math.log(Math.PI), 1e-15);
    expect(lgamma(101)).to.be.closeTo(363.73937555556347, 1e-10); // log(100!)
    expect(lgamma(-0.5)).to.be.closeTo(Math.log(2 * Math.sqrt(Math.PI)), 1e-14); // |Γ(−1/2)| = 2√π
    // C(1.5, 3) = 1.5·0.5·(−0.5)/6 = −0.0625; C(1.5, 4) = −0.0625·(−1.5)/4 = 0.0234375
    expect(logBinom(1.5, 3).sign).to.equal(-1);
    expect(Math.exp(logBinom(1.5, 3).log)).to.be.closeTo(0.0625, 1e-15);
    expect(logBinom(1.5, 4).sign).to.equal(1);
    expect(Math.exp(logBinom(1.5, 4).log)).to.be.closeTo(0.0234375, 1e-15);
  });

  it('erfc keeps relative accuracy in the tail (reference values: SciPy special.erfc)', () => {
    expect(rel(erfc(0.5), 0.4795001221869535)).to.be.below(1e-14);
    expect(rel(erfc(3), 2.209049699858544e-5)).to.be.below(1e-13);
    expect(rel(erfc(10), 2.088487583762545e-45)).to.be.below(1e-13);
    expect(rel(erfc(-1.9), 1.9927904292352574)).to.be.below(1e-15);
  });
});

describe('dp/rdp: Poisson-subsampled Gaussian (Mironov, Talwar, Zhang 2019)', () => {
  it('Opacus test_rdp_accountant: σ=1.5, q=0.04, 2250 steps, δ=1e-5 → ε=7.32911117143', () => {
    const acc = new RdpAccountant(OPACUS_ALPHAS);
    acc.compose({ kind: 'poisson_sampled', q: 0.04, event: { kind: 'gaussian', noiseMultiplier: 1.5 } }, 2250);
    const { epsilon, order } = acc.getEpsilon(1e-5);
    expect(rel(epsilon, 7.32911117143)).to.be.below(1e-6);
    expect(order).to.be.closeTo(3.9, 1e-12); // a fractional order: exercises the signed series
  });

  it('dp-accounting test_compute_rdp_poisson_sampled_gaussian, integer orders (σ=2.5, q=0.01, 50 steps)', () => {
    const r = rdpPoissonGaussian(0.01, 2.5, [5, 50, 100, Infinity]).map((x) => x * 50);
    expect(rel(r[0]!, 2.18075656e-3)).to.be.below(1e-6);
    expect(rel(r[1]!, 2.38460375e-2)).to.be.below(1e-6);
    expect(rel(r[2]!, 1.67416308e2)).to.be.below(1e-6);
    expect(r[3]).to.equal(Infinity);
  });

  it('fractional orders are exact: dp-accounting sums |C(α,i)| and over-estimates (same test, α = 1.5, 2.5)', () => {
    const r = rdpPoissonGaussian(0.01, 2.5, [1.5, 2.5]).map((x) => x * 50);
    // exact values from the mpmath integration (log A = 6.5007089718803974e-6 and 3.2562541707543729e-5)
    expect(rel(r[0]!, (50 * 6.5007089718803974e-6) / 0.5)).to.be.below(1e-6);
    expect(rel(r[1]!, (50 * 3.2562541707543729e-5) / 1.5)).to.be.below(1e-6);
    // dp-accounting's expected values (6.70579741e-4, 1.08548710e-3) are upper bounds of these
    expect(r[0]!).to.be.below(6.70579741e-4);
    expect(r[1]!).to.be.below(1.0854871e-3);
  });

  // dp-accounting test_compute_log_a_equals_mp parameters; log A from 50-digit mpmath quadrature.
  const MP: [number, number, number, number][] = [
    [1e-7, 0.1, 1.01, 4.0034123225263986e-8],
    [1e-6, 0.1, 256, 3260463.2292971608],
    [1e-5, 0.1, 256.1, 3263607.0397884213],
    [1e-6, 1, 27, 8.7695113048484979e-10],
    [1e-4, 1, 1.5, 6.4426869538366497e-9],
    [1e-3, 1, 2, 1.7182803522145154e-6],
    [0.01, 10, 20, 0.00019129699912842963],
    [0.1, 100, 20.5, 0.00019991818458068296],
    [0.99, 0.1, 256, 3263997.4271140211],
    [0.999, 100, 256.1, 3.2601080379731127],
    [0.04, 1.5, 3.9, 0.0053162863787931898],
  ];
  for (const [q, sigma, alpha, logA] of MP) {
    it(`log A matches numerical integration: q=${q}, σ=${sigma}, α=${alpha}`, () => {
      const got = rdpPoissonGaussian(q, sigma, [alpha])[0]! * (alpha - 1);
      expect(rel(got, logA)).to.be.below(1e-6);
    });
  }

  it('edge cases: q=0 gives 0, σ=0 gives ∞, q=1 gives α/(2σ²)', () => {
    expect(Array.from(rdpPoissonGaussian(0, 1, [2, 3.5]))).to.deep.equal([0, 0]);
    expect(rdpPoissonGaussian(0.1, 0, [2])[0]).to.equal(Infinity);
    expect(rdpPoissonGaussian(1, 2, [3])[0]).to.equal(3 / 8);
  });
});

describe('dp/rdp: conversions', () => {
  it('dp-accounting test_compute_epsilon_delta_pure_dp: constant RDP 1.1, orders 2..32, δ=1e-5 → 1.32783806176 at 32', () => {
    const orders = Array.from({ length: 31 }, (_, i) => i + 2);
    const { epsilon, order } = epsilonFromRdp(orders, orders.map(() => 1.1), 1e-5);
    expect(epsilon).to.be.closeTo(1.32783806176, 1e-10);
    expect(order).to.equal(32);
  });

  it('classic conversion: ε = r + log(1/δ)/(α−1) (Mironov 2017, Prop. 3), computed by hand', () => {
    const orders = Array.from({ length: 31 }, (_, i) => i + 2);
    const { epsilon, order } = epsilonFromRdp(orders, orders.map(() => 1.1), 1e-5, 'classic');
    expect(epsilon).to.be.closeTo(1.1 + Math.log(1e5) / 31, 1e-12);
    expect(order).to.equal(32);
  });

  it('dp-accounting test_compute_epsilon_delta_gaussian: σ=4.530877117 is exactly (1, 1e-6)-DP', () => {
    const orders = Array.from({ length: 99000 }, (_, i) => 0.001 * (i + 1000));
    const { epsilon } = epsilonFromRdp(orders, rdpPoissonGaussian(1, 4.530877117, orders), 1e-6);
    expect(epsilon).to.be.closeTo(1, 1e-7);
  });

  it('improved is never worse than classic; default orders are dp-accounting\'s', () => {
    expect(DEFAULT_ORDERS.length).to.equal(99 + 53 + 4);
    expect(DEFAULT_ORDERS[0]).to.equal(1.1);
    expect(DEFAULT_ORDERS[98]).to.equal(10.9);
    expect(DEFAULT_ORDERS.slice(99, 101)).to.deep.equal([11, 12]);
    expect(DEFAULT_ORDERS.slice(-5)).to.deep.equal([63, 128, 256, 512, 1024]);
    const acc = new RdpAccountant().compose({ kind: 'poisson_sampled', q: 0.01, event: { kind: 'gaussian', noiseMultiplier: 1.1 } }, 10000);
    expect(acc.getEpsilon(1e-5).epsilon).to.be.below(acc.getEpsilon(1e-5, 'classic').epsilon);
  });

  it('rejects δ outside (0, 1) and mismatched lengths', () => {
    expect(() => epsilonFromRdp([2], [1], 1)).to.throw(DpError, /delta/);
    expect(() => epsilonFromRdp([2], [1], 0)).to.throw(DpError);
    expect(() => epsilonFromRdp([2, 3], [1], 0.1)).to.throw(DpError, /equal length/);
  });

  it('fails closed: a NaN or negative RDP value at any order refuses instead of skipping that order', () => {
    const sampledGaussianEvent = (z: number, q: number) => ({ kind: 'poisson_sampled', q, event: { kind: 'gaussian', noiseMultiplier: z } }) as const;
    // Before, NaN at one order was skipped and the other order's ε (here 0, since r = 0) came back.
    for (const bad of [NaN, -1e-6]) {
      let err: unknown;
      try { epsilonFromRdp([2, 3], [0, bad], 1e-5); } catch (e) { err = e; }
      expect((err as DpError).code, String(bad)).to.equal('DP_ERR_ACCOUNTING_UNRELIABLE');
      expect((err as DpError).message).to.include('order 3');
    }
    expect(epsilonFromRdp([2, 3], [0, -1e-12], 1e-5).epsilon).to.equal(0); // round-off below 1e-9 is 0
    // Per-step round-off of the fractional series (−8e-16 at σ = 1e6) is 0, so 2000 steps do not add it up.
    expect(rdpPoissonGaussian(0.04, 1e6, [1.1])[0]).to.be.at.least(0);
    expect(new RdpAccountant().compose(sampledGaussianEvent(1e6, 0.04), 1e9).getEpsilon(1e-5).epsilon).to.equal(0);
    expect(epsilonFromRdp([2, 3], [1, Infinity], 1e-5).order).to.equal(2); // ∞ is a valid (excluded) order
  });
});

// The distributed mechanisms' bounds (ddgRdp, skellamRdp) are tested in rdp-mechanisms.test.ts.
describe('dp/rdp: discrete mechanisms', () => {
  it('subsampled discrete mechanisms use the Zhu–Wang bound: between exact MTZ and no sampling', () => {
    const orders = [2, 8, 32];
    const sampled = eventRdp({ kind: 'poisson_sampled', q: 0.05, event: { kind: 'discrete_gaussian', noiseMultiplier: 1.2 } }, orders);
    const exact = rdpPoissonGaussian(0.05, 1.2, orders);
    orders.forEach((a, i) => {
      expect(sampled[i]!).to.be.at.least(exact[i]! * (1 - 1e-12));
      expect(sampled[i]!).to.be.at.most(a / (2 * 1.44));
    });
  });

  it('composition adds RDP; nested sampling and bad events are refused', () => {
    const g = { kind: 'gaussian', noiseMultiplier: 3.14159 } as const;
    const one = eventRdp(g, [2.71828])[0]!;
    expect(eventRdp({ kind: 'composed', events: [g, g, g] }, [2.71828])[0]).to.be.closeTo(3 * one, 1e-15);
    expect(eventRdp({ kind: 'self_composed', event: g, count: 6 }, [2.71828])[0]).to.be.closeTo(6 * one, 1e-15);
    expect(() => eventRdp({ kind: 'poisson_sampled', q: 0.1, event: { kind: 'poisson_sampled', q: 0.1, event: g } })).to.throw(DpError, /nested/);
    expect(() => eventRdp({ kind: 'gaussian', noiseMultiplier: -1 })).to.throw(DpError, /noiseMultiplier/);
    expect(() => eventRdp({ kind: 'poisson_sampled', q: 1.5, event: g })).to.throw(DpError, /q/);
  });
});
