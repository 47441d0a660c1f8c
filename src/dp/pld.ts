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
import { normCdf, normSf } from './_math.js';
import { type DpEvent, effectiveGaussianNoise, validateEvent } from './events.js';
import { type DiscretePld, trim, composePld, selfComposePld, pldDelta, pldEpsilon } from './pld-discrete.js';

export { composePld, pldDelta, pldEpsilon, selfComposePld, type DiscretePld } from './pld-discrete.js';

/** Options of the PLD accountant. */
export interface PldOptions {
  /**
   * Grid spacing h of the privacy loss. Default: 1/100 of the smallest
   * single-step loss spread among the events (≈ q·√(e^(1/σ²) − 1), at most
   * 1/σ), clamped to [1e-6, 1e-2]; this keeps about 100 grid points per
   * standard deviation of every step, so the discretisation error stays
   * around 1e-5 of ε whatever the parameters.
   */
  readonly discretization?: number;
  /** Mass below which tails are truncated (pessimistically) after each convolution (default 1e-15). */
  readonly truncation?: number;
}

const TAIL_Z = 9.3; // P(Z > 9.3) ≈ 7e-21: single-step tails beyond this are handled pessimistically

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

/** Mass of N(0,1) in (a, b] from cached tail pairs at a and b. */
function massBetween(za: number, ta: [number, number], zb: number, tb: [number, number]): number {
  if (!(zb > za)) return 0;
  if (za >= 0) return Math.max(0, ta[0] - tb[0]);
  if (zb <= 0) return Math.max(0, tb[1] - ta[1]);
  return Math.max(0, 1 - ta[1] - tb[0]);
}

/**
 * Single-step discrete PLD of the Poisson-subsampled Gaussian (sensitivity 1,
 * noise σ, rate q) in one direction, by connect-the-dots on the grid i·h.
 */
export function subsampledGaussianPld(q: number, sigma: number, direction: 'remove' | 'add', h: number): DiscretePld {
  if (q === 0) return { h, offset: 0, mass: Float64Array.of(1), inf: 0 };
  if (sigma === 0) {
    if (q === 1) return { h, offset: 0, mass: new Float64Array(0), inf: 1 };
    return direction === 'remove'
      ? { h, offset: Math.ceil(Math.log1p(-q) / h), mass: Float64Array.of(1 - q), inf: q }
      : { h, offset: Math.ceil(-Math.log1p(-q) / h), mass: Float64Array.of(1), inf: 0 };
  }
  const s2 = sigma * sigma;
  const remove = direction === 'remove';
  // Loss as a function of the output x, and its inverse (monotone: increasing for remove, decreasing for add).
  const loss = (x: number): number => {
    const u = (2 * x - 1) / (2 * s2);
    const l = q === 1 ? u : u > 0 ? u + Math.log(q + (1 - q) * Math.exp(-u)) : Math.log1p(q * Math.expm1(u));
    return remove ? l : -l;
  };
  const xOf = (eps: number): number => {
    const r = (remove ? Math.expm1(eps) : Math.expm1(-eps)) / q;
    if (!(r > -1)) return -Infinity; // no output has a loss above eps
    return s2 * Math.log1p(r) + 0.5;
  };
  const xLo = -TAIL_Z * sigma;
  const xHi = 1 + TAIL_Z * sigma;
  const lA = loss(xLo);
  const lB = loss(xHi);
  const iLo = Math.floor(Math.min(lA, lB) / h);
  const iHi = Math.ceil(Math.max(lA, lB) / h);
  const n = iHi - iLo + 1;
  // Per grid point: x, and the tail pairs of N(0,σ²) and N(1,σ²) at x.
  const xs = new Float64Array(n);
  const t0: [number, number][] = [];
  const t1: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    const x = xOf((iLo + i) * h);
    xs[i] = x;
    t0.push(tails(x / sigma));
    t1.push(tails((x - 1) / sigma));
  }
  // Masses of N(0) and N(1) on the x-set where the loss lies in a loss interval.
  const between = (i: number, j: number): [number, number] => {
    const [a, b] = remove ? [i, j] : [j, i]; // x-interval (xs[a], xs[b]]
    return [
      massBetween(xs[a]! / sigma, t0[a]!, xs[b]! / sigma, t0[b]!),
      massBetween((xs[a]! - 1) / sigma, t1[a]!, (xs[b]! - 1) / sigma, t1[b]!),
    ];
  };
  const pq = (m0: number, m1: number): [number, number] =>
    remove ? [(1 - q) * m0 + q * m1, m0] : [m0, (1 - q) * m0 + q * m1];
  const mass = new Float64Array(n);
  const eh = Math.expm1(h);
  for (let k = 0; k + 1 < n; k++) {
    const [P, Q] = pq(...between(k, k + 1));
    if (P === 0) continue;
    const g = Math.exp((iLo + k) * h);
    // Split so that P- and Q-mass are both preserved: fraction w of Q to the right end point.
    let w = Q > 0 ? (P - g * Q) / (g * eh * Q) : 1;
    w = Number.isFinite(w) ? Math.min(1, Math.max(0, w)) : 1;
    if (Q > 0) {
      mass[k]! += (1 - w) * Q * g;
      mass[k + 1]! += w * Q * g * Math.exp(h);
    } else {
      mass[k + 1]! += P;
    }
  }
  // Lower tail: loss ≤ ε_lo goes to ε_lo. Upper tail: Q-mass above ε_hi sits at ε_hi, the rest of P at ∞.
  const [pLow] = pq(...lowerOrUpper(xs, t0, t1, sigma, remove, 'low'));
  mass[0]! += pLow;
  const [pUp, qUp] = pq(...lowerOrUpper(xs, t0, t1, sigma, remove, 'up'));
  const gHi = Math.exp(iHi * h);
  const atTop = Math.min(pUp, gHi * qUp);
  mass[n - 1]! += atTop;
  return trim({ h, offset: iLo, mass, inf: Math.max(0, pUp - atTop) }, 0);
}

