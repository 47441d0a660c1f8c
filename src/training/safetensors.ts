/**
 * The safetensors file format (https://github.com/huggingface/safetensors),
 * in which tally's checkpoints and adapters hold their tensors:
 *
 *   u64le N ‖ N bytes of UTF-8 JSON header ‖ data buffer
 *
 * The header maps each tensor name to `{"dtype", "shape", "data_offsets":
 * [begin, end]}`, offsets relative to the start of the data buffer, plus an
 * optional `"__metadata__"` map of string to string. Tensors are row-major
 * and little-endian.
 *
 * The reader is strict, following the format's rules and its reference
 * implementation: the header is at most 100 MB, starts with `{`, is valid
 * UTF-8 and JSON without duplicate keys, and every number in it is a plain
 * non-negative integer; each tensor's byte size is its element count times
 * the dtype's size; sorted by offset, the tensors cover the data buffer
 * exactly (no overlap, no hole, nothing after the last one), so a file has
 * one reading and no hidden bytes. Every refusal is a `ValidationError` with
 * the code `TRAIN_ERR_BAD_SAFETENSORS` and a message naming the tensor or
 * field. The writer emits F32 tensors sorted by name, the header padded with
 * spaces to a multiple of 8 bytes so the data buffer is 8-byte aligned.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { TallyError, ValidationError } from '../errors.js';

/** The dtypes tally reads (the format has more, e.g. U16, F8_E4M3: they are refused). */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** One tensor's header entry; `begin` and `end` are byte offsets into the data buffer (end exclusive). */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

/** A parsed safetensors file. */
export interface SafetensorsFile {
  /** The `__metadata__` map (empty when the file has none). */
  readonly metadata: Readonly<Record<string, string>>;
  /** The tensors in the order of their data offsets. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /**
   * A float tensor (F32, F16, BF16 or F64) as a fresh Float32Array, row-major.
   * F16 and BF16 convert exactly; F64 rounds to the nearest float32.
   * @throws ValidationError `TRAIN_ERR_BAD_SAFETENSORS` for an unknown name or an integer/bool dtype
   */
  float32(name: string): Float32Array;
  /**
   * The raw little-endian bytes of a tensor: a view into the parsed bytes, not a copy.
   * @throws ValidationError `TRAIN_ERR_BAD_SAFETENSORS` for an unknown name
   */
  bytes(name: string): Uint8Array;
}

/** The largest header the format allows (the reference implementation's MAX_HEADER_SIZE). */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I16: 2, I8: 1, U8: 1, BOOL: 1,
};
const FLOAT_DTYPES: ReadonlySet<string> = new Set(['F32', 'F16', 'BF16', 'F64']);
const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;
const METADATA_KEY = '__metadata__';
const TENSOR_FIELDS = ['dtype', 'shape', 'data_offsets'];

/** Whether `dtype` is one that {@link SafetensorsFile.float32} decodes. */
export function isFloatDtype(dtype: string): boolean {
  return FLOAT_DTYPES.has(dtype);
}

const bad = (what: string): ValidationError => new ValidationError('TRAIN_ERR_BAD_SAFETENSORS', `not a valid safetensors file: ${what}`);
const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
};

// ---------------------------------------------------------------------------
// Reading.

/**
 * Checks what JSON.parse cannot see in an already valid JSON text: a key
 * repeated in one object (JSON.parse silently keeps the last) and a number
 * that is not a plain non-negative integer (`1.0`, `1e3`, `-1`: every number
 * in a safetensors header is a size or an offset).
 */
