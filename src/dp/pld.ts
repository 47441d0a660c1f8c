/**
 * Privacy loss distribution (PLD) accountant for the Gaussian and the
 * Poisson-subsampled Gaussian under add/remove-one neighbouring: the tight
 * figure, next to the RDP accountant's upper bound.
 *
 * A mechanism's PLD is the law of L = log(P(o)/Q(o)) for o ~ P; composition
 * adds independent losses (convolution), and
 * δ(ε) = P(L = ∞) + E[(1 − e^(ε−L))₊] (Meiser and Mohammadi, CCS 2018;
 * Koskela, Jälkö, Honkela, AISTATS 2020). For the subsampled Gaussian the two
 * directions (remove: P = (1−q)N(0,σ²) + qN(1,σ²), Q = N(0,σ²); add: P and Q
 * swapped) have different PLDs; each is composed on its own and the larger δ
 * is reported, as in Google's dp-accounting.
 *
 * Discretisation is pessimistic, by "connect the dots" (Doroshenko, Ghazi,
 * Kamath, Kumar, Manurangsi, PETS 2022): losses live on the grid ε_i = i·h, and
 * the P- and Q-mass of each interval (ε_i, ε_{i+1}] is split between its two
 * end points so that both masses are preserved. The resulting discrete pair has
 * a hockey-stick curve that is the chord interpolation of the true (convex)
 * curve, hence lies above it everywhere: the reported δ(ε) and ε(δ) are never
 * below the true values. Tails beyond the grid are pessimistic too (lower tail
 * rounded up to the first grid point, upper tail moved to L = ∞), and so is
 * the truncation of negligible mass (≤ 1e-15 per side) after each convolution.
 * Self-composition uses repeated squaring with FFT convolution.
 *
 * @module
 */
import { DpError } from '../errors.js';
import { logExpm1, normCdf, normSf } from './_math.js';
import { type DpEvent, effectiveGaussianNoise, validateEvent } from './events.js';
import { type DiscretePld, MAX_PLD_POINTS, trim, composePld, limit, selfComposePld, pldDelta, pldEpsilon } from './pld-discrete.js';

export { composePld, MAX_PLD_POINTS, pldDelta, pldEpsilon, selfComposePld, type DiscretePld } from './pld-discrete.js';

/** Options of the PLD accountant. */
export interface PldOptions {
  /**
   * Grid spacing h of the privacy loss, in (0, 0.1]. Default: 1/100 of the
   * smallest single-step loss spread among the events (≈ q·√(e^(1/σ²) − 1),
   * at most 1/σ), clamped to [1e-6, 0.1]; this keeps about 100 grid points per
   * standard deviation of every step, so the discretisation error stays
   * around 1e-5 of ε whatever the parameters. For long compositions the
   * default is widened until the composed PLD is predicted to fit in 2^20
   * points (±8 standard deviations of the summed loss); it is never widened
   * past 0.1. A given spacing is never changed: if the grid would exceed
   * {@link MAX_PLD_POINTS} the accountant refuses (`DP_ERR_ACCOUNTING_LIMIT`).
   */
  readonly discretization?: number;
  /** Mass below which tails are truncated (pessimistically) after each convolution (default 1e-15). */
  readonly truncation?: number;
}

const TAIL_Z = 9.3; // P(Z > 9.3) ≈ 7e-21: single-step tails beyond this are handled pessimistically
/** The coarsest spacing the default discretisation may choose (also the coarsest one accepted). */
const MAX_AUTO_H = 0.1;

function unreliable(msg: string): never {
  throw new DpError('DP_ERR_ACCOUNTING_UNRELIABLE', `the PLD accountant cannot certify this figure: ${msg}; use the RDP accountant`);
}

/** Accurate tail pair (sf, cdf) of the standard normal at z, each from its own accurate side. */
function tails(z: number): [number, number] {
  if (z === Infinity) return [0, 1];
  if (z === -Infinity) return [1, 0];
  if (z >= 0) {
    const s = normSf(z);
    return [s, 1 - s];
  }
  const c = normCdf(z);
  return [1 - c, c];
}

