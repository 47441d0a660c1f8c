/**
 * Client-side encoding for distributed DP with secure aggregation, and the
 * coordinator-side decoder. Kairouz, Liu, Steinke, "The Distributed Discrete
 * Gaussian Mechanism for Federated Learning with Secure Aggregation" (ICML
 * 2021), Algorithm 1 (client) and Algorithm 2 (server); the Skellam variant
 * (Agarwal, Kairouz, Liu, NeurIPS 2021) differs only in the noise.
 *
 * Client: flatten → clip ‖x‖₂ ≤ C → rotate H·D → scale by 1/γ → conditional
 * randomised rounding (resample until ‖x̃‖₂ ≤ Δ₂, {@link roundingNormBound}) →
 * add per-site integer noise → wrap mod 2^b.
 * Server: centred lift of the sum into [−2^(b−1), 2^(b−1)) → multiply by γ →
 * inverse rotation.
 *
 * The noise σ is per site and in the scaled integer domain (units of γ).
 * A round's parameters (scale, per-site σ², padded dimension, bits) come from
 * `planRound` (plan.ts), which the accountant reads too.
 * @module
 */
import type { Rng } from '../crypto/rng.js';
import { DpError } from '../errors.js';
import { DiscreteGaussianSampler, type Sigma2 } from './discrete-gaussian.js';
import { SkellamSampler } from './skellam.js';
import { paddedLength, rotate, unrotate } from './hadamard.js';
import { toSource } from './_random.js';
import { l2Norm } from './central.js';
import type { DistributedKind } from './events.js';

/** Kind of per-site integer noise: a distributed mechanism, or none. */
export type NoiseKind = DistributedKind | 'none';

/** Parameters shared by {@link encodeUpdate} and {@link decodeSum}. */
export interface CodecParams {
  /** Scale 1/γ: one integer step equals γ = 1/scale in update units. */
  readonly scale: number;
  /** Modulus bit width b ∈ 1..32; values are in [0, 2^b). */
  readonly bits: number;
  /** Per-round rotation seed shared by all sites (≥ 16 bytes). */
  readonly rotationSeed: Uint8Array;
}

/** Client encoding parameters. */
export interface EncodeParams extends CodecParams {
  /** L2 clipping norm C (update units). */
  readonly clip: number;
  /** Conditional rounding bias β ∈ [0, 1); 0 disables resampling (worst-case bound). */
  readonly beta: number;
  /**
   * Per-site noise; `sigma` is the standard deviation in the scaled integer
   * domain (σ² rounded up onto the sampler grid), or the exact variance σ² as a rational.
   */
  readonly noise: { readonly kind: NoiseKind; readonly sigma?: number | Sigma2 };
  /** Maximum rounding attempts before failing (default 100). */
  readonly maxRoundingTries?: number;
}

/** What {@link encodeUpdate} returns. */
export interface EncodeResult {
  /** x̃ + noise mod 2^b, length {@link EncodeResult.paddedDim}. */
  readonly encoded: Uint32Array;
  /** The caller's dimension (length of the update). */
  readonly dim: number;
  /** The encoded length: `dim` padded to a power of two. */
  readonly paddedDim: number;
  /** ‖update‖₂ before clipping. */
  readonly norm: number;
  /** ‖update‖₂ after clipping, min(norm, C). */
  readonly clippedNorm: number;
  /** Whether clipping changed the update. */
  readonly clipped: boolean;
  /** ‖x̃‖₂ of the rounded integer vector (before noise). */
  readonly roundedNorm: number;
  /** The conditional-rounding bound Δ₂ that ‖x̃‖₂ satisfies (the L2 sensitivity). */
  readonly normBound: number;
  /** Number of rounding attempts used. */
  readonly roundingTries: number;
  /** The variance σ² = num/den of the sampler that drew the noise (0 for 'none'). */
  readonly noiseSigma2: number;
}

/**
 * The conditional randomised rounding bound of KLS21 (Theorem 1, Eq. (2); the
 * minimum of the two bounds is their Proposition 22):
 * Δ₂² = min{ c² + d/4 + √(2 ln(1/β))·(c + √d/2), (c + √d)² }, with c = C/γ the
 * scaled clip and d the padded dimension (the length actually rounded). An
 * unconditioned randomised rounding meets it with probability ≥ 1 − β; the
 * second term always holds. This is the one copy of the bound: the encoder
 * rounds to it, and the plan and the accountant take Δ₂ (the L2 sensitivity)
 * from it.
 * @param scaledClip - c = C·scale.
 * @param d - the padded dimension.
 * @param beta - β ∈ [0, 1); 0 gives the worst-case bound c + √d.
 * @returns Δ₂ (not squared).
 */
