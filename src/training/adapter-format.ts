/**
 * LoRA adapters for GPT-2 as Hugging Face PEFT directories:
 * `adapter_config.json` (a PEFT `LoraConfig`) and `adapter_model.safetensors`,
 * so a tally adapter loads with `PeftModel.from_pretrained(base, dir)` and a
 * PEFT LoRA adapter of a byte-level GPT-2 loads in tally.
 *
 * Tensors: `base_model.model.transformer.h.<i>.<module>.lora_A.weight`
 * `[r, in]` and `….lora_B.weight` `[out, r]` for each adapted Conv1D module,
 * in nn.Linear layout (PEFT's layout even for GPT-2's Conv1D, whose own weight
 * is `[in, out]`); the update is ΔW = (alpha / r)·(B·A)ᵀ, added to the
 * `[in, out]` weight (`fan_in_fan_out: true`).
 *
 * Target modules follow PEFT's matching: an entry matches a module whose
 * name equals it or ends with "." + entry. GPT-2 has two `c_proj` modules,
 * so `"c_proj"` adapts both the attention's output projection (attn.c_proj)
 * and the MLP's (mlp.c_proj), exactly as in PEFT; `"attn.c_proj"` or
 * `"mlp.c_proj"` adapts one of them. `"c_attn"` is the attention's fused
 * q/k/v projection and `"c_fc"` the MLP's input projection. A config's
 * target list is kept in one canonical form per set of adapted modules
 * (see {@link canonicalTargets}).
 *
 * Only plain LoRA over an unchanged base model is read: DoRA, rsLoRA, rank
 * or alpha patterns, layer selection or replication, bias training, extra
 * saved modules, LoRA biases, and initialisations that rewrite the base
 * weights (PiSSA, OLoRA, CorDA, LoftQ) are refused with
 * `TRAIN_ERR_BAD_ADAPTER`, naming the field. Unknown keys are kept.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ValidationError } from '../errors.js';
import { checkTensors, readJsonFile, withPrefix, writeJsonFile, type Gpt2Config } from './checkpoint.js';
import { isFloatDtype, readSafetensors, writeSafetensors } from './safetensors.js';

/** An entry of `target_modules` that tally reads (PEFT suffixes of GPT-2's Conv1D modules). */
export type LoraTargetModule = 'c_attn' | 'c_proj' | 'c_fc' | 'attn.c_proj' | 'mlp.c_proj';

/** A Conv1D module of a GPT-2 block, by its name within the block. */
export type Gpt2Module = 'attn.c_attn' | 'attn.c_proj' | 'mlp.c_fc' | 'mlp.c_proj';

/** The modules of a block in their order in the block (and in {@link loraTensorShapes}). */
export const GPT2_MODULES: readonly Gpt2Module[] = ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'];

/** A PEFT LoRA config as tally reads it. */
export interface LoraConfig {
  /** The rank (`r`). */
  readonly r: number;
  /** `lora_alpha`: the update is scaled by alpha / r. */
  readonly alpha: number;
  /** `lora_dropout`, in [0, 1). */
  readonly dropout: number;
  /** `target_modules`, in canonical form ({@link canonicalTargets}). */
  readonly targetModules: readonly LoraTargetModule[];
  /** `base_model_name_or_path` ('' when null). */
  readonly baseModel: string;
  /** Every other key of the file, as given. */
  readonly extra: Readonly<Record<string, unknown>>;
}

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_MODEL_FILE = 'adapter_model.safetensors';
/** The prefix of every adapter tensor: PeftModel → LoraModel → GPT2LMHeadModel → transformer. */
export const LORA_PREFIX = 'base_model.model.transformer.h.';

/** The keys PEFT's LoraConfig writes (PEFT 0.18), with their defaults. */
const PEFT_DEFAULTS: Readonly<Record<string, unknown>> = {
  alora_invocation_tokens: null, alpha_pattern: {}, arrow_config: null, auto_mapping: null, corda_config: null,
  ensure_weight_tying: false, eva_config: null, exclude_modules: null, init_lora_weights: true, layer_replication: null,
  layers_pattern: null, layers_to_transform: null, loftq_config: {}, lora_bias: false, megatron_config: null,
  megatron_core: 'megatron.core', modules_to_save: null, qalora_group_size: 16, rank_pattern: {}, revision: null,
  target_parameters: null, trainable_token_indices: null, use_dora: false, use_qalora: false, use_rslora: false,
};
const TYPED_KEYS = ['r', 'lora_alpha', 'lora_dropout', 'target_modules', 'base_model_name_or_path'];
/** Entries of target_modules and the modules each matches (PEFT: equal, or a suffix after a dot). */
const MATCHES: Readonly<Record<LoraTargetModule, readonly Gpt2Module[]>> = {
  c_attn: ['attn.c_attn'], c_proj: ['attn.c_proj', 'mlp.c_proj'], c_fc: ['mlp.c_fc'], 'attn.c_proj': ['attn.c_proj'], 'mlp.c_proj': ['mlp.c_proj'],
};
/** init_lora_weights values that leave the base model unchanged. */
const PLAIN_INITS: readonly unknown[] = [true, false, 'gaussian', 'orthogonal', 'eva'];

