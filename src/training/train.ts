/**
 * Local training and evaluation of a {@link Gpt2Model}'s LoRA adapter: what
 * one site does in one round, without anything of secure aggregation.
 *
 * Training: AdamW (Loshchilov & Hutter 2019: Adam with decoupled weight
 * decay) or SGD with momentum on the adapter's trainable variables, a
 * learning rate with linear warm-up then cosine or linear decay (or
 * constant), clipping of the global gradient norm, mini-batches of windows
 * drawn from a seeded generator. Options for federated optimisation: the
 * FedProx proximal term (Li et al., MLSys 2020) and SCAFFOLD's control
 * variates (Karimireddy et al., ICML 2020); and for example-level privacy,
 * DP-SGD with per-example clipping (Abadi et al., CCS 2016), whose
 * per-example gradients come from one vectorised backward pass. The
 * result is the adapter delta Δ = adapter_after − adapter_before as one flat
 * Float32Array, in the layout {@link LocalResult.layout} describes (the
 * order of `Gpt2Model.trainableNames()`, each tensor row-major), which the DP
 * encoder and secure aggregation take as it is.
 *
 * Evaluation: mean next-token cross-entropy in nats per token over windows
 * (every position but the last of a window predicts the next token of that
 * window), and its perplexity.
 */
import { DeterministicRng, systemRng, type Rng } from '../crypto/rng.js';
import { toSource } from '../dp/_random.js';
import { addCentralGaussianNoise } from '../dp/central.js';
import { sampledGaussian, type DpEvent } from '../dp/events.js';
import { ValidationError } from '../errors.js';
import { tf } from './backend.js';
import type { Gpt2Model } from './gpt2.js';

export interface TrainOptions {
  /** Optimiser steps (or give `epochs`). */
  readonly steps?: number;
  /** Passes over the windows, rounded up to whole steps (used when `steps` is absent). */
  readonly epochs?: number;
  readonly batchSize: number;
  /** Peak learning rate. */
  readonly lr: number;
  /** Decoupled weight decay (AdamW); default 0. */
  readonly weightDecay?: number;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly epsilon?: number;
  /** Steps of linear warm-up from 0 to `lr`; default 0. */
  readonly warmupSteps?: number;
  /** After warm-up: 'cosine' (default) or 'linear' decay to 0, or 'constant'. */
  readonly schedule?: 'cosine' | 'linear' | 'constant';
  /** Clip the global L2 norm of the gradient to this value; default none. */
  readonly clipNorm?: number;
  /** Seed of the batch order. */
  readonly seed: string | Uint8Array;
  /** Called after every step (for progress and logs). */
  readonly onStep?: (s: { readonly step: number; readonly loss: number; readonly lr: number }) => void;
  /**
   * 'adamw' (default) or 'sgd': plain SGD, w ← w·(1 − η·weightDecay) − η·u with
   * u = g, or u ← momentum·u + g with `momentum` (PyTorch's form). Both take the
   * same learning-rate schedule and `clipNorm`; beta1, beta2 and epsilon are AdamW's.
   */
  readonly optimizer?: 'adamw' | 'sgd';
  /** Momentum of 'sgd', in [0, 1); default 0. Refused with 'adamw'. */
  readonly momentum?: number;
  /**
   * FedProx's μ ≥ 0: the local objective gains (μ/2)·‖w − w_start‖² over the
   * trainable variables, w_start being their values when this call starts
   * (the global adapter of the round); default 0, the same as absent.
   */
  readonly proximalMu?: number;
  /**
   * SCAFFOLD's control variates (Algorithm 1, option II), both in the delta
   * layout: `global` is the server's c, `local` this site's c_i. Each step's
   * gradient becomes g − c_i + c, and the result carries `controlDelta`.
   * Requires `optimizer: 'sgd'` without momentum.
   */
  readonly control?: ScaffoldControl;
  /**
   * DP-SGD for example-level privacy: each window's gradient is clipped to
   * L2 norm ≤ `clip` (over all adapter tensors jointly), the clipped gradients
   * are summed, N(0, (noiseMultiplier·clip)²) is added to each coordinate and
   * the sum is divided by the batch size. The result carries `dpEvent`.
   */
  readonly dpSgd?: DpSgdOptions;
  /** Randomness of the DP-SGD noise; default the system CSPRNG (`systemRng`). Unused without `dpSgd`. */
  readonly rng?: Rng;
}

