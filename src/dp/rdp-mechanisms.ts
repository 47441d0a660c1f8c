/**
 * RDP bounds of the discrete mechanisms tally runs, from their papers: the
 * discrete Gaussian (Canonne, Kamath, Steinke 2020), the distributed discrete
 * Gaussian (Kairouz, Liu, Steinke, ICML 2021) and the Skellam mechanism
 * (Agarwal, Kairouz, Liu, NeurIPS 2021), plus the general RDP bound under
 * Poisson subsampling used for them. The RDP accountant (rdp.ts) composes them.
 *
 * @module
 */
import { DpError } from '../errors.js';
import { logAdd, logBinom } from './_math.js';
import type { DistributedParams } from './events.js';

/**
 * RDP of the discrete Gaussian N_Z(0, σ²) with sensitivity Δ and z = σ/Δ: it
 * satisfies ½(Δ/σ)²-concentrated DP, i.e. ε(α) = α/(2z²) (Canonne, Kamath,
 * Steinke, "The Discrete Gaussian for Differential Privacy", 2020, Thm. 4).
 */
export function discreteGaussianRdp(z: number, alpha: number): number {
  return z === 0 ? Infinity : alpha / (2 * z * z);
}

/**
 * L2 norm bound after (conditional) randomised rounding of a vector of norm
 * `c` in `dim` coordinates to the integer grid (Kairouz, Liu, Steinke 2021,
 * Thm. 1 / Prop. 22): min(c + √d, √(c² + d/4 + √(2 log(1/β))·(c + √d/2))),
 * the second term only for β > 0.
 */
export function roundedL2Bound(c: number, beta: number, dim: number): number {
  const b1 = c + Math.sqrt(dim);
  if (beta === 0) return b1;
  const sq = c * c + 0.25 * dim + Math.sqrt(2 * Math.log(1 / beta)) * (c + 0.5 * Math.sqrt(dim));
  return Math.min(b1, Math.sqrt(sq));
}

/** Scaled sensitivities and noise of a distributed mechanism, in integer units. */
function scaled(p: DistributedParams): { l2: number; l1: number; centralSd: number; localSd: number } {
  const l2 = roundedL2Bound(p.clip * p.scale, p.beta, p.dim);
  // On the integer grid ‖x‖₁ ≤ ‖x‖₂², and always ‖x‖₁ ≤ √d‖x‖₂.
  const l1 = l2 * Math.min(Math.sqrt(p.dim), l2);
  const centralSd = p.noiseMultiplier * p.clip * p.scale;
  return { l2, l1, centralSd, localSd: centralSd / Math.sqrt(p.minClients) };
}

/**
 * RDP of the distributed discrete Gaussian: n = `minClients` sites each add
 * N_Z(0, σ²)^d, σ = z·C·S/√n. Kairouz, Liu, Steinke, ICML 2021, Prop. 14 /
 * Eq. 17, with τ = 10·Σ_{k=1}^{n−1} e^(−2π²σ²·k/(k+1)) (Thm. 2):
 * ε(α) = min(α/2·Δ₂²/(nσ²) + τd, α/2·(Δ₂²/(nσ²) + 2τΔ₁/(√n σ) + τ²d), α/2·(Δ₂/(√n σ) + τ√d)²).
 * @throws DpError `DP_ERR_BAD_PARAM` if σ < 1/2 (outside the theorem).
 */
export function ddgRdp(p: DistributedParams, alpha: number): number {
  if (p.noiseMultiplier === 0) return Infinity;
  const { l2, l1, centralSd, localSd } = scaled(p);
  if (localSd < 0.5) {
    throw new DpError('DP_ERR_BAD_PARAM', `distributed discrete Gaussian needs each site's noise sd >= 1/2 in integer units, got ${localSd}`);
  }
  let tau = 0;
  for (let k = 1; k < p.minClients; k++) tau += Math.exp(-2 * Math.PI * Math.PI * localSd * localSd * (k / (k + 1)));
  tau *= 10;
  const a2 = l2 / centralSd;
  const a1 = l1 / centralSd;
  const d = p.dim;
  return Math.min(
    (alpha / 2) * a2 * a2 + tau * d,
    (alpha / 2) * (a2 * a2 + 2 * a1 * tau + tau * tau * d),
    (alpha / 2) * (a2 + Math.sqrt(d) * tau) ** 2,
  );
}

/**
 * RDP of the distributed Skellam mechanism with total variance μ = (z·C·S)²
 * in integer units: Agarwal, Kairouz, Liu, NeurIPS 2021, Thm. 3.5 / Cor. 3.6:
 * ε(α) = αΔ₂²/(2μ) + min(((2α−1)Δ₂² + 6Δ₁)/(4μ²), 3Δ₁/(2μ)). The bound is
 * stated for integer α; fractional orders use ⌈α⌉ (RDP is non-decreasing in α).
 */
export function skellamRdp(p: DistributedParams, alpha: number): number {
  if (p.noiseMultiplier === 0) return Infinity;
  const a = Math.ceil(alpha);
  const { l2, l1, centralSd } = scaled(p);
  const mu = centralSd * centralSd;
  return (a * l2 * l2) / (2 * mu) + Math.min(((2 * a - 1) * l2 * l2 + 6 * l1) / (4 * mu * mu), (3 * l1) / (2 * mu));
}

/**
 * Upper bound on the RDP of a Poisson-subsampled mechanism with RDP ε(·)
 * (Zhu and Wang, "Poisson Subsampled Rényi Differential Privacy", ICML 2019,
 * general upper bound of §3), at integer α ≥ 2; fractional α uses ⌈α⌉:
 * (1/(α−1))·log((1−q)^(α−1)(αq−q+1) + C(α,2)q²(1−q)^(α−2)e^(ε(2)) + 3Σ_{l≥3} C(α,l)(1−q)^(α−l)q^l e^((l−1)ε(l))).
 */
export function subsampledRdpUpperBound(q: number, eps: (alpha: number) => number, alpha: number): number {
  if (q === 0) return 0;
  if (q === 1) return eps(alpha);
  const a = Math.max(2, Math.ceil(alpha));
  const lq = Math.log(q);
  const l1q = Math.log1p(-q);
  let acc = (a - 1) * l1q + Math.log1p((a - 1) * q);
  acc = logAdd(acc, logBinom(a, 2).log + 2 * lq + (a - 2) * l1q + eps(2));
  for (let l = 3; l <= a; l++) {
    acc = logAdd(acc, Math.log(3) + logBinom(a, l).log + l * lq + (a - l) * l1q + (l - 1) * eps(l));
  }
  return acc / (a - 1);
}
