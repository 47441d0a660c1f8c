/**
 * Exact Poisson(μ) sampler for a rational mean μ = num/den with
 * 10 ≤ μ ≤ 2^32: given perfectly uniform input bytes the output law is
 * exactly P[X = k] = e^−μ μ^k / k!.
 *
 * Method: rejection sampling (Devroye, "Non-Uniform Random Variate
 * Generation", Springer 1986, §II.3) on the unnormalised target
 * r(k) = p(k)/p(m) = μ^(k−m)·m!/k!, m = ⌊μ⌋, which is rational and ≤ 1:
 * - window [L, R] = [max(0, m − W), m + W], W = ⌈7.5·√μ⌉ + 8: integer weights
 *   Wt_k ≥ G·r(k) (G a per-μ integer scale), so w(k) = Wt_k/G ≥ r(k);
 * - right tail k = R + g, g ≥ 1: envelope w(R)·ρ^g with ρ = μ/(R+1) < 1,
 *   since r(R+g) = r(R)·∏_{i=1..g} μ/(R+i) ≤ r(R)·ρ^g;
 * - left tail k = L − g (when L > 0): envelope w(L)·ρ'^g with ρ' = L/μ < 1,
 *   since r(L−g) = r(L)·∏_{i=0..g−1} (L−i)/μ ≤ r(L)·ρ'^g.
 * A proposal k is drawn with probability ∝ its envelope and accepted with
 * probability r(k)/envelope(k) ≤ 1, so an accepted k has probability ∝ r(k).
 *
 * Every decision is exact. The window entry is drawn by an alias table
 * (Walker/Vose) over integer weights with bucket capacity 2^32, so its law is
 * exactly Wt_k/ΣWt (a "dummy" entry pads the total to buckets·2^32; drawing
 * it restarts). The acceptance U < r(k)·G/Wt_k follows the pattern of
 * Canonne, Kamath, Steinke 2020 (arXiv:2004.00010): binary64 bounds
 * qlo ≤ r(k)·G/Wt_k ≤ qhi, proven below, decide from the first 32 bits of U
 * unless that cell straddles [qlo, qhi]; then U is extended 32 bits at a
 * time and compared with BigInt bounds on r(k) that tighten with precision
 * ({@link ExactPoissonSampler.ratioBounds}).
 *
 * Rounding argument (u = 2^−53, round-to-nearest, all values normal):
 * each basic operation returns z(1+δ), |δ| ≤ u. A factor x = num/(den·k) is
 * computed as fl(num/fl(den·k)) ∈ [x(1−u)/(1+u), x(1+u)/(1−u)]; the running
 * upper bound is hi' = fl(fl(hi·x̂)·UP), UP = 1 + 2^−49, and
 * hi' ≥ hi·x·(1−u)^3/(1+u)·(1+2^−49) ≥ hi·x because (1−u)^3(1+2^−49) ≥ 1+u.
 * Symmetrically lo' = fl(fl(lo·x̂)·DOWN) ≤ lo·x with DOWN = 1 − 2^−49. By
 * induction from r(m) = 1, rlo(k) ≤ r(k) ≤ rhi(k) for all k in the window;
 * Wt_k = ⌈fl(fl(rhi·G)·UP)⌉ ≥ G·r(k) (claim (a)); qlo = fl(fl(fl(rlo·G)/Wt)·DOWN)
 * and qhi = fl(fl(fl(rhi·G)/Wt)·UP) bracket r(k)·G/Wt_k by the same argument
 * with three roundings ((1−u)^3(1+2^−49) ≥ 1), and multiplying by 2^32 is
 * exact, so accepting when a < ⌊qlo·2^32⌋ (U < (a+1)/2^32 ≤ qlo) and
 * rejecting when a ≥ ⌈qhi·2^32⌉ (U ≥ a/2^32 ≥ qhi) agree with the exact
 * comparison (claim (b)). The tails (claim (c)) are the inequalities above,
 * with the tail proposals and acceptances written out in the sample methods.
 * @module
 */
import { DpError, InternalError } from '../errors.js';
import type { RandomSource } from './_random.js';

const TWO32 = 4294967296;
const UP = 1 + 2 ** -49;
const DOWN = 1 - 2 ** -49;

/** Largest mean the exact table sampler accepts. */
export const EXACT_POISSON_MAX_MEAN = 2 ** 32;

/** Counters of the rarely taken paths (for tests and diagnostics). */
export interface ExactPoissonStats {
  /** Acceptances decided by the BigInt comparison. */
  tieBreaks: number;
  /** Proposals from the right / left geometric tails. */
  rightTail: number;
  leftTail: number;
}

