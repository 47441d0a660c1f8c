/**
 * One derivation of a distributed-DP round: {@link planRound} turns the
 * caller's choices (mechanism, clip, dimension, threshold, cohort, bits, noise
 * multiplier, optionally the scale) into everything the round needs, so that
 * the encoder, the secure-aggregation session and the accountant can never
 * disagree:
 *
 * - `encode`: the parameters of `encodeUpdate` / `decodeSum` (less the
 *   per-round rotation seed; see {@link encodeParams});
 * - `session`: `{ dim, bits, threshold }` of the secagg `SessionConfig`, where
 *   `dim` is the padded length the encoder emits;
 * - `event`: the DP event of one round, recording the per-site variance the
 *   encoder's sampler draws from and the padded dimension it encodes.
 *
 * Vocabulary (shared with `src/secagg/` and `tally simulate`): t =
 * `threshold`, the fewest surviving sites whose sum can be released (secagg's
 * Shamir threshold); n = `clients`, the cohort, the most sites whose inputs can
 * be in one sum (secagg's number of clients); `dim` = the caller's unpadded
 * dimension; `paddedDim` = the power of two the randomised Hadamard rotation
 * pads it to, which is what is encoded, summed and accounted.
 *
 * Error of the decoded mean (docs/privacy.md §8): when nothing wraps, the mean
 * of k ≥ t decoded inputs is off by γ·R⁻¹(rounding + noise)/k, a
 * root-mean-square of γ·√((σ² + v)/k) per coordinate, with γ = 1/scale,
 * σ² = `siteSigma2` and v ≤ 1/4 the variance of randomised rounding.
 *
 * Kairouz, Liu, Steinke, ICML 2021 (ddg); Agarwal, Kairouz, Liu, NeurIPS 2021
 * (skellam). The noise and wrap arithmetic is in params.ts.
 * @module
 */
import { DpError } from '../errors.js';
import type { Sigma2 } from './discrete-gaussian.js';
import { roundingNormBound, type EncodeParams } from './encode.js';
import { DISTRIBUTED_KINDS, type DistributedEvent, type DistributedKind } from './events.js';
import { paddedLength } from './hadamard.js';
import { largestSafeScale, siteVariance, wrapBound, type WrapSetting } from './params.js';

/** Input of {@link planRound}. */
export interface RoundPlanInput {
  /** The distributed mechanism. */
  readonly kind: DistributedKind;
  /** L2 clip C of one site's update (update units, > 0). */
  readonly clip: number;
  /** The caller's (unpadded) dimension, 1..2^30. */
  readonly dim: number;
  /** t: the secagg threshold, the fewest sites whose noise any released sum holds (≥ 1). */
  readonly threshold: number;
  /** n: the cohort, the most sites whose inputs can be in one sum; sizes the wrap check (t ≤ n, default t). */
  readonly clients?: number;
  /** b: modulus bit width, 1..32. */
  readonly bits: number;
  /** z: total noise sd of t sites over the clip C (> 0). */
  readonly noiseMultiplier: number;
  /** Scale 1/γ. Default: the largest scale whose wrap bound is ≤ `wrapTolerance`. */
  readonly scale?: number;
  /** Conditional rounding β ∈ [0, 1); default exp(−1/2) as in KLS21's experiments. */
  readonly beta?: number;
  /** Largest acceptable wrap probability bound, in (0, 1) (default 1e-9). */
  readonly wrapTolerance?: number;
}

/** The encoder's parameters of a round, less the per-round rotation seed. */
export type PlannedEncodeParams = Omit<EncodeParams, 'rotationSeed'> & { readonly noise: { readonly kind: DistributedKind; readonly sigma: Sigma2 } };

