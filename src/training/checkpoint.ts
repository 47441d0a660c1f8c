/**
 * GPT-2 checkpoints as Hugging Face directories: `config.json` (a
 * `GPT2Config`) and `model.safetensors` (the weights under
 * `GPT2LMHeadModel`'s names), so a tally checkpoint loads with
 * `GPT2LMHeadModel.from_pretrained(dir)` and a Hugging Face GPT-2 checkpoint
 * with a byte-level vocabulary loads in tally.
 *
 * tally's tokenizer is byte-level: token id = byte value, with id 256 as
 * EOS/BOS when the vocabulary has 257 entries (256 without EOS). Any other
 * vocabulary (GPT-2's 50257-token BPE) is refused with
 * `TRAIN_ERR_UNSUPPORTED_MODEL`, as is any option that changes GPT-2's
 * computation (another activation, untied output embeddings, unscaled or
 * layer-scaled attention, cross-attention, an MLP width other than 4·n_embd).
 * A malformed file is `TRAIN_ERR_BAD_CHECKPOINT`, naming the field or tensor.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TallyError, ValidationError, type TrainCode } from '../errors.js';
import { isFloatDtype, readSafetensors, writeFileAtomic, writeSafetensors } from './safetensors.js';

/** A GPT-2 `config.json` as tally reads it. */
export interface Gpt2Config {
  readonly model_type: 'gpt2';
  /** 257: bytes and EOS/BOS (id 256); 256: bytes only. */
  readonly vocab_size: 256 | 257;
  readonly n_positions: number;
  readonly n_embd: number;
  readonly n_layer: number;
  readonly n_head: number;
  readonly layer_norm_epsilon: number;
  readonly activation_function: 'gelu_new';
  /** 256 when vocab_size is 257; absent when it is 256. */
  readonly bos_token_id?: number;
  /** 256 when vocab_size is 257; absent when it is 256. */
  readonly eos_token_id?: number;
  readonly tie_word_embeddings?: boolean;
  /** Every other key of the file (n_inner, architectures, the dropouts, scale_attn_weights, …), as given. */
  readonly extra: Readonly<Record<string, unknown>>;
}

/** The EOS/BOS token id of a 257-entry byte-level vocabulary. */
export const EOS_TOKEN_ID = 256;
/** The file names of a checkpoint directory. */
export const CONFIG_FILE = 'config.json';
export const MODEL_FILE = 'model.safetensors';
/** The prefix `GPT2LMHeadModel` gives its transformer's tensors. */
export const TRANSFORMER_PREFIX = 'transformer.';

const TYPED_KEYS = [
  'model_type', 'vocab_size', 'n_positions', 'n_embd', 'n_layer', 'n_head', 'layer_norm_epsilon', 'activation_function',
  'bos_token_id', 'eos_token_id', 'tie_word_embeddings',
];

/** The keys transformers' GPT2Config writes, with its defaults (those tally does not decide). */
const HF_DEFAULTS: Readonly<Record<string, unknown>> = {
  attn_pdrop: 0.1, embd_pdrop: 0.1, resid_pdrop: 0.1, initializer_range: 0.02,
  reorder_and_upcast_attn: false, scale_attn_by_inverse_layer_idx: false, scale_attn_weights: true,
  summary_activation: null, summary_first_dropout: 0.1, summary_proj_to_labels: true, summary_type: 'cls_index', summary_use_proj: true,
  use_cache: true,
};

const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
};
const badConfig = (what: string) => new ValidationError('TRAIN_ERR_BAD_CHECKPOINT', `config.json: ${what}`);
const unsupported = (what: string) => new ValidationError('TRAIN_ERR_UNSUPPORTED_MODEL', `config.json: ${what}`);

function positiveInt(d: Record<string, unknown>, key: string): number {
  const v = d[key];
  if (v === undefined) throw badConfig(`"${key}" is missing`);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw badConfig(`"${key}" must be a positive integer, got ${show(v)}`);
  return v;
}

