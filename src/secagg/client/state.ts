/**
 * Client states of secagg-v1. Each round's handler is a pure transition
 * (state, message) → {state, out, consumed} (STYLE §5.1): `out` are the
 * messages to send, `consumed` the secrets the new state no longer holds, so
 * the caller can wipe them. States are immutable; a transition never reuses
 * keys of an aborted session (a new session starts from `startClient`).
 */
import type { SessionConfig } from '../config.js';
import type { HolderTable } from './peers.js';
import type { CryptoProvider } from '../../crypto/types.js';
import type { Rng } from '../../crypto/rng.js';
import type { ClientMessage } from '../messages.js';
import type { MaskedInputEncoder } from '../../crypto/aggregator.js';

/** What every state of one client's session carries. */
export interface ClientContext {
  readonly config: SessionConfig;
  readonly configHash: Uint8Array;
  readonly id: number;
  readonly provider: CryptoProvider;
  readonly rng: Rng;
  /** Malicious mode: this client's long-term Ed25519 seed (its roster key's secret). */
  readonly identitySeed: Uint8Array | undefined;
  /** N(u): this client's neighbours in the session graph, increasing, excluding itself. */
  readonly neighbors: readonly number[];
  /** Makes the masked input of R2 when the session is not secagg-v1's (config.aggregator); absent: secagg-v1's packed vector. */
  readonly maskedInput?: MaskedInputEncoder;
}

/** R0 done: keys advertised, waiting for the key list. */
export interface AdvertisedState {
  readonly kind: 'advertised';
  readonly ctx: ClientContext;
  readonly cSk: Uint8Array;
  readonly sSk: Uint8Array;
  readonly cPk: Uint8Array;
  readonly sPk: Uint8Array;
  readonly input: Uint32Array | undefined;
}

/** R1 done: shares sent, waiting for the shares addressed to this client. */
export interface SharedState {
  readonly kind: 'shared';
  readonly ctx: ClientContext;
  readonly sessionId: Uint8Array;
  /** The share holders H(u) = U1 ∩ (N(u) ∪ {u}), packed (peers.ts). */
  readonly holders: HolderTable;
  /** s_v^PK of each holder, 32 bytes per slot (this client's own slot unused). */
  readonly sPks: Uint8Array;
  /**
   * c_{u,v}, the share-encryption key of each holder v ≠ u (spec §3.7), 32
   * bytes per slot, derived once in R1 and kept to open v's shares in R4:
   * c_u^SK itself is dropped at the end of R1.
   */
  readonly shareKeys: Uint8Array;
  readonly sSk: Uint8Array;
  /** Self-mask seed b_u (32 bytes). */
  readonly bU: Uint8Array;
  /** This client's own share of s_u^SK and of b_u (it is one of the holders). */
  readonly ownSkShare: Uint8Array;
  readonly ownBShare: Uint8Array;
  readonly input: Uint32Array | undefined;
}

/** R2 done: masked input sent. s_u^SK and b_u are gone; only what R4 needs remains. */
export interface MaskedState {
  readonly kind: 'masked';
  readonly ctx: ClientContext;
  readonly sessionId: Uint8Array;
  readonly holders: HolderTable;
  readonly shareKeys: Uint8Array;
  readonly ownSkShare: Uint8Array;
  readonly ownBShare: Uint8Array;
  /** U2 as this client saw it: neighbours whose shares reached it, increasing. */
  readonly u2: readonly number[];
  /** Ciphertexts received in R2, one slot per holder (senders in `u2`); decrypted only in R4. */
  readonly ciphertexts: Uint8Array;
  /** Malicious mode: the U3 this client signed in R3 (undefined before R3). */
  readonly signedU3: readonly number[] | undefined;
}

export interface CompletedState {
  readonly kind: 'completed';
  readonly ctx: ClientContext;
}

export interface AbortedState {
  readonly kind: 'aborted';
  readonly ctx: ClientContext;
  readonly code: string;
  readonly message: string;
  readonly round: number;
}

export type ClientState = AdvertisedState | SharedState | MaskedState | CompletedState | AbortedState;

/** The result of one client transition. */
export interface ClientStep {
  readonly state: ClientState;
  readonly out: readonly ClientMessage[];
  /** Secrets dropped by this transition: the caller should zero them. */
  readonly consumed: readonly Uint8Array[];
}

/** Every secret a state still holds (for wiping on abort). */
export function secretsOf(s: ClientState): Uint8Array[] {
  switch (s.kind) {
    case 'advertised': return [s.cSk, s.sSk];
    case 'shared': return [s.shareKeys, s.sSk, s.bU, s.ownSkShare, s.ownBShare];
    case 'masked': return [s.shareKeys, s.ownSkShare, s.ownBShare, s.ciphertexts];
    default: return [];
  }
}
