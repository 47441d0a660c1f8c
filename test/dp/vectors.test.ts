import { expect } from 'chai';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { RandomSource } from '../../src/dp/_random.js';
import { DiscreteGaussianSampler } from '../../src/dp/discrete-gaussian.js';
import { checkDpVectors, DP_KINDS, generateDpVectors, type DpVectorKind, type TestCase, type VectorFile } from '../../src/dp/vectors/index.js';

// Tests run from dist/test/dp: the repository root is three levels up.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const VECTORS = join(ROOT, 'protocols', 'dp-v1', 'vectors');
const SCHEMAS = join(ROOT, 'protocols', 'dp-v1', 'schemas');
const PTRS = 'binary64 PTRS, not bit-exact across implementations that do not follow the same floating-point steps';

const load = (kind: string, dir = VECTORS): VectorFile => JSON.parse(readFileSync(join(dir, `${kind}.json`), 'utf8')) as VectorFile;
const label = (tc: TestCase) => `(${tc.tcId}, ${tc.result}): ${tc.comment}`;
const valid = (kind: string) => load(kind).tests.filter((t) => t.result === 'valid');
const kindOf = (name: string) => DP_KINDS.find((k) => k.kind === name)!;

/** Counts calls of the named private methods of `proto` while `f` runs. */
function countCalls(proto: object, names: string[], f: () => void): Record<string, number> {
  const counts: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  const target = proto as Record<string, (...a: unknown[]) => unknown>;
  const originals = names.map((n) => target[n]!);
  names.forEach((n, i) => { target[n] = function (this: unknown, ...a: unknown[]) { counts[n]!++; return originals[i]!.apply(this, a); }; });
  try { f(); } finally { names.forEach((n, i) => { target[n] = originals[i]!; }); }
  return counts;
}

