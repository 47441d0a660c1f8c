/**
 * Server R4 Unmasking (Bonawitz et al. 2017, Fig. 4 round 4): ask the
 * survivors for one share per neighbour, rebuild each dropped client's mask
 * key s_v^SK (decoding around wrong shares, checked against s_v^PK) and each
 * survivor's self-mask seed b_u (likewise, but with nothing to check it
 * against beyond the shares combining), and remove those masks from the sum:
 *   z = Σ_{u∈U3} y_u − Σ_{u∈U3} PRG(b_u) − Σ_{v∈U2\U3} Σ_{u∈U3∩N(v)} ±PRG(s_{u,v}).
 * Lagrange coefficients are computed once per distinct set of share holders.
 */
import { CryptoError, SecAggError } from '../../errors.js';
import { equalBytes } from '../../crypto/_validate.js';
import { LagrangeCache, shamirCombine } from '../../crypto/shamir.js';
import { requireFreshSender, requireThreshold } from '../guards.js';
import { isShareValue, pairwiseMaskKey, selfMaskKey, SHARE_BYTES } from '../keys.js';
import type { MaskTerm } from '../../crypto/mask.js';
import type { UnmaskMessage, UnmaskRequestMessage } from '../messages.js';
import type { CompletedServerState, R2State, R4State, ServerStep } from './state.js';

const ROUND = 4;

/** Moves to R4: asks every client in `asked` to unmask. */
export function startUnmasking(state: R2State, u3: readonly number[], signatures: UnmaskRequestMessage['signatures'], asked: ReadonlySet<number>): ServerStep {
  const inU3 = new Set(u3);
  const droppedAfterShares = [...state.u2].filter((v) => !inU3.has(v)).sort((a, b) => a - b);
  const message: UnmaskRequestMessage = { type: 'unmask-request', sessionId: state.sessionId, survivors: u3, dropped: droppedAfterShares, signatures };
  const next: R4State = {
    kind: 'r4', ctx: state.ctx, sessionId: state.sessionId, keyById: state.keyById, acc: state.acc, u3,
    droppedAfterShares, asked, responded: new Set(), selfShares: new Map(), keyShares: new Map(),
  };
  return { state: next, out: [...asked].sort((a, b) => a - b).map((to) => ({ to, message })) };
}

function checkShareList(list: UnmaskMessage['selfShares'], expected: readonly number[], u: number, what: string): void {
  if (!Array.isArray(list) || list.length !== expected.length) {
    throw new SecAggError('SECAGG_ERR_BAD_MESSAGE', `client ${u} sent ${list?.length} ${what}, expected ${expected.length}`, ROUND, u);
  }
  list.forEach((s, i) => {
    if (s.of !== expected[i]) throw new SecAggError('SECAGG_ERR_BAD_MESSAGE', `client ${u} sent ${what} for ${String(s.of)}, expected ${expected[i]}`, ROUND, u);
    if (!(s.share instanceof Uint8Array) || s.share.length !== SHARE_BYTES) throw new SecAggError('SECAGG_ERR_BAD_SHARE', `client ${u} sent a share of the wrong length for ${s.of}`, ROUND, u);
    // A value outside the field would only fail at reconstruction, aborting everyone: refuse it here.
    if (!isShareValue(s.share)) throw new SecAggError('SECAGG_ERR_BAD_SHARE', `client ${u} sent a share for ${s.of} that is not a field element`, ROUND, u);
  });
}

export function receiveUnmask(state: R4State, msg: UnmaskMessage): ServerStep {
  const { ctx } = state;
  const u = msg.id;
  requireFreshSender(u, state.asked, state.responded, msg.sessionId, state.sessionId, 'unmasking shares', 'the set asked to unmask', ROUND);
  const hood = new Set(ctx.graph.neighbors(u));
  hood.add(u);
  checkShareList(msg.selfShares, state.u3.filter((v) => hood.has(v)), u, 'self-mask shares');
  checkShareList(msg.keyShares, state.droppedAfterShares.filter((v) => v !== u && hood.has(v)), u, 'key shares');
  const put = (m: R4State['selfShares'], of: number, share: Uint8Array) => {
    let e = m.get(of);
    if (e === undefined) m.set(of, (e = { xs: [], ys: [] }));
    e.xs.push(u);
    e.ys.push(share);
  };
  for (const s of msg.selfShares) put(state.selfShares, s.of, s.share);
  for (const s of msg.keyShares) put(state.keyShares, s.of, s.share);
  state.responded.add(u);
  return { state, out: [] };
}

