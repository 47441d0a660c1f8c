/**
 * The `random-source` kind: the primitives every DP sampler draws from
 * (src/dp/_random.ts), each run N times on a fresh source over
 * DeterministicRng(seed).
 */
import type { RandomSource } from '../_random.js';
import { bigOf, CountingSource, expectEqual, intJson, numOf, seedOf, VectorMismatch, type IntJson } from './_common.js';
import type { DpVectorKind } from './kind.js';

const KIND = 'random-source';

type Args = { n: IntJson } | { num: IntJson; den: IntJson };
type Op = 'u32' | 'u53' | 'uniformInt' | 'uniformBigInt' | 'bernoulli' | 'bernoulliBig' | 'bernoulliExpNeg' | 'bernoulliExpNegBig';

/** Runs one primitive once and returns its output as JSON. */
function runOp(src: RandomSource, op: Op, args: Record<string, unknown>): IntJson | boolean {
  switch (op) {
    case 'u32': return src.u32();
    case 'u53': return src.u53();
    case 'uniformInt': return src.uniformInt(numOf(args.n, 'n'));
    case 'uniformBigInt': return intJson(src.uniformBigInt(bigOf(args.n, 'n')));
    case 'bernoulli': return src.bernoulli(numOf(args.num, 'num'), numOf(args.den, 'den'));
    case 'bernoulliBig': return src.bernoulliBig(bigOf(args.num, 'num'), bigOf(args.den, 'den'));
    case 'bernoulliExpNeg': return src.bernoulliExpNeg(numOf(args.num, 'num'), numOf(args.den, 'den'));
    case 'bernoulliExpNegBig': return src.bernoulliExpNegBig(bigOf(args.num, 'num'), bigOf(args.den, 'den'));
    default: throw new VectorMismatch(`unknown op ${String(op)}`);
  }
}

function run(seed: string, op: Op, args: Record<string, unknown>, count: number): { outputs: (IntJson | boolean)[]; wordsUsed: number } {
  const src = new CountingSource(seed);
  const outputs = Array.from({ length: count }, () => runOp(src, op, args));
  return { outputs, wordsUsed: src.consumed };
}

const TWO52 = 2 ** 52;

const CASES: [string, Op, Args | undefined, number][] = [
  ['the first 16 uint32 words (keystream bytes 4i..4i+3, little-endian)', 'u32', undefined, 16],
  ['u53 = (w0 & 0x1fffff)·2^32 + w1', 'u53', undefined, 8],
  ['uniformInt(1): always 0, one word each', 'uniformInt', { n: 1 }, 8],
  ['uniformInt(2)', 'uniformInt', { n: 2 }, 16],
  ['uniformInt(6): limit 2^32 − (2^32 mod 6)', 'uniformInt', { n: 6 }, 16],
  ['uniformInt(1000)', 'uniformInt', { n: 1000 }, 16],
  ['uniformInt(2^31 + 1): about half the words are rejected', 'uniformInt', { n: 2 ** 31 + 1 }, 16],
  ['uniformInt(2^32): every word accepted', 'uniformInt', { n: 2 ** 32 }, 8],
  ['uniformInt(2^32 + 1): the u53 path (two words per draw)', 'uniformInt', { n: 2 ** 32 + 1 }, 8],
  ['uniformInt(6004799503160661 ≈ 2^53·2/3): u53 path with rejection', 'uniformInt', { n: 6004799503160661 }, 8],
  ['uniformInt(2^53)', 'uniformInt', { n: '9007199254740992' }, 8],
  ['uniformBigInt(5): bit length 3, values 5..7 rejected', 'uniformBigInt', { n: 5 }, 16],
  ['uniformBigInt(2^64): bit length 65, three words, first word masked to 1 bit', 'uniformBigInt', { n: (2n ** 64n).toString() }, 8],
  ['uniformBigInt(2^100 + 1)', 'uniformBigInt', { n: (2n ** 100n + 1n).toString() }, 8],
  ['bernoulli(1/3)', 'bernoulli', { num: 1, den: 3 }, 32],
  ['bernoulli(0/1): never, one word each', 'bernoulli', { num: 0, den: 1 }, 4],
  ['bernoulli(7/10)', 'bernoulli', { num: 7, den: 10 }, 32],
  ['bernoulliBig(10^30 / (3·10^30))', 'bernoulliBig', { num: (10n ** 30n).toString(), den: (3n * 10n ** 30n).toString() }, 16],
  ['bernoulliExpNeg(0/1): always true after one failed Bernoulli(0/1) trial', 'bernoulliExpNeg', { num: 0, den: 1 }, 4],
  ['bernoulliExpNeg(1/2)', 'bernoulliExpNeg', { num: 1, den: 2 }, 32],
  ['bernoulliExpNeg(1/1)', 'bernoulliExpNeg', { num: 1, den: 1 }, 32],
  ['bernoulliExpNeg(3/2): γ > 1, one Bernoulli(exp(−1)) then the fraction 1/2', 'bernoulliExpNeg', { num: 3, den: 2 }, 32],
  ['bernoulliExpNeg(7/3): two Bernoulli(exp(−1)) then 1/3', 'bernoulliExpNeg', { num: 7, den: 3 }, 32],
  ['bernoulliExpNeg(65536/98304)', 'bernoulliExpNeg', { num: 65536, den: 98304 }, 32],
  ['bernoulliExpNeg((2^52)/(2^52 + 1)): den·k > 2^53 at k = 2, so the loop continues in bigints', 'bernoulliExpNeg', { num: TWO52, den: TWO52 + 1 }, 16],
  ['bernoulliExpNegBig(1/3)', 'bernoulliExpNegBig', { num: 1, den: 3 }, 32],
  ['bernoulliExpNegBig(12345678901234567890123 / 10^22): γ ≈ 1.23', 'bernoulliExpNegBig', { num: '12345678901234567890123', den: (10n ** 22n).toString() }, 16],
];

export const randomSourceKind: DpVectorKind = {
  kind: KIND,
  description: 'Random-source primitives of the DP samplers (src/dp/_random.ts; README §2): each case creates one source over DeterministicRng(seed), calls `op` with `args` `count` times and lists the `outputs` in order; `wordsUsed` is the number of uint32 keystream words consumed in total. Integers are JSON numbers when safe, else decimal strings; Bernoulli outputs are booleans.',
  generate() {
    return CASES.map(([comment, op, args, count], i) => {
      const seed = seedOf(KIND, i + 1);
      return { tcId: i + 1, comment, result: 'valid' as const, seed, op, ...(args === undefined ? {} : { args }), count, ...run(seed, op, args ?? {}, count) };
    });
  },
  check(tc) {
    if (typeof tc.seed !== 'string' || typeof tc.count !== 'number') throw new VectorMismatch('"seed" and "count" are required');
    const r = run(tc.seed, tc.op as Op, (tc.args ?? {}) as Record<string, unknown>, tc.count);
    expectEqual('outputs', r.outputs, tc.outputs);
    expectEqual('wordsUsed', r.wordsUsed, tc.wordsUsed);
  },
};
