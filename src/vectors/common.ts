/**
 * Shared machinery of tally's JSON test-vector suites (protocols/secagg-v1,
 * protocols/dp-v1): the file envelope, mismatch reporting, exact comparisons,
 * the deterministic JSON layout and the package paths. Each suite adds its own
 * kinds, seeds and encodings on top.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromHex, toHex } from '../crypto/_validate.js';
import { TallyError } from '../errors.js';

/** Generator name written in every vector file. */
export const GENERATOR = 'tally vectors generate';

/** One test case: the common fields plus kind-specific inputs and outputs. */
export interface TestCase {
  readonly tcId: number;
  readonly comment: string;
  readonly result: 'valid' | 'invalid';
  readonly error?: string;
  readonly [field: string]: unknown;
}

/** The envelope of one `<kind>.json` file of suite `V`. */
export interface VectorFileOf<V extends string> {
  readonly kind: string;
  readonly version: V;
  readonly generator: typeof GENERATOR;
  readonly description: string;
  readonly tests: TestCase[];
}

/** A recomputed value differs from the vector. */
export class VectorMismatch extends Error {}

/** Throws {@link VectorMismatch} unless `ok`. */
export function expectThat(ok: boolean, what: string): void {
  if (!ok) throw new VectorMismatch(what);
}

const clip = (s: string): string => (s.length > 80 ? `${s.slice(0, 77)}...` : s);

/** Compares two values by their JSON text (bytes as hex, other typed arrays as arrays); throws a mismatch naming `field`. */
export function expectEqual(field: string, got: unknown, want: unknown): void {
  const norm = (v: unknown): unknown => (v instanceof Uint8Array ? toHex(v) : ArrayBuffer.isView(v) ? Array.from(v as Float64Array) : v);
  const gs = JSON.stringify(norm(got));
  const ws = JSON.stringify(norm(want));
  if (gs !== ws) throw new VectorMismatch(`${field}: expected ${clip(ws)}, got ${clip(gs)}`);
}

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

/** One-line JSON with ", " and ": " separators. */
function inline(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(inline).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => `${JSON.stringify(k)}: ${inline(v)}`).join(', ')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Deterministic JSON text: two-space indentation, but any array or object
 * whose one-line form fits in 100 characters stays on one line, as does any
 * array for which `oneLine` holds (by default: arrays of numbers). Doubles are
 * written by JSON.stringify, the shortest text that reads back as the same
 * double, so the output is byte for byte reproducible.
 */
export function formatJson(value: unknown, oneLine: (a: unknown[]) => boolean = (a) => a.every((x) => typeof x === 'number'), indent = ''): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const line = inline(value);
  if (line.length <= 100 || (Array.isArray(value) && oneLine(value))) return line;
  const inner = indent + '  ';
  if (Array.isArray(value)) return `[\n${value.map((x) => inner + formatJson(x, oneLine, inner)).join(',\n')}\n${indent}]`;
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${formatJson(v, oneLine, inner)}`).join(',\n')}\n${indent}}`;
}

/** The directory holding tally's package.json, found upwards from this module (never the cwd). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tally') return dir;
    const up = resolve(dir, '..');
    if (up === dir) throw new Error(`cannot find the tally package root above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** protocols/<suite>/<sub> under the package root. */
export function protocolDir(suite: string, sub: 'vectors' | 'schemas'): string {
  return join(packageRoot(), 'protocols', suite, sub);
}
