/**
 * Session-level checks shared by clients and server: configuration validity,
 * the paper's threshold conditions, the neighbour graph and input vectors.
 */
import { ValidationError } from '../errors.js';
import type { CryptoProvider } from '../crypto/types.js';
import type { Rng } from '../crypto/rng.js';
import { checkConfigShape, configHash, sessionDegree, type SessionConfig } from './config.js';
import { completeGraph, hararyGraph, type Graph } from './graph.js';
import { validateThreshold } from './params.js';
import { checkRange } from '../crypto/vector.js';

/**
 * Validates a configuration: shape, ranges and the threshold conditions of
 * the threat model (Bonawitz et al. 2017 §6; see params.ts).
 * @throws ValidationError `SECAGG_ERR_BAD_CONFIG` or `SECAGG_ERR_BAD_THRESHOLD`
 */
export function validateSession(c: SessionConfig): void {
  checkConfigShape(c);
  validateThreshold({ n: c.clientIds.length, k: sessionDegree(c), t: c.threshold, threat: c.threat });
}

const graphs = new WeakMap<SessionConfig, Graph>();

/**
 * The session's neighbour graph over the roster. For Harary graphs the
 * permutation seed is the config hash, which every party computes alike
 * (spec §4.3), so the server cannot pick neighbourhoods after seeing keys.
 */
export function sessionGraph(c: SessionConfig, provider: CryptoProvider): Graph {
  let g = graphs.get(c);
  if (g === undefined) {
    g = c.graph.kind === 'harary'
      ? hararyGraph(c.clientIds, c.graph.degree, configHash(provider, c), provider)
      : completeGraph(c.clientIds);
    graphs.set(c, g);
  }
  return g;
}

/**
 * Checks a client input: a Uint32Array of length m with entries < 2^b.
 * @throws ValidationError `SECAGG_ERR_BAD_VECTOR`
 */
export function checkInput(input: Uint32Array, c: SessionConfig): void {
  if (!(input instanceof Uint32Array)) throw new ValidationError('SECAGG_ERR_BAD_VECTOR', `"input" expected Uint32Array, got ${typeof input}`);
  checkRange(input, c.dim, c.bits);
}

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/**
 * `dim` random entries below 2^bits drawn from `rng`: 4 bytes per entry, read
 * little-endian and masked to `bits` (the layout the session vectors record;
 * also the inputs of simulations and benchmarks).
 */
export function randomInput(rng: Rng, dim: number, bits: number): Uint32Array {
  const mask = bits === 32 ? 0xffffffff : 2 ** bits - 1;
  const b = rng.bytes(4 * dim);
  if (LITTLE_ENDIAN) {
    // Read the drawn bytes in place (copied once only if misaligned), so a large m is held once, not twice.
    const v = b.byteOffset % 4 === 0 ? new Uint32Array(b.buffer, b.byteOffset, dim) : new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + 4 * dim));
    if (bits < 32) for (let i = 0; i < dim; i++) v[i]! &= mask;
    return v;
  }
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const v = new Uint32Array(dim);
  for (let i = 0; i < dim; i++) v[i] = dv.getUint32(4 * i, true) & mask;
  return v;
}

/**
 * The plaintext sum mod 2^bits of the inputs at the given 0-based indices (the
 * self-check of every session runner). `inputs` may be a function that makes
 * input i when asked: each is then read once and dropped, so the sum needs
 * O(dim) memory however many inputs it adds.
 */
export function plaintextSum(inputs: readonly Uint32Array[] | ((index: number) => Uint32Array), indices: readonly number[], dim: number, bits: number): Uint32Array {
  const inputOf = typeof inputs === 'function' ? inputs : (i: number) => inputs[i]!;
  const acc = new Uint32Array(dim);
  for (const i of indices) { const x = inputOf(i); for (let j = 0; j < dim; j++) acc[j] = acc[j]! + x[j]!; }
  if (bits < 32) { const m = 2 ** bits - 1; for (let j = 0; j < dim; j++) acc[j] = acc[j]! & m; }
  return acc;
}
