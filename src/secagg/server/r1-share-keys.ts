/**
 * Server R1 ShareKeys (Bonawitz et al. 2017, Fig. 4 round 1): collect each
 * client's encrypted shares, which must be addressed to exactly its
 * neighbours in U1, then route to every client of U2 the ciphertexts
 * addressed to it. The server cannot read them (AES-GCM under a key only the
 * two clients can derive).
 */
import { SecAggError } from '../../errors.js';
import { requireFreshSender, requireThreshold } from '../guards.js';
import { SHARE_CIPHERTEXT_BYTES } from '../keys.js';
import type { ShareKeysMessage, ShareRoutingMessage } from '../messages.js';
import type { R1State, R2State, ServerStep } from './state.js';

const ROUND = 1;

export function receiveShares(state: R1State, msg: ShareKeysMessage): ServerStep {
  const { ctx } = state;
  const u = msg.id;
  requireFreshSender(u, state.u1, state.shares, msg.sessionId, state.sessionId, 'shares', 'U1', ROUND);
  const expected = ctx.graph.neighbors(u).filter((v) => state.u1.has(v));
  if (!Array.isArray(msg.shares) || msg.shares.length !== expected.length) {
    throw new SecAggError('SECAGG_ERR_BAD_MESSAGE', `client ${u} sent ${msg.shares?.length} shares, expected one for each of its ${expected.length} neighbours in U1`, ROUND, u);
  }
  msg.shares.forEach((s, i) => {
    if (s.to !== expected[i]) throw new SecAggError('SECAGG_ERR_BAD_MESSAGE', `client ${u} addressed share ${i} to ${String(s.to)}, expected ${expected[i]}`, ROUND, u);
    if (!(s.ciphertext instanceof Uint8Array) || s.ciphertext.length !== SHARE_CIPHERTEXT_BYTES) {
      throw new SecAggError('SECAGG_ERR_BAD_SHARE', `client ${u} sent a share ciphertext of the wrong length for ${s.to}`, ROUND, u);
    }
  });
  state.shares.set(u, msg.shares);
  return { state, out: [] };
}

/** Closes R1: U2 = clients whose shares were accepted; routes the shares. */
export function closeShareKeys(state: R1State): ServerStep {
  const { ctx } = state;
  const u2 = [...state.shares.keys()].filter((u) => !ctx.dropped.has(u)).sort((a, b) => a - b);
  requireThreshold(u2.length, ctx.config.threshold, 'U2 (clients that shared their keys)', ROUND);
  const inbox = new Map<number, { from: number; ciphertext: Uint8Array }[]>(u2.map((v) => [v, []]));
  for (const u of u2) {
    for (const s of state.shares.get(u)!) inbox.get(s.to)?.push({ from: u, ciphertext: s.ciphertext });
  }
  const out = u2.map((v) => {
    const message: ShareRoutingMessage = { type: 'share-routing', sessionId: state.sessionId, shares: inbox.get(v)! };
    return { to: v, message };
  });
  const next: R2State = {
    kind: 'r2', ctx, sessionId: state.sessionId, keyById: state.keyById, u2: new Set(u2),
    acc: ctx.aggregator(ctx.config.dim, ctx.config.bits, ctx.provider), u3: new Set(),
  };
  return { state: next, out };
}
