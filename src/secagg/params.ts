/**
 * SecAgg+ parameter selection (Bell, Bonawitz, Gascón, Lepoint, Raykova,
 * "Secure Single-Server Aggregation with (Poly)Logarithmic Overhead", CCS 2020,
 * §3–4 and the parameter discussion after Theorem 3.6), and the threshold rules
 * of Bonawitz et al. CCS 2017. The derivation is in docs/secagg-plus-parameters.md.
 *
 * All probabilities are handled as log2 values so that 2^-40 bounds do not
 * underflow and tails are summed exactly (no Chernoff slack).
 */
import { ValidationError } from '../errors.js';

/** Threat model: semi-honest server, or a server that may lie about dropouts (Bonawitz et al. §6). */
export type Threat = 'semi-honest' | 'malicious';

/** Inputs of {@link findSecAggPlusParams}. */
export interface SecAggPlusParamsInput {
  /** Number of clients in the session, 3 ≤ n ≤ 10^6. */
  readonly n: number;
  /** Upper bound γ on the fraction of clients colluding with the server, in [0, 1). */
  readonly corruptFraction: number;
  /** Upper bound δ on the fraction of clients that drop out, in [0, 1), γ + δ < 1. */
  readonly dropoutRate: number;
  /** Statistical security parameter σ: privacy fails with probability ≤ 2^-σ (default 40). */
  readonly sigma?: number;
  /** Correctness parameter η: the protocol aborts with probability ≤ 2^-η (default 20). */
  readonly eta?: number;
  /** Default `'semi-honest'`. */
  readonly threat?: Threat;
}

/** Output of {@link findSecAggPlusParams}. */
export interface SecAggPlusParams {
  readonly graph: 'complete' | 'harary';
  /** Neighbours per client (share holders, excluding self); n − 1 when complete. */
  readonly k: number;
  /** Shamir threshold. */
  readonly t: number;
  /** log2 of the bounds: honest survivors disconnected, some client's privacy lost, some client short of t survivors. */
  readonly log2Bounds: { readonly disconnect: number; readonly privacy: number; readonly correctness: number };
  /** Why this choice, in words. */
  readonly reason: string;
}

const PARAMS = 'SECAGG_ERR_BAD_PARAMS';
const THRESHOLD = 'SECAGG_ERR_BAD_THRESHOLD';
/** Degrees above this are not searched: SecAgg+ needs k = O(log n + σ) (Bell et al. Thm 3.6). */
export const MAX_HARARY_DEGREE = 4096;
const EPS = 1e-12; // guards floor/ceil of rate·n against float error, in the conservative direction
const LN2 = Math.LN2;

// ln Γ(x+1) = ln x!: exact table for small x, Stirling series beyond (error < 1e-15 relative).
const LOGFACT = new Float64Array(256);
for (let i = 1; i < 256; i++) LOGFACT[i] = LOGFACT[i - 1]! + Math.log(i);
function lnFact(x: number): number {
  if (x < 256) return LOGFACT[x]!;
  const x2 = x * x;
  return x * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI * x) + 1 / (12 * x) - 1 / (360 * x * x2) + 1 / (1260 * x2 * x2 * x);
}
const lnChoose = (a: number, b: number): number => (b < 0 || b > a ? -Infinity : lnFact(a) - lnFact(b) - lnFact(a - b));

/** log(e^a + e^b) without overflow. */
function lnAdd(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const m = Math.max(a, b);
  return m + Math.log1p(Math.exp(-Math.abs(a - b)));
}

/**
 * Natural-log pmf of the hypergeometric distribution: x marked items among
 * `draws` drawn without replacement from `pop` items of which `marked` are marked.
 */
export function lnHypergeomPmf(pop: number, marked: number, draws: number, x: number): number {
  return lnChoose(marked, x) + lnChoose(pop - marked, draws - x) - lnChoose(pop, draws);
}

/**
 * log2 bound on the probability that removing `bad` uniformly random clients
 * disconnects a randomly permuted Harary graph H(n, k): a disconnecting set
 * must contain two disjoint runs of k/2 consecutive cycle positions; there are
 * ≤ n(n − k − 1)/2 such pairs, each fully bad with probability
 * C(n − k, bad − k)/C(n, bad) (union bound).
 */
