/**
 * The GPT-2 forward pass, loss and LoRA gradients against PyTorch: a tiny
 * model whose weights, adapter and outputs scripts/gpt2-anchor.py wrote with
 * an independent PyTorch implementation (test/fixtures/gpt2-anchor.json).
 */
import { expect } from 'chai';
import { tf } from '../../src/training/backend.js';
import { readFileSync } from 'node:fs';
import { TallyError } from '../../src/errors.js';
import { Gpt2Model, initGpt2Weights, loraNames, type Gpt2Shape } from '../../src/training/gpt2.js';
import { trainLocal } from '../../src/training/train.js';

interface Fixture {
  config: Gpt2Shape;
  lora: { r: number; alpha: number; targets: ('c_attn' | 'attn.c_proj')[] };
  weights: Record<string, { shape: number[]; f32: string }>;
  adapter: Record<string, { shape: number[]; f32: string }>;
  ids: number[][];
  base: { logits: string; loss: number };
  withLora: { logits: string; loss: number; grads: Record<string, string> };
}

const FIXTURE = JSON.parse(readFileSync(new URL('../../../test/fixtures/gpt2-anchor.json', import.meta.url), 'utf8')) as Fixture;

function f32(b64: string): Float32Array {
  const b = Buffer.from(b64, 'base64');
  const out = new Float32Array(b.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = b.readFloatLE(4 * i);
  return out;
}

const weights = new Map(Object.entries(FIXTURE.weights).map(([k, v]) => [k, f32(v.f32)]));
const adapter = new Map(Object.entries(FIXTURE.adapter).map(([k, v]) => [k, f32(v.f32)]));

/** Largest |a − b| over two arrays of equal length. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).to.equal(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('training/gpt2: the model against PyTorch', function () {
  this.timeout(60_000);
  const ids = () => tf.tensor2d(FIXTURE.ids, undefined, 'int32');

  it('base model: logits and loss equal PyTorch\'s', () => {
    const m = new Gpt2Model(FIXTURE.config, weights);
    try {
      const x = ids();
      const logits = m.logits(x);
      expect(maxDiff(logits.dataSync(), f32(FIXTURE.base.logits))).to.be.below(1e-4);
      const loss = m.loss(x).dataSync()[0]!;
      expect(Math.abs(loss - FIXTURE.base.loss) / FIXTURE.base.loss).to.be.below(1e-5);
      tf.dispose([x, logits]);
    } finally {
      m.dispose();
    }
  });

  it('with a LoRA adapter on c_attn and c_proj: logits, loss and the adapter\'s gradients equal PyTorch\'s', () => {
    const m = new Gpt2Model(FIXTURE.config, weights, { r: FIXTURE.lora.r, alpha: FIXTURE.lora.alpha, targets: FIXTURE.lora.targets, weights: adapter });
    try {
      const x = ids();
      const logits = m.logits(x);
      expect(maxDiff(logits.dataSync(), f32(FIXTURE.withLora.logits))).to.be.below(1e-4);
      const vars = m.trainable();
      const names = m.trainableNames();
      const { value, grads } = tf.variableGrads(() => m.loss(x), vars);
      expect(Math.abs(value.dataSync()[0]! - FIXTURE.withLora.loss) / FIXTURE.withLora.loss).to.be.below(1e-5);
      expect([...names].sort()).to.deep.equal(Object.keys(FIXTURE.withLora.grads).sort());
      for (const [i, v] of vars.entries()) {
        const name = names[i]!, g = grads[v.name]!;
        const want = f32(FIXTURE.withLora.grads[name]!);
        const scale = Math.max(...want.map(Math.abs));
        expect(maxDiff(g.dataSync(), want) / scale, name).to.be.below(1e-4);
      }
      tf.dispose([x, logits, value, ...Object.values(grads)]);
    } finally {
      m.dispose();
    }
  });

  it('a fresh adapter (B = 0) leaves the logits unchanged; A is Kaiming-uniform within ±1/√in and seeded', () => {
    const base = new Gpt2Model(FIXTURE.config, weights);
    // PEFT's suffix matching: "c_proj" adapts both attn.c_proj and mlp.c_proj.
    const m = new Gpt2Model(FIXTURE.config, weights, { r: 4, alpha: 8, targets: ['c_attn', 'c_proj', 'c_fc'], seed: 's' });
    const again = new Gpt2Model(FIXTURE.config, weights, { r: 4, alpha: 8, targets: ['c_attn', 'c_proj', 'c_fc'], seed: 's' });
    try {
      const x = ids();
      const a = base.logits(x), b = m.logits(x);
      expect(maxDiff(a.dataSync(), b.dataSync())).to.equal(0);
      const w = m.adapterWeights();
      expect(w.size).to.equal(2 * 4 * FIXTURE.config.n_layer);
      const e = FIXTURE.config.n_embd;
      for (const [target, inDim] of [['attn.c_attn', e], ['attn.c_proj', e], ['mlp.c_fc', e], ['mlp.c_proj', 4 * e]] as const) {
        const { a: an, b: bn } = loraNames(0, target);
        const av = w.get(an)!;
        expect(av.length).to.equal(4 * inDim);
        expect(Math.max(...av.map(Math.abs))).to.be.at.most(1 / Math.sqrt(inDim));
        expect(Math.max(...av.map(Math.abs))).to.be.above(0.5 / Math.sqrt(inDim));
        expect(w.get(bn)!.every((v) => v === 0)).to.equal(true);
      }
      expect(maxDiff(w.get(loraNames(1, 'mlp.c_fc').a)!, again.adapterWeights().get(loraNames(1, 'mlp.c_fc').a)!)).to.equal(0);
      tf.dispose([x, a, b]);
    } finally {
      base.dispose(); m.dispose(); again.dispose();
    }
  });

  it('PEFT\'s merged weights (W + (α/r)·AᵀBᵀ for a Conv1D) give the LoRA model\'s logits', () => {
    const { r, alpha, targets } = FIXTURE.lora;
    const merged = new Map(weights);
    const e = FIXTURE.config.n_embd;
    for (let i = 0; i < FIXTURE.config.n_layer; i++) {
      for (const t of ['attn.c_attn', 'attn.c_proj'] as const) {
        const out = t === 'attn.c_attn' ? 3 * e : e;
        const { a: an, b: bn } = loraNames(i, t);
        const A = adapter.get(an)!, B = adapter.get(bn)!; // [r, in], [out, r]
        const name = `transformer.h.${i}.${t}.weight`;
        const W = Float32Array.from(weights.get(name)!); // [in, out]
        for (let p = 0; p < e; p++) {
          for (let q = 0; q < out; q++) {
            let s = 0;
            for (let k = 0; k < r; k++) s += A[k * e + p]! * B[q * r + k]!;
            W[p * out + q] += (alpha / r) * s;
          }
        }
        merged.set(name, W);
      }
    }
    const lora = new Gpt2Model(FIXTURE.config, weights, { r, alpha, targets, weights: adapter });
    const plain = new Gpt2Model(FIXTURE.config, merged);
    try {
      const x = ids();
      const a = lora.logits(x), b = plain.logits(x);
      expect(maxDiff(a.dataSync(), b.dataSync())).to.be.below(1e-4);
      tf.dispose([x, a, b]);
    } finally {
      lora.dispose(); plain.dispose();
    }
  });

  it('keeps the number of live tensors flat across steps, and frees everything on dispose', () => {
    const before = tf.memory().numTensors;
    const m = new Gpt2Model(FIXTURE.config, weights, { r: 2, alpha: 4, seed: 'flat' });
    const opt = tf.train.adam(1e-2);
    const x = ids();
    const counts: number[] = [];
    for (let s = 0; s < 5; s++) {
      const loss = opt.minimize(() => m.loss(x, undefined, true), true, m.trainable())!;
      loss.dispose();
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts.slice(1)).size, counts.join(',')).to.equal(1);
    x.dispose();
    opt.dispose();
    m.dispose();
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('counts only real tokens when windows are padded', () => {
    const m = new Gpt2Model(FIXTURE.config, weights);
    try {
      const full = tf.tensor2d([FIXTURE.ids[0]!.slice(0, 6)], undefined, 'int32');
      const padded = tf.tensor2d([[...FIXTURE.ids[0]!.slice(0, 6), 0, 0, 0]], undefined, 'int32');
      const a = m.loss(full).dataSync()[0]!, b = m.loss(padded, [6]).dataSync()[0]!;
      expect(Math.abs(a - b)).to.be.below(1e-6);
      tf.dispose([full, padded]);
    } finally {
      m.dispose();
    }
  });

  it('refuses a missing or mis-shaped tensor and bad LoRA options with typed errors', () => {
    const code = (f: () => unknown): string => { try { f(); return 'ok'; } catch (e) { return (e as TallyError).code; } };
    const without = new Map(weights); without.delete('transformer.h.1.mlp.c_fc.bias');
    expect(code(() => new Gpt2Model(FIXTURE.config, without))).to.equal('TRAIN_ERR_BAD_CHECKPOINT');
    const wrong = new Map(weights); wrong.set('transformer.ln_f.weight', new Float32Array(3));
    expect(code(() => new Gpt2Model(FIXTURE.config, wrong))).to.equal('TRAIN_ERR_BAD_CHECKPOINT');
    expect(code(() => new Gpt2Model(FIXTURE.config, weights, { r: 0, alpha: 1 }))).to.equal('TRAIN_ERR_BAD_PARAM');
    expect(code(() => new Gpt2Model(FIXTURE.config, weights, { r: 2, alpha: 1, dropout: 1 }))).to.equal('TRAIN_ERR_BAD_PARAM');
    const bad = new Map(adapter); bad.set(loraNames(0, 'attn.c_attn').a, new Float32Array(5));
    expect(code(() => new Gpt2Model(FIXTURE.config, weights, { r: 4, alpha: 8, targets: ['c_attn', 'attn.c_proj'], weights: bad }))).to.equal('TRAIN_ERR_BAD_ADAPTER');
  });

  it('fresh weights follow GPT-2\'s initialisation, seeded; with trainBase the base weights are what trains', () => {
    const shape = FIXTURE.config;
    const w = initGpt2Weights(shape, 'init');
    const std = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
    expect(std(w.get('transformer.wte.weight')!)).to.be.closeTo(0.02, 0.002);
    expect(std(w.get('transformer.h.0.mlp.c_fc.weight')!)).to.be.closeTo(0.02, 0.002);
    expect(std(w.get('transformer.h.1.mlp.c_proj.weight')!)).to.be.closeTo(0.02 / Math.sqrt(2 * shape.n_layer), 0.002);
    expect([...w.get('transformer.ln_f.weight')!].every((v) => v === 1)).to.equal(true);
    expect([...w.get('transformer.h.0.attn.c_attn.bias')!].every((v) => v === 0)).to.equal(true);
    expect([...initGpt2Weights(shape, 'init').get('transformer.wpe.weight')!]).to.deep.equal([...w.get('transformer.wpe.weight')!]);
    const m = new Gpt2Model(shape, w, undefined, { trainBase: true });
    try {
      expect(m.trainableNames()).to.include('transformer.wte.weight');
      expect(m.trainable().length).to.equal(w.size);
      const text = Buffer.from('pre-training learns bytes. '.repeat(30));
      const windows = Array.from({ length: Math.floor(text.length / 16) }, (_, i) => Uint16Array.from(text.subarray(16 * i, 16 * i + 16)));
      const r = trainLocal(m, windows, { steps: 30, batchSize: 8, lr: 0.01, seed: 'pre' });
      expect(r.losses[29]!).to.be.below(r.losses[0]! * 0.6);
      const after = m.baseWeights().get('transformer.wte.weight')!;
      expect(after.some((v, i) => v !== w.get('transformer.wte.weight')![i])).to.equal(true);
    } finally {
      m.dispose();
    }
  });
});
