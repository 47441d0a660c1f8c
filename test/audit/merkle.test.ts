import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { CompactRange, consistencyProof, inclusionProof, leafHash, merkleRoot, nodeHash, rootOf, verifyConsistency, verifyInclusion } from '../../src/audit/merkle.js';
import { Transcript } from '../../src/audit/transcript.js';
import { InternalError } from '../../src/errors.js';
import { ValidationError } from '../../src/errors.js';

const h = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (x: string): Uint8Array => new Uint8Array(Buffer.from(x, 'hex'));
const sha = (...p: number[][]): Uint8Array => new Uint8Array(createHash('sha256').update(Uint8Array.from(p.flat())).digest());

/** The leaves of certificate-transparency's merkle_tree_test.cc and the roots of their prefixes (sizes 1..8). */
const CT_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(bytes);
const CT_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

const N = 40;
const entries = Array.from({ length: N }, (_, i) => new TextEncoder().encode(`entry ${i}`));
const leaves = entries.map(leafHash);
const roots = Array.from({ length: N + 1 }, (_, n) => rootOf(leaves, n));

/** The reference MTH, straight from RFC 6962 §2.1, over entries. */
function mthRef(d: Uint8Array[]): Uint8Array {
  if (d.length === 0) return sha();
  if (d.length === 1) return leafHash(d[0]!);
  let k = 1;
  while (k * 2 < d.length) k *= 2;
  return nodeHash(mthRef(d.slice(0, k)), mthRef(d.slice(k)));
}

const same = (p: Uint8Array[], q: Uint8Array[]): boolean => p.length === q.length && p.every((x, i) => h(x) === h(q[i]!));

function flip(b: Uint8Array, i: number): Uint8Array {
  const c = Uint8Array.from(b);
  c[i % c.length]! ^= 1;
  return c;
}

