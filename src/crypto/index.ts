/**
 * tally's crypto suite (`tally/crypto`): one {@link CryptoProvider} interface,
 * two implementations.
 *
 * - `native` ({@link nativeProvider}): node:crypto, the default under Node.
 * - `portable` ({@link portableProvider}): @noble/*, for browsers and other runtimes.
 *
 * Each is `validated(raw)`: one validating wrapper around raw operations that
 * assume valid inputs, so both give identical outputs and identical
 * rejections; see docs/crypto.md. Every export is documented in docs/api.md.
 *
 * @example
 * import { defaultProvider as c, systemRng } from 'tally/crypto';
 * const sk = systemRng.bytes(32);
 * const pk = c.x25519PublicKey(sk);
 */
import { ValidationError } from '../errors.js';
import { BAD_INPUT } from './_validate.js';
import { nativeProvider } from './native.js';
import { portableProvider } from './portable.js';
import type { CryptoProvider } from './types.js';

export type { CryptoProvider, Ed25519KeyPair, KeystreamGenerator, RawCryptoProvider, X25519Agreement, X25519KeyPair } from './types.js';
export { CountingRng, DeterministicRng, DRBG_LABEL, systemRng, type Rng } from './rng.js';
export { Drbg } from './drbg.js';
export { nativeProvider, nativeRaw } from './native.js';
export { portableProvider, portableRaw } from './portable.js';
export { validated } from './validated.js';
export {
  abytes,
  abytesMin,
  anumber,
  BAD_INPUT,
  concatBytes,
  DECRYPT,
  equalBytes,
  fromHex,
  HKDF_MAX_LENGTH,
  isBytes,
  LOW_ORDER_KEY,
  toHex,
  u32be,
} from './_validate.js';
export { ed25519VerifyPrecheck, isLowOrderEd25519, isLowOrderX25519, isNonCanonicalEd25519, lowOrderLists } from './lowOrder.js';

/** Names accepted by {@link getProvider}. */
export type ProviderName = 'native' | 'portable';

/**
 * The provider with the given name.
 * @param name - `'native'` (node:crypto) or `'portable'` (@noble/*)
 * @throws ValidationError `CRYPTO_ERR_BAD_INPUT` for any other name
 * @example
 * const c = getProvider('portable');
 */
export function getProvider(name: ProviderName): CryptoProvider {
  if (name === 'native') return nativeProvider;
  if (name === 'portable') return portableProvider;
  throw new ValidationError(BAD_INPUT, `"name" expected 'native' or 'portable', got ${JSON.stringify(String(name))}`);
}

/** The provider used when none is chosen: `native` (node:crypto). */
export const defaultProvider: CryptoProvider = nativeProvider;
