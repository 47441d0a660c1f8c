import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeProvider } from '../../src/crypto/native.js';
import { portableProvider } from '../../src/crypto/portable.js';
import { checkVectors, generateVectors, KINDS, type TestCase, type VectorFile, type VectorKind } from '../../src/secagg/vectors/index.js';

// Tests run from dist/test/secagg: the repository root is three levels up.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const VECTORS = join(ROOT, 'protocols', 'secagg-v1', 'vectors');
const SCHEMAS = join(ROOT, 'protocols', 'secagg-v1', 'schemas');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

const load = (kind: string, dir = VECTORS): VectorFile => JSON.parse(readFileSync(join(dir, `${kind}.json`), 'utf8')) as VectorFile;
const label = (tc: TestCase) => `(${tc.tcId}, ${tc.result}): ${tc.comment}`;
const ids = (tc: TestCase) => (tc.clients as { id: number; lastRound?: number }[]);

/** Kind-specific facts each case must show, beyond what the checker recomputes. */
const FACTS: Record<string, (tc: TestCase, msg: string) => void> = {
  'session-complete': (tc, msg) => {
    expect(tc.survivors, msg).to.deep.equal((tc.config as { clientIds: number[] }).clientIds);
    expect(ids(tc).every((c) => c.lastRound === undefined), msg).to.equal(true);
  },
  'session-dropout-r1': (tc, msg) => {
    const gone = ids(tc).filter((c) => c.lastRound !== undefined && c.lastRound <= 1).map((c) => c.id);
    expect(gone, msg).to.not.be.empty;
    for (const id of gone) expect(tc.survivors, msg).to.not.include(id);
  },
  'session-dropout-r2': (tc, msg) => {
    const late = ids(tc).filter((c) => c.lastRound !== undefined && c.lastRound >= 2).map((c) => c.id);
    expect(late, msg).to.not.be.empty;
    for (const id of late) expect(tc.survivors, msg).to.include(id); // its input is in the sum
  },
  'session-below-threshold': (tc, msg) => {
    expect(tc.error, msg).to.equal('SECAGG_ERR_BELOW_THRESHOLD');
    expect(tc.sum, msg).to.equal(undefined);
    const last = (tc.transcript as { from: string; message: string }[]).at(-1)!;
    expect(last.from, msg).to.equal('server');
    expect(last.message.slice(2, 4), msg).to.equal('1f'); // server-abort
  },
  'malicious-server': (tc, msg) => {
    const steps = tc.steps as { server: string; client: string[] }[];
    const last = steps.at(-1)!;
    if (tc.result === 'invalid') {
      // Exactly one client-abort (type 0x0f) carrying the code, and never an unmask message (type 0x05).
      expect(last.client, msg).to.have.length(1);
      expect(last.client[0]!.slice(2, 4), msg).to.equal('0f');
      expect(Buffer.from(last.client[0]!, 'hex').toString('utf8'), msg).to.contain(tc.error);
    } else {
      expect(steps.flatMap((s) => s.client).filter((c) => c.slice(2, 4) === '05'), msg).to.have.length(1);
    }
  },
};

function checkCases(k: VectorKind, file: VectorFile): void {
  for (const provider of [nativeProvider, portableProvider]) {
    it(`every case recomputes with the ${provider.name} provider`, () => {
      for (const tc of file.tests) {
        const msg = label(tc);
        if (tc.result === 'valid') {
          expect(tc.error, msg).to.equal(undefined);
          expect(() => k.check(tc, provider), msg).to.not.throw();
        } else if (tc.result === 'invalid') {
          expect(tc.error, msg).to.match(/^(SECAGG|SHAMIR)_ERR_[A-Z_]+$/);
          expect(() => k.check(tc, provider), msg).to.not.throw();
        } else {
          throw new Error(`${msg}: unknown test result`);
        }
        FACTS[k.kind]?.(tc, msg);
      }
    });
  }
}

for (const k of KINDS) {
  describe(`secagg-v1 vectors: ${k.kind}`, () => {
    const file = load(k.kind);
    it('matches its JSON Schema and names its kind, version and generator', () => {
      const r = checkVectors(VECTORS, { kinds: [k.kind], providers: [] });
      expect(r.filter((x) => !x.ok)).to.deep.equal([]);
      expect(file.kind).to.equal(k.kind);
      expect(file.version).to.equal('secagg-v1');
      expect(file.generator).to.equal('tally vectors generate');
      expect(file.tests.map((t) => t.tcId)).to.deep.equal(file.tests.map((_, i) => i + 1));
    });
    checkCases(k, file);
  });
}

