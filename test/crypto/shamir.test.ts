import { expect } from 'chai';
import { CountingRng, DeterministicRng } from '../../src/crypto/rng.js';
import {
  LagrangeCache, SHAMIR_MAX_X, SHAMIR_PRIME, lagrangeAtZero, modInverse, shamirCombine, shamirSplit,
} from '../../src/crypto/shamir.js';
import { CryptoError, ValidationError } from '../../src/errors.js';

const P = SHAMIR_PRIME;

function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n; b %= m;
  while (e > 0n) { if (e & 1n) r = (r * b) % m; b = (b * b) % m; e >>= 1n; }
  return r;
}

/** Miller-Rabin with the given bases: false means certainly composite. */
function millerRabin(n: bigint, bases: readonly bigint[]): boolean {
  let d = n - 1n, s = 0n;
  while ((d & 1n) === 0n) { d >>= 1n; s++; }
  outer: for (const a of bases) {
    let x = modPow(a, d, n);
    if (x === 1n || x === n - 1n) continue;
    for (let r = 1n; r < s; r++) {
      x = (x * x) % n;
      if (x === n - 1n) continue outer;
    }
    return false;
  }
  return true;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const big = (b: Uint8Array): bigint => BigInt('0x' + hex(b));
const bytes33 = (v: bigint): Uint8Array => Uint8Array.from(Buffer.from(v.toString(16).padStart(66, '0'), 'hex'));
const secretOf = (seed: string): Uint8Array => new DeterministicRng(seed).bytes(32);

describe('crypto/shamir', () => {
  it('p = 2^256 + 297 is the smallest prime above 2^256 (Miller-Rabin)', () => {
    const bases: bigint[] = [];
    for (let a = 2n; bases.length < 64; a++) bases.push(a);
    expect(P).to.equal(2n ** 256n + 297n);
    expect(millerRabin(P, bases)).to.equal(true);
    // Every candidate in (2^256, p) is composite: an MR witness proves it.
    for (let c = 2n ** 256n + 1n; c < P; c += 2n) expect(millerRabin(c, bases), `candidate ${c}`).to.equal(false);
  });

  it('modInverse inverts and rejects zero', () => {
    for (const a of [1n, 2n, 297n, P - 1n, 2n ** 255n + 12345n]) expect((a * modInverse(a)) % P).to.equal(1n);
    expect(() => modInverse(P)).to.throw(CryptoError);
  });

  it('split/combine round-trips for many (t, k) and every tested t-subset recovers', () => {
    const rng = new DeterministicRng('shamir-roundtrip');
    for (const [t, k] of [[1, 1], [1, 3], [2, 2], [2, 5], [3, 5], [5, 5], [4, 9], [7, 12], [16, 20]] as const) {
      const secret = secretOf(`s${t}-${k}`);
      const xs = Array.from({ length: k }, (_, i) => 1000 + 17 * i);
      const ys = shamirSplit(secret, t, xs, rng);
      expect(ys).to.have.length(k);
      for (const y of ys) expect(y).to.have.length(33);
      // sliding windows and a strided subset
      for (let start = 0; start + t <= k; start++) {
        const idx = Array.from({ length: t }, (_, i) => start + i);
        expect(hex(shamirCombine(idx.map((i) => xs[i]!), idx.map((i) => ys[i]!), t))).to.equal(hex(secret));
      }
      const rev = Array.from({ length: t }, (_, i) => k - 1 - i);
      expect(hex(shamirCombine(rev.map((i) => xs[i]!), rev.map((i) => ys[i]!), t))).to.equal(hex(secret));
    }
  });

  it('all t-subsets of a 3-of-6 sharing recover the secret', () => {
    const secret = secretOf('all-subsets');
    const xs = [1, 2, 3, 0xfffffffd, 0xfffffffe, SHAMIR_MAX_X];
    const ys = shamirSplit(secret, 3, xs, new CountingRng());
    let n = 0;
    for (let a = 0; a < 6; a++) for (let b = a + 1; b < 6; b++) for (let c = b + 1; c < 6; c++) {
      expect(hex(shamirCombine([xs[a]!, xs[b]!, xs[c]!], [ys[a]!, ys[b]!, ys[c]!], 3))).to.equal(hex(secret));
      n++;
    }
    expect(n).to.equal(20);
  });

  it('shares are the polynomial with coefficients = 48 rng bytes mod p', () => {
    const secret = secretOf('poly');
    const r = new CountingRng();
    const ys = shamirSplit(secret, 3, [5, 9, 13], r);
    const ref = new CountingRng();
    const a1 = big(ref.bytes(48)) % P, a2 = big(ref.bytes(48)) % P;
    const f = (x: bigint): bigint => (big(secret) + a1 * x + a2 * x * x) % P;
    expect(big(ys[0]!)).to.equal(f(5n));
    expect(big(ys[1]!)).to.equal(f(9n));
    expect(big(ys[2]!)).to.equal(f(13n));
  });

  it('t−1 shares reveal nothing: every candidate secret is consistent with them', () => {
    // For a fixed set of t−1 shares and ANY candidate secret s', there is exactly one
    // polynomial of degree < t through (0, s') and the t−1 points: adding the share at 0
    // and interpolating must reproduce s' and the given shares.
    const t = 3;
    const xs = [11, 22, 33];
    const ys = shamirSplit(secretOf('real'), t, xs, new DeterministicRng('coeffs'));
    const known = [0, 1]; // t−1 = 2 shares
    for (const cand of ['00', 'ff', '7f', '01']) {
      const candidate = new Uint8Array(32).fill(parseInt(cand, 16));
      // Build the unique polynomial through (0, s') and the two known shares, evaluate at x=33
      // via Lagrange over the points {0, 11, 22} (computed directly with BigInt).
      const pts: [bigint, bigint][] = [[0n, big(candidate)], [11n, big(ys[known[0]!]!)], [22n, big(ys[known[1]!]!)]];
      const at = (x: bigint): bigint => {
        let s = 0n;
        for (let i = 0; i < 3; i++) {
          let num = 1n, den = 1n;
          for (let j = 0; j < 3; j++) if (j !== i) { num = num * (x - pts[j]![0]); den = den * (pts[i]![0] - pts[j]![0]); }
          s = (s + pts[i]![1] * ((num % P + P) % P) * modInverse((den % P + P) % P)) % P;
        }
        return s;
      };
      const y3 = at(33n);
      const rec = shamirCombine([11, 22, 33], [ys[0]!, ys[1]!, bytes33(y3)], 3);
      expect(hex(rec)).to.equal(hex(candidate));
    }
  });

  it('LagrangeCache computes once per index set (order-independent) and reuses', () => {
    const cache = new LagrangeCache();
    const xs = [7, 3, 100, 42];
    const rng = new DeterministicRng('cache');
    for (let i = 0; i < 5; i++) {
      const secret = secretOf(`c${i}`);
      const ys = shamirSplit(secret, 4, xs, rng);
      const order = i % 2 === 0 ? [0, 1, 2, 3] : [3, 1, 0, 2];
      expect(hex(shamirCombine(order.map((j) => xs[j]!), order.map((j) => ys[j]!), 4, cache))).to.equal(hex(secret));
    }
    expect(cache.misses).to.equal(1);
    expect(cache.hits).to.equal(4);
    expect(cache.size).to.equal(1);
    expect(cache.coefficients([3, 7, 42, 100])).to.deep.equal(lagrangeAtZero([3, 7, 42, 100]));
    cache.coefficients([3, 7, 42, 101]);
    expect(cache.misses).to.equal(2);
  });

  it('lagrangeAtZero coefficients sum to 1 (interpolating the constant 1)', () => {
    const l = lagrangeAtZero([1, 2, 3, SHAMIR_MAX_X, 99999]);
    expect(l.reduce((a, b) => (a + b) % P, 0n)).to.equal(1n);
  });

  it('handles 10,000 distinct indices and indices near 2^32 − 1', () => {
    const xs = Array.from({ length: 10000 }, (_, i) => SHAMIR_MAX_X - i);
    const secret = secretOf('big');
    const ys = shamirSplit(secret, 2, xs, new DeterministicRng('big'));
    expect(ys).to.have.length(10000);
    expect(hex(shamirCombine([xs[9999]!, xs[0]!], [ys[9999]!, ys[0]!], 2))).to.equal(hex(secret));
    expect(hex(shamirCombine([xs[1]!, xs[2]!], [ys[1]!, ys[2]!], 2))).to.equal(hex(secret));
  });

  it('rejects invalid inputs with typed errors', () => {
    const rng = new CountingRng();
    const s = new Uint8Array(32);
    const bad = (f: () => unknown, cls: typeof ValidationError | typeof CryptoError, code: string): void => {
      try { f(); } catch (e) {
        expect(e).to.be.instanceOf(cls);
        expect((e as ValidationError).code).to.equal(code);
        return;
      }
      expect.fail('did not throw');
    };
    const V = 'SHAMIR_ERR_BAD_INPUT';
    bad(() => shamirSplit(new Uint8Array(31), 2, [1, 2], rng), ValidationError, V);
    bad(() => shamirSplit(s, 0, [1, 2], rng), ValidationError, V);
    bad(() => shamirSplit(s, 3, [1, 2], rng), ValidationError, V);
    bad(() => shamirSplit(s, 1.5, [1, 2], rng), ValidationError, V);
    bad(() => shamirSplit(s, 2, [1, 1], rng), ValidationError, V);
    bad(() => shamirSplit(s, 2, [0, 1], rng), ValidationError, V);
    bad(() => shamirSplit(s, 2, [1, 2 ** 32], rng), ValidationError, V);
    bad(() => shamirSplit(s, 2, [1, -3], rng), ValidationError, V);
    bad(() => shamirSplit(s, 1, [], rng), ValidationError, V);
    const ys = shamirSplit(s, 2, [1, 2, 3], rng);
    bad(() => shamirCombine([1, 2, 3], ys, 2), ValidationError, V); // more than t
    bad(() => shamirCombine([1], [ys[0]!], 2), ValidationError, V); // fewer than t
    bad(() => shamirCombine([1, 2], [ys[0]!], 2), ValidationError, V);
    bad(() => shamirCombine([1, 2], [ys[0]!, ys[1]!.subarray(1)], 2), ValidationError, V);
    bad(() => shamirCombine([1, 1], [ys[0]!, ys[1]!], 2), ValidationError, V);
    bad(() => shamirCombine([1, 2], [ys[0]!, bytes33(P)], 2), ValidationError, V);
    try { shamirCombine([1, 2], [ys[0]!, new Uint8Array(30)], 2); } catch (e) {
      expect((e as Error).message).to.equal('"share" expected Uint8Array of length 33, got length=30 (index 1)');
    }
    // The constant polynomial 2^256 + 5 is a valid field polynomial but its value at 0
    // does not fit 32 bytes: no sharing of a 32-byte secret produces these shares.
    const c = bytes33(2n ** 256n + 5n);
    bad(() => shamirCombine([1, 2], [c, c], 2), CryptoError, 'SHAMIR_ERR_INCONSISTENT');
  });
});
