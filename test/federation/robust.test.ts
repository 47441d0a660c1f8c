/**
 * Robust aggregation over individual updates: exact small cases, one
 * Byzantine update (an honest one ×1e6) that moves the mean but not the
 * median, trimmed mean or Krum, and the refusals (non-finite values, ragged
 * or empty input, bad parameters, too few updates for Krum).
 */
import { expect } from 'chai';
import { ValidationError } from '../../src/errors.js';
import { coordinateMedian, krum, robustAggregate, trimmedMean } from '../../src/federation/robust.js';
import { DeterministicRng } from '../../src/crypto/rng.js';

const f32 = (...v: number[]) => Float32Array.from(v);
const list = (a: Float32Array) => [...a];

function refuses(fn: () => unknown, pattern: RegExp, code = 'TRAIN_ERR_BAD_PARAM'): void {
  expect(fn).to.throw(ValidationError, pattern).with.property('code', code);
}

/** n honest updates of length d, values in [−1, 1), seeded. */
function honest(n: number, d: number, seed: string): Float32Array[] {
  const rng = new DeterministicRng(seed);
  return Array.from({ length: n }, () => {
    const b = rng.bytes(4 * d);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return Float32Array.from({ length: d }, (_, j) => dv.getUint32(4 * j) / 2 ** 31 - 1);
  });
}

function mean(updates: readonly Float32Array[]): Float64Array {
  const out = new Float64Array(updates[0]!.length);
  for (const u of updates) u.forEach((v, j) => { out[j]! += v / updates.length; });
  return out;
}

