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
