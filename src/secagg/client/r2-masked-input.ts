/**
 * Client R2 MaskedInputCollection (Bonawitz et al. 2017, Fig. 4 round 2):
 * store the shares addressed to this client (U2 = their senders and itself),
 * then send y_u = x_u + PRG(b_u) + Σ_{v ∈ U2 ∩ N(u)} ±PRG(s_{u,v}) mod 2^b,
 * where the pairwise mask is added when u < v and subtracted when u > v, so
 * each pair cancels in the sum.
 */
import { SecAggError } from '../../errors.js';
import { checkIdList, requireSession, requireThreshold } from '../guards.js';
import type { ShareRoutingMessage } from '../messages.js';
import { pairwiseMaskKey, selfMaskKey, SHARE_CIPHERTEXT_BYTES } from '../keys.js';
import { MaskAccumulator, type MaskTerm } from '../../crypto/mask.js';
import type { ClientStep, MaskedState, SharedState } from './state.js';

const ROUND = 2;

/** Handles the routed shares: SharedState → MaskedState, sends the masked input. */
export function handleShareRouting(state: SharedState, msg: ShareRoutingMessage): ClientStep {
  const { ctx } = state;
  const { config, provider, id } = ctx;
  requireSession(msg.sessionId, state.sessionId, ROUND);
  const froms = msg.shares.map((s) => s.from);
  // Shares may only come from neighbours that advertised keys in R0 (U2 ⊆ U1), never from ourselves.
  checkIdList(froms, (v) => v !== id && state.holders.has(v), 'share routing', ROUND);
  for (const s of msg.shares) {
    if (!(s.ciphertext instanceof Uint8Array) || s.ciphertext.length !== SHARE_CIPHERTEXT_BYTES) {
      throw new SecAggError('SECAGG_ERR_BAD_SHARE', `share ciphertext from client ${s.from} expected ${SHARE_CIPHERTEXT_BYTES} bytes`, ROUND, s.from);
    }
  }
  const u2 = [...froms, id].sort((a, b) => a - b);
  requireThreshold(u2.length, config.threshold, 'U2 ∩ this client\'s neighbourhood', ROUND);
  if (state.input === undefined) throw new SecAggError('SECAGG_ERR_NO_INPUT', 'no input was set before the masked-input round', ROUND, id);

  // Default (secagg-v1): y accumulates mod 2^32 and is packed mod 2^b. With an encoder (an HE session) the
  // encoder masks and encodes instead, after the same terms are derived.
  const acc = ctx.maskedInput === undefined ? new MaskAccumulator(config.dim, provider) : undefined;
  acc?.addVector(state.input, 1);
  const consumed: Uint8Array[] = [state.sSk, state.bU];
  const terms: MaskTerm[] = [{ key: selfMaskKey(provider, state.sessionId, id, state.bU), sign: 1 }];
  const agreeS = provider.x25519Agreement(state.sSk); // s_u^SK imported once for every neighbour
  try {
    for (const v of froms) {
      terms.push({ key: pairwiseMaskKey(provider, state.sessionId, id, agreeS, v, state.holders.at(state.sPks, 32, v), ROUND), sign: id < v ? 1 : -1 });
    }
  } catch (err) {
    // A peer's bad key aborts the round: wipe the keys derived so far and the input already in the sum.
    for (const term of terms) term.key.fill(0);
    acc?.clear();
    throw err;
  }
  let masked: Uint8Array;
  if (acc === undefined) {
    try {
      masked = ctx.maskedInput!.encode(state.input, terms);
    } finally {
      for (const term of terms) term.key.fill(0);
    }
  } else {
    acc.addMasks(terms);
    masked = acc.resultPacked(config.bits); // packs mod 2^b straight from the sum
    acc.clear();
  }
  for (const term of terms) consumed.push(term.key);
  const ciphertexts = state.holders.slots(SHARE_CIPHERTEXT_BYTES);
  for (const s of msg.shares) state.holders.at(ciphertexts, SHARE_CIPHERTEXT_BYTES, s.from).set(s.ciphertext);
  const next: MaskedState = {
    kind: 'masked', ctx, sessionId: state.sessionId, holders: state.holders, shareKeys: state.shareKeys,
    ownSkShare: state.ownSkShare, ownBShare: state.ownBShare, u2,
    ciphertexts, signedU3: undefined,
  };
  return { state: next, out: [{ type: 'masked-input', sessionId: state.sessionId, id, masked }], consumed };
}
