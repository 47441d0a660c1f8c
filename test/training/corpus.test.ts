import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { expectError } from '../crypto/_helpers.js';
import { CodecError, ValidationError } from '../../src/errors.js';
import { DeterministicRng } from '../../src/crypto/rng.js';
import {
  BYTE_VOCAB_SIZE, decodeText, documentBytes, encodeText, EOS_ID, firstInvalidUtf8, labelDistances, labelSkew,
  MAX_DIRICHLET_DRAWS, partition, partitionReport, readTextDocuments, sampleDirichlet, sampleGamma,
  sotuDocuments, splitByYear, windows,
  type Document, type PartitionSpec, type SitePartition,
} from '../../src/training/corpus.js';


const doc = (id: string, text: string, labels: Record<string, string | number> = {}): Document => ({ id, text, labels });
const bytesOf = (ds: readonly Document[]): number => ds.reduce((s, d) => s + documentBytes(d), 0);
const ids = (ds: readonly Document[]): string[] => ds.map((d) => d.id);

const SOTU = sotuDocuments();
const PARTIES = ['Democratic', 'Democratic-Republican', 'Federalist', 'National Union', 'Republican', 'Whig', 'Whig & Democratic', 'none'];

/** Every document of `docs` in exactly one site and exactly one of train / held-out; the figures add up. */
function expectCover(p: readonly SitePartition[], docs: readonly Document[]): void {
  const seen = new Map<string, number>();
  for (const s of p) {
    for (const d of [...s.train, ...s.heldOut]) seen.set(d.id, (seen.get(d.id) ?? 0) + 1);
    expect(s.documents).to.equal(s.train.length + s.heldOut.length);
    expect(s.bytes).to.equal(bytesOf(s.train) + bytesOf(s.heldOut));
    expect(s.heldOutBytes).to.equal(bytesOf(s.heldOut));
  }
  expect(seen.size).to.equal(docs.length);
  for (const d of docs) expect(seen.get(d.id), d.id).to.equal(1);
  expect(p.map((s) => s.site)).to.deep.equal(p.map((_, i) => i));
}

/** Mean total-variation distance of the sites' party mixes from the global mix, computed here from the documents. */
function meanTv(p: readonly SitePartition[], docs: readonly Document[], label: string): number {
  const global = new Map<string, number>();
  for (const d of docs) global.set(String(d.labels[label]), (global.get(String(d.labels[label])) ?? 0) + 1 / docs.length);
  let sum = 0;
  for (const s of p) {
    const all = [...s.train, ...s.heldOut];
    const local = new Map<string, number>();
    for (const d of all) local.set(String(d.labels[label]), (local.get(String(d.labels[label])) ?? 0) + 1 / all.length);
    let tv = 0;
    for (const [k, g] of global) tv += Math.abs((local.get(k) ?? 0) - g);
    sum += tv / 2;
  }
  return sum / p.length;
}

