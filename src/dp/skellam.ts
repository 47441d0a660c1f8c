/**
 * Sampler for the symmetric Skellam distribution Sk(μ, μ) = Poisson(μ) − Poisson(μ)
 * (variance 2μ), the noise of Agarwal, Kairouz, Liu, "The Skellam Mechanism
 * for Differentially Private Federated Learning" (NeurIPS 2021). As in the
 * paper, the noise is parametrised by its variance σ² = 2μ, so μ = σ²/2 with
 * σ² the exact rational of {@link quantizeSigma2}.
 *
 * Exactness of the Poisson draws:
 * - μ < 10: exact. μ is split into n = ⌈2μ⌉ equal rational parts λ = μ/n ≤ 1/2
 *   and Poisson(μ) is the sum of n Poisson(λ). Each Poisson(λ) is drawn exactly
 *   with rational Bernoulli trials only: K = number of successes of
 *   Bernoulli(λ/1), Bernoulli(λ/2), … before the first failure has
 *   P[K ≥ k] = λ^k/k!, so P[K = k] = (λ^k/k!)(1 − λ/(k+1)); accepting K = k with
 *   probability (1−λ)(k+1)/(k+1−λ) ≤ 1 leaves P ∝ λ^k/k!, i.e. Poisson(λ)
 *   (acceptance rate (1−λ)e^λ ≥ 0.82).
 * - 10 ≤ μ ≤ 2^40: exact. Poisson(μ) is the sum of ⌈μ/2^32⌉ (one, for every
 *   σ up to about 92,000) draws of the exact rejection sampler of
 *   poisson-exact.ts (alias table over rational ratios, proven binary64 bounds,
 *   bigint tie-break).
 * - μ > 2^40 (σ above about 1.5·10^6): Hörmann's PTRS transformed rejection
 *   ("The transformed rejection method for generating Poisson random
 *   variables", Insurance: Mathematics and Economics 12, 1993) on 53-bit
 *   uniforms, its acceptance test evaluated in binary64 (the log-pmf without
 *   cancellation, {@link logPoissonPmf}), so the pmf can deviate by roughly
 *   1e-14 relative: not exact in the sense of CKS20.
 * @module
 */
import type { Rng } from '../crypto/rng.js';
import { RandomSource, fillSamples, toSource } from './_random.js';
import { DiscreteGaussianSampler, quantizeSigma2, type Sigma2 } from './discrete-gaussian.js';
import { DpError } from '../errors.js';
import { EXACT_POISSON_MAX_MEAN, ExactPoissonSampler } from './poisson-exact.js';

/** Largest mean drawn exactly (as at most 256 parts of ≤ 2^32); PTRS above. */
export const EXACT_POISSON_SPLIT_MAX = 2 ** 40;

const LN_2PI_HALF = 0.5 * Math.log(2 * Math.PI);
const LOG_FACT_TABLE: Float64Array = (() => {
  const t = new Float64Array(256);
  for (let k = 1; k < 256; k++) t[k] = t[k - 1]! + Math.log(k);
  return t;
})();

/** ln(k!) in binary64: a table below 256, Stirling's series (5 terms) above. */
export function logFactorial(k: number): number {
  if (k < 256) return LOG_FACT_TABLE[k]!;
  const x = k + 1;
  const x2 = x * x;
  return (x - 0.5) * Math.log(x) - x + LN_2PI_HALF + (1 / 12 - (1 / 360 - 1 / (1260 * x2)) / x2) / x;
}

/** Stirling's remainder ln(k!) − (k ln k − k + ½ ln(2πk)) for k ≥ 1. */
function stirlingError(k: number): number {
  if (k < 256) return LOG_FACT_TABLE[k]! - (k * Math.log(k) - k + LN_2PI_HALF + 0.5 * Math.log(k));
  const k2 = k * k;
  return (1 / 12 - (1 / 360 - (1 / 1260 - 1 / (1680 * k2)) / k2) / k2) / k;
}

/**
 * D(k, μ) = k ln(k/μ) + μ − k ≥ 0 without cancellation: near μ, with
 * v = (k−μ)/(k+μ), k ln(k/μ) = 2k·Σ v^(2j+1)/(2j+1), so D = v(k−μ) + 2k·Σ_{j≥1} v^(2j+1)/(2j+1).
 */
function deviance(k: number, mu: number): number {
  const d = k - mu;
  if (Math.abs(d) >= 0.1 * (k + mu)) return k * Math.log(k / mu) - d;
  const v = d / (k + mu);
  const v2 = v * v;
  let s = d * v;
  let term = 2 * k * v;
  for (let j = 1; j < 100; j++) {
    term *= v2;
    const next = s + term / (2 * j + 1);
    if (next === s) break;
    s = next;
  }
  return s;
}

/**
 * ln P[Poisson(μ) = k], computed as −stirlingError(k) − D(k, μ) − ½ ln(2πk) so that
 * no large terms cancel (absolute error ~1e-14 even for μ near 2^51).
 */
export function logPoissonPmf(k: number, mu: number): number {
  if (k === 0) return -mu;
  return -stirlingError(k) - deviance(k, mu) - LN_2PI_HALF - 0.5 * Math.log(k);
}

/** Exact Poisson(a/b) for safe integers with 0 ≤ a/b ≤ 1/2 (module comment). */
function poissonSmallPart(a: number, b: number, src: RandomSource): number {
  for (;;) {
    let k = 0;
    while (src.bernoulli(a, b * (k + 1))) k++;
    // accept with (1-λ)(k+1)/(k+1-λ) = (b-a)(k+1) / ((k+1)b - a)
    if (src.bernoulli((b - a) * (k + 1), (k + 1) * b - a)) return k;
  }
}

