import { expect } from 'chai';
import { nativeProvider } from '../../src/crypto/native.js';
import { DeterministicRng } from '../../src/crypto/rng.js';
import type { CryptoProvider } from '../../src/crypto/types.js';
import { maskedSum } from '../../src/crypto/aggregator.js';
import { InternalError } from '../../src/errors.js';
import type { SessionConfig } from '../../src/secagg/config.js';
import { decodeClientMessage, encodeClientMessage } from '../../src/secagg/codec.js';
import { ClientDriver, ServerDriver, type DeadlinePolicy, type SessionListener } from '../../src/secagg/driver.js';
import { LockstepNetwork } from '../../src/secagg/lockstep.js';
import { plaintextSum } from '../../src/secagg/session.js';

const provider = nativeProvider;
const ids = [1, 2, 3, 4, 5];
const config: SessionConfig = {
  nonce: new DeterministicRng('driver/nonce').bytes(32), clientIds: ids, threshold: 3, bits: 12, dim: 9, threat: 'semi-honest', graph: { kind: 'complete' },
};
const inputs = ids.map((id) => Uint32Array.from({ length: 9 }, (_, j) => (id * 311 + j * 17) % 4096));
const clients = (p: CryptoProvider = provider) => ids.map((id) => ({ id, rng: new DeterministicRng(`driver/${id}`), input: inputs[id - 1]! }));

/**
 * A network written the way a transport would be: every send is delivered at
 * once (synchronously), so replies arrive while the sender is still sending.
 */
function synchronousNetwork(o: { listener?: SessionListener; deadlines?: DeadlinePolicy; provider?: CryptoProvider; silent?: Set<number>; tamper?: (from: number, bytes: Uint8Array) => Uint8Array } = {}) {
  const p = o.provider ?? provider;
  const drivers = new Map<number, ClientDriver>();
  const server = new ServerDriver({
    config, provider: p, ...(o.listener ? { listener: o.listener } : {}), ...(o.deadlines ? { deadlines: o.deadlines } : {}),
    channel: { send: (to, bytes) => { if (!o.silent?.has(to)) drivers.get(to)!.receive(bytes); } },
  });
  for (const c of clients(p)) {
    drivers.set(c.id, new ClientDriver({
      config, id: c.id, provider: p, rng: c.rng, input: c.input,
      channel: { send: (bytes) => { if (!o.silent?.has(c.id)) server.receive(c.id, o.tamper ? o.tamper(c.id, bytes) : bytes); } },
    }));
  }
  return { server, drivers };
}

