/**
 * Noise calibration: the smallest noise multiplier z for which `steps` runs of
 * the Poisson-subsampled Gaussian (rate q) stay within (ε, δ), found by
 * bisection on z (ε is decreasing in z) with either accountant.
 *
 * The returned z always meets the target (it is the upper end of the final
 * bracket), and is within a relative `tolerance` of the smallest such z.
 *
 * @module
 */
import { DpError } from '../errors.js';
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

const MAX_Z = 1e6;

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

/**
 * The smallest noise multiplier (to within `tolerance`) meeting (ε, δ) for
 * `steps` runs of the Poisson-subsampled Gaussian at rate `q`.
 * @throws DpError `DP_ERR_BAD_PARAM` for bad targets; `DP_ERR_UNREACHABLE` if no z ≤ 1e6 meets them.
 */
export function calibrateNoise(o: CalibrateOptions): Calibration {
  validate(o);
  const accountant = o.accountant ?? 'rdp';
  const tol = o.tolerance ?? (accountant === 'pld' ? 1e-3 : 1e-4);
  const eps = (z: number): number => sampledGaussianEpsilon(z, o);
  // PLD is never looser than RDP, so the RDP answer is a good upper starting point.
  let hi = accountant === 'pld' ? calibrateNoise({ ...o, accountant: 'rdp', tolerance: 1e-3 }).noiseMultiplier : 1;
  let epsHi = eps(hi);
  while (!(epsHi <= o.epsilon)) {
    hi *= 2;
    if (hi > MAX_Z) throw new DpError('DP_ERR_UNREACHABLE', `no noise multiplier up to ${MAX_Z} reaches ε=${o.epsilon} at δ=${o.delta}`);
    epsHi = eps(hi);
  }
  // PLD answers sit within a few per cent of the RDP one: start with a narrow bracket.
  const shrink = accountant === 'pld' ? 0.8 : 0.5;
  let lo = hi * shrink;
  for (let e = eps(lo); e <= o.epsilon; e = eps(lo)) {
    hi = lo;
    epsHi = e;
    lo *= shrink;
    if (lo < 1e-6) return { noiseMultiplier: hi, epsilon: epsHi, accountant };
  }
  while ((hi - lo) / hi > tol) {
    const mid = (lo + hi) / 2;
    const e = eps(mid);
    if (e <= o.epsilon) {
      hi = mid;
      epsHi = e;
    } else {
      lo = mid;
    }
  }
  return { noiseMultiplier: hi, epsilon: epsHi, accountant };
}
