import { expect } from 'chai';
import { nativeProvider } from '../../src/crypto/native.js';
import { plaintextSum, simulate, type DropPoint } from '../../src/secagg/simulation.js';

const provider = nativeProvider;

function run(o: Partial<Parameters<typeof simulate>[0]> & { clients: number }) {
  return simulate({
    dim: 37, bits: 16, threshold: Math.floor(o.clients / 2) + 1, threat: 'semi-honest', graph: { kind: 'complete' },
    provider, seed: 'test', ...o,
  });
}

function expectExactSum(r: ReturnType<typeof simulate>): void {
  expect(r.aborted, JSON.stringify(r.aborted)).to.equal(undefined);
  const want = plaintextSum(r.inputs, r.survivors, r.config.dim, r.config.bits);
  expect(Array.from(r.sum!)).to.deep.equal(Array.from(want));
}

describe('secagg/simulation: whole sessions', () => {
  for (const threat of ['semi-honest', 'malicious'] as const) {
    describe(threat, () => {
      const base = { threat, threshold: threat === 'malicious' ? 7 : 6 };
      it('sums exactly with no dropout', () => {
        const r = run({ clients: 10, ...base });
        expectExactSum(r);
        expect(r.survivors).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      });
      for (const at of ['r0', 'r1', 'r2', 'r3', 'r4'] as DropPoint[]) {
        it(`recovers when clients drop at ${at}`, () => {
          const drops = new Map<number, DropPoint>([[1, at], [6, at]]);
          const r = run({ clients: 10, ...base, drops });
          expectExactSum(r);
          // Silent from R3 or R4: the masked input was accepted (U3), so it is in the sum.
          const inSum = at === 'r3' || at === 'r4';
          expect(r.survivors.includes(1)).to.equal(inSum);
          expect(r.survivors.includes(6)).to.equal(inSum);
        });
      }
      it('aborts below the threshold', () => {
        const drops = new Map<number, DropPoint>([[0, 'r2'], [1, 'r2'], [2, 'r2'], [3, 'r2'], [4, 'r2']]);
        const r = run({ clients: 10, ...base, drops });
        expect(r.aborted?.code).to.equal('SECAGG_ERR_BELOW_THRESHOLD');
        expect(r.sum).to.equal(undefined);
      });
    });
  }

  describe('SecAgg+ (Harary graph)', () => {
    for (const [n, k, t, threat] of [[20, 6, 4, 'semi-honest'], [20, 13, 10, 'malicious'], [30, 9, 6, 'semi-honest']] as const) {
      it(`n=${n} k=${k} t=${t} ${threat}: exact sum with mixed dropouts`, () => {
        const drops = new Map<number, DropPoint>([[2, 'r1'], [5, 'r2'], [11, 'r4'], [17, 'r2']]);
        const r = run({ clients: n, threshold: t, threat, graph: { kind: 'harary', degree: k }, drops });
        expectExactSum(r);
        expect(r.survivors.length).to.equal(n - 3);
        expect(r.survivors.includes(11)).to.equal(true);
      });
    }
    it('uploads grow with k, not with n', () => {
      const a = run({ clients: 20, threshold: 4, graph: { kind: 'harary', degree: 6 } });
      const b = run({ clients: 40, threshold: 4, graph: { kind: 'harary', degree: 6 } });
      expectExactSum(a);
      expectExactSum(b);
      // Shares go to k neighbours only: the R1 upload per client is the same for n=20 and n=40.
      expect(a.rounds[1]!.bytesUp / 20).to.equal(b.rounds[1]!.bytesUp / 40);
    });
  });

  it('sums exactly at every bit width, 1 to 32', () => {
    for (const bits of [1, 2, 7, 8, 13, 16, 31, 32]) {
      const drops = new Map<number, DropPoint>([[3, 'r2'], [4, 'r4']]);
      expectExactSum(run({ clients: 8, dim: 45, bits, drops }));
    }
  });
});