/** Mass of N(0,1) in (za, zb] from the tail pairs (sf, cdf) at both ends, each difference taken on its accurate side. */
function massBetween(za: number, sa: number, ca: number, zb: number, sb: number, cb: number): number {
  if (!(zb > za)) return 0;
  if (za >= 0) return Math.max(0, sa - sb);
  if (zb <= 0) return Math.max(0, cb - ca);
  return Math.max(0, 1 - ca - sb);
}

/**
 * log(1 + expm1(e)/q) = log((e^e − (1 − q))/q) for q in (0, 1], −∞ when that is
 * ≤ 0. Written as log(1−q) − log q + log(expm1(e − log(1−q))): no e^e is formed
 * (no overflow above 709), and no 1 + r with r ≈ −1 is rounded (log1p(expm1(−37))
 * comes out −36.7), so x = σ²·u + 1/2 keeps full absolute accuracy at every loss.
 */
function logRatio(e: number, q: number): number {
  if (q === 1) return e;
  const l1q = Math.log1p(-q);
  const d = e - l1q;
  return d > 0 ? l1q - Math.log(q) + logExpm1(d) : -Infinity;
}

/**
 * The privacy loss of the Poisson-subsampled Gaussian at output x, its inverse,
 * and the x-range that carries P (all but 2·7e-21 of it). With u = (2x−1)/(2σ²)
 * the log-ratio of N(1,σ²) to N(0,σ²), the loss is log(1 − q + q·e^u) for
 * `remove` and its negative for `add`; everything stays in log space, so
 * losses far above 709 (where e^loss overflows) are exact.
 */
function lossModel(q: number, sigma: number, direction: 'remove' | 'add') {
  const s2 = sigma * sigma;
  const remove = direction === 'remove';
  const loss = (x: number): number => {
    const u = (2 * x - 1) / (2 * s2);
    const l = q === 1 ? u : u > 0 ? u + Math.log(q + (1 - q) * Math.exp(-u)) : Math.log1p(q * Math.expm1(u));
    return remove ? l : -l;
  };
  // Inverse (monotone: increasing in x for remove, decreasing for add); −∞ when no output has that loss.
  const xOf = (eps: number): number => {
    const u = logRatio(remove ? eps : -eps, q);
    return u === -Infinity ? -Infinity : s2 * u + 0.5;
  };
  // P is (1−q)N(0,σ²) + qN(1,σ²) for remove and N(0,σ²) for add.
  const xLo = remove && q === 1 ? 1 - TAIL_Z * sigma : -TAIL_Z * sigma;
  const xHi = remove ? 1 + TAIL_Z * sigma : TAIL_Z * sigma;
  return { loss, xOf, xLo, xHi, remove };
}

/** Range (max − min) of the single-step loss over the x-range carrying P, in loss units. */
function lossRange(q: number, sigma: number, direction: 'remove' | 'add'): number {
  if (q === 0 || sigma === 0) return 0;
  const m = lossModel(q, sigma, direction);
  return Math.abs(m.loss(m.xHi) - m.loss(m.xLo));
}

/**
 * Single-step discrete PLD of the Poisson-subsampled Gaussian (sensitivity 1,
 * noise σ, rate q) in one direction, by connect-the-dots on the grid i·h.
 * @throws DpError `DP_ERR_ACCOUNTING_LIMIT` when the grid would exceed {@link MAX_PLD_POINTS};
 *   `DP_ERR_ACCOUNTING_UNRELIABLE` if a mass comes out non-finite or the total is not 1.
 */
