/**
 * he-sum-v1 through the secagg-v1 session (he-sum-v1 §8): the two seams the
 * session driver takes, for the modes
 *
 * - `he+masks` (the default): a site's masked input is the envelope of
 *   y = x + Σ ±mask_t mod t, the secagg-v1 self and pairwise masks of
 *   Bonawitz et al. (CCS 2017, Fig. 4 round 2) reduced mod t (masks.ts). The
 *   coordinator adds envelopes, then in the unmasking round (Fig. 4 round 4)
 *   rebuilds the same masks as secagg-v1 does (survivors' self masks, the
 *   pairwise masks of sites dropped after sharing keys), expands them mod t
 *   into one correction vector and adds it to the sum as a plaintext: the
 *   sealed sum is then Σ x over the survivors, and no single ciphertext ever
 *   decrypts to an input, even for a key holder.
 * - `he`: the envelope of x alone; the masks the session derives are
 *   ignored on both sides. A key holder who obtains one site's ciphertext
 *   reads that site's input.
 *
 * Neither side holds a secret of the HE scheme beyond what it must: the
 * encoder holds the sites' shared key (it encrypts), the aggregator none.
 * @module
 */
import type { Aggregator, AggregatorFactory, MaskedInputEncoder } from '../crypto/aggregator.js';
import type { CryptoProvider } from '../crypto/types.js';
import { InternalError } from '../errors.js';
import type { AggregatorCommitment } from '../secagg/config.js';
import { maskModT, sumModT } from './masks.js';
import type { HeContext } from './seal.js';
import { ciphertextBytes, HE_ENVELOPE_HEADER, HeAccumulator, heEncryptResiduesWith, heEncryptWith, type HeSecretKey } from './sum.js';

/** The aggregation modes of he-sum-v1. */
export type HeMode = AggregatorCommitment['mode'];

/** Bytes of a site's envelope of `dim` values. */
export function siteEnvelopeBytes(hc: HeContext, dim: number): number {
  return HE_ENVELOPE_HEADER + Math.ceil(dim / hc.params.polyModulusDegree) * ciphertextBytes(hc.params, 'site');
}

/** What a session's config commits to (he-sum-v1 §8.1). */
export function heCommitment(hc: HeContext, mode: HeMode, keyId: Uint8Array, dim: number): AggregatorCommitment {
  return { mode, params: hc.digest.slice(), keyId: keyId.slice(), inputBytes: siteEnvelopeBytes(hc, dim) };
}

/** A site's R2 encoder: masks mod t (he+masks) or not (he), then encrypts under the shared key. */
export function heMaskedInputEncoder(hc: HeContext, key: HeSecretKey, mode: HeMode, provider: CryptoProvider): MaskedInputEncoder {
  return {
    binds: { mode, params: hc.digest.slice(), keyId: key.keyId.slice() },
    encode(input, terms) {
      if (mode === 'he') return heEncryptWith(hc, key, input);
      const y = maskModT(input, terms, hc.params.plainModulus, provider);
      try {
        return heEncryptResiduesWith(hc, key, y);
      } finally {
        y.fill(0);
      }
    },
  };
}

/**
 * The coordinator's aggregator: adds each envelope as it arrives (checked
 * whole before the sum changes), removes the masks mod t in one plaintext
 * addition (he+masks), and hands over the sealed sum.
 */
export function heAggregator(hc: HeContext, mode: HeMode, keyId: Uint8Array, provider: CryptoProvider): AggregatorFactory {
  return (dim): Aggregator => {
    const acc = HeAccumulator.fromContext(hc, dim, { keyId });
    return {
      dim,
      addInput: (payload) => acc.add(payload),
      removeMasks: (terms) => {
        if (mode === 'he' || terms.length === 0) return; // no masks were added in this mode
        acc.addPlain(sumModT(dim, hc.params.plainModulus, provider, terms));
      },
      result: () => { throw new InternalError('an HE aggregator\'s sum is sealed: call sealedResult()'); },
      sealedResult: () => acc.finish(),
      clear: () => acc.dispose(),
    };
  };
}
