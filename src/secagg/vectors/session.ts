/**
 * Drives one whole secagg-v1 session for the vectors: one server, honest
 * clients with injected randomness, clients that fall silent after a given
 * round, every message encoded with the binary codec and recorded in order.
 *
 * Order of the transcript: in each round, the client messages in increasing
 * sender id, then the server's messages in the order `closeRound` returns
 * them (increasing recipient id), then the clients' answers, and so on.
 */
import type { Rng } from '../../crypto/rng.js';
import type { CryptoProvider } from '../../crypto/types.js';
import type { SessionConfig } from '../config.js';
import { decodeClientMessage, decodeServerMessage, encodeClientMessage, encodeServerMessage } from '../codec.js';
import { handleServerMessage, startClient, type ClientState } from '../client/index.js';
import type { ClientMessage } from '../messages.js';
import { closeRound, createServer, receiveMessage, type ServerState } from '../server/index.js';
import { expectEqual, VectorMismatch } from './_common.js';

/** One encoded message of the transcript. */
export interface TranscriptEntry {
  /** The round the message belongs to (0 AdvertiseKeys … 4 Unmasking; server requests carry the round they open). */
  readonly round: number;
  readonly from: 'client' | 'server';
  /** The sending client (`from` = client) or the recipient (`from` = server). */
  readonly id: number;
  readonly message: Uint8Array;
}

export interface SessionInput {
  readonly config: SessionConfig;
  /** One input per roster entry, in `clientIds` order. */
  readonly inputs: readonly Uint32Array[];
  /** Malicious mode: Ed25519 identity seeds in `clientIds` order. */
  readonly identitySeeds?: readonly Uint8Array[];
  /** Client id → the last round in which it sends anything (it is silent afterwards). */
  readonly lastRound: ReadonlyMap<number, number>;
  /** The randomness of each client. */
  readonly rngOf: (id: number) => Rng;
}

export interface SessionOutcome {
  readonly transcript: TranscriptEntry[];
  /** Completed: the sum and U3. */
  readonly sum?: Uint32Array;
  readonly survivors?: number[];
  /** Aborted: the server's abort code. */
  readonly error?: string;
  /** Each client's final state: 'completed', 'aborted:<code>' or 'silent'. */
  readonly clientStates: { id: number; state: string }[];
}

const ROUND: Record<string, number> = { r0: 0, r1: 1, r2: 2, r3: 3, r4: 4 };

/** Runs the session to completion or abort. Any rejected message is an error of the vector itself. */
export function runSession(o: SessionInput, provider: CryptoProvider): SessionOutcome {
  const { config } = o;
  const transcript: TranscriptEntry[] = [];
  const last = (id: number) => o.lastRound.get(id) ?? Infinity;
  const states = new Map<number, ClientState>();
  let pending: { round: number; msg: ClientMessage }[] = [];
  const send = (round: number, msgs: readonly ClientMessage[]) => { for (const msg of msgs) pending.push({ round, msg }); };

  config.clientIds.forEach((id, i) => {
    const step = startClient({ config, id, provider, rng: o.rngOf(id), input: o.inputs[i]!, ...(o.identitySeeds ? { identitySeed: o.identitySeeds[i]! } : {}) });
    states.set(id, step.state);
    if (last(id) >= 0) send(0, step.out);
  });
  let server: ServerState = createServer({ config, provider });
  for (;;) {
    const batch = pending.sort((a, b) => a.msg.id - b.msg.id);
    pending = [];
    for (const { round, msg } of batch) {
      const bytes = encodeClientMessage(msg);
      transcript.push({ round, from: 'client', id: msg.id, message: bytes });
      const step = receiveMessage(server, msg.id, decodeClientMessage(bytes));
      if (step.rejected !== undefined) throw new VectorMismatch(`server rejected a message of client ${msg.id}: ${step.rejected.code}: ${step.rejected.message}`);
      server = step.state;
    }
    const closed = ROUND[server.kind]!;
    const step = closeRound(server);
    server = step.state;
    const round = server.kind === 'aborted' ? closed + 1 : server.kind === 'completed' ? 5 : ROUND[server.kind]!;
    for (const { to, message } of step.out) {
      const bytes = encodeServerMessage(message);
      transcript.push({ round, from: 'server', id: to, message: bytes });
      // The codec must round-trip every message exactly.
      const decoded = decodeServerMessage(bytes);
      expectEqual(`re-encoded server message to ${to}`, encodeServerMessage(decoded), bytes);
      if (last(to) < round) continue;
      const reply = handleServerMessage(states.get(to)!, decoded);
      states.set(to, reply.state);
      send(round, reply.out);
    }
    if (server.kind === 'completed' || server.kind === 'aborted') break;
  }
  const clientStates = config.clientIds.map((id) => {
    const s = states.get(id)!;
    return { id, state: s.kind === 'aborted' ? `aborted:${s.code}` : s.kind === 'completed' ? 'completed' : 'silent' };
  });
  if (server.kind === 'completed') return { transcript, sum: server.sum, survivors: [...server.survivors], clientStates };
  if (server.kind === 'aborted') return { transcript, error: server.code, clientStates };
  throw new VectorMismatch(`session ended in server state ${(server as ServerState).kind}`);
}
