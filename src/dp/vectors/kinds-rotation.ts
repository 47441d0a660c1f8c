/**
 * The `rotation` kind (randomised Hadamard rotation, src/dp/hadamard.ts) and
 * the `rounding` kind (conditional randomised rounding of KLS21, run through
 * encodeUpdate with no noise and b = 32 so the rounded integers are visible).
 */
import { DeterministicRng } from '../../crypto/rng.js';
import { centredLift, encodeUpdate, roundingNormBound } from '../encode.js';
import { paddedLength, rotate, rotationSigns, unrotate } from '../hadamard.js';
import {
  bytes, CountingSource, expectEqual, expectError, expectThat, f64s, gridVector, hex, seedOf, VectorMismatch, type TestCase,
} from './_common.js';
import type { DpVectorKind } from './kind.js';
import { paramsFromJson, paramsToJson, type ParamsJson } from './params-json.js';

const TWO32 = 4294967296;
const arr = (x: Float64Array): number[] => Array.from(x);

/** A case's input vector and rotation seed, drawn from labelled seeds. */
export function inputsOf(kind: string, tcId: number, dim: number, seedBytes: number, amplitude = 1): { x: Float64Array; rotationSeed: Uint8Array } {
  const x = gridVector(new CountingSource(seedOf(kind, tcId, 'input')), dim, amplitude);
  return { x, rotationSeed: new DeterministicRng(seedOf(kind, tcId, 'rotation-seed')).bytes(seedBytes) };
}

export const rotationKind: DpVectorKind = {
  kind: 'rotation',
  description: 'Randomised Hadamard rotation (KLS21 "flattening"; README §6): `signs` = the first ⌈d/8⌉ bytes of AES-256-CTR under SHA-256("tally/dp/rotation/v1" ‖ rotationSeed), zero counter block (bit i mod 8 of byte ⌊i/8⌋ set: coordinate i is negated); `rotated` = H·D·x with x zero-padded to d = the next power of two and H the normalised Walsh–Hadamard transform (butterflies, then × 1/√d); `unrotated` = the first `x.length` entries of D·H·rotated. Doubles compared exactly. Invalid cases must be refused.',
  generate() {
    const specs: [string, number, number][] = [
      ['dim 1 (d = 1: H is the identity)', 1, 16], ['dim 5 (padded to 8), 16-byte seed', 5, 16], ['dim 16, 32-byte seed', 16, 32],
      ['dim 33 (padded to 64), 24-byte seed', 33, 24], ['dim 64', 64, 32],
    ];
    const tests: TestCase[] = specs.map(([comment, dim, seedBytes], i) => {
      const { x, rotationSeed } = inputsOf('rotation', i + 1, dim, seedBytes);
      const rotated = rotate(x, rotationSeed);
      return {
        tcId: i + 1, comment, result: 'valid', rotationSeed: hex(rotationSeed), x: arr(x), signs: hex(rotationSigns(rotationSeed, paddedLength(dim))),
        rotated: arr(rotated), unrotated: arr(unrotate(rotated, dim, rotationSeed)),
      };
    });
    const seed16 = hex(new DeterministicRng(seedOf('rotation', 0, 'rotation-seed')).bytes(16));
    const bad: [string, Record<string, unknown>][] = [
      ['rotate with a 15-byte seed', { op: 'rotate', rotationSeed: seed16.slice(2), x: [1, 2, 3] }],
      ['unrotate to dim 0', { op: 'unrotate', rotationSeed: seed16, y: [1, 2, 3, 4], dim: 0 }],
      ['unrotate to a dim above the rotated length', { op: 'unrotate', rotationSeed: seed16, y: [1, 2, 3, 4], dim: 5 }],
      ['unrotate a vector whose length is not a power of two', { op: 'unrotate', rotationSeed: seed16, y: [1, 2, 3], dim: 3 }],
    ];
    for (const [comment, fields] of bad) {
      const tc = { tcId: tests.length + 1, comment, result: 'invalid' as const, ...fields, error: 'DP_ERR_BAD_PARAM' };
      rotationKind.check(tc);
      tests.push(tc);
    }
    return tests;
  },
  check(tc) {
    const seed = bytes(tc.rotationSeed, 'rotationSeed');
    if (tc.result === 'invalid') {
      if (tc.op === 'rotate') return expectError(tc.error, () => rotate(f64s(tc.x, 'x'), seed));
      if (tc.op === 'unrotate') return expectError(tc.error, () => unrotate(f64s(tc.y, 'y'), tc.dim as number, seed));
      throw new VectorMismatch(`unknown op ${String(tc.op)}`);
    }
    const x = f64s(tc.x, 'x');
    const d = paddedLength(x.length);
    expectEqual('signs', rotationSigns(seed, d), tc.signs);
    const rotated = rotate(x, seed);
    expectEqual('rotated', rotated, tc.rotated);
    expectEqual('unrotated', unrotate(f64s(tc.rotated, 'rotated'), x.length, seed), tc.unrotated);
  },
};

/**
 * Reference for README §7: the scaled vector before rounding, and the
 * rounding loop read straight from the DRBG words (independent of encode.ts).
 */
