/**
 * The coordinator's half of federated fine-tuning: the round loop.
 *
 * Per round r (McMahan et al. 2017, with the DP and secure-aggregation
 * layers of Kairouz, Liu, Steinke 2021):
 * 1. the ledger checks the round's DP event against the budget; a round that
 *    would exceed it is refused before any site trains or sends
 *    (FL_ERR_BUDGET_EXHAUSTED ends the job, with what it trained so far);
 * 2. a `train` session: its task carries the global adapter (and SCAFFOLD's
 *    control variate); every site trains, encodes its delta with the DP
 *    encoder and takes part in one secure-aggregation session. A session
 *    that aborts (fewer than t survivors, a guard fired) is retried with a
 *    fresh session — fresh nonce, fresh keys, fresh rotation and noise at
 *    every site — up to `maxAttempts` times; every attempt that got as far as
 *    the masked inputs is charged to the ledger, since the coordinator may
 *    have learnt something from it, so every attempt, not only the first,
 *    is checked against the budget before it starts (a retry the budget
 *    cannot pay for ends the job as in 1);
 * 3. the coordinator decodes the sum, divides by the number of sites in it
 *    (equal weights: see docs/federated.md for why example counts are not
 *    used under DP), applies server momentum and the server learning rate;
 * 4. an `eval` session sums the sites' held-out loss sums and token counts:
 *    the coordinator learns the consortium-wide loss of the new adapter;
 * 5. a checkpoint (adapter, optimiser state, ledger, history) is saved, from
 *    which a restarted coordinator continues.
 *
 * The loop sees secure aggregation only through {@link SecureSum}: one
 * process over the in-memory channel ({@link inProcessSum}) or sites over
 * the network (src/federation/coordinator.ts) run the same loop.
 */
import { randomBytes } from 'node:crypto';
import { nativeProvider } from '../crypto/native.js';
import { toHex } from '../crypto/_validate.js';
import { DeterministicRng, systemRng, type Rng } from '../crypto/rng.js';
import type { CryptoProvider } from '../crypto/types.js';
import { DpError, InternalError, TallyError, ValidationError } from '../errors.js';
import { decodeSum } from '../dp/encode.js';
import { PrivacyLedger } from '../dp/ledger.js';
import type { GraphSpec } from '../secagg/config.js';
import { LockstepNetwork } from '../secagg/lockstep.js';
import type { ServerOutcome } from '../secagg/driver.js';
import { encodeSafetensors, parseSafetensors } from '../training/safetensors.js';
import type { Gpt2Model } from '../training/gpt2.js';
import { encodeTask, EVAL_LOSS_SCALE, jobHash, planSession, rotationSeed, siteWeight, trainableSize, type FineTuneJob, type Purpose, type SessionPlan } from './job.js';
import { adapterShapes, jobModel } from './learner.js';
import { perRankWeights, rescaleByRank } from './hetlora.js';
import { robustAggregate } from './robust.js';
import type { DeltaEntry } from '../training/train.js';
import type { Gpt2Config } from '../training/checkpoint.js';
import type { CoordinatorStore } from './store.js';
import { auditListener, clientAuditListener, withAudit, type Transcript } from '../audit/transcript.js';

/** One session the loop asks for. */
export interface SumRequest {
  readonly purpose: Purpose;
  readonly round: number;
  readonly task: Uint8Array;
  readonly session: SessionPlan['session'];
}

/** How a session ended. */
export type SumOutcome =
  | {
    readonly kind: 'completed'; readonly nonce: Uint8Array; readonly sum: Uint32Array;
    readonly survivors: readonly string[]; readonly dropped: readonly string[];
    readonly traffic: { readonly up: number; readonly down: number }; readonly seconds: number;
  }
  | {
    readonly kind: 'aborted'; readonly nonce: Uint8Array; readonly code: string; readonly message: string;
    /** The secagg round it died in: from 2 on, masked inputs may have reached the coordinator. */
    readonly round: number;
    readonly traffic: { readonly up: number; readonly down: number }; readonly seconds: number;
  };

/** Secure aggregation as the round loop sees it: run one session with this task. */
export interface SecureSum {
  run(req: SumRequest): Promise<SumOutcome>;
}

