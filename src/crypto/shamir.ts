/**
 * t-of-k Shamir secret sharing (Shamir, "How to share a secret", CACM 1979)
 * of 32-byte secrets, limb by limb over the prime field GF(p),
 * p = 2^25 − 39 = 33554393 (the largest prime below 2^25). Used by secagg-v1
 * for the shares of s_u^SK and b_u (Bonawitz et al. CCS 2017 §4); spec §3.8.
 *
 * Encodings:
 * - secret: 32 bytes cut into L = 11 limbs, limb l = bytes [3l, 3l + 3) read
 *   big-endian for l < 10 (24 bits) and limb 10 = bytes [30, 32) (16 bits);
 *   every limb is below 2^24 < p;
 * - share index x: the holder's client id, an integer in [1, 2^24 − 1] (below
 *   p, so distinct ids are distinct non-zero field elements);
 * - share value: the 11 values f_l(x) as 4-byte big-endian words, 44 bytes,
 *   each word < p.
 *
 * Each limb l has its own polynomial f_l(X) = s_l + a_{l,1} X + … + a_{l,t−1} X^{t−1}
 * with independent uniform coefficients. Per limb this is Shamir's scheme, so
 * any t − 1 shares of limb l are uniformly distributed whatever s_l is (every
 * candidate s_l is matched by exactly one polynomial through those points).
 * The limbs' coefficients are independent, so the joint distribution of the
 * t − 1 shares of all limbs is the product of those uniform distributions:
 * it does not depend on the secret either (perfect hiding).
 *
 * Coefficients are drawn by exact rejection sampling: 4 bytes from the Rng as
 * a big-endian word, its low 25 bits kept, accepted when below p (a word is
 * rejected with probability 39 / 2^25 < 2^-19), the next 4 bytes tried
 * otherwise. Accepted values are uniform on [0, p) with no bias.
 *
 * Arithmetic is IEEE-754 double arithmetic on integers, exact because every
 * intermediate stays below 2^53 (the bounds are stated where they are used).
 * It is not constant time; shares are only ever handled by the client that
 * owns them and, after unmasking, by the server.
 *
 * Threshold t = 1 is accepted by the primitive but gives NO secrecy (every
 * share equals the secret); the protocol layer requires t ≥ 2.
 */
import { CryptoError, ValidationError } from '../errors.js';
import type { Rng } from './rng.js';
import { evaluateShares, LP, nearReduce } from './_shamirKernel.js';

/** The field modulus p = 2^25 − 39, the largest prime below 2^25. */
export const SHAMIR_PRIME = 33554393;
/** Length of a secret in bytes. */
export const SHAMIR_SECRET_BYTES = 32;
/** Number of limbs (field elements) a secret is cut into. */
export const SHAMIR_LIMBS = 11;
/** Length of a share value in bytes: one 4-byte big-endian word per limb. */
export const SHAMIR_SHARE_BYTES = 4 * SHAMIR_LIMBS;
/** Largest share index (client id): 2^24 − 1, below p. */
export const SHAMIR_MAX_X = 0xffffff;
/** Random bytes drawn per coefficient attempt (a word whose low 25 bits are kept; rejected if ≥ p). */
export const SHAMIR_COEFF_BYTES = 4;

const P = SHAMIR_PRIME;
const INV_P = 1 / P;
const HALF = (P - 1) / 2;
const L = SHAMIR_LIMBS;
const CODE = 'SHAMIR_ERR_BAD_INPUT';
/** Exclusive upper bound of limb l of a valid secret. */
const limbBound = (l: number): number => (l < L - 1 ? 1 << 24 : 1 << 16);

/**
 * a·b mod p for a, b in [0, p): the product is below 2^50, so it is exact; the
 * quotient estimate ⌊a·b·(1/p)⌋ is off by at most one, which the two
 * corrections absorb.
 */
function mulmod(a: number, b: number): number {
  const z = a * b;
  let r = z - Math.floor(z * INV_P) * P;
  if (r < 0) r += P;
  else if (r >= P) r -= P;
  return r;
}

/** Reduces an integer |v| < 2^53 into [0, p) (same off-by-one argument as {@link mulmod}). */
function reduce(v: number): number {
  let r = v - Math.floor(v * INV_P) * P;
  if (r < 0) r += P;
  else if (r >= P) r -= P;
  return r;
}

