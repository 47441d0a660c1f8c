/**
 * Discrete privacy loss distributions and their algebra, shared by the PLD
 * accountant: composition by FFT convolution (repeated squaring for
 * self-composition), pessimistic truncation of negligible tails, and the
 * hockey-stick conversions δ(ε) and ε(δ) (Meiser and Mohammadi, CCS 2018;
 * Koskela, Jälkö, Honkela, AISTATS 2020).
 *
 * @module
 */
import { DpError } from '../errors.js';
import { convolve, convolveSquareAndProduct, convolveUsesFft } from './_math.js';

/**
 * Hard bound on the points of every PLD array, single step or composed:
 * 2^22 = 4,194,304 points (32 MiB per array; a convolution at the bound
 * peaks near 200 MiB). A grid that would exceed it is refused with
 * `DP_ERR_ACCOUNTING_LIMIT` before anything of that size is allocated.
 */
export const MAX_PLD_POINTS = 1 << 22;

/**
 * Refuses a grid of `points` points at spacing `h` with `DP_ERR_ACCOUNTING_LIMIT`,
 * naming what to change (`need`: the spacing that would fit, ∞ when none ≤ 0.1 does).
 */
export function limit(what: string, points: number, h: number, need: number): never {
  const fmt = (x: number): string => (x >= 1e6 || x < 1e-3 ? x.toExponential(1) : String(Number(x.toPrecision(2))));
  const p = Number.isFinite(points) ? `about ${fmt(points)}` : 'unboundedly many';
  const fix = need <= 0.1 ? `a coarser discretization (at least ${fmt(need)}) or the RDP accountant` : 'the RDP accountant';
  throw new DpError(
    'DP_ERR_ACCOUNTING_LIMIT',
    `the PLD ${what} would need ${p} grid points at discretization ${fmt(h)}, above the bound of 2^22 (${MAX_PLD_POINTS}); use ${fix}`,
  );
}

/** A discrete PLD: mass[i] at loss (offset + i)·h, plus mass at +∞. */
export interface DiscretePld {
  readonly h: number;
  readonly offset: number;
  readonly mass: Float64Array;
  readonly inf: number;
}

/** Drops tail mass ≤ `cut` on each side: the low tail is rounded up to the first kept loss, the high tail moved to ∞. */
export function trim(p: DiscretePld, cut: number): DiscretePld {
  const m = p.mass;
  let lo = 0;
  let low = 0;
  while (lo < m.length && low + m[lo]! <= cut) low += m[lo++]!;
  let hi = m.length - 1;
  let high = 0;
  while (hi > lo && high + m[hi]! <= cut) high += m[hi--]!;
  if (lo > hi) return { h: p.h, offset: p.offset, mass: new Float64Array(0), inf: Math.min(1, p.inf + low + high) };
  const mass = m.slice(lo, hi + 1);
  mass[0]! += low;
  return { h: p.h, offset: p.offset + lo, mass, inf: Math.min(1, p.inf + high) };
}


/**
 * Relative round-off level of the FFT convolution: measured errors are about
 * 3e-15 of the largest mass for 2^19-point transforms. Edge bins below this
 * level are mostly round-off rather than mass; they are folded away
 * pessimistically, which puts a floor of about 1e-12 under the reported δ (after thousands of compositions).
 */
const FFT_FLOOR = 1e-14;

/** The PLD of running `a` and then `b` (independent losses add). */
export function composePld(a: DiscretePld, b: DiscretePld, cut = 1e-15): DiscretePld {
  checkSize(a, b);
  return finish(a, b, convolve(a.mass, b.mass), convolveUsesFft(a.mass.length, b.mass.length), cut);
}

function checkSize(a: DiscretePld, b: DiscretePld): void {
  const n = a.mass.length + b.mass.length - 1;
  if (n > MAX_PLD_POINTS) limit('composed loss', n, a.h, (a.h * n * 1.01) / MAX_PLD_POINTS);
}