/** A reusable exact Poisson(num/den) sampler for 10 ≤ num/den ≤ 2^32 (module comment). */
export class ExactPoissonSampler {
  /** The mean as a double. */
  readonly mean: number;
  /** ⌊μ⌋, the mode used as reference r(m) = 1. */
  readonly mode: number;
  /** Window [low, high]; values outside come from the geometric tails. */
  readonly low: number;
  readonly high: number;
  /** The integer scale G: the window envelope is w(k) = weight(k)/G. */
  readonly scale: number;
  readonly stats: ExactPoissonStats = { tieBreaks: 0, rightTail: 0, leftTail: 0 };
  private readonly numB: bigint;
  private readonly denB: bigint;
  private readonly wt: Float64Array; // Wt_k for k = low + e
  private readonly accLim: Float64Array; // accept when the first word < accLim
  private readonly rejLim: Float64Array; // reject when the first word ≥ rejLim
  private readonly prob: Float64Array; // alias thresholds, in [0, 2^32]
  private readonly alias: Int32Array;
  private readonly buckets: number;
  private readonly bucketLimit: number; // largest multiple of buckets ≤ 2^32
  private readonly tailR: { accNum: bigint; accDen: bigint; rhoNum: bigint; rhoDen: bigint };
  private readonly tailL: { accNum: bigint; accDen: bigint; rhoNum: bigint; rhoDen: bigint };

  /**
   * @param num - numerator of μ (safe integer)
   * @param den - denominator of μ (safe integer in [1, 2^32])
   * @throws DpError `DP_ERR_BAD_PARAM` unless 10 ≤ num/den ≤ 2^32.
   */
  constructor(num: number, den: number) {
    if (!Number.isSafeInteger(num) || !Number.isSafeInteger(den) || den < 1 || den > TWO32 || num < 10 * den || num / den > EXACT_POISSON_MAX_MEAN) {
      throw new DpError('DP_ERR_BAD_PARAM', `exact Poisson mean expected safe integers num, den in [1, 2^32] with 10 ≤ num/den ≤ 2^32, got ${String(num)}/${String(den)}`);
    }
    this.numB = BigInt(num);
    this.denB = BigInt(den);
    this.mean = num / den;
    const m = Number(this.numB / this.denB);
    const w = Math.ceil(7.5 * Math.sqrt(this.mean)) + 8;
    const lo = Math.max(0, m - w);
    const hi = m + w;
    const n = hi - lo + 1;
    this.mode = m;
    this.low = lo;
    this.high = hi;
    // Interval bounds on r(k), outward from r(m) = 1 (module comment).
    const rlo = new Float64Array(n);
    const rhi = new Float64Array(n);
    rlo[m - lo] = rhi[m - lo] = 1;
    for (let k = m + 1; k <= hi; k++) { // r(k) = r(k−1)·num/(den·k)
      const x = num / (den * k);
      rhi[k - lo] = rhi[k - 1 - lo]! * x * UP;
      rlo[k - lo] = rlo[k - 1 - lo]! * x * DOWN;
    }
    for (let k = m - 1; k >= lo; k--) { // r(k) = r(k+1)·den·(k+1)/num
      const x = (den * (k + 1)) / num;
      rhi[k - lo] = rhi[k + 1 - lo]! * x * UP;
      rlo[k - lo] = rlo[k + 1 - lo]! * x * DOWN;
    }
    if (!(rlo[0]! > 2 ** -900 && rlo[n - 1]! > 2 ** -900)) throw new InternalError('exact Poisson window underflows');
    // Entries: window 0..n−1, right tail n, left tail n+1, dummy n+2.
    const buckets = n + 3;
    if (buckets > 2 ** 21) throw new InternalError('exact Poisson table too large');
    let sum = 0;
    for (let e = 0; e < n; e++) sum += rhi[e]!;
    const rhoR = this.mean / (hi + 1);
    const rhoL = lo / this.mean;
    const tailEst = rhi[n - 1]! * (rhoR / (1 - rhoR)) + (lo > 0 ? rhi[0]! * (rhoL / (1 - rhoL)) : 0);
    // G fills ~99.9% of buckets·2^32; each Wt_k ≤ rhi·G·(1+2^−48) + 1, so the padded total fits.
    const g = Math.floor((0.999 * buckets * TWO32 - 2 * buckets) / (sum + tailEst + 2));
    this.scale = g;
    const weights = new Float64Array(buckets);
    this.wt = new Float64Array(n);
    this.accLim = new Float64Array(n);
    this.rejLim = new Float64Array(n);
    let total = 0;
    for (let e = 0; e < n; e++) {
      const wt = Math.ceil(rhi[e]! * g * UP);
      this.wt[e] = weights[e] = wt;
      total += wt;
      this.accLim[e] = Math.floor(((rlo[e]! * g) / wt) * DOWN * TWO32);
      this.rejLim[e] = Math.ceil(((rhi[e]! * g) / wt) * UP * TWO32);
    }
    // Tail entries: integer weight T ≥ E = Wt_edge·ρ/(1−ρ); proposals are first thinned by E/T.
    const tail = (wtEdge: number, rhoNum: bigint, rhoDen: bigint) => {
      const eNum = BigInt(wtEdge) * rhoNum;
      const eDen = rhoDen - rhoNum;
      const t = (eNum + eDen - 1n) / eDen;
      return { weight: Number(t), accNum: eNum, accDen: t * eDen, rhoNum, rhoDen };
    };
    const right = tail(this.wt[n - 1]!, this.numB, this.denB * BigInt(hi + 1));
    const left = lo > 0 ? tail(this.wt[0]!, this.denB * BigInt(lo), this.numB) : { weight: 0, accNum: 0n, accDen: 1n, rhoNum: 0n, rhoDen: 1n };
    this.tailR = right;
    this.tailL = left;
    weights[n] = right.weight;
    weights[n + 1] = left.weight;
    total += right.weight + left.weight;
    const dummy = buckets * TWO32 - total;
    if (!(dummy >= 0) || !Number.isSafeInteger(total)) throw new InternalError('exact Poisson weights overflow');
    weights[n + 2] = dummy;
    this.buckets = buckets;
    this.bucketLimit = TWO32 - (TWO32 % buckets);
    [this.prob, this.alias] = buildAlias(weights);
  }