describe('federation/robust: robust aggregation over individual updates', () => {
  describe('exact small cases', () => {
    it('median: the middle value for odd n, the mean of the two middle values for even n', () => {
      expect(list(coordinateMedian([f32(1, 9, -3), f32(5, 2, 0), f32(3, 4, 8)]))).to.deep.equal([3, 4, 0]);
      expect(list(coordinateMedian([f32(1, 10), f32(4, 20), f32(2, -6), f32(8, 0)]))).to.deep.equal([3, 5]);
      expect(list(coordinateMedian([f32(7, -2)]))).to.deep.equal([7, -2]);
    });

    it('trimmed mean: drops trim values at each end of every coordinate', () => {
      const u = [f32(1, 100), f32(2, -5), f32(3, 0), f32(4, 5), f32(100, 6)];
      expect(list(trimmedMean(u, 1))).to.deep.equal([3, 11 / 3].map(Math.fround));
      expect(list(trimmedMean(u, 2))).to.deep.equal([3, 5]);
      expect(list(trimmedMean(u, 0))).to.deep.equal([22, 106 / 5].map(Math.fround));
    });

    it('Krum: the update with the least sum of squared distances to its n − f − 2 nearest others', () => {
      // Points on a line: 0, 1, 2, 3, 10. f = 1 → 2 nearest others each.
      // Scores: 0 → 1 + 4 = 5; 1 → 1 + 1 = 2; 2 → 1 + 1 = 2; 3 → 1 + 4 = 5; 10 → 49 + 64 = 113.
      const u = [f32(0), f32(1), f32(2), f32(3), f32(10)];
      const r = krum(u, 1);
      expect(r.scores).to.deep.equal([5, 2, 2, 5, 113]);
      expect(r.selected).to.deep.equal([1]); // tie with 2 goes to the lower index
      expect(list(r.aggregate)).to.deep.equal([1]);
      const multi = krum(u, 1, 3);
      expect(multi.selected).to.deep.equal([1, 2, 0]);
      expect(list(multi.aggregate)).to.deep.equal([1]);
    });

    it('Krum in two dimensions: squared L2 distances', () => {
      // (0,0), (3,4), (0,1), (1,0), (0,0) with f = 0 → 3 nearest others.
      const u = [f32(0, 0), f32(3, 4), f32(0, 1), f32(1, 0), f32(0, 0)];
      const r = krum(u, 0);
      // 0: to 4 → 0, to 2 → 1, to 3 → 1: 2. 4: same: 2. 2: 0→1, 4→1, 3→2: 4. 3: 4. 1: 25,18,20,25 → 18+20+25 = 63.
      expect(r.scores).to.deep.equal([2, 63, 4, 4, 2]);
      expect(r.selected).to.deep.equal([0]);
      expect(list(krum(u, 0, 2).aggregate)).to.deep.equal([0, 0]);
    });

    it('robustAggregate dispatches on the kind', () => {
      const u = [f32(0), f32(1), f32(2), f32(3), f32(10)];
      expect(list(robustAggregate('median', u).aggregate)).to.deep.equal([2]);
      expect(robustAggregate('median', u).selected).to.equal(undefined);
      expect(list(robustAggregate('trimmed-mean', u, { trim: 1 }).aggregate)).to.deep.equal([2]);
      const k = robustAggregate('krum', u, { f: 1, m: 2 });
      expect(k.selected).to.deep.equal([1, 2]);
      expect(list(k.aggregate)).to.deep.equal([1.5]);
    });

    it('does not modify its inputs', () => {
      const u = [f32(3, 1), f32(1, 2), f32(2, 3), f32(0, 0)];
      const copy = u.map((x) => x.slice());
      coordinateMedian(u); trimmedMean(u, 1); krum(u, 0, 2);
      expect(u).to.deep.equal(copy);
    });
  });

  describe('one Byzantine update among honest ones', () => {
    const n = 9, d = 64;
    const good = honest(n - 1, d, 'robust/byzantine');
    const evil = good[3]!.map((v) => v * 1e6);
    const all = [...good.slice(0, 5), evil, ...good.slice(5)]; // the Byzantine update at index 5
    const lo = Float64Array.from({ length: d }, (_, j) => Math.min(...good.map((u) => u[j]!)));
    const hi = Float64Array.from({ length: d }, (_, j) => Math.max(...good.map((u) => u[j]!)));
    const within = (agg: ArrayLike<number>) => {
      for (let j = 0; j < d; j++) {
        expect(agg[j]!, `coordinate ${j}`).to.be.at.least(lo[j]!);
        expect(agg[j]!, `coordinate ${j}`).to.be.at.most(hi[j]!);
      }
    };

    it('moves the mean far outside the honest range', () => {
      const m = mean(all);
      const outside = [...m].filter((v, j) => v < lo[j]! || v > hi[j]!).length;
      expect(outside).to.be.greaterThan(d / 2);
      expect(Math.max(...[...m].map(Math.abs))).to.be.greaterThan(1e4);
    });

    it('leaves the median within the honest range', () => within(coordinateMedian(all)));

    it('leaves the trimmed mean (trim 1) within the honest range', () => within(trimmedMean(all, 1)));

    it('Krum (f = 1) never selects the Byzantine update; Multi-Krum averages honest ones only', () => {
      const r = krum(all, 1);
      expect(r.selected[0]).to.not.equal(5);
      within(r.aggregate);
      const multi = krum(all, 1, n - 1);
      expect(multi.selected).to.not.include(5);
      within(multi.aggregate);
    });
  });

  describe('refusals', () => {
    it('refuses NaN and ±Infinity with a typed error naming the update and index', () => {
      for (const bad of [NaN, Infinity, -Infinity]) {
        const u = [f32(1, 2), f32(3, bad), f32(0, 0), f32(1, 1), f32(2, 2)];
        refuses(() => coordinateMedian(u), /update 1 holds .* at index 1/);
        refuses(() => trimmedMean(u, 1), /update 1 holds/);
        refuses(() => krum(u, 1), /update 1 holds/);
        refuses(() => robustAggregate('median', u), /update 1 holds/);
      }
    });

    it('refuses no updates, ragged lengths, empty updates and non-Float32Array input', () => {
      refuses(() => coordinateMedian([]), /at least one update/);
      refuses(() => coordinateMedian([f32(1, 2), f32(1)]), /update 1 has 1 values, update 0 has 2/);
      refuses(() => coordinateMedian([new Float32Array(0)]), /update 0 is empty/);
      refuses(() => coordinateMedian([[1, 2] as unknown as Float32Array]), /not a Float32Array/);
    });

    it('refuses a trim with 2·trim ≥ n, a negative or fractional trim', () => {
      const u = [f32(1), f32(2), f32(3), f32(4)];
      refuses(() => trimmedMean(u, 2), /2·trim must be below n/);
      refuses(() => trimmedMean(u, -1), /non-negative integer/);
      refuses(() => trimmedMean(u, 0.25), /non-negative integer/);
      expect(list(trimmedMean(u, 1))).to.deep.equal([2.5]);
    });

    it('refuses Krum with n ≤ 2f + 2, and a bad f or m', () => {
      const four = [f32(1), f32(2), f32(3), f32(4)];
      refuses(() => krum(four, 1), /needs n > 2f \+ 2 = 4 updates, got 4/);
      refuses(() => krum([f32(1), f32(2)], 0), /needs n > 2f \+ 2 = 2 updates, got 2/);
      expect(krum([f32(0), f32(2), f32(3)], 0).selected).to.deep.equal([1]); // n = 3 > 2: scores 4, 1, 1
      const five = [...four, f32(5)];
      refuses(() => krum(five, -1), /f must be a non-negative integer/);
      refuses(() => krum(five, 1, 0), /m must be an integer in 1\.\.n − f = 1\.\.4/);
      refuses(() => krum(five, 1, 5), /m must be an integer/);
    });

    it('robustAggregate refuses an unknown kind, a missing parameter and a parameter of another kind', () => {
      const u = [f32(0), f32(1), f32(2), f32(3), f32(10)];
      refuses(() => robustAggregate('mean' as 'median', u), /unknown robust aggregator "mean"/);
      refuses(() => robustAggregate('trimmed-mean', u), /needs params\.trim/);
      refuses(() => robustAggregate('krum', u, { m: 2 }), /needs params\.f/);
      refuses(() => robustAggregate('median', u, { trim: 1 }), /"trim" does not apply to "median"/);
      refuses(() => robustAggregate('krum', u, { f: 1, trim: 1 }), /"trim" does not apply to "krum"/);
    });
  });
});
