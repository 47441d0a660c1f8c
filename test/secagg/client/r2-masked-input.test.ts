import { expect } from 'chai';
import { handleServerMessage, setInput } from '../../../src/secagg/client/index.js';
import type { ShareRoutingMessage } from '../../../src/secagg/messages.js';
import { unpackVector } from '../../../src/crypto/vector.js';
import { expandMask } from '../../../src/crypto/mask.js';
import { selfMaskKey } from '../../../src/secagg/keys.js';
import { deliver, expectAbort, expectedSum, newSession, provider, runUntil } from '../_harness.js';

function routingFor() {
  const session = newSession({ n: 5 });
  const out = runUntil(session, 'share-routing');
  const msg = out.find((o) => o.to === 1)!.message as ShareRoutingMessage;
  return { session, out, msg, client: session.clients.get(1)! };
}

describe('secagg/client R2 MaskedInputCollection', () => {
  it('sends a bit-packed masked input that differs from the input', () => {
    const { session, msg, client } = routingFor();
    const step = handleServerMessage(client, msg);
    expect(step.state.kind).to.equal('masked');
    const out = step.out[0]!;
    if (out.type !== 'masked-input') throw new Error('expected a masked input');
    expect(out.masked.length).to.equal(Math.ceil((session.config.bits * session.config.dim) / 8));
    const y = unpackVector(out.masked, session.config.bits, session.config.dim);
    expect(Array.from(y)).to.not.deep.equal(Array.from(session.inputs[0]!));
    // s^SK and b_u leave the client's state once the masked input is out.
    expect(step.consumed.length).to.be.greaterThanOrEqual(2 + 1 + 4);
  });

  it('masks cancel: honest clients\' masked inputs sum to inputs plus self masks only', () => {
    const { session, out, msg } = routingFor();
    const { bits, dim } = session.config;
    // Each client's self-mask seed b_u, read before the masked input is computed.
    const selfSeeds = [...session.clients].map(([id, c]) => {
      if (c.kind !== 'shared') throw new Error(`client ${id} is in state ${c.kind}`);
      return { id, bU: c.bU.slice() };
    });
    const replies = deliver(session, out);
    expect(replies.map((r) => r.type)).to.deep.equal(Array(5).fill('masked-input'));
    const mod = 2 ** bits;
    const sumY = new Array<number>(dim).fill(0);
    for (const r of replies) {
      if (r.type !== 'masked-input') continue;
      const y = unpackVector(r.masked, bits, dim);
      for (let j = 0; j < dim; j++) sumY[j] = (sumY[j]! + y[j]!) % mod;
    }
    // Σ y_u = Σ x_u + Σ PRG(b_u) mod 2^b: every pairwise mask was added once and subtracted once.
    const want = expectedSum(session, [1, 2, 3, 4, 5]);
    for (const { id, bU } of selfSeeds) {
      const mask = expandMask(selfMaskKey(provider, msg.sessionId, id, bU), dim, provider);
      for (let j = 0; j < dim; j++) want[j] = (want[j]! + mask[j]!) % mod;
    }
    expect(sumY).to.deep.equal(want);
    // And not merely the inputs' sum: the self masks are still there.
    expect(sumY).to.not.deep.equal(expectedSum(session, [1, 2, 3, 4, 5]));
  });

  const cases: [string, (m: ShareRoutingMessage) => ShareRoutingMessage, string][] = [
    ['another session id', (m) => ({ ...m, sessionId: m.sessionId.map((x) => x ^ 0xff) }), 'SECAGG_ERR_SESSION_MISMATCH'],
    ['a share from an unknown client', (m) => ({ ...m, shares: [...m.shares, { from: 77, ciphertext: m.shares[0]!.ciphertext }] }), 'SECAGG_ERR_UNKNOWN_ID'],
    ['a share claiming to come from this client', (m) => ({ ...m, shares: [{ from: 1, ciphertext: m.shares[0]!.ciphertext }, ...m.shares] }), 'SECAGG_ERR_UNKNOWN_ID'],
    ['two shares from one client', (m) => ({ ...m, shares: [m.shares[0]!, m.shares[0]!, ...m.shares.slice(1)] }), 'SECAGG_ERR_DUPLICATE_ID'],
    ['fewer than t share senders (|U2| < t)', (m) => ({ ...m, shares: m.shares.slice(0, 1) }), 'SECAGG_ERR_BELOW_THRESHOLD'],
    ['a truncated ciphertext', (m) => ({ ...m, shares: m.shares.map((s, i) => (i === 1 ? { ...s, ciphertext: s.ciphertext.slice(1) } : s)) }), 'SECAGG_ERR_BAD_SHARE'],
  ];
  for (const [what, forge, code] of cases) {
    it(`aborts on ${what} (${code})`, () => {
      const { msg, client } = routingFor();
      expectAbort(handleServerMessage(client, forge(msg)), code);
    });
  }

  it('aborts without an input (SECAGG_ERR_NO_INPUT), and accepts one set late', () => {
    const { session, msg, client } = routingFor();
    const bare = { ...client, input: undefined } as typeof client;
    expectAbort(handleServerMessage(bare, msg), 'SECAGG_ERR_NO_INPUT');
    const late = setInput(bare, session.inputs[0]!);
    expect(handleServerMessage(late, msg).state.kind).to.equal('masked');
  });

  it('setInput rejects a vector of the wrong length or range', () => {
    const { client } = routingFor();
    expect(() => setInput(client, new Uint32Array(3))).to.throw(/input/);
    expect(() => setInput(client, new Uint32Array(10).fill(1 << 16))).to.throw(/2\^16|< 2/);
  });
});
