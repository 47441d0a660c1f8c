/**
 * The round loop's heterogeneous ranks (HetLoRA zero-padding) and plain
 * aggregation with robust rules, in one process on a tiny random GPT-2:
 * what the coordinator applies is recomputed independently from the sites'
 * own deltas (twin learners with the same seeds).
 */
import { expect } from 'chai';
import { ValidationError } from '../../src/errors.js';
import { parseJob, type FineTuneJob } from '../../src/federation/job.js';
import { jobModel, Learner } from '../../src/federation/learner.js';
import { coordinateMedian } from '../../src/federation/robust.js';
import { FineTuneServer, inProcessPlain, inProcessSum, runFineTune } from '../../src/federation/rounds.js';
import { BUILTIN_CANDIDATES, initBackend } from '../../src/training/backend.js';
import type { Gpt2Config } from '../../src/training/checkpoint.js';
import { initGpt2Weights } from '../../src/training/gpt2.js';

const SHAPE = { vocab_size: 257, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2, layer_norm_epsilon: 1e-5 } as const;
const CONFIG: Gpt2Config = { model_type: 'gpt2', ...SHAPE, activation_function: 'gelu_new', bos_token_id: 256, eos_token_id: 256, extra: {} };
const BASE = { config: CONFIG, weights: initGpt2Weights(SHAPE, 'tally/test/strategies') };
const TEXTS = ['the union is strong today. ', 'we must pay the public debt. ', 'peace abroad, work at home. '];

function siteData(i: number): { train: Uint16Array[]; heldOut: Uint16Array[] } {
  const bytes = Buffer.from(TEXTS[i]!.repeat(6), 'utf8');
  const w = (from: number): Uint16Array => Uint16Array.from(bytes.subarray(from, from + 16));
  return { train: [0, 16, 32, 48].map(w), heldOut: [w(80)] };
}

function learners(job: FineTuneJob): Learner[] {
  return [0, 1, 2].map((i) => new Learner({ job, base: BASE, ...siteData(i), seed: `site-${i + 1}`, siteIndex: i }));
}

function trainableNames(job: FineTuneJob): string[] {
  const m = jobModel(job, BASE);
  try { return m.trainableNames(); } finally { m.dispose(); }
}

/** The coordinator's server (and its adapter before any round), the sites, and twin sites with the same seeds. */
function federation(job: FineTuneJob): { server: FineTuneServer; before: Map<string, Float32Array>; sites: Learner[]; twins: Learner[] } {
  const model = jobModel(job, BASE);
  const server = new FineTuneServer({ job, model });
  model.dispose();
  return { server, before: new Map([...server.adapter].map(([k, v]) => [k, v.slice()])), sites: learners(job), twins: learners(job) };
}

