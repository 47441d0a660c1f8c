/**
 * Server R0 AdvertiseKeys (Bonawitz et al. 2017, Fig. 4 round 0): collect the
 * advertisements, refuse malformed, low-order, duplicate or (malicious mode)
 * unsigned keys, then broadcast the key list of U1 once |U1| ≥ t.
 */
import { checkAdvertisement } from '../advertisement.js';
import { sessionId } from '../config.js';
import { requireFreshSender, requireThreshold } from '../guards.js';
import type { AdvertiseKeysMessage, KeyListMessage } from '../messages.js';
import type { R0State, R1State, ServerStep } from './state.js';

const ROUND = 0;

export function receiveAdvertisement(state: R0State, msg: AdvertiseKeysMessage): ServerStep {
  const { ctx } = state;
  requireFreshSender(msg.id, ctx.roster, state.adverts, msg.configHash, ctx.configHash, 'its keys', 'the roster', ROUND);
  checkAdvertisement(ctx.config, ctx.provider, ctx.configHash, msg, state.seenKeys, ROUND);
  const keys = { id: msg.id, cPk: msg.cPk, sPk: msg.sPk, ...(msg.signature === undefined ? {} : { signature: msg.signature }) };
  state.adverts.set(msg.id, keys);
  return { state, out: [] };
}

/** Closes R0: U1 = accepted advertisers; sends every client in U1 the key list. */
export function closeAdvertise(state: R0State): ServerStep {
  const { ctx } = state;
  const keys = [...state.adverts.values()].filter((k) => !ctx.dropped.has(k.id)).sort((a, b) => a.id - b.id);
  requireThreshold(keys.length, ctx.config.threshold, 'U1 (clients that advertised keys)', ROUND);
  const message: KeyListMessage = { type: 'key-list', configHash: ctx.configHash, keys };
  const next: R1State = {
    kind: 'r1', ctx, sessionId: sessionId(ctx.provider, ctx.configHash, keys), keys,
    keyById: new Map(keys.map((k) => [k.id, k])), u1: new Set(keys.map((k) => k.id)), shares: new Map(),
  };
  return { state: next, out: keys.map((k) => ({ to: k.id, message })) };
}
