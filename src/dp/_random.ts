/**
 * Internal random helpers for the DP samplers: unbiased integers from an
 * injected {@link Rng}, exact Bernoulli trials for rational probabilities and
 * the exact Bernoulli(exp(-γ)) of Canonne, Kamath, Steinke, "The Discrete
 * Gaussian for Differential Privacy" (NeurIPS 2020, arXiv:2004.00010),
 * Algorithm 1. "Exact" means: given perfectly uniform input bytes, the output
 * has exactly the stated distribution (integer / rational arithmetic only).
 * @module
 */
import type { Rng } from '../crypto/rng.js';
import { DpError, ValidationError } from '../errors.js';

const TWO32 = 4294967296;
const TWO53 = 9007199254740992;
const CHUNK_WORDS = 16384; // 64 KiB of randomness per refill

/**
 * A buffered reader of uniform words over an {@link Rng}. Bytes are consumed
 * in order in 64 KiB chunks, each 4 bytes read as a little-endian uint32, so
 * the output depends only on the Rng's byte stream (reproducible across
 * platforms). It is itself an Rng, so it can be passed where one is expected.
 */
export class RandomSource implements Rng {
  private readonly words = new Uint32Array(CHUNK_WORDS);
  private pos = CHUNK_WORDS;
  constructor(private readonly rng: Rng) {}

  /** Returns `n` fresh bytes taken directly from the underlying Rng. */
  bytes(n: number): Uint8Array {
    return this.rng.bytes(n);
  }

  private refill(): void {
    const b = this.rng.bytes(CHUNK_WORDS * 4);
    const w = this.words;
    for (let i = 0, j = 0; i < CHUNK_WORDS; i++, j += 4) {
      w[i] = (b[j]! | (b[j + 1]! << 8) | (b[j + 2]! << 16) | (b[j + 3]! << 24)) >>> 0;
    }
    this.pos = 0;
  }

  /** A uniform integer in [0, 2^32). */
  u32(): number {
    if (this.pos === CHUNK_WORDS) this.refill();
    return this.words[this.pos++]!;
  }

  /** A uniform integer in [0, 2^53). */
  u53(): number {
    return (this.u32() & 0x1fffff) * TWO32 + this.u32();
  }

  /** A uniform double in [0, 1) with 53 random bits. */
  unitFloat(): number {
    return this.u53() / TWO53;
  }

  /**
   * A uniform integer in [0, n) for a safe integer 1 ≤ n ≤ 2^53, without
   * modulo bias (rejection of the incomplete last block).
   */
  uniformInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO53) throw new DpError('DP_ERR_BAD_PARAM', `"n" expected an integer in [1, 2^53], got ${String(n)}`);
    if (n <= TWO32) {
      const limit = TWO32 - (TWO32 % n);
      for (;;) {
        const x = this.u32();
        if (x < limit) return x % n;
      }
    }
    const limit = TWO53 - (TWO53 % n);
    for (;;) {
      const x = this.u53();
      if (x < limit) return x % n;
    }
  }

  /** A uniform bigint in [0, n) for n ≥ 1 (rejection on the bit length). */
  uniformBigInt(n: bigint): bigint {
    const bits = n.toString(2).length;
    const words = Math.ceil(bits / 32);
    const mask = (1n << BigInt(bits)) - 1n;
    for (;;) {
      let x = 0n;
      for (let i = 0; i < words; i++) x = (x << 32n) | BigInt(this.u32());
      x &= mask;
      if (x < n) return x;
    }
  }

  /** Exact Bernoulli(num/den) for safe integers 0 ≤ num ≤ den, den ≥ 1. */
  bernoulli(num: number, den: number): boolean {
    return this.uniformInt(den) < num;
  }

  /** Exact Bernoulli(num/den) for bigints 0 ≤ num ≤ den, den ≥ 1. */
  bernoulliBig(num: bigint, den: bigint): boolean {
    return this.uniformBigInt(den) < num;
  }

  /**
   * Exact Bernoulli(exp(-num/den)) for safe integers num ≥ 0, den ≥ 1
   * (CKS20 Algorithm 1). Falls back to bigints if den·K would leave the safe
   * integer range.
   */
  bernoulliExpNeg(num: number, den: number): boolean {
    if (num > den) {
      // CKS20 Alg. 1, γ > 1: ⌊γ⌋ independent Bernoulli(exp(-1)), then the fraction.
      const whole = Math.floor(num / den);
      for (let i = 0; i < whole; i++) if (!this.bernoulliExpNeg(1, 1)) return false;
      return this.bernoulliExpNeg(num - whole * den, den);
    }
    // CKS20 Alg. 1, γ ∈ [0,1]: K counts successes of Bernoulli(γ/k), k = 1,2,…;
    // P(K odd) = Σ_k (-γ)^k / k! = exp(-γ).
    let k = 1;
    for (;;) {
      const dk = den * k;
      if (dk > TWO53) return this.expNegLoopBig(BigInt(num), BigInt(den), k);
      if (!this.bernoulli(num, dk)) break;
      k++;
    }
    return (k & 1) === 1;
  }

  /** Exact Bernoulli(exp(-num/den)) for bigints (CKS20 Algorithm 1). */
  bernoulliExpNegBig(num: bigint, den: bigint): boolean {
    if (num > den) {
      const whole = num / den;
      for (let i = 0n; i < whole; i++) if (!this.bernoulliExpNeg(1, 1)) return false;
      return this.expNegLoopBig(num - whole * den, den, 1);
    }
    return this.expNegLoopBig(num, den, 1);
  }

  /** The γ ∈ [0,1] loop of CKS20 Algorithm 1 in bigints, resuming at counter k. */
  private expNegLoopBig(num: bigint, den: bigint, k: number): boolean {
    for (;;) {
      if (!this.bernoulliBig(num, den * BigInt(k))) break;
      k++;
    }
    return (k & 1) === 1;
  }

  /** A standard normal double (Box–Muller on 53-bit uniforms; not exact, float). */
  gaussian(): number {
    const u = (this.u53() + 1) / (TWO53 + 1); // (0, 1]: log is finite
    const v = this.unitFloat();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

/** Wraps an Rng in a {@link RandomSource} unless it already is one. */
export function toSource(rng: Rng): RandomSource {
  if (rng instanceof RandomSource) return rng;
  if (rng === null || typeof rng !== 'object' || typeof (rng as Rng).bytes !== 'function') {
    throw new ValidationError('DP_ERR_BAD_PARAM', '"rng" expected an Rng with bytes(n)');
  }
  return new RandomSource(rng);
}

/** floor(sqrt(n)) for a non-negative bigint (Newton iteration). */
export function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  while (x * x > n) x--;
  while ((x + 1n) * (x + 1n) <= n) x++;
  return x;
}

/** Fills `out` with independent draws of `sampler`, all from one source over `rng`. */
export function fillSamples<T extends Float64Array | Int32Array>(out: T, sampler: { sample(src: RandomSource): number }, rng: Rng): T {
  const src = toSource(rng);
  for (let i = 0; i < out.length; i++) out[i] = sampler.sample(src);
  return out;
}