function scanHeader(text: string): void {
  interface Frame { readonly keys: Set<string> | undefined; key: string; expectKey: boolean }
  const stack: Frame[] = [];
  /** The keys leading to the current value (`inner`), or to the current object. */
  const where = (inner: boolean): string => {
    const frames = inner ? stack : stack.slice(0, -1);
    const path = frames.filter((f) => f.keys !== undefined && f.key !== '').map((f) => show(f.key));
    return path.length === 0 ? 'at the top level' : `in ${path.join(' → ')}`;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.keys !== undefined && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) throw bad(`the key ${show(key)} appears twice ${where(false)}`);
        top.keys.add(key);
        top.key = key;
        top.expectKey = false;
      }
      i = j;
    } else if (c === '{') stack.push({ keys: new Set(), key: '', expectKey: true });
    else if (c === '[') stack.push({ keys: undefined, key: '', expectKey: false });
    else if (c === '}' || c === ']') stack.pop();
    else if (c === ',') stack[stack.length - 1]!.expectKey = stack[stack.length - 1]!.keys !== undefined;
    else if (c === '-' || (c >= '0' && c <= '9')) {
      let j = i;
      while (j < text.length && /[-+.eE0-9]/.test(text[j]!)) j++;
      const token = text.slice(i, j);
      if (!/^(0|[1-9][0-9]*)$/.test(token)) throw bad(`the number ${token} ${where(true)} is not a plain non-negative integer`);
      i = j - 1;
    }
  }
}

/** A non-negative safe integer. */
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function parseEntry(name: string, v: unknown): TensorInfo {
  const t = `tensor ${show(name)}`;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${t}: expected an object with dtype, shape and data_offsets, got ${show(v)}`);
  const e = v as Record<string, unknown>;
  for (const k of Object.keys(e)) if (!TENSOR_FIELDS.includes(k)) throw bad(`${t}: unknown field ${show(k)}`);
  for (const k of TENSOR_FIELDS) if (!(k in e)) throw bad(`${t}: missing field "${k}"`);
  const dtype = e.dtype;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) {
    throw bad(`${t}: dtype ${show(dtype)} is not one tally reads (${Object.keys(DTYPE_BYTES).join(', ')})`);
  }
  const shape = e.shape;
  if (!Array.isArray(shape) || !shape.every(isCount)) throw bad(`${t}: shape must be an array of non-negative integers, got ${show(shape)}`);
  const offsets = e.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    throw bad(`${t}: data_offsets must be [begin, end], two non-negative integers, got ${show(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw bad(`${t}: data_offsets [${begin}, ${end}] end before they begin`);
  let size = DTYPE_BYTES[dtype as SafetensorsDtype];
  for (const d of shape as number[]) {
    size *= d;
    if (!Number.isSafeInteger(size)) throw bad(`${t}: shape ${show(shape)} holds more elements than any file`);
  }
  if (end - begin !== size) {
    throw bad(`${t}: ${dtype} of shape [${(shape as number[]).join(', ')}] is ${size} bytes, but data_offsets [${begin}, ${end}] span ${end - begin}`);
  }
  return { name, dtype: dtype as SafetensorsDtype, shape: Object.freeze([...(shape as number[])]), begin, end };
}

/**
 * Parses a safetensors file held in memory. The result's `bytes()` views
 * share memory with `bytes`, which must not change while it is in use.
 * @param bytes the whole file
 * @returns the header's tensors and metadata, with accessors for the data
 * @throws ValidationError `TRAIN_ERR_BAD_SAFETENSORS` when the file breaks any rule of the format
 *   (nothing else escapes for a Uint8Array input)
 */
export function parseSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) throw new ValidationError('TRAIN_ERR_BAD_SAFETENSORS', `a safetensors file must be a Uint8Array, got ${typeof bytes}`);
  if (bytes.length < 8) throw bad(`${bytes.length} bytes, shorter than the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = dv.getUint32(0, true), hi = dv.getUint32(4, true);
  const n = hi * 2 ** 32 + lo; // exact: anything past 2^53 is far beyond the limit anyway
  if (n > MAX_HEADER_BYTES) throw bad(`the header length ${hi === 0 ? n : `${hi}·2^32 + ${lo}`} is over the format's limit of ${MAX_HEADER_BYTES} bytes`);
  if (8 + n > bytes.length) throw bad(`the header length is ${n} bytes, but only ${bytes.length - 8} follow`);
  let text: string;
  try {
    // ignoreBOM: a byte-order mark is kept, so the '{' check refuses it.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    throw bad('the header is not valid UTF-8');
  }
  if (text[0] !== '{') throw bad(`the header must start with '{', got ${show(text.slice(0, 16))}`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw bad(`the header is not valid JSON (${(err as Error).message})`);
  }
  scanHeader(text);

  let metadata: Record<string, string> = {};
  const entries: TensorInfo[] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name !== METADATA_KEY) {
      entries.push(parseEntry(name, v));
      continue;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`"__metadata__" must be an object of strings, got ${show(v)}`);
    for (const [k, s] of Object.entries(v)) if (typeof s !== 'string') throw bad(`"__metadata__" value ${show(k)} must be a string, got ${show(s)}`);
    metadata = v as Record<string, string>;
  }

  // The tensors, in offset order, tile the data buffer exactly.
  const dataStart = 8 + n, dataLength = bytes.length - dataStart;
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const t of entries) {
    if (t.begin < cursor) throw bad(`tensor ${show(t.name)} at [${t.begin}, ${t.end}] overlaps the tensor before it, which ends at ${cursor}`);
    if (t.begin > cursor) throw bad(`the data buffer has a hole of ${t.begin - cursor} bytes at ${cursor}, before tensor ${show(t.name)}`);
    cursor = t.end;
  }
  if (cursor !== dataLength) {
    throw bad(cursor > dataLength
      ? `the tensors need ${cursor} bytes of data, but the file holds ${dataLength}`
      : `${dataLength - cursor} bytes after the last tensor (the tensors cover ${cursor} of the ${dataLength}-byte data buffer)`);
  }
  return new ParsedFile(bytes, dataStart, Object.freeze({ ...metadata }), new Map(entries.map((t) => [t.name, Object.freeze(t)])));
}

