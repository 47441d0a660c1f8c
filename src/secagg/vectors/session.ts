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
import { decodeServerMessage, encodeServerMessage } from '../codec.js';
import { LockstepNetwork } from '../lockstep.js';
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
  /**
   * A second delivery of server messages (spec §5.8): `retry` repeats every
   * server message byte for byte; `conflict` delivers, after the server
   * message of `round` to client `to`, a well-formed copy whose second-to-last byte is flipped.
   */
  readonly redeliver?: { readonly kind: 'retry' } | { readonly kind: 'conflict'; readonly to: number; readonly round: number };
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

/**
 * Runs the session to completion or abort on the lockstep network (the one
 * session driver). Any rejected message is an error of the vector itself.
 */
export function runSession(o: SessionInput, provider: CryptoProvider): SessionOutcome {
  const { config } = o;
  const transcript: TranscriptEntry[] = [];
  const silentFrom = new Map([...o.lastRound].map(([id, last]) => [id, last + 1]));
  let rejected: string | undefined;
  const net = new LockstepNetwork({
    config, provider, silentFrom,
    clients: config.clientIds.map((id, i) => ({
      id, rng: o.rngOf(id), input: o.inputs[i]!, ...(o.identitySeeds ? { identitySeed: o.identitySeeds[i]! } : {}),
    })),
    intercept: (m) => {
      transcript.push({ round: m.round, from: m.from, id: m.id, message: m.bytes });
      // The codec must round-trip every server message exactly.
      if (m.from === 'server') expectEqual(`re-encoded server message to ${m.id}`, encodeServerMessage(decodeServerMessage(m.bytes)), m.bytes);
      return undefined;
    },
    // A client's own abort notice is refused by design (the client is dropped); anything else is a fault of the vector.
    listener: { rejected: (e) => { if (e.code !== 'SECAGG_ERR_ABORTED') rejected ??= `server rejected a message of client ${String(e.peer)}: ${e.code}: ${e.message}`; } },
    ...(o.redeliver === undefined ? {} : {
      duplicateServerMessages: (m) => {
        const r = o.redeliver!;
        let second: Uint8Array | undefined;
        if (r.kind === 'retry') second = m.bytes;
        else if (m.id === r.to && m.round === r.round) { second = m.bytes.slice(); second[second.length - 2]! ^= 1; }
        if (second !== undefined) transcript.push({ round: m.round, from: 'server', id: m.id, message: second });
        return second;
      },
    }),
  });
  const outcome = net.run();
  if (rejected !== undefined) throw new VectorMismatch(rejected);
  const clientStates = config.clientIds.map((id) => {
    const s = net.clients.get(id)!.state;
    return { id, state: s?.kind === 'aborted' ? `aborted:${s.code}` : s?.kind === 'completed' ? 'completed' : 'silent' };
  });
  if (outcome.kind === 'completed') return { transcript, sum: outcome.sum, survivors: [...outcome.survivors], clientStates };
  return { transcript, error: outcome.code, clientStates };
}