/** What {@link planRound} returns. Sizes are in the scaled integer domain unless named otherwise. */
export interface RoundPlan {
  readonly kind: DistributedKind;
  readonly clip: number;
  /** The caller's (unpadded) dimension: `decodeSum(sum, dim, …)` returns this many values. */
  readonly dim: number;
  /** The encoded, summed and accounted length: `dim` padded to a power of two. */
  readonly paddedDim: number;
  readonly threshold: number;
  readonly clients: number;
  readonly bits: number;
  readonly beta: number;
  readonly noiseMultiplier: number;
  /** 1/γ: integer steps per update unit. */
  readonly scale: number;
  /** Each site's noise variance σ², the exact rational the sampler draws from. */
  readonly siteSigma2: Sigma2;
  /** √(siteSigma2): each site's noise sd in integer units. */
  readonly siteSigma: number;
  /** L2 sensitivity Δ₂ = roundingNormBound(C·scale, paddedDim, β). */
  readonly l2Sensitivity: number;
  /** Bound on P[any coordinate of a sum of up to n inputs wraps]. */
  readonly wrapProbabilityBound: number;
  /** Half range over the aggregate's per-coordinate std (the papers' "k stddevs"). */
  readonly kStddevs: number;
  /** `encodeUpdate` / `decodeSum` parameters (add the round's `rotationSeed`: {@link encodeParams}). */
  readonly encode: PlannedEncodeParams;
  /** The `dim`, `bits` and `threshold` of the secagg `SessionConfig` that sums the encoded inputs. */
  readonly session: { readonly dim: number; readonly bits: number; readonly threshold: number };
  /** One round's DP event (compose it over rounds, wrap it in `poisson_sampled`). */
  readonly event: DistributedEvent;
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

/**
 * Plans one round of a distributed mechanism (module comment): validates the
 * input, pads the dimension, chooses or checks the scale against the b-bit
 * wrap bound for n sites, and derives each site's noise and the DP event.
 * @throws DpError `DP_ERR_BAD_PARAM` for invalid input (or a per-site σ beyond
 *   the samplers' 2^26); `DP_ERR_WRAP_RISK` when the given scale, or every
 *   scale, has a wrap bound above `wrapTolerance`.
 * @example
 * const plan = planRound({ kind: 'ddg', clip: 1, dim: 1000, threshold: 8, clients: 10, bits: 20, noiseMultiplier: 1 });
 * const enc = encodeUpdate(update, encodeParams(plan, seed), rng).encoded; // length plan.paddedDim
 * const config = { ...plan.session, nonce, clientIds, threat: 'semi-honest', graph: { kind: 'complete' } };
 * ledger.record(plan.event);
 */
export function planRound(input: RoundPlanInput): RoundPlan {
  if (input === null || typeof input !== 'object') bad('"input" expected an object');
  if (!(DISTRIBUTED_KINDS as readonly unknown[]).includes(input.kind)) bad(`"kind" expected one of ${DISTRIBUTED_KINDS.join(', ')}, got ${String(input.kind)}`);
  const clip = posNumber('clip', input.clip);
  const dim = intIn('dim', input.dim, 1, 2 ** 30);
  const bits = intIn('bits', input.bits, 1, 32);
  const threshold = intIn('threshold', input.threshold, 1, 2 ** 20);
  const clients = intIn('clients', input.clients ?? threshold, threshold, 2 ** 20);
  const noiseMultiplier = posNumber('noiseMultiplier', input.noiseMultiplier);
  const beta = input.beta ?? Math.exp(-0.5);
  if (typeof beta !== 'number' || !(beta >= 0 && beta < 1)) bad(`"beta" expected a number in [0, 1), got ${String(beta)}`);
  const tolerance = input.wrapTolerance ?? 1e-9;
  if (typeof tolerance !== 'number' || !(tolerance > 0 && tolerance < 1)) bad(`"wrapTolerance" expected a number in (0, 1), got ${String(tolerance)}`);
  const paddedDim = paddedLength(dim);
  const setting: WrapSetting = { kind: input.kind, clip, paddedDim, threshold, clients, bits, noiseMultiplier };

  let scale: number;
  if (input.scale === undefined) {
    scale = largestSafeScale(setting, tolerance);
  } else {
    scale = posNumber('scale', input.scale);
    siteVariance(setting, scale); // a σ beyond the samplers' range is a parameter error, not a wrap
    const w = wrapBound(setting, scale);
    if (w.logWrap > Math.log(tolerance)) {
      throw new DpError(
        'DP_ERR_WRAP_RISK',
        `scale ${scale} wraps at bits=${bits} for ${clients} sites (paddedDim=${paddedDim}): wrap probability bound ${Math.exp(w.logWrap).toExponential(2)} > ${tolerance}`,
      );
    }
  }
  const q = siteVariance(setting, scale);
  const siteSigma2: Sigma2 = { num: q.num, den: q.den };
  const w = wrapBound(setting, scale);
  const encode: PlannedEncodeParams = { clip, scale, bits, beta, noise: { kind: input.kind, sigma: siteSigma2 } };
  const event: DistributedEvent = { kind: input.kind, clip, scale, beta, paddedDim, threshold, siteSigma2, bits };
  return {
    kind: input.kind, clip, dim, paddedDim, threshold, clients, bits, beta, noiseMultiplier, scale,
    siteSigma2, siteSigma: Math.sqrt(q.value),
    l2Sensitivity: roundingNormBound(clip * scale, paddedDim, beta),
    wrapProbabilityBound: Math.exp(w.logWrap),
    kStddevs: 2 ** (bits - 1) / w.std,
    encode,
    session: { dim: paddedDim, bits, threshold },
    event,
  };
}

/** The full `encodeUpdate` / `decodeSum` parameters of a planned round. @param rotationSeed - this round's shared rotation seed (≥ 16 bytes). */
export function encodeParams(plan: RoundPlan, rotationSeed: Uint8Array): EncodeParams {
  return { ...plan.encode, rotationSeed };
}
