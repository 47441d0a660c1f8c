/**
 * The secagg-v1 vector type: m integers mod 2^b (1 ≤ b ≤ 32), held in a
 * `Uint32Array`, and its wire encoding.
 *
 * Arithmetic: sums of inputs and masks are accumulated mod 2^32 (a
 * `Uint32Array` store wraps, `Int32Array` with `| 0` likewise) and reduced mod
 * 2^b once at the end. This is exact because 2^b divides 2^32: the map
 * Z/2^32 → Z/2^b, x ↦ x mod 2^b, is a ring homomorphism, so
 * (Σ x_i mod 2^32) mod 2^b = Σ x_i mod 2^b, whatever the order of additions,
 * subtractions and intermediate wraps.
 *
 * Wire encoding (packVector): exactly ⌈b·m/8⌉ bytes. The values form one
 * little-endian bit stream: value i occupies bits [i·b, (i+1)·b) of the stream,
 * least significant bit first, where bit j of the stream is bit (j mod 8) of
 * byte ⌊j/8⌋. Unused high bits of the last byte are zero. For b = 8, 16, 32 this
 * is simply the values as little-endian uint8/uint16/uint32.
 */
import { CodecError, ValidationError } from '../errors.js';

const CODE = 'SECAGG_ERR_BAD_VECTOR';
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Checks that `b` is an integer in [1, 32]. @throws ValidationError `SECAGG_ERR_BAD_VECTOR` */
export function checkBits(b: number): void {
  if (!Number.isInteger(b) || b < 1 || b > 32) {
    throw new ValidationError(CODE, `"b" expected an integer in [1, 32], got ${String(b)}`);
  }
}

/** The bit mask 2^b − 1 as a uint32. */
export function bitMask(b: number): number {
  checkBits(b);
  return b === 32 ? 0xffffffff : (2 ** b) - 1;
}

/** Reduces every entry mod 2^b, in place; returns `vec`. */
export function reduce(vec: Uint32Array, b: number): Uint32Array {
  const mask = bitMask(b);
  if (b === 32) return vec;
  for (let i = 0; i < vec.length; i++) vec[i] = vec[i]! & mask;
  return vec;
}

/**
 * Checks that `vec` is a `Uint32Array` of length `m` with every entry < 2^b.
 * @throws ValidationError `SECAGG_ERR_BAD_VECTOR`
 */
export function checkRange(vec: Uint32Array, m: number, b: number, name = 'input'): void {
  const mask = bitMask(b);
  const what = `"${name}" expected Uint32Array of length ${m} with entries < 2^${b}`;
  if (!(vec instanceof Uint32Array)) throw new ValidationError(CODE, `${what}, got ${Object.prototype.toString.call(vec)}`);
  if (vec.length !== m) throw new ValidationError(CODE, `${what}, got length=${vec.length}`);
  if (b === 32) return;
  for (let i = 0; i < m; i++) {
    if (vec[i]! > mask) throw new ValidationError(CODE, `${what}, got ${vec[i]} at index ${i}`);
  }
}

/** Number of bytes of the packed encoding of m values of b bits. */
export function packedLength(m: number, b: number): number {
  checkBits(b);
  return Math.ceil((b * m) / 8);
}

/**
 * Packs `vec` (entries < 2^b) into exactly ⌈b·m/8⌉ bytes, little-endian bit order.
 * @throws ValidationError `SECAGG_ERR_BAD_VECTOR` if an entry is ≥ 2^b
 */
export function packVector(vec: Uint32Array, b: number): Uint8Array {
  const m = vec?.length;
  checkRange(vec, m, b, 'vec');
  const out = new Uint8Array(packedLength(m, b));
  if (b === 32) {
    if (LITTLE_ENDIAN) out.set(new Uint8Array(vec.buffer, vec.byteOffset, m * 4));
    else { const dv = new DataView(out.buffer); for (let i = 0; i < m; i++) dv.setUint32(4 * i, vec[i]!, true); }
  } else if (b === 16) {
    for (let i = 0, j = 0; i < m; i++, j += 2) { const v = vec[i]!; out[j] = v; out[j + 1] = v >>> 8; }
  } else if (b === 8) {
    out.set(vec); // entries < 256, Uint8Array store truncates nothing
  } else {
    // Generic path: a bit accumulator holding < 8 + 32 bits; kept in a double
    // (exact below 2^53) because JS bitwise operators are 32-bit.
    let acc = 0, nbits = 0, j = 0;
    for (let i = 0; i < m; i++) {
      acc += vec[i]! * 2 ** nbits;
      nbits += b;
      while (nbits >= 8) { out[j++] = acc % 256; acc = Math.floor(acc / 256); nbits -= 8; }
    }
    if (nbits > 0) out[j] = acc;
  }
  return out;
}

/**
 * Checks that `bytes` is a well-formed packing of m values of b bits: exactly
 * ⌈b·m/8⌉ bytes with zero padding bits. Returns the length.
 * @throws CodecError `SECAGG_ERR_BAD_VECTOR`
 */
export function checkPacked(bytes: Uint8Array, m: number, b: number): number {
  if (!Number.isSafeInteger(m) || m < 0) throw new ValidationError(CODE, `"m" expected a non-negative integer, got ${String(m)}`);
  const len = packedLength(m, b);
  if (!(bytes instanceof Uint8Array) || bytes.length !== len) {
    throw new CodecError(CODE, `"bytes" expected Uint8Array of length ${len} (m=${m}, b=${b}), got length=${(bytes as Uint8Array)?.length}`);
  }
  const padBits = len * 8 - b * m;
  if (padBits > 0 && (bytes[len - 1]! >>> (8 - padBits)) !== 0) {
    throw new CodecError(CODE, `"bytes" has non-zero padding bits in its last byte (m=${m}, b=${b})`);
  }
  return len;
}

/**
 * Decodes m values of b bits (`unpackVector(bytes, b, m)`, the argument order of
 * `packVector(vec, b)` with the count last) from exactly ⌈b·m/8⌉ bytes (see {@link packVector}).
 * @throws CodecError `SECAGG_ERR_BAD_VECTOR` on a wrong length or non-zero padding bits
 */
export function unpackVector(bytes: Uint8Array, b: number, m: number): Uint32Array {
  const len = checkPacked(bytes, m, b);
  const out = new Uint32Array(m);
  if (b === 32) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, len);
    for (let i = 0; i < m; i++) out[i] = dv.getUint32(4 * i, true);
  } else if (b === 16) {
    for (let i = 0, j = 0; i < m; i++, j += 2) out[i] = bytes[j]! | (bytes[j + 1]! << 8);
  } else if (b === 8) {
    out.set(bytes);
  } else {
    const mask = 2 ** b;
    let acc = 0, nbits = 0, j = 0;
    for (let i = 0; i < m; i++) {
      while (nbits < b) { acc += bytes[j++]! * 2 ** nbits; nbits += 8; }
      out[i] = acc % mask;
      acc = Math.floor(acc / mask);
      nbits -= b;
    }
  }
  return out;
}
