/**
 * t-of-k Shamir secret sharing (Shamir, "How to share a secret", CACM 1979)
 * over the prime field GF(p), p = 2^256 + 297, the smallest prime above 2^256,
 * so every 32-byte secret is a field element without chunking. Used by
 * secagg-v1 for the shares of s_u^SK and b_u (Bonawitz et al. CCS 2017 §4).
 *
 * Encodings:
 * - secret: 32 bytes, read as a big-endian integer (< 2^256 < p);
 * - share index x: the holder's client id, an integer in [1, 2^32 − 1];
 * - share value y = f(x): 33 bytes, big-endian, < p.
 *
 * Polynomial coefficients a_1 … a_{t−1} are 48 bytes (384 bits) from the
 * injected Rng reduced mod p. The statistical distance of that reduction from
 * uniform is below p / 2^384 < 2^-127 per coefficient, i.e. ≤ 2^-128 up to a
 * factor 2 (the standard "wide reduction" argument, cf. FIPS 186-5 A.2.1).
 *
 * Threshold t = 1 is accepted by the primitive but gives NO secrecy (every
 * share equals the secret); the protocol layer requires t ≥ 2.
 *
 * BigInt arithmetic is not constant time; shares are only ever handled by the
 * client that owns them and, after unmasking, by the server.
 */
import { CryptoError, ValidationError } from '../errors.js';
import type { Rng } from './rng.js';

/** The field modulus p = 2^256 + 297. */
export const SHAMIR_PRIME: bigint = (1n << 256n) + 297n;
/** Length of a secret in bytes. */
export const SHAMIR_SECRET_BYTES = 32;
/** Length of a share value in bytes. */
export const SHAMIR_SHARE_BYTES = 33;
/** Largest share index (client id). */
export const SHAMIR_MAX_X = 0xffffffff;
/** Random bytes drawn per coefficient (reduced mod p; bias < 2^-127). */
export const SHAMIR_COEFF_BYTES = 48;

const P = SHAMIR_PRIME;
const CODE = 'SHAMIR_ERR_BAD_INPUT';

const mod = (a: bigint): bigint => { const r = a % P; return r < 0n ? r + P : r; };

function bytesToBig(b: Uint8Array): bigint {
  let hex = '';
  for (let i = 0; i < b.length; i++) hex += b[i]!.toString(16).padStart(2, '0');
  return hex.length === 0 ? 0n : BigInt('0x' + hex);
}

function bigToBytes(v: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = len - 1; i >= 0; i--) { out[i] = Number(v & 0xffn); v >>= 8n; }
  return out;
}

