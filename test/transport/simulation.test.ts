import { expect } from 'chai';
import { nativeProvider } from '../../src/crypto/native.js';
import { plaintextSum } from '../../src/secagg/session.js';
import { drawnInput, simulationRng } from '../../src/transport/_clients.js';
import { simulate, type DropPoint } from '../../src/transport/simulation.js';

const provider = nativeProvider;

function run(o: Partial<Parameters<typeof simulate>[0]> & { clients: number }) {
  return simulate({
    threads: 1,
    dim: 37, bits: 16, threshold: Math.floor(o.clients / 2) + 1, threat: 'semi-honest', graph: { kind: 'complete' },
    provider, seed: 'test', ...o,
  });
}

function expectExactSum(r: Awaited<ReturnType<typeof simulate>>): void {
  expect(r.aborted, JSON.stringify(r.aborted)).to.equal(undefined);
  // Recomputed here from the inputs, independently of the simulation's own self-check.
  const inputs = Array.from({ length: r.config.clientIds.length }, (_, i) => r.inputOf(i));
  const want = plaintextSum(inputs, r.survivors, r.config.dim, r.config.bits);
  expect(Array.from(r.sum!)).to.deep.equal(Array.from(want));
  expect(r.selfCheck).to.equal(true);
}

describe('transport/simulation: whole sessions over the in-memory channel', () => {
  for (const threat of ['semi-honest', 'malicious'] as const) {
    describe(threat, () => {
      const base = { threat, threshold: threat === 'malicious' ? 7 : 6 };
      it('sums exactly with no dropout', async () => {
        const r = await run({ clients: 10, ...base });
        expectExactSum(r);
        expect(r.survivors).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      });
      for (const at of ['r0', 'r1', 'r2', 'r3', 'r4'] as DropPoint[]) {
        it(`recovers when clients drop at ${at}`, async () => {
          const drops = new Map<number, DropPoint>([[1, at], [6, at]]);
          const r = await run({ clients: 10, ...base, drops });
          expectExactSum(r);
          // Silent from R3 or R4: the masked input was accepted (U3), so it is in the sum.
          const inSum = at === 'r3' || at === 'r4';
          expect(r.survivors.includes(1)).to.equal(inSum);
          expect(r.survivors.includes(6)).to.equal(inSum);
        });
      }
      it('aborts below the threshold', async () => {
        const drops = new Map<number, DropPoint>([[0, 'r2'], [1, 'r2'], [2, 'r2'], [3, 'r2'], [4, 'r2']]);
        const r = await run({ clients: 10, ...base, drops });
        expect(r.aborted?.code).to.equal('SECAGG_ERR_BELOW_THRESHOLD');
        expect(r.sum).to.equal(undefined);
      });
    });
  }

  describe('SecAgg+ (Harary graph)', () => {
    for (const [n, k, t, threat] of [[20, 6, 4, 'semi-honest'], [20, 13, 10, 'malicious'], [30, 9, 6, 'semi-honest']] as const) {
      it(`n=${n} k=${k} t=${t} ${threat}: exact sum with mixed dropouts`, async () => {
        const drops = new Map<number, DropPoint>([[2, 'r1'], [5, 'r2'], [11, 'r4'], [17, 'r2']]);
        const r = await run({ clients: n, threshold: t, threat, graph: { kind: 'harary', degree: k }, drops });
        expectExactSum(r);
        expect(r.survivors.length).to.equal(n - 3);
        expect(r.survivors.includes(11)).to.equal(true);
      });
    }
    it('uploads grow with k, not with n', async () => {
      const a = await run({ clients: 20, threshold: 4, graph: { kind: 'harary', degree: 6 } });
      const b = await run({ clients: 40, threshold: 4, graph: { kind: 'harary', degree: 6 } });
      expectExactSum(a);
      expectExactSum(b);
      // Shares go to k neighbours only: the R1 upload per client is the same for n=20 and n=40.
      expect(a.rounds[1]!.bytesUp / 20).to.equal(b.rounds[1]!.bytesUp / 40);
    });
  });

  it('sums exactly at every bit width, 1 to 32', async () => {
    for (let bits = 1; bits <= 32; bits++) {
      const drops = new Map<number, DropPoint>([[3, 'r2'], [4, 'r4']]);
      expectExactSum(await run({ clients: 8, dim: 45, bits, drops }));
    }
  });
});

