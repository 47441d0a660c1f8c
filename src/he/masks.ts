/**
 * Pairwise and self masks reduced mod the plain modulus t (he-sum-v1 §8.2),
 * for the `he+masks` mode: a site adds the secagg-v1 masks of Bonawitz et
 * al. (CCS 2017, §4, Fig. 4 round 2) to its input **inside** the plaintext,
 * so the masks must live mod t (a prime, for batching), not mod 2^b.
 *
 * Mask entry i of a 16-byte key k, mod t: read the AES-128-CTR keystream of
 * k (initial counter block 0, the keystream of secagg-v1's `expandMask`) as
 * little-endian uint32 words w[0], w[1], …, and take
 *
 *     mask_t(k)[i] = (w[4i] + w[4i+1]·2^32 + w[4i+2]·2^64 + w[4i+3]·2^96) mod t,
 *
 * 128 keystream bits per entry, so an entry is within t/2^128 ≤ 2^-76 of
 * uniform mod t (t < 2^52 here) in statistical distance.
 *
 * Computation. Σ ±(v_k mod t) ≡ Σ ±v_k (mod t), so a sum of masks need not
 * reduce each mask: {@link sumModT} adds the keystream words of every term
 * into four float64 lanes per entry (exact: |lane| ≤ terms·2^32 < 2^53 for
 * fewer than 2^20 terms), and reduces each entry once at the end: a carry
 * pass makes the lanes 32-bit words plus a small signed top, then Horner in
 * 16-bit steps, each step an exact (r·2^16 + h) mod t in doubles
 * ({@link mulAddMod16}). Exact integer arithmetic throughout; checked against
 * a BigInt reference in test/he/masks.test.ts.
 * @module
 */
import { ValidationError } from '../errors.js';
import { counterBlockAt, type MaskTerm } from '../crypto/mask.js';
import type { CryptoProvider } from '../crypto/types.js';

/** The largest plain modulus the double-precision reduction handles exactly (exclusive). */
export const MASK_T_LIMIT = 2 ** 52;
/** The most terms (masks and the input) one accumulator adds: keeps every lane below 2^53. */
export const MASK_MAX_TERMS = 2 ** 20;

const TWO16 = 65536;
const TWO26 = 67108864;
const TWO32 = 4294967296;
/** Entries expanded per keystream chunk (16 bytes each). */
const CHUNK_ENTRIES = 4096;

function checkModulus(t: bigint | number): number {
  const tn = Number(t);
  if (!Number.isSafeInteger(tn) || tn < 2 || tn >= MASK_T_LIMIT || BigInt(tn) !== BigInt(t)) {
    throw new ValidationError('HE_ERR_BAD_PARAMS', `masks mod t need 2 ≤ t < 2^52, got ${String(t)}`);
  }
  return tn;
}

/**
 * (r·2^16 + h) mod t, exactly, for 0 ≤ r < t < 2^52 and 0 ≤ h < 2^16.
 *
 * q = ⌊(r·2^16 + h)/t⌋ is estimated in floating point (off by at most one:
 * the quotient is below 2^17 and the estimate's relative error ~2^-52), then
 * the remainder r·2^16 + h − q·t is computed exactly by splitting r and t at
 * 2^26: every partial product is below 2^44, and the remainder itself,
 * within (−t, 2t), below 2^53. One correction puts it in [0, t).
 */
export function mulAddMod16(r: number, h: number, t: number, tH: number, tL: number): number {
  const q = Math.floor((r * TWO16 + h) / t);
  const rH = Math.floor(r / TWO26);
  const rL = r - rH * TWO26;
  let rem = (rH * TWO16 - q * tH) * TWO26 + (rL * TWO16 - q * tL + h);
  while (rem < 0) rem += t;
  while (rem >= t) rem -= t;
  return rem;
}

/**
 * The value a0 + a1·2^32 + a2·2^64 + a3·2^96 mod t, for integer lanes
 * |a_j| ≤ 2^52 (exact doubles), as a number in [0, t).
 */
export function reduceLanes(a0: number, a1: number, a2: number, a3: number, t: number, tH: number, tL: number): number {
  // Carry pass: w_j in [0, 2^32), top the signed carry out of lane 3 (|top| ≤ 2^21).
  let c = Math.floor(a0 / TWO32);
  const w0 = a0 - c * TWO32;
  a1 += c; c = Math.floor(a1 / TWO32);
  const w1 = a1 - c * TWO32;
  a2 += c; c = Math.floor(a2 / TWO32);
  const w2 = a2 - c * TWO32;
  a3 += c; c = Math.floor(a3 / TWO32);
  const w3 = a3 - c * TWO32;
  let r = c % t;
  if (r < 0) r += t;
  // Horner over the eight 16-bit limbs, most significant first.
  for (const w of [w3, w2, w1, w0]) {
    const hi = Math.floor(w / TWO16);
    r = mulAddMod16(r, hi, t, tH, tL);
    r = mulAddMod16(r, w - hi * TWO16, t, tH, tL);
  }
  return r;
}

