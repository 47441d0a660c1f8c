/**
 * The `native` crypto provider: node:crypto (OpenSSL). The default under Node.
 *
 * Same semantics as the `portable` provider, byte for byte, including the
 * rejections (cross-tested in test/crypto/crosstest.test.ts): both are the
 * same validating wrapper (validated.ts) around their raw operations.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  sign,
  verify,
  type Cipher,
  type KeyObject,
} from 'node:crypto';
import type { CryptoProvider, KeystreamGenerator, RawCryptoProvider, X25519Agreement } from './types.js';
import { validated } from './validated.js';

/** base64url of a byte view, without copying it into a Buffer first. */
function b64u(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/**
 * A plain `Uint8Array` over a Buffer's bytes: a view when the Buffer owns its
 * whole ArrayBuffer, else a copy (never expose a shared Buffer pool).
 */
function plain(buf: Buffer | ArrayBuffer): Uint8Array {
  if (buf instanceof ArrayBuffer) return new Uint8Array(buf);
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength) return new Uint8Array(buf.buffer);
  return new Uint8Array(buf);
}

/**
 * An X25519 or Ed25519 private KeyObject from raw bytes. JWK import goes
 * straight to OpenSSL's raw-key constructor (EVP_PKEY_new_raw_private_key);
 * PKCS#8 DER import is several times slower (it runs the OpenSSL decoder
 * framework). Node ignores `x` for a private JWK, and OpenSSL derives the public
 * key itself. The transient base64 string is left to the garbage collector.
 */
function okpPrivateKey(crv: 'X25519' | 'Ed25519', raw: Uint8Array): KeyObject {
  return createPrivateKey({ key: { kty: 'OKP', crv, d: b64u(raw), x: '' }, format: 'jwk' });
}

/**
 * Public KeyObjects by curve and base64url key, so a key met again (each of a
 * client's neighbours in R1 and R2, the server's R4 rebuilds) is imported
 * once. Public keys only: nothing secret is ever kept here. Bounded: when
 * full it starts over, which costs only re-imports.
 */
const publicKeyCache = new Map<string, KeyObject>();
const PUBLIC_KEY_CACHE_SIZE = 8192;

/** An X25519 or Ed25519 public KeyObject from its raw 32 bytes. */
function okpPublicKey(crv: 'X25519' | 'Ed25519', raw: Uint8Array): KeyObject {
  const x = b64u(raw);
  const id = crv === 'X25519' ? `x${x}` : `e${x}`;
  let key = publicKeyCache.get(id);
  if (key === undefined) {
    key = createPublicKey({ key: { kty: 'OKP', crv, x }, format: 'jwk' });
    if (publicKeyCache.size >= PUBLIC_KEY_CACHE_SIZE) publicKeyCache.clear();
    publicKeyCache.set(id, key);
  }
  return key;
}

/** The raw 32-byte public key of a private KeyObject. */
function rawPublicKey(privateKey: KeyObject): Uint8Array {
  const { x } = createPublicKey(privateKey).export({ format: 'jwk' });
  return plain(Buffer.from(x as string, 'base64url'));
}

/**
 * HKDF-SHA256 with HMAC calls (RFC 5869 §2.2 extract, §2.3 expand). Unlike
 * `crypto.hkdfSync` it takes `info` of any length (hkdfSync: at most 1024 bytes).
 */
function hkdfHmac(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  // §2.2: an empty salt is HashLen zeros; HMAC pads its key with zeros anyway.
  const prk = createHmac('sha256', salt).update(ikm).digest();
  const okm = new Uint8Array(length);
  let t: Uint8Array = new Uint8Array(0);
  // §2.3: T(i) = HMAC-Hash(PRK, T(i-1) | info | i), OKM = first L octets of T(1) | T(2) | …
  for (let i = 1, off = 0; off < length; i++, off += 32) {
    t = createHmac('sha256', prk).update(t).update(info).update(Uint8Array.of(i)).digest();
    okm.set(t.subarray(0, Math.min(32, length - off)), off);
  }
  prk.fill(0);
  t.fill(0);
  return okm;
}

/** node:crypto's AES-CTR is fastest when fed 64-256 KiB per call; 64 KiB measured best. */
const CTR_CHUNK = 64 * 1024;
/** Shared all-zero input for CTR keystream: read-only by contract, never secret. */
const CTR_ZEROS = new Uint8Array(CTR_CHUNK);