/** Wraps the convolved masses `m` of `a` and `b` as a PLD: sub-floor edges folded (after an FFT), tails trimmed. */
function finish(a: DiscretePld, b: DiscretePld, m: Float64Array, fft: boolean, cut: number): DiscretePld {
  let max = 0;
  for (let i = 0; i < m.length; i++) if (m[i]! > max) max = m[i]!;
  // Direct summation (see `convolve`) is exact to rounding: no floor there.
  const floor = fft ? max * FFT_FLOOR : 0;
  // Sub-floor edge bins are handled pessimistically like truncated tails:
  // the low edge is rounded up to the first kept bin, the high edge moved to ∞.
  let lo = 0;
  let low = 0;
  while (lo < m.length - 1 && m[lo]! < floor) low += m[lo++]!;
  let hi = m.length - 1;
  let high = 0;
  while (hi > lo && m[hi]! < floor) high += m[hi--]!;
  const mass = m.subarray(lo, hi + 1);
  mass[0]! += low;
  const inf = Math.min(1, 1 - (1 - a.inf) * (1 - b.inf) + high);
  return trim({ h: a.h, offset: a.offset + b.offset + lo, mass, inf }, cut);
}

/**
 * `count`-fold self-composition by repeated squaring. Mass truncated from the
 * squared base at level j (2^j copies) recurs count/2^j times in the result,
 * so that level is trimmed with cut·2^j/count: the total truncated mass stays
 * O(cut·log count).
 */
export function selfComposePld(p: DiscretePld, count: number, cut = 1e-15): DiscretePld {
  let result: DiscretePld = { h: p.h, offset: 0, mass: Float64Array.of(1), inf: 0 };
  let base = p;
  let copies = 1;
  for (let c = count; c > 0; c = Math.floor(c / 2)) {
    const nb = base.mass.length;
    if (c % 2 === 1 && c > 1 && convolveUsesFft(nb, nb) && convolveUsesFft(nb, result.mass.length)) {
      // Both products of this level share the base: one pair of transforms gives both.
      checkSize(base, base);
      checkSize(base, result);
      const [sq, pr] = convolveSquareAndProduct(base.mass, result.mass);
      result = finish(result, base, pr, true, cut);
      copies *= 2;
      base = finish(base, base, sq, true, (cut * copies) / count);
      continue;
    }
    if (c % 2 === 1) result = composePld(result, base, cut);
    if (c > 1) {
      copies *= 2;
      base = composePld(base, base, (cut * copies) / count);
    }
  }
  return result;
}

/** δ(ε) = P(∞) + Σ_i mass_i·(1 − e^(ε−ε_i))₊ of a discrete PLD. */
export function pldDelta(p: DiscretePld, epsilon: number): number {
  let d = p.inf;
  for (let i = p.mass.length - 1; i >= 0; i--) {
    const l = (p.offset + i) * p.h;
    if (l <= epsilon) break;
    d += p.mass[i]! * -Math.expm1(epsilon - l);
  }
  return Math.min(1, d);
}

/** The smallest ε ≥ 0 with δ(ε) ≤ `delta`; ∞ when the mass at ∞ alone exceeds δ. Exact on the piecewise curve. */
export function pldEpsilon(p: DiscretePld, delta: number): number {
  if (p.inf > delta) return Infinity;
  // Scan down: for ε in [ε_{k−1}, ε_k], δ(ε) = A − B·e^(ε−ε_k) with A = inf + Σ_{i≥k} m_i, B = Σ_{i≥k} m_i e^(ε_k−ε_i).
  let A = p.inf;
  let B = 0;
  for (let k = p.mass.length - 1; k >= 0; k--) {
    A += p.mass[k]!;
    B = B * Math.exp(-p.h) + p.mass[k]!;
    const ek = (p.offset + k) * p.h;
    const dPrev = A - B * Math.exp(-p.h); // δ at ε_{k−1}
    if (dPrev >= delta || k === 0) {
      if (!(A - delta > 0 && B > 0)) return 0;
      return Math.max(0, Math.min(ek + Math.log((A - delta) / B), ek));
    }
  }
  return 0;
}
