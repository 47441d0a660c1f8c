/**
 * `malicious-client`: the server facing clients that deviate (spec §5.1–5.6,
 * §7, §8.8). Each case runs a session of honest clients in which one client
 * message is altered, replaced, repeated or sent on another client's channel.
 * The file records every message the server receives (its authenticated
 * sender and its bytes), when each round closes, and what the server decided:
 * the code of each refused message, the state after each close (with the
 * abort message when it aborts), , the clients it dropped and why, and the sum.
 * The checker replays the server alone on the session driver.
 */
import { DeterministicRng } from '../../crypto/rng.js';
import { lowOrderLists } from '../../crypto/lowOrder.js';
import type { CryptoProvider } from '../../crypto/types.js';
import { decodeClientMessage, encodeClientMessage } from '../codec.js';
import type { SessionConfig } from '../config.js';
import { ServerDriver, type SessionListener } from '../driver.js';
import { LockstepNetwork } from '../lockstep.js';
import type { AdvertiseKeysMessage, ClientMessage, MaskedInputMessage, ShareKeysMessage, UnmaskMessage } from '../messages.js';
import type { ServerState } from '../server/index.js';
import { plaintextSum, validateSession } from '../session.js';
import {
  bytes, configFromJson, configToJson, expectEqual, expectThat, hex, rngOf, VectorMismatch, type ConfigJson, type TestCase,
} from './_common.js';
import type { VectorKind } from './kind.js';
import { setupScenario, type Scenario } from './kinds-sessions.js';

const KIND = 'malicious-client';

/** A message as the server receives it: the sender the transport authenticated, and the message. */
export interface Delivery { readonly sender: number; readonly msg: ClientMessage }

/**
 * Replaces what client `sender` sends in `round` (its honest message `msg`)
 * by the deliveries returned; `sent` holds every message delivered so far.
 */
export type Tamper = (round: number, sender: number, msg: ClientMessage, sent: readonly Delivery[]) => Delivery[];

/** One event the server saw: a message (refused with `rejected`, or accepted) or the close of a round. */
export type ServerEvent =
  | { readonly round: number; readonly sender: number; readonly message: Uint8Array; readonly rejected?: string }
  | { readonly round: number; readonly close: true; readonly state: string; readonly error?: string; readonly abort?: Uint8Array };

export interface DriveResult {
  readonly events: ServerEvent[];
  readonly server: ServerState;
  /** The server's drop log, increasing id. */
  readonly dropped: { id: number; round: number; code: string }[];
}

function dropLog(s: ServerState): DriveResult['dropped'] {
  return [...s.ctx.dropped].map(([id, r]) => ({ id, round: r.round, code: r.code })).sort((a, b) => a.id - b.id);
}

type MutableEvent = { round: number; sender: number; message: Uint8Array; rejected?: string } | { round: number; close: true; state: string; error?: string; abort?: Uint8Array };

/**
 * A listener that records what the server saw and decided, as `ServerEvent`s:
 * each message received (with its refusal code), each round close with the
 * state it led to (and the abort code and message).
 */
function recorder(server: () => ServerState): { events: MutableEvent[]; listener: SessionListener } {
  const events: MutableEvent[] = [];
  const listener: SessionListener = {
    message: (e) => {
      if (e.direction === 'to-server') { events.push({ round: e.round, sender: e.peer, message: e.bytes }); return; }
      const last = events[events.length - 1];
      if (last !== undefined && 'close' in last && last.state === 'aborted' && last.abort === undefined) last.abort = e.bytes;
    },
    rejected: (e) => {
      const last = events[events.length - 1];
      if (last !== undefined && !('close' in last)) last.rejected = e.code;
    },
    roundClosed: (e) => {
      const s = server();
      events.push({ round: e.round, close: true, state: s.kind, ...(s.kind === 'aborted' ? { error: s.code } : {}) });
    },
  };
  return { events, listener };
}

/**
 * Runs a session of honest clients on the lockstep driver, every client
 * message passing through `tamper`. A client is silent after `lastRound`
 * (absent: never). Every message crosses the codec, decoded with the session
 * configuration (spec §6.4).
 */
