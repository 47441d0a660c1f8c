/**
 * Byzantine-robust aggregation of individual site updates: the coordinate-wise
 * median and trimmed mean (Yin, Chen, Ramchandran, Bartlett, "Byzantine-Robust
 * Distributed Learning: Towards Optimal Statistical Rates", ICML 2018) and
 * Krum / Multi-Krum (Blanchard, El Mhamdi, Guerraoui, Stainer, "Machine
 * Learning with Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS
 * 2017).
 *
 * **These need every update in the clear.** They run only with a plain,
 * non-secure aggregator, where the coordinator sees each site's update.
 * Under secure aggregation the coordinator learns only the sum, so none of
 * them can run; the defence there is the client-side L2 clip of the DP
 * encoder, which bounds honest sites only (docs/robustness.md).
 *
 * Pure functions over `readonly Float32Array[]`: n ≥ 1 updates of one length
 * d ≥ 1, every value finite. Arithmetic is in float64; results are
 * Float32Array. Inputs are never modified.
 * @module
 */
import { ValidationError } from '../errors.js';

/** The robust aggregators {@link robustAggregate} dispatches on. */
export type RobustKind = 'median' | 'trimmed-mean' | 'krum';

/** Parameters of {@link robustAggregate}: `trim` for 'trimmed-mean', `f` (and optionally `m`) for 'krum'. */
export interface RobustParams {
  /** Values dropped at each end of every coordinate (trimmed mean); an integer with 0 ≤ 2·trim < n. */
  readonly trim?: number;
  /** Byzantine updates tolerated (Krum); an integer with n > 2f + 2. */
  readonly f?: number;
  /** Updates averaged by Multi-Krum; default 1 (plain Krum); an integer in 1..n − f. */
  readonly m?: number;
}

/** What {@link krum} returns. */
export interface KrumResult {
  /** The chosen update (m = 1) or the mean of the m chosen ones (Multi-Krum). */
  readonly aggregate: Float32Array;
  /** Indices of the chosen updates, best score first (ties: lower index first). */
  readonly selected: readonly number[];
  /** Each update's Krum score: the sum of its squared L2 distances to its n − f − 2 nearest others. */
  readonly scores: readonly number[];
}

/** What {@link robustAggregate} returns. */
export interface RobustResult {
  readonly aggregate: Float32Array;
  /** Krum only: the indices of the chosen updates. */
  readonly selected?: readonly number[];
}

function bad(message: string): never {
  throw new ValidationError('TRAIN_ERR_BAD_PARAM', message);
}

