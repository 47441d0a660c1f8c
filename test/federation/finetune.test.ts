/**
 * Federated fine-tuning end to end in one process (src/federation/job.ts,
 * learner.ts, rounds.ts): a tiny random GPT-2 (1 layer, 16 dims), three or
 * four sites with a few byte windows each, one or two local steps.
 *
 * What is checked is the arithmetic, not that training helps: the secure sum
 * without noise equals the plain mean of the clipped deltas; the eval session
 * equals the token-weighted mean of the sites' own losses; the budget refuses
 * a round before any site trains and ε never passes it; dropouts, aborts and
 * retries (and what they are charged); resuming from a snapshot; the task
 * and job checks; and that the loop frees its tensors.
 */
import { expect } from 'chai';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { TallyError, ValidationError } from '../../src/errors.js';
import { decodeSum, encodeUpdate } from '../../src/dp/encode.js';
import { paddedLength, rotate, unrotate } from '../../src/dp/hadamard.js';
import { PrivacyLedger } from '../../src/dp/ledger.js';
import {
  decodeTask, encodeTask, EVAL_BITS, EVAL_DIM, jobHash, jobJson, noiselessScale, parseJob, planSession, rotationSeed, type FineTuneJob, type Purpose,
} from '../../src/federation/job.js';
import { adapterShapes, jobModel, Learner } from '../../src/federation/learner.js';
import { FineTuneServer, inProcessSum, runFineTune, type RoundSummary, type SecureSum, type SumOutcome, type SumRequest } from '../../src/federation/rounds.js';
import { BUILTIN_CANDIDATES, initBackend, tf } from '../../src/training/backend.js';
import type { Gpt2Config } from '../../src/training/checkpoint.js';
import { initGpt2Weights } from '../../src/training/gpt2.js';
import { encodeSafetensors, parseSafetensors } from '../../src/training/safetensors.js';
import { evaluate, trainLocal } from '../../src/training/train.js';

const SHAPE = { vocab_size: 257, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2, layer_norm_epsilon: 1e-5 } as const;
const CONFIG: Gpt2Config = { model_type: 'gpt2', ...SHAPE, activation_function: 'gelu_new', bos_token_id: 256, eos_token_id: 256, extra: {} };
const BASE = { config: CONFIG, weights: initGpt2Weights(SHAPE, 'tally/test/finetune') };

const TEXTS = [
  'the union is strong and the harvest is good. ',
  'we must balance the budget and pay the debt. ',
  'peace abroad and prosperity at home, always. ',
  'roads, rails and rivers bind the states together. ',
];

/** A site's windows: 4 training windows of 16 bytes, held-out windows of uneven lengths (so token weighting matters). */
function siteData(i: number): { train: Uint16Array[]; heldOut: Uint16Array[] } {
  const bytes = Buffer.from(TEXTS[i]!.repeat(4), 'utf8');
  const w = (from: number, len: number): Uint16Array => Uint16Array.from(bytes.subarray(from, from + len));
  return { train: [0, 16, 32, 48].map((o) => w(o, 16)), heldOut: [w(100, 16), w(120, 4 + 3 * i)].slice(0, 1 + (i % 2)) };
}

function jobOf(json: Record<string, unknown>, sites = 3, threshold = 2): FineTuneJob {
  return parseJob({ lora: { r: 2, alpha: 4 }, local: { steps: 1, batchSize: 4, lr: 0.05 }, ...json }, { sites, threshold });
}

const noDp = (o: Record<string, unknown> = {}): Record<string, unknown> => ({ mechanism: 'none', clip: 0.3, bits: 24, ...o });
const ddg = (epsilon = 1e4): Record<string, unknown> => ({ mechanism: 'ddg', clip: 0.3, noiseMultiplier: 1, bits: 20, budget: { epsilon, delta: 1e-5 } });

/** A SecureSum that records what the loop asked for and what came back. */
function recording(inner: SecureSum): SecureSum & { calls: SumRequest[]; outcomes: SumOutcome[] } {
  const calls: SumRequest[] = [];
  const outcomes: SumOutcome[] = [];
  return {
    calls, outcomes,
    async run(req) {
      calls.push(req);
      const out = await inner.run(req);
      outcomes.push(out);
      return out;
    },
  };
}

interface Federation {
  readonly job: FineTuneJob;
  readonly server: FineTuneServer;
  readonly learners: Learner[];
  readonly sum: ReturnType<typeof recording>;
  /** Local steps taken by all sites. */
  steps: number;
  dispose(): void;
}

/**
 * A coordinator and `job.sites` sites in one process; everything seeded
 * (sites' batch order, encoders, session nonces and keys) under `seed`.
 */
