import { expect } from 'chai';
import { CountingRng, DeterministicRng } from '../../src/crypto/rng.js';
import { DpError } from '../../src/errors.js';
import { RandomSource } from '../../src/dp/_random.js';
import {
  DiscreteGaussianSampler,
  fillDiscreteGaussian,
  quantizeSigma2,
  sampleDiscreteGaussian,
  sampleDiscreteGaussianReference,
  sampleDiscreteLaplace,
} from '../../src/dp/discrete-gaussian.js';
import { chiSquare, discreteGaussianPmf, meanVar } from './_stats.js';

describe('dp/_random', () => {
  it('reads the Rng bytes as little-endian uint32 words, in order', () => {
    const src = new RandomSource(new CountingRng());
    expect(src.u32()).to.equal(0x03020100);
    expect(src.u32()).to.equal(0x07060504);
  });

  it('uniformInt(3) is unbiased (chi-square) and bigints stay in range', () => {
    const src = new RandomSource(new DeterministicRng('uniform'));
    const xs = Array.from({ length: 30000 }, () => src.uniformInt(3));
    const r = chiSquare(xs, () => 1 / 3, 0, 2);
    expect(r.chi2).to.be.below(r.critical);
    for (let i = 0; i < 200; i++) expect(src.uniformBigInt(10n ** 20n + 7n) < 10n ** 20n + 7n).to.equal(true);
  });

  it('Bernoulli(exp(-x)) matches exp(-x) for number and bigint paths (within 4.5 standard errors)', () => {
    const src = new RandomSource(new DeterministicRng('bexp'));
    const n = 40000;
    for (const [num, den] of [[1, 3], [5, 2], [7, 7]] as const) {
      const p = Math.exp(-num / den);
      let a = 0;
      let b = 0;
      for (let i = 0; i < n; i++) {
        if (src.bernoulliExpNeg(num, den)) a++;
        if (src.bernoulliExpNegBig(BigInt(num), BigInt(den))) b++;
      }
      const se = Math.sqrt((p * (1 - p)) / n);
      expect(Math.abs(a / n - p)).to.be.below(4.5 * se);
      expect(Math.abs(b / n - p)).to.be.below(4.5 * se);
    }
  });
});