/** One completed round, as reported and checkpointed. */
export interface RoundSummary {
  readonly round: number;
  /** Consortium-wide held-out loss (nats per byte) of the adapter after this round (round 0: the base). */
  readonly evalLoss: number;
  readonly perplexity: number;
  readonly evalTokens: number;
  /** Sites in the training sum (none for round 0). */
  readonly survivors: readonly string[];
  readonly dropped: readonly string[];
  /** ε spent after this round at the budget's δ (0 without DP). */
  readonly epsilon: number;
  /** Training sessions this round took (aborted attempts + 1). */
  readonly attempts: number;
  /** ‖mean update‖₂ applied (before the server learning rate). */
  readonly updateNorm: number;
  /** Wall time of the round and its sessions' envelope bytes. */
  readonly seconds: number;
  readonly bytes: { readonly up: number; readonly down: number };
}

export interface FineTuneServerOptions {
  readonly job: FineTuneJob;
  /** A model of the job (jobModel): its adapter is the initial global adapter and gives the layout. */
  readonly model: Gpt2Model;
  /** Accountant of the budget ('rdp' default). */
  readonly accountant?: 'rdp' | 'pld';
  /** The roster's site ids in roster order (default site-1 … site-n): whose rank is whose under heterogeneous ranks. */
  readonly siteIds?: readonly string[];
}

const fmt = (x: number): string => x.toPrecision(6);

/** The coordinator's state of a job: global adapter, optimiser state, ledger, history. */
export class FineTuneServer {
  readonly job: FineTuneJob;
  readonly jobId: string;
  readonly ledger: PrivacyLedger;
  readonly shapes: Map<string, number[]>;
  readonly trainableNames: readonly string[];
  private readonly trainable: number;
  adapter: Map<string, Float32Array>;
  /** FedAvgM's m, kept in float32 so that a snapshot holds it exactly (a resumed run continues bit for bit). */
  private momentum: Float32Array | undefined;
  private control: Float32Array | undefined;
  history: RoundSummary[] = [];

  constructor(private readonly o: FineTuneServerOptions) {
    this.job = o.job;
    this.jobId = jobHash(o.job);
    this.shapes = adapterShapes(o.model);
    this.trainableNames = o.model.trainableNames();
    // The one count of a delta's length (job.ts), as the sites and consortium init derive it.
    this.trainable = trainableSize(o.model.shape, o.job);
    this.adapter = o.model.adapterWeights();
    if (o.job.strategy.kind === 'scaffold') this.control = new Float32Array(this.trainable);
    this.ledger = new PrivacyLedger({ ...(o.job.dp.budget !== undefined ? { budget: o.job.dp.budget } : {}), accountant: o.accountant ?? 'rdp' });
  }

  /** Rounds completed (0: none yet; the base evaluation is round 0). */
  get round(): number {
    return this.history.length === 0 ? -1 : this.history[this.history.length - 1]!.round;
  }

  plan(purpose: Purpose): SessionPlan {
    return planSession(this.job, purpose, this.trainable);
  }

  /** The task of a session of round `round`. */
  task(purpose: Purpose, round: number): Uint8Array {
    return encodeTask({ job: this.jobId, round, purpose, adapter: this.adapter, ...(purpose === 'train' && this.control !== undefined ? { control: this.control } : {}) }, this.shapes);
  }

  /** ε spent at the budget's δ (0 without DP or before any round). */
  epsilon(): number {
    if (this.job.dp.mechanism === 'none' || this.ledger.entries.length === 0) return 0;
    return this.ledger.epsilon(this.job.dp.budget!.delta);
  }

  /**
   * Refuses a training round whose event would exceed the budget.
   * @throws DpError DP_ERR_BUDGET_EXCEEDED
   */
  checkBudget(): void {
    const ev = this.plan('train').event;
    if (ev !== undefined) this.ledger.check(ev);
  }

  /** Charges one training session to the ledger (completed, or aborted after masked inputs were sent). */
  charge(label: string): void {
    const ev = this.plan('train').event;
    if (ev !== undefined) this.ledger.record(ev, label);
  }

