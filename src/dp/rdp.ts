/**
 * Rényi-DP accountant (Mironov 2017). Each event contributes RDP ε(α) at a
 * fixed list of orders α; composition adds them; a conversion turns the total
 * into (ε, δ)-DP at the best order.
 *
 * - Poisson-subsampled Gaussian: exact A_α of Mironov, Talwar, Zhang,
 *   "Rényi Differential Privacy of the Sampled Gaussian Mechanism" (2019),
 *   §3.3, at integer and fractional orders. At fractional orders the binomial
 *   series has coefficients C(α, i) that alternate in sign once i > α; they are
 *   summed with their signs, so the value is exact (as in Opacus). Google's
 *   dp-accounting adds |C(α, i)| instead, an upper bound that can exceed the
 *   exact value (by 3% at α = 1.5, q = 0.01, σ = 2.5); integer orders agree.
 * - Discrete mechanisms: the bounds from their papers (see {@link ddgRdp},
 *   {@link skellamRdp}, {@link discreteGaussianRdp}).
 * - Conversions: `classic` ε = r + log(1/δ)/(α−1) (Mironov 2017, Prop. 3) and
 *   `improved` ε = r + log(1 − 1/α) − log(δα)/(α−1) (Balle et al. 2020,
 *   Thm. 21; Canonne, Kamath, Steinke 2020, Prop. 12), the default, as in
 *   dp-accounting's `compute_epsilon` and Opacus's `get_privacy_spent`.
 *
 * @module
 */
import { DpError } from '../errors.js';
import { logAdd, logBinom, logErfc, logExpm1 } from './_math.js';
import { type DpEvent, effectiveGaussianNoise, validateEvent } from './events.js';
import { ddgRdp, discreteGaussianRdp, skellamRdp, subsampledRdpUpperBound } from './rdp-mechanisms.js';

export { ddgRdp, discreteGaussianRdp, skellamRdp, subsampledRdpUpperBound } from './rdp-mechanisms.js';

/** dp-accounting's default orders: 1.1, 1.2, …, 10.9, then 11, …, 63, 128, 256, 512, 1024. */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, i) => Math.round((1 + (i + 1) / 10) * 10) / 10),
  ...Array.from({ length: 53 }, (_, i) => 11 + i),
  128, 256, 512, 1024,
]);

/** RDP-to-(ε, δ) conversion. */
export type Conversion = 'improved' | 'classic';

/** ε with the order that achieved it. */
export interface EpsilonAtOrder {
  readonly epsilon: number;
  readonly order: number;
}

/** log A_α for integer α (MTZ19 §3.3), written as log(1 + Σ_{i≥2} C(α,i)qⁱ(1−q)^(α−i)(e^((i²−i)/2σ²) − 1)). */
function logAInt(q: number, sigma: number, alpha: number): number {
  // The binomial weights sum to 1 and the i = 0, 1 terms have exponent 0, so
  // subtracting 1 leaves only positive terms: log A keeps full relative accuracy.
  const lq = Math.log(q);
  const l1q = Math.log1p(-q);
  let acc = -Infinity;
  for (let i = 2; i <= alpha; i++) {
    const t = logBinom(alpha, i).log + i * lq + (alpha - i) * l1q + logExpm1((i * i - i) / (2 * sigma * sigma));
    acc = logAdd(acc, t);
  }
  return acc === -Infinity ? 0 : logAdd(0, acc);
}

const MAX_FRAC_TERMS = 1000;

