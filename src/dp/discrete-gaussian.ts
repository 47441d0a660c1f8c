/**
 * Exact sampler for the discrete Gaussian N_Z(0, σ²), P[X = x] ∝ exp(-x²/(2σ²)),
 * x ∈ Z, following Canonne, Kamath, Steinke, "The Discrete Gaussian for
 * Differential Privacy" (NeurIPS 2020, arXiv:2004.00010), Algorithms 1–3:
 * a discrete Laplace proposal with scale t = ⌊σ⌋ + 1, accepted with probability
 * exp(-(|Y| - σ²/t)² / (2σ²)).
 *
 * Exactness: σ² is held as an exact rational num/den ({@link quantizeSigma2}
 * rounds a requested σ up onto a fixed grid, so the noise is never smaller than
 * asked). Every Bernoulli trial is decided with integer arithmetic. The hot
 * path uses doubles only where the integers are below 2^53 (so exact), or, for
 * large σ, a double *approximation* with a proven error bound that decides a
 * trial only when the uniform draw is outside the error interval; otherwise
 * the trial is resolved exactly with bigints. The output distribution is
 * therefore exactly N_Z(0, num/den) for perfectly uniform input bytes.
 * @module
 */
import type { Rng } from '../crypto/rng.js';
import { DpError } from '../errors.js';
import { RandomSource, fillSamples, isqrt, toSource } from './_random.js';

const TWO53 = 9007199254740992;

/** An exact positive rational variance num/den (safe integers). */
export interface Sigma2 {
  readonly num: number;
  readonly den: number;
}

/**
 * Rounds σ² up onto the sampler grid: multiples of 2^-16 when σ² < 2^16,
 * integers otherwise (relative increase ≤ 2^-16 either way).
 * @param sigma - standard deviation parameter, finite, 0 < σ ≤ 2^26.
 * @returns the exact rational σ² the samplers use, and its value as a double.
 * @throws DpError `DP_ERR_BAD_PARAM` when σ is out of range.
 */
export function quantizeSigma2(sigma: number): Sigma2 & { value: number } {
  if (typeof sigma !== 'number' || !Number.isFinite(sigma) || sigma <= 0 || sigma > 2 ** 26) {
    throw new DpError('DP_ERR_BAD_PARAM', `"sigma" expected a finite number in (0, 2^26], got ${String(sigma)}`);
  }
  const den = sigma * sigma < 65536 ? 65536 : 1;
  // ⌈σ²·den⌉ computed exactly: σ is a double, so σ = M / 2^s with integers M, s,
  // and the rounded double product σ·σ could land below the true σ².
  let s = 0;
  let scaled = sigma;
  while (!Number.isInteger(scaled)) { scaled *= 2; s++; } // exact: doubling a double
  const m = BigInt(scaled);
  const shift = BigInt(2 * s);
  const num = Math.max(1, Number((m * m * BigInt(den) + (1n << shift) - 1n) >> shift));
  return { num, den, value: num / den };
}

function asSigma2(sigma: number | Sigma2): Sigma2 {
  if (typeof sigma === 'number') return quantizeSigma2(sigma);
  if (sigma === null || typeof sigma !== 'object') {
    throw new DpError('DP_ERR_BAD_PARAM', `"sigma" expected a number or { num, den }, got ${String(sigma)}`);
  }
  const { num, den } = sigma;
  if (!Number.isSafeInteger(num) || !Number.isSafeInteger(den) || num < 1 || den < 1 || num > 2 ** 52 || den > 2 ** 20) {
    throw new DpError('DP_ERR_BAD_PARAM', `"sigma2" expected safe integers num in [1, 2^52], den in [1, 2^20], got ${num}/${den}`);
  }
  return { num, den };
}

/**
 * Exact discrete Laplace with integer scale t: P[Y = y] ∝ exp(-|y|/t)
 * (CKS20 Algorithm 2 with s = 1).
 */
export function sampleDiscreteLaplace(t: number, src: RandomSource): number {
  if (!Number.isSafeInteger(t) || t < 1) throw new DpError('DP_ERR_BAD_PARAM', `"t" expected a safe integer ≥ 1, got ${String(t)}`);
  for (;;) {
    const u = src.uniformInt(t);
    if (!src.bernoulliExpNeg(u, t)) continue;
    let v = 0;
    while (src.bernoulliExpNeg(1, 1)) v++;
    const x = u + t * v;
    const negative = (src.u32() & 1) === 1;
    if (negative && x === 0) continue; // avoid counting 0 twice
    return negative ? -x : x;
  }
}

/** A reusable exact N_Z(0, σ²) sampler with the per-σ constants precomputed. */
export class DiscreteGaussianSampler {
  /** The exact variance parameter used. */
  readonly sigma2: Sigma2;
  /** Discrete Laplace scale t = ⌊σ⌋ + 1 (CKS20 Alg. 3). */
  readonly t: number;
  private readonly twoPQ: number; // 2·num·den, exact (≤ 2^53)
  private readonly dBig: bigint; // 2·num·den·t², the denominator of γ
  private readonly dApprox: number;
  private readonly dSafe: boolean;

