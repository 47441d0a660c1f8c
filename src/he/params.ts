/**
 * Parameter sets of homomorphic summation (he-sum-v1): BGV with batching,
 * chosen from the number of sites n and the value bits b. Pure arithmetic:
 * nothing here loads node-seal, so a parameter set can be chosen, checked and
 * compared on a machine without it.
 *
 * A set fixes the ring degree N (= slots per ciphertext), the ciphertext
 * primes q₁…q_k (the same primes SEAL's `CoeffModulus.Create` makes) and the
 * plain modulus t (the same prime as SEAL's `PlainModulus.Batching`). Every
 * set is checked against three conditions, and refused when one fails:
 *
 * - security: the bits of q₁·…·q_k are at most SEAL's 128-bit bound for N
 *   ({@link MAX_COEFF_BITS_128}, the HomomorphicEncryption.org table SEAL
 *   applies with `sec_level_type::tc128`), else `HE_ERR_INSECURE`;
 * - no wrap: t > n·(2^b − 1), the largest possible sum, so the sum mod t is
 *   the sum, else `HE_ERR_WRAP_RISK`;
 * - no decryption failure: 44·n·t < Q, where Q is the product of the primes
 *   a ciphertext carries (all but the last, SEAL's special prime, when k > 1).
 *   A fresh symmetric BGV ciphertext decrypts to m + t·e with m's coefficients
 *   in [0, t) and e's in [−21, 21] (SEAL's centred binomial noise; its
 *   clipped Gaussian stops at 19.2), so a sum of n has |Σm + t·Σe| < 22·n·t,
 *   which must stay under Q/2. Else `HE_ERR_WRAP_RISK`.
 * @module
 */
import { createHash } from 'node:crypto';
import { ValidationError } from '../errors.js';

/**
 * SEAL's largest total coefficient-modulus bit count at 128-bit classical
 * security, by ring degree N (`CoeffModulus::MaxBitCount(N, tc128)`).
 */
export const MAX_COEFF_BITS_128: Readonly<Record<number, number>> = Object.freeze({
  1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881,
});

/** The most sites a parameter set is made for (n·(2^32 − 1) stays below 2^53, exact in a float64). */
export const HE_MAX_SITES = 1 << 20;
/** The longest vector one ciphertext envelope carries. */
export const HE_MAX_LENGTH = 1 << 24;

/** The shape of a parameter set before n and b pick its plain modulus. */
export interface HeSetSpec {
  /** Ring degree N, a power of two in {@link MAX_COEFF_BITS_128}: values per ciphertext. */
  readonly polyModulusDegree: number;
  /** Bit sizes of the ciphertext primes, as for SEAL's `CoeffModulus.Create` (each 20…60). */
  readonly coeffModulusBits: readonly number[];
}

/**
 * The named sets, smallest first; {@link heParams} takes the first that holds
 * n sites of b bits.
 *
 * - `bgv-4096-q60`: N = 4096 and one 60-bit prime (60 ≤ 109 bits): about
 *   8 bytes a value with seeded encryption; holds 44·n·t < 2^59.9.
 * - `bgv-8192-q120`: N = 8192 and three 60-bit primes (180 ≤ 218 bits), of
 *   which a ciphertext carries two (Q ≈ 2^120): about 16 bytes a value, for
 *   many sites with wide values.
 */
export const HE_SETS: Readonly<Record<string, HeSetSpec>> = Object.freeze({
  'bgv-4096-q60': Object.freeze({ polyModulusDegree: 4096, coeffModulusBits: Object.freeze([60]) }),
  'bgv-8192-q120': Object.freeze({ polyModulusDegree: 8192, coeffModulusBits: Object.freeze([60, 60, 60]) }),
});

