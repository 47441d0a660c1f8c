/**
 * Central DP (an option, not the default): a trusted coordinator adds
 * Gaussian noise N(0, (z·C)²) to each coordinate of the sum of clipped
 * updates (the Gaussian mechanism of Dwork and Roth, "The Algorithmic
 * Foundations of Differential Privacy", §3.5.3, as used by DP-FedAvg, McMahan
 * et al., ICLR 2018). The noise is binary64 Box–Muller, so it carries the
 * usual floating-point caveats (Mironov, CCS 2012); use the distributed
 * discrete mechanisms when the coordinator is not trusted.
 * @module
 */
import type { Rng } from '../crypto/rng.js';
import { DpError } from '../errors.js';
import { toSource } from './_random.js';

/**
 * Returns `sum` plus independent N(0, (noiseMultiplier·clip)²) noise per coordinate.
 * @param sum - sum of updates, each clipped to L2 norm ≤ `clip` (not modified).
 * @param clip - L2 clipping norm C (the sensitivity of the sum).
 * @param noiseMultiplier - z; the noise std is z·C.
 * @param rng - injected randomness.
 * @throws DpError `DP_ERR_BAD_PARAM` for invalid arguments.
 */
export function addCentralGaussianNoise(sum: Float32Array | Float64Array, clip: number, noiseMultiplier: number, rng: Rng): Float64Array {
  if (!(sum instanceof Float32Array || sum instanceof Float64Array)) {
    throw new DpError('DP_ERR_BAD_PARAM', '"sum" expected a Float32Array or Float64Array');
  }
  if (typeof clip !== 'number' || !Number.isFinite(clip) || clip <= 0) {
    throw new DpError('DP_ERR_BAD_PARAM', `"clip" expected a finite number > 0, got ${String(clip)}`);
  }
  if (typeof noiseMultiplier !== 'number' || !Number.isFinite(noiseMultiplier) || noiseMultiplier < 0) {
    throw new DpError('DP_ERR_BAD_PARAM', `"noiseMultiplier" expected a finite number ≥ 0, got ${String(noiseMultiplier)}`);
  }
  const std = clip * noiseMultiplier;
  const src = toSource(rng);
  const out = Float64Array.from(sum);
  if (std > 0) for (let i = 0; i < out.length; i++) out[i]! += std * src.gaussian();
  return out;
}

/**
 * The L2 norm of an update.
 * @throws DpError `DP_ERR_BAD_PARAM` on a non-finite entry (naming its index).
 */
export function l2Norm(update: Float32Array | Float64Array): number {
  let sq = 0;
  for (let i = 0; i < update.length; i++) {
    const v = update[i]!;
    if (!Number.isFinite(v)) throw new DpError('DP_ERR_BAD_PARAM', `"update" has a non-finite value at index ${i}`);
    sq += v * v;
  }
  return Math.sqrt(sq);
}

/**
 * Scales `update` in place so that its L2 norm is at most `clip`.
 * @returns the norm before clipping.
 */
export function clipL2InPlace(update: Float32Array | Float64Array, clip: number): number {
  const norm = l2Norm(update);
  if (norm > clip) {
    const f = clip / norm;
    for (let i = 0; i < update.length; i++) update[i]! *= f;
  }
  return norm;
}