/** Kind-specific facts each file must show, beyond what the checker recomputes. */
const FACTS: Record<string, (file: VectorFile) => void> = {
  'random-source': (f) => {
    // u32 outputs are the DRBG keystream read as little-endian words (independent of _random.ts).
    const tc = f.tests.find((t) => t.op === 'u32')!;
    const b = new DeterministicRng(tc.seed as string).bytes(4 * (tc.count as number));
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    expect(tc.outputs).to.deep.equal(Array.from({ length: tc.count as number }, (_, i) => dv.getUint32(4 * i, true)));
    for (const t of f.tests.filter((x) => x.op === 'uniformInt')) {
      const n = Number(((t.args as { n: number | string }).n));
      for (const v of t.outputs as number[]) expect(v, label(t)).to.be.within(0, n - 1);
    }
    const big = f.tests.find((t) => String(t.comment).includes('continues in bigints'))!;
    const calls = countCalls(RandomSource.prototype, ['expNegLoopBig'], () => kindOf('random-source').check(big));
    expect(calls.expNegLoopBig, label(big)).to.be.above(0);
  },
  'discrete-gaussian': (f) => {
    const paths = (tc: TestCase) => countCalls(DiscreteGaussianSampler.prototype, ['acceptApprox', 'acceptBig'], () => kindOf('discrete-gaussian').check(tc));
    const byComment = (s: string) => f.tests.find((t) => String(t.comment).includes(s))!;
    expect(paths(byComment('σ = 300'))).to.deep.equal({ acceptApprox: 0, acceptBig: 0 }); // all-integer path
    expect(paths(byComment('σ = 10^4')).acceptApprox).to.be.above(0);
    const tie = paths(byComment('tie-break'));
    expect(tie.acceptApprox).to.be.above(0);
    expect(tie.acceptBig).to.be.above(0);
    expect(paths(byComment('σ = 2^26')).acceptBig).to.be.above(0);
    expect(f.tests.some((t) => t.result === 'valid' && typeof t.sigma === 'object' && (t.sigma2 as { den: number }).den === 3)).to.equal(true);
  },
  poisson: (f) => {
    for (const t of f.tests.filter((x) => x.result === 'valid')) {
      const { num, den } = t.mean as { num: number; den: number };
      expect(t.method, label(t)).to.equal(num / den <= 2 ** 40 ? 'exact' : 'ptrs-binary64');
      if (t.method === 'ptrs-binary64') expect(t.comment, label(t)).to.contain(PTRS);
    }
    expect(f.tests.filter((t) => t.method === 'exact')).to.have.length.above(2);
  },
  skellam: (f) => {
    for (const t of f.tests.filter((x) => x.method === 'ptrs-binary64')) expect(t.comment, label(t)).to.contain(PTRS);
    expect(f.tests.filter((t) => t.method === 'exact')).to.have.length.above(2);
  },
  rotation: (f) => {
    for (const t of f.tests.filter((x) => x.result === 'valid')) {
      (t.x as number[]).forEach((v, i) => expect((t.unrotated as number[])[i], label(t)).to.be.closeTo(v, 1e-12));
    }
  },
  rounding: (f) => {
    expect(f.tests.some((t) => (t.roundingTries as number) >= 2)).to.equal(true);
    for (const t of f.tests) {
      expect(t.wordsUsed, label(t)).to.equal((t.roundingTries as number) * (t.rounded as number[]).length);
      expect((t.roundedNorm as number), label(t)).to.be.at.most(t.normBound as number);
    }
  },
  encode: (f) => {
    const kinds = new Set(f.tests.filter((t) => t.result === 'valid').map((t) => (t.params as { noise: { kind: string } }).noise.kind));
    expect([...kinds].sort()).to.deep.equal(['ddg', 'none', 'skellam']);
    expect(f.tests.map((t) => t.error)).to.include('DP_ERR_ROUNDING_FAILED');
    for (const t of f.tests.filter((x) => x.result === 'valid')) {
      const bits = (t.params as { bits: number }).bits;
      for (const v of t.encoded as number[]) expect(v, label(t)).to.be.below(2 ** bits);
      expect((t.encoded as number[]).length, label(t)).to.be.at.most(64);
    }
  },
  'decode-sum': (f) => {
    // Without noise the decoded sum is Σ clipped updates up to the rounding: ‖error‖₂ ≤ n·√d / scale.
    for (const t of f.tests.filter((x) => x.result === 'valid' && (x.params as { noise: { kind: string } }).noise.kind === 'none')) {
      const clients = t.clients as { update: number[] }[];
      const { clip, scale } = t.params as { clip: number; scale: number };
      const d = (t.sum as number[]).length;
      const want = (t.decoded as number[]).map((_, i) => clients.reduce((s, c) => {
        const norm = Math.hypot(...c.update);
        return s + c.update[i]! * Math.min(1, clip / norm);
      }, 0));
      const err = Math.hypot(...want.map((w, i) => w - (t.decoded as number[])[i]!));
      expect(err, label(t)).to.be.at.most((clients.length * Math.sqrt(d)) / scale);
    }
  },
};

function checkCases(k: DpVectorKind, file: VectorFile): void {
  it('every case recomputes', () => {
    for (const tc of file.tests) {
      const msg = label(tc);
      if (tc.result === 'valid') {
        expect(tc.error, msg).to.equal(undefined);
      } else if (tc.result === 'invalid') {
        expect(tc.error, msg).to.match(/^DP_ERR_[A-Z_]+$/);
      } else {
        throw new Error(`${msg}: unknown test result`);
      }
      expect(() => k.check(tc), msg).to.not.throw();
    }
  });
}

for (const k of DP_KINDS) {
  describe(`dp-v1 vectors: ${k.kind}`, () => {
    const file = load(k.kind);
    it('matches its JSON Schema and names its kind, version and generator', () => {
      expect(checkDpVectors(VECTORS, { kinds: [k.kind], recompute: false })).to.deep.equal([]);
      expect(file.kind).to.equal(k.kind);
      expect(file.version).to.equal('dp-v1');
      expect(file.generator).to.equal('tally vectors generate');
      expect(file.tests.map((t) => t.tcId)).to.deep.equal(file.tests.map((_, i) => i + 1));
      for (const t of file.tests.filter((x) => typeof x.seed === 'string')) expect(t.seed, label(t)).to.match(new RegExp(`^tally/vectors/dp-v1/${k.kind}/${t.tcId}/`));
    });
    checkCases(k, file);
    if (FACTS[k.kind] !== undefined) it('shows what the kind is meant to exercise', () => FACTS[k.kind]!(file));
  });
}