/** Precomputed PTRS constants for one mean (Hörmann 1993, μ ≥ 10). */
interface Ptrs {
  mu: number;
  muInt: number; // ⌊μ⌋, added separately so the candidate keeps its fractional precision
  muFrac: number;
  a: number;
  b: number;
  logInvAlpha: number;
  vr: number;
}

function ptrsConstants(mu: number): Ptrs {
  const b = 0.931 + 2.53 * Math.sqrt(mu);
  return {
    mu,
    muInt: Math.floor(mu),
    muFrac: mu - Math.floor(mu),
    a: -0.059 + 0.02483 * b,
    b,
    logInvAlpha: Math.log(1.1239 + 1.1328 / (b - 3.4)),
    vr: 0.9277 - 3.6224 / (b - 2),
  };
}

function poissonPtrs(c: Ptrs, src: RandomSource): number {
  for (;;) {
    const u = src.unitFloat() - 0.5;
    const v = src.unitFloat();
    const us = 0.5 - Math.abs(u);
    const k = c.muInt + Math.floor(((2 * c.a) / us + c.b) * u + c.muFrac + 0.43);
    if (us >= 0.07 && v <= c.vr) return k; // squeeze: inside the hat's core
    if (k < 0 || (us < 0.013 && v > us)) continue;
    const lhs = Math.log(v) + c.logInvAlpha - Math.log(c.a / (us * us) + c.b);
    if (lhs <= logPoissonPmf(k, c.mu)) return k;
  }
}

/** A reusable Poisson(μ) sampler for a rational mean μ = num/den. */
export class PoissonSampler {
  /** The mean as a double. */
  readonly mean: number;
  private readonly parts: number;
  private readonly partNum: number;
  private readonly partDen: number;
  private readonly ptrs: Ptrs | undefined = undefined;
  private readonly exact: ExactPoissonSampler | undefined = undefined;

  /**
   * @param num - numerator of μ (safe integer ≥ 0)
   * @param den - denominator of μ (safe integer ≥ 1)
   */
  constructor(num: number, den: number) {
    if (!Number.isSafeInteger(num) || !Number.isSafeInteger(den) || num < 0 || den < 1 || den > 2 ** 24) {
      throw new DpError('DP_ERR_BAD_PARAM', `Poisson mean expected safe integers num ≥ 0, den in [1, 2^24], got ${num}/${den}`);
    }
    this.mean = num / den;
    if (this.mean < 10) {
      // Small means: the sum of ⌈2μ⌉ exact Poisson(μ/⌈2μ⌉) parts from rational Bernoulli trials.
      this.parts = Math.max(1, Math.ceil((2 * num) / den));
    } else if (this.mean <= EXACT_POISSON_SPLIT_MAX) {
      // Large means: Poisson(μ) is the sum of `parts` independent Poisson(μ/parts), each
      // drawn by the exact rejection sampler (den·parts ≤ 2^24·2^8 = 2^32 as it requires).
      this.parts = Math.max(1, Math.ceil(this.mean / EXACT_POISSON_MAX_MEAN));
      this.exact = new ExactPoissonSampler(num, den * this.parts);
    } else {
      this.parts = 1;
      this.ptrs = ptrsConstants(this.mean); // μ > 2^40: binary64 PTRS, not bit-exact
    }
    this.partNum = num;
    this.partDen = den * this.parts;
  }

  /** Draws one sample. */
  sample(src: RandomSource): number {
    if (this.exact !== undefined) {
      let s = 0;
      for (let i = 0; i < this.parts; i++) s += this.exact.sample(src);
      return s;
    }
    if (this.ptrs !== undefined) return poissonPtrs(this.ptrs, src);
    if (this.partNum === 0) return 0;
    let s = 0;
    for (let i = 0; i < this.parts; i++) s += poissonSmallPart(this.partNum, this.partDen, src);
    return s;
  }
}

/** A reusable Sk(μ, μ) sampler with variance σ² (μ = σ²/2). */
export class SkellamSampler {
  /** The exact variance σ² = 2μ used. */
  readonly sigma2: Sigma2;
  private readonly poisson: PoissonSampler;

  /** @param sigma - standard deviation σ (σ² rounded up by {@link quantizeSigma2}) or exact σ². */
  constructor(sigma: number | Sigma2) {
    const q = typeof sigma === 'number' ? quantizeSigma2(sigma) : new DiscreteGaussianSampler(sigma).sigma2; // validates
    this.sigma2 = { num: q.num, den: q.den };
    this.poisson = new PoissonSampler(q.num, 2 * q.den);
  }

  /** Draws one sample. */
  sample(src: RandomSource): number {
    return this.poisson.sample(src) - this.poisson.sample(src);
  }
}

/** Draws one Sk(σ²/2, σ²/2) sample (variance σ²). */
export function sampleSkellam(sigma: number | Sigma2, rng: Rng): number {
  return new SkellamSampler(sigma).sample(toSource(rng));
}

/** Fills `out` with independent Sk(σ²/2, σ²/2) samples (variance σ²). */
export function fillSkellam<T extends Float64Array | Int32Array>(out: T, sigma: number | Sigma2, rng: Rng): T {
  return fillSamples(out, new SkellamSampler(sigma), rng);
}
