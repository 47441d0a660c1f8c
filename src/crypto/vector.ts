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
  return b === 32 ? 0xffffffff : (1 << b >>> 0) - 1;
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

/*
 * Word-at-a-time bit packing. The bit stream of packVector, read 32 bits at a
 * time, is a sequence of little-endian uint32 words: bit j of the stream is
 * bit (j mod 32) of word ⌊j/32⌋. So on a little-endian host a packed buffer
 * viewed as a Uint32Array is exactly that word sequence, and value i sits at
 * bit offset i·b of it, possibly straddling two words. The loops below keep a
 * 32-bit bit buffer `acc` holding `nbits` pending bits and move whole words in
 * and out of it with shifts; every shift count stays in [0, 31] (JS takes
 * shift counts mod 32, so a shift by 32 would be a no-op, not a clear).
 */

/** Swaps the bytes of the first `n` words in place (big-endian hosts only). */
function byteSwapWords(words: Uint32Array, n: number): void {
  for (let k = 0; k < n; k++) {
    const w = words[k]!;
    words[k] = (w >>> 24) | ((w >>> 8) & 0xff00) | ((w & 0xff00) << 8) | (w << 24);
  }
}

/**
 * Packs `n` values of `b` < 32 bits (each taken mod 2^b) from `src` into the
 * stream: writes the ⌊n·b/32⌋ complete words to `out` and returns the last,
 * partial word (its (n·b mod 32) low bits; the rest zero). Returns also, in
 * `orAll[0]`, the OR of the unreduced inputs, from which the caller can tell
 * whether any was out of range without a separate pass.
 */
function packBitsLE(src: Uint32Array | Int32Array, n: number, b: number, out: Uint32Array, orAll: Uint32Array): number {
  const mask = (1 << b) - 1; // b < 32: ≤ 2^31 − 1, an int32
  let i = 0, k = 0, or = 0;
  // Whole groups of the common widths, unrolled: a group of 4, 2, 8 or 4
  // values fills 1, 1, 5 or 3 words at b = 8, 16, 20 or 24 and ends on a word boundary.
  if (b === 8) {
    for (; i + 4 <= n; i += 4, k++) {
      const x0 = src[i]!, x1 = src[i + 1]!, x2 = src[i + 2]!, x3 = src[i + 3]!;
      or |= x0 | x1 | x2 | x3;
      out[k] = (x0 & mask) | ((x1 & mask) << 8) | ((x2 & mask) << 16) | (x3 << 24);
    }
  } else if (b === 16) {
    for (; i + 2 <= n; i += 2, k++) {
      const x0 = src[i]!, x1 = src[i + 1]!;
      or |= x0 | x1;
      out[k] = (x0 & mask) | (x1 << 16);
    }
  } else if (b === 20) {
    for (; i + 8 <= n; i += 8, k += 5) {
      const x0 = src[i]!, x1 = src[i + 1]!, x2 = src[i + 2]!, x3 = src[i + 3]!;
      const x4 = src[i + 4]!, x5 = src[i + 5]!, x6 = src[i + 6]!, x7 = src[i + 7]!;
      or |= x0 | x1 | x2 | x3 | x4 | x5 | x6 | x7;
      const v1 = x1 & mask, v3 = x3 & mask, v4 = x4 & mask, v6 = x6 & mask;
      out[k] = (x0 & mask) | (v1 << 20);
      out[k + 1] = (v1 >>> 12) | ((x2 & mask) << 8) | (v3 << 28);
      out[k + 2] = (v3 >>> 4) | (v4 << 16);
      out[k + 3] = (v4 >>> 16) | ((x5 & mask) << 4) | (v6 << 24);
      out[k + 4] = (v6 >>> 8) | ((x7 & mask) << 12);
    }
  } else if (b === 24) {
    for (; i + 4 <= n; i += 4, k += 3) {
      const x0 = src[i]!, x1 = src[i + 1]!, x2 = src[i + 2]!, x3 = src[i + 3]!;
      or |= x0 | x1 | x2 | x3;
      const v1 = x1 & mask, v2 = x2 & mask;
      out[k] = (x0 & mask) | (v1 << 24);
      out[k + 1] = (v1 >>> 8) | (v2 << 16);
      out[k + 2] = (v2 >>> 16) | ((x3 & mask) << 8);
    }
  }
  // General loop (any b < 32; the remainder of the groups above).
  let acc = 0, nbits = 0;
  for (; i < n; i++) {
    const x = src[i]!;
    or |= x;
    const v = x & mask;
    acc |= v << nbits; // nbits ∈ [0, 31]
    nbits += b;
    if (nbits >= 32) {
      out[k++] = acc;
      nbits -= 32;
      // The nbits high bits of v that did not fit. When nbits = 0 this is v >>> b = 0 (b < 32, v < 2^b).
      acc = v >>> (b - nbits);
    }
  }
  orAll[0] = or;
  return acc >>> 0;
}