describe('secagg-v1 vectors: the folder', () => {
  let tmp: string;
  beforeEach(() => { tmp = mkdtempSync(join(tmpdir(), 'tally-vectors-')); });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('has both valid and invalid cases, and every session and attack kind of the suite', () => {
    const kinds = KINDS.map((k) => k.kind);
    for (const k of ['key-agreement', 'mask-expansion', 'shamir', 'share-encryption', 'masked-input', 'session-complete',
      'session-dropout-r1', 'session-dropout-r2', 'session-below-threshold', 'malicious-server']) expect(kinds).to.include(k);
    const errors = new Set(load('malicious-server').tests.map((t) => t.error));
    for (const code of ['SECAGG_ERR_BOTH_SHARES_REQUESTED', 'SECAGG_ERR_UNKNOWN_ID', 'SECAGG_ERR_DUPLICATE_ID', 'SECAGG_ERR_BELOW_THRESHOLD',
      'SECAGG_ERR_BAD_SIGNATURE', 'SECAGG_ERR_LOW_ORDER_KEY', 'SECAGG_ERR_SESSION_MISMATCH']) expect(errors, code).to.include(code);
  });

  it('every SECAGG error code used by the vectors is documented in errors.md', () => {
    const doc = readFileSync(join(ROOT, 'protocols', 'secagg-v1', 'errors.md'), 'utf8');
    for (const k of KINDS) {
      for (const tc of load(k.kind).tests) if (tc.error?.startsWith('SECAGG_')) expect(doc, `${k.kind} ${label(tc)}`).to.contain(tc.error);
    }
  });

  it('regenerating gives byte-identical files', () => {
    const written = generateVectors(tmp).map((p) => p.slice(tmp.length + 1)).sort();
    const committed = readdirSync(VECTORS).filter((f) => f.endsWith('.json')).sort();
    expect(written).to.deep.equal(committed);
    for (const f of written) expect(readFileSync(join(tmp, f), 'utf8'), f).to.equal(readFileSync(join(VECTORS, f), 'utf8'));
  });

  it('stays small (dims ≤ 64, n ≤ 8, folder under 1.25 MB)', () => {
    const total = readdirSync(VECTORS).reduce((s, f) => s + readFileSync(join(VECTORS, f)).length, 0);
    expect(total).to.be.below(1_250_000);
  });

  it('reports a tampered vector: one hex digit flipped in a transcript, a share, a mask word', () => {
    cpSync(VECTORS, tmp, { recursive: true });
    const flip = (kind: string, edit: (f: VectorFile) => void) => {
      const f = load(kind, tmp);
      edit(f);
      writeFileSync(join(tmp, `${kind}.json`), JSON.stringify(f));
    };
    const flipHex = (s: string, i: number) => s.slice(0, i) + (s[i] === '0' ? '1' : '0') + s.slice(i + 1);
    flip('session-dropout-r1', (f) => {
      const e = (f.tests[1]!.transcript as { message: string }[])[7]!;
      e.message = flipHex(e.message, e.message.length - 3);
    });
    flip('shamir', (f) => { const s = f.tests[2]!.shares as string[]; s[1] = flipHex(s[1]!, 40); });
    flip('mask-expansion', (f) => { (f.tests[0]!.mask as number[])[0]! ^= 1; });
    const kinds = ['session-dropout-r1', 'shamir', 'mask-expansion', 'config'];
    const bad = checkVectors(tmp, { kinds, schemaDir: SCHEMAS }).filter((r) => !r.ok);
    expect(bad.map((r) => `${r.kind}#${r.tcId}`)).to.deep.equal(['mask-expansion#1', 'shamir#3', 'session-dropout-r1#2']);
    expect(bad[2]!.message).to.match(/^\[native\] .*transcript\[7\].*; \[portable\] /);
  });

  it('reports a schema violation, a missing file and an unknown file', () => {
    cpSync(VECTORS, tmp, { recursive: true });
    const f = load('key-agreement', tmp);
    (f.tests[0] as Record<string, unknown>).pkU = (f.tests[0]!.pkU as string).toUpperCase();
    writeFileSync(join(tmp, 'key-agreement.json'), JSON.stringify(f));
    rmSync(join(tmp, 'drbg.json'));
    writeFileSync(join(tmp, 'extra.json'), '{}');
    const bad = checkVectors(tmp, { providers: [] }).filter((r) => !r.ok);
    expect(bad.map((r) => `${r.kind}#${r.tcId}`)).to.deep.equal(['extra#0', 'drbg#0', 'key-agreement#0']);
    expect(bad[2]!.message).to.contain('/tests/0/pkU');
  });

  describe('tally vectors (CLI exit codes)', () => {
    const tally = (...args: string[]) => spawnSync(process.execPath, [CLI, 'vectors', ...args], { encoding: 'utf8' });

    it('check exits 0 on the committed vectors', () => {
      const r = tally('check', '--kind', 'drbg', '--kind', 'codec', VECTORS);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/^ok: \d+ test cases in 2 kinds/m);
    });

    it('check exits 1 and prints the failing case on a mismatch', () => {
      cpSync(VECTORS, tmp, { recursive: true });
      const f = load('codec', tmp);
      const tc = f.tests.find((t) => t.result === 'invalid')!;
      (tc as Record<string, unknown>).error = 'SECAGG_ERR_UNKNOWN_ID';
      writeFileSync(join(tmp, 'codec.json'), JSON.stringify(f));
      const r = tally('check', '--kind', 'codec', tmp);
      expect(r.status, r.stderr).to.equal(1);
      expect(r.stdout).to.contain(`FAIL codec tcId ${tc.tcId}: [native] expected error SECAGG_ERR_UNKNOWN_ID, got SECAGG_ERR_BAD_MESSAGE`);
      expect(r.stdout).to.match(/^FAILED: .* 1 failure\(s\)/m);
    });

    it('exits 2 on a usage error and 0 on --help', () => {
      expect(tally().status).to.equal(2);
      expect(tally('frobnicate').status).to.equal(2);
      expect(tally('check', '--kind', 'nope').status).to.equal(2);
      const help = tally('--help');
      expect(help.status).to.equal(0);
      expect(help.stdout).to.contain('tally vectors check');
    });
  });
});
