/**
 * A GPT-2 language model with LoRA adapters, in TensorFlow.js.
 *
 * The architecture is exactly GPT-2's (Radford et al. 2019; Hugging Face
 * `GPT2LMHeadModel`): token and learned position embeddings, pre-LayerNorm
 * blocks of causal self-attention (one fused `c_attn` projection to q, k, v)
 * and a GELU ("gelu_new", the tanh approximation) MLP, a final LayerNorm, and
 * an unembedding tied to the token embedding. Weights keep Hugging Face's
 * names and its Conv1D layout `[in, out]` (y = x·W + b), so a checkpoint
 * loads without any renaming or transposition.
 *
 * LoRA (Hu et al. 2021) as Hugging Face PEFT applies it to a Conv1D with
 * `fan_in_fan_out`: y = x·W + b + (α/r)·dropout(x)·Aᵀ·Bᵀ, with A `[r, in]`
 * initialised Kaiming-uniform (a = √5, i.e. U(−1/√in, 1/√in)) and B
 * `[out, r]` zero, so a fresh adapter changes nothing. The base weights are
 * constants; only the adapter's A and B are variables (with FFA-LoRA, only B).
 *
 * Tokens are bytes (ids 0..255; 256 is EOS/BOS when the vocabulary has 257
 * entries).
 */
import { DeterministicRng } from '../crypto/rng.js';
import { ValidationError } from '../errors.js';
import { adaptedModules, loraTensorName, moduleDims, type Gpt2Module, type LoraTargetModule } from './adapter-format.js';
import { gpt2TensorShapes } from './checkpoint.js';
import { tf } from './backend.js';

/** The shape parameters of a GPT-2 model (the fields of its config.json that the forward pass reads). */
export interface Gpt2Shape {
  readonly vocab_size: number;
  readonly n_positions: number;
  readonly n_embd: number;
  readonly n_layer: number;
  readonly n_head: number;
  readonly layer_norm_epsilon: number;
}


export interface LoraOptions {
  readonly r: number;
  readonly alpha: number;
  /** Dropout on the adapter's input while training (0 to 1, exclusive of 1). */
  readonly dropout?: number;
  /**
   * PEFT `target_modules` (default ['c_attn']), matched as PEFT matches them:
   * "c_proj" adapts both the attention's and the MLP's output projections,
   * "attn.c_proj" or "mlp.c_proj" one of them.
   */
  readonly targets?: readonly LoraTargetModule[];
  /** Seed of A's initialisation (B starts at zero). */
  readonly seed?: string | Uint8Array;
  /** FFA-LoRA (Sun et al. 2024): A stays at its initial value, only B is trained. */
  readonly freezeA?: boolean;
  /** Start from these A and B values (PEFT names) instead of a fresh initialisation. */
  readonly weights?: ReadonlyMap<string, Float32Array>;
}

/** Hugging Face's name of a block's module, with the `transformer.` prefix GPT2LMHeadModel uses. */
function moduleName(layer: number, m: Gpt2Module): string {
  return `transformer.h.${layer}.${m}`;
}

/** PEFT's names of the A and B tensors of one adapted module. */
export function loraNames(layer: number, m: Gpt2Module): { a: string; b: string } {
  return { a: loraTensorName(layer, m, 'A'), b: loraTensorName(layer, m, 'B') };
}

/** Per-example stand-ins for adapter variables (a leading batch axis), for one forward pass. */
type PerExampleAdapter = ReadonlyMap<tf.Variable, tf.Tensor>;

interface Lora {
  readonly a: tf.Variable;
  readonly b: tf.Variable;
  /** PEFT's names of A and B (tfjs variable names are global, so the variables get generated ones). */
  readonly names: { readonly a: string; readonly b: string };
}

/** A GPT-2 model with its (optional) LoRA adapter. Call {@link dispose} when done. */
export class Gpt2Model {
  readonly shape: Gpt2Shape;
  readonly lora: Readonly<Required<Omit<LoraOptions, 'weights' | 'seed'>> & { readonly modules: readonly Gpt2Module[] }> | undefined;
  private readonly w = new Map<string, tf.Tensor>();
  private readonly adapters = new Map<string, Lora>();
  private readonly causal: tf.Tensor2D;