/**
 * Reads a GPT-2 `config.json` object. `layer_norm_epsilon` and
 * `activation_function`, when absent, take transformers' defaults (1e-5,
 * gelu_new), so the file means the same to both.
 * @throws ValidationError `TRAIN_ERR_BAD_CHECKPOINT` naming a missing or ill-typed field (or n_embd not a
 *   multiple of n_head); `TRAIN_ERR_UNSUPPORTED_MODEL` for a vocabulary other than 256/257 bytes, or an option
 *   that changes GPT-2's computation
 */
export function parseGpt2Config(json: unknown): Gpt2Config {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw badConfig(`expected a JSON object, got ${show(json)}`);
  const d = json as Record<string, unknown>;
  if (d.model_type === undefined) throw badConfig('"model_type" is missing (expected "gpt2")');
  if (d.model_type !== 'gpt2') throw unsupported(`model_type ${show(d.model_type)}: tally reads GPT-2 checkpoints ("gpt2") only`);

  const vocab = positiveInt(d, 'vocab_size');
  if (vocab !== 256 && vocab !== 257) {
    throw unsupported(`vocab_size ${vocab}: tally's models are byte-level (257 tokens: the 256 bytes and EOS/BOS ${EOS_TOKEN_ID}, or 256 without EOS); BPE vocabularies such as GPT-2's 50257 tokens are not supported`);
  }
  for (const key of ['bos_token_id', 'eos_token_id']) {
    const v = d[key];
    if (vocab === 257 && v !== undefined && v !== EOS_TOKEN_ID) throw badConfig(`"${key}" must be ${EOS_TOKEN_ID} (the EOS/BOS byte-level token) when vocab_size is 257, got ${show(v)}`);
    if (vocab === 256 && v !== undefined && v !== null) throw badConfig(`"${key}" must be null or absent when vocab_size is 256 (no EOS token), got ${show(v)}`);
  }
  const n_positions = positiveInt(d, 'n_positions');
  const n_embd = positiveInt(d, 'n_embd');
  const n_layer = positiveInt(d, 'n_layer');
  const n_head = positiveInt(d, 'n_head');
  if (n_embd % n_head !== 0) throw badConfig(`"n_embd" (${n_embd}) must be a multiple of "n_head" (${n_head})`);

  const eps = d.layer_norm_epsilon ?? 1e-5;
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps <= 0) throw badConfig(`"layer_norm_epsilon" must be a positive number, got ${show(eps)}`);
  const act = d.activation_function ?? 'gelu_new';
  if (typeof act !== 'string') throw badConfig(`"activation_function" must be a string, got ${show(act)}`);
  if (act !== 'gelu_new') throw unsupported(`activation_function ${show(act)}: tally's GPT-2 uses "gelu_new" (the tanh approximation) only`);
  const tie = d.tie_word_embeddings;
  if (tie !== undefined && typeof tie !== 'boolean') throw badConfig(`"tie_word_embeddings" must be a boolean, got ${show(tie)}`);
  if (tie === false) throw unsupported('tie_word_embeddings false: tally ties the output embedding to wte (as GPT-2 does)');

  // Keys kept in `extra` that would change the computation.
  const inner = d.n_inner;
  if (inner !== undefined && inner !== null) {
    if (typeof inner !== 'number' || !Number.isSafeInteger(inner) || inner < 1) throw badConfig(`"n_inner" must be null or a positive integer, got ${show(inner)}`);
    if (inner !== 4 * n_embd) throw unsupported(`n_inner ${inner}: tally's MLP is 4·n_embd = ${4 * n_embd} wide`);
  }
  const flag = (key: string, want: boolean, why: string) => {
    const v = d[key];
    if (v === undefined || v === null) return;
    if (typeof v !== 'boolean') throw badConfig(`"${key}" must be a boolean, got ${show(v)}`);
    if (v !== want) throw unsupported(`${key} ${v}: ${why}`);
  };
  flag('scale_attn_weights', true, 'tally scales attention scores by 1/√head_dim, as GPT-2 does');
  flag('scale_attn_by_inverse_layer_idx', false, 'tally does not scale attention by the layer index');
  flag('add_cross_attention', false, 'tally\'s GPT-2 is a decoder without cross-attention');

  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d)) if (!TYPED_KEYS.includes(k)) extra[k] = v;
  return {
    model_type: 'gpt2', vocab_size: vocab, n_positions, n_embd, n_layer, n_head, layer_norm_epsilon: eps, activation_function: 'gelu_new',
    ...(vocab === 257 ? { bos_token_id: EOS_TOKEN_ID, eos_token_id: EOS_TOKEN_ID } : {}),
    ...(tie === undefined ? {} : { tie_word_embeddings: tie }),
    extra: Object.freeze(extra),
  };
}

