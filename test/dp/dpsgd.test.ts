import { expect } from 'chai';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { DpError } from '../../src/errors.js';
import { clipAndNoise } from '../../src/dp/dpsgd.js';
import { meanVar } from './_stats.js';

describe('dp/dpsgd', () => {
  it('clips each example to C before summing (z = 0 is exact)', () => {
    const g = [Float32Array.from([3, 4]), Float32Array.from([0.1, 0]), Float32Array.from([0, -10])];
    const r = clipAndNoise(g, 1, 0, new DeterministicRng('x'));
    expect(r.clippedCount).to.equal(2);
    expect(r.noisySum[0]).to.be.closeTo(0.6 + 0.1, 1e-6);
    expect(r.noisySum[1]).to.be.closeTo(0.8 - 1, 1e-6);
    expect(r.noisyMean[0]).to.be.closeTo(0.7 / 3, 1e-6);
    expect(Array.from(g[0]!)).to.deep.equal([3, 4]); // inputs untouched
  });

  it('adds N(0, (zC)²) noise to the sum', () => {
    const dim = 40000;
    const g = [new Float32Array(dim), new Float32Array(dim)];
    const r = clipAndNoise(g, 0.5, 2, new DeterministicRng('noise'));
    const { mean, variance } = meanVar(r.noisySum);
    expect(Math.abs(mean)).to.be.below(4.5 / Math.sqrt(dim));
    expect(variance).to.be.within(0.97, 1.03);
    const m = meanVar(r.noisyMean);
    expect(m.variance).to.be.within(0.97 / 4, 1.03 / 4);
  });

  it('rejects empty batches, ragged gradients and bad numbers', () => {
    const rng = new DeterministicRng('bad');
    const cases: [Float32Array[], number, number][] = [
      [[], 1, 1],
      [[new Float32Array(2), new Float32Array(3)], 1, 1],
      [[new Float32Array(2)], 0, 1],
      [[new Float32Array(2)], 1, Number.NaN],
      [[Float32Array.from([Number.POSITIVE_INFINITY, 0])], 1, 1],
    ];
    for (const [g, c, z] of cases) expect(() => clipAndNoise(g, c, z, rng)).to.throw(DpError).with.property('code', 'DP_ERR_BAD_PARAM');
  });
});