const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
};
const bad = (what: string) => new ValidationError('TRAIN_ERR_BAD_ADAPTER', what);
const badField = (key: string, what: string) => bad(`${ADAPTER_CONFIG_FILE}: "${key}" ${what}`);

/** The modules a list of targets adapts (PEFT's suffix matching), in block order. */
export function adaptedModules(targets: readonly LoraTargetModule[]): Gpt2Module[] {
  const set = new Set(targets.flatMap((t) => MATCHES[t] ?? []));
  return GPT2_MODULES.filter((m) => set.has(m));
}

/**
 * The canonical target list of a set of adapted modules: "c_attn" if
 * attn.c_attn; "c_proj" if both projections, else "attn.c_proj" or
 * "mlp.c_proj" for one; "c_fc" if mlp.c_fc; in the order c_attn, c_proj /
 * attn.c_proj, c_fc, mlp.c_proj. Two lists adapt the same modules exactly
 * when their canonical forms are equal.
 */
export function canonicalTargets(modules: readonly Gpt2Module[]): LoraTargetModule[] {
  const has = (m: Gpt2Module) => modules.includes(m);
  const out: LoraTargetModule[] = [];
  if (has('attn.c_attn')) out.push('c_attn');
  if (has('attn.c_proj') && has('mlp.c_proj')) out.push('c_proj');
  else if (has('attn.c_proj')) out.push('attn.c_proj');
  if (has('mlp.c_fc')) out.push('c_fc');
  if (has('mlp.c_proj') && !has('attn.c_proj')) out.push('mlp.c_proj');
  return out;
}

function parseTargets(v: unknown): LoraTargetModule[] {
  // PEFT's wildcard: every Conv1D of the transformer (the tied output layer is excluded).
  if (v === 'all-linear') return canonicalTargets(GPT2_MODULES);
  if (typeof v === 'string') throw badField('target_modules', `is the regular expression ${show(v)}; tally reads a list of module names (or "all-linear")`);
  if (!Array.isArray(v) || v.length === 0) throw badField('target_modules', `must be a non-empty list of module names, got ${show(v)}`);
  for (const t of v) {
    if (typeof t !== 'string' || !Object.hasOwn(MATCHES, t)) {
      throw badField('target_modules', `holds ${show(t)}; GPT-2's adaptable modules are ${Object.keys(MATCHES).map((k) => `"${k}"`).join(', ')}`);
    }
  }
  return canonicalTargets(adaptedModules(v as LoraTargetModule[]));
}

/**
 * Reads a PEFT `adapter_config.json` object for a GPT-2 LoRA adapter.
 * `task_type` may be "CAUSAL_LM" or null; a missing `lora_dropout` is 0.
 * @throws ValidationError `TRAIN_ERR_BAD_ADAPTER` naming the field: peft_type not "LORA", r not a
 *   positive integer, lora_alpha not positive, lora_dropout outside [0, 1), fan_in_fan_out not true, bias
 *   not "none", an unknown or empty target_modules, or a PEFT option tally does not implement
 */