/** The balanced representative of r ∈ [0, p): in [−(p−1)/2, (p−1)/2], so |r| < 2^24. */
const balanced = (r: number): number => (r > HALF ? r - P : r);

/** Modular inverse of a ∈ [1, p) by the extended Euclidean algorithm (all values < 2^25, exact). */
export function modInverse(a: number): number {
  let r0 = P, r1 = reduce(a), s0 = 0, s1 = 1;
  if (r1 === 0) throw new CryptoError('SHAMIR_ERR_INCONSISTENT', 'modular inverse of zero');
  while (r1 !== 0) {
    const q = Math.floor(r0 / r1);
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return reduce(s0); // r0 = gcd = 1 since p is prime; |s0| < p
}

function checkThreshold(threshold: number, k: number): void {
  if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold > k) {
    throw new ValidationError(CODE, `"threshold" expected an integer in [1, ${k}], got ${String(threshold)}`);
  }
}

function checkXs(xs: readonly number[]): void {
  if (!Array.isArray(xs) || xs.length === 0) throw new ValidationError(CODE, '"xs" expected a non-empty array of share indices');
  const seen = new Set<number>();
  for (const x of xs) {
    if (!Number.isInteger(x) || x < 1 || x > SHAMIR_MAX_X) {
      throw new ValidationError(CODE, `"xs" expected integers in [1, ${SHAMIR_MAX_X}], got ${String(x)}`);
    }
    if (seen.has(x)) throw new ValidationError(CODE, `"xs" expected distinct indices, got ${x} twice`);
    seen.add(x);
  }
}

/**
 * Fills `out[i·LP + l]` (i ≥ 1, l < L) with uniform coefficients a_{l,i} in
 * balanced form, drawn in the order l = 0 … L−1, i = 1 … t−1 by the rejection
 * rule of the module comment. Words are requested in batches; the Rng is a
 * stream, so this reads the same bytes as drawing 4 at a time.
 */
function drawCoefficients(out: Float64Array, t: number, rng: Rng): void {
  const need = L * (t - 1);
  let got = 0, l = 0, i = 1;
  while (got < need) {
    const want = need - got;
    const r = rng.bytes(SHAMIR_COEFF_BYTES * want);
    if (!(r instanceof Uint8Array) || r.length !== SHAMIR_COEFF_BYTES * want) {
      throw new ValidationError(CODE, 'rng returned the wrong number of bytes');
    }
    for (let o = 0; o < r.length; o += 4) {
      // Low 25 bits of the big-endian word (the top 7 bits are dropped).
      const v = ((r[o]! & 1) << 24) | (r[o + 1]! << 16) | (r[o + 2]! << 8) | r[o + 3]!;
      if (v >= P) continue;
      out[i * LP + l] = balanced(v);
      got++;
      if (++i === t) { i = 1; l++; } // limb l's a_{l,1} … a_{l,t−1}, then limb l + 1's
    }
    r.fill(0);
  }
}

/**
 * Splits a 32-byte secret into one share per index in `xs` (same order), any
 * `threshold` of which recover it.
 * @param secret 32 bytes (11 limbs, see the module comment)
 * @param threshold t, 1 ≤ t ≤ xs.length (t = 1 gives no secrecy)
 * @param xs distinct share indices in [1, 2^24 − 1]
 * @param rng source of the coefficient words (4·11·(t−1) bytes, plus 4 per rejected word)
 * @returns 44-byte share values (f_0(x) ‖ … ‖ f_10(x), 4-byte big-endian words)
 * @throws ValidationError `SHAMIR_ERR_BAD_INPUT` on bad lengths, indices or threshold
 */
