/**
 * Differential-privacy events: a JSON-serialisable description of *what
 * mechanism ran*, not of the ε it cost. Accountants (RDP in `rdp.ts`, PLD in
 * `pld.ts`) turn a list of events into (ε, δ); the ledger (`ledger.ts`)
 * persists events so ε can always be recomputed, by a newer or an independent
 * accountant, from the record of what happened.
 *
 * A distributed event (`ddg`, `skellam`) records the round exactly as the
 * encoder ran it, in the vocabulary of the round plan (`plan.ts`) and of
 * secure aggregation: the clip C and scale 1/γ, the rounding parameter β, the
 * *padded* dimension d that the rotation encodes into (`paddedDim`), the
 * secagg threshold t (the fewest sites whose noise any released sum holds)
 * and each site's noise variance σ² as the exact rational the sampler draws
 * from (`siteSigma2`). The sensitivity Δ₂ is derived from (C, 1/γ, d, β) by
 * the one rounding bound, `roundingNormBound` (encode.ts); nothing nominal is
 * recorded, so the accountant charges the noise that was actually added.
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

/**
 * The mechanism kinds, one vocabulary for events, the round plan, the encoder
 * and the `tally dp` command: the continuous Gaussian, the discrete Gaussian
 * (one party adds the noise), and the two distributed mechanisms whose noise
 * is split across the sites of a secure-aggregation round.
 */
export const MECHANISM_KINDS = ['gaussian', 'discrete_gaussian', 'ddg', 'skellam'] as const;
/** A mechanism kind (see {@link MECHANISM_KINDS}). */
export type MechanismKind = (typeof MECHANISM_KINDS)[number];
/** The distributed mechanisms: the distributed discrete Gaussian (KLS21) and Skellam (AKL21). */
export const DISTRIBUTED_KINDS = ['ddg', 'skellam'] as const;
/** A distributed mechanism kind. */
export type DistributedKind = (typeof DISTRIBUTED_KINDS)[number];

/** An exact variance σ² = num/den (the sampler's parameter: 1 ≤ num ≤ 2^52, 1 ≤ den ≤ 2^20, integers). */
export interface Variance {
  readonly num: number;
  readonly den: number;
}

/** One round of a distributed mechanism, as encoded (see the module comment). */
export interface DistributedEvent {
  readonly kind: DistributedKind;
  /** L2 clip C of one site's update, in update units. */
  readonly clip: number;
  /** Scale 1/γ applied before integer rounding. */
  readonly scale: number;
  /** Conditional randomised rounding parameter β in [0, 1); 0 means unconditional rounding. */
  readonly beta: number;
  /** Padded dimension d: the power of two the rotation encodes into (not the caller's `dim`). */
  readonly paddedDim: number;
  /** Secagg threshold t: the fewest sites whose noise is in any released sum. */
  readonly threshold: number;
  /** Each site's noise variance σ² in integer units, exactly as sampled. */
  readonly siteSigma2: Variance;
  /** Bit width b of the modular sum, recorded for the audit trail; not used by the bound. */
  readonly bits?: number;
}

/** The distributed discrete Gaussian of Kairouz, Liu, Steinke (ICML 2021). */
export interface DistributedDiscreteGaussianEvent extends DistributedEvent {
  readonly kind: 'ddg';
}

/** The distributed Skellam mechanism of Agarwal, Kairouz, Liu (NeurIPS 2021). */
export interface SkellamEvent extends DistributedEvent {
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
export const EVENT_KINDS = [...MECHANISM_KINDS, 'poisson_sampled', 'composed', 'self_composed'] as const;

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

/** The sampler's variance grid (discrete-gaussian.ts): integers 1 ≤ num ≤ 2^52, 1 ≤ den ≤ 2^20. */
function checkVariance(o: Record<string, unknown>, key: string, path: string): void {
  const v = o[key];
  if (!isObj(v)) bad(`${path}.${key}`, `expected an exact variance { num, den }, got ${JSON.stringify(v)}`);
  const n = v['num'];
  const d = v['den'];
  if (!Number.isInteger(n) || (n as number) < 1 || (n as number) > 2 ** 52) bad(`${path}.${key}.num`, `expected an integer in [1, 2^52], got ${JSON.stringify(n)}`);
  if (!Number.isInteger(d) || (d as number) < 1 || (d as number) > 2 ** 20) bad(`${path}.${key}.den`, `expected an integer in [1, 2^20], got ${JSON.stringify(d)}`);
}

function checkDistributed(o: Record<string, unknown>, path: string): void {
  positive(o, 'clip', path);
  positive(o, 'scale', path);
  const beta = num(o, 'beta', path);
  if (!(beta >= 0 && beta < 1)) bad(`${path}.beta`, `expected a number in [0, 1), got ${beta}`);
  const d = num(o, 'paddedDim', path);
  // The rotation pads to a power of two (hadamard.ts); any other length was not encoded.
  if (!Number.isInteger(d) || d < 1 || d > 2 ** 30 || (d & (d - 1)) !== 0) {
    bad(`${path}.paddedDim`, `expected a power of two in [1, 2^30], got ${d}`);
  }
  posInt(o, 'threshold', path);
  checkVariance(o, 'siteSigma2', path);
  if (o['bits'] !== undefined) {
    const b = num(o, 'bits', path);
    if (!Number.isInteger(b) || b < 1 || b > 32) bad(`${path}.bits`, `expected an integer in [1, 32], got ${b}`);
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
    case 'ddg':
    case 'skellam':
      checkDistributed(x, path);
      return;
    case 'distributed_discrete_gaussian':
      // The earlier form recorded the caller's unpadded dim and a nominal z, which under-stated ε.
      bad(`${path}.kind`, "'distributed_discrete_gaussian' is no longer accepted: record kind 'ddg' with paddedDim, threshold and siteSigma2 (planRound's event)");
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
