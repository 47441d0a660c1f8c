/**
 * A federated fine-tuning job and the one derivation of its sessions.
 *
 * A job says what the consortium trains (a LoRA adapter of the shared base
 * model), how (local steps, strategy), with what privacy (mechanism, clip,
 * noise, budget) and for how many rounds. Every round runs up to two
 * secure-aggregation sessions, each with a *purpose*:
 *
 * - `train`: each site's input is its DP-encoded adapter delta (and, with
 *   SCAFFOLD, its control-variate delta after it: the upload doubles). The
 *   session's `dim`, `bits` and `threshold` and the encoder's parameters come
 *   from `planRound` (src/dp/plan.ts) for the distributed mechanisms, or from
 *   {@link noiselessScale} without DP.
 * - `eval`: each site's input is its held-out loss sum (milli-nats) and token
 *   count, summed exactly (b = 32, no noise): the coordinator learns the
 *   consortium-wide loss only.
 *
 * {@link planSession} is the only place where those parameters are derived:
 * the coordinator uses it to open sessions and decode sums, every site uses
 * it to check a session-start and to encode, and the accountant records its
 * event. A second derivation is how ε gets under-reported.
 *
 * The task of a session (what the coordinator sends with the session-start)
 * is a safetensors blob: the global adapter under PEFT's names, SCAFFOLD's
 * global control variate under `tally.control/<name>`, and `__metadata__`
 * `tally.task` = JSON {v, job, round, purpose}; see {@link encodeTask}.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../canonical-json.js';
import { TallyError, ValidationError } from '../errors.js';
import { planRound, type PlannedEncodeParams, type RoundPlan } from '../dp/plan.js';
import type { DistributedEvent } from '../dp/events.js';
import { paddedLength } from '../dp/hadamard.js';
import { encodeSafetensors, parseSafetensors } from '../training/safetensors.js';
import { adaptedModules, canonicalTargets, loraTensorShapes, type LoraTargetModule } from '../training/adapter-format.js';
import type { Gpt2Config } from '../training/checkpoint.js';
import type { RobustKind } from './robust.js';

/** How the coordinator turns the mean update into the next global adapter. */
export type StrategyKind = 'fedavg' | 'fedprox' | 'scaffold';
/** What a session sums. */
export type Purpose = 'train' | 'eval';

/** A federated fine-tuning job (all fields checked by {@link parseJob}). */
export interface FineTuneJob {
  /** Rounds of training. */
  readonly rounds: number;
  /** t: fewest surviving sites whose sum can be released (the secagg threshold; also the DP noise's t). */
  readonly threshold: number;
  /** n: the cohort (every roster site takes part in every round). */
  readonly sites: number;
  readonly lora: {
    readonly r: number;
    readonly alpha: number;
    readonly targets: readonly LoraTargetModule[];
    /** FFA-LoRA: A frozen at its seeded initial value (the same at every site), only B trained and summed. */
    readonly ffa: boolean;
    /** Seed of A's initialisation, shared by every party. */
    readonly seed: string;
    /**
     * Heterogeneous ranks (HetLoRA zero-padding, src/federation/hetlora.ts):
     * the rank of each roster site, in roster order, each ≤ r (r is then the
     * largest). Absent: every site trains rank r. A site of rank rᵢ trains
     * with alpha·rᵢ/r (one alpha/r everywhere) and pads its delta to r.
     */
    readonly ranks?: readonly number[];
  };
  readonly local: {
    readonly steps: number;
    readonly batchSize: number;
    readonly lr: number;
    readonly weightDecay: number;
  };
  readonly strategy: {
    readonly kind: StrategyKind;
    /** FedProx's proximal weight μ (fedprox only; 0 otherwise). */
    readonly mu: number;
    /** Server learning rate η_s: global += η_s · (momentum-filtered) mean delta. */
    readonly serverLr: number;
    /** Server momentum β (FedAvgM, Hsu et al. 2019); 0 is plain FedAvg. */
    readonly serverMomentum: number;
    /**
     * FedAvg weighted by example counts: each roster site's count, in roster
     * order, declared in the job (public: every party sees it). A site scales
     * its delta by nᵢ / max n (≤ 1, so the clip still bounds it and the DP
     * sensitivity is unchanged) and the coordinator divides the sum by
     * Σ nᵢ / max n over the sites in it. Absent: equal weights (the default;
     * docs/federated.md says why).
     */
    readonly examples?: readonly number[];
  };
  /**
   * 'secure' (default): the coordinator learns only the sum. 'plain': every
   * site's update reaches the coordinator in the clear, which then may
   * aggregate robustly (`robust`); a job must name it explicitly, it
   * requires dp.mechanism 'none', and it runs in one process only.
   */
  readonly aggregator: 'secure' | 'plain';
  /** With aggregator 'plain': a robust aggregate instead of the mean (src/federation/robust.ts). */
  readonly robust?: { readonly kind: RobustKind; readonly trim?: number; readonly f?: number; readonly m?: number };
  readonly dp: {
    /** 'ddg' (distributed discrete Gaussian, default), 'skellam', or 'none'. */
    readonly mechanism: 'ddg' | 'skellam' | 'none';
    /** L2 clip C of a site's whole input (delta, and control delta with SCAFFOLD). */
    readonly clip: number;
    /** z: total noise sd of t sites over C (ignored without DP). */
    readonly noiseMultiplier: number;
    /** Modulus bit width of the training sessions. */
    readonly bits: number;
    /** The consortium's (ε, δ) budget: a round that would exceed it is refused before anyone trains. */
    readonly budget?: { readonly epsilon: number; readonly delta: number };
  };
}