/** SCAFFOLD's control variates c (`global`) and c_i (`local`), each of the delta's length and layout. */
export interface ScaffoldControl {
  readonly global: Float32Array;
  readonly local: Float32Array;
}

/** DP-SGD's per-example clip C > 0 and noise multiplier z ≥ 0 (noise std z·C on the sum). */
export interface DpSgdOptions {
  readonly clip: number;
  readonly noiseMultiplier: number;
}

/** One tensor's place in the flat delta. */
export interface DeltaEntry {
  readonly name: string;
  readonly shape: readonly number[];
  readonly offset: number;
}

export interface LocalResult {
  /** adapter_after − adapter_before of every trainable tensor, concatenated in `layout` order. */
  readonly delta: Float32Array;
  readonly layout: readonly DeltaEntry[];
  /** Windows this site trained on (its example count, for weighting). */
  readonly examples: number;
  readonly steps: number;
  /**
   * Training loss of each step (nats per token, on its batch; with DP-SGD the
   * mean of the windows' own losses). Not covered by DP: keep it on the site.
   */
  readonly losses: readonly number[];
  /** With `control`: c_i⁺ − c_i, in the delta layout, for the site to add to its c_i and send with the delta. */
  readonly controlDelta?: Float32Array;
  /** With `dpSgd`: the DP event of this run, `steps` compositions of the Poisson-sampled Gaussian (see docs/training.md on the sampling). */
  readonly dpEvent?: DpEvent;
  /** With `dpSgd`: how many per-example gradients, over all steps, had norm above the clip. */
  readonly clippedExamples?: number;
}

function bad(message: string): never {
  throw new ValidationError('TRAIN_ERR_BAD_PARAM', message);
}

/** Learning rate of step `s` (0-based) of `total`. */
export function learningRate(s: number, total: number, o: Pick<TrainOptions, 'lr' | 'warmupSteps' | 'schedule'>): number {
  const warm = o.warmupSteps ?? 0;
  if (s < warm) return (o.lr * (s + 1)) / warm;
  const schedule = o.schedule ?? 'cosine';
  if (schedule === 'constant' || total <= warm) return o.lr;
  const p = (s - warm) / (total - warm);
  return schedule === 'linear' ? o.lr * (1 - p) : o.lr * 0.5 * (1 + Math.cos(Math.PI * p));
}

/** Windows `[B, T]` as int32 ids padded with 0, with each window's length. */
function batchOf(windows: readonly Uint16Array[]): { ids: tf.Tensor2D; lengths: number[] } {
  const t = Math.max(...windows.map((w) => w.length));
  const data = new Int32Array(windows.length * t);
  windows.forEach((w, i) => data.set(w, i * t));
  return { ids: tf.tensor2d(data, [windows.length, t], 'int32'), lengths: windows.map((w) => w.length) };
}

function checkWindows(windows: readonly Uint16Array[], model: Gpt2Model): void {
  if (windows.length === 0) throw new ValidationError('TRAIN_ERR_BAD_DATA', 'no windows to train or evaluate on');
  for (const [i, w] of windows.entries()) {
    if (w.length < 2) throw new ValidationError('TRAIN_ERR_BAD_DATA', `window ${i} has ${w.length} token(s); at least 2 are needed to predict one`);
    if (w.length > model.shape.n_positions) throw new ValidationError('TRAIN_ERR_BAD_DATA', `window ${i} has ${w.length} tokens, more than n_positions ${model.shape.n_positions}`);
    for (const id of w) if (id >= model.shape.vocab_size) throw new ValidationError('TRAIN_ERR_BAD_DATA', `window ${i} holds token ${id}, outside the vocabulary of ${model.shape.vocab_size}`);
  }
}

