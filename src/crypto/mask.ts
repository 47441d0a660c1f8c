/**
 * Mask expansion and accumulation, the hot path of secure aggregation (both
 * the clients, which add their masks, and the server, which removes the masks
 * of dropped clients and the self masks of survivors).
 *
 * secagg-v1 mask of a 16-byte key: the AES-128-CTR keystream under that key
 * with an all-zero initial counter block (big-endian counter), read as
 * consecutive little-endian uint32 words; word i is mask entry i. The mask is
 * taken mod 2^b by the single final reduction of the accumulator (see
 * vector.ts: accumulating mod 2^32 and reducing once is exact as 2^b | 2^32).
 *
 * {@link MaskAccumulator} never materialises a whole mask: it expands each key
 * in fixed-size chunks into one reused scratch buffer and adds or subtracts
 * the chunk into the accumulator. The add runs in a small WebAssembly SIMD
 * kernel (i32x4.add/sub) when the runtime has one, else in a plain JS loop over
 * Int32Array views (`(a + b) | 0` wraps mod 2^32 like the SIMD lanes); both are
 * tested against the same reference.
 *
 * Both cores (or more): {@link MaskAccumulator.addMasks} can split the vector
 * into windows expanded by a pool of worker threads (_maskPool.ts) while the
 * calling thread expands its own windows. Word w of a mask is keystream word w,
 * i.e. AES block ⌊w/4⌋, so a window starting at word w (a multiple of 4) is
 * the keystream under the initial counter block w/4 (NIST SP 800-38A §6.5:
 * counter blocks T_j = T_1 + j − 1). Sums mod 2^32 do not depend on the order
 * of additions, so the result is bit-identical however the work is split.
 *
 * Text form of the kernel whose bytes are assembled below:
 *
 * ```wat
 * (module
 *   (memory (export "mem") 1)
 *   ;; acc[i] += src[i] (i32 lanes, wrapping), nbytes a multiple of 64
 *   (func (export "add") (param $acc i32) (param $src i32) (param $nbytes i32)
 *     (block (loop
 *       (br_if 1 (i32.eqz (local.get $nbytes)))
 *       ;; unrolled 4×, offsets 0, 16, 32, 48:
 *       (v128.store offset=0 (local.get $acc)
 *         (i32x4.add (v128.load offset=0 (local.get $acc)) (v128.load offset=0 (local.get $src))))
 *       …
 *       (local.set $acc (i32.add (local.get $acc) (i32.const 64)))
 *       (local.set $src (i32.add (local.get $src) (i32.const 64)))
 *       (local.set $nbytes (i32.sub (local.get $nbytes) (i32.const 64)))
 *       (br 0))))
 *   (func (export "sub") …the same with i32x4.sub…)
 *   ;; acc[i] += the 8·groups 20-bit values of the packed stream at src (see unpack20Body)
 *   (func (export "unpack20add") (param $acc i32) (param $src i32) (param $groups i32) (local $t v128) …))
 * ```
 */
import { ValidationError } from '../errors.js';
import type { CryptoProvider } from './types.js';
import { maskPool, PARALLEL_MIN_WORDS, resolveThreads, type MaskThreads } from './_maskPool.js';
import { checkPacked, checkRange, packReduced, reduce, unpackInto } from './vector.js';

/** The exports of the SIMD kernel instance. */
interface WasmAddKernel {
  /** The module's linear memory (grown by the caller). */
  readonly memory: { grow(pages: number): number; readonly buffer: ArrayBuffer };
  /** acc[i] += src[i] over `nbytes` bytes (multiple of 64), byte addresses 16-aligned. */
  add(acc: number, src: number, nbytes: number): void;
  /** acc[i] −= src[i] over `nbytes` bytes (multiple of 64). */
  sub(acc: number, src: number, nbytes: number): void;
  /**
   * acc[i] += value i of the 20-bit little-endian bit stream at `src`, for
   * 8·groups values (20 bytes each 8); reads up to 6 bytes past the last group.
   */
  unpack20add(acc: number, src: number, groups: number): void;
}

interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

const leb = (n: number): number[] => {
  const out: number[] = [];
  do { let b = n & 0x7f; n >>>= 7; if (n !== 0) b |= 0x80; out.push(b); } while (n !== 0);
  return out;
};
const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];
const name = (s: string): number[] => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];