/**
 * AES-CTR keystream from node:crypto. OpenSSL keeps the position inside a
 * block between `update` calls, so fills of any sizes continue the stream.
 */
class NativeKeystream implements KeystreamGenerator {
  readonly #cipher: Cipher;
  constructor(algorithm: 'aes-128-ctr' | 'aes-256-ctr', key: Uint8Array, iv: Uint8Array) {
    // OpenSSL's CTR increments the whole 16-byte block as a big-endian counter
    // (NIST SP 800-38A §B.1 with b = 128), wrapping at 2^128.
    this.#cipher = createCipheriv(algorithm, key, iv);
  }
  fill(out: Uint8Array): void {
    for (let off = 0; off < out.length; off += CTR_CHUNK) {
      const n = Math.min(CTR_CHUNK, out.length - off);
      // One big update runs ~8x slower than chunked ones (allocation, cache misses).
      out.set(this.#cipher.update(CTR_ZEROS.subarray(0, n)), off);
    }
  }
}

/** X25519 of a private KeyObject and raw public bytes. */
function x25519With(privateKey: KeyObject, publicKey: Uint8Array): Uint8Array {
  try {
    return plain(diffieHellman({ privateKey, publicKey: okpPublicKey('X25519', publicKey) }));
  } catch {
    // With valid lengths OpenSSL fails only on an all-zero result: report it as such.
    return new Uint8Array(32);
  }
}

/**
 * The raw node:crypto operations: no input checks (see `RawCryptoProvider`);
 * {@link nativeProvider} is this behind the validating wrapper.
 */
export const nativeRaw: RawCryptoProvider = {
  name: 'native',

  x25519PublicKey(privateKey: Uint8Array): Uint8Array {
    return rawPublicKey(okpPrivateKey('X25519', privateKey));
  },

  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
    return x25519With(okpPrivateKey('X25519', privateKey), publicKey);
  },

  x25519Agreement(privateKey: Uint8Array): X25519Agreement {
    // Imported once: the import costs about as much as the agreement itself.
    const sk = okpPrivateKey('X25519', privateKey);
    return (publicKey) => x25519With(sk, publicKey);
  },

  ed25519PublicKey(seed: Uint8Array): Uint8Array {
    return rawPublicKey(okpPrivateKey('Ed25519', seed));
  },

  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array {
    return plain(sign(null, message, okpPrivateKey('Ed25519', seed)));
  },

  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    // OpenSSL checks the cofactorless [S]B = R + [k]A, as the portable provider does too.
    try {
      return verify(null, message, okpPublicKey('Ed25519', publicKey), signature);
    } catch {
      return false; // not a curve point
    }
  },

  sha256(data: Uint8Array): Uint8Array {
    return plain(createHash('sha256').update(data).digest());
  },

  hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    // Some OpenSSL builds (Node 22) refuse L = 0, which RFC 5869 allows: the output is empty.
    if (length === 0) return new Uint8Array(0);
    // Two HMAC calls run about twice as fast as crypto.hkdfSync for the short keys
    // secagg derives per pair (its argument checks and KeyObject import dominate).
    return hkdfHmac(ikm, salt, info, length);
  },

  aesGcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
    const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
    cipher.setAAD(aad);
    const ct = cipher.update(plaintext);
    cipher.final(); // GCM has no padding: final() returns nothing
    const out = new Uint8Array(ct.length + 16);
    out.set(ct);
    out.set(cipher.getAuthTag(), ct.length);
    return out;
  },

  aesGcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null {
    const split = sealed.length - 16;
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
    decipher.setAuthTag(sealed.subarray(split));
    decipher.setAAD(aad);
    const pt = decipher.update(sealed.subarray(0, split));
    try {
      decipher.final(); // checks the tag
    } catch {
      pt.fill(0); // never release unauthenticated plaintext
      return null;
    }
    return plain(pt);
  },

  aes128Ctr(key: Uint8Array, iv: Uint8Array): KeystreamGenerator {
    return new NativeKeystream('aes-128-ctr', key, iv);
  },

  aes256Ctr(key: Uint8Array, iv: Uint8Array): KeystreamGenerator {
    return new NativeKeystream('aes-256-ctr', key, iv);
  },
};

/** The node:crypto provider: {@link nativeRaw} behind the validating wrapper. */
export const nativeProvider: CryptoProvider = validated(nativeRaw);
