/**
 * Shared pieces of the dp-v1 test-vector generator and checker: the file
 * envelope (the same as secagg-v1's), seeds, a word-counting random source,
 * exact JSON encodings of integers, the deterministic JSON layout and the
 * assertion helpers.
 */
import { DeterministicRng } from '../../crypto/rng.js';
import { formatJson as formatJsonWith, VectorMismatch, type VectorFileOf } from '../../vectors/common.js';
import { RandomSource } from '../_random.js';

export { GENERATOR, VectorMismatch, bytes, errorCodeOf, expectEqual, expectError, expectThat, hex, type TestCase } from '../../vectors/common.js';

/** Protocol version written in every dp-v1 vector file. */
export const VERSION = 'dp-v1';
/** Every DeterministicRng seed of the dp-v1 vectors starts with this prefix. */
export const SEED_PREFIX = 'tally/vectors/dp-v1';

/** The envelope of one dp-v1 `<kind>.json` file. */
export type VectorFile = VectorFileOf<typeof VERSION>;

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

/** Reads an array of JSON numbers as a Float64Array. */
export function f64s(v: unknown, field = 'vector'): Float64Array {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) throw new VectorMismatch(`"${field}" expected an array of numbers`);
  return Float64Array.from(v as number[]);
}

/**
 * Deterministic JSON text of the dp-v1 files: like secagg-v1's, but any array
 * of scalars (numbers, decimal strings, null) stays on one line.
 */
export function formatJson(value: unknown): string {
  return formatJsonWith(value, (a) => a.every((x) => x === null || typeof x !== 'object'));
}

/** Draws `count` values in [-1, 1] on the grid 2^-10 (short decimal JSON), as a test input vector. */
export function gridVector(src: RandomSource, count: number, amplitude = 1): Float64Array {
  return Float64Array.from({ length: count }, () => ((src.uniformInt(2049) - 1024) / 1024) * amplitude);
}