/** Checks n ≥ 1 updates, all Float32Array of one length d ≥ 1 with finite values; returns [n, d]. */
function check(updates: readonly Float32Array[]): [number, number] {
  if (!Array.isArray(updates) || updates.length === 0) bad('robust aggregation needs at least one update');
  const d = updates[0] instanceof Float32Array ? updates[0].length : 0;
  for (const [i, u] of updates.entries()) {
    if (!(u instanceof Float32Array)) bad(`update ${i} is not a Float32Array`);
    if (u.length === 0) bad(`update ${i} is empty`);
    if (u.length !== d) bad(`update ${i} has ${u.length} values, update 0 has ${d}; all updates must have the same length`);
    for (let j = 0; j < d; j++) {
      if (!Number.isFinite(u[j]!)) bad(`update ${i} holds ${u[j]} at index ${j}; every value must be finite`);
    }
  }
  return [updates.length, d];
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Applies `reduce` to each coordinate's n values, sorted ascending.
 * The column buffer is float64 and reused; `reduce` must not keep it.
 */
function perCoordinate(updates: readonly Float32Array[], n: number, d: number, reduce: (sorted: Float64Array) => number): Float32Array {
  const out = new Float32Array(d);
  const col = new Float64Array(n);
  for (let j = 0; j < d; j++) {
    for (let i = 0; i < n; i++) col[i] = updates[i]![j]!;
    col.sort();
    out[j] = reduce(col);
  }
  return out;
}

/**
 * The coordinate-wise median (Yin et al. 2018): for each coordinate, the
 * middle value of the n updates, or the mean of the two middle values when n
 * is even. Breakdown point 50%: fewer than n/2 arbitrary updates keep every
 * coordinate within the range of the honest values.
 * @throws ValidationError `TRAIN_ERR_BAD_PARAM` for no updates, ragged lengths or a non-finite value
 */
export function coordinateMedian(updates: readonly Float32Array[]): Float32Array {
  const [n, d] = check(updates);
  const h = n >> 1;
  return perCoordinate(updates, n, d, n % 2 === 1 ? (s) => s[h]! : (s) => (s[h - 1]! + s[h]!) / 2);
}

/**
 * The coordinate-wise trimmed mean (Yin et al. 2018): for each coordinate,
 * drop the `trim` smallest and the `trim` largest of the n values and average
 * the n − 2·trim left. Tolerates up to `trim` arbitrary updates (breakdown
 * point trim/n); trim = 0 is the plain mean.
 * @param trim - values dropped at each end, an integer with 0 ≤ 2·trim < n (a count, not a fraction)
 * @throws ValidationError `TRAIN_ERR_BAD_PARAM` for a bad trim, no updates, ragged lengths or a non-finite value
 */
export function trimmedMean(updates: readonly Float32Array[], trim: number): Float32Array {
  const [n, d] = check(updates);
  if (!isCount(trim)) bad(`trim must be a non-negative integer (values dropped at each end), got ${String(trim)}`);
  if (2 * trim >= n) bad(`trim ${trim} drops ${2 * trim} of ${n} values per coordinate; 2·trim must be below n`);
  const k = n - 2 * trim;
  return perCoordinate(updates, n, d, (s) => {
    let sum = 0;
    for (let i = trim; i < n - trim; i++) sum += s[i]!;
    return sum / k;
  });
}

/**
 * Krum and Multi-Krum (Blanchard et al. 2017). Each update's score is the
 * sum of its squared L2 distances to its n − f − 2 nearest other updates;
 * Krum returns the update of lowest score, Multi-Krum (m > 1) the mean of
 * the m updates of lowest scores (scored once, among all n). Ties go to the
 * lower index. Tolerates f arbitrary updates when n > 2f + 2, i.e.
 * f < (n − 2)/2.
 * @param f - the number of Byzantine updates to tolerate, an integer ≥ 0 with n > 2f + 2
 * @param m - updates to average, an integer in 1..n − f (more would include a Byzantine one whenever f are); default 1
 * @throws ValidationError `TRAIN_ERR_BAD_PARAM` for a bad f or m, n ≤ 2f + 2, no updates, ragged lengths or a non-finite value
 */
export function krum(updates: readonly Float32Array[], f: number, m = 1): KrumResult {
  const [n, d] = check(updates);
  if (!isCount(f)) bad(`f must be a non-negative integer (Byzantine updates tolerated), got ${String(f)}`);
  if (n <= 2 * f + 2) bad(`Krum with f = ${f} needs n > 2f + 2 = ${2 * f + 2} updates, got ${n}`);
  if (!isCount(m) || m < 1 || m > n - f) bad(`m must be an integer in 1..n − f = 1..${n - f}, got ${String(m)}`);
  // Squared distances, symmetric, in float64.
  const dist = new Float64Array(n * n);
  for (let a = 0; a < n; a++) {
    const ua = updates[a]!;
    for (let b = a + 1; b < n; b++) {
      const ub = updates[b]!;
      let s = 0;
      for (let j = 0; j < d; j++) {
        const t = ua[j]! - ub[j]!;
        s += t * t;
      }
      dist[a * n + b] = s;
      dist[b * n + a] = s;
    }
  }
  const near = n - f - 2;
  const scores: number[] = [];
  const row = new Float64Array(n - 1);
  for (let a = 0; a < n; a++) {
    let k = 0;
    for (let b = 0; b < n; b++) if (b !== a) row[k++] = dist[a * n + b]!;
    row.sort();
    let s = 0;
    for (let i = 0; i < near; i++) s += row[i]!;
    scores.push(s);
  }
  const order = scores.map((_, i) => i).sort((a, b) => scores[a]! - scores[b]! || a - b);
  const selected = order.slice(0, m);
  const acc = new Float64Array(d);
  for (const i of selected) {
    const u = updates[i]!;
    for (let j = 0; j < d; j++) acc[j]! += u[j]!;
  }
  const aggregate = new Float32Array(d);
  for (let j = 0; j < d; j++) aggregate[j] = acc[j]! / m;
  return { aggregate, selected, scores };
}

/**
 * Runs the robust aggregator `kind`: 'median' ({@link coordinateMedian}),
 * 'trimmed-mean' ({@link trimmedMean}, needs `params.trim`) or 'krum'
 * ({@link krum}, needs `params.f`, takes `params.m`). A parameter the kind
 * does not use is refused, so a misspelt configuration is not silently ignored.
 * @throws ValidationError `TRAIN_ERR_BAD_PARAM` for an unknown kind, a missing or unused parameter, or what the aggregator refuses
 */
export function robustAggregate(kind: RobustKind, updates: readonly Float32Array[], params: RobustParams = {}): RobustResult {
  if (params === null || typeof params !== 'object') bad('params must be an object');
  const allowed: Record<RobustKind, readonly string[]> = { median: [], 'trimmed-mean': ['trim'], krum: ['f', 'm'] };
  if (!Object.hasOwn(allowed, kind)) bad(`unknown robust aggregator ${JSON.stringify(kind)}; expected "median", "trimmed-mean" or "krum"`);
  for (const [key, v] of Object.entries(params)) {
    if (v !== undefined && !allowed[kind].includes(key)) bad(`parameter "${key}" does not apply to "${kind}"`);
  }
  switch (kind) {
    case 'median':
      return { aggregate: coordinateMedian(updates) };
    case 'trimmed-mean':
      if (params.trim === undefined) bad('"trimmed-mean" needs params.trim');
      return { aggregate: trimmedMean(updates, params.trim) };
    case 'krum': {
      if (params.f === undefined) bad('"krum" needs params.f');
      const r = krum(updates, params.f, params.m ?? 1);
      return { aggregate: r.aggregate, selected: r.selected };
    }
  }
}
