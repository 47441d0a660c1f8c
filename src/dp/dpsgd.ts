/**
 * Local DP-SGD (an option, not the default): per-example clipping and Gaussian
 * noise, Abadi et al., "Deep Learning with Differential Privacy" (CCS 2016),
 * Algorithm 1: g̃ = (Σ_i clip(g_i, C) + N(0, (zC)² I)) / B, on per-example
 * gradients given as arrays. The training loop (`trainLocal`'s `dpSgd`
 * option, src/training/train.ts) computes the per-example gradients and
 * clips them on the tfjs backend in one vectorised pass, then adds the same
 * noise to the clipped sum through {@link addCentralGaussianNoise}; the
 * noise is binary64 Gaussian (see central.ts for the caveat).
 * @module
 */
import type { Rng } from '../crypto/rng.js';
import { DpError } from '../errors.js';
import { addCentralGaussianNoise, clipL2InPlace } from './central.js';

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
  // The Gaussian mechanism on the sum of clipped gradients (sensitivity C), as
  // the training loop's vectorised DP-SGD (src/training/train.ts) also adds it.
  const noisy = addCentralGaussianNoise(sum, clip, noiseMultiplier, rng);
  const noisySum = new Float32Array(dim);
  const noisyMean = new Float32Array(dim);
  const b = perExampleGrads.length;
  for (let j = 0; j < dim; j++) {
    noisySum[j] = noisy[j]!;
    noisyMean[j] = noisy[j]! / b;
  }
  return { noisySum, noisyMean, clippedCount };
}
