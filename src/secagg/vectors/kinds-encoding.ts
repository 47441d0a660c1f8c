/**
 * Vector kinds of the encodings every other kind relies on: `drbg` (DRBG-v1,
 * the deterministic RNG of the vectors; spec §3.10) and `codec` (the binary
 * encoding of every message type; spec §6).
 */
import { ctr } from '@noble/ciphers/aes.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { DeterministicRng } from '../../crypto/rng.js';
import { concatBytes } from '../../crypto/_validate.js';
import type { CryptoProvider } from '../../crypto/types.js';
import {
  abortText, decodeClientMessage, decodeServerMessage, encodeClientMessage, encodeServerMessage, MAX_ABORT_TEXT_BYTES, MAX_CODE_BYTES, maxMessageBytes,
} from '../codec.js';
import type { SessionConfig } from '../config.js';
import { SHARE_BYTES } from '../keys.js';
import type {
  ClientMessage, ConsistencyRequestMessage, KeyListMessage, MaskedInputMessage, ServerMessage, ShareKeysMessage, ShareRoutingMessage, UnmaskMessage,
  UnmaskRequestMessage,
} from '../messages.js';
import { bytes, configFromJson, configToJson, expectEqual, expectError, hex, rngOf, type ConfigJson, type TestCase } from './_common.js';
import type { VectorKind } from './kind.js';
import { setupScenario } from './kinds-sessions.js';
import { runSession } from './session.js';

const enc = new TextEncoder();

/** DRBG-v1 computed from its definition with @noble (independent of rng.ts). */
function drbgReference(seed: Uint8Array, n: number): Uint8Array {
  const key = sha256(concatBytes(enc.encode('tally/drbg/v1'), seed));
  return ctr(key, new Uint8Array(16)).encrypt(new Uint8Array(n));
}

export const drbgKind: VectorKind = {
  kind: 'drbg',
  description: 'DRBG-v1 (spec §3.10), the deterministic RNG every vector draws from: the AES-256-CTR keystream under key = SHA-256("tally/drbg/v1" ‖ seed) with an all-zero initial counter block; a text seed is its UTF-8 bytes. Successive reads of the listed sizes continue one keystream; `output` is their concatenation.',
  generate() {
    const cases: [string, string | Uint8Array, number[]][] = [
      ['empty seed, one read of 64 bytes', '', [64]],
      ['a vector seed string, reads of 1, 15, 16 and 33 bytes', 'tally/vectors/secagg-v1/session-complete/1/client/1', [1, 15, 16, 33]],
      ['non-ASCII seed string (UTF-8)', 'sécagg ∑', [32, 32]],
      ['32-byte binary seed', rngOf('drbg', 4, 'seed').bytes(32), [48, 48, 48]],
    ];
    return cases.map(([comment, seed, reads], i) => {
      const rng = new DeterministicRng(seed);
      return {
        tcId: i + 1, comment, result: 'valid' as const,
        ...(typeof seed === 'string' ? { seed } : { seedHex: hex(seed) }), reads, output: hex(concatBytes(...reads.map((n) => rng.bytes(n)))),
      };
    });
  },
  check(tc) {
    const seed = typeof tc.seed === 'string' ? tc.seed : bytes(tc.seedHex);
    const reads = tc.reads as number[];
    const rng = new DeterministicRng(seed);
    expectEqual('output', concatBytes(...reads.map((n) => rng.bytes(n))), tc.output);
    const total = reads.reduce((a, b) => a + b, 0);
    expectEqual('output (reference from the definition)', drbgReference(typeof seed === 'string' ? enc.encode(seed) : seed, total), tc.output);
  },
};

/** Message fields that hold bytes (hex in JSON). */
const BYTE_FIELDS = new Set(['configHash', 'cPk', 'sPk', 'signature', 'sessionId', 'ciphertext', 'masked', 'share']);

function toJson(v: unknown): unknown {
  if (v instanceof Uint8Array) return hex(v);
  if (Array.isArray(v)) return v.map(toJson);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]));
  return v;
}

function fromJson(v: unknown, field = ''): unknown {
  if (BYTE_FIELDS.has(field) && typeof v === 'string') return bytes(v, field);
  if (Array.isArray(v)) return v.map((x) => fromJson(x));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromJson(x, k)]));
  return v;
}

const decode = (direction: unknown, b: Uint8Array, config?: SessionConfig): ClientMessage | ServerMessage =>
  (direction === 'client' ? decodeClientMessage(b, config) : decodeServerMessage(b, config));
const TYPE_OF: Record<string, Parameters<typeof maxMessageBytes>[0]> = {
  advertise: 'advertise', shares: 'shares', 'masked-input': 'masked-input', consistency: 'consistency', unmask: 'unmask', 'client-abort': 'client-abort',
  'key-list': 'key-list', 'share-routing': 'share-routing', 'consistency-request': 'consistency-request', 'unmask-request': 'unmask-request', 'server-abort': 'server-abort',
};

