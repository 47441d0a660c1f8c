/**
 * The client side of secagg-v1: `startClient` then `handleServerMessage` for
 * each message from the server. A guard that fires moves the client to the
 * `aborted` state, tells the server why, and hands back every secret it held
 * (`consumed`) so the caller can wipe them; an aborted session is never
 * resumed, a new one starts with fresh keys.
 */
import { InternalError, SecAggError, TallyError } from '../../errors.js';
import { checkServerMessage, type ServerMessage } from '../messages.js';
import { checkInput } from '../session.js';
import { handleKeyList } from './r1-share-keys.js';
import { handleShareRouting } from './r2-masked-input.js';
import { handleConsistencyRequest } from './r3-consistency.js';
import { handleUnmaskRequest } from './r4-unmasking.js';
import { secretsOf, type ClientState, type ClientStep } from './state.js';

export { startClient, type StartClientOptions } from './r0-advertise-keys.js';
export type { ClientState, ClientStep, ClientContext } from './state.js';

const ROUND_OF: Record<ServerMessage['type'], number> = {
  'key-list': 1, 'share-routing': 2, 'consistency-request': 3, 'unmask-request': 4, abort: 0,
};

/** The round a client state is waiting in: 1 … 4, 5 once completed; an aborted state reports the round it aborted in. */
export function clientRoundOf(s: ClientState): number {
  switch (s.kind) {
    case 'advertised': return 1;
    case 'shared': return 2;
    case 'masked': return s.signedU3 === undefined && s.ctx.config.threat === 'malicious' ? 3 : 4;
    case 'completed': return 5;
    case 'aborted': return s.round;
  }
}

/** Moves to `aborted`, reporting the code to the server and releasing every secret. */
export function abortClient(state: ClientState, code: string, message: string, round: number, notifyServer = true): ClientStep {
  return {
    state: { kind: 'aborted', ctx: state.ctx, code, message, round },
    out: notifyServer ? [{ type: 'abort', id: state.ctx.id, code }] : [],
    consumed: secretsOf(state),
  };
}

function dispatch(state: ClientState, msg: ServerMessage): ClientStep {
  if (state.kind === 'advertised' && msg.type === 'key-list') return handleKeyList(state, msg);
  if (state.kind === 'shared' && msg.type === 'share-routing') return handleShareRouting(state, msg);
  if (state.kind === 'masked' && msg.type === 'consistency-request') return handleConsistencyRequest(state, msg);
  if (state.kind === 'masked' && msg.type === 'unmask-request') return handleUnmaskRequest(state, msg);
  throw new SecAggError('SECAGG_ERR_UNEXPECTED_MESSAGE', `'${String((msg as { type?: unknown }).type)}' is not expected in state '${state.kind}'`, ROUND_OF[msg.type] ?? clientRoundOf(state));
}

/**
 * Handles one server message. Never throws for bad input: any violation
 * becomes an aborted state with a stable code. A completed or aborted client
 * ignores further messages (out is empty), so it can never be made to reveal
 * a second set of shares.
 */
export function handleServerMessage(state: ClientState, msg: ServerMessage): ClientStep {
  if (state.kind === 'completed' || state.kind === 'aborted') return { state, out: [], consumed: [] };
  if (msg?.type === 'abort') {
    return abortClient(state, typeof msg.code === 'string' ? msg.code : 'SECAGG_ERR_ABORTED', `server aborted the session: ${String(msg.message)}`, clientRoundOf(state), false);
  }
  try {
    checkServerMessage(msg);
    return dispatch(state, msg);
  } catch (err) {
    // A decode or protocol error aborts the session; anything else is a bug in tally and propagates.
    if (err instanceof SecAggError) return abortClient(state, err.code, err.message, err.round);
    if (err instanceof TallyError && !(err instanceof InternalError)) return abortClient(state, err.code, err.message, clientRoundOf(state));
    throw err;
  }
}

/**
 * Sets (or replaces) the input before the masked-input round.
 * @throws ValidationError if the vector is invalid; SecAggError `SECAGG_ERR_UNEXPECTED_MESSAGE` once the input round has passed.
 */
export function setInput(state: ClientState, input: Uint32Array): ClientState {
  checkInput(input, state.ctx.config);
  if (state.kind !== 'advertised' && state.kind !== 'shared') {
    throw new SecAggError('SECAGG_ERR_UNEXPECTED_MESSAGE', `input can only be set before the masked-input round (state '${state.kind}')`, clientRoundOf(state));
  }
  return { ...state, input };
}
