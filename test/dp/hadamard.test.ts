import { expect } from 'chai';
import { createCipheriv, createHash } from 'node:crypto';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { DpError } from '../../src/errors.js';
import { fwht, paddedLength, rotate, rotationSigns, unrotate } from '../../src/dp/hadamard.js';

const seed = new Uint8Array(32).fill(7);

function randomVector(n: number, label: string): Float64Array {
  const b = new DeterministicRng(label).bytes(n);
  return Float64Array.from(b, (v) => v / 255 - 0.5);
}

function norm(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! ** 2;
  return Math.sqrt(s);
}

describe('dp/hadamard', () => {
  it('pads to the next power of two', () => {
    expect([1, 2, 3, 1000, 1024, 1025].map(paddedLength)).to.deep.equal([1, 2, 4, 1024, 1024, 2048]);
    expect(() => paddedLength(0)).to.throw(DpError).with.property('code', 'DP_ERR_BAD_PARAM');
  });

  it('fwht equals the explicit normalised Hadamard matrix for n = 8', () => {
    const x = randomVector(8, 'h8');
    const expected = new Float64Array(8);
    for (let i = 0; i < 8; i++) {
      for (let j = 0; j < 8; j++) {
        let bits = i & j;
        let parity = 0;
        while (bits) { parity ^= bits & 1; bits >>= 1; }
        expected[i]! += (parity ? -1 : 1) * x[j]! / Math.sqrt(8);
      }
    }
    const got = fwht(Float64Array.from(x));
    for (let i = 0; i < 8; i++) expect(got[i]).to.be.closeTo(expected[i]!, 1e-12);
  });

  it('fwht is an involution and preserves the norm', () => {
    const x = randomVector(4096, 'inv');
    const y = fwht(Float64Array.from(x));
    expect(norm(y)).to.be.closeTo(norm(x), 1e-9);
    const z = fwht(y);
    for (let i = 0; i < x.length; i++) expect(z[i]).to.be.closeTo(x[i]!, 1e-12);
    expect(() => fwht(new Float64Array(6))).to.throw(DpError).with.property('code', 'DP_ERR_BAD_PARAM');
  });

  it('signs are the documented AES-256-CTR keystream bits', () => {
    const key = createHash('sha256').update('tally/dp/rotation/v1').update(seed).digest();
    const ks = createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(16));
    expect(Buffer.from(rotationSigns(seed, 128)).equals(ks)).to.equal(true);
    expect(() => rotationSigns(new Uint8Array(8), 8)).to.throw(DpError).with.property('code', 'DP_ERR_BAD_PARAM');
  });

  it('rotate then unrotate is the identity on a padded dimension (1000 → 1024)', () => {
    const x = randomVector(1000, 'rt');
    const y = rotate(x, seed);
    expect(y.length).to.equal(1024);
    expect(norm(y)).to.be.closeTo(norm(x), 1e-9);
    const back = unrotate(y, 1000, seed);
    expect(back.length).to.equal(1000);
    for (let i = 0; i < 1000; i++) expect(back[i]).to.be.closeTo(x[i]!, 1e-12);
    const wrongSeed = unrotate(y, 1000, new Uint8Array(32));
    expect(norm(Float64Array.from(wrongSeed, (v, i) => v - x[i]!))).to.be.above(1);
  });

  it('flattens a one-hot vector to ±1/√d in every coordinate', () => {
    const e = new Float64Array(256);
    e[17] = 1;
    const y = rotate(e, seed);
    for (const v of y) expect(Math.abs(v)).to.be.closeTo(1 / 16, 1e-12);
  });

  it('unrotate validates dim', () => {
    expect(() => unrotate(new Float64Array(8), 9, seed)).to.throw(DpError).with.property('code', 'DP_ERR_BAD_PARAM');
  });
});