  /** Draws one sample. */
  sample(src: RandomSource): number {
    const n = this.wt.length;
    for (;;) {
      let x = src.u32();
      while (x >= this.bucketLimit) x = src.u32();
      const i = x % this.buckets;
      const e = src.u32() < this.prob[i]! ? i : this.alias[i]!;
      if (e < n) {
        if (this.acceptAt(e, src)) return this.low + e;
      } else if (e === n) {
        const k = this.sampleRightTail(src);
        if (k >= 0) return k;
      } else if (e === n + 1) {
        const k = this.sampleLeftTail(src);
        if (k >= 0) return k;
      } // e === n + 2: the dummy entry, draw again
    }
  }

  /**
   * One right-tail proposal: thinned by E/T, g ~ Geometric(ρ) on {1, 2, …},
   * then accepted with r(R+g)/(w(R)ρ^g) = [r(R)·G/Wt_R]·∏_{i=2..g} (R+1)/(R+i),
   * a product of independent exact trials. Returns R + g, or −1 on rejection.
   */
  sampleRightTail(src: RandomSource): number {
    this.stats.rightTail++;
    const t = this.tailR;
    if (!src.bernoulliBig(t.accNum, t.accDen)) return -1;
    let g = 1;
    while (src.bernoulliBig(t.rhoNum, t.rhoDen)) g++;
    const r = this.high;
    for (let i = 2; i <= g; i++) if (!src.bernoulli(r + 1, r + i)) return -1;
    return this.acceptAt(this.wt.length - 1, src) ? r + g : -1;
  }

  /**
   * One left-tail proposal (L > 0): thinned by E/T, g ~ Geometric(ρ'), then
   * accepted with r(L−g)/(w(L)ρ'^g) = [r(L)·G/Wt_L]·∏_{i=1..g−1} (L−i)/L
   * (zero once L − g < 0). Returns L − g, or −1 on rejection.
   */
  sampleLeftTail(src: RandomSource): number {
    this.stats.leftTail++;
    const t = this.tailL;
    const l = this.low;
    if (l === 0 || !src.bernoulliBig(t.accNum, t.accDen)) return -1;
    let g = 1;
    while (src.bernoulliBig(t.rhoNum, t.rhoDen)) g++;
    if (g > l) return -1;
    for (let i = 1; i < g; i++) if (!src.bernoulli(l - i, l)) return -1;
    return this.acceptAt(0, src) ? l - g : -1;
  }

