/**
 * Goodness-of-fit helpers for the sampler tests: Pearson's chi-square against
 * an explicit pmf, with adjacent values pooled so every bin expects ≥ 20.
 */

/** Upper α = 0.001 quantile of χ²(df), Wilson–Hilferty approximation. */
export function chiSquareCritical(df: number): number {
  const z = 3.090232; // Φ⁻¹(0.999)
  const h = 2 / (9 * df);
  return df * (1 - h + z * Math.sqrt(h)) ** 3;
}

/**
 * Pearson chi-square of integer samples against `pmf` on [lo, hi] (the pmf's
 * mass outside must be negligible; samples outside go to the edge bins).
 */
export function chiSquare(samples: ArrayLike<number>, pmf: (k: number) => number, lo: number, hi: number): { chi2: number; df: number; critical: number } {
  const n = samples.length;
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const k = Math.min(hi, Math.max(lo, samples[i]!));
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const bins: { exp: number; obs: number }[] = [];
  let exp = 0;
  let obs = 0;
  for (let k = lo; k <= hi; k++) {
    exp += n * pmf(k);
    obs += counts.get(k) ?? 0;
    if (exp >= 20) {
      bins.push({ exp, obs });
      exp = 0;
      obs = 0;
    }
  }
  if (bins.length === 0) throw new Error('no bins');
  bins[bins.length - 1]!.exp += exp;
  bins[bins.length - 1]!.obs += obs;
  let chi2 = 0;
  for (const b of bins) chi2 += (b.obs - b.exp) ** 2 / b.exp;
  const df = bins.length - 1;
  return { chi2, df, critical: chiSquareCritical(df) };
}

/** Sample mean and (population) variance. */
export function meanVar(xs: ArrayLike<number>): { mean: number; variance: number } {
  let m = 0;
  for (let i = 0; i < xs.length; i++) m += xs[i]!;
  m /= xs.length;
  let v = 0;
  for (let i = 0; i < xs.length; i++) v += (xs[i]! - m) ** 2;
  return { mean: m, variance: v / xs.length };
}

/** A normalised discrete Gaussian pmf on [−R, R] (direct summation). */
export function discreteGaussianPmf(sigma2: number, radius: number): (k: number) => number {
  let z = 0;
  for (let k = -radius; k <= radius; k++) z += Math.exp((-k * k) / (2 * sigma2));
  return (k) => Math.exp((-k * k) / (2 * sigma2)) / z;
}

/** Poisson(μ) pmf via summed logarithms (independent of the sampler's log-factorial). */
export function poissonPmfTable(mu: number, max: number): Float64Array {
  const p = new Float64Array(max + 1);
  let logFact = 0;
  for (let k = 0; k <= max; k++) {
    if (k > 0) logFact += Math.log(k);
    p[k] = Math.exp(-mu + k * Math.log(mu) - logFact);
  }
  return p;
}
