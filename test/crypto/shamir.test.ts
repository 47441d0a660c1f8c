import { expect } from 'chai';
import { CountingRng, DeterministicRng, type Rng } from '../../src/crypto/rng.js';
import {
  isShamirShare, LagrangeCache, SHAMIR_LIMBS, SHAMIR_MAX_X, SHAMIR_PRIME, SHAMIR_SHARE_BYTES, lagrangeAtZero, modInverse,
  shamirCombine, shamirSplit,
} from '../../src/crypto/shamir.js';
import { setShamirBackend } from '../../src/crypto/_shamirKernel.js';
import { CryptoError, ValidationError } from '../../src/errors.js';

const P = SHAMIR_PRIME;
const PB = BigInt(P);

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const secretOf = (seed: string): Uint8Array => new DeterministicRng(seed).bytes(32);
const words = (share: Uint8Array): number[] => {
  const dv = new DataView(share.buffer, share.byteOffset, share.byteLength);
  return Array.from({ length: SHAMIR_LIMBS }, (_, l) => dv.getUint32(4 * l, false));
};
const shareOf = (ws: readonly number[]): Uint8Array => {
  const out = new Uint8Array(SHAMIR_SHARE_BYTES);
  ws.forEach((w, l) => new DataView(out.buffer).setUint32(4 * l, w, false));
  return out;
};
/** The 11 limbs of a secret (spec §3.8): 3-byte big-endian limbs, the last one 2 bytes. */
const limbsOf = (s: Uint8Array): number[] =>
  Array.from({ length: SHAMIR_LIMBS }, (_, l) => (l < 10 ? (s[3 * l]! << 16) | (s[3 * l + 1]! << 8) | s[3 * l + 2]! : (s[30]! << 8) | s[31]!));
const modp = (v: bigint): bigint => ((v % PB) + PB) % PB;

/**
 * Reference sharing with BigInt: decodes the coefficient words of the spec
 * (low 25 bits of each 4-byte big-endian word, skipped when ≥ p; limb 0's
 * a_1..a_{t−1}, then limb 1's, …) and evaluates every f_l at x directly.
 */
function referenceSplit(secret: Uint8Array, t: number, xs: readonly number[], rng: Rng): Uint8Array[] {
  const coeffs: bigint[] = [];
  while (coeffs.length < SHAMIR_LIMBS * (t - 1)) {
    const w = rng.bytes(4);
    const v = new DataView(w.buffer, w.byteOffset, 4).getUint32(0, false) & 0x1ffffff;
    if (v < P) coeffs.push(BigInt(v));
  }
  const s = limbsOf(secret);
  return xs.map((x) => shareOf(s.map((sl, l) => {
    let y = BigInt(sl), xp = 1n;
    for (let i = 1; i < t; i++) { xp = (xp * BigInt(x)) % PB; y += coeffs[l * (t - 1) + i - 1]! * xp; }
    return Number(y % PB);
  })));
}

/** An Rng that repeats fixed 4-byte words. */
class WordRng implements Rng {
  private i = 0;
  constructor(private readonly ws: readonly number[]) {}
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    const dv = new DataView(out.buffer);
    for (let o = 0; o < n; o += 4) dv.setUint32(o, this.ws[this.i++ % this.ws.length]!, false);
    return out;
  }
}

function expectCode(f: () => unknown, cls: typeof ValidationError | typeof CryptoError, code: string, message?: string): void {
  try { f(); } catch (e) {
    expect(e).to.be.instanceOf(cls);
    expect((e as ValidationError).code).to.equal(code);
    if (message !== undefined) expect((e as Error).message).to.equal(message);
    return;
  }
  expect.fail('did not throw');
}

