import { expect } from 'chai';
import { CodecError } from '../../src/errors.js';
import {
  abortText, decodeClientMessage, decodeServerMessage, encodeClientMessage, encodeServerMessage, maxMessageBytes,
} from '../../src/secagg/codec.js';
import { LABELS, type SessionConfig } from '../../src/secagg/config.js';
import { GRAPH_INFO } from '../../src/secagg/graph.js';
import { SHARE_BYTES, SHARE_CIPHERTEXT_BYTES } from '../../src/secagg/keys.js';
import type { ClientMessage, ServerMessage } from '../../src/secagg/messages.js';

const b = (n: number, v = 1) => new Uint8Array(n).fill(v);
const cfg = (n: number, graph: SessionConfig['graph'] = { kind: 'complete' }): SessionConfig =>
  ({ nonce: b(32), clientIds: Array.from({ length: n }, (_, i) => i + 1), threshold: 3, bits: 13, dim: 7, threat: 'malicious', graph });

function codeOf(f: () => unknown): string | undefined {
  try { f(); return undefined; } catch (err) { if (err instanceof CodecError) return err.code; throw err; }
}

describe('secagg codec: per-type maximum sizes (spec §6.4)', () => {
  const c = cfg(6, { kind: 'harary', degree: 4 });
  const k = 4, n = 6;
  const ids = (m: number) => Array.from({ length: m }, (_, i) => i + 1);
  // The largest message of each type an honest party sends in this session.
  const largestClient: ClientMessage[] = [
    { type: 'advertise', configHash: b(32), id: 1, cPk: b(32), sPk: b(32), signature: b(64) },
    { type: 'shares', sessionId: b(32), id: 1, shares: ids(k).map((to) => ({ to, ciphertext: b(SHARE_CIPHERTEXT_BYTES) })) },
    { type: 'masked-input', sessionId: b(32), id: 1, masked: b(Math.ceil((13 * 7) / 8), 0) },
    { type: 'consistency', sessionId: b(32), id: 1, signature: b(64) },
    { type: 'unmask', sessionId: b(32), id: 1, selfShares: ids(3).map((of) => ({ of, share: b(SHARE_BYTES) })), keyShares: ids(k + 1 - 3).map((of) => ({ of, share: b(SHARE_BYTES) })) },
    { type: 'abort', id: 1, code: 'X'.repeat(64) },
  ];
  const largestServer: ServerMessage[] = [
    { type: 'key-list', configHash: b(32), keys: ids(n).map((id) => ({ id, cPk: b(32), sPk: b(32), signature: b(64) })) },
    { type: 'share-routing', sessionId: b(32), shares: ids(k).map((from) => ({ from, ciphertext: b(SHARE_CIPHERTEXT_BYTES) })) },
    { type: 'consistency-request', sessionId: b(32), survivors: ids(n) },
    { type: 'unmask-request', sessionId: b(32), survivors: ids(4), dropped: [5, 6], signatures: ids(n).map((id) => ({ id, signature: b(64) })) },
    { type: 'abort', code: 'X'.repeat(64), message: 'y'.repeat(64) },
  ];
  const typeName = (m: ClientMessage | ServerMessage, side: 'client' | 'server') => (m.type === 'abort' ? `${side}-abort` : m.type) as Parameters<typeof maxMessageBytes>[0];

  it('the limit of each type is exactly the size of its largest honest message', () => {
    for (const m of largestClient) expect(encodeClientMessage(m).length, m.type).to.equal(maxMessageBytes(typeName(m, 'client'), c));
    for (const m of largestServer) expect(encodeServerMessage(m).length, m.type).to.equal(maxMessageBytes(typeName(m, 'server'), c));
    expect(maxMessageBytes('shares', c)).to.equal(42 + k * (4 + SHARE_CIPHERTEXT_BYTES));
    expect(maxMessageBytes('key-list', c)).to.equal(38 + 133 * n);
    expect(maxMessageBytes('unmask-request', c)).to.equal(46 + 72 * n);
    expect(maxMessageBytes('shares', cfg(6))).to.equal(42 + 5 * (4 + SHARE_CIPHERTEXT_BYTES));
  });

  it('those messages decode with the configuration; one more item is refused before parsing, and decodes without it', () => {
    for (const m of largestClient) expect(decodeClientMessage(encodeClientMessage(m), c)).to.deep.equal(m);
    for (const m of largestServer) expect(decodeServerMessage(encodeServerMessage(m), c)).to.deep.equal(m);
    const bigShares: ClientMessage = { type: 'shares', sessionId: b(32), id: 1, shares: ids(k + 1).map((to) => ({ to, ciphertext: b(SHARE_CIPHERTEXT_BYTES) })) };
    expect(codeOf(() => decodeClientMessage(encodeClientMessage(bigShares), c))).to.equal('SECAGG_ERR_BAD_MESSAGE');
    expect(codeOf(() => decodeClientMessage(encodeClientMessage(bigShares)))).to.equal(undefined);
    const bigList: ServerMessage = { type: 'consistency-request', sessionId: b(32), survivors: ids(n + 1) };
    expect(codeOf(() => decodeServerMessage(encodeServerMessage(bigList), c))).to.equal('SECAGG_ERR_BAD_MESSAGE');
    // A huge declared size is refused on the total length, whatever the fields claim.
    const huge = new Uint8Array(maxMessageBytes('masked-input', c) + 1);
    huge[0] = 1; huge[1] = 0x03;
    expect(codeOf(() => decodeClientMessage(huge, c))).to.match(/SECAGG_ERR_BAD_MESSAGE/);
  });

  it('abort texts longer than 64 bytes are refused with or without the configuration', () => {
    expect(codeOf(() => decodeClientMessage(encodeClientMessage({ type: 'abort', id: 1, code: 'X'.repeat(65) })))).to.equal('SECAGG_ERR_BAD_MESSAGE');
    expect(codeOf(() => decodeServerMessage(encodeServerMessage({ type: 'abort', code: 'C', message: 'y'.repeat(65) })))).to.equal('SECAGG_ERR_BAD_MESSAGE');
  });

  it('the server abort text is `round <r>` or `round <r> peer <id>` (spec §5.7)', () => {
    expect(abortText(2)).to.equal('round 2');
    expect(abortText(4, 4294967295)).to.equal('round 4 peer 4294967295');
    expect(Buffer.from(encodeServerMessage({ type: 'abort', code: 'SECAGG_ERR_RECONSTRUCTION_FAILED', message: abortText(4, 2) })).toString('hex'))
      .to.equal('011f00000020' + Buffer.from('SECAGG_ERR_RECONSTRUCTION_FAILED').toString('hex') + '0000000e' + Buffer.from('round 4 peer 2').toString('hex'));
  });
});

describe('secagg: domain-separation labels (spec §3.1)', () => {
  it('no label is a prefix of another', () => {
    const all = [...Object.values(LABELS).map((l) => new TextDecoder().decode(l)), GRAPH_INFO, 'tally/drbg/v1'];
    expect(new Set(all).size).to.equal(all.length);
    for (const a of all) for (const x of all) if (a !== x) expect(x.startsWith(a), `${a} is a prefix of ${x}`).to.equal(false);
    expect(new TextDecoder().decode(LABELS.share)).to.equal('tally/secagg-v1/share-aad');
  });
});
