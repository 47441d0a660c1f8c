import { expect } from 'chai';
import { tf } from '../../src/training/backend.js';
import { readFileSync } from 'node:fs';
import { TallyError } from '../../src/errors.js';
import { Gpt2Model, type Gpt2Shape } from '../../src/training/gpt2.js';
import { evaluate, learningRate, trainLocal } from '../../src/training/train.js';

const FIXTURE = JSON.parse(readFileSync(new URL('../../../test/fixtures/gpt2-anchor.json', import.meta.url), 'utf8')) as {
  config: Gpt2Shape; weights: Record<string, { f32: string }>;
};
const weights = new Map(Object.entries(FIXTURE.weights).map(([k, v]) => {
  const b = Buffer.from(v.f32, 'base64');
  return [k, Float32Array.from({ length: b.length / 4 }, (_, i) => b.readFloatLE(4 * i))];
}));

/** Windows of a repetitive text, which a model can learn within a few dozen steps. */
function textWindows(text: string, t: number): Uint16Array[] {
  const bytes = Buffer.from(text, 'utf8');
  const out: Uint16Array[] = [];
  for (let i = 0; i + 2 <= bytes.length; i += t) out.push(Uint16Array.from(bytes.subarray(i, i + t)));
  return out;
}

const TEXT = 'the union is strong. '.repeat(40);

