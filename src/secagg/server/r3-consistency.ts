/**
 * Server R3 ConsistencyCheck, malicious mode (Bonawitz et al. 2017, Fig. 4
 * round 3): collect each survivor's signature on (session id, U3); U4 is the
 * set of valid signers, and their signatures travel with the unmasking
 * request so every client can check that at least t clients saw the same U3.
 */
import { SecAggError } from '../../errors.js';
import { consistencySignedBytes } from '../config.js';
import { requireFreshSender, requireThreshold } from '../guards.js';
import type { ConsistencyMessage } from '../messages.js';
import { startUnmasking } from './r4-unmasking.js';
import type { R3State, ServerStep } from './state.js';

const ROUND = 3;

export function receiveConsistency(state: R3State, msg: ConsistencyMessage): ServerStep {
  const { ctx } = state;
  const u = msg.id;
  requireFreshSender(u, new Set(state.u3), state.signatures, msg.sessionId, state.sessionId, 'a signature on U3', 'U3', ROUND);
  const key = ctx.config.identityKeys![ctx.config.clientIds.indexOf(u)]!;
  if (!(msg.signature instanceof Uint8Array) || msg.signature.length !== 64
    || !ctx.provider.ed25519Verify(key, consistencySignedBytes(state.sessionId, state.u3), msg.signature)) {
    throw new SecAggError('SECAGG_ERR_BAD_SIGNATURE', `consistency signature of client ${u} does not verify`, ROUND, u);
  }
  state.signatures.set(u, msg.signature);
  return { state, out: [] };
}

/** Closes R3: U4 = valid signers; asks U4 to unmask, with the signatures. */
export function closeConsistency(state: R3State): ServerStep {
  const { ctx } = state;
  const u4 = [...state.signatures.keys()].filter((u) => !ctx.dropped.has(u)).sort((a, b) => a - b);
  requireThreshold(u4.length, ctx.config.threshold, 'U4 (clients that signed U3)', ROUND);
  const signatures = u4.map((id) => ({ id, signature: state.signatures.get(id)! }));
  const r2 = { ...state, kind: 'r2' as const, u3: new Set(state.u3) };
  return startUnmasking(r2, state.u3, signatures, new Set(u4));
}
