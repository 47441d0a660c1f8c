/**
 * Noise calibration: the smallest noise multiplier z for which `steps` runs of
 * the Poisson-subsampled Gaussian (rate q) stay within (ε, δ), found by a
 * bounded bisection on log z (ε is decreasing in z) with either accountant:
 * the search never leaves the bracket [1e-3, 1e6] and evaluates ε a fixed
 * number of times at most.
 *
 * The returned z always meets the target (it is the upper end of the final
 * bracket, and its ε was computed, not refused), and is within a relative
 * `tolerance` of the smallest z in the bracket whose ε the accountant
 * certifies (the PLD accountant refuses very small z, whose grids exceed its
 * bound).
 *
 * @module
 */
import { DpError, InternalError } from '../errors.js';
import { sampledGaussian } from './events.js';
import { epsilonOf, type AccountingOptions } from './accounting.js';

/** What to calibrate for. */
export interface CalibrateOptions extends AccountingOptions {
  readonly epsilon: number;
  readonly delta: number;
  /** Poisson sampling rate in (0, 1]. */
  readonly q: number;
  readonly steps: number;
  /** Relative width of the final bracket (default 1e-4 for RDP, 1e-3 for PLD). */
  readonly tolerance?: number;
}

/** The calibrated noise multiplier and the ε it achieves. */
export interface Calibration {
  readonly noiseMultiplier: number;
  readonly epsilon: number;
  readonly accountant: 'rdp' | 'pld';
}

/**
 * The bracket the noise multiplier is searched in. Every search stays inside
 * it and evaluates ε at most {@link MAX_EVALUATIONS} times, so a calibration
 * ends in bounded time whatever the target.
 */
export const NOISE_BRACKET: readonly [number, number] = [1e-3, 1e6];
/** Bisection steps at most (2^-64 of the bracket's log-width is far below any tolerance). */
const MAX_ITERATIONS = 64;
/** ε evaluations at most: the bracket ends, two hints, and the bisection. */
export const MAX_EVALUATIONS = MAX_ITERATIONS + 4;

/** ε of `steps` Poisson-sampled Gaussian runs with noise multiplier `z`. */
export function sampledGaussianEpsilon(z: number, o: CalibrateOptions): number {
  const ev = sampledGaussian(z, o.q, o.steps);
  return epsilonOf([ev], o.delta, o);
}

function validate(o: CalibrateOptions): void {
  if (!(o.epsilon > 0 && Number.isFinite(o.epsilon))) throw new DpError('DP_ERR_BAD_PARAM', `"epsilon" expected a positive finite number, got ${o.epsilon}`);
  if (!(o.delta > 0 && o.delta < 1)) throw new DpError('DP_ERR_BAD_PARAM', `"delta" expected a number in (0, 1), got ${o.delta}`);
  if (!(o.q > 0 && o.q <= 1)) throw new DpError('DP_ERR_BAD_PARAM', `"q" expected a sampling rate in (0, 1], got ${o.q}`);
  if (!(Number.isSafeInteger(o.steps) && o.steps >= 1)) throw new DpError('DP_ERR_BAD_PARAM', `"steps" expected a positive integer, got ${o.steps}`);
  if (o.accountant !== undefined && o.accountant !== 'rdp' && o.accountant !== 'pld') {
    throw new DpError('DP_ERR_BAD_PARAM', `"accountant" expected 'rdp' or 'pld', got ${JSON.stringify(o.accountant)}`);
  }
  if (o.tolerance !== undefined && !(o.tolerance > 0 && o.tolerance < 1)) {
    throw new DpError('DP_ERR_BAD_PARAM', `"tolerance" expected a number in (0, 1), got ${o.tolerance}`);
  }
}

/** True for the accountants' refusals (the figure at that z cannot be certified). */
function isRefusal(err: unknown): boolean {
  return err instanceof DpError && (err.code === 'DP_ERR_ACCOUNTING_LIMIT' || err.code === 'DP_ERR_ACCOUNTING_UNRELIABLE');
}

/**
 * The smallest noise multiplier (to within `tolerance`) meeting (ε, δ) for
 * `steps` runs of the Poisson-subsampled Gaussian at rate `q`, searched by
 * bisection on log z inside {@link NOISE_BRACKET} (ε decreases with z). A z
 * at which the accountant refuses counts as not meeting the target, so the
 * answer is always a z whose ε was computed and is ≤ the target. When even
 * the bracket's lower end meets the target, that end is returned.
 * @throws DpError `DP_ERR_BAD_PARAM` for bad targets; `DP_ERR_UNREACHABLE` if the bracket's upper end does not meet them.
 */
export function calibrateNoise(o: CalibrateOptions): Calibration {
  validate(o);
  const accountant = o.accountant ?? 'rdp';
  const tol = o.tolerance ?? (accountant === 'pld' ? 1e-3 : 1e-4);
  let evaluations = 0;
  /** ε at z when it is computed and meets the target, else undefined. */
  const meets = (z: number): number | undefined => {
    if (++evaluations > MAX_EVALUATIONS) throw new InternalError(`calibrateNoise evaluated ε more than ${MAX_EVALUATIONS} times`);
    try {
      const e = sampledGaussianEpsilon(z, o);
      return e <= o.epsilon ? e : undefined;
    } catch (err) {
      if (isRefusal(err)) return undefined;
      throw err;
    }
  };
  let [lo, hi] = NOISE_BRACKET;
  let epsHi: number | undefined;
  if (accountant === 'pld') {
    // PLD answers sit within a few per cent below the RDP one: probe there first to narrow the bracket.
    let hint: number | undefined;
    try {
      hint = calibrateNoise({ ...o, accountant: 'rdp', tolerance: 1e-3 }).noiseMultiplier;
    } catch (err) {
      if (!(err instanceof DpError && err.code === 'DP_ERR_UNREACHABLE')) throw err;
    }
    for (const z of hint === undefined ? [] : [hint, hint * 0.8]) {
      if (!(z > lo && z < hi)) continue;
      const e = meets(z);
      if (e === undefined) {
        lo = z;
        break;
      }
      hi = z;
      epsHi = e;
    }
  }
  epsHi ??= meets(hi);
  if (epsHi === undefined) {
    throw new DpError('DP_ERR_UNREACHABLE', `no noise multiplier up to ${hi} reaches ε=${o.epsilon} at δ=${o.delta} (${accountant})`);
  }
  if (lo === NOISE_BRACKET[0]) {
    const e = meets(lo);
    if (e !== undefined) return { noiseMultiplier: lo, epsilon: e, accountant };
  }
  for (let i = 0; i < MAX_ITERATIONS && (hi - lo) / hi > tol; i++) {
    const mid = Math.sqrt(lo * hi);
    const e = meets(mid);
    if (e !== undefined) {
      hi = mid;
      epsHi = e;
    } else {
      lo = mid;
    }
  }
  return { noiseMultiplier: hi, epsilon: epsHi, accountant };
}
