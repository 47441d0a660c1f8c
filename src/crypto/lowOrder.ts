/**
 * Blocklists of low-order public keys for Curve25519 (X25519) and
 * edwards25519 (Ed25519).
 *
 * A low-order X25519 public key makes every shared secret all zero, whatever
 * the private key, so anyone (the server included) could compute the pairwise
 * mask seed. The protocol rejects such keys when they are advertised, and both
 * providers reject the all-zero result in `x25519()` as RFC 7748 §6.1 allows.
 */
import { abytes } from './_validate.js';

/** Decodes a list of 32-byte hex strings. */
const fromHexList = (list: string[]): Uint8Array[] =>
  list.map((h) => Uint8Array.from({ length: 32 }, (_, i) => parseInt(h.slice(2 * i, 2 * i + 2), 16)));

/**
 * The u-coordinates (little-endian, bit 255 clear) of the points of order 1, 2,
 * 4 and 8 on Curve25519 and its twist, from D. J. Bernstein, "Which Curve25519
 * public keys are weak?", https://cr.yp.to/ecdh.html#validate, plus their
 * non-canonical encodings u + p below 2^255. Bernstein's further entries ≥ 2^255
 * (u + p for the order-8 u's, 2p − 1, 2p, 2p + 1) do not apply to X25519: RFC 7748
 * §5 clears bit 255 before decoding, so those strings denote other, high-order,
 * u's. Instead, each entry below also matches with bit 255 set.
 */
const X25519_LOW_ORDER = fromHexList([
  // 0: the point (0, 0) of order 2 (the ladder maps it, and the point at infinity, to 0)
  '0000000000000000000000000000000000000000000000000000000000000000',
  // 1: order 4
  '0100000000000000000000000000000000000000000000000000000000000000',
  // 325606250916557431795983626356110631294008115727848805560023387167927233504: order 8
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  // 39382357235489614581723060781553021112529911719440698176882885853963445705823: order 8
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  // p - 1: order 4 on the twist
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  // p: non-canonical 0
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  // p + 1: non-canonical 1
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
]);

/**
 * The encodings (RFC 8032 §5.1.2, little-endian y with the sign of x in bit 255)
 * of the 8 points of order 1, 2, 4 and 8 on edwards25519, plus the encodings
 * of the same points that a lenient decoder accepts: x = 0 with the sign bit
 * set, and y ≥ p (y = p for y = 0 and y = p + 1 for y = 1). See Chalkias,
 * Garillot, Nikolaenko, "Taming the many EdDSAs" (SSR 2020).
 */
const ED25519_LOW_ORDER = fromHexList([
  // identity (0, 1), order 1; then with the sign bit set (x = 0, non-canonical)
  '0100000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000080',
  // (0, -1), order 2; then with the sign bit set
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  // (±sqrt(-1), 0), order 4; then y = p (non-canonical 0), both signs
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  // y = p + 1 (non-canonical identity), both signs
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  // the four points of order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
]);

/**
 * Compares a key with a list entry; `mask` is applied to the key's last byte.
 * Runs in time independent of the key's contents (it is public, but cheap to
 * keep uniform).
 */
function matches(key: Uint8Array, entry: Uint8Array, mask: number): boolean {
  let diff = 0;
  for (let i = 0; i < 31; i++) diff |= key[i]! ^ entry[i]!;
  diff |= (key[31]! & mask) ^ entry[31]!;
  return diff === 0;
}

/**
 * True when `publicKey` is an X25519 public key of low order: X25519 with it
 * gives the all-zero shared secret for every private key. Covers canonical and
 * non-canonical encodings, with or without bit 255 set (RFC 7748 §5 ignores it).
 * @param publicKey - 32-byte u-coordinate
 * @throws ValidationError `CRYPTO_ERR_BAD_INPUT` when `publicKey` is not 32 bytes
 * @example
 * isLowOrderX25519(new Uint8Array(32)); // true: u = 0
 */
export function isLowOrderX25519(publicKey: Uint8Array): boolean {
  abytes(publicKey, 32, 'publicKey');
  let found = false;
  for (const entry of X25519_LOW_ORDER) found = matches(publicKey, entry, 0x7f) || found;
  return found;
}

/**
 * True when `publicKey` encodes (canonically or not) an edwards25519 point of
 * small order. Such a key lets distinct messages share one signature, so both
 * providers' `ed25519Verify` reject it.
 * @param publicKey - 32-byte Ed25519 public key
 * @throws ValidationError `CRYPTO_ERR_BAD_INPUT` when `publicKey` is not 32 bytes
 */
export function isLowOrderEd25519(publicKey: Uint8Array): boolean {
  abytes(publicKey, 32, 'publicKey');
  let found = false;
  for (const entry of ED25519_LOW_ORDER) found = matches(publicKey, entry, 0xff) || found;
  return found;
}

/** Copies of both blocklists (bit 255 clear in the X25519 entries), for tests and audits. */
export function lowOrderLists(): { x25519: Uint8Array[]; ed25519: Uint8Array[] } {
  return { x25519: X25519_LOW_ORDER.map((e) => e.slice()), ed25519: ED25519_LOW_ORDER.map((e) => e.slice()) };
}

/**
 * True when `publicKey` is a non-canonical Ed25519 encoding: its y (bit 255
 * cleared) is ≥ p = 2^255 − 19. RFC 8032 §5.1.3 step 1 says decoding fails for
 * such a y; both providers' `ed25519Verify` return false for it.
 * @param publicKey - 32-byte Ed25519 public key (or signature half R)
 * @throws ValidationError `CRYPTO_ERR_BAD_INPUT` when `publicKey` is not 32 bytes
 */
export function isNonCanonicalEd25519(publicKey: Uint8Array): boolean {
  abytes(publicKey, 32, 'publicKey');
  // p little-endian is ed ff … ff 7f, so y ≥ p iff bytes 1..30 are ff, byte 31
  // (masked) is 7f and byte 0 is ≥ ed.
  if ((publicKey[31]! & 0x7f) !== 0x7f || publicKey[0]! < 0xed) return false;
  for (let i = 1; i < 31; i++) if (publicKey[i] !== 0xff) return false;
  return true;
}

/**
 * The checks both providers run before an Ed25519 verification (RFC 8032
 * §5.1.7 step 1, made strict): arguments must be byte strings (else a
 * `ValidationError`); a key or signature of the wrong length, a non-canonical
 * key (y ≥ p) or a small-order key never verifies, since OpenSSL would accept
 * one signature under a small-order key for many messages.
 * @returns whether verification may proceed.
 */
export function ed25519VerifyPrecheck(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  abytes(publicKey, undefined, 'publicKey');
  abytes(message, undefined, 'message');
  abytes(signature, undefined, 'signature');
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  return !isNonCanonicalEd25519(publicKey) && !isLowOrderEd25519(publicKey);
}