export function referenceRounding(tc: TestCase): { scaled: number[]; rounded: number[]; tries: number; words: number; rsq: number } {
  const p = paramsFromJson(tc.params as ParamsJson);
  const update = f64s(tc.update, 'update');
  let sq = 0;
  for (const v of update) sq += v * v;
  const norm = Math.sqrt(sq);
  const x = rotate(update, p.rotationSeed);
  const factor = (norm > p.clip ? p.clip / norm : 1) * p.scale;
  for (let i = 0; i < x.length; i++) x[i]! *= factor;
  const d = x.length;
  const bound = roundingNormBound(p.clip * p.scale, d, p.beta);
  const limit = bound * bound * (1 - d * 2 ** -52);
  const drbg = new DeterministicRng(tc.seed as string);
  let words = 0;
  const word = (): number => { words++; const b = drbg.bytes(4); return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0; };
  const r = new Array<number>(d).fill(0);
  let tries = 0;
  let rsq = Infinity;
  while (rsq > limit && tries < (p.maxRoundingTries ?? 100)) {
    tries++;
    rsq = 0;
    for (let i = 0; i < d; i++) {
      const fl = Math.floor(x[i]!);
      r[i] = fl + (word() < (x[i]! - fl) * TWO32 ? 1 : 0);
      rsq += r[i]! * r[i]!;
    }
  }
  return { scaled: arr(x), rounded: r, tries, words, rsq };
}

/** Finds the first seed `rng`, `rng/1`, `rng/2`, … whose rounding needs `tries` attempts (deterministic). */
function seedNeeding(tcId: number, base: Omit<TestCase, 'seed'>, want: (tries: number) => boolean): string {
  for (let j = 0; j < 1000; j++) {
    const seed = seedOf('rounding', tcId, j === 0 ? 'rng' : `rng/${j}`);
    if (want(referenceRounding({ ...base, seed } as unknown as TestCase).tries)) return seed;
  }
  throw new VectorMismatch('no seed found');
}

function roundingCase(tcId: number, comment: string, dim: number, amplitude: number, clip: number, scale: number, beta: number, wantTries?: (t: number) => boolean): TestCase {
  const { x, rotationSeed } = inputsOf('rounding', tcId, dim, 16, amplitude);
  const params = paramsToJson({ clip, scale, bits: 32, beta, noise: { kind: 'none' }, rotationSeed });
  const base = { tcId, comment, result: 'valid' as const, update: arr(x), params };
  const seed = wantTries === undefined ? seedOf('rounding', tcId) : seedNeeding(tcId, base, wantTries);
  const src = new CountingSource(seed);
  const r = encodeUpdate(x, paramsFromJson(params), src);
  const ref = referenceRounding({ ...base, seed } as unknown as TestCase);
  return {
    ...base, seed, scaled: ref.scaled, rounded: arr(centredLift(r.encoded, 32)), norm: r.norm, clipped: r.clipped,
    normBound: r.normBound, roundingTries: r.roundingTries, roundedNorm: r.roundedNorm, wordsUsed: src.consumed,
  };
}

export const roundingKind: DpVectorKind = {
  kind: 'rounding',
  description: 'Conditional randomised rounding (KLS21 Algorithm 1 with Theorem 1 / Proposition 22; README §7), through encodeUpdate with noise "none" and bits 32: `scaled` is the clipped, rotated, scaled vector; each attempt reads one uint32 word w_i per coordinate and rounds up iff w_i < frac(scaled_i)·2^32; attempts repeat until Σ rounded_i² ≤ normBound²·(1 − d·2^−52). `rounded` are the integers (centred lift of the output), `roundingTries` the attempts, `wordsUsed` = roundingTries·d.',
  generate() {
    const e05 = Math.exp(-0.5);
    return [
      roundingCase(1, 'dim 8, norm below the clip, β = exp(−0.5)', 8, 0.25, 1, 16, e05),
      roundingCase(2, 'dim 5 (padded to 8), clipped to C = 1, scale 100', 5, 1, 1, 100, e05),
      roundingCase(3, 'β = 0: the worst-case bound (c + √d)², one attempt', 16, 1, 2, 8, 0),
      roundingCase(4, 'dim 64, β = 0.99: the first attempt exceeds the bound, the second meets it', 64, 1, 1, 20, 0.99, (t) => t === 2),
      roundingCase(5, 'dim 64, β = 0.99: three or more attempts', 64, 1, 1, 20, 0.99, (t) => t >= 3),
    ];
  },
  check(tc) {
    const src = new CountingSource(tc.seed as string);
    const r = encodeUpdate(f64s(tc.update, 'update'), paramsFromJson(tc.params as ParamsJson), src);
    expectEqual('rounded', centredLift(r.encoded, 32), tc.rounded);
    for (const f of ['norm', 'clipped', 'normBound', 'roundingTries', 'roundedNorm'] as const) expectEqual(f, r[f], tc[f]);
    expectEqual('wordsUsed', src.consumed, tc.wordsUsed);
    const ref = referenceRounding(tc);
    expectEqual('scaled (reference)', ref.scaled, tc.scaled);
    expectEqual('rounded (reference)', ref.rounded, tc.rounded);
    expectThat(ref.tries === r.roundingTries && ref.words === src.consumed, `reference: ${ref.tries} tries, ${ref.words} words`);
  },
};