describe('dp-v1 vectors: the folder', () => {
  let tmp: string;
  beforeEach(() => { tmp = mkdtempSync(join(tmpdir(), 'tally-dp-vectors-')); });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('has valid and invalid cases wherever the library validates its input', () => {
    for (const kind of ['discrete-gaussian', 'poisson', 'skellam', 'rotation', 'encode', 'decode-sum']) {
      const results = new Set(load(kind).tests.map((t) => t.result));
      expect([...results].sort(), kind).to.deep.equal(['invalid', 'valid']);
    }
    expect(valid('discrete-gaussian').length).to.be.at.least(8);
  });

  it('regenerating gives byte-identical files', () => {
    const written = generateDpVectors(tmp).map((p) => p.slice(tmp.length + 1)).sort();
    const committed = readdirSync(VECTORS).filter((f) => f.endsWith('.json')).sort();
    expect(written).to.deep.equal(committed);
    for (const f of written) expect(readFileSync(join(tmp, f), 'utf8'), f).to.equal(readFileSync(join(VECTORS, f), 'utf8'));
  });

  it('stays small (dims ≤ 64, folder under 400 KB)', () => {
    const total = readdirSync(VECTORS).reduce((s, f) => s + readFileSync(join(VECTORS, f)).length, 0);
    expect(total).to.be.below(400_000);
  });

  it('reports tampered vectors: a sample, a word count, an encoded word, the last digit of a decoded double, an error code', () => {
    cpSync(VECTORS, tmp, { recursive: true });
    const edit = (kind: string, f: (v: VectorFile) => void) => {
      const v = load(kind, tmp);
      f(v);
      writeFileSync(join(tmp, `${kind}.json`), JSON.stringify(v));
    };
    edit('discrete-gaussian', (v) => { (v.tests[2]!.samples as number[])[5]! += 1; });
    edit('poisson', (v) => { (v.tests[1] as Record<string, unknown>).wordsUsed = (v.tests[1]!.wordsUsed as number) + 1; });
    edit('encode', (v) => { (v.tests[0]!.encoded as number[])[0]! ^= 1; });
    edit('decode-sum', (v) => { const d = v.tests[0]!.decoded as number[]; d[0] = d[0] === 0 ? Number.MIN_VALUE : d[0]! + Math.abs(d[0]!) * 2 ** -52; });
    edit('rotation', (v) => { (v.tests.find((t) => t.result === 'invalid') as Record<string, unknown>).error = 'DP_ERR_WRAP_RISK'; });
    const bad = checkDpVectors(tmp, { schemaDir: SCHEMAS }).filter((r) => !r.ok);
    const rotBad = load('rotation').tests.find((t) => t.result === 'invalid')!.tcId;
    expect(bad.map((r) => `${r.kind}#${r.tcId}`)).to.deep.equal(['discrete-gaussian#3', 'poisson#2', 'rotation#' + rotBad, 'encode#1', 'decode-sum#1']);
    expect(bad[0]!.message).to.match(/^samples: expected /);
    expect(bad[2]!.message).to.contain('expected error DP_ERR_WRAP_RISK, got DP_ERR_BAD_PARAM');
  });

  it('reports a schema violation, a missing file and an unknown file', () => {
    cpSync(VECTORS, tmp, { recursive: true });
    const f = load('rotation', tmp);
    (f.tests[0] as Record<string, unknown>).signs = (f.tests[0]!.signs as string).toUpperCase() + 'X';
    writeFileSync(join(tmp, 'rotation.json'), JSON.stringify(f));
    rmSync(join(tmp, 'poisson.json'));
    writeFileSync(join(tmp, 'extra.json'), '{}');
    const bad = checkDpVectors(tmp, { recompute: false }).filter((r) => !r.ok);
    expect(bad.map((r) => `${r.kind}#${r.tcId}`)).to.deep.equal(['extra#0', 'poisson#0', 'rotation#0']);
    expect(bad[2]!.message).to.contain('/tests/0/signs');
  });
});
