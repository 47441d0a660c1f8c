/**
 * Sampler kinds: `discrete-laplace`, `discrete-gaussian` (CKS20 Algorithms
 * 2 and 3), `poisson` and `skellam` (Agarwal, Kairouz, Liu 2021). Each valid
 * case draws `count` samples from one source over DeterministicRng(seed);
 * invalid cases are parameters the constructors must refuse.
 */
import { DiscreteGaussianSampler, sampleDiscreteLaplace, type Sigma2 } from '../discrete-gaussian.js';
import { EXACT_POISSON_SPLIT_MAX, PoissonSampler, SkellamSampler } from '../skellam.js';
import { CountingSource, expectEqual, expectError, numOf, seedOf, VectorMismatch, type TestCase } from './_common.js';
import type { DpVectorKind } from './kind.js';

/** Ratio as written in the vectors. */
interface Ratio { num: number; den: number }

/** `sigma` of a case: σ as a number, or the exact σ² as { num, den }. */
function sigmaOf(v: unknown): number | Sigma2 {
  if (typeof v === 'number') return v;
  if (v !== null && typeof v === 'object') return { num: (v as Ratio).num, den: (v as Ratio).den };
  throw new VectorMismatch('"sigma" expected a number or { num, den }');
}

/** Draws `count` samples; returns them with the words consumed. */
function draw(seed: string, count: number, sample: (src: CountingSource) => number): { samples: number[]; wordsUsed: number } {
  const src = new CountingSource(seed);
  const samples = Array.from({ length: count }, () => sample(src));
  return { samples, wordsUsed: src.consumed };
}

function checkDraw(tc: TestCase, sample: (src: CountingSource) => number): void {
  if (typeof tc.seed !== 'string' || typeof tc.count !== 'number') throw new VectorMismatch('"seed" and "count" are required');
  const r = draw(tc.seed, tc.count, sample);
  expectEqual('samples', r.samples, tc.samples);
  expectEqual('wordsUsed', r.wordsUsed, tc.wordsUsed);
}

type Spec<P> = [comment: string, params: P, count: number];
type BadSpec<P> = [comment: string, params: P, error: string];

export const discreteLaplaceKind: DpVectorKind = {
  kind: 'discrete-laplace',
  description: 'Discrete Laplace with integer scale t, P[Y = y] ∝ exp(−|y|/t) (Canonne, Kamath, Steinke 2020, Algorithm 2 with s = 1; README §3): `count` samples drawn in order from one source over DeterministicRng(seed); `wordsUsed` uint32 words consumed in total.',
  generate() {
    const specs: Spec<number>[] = [
      ['t = 1', 1, 32], ['t = 2', 2, 32], ['t = 5', 5, 32], ['t = 101', 101, 16], ['t = 65536', 65536, 16], ['t = 2^26 + 1 (the scale for σ = 2^26)', 2 ** 26 + 1, 8],
    ];
    return specs.map(([comment, t, count], i) => {
      const seed = seedOf('discrete-laplace', i + 1);
      return { tcId: i + 1, comment, result: 'valid' as const, seed, t, count, ...draw(seed, count, (src) => sampleDiscreteLaplace(t, src)) };
    });
  },
  check(tc) {
    const t = numOf(tc.t, 't');
    checkDraw(tc, (src) => sampleDiscreteLaplace(t, src));
  },
};

const BAD_SIGMAS: BadSpec<number | Ratio>[] = [
  ['σ = 0', 0, 'DP_ERR_BAD_PARAM'],
  ['σ < 0', -1, 'DP_ERR_BAD_PARAM'],
  ['σ > 2^26', 2 ** 26 + 1, 'DP_ERR_BAD_PARAM'],
  ['σ² = 0/1', { num: 0, den: 1 }, 'DP_ERR_BAD_PARAM'],
  ['σ² denominator 0', { num: 1, den: 0 }, 'DP_ERR_BAD_PARAM'],
  ['σ² denominator > 2^20', { num: 1, den: 2 ** 20 + 1 }, 'DP_ERR_BAD_PARAM'],
  ['σ² numerator > 2^52', { num: 2 ** 52 + 1, den: 1 }, 'DP_ERR_BAD_PARAM'],
  ['σ² numerator not an integer', { num: 1.5, den: 1 }, 'DP_ERR_BAD_PARAM'],
];

function badCases(first: number, make: (s: number | Sigma2) => unknown): TestCase[] {
  return BAD_SIGMAS.map(([comment, sigma, error], i) => {
    expectError(error, () => make(sigmaOf(sigma)));
    return { tcId: first + i, comment, result: 'invalid' as const, sigma, error };
  });
}