/** log A_α for fractional α (MTZ19 §3.3): two series split at z0, each term signed by C(α, i). */
function logAFrac(q: number, sigma: number, alpha: number): number {
  const s2 = sigma * sigma;
  const z0 = s2 * Math.log(1 / q - 1) + 0.5;
  const lq = Math.log(q);
  const l1q = Math.log1p(-q);
  const k = Math.SQRT2 * sigma;
  const logs: number[] = [];
  const signs: number[] = [];
  let last0 = -Infinity;
  let last1 = -Infinity;
  let maxLog = -Infinity;
  for (let i = 0; i < MAX_FRAC_TERMS; i++) {
    const { log: lc, sign } = logBinom(alpha, i);
    const j = alpha - i;
    const s0 = lc + i * lq + j * l1q + (i * i - i) / (2 * s2) + Math.log(0.5) + logErfc((i - z0) / k);
    const s1 = lc + j * lq + i * l1q + (j * j - j) / (2 * s2) + Math.log(0.5) + logErfc((z0 - j) / k);
    logs.push(s0, s1);
    signs.push(sign, sign);
    maxLog = Math.max(maxLog, s0, s1);
    // Stop once both series decrease and the new terms are below e^-36 of the largest.
    if (i > alpha && s0 < last0 && s1 < last1 && Math.max(s0, s1) < maxLog - 36) {
      let sum = 0;
      for (let t = 0; t < logs.length; t++) sum += signs[t]! * Math.exp(logs[t]! - maxLog);
      if (!(sum > 0)) return Infinity;
      return maxLog + Math.log(sum);
    }
    last0 = s0;
    last1 = s1;
  }
  return Infinity; // did not converge: exclude this order (ε = ∞ there)
}

/**
 * RDP of the Poisson-subsampled Gaussian at each order (MTZ19): q = 1 gives
 * α/(2σ²); q = 0 gives 0; σ = 0 gives ∞.
 */
export function rdpPoissonGaussian(q: number, sigma: number, orders: readonly number[]): Float64Array {
  if (!(q >= 0 && q <= 1)) throw new DpError('DP_ERR_BAD_PARAM', `"q" expected a sampling rate in [0, 1], got ${q}`);
  if (!(sigma >= 0)) throw new DpError('DP_ERR_BAD_PARAM', `"noiseMultiplier" expected a non-negative number, got ${sigma}`);
  return Float64Array.from(orders, (a) => {
    if (q === 0) return 0;
    if (sigma === 0 || a === Infinity) return Infinity;
    if (q === 1) return a / (2 * sigma * sigma);
    if (a <= 1) return Infinity;
    const la = Number.isInteger(a) ? logAInt(q, sigma, a) : logAFrac(q, sigma, a);
    // log A_α ≥ 0; the signed fractional series can round to −1e-15 when A_α − 1 is that small.
    return la < 0 && la > -1e-12 ? 0 : la / (a - 1);
  });
}

/** True when `ev` contains a Poisson-sampled event anywhere inside. */
function hasSampling(ev: DpEvent): boolean {
  if (ev.kind === 'poisson_sampled') return true;
  if (ev.kind === 'self_composed') return hasSampling(ev.event);
  if (ev.kind === 'composed') return ev.events.some(hasSampling);
  return false;
}

/**
 * The RDP of one event at each order (composition adds, self-composition
 * multiplies). Poisson sampling of a Gaussian (or a composition of Gaussians)
 * uses MTZ19 exactly; of a discrete mechanism, the general bound of Zhu and
 * Wang (ICML 2019, general upper bound). Nested sampling is unsupported.
 * @throws DpError `DP_ERR_BAD_PARAM` for an invalid event, `DP_ERR_UNSUPPORTED` for nested sampling.
 */
export function eventRdp(ev: DpEvent, orders: readonly number[] = DEFAULT_ORDERS): Float64Array {
  validateEvent(ev);
  return rdpOf(ev, orders);
}

function rdpOf(ev: DpEvent, orders: readonly number[]): Float64Array {
  switch (ev.kind) {
    case 'gaussian':
      return rdpPoissonGaussian(1, ev.noiseMultiplier, orders);
    case 'discrete_gaussian':
      return Float64Array.from(orders, (a) => discreteGaussianRdp(ev.noiseMultiplier, a));
    case 'ddg':
      return Float64Array.from(orders, (a) => ddgRdp(ev, a));
    case 'skellam':
      return Float64Array.from(orders, (a) => skellamRdp(ev, a));
    case 'self_composed':
      return rdpOf(ev.event, orders).map((r) => r * ev.count);
    case 'composed': {
      const out = new Float64Array(orders.length);
      for (const e of ev.events) {
        const r = rdpOf(e, orders);
        for (let i = 0; i < out.length; i++) out[i]! += r[i]!;
      }
      return out.map((r) => r * (ev.count ?? 1));
    }
    case 'poisson_sampled': {
      if (hasSampling(ev.event)) throw new DpError('DP_ERR_UNSUPPORTED', 'nested Poisson sampling is not supported by the RDP accountant');
      const sigma = effectiveGaussianNoise(ev.event);
      if (sigma !== undefined) return rdpPoissonGaussian(ev.q, sigma, orders);
      if (ev.q === 0) return new Float64Array(orders.length);
      const inner = (a: number): number => rdpOf(ev.event, [a])[0]!;
      return Float64Array.from(orders, (a) => Math.min(inner(a), subsampledRdpUpperBound(ev.q, inner, a)));
    }
  }
}

