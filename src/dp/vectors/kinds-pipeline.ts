/**
 * The whole client and server pipeline: `encode` (encodeUpdate, KLS21
 * Algorithm 1, with ddg / skellam / no noise) and `decode-sum` (decodeSum of
 * the modular sum of a few encoded updates, KLS21 Algorithm 2).
 */
import { DeterministicRng } from '../../crypto/rng.js';
import { DiscreteGaussianSampler } from '../discrete-gaussian.js';
import { centredLift, decodeSum, encodeUpdate, wrapMod, type EncodeParams } from '../encode.js';
import { planRound } from '../plan.js';
import { SkellamSampler } from '../skellam.js';
import {
  CountingSource, errorCodeOf, expectEqual, expectError, f64s, gridVector, hex, seedOf, VectorMismatch, type TestCase,
} from './_common.js';
import type { DpVectorKind } from './kind.js';
import { paramsFromJson, paramsToJson, type ParamsJson } from './params-json.js';
import { inputsOf } from './kinds-rotation.js';

const arr = (x: ArrayLike<number>): number[] => Array.from(x);
const E05 = Math.exp(-0.5);

/** encodeUpdate on a counting source, with the rounded vector and the noise split out (README §8). */
function encodeTraced(update: Float64Array, p: EncodeParams, seed: string) {
  const src = new CountingSource(seed);
  const r = encodeUpdate(update, p, src);
  // The same computation in two steps: rounding alone (no noise, b = 32), then the
  // noise samples continue the same word stream, one per padded coordinate in order.
  const split = new CountingSource(seed);
  const rounded = centredLift(encodeUpdate(update, { ...p, bits: 32, noise: { kind: 'none' } }, split).encoded, 32);
  const sampler = p.noise.kind === 'none' ? undefined : p.noise.kind === 'ddg' ? new DiscreteGaussianSampler(p.noise.sigma!) : new SkellamSampler(p.noise.sigma!);
  const noise = Array.from(rounded, () => (sampler === undefined ? 0 : sampler.sample(split)));
  if (split.consumed !== src.consumed || JSON.stringify(arr(wrapMod(rounded.map((v, i) => v + noise[i]!), p.bits))) !== JSON.stringify(arr(r.encoded))) {
    throw new VectorMismatch('encoded ≠ wrap(rounded + noise) or the word counts differ');
  }
  return {
    encoded: arr(r.encoded), rounded: arr(rounded), noise, paddedDim: r.paddedDim, norm: r.norm, clippedNorm: r.clippedNorm, clipped: r.clipped,
    roundedNorm: r.roundedNorm, normBound: r.normBound, roundingTries: r.roundingTries, noiseSigma2: r.noiseSigma2, wordsUsed: src.consumed,
  };
}

type Spec = [comment: string, dim: number, amplitude: number, params: Omit<EncodeParams, 'rotationSeed'>];

function specs(): Spec[] {
  const plan = planRound({ kind: 'ddg', clip: 1, dim: 64, threshold: 3, clients: 4, bits: 16, noiseMultiplier: 1 });
  return [
  ['ddg σ = 3.5, dim 8, norm below the clip', 8, 0.2, { clip: 1, scale: 64, bits: 16, beta: E05, noise: { kind: 'ddg', sigma: 3.5 } }],
  ['ddg exact σ² = 1000003/1000, dim 37 (padded to 64), clipped', 37, 1, { clip: 2, scale: 40, bits: 20, beta: E05, noise: { kind: 'ddg', sigma: { num: 1000003, den: 1000 } } }],
  ['ddg σ = 2.25, b = 8: negative and large values wrap mod 2^8', 16, 1, { clip: 1, scale: 20, bits: 8, beta: E05, noise: { kind: 'ddg', sigma: 2.25 } }],
  ['ddg σ = 1000, b = 32', 32, 1, { clip: 1, scale: 1000, bits: 32, beta: 0, noise: { kind: 'ddg', sigma: 1000 } }],
  ['scale and σ² from planRound({ kind: "ddg", clip: 1, dim: 64, threshold: 3, clients: 4, bits: 16, noiseMultiplier: 1 }).encode', 64, 0.5, plan.encode],
  ['skellam σ = 3 (μ = 4.5, exact Poisson), dim 16, b = 12', 16, 1, { clip: 1, scale: 30, bits: 12, beta: E05, noise: { kind: 'skellam', sigma: 3 } }],
  ['skellam exact σ² = 7/3 (μ = 7/6), dim 3 (padded to 4)', 3, 1, { clip: 0.5, scale: 16, bits: 10, beta: E05, noise: { kind: 'skellam', sigma: { num: 7, den: 3 } } }],
  ['skellam σ = 50 (μ = 1250), exact', 16, 1, { clip: 1, scale: 100, bits: 16, beta: E05, noise: { kind: 'skellam', sigma: 50 } }],
  ['no noise, dim 5 (padded to 8), b = 8', 5, 1, { clip: 1, scale: 50, bits: 8, beta: E05, noise: { kind: 'none' } }],
  ['no noise, dim 64, b = 32, β = 0', 64, 1, { clip: 3, scale: 256, bits: 32, beta: 0, noise: { kind: 'none' } }],
  ];
}

