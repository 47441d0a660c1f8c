/**
 * `npm run experiment [-- options]`: what federated LoRA fine-tuning buys on
 * the demo's data, against the base model, each site training alone, and
 * one model trained on the pooled data (which a consortium cannot legally
 * do), for FedAvg, FFA-LoRA, FedProx, SCAFFOLD and heterogeneous ranks,
 * each without DP and at two noise levels of the distributed discrete
 * Gaussian; and what secure aggregation costs per round against a plain
 * float sum. Writes docs/results.md, docs/results/*.svg (Vega-Lite, rendered
 * to SVG without a canvas) and bench/results/experiment.json.
 *
 * Every federated configuration runs the project's own round loop
 * (`runFineTune` over `inProcessSum`: real secagg-v1 sessions, the DP
 * encoder, the ledger); the per-round loss it reports is the consortium's,
 * learnt through the eval session's secure sum. The final adapter of each
 * configuration is then evaluated directly, per site, on more held-out
 * windows. Heterogeneous ranks are the job's `lora.ranks`; plain
 * aggregation (the updates in the clear, what secure aggregation costs
 * against) is the job's `aggregator: "plain"` over `inProcessPlain`. The one
 * row the project's `Learner` does not run, FedAvg with plain SGD (SCAFFOLD's
 * control), has its own sites here.
 *
 * options:
 *   --rounds R          rounds (default 4)
 *   --steps S           local steps per round (default 8)
 *   --batch B           windows per step (default 8)
 *   --round-eval N      held-out windows per site in the per-round secure eval (default 16)
 *   --eval N            held-out windows per site in the final evaluation (default 48)
 *   --only A,B          run only these configuration ids (a partial run; the doc notes it)
 *   --from-json         rewrite the doc and plots from bench/results/experiment.json, without training
 *   --out DIR           write results.md, results/ and experiment.json under DIR instead
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { systemRng } from '../src/crypto/rng.js';
import { decodeSum, encodeUpdate } from '../src/dp/encode.js';
import { demoPartition } from '../src/federation/demo-data.js';
import { decodeTask, EVAL_LOSS_SCALE, jobHash, parseJob, planSession, rotationSeed, type FineTuneJob } from '../src/federation/job.js';
import { adapterShapes, jobModel, Learner } from '../src/federation/learner.js';
import { FineTuneServer, inProcessPlain, inProcessSum, runFineTune, type InProcessSite, type PlainCollect, type RoundSummary, type SecureSum } from '../src/federation/rounds.js';
import { initBackend } from '../src/training/backend.js';
import { loadCheckpoint, type Gpt2Config } from '../src/training/checkpoint.js';
import { Gpt2Model } from '../src/training/gpt2.js';
import { evaluate, trainLocal } from '../src/training/train.js';
import type { LoraTargetModule } from '../src/training/adapter-format.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

// ---------------------------------------------------------------- settings

interface Settings {
  readonly sites: number;
  readonly threshold: number;
  readonly rounds: number;
  readonly steps: number;
  readonly batch: number;
  /** AdamW's learning rate (every configuration but SCAFFOLD). */
  readonly lr: number;
  /** SGD's learning rate (SCAFFOLD, whose control update assumes plain SGD steps). */
  readonly sgdLr: number;
  readonly r: number;
  readonly alpha: number;
  readonly targets: readonly LoraTargetModule[];
  readonly ranks: readonly number[];
  readonly fedproxMu: number;
  /** Clip of a site's update without DP (set so that it does not bind) and with DP. */
  readonly clipNoDp: number;
  readonly clipDp: number;
  readonly bits: number;
  readonly noise: readonly number[];
  readonly delta: number;
  readonly roundEvalWindows: number;
  readonly evalWindows: number;
  readonly windowBytes: number;
}

const DEFAULTS: Settings = {
  sites: 4, threshold: 3, rounds: 4, steps: 8, batch: 8, lr: 0.003, sgdLr: 0.3,
  r: 4, alpha: 8, targets: ['c_attn', 'c_proj', 'c_fc'], ranks: [2, 2, 4, 4], fedproxMu: 0.01,
  clipNoDp: 100, clipDp: 1, bits: 20, noise: [0.05, 0.5], delta: 1e-5,
  roundEvalWindows: 16, evalWindows: 48, windowBytes: 128,
};

type Method = 'fedavg' | 'ffa' | 'plain' | 'fedprox' | 'ffasgd' | 'scaffold' | 'hetlora';
const METHODS: readonly Method[] = ['fedavg', 'ffa', 'plain', 'fedprox', 'ffasgd', 'scaffold', 'hetlora'];
const METHOD_LABEL: Record<Method, string> = {
  fedavg: 'FedAvg, LoRA (A and B)',
  ffa: 'FedAvg, FFA-LoRA',
  plain: 'FedAvg, FFA-LoRA, plain aggregation',
  fedprox: 'FedProx, FFA-LoRA',
  ffasgd: 'FedAvg, FFA-LoRA, SGD',
  scaffold: 'SCAFFOLD, FFA-LoRA (SGD)',
  hetlora: 'FedAvg, FFA-LoRA, ranks 2/2/4/4',
};
/**
 * Without DP only: plain aggregation (the updates in the clear: the cost
 * secure aggregation is measured against; it cannot carry distributed DP),
 * and FedAvg with SCAFFOLD's optimiser and rate (the row SCAFFOLD is compared with).
 */
const NO_DP_ONLY: readonly Method[] = ['plain', 'ffasgd'];
/** Configurations whose sites train with plain SGD (at `sgdLr`). */
const SGD: readonly Method[] = ['ffasgd', 'scaffold'];

interface Config { readonly id: string; readonly method: Method; readonly noise: number | null }

function configs(s: Settings): Config[] {
  const out: Config[] = [];
  for (const noise of [null, ...s.noise]) {
    for (const method of METHODS) if (noise === null || !NO_DP_ONLY.includes(method)) out.push({ id: `${method}/${noise === null ? 'nodp' : `z${noise}`}`, method, noise });
  }
  return out;
}

function jobOf(s: Settings, c: Config): FineTuneJob {
  const ffa = c.method !== 'fedavg';
  const kind = c.method === 'fedprox' ? 'fedprox' : c.method === 'scaffold' ? 'scaffold' : 'fedavg';
  return parseJob({
    rounds: s.rounds,
    lora: { r: s.r, alpha: s.alpha, targets: [...s.targets], ffa, seed: 'tally/experiment/lora-a', ...(c.method === 'hetlora' ? { ranks: [...s.ranks] } : {}) },
    ...(c.method === 'plain' ? { aggregator: 'plain' } : {}),
    local: { steps: s.steps, batchSize: s.batch, lr: SGD.includes(c.method) ? s.sgdLr : s.lr, weightDecay: 0 },
    strategy: { kind, ...(kind === 'fedprox' ? { mu: s.fedproxMu } : {}), serverLr: 1, serverMomentum: 0 },
    dp: c.noise === null
      ? { mechanism: 'none', clip: s.clipNoDp, noiseMultiplier: 1, bits: s.bits }
      // The budget is set out of reach: the experiment reports the ε each configuration spends.
      : { mechanism: 'ddg', clip: s.clipDp, noiseMultiplier: c.noise, bits: s.bits, budget: { epsilon: 1e9, delta: s.delta } },
  }, { sites: s.sites, threshold: s.threshold });
}

// ---------------------------------------------------------------- results

interface SiteEval { readonly loss: number; readonly tokens: number }
interface Eval { readonly perSite: SiteEval[]; readonly overall: number }