/** Defaults of {@link parseJob} (the demo's). */
export const JOB_DEFAULTS = {
  rounds: 5,
  lora: { r: 4, alpha: 8, targets: ['c_attn'] as LoraTargetModule[], ffa: true, seed: 'tally/lora-a' },
  local: { steps: 12, batchSize: 8, lr: 0.01, weightDecay: 0 },
  strategy: { kind: 'fedavg' as StrategyKind, mu: 0, serverLr: 1, serverMomentum: 0 },
  dp: { mechanism: 'ddg' as const, clip: 1, noiseMultiplier: 0.5, bits: 20 },
} as const;

/** Milli-nats: the eval session's fixed-point unit of a loss sum. */
export const EVAL_LOSS_SCALE = 1000;
/** The eval session's vector: [loss sum in milli-nats, predicted tokens]. */
export const EVAL_DIM = 2;
export const EVAL_BITS = 32;

function bad(msg: string): never {
  throw new ValidationError('FL_ERR_BAD_JOB', msg);
}

function int(v: unknown, name: string, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) bad(`${name} must be an integer in [${lo}, ${hi}], got ${JSON.stringify(v)}`);
  return v;
}

function num(v: unknown, name: string, ok: (x: number) => boolean, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) bad(`${name} must be ${what}, got ${JSON.stringify(v)}`);
  return v;
}

function obj(v: unknown, name: string): Record<string, unknown> {
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object' || Array.isArray(v)) bad(`${name} must be an object`);
  return v as Record<string, unknown>;
}

function only(o: Record<string, unknown>, name: string, keys: readonly string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) bad(`${name}.${k} is not a field of a job (known: ${keys.join(', ')})`);
}

/**
 * Checks a job (as found in `consortium.json`'s `training` or built by a
 * caller) and fills in the defaults. `sites` and `threshold` come from the
 * consortium when not given.
 * @throws ValidationError FL_ERR_BAD_JOB naming the field
 */