type ShareSet = { xs: number[]; ys: Uint8Array[] };

/** The shares of one secret held by clients not found faulty, in increasing holder id. */
function liveShares(entry: ShareSet | undefined, faulty: ReadonlyMap<number, number>): ShareSet {
  if (entry === undefined) return { xs: [], ys: [] };
  const order = entry.xs.map((_, i) => i).filter((i) => !faulty.has(entry.xs[i]!)).sort((a, b) => entry.xs[a]! - entry.xs[b]!);
  return { xs: order.map((i) => entry.xs[i]!), ys: order.map((i) => entry.ys[i]!) };
}

/** Fewer than t shares: names the faulty holders whose shares were discarded, if any, else the owner of the secret. */
function tooFewShares(n: number, t: number, of: number, what: string, faulty: ReadonlyMap<number, number>): SecAggError {
  const bad = [...faulty.keys()].sort((a, b) => a - b);
  const why = bad.length === 0 ? '' : ` after discarding the shares of client(s) ${bad.join(', ')}, which sent wrong shares`;
  return new SecAggError('SECAGG_ERR_BELOW_THRESHOLD', `only ${n} shares of the ${what} of client ${of} remain${why}, fewer than t=${t}`, ROUND, bad[0] ?? of);
}

/** shamirCombine of the shares at `idx`, or undefined when they do not interpolate to a 32-byte secret. */
function combineAt(sh: ShareSet, idx: readonly number[], cache: LagrangeCache): Uint8Array | undefined {
  try {
    return shamirCombine(idx.map((i) => sh.xs[i]!), idx.map((i) => sh.ys[i]!), idx.length, cache);
  } catch (err) {
    if (err instanceof CryptoError && err.code === 'SHAMIR_ERR_INCONSISTENT') return undefined;
    throw err;
  }
}

/**
 * Rebuilds one secret of client `of` from its live shares (spec §5.6, §8.8).
 * `accepts` is the public check of a candidate: for a mask key s_v^SK, that
 * its X25519 public key is the advertised s_v^PK; for a self-mask seed there
 * is none (any value that the shares combine to is a candidate).
 *
 * The t smallest holders are tried first. If they fail, the h live shares are
 * decoded by windows: for i = 1 … h − 1 the t holders at positions i, i + 1,
 * … (mod h) in id order. A window whose secret is accepted is taken when at
 * least ⌈(h + t)/2⌉ shares lie on its polynomial; share j lies on it iff
 * replacing the window's first share by j rebuilds the same secret (the two
 * interpolants differ by c·Π(X − x_i) over the t − 1 shared holders, which is
 * non-zero at 0 unless c = 0). Taking a window only at ⌈(h + t)/2⌉ means that
 * while at most ⌊(h − t)/2⌋ of the h shares are wrong, its polynomial is the
 * dealer's own (any other one agrees with at most t − 1 right shares), so
 * only holders whose shares disagree with the dealt sharing are named: the
 * Reed–Solomon unique-decoding radius. Cost: at most h window reconstructions
 * and h·(h − t) substitutions, only when the first t shares fail.
 * @returns the secret and the holders whose shares are wrong (empty on the fast path)
 * @throws SecAggError `SECAGG_ERR_RECONSTRUCTION_FAILED` naming the holder(s)
 *   that disagree with an accepted window too weakly supported to attribute,
 *   or `of` when no window is accepted
 */
function decodeSecret(sh: ShareSet, t: number, of: number, what: string, accepts: (secret: Uint8Array) => boolean,
  faulty: ReadonlyMap<number, number>, cache: LagrangeCache): { secret: Uint8Array; wrong: number[] } {
  const h = sh.xs.length;
  if (h < t) throw tooFewShares(h, t, of, what, faulty);
  const candidate = (idx: number[]): Uint8Array | undefined => {
    const secret = combineAt(sh, idx, cache);
    if (secret !== undefined && accepts(secret)) return secret;
    secret?.fill(0);
    return undefined;
  };
  const window = (i: number) => Array.from({ length: t }, (_, d) => (i + d) % h);
  const first = candidate(window(0));
  if (first !== undefined) return { secret: first, wrong: [] };
  const need = Math.ceil((h + t) / 2);
  let suspects: number[] | undefined;
  for (let i = 1; i < h; i++) {
    const w = window(i);
    const secret = candidate(w);
    if (secret === undefined) continue;
    const inW = new Set(w);
    const rest = w.slice(1);
    const wrong: number[] = [];
    for (let j = 0; j < h; j++) {
      if (inW.has(j)) continue;
      const other = combineAt(sh, [...rest, j], cache);
      if (other === undefined || !equalBytes(other, secret)) wrong.push(sh.xs[j]!);
      other?.fill(0);
    }
    if (h - wrong.length >= need) return { secret, wrong };
    suspects ??= wrong;
    secret.fill(0);
  }
  if (suspects !== undefined) {
    throw new SecAggError('SECAGG_ERR_RECONSTRUCTION_FAILED', `the shares of client ${of}'s ${what} held by client(s) ${suspects.join(', ')} disagree with `
      + `t=${t} others that rebuild it; with ${h} shares that is not enough to attribute them with certainty`, ROUND, suspects[0]);
  }
  throw new SecAggError('SECAGG_ERR_RECONSTRUCTION_FAILED', `no ${t} consecutive holders of client ${of}'s ${what} shares rebuild it: `
    + `client ${of} dealt wrong shares, or more than ⌊(${h} − ${t})/2⌋ holders sent wrong ones`, ROUND, of);
}