export function subsampledGaussianPld(q: number, sigma: number, direction: 'remove' | 'add', h: number): DiscretePld {
  if (q === 0) return { h, offset: 0, mass: Float64Array.of(1), inf: 0 };
  if (sigma === 0) {
    if (q === 1) return { h, offset: 0, mass: new Float64Array(0), inf: 1 };
    return direction === 'remove'
      ? { h, offset: Math.ceil(Math.log1p(-q) / h), mass: Float64Array.of(1 - q), inf: q }
      : { h, offset: Math.ceil(-Math.log1p(-q) / h), mass: Float64Array.of(1), inf: 0 };
  }
  const { loss, xOf, xLo, xHi, remove } = lossModel(q, sigma, direction);
  const lA = loss(xLo);
  const lB = loss(xHi);
  const iLo = Math.floor(Math.min(lA, lB) / h);
  const iHi = Math.ceil(Math.max(lA, lB) / h);
  const n = iHi - iLo + 1;
  if (!(n <= MAX_PLD_POINTS)) limit('single-step loss', n, h, (Math.abs(lB - lA) / MAX_PLD_POINTS) * 1.01);
  // Per grid point: x, and the tail pairs (sf, cdf) of N(0,σ²) and N(1,σ²) at x.
  const xs = new Float64Array(n);
  const s0 = new Float64Array(n);
  const c0 = new Float64Array(n);
  const s1 = new Float64Array(n);
  const c1 = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = xOf((iLo + i) * h);
    xs[i] = x;
    [s0[i], c0[i]] = tails(x / sigma);
    [s1[i], c1[i]] = tails((x - 1) / sigma);
  }
  // Masses of N(0) and N(1) on the x-set where the loss lies in the loss interval between grid points i and j.
  const between = (i: number, j: number): [number, number] => {
    const [a, b] = remove ? [i, j] : [j, i]; // x-interval (xs[a], xs[b]]
    return [
      massBetween(xs[a]! / sigma, s0[a]!, c0[a]!, xs[b]! / sigma, s0[b]!, c0[b]!),
      massBetween((xs[a]! - 1) / sigma, s1[a]!, c1[a]!, (xs[b]! - 1) / sigma, s1[b]!, c1[b]!),
    ];
  };
  const pq = (m0: number, m1: number): [number, number] =>
    remove ? [(1 - q) * m0 + q * m1, m0] : [m0, (1 - q) * m0 + q * m1];
  const mass = new Float64Array(n);
  const eh = Math.expm1(h);
  const eH = Math.exp(h);
  for (let k = 0; k + 1 < n; k++) {
    const [P, Q] = pq(...between(k, k + 1));
    if (P === 0) continue;
    // Connect-the-dots (Doroshenko et al. 2022, §4): the P-mass of (ε_k, ε_k+h] goes to
    // P_k at ε_k and P − P_k at ε_k + h so that the Q-mass P_k·e^(−ε_k) + (P − P_k)·e^(−ε_k−h) = Q
    // is kept: P_k = (Q·e^(ε_k)·e^h − P)/(e^h − 1). Q·e^(ε_k) ≤ P·e^h is formed in log space,
    // because e^(ε_k) alone overflows once ε_k > 709.78. A Q that underflowed to 0 sends all of P
    // to the right end (pessimistic).
    const gQ = Q > 0 ? Math.exp(Math.log(Q) + (iLo + k) * h) : 0;
    if (!Number.isFinite(gQ)) unreliable(`a Q-mass of the single-step loss is inconsistent at loss ${(iLo + k) * h}`);
    const left = Math.min(P, Math.max(0, (gQ * eH - P) / eh));
    mass[k]! += left;
    mass[k + 1]! += P - left;
  }
  // Lower tail: loss ≤ ε_lo goes to ε_lo. Upper tail: Q-mass above ε_hi sits at ε_hi, the rest of P at ∞.
  const [pLow] = pq(...lowerOrUpper(xs, s0, c0, s1, c1, remove, 'low'));
  mass[0]! += pLow;
  const [pUp, qUp] = pq(...lowerOrUpper(xs, s0, c0, s1, c1, remove, 'up'));
  const atTop = qUp > 0 ? Math.min(pUp, Math.exp(Math.log(qUp) + iHi * h)) : 0;
  mass[n - 1]! += atTop;
  const out = { h, offset: iLo, mass, inf: Math.max(0, pUp - atTop) };
  checkMass(out, 1e-9, 'single-step');
  return trim(out, 0);
}

/** Fails closed unless every mass is finite and the total (with ∞) is 1 within `tol`. */
function checkMass(p: DiscretePld, tol: number, what: string): void {
  let total = p.inf;
  for (let i = 0; i < p.mass.length; i++) total += p.mass[i]!;
  if (!(Math.abs(total - 1) <= tol)) unreliable(`the ${what} privacy loss distribution has total mass ${total}, not 1`);
}

