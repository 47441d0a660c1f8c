/**
 * Local training and evaluation of a {@link Gpt2Model}'s LoRA adapter: what
 * one site does in one round, without anything of secure aggregation.
 *
 * Training: AdamW (Loshchilov & Hutter 2019: Adam with decoupled weight
 * decay) on the adapter's trainable variables, a learning rate with linear
 * warm-up then cosine or linear decay (or constant), clipping of the global
 * gradient norm, mini-batches of windows drawn from a seeded generator. The
 * result is the adapter delta Δ = adapter_after − adapter_before as one flat
 * Float32Array, in the layout {@link LocalResult.layout} describes (the
 * order of `Gpt2Model.trainableNames()`, each tensor row-major), which the DP
 * encoder and secure aggregation take as it is.
 *
 * Evaluation: mean next-token cross-entropy in nats per token over windows
 * (every position but the last of a window predicts the next token of that
 * window), and its perplexity.
 */
import { DeterministicRng } from '../crypto/rng.js';
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
  /** Training loss of each step (nats per token, on its batch). */
  readonly losses: readonly number[];
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

  const before = vars.map((v) => v.dataSync().slice() as Float32Array);
  const m: tf.Tensor[] = vars.map((v) => tf.zerosLike(v));
  const s2: tf.Tensor[] = vars.map((v) => tf.zerosLike(v));
  const rng = new DeterministicRng(o.seed);
  const losses: number[] = [];
  // Batches walk a seeded permutation of the windows, reshuffled at each pass.
  let order: number[] = [];
  const draw = (): Uint16Array[] => {
    const out: Uint16Array[] = [];
    while (out.length < Math.min(o.batchSize, windows.length)) {
      if (order.length === 0) order = shuffle(windows.length, rng);
      out.push(windows[order.pop()!]!);
    }
    return out;
  };
  try {
    for (let step = 0; step < steps; step++) {
      const lr = learningRate(step, steps, o);
      const { ids, lengths } = batchOf(draw());
      const loss = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => model.loss(ids, lengths, true), vars);
        let g = vars.map((v) => grads[v.name]!);
        if (o.clipNorm !== undefined) {
          const norm = tf.sqrt(tf.addN(g.map((x) => tf.sum(tf.square(x)))));
          const scale = tf.minimum(1, tf.div(o.clipNorm, tf.maximum(norm, 1e-12)));
          g = g.map((x) => tf.mul(x, scale));
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
        return value.dataSync()[0]!;
      });
      ids.dispose();
      losses.push(loss);
      o.onStep?.({ step: step + 1, loss, lr });
    }
  } finally {
    tf.dispose([...m, ...s2]);
  }
  const names = model.trainableNames();
  const total = vars.reduce((n, v) => n + v.size, 0);
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
  return { delta, layout, examples: windows.length, steps, losses };
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