export const discreteGaussianKind: DpVectorKind = {
  kind: 'discrete-gaussian',
  description: 'Exact discrete Gaussian N_Z(0, σ²) (Canonne, Kamath, Steinke 2020, Algorithms 1–3; README §4). `sigma` is σ (σ² rounded up onto the grid: multiples of 2^−16 below 2^16, integers above) or the exact σ² as { num, den }; `sigma2` is the exact rational used and `t` = ⌊σ⌋ + 1 the Laplace scale. `count` samples from one source over DeterministicRng(seed); `wordsUsed` uint32 words consumed. Invalid cases are parameters the sampler must refuse.',
  generate() {
    const specs: Spec<number | Ratio>[] = [
      ['σ = 2^−10: σ² rounds up to 2^−16, t = 1', 2 ** -10, 16],
      ['σ = 0.5', 0.5, 32],
      ['σ = 1', 1, 32],
      ['σ = 1.7: σ² = 2.89 rounds up to 189400/65536', 1.7, 32],
      ['exact fractional σ² = 7/3', { num: 7, den: 3 }, 32],
      ['σ = 10', 10, 16],
      ['σ = 255.5: largest grid denominator 65536', 255.5, 16],
      ['σ = 300: integer σ², all-integer acceptance (2·σ²·t² · 64 < 2^53)', 300, 16],
      ['σ = 10^4: acceptance decided from a binary64 approximation with an exact fallback', 1e4, 16],
      ['exact σ² = 90·91·2^20 / 2^20 = 8190, t = 91: at |Y| = 90, γ = 0 exactly, so the binary64 bounds on ⌊γ⌋ disagree and the trial is decided in bigints (tie-break)',
        { num: 90 * 91 * 2 ** 20, den: 2 ** 20 }, 32],
      ['σ = 2^26: candidates with |Y|·t ≥ 2^53 take the all-bigint acceptance path', 2 ** 26, 16],
    ];
    const valid: TestCase[] = specs.map(([comment, sigma, count], i) => {
      const seed = seedOf('discrete-gaussian', i + 1);
      const s = new DiscreteGaussianSampler(sigmaOf(sigma));
      return { tcId: i + 1, comment, result: 'valid', seed, sigma, sigma2: { num: s.sigma2.num, den: s.sigma2.den }, t: s.t, count, ...draw(seed, count, (src) => s.sample(src)) };
    });
    return [...valid, ...badCases(valid.length + 1, (s) => new DiscreteGaussianSampler(s))];
  },
  check(tc) {
    if (tc.result === 'invalid') return expectError(tc.error, () => new DiscreteGaussianSampler(sigmaOf(tc.sigma)));
    const s = new DiscreteGaussianSampler(sigmaOf(tc.sigma));
    expectEqual('sigma2', { num: s.sigma2.num, den: s.sigma2.den }, tc.sigma2);
    expectEqual('t', s.t, tc.t);
    checkDraw(tc, (src) => s.sample(src));
  },
};

/** PTRS marker written into the comment of every large-mean case. */
export const PTRS_NOTE = 'binary64 PTRS, not bit-exact across implementations that do not follow the same floating-point steps';

const methodOf = (mean: number): 'exact' | 'ptrs-binary64' => (mean <= EXACT_POISSON_SPLIT_MAX ? 'exact' : 'ptrs-binary64');