/** N(0) and N(1) masses of the x-set whose loss is below the first grid point ('low') or above the last ('up'). */
function lowerOrUpper(
  xs: Float64Array, s0: Float64Array, c0: Float64Array, s1: Float64Array, c1: Float64Array, remove: boolean, side: 'low' | 'up',
): [number, number] {
  const i = side === 'low' ? 0 : xs.length - 1;
  // remove: loss increases with x, so 'low' is x ≤ xs[0] and 'up' is x > xs[n−1]; add: the reverse.
  const below = remove === (side === 'low');
  const x = xs[i]!;
  if (below) return x === -Infinity ? [0, 0] : [c0[i]!, c1[i]!];
  return x === -Infinity ? [1, 1] : [s0[i]!, s1[i]!];
}

function unsupported(ev: DpEvent): never {
  throw new DpError('DP_ERR_UNSUPPORTED', `the PLD accountant supports only Gaussian and Poisson-sampled Gaussian events, got '${ev.kind}'`);
}

/** Smallest single-step loss spread over the Gaussian leaves of `ev` (∞ if none). */
function lossSpread(ev: DpEvent): number {
  if (ev.kind === 'self_composed') return lossSpread(ev.event);
  if (ev.kind === 'composed') return Math.min(Infinity, ...ev.events.map(lossSpread));
  const q = ev.kind === 'poisson_sampled' ? ev.q : 1;
  const s = ev.kind === 'poisson_sampled' ? effectiveGaussianNoise(ev.event) : ev.kind === 'gaussian' ? ev.noiseMultiplier : undefined;
  if (s === undefined || s === 0 || q === 0) return Infinity;
  return Math.min(1 / s, q * Math.sqrt(Math.expm1(Math.min(700, 1 / (s * s)))));
}

/** The single-step spacing for `ev`: 1/100 of its smallest loss spread, clamped to [1e-6, 0.1] (see {@link PldOptions.discretization}). */
export function autoDiscretization(ev: DpEvent): number {
  const spread = lossSpread(ev);
  return Number.isFinite(spread) ? Math.min(MAX_AUTO_H, Math.max(1e-6, spread / 100)) : 1e-4;
}

/** Throws `DP_ERR_UNSUPPORTED` unless every leaf is a Gaussian, possibly Poisson-sampled (not nested). */
function checkSupported(ev: DpEvent): void {
  if (ev.kind === 'gaussian') return;
  if (ev.kind === 'poisson_sampled') {
    if (effectiveGaussianNoise(ev.event) === undefined) unsupported(ev.event);
    return;
  }
  if (ev.kind === 'self_composed') return checkSupported(ev.event);
  if (ev.kind === 'composed') return ev.events.forEach(checkSupported);
  unsupported(ev);
}

/** One kind of step, (q, σ), and how many times it runs in the whole composition. */
interface Leaf {
  readonly q: number;
  readonly sigma: number;
  count: number;
}

/**
 * Flattens `ev` (run `mult` times) into its distinct steps with their total
 * counts. Composition is commutative (losses add), so the PLD of the whole is
 * the convolution of each step's PLD self-composed `count` times.
 */
function collectLeaves(ev: DpEvent, mult: number, out: Map<string, Leaf>): void {
  const safe = (n: number): number => {
    if (Number.isSafeInteger(n)) return n;
    throw new DpError('DP_ERR_ACCOUNTING_LIMIT', `the composition runs a step about ${n.toPrecision(3)} times, above 2^53; use the RDP accountant`);
  };
  safe(mult);
  const add = (q: number, sigma: number): void => {
    const key = `${q}:${sigma}`;
    const leaf = out.get(key);
    if (leaf) leaf.count = safe(leaf.count + mult);
    else out.set(key, { q, sigma, count: mult });
  };
  switch (ev.kind) {
    case 'gaussian':
      return add(1, ev.noiseMultiplier);
    case 'poisson_sampled': {
      const s = effectiveGaussianNoise(ev.event);
      if (s === undefined) return unsupported(ev.event);
      return add(ev.q, s);
    }
    case 'self_composed':
      return collectLeaves(ev.event, mult * ev.count, out);
    case 'composed':
      for (const e of ev.events) collectLeaves(e, mult * (ev.count ?? 1), out);
      return;
    default:
      return unsupported(ev);
  }
}