  /**
   * Decodes a training sum of the `survivors` (site ids) and moves the
   * global adapter; returns ‖mean update‖₂.
   */
  applyTrain(sum: Uint32Array, survivors: readonly string[], nonce: Uint8Array): number {
    const plan = this.plan('train');
    const decoded = decodeSum(sum, plan.rawDim, { scale: plan.encode!.scale, bits: plan.encode!.bits, rotationSeed: rotationSeed(nonce) });
    return this.applyMean(this.meanOf(decoded, survivors), decoded);
  }

  /**
   * Plain aggregation (`aggregator: "plain"`): every survivor's update in the
   * clear, aggregated by the job's robust rule (or averaged); returns
   * ‖aggregate‖₂.
   */
  applyPlain(updates: ReadonlyMap<string, Float32Array>): number {
    if (this.job.aggregator !== 'plain') throw new ValidationError('FL_ERR_BAD_JOB', 'individual updates reach the coordinator only with aggregator "plain"');
    const ids = [...updates.keys()];
    const list = ids.map((id) => updates.get(id)!);
    const r = this.job.robust;
    if (r === undefined) {
      const sum = new Float64Array(list[0]!.length);
      for (const u of list) for (let i = 0; i < u.length; i++) sum[i]! += u[i]!;
      return this.applyMean(this.meanOf(sum, ids), sum);
    }
    const agg = robustAggregate(r.kind, list, { ...(r.trim !== undefined ? { trim: r.trim } : {}), ...(r.f !== undefined ? { f: r.f } : {}), ...(r.m !== undefined ? { m: r.m } : {}) }).aggregate;
    // A robust aggregate is already a per-site estimate: scale it to the sum of |survivors| so meanOf undoes it.
    const asSum = Float64Array.from(agg, (x) => x * ids.length);
    return this.applyMean(this.meanOf(asSum, ids), asSum);
  }

  /**
   * The mean of the delta part of a decoded sum: divided by the number of
   * sites in it, or, under heterogeneous ranks, each rank slice by the
   * number of survivors that train it (the ranks are public: the job's).
   */
  private meanOf(decoded: Float64Array, survivors: readonly string[]): Float64Array {
    const n = this.trainable;
    const ranks = this.job.lora.ranks;
    const ids = this.o.siteIds ?? Array.from({ length: this.job.sites }, (_, i) => `site-${i + 1}`);
    const index = survivors.map((s) => {
      const i = ids.indexOf(s);
      if (i < 0) throw new InternalError(`survivor ${s} is not in the roster`);
      return i;
    });
    // Each site's weight (1, or nᵢ / max n with strategy.examples; the sites scaled their deltas by it).
    const weights = index.map((i) => siteWeight(this.job, i));
    if (ranks === undefined) {
      const total = weights.reduce((a, b) => a + b, 0);
      const mean = new Float64Array(n);
      for (let i = 0; i < n; i++) mean[i] = decoded[i]! / total;
      return mean;
    }
    const rankOf = index.map((i) => ranks[i]!);
    const layout: DeltaEntry[] = [];
    let offset = 0;
    for (const name of this.trainableNames) {
      const shape = this.shapes.get(name)!;
      layout.push({ name, shape, offset });
      offset += shape.reduce((a, b) => a * b, 1);
    }
    return Float64Array.from(rescaleByRank(decoded.subarray(0, n), layout, perRankWeights(rankOf, this.job.lora.r, weights)));
  }

