/**
 * GPT-2 checkpoints: config.json parsing and writing, the tensor list, and
 * save/load of a tiny model, including Hugging Face's variants (no
 * "transformer." prefix, attention buffers, an explicit tied lm_head) and
 * every refusal.
 */
import { expect } from 'chai';
import { expectError } from '../crypto/_helpers.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError, type TrainCode } from '../../src/errors.js';
import {
  gpt2ConfigJson, gpt2TensorShapes, loadCheckpoint, parseGpt2Config, saveCheckpoint, type Gpt2Config,
} from '../../src/training/checkpoint.js';
import { encodeSafetensors, parseSafetensors } from '../../src/training/safetensors.js';

const TINY = { model_type: 'gpt2', vocab_size: 257, n_positions: 16, n_embd: 8, n_layer: 2, n_head: 2 };
const config = parseGpt2Config(TINY);

/** Deterministic weights: a different value in every position of every tensor. */
function weights(c: Gpt2Config): Map<string, Float32Array> {
  let k = 0;
  return new Map([...gpt2TensorShapes(c)].map(([name, shape]) => [name, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.sin(++k) / 3)]));
}

/** A model.safetensors holding `tensors` (name → [shape, data]) and a config.json, in a fresh folder. */
function hfDir(tensors: [string, number[], Float32Array][], json: object = TINY): string {
  const dir = mkdtempSync(join(tmpdir(), 'tally-ckpt-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(json));
  writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(tensors.map(([name, shape, data]) => ({ name, shape, data }))));
  return dir;
}

/** The tiny model's tensors with HF's names, `prefix` before each. */
function asList(w: Map<string, Float32Array>, prefix: string): [string, number[], Float32Array][] {
  const shapes = gpt2TensorShapes(config);
  return [...w].map(([name, data]) => [prefix + name.slice('transformer.'.length), shapes.get(name)!, data]);
}

/** A safetensors file of any dtypes, assembled from the format rules (tests run on little-endian hosts). */
function rawFile(entries: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[]): Uint8Array {
  let at = 0;
  const header = Object.fromEntries(entries.map((e) => [e.name, { dtype: e.dtype, shape: e.shape, data_offsets: [at, (at += e.bytes.length)] }]));
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const n = Buffer.alloc(8);
  n.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([n, h, ...entries.map((e) => e.bytes)]);
}

function refusedWith(fn: () => unknown, code: TrainCode, message: RegExp): void {
  expectError(fn, ValidationError, code, message);
}

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'tally-ckpt-'));
  dirs.push(d);
  return d;
};
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('training/checkpoint: config.json', () => {
  it('reads a byte-level GPT-2 config, with transformers\' defaults for the activation and epsilon', () => {
    expect(config).to.deep.include({ model_type: 'gpt2', vocab_size: 257, n_positions: 16, n_embd: 8, n_layer: 2, n_head: 2, layer_norm_epsilon: 1e-5, activation_function: 'gelu_new', bos_token_id: 256, eos_token_id: 256 });
    expect(config.extra).to.deep.equal({});
  });

  it('keeps other keys in extra and writes them back', () => {
    const c = parseGpt2Config({ ...TINY, resid_pdrop: 0, n_inner: 32, transformers_version: '4.44.0', task_specific_params: { b: 1, a: 2 } });
    expect(c.extra).to.deep.equal({ resid_pdrop: 0, n_inner: 32, transformers_version: '4.44.0', task_specific_params: { b: 1, a: 2 } });
    const json = gpt2ConfigJson(c);
    expect(json).to.include({ resid_pdrop: 0, transformers_version: '4.44.0', n_inner: null });
  });

  it('writes what transformers\' GPT2LMHeadModel reads', () => {
    const json = gpt2ConfigJson(config);
    expect(json).to.deep.include({
      architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', vocab_size: 257, n_positions: 16, n_ctx: 16, n_embd: 8, n_layer: 2, n_head: 2,
      n_inner: null, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, bos_token_id: 256, eos_token_id: 256, tie_word_embeddings: true,
      resid_pdrop: 0.1, embd_pdrop: 0.1, attn_pdrop: 0.1, scale_attn_weights: true, initializer_range: 0.02,
    });
    expect(parseGpt2Config(json)).to.deep.include({ n_embd: 8, vocab_size: 257 });
    const bytesOnly = gpt2ConfigJson(parseGpt2Config({ ...TINY, vocab_size: 256 }));
    expect(bytesOnly).to.include({ vocab_size: 256, bos_token_id: null, eos_token_id: null });
  });

  const cases: [string, unknown, TrainCode, RegExp][] = [
    ['GPT-2\'s BPE vocabulary', { ...TINY, vocab_size: 50257 }, 'TRAIN_ERR_UNSUPPORTED_MODEL', /vocab_size 50257: tally's models are byte-level .* BPE vocabularies .* not supported/],
    ['a 300-token vocabulary', { ...TINY, vocab_size: 300 }, 'TRAIN_ERR_UNSUPPORTED_MODEL', /vocab_size 300/],
    ['another model type', { ...TINY, model_type: 'llama' }, 'TRAIN_ERR_UNSUPPORTED_MODEL', /model_type "llama"/],
    ['a missing model_type', { ...TINY, model_type: undefined }, 'TRAIN_ERR_BAD_CHECKPOINT', /"model_type" is missing/],
    ['a missing n_embd', { ...TINY, n_embd: undefined }, 'TRAIN_ERR_BAD_CHECKPOINT', /"n_embd" is missing/],
    ['a fractional n_layer', { ...TINY, n_layer: 1.5 }, 'TRAIN_ERR_BAD_CHECKPOINT', /"n_layer" must be a positive integer, got 1.5/],
    ['a zero n_head', { ...TINY, n_head: 0 }, 'TRAIN_ERR_BAD_CHECKPOINT', /"n_head" must be a positive integer/],
    ['a string n_positions', { ...TINY, n_positions: '16' }, 'TRAIN_ERR_BAD_CHECKPOINT', /"n_positions" must be a positive integer, got "16"/],
    ['n_embd not a multiple of n_head', { ...TINY, n_head: 3 }, 'TRAIN_ERR_BAD_CHECKPOINT', /"n_embd" \(8\) must be a multiple of "n_head" \(3\)/],
    ['a zero epsilon', { ...TINY, layer_norm_epsilon: 0 }, 'TRAIN_ERR_BAD_CHECKPOINT', /"layer_norm_epsilon" must be a positive number/],
    ['GPT-2\'s BPE EOS id', { ...TINY, eos_token_id: 50256 }, 'TRAIN_ERR_BAD_CHECKPOINT', /"eos_token_id" must be 256/],
    ['an EOS id without an EOS token', { ...TINY, vocab_size: 256, bos_token_id: 255 }, 'TRAIN_ERR_BAD_CHECKPOINT', /"bos_token_id" must be null or absent when vocab_size is 256/],
    ['another activation', { ...TINY, activation_function: 'gelu' }, 'TRAIN_ERR_UNSUPPORTED_MODEL', /activation_function "gelu"/],
    ['the tanh GELU under another name', { ...TINY, activation_function: 'gelu_pytorch_tanh' }, 'TRAIN_ERR_UNSUPPORTED_MODEL', /"gelu_new"/],
    ['untied embeddings', { ...TINY, tie_word_embeddings: false }, 'TRAIN_ERR_UNSUPPORTED_MODEL', /tie_word_embeddings false/],
    ['a non-boolean tie_word_embeddings', { ...TINY, tie_word_embeddings: 1 }, 'TRAIN_ERR_BAD_CHECKPOINT', /"tie_word_embeddings" must be a boolean/],
    ['an MLP that is not 4·n_embd', { ...TINY, n_inner: 24 }, 'TRAIN_ERR_UNSUPPORTED_MODEL', /n_inner 24: .* 4·n_embd = 32/],
    ['a bad n_inner', { ...TINY, n_inner: 'wide' }, 'TRAIN_ERR_BAD_CHECKPOINT', /"n_inner" must be null or a positive integer/],
    ['unscaled attention', { ...TINY, scale_attn_weights: false }, 'TRAIN_ERR_UNSUPPORTED_MODEL', /scale_attn_weights false/],
    ['layer-scaled attention', { ...TINY, scale_attn_by_inverse_layer_idx: true }, 'TRAIN_ERR_UNSUPPORTED_MODEL', /scale_attn_by_inverse_layer_idx true/],
    ['cross-attention', { ...TINY, add_cross_attention: true }, 'TRAIN_ERR_UNSUPPORTED_MODEL', /add_cross_attention true/],
    ['an array', [TINY], 'TRAIN_ERR_BAD_CHECKPOINT', /expected a JSON object/],
  ];
  for (const [what, json, code, message] of cases) {
    it(`refuses ${what} (${code})`, () => refusedWith(() => parseGpt2Config(json), code, message));
  }

  it('accepts n_inner 4·n_embd and the byte-only vocabulary', () => {
    expect(parseGpt2Config({ ...TINY, n_inner: 32 }).n_embd).to.equal(8);
    const c = parseGpt2Config({ ...TINY, vocab_size: 256, bos_token_id: null });
    expect(c.vocab_size).to.equal(256);
    expect(c.bos_token_id).to.equal(undefined);
  });
});

describe('training/checkpoint: tensors', () => {
  it('lists every GPT-2 tensor with Hugging Face\'s names and Conv1D shapes', () => {
    const s = gpt2TensorShapes(config);
    expect(s.size).to.equal(2 + 12 * 2 + 2);
    expect([...s.keys()].slice(0, 4)).to.deep.equal(['transformer.wte.weight', 'transformer.wpe.weight', 'transformer.h.0.ln_1.weight', 'transformer.h.0.ln_1.bias']);
    expect(Object.fromEntries([...s].filter(([n]) => n.startsWith('transformer.h.1.') || !n.includes('.h.')))).to.deep.equal({
      'transformer.wte.weight': [257, 8], 'transformer.wpe.weight': [16, 8],
      'transformer.h.1.ln_1.weight': [8], 'transformer.h.1.ln_1.bias': [8],
      'transformer.h.1.attn.c_attn.weight': [8, 24], 'transformer.h.1.attn.c_attn.bias': [24],
      'transformer.h.1.attn.c_proj.weight': [8, 8], 'transformer.h.1.attn.c_proj.bias': [8],
      'transformer.h.1.ln_2.weight': [8], 'transformer.h.1.ln_2.bias': [8],
      'transformer.h.1.mlp.c_fc.weight': [8, 32], 'transformer.h.1.mlp.c_fc.bias': [32],
      'transformer.h.1.mlp.c_proj.weight': [32, 8], 'transformer.h.1.mlp.c_proj.bias': [8],
      'transformer.ln_f.weight': [8], 'transformer.ln_f.bias': [8],
    });
  });
});

describe('training/checkpoint: save and load', () => {
  it('round-trips a tiny checkpoint exactly, with metadata', () => {
    const dir = join(tmp(), 'nested', 'ckpt');
    const w = weights(config);
    saveCheckpoint(dir, config, w, { step: '7' });
    const c = loadCheckpoint(dir);
    expect(c.dir).to.equal(dir);
    const { extra, ...typed } = c.config;
    expect(typed).to.deep.equal({ ...(({ extra: _, ...t }) => t)(config), tie_word_embeddings: true });
    expect(extra).to.deep.include({ architectures: ['GPT2LMHeadModel'], n_ctx: 16, n_inner: null, resid_pdrop: 0.1 });
    // Loading what was loaded and saved again gives the same checkpoint (a fixed point).
    const again = join(tmp(), 'again');
    saveCheckpoint(again, c.config, c.tensors, { ...c.metadata });
    expect(loadCheckpoint(again).config).to.deep.equal(c.config);
    expect(readFileSync(join(again, 'config.json'), 'utf8')).to.equal(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(readFileSync(join(again, 'model.safetensors')).equals(readFileSync(join(dir, 'model.safetensors')))).to.equal(true);
    expect([...c.tensors.keys()]).to.deep.equal([...gpt2TensorShapes(config).keys()]);
    for (const [name, data] of w) expect(Buffer.from(c.tensors.get(name)!.buffer).equals(Buffer.from(data.buffer)), name).to.equal(true);
    expect(c.metadata).to.deep.equal({ step: '7', format: 'pt' });
  });

  it('writes config.json as transformers does (sorted keys, two-space indent) and model.safetensors with the prefix', () => {
    const dir = tmp();
    saveCheckpoint(dir, config, weights(config));
    const text = readFileSync(join(dir, 'config.json'), 'utf8');
    const keys = Object.keys(JSON.parse(text) as object);
    expect(keys).to.deep.equal([...keys].sort());
    expect(text).to.match(/^\{\n {2}"activation_function": "gelu_new",\n/);
    expect(text.endsWith('}\n')).to.equal(true);
    const st = parseSafetensors(readFileSync(join(dir, 'model.safetensors')));
    expect([...st.tensors.keys()].every((n) => n.startsWith('transformer.'))).to.equal(true);
    expect(st.metadata.format).to.equal('pt');
  });

  it('round-trips the byte-only vocabulary', () => {
    const c256 = parseGpt2Config({ ...TINY, vocab_size: 256 });
    const dir = tmp();
    saveCheckpoint(dir, c256, weights(c256));
    expect(loadCheckpoint(dir).tensors.get('transformer.wte.weight')!.length).to.equal(256 * 8);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).to.include({ bos_token_id: null, eos_token_id: null });
  });

  it('reads Hugging Face files: no prefix, attention buffers, an lm_head equal to wte', () => {
    const w = weights(config);
    const mask = new Float32Array(16 * 16).fill(1);
    const dir = hfDir([
      ...asList(w, ''),
      ['h.0.attn.bias', [1, 1, 16, 16], mask], ['h.1.attn.bias', [1, 1, 16, 16], mask],
      ['h.0.attn.masked_bias', [], Float32Array.of(-1e4)], ['h.1.attn.masked_bias', [], Float32Array.of(-1e4)],
      ['lm_head.weight', [257, 8], w.get('transformer.wte.weight')!],
    ]);
    dirs.push(dir);
    const c = loadCheckpoint(dir);
    expect([...c.tensors.keys()]).to.deep.equal([...w.keys()]);
    for (const [name, data] of w) expect([...c.tensors.get(name)!]).to.deep.equal([...data]);
    const prefixed = hfDir([...asList(w, 'transformer.'), ['transformer.h.1.attn.bias', [1, 1, 16, 16], mask]]);
    dirs.push(prefixed);
    expect(loadCheckpoint(prefixed).tensors.size).to.equal(w.size);
  });

  it('converts F16 parameters to float32', () => {
    const w = weights(config);
    const half: [number, number][] = [[0x3800, 0.5], [0xbd00, -1.25], [0x4000, 2], [0x0000, 0], [0x6400, 1024], [0x9400, -(2 ** -10)], [0x7bff, 65504], [0x4200, 3]];
    const entries = asList(w, 'transformer.').map(([name, shape, data]) => name === 'transformer.ln_f.bias'
      ? { name, dtype: 'F16', shape, bytes: new Uint8Array(Uint16Array.from(half.map((h) => h[0])).buffer) }
      : { name, dtype: 'F32', shape, bytes: new Uint8Array(data.buffer) });
    const dir = tmp();
    writeFileSync(join(dir, 'config.json'), JSON.stringify(TINY));
    writeFileSync(join(dir, 'model.safetensors'), rawFile(entries));
    const c = loadCheckpoint(dir);
    expect([...c.tensors.get('transformer.ln_f.bias')!]).to.deep.equal(half.map((h) => h[1]));
    expect([...c.tensors.get('transformer.ln_f.weight')!]).to.deep.equal([...w.get('transformer.ln_f.weight')!]);
  });

  const w = weights(config);
  const drop = (name: string) => asList(w, 'transformer.').filter(([n]) => n !== name);
  const refusals: [string, () => [string, number[], Float32Array][], RegExp][] = [
    ['a missing tensor', () => drop('transformer.h.1.mlp.c_fc.bias'), /missing tensor "transformer.h.1.mlp.c_fc.bias"/],
    ['an extra tensor', () => [...asList(w, 'transformer.'), ['transformer.h.2.ln_1.weight', [8], new Float32Array(8)]], /unexpected tensor "transformer.h.2.ln_1.weight"/],
    ['a buffer of a layer the model does not have', () => [...asList(w, ''), ['h.2.attn.bias', [1], new Float32Array(1)]], /unexpected tensor "h.2.attn.bias"/],
    ['an unknown tensor', () => [...asList(w, ''), ['score.weight', [2, 8], new Float32Array(16)]], /unexpected tensor "score.weight"/],
    ['a mis-shaped tensor', () => [...drop('transformer.wte.weight'), ['transformer.wte.weight', [256, 8], new Float32Array(256 * 8)]], /"transformer.wte.weight" has shape \[256, 8\], expected \[257, 8\]/],
    ['a transposed Conv1D weight', () => [...drop('transformer.h.0.mlp.c_fc.weight'), ['transformer.h.0.mlp.c_fc.weight', [32, 8], new Float32Array(256)]], /has shape \[32, 8\], expected \[8, 32\]/],
    ['a tensor both with and without the prefix', () => [...asList(w, 'transformer.'), ['ln_f.bias', [8], new Float32Array(8)]], /"ln_f.bias" appears both with and without/],
  ];
  for (const [what, list, message] of refusals) {
    it(`refuses ${what}`, () => {
      const dir = hfDir(list());
      dirs.push(dir);
      refusedWith(() => loadCheckpoint(dir), 'TRAIN_ERR_BAD_CHECKPOINT', message);
    });
  }

  it('refuses an lm_head that differs from wte (untied)', () => {
    const dir = hfDir([...asList(w, 'transformer.'), ['lm_head.weight', [257, 8], new Float32Array(257 * 8)]]);
    dirs.push(dir);
    refusedWith(() => loadCheckpoint(dir), 'TRAIN_ERR_UNSUPPORTED_MODEL', /lm_head.weight differs from wte.weight/);
  });

  it('refuses a BPE checkpoint, missing files and a malformed model.safetensors', () => {
    const bpe = hfDir([], { ...TINY, vocab_size: 50257 });
    dirs.push(bpe);
    refusedWith(() => loadCheckpoint(bpe), 'TRAIN_ERR_UNSUPPORTED_MODEL', /config\.json: vocab_size 50257: tally's models are byte-level/);
    const empty = tmp();
    refusedWith(() => loadCheckpoint(empty), 'TRAIN_ERR_BAD_CHECKPOINT', /cannot read .*config\.json/);
    writeFileSync(join(empty, 'config.json'), '{"model_type": "gpt2",');
    refusedWith(() => loadCheckpoint(empty), 'TRAIN_ERR_BAD_CHECKPOINT', /config\.json is not valid JSON/);
    writeFileSync(join(empty, 'config.json'), JSON.stringify(TINY));
    writeFileSync(join(empty, 'pytorch_model.bin'), 'x');
    refusedWith(() => loadCheckpoint(empty), 'TRAIN_ERR_BAD_CHECKPOINT', /no model\.safetensors \(pytorch_model\.bin is not read/);
    writeFileSync(join(empty, 'model.safetensors'), new Uint8Array(12));
    refusedWith(() => loadCheckpoint(empty), 'TRAIN_ERR_BAD_SAFETENSORS', /model\.safetensors: not a valid safetensors file/);
  });

  it('refuses an integer-typed parameter', () => {
    const entries = asList(w, 'transformer.').map(([name, shape, data]) => ({ name, dtype: name === 'transformer.ln_f.bias' ? 'I32' : 'F32', shape, bytes: new Uint8Array(data.buffer) }));
    const dir = tmp();
    writeFileSync(join(dir, 'config.json'), JSON.stringify(TINY));
    writeFileSync(join(dir, 'model.safetensors'), rawFile(entries));
    refusedWith(() => loadCheckpoint(dir), 'TRAIN_ERR_BAD_CHECKPOINT', /"transformer.ln_f.bias" is I32; a parameter must be F32, F16, BF16 or F64/);
  });

  it('saveCheckpoint refuses a missing, extra or mis-sized tensor and a bad config', () => {
    const dir = tmp();
    const without = new Map(w);
    without.delete('transformer.ln_f.bias');
    refusedWith(() => saveCheckpoint(dir, config, without), 'TRAIN_ERR_BAD_CHECKPOINT', /missing tensor "transformer.ln_f.bias"/);
    refusedWith(() => saveCheckpoint(dir, config, new Map([...w, ['transformer.extra', new Float32Array(1)]])), 'TRAIN_ERR_BAD_CHECKPOINT', /unexpected tensor "transformer.extra"/);
    refusedWith(() => saveCheckpoint(dir, config, new Map([...w, ['transformer.ln_f.bias', new Float32Array(7)]])), 'TRAIN_ERR_BAD_CHECKPOINT', /"transformer.ln_f.bias" must be a Float32Array of 8 values \(shape \[8\]\), got 7/);
    refusedWith(() => saveCheckpoint(dir, { ...config, n_head: 3 }, w), 'TRAIN_ERR_BAD_CHECKPOINT', /multiple of "n_head"/);
    refusedWith(() => saveCheckpoint(dir, { ...config, vocab_size: 50257 as 257 }, w), 'TRAIN_ERR_UNSUPPORTED_MODEL', /byte-level/);
  });
});