function funcBody(simdOp: number): number[] {
  const LOCAL_GET = 0x20, LOCAL_SET = 0x21, I32_CONST = 0x41, SIMD = 0xfd, ALIGN16 = 0x04;
  const code = [0x02, 0x40, 0x03, 0x40, LOCAL_GET, 2, 0x45 /* i32.eqz */, 0x0d, 1 /* br_if 1 */];
  for (const off of [0, 16, 32, 48]) {
    code.push(LOCAL_GET, 0,
      LOCAL_GET, 0, SIMD, 0x00 /* v128.load */, ALIGN16, ...leb(off),
      LOCAL_GET, 1, SIMD, 0x00, ALIGN16, ...leb(off),
      SIMD, ...leb(simdOp),
      SIMD, 0x0b /* v128.store */, ALIGN16, ...leb(off));
  }
  for (const [local, op] of [[0, 0x6a], [1, 0x6a], [2, 0x6b]] as const) { // i32.add / i32.sub
    code.push(LOCAL_GET, local, I32_CONST, ...[0xc0, 0x00] /* 64 as signed LEB */, op, LOCAL_SET, local);
  }
  code.push(0x0c, 0 /* br 0 */, 0x0b, 0x0b, 0x0b /* end loop, block, func */);
  const body = [0x00 /* no locals */, ...code];
  return [...leb(body.length), ...body];
}

/**
 * unpack20add: for each group of 20 bytes (8 values of 20 bits), two halves
 * of 10 bytes each give 4 values: a 16-byte load at the half, an i8x16.swizzle
 * that puts bytes (0,1,2), (2,3,4), (5,6,7), (7,8,9) into the low three bytes
 * of lanes 0-3, a shift right by 4 kept in lanes 1 and 3 only (bitselect: the
 * odd values start mid-byte), the 20-bit mask, and an i32x4.add into the
 * accumulator. Locals: 0 acc, 1 src, 2 groups, 3 a v128 temporary.
 */
function unpack20Body(): number[] {
  const LOCAL_GET = 0x20, LOCAL_SET = 0x21, I32_CONST = 0x41, SIMD = 0xfd, ALIGN16 = 0x04, ALIGN1 = 0x00;
  const v128 = (bytes: number[]) => [SIMD, 0x0c, ...bytes];
  const lanes = (words: number[]) => words.flatMap((w) => [w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, (w >>> 24) & 0xff]);
  // Swizzle indices ≥ 16 give 0: each lane is bytes (i, i+1, i+2) of the half and a zero byte.
  const IDX = [0, 1, 2, 0x80, 2, 3, 4, 0x80, 5, 6, 7, 0x80, 7, 8, 9, 0x80];
  const SEL = lanes([0, 0xffffffff, 0, 0xffffffff]);
  const MASK = lanes([0xfffff, 0xfffff, 0xfffff, 0xfffff]);
  const code: number[] = [0x02, 0x40, 0x03, 0x40, LOCAL_GET, 2, 0x45 /* i32.eqz */, 0x0d, 1 /* br_if 1 */];
  for (const [srcOff, accOff] of [[0, 0], [10, 16]] as const) {
    code.push(
      LOCAL_GET, 1, SIMD, 0x00 /* v128.load */, ALIGN1, ...leb(srcOff),
      ...v128(IDX), SIMD, 0x0e /* i8x16.swizzle */, LOCAL_SET, 3,
      LOCAL_GET, 0, // store address
      LOCAL_GET, 0, SIMD, 0x00, ALIGN16, ...leb(accOff),
      LOCAL_GET, 3, I32_CONST, 4, SIMD, ...leb(0xad) /* i32x4.shr_u */,
      LOCAL_GET, 3, ...v128(SEL), SIMD, 0x52 /* v128.bitselect */,
      ...v128(MASK), SIMD, 0x4e /* v128.and */,
      SIMD, ...leb(0xae) /* i32x4.add */,
      SIMD, 0x0b /* v128.store */, ALIGN16, ...leb(accOff));
  }
  for (const [local, step, op] of [[0, 32, 0x6a], [1, 20, 0x6a], [2, 1, 0x6b]] as const) { // i32.add / i32.sub
    code.push(LOCAL_GET, local, I32_CONST, ...leb(step) /* < 64: one signed LEB byte */, op, LOCAL_SET, local);
  }
  code.push(0x0c, 0 /* br 0 */, 0x0b, 0x0b, 0x0b /* end loop, block, func */);
  const body = [0x01, 0x01, 0x7b /* one v128 local */, ...code];
  return [...leb(body.length), ...body];
}