interface FedRound {
  readonly round: number;
  /** The consortium's held-out loss through the eval session's secure sum (round-eval windows). */
  readonly evalLoss: number;
  readonly epsilon: number;
  readonly seconds: number;
  readonly bytes: { readonly up: number; readonly down: number };
  /** Training session: its wall time, the sites' input time inside it (local training and encoding), the envelope bytes. */
  readonly trainSession?: { readonly seconds: number; readonly inputSeconds: number; readonly up: number; readonly down: number };
}

interface FedResult {
  readonly id: string;
  readonly method: Method;
  readonly label: string;
  readonly noise: number | null;
  readonly clip: number;
  readonly lr: number;
  readonly optimizer: 'adamw' | 'sgd';
  readonly trainable: number;
  readonly sessionDim: number;
  readonly rounds: FedRound[];
  readonly final: Eval;
  readonly epsilon: number;
  /** ‖Δ‖₂ of the sites' updates before the clip (mean over sites and rounds) and the share clipped. */
  readonly meanNorm: number;
  readonly clippedShare: number;
  readonly seconds: number;
}

interface CostRow {
  readonly label: string;
  readonly rawDim: number;
  readonly sessionDim: number;
  readonly bits: number;
  readonly mechanism: string;
  /** Median seconds of one site's encoding (clip, rotate, round, noise). */
  readonly encodeSeconds: number;
  /** Median seconds of one secure-sum session of every site and the coordinator in one process (inputs precomputed). */
  readonly secureSeconds: number;
  readonly decodeSeconds: number;
  /** Median seconds of the plain float sum and mean of the sites' deltas. */
  readonly plainSeconds: number;
  /** Envelope bytes per site, to and from the coordinator (secure), and 4·dim up (plain). */
  readonly secureUpPerSite: number;
  readonly secureDownPerSite: number;
  readonly plainUpPerSite: number;
}

interface Results {
  readonly settings: Settings;
  readonly partial: boolean;
  readonly backend: string;
  readonly sites: { readonly span: string; readonly trainWindows: number; readonly heldOutWindows: number; readonly evalTokens: number }[];
  readonly base: Eval;
  readonly baseRoundEval: number;
  readonly localOnly: { readonly matrix: SiteEval[][]; readonly own: Eval; readonly rounds: number[] };
  readonly centralised: { readonly final: Eval; readonly rounds: number[] };
  readonly federated: FedResult[];
  readonly cost: CostRow[];
  readonly seconds: number;
  readonly date: string;
}

// ---------------------------------------------------------------- helpers