export function parseAdapterConfig(json: unknown): LoraConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad(`${ADAPTER_CONFIG_FILE}: expected a JSON object, got ${show(json)}`);
  const d = json as Record<string, unknown>;
  if (d.peft_type !== 'LORA') throw badField('peft_type', `must be "LORA", got ${show(d.peft_type)}`);
  if (d.task_type !== undefined && d.task_type !== null && d.task_type !== 'CAUSAL_LM') throw badField('task_type', `must be "CAUSAL_LM", got ${show(d.task_type)}`);
  const r = d.r;
  if (typeof r !== 'number' || !Number.isSafeInteger(r) || r < 1) throw badField('r', `must be an integer ≥ 1, got ${show(r)}`);
  const alpha = d.lora_alpha;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) throw badField('lora_alpha', `must be a positive number, got ${show(alpha)}`);
  const dropout = d.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) throw badField('lora_dropout', `must be a number in [0, 1), got ${show(dropout)}`);
  const targetModules = parseTargets(d.target_modules);
  if (d.fan_in_fan_out !== true) throw badField('fan_in_fan_out', `must be true (GPT-2's Conv1D stores weights [in, out]), got ${show(d.fan_in_fan_out)}`);
  if ((d.bias ?? 'none') !== 'none') throw badField('bias', `must be "none" (tally trains no biases), got ${show(d.bias)}`);
  const base = d.base_model_name_or_path ?? '';
  if (typeof base !== 'string') throw badField('base_model_name_or_path', `must be a string or null, got ${show(base)}`);
  if (!PLAIN_INITS.includes(d.init_lora_weights ?? true)) {
    throw badField('init_lora_weights', `${show(d.init_lora_weights)} is not supported: tally reads adapters over an unchanged base model (true, false, "gaussian", "orthogonal" or "eva")`);
  }
  // Options that change the computation or the set of trained tensors.
  const off = (key: string, why: string, neutral: (v: unknown) => boolean) => {
    if (d[key] !== undefined && !neutral(d[key])) throw badField(key, `${show(d[key])} is not supported: ${why}`);
  };
  const isNull = (v: unknown) => v === null;
  const isFalse = (v: unknown) => v === false || v === null;
  const isEmpty = (v: unknown) => v === null || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0);
  off('use_dora', 'DoRA is not implemented', isFalse);
  off('use_rslora', 'the scale is alpha / r (rsLoRA\'s alpha / √r is not implemented)', isFalse);
  off('use_qalora', 'QALoRA is not implemented', isFalse);
  off('lora_bias', 'LoRA B has no bias in tally', isFalse);
  off('rank_pattern', 'every module has rank r', isEmpty);
  off('alpha_pattern', 'every module has alpha lora_alpha', isEmpty);
  off('layers_to_transform', 'every layer is adapted', isNull);
  off('layer_replication', 'layers are not replicated', isNull);
  off('exclude_modules', 'every matched module is adapted', isEmpty);
  off('target_parameters', 'only modules are adapted', isEmpty);
  off('modules_to_save', 'only the LoRA tensors are trained and saved', isEmpty);
  off('trainable_token_indices', 'token embeddings are not trained', isEmpty);
  off('alora_invocation_tokens', 'activated LoRA is not implemented', isEmpty);
  off('arrow_config', 'Arrow routing is not implemented', isNull);
  off('megatron_config', 'Megatron layers are not used', isNull);

  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d)) if (!TYPED_KEYS.includes(k)) extra[k] = v;
  return { r, alpha, dropout, targetModules, baseModel: base, extra: Object.freeze(extra) };
}

/**
 * The `adapter_config.json` object to write: PEFT's LoraConfig keys with its
 * defaults, then `extra`, then what tally decides: peft_type "LORA",
 * task_type "CAUSAL_LM", fan_in_fan_out true, bias "none", inference_mode
 * true (as PEFT saves), modules_to_save null, and the config's r, lora_alpha,
 * lora_dropout, target_modules (canonical) and base_model_name_or_path ('' → null).
 * `peft_version` is not written: it names the PEFT release that wrote a file.
 */
export function adapterConfigJson(c: LoraConfig): Record<string, unknown> {
  return {
    ...PEFT_DEFAULTS,
    ...c.extra,
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    fan_in_fan_out: true,
    bias: 'none',
    inference_mode: true,
    modules_to_save: null,
    r: c.r,
    lora_alpha: c.alpha,
    lora_dropout: c.dropout,
    target_modules: canonicalTargets(adaptedModules(c.targetModules)),
    base_model_name_or_path: c.baseModel === '' ? null : c.baseModel,
  };
}

/** `[in, out]` of a module in a model of width e. */
export function moduleDims(e: number, m: Gpt2Module): [number, number] {
  return m === 'attn.c_attn' ? [e, 3 * e] : m === 'attn.c_proj' ? [e, e] : m === 'mlp.c_fc' ? [e, 4 * e] : [4 * e, e];
}

/** PEFT's name of a LoRA tensor. */
export function loraTensorName(layer: number, module: Gpt2Module, which: 'A' | 'B'): string {
  return `${LORA_PREFIX}${layer}.${module}.lora_${which}.weight`;
}

function shapesFor(layers: number, e: number, lora: LoraConfig): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const modules = adaptedModules(lora.targetModules);
  for (let i = 0; i < layers; i++) {
    for (const m of modules) {
      const [fanIn, fanOut] = moduleDims(e, m);
      out.set(loraTensorName(i, m, 'A'), [lora.r, fanIn]);
      out.set(loraTensorName(i, m, 'B'), [fanOut, lora.r]);
    }
  }
  return out;
}

