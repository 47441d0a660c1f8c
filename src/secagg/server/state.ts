/**
 * Server states of secagg-v1. The server collects one round's messages with
 * `receiveMessage`, then `closeRound` (called when every expected client has
 * answered or the round's deadline passed) checks |U_i| ≥ t and produces the
 * next round's requests. Transitions consume the previous state: the masked
 * inputs are summed into one accumulator as they arrive (memory O(m) for the
 * vector plus O(n·k) for metadata, never O(n·m)), which is updated in place.
 */
import type { AdvertisedKeys, SessionConfig } from '../config.js';
import type { CryptoProvider } from '../../crypto/types.js';
import type { Graph } from '../graph.js';
import type { AdvertisedKeySet } from '../advertisement.js';
import type { Outgoing } from '../messages.js';
import type { Aggregator, AggregatorFactory } from '../../crypto/aggregator.js';

/** Why and when a client left the session. */
export interface DropRecord {
  readonly round: number;
  /** `SILENT` when it simply did not answer in time, otherwise the error code of its rejected message or abort. */
  readonly code: string;
}

/** What every server state carries. */
export interface ServerContext {
  readonly config: SessionConfig;
  readonly configHash: Uint8Array;
  readonly provider: CryptoProvider;
  readonly graph: Graph;
  readonly roster: ReadonlySet<number>;
  /** Makes the running sum of R2 (pairwise masking by default). */
  readonly aggregator: AggregatorFactory;
  /** Clients dropped so far (mutable log, shared along the session). */
  readonly dropped: Map<number, DropRecord>;
}

export interface R0State {
  readonly kind: 'r0';
  readonly ctx: ServerContext;
  readonly adverts: Map<number, AdvertisedKeys>;
  /** Every accepted public key, to refuse duplicates. */
  readonly seenKeys: AdvertisedKeySet;
}

export interface R1State {
  readonly kind: 'r1';
  readonly ctx: ServerContext;
  readonly sessionId: Uint8Array;
  /** U1's advertised keys, increasing id. */
  readonly keys: readonly AdvertisedKeys[];
  readonly keyById: ReadonlyMap<number, AdvertisedKeys>;
  readonly u1: ReadonlySet<number>;
  /** Accepted share messages: sender → ciphertexts by recipient. */
  readonly shares: Map<number, readonly { readonly to: number; readonly ciphertext: Uint8Array }[]>;
}

export interface R2State {
  readonly kind: 'r2';
  readonly ctx: ServerContext;
  readonly sessionId: Uint8Array;
  readonly keyById: ReadonlyMap<number, AdvertisedKeys>;
  readonly u2: ReadonlySet<number>;
  /** Σ y_u mod 2^32 over accepted masked inputs (reduced mod 2^b at the end). */
  readonly acc: Aggregator;
  readonly u3: Set<number>;
}

export interface R3State {
  readonly kind: 'r3';
  readonly ctx: ServerContext;
  readonly sessionId: Uint8Array;
  readonly keyById: ReadonlyMap<number, AdvertisedKeys>;
  readonly u2: ReadonlySet<number>;
  readonly acc: Aggregator;
  /** U3, increasing. */
  readonly u3: readonly number[];
  readonly signatures: Map<number, Uint8Array>;
}

export interface R4State {
  readonly kind: 'r4';
  readonly ctx: ServerContext;
  readonly sessionId: Uint8Array;
  readonly keyById: ReadonlyMap<number, AdvertisedKeys>;
  readonly acc: Aggregator;
  readonly u3: readonly number[];
  /** U2 \ U3: clients whose pairwise masks must be removed, increasing. */
  readonly droppedAfterShares: readonly number[];
  /** Clients asked to unmask (U3, or U4 in malicious mode). */
  readonly asked: ReadonlySet<number>;
  readonly responded: Set<number>;
  /** Shares received per target: target id → (holder ids, share values) in arrival order. */
  readonly selfShares: Map<number, { xs: number[]; ys: Uint8Array[] }>;
  readonly keyShares: Map<number, { xs: number[]; ys: Uint8Array[] }>;
}

export interface CompletedServerState {
  readonly kind: 'completed';
  readonly ctx: ServerContext;
  /** Σ_{u ∈ U3} x_u mod 2^b; empty when the sum is sealed (an HE session). */
  readonly sum: Uint32Array;
  /** An HE session (config.aggregator): the sum's ciphertext envelope, which only the sites can decrypt. */
  readonly sealedSum?: Uint8Array;
  /** U3: the clients whose inputs are in the sum, increasing. */
  readonly survivors: readonly number[];
}

export interface AbortedServerState {
  readonly kind: 'aborted';
  readonly ctx: ServerContext;
  readonly code: string;
  readonly message: string;
  readonly round: number;
}

export type ServerState = R0State | R1State | R2State | R3State | R4State | CompletedServerState | AbortedServerState;

/** A message the server refused; its sender is dropped unless the code keeps it (duplicate, late or misdirected; see receiveMessage). */
export interface Rejection {
  readonly peer: number | undefined;
  readonly code: string;
  readonly message: string;
}

export interface ServerStep {
  readonly state: ServerState;
  readonly out: readonly Outgoing[];
  readonly rejected?: Rejection;
}

/** The clients the server still expects a message from in the current round. */
export function expectedClients(s: ServerState): number[] {
  const live = (ids: Iterable<number>, done: { has(id: number): boolean }) => [...ids].filter((id) => !done.has(id) && !s.ctx.dropped.has(id));
  switch (s.kind) {
    case 'r0': return live(s.ctx.config.clientIds, s.adverts);
    case 'r1': return live(s.u1, s.shares);
    case 'r2': return live(s.u2, s.u3);
    case 'r3': return live(s.u3, s.signatures);
    case 'r4': return live(s.asked, s.responded);
    default: return [];
  }
}