export function parseJob(json: unknown, ctx: { readonly sites: number; readonly threshold: number }): FineTuneJob {
  const j = obj(json, 'training');
  only(j, 'training', ['rounds', 'lora', 'local', 'strategy', 'dp', 'aggregator', 'robust']);
  const lora = obj(j.lora, 'training.lora');
  only(lora, 'training.lora', ['r', 'alpha', 'targets', 'ffa', 'seed', 'ranks']);
  const local = obj(j.local, 'training.local');
  only(local, 'training.local', ['steps', 'batchSize', 'lr', 'weightDecay']);
  const strategy = obj(j.strategy, 'training.strategy');
  only(strategy, 'training.strategy', ['kind', 'mu', 'serverLr', 'serverMomentum', 'examples']);
  const dp = obj(j.dp, 'training.dp');
  only(dp, 'training.dp', ['mechanism', 'clip', 'noiseMultiplier', 'bits', 'budget']);
  const D = JOB_DEFAULTS;
  const targets = lora.targets ?? D.lora.targets;
  const known = ['c_attn', 'c_proj', 'c_fc', 'attn.c_proj', 'mlp.c_proj'];
  if (!Array.isArray(targets) || targets.length === 0 || targets.some((t) => !known.includes(t as string))) bad(`training.lora.targets must be a non-empty list of ${known.join(', ')}`);
  const kind = strategy.kind ?? D.strategy.kind;
  if (kind !== 'fedavg' && kind !== 'fedprox' && kind !== 'scaffold') bad(`training.strategy.kind must be fedavg, fedprox or scaffold, got ${JSON.stringify(kind)}`);
  const mechanism = dp.mechanism ?? D.dp.mechanism;
  if (mechanism !== 'ddg' && mechanism !== 'skellam' && mechanism !== 'none') bad(`training.dp.mechanism must be ddg, skellam or none, got ${JSON.stringify(mechanism)}`);
  const ffa = lora.ffa ?? D.lora.ffa;
  if (typeof ffa !== 'boolean') bad('training.lora.ffa must be true or false');
  const seed = lora.seed ?? D.lora.seed;
  if (typeof seed !== 'string' || seed.length === 0) bad('training.lora.seed must be a non-empty string');
  let budget: { epsilon: number; delta: number } | undefined;
  if (dp.budget !== undefined) {
    const b = obj(dp.budget, 'training.dp.budget');
    only(b, 'training.dp.budget', ['epsilon', 'delta']);
    budget = {
      epsilon: num(b.epsilon, 'training.dp.budget.epsilon', (x) => x > 0, 'a positive number'),
      delta: num(b.delta, 'training.dp.budget.delta', (x) => x > 0 && x < 1, 'a number in (0, 1)'),
    };
  }
  if (mechanism !== 'none' && budget === undefined) bad('training.dp.budget {epsilon, delta} is required with a DP mechanism (set dp.mechanism to "none" to train without DP)');
  const sites = int(ctx.sites, 'sites', 2, 1 << 20);
  const job: Omit<FineTuneJob, 'aggregator'> = {
    rounds: int(j.rounds ?? D.rounds, 'training.rounds', 1, 100_000),
    threshold: int(ctx.threshold, 'threshold', 1, sites),
    sites,
    lora: {
      r: int(lora.r ?? D.lora.r, 'training.lora.r', 1, 1024),
      alpha: num(lora.alpha ?? D.lora.alpha, 'training.lora.alpha', (x) => x > 0, 'a positive number'),
      targets: [...(targets as LoraTargetModule[])], ffa, seed,
    },
    local: {
      steps: int(local.steps ?? D.local.steps, 'training.local.steps', 1, 1_000_000),
      batchSize: int(local.batchSize ?? D.local.batchSize, 'training.local.batchSize', 1, 4096),
      lr: num(local.lr ?? D.local.lr, 'training.local.lr', (x) => x > 0, 'a positive number'),
      weightDecay: num(local.weightDecay ?? D.local.weightDecay, 'training.local.weightDecay', (x) => x >= 0, 'a number ≥ 0'),
    },
    strategy: {
      kind,
      mu: num(strategy.mu ?? (kind === 'fedprox' ? 0.01 : 0), 'training.strategy.mu', (x) => x >= 0, 'a number ≥ 0'),
      serverLr: num(strategy.serverLr ?? D.strategy.serverLr, 'training.strategy.serverLr', (x) => x > 0, 'a positive number'),
      serverMomentum: num(strategy.serverMomentum ?? D.strategy.serverMomentum, 'training.strategy.serverMomentum', (x) => x >= 0 && x < 1, 'a number in [0, 1)'),
      ...(strategy.examples !== undefined ? { examples: examplesOf(strategy.examples, sites) } : {}),
    },
    dp: {
      mechanism,
      clip: num(dp.clip ?? D.dp.clip, 'training.dp.clip', (x) => x > 0, 'a positive number'),
      noiseMultiplier: num(dp.noiseMultiplier ?? D.dp.noiseMultiplier, 'training.dp.noiseMultiplier', (x) => x > 0, 'a positive number'),
      bits: int(dp.bits ?? D.dp.bits, 'training.dp.bits', 8, 32),
      ...(budget !== undefined ? { budget } : {}),
    },
  };
  if (kind !== 'fedprox' && job.strategy.mu !== 0) bad('training.strategy.mu applies to fedprox only');
  if (job.strategy.examples !== undefined && j.robust !== undefined) bad('training.strategy.examples does not combine with training.robust (the robust rules weigh every update alike)');
  const aggregator = j.aggregator ?? 'secure';
  if (aggregator !== 'secure' && aggregator !== 'plain') bad(`training.aggregator must be "secure" or "plain", got ${JSON.stringify(aggregator)}`);
  if (aggregator === 'plain' && mechanism !== 'none') {
    bad('training.aggregator "plain" requires training.dp.mechanism "none": the distributed noise protects a sum of at least t sites, and an update seen alone carries only its own share of it');
  }
  let robust: FineTuneJob['robust'];
  if (j.robust !== undefined) {
    if (aggregator !== 'plain') bad('training.robust needs training.aggregator "plain": robust aggregation reads every update, which secure aggregation never shows');
    const r = obj(j.robust, 'training.robust');
    only(r, 'training.robust', ['kind', 'trim', 'f', 'm']);
    if (r.kind !== 'median' && r.kind !== 'trimmed-mean' && r.kind !== 'krum') bad(`training.robust.kind must be median, trimmed-mean or krum, got ${JSON.stringify(r.kind)}`);
    robust = {
      kind: r.kind,
      ...(r.trim !== undefined ? { trim: int(r.trim, 'training.robust.trim', 0, sites) } : {}),
      ...(r.f !== undefined ? { f: int(r.f, 'training.robust.f', 0, sites) } : {}),
      ...(r.m !== undefined ? { m: int(r.m, 'training.robust.m', 1, sites) } : {}),
    };
  }
  let ranks: number[] | undefined;
  if (lora.ranks !== undefined) {
    if (!Array.isArray(lora.ranks) || lora.ranks.length !== sites) bad(`training.lora.ranks must list one rank per roster site (${sites})`);
    ranks = (lora.ranks as unknown[]).map((x, i) => int(x, `training.lora.ranks[${i}]`, 1, job.lora.r));
    if (Math.max(...ranks) !== job.lora.r) bad(`training.lora.r must be the largest of training.lora.ranks (${Math.max(...ranks)})`);
    if (kind === 'scaffold') bad('training.lora.ranks does not combine with SCAFFOLD (control variates of different ranks)');
  }
  const full: FineTuneJob = { ...job, lora: { ...job.lora, ...(ranks !== undefined ? { ranks } : {}) }, aggregator, ...(robust !== undefined ? { robust } : {}) };
  // Without DP the sessions' width depends on n, C and b only: refuse a job whose sum would wrap now, not after round 0.
  if (mechanism === 'none') noiselessScale(job.dp.clip, job.sites, job.dp.bits);
  return full;
}