describe('training/corpus', () => {
  describe('the shipped corpus', () => {
    it('loads 233 addresses, 1790–2021, in year order, with labels and unique ids', () => {
      expect(SOTU).to.have.length(233);
      expect(bytesOf(SOTU)).to.equal(10761202);
      expect(SOTU[0]!.id).to.equal('1790-washington');
      expect(SOTU[232]!.id).to.equal('2021-biden');
      const years = SOTU.map((d) => d.labels.year as number);
      for (let i = 1; i < years.length; i++) expect(years[i]!, SOTU[i]!.id).to.be.at.least(years[i - 1]!);
      expect(years.filter((y, i) => i > 0 && y === years[i - 1])).to.deep.equal([1953, 1961]);
      for (const d of SOTU) {
        expect(d.id).to.match(/^\d{4}-[a-z]+(-[a-z]+)?$/);
        expect(d.id.startsWith(`${d.labels.year}-`)).to.equal(true);
        expect(d.labels.year).to.be.a('number');
        expect(PARTIES).to.include(d.labels.party);
        expect(d.labels.president).to.be.a('string').and.not.equal('');
        expect(d.text.length).to.be.greaterThan(1000);
      }
      expect(new Set(ids(SOTU)).size).to.equal(233);
      // the outgoing president first within a year; the data set's "Mc Kinley" repaired
      expect(ids(SOTU.filter((d) => d.labels.year === 1953 || d.labels.year === 1961))).to.deep.equal(['1953-truman', '1953-eisenhower', '1961-eisenhower', '1961-kennedy']);
      expect(SOTU.find((d) => d.id === '1897-mckinley')!.labels.president).to.equal('William McKinley');
      expect(SOTU.find((d) => d.id === '1837-van-buren')!.labels.party).to.equal('Democratic');
    });

    it('filters by year range and party, refusing an unknown party', () => {
      const r = sotuDocuments({ from: 1946, to: 1952, parties: ['Democratic'] });
      expect(ids(r)).to.deep.equal(['1946-truman', '1947-truman', '1948-truman', '1949-truman', '1950-truman', '1951-truman', '1952-truman']);
      expect(sotuDocuments({ parties: ['Whig'] })).to.have.length(4);
      expectError(() => sotuDocuments({ parties: ['Tory'] }), ValidationError, 'TRAIN_ERR_BAD_PARAM');
      expectError(() => sotuDocuments({ from: 1946.5 }), ValidationError, 'TRAIN_ERR_BAD_PARAM');
    });

    it('splitByYear(1946): 155 addresses (7915809 bytes) before, 78 (2845393 bytes) after, order kept', () => {
      const { before, after } = splitByYear(SOTU, 1946);
      expect([before.length, bytesOf(before), after.length, bytesOf(after)]).to.deep.equal([155, 7915809, 78, 2845393]);
      expect(before.at(-1)!.id).to.equal('1945-roosevelt');
      expect(after[0]!.id).to.equal('1946-truman');
      expect([...ids(before), ...ids(after)]).to.deep.equal(ids(SOTU));
      expect(new Set(after.map((d) => d.labels.party))).to.deep.equal(new Set(['Democratic', 'Republican']));
      expectError(() => splitByYear([doc('x', 'a', { year: '1900' })], 1946), ValidationError, 'TRAIN_ERR_BAD_PARAM');
      expectError(() => splitByYear(SOTU, Number.NaN), ValidationError, 'TRAIN_ERR_BAD_PARAM');
    });
  });

  describe('readTextDocuments', () => {
    let root: string;
    before(() => {
      root = mkdtempSync(join(tmpdir(), 'tally-corpus-'));
    });
    after(() => rmSync(root, { recursive: true, force: true }));

    it('reads *.txt recursively, sorted by relative path, skipping hidden names and other files', () => {
      const d = join(root, 'site');
      mkdirSync(join(d, 'a', 'b'), { recursive: true });
      mkdirSync(join(d, '.git'));
      writeFileSync(join(d, 'b.txt'), '\uFEFFhello\r\nworld');
      writeFileSync(join(d, 'a', 'z.txt'), 'zed é');
      writeFileSync(join(d, 'a', 'b', 'c.TXT'), 'see');
      writeFileSync(join(d, 'a', 'notes.md'), 'not text data');
      writeFileSync(join(d, '._b.txt'), new Uint8Array([0x00, 0x05, 0x16, 0x07, 0xff]));
      writeFileSync(join(d, '.git', 'x.txt'), 'hidden');
      symlinkSync('..', join(d, 'a', 'loop')); // a link back up: not followed twice
      const docs = readTextDocuments(d);
      expect(ids(docs)).to.deep.equal(['a/b/c.TXT', 'a/z.txt', 'b.txt']);
      expect(docs.map((x) => x.text)).to.deep.equal(['see', 'zed é', 'hello\r\nworld']);
      expect(docs.map((x) => x.labels.dir)).to.deep.equal(['a/b', 'a', '.']);
      const one = readTextDocuments(join(d, 'a', 'notes.md'));
      expect(one).to.deep.equal([{ id: 'notes.md', text: 'not text data', labels: { dir: '.' } }]);
    });

    it('refuses invalid UTF-8 naming the file and offset, an empty folder, a folder without text, a missing path', () => {
      const bad = join(root, 'bad');
      mkdirSync(join(bad, 'sub'), { recursive: true });
      writeFileSync(join(bad, 'ok.txt'), 'fine');
      writeFileSync(join(bad, 'sub', 'latin1.txt'), new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x21])); // "café!" in Latin-1
      const e = expectError(() => readTextDocuments(bad), CodecError, 'TRAIN_ERR_BAD_DATA');
      expect(e.message).to.contain('sub/latin1.txt').and.contain('offset 3');

      const empty = join(root, 'empty');
      mkdirSync(empty);
      expectError(() => readTextDocuments(empty), ValidationError, 'TRAIN_ERR_BAD_DATA');
      writeFileSync(join(empty, 'readme.md'), 'no txt here');
      expectError(() => readTextDocuments(empty), ValidationError, 'TRAIN_ERR_BAD_DATA');
      writeFileSync(join(empty, 'blank.txt'), '');
      expectError(() => readTextDocuments(empty), ValidationError, 'TRAIN_ERR_BAD_DATA');
      expectError(() => readTextDocuments(join(root, 'nope')), ValidationError, 'TRAIN_ERR_BAD_PARAM');
    });

    it('firstInvalidUtf8 follows Unicode Table 3-7', () => {
      const at = (...b: number[]): number => firstInvalidUtf8(Uint8Array.from(b));
      expect(at(0x61, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80)).to.equal(-1);
      expect(at(0x61, 0xc0, 0x80)).to.equal(1); // overlong
      expect(at(0xe0, 0x80, 0x80)).to.equal(0); // overlong 3-byte
      expect(at(0x61, 0x62, 0xed, 0xa0, 0x80)).to.equal(2); // surrogate
      expect(at(0xf4, 0x90, 0x80, 0x80)).to.equal(0); // above U+10FFFF
      expect(at(0x61, 0xe2, 0x82)).to.equal(1); // truncated
      expect(at(0x80)).to.equal(0); // lone continuation
    });
  });

  describe('encoding and windows', () => {
    it('encodes UTF-8 and decodes model output', () => {
      expect(BYTE_VOCAB_SIZE).to.equal(257);
      expect(EOS_ID).to.equal(256);
      expect(Array.from(encodeText('aé€😀'))).to.deep.equal([0x61, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80]);
      expect(Array.from(encodeText('\ud800'))).to.deep.equal([0xef, 0xbf, 0xbd]);
      expect(decodeText([0x61, 0xc3, 0xa9, EOS_ID, 0x62], { eos: '|' })).to.equal('aé|b');
      expect(decodeText([0x61, EOS_ID, 0xc3])).to.equal('a\ufffd');
      expectError(() => decodeText([257]), ValidationError, 'TRAIN_ERR_BAD_PARAM');
    });

    it('cuts exact windows across document boundaries, with EOS and the last-window rule', () => {
      const docs = [doc('1', 'abc'), doc('2', 'de')];
      const w = (ws: Uint16Array[]): number[][] => ws.map((x) => Array.from(x));
      // a b c EOS d e EOS: the last window would hold one id, so it is dropped
      expect(w(windows(docs, 3, { eos: EOS_ID }))).to.deep.equal([[97, 98, 99], [256, 100, 101]]);
      // without EOS: a b c | d e (two ids: kept, shorter)
      expect(w(windows(docs, 3))).to.deep.equal([[97, 98, 99], [100, 101]]);
      expect(w(windows(docs, 3, { dropPartial: true }))).to.deep.equal([[97, 98, 99]]);
      expect(w(windows(docs, 4, { eos: EOS_ID }))).to.deep.equal([[97, 98, 99, 256], [100, 101, 256]]);
      expect(w(windows(docs, 7, { eos: EOS_ID }))).to.deep.equal([[97, 98, 99, 256, 100, 101, 256]]);
      expect(w(windows([doc('e', ''), doc('1', 'ab')], 2, { eos: EOS_ID }))).to.deep.equal([[256, 97], [98, 256]]);
      // a multi-byte character is split across windows like any byte run
      expect(w(windows([doc('x', 'é€')], 2))).to.deep.equal([[0xc3, 0xa9], [0xe2, 0x82]]);
      expect(windows([], 8)).to.deep.equal([]);
      const ws = windows(docs, 3);
      expect(ws[0]!.buffer).to.not.equal(ws[1]!.buffer);
      expect(ws[0]).to.be.instanceOf(Uint16Array);
      expectError(() => windows(docs, 1), ValidationError, 'TRAIN_ERR_BAD_PARAM');
      expectError(() => windows(docs, 2.5), ValidationError, 'TRAIN_ERR_BAD_PARAM');
      expectError(() => windows(docs, 8, { eos: 65536 }), ValidationError, 'TRAIN_ERR_BAD_PARAM');
    });

    it('windows the whole corpus: every token once, in order', () => {
      const ws = windows(SOTU, 1024, { eos: EOS_ID });
      const tokens = bytesOf(SOTU) + SOTU.length;
      const full = Math.floor(tokens / 1024);
      expect(ws.length).to.equal(full + (tokens % 1024 >= 2 ? 1 : 0));
      expect(ws.slice(0, full).every((x) => x.length === 1024)).to.equal(true);
      expect(decodeText(ws[0]!).startsWith(SOTU[0]!.text.slice(0, 500))).to.equal(true);
      let eos = 0;
      for (const x of ws) for (const t of x) if (t === EOS_ID) eos++;
      expect(eos).to.equal(SOTU.length - (tokens % 1024 === 1 ? 1 : 0));
    });
  });

  describe('sampling', () => {
    it('Gamma(shape) has mean and variance shape (Marsaglia–Tsang, with the shape < 1 boost)', () => {
      for (const shape of [0.3, 1, 4.5]) {
        const rng = new DeterministicRng(`gamma ${shape}`);
        const n = 20000;
        let s = 0;
        let s2 = 0;
        for (let i = 0; i < n; i++) {
          const x = sampleGamma(rng, shape);
          expect(x).to.be.at.least(0);
          s += x;
          s2 += x * x;
        }
        const mean = s / n;
        const variance = s2 / n - mean * mean;
        // 5 standard errors of the mean; variance within 10 %
        expect(Math.abs(mean - shape), `mean at ${shape}`).to.be.below(5 * Math.sqrt(shape / n));
        expect(Math.abs(variance / shape - 1), `variance at ${shape}`).to.be.below(0.1);
      }
    });

    it('Dirichlet draws sum to 1, stay finite for tiny alpha, and are pinned for a seed', () => {
      for (const alpha of [1e-4, 0.1, 1, 100]) {
        const q = sampleDirichlet(new DeterministicRng('d'), alpha, 5);
        expect(Math.abs(q.reduce((a, x) => a + x, 0) - 1)).to.be.below(1e-12);
        expect(q.every((x) => Number.isFinite(x) && x >= 0)).to.equal(true);
      }
      // regression values of this implementation (Node's Math.log/exp/sqrt are fdlibm-exact)
      const q = Array.from(sampleDirichlet(new DeterministicRng('pinned'), 0.5, 4));
      const pinned = [0.18683640461774995, 0.002265403255163288, 0.6495716212349583, 0.16132657089212848];
      q.forEach((x, i) => expect(x).to.be.closeTo(pinned[i]!, 1e-12));
      expectError(() => sampleDirichlet(new DeterministicRng('d'), 0, 3), ValidationError, 'TRAIN_ERR_BAD_PARAM');
      expectError(() => sampleGamma(new DeterministicRng('d'), Number.POSITIVE_INFINITY), ValidationError, 'TRAIN_ERR_BAD_PARAM');
    });
  });

  describe('partition', () => {
    const { after } = splitByYear(SOTU, 1946);
    const specs: PartitionSpec[] = [
      { kind: 'label', label: 'party' },
      { kind: 'label', label: 'party', sites: 3 },
      { kind: 'era', sites: 5 },
      { kind: 'dirichlet', label: 'party', sites: 6, alpha: 0.5 },
      { kind: 'iid', sites: 7 },
    ];

    it('puts every document in exactly one site and one split, for every kind', () => {
      for (const spec of specs) {
        const p = partition(SOTU, spec, { seed: 'cover' });
        expectCover(p, SOTU);
        for (const s of p) {
          expect(s.documents, spec.kind).to.be.at.least(1);
          // held-out: round(0.1 n), at least one each side from two documents up
          const n = s.documents;
          const k = n >= 2 ? Math.min(n - 1, Math.max(1, Math.round(0.1 * n))) : 0;
          expect(s.heldOut.length, `${spec.kind} site ${s.site}`).to.equal(k);
          // both lists keep input order
          for (const list of [s.train, s.heldOut]) {
            const pos = list.map((d) => SOTU.indexOf(d));
            expect(pos).to.deep.equal([...pos].sort((a, b) => a - b));
          }
        }
      }
      const one = partition([doc('a', 'x', { g: 1 }), doc('b', 'yy', { g: 2 }), doc('c', 'z', { g: 2 })], { kind: 'label', label: 'g' }, { seed: 's' });
      expect(one.map((s) => [s.train.length, s.heldOut.length])).to.deep.equal([[1, 0], [1, 1]]);
      const none = partition(after, { kind: 'iid', sites: 2 }, { seed: 's', heldOut: 0 });
      expect(none.every((s) => s.heldOut.length === 0 && s.heldOutBytes === 0)).to.equal(true);
      const half = partition(after, { kind: 'iid', sites: 2 }, { seed: 's', heldOut: 0.5 });
      expect(half.map((s) => s.heldOut.length)).to.deep.equal([20, 20]);
    });

    it('is deterministic for a seed and differs across seeds', () => {
      const sig = (p: SitePartition[]): string => JSON.stringify(p.map((s) => [ids(s.train), ids(s.heldOut)]));
      for (const spec of specs) {
        const a = partition(SOTU, spec, { seed: 'one' });
        expect(sig(partition(SOTU, spec, { seed: 'one' })), spec.kind).to.equal(sig(a));
        expect(sig(partition(SOTU, spec, { seed: new TextEncoder().encode('one') })), spec.kind).to.equal(sig(a));
        expect(sig(partition(SOTU, spec, { seed: 'two' })), spec.kind).to.not.equal(sig(a));
      }
      // the assignment itself (not only the held-out choice) depends on the seed
      const sites = (seed: string, spec: PartitionSpec): string => JSON.stringify(partition(after, spec, { seed }).map((s) => ids([...s.train, ...s.heldOut]).sort()));
      expect(sites('one', { kind: 'iid', sites: 3 })).to.not.equal(sites('two', { kind: 'iid', sites: 3 }));
      expect(sites('one', specs[3]!)).to.not.equal(sites('two', specs[3]!));
      // regression: this seed's assignment, pinned
      const pinned = partition(after, { kind: 'dirichlet', label: 'party', sites: 4, alpha: 0.5 }, { seed: 'pinned' });
      expect(pinned.map((s) => s.documents)).to.deep.equal([12, 32, 10, 24]);
      expect(pinned.map((s) => ids(s.heldOut))).to.deep.equal([['2003-bush'], ['1951-truman', '1969-johnson', '1980-carter'], ['2017-trump'], ['1985-reagan', '2014-obama']]);
    });

    it('label: one pure site per value, or whole groups over fewer sites', () => {
      const p = partition(SOTU, { kind: 'label', label: 'party' }, { seed: 's' });
      expect(p).to.have.length(8);
      p.forEach((s, i) => {
        const values = new Set([...s.train, ...s.heldOut].map((d) => d.labels.party));
        expect([...values]).to.deep.equal([PARTIES[i]]);
        expect(s.labelCounts).to.deep.equal({ [PARTIES[i]!]: s.documents });
      });
      expect(p.find((s) => s.labelCounts.Republican !== undefined)!.documents).to.equal(92);
      const q = partition(SOTU, { kind: 'label', label: 'party', sites: 3 }, { seed: 's' });
      const owner = new Map<string, number>();
      for (const s of q) for (const d of [...s.train, ...s.heldOut]) {
        const party = d.labels.party as string;
        expect(owner.get(party) ?? s.site, party).to.equal(s.site);
        owner.set(party, s.site);
      }
      expect(owner.size).to.equal(8);
      expect(q.map((s) => Object.keys(s.labelCounts).length).sort()).to.deep.equal([1, 1, 6]); // Republican, Democratic, the rest
    });

    it('era: contiguous, non-overlapping year ranges with about equal bytes', () => {
      const p = partition(SOTU, { kind: 'era', sites: 4 }, { seed: 's', countLabel: 'party' });
      let prevTo = -Infinity;
      for (const s of p) {
        const years = [...s.train, ...s.heldOut].map((d) => d.labels.year as number);
        const from = Math.min(...years);
        const to = Math.max(...years);
        expect(s.span).to.deep.equal({ label: 'year', from, to });
        expect(from).to.be.greaterThan(prevTo);
        prevTo = to;
        // every address of those years is on this site
        expect(s.documents).to.equal(SOTU.filter((d) => (d.labels.year as number) >= from && (d.labels.year as number) <= to).length);
      }
      expect(p[0]!.span!.from).to.equal(1790);
      expect(p[3]!.span!.to).to.equal(2021);
      const b = p.map((s) => s.bytes);
      expect(Math.max(...b) / Math.min(...b)).to.be.below(1.1);
      expect(p[0]!.labelCounts.Federalist).to.equal(4);
    });

    it('dirichlet: alpha 0.1 is far more label-skewed than alpha 100 (mean TV from the global mix)', () => {
      const skew = (alpha: number): number => {
        let s = 0;
        for (let i = 0; i < 8; i++) {
          const p = partition(SOTU, { kind: 'dirichlet', label: 'party', sites: 5, alpha }, { seed: `skew ${i}` });
          expectCover(p, SOTU);
          const tv = meanTv(p, SOTU, 'party');
          expect(labelSkew(p)).to.be.closeTo(tv, 1e-12);
          s += tv;
        }
        return s / 8;
      };
      const small = skew(0.1);
      const large = skew(100);
      expect(small, `alpha 0.1: ${small}`).to.be.above(0.45);
      expect(large, `alpha 100: ${large}`).to.be.below(0.12);
      expect(small).to.be.above(4 * large);
    });

    it('refuses impossible requests with TRAIN_ERR_BAD_PARAM', () => {
      const bad = (spec: PartitionSpec, docs: readonly Document[] = after, o: object = {}): void => {
        expectError(() => partition(docs, spec, { seed: 's', ...o }), ValidationError, 'TRAIN_ERR_BAD_PARAM');
      };
      bad({ kind: 'iid', sites: 79 });
      bad({ kind: 'iid', sites: 0 });
      bad({ kind: 'iid', sites: 2.5 });
      bad({ kind: 'iid', sites: 1 }, []);
      bad({ kind: 'dirichlet', label: 'party', sites: 3, alpha: 0 });
      bad({ kind: 'dirichlet', label: 'party', sites: 3, alpha: -1 });
      bad({ kind: 'dirichlet', label: 'party', sites: 3, alpha: Number.NaN });
      bad({ kind: 'dirichlet', label: 'colour', sites: 3, alpha: 1 });
      bad({ kind: 'label', label: 'colour' });
      bad({ kind: 'label', label: 'party', sites: 3 }); // after 1946: two parties
      bad({ kind: 'era', sites: 2, label: 'party' });
      bad({ kind: 'era', sites: 79 });
      bad({ kind: 'iid', sites: 2 }, after, { heldOut: 1 });
      bad({ kind: 'iid', sites: 2 }, after, { heldOut: -0.1 });
      bad({ kind: 'iid', sites: 2 }, after, { countLabel: 'colour' });
      bad({ kind: 'iid', sites: 2 }, [...after, after[0]!]);
      bad({ kind: 'era', sites: 2 }, [doc('a', 'x', { year: 1 }), doc('b', 'y')]);
      bad({ kind: 'mystery', sites: 2 } as unknown as PartitionSpec);
      expectError(() => partition(after, { kind: 'iid', sites: 2 }, undefined as unknown as { seed: string }), ValidationError, 'TRAIN_ERR_BAD_PARAM');
    });

    it('dirichlet: a site left empty is refused, or kept and reported when allowed', () => {
      const two = [doc('a', 'x', { g: 'k' }), doc('b', 'y', { g: 'k' })];
      const spec: PartitionSpec = { kind: 'dirichlet', label: 'g', sites: 2, alpha: 1e-6 };
      const e = expectError(() => partition(two, spec, { seed: 's' }), ValidationError, 'TRAIN_ERR_BAD_PARAM');
      expect(e.message).to.contain(`${MAX_DIRICHLET_DRAWS} draws`);
      const p = partition(two, spec, { seed: 's', allowEmptySites: true });
      expectCover(p, two);
      const empty = p.find((s) => s.documents === 0)!;
      expect(empty).to.not.equal(undefined);
      expect(partitionReport(p).split('\n')[empty.site]).to.equal(`site ${empty.site}: empty (0 documents)`);
    });

    it('reports one line per site with its numbers', () => {
      const p = partition(after, { kind: 'dirichlet', label: 'party', sites: 4, alpha: 1 }, { seed: 'report' });
      const lines = partitionReport(p).split('\n');
      expect(lines).to.have.length(4);
      const tv = labelDistances(p);
      p.forEach((s, i) => {
        const line = lines[i]!;
        expect(line.startsWith(`site ${i}: ${s.documents} document`)).to.equal(true);
        expect(line).to.contain(`(${s.train.length} train, ${s.heldOut.length} held-out)`);
        expect(line).to.contain(`${s.bytes} bytes`);
        expect(line).to.contain(`${s.heldOutBytes} held-out bytes`);
        for (const [k, c] of Object.entries(s.labelCounts)) expect(line).to.contain(`${k} ${c}`);
        expect(line).to.contain(`TV ${tv[i]!.toFixed(3)}`);
      });
      const era = partitionReport(partition(SOTU, { kind: 'era', sites: 2 }, { seed: 'r' }));
      expect(era.split('\n')[0]).to.match(/^site 0: \d+ documents .* year 1790–\d{4}$/);
    });
  });
});
