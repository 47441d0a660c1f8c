import { expect } from 'chai';
import { createCipheriv, hkdfSync } from 'node:crypto';
import { nativeProvider } from '../../src/crypto/native.js';
import { ValidationError } from '../../src/errors.js';
import { GRAPH_INFO, completeGraph, graphPermutation, hararyGraph, type Graph } from '../../src/secagg/graph.js';

const seedOf = (s: string): Uint8Array => new Uint8Array(Buffer.alloc(32, s));
const range = (n: number, from = 1): number[] => Array.from({ length: n }, (_, i) => from + i);

/** Independent re-implementation of the documented permutation, straight from node:crypto. */
function referencePermutation(ids: number[], seed: Uint8Array): number[] {
  const v = [...ids].sort((a, b) => a - b);
  const key = Buffer.from(hkdfSync('sha256', seed, new Uint8Array(0), GRAPH_INFO, 16));
  const c = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const word = (): number => c.update(Buffer.alloc(4)).readUInt32LE(0);
  for (let i = v.length - 1; i >= 1; i--) {
    const r = i + 1;
    let w = word();
    while (w >= 2 ** 32 - (2 ** 32 % r)) w = word();
    const j = w % r;
    [v[i], v[j]] = [v[j]!, v[i]!];
  }
  return v;
}

function checkRegularSymmetric(g: Graph, k: number): void {
  for (const id of g.ids) {
    const nb = g.neighbors(id);
    expect(nb, `degree of ${id}`).to.have.length(k);
    expect(nb).to.not.include(id);
    expect([...nb]).to.deep.equal([...nb].sort((a, b) => a - b));
    expect(new Set(nb).size).to.equal(k);
    for (const u of nb) {
      expect(g.neighbors(u), `symmetry ${id}-${u}`).to.include(id);
      expect(g.has(id, u)).to.equal(true);
    }
  }
}