export function driveSession(o: {
  config: SessionConfig; inputs: readonly Uint32Array[]; identitySeeds?: readonly Uint8Array[];
  lastRound: ReadonlyMap<number, number>; rngOf: (id: number) => DeterministicRng; tamper: Tamper;
  /** Stop after closing this round (default: run to the end). */
  stopAfter?: number;
}, p: CryptoProvider): DriveResult {
  const { config } = o;
  const sent: Delivery[] = [];
  let net: LockstepNetwork | undefined;
  const rec = recorder(() => net!.server.state);
  let stopped = false;
  net = new LockstepNetwork({
    config, provider: p, silentFrom: new Map([...o.lastRound].map(([id, last]) => [id, last + 1])),
    clients: config.clientIds.map((id, i) => ({ id, rng: o.rngOf(id), input: o.inputs[i]!, ...(o.identitySeeds ? { identitySeed: o.identitySeeds[i]! } : {}) })),
    intercept: (m) => {
      if (m.from === 'server') return undefined;
      const ds = o.tamper(m.round, m.id, decodeClientMessage(m.bytes, config), sent);
      sent.push(...ds);
      return ds.map((d) => ({ from: 'client' as const, id: d.sender, round: m.round, bytes: encodeClientMessage(d.msg) }));
    },
    listener: { ...rec.listener, roundClosed: (e) => { rec.listener.roundClosed!(e); if (e.round === o.stopAfter) stopped = true; } },
  });
  while (!stopped && net.step());
  return { events: rec.events, server: net.server.state, dropped: dropLog(net.server.state) };
}

/** Σ of the inputs of client `ids` mod 2^bits. */
function plainSum(config: SessionConfig, inputs: readonly Uint32Array[], ids: readonly number[]): Uint32Array {
  return plaintextSum(inputs, ids.map((id) => config.clientIds.indexOf(id)), config.dim, config.bits);
}

// --- the attacks ---------------------------------------------------------

interface Attack {
  readonly comment: string;
  readonly base: Scenario;
  readonly lastRound?: Record<number, number>;
  readonly tamper: Tamper;
  /** The code the server must refuse a message with, or abort with (checked when generating). */
  readonly expect?: string;
  /** Record the session only up to the close of this round (the refusal and the drop are what the case shows). */
  readonly stopAfter?: number;
}

const SH5: Scenario = { comment: '', clientIds: [1, 2, 3, 4, 5], threshold: 3, bits: 16, dim: 8, threat: 'semi-honest', graph: { kind: 'complete' } };
const SH6: Scenario = { ...SH5, clientIds: [1, 2, 3, 4, 5, 6] };
const MAL5: Scenario = { ...SH5, threshold: 4, threat: 'malicious' };

const flip = (b: Uint8Array, i = 0): Uint8Array => { const c = b.slice(); c[i]! ^= 1; return c; };
/** 2^255 − 19 + u, little-endian: a non-canonical encoding of u (< 2^255 for u < 19). */
const plusP = (u: number): Uint8Array => { const b = new Uint8Array(32).fill(0xff); b[0] = 0xed + u; b[31] = 0x7f; return b; };
const own = (d: ClientMessage): Delivery[] => [{ sender: d.id, msg: d }];
/** Alters the message `who` sends in `round`; everything else passes unchanged. */
const alter = (round: number, who: number, f: (m: ClientMessage, sent: readonly Delivery[]) => Delivery[]): Tamper =>
  (r, sender, msg, sent) => (r === round && sender === who ? f(msg, sent) : own(msg));
const advertOf = (sent: readonly Delivery[], id: number) => sent.find((d) => d.msg.type === 'advertise' && d.msg.id === id)!.msg as AdvertiseKeysMessage;

