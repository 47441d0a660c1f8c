/**
 * The Merkle tree of RFC 6962 §2.1 over SHA-256, for the audit transcript
 * (`protocols/transcript-v1/spec.md`): the tree hash (MTH), inclusion proofs
 * (PATH, §2.1.1) and consistency proofs (PROOF, §2.1.2), and their
 * verification by the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2.
 *
 * Functions take leaf *hashes* (`leafHash(entry)`), so a log hashes each
 * entry once; `merkleRoot` is MTH over the entries themselves.
 */
import { createHash } from 'node:crypto';
import { ValidationError } from '../errors.js';

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

const LEAF = Uint8Array.of(0x00);
const NODE = Uint8Array.of(0x01);

/** SHA-256(0x00 || entry). */
export function leafHash(entry: Uint8Array): Uint8Array {
  return sha256(LEAF, entry);
}

/** SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(NODE, left, right);
}

/** The largest power of two strictly less than n (n ≥ 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function range(what: string, ok: boolean): void {
  if (!ok) throw new ValidationError('AUDIT_ERR_BAD_RANGE', what);
}

/** MTH over leaf hashes `leaves[lo, hi)`. */
function mth(leaves: readonly Uint8Array[], lo: number, hi: number): Uint8Array {
  const n = hi - lo;
  if (n === 0) return sha256();
  if (n === 1) return leaves[lo]!;
  const k = split(n);
  return nodeHash(mth(leaves, lo, lo + k), mth(leaves, lo + k, hi));
}

/** The root of the tree over the first `size` leaf hashes (all of them by default); SHA-256("") when empty. */
export function rootOf(leaves: readonly Uint8Array[], size: number = leaves.length): Uint8Array {
  range(`tree size ${size} is not in [0, ${leaves.length}]`, Number.isSafeInteger(size) && size >= 0 && size <= leaves.length);
  return mth(leaves, 0, size);
}

/**
 * The RFC 6962 tree of an append-only log held as its compact range: the
 * roots of the perfect subtrees that the binary decomposition of the size
 * gives, largest first (at most log2(n) + 1 hashes). Appending a leaf merges
 * equal-sized subtrees; the root is the right fold of the range,
 * H(p1, H(p2, … H(p(k−1), pk))), which is MTH(D[n]), since the split of
 * §2.1 at the largest power of two below n is exactly the first subtree.
 * A log that streams its records to a file keeps this instead of every leaf.
 */
export class CompactRange {
  private readonly roots: Uint8Array[] = [];
  private readonly heights: number[] = [];
  private n = 0;

  /** The number of leaves appended. */
  get size(): number { return this.n; }

  /** Appends a leaf hash. */
  push(leaf: Uint8Array): void {
    let h = leaf;
    let height = 0;
    while (this.heights.length > 0 && this.heights[this.heights.length - 1] === height) {
      h = nodeHash(this.roots.pop()!, h);
      this.heights.pop();
      height++;
    }
    this.roots.push(h);
    this.heights.push(height);
    this.n++;
  }

  /** MTH of the leaves so far; SHA-256("") when empty. */
  root(): Uint8Array {
    if (this.roots.length === 0) return sha256();
    let r = this.roots[this.roots.length - 1]!;
    for (let i = this.roots.length - 2; i >= 0; i--) r = nodeHash(this.roots[i]!, r);
    return r;
  }
}

/** MTH(D[n]) of RFC 6962 §2.1 over the entries themselves. */
export function merkleRoot(entries: readonly Uint8Array[]): Uint8Array {
  return rootOf(entries.map(leafHash));
}

function path(m: number, leaves: readonly Uint8Array[], lo: number, hi: number): Uint8Array[] {
  const n = hi - lo;
  if (n <= 1) return [];
  const k = split(n);
  return m < k
    ? [...path(m, leaves, lo, lo + k), mth(leaves, lo + k, hi)]
    : [...path(m - k, leaves, lo + k, hi), mth(leaves, lo, lo + k)];
}

/** PATH(index, D[size]) of RFC 6962 §2.1.1: the audit path of leaf `index` in the tree of the first `size` leaves, bottom up. */
export function inclusionProof(leaves: readonly Uint8Array[], index: number, size: number = leaves.length): Uint8Array[] {
  range(`tree size ${size} is not in [1, ${leaves.length}]`, Number.isSafeInteger(size) && size >= 1 && size <= leaves.length);
  range(`leaf index ${index} is not in [0, ${size})`, Number.isSafeInteger(index) && index >= 0 && index < size);
  return path(index, leaves, 0, size);
}

function subproof(m: number, leaves: readonly Uint8Array[], lo: number, hi: number, complete: boolean): Uint8Array[] {
  const n = hi - lo;
  if (m === n) return complete ? [] : [mth(leaves, lo, hi)];
  const k = split(n);
  return m <= k
    ? [...subproof(m, leaves, lo, lo + k, complete), mth(leaves, lo + k, hi)]
    : [...subproof(m - k, leaves, lo + k, hi, false), mth(leaves, lo, lo + k)];
}

/** PROOF(m, D[n]) of RFC 6962 §2.1.2: that the tree of the first `m` leaves is a prefix of the tree of the first `n`; empty when m is 0 or n. */
export function consistencyProof(leaves: readonly Uint8Array[], m: number, n: number = leaves.length): Uint8Array[] {
  range(`tree size ${n} is not in [0, ${leaves.length}]`, Number.isSafeInteger(n) && n >= 0 && n <= leaves.length);
  range(`old tree size ${m} is not in [0, ${n}]`, Number.isSafeInteger(m) && m >= 0 && m <= n);
  if (m === 0 || m === n) return [];
  return subproof(m, leaves, 0, n, true);
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

function isSize(x: number): boolean {
  return Number.isSafeInteger(x) && x >= 0;
}

/** RFC 9162 §2.1.3.2: does `proof` show that the leaf hash `leaf` is at `index` in the tree of `size` with root `root`? Never throws. */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!isSize(index) || !isSize(size) || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

/**
 * RFC 9162 §2.1.4.2: does `proof` show that the tree of `m` leaves with root
 * `oldRoot` is a prefix of the tree of `n` leaves with root `newRoot`? The
 * trivial cases (m = 0, m = n) take an empty proof. Never throws.
 */
export function verifyConsistency(m: number, n: number, oldRoot: Uint8Array, newRoot: Uint8Array, proof: readonly Uint8Array[]): boolean {
  if (!isSize(m) || !isSize(n) || m > n) return false;
  if (m === n) return proof.length === 0 && equal(oldRoot, newRoot);
  if (m === 0) return proof.length === 0;
  let path = proof;
  // Step 2: when m is a power of two the old root is the first node of the path.
  let p2 = 1;
  while (p2 < m) p2 *= 2;
  if (p2 === m) path = [oldRoot, ...proof];
  if (path.length === 0) return false;
  let fn = m - 1;
  let sn = n - 1;
  while (fn % 2 === 1) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(fr, oldRoot) && equal(sr, newRoot);
}
