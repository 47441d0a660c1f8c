import { expect } from 'chai';
import { ValidationError } from '../../src/errors.js';
import {
  findSecAggPlusParams, lnHypergeomPmf, log2DisconnectBound, validateThreshold, type Threat,
} from '../../src/secagg/params.js';

// Independent exact arithmetic: binomials as BigInt, log2 of a ratio from the leading bits.
function choose(a: number, b: number): bigint {
  if (b < 0 || b > a) return 0n;
  let r = 1n;
  for (let i = 0; i < b; i++) r = (r * BigInt(a - i)) / BigInt(i + 1);
  return r;
}
function log2Ratio(num: bigint, den: bigint): number {
  if (num === 0n) return -Infinity;
  const shift = (x: bigint): [number, number] => {
    const bits = x.toString(2).length;
    const s = Math.max(0, bits - 60);
    return [Number(x >> BigInt(s)), s];
  };
  const [a, sa] = shift(num), [b, sb] = shift(den);
  return Math.log2(a) - Math.log2(b) + sa - sb;
}
/** log2 Pr[X ≥ lo] or Pr[X < hi], X ~ Hypergeom(pop, marked, draws), exactly. */
function log2Tail(pop: number, marked: number, draws: number, from: number, to: number): number {
  let num = 0n;
  for (let x = Math.max(0, from); x <= Math.min(to, draws); x++) num += choose(marked, x) * choose(pop - marked, draws - x);
  return log2Ratio(num, choose(pop, draws));
}

/** Re-checks the three bounds the finder promises, with the exact arithmetic above. */
function checkOwnBounds(n: number, gamma: number, delta: number, k: number, t: number, threat: Threat, sigma = 40, eta = 20): void {
  const corrupt = Math.floor(gamma * n + 1e-12), dropped = Math.floor(delta * n + 1e-12);
  const bad = corrupt + dropped;
  const pairs = (n * (n - k - 1)) / 2;
  const disc = bad < k ? -Infinity : Math.log2(pairs) + log2Ratio(choose(n - k, bad - k), choose(n, bad));
  expect(disc, 'disconnect').to.be.at.most(-(sigma + 1));
  // Malicious: the client's own b-share counts too, so a lying server needs only 2t − k − 1 corrupt neighbours.
  const tAdv = threat === 'malicious' ? 2 * t - k - 1 : t;
  expect(Math.log2(n) + log2Tail(n - 1, corrupt, k, tAdv, k), 'privacy').to.be.at.most(-(sigma + 1));
  expect(Math.log2(n) + log2Tail(n - 1, n - 1 - dropped, k, 0, t - 1), 'correctness').to.be.at.most(-eta);
}

const code = (f: () => unknown): string => {
  try { f(); } catch (e) { expect(e).to.be.instanceOf(ValidationError); return (e as ValidationError).code; }
  return 'no throw';
};