export function log2DisconnectBound(n: number, k: number, bad: number): number {
  if (bad < k || n - k - 1 <= 0) return -Infinity;
  const pairs = Math.log(n) + Math.log(n - k - 1) - LN2;
  return (pairs + lnChoose(n - k, bad - k) - lnChoose(n, bad)) / LN2;
}

interface Tails { ge: Float64Array; lt: Float64Array } // ln Pr[X ≥ x], ln Pr[X < x] for x = 0..k+1

function tails(pop: number, marked: number, k: number): Tails {
  const ge = new Float64Array(k + 2).fill(-Infinity);
  const lt = new Float64Array(k + 2).fill(-Infinity);
  for (let x = k; x >= 0; x--) ge[x] = lnAdd(ge[x + 1]!, lnHypergeomPmf(pop, marked, k, x));
  for (let x = 1; x <= k + 1; x++) lt[x] = lnAdd(lt[x - 1]!, lnHypergeomPmf(pop, marked, k, x - 1));
  return { ge, lt };
}

function checkRate(name: string, v: number): void {
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new ValidationError(PARAMS, `"${name}" expected a number in [0, 1), got ${String(v)}`);
}

/**
 * Finds the smallest even Harary degree k and a threshold t for which, with
 * at most ⌊γn⌋ corrupt and ⌊δn⌋ dropped clients chosen independently of the
 * graph seed: (a) the honest survivors stay connected except with probability
 * ≤ 2^-(σ+1); (b) no client has ≥ t corrupt neighbours (malicious: ≥ 2t − k − 1),
 * except with probability ≤ 2^-(σ+1); (c) every client keeps ≥ t surviving
 * neighbours except with probability ≤ 2^-η. Falls back to the complete graph
 * when no k < n/2 (and ≤ {@link MAX_HARARY_DEGREE}) works.
 * @throws ValidationError `SECAGG_ERR_BAD_PARAMS` on bad inputs or when even the complete graph cannot meet (b) and (c)
 */
export function findSecAggPlusParams(input: SecAggPlusParamsInput): SecAggPlusParams {
  const { n, corruptFraction: gamma, dropoutRate: delta } = input;
  const sigma = input.sigma ?? 40, eta = input.eta ?? 20, threat = input.threat ?? 'semi-honest';
  if (!Number.isInteger(n) || n < 3 || n > 1_000_000) throw new ValidationError(PARAMS, `"n" expected an integer in [3, 1000000], got ${String(n)}`);
  checkRate('corruptFraction', gamma);
  checkRate('dropoutRate', delta);
  if (gamma + delta >= 1) throw new ValidationError(PARAMS, `corruptFraction + dropoutRate must be < 1, got ${gamma + delta}`);
  for (const [name, v] of [['sigma', sigma], ['eta', eta]] as const) {
    if (!(v > 0 && v <= 256)) throw new ValidationError(PARAMS, `"${name}" expected a number in (0, 256], got ${String(v)}`);
  }
  if (threat !== 'semi-honest' && threat !== 'malicious') throw new ValidationError(PARAMS, `"threat" expected 'semi-honest' or 'malicious', got ${String(threat)}`);

  const corrupt = Math.floor(gamma * n + EPS);
  const dropped = Math.floor(delta * n + EPS);
  const survivorsAmongOthers = n - 1 - dropped; // worst case: the client itself survives, all dropouts are others
  const secTarget = -(sigma + 1), corTarget = -eta, log2n = Math.log2(n);
  const rules = threat === 'malicious'
    ? 'malicious-server rule: t > 2(k+1)/3 and 2t − k − 1 > corrupt neighbours, Bonawitz et al. 2017 §6'
    : 'semi-honest rule: t > corrupt neighbours';

  const kMax = Math.min(MAX_HARARY_DEGREE, Math.ceil(n / 2) - 1, n - 2);
  for (let k = 2; k <= kMax; k += 2) {
    const disconnect = log2DisconnectBound(n, k, corrupt + dropped);
    if (disconnect > secTarget) continue;
    const adv = tails(n - 1, corrupt, k); // corrupt neighbours of an honest client
    const surv = tails(n - 1, survivorsAmongOthers, k); // surviving neighbours of a surviving client
    const tFloor = threat === 'malicious' ? Math.floor((2 * (k + 1)) / 3) + 1 : 2;
    for (let t = tFloor; t <= k; t++) {
      const correctness = log2n + surv.lt[t]! / LN2;
      if (correctness > corTarget) break; // larger t only makes (c) worse
      // Malicious: the k − c honest neighbours and the client itself (which reveals
      // its own b-share) can be split by a lying server into b-revealers and
      // key-revealers; with c corrupt neighbours revealing both, it gets t of each
      // once 2t ≤ k + 1 + c. Privacy therefore needs c < 2t − k − 1.
      const tAdv = threat === 'malicious' ? 2 * t - k - 1 : t;
      const privacy = tAdv <= 0 ? log2n : log2n + adv.ge[Math.min(tAdv, k + 1)]! / LN2;
      if (privacy <= secTarget) {
        return {
          graph: 'harary', k, t, log2Bounds: { disconnect, privacy, correctness },
          reason: `smallest even degree meeting 2^-${sigma} security and 2^-${eta} correctness for n=${n}, ` +
            `γ=${gamma}, δ=${delta} (${rules}); t is the smallest threshold meeting the privacy bound`,
        };
      }
    }
  }
  return completeFallback(n, corrupt, dropped, threat, rules);
}