  /**
   * @param weights every tensor of the checkpoint, Hugging Face names with the
   *   `transformer.` prefix, Conv1D weights `[in, out]`
   * @throws ValidationError TRAIN_ERR_BAD_CHECKPOINT on a missing or mis-shaped tensor,
   *   TRAIN_ERR_BAD_PARAM on bad LoRA options
   */
  constructor(shape: Gpt2Shape, weights: ReadonlyMap<string, Float32Array>, lora?: LoraOptions, o: { readonly trainBase?: boolean } = {}) {
    this.shape = shape;
    const { n_embd: e, n_positions: p } = shape;
    if (e % shape.n_head !== 0) throw new ValidationError('TRAIN_ERR_BAD_CHECKPOINT', `n_embd ${e} is not a multiple of n_head ${shape.n_head}`);
    try {
      for (const [name, dims] of gpt2TensorShapes(shape)) {
        const data = weights.get(name);
        const size = dims.reduce((x, y) => x * y, 1);
        if (data === undefined) throw new ValidationError('TRAIN_ERR_BAD_CHECKPOINT', `missing tensor ${name}`);
        if (data.length !== size) throw new ValidationError('TRAIN_ERR_BAD_CHECKPOINT', `${name} has ${data.length} values, expected [${dims.join(', ')}]`);
        // Pre-training trains the base weights themselves; otherwise they are constants.
        this.w.set(name, o.trainBase === true ? variable(data, dims, true) : tf.tensor(data, dims, 'float32'));
      }
      if (lora !== undefined) this.lora = this.initLora(lora);
      // 0 where a position may attend (itself and earlier), a large negative elsewhere.
      this.causal = tf.tidy(() => tf.sub(tf.linalg.bandPart(tf.ones([p, p]), -1, 0), 1).mul(1e9) as tf.Tensor2D);
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  private initLora(o: LoraOptions): NonNullable<Gpt2Model['lora']> {
    const targets: LoraTargetModule[] = [...new Set<LoraTargetModule>(o.targets ?? ['c_attn'])];
    const dropout = o.dropout ?? 0;
    if (!Number.isInteger(o.r) || o.r < 1) throw new ValidationError('TRAIN_ERR_BAD_PARAM', `LoRA rank r must be a positive integer, got ${o.r}`);
    if (!(o.alpha > 0)) throw new ValidationError('TRAIN_ERR_BAD_PARAM', `LoRA alpha must be positive, got ${o.alpha}`);
    if (!(dropout >= 0 && dropout < 1)) throw new ValidationError('TRAIN_ERR_BAD_PARAM', `LoRA dropout must be in [0, 1), got ${dropout}`);
    const known: readonly string[] = ['c_attn', 'c_proj', 'c_fc', 'attn.c_proj', 'mlp.c_proj'];
    for (const t of targets) if (!known.includes(t)) throw new ValidationError('TRAIN_ERR_BAD_PARAM', `unknown LoRA target module ${String(t)}; GPT-2's are ${known.join(', ')}`);
    const modules = adaptedModules(targets);
    const rng = new DeterministicRng(o.seed ?? 'tally/lora-init');
    const freezeA = o.freezeA === true;
    for (let i = 0; i < this.shape.n_layer; i++) {
      for (const t of modules) {
        const [inDim, outDim] = moduleDims(this.shape.n_embd, t);
        const names = loraNames(i, t);
        let a: Float32Array, b: Float32Array;
        if (o.weights !== undefined) {
          a = o.weights.get(names.a) ?? missing(names.a);
          b = o.weights.get(names.b) ?? missing(names.b);
          if (a.length !== o.r * inDim) throw new ValidationError('TRAIN_ERR_BAD_ADAPTER', `${names.a} has ${a.length} values, expected [${o.r}, ${inDim}]`);
          if (b.length !== outDim * o.r) throw new ValidationError('TRAIN_ERR_BAD_ADAPTER', `${names.b} has ${b.length} values, expected [${outDim}, ${o.r}]`);
        } else {
          // PEFT: nn.init.kaiming_uniform_(A, a=√5) → U(−1/√in, 1/√in); B zero.
          const bound = 1 / Math.sqrt(inDim);
          a = uniform(rng, o.r * inDim, bound);
          b = new Float32Array(outDim * o.r);
        }
        this.adapters.set(moduleName(i, t), { a: variable(a, [o.r, inDim], !freezeA), b: variable(b, [outDim, o.r], true), names });
      }
    }
    return { r: o.r, alpha: o.alpha, dropout, targets, freezeA, modules };
  }

  /**
   * The trainable variables in a fixed order: the base weights when the model
   * was built with `trainBase` (pre-training), then the adapter's (B, and A
   * unless frozen).
   */
  trainable(): tf.Variable[] {
    const out: tf.Variable[] = [];
    for (const x of this.w.values()) if (x instanceof tf.Variable) out.push(x);
    for (const { a, b } of this.adapters.values()) {
      if (a.trainable) out.push(a);
      out.push(b);
    }
    return out;
  }

  /** The name of each trainable variable (Hugging Face's for base weights, PEFT's for the adapter), in the order of {@link trainable}. */
  trainableNames(): string[] {
    const out: string[] = [];
    for (const [name, x] of this.w) if (x instanceof tf.Variable) out.push(name);
    for (const { a, names } of this.adapters.values()) {
      if (a.trainable) out.push(names.a);
      out.push(names.b);
    }
    return out;
  }

  /** The base weights' current values under Hugging Face's names (copies). */
  baseWeights(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const [name, x] of this.w) out.set(name, x.dataSync() as Float32Array);
    return out;
  }

  /** The adapter's current values under PEFT's names (copies). */
  adapterWeights(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const { a, b, names } of this.adapters.values()) {
      out.set(names.a, a.dataSync() as Float32Array);
      out.set(names.b, b.dataSync() as Float32Array);
    }
    return out;
  }

