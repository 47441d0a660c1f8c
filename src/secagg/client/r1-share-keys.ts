/**
 * Client R1 ShareKeys (Bonawitz et al. 2017, Fig. 4 round 1): check the key
 * list, derive the session id, draw the self-mask seed b_u, split s_u^SK and
 * b_u t-of-k among the neighbours in U1 (and the client itself) and send each
 * neighbour its shares encrypted under the c-key agreement. The share keys
 * are kept for R4 and c_u^SK is dropped: one key agreement per neighbour.
 */
import { SecAggError } from '../../errors.js';
import { equalBytes } from '../../crypto/_validate.js';
import { shamirSplit } from '../../crypto/shamir.js';
import { sessionId } from '../config.js';
import { AdvertisedKeySet, checkAdvertisement } from '../advertisement.js';
import { checkIdList, requireSession, requireThreshold } from '../guards.js';
import type { KeyListMessage } from '../messages.js';
import { sealShares, shareEncryptionKey } from '../keys.js';
import { HolderTable } from './peers.js';
import type { AdvertisedState, ClientStep, SharedState } from './state.js';

const ROUND = 1;

/** Handles the server's key list: AdvertisedState → SharedState, sends encrypted shares. */
export function handleKeyList(state: AdvertisedState, msg: KeyListMessage): ClientStep {
  const { ctx } = state;
  const { config, provider, rng, id } = ctx;
  requireSession(msg.configHash, ctx.configHash, ROUND);
  const roster = new Set(config.clientIds);
  const ids = msg.keys.map((k) => k.id);
  checkIdList(ids, (x) => roster.has(x), 'key list', ROUND);
  requireThreshold(ids.length, config.threshold, 'U1 (clients that advertised keys)', ROUND);
  const seen = new AdvertisedKeySet();
  for (const k of msg.keys) checkAdvertisement(config, provider, ctx.configHash, k, seen, ROUND);
  const mine = msg.keys.find((k) => k.id === id);
  if (mine === undefined) throw new SecAggError('SECAGG_ERR_SELF_DROPPED', 'the key list does not include this client', ROUND, id);
  if (!equalBytes(mine.cPk, state.cPk) || !equalBytes(mine.sPk, state.sPk)) throw new SecAggError('SECAGG_ERR_KEY_MISMATCH', 'the key list carries keys this client did not advertise', ROUND, id);

  // Share holders: the neighbours that advertised keys, and this client itself.
  const neighborSet = new Set(ctx.neighbors);
  const holders = ids.filter((x) => x === id || neighborSet.has(x));
  requireThreshold(holders.length, config.threshold, 'U1 ∩ this client\'s neighbourhood', ROUND);
  const table = new HolderTable(holders);
  // The holders' keys, in one pass over the list: s_v^PK is kept for R2, c_v^PK used here only.
  const sPks = table.slots(32), cPks = table.slots(32);
  for (const k of msg.keys) {
    const slot = table.slot(k.id);
    if (slot >= 0) { sPks.set(k.sPk, 32 * slot); cPks.set(k.cPk, 32 * slot); }
  }
  const sid = sessionId(provider, ctx.configHash, msg.keys);

  const bU = rng.bytes(32);
  const skShares = shamirSplit(state.sSk, config.threshold, holders, rng);
  const bShares = shamirSplit(bU, config.threshold, holders, rng);
  const shares: { to: number; ciphertext: Uint8Array }[] = [];
  const shareKeys = table.slots(32);
  let ownSkShare: Uint8Array | undefined;
  let ownBShare: Uint8Array | undefined;
  const agreeC = provider.x25519Agreement(state.cSk); // c_u^SK imported once for every neighbour
  try {
    holders.forEach((v, i) => {
      if (v === id) { ownSkShare = skShares[i]!; ownBShare = bShares[i]!; return; }
      const key = shareEncryptionKey(provider, sid, id, agreeC, v, table.at(cPks, 32, v), ROUND);
      table.at(shareKeys, 32, v).set(key); // kept to open v's shares in R4 (spec §3.7: one key per pair, both directions)
      shares.push({ to: v, ciphertext: sealShares(provider, key, sid, id, v, skShares[i]!, bShares[i]!) });
      key.fill(0);
      skShares[i]!.fill(0);
      bShares[i]!.fill(0);
    });
  } catch (err) {
    // A peer's bad key aborts the round: wipe what was derived so far (the caller wipes the state's secrets).
    shareKeys.fill(0);
    for (const share of [...skShares, ...bShares]) share.fill(0);
    bU.fill(0);
    throw err;
  }
  const next: SharedState = {
    kind: 'shared', ctx, sessionId: sid, holders: table, sPks, shareKeys, sSk: state.sSk, bU,
    ownSkShare: ownSkShare!, ownBShare: ownBShare!, input: state.input,
  };
  return { state: next, out: [{ type: 'shares', sessionId: sid, id, shares }], consumed: [state.cSk] };
}