const ATTACKS: Attack[] = [
  { comment: 'every client honest (control): the server completes with the sum of all inputs', base: SH5, tamper: (_r, _s, m) => own(m) },
  // R0
  { comment: 'R0: client 4 advertises client 2\'s mask key with bit 255 set (X25519 ignores the bit): dropped', stopAfter: 0, base: SH5, expect: 'SECAGG_ERR_NON_CANONICAL_KEY',
    tamper: alter(0, 4, (m, sent) => { const k = advertOf(sent, 2).sPk.slice(); k[31]! |= 0x80; return [{ sender: 4, msg: { ...(m as AdvertiseKeysMessage), sPk: k } }]; }) },
  { comment: 'R0: client 4 advertises the mask key u = p + 9, a non-canonical encoding of the base point: dropped', stopAfter: 0, base: SH5, expect: 'SECAGG_ERR_NON_CANONICAL_KEY',
    tamper: alter(0, 4, (m) => [{ sender: 4, msg: { ...(m as AdvertiseKeysMessage), sPk: plusP(9) } }]) },
  { comment: 'R0: client 4 advertises a low-order encryption key: dropped', stopAfter: 0, base: SH5, expect: 'SECAGG_ERR_LOW_ORDER_KEY',
    tamper: alter(0, 4, (m) => [{ sender: 4, msg: { ...(m as AdvertiseKeysMessage), cPk: lowOrderLists().x25519[2]! } }]) },
  { comment: 'R0: client 4 advertises client 1\'s encryption key: dropped', stopAfter: 0, base: SH5, expect: 'SECAGG_ERR_DUPLICATE_KEY',
    tamper: alter(0, 4, (m, sent) => [{ sender: 4, msg: { ...(m as AdvertiseKeysMessage), cPk: advertOf(sent, 1).cPk } }]) },
  { comment: 'R0: client 4 advertises under another config hash: dropped', stopAfter: 0, base: SH5, expect: 'SECAGG_ERR_SESSION_MISMATCH',
    tamper: alter(0, 4, (m) => [{ sender: 4, msg: { ...(m as AdvertiseKeysMessage), configHash: flip((m as AdvertiseKeysMessage).configHash) } }]) },
  { comment: 'R0: client 4 sends an advertisement claiming to be client 5: client 4 is dropped, client 5 is not', stopAfter: 0, base: SH5, expect: 'SECAGG_ERR_SENDER_MISMATCH',
    tamper: alter(0, 4, (m) => [{ sender: 4, msg: { ...(m as AdvertiseKeysMessage), id: 5 } }]) },
  { comment: 'R0: client 2 advertises twice: the second is refused, the first stands', stopAfter: 0, base: SH5, expect: 'SECAGG_ERR_DUPLICATE_ID',
    tamper: alter(0, 2, (m) => [...own(m), ...own(m)]) },
  { comment: 'R0: a message from id 9, not in the roster: refused, nobody dropped', stopAfter: 0, base: SH5, expect: 'SECAGG_ERR_UNKNOWN_ID',
    tamper: alter(0, 1, (m) => [...own(m), { sender: 9, msg: { ...(m as AdvertiseKeysMessage), id: 9 } }]) },
  { comment: 'R0, malicious mode: client 4\'s advertisement signature does not cover its keys: dropped', stopAfter: 0, base: MAL5, expect: 'SECAGG_ERR_BAD_SIGNATURE',
    tamper: alter(0, 4, (m) => [{ sender: 4, msg: { ...(m as AdvertiseKeysMessage), signature: flip((m as AdvertiseKeysMessage).signature!) } }]) },
  // R1
  { comment: 'R1: client 2 sends one share fewer than it has neighbours in U1: dropped', stopAfter: 1, base: SH5, expect: 'SECAGG_ERR_BAD_MESSAGE',
    tamper: alter(1, 2, (m) => [{ sender: 2, msg: { ...(m as ShareKeysMessage), shares: (m as ShareKeysMessage).shares.slice(1) } }]) },
  { comment: 'R1: client 2\'s shares bound to another session id: dropped', stopAfter: 1, base: SH5, expect: 'SECAGG_ERR_SESSION_MISMATCH',
    tamper: alter(1, 2, (m) => [{ sender: 2, msg: { ...(m as ShareKeysMessage), sessionId: flip((m as ShareKeysMessage).sessionId) } }]) },
  { comment: 'R1: client 3 sends shares claiming to be client 2: client 3 is dropped', stopAfter: 1, base: SH5, expect: 'SECAGG_ERR_SENDER_MISMATCH',
    tamper: alter(1, 3, (m) => [{ sender: 3, msg: { ...(m as ShareKeysMessage), id: 2 } }]) },
  // R2
  { comment: 'R2: client 2 also sends a masked input as client 5, which dropped after R1: refused and client 2 dropped; the sum is right', base: SH5, lastRound: { 5: 1 }, expect: 'SECAGG_ERR_SENDER_MISMATCH',
    tamper: alter(2, 2, (m) => [...own(m), { sender: 2, msg: { ...(m as MaskedInputMessage), id: 5 } }]) },
  { comment: 'R2: client 2\'s masked input is one byte short: dropped', base: SH5, expect: 'SECAGG_ERR_BAD_VECTOR',
    tamper: alter(2, 2, (m) => [{ sender: 2, msg: { ...(m as MaskedInputMessage), masked: (m as MaskedInputMessage).masked.slice(1) } }]) },
  { comment: 'R2: client 5, dropped as silent in R1, sends a masked input: refused, as every message of a dropped client', base: SH5, lastRound: { 5: 0 }, expect: 'SECAGG_ERR_UNEXPECTED_MESSAGE',
    tamper: alter(2, 1, (m) => [...own(m), { sender: 5, msg: { ...(m as MaskedInputMessage), id: 5 } }]) },
  { comment: 'R2: client 2 repeats its R1 shares after R1 closed: refused as unexpected, client 2 stays', base: SH5, expect: 'SECAGG_ERR_UNEXPECTED_MESSAGE',
    tamper: alter(2, 2, (m, sent) => [sent.find((d) => d.sender === 2 && d.msg.type === 'shares')!, ...own(m)]) },
  // R3
  { comment: 'R3, malicious mode: client 4\'s consistency signature is altered: dropped, U4 = {1, 2, 3, 5}', base: MAL5, expect: 'SECAGG_ERR_BAD_SIGNATURE',
    tamper: alter(3, 4, (m) => [{ sender: 4, msg: { ...m, signature: flip((m as { signature: Uint8Array }).signature) } as ClientMessage }]) },
  // R4
  { comment: 'R4: client 2 omits one self-mask share: dropped, the others suffice', base: SH5, expect: 'SECAGG_ERR_BAD_MESSAGE',
    tamper: alter(4, 2, (m) => [{ sender: 2, msg: { ...(m as UnmaskMessage), selfShares: (m as UnmaskMessage).selfShares.slice(1) } }]) },
  { comment: 'R4: client 2 sends a share value that is not a field element (all bytes ff): dropped on receipt', base: SH5, expect: 'SECAGG_ERR_BAD_SHARE',
    tamper: alter(4, 2, (m) => { const u = m as UnmaskMessage; return [{ sender: 2, msg: { ...u, selfShares: u.selfShares.map((s, i) => (i === 0 ? { of: s.of, share: new Uint8Array(s.share.length).fill(0xff) } : s)) } }]; }) },
  { comment: 'R4: client 2 sends a wrong share of client 6\'s mask key (h = 5, t = 3): the decoding names client 2, which is dropped; the sum over U3 is right', base: SH6, lastRound: { 6: 1 }, expect: 'SECAGG_ERR_BAD_SHARE',
    tamper: alter(4, 2, (m) => { const u = m as UnmaskMessage; return [{ sender: 2, msg: { ...u, keyShares: u.keyShares.map((s) => ({ of: s.of, share: u.selfShares[0]!.share })) } }]; }) },
  { comment: 'R4: client 2 sends a wrong share of client 5\'s mask key with only h = t + 1 = 4 shares: the session aborts naming client 2', base: SH5, lastRound: { 5: 1 }, expect: 'SECAGG_ERR_RECONSTRUCTION_FAILED',
    tamper: alter(4, 2, (m) => { const u = m as UnmaskMessage; return [{ sender: 2, msg: { ...u, keyShares: u.keyShares.map((s) => ({ of: s.of, share: u.selfShares[0]!.share })) } }]; }) },
];