/** Modular inverse mod p by the extended Euclidean algorithm; `a` must be non-zero mod p. */
export function modInverse(a: bigint): bigint {
  let r0 = P, r1 = mod(a), s0 = 0n, s1 = 1n;
  if (r1 === 0n) throw new CryptoError('SHAMIR_ERR_INCONSISTENT', 'modular inverse of zero');
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return mod(s0); // r0 = gcd = 1 since p is prime
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
 * Splits a 32-byte secret into one share per index in `xs` (same order), any
 * `threshold` of which recover it.
 * @param secret 32 bytes, big-endian integer
 * @param threshold t, 1 ≤ t ≤ xs.length (t = 1 gives no secrecy)
 * @param xs distinct share indices in [1, 2^32 − 1]
 * @param rng source of the 48·(t−1) coefficient bytes
 * @returns 33-byte share values f(x)
 * @throws ValidationError `SHAMIR_ERR_BAD_INPUT` on bad lengths, indices or threshold
 */
export function shamirSplit(secret: Uint8Array, threshold: number, xs: readonly number[], rng: Rng): Uint8Array[] {
  if (!(secret instanceof Uint8Array) || secret.length !== SHAMIR_SECRET_BYTES) {
    throw new ValidationError(CODE, `"secret" expected Uint8Array of length 32, got length=${(secret as Uint8Array)?.length}`);
  }
  checkXs(xs);
  checkThreshold(threshold, xs.length);
  // f(X) = s + a_1 X + … + a_{t−1} X^{t−1}; coeffs[0] = s.
  const coeffs: bigint[] = [bytesToBig(secret)];
  for (let i = 1; i < threshold; i++) {
    const r = rng.bytes(SHAMIR_COEFF_BYTES);
    if (r.length !== SHAMIR_COEFF_BYTES) throw new ValidationError(CODE, 'rng returned the wrong number of bytes');
    coeffs.push(bytesToBig(r) % P);
  }
  return xs.map((x) => {
    const bx = BigInt(x);
    let y = 0n;
    for (let i = coeffs.length - 1; i >= 0; i--) y = (y * bx + coeffs[i]!) % P; // Horner
    return bigToBytes(y, SHAMIR_SHARE_BYTES);
  });
}

/**
 * Lagrange coefficients at 0 for the distinct non-zero indices `xs` (same
 * order): λ_i = Π_{j≠i} x_j / (x_j − x_i) mod p, so that f(0) = Σ λ_i f(x_i)
 * for every polynomial f of degree < xs.length. One field inversion in total
 * (Montgomery's batch-inversion trick).
 */
export function lagrangeAtZero(xs: readonly number[]): bigint[] {
  checkXs(xs);
  const n = xs.length;
  const bx = xs.map((x) => BigInt(x));
  let num = 1n;
  for (const x of bx) num = (num * x) % P;
  // den_i = x_i · Π_{j≠i} (x_j − x_i), so λ_i = num / den_i.
  const den: bigint[] = new Array<bigint>(n);
  for (let i = 0; i < n; i++) {
    let d = bx[i]!;
    for (let j = 0; j < n; j++) if (j !== i) d = (d * (bx[j]! - bx[i]!)) % P;
    den[i] = mod(d);
  }
  // Batch inversion: prefix products, one inverse, walk back.
  const prefix: bigint[] = new Array<bigint>(n);
  let acc = 1n;
  for (let i = 0; i < n; i++) { prefix[i] = acc; acc = (acc * den[i]!) % P; }
  let inv = modInverse(acc);
  const out: bigint[] = new Array<bigint>(n);
  for (let i = n - 1; i >= 0; i--) {
    out[i] = (((inv * prefix[i]!) % P) * num) % P;
    inv = (inv * den[i]!) % P;
  }
  return out;
}

/**
 * Caches Lagrange coefficients at 0 per distinct set of indices (keyed by the
 * sorted indices), so the server reconstructing many secrets from the same
 * set of surviving share holders computes them once.
 */
export class LagrangeCache {
  private readonly map = new Map<string, Map<number, bigint>>();
  /** Number of lookups answered from the cache. */
  hits = 0;
  /** Number of lookups that computed fresh coefficients. */
  misses = 0;

  /** Coefficients for `xs`, in the order of `xs`. */
  coefficients(xs: readonly number[]): bigint[] {
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
 * Recovers the secret from EXACTLY `threshold` shares (the caller chooses which).
 * @param xs share indices, distinct, in [1, 2^32 − 1]
 * @param ys 33-byte share values, same order as `xs`
 * @param threshold t; `xs.length` must equal t
 * @param cache optional Lagrange-coefficient cache
 * @returns the 32-byte secret
 * @throws ValidationError `SHAMIR_ERR_BAD_INPUT` on a count, index or length error or a value ≥ p;
 *   CryptoError `SHAMIR_ERR_INCONSISTENT` if the interpolated value does not fit 32 bytes
 *   (the shares are not from one sharing of a 32-byte secret)
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
  const vals = ys.map((y, i) => {
    if (!(y instanceof Uint8Array) || y.length !== SHAMIR_SHARE_BYTES) {
      throw new ValidationError(CODE, `"share" expected Uint8Array of length 33, got length=${(y as Uint8Array)?.length} (index ${i})`);
    }
    const v = bytesToBig(y);
    if (v >= P) throw new ValidationError(CODE, `"share" value at index ${i} is not below the field modulus`);
    return v;
  });
  const lambdas = cache ? cache.coefficients(xs) : lagrangeAtZero(xs);
  let s = 0n;
  for (let i = 0; i < vals.length; i++) s = (s + lambdas[i]! * vals[i]!) % P;
  if (s >> 256n !== 0n) {
    throw new CryptoError('SHAMIR_ERR_INCONSISTENT', 'recovered value does not fit 32 bytes: the shares are inconsistent');
  }
  return bigToBytes(s, SHAMIR_SECRET_BYTES);
}