/**
 * Σ ±mask_t(term) (+ the input, when given) mod t, entry by entry, as exact
 * integers in [0, t). Works window by window: each term's keystream is read
 * in order, one window of entries at a time (entry i is AES block i of the
 * stream), into four float64 lanes per entry of the window, which are then
 * reduced. Memory: the result (8 bytes a value) plus one window's lanes and
 * keystream; the lanes and keystream are wiped. Keys are not kept.
 */
export function sumModT(dim: number, t: bigint | number, provider: CryptoProvider, terms: readonly MaskTerm[], input?: Uint32Array): Float64Array {
  if (!Number.isSafeInteger(dim) || dim < 1 || dim > 2 ** 24) throw new ValidationError('HE_ERR_BAD_INPUT', `dim must be an integer in 1…2^24, got ${String(dim)}`);
  const tn = checkModulus(t);
  if (input !== undefined && (!(input instanceof Uint32Array) || input.length !== dim)) throw new ValidationError('HE_ERR_BAD_INPUT', `expected an input of ${dim} uint32 entries`);
  if (terms.length + 1 > MASK_MAX_TERMS) throw new ValidationError('HE_ERR_BAD_INPUT', `at most ${MASK_MAX_TERMS - 1} masks in one sum`);
  for (const term of terms) {
    if (!(term.key instanceof Uint8Array) || term.key.length !== 16) throw new ValidationError('HE_ERR_BAD_INPUT', 'a mask key has 16 bytes');
    if (term.sign !== 1 && term.sign !== -1) throw new ValidationError('HE_ERR_BAD_INPUT', 'sign must be 1 or -1');
  }
  const tH = Math.floor(tn / TWO26);
  const tL = tn - tH * TWO26;
  const out = new Float64Array(dim);
  const lanes = new Float64Array(4 * CHUNK_ENTRIES);
  const scratch = new Uint8Array(16 * CHUNK_ENTRIES);
  const words = new Uint32Array(scratch.buffer);
  const le = new DataView(scratch.buffer);
  const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  const streams = terms.map((term) => provider.aes128Ctr(term.key, counterBlockAt(0)));
  try {
    for (let e0 = 0; e0 < dim; e0 += CHUNK_ENTRIES) {
      const n = Math.min(CHUNK_ENTRIES, dim - e0);
      lanes.fill(0, 0, 4 * n);
      if (input !== undefined) for (let i = 0; i < n; i++) lanes[4 * i] = input[e0 + i]!;
      const chunk = scratch.subarray(0, 16 * n);
      for (let k = 0; k < terms.length; k++) {
        streams[k]!.fill(chunk); // entries e0 … e0 + n − 1: the stream's next n blocks
        const s = terms[k]!.sign;
        if (!littleEndian) for (let j = 0; j < 4 * n; j++) lanes[j] += s * le.getUint32(4 * j, true);
        else if (s === 1) for (let j = 0; j < 4 * n; j++) lanes[j] += words[j]!;
        else for (let j = 0; j < 4 * n; j++) lanes[j] -= words[j]!;
      }
      for (let i = 0; i < n; i++) out[e0 + i] = reduceLanes(lanes[4 * i]!, lanes[4 * i + 1]!, lanes[4 * i + 2]!, lanes[4 * i + 3]!, tn, tH, tL);
    }
  } finally {
    lanes.fill(0);
    scratch.fill(0);
  }
  return out;
}

/** mask_t(key), the first `dim` entries (a reference: tests and vectors). */
export function expandMaskModT(key: Uint8Array, dim: number, t: bigint | number, provider: CryptoProvider): Float64Array {
  return sumModT(dim, t, provider, [{ key, sign: 1 }]);
}

/** y = x + Σ ±mask_t(term) mod t: a site's masked input in the he+masks mode (the caller wipes y after use). */
export function maskModT(input: Uint32Array, terms: readonly MaskTerm[], t: bigint | number, provider: CryptoProvider): Float64Array {
  if (!(input instanceof Uint32Array)) throw new ValidationError('HE_ERR_BAD_INPUT', 'the input must be a Uint32Array');
  return sumModT(input.length, t, provider, terms, input);
}
