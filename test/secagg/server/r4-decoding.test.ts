import { expect } from 'chai';
import { nativeProvider as provider } from '../../../src/crypto/native.js';
import { DeterministicRng } from '../../../src/crypto/rng.js';
import { decodeServerMessage, encodeServerMessage } from '../../../src/secagg/codec.js';
import type { SessionConfig } from '../../../src/secagg/config.js';
import type { ClientMessage, UnmaskMessage } from '../../../src/secagg/messages.js';
import { driveSession, type Delivery, type Tamper } from '../../../src/secagg/vectors/kinds-server.js';

function config(n: number, t: number): SessionConfig {
  const rng = new DeterministicRng(`r4-decoding/${n}/${t}`);
  return { nonce: rng.bytes(32), clientIds: Array.from({ length: n }, (_, i) => i + 1), threshold: t, bits: 16, dim: 6, threat: 'semi-honest', graph: { kind: 'complete' } };
}

const inputsOf = (c: SessionConfig) => c.clientIds.map((id) => Uint32Array.from({ length: c.dim }, (_, j) => (id * 977 + j * 31) % 2 ** c.bits));

/** Rotates a list of shares by one: every value is a valid field element, none is the right one. */
const rotate = (l: UnmaskMessage['keyShares']) => l.map((s, i) => ({ of: s.of, share: l[(i + 1) % l.length]!.share }));

/** Holders in `bad` replace their share of the dropped client's key by one of their self-mask shares (and, with `seeds`, rotate those too). */
function wrongShares(bad: readonly number[], seeds = false): Tamper {
  return (round, sender, msg) => {
    if (round !== 4 || !bad.includes(sender)) return [{ sender, msg }];
    const u = msg as UnmaskMessage;
    const keyShares = u.keyShares.map((s, i) => ({ of: s.of, share: u.selfShares[i % u.selfShares.length]!.share }));
    return [{ sender, msg: { ...u, keyShares, ...(seeds ? { selfShares: rotate(u.selfShares) } : {}) } as ClientMessage }];
  };
}

function run(n: number, t: number, dropped: number, tamper: Tamper) {
  const c = config(n, t);
  const inputs = inputsOf(c);
  const r = driveSession({ config: c, inputs, lastRound: new Map([[dropped, 1]]), rngOf: (id) => new DeterministicRng(`r4-decoding/client/${id}`), tamper }, provider);
  const expected = new Uint32Array(c.dim);
  for (const id of c.clientIds) if (id !== dropped) inputs[id - 1]!.forEach((x, j) => { expected[j] = (expected[j]! + x) % 2 ** c.bits; });
  return { r, expected };
}

const drops = (r: ReturnType<typeof run>['r']) => r.dropped.filter((d) => d.code !== 'SILENT');

