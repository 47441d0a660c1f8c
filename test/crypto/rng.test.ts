import { expect } from 'chai';
import { CountingRng, DeterministicRng, systemRng } from '../../src/crypto/rng.js';

describe('crypto/rng', () => {
  it('CountingRng yields 00 01 02 … and wraps', () => {
    const r = new CountingRng();
    expect(Array.from(r.bytes(3))).to.deep.equal([0, 1, 2]);
    const big = r.bytes(300);
    expect(big[0]).to.equal(3);
    expect(big[253]).to.equal(0);
  });
  it('DeterministicRng is reproducible and continues its stream', () => {
    const a = new DeterministicRng('seed');
    const b = new DeterministicRng('seed');
    const whole = b.bytes(64);
    const parts = new Uint8Array([...a.bytes(10), ...a.bytes(54)]);
    expect(Buffer.from(parts).toString('hex')).to.equal(Buffer.from(whole).toString('hex'));
    expect(Buffer.from(new DeterministicRng('other').bytes(16)).toString('hex')).to.not.equal(
      Buffer.from(whole.subarray(0, 16)).toString('hex'));
  });
  it('systemRng fills more than one getRandomValues block', () => {
    const x = systemRng.bytes(70000);
    expect(x.length).to.equal(70000);
    expect(x.subarray(65536).some((v) => v !== 0)).to.equal(true);
  });
});