/** Parameter edits the encoder must refuse (applied to a valid ddg base). */
const BAD: [string, (p: ParamsJson) => ParamsJson, string, number?][] = [
  ['bits 0', (p) => ({ ...p, bits: 0 }), 'DP_ERR_BAD_PARAM'],
  ['bits 33', (p) => ({ ...p, bits: 33 }), 'DP_ERR_BAD_PARAM'],
  ['bits 2.5', (p) => ({ ...p, bits: 2.5 }), 'DP_ERR_BAD_PARAM'],
  ['scale 0', (p) => ({ ...p, scale: 0 }), 'DP_ERR_BAD_PARAM'],
  ['negative scale', (p) => ({ ...p, scale: -16 }), 'DP_ERR_BAD_PARAM'],
  ['clip 0', (p) => ({ ...p, clip: 0 }), 'DP_ERR_BAD_PARAM'],
  ['β = 1', (p) => ({ ...p, beta: 1 }), 'DP_ERR_BAD_PARAM'],
  ['β < 0', (p) => ({ ...p, beta: -0.1 }), 'DP_ERR_BAD_PARAM'],
  ['unknown noise kind', (p) => ({ ...p, noise: { kind: 'gaussian', sigma: 2 } }), 'DP_ERR_BAD_PARAM'],
  ['ddg without sigma', (p) => ({ ...p, noise: { kind: 'ddg' } }), 'DP_ERR_BAD_PARAM'],
  ['skellam with σ = 0', (p) => ({ ...p, noise: { kind: 'skellam', sigma: 0 } }), 'DP_ERR_BAD_PARAM'],
  ['ddg with σ² denominator > 2^20', (p) => ({ ...p, noise: { kind: 'ddg', sigma: { num: 3, den: 2 ** 20 + 1 } } }), 'DP_ERR_BAD_PARAM'],
  ['8-byte rotation seed', (p) => ({ ...p, rotationSeed: p.rotationSeed.slice(0, 16) }), 'DP_ERR_BAD_PARAM'],
  ['maxRoundingTries 0', (p) => ({ ...p, maxRoundingTries: 0 }), 'DP_ERR_BAD_PARAM'],
  ['empty update', (p) => p, 'DP_ERR_BAD_PARAM', 0],
];

function encodeCheck(tc: TestCase): void {
  const update = f64s(tc.update, 'update');
  const p = paramsFromJson(tc.params as ParamsJson);
  const seed = typeof tc.seed === 'string' ? tc.seed : seedOf('encode', tc.tcId);
  if (tc.result === 'invalid') return expectError(tc.error, () => encodeUpdate(update, p, new CountingSource(seed)));
  const r = encodeTraced(update, p, seed) as Record<string, unknown>;
  for (const f of Object.keys(r)) expectEqual(f, r[f], tc[f]);
}

export const encodeKind: DpVectorKind = {
  kind: 'encode',
  description: 'The client pipeline encodeUpdate (KLS21 Algorithm 1; README §8): clip to ‖x‖₂ ≤ clip, rotate (rotation.json), scale, conditional randomised rounding (rounding.json), add one noise sample per padded coordinate in order (ddg: discrete-gaussian.json, skellam: skellam.json, none), wrap mod 2^bits. All randomness comes from one source over DeterministicRng(seed): the rounding words first, then the noise. `rounded` and `noise` are the two parts, `encoded` = (rounded + noise) mod 2^bits, `wordsUsed` the words consumed. Invalid cases are parameters the encoder must refuse, and one rounding that fails within maxRoundingTries (DP_ERR_ROUNDING_FAILED).',
  generate() {
    const tests: TestCase[] = specs().map(([comment, dim, amplitude, params], i) => {
      const tcId = i + 1;
      const { x, rotationSeed } = inputsOf('encode', tcId, dim, 32, amplitude);
      const p = { ...params, rotationSeed };
      const seed = seedOf('encode', tcId);
      return { tcId, comment, result: 'valid', seed, update: arr(x), params: paramsToJson(p), ...encodeTraced(x, p, seed) };
    });
    const base = tests[0]!;
    for (const [comment, edit, error, length] of BAD) {
      const tc: TestCase = {
        tcId: tests.length + 1, comment, result: 'invalid', update: (base.update as number[]).slice(0, length), params: edit(base.params as ParamsJson), error,
      };
      encodeCheck(tc);
      tests.push(tc);
    }
    // A rounding that misses the bound on its only attempt: β = 0.99, the first such seed.
    const { x, rotationSeed } = inputsOf('encode', tests.length + 1, 64, 16);
    const params = paramsToJson({ clip: 1, scale: 20, bits: 16, beta: 0.99, noise: { kind: 'none' }, rotationSeed, maxRoundingTries: 1 });
    for (let j = 0; ; j++) {
      const seed = seedOf('encode', tests.length + 1, j === 0 ? 'rng' : `rng/${j}`);
      if (errorCodeOf(() => encodeUpdate(x, paramsFromJson(params), new CountingSource(seed))) !== 'DP_ERR_ROUNDING_FAILED') continue;
      tests.push({ tcId: tests.length + 1, comment: 'β = 0.99, maxRoundingTries 1: the only attempt exceeds the bound', result: 'invalid', seed, update: arr(x), params, error: 'DP_ERR_ROUNDING_FAILED' });
      return tests;
    }
  },
  check: encodeCheck,
};

