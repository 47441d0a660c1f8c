/**
 * Differential-privacy events: a JSON-serialisable description of *what
 * mechanism ran*, not of the ε it cost. Accountants (RDP in `rdp.ts`, PLD in
 * `pld.ts`) turn a list of events into (ε, δ); the ledger (`ledger.ts`)
 * persists events so ε can always be recomputed, by a newer or an independent
 * accountant, from the record of what happened.
 *
 * Parameterisation of the discrete mechanisms follows the papers' accounting
 * (Kairouz, Liu, Steinke ICML 2021 §4; Agarwal, Kairouz, Liu NeurIPS 2021 §4):
 * `noiseMultiplier` z is the ratio of the standard deviation of the *total*
 * noise (the sum over the `minClients` sites whose noise is guaranteed to be in
 * the aggregate) to the L2 clip `clip`; each site adds noise of standard
 * deviation z·clip/√minClients, measured before scaling by `scale` (1/γ).
 *
 * @module
 */
import { DpError } from '../errors.js';

/** The continuous Gaussian mechanism with L2 sensitivity 1 and noise σ = `noiseMultiplier`. */
export interface GaussianEvent {
  readonly kind: 'gaussian';
  readonly noiseMultiplier: number;
}

/**
 * The discrete Gaussian N_Z(0, σ²) on an integer-valued query of L2
 * sensitivity Δ, with `noiseMultiplier` = σ/Δ (Canonne, Kamath, Steinke 2020).
 */
export interface DiscreteGaussianEvent {
  readonly kind: 'discrete_gaussian';
  readonly noiseMultiplier: number;
}

/** Shared parameters of the distributed discrete mechanisms (DDG and Skellam). */
export interface DistributedParams {
  /** Total noise standard deviation divided by `clip`. */
  readonly noiseMultiplier: number;
  /** L2 clip C of one site's update, before scaling. */
  readonly clip: number;
  /** Dimension d of the (padded) vector. */
  readonly dim: number;
  /** Minimum number of sites whose noise is in the sum (the secure-aggregation threshold). */
  readonly minClients: number;
  /** Scale factor S = 1/γ applied before integer rounding. */
  readonly scale: number;
  /** Conditional randomised rounding parameter β in [0, 1); 0 means unconditional rounding. */
  readonly beta: number;
  /** Bit width of the modular sum, recorded for the audit trail; not used by the bound. */
  readonly bits?: number;
}

/** The distributed discrete Gaussian of Kairouz, Liu, Steinke (ICML 2021). */
export interface DistributedDiscreteGaussianEvent extends DistributedParams {
  readonly kind: 'distributed_discrete_gaussian';
}

/** The distributed Skellam mechanism of Agarwal, Kairouz, Liu (NeurIPS 2021). */
export interface SkellamEvent extends DistributedParams {
  readonly kind: 'skellam';
}

/** `event` applied to a Poisson sample of the data, each unit included with probability `q`. */
export interface PoissonSampledEvent {
  readonly kind: 'poisson_sampled';
  readonly q: number;
  readonly event: DpEvent;
}

/** Every event of `events` runs once (on the same data); the list itself runs `count` times (default 1). */
export interface ComposedEvent {
  readonly kind: 'composed';
  readonly events: readonly DpEvent[];
  readonly count?: number;
}

/** `event` runs `count` times. */
export interface SelfComposedEvent {
  readonly kind: 'self_composed';
  readonly event: DpEvent;
  readonly count: number;
}

/** A differential-privacy event (a discriminated union on `kind`). */
export type DpEvent =
  | GaussianEvent
  | DiscreteGaussianEvent
  | DistributedDiscreteGaussianEvent
  | SkellamEvent
  | PoissonSampledEvent
  | ComposedEvent
  | SelfComposedEvent;

/** All values of `DpEvent['kind']`. */
export const EVENT_KINDS = [
  'gaussian',
  'discrete_gaussian',
  'distributed_discrete_gaussian',
  'skellam',
  'poisson_sampled',
  'composed',
  'self_composed',
] as const;

const MAX_DEPTH = 32;

function bad(path: string, msg: string): never {
  throw new DpError('DP_ERR_BAD_PARAM', `"${path}" ${msg}`);
}

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function num(o: Record<string, unknown>, key: string, path: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) bad(`${path}.${key}`, `expected a finite number, got ${JSON.stringify(v)}`);
  return v;
}

function nonNeg(o: Record<string, unknown>, key: string, path: string): void {
  const v = num(o, key, path);
  if (v < 0) bad(`${path}.${key}`, `expected a non-negative number, got ${v}`);
}

function positive(o: Record<string, unknown>, key: string, path: string): void {
  const v = num(o, key, path);
  if (!(v > 0)) bad(`${path}.${key}`, `expected a positive number, got ${v}`);
}