/**
 * Un-sampled Gaussian steps compose exactly into one: n runs at noise σᵢ are one
 * Gaussian with σ = (Σ nᵢ/σᵢ²)^(−1/2) (the losses are Gaussian and add). They
 * become a single leaf run once, which is both exact and O(1) in the count.
 */
function mergeGaussians(leaves: Leaf[]): Leaf[] {
  const full = leaves.filter((l) => l.q === 1);
  if (full.length === 0) return leaves;
  let inv = 0;
  for (const l of full) inv += l.sigma === 0 ? Infinity : l.count / (l.sigma * l.sigma);
  return [...leaves.filter((l) => l.q !== 1), { q: 1, sigma: inv === Infinity ? 0 : 1 / Math.sqrt(inv), count: 1 }];
}

const QUAD_POINTS = 401;

/**
 * Mean and variance of the single-step loss under P, by the trapezoid rule
 * over each normal component of P (±9.3σ, 401 points): used only to size the
 * grid, never in the reported figure.
 */
function lossMoments(q: number, sigma: number, dir: 'remove' | 'add'): { mean: number; variance: number } {
  if (q === 0 || sigma === 0) return { mean: 0, variance: 0 };
  const { loss } = lossModel(q, sigma, dir);
  const comps: [number, number][] = dir === 'add' || q === 1 ? [[1, dir === 'add' ? 0 : 1]] : [[1 - q, 0], [q, 1]];
  const pts: number[] = [];
  const wts: number[] = [];
  for (const [w, c] of comps) {
    let norm = 0;
    const start = wts.length;
    for (let i = 0; i < QUAD_POINTS; i++) {
      const z = -TAIL_Z + (2 * TAIL_Z * i) / (QUAD_POINTS - 1);
      const phi = Math.exp(-0.5 * z * z) * (i === 0 || i === QUAD_POINTS - 1 ? 0.5 : 1);
      pts.push(loss(c + sigma * z));
      wts.push(phi);
      norm += phi;
    }
    for (let i = start; i < wts.length; i++) wts[i] = (wts[i]! * w) / norm;
  }
  let mean = 0;
  for (let i = 0; i < pts.length; i++) mean += wts[i]! * pts[i]!;
  let variance = 0;
  for (let i = 0; i < pts.length; i++) variance += wts[i]! * (pts[i]! - mean) ** 2;
  return { mean, variance };
}

/**
 * Width (in loss units) that the composed PLD is expected to span once
 * negligible tails are trimmed: ±8 standard deviations of the summed loss
 * plus one single-step range, and never more than the untrimmed sum of ranges.
 */
function predictedWidth(leaves: readonly Leaf[], dir: 'remove' | 'add'): number {
  let variance = 0;
  let sumRange = 0;
  let maxRange = 0;
  for (const l of leaves) {
    const r = lossRange(l.q, l.sigma, dir);
    variance += l.count * lossMoments(l.q, l.sigma, dir).variance;
    sumRange += l.count * r;
    maxRange = Math.max(maxRange, r);
  }
  return Math.min(sumRange, 16 * Math.sqrt(variance) + maxRange);
}

/** Points the default discretisation aims at for the composed PLD (a quarter of {@link MAX_PLD_POINTS}). */
const TARGET_POINTS = 1 << 20;

/** Composes Gaussian and Poisson-subsampled Gaussian events through their privacy loss distributions. */
export class PldAccountant {
  private readonly events: DpEvent[] = [];
  private readonly h: number;
  private readonly cut: number;
  private cache: { plds: [DiscretePld, DiscretePld]; open: boolean } | undefined;

  constructor(opts: PldOptions = {}) {
    this.h = opts.discretization ?? NaN;
    this.cut = opts.truncation ?? 1e-15;
    if (opts.discretization !== undefined && !(this.h > 0 && this.h <= 0.1)) throw new DpError('DP_ERR_BAD_PARAM', `"discretization" expected a number in (0, 0.1], got ${this.h}`);
    if (!(this.cut >= 0 && this.cut < 1e-6)) throw new DpError('DP_ERR_BAD_PARAM', `"truncation" expected a number in [0, 1e-6), got ${this.cut}`);
  }