function examplesOf(v: unknown, sites: number): number[] {
  if (!Array.isArray(v) || v.length !== sites) bad(`training.strategy.examples must list one example count per roster site (${sites})`);
  return v.map((x, i) => int(x, `training.strategy.examples[${i}]`, 1, Number.MAX_SAFE_INTEGER));
}

/** The weight of roster site `index` in the mean (1 with equal weights; nᵢ / max n with `strategy.examples`). */
export function siteWeight(job: FineTuneJob, index: number): number {
  const n = job.strategy.examples;
  if (n === undefined) return 1;
  const w = n[index];
  if (w === undefined) bad(`no example count for roster site ${index}`);
  return w / Math.max(...n);
}

/** The JSON form of a job (what `consortium.json` holds; {@link parseJob} reads it back to the same job). */
export function jobJson(j: FineTuneJob): Record<string, unknown> {
  return {
    rounds: j.rounds, lora: { ...j.lora, targets: [...j.lora.targets], ...(j.lora.ranks !== undefined ? { ranks: [...j.lora.ranks] } : {}) },
    local: { ...j.local }, strategy: { ...j.strategy, ...(j.strategy.examples !== undefined ? { examples: [...j.strategy.examples] } : {}) }, dp: { ...j.dp },
    ...(j.aggregator !== 'secure' ? { aggregator: j.aggregator } : {}), ...(j.robust !== undefined ? { robust: { ...j.robust } } : {}),
  };
}

/** SHA-256 (hex) of the job's canonical JSON, with the cohort: a task names the job it belongs to. */
export function jobHash(j: FineTuneJob): string {
  return createHash('sha256').update(canonicalJson({ ...jobJson(j), sites: j.sites, threshold: j.threshold })).digest('hex');
}