type DecodeSpec = [comment: string, clients: number, dim: number, params: Omit<EncodeParams, 'rotationSeed'>];

const DECODE_SPECS: DecodeSpec[] = [
  ['3 sites, ddg σ = 4, dim 8, b = 16', 3, 8, { clip: 1, scale: 64, bits: 16, beta: E05, noise: { kind: 'ddg', sigma: 4 } }],
  ['4 sites, skellam σ = 2 (μ = 2, exact), dim 20 (padded to 32), b = 20', 4, 20, { clip: 1, scale: 100, bits: 20, beta: E05, noise: { kind: 'skellam', sigma: 2 } }],
  ['2 sites, no noise, dim 5 (padded to 8), b = 12', 2, 5, { clip: 1, scale: 200, bits: 12, beta: E05, noise: { kind: 'none' } }],
  ['3 sites, no noise, dim 64, b = 32', 3, 64, { clip: 2, scale: 1000, bits: 32, beta: 0, noise: { kind: 'none' } }],
];

function sumMod(vs: number[][], bits: number): number[] {
  const m = 2 ** bits;
  return vs[0]!.map((_, i) => vs.reduce((s, v) => (s + v[i]!) % m, 0));
}

function decodeCheck(tc: TestCase): void {
  const p = paramsFromJson(tc.params as ParamsJson);
  const dim = tc.dim as number;
  if (tc.result === 'invalid') return expectError(tc.error, () => decodeSum(Uint32Array.from(tc.sum as number[]), dim, p));
  const clients = tc.clients as { seed: string; update: number[]; encoded: number[] }[];
  for (const [i, c] of clients.entries()) {
    expectEqual(`clients[${i}].encoded`, encodeUpdate(f64s(c.update), p, new CountingSource(c.seed)).encoded, c.encoded);
  }
  const sum = sumMod(clients.map((c) => c.encoded), p.bits);
  expectEqual('sum', sum, tc.sum);
  expectEqual('decoded', decodeSum(Uint32Array.from(sum), dim, p), tc.decoded);
}

export const decodeSumKind: DpVectorKind = {
  kind: 'decode-sum',
  description: 'The server decoder decodeSum (KLS21 Algorithm 2; README §9): each client encodes its `update` with the shared `params` from DeterministicRng(seed) (as in encode.json); `sum` is Σ encoded mod 2^bits; `decoded` = the first `dim` entries of D·H·(γ·lift(sum)) with lift the centred lift into [−2^(bits−1), 2^(bits−1)) and γ = 1/scale, doubles compared exactly. Invalid cases are sums and parameters the decoder must refuse.',
  generate() {
    const tests: TestCase[] = DECODE_SPECS.map(([comment, n, dim, params], i) => {
      const tcId = i + 1;
      const rotationSeed = new DeterministicRng(seedOf('decode-sum', tcId, 'rotation-seed')).bytes(32);
      const p = { ...params, rotationSeed };
      const clients = Array.from({ length: n }, (_, j) => {
        const update = gridVector(new CountingSource(seedOf('decode-sum', tcId, `input/${j + 1}`)), dim);
        const seed = seedOf('decode-sum', tcId, `client/${j + 1}`);
        return { seed, update: arr(update), encoded: arr(encodeUpdate(update, p, new CountingSource(seed)).encoded) };
      });
      const sum = sumMod(clients.map((c) => c.encoded), p.bits);
      return { tcId, comment, result: 'valid', dim, params: paramsToJson(p), clients, sum, decoded: arr(decodeSum(Uint32Array.from(sum), dim, p)) };
    });
    const seed = hex(new DeterministicRng(seedOf('decode-sum', 0, 'rotation-seed')).bytes(16));
    const bad: [string, number, Partial<ParamsJson>, number[]][] = [
      ['a sum value ≥ 2^bits', 3, { bits: 8 }, [1, 256, 3, 4]],
      ['sum length 3 for dim 3 (padded length 4)', 3, { bits: 8 }, [1, 2, 3]],
      ['dim 0', 0, { bits: 8 }, [1]],
      ['bits 33', 4, { bits: 33 }, [1, 2, 3, 4]],
      ['scale 0', 4, { bits: 8, scale: 0 }, [1, 2, 3, 4]],
    ];
    for (const [comment, dim, edit, sum] of bad) {
      const tc: TestCase = { tcId: tests.length + 1, comment, result: 'invalid', dim, params: { scale: 16, bits: 8, rotationSeed: seed, ...edit }, sum, error: 'DP_ERR_BAD_PARAM' };
      decodeCheck(tc);
      tests.push(tc);
    }
    return tests;
  },
  check: decodeCheck,
};
