import { expect } from 'chai';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { DpError } from '../../src/errors.js';
import { RandomSource } from '../../src/dp/_random.js';
import { ExactPoissonSampler } from '../../src/dp/poisson-exact.js';
import { logPoissonPmf } from '../../src/dp/skellam.js';
import { chiSquare, meanVar } from './_stats.js';

/** Exact r(k) = μ^(k−m)·m!/k! for μ = num/den, m = ⌊μ⌋, as a bigint fraction. */
function exactRatio(num: number, den: number, k: number): { n: bigint; d: bigint } {
  const m = Math.floor(num / den);
  let n = 1n;
  let d = 1n;
  for (let i = m + 1; i <= k; i++) { n *= BigInt(num); d *= BigInt(den) * BigInt(i); }
  for (let i = k + 1; i <= m; i++) { n *= BigInt(den) * BigInt(i); d *= BigInt(num); }
  return { n, d };
}

/** A RandomSource that returns the scripted words first, then the DRBG stream. */
class ScriptedSource extends RandomSource {
  used = 0;
  constructor(private readonly script: number[], seed: string) { super(new DeterministicRng(seed)); }
  override u32(): number {
    return this.used < this.script.length ? this.script[this.used++]! : (this.used++, super.u32());
  }
}

function draws(s: ExactPoissonSampler, n: number, seed: string): Float64Array {
  const src = new RandomSource(new DeterministicRng(seed));
  return Float64Array.from({ length: n }, () => s.sample(src));
}

