/**
 * Test harness: drives an honest session round by round so a test can stop
 * at any point and hand a client (or the server) a forged message.
 */
import { expect } from 'chai';
import { nativeProvider } from '../../src/crypto/native.js';
import { DeterministicRng } from '../../src/crypto/rng.js';
import type { SessionConfig, ThreatModel } from '../../src/secagg/config.js';
import { handleServerMessage, startClient, type ClientState, type ClientStep } from '../../src/secagg/client/index.js';
import { closeRound, createServer, receiveMessage, type ServerState } from '../../src/secagg/server/index.js';
import type { ClientMessage, ServerMessage } from '../../src/secagg/messages.js';

export const provider = nativeProvider;

export interface Session {
  config: SessionConfig;
  seeds: Uint8Array[] | undefined;
  inputs: Uint32Array[];
  clients: Map<number, ClientState>;
  server: ServerState;
  /** The last messages each client received from the server. */
  lastToClient: Map<number, ServerMessage>;
  /** The last messages the server received, by client. */
  lastFromClient: Map<number, ClientMessage>;
  /** Clients that stay silent from now on. */
  silent: Set<number>;
}

export function newSession(o: { n?: number; t?: number; threat?: ThreatModel; dim?: number; bits?: number; graph?: SessionConfig['graph']; seed?: string } = {}): { session: Session; pending: ClientMessage[] } {
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
  const clients = new Map<number, ClientState>();
  const pending: ClientMessage[] = [];
  for (const id of ids) {
    const step = startClient({ config, id, provider, rng: new DeterministicRng(`harness/${o.seed ?? 'x'}/${id}`), input: inputs[id - 1]!, ...(seeds ? { identitySeed: seeds[id - 1]! } : {}) });
    clients.set(id, step.state);
    pending.push(...step.out);
  }
  const session: Session = {
    config, seeds, inputs, clients, server: createServer({ config, provider }), lastToClient: new Map(), lastFromClient: new Map(), silent: new Set(),
  };
  return { session, pending };
}

/**
 * Feeds `pending` to the server, closes the round and returns the server's
 * messages (not yet delivered).
 */
export function serverRound(s: Session, pending: ClientMessage[]): { to: number; message: ServerMessage }[] {
  for (const m of pending) {
    s.lastFromClient.set(m.id, m);
    const step = receiveMessage(s.server, m.id, m);
    s.server = step.state;
    expect(step.rejected, step.rejected?.message).to.equal(undefined);
  }
  const step = closeRound(s.server);
  s.server = step.state;
  return [...step.out];
}

/** Delivers server messages to the (non-silent) clients; returns their replies. */
export function deliver(s: Session, out: { to: number; message: ServerMessage }[]): ClientMessage[] {
  const replies: ClientMessage[] = [];
  for (const { to, message } of out) {
    s.lastToClient.set(to, message);
    if (s.silent.has(to)) continue;
    const step = handleServerMessage(s.clients.get(to)!, message);
    s.clients.set(to, step.state);
    replies.push(...step.out);
  }
  return replies;
}

/** Runs the honest protocol until the server has sent the request of `kind`; returns those requests undelivered. */
export function runUntil(s: Session, pending: ClientMessage[], kind: ServerMessage['type']): { to: number; message: ServerMessage }[] {
  for (;;) {
    const out = serverRound(s, pending);
    if (out.length === 0 || out[0]!.message.type === kind) return out;
    pending = deliver(s, out);
  }
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