  /** Sets the adapter's values (PEFT names; every A and B of the model). */
  setAdapterWeights(values: ReadonlyMap<string, Float32Array>): void {
    for (const { a, b, names } of this.adapters.values()) {
      for (const [v, name] of [[a, names.a], [b, names.b]] as const) {
        const x = values.get(name) ?? missing(name);
        if (x.length !== v.size) throw new ValidationError('TRAIN_ERR_BAD_ADAPTER', `${name} has ${x.length} values, expected [${v.shape.join(', ')}]`);
        tf.tidy(() => v.assign(tf.tensor(x, v.shape)));
      }
    }
  }

  /** Whether the base weights are trainable (a model built with `trainBase`, for pre-training). */
  get trainsBase(): boolean {
    for (const x of this.w.values()) if (x instanceof tf.Variable) return true;
    return false;
  }

  private conv1d(x: tf.Tensor3D, module: string, training: boolean, perExample?: PerExampleAdapter): tf.Tensor3D {
    const w = this.w.get(`${module}.weight`) as tf.Tensor2D;
    const b = this.w.get(`${module}.bias`)!;
    const [bs, t, inDim] = x.shape;
    const x2 = x.reshape([bs * t, inDim]) as tf.Tensor2D;
    let y = tf.add(tf.matMul(x2, w), b) as tf.Tensor2D;
    const ad = this.adapters.get(module);
    if (ad !== undefined) {
      const lo = this.lora!;
      const xin = training && lo.dropout > 0 ? tf.dropout(x2, lo.dropout) as tf.Tensor2D : x2;
      const pa = perExample?.get(ad.a), pb = perExample?.get(ad.b);
      let delta: tf.Tensor2D;
      if (pa === undefined && pb === undefined) {
        // (α/r)·x·Aᵀ·Bᵀ: two thin matmuls, never the [in, out] product. The small
        // transposes are explicit: wasm runs products with transpose flags ~10× slower.
        delta = tf.matMul(tf.matMul(xin, tf.transpose(ad.a)), tf.transpose(ad.b)).mul(lo.alpha / lo.r);
      } else {
        // Per-example adapter: example i's rows [T, in] meet its own A_i [r, in] and
        // B_i [out, r] in batched products over the B examples; a tensor without a
        // per-example copy (A under FFA-LoRA) is shared through a 2-D product.
        const r = lo.r, outDim = ad.b.shape[0];
        const h = pa !== undefined
          ? tf.matMul(xin.reshape([bs, t, inDim]), tf.transpose(pa, [0, 2, 1])) // [B, T, in]·[B, in, r]
          : tf.matMul(xin, tf.transpose(ad.a)).reshape([bs, t, r]);
        const d = pb !== undefined
          ? tf.matMul(h, tf.transpose(pb, [0, 2, 1])) // [B, T, r]·[B, r, out]
          : tf.matMul(h.reshape([bs * t, r]), tf.transpose(ad.b));
        delta = d.reshape([bs * t, outDim]).mul(lo.alpha / lo.r) as tf.Tensor2D;
      }
      y = tf.add(y, delta) as tf.Tensor2D;
    }
    return y.reshape([bs, t, y.shape[1]]) as tf.Tensor3D;
  }

