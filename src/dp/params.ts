/**
 * Parameter helper for distributed DP (discrete Gaussian or Skellam) under
 * secure aggregation: chooses the scale 1/γ and the per-site noise, and checks
 * that the b-bit modulus does not wrap.
 *
 * Noise calibration. `noiseMultiplier` z is the ratio of the total noise
 * standard deviation to the L2 sensitivity. After rounding the sensitivity in
 * the integer domain is the conditional-rounding bound Δ₂ (≥ C/γ, see
 * {@link roundingNormBound}), so the t = `minSurvivors` sites that any
 * completed secagg round contains must together add variance z²Δ₂²:
 * σ_site² = z²Δ₂²/t (rounded up onto the sampler grid). The accountant must be
 * told t, never the expected cohort; more survivors only add noise.
 *
 * Scale. KLS21 and the Skellam paper (experiments sections) choose γ so that the aggregate fits
 * in k standard deviations of the 2^b range. We make that rigorous: the largest
 * scale whose wrap-probability bound (below) is ≤ `wrapTolerance` (default 1e-9).
 *
 * Wrap bound. For each coordinate j of the sum over up to n = `cohortSize`
 * sites, S_j = signal_j + rounding_j + noise_j. |rounding_j| < n always (each
 * site moves a coordinate by < 1, whatever the conditioning). signal_j is a
 * Rademacher sum with variance proxy ‖Σx_i‖²/γ²d ≤ (nC/γ)²/d (randomised
 * Hadamard, signs independent of the data). Each discrete Gaussian is
 * σ-sub-Gaussian, E[e^(θX)] ≤ e^(θ²σ²/2) (Canonne, Kamath, Steinke 2020); a Skellam with variance σ² has log-MGF
 * σ²(cosh θ − 1). Chernoff with a = 2^(b−1) − n:
 * P[|S_j| ≥ 2^(b−1)] ≤ 2·exp(min_θ θ²v/2 + n·K(θ) − θa), and a union bound over
 * the d padded coordinates gives `wrapProbabilityBound`.
 * @module
 */
import { DpError } from '../errors.js';
import { quantizeSigma2, type Sigma2 } from './discrete-gaussian.js';
import { roundingNormBound, type EncodeParams } from './encode.js';
import { paddedLength } from './hadamard.js';

/** Input of {@link chooseDdgParams}. */
export interface DdgParamsInput {
  /** L2 clipping norm C. */
  readonly clip: number;
  /** Update dimension (padded to a power of two internally). */
  readonly dim: number;
  /** Secagg threshold t: the fewest sites whose sum can be released. */
  readonly minSurvivors: number;
  /** Most sites that contribute to one sum (the cohort), n ≥ t; sizes the wrap check. */
  readonly cohortSize: number;
  /** Modulus bit width b ∈ 1..32. */
  readonly bits: number;
  /** z = total noise std / L2 sensitivity (> 0). */
  readonly noiseMultiplier: number;
  /** Conditional rounding bias β ∈ [0,1); default exp(−0.5) as in KLS21's experiments. */
  readonly beta?: number;
  /** Noise distribution. */
  readonly kind: 'ddg' | 'skellam';
  /** Largest acceptable wrap probability bound (default 1e-9). */
  readonly wrapTolerance?: number;
}

/** Output of {@link chooseDdgParams}; all sizes in the scaled integer domain unless named otherwise. */
export interface DdgParams {
  readonly kind: 'ddg' | 'skellam';
  readonly clip: number;
  readonly dim: number;
  readonly paddedDim: number;
  readonly bits: number;
  readonly beta: number;
  readonly minSurvivors: number;
  readonly cohortSize: number;
  readonly noiseMultiplier: number;
  /** 1/γ: integer steps per update unit. */
  readonly scale: number;
  /** γ = 1/scale. */
  readonly gamma: number;
  /** Per-site noise std σ_site (integer domain) and its exact variance rational. */
  readonly perSiteSigma: number;
  readonly perSiteSigma2: Sigma2;
  /** L2 sensitivity Δ₂ (conditional rounding bound). */
  readonly l2Sensitivity: number;
  /** L1 sensitivity bound min(Δ₂², √d·Δ₂) (integer vectors), for Skellam accounting. */
  readonly l1Sensitivity: number;
  /** Noise std of t survivors together: σ_site·√t (≥ z·Δ₂). */
  readonly totalSigmaAtMinSurvivors: number;
  /** Δ₂ / (C/γ): how much rounding inflates the sensitivity. */
  readonly normInflation: number;
  /** Bound on P[any coordinate of the sum wraps]. */
  readonly wrapProbabilityBound: number;
  /** Half range over the aggregate's per-coordinate std (the papers' "k stddevs"). */
  readonly kStddevs: number;
  /** KLS21 τ = 10·Σ_{k<t} exp(−2π²σ²·k/(k+1)) for the sum of t discrete Gaussians (ddg only). */
  readonly ddgTau?: number;
}

function bad(msg: string): never {
  throw new DpError('DP_ERR_BAD_PARAM', msg);
}

function posNumber(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) bad(`"${name}" expected a finite number > 0, got ${String(v)}`);
  return v;
}

function intIn(name: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) bad(`"${name}" expected an integer in [${lo}, ${hi}], got ${String(v)}`);
  return v;
}

interface Evaluation {
  delta: number;
  sigma2: Sigma2 & { value: number };
  logWrap: number;
  std: number;
}

