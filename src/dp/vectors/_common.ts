/**
 * Shared pieces of the dp-v1 test-vector generator and checker: the file
 * envelope (the same as secagg-v1's), seeds, a word-counting random source,
 * exact JSON encodings of integers, the deterministic JSON layout and the
 * assertion helpers.
 */
import { DeterministicRng } from '../../crypto/rng.js';
import { fromHex, toHex } from '../../crypto/_validate.js';
import { TallyError } from '../../errors.js';
import { RandomSource } from '../_random.js';

/** Protocol version written in every dp-v1 vector file. */
export const VERSION = 'dp-v1';
/** Generator name written in every vector file (shared with secagg-v1). */
export const GENERATOR = 'tally vectors generate';
/** Every DeterministicRng seed of the dp-v1 vectors starts with this prefix. */
export const SEED_PREFIX = 'tally/vectors/dp-v1';

/** One test case: the common fields plus kind-specific inputs and outputs. */
export interface TestCase {
  readonly tcId: number;
  readonly comment: string;
  readonly result: 'valid' | 'invalid';
  readonly error?: string;
  readonly [field: string]: unknown;
}

/** The envelope of one `<kind>.json` file. */
export interface VectorFile {
  readonly kind: string;
  readonly version: typeof VERSION;
  readonly generator: typeof GENERATOR;
  readonly description: string;
  readonly tests: TestCase[];
}

/** The seed string of one named random source of one test case. */
export function seedOf(kind: string, tcId: number, label = 'rng'): string {
  return `${SEED_PREFIX}/${kind}/${tcId}/${label}`;
}

/**
 * A {@link RandomSource} over DeterministicRng(seed) that counts the uint32
 * words it hands out. Every draw of the samplers goes through `u32()` (u53,
 * uniformInt, uniformBigInt and the Bernoulli trials call it), so `consumed` is
 * exactly how much of the keystream a computation consumed, whatever the
 * source's internal 64 KiB buffering.
 */
export class CountingSource extends RandomSource {
  /** uint32 words consumed so far. */
  consumed = 0;
  constructor(seed: string) {
    super(new DeterministicRng(seed));
  }
  override u32(): number {
    this.consumed++;
    return super.u32();
  }
}

/** An integer in JSON: a number when it is a safe integer, else its decimal string. */
export type IntJson = number | string;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Encodes an integer for JSON (see {@link IntJson}). */
export function intJson(v: number | bigint): IntJson {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new VectorMismatch(`${v} is not a safe integer`);
    return v;
  }
  return v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v.toString();
}

/** Reads an {@link IntJson} as a bigint. */
export function bigOf(v: unknown, field = 'integer'): bigint {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?[0-9]+$/.test(v)) return BigInt(v);
  throw new VectorMismatch(`"${field}" expected an integer or a decimal string, got ${String(v)}`);
}

/** Reads an {@link IntJson} of magnitude ≤ 2^53 (exact as a double) as a number. */
export function numOf(v: unknown, field = 'integer'): number {
  const b = bigOf(v, field);
  if (b < -(MAX_SAFE + 1n) || b > MAX_SAFE + 1n) throw new VectorMismatch(`"${field}" expected an integer of magnitude ≤ 2^53, got ${String(v)}`);
  return Number(b);
}

/** A recomputed value differs from the vector. */
export class VectorMismatch extends Error {}

/** Throws {@link VectorMismatch} unless `ok`. */
export function expectThat(ok: boolean, what: string): void {
  if (!ok) throw new VectorMismatch(what);
}

/** Compares two values by their JSON text (bytes as hex, typed arrays as arrays). */
export function expectEqual(field: string, got: unknown, want: unknown): void {
  const norm = (v: unknown): unknown => (v instanceof Uint8Array ? toHex(v) : ArrayBuffer.isView(v) ? Array.from(v as Float64Array) : v);
  const gs = JSON.stringify(norm(got));
  const ws = JSON.stringify(norm(want));
  if (gs !== ws) throw new VectorMismatch(`${field}: expected ${clip(ws)}, got ${clip(gs)}`);
}

const clip = (s: string): string => (s.length > 80 ? `${s.slice(0, 77)}...` : s);

/** Runs `f` and returns the stable code of the TallyError it throws, or undefined if it returns. */
export function errorCodeOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (err) {
    if (err instanceof TallyError) return err.code;
    throw err;
  }
}

/** Asserts that `f` fails with exactly `code`. */
export function expectError(code: unknown, f: () => unknown): void {
  const got = errorCodeOf(f);
  expectThat(got === code, `expected error ${String(code)}, got ${got ?? 'success'}`);
}

/** Bytes as lowercase hex. */
export const hex = toHex;
/** Reads a hex field (string) as bytes. */
export function bytes(v: unknown, field = 'hex'): Uint8Array {
  if (typeof v !== 'string') throw new VectorMismatch(`"${field}" expected a hex string`);
  return fromHex(v);
}

/** Reads an array of JSON numbers as a Float64Array. */
export function f64s(v: unknown, field = 'vector'): Float64Array {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) throw new VectorMismatch(`"${field}" expected an array of numbers`);
  return Float64Array.from(v as number[]);
}

/** One-line JSON with ", " and ": " separators. */
function inline(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(inline).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => `${JSON.stringify(k)}: ${inline(v)}`).join(', ')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Deterministic JSON text, the layout of the secagg-v1 files: two-space
 * indentation, but any array or object whose one-line form fits in 100
 * characters on one line, as is any array of scalars. Doubles are written by
 * JSON.stringify (the shortest text that reads back as the same double).
 */
export function formatJson(value: unknown, indent = ''): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const line = inline(value);
  if (line.length <= 100 || (Array.isArray(value) && value.every((x) => x === null || typeof x !== 'object'))) return line;
  const inner = indent + '  ';
  if (Array.isArray(value)) return `[\n${value.map((x) => inner + formatJson(x, inner)).join(',\n')}\n${indent}]`;
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${formatJson(v, inner)}`).join(',\n')}\n${indent}}`;
}

/** Draws `count` values in [-1, 1] on the grid 2^-10 (short decimal JSON), as a test input vector. */
export function gridVector(src: RandomSource, count: number, amplitude = 1): Float64Array {
  return Float64Array.from({ length: count }, () => ((src.uniformInt(2049) - 1024) / 1024) * amplitude);
}