class ParsedFile implements SafetensorsFile {
  constructor(
    private readonly file: Uint8Array,
    private readonly dataStart: number,
    readonly metadata: Readonly<Record<string, string>>,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
  ) {}

  private info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (t === undefined) throw new ValidationError('TRAIN_ERR_BAD_SAFETENSORS', `the file has no tensor named ${show(name)}`);
    return t;
  }

  bytes(name: string): Uint8Array {
    const t = this.info(name);
    return this.file.subarray(this.dataStart + t.begin, this.dataStart + t.end);
  }

  float32(name: string): Float32Array {
    const t = this.info(name);
    const raw = this.bytes(name);
    switch (t.dtype) {
      case 'F32': return new Float32Array(aligned(raw, 4).buffer);
      case 'F64': return Float32Array.from(new Float64Array(aligned(raw, 8).buffer));
      case 'F16': {
        const table = f16Table();
        return Float32Array.from(new Uint16Array(aligned(raw, 2).buffer), (h) => table[h]!);
      }
      case 'BF16': {
        // A bfloat16 is the top half of a float32: exact by construction.
        const h = new Uint16Array(aligned(raw, 2).buffer);
        const bits = new Uint32Array(h.length);
        for (let i = 0; i < h.length; i++) bits[i] = h[i]! << 16;
        return new Float32Array(bits.buffer);
      }
      default: throw new ValidationError('TRAIN_ERR_BAD_SAFETENSORS', `tensor ${show(name)} is ${t.dtype}, not a float tensor (F32, F16, BF16, F64)`);
    }
  }
}

/** A fresh, aligned copy of little-endian words in host order. */
function aligned(raw: Uint8Array, width: number): Uint8Array {
  const out = new Uint8Array(raw.length);
  out.set(raw);
  if (!LITTLE_ENDIAN) for (let i = 0; i < out.length; i += width) out.subarray(i, i + width).reverse();
  return out;
}

let F16: Float32Array | undefined;
/** The float32 value of every IEEE 754 binary16 bit pattern (exact: binary32 holds them all). */
function f16Table(): Float32Array {
  if (F16 !== undefined) return F16;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24; // zero and subnormals
    else if (exp === 31) t[h] = mant === 0 ? sign * Infinity : NaN;
    else t[h] = sign * (1024 + mant) * 2 ** (exp - 25);
  }
  return (F16 = t);
}

/**
 * Reads and parses a safetensors file (the whole file is read into memory).
 * @throws ValidationError `TRAIN_ERR_BAD_SAFETENSORS` when the file cannot be read or is malformed (the message names the path)
 */
