/**
 * Canonical binary encoding of secagg-v1 messages (spec §6). Every message is
 * u8(version = 1) ‖ u8(type) ‖ fields; integers are big-endian, byte strings
 * of fixed length are written raw, lists are u32(count) ‖ items. The decoder
 * checks every length before reading and rejects trailing bytes, so a peer
 * can never make it read out of bounds or allocate more than the message
 * holds.
 */
import { CodecError } from '../errors.js';
import { sessionDegree, type SessionConfig } from './config.js';
import type { ClientMessage, ServerMessage } from './messages.js';
import { SHARE_BYTES, SHARE_CIPHERTEXT_BYTES } from './keys.js';

export const WIRE_VERSION = 1;
/** Message type codes (spec §6.1). */
export const TYPE = {
  advertise: 0x01, shares: 0x02, 'masked-input': 0x03, consistency: 0x04, unmask: 0x05, 'client-abort': 0x0f,
  'key-list': 0x11, 'share-routing': 0x12, 'consistency-request': 0x13, 'unmask-request': 0x14, 'server-abort': 0x1f,
} as const;
type TypeName = keyof typeof TYPE;

/** Longest error code in an abort message, in UTF-8 bytes (spec §6.4). */
export const MAX_CODE_BYTES = 64;
/** Longest text of a server abort message, in UTF-8 bytes (spec §6.4). */
export const MAX_ABORT_TEXT_BYTES = 64;

/**
 * The text of a server abort message (spec §5.7): `round <r>`, followed by
 * ` peer <id>` when the abort names a party, in ASCII decimal. The reasons in
 * words stay with the server (its aborted state); on the wire every byte is fixed.
 */
export function abortText(round: number, peer?: number): string {
  return peer === undefined ? `round ${round}` : `round ${round} peer ${peer}`;
}

/**
 * The largest encoding of each message type in a session (spec §6.4), with
 * n clients, degree k (n − 1 for the complete graph), b bits and m entries.
 */
export function maxMessageBytes(type: TypeName, config: Pick<SessionConfig, 'clientIds' | 'graph' | 'bits' | 'dim' | 'aggregator'>): number {
  const n = config.clientIds.length;
  const k = sessionDegree(config);
  switch (type) {
    case 'advertise': return 2 + 32 + 4 + 32 + 32 + 1 + 64;
    case 'shares': return 2 + 32 + 4 + 4 + k * (4 + SHARE_CIPHERTEXT_BYTES);
    // An HE session's masked input is its committed envelope (he-sum-v1 §8.3).
    case 'masked-input': return 2 + 32 + 4 + 4 + (config.aggregator ? config.aggregator.inputBytes : Math.ceil((config.bits * config.dim) / 8));
    case 'consistency': return 2 + 32 + 4 + 64;
    // Self shares for U3 ∩ (N(u) ∪ {u}), key shares for (U2 ∖ U3) ∩ N(u): k + 1 in all.
    case 'unmask': return 2 + 32 + 4 + 4 + 4 + (k + 1) * (4 + SHARE_BYTES);
    case 'client-abort': return 2 + 4 + 4 + MAX_CODE_BYTES;
    case 'key-list': return 2 + 32 + 4 + n * (4 + 32 + 32 + 1 + 64);
    case 'share-routing': return 2 + 32 + 4 + k * (4 + SHARE_CIPHERTEXT_BYTES);
    case 'consistency-request': return 2 + 32 + 4 + 4 * n;
    // Survivors and dropped are disjoint subsets of the roster; one signature per survivor at most.
    case 'unmask-request': return 2 + 32 + 4 + 4 + 4 + 4 * n + n * (4 + 64);
    case 'server-abort': return 2 + 4 + MAX_CODE_BYTES + 4 + MAX_ABORT_TEXT_BYTES;
  }
}

/**
 * Builds one message: small fields (ids, keys, share ciphertexts) are written
 * in place into 4 KiB blocks, large ones (a masked input) are kept by
 * reference, and `finish` copies everything once into the message. A
 * share-routing message of k entries thus costs a few blocks, not 2k
 * four-byte arrays.
 */
