import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tally } from './_proc.js';
import { writeSampleBundle, editLine, recordsOf } from '../audit/_bundle.js';
import type { BundleVerdict } from '../../src/audit/verify.js';

async function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const p = tally(args);
  const code = await p.exit;
  return { code, out: p.out, err: p.err };
}

describe('cli: tally audit verify', () => {
  const dirs: string[] = [];
  after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

  it('exit 0 on a good bundle: one ✔ line per check', async () => {
    const { dir, setup } = writeSampleBundle();
    dirs.push(dir);
    const approved = join(dir, '..', `approved-${Date.now()}.json`);
    dirs.push(approved);
    writeFileSync(approved, JSON.stringify(setup.config.consortium, null, 2));
    const r = await run(['audit', 'verify', dir, '--config', approved]);
    expect(r.code, r.out + r.err).to.equal(0);
    const lines = r.out.split('\n');
    for (const id of ['integrity', 'config', 'protocol', 'privacy', 'secrets']) expect(lines.some((l) => l.startsWith(`✔ ${id}`)), id).to.equal(true);
    expect(r.out).to.match(/every check passed/);
    expect(r.err).to.equal('');
  });

  it('exit 1 with ✘ and the failed findings on a changed ε; --json prints the verdict', async () => {
    const { dir } = writeSampleBundle();
    dirs.push(dir);
    const t = join(dir, 'transcript.jsonl');
    const i = recordsOf(t).findIndex((x) => x.kind === 'dp-event');
    editLine(t, i, (x) => ({ ...x, epsilon: 0.5 }));
    let r = await run(['audit', 'verify', dir]);
    expect(r.code).to.equal(1);
    expect(r.out).to.match(/^✘ integrity/m);
    expect(r.out).to.match(/failed:\n {2}integrity: transcript seq \d+: checkpoint-root/);
    expect(r.out).not.to.match(/at .*\.js:\d+/);
    r = await run(['audit', 'verify', dir, '--json']);
    expect(r.code).to.equal(1);
    const v = JSON.parse(r.out) as BundleVerdict;
    expect(v.ok).to.equal(false);
    expect(v.checks.map((c) => c.id)).to.deep.equal(['integrity', 'config', 'protocol', 'privacy', 'secrets']);
    expect(v.checks[0]!.ok).to.equal(false);
  });

  it('exit 2 on bad usage, without a stack trace', async () => {
    const { dir } = writeSampleBundle();
    dirs.push(dir);
    const cases: string[][] = [
      ['audit'], ['audit', 'nope'], ['audit', 'verify'], ['audit', 'verify', join(dir, 'missing')], ['audit', 'verify', dir, '--bogus'],
      ['audit', 'verify', dir, '--config', join(dir, 'missing.json')], ['audit', 'verify', dir, '--site-log', join(dir, 'missing.jsonl')],
      ['audit', 'verify', dir, 'extra'], ['audit', 'report', dir],
    ];
    for (const args of cases) {
      const r = await run(args);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.err, args.join(' ')).to.match(/^tally audit: .*\(see tally audit --help\)/);
      expect(r.err).not.to.match(/\n\s+at /);
    }
    const h = await run(['audit', 'verify', '--help']);
    expect(h.code).to.equal(0);
    expect(h.out).to.match(/usage: tally audit verify/);
  });

  it('a folder that is not a bundle is a failed check (exit 1)', async () => {
    const { dir } = writeSampleBundle();
    dirs.push(dir);
    const r = await run(['audit', 'verify', join(dir, 'sites')]);
    expect(r.code).to.equal(1);
    expect(r.out).to.match(/✘ integrity .*no readable bundle.json/);
  });

  it('verifies the bundle of a real run (tally demo --in-process), and fails it after one change', async function () {
    this.timeout(120_000);
    const out = mkdtempSync(join(tmpdir(), 'tally-audit-demo-'));
    dirs.push(out);
    const d = await run(['demo', '--quick', '--in-process', '--rounds', '1', '--steps', '1', '--sites', '3', '--quiet', '--out', out]);
    expect(d.code, d.err).to.equal(0);
    const bundle = join(out, readdirSync(out).find((f) => !f.startsWith('.'))!, 'audit');
    let r = await run(['audit', 'verify', bundle, '--json']);
    const v = JSON.parse(r.out) as BundleVerdict;
    expect(v.checks.filter((c) => !c.ok).map((c) => `${c.id}: ${c.reason}`)).to.deep.equal([]);
    expect(r.code).to.equal(0);
    expect(v.checks[0]!.findings.filter((f) => f.log?.startsWith('site:') === true && /witnessed checkpoint/.test(f.what))).to.have.length(3);
    expect(v.checks[3]!.reason).to.match(/recomputed from 1 event/);
    const t = join(bundle, 'transcript.jsonl');
    const i = recordsOf(t).findIndex((x) => x.kind === 'dp-event');
    editLine(t, i, (x) => ({ ...x, epsilon: (x['epsilon'] as number) / 2 }));
    r = await run(['audit', 'verify', bundle]);
    expect(r.code).to.equal(1);
    expect(r.out).to.match(/^✘ integrity/m);
  });

  it('tally audit report writes one self-contained HTML page (exit 0), and refuses a missing --out (exit 2)', async () => {
    const { dir } = writeSampleBundle();
    dirs.push(dir);
    const html = join(dir, '..', `report-${Date.now()}.html`);
    dirs.push(html);
    let r = await run(['audit', 'report', dir, '--out', html]);
    expect(r.code, r.out + r.err).to.equal(0);
    const page = readFileSync(html, 'utf8');
    expect(page).to.match(/^<!DOCTYPE html>/i);
    expect((page.match(/<svg/g) ?? []).length).to.be.at.least(4);
    expect(page).to.not.match(/<script[^>]+src=|<link[^>]+href="https?:/i);
    r = await run(['audit', 'report', dir]);
    expect(r.code).to.equal(2);
    expect(r.err).to.not.match(/\n\s+at /); // no stack trace
  });
});