describe('dp/poisson-exact', () => {
  for (const [num, den, n] of [[10, 1, 200000], [75, 2, 200000], [1000, 1, 100000], [20000000, 1, 100000]] as const) {
    const mu = num / den;
    it(`Poisson(${mu}): chi-square against the exact pmf, and against a 1% larger mean`, () => {
      const s = new ExactPoissonSampler(num, den);
      const xs = draws(s, n, `pe-${mu}`);
      const lo = Math.max(0, Math.floor(mu - 7 * Math.sqrt(mu)));
      const hi = Math.ceil(1.01 * mu + 8 * Math.sqrt(1.01 * mu)) + 5; // covers both laws
      // Edge bins take the tails: P[X ≤ lo] and P[X ≥ hi] are < 1e-9, absorbed in the pooled edge bins.
      const pmf = (m: number) => (k: number) => (k < 0 ? 0 : Math.exp(logPoissonPmf(k, m)));
      const r = chiSquare(xs, pmf(mu), lo, hi);
      expect(r.chi2, JSON.stringify(r)).to.be.below(r.critical);
      const w = chiSquare(xs, pmf(mu * 1.01), lo, hi);
      expect(w.chi2, JSON.stringify(w)).to.be.above(w.critical);
      for (const x of xs) expect(Number.isInteger(x) && x >= 0).to.equal(true);
    });
  }

  for (const [num, den] of [[75, 2], [1000, 1], [100003, 7]] as const) {
    it(`μ = ${num}/${den}: weights dominate r(k) and the 32-bit limits bracket r(k)·G/Wt_k (exact bigints)`, () => {
      const s = new ExactPoissonSampler(num, den);
      const g = BigInt(s.scale);
      const step = Math.max(1, Math.floor((s.high - s.low) / 300));
      const ks = [...Array.from({ length: Math.floor((s.high - s.low) / step) + 1 }, (_, i) => s.low + i * step), s.mode, s.high];
      for (const k of ks) {
        const { n, d } = exactRatio(num, den, k);
        const wt = BigInt(s.weightOf(k));
        expect(wt * d >= g * n, `k=${k}`).to.equal(true); // w(k) ≥ r(k)
        const { accept, reject } = s.limitsOf(k);
        // accept/2^32 ≤ r·G/Wt ≤ reject/2^32
        expect(BigInt(accept) * wt * d <= (g * n) << 32n, `k=${k}`).to.equal(true);
        expect(BigInt(reject) * wt * d >= (g * n) << 32n, `k=${k}`).to.equal(true);
        const [rlo, rhi] = s.ratioBounds(k, 200);
        expect(rlo * d <= n << 200n && rhi * d >= n << 200n, `k=${k}`).to.equal(true);
      }
    });
  }

  it('a first word inside the uncertainty band takes the exact path, which agrees with a direct bigint comparison', () => {
    const [num, den] = [75, 2];
    const s = new ExactPoissonSampler(num, den);
    let seen = 0;
    const outcomes = new Set<boolean>();
    for (const k of [s.mode - 9, s.mode - 1, s.mode, s.mode + 4, s.mode + 20, s.high]) {
      const { accept, reject } = s.limitsOf(k);
      expect(reject - accept).to.be.within(1, 2);
      const { n, d } = exactRatio(num, den, k);
      const q = { n: BigInt(s.scale) * n, d: BigInt(s.weightOf(k)) * d }; // r(k)·G/Wt_k
      for (let a = accept; a < reject; a++) {
        for (let seed = 0; seed < 8; seed++) {
          const src = new ScriptedSource([a], `tie-${k}-${seed}`);
          const before = s.stats.tieBreaks;
          const got = s.acceptAt(k - s.low, src);
          expect(s.stats.tieBreaks).to.equal(before + 1);
          // Rebuild U's consumed prefix and check the cell [c, c+1)/2^L lies on the decided side of q.
          const words = [a, ...Array.from(new DeterministicRng(`tie-${k}-${seed}`).bytes(4 * (src.used - 1)).reduce<number[]>((acc, _b, i, arr) => {
            if (i % 4 === 0) acc.push((arr[i]! | (arr[i + 1]! << 8) | (arr[i + 2]! << 16) | (arr[i + 3]! << 24)) >>> 0);
            return acc;
          }, []))];
          const c = words.reduce((x, w) => (x << 32n) | BigInt(w), 0n);
          const bits = 32n * BigInt(words.length);
          if (got) expect((c + 1n) * q.d <= q.n << bits).to.equal(true);
          else expect(c * q.d >= q.n << bits).to.equal(true);
          outcomes.add(got);
          seen++;
        }
      }
    }
    expect(seen).to.be.above(40);
    expect([...outcomes].sort()).to.deep.equal([false, true]);
  });

  it('tail envelopes: proposals beyond the window return values from the right law', () => {
    const s = new ExactPoissonSampler(1000, 1);
    expect(s.low).to.be.above(0);
    const src = new RandomSource(new DeterministicRng('tails'));
    const right: number[] = [];
    const left: number[] = [];
    for (let i = 0; i < 20000; i++) {
      const a = s.sampleRightTail(src);
      if (a >= 0) right.push(a);
    }
    // The left tail is lighter (r(L)·G/Wt_L ≈ 1.3e-4 here): more proposals, validity only.
    for (let i = 0; i < 300000; i++) {
      const b = s.sampleLeftTail(src);
      if (b >= 0) left.push(b);
    }
    expect(right.length).to.be.above(150);
    expect(left.length).to.be.above(5);
    for (const x of right) expect(x).to.be.above(s.high);
    for (const x of left) expect(x).to.be.within(0, s.low - 1);
    // Conditional right-tail law ∝ r(k): chi-square against the normalised pmf beyond the window.
    const rk = Array.from({ length: 60 }, (_, i) => s.high + 1 + i);
    const z = rk.reduce((t, k) => t + Math.exp(logPoissonPmf(k, 1000)), 0);
    const rr = chiSquare(right, (k) => (k > s.high ? Math.exp(logPoissonPmf(k, 1000)) / z : 0), s.high + 1, s.high + 60);
    expect(rr.chi2, JSON.stringify(rr)).to.be.below(rr.critical);
    const zw = rk.reduce((t, k) => t + Math.exp(logPoissonPmf(k, 1100)), 0); // the tail of a 10% larger mean
    const wrong = chiSquare(right, (k) => (k > s.high ? Math.exp(logPoissonPmf(k, 1100)) / zw : 0), s.high + 1, s.high + 60);
    expect(wrong.chi2, JSON.stringify(wrong)).to.be.above(wrong.critical);
    // Through sample(): a crafted first word picks the right-tail bucket (index = window size), v = 0.
    const before = s.stats.rightTail;
    const x = s.sample(new ScriptedSource([s.high - s.low + 1, 0], 'crafted'));
    expect(s.stats.rightTail).to.equal(before + 1);
    expect(Number.isInteger(x) && x >= 0).to.equal(true);
    // μ = 10 has no left tail (the window starts at 0).
    const small = new ExactPoissonSampler(10, 1);
    expect(small.low).to.equal(0);
    expect(small.sampleLeftTail(src)).to.equal(-1);
  });

  it('rejects bad parameters with DP_ERR_BAD_PARAM', () => {
    for (const [num, den] of [[9, 1], [99, 10], [10, 0], [1e10, 2 ** 32 + 1], [2.5e1 + 0.5, 1], [2 ** 32 + 1, 1], [Number.NaN, 1], [2 ** 53, 1]]) {
      expect(() => new ExactPoissonSampler(num!, den!), `${num}/${den}`).to.throw(DpError).with.property('code', 'DP_ERR_BAD_PARAM');
    }
    expect(() => new ExactPoissonSampler(10, 1).weightOf(1000)).to.throw(DpError).with.property('code', 'DP_ERR_BAD_PARAM');
    expect(new ExactPoissonSampler(2 ** 32, 1).mean).to.equal(2 ** 32);
  });

  it('μ = 2^30: mean and variance; reproducible for a fixed seed', () => {
    const s = new ExactPoissonSampler(2 ** 30, 1);
    const n = 100000;
    const xs = draws(s, n, 'pe-2^30');
    const { mean, variance } = meanVar(xs);
    expect(Math.abs(mean - 2 ** 30)).to.be.below(4.5 * Math.sqrt(2 ** 30 / n));
    expect(variance / 2 ** 30).to.be.within(0.98, 1.02);
    expect(Array.from(draws(s, 20, 'r'))).to.deep.equal(Array.from(draws(new ExactPoissonSampler(2 ** 30, 1), 20, 'r')));
  });
});