/**
 * Every window's gradient of its own loss (mean cross-entropy over its
 * predicted tokens), as tensors `[B, ...shape]` in the order of
 * `model.trainable()`, from one backward pass: each adapter tensor is tiled
 * to a per-example copy (`[B, r, in]`, `[B, out, r]`), the forward pass runs
 * example b through copy b with batched products, and the gradient of the
 * summed losses with respect to the copies holds, in slice b, example b's
 * gradient (no other example touches copy b). Only the LoRA tensors are
 * trainable, so the copies are B times the adapter, not the model.
 * Call inside `tf.tidy`. `lossSum` is Σ_b loss_b.
 */
function perExampleGradTensors(model: Gpt2Model, vars: readonly tf.Variable[], ids: tf.Tensor2D, lengths: readonly number[], training: boolean): { lossSum: tf.Scalar; grads: tf.Tensor[] } {
  const bs = ids.shape[0];
  const tiles = vars.map((v) => tf.tile(tf.expandDims(v, 0), [bs, ...v.shape.map(() => 1)]));
  const f = (...perExample: tf.Tensor[]): tf.Scalar => tf.sum(model.perExampleLosses(ids, lengths, perExample, training));
  const { value, grads } = tf.valueAndGrads(f)(tiles);
  return { lossSum: value, grads };
}

/**
 * Every window's gradient of its own loss at the model's current adapter,
 * each a Float32Array in the delta layout (the order of
 * `model.trainableNames()`), computed as DP-SGD computes them (one vectorised
 * backward pass, no dropout).
 * @throws ValidationError TRAIN_ERR_BAD_PARAM (a model without adapter, or one that trains its base weights), TRAIN_ERR_BAD_DATA (bad windows)
 */
export function perExampleGradients(model: Gpt2Model, windows: readonly Uint16Array[]): Float32Array[] {
  const vars = model.trainable();
  if (vars.length === 0) bad('the model has no trainable adapter (give it LoRA options)');
  checkWindows(windows, model);
  const { ids, lengths } = batchOf(windows);
  try {
    const flat = tf.tidy(() => {
      const { grads } = perExampleGradTensors(model, vars, ids, lengths, false);
      return tf.concat(grads.map((g) => g.reshape([windows.length, -1])), 1);
    });
    const data = flat.dataSync() as Float32Array;
    flat.dispose();
    const d = data.length / windows.length;
    return windows.map((_, i) => data.slice(i * d, (i + 1) * d));
  } finally {
    ids.dispose();
  }
}

/** Splits a flat Float32Array in the delta layout into tensors shaped like `vars`. */
function splitLike(flat: Float32Array, vars: readonly tf.Variable[]): tf.Tensor[] {
  let offset = 0;
  return vars.map((v) => {
    const t = tf.tensor(flat.subarray(offset, offset + v.size), v.shape, 'float32');
    offset += v.size;
    return t;
  });
}

/**
 * Trains the model's adapter in place on `windows` and returns its delta.
 * @throws ValidationError TRAIN_ERR_BAD_PARAM (bad options, a model without adapter), TRAIN_ERR_BAD_DATA (bad windows)
 */