function posInt(o: Record<string, unknown>, key: string, path: string): void {
  const v = num(o, key, path);
  if (!Number.isSafeInteger(v) || v < 1) bad(`${path}.${key}`, `expected a positive integer, got ${v}`);
}

function checkDistributed(o: Record<string, unknown>, path: string): void {
  nonNeg(o, 'noiseMultiplier', path);
  positive(o, 'clip', path);
  posInt(o, 'dim', path);
  posInt(o, 'minClients', path);
  positive(o, 'scale', path);
  const beta = num(o, 'beta', path);
  if (!(beta >= 0 && beta < 1)) bad(`${path}.beta`, `expected a number in [0, 1), got ${beta}`);
  if (o['bits'] !== undefined) {
    const b = num(o, 'bits', path);
    if (!Number.isInteger(b) || b < 1 || b > 64) bad(`${path}.bits`, `expected an integer in [1, 64], got ${b}`);
  }
}

function check(x: unknown, path: string, depth: number): void {
  if (depth > MAX_DEPTH) bad(path, `nests deeper than ${MAX_DEPTH} levels`);
  if (!isObj(x)) bad(path, `expected an event object, got ${JSON.stringify(x)}`);
  switch (x['kind']) {
    case 'gaussian':
    case 'discrete_gaussian':
      nonNeg(x, 'noiseMultiplier', path);
      return;
    case 'distributed_discrete_gaussian':
    case 'skellam':
      checkDistributed(x, path);
      return;
    case 'poisson_sampled': {
      const q = num(x, 'q', path);
      if (!(q >= 0 && q <= 1)) bad(`${path}.q`, `expected a sampling rate in [0, 1], got ${q}`);
      check(x['event'], `${path}.event`, depth + 1);
      return;
    }
    case 'composed': {
      const evs = x['events'];
      if (!Array.isArray(evs)) bad(`${path}.events`, `expected an array of events, got ${JSON.stringify(evs)}`);
      evs.forEach((e, i) => check(e, `${path}.events[${i}]`, depth + 1));
      if (x['count'] !== undefined) posInt(x, 'count', path);
      return;
    }
    case 'self_composed':
      posInt(x, 'count', path);
      check(x['event'], `${path}.event`, depth + 1);
      return;
    default:
      bad(`${path}.kind`, `expected one of ${EVENT_KINDS.join(', ')}, got ${JSON.stringify(x['kind'])}`);
  }
}

/**
 * Checks that `x` is a well-formed {@link DpEvent} (kinds, finite numbers,
 * ranges: q in [0, 1], noise ≥ 0, integer counts ≥ 1, β in [0, 1)).
 * @throws DpError `DP_ERR_BAD_PARAM` with a one-line message naming the field.
 */
export function validateEvent(x: unknown): asserts x is DpEvent {
  check(x, 'event', 0);
}

/** Parses and validates one event from JSON text. @throws DpError `DP_ERR_BAD_PARAM`. */
export function parseEvent(json: string): DpEvent {
  let x: unknown;
  try {
    x = JSON.parse(json);
  } catch (err) {
    throw new DpError('DP_ERR_BAD_PARAM', `event is not valid JSON: ${(err as Error).message}`);
  }
  validateEvent(x);
  return x;
}

/** Builds `poisson_sampled(q, gaussian(z))` self-composed `steps` times (DP-SGD / sampled FL rounds). */
export function sampledGaussian(noiseMultiplier: number, q: number, steps: number): DpEvent {
  const ev: DpEvent = {
    kind: 'self_composed',
    event: { kind: 'poisson_sampled', q, event: { kind: 'gaussian', noiseMultiplier } },
    count: steps,
  };
  validateEvent(ev);
  return ev;
}

/** σ_eff = (Σ σᵢ⁻²)^(−1/2) when `ev` is a composition of Gaussians (one Gaussian with stacked queries), else undefined. */
export function effectiveGaussianNoise(ev: DpEvent): number | undefined {
  switch (ev.kind) {
    case 'gaussian':
      return ev.noiseMultiplier;
    case 'self_composed': {
      const s = effectiveGaussianNoise(ev.event);
      return s === undefined ? undefined : s / Math.sqrt(ev.count);
    }
    case 'composed': {
      let inv = 0;
      for (const e of ev.events) {
        const s = effectiveGaussianNoise(e);
        if (s === undefined) return undefined;
        inv += s === 0 ? Infinity : 1 / (s * s);
      }
      inv *= ev.count ?? 1;
      return inv === Infinity ? 0 : 1 / Math.sqrt(inv);
    }
    default:
      return undefined;
  }
}