describe('training/train: local LoRA training and evaluation', function () {
  this.timeout(120_000);

  it('learning rate: linear warm-up, then cosine, linear or constant', () => {
    const o = { lr: 1, warmupSteps: 4 };
    expect([0, 1, 2, 3].map((s) => learningRate(s, 20, o))).to.deep.equal([0.25, 0.5, 0.75, 1]);
    expect(learningRate(4, 20, o)).to.equal(1);
    expect(learningRate(12, 20, o)).to.be.closeTo(0.5, 1e-12);
    expect(learningRate(12, 20, { ...o, schedule: 'linear' })).to.be.closeTo(0.5, 1e-12);
    expect(learningRate(19, 20, { ...o, schedule: 'constant' })).to.equal(1);
  });

  it('one AdamW step moves every trainable weight by −lr·sign(g) − lr·wd·w (the first Adam step is the sign of the gradient)', () => {
    const m = new Gpt2Model(FIXTURE.config, weights, { r: 2, alpha: 4, targets: ['c_attn'], seed: 'adamw' });
    try {
      const windows = textWindows(TEXT, 16).slice(0, 4);
      // Give B non-zero values, so both A and B have gradients.
      const init = m.adapterWeights();
      for (const [k, v] of init) if (k.includes('lora_B')) v.forEach((_, i) => { v[i] = ((i * 7919) % 13 - 6) / 50; });
      m.setAdapterWeights(init);
      const vars = m.trainable();
      const before = vars.map((v) => v.dataSync().slice());
      const ids = tf.tensor2d(windows.flatMap((w) => [...w]), [4, 16], 'int32');
      const { grads } = tf.variableGrads(() => m.loss(ids, [16, 16, 16, 16], false), vars);
      const g = vars.map((v) => grads[v.name]!.dataSync().slice());
      tf.dispose([ids, ...Object.values(grads)]);
      const lr = 0.01, wd = 0.1;
      const r = trainLocal(m, windows, { steps: 1, batchSize: 4, lr, weightDecay: wd, schedule: 'constant', seed: 'x' });
      let checked = 0;
      r.layout.forEach((e, i) => {
        for (let j = 0; j < g[i]!.length; j++) {
          if (Math.abs(g[i]![j]!) < 1e-3) continue; // Adam's ε (1e-8) matters only near 0
          const want = -lr * Math.sign(g[i]![j]!) - lr * wd * before[i]![j]!;
          expect(r.delta[e.offset + j]).to.be.closeTo(want, 2e-4 * lr);
          checked++;
        }
      });
      expect(checked).to.be.above(100);
    } finally {
      m.dispose();
    }
  });

  it('training lowers the loss on a site\'s text; the delta is after − before in the documented layout, and reproducible', () => {
    const windows = textWindows(TEXT, 16);
    const run = (): { r: ReturnType<typeof trainLocal>; before: number; after: number; weights: Map<string, Float32Array> } => {
      const m = new Gpt2Model(FIXTURE.config, weights, { r: 4, alpha: 8, targets: ['c_attn', 'attn.c_proj', 'c_fc'], seed: 'lower' });
      try {
        const start = m.adapterWeights();
        const before = evaluate(m, windows).loss;
        const r = trainLocal(m, windows, { steps: 40, batchSize: 8, lr: 0.02, warmupSteps: 4, clipNorm: 1, seed: 'order' });
        const after = evaluate(m, windows).loss;
        const end = m.adapterWeights();
        for (const e of r.layout) {
          const s = start.get(e.name)!, f = end.get(e.name)!;
          for (let j = 0; j < s.length; j++) expect(r.delta[e.offset + j]).to.be.closeTo(f[j]! - s[j]!, 1e-6);
        }
        return { r, before, after, weights: end };
      } finally {
        m.dispose();
      }
    };
    const a = run();
    expect(a.after).to.be.below(a.before * 0.7);
    expect(a.r.steps).to.equal(40);
    expect(a.r.examples).to.equal(windows.length);
    expect(a.r.layout.map((e) => e.offset)).to.deep.equal(a.r.layout.reduce<number[]>((acc, e, i) => [...acc, i === 0 ? 0 : acc[i - 1]! + a.r.layout[i - 1]!.shape.reduce((x, y) => x * y, 1)], []));
    expect(a.r.delta.length).to.equal(a.r.layout.reduce((n, e) => n + e.shape.reduce((x, y) => x * y, 1), 0));
    const b = run();
    expect([...b.r.delta]).to.deep.equal([...a.r.delta]);
  });

  it('FFA-LoRA trains only B: A is not in the delta and does not move', () => {
    const m = new Gpt2Model(FIXTURE.config, weights, { r: 2, alpha: 4, seed: 'ffa', freezeA: true });
    try {
      const start = m.adapterWeights();
      const r = trainLocal(m, textWindows(TEXT, 16), { steps: 5, batchSize: 4, lr: 0.02, seed: 'ffa' });
      expect(r.layout.every((e) => e.name.endsWith('lora_B.weight'))).to.equal(true);
      for (const [k, v] of m.adapterWeights()) if (k.endsWith('lora_A.weight')) expect([...v]).to.deep.equal([...start.get(k)!]);
      expect(r.delta.some((x) => x !== 0)).to.equal(true);
    } finally {
      m.dispose();
    }
  });

  /** A model whose B is non-zero (both A and B have gradients), and its full-batch gradient in the delta layout. */
  const withB = (seed: string): Gpt2Model => {
    const m = new Gpt2Model(FIXTURE.config, weights, { r: 2, alpha: 4, targets: ['c_attn'], seed });
    const init = m.adapterWeights();
    for (const [k, v] of init) if (k.includes('lora_B')) v.forEach((_, i) => { v[i] = ((i * 7919) % 13 - 6) / 50; });
    m.setAdapterWeights(init);
    return m;
  };
  const gradientOf = (m: Gpt2Model, windows: readonly Uint16Array[]): Float32Array => tf.tidy(() => {
    const t = windows[0]!.length;
    const ids = tf.tensor2d(windows.flatMap((w) => [...w]), [windows.length, t], 'int32');
    const vars = m.trainable();
    const { grads } = tf.variableGrads(() => m.loss(ids), vars);
    return Float32Array.from(vars.flatMap((v) => [...grads[v.name]!.dataSync()]));
  });
  const maxAbs = (x: ArrayLike<number>): number => Array.from(x).reduce((s, v) => Math.max(s, Math.abs(v)), 0);
  const norm = (x: ArrayLike<number>): number => Math.sqrt(Array.from(x).reduce((s, v) => s + v * v, 0));
  /** Runs trainLocal on a fresh withB(seed) model. */
  const trained = (seed: string, windows: readonly Uint16Array[], o: Parameters<typeof trainLocal>[2]): ReturnType<typeof trainLocal> => {
    const m = withB(seed);
    try {
      return trainLocal(m, windows, o);
    } finally {
      m.dispose();
    }
  };

  it('SGD: one step moves the weights by −lr·g − lr·wd·w; momentum accumulates u ← m·u + g', () => {
    const windows = textWindows(TEXT, 16).slice(0, 4);
    const m = withB('sgd');
    try {
      const before = Float32Array.from(m.trainable().flatMap((v) => [...v.dataSync()]));
      const g = gradientOf(m, windows);
      const lr = 0.05, wd = 0.1;
      const r = trainLocal(m, windows, { steps: 1, batchSize: 4, lr, weightDecay: wd, optimizer: 'sgd', schedule: 'constant', seed: 'x' });
      const want = g.map((x, j) => -lr * x - lr * wd * before[j]!);
      expect(maxAbs(r.delta.map((x, j) => x - want[j]!))).to.be.below(1e-3 * maxAbs(want));
    } finally {
      m.dispose();
    }
    // Momentum against the same loop written out: the whole data set is every step's batch.
    const ref = withB('momentum');
    try {
      const vars = ref.trainable();
      const start = Float32Array.from(vars.flatMap((v) => [...v.dataSync()]));
      let u = new Float32Array(start.length);
      const w = Float32Array.from(start);
      for (let s = 0; s < 3; s++) {
        const g = gradientOf(ref, windows);
        u = u.map((x, j) => 0.9 * x + g[j]!);
        u.forEach((x, j) => { w[j]! -= 0.05 * x; });
        let o = 0;
        for (const v of vars) { const part = w.slice(o, o + v.size); o += v.size; tf.tidy(() => v.assign(tf.tensor(part, v.shape))); }
      }
      const r = trained('momentum', windows, { steps: 3, batchSize: 4, lr: 0.05, optimizer: 'sgd', momentum: 0.9, schedule: 'constant', seed: 'x' });
      const want = w.map((x, j) => x - start[j]!);
      expect(maxAbs(r.delta.map((x, j) => x - want[j]!))).to.be.below(1e-3 * maxAbs(want));
    } finally {
      ref.dispose();
    }
  });

  it('FedProx: μ = 0 is no option at all; a large μ pulls the delta toward zero', () => {
    const windows = textWindows(TEXT, 16);
    for (const optimizer of ['adamw', 'sgd'] as const) {
      const o = { steps: 6, batchSize: 4, lr: optimizer === 'sgd' ? 0.1 : 0.01, optimizer, seed: 'prox' };
      const none = trained('prox', windows, o);
      const zero = trained('prox', windows, { ...o, proximalMu: 0 });
      const strong = trained('prox', windows, { ...o, proximalMu: 5 });
      expect([...zero.delta]).to.deep.equal([...none.delta]);
      expect(norm(strong.delta)).to.be.below(0.7 * norm(none.delta));
    }
    // The first step is the plain one: at w_start the proximal gradient μ(w − w_start) is 0.
    const one = { steps: 1, batchSize: 4, lr: 0.1, optimizer: 'sgd' as const, seed: 'prox' };
    expect([...trained('prox', windows, { ...one, proximalMu: 5 }).delta]).to.deep.equal([...trained('prox', windows, one).delta]);
  });

  it('SCAFFOLD: c = c_i = 0 is plain SGD; controlDelta is −c + (w_start − w_end)/(K·η̄)', () => {
    const windows = textWindows(TEXT, 16);
    const o = { steps: 4, batchSize: 4, lr: 0.1, optimizer: 'sgd' as const, warmupSteps: 1, seed: 'scaffold' };
    const plain = trained('scaffold', windows, o);
    const n = plain.delta.length;
    const zero = trained('scaffold', windows, { ...o, control: { global: new Float32Array(n), local: new Float32Array(n) } });
    expect(zero.delta.every((x, j) => x === plain.delta[j])).to.equal(true);
    expect(plain.controlDelta).to.equal(undefined);
    // Non-zero controls: each step moves by −η(g − c_i + c), and c_i⁺ − c_i = −c − Δ/(Σ η).
    const global = Float32Array.from({ length: n }, (_, j) => Math.sin(j) / 100);
    const local = Float32Array.from({ length: n }, (_, j) => Math.cos(3 * j) / 100);
    const r = trained('scaffold', windows, { ...o, control: { global, local } });
    const lrs = [0, 1, 2, 3].map((s) => learningRate(s, 4, o));
    const k = lrs.reduce((a, b) => a + b, 0);
    expect(k / 4).to.be.below(0.1); // the schedule's mean, not its peak
    const want = r.delta.map((d, j) => -global[j]! - d / k);
    expect(maxAbs(r.controlDelta!.map((x, j) => x - want[j]!))).to.be.below(1e-5 * maxAbs(want));
    // After one step at a constant rate, c_i⁺ = c_i + controlDelta is that batch's gradient at w_start.
    const m = withB('scaffold');
    try {
      const batch = textWindows(TEXT, 16).slice(0, 4);
      const g = gradientOf(m, batch);
      const one = trainLocal(m, batch, { steps: 1, batchSize: 4, lr: 0.1, optimizer: 'sgd', schedule: 'constant', seed: 'x', control: { global, local } });
      const ci = one.controlDelta!.map((x, j) => x + local[j]!);
      expect(maxAbs(ci.map((x, j) => x - g[j]!))).to.be.below(2e-3 * maxAbs(g));
    } finally {
      m.dispose();
    }
  });

  it('refuses contradictory optimiser options with typed errors that say why', () => {
    const m = withB('refuse');
    try {
      const windows = textWindows(TEXT, 16).slice(0, 4);
      const n = m.trainable().reduce((s, v) => s + v.size, 0);
      const ok = { global: new Float32Array(n), local: new Float32Array(n) };
      const base = { steps: 1, batchSize: 4, lr: 0.01, seed: 's' };
      const error = (f: () => unknown): TallyError | undefined => { try { f(); return undefined; } catch (e) { return e as TallyError; } };
      const scaffoldAdam = error(() => trainLocal(m, windows, { ...base, control: ok }));
      expect(scaffoldAdam?.code).to.equal('TRAIN_ERR_BAD_PARAM');
      expect(scaffoldAdam?.message).to.match(/sgd/).and.match(/SCAFFOLD/);
      expect(error(() => trainLocal(m, windows, { ...base, optimizer: 'sgd', momentum: 0.9, control: ok }))?.code).to.equal('TRAIN_ERR_BAD_PARAM');
      expect(error(() => trainLocal(m, windows, { ...base, optimizer: 'sgd', control: { ...ok, local: new Float32Array(n - 1) } }))?.message).to.match(/control\.local has/);
      expect(error(() => trainLocal(m, windows, { ...base, optimizer: 'sgd', control: { ...ok, global: new Float32Array(n).fill(NaN) } }))?.code).to.equal('TRAIN_ERR_BAD_PARAM');
      expect(error(() => trainLocal(m, windows, { ...base, momentum: 0.5 }))?.code).to.equal('TRAIN_ERR_BAD_PARAM');
      expect(error(() => trainLocal(m, windows, { ...base, optimizer: 'sgd', momentum: 1 }))?.code).to.equal('TRAIN_ERR_BAD_PARAM');
      expect(error(() => trainLocal(m, windows, { ...base, proximalMu: -1 }))?.code).to.equal('TRAIN_ERR_BAD_PARAM');
      expect(error(() => trainLocal(m, windows, { ...base, optimizer: 'adam' as 'adamw' }))?.code).to.equal('TRAIN_ERR_BAD_PARAM');
      // Options that hold tensors across steps leave none behind.
      const o = { ...base, optimizer: 'sgd' as const, momentum: 0.5, proximalMu: 1 };
      trainLocal(m, windows, o);
      const count = tf.memory().numTensors;
      trainLocal(m, windows, { ...o, steps: 3 });
      trainLocal(m, windows, { ...base, optimizer: 'sgd', proximalMu: 1, control: ok, steps: 2 });
      expect(tf.memory().numTensors).to.equal(count);
    } finally {
      m.dispose();
    }
  });

  it('evaluation: mean cross-entropy over every predicted token, and its perplexity', () => {
    const m = new Gpt2Model(FIXTURE.config, weights);
    try {
      const w = [Uint16Array.of(1, 2, 3, 4, 5, 6, 7, 8), Uint16Array.of(9, 10, 11)];
      const e = evaluate(m, w, 1);
      expect(e.tokens).to.equal(7 + 2);
      const one = (x: Uint16Array) => tf.tidy(() => m.loss(tf.tensor2d([[...x]], undefined, 'int32')).dataSync()[0]!);
      expect(e.loss).to.be.closeTo((one(w[0]!) * 7 + one(w[1]!) * 2) / 9, 1e-6);
      expect(e.perplexity).to.be.closeTo(Math.exp(e.loss), 1e-9);
      expect(evaluate(m, w, 16).loss).to.be.closeTo(e.loss, 1e-6);
    } finally {
      m.dispose();
    }
  });

  it('leaves no tensor behind, and refuses bad options and windows with typed errors', () => {
    const m = new Gpt2Model(FIXTURE.config, weights, { r: 2, alpha: 4, seed: 'leak' });
    const plain = new Gpt2Model(FIXTURE.config, weights);
    try {
      const windows = textWindows(TEXT, 16).slice(0, 8);
      trainLocal(m, windows, { steps: 1, batchSize: 4, lr: 0.01, seed: 's' });
      const n = tf.memory().numTensors;
      trainLocal(m, windows, { steps: 3, batchSize: 4, lr: 0.01, seed: 's' });
      evaluate(m, windows);
      expect(tf.memory().numTensors).to.equal(n);
      const code = (f: () => unknown): string => { try { f(); return 'ok'; } catch (e) { return (e as TallyError).code; } };
      expect(code(() => trainLocal(plain, windows, { steps: 1, batchSize: 4, lr: 0.01, seed: 's' }))).to.equal('TRAIN_ERR_BAD_PARAM');
      expect(code(() => trainLocal(m, windows, { steps: 1, batchSize: 0, lr: 0.01, seed: 's' }))).to.equal('TRAIN_ERR_BAD_PARAM');
      expect(code(() => trainLocal(m, windows, { steps: 1, batchSize: 4, lr: -1, seed: 's' }))).to.equal('TRAIN_ERR_BAD_PARAM');
      expect(code(() => trainLocal(m, [], { steps: 1, batchSize: 4, lr: 0.01, seed: 's' }))).to.equal('TRAIN_ERR_BAD_DATA');
      expect(code(() => trainLocal(m, [Uint16Array.of(1)], { steps: 1, batchSize: 4, lr: 0.01, seed: 's' }))).to.equal('TRAIN_ERR_BAD_DATA');
      expect(code(() => evaluate(m, [new Uint16Array(17)]))).to.equal('TRAIN_ERR_BAD_DATA');
      expect(code(() => evaluate(m, [Uint16Array.of(1, 300)]))).to.equal('TRAIN_ERR_BAD_DATA');
    } finally {
      m.dispose();
      plain.dispose();
    }
  });
});
