import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const tally = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });

describe('cli: tally simulate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-sim-'));

  it('sums the given inputs exactly over the survivors and writes the report', () => {
    const bits = 12;
    const inputs = Array.from({ length: 9 }, (_, i) => Array.from({ length: 7 }, (_, j) => (i * 977 + j * 131) % 2 ** bits));
    const inFile = join(dir, 'in.json');
    const outFile = join(dir, 'out.json');
    writeFileSync(inFile, JSON.stringify({ bits, inputs }));
    const r = tally('simulate', '--inputs', inFile, '--dropout', '0.3', '--drop-at', 'mixed', '--seed', 's1', '--out', outFile);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/self-check against the plaintext sum of the survivors: OK/);
    const rep = JSON.parse(readFileSync(outFile, 'utf8'));
    expect(rep).to.include({ bits, clients: 9, dim: 7 });
    expect(rep.survivors.length + rep.dropped.length).to.equal(9);
    expect(rep.survivors.length).to.be.within(6, 8); // mixed: r4 dropouts are still in the sum
    const want = Array.from({ length: 7 }, (_, j) => rep.survivors.reduce((a: number, i: number) => (a + inputs[i]![j]!) % 2 ** bits, 0));
    expect(rep.sum).to.deep.equal(want);
    for (const k of ['server_seconds', 'client_seconds_mean', 'bytes_up_per_client', 'rounds']) expect(rep).to.have.property(k);
  });

  it('exits 3 with the error code when the session aborts, and records it', () => {
    const outFile = join(dir, 'abort.json');
    const r = tally('simulate', '--clients', '10', '--dim', '5', '--dropout', '0.6', '--drop-at', 'r2', '--seed', 'x', '--out', outFile);
    expect(r.status).to.equal(3);
    expect(r.stderr).to.match(/SECAGG_ERR_BELOW_THRESHOLD/);
    expect(JSON.parse(readFileSync(outFile, 'utf8')).aborted).to.equal('SECAGG_ERR_BELOW_THRESHOLD');
  });

  it('runs SecAgg+ with the parameter finder and a malicious-server session', () => {
    expect(tally('simulate', '--clients', '40', '--dim', '50', '--graph', 'harary', '--seed', 'h', '--quiet').status).to.equal(0);
    expect(tally('simulate', '--clients', '12', '--dim', '50', '--threat', 'malicious', '--seed', 'm', '--quiet').status).to.equal(0);
  });

  it('exits 2 with a one-line reason on bad usage', () => {
    const cases: [string[], RegExp][] = [
      [['--clients', '1'], /--clients/],
      [['--bits', '33'], /--bits/],
      [['--dropout', '2'], /--dropout/],
      [['--drop-at', 'r9'], /--drop-at/],
      [['--graph', 'ring'], /--graph/],
      [['--threat', 'malicious', '--clients', '9', '--threshold', '5'], /SECAGG_ERR_BAD_THRESHOLD/],
      [['--inputs', join(dir, 'missing.json')], /--inputs/],
      [['--bogus'], /bogus/],
    ];
    for (const [args, re] of cases) {
      const r = tally('simulate', ...args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).to.equal(2);
      expect(r.stderr, args.join(' ')).to.match(re);
    }
  });
});
