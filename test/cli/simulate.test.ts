import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const tally = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
/** The same, without blocking, so a table of cases runs in parallel. */
function tallyAsync(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, ...args]);
    let stdout = '', stderr = '';
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Runs `f` over `xs`, at most `width` at a time, keeping the order of the results. */
export async function inBatches<T, R>(xs: readonly T[], width: number, f: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < xs.length; i += width) out.push(...await Promise.all(xs.slice(i, i + width).map(f)));
  return out;
}

/** Every key of a JSON value, recursively. */
function keysOf(v: unknown): string[] {
  if (Array.isArray(v)) return v.flatMap(keysOf);
  if (typeof v === 'object' && v !== null) return Object.entries(v).flatMap(([k, x]) => [k, ...keysOf(x)]);
  return [];
}

describe('cli: tally simulate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-sim-'));

  it('sums the given inputs exactly over the survivors and writes a camelCase report that records the run', () => {
    const bits = 12;
    const inputs = Array.from({ length: 9 }, (_, i) => Array.from({ length: 7 }, (_, j) => (i * 977 + j * 131) % 2 ** bits));
    const inFile = join(dir, 'in.json');
    const outFile = join(dir, 'out.json');
    writeFileSync(inFile, JSON.stringify({ bits, inputs }));
    const r = tally('simulate', '--inputs', inFile, '--dropout', '0.3', '--drop-at', 'mixed', '--seed', 's1', '--graph', 'complete', '--out', outFile);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/self-check against the plaintext sum of the survivors: OK/);
    const rep = JSON.parse(readFileSync(outFile, 'utf8'));
    for (const k of keysOf(rep)) expect(k, 'a JSON key').to.match(/^[a-z][A-Za-z0-9]*$|^\d+$/);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(rep.tally).to.equal(pkg.version);
    expect(rep.node).to.equal(process.version);
    expect(rep.config).to.deep.equal({
      clients: 9, dim: 7, bits, threshold: 5, threat: 'semi-honest', graph: 'complete', neighbors: 8,
      dropout: 0.3, dropAt: 'mixed', corrupt: 0.05, seed: 's1', provider: 'native', inputs: inFile,
    });
    // mixed at 30% of 9: 3 clients, one each from R1, R2 and R4; the one silent in R4 is in the sum.
    expect(rep.drops.map((d: { at: string; told: number; inSum: number }) => [d.at, d.told, d.inSum])).to.deep.equal([['r1', 1, 0], ['r2', 1, 0], ['r4', 1, 1]]);
    expect(rep.survivors.length).to.equal(7);
    expect(rep.survivors.length + rep.notInSum.length).to.equal(9);
    const want = Array.from({ length: 7 }, (_, j) => rep.survivors.reduce((a: number, i: number) => (a + inputs[i]![j]!) % 2 ** bits, 0));
    expect(rep.sum).to.deep.equal(want);
    expect(rep.selfCheck).to.equal(true);
    // Participants are 0-based; the client silent in R4 took part in R0–R2 but not R4.
    const r4 = rep.dropped.find((d: { round: number }) => d.round === 4).index as number;
    expect(rep.rounds.map((x: { round: number }) => x.round)).to.deep.equal([0, 1, 2, 4]); // semi-honest: no R3
    const inRound = (round: number) => rep.rounds.find((x: { round: number }) => x.round === round).participants as number[];
    expect(inRound(0)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(inRound(2)).to.include(r4);
    expect(inRound(4)).to.not.include(r4);
    expect(rep.survivors).to.include(r4);
    for (const k of ['serverSeconds', 'clientSecondsMean', 'bytesUpPerClient', 'bytesDownPerClient', 'maxMessageUpBytes']) expect(rep).to.have.property(k);
    // The run's cost: a node process holds at least a few MiB resident; the wall time covers the server's.
    expect(rep.peakRssBytes).to.be.greaterThan(8 * 2 ** 20);
    expect(rep.wallSeconds).to.be.at.least(rep.serverSeconds);
  });

  it('reruns a report\'s recorded configuration, seed drawn by the first run, to the same sum', () => {
    const a = join(dir, 'a.json'), b = join(dir, 'b.json');
    const first = tally('simulate', '--clients', '24', '--dim', '16', '--bits', '20', '--dropout', '0.2', '--quiet', '--out', a);
    expect(first.status, first.stderr).to.equal(0);
    const c = JSON.parse(readFileSync(a, 'utf8')).config;
    expect(c.seed).to.match(/^[0-9a-f]{32}$/);
    expect(c.graph).to.equal('harary'); // the parameter finder's choice for 24 clients
    const again = tally('simulate', '--clients', String(c.clients), '--dim', String(c.dim), '--bits', String(c.bits), '--threshold', String(c.threshold),
      '--threat', c.threat, '--graph', c.graph, '--neighbors', String(c.neighbors), '--dropout', String(c.dropout), '--drop-at', c.dropAt,
      '--seed', c.seed, '--provider', c.provider, '--quiet', '--out', b);
    expect(again.status, again.stderr).to.equal(0);
    const [ra, rb] = [a, b].map((f) => JSON.parse(readFileSync(f, 'utf8')));
    expect(rb.sum).to.deep.equal(ra.sum);
    expect(rb.survivors).to.deep.equal(ra.survivors);
    expect(rb.rounds.map((x: { participants: number[] }) => x.participants)).to.deep.equal(ra.rounds.map((x: { participants: number[] }) => x.participants));
  });

  it('exits 3 with the error code when the session aborts, and records it', () => {
    const outFile = join(dir, 'abort.json');
    const r = tally('simulate', '--clients', '10', '--dim', '5', '--graph', 'complete', '--dropout', '0.6', '--drop-at', 'r2', '--seed', 'x', '--out', outFile);
    expect(r.status).to.equal(3);
    expect(r.stderr).to.match(/aborted in round 2: SECAGG_ERR_BELOW_THRESHOLD/);
    const rep = JSON.parse(readFileSync(outFile, 'utf8'));
    expect(rep.outcome).to.equal('aborted');
    expect(rep.aborted.code).to.equal('SECAGG_ERR_BELOW_THRESHOLD');
    expect(rep.config.seed).to.equal('x');
  });

  it('defaults to the parameter finder\'s graph and says which threshold rule it applied', () => {
    const semi = tally('simulate', '--clients', '40', '--dim', '5', '--seed', 'h');
    expect(semi.status, semi.stderr).to.equal(0);
    expect(semi.stdout).to.match(/^parameter finder: Harary graph, k=8, t=3: .*semi-honest rule/m);
    expect(semi.stdout).to.match(/^secagg-v1: 40 clients, m=5, b=32, t=3, semi-honest, harary k=8, seed h$/m);
    const mal = tally('simulate', '--clients', '40', '--dim', '5', '--graph', 'harary', '--threat', 'malicious', '--seed', 'm');
    expect(mal.status, mal.stderr).to.equal(0);
    // t = 12 > 2(k+1)/3 = 11.3: the finder applied the malicious-server rule itself; nothing replaced its t.
    expect(mal.stdout).to.match(/^parameter finder: Harary graph, k=16, t=12: .*malicious-server rule: t > 2\(k\+1\)\/3/m);
    expect(mal.stdout).to.match(/^secagg-v1: 40 clients, m=5, b=32, t=12, malicious, harary k=16/m);
  });

  it('warns when an explicit threshold gives up the security of the default', () => {
    const r = tally('simulate', '--clients', '10', '--dim', '5', '--graph', 'complete', '--threshold', '2', '--seed', 'w');
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/warning: --threshold 2 is below the 6 the defaults use: the server together with any 2 colluding neighbours of a client can rebuild its secrets/);
    expect(r.stderr).to.contain('Bonawitz et al. 2017 §6');
    expect(tally('simulate', '--clients', '10', '--dim', '5', '--graph', 'complete', '--threshold', '7', '--seed', 'w').stderr).to.not.contain('warning');
  });

  it('says per drop point how many clients were told to drop and what became of them', () => {
    const r4 = tally('simulate', '--clients', '30', '--dim', '5', '--dropout', '0.1', '--graph', 'complete', '--seed', 'd');
    expect(r4.status, r4.stderr).to.equal(0);
    expect(r4.stdout).to.match(/^dropouts: 3 of 30 clients told to fall silent \(--dropout 0.1, --drop-at mixed\)$/m);
    expect(r4.stdout).to.match(/^ {2}r4: 1 silent from R4 \(masked input sent, no unmasking\): 1 in the sum, 0 not; 1 dropped by the server in R4$/m);
    expect(r4.stdout).to.match(/^survivors: 28 in the sum, 2 not$/m);
    const r3 = tally('simulate', '--clients', '20', '--dim', '5', '--dropout', '0.3', '--drop-at', 'r3', '--graph', 'complete', '--seed', 'd');
    expect(r3.status, r3.stderr).to.equal(0);
    // Semi-honest sessions have no R3: the six fall silent in unmasking, after the server accepted their masked inputs.
    expect(r3.stdout).to.match(/^ {2}r3: 6 silent from R3 \(masked input sent\): 6 in the sum, 0 not; 6 dropped by the server in R4$/m);
    expect(r3.stdout).to.match(/^survivors: 20 in the sum, 0 not$/m);
  });

  it('writes no progress line when stderr is not a terminal', () => {
    const r = tally('simulate', '--clients', '12', '--dim', '5', '--seed', 'p');
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.equal('');
  });

  it('exits 2 with one line naming the flag for a bad value of every option, before any work', async () => {
    const file = join(dir, 'file.json');
    writeFileSync(file, '{}');
    const cases: [string[], string][] = [
      [['--clients', '-5'], '--clients'], [['--clients', '2'], '--clients'], [['--clients', 'abc'], '--clients'], [['--clients', '100001'], '--clients'],
      [['--clients', '3', '--threat', 'malicious'], '--clients'],
      [['--dim', '0'], '--dim'], [['--dim', '1.5'], '--dim'], [['--dim', '-3'], '--dim'],
      [['--bits', '33'], '--bits'], [['--bits', '0'], '--bits'],
      [['--dropout', '2'], '--dropout'], [['--dropout', '-0.1'], '--dropout'],
      [['--drop-at', 'r9'], '--drop-at'],
      [['--threat', 'evil'], '--threat'],
      [['--graph', 'ring'], '--graph'],
      [['--neighbors', '4'], '--neighbors'], [['--graph', 'complete', '--neighbors', '4'], '--neighbors'],
      [['--graph', 'harary', '--neighbors', '3', '--clients', '9'], '--neighbors'], [['--graph', 'harary', '--neighbors', '1'], '--neighbors'],
      [['--graph', 'harary', '--neighbors', '20', '--clients', '20'], '--neighbors'], [['--graph', 'harary', '--neighbors', '2', '--threat', 'malicious'], '--neighbors'],
      [['--graph', 'harary', '--clients', '2'], '--clients'],
      [['--threshold', '1', '--graph', 'complete'], '--threshold'], [['--threshold', '20', '--clients', '20', '--graph', 'complete'], '--threshold'],
      [['--threat', 'malicious', '--clients', '9', '--graph', 'complete', '--threshold', '5'], '--threshold'],
      [['--corrupt', '0.9'], '--corrupt'], [['--corrupt', '1'], '--corrupt'], [['--corrupt', '0.1', '--graph', 'complete'], '--corrupt'],
      [['--seed', ''], '--seed'],
      [['--inputs', join(dir, 'missing.json')], '--inputs'], [['--inputs', file], '--inputs'],
      [['--out', '/nonexistent/dir/r.json'], '--out'], [['--out', dir], '--out'],
      [['--provider', 'openssl'], '--provider'],
      [['--threads', '0'], '--threads'], [['--threads', 'many'], '--threads'],
      [['--quiet=yes'], '--quiet'],
      [['--bogus'], '--bogus'],
    ];
    const results = await inBatches(cases, 6, ([args]) => tallyAsync('simulate', '--dim', '3', ...args));
    cases.forEach(([args, flag], i) => {
      const r = results[i]!;
      const what = `${args.join(' ')}: ${r.stderr}`;
      expect(r.status, what).to.equal(2);
      expect(r.stdout, what).to.equal('');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines, what).to.have.length(1);
      expect(lines[0], what).to.contain(flag);
      expect(lines[0], what).to.match(/^tally simulate: .*\(see tally simulate --help\)$/);
    });
  });

  it('says what would work for a threshold out of range', () => {
    const r = tally('simulate', '--threat', 'malicious', '--clients', '9', '--graph', 'complete', '--threshold', '5');
    expect(r.stderr).to.contain('--threshold expected an integer in [7, 8] with k=8 share holders per client (2(k+1)/3 < T ≤ k against a malicious server');
    const odd = tally('simulate', '--graph', 'harary', '--neighbors', '3', '--clients', '9');
    expect(odd.stderr).to.contain('with 9 clients the Harary graph takes even K (N is odd) in [2, 8], or K = 8');
    expect(tally('simulate', '--clients', '2').stderr).to.contain('at least 3 clients');
  });
});