export function trainLocal(model: Gpt2Model, windows: readonly Uint16Array[], o: TrainOptions): LocalResult {
  const vars = model.trainable();
  if (vars.length === 0) bad('the model has no trainable adapter (give it LoRA options)');
  checkWindows(windows, model);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) bad(`batchSize must be a positive integer, got ${o.batchSize}`);
  const steps = o.steps ?? Math.ceil(((o.epochs ?? 1) * windows.length) / o.batchSize);
  if (!Number.isInteger(steps) || steps < 1) bad(`steps must be a positive integer, got ${steps}`);
  if (!(o.lr > 0 && Number.isFinite(o.lr))) bad(`lr must be positive, got ${o.lr}`);
  const wd = o.weightDecay ?? 0, b1 = o.beta1 ?? 0.9, b2 = o.beta2 ?? 0.999, eps = o.epsilon ?? 1e-8;
  if (!(wd >= 0)) bad(`weightDecay must be ≥ 0, got ${wd}`);
  if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) bad('beta1 and beta2 must be in [0, 1)');
  if (o.clipNorm !== undefined && !(o.clipNorm > 0)) bad(`clipNorm must be positive, got ${o.clipNorm}`);
  if ((o.warmupSteps ?? 0) < 0 || !Number.isInteger(o.warmupSteps ?? 0)) bad(`warmupSteps must be a non-negative integer, got ${o.warmupSteps}`);
  const optimizer = o.optimizer ?? 'adamw';
  if (optimizer !== 'adamw' && optimizer !== 'sgd') bad(`optimizer must be 'adamw' or 'sgd', got ${JSON.stringify(optimizer)}`);
  const momentum = o.momentum ?? 0;
  if (!(momentum >= 0 && momentum < 1)) bad(`momentum must be in [0, 1), got ${o.momentum}`);
  if (optimizer !== 'sgd' && momentum !== 0) bad("momentum is an option of optimizer 'sgd'; AdamW's first moment is beta1");
  const mu = o.proximalMu ?? 0;
  if (!(mu >= 0 && Number.isFinite(mu))) bad(`proximalMu must be a finite number ≥ 0, got ${o.proximalMu}`);
  const total = vars.reduce((n, v) => n + v.size, 0);
  if (o.control !== undefined) {
    // SCAFFOLD's option II reads the corrected mean gradient off the displacement
    // (w_start − w_end)/(K·η); that holds for SGD steps w ← w − η·(g − c_i + c), not
    // for Adam's normalised steps nor momentum's accumulated ones.
    if (optimizer !== 'sgd' || momentum !== 0) bad("control (SCAFFOLD) needs optimizer 'sgd' without momentum: its control update (option II) assumes plain SGD steps w ← w − η·(g − c_i + c)");
    for (const k of ['global', 'local'] as const) {
      const c: unknown = o.control[k];
      if (!(c instanceof Float32Array)) bad(`control.${k} must be a Float32Array`);
      if (c.length !== total) bad(`control.${k} has ${c.length} values; the delta of this model's adapter has ${total}`);
      const i = c.findIndex((x) => !Number.isFinite(x));
      if (i >= 0) bad(`control.${k}[${i}] is ${c[i]}, not a finite number`);
    }
  }
  const dp = o.dpSgd;
  if (dp !== undefined) {
    if (!(dp.clip > 0 && Number.isFinite(dp.clip))) bad(`dpSgd.clip must be a finite number > 0, got ${dp.clip}`);
    if (!(dp.noiseMultiplier >= 0 && Number.isFinite(dp.noiseMultiplier))) bad(`dpSgd.noiseMultiplier must be a finite number ≥ 0, got ${dp.noiseMultiplier}`);
    if (model.trainsBase) bad('dpSgd clips per-example gradients of the LoRA adapter only; this model trains its base weights');
  }

  const before = vars.map((v) => v.dataSync().slice() as Float32Array);
  const sgd = optimizer === 'sgd';
  // AdamW's two moments, or SGD's momentum buffer (none for plain SGD).
  const m: tf.Tensor[] = !sgd || momentum > 0 ? vars.map((v) => tf.zerosLike(v)) : [];
  const s2: tf.Tensor[] = sgd ? [] : vars.map((v) => tf.zerosLike(v));
  // w_start for FedProx: clones keep the starting values after the variables are assigned.
  const start: tf.Tensor[] = mu > 0 ? vars.map((v) => tf.clone(v)) : [];
  // SCAFFOLD's correction c − c_i, added to every step's gradient.
  const correction: tf.Tensor[] = o.control === undefined ? [] : splitLike(o.control.global.map((c, j) => c - o.control!.local[j]!), vars);
  const noise = dp === undefined ? undefined : toSource(o.rng ?? systemRng);
  const rng = new DeterministicRng(o.seed);
  const losses: number[] = [];
  let lrSum = 0, clippedExamples = 0;
  // Batches walk a seeded permutation of the windows, reshuffled at each pass.
  let order: number[] = [];
  const batch = Math.min(o.batchSize, windows.length);
  const draw = (): Uint16Array[] => {
    const out: Uint16Array[] = [];
    while (out.length < batch) {
      if (order.length === 0) order = shuffle(windows.length, rng);
      out.push(windows[order.pop()!]!);
    }
    return out;
  };
  try {
    for (let step = 0; step < steps; step++) {
      const lr = learningRate(step, steps, o);
      lrSum += lr;
      const { ids, lengths } = batchOf(draw());
      const loss = tf.tidy(() => {
        let g: tf.Tensor[];
        let lossValue: number;
        if (dp === undefined) {
          const { value, grads } = tf.variableGrads(() => model.loss(ids, lengths, true), vars);
          g = vars.map((v) => grads[v.name]!);
          lossValue = value.dataSync()[0]!;
        } else {
          // DP-SGD (Abadi et al. 2016, Algorithm 1): clip each example's gradient over
          // all adapter tensors jointly to L2 ≤ C, sum, add N(0, (zC)²) per coordinate
          // (src/dp's Gaussian mechanism on the sum, from the injected rng), divide by B.
          const { lossSum, grads } = perExampleGradTensors(model, vars, ids, lengths, true);
          const bs = ids.shape[0];
          const norms = tf.sqrt(tf.addN(grads.map((x) => tf.sum(tf.square(x.reshape([bs, -1])), 1))));
          const scale = tf.minimum(1, tf.div(dp.clip, tf.maximum(norms, 1e-30)));
          const clippedSum = tf.concat(grads.map((x) => tf.sum(tf.mul(x.reshape([bs, -1]), scale.reshape([bs, 1])), 0)));
          for (const n of norms.dataSync()) if (n > dp.clip) clippedExamples++;
          const noisy = addCentralGaussianNoise(clippedSum.dataSync() as Float32Array, dp.clip, dp.noiseMultiplier, noise!);
          g = splitLike(Float32Array.from(noisy, (x) => x / bs), vars);
          lossValue = lossSum.dataSync()[0]! / bs;
        }
        if (mu > 0) {
          // FedProx: ∇[(μ/2)‖w − w_start‖²] = μ(w − w_start), added to the data gradient
          // before clipping, so that clipNorm bounds the step of the objective FedProx
          // minimises (the local loss plus the proximal term), not of the loss alone.
          // Under DP-SGD it joins after the noise: the term does not depend on the
          // data, so it is post-processing and is neither clipped per example nor charged.
          g = g.map((x, i) => tf.add(x, tf.mul(tf.sub(vars[i]!, start[i]!), mu)));
        }
        if (o.clipNorm !== undefined) {
          const norm = tf.sqrt(tf.addN(g.map((x) => tf.sum(tf.square(x)))));
          const scale = tf.minimum(1, tf.div(o.clipNorm, tf.maximum(norm, 1e-12)));
          g = g.map((x) => tf.mul(x, scale));
        }
        // SCAFFOLD: g − c_i + c, after clipping, so the drift correction is applied in
        // full (clipping it would break the identity controlDelta rests on).
        if (correction.length > 0) g = g.map((x, i) => tf.add(x, correction[i]!));
        if (sgd) {
          vars.forEach((v, i) => {
            let u = g[i]!;
            if (momentum > 0) {
              u = tf.add(tf.mul(m[i]!, momentum), u);
              m[i]!.dispose();
              m[i] = tf.keep(u);
            }
            v.assign(tf.sub(tf.mul(v, 1 - lr * wd), tf.mul(u, lr)));
          });
          return lossValue;
        }
        const c1 = 1 - b1 ** (step + 1), c2 = 1 - b2 ** (step + 1);
        vars.forEach((v, i) => {
          const mi = tf.add(tf.mul(m[i]!, b1), tf.mul(g[i]!, 1 - b1));
          const vi = tf.add(tf.mul(s2[i]!, b2), tf.mul(tf.square(g[i]!), 1 - b2));
          m[i]!.dispose(); s2[i]!.dispose();
          m[i] = tf.keep(mi); s2[i] = tf.keep(vi);
          const update = tf.div(tf.div(mi, c1), tf.add(tf.sqrt(tf.div(vi, c2)), eps));
          // AdamW: the decay acts on the weights directly, not through the gradient.
          v.assign(tf.sub(tf.mul(v, 1 - lr * wd), tf.mul(update, lr)));
        });
        return lossValue;
      });
      ids.dispose();
      losses.push(loss);
      o.onStep?.({ step: step + 1, loss, lr });
    }
  } finally {
    tf.dispose([...m, ...s2, ...start, ...correction]);
  }
  const names = model.trainableNames();
  const delta = new Float32Array(total);
  const layout: DeltaEntry[] = [];
  let offset = 0;
  vars.forEach((v, i) => {
    const after = v.dataSync();
    const b = before[i]!;
    for (let j = 0; j < after.length; j++) delta[offset + j] = after[j]! - b[j]!;
    layout.push({ name: names[i]!, shape: v.shape, offset });
    offset += v.size;
  });
  const result: { -readonly [K in keyof LocalResult]: LocalResult[K] } = { delta, layout, examples: windows.length, steps, losses };
  if (o.control !== undefined) {
    // SCAFFOLD option II: c_i⁺ = c_i − c + (w_start − w_end)/(K·η), so
    // c_i⁺ − c_i = −c − Δ/(K·η). Option II assumes a constant η; under a schedule
    // we use the mean η̄ over the K steps, which makes c_i⁺ the η-weighted mean of
    // the steps' (clipped, proximal) gradients, as it is the plain mean for a constant η.
    const c = o.control.global, k = lrSum; // K·η̄ = Σ_s η_s
    result.controlDelta = Float32Array.from(delta, (d, j) => -c[j]! - d / k);
  }
  if (dp !== undefined) {
    result.dpEvent = sampledGaussian(dp.noiseMultiplier, batch / windows.length, steps);
    result.clippedExamples = clippedExamples;
  }
  return result;
}

/** A seeded permutation of 0..n−1 (Fisher–Yates with rejection-free 32-bit draws reduced by multiplication). */
function shuffle(n: number, rng: DeterministicRng): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  const bytes = rng.bytes(4 * n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor((dv.getUint32(4 * i) / 2 ** 32) * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export interface Evaluation {
  /** Mean next-token cross-entropy, nats per predicted token. */
  readonly loss: number;
  readonly perplexity: number;
  /** Predicted tokens counted. */
  readonly tokens: number;
}

/** Mean next-token cross-entropy and perplexity of the model over `windows`, in batches. */
export function evaluate(model: Gpt2Model, windows: readonly Uint16Array[], batchSize = 16): Evaluation {
  checkWindows(windows, model);
  let sum = 0, tokens = 0;
  for (let i = 0; i < windows.length; i += batchSize) {
    const part = windows.slice(i, i + batchSize);
    const { ids, lengths } = batchOf(part);
    const n = lengths.reduce((x, l) => x + l - 1, 0);
    const mean = tf.tidy(() => model.loss(ids, lengths).dataSync()[0]!);
    ids.dispose();
    sum += mean * n;
    tokens += n;
  }
  const loss = sum / tokens;
  return { loss, perplexity: Math.exp(loss), tokens };
}
