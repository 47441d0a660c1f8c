/**
 * Server R2 MaskedInputCollection (Bonawitz et al. 2017, Fig. 4 round 2):
 * add each masked input y_u into one accumulator as it arrives (so memory is
 * O(m), never O(n·m)), then announce U3: to all of U3 for the consistency
 * check (malicious mode) or directly the unmasking request (semi-honest).
 */
import { CodecError, SecAggError, TallyError } from '../../errors.js';
import { requireFreshSender, requireThreshold } from '../guards.js';
import type { MaskedInputMessage } from '../messages.js';
import { startUnmasking } from './r4-unmasking.js';
import type { R2State, R3State, ServerStep } from './state.js';

const ROUND = 2;

export function receiveMaskedInput(state: R2State, msg: MaskedInputMessage): ServerStep {
  const u = msg.id;
  requireFreshSender(u, state.u2, state.u3, msg.sessionId, state.sessionId, 'a masked input', 'U2', ROUND);
  const sealed = state.ctx.config.aggregator;
  if (sealed !== undefined && msg.masked.length !== sealed.inputBytes) {
    // An HE session takes the committed envelope length and nothing else (he-sum-v1 §8.3).
    throw new SecAggError('SECAGG_ERR_BAD_VECTOR', `masked input of client ${u}: expected a ${sealed.mode} envelope of ${sealed.inputBytes} bytes, got ${msg.masked.length}`, ROUND, u);
  }
  try {
    // Validates the exact length and zero padding before touching the accumulator.
    state.acc.addInput(msg.masked);
  } catch (err) {
    // An HE aggregator refuses with its own codes (HE_ERR_*): the sender is dropped all the same.
    if (err instanceof CodecError || (err instanceof TallyError && (err.code === 'SECAGG_ERR_BAD_VECTOR' || err.code.startsWith('HE_ERR_')))) {
      throw new SecAggError('SECAGG_ERR_BAD_VECTOR', `masked input of client ${u}: ${err.message}`, ROUND, u);
    }
    throw err;
  }
  state.u3.add(u);
  return { state, out: [] };
}

/** Closes R2: U3 = clients whose masked input is in the accumulator. */
export function closeMaskedInput(state: R2State): ServerStep {
  const { ctx } = state;
  const u3 = [...state.u3].sort((a, b) => a - b);
  requireThreshold(u3.length, ctx.config.threshold, 'U3 (clients whose masked input was accepted)', ROUND);
  if (ctx.config.threat === 'malicious') {
    const next: R3State = {
      kind: 'r3', ctx, sessionId: state.sessionId, keyById: state.keyById, u2: state.u2, acc: state.acc, u3, signatures: new Map(),
    };
    const message = { type: 'consistency-request' as const, sessionId: state.sessionId, survivors: u3 };
    return { state: next, out: u3.map((to) => ({ to, message })) };
  }
  return startUnmasking(state, u3, [], new Set(u3));
}
