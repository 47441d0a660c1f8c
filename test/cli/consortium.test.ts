import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConsortium } from '../../src/federation/consortium.js';
import { readSiteKey } from '../../src/federation/keys.js';
import { chooseSessionParams } from '../../src/secagg/params.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function tally(args: string[], cwd?: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, ...args], { ...(cwd ? { cwd } : {}) });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

async function inBatches<T, R>(xs: readonly T[], width: number, f: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < xs.length; i += width) out.push(...await Promise.all(xs.slice(i, i + width).map(f)));
  return out;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const mode = (f: string) => statSync(f).mode & 0o777;
const unix = process.platform !== 'win32';

describe('cli: tally consortium init and tally keygen', () => {
  const root = mkdtempSync(join(tmpdir(), 'tally-cli-consortium-'));

  it('init writes a consortium that loadConsortium accepts, with keys of mode 0600, and prints the next commands', async () => {
    const r = await tally(['consortium', 'init', '--dir', 'trial', '--sites', '5'], root);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.equal('');
    const dir = join(root, 'trial');
    const c = loadConsortium(join(dir, 'consortium.json'));
    expect(c.sites.map((s) => s.id)).to.deep.equal(['site-1', 'site-2', 'site-3', 'site-4', 'site-5']);
    // Up to 100 sites the default is the complete graph, with t = ⌊n/2⌋ + 1.
    const p = chooseSessionParams({ n: 5, graph: 'complete' });
    expect(c.config.aggregation).to.deep.equal({ threat: 'semi-honest', graph: 'complete', threshold: p.t, bits: 32, dim: 10 });
    expect(p.t).to.equal(3);
    expect(c.config.coordinator).to.deep.include({ host: '127.0.0.1', port: 7455 });
    expect(c.tls!.clientCertificates).to.equal(false);
    for (const f of [c.tls!.ca, c.tls!.cert, c.tls!.key, join(dir, 'tls', 'ca.key')]) expect(existsSync(f), f).to.equal(true);
    for (let i = 1; i <= 5; i++) {
      const f = join(dir, 'keys', `site-${i}.key`);
      expect(hex(readSiteKey(f).publicKey)).to.equal(hex(c.sites[i - 1]!.publicKey));
      if (unix) expect(mode(f), f).to.equal(0o600);
    }
    if (unix) for (const f of [c.tls!.key, join(dir, 'tls', 'ca.key')]) expect(mode(f), f).to.equal(0o600);
    expect(existsSync(join(dir, 'tls', 'sites'))).to.equal(false);
    // What was written, and what to run next, with paths as typed.
    expect(r.stdout).to.include('wrote trial/consortium.json');
    expect(r.stdout).to.include('5 site key files');
    expect(r.stdout).to.include('trial/tls/ca.crt');
    expect(r.stdout).to.include(`consortium hash: ${hex(c.hash)}`);
    expect(r.stdout).to.include('tally serve --config trial/consortium.json');
    expect(r.stdout).to.include('tally join --config trial/consortium.json --key trial/keys/site-1.key --vector FILE');
  });

  it('init refuses an existing consortium (exit 2, CONSORTIUM_ERR_EXISTS, nothing changed) and replaces it with --force', async () => {
    const dir = join(root, 'again');
    expect((await tally(['consortium', 'init', '--dir', dir, '--sites', '3'])).status).to.equal(0);
    const text = readFileSync(join(dir, 'consortium.json'), 'utf8');
    const key = readFileSync(join(dir, 'keys', 'site-1.key'), 'utf8');
    const r = await tally(['consortium', 'init', '--dir', dir, '--sites', '3']);
    expect(r.status).to.equal(2);
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    expect(r.stderr).to.include('CONSORTIUM_ERR_EXISTS');
    expect(r.stderr).to.not.match(/\n\s+at /);
    expect(readFileSync(join(dir, 'consortium.json'), 'utf8')).to.equal(text);
    expect(readFileSync(join(dir, 'keys', 'site-1.key'), 'utf8')).to.equal(key);
    const f = await tally(['consortium', 'init', '--dir', dir, '--sites', '3', '--force']);
    expect(f.status, f.stderr).to.equal(0);
    expect(readFileSync(join(dir, 'keys', 'site-1.key'), 'utf8')).to.not.equal(key);
    const c = loadConsortium(join(dir, 'consortium.json'));
    expect(hex(readSiteKey(join(dir, 'keys', 'site-1.key')).publicKey)).to.equal(hex(c.sites[0]!.publicKey));
  });

  it('init takes every parameter, and --mtls writes a client certificate per site', async () => {
    const dir = join(root, 'custom');
    const r = await tally(['consortium', 'init', '--dir', dir, '--sites', '7', '--host', 'localhost', '--port', '9001', '--dim', '100', '--bits', '16',
      '--graph', 'harary', '--neighbors', '4', '--threshold', '3', '--name', 'hospitals', '--mtls']);
    expect(r.status, r.stderr).to.equal(0);
    const c = loadConsortium(join(dir, 'consortium.json'));
    expect(c.config.name).to.equal('hospitals');
    expect(c.config.coordinator).to.deep.include({ host: 'localhost', port: 9001 });
    expect(c.config.aggregation).to.deep.equal({ threat: 'semi-honest', graph: 'harary', degree: 4, threshold: 3, bits: 16, dim: 100 });
    expect(c.tls!.clientCertificates).to.equal(true);
    for (let i = 1; i <= 7; i++) {
      expect(existsSync(join(dir, 'tls', 'sites', `site-${i}.crt`))).to.equal(true);
      if (unix) expect(mode(join(dir, 'tls', 'sites', `site-${i}.key`))).to.equal(0o600);
    }
    const m = await tally(['consortium', 'init', '--dir', join(root, 'malicious'), '--sites', '6', '--threat', 'malicious', '--graph', 'complete']);
    expect(m.status, m.stderr).to.equal(0);
    expect(loadConsortium(join(root, 'malicious', 'consortium.json')).config.aggregation).to.deep.equal({ threat: 'malicious', graph: 'complete', threshold: 5, bits: 32, dim: 10 });
  });

  it('exits 2 with one line naming the flag for every bad value, before writing anything', async () => {
    const cases: [string[], string][] = [
      [['--sites', '5'], '--dir'],
      [[], '--sites'],
      [['--sites', '2'], '--sites'],
      [['--sites', '-5'], '--sites'],
      [['--sites', '1.5'], '--sites'],
      [['--sites', 'many'], '--sites'],
      [['--sites', ''], '--sites'],
      [['--sites', '100001'], '--sites'],
      [['--sites', '3', '--threat', 'malicious'], '--sites'],
      [['--sites', '5', '--threat', 'evil'], '--threat'],
      [['--sites', '5', '--port', '0'], '--port'],
      [['--sites', '5', '--port', '-1'], '--port'],
      [['--sites', '5', '--port', '65536'], '--port'],
      [['--sites', '5', '--dim', '0'], '--dim'],
      [['--sites', '5', '--dim', String(2 ** 28 + 1)], '--dim'],
      [['--sites', '5', '--bits', '33'], '--bits'],
      [['--sites', '5', '--host', 'a b'], '--host'],
      [['--sites', '5', '--graph', 'ring'], '--graph'],
      [['--sites', '5', '--neighbors', '2'], '--neighbors'],
      [['--sites', '7', '--graph', 'harary', '--neighbors', '3'], '--neighbors'],
      [['--sites', '7', '--graph', 'harary', '--neighbors', '7'], '--neighbors'],
      [['--sites', '7', '--graph', 'harary', '--neighbors', '-2'], '--neighbors'],
      [['--sites', '5', '--graph', 'complete', '--threshold', '1'], '--threshold'],
      [['--sites', '5', '--graph', 'complete', '--threshold', '5'], '--threshold'],
      [['--sites', '5', '--graph', 'complete', '--threshold', '-3'], '--threshold'],
      [['--sites', '6', '--graph', 'complete', '--threat', 'malicious', '--threshold', '3'], '--threshold'],
      [['--sites', '5', '--name', ''], '--name'],
      [['--sites', '5', '--bogus'], '--bogus'],
      [['--sites', '5', 'extra'], 'extra'],
    ];
    const results = await inBatches(cases.map((c, i) => [c[0], i] as const), 8, async ([args, i]) => {
      const dir = join(root, `bad-${i}`);
      // The first case is the one without --dir.
      return { dir, r: await tally(['consortium', 'init', ...(i === 0 ? [] : ['--dir', dir]), ...args]) };
    });
    results.forEach(({ dir, r }, i) => {
      const [args, flag] = cases[i]!;
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).to.equal(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines, args.join(' ')).to.have.length(1);
      expect(lines[0], args.join(' ')).to.include(flag);
      expect(existsSync(dir), args.join(' ')).to.equal(false);
    });
  });

  it('answers --help with 0 and a missing or unknown sub-command with 2', async () => {
    const [help, initHelp, none, unknown, keygenHelp, top] = await Promise.all([
      tally(['consortium', '--help']), tally(['consortium', 'init', '--help']), tally(['consortium']), tally(['consortium', 'create']),
      tally(['keygen', '--help']), tally(['--help']),
    ]);
    expect(help.status).to.equal(0);
    expect(initHelp.status).to.equal(0);
    expect(initHelp.stdout).to.include('--sites N');
    expect(none.status).to.equal(2);
    expect(unknown.status).to.equal(2);
    expect(unknown.stderr).to.include("'create'");
    expect(keygenHelp.status).to.equal(0);
    expect(keygenHelp.stdout).to.include('--out FILE');
    expect(top.stdout).to.match(/^ {2}consortium /m);
    expect(top.stdout).to.match(/^ {2}keygen /m);
  });

  it('keygen writes a 0600 identity, prints its public key, and never overwrites', async () => {
    const dir = join(root, 'kg');
    mkdirSync(dir);
    const file = join(dir, 'site.key');
    const r = await tally(['keygen', '--out', file]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^[0-9a-f]{64}\n$/);
    expect(r.stdout.trim()).to.equal(hex(readSiteKey(file).publicKey));
    if (unix) expect(mode(file)).to.equal(0o600);
    const before = readFileSync(file, 'utf8');
    const again = await tally(['keygen', '--out', file]);
    expect(again.status).to.equal(2);
    expect(again.stderr).to.include('CONSORTIUM_ERR_EXISTS');
    expect(readFileSync(file, 'utf8')).to.equal(before);
    const [missing, noDir, extra] = await Promise.all([tally(['keygen']), tally(['keygen', '--out', join(dir, 'absent', 'k.key')]), tally(['keygen', '--out', file, '--force'])]);
    expect(missing.status).to.equal(2);
    expect(missing.stderr).to.include('--out');
    expect(noDir.status).to.equal(2);
    expect(noDir.stderr).to.include('ENOENT');
    expect(extra.status).to.equal(2);
    for (const x of [again, missing, noDir, extra]) expect(x.stderr).to.not.match(/\n\s+at /);
  });
});
