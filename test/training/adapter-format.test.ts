/**
 * PEFT LoRA adapters for GPT-2: adapter_config.json reading and writing, the
 * target-module matching (c_proj is both projections, as in PEFT), the
 * tensor list, save/load round trips and every refusal.
 */
import { expect } from 'chai';
import { expectError } from '../crypto/_helpers.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError, type TrainCode } from '../../src/errors.js';
import {
  adaptedModules, adapterConfigJson, canonicalTargets, loadAdapter, loraTensorShapes, parseAdapterConfig, saveAdapter, type LoraConfig,
} from '../../src/training/adapter-format.js';
import { parseGpt2Config } from '../../src/training/checkpoint.js';
import { encodeSafetensors, parseSafetensors } from '../../src/training/safetensors.js';

const model = parseGpt2Config({ model_type: 'gpt2', vocab_size: 257, n_positions: 16, n_embd: 8, n_layer: 2, n_head: 2 });

/** An adapter_config.json as PEFT 0.18 writes it for GPT-2 (keys as in a saved file), plus a key from a later release. */
const PEFT_FILE = {
  alora_invocation_tokens: null, alpha_pattern: {}, arrow_config: null, auto_mapping: null, base_model_name_or_path: 'models/tally-base',
  bias: 'none', corda_config: null, ensure_weight_tying: false, eva_config: null, exclude_modules: null, fan_in_fan_out: true,
  inference_mode: true, init_lora_weights: true, layer_replication: null, layers_pattern: null, layers_to_transform: null,
  loftq_config: {}, lora_alpha: 8, lora_bias: false, lora_dropout: 0.05, megatron_config: null, megatron_core: 'megatron.core',
  modules_to_save: null, peft_type: 'LORA', peft_version: '0.18.0', qalora_group_size: 16, r: 4, rank_pattern: {}, revision: null,
  target_modules: ['c_proj', 'c_attn'], target_parameters: null, task_type: 'CAUSAL_LM', trainable_token_indices: null,
  use_dora: false, use_qalora: false, use_rslora: false, some_future_option: { kept: true },
};

const lora = (over: Partial<LoraConfig> = {}): LoraConfig => ({ r: 2, alpha: 4, dropout: 0, targetModules: ['c_attn'], baseModel: 'base', extra: {}, ...over });

function tensorsFor(c: LoraConfig): Map<string, Float32Array> {
  let k = 0;
  return new Map([...loraTensorShapes(model, c)].map(([name, shape]) => [name, Float32Array.from({ length: shape[0]! * shape[1]! }, () => Math.cos(++k))]));
}