describe('transport/simulation: the report', () => {
  it('lists per round the clients the server heard from, including those silent from R4', async () => {
    const drops = new Map<number, DropPoint>([[1, 'r2'], [4, 'r4']]);
    const r = await run({ clients: 8, drops });
    expectExactSum(r);
    expect(r.rounds[0]!.participants).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(r.rounds[1]!.participants).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(r.rounds[2]!.participants).to.deep.equal([0, 2, 3, 4, 5, 6, 7]);
    expect(r.rounds[4]!.participants).to.deep.equal([0, 2, 3, 5, 6, 7]);
    expect(r.survivors).to.deep.equal([0, 2, 3, 4, 5, 6, 7]);
  });

  it('says per drop point how many clients were told to drop and what became of them', async () => {
    const drops = new Map<number, DropPoint>([[0, 'r1'], [2, 'r2'], [3, 'r3'], [5, 'r4'], [6, 'r4']]);
    const r = await run({ clients: 20, threshold: 14, threat: 'malicious', drops });
    expectExactSum(r);
    const by = Object.fromEntries(r.drops.map((d) => [d.at, d]));
    expect(by.r1).to.deep.equal({ at: 'r1', told: 1, inSum: 0, droppedInRound: { 1: 1 } });
    expect(by.r2).to.deep.equal({ at: 'r2', told: 1, inSum: 0, droppedInRound: { 2: 1 } });
    // Silent from R3 or R4: the masked input is in U3, hence in the sum, though the server drops the client as silent.
    expect(by.r3).to.deep.equal({ at: 'r3', told: 1, inSum: 1, droppedInRound: { 3: 1 } });
    expect(by.r4).to.deep.equal({ at: 'r4', told: 2, inSum: 2, droppedInRound: { 4: 2 } });
  });

  it('reproduces a run from its reported seed', async () => {
    const a = await run({ clients: 6, seed: undefined });
    const b = await run({ clients: 6, seed: a.seed });
    expect(Array.from(b.sum!)).to.deep.equal(Array.from(a.sum!));
  });
});

describe('transport/simulation: threads', () => {
  /** Everything a session's outcome depends on (timings aside). */
  const shape = (r: Awaited<ReturnType<typeof simulate>>) => ({
    sum: Array.from(r.sum ?? []), aborted: r.aborted, survivors: r.survivors, dropped: r.dropped, drops: r.drops,
    rounds: r.rounds.map((x) => ({ participants: x.participants, bytesUp: x.bytesUp, bytesDown: x.bytesDown })),
    maxMessageUp: r.maxMessageUp,
  });

  for (const [threat, graph, t] of [['semi-honest', { kind: 'complete' }, 7], ['malicious', { kind: 'harary', degree: 13 }, 10]] as const) {
    it(`gives the same session on worker threads as on one thread (${threat}, ${graph.kind})`, async () => {
      const drops = new Map<number, DropPoint>(threat === 'malicious' ? [[4, 'r2'], [9, 'r3'], [13, 'r4']] : [[0, 'r1'], [4, 'r2'], [9, 'r3'], [13, 'r4'], [17, 'r0']]);
      const o = { clients: 18, threshold: t, threat, graph, drops, seed: 'threads' };
      const one = await run({ ...o, threads: 1 });
      const three = await run({ ...o, threads: 3 });
      expect(one.threads).to.equal(1);
      expect(three.threads).to.equal(3);
      expectExactSum(three);
      expect(shape(three)).to.deep.equal(shape(one));
    });
  }

  it('reports an abort the same way on worker threads', async () => {
    const drops = new Map<number, DropPoint>([[0, 'r2'], [1, 'r2'], [2, 'r2'], [3, 'r2'], [4, 'r2']]);
    const r = await run({ clients: 10, drops, threads: 2 });
    expect(r.aborted?.code).to.equal('SECAGG_ERR_BELOW_THRESHOLD');
    expect(r.threads).to.equal(2);
  });

  it('refuses a bad thread count', async () => {
    let err: unknown;
    try { await run({ clients: 4, threshold: 3, threads: 0 }); } catch (e) { err = e; }
    expect((err as { code?: string }).code).to.equal('SECAGG_ERR_BAD_CONFIG');
  });
});

describe('transport/simulation: drawn inputs', () => {
  it('are the little-endian words of the client\'s stream, masked to b bits, at every bit width', () => {
    for (const bits of [1, 7, 16, 31, 32]) {
      for (const dim of [1, 5, 1000]) {
        // The documented layout, read word by word here, independently of randomInput's in-place path.
        const raw = simulationRng('s', 'input/3').bytes(4 * dim);
        const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        const want = Array.from({ length: dim }, (_, i) => (bits === 32 ? dv.getUint32(4 * i, true) : dv.getUint32(4 * i, true) % 2 ** bits));
        expect(Array.from(drawnInput('s', 3, dim, bits)), `b=${bits} m=${dim}`).to.deep.equal(want);
      }
    }
  });
});