class Writer {
  private static readonly BLOCK = 4096;
  /** Fields at least this long are referenced, not copied into a block. */
  private static readonly LARGE = 1024;
  private readonly parts: Uint8Array[] = [];
  private block = new Uint8Array(Writer.BLOCK);
  private view = new DataView(this.block.buffer);
  private used = 0;
  private size = 0;
  private room(n: number): void {
    if (this.used + n <= this.block.length) return;
    this.seal();
    this.block = new Uint8Array(Math.max(Writer.BLOCK, n));
    this.view = new DataView(this.block.buffer);
  }
  private seal(): void {
    if (this.used > 0) this.parts.push(this.block.subarray(0, this.used));
    this.used = 0;
  }
  bytes(b: Uint8Array): this {
    if (b.length >= Writer.LARGE) { this.seal(); this.parts.push(b); } else { this.room(b.length); this.block.set(b, this.used); this.used += b.length; }
    this.size += b.length;
    return this;
  }
  u8(n: number): this { this.room(1); this.block[this.used++] = n; this.size++; return this; }
  u32(n: number): this { this.room(4); this.view.setUint32(this.used, n); this.used += 4; this.size += 4; return this; }
  varBytes(b: Uint8Array): this { return this.u32(b.length).bytes(b); }
  text(s: string): this { return this.varBytes(new TextEncoder().encode(s)); }
  ids(ids: readonly number[]): this { this.u32(ids.length); for (const id of ids) this.u32(id); return this; }
  finish(): Uint8Array {
    this.seal();
    const out = new Uint8Array(this.size);
    let off = 0;
    for (const p of this.parts) { out.set(p, off); off += p.length; }
    return out;
  }
}

class Reader {
  private off = 0;
  private readonly view: DataView;
  constructor(private readonly buf: Uint8Array) { this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength); }
  private need(n: number, what: string): void {
    if (this.buf.length - this.off < n) throw new CodecError('SECAGG_ERR_BAD_MESSAGE', `message truncated: ${what} needs ${n} bytes, ${this.buf.length - this.off} left`);
  }
  u8(what: string): number { this.need(1, what); return this.buf[this.off++]!; }
  u32(what: string): number { this.need(4, what); const v = this.view.getUint32(this.off); this.off += 4; return v; }
  bytes(n: number, what: string): Uint8Array { this.need(n, what); const b = this.buf.slice(this.off, this.off + n); this.off += n; return b; }
  varBytes(what: string): Uint8Array { return this.bytes(this.u32(what), what); }
  /** Like bytes, but a view into the message buffer (no copy). */
  bytesView(n: number, what: string): Uint8Array { this.need(n, what); const b = this.buf.subarray(this.off, this.off + n); this.off += n; return b; }
  /** Like varBytes, but a view into the message buffer (no copy), for large payloads. */
  varView(what: string): Uint8Array {
    const n = this.u32(what);
    this.need(n, what);
    const b = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return b;
  }
  text(what: string, max: number): string {
    const n = this.u32(what);
    if (n > max) throw new CodecError('SECAGG_ERR_BAD_MESSAGE', `${what} is ${n} bytes, more than ${max}`);
    const bytes = this.bytes(n, what);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new CodecError('SECAGG_ERR_BAD_MESSAGE', `${what} is not valid UTF-8`);
    }
  }
  /** A count whose items take at least `itemBytes` each: bounded by what is left. */
  count(itemBytes: number, what: string): number {
    const n = this.u32(what);
    this.need(n * itemBytes, what);
    return n;
  }
  ids(what: string): number[] { const n = this.count(4, what); return Array.from({ length: n }, () => this.u32(what)); }
  end(): void {
    if (this.off !== this.buf.length) throw new CodecError('SECAGG_ERR_BAD_MESSAGE', `${this.buf.length - this.off} trailing bytes after the message`);
  }
}

/** Encodes a client → server message. */
export function encodeClientMessage(m: ClientMessage): Uint8Array {
  const w = new Writer().u8(WIRE_VERSION);
  switch (m.type) {
    case 'advertise':
      w.u8(TYPE.advertise).bytes(m.configHash).u32(m.id).bytes(m.cPk).bytes(m.sPk);
      return (m.signature === undefined ? w.u8(0) : w.u8(1).bytes(m.signature)).finish();
    case 'shares':
      w.u8(TYPE.shares).bytes(m.sessionId).u32(m.id).u32(m.shares.length);
      for (const s of m.shares) w.u32(s.to).bytes(s.ciphertext);
      return w.finish();
    case 'masked-input':
      return w.u8(TYPE['masked-input']).bytes(m.sessionId).u32(m.id).varBytes(m.masked).finish();
    case 'consistency':
      return w.u8(TYPE.consistency).bytes(m.sessionId).u32(m.id).bytes(m.signature).finish();
    case 'unmask':
      w.u8(TYPE.unmask).bytes(m.sessionId).u32(m.id).u32(m.selfShares.length);
      for (const s of m.selfShares) w.u32(s.of).bytes(s.share);
      w.u32(m.keyShares.length);
      for (const s of m.keyShares) w.u32(s.of).bytes(s.share);
      return w.finish();
    case 'abort':
      return w.u8(TYPE['client-abort']).u32(m.id).text(m.code).finish();
  }
}

