import { expect } from 'chai';
import { handleServerMessage } from '../../../src/secagg/client/index.js';
import type { ConsistencyRequestMessage } from '../../../src/secagg/messages.js';
import { expectAbort, newSession, runUntil } from '../_harness.js';

function requestFor(threat: 'semi-honest' | 'malicious' = 'malicious') {
  const session = newSession({ n: 5, threat });
  const out = runUntil(session, threat === 'malicious' ? 'consistency-request' : 'unmask-request');
  return { session, msg: out.find((o) => o.to === 1)!.message, client: session.clients.get(1)! };
}

describe('secagg/client R3 ConsistencyCheck', () => {
  it('signs U3 with its roster key', () => {
    const { msg, client } = requestFor();
    const step = handleServerMessage(client, msg);
    expect(step.out[0]!.type).to.equal('consistency');
    expect(step.state.kind === 'masked' && step.state.signedU3).to.deep.equal([1, 2, 3, 4, 5]);
    // Asked twice: refuses (a server must not collect two different signed views).
    expectAbort(handleServerMessage(step.state, msg), 'SECAGG_ERR_UNEXPECTED_MESSAGE');
  });

  it('aborts when a semi-honest session receives a consistency request', () => {
    const { session, client } = requestFor('semi-honest');
    const sid = (client as { sessionId: Uint8Array }).sessionId;
    expectAbort(handleServerMessage(client, { type: 'consistency-request', sessionId: sid, survivors: session.config.clientIds }), 'SECAGG_ERR_UNEXPECTED_MESSAGE');
  });

  const cases: [string, (m: ConsistencyRequestMessage) => ConsistencyRequestMessage, string][] = [
    ['U3 without this client', (m) => ({ ...m, survivors: m.survivors.filter((v) => v !== 1) }), 'SECAGG_ERR_SELF_DROPPED'],
    ['|U3| < t', (m) => ({ ...m, survivors: [1, 2, 3] }), 'SECAGG_ERR_BELOW_THRESHOLD'],
    ['an unknown id in U3', (m) => ({ ...m, survivors: [...m.survivors, 9] }), 'SECAGG_ERR_UNKNOWN_ID'],
    ['a duplicate id in U3', (m) => ({ ...m, survivors: [1, 2, 2, 3, 4] }), 'SECAGG_ERR_DUPLICATE_ID'],
    ['another session id', (m) => ({ ...m, sessionId: new Uint8Array(32) }), 'SECAGG_ERR_SESSION_MISMATCH'],
  ];
  for (const [what, forge, code] of cases) {
    it(`aborts on ${what} (${code})`, () => {
      const { msg, client } = requestFor();
      expectAbort(handleServerMessage(client, forge(msg as ConsistencyRequestMessage)), code);
    });
  }
});
