import { expect } from 'chai';
import { CodecError } from '../../src/errors.js';
import { decodeClientMessage, decodeServerMessage, encodeClientMessage, encodeServerMessage } from '../../src/secagg/codec.js';
import type { ClientMessage, ServerMessage } from '../../src/secagg/messages.js';
import { transcriptOf } from './_harness.js';

/** Every message of a malicious-mode session with one dropout, in order. */
function transcript(): { client: ClientMessage[]; server: ServerMessage[] } {
  // Client 5 falls silent after sharing its keys.
  const { client, server } = transcriptOf({ n: 5, threat: 'malicious', silentFrom: new Map([[5, 2]]) });
  client.push({ type: 'abort', id: 3, code: 'SECAGG_ERR_BAD_SHARE' });
  server.push({ type: 'abort', code: 'SECAGG_ERR_BELOW_THRESHOLD', message: 'only 2 clients remain — fewer than t' });
  return { client, server };
}

const normalize = (m: unknown) => JSON.parse(JSON.stringify(m, (_, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)));

describe('secagg/codec', () => {
  const { client, server } = transcript();

  it('round-trips every message type of a session', () => {
    expect(new Set(client.map((m) => m.type))).to.deep.equal(new Set(['advertise', 'shares', 'masked-input', 'consistency', 'unmask', 'abort']));
    expect(new Set(server.map((m) => m.type))).to.deep.equal(new Set(['key-list', 'share-routing', 'consistency-request', 'unmask-request', 'abort']));
    for (const m of client) expect(normalize(decodeClientMessage(encodeClientMessage(m)))).to.deep.equal(normalize(m));
    for (const m of server) expect(normalize(decodeServerMessage(encodeServerMessage(m)))).to.deep.equal(normalize(m));
  });

  it('rejects every truncation and any trailing byte with a CodecError', () => {
    for (const [enc, dec] of [[encodeClientMessage, decodeClientMessage], [encodeServerMessage, decodeServerMessage]] as const) {
      for (const m of (enc === encodeClientMessage ? client : server) as never[]) {
        const bytes = (enc as (m: never) => Uint8Array)(m);
        for (const cut of [0, 1, 2, bytes.length >> 1, bytes.length - 1]) {
          expect(() => (dec as (b: Uint8Array) => unknown)(bytes.subarray(0, cut)), `cut ${cut}`).to.throw(CodecError);
        }
        expect(() => (dec as (b: Uint8Array) => unknown)(Uint8Array.of(...bytes, 0))).to.throw(CodecError, /trailing/);
      }
    }
  });

  it('rejects an unknown version or type, and counts larger than the message', () => {
    const adv = encodeClientMessage(client[0]!);
    expect(() => decodeClientMessage(Uint8Array.of(2, ...adv.subarray(1)))).to.throw(CodecError, /version/);
    expect(() => decodeClientMessage(Uint8Array.of(1, 0x7e))).to.throw(CodecError, /unknown client message type/);
    expect(() => decodeServerMessage(adv)).to.throw(CodecError, /unknown server message type/);
    // A share list claiming 2^32−1 entries is refused before any allocation.
    const shares = encodeClientMessage(client.find((m) => m.type === 'shares')!);
    const forged = shares.slice();
    new DataView(forged.buffer).setUint32(2 + 32 + 4, 0xffffffff);
    expect(() => decodeClientMessage(forged)).to.throw(CodecError, /truncated/);
    // A signature flag other than 0 or 1.
    const flagged = adv.slice();
    flagged[2 + 32 + 4 + 64] = 2;
    expect(() => decodeClientMessage(flagged)).to.throw(CodecError, /flag/);
  });

  it('rejects an abort code that is not UTF-8', () => {
    const bytes = encodeServerMessage({ type: 'abort', code: 'AB', message: 'x' });
    bytes[2 + 4] = 0xff;
    expect(() => decodeServerMessage(bytes)).to.throw(CodecError, /UTF-8/);
  });

  it('encodes the masked input as ⌈b·m/8⌉ bytes plus a 42-byte header', () => {
    const mi = client.find((m) => m.type === 'masked-input')!;
    expect(encodeClientMessage(mi).length).to.equal(Math.ceil((16 * 10) / 8) + 42);
  });
});