/**
 * The `config.json` object to write: transformers' GPT2Config keys with its
 * defaults, then the config's `extra` keys, then the keys tally decides
 * (architectures ["GPT2LMHeadModel"], model_type, the sizes, n_ctx =
 * n_positions, n_inner null, the activation, tied embeddings and the
 * EOS/BOS ids, null without EOS, so transformers never falls back to GPT-2's
 * BPE id 50256).
 */
export function gpt2ConfigJson(c: Gpt2Config): Record<string, unknown> {
  const eos = c.vocab_size === 257 ? EOS_TOKEN_ID : null;
  return {
    ...HF_DEFAULTS,
    ...c.extra,
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: c.vocab_size,
    n_positions: c.n_positions,
    n_ctx: c.n_positions,
    n_embd: c.n_embd,
    n_layer: c.n_layer,
    n_head: c.n_head,
    n_inner: null,
    layer_norm_epsilon: c.layer_norm_epsilon,
    activation_function: 'gelu_new',
    bos_token_id: eos,
    eos_token_id: eos,
    tie_word_embeddings: true,
  };
}

/**
 * Every tensor of a GPT-2 checkpoint with Hugging Face's names (prefixed
 * `transformer.` as GPT2LMHeadModel saves them) and shapes, Conv1D weights
 * `[in, out]`: wte `[V, E]`, wpe `[P, E]`, per layer ln_1, attn.c_attn
 * `[E, 3E]`/`[3E]`, attn.c_proj `[E, E]`/`[E]`, ln_2, mlp.c_fc `[E, 4E]`/`[4E]`,
 * mlp.c_proj `[4E, E]`/`[E]`, then ln_f; in that order. lm_head.weight is tied
 * to wte and not stored.
 */
export function gpt2TensorShapes(c: { readonly vocab_size: number; readonly n_positions: number; readonly n_embd: number; readonly n_layer: number }): Map<string, number[]> {
  const { vocab_size: v, n_positions: p, n_embd: e, n_layer: layers } = c;
  const m = new Map<string, number[]>();
  const add = (name: string, shape: number[]) => m.set(TRANSFORMER_PREFIX + name, shape);
  add('wte.weight', [v, e]);
  add('wpe.weight', [p, e]);
  for (let i = 0; i < layers; i++) {
    const h = `h.${i}.`;
    add(`${h}ln_1.weight`, [e]);
    add(`${h}ln_1.bias`, [e]);
    add(`${h}attn.c_attn.weight`, [e, 3 * e]);
    add(`${h}attn.c_attn.bias`, [3 * e]);
    add(`${h}attn.c_proj.weight`, [e, e]);
    add(`${h}attn.c_proj.bias`, [e]);
    add(`${h}ln_2.weight`, [e]);
    add(`${h}ln_2.bias`, [e]);
    add(`${h}mlp.c_fc.weight`, [e, 4 * e]);
    add(`${h}mlp.c_fc.bias`, [4 * e]);
    add(`${h}mlp.c_proj.weight`, [4 * e, e]);
    add(`${h}mlp.c_proj.bias`, [e]);
  }
  add('ln_f.weight', [e]);
  add('ln_f.bias', [e]);
  return m;
}

