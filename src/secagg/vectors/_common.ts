/**
 * Shared pieces of the secagg-v1 test-vector generator and checker: the file
 * envelope, hex and config (de)serialisation, a recording and a replaying Rng,
 * the deterministic JSON layout and the assertion helper.
 */
import { DeterministicRng, type Rng } from '../../crypto/rng.js';
import { fromHex, toHex } from '../../crypto/_validate.js';
import { TallyError } from '../../errors.js';
import type { SessionConfig } from '../config.js';

/** Protocol version written in every vector file. */
export const VERSION = 'secagg-v1';
/** Generator name written in every vector file. */
export const GENERATOR = 'tally vectors generate';
/** Every DeterministicRng seed of the vectors starts with this prefix (spec §3.10). */
export const SEED_PREFIX = 'tally/vectors/secagg-v1';

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
export function seedOf(kind: string, tcId: number, label: string): string {
  return `${SEED_PREFIX}/${kind}/${tcId}/${label}`;
}

/** A DeterministicRng over {@link seedOf}. */
export function rngOf(kind: string, tcId: number, label: string): DeterministicRng {
  return new DeterministicRng(seedOf(kind, tcId, label));
}

/** Wraps an Rng and keeps every byte it hands out, in order. */
export class RecordingRng implements Rng {
  private readonly parts: Uint8Array[] = [];
  constructor(private readonly inner: Rng) {}
  bytes(n: number): Uint8Array {
    const b = this.inner.bytes(n);
    this.parts.push(b.slice());
    return b;
  }
  /** All bytes drawn so far, concatenated. */
  get recorded(): Uint8Array {
    const out = new Uint8Array(this.parts.reduce((s, p) => s + p.length, 0));
    let off = 0;
    for (const p of this.parts) { out.set(p, off); off += p.length; }
    return out;
  }
}

/** Hands out recorded bytes in order; drawing past the end is a mismatch. */
export class ReplayRng implements Rng {
  private off = 0;
  constructor(private readonly data: Uint8Array) {}
  bytes(n: number): Uint8Array {
    if (this.off + n > this.data.length) throw new VectorMismatch(`recorded randomness exhausted: ${n} bytes asked at offset ${this.off} of ${this.data.length}`);
    const out = this.data.slice(this.off, this.off + n);
    this.off += n;
    return out;
  }
  /** Bytes not drawn yet (a replay must consume exactly what was recorded). */
  get remaining(): number { return this.data.length - this.off; }
}

/** A recomputed value differs from the vector. */
export class VectorMismatch extends Error {}

/** Throws {@link VectorMismatch} unless `ok`. */
export function expectThat(ok: boolean, what: string): void {
  if (!ok) throw new VectorMismatch(what);
}

/** Compares two values as hex / JSON and throws a mismatch naming `field`. */
export function expectEqual(field: string, got: unknown, want: unknown): void {
  const g = got instanceof Uint8Array ? toHex(got) : got instanceof Uint32Array ? Array.from(got) : got;
  const w = want instanceof Uint8Array ? toHex(want) : want instanceof Uint32Array ? Array.from(want) : want;
  const gs = JSON.stringify(g), ws = JSON.stringify(w);
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
export function expectError(code: string, f: () => unknown): void {
  const got = errorCodeOf(f);
  expectThat(got === code, `expected error ${code}, got ${got ?? 'success'}`);
}

export const hex = toHex;
/** Reads a hex field (string) as bytes. */
export function bytes(v: unknown, field = 'hex'): Uint8Array {
  if (typeof v !== 'string') throw new VectorMismatch(`"${field}" expected a hex string`);
  return fromHex(v);
}
/** Reads an array of integers as a Uint32Array. */
export function u32s(v: unknown): Uint32Array {
  return Uint32Array.from(v as number[]);
}

/** The JSON form of a session configuration (byte strings as hex). */
export interface ConfigJson {
  nonce: string;
  clientIds: number[];
  threshold: number;
  bits: number;
  dim: number;
  threat: SessionConfig['threat'];
  graph: { kind: 'complete' } | { kind: 'harary'; degree: number };
  identityKeys?: string[];
}

export function configToJson(c: SessionConfig): ConfigJson {
  return {
    nonce: hex(c.nonce), clientIds: [...c.clientIds], threshold: c.threshold, bits: c.bits, dim: c.dim, threat: c.threat,
    graph: c.graph.kind === 'harary' ? { kind: 'harary', degree: c.graph.degree } : { kind: 'complete' },
    ...(c.identityKeys === undefined ? {} : { identityKeys: c.identityKeys.map(hex) }),
  };
}

export function configFromJson(j: ConfigJson): SessionConfig {
  return {
    nonce: fromHex(j.nonce), clientIds: [...j.clientIds], threshold: j.threshold, bits: j.bits, dim: j.dim, threat: j.threat,
    graph: j.graph.kind === 'harary' ? { kind: 'harary', degree: j.graph.degree } : { kind: 'complete' },
    ...(j.identityKeys === undefined ? {} : { identityKeys: j.identityKeys.map((k) => fromHex(k)) }),
  };
}

/** Random inputs below 2^bits drawn from `rng` (4 bytes per entry, little-endian, masked). */
export function inputsFrom(rng: Rng, count: number, dim: number, bits: number): Uint32Array[] {
  const mask = bits === 32 ? 0xffffffff : 2 ** bits - 1;
  return Array.from({ length: count }, () => {
    const b = rng.bytes(4 * dim);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return Uint32Array.from({ length: dim }, (_, i) => (dv.getUint32(4 * i, true) & mask) >>> 0);
  });
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
 * whose one-line form fits in 100 characters on one line, as is any array of
 * numbers. The generator's output is byte for byte reproducible.
 */
export function formatJson(value: unknown, indent = ''): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const line = inline(value);
  if (line.length <= 100 || (Array.isArray(value) && value.every((x) => typeof x === 'number'))) return line;
  const inner = indent + '  ';
  if (Array.isArray(value)) return `[\n${value.map((x) => inner + formatJson(x, inner)).join(',\n')}\n${indent}]`;
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${formatJson(v, inner)}`).join(',\n')}\n${indent}}`;
}