describe('secagg/params', () => {
  it('lnHypergeomPmf and log2DisconnectBound agree with exact arithmetic', () => {
    for (const [pop, marked, draws, x] of [[99, 10, 20, 3], [999, 50, 40, 0], [999, 900, 40, 35], [5000, 300, 100, 12]]) {
      const exact = log2Ratio(choose(marked!, x!) * choose(pop! - marked!, draws! - x!), choose(pop!, draws!));
      expect(lnHypergeomPmf(pop!, marked!, draws!, x!) / Math.LN2).to.be.closeTo(exact, 1e-9);
    }
    const n = 300, k = 10, bad = 60;
    const exact = Math.log2((n * (n - k - 1)) / 2) + log2Ratio(choose(n - k, bad - k), choose(n, bad));
    expect(log2DisconnectBound(n, k, bad)).to.be.closeTo(exact, 1e-9);
    expect(log2DisconnectBound(n, k, k - 1)).to.equal(-Infinity);
  });

  it('finder outputs meet their own bounds (re-checked exactly) and k − 2 does not', () => {
    const cases: [number, number, number, Threat][] = [
      [1000, 0.05, 0.1, 'semi-honest'], [500, 0.1, 0.2, 'semi-honest'], [300, 0.2, 0.1, 'semi-honest'],
      [1000, 0.05, 0.05, 'malicious'], [2000, 0.01, 0.3, 'semi-honest'],
    ];
    for (const [n, g, d, threat] of cases) {
      const p = findSecAggPlusParams({ n, corruptFraction: g, dropoutRate: d, threat });
      expect(p.graph, `${n} ${g} ${d}`).to.equal('harary');
      expect(p.k % 2).to.equal(0);
      checkOwnBounds(n, g, d, p.k, p.t, threat);
      expect(p.log2Bounds.privacy).to.be.at.most(-41);
      expect(p.log2Bounds.correctness).to.be.at.most(-20);
      validateThreshold({ n, k: p.k, t: p.t, threat });
      if (p.k > 2) {
        // Minimality: no threshold works at k − 2.
        const k = p.k - 2;
        let ok = false;
        for (let t = 2; t <= k && !ok; t++) {
          try { checkOwnBounds(n, g, d, k, t, threat); if (threat === 'semi-honest' || 3 * t > 2 * (k + 1)) ok = true; } catch { /* not feasible */ }
        }
        expect(ok, `k=${k} should fail for ${n} ${g} ${d}`).to.equal(false);
      }
    }
  });

  it('n = 1000 gets a Harary graph with k well below n', () => {
    const p = findSecAggPlusParams({ n: 1000, corruptFraction: 0.05, dropoutRate: 0.1 });
    expect(p.graph).to.equal('harary');
    expect(p.k).to.be.below(100);
    expect(p.t).to.be.within(2, p.k);
    expect(p.reason).to.include('smallest even degree');
  });

  it('more dropout or more corruption never lowers k', () => {
    let prev = 0;
    for (const d of [0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5]) {
      const p = findSecAggPlusParams({ n: 1000, corruptFraction: 0.05, dropoutRate: d });
      expect(p.k, `δ=${d}`).to.be.at.least(prev);
      prev = p.k;
    }
    expect(prev).to.be.greaterThan(findSecAggPlusParams({ n: 1000, corruptFraction: 0.05, dropoutRate: 0 }).k);
    prev = 0;
    for (const g of [0, 0.05, 0.1, 0.2, 0.3]) {
      const p = findSecAggPlusParams({ n: 1000, corruptFraction: g, dropoutRate: 0.1 });
      expect(p.k, `γ=${g}`).to.be.at.least(prev);
      prev = p.k;
    }
    // A stricter security parameter costs degree too.
    const a = findSecAggPlusParams({ n: 1000, corruptFraction: 0.1, dropoutRate: 0.1, sigma: 40 });
    const b = findSecAggPlusParams({ n: 1000, corruptFraction: 0.1, dropoutRate: 0.1, sigma: 80 });
    expect(b.k).to.be.greaterThan(a.k);
  });

  it('small n with heavy rates falls back to the complete graph with a sound threshold', () => {
    const p = findSecAggPlusParams({ n: 10, corruptFraction: 0.3, dropoutRate: 0.3 });
    expect(p.graph).to.equal('complete');
    expect(p.k).to.equal(9);
    expect(p.t).to.equal(6); // ⌊10/2⌋+1, within (3 corrupt, 6 surviving neighbours]
    const q = findSecAggPlusParams({ n: 50, corruptFraction: 0.2, dropoutRate: 0.4 });
    expect(q.graph).to.equal('complete');
    expect(q.t).to.equal(26);
    const r = findSecAggPlusParams({ n: 20, corruptFraction: 0.1, dropoutRate: 0.6 });
    expect(r.graph).to.equal('complete');
    expect(r.t).to.equal(7); // default 11 lowered to the 19 − 12 = 7 surviving neighbours
    const m = findSecAggPlusParams({ n: 12, corruptFraction: 0.25, dropoutRate: 0.1, threat: 'malicious' });
    expect(m.graph).to.equal('complete');
    expect(m.t).to.equal(9); // ⌊2·12/3⌋+1
    validateThreshold({ n: 12, k: m.k, t: m.t, threat: 'malicious' });
  });

  it('rejects bad inputs and infeasible settings', () => {
    const B = 'SECAGG_ERR_BAD_PARAMS';
    expect(code(() => findSecAggPlusParams({ n: 2, corruptFraction: 0, dropoutRate: 0 }))).to.equal(B);
    expect(code(() => findSecAggPlusParams({ n: 100.5, corruptFraction: 0, dropoutRate: 0 }))).to.equal(B);
    expect(code(() => findSecAggPlusParams({ n: 100, corruptFraction: -0.1, dropoutRate: 0 }))).to.equal(B);
    expect(code(() => findSecAggPlusParams({ n: 100, corruptFraction: 0, dropoutRate: 1 }))).to.equal(B);
    expect(code(() => findSecAggPlusParams({ n: 100, corruptFraction: 0.5, dropoutRate: 0.5 }))).to.equal(B);
    expect(code(() => findSecAggPlusParams({ n: 100, corruptFraction: 0.1, dropoutRate: 0.1, sigma: 0 }))).to.equal(B);
    // 4 corrupt of 10 and 5 dropped: privacy needs t ≥ 5, only 4 neighbours survive.
    expect(code(() => findSecAggPlusParams({ n: 10, corruptFraction: 0.4, dropoutRate: 0.5 }))).to.equal(B);
  });

  it('validateThreshold: semi-honest 2 ≤ t ≤ k; malicious also t > 2(k+1)/3', () => {
    validateThreshold({ n: 10, k: 9, t: 2, threat: 'semi-honest' });
    validateThreshold({ n: 10, k: 9, t: 9, threat: 'semi-honest' });
    validateThreshold({ n: 100, k: 8, t: 7, threat: 'malicious' }); // 2·9/3 = 6 < 7
    validateThreshold({ n: 10, k: 9, t: 7, threat: 'malicious' }); // 2·10/3 = 6.67 < 7
    const T = 'SECAGG_ERR_BAD_THRESHOLD';
    expect(code(() => validateThreshold({ n: 10, k: 9, t: 1, threat: 'semi-honest' }))).to.equal(T);
    expect(code(() => validateThreshold({ n: 10, k: 9, t: 10, threat: 'semi-honest' }))).to.equal(T);
    expect(code(() => validateThreshold({ n: 10, k: 10, t: 5, threat: 'semi-honest' }))).to.equal(T);
    expect(code(() => validateThreshold({ n: 100, k: 8, t: 6, threat: 'malicious' }))).to.equal(T); // 6 = 2·9/3, not >
    expect(code(() => validateThreshold({ n: 10, k: 9, t: 6, threat: 'malicious' }))).to.equal(T);
    expect(code(() => validateThreshold({ n: 10, k: 9, t: 5, threat: 'bogus' as Threat }))).to.equal(T);
    expect(() => validateThreshold({ n: 10, k: 9, t: 6, threat: 'malicious' })).to.throw(ValidationError,
      '"t" must exceed 2(k+1)/3 = 6.67 against a malicious server (Bonawitz et al. 2017 §6), got t=6 with k=9');
    expect(() => validateThreshold({ n: 10, k: 9, t: 1, threat: 'semi-honest' })).to.throw('"t" expected an integer in [2, k=9]');
  });
});