  /** Adds `count` runs of `event`. @throws DpError `DP_ERR_UNSUPPORTED` for non-Gaussian events. */
  compose(event: DpEvent, count = 1): this {
    validateEvent(event);
    if (!Number.isSafeInteger(count) || count < 1) throw new DpError('DP_ERR_BAD_PARAM', `"count" expected a positive integer, got ${count}`);
    checkSupported(event);
    this.events.push(count === 1 ? event : { kind: 'self_composed', event, count });
    this.cache = undefined;
    return this;
  }

  /**
   * The grid is planned before anything is built: its spacing h (given, or
   * the default of {@link autoDiscretization} widened until the predicted
   * composed width fits in 2^20 points), and a refusal when the prediction
   * exceeds {@link MAX_PLD_POINTS}. Every convolution checks the bound again.
   */
  private plds(): { plds: [DiscretePld, DiscretePld]; open: boolean } {
    if (this.cache) return this.cache;
    const map = new Map<string, Leaf>();
    for (const e of this.events) collectLeaves(e, 1, map);
    const leaves = mergeGaussians([...map.values()].filter((l) => l.q > 0));
    const width = Math.max(predictedWidth(leaves, 'remove'), predictedWidth(leaves, 'add'));
    let h = this.h;
    if (Number.isNaN(h)) {
      h = Math.max(autoDiscretization({ kind: 'composed', events: this.events }), width / TARGET_POINTS);
      if (h > MAX_AUTO_H) limit('composed loss', width / MAX_AUTO_H, MAX_AUTO_H, Infinity);
    }
    if (!(width / h <= MAX_PLD_POINTS)) limit('composed loss', width / h, h, (width / MAX_PLD_POINTS) * 1.01);
    const build = (dir: 'remove' | 'add'): DiscretePld => {
      let acc: DiscretePld = { h, offset: 0, mass: Float64Array.of(1), inf: 0 };
      for (const l of leaves) acc = composePld(acc, selfComposePld(subsampledGaussianPld(l.q, l.sigma, dir, h), l.count, this.cut), this.cut);
      checkMass(acc, 1e-6, 'composed');
      return acc;
    };
    // Mass at +∞ is genuine only when some step has σ = 0; otherwise it is truncation, bounded but not a figure.
    const open = leaves.some((l) => l.sigma === 0);
    this.cache = { plds: [build('remove'), build('add')], open };
    return this.cache;
  }

  /**
   * The smallest ε with (ε, δ)-DP for both directions.
   * @throws DpError `DP_ERR_ACCOUNTING_LIMIT` when the grid would exceed its bound,
   *   `DP_ERR_ACCOUNTING_UNRELIABLE` when the figure cannot be certified (never a smaller number).
   */
  getEpsilon(delta: number): number {
    if (!(delta > 0 && delta < 1)) throw new DpError('DP_ERR_BAD_PARAM', `"delta" expected a number in (0, 1), got ${delta}`);
    const { plds: [r, a], open } = this.plds();
    const eps = Math.max(pldEpsilon(r, delta), pldEpsilon(a, delta));
    if (Number.isNaN(eps)) unreliable('ε came out NaN');
    if (eps === Infinity && !open) {
      unreliable(`the tail mass moved to +∞ by truncation (${Math.max(r.inf, a.inf).toPrecision(3)}) exceeds δ = ${delta}`);
    }
    return eps;
  }

  /** The smallest δ with (ε, δ)-DP for both directions. @throws DpError as {@link getEpsilon}. */
  getDelta(epsilon: number): number {
    if (!(epsilon >= 0)) throw new DpError('DP_ERR_BAD_PARAM', `"epsilon" expected a non-negative number, got ${epsilon}`);
    const { plds: [r, a] } = this.plds();
    const d = Math.max(pldDelta(r, epsilon), pldDelta(a, epsilon));
    if (!(d >= 0 && d <= 1)) unreliable(`δ came out ${d}`);
    return d;
  }
}