describe('secagg/driver', () => {
  it('runs a whole session over a channel that delivers synchronously (re-entrant sends are queued)', () => {
    const { server, drivers } = synchronousNetwork();
    for (const d of drivers.values()) d.start();
    const out = server.outcome;
    expect(out?.kind).to.equal('completed');
    if (out?.kind === 'completed') expect(Array.from(out.sum)).to.deep.equal(Array.from(plaintextSum(inputs, [0, 1, 2, 3, 4], 9, 12)));
    for (const d of drivers.values()) expect(d.outcome).to.deep.equal({ kind: 'completed' });
  });

  it('drops a client whose message claims another client\'s id, and sums the others exactly', () => {
    // Client 2's masked input is relabelled as coming from client 5, which is silent from R2 on.
    const tamper = (from: number, bytes: Uint8Array) => {
      const m = decodeClientMessage(bytes);
      return from === 2 && m.type === 'masked-input' ? encodeClientMessage({ ...m, id: 5 }) : bytes;
    };
    const drops: { peer: number; code: string }[] = [];
    const net = new LockstepNetwork({
      config, provider, clients: clients(), silentFrom: new Map([[5, 2]]),
      intercept: (m) => (m.from === 'client' ? tamper(m.id, m.bytes) : undefined),
      listener: { dropped: (e) => drops.push({ peer: e.peer, code: e.code }) },
    });
    const out = net.run();
    expect(drops).to.deep.include({ peer: 2, code: 'SECAGG_ERR_SENDER_MISMATCH' });
    expect(out.kind).to.equal('completed');
    if (out.kind === 'completed') {
      expect(out.survivors).to.deep.equal([1, 3, 4]);
      expect(Array.from(out.sum)).to.deep.equal(Array.from(plaintextSum(inputs, [0, 2, 3], 9, 12)));
    }
  });

  it('drops the sender of undecodable bytes with SECAGG_ERR_BAD_MESSAGE', () => {
    const drops: { peer: number; code: string }[] = [];
    const net = new LockstepNetwork({
      config, provider, clients: clients(),
      intercept: (m) => (m.from === 'client' && m.id === 3 && m.round === 1 ? m.bytes.subarray(0, 10) : undefined),
      listener: { dropped: (e) => drops.push({ peer: e.peer, code: e.code }) },
    });
    const out = net.run();
    expect(drops).to.deep.equal([{ peer: 3, code: 'SECAGG_ERR_BAD_MESSAGE' }]);
    expect(out.kind === 'completed' && out.survivors).to.deep.equal([1, 2, 4, 5]);
  });

  it('a bug in the server (a TypeError, an InternalError) propagates instead of dropping an honest peer', () => {
    for (const bug of [() => new TypeError('boom'), () => new InternalError('boom')]) {
      const broken = (dim: number, bits: number, p: CryptoProvider) => {
        const agg = maskedSum(dim, bits, p);
        return { ...agg, addInput: () => { throw bug(); } };
      };
      const net = new LockstepNetwork({ config, provider, clients: clients(), aggregator: broken });
      expect(() => net.run()).to.throw('boom');
    }
  });

  it('wipes the running sum when the session aborts after inputs were added', () => {
    let cleared = 0;
    const counting = (dim: number, bits: number, p: CryptoProvider) => {
      const agg = maskedSum(dim, bits, p);
      return { ...agg, clear: () => { cleared++; agg.clear(); } };
    };
    // Three clients fall silent after R2: only two unmasking answers, below t = 3.
    const net = new LockstepNetwork({ config, provider, clients: clients(), aggregator: counting, silentFrom: new Map([[1, 3], [2, 3], [3, 3]]) });
    const out = net.run();
    expect(out.kind === 'aborted' && out.code).to.equal('SECAGG_ERR_BELOW_THRESHOLD');
    expect(cleared).to.equal(1);
  });

  it('a bug in the client propagates instead of aborting it with a protocol code', () => {
    const buggy: CryptoProvider = { ...provider, name: 'buggy', aesGcmSeal: () => { throw new TypeError('seal bug'); } };
    // The same keys as client 1 of the network, so the key list is this client's own.
    const d = new ClientDriver({ config, id: 1, provider: buggy, rng: new DeterministicRng('driver/1'), input: inputs[0]!, channel: { send: () => {} } });
    d.start();
    const net = new LockstepNetwork({ config, provider, clients: clients() });
    const keyList = net.runUntil((m) => m.from === 'server').find((m) => m.id === 1)!;
    expect(() => d.receive(keyList.bytes)).to.throw('seal bug');
  });

  it('ignores a byte-identical retry of a server message and aborts on a different one', () => {
    const retried = new LockstepNetwork({ config, provider, clients: clients(), duplicateServerMessages: true }).run();
    const plain = new LockstepNetwork({ config, provider, clients: clients() }).run();
    expect(retried.kind === 'completed' && Array.from(retried.sum)).to.deep.equal(plain.kind === 'completed' && Array.from(plain.sum));
    const conflict = new LockstepNetwork({
      config, provider, clients: clients(),
      duplicateServerMessages: (m) => (m.id === 4 && m.round === 1 ? Uint8Array.from(m.bytes, (x, i) => (i === m.bytes.length - 2 ? x ^ 1 : x)) : undefined),
    });
    conflict.run();
    expect(conflict.clients.get(4)!.outcome).to.include({ kind: 'aborted', code: 'SECAGG_ERR_UNEXPECTED_MESSAGE' });
  });

  it('tells the listener every message, drop, closed round and the outcome', () => {
    const seen = { toServer: 0, toClient: 0, rounds: [] as number[], drops: [] as number[], outcome: '' };
    const net = new LockstepNetwork({
      config, provider, clients: clients(), silentFrom: new Map([[2, 2]]),
      listener: {
        message: (e) => { if (e.direction === 'to-server') seen.toServer++; else seen.toClient++; },
        roundClosed: (e) => seen.rounds.push(e.round),
        dropped: (e) => seen.drops.push(e.peer),
        outcome: (o) => { seen.outcome = o.kind; },
      },
    });
    const out = net.run();
    // R0: 5, R1: 5, R2: 4 masked inputs, R4: 4 unmask answers.
    expect(seen.toServer).to.equal(18);
    // key list 5, share routing 5, unmask request to 4.
    expect(seen.toClient).to.equal(14);
    expect(seen.rounds).to.deep.equal([0, 1, 2, 4]);
    expect(seen.drops).to.deep.equal([2]);
    expect(seen.outcome).to.equal('completed');
    expect(out.rounds.map((r) => r.participants.length)).to.deep.equal([5, 5, 4, 4]);
  });

  it('arms a deadline per round, cancels it when everyone answered, and closes the round when it fires', () => {
    const armed: number[] = [];
    let cancelled = 0;
    let fire: (() => void) | undefined;
    const deadlines: DeadlinePolicy = { arm: (round, close) => { armed.push(round); fire = close; return () => { cancelled++; }; } };
    const { server, drivers } = synchronousNetwork({ deadlines, silent: new Set([5]) });
    for (const d of drivers.values()) d.start();
    // Client 5 is silent: R0 stays open until its deadline fires.
    expect(server.round).to.equal(0);
    expect(server.expected()).to.deep.equal([5]);
    fire!();
    expect(server.outcome?.kind).to.equal('completed');
    expect(armed).to.deep.equal([0, 1, 2, 4]);
    // Every round's deadline is cancelled as the round closes: R1, R2 and R4 closed early (everyone
    // answered), R0 when its deadline fired.
    expect(cancelled).to.equal(4);
  });
});
