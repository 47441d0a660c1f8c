/**
 * Injected randomness. Protocol code never reads ambient randomness: it takes
 * an {@link Rng}, so sessions are reproducible for test vectors and the
 * production source is a single, auditable choice.
 */
import { getRandomValues } from 'node:crypto';
import { Drbg } from './drbg.js';
import type { CryptoProvider } from './types.js';

/** A source of random bytes. */
export interface Rng {
  /** Returns `n` fresh random bytes. */
  bytes(n: number): Uint8Array;
}

/** The production source: the platform CSPRNG (`crypto.getRandomValues`). */
export const systemRng: Rng = {
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    // getRandomValues fills at most 65536 bytes per call (Web Crypto limit).
    for (let off = 0; off < n; off += 65536) getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
    return out;
  },
};

/** Domain-separation label of {@link DeterministicRng} (secagg-v1 spec §3.10). */
export const DRBG_LABEL = 'tally/drbg/v1';

/**
 * A deterministic random bit generator for test vectors and reproducible
 * simulations (secagg-v1 spec §3.10): the {@link Drbg} with label
 * "tally/drbg/v1", i.e. the keystream of AES-256-CTR with
 * key = SHA-256("tally/drbg/v1" ‖ seed) and an all-zero initial counter block.
 * Consecutive calls continue the same keystream. NOT for production secrets
 * unless the seed itself is secret and uniformly random.
 */
export class DeterministicRng extends Drbg {
  /**
   * @param seed - bytes, or a string (UTF-8)
   * @param provider - where SHA-256 and AES-256-CTR come from (default: native)
   */
  constructor(seed: Uint8Array | string, provider?: CryptoProvider) {
    super(DRBG_LABEL, seed, provider);
  }
}

/** A fake Rng for unit tests: yields 00 01 02 … ff 00 01 … (fcp `fake_prng.h` style). */
export class CountingRng implements Rng {
  private next = 0;
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) { out[i] = this.next; this.next = (this.next + 1) & 0xff; }
    return out;
  }
}
