import { expect } from 'chai';
import { handleServerMessage } from '../../../src/secagg/client/index.js';
import type { KeyListMessage } from '../../../src/secagg/messages.js';
import { openShares, SHARE_BYTES, SHARE_CIPHERTEXT_BYTES } from '../../../src/secagg/keys.js';
import { expectAbort, newSession, runUntil, provider } from '../_harness.js';

function keyListFor(threat: 'semi-honest' | 'malicious' = 'semi-honest') {
  const session = newSession({ threat, n: 5 });
  const out = runUntil(session, 'key-list');
  const msg = out[0]!.message as KeyListMessage;
  return { session, msg, client: session.clients.get(1)! };
}

describe('secagg/client R1 ShareKeys', () => {
  it('sends one encrypted share pair to each neighbour in U1, in id order', () => {
    const { msg, client } = keyListFor();
    const step = handleServerMessage(client, msg);
    expect(step.state.kind).to.equal('shared');
    const out = step.out[0]!;
    expect(out.type).to.equal('shares');
    if (out.type !== 'shares') return;
    expect(out.shares.map((s) => s.to)).to.deep.equal([2, 3, 4, 5]);
    for (const s of out.shares) expect(s.ciphertext.length).to.equal(SHARE_CIPHERTEXT_BYTES);
  });

  it('hands c_u^SK back to be wiped and keeps the share key of each neighbour, which opens what the neighbour sealed', () => {
    const { msg, client } = keyListFor();
    if (client.kind !== 'advertised') throw new Error('expected an advertised client');
    const step = handleServerMessage(client, msg);
    expect(step.consumed).to.deep.equal([client.cSk]); // c_u^SK leaves the state: R4 uses the kept keys
    const next = step.state;
    if (next.kind !== 'shared') throw new Error('expected a shared state');
    expect(Object.keys(next)).to.not.include('cSk');
    expect(Array.from(next.holders.ids)).to.deep.equal([1, 2, 3, 4, 5]);
    const out = step.out[0]!;
    if (out.type !== 'shares') throw new Error('expected shares');
    for (const v of [2, 3, 4, 5]) {
      const key = next.holders.at(next.shareKeys, 32, v);
      // The kept key is e_{1,v}: it opens the share this client sealed for v (both directions share the key, spec §3.7).
      const sealed = out.shares.find((x) => x.to === v)!.ciphertext;
      const opened = openShares(provider, key, out.sessionId, 1, v, sealed, 4);
      expect(opened.skShare.length).to.equal(SHARE_BYTES);
      expect(next.holders.at(next.sPks, 32, v)).to.deep.equal(msg.keys.find((k) => k.id === v)!.sPk);
    }
  });

  it('binds the session id to every advertised key', () => {
    const { msg, client } = keyListFor();
    const a = handleServerMessage(client, msg).out[0] as { sessionId: Uint8Array };
    const keys = msg.keys.map((k, i) => (i === 3 ? { ...k, sPk: provider.x25519PublicKey(new Uint8Array(32).fill(9)) } : k));
    const b = handleServerMessage(client, { ...msg, keys }).out[0] as { sessionId: Uint8Array };
    expect(Buffer.from(a.sessionId).equals(Buffer.from(b.sessionId))).to.equal(false);
  });

  const cases: [string, (m: KeyListMessage) => KeyListMessage, string][] = [
    ['a key list for another session', (m) => ({ ...m, configHash: new Uint8Array(32) }), 'SECAGG_ERR_SESSION_MISMATCH'],
    ['an unknown id', (m) => ({ ...m, keys: [...m.keys.slice(0, 4), { ...m.keys[4]!, id: 99 }] }), 'SECAGG_ERR_UNKNOWN_ID'],
    ['a duplicate id', (m) => ({ ...m, keys: [m.keys[0]!, m.keys[1]!, m.keys[1]!, m.keys[2]!] }), 'SECAGG_ERR_DUPLICATE_ID'],
    ['fewer than t clients (|U1| < t)', (m) => ({ ...m, keys: m.keys.slice(0, 2) }), 'SECAGG_ERR_BELOW_THRESHOLD'],
    ['a list without this client', (m) => ({ ...m, keys: m.keys.slice(1) }), 'SECAGG_ERR_SELF_DROPPED'],
    ['this client\'s key replaced', (m) => ({ ...m, keys: [{ ...m.keys[0]!, cPk: m.keys[3]!.sPk.map((x) => x ^ 1) }, ...m.keys.slice(1)] }), 'SECAGG_ERR_KEY_MISMATCH'],
    ['a low-order key', (m) => ({ ...m, keys: m.keys.map((k, i) => (i === 2 ? { ...k, sPk: new Uint8Array(32).fill(0).map((_, j) => (j === 0 ? 1 : 0)) } : k)) }), 'SECAGG_ERR_LOW_ORDER_KEY'],
    ['one key advertised by two clients', (m) => ({ ...m, keys: m.keys.map((k, i) => (i === 2 ? { ...k, sPk: m.keys[1]!.sPk } : k)) }), 'SECAGG_ERR_DUPLICATE_KEY'],
    ['a key of the wrong length', (m) => ({ ...m, keys: m.keys.map((k, i) => (i === 2 ? { ...k, cPk: k.cPk.slice(1) } : k)) }), 'SECAGG_ERR_BAD_MESSAGE'],
  ];
  for (const [what, forge, code] of cases) {
    it(`aborts on ${what} (${code})`, () => {
      const { msg, client } = keyListFor();
      const step = handleServerMessage(client, forge(msg));
      expectAbort(step, code);
      expect(step.consumed.length).to.be.greaterThan(0);
    });
  }

  it('malicious mode: aborts on a missing or forged advertisement signature', () => {
    const { msg, client } = keyListFor('malicious');
    expect(handleServerMessage(client, msg).state.kind).to.equal('shared');
    const unsigned = { ...msg, keys: msg.keys.map((k, i) => (i === 2 ? { id: k.id, cPk: k.cPk, sPk: k.sPk } : k)) };
    expectAbort(handleServerMessage(client, unsigned), 'SECAGG_ERR_BAD_SIGNATURE');
    const resigned = { ...msg, keys: msg.keys.map((k, i) => (i === 2 ? { ...k, sPk: provider.x25519PublicKey(new Uint8Array(32).fill(7)) } : k)) };
    expectAbort(handleServerMessage(client, resigned), 'SECAGG_ERR_BAD_SIGNATURE');
  });

  it('aborts on a message of another round (SECAGG_ERR_UNEXPECTED_MESSAGE)', () => {
    const { msg, client } = keyListFor();
    expectAbort(handleServerMessage(client, { type: 'share-routing', sessionId: msg.configHash, shares: [] }), 'SECAGG_ERR_UNEXPECTED_MESSAGE');
  });

  it('obeys a server abort without replying, handing back its secrets', () => {
    const { client } = keyListFor();
    const step = handleServerMessage(client, { type: 'abort', code: 'SECAGG_ERR_BELOW_THRESHOLD', message: 'too few' });
    expect(step.state.kind).to.equal('aborted');
    expect(step.out).to.deep.equal([]);
    expect(step.consumed.length).to.equal(2);
    expect(handleServerMessage(step.state, { type: 'abort', code: 'X', message: '' }).out).to.deep.equal([]);
  });
});
