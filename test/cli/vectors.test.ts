import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
function tally(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, 'vectors', ...args]);
    let stdout = '', stderr = '';
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('cli: tally vectors usage errors', () => {
  let tmp: string;
  before(() => { tmp = mkdtempSync(join(tmpdir(), 'tally-vectors-usage-')); });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('exits 2 with one line naming the flag or argument for every bad value, with no stack trace', async () => {
    const file = join(tmp, 'a-file.json');
    writeFileSync(file, '{}');
    const cases: [string[], string][] = [
      [['check', '--suite', 'he-sum-v2'], '--suite'], [['check', '--suite'], '--suite'],
      [['check', '--kind', 'nope'], '--kind'], [['check', '--suite', 'dp-v1', '--kind', 'drbg'], '--kind'], [['generate', '--kind', 'drbg', tmp], '--kind'],
      [['check', '--help=1'], '--help'],
      [['check', '--bogus'], '--bogus'],
      [[], 'missing command'], [['frob'], "unknown command 'frob'"], [['check', tmp, 'extra'], "unexpected argument 'extra'"],
      [['check', file], `DIR: ${file} is a file`], [['generate', file], `DIR: ${file} is a file`],
      [['generate', join(file, 'sub')], `${file} is a file, so`], [['check', join(tmp, 'missing')], 'does not exist'],
    ];
    const results = await Promise.all(cases.map(([args]) => tally(...args)));
    cases.forEach(([args, what], i) => {
      const r = results[i]!;
      const label = `${args.join(' ')}: ${r.stderr}`;
      expect(r.status, label).to.equal(2);
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines, label).to.have.length(1);
      expect(lines[0], label).to.contain(what);
      expect(lines[0], label).to.match(/^tally vectors: .*\(see tally vectors --help\)$/);
    });
  });
});
