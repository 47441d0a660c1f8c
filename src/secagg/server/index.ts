/**
 * The server side of secagg-v1: `createServer`, then `receiveMessage` for each
 * client message and `closeRound` when a round's deadline passes (or
 * `expectedClients` is empty). Bad input never throws: a refused message
 * drops its sender (`rejected` says why) and the round goes on; a violated
 * round invariant (|U_i| < t, a failed reconstruction) aborts the session and
 * tells every remaining client.
 */
import { InternalError, SecAggError, TallyError, ValidationError, type SecAggCode } from '../../errors.js';
import type { CryptoProvider } from '../../crypto/types.js';
import { maskedSum, type AggregatorFactory } from '../../crypto/aggregator.js';
import { AdvertisedKeySet } from '../advertisement.js';
import { abortText } from '../codec.js';
import { configHash, type SessionConfig } from '../config.js';
import { checkClientMessage, type ClientMessage, type Outgoing } from '../messages.js';
import { sessionGraph, validateSession } from '../session.js';
import { closeAdvertise, receiveAdvertisement } from './r0-advertise-keys.js';
import { closeShareKeys, receiveShares } from './r1-share-keys.js';
import { closeMaskedInput, receiveMaskedInput } from './r2-masked-input.js';
import { closeConsistency, receiveConsistency } from './r3-consistency.js';
import { closeUnmasking, receiveUnmask } from './r4-unmasking.js';
import { expectedClients, type ServerState, type ServerStep } from './state.js';

export { expectedClients } from './state.js';
export type { ServerState, ServerStep, Rejection, DropRecord, CompletedServerState, AbortedServerState } from './state.js';

const ROUND: Record<ServerState['kind'], number> = { r0: 0, r1: 1, r2: 2, r3: 3, r4: 4, completed: 5, aborted: -1 };

/**
 * The round a server state is in: 0 AdvertiseKeys … 4 Unmasking while the
 * session runs, 5 once it completed; an aborted state reports the round in
 * which it aborted.
 */
export function roundOf(s: ServerState): number {
  return s.kind === 'aborted' ? s.round : ROUND[s.kind];
}
const EXPECTS: Record<string, ClientMessage['type']> = { r0: 'advertise', r1: 'shares', r2: 'masked-input', r3: 'consistency', r4: 'unmask' };

export interface CreateServerOptions {
  readonly config: SessionConfig;
  readonly provider: CryptoProvider;
  /** The running sum of masked inputs; default {@link maskedSum} (pairwise masking). */
  readonly aggregator?: AggregatorFactory;
}

/**
 * Creates the server of one session. Validates the configuration, including
 * the threat model's threshold conditions.
 * @throws ValidationError `SECAGG_ERR_BAD_CONFIG` / `SECAGG_ERR_BAD_THRESHOLD`
 */
export function createServer(o: CreateServerOptions): ServerState {
  validateSession(o.config);
  // A session committed to an HE aggregator must not fall back to summing packed vectors (he-sum-v1 §8.1).
  if (o.config.aggregator !== undefined && o.aggregator === undefined) {
    throw new ValidationError('SECAGG_ERR_BAD_CONFIG', `a session committed to the ${o.config.aggregator.mode} aggregator needs that aggregator`);
  }
  return {
    kind: 'r0',
    ctx: {
      config: o.config, configHash: configHash(o.provider, o.config), provider: o.provider,
      graph: sessionGraph(o.config, o.provider), aggregator: o.aggregator ?? maskedSum, roster: new Set(o.config.clientIds), dropped: new Map(),
    },
    adverts: new Map(), seenKeys: new AdvertisedKeySet(),
  };
}

/** Clients still taking part: everyone not dropped (the recipients of an abort). */
function participants(s: ServerState): number[] {
  return s.ctx.config.clientIds.filter((id) => !s.ctx.dropped.has(id));
}

/** Aborts the session everywhere with `code`. */
export function abortServer(s: ServerState, code: string, message: string, round: number, peer?: number): ServerStep {
  // On the wire the text is fixed (spec §5.7): the round and the party named, if any; `message` stays in the state.
  const out: Outgoing[] = participants(s).map((to) => ({ to, message: { type: 'abort', code, message: abortText(round, peer) } }));
  return { state: { kind: 'aborted', ctx: s.ctx, code, message, round }, out };
}

function dispatch(s: ServerState, m: ClientMessage): ServerStep {
  if (s.kind === 'r0' && m.type === 'advertise') return receiveAdvertisement(s, m);
  if (s.kind === 'r1' && m.type === 'shares') return receiveShares(s, m);
  if (s.kind === 'r2' && m.type === 'masked-input') return receiveMaskedInput(s, m);
  if (s.kind === 'r3' && m.type === 'consistency') return receiveConsistency(s, m);
  if (s.kind === 'r4' && m.type === 'unmask') return receiveUnmask(s, m);
  throw new SecAggError('SECAGG_ERR_UNEXPECTED_MESSAGE', `'${String(m.type)}' from client ${m.id} is not expected in round ${roundOf(s)} (expecting '${EXPECTS[s.kind] ?? 'nothing'}')`, roundOf(s), m.id);
}

