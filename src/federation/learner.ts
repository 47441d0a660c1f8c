/**
 * A site's half of federated fine-tuning: turns a session's task into the
 * site's secure-aggregation input.
 *
 * - `train`: load the global adapter, train locally (src/training/train.ts:
 *   FedProx's proximal term, SCAFFOLD's correction as the job says), flatten
 *   the delta (with SCAFFOLD, the control-variate delta after it) and encode
 *   it with the DP encoder under the plan of {@link planSession}: clipped to
 *   C, rotated with the session's seed, rounded, noised with this site's
 *   share of the distributed noise, reduced mod 2^b.
 * - `eval`: load the global adapter, evaluate it on the site's held-out
 *   windows, and give [loss sum in milli-nats, tokens]; the per-site figure
 *   stays here (it is reported to the site's own log only).
 *
 * A round's training runs once: when its session aborts and the coordinator
 * retries the round with a fresh session, the site encodes the same delta
 * again with fresh noise and a fresh rotation (a new input: new keys, new
 * masks, new noise; the coordinator's accountant charges every attempt that
 * got as far as the masked inputs).
 */
import type { Rng } from '../crypto/rng.js';
import { systemRng } from '../crypto/rng.js';
import { TallyError, ValidationError } from '../errors.js';
import type { Consortium } from './consortium.js';
import { startMismatches, type TaskHandler } from './site.js';
import { encodeUpdate } from '../dp/encode.js';
import { adaptedModules, canonicalTargets, loraTensorShapes, type LoraConfig } from '../training/adapter-format.js';
import type { Gpt2Config } from '../training/checkpoint.js';
import { Gpt2Model } from '../training/gpt2.js';
import { evaluate, trainLocal, type Evaluation } from '../training/train.js';
import { padDelta, truncateAdapter } from './hetlora.js';
import { decodeTask, EVAL_BITS, EVAL_LOSS_SCALE, jobHash, planSession, rotationSeed, siteWeight, trainableSize, type FineTuneJob, type Purpose, type Task } from './job.js';

export interface LearnerOptions {
  readonly job: FineTuneJob;
  /** The shared base model. */
  readonly base: { readonly config: Gpt2Config; readonly weights: ReadonlyMap<string, Float32Array> };
  /** The site's training and held-out windows (token ids, at most n_positions each). */
  readonly train: readonly Uint16Array[];
  readonly heldOut: readonly Uint16Array[];
  /** Seed of this site's batch order (each round adds its number). */
  readonly seed: string;
  /** The site's position in the roster (0-based): its rank under heterogeneous ranks (`lora.ranks`). */
  readonly siteIndex?: number;
  /** Randomness of the encoder (rounding, noise); default the system's. */
  readonly rng?: Rng;
  /** One line per task handled. */
  readonly log?: (line: string) => void;
  /** Called after every local step (progress bars). */
  readonly onStep?: (s: { readonly round: number; readonly step: number; readonly steps: number; readonly loss: number }) => void;
  /** Called with what the site did for each task. */
  readonly onReport?: (r: LearnerReport) => void;
}

/** What the site did for one task. */
export interface LearnerReport {
  readonly round: number;
  readonly purpose: Purpose;
  /** train: the local training loss of the last step; eval: the held-out evaluation. */
  readonly trainLoss?: number;
  readonly eval?: Evaluation;
  /** train: ‖delta‖₂ before and after the encoder's clip. */
  readonly norm?: number;
  readonly clipped?: boolean;
  readonly seconds: number;
}

/** The LoRA configuration a job trains (also what the coordinator writes next to the final adapter). */
export function jobLoraConfig(job: FineTuneJob, baseModel = 'tally-base'): LoraConfig {
  return { r: job.lora.r, alpha: job.lora.alpha, dropout: 0, targetModules: canonicalTargets(adaptedModules(job.lora.targets)), baseModel, extra: {} };
}

/**
 * The model every party of a job builds: the base with the job's adapter (A
 * from the shared seed, B zero), of rank r, or of a site's own rank under
 * heterogeneous ranks (with alpha scaled so that alpha/r is the job's).
 */
export function jobModel(job: FineTuneJob, base: LearnerOptions['base'], rank = job.lora.r): Gpt2Model {
  return new Gpt2Model(base.config, base.weights, { r: rank, alpha: (job.lora.alpha * rank) / job.lora.r, targets: job.lora.targets, freezeA: job.lora.ffa, seed: job.lora.seed });
}

export class Learner {
  readonly model: Gpt2Model;
  readonly jobId: string;
  /** This site's LoRA rank (the job's r, or its entry of `lora.ranks`). */
  readonly rank: number;
  /** The global adapter's tensor shapes (rank r): what a task carries. */
  private readonly shapes: Map<string, number[]>;
  /** This site's own tensor shapes (rank `rank`). */
  private readonly ownShapes: Map<string, number[]>;
  /** Length of a delta in the global layout (padded to rank r under heterogeneous ranks). */
  private readonly trainable: number;
  private localControl: Float32Array | undefined;
  private cached: { round: number; vector: Float32Array; trainLoss: number } | undefined;
  private readonly log: (l: string) => void;