/** Natural log of the wrap bound at a given scale (see the module comment). */
function evaluate(inp: Required<DdgParamsInput>, d: number, scale: number): Evaluation {
  const n = inp.cohortSize;
  const c = inp.clip * scale;
  const delta = roundingNormBound(c, d, inp.beta);
  const target = (inp.noiseMultiplier * delta) / Math.sqrt(inp.minSurvivors);
  const sigma2 = quantizeSigma2(Math.min(2 ** 26, target));
  const s2 = sigma2.value;
  const v = (n * c) ** 2 / d;
  const a = 2 ** (inp.bits - 1) - n;
  const std = Math.sqrt(v + n * s2 + n / 4);
  // Beyond the samplers' σ range (2^26) no 32-bit sum can hold the noise anyway: reject.
  if (a <= 0 || target > 2 ** 26) return { delta, sigma2, logWrap: 0, std };
  let exponent: number;
  if (inp.kind === 'ddg') {
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
  return { delta, sigma2, logWrap: Math.min(0, Math.log(2 * d) + exponent), std };
}

/**
 * Chooses the scale and per-site noise for distributed DP (module comment).
 * @throws DpError `DP_ERR_BAD_PARAM` for invalid input; `DP_ERR_WRAP_RISK` when
 *   no scale keeps the wrap probability bound ≤ `wrapTolerance`.
 * @example
 * const p = chooseDdgParams({ clip: 1, dim: 1e6, minSurvivors: 80, cohortSize: 100,
 *   bits: 20, noiseMultiplier: 1, kind: 'ddg' });
 * // p.scale, p.perSiteSigma → encodeUpdate; p.minSurvivors, p.l2Sensitivity → accountant
 */
export function chooseDdgParams(input: DdgParamsInput): DdgParams {
  if (input === null || typeof input !== 'object') bad('"input" expected an object');
  const clip = posNumber('clip', input.clip);
  const dim = intIn('dim', input.dim, 1, 2 ** 30);
  const bits = intIn('bits', input.bits, 1, 32);
  const minSurvivors = intIn('minSurvivors', input.minSurvivors, 1, 2 ** 20);
  const cohortSize = intIn('cohortSize', input.cohortSize, minSurvivors, 2 ** 20);
  const noiseMultiplier = posNumber('noiseMultiplier', input.noiseMultiplier);
  const beta = input.beta ?? Math.exp(-0.5);
  if (typeof beta !== 'number' || !(beta >= 0 && beta < 1)) bad(`"beta" expected a number in [0, 1), got ${String(beta)}`);
  const wrapTolerance = input.wrapTolerance ?? 1e-9;
  if (typeof wrapTolerance !== 'number' || !(wrapTolerance > 0 && wrapTolerance < 1)) {
    bad(`"wrapTolerance" expected a number in (0, 1), got ${String(wrapTolerance)}`);
  }
  if (input.kind !== 'ddg' && input.kind !== 'skellam') bad(`"kind" expected 'ddg' or 'skellam', got ${String(input.kind)}`);
  const inp: Required<DdgParamsInput> = { clip, dim, bits, minSurvivors, cohortSize, noiseMultiplier, beta, wrapTolerance, kind: input.kind };
  const d = paddedLength(dim);
  const logTol = Math.log(wrapTolerance);

  // Bisection on log(scale): the bound is non-decreasing in the scale.
  let lo = Math.log(1e-9 / clip);
  let hi = Math.log((2 ** bits * Math.sqrt(d)) / clip);
  const coarsest = evaluate(inp, d, Math.exp(lo));
  if (coarsest.logWrap > logTol) {
    throw new DpError(
      'DP_ERR_WRAP_RISK',
      `bits=${bits} cannot hold the sum of ${cohortSize} sites (d=${d}, z=${noiseMultiplier}): wrap probability bound ${Math.exp(coarsest.logWrap).toExponential(2)} > ${wrapTolerance} at any scale`,
    );
  }
  for (let i = 0; i < 100 && hi - lo > 1e-12; i++) {
    const mid = (lo + hi) / 2;
    if (evaluate(inp, d, Math.exp(mid)).logWrap <= logTol) lo = mid;
    else hi = mid;
  }
  const scale = Math.exp(lo);
  const e = evaluate(inp, d, scale);
  const sigma = Math.sqrt(e.sigma2.value);
  const result: DdgParams = {
    kind: inp.kind, clip, dim, paddedDim: d, bits, beta, minSurvivors, cohortSize, noiseMultiplier,
    scale,
    gamma: 1 / scale,
    perSiteSigma: sigma,
    perSiteSigma2: { num: e.sigma2.num, den: e.sigma2.den },
    l2Sensitivity: e.delta,
    l1Sensitivity: Math.min(e.delta * e.delta, Math.sqrt(d) * e.delta),
    totalSigmaAtMinSurvivors: sigma * Math.sqrt(minSurvivors),
    normInflation: e.delta / (clip * scale),
    wrapProbabilityBound: Math.exp(e.logWrap),
    kStddevs: 2 ** (bits - 1) / e.std,
  };
  if (inp.kind === 'ddg') {
    let tau = 0;
    for (let k = 1; k < minSurvivors; k++) tau += Math.exp((-2 * Math.PI ** 2 * e.sigma2.value * k) / (k + 1));
    return { ...result, ddgTau: 10 * tau };
  }
  return result;
}

/**
 * The {@link EncodeParams} for a site under parameters chosen by
 * {@link chooseDdgParams}, with the exact per-site variance rational.
 * @param rotationSeed - this round's shared rotation seed.
 */
export function toEncodeParams(p: DdgParams, rotationSeed: Uint8Array): EncodeParams {
  return { clip: p.clip, scale: p.scale, bits: p.bits, beta: p.beta, noise: { kind: p.kind, sigma: p.perSiteSigma2 }, rotationSeed };
}