function refusedWith(fn: () => unknown, code: TrainCode, message: RegExp): void {
  expectError(fn, ValidationError, code, message);
}

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'tally-adapter-'));
  dirs.push(d);
  return d;
};
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('training/adapter-format: adapter_config.json', () => {
  it('reads a PEFT file, keeping the keys it does not interpret', () => {
    const c = parseAdapterConfig(PEFT_FILE);
    expect(c).to.deep.include({ r: 4, alpha: 8, dropout: 0.05, targetModules: ['c_attn', 'c_proj'], baseModel: 'models/tally-base' });
    expect(c.extra).to.deep.include({ peft_version: '0.18.0', some_future_option: { kept: true }, megatron_core: 'megatron.core' });
  });

  it('writes every key PEFT writes, and reads back what it wrote', () => {
    const json = adapterConfigJson(parseAdapterConfig(PEFT_FILE));
    const { peft_version: _, ...peftKeys } = PEFT_FILE;
    expect(Object.keys(json)).to.include.members(Object.keys(peftKeys));
    expect(json).to.deep.include({
      peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 8, lora_dropout: 0.05, target_modules: ['c_attn', 'c_proj'],
      fan_in_fan_out: true, bias: 'none', inference_mode: true, init_lora_weights: true, modules_to_save: null,
      base_model_name_or_path: 'models/tally-base', some_future_option: { kept: true },
    });
    const fresh = adapterConfigJson(lora({ baseModel: '' }));
    expect(fresh).to.deep.include({ ...Object.fromEntries(Object.entries(peftKeys).filter(([k]) => !['base_model_name_or_path', 'lora_alpha', 'lora_dropout', 'r', 'target_modules', 'some_future_option'].includes(k))), base_model_name_or_path: null });
    expect(fresh).to.not.have.property('peft_version');
    const back = parseAdapterConfig(fresh);
    expect(back).to.deep.include({ r: 2, alpha: 4, dropout: 0, targetModules: ['c_attn'], baseModel: '' });
  });

  it('matches target modules as PEFT does: "c_proj" adapts both projections', () => {
    const targets = (t: unknown) => parseAdapterConfig({ ...PEFT_FILE, target_modules: t }).targetModules;
    expect(adaptedModules(['c_proj'])).to.deep.equal(['attn.c_proj', 'mlp.c_proj']);
    expect(adaptedModules(['attn.c_proj'])).to.deep.equal(['attn.c_proj']);
    expect(adaptedModules(['c_fc', 'c_attn', 'mlp.c_proj'])).to.deep.equal(['attn.c_attn', 'mlp.c_fc', 'mlp.c_proj']);
    expect(targets(['attn.c_proj', 'mlp.c_proj'])).to.deep.equal(['c_proj']);
    expect(targets(['c_proj', 'attn.c_proj', 'c_attn', 'c_attn'])).to.deep.equal(['c_attn', 'c_proj']);
    expect(targets(['mlp.c_proj', 'c_fc'])).to.deep.equal(['c_fc', 'mlp.c_proj']);
    expect(targets('all-linear')).to.deep.equal(['c_attn', 'c_proj', 'c_fc']);
    expect(canonicalTargets(['mlp.c_proj', 'attn.c_attn'])).to.deep.equal(['c_attn', 'mlp.c_proj']);
    expect(adapterConfigJson(lora({ targetModules: ['c_fc', 'attn.c_proj', 'mlp.c_proj'] })).target_modules).to.deep.equal(['c_proj', 'c_fc']);
  });

  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['another PEFT method', { peft_type: 'IA3' }, /"peft_type" must be "LORA", got "IA3"/],
    ['another task', { task_type: 'SEQ_CLS' }, /"task_type" must be "CAUSAL_LM"/],
    ['rank 0', { r: 0 }, /"r" must be an integer ≥ 1, got 0/],
    ['a fractional rank', { r: 2.5 }, /"r" must be an integer/],
    ['a missing rank', { r: undefined }, /"r" must be an integer/],
    ['a zero alpha', { lora_alpha: 0 }, /"lora_alpha" must be a positive number/],
    ['a dropout of 1', { lora_dropout: 1 }, /"lora_dropout" must be a number in \[0, 1\)/],
    ['fan_in_fan_out false', { fan_in_fan_out: false }, /"fan_in_fan_out" must be true/],
    ['a missing fan_in_fan_out', { fan_in_fan_out: undefined }, /"fan_in_fan_out" must be true/],
    ['trained biases', { bias: 'lora_only' }, /"bias" must be "none"/],
    ['an unknown target module', { target_modules: ['c_attn', 'q_proj'] }, /"target_modules" holds "q_proj"; GPT-2's adaptable modules are "c_attn", "c_proj", "c_fc", "attn.c_proj", "mlp.c_proj"/],
    ['a full module path', { target_modules: ['transformer.h.0.attn.c_attn'] }, /holds "transformer.h.0.attn.c_attn"/],
    ['a regular expression', { target_modules: '.*c_attn' }, /"target_modules" is the regular expression ".\*c_attn"/],
    ['no target modules', { target_modules: [] }, /"target_modules" must be a non-empty list/],
    ['DoRA', { use_dora: true }, /"use_dora" true is not supported: DoRA/],
    ['rsLoRA', { use_rslora: true }, /"use_rslora" true is not supported/],
    ['a LoRA bias', { lora_bias: true }, /"lora_bias" true is not supported/],
    ['a rank pattern', { rank_pattern: { 'h.0.attn.c_attn': 8 } }, /"rank_pattern" .* not supported: every module has rank r/],
    ['an alpha pattern', { alpha_pattern: { 'h.0.attn.c_attn': 8 } }, /"alpha_pattern" .* not supported/],
    ['selected layers', { layers_to_transform: [0] }, /"layers_to_transform" \[0\] is not supported/],
    ['replicated layers', { layer_replication: [[0, 2]] }, /"layer_replication" .* not supported/],
    ['excluded modules', { exclude_modules: ['h.0.attn.c_attn'] }, /"exclude_modules" .* not supported/],
    ['extra saved modules', { modules_to_save: ['lm_head'] }, /"modules_to_save" \["lm_head"\] is not supported/],
    ['trainable tokens', { trainable_token_indices: [1, 2] }, /"trainable_token_indices" .* not supported/],
    ['target parameters', { target_parameters: ['h.0.attn.c_attn.weight'] }, /"target_parameters" .* not supported/],
    ['PiSSA initialisation', { init_lora_weights: 'pissa' }, /"init_lora_weights" "pissa" is not supported: .* unchanged base model/],
    ['LoftQ initialisation', { init_lora_weights: 'loftq' }, /"init_lora_weights" "loftq"/],
    ['a non-string base model', { base_model_name_or_path: 3 }, /"base_model_name_or_path" must be a string or null/],
  ];
  for (const [what, change, message] of cases) {
    it(`refuses ${what}`, () => refusedWith(() => parseAdapterConfig({ ...PEFT_FILE, ...change }), 'TRAIN_ERR_BAD_ADAPTER', message));
  }

  it('accepts the neutral forms of those options', () => {
    const c = parseAdapterConfig({
      ...PEFT_FILE, task_type: null, base_model_name_or_path: null, lora_dropout: undefined, init_lora_weights: 'gaussian',
      exclude_modules: [], modules_to_save: [], rank_pattern: null, use_dora: null, bias: undefined,
    });
    expect(c).to.deep.include({ baseModel: '', dropout: 0 });
    refusedWith(() => parseAdapterConfig(null), 'TRAIN_ERR_BAD_ADAPTER', /expected a JSON object/);
  });
});