describe('audit/merkle: RFC 6962 tree hash and proofs', () => {
  it('hashes leaves and nodes with their domain-separation bytes', () => {
    expect(h(leafHash(bytes('')))).to.equal(h(sha([0])));
    expect(h(leafHash(bytes('0102')))).to.equal(h(sha([0, 1, 2])));
    const a = sha([7]), b = sha([8]);
    expect(h(nodeHash(a, b))).to.equal(h(sha([1], [...a], [...b])));
  });

  it('MTH of the empty list is SHA-256 of the empty string', () => {
    expect(h(merkleRoot([]))).to.equal('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('matches the roots of certificate-transparency\'s test tree for sizes 1..8', () => {
    for (let n = 1; n <= 8; n++) expect(h(merkleRoot(CT_LEAVES.slice(0, n))), `size ${n}`).to.equal(CT_ROOTS[n - 1]);
  });

  it('MTH of 1 leaf is its leaf hash, of 2 the node of both, and splits at the largest power of two below n', () => {
    expect(h(merkleRoot(entries.slice(0, 1)))).to.equal(h(leaves[0]!));
    expect(h(merkleRoot(entries.slice(0, 2)))).to.equal(h(nodeHash(leaves[0]!, leaves[1]!)));
    expect(h(merkleRoot(entries.slice(0, 3)))).to.equal(h(nodeHash(nodeHash(leaves[0]!, leaves[1]!), leaves[2]!)));
    for (let n = 0; n <= N; n++) expect(h(rootOf(leaves, n)), `size ${n}`).to.equal(h(mthRef(entries.slice(0, n))));
  });

  it('inclusion proofs verify for every (index, size) up to 40 and fail for a flipped byte, wrong index, wrong size, wrong leaf', () => {
    for (let n = 1; n <= N; n++) {
      const root = rootOf(leaves, n);
      for (let i = 0; i < n; i++) {
        const p = inclusionProof(leaves, i, n);
        expect(verifyInclusion(leaves[i]!, i, n, p, root), `${i}/${n}`).to.equal(true);
        expect(verifyInclusion(flip(leaves[i]!, i), i, n, p, root)).to.equal(false);
        expect(verifyInclusion(leaves[i]!, i, n, p, flip(root, i))).to.equal(false);
        for (let j = 0; j < p.length; j++) {
          expect(verifyInclusion(leaves[i]!, i, n, p.map((x, k) => (k === j ? flip(x, i + j) : x)), root)).to.equal(false);
        }
        for (let j = 0; j < n; j++) if (j !== i) expect(verifyInclusion(leaves[i]!, j, n, p, root), `index ${j} for ${i}/${n}`).to.equal(false);
        // Another size: the proof verifies against that tree's root only where it is that tree's own audit path.
        for (let m = i + 1; m <= N; m++) {
          if (m !== n) expect(verifyInclusion(leaves[i]!, i, m, p, roots[m]!), `size ${m} for ${i}/${n}`).to.equal(same(p, inclusionProof(leaves, i, m)));
        }
        if (p.length > 0) {
          expect(verifyInclusion(leaves[i]!, i, n, p.slice(0, -1), root)).to.equal(false);
        }
        expect(verifyInclusion(leaves[i]!, i, n, [...p, leaves[0]!], root)).to.equal(false);
      }
    }
  });

  it('consistency proofs verify for every (m, n) up to 40 and fail for a flipped byte, a wrong size, a wrong root', () => {
    for (let n = 1; n <= N; n++) {
      const newRoot = rootOf(leaves, n);
      for (let m = 1; m <= n; m++) {
        const oldRoot = rootOf(leaves, m);
        const p = consistencyProof(leaves, m, n);
        expect(verifyConsistency(m, n, oldRoot, newRoot, p), `${m}→${n}`).to.equal(true);
        expect(verifyConsistency(m, n, flip(oldRoot, m), newRoot, p), `old root ${m}→${n}`).to.equal(false);
        expect(verifyConsistency(m, n, oldRoot, flip(newRoot, n), p)).to.equal(false);
        for (let j = 0; j < p.length; j++) {
          expect(verifyConsistency(m, n, oldRoot, newRoot, p.map((x, k) => (k === j ? flip(x, j) : x))), `flip ${j} ${m}→${n}`).to.equal(false);
        }
        // Other sizes: the proof verifies for those trees' roots only where it is their own proof.
        for (let mm = 1; mm <= n; mm++) {
          if (mm !== m) expect(verifyConsistency(mm, n, roots[mm]!, newRoot, p), `m=${mm} for ${m}→${n}`).to.equal(same(p, consistencyProof(leaves, mm, n)));
        }
        for (let nn = m; nn <= N; nn++) {
          if (nn !== n) expect(verifyConsistency(m, nn, oldRoot, roots[nn]!, p), `n=${nn} for ${m}→${n}`).to.equal(same(p, consistencyProof(leaves, m, nn)));
        }
        if (p.length > 0) expect(verifyConsistency(m, n, oldRoot, newRoot, p.slice(0, -1))).to.equal(false);
        if (m < n) expect(verifyConsistency(m, n, oldRoot, newRoot, [...p, leaves[0]!])).to.equal(false);
      }
    }
    expect(consistencyProof(leaves, 0, 5)).to.deep.equal([]);
    expect(verifyConsistency(0, 5, merkleRoot([]), rootOf(leaves, 5), [])).to.equal(true);
    expect(verifyConsistency(5, 5, rootOf(leaves, 5), rootOf(leaves, 5), [])).to.equal(true);
    expect(verifyConsistency(6, 5, rootOf(leaves, 5), rootOf(leaves, 5), [])).to.equal(false);
  });

  it('PATH and PROOF match the 7-leaf examples of RFC 6962 §2.1.3', () => {
    // Leaf hashes a..f of d0..d5; g = H(a,b), h = H(c,d), i = H(e,f), j = leaf hash of d6, k = H(g,h), l = H(i,j).
    const [a, b, c, d, e, f, j] = leaves as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array];
    const g = nodeHash(a, b), hh = nodeHash(c, d), i = nodeHash(e, f), k = nodeHash(g, hh), l = nodeHash(i, j);
    expect(h(rootOf(leaves, 7))).to.equal(h(nodeHash(k, l)));
    expect(inclusionProof(leaves, 0, 7).map(h)).to.deep.equal([b, hh, l].map(h));
    expect(inclusionProof(leaves, 3, 7).map(h)).to.deep.equal([c, g, l].map(h));
    expect(inclusionProof(leaves, 4, 7).map(h)).to.deep.equal([f, j, k].map(h));
    expect(inclusionProof(leaves, 6, 7).map(h)).to.deep.equal([i, k].map(h));
    expect(consistencyProof(leaves, 3, 7).map(h)).to.deep.equal([c, d, g, l].map(h));
    expect(consistencyProof(leaves, 4, 7).map(h)).to.deep.equal([l].map(h));
    expect(consistencyProof(leaves, 6, 7).map(h)).to.deep.equal([i, j, k].map(h));
  });

  it('refuses proofs out of range with AUDIT_ERR_BAD_RANGE', () => {
    const bad = (f: () => unknown): void => { expect(f).to.throw(ValidationError).with.property('code', 'AUDIT_ERR_BAD_RANGE'); };
    bad(() => inclusionProof(leaves, 5, 5));
    bad(() => inclusionProof(leaves, 0, 0));
    bad(() => inclusionProof(leaves, 0, N + 1));
    bad(() => inclusionProof(leaves, -1, 3));
    bad(() => consistencyProof(leaves, 6, 5));
    bad(() => rootOf(leaves, N + 1));
  });

  it('a compact range gives MTH at every size from 0 to 300 with O(log n) hashes held', () => {
    const all = Array.from({ length: 300 }, (_, i) => leafHash(Uint8Array.of(i & 255, i >> 8)));
    const r = new CompactRange();
    expect(h(r.root())).to.equal(h(rootOf([], 0)));
    all.forEach((leaf, i) => {
      r.push(leaf);
      expect(r.size).to.equal(i + 1);
      expect(h(r.root()), `size ${i + 1}`).to.equal(h(rootOf(all, i + 1)));
    });
  });

  it('a transcript that streams to a sink (retain: false) signs the same checkpoints and refuses what needs the records', () => {
    const seed = new Uint8Array(32).fill(3);
    const streamed: string[] = [];
    const kept = new Transcript({ signingSeed: seed });
    const lean = new Transcript({ signingSeed: seed, retain: false, sink: (l) => streamed.push(l) });
    for (const t of [kept, lean]) {
      t.config({ a: 1 });
      for (let i = 0; i < 37; i++) { t.append('dp-event', { event: { i }, epsilon: i }); if (i % 5 === 0) t.checkpoint(); }
      t.checkpoint();
    }
    expect(streamed).to.deep.equal(kept.lines);
    expect(h(lean.root())).to.equal(h(kept.root()));
    expect(lean.lastCheckpoint()).to.deep.equal(kept.lastCheckpoint());
    expect(() => lean.lines).to.throw(InternalError);
    expect(() => lean.root(3)).to.throw(InternalError);
    expect(() => lean.inclusionProof(0)).to.throw(InternalError);
  });
});