  /** @param sigma - σ (rounded up by {@link quantizeSigma2}) or an exact σ² rational. */
  constructor(sigma: number | Sigma2) {
    this.sigma2 = asSigma2(sigma);
    const { num, den } = this.sigma2;
    this.t = Number(isqrt(BigInt(num) / BigInt(den))) + 1; // ⌊σ⌋ + 1, exactly
    this.twoPQ = 2 * num * den;
    this.dBig = 2n * BigInt(num) * BigInt(den) * BigInt(this.t) * BigInt(this.t);
    this.dApprox = Number(this.dBig);
    this.dSafe = this.dBig * 64n < BigInt(TWO53);
  }

  /** Draws one sample. */
  sample(src: RandomSource): number {
    const { num, den } = this.sigma2;
    const t = this.t;
    for (;;) {
      const y = sampleDiscreteLaplace(t, src);
      const ay = Math.abs(y);
      // γ = (|Y| - σ²/t)² / (2σ²) = (|Y|·t·den - num)² / (2·num·den·t²).
      const ytq = ay * t * den;
      if (ytq >= TWO53) {
        if (this.acceptBig(BigInt(ay), src)) return y;
        continue;
      }
      const a = ytq - num; // exact: both terms are safe integers
      const a2 = a * a;
      if (this.dSafe && a2 < TWO53) {
        if (src.bernoulliExpNeg(a2, this.dApprox)) return y; // all-integer exact path
        continue;
      }
      if (this.acceptApprox(a, ay, src)) return y;
    }
  }

  /** Exact acceptance trial in bigints. */
  private acceptBig(ay: bigint, src: RandomSource): boolean {
    const a = ay * BigInt(this.t) * BigInt(this.sigma2.den) - BigInt(this.sigma2.num);
    return src.bernoulliExpNegBig(a * a, this.dBig);
  }

  /**
   * Bernoulli(exp(-γ)) with γ = a²/D decided from a double approximation g.
   * g = a·a / (2·num·den·t·t) in doubles: 4 roundings, relative error < 5·2^-53;
   * we use the looser bound err = 2^-48·g (+ the smallest double).
   */
  private acceptApprox(a: number, ay: number, src: RandomSource): boolean {
    const t = this.t;
    const g = (a * a) / (this.twoPQ * t * t);
    const err = g * 2 ** -48 + Number.MIN_VALUE;
    const whole = Math.floor(g - err);
    if (whole !== Math.floor(g + err)) return this.acceptBig(BigInt(ay), src);
    for (let i = 0; i < whole; i++) if (!src.bernoulliExpNeg(1, 1)) return false;
    const fLo = Math.max(0, g - err - whole);
    const fHi = Math.min(1, g + err - whole);
    // CKS20 Alg. 1 loop on the fraction f ∈ [fLo, fHi]: Bernoulli(f/k), k = 1, 2, …
    let k = 1;
    for (;;) {
      const lo = (fLo / k) * (1 - 2 ** -52);
      const hi = (fHi / k) * (1 + 2 ** -52);
      const u = src.u53(); // U ∈ [u/2^53, (u+1)/2^53)
      let success: boolean;
      if ((u + 1) / TWO53 <= lo) success = true;
      else if (u / TWO53 >= hi) success = false;
      else success = this.resolveExact(a, whole, k, u, src);
      if (!success) break;
      k++;
    }
    return (k & 1) === 1;
  }

  /**
   * Exactly decides U < f/k where U = (u + U')/2^53 with U' fresh uniform and
   * f = (a² - whole·D)/D: U' < (2^53·(a² - whole·D) - u·D·k) / (D·k).
   */
  private resolveExact(a: number, whole: number, k: number, u: number, src: RandomSource): boolean {
    const A = BigInt(a);
    const D = this.dBig;
    const dk = D * BigInt(k);
    const n = (1n << 53n) * (A * A - BigInt(whole) * D) - BigInt(u) * dk;
    if (n <= 0n) return false;
    if (n >= dk) return true;
    return src.bernoulliBig(n, dk);
  }
}

/**
 * Draws one exact sample of N_Z(0, σ²).
 * @param sigma - σ (σ² rounded up onto the grid of {@link quantizeSigma2}) or exact σ².
 * @param rng - injected randomness.
 */
export function sampleDiscreteGaussian(sigma: number | Sigma2, rng: Rng): number {
  return new DiscreteGaussianSampler(sigma).sample(toSource(rng));
}

/**
 * Fills `out` with independent exact N_Z(0, σ²) samples.
 * @example
 * fillDiscreteGaussian(new Float64Array(1024), 40, new DeterministicRng('seed'));
 */
export function fillDiscreteGaussian<T extends Float64Array | Int32Array>(out: T, sigma: number | Sigma2, rng: Rng): T {
  return fillSamples(out, new DiscreteGaussianSampler(sigma), rng);
}

/**
 * Reference sampler that performs every acceptance trial in bigints (CKS20
 * Alg. 3 verbatim). Slow; kept to cross-check the fast path in tests.
 */
export function sampleDiscreteGaussianReference(sigma: number | Sigma2, rng: Rng): number {
  const s = new DiscreteGaussianSampler(sigma);
  const src = toSource(rng);
  const { num, den } = s.sigma2;
  const dBig = 2n * BigInt(num) * BigInt(den) * BigInt(s.t) * BigInt(s.t);
  for (;;) {
    const y = sampleDiscreteLaplace(s.t, src);
    const a = BigInt(Math.abs(y)) * BigInt(s.t) * BigInt(den) - BigInt(num);
    if (src.bernoulliExpNegBig(a * a, dBig)) return y;
  }
}