/** The scale of a noiseless encoding: n inputs of L2 norm ≤ C, rounded, never wrap at b bits. */
export function noiselessScale(clip: number, sites: number, bits: number): number {
  // After the rotation every coordinate is ≤ C in magnitude, randomised rounding adds < 1:
  // |Σ| ≤ n·(C·scale + 1) < 2^(b−1) keeps the centred lift exact.
  const s = (2 ** (bits - 1) - 1 - sites) / (sites * clip);
  if (!(s >= 1)) bad(`training.dp.bits ${bits} is too narrow for ${sites} sites at clip ${clip} without noise`);
  return s;
}

/** What {@link planSession} returns: one session's secagg parameters and, for training, its encoding and DP event. */
export interface SessionPlan {
  readonly purpose: Purpose;
  /** The secagg session's `dim` (for training: the padded length the encoder emits), `bits` and `threshold`. */
  readonly session: { readonly dim: number; readonly bits: number; readonly threshold: number };
  /** The unpadded length of a site's vector (train: delta, and control delta with SCAFFOLD). */
  readonly rawDim: number;
  /** train: the encoder's parameters, less the per-session rotation seed. */
  readonly encode?: PlannedEncodeParams | (Omit<PlannedEncodeParams, 'noise'> & { readonly noise: { readonly kind: 'none' } });
  /** train with DP: one round's event (what the ledger records). */
  readonly event?: DistributedEvent;
  /** train with DP: the full plan (noise, wrap bound, sensitivity), for reports. */
  readonly dpPlan?: RoundPlan;
}

/**
 * The one derivation of a session's parameters (module comment).
 * @param trainable - the adapter's trainable size (the length of a local delta)
 */
export function planSession(job: FineTuneJob, purpose: Purpose, trainable: number): SessionPlan {
  if (purpose === 'eval') return { purpose, session: { dim: EVAL_DIM, bits: EVAL_BITS, threshold: job.threshold }, rawDim: EVAL_DIM };
  if (!Number.isInteger(trainable) || trainable < 1) bad(`the adapter has ${trainable} trainable values`);
  const rawDim = job.strategy.kind === 'scaffold' ? 2 * trainable : trainable;
  const { dp } = job;
  if (dp.mechanism === 'none') {
    const scale = noiselessScale(dp.clip, job.sites, dp.bits);
    return {
      purpose, rawDim,
      session: { dim: paddedLength(rawDim), bits: dp.bits, threshold: job.threshold },
      encode: { clip: dp.clip, scale, bits: dp.bits, beta: 0, noise: { kind: 'none' } },
    };
  }
  const plan = planRound({ kind: dp.mechanism, clip: dp.clip, dim: rawDim, threshold: job.threshold, clients: job.sites, bits: dp.bits, noiseMultiplier: dp.noiseMultiplier });
  return { purpose, rawDim, session: plan.session, encode: plan.encode, event: plan.event, dpPlan: plan };
}

/** The rotation seed of a training session: both ends derive it from the session's nonce. */
export function rotationSeed(nonce: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update('tally/fl/rotation').update(nonce).digest());
}

/** What a task carries. */
export interface Task {
  readonly job: string;
  readonly round: number;
  readonly purpose: Purpose;
  /** The global adapter (PEFT names). */
  readonly adapter: ReadonlyMap<string, Float32Array>;
  /** SCAFFOLD's global control variate, in the delta layout (train only). */
  readonly control?: Float32Array;
}

const CONTROL = 'tally.control';
/** Largest task accepted by {@link decodeTask} (and by the wire: the consortium's task bound). */
export const MAX_TASK_BYTES = 64 * 1024 * 1024;

/** Encodes a task (module comment); `shapes` gives each adapter tensor's shape. */
export function encodeTask(t: Task, shapes: ReadonlyMap<string, readonly number[]>): Uint8Array {
  const tensors = [...t.adapter].map(([name, data]) => {
    const shape = shapes.get(name);
    if (shape === undefined) bad(`task: no shape for ${name}`);
    return { name, shape, data };
  });
  if (t.control !== undefined) tensors.push({ name: CONTROL, shape: [t.control.length], data: t.control });
  return encodeSafetensors(tensors, { 'tally.task': JSON.stringify({ v: 1, job: t.job, round: t.round, purpose: t.purpose }) });
}

/**
 * Decodes a task and checks it against the site's own job and model.
 * @throws ValidationError FL_ERR_BAD_TASK (malformed, another job, tensors that do not match)
 */
