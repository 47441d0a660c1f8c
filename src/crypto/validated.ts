/**
 * The validating wrapper: one place that checks every input of every
 * {@link CryptoProvider} operation and turns the raw providers' by-value
 * failure reports into typed errors. `nativeProvider` and `portableProvider`
 * are `validated(raw)` of their raw providers, so they accept and reject
 * exactly the same inputs, with the same codes and messages.
 */
import { CryptoError } from '../errors.js';
import { abytes, abytesMin, anumber, DECRYPT, HKDF_MAX_LENGTH, LOW_ORDER_KEY } from './_validate.js';
import { ed25519VerifyPrecheck, isLowOrderX25519 } from './lowOrder.js';
import type { CryptoProvider, KeystreamGenerator, RawCryptoProvider, X25519Agreement } from './types.js';

function isZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < bytes.length; i++) acc |= bytes[i]!;
  return acc === 0;
}

/**
 * RFC 7748 §6.1: inputs whose result is all zero are refused. Checking the
 * public list first keeps the private key out of the low-order case altogether.
 */
function checkX25519Public(publicKey: Uint8Array): void {
  abytes(publicKey, 32, 'publicKey');
  if (isLowOrderX25519(publicKey)) throw new CryptoError(LOW_ORDER_KEY, 'X25519 public key has low order');
}

/** The raw secret, unless it is all zero (a degenerate key the list above does not name). */
function checkedSecret(shared: Uint8Array): Uint8Array {
  if (isZero(shared)) throw new CryptoError(LOW_ORDER_KEY, 'X25519 shared secret is all zero');
  return shared;
}

/** A keystream whose `fill` checks its argument before the raw generator writes into it. */
function checkedKeystream(raw: KeystreamGenerator): KeystreamGenerator {
  return {
    fill(out: Uint8Array): void {
      raw.fill(abytes(out, undefined, 'out'));
    },
  };
}

/**
 * Wraps a raw provider with every input check of the {@link CryptoProvider}
 * contract.
 * @param raw - operations that assume valid inputs (src/crypto/types.ts)
 * @returns the provider users call; its `name` is the raw provider's
 * @example
 * const provider = validated(nativeRaw);
 */
export function validated(raw: RawCryptoProvider): CryptoProvider {
  return {
    name: raw.name,

    x25519PublicKey(privateKey: Uint8Array): Uint8Array {
      return raw.x25519PublicKey(abytes(privateKey, 32, 'privateKey'));
    },

    x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
      abytes(privateKey, 32, 'privateKey');
      checkX25519Public(publicKey);
      return checkedSecret(raw.x25519(privateKey, publicKey));
    },

    x25519Agreement(privateKey: Uint8Array): X25519Agreement {
      const agree = raw.x25519Agreement(abytes(privateKey, 32, 'privateKey'));
      return (publicKey: Uint8Array): Uint8Array => {
        checkX25519Public(publicKey);
        return checkedSecret(agree(publicKey));
      };
    },

    ed25519PublicKey(seed: Uint8Array): Uint8Array {
      return raw.ed25519PublicKey(abytes(seed, 32, 'seed'));
    },

    ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array {
      abytes(seed, 32, 'seed');
      abytes(message, undefined, 'message');
      return raw.ed25519Sign(seed, message);
    },

    ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
      // Wrong lengths, y ≥ p in A and small-order keys are refused here for both
      // providers (OpenSSL alone accepts the last two); the raw verify then
      // checks the cofactorless equation [S]B = R + [k]A (RFC 8032 §5.1.7).
      if (!ed25519VerifyPrecheck(publicKey, message, signature)) return false;
      return raw.ed25519Verify(publicKey, message, signature);
    },

    sha256(data: Uint8Array): Uint8Array {
      return raw.sha256(abytes(data, undefined, 'data'));
    },

    hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
      abytes(ikm, undefined, 'ikm');
      abytes(salt, undefined, 'salt');
      abytes(info, undefined, 'info');
      anumber(length, 'length', 0, HKDF_MAX_LENGTH);
      return raw.hkdf(ikm, salt, info, length);
    },

    aesGcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
      abytes(key, 32, 'key');
      abytes(nonce, 12, 'nonce');
      abytes(plaintext, undefined, 'plaintext');
      abytes(aad, undefined, 'aad');
      return raw.aesGcmSeal(key, nonce, plaintext, aad);
    },

    aesGcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array {
      abytes(key, 32, 'key');
      abytes(nonce, 12, 'nonce');
      abytesMin(sealed, 16, 'sealed');
      abytes(aad, undefined, 'aad');
      const pt = raw.aesGcmOpen(key, nonce, sealed, aad);
      if (pt === null) throw new CryptoError(DECRYPT, 'AES-GCM authentication failed');
      return pt;
    },

    aes128Ctr(key: Uint8Array, iv: Uint8Array): KeystreamGenerator {
      abytes(key, 16, 'key');
      abytes(iv, 16, 'iv');
      return checkedKeystream(raw.aes128Ctr(key, iv));
    },

    aes256Ctr(key: Uint8Array, iv: Uint8Array): KeystreamGenerator {
      abytes(key, 32, 'key');
      abytes(iv, 16, 'iv');
      return checkedKeystream(raw.aes256Ctr(key, iv));
    },
  };
}