/** A checked parameter set for n sites of b-bit values. */
export interface HeParams {
  /** A name of {@link HE_SETS}, or `custom`. */
  readonly set: string;
  readonly scheme: 'bgv';
  /** Ring degree N: slots per ciphertext. */
  readonly polyModulusDegree: number;
  /** Every ciphertext prime, as SEAL makes them; the last is the special prime when there are several. */
  readonly coeffModulus: readonly bigint[];
  /** Bit sizes asked for, one per prime. */
  readonly coeffModulusBits: readonly number[];
  /** The primes a ciphertext carries (all but the special prime when there are several). */
  readonly dataModulus: readonly bigint[];
  /** Plain modulus t: a prime ≡ 1 (mod 2N), so batching works, and > {@link sumBound}. */
  readonly plainModulus: bigint;
  readonly plainModulusBits: number;
  /** Classical security in bits: 128 (the total coefficient bits are within SEAL's tc128 table). */
  readonly securityLevel: 128;
  /** The most sites a sum may hold, n. */
  readonly sites: number;
  /** Each value is an integer in [0, 2^b). */
  readonly bits: number;
  /** n·(2^b − 1), the largest sum; t exceeds it. */
  readonly sumBound: bigint;
}

function bad(code: 'HE_ERR_BAD_PARAMS' | 'HE_ERR_INSECURE' | 'HE_ERR_WRAP_RISK', message: string): never {
  throw new ValidationError(code, message);
}

/** ⌈log₂ n⌉ for n ≥ 1. */
function ceilLog2(n: number): number {
  let k = 0;
  while (2 ** k < n) k++;
  return k;
}

function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let r = 1n;
  let b = base % mod;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % mod;
    b = (b * b) % mod;
    e >>= 1n;
  }
  return r;
}

/** Deterministic Miller–Rabin, exact below 3.3·10^24 (the first 13 prime bases). */
export function isPrime(n: bigint): boolean {
  if (n < 2n) return false;
  const bases = [2n, 3n, 5n, 7n, 11n, 13n, 17n, 19n, 23n, 29n, 31n, 37n, 41n];
  for (const p of bases) if (n % p === 0n) return n === p;
  let d = n - 1n;
  let s = 0;
  while ((d & 1n) === 0n) { d >>= 1n; s++; }
  for (const a of bases) {
    let x = modPow(a, d, n);
    if (x === 1n || x === n - 1n) continue;
    let composite = true;
    for (let i = 1; i < s; i++) {
      x = (x * x) % n;
      if (x === n - 1n) { composite = false; break; }
    }
    if (composite) return false;
  }
  return true;
}

/**
 * The `count` largest primes of exactly `bits` bits that are ≡ 1 (mod 2N), in
 * descending order: what SEAL's `CoeffModulus.Create(N, [bits, …])` and
 * `PlainModulus.Batching(N, bits)` return. Empty when there are fewer.
 */
export function batchingPrimes(polyModulusDegree: number, bits: number, count: number): bigint[] {
  const step = 2n * BigInt(polyModulusDegree);
  const lo = 1n << BigInt(bits - 1);
  // The largest value ≡ 1 (mod 2N) below 2^bits.
  let p = (1n << BigInt(bits)) - step + 1n;
  const out: bigint[] = [];
  while (p >= lo && out.length < count) {
    if (isPrime(p)) out.push(p);
    p -= step;
  }
  return out;
}

const primeCache = new Map<string, bigint[]>();
function cachedPrimes(n: number, bits: number, count: number): bigint[] {
  const key = `${n}/${bits}/${count}`;
  let v = primeCache.get(key);
  if (v === undefined) { v = batchingPrimes(n, bits, count); primeCache.set(key, v); }
  return v;
}

function bitLength(x: bigint): number {
  return x.toString(2).length;
}

/**
 * The primes of a set spec, as `CoeffModulus.Create` orders them: for each
 * size, the largest primes of that size, handed out smallest first (so the
 * last, SEAL's special prime, is the largest of its size).
 */
