/**
 * Randomised Hadamard rotation ("flattening") for distributed DP: x ↦ H·D·x with
 * H the normalised Walsh–Hadamard matrix (H = Hᵀ = H⁻¹) and D a diagonal of
 * random signs. After the rotation every coordinate of a vector of norm r is
 * sub-Gaussian with variance proxy r²/d (Kairouz, Liu, Steinke, ICML 2021,
 * "flattening"), which bounds the modular-wrap probability (see params.ts).
 *
 * The signs come from a per-round seed shared by all sites: sign i is bit
 * (i mod 8) of byte ⌊i/8⌋ of the DRBG (src/crypto/drbg.ts) with label
 * "tally/dp/rotation/v1", i.e. the AES-256-CTR keystream under
 * key = SHA-256("tally/dp/rotation/v1" ‖ seed), all-zero initial counter
 * block; bit 1 means −1. The rotation is public randomness: it protects
 * utility (no coordinate carries much of the norm), not privacy.
 * @module
 */
import { Drbg } from '../crypto/drbg.js';
import { DpError } from '../errors.js';

const MAX_LOG2 = 30;
/** Domain-separation label of the rotation-sign DRBG. */
const ROTATION_LABEL = 'tally/dp/rotation/v1';

/** The smallest power of two ≥ n (n ≥ 1). */
export function paddedLength(n: number): number {
  if (!Number.isSafeInteger(n) || n < 1 || n > 2 ** MAX_LOG2) {
    throw new DpError('DP_ERR_BAD_PARAM', `"dim" expected an integer in [1, 2^${MAX_LOG2}], got ${String(n)}`);
  }
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * In-place normalised fast Walsh–Hadamard transform: x ← H·x with
 * H = H_n/√n, so ‖Hx‖ = ‖x‖ and applying it twice is the identity.
 * @param x - vector whose length is a power of two.
 * @throws DpError `DP_ERR_BAD_PARAM` if the length is not a power of two.
 */
export function fwht(x: Float64Array): Float64Array {
  const n = x.length;
  if (n === 0 || (n & (n - 1)) !== 0) {
    throw new DpError('DP_ERR_BAD_PARAM', `"x" expected a length that is a power of two, got length=${n}`);
  }
  for (let h = 1; h < n; h *= 2) {
    for (let i = 0; i < n; i += 2 * h) {
      for (let j = i; j < i + h; j++) {
        const a = x[j]!;
        const b = x[j + h]!;
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
  const norm = 1 / Math.sqrt(n);
  for (let i = 0; i < n; i++) x[i]! *= norm;
  return x;
}

/**
 * The packed sign bits of D for a seed: `n` bits of the keystream described
 * in the module comment (bit 1 = −1).
 * @param seed - the round's rotation seed (at least 16 bytes).
 * @param n - number of signs.
 */
export function rotationSigns(seed: Uint8Array, n: number): Uint8Array {
  if (!(seed instanceof Uint8Array) || seed.length < 16) {
    throw new DpError('DP_ERR_BAD_PARAM', `"rotationSeed" expected Uint8Array of length ≥ 16, got ${seed instanceof Uint8Array ? `length=${seed.length}` : typeof seed}`);
  }
  return new Drbg(ROTATION_LABEL, seed).bytes(Math.ceil(n / 8));
}

function applySigns(x: Float64Array, signs: Uint8Array): void {
  for (let i = 0; i < x.length; i++) {
    if ((signs[i >>> 3]! >>> (i & 7)) & 1) x[i] = -x[i]!;
  }
}

/**
 * Randomised rotation y = H·D·x. `x` is zero-padded to the next power of two;
 * the result has that padded length.
 * @param x - input vector (not modified).
 * @param seed - per-round shared rotation seed.
 */
export function rotate(x: Float32Array | Float64Array, seed: Uint8Array): Float64Array {
  const n = paddedLength(Math.max(1, x.length));
  const y = new Float64Array(n);
  y.set(x);
  applySigns(y, rotationSigns(seed, n));
  return fwht(y);
}

/**
 * Inverse rotation x = D·H·y (H and D are their own inverses), truncated to
 * the first `dim` entries.
 * @param y - rotated vector, length a power of two (not modified).
 * @param dim - original dimension (≤ y.length).
 * @param seed - the same seed as used by {@link rotate}.
 */
export function unrotate(y: Float64Array, dim: number, seed: Uint8Array): Float64Array {
  if (!Number.isSafeInteger(dim) || dim < 1 || dim > y.length) {
    throw new DpError('DP_ERR_BAD_PARAM', `"dim" expected an integer in [1, ${y.length}], got ${String(dim)}`);
  }
  const x = fwht(Float64Array.from(y));
  applySigns(x, rotationSigns(seed, x.length));
  return x.subarray(0, dim).slice();
}