/** A loaded checkpoint; tensors under {@link gpt2TensorShapes}' names, in its order. */
export interface Checkpoint {
  readonly dir: string;
  readonly config: Gpt2Config;
  readonly tensors: ReadonlyMap<string, Float32Array>;
  /** The `__metadata__` of model.safetensors. */
  readonly metadata: Readonly<Record<string, string>>;
}

/** transformers' attention buffers (the causal mask and its fill value), which are not parameters. */
const BUFFER = /^h\.(0|[1-9][0-9]*)\.attn\.(bias|masked_bias)$/;

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);
const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * Reads a JSON file of a checkpoint or adapter directory.
 * @throws ValidationError with `code` when the file is missing, unreadable or not JSON
 */
export function readJsonFile(path: string, code: TrainCode): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ValidationError(code, `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ValidationError(code, `${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Writes a JSON file as transformers and PEFT do (keys sorted at every level,
 * two-space indent, final newline), atomically.
 */
export function writeJsonFile(path: string, value: unknown): void {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (typeof v !== 'object' || v === null) return v;
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort((v as Record<string, unknown>)[k])]));
  };
  writeFileAtomic(path, `${JSON.stringify(sort(value), null, 2)}\n`);
}

/** `err` (a TallyError) with `prefix` before its message; anything else unchanged. */
export function withPrefix(err: unknown, prefix: string): unknown {
  return err instanceof TallyError ? new ValidationError(err.code, `${prefix}${err.message}`, { cause: err }) : err;
}

/**
 * Loads a checkpoint directory: `config.json` and `model.safetensors`.
 * Tensor names may carry the `transformer.` prefix or not (GPT2LMHeadModel
 * and GPT2Model files); transformers' attention buffers (`h.<i>.attn.bias`,
 * `h.<i>.attn.masked_bias`) are skipped, and so is an `lm_head.weight` equal
 * to wte. Float tensors of any float dtype convert to float32.
 * @throws ValidationError `TRAIN_ERR_BAD_CHECKPOINT` for a missing file, a bad config, or a missing,
 *   extra, duplicated, non-float or mis-shaped tensor (named); `TRAIN_ERR_UNSUPPORTED_MODEL` (see
 *   {@link parseGpt2Config}, or an lm_head.weight that differs from wte); `TRAIN_ERR_BAD_SAFETENSORS`
 *   for a malformed model.safetensors
 */
