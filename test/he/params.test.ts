/** he-sum-v1 parameter sets: the choice from n and b, its three checks, and SEAL's agreement. */
import { expect } from 'chai';
import fc from 'fast-check';
import { ValidationError } from '../../src/errors.js';
import {
  batchingPrimes, HE_MAX_SITES, HE_SETS, heParams, isPrime, MAX_COEFF_BITS_128, paramsDigest, type HeParams,
} from '../../src/he/params.js';
import { loadSeal } from '../../src/he/seal.js';

function code(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect(err).to.be.instanceOf(ValidationError);
    return (err as ValidationError).code;
  }
  throw new Error('did not throw');
}

/** The three conditions every returned set must meet. */
function holds(p: HeParams): void {
  const N = p.polyModulusDegree;
  const t = p.plainModulus;
  expect(isPrime(t), 't prime').to.equal(true);
  expect(t % BigInt(2 * N), 't ≡ 1 mod 2N').to.equal(1n);
  expect(p.sumBound).to.equal(BigInt(p.sites) * (2n ** BigInt(p.bits) - 1n));
  expect(t > p.sumBound, 't > n·(2^b − 1)').to.equal(true);
  const Q = p.dataModulus.reduce((a, b) => a * b, 1n);
  expect(44n * BigInt(p.sites) * t < Q, '44·n·t < Q').to.equal(true);
  const total = p.coeffModulus.reduce((a, q) => a + q.toString(2).length, 0);
  expect(total).to.be.at.most(MAX_COEFF_BITS_128[N]!);
  expect(p.securityLevel).to.equal(128);
  for (const q of p.coeffModulus) {
    expect(isPrime(q)).to.equal(true);
    expect(q % BigInt(2 * N)).to.equal(1n);
  }
}

describe('he/params', () => {
  it('takes bgv-4096-q60 with t of b + ⌈log2 n⌉ + 1 bits for small n and b', () => {
    for (const [n, b] of [[1, 1], [2, 8], [10, 16], [100, 24], [1000, 32]] as const) {
      const p = heParams(n, b);
      expect(p.set).to.equal('bgv-4096-q60');
      expect(p.polyModulusDegree).to.equal(4096);
      expect(p.coeffModulus).to.deep.equal([1152921504606830593n]);
      expect(p.dataModulus).to.deep.equal(p.coeffModulus);
      // The smallest batching primes mod 8192 have 16 bits.
      expect(p.plainModulusBits).to.equal(Math.max(16, b + Math.ceil(Math.log2(n)) + 1));
      holds(p);
    }
  });

  it('moves to bgv-8192-q120 when n·t would leave too little noise room at Q ≈ 2^60', () => {
    expect(code(() => heParams(2000, 32, { set: 'bgv-4096-q60' }))).to.equal('HE_ERR_WRAP_RISK');
    const p = heParams(2000, 32);
    expect(p.set).to.equal('bgv-8192-q120');
    expect(p.coeffModulus.length).to.equal(3);
    expect(p.dataModulus).to.deep.equal(p.coeffModulus.slice(0, 2));
    holds(p);
    holds(heParams(HE_MAX_SITES, 32));
  });

  it('every n in 1…2^20 and b in 1…32 gets a set that meets all three conditions', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: HE_MAX_SITES }), fc.integer({ min: 1, max: 32 }), (n, b) => {
      holds(heParams(n, b));
    }), { numRuns: 200 });
  });

  it('refuses bad n and b, unknown sets and malformed specs with HE_ERR_BAD_PARAMS', () => {
    for (const n of [0, -1, 1.5, HE_MAX_SITES + 1, Number.NaN]) expect(code(() => heParams(n, 8))).to.equal('HE_ERR_BAD_PARAMS');
    for (const b of [0, 33, 2.5]) expect(code(() => heParams(4, b))).to.equal('HE_ERR_BAD_PARAMS');
    expect(code(() => heParams(4, 8, { set: 'ckks-1' }))).to.equal('HE_ERR_BAD_PARAMS');
    expect(code(() => heParams(4, 8, { set: { polyModulusDegree: 3000, coeffModulusBits: [40] } }))).to.equal('HE_ERR_BAD_PARAMS');
    expect(code(() => heParams(4, 8, { set: { polyModulusDegree: 4096, coeffModulusBits: [61] } }))).to.equal('HE_ERR_BAD_PARAMS');
    expect(code(() => heParams(4, 8, { set: { polyModulusDegree: 4096, coeffModulusBits: [] } }))).to.equal('HE_ERR_BAD_PARAMS');
  });

  it('refuses a set below 128-bit security with HE_ERR_INSECURE', () => {
    expect(code(() => heParams(4, 8, { set: { polyModulusDegree: 4096, coeffModulusBits: [60, 50] } }))).to.equal('HE_ERR_INSECURE');
    expect(code(() => heParams(4, 8, { set: { polyModulusDegree: 2048, coeffModulusBits: [55] } }))).to.equal('HE_ERR_INSECURE');
    // 109 bits is SEAL's bound at N = 4096: allowed.
    const p = heParams(4, 8, { set: { polyModulusDegree: 4096, coeffModulusBits: [54, 55] } });
    expect(p.set).to.equal('custom');
    holds(p);
  });

  it('refuses a set whose noise room is too small with HE_ERR_WRAP_RISK', () => {
    // N = 1024 and one 27-bit prime: 44·n·t fits for tiny sums only.
    holds(heParams(10, 8, { set: { polyModulusDegree: 1024, coeffModulusBits: [27] } }));
    expect(code(() => heParams(10, 16, { set: { polyModulusDegree: 1024, coeffModulusBits: [27] } }))).to.equal('HE_ERR_WRAP_RISK');
  });

  it('the digest names the whole set, n and b included', () => {
    const a = Buffer.from(paramsDigest(heParams(10, 16))).toString('hex');
    expect(Buffer.from(paramsDigest(heParams(10, 16))).toString('hex')).to.equal(a);
    expect(Buffer.from(paramsDigest(heParams(11, 16))).toString('hex')).to.not.equal(a);
    expect(Buffer.from(paramsDigest(heParams(10, 15))).toString('hex')).to.not.equal(a);
  });

  it('agrees with SEAL: the 128-bit table, CoeffModulus.Create and PlainModulus.Batching', async () => {
    const { lib } = await loadSeal();
    for (const [N, bits] of Object.entries(MAX_COEFF_BITS_128)) {
      expect(lib.CoeffModulus.MaxBitCount(Number(N), lib.SecurityLevel.tc128), `N = ${N}`).to.equal(bits);
    }
    for (const spec of Object.values(HE_SETS)) {
      const v = lib.CoeffModulus.Create(spec.polyModulusDegree, Int32Array.from(spec.coeffModulusBits));
      const parms = lib.EncryptionParameters(lib.SchemeType.bgv);
      try {
        parms.setPolyModulusDegree(spec.polyModulusDegree);
        parms.setCoeffModulus(v);
        expect([...parms.coeffModulus]).to.deep.equal(heParams(1, 8, { set: spec }).coeffModulus);
      } finally {
        parms.delete();
        v.delete();
      }
    }
    for (const [N, bits] of [[4096, 17], [4096, 30], [4096, 43], [8192, 44], [8192, 53]] as const) {
      const m = lib.PlainModulus.Batching(N, bits);
      try {
        expect(m.value, `N = ${N}, ${bits} bits`).to.equal(batchingPrimes(N, bits, 1)[0]);
      } finally {
        m.delete();
      }
    }
  });
});
