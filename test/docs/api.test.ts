import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = new URL('../../../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as {
  name: string;
  exports: Record<string, string | { types: string; default: string }>;
};
const API = readFileSync(new URL('docs/api.md', ROOT), 'utf8');

/** Every module subpath of the package (`tally/secagg`, …) with its declaration file. */
const subpaths = Object.entries(pkg.exports)
  .filter(([key, v]) => key !== './package.json' && typeof v === 'object')
  .map(([key, v]) => ({ name: `${pkg.name}/${key.slice(2)}`, types: fileURLToPath(new URL((v as { types: string }).types, ROOT)) }));

/** Names in the `####` entry headings of the `## \`tally/x\`` section of docs/api.md. */
function documented(subpath: string): Set<string> {
  const sections = API.split(/^(?=## )/m);
  const section = sections.find((s) => s.startsWith(`## \`${subpath}\``));
  expect(section, `docs/api.md has no "## \`${subpath}\`" section`).to.not.equal(undefined);
  const names = new Set<string>();
  for (const line of section!.split('\n')) {
    if (!line.startsWith('#### ')) continue;
    for (const m of line.matchAll(/`([A-Za-z_$][\w$]*)`/g)) names.add(m[1]!);
  }
  return names;
}

/** Every export of a declaration file, types included, read with the TypeScript compiler. */
function declaredExports(files: readonly string[]): Map<string, string[]> {
  const program = ts.createProgram([...files], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, skipLibCheck: true, noEmit: true });
  const checker = program.getTypeChecker();
  const out = new Map<string, string[]>();
  for (const f of files) {
    const sf = program.getSourceFile(f);
    expect(sf, f).to.not.equal(undefined);
    const mod = checker.getSymbolAtLocation(sf!);
    out.set(f, mod === undefined ? [] : checker.getExportsOfModule(mod).map((s) => s.name));
  }
  return out;
}

describe('docs: docs/api.md covers every export', () => {
  const declared = declaredExports(subpaths.map((s) => s.types));

  it('knows the package subpaths', () => {
    expect(subpaths.map((s) => s.name)).to.include.members(['tally/secagg', 'tally/crypto', 'tally/dp', 'tally/he', 'tally/audit', 'tally/errors']);
  });

  for (const { name, types } of subpaths) {
    it(`documents every export of ${name}, and nothing it does not export`, async () => {
      const runtime = Object.keys(await import(name));
      const all = declared.get(types)!;
      // The declaration file lists the values too: a value missing there would mean the wrong file was read.
      expect(all, `${types} misses runtime exports`).to.include.members(runtime);
      expect(all.length, `${types} lists no export`).to.be.greaterThan(0);
      const docs = documented(name);
      const missing = all.filter((n) => !docs.has(n)).sort();
      expect(missing, `exports of ${name} without a "#### \`name\`" entry in docs/api.md`).to.deep.equal([]);
      const stale = [...docs].filter((n) => !all.includes(n)).sort();
      expect(stale, `docs/api.md entries under ${name} that it does not export`).to.deep.equal([]);
    });
  }
});