/** Encodes a server → client message. */
export function encodeServerMessage(m: ServerMessage): Uint8Array {
  const w = new Writer().u8(WIRE_VERSION);
  switch (m.type) {
    case 'key-list':
      w.u8(TYPE['key-list']).bytes(m.configHash).u32(m.keys.length);
      for (const k of m.keys) {
        w.u32(k.id).bytes(k.cPk).bytes(k.sPk);
        if (k.signature === undefined) w.u8(0); else w.u8(1).bytes(k.signature);
      }
      return w.finish();
    case 'share-routing':
      w.u8(TYPE['share-routing']).bytes(m.sessionId).u32(m.shares.length);
      for (const s of m.shares) w.u32(s.from).bytes(s.ciphertext);
      return w.finish();
    case 'consistency-request':
      return w.u8(TYPE['consistency-request']).bytes(m.sessionId).ids(m.survivors).finish();
    case 'unmask-request':
      w.u8(TYPE['unmask-request']).bytes(m.sessionId).ids(m.survivors).ids(m.dropped).u32(m.signatures.length);
      for (const s of m.signatures) w.u32(s.id).bytes(s.signature);
      return w.finish();
    case 'abort':
      return w.u8(TYPE['server-abort']).text(m.code).text(m.message).finish();
  }
}

function header(r: Reader): number {
  const v = r.u8('version');
  if (v !== WIRE_VERSION) throw new CodecError('SECAGG_ERR_BAD_MESSAGE', `unsupported wire version ${v}, expected ${WIRE_VERSION}`);
  return r.u8('type');
}

const TYPE_NAME = new Map<number, TypeName>(Object.entries(TYPE).map(([name, code]) => [code, name as TypeName]));

/** With a session configuration, refuses a message longer than its type allows before reading any field (spec §6.4). */
function checkSize(buf: Uint8Array, type: number, config: SessionConfig | undefined): void {
  const name = TYPE_NAME.get(type);
  if (config === undefined || name === undefined) return;
  const max = maxMessageBytes(name, config);
  if (buf.length > max) throw new CodecError('SECAGG_ERR_BAD_MESSAGE', `'${name}' message of ${buf.length} bytes, more than the ${max} this session allows`);
}

function optionalSignature(r: Reader): Uint8Array | undefined {
  const flag = r.u8('signature flag');
  if (flag > 1) throw new CodecError('SECAGG_ERR_BAD_MESSAGE', `signature flag must be 0 or 1, got ${flag}`);
  return flag === 1 ? r.bytes(64, 'signature') : undefined;
}

/**
 * Decodes a client → server message. The masked input, the share ciphertexts
 * and the unmasking shares are views into `buf`, not copies (the server keeps
 * n·k of the last two: one small array each would cost more than the bytes
 * themselves), so `buf` must not be changed while the message is in use: the
 * session driver takes ownership of the bytes it receives.
 * @param config the session's configuration: when given, a message longer
 *   than its type's maximum (spec §6.4) is refused before any field is read
 * @throws CodecError `SECAGG_ERR_BAD_MESSAGE` on any malformed or oversized input.
 */