export const poissonKind: DpVectorKind = {
  kind: 'poisson',
  description: `Poisson(μ) for a rational mean μ = num/den (src/dp/skellam.ts; README §5). method "exact": μ < 10, the sum of ⌈2μ⌉ exact Poisson(μ/⌈2μ⌉) draws from rational Bernoulli trials; 10 ≤ μ ≤ 2^40, the sum of ⌈μ/2^32⌉ draws of the exact alias-table rejection sampler (src/dp/poisson-exact.ts). method "ptrs-binary64": μ > 2^40, Hörmann's PTRS on 53-bit uniforms with a binary64 acceptance test (${PTRS_NOTE}). \`count\` samples from one source over DeterministicRng(seed); \`wordsUsed\` uint32 words consumed. Invalid cases are means the sampler must refuse.`,
  generate() {
    const specs: Spec<Ratio>[] = [
      ['μ = 0: always 0, no randomness', { num: 0, den: 1 }, 8],
      ['μ = 1/2: one part λ = 1/2', { num: 1, den: 2 }, 32],
      ['μ = 1: two parts λ = 1/2', { num: 1, den: 1 }, 32],
      ['μ = 7/3: five parts λ = 7/15', { num: 7, den: 3 }, 32],
      ['μ = 9.9999: twenty parts, the largest exact mean here', { num: 99999, den: 10000 }, 16],
      ['μ = 10: exact alias-table rejection, smallest mean on that path', { num: 10, den: 1 }, 16],
      ['μ = 123456.789: exact alias-table rejection', { num: 123456789, den: 1000 }, 16],
      ['μ = 2^35: exact, the sum of 8 draws of mean 2^32', { num: 2 ** 35, den: 1 }, 8],
      [`μ = 2^51: ${PTRS_NOTE}`, { num: 2 ** 51, den: 1 }, 8],
    ];
    const valid: TestCase[] = specs.map(([comment, mean, count], i) => {
      const seed = seedOf('poisson', i + 1);
      const p = new PoissonSampler(mean.num, mean.den);
      return { tcId: i + 1, comment, result: 'valid', seed, mean, method: methodOf(p.mean), count, ...draw(seed, count, (src) => p.sample(src)) };
    });
    const bad: BadSpec<Ratio>[] = [
      ['negative numerator', { num: -1, den: 1 }, 'DP_ERR_BAD_PARAM'],
      ['denominator 0', { num: 1, den: 0 }, 'DP_ERR_BAD_PARAM'],
      ['denominator > 2^24', { num: 1, den: 2 ** 24 + 1 }, 'DP_ERR_BAD_PARAM'],
      ['numerator not an integer', { num: 2.5, den: 1 }, 'DP_ERR_BAD_PARAM'],
    ];
    return [...valid, ...bad.map(([comment, mean, error], i) => {
      expectError(error, () => new PoissonSampler(mean.num, mean.den));
      return { tcId: valid.length + i + 1, comment, result: 'invalid' as const, mean, error };
    })];
  },
  check(tc) {
    const { num, den } = tc.mean as Ratio;
    if (tc.result === 'invalid') return expectError(tc.error, () => new PoissonSampler(num, den));
    const p = new PoissonSampler(num, den);
    expectEqual('method', methodOf(p.mean), tc.method);
    checkDraw(tc, (src) => p.sample(src));
  },
};

export const skellamKind: DpVectorKind = {
  kind: 'skellam',
  description: `Symmetric Skellam Sk(μ, μ) = Poisson(μ) − Poisson(μ) with variance σ² = 2μ (Agarwal, Kairouz, Liu 2021; README §5): σ² as for the discrete Gaussian, \`mean\` = μ = σ²/2 as the rational num/(2·den); each sample is the first Poisson draw minus the second. method as in poisson.json ("ptrs-binary64": ${PTRS_NOTE}). Invalid cases are parameters the sampler must refuse.`,
  generate() {
    const specs: Spec<number | Ratio>[] = [
      ['σ = 1: μ = 1/2', 1, 32],
      ['exact σ² = 7/3: μ = 7/6', { num: 7, den: 3 }, 32],
      ['σ = 2.5: μ = 3.125', 2.5, 16],
      ['σ = 4.4: μ = 9.68 (σ² rounded up onto the 2^−16 grid), the largest exact mean here', 4.4, 16],
      ['σ = 5: μ = 12.5, exact alias-table rejection', 5, 16],
      ['σ = 1000: μ = 500000, exact alias-table rejection', 1000, 16],
      [`σ = 2^26: μ = 2^51, ${PTRS_NOTE}`, 2 ** 26, 8],
    ];
    const valid: TestCase[] = specs.map(([comment, sigma, count], i) => {
      const seed = seedOf('skellam', i + 1);
      const s = new SkellamSampler(sigmaOf(sigma));
      const mean = { num: s.sigma2.num, den: 2 * s.sigma2.den };
      return { tcId: i + 1, comment, result: 'valid', seed, sigma, sigma2: { num: s.sigma2.num, den: s.sigma2.den }, mean, method: methodOf(mean.num / mean.den), count, ...draw(seed, count, (src) => s.sample(src)) };
    });
    return [...valid, ...badCases(valid.length + 1, (s) => new SkellamSampler(s))];
  },
  check(tc) {
    if (tc.result === 'invalid') return expectError(tc.error, () => new SkellamSampler(sigmaOf(tc.sigma)));
    const s = new SkellamSampler(sigmaOf(tc.sigma));
    expectEqual('sigma2', s.sigma2, tc.sigma2);
    const mean = tc.mean as Ratio;
    expectEqual('mean', { num: s.sigma2.num, den: 2 * s.sigma2.den }, mean);
    expectEqual('method', methodOf(mean.num / mean.den), tc.method);
    checkDraw(tc, (src) => s.sample(src));
  },
};