function federation(job: FineTuneJob, o: { seed?: string; silentFrom?: (site: number, round: number, purpose: Purpose) => number | undefined } = {}): Federation {
  const seed = o.seed ?? 'fed';
  const model = jobModel(job, BASE);
  const server = new FineTuneServer({ job, model });
  model.dispose();
  const learners: Learner[] = [];
  const f: Federation = {
    job, server, learners, steps: 0,
    sum: undefined as never,
    dispose: () => learners.forEach((l) => l.dispose()),
  };
  for (let i = 0; i < job.sites; i++) {
    learners.push(new Learner({ job, base: BASE, ...siteData(i), seed: `site-${i + 1}`, rng: new DeterministicRng(`${seed}/site-${i + 1}`), onStep: () => { f.steps++; } }));
  }
  const silentFrom = o.silentFrom;
  (f as { sum: Federation['sum'] }).sum = recording(inProcessSum({
    seed: `${seed}/sum`,
    sites: learners.map((l, i) => ({
      id: `site-${i + 1}`,
      input: (task, nonce) => l.input(task, nonce).input,
      ...(silentFrom !== undefined ? { silentFrom: (round: number, purpose: Purpose) => silentFrom(i, round, purpose) } : {}),
    })),
  }));
  return f;
}

function trainableSize(job: FineTuneJob): number {
  const m = jobModel(job, BASE);
  try {
    return m.trainable().reduce((n, v) => n + v.size, 0);
  } finally {
    m.dispose();
  }
}

const copy = (m: ReadonlyMap<string, Float32Array>): Map<string, Float32Array> => new Map([...m].map(([k, v]) => [k, v.slice()]));

/**
 * The plain arithmetic of one round, outside the secure path: each listed
 * site trains a fresh copy of the model from `global` exactly as its Learner
 * does (same seed, same options), its delta is clipped to C, and the result
 * is global + η_s · mean(clipped deltas) over the trainable tensors.
 */
function plainRound(job: FineTuneJob, global: ReadonlyMap<string, Float32Array>, round: number, sites: readonly number[]): { next: Map<string, Float32Array>; norms: number[]; meanNorm: number } {
  let mean: Float64Array | undefined;
  let layout: readonly { name: string; offset: number }[] = [];
  const norms: number[] = [];
  for (const i of sites) {
    const m = jobModel(job, BASE);
    try {
      m.setAdapterWeights(global);
      const r = trainLocal(m, siteData(i).train, { steps: job.local.steps, batchSize: job.local.batchSize, lr: job.local.lr, weightDecay: job.local.weightDecay, seed: `site-${i + 1}/round-${round}`, schedule: 'constant' });
      layout = r.layout;
      const norm = Math.hypot(...r.delta);
      norms.push(norm);
      const f = Math.min(1, job.dp.clip / norm);
      mean ??= new Float64Array(r.delta.length);
      for (let j = 0; j < r.delta.length; j++) mean[j]! += (f * r.delta[j]!) / sites.length;
    } finally {
      m.dispose();
    }
  }
  const next = copy(global);
  for (const e of layout) {
    const w = next.get(e.name)!;
    for (let j = 0; j < w.length; j++) w[j] = w[j]! + job.strategy.serverLr * mean![e.offset + j]!;
  }
  return { next, norms, meanNorm: Math.hypot(...mean!) };
}

function expectClose(actual: ReadonlyMap<string, Float32Array>, want: ReadonlyMap<string, Float32Array>, tol: number): void {
  expect([...actual.keys()].sort()).to.deep.equal([...want.keys()].sort());
  for (const [name, w] of want) {
    const a = actual.get(name)!;
    let worst = 0;
    for (let j = 0; j < w.length; j++) worst = Math.max(worst, Math.abs(a[j]! - w[j]!));
    expect(worst, name).to.be.below(tol);
  }
}

/** The consortium-wide loss as the sites' own evaluations give it: Σ loss_i·tokens_i / Σ tokens_i. */
function plainEval(job: FineTuneJob, adapter: ReadonlyMap<string, Float32Array>, sites: readonly number[]): { loss: number; tokens: number } {
  let sum = 0, tokens = 0;
  for (const i of sites) {
    const m = jobModel(job, BASE);
    try {
      m.setAdapterWeights(adapter);
      const e = evaluate(m, siteData(i).heldOut);
      sum += e.loss * e.tokens;
      tokens += e.tokens;
    } finally {
      m.dispose();
    }
  }
  return { loss: sum / tokens, tokens };
}

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

