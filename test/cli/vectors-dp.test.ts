import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Tests run from dist/test/cli: the repository root is three levels up.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DP = join(ROOT, 'protocols', 'dp-v1', 'vectors');
const SECAGG = join(ROOT, 'protocols', 'secagg-v1', 'vectors');
const WIRE = join(ROOT, 'protocols', 'wire-v1', 'vectors');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

const tally = (...args: string[]) => spawnSync(process.execPath, [CLI, 'vectors', ...args], { encoding: 'utf8' });

describe('tally vectors --suite (dp-v1, secagg-v1 and wire-v1)', () => {
  let tmp: string;
  beforeEach(() => { tmp = mkdtempSync(join(tmpdir(), 'tally-cli-vectors-')); });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('check without DIR checks both suites in their default folders', () => {
    const r = tally('check', '--kind', 'drbg', '--kind', 'random-source');
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^ok: 4 test cases in 1 kinds checked with the native and portable providers, 0 failure\(s\) \(secagg-v1: .*secagg-v1[/\\]vectors\)$/m);
    expect(r.stdout).to.match(/^ok: \d+ test cases in 1 kinds recomputed with the dp samplers and encoder, 0 failure\(s\) \(dp-v1: .*dp-v1[/\\]vectors\)$/m);
  });

  it('--suite dp-v1 checks only the dp-v1 folder; --suite secagg-v1 only the secagg-v1 one', () => {
    const dp = tally('check', '--suite', 'dp-v1', '--kind', 'poisson');
    expect(dp.status, dp.stderr).to.equal(0);
    expect(dp.stdout).to.contain('(dp-v1: ');
    expect(dp.stdout).to.not.contain('secagg-v1');
    const sa = tally('check', '--suite', 'secagg-v1', '--kind', 'drbg');
    expect(sa.status, sa.stderr).to.equal(0);
    expect(sa.stdout).to.not.contain('dp-v1');
  });

  it('generate --suite dp-v1 DIR writes the committed files byte for byte, and check DIR infers the suite', () => {
    const g = tally('generate', '--suite', 'dp-v1', tmp);
    expect(g.status, g.stderr).to.equal(0);
    expect(g.stdout).to.contain(`wrote 9 dp-v1 vector files to ${tmp}`);
    const names = readdirSync(tmp).sort();
    expect(names).to.deep.equal(readdirSync(DP).filter((f) => f.endsWith('.json')).sort());
    for (const f of names) expect(readFileSync(join(tmp, f), 'utf8'), f).to.equal(readFileSync(join(DP, f), 'utf8'));
    const c = tally('check', tmp);
    expect(c.status, c.stderr).to.equal(0);
    expect(c.stdout).to.match(/^ok: \d+ test cases in 9 kinds recomputed/m);
    expect(c.stdout).to.contain(`(dp-v1: ${tmp})`);
  });

  it('generate --suite wire-v1 DIR writes the committed files byte for byte, and check DIR infers the suite', () => {
    const g = tally('generate', '--suite', 'wire-v1', tmp);
    expect(g.status, g.stderr).to.equal(0);
    expect(g.stdout).to.contain(`wrote 1 wire-v1 vector files to ${tmp}`);
    const names = readdirSync(tmp).sort();
    expect(names).to.deep.equal(readdirSync(WIRE).filter((f) => f.endsWith('.json')).sort());
    for (const f of names) expect(readFileSync(join(tmp, f), 'utf8'), f).to.equal(readFileSync(join(WIRE, f), 'utf8'));
    const c = tally('check', tmp);
    expect(c.status, c.stderr).to.equal(0);
    expect(c.stdout).to.match(/^ok: \d+ test cases in 1 kinds recomputed with the envelope codec, 0 failure\(s\) \(wire-v1: /m);
    const wrong = tally('check', '--suite', 'wire-v1', '--kind', 'drbg');
    expect(wrong.status).to.equal(2);
    expect(wrong.stderr).to.contain("unknown kind 'drbg' in wire-v1");
  });

  it('check DIR exits 1 and names the failing dp case on a mismatch', () => {
    cpSync(DP, tmp, { recursive: true });
    const f = JSON.parse(readFileSync(join(tmp, 'skellam.json'), 'utf8')) as { tests: { samples?: number[] }[] };
    f.tests[0]!.samples![0]! += 1;
    writeFileSync(join(tmp, 'skellam.json'), JSON.stringify(f));
    const r = tally('check', '--kind', 'skellam', tmp);
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stdout).to.match(/^FAIL skellam tcId 1: samples: expected /m);
    expect(r.stdout).to.match(/^FAILED: .* 1 failure\(s\) \(dp-v1: /m);
  });

  it('a secagg-v1 DIR is still checked as secagg-v1 without --suite', () => {
    cpSync(join(SECAGG, 'drbg.json'), join(tmp, 'drbg.json'));
    const r = tally('check', '--kind', 'drbg', tmp);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.contain(`(secagg-v1: ${tmp})`);
  });

  it('checking dp-v1 files as secagg-v1 fails (exit 1)', () => {
    cpSync(DP, tmp, { recursive: true });
    const r = tally('check', '--suite', 'secagg-v1', tmp);
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stdout).to.contain('FAIL random-source: random-source.json is not a known vector kind');
  });

  it('exits 2 on an unknown suite, a kind of another suite, a mixed folder, and shows --suite in --help', () => {
    expect(tally('check', '--suite', 'he-sum-v2').status).to.equal(2);
    const wrongKind = tally('check', '--suite', 'dp-v1', '--kind', 'drbg');
    expect(wrongKind.status).to.equal(2);
    expect(wrongKind.stderr).to.contain("unknown kind 'drbg' in dp-v1");
    cpSync(join(DP, 'poisson.json'), join(tmp, 'poisson.json'));
    cpSync(join(SECAGG, 'drbg.json'), join(tmp, 'drbg.json'));
    const mixed = tally('check', tmp);
    expect(mixed.status).to.equal(2);
    expect(mixed.stderr).to.contain('holds vectors of several suites (dp-v1, secagg-v1)');
    const help = tally('--help');
    expect(help.status).to.equal(0);
    expect(help.stdout).to.contain('--suite SUITE');
    expect(help.stdout).to.contain('discrete-gaussian');
  });
});