export function shamirSplit(secret: Uint8Array, threshold: number, xs: readonly number[], rng: Rng): Uint8Array[] {
  if (!(secret instanceof Uint8Array) || secret.length !== SHAMIR_SECRET_BYTES) {
    throw new ValidationError(CODE, `"secret" expected Uint8Array of length 32, got length=${(secret as Uint8Array)?.length}`);
  }
  checkXs(xs);
  checkThreshold(threshold, xs.length);
  const t = threshold;
  // coeffs[i·LP + l] = a_{l,i}; a_{l,0} = s_l. Column 11 is padding and stays 0.
  const coeffs = new Float64Array(t * LP);
  for (let l = 0; l < L; l++) {
    const o = 3 * l;
    coeffs[l] = l < L - 1 ? (secret[o]! << 16) | (secret[o + 1]! << 8) | secret[o + 2]! : (secret[o]! << 8) | secret[o + 1]!;
  }
  if (t > 1) drawCoefficients(coeffs, t, rng);
  const k = xs.length;
  const y = new Float64Array(k * LP);
  evaluateShares(coeffs, xs, t, y);
  coeffs.fill(0);
  const out: Uint8Array[] = new Array<Uint8Array>(k);
  for (let h = 0; h < k; h++) {
    const share = new Uint8Array(SHAMIR_SHARE_BYTES);
    for (let l = 0, o = h * LP; l < L; l++, o++) {
      const w = reduce(y[o]!); // < p < 2^25: the first byte is 0 or 1
      share[4 * l] = w >>> 24; share[4 * l + 1] = (w >>> 16) & 0xff; share[4 * l + 2] = (w >>> 8) & 0xff; share[4 * l + 3] = w & 0xff;
    }
    out[h] = share;
  }
  y.fill(0);
  return out;
}

/**
 * Lagrange coefficients at 0 for the distinct non-zero indices `xs` (same
 * order): λ_i = Π_{j≠i} x_j / (x_j − x_i) mod p, so that f(0) = Σ λ_i f(x_i)
 * for every polynomial f of degree < xs.length. One field inversion in total
 * (Montgomery's batch-inversion trick).
 * @returns the λ_i as integers in [0, p)
 */
export function lagrangeAtZero(xs: readonly number[]): number[] {
  checkXs(xs);
  const n = xs.length;
  let num = 1;
  for (const x of xs) num = mulmod(num, x);
  // den_i = x_i · Π_{j≠i} (x_j − x_i), so λ_i = num / den_i. The i loop is
  // innermost so the n products are independent chains. Near-balanced
  // intermediates: |den_i| < 2^24 and |x_j − x_i| < 2^24, so each product is
  // below 2^48 and exact (see nearReduce).
  const xf = Float64Array.from(xs);
  const den = Float64Array.from(xs);
  for (let j = 0; j < n; j++) {
    const xj = xf[j]!;
    for (let i = 0; i < j; i++) den[i] = nearReduce(den[i]! * (xj - xf[i]!));
    for (let i = j + 1; i < n; i++) den[i] = nearReduce(den[i]! * (xj - xf[i]!));
  }
  for (let i = 0; i < n; i++) den[i] = reduce(den[i]!);
  // Batch inversion: prefix products, one inverse, walk back.
  const prefix = new Float64Array(n);
  let acc = 1;
  for (let i = 0; i < n; i++) { prefix[i] = acc; acc = mulmod(acc, den[i]!); }
  let inv = modInverse(acc);
  const out: number[] = new Array<number>(n);
  for (let i = n - 1; i >= 0; i--) {
    out[i] = mulmod(mulmod(inv, prefix[i]!), num);
    inv = mulmod(inv, den[i]!);
  }
  return out;
}

/**
 * Caches Lagrange coefficients at 0 per distinct set of indices (keyed by the
 * sorted indices), so the server reconstructing many secrets from the same
 * set of surviving share holders computes them once.
 */
export class LagrangeCache {
  private readonly map = new Map<string, Map<number, number>>();
  /** Number of lookups answered from the cache. */
  hits = 0;
  /** Number of lookups that computed fresh coefficients. */
  misses = 0;

  /** Coefficients for `xs`, in the order of `xs`, as integers in [0, p). */
  coefficients(xs: readonly number[]): number[] {
    checkXs(xs);
    const sorted = [...xs].sort((a, b) => a - b);
    const key = sorted.join(',');
    let byX = this.map.get(key);
    if (byX === undefined) {
      this.misses++;
      const l = lagrangeAtZero(sorted);
      byX = new Map(sorted.map((x, i) => [x, l[i]!]));
      this.map.set(key, byX);
    } else {
      this.hits++;
    }
    return xs.map((x) => byX.get(x)!);
  }

