/**
 * Numerically careful scalar helpers for the privacy accountants: log-space
 * addition, log-gamma and log-binomials, the complementary error function and
 * its logarithm, and normal-distribution tail masses. Everything here works in
 * IEEE double precision and is written so that tiny probabilities (1e-300) and
 * huge log-values (1e5) keep their relative accuracy.
 *
 * @module
 */

const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);
const SQRT2 = Math.SQRT2;

/** `log(exp(a) + exp(b))` without overflow; `-Infinity` stands for 0. */
export function logAdd(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const m = a > b ? a : b;
  return m + Math.log1p(Math.exp(-Math.abs(a - b)));
}

/** `log(exp(a) - exp(b))` for `a >= b`; `-Infinity` when they are equal. */
export function logSub(a: number, b: number): number {
  if (b === -Infinity) return a;
  if (a < b) throw new RangeError(`logSub: result would be negative (a=${a}, b=${b})`);
  if (a === b) return -Infinity;
  // log(e^a - e^b) = a + log(1 - e^(b-a)); log(-expm1(x)) keeps precision when b ≈ a.
  return a + Math.log(-Math.expm1(b - a));
}

/** `log(sum(exp(xs)))`, shifting by the maximum; `-Infinity` for an empty list. */
export function logSumExp(xs: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < xs.length; i++) if (xs[i]! > m) m = xs[i]!;
  if (m === -Infinity || m === Infinity) return m;
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += Math.exp(xs[i]! - m);
  return m + Math.log(s);
}

// Lanczos approximation, g = 7, n = 9 (relative error about 1e-15 for x >= 0.5).
const LANCZOS_G = 7;
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
  -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
  1.5056327351493116e-7,
];

/**
 * `log|Γ(x)|` for real `x` (JavaScript has no lgamma). Uses the Lanczos series
 * for `x >= 0.5` and the reflection formula `Γ(x)Γ(1−x) = π / sin(πx)` below.
 * Returns `Infinity` at the poles (0, −1, −2, …).
 */
export function lgamma(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return Infinity;
  if (x < 0.5) {
    if (Number.isInteger(x)) return Infinity;
    // sin(πx) computed from the fractional part keeps accuracy for large |x|.
    const s = Math.abs(Math.sin(Math.PI * (x - Math.round(x))));
    return Math.log(Math.PI / s) - lgamma(1 - x);
  }
  if (x === 1 || x === 2) return 0;
  const z = x - 1;
  let a = LANCZOS[0]!;
  const t = z + LANCZOS_G + 0.5;
  for (let i = 1; i < LANCZOS.length; i++) a += LANCZOS[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** The sign (+1 or −1) of `Γ(x)`; +1 for `x > 0`. */
export function gammaSign(x: number): 1 | -1 {
  if (x > 0) return 1;
  // Γ is negative on (−1, 0), positive on (−2, −1), and so on.
  return Math.ceil(-x) % 2 === 1 ? -1 : 1;
}

/**
 * `log|C(n, k)|` for real `n` and integer `k >= 0`, with its sign: the
 * generalised binomial coefficient `n(n−1)…(n−k+1)/k!`, which alternates in
 * sign once `k > n` for non-integer `n` (the series of Mironov et al. 2019 §3.3).
 */
export function logBinom(n: number, k: number): { log: number; sign: 1 | -1 } {
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`logBinom: k must be a non-negative integer, got ${k}`);
  if (k === 0) return { log: 0, sign: 1 };
  if (Number.isInteger(n) && n >= 0) {
    if (k > n) return { log: -Infinity, sign: 1 };
    return { log: lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1), sign: 1 };
  }
  const r = n - k + 1;
  return { log: lgamma(n + 1) - lgamma(k + 1) - lgamma(r), sign: gammaSign(r) };
}

/** `log(expm1(x))` for `x > 0`, accurate for tiny and huge `x`. */
export function logExpm1(x: number): number {
  return x > 30 ? x + Math.log1p(-Math.exp(-x)) : Math.log(Math.expm1(x));
}

/** erf(x) for |x| < 2 by the all-positive series 2/√π·e^(−x²)·Σ 2ⁿx^(2n+1)/(2n+1)!!. */
function erfSmall(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
}

/**
 * `log(erfc(x)·e^(x²)·√π)` for x >= 2 by the continued fraction
 * erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated
 * with the modified Lentz method.
 */
