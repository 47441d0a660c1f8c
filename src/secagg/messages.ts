/**
 * The messages of secagg-v1 (spec §5) as TypeScript values. `codec.ts` gives
 * their canonical binary encoding, which the vectors record in hex.
 */
import { CodecError } from '../errors.js';
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

/**
 * Shape checks for messages that did not come through the codec (a caller of
 * the library API, a test, a transport that decodes on its own): every field
 * has the type and length the codec would produce. The codec's decoder
 * yields only well-shaped messages, so a message off the wire passes; a
 * hand-built one that does not is refused as `SECAGG_ERR_BAD_MESSAGE` before
 * any round logic reads it. Contents (known ids, session binding, share
 * values) are checked by the rounds themselves.
 */
type Check = (v: unknown) => boolean;
const u32: Check = (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;
const bytes = (n?: number): Check => (v) => v instanceof Uint8Array && (n === undefined || v.length === n);
const str: Check = (v) => typeof v === 'string';
const list = (item: Check): Check => (v) => Array.isArray(v) && v.every(item);
const record = (fields: Record<string, Check>, optional: Record<string, Check> = {}): Check => {
  // Listed once here, not per call: a share list runs this check once per neighbour.
  const required = Object.entries(fields), maybe = Object.entries(optional);
  return (v) => {
    if (typeof v !== 'object' || v === null) return false;
    const o = v as Record<string, unknown>;
    for (let i = 0; i < required.length; i++) if (!required[i]![1](o[required[i]![0]])) return false;
    for (let i = 0; i < maybe.length; i++) {
      const x = o[maybe[i]![0]];
      if (x !== undefined && !maybe[i]![1](x)) return false;
    }
    return true;
  };
};
const KEY = bytes(32), SIG = bytes(64), SID = bytes(32);
const share = (who: 'of' | 'from' | 'to', len?: number) => record({ [who]: u32, [who === 'of' ? 'share' : 'ciphertext']: bytes(len) });

const CLIENT_SHAPES: Record<ClientMessage['type'], Check> = {
  advertise: record({ configHash: SID, id: u32, cPk: KEY, sPk: KEY }, { signature: SIG }),
  shares: record({ sessionId: SID, id: u32, shares: list(share('to')) }),
  'masked-input': record({ sessionId: SID, id: u32, masked: bytes() }),
  consistency: record({ sessionId: SID, id: u32, signature: SIG }),
  unmask: record({ sessionId: SID, id: u32, selfShares: list(share('of')), keyShares: list(share('of')) }),
  abort: record({ id: u32, code: str }),
};
const SERVER_SHAPES: Record<ServerMessage['type'], Check> = {
  'key-list': record({ configHash: SID, keys: list(record({ id: u32, cPk: KEY, sPk: KEY }, { signature: SIG })) }),
  'share-routing': record({ sessionId: SID, shares: list(share('from')) }),
  'consistency-request': record({ sessionId: SID, survivors: list(u32) }),
  'unmask-request': record({ sessionId: SID, survivors: list(u32), dropped: list(u32), signatures: list(record({ id: u32, signature: SIG })) }),
  abort: record({ code: str, message: str }),
};

function shapeOf(m: unknown, shapes: Record<string, Check>, side: string): void {
  const type = (m as { type?: unknown } | null)?.type;
  const check = typeof type === 'string' && Object.hasOwn(shapes, type) ? shapes[type]! : undefined;
  if (check === undefined) throw new CodecError('SECAGG_ERR_BAD_MESSAGE', `not a ${side} message: type ${JSON.stringify(String(type))}`);
  if (!check(m)) throw new CodecError('SECAGG_ERR_BAD_MESSAGE', `malformed '${type}' message: a field has the wrong type or length`);
}

/** @throws CodecError `SECAGG_ERR_BAD_MESSAGE` unless `m` has the shape of a client message. */
export function checkClientMessage(m: unknown): asserts m is ClientMessage { shapeOf(m, CLIENT_SHAPES, 'client'); }
/** @throws CodecError `SECAGG_ERR_BAD_MESSAGE` unless `m` has the shape of a server message. */
export function checkServerMessage(m: unknown): asserts m is ServerMessage { shapeOf(m, SERVER_SHAPES, 'server'); }
