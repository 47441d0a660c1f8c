import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = new URL('../../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, ROOT), 'utf8');
const MARKER = '<!-- examples/secure-sum.ts -->';

/** The fenced code block that follows the marker line in the README. */
function readmeExample(readme: string): string {
  const at = readme.indexOf(MARKER);
  expect(at, `README.md has no ${MARKER} marker`).to.be.greaterThan(-1);
  const rest = readme.slice(at + MARKER.length);
  const m = /^\n```ts\n([\s\S]*?)^```$/m.exec(rest);
  expect(m, 'no ```ts block right after the marker').to.not.equal(null);
  expect(m!.index, 'the ```ts block must follow the marker line directly').to.equal(0);
  return m![1]!;
}

describe('docs: the README library example', () => {
  const source = read('examples/secure-sum.ts');

  it('is byte-identical to examples/secure-sum.ts', () => {
    expect(readmeExample(read('README.md'))).to.equal(source);
  });

  it('imports only the public package exports', () => {
    const specifiers = [...source.matchAll(/\bfrom\s+'([^']+)'/g)].map((m) => m[1]);
    expect(specifiers).to.deep.equal(['tally/secagg', 'tally/crypto']);
  });

  // Client u's input is 1000·u + j at position j, so the sum over 1…4 is 10000 + 4j.
  const OUTPUT = ['dropped: 5', 'sum of clients 1, 2, 3, 4: 10000 10004 10008 10012', 'matches the plaintext sum', ''].join('\n');

  it('runs: client 5 drops after R1 and the sum of the other four is exact', () => {
    const script = fileURLToPath(new URL('dist/examples/secure-sum.js', ROOT));
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.equal(OUTPUT);
  });

  it('shows that output in the README', () => {
    expect(read('README.md')).to.include('It prints:\n\n```\n' + OUTPUT + '```\n');
  });
});