function logErfcScaledLarge(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 500; n++) {
    const an = n / 2;
    d = x + an * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = x + an / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return -Math.log(f);
}

/** The complementary error function, with full relative accuracy in the upper tail. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x >= 2) return Math.exp(logErfcScaledLarge(x) - x * x - LOG_SQRT_PI);
  if (x > -2) return 1 - erfSmall(x);
  return 2 - erfc(-x);
}

/** `log(erfc(x))`, finite for all finite `x` (about `−x² − log(x√π)` for large x). */
export function logErfc(x: number): number {
  if (x >= 2) return logErfcScaledLarge(x) - x * x - LOG_SQRT_PI;
  return Math.log(erfc(x));
}

/** Upper tail of the standard normal, `P(Z > z)`, accurate far into both tails. */
export function normSf(z: number): number {
  return 0.5 * erfc(z / SQRT2);
}

/** `log P(Z > z)` for the standard normal. */
export function logNormSf(z: number): number {
  return Math.log(0.5) + logErfc(z / SQRT2);
}

/** Standard normal CDF `P(Z <= z)`. */
export function normCdf(z: number): number {
  return 0.5 * erfc(-z / SQRT2);
}

/**
 * `P(a < Z <= b)` for the standard normal, computed from whichever tail keeps
 * the difference accurate (both in the upper tail, both in the lower tail, or
 * straddling 0).
 */
export function normMass(a: number, b: number): number {
  if (!(b > a)) return 0;
  if (a >= 0) return normSf(a) - normSf(b);
  if (b <= 0) return normCdf(b) - normCdf(a);
  return 1 - normCdf(a) - normSf(b);
}

// ---------------------------------------------------------------------------
// Convolution (for composing privacy loss distributions)
// ---------------------------------------------------------------------------

let twiddleCache: [number, Float64Array, Float64Array] | undefined;

/**
 * cos and sin of 2πk/n for k < n/2, each computed directly (not by repeated
 * multiplication) to keep the error at one rounding; the last size is cached,
 * since the PLD accountant transforms at the same size many times.
 */
function twiddles(n: number): [Float64Array, Float64Array] {
  if (twiddleCache?.[0] !== n) {
    const cos = new Float64Array(n >> 1);
    const sin = new Float64Array(n >> 1);
    for (let k = 0; k < n >> 1; k++) {
      cos[k] = Math.cos((2 * Math.PI * k) / n);
      sin[k] = Math.sin((2 * Math.PI * k) / n);
    }
    twiddleCache = [n, cos, sin];
  }
  return [twiddleCache[1], twiddleCache[2]];
}

/** In-place iterative radix-2 complex FFT; `inverse` applies the conjugate transform and the 1/n factor. */
function fft(re: Float64Array, im: Float64Array, inverse: boolean): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      let t = re[i]!; re[i] = re[j]!; re[j] = t;
      t = im[i]!; im[i] = im[j]!; im[j] = t;
    }
  }
  const [cos, sin] = twiddles(n);
  const sign = inverse ? 1 : -1;
  for (let len = 2; len <= n; len <<= 1) {
    const half = len >> 1;
    const stride = n / len; // e^(∓2πik/len) = table entry k·n/len
    for (let s = 0; s < n; s += len) {
      for (let k = 0; k < half; k++) {
        const a = s + k;
        const b = a + half;
        const wr = cos[k * stride]!;
        const wi = sign * sin[k * stride]!;
        const xr = re[b]! * wr - im[b]! * wi;
        const xi = re[b]! * wi + im[b]! * wr;
        re[b] = re[a]! - xr;
        im[b] = im[a]! - xi;
        re[a]! += xr;
        im[a]! += xi;
      }
    }
  }
  if (inverse) {
    for (let i = 0; i < n; i++) {
      re[i]! /= n;
      im[i]! /= n;
    }
  }
}

/** Whether {@link convolve} takes the FFT path for inputs of these lengths (else direct summation, exact to rounding). */
export function convolveUsesFft(na: number, nb: number): boolean {
  return Math.min(na, nb) > 32 && na * nb > 1 << 20;
}

/** The forward FFT of z = a + i·b, zero-padded to the first power of two ≥ `n`: [re, im, size]. */
function transformPair(a: Float64Array, b: Float64Array, n: number): [Float64Array, Float64Array, number] {
  let size = 1;
  while (size < n) size <<= 1;
  const re = new Float64Array(size);
  const im = new Float64Array(size);
  re.set(a);
  im.set(b);
  fft(re, im, false);
  return [re, im, size];
}

