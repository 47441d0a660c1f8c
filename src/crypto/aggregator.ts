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
import { PARALLEL_MIN_WORDS, warmMaskPool } from './_maskPool.js';

/**
 * Ownership: the aggregator owns its buffers until {@link Aggregator.result},
 * which hands the sum over without a copy (it may be the aggregator's own
 * memory). After result() the aggregator is finished: addInput, removeMasks
 * and result throw, and clear() wipes only what the aggregator still holds
 * (scratch buffers), never the array handed over. The server calls clear()
 * once it has taken the result (or when the session ends without one).
 */
export interface Aggregator {
  /** Entries per vector (the session's m). */
  readonly dim: number;
  /**
   * Adds one client's contribution, exactly as it came off the wire (at any
   * byte offset: it is read in place, never copied whole). The payload is
   * validated whole before any state changes, so a refused input leaves the
   * running sum untouched.
   * @throws CodecError / ValidationError `SECAGG_ERR_BAD_VECTOR`
   */
  addInput(payload: Uint8Array): void;
  /** Adds (sign 1) or subtracts (sign −1) the mask of each term (keys are not kept). */
  removeMasks(terms: readonly MaskTerm[]): void;
  /** The sum mod 2^b, an array of length `dim` now owned by the caller; finishes the aggregator. */
  result(): Uint32Array;
  /**
   * Present on an aggregator whose sum stays encrypted (he-sum-v1): the
   * sealed sum's bytes, which the server hands on instead of calling
   * {@link result} (such an aggregator's result() throws). Finishes the
   * aggregator like result().
   */
  sealedResult?(): Uint8Array;
  /** Wipes every buffer the aggregator still holds. */
  clear(): void;
}

/**
 * The client's side of the seam (secagg-v1 R2): turns the input and the
 * mask terms of this session (the self mask and one pairwise mask per
 * neighbour, each with its sign, Bonawitz et al. 2017 Fig. 4 round 2) into
 * the masked-input payload. Absent, the client sends secagg-v1's
 * y = x + Σ ±PRG mod 2^b, bit-packed; an HE session plugs in an encoder that
 * adds the masks mod t and encrypts (he-sum-v1 §8). The keys are wiped by
 * the caller after the call; an encoder must not keep them.
 */
export interface MaskedInputEncoder {
  /** @throws TallyError (the client aborts the session with its code) */
  encode(input: Uint32Array, terms: readonly MaskTerm[]): Uint8Array;
  /**
   * What the encoder is made for: a client refuses (at start) a session
   * config whose aggregator commitment names another mode, parameter set
   * or key (he-sum-v1 §8.1), so a coordinator cannot switch a site's mode.
   */
  readonly binds?: { readonly mode: string; readonly params: Uint8Array; readonly keyId: Uint8Array };
}

/** Makes the aggregator of one session. */
export type AggregatorFactory = (dim: number, bits: number, provider: CryptoProvider) => Aggregator;

/**
 * Σ of bit-packed masked inputs mod 2^b (secagg-v1 spec §3.7): inputs are
 * unpacked chunk by chunk straight into a running sum mod 2^32, masks are
 * expanded chunk by chunk and added or subtracted, one final reduction, done
 * in place on the sum that result() hands over.
 *
 * Mask removal uses every core by default for vectors of at least
 * {@link PARALLEL_MIN_DIM} entries (`threads: 'auto'`, see mask.ts and
 * _maskPool.ts): the unmasking round of a session with clients dropped after
 * sharing keys rebuilds one pairwise mask per surviving neighbour of each,
 * which dominates the server's time. Shorter vectors stay on the calling
 * thread: there the hand-off does not pay for the worker's memory. Pass
 * `{ threads }` to choose; the sum is bit-identical either way. When the
 * pool is used, its workers are started here, so they have loaded before the
 * unmasking round.
 */
/**
 * Shortest vector for which `maskedSum` uses the worker pool by default. Measured
 * on the 2-core machine of docs/performance.md (SecAgg+ n = 1,000, m = 10^5,
 * k = 36): two threads took 1.20–1.29 s against 1.25–1.35 s on one, for about
 * 45 MiB more peak memory; at m = 10^6 (complete n = 50, r2 dropouts) two
 * threads save 14%.
 */
export const PARALLEL_MIN_DIM = 2 ** 18;

export function maskedSum(dim: number, bits: number, provider: CryptoProvider, options?: MaskAccumulatorOptions): Aggregator {
  const acc = new MaskAccumulator(dim, provider, { threads: dim >= PARALLEL_MIN_DIM ? 'auto' : 1, ...options });
  // A vector of ≥ PARALLEL_MIN_WORDS / 32 words pays with 32 masks to rebuild (e.g. one dropped client of 33 neighbours).
  if (acc.threads > 1 && provider.name === 'native' && dim * 32 >= PARALLEL_MIN_WORDS) warmMaskPool(acc.threads);
  return {
    dim,
    addInput: (payload) => acc.addPacked(payload, bits, 1),
    removeMasks: (terms) => acc.addMasks(terms),
    result: () => acc.takeResult(bits),
    clear: () => acc.clear(),
  };
}