// --- generation and checking ---------------------------------------------

type EventJson = { round: number; sender: number; message: string; rejected?: string } | { round: number; close: true; state: string; error?: string; abort?: string };

function eventsJson(events: readonly ServerEvent[]): EventJson[] {
  return events.map((e) => ('close' in e
    ? { round: e.round, close: true as const, state: e.state, ...(e.error === undefined ? {} : { error: e.error }), ...(e.abort === undefined ? {} : { abort: hex(e.abort) }) }
    : { round: e.round, sender: e.sender, message: hex(e.message), ...(e.rejected === undefined ? {} : { rejected: e.rejected }) }));
}

/** How the recorded part of the session ends: the sum, an abort, or (cut short) the state reached. */
function outcome(r: DriveResult, config: SessionConfig, inputs: readonly Uint32Array[]): Record<string, unknown> {
  const s = r.server;
  if (s.kind === 'completed') {
    expectEqual('sum (plaintext sum of U3)', s.sum, plainSum(config, inputs, s.survivors));
    return { finalState: s.kind, sum: Array.from(s.sum), survivors: [...s.survivors] };
  }
  return { finalState: s.kind };
}

function generateCase(p: CryptoProvider, tcId: number, a: Attack): TestCase {
  const { config, seeds, inputs } = setupScenario(p, KIND, tcId, a.base);
  const lastRound = new Map(Object.entries(a.lastRound ?? {}).map(([k, v]) => [Number(k), v]));
  const r = driveSession({
    config, inputs, lastRound, rngOf: (id) => rngOf(KIND, tcId, `client/${id}`), tamper: a.tamper,
    ...(seeds ? { identitySeeds: seeds } : {}), ...(a.stopAfter === undefined ? {} : { stopAfter: a.stopAfter }),
  }, p);
  const codes = r.events.flatMap((e) => ('close' in e ? (e.error ? [e.error] : []) : e.rejected ? [e.rejected] : []));
  const dropCodes = r.dropped.map((d) => d.code);
  if (a.expect !== undefined && !codes.includes(a.expect) && !dropCodes.includes(a.expect)) {
    throw new VectorMismatch(`tcId ${tcId} (${a.comment}): expected ${a.expect}, the server reported ${codes.join(', ') || 'nothing'}`);
  }
  if (a.expect === undefined && codes.length > 0) throw new VectorMismatch(`tcId ${tcId}: control case refused ${codes.join(', ')}`);
  return {
    tcId, comment: a.comment, result: a.expect === undefined ? 'valid' : 'invalid', ...(a.expect === undefined ? {} : { error: a.expect }),
    config: configToJson(config), inputs: inputs.map((x) => Array.from(x)), events: eventsJson(r.events), dropped: r.dropped, ...outcome(r, config, inputs),
  };
}

