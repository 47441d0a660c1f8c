/**
 * The crypto suite interface. Two providers implement it: `native`
 * (node:crypto, the default under Node) and `portable` (@noble/*, for browsers
 * and other runtimes). Both are cross-tested against each other and against
 * RFC 7748, RFC 8032, RFC 5869 and Wycheproof vectors.
 *
 * All byte strings are `Uint8Array`. Every function validates its inputs and
 * throws `ValidationError` (code `CRYPTO_ERR_BAD_INPUT`) on a wrong length, and
 * `CryptoError` on a failed cryptographic check. The checks live in one
 * place, `validated()` (src/crypto/validated.ts), which wraps each provider's
 * raw operations ({@link RawCryptoProvider}), so both reject alike.
 */

/** An X25519 key pair (RFC 7748): 32-byte private scalar and 32-byte u-coordinate. */
export interface X25519KeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** An Ed25519 key pair (RFC 8032): 32-byte seed and 32-byte public key. */
export interface Ed25519KeyPair {
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
}

/**
 * An AES-CTR keystream generator positioned at the start of the stream.
 * `fill(out)` writes the next `out.length` bytes of keystream into `out`.
 */
export interface KeystreamGenerator {
  fill(out: Uint8Array): void;
}

/** X25519 bound to one private key: the shared secret with `publicKey` (see {@link CryptoProvider.x25519Agreement}). */
export type X25519Agreement = (publicKey: Uint8Array) => Uint8Array;

export interface CryptoProvider {
  /** `'native'` or `'portable'`. */
  readonly name: string;

  /** X25519 public key of a 32-byte private key (RFC 7748 §6.1). */
  x25519PublicKey(privateKey: Uint8Array): Uint8Array;
  /**
   * X25519 shared secret (RFC 7748 §6.1). Throws `CryptoError`
   * `CRYPTO_ERR_LOW_ORDER_KEY` when the result is all zero (a low-order or
   * otherwise degenerate public key): tally never accepts such a secret,
   * since anyone could compute it.
   */
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  /**
   * X25519 with one private key and many public keys: `x25519Agreement(sk)(pk)`
   * equals `x25519(sk, pk)`, with the same checks and errors, but the private
   * key is checked and imported once (a client agrees a key with each of its
   * neighbours; with many neighbours the per-call import costs as much as the
   * scalar multiplication itself). Wipe the private key only once the
   * agreement is no longer used: a provider may read it at each call.
   */
  x25519Agreement(privateKey: Uint8Array): X25519Agreement;

  /** Ed25519 public key of a 32-byte seed (RFC 8032 §5.1.5). */
  ed25519PublicKey(seed: Uint8Array): Uint8Array;
  /** Ed25519 signature, 64 bytes (RFC 8032 §5.1.6). */
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  /** Ed25519 verification (RFC 8032 §5.1.7); returns false on any invalid input. */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;

  /** SHA-256 digest. */
  sha256(data: Uint8Array): Uint8Array;
  /** HKDF-SHA256 extract-and-expand (RFC 5869), `length` ≤ 255·32. */
  hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;

  /** AES-256-GCM seal: returns ciphertext ‖ 16-byte tag. Key 32 bytes, nonce 12 bytes. */
  aesGcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  /** AES-256-GCM open; throws `CryptoError` `CRYPTO_ERR_DECRYPT` on a bad tag. */
  aesGcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array;

  /** AES-128-CTR keystream for a 16-byte key, with the 16-byte initial counter block `iv` (big-endian counter). */
  aes128Ctr(key: Uint8Array, iv: Uint8Array): KeystreamGenerator;
  /** AES-256-CTR keystream for a 32-byte key, with the 16-byte initial counter block `iv` (big-endian counter). */
  aes256Ctr(key: Uint8Array, iv: Uint8Array): KeystreamGenerator;
}

/**
 * A raw provider: the same operations as {@link CryptoProvider} on inputs that
 * `validated()` (src/crypto/validated.ts) has already checked, with no checks
 * of its own. It never throws on such inputs; the cases the wrapper turns into
 * typed errors are reported by value instead:
 * - `x25519` returns the all-zero secret for a low-order key;
 * - `ed25519Verify` is only called on keys and signatures that passed
 *   `ed25519VerifyPrecheck`, and returns false for any other failure;
 * - `aesGcmOpen` returns `null` when the tag does not verify (and releases
 *   no plaintext);
 * - keystream `fill(out)` trusts `out` to be a `Uint8Array`.
 */
export interface RawCryptoProvider {
  readonly name: string;
  x25519PublicKey(privateKey: Uint8Array): Uint8Array;
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  /** Bound form of `x25519`; like it, returns the all-zero secret for a low-order key. */
  x25519Agreement(privateKey: Uint8Array): X25519Agreement;
  ed25519PublicKey(seed: Uint8Array): Uint8Array;
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  sha256(data: Uint8Array): Uint8Array;
  hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  aesGcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  aesGcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null;
  aes128Ctr(key: Uint8Array, iv: Uint8Array): KeystreamGenerator;
  aes256Ctr(key: Uint8Array, iv: Uint8Array): KeystreamGenerator;
}