/**
 * Converts RDP values to (ε, δ)-DP at the best order.
 * `improved` follows dp-accounting's `compute_epsilon`: orders ≤ 1.01 are
 * skipped, and ε = 0 whenever the KL bound δ ≥ √(1 − e^(−r)) already holds.
 * @throws DpError `DP_ERR_BAD_PARAM` for δ outside (0, 1) or mismatched lengths;
 *   `DP_ERR_ACCOUNTING_UNRELIABLE` when an RDP value is NaN or negative.
 */
export function epsilonFromRdp(
  orders: readonly number[],
  rdp: ArrayLike<number>,
  delta: number,
  conversion: Conversion = 'improved',
): EpsilonAtOrder {
  if (!(delta > 0 && delta < 1)) throw new DpError('DP_ERR_BAD_PARAM', `"delta" expected a number in (0, 1), got ${delta}`);
  if (orders.length !== rdp.length || orders.length === 0) {
    throw new DpError('DP_ERR_BAD_PARAM', `orders and rdp must be non-empty and of equal length, got ${orders.length} and ${rdp.length}`);
  }
  let best = Infinity;
  let bestOrder = orders[0]!;
  for (let i = 0; i < orders.length; i++) {
    const a = orders[i]!;
    const r = rdp[i]!;
    // Fail closed: an RDP value is ≥ 0 or +∞; NaN or a clearly negative value means the
    // computation broke down, and skipping that order could hide it, so nothing is reported.
    if (Number.isNaN(r) || r < -1e-9) {
      throw new DpError('DP_ERR_ACCOUNTING_UNRELIABLE', `the RDP accountant cannot certify ε: RDP at order ${a} came out ${r}`);
    }
    let eps: number;
    if (r === Infinity || a === Infinity) eps = Infinity;
    else if (conversion === 'classic') eps = a > 1 ? r + Math.log(1 / delta) / (a - 1) : Infinity;
    else if (r <= 0 || delta * delta + Math.expm1(-r) > 0) eps = 0;
    else if (a > 1.01) eps = r + Math.log1p(-1 / a) - Math.log(delta * a) / (a - 1);
    else eps = Infinity;
    if (eps < best) {
      best = eps;
      bestOrder = a;
    }
  }
  return { epsilon: Math.max(0, best), order: bestOrder };
}

/** Composes events and reports (ε, δ) through RDP. */
export class RdpAccountant {
  /** The orders α at which RDP is tracked. */
  readonly orders: readonly number[];
  private readonly total: Float64Array;

  /** @param orders RDP orders, each ≥ 1 (default {@link DEFAULT_ORDERS}). */
  constructor(orders: readonly number[] = DEFAULT_ORDERS) {
    if (orders.length === 0 || orders.some((a) => !(a >= 1))) {
      throw new DpError('DP_ERR_BAD_PARAM', `"orders" expected a non-empty list of numbers >= 1`);
    }
    this.orders = [...orders];
    this.total = new Float64Array(orders.length);
  }

  /** Adds `count` runs of `event`. @throws DpError on a bad event or count. */
  compose(event: DpEvent, count = 1): this {
    if (!Number.isSafeInteger(count) || count < 1) throw new DpError('DP_ERR_BAD_PARAM', `"count" expected a positive integer, got ${count}`);
    const r = eventRdp(event, this.orders);
    for (let i = 0; i < r.length; i++) this.total[i]! += r[i]! * count;
    return this;
  }

  /** The accumulated RDP at each order (a copy). */
  rdp(): Float64Array {
    return this.total.slice();
  }

  /** The smallest ε over the orders at which the composition is (ε, δ)-DP. */
  getEpsilon(delta: number, conversion: Conversion = 'improved'): EpsilonAtOrder {
    return epsilonFromRdp(this.orders, this.total, delta, conversion);
  }
}
