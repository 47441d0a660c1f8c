import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkTranscriptVectors, defaultTranscriptVectorDir, generateTranscriptVectorFiles, generateTranscriptVectors, TRANSCRIPT_KINDS } from '../../src/audit/vectors.js';

describe('audit/vectors: the transcript-v1 vector suite', () => {
  let files: Map<string, string>;
  before(() => { files = generateTranscriptVectorFiles(); });

  it('the files in protocols/transcript-v1/vectors are what the generator writes, byte for byte', () => {
    expect([...files.keys()].sort()).to.deep.equal(TRANSCRIPT_KINDS.map((k) => `${k.kind}.json`).sort());
    for (const [name, text] of files) expect(readFileSync(join(defaultTranscriptVectorDir(), name), 'utf8') === text, `${name} is stale: run tally vectors generate --suite transcript-v1`).to.equal(true);
  });

  it('every case checks against its schema and recomputes', () => {
    const results = checkTranscriptVectors(defaultTranscriptVectorDir());
    expect(results.filter((r) => !r.ok).map((r) => `${r.kind} ${r.tcId}: ${r.message}`)).to.deep.equal([]);
    const per = new Map<string, number>();
    for (const r of results) per.set(r.kind, (per.get(r.kind) ?? 0) + 1);
    for (const k of TRANSCRIPT_KINDS) expect(per.get(k.kind), k.kind).to.be.greaterThanOrEqual(5);
    // Each kind has negatives.
    for (const [name, text] of files) expect((JSON.parse(text) as { tests: { result: string }[] }).tests.some((t) => t.result === 'invalid'), name).to.equal(true);
  });

  it('a changed vector fails its check', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-tv-'));
    try {
      generateTranscriptVectors(dir);
      const edit = (name: string, f: (j: { tests: Record<string, unknown>[] }) => void): void => {
        const p = join(dir, name);
        const j = JSON.parse(readFileSync(p, 'utf8')) as { tests: Record<string, unknown>[] };
        f(j);
        writeFileSync(p, JSON.stringify(j));
      };
      edit('merkle.json', (j) => { const roots = j.tests[0]!['roots'] as string[]; roots[3] = '00'.repeat(32); });
      edit('checkpoint.json', (j) => { j.tests[1]!['size'] = 3; });
      edit('transcript.json', (j) => { j.tests[1]!['failed'] = []; });
      edit('record.json', (j) => { j.tests[0]!['result'] = 'invalid'; });
      edit('bundle.json', (j) => { (j.tests[0]!['transcript'] as string[]).pop(); });
      const failed = checkTranscriptVectors(dir).filter((r) => !r.ok).map((r) => `${r.kind} ${r.tcId}`);
      expect(failed).to.deep.equal(['record 1', 'merkle 1', 'checkpoint 2', 'transcript 2', 'bundle 1']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
