import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { nativeProvider } from '../../src/crypto/native.js';
import { DeterministicRng } from '../../src/crypto/rng.js';
import type { SessionConfig } from '../../src/secagg/config.js';
import { LockstepNetwork } from '../../src/secagg/lockstep.js';
import { randomInput } from '../../src/secagg/session.js';

/** One session over the lockstep channel; returns what the server received, in order, and the outcome. */
function session(stream: boolean) {
  const n = 9;
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const config: SessionConfig = {
    nonce: new DeterministicRng('lockstep-stream/nonce').bytes(32), clientIds: ids, threshold: 5, bits: 20, dim: 33,
    threat: 'semi-honest', graph: { kind: 'complete' },
  };
  const received: string[] = [];
  const events: string[] = [];
  const net: LockstepNetwork = new LockstepNetwork({
    config, provider: nativeProvider, stream,
    clients: ids.map((id) => ({ id, rng: new DeterministicRng(`lockstep-stream/${id}`), input: randomInput(new DeterministicRng(`in/${id}`), 33, 20) })),
    silentFrom: new Map([[3, 2], [7, 4]]),
    listener: {
      message: (e) => {
        if (e.direction !== 'to-server') return;
        received.push(`${e.peer}:${e.round}:${createHash('sha256').update(e.bytes).digest('hex')}`);
        events.push(`server<-${e.peer}`);
      },
    },
    onWork: (party, work) => { if (party !== 0) events.push(`client ${party}`); work(); },
  });
  const outcome = net.run();
  return { received, events, outcome };
}

describe('secagg/lockstep: the stream option', () => {
  it('delivers the same messages to the server in the same order as whole waves do', () => {
    const plain = session(false);
    const streamed = session(true);
    expect(streamed.received).to.deep.equal(plain.received);
    expect(streamed.outcome.kind).to.equal('completed');
    expect(plain.outcome.kind).to.equal('completed');
    if (streamed.outcome.kind === 'completed' && plain.outcome.kind === 'completed') {
      expect(Array.from(streamed.outcome.sum)).to.deep.equal(Array.from(plain.outcome.sum));
      expect(streamed.outcome.survivors).to.deep.equal(plain.outcome.survivors);
    }
  });

  it('hands each client\'s message to the server before the next client works', () => {
    const { events } = session(true);
    // Every client's work that produced a message is followed at once by the server receiving it.
    for (let i = 0; i + 1 < events.length; i++) {
      const m = /^client (\d+)$/.exec(events[i]!);
      const next = events[i + 1]!;
      if (m && next.startsWith('server<-')) expect(next).to.equal(`server<-${m[1]}`);
      if (m && next.startsWith('client')) expect(Number(/\d+/.exec(next)![0])).to.be.greaterThan(Number(m[1]));
    }
    // Without the option a wave's messages wait: nine clients work before the server hears any of them.
    const plain = session(false).events;
    expect(plain.slice(0, 9).every((e) => e.startsWith('client'))).to.equal(true);
    expect(events.slice(0, 2)).to.deep.equal(['client 1', 'server<-1']);
  });
});