/**
 * Handles one client message from `sender`, the client id the transport
 * authenticated (a TLS client certificate, a signed channel, the in-memory
 * channel of a simulation). The id inside the message must equal it
 * (secagg-v1 spec §5.1): the `shares`, `masked-input` and `unmask` messages
 * are not signed even in malicious mode, so without this check any client
 * could speak for another, e.g. send a second masked input under a dropped
 * client's id and corrupt the sum.
 *
 * A refused message is reported in `rejected`; its sender is dropped from the
 * session, except for a duplicate of an already accepted message or a message
 * that arrives after its round closed (the sender keeps what was accepted).
 */
export function receiveMessage(s: ServerState, sender: number, m: ClientMessage): ServerStep {
  if (!Number.isInteger(sender) || !s.ctx.roster.has(sender)) {
    return { state: s, out: [], rejected: { peer: undefined, code: 'SECAGG_ERR_UNKNOWN_ID', message: `message from unknown client ${String(sender)}` } };
  }
  const id = sender;
  if (m?.id !== sender) {
    // Not this sender's fault only if the message is unreadable; either way the claim is refused and the sender dropped.
    if (!s.ctx.dropped.has(id)) s.ctx.dropped.set(id, { round: roundOf(s), code: 'SECAGG_ERR_SENDER_MISMATCH' });
    return { state: s, out: [], rejected: { peer: id, code: 'SECAGG_ERR_SENDER_MISMATCH', message: `client ${sender} sent a message that claims to come from client ${String(m?.id)}` } };
  }
  if (s.ctx.dropped.has(id)) {
    return { state: s, out: [], rejected: { peer: id, code: 'SECAGG_ERR_UNEXPECTED_MESSAGE', message: `client ${id} was already dropped` } };
  }
  if (m.type === 'abort') {
    s.ctx.dropped.set(id, { round: roundOf(s), code: typeof m.code === 'string' ? m.code : 'SECAGG_ERR_ABORTED' });
    return { state: s, out: [], rejected: { peer: id, code: 'SECAGG_ERR_ABORTED', message: `client ${id} aborted: ${String(m.code)}` } };
  }
  try {
    checkClientMessage(m);
    return dispatch(s, m);
  } catch (err) {
    // Only what the peer caused becomes a protocol outcome: a refused decode or
    // a fired guard. Anything else (a TypeError, an InternalError) is a bug in
    // tally and must fail loudly instead of silently dropping an honest peer.
    if (!isPeerFault(err)) throw err;
    const code = err.code;
    // Duplicates and late messages are refused without undoing what the sender already contributed.
    const keep = code === 'SECAGG_ERR_DUPLICATE_ID' || code === 'SECAGG_ERR_UNEXPECTED_MESSAGE' || code === 'SECAGG_ERR_NOT_SUBSET';
    if (!keep) s.ctx.dropped.set(id, { round: roundOf(s), code });
    return { state: s, out: [], rejected: { peer: id, code, message: err.message } };
  }
}

/** An error a peer's message can legitimately cause (decode or protocol guard), as opposed to a bug. */
export function isPeerFault(err: unknown): err is TallyError {
  return err instanceof TallyError && !(err instanceof InternalError) && (err.code.startsWith('SECAGG_ERR_') || err.code.startsWith('CRYPTO_ERR_') || err.code.startsWith('SHAMIR_ERR_'));
}

/**
 * Drops `id` for a message that could not even be decoded (the driver calls
 * this with the codec's error): the sender is authenticated, so the fault is
 * its own. A client already dropped stays dropped with its first reason.
 */
export function refuseUndecodable(s: ServerState, id: number, code: SecAggCode, message: string): ServerStep {
  if (!s.ctx.roster.has(id)) return { state: s, out: [], rejected: { peer: undefined, code: 'SECAGG_ERR_UNKNOWN_ID', message: `message from unknown client ${String(id)}` } };
  if (s.kind !== 'completed' && s.kind !== 'aborted' && !s.ctx.dropped.has(id)) s.ctx.dropped.set(id, { round: roundOf(s), code });
  return { state: s, out: [], rejected: { peer: id, code, message } };
}

/**
 * Closes the current round: clients that did not answer are dropped as
 * SILENT, the round's invariants are checked, and the next round's requests
 * are returned. Below the threshold the session aborts everywhere.
 */
export function closeRound(s: ServerState): ServerStep {
  if (s.kind === 'completed' || s.kind === 'aborted') {
    throw new ValidationError('SECAGG_ERR_UNEXPECTED_MESSAGE', `the session is already ${s.kind}`);
  }
  for (const id of expectedClients(s)) s.ctx.dropped.set(id, { round: roundOf(s), code: 'SILENT' });
  try {
    switch (s.kind) {
      case 'r0': return closeAdvertise(s);
      case 'r1': return closeShareKeys(s);
      case 'r2': return closeMaskedInput(s);
      case 'r3': return closeConsistency(s);
      case 'r4': return closeUnmasking(s);
    }
  } catch (err) {
    if (err instanceof TallyError && !(err instanceof InternalError)) return abortServer(s, err.code, err.message, roundOf(s), err instanceof SecAggError ? err.peer : undefined);
    throw err;
  }
}