  private layerNorm(x: tf.Tensor3D, name: string): tf.Tensor3D {
    const { mean, variance } = tf.moments(x, -1, true);
    const n = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, this.shape.layer_norm_epsilon)));
    return tf.add(tf.mul(n, this.w.get(`${name}.weight`)!), this.w.get(`${name}.bias`)!) as tf.Tensor3D;
  }

  /**
   * Next-token logits `[B, T, vocab]` for token ids `[B, T]` (int32, T ≤ n_positions).
   * `training` turns the adapter's dropout on.
   */
  logits(ids: tf.Tensor2D, training = false): tf.Tensor3D {
    return this.forward(ids, training);
  }

  /** {@link logits}, with the adapter tensors in `perExample` replaced by their per-example copies. */
  private forward(ids: tf.Tensor2D, training: boolean, perExample?: PerExampleAdapter): tf.Tensor3D {
    return tf.tidy(() => {
      const [bs, t] = ids.shape;
      const { n_embd: e, n_head: nh, n_positions: p } = this.shape;
      if (t > p) throw new ValidationError('TRAIN_ERR_BAD_PARAM', `a window of ${t} tokens is longer than n_positions ${p}`);
      const d = e / nh;
      const wte = this.w.get('transformer.wte.weight') as tf.Tensor2D;
      const pos = this.w.get('transformer.wpe.weight')!.slice([0, 0], [t, e]);
      // The embedding as a one-hot product rather than a gather: its gradient is then a
      // matmul too (the wasm backend has no kernel for a gather's gradient), and with a
      // byte vocabulary the one-hot matrix is small.
      const onehot = tf.oneHot(ids.reshape([bs * t]), this.shape.vocab_size).toFloat() as tf.Tensor2D;
      let x = tf.add(tf.matMul(onehot, wte).reshape([bs, t, e]), pos) as tf.Tensor3D;
      const mask = this.causal.slice([0, 0], [t, t]);
      for (let i = 0; i < this.shape.n_layer; i++) {
        const h = `transformer.h.${i}`;
        const qkv = this.conv1d(this.layerNorm(x, `${h}.ln_1`), `${h}.attn.c_attn`, training, perExample);
        // [B, T, 3E] → q, k, v as [B, heads, T, d].
        const heads = (z: tf.Tensor3D) => z.reshape([bs, t, nh, d]).transpose([0, 2, 1, 3]) as tf.Tensor4D;
        const [q, k, v] = tf.split(qkv, 3, 2) as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];
        const kT = k.reshape([bs, t, nh, d]).transpose([0, 2, 3, 1]) as tf.Tensor4D; // [B, heads, d, T]
        const scores = tf.add(tf.matMul(heads(q), kT).div(Math.sqrt(d)), mask);
        const att = tf.matMul(tf.softmax(scores, -1), heads(v)).transpose([0, 2, 1, 3]).reshape([bs, t, e]) as tf.Tensor3D;
        x = tf.add(x, this.conv1d(att, `${h}.attn.c_proj`, training, perExample)) as tf.Tensor3D;
        const m = gelu(this.conv1d(this.layerNorm(x, `${h}.ln_2`), `${h}.mlp.c_fc`, training, perExample));
        x = tf.add(x, this.conv1d(m, `${h}.mlp.c_proj`, training, perExample)) as tf.Tensor3D;
      }
      const out = this.layerNorm(x, 'transformer.ln_f');
      // Tied unembedding: logits = x·wteᵀ.
      return tf.matMul(out.reshape([bs * t, e]), tf.transpose(wte)).reshape([bs, t, this.shape.vocab_size]) as tf.Tensor3D;
    });
  }

  /**
   * Mean next-token cross-entropy (nats per token) of windows `[B, T]`: every
   * position but the last predicts the next token of its window; `lengths`
   * gives each window's real length (the rest is padding and not counted).
   */
  loss(ids: tf.Tensor2D, lengths?: readonly number[], training = false): tf.Scalar {
    return tf.tidy(() => {
      const { ll, valid } = this.tokenLogLikelihoods(this.logits(ids, training), ids, lengths);
      return tf.div(tf.neg(tf.sum(ll)), tf.maximum(tf.sum(valid), 1)) as tf.Scalar;
    });
  }

  /**
   * Each window's own mean next-token cross-entropy `[B]`, computed with a
   * per-example copy of the adapter: `perExample[i]` stands for
   * `trainable()[i]` and has its shape with a leading batch axis (`[B, r, in]`
   * for an A, `[B, out, r]` for a B), and example b's forward pass uses slice
   * b of each. The gradient of the sum of the result with respect to
   * `perExample` is then every example's own gradient, from one backward
   * pass (the per-example gradients of DP-SGD).
   * @throws ValidationError TRAIN_ERR_BAD_PARAM when the model trains its base weights, or a tensor's shape is not its variable's with the batch axis
   */
  perExampleLosses(ids: tf.Tensor2D, lengths: readonly number[] | undefined, perExample: readonly tf.Tensor[], training = false): tf.Tensor1D {
    if (this.trainsBase) throw new ValidationError('TRAIN_ERR_BAD_PARAM', 'per-example gradients cover the LoRA adapter only, and this model trains its base weights');
    const vars = this.trainable();
    const bs = ids.shape[0];
    if (perExample.length !== vars.length) throw new ValidationError('TRAIN_ERR_BAD_PARAM', `expected ${vars.length} per-example adapter tensors (one per trainable variable), got ${perExample.length}`);
    const map: PerExampleAdapter = new Map(vars.map((v, i) => {
      const x = perExample[i]!;
      const want = [bs, ...v.shape];
      if (!tf.util.arraysEqual(x.shape, want)) throw new ValidationError('TRAIN_ERR_BAD_PARAM', `per-example tensor ${i} has shape [${x.shape.join(', ')}], expected [${want.join(', ')}]`);
      return [v, x];
    }));
    return tf.tidy(() => {
      const { ll, valid } = this.tokenLogLikelihoods(this.forward(ids, training, map), ids, lengths);
      return tf.div(tf.neg(tf.sum(ll, 1)), tf.maximum(tf.sum(valid, 1), 1)) as tf.Tensor1D;
    });
  }

  /** The log-likelihood of every predicted token `[B, T−1]` (0 on padding) and the mask of predicted tokens. */
  private tokenLogLikelihoods(logits3: tf.Tensor3D, ids: tf.Tensor2D, lengths?: readonly number[]): { ll: tf.Tensor2D; valid: tf.Tensor2D } {
    const [bs, t] = ids.shape;
    const logits = logits3.slice([0, 0, 0], [bs, t - 1, this.shape.vocab_size]);
    const targets = ids.slice([0, 1], [bs, t - 1]);
    const logp = tf.logSoftmax(logits, -1);
    const picked = tf.sum(tf.mul(logp, tf.oneHot(targets, this.shape.vocab_size)), -1); // [B, T−1]
    const valid = lengths === undefined
      ? tf.ones([bs, t - 1]) as tf.Tensor2D
      : tf.tensor2d(lengths.flatMap((n) => Array.from({ length: t - 1 }, (_, j) => (j + 1 < n ? 1 : 0))), [bs, t - 1]);
    return { ll: tf.mul(picked, valid) as tf.Tensor2D, valid };
  }

  /** Frees every tensor and variable of the model. */
  dispose(): void {
    for (const x of this.w.values()) x.dispose();
    this.w.clear();
    for (const { a, b } of this.adapters.values()) { a.dispose(); b.dispose(); }
    this.adapters.clear();
    (this as unknown as { causal?: tf.Tensor }).causal?.dispose();
  }
}

