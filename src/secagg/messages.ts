/**
 * The messages of secagg-v1 (spec §5) as TypeScript values. `codec.ts` gives
 * their canonical binary encoding, which the vectors record in hex.
 */
import type { AdvertisedKeys } from './config.js';

/** R0 client → server: fresh X25519 keys (Bonawitz Fig. 4, round 0). */
export interface AdvertiseKeysMessage extends AdvertisedKeys {
  readonly type: 'advertise';
  readonly configHash: Uint8Array;
}

/** R1 client → server: encrypted Shamir shares of s_u^SK and b_u, one per neighbour. */
export interface ShareKeysMessage {
  readonly type: 'shares';
  readonly sessionId: Uint8Array;
  readonly id: number;
  readonly shares: readonly { readonly to: number; readonly ciphertext: Uint8Array }[];
}

/** R2 client → server: the masked input y_u, bit-packed (⌈b·m/8⌉ bytes). */
export interface MaskedInputMessage {
  readonly type: 'masked-input';
  readonly sessionId: Uint8Array;
  readonly id: number;
  readonly masked: Uint8Array;
}

/** R3 client → server (malicious mode): signature over (sessionId, U3). */
export interface ConsistencyMessage {
  readonly type: 'consistency';
  readonly sessionId: Uint8Array;
  readonly id: number;
  readonly signature: Uint8Array;
}

/** R4 client → server: b-shares of survivors and s^SK-shares of dropped clients, never both for one peer. */
export interface UnmaskMessage {
  readonly type: 'unmask';
  readonly sessionId: Uint8Array;
  readonly id: number;
  readonly selfShares: readonly { readonly of: number; readonly share: Uint8Array }[];
  readonly keyShares: readonly { readonly of: number; readonly share: Uint8Array }[];
}

/** Client → server: this client aborted the session with `code`. */
export interface ClientAbortMessage {
  readonly type: 'abort';
  readonly id: number;
  readonly code: string;
}

export type ClientMessage = AdvertiseKeysMessage | ShareKeysMessage | MaskedInputMessage | ConsistencyMessage | UnmaskMessage | ClientAbortMessage;

/** R1 request, server → every client in U1: all advertised keys. */
export interface KeyListMessage {
  readonly type: 'key-list';
  readonly configHash: Uint8Array;
  readonly keys: readonly AdvertisedKeys[];
}

/** R2 request, server → client v: the ciphertexts addressed to v, from every u ∈ U2 ∩ N(v). */
export interface ShareRoutingMessage {
  readonly type: 'share-routing';
  readonly sessionId: Uint8Array;
  readonly shares: readonly { readonly from: number; readonly ciphertext: Uint8Array }[];
}

/** R3 request (malicious mode), server → every client in U3: the set U3. */
export interface ConsistencyRequestMessage {
  readonly type: 'consistency-request';
  readonly sessionId: Uint8Array;
  readonly survivors: readonly number[];
}

/**
 * R4 request, server → every client in U3 (semi-honest) or U4 (malicious):
 * which neighbours survived (reveal b-shares) and which dropped (reveal
 * s^SK-shares), plus in malicious mode the U4 signatures on U3.
 */
export interface UnmaskRequestMessage {
  readonly type: 'unmask-request';
  readonly sessionId: Uint8Array;
  readonly survivors: readonly number[];
  readonly dropped: readonly number[];
  readonly signatures: readonly { readonly id: number; readonly signature: Uint8Array }[];
}

/** Server → client: the session is aborted with `code`; the client must forget its keys. */
export interface ServerAbortMessage {
  readonly type: 'abort';
  readonly code: string;
  readonly message: string;
}

export type ServerMessage = KeyListMessage | ShareRoutingMessage | ConsistencyRequestMessage | UnmaskRequestMessage | ServerAbortMessage;

/** A server message addressed to one client. */
export interface Outgoing {
  readonly to: number;
  readonly message: ServerMessage;
}