export function roundingNormBound(scaledClip: number, d: number, beta: number): number {
  const worst = (scaledClip + Math.sqrt(d)) ** 2;
  if (beta === 0) return Math.sqrt(worst);
  const inflated = scaledClip ** 2 + d / 4 + Math.sqrt(2 * Math.log(1 / beta)) * (scaledClip + Math.sqrt(d) / 2);
  return Math.sqrt(Math.min(inflated, worst));
}

function checkCodec(p: CodecParams): void {
  if (typeof p.scale !== 'number' || !Number.isFinite(p.scale) || p.scale <= 0) {
    throw new DpError('DP_ERR_BAD_PARAM', `"scale" expected a finite number > 0, got ${String(p.scale)}`);
  }
  if (!Number.isInteger(p.bits) || p.bits < 1 || p.bits > 32) {
    throw new DpError('DP_ERR_BAD_PARAM', `"bits" expected an integer in [1, 32], got ${String(p.bits)}`);
  }
}

/**
 * Reduces integer values mod 2^b into a Uint32Array (two's-complement wrap).
 * @param values - integer-valued doubles with |v| < 2^53.
 */
export function wrapMod(values: Float64Array, bits: number): Uint32Array {
  const out = new Uint32Array(values.length);
  const mask = bits === 32 ? -1 : 2 ** bits - 1;
  // ToUint32 (>>> 0) is exact reduction mod 2^32 of any integer-valued double.
  for (let i = 0; i < values.length; i++) out[i] = ((values[i]! >>> 0) & mask) >>> 0;
  return out;
}

/** Centred lift: maps v ∈ [0, 2^b) to v or v − 2^b, whichever is in [−2^(b−1), 2^(b−1)). */
export function centredLift(sum: Uint32Array, bits: number): Float64Array {
  const m = 2 ** bits;
  const half = m / 2;
  const out = new Float64Array(sum.length);
  for (let i = 0; i < sum.length; i++) {
    const v = sum[i]!;
    out[i] = v >= half ? v - m : v;
  }
  return out;
}

/**
 * Encodes one site's update (KLS21 Algorithm 1).
 * @param update - the flattened update (finite values).
 * @param params - clip, scale, bits, beta, noise and the rotation seed.
 * @param rng - injected randomness for rounding and noise.
 * @throws DpError `DP_ERR_BAD_PARAM` for invalid input, `DP_ERR_ROUNDING_FAILED`
 *   if no rounding met Δ₂ within `maxRoundingTries`.
 * @example
 * const { encoded } = encodeUpdate(delta, { clip: 1, scale: 256, bits: 20, beta: Math.exp(-0.5),
 *   noise: { kind: 'ddg', sigma: 30 }, rotationSeed: seed }, rng);
 */