function coeffPrimes(spec: HeSetSpec): bigint[] {
  const need = new Map<number, number>();
  for (const b of spec.coeffModulusBits) need.set(b, (need.get(b) ?? 0) + 1);
  const pools = new Map<number, bigint[]>();
  for (const [b, count] of need) {
    const primes = cachedPrimes(spec.polyModulusDegree, b, count);
    if (primes.length < count) bad('HE_ERR_BAD_PARAMS', `there are not ${count} primes of ${b} bits ≡ 1 mod ${2 * spec.polyModulusDegree}`);
    pools.set(b, [...primes]);
  }
  return spec.coeffModulusBits.map((b) => pools.get(b)!.pop()!);
}

function checkSpec(spec: HeSetSpec): void {
  const n = spec.polyModulusDegree;
  if (!Number.isInteger(n) || MAX_COEFF_BITS_128[n] === undefined) {
    bad('HE_ERR_BAD_PARAMS', `polyModulusDegree must be one of ${Object.keys(MAX_COEFF_BITS_128).join(', ')}, got ${String(n)}`);
  }
  const bits = spec.coeffModulusBits;
  if (!Array.isArray(bits) || bits.length < 1 || bits.length > 16) bad('HE_ERR_BAD_PARAMS', 'coeffModulusBits must list 1 to 16 prime sizes');
  for (const b of bits) {
    if (!Number.isInteger(b) || b < 20 || b > 60) bad('HE_ERR_BAD_PARAMS', `each coeffModulusBits entry must be an integer in 20…60, got ${String(b)}`);
  }
  const total = bits.reduce((a, b) => a + b, 0);
  const max = MAX_COEFF_BITS_128[n]!;
  if (total > max) {
    bad('HE_ERR_INSECURE', `${total} coefficient-modulus bits at N = ${n} is below 128-bit security (SEAL's tc128 bound is ${max} bits)`);
  }
}

/** The options of {@link heParams}. */
export interface HeParamsOptions {
  /** A set of {@link HE_SETS} by name, or a spec of one's own; default: the first named set that holds n and b. */
  readonly set?: string | HeSetSpec;
}

/**
 * The parameter set for `sites` sites, each adding integers in [0, 2^bits).
 *
 * The plain modulus t is the largest prime ≡ 1 (mod 2N) of
 * b + ⌈log₂ n⌉ + 1 bits (or the first size above that has one), so
 * t ≥ 2^(b + ⌈log₂ n⌉) ≥ n·2^b > n·(2^b − 1): the sum never wraps mod t.
 *
 * Throws `ValidationError`: `HE_ERR_BAD_PARAMS` (n not in 1…2^20, b not in
 * 1…32, an unknown set or a malformed spec), `HE_ERR_INSECURE` (a spec over
 * SEAL's 128-bit bound), `HE_ERR_WRAP_RISK` (no set, or not the one asked
 * for, holds the sum or its noise).
 */
export function heParams(sites: number, bits: number, options: HeParamsOptions = {}): HeParams {
  if (!Number.isInteger(sites) || sites < 1 || sites > HE_MAX_SITES) bad('HE_ERR_BAD_PARAMS', `sites must be an integer in 1…${HE_MAX_SITES}, got ${String(sites)}`);
  if (!Number.isInteger(bits) || bits < 1 || bits > 32) bad('HE_ERR_BAD_PARAMS', `bits must be an integer in 1…32, got ${String(bits)}`);
  const asked = options.set;
  let candidates: [string, HeSetSpec][];
  if (asked === undefined) candidates = Object.entries(HE_SETS);
  else if (typeof asked === 'string') {
    const spec = HE_SETS[asked];
    if (spec === undefined) bad('HE_ERR_BAD_PARAMS', `unknown parameter set ${JSON.stringify(asked)} (known: ${Object.keys(HE_SETS).join(', ')})`);
    candidates = [[asked, spec]];
  } else {
    if (typeof asked !== 'object' || asked === null) bad('HE_ERR_BAD_PARAMS', 'set must be a name or a spec');
    candidates = [['custom', { polyModulusDegree: asked.polyModulusDegree, coeffModulusBits: [...asked.coeffModulusBits] }]];
  }
  const reasons: string[] = [];
  for (const [name, spec] of candidates) {
    checkSpec(spec);
    const r = fit(name, spec, sites, bits);
    if (typeof r !== 'string') return r;
    reasons.push(`${name}: ${r}`);
  }
  return bad('HE_ERR_WRAP_RISK', `no parameter set holds ${sites} sites of ${bits}-bit values: ${reasons.join('; ')}`);
}