  constructor(private readonly o: LearnerOptions) {
    if (o.train.length === 0) throw new ValidationError('TRAIN_ERR_BAD_DATA', 'the site has no training windows');
    if (o.heldOut.length === 0) throw new ValidationError('TRAIN_ERR_BAD_DATA', 'the site has no held-out windows');
    const ranks = o.job.lora.ranks;
    if ((ranks !== undefined || o.job.strategy.examples !== undefined) && (o.siteIndex === undefined || !Number.isInteger(o.siteIndex) || o.siteIndex < 0 || o.siteIndex >= o.job.sites)) {
      throw new ValidationError('FL_ERR_BAD_JOB', `the job gives each site its own rank or weight: the learner needs its roster position (0..${o.job.sites - 1}), got ${String(o.siteIndex)}`);
    }
    this.rank = ranks?.[o.siteIndex!] ?? o.job.lora.r;
    this.model = jobModel(o.job, o.base, this.rank);
    this.jobId = jobHash(o.job);
    this.ownShapes = adapterShapes(this.model);
    this.shapes = this.rank === o.job.lora.r ? this.ownShapes : jobAdapterShapes(o.base.config, o.job);
    this.trainable = trainableSize(o.base.config, o.job);
    if (o.job.strategy.kind === 'scaffold') this.localControl = new Float32Array(this.trainable);
    this.log = o.log ?? (() => {});
  }

  /** The session parameters this site expects for a purpose (to check a session-start against). */
  expected(purpose: Purpose): { dim: number; bits: number; threshold: number } {
    return planSession(this.o.job, purpose, this.trainable).session;
  }

  /**
   * The site's input of a session.
   * @param task - the session's task bytes
   * @param nonce - the session's nonce (the rotation seed derives from it)
   * @throws ValidationError FL_ERR_BAD_TASK for a task this site cannot run
   */
  input(task: Uint8Array, nonce: Uint8Array): { input: Uint32Array; report: LearnerReport } {
    const t0 = performance.now();
    const t = this.load(task);
    if (t.purpose === 'eval') {
      const e = evaluate(this.model, this.o.heldOut);
      const lossSum = Math.round(e.loss * e.tokens * EVAL_LOSS_SCALE);
      // n sites' sums must stay below 2^32: refuse a figure that would wrap the consortium's sum.
      const cap = Math.floor((2 ** EVAL_BITS - 1) / this.o.job.sites);
      if (lossSum > cap || e.tokens > cap) throw new ValidationError('FL_ERR_BAD_TASK', `the held-out split is too large for the eval session (${e.tokens} tokens): give the site at most ${Math.floor(cap / (EVAL_LOSS_SCALE * Math.max(e.loss, 1)))} held-out tokens`);
      this.log(`round ${t.round}: held-out loss ${e.loss.toFixed(4)} nats/byte (perplexity ${e.perplexity.toFixed(3)}) over ${e.tokens} bytes`);
      const report: LearnerReport = { round: t.round, purpose: 'eval', eval: e, seconds: (performance.now() - t0) / 1000 };
      this.o.onReport?.(report);
      return { input: Uint32Array.of(lossSum, e.tokens), report };
    }
    const plan = planSession(this.o.job, 'train', this.trainable);
    if (this.cached?.round !== t.round) this.cached = { round: t.round, ...this.trainRound(t.round, t.control) };
    const enc = encodeUpdate(this.cached.vector, { ...plan.encode!, rotationSeed: rotationSeed(nonce) }, this.o.rng ?? systemRng);
    this.log(`round ${t.round}: trained ${this.o.job.local.steps} steps (last loss ${this.cached.trainLoss.toFixed(4)}), ‖Δ‖ ${enc.norm.toFixed(4)}${enc.clipped ? ` clipped to ${enc.clippedNorm.toFixed(4)}` : ''}`);
    const report: LearnerReport = { round: t.round, purpose: 'train', trainLoss: this.cached.trainLoss, norm: enc.norm, clipped: enc.clipped, seconds: (performance.now() - t0) / 1000 };
    this.o.onReport?.(report);
    return { input: enc.encoded, report };
  }