describe('training/adapter-format: tensors', () => {
  it('lists A [r, in] and B [out, r] by layer, then module in block order, then A before B', () => {
    const s = loraTensorShapes(model, lora({ r: 3, targetModules: ['c_fc', 'c_proj', 'c_attn'] }));
    const layer0 = [...s].slice(0, 8);
    expect(layer0).to.deep.equal([
      ['base_model.model.transformer.h.0.attn.c_attn.lora_A.weight', [3, 8]],
      ['base_model.model.transformer.h.0.attn.c_attn.lora_B.weight', [24, 3]],
      ['base_model.model.transformer.h.0.attn.c_proj.lora_A.weight', [3, 8]],
      ['base_model.model.transformer.h.0.attn.c_proj.lora_B.weight', [8, 3]],
      ['base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight', [3, 8]],
      ['base_model.model.transformer.h.0.mlp.c_fc.lora_B.weight', [32, 3]],
      ['base_model.model.transformer.h.0.mlp.c_proj.lora_A.weight', [3, 32]],
      ['base_model.model.transformer.h.0.mlp.c_proj.lora_B.weight', [8, 3]],
    ]);
    expect(s.size).to.equal(16);
    expect([...s.keys()][8]).to.equal('base_model.model.transformer.h.1.attn.c_attn.lora_A.weight');
    expect(loraTensorShapes(model, lora({ targetModules: ['attn.c_proj'] })).size).to.equal(4);
  });
});