/** N(0) and N(1) masses of the x-set whose loss is below the first grid point ('low') or above the last ('up'). */
function lowerOrUpper(
  xs: Float64Array, t0: [number, number][], t1: [number, number][], sigma: number, remove: boolean, side: 'low' | 'up',
): [number, number] {
  const i = side === 'low' ? 0 : xs.length - 1;
  // remove: loss increases with x, so 'low' is x ≤ xs[0] and 'up' is x > xs[n−1]; add: the reverse.
  const below = remove === (side === 'low');
  const x = xs[i]!;
  if (below) return x === -Infinity ? [0, 0] : [t0[i]![1], t1[i]![1]];
  return x === -Infinity ? [1, 1] : [t0[i]![0], t1[i]![0]];
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

/** The default grid spacing for `ev` (see {@link PldOptions.discretization}). */
export function autoDiscretization(ev: DpEvent): number {
  const spread = lossSpread(ev);
  return Number.isFinite(spread) ? Math.min(1e-2, Math.max(1e-6, spread / 100)) : 1e-4;
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

/** Builds the discrete PLD of `ev` in one direction. */
function pldOf(ev: DpEvent, dir: 'remove' | 'add', h: number, cut: number): DiscretePld {
  switch (ev.kind) {
    case 'gaussian':
      return subsampledGaussianPld(1, ev.noiseMultiplier, dir, h);
    case 'poisson_sampled': {
      const s = effectiveGaussianNoise(ev.event);
      if (s === undefined) return unsupported(ev.event);
      return subsampledGaussianPld(ev.q, s, dir, h);
    }
    case 'self_composed':
      return selfComposePld(pldOf(ev.event, dir, h, cut), ev.count, cut);
    case 'composed': {
      let acc: DiscretePld = { h, offset: 0, mass: Float64Array.of(1), inf: 0 };
      for (const e of ev.events) acc = composePld(acc, pldOf(e, dir, h, cut), cut);
      return (ev.count ?? 1) > 1 ? selfComposePld(acc, ev.count!, cut) : acc;
    }
    default:
      return unsupported(ev);
  }
}

/** Composes Gaussian and Poisson-subsampled Gaussian events through their privacy loss distributions. */
export class PldAccountant {
  private readonly events: DpEvent[] = [];
  private readonly h: number;
  private readonly cut: number;
  private cache: [DiscretePld, DiscretePld] | undefined;

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

  private plds(): [DiscretePld, DiscretePld] {
    if (this.cache) return this.cache;
    const all: DpEvent = { kind: 'composed', events: this.events };
    const h = Number.isNaN(this.h) ? autoDiscretization(all) : this.h;
    this.cache = [pldOf(all, 'remove', h, this.cut), pldOf(all, 'add', h, this.cut)];
    return this.cache;
  }

  /** The smallest ε with (ε, δ)-DP for both directions. */
  getEpsilon(delta: number): number {
    if (!(delta > 0 && delta < 1)) throw new DpError('DP_ERR_BAD_PARAM', `"delta" expected a number in (0, 1), got ${delta}`);
    const [r, a] = this.plds();
    return Math.max(pldEpsilon(r, delta), pldEpsilon(a, delta));
  }

  /** The smallest δ with (ε, δ)-DP for both directions. */
  getDelta(epsilon: number): number {
    if (!(epsilon >= 0)) throw new DpError('DP_ERR_BAD_PARAM', `"epsilon" expected a non-negative number, got ${epsilon}`);
    const [r, a] = this.plds();
    return Math.max(pldDelta(r, epsilon), pldDelta(a, epsilon));
  }
}