function arg(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}
function intArg(argv: string[], name: string, dflt: number): number {
  const v = arg(argv, name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${v}`);
  return n;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function overall(perSite: readonly SiteEval[]): number {
  let sum = 0, tokens = 0;
  for (const e of perSite) { sum += e.loss * e.tokens; tokens += e.tokens; }
  return sum / tokens;
}

function evalAll(model: Gpt2Model, heldOut: readonly (readonly Uint16Array[])[]): Eval {
  const perSite = heldOut.map((w) => { const e = evaluate(model, w); return { loss: e.loss, tokens: e.tokens }; });
  return { perSite, overall: overall(perSite) };
}

const log = (line: string): void => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

type Base = { readonly config: Gpt2Config; readonly weights: ReadonlyMap<string, Float32Array> };

interface SiteData { readonly train: Uint16Array[]; readonly roundEval: Uint16Array[]; readonly evalWindows: Uint16Array[] }

/**
 * A FedAvg site that trains with plain SGD (the control row of SCAFFOLD):
 * `Learner` takes SGD for SCAFFOLD only. Otherwise as `Learner`: the same
 * batch order (seed site-i/round-r), the same encoding.
 */
function sgdSite(i: number, job: FineTuneJob, base: Base, d: SiteData, onTrain: (norm: number, clipped: boolean) => void): { site: InProcessSite; dispose(): void } {
  const model = jobModel(job, base);
  const shapes = adapterShapes(model);
  const trainable = model.trainable().reduce((n, v) => n + v.size, 0);
  const jobId = jobHash(job);
  let cached: { round: number; vector: Float32Array } | undefined;
  return {
    site: {
      id: `site-${i + 1}`,
      input(task, nonce) {
        const t = decodeTask(task, { job: jobId, shapes });
        model.setAdapterWeights(t.adapter);
        if (t.purpose === 'eval') {
          const e = evaluate(model, d.roundEval);
          return Uint32Array.of(Math.round(e.loss * e.tokens * EVAL_LOSS_SCALE), e.tokens);
        }
        if (cached?.round !== t.round) {
          const r = trainLocal(model, d.train, { steps: job.local.steps, batchSize: job.local.batchSize, lr: job.local.lr, weightDecay: job.local.weightDecay, seed: `site-${i + 1}/round-${t.round}`, schedule: 'constant', optimizer: 'sgd' });
          cached = { round: t.round, vector: r.delta };
        }
        const plan = planSession(job, 'train', trainable);
        const enc = encodeUpdate(cached.vector, { ...plan.encode!, rotationSeed: rotationSeed(nonce) }, systemRng);
        onTrain(enc.norm, enc.clipped);
        return enc.encoded;
      },
    },
    dispose() { model.dispose(); },
  };
}

// ---------------------------------------------------------------- runs

async function runFederated(s: Settings, c: Config, base: Base, data: readonly SiteData[], evalSets: readonly Uint16Array[][]): Promise<FedResult> {
  const t0 = performance.now();
  const job = jobOf(s, c);
  const norms: number[] = [];
  let clipped = 0;
  const onTrain = (norm: number, wasClipped: boolean): void => { norms.push(norm); if (wasClipped) clipped++; };
  const disposers: (() => void)[] = [];
  let sites: InProcessSite[];
  let inputSeconds = 0;
  const timed = (f: InProcessSite['input']): InProcessSite['input'] => (task, nonce, purpose) => {
    const t = performance.now();
    try { return f(task, nonce, purpose); } finally { inputSeconds += (performance.now() - t) / 1000; }
  };
  const model = jobModel(job, base);
  const server = new FineTuneServer({ job, model });
  const trainSessions = new Map<number, NonNullable<FedRound['trainSession']>>();
  let plain: PlainCollect | undefined;
  if (c.method === 'ffasgd') {
    sites = data.map((d, i) => {
      const h = sgdSite(i, job, base, d, onTrain);
      disposers.push(() => h.dispose());
      return { id: h.site.id, input: timed(h.site.input) };
    });
  } else {
    const learners = data.map((d, i) => {
      const l = new Learner({
        job, base, train: d.train, heldOut: d.roundEval, seed: `site-${i + 1}`, siteIndex: i,
        onReport: (r) => { if (r.purpose === 'train' && r.norm !== undefined) onTrain(r.norm, r.clipped === true); },
      });
      disposers.push(() => l.dispose());
      return l;
    });
    sites = learners.map((l, i) => ({ id: `site-${i + 1}`, input: timed((task, nonce) => l.input(task, nonce).input) }));
    if (job.aggregator === 'plain') {
      const inner = inProcessPlain(learners.map((l, i) => ({
        id: `site-${i + 1}`,
        update: (task: Uint8Array) => { const t = performance.now(); try { return l.plainUpdate(task).update; } finally { inputSeconds += (performance.now() - t) / 1000; } },
      })));
      plain = {
        async collect(req) {
          inputSeconds = 0;
          const t = performance.now();
          const out = await inner.collect(req);
          trainSessions.set(req.round, { seconds: (performance.now() - t) / 1000, inputSeconds, up: out.bytes, down: 0 });
          return out;
        },
      };
    }
  }
  const inner = inProcessSum({ sites });
  const sum: SecureSum = {
    async run(req) {
      inputSeconds = 0;
      const out = await inner.run(req);
      if (req.purpose === 'train' && out.kind === 'completed') trainSessions.set(req.round, { seconds: out.seconds, inputSeconds, up: out.traffic.up, down: out.traffic.down });
      return out;
    },
  };
  try {
    const result = await runFineTune(server, sum, {
      ...(plain !== undefined ? { plain } : {}),
      events: { roundDone: (r: RoundSummary) => log(`  ${c.id} round ${r.round}: loss ${r.evalLoss.toFixed(4)}, ε ${r.epsilon.toFixed(2)}, ${r.seconds.toFixed(1)} s`) },
    });
    if (result.outcome !== 'completed') throw new Error(`${c.id}: ${result.outcome}: ${result.stoppedBy}`);
    model.setAdapterWeights(server.adapter);
    const final = evalAll(model, evalSets);
    const rounds: FedRound[] = result.rounds.map((r) => ({
      round: r.round, evalLoss: r.evalLoss, epsilon: r.epsilon, seconds: r.seconds, bytes: r.bytes,
      ...(trainSessions.has(r.round) ? { trainSession: trainSessions.get(r.round)! } : {}),
    }));
    const plan = server.plan('train');
    return {
      id: c.id, method: c.method, label: METHOD_LABEL[c.method], noise: c.noise, clip: job.dp.clip, lr: job.local.lr,
      optimizer: SGD.includes(c.method) ? 'sgd' : 'adamw',
      trainable: c.method === 'scaffold' ? plan.rawDim / 2 : plan.rawDim, sessionDim: plan.session.dim,
      rounds, final, epsilon: server.epsilon(),
      meanNorm: norms.reduce((a, b) => a + b, 0) / Math.max(1, norms.length), clippedShare: clipped / Math.max(1, norms.length),
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    for (const d of disposers) d();
    model.dispose();
  }
}

/** Secure aggregation of one round's training inputs against a plain float sum of the deltas, per job shape. */
async function secaggCost(s: Settings, label: string, c: Config, trainable: number, reps: number): Promise<CostRow> {
  const job = jobOf(s, c);
  const plan = planSession(job, 'train', trainable);
  const rawDim = plan.rawDim;
  // Deltas of the size (and roughly the norm) of a round's: the cost does not depend on the values.
  let x = 987654321;
  const rand = (): number => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return x / 2 ** 32 - 0.5; };
  const deltas = Array.from({ length: s.sites }, () => Float32Array.from({ length: rawDim }, () => rand() * 0.02));
  const seed = new Uint8Array(32).fill(7);
  const enc: number[] = [];
  const encoded: Uint32Array[] = [];
  for (const d of deltas) {
    const t = performance.now();
    encoded.push(encodeUpdate(d, { ...plan.encode!, rotationSeed: seed }, systemRng).encoded);
    enc.push((performance.now() - t) / 1000);
  }
  const secure: number[] = [], dec: number[] = [], plain: number[] = [];
  let up = 0, down = 0;
  const sum = inProcessSum({ sites: encoded.map((e, i) => ({ id: `site-${i + 1}`, input: () => e })) });
  for (let k = 0; k < reps; k++) {
    const out = await sum.run({ purpose: 'train', round: 1, task: new Uint8Array(0), session: plan.session });
    if (out.kind !== 'completed') throw new Error(`cost: the session aborted: ${out.message}`);
    secure.push(out.seconds);
    up = out.traffic.up; down = out.traffic.down;
    let t = performance.now();
    decodeSum(out.sum, rawDim, { scale: plan.encode!.scale, bits: plan.encode!.bits, rotationSeed: seed });
    dec.push((performance.now() - t) / 1000);
    t = performance.now();
    const mean = new Float64Array(rawDim);
    for (const d of deltas) for (let i = 0; i < rawDim; i++) mean[i]! += d[i]!;
    for (let i = 0; i < rawDim; i++) mean[i]! /= s.sites;
    plain.push((performance.now() - t) / 1000);
  }
  return {
    label, rawDim, sessionDim: plan.session.dim, bits: plan.session.bits, mechanism: job.dp.mechanism,
    encodeSeconds: median(enc), secureSeconds: median(secure), decodeSeconds: median(dec), plainSeconds: median(plain),
    secureUpPerSite: up / s.sites, secureDownPerSite: down / s.sites, plainUpPerSite: 4 * rawDim,
  };
}

async function experiment(s: Settings, only: Set<string> | undefined): Promise<Results> {
  const t0 = performance.now();
  const backend = await initBackend();
  log(`backend ${backend.name}`);
  const ck = loadCheckpoint(join(ROOT, 'models', 'tally-base'));
  const base: Base = { config: ck.config, weights: ck.tensors };
  const part = demoPartition(s.sites, s.windowBytes, Math.max(s.evalWindows, s.roundEvalWindows));
  const data: SiteData[] = [];
  const spans: string[] = [];
  for (let i = 0; i < s.sites; i++) {
    const d = part.data(i);
    data.push({ train: d.train, roundEval: d.heldOut.slice(0, s.roundEvalWindows), evalWindows: d.heldOut.slice(0, s.evalWindows) });
    spans.push(d.span);
  }
  const evalSets = data.map((d) => d.evalWindows);
  const roundSets = data.map((d) => d.roundEval);
  // The reference rows train LoRA's A and B (the stronger adapter) with AdamW, as FedAvg's first row.
  const refJob = jobOf(s, { id: 'ref', method: 'fedavg', noise: null });
  const fresh = (): Gpt2Model => jobModel(refJob, base);

  const m0 = fresh();
  const baseEval = evalAll(m0, evalSets);
  const baseRoundEval = evalAll(m0, roundSets).overall;
  m0.dispose();
  const sites: Results['sites'] = data.map((d, i) => ({ span: spans[i]!, trainWindows: d.train.length, heldOutWindows: d.evalWindows.length, evalTokens: baseEval.perSite[i]!.tokens }));
  log(`base: overall loss ${baseEval.overall.toFixed(4)} (perplexity ${Math.exp(baseEval.overall).toFixed(3)})`);

  // Local only: each site alone, the same rounds × steps it trains in a federation (AdamW restarted every round, as there).
  const matrix: SiteEval[][] = [];
  const localRounds: number[][] = [];
  for (let i = 0; i < s.sites; i++) {
    const m = fresh();
    const curve: number[] = [];
    for (let r = 1; r <= s.rounds; r++) {
      trainLocal(m, data[i]!.train, { steps: s.steps, batchSize: s.batch, lr: s.lr, schedule: 'constant', seed: `local/site-${i + 1}/round-${r}` });
      const e = evaluate(m, data[i]!.roundEval);
      curve.push(e.loss * e.tokens);
    }
    localRounds.push(curve);
    matrix.push(evalAll(m, evalSets).perSite);
    m.dispose();
    log(`local only, site ${i + 1}: own loss ${matrix[i]![i]!.loss.toFixed(4)}`);
  }
  const roundTokens = roundSets.map((w) => w.reduce((n, x) => n + x.length - 1, 0));
  const totalRoundTokens = roundTokens.reduce((a, b) => a + b, 0);
  const localCurve = Array.from({ length: s.rounds }, (_, r) => localRounds.reduce((a, c) => a + c[r]!, 0) / totalRoundTokens);
  const ownPerSite = matrix.map((row, i) => row[i]!);

  // Centralised: one model on the pooled training windows, the same total steps (sites × steps per round).
  const pooled = data.flatMap((d) => d.train);
  const mc = fresh();
  const centralCurve: number[] = [];
  for (let r = 1; r <= s.rounds; r++) {
    trainLocal(mc, pooled, { steps: s.sites * s.steps, batchSize: s.batch, lr: s.lr, schedule: 'constant', seed: `central/round-${r}` });
    centralCurve.push(evalAll(mc, roundSets).overall);
  }
  const centralFinal = evalAll(mc, evalSets);
  mc.dispose();
  log(`centralised: overall loss ${centralFinal.overall.toFixed(4)}`);

  const federated: FedResult[] = [];
  for (const c of configs(s)) {
    if (only !== undefined && !only.has(c.id)) continue;
    log(`${c.id} …`);
    const r = await runFederated(s, c, base, data, evalSets);
    federated.push(r);
    log(`${c.id}: overall loss ${r.final.overall.toFixed(4)}, ε ${r.epsilon.toFixed(2)}, ‖Δ‖ ${r.meanNorm.toFixed(3)} (${(100 * r.clippedShare).toFixed(0)}% clipped), ${r.seconds.toFixed(0)} s`);
  }

  log('cost of secure aggregation …');
  const trainableOf = (method: Method): number => {
    const m = jobModel(jobOf(s, { id: 'x', method, noise: null }), base);
    const n = m.trainable().reduce((a, v) => a + v.size, 0);
    m.dispose();
    return n;
  };
  const cost: CostRow[] = [];
  const zDp = s.noise[0]!;
  for (const [label, method] of [['LoRA (A and B)', 'fedavg'], ['FFA-LoRA (B only)', 'ffa'], ['SCAFFOLD, FFA-LoRA (B and control variate)', 'scaffold']] as const) {
    const n = trainableOf(method);
    for (const noise of [null, zDp]) cost.push(await secaggCost(s, label, { id: 'cost', method, noise }, n, 9));
  }
  return {
    settings: s, partial: only !== undefined, backend: backend.name, sites, base: baseEval, baseRoundEval,
    localOnly: { matrix, own: { perSite: ownPerSite, overall: overall(ownPerSite) }, rounds: localCurve },
    centralised: { final: centralFinal, rounds: centralCurve },
    federated, cost, seconds: (performance.now() - t0) / 1000, date: new Date().toISOString().slice(0, 10),
  };
}

// ---------------------------------------------------------------- plots

async function svg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const out = await view.toSVG();
  view.finalize();
  return `${out}\n`;
}

function dpLabel(noise: number | null, eps?: number): string {
  return noise === null ? 'no DP' : `z = ${noise}${eps !== undefined ? ` (ε = ${fmtEps(eps)})` : ''}`;
}

function fmtEps(e: number): string {
  return e >= 100 ? e.toFixed(0) : e >= 10 ? e.toFixed(1) : e.toFixed(2);
}

/** Whether every configuration at one z spent the same ε after every round (to 1e-4: the padded dimension moves it in the eighth digit). */
function sameEpsilon(res: Results): boolean {
  const dpRuns = res.federated.filter((x) => x.noise !== null);
  return res.settings.noise.every((z) => {
    const rs = dpRuns.filter((f) => f.noise === z);
    return rs.every((f) => f.rounds.every((r, i) => Math.abs(r.epsilon - rs[0]!.rounds[i]!.epsilon) <= 1e-4 * Math.max(1, r.epsilon)));
  });
}

const CENTRAL = 'centralised, pooled data (dashed)';
const LOCAL = 'local only, each site its own (dashed)';

async function plots(res: Results): Promise<{ loss: string; epsilon: string }> {
  const s = res.settings;
  const panels = [null, ...s.noise].map((z) => {
    const eps = z === null ? undefined : res.federated.find((f) => f.noise === z && f.method === 'ffa')?.epsilon;
    return { z, label: dpLabel(z, eps) };
  });
  const values: Record<string, unknown>[] = [];
  for (const p of panels) {
    const ref = (config: string, curve: readonly number[]): void => {
      values.push({ panel: p.label, config, kind: 'reference', round: 0, loss: res.baseRoundEval });
      curve.forEach((loss, i) => values.push({ panel: p.label, config, kind: 'reference', round: i + 1, loss }));
    };
    ref(CENTRAL, res.centralised.rounds);
    ref(LOCAL, res.localOnly.rounds);
    for (const f of res.federated.filter((x) => x.noise === p.z)) {
      for (const r of f.rounds) values.push({ panel: p.label, config: f.label, kind: 'federated', round: r.round, loss: r.evalLoss });
    }
  }
  const order = [...METHODS.map((m) => METHOD_LABEL[m]), CENTRAL, LOCAL];
  const loss: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Held-out loss per round (consortium-wide, through the secure eval sum)', anchor: 'start' },
    data: { values },
    facet: { column: { field: 'panel', type: 'nominal', sort: panels.map((p) => p.label), title: null } },
    spec: {
      width: 250, height: 230,
      mark: { type: 'line', point: { size: 25 }, strokeWidth: 1.5 },
      encoding: {
        x: { field: 'round', type: 'quantitative', title: 'round', axis: { tickMinStep: 1, format: 'd' } },
        y: { field: 'loss', type: 'quantitative', title: 'loss (nats per byte)', scale: { zero: false } },
        color: { field: 'config', type: 'nominal', sort: order, title: null, legend: { orient: 'bottom', columns: 3, labelLimit: 340 } },
        strokeDash: { field: 'kind', type: 'nominal', title: null, sort: ['federated', 'reference'], legend: null },
      },
    },
    resolve: { scale: { y: 'independent' } },
    config: { font: 'sans-serif', view: { stroke: '#ddd' } },
  };
  // Every configuration at one z spends the same ε when their plans' events agree: then one line per z.
  const dpRuns = res.federated.filter((x) => x.noise !== null);
  const same = sameEpsilon(res);
  const ev: Record<string, unknown>[] = [];
  for (const f of dpRuns) {
    if (same && dpRuns.find((g) => g.noise === f.noise) !== f) continue;
    for (const r of f.rounds) if (r.round > 0) ev.push({ noise: `z = ${f.noise}`, config: same ? 'every configuration' : f.label, round: r.round, epsilon: r.epsilon });
  }
  const epsilon: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `ε spent after each round (δ = ${s.delta}, site-level, RDP accountant)`, anchor: 'start' },
    data: { values: ev },
    width: 420, height: 260,
    mark: { type: 'line', point: { size: 30 }, strokeWidth: 1.5 },
    encoding: {
      x: { field: 'round', type: 'quantitative', title: 'round', axis: { tickMinStep: 1, format: 'd' } },
      y: { field: 'epsilon', type: 'quantitative', title: 'ε', scale: { type: 'log' } },
      color: { field: 'noise', type: 'nominal', title: 'noise multiplier' },
      ...(same ? {} : { strokeDash: { field: 'config', type: 'nominal' as const, sort: METHODS.map((m) => METHOD_LABEL[m]), title: null, legend: { orient: 'bottom' as const, columns: 2, labelLimit: 340, symbolType: 'stroke', symbolStrokeColor: '#444', symbolStrokeWidth: 1.5 } } }),
    },
    config: { font: 'sans-serif' },
  };
  return { loss: await svg(loss), epsilon: await svg(epsilon) };
}

// ---------------------------------------------------------------- the document

const ppl = (loss: number): string => Math.exp(loss).toFixed(3);
const pct = (x: number): string => `${(100 * x).toFixed(0)}%`;
/** A small share with two significant digits (0.14%). */
const pctSmall = (x: number): string => (Math.abs(x) >= 0.1 ? pct(x) : `${(100 * x).toPrecision(2)}%`);
const kib = (b: number): string => `${(b / 1024).toFixed(1)} KiB`;
const ms = (sec: number): string => (sec * 1000 >= 100 ? (sec * 1000).toFixed(0) : (sec * 1000).toFixed(1));
function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function doc(res: Results): string {
  const s = res.settings;
  const siteHead = res.sites.map((x, i) => `site ${i + 1} (${x.span})`);
  const fed = (m: Method, z: number | null): FedResult | undefined => res.federated.find((f) => f.method === m && f.noise === z);
  const baseL = res.base.overall, centralL = res.centralised.final.overall;
  const gain = baseL - centralL;
  /** Share of the centralised gain (in loss) that a result recovers. */
  const share = (l: number): number => (baseL - l) / gain;
  const row = (label: string, e: Eval, extra: readonly string[] = []): string[] => [label, ...e.perSite.map((x) => ppl(x.loss)), ppl(e.overall), ...extra];
  const P: string[] = [];
  const add = (x: string): void => { P.push(x); };

  add('# Results: federated LoRA fine-tuning on the demo consortium');
  add('');
  add(`Generated by \`npm run experiment\` (bench/experiment.ts) on ${res.date}; the raw numbers are in` +
    ' [bench/results/experiment.json](../bench/results/experiment.json). It takes' +
    ` ${(res.seconds / 60).toFixed(0)} minutes on the ${res.backend} backend of a 2-core machine` +
    ' that other processes share, so the timings are indicative.' +
    (res.partial ? ' **This is a partial run (`--only`): some configurations are missing.**' : ''));
  add('');
  add('## What is measured');
  add('');
  add(`The shipped base model (models/tally-base: a byte-level GPT-2, 3 layers, n_embd 96, pre-trained on` +
    ` the State of the Union addresses up to 1946) is fine-tuned by ${s.sites} sites, each holding one era of the` +
    ' later addresses (`demoPartition`, the demo\'s data: non-IID by construction, each era has its own' +
    ' vocabulary and concerns). Every number is the held-out **perplexity per byte** (exp of the mean' +
    ' next-byte cross-entropy in nats) of a final adapter, evaluated directly on each site\'s own held-out' +
    ` windows (the first ${s.evalWindows} windows of ${s.windowBytes} bytes of the site's seeded held-out split)` +
    ' and overall (weighted by bytes predicted). Lower is better.');
  add('');
  add(table(['', ...siteHead], [
    ['training windows', ...res.sites.map((x) => String(x.trainWindows))],
    ['held-out bytes evaluated', ...res.sites.map((x) => String(x.evalTokens))],
  ]));
  add('');
  add('Settings, the same for every row unless the row says otherwise:');
  add('');
  add(`- LoRA rank ${s.r}, alpha ${s.alpha}, on every GPT-2 module (${s.targets.join(', ')}), A from a seed shared by all parties.`);
  add(`- ${s.rounds} rounds × ${s.steps} local steps × ${s.batch} windows per step at each site: every configuration spends the` +
    ` same compute, ${s.rounds * s.steps} steps per site, ${s.sites * s.rounds * s.steps} in all. Local only: each site trains` +
    ` alone for its ${s.rounds * s.steps} steps (AdamW restarted every ${s.steps} steps, as in a round). Centralised: one model on the pooled` +
    ` training windows for ${s.sites * s.rounds * s.steps} steps (${s.rounds} × ${s.sites * s.steps}).`);
  add(`- AdamW at a constant learning rate ${s.lr} (of 0.001, 0.003 and 0.01 in a short probe at sites 1 and 4, the best;` +
    ` the demo's 0.01 overshoots). SCAFFOLD uses plain SGD at ${s.sgdLr}: its control-variate update (option II) assumes` +
    ' SGD steps (of 0.1, 0.3 and 1 in the same probe with FFA-LoRA, 0.3 is the best; 1 oscillates at site 1, 3 diverges).' +
    ' The row "FedAvg, FFA-LoRA, SGD" is FedAvg with the same optimiser and rate and no control variates: SCAFFOLD\'s comparison.' +
    ` Server learning rate 1, no server momentum. FedProx μ = ${s.fedproxMu}.`);
  add(`- Sites are averaged with equal weights. Secure aggregation: secagg-v1, t = ${s.threshold} of ${s.sites}, b = ${s.bits} bits,` +
    ' in one process over the in-memory channel (the same session driver as over the network).');
  add(`- Without DP a site's update is clipped at ‖Δ‖₂ ≤ ${s.clipNoDp} (set not to bind; the secure sum needs a bound) and` +
    ` encoded without noise. With DP: clip C = ${s.clipDp} and the distributed discrete Gaussian at noise multiplier` +
    ` z = ${s.noise.join(' and z = ')} (z = 0.05 is the demo's, 0.5 the job default), each site adding its share so` +
    ` that any ${s.threshold} sites' noise makes the sum ${'(ε, δ)'}-DP at δ = ${s.delta} (site-level: it protects a site's whole` +
    ' data set, not one address). ε is what the coordinator\'s RDP accountant charges.');
  add(`- Heterogeneous ranks (\`training.lora.ranks\`): sites 1–4 train FFA-LoRA at ranks ${s.ranks.join(', ')} (alpha ∝ rank, so the scale alpha/r is the same),` +
    ` pad their deltas to rank ${Math.max(...s.ranks)} for the secure sum, and the coordinator divides each rank slice by the` +
    ' number of sites that train it (HetLoRA zero-padding, src/federation/hetlora.ts).');
  add('- Plain aggregation (`training.aggregator: "plain"`): the FFA-LoRA job with each site\'s float32 update sent to the' +
    ' coordinator in the clear and averaged there, no secure sum (and so no distributed DP); the per-round evaluation still goes through the secure sum.');
  add('- One run per configuration. The rows share their batch order (each site\'s seed, round by round), the DP noise is' +
    ' fresh system randomness, and run-to-run variation is not measured: a difference of a few thousandths in perplexity' +
    ' between two rows is not evidence that one method is better.');
  add('');

  // -------- without DP
  add('## Without DP');
  add('');
  const noDp = METHODS.map((m) => fed(m, null)).filter((f): f is FedResult => f !== undefined);
  const shareOf = (l: number): string => pct(share(l));
  add(table(['configuration', ...siteHead, 'overall', 'share of the centralised gain'], [
    row('base model', res.base, ['0%']),
    row('local only (each site its own adapter)', res.localOnly.own, [shareOf(res.localOnly.own.overall)]),
    row('centralised on pooled data (upper bound)', res.centralised.final, ['100%']),
    ...noDp.map((f) => row(f.label, f.final, [shareOf(f.final.overall)])),
  ]));
  add('');
  add('"Share of the centralised gain" is (base loss − loss) / (base loss − centralised loss), in nats.');
  add('');
  add('Local only, every site\'s adapter on every site\'s held-out data (rows: where it trained):');
  add('');
  add(table(['trained at', ...siteHead, 'overall'], res.localOnly.matrix.map((r, i) => [`site ${i + 1}`, ...r.map((x) => ppl(x.loss)), ppl(overall(r))])));
  add('');

  // -------- with DP
  add('## With distributed DP');
  add('');
  const dpRows: string[][] = [];
  for (const m of METHODS) {
    for (const z of [null, ...s.noise]) {
      const f = fed(m, z);
      if (f === undefined) continue;
      dpRows.push(row(`${f.label}, ${dpLabel(z)}`, f.final, [shareOf(f.final.overall), z === null ? '–' : fmtEps(f.epsilon), `${f.meanNorm.toFixed(2)} (${pct(f.clippedShare)})`]));
    }
  }
  add(table(['configuration', ...siteHead, 'overall', 'share of the gain', `ε (δ = ${s.delta})`, 'mean ‖Δ‖₂ (clipped)'], dpRows));
  add('');
  add('The last column is the mean norm of the sites\' updates before the clip, and the share of updates the clip shortened.');
  add('');
  add('![Held-out loss per round](results/loss-per-round.svg)');
  add('');
  add('![ε per round](results/epsilon-per-round.svg)');
  add('');
  add('The per-round curves are the consortium-wide loss the coordinator learns through the eval session\'s' +
    ` secure sum, on the first ${s.roundEvalWindows} held-out windows of each site (the tables use ${s.evalWindows});` +
    ' the reference curves (dashed) are the same evaluation of the centralised model and of the local-only adapters, after each' +
    ` ${s.steps}-step block, and are repeated in every panel. Round 0 is the base model.` +
    (sameEpsilon(res) ? ' Every configuration at one z spends the same ε (their rounds\' DP events differ at most in the padded dimension, which moves ε in the eighth digit), so the second plot has one line per z.' : ''));
  add('');

  // -------- cost
  add('## Cost of secure aggregation per round');
  add('');
  add(`One training round's aggregation of ${s.sites} sites' updates: secure (each site encodes — clip, rotate, round,` +
    ' noise — then one secagg-v1 session of every site and the coordinator, here all in one process, so its time is' +
    ' the sum of every party\'s computation; then the coordinator decodes) against plain FedAvg (each site sends its' +
    ` float32 delta, 4 bytes a value, and the coordinator averages). Medians of 9 sessions, inputs precomputed. The global adapter` +
    ' sent to the sites each round is the same in both and not counted.');
  add('');
  add(table(['update', 'values', 'session dim', 'DP', 'encode per site (ms)', 'secure session (ms)', 'decode (ms)', 'plain sum (ms)', 'up per site, secure', 'down per site, secure', 'up per site, plain', 'up ÷ plain'],
    res.cost.map((c) => [c.label, String(c.rawDim), String(c.sessionDim), c.mechanism === 'none' ? 'none' : `ddg z = ${s.noise[0]}`,
      ms(c.encodeSeconds), ms(c.secureSeconds), ms(c.decodeSeconds), ms(c.plainSeconds),
      kib(c.secureUpPerSite), kib(c.secureDownPerSite), kib(c.plainUpPerSite), (c.secureUpPerSite / c.plainUpPerSite).toFixed(2)])));
  add('');
  const inRuns = res.federated.filter((f) => f.noise === null).map((f) => {
    const rs = f.rounds.filter((r) => r.trainSession !== undefined);
    const ts = rs.map((r) => r.trainSession!);
    const over = median(ts.map((t) => t.seconds - t.inputSeconds));
    const round = median(rs.map((r) => r.seconds));
    return [f.label, f.method === 'plain' ? 'plain' : 'secure', round.toFixed(1), median(ts.map((t) => t.inputSeconds)).toFixed(1), ms(over), pctSmall(over / round),
      kib(median(ts.map((t) => t.up)) / s.sites), kib(median(ts.map((t) => t.down)) / s.sites)];
  });
  add('Inside the training runs without DP, median over rounds: a round\'s wall time (training and the eval session), the' +
    ' sites\' own work in its training step (local training and encoding, all four sites one after another), and what' +
    ' aggregating cost on top of it (the secure session less the sites\' work; for plain aggregation, handing over the' +
    ' updates), with the bytes of the training step per site. The eval session, secure in every row, is not in the last two columns.');
  add('');
  add(table(['configuration', 'aggregation', 'round (s)', 'sites\' work (s)', 'aggregation (ms)', 'share of the round', 'up per site', 'down per site'], inRuns));
  add('');

  // -------- what the numbers show
  add('## What the numbers show');
  add('');
  for (const para of findings(res)) { add(para); add(''); }
  return P.join('\n');
}

