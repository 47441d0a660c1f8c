/**
 * he-sum-v1 masks mod t (src/he/masks.ts): the reduction matches a BigInt
 * reference (random keys, edge lanes, the largest t), masks cancel mod t, and
 * 10^6 entries reduce in well under a second.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { nativeProvider } from '../../src/crypto/native.js';
import { counterBlockAt } from '../../src/crypto/mask.js';
import { TallyError } from '../../src/errors.js';
import { expandMaskModT, maskModT, MASK_T_LIMIT, reduceLanes, sumModT } from '../../src/he/masks.js';
import { heParams } from '../../src/he/params.js';

const p = nativeProvider;

/** The spec's definition, in BigInt: entry i = (w[4i] + w[4i+1]·2^32 + w[4i+2]·2^64 + w[4i+3]·2^96) mod t. */
function reference(key: Uint8Array, dim: number, t: bigint): bigint[] {
  const bytes = new Uint8Array(16 * dim);
  p.aes128Ctr(key, counterBlockAt(0)).fill(bytes);
  const dv = new DataView(bytes.buffer);
  return Array.from({ length: dim }, (_, i) => {
    let v = 0n;
    for (let j = 3; j >= 0; j--) v = (v << 32n) + BigInt(dv.getUint32(16 * i + 4 * j, true));
    return v % t;
  });
}

describe('he: masks mod t', () => {
  const moduli = [65537n, heParams(10, 16).plainModulus, heParams(20, 32).plainModulus, heParams(2 ** 18, 32).plainModulus, 4503599627370449n /* a prime < 2^52 */];

  it('matches the BigInt reference of the spec for every t, random keys', () => {
    for (const t of moduli) {
      for (let k = 0; k < 3; k++) {
        const key = randomBytes(16);
        const got = expandMaskModT(key, 300, t, p);
        expect(Array.from(got, (x) => BigInt(x)), `t=${t}`).to.deep.equal(reference(key, 300, t));
      }
    }
  });

  it('reduces signed sums of many terms exactly (lanes at their extremes)', () => {
    const t = 4503599627370449;
    const tH = Math.floor(t / 2 ** 26), tL = t - tH * 2 ** 26;
    const big = (a: number[]) => ((a.reduce((s, x, j) => s + BigInt(x) * (1n << BigInt(32 * j)), 0n) % BigInt(t)) + BigInt(t)) % BigInt(t);
    const edge = [0, 1, -1, 2 ** 52, -(2 ** 52), 2 ** 32 - 1, -(2 ** 32), 123456789012345];
    for (const a0 of edge) for (const a1 of edge) for (const a3 of edge) {
      const lanes = [a0, a1, -a0, a3];
      expect(BigInt(reduceLanes(lanes[0]!, lanes[1]!, lanes[2]!, lanes[3]!, t, tH, tL))).to.equal(big(lanes));
    }
  });

  it('masks cancel: x + m1 − m1 + m2 − m2 ≡ x, and a masked sum of two sites is the sum', () => {
    const t = heParams(10, 16).plainModulus;
    const x = Uint32Array.from({ length: 1000 }, (_, i) => i * 37 % 65536);
    const k1 = randomBytes(16), k2 = randomBytes(16);
    const y1 = maskModT(x, [{ key: k1, sign: 1 }, { key: k2, sign: -1 }], t, p);
    const y2 = maskModT(x, [{ key: k2, sign: 1 }, { key: k1, sign: -1 }], t, p);
    const T = Number(t);
    y1.forEach((v, i) => expect((v + y2[i]!) % T).to.equal(2 * x[i]! % T));
    expect(y1.some((v, i) => v !== x[i])).to.equal(true);
  });

  it('refuses a t it cannot reduce exactly and bad keys, with typed errors', () => {
    const code = (f: () => unknown) => { try { f(); } catch (e) { expect(e).to.be.instanceOf(TallyError); return (e as TallyError).code; } return 'none'; };
    expect(code(() => sumModT(4, MASK_T_LIMIT, p, []))).to.equal('HE_ERR_BAD_PARAMS');
    expect(code(() => sumModT(4, 1, p, []))).to.equal('HE_ERR_BAD_PARAMS');
    expect(code(() => sumModT(4, 65537, p, [{ key: new Uint8Array(15), sign: 1 }]))).to.equal('HE_ERR_BAD_INPUT');
    expect(code(() => sumModT(4, 65537, p, [], new Uint32Array(3)))).to.equal('HE_ERR_BAD_INPUT');
    expect(code(() => sumModT(0, 65537, p, []))).to.equal('HE_ERR_BAD_INPUT');
  });

  it('a sum of many masks over several windows equals the sum of each reduced alone', () => {
    const t = heParams(20, 32).plainModulus;
    const T = BigInt(t);
    const dim = 10_000; // three windows of 4096
    const terms = Array.from({ length: 7 }, (_, i) => ({ key: randomBytes(16), sign: (i % 3 === 0 ? -1 : 1) as 1 | -1 }));
    const x = Uint32Array.from({ length: dim }, (_, i) => (i * 2654435761) >>> 0);
    const got = sumModT(dim, t, p, terms, x);
    const each = terms.map((term) => expandMaskModT(term.key, dim, t, p));
    for (const i of [0, 1, 4095, 4096, 8191, 8192, 9999]) {
      let want = BigInt(x[i]!);
      terms.forEach((term, k) => { want += BigInt(term.sign) * BigInt(each[k]![i]!); });
      expect(BigInt(got[i]!), `entry ${i}`).to.equal(((want % T) + T) % T);
    }
  });

  it('reduces 10^6 entries in under a second', () => {
    const t = heParams(20, 32).plainModulus;
    const t0 = performance.now();
    const r = sumModT(1_000_000, t, p, [{ key: randomBytes(16), sign: 1 }]);
    const s = (performance.now() - t0) / 1000;
    expect(r.length).to.equal(1_000_000);
    expect(s).to.be.below(1);
  });
});
