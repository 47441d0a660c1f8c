/**
 * Audit bundles for the tests: the sample run (src/audit/sample.ts) written
 * with the real writers (openCoordinatorLog, openSiteLog), and the edits a
 * dishonest party could make to one (re-signed or not).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCoordinatorLog, openSiteLog, readJsonLines } from '../../src/audit/bundle.js';
import { playSample, sampleSetup, SAMPLE_RUN, type SampleSetup } from '../../src/audit/sample.js';
import { canonicalJson, Transcript } from '../../src/audit/transcript.js';

export interface TestBundle { readonly dir: string; readonly setup: SampleSetup }

/** Writes the sample run as a bundle in a fresh temporary folder. */
export function writeSampleBundle(edit: (s: SampleSetup) => SampleSetup = (s) => s): TestBundle {
  const setup = edit(sampleSetup());
  const dir = mkdtempSync(join(tmpdir(), 'tally-verify-'));
  const coordinator = openCoordinatorLog(dir, { signingSeed: setup.coordinatorSeed, config: setup.config, policy: setup.policy, run: SAMPLE_RUN });
  const sites = new Map(setup.sites.map((s) => [s.id, openSiteLog(join(dir, 'sites', `${s.id}.jsonl`), { seed: s.seed, site: s.id, run: SAMPLE_RUN })] as const));
  playSample(setup, coordinator, sites);
  coordinator.close();
  for (const log of sites.values()) log.close();
  return { dir, setup };
}

export type Rec = Record<string, unknown> & { kind: string; seq: number };

export const linesOf = (file: string): string[] => readJsonLines(file);
export const recordsOf = (file: string): Rec[] => linesOf(file).map((l) => JSON.parse(l) as Rec);
export const writeLines = (file: string, lines: readonly string[]): void => writeFileSync(file, lines.map((l) => `${l}\n`).join(''));

/**
 * Rewrites a log as its signer could: `edit` changes the records
 * (checkpoints included, as placeholders), then every seq is renumbered and
 * every checkpoint recomputed and re-signed with `seed`.
 */
export function resign(file: string, seed: Uint8Array, edit: (recs: Rec[]) => Rec[]): void {
  const t = new Transcript({ signingSeed: seed });
  for (const r of edit(recordsOf(file))) {
    if (r.kind === 'checkpoint') { t.checkpoint(); continue; }
    const { kind, seq: _seq, ...fields } = r;
    t.append(kind as never, fields);
  }
  writeLines(file, t.lines);
}

/** Replaces the line at `seq` by `f` of its record (no re-signing). */
export function editLine(file: string, seq: number, f: (r: Rec) => Rec): void {
  const lines = linesOf(file);
  lines[seq] = canonicalJson(f(JSON.parse(lines[seq]!) as Rec));
  writeLines(file, lines);
}

export const read = (file: string): string => readFileSync(file, 'utf8');
export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