/** The prose of "What the numbers show": every claim is computed from the results it is printed with. */
function findings(res: Results): string[] {
  const s = res.settings;
  const out: string[] = [];
  const n = s.sites;
  const baseL = res.base.overall, centralL = res.centralised.final.overall;
  const gain = baseL - centralL;
  const share = (l: number): number => (baseL - l) / gain;
  const fed = (m: Method, z: number | null): FedResult | undefined => res.federated.find((f) => f.method === m && f.noise === z);
  const site = (i: number): string => `site ${i + 1} (${res.sites[i]!.span})`;
  const idx = res.sites.map((_, i) => i);
  const nats = (d: number): string => (Math.abs(d) < 0.00005 ? '0.0000 nats' : `${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(4)} nats`);

  // Fine-tuning at all.
  const gains = idx.map((i) => res.base.perSite[i]!.loss - res.centralised.final.perSite[i]!.loss);
  const most = idx.reduce((a, b) => (gains[b]! > gains[a]! ? b : a)), least = idx.reduce((a, b) => (gains[b]! < gains[a]! ? b : a));
  out.push(`**Fine-tuning helps: ${pct(1 - Math.exp(centralL - baseL))} lower perplexity on pooled data.** The pooled adapter takes overall perplexity from ${ppl(baseL)} to` +
    ` ${ppl(centralL)} (${gain.toFixed(4)} nats per byte). Per site: ${idx.map((i) => `${site(i)} ${ppl(res.base.perSite[i]!.loss)} → ${ppl(res.centralised.final.perSite[i]!.loss)}`).join(', ')};` +
    ` the most at ${site(most)}, the least at ${site(least)}.`);

  // Local only.
  const own = res.localOnly.own;
  const ownBeatsPooled = idx.filter((i) => own.perSite[i]!.loss < res.centralised.final.perSite[i]!.loss);
  let offWorse = 0, off = 0;
  res.localOnly.matrix.forEach((r, i) => r.forEach((e, j) => { if (i !== j) { off++; if (e.loss > res.base.perSite[j]!.loss) offWorse++; } }));
  out.push(`**Each site alone** reaches ${ppl(own.overall)} overall on its own held-out data (${pct(share(own.overall))} of the pooled gain), and its adapter is` +
    ` specialised: ${ownBeatsPooled.length === 0 ? 'at no site does it beat the pooled model on the site\'s own data' : `at ${ownBeatsPooled.map(site).join(', ')} it beats the pooled model on the site's own data`},` +
    ` and on the other sites' data it is worse than the base model in ${offWorse} of the ${off} cases (the local-only matrix).`);

  // Federated without DP.
  const fa = fed('fedavg', null), ff = fed('ffa', null), pl = fed('plain', null), fp = fed('fedprox', null), fs = fed('ffasgd', null), sc = fed('scaffold', null), hl = fed('hetlora', null);
  const noDp = METHODS.map((m) => fed(m, null)).filter((f): f is FedResult => f !== undefined && f.method !== 'plain');
  if (noDp.length > 0) {
    const sorted = [...noDp].sort((a, b) => a.final.overall - b.final.overall);
    const best = sorted[0]!, worst = sorted[sorted.length - 1]!;
    const shortfall = best.final.overall - centralL;
    const beatsLocal = noDp.filter((f) => f.final.overall < own.overall);
    const bestLocal = res.localOnly.matrix.map((r) => overall(r)).reduce((a, b) => Math.min(a, b));
    const b = share(best.final.overall);
    out.push(`**Without DP, federation recovers ${b >= 1 ? 'all of the pooled gain' : b >= 0.5 ? 'more than half of the pooled gain, not all of it' : 'less than half of the pooled gain'}.**` +
      ` The best federated row, ${best.label}, reaches ${ppl(best.final.overall)} (${pct(share(best.final.overall))} of the centralised gain; it stays` +
      ` ${shortfall.toFixed(4)} nats per byte short of the pooled model); the weakest, ${worst.label}, ${ppl(worst.final.overall)}` +
      ` (${pct(share(worst.final.overall))}). Against each site training alone (${ppl(own.overall)} overall, each site on its own data),` +
      ` ${beatsLocal.length === noDp.length ? 'every federated row is better' : beatsLocal.length === 0 ? 'no federated row is better' : `only ${beatsLocal.map((f) => f.label).join(' and ')} ${beatsLocal.length === 1 ? 'is' : 'are'} better`}` +
      (ff !== undefined && !beatsLocal.includes(ff) ? `; with FFA-LoRA, the demo's adapter, federating buys nothing overall over training alone (${ppl(ff.final.overall)} against ${ppl(own.overall)})` : '') +
      `. What federation does buy is one adapter for every site: the best local adapter, used at every site, reaches ${ppl(bestLocal)} overall.`);
    const losers = idx.filter((i) => own.perSite[i]!.loss < best.final.perSite[i]!.loss);
    const perSite = idx.map((i) => `site ${i + 1}: own ${ppl(own.perSite[i]!.loss)}, federated ${ppl(best.final.perSite[i]!.loss)}`).join('; ');
    out.push(losers.length === 0
      ? `Per site, ${best.label} is at least as good as the site's own adapter everywhere (${perSite}).`
      : `**Per site, federation is not always worth it.** The site's own adapter is better than ${best.label} at ${losers.map(site).join(' and ')}` +
        ` (${perSite}). One shared adapter averages the eras' updates: a site gives up some of its own fit for the consortium's.` +
        (losers.length < n ? ` S${idx.filter((i) => !losers.includes(i)).map(site).join(' and ').slice(1)} ${n - losers.length === 1 ? 'is the only one that does' : 'do'} better federated.` : ''));
  }
  if (ff !== undefined && pl !== undefined) {
    const d = Math.abs(ff.final.overall - pl.final.overall);
    out.push(`**Secure aggregation ${d < 0.002 ? 'does not change the result' : `changes the result by ${d.toFixed(4)} nats`}.** The same FFA-LoRA job with the updates in the clear ends at ${ppl(pl.final.overall)},` +
      ` the secure sum at ${ppl(ff.final.overall)} (${d.toFixed(4)} nats apart: the secure path rounds each value to a step of` +
      ` ${(1 / ((2 ** (s.bits - 1) - 1 - n) / (n * s.clipNoDp))).toExponential(1)} with unbiased randomised rounding).`);
  }
  if (fa !== undefined && ff !== undefined) {
    const d = ff.final.overall - fa.final.overall;
    out.push(`**FFA-LoRA against LoRA.** Freezing A (only B trained and summed, ${ff.trainable} values a round instead of ${fa.trainable})` +
      ` ends at ${ppl(ff.final.overall)} against ${ppl(fa.final.overall)} for training A and B (${nats(d)}): ` +
      (d > 0 ? 'it uploads 56% of the values for a smaller share of the gain.' : 'it uploads 56% of the values and loses nothing.') +
      ` Under DP: ${s.noise.map((z) => { const a = fed('fedavg', z), b = fed('ffa', z); return a !== undefined && b !== undefined ? `at z = ${z}, ${ppl(b.final.overall)} with FFA-LoRA against ${ppl(a.final.overall)} (${b.final.overall < a.final.overall ? 'FFA-LoRA better' : 'LoRA better'})` : ''; }).filter((x) => x !== '').join('; ')}.`);
  }
  if (ff !== undefined && fp !== undefined) {
    const d = fp.final.overall - ff.final.overall;
    out.push(`**FedProx** (μ = ${s.fedproxMu}) ends at ${ppl(fp.final.overall)} against FedAvg's ${ppl(ff.final.overall)} (${nats(d)}).` +
      ` Its proximal term pulls the sites' updates in (mean norm ${fp.meanNorm.toFixed(2)} against ${ff.meanNorm.toFixed(2)});` +
      ` at this μ and ${s.steps} local steps a round, restraining them ${Math.abs(d) < 0.002 ? 'changes little' : d < 0 ? 'helps a little' : 'costs a little'}.`);
  }
  if (sc !== undefined && fs !== undefined && ff !== undefined) {
    const scDp = fed('scaffold', s.noise[0]!), ffDp0 = fed('ffa', s.noise[0]!);
    out.push(`**SCAFFOLD** ends at ${ppl(sc.final.overall)}, against ${ppl(fs.final.overall)} for FedAvg with the same SGD steps (${nats(sc.final.overall - fs.final.overall)}` +
      ` from the control variates) and ${ppl(ff.final.overall)} for FedAvg with AdamW (${nats(fs.final.overall - ff.final.overall)} from the optimiser alone).` +
      ' With every site in every round the corrections c − cᵢ sum to zero over the sites, so to first order they cancel in the mean update;' +
      ` SCAFFOLD can only help through the local steps' nonlinearity${Math.abs(sc.final.overall - fs.final.overall) < 0.002 ? `, and with ${s.steps} SGD steps a round it makes no measurable difference here` : ''}. Its cost is real: it needs plain` +
      ' SGD (giving up AdamW), uploads twice the values (the update and the control-variate update), and under DP both share one clip' +
      (scDp !== undefined && ffDp0 !== undefined
        ? ` — at z = ${s.noise[0]} its input has mean norm ${scDp.meanNorm.toFixed(2)} against a clip of ${s.clipDp}, and it ends at ${ppl(scDp.final.overall)}, ${scDp.final.overall > baseL ? 'worse than the base model' : 'short of FedAvg'} (FedAvg with FFA-LoRA: ${ppl(ffDp0.final.overall)}).`
        : '.'));
  }
  if (hl !== undefined && ff !== undefined) {
    const low = idx.filter((i) => s.ranks[i]! < s.r);
    out.push(`**Heterogeneous ranks** (${s.ranks.join(', ')}) end at ${ppl(hl.final.overall)} against ${ppl(ff.final.overall)} when every site` +
      ` trains rank ${s.r} (${nats(hl.final.overall - ff.final.overall)}). Per site, ranks ${s.ranks.join('/')} against all rank ${s.r}: ` +
      idx.map((i) => `site ${i + 1} ${ppl(hl.final.perSite[i]!.loss)} against ${ppl(ff.final.perSite[i]!.loss)}`).join(', ') +
      `. The rank slices above ${Math.min(...s.ranks)} are trained by ${idx.filter((i) => s.ranks[i]! > Math.min(...s.ranks)).map((i) => `site ${i + 1}`).join(' and ')} only` +
      (low.length > 0 ? `, so sites ${low.map((i) => i + 1).join(' and ')} contribute to fewer of the adapter's values` : '') +
      (low.length > 0 && low.every((i) => hl.final.perSite[i]!.loss > ff.final.perSite[i]!.loss) && idx.filter((i) => !low.includes(i)).every((i) => hl.final.perSite[i]!.loss < ff.final.perSite[i]!.loss)
        ? `: the lower-rank sites end worse than when every site trains rank ${s.r}, the others better; the adapter leans towards the sites that train more of it.`
        : '.'));
  }

  // DP.
  const dpParts: string[] = [], dpCosts: string[] = [];
  for (const z of s.noise) {
    const rows = METHODS.map((m) => fed(m, z)).filter((f): f is FedResult => f !== undefined);
    if (rows.length === 0) continue;
    const eps = rows.map((f) => f.epsilon);
    const shares = rows.map((f) => share(f.final.overall));
    const bestRow = rows[shares.indexOf(Math.max(...shares))]!;
    const lo = Math.min(...shares), hi = Math.max(...shares);
    dpParts.push(`at z = ${z}, ε = ${fmtEps(Math.min(...eps))}${Math.max(...eps) - Math.min(...eps) > 0.01 * Math.min(...eps) ? `–${fmtEps(Math.max(...eps))}` : ''} after ${s.rounds} rounds` +
      (hi < 0
        ? ` and every row ends far worse than the base model (perplexity ${ppl(bestRow.final.overall)} to ${ppl(Math.max(...rows.map((f) => f.final.overall)))}, against ${ppl(baseL)})`
        : `, and the rows keep from ${pct(lo)}${lo < 0 ? ' (worse than the base model)' : ''} to ${pct(hi)} of the gain (best: ${bestRow.label}, ${ppl(bestRow.final.overall)})`));
    dpCosts.push(`${hi < 0 ? 'all of the gain and more' : hi < 0.5 ? 'most of the gain' : 'part of the gain'} at ε = ${fmtEps(Math.min(...eps))}`);
  }
  const ffDp = s.noise.map((z) => fed('ffa', z)).filter((f): f is FedResult => f !== undefined);
  const dpAll = res.federated.filter((f) => f.noise !== null);
  if (dpParts.length > 0) {
    const minEps = Math.min(...dpAll.map((f) => f.epsilon));
    const noiseNorm = (f: FedResult): number => (f.noise! * s.clipDp * Math.sqrt(n / s.threshold) * Math.sqrt(f.trainable)) / n;
    out.push(`**DP at ${n} sites costs ${dpCosts.join(', and ')}${minEps > 10 ? ` — and even ${fmtEps(minEps)} is far above the single digits a DP guarantee is usually asked for` : ''}.** With the clip at ${s.clipDp}: ${dpParts.join('; ')}.` +
      (ffDp.length > 0
        ? (ffDp[0]!.clippedShare > 0.25
          ? ` Two things eat the gain. The clip: FFA-LoRA's site updates have mean norm ${ffDp[0]!.meanNorm.toFixed(2)} and the clip shortens ${pct(ffDp[0]!.clippedShare)} of them.`
          : ` The clip rarely binds (FFA-LoRA's updates have mean norm ${ffDp[0]!.meanNorm.toFixed(2)}; ${pct(ffDp[0]!.clippedShare)} clipped); the noise is what costs.`) +
          ` The noise: the mean update carries noise of standard deviation z·C·√(n/t)/n in each of its ${ffDp[0]!.trainable} values, a norm of about` +
          ` ${ffDp.map((f) => `${noiseNorm(f).toFixed(1)} at z = ${f.noise}`).join(' and ')}, against a signal of norm at most ${s.clipDp}.`
        : '') +
      ` Site-level DP with few sites is the hard case: the noise must hide a whole site's update and is shared among only ${n} contributions;` +
      ' with the threshold a fixed share of the sites the noise in the mean falls as 1/n, so a consortium of hundreds of sites pays far less at the same ε. And ε grows with every round (second plot), whether or not the round helps.');
  }

  // Cost.
  const c0 = res.cost.find((c) => c.mechanism === 'none' && c.label.startsWith('FFA'));
  const cD = res.cost.find((c) => c.mechanism !== 'none' && c.label.startsWith('FFA'));
  if (c0 !== undefined) {
    const t = c0.encodeSeconds * n + c0.secureSeconds + c0.decodeSeconds;
    const inRun = ff?.rounds.filter((r) => r.trainSession !== undefined).map((r) => (r.trainSession!.seconds - r.trainSession!.inputSeconds) / r.seconds);
    const frac = inRun !== undefined && inRun.length > 0 ? median(inRun) : undefined;
    out.push(`**Secure aggregation ${frac === undefined || frac < 0.1 ? 'costs little next to training' : 'is a noticeable part of a round'}.** For FFA-LoRA's ${c0.rawDim} values (padded to ${c0.sessionDim} for the rotation),` +
      ` encoding, the session and decoding take ${ms(t)} ms of CPU for all ${n} sites and the coordinator together` +
      (cD !== undefined ? ` (${ms(cD.encodeSeconds * n + cD.secureSeconds + cD.decodeSeconds)} ms with the DP noise)` : '') +
      `, against ${ms(c0.plainSeconds)} ms to average float32 updates; a site uploads ${kib(c0.secureUpPerSite)} instead of ${kib(c0.plainUpPerSite)}` +
      ` (${(c0.secureUpPerSite / c0.plainUpPerSite).toFixed(2)}×: ${c0.bits}-bit masked values over the padded vector against 32-bit floats over the unpadded one)` +
      ` and downloads ${kib(c0.secureDownPerSite)} of protocol messages.` +
      (frac !== undefined ? ` In the training runs the secure sum is ${pctSmall(frac)} of a round's wall time; the rest is local training and evaluation.` : ''));
  }
  out.push(`**What this does not show.** One small model, one corpus, one run per configuration, ${n} sites, ${s.rounds} rounds, and no tuning` +
    ' beyond the shared settings: small differences between federated rows are not evidence that one method is better.' +
    ` The DP rows say what site-level DP costs at ${n} sites, not what it costs with many.`);
  return out;
}

