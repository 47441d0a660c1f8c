/**
 * The aggregation seam. The secure-aggregation server never names a concrete
 * accumulator: it asks an {@link Aggregator} to add each client's encoded
 * input as it arrives, to remove the masks it rebuilt in the unmasking round,
 * and for the result. Pairwise masking (secagg-v1) uses {@link maskedSum};
 * homomorphic summation plugs in its own implementation behind the same
 * interface, so the session machinery stays one.
 */
import type { CryptoProvider } from './types.js';
import { MaskAccumulator, type MaskAccumulatorOptions, type MaskTerm } from './mask.js';

export interface Aggregator {
  /** Entries per vector (the session's m). */
  readonly dim: number;
  /**
   * Adds one client's contribution, exactly as it came off the wire. The
   * payload is validated whole before any state changes, so a refused input
   * leaves the running sum untouched.
   * @throws CodecError / ValidationError `SECAGG_ERR_BAD_VECTOR`
   */
  addInput(payload: Uint8Array): void;
  /** Adds (sign 1) or subtracts (sign −1) the mask of each term. */
  removeMasks(terms: readonly MaskTerm[]): void;
  /** The sum mod 2^b, a fresh array of length `dim`. */
  result(): Uint32Array;
  /** Wipes every buffer the aggregator holds. */
  clear(): void;
}

/** Makes the aggregator of one session. */
export type AggregatorFactory = (dim: number, bits: number, provider: CryptoProvider) => Aggregator;

/**
 * Σ of bit-packed masked inputs mod 2^b (secagg-v1 spec §3.7): inputs are
 * unpacked chunk by chunk straight into a running sum mod 2^32, masks are
 * expanded chunk by chunk and added or subtracted, one final reduction.
 */
export function maskedSum(dim: number, bits: number, provider: CryptoProvider, options?: MaskAccumulatorOptions): Aggregator {
  const acc = new MaskAccumulator(dim, provider, options);
  return {
    dim,
    addInput: (payload) => acc.addPacked(payload, bits, 1),
    removeMasks: (terms) => acc.addMasks(terms),
    result: () => acc.result(bits),
    clear: () => acc.clear(),
  };
}
