/**
 * The noise and scale arithmetic of a distributed-DP round (discrete Gaussian
 * or Skellam under secure aggregation): each site's noise variance, and the
 * b-bit modulus's wrap bound with the largest scale it allows. `planRound`
 * (plan.ts) validates the caller's input and is the only caller; these
 * functions take values it has already checked.
 *
 * Noise calibration. `noiseMultiplier` z is the ratio of the standard
 * deviation of the total noise to the clip C, as in KLS21 §5 and AKL21 §5
 * (and DP-SGD): the t = `threshold` sites that any completed secagg round
 * contains must together add standard deviation z·C·scale in integer units,
 * so σ_site = z·C·scale/√t, with σ² rounded up onto the sampler grid
 * ({@link quantizeSigma2}). Rounding inflates the sensitivity from C·scale to
 * Δ₂ (`roundingNormBound`); the accountant charges Δ₂ against the recorded
 * σ², so the inflation shows in ε. More survivors than t only add noise.
 *
 * Scale. KLS21 and AKL21 (experiments sections) choose γ = 1/scale so that
 * the aggregate fits in k standard deviations of the 2^b range. We make that
 * rigorous: the largest scale whose wrap-probability bound (below) is ≤ the
 * tolerance (default 1e-9).
 *
 * Wrap bound. For each coordinate j of the sum over up to n = `clients` sites
 * (the cohort), S_j = signal_j + rounding_j + noise_j. |rounding_j| < n always
 * (each site moves a coordinate by < 1, whatever the conditioning). signal_j
 * is a Rademacher sum with variance proxy ‖Σx_i‖²/γ²d ≤ (nC/γ)²/d (randomised
 * Hadamard, signs independent of the data). Each discrete Gaussian is
 * σ-sub-Gaussian, E[e^(θX)] ≤ e^(θ²σ²/2) (Canonne, Kamath, Steinke 2020); a
 * Skellam with variance σ² has log-MGF σ²(cosh θ − 1). Chernoff with
 * a = 2^(b−1) − n: P[|S_j| ≥ 2^(b−1)] ≤ 2·exp(min_θ θ²v/2 + n·K(θ) − θa), and
 * a union bound over the d padded coordinates gives the bound.
 * @module
 */
import { DpError } from '../errors.js';
import { quantizeSigma2, type Sigma2 } from './discrete-gaussian.js';
import type { DistributedKind } from './events.js';

/** The samplers' largest σ (discrete-gaussian.ts). */
export const MAX_SITE_SIGMA = 2 ** 26;

/** A round's setting, as far as the noise and the wrap bound need it (validated by the caller). */
export interface WrapSetting {
  readonly kind: DistributedKind;
  /** L2 clip C. */
  readonly clip: number;
  /** Padded dimension d (a power of two). */
  readonly paddedDim: number;
  /** Secagg threshold t. */
  readonly threshold: number;
  /** Cohort size n ≥ t: the most sites whose inputs can be in one sum. */
  readonly clients: number;
  /** Modulus bit width b. */
  readonly bits: number;
  /** z = total noise sd / C. */
  readonly noiseMultiplier: number;
}

/** σ_site = z·C·scale/√t before rounding onto the sampler grid (module comment). */
export function siteSigmaTarget(s: WrapSetting, scale: number): number {
  return (s.noiseMultiplier * s.clip * scale) / Math.sqrt(s.threshold);
}

/**
 * Each site's noise variance at `scale`: σ_site² rounded up onto the sampler
 * grid, i.e. exactly the rational the encoder's sampler draws from.
 * @throws DpError `DP_ERR_BAD_PARAM` when σ_site is beyond the samplers' 2^26.
 */
export function siteVariance(s: WrapSetting, scale: number): Sigma2 & { value: number } {
  const target = siteSigmaTarget(s, scale);
  if (!(target <= MAX_SITE_SIGMA)) {
    throw new DpError('DP_ERR_BAD_PARAM', `per-site noise sd z·C·scale/√t = ${target.toPrecision(4)} exceeds the samplers' 2^26: lower the scale or the noise multiplier`);
  }
  return quantizeSigma2(target);
}

/** The wrap bound at one scale: its natural log, and the aggregate's per-coordinate std. */
export interface WrapBound {
  /** log P[any coordinate of the sum wraps] (≤ 0; 0 also when the noise is beyond the samplers' range). */
  readonly logWrap: number;
  /** √(v + nσ² + n/4): the sum's per-coordinate standard deviation (proxy). */
  readonly std: number;
}

/** The wrap bound of the module comment at `scale`. */
export function wrapBound(s: WrapSetting, scale: number): WrapBound {
  const n = s.clients;
  const d = s.paddedDim;
  const c = s.clip * scale;
  const target = siteSigmaTarget(s, scale);
  const s2 = target > MAX_SITE_SIGMA ? target * target : quantizeSigma2(target).value;
  const v = (n * c) ** 2 / d;
  const a = 2 ** (s.bits - 1) - n;
  const std = Math.sqrt(v + n * s2 + n / 4);
  // Beyond the samplers' σ range no 32-bit sum can hold the noise anyway: reject.
  if (a <= 0 || target > MAX_SITE_SIGMA) return { logWrap: 0, std };
  let exponent: number;
  if (s.kind === 'ddg') {
    exponent = -(a * a) / (2 * (v + n * s2));
  } else {
    // f(θ) = θ²v/2 + nσ²(cosh θ − 1) − θa is convex; f' is increasing: bisect f' = 0.
    const f = (th: number): number => (th * th * v) / 2 + n * s2 * (Math.cosh(th) - 1) - th * a;
    let lo = 0;
    let hi = Math.min(v > 0 ? a / v : Infinity, Math.asinh(a / (n * s2)));
    for (let i = 0; i < 200; i++) {
      const mid = (lo + hi) / 2;
      if (mid * v + n * s2 * Math.sinh(mid) - a > 0) hi = mid;
      else lo = mid;
    }
    exponent = f(lo);
  }
  return { logWrap: Math.min(0, Math.log(2 * d) + exponent), std };
}

/**
 * The largest scale whose wrap bound is ≤ `tolerance` (bisection on
 * log(scale): the bound is non-decreasing in the scale).
 * @throws DpError `DP_ERR_WRAP_RISK` when no scale keeps the bound ≤ `tolerance`.
 */
export function largestSafeScale(s: WrapSetting, tolerance: number): number {
  const logTol = Math.log(tolerance);
  let lo = Math.log(1e-9 / s.clip);
  let hi = Math.log((2 ** s.bits * Math.sqrt(s.paddedDim)) / s.clip);
  const coarsest = wrapBound(s, Math.exp(lo));
  if (coarsest.logWrap > logTol) {
    throw new DpError(
      'DP_ERR_WRAP_RISK',
      `bits=${s.bits} cannot hold the sum of ${s.clients} sites (paddedDim=${s.paddedDim}, z=${s.noiseMultiplier}): wrap probability bound ${Math.exp(coarsest.logWrap).toExponential(2)} > ${tolerance} at any scale`,
    );
  }
  for (let i = 0; i < 100 && hi - lo > 1e-12; i++) {
    const mid = (lo + hi) / 2;
    if (wrapBound(s, Math.exp(mid)).logWrap <= logTol) lo = mid;
    else hi = mid;
  }
  return Math.exp(lo);
}