/** The checked set, or why it does not hold n sites of b bits. */
function fit(name: string, spec: HeSetSpec, sites: number, bits: number): HeParams | string {
  const N = spec.polyModulusDegree;
  const sumBound = BigInt(sites) * ((1n << BigInt(bits)) - 1n);
  let tBits = bits + ceilLog2(sites) + 1;
  let t: bigint | undefined;
  for (; tBits <= 60 && t === undefined; tBits++) t = cachedPrimes(N, tBits, 1)[0];
  if (t === undefined) return `no batching prime of at most 60 bits exceeds ${sumBound}`;
  if (t <= sumBound) return `t = ${t} does not exceed n·(2^b − 1) = ${sumBound}`;
  const coeffModulus = coeffPrimes(spec);
  const dataModulus = coeffModulus.length > 1 ? coeffModulus.slice(0, -1) : coeffModulus;
  const Q = dataModulus.reduce((a, b) => a * b, 1n);
  if (dataModulus.some((q) => q <= t!)) return `t = ${t} is not below every ciphertext prime`;
  if (44n * BigInt(sites) * t >= Q) return `44·n·t = ${44n * BigInt(sites) * t} ≥ Q = ${Q} (2^${bitLength(Q)}): the sum's noise could exceed Q/2`;
  return Object.freeze({
    set: name,
    scheme: 'bgv' as const,
    polyModulusDegree: N,
    coeffModulus: Object.freeze(coeffModulus),
    coeffModulusBits: Object.freeze([...spec.coeffModulusBits]),
    dataModulus: Object.freeze(dataModulus),
    plainModulus: t,
    plainModulusBits: bitLength(t),
    securityLevel: 128 as const,
    sites,
    bits,
    sumBound,
  });
}

/**
 * 16 bytes that name a parameter set exactly (every field above, sites and
 * bits included): SHA-256 over its canonical text, truncated. Each envelope
 * carries it, and an accumulator refuses another set's.
 */
export function paramsDigest(p: HeParams): Uint8Array {
  const text = [
    'tally/he-sum-v1/params', p.scheme, p.polyModulusDegree, p.coeffModulus.join(','), p.plainModulus,
    p.securityLevel, p.sites, p.bits,
  ].join('|');
  return new Uint8Array(createHash('sha256').update(text).digest().subarray(0, 16));
}

/** Bytes before the first ciphertext of an envelope (sum.ts). */
export const HE_ENVELOPE_HEADER = 45;

/**
 * Bytes of one serialized ciphertext (SEAL 4.1, uncompressed): 113 bytes of
 * header and metadata, then 8 bytes per coefficient (N per prime a
 * ciphertext carries) for c0 alone and a seed of 81 bytes (its header, the
 * PRNG type, 64 bytes) for a site's; for c0 and c1 for a sum's.
 */
export function ciphertextBytes(params: HeParams, kind: 'site' | 'sum'): number {
  const poly = 8 * params.polyModulusDegree * params.dataModulus.length;
  return kind === 'site' ? 113 + poly + 81 : 113 + 2 * poly;
}

/** Bytes of a site's or a sum's envelope of `length` values: the header and ⌈length / N⌉ ciphertexts. */
export function envelopeBytes(params: HeParams, kind: 'site' | 'sum', length: number): number {
  return HE_ENVELOPE_HEADER + Math.ceil(length / params.polyModulusDegree) * ciphertextBytes(params, kind);
}