/**
 * Unpacks `n` values of `b` < 32 bits from the stream words `words` (at least
 * ⌈n·b/32⌉ of them; bits past n·b are ignored, whatever they hold) into `out`.
 */
function unpackBitsLE(words: Uint32Array, n: number, b: number, out: Uint32Array): void {
  const mask = (1 << b) - 1;
  let i = 0, k = 0;
  // The groups of packBitsLE, read back.
  if (b === 20) {
    for (; i + 8 <= n; i += 8, k += 5) {
      const w0 = words[k]!, w1 = words[k + 1]!, w2 = words[k + 2]!, w3 = words[k + 3]!, w4 = words[k + 4]!;
      out[i] = w0 & mask;
      out[i + 1] = ((w0 >>> 20) | (w1 << 12)) & mask;
      out[i + 2] = (w1 >>> 8) & mask;
      out[i + 3] = ((w1 >>> 28) | (w2 << 4)) & mask;
      out[i + 4] = ((w2 >>> 16) | (w3 << 16)) & mask;
      out[i + 5] = (w3 >>> 4) & mask;
      out[i + 6] = ((w3 >>> 24) | (w4 << 8)) & mask;
      out[i + 7] = w4 >>> 12;
    }
  } else if (b === 24) {
    for (; i + 4 <= n; i += 4, k += 3) {
      const w0 = words[k]!, w1 = words[k + 1]!, w2 = words[k + 2]!;
      out[i] = w0 & mask;
      out[i + 1] = ((w0 >>> 24) | (w1 << 8)) & mask;
      out[i + 2] = ((w1 >>> 16) | (w2 << 16)) & mask;
      out[i + 3] = w2 >>> 8;
    }
  }
  let acc = 0, nbits = 0;
  for (; i < n; i++) {
    if (nbits >= b) {
      out[i] = acc & mask;
      acc >>>= b;
      nbits -= b;
    } else {
      // The value straddles the pending bits and the next word (nbits < b < 32).
      const w = words[k++]!;
      out[i] = (acc | (w << nbits)) & mask;
      acc = w >>> (b - nbits); // shift ∈ [1, 31]
      nbits += 32 - b;
    }
  }
}

const ORALL = new Uint32Array(1);

/**
 * Writes the packing of `n` values of `b` bits from `src` (each taken mod
 * 2^b) into `out`, exactly ⌈b·n/8⌉ bytes, a fresh buffer (byteOffset 0). Returns
 * the OR of the unreduced entries for b < 32 (0 for b = 32).
 */
