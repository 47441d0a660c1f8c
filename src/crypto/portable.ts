/**
 * The `portable` crypto provider: @noble/curves, @noble/hashes and
 * @noble/ciphers, pure TypeScript, for browsers and runtimes without
 * node:crypto. About 40 times slower than `native` for X25519.
 *
 * Same semantics as the `native` provider, byte for byte, including the
 * rejections (cross-tested in test/crypto/crosstest.test.ts): both are the
 * same validating wrapper (validated.ts) around their raw operations.
 */
import { ctr, gcm } from '@noble/ciphers/aes.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE } from '@noble/curves/utils.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { concatBytes } from './_validate.js';
import type { CryptoProvider, KeystreamGenerator, RawCryptoProvider, X25519Agreement } from './types.js';
import { validated } from './validated.js';

/** Keystream generated per noble `ctr()` call at most (one key expansion each). */
const CTR_CHUNK = 16 * 1024;
const CTR_ZEROS = new Uint8Array(CTR_CHUNK);

/** Adds `blocks` to a 16-byte big-endian counter in place, wrapping at 2^128 like OpenSSL. */
function addToCounter(counter: Uint8Array, blocks: number): void {
  let carry = blocks;
  for (let i = 15; i >= 0 && carry > 0; i--) {
    const sum = counter[i]! + (carry % 256);
    counter[i] = sum & 0xff;
    carry = Math.floor(carry / 256) + (sum >> 8);
  }
}

/**
 * AES-CTR keystream from @noble/ciphers (AES-128 or AES-256 by key length).
 * noble's `ctr()` is one-shot, so
 * the stream position is kept here: `counter` is the next unused counter block
 * and `buf[pos..len)` the unused keystream bytes of blocks already generated.
 * Whole blocks are generated only as needed (a 3-byte fill costs one block).
 */
class PortableKeystream implements KeystreamGenerator {
  readonly #key: Uint8Array;
  readonly #counter: Uint8Array;
  readonly #buf = new Uint8Array(CTR_CHUNK); // fresh, so 4-byte aligned as noble requires
  #pos = 0;
  #len = 0;
  constructor(key: Uint8Array, iv: Uint8Array) {
    this.#key = key.slice(); // the caller may wipe or reuse its arrays
    this.#counter = iv.slice();
  }
  fill(out: Uint8Array): void {
    let off = 0;
    while (off < out.length) {
      if (this.#pos === this.#len) this.#refill(out.length - off);
      const n = Math.min(this.#len - this.#pos, out.length - off);
      out.set(this.#buf.subarray(this.#pos, this.#pos + n), off);
      this.#pos += n;
      off += n;
    }
  }
  /** Generates enough whole blocks for `want` more bytes, up to one chunk. */
  #refill(want: number): void {
    const n = Math.min(CTR_CHUNK, Math.ceil(want / 16) * 16);
    // NIST SP 800-38A §6.5: keystream = AES_K(T_j) for successive counter blocks T_j.
    ctr(this.#key, this.#counter).encrypt(CTR_ZEROS.subarray(0, n), this.#buf.subarray(0, n));
    addToCounter(this.#counter, n / 16);
    this.#pos = 0;
    this.#len = n;
  }
}

/**
 * The cofactorless Ed25519 equation [S]B = R + [k]A, k = SHA-512(R ‖ A ‖ M) mod L
 * (RFC 8032 §5.1.7 step 3, the "sufficient" form), for a signature that
 * noble's strict verify already accepted (so A and R decode and S < L).
 * noble checks only the cofactored form [8][S]B = [8]R + [8][k]A, which also
 * accepts signatures made for keys or R values with a torsion component;
 * OpenSSL checks this form, and both providers must accept the same signatures.
 * All inputs are public, so variable-time arithmetic is fine.
 */
function cofactorlessHolds(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  const { Point } = ed25519;
  const R = signature.subarray(0, 32);
  const k = Point.Fn.create(bytesToNumberLE(sha512(concatBytes(R, publicKey, message))));
  const s = bytesToNumberLE(signature.subarray(32, 64));
  const rhs = Point.fromBytes(R).add(Point.fromBytes(publicKey).multiplyUnsafe(k));
  return Point.BASE.multiplyUnsafe(s).equals(rhs);
}

/**
 * The raw @noble/* operations: no input checks (see `RawCryptoProvider`);
 * {@link portableProvider} is this behind the validating wrapper.
 */
export const portableRaw: RawCryptoProvider = {
  name: 'portable',

  x25519PublicKey(privateKey: Uint8Array): Uint8Array {
    return x25519.getPublicKey(privateKey);
  },

  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
    try {
      return x25519.getSharedSecret(privateKey, publicKey);
    } catch {
      // With valid lengths noble throws only for a zero result: report it as such.
      return new Uint8Array(32);
    }
  },

  x25519Agreement(privateKey: Uint8Array): X25519Agreement {
    // noble has no per-key setup to share between calls: the key is read at each call.
    return (publicKey) => portableRaw.x25519(privateKey, publicKey);
  },

  ed25519PublicKey(seed: Uint8Array): Uint8Array {
    return ed25519.getPublicKey(seed);
  },

  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array {
    return ed25519.sign(message, seed);
  },

  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    try {
      // zip215: false is RFC 8032 §5.1.7 decoding (canonical A and R, S < L);
      // noble's default is the more lenient ZIP-215.
      if (!ed25519.verify(signature, message, publicKey, { zip215: false })) return false;
      return cofactorlessHolds(publicKey, message, signature);
    } catch {
      return false;
    }
  },

  sha256(data: Uint8Array): Uint8Array {
    return sha256(data);
  },

  hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    // RFC 5869 §2.2: an empty salt acts as HashLen zero bytes (HMAC zero-pads its key).
    return hkdf(sha256, ikm, salt, info, length);
  },

  aesGcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
    return gcm(key, nonce, aad).encrypt(plaintext);
  },

  aesGcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null {
    try {
      return gcm(key, nonce, aad).decrypt(sealed); // checks the tag before decrypting
    } catch {
      return null;
    }
  },

  aes128Ctr(key: Uint8Array, iv: Uint8Array): KeystreamGenerator {
    return new PortableKeystream(key, iv);
  },

  aes256Ctr(key: Uint8Array, iv: Uint8Array): KeystreamGenerator {
    return new PortableKeystream(key, iv);
  },
};

/** The @noble/* provider: {@link portableRaw} behind the validating wrapper. */
export const portableProvider: CryptoProvider = validated(portableRaw);
