/**
 * Server R4 Unmasking (Bonawitz et al. 2017, Fig. 4 round 4): ask the
 * survivors for one share per neighbour, rebuild from exactly t shares each
 * survivor's self-mask seed b_u and each dropped client's mask key s_v^SK,
 * and remove those masks from the accumulated sum:
 *   z = Σ_{u∈U3} y_u − Σ_{u∈U3} PRG(b_u) − Σ_{v∈U2\U3} Σ_{u∈U3∩N(v)} ±PRG(s_{u,v}).
 * Lagrange coefficients are computed once per distinct set of share holders.
 */
import { SecAggError } from '../../errors.js';
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

/** Rebuilds one secret from exactly t shares: the t holders with the smallest ids. */
function rebuild(entry: { xs: number[]; ys: Uint8Array[] } | undefined, t: number, of: number, what: string, cache: LagrangeCache): Uint8Array {
  const n = entry?.xs.length ?? 0;
  if (entry === undefined || n < t) throw new SecAggError('SECAGG_ERR_BELOW_THRESHOLD', `only ${n} shares of the ${what} of client ${of} arrived, fewer than t=${t}`, ROUND, of);
  const order = entry.xs.map((_, i) => i).sort((a, b) => entry.xs[a]! - entry.xs[b]!).slice(0, t);
  return shamirCombine(order.map((i) => entry.xs[i]!), order.map((i) => entry.ys[i]!), t, cache);
}

/** Closes R4: needs |U5| ≥ t; removes the masks and completes with the sum. */
export function closeUnmasking(state: R4State): ServerStep {
  const { ctx, sessionId } = state;
  const { config, provider, graph } = ctx;
  const t = config.threshold;
  requireThreshold(state.responded.size, t, 'U5 (clients that sent unmasking shares)', ROUND);
  const cache = new LagrangeCache();
  const terms: MaskTerm[] = [];
  for (const u of state.u3) {
    const bU = rebuild(state.selfShares.get(u), t, u, 'self-mask seed', cache);
    terms.push({ key: selfMaskKey(provider, sessionId, u, bU), sign: -1 });
    bU.fill(0);
  }
  const inU3 = new Set(state.u3);
  for (const v of state.droppedAfterShares) {
    const skV = rebuild(state.keyShares.get(v), t, v, 'mask key', cache);
    // The rebuilt key must match what v advertised: a wrong share is caught here, not in the sum.
    if (!equalBytes(provider.x25519PublicKey(skV), state.keyById.get(v)!.sPk)) {
      throw new SecAggError('SECAGG_ERR_RECONSTRUCTION_FAILED', `the shares of client ${v}'s mask key do not rebuild its advertised key`, ROUND, v);
    }
    for (const u of graph.neighbors(v)) {
      if (!inU3.has(u)) continue;
      // u added +PRG(s_uv) if u < v and −PRG(s_uv) if u > v; undo it.
      terms.push({ key: pairwiseMaskKey(provider, sessionId, v, skV, u, state.keyById.get(u)!.sPk, ROUND), sign: u < v ? -1 : 1 });
    }
    skV.fill(0);
  }
  // All masks are removed in one pass, window by window over the accumulator (mask.ts).
  state.acc.removeMasks(terms);
  for (const term of terms) term.key.fill(0);
  const sum = state.acc.result();
  state.acc.clear(); // the sum is ours now; wipe what the aggregator still holds
  const next: CompletedServerState = { kind: 'completed', ctx, sum, survivors: state.u3 };
  return { state: next, out: [] };
}