/** Adds the holders of wrong shares to `faulty` and drops them (their other shares are no longer live). */
function markFaulty(ctx: R4State['ctx'], faulty: Map<number, number>, wrong: readonly number[], of: number): void {
  for (const holder of wrong) {
    faulty.set(holder, of);
    ctx.dropped.set(holder, { round: ROUND, code: 'SECAGG_ERR_BAD_SHARE' });
  }
}

/**
 * Closes R4 (spec §5.6): needs |U5| ≥ t; rebuilds the dropped clients' mask
 * keys, then every survivor's self-mask seed, and removes the masks. Holders
 * exposed as senders of wrong shares are dropped and all their shares
 * discarded; the session goes on while ≥ t others remain (spec §8.8).
 */
export function closeUnmasking(state: R4State): ServerStep {
  const { ctx, sessionId } = state;
  const { config, provider, graph } = ctx;
  const t = config.threshold;
  requireThreshold(state.responded.size, t, 'U5 (clients that sent unmasking shares)', ROUND);
  const cache = new LagrangeCache();
  const terms: MaskTerm[] = [];
  /** Holders found to send wrong shares → the client whose key exposed them. */
  const faulty = new Map<number, number>();
  const inU3 = new Set(state.u3);
  for (const v of state.droppedAfterShares) {
    const sPk = state.keyById.get(v)!.sPk;
    // The rebuilt key must give what v advertised: a wrong share is caught here, not in the sum.
    const { secret: skV, wrong } = decodeSecret(liveShares(state.keyShares.get(v), faulty), t, v, 'mask key',
      (sk) => equalBytes(provider.x25519PublicKey(sk), sPk), faulty, cache);
    markFaulty(ctx, faulty, wrong, v);
    const agreeV = provider.x25519Agreement(skV);
    for (const u of graph.neighbors(v)) {
      if (!inU3.has(u)) continue;
      // u added +PRG(s_uv) if u < v and −PRG(s_uv) if u > v; undo it.
      terms.push({ key: pairwiseMaskKey(provider, sessionId, v, agreeV, u, state.keyById.get(u)!.sPk, ROUND), sign: u < v ? -1 : 1 });
    }
    skV.fill(0);
  }
  for (const u of state.u3) {
    // No public check for b_u (§8.8): only that the shares combine to a seed.
    const { secret: bU, wrong } = decodeSecret(liveShares(state.selfShares.get(u), faulty), t, u, 'self-mask seed', () => true, faulty, cache);
    markFaulty(ctx, faulty, wrong, u);
    terms.push({ key: selfMaskKey(provider, sessionId, u, bU), sign: -1 });
    bU.fill(0);
  }
  if (faulty.size > 0) requireThreshold(state.responded.size - faulty.size, t, 'U5 without the clients that sent wrong shares', ROUND);
  // All masks are removed in one pass, window by window over the accumulator (mask.ts).
  state.acc.removeMasks(terms);
  for (const term of terms) term.key.fill(0);
  // An HE aggregator's sum stays sealed: it is handed on as bytes, and `sum` is empty (he-sum-v1 §8.4).
  const sealedSum = state.acc.sealedResult?.();
  const sum = sealedSum === undefined ? state.acc.result() : new Uint32Array(0);
  state.acc.clear(); // the sum is ours now; wipe what the aggregator still holds
  const next: CompletedServerState = { kind: 'completed', ctx, sum, survivors: state.u3, ...(sealedSum ? { sealedSum } : {}) };
  return { state: next, out: [] };
}