describe('crypto/shamir', () => {
  it('p = 2^25 − 39 is prime and the largest prime below 2^25', () => {
    const isPrime = (n: number): boolean => { for (let d = 2; d * d <= n; d++) if (n % d === 0) return false; return n > 1; };
    expect(P).to.equal(2 ** 25 - 39);
    expect(isPrime(P)).to.equal(true);
    for (let c = P + 1; c < 2 ** 25; c++) expect(isPrime(c), `candidate ${c}`).to.equal(false);
    expect(SHAMIR_MAX_X).to.be.below(P);
    expect(SHAMIR_SHARE_BYTES).to.equal(44);
  });

  it('modInverse inverts and rejects zero', () => {
    for (const a of [1, 2, 39, P - 1, 2 ** 24 + 12345, SHAMIR_MAX_X]) expect(Number((BigInt(a) * BigInt(modInverse(a))) % PB)).to.equal(1);
    expectCode(() => modInverse(P), CryptoError, 'SHAMIR_ERR_INCONSISTENT');
    expectCode(() => modInverse(0), CryptoError, 'SHAMIR_ERR_INCONSISTENT');
  });

  it('shares equal the BigInt reference evaluation of the specified polynomials', () => {
    for (const [t, xs, seed] of [
      [1, [5], 'a'], [2, [1, 2, 3], 'b'], [3, [5, 9, 13, SHAMIR_MAX_X], 'c'], [40, Array.from({ length: 45 }, (_, i) => SHAMIR_MAX_X - 3 * i), 'd'],
      [300, Array.from({ length: 300 }, (_, i) => 1 + 55_001 * i), 'e'],
    ] as const) {
      const secret = secretOf(`ref-${seed}`);
      const got = shamirSplit(secret, t, xs, new DeterministicRng(`coeffs-${seed}`));
      // The polynomials do not depend on the holders: check the first and last few against the reference.
      const some = [0, 1, 2, xs.length - 2, xs.length - 1].filter((i, j, a) => i >= 0 && i < xs.length && a.indexOf(i) === j);
      const want = referenceSplit(secret, t, some.map((i) => xs[i]!), new DeterministicRng(`coeffs-${seed}`));
      expect(some.map((i) => hex(got[i]!)), `t=${t}`).to.deep.equal(want.map(hex));
    }
  });

  it('the float kernel stays exact at the extreme coefficients (±(p−1)/2, p−1) and ids near 2^24', () => {
    // Balanced magnitudes (p−1)/2 and −(p−1)/2 and the value p−1 = −1 maximise |product| and |sum|.
    const extreme = [(P - 1) / 2, (P + 1) / 2, P - 1];
    const secret = new Uint8Array(32).fill(0xff);
    try {
      for (const backend of ['wasm', 'js'] as const) {
        setShamirBackend(backend);
        for (const t of [29, 30, 31, 60, 61, 97]) {
          const xs = Array.from({ length: t }, (_, i) => SHAMIR_MAX_X - 5 * i);
          const got = shamirSplit(secret, t, xs, new WordRng(extreme));
          const some = [0, 1, 2, t - 1];
          expect(some.map((i) => hex(got[i]!)), `${backend}, t=${t}`).to.deep.equal(referenceSplit(secret, t, some.map((i) => xs[i]!), new WordRng(extreme)).map(hex));
        }
      }
    } finally {
      setShamirBackend('wasm');
    }
  });

  it('the WebAssembly and JavaScript kernels give the same shares', () => {
    try {
      expect(setShamirBackend('wasm')).to.equal('wasm'); // Node 20+ has WebAssembly SIMD
      const run = (t: number, xs: number[], seed: string): string[] => shamirSplit(secretOf(seed), t, xs, new DeterministicRng(seed)).map(hex);
      const a = Array.from({ length: 101 }, (_, i) => SHAMIR_MAX_X - 7 * i);
      const b = a.map((x) => x - 1);
      // Many Horner blocks of 30 coefficients.
      const big = Array.from({ length: 2101 }, (_, i) => 1 + 7919 * i);
      const cases: [number, number[], string][] = [[1, a, 'w0'], [30, a, 'w1'], [31, a, 'w2'], [50, b, 'w3'], [90, a, 'w4'], [101, a, 'w5'], [2000, big, 'w6'], [2, b.slice(0, 2), 'w7']];
      const wasm = cases.map(([t, xs, seed]) => run(t, xs, seed));
      expect(setShamirBackend('js')).to.equal('js');
      const js = cases.map(([t, xs, seed]) => run(t, xs, seed));
      expect(wasm).to.deep.equal(js);
      // Spot-check the long case against the reference.
      const some = [0, 1000, 2100];
      expect(some.map((i) => wasm[6]![i])).to.deep.equal(referenceSplit(secretOf('w6'), 2000, some.map((i) => big[i]!), new DeterministicRng('w6')).map(hex));
    } finally {
      setShamirBackend('wasm');
    }
  });

  it('draws coefficients by rejection: words whose low 25 bits are ≥ p are skipped', () => {
    // 0x01ffffd9 has low bits p, 0xffffffff has 2^25 − 1: both skipped; 0xfe000003 gives 3.
    const rng = new WordRng([0x01ffffd9, 0xffffffff, 0xfe000003]);
    const secret = new Uint8Array(32);
    const ys = shamirSplit(secret, 2, [1, 10], rng);
    // Every limb's a_1 is 3 and s_l = 0, so f_l(x) = 3x.
    expect(words(ys[0]!)).to.deep.equal(new Array(SHAMIR_LIMBS).fill(3));
    expect(words(ys[1]!)).to.deep.equal(new Array(SHAMIR_LIMBS).fill(30));
    // 11 coefficients needed, 3 words drawn per accepted one.
    const counting = new (class implements Rng { n = 0; bytes(k: number) { this.n += k; return rng.bytes(k); } })();
    shamirSplit(secret, 2, [1, 10], counting);
    expect(counting.n).to.equal(4 * 3 * SHAMIR_LIMBS);
    // Without rejections the sharing reads exactly 4·11·(t−1) bytes.
    const plain = new (class implements Rng { n = 0; bytes(k: number) { this.n += k; return new Uint8Array(k); } })();
    shamirSplit(secret, 5, [1, 2, 3, 4, 5], plain);
    expect(plain.n).to.equal(4 * SHAMIR_LIMBS * 4);
  });

  it('split/combine round-trips for many (t, k) and every tested t-subset recovers', () => {
    const rng = new DeterministicRng('shamir-roundtrip');
    for (const [t, k] of [[1, 1], [1, 3], [2, 2], [2, 5], [3, 5], [5, 5], [4, 9], [7, 12], [16, 20], [33, 40]] as const) {
      const secret = secretOf(`s${t}-${k}`);
      const xs = Array.from({ length: k }, (_, i) => 1000 + 17 * i);
      const ys = shamirSplit(secret, t, xs, rng);
      expect(ys).to.have.length(k);
      for (const y of ys) { expect(y).to.have.length(SHAMIR_SHARE_BYTES); expect(isShamirShare(y)).to.equal(true); }
      for (let start = 0; start + t <= k; start++) {
        const idx = Array.from({ length: t }, (_, i) => start + i);
        expect(hex(shamirCombine(idx.map((i) => xs[i]!), idx.map((i) => ys[i]!), t))).to.equal(hex(secret));
      }
      const rev = Array.from({ length: t }, (_, i) => k - 1 - i);
      expect(hex(shamirCombine(rev.map((i) => xs[i]!), rev.map((i) => ys[i]!), t))).to.equal(hex(secret));
    }
  });

  it('all t-subsets of a 3-of-6 sharing recover the secret, ids up to 2^24 − 1', () => {
    const secret = secretOf('all-subsets');
    const xs = [1, 2, 3, SHAMIR_MAX_X - 2, SHAMIR_MAX_X - 1, SHAMIR_MAX_X];
    const ys = shamirSplit(secret, 3, xs, new CountingRng());
    let n = 0;
    for (let a = 0; a < 6; a++) for (let b = a + 1; b < 6; b++) for (let c = b + 1; c < 6; c++) {
      expect(hex(shamirCombine([xs[a]!, xs[b]!, xs[c]!], [ys[a]!, ys[b]!, ys[c]!], 3))).to.equal(hex(secret));
      n++;
    }
    expect(n).to.equal(20);
  });

  it('n = 1,000 holders at t = 500: random 500-subsets recover, 499 shares read as t = 499 do not', () => {
    const xs = Array.from({ length: 1000 }, (_, i) => 1 + 16_000 * i + (i % 7));
    const rng = new DeterministicRng('n1000');
    const cache = new LagrangeCache();
    const pick = new DeterministicRng('n1000-subsets');
    for (let rep = 0; rep < 2; rep++) {
      const secret = secretOf(`n1000-${rep}`);
      const ys = shamirSplit(secret, 500, xs, rng);
      // A random 500-subset (Fisher–Yates on a random permutation prefix).
      const idx = Array.from({ length: 1000 }, (_, i) => i);
      const r = pick.bytes(4 * 1000);
      for (let i = 999; i > 0; i--) {
        const j = new DataView(r.buffer).getUint32(4 * i) % (i + 1);
        [idx[i], idx[j]] = [idx[j]!, idx[i]!];
      }
      const sub = idx.slice(0, 500);
      expect(hex(shamirCombine(sub.map((i) => xs[i]!), sub.map((i) => ys[i]!), 500, cache))).to.equal(hex(secret));
      const last = Array.from({ length: 500 }, (_, i) => 500 + i);
      expect(hex(shamirCombine(last.map((i) => xs[i]!), last.map((i) => ys[i]!), 500, cache))).to.equal(hex(secret));
      // Interpolating only 499 shares yields a degree-498 polynomial's value, not the secret
      // (here the limbs are not even all in range, or some differ).
      const few = sub.slice(0, 499);
      let got: string | undefined;
      try { got = hex(shamirCombine(few.map((i) => xs[i]!), few.map((i) => ys[i]!), 499)); } catch (e) { expect((e as CryptoError).code).to.equal('SHAMIR_ERR_INCONSISTENT'); }
      expect(got).to.not.equal(hex(secret));
    }
  });

  it('t−1 shares reveal nothing: every candidate secret is consistent with them', () => {
    // For any t−1 shares and ANY candidate secret s', each limb has exactly one
    // polynomial of degree < t through (0, s'_l) and the t−1 points. Build the
    // t-th share of that polynomial by Lagrange interpolation (BigInt) and check
    // that recovery then gives s' with the t−1 real shares unchanged.
    const t = 4;
    const xs = [11, 22, 33, 44];
    const ys = shamirSplit(secretOf('real'), t, xs, new DeterministicRng('coeffs'));
    const known = [0, 1, 2];
    for (const candidate of [new Uint8Array(32), new Uint8Array(32).fill(0xff), secretOf('other'), secretOf('real')]) {
      const cl = limbsOf(candidate);
      const pts: [bigint, (l: number) => bigint][] = [
        [0n, (l) => BigInt(cl[l]!)],
        ...known.map((i) => [BigInt(xs[i]!), (l: number) => BigInt(words(ys[i]!)[l]!)] as [bigint, (l: number) => bigint]),
      ];
      const at = (x: bigint, l: number): number => {
        let s = 0n;
        for (let i = 0; i < pts.length; i++) {
          let num = 1n, den = 1n;
          for (let j = 0; j < pts.length; j++) if (j !== i) { num *= x - pts[j]![0]; den *= pts[i]![0] - pts[j]![0]; }
          s += pts[i]![1](l) * modp(num) * BigInt(modInverse(Number(modp(den))));
        }
        return Number(modp(s));
      };
      const forged = shareOf(Array.from({ length: SHAMIR_LIMBS }, (_, l) => at(44n, l)));
      const rec = shamirCombine(xs, [ys[0]!, ys[1]!, ys[2]!, forged], t);
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

  it('lagrangeAtZero matches the BigInt formula and its coefficients sum to 1', () => {
    const xs = [1, 2, 3, SHAMIR_MAX_X, 99999];
    const l = lagrangeAtZero(xs);
    expect(l.reduce((a, b) => (a + b) % P, 0)).to.equal(1);
    xs.forEach((xi, i) => {
      let num = 1n, den = 1n;
      for (const xj of xs) if (xj !== xi) { num *= BigInt(xj); den *= BigInt(xj - xi); }
      expect(BigInt(l[i]!), `λ_${i}`).to.equal(modp(num * BigInt(modInverse(Number(modp(den))))));
    });
  });

  it('handles 10,000 distinct indices ending at 2^24 − 1', () => {
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
    const V = 'SHAMIR_ERR_BAD_INPUT';
    expectCode(() => shamirSplit(new Uint8Array(31), 2, [1, 2], rng), ValidationError, V);
    expectCode(() => shamirSplit(s, 0, [1, 2], rng), ValidationError, V);
    expectCode(() => shamirSplit(s, 3, [1, 2], rng), ValidationError, V);
    expectCode(() => shamirSplit(s, 1.5, [1, 2], rng), ValidationError, V);
    expectCode(() => shamirSplit(s, 2, [1, 1], rng), ValidationError, V);
    expectCode(() => shamirSplit(s, 2, [0, 1], rng), ValidationError, V);
    expectCode(() => shamirSplit(s, 2, [1, SHAMIR_MAX_X + 1], rng), ValidationError, V, '"xs" expected integers in [1, 16777215], got 16777216');
    expectCode(() => shamirSplit(s, 2, [1, -3], rng), ValidationError, V);
    expectCode(() => shamirSplit(s, 1, [], rng), ValidationError, V);
    expectCode(() => shamirSplit(s, 2, [1, 2], { bytes: (n: number) => new Uint8Array(n - 1) }), ValidationError, V, 'rng returned the wrong number of bytes');
    const ys = shamirSplit(s, 2, [1, 2, 3], rng);
    expectCode(() => shamirCombine([1, 2, 3], ys, 2), ValidationError, V); // more than t
    expectCode(() => shamirCombine([1], [ys[0]!], 2), ValidationError, V); // fewer than t
    expectCode(() => shamirCombine([1, 2], [ys[0]!], 2), ValidationError, V);
    expectCode(() => shamirCombine([1, 2], [ys[0]!, ys[1]!.subarray(1)], 2), ValidationError, V);
    expectCode(() => shamirCombine([1, 1], [ys[0]!, ys[1]!], 2), ValidationError, V);
    expectCode(() => shamirCombine([1, SHAMIR_MAX_X + 1], [ys[0]!, ys[1]!], 2), ValidationError, V);
    expectCode(() => shamirCombine([1, 2], [ys[0]!, new Uint8Array(30)], 2), ValidationError, V,
      '"share" expected Uint8Array of length 44, got length=30 (index 1)');
    // A word ≥ p in any limb is refused, p itself included; p − 1 is accepted.
    for (let l = 0; l < SHAMIR_LIMBS; l++) {
      for (const w of [P, P + 1, 2 ** 25, 0xffffffff]) {
        const bad = shareOf(Array.from({ length: SHAMIR_LIMBS }, (_, j) => (j === l ? w : 0)));
        expect(isShamirShare(bad)).to.equal(false);
        expectCode(() => shamirCombine([1, 2], [ys[0]!, bad], 2), ValidationError, V, '"share" at index 1 has a word not below the field modulus');
      }
    }
    expect(isShamirShare(shareOf(new Array(SHAMIR_LIMBS).fill(P - 1)))).to.equal(true);
    // Constant polynomials whose value at 0 is not a valid limb: 2^24 in limbs 0..9,
    // 2^16 in limb 10. No sharing of a 32-byte secret produces these shares.
    for (let l = 0; l < SHAMIR_LIMBS; l++) {
      const bound = l < 10 ? 2 ** 24 : 2 ** 16;
      const c = shareOf(Array.from({ length: SHAMIR_LIMBS }, (_, j) => (j === l ? bound : 0)));
      expectCode(() => shamirCombine([1, 2], [c, c], 2), CryptoError, 'SHAMIR_ERR_INCONSISTENT');
      const ok = shareOf(Array.from({ length: SHAMIR_LIMBS }, (_, j) => (j === l ? bound - 1 : 0)));
      expect(limbsOf(shamirCombine([1, 2], [ok, ok], 2))[l]).to.equal(bound - 1);
    }
  });
});
