/**
 * `tally/he`: homomorphic summation (he-sum-v1). Each site encrypts its
 * vector under a BGV secret key that the sites share and the coordinator
 * never holds; the coordinator adds ciphertexts and hands back one
 * ciphertext of the sum. The normative description is
 * protocols/he-sum-v1/spec.md, the overview docs/he.md; every export is
 * documented in docs/api.md.
 *
 * Importing this module does not load node-seal, an optional dependency:
 * the parameter arithmetic and the envelope checks need no SEAL, and the
 * first call that does (a key, an encryption, an accumulator, a context)
 * loads it, or throws `HeError` `HE_ERR_UNAVAILABLE` when it is not
 * installed.
 *
 * @example
 * import { heParams, heKeygen, heEncrypt, HeAccumulator, heDecryptSum } from 'tally/he';
 * const params = heParams(3, 16);
 * const key = await heKeygen(params);                     // one site, then shared (dealKey / acceptKey)
 * const acc = await HeAccumulator.create(params, 1000);   // the coordinator
 * for (const v of vectors) acc.add(await heEncrypt(key, v));
 * const { values } = await heDecryptSum(key, acc.finish());
 * acc.dispose();
 */
export {
  heParams, paramsDigest, ciphertextBytes, envelopeBytes, HE_SETS, HE_ENVELOPE_HEADER, HE_MAX_SITES, HE_MAX_LENGTH,
  type HeParams, type HeParamsOptions, type HeSetSpec,
} from './params.js';
export {
  heKeygen, heImportKey, heEncrypt, heEncryptWith, heEncryptResiduesWith, HeAccumulator, heDecryptSum, heDecryptSlots, readHeEnvelope,
  type HeSecretKey, type HeEnvelopeInfo, type HeEnvelopeKind, type HeSum, type HeAccumulatorOptions,
} from './sum.js';
export { sumModT, maskModT, expandMaskModT } from './masks.js';
export { heAggregator, heMaskedInputEncoder, heCommitment, siteEnvelopeBytes, type HeMode } from './aggregate.js';
export {
  dealKey, acceptKey, checkOffer, buildOffer, readOffer, offerFor, sealedKeyBytes, CEREMONY_LABELS,
  type KeyDealer, type KeyRecipient, type KeyOffer,
} from './ceremony.js';
export { simulateHe, type HeSimulationOptions, type HeSimulationResult } from './simulate.js';
export { loadSeal, heContext, releaseHeContexts, sealHeapBytes, type HeContext, type Seal } from './seal.js';