describe('training/adapter-format: save and load', () => {
  it('round-trips an adapter exactly, with metadata, as PEFT lays it out', () => {
    for (const targetModules of [['c_attn'], ['c_attn', 'attn.c_proj'], ['c_proj', 'c_fc'], ['mlp.c_proj']] as LoraConfig['targetModules'][]) {
      const c = lora({ r: 3, alpha: 6, dropout: 0.1, targetModules });
      const t = tensorsFor(c);
      const dir = join(tmp(), 'adapter');
      saveAdapter(dir, c, t, { round: '3' });
      const back = loadAdapter(dir, model);
      expect(back.config).to.deep.include({ r: 3, alpha: 6, dropout: 0.1, targetModules, baseModel: 'base' });
      expect([...back.tensors.keys()]).to.deep.equal([...t.keys()]);
      for (const [name, data] of t) expect([...back.tensors.get(name)!], name).to.deep.equal([...data]);
      const st = parseSafetensors(readFileSync(join(dir, 'adapter_model.safetensors')));
      expect(st.metadata).to.deep.equal({ round: '3', format: 'pt' });
      for (const [name, shape] of loraTensorShapes(model, c)) expect(st.tensors.get(name)!.shape).to.deep.equal(shape);
      const text = readFileSync(join(dir, 'adapter_config.json'), 'utf8');
      const keys = Object.keys(JSON.parse(text) as object);
      expect(keys).to.deep.equal([...keys].sort());
    }
  });

  const c = lora({ targetModules: ['c_attn', 'c_proj'] });
  const t = tensorsFor(c);
  const A0 = 'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight';
  /** A directory with c's config and these tensors (name → [shape, data]). */
  function dirWith(list: [string, number[], Float32Array][], config: object = adapterConfigJson(c)): string {
    const dir = tmp();
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(config));
    writeFileSync(join(dir, 'adapter_model.safetensors'), encodeSafetensors(list.map(([name, shape, data]) => ({ name, shape, data }))));
    return dir;
  }
  const shapes = loraTensorShapes(model, c);
  const all = (): [string, number[], Float32Array][] => [...t].map(([name, data]) => [name, shapes.get(name)!, data]);
  const without = (name: string) => all().filter(([n]) => n !== name);
  const loads: [string, () => [string, number[], Float32Array][], RegExp][] = [
    ['a missing tensor', () => without('base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight'), /missing tensor "base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight"/],
    ['a tensor of a module not targeted', () => [...all(), ['base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight', [2, 8], new Float32Array(16)]], /unexpected tensor "base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight"/],
    ['a tensor with the adapter name', () => [...without(A0), [A0.replace('lora_A.weight', 'lora_A.default.weight'), [2, 8], new Float32Array(16)]], /unexpected tensor .*lora_A.default.weight/],
    ['a layer the model does not have', () => [...all(), ['base_model.model.transformer.h.2.attn.c_attn.lora_A.weight', [2, 8], new Float32Array(16)]], /unexpected tensor .*h\.2\./],
    ['A in Conv1D layout', () => [...without(A0), [A0, [8, 2], new Float32Array(16)]], /has shape \[8, 2\], expected \[2, 8\] \(r 2, n_embd 8\)/],
    ['a B of another rank', () => [...without(A0.replace('lora_A', 'lora_B')), [A0.replace('lora_A', 'lora_B'), [24, 3], new Float32Array(72)]], /has shape \[24, 3\], expected \[24, 2\]/],
  ];
  for (const [what, list, message] of loads) {
    it(`loadAdapter refuses ${what}`, () => refusedWith(() => loadAdapter(dirWith(list()), model), 'TRAIN_ERR_BAD_ADAPTER', message));
  }

  it('loadAdapter refuses an integer tensor, a bad config and missing files', () => {
    const dir = dirWith(all());
    const st = Buffer.from(readFileSync(join(dir, 'adapter_model.safetensors')));
    const patched = Buffer.from(st.toString('latin1').replace(`"${A0}":{"dtype":"F32"`, `"${A0}":{"dtype":"I32"`), 'latin1');
    writeFileSync(join(dir, 'adapter_model.safetensors'), patched);
    refusedWith(() => loadAdapter(dir, model), 'TRAIN_ERR_BAD_ADAPTER', /is I32; LoRA weights must be F32/);
    refusedWith(() => loadAdapter(dirWith(all(), { ...adapterConfigJson(c), use_dora: true }), model), 'TRAIN_ERR_BAD_ADAPTER', /adapter_config\.json: "use_dora" true/);
    const empty = tmp();
    refusedWith(() => loadAdapter(empty, model), 'TRAIN_ERR_BAD_ADAPTER', /cannot read .*adapter_config\.json/);
    writeFileSync(join(empty, 'adapter_config.json'), JSON.stringify(adapterConfigJson(c)));
    refusedWith(() => loadAdapter(empty, model), 'TRAIN_ERR_BAD_SAFETENSORS', /cannot read .*adapter_model\.safetensors/);
  });

  it('saveAdapter refuses tensors that do not make a whole adapter', () => {
    const dir = tmp();
    const map = (entries: Iterable<[string, Float32Array]>) => new Map(entries);
    refusedWith(() => saveAdapter(dir, c, map([...t].filter(([n]) => !n.includes('h.1.attn.c_proj.lora_A')))), 'TRAIN_ERR_BAD_ADAPTER', /missing tensor "base_model.model.transformer.h.1.attn.c_proj.lora_A.weight"/);
    refusedWith(() => saveAdapter(dir, c, map([...t, ['base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight', new Float32Array(16)]])), 'TRAIN_ERR_BAD_ADAPTER', /unexpected tensor "base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight"/);
    refusedWith(() => saveAdapter(dir, c, map([...t, ['transformer.h.0.attn.c_attn.lora_A.weight', new Float32Array(16)]])), 'TRAIN_ERR_BAD_ADAPTER', /unexpected tensor "transformer.h.0.attn.c_attn.lora_A.weight": not a PEFT LoRA tensor/);
    refusedWith(() => saveAdapter(dir, c, map([...t, [A0.replace('lora_A', 'lora_B'), new Float32Array(40)]])), 'TRAIN_ERR_BAD_ADAPTER', /lora_B.weight" must be a Float32Array of 48 values \(shape \[24, 2\]\), got 40/);
    refusedWith(() => saveAdapter(dir, c, map([...t, [A0, new Float32Array(15)]])), 'TRAIN_ERR_BAD_ADAPTER', /has 15 values, not r \(2\)/);
    refusedWith(() => saveAdapter(dir, c, new Map()), 'TRAIN_ERR_BAD_ADAPTER', /missing tensor/);
    refusedWith(() => saveAdapter(dir, { ...c, r: 0 }, t), 'TRAIN_ERR_BAD_ADAPTER', /"r" must be an integer ≥ 1/);
    refusedWith(() => saveAdapter(dir, { ...c, extra: { use_rslora: true } }, t), 'TRAIN_ERR_BAD_ADAPTER', /"use_rslora" true/);
  });
});