/**
 * Every LoRA tensor name and shape of an adapter: `[r, in]` for A and
 * `[out, r]` for B, ordered by layer, then module in block order
 * (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj, those adapted), then A
 * before B.
 */
export function loraTensorShapes(model: Gpt2Config, lora: LoraConfig): Map<string, number[]> {
  return shapesFor(model.n_layer, model.n_embd, lora);
}

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * Loads a PEFT adapter directory for a GPT-2 model.
 * @returns the config and the tensors in {@link loraTensorShapes}' order, as float32
 * @throws ValidationError `TRAIN_ERR_BAD_ADAPTER` for a missing file, a bad config, or a missing, extra,
 *   non-float or mis-shaped tensor (named); `TRAIN_ERR_BAD_SAFETENSORS` for a malformed safetensors file
 */
export function loadAdapter(dir: string, model: Gpt2Config): { config: LoraConfig; tensors: Map<string, Float32Array> } {
  const json = readJsonFile(join(dir, ADAPTER_CONFIG_FILE), 'TRAIN_ERR_BAD_ADAPTER');
  let config: LoraConfig;
  try {
    config = parseAdapterConfig(json);
  } catch (err) {
    throw withPrefix(err, `${dir}/`);
  }
  const path = join(dir, ADAPTER_MODEL_FILE);
  const file = readSafetensors(path);
  const expected = loraTensorShapes(model, config);
  const where = `${path}: `;
  for (const [name, info] of file.tensors) {
    const shape = expected.get(name);
    if (shape === undefined) throw bad(`${where}unexpected tensor ${show(name)} (targets ${show(config.targetModules)}, ${model.n_layer} layers)`);
    if (!isFloatDtype(info.dtype)) throw bad(`${where}tensor ${show(name)} is ${info.dtype}; LoRA weights must be F32, F16, BF16 or F64`);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw bad(`${where}tensor ${show(name)} has shape ${fmt(info.shape)}, expected ${fmt(shape)} (r ${config.r}, n_embd ${model.n_embd})`);
    }
  }
  const tensors = new Map<string, Float32Array>();
  for (const name of expected.keys()) {
    if (!file.tensors.has(name)) throw bad(`${where}missing tensor ${show(name)}`);
    tensors.set(name, file.float32(name));
  }
  return { config, tensors };
}

/** `<layer>` and module of a PEFT LoRA tensor name, or undefined. */
const NAME = /^base_model\.model\.transformer\.h\.(0|[1-9][0-9]*)\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.lora_[AB]\.weight$/;

/**
 * Writes a PEFT adapter directory (created if needed): `adapter_model.safetensors`
 * (`__metadata__` `metadata` plus `format: "pt"`, as PEFT writes) and
 * `adapter_config.json` ({@link adapterConfigJson}), each atomically. The
 * model's depth and width are read from the tensors (the highest layer, and
 * the size of a layer-0 A tensor over r), then every tensor is checked
 * against {@link loraTensorShapes} for them.
 * @param tensors exactly the adapter's tensors under PEFT's names
 * @throws ValidationError `TRAIN_ERR_BAD_ADAPTER` for a bad config, or a missing, extra or mis-sized tensor
 */
export function saveAdapter(dir: string, c: LoraConfig, tensors: ReadonlyMap<string, Float32Array>, metadata?: Record<string, string>): void {
  const json = adapterConfigJson(c);
  const config = parseAdapterConfig(json);
  if (!(tensors instanceof Map)) throw bad('tensors must be a Map from name to Float32Array');
  let layers = 0;
  for (const name of tensors.keys()) {
    const m = NAME.exec(name);
    if (m === null) throw bad(`unexpected tensor ${show(name)}: not a PEFT LoRA tensor of a GPT-2 module`);
    layers = Math.max(layers, Number(m[1]) + 1);
  }
  const first = adaptedModules(config.targetModules)[0]!;
  const a0 = tensors.get(loraTensorName(0, first, 'A'));
  if (a0 === undefined) throw bad(`missing tensor ${show(loraTensorName(0, first, 'A'))}`);
  const fanIn = a0.length / config.r;
  const e = first === 'mlp.c_proj' ? fanIn / 4 : fanIn;
  if (!Number.isInteger(e) || e < 1) throw bad(`tensor ${show(loraTensorName(0, first, 'A'))} has ${a0.length} values, not r (${config.r}) × the module's input width`);
  const list = checkTensors(shapesFor(layers, e, config), tensors, 'TRAIN_ERR_BAD_ADAPTER');
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, ADAPTER_MODEL_FILE), list, { ...metadata, format: 'pt' });
  writeJsonFile(join(dir, ADAPTER_CONFIG_FILE), json);
}
