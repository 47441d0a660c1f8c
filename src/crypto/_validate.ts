/**
 * Input validators and small byte helpers for the crypto suite.
 *
 * Every validator throws {@link ValidationError} with code
 * {@link BAD_INPUT} and a message naming the argument, e.g.
 * `"publicKey" expected Uint8Array of length 32, got length=31`
 * (the noble-hashes `abytes` convention). The success path comes first:
 * these run on every call of every primitive.
 */
import { ValidationError } from '../errors.js';

/** Error code of every input-validation failure in `src/crypto/` (a {@link ValidationError}). */
export const BAD_INPUT = 'CRYPTO_ERR_BAD_INPUT';
/** `CryptoError` code: X25519 gave the all-zero shared secret (a low-order public key). */
export const LOW_ORDER_KEY = 'CRYPTO_ERR_LOW_ORDER_KEY';
/** `CryptoError` code: AES-GCM authentication failed. */
export const DECRYPT = 'CRYPTO_ERR_DECRYPT';
/** Largest HKDF-SHA256 output, 255 · HashLen (RFC 5869 §2.3). */
export const HKDF_MAX_LENGTH = 255 * 32;

/** Describes a value's type for an error message without printing its contents (it may be secret). */
function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (ArrayBuffer.isView(value)) return value.constructor.name;
  return typeof value;
}

/**
 * True for a `Uint8Array`, including `Buffer` and instances from another realm.
 * @param value - anything
 */
export function isBytes(value: unknown): value is Uint8Array {
  return (
    value instanceof Uint8Array ||
    (ArrayBuffer.isView(value) && value.constructor.name === 'Uint8Array')
  );
}

/**
 * Asserts that `value` is a `Uint8Array`, of exactly `length` bytes when given.
 * @param value - the argument to check
 * @param length - required length, or `undefined` for any length
 * @param name - argument name used in the message
 * @returns `value`, narrowed to `Uint8Array`
 * @throws ValidationError `CRYPTO_ERR_BAD_INPUT` on a wrong type or length
 * @example
 * abytes(publicKey, 32, 'publicKey');
 */
export function abytes(value: unknown, length: number | undefined, name: string): Uint8Array {
  if (isBytes(value) && (length === undefined || value.length === length)) return value;
  const want = length === undefined ? 'Uint8Array' : `Uint8Array of length ${length}`;
  const got = isBytes(value) ? `length=${value.length}` : `type=${typeOf(value)}`;
  throw new ValidationError(BAD_INPUT, `"${name}" expected ${want}, got ${got}`);
}

/**
 * Asserts that `value` is a `Uint8Array` of at least `min` bytes.
 * @throws ValidationError `CRYPTO_ERR_BAD_INPUT` on a wrong type or a shorter value
 */
export function abytesMin(value: unknown, min: number, name: string): Uint8Array {
  if (isBytes(value) && value.length >= min) return value;
  const got = isBytes(value) ? `length=${value.length}` : `type=${typeOf(value)}`;
  throw new ValidationError(BAD_INPUT, `"${name}" expected Uint8Array of length >= ${min}, got ${got}`);
}

/**
 * Asserts that `value` is a safe integer in `[min, max]`.
 * @returns `value`, narrowed to `number`
 * @throws ValidationError `CRYPTO_ERR_BAD_INPUT` otherwise
 * @example
 * anumber(length, 'length', 0, 255 * 32);
 */
export function anumber(value: unknown, name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max) return value;
  const got = typeof value === 'number' ? `${value}` : `type=${typeOf(value)}`;
  throw new ValidationError(BAD_INPUT, `"${name}" expected integer in [${min}, ${max}], got ${got}`);
}

/**
 * Compares two byte strings in time that depends only on their lengths, not on
 * where they differ (for tags, keys and other secret-derived values).
 * @returns true when both have the same length and contents
 */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  abytes(a, undefined, 'a');
  abytes(b, undefined, 'b');
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * Concatenates byte strings into a fresh array.
 * @throws ValidationError `CRYPTO_ERR_BAD_INPUT` when an argument is not a `Uint8Array`
 */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (let i = 0; i < parts.length; i++) total += abytes(parts[i], undefined, `parts[${i}]`).length;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Concatenates byte strings and unsigned 32-bit integers, each integer as its
 * big-endian 4 bytes ({@link u32be}), into one fresh array: the transcript
 * encodings of secagg-v1 (labels, ids, keys) without a 4-byte array per
 * integer. Takes an array, not arguments, so a list of n ids never meets the
 * engine's limit on arguments.
 * @throws ValidationError `CRYPTO_ERR_BAD_INPUT` when a part is neither a
 *   `Uint8Array` nor an integer in `[0, 2^32 - 1]`
 */
export function concatFields(parts: readonly (Uint8Array | number)[]): Uint8Array {
  let total = 0;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (typeof p === 'number') {
      if (p >>> 0 !== p) anumber(p, `parts[${i}]`, 0, 0xffffffff); // throws: not a u32
      total += 4;
    } else {
      total += (isBytes(p) ? p : abytes(p, undefined, `parts[${i}]`)).length;
    }
  }
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  let off = 0;
  for (const p of parts) {
    if (typeof p === 'number') {
      dv.setUint32(off, p, false);
      off += 4;
    } else {
      out.set(p, off);
      off += p.length;
    }
  }
  return out;
}

/**
 * Big-endian 4-byte encoding of an unsigned 32-bit integer.
 * @throws ValidationError `CRYPTO_ERR_BAD_INPUT` when `n` is not an integer in `[0, 2^32 - 1]`
 * @example
 * u32be(258); // Uint8Array [0, 0, 1, 2]
 */
export function u32be(n: number): Uint8Array {
  anumber(n, 'n', 0, 0xffffffff);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, false);
  return out;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * Lower-case hex encoding.
 * @throws ValidationError `CRYPTO_ERR_BAD_INPUT` when `bytes` is not a `Uint8Array`
 */
export function toHex(bytes: Uint8Array): string {
  abytes(bytes, undefined, 'bytes');
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]!];
  return s;
}

/** Value of one hex digit (char code), or -1. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 97 && c <= 102) return c - 87; // a-f
  if (c >= 65 && c <= 70) return c - 55; // A-F
  return -1;
}

/**
 * Decodes hex (either case, no prefix, no separators).
 * @throws ValidationError `CRYPTO_ERR_BAD_INPUT` on a non-string, odd length or a non-hex character
 * @example
 * fromHex('0a0B'); // Uint8Array [10, 11]
 */
export function fromHex(hex: string): Uint8Array {
  if (typeof hex !== 'string') {
    throw new ValidationError(BAD_INPUT, `"hex" expected string, got type=${typeOf(hex)}`);
  }
  if (hex.length % 2 !== 0) {
    throw new ValidationError(BAD_INPUT, `"hex" expected an even number of digits, got length=${hex.length}`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexDigit(hex.charCodeAt(2 * i));
    const lo = hexDigit(hex.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) {
      throw new ValidationError(BAD_INPUT, `"hex" has a non-hex character at index ${hi < 0 ? 2 * i : 2 * i + 1}`);
    }
    out[i] = (hi << 4) | lo;
  }
  return out;
}
