import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * `tally/he` must not load node-seal (an optional dependency) when it is
 * imported, nor `tally/audit` Vega or Vega-Lite. Each check runs in a fresh
 * Node.js process whose module resolver refuses those packages (a hook
 * registered with `--import`), so any import of them, static or dynamic,
 * from anywhere in the graph fails the import of the subpath itself.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FORBIDDEN = /^(node-seal|vega|vega-lite)(\/|$)/;
const HOOKS = `export async function resolve(specifier, context, next) {
  if (${FORBIDDEN}.test(specifier)) throw new Error('refused by the test: ' + specifier);
  return next(specifier, context);
}`;
const REGISTER = `data:text/javascript,${encodeURIComponent(
  `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)});`,
)}`;

/** Runs an ES module script in a fresh process that cannot resolve node-seal, vega or vega-lite; its stdout's last line, parsed. */
function isolated(script: string): unknown {
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  const r = spawnSync(process.execPath, ['--import', REGISTER, '--input-type=module', '-e', script], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
  expect(r.status, `child failed:\n${r.stderr}`).to.equal(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

describe('he: the tally/he subpath', () => {
  it('imports, and does the parameter arithmetic, without loading node-seal', () => {
    const out = isolated(`
      const he = await import('tally/he');
      const params = he.heParams(3, 16);
      console.log(JSON.stringify({ set: params.set, bytes: he.envelopeBytes(params, 'site', 5000), heap: (await he.sealHeapBytes()) ?? null }));
    `);
    expect(out).to.deep.equal({ set: 'bgv-4096-q60', bytes: 45 + 2 * 32962, heap: null });
  });

  it('the check works: the first call that needs SEAL does import node-seal, and the child refuses it', () => {
    const out = isolated(`
      const he = await import('tally/he');
      let code = null, message = '';
      try { await he.loadSeal(); } catch (e) { code = e.code; message = e.message; }
      console.log(JSON.stringify({ code, refused: message.includes('refused by the test: node-seal') }));
    `);
    expect(out).to.deep.equal({ code: 'HE_ERR_UNAVAILABLE', refused: true });
  });
});

describe('audit: the tally/audit subpath', () => {
  it('imports without loading Vega or Vega-Lite', () => {
    const out = isolated(`
      const audit = await import('tally/audit');
      let refused = false;
      try { await import('vega'); } catch (e) { refused = e.message.includes('refused by the test: vega'); }
      console.log(JSON.stringify({ writeReport: typeof audit.writeReport, refused }));
    `);
    expect(out).to.deep.equal({ writeReport: 'function', refused: true });
  });
});