  /** Bernoulli(r(k)·G/Wt_k) for the window entry e = k − low: 32-bit fast path, exact fallback. */
  acceptAt(e: number, src: RandomSource): boolean {
    const a = src.u32();
    if (a < this.accLim[e]!) return true;
    if (a >= this.rejLim[e]!) return false;
    return this.acceptExact(e, a, src);
  }

  /**
   * Decides U < r(k)·G/Wt_k exactly, U = (a + V)/2^32 with V uniform: V is
   * read 32 bits at a time; at L bits, U ∈ [c, c+1)/2^L, and with
   * lo ≤ r(k)·2^P ≤ hi (P = L + 128) it accepts when (c+1)·Wt·2^P ≤ lo·G·2^L and
   * rejects when c·Wt·2^P ≥ hi·G·2^L. hi − lo ≤ 2|k−m| < 2^22 and G < 2^53, so
   * the bracket on r(k)·G/Wt_k is narrower than 2^−(L+53) and each further
   * round is undecided with probability about 2^−31 (termination w.p. 1).
   */
  private acceptExact(e: number, a: number, src: RandomSource): boolean {
    this.stats.tieBreaks++;
    const k = this.low + e;
    const wt = BigInt(this.wt[e]!);
    const g = BigInt(this.scale);
    let c = BigInt(a);
    let bits = 32;
    for (;;) {
      c = (c << 32n) | BigInt(src.u32());
      bits += 32;
      const p = bits + 128;
      const [lo, hi] = this.ratioBounds(k, p);
      const sp = BigInt(p);
      const sb = BigInt(bits);
      if (((c + 1n) * wt) << sp <= (lo * g) << sb) return true;
      if ((c * wt) << sp >= (hi * g) << sb) return false;
    }
  }

  /**
   * BigInt bounds lo ≤ r(k)·2^p ≤ hi for k ≥ 0. Every factor is ≤ 1
   * (μ/i for i > m, i/μ for i ≤ m), so floor/ceil after each of the |k − m|
   * factors widens the interval by at most one unit each.
   */
  ratioBounds(k: number, p: number): [bigint, bigint] {
    let lo = 1n << BigInt(p);
    let hi = lo;
    const { numB, denB } = this;
    if (k > this.mode) {
      for (let i = this.mode + 1; i <= k; i++) {
        const d = denB * BigInt(i);
        lo = (lo * numB) / d;
        hi = (hi * numB + d - 1n) / d;
      }
    } else {
      for (let i = this.mode; i > k; i--) {
        const f = denB * BigInt(i);
        lo = (lo * f) / numB;
        hi = (hi * f + numB - 1n) / numB;
      }
    }
    return [lo, hi];
  }

  /** The integer envelope weight Wt_k of window value k (so w(k) = Wt_k/G). */
  weightOf(k: number): number {
    if (k < this.low || k > this.high) throw new DpError('DP_ERR_BAD_PARAM', `"k" expected an integer in [${this.low}, ${this.high}], got ${String(k)}`);
    return this.wt[k - this.low]!;
  }

  /** The 32-bit fast-path limits of window value k: accept below `accept`, reject at or above `reject`. */
  limitsOf(k: number): { accept: number; reject: number } {
    const e = k - this.low;
    this.weightOf(k);
    return { accept: this.accLim[e]!, reject: this.rejLim[e]! };
  }
}

/**
 * Vose's alias table over integer weights whose sum is exactly
 * weights.length·2^32 (bucket capacity 2^32). All values stay below 2^53,
 * so the arithmetic is exact and entry j is drawn with probability
 * weights[j]/(length·2^32).
 */
function buildAlias(weights: Float64Array): [Float64Array, Int32Array] {
  const nb = weights.length;
  const w = Float64Array.from(weights);
  const prob = new Float64Array(nb);
  const alias = new Int32Array(nb);
  const small: number[] = [];
  const large: number[] = [];
  for (let i = 0; i < nb; i++) (w[i]! < TWO32 ? small : large).push(i);
  while (small.length > 0 && large.length > 0) {
    const s = small.pop()!;
    const l = large.pop()!;
    prob[s] = w[s]!;
    alias[s] = l;
    w[l] = w[l]! - (TWO32 - w[s]!);
    (w[l]! < TWO32 ? small : large).push(l);
  }
  for (const i of large) {
    if (w[i] !== TWO32) throw new InternalError('alias table weights do not sum to the capacity');
    prob[i] = TWO32;
    alias[i] = i;
  }
  if (small.length > 0) throw new InternalError('alias table weights do not sum to the capacity');
  return [prob, alias];
}