function packInto(src: Uint32Array | Int32Array, n: number, b: number, out: Uint8Array): number {
  const len = out.length;
  const full = Math.floor((n * b) / 32); // complete words of the stream
  const words = new Uint32Array(out.buffer, out.byteOffset, full);
  if (b === 32) {
    out.set(new Uint8Array(src.buffer, src.byteOffset, n * 4));
    if (!LITTLE_ENDIAN) byteSwapWords(words, full);
    return 0;
  }
  const last = packBitsLE(src, n, b, words, ORALL);
  if (!LITTLE_ENDIAN) byteSwapWords(words, full);
  for (let j = full * 4, w = last; j < len; j++, w >>>= 8) out[j] = w & 0xff;
  return ORALL[0]!;
}

/**
 * Packs `vec` (entries < 2^b) into exactly ⌈b·m/8⌉ bytes, little-endian bit order.
 * @throws ValidationError `SECAGG_ERR_BAD_VECTOR` if an entry is ≥ 2^b
 */
export function packVector(vec: Uint32Array, b: number): Uint8Array {
  const m = vec?.length;
  checkRange(vec, m, 32, 'vec'); // type and length; the range is checked below
  const out = new Uint8Array(packedLength(m, b));
  const or = packInto(vec, m, b, out);
  // The pack loop ORs every entry: any bit ≥ b set means an entry out of range,
  // which the full check then names (index and value).
  if (b < 32 && or >>> b !== 0) checkRange(vec, m, b, 'vec');
  return out;
}

/**
 * Packs the low `b` bits of the first `n` entries of `src` (entries are taken
 * mod 2^b, no range check): the packing of a sum accumulated mod 2^32, with
 * the final reduction done by the pack itself (see the module comment).
 */
export function packReduced(src: Uint32Array | Int32Array, n: number, b: number): Uint8Array {
  checkBits(b);
  if (!(src instanceof Uint32Array || src instanceof Int32Array) || !Number.isSafeInteger(n) || n < 0 || n > src.length) {
    throw new ValidationError(CODE, `"src" expected Uint32Array or Int32Array of length ≥ n=${String(n)}`);
  }
  const out = new Uint8Array(Math.ceil((b * n) / 8));
  packInto(src, n, b, out);
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
 * Unpacks `n` values of `b` bits from `bytes` (exactly ⌈b·n/8⌉ bytes of the
 * stream, starting on a value boundary, any byteOffset) into `out`. `staging`
 * is an aligned buffer of at least ⌈b·n/32⌉ words that the packed bytes are
 * copied into once (for b ∉ {8, 32}); its stale tail bits are never read
 * into a value. No validation: callers run {@link checkPacked} first.
 */
export function unpackInto(bytes: Uint8Array, b: number, n: number, out: Uint32Array, staging: Uint32Array): void {
  if (b === 32) {
    new Uint8Array(out.buffer, out.byteOffset, n * 4).set(bytes);
    if (!LITTLE_ENDIAN) byteSwapWords(out, n);
    return;
  }
  if (b === 8) {
    out.set(bytes); // uint8 → uint32, C++ conversion loop
    return;
  }
  new Uint8Array(staging.buffer, staging.byteOffset, bytes.length).set(bytes);
  if (b === 16 && LITTLE_ENDIAN) {
    out.set(new Uint16Array(staging.buffer, staging.byteOffset, n));
    return;
  }
  if (!LITTLE_ENDIAN) byteSwapWords(staging, Math.ceil(bytes.length / 4));
  unpackBitsLE(staging, n, b, out);
}

/**
 * Decodes m values of b bits (`unpackVector(bytes, b, m)`, the argument order of
 * `packVector(vec, b)` with the count last) from exactly ⌈b·m/8⌉ bytes (see {@link packVector}).
 * @throws CodecError `SECAGG_ERR_BAD_VECTOR` on a wrong length or non-zero padding bits
 */
export function unpackVector(bytes: Uint8Array, b: number, m: number): Uint32Array {
  const len = checkPacked(bytes, m, b);
  const out = new Uint32Array(m);
  const staging = b === 8 || b === 32 ? out : new Uint32Array(Math.ceil(len / 4));
  unpackInto(bytes, b, m, out, staging);
  return out;
}