function completeFallback(n: number, corrupt: number, dropped: number, threat: Threat, rules: string): SecAggPlusParams {
  const k = n - 1;
  // In the complete graph the counts are deterministic: an honest client has
  // exactly `corrupt` corrupt neighbours at worst and a surviving client at least n − 1 − dropped survivors.
  const tMax = n - 1 - dropped;
  // Malicious: 2t > k + 1 + corrupt (see the Harary search), and t > 2(k+1)/3.
  const tMinPrivacy = threat === 'malicious' ? Math.max(Math.floor((k + 1 + corrupt) / 2) + 1, Math.floor((2 * (k + 1)) / 3) + 1) : corrupt + 1;
  const tDefault = threat === 'malicious' ? Math.floor((2 * n) / 3) + 1 : Math.floor(n / 2) + 1;
  const tMin = Math.max(2, tMinPrivacy);
  if (tMin > Math.min(tMax, k)) {
    throw new ValidationError(PARAMS, `no threshold works for n=${n} with ${corrupt} corrupt and ${dropped} dropped clients (${rules}): ` +
      `privacy needs t ≥ ${tMin}, correctness t ≤ ${tMax}`);
  }
  const t = Math.min(Math.max(tDefault, tMin), tMax, k);
  return {
    graph: 'complete', k, t,
    log2Bounds: { disconnect: -Infinity, privacy: -Infinity, correctness: -Infinity },
    reason: `no Harary degree below n/2 meets the bounds, so the complete graph (k = n − 1) is cheaper; ` +
      `t=${t} (${threat === 'malicious' ? '⌊2n/3⌋+1' : '⌊n/2⌋+1'} default clamped to [${tMin}, ${Math.min(tMax, k)}]: ` +
      `more than the ${corrupt} corrupt, at most the ${tMax} surviving neighbours)`,
  };
}

/**
 * Checks a Shamir threshold against the number of share holders per client.
 * Semi-honest: 2 ≤ t ≤ k. Malicious: additionally t > 2(k+1)/3, the
 * active-adversary condition of Bonawitz et al. CCS 2017 §6 (Theorem 6.5 with
 * t > 2n/3), applied to the k + 1 clients of a neighbourhood (the client and
 * its k neighbours): a server that lies about who dropped can then never
 * collect both kinds of shares for the same client.
 * @param k share holders per client: its neighbours excluding itself (complete graph: n − 1)
 * @throws ValidationError `SECAGG_ERR_BAD_THRESHOLD`
 */
export function validateThreshold(p: { n: number; k: number; t: number; threat: Threat }): void {
  const { n, k, t, threat } = p;
  if (!Number.isInteger(n) || n < 2) throw new ValidationError(THRESHOLD, `"n" expected an integer ≥ 2, got ${String(n)}`);
  if (!Number.isInteger(k) || k < 1 || k > n - 1) throw new ValidationError(THRESHOLD, `"k" expected an integer in [1, ${n - 1}], got ${String(k)}`);
  if (!Number.isInteger(t) || t < 2 || t > k) {
    throw new ValidationError(THRESHOLD, `"t" expected an integer in [2, k=${k}] (t ≥ 2 for secrecy, t ≤ k share holders), got ${String(t)}`);
  }
  if (threat === 'malicious') {
    if (t < thresholdRange(k, threat)[0]) {
      throw new ValidationError(THRESHOLD, `"t" must exceed 2(k+1)/3 = ${((2 * (k + 1)) / 3).toFixed(2)} against a malicious server ` +
        `(Bonawitz et al. 2017 §6), got t=${t} with k=${k}`);
    }
  } else if (threat !== 'semi-honest') {
    throw new ValidationError(THRESHOLD, `"threat" expected 'semi-honest' or 'malicious', got ${String(threat)}`);
  }
}