export function decodeTask(bytes: Uint8Array, expect: { readonly job: string; readonly shapes: ReadonlyMap<string, readonly number[]>; readonly controlLength?: number }): Task {
  const refuse = (m: string): never => { throw new ValidationError('FL_ERR_BAD_TASK', `task: ${m}`); };
  if (bytes.length === 0) refuse('empty (a training session must carry its task)');
  if (bytes.length > MAX_TASK_BYTES) refuse(`${bytes.length} bytes, more than ${MAX_TASK_BYTES}`);
  let file;
  try {
    file = parseSafetensors(bytes);
  } catch (err) {
    if (err instanceof TallyError) refuse(err.message);
    throw err;
  }
  let head: { v?: unknown; job?: unknown; round?: unknown; purpose?: unknown };
  try {
    head = JSON.parse(file.metadata['tally.task'] ?? 'null') as typeof head;
  } catch {
    return refuse('tally.task metadata is not JSON');
  }
  if (head === null || typeof head !== 'object' || head.v !== 1) refuse('no tally.task metadata of version 1');
  if (head.job !== expect.job) refuse(`it belongs to job ${String(head.job).slice(0, 16)}…, this site runs ${expect.job.slice(0, 16)}…`);
  if (typeof head.round !== 'number' || !Number.isInteger(head.round) || head.round < 0) refuse('bad round');
  if (head.purpose !== 'train' && head.purpose !== 'eval') refuse(`unknown purpose ${JSON.stringify(head.purpose)}`);
  const adapter = new Map<string, Float32Array>();
  for (const [name, shape] of expect.shapes) {
    const info = file.tensors.get(name) ?? refuse(`missing tensor ${name}`);
    if (info.dtype !== 'F32' || info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) refuse(`${name} is ${info.dtype}[${info.shape.join(', ')}], expected F32[${shape.join(', ')}]`);
    const x = file.float32(name);
    if (!x.every(Number.isFinite)) refuse(`${name} holds a non-finite value`);
    adapter.set(name, x);
  }
  let control: Float32Array | undefined;
  if (file.tensors.has(CONTROL)) {
    control = file.float32(CONTROL);
    if (expect.controlLength === undefined || control.length !== expect.controlLength) refuse(`unexpected control variate of ${control.length} values`);
    if (!control.every(Number.isFinite)) refuse('the control variate holds a non-finite value');
  } else if (head.purpose === 'train' && expect.controlLength !== undefined) {
    refuse('SCAFFOLD needs the global control variate');
  }
  const extra = [...file.tensors.keys()].filter((n) => n !== CONTROL && !expect.shapes.has(n));
  if (extra.length > 0) refuse(`unexpected tensor ${extra[0]}`);
  return { job: head.job as string, round: head.round as number, purpose: head.purpose as Purpose, adapter, ...(control !== undefined ? { control } : {}) };
}

/**
 * The length of a site's delta for a job on a model of this shape: the
 * trainable adapter tensors (B only with FFA-LoRA, A and B otherwise), from
 * their shapes alone (no model is built). The model's own count
 * (`Gpt2Model.trainable()`) is the same; {@link planSession} takes either.
 */
export function trainableSize(model: { readonly n_layer: number; readonly n_embd: number }, job: FineTuneJob): number {
  const shapes = loraTensorShapes(model as Gpt2Config, { r: job.lora.r, alpha: job.lora.alpha, dropout: 0, targetModules: canonicalTargets(adaptedModules(job.lora.targets)), baseModel: '', extra: {} });
  let n = 0;
  for (const [name, shape] of shapes) if (!(job.lora.ffa && name.endsWith('.lora_A.weight'))) n += shape.reduce((a, b) => a * b, 1);
  return n;
}

/** The largest task of a job on a model of this shape, in bytes: every adapter tensor, SCAFFOLD's control variate, and room for the headers. */
export function maxTaskBytes(model: { readonly n_layer: number; readonly n_embd: number }, job: FineTuneJob): number {
  const shapes = loraTensorShapes(model as Gpt2Config, { r: job.lora.r, alpha: job.lora.alpha, dropout: 0, targetModules: canonicalTargets(adaptedModules(job.lora.targets)), baseModel: '', extra: {} });
  let values = 0;
  for (const shape of shapes.values()) values += shape.reduce((a, b) => a * b, 1);
  if (job.strategy.kind === 'scaffold') values += trainableSize(model, job);
  return 4 * values + 256 * (shapes.size + 2) + 4096;
}
