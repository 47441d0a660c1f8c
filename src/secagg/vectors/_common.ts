/**
 * Shared pieces of the secagg-v1 test-vector generator and checker: the file
 * envelope, hex and config (de)serialisation, a recording and a replaying Rng,
 * the deterministic JSON layout and the assertion helper.
 */
import { DeterministicRng, type Rng } from '../../crypto/rng.js';
import { fromHex } from '../../crypto/_validate.js';
import { formatJson as formatJsonWith, hex, VectorMismatch, type VectorFileOf } from '../../vectors/common.js';
import type { SessionConfig } from '../config.js';
import { randomInput } from '../session.js';

export { GENERATOR, VectorMismatch, bytes, errorCodeOf, expectEqual, expectError, expectThat, hex, type TestCase } from '../../vectors/common.js';

/** Protocol version written in every vector file. */
export const VERSION = 'secagg-v1';
/** Every DeterministicRng seed of the vectors starts with this prefix (spec §3.10). */
export const SEED_PREFIX = 'tally/vectors/secagg-v1';

/** The envelope of one secagg-v1 `<kind>.json` file. */
export type VectorFile = VectorFileOf<typeof VERSION>;

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
/** `n` inputs drawn one after another from one stream (see `randomInput`). */
export function inputsFrom(rng: Rng, n: number, dim: number, bits: number): Uint32Array[] {
  return Array.from({ length: n }, () => randomInput(rng, dim, bits));
}

/** Deterministic JSON text of the secagg-v1 files (arrays of numbers on one line). */
export function formatJson(value: unknown): string {
  return formatJsonWith(value);
}