  /**
   * Plain aggregation (`aggregator: "plain"`): the site's update itself, in
   * the clear, as the coordinator receives it (a train task only).
   */
  plainUpdate(task: Uint8Array): { update: Float32Array; report: LearnerReport } {
    const t0 = performance.now();
    const t = this.load(task);
    if (t.purpose !== 'train') throw new ValidationError('FL_ERR_BAD_TASK', 'a plain update answers a train task');
    if (this.cached?.round !== t.round) this.cached = { round: t.round, ...this.trainRound(t.round, t.control) };
    let norm = 0;
    for (const x of this.cached.vector) norm += x * x;
    const report: LearnerReport = { round: t.round, purpose: 'train', trainLoss: this.cached.trainLoss, norm: Math.sqrt(norm), clipped: false, seconds: (performance.now() - t0) / 1000 };
    this.o.onReport?.(report);
    return { update: this.cached.vector, report };
  }

  /** Decodes a task and loads its global adapter (truncated to this site's rank). */
  private load(task: Uint8Array): Task {
    const controlLength = this.o.job.strategy.kind === 'scaffold' ? this.trainable : undefined;
    const t = decodeTask(task, { job: this.jobId, shapes: this.shapes, ...(controlLength !== undefined ? { controlLength } : {}) });
    this.model.setAdapterWeights(this.rank === this.o.job.lora.r ? t.adapter : truncateAdapter(t.adapter, this.shapes, this.rank));
    return t;
  }

  private trainRound(round: number, control: Float32Array | undefined): { vector: Float32Array; trainLoss: number } {
    const { job } = this.o;
    const scaffold = job.strategy.kind === 'scaffold';
    const r = trainLocal(this.model, this.o.train, {
      steps: job.local.steps, batchSize: job.local.batchSize, lr: job.local.lr, weightDecay: job.local.weightDecay,
      seed: `${this.o.seed}/round-${round}`, schedule: 'constant',
      ...(job.strategy.kind === 'fedprox' ? { proximalMu: job.strategy.mu } : {}),
      ...(scaffold ? { optimizer: 'sgd' as const, control: { global: control!, local: this.localControl! } } : {}),
      onStep: (s) => this.o.onStep?.({ round, step: s.step, steps: job.local.steps, loss: s.loss }),
    });
    const trainLoss = r.losses[r.losses.length - 1]!;
    // FedAvg weighted by examples: scale the delta by nᵢ / max n (≤ 1; the control delta of SCAFFOLD is not weighted).
    const w = siteWeight(job, this.o.siteIndex ?? 0);
    if (w !== 1) for (let i = 0; i < r.delta.length; i++) r.delta[i]! *= w;
    // Heterogeneous ranks: zero-pad the rank-rᵢ delta into the rank-r layout every site sums in.
    if (this.rank !== job.lora.r) return { vector: padDelta(r.delta, r.layout, this.rank, job.lora.r).delta, trainLoss };
    if (!scaffold) return { vector: r.delta, trainLoss };
    const dc = r.controlDelta!;
    for (let i = 0; i < dc.length; i++) this.localControl![i]! += dc[i]!;
    const v = new Float32Array(2 * this.trainable);
    v.set(r.delta, 0);
    v.set(dc, this.trainable);
    return { vector: v, trainLoss };
  }

  /**
   * The site's task handler for the network (site.ts `runSite`): a
   * session-start is accepted when its task belongs to this job and its
   * shape is the one this site derives for the task's purpose.
   */
  tasks(c: Consortium): TaskHandler {
    if (this.o.job.aggregator === 'plain') throw new ValidationError('FL_ERR_BAD_JOB', 'aggregator "plain" runs in one process only: over the network the sites take part in secure sums');
    const controlLength = this.o.job.strategy.kind === 'scaffold' ? this.trainable : undefined;
    return {
      accept: (start) => {
        let t;
        try {
          t = decodeTask(start.task ?? new Uint8Array(0), { job: this.jobId, shapes: this.shapes, ...(controlLength !== undefined ? { controlLength } : {}) });
        } catch (err) {
          if (err instanceof TallyError) return { refused: [err.message], last: false };
          throw err;
        }
        return { refused: startMismatches(c, start, this.expected(t.purpose)), last: t.purpose === 'eval' && t.round >= this.o.job.rounds };
      },
      input: (task, nonce) => this.input(task, nonce).input,
    };
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** The global adapter's tensor shapes of a job (rank r, PEFT names). */
export function jobAdapterShapes(config: Gpt2Config, job: FineTuneJob): Map<string, number[]> {
  return loraTensorShapes(config, { ...jobLoraConfig(job), baseModel: '' });
}

/** Every adapter tensor's shape (PEFT names), read from a model. */
export function adapterShapes(model: Gpt2Model): Map<string, number[]> {
  const l = model.lora;
  if (l === undefined) throw new ValidationError('TRAIN_ERR_BAD_PARAM', 'the model has no adapter');
  const config: LoraConfig = { r: l.r, alpha: l.alpha, dropout: 0, targetModules: canonicalTargets(l.modules), baseModel: '', extra: {} };
  return loraTensorShapes({ n_layer: model.shape.n_layer, n_embd: model.shape.n_embd } as Gpt2Config, config);
}
