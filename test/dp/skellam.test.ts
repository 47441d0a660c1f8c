import { expect } from 'chai';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { DpError } from '../../src/errors.js';
import { RandomSource } from '../../src/dp/_random.js';
import { PoissonSampler, SkellamSampler, fillSkellam, logFactorial, logPoissonPmf, sampleSkellam } from '../../src/dp/skellam.js';
import { chiSquare, meanVar, poissonPmfTable } from './_stats.js';

/** Sk(μ, μ) pmf by direct convolution of two Poisson(μ) pmfs. */
function skellamPmf(mu: number, max: number): (k: number) => number {
  const p = poissonPmfTable(mu, max);
  return (k) => {
    const a = Math.abs(k);
    let s = 0;
    for (let j = 0; j + a <= max; j++) s += p[j]! * p[j + a]!;
    return s;
  };
}

function poissonSamples(num: number, den: number, n: number, seed: string): Float64Array {
  const s = new PoissonSampler(num, den);
  const src = new RandomSource(new DeterministicRng(seed));
  return Float64Array.from({ length: n }, () => s.sample(src));
}

describe('dp/skellam', () => {
  it('logFactorial agrees with summed logarithms on both sides of the table', () => {
    let lf = 0;
    for (let k = 1; k <= 5000; k++) {
      lf += Math.log(k);
      if (k % 97 === 0 || k === 255 || k === 256) expect(Math.abs(logFactorial(k) - lf)).to.be.below(1e-9 * Math.max(1, lf));
    }
    expect(logFactorial(0)).to.equal(0);
  });

  it('logPoissonPmf matches summed logarithms and stays accurate for huge means', () => {
    for (const mu of [10.5, 300, 5000]) {
      for (const k of [0, 1, 7, Math.floor(mu), Math.ceil(mu * 1.5), Math.ceil(mu * 3)]) {
        let direct = -mu + k * Math.log(mu);
        for (let i = 2; i <= k; i++) direct -= Math.log(i);
        expect(logPoissonPmf(k, mu)).to.be.closeTo(direct, 1e-8);
      }
    }
    // At μ = 2^49 the mode's mass is 1/√(2πμ) and the pmf one standard deviation away is e^(-1/2) of it.
    const mu = 2 ** 49;
    const mode = logPoissonPmf(mu, mu);
    expect(mode).to.be.closeTo(-0.5 * Math.log(2 * Math.PI * mu), 1e-9);
    expect(logPoissonPmf(mu + 2 ** 24.5, mu) - mode).to.be.closeTo(-0.5, 1e-6);
  });

  for (const [num, den, n] of [[3, 10, 40000], [37, 10, 40000], [20, 1, 40000], [10000, 1, 60000]] as const) {
    const mu = num / den;
    it(`Poisson(${mu}) (${mu < 10 ? 'exact rational' : 'exact rejection'} path): chi-square, mean and variance`, () => {
      const xs = poissonSamples(num, den, n, `pois-${mu}`);
      const max = Math.ceil(mu + 15 * Math.sqrt(mu) + 20);
      const pmf = poissonPmfTable(mu, max);
      const r = chiSquare(xs, (k) => (k >= 0 && k <= max ? pmf[k]! : 0), 0, max);
      expect(r.chi2, JSON.stringify(r)).to.be.below(r.critical);
      const wrong = poissonPmfTable(mu * 1.1, max);
      const w = chiSquare(xs, (k) => (k >= 0 && k <= max ? wrong[k]! : 0), 0, max);
      expect(w.chi2).to.be.above(w.critical);
      const { mean, variance } = meanVar(xs);
      expect(Math.abs(mean - mu)).to.be.below(4.5 * Math.sqrt(mu / n));
      expect(variance / mu).to.be.within(0.96, 1.04);
    });
  }

  for (const [mu, path] of [[2 ** 35, 'exact, the sum of 8 draws of mean 2^32'], [2 ** 41, 'PTRS, above 2^40']] as const) {
    it(`Poisson(2^${Math.log2(mu)}) (${path}): mean and spread`, () => {
      const xs = poissonSamples(mu, 1, 4000, `pois-${mu}`);
      const { mean, variance } = meanVar(xs);
      expect(Math.abs(mean - mu)).to.be.below(4.5 * Math.sqrt(mu / 4000));
      expect(variance / mu).to.be.within(0.9, 1.1);
    });
  }

  it('Poisson(0) is always 0 and bad means are rejected', () => {
    expect(Array.from(poissonSamples(0, 1, 10, 'z'))).to.deep.equal(new Array(10).fill(0));
    expect(() => new PoissonSampler(-1, 1)).to.throw(DpError).with.property('code', 'DP_ERR_BAD_PARAM');
    expect(() => new PoissonSampler(1, 0)).to.throw(DpError);
    expect(() => sampleSkellam(0, new DeterministicRng('x'))).to.throw(DpError).with.property('code', 'DP_ERR_BAD_PARAM');
  });

  for (const [sigma, n] of [[2, 60000], [30, 60000], [100, 40000]] as const) {
    it(`Sk(σ²/2, σ²/2) with σ=${sigma}: chi-square against the convolved pmf, mean and variance`, () => {
      const xs = fillSkellam(new Float64Array(n), sigma, new DeterministicRng(`sk-${sigma}`));
      const mu = (sigma * sigma) / 2;
      const max = Math.ceil(mu + 15 * Math.sqrt(mu) + 20);
      const radius = Math.ceil(9 * sigma) + 5;
      const r = chiSquare(xs, skellamPmf(mu, max), -radius, radius);
      expect(r.chi2, JSON.stringify(r)).to.be.below(r.critical);
      const w = chiSquare(xs, skellamPmf(mu * 1.21, Math.ceil(max * 1.3)), -radius, radius);
      expect(w.chi2).to.be.above(w.critical);
      const { mean, variance } = meanVar(xs);
      expect(Math.abs(mean)).to.be.below((4.5 * sigma) / Math.sqrt(n));
      expect(variance / (sigma * sigma)).to.be.within(0.97, 1.03);
    });
  }

  it('σ = 2^25 (μ = 2^49): mean and variance of the Skellam noise', () => {
    const sigma = 2 ** 25;
    const xs = fillSkellam(new Float64Array(20000), sigma, new DeterministicRng('sk-huge'));
    const { mean, variance } = meanVar(xs);
    expect(Math.abs(mean)).to.be.below((4.5 * sigma) / Math.sqrt(xs.length));
    expect(variance / (sigma * sigma)).to.be.within(0.96, 1.04);
  });

  it('uses the quantized variance and is reproducible', () => {
    expect(new SkellamSampler(30).sigma2).to.deep.equal({ num: 900 * 65536, den: 65536 });
    const a = fillSkellam(new Int32Array(50), 12.5, new DeterministicRng('r'));
    const b = fillSkellam(new Int32Array(50), 12.5, new DeterministicRng('r'));
    expect(Array.from(a)).to.deep.equal(Array.from(b));
  });
});
