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
import { roundingNormBound } from './encode.js';
import type { DistributedEvent } from './events.js';

/**
 * RDP of the discrete Gaussian N_Z(0, σ²) with sensitivity Δ and z = σ/Δ: it
 * satisfies ½(Δ/σ)²-concentrated DP, i.e. ε(α) = α/(2z²) (Canonne, Kamath,
 * Steinke, "The Discrete Gaussian for Differential Privacy", 2020, Thm. 4).
 */
export function discreteGaussianRdp(z: number, alpha: number): number {
  return z === 0 ? Infinity : alpha / (2 * z * z);
}

/**
 * Sensitivities and noise of one distributed round, in integer units.
 * Δ₂ is the conditional-rounding bound at the padded dimension d (the vector
 * the rotation actually encodes); on the integer grid ‖x‖₁ ≤ ‖x‖₂², and
 * always ‖x‖₁ ≤ √d‖x‖₂. The t sites of a released sum add variance t·σ².
 */
function scaled(p: DistributedEvent): { l2: number; l1: number; siteVar: number; totalVar: number } {
  const d = p.paddedDim;
  const l2 = roundingNormBound(p.clip * p.scale, d, p.beta);
  const siteVar = p.siteSigma2.num / p.siteSigma2.den;
  return { l2, l1: l2 * Math.min(Math.sqrt(d), l2), siteVar, totalVar: p.threshold * siteVar };
}

/**
 * RDP of the distributed discrete Gaussian: t = `threshold` sites each add
 * N_Z(0, σ²)^d with σ² = `siteSigma2`. Kairouz, Liu, Steinke, ICML 2021,
 * Prop. 14 / Eq. 17, with τ = 10·Σ_{k=1}^{t−1} e^(−2π²σ²·k/(k+1)) (Thm. 2):
 * ε(α) = min(α/2·Δ₂²/(tσ²) + τd, α/2·(Δ₂²/(tσ²) + 2τΔ₁/(√t σ) + τ²d), α/2·(Δ₂/(√t σ) + τ√d)²).
 * @throws DpError `DP_ERR_BAD_PARAM` if σ < 1/2 (outside the theorem).
 */
export function ddgRdp(p: DistributedEvent, alpha: number): number {
  const { l2, l1, siteVar, totalVar } = scaled(p);
  if (siteVar < 0.25) {
    throw new DpError('DP_ERR_BAD_PARAM', `distributed discrete Gaussian needs each site's noise sd >= 1/2 in integer units, got ${Math.sqrt(siteVar)}`);
  }
  let tau = 0;
  for (let k = 1; k < p.threshold; k++) tau += Math.exp(-2 * Math.PI * Math.PI * siteVar * (k / (k + 1)));
  tau *= 10;
  const sd = Math.sqrt(totalVar);
  const a2 = l2 / sd;
  const a1 = l1 / sd;
  const d = p.paddedDim;
  return Math.min(
    (alpha / 2) * a2 * a2 + tau * d,
    (alpha / 2) * (a2 * a2 + 2 * a1 * tau + tau * tau * d),
    (alpha / 2) * (a2 + Math.sqrt(d) * tau) ** 2,
  );
}

/**
 * RDP of the distributed Skellam mechanism with total variance μ = t·σ² in
 * integer units: Agarwal, Kairouz, Liu, NeurIPS 2021, Thm. 3.5 / Cor. 3.6:
 * ε(α) = αΔ₂²/(2μ) + min(((2α−1)Δ₂² + 6Δ₁)/(4μ²), 3Δ₁/(2μ)). The bound is
 * stated for integer α; fractional orders use ⌈α⌉ (RDP is non-decreasing in α).
 */
export function skellamRdp(p: DistributedEvent, alpha: number): number {
  const a = Math.ceil(alpha);
  const { l2, l1, totalVar: mu } = scaled(p);
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