export function decodeClientMessage(buf: Uint8Array, config?: SessionConfig): ClientMessage {
  const r = new Reader(buf);
  const type = header(r);
  if (type >= 0x10) throw new CodecError('SECAGG_ERR_BAD_MESSAGE', `unknown client message type 0x${type.toString(16)}`);
  checkSize(buf, type, config);
  let m: ClientMessage;
  switch (type) {
    case TYPE.advertise: {
      const configHash = r.bytes(32, 'config hash'); const id = r.u32('id');
      const cPk = r.bytes(32, 'cPk'); const sPk = r.bytes(32, 'sPk'); const signature = optionalSignature(r);
      m = { type: 'advertise', configHash, id, cPk, sPk, ...(signature === undefined ? {} : { signature }) };
      break;
    }
    case TYPE.shares: {
      const sessionId = r.bytes(32, 'session id'); const id = r.u32('id');
      const n = r.count(4 + SHARE_CIPHERTEXT_BYTES, 'shares');
      const shares = Array.from({ length: n }, () => ({ to: r.u32('to'), ciphertext: r.bytesView(SHARE_CIPHERTEXT_BYTES, 'ciphertext') }));
      m = { type: 'shares', sessionId, id, shares };
      break;
    }
    case TYPE['masked-input']:
      // The masked input is a view into `buf` (it can be megabytes): callers must not mutate `buf` while using it.
      m = { type: 'masked-input', sessionId: r.bytes(32, 'session id'), id: r.u32('id'), masked: r.varView('masked input') };
      break;
    case TYPE.consistency:
      m = { type: 'consistency', sessionId: r.bytes(32, 'session id'), id: r.u32('id'), signature: r.bytes(64, 'signature') };
      break;
    case TYPE.unmask: {
      const sessionId = r.bytes(32, 'session id'); const id = r.u32('id');
      const list = (what: string) => Array.from({ length: r.count(4 + SHARE_BYTES, what) }, () => ({ of: r.u32(what), share: r.bytesView(SHARE_BYTES, what) }));
      const selfShares = list('self-mask shares');
      m = { type: 'unmask', sessionId, id, selfShares, keyShares: list('key shares') };
      break;
    }
    case TYPE['client-abort']:
      m = { type: 'abort', id: r.u32('id'), code: r.text('code', MAX_CODE_BYTES) };
      break;
    default:
      throw new CodecError('SECAGG_ERR_BAD_MESSAGE', `unknown client message type 0x${type.toString(16)}`);
  }
  r.end();
  return m;
}

/**
 * Decodes a server → client message. The keys of a key list and the routed
 * ciphertexts are views into `buf` (every client reads all n keys: n small
 * copies each would be most of its work in R1), so `buf` must not be changed
 * while the message is in use; the client copies what it keeps.
 * @param config the session's configuration: when given, a message longer
 *   than its type's maximum (spec §6.4) is refused before any field is read
 * @throws CodecError `SECAGG_ERR_BAD_MESSAGE` on any malformed or oversized input.
 */
export function decodeServerMessage(buf: Uint8Array, config?: SessionConfig): ServerMessage {
  const r = new Reader(buf);
  const type = header(r);
  if (type < 0x10) throw new CodecError('SECAGG_ERR_BAD_MESSAGE', `unknown server message type 0x${type.toString(16)}`);
  checkSize(buf, type, config);
  let m: ServerMessage;
  switch (type) {
    case TYPE['key-list']: {
      const configHash = r.bytes(32, 'config hash');
      const keys = Array.from({ length: r.count(4 + 64 + 1, 'keys') }, () => {
        const id = r.u32('id'); const cPk = r.bytesView(32, 'cPk'); const sPk = r.bytesView(32, 'sPk'); const signature = optionalSignature(r);
        return { id, cPk, sPk, ...(signature === undefined ? {} : { signature }) };
      });
      m = { type: 'key-list', configHash, keys };
      break;
    }
    case TYPE['share-routing']: {
      const sessionId = r.bytes(32, 'session id');
      const shares = Array.from({ length: r.count(4 + SHARE_CIPHERTEXT_BYTES, 'shares') }, () => ({ from: r.u32('from'), ciphertext: r.bytesView(SHARE_CIPHERTEXT_BYTES, 'ciphertext') }));
      m = { type: 'share-routing', sessionId, shares };
      break;
    }
    case TYPE['consistency-request']:
      m = { type: 'consistency-request', sessionId: r.bytes(32, 'session id'), survivors: r.ids('survivors') };
      break;
    case TYPE['unmask-request']: {
      const sessionId = r.bytes(32, 'session id'); const survivors = r.ids('survivors'); const dropped = r.ids('dropped');
      const signatures = Array.from({ length: r.count(4 + 64, 'signatures') }, () => ({ id: r.u32('id'), signature: r.bytes(64, 'signature') }));
      m = { type: 'unmask-request', sessionId, survivors, dropped, signatures };
      break;
    }
    case TYPE['server-abort']:
      m = { type: 'abort', code: r.text('code', MAX_CODE_BYTES), message: r.text('message', MAX_ABORT_TEXT_BYTES) };
      break;
    default:
      throw new CodecError('SECAGG_ERR_BAD_MESSAGE', `unknown server message type 0x${type.toString(16)}`);
  }
  r.end();
  return m;
}