export function encodeUpdate(update: Float32Array | Float64Array, params: EncodeParams, rng: Rng): EncodeResult {
  if (!(update instanceof Float32Array || update instanceof Float64Array) || update.length === 0) {
    throw new DpError('DP_ERR_BAD_PARAM', '"update" expected a non-empty Float32Array or Float64Array');
  }
  checkCodec(params);
  const { clip, beta, noise } = params;
  if (typeof clip !== 'number' || !Number.isFinite(clip) || clip <= 0) {
    throw new DpError('DP_ERR_BAD_PARAM', `"clip" expected a finite number > 0, got ${String(clip)}`);
  }
  if (typeof beta !== 'number' || !(beta >= 0 && beta < 1)) {
    throw new DpError('DP_ERR_BAD_PARAM', `"beta" expected a number in [0, 1), got ${String(beta)}`);
  }
  const maxTries = params.maxRoundingTries ?? 100;
  if (!Number.isInteger(maxTries) || maxTries < 1) {
    throw new DpError('DP_ERR_BAD_PARAM', `"maxRoundingTries" expected an integer ≥ 1, got ${String(maxTries)}`);
  }
  const sampler = makeNoise(noise);
  const src = toSource(rng);

  const norm = l2Norm(update);
  const clipped = norm > clip;
  // Clip, rotate (norm-preserving), then scale; the factors are merged into one pass.
  const x = rotate(update, params.rotationSeed);
  const d = x.length;
  const factor = (clipped ? clip / norm : 1) * params.scale;
  for (let i = 0; i < d; i++) x[i]! *= factor;

  const bound = roundingNormBound(clip * params.scale, d, beta);
  // Sum of squares of integers in doubles: relative error ≤ d·2^-53, so compare with margin.
  const limit = bound * bound * (1 - d * 2 ** -52);
  const r = new Float64Array(d);
  let tries = 0;
  let rsq = Infinity;
  while (rsq > limit) {
    if (++tries > maxTries) {
      throw new DpError('DP_ERR_ROUNDING_FAILED', `randomised rounding exceeded the norm bound ${bound.toFixed(3)} in ${maxTries} tries`);
    }
    rsq = 0;
    for (let i = 0; i < d; i++) {
      const v = x[i]!;
      const fl = Math.floor(v);
      // Round up with probability (v - ⌊v⌋), to within 2^-32 (32-bit uniform).
      const up = src.u32() < (v - fl) * 4294967296 ? 1 : 0;
      const ri = fl + up;
      r[i] = ri;
      rsq += ri * ri;
    }
  }
  const roundedNorm = Math.sqrt(rsq);
  if (sampler !== undefined) for (let i = 0; i < d; i++) r[i]! += sampler.sample(src);
  const noiseSigma2 = sampler === undefined ? 0 : sampler.sigma2.num / sampler.sigma2.den;
  return { encoded: wrapMod(r, params.bits), dim: update.length, paddedDim: d, norm, clippedNorm: Math.min(norm, clip), clipped, roundedNorm, normBound: bound, roundingTries: tries, noiseSigma2 };
}

function makeNoise(noise: EncodeParams['noise']): DiscreteGaussianSampler | SkellamSampler | undefined {
  if (noise === null || typeof noise !== 'object') throw new DpError('DP_ERR_BAD_PARAM', '"noise" expected { kind, sigma }');
  if (noise.kind !== 'none' && (noise.sigma === null || (typeof noise.sigma !== 'number' && typeof noise.sigma !== 'object'))) {
    throw new DpError('DP_ERR_BAD_PARAM', `"noise.sigma" expected a number or { num, den } for kind '${String(noise.kind)}', got ${String(noise.sigma)}`);
  }
  switch (noise.kind) {
    case 'none':
      return undefined;
    case 'ddg':
      return new DiscreteGaussianSampler(noise.sigma as number | Sigma2);
    case 'skellam':
      return new SkellamSampler(noise.sigma as number | Sigma2);
    default:
      throw new DpError('DP_ERR_BAD_PARAM', `"noise.kind" expected 'ddg', 'skellam' or 'none', got ${String((noise as { kind: unknown }).kind)}`);
  }
}

/**
 * Decodes the modular sum of encoded updates (KLS21 Algorithm 2): centred
 * lift into [−2^(b−1), 2^(b−1)), multiply by γ = 1/scale, inverse rotation.
 * @param sum - Σ encoded mod 2^b, of length `paddedLength(dim)`.
 * @param dim - the caller's (unpadded) dimension.
 * @returns the estimate of Σ clipped updates (plus noise), length `dim`.
 */
export function decodeSum(sum: Uint32Array, dim: number, params: CodecParams): Float64Array {
  checkCodec(params);
  const d = paddedLength(dim);
  if (!(sum instanceof Uint32Array) || sum.length !== d) {
    throw new DpError('DP_ERR_BAD_PARAM', `"sum" expected Uint32Array of length ${d}, got ${sum instanceof Uint32Array ? `length=${sum.length}` : typeof sum}`);
  }
  if (params.bits < 32) {
    const m = 2 ** params.bits;
    for (let i = 0; i < d; i++) {
      if (sum[i]! >= m) throw new DpError('DP_ERR_BAD_PARAM', `"sum" has value ${sum[i]} ≥ 2^${params.bits} at index ${i}`);
    }
  }
  const y = centredLift(sum, params.bits);
  const gamma = 1 / params.scale;
  for (let i = 0; i < d; i++) y[i]! *= gamma;
  return unrotate(y, dim, params.rotationSeed);
}