describe('federation: heterogeneous ranks and plain aggregation', function () {
  this.timeout(60_000);
  before(async () => { await initBackend({ candidates: BUILTIN_CANDIDATES.filter((c) => c.name === 'cpu') }); });

  it('HetLoRA: each rank slice moves by the mean over the sites that train it', async () => {
    const job = parseJob({
      rounds: 1, lora: { r: 2, alpha: 4, ranks: [1, 2, 2] }, local: { steps: 1, batchSize: 4, lr: 0.05 },
      dp: { mechanism: 'none', clip: 100, bits: 32 },
    }, { sites: 3, threshold: 2 });
    const { server, before, sites, twins } = federation(job);
    expect(sites.map((l) => l.rank)).to.deep.equal([1, 2, 2]);
    expect(sites[0]!.model.lora!.alpha).to.equal(2); // alpha/r stays 2
    const task = server.task('train', 1);
    const deltas = twins.map((l) => l.plainUpdate(task).update); // padded to rank 2
    try {
      await runFineTune(server, inProcessSum({ sites: sites.map((l, i) => ({ id: `site-${i + 1}`, input: (t, n) => l.input(t, n).input })) }));
    } finally {
      [...sites, ...twins].forEach((l) => l.dispose());
    }
    // Only B is trained (FFA): the layout is B of c_attn, [48, 2]; column 0 is trained by all three sites, column 1 by sites 2 and 3.
    const names = trainableNames(job);
    expect(names).to.have.length(1);
    const b0 = before.get(names[0]!)!, b1 = server.adapter.get(names[0]!)!;
    let checked = 0;
    for (let row = 0; row < 48; row++) {
      for (let k = 0; k < 2; k++) {
        const j = row * 2 + k;
        const contributors = k === 0 ? [0, 1, 2] : [1, 2];
        if (k === 1) expect(deltas[0]![j]).to.equal(0); // the rank-1 site padded its second column with zeros
        const mean = contributors.reduce((s, i) => s + deltas[i]![j]!, 0) / contributors.length;
        expect(b1[j]! - b0[j]!).to.be.closeTo(mean, 1e-4);
        checked++;
      }
    }
    expect(checked).to.equal(96);
    expect(server.history.map((h) => h.survivors.length)).to.deep.equal([0, 3]);
  });

  it('FedAvg weighted by declared example counts: the global delta is the weighted mean Σ wᵢΔᵢ / Σ wᵢ with wᵢ = nᵢ / max n', async () => {
    const job = parseJob({
      rounds: 1, lora: { r: 2, alpha: 4 }, local: { steps: 1, batchSize: 4, lr: 0.05 }, strategy: { examples: [10, 20, 40] },
      dp: { mechanism: 'none', clip: 100, bits: 32 },
    }, { sites: 3, threshold: 2 });
    const { server, before, sites, twins } = federation(job);
    const deltas = twins.map((l) => l.plainUpdate(server.task('train', 1)).update); // already scaled by wᵢ
    try {
      await runFineTune(server, inProcessSum({ sites: sites.map((l, i) => ({ id: `site-${i + 1}`, input: (t, n) => l.input(t, n).input })) }));
    } finally {
      [...sites, ...twins].forEach((l) => l.dispose());
    }
    const w = [0.25, 0.5, 1];
    const name = trainableNames(job)[0]!;
    const b0 = before.get(name)!, b1 = server.adapter.get(name)!;
    let moved = 0;
    for (let j = 0; j < b0.length; j++) {
      const weighted = (deltas[0]![j]! + deltas[1]![j]! + deltas[2]![j]!) / (w[0]! + w[1]! + w[2]!);
      expect(b1[j]! - b0[j]!).to.be.closeTo(weighted, 1e-4);
      if (Math.abs(weighted) > 1e-6) moved++;
    }
    expect(moved).to.be.above(0);
    // The sites scaled their own deltas: an equal-weight twin of site 1 trains the same delta, 4× larger.
    const equal = parseJob({ rounds: 1, lora: { r: 2, alpha: 4 }, local: { steps: 1, batchSize: 4, lr: 0.05 }, dp: { mechanism: 'none', clip: 100, bits: 32 } }, { sites: 3, threshold: 2 });
    const { server: s2, sites: plainSites, twins: t2 } = federation(equal);
    try {
      const d = plainSites[0]!.plainUpdate(s2.task('train', 1)).update;
      for (let j = 0; j < d.length; j++) expect(deltas[0]![j]!).to.be.closeTo(0.25 * d[j]!, 1e-7);
    } finally {
      [...plainSites, ...t2].forEach((l) => l.dispose());
    }
  });

  it('plain aggregation with the coordinate-wise median applies the median of the updates', async () => {
    const job = parseJob({
      rounds: 1, lora: { r: 2, alpha: 4 }, local: { steps: 1, batchSize: 4, lr: 0.05 }, aggregator: 'plain', robust: { kind: 'median' },
      strategy: { serverLr: 0.5 }, dp: { mechanism: 'none', clip: 1, bits: 24 },
    }, { sites: 3, threshold: 2 });
    const { server, before, sites, twins } = federation(job);
    const updates = twins.map((l) => l.plainUpdate(server.task('train', 1)).update);
    const logs: string[] = [];
    try {
      const r = await runFineTune(server, inProcessSum({ sites: sites.map((l, i) => ({ id: `site-${i + 1}`, input: (t, n) => l.input(t, n).input })) }), {
        plain: inProcessPlain(sites.map((l, i) => ({ id: `site-${i + 1}`, update: (t) => l.plainUpdate(t).update }))),
        events: { log: (l) => logs.push(l) },
      });
      expect(r.outcome).to.equal('completed');
    } finally {
      [...sites, ...twins].forEach((l) => l.dispose());
    }
    const median = coordinateMedian(updates);
    const name = trainableNames(job)[0]!;
    const b0 = before.get(name)!, b1 = server.adapter.get(name)!;
    for (let j = 0; j < median.length; j++) expect(b1[j]! - b0[j]!).to.be.closeTo(0.5 * median[j]!, 1e-6);
    expect(logs.some((l) => /coordinator sees every site's update in the clear/.test(l))).to.equal(true);
    expect(server.history[1]!.survivors).to.deep.equal(['site-1', 'site-2', 'site-3']);
    expect(server.ledger.entries).to.have.length(0);
  });

  it('refuses what cannot be: plain with DP, robust without plain, ranks that do not fit, plain without a collector or over the network', async () => {
    const bad = (json: Record<string, unknown>, field: RegExp): void => {
      expect(() => parseJob({ lora: { r: 2, alpha: 4 }, ...json }, { sites: 3, threshold: 2 })).to.throw(ValidationError, field).with.property('code', 'FL_ERR_BAD_JOB');
    };
    bad({ aggregator: 'plain', dp: { mechanism: 'ddg', budget: { epsilon: 1, delta: 1e-5 } } }, /aggregator "plain" requires training.dp.mechanism "none"/);
    bad({ robust: { kind: 'median' }, dp: { mechanism: 'none' } }, /training.robust needs training.aggregator "plain"/);
    bad({ aggregator: 'plain', robust: { kind: 'mean' }, dp: { mechanism: 'none' } }, /training.robust.kind/);
    bad({ aggregator: 'sometimes', dp: { mechanism: 'none' } }, /training.aggregator/);
    bad({ lora: { r: 2, alpha: 4, ranks: [1, 2] }, dp: { mechanism: 'none' } }, /one rank per roster site \(3\)/);
    bad({ lora: { r: 4, alpha: 4, ranks: [1, 2, 2] }, dp: { mechanism: 'none' } }, /largest of training.lora.ranks/);
    bad({ lora: { r: 2, alpha: 4, ranks: [1, 2, 3] }, dp: { mechanism: 'none' } }, /ranks\[2\]/);
    bad({ lora: { r: 2, alpha: 4, ranks: [1, 2, 2] }, strategy: { kind: 'scaffold' }, dp: { mechanism: 'none' } }, /SCAFFOLD/);
    bad({ strategy: { examples: [1, 2] }, dp: { mechanism: 'none' } }, /one example count per roster site \(3\)/);
    bad({ strategy: { examples: [1, 0, 2] }, dp: { mechanism: 'none' } }, /examples\[1\]/);
    bad({ strategy: { examples: [1, 2, 3] }, aggregator: 'plain', robust: { kind: 'median' }, dp: { mechanism: 'none' } }, /does not combine with training.robust/);

    const job = parseJob({ rounds: 1, lora: { r: 2, alpha: 4 }, local: { steps: 1, batchSize: 4, lr: 0.05 }, aggregator: 'plain', dp: { mechanism: 'none', clip: 1, bits: 24 } }, { sites: 3, threshold: 2 });
    const model = jobModel(job, BASE);
    const server = new FineTuneServer({ job, model });
    model.dispose();
    const sites = learners(job);
    try {
      const sum = inProcessSum({ sites: sites.map((l, i) => ({ id: `site-${i + 1}`, input: (t, n) => l.input(t, n).input })) });
      let err: unknown;
      try { await runFineTune(server, sum); } catch (e) { err = e; }
      expect(err).to.be.instanceOf(ValidationError).with.property('code', 'FL_ERR_BAD_JOB');
      expect(() => sites[0]!.tasks({} as never)).to.throw(ValidationError, /one process only/);
      // A rank-heterogeneous job needs each learner's roster position.
      const het = parseJob({ lora: { r: 2, alpha: 4, ranks: [1, 2, 2] }, dp: { mechanism: 'none' } }, { sites: 3, threshold: 2 });
      expect(() => new Learner({ job: het, base: BASE, ...siteData(0), seed: 's' })).to.throw(ValidationError, /roster position/);
    } finally {
      sites.forEach((l) => l.dispose());
    }
  });
});