/** The kernel module bytes (see the text form above). */
export const WASM_ADD_BYTES: Uint8Array = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, [1, 0x60, 3, 0x7f, 0x7f, 0x7f, 0]), // type 0: (i32, i32, i32) -> ()
  ...section(3, [3, 0, 0, 0]), // three functions of type 0
  ...section(5, [1, 0x00, 1]), // one memory, min 1 page
  ...section(7, [4, ...name('mem'), 0x02, 0, ...name('add'), 0x00, 0, ...name('sub'), 0x00, 1, ...name('unpack20add'), 0x00, 2]),
  ...section(10, [3, ...funcBody(0xae /* i32x4.add */), ...funcBody(0xb1 /* i32x4.sub */), ...unpack20Body()]),
]);

let compiled: object | null | undefined;

/**
 * A fresh kernel instance with memory for `bytes` bytes, or `null` when the
 * runtime has no WebAssembly SIMD or the memory cannot be grown that far.
 */
function createWasmAddKernel(bytes: number): WasmAddKernel | null {
  const wa = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  if (wa === undefined) return null;
  try {
    if (compiled === undefined) compiled = new wa.Module(WASM_ADD_BYTES);
  } catch {
    compiled = null;
  }
  if (compiled === null) return null;
  try {
    const ex = new wa.Instance(compiled, {}).exports as unknown as {
      mem: WasmAddKernel['memory']; add: WasmAddKernel['add']; sub: WasmAddKernel['sub']; unpack20add: WasmAddKernel['unpack20add'];
    };
    const pages = Math.ceil(bytes / 65536);
    if (pages > 1) ex.mem.grow(pages - 1);
    return { memory: ex.mem, add: ex.add, sub: ex.sub, unpack20add: ex.unpack20add };
  } catch {
    return null;
  }
}

const CODE = 'SECAGG_ERR_BAD_MASK';
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** Default chunk size in bytes (fastest of 16/64/128/256 KiB in bench/_mask.ts). */
export const DEFAULT_MASK_CHUNK_BYTES = 65536;

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== 16) {
    throw new ValidationError(CODE, `"key" expected Uint8Array of length 16, got length=${(key as Uint8Array)?.length}`);
  }
}
function checkSign(sign: number): void {
  if (sign !== 1 && sign !== -1) throw new ValidationError(CODE, `"sign" expected 1 or -1, got ${String(sign)}`);
}
function checkDim(dim: number): void {
  if (!Number.isSafeInteger(dim) || dim < 0 || dim > 2 ** 28) {
    throw new ValidationError(CODE, `"dim" expected an integer in [0, 2^28], got ${String(dim)}`);
  }
}

/**
 * The initial counter block of the keystream from mask word `word` on (a
 * multiple of 4): the 128-bit big-endian integer word/4 (the secagg-v1 stream
 * starts at the all-zero block; word/4 < 2^26 by the bound on dim).
 */
export function counterBlockAt(word: number): Uint8Array {
  const iv = new Uint8Array(16);
  new DataView(iv.buffer).setUint32(12, word / 4, false);
  return iv;
}

/**
 * Reference mask expansion (tests, vectors): the first `dim` little-endian
 * uint32 words of AES-128-CTR(key, iv = 0). Allocates the whole mask.
 */
export function expandMask(key: Uint8Array, dim: number, provider: CryptoProvider): Uint32Array {
  checkKey(key);
  checkDim(dim);
  const bytes = new Uint8Array(dim * 4);
  provider.aes128Ctr(key, counterBlockAt(0)).fill(bytes);
  const out = new Uint32Array(dim);
  const dv = new DataView(bytes.buffer);
  for (let i = 0; i < dim; i++) out[i] = dv.getUint32(4 * i, true);
  return out;
}

/** One mask to add (`sign` = 1) or subtract (`sign` = −1). */
export interface MaskTerm {
  readonly key: Uint8Array;
  readonly sign: 1 | -1;
}

