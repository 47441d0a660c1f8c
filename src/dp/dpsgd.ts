/**
 * Local DP-SGD (an option, not the default): per-example clipping and Gaussian
 * noise, Abadi et al., "Deep Learning with Differential Privacy" (CCS 2016),
 * Algorithm 1: g̃ = (Σ_i clip(g_i, C) + N(0, (zC)² I)) / B. Used by the
 * training layer when a site wants example-level DP on its own steps; the
 * noise is binary64 Gaussian (see central.ts for the caveat).
 * @module
 */
import type { Rng } from '../crypto/rng.js';
import { DpError } from '../errors.js';
import { toSource } from './_random.js';
import { clipL2InPlace } from './central.js';

/** What {@link clipAndNoise} returns. */
export interface NoisyGradient {
  /** Σ clipped gradients + noise. */
  readonly noisySum: Float32Array;
  /** noisySum / batch size (the DP-SGD update direction). */
  readonly noisyMean: Float32Array;
  /** How many examples were scaled down by clipping. */
  readonly clippedCount: number;
}

/**
 * Clips each per-example gradient to L2 norm ≤ `clip`, sums them and adds
 * N(0, (noiseMultiplier·clip)²) per coordinate. The inputs are not modified.
 * @param perExampleGrads - one gradient per example, all the same length (≥ 1 example).
 * @param clip - per-example L2 clipping norm C > 0.
 * @param noiseMultiplier - z ≥ 0.
 * @param rng - injected randomness.
 * @throws DpError `DP_ERR_BAD_PARAM` for an empty batch, ragged lengths or bad numbers.
 */
export function clipAndNoise(perExampleGrads: Float32Array[], clip: number, noiseMultiplier: number, rng: Rng): NoisyGradient {
  if (!Array.isArray(perExampleGrads) || perExampleGrads.length === 0) {
    throw new DpError('DP_ERR_BAD_PARAM', '"perExampleGrads" expected a non-empty array of Float32Array');
  }
  if (typeof clip !== 'number' || !Number.isFinite(clip) || clip <= 0) {
    throw new DpError('DP_ERR_BAD_PARAM', `"clip" expected a finite number > 0, got ${String(clip)}`);
  }
  if (typeof noiseMultiplier !== 'number' || !Number.isFinite(noiseMultiplier) || noiseMultiplier < 0) {
    throw new DpError('DP_ERR_BAD_PARAM', `"noiseMultiplier" expected a finite number ≥ 0, got ${String(noiseMultiplier)}`);
  }
  const first = perExampleGrads[0];
  if (!(first instanceof Float32Array)) throw new DpError('DP_ERR_BAD_PARAM', '"perExampleGrads[0]" expected Float32Array');
  const dim = first.length;
  const sum = new Float64Array(dim);
  let clippedCount = 0;
  perExampleGrads.forEach((g, i) => {
    if (!(g instanceof Float32Array) || g.length !== dim) {
      throw new DpError('DP_ERR_BAD_PARAM', `"perExampleGrads[${i}]" expected Float32Array of length ${dim}, got ${g instanceof Float32Array ? `length=${g.length}` : typeof g}`);
    }
    const c = Float64Array.from(g);
    if (clipL2InPlace(c, clip) > clip) clippedCount++;
    for (let j = 0; j < dim; j++) sum[j]! += c[j]!;
  });
  const src = toSource(rng);
  const std = noiseMultiplier * clip;
  const noisySum = new Float32Array(dim);
  const noisyMean = new Float32Array(dim);
  const b = perExampleGrads.length;
  for (let j = 0; j < dim; j++) {
    const v = sum[j]! + (std > 0 ? std * src.gaussian() : 0);
    noisySum[j] = v;
    noisyMean[j] = v / b;
  }
  return { noisySum, noisyMean, clippedCount };
}