export const codecKind: VectorKind = {
  kind: 'codec',
  description: 'Binary message encoding (spec §6): u8(version = 1) ‖ u8(type) ‖ fields, integers big-endian, lists u32(count) ‖ items. Valid cases give every message type (direction client: sent by a client; server: sent by the server) as JSON (byte fields in hex) and its encoding; both directions must match. Invalid cases are encodings the decoder must refuse with SECAGG_ERR_BAD_MESSAGE: every message type one byte short and one byte long, every count one larger than its items, bad version, type or flag, abort texts over 64 bytes, and (cases with a `config`) well-formed messages longer than the maximum for their type in that session (spec §6.4), which decode without the configuration and are refused with it.',
  generate(p: CryptoProvider) {
    const s = { comment: '', clientIds: [1, 2, 3, 4], threshold: 3, bits: 16, dim: 4, threat: 'malicious' as const, graph: { kind: 'complete' as const } };
    const { config, seeds, inputs } = setupScenario(p, 'codec', 0, s);
    const session = runSession({ config, inputs, identitySeeds: seeds!, lastRound: new Map([[4, 1]]), rngOf: (id) => rngOf('codec', 0, `client/${id}`) }, p);
    const seen = new Set<string>();
    const valid: { direction: 'client' | 'server'; message: ClientMessage | ServerMessage }[] = [];
    for (const e of session.transcript) {
      const message = e.from === 'client' ? decodeClientMessage(e.message) : decodeServerMessage(e.message);
      if (seen.has(`${e.from}/${message.type}`)) continue;
      seen.add(`${e.from}/${message.type}`);
      valid.push({ direction: e.from, message });
      if (message.type === 'key-list') {
        const unsigned: KeyListMessage = { ...message, keys: message.keys.map((k) => ({ id: k.id, cPk: k.cPk, sPk: k.sPk })) };
        valid.push({ direction: 'server', message: unsigned });
      }
    }
    valid.push({ direction: 'client', message: { type: 'abort', id: 3, code: 'SECAGG_ERR_BOTH_SHARES_REQUESTED' } });
    valid.push({ direction: 'server', message: { type: 'abort', code: 'SECAGG_ERR_BELOW_THRESHOLD', message: abortText(1) } });
    valid.push({ direction: 'server', message: { type: 'abort', code: 'SECAGG_ERR_RECONSTRUCTION_FAILED', message: abortText(4, 4294967295) } });
    const tests: TestCase[] = valid.map((v, i) => {
      const encoded = v.direction === 'client' ? encodeClientMessage(v.message as ClientMessage) : encodeServerMessage(v.message as ServerMessage);
      const signed = v.message.type === 'key-list' && v.message.keys[0]?.signature === undefined ? ' (unsigned keys)' : '';
      return { tcId: i + 1, comment: `${v.direction} message '${v.message.type}'${signed}`, result: 'valid', direction: v.direction, message: toJson(v.message), encoded: hex(encoded) };
    });
    const enc0 = (t: string) => bytes(tests.find((x) => x.comment === t)!.encoded);
    const advert = enc0("client message 'advertise'");
    const shares = enc0("client message 'shares'");
    const abort = enc0("server message 'abort'");
    const clientAbort = enc0("client message 'abort'");
    const withByte = (b: Uint8Array, i: number, v: number) => { const c = b.slice(); c[i] = v; return c; };
    const bad: [string, 'client' | 'server', Uint8Array][] = [
      ['advertise truncated by one byte', 'client', advert.slice(0, -1)],
      ['advertise with a trailing byte', 'client', concatBytes(advert, Uint8Array.of(0))],
      ['wire version 2', 'client', withByte(advert, 0, 2)],
      ['unknown client message type 0x06', 'client', withByte(advert, 1, 6)],
      ['a server message type sent by a client', 'client', withByte(advert, 1, 0x11)],
      ['signature flag 2', 'client', withByte(advert, 2 + 32 + 4 + 64, 2)],
      ['share count larger than the message', 'client', withByte(shares, 2 + 32 + 4 + 2, 0xff)],
      ['server abort message truncated inside the text', 'server', abort.slice(0, -5)],
      ['empty message', 'server', new Uint8Array(0)],
      ['client abort code that is not UTF-8', 'client', withByte(clientAbort, clientAbort.length - 1, 0xff)],
    ];
    // Every message type, one byte short and one byte long.
    for (const v of tests.filter((x) => x.result === 'valid')) {
      const b = bytes(v.encoded);
      bad.push([`${v.comment}, truncated by one byte`, v.direction as 'client' | 'server', b.slice(0, -1)]);
      bad.push([`${v.comment}, with a trailing byte`, v.direction as 'client' | 'server', concatBytes(b, Uint8Array.of(0))]);
    }
    // Every count, one more item than the bytes that follow can hold.
    const countAt = (t: string, offset: number): [string, 'client' | 'server', Uint8Array] => {
      const b = enc0(t).slice();
      const dv = new DataView(b.buffer);
      dv.setUint32(offset, dv.getUint32(offset) + 1);
      return [`${t}: count at byte ${offset} one larger than the items present`, t.startsWith('client') ? 'client' : 'server', b];
    };
    const req = decodeServerMessage(enc0("server message 'unmask-request'")) as UnmaskRequestMessage;
    const um = decodeClientMessage(enc0("client message 'unmask'")) as UnmaskMessage;
    bad.push(
      countAt("client message 'shares'", 2 + 32 + 4),
      countAt("client message 'unmask'", 2 + 32 + 4),
      countAt("client message 'unmask'", 2 + 32 + 4 + 4 + (4 + SHARE_BYTES) * um.selfShares.length),
      countAt("client message 'abort'", 2 + 4),
      countAt("server message 'key-list'", 2 + 32),
      countAt("server message 'share-routing'", 2 + 32),
      countAt("server message 'consistency-request'", 2 + 32),
      countAt("server message 'unmask-request'", 2 + 32),
      countAt("server message 'unmask-request'", 2 + 32 + 4 + 4 * req.survivors.length),
      countAt("server message 'unmask-request'", 2 + 32 + 4 + 4 * req.survivors.length + 4 + 4 * req.dropped.length),
      countAt("server message 'abort'", 2),
      ['client abort code of 65 bytes (at most 64)', 'client', encodeClientMessage({ type: 'abort', id: 3, code: 'X'.repeat(MAX_CODE_BYTES + 1) })],
      ['server abort text of 65 bytes (at most 64)', 'server', encodeServerMessage({ type: 'abort', code: 'SECAGG_ERR_ABORTED', message: 'x'.repeat(MAX_ABORT_TEXT_BYTES + 1) })],
    );
    for (const [comment, direction, b] of bad) {
      tests.push({ tcId: tests.length + 1, comment, result: 'invalid', direction, encoded: hex(b), error: 'SECAGG_ERR_BAD_MESSAGE' });
    }
    // Well-formed but longer than the session allows (spec §6.4): refused only when decoded with the configuration.
    const cfg = configToJson(config);
    const grow = (t: string, f: (m: ClientMessage | ServerMessage) => ClientMessage | ServerMessage): [string, 'client' | 'server', Uint8Array] => {
      const direction = t.startsWith('client') ? 'client' : 'server';
      const m = f(decode(direction, enc0(t)));
      return [t, direction, direction === 'client' ? encodeClientMessage(m as ClientMessage) : encodeServerMessage(m as ServerMessage)];
    };
    const big: [string, [string, 'client' | 'server', Uint8Array]][] = [
      ['shares with k + 1 entries', grow("client message 'shares'", (m) => { const x = m as ShareKeysMessage; return { ...x, shares: [...x.shares, x.shares[0]!] }; })],
      ['masked input one byte longer than ceil(b·m/8)', grow("client message 'masked-input'", (m) => { const x = m as MaskedInputMessage; return { ...x, masked: concatBytes(x.masked, Uint8Array.of(0)) }; })],
      ['unmask with more than k + 1 shares', grow("client message 'unmask'", (m) => { const x = m as UnmaskMessage; return { ...x, keyShares: [...x.keyShares, x.selfShares[0]!, x.selfShares[0]!] }; })],
      ['key list with n + 1 entries', grow("server message 'key-list'", (m) => { const x = m as KeyListMessage; return { ...x, keys: [...x.keys, x.keys[0]!] }; })],
      ['share routing with k + 1 entries', grow("server message 'share-routing'", (m) => { const x = m as ShareRoutingMessage; return { ...x, shares: [...x.shares, x.shares[0]!] }; })],
      ['consistency request with n + 1 ids', grow("server message 'consistency-request'", (m) => { const x = m as ConsistencyRequestMessage; return { ...x, survivors: [...x.survivors, 5, 6].slice(0, config.clientIds.length + 1) }; })],
      ['unmask request with n + 1 signatures', grow("server message 'unmask-request'", (m) => { const x = m as UnmaskRequestMessage; return { ...x, signatures: [...x.signatures, x.signatures[0]!, x.signatures[0]!].slice(0, config.clientIds.length + 1) }; })],
    ];
    for (const [what, [, direction, b]] of big) {
      const size = maxMessageBytes(TYPE_OF[decode(direction, b).type === 'abort' ? `${direction}-abort` : decode(direction, b).type]!, config);
      tests.push({ tcId: tests.length + 1, comment: `${what}: ${b.length} bytes, more than the ${size} this session allows`, result: 'invalid', direction, config: cfg, encoded: hex(b), error: 'SECAGG_ERR_BAD_MESSAGE' });
    }
    return tests;
  },
  check(tc) {
    const b = bytes(tc.encoded);
    if (tc.config !== undefined) {
      // Decodes without the limits, is refused with them.
      decode(tc.direction, b);
      return expectError(tc.error!, () => decode(tc.direction, b, configFromJson(tc.config as ConfigJson)));
    }
    if (tc.result === 'invalid') return expectError(tc.error!, () => decode(tc.direction, b));
    const m = fromJson(tc.message);
    expectEqual('encoded', tc.direction === 'client' ? encodeClientMessage(m as ClientMessage) : encodeServerMessage(m as ServerMessage), b);
    expectEqual('message (decoded)', toJson(decode(tc.direction, b)), tc.message);
  },
};
