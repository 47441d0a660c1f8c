/**
 * Neighbour graphs for secure aggregation: the complete graph of Bonawitz et
 * al. (CCS 2017) and the random k-regular Harary graph of SecAgg+ (Bell,
 * Bonawitz, Gascón, Lepoint, Raykova, CCS 2020, §3–4), in which each client
 * masks with and shares its keys to only its k neighbours.
 *
 * Harary construction (normative, secagg-v1; reproducible from the seed):
 * 1. Sort the ids ascending: v_0 < v_1 < … < v_{n−1}.
 * 2. key = HKDF-SHA256(ikm = seed, salt = empty, info = "tally/secagg-v1/graph", L = 16).
 * 3. Keystream = AES-128-CTR(key), initial counter block all zero; it is read
 *    as consecutive uint32 words, each 4 bytes little-endian.
 * 4. Fisher–Yates: for i = n−1 down to 1: let r = i + 1 and
 *    limit = 2^32 − (2^32 mod r); draw words w until w < limit (rejection
 *    sampling, so j is exactly uniform); j = w mod r; swap v_i and v_j.
 * 5. The resulting order π is a cycle; the client at position p is adjacent
 *    to the clients at positions p ± 1, …, p ± ⌊k/2⌋ (mod n), and, when k is
 *    odd (which needs n even), to the client at position p + n/2 (mod n),
 *    diametrically opposite (Harary's H(k, n) for odd k).
 * k = n − 1 gives the complete graph (for any parity of n).
 */
import { ValidationError } from '../errors.js';
import type { CryptoProvider } from '../crypto/types.js';

/** A neighbour graph over client ids. */
export interface Graph {
  /** Sorted (ascending) neighbour ids of `id`, excluding `id` itself. */
  neighbors(id: number): readonly number[];
  /** `'complete'` (every pair adjacent) or `'harary'` (SecAgg+ random k-regular). */
  readonly kind: 'complete' | 'harary';
  /** Number of neighbours of every client (the graph is regular). */
  readonly degree: number;
  /** All ids, sorted ascending. */
  readonly ids: readonly number[];
  /** Whether `u` and `v` are neighbours. */
  has(u: number, v: number): boolean;
}

/** HKDF info string of the graph permutation key. */
export const GRAPH_INFO = 'tally/secagg-v1/graph';
const CODE = 'SECAGG_ERR_BAD_GRAPH';

function sortedIds(ids: readonly number[]): number[] {
  if (!Array.isArray(ids) || ids.length === 0) throw new ValidationError(CODE, '"ids" expected a non-empty array of client ids');
  const s = [...ids].sort((a, b) => a - b);
  for (let i = 0; i < s.length; i++) {
    const x = s[i]!;
    if (!Number.isInteger(x) || x < 1 || x > 0xffffffff) {
      throw new ValidationError(CODE, `"ids" expected integers in [1, 2^32 − 1], got ${String(x)}`);
    }
    if (i > 0 && s[i - 1] === x) throw new ValidationError(CODE, `"ids" expected distinct ids, got ${x} twice`);
  }
  return s;
}

function unknown(id: number): ValidationError {
  return new ValidationError(CODE, `client id ${String(id)} is not in the graph`);
}

class CompleteGraph implements Graph {
  readonly kind = 'complete' as const;
  readonly degree: number;
  private readonly set: Set<number>;
  constructor(readonly ids: readonly number[]) {
    this.degree = ids.length - 1;
    this.set = new Set(ids);
  }
  neighbors(id: number): readonly number[] {
    if (!this.set.has(id)) throw unknown(id);
    return this.ids.filter((x) => x !== id);
  }
  has(u: number, v: number): boolean {
    return u !== v && this.set.has(u) && this.set.has(v);
  }
}

