/**
 * Client R4 Unmasking (Bonawitz et al. 2017, Fig. 4 round 4). The client
 * reveals, for each neighbour, exactly one of its two shares: the b-share of
 * a survivor (so the server can remove the survivor's self mask) or the
 * s^SK-share of a client that dropped after R1 (so the server can remove its
 * pairwise masks). Revealing both shares of one peer would unmask that peer's
 * input, so the guards below run before anything is decrypted:
 *   - survivors ∩ dropped = ∅ (the check Flower's `_unmask` lacks);
 *   - this client is a survivor (it sent its masked input);
 *   - both lists only name neighbours in this client's U2, and U3 ⊆ U2;
 *   - |U3 ∩ neighbourhood| ≥ t;
 *   - malicious mode: U3 equals the set signed in R3, and at least t valid
 *     signatures on it from U4 ⊆ U3 (the consistency check).
 * A client answers at most one unmasking request per session: afterwards it
 * is `completed` and ignores further requests.
 */
import { SecAggError } from '../../errors.js';
import { consistencySignedBytes } from '../config.js';
import { checkIdList, requireSession, requireSubset, requireThreshold } from '../guards.js';
import type { UnmaskMessage, UnmaskRequestMessage } from '../messages.js';
import { openShares, SHARE_CIPHERTEXT_BYTES } from '../keys.js';
import { secretsOf, type ClientStep, type MaskedState } from './state.js';

const ROUND = 4;

function checkConsistencySignatures(state: MaskedState, msg: UnmaskRequestMessage): void {
  const { config, provider, id } = state.ctx;
  if (state.signedU3 === undefined) throw new SecAggError('SECAGG_ERR_UNEXPECTED_MESSAGE', 'unmasking requested before the consistency check', ROUND);
  const signed = state.signedU3;
  if (msg.survivors.length !== signed.length || msg.survivors.some((v, i) => v !== signed[i])) {
    throw new SecAggError('SECAGG_ERR_INCONSISTENT_VIEW', 'the survivors in the unmasking request differ from the U3 signed in the consistency check', ROUND);
  }
  const signers = msg.signatures.map((s) => s.id);
  checkIdList(signers, (v) => config.clientIds.includes(v), 'U4 (consistency signatures)', ROUND);
  requireSubset(signers, new Set(signed), 'U4', ROUND);
  if (!signers.includes(id)) throw new SecAggError('SECAGG_ERR_SELF_DROPPED', 'U4 does not include this client, which signed U3', ROUND, id);
  requireThreshold(signers.length, config.threshold, 'U4 (clients that signed U3)', ROUND);
  const bytes = consistencySignedBytes(state.sessionId, signed);
  for (const s of msg.signatures) {
    const key = config.identityKeys![config.clientIds.indexOf(s.id)]!;
    if (!(s.signature instanceof Uint8Array) || s.signature.length !== 64 || !provider.ed25519Verify(key, bytes, s.signature)) {
      throw new SecAggError('SECAGG_ERR_BAD_SIGNATURE', `consistency signature of client ${s.id} does not verify`, ROUND, s.id);
    }
  }
}

/** Handles the unmasking request: MaskedState → CompletedState, sends one share per neighbour. */
export function handleUnmaskRequest(state: MaskedState, msg: UnmaskRequestMessage): ClientStep {
  const { ctx } = state;
  const { config, provider, id } = ctx;
  requireSession(msg.sessionId, state.sessionId, ROUND);
  const roster = new Set(config.clientIds);
  checkIdList(msg.survivors, (v) => roster.has(v), 'survivors', ROUND);
  checkIdList(msg.dropped, (v) => roster.has(v), 'dropped', ROUND);
  const alive = new Set(msg.survivors);
  // dead ∩ alive = ∅: never reveal both the self-mask share and the key share of one peer.
  for (const v of msg.dropped) {
    if (alive.has(v)) throw new SecAggError('SECAGG_ERR_BOTH_SHARES_REQUESTED', `client ${v} is listed both as survivor and as dropped`, ROUND, v);
  }
  if (!alive.has(id)) throw new SecAggError('SECAGG_ERR_SELF_DROPPED', 'the survivors do not include this client, which sent its masked input', ROUND, id);
  if (config.threat === 'malicious') checkConsistencySignatures(state, msg);
  else if (msg.signatures.length !== 0) throw new SecAggError('SECAGG_ERR_BAD_MESSAGE', 'signatures sent in a semi-honest session', ROUND);
  requireThreshold(msg.survivors.length, config.threshold, 'U3 (survivors)', ROUND);

  const u2 = new Set(state.u2);
  const localAlive = msg.survivors.filter((v) => state.holders.has(v));
  const localDead = msg.dropped.filter((v) => state.holders.has(v));
  requireSubset(localAlive, u2, 'survivors', ROUND);
  requireSubset(localDead, u2, 'dropped', ROUND);
  requireThreshold(localAlive.length, config.threshold, 'U3 ∩ this client\'s neighbourhood', ROUND);

  const selfShares: { of: number; share: Uint8Array }[] = [];
  const keyShares: { of: number; share: Uint8Array }[] = [];
  const consumed = secretsOf(state);
  const open = (v: number) => {
    // The key derived in R1 (U2 ⊆ U1, so every sender has one); secretsOf(state) wipes it.
    const { holders } = state;
    const shares = openShares(provider, holders.at(state.shareKeys, 32, v), state.sessionId, v, id, holders.at(state.ciphertexts, SHARE_CIPHERTEXT_BYTES, v), ROUND);
    consumed.push(shares.skShare, shares.bShare);
    return shares;
  };
  // Decrypt everything first: a bad ciphertext aborts before any share leaves the client.
  for (const v of localAlive) selfShares.push({ of: v, share: v === id ? state.ownBShare.slice() : open(v).bShare.slice() });
  for (const v of localDead) keyShares.push({ of: v, share: open(v).skShare.slice() });
  const out: UnmaskMessage = { type: 'unmask', sessionId: state.sessionId, id, selfShares, keyShares };
  return { state: { kind: 'completed', ctx }, out: [out], consumed };
}