describe('dp/discrete-gaussian', () => {
  it('quantizes σ² upward onto its grid', () => {
    expect(quantizeSigma2(1.5)).to.deep.equal({ num: 2.25 * 65536, den: 65536, value: 2.25 });
    expect(quantizeSigma2(1000)).to.deep.equal({ num: 1e6, den: 1, value: 1e6 });
    const q = quantizeSigma2(Math.SQRT2 * 300);
    expect(q.den).to.equal(1);
    expect(q.value).to.be.at.least(2 * 300 * 300);
    expect(new DiscreteGaussianSampler(30).t).to.equal(31);
  });

  it('rejects bad σ with DP_ERR_BAD_PARAM', () => {
    for (const s of [0, -1, Number.NaN, Infinity, 2 ** 27]) {
      expect(() => sampleDiscreteGaussian(s, new CountingRng())).to.throw(DpError).with.property('code', 'DP_ERR_BAD_PARAM');
    }
    expect(() => new DiscreteGaussianSampler({ num: 1.5, den: 1 })).to.throw(DpError);
  });

  it('is reproducible for a fixed seed and differs across seeds', () => {
    const a = fillDiscreteGaussian(new Int32Array(64), 10, new DeterministicRng('s'));
    const b = fillDiscreteGaussian(new Int32Array(64), 10, new DeterministicRng('s'));
    const c = fillDiscreteGaussian(new Int32Array(64), 10, new DeterministicRng('t'));
    expect(Array.from(a)).to.deep.equal(Array.from(b));
    expect(Array.from(a)).to.not.deep.equal(Array.from(c));
  });

  it('discrete Laplace(t=3) passes chi-square against exp(-|k|/3)', () => {
    const src = new RandomSource(new DeterministicRng('dlap'));
    const xs = Array.from({ length: 40000 }, () => sampleDiscreteLaplace(3, src));
    const q = Math.exp(-1 / 3);
    const pmf = (k: number): number => ((1 - q) / (1 + q)) * q ** Math.abs(k);
    const r = chiSquare(xs, pmf, -60, 60);
    expect(r.chi2, JSON.stringify(r)).to.be.below(r.critical);
  });

  for (const [sigma, n] of [[1.5, 100000], [30, 100000]] as const) {
    it(`σ=${sigma}: chi-square against the pmf (and rejects a 10% wider pmf), mean and variance`, () => {
      const xs = fillDiscreteGaussian(new Float64Array(n), sigma, new DeterministicRng(`dg-${sigma}`));
      const s2 = sigma * sigma;
      const radius = Math.ceil(14 * sigma) + 5;
      const r = chiSquare(xs, discreteGaussianPmf(s2, radius), -radius, radius);
      expect(r.chi2, JSON.stringify(r)).to.be.below(r.critical);
      const wrong = chiSquare(xs, discreteGaussianPmf(s2 * 1.21, radius), -radius, radius);
      expect(wrong.chi2).to.be.above(wrong.critical);
      const { mean, variance } = meanVar(xs);
      expect(Math.abs(mean)).to.be.below((4.5 * sigma) / Math.sqrt(n));
      // For σ ≥ 1 the discrete Gaussian's variance is within 1e-8 of σ².
      expect(variance / s2).to.be.within(0.985, 1.015);
    });
  }

  it('σ=5000 (double-approximation path): chi-square on pooled bins', () => {
    const sigma = 5000;
    const xs = fillDiscreteGaussian(new Float64Array(60000), sigma, new DeterministicRng('dg-big'));
    const width = 500; // pool values into width-500 cells to keep the test fast
    const radius = 10 * sigma;
    const pmf = discreteGaussianPmf(sigma * sigma, radius);
    const cell = new Map<number, number>();
    for (let k = -radius; k <= radius; k++) {
      const c = Math.floor(k / width);
      cell.set(c, (cell.get(c) ?? 0) + pmf(k));
    }
    const cells = Array.from(xs, (x) => Math.floor(x / width));
    const r = chiSquare(cells, (c) => cell.get(c) ?? 0, -radius / width, radius / width);
    expect(r.chi2, JSON.stringify(r)).to.be.below(r.critical);
  });

  it('σ=6e7 (bigint path for |Y|·t ≥ 2^53): mean and variance', () => {
    const sigma = 6e7;
    const xs = fillDiscreteGaussian(new Float64Array(20000), sigma, new DeterministicRng('dg-huge'));
    const { mean, variance } = meanVar(xs);
    expect(Math.abs(mean)).to.be.below((4.5 * sigma) / Math.sqrt(xs.length));
    expect(variance / (sigma * sigma)).to.be.within(0.96, 1.04);
  });

  it('the all-bigint reference sampler passes chi-square at σ=3', () => {
    const rng = new RandomSource(new DeterministicRng('dg-ref'));
    const xs = Array.from({ length: 20000 }, () => sampleDiscreteGaussianReference(3, rng));
    const r = chiSquare(xs, discreteGaussianPmf(9, 60), -60, 60);
    expect(r.chi2, JSON.stringify(r)).to.be.below(r.critical);
  });

  it('resolves an ambiguous approximate trial exactly', () => {
    // γ = a²/D with D = 2·σ²·t²; for σ = 5000 (t = 5001) take a with fraction f of γ,
    // then U < f/k must hold for u just below 2^53·f/k and fail just above it.
    const s = new DiscreteGaussianSampler(5000) as unknown as {
      resolveExact(a: number, whole: number, k: number, u: number, src: RandomSource): boolean;
    };
    const D = 2n * 25000000n * 5001n * 5001n;
    const a = 123456789n;
    const whole = (a * a) / D;
    const rem = a * a - whole * D;
    const src = new RandomSource(new DeterministicRng('exact'));
    for (const k of [1, 2, 3]) {
      const edge = ((1n << 53n) * rem) / (D * BigInt(k)); // ⌊2^53·f/k⌋
      expect(s.resolveExact(Number(a), Number(whole), k, Number(edge) - 1, src)).to.equal(true);
      expect(s.resolveExact(Number(a), Number(whole), k, Number(edge) + 1, src)).to.equal(false);
    }
  });
});

describe('dp/discrete-gaussian: parameter validation', () => {
  it('quantizeSigma2 never returns less than the exact σ²', () => {
    const sigma = 0.016105881350068987;
    const q = quantizeSigma2(sigma);
    // Exact check with rationals: num/den ≥ σ², σ = M/2^s.
    let s = 0; let x = sigma; while (!Number.isInteger(x)) { x *= 2; s++; }
    const m = BigInt(x);
    expect(BigInt(q.num) * (1n << BigInt(2 * s)) >= m * m * BigInt(q.den)).to.equal(true);
    for (const v of [0.1, 1 / 3, 1.5, 255.5, 1e4 + 0.3, 2 ** 26]) {
      const r = quantizeSigma2(v);
      let t = 0; let y = v; while (!Number.isInteger(y)) { y *= 2; t++; }
      const my = BigInt(y);
      expect(BigInt(r.num) * (1n << BigInt(2 * t)) >= my * my * BigInt(r.den), `σ=${v}`).to.equal(true);
      // and at most one grid step above
      expect((BigInt(r.num) - 1n) * (1n << BigInt(2 * t)) < my * my * BigInt(r.den), `σ=${v}`).to.equal(true);
    }
  });

  it('sampleDiscreteLaplace refuses a scale that is not a positive safe integer', () => {
    const src = new RandomSource(new DeterministicRng('laplace-bad'));
    for (const t of [0, -1, 1.5, Number.NaN, 2 ** 60]) {
      expect(() => sampleDiscreteLaplace(t, src), `t=${t}`).to.throw(DpError, /"t" expected/);
    }
  });
});