  /** Moves the global adapter by the mean update (server momentum, server learning rate); SCAFFOLD's c from the rest of `decoded`. */
  private applyMean(mean: Float64Array, decoded: Float64Array): number {
    const n = this.trainable;
    const { serverLr, serverMomentum } = this.job.strategy;
    // FedAvgM (Hsu et al. 2019): m ← β·m + mean; global ← global + η_s·m. β = 0 is FedAvg.
    let step: Float64Array = mean;
    if (serverMomentum > 0) {
      this.momentum ??= new Float32Array(n);
      for (let i = 0; i < n; i++) this.momentum[i] = serverMomentum * this.momentum[i]! + mean[i]!;
      step = Float64Array.from(this.momentum);
    }
    let offset = 0;
    for (const name of this.trainableNames) {
      const w = this.adapter.get(name)!;
      const next = new Float32Array(w.length);
      for (let j = 0; j < w.length; j++) next[j] = w[j]! + serverLr * step[offset + j]!;
      this.adapter.set(name, next);
      offset += w.length;
    }
    // SCAFFOLD (Karimireddy et al. 2020, Alg. 1 line 17): c ← c + (|S|/N)·mean(Δc_i) = c + Σ Δc_i / N.
    if (this.control !== undefined) {
      const c = new Float32Array(n);
      for (let i = 0; i < n; i++) c[i] = this.control[i]! + decoded[n + i]! / this.job.sites;
      this.control = c;
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += mean[i]! * mean[i]!;
    return Math.sqrt(norm);
  }

  /** The consortium-wide held-out loss from an eval sum. */
  static evalOf(sum: Uint32Array): { loss: number; tokens: number } {
    const tokens = sum[1]!;
    if (tokens === 0) throw new TallyError('FL_ERR_ABORTED', 'the eval sum counts no tokens');
    return { loss: sum[0]! / EVAL_LOSS_SCALE / tokens, tokens };
  }

  /** The state as bytes (safetensors: adapter, momentum, control; metadata: job, history, ledger). */
  snapshot(): Uint8Array {
    const tensors = [...this.adapter].map(([name, data]) => ({ name, shape: this.shapes.get(name)!, data }));
    if (this.momentum !== undefined) tensors.push({ name: 'tally.momentum', shape: [this.momentum.length], data: this.momentum.slice() });
    if (this.control !== undefined) tensors.push({ name: 'tally.control', shape: [this.control.length], data: this.control });
    const ledger = this.ledger.entries.map((e) => JSON.stringify({ v: 1, seq: e.seq, event: e.event, ...(e.label !== undefined ? { label: e.label } : {}) })).join('\n');
    return encodeSafetensors(tensors, { 'tally.job': this.jobId, 'tally.history': JSON.stringify(this.history), 'tally.ledger': ledger });
  }

  /**
   * Restores a {@link snapshot} of the same job.
   * @throws ValidationError FL_ERR_RESUME when it belongs to another job or is malformed
   */
  restore(bytes: Uint8Array): void {
    const refuse = (m: string): never => { throw new ValidationError('FL_ERR_RESUME', `cannot resume: ${m}`); };
    let f;
    try {
      f = parseSafetensors(bytes);
    } catch (err) {
      if (err instanceof TallyError) refuse(`the checkpoint is not a snapshot: ${err.message}`);
      throw err;
    }
    if (f.metadata['tally.job'] !== this.jobId) refuse('the checkpoint belongs to another job (its parameters differ)');
    const vector = (name: string, length: number): Float32Array => {
      if (f.tensors.get(name)?.dtype !== 'F32') refuse(`the checkpoint lacks ${name} (F32)`);
      const x = f.float32(name);
      if (x.length !== length) refuse(`${name} has ${x.length} values, expected ${length}`);
      if (!x.every(Number.isFinite)) refuse(`${name} holds a non-finite value`);
      return x;
    };
    // Everything is read and checked before any of it replaces the state: a refused snapshot changes nothing.
    const adapter = new Map<string, Float32Array>();
    for (const [name, shape] of this.shapes) adapter.set(name, vector(name, shape.reduce((a, b) => a * b, 1)));
    // Momentum exists from the first applied round of a FedAvgM job; SCAFFOLD's control variate always.
    const momentum = this.job.strategy.serverMomentum > 0 && f.tensors.has('tally.momentum') ? vector('tally.momentum', this.trainable) : undefined;
    const control = this.job.strategy.kind === 'scaffold' ? vector('tally.control', this.trainable) : undefined;
    let history: RoundSummary[] = [];
    try {
      history = JSON.parse(f.metadata['tally.history'] ?? '[]') as RoundSummary[];
    } catch {
      refuse('its history is not JSON');
    }
    if (!Array.isArray(history) || history.some((h, i) => h === null || typeof h !== 'object' || h.round !== i)) refuse('its history is not the list of rounds 0, 1, …');
    let ledger: PrivacyLedger | undefined;
    try {
      ledger = PrivacyLedger.fromJsonLines(f.metadata['tally.ledger'] ?? '', { ...(this.job.dp.budget !== undefined ? { budget: this.job.dp.budget } : {}), accountant: this.o.accountant ?? 'rdp' });
    } catch (err) {
      if (err instanceof TallyError) refuse(`its ledger: ${err.message}`);
      throw err;
    }
    this.adapter = adapter;
    this.momentum = momentum;
    this.control = control;
    this.history = history;
    (this as { ledger: PrivacyLedger }).ledger = ledger!;
  }
}

/**
 * Plain aggregation's collection of updates (`aggregator: "plain"`): every
 * site's update, in the clear.
 */
export interface PlainCollect {
  collect(req: { readonly round: number; readonly task: Uint8Array }): Promise<{ readonly updates: ReadonlyMap<string, Float32Array>; readonly dropped: readonly string[]; readonly bytes: number }>;
}

/** Plain collection in one process: each site hands over its update. A site that throws is dropped from the round. */
export function inProcessPlain(sites: readonly { readonly id: string; update(task: Uint8Array): Float32Array }[]): PlainCollect {
  return {
    async collect(req) {
      const updates = new Map<string, Float32Array>();
      const dropped: string[] = [];
      let bytes = 0;
      for (const s of sites) {
        try {
          const u = s.update(req.task);
          updates.set(s.id, u);
          bytes += 4 * u.length;
        } catch (err) {
          if (!(err instanceof TallyError)) throw err;
          dropped.push(s.id);
        }
      }
      return { updates, dropped, bytes };
    },
  };
}

/** Events of {@link runFineTune}, for progress displays and logs. */
export interface FineTuneEvents {
  sessionStarted?(e: { round: number; purpose: Purpose; attempt: number }): void;
  sessionEnded?(e: { round: number; purpose: Purpose; outcome: SumOutcome }): void;
  roundDone?(s: RoundSummary): void;
  log?(line: string): void;
}

export interface FineTuneRunOptions {
  /** Tries per session before the job aborts (default 3). */
  readonly maxAttempts?: number;
  /** Called with the server's snapshot after every round (persist it to resume). */
  readonly checkpoint?: (round: number, snapshot: Uint8Array, summary: RoundSummary) => void;
  readonly events?: FineTuneEvents;
  readonly signal?: AbortSignal;
  /** With aggregator "plain": how the updates are collected. */
  readonly plain?: PlainCollect;
  /**
   * The run's audit transcript: an `fl-session` record after every session,
   * a `dp-event` record for every charge to the ledger (before the release
   * it pays for), and a checkpoint after each. The sessions' own records
   * come from the secure sum's listener (the coordinator's, or
   * {@link inProcessSum}'s `audit`).
   */
  readonly audit?: Transcript;
}

/** How a job ended. */
export interface FineTuneResult {
  readonly outcome: 'completed' | 'budget-exhausted';
  readonly rounds: readonly RoundSummary[];
  /** When the budget stopped it: the ledger's message. */
  readonly stoppedBy?: string;
}

/**
 * Runs the job's remaining rounds (module comment) against `sum`.
 * @throws TallyError FL_ERR_ABORTED when a session aborts `maxAttempts` times in a row
 */
export async function runFineTune(server: FineTuneServer, sum: SecureSum, o: FineTuneRunOptions = {}): Promise<FineTuneResult> {
  const maxAttempts = o.maxAttempts ?? 3;
  const ev = o.events ?? {};
  const audit = o.audit;
  /** Charges the ledger and writes the event, with the ε it brings the run to, before the release it pays for. */
  const charge = (label: string, session: Uint8Array, round: number): void => {
    const before = server.ledger.entries.length;
    server.charge(label);
    const entry = server.ledger.entries[before];
    if (audit !== undefined && entry !== undefined) audit.dpEvent(entry.event, server.epsilon(), { session: toHex(session), round, label });
  };
  const logSession = (round: number, attempt: number, purpose: Purpose, out: SumOutcome, charged: boolean): void => {
    if (audit === undefined) return;
    const metrics = purpose === 'eval' && out.kind === 'completed' ? (() => { const m = FineTuneServer.evalOf(out.sum); return { evalLoss: m.loss, perplexity: Math.exp(m.loss), tokens: m.tokens }; })() : undefined;
    audit.append('fl-session', {
      round, attempt, session: toHex(out.nonce), purpose, result: out.kind, charged,
      ...(out.kind === 'aborted' ? { code: out.code } : {}),
      ...(metrics !== undefined ? { metrics } : {}),
    });
    audit.checkpoint();
  };
  const session = async (purpose: Purpose, round: number): Promise<{ out: Extract<SumOutcome, { kind: 'completed' }>; attempts: number; bytes: { up: number; down: number } }> => {
    const bytes = { up: 0, down: 0 };
    for (let attempt = 1; ; attempt++) {
      if (o.signal?.aborted === true) throw new TallyError('FL_ERR_ABORTED', 'stopped');
      // Every training attempt may be charged (an abort from R2 on, or completion): check the budget
      // before each one, not only before the round, so that charging an attempt never exceeds it.
      if (purpose === 'train') server.checkBudget();
      ev.sessionStarted?.({ round, purpose, attempt });
      const out = await sum.run({ purpose, round, task: server.task(purpose, round), session: server.plan(purpose).session });
      bytes.up += out.traffic.up; bytes.down += out.traffic.down;
      ev.sessionEnded?.({ round, purpose, outcome: out });
      if (out.kind === 'completed') {
        // A completed training sum is released to the coordinator: charged (and logged) before it is used.
        if (purpose === 'train') charge(`round ${round}`, out.nonce, round);
        logSession(round, attempt, purpose, out, purpose === 'train');
        return { out, attempts: attempt, bytes };
      }
      // Masked inputs may have reached the coordinator from R2 on: charge the attempt (module comment).
      const chargeAbort = purpose === 'train' && out.round >= 2;
      if (chargeAbort) charge(`round ${round} attempt ${attempt} (aborted in R${out.round})`, out.nonce, round);
      logSession(round, attempt, purpose, out, chargeAbort);
      ev.log?.(`round ${round} ${purpose} session aborted in R${out.round}: ${out.code}: ${out.message}`);
      if (attempt >= maxAttempts) throw new TallyError('FL_ERR_ABORTED', `round ${round}: the ${purpose} session aborted ${attempt} times (last: ${out.code}: ${out.message})`);
    }
  };
  const record = (s: RoundSummary, started: number): void => {
    server.history.push(s);
    o.checkpoint?.(s.round, server.snapshot(), s);
    ev.roundDone?.(s);
    ev.log?.(`round ${s.round}: held-out loss ${s.evalLoss.toFixed(4)} (perplexity ${s.perplexity.toFixed(3)}), ${s.survivors.length} sites in the sum, ε ${fmt(s.epsilon)}, ${((performance.now() - started) / 1000).toFixed(1)} s`);
  };

  if (server.round < 0) {
    const t0 = performance.now();
    const e = await session('eval', 0);
    const { loss, tokens } = FineTuneServer.evalOf(e.out.sum);
    record({ round: 0, evalLoss: loss, perplexity: Math.exp(loss), evalTokens: tokens, survivors: [], dropped: [], epsilon: 0, attempts: 0, updateNorm: 0, seconds: (performance.now() - t0) / 1000, bytes: e.bytes }, t0);
  }
  if (server.job.aggregator === 'plain' && o.plain === undefined) throw new ValidationError('FL_ERR_BAD_JOB', 'aggregator "plain" needs a plain collector (inProcessPlain); it runs in one process only');
  for (let r = server.round + 1; r <= server.job.rounds; r++) {
    const t0 = performance.now();
    if (o.plain !== undefined && server.job.aggregator === 'plain') {
      // Plain aggregation: the coordinator sees each update (the job named it explicitly); said in every round's log.
      ev.log?.(`round ${r}: aggregator "plain": the coordinator sees every site's update in the clear`);
      ev.sessionStarted?.({ round: r, purpose: 'train', attempt: 1 });
      const u = await o.plain.collect({ round: r, task: server.task('train', r) });
      if (u.updates.size === 0) throw new TallyError('FL_ERR_ABORTED', `round ${r}: no site sent an update`);
      const updateNorm = server.applyPlain(u.updates);
      const e = await session('eval', r);
      const { loss, tokens } = FineTuneServer.evalOf(e.out.sum);
      record({
        round: r, evalLoss: loss, perplexity: Math.exp(loss), evalTokens: tokens, survivors: [...u.updates.keys()], dropped: u.dropped,
        epsilon: 0, attempts: 1, updateNorm, seconds: (performance.now() - t0) / 1000,
        bytes: { up: u.bytes + e.bytes.up, down: e.bytes.down },
      }, t0);
      continue;
    }
    const charged = server.ledger.entries.length;
    let t;
    try {
      t = await session('train', r);
    } catch (err) {
      if (err instanceof DpError && err.code === 'DP_ERR_BUDGET_EXCEEDED') {
        const retry = server.ledger.entries.length > charged;
        ev.log?.(retry
          ? `round ${r}: a further training attempt refused (its aborted attempts were charged): ${err.message}`
          : `round ${r} refused before any site trained: ${err.message}`);
        return { outcome: 'budget-exhausted', rounds: server.history, stoppedBy: err.message };
      }
      throw err;
    }
    const updateNorm = server.applyTrain(t.out.sum, t.out.survivors, t.out.nonce);
    const e = await session('eval', r);
    const { loss, tokens } = FineTuneServer.evalOf(e.out.sum);
    record({
      round: r, evalLoss: loss, perplexity: Math.exp(loss), evalTokens: tokens, survivors: t.out.survivors, dropped: t.out.dropped,
      epsilon: server.epsilon(), attempts: t.attempts, updateNorm, seconds: (performance.now() - t0) / 1000,
      bytes: { up: t.bytes.up + e.bytes.up, down: t.bytes.down + e.bytes.down },
    }, t0);
  }
  return { outcome: 'completed', rounds: server.history };
}

/** One site of {@link inProcessSum}. */
export interface InProcessSite {
  readonly id: string;
  /** The site's input for a session; throwing makes the site silent in that session (it drops out). */
  input(task: Uint8Array, nonce: Uint8Array, purpose: Purpose): Uint32Array;
  /** Sessions of these rounds and purposes in which the site falls silent from this secagg round (tests: dropouts). */
  readonly silentFrom?: (round: number, purpose: Purpose) => number | undefined;
}

/**
 * Secure aggregation in one process: each session runs secagg-v1 through
 * the one session driver on the in-memory lockstep channel, with a fresh
 * nonce (so fresh keys) every time.
 */
export function inProcessSum(o: {
  readonly sites: readonly InProcessSite[];
  readonly threat?: 'semi-honest' | 'malicious';
  readonly graph?: GraphSpec;
  readonly provider?: CryptoProvider;
  /** Seeds the session nonces and keys (tests); default fresh randomness. */
  readonly seed?: string;
  /** The coordinator's audit transcript: every session's records (auditListener). */
  readonly audit?: Transcript;
  /** Each site's own audit log, by site index (transcript-v1 §6): its messages, reveal, the session's end, a witness of the coordinator's checkpoint. */
  readonly siteLogs?: readonly (Transcript | undefined)[];
}): SecureSum {
  const provider = o.provider ?? nativeProvider;
  const seeded = o.seed !== undefined ? new DeterministicRng(o.seed) : undefined;
  const rng = (): Rng => (seeded !== undefined ? new DeterministicRng(seeded.bytes(32)) : systemRng);
  return {
    async run(req) {
      const t0 = performance.now();
      const nonce = seeded !== undefined ? seeded.bytes(32) : new Uint8Array(randomBytes(32));
      const clientIds = o.sites.map((_, i) => i + 1);
      const config = { nonce, clientIds, ...req.session, threat: o.threat ?? 'semi-honest', graph: o.graph ?? { kind: 'complete' as const } };
      if (config.threat === 'malicious') throw new ValidationError('FL_ERR_BAD_JOB', 'the in-process channel runs the semi-honest protocol (identity keys are a network concern)');
      const failed = new Set<number>();
      const silent = new Map<number, number>();
      o.sites.forEach((s, i) => { const r = s.silentFrom?.(req.round, req.purpose); if (r !== undefined) silent.set(i + 1, r); });
      const traffic = { up: 0, down: 0 };
      const net = new LockstepNetwork({
        config, provider,
        clients: o.sites.map((s, i) => ({
          id: i + 1, rng: rng(),
          ...(o.siteLogs?.[i] !== undefined ? { listener: clientAuditListener(o.siteLogs[i]!, toHex(nonce), config, i + 1) } : {}),
          input: () => {
            try {
              return s.input(req.task, nonce, req.purpose);
            } catch (err) {
              // The site leaves this session (the driver aborts it with SECAGG_ERR_NO_INPUT); the others go on.
              failed.add(i + 1);
              if (err instanceof TallyError) throw err;
              throw new TallyError('FL_ERR_ABORTED', `site ${s.id} could not compute its input: ${(err as Error).message}`, { cause: err });
            }
          },
        })),
        silentFrom: silent,
        listener: withAudit(o.audit === undefined ? undefined : auditListener(o.audit, toHex(nonce), config), {
          message: (e) => { if (e.direction === 'to-server') traffic.up += e.bytes.length; else traffic.down += e.bytes.length; },
        }),
      });
      const out = net.run();
      if (o.siteLogs !== undefined) witnessAll(o.siteLogs, toHex(nonce), out, o.audit, clientIds);
      const name = (id: number): string => o.sites[id - 1]!.id;
      const seconds = (performance.now() - t0) / 1000;
      if (out.kind === 'completed') {
        const inSum = new Set(out.survivors);
        return { kind: 'completed', nonce, sum: out.sum, survivors: out.survivors.map(name), dropped: clientIds.filter((id) => !inSum.has(id)).map(name), traffic, seconds };
      }
      return { kind: 'aborted', nonce, code: out.code, message: out.message, round: out.round, traffic, seconds };
    },
  };
}

/**
 * The end of an in-process session in each site's log, as a site that
 * received the result or abort would write it (site.ts does the same over
 * the network): `site-result`, a witness of the coordinator's latest
 * checkpoint, a checkpoint of its own.
 */
function witnessAll(logs: readonly (Transcript | undefined)[], session: string, out: ServerOutcome, audit: Transcript | undefined, clientIds: readonly number[]): void {
  const cp = audit?.lastCheckpoint();
  logs.forEach((t) => {
    if (t === undefined) return;
    if (out.kind === 'completed') {
      const inSum = new Set(out.survivors);
      t.append('site-result', { session, result: 'completed', survivors: [...out.survivors], dropped: clientIds.filter((id) => !inSum.has(id)), sumSha256: null });
    } else {
      t.append('site-result', { session, result: 'aborted', code: out.code, message: out.message });
    }
    if (cp !== undefined) t.witness(cp);
    t.checkpoint();
  });
}

/**
 * The coordinator's side of a job, ready to run: the job's model (for its
 * layout and initial adapter) and its server, restored from the store's
 * latest checkpoint of this job when there is one (a restarted coordinator
 * continues after the last completed round).
 * @throws ValidationError FL_ERR_RESUME when the stored checkpoint cannot be restored
 */
export function openJob(o: {
  readonly job: FineTuneJob;
  readonly base: { readonly config: Gpt2Config; readonly weights: ReadonlyMap<string, Float32Array> };
  readonly store?: CoordinatorStore;
  readonly accountant?: 'rdp' | 'pld';
  /** The roster's site ids, in order (default site-1 … site-n). */
  readonly siteIds?: readonly string[];
}): { server: FineTuneServer; model: Gpt2Model; resumedAfter: number | undefined; checkpoint: FineTuneRunOptions['checkpoint'] } {
  const model = jobModel(o.job, o.base);
  const server = new FineTuneServer({ job: o.job, model, ...(o.accountant !== undefined ? { accountant: o.accountant } : {}), ...(o.siteIds !== undefined ? { siteIds: o.siteIds } : {}) });
  const store = o.store;
  let resumedAfter: number | undefined;
  const saved = store?.latestCheckpoint(server.jobId);
  if (saved !== undefined) {
    server.restore(saved.state);
    resumedAfter = saved.round;
  }
  return { server, model, resumedAfter, checkpoint: store === undefined ? undefined : (round, snapshot, summary) => store.saveCheckpoint(server.jobId, round, snapshot, summary) };
}