/**
 * The thresholds a client with k share holders may use, as [lo, hi] (empty
 * when lo > hi): 2 ≤ t ≤ k, and against a malicious server t > 2(k+1)/3,
 * i.e. t ≥ ⌊2(k+1)/3⌋ + 1 (Bonawitz et al. 2017 §6). The rule
 * {@link validateThreshold} enforces.
 */
export function thresholdRange(k: number, threat: Threat): [number, number] {
  return [threat === 'malicious' ? Math.floor((2 * (k + 1)) / 3) + 1 : 2, k];
}

/**
 * The default threshold for a given graph: a majority of the k + 1 clients of
 * a neighbourhood, ⌊(k+1)/2⌋ + 1 (against a malicious server more than two
 * thirds, ⌊2(k+1)/3⌋ + 1).
 */
export function defaultThreshold(k: number, threat: Threat): number {
  return threat === 'malicious' ? Math.floor((2 * (k + 1)) / 3) + 1 : Math.floor((k + 1) / 2) + 1;
}

/** The parameter finder's assumptions when the caller states none: 5% of the clients corrupt, 10% dropping out. */
export const DEFAULT_CORRUPT_FRACTION = 0.05;
export const DEFAULT_DROPOUT_RATE = 0.1;

/** Inputs of {@link chooseSessionParams}. */
export interface SessionParamsInput {
  /** Number of clients, 3 ≤ n ≤ 10^6. */
  readonly n: number;
  /** Default `'semi-honest'`. */
  readonly threat?: Threat;
  /** `'auto'` (default): the parameter finder's choice; `'complete'`; `'harary'` (with `degree`, that graph; without, the finder's). */
  readonly graph?: 'auto' | 'complete' | 'harary';
  /** Harary degree k, with `graph: 'harary'`; k = n − 1 gives the complete graph. Not checked here (the session configuration checks it). */
  readonly degree?: number;
  /** The finder's γ (default {@link DEFAULT_CORRUPT_FRACTION}). */
  readonly corruptFraction?: number;
  /** The finder's δ (default {@link DEFAULT_DROPOUT_RATE}). */
  readonly dropoutRate?: number;
}

/** Output of {@link chooseSessionParams}. */
export interface SessionParams {
  readonly graph: 'complete' | 'harary';
  /** Share holders per client: the Harary degree, or n − 1 for the complete graph. */
  readonly k: number;
  /** Shamir threshold. */
  readonly t: number;
  /** The finder's result when it chose the graph, else undefined. */
  readonly finder: SecAggPlusParams | undefined;
}

/**
 * The graph and threshold of a session whose caller leaves them open: the one
 * rule of `tally simulate` and `tally consortium init`. An explicit Harary
 * degree k gives that graph (the complete graph when k = n − 1) and an
 * explicit complete graph k = n − 1, both with {@link defaultThreshold};
 * otherwise (`'auto'`, or `'harary'` without a degree) the graph and
 * threshold are {@link findSecAggPlusParams}'s for γ and δ.
 * @throws ValidationError `SECAGG_ERR_BAD_PARAMS` when the finder finds no safe graph
 */
export function chooseSessionParams(input: SessionParamsInput): SessionParams {
  const { n, degree } = input;
  const threat = input.threat ?? 'semi-honest', graph = input.graph ?? 'auto';
  if (graph === 'harary' && degree !== undefined) {
    return { graph: degree === n - 1 ? 'complete' : 'harary', k: degree, t: defaultThreshold(degree, threat), finder: undefined };
  }
  if (graph === 'complete') return { graph: 'complete', k: n - 1, t: defaultThreshold(n - 1, threat), finder: undefined };
  const p = findSecAggPlusParams({
    n, threat, corruptFraction: input.corruptFraction ?? DEFAULT_CORRUPT_FRACTION, dropoutRate: input.dropoutRate ?? DEFAULT_DROPOUT_RATE,
  });
  return { graph: p.graph, k: p.k, t: p.t, finder: p };
}
