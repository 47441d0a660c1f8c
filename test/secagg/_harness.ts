/**
 * Test harness. An honest session runs on the one session driver (the
 * lockstep network of src/secagg/lockstep.ts) up to the point a test cares
 * about; there the harness stops and hands the test the pure state machines
 * (`session.server`, `session.clients`) and the decoded messages in flight,
 * so the test can forge a message and call one transition itself.
 * `serverRound` and `deliver` are single raw transitions for the few tests
 * that keep stepping the state machines by hand after a forgery.
 */
import { expect } from 'chai';
import { nativeProvider } from '../../src/crypto/native.js';
import { DeterministicRng } from '../../src/crypto/rng.js';
import type { SessionConfig, ThreatModel } from '../../src/secagg/config.js';
import { decodeClientMessage, decodeServerMessage } from '../../src/secagg/codec.js';
import { handleServerMessage, type ClientState, type ClientStep } from '../../src/secagg/client/index.js';
import { LockstepNetwork, type LockstepOptions } from '../../src/secagg/lockstep.js';
import { closeRound, receiveMessage, type ServerState } from '../../src/secagg/server/index.js';
import type { ClientMessage, ServerMessage } from '../../src/secagg/messages.js';

export const provider = nativeProvider;

export interface Session {
  readonly config: SessionConfig;
  readonly seeds: Uint8Array[] | undefined;
  readonly inputs: Uint32Array[];
  /** The driven session, until the harness stops it. */
  readonly net: LockstepNetwork;
  /** The clients' states where the session stopped (raw state machines from there on). */
  clients: Map<number, ClientState>;
  /** The server's state where the session stopped. */
  server: ServerState;
  /** Clients the raw `deliver` skips. */
  silent: Set<number>;
}

export interface SessionOptions {
  n?: number; t?: number; threat?: ThreatModel; dim?: number; bits?: number; graph?: SessionConfig['graph']; seed?: string;
  /** Client id → the first round it is silent in. */
  silentFrom?: ReadonlyMap<number, number>;
  /** Sees (and may replace or lose) every message in flight; see LockstepOptions.intercept. */
  intercept?: LockstepOptions['intercept'];
}

export function newSession(o: SessionOptions = {}): Session {
  const n = o.n ?? 5;
  const threat = o.threat ?? 'semi-honest';
  const rng = new DeterministicRng(`harness/${o.seed ?? 'x'}`);
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const seeds = threat === 'malicious' ? ids.map(() => rng.bytes(32)) : undefined;
  const dim = o.dim ?? 10;
  const bits = o.bits ?? 16;
  const config: SessionConfig = {
    nonce: rng.bytes(32), clientIds: ids, threshold: o.t ?? (threat === 'malicious' ? 4 : 3), bits, dim, threat,
    graph: o.graph ?? { kind: 'complete' }, ...(seeds ? { identityKeys: seeds.map((s) => provider.ed25519PublicKey(s)) } : {}),
  };
  const inputs = ids.map((id) => Uint32Array.from({ length: dim }, (_, j) => (id * 1000 + j * 7) % 2 ** bits));
  const net = new LockstepNetwork({
    config, provider, ...(o.silentFrom ? { silentFrom: o.silentFrom } : {}), ...(o.intercept ? { intercept: o.intercept } : {}),
    clients: ids.map((id) => ({
      id, rng: new DeterministicRng(`harness/${o.seed ?? 'x'}/${id}`), input: inputs[id - 1]!, ...(seeds ? { identitySeed: seeds[id - 1]! } : {}),
    })),
  });
  return { config, seeds, inputs, net, clients: new Map(), server: net.server.state, silent: new Set() };
}

function stopHere(s: Session): void {
  s.server = s.net.server.state;
  s.clients = new Map([...s.net.clients].map(([id, c]) => [id, c.state!]));
}

/**
 * Runs the honest session until the server has sent its messages of `kind`;
 * returns them, decoded and undelivered (a test may replace `message`).
 */
export function runUntil(s: Session, kind: ServerMessage['type']): { to: number; message: ServerMessage }[] {
  const isKind = (m: { from: string; bytes: Uint8Array }) => m.from === 'server' && decodeServerMessage(m.bytes).type === kind;
  const inFlight = s.net.runUntil(isKind);
  stopHere(s);
  return inFlight.filter(isKind).map((m) => ({ to: m.id, message: decodeServerMessage(m.bytes) }));
}

/** Runs the honest session until the clients have sent their messages of `kind`; returns them, decoded and not yet received. */
export function collect(s: Session, kind: ClientMessage['type']): ClientMessage[] {
  const isKind = (m: { from: string; bytes: Uint8Array }) => m.from === 'client' && decodeClientMessage(m.bytes).type === kind;
  const inFlight = s.net.runUntil(isKind);
  stopHere(s);
  return inFlight.filter(isKind).map((m) => decodeClientMessage(m.bytes));
}

/** Every message of a whole honest session, decoded, in the order sent. */
export function transcriptOf(o: SessionOptions): { client: ClientMessage[]; server: ServerMessage[]; session: Session } {
  const client: ClientMessage[] = [];
  const server: ServerMessage[] = [];
  const session = newSession({
    ...o,
    intercept: (m) => {
      if (m.from === 'client') client.push(decodeClientMessage(m.bytes)); else server.push(decodeServerMessage(m.bytes));
      return undefined;
    },
  });
  session.net.run();
  stopHere(session);
  return { client, server, session };
}

/** One raw server round: feeds `pending` to the server state machine and closes the round; returns its messages. */
export function serverRound(s: Session, pending: ClientMessage[]): { to: number; message: ServerMessage }[] {
  for (const m of pending) {
    const step = receiveMessage(s.server, m.id, m);
    s.server = step.state;
    expect(step.rejected, step.rejected?.message).to.equal(undefined);
  }
  const step = closeRound(s.server);
  s.server = step.state;
  return [...step.out];
}

/** One raw delivery: hands server messages to the (non-silent) client state machines; returns their replies. */
export function deliver(s: Session, out: { to: number; message: ServerMessage }[]): ClientMessage[] {
  const replies: ClientMessage[] = [];
  for (const { to, message } of out) {
    if (s.silent.has(to)) continue;
    const step = handleServerMessage(s.clients.get(to)!, message);
    s.clients.set(to, step.state);
    replies.push(...step.out);
  }
  return replies;
}

/** Asserts that a client step aborted with `code` and revealed nothing but the abort notice. */
export function expectAbort(step: ClientStep, code: string): void {
  expect(step.state.kind, `expected an abort with ${code}`).to.equal('aborted');
  if (step.state.kind === 'aborted') expect(step.state.code, step.state.message).to.equal(code);
  expect(step.out.map((m) => m.type)).to.deep.equal(['abort']);
  expect((step.out[0] as { code: string }).code).to.equal(code);
}

/** Plain sum of inputs over the given ids, mod 2^bits. */
export function expectedSum(s: Session, ids: readonly number[]): number[] {
  const m = 2 ** s.config.bits;
  return Array.from({ length: s.config.dim }, (_, j) => ids.reduce((acc, id) => (acc + s.inputs[id - 1]![j]!) % m, 0));
}
