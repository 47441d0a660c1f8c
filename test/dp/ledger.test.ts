/**
 * The privacy ledger: events are persisted as JSON lines, a reload replays to
 * the same ε, and an event that would exceed the budget is refused before it
 * is recorded.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DpError } from '../../src/errors.js';
import { PrivacyLedger, type LedgerSink } from '../../src/dp/ledger.js';
import type { DpEvent } from '../../src/dp/events.js';
import { PldAccountant } from '../../src/dp/pld.js';
import { RdpAccountant } from '../../src/dp/rdp.js';

const round: DpEvent = { kind: 'poisson_sampled', q: 0.04, event: { kind: 'gaussian', noiseMultiplier: 1.5 } };
const memorySink = (): LedgerSink & { lines: string[] } => {
  const lines: string[] = [];
  return { lines, append: (l) => void lines.push(l) };
};

describe('dp/ledger', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'tally-ledger-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('records events, persists one JSON line each, and reports the accountant\'s ε', () => {
    const sink = memorySink();
    const ledger = new PrivacyLedger({ budget: { epsilon: 10, delta: 1e-5 }, sink });
    ledger.record(round, 'round 1');
    ledger.record({ kind: 'self_composed', event: round, count: 99 });
    expect(sink.lines).to.have.length(2);
    expect(JSON.parse(sink.lines[0]!)).to.deep.equal({ v: 1, seq: 1, event: round, label: 'round 1' });
    const direct = new RdpAccountant().compose(round, 100).getEpsilon(1e-5).epsilon;
    expect(ledger.epsilon()).to.be.closeTo(direct, 1e-12);
  });

  it('refuses an event that would exceed the budget, before recording it, with spent/requested/budget', () => {
    const sink = memorySink();
    const ledger = new PrivacyLedger({ budget: { epsilon: 1, delta: 1e-5 }, sink });
    const small: DpEvent = { kind: 'gaussian', noiseMultiplier: 20 };
    ledger.record(small);
    const spent = ledger.epsilon();
    const big: DpEvent = { kind: 'gaussian', noiseMultiplier: 2 };
    let err: unknown;
    try { ledger.record(big); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(DpError);
    expect((err as DpError).code).to.equal('DP_ERR_BUDGET_EXCEEDED');
    const msg = (err as DpError).message;
    expect(msg).to.match(/spent ε=0\.\d+/).and.match(/would make it ε=\d/).and.match(/budget ε=1 at δ=0\.00001/);
    expect(msg).to.not.include('\n');
    expect(ledger.entries).to.have.length(1);
    expect(sink.lines).to.have.length(1);
    expect(ledger.epsilon()).to.equal(spent);
    expect(ledger.check(small).requested).to.be.at.most(1); // a small event still fits
  });

  it('PLD ledger: a σ = 0.03 round costs ε ≈ 653 and is refused under ε = 1, as with RDP (not accepted 20 times)', () => {
    const tiny: DpEvent = { kind: 'poisson_sampled', q: 0.01, event: { kind: 'gaussian', noiseMultiplier: 0.03 } };
    for (const accountant of ['pld', 'rdp'] as const) {
      const sink = memorySink();
      const ledger = new PrivacyLedger({ budget: { epsilon: 1, delta: 1e-5 }, accountant, sink });
      for (let i = 0; i < 20; i++) expect(() => ledger.record(tiny), `${accountant}, round ${i + 1}`).to.throw(DpError, /would make it ε=6[57]\d\./);
      expect(ledger.entries).to.have.length(0);
      expect(sink.lines).to.have.length(0);
    }
  });

  it('fails closed: a round whose ε the accountant refuses to certify is refused as over budget, nothing recorded', () => {
    const sink = memorySink();
    const ledger = new PrivacyLedger({ budget: { epsilon: 1e9, delta: 1e-5 }, accountant: 'pld', sink });
    ledger.record(round);
    // σ = 0.001 at q = 0.01: the PLD grid would need ~5e7 points, above the 2^22 bound.
    const extreme: DpEvent = { kind: 'poisson_sampled', q: 0.01, event: { kind: 'gaussian', noiseMultiplier: 0.001 } };
    let err: unknown;
    try { ledger.record(extreme); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(DpError);
    expect((err as DpError).code).to.equal('DP_ERR_BUDGET_EXCEEDED');
    expect((err as DpError).message).to.match(/failed closed: the pld accountant cannot certify ε \(DP_ERR_ACCOUNTING_LIMIT: .*RDP accountant\)/);
    expect(((err as DpError).cause as DpError).code).to.equal('DP_ERR_ACCOUNTING_LIMIT');
    expect(ledger.entries).to.have.length(1);
    expect(sink.lines).to.have.length(1);
    expect(() => ledger.check(extreme)).to.throw(DpError, /failed closed/);
  });

  it('PLD ledger of many identical rounds composes them as one self-composition (1,000 rounds)', () => {
    const text = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ v: 1, seq: i + 1, event: round })).join('\n');
    const pld = PrivacyLedger.fromJsonLines(text, { accountant: 'pld' });
    const direct = new PldAccountant().compose(round, 1000).getEpsilon(1e-5);
    expect(pld.epsilon(1e-5)).to.equal(direct);
  });

  it('writes nothing when the sink fails', () => {
    const ledger = new PrivacyLedger({ sink: { append: () => { throw new Error('disk full'); } } });
    expect(() => ledger.record(round)).to.throw('disk full');
    expect(ledger.entries).to.have.length(0);
  });

  it('reload from the file replays to the same ε and keeps appending to it', () => {
    const path = join(dir, 'ledger.jsonl');
    const a = PrivacyLedger.load(path, { budget: { epsilon: 20, delta: 1e-6 } });
    for (let i = 0; i < 5; i++) a.record({ kind: 'self_composed', event: round, count: 100 }, `round ${i + 1}`);
    const b = PrivacyLedger.load(path, { budget: { epsilon: 20, delta: 1e-6 } });
    expect(b.entries).to.deep.equal(a.entries);
    expect(b.epsilon()).to.equal(a.epsilon());
    b.record(round);
    expect(readFileSync(path, 'utf8').trim().split('\n')).to.have.length(6);
    const pld = PrivacyLedger.load(path, { accountant: 'pld' });
    expect(pld.epsilon(1e-6)).to.be.below(b.epsilon()); // PLD is tighter than RDP on the same record
  });

  it('rejects malformed or tampered ledger files naming the line', () => {
    const good = JSON.stringify({ v: 1, seq: 1, event: round });
    expect(() => PrivacyLedger.fromJsonLines(`${good}\n{oops`)).to.throw(DpError, /line 2 is not valid JSON/);
    expect(() => PrivacyLedger.fromJsonLines(`${good}\n${good}`)).to.throw(DpError, /line 2: expected seq 2, got 1/);
    const bad = JSON.stringify({ v: 1, seq: 1, event: { kind: 'gaussian', noiseMultiplier: -1 } });
    expect(() => PrivacyLedger.fromJsonLines(bad)).to.throw(DpError, /line 1: "event.noiseMultiplier"/);
    const path = join(dir, 'x.jsonl');
    writeFileSync(path, JSON.stringify({ v: 2, seq: 1, event: round }) + '\n');
    expect(() => PrivacyLedger.load(path)).to.throw(DpError, /expected \{"v":1/);
  });

  it('validates budgets, events and the PLD accountant\'s scope', () => {
    expect(() => new PrivacyLedger({ budget: { epsilon: 0, delta: 1e-5 } })).to.throw(DpError, /budget.epsilon/);
    expect(() => new PrivacyLedger({ budget: { epsilon: 1, delta: 1 } })).to.throw(DpError, /budget.delta/);
    const l = new PrivacyLedger({ budget: { epsilon: 1, delta: 1e-5 } });
    expect(() => l.record({ kind: 'poisson_sampled', q: 2, event: round })).to.throw(DpError, /event.q/);
    const p = new PrivacyLedger({ budget: { epsilon: 1, delta: 1e-5 }, accountant: 'pld' });
    expect(() => p.record({ kind: 'discrete_gaussian', noiseMultiplier: 5 })).to.throw(DpError, /only Gaussian/);
    expect(p.entries).to.have.length(0);
  });
});
