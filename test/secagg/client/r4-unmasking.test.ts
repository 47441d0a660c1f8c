import { expect } from 'chai';
import { handleServerMessage } from '../../../src/secagg/client/index.js';
import type { ShareRoutingMessage, UnmaskRequestMessage } from '../../../src/secagg/messages.js';
import { deliver, expectAbort, newSession, runUntil, serverRound, type Session } from '../_harness.js';

function requestFor(threat: 'semi-honest' | 'malicious' = 'semi-honest', prepare?: (s: Session) => void) {
  const session = newSession({ n: 5, threat });
  prepare?.(session);
  const out = runUntil(session, 'unmask-request');
  return { session, msg: out.find((o) => o.to === 1)!.message as UnmaskRequestMessage, client: session.clients.get(1)! };
}

describe('secagg/client R4 Unmasking', () => {
  it('reveals b-shares of survivors (its own included) and s^SK-shares of dropped clients, then completes', () => {
    const { msg, client } = requestFor('semi-honest', (s) => {
      // Client 5 shares keys but never sends a masked input: it is in U2 \ U3.
      const orig = s.clients.get(5)!;
      s.clients.set(5, orig);
      s.silent.add(5);
    });
    const step = handleServerMessage(client, msg);
    expect(step.state.kind).to.equal('completed');
    const out = step.out[0]!;
    if (out.type !== 'unmask') throw new Error('expected unmask');
    expect(out.selfShares.map((s) => s.of)).to.deep.equal(msg.survivors);
    expect(out.keyShares.map((s) => s.of)).to.deep.equal(msg.dropped);
    // Never both shares of one peer.
    const both = out.selfShares.filter((s) => out.keyShares.some((k) => k.of === s.of));
    expect(both).to.deep.equal([]);
    // A completed client answers no second request: it cannot be made to reveal more.
    const again = handleServerMessage(step.state, { ...msg, survivors: [1, 2, 3], dropped: [4, 5] });
    expect(again.out).to.deep.equal([]);
  });

  const cases: [string, (m: UnmaskRequestMessage) => UnmaskRequestMessage, string][] = [
    ['a peer listed both as survivor and as dropped', (m) => ({ ...m, dropped: [3] }), 'SECAGG_ERR_BOTH_SHARES_REQUESTED'],
    ['survivors without this client', (m) => ({ ...m, survivors: m.survivors.filter((v) => v !== 1) }), 'SECAGG_ERR_SELF_DROPPED'],
    ['|U3| < t', (m) => ({ ...m, survivors: [1, 2] }), 'SECAGG_ERR_BELOW_THRESHOLD'],
    ['an unknown survivor id', (m) => ({ ...m, survivors: [...m.survivors, 42] }), 'SECAGG_ERR_UNKNOWN_ID'],
    ['a duplicate dropped id', (m) => ({ ...m, survivors: [1, 2, 3], dropped: [4, 4] }), 'SECAGG_ERR_DUPLICATE_ID'],
    ['another session id', (m) => ({ ...m, sessionId: new Uint8Array(32) }), 'SECAGG_ERR_SESSION_MISMATCH'],
    ['signatures in a semi-honest session', (m) => ({ ...m, signatures: [{ id: 2, signature: new Uint8Array(64) }] }), 'SECAGG_ERR_BAD_MESSAGE'],
  ];
  for (const [what, forge, code] of cases) {
    it(`aborts on ${what} (${code}) and reveals nothing`, () => {
      const { msg, client } = requestFor();
      expectAbort(handleServerMessage(client, forge(msg)), code);
    });
  }

  it('aborts when a survivor never exchanged shares with it (U3 ⊄ U2)', () => {
    // 5 advertises keys but sends no shares: not in U2.
    const session = newSession({ n: 5, silentFrom: new Map([[5, 1]]) });
    const req = runUntil(session, 'unmask-request').find((o) => o.to === 1)!.message as UnmaskRequestMessage;
    expect(req.survivors).to.deep.equal([1, 2, 3, 4]);
    expectAbort(handleServerMessage(session.clients.get(1)!, { ...req, survivors: [1, 2, 3, 4, 5] }), 'SECAGG_ERR_NOT_SUBSET');
    expectAbort(handleServerMessage(session.clients.get(1)!, { ...req, survivors: [1, 2, 3], dropped: [4, 5] }), 'SECAGG_ERR_NOT_SUBSET');
  });

  it('aborts on a share ciphertext tampered with in transit (SECAGG_ERR_BAD_SHARE), before revealing anything', () => {
    const session = newSession({ n: 5 });
    const routing = runUntil(session, 'share-routing');
    const mine = routing.find((o) => o.to === 1)!;
    const m = mine.message as ShareRoutingMessage;
    const bad = m.shares.map((s, i) => (i === 2 ? { ...s, ciphertext: s.ciphertext.map((x, j) => (j === 20 ? x ^ 1 : x)) } : s));
    mine.message = { ...m, shares: bad };
    const masked = deliver(session, routing);
    const req = serverRound(session, masked).find((o) => o.to === 1)!.message;
    expectAbort(handleServerMessage(session.clients.get(1)!, req), 'SECAGG_ERR_BAD_SHARE');
  });

  describe('malicious mode: the consistency check', () => {
    it('accepts t valid signatures on the U3 it signed', () => {
      const { msg, client } = requestFor('malicious');
      expect(msg.signatures.length).to.equal(5);
      expect(handleServerMessage(client, msg).state.kind).to.equal('completed');
    });
    const mcases: [string, (m: UnmaskRequestMessage) => UnmaskRequestMessage, string][] = [
      ['survivors that differ from the signed U3', (m) => ({ ...m, survivors: [1, 2, 3, 4], dropped: [5] }), 'SECAGG_ERR_INCONSISTENT_VIEW'],
      ['a forged signature', (m) => ({ ...m, signatures: m.signatures.map((s, i) => (i === 3 ? { ...s, signature: s.signature.map((x, j) => (j === 0 ? x ^ 1 : x)) } : s)) }), 'SECAGG_ERR_BAD_SIGNATURE'],
      ['another client\'s signature under a wrong id', (m) => ({ ...m, signatures: m.signatures.map((s, i) => (i === 3 ? { ...s, signature: m.signatures[2]!.signature } : s)) }), 'SECAGG_ERR_BAD_SIGNATURE'],
      ['fewer than t signatures (|U4| < t)', (m) => ({ ...m, signatures: m.signatures.slice(0, 3) }), 'SECAGG_ERR_BELOW_THRESHOLD'],
      ['U4 without this client', (m) => ({ ...m, signatures: m.signatures.slice(1) }), 'SECAGG_ERR_SELF_DROPPED'],
      ['a signer outside U3', (m) => ({ ...m, signatures: [...m.signatures, { id: 6, signature: new Uint8Array(64) }] }), 'SECAGG_ERR_UNKNOWN_ID'],
    ];
    for (const [what, forge, code] of mcases) {
      it(`aborts on ${what} (${code})`, () => {
        const { msg, client } = requestFor('malicious');
        expectAbort(handleServerMessage(client, forge(msg)), code);
      });
    }
    it('aborts when asked to unmask before signing U3', () => {
      const session = newSession({ n: 5, threat: 'malicious' });
      const req = runUntil(session, 'consistency-request').find((o) => o.to === 1)!.message as { sessionId: Uint8Array };
      expectAbort(handleServerMessage(session.clients.get(1)!, { type: 'unmask-request', sessionId: req.sessionId, survivors: [1, 2, 3, 4, 5], dropped: [], signatures: [] }), 'SECAGG_ERR_UNEXPECTED_MESSAGE');
    });
  });
});