// ---------------------------------------------------------------- main

async function main(argv: string[]): Promise<void> {
  const outDir = arg(argv, 'out');
  const docPath = outDir !== undefined ? join(outDir, 'results.md') : join(ROOT, 'docs', 'results.md');
  const plotDir = outDir !== undefined ? join(outDir, 'results') : join(ROOT, 'docs', 'results');
  const jsonPath = outDir !== undefined ? join(outDir, 'experiment.json') : join(ROOT, 'bench', 'results', 'experiment.json');
  let res: Results;
  if (argv.includes('--from-json')) {
    res = JSON.parse(readFileSync(jsonPath, 'utf8')) as Results;
  } else {
    const s: Settings = {
      ...DEFAULTS,
      rounds: intArg(argv, 'rounds', DEFAULTS.rounds),
      steps: intArg(argv, 'steps', DEFAULTS.steps),
      batch: intArg(argv, 'batch', DEFAULTS.batch),
      roundEvalWindows: intArg(argv, 'round-eval', DEFAULTS.roundEvalWindows),
      evalWindows: intArg(argv, 'eval', DEFAULTS.evalWindows),
    };
    const onlyArg = arg(argv, 'only');
    const only = onlyArg !== undefined ? new Set(onlyArg.split(',')) : undefined;
    res = await experiment(s, only);
    mkdirSync(join(jsonPath, '..'), { recursive: true });
    writeFileSync(jsonPath, `${JSON.stringify(res, null, 1)}\n`);
    log(`wrote ${jsonPath}`);
  }
  const p = await plots(res);
  mkdirSync(plotDir, { recursive: true });
  writeFileSync(join(plotDir, 'loss-per-round.svg'), p.loss);
  writeFileSync(join(plotDir, 'epsilon-per-round.svg'), p.epsilon);
  writeFileSync(docPath, `${doc(res)}\n`);
  log(`wrote ${docPath} and ${plotDir}/*.svg (${(res.seconds / 60).toFixed(1)} min of experiment)`);
}

await main(process.argv.slice(2));