/** Options of {@link MaskAccumulator}. */
export interface MaskAccumulatorOptions {
  /** Scratch chunk size in bytes, a multiple of 64 (default {@link DEFAULT_MASK_CHUNK_BYTES}). */
  readonly chunkBytes?: number;
  /** `'auto'` (WebAssembly SIMD when available, default), `'wasm'` (required) or `'js'`. */
  readonly backend?: 'auto' | 'wasm' | 'js';
  /**
   * Threads for {@link MaskAccumulator.addMasks}: 1 (default) expands on the
   * calling thread only; n > 1 uses up to n − 1 pooled workers besides it;
   * `'auto'` uses every core (see _maskPool.ts). Whatever the value, work below
   * {@link PARALLEL_MIN_WORDS} keystream words, a provider other than the
   * native one, or a runtime without worker_threads runs on the calling thread.
   */
  readonly threads?: MaskThreads;
}

/**
 * Accumulates Σ ±vectors and Σ ±masks of dimension `dim` mod 2^32, in O(dim)
 * memory plus one scratch chunk, and returns the sum mod 2^b.
 *
 * Ownership: {@link result} returns a copy and leaves the accumulator usable;
 * {@link takeResult} hands over the accumulator's own memory, after which the
 * accumulator refuses further use except {@link clear} (which then wipes only
 * what it still holds: the scratch and staging buffers).
 */
export class MaskAccumulator {
  /** The add kernel in use. */
  readonly backend: 'wasm' | 'js';
  readonly dim: number;
  readonly chunkBytes: number;
  /** Threads addMasks may use (1: the calling thread only). */
  readonly threads: number;
  private readonly padded: number; // words, a multiple of 16 (64 bytes)
  private readonly acc: Int32Array;
  private readonly scratch: Uint8Array;
  private readonly scratch32: Int32Array;
  private readonly scratchU32: Uint32Array;
  /** Aligned copy of one chunk of packed input (addPacked), allocated on first use. */
  private staging: Uint32Array | null = null;
  private readonly kernel: WasmAddKernel | null;
  private taken = false;