class HararyGraph implements Graph {
  readonly kind = 'harary' as const;
  private readonly adj = new Map<number, readonly number[]>();
  private readonly adjSet = new Map<number, Set<number>>();
  constructor(readonly ids: readonly number[], cycle: readonly number[], readonly degree: number) {
    const n = cycle.length, h = Math.floor(degree / 2);
    for (let p = 0; p < n; p++) {
      const nb: number[] = [];
      for (let d = 1; d <= h; d++) nb.push(cycle[(p + d) % n]!, cycle[(p - d + n) % n]!);
      if (degree % 2 === 1) nb.push(cycle[(p + n / 2) % n]!); // odd k, even n: the opposite client
      nb.sort((a, b) => a - b);
      this.adj.set(cycle[p]!, Object.freeze(nb));
      this.adjSet.set(cycle[p]!, new Set(nb));
    }
  }
  neighbors(id: number): readonly number[] {
    const nb = this.adj.get(id);
    if (nb === undefined) throw unknown(id);
    return nb;
  }
  has(u: number, v: number): boolean {
    return this.adjSet.get(u)?.has(v) ?? false;
  }
}

/** The complete graph on `ids` (original SecAgg): degree n − 1. */
export function completeGraph(ids: readonly number[]): Graph {
  return new CompleteGraph(Object.freeze(sortedIds(ids)));
}

/**
 * The cycle order of the SecAgg+ Harary graph: a uniformly random permutation
 * of the sorted ids derived from `seed` (steps 1–4 of the module comment).
 */
export function graphPermutation(ids: readonly number[], seed: Uint8Array, provider: CryptoProvider): number[] {
  const v = sortedIds(ids);
  if (!(seed instanceof Uint8Array) || seed.length < 16) {
    throw new ValidationError(CODE, `"seed" expected Uint8Array of length ≥ 16, got length=${(seed as Uint8Array)?.length}`);
  }
  const key = provider.hkdf(seed, new Uint8Array(0), new TextEncoder().encode(GRAPH_INFO), 16);
  const ks = provider.aes128Ctr(key, new Uint8Array(16));
  const buf = new Uint8Array(4096);
  const dv = new DataView(buf.buffer);
  let pos = buf.length;
  const nextWord = (): number => {
    if (pos === buf.length) { ks.fill(buf); pos = 0; }
    const w = dv.getUint32(pos, true);
    pos += 4;
    return w;
  };
  for (let i = v.length - 1; i >= 1; i--) {
    const r = i + 1;
    const limit = 2 ** 32 - (2 ** 32 % r); // largest multiple of r not above 2^32
    let w = nextWord();
    while (w >= limit) w = nextWord();
    const j = w % r;
    const t = v[i]!; v[i] = v[j]!; v[j] = t;
  }
  return v;
}

/**
 * The SecAgg+ random Harary graph H(n, k) (Bell et al. 2020 §3): ids on a
 * cycle in the seed-derived order of {@link graphPermutation}, each adjacent to
 * its ⌊k/2⌋ nearest clients on either side, plus the opposite client when k is odd.
 * @param ids distinct client ids in [1, 2^32 − 1]
 * @param k degree, 2 ≤ k ≤ n − 1; odd k needs even n; k = n − 1 returns the complete graph
 * @param seed ≥ 16 bytes, unpredictable to clients before they commit to their keys
 * @throws ValidationError `SECAGG_ERR_BAD_GRAPH`
 */
export function hararyGraph(ids: readonly number[], k: number, seed: Uint8Array, provider: CryptoProvider): Graph {
  const n = sortedIds(ids).length;
  if (!Number.isInteger(k) || k < 1 || k > n - 1 || (k % 2 !== 0 && n % 2 !== 0 && k !== n - 1) || (k < 2 && k !== n - 1)) {
    throw new ValidationError(CODE, `"k" expected an integer in [2, ${n - 1}], even when n is odd, or k = n − 1 = ${n - 1}, got ${String(k)}`);
  }
  const cycle = graphPermutation(ids, seed, provider); // validates the seed even when complete
  if (k === n - 1) return completeGraph(ids);
  return new HararyGraph(Object.freeze(sortedIds(ids)), cycle, k);
}
