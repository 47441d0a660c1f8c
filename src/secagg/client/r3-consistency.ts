/**
 * Client R3 ConsistencyCheck, malicious mode only (Bonawitz et al. 2017,
 * Fig. 4 round 3): the server announces U3; the client checks it and signs
 * (session id, U3) with its roster key, so that in R4 every client can verify
 * that all of U4 saw the same U3 before revealing any share.
 */
import { SecAggError } from '../../errors.js';
import { consistencySignedBytes } from '../config.js';
import { checkIdList, requireSession, requireSubset, requireThreshold } from '../guards.js';
import type { ConsistencyRequestMessage } from '../messages.js';
import type { ClientStep, MaskedState } from './state.js';

const ROUND = 3;

/** Handles the consistency request: MaskedState → MaskedState with signedU3, sends the signature. */
export function handleConsistencyRequest(state: MaskedState, msg: ConsistencyRequestMessage): ClientStep {
  const { ctx } = state;
  const { config, provider, id } = ctx;
  if (config.threat !== 'malicious' || ctx.identitySeed === undefined) {
    throw new SecAggError('SECAGG_ERR_UNEXPECTED_MESSAGE', 'consistency check requested in a semi-honest session', ROUND);
  }
  if (state.signedU3 !== undefined) throw new SecAggError('SECAGG_ERR_UNEXPECTED_MESSAGE', 'consistency check requested twice', ROUND);
  requireSession(msg.sessionId, state.sessionId, ROUND);
  const roster = new Set(config.clientIds);
  checkIdList(msg.survivors, (v) => roster.has(v), 'U3', ROUND);
  if (!msg.survivors.includes(id)) throw new SecAggError('SECAGG_ERR_SELF_DROPPED', 'U3 does not include this client, which sent its masked input', ROUND, id);
  // U3 ⊆ U2 for our neighbourhood: a survivor we never exchanged shares with cannot be a neighbour in U3.
  const local = msg.survivors.filter((v) => state.holders.has(v));
  requireSubset(local, new Set(state.u2), 'U3', ROUND);
  requireThreshold(msg.survivors.length, config.threshold, 'U3 (clients whose masked input was accepted)', ROUND);
  requireThreshold(local.length, config.threshold, 'U3 ∩ this client\'s neighbourhood', ROUND);
  const signature = provider.ed25519Sign(ctx.identitySeed, consistencySignedBytes(state.sessionId, msg.survivors));
  return {
    state: { ...state, signedU3: [...msg.survivors] },
    out: [{ type: 'consistency', sessionId: state.sessionId, id, signature }],
    consumed: [],
  };
}