describe('secagg/graph', () => {
  it('completeGraph: every other id, sorted, regardless of input order', () => {
    const g = completeGraph([5, 3, 9, 1]);
    expect(g.kind).to.equal('complete');
    expect(g.degree).to.equal(3);
    expect(g.ids).to.deep.equal([1, 3, 5, 9]);
    expect(g.neighbors(5)).to.deep.equal([1, 3, 9]);
    checkRegularSymmetric(g, 3);
    expect(g.has(5, 5)).to.equal(false);
    expect(() => g.neighbors(2)).to.throw(ValidationError, 'not in the graph');
  });

  it('hararyGraph is k-regular and symmetric; neighbours are the k/2 nearest on the seeded cycle', () => {
    const ids = range(40, 100);
    for (const k of [2, 4, 10, 38]) {
      const g = hararyGraph(ids, k, seedOf('a'), nativeProvider);
      expect(g.kind).to.equal('harary');
      expect(g.degree).to.equal(k);
      checkRegularSymmetric(g, k);
      const cycle = referencePermutation(ids, seedOf('a'));
      const p = cycle.indexOf(117);
      const expected: number[] = [];
      for (let d = 1; d <= k / 2; d++) expected.push(cycle[(p + d) % 40]!, cycle[(p - d + 40) % 40]!);
      expect(g.neighbors(117)).to.deep.equal(expected.sort((a, b) => a - b));
    }
  });

  it('permutation matches an independent implementation of the documented derivation', () => {
    const ids = [7, 1, 2 ** 32 - 1, 42, 1000, 3, 99, 12345];
    expect(graphPermutation(ids, seedOf('spec'), nativeProvider)).to.deep.equal(referencePermutation(ids, seedOf('spec')));
    const many = range(300);
    expect(graphPermutation(many, seedOf('x'), nativeProvider)).to.deep.equal(referencePermutation(many, seedOf('x')));
  });

  it('is reproducible from the seed, independent of input order, and differs across seeds', () => {
    const ids = range(50);
    const a = hararyGraph(ids, 6, seedOf('s1'), nativeProvider);
    const b = hararyGraph([...ids].reverse(), 6, seedOf('s1'), nativeProvider);
    const c = hararyGraph(ids, 6, seedOf('s2'), nativeProvider);
    let differ = 0;
    for (const id of ids) {
      expect(a.neighbors(id)).to.deep.equal(b.neighbors(id));
      if (a.neighbors(id).join() !== c.neighbors(id).join()) differ++;
    }
    expect(differ).to.be.greaterThan(40);
  });

  it('k = n − 1 gives the complete graph (odd and even n); small n edge cases', () => {
    expect(hararyGraph([1, 2], 1, seedOf('e'), nativeProvider).kind).to.equal('complete');
    const g3 = hararyGraph([1, 2, 3], 2, seedOf('e'), nativeProvider);
    expect(g3.kind).to.equal('complete');
    checkRegularSymmetric(g3, 2);
    expect(hararyGraph(range(6), 5, seedOf('e'), nativeProvider).kind).to.equal('complete');
    const g4 = hararyGraph(range(4), 2, seedOf('e'), nativeProvider); // a 4-cycle
    expect(g4.kind).to.equal('harary');
    checkRegularSymmetric(g4, 2);
    const g5 = hararyGraph(range(5), 2, seedOf('e'), nativeProvider);
    checkRegularSymmetric(g5, 2);
  });

  it('rejects bad degrees, ids and seeds', () => {
    const s = seedOf('bad');
    const code = (f: () => unknown): string => {
      try { f(); } catch (e) { expect(e).to.be.instanceOf(ValidationError); return (e as ValidationError).code; }
      return 'no throw';
    };
    for (const k of [0, 1, 8, 9, 10, -2, 2.5]) expect(code(() => hararyGraph(range(8), k, s, nativeProvider)), `k=${k}`).to.equal('SECAGG_ERR_BAD_GRAPH');
    // Odd degrees need an even number of clients (Harary H(k, n)).
    for (const k of [3, 5, 7]) expect(code(() => hararyGraph(range(9), k, s, nativeProvider)), `n=9 k=${k}`).to.equal('SECAGG_ERR_BAD_GRAPH');
    expect(code(() => hararyGraph([1], 0, s, nativeProvider))).to.equal('SECAGG_ERR_BAD_GRAPH');
    expect(code(() => hararyGraph([1, 1, 2], 2, s, nativeProvider))).to.equal('SECAGG_ERR_BAD_GRAPH');
    expect(code(() => hararyGraph([0, 1, 2], 2, s, nativeProvider))).to.equal('SECAGG_ERR_BAD_GRAPH');
    expect(code(() => hararyGraph([1, 2, 2 ** 32], 2, s, nativeProvider))).to.equal('SECAGG_ERR_BAD_GRAPH');
    expect(code(() => hararyGraph(range(8), 4, new Uint8Array(15), nativeProvider))).to.equal('SECAGG_ERR_BAD_GRAPH');
    expect(code(() => completeGraph([]))).to.equal('SECAGG_ERR_BAD_GRAPH');
    expect(() => hararyGraph(range(9), 3, s, nativeProvider)).to.throw('"k" expected an integer in [2, 8], even when n is odd, or k = n − 1 = 8, got 3');
  });

  it('odd degree with even n: ⌊k/2⌋ on each side plus the opposite client, regular and symmetric', () => {
    for (const [n, k] of [[8, 3], [10, 5], [100, 15], [50, 13]] as const) {
      const ids = range(n);
      const g = hararyGraph(ids, k, seedOf(`odd${n}`), nativeProvider);
      const cycle = graphPermutation(ids, seedOf(`odd${n}`), nativeProvider);
      for (const u of ids) {
        expect(g.neighbors(u).length, `n=${n} k=${k} u=${u}`).to.equal(k);
        for (const v of g.neighbors(u)) expect(g.has(v, u)).to.equal(true);
      }
      const p = 3;
      expect(g.has(cycle[p]!, cycle[(p + n / 2) % n]!)).to.equal(true);
      expect(g.has(cycle[p]!, cycle[(p + (k + 1) / 2) % n]!)).to.equal(false);
    }
  });
});
