import { expect } from 'chai';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { DpError } from '../../src/errors.js';
import { addCentralGaussianNoise, clipL2InPlace } from '../../src/dp/central.js';
import { meanVar } from './_stats.js';

describe('dp/central', () => {
  it('adds N(0, (zC)²) per coordinate and leaves the input alone', () => {
    const sum = new Float64Array(50000).fill(3);
    const out = addCentralGaussianNoise(sum, 2, 1.5, new DeterministicRng('central'));
    expect(sum[0]).to.equal(3);
    const { mean, variance } = meanVar(out);
    expect(mean).to.be.closeTo(3, (4.5 * 3) / Math.sqrt(50000));
    expect(variance / 9).to.be.within(0.97, 1.03);
    // Standard normal tails: about 4.55% beyond 2 std.
    const beyond = out.filter((v) => Math.abs(v - 3) > 6).length / out.length;
    expect(beyond).to.be.within(0.0425, 0.0485);
  });

  it('z = 0 adds nothing; bad arguments are rejected', () => {
    expect(Array.from(addCentralGaussianNoise(Float32Array.from([1, 2]), 1, 0, new DeterministicRng('z')))).to.deep.equal([1, 2]);
    const rng = new DeterministicRng('bad');
    expect(() => addCentralGaussianNoise(new Float64Array(2), 0, 1, rng)).to.throw(DpError).with.property('code', 'DP_ERR_BAD_PARAM');
    expect(() => addCentralGaussianNoise(new Float64Array(2), 1, -1, rng)).to.throw(DpError).with.property('code', 'DP_ERR_BAD_PARAM');
    expect(() => addCentralGaussianNoise([1, 2] as unknown as Float64Array, 1, 1, rng)).to.throw(DpError);
  });

  it('clipL2InPlace scales only vectors above the clip', () => {
    const a = Float64Array.from([3, 4]);
    expect(clipL2InPlace(a, 1)).to.equal(5);
    expect(a[0]).to.be.closeTo(0.6, 1e-12);
    expect(a[1]).to.be.closeTo(0.8, 1e-12);
    const b = Float64Array.from([0.3, 0.4]);
    clipL2InPlace(b, 1);
    expect(Array.from(b)).to.deep.equal([0.3, 0.4]);
  });
});