function checkCase(tc: TestCase, p: CryptoProvider): void {
  const config = configFromJson(tc.config as ConfigJson);
  validateSession(config);
  // The server alone, on the session driver: each recorded message is received on its sender's channel;
  // a recorded close the driver did not make by itself (everyone answered) is the round's deadline.
  let driver: ServerDriver | undefined;
  const rec = recorder(() => driver!.state);
  driver = new ServerDriver({ config, provider: p, channel: { send: () => {} }, listener: rec.listener });
  const want = tc.events as EventJson[];
  let seen = 0;
  want.forEach((e, i) => {
    if ('close' in e) {
      // Already recorded: the driver closed the round itself when the last expected message arrived.
      if (rec.events.length <= i) driver!.closeRound();
    } else {
      expectEqual(`events[${i}] round`, Math.min(driver!.round, 4), e.round);
      driver!.receive(e.sender, bytes(e.message));
    }
    // Every event the driver recorded so far must match the file, in order.
    for (; seen < rec.events.length; seen++) expectEqual(`events[${seen}]`, eventsJson([rec.events[seen]!])[0], want[seen]);
  });
  expectEqual('events (count)', rec.events.length, want.length);
  const server = driver.state;
  expectEqual('dropped', dropLog(server), tc.dropped);
  expectEqual('finalState', server.kind, tc.finalState);
  if (tc.result === 'invalid') {
    // The case shows its code: a refusal, a drop record or the abort.
    const codes = (tc.events as EventJson[]).flatMap((e) => ('close' in e ? [e.error] : [e.rejected])).concat((tc.dropped as { code: string }[]).map((d) => d.code));
    expectThat(codes.includes(tc.error), `the server never reported ${String(tc.error)}`);
  }
  if (server.kind !== 'completed') return;
  expectEqual('survivors', server.survivors, tc.survivors);
  expectEqual('sum', server.sum, tc.sum);
  const inputs = (tc.inputs as number[][]).map((x) => Uint32Array.from(x));
  expectEqual('sum (plaintext sum of the survivors\' inputs)', plainSum(config, inputs, server.survivors), tc.sum);
}

export const maliciousClientKind: VectorKind = {
  kind: KIND,
  description: 'Malicious-client negatives (spec §5.1–5.6, §7, §8.8): sessions of honest clients in which one client message is altered, repeated or sent on another client\'s channel. `events` lists, in order, every message the server receives (the sender its transport authenticated and the bytes, decoded with the session configuration) with the code it refused it with, and every round close with the resulting state (and the abort code and message when it aborts). `dropped` is the server\'s drop log (SILENT: did not answer) and `finalState` its state when the record ends (some cases stop after the round of the deviation). `error` is the code the case shows. The checker replays the server alone on the session driver (each message on its sender\'s channel; a close the server did not make by itself, everyone having answered, is the round\'s deadline) and compares every decision, the drop log and the sum.',
  generate: (p) => ATTACKS.map((a, i) => generateCase(p, i + 1, a)),
  check: checkCase,
};