export function loadCheckpoint(dir: string): Checkpoint {
  const configPath = join(dir, CONFIG_FILE);
  const json = readJsonFile(configPath, 'TRAIN_ERR_BAD_CHECKPOINT');
  let config: Gpt2Config;
  try {
    config = parseGpt2Config(json);
  } catch (err) {
    throw withPrefix(err, `${dir}/`);
  }
  const modelPath = join(dir, MODEL_FILE);
  if (!existsSync(modelPath)) {
    const hint = existsSync(join(dir, `${MODEL_FILE}.index.json`)) ? ' (sharded checkpoints are not supported)'
      : existsSync(join(dir, 'pytorch_model.bin')) ? ' (pytorch_model.bin is not read: save the model with safe_serialization)' : '';
    throw new ValidationError('TRAIN_ERR_BAD_CHECKPOINT', `${dir}: no ${MODEL_FILE}${hint}`);
  }
  const file = readSafetensors(modelPath);
  const bad = (what: string) => new ValidationError('TRAIN_ERR_BAD_CHECKPOINT', `${modelPath}: ${what}`);
  const expected = gpt2TensorShapes(config);
  const found = new Map<string, Float32Array>();
  let lmHead: Float32Array | undefined;
  for (const [name, info] of file.tensors) {
    const bare = name.startsWith(TRANSFORMER_PREFIX) ? name.slice(TRANSFORMER_PREFIX.length) : name;
    const buffer = BUFFER.exec(bare);
    if (buffer !== null && Number(buffer[1]) < config.n_layer) continue;
    const canonical = name === 'lm_head.weight' ? name : TRANSFORMER_PREFIX + bare;
    const shape = canonical === 'lm_head.weight' ? expected.get(`${TRANSFORMER_PREFIX}wte.weight`)! : expected.get(canonical);
    if (shape === undefined) throw bad(`unexpected tensor ${show(name)}: not a parameter of a GPT-2 with ${config.n_layer} layers`);
    if (found.has(canonical)) throw bad(`tensor ${show(bare)} appears both with and without the "transformer." prefix`);
    if (!isFloatDtype(info.dtype)) throw bad(`tensor ${show(name)} is ${info.dtype}; a parameter must be F32, F16, BF16 or F64`);
    if (!sameShape(info.shape, shape)) throw bad(`tensor ${show(name)} has shape ${fmt(info.shape)}, expected ${fmt(shape)}`);
    if (canonical === 'lm_head.weight') lmHead = file.float32(name);
    else found.set(canonical, file.float32(name));
  }
  const tensors = new Map<string, Float32Array>();
  for (const name of expected.keys()) {
    const t = found.get(name);
    if (t === undefined) throw bad(`missing tensor ${show(name)}`);
    tensors.set(name, t);
  }
  if (lmHead !== undefined && !sameBits(lmHead, tensors.get(`${TRANSFORMER_PREFIX}wte.weight`)!)) {
    throw new ValidationError('TRAIN_ERR_UNSUPPORTED_MODEL', `${modelPath}: lm_head.weight differs from wte.weight; tally ties the output embedding to wte`);
  }
  return { dir, config, tensors, metadata: file.metadata };
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length), y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * Checks that `tensors` holds exactly the tensors of `shapes`, each a
 * Float32Array of the shape's size, and returns them in `shapes`' order.
 * @throws ValidationError with `code` naming the first missing, extra or mis-sized tensor
 */
export function checkTensors(shapes: ReadonlyMap<string, readonly number[]>, tensors: ReadonlyMap<string, Float32Array>, code: TrainCode): { name: string; shape: number[]; data: Float32Array }[] {
  if (!(tensors instanceof Map)) throw new ValidationError(code, 'tensors must be a Map from name to Float32Array');
  for (const name of tensors.keys()) if (!shapes.has(name)) throw new ValidationError(code, `unexpected tensor ${show(name)}`);
  return [...shapes].map(([name, shape]) => {
    const data = tensors.get(name);
    if (data === undefined) throw new ValidationError(code, `missing tensor ${show(name)}`);
    const size = shape.reduce((a, b) => a * b, 1);
    if (!(data instanceof Float32Array) || data.length !== size) {
      throw new ValidationError(code, `tensor ${show(name)} must be a Float32Array of ${size} values (shape ${fmt(shape)}), got ${data instanceof Float32Array ? data.length : typeof data}`);
    }
    return { name, shape: [...shape], data };
  });
}

/**
 * Writes a checkpoint directory (created if needed): `model.safetensors` with
 * the tensors under their `transformer.` names and `__metadata__` `metadata`
 * plus `format: "pt"` (which transformers requires of a safetensors file with
 * metadata), then `config.json` ({@link gpt2ConfigJson}). Each file is
 * written atomically.
 * @param tensors exactly {@link gpt2TensorShapes}' names, each of its shape's size
 * @throws ValidationError `TRAIN_ERR_BAD_CHECKPOINT` / `TRAIN_ERR_UNSUPPORTED_MODEL` for a bad config, or a
 *   missing, extra or mis-sized tensor
 */
export function saveCheckpoint(dir: string, c: Gpt2Config, tensors: ReadonlyMap<string, Float32Array>, metadata?: Record<string, string>): void {
  const json = gpt2ConfigJson(c);
  const config = parseGpt2Config(json);
  const list = checkTensors(gpt2TensorShapes(config), tensors, 'TRAIN_ERR_BAD_CHECKPOINT');
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, MODEL_FILE), list, { ...metadata, format: 'pt' });
  writeJsonFile(join(dir, CONFIG_FILE), json);
}