export function readSafetensors(path: string): SafetensorsFile {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw new ValidationError('TRAIN_ERR_BAD_SAFETENSORS', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return parseSafetensors(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
  } catch (err) {
    if (err instanceof TallyError) throw new ValidationError(err.code, `${path}: ${err.message}`, { cause: err });
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Writing.

/** One tensor to write: row-major float32 values of the given shape. */
export interface TensorToWrite {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** Orders strings by their UTF-8 bytes, as the reference implementation orders names. */
function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Encodes F32 tensors as a safetensors file. The output is deterministic:
 * tensors in the UTF-8 byte order of their names (data in the same order),
 * header fields in the order dtype, shape, data_offsets, metadata keys sorted
 * and first (omitted when empty), the header padded with spaces to a
 * multiple of 8 bytes, floats little-endian on any host.
 * @param tensors the tensors; names unique, not `__metadata__`
 * @param metadata string values only
 * @throws ValidationError `TRAIN_ERR_BAD_SAFETENSORS` for a duplicate or reserved name, a shape that is not
 *   non-negative integers, data that is not a Float32Array of the shape's size, or a non-string metadata value
 */
export function encodeSafetensors(tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const refuse = (what: string) => new ValidationError('TRAIN_ERR_BAD_SAFETENSORS', `cannot encode safetensors: ${what}`);
  if (!Array.isArray(tensors)) throw refuse('tensors must be an array');
  const seen = new Set<string>();
  for (const t of tensors) {
    if (typeof t?.name !== 'string' || t.name === METADATA_KEY) throw refuse(`a tensor name must be a string other than "__metadata__", got ${show(t?.name)}`);
    if (seen.has(t.name)) throw refuse(`the tensor name ${show(t.name)} appears twice`);
    seen.add(t.name);
    if (!Array.isArray(t.shape) || !t.shape.every(isCount)) throw refuse(`tensor ${show(t.name)}: shape must be an array of non-negative integers, got ${show(t.shape)}`);
    if (!(t.data instanceof Float32Array)) throw refuse(`tensor ${show(t.name)}: data must be a Float32Array`);
    const count = (t.shape as readonly number[]).reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw refuse(`tensor ${show(t.name)}: shape [${t.shape.join(', ')}] holds ${count} values, data has ${t.data.length}`);
  }
  const meta = metadata ?? {};
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw refuse('metadata must be an object of strings');
  for (const [k, v] of Object.entries(meta)) if (typeof v !== 'string') throw refuse(`metadata value ${show(k)} must be a string, got ${show(v)}`);

  const sorted = [...tensors].sort((a, b) => byUtf8(a.name, b.name));
  const fields: string[] = [];
  const metaKeys = Object.keys(meta).sort(byUtf8);
  if (metaKeys.length > 0) fields.push(`"__metadata__":{${metaKeys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(meta[k])}`).join(',')}}`);
  let offset = 0;
  for (const t of sorted) {
    const end = offset + 4 * t.data.length;
    fields.push(`${JSON.stringify(t.name)}:{"dtype":"F32","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = Buffer.from(`{${fields.join(',')}}`, 'utf8');
  const n = json.length + ((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + n + offset);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, n % 2 ** 32, true);
  dv.setUint32(4, Math.floor(n / 2 ** 32), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + n);
  let at = 8 + n;
  for (const t of sorted) {
    const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    out.set(raw, at);
    if (!LITTLE_ENDIAN) for (let i = at; i < at + raw.length; i += 4) out.subarray(i, i + 4).reverse();
    at += raw.length;
  }
  return out;
}

/**
 * Writes {@link encodeSafetensors}' output to `path` atomically.
 * @throws ValidationError as {@link encodeSafetensors}; the file system's error when the write fails
 */
export function writeSafetensors(path: string, tensors: readonly TensorToWrite[], metadata?: Record<string, string>): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/**
 * Writes `data` to `path` atomically and durably: a temporary file in the same
 * folder, fsync, then rename over `path`, so a reader sees the old file or the
 * new one, never part of one. Used for every file of a checkpoint or adapter.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o644);
  try {
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
