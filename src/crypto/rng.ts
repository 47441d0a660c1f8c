/**
 * Injected randomness. Protocol code never reads ambient randomness: it takes
 * an {@link Rng}, so sessions are reproducible for test vectors and the
 * production source is a single, auditable choice.
 */
import { createCipheriv, createHash, getRandomValues } from 'node:crypto';

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

/**
 * A deterministic random bit generator for test vectors and reproducible
 * simulations (secagg-v1 spec §3.6): the keystream of AES-256-CTR with
 * key = SHA-256("tally/drbg/v1" ‖ seed) and an all-zero initial counter block.
 * Consecutive calls continue the same keystream. NOT for production secrets
 * unless the seed itself is secret and uniformly random.
 */
export class DeterministicRng implements Rng {
  private readonly cipher;
  constructor(seed: Uint8Array | string) {
    const s = typeof seed === 'string' ? new TextEncoder().encode(seed) : seed;
    const key = createHash('sha256').update('tally/drbg/v1').update(s).digest();
    this.cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  }
  bytes(n: number): Uint8Array {
    const ks = this.cipher.update(Buffer.alloc(n));
    return new Uint8Array(ks.buffer, ks.byteOffset, ks.byteLength);
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
