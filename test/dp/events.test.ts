/** Event validation of the distributed kinds: the fields planRound records, and the earlier form refused. */
import { expect } from 'chai';
import { DpError } from '../../src/errors.js';
import { EVENT_KINDS, MECHANISM_KINDS, parseEvent, validateEvent, type DistributedEvent } from '../../src/dp/events.js';

const ok: DistributedEvent = { kind: 'ddg', clip: 1, scale: 100, beta: 0.5, paddedDim: 1024, threshold: 8, siteSigma2: { num: 3, den: 2 }, bits: 20 };

describe('dp/events: distributed kinds', () => {
  it('one vocabulary: the mechanism kinds are the leaf event kinds', () => {
    expect([...MECHANISM_KINDS]).to.deep.equal(['gaussian', 'discrete_gaussian', 'ddg', 'skellam']);
    expect(EVENT_KINDS.slice(0, 4)).to.deep.equal([...MECHANISM_KINDS]);
    expect(() => validateEvent(ok)).to.not.throw();
    expect(() => validateEvent({ ...ok, kind: 'skellam' })).to.not.throw();
    expect(parseEvent(JSON.stringify(ok))).to.deep.equal(ok);
  });

  const bad: [string, unknown, RegExp][] = [
    ['padded dimension not a power of two', { ...ok, paddedDim: 1025 }, /event\.paddedDim" expected a power of two/],
    ['padded dimension 0', { ...ok, paddedDim: 0 }, /event\.paddedDim/],
    ['threshold 0', { ...ok, threshold: 0 }, /event\.threshold/],
    ['threshold missing', { ...ok, threshold: undefined }, /event\.threshold/],
    ['σ² missing', { ...ok, siteSigma2: undefined }, /event\.siteSigma2" expected an exact variance/],
    ['σ² as a number', { ...ok, siteSigma2: 1.5 }, /event\.siteSigma2"/],
    ['σ² numerator 0', { ...ok, siteSigma2: { num: 0, den: 1 } }, /event\.siteSigma2\.num/],
    ['σ² denominator above 2^20', { ...ok, siteSigma2: { num: 1, den: 2 ** 20 + 1 } }, /event\.siteSigma2\.den/],
    ['fractional σ² numerator', { ...ok, siteSigma2: { num: 1.5, den: 1 } }, /event\.siteSigma2\.num/],
    ['β = 1', { ...ok, beta: 1 }, /event\.beta/],
    ['scale 0', { ...ok, scale: 0 }, /event\.scale/],
    ['clip NaN', { ...ok, clip: Number.NaN }, /event\.clip/],
    ['bits 33', { ...ok, bits: 33 }, /event\.bits/],
    ['the earlier kind name (unpadded dim, nominal z)', { kind: 'distributed_discrete_gaussian', noiseMultiplier: 1, clip: 1, dim: 1025, minClients: 10, scale: 4, beta: 0 }, /no longer accepted/],
    ['the earlier fields under the new kind', { kind: 'ddg', noiseMultiplier: 1, clip: 1, dim: 1025, minClients: 10, scale: 4, beta: 0 }, /event\.paddedDim/],
  ];
  for (const [name, ev, re] of bad) {
    it(`refuses ${name} with DP_ERR_BAD_PARAM`, () => {
      expect(() => validateEvent(ev)).to.throw(DpError, re).with.property('code', 'DP_ERR_BAD_PARAM');
    });
  }
});
