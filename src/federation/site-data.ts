/**
 * What a fine-tuning site loads before it joins: the backend, the
 * consortium's base model, and its own text cut into windows with a held-out
 * split (or, for the demo, its share of the SOTU partition).
 */
import { ValidationError } from '../errors.js';
import { initBackend, type BackendName } from '../training/backend.js';
import { loadCheckpoint } from '../training/checkpoint.js';
import { EOS_ID, partition, readTextDocuments, windows } from '../training/corpus.js';
import type { Consortium } from './consortium.js';
import { demoPartition } from './demo-data.js';
import { Learner, type LearnerReport } from './learner.js';

/** Held-out windows a site evaluates on (the eval session's cost grows with it). */
export const SITE_HELD_OUT_WINDOWS = 24;

export interface SiteLearnerOptions {
  readonly consortium: Consortium;
  readonly siteId: string;
  /** The site's own UTF-8 text: a file or a folder of *.txt files. */
  readonly text?: string;
  /** The demo: this site's share (1-based) of the SOTU era partition over the roster. */
  readonly demoSite?: number;
  readonly backend?: string;
  readonly log?: (line: string) => void;
  /** Progress as objects (steps, reports), e.g. JSON lines for a parent process. */
  readonly events?: (e: Record<string, unknown>) => void;
}

/**
 * Builds a site's {@link Learner} for the consortium's job.
 * @throws ValidationError FL_ERR_BAD_JOB (no job), TRAIN_ERR_* (model, data, backend)
 */
export async function siteLearner(o: SiteLearnerOptions): Promise<Learner> {
  const t = o.consortium.training;
  if (t === undefined) throw new ValidationError('FL_ERR_BAD_JOB', 'the consortium has no training job');
  const log = o.log ?? (() => {});
  const info = await initBackend({ ...(o.backend !== undefined ? { prefer: o.backend as BackendName } : {}) });
  const base = loadCheckpoint(t.modelDir);
  const p = base.config.n_positions;
  let train: Uint16Array[];
  let heldOut: Uint16Array[];
  if (o.demoSite !== undefined) {
    const n = o.consortium.sites.length;
    if (!Number.isInteger(o.demoSite) || o.demoSite < 1 || o.demoSite > n) throw new ValidationError('TRAIN_ERR_BAD_PARAM', `--demo-site must be an integer in [1, ${n}], got ${o.demoSite}`);
    const d = demoPartition(n, p, SITE_HELD_OUT_WINDOWS).data(o.demoSite - 1);
    ({ train, heldOut } = d);
    log(`data: the demo's share ${o.demoSite} of ${n}: State of the Union addresses ${d.span}, ${d.documents} documents, ${d.bytes} bytes`);
  } else {
    const docs = readTextDocuments(o.text!);
    const [part] = partition(docs, { kind: 'iid', sites: 1 }, { seed: `${o.siteId}/held-out`, heldOut: 0.1 });
    train = windows(part!.train, p, { eos: EOS_ID, dropPartial: true });
    heldOut = windows(part!.heldOut, p, { eos: EOS_ID }).slice(0, SITE_HELD_OUT_WINDOWS);
    log(`data: ${docs.length} documents of ${o.text}: ${train.length} training windows, ${heldOut.length} held out`);
  }
  log(`training on ${info.name}`);
  const ev = o.events;
  return new Learner({
    job: t.job, base: { config: base.config, weights: base.tensors }, train, heldOut, seed: o.siteId, log,
    siteIndex: o.consortium.sites.findIndex((s) => s.id === o.siteId),
    ...(ev !== undefined ? {
      onStep: (s: { round: number; step: number; steps: number; loss: number }) => ev({ event: 'step', ...s }),
      onReport: (r: LearnerReport) => ev({ event: 'report', round: r.round, purpose: r.purpose, ...(r.eval !== undefined ? { loss: r.eval.loss, tokens: r.eval.tokens } : {}), ...(r.trainLoss !== undefined ? { trainLoss: r.trainLoss, norm: r.norm, clipped: r.clipped } : {}) }),
    } : {}),
  });
}