function throws(f: () => unknown): Error {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an exception');
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/**
 * A `silentFrom` for {@link federation}: the listed sites fall silent from
 * secagg round `from` in those attempts (1-based) of round 1's train session
 * that `attempts` picks. inProcessSum asks every site in order at the start
 * of each session, so site 0's question counts the attempts.
 */
function silentIn(sites: readonly number[], attempts: (attempt: number) => boolean, from = 2): (site: number, round: number, purpose: Purpose) => number | undefined {
  let attempt = 0;
  return (site, round, purpose) => {
    if (purpose !== 'train' || round !== 1) return undefined;
    if (site === 0) attempt++;
    return sites.includes(site) && attempts(attempt) ? from : undefined;
  };
}

describe('federation: fine-tuning rounds (job, learner, server, loop)', function () {
  this.timeout(120_000);

  before(async () => {
    // A candidate list of its own: initBackend remembers its choice per list, and test/training/backend.test.ts
    // must be the first in the process to choose from the built-in one (it checks what that choice logs).
    // The tiny model trains as fast on the plain-JavaScript backend.
    await initBackend({ prefer: 'cpu', candidates: BUILTIN_CANDIDATES.filter((c) => c.name === 'cpu') });
  });

  describe('the secure path', () => {
    it('without DP, the global adapter after a round is before + η_s·mean(clipped deltas) within the fixed-point precision', async () => {
      const job = jobOf({ rounds: 1, local: { steps: 2, batchSize: 4, lr: 0.05 }, strategy: { serverLr: 0.5 }, dp: noDp() });
      const f = federation(job);
      try {
        const before = copy(f.server.adapter);
        const result = await runFineTune(f.server, f.sum);
        expect(result.outcome).to.equal('completed');
        const want = plainRound(job, before, 1, [0, 1, 2]);
        // The clip is exercised: at least one site's delta is longer than C.
        expect(Math.max(...want.norms)).to.be.above(job.dp.clip);
        expectClose(f.server.adapter, want.next, 1e-4);
        // FFA-LoRA: A is frozen, identical at every party and untouched.
        for (const [name, a] of before) if (name.includes('lora_A')) expect(f.server.adapter.get(name)).to.deep.equal(a);
        const r1 = result.rounds[1]!;
        expect(r1.survivors).to.deep.equal(['site-1', 'site-2', 'site-3']);
        expect(r1.updateNorm).to.be.closeTo(want.meanNorm, 1e-4);
        expect(r1.epsilon).to.equal(0);
        expect(f.server.ledger.entries).to.have.length(0);
        // The train session the loop opened is the one derivation's.
        const train = f.sum.calls.find((c) => c.purpose === 'train')!;
        expect(train.session).to.deep.equal(planSession(job, 'train', trainableSize(job)).session);
      } finally {
        f.dispose();
      }
    });

    it('the eval session gives the token-weighted mean of the sites\' own held-out losses', async () => {
      const job = jobOf({ rounds: 1, dp: noDp() });
      const f = federation(job);
      try {
        const before = copy(f.server.adapter);
        const result = await runFineTune(f.server, f.sum);
        const base = plainEval(job, before, [0, 1, 2]);
        const after = plainEval(job, f.server.adapter, [0, 1, 2]);
        expect(result.rounds[0]!.evalTokens).to.equal(base.tokens);
        expect(result.rounds[0]!.evalLoss).to.be.closeTo(base.loss, 1e-3);
        expect(result.rounds[1]!.evalTokens).to.equal(after.tokens);
        expect(result.rounds[1]!.evalLoss).to.be.closeTo(after.loss, 1e-3);
        expect(result.rounds[1]!.perplexity).to.be.closeTo(Math.exp(result.rounds[1]!.evalLoss), 1e-9);
        // The eval sessions are the plan's: 2 values summed exactly at 32 bits.
        for (const c of f.sum.calls.filter((x) => x.purpose === 'eval')) expect(c.session).to.deep.equal({ dim: EVAL_DIM, bits: EVAL_BITS, threshold: job.threshold });
      } finally {
        f.dispose();
      }
    });
  });

  describe('the privacy budget', () => {
    /** ε after k rounds of the job's one event, at the budget's δ. */
    function epsilonAfter(job: FineTuneJob, k: number): number {
      const ev = planSession(job, 'train', trainableSize(job)).event!;
      return new PrivacyLedger().epsilon(job.dp.budget!.delta, Array.from({ length: k }, () => ev));
    }

    it('a budget below one round\'s ε is refused after round 0, before any train session and before any site trains', async () => {
      const probe = jobOf({ rounds: 3, dp: ddg() });
      const one = epsilonAfter(probe, 1);
      const job = jobOf({ rounds: 3, dp: { ...ddg(one / 2) } });
      const f = federation(job);
      const logs: string[] = [];
      try {
        const result = await runFineTune(f.server, f.sum, { events: { log: (l) => logs.push(l) } });
        expect(result.outcome).to.equal('budget-exhausted');
        expect(result.stoppedBy).to.match(/budget/);
        expect(result.rounds.map((r) => r.round)).to.deep.equal([0]);
        expect(f.sum.calls.map((c) => c.purpose)).to.deep.equal(['eval']);
        expect(f.steps).to.equal(0);
        expect(f.server.ledger.entries).to.have.length(0);
        expect(f.server.epsilon()).to.equal(0);
        expect(logs.some((l) => /round 1 refused before any site trained/.test(l))).to.equal(true);
      } finally {
        f.dispose();
      }
    });

    it('ε never passes the budget: the loop stops before the round that would; each recorded event is planSession\'s', async () => {
      const probe = jobOf({ rounds: 4, dp: ddg() });
      const [e1, e2, e3] = [1, 2, 3].map((k) => epsilonAfter(probe, k)) as [number, number, number];
      expect(e1).to.be.below(e2);
      const budget = (e2 + e3) / 2;
      const job = jobOf({ rounds: 4, dp: ddg(budget) });
      const f = federation(job);
      try {
        const result = await runFineTune(f.server, f.sum);
        expect(result.outcome).to.equal('budget-exhausted');
        expect(result.rounds.map((r) => r.round)).to.deep.equal([0, 1, 2]);
        expect(f.sum.calls.filter((c) => c.purpose === 'train')).to.have.length(2);
        const ev = planSession(job, 'train', trainableSize(job)).event;
        expect(ev).to.not.equal(undefined);
        expect(f.server.ledger.entries.map((e) => e.event)).to.deep.equal([ev, ev]);
        expect(f.server.ledger.entries.map((e) => e.label)).to.deep.equal(['round 1', 'round 2']);
        expect(result.rounds[1]!.epsilon).to.be.closeTo(e1, 1e-9 * e1);
        expect(result.rounds[2]!.epsilon).to.be.closeTo(e2, 1e-9 * e2);
        for (const r of result.rounds) expect(r.epsilon).to.be.at.most(budget);
        expect(f.server.epsilon()).to.be.at.most(budget);
      } finally {
        f.dispose();
      }
    });

    it('a retry that the budget cannot pay for is refused before it runs (aborted attempts are charged first)', async () => {
      const probe = jobOf({ rounds: 2, dp: ddg() }, 3, 2);
      const [e1, e2] = [1, 2].map((k) => epsilonAfter(probe, k)) as [number, number];
      const job = jobOf({ rounds: 2, dp: ddg((e1 + e2) / 2) }, 3, 2);
      // Round 1's first train session: two of three sites fall silent from R2 (masked inputs), so it aborts below t and is charged.
      const f = federation(job, { silentFrom: silentIn([1, 2], (attempt) => attempt === 1) });
      try {
        const result = await runFineTune(f.server, f.sum);
        expect(result.outcome).to.equal('budget-exhausted');
        expect(result.rounds.map((r) => r.round)).to.deep.equal([0]);
        const trains = f.sum.outcomes.filter((_, i) => f.sum.calls[i]!.purpose === 'train');
        expect(trains.map((o) => o.kind)).to.deep.equal(['aborted']);
        expect(f.server.ledger.entries.map((e) => e.label)).to.deep.equal(['round 1 attempt 1 (aborted in R2)']);
        expect(f.server.epsilon()).to.be.at.most(job.dp.budget!.epsilon);
      } finally {
        f.dispose();
      }
    });
  });

  describe('dropouts, aborts and retries', () => {
    it('a site silent from R2 of a train session: the round completes with t of n and the mean is over the survivors only', async () => {
      const job = jobOf({ rounds: 1, dp: noDp() }, 4, 3);
      const f = federation(job, { silentFrom: silentIn([3], () => true) });
      try {
        const before = copy(f.server.adapter);
        const result = await runFineTune(f.server, f.sum);
        expect(result.outcome).to.equal('completed');
        const r1 = result.rounds[1]!;
        expect(r1.survivors).to.deep.equal(['site-1', 'site-2', 'site-3']);
        expect(r1.dropped).to.deep.equal(['site-4']);
        expect(r1.attempts).to.equal(1);
        // Divided by the 3 sites in the sum, not by n = 4.
        expectClose(f.server.adapter, plainRound(job, before, 1, [0, 1, 2]).next, 1e-4);
        // Only the train session lost it: all four evaluate.
        expect(r1.evalLoss).to.be.closeTo(plainEval(job, f.server.adapter, [0, 1, 2, 3]).loss, 1e-3);
      } finally {
        f.dispose();
      }
    });

    it('below t survivors the session aborts and is retried with a fresh nonce; an abort from R2 on is charged, one before R2 is not', async () => {
      for (const from of [1, 2]) {
        const job = jobOf({ rounds: 1, dp: ddg() }, 3, 2);
        const f = federation(job, { silentFrom: silentIn([1, 2], (attempt) => attempt === 1, from) });
        try {
          const result = await runFineTune(f.server, f.sum);
          expect(result.outcome).to.equal('completed');
          const trains = f.sum.outcomes.filter((_, i) => f.sum.calls[i]!.purpose === 'train');
          expect(trains.map((o) => o.kind)).to.deep.equal(['aborted', 'completed']);
          const aborted = trains[0] as Extract<SumOutcome, { kind: 'aborted' }>;
          expect(aborted.round).to.equal(from);
          expect(aborted.code).to.equal('SECAGG_ERR_BELOW_THRESHOLD');
          expect(hex(trains[0]!.nonce)).to.not.equal(hex(trains[1]!.nonce));
          expect(result.rounds[1]!.attempts).to.equal(2);
          expect(result.rounds[1]!.survivors).to.deep.equal(['site-1', 'site-2', 'site-3']);
          const ev = planSession(job, 'train', trainableSize(job)).event;
          const labels = f.server.ledger.entries.map((e) => e.label);
          expect(labels).to.deep.equal(from >= 2 ? ['round 1 attempt 1 (aborted in R2)', 'round 1'] : ['round 1']);
          expect(f.server.ledger.entries.map((e) => e.event)).to.deep.equal(labels.map(() => ev));
          expect(result.rounds[1]!.epsilon).to.equal(f.server.ledger.epsilon(job.dp.budget!.delta));
        } finally {
          f.dispose();
        }
      }
    });

    it('a session that aborts maxAttempts times ends the job with FL_ERR_ABORTED; every attempt has its own nonce and each is charged', async () => {
      const job = jobOf({ rounds: 2, dp: ddg() }, 3, 2);
      const f = federation(job, { silentFrom: silentIn([1, 2], () => true) });
      try {
        const err = await rejects(runFineTune(f.server, f.sum, { maxAttempts: 3 }));
        expect(err).to.be.instanceOf(TallyError);
        expect((err as TallyError).code).to.equal('FL_ERR_ABORTED');
        expect(err.message).to.match(/round 1: the train session aborted 3 times/);
        const trains = f.sum.outcomes.filter((_, i) => f.sum.calls[i]!.purpose === 'train');
        expect(trains.map((o) => o.kind)).to.deep.equal(['aborted', 'aborted', 'aborted']);
        expect(new Set(trains.map((o) => hex(o.nonce))).size).to.equal(3);
        expect(f.server.ledger.entries.map((e) => e.label)).to.deep.equal([1, 2, 3].map((a) => `round 1 attempt ${a} (aborted in R2)`));
        expect(f.server.history.map((r) => r.round)).to.deep.equal([0]);
      } finally {
        f.dispose();
      }
    });
  });

  describe('resuming from a snapshot', () => {
    /** A history without wall times (the only field that legitimately differs between two runs). */
    const timeless = (h: readonly RoundSummary[]): unknown[] => h.map(({ seconds: _s, ...rest }) => rest);

    for (const strategy of [{ kind: 'fedprox', mu: 0.1, serverLr: 0.8, serverMomentum: 0.5 }, { kind: 'scaffold', serverMomentum: 0.3 }]) {
    it(`a coordinator restarted from its round-1 snapshot finishes exactly as the uninterrupted run (history, ledger, ε, adapter): ${strategy.kind}`, async () => {
      // DDG noise, server momentum, FedProx or SCAFFOLD's control variate: the state the snapshot must carry.
      const job = jobOf({ rounds: 2, strategy, dp: ddg() });
      const a = federation(job, { seed: 'resume' });
      const b = federation(job, { seed: 'resume' });
      try {
        const whole = await runFineTune(a.server, a.sum);
        expect(whole.outcome).to.equal('completed');

        // The same federation, whose coordinator dies right after persisting round 1.
        let saved: Uint8Array | undefined;
        const crash = await rejects(runFineTune(b.server, b.sum, { checkpoint: (round, snapshot) => { if (round === 1) { saved = snapshot; throw new Error('coordinator killed'); } } }));
        expect(crash.message).to.equal('coordinator killed');
        expect(saved).to.not.equal(undefined);
        const model = jobModel(job, BASE);
        const fresh = new FineTuneServer({ job, model });
        model.dispose();
        fresh.restore(saved!);
        expect(fresh.round).to.equal(1);
        expect(fresh.ledger.entries).to.have.length(1);
        const rest = await runFineTune(fresh, b.sum);
        expect(rest.outcome).to.equal('completed');
        // Only round 2 ran again: the resumed loop asked for one train and one eval session.
        expect(b.sum.calls.slice(-2).map((c) => [c.purpose, c.round])).to.deep.equal([['train', 2], ['eval', 2]]);

        expect(timeless(rest.rounds)).to.deep.equal(timeless(whole.rounds));
        expect(fresh.ledger.entries).to.deep.equal(a.server.ledger.entries);
        expect(fresh.epsilon()).to.equal(a.server.epsilon());
        expect(fresh.epsilon()).to.be.above(0);
        expect(fresh.adapter).to.deep.equal(a.server.adapter);
        // The rest of the state (momentum, control variate) too: the snapshots differ only in the wall times of the history.
        const strip = (bytes: Uint8Array): unknown => { const x = parseSafetensors(bytes); return { t: [...x.tensors.keys()].map((k) => [k, [...x.float32(k)]]), h: timeless(JSON.parse(x.metadata['tally.history']!) as RoundSummary[]), l: x.metadata['tally.ledger'] }; };
        expect(strip(fresh.snapshot())).to.deep.equal(strip(a.server.snapshot()));
      } finally {
        a.dispose();
        b.dispose();
      }
    });
    }

    it('restore() refuses another job\'s snapshot and a malformed one with FL_ERR_RESUME', async () => {
      const job = jobOf({ rounds: 1, dp: noDp() });
      const other = jobOf({ rounds: 2, dp: noDp() });
      const m = jobModel(job, BASE);
      try {
        const mine = new FineTuneServer({ job, model: m });
        const theirs = new FineTuneServer({ job: other, model: m });
        const snap = theirs.snapshot();
        const refused = (bytes: Uint8Array): string => {
          const err = throws(() => mine.restore(bytes));
          expect(err, err.message).to.be.instanceOf(ValidationError);
          expect((err as ValidationError).code, err.message).to.equal('FL_ERR_RESUME');
          return err.message;
        };
        expect(refused(snap)).to.match(/another job/);
        expect(refused(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]))).to.match(/cannot resume/);
        const meta = { 'tally.job': mine.jobId };
        const tensors = [...mine.adapter].map(([name, data]) => ({ name, shape: mine.shapes.get(name)!, data }));
        expect(refused(encodeSafetensors(tensors.slice(1), meta))).to.match(/lacks/);
        expect(refused(encodeSafetensors(tensors, { ...meta, 'tally.ledger': '{"v":1,"seq":7}' }))).to.match(/cannot resume/);
        expect(refused(encodeSafetensors(tensors, { ...meta, 'tally.history': '[{' }))).to.match(/cannot resume/);
        // Nothing of a refused snapshot is kept.
        expect(mine.history).to.deep.equal([]);
        mine.restore(mine.snapshot());
      } finally {
        m.dispose();
      }
    });
  });

  describe('tasks and jobs', () => {
    const job = jobOf({ rounds: 2, dp: noDp() });
    const scaffold = jobOf({ rounds: 2, strategy: { kind: 'scaffold' }, dp: noDp() });
    let shapes: Map<string, number[]>;
    let adapter: Map<string, Float32Array>;
    before(() => {
      const m = jobModel(job, BASE);
      shapes = adapterShapes(m);
      adapter = m.adapterWeights();
      m.dispose();
    });
    const badTask = (bytes: Uint8Array, expect2: Parameters<typeof decodeTask>[1] = { job: jobHash(job), shapes }): string => {
      const err = throws(() => decodeTask(bytes, expect2));
      expect(err, err.message).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).code, err.message).to.equal('FL_ERR_BAD_TASK');
      return err.message;
    };

    it('a task round-trips; decodeTask refuses another job\'s, a missing tensor, a wrong shape, non-finite values, garbage', () => {
      const id = jobHash(job);
      const t = decodeTask(encodeTask({ job: id, round: 3, purpose: 'train', adapter }, shapes), { job: id, shapes });
      expect([t.job, t.round, t.purpose, t.control]).to.deep.equal([id, 3, 'train', undefined]);
      expect(t.adapter).to.deep.equal(adapter);

      expect(badTask(encodeTask({ job: jobHash(scaffold), round: 1, purpose: 'train', adapter }, shapes))).to.match(/belongs to job/);
      const [first, ...rest] = [...adapter];
      expect(badTask(encodeTask({ job: id, round: 1, purpose: 'train', adapter: new Map(rest) }, shapes))).to.match(/missing tensor/);
      const transposed = new Map(shapes);
      transposed.set(first![0], [...shapes.get(first![0])!].reverse());
      expect(badTask(encodeTask({ job: id, round: 1, purpose: 'train', adapter }, transposed))).to.match(/expected F32/);
      for (const v of [NaN, Infinity, -Infinity]) {
        const poisoned = copy(adapter);
        poisoned.get(first![0])![1] = v;
        expect(badTask(encodeTask({ job: id, round: 1, purpose: 'eval', adapter: poisoned }, shapes))).to.match(/non-finite/);
      }
      expect(badTask(new DeterministicRng('garbage').bytes(300))).to.match(/^task: /);
      expect(badTask(new Uint8Array(0))).to.match(/empty/);
      // A safetensors file, but not a task: no tally.task metadata.
      expect(badTask(encodeSafetensors([...adapter].map(([name, data]) => ({ name, shape: shapes.get(name)!, data }))))).to.match(/tally\.task/);
      // An extra tensor, and a control variate that this (FedAvg) site does not expect.
      expect(badTask(encodeTask({ job: id, round: 1, purpose: 'train', adapter: new Map([...adapter, ['extra', new Float32Array(2)]]) }, new Map([...shapes, ['extra', [2]]])))).to.match(/unexpected tensor extra/);
      expect(badTask(encodeTask({ job: id, round: 1, purpose: 'train', adapter, control: new Float32Array(4) }, shapes))).to.match(/control variate/);
      // SCAFFOLD's train task must carry the control variate, of the delta's length.
      const sid = jobHash(scaffold);
      const n = trainableSize(scaffold);
      expect(badTask(encodeTask({ job: sid, round: 1, purpose: 'train', adapter }, shapes), { job: sid, shapes, controlLength: n })).to.match(/SCAFFOLD needs/);
      expect(badTask(encodeTask({ job: sid, round: 1, purpose: 'train', adapter, control: new Float32Array(n + 1) }, shapes), { job: sid, shapes, controlLength: n })).to.match(/unexpected control/);
      expect(decodeTask(encodeTask({ job: sid, round: 1, purpose: 'train', adapter, control: new Float32Array(n).fill(0.5) }, shapes), { job: sid, shapes, controlLength: n }).control).to.have.length(n);
    });

    it('a Learner refuses a task of another job before it trains', () => {
      let steps = 0;
      const l = new Learner({ job, base: BASE, ...siteData(0), seed: 'x', onStep: () => { steps++; } });
      try {
        const other = encodeTask({ job: jobHash(scaffold), round: 1, purpose: 'train', adapter }, shapes);
        const err = throws(() => l.input(other, new Uint8Array(32)));
        expect((err as ValidationError).code).to.equal('FL_ERR_BAD_TASK');
        expect(steps).to.equal(0);
        // Its own job's task is accepted and trained on.
        expect(l.input(encodeTask({ job: jobHash(job), round: 1, purpose: 'train', adapter }, shapes), new Uint8Array(32)).input).to.have.length(planSession(job, 'train', trainableSize(job)).session.dim);
        expect(steps).to.equal(job.local.steps);
      } finally {
        l.dispose();
      }
    });

    it('parseJob fills the defaults and refuses unknown fields and bad values with FL_ERR_BAD_JOB naming the field', () => {
      const ctx = { sites: 3, threshold: 2 };
      const d = parseJob({ dp: { budget: { epsilon: 8, delta: 1e-5 } } }, ctx);
      expect([d.rounds, d.lora.r, d.strategy.kind, d.strategy.mu, d.dp.mechanism, d.dp.bits]).to.deep.equal([5, 4, 'fedavg', 0, 'ddg', 20]);
      expect(parseJob({ strategy: { kind: 'fedprox' }, dp: { mechanism: 'none' } }, ctx).strategy.mu).to.equal(0.01);
      // What consortium.json holds reads back to the same job (and the same hash, which tasks and snapshots carry).
      for (const j of [d, job, scaffold, jobOf({ rounds: 2, strategy: { kind: 'fedprox', mu: 0.2, serverMomentum: 0.9 }, dp: ddg(3) })]) {
        const again = parseJob(JSON.parse(JSON.stringify(jobJson(j))), { sites: j.sites, threshold: j.threshold });
        expect(again).to.deep.equal(j);
        expect(jobHash(again)).to.equal(jobHash(j));
      }
      expect(jobHash(jobOf({ rounds: 2, dp: ddg(3) }))).to.not.equal(jobHash(jobOf({ rounds: 2, dp: ddg(4) })));
      const cases: [unknown, string][] = [
        [{ epochs: 3 }, 'training.epochs'],
        [{ lora: { rank: 2 } }, 'training.lora.rank'],
        [{ local: { steps: 1, lr: 0.1, momentum: 0.9 } }, 'training.local.momentum'],
        [{ strategy: { kind: 'fedavg', beta: 1 } }, 'training.strategy.beta'],
        [{ dp: { mechanism: 'none', sigma: 1 } }, 'training.dp.sigma'],
        [{ dp: { budget: { epsilon: 1, delta: 1e-5, alpha: 2 } } }, 'training.dp.budget.alpha'],
        [{ rounds: 0, dp: { mechanism: 'none' } }, 'training.rounds'],
        [{ rounds: 1.5, dp: { mechanism: 'none' } }, 'training.rounds'],
        [{ lora: { r: 0 }, dp: { mechanism: 'none' } }, 'training.lora.r'],
        [{ lora: { targets: ['wte'] }, dp: { mechanism: 'none' } }, 'training.lora.targets'],
        [{ lora: { targets: [] }, dp: { mechanism: 'none' } }, 'training.lora.targets'],
        [{ lora: { ffa: 'yes' }, dp: { mechanism: 'none' } }, 'training.lora.ffa'],
        [{ lora: { seed: '' }, dp: { mechanism: 'none' } }, 'training.lora.seed'],
        [{ local: { lr: -1 }, dp: { mechanism: 'none' } }, 'training.local.lr'],
        [{ local: { batchSize: 0 }, dp: { mechanism: 'none' } }, 'training.local.batchSize'],
        [{ strategy: { kind: 'fedsgd' }, dp: { mechanism: 'none' } }, 'training.strategy.kind'],
        [{ strategy: { serverMomentum: 1 }, dp: { mechanism: 'none' } }, 'training.strategy.serverMomentum'],
        [{ strategy: { kind: 'fedavg', mu: 0.1 }, dp: { mechanism: 'none' } }, 'training.strategy.mu'],
        [{ dp: { mechanism: 'laplace' } }, 'training.dp.mechanism'],
        [{ dp: { mechanism: 'none', clip: 0 } }, 'training.dp.clip'],
        [{ dp: { mechanism: 'none', clip: NaN } }, 'training.dp.clip'],
        [{ dp: { mechanism: 'none', bits: 33 } }, 'training.dp.bits'],
        [{ dp: { mechanism: 'ddg' } }, 'training.dp.budget'],
        [{ dp: { budget: { epsilon: 1, delta: 1 } } }, 'training.dp.budget.delta'],
        [{ dp: { budget: { epsilon: -1, delta: 1e-5 } } }, 'training.dp.budget.epsilon'],
        [{ dp: 'none' }, 'training.dp'],
        [[], 'training'],
      ];
      for (const [json, field] of cases) {
        const err = throws(() => parseJob(json, ctx));
        expect(err, JSON.stringify(json)).to.be.instanceOf(ValidationError);
        expect((err as ValidationError).code, err.message).to.equal('FL_ERR_BAD_JOB');
        expect(err.message, JSON.stringify(json)).to.include(field);
      }
      for (const bad of [{ sites: 1, threshold: 1 }, { sites: 3, threshold: 4 }]) {
        expect((throws(() => parseJob({ dp: { mechanism: 'none' } }, bad)) as ValidationError).code).to.equal('FL_ERR_BAD_JOB');
      }
    });

    it('planSession: SCAFFOLD doubles the vector; eval is 2 values at 32 bits; DP sessions are planRound\'s', () => {
      const n = trainableSize(job);
      const plain = planSession(job, 'train', n);
      const s = planSession(scaffold, 'train', n);
      expect(plain.rawDim).to.equal(n);
      expect(s.rawDim).to.equal(2 * n);
      expect(s.session.dim).to.equal(paddedLength(2 * n));
      expect(plain.session).to.deep.equal({ dim: paddedLength(n), bits: 24, threshold: 2 });
      expect(plain.event).to.equal(undefined);
      expect(plain.encode!.noise).to.deep.equal({ kind: 'none' });
      expect(planSession(job, 'eval', n)).to.deep.equal({ purpose: 'eval', session: { dim: EVAL_DIM, bits: EVAL_BITS, threshold: 2 }, rawDim: EVAL_DIM });
      const dp = jobOf({ rounds: 1, dp: ddg() });
      const p = planSession(dp, 'train', n);
      expect(p.event).to.not.equal(undefined);
      expect(p.session.threshold).to.equal(2);
      expect(p.session.dim).to.be.at.least(paddedLength(n));
      // A Learner derives the same session from its own copy of the job.
      const l = new Learner({ job: scaffold, base: BASE, ...siteData(0), seed: 'x' });
      try {
        expect(l.expected('train')).to.deep.equal(s.session);
        expect(l.expected('eval')).to.deep.equal(planSession(scaffold, 'eval', n).session);
      } finally {
        l.dispose();
      }
      expect((throws(() => planSession(job, 'train', 0)) as ValidationError).code).to.equal('FL_ERR_BAD_JOB');
    });

    it('without DP the scale never wraps: n sites each sending the largest coordinate C (either sign) decode exactly', () => {
      for (const [n, clip, bits] of [[3, 0.3, 24], [2, 1, 8], [7, 2.5, 20], [50, 0.01, 32]] as const) {
        const scale = noiselessScale(clip, n, bits);
        // The bound the scale is chosen for: n·(C·scale + 1) < 2^(b−1).
        expect(n * (clip * scale + 1)).to.be.below(2 ** (bits - 1));
        const dim = 10;
        const seed = rotationSeed(new DeterministicRng(`nonce/${n}`).bytes(32));
        for (const sign of [1, -1]) {
          // The update whose rotation is ±C·e_0: after the rotation one coordinate carries the whole norm.
          const e0 = new Float64Array(paddedLength(dim));
          e0[0] = sign * clip;
          const worst = unrotate(e0, paddedLength(dim), seed);
          expect(Math.abs(rotate(worst, seed)[0]!)).to.be.closeTo(clip, 1e-9 * clip);
          const sum = new Uint32Array(paddedLength(dim));
          const rng = new DeterministicRng(`round/${n}/${sign}`);
          for (let i = 0; i < n; i++) {
            const enc = encodeUpdate(worst, { clip: clip * (1 + 1e-9), scale, bits, beta: 0, noise: { kind: 'none' }, rotationSeed: seed }, rng);
            for (let j = 0; j < sum.length; j++) sum[j] = (sum[j]! + enc.encoded[j]!) % 2 ** bits;
          }
          const decoded = decodeSum(sum, paddedLength(dim), { scale, bits, rotationSeed: seed });
          for (let j = 0; j < decoded.length; j++) expect(decoded[j]!, `n ${n} b ${bits} sign ${sign} [${j}]`).to.be.closeTo(n * worst[j]!, (n * Math.sqrt(paddedLength(dim))) / scale);
        }
      }
      // A width too narrow for the cohort is refused.
      expect((throws(() => noiselessScale(1, 300, 8)) as ValidationError).code).to.equal('FL_ERR_BAD_JOB');
      // parseJob checks it at once (it needs n, C and b only), rather than after the first eval session.
      const err = throws(() => jobOf({ rounds: 1, dp: noDp({ bits: 8, clip: 1 }) }, 300, 2));
      expect((err as ValidationError).code).to.equal('FL_ERR_BAD_JOB');
      expect(err.message).to.include('training.dp.bits');
    });
  });

  describe('resources', () => {
    it('tf.memory().numTensors is flat across rounds of the loop (after a warm-up round)', async () => {
      const job = jobOf({ rounds: 4, strategy: { kind: 'scaffold', serverMomentum: 0.5 }, dp: ddg() });
      const f = federation(job);
      const counts: number[] = [];
      try {
        await runFineTune(f.server, f.sum, { events: { roundDone: () => counts.push(tf.memory().numTensors) } });
        expect(counts).to.have.length(5);
        // Round 0 warms up (the first eval); every training round after it leaves as many tensors as it found.
        expect(counts.slice(1), `tensors after rounds 0..4: ${counts.join(', ')}`).to.deep.equal([counts[1], counts[1], counts[1], counts[1]]);
      } finally {
        f.dispose();
      }
    });
  });
});