describe('secagg/server R4: decoding a dropped client\'s mask key around wrong shares (spec §8.8)', () => {
  it('one wrong share among h = 5 > t + 1 shares: its holder is dropped with BAD_SHARE and the sum is right', () => {
    const { r, expected } = run(6, 3, 6, wrongShares([2]));
    expect(r.server.kind).to.equal('completed');
    expect(drops(r)).to.deep.equal([{ id: 2, round: 4, code: 'SECAGG_ERR_BAD_SHARE' }]);
    if (r.server.kind !== 'completed') return;
    expect(Array.from(r.server.sum)).to.deep.equal(Array.from(expected));
    // The faulty holder's input stays in the sum: it is still in U3.
    expect(r.server.survivors).to.deep.equal([1, 2, 3, 4, 5]);
  });

  it('the faulty holder\'s self-mask shares are discarded too (wrong ones from holder 2, the smallest id, would corrupt the sum)', () => {
    const { r, expected } = run(6, 3, 6, wrongShares([2], true));
    expect(r.server.kind).to.equal('completed');
    expect(drops(r)).to.deep.equal([{ id: 2, round: 4, code: 'SECAGG_ERR_BAD_SHARE' }]);
    if (r.server.kind === 'completed') expect(Array.from(r.server.sum)).to.deep.equal(Array.from(expected));
  });

  it('wrong self-mask shares that do not combine to a seed are decoded around the same way (no key to check, only the combination)', () => {
    const { r, expected } = run(6, 3, 6, (round, sender, msg) => (round === 4 && sender === 1
      ? [{ sender, msg: { ...(msg as UnmaskMessage), selfShares: rotate((msg as UnmaskMessage).selfShares) } }] : [{ sender, msg }]));
    expect(r.server.kind).to.equal('completed');
    expect(drops(r)).to.deep.equal([{ id: 1, round: 4, code: 'SECAGG_ERR_BAD_SHARE' }]);
    if (r.server.kind === 'completed') expect(Array.from(r.server.sum)).to.deep.equal(Array.from(expected));
  });

  it('two wrong shares among h = 7 (the bound ⌊(h − t)/2⌋ = 2): both holders are named and dropped', () => {
    const { r, expected } = run(8, 3, 8, wrongShares([2, 5]));
    expect(r.server.kind).to.equal('completed');
    expect(drops(r)).to.deep.equal([{ id: 2, round: 4, code: 'SECAGG_ERR_BAD_SHARE' }, { id: 5, round: 4, code: 'SECAGG_ERR_BAD_SHARE' }]);
    if (r.server.kind === 'completed') expect(Array.from(r.server.sum)).to.deep.equal(Array.from(expected));
  });

  it('a wrong share outside the t smallest ids is not used and not examined: nobody is dropped', () => {
    const { r, expected } = run(6, 3, 6, wrongShares([5]));
    expect(r.server.kind).to.equal('completed');
    expect(drops(r)).to.deep.equal([]);
    if (r.server.kind === 'completed') expect(Array.from(r.server.sum)).to.deep.equal(Array.from(expected));
  });

  it('h = t + 1: not provably attributable, the session aborts naming the suspect in the abort message', () => {
    const { r } = run(5, 3, 5, wrongShares([2]));
    expect(r.server.kind).to.equal('aborted');
    if (r.server.kind !== 'aborted') return;
    expect(r.server.code).to.equal('SECAGG_ERR_RECONSTRUCTION_FAILED');
    expect(drops(r)).to.deep.equal([]);
    const close = r.events[r.events.length - 1]!;
    if (!('close' in close) || close.abort === undefined) throw new Error('expected an abort message');
    expect(decodeServerMessage(close.abort)).to.deep.equal({ type: 'abort', code: 'SECAGG_ERR_RECONSTRUCTION_FAILED', message: 'round 4 peer 2' });
    expect(encodeServerMessage(decodeServerMessage(close.abort))).to.deep.equal(close.abort);
  });

  it('more wrong shares than can be decoded: the session aborts, and no holder is dropped on that evidence', () => {
    const { r } = run(8, 3, 8, wrongShares([1, 3, 5]));
    expect(r.server.kind).to.equal('aborted');
    if (r.server.kind === 'aborted') expect(r.server.code).to.equal('SECAGG_ERR_RECONSTRUCTION_FAILED');
    expect(drops(r)).to.deep.equal([]);
  });

  it('every holder sends a wrong share: the abort names the dropped client itself', () => {
    const everyone: Tamper = (round, sender, msg) => wrongShares([sender])(round, sender, msg, [] as Delivery[]);
    const { r } = run(6, 3, 6, everyone);
    expect(r.server.kind).to.equal('aborted');
    const close = r.events[r.events.length - 1]!;
    if (!('close' in close) || close.abort === undefined) throw new Error('expected an abort message');
    expect(decodeServerMessage(close.abort)).to.deep.equal({ type: 'abort', code: 'SECAGG_ERR_RECONSTRUCTION_FAILED', message: 'round 4 peer 6' });
  });
});