  constructor(dim: number, private readonly provider: CryptoProvider, options: MaskAccumulatorOptions = {}) {
    checkDim(dim);
    const chunkBytes = options.chunkBytes ?? DEFAULT_MASK_CHUNK_BYTES;
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 64 || chunkBytes % 64 !== 0 || chunkBytes > 2 ** 24) {
      throw new ValidationError(CODE, `"chunkBytes" expected a multiple of 64 in [64, 2^24], got ${String(chunkBytes)}`);
    }
    this.threads = resolveThreads(options.threads ?? 1);
    this.dim = dim;
    this.chunkBytes = chunkBytes;
    this.padded = Math.ceil(dim / 16) * 16;
    const want = options.backend ?? 'auto';
    // The SIMD lanes are little-endian; on a big-endian host use the JS loop.
    this.kernel = want === 'js' || !LITTLE_ENDIAN ? null : createWasmAddKernel(chunkBytes + this.padded * 4);
    if (want === 'wasm' && this.kernel === null) {
      throw new ValidationError(CODE, 'WebAssembly SIMD is not available in this runtime');
    }
    if (this.kernel !== null) {
      // Memory layout: [0, chunkBytes) scratch, then the accumulator.
      const buf = this.kernel.memory.buffer;
      this.scratch = new Uint8Array(buf, 0, chunkBytes);
      this.acc = new Int32Array(buf, chunkBytes, this.padded);
      this.backend = 'wasm';
    } else {
      this.scratch = new Uint8Array(chunkBytes);
      this.acc = new Int32Array(this.padded);
      this.backend = 'js';
    }
    this.scratch32 = new Int32Array(this.scratch.buffer, this.scratch.byteOffset, chunkBytes >> 2);
    this.scratchU32 = new Uint32Array(this.scratch.buffer, this.scratch.byteOffset, chunkBytes >> 2);
  }

  /** Adds (sign 1) or subtracts (sign −1) the mask of `key`. */
  addMask(key: Uint8Array, sign: 1 | -1): void {
    this.addMasks([{ key, sign }]);
  }

  /**
   * Adds or subtracts several masks. Works window by window over the
   * accumulator, expanding every key's next chunk into the window while it
   * is in cache; each key's keystream stays positioned between windows. With
   * `threads` > 1 and enough work, windows are shared with pooled workers.
   */
  addMasks(terms: readonly MaskTerm[]): void {
    this.checkUsable();
    for (const t of terms) { checkKey(t.key); checkSign(t.sign); }
    if (terms.length === 0 || this.padded === 0) return;
    if (this.threads > 1 && this.provider.name === 'native' && terms.length * this.padded >= PARALLEL_MIN_WORDS) {
      const pool = maskPool();
      if (pool !== null && pool.run({
        terms, padded: this.padded, chunkBytes: this.chunkBytes,
        expand: (lo, hi) => this.addMaskRange(terms, lo, lo, hi),
        addWindow: (src, lo, hi) => this.addShared(src, lo, hi),
      }, this.threads) >= 0) return;
    }
    this.addMaskRange(terms, 0, 0, this.padded);
  }

  /**
   * acc[lo, hi) ±= words [first, first + hi − lo) of each term's mask; `first`
   * a multiple of 4, `lo` and `hi` multiples of 16 with hi ≤ the padded length.
   * The building block of addMasks on every thread (the workers call it on a
   * window-sized accumulator with lo = 0). Keys are validated by the caller.
   * @internal
   */
  addMaskRange(terms: readonly MaskTerm[], first: number, lo: number, hi: number): void {
    this.checkWindow(lo, hi);
    if (!Number.isSafeInteger(first) || first < 0 || first % 4 !== 0 || first > 2 ** 28) {
      throw new ValidationError(CODE, `"first" expected a multiple of 4 in [0, 2^28], got ${String(first)}`);
    }
    const iv = counterBlockAt(first);
    const streams = terms.map((t) => this.provider.aes128Ctr(t.key, iv));
    const end = hi * 4;
    for (let off = lo * 4; off < end; off += this.chunkBytes) {
      const n = Math.min(this.chunkBytes, end - off); // a multiple of 64
      const chunk = n === this.chunkBytes ? this.scratch : this.scratch.subarray(0, n);
      for (let i = 0; i < terms.length; i++) {
        // Keystream beyond dim only lands in the padding words, which are never read.
        streams[i]!.fill(chunk);
        this.addScratch(off, n, terms[i]!.sign);
      }
    }
  }

  /** acc[lo, hi) += src[lo, hi) (a worker's window; lo, hi multiples of 16). @internal */
  addShared(src: Int32Array, lo: number, hi: number): void {
    this.checkWindow(lo, hi);
    if (!(src instanceof Int32Array) || src.length < hi) throw new ValidationError(CODE, `"src" expected an Int32Array of length ≥ ${hi}`);
    const words = this.chunkBytes >> 2;
    for (let w = lo; w < hi; w += words) {
      const n = Math.min(words, hi - w);
      this.scratch32.set(src.subarray(w, w + n));
      this.addScratch(w * 4, n * 4, 1);
    }
  }

  /** The accumulator words [0, n) (the workers copy their window out of it). @internal */
  words(n: number): Int32Array {
    this.checkUsable();
    return this.acc.subarray(0, n);
  }

  /**
   * Adds (sign 1) or subtracts (sign −1) a vector of length `dim` (any uint32
   * entries; the sum is reduced at the end).
   */
  addVector(v: Uint32Array, sign: 1 | -1): void {
    this.checkUsable();
    checkRange(v, this.dim, 32, 'vector');
    checkSign(sign);
    const words = this.chunkBytes >> 2;
    const src = new Int32Array(v.buffer, v.byteOffset, v.length);
    for (let w = 0; w < this.dim; w += words) {
      const n = Math.min(words, this.dim - w);
      this.scratch32.set(src.subarray(w, w + n));
      // Round up to 64 bytes: the stale scratch tail only reaches padding words.
      this.addScratch(w * 4, Math.ceil(n / 16) * 64, sign);
    }
  }

  /**
   * Adds (sign 1) or subtracts (sign −1) a bit-packed vector (vector.ts
   * layout) at any byte offset, without unpacking it whole: the exact length
   * and zero padding are checked first, so a malformed vector never touches
   * the accumulator, then each chunk is unpacked straight into the scratch
   * buffer (b = 32: one copy; otherwise one copy into an aligned staging
   * buffer and a word-at-a-time unpack).
   * @throws CodecError `SECAGG_ERR_BAD_VECTOR`
   */
  addPacked(bytes: Uint8Array, b: number, sign: 1 | -1): void {
    this.checkUsable();
    checkSign(sign);
    checkPacked(bytes, this.dim, b);
    const words = this.chunkBytes >> 2; // a multiple of 16, so every chunk starts on a byte boundary
    if (b !== 8 && b !== 32 && this.staging === null) this.staging = new Uint32Array(words);
    const staging = this.staging ?? this.scratchU32;
    for (let w = 0; w < this.dim; w += words) {
      const n = Math.min(words, this.dim - w);
      const start = (w * b) / 8;
      const end = w + n === this.dim ? bytes.length : ((w + n) * b) / 8;
      const k = this.kernel;
      if (b === 20 && sign === 1 && k !== null && n % 8 === 0) {
        // The packed chunk (2.5 bytes a value) goes into the scratch, which holds 4 bytes a value: the
        // kernel's over-read of 6 bytes stays inside it. Unpacked and added in one pass.
        this.scratch.set(bytes.subarray(start, end));
        k.unpack20add(this.chunkBytes + w * 4, 0, n / 8);
        continue;
      }
      unpackInto(bytes.subarray(start, end), b, n, this.scratchU32, staging);
      // Round up to 64 bytes: the stale scratch tail only reaches padding words.
      this.addScratch(w * 4, Math.ceil(n / 16) * 64, sign);
    }
  }

  /** The accumulated sum reduced mod 2^b, as a new array of length `dim`. */
  result(b: number): Uint32Array {
    this.checkUsable();
    const out = new Uint32Array(this.dim);
    out.set(new Uint32Array(this.acc.buffer, this.acc.byteOffset, this.dim));
    return reduce(out, b);
  }

  /**
   * The accumulated sum reduced mod 2^b in place, handed over without a copy:
   * the returned array is the accumulator's own memory (a view of length
   * `dim`), owned by the caller from now on. The accumulator is finished: any
   * later call but {@link clear} throws `SECAGG_ERR_BAD_MASK`.
   */
  takeResult(b: number): Uint32Array {
    this.checkUsable();
    const out = reduce(new Uint32Array(this.acc.buffer, this.acc.byteOffset, this.dim), b);
    this.taken = true;
    return out;
  }

  /**
   * The accumulated sum mod 2^b, bit-packed (vector.ts layout): the pack takes
   * each word mod 2^b itself, so there is no separate reduction pass, no copy
   * of the sum and no range check (every packed entry is < 2^b by construction).
   */
  resultPacked(b: number): Uint8Array {
    this.checkUsable();
    return packReduced(this.acc, this.dim, b);
  }

  /**
   * Zeroes the accumulator, the scratch and the staging buffer (e.g. after a
   * client sent its masked input). After {@link takeResult} the accumulator
   * memory belongs to the caller and only the scratch and staging are wiped.
   */
  clear(): void {
    if (!this.taken) this.acc.fill(0);
    this.scratch.fill(0);
    this.staging?.fill(0);
  }

  /** lo, hi: multiples of 16 with 0 ≤ lo ≤ hi ≤ the padded length (the internal range methods). */
  private checkWindow(lo: number, hi: number): void {
    this.checkUsable();
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || lo < 0 || lo > hi || hi > this.padded || lo % 16 !== 0 || hi % 16 !== 0) {
      throw new ValidationError(CODE, `window [${String(lo)}, ${String(hi)}) expected multiples of 16 within [0, ${this.padded}]`);
    }
  }

  private checkUsable(): void {
    if (this.taken) throw new ValidationError(CODE, 'the accumulator was finished by takeResult(); its memory belongs to the caller');
  }

  /** acc[off/4 …] ±= scratch[0 … n/4); `off` and `n` in bytes, multiples of 64 (n) and 4 (off). */
  private addScratch(off: number, n: number, sign: 1 | -1): void {
    const k = this.kernel;
    if (k !== null) {
      const accAddr = this.chunkBytes + off;
      if (sign === 1) k.add(accAddr, 0, n); else k.sub(accAddr, 0, n);
      return;
    }
    const a = this.acc, s = this.scratch32, base = off >> 2, words = n >> 2;
    // Int32 arithmetic with `| 0` wraps mod 2^32 and keeps V8 on the int32 fast path.
    if (sign === 1) for (let i = 0; i < words; i++) a[base + i] = (a[base + i]! + s[i]!) | 0;
    else for (let i = 0; i < words; i++) a[base + i] = (a[base + i]! - s[i]!) | 0;
  }
}