/**
 * Fresh GPT-2 weights, as Hugging Face initialises GPT2LMHeadModel: every
 * weight matrix and embedding N(0, 0.02²), the residual projections
 * (attn.c_proj, mlp.c_proj) N(0, (0.02/√(2·n_layer))²) (Radford et al. 2019,
 * §2.3), biases 0, LayerNorm gains 1. Seeded.
 */
export function initGpt2Weights(shape: Gpt2Shape, seed: string | Uint8Array): Map<string, Float32Array> {
  const rng = new DeterministicRng(seed);
  const resid = 0.02 / Math.sqrt(2 * shape.n_layer);
  const out = new Map<string, Float32Array>();
  for (const [name, dims] of gpt2TensorShapes(shape)) {
    const n = dims.reduce((x, y) => x * y, 1);
    if (dims.length === 1) out.set(name, new Float32Array(n).fill(/\.ln_\w+\.weight$/.test(name) ? 1 : 0)); // LayerNorm gains 1, biases 0
    else out.set(name, gaussian(rng, n, /\.c_proj\.weight$/.test(name) ? resid : 0.02));
  }
  return out;
}

/** `n` normal samples of standard deviation `std` (Box–Muller over 32-bit uniforms in (0, 1)). */
function gaussian(rng: DeterministicRng, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  const bytes = rng.bytes(8 * Math.ceil(n / 2));
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i += 2) {
    const u1 = (dv.getUint32(4 * i) + 0.5) / 2 ** 32, u2 = (dv.getUint32(4 * i + 4) + 0.5) / 2 ** 32;
    const r = Math.sqrt(-2 * Math.log(u1)) * std;
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** GELU, tanh approximation ("gelu_new"): ½x(1 + tanh(√(2/π)(x + 0.044715x³))). */
function gelu(x: tf.Tensor3D): tf.Tensor3D {
  const c = Math.sqrt(2 / Math.PI);
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(c, tf.add(x, tf.mul(0.044715, tf.pow(x, 3))))))) as tf.Tensor3D;
}

/** A variable holding `data` (the temporary tensor it is made from is freed). */
function variable(data: Float32Array, shape: number[], trainable: boolean): tf.Variable {
  const t = tf.tensor(data, shape, 'float32');
  try {
    return tf.variable(t, trainable);
  } finally {
    t.dispose();
  }
}

function missing(name: string): never {
  throw new ValidationError('TRAIN_ERR_BAD_ADAPTER', `missing adapter tensor ${name}`);
}

/** `n` floats uniform in (−bound, bound) from the seeded generator (24 random bits each). */
function uniform(rng: DeterministicRng, n: number, bound: number): Float32Array {
  const bytes = rng.bytes(3 * n);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = ((bytes[3 * i]! << 16) | (bytes[3 * i + 1]! << 8) | bytes[3 * i + 2]!) / 2 ** 24;
    out[i] = (2 * u - 1) * bound;
  }
  return out;
}