  /** Number of distinct index sets cached. */
  get size(): number { return this.map.size; }
}

/**
 * Whether `share` is a well-formed share value: 44 bytes whose eleven 4-byte
 * big-endian words are all below p. Every honest share is.
 */
export function isShamirShare(share: unknown): share is Uint8Array {
  if (!(share instanceof Uint8Array) || share.length !== SHAMIR_SHARE_BYTES) return false;
  const dv = new DataView(share.buffer, share.byteOffset, share.byteLength);
  for (let l = 0; l < L; l++) if (dv.getUint32(4 * l, false) >= P) return false;
  return true;
}

/**
 * Recovers the secret from EXACTLY `threshold` shares (the caller chooses which).
 * @param xs share indices, distinct, in [1, 2^24 − 1]
 * @param ys 44-byte share values, same order as `xs`
 * @param threshold t; `xs.length` must equal t
 * @param cache optional Lagrange-coefficient cache
 * @returns the 32-byte secret
 * @throws ValidationError `SHAMIR_ERR_BAD_INPUT` on a count, index or length error or a word ≥ p;
 *   CryptoError `SHAMIR_ERR_INCONSISTENT` if an interpolated limb is not a valid
 *   secret limb (≥ 2^24, or ≥ 2^16 for the last): the shares are not from one
 *   sharing of a 32-byte secret
 */
export function shamirCombine(xs: readonly number[], ys: readonly Uint8Array[], threshold: number,
  cache?: LagrangeCache): Uint8Array {
  if (!Number.isSafeInteger(threshold) || threshold < 1) {
    throw new ValidationError(CODE, `"threshold" expected an integer ≥ 1, got ${String(threshold)}`);
  }
  if (!Array.isArray(xs) || xs.length !== threshold) {
    throw new ValidationError(CODE, `"xs" expected exactly threshold=${threshold} shares, got ${(xs as unknown[])?.length}`);
  }
  if (!Array.isArray(ys) || ys.length !== xs.length) {
    throw new ValidationError(CODE, `"ys" expected ${xs.length} share values, got ${(ys as unknown[])?.length}`);
  }
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (!(y instanceof Uint8Array) || y.length !== SHAMIR_SHARE_BYTES) {
      throw new ValidationError(CODE, `"share" expected Uint8Array of length ${SHAMIR_SHARE_BYTES}, got length=${(y as Uint8Array)?.length} (index ${i})`);
    }
    if (!isShamirShare(y)) throw new ValidationError(CODE, `"share" at index ${i} has a word not below the field modulus`);
  }
  const lambdas = cache ? cache.coefficients(xs) : lagrangeAtZero(xs);
  // s_l = Σ_i λ_i · y_{i,l}. Balanced λ (|λ| < 2^24) times y < 2^25 is below
  // 2^49; a partial reduction every 15 products keeps |acc| < 2^26 + 15·2^49 < 2^53.
  const acc = new Float64Array(L);
  for (let i = 0; i < ys.length; i++) {
    const lam = balanced(lambdas[i]!);
    const y = ys[i]!;
    const dv = new DataView(y.buffer, y.byteOffset, y.byteLength);
    for (let l = 0; l < L; l++) acc[l] = acc[l]! + lam * dv.getUint32(4 * l, false);
    if (i % 15 === 14) for (let l = 0; l < L; l++) acc[l] = acc[l]! - Math.floor(acc[l]! * INV_P) * P;
  }
  const secret = new Uint8Array(SHAMIR_SECRET_BYTES);
  let bad = false;
  for (let l = 0; l < L; l++) {
    const s = reduce(acc[l]!);
    if (s >= limbBound(l)) bad = true;
    if (l < L - 1) { secret[3 * l] = s >>> 16; secret[3 * l + 1] = (s >>> 8) & 0xff; secret[3 * l + 2] = s & 0xff; }
    else { secret[3 * l] = s >>> 8; secret[3 * l + 1] = s & 0xff; }
  }
  acc.fill(0);
  if (bad) {
    secret.fill(0);
    throw new CryptoError('SHAMIR_ERR_INCONSISTENT', 'a recovered limb is out of range for a 32-byte secret: the shares are inconsistent');
  }
  return secret;
}