/**
 * a∗a and a∗b with one forward and one inverse transform instead of two of
 * each: z = a + i·b gives A and B, and since both products are real,
 * the inverse of A·A + i·A·B is a∗a + i·(a∗b). Negative round-off is clamped
 * to 0 as in {@link convolve}; both inputs must be non-empty.
 */
export function convolveSquareAndProduct(a: Float64Array, b: Float64Array): [Float64Array, Float64Array] {
  const n1 = 2 * a.length - 1;
  const n2 = a.length + b.length - 1;
  const [re, im, size] = transformPair(a, b, Math.max(n1, n2));
  for (let k = 0; k <= size >> 1; k++) {
    const m = (size - k) & (size - 1);
    const zr = re[k]!, zi = im[k]!, wr = re[m]!, wi = im[m]!;
    // At k: A = (Z(k) + conj Z(m))/2, B = (Z(k) − conj Z(m))/(2i); at m the roles of k and m swap.
    let ar = (zr + wr) / 2, ai = (zi - wi) / 2, br = (zi + wi) / 2, bi = -(zr - wr) / 2;
    // W = A·A + i·A·B
    let sr = ar * ar - ai * ai, si = 2 * ar * ai, pr = ar * br - ai * bi, pi = ar * bi + ai * br;
    const kr = sr - pi, ki = si + pr;
    ar = (wr + zr) / 2; ai = (wi - zi) / 2; br = (wi + zi) / 2; bi = -(wr - zr) / 2;
    sr = ar * ar - ai * ai; si = 2 * ar * ai; pr = ar * br - ai * bi; pi = ar * bi + ai * br;
    re[m] = sr - pi;
    im[m] = si + pr;
    re[k] = kr;
    im[k] = ki;
  }
  fft(re, im, true);
  const sq = new Float64Array(n1);
  const pr = new Float64Array(n2);
  for (let i = 0; i < n1; i++) sq[i] = re[i]! > 0 ? re[i]! : 0;
  for (let i = 0; i < n2; i++) pr[i] = im[i]! > 0 ? im[i]! : 0;
  return [sq, pr];
}

/**
 * Linear convolution of two non-negative sequences (probability masses):
 * direct summation for small inputs, FFT otherwise. Round-off can leave tiny
 * negative values in the FFT result; they are clamped to 0.
 */
export function convolve(a: Float64Array, b: Float64Array): Float64Array {
  const n = a.length + b.length - 1;
  if (a.length === 0 || b.length === 0) return new Float64Array(0);
  if (!convolveUsesFft(a.length, b.length)) {
    const out = new Float64Array(n);
    for (let i = 0; i < a.length; i++) {
      const ai = a[i]!;
      if (ai === 0) continue;
      for (let j = 0; j < b.length; j++) out[i + j]! += ai * b[j]!;
    }
    return out;
  }
  // Both real inputs go in one complex transform: z = a + i·b, then
  // A·B is recovered from Z(k) and conj(Z(n−k)).
  const [re, im, size] = transformPair(a, b, n);
  // The product A·B is written back in place, bins k and n−k together (each needs both Z values),
  // so the transform needs no second pair of arrays: peak memory is 2 transforms + the output.
  for (let k = 0; k <= size >> 1; k++) {
    const m = (size - k) & (size - 1);
    const zr = re[k]!, zi = im[k]!, wr = re[m]!, wi = im[m]!;
    // A(k) = (Z(k) + conj Z(n−k))/2, B(k) = (Z(k) − conj Z(n−k))/(2i); the same at n−k with the roles swapped.
    let ar = (zr + wr) / 2, ai = (zi - wi) / 2, br = (zi + wi) / 2, bi = -(zr - wr) / 2;
    const pkr = ar * br - ai * bi, pki = ar * bi + ai * br;
    ar = (wr + zr) / 2; ai = (wi - zi) / 2; br = (wi + zi) / 2; bi = -(wr - zr) / 2;
    re[m] = ar * br - ai * bi;
    im[m] = ar * bi + ai * br;
    re[k] = pkr;
    im[k] = pki;
  }
  fft(re, im, true);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = re[i]! > 0 ? re[i]! : 0;
  return out;
}
