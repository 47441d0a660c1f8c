import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { epsilonOf } from '../../src/dp/accounting.js';
import { sampledGaussian } from '../../src/dp/events.js';
import type { TallyError } from '../../src/errors.js';
import { tf } from '../../src/training/backend.js';
import { Gpt2Model, type Gpt2Shape, type LoraOptions } from '../../src/training/gpt2.js';
import { perExampleGradients, trainLocal } from '../../src/training/train.js';

const FIXTURE = JSON.parse(readFileSync(new URL('../../../test/fixtures/gpt2-anchor.json', import.meta.url), 'utf8')) as {
  config: Gpt2Shape; weights: Record<string, { f32: string }>;
};
const weights = new Map(Object.entries(FIXTURE.weights).map(([k, v]) => {
  const b = Buffer.from(v.f32, 'base64');
  return [k, Float32Array.from({ length: b.length / 4 }, (_, i) => b.readFloatLE(4 * i))];
}));

const TEXT = Buffer.from('the union is strong, and the state of the union is sound. '.repeat(8), 'utf8');
/** `n` windows of `t` bytes of the text, starting `stride` bytes apart. */
const windowsOf = (n: number, t: number, stride = 7): Uint16Array[] =>
  Array.from({ length: n }, (_, i) => Uint16Array.from(TEXT.subarray(i * stride, i * stride + t)));

/** A LoRA model whose B is non-zero, so that A and B both have gradients. */
function model(lora: Partial<LoraOptions> = {}): Gpt2Model {
  const m = new Gpt2Model(FIXTURE.config, weights, { r: 2, alpha: 4, targets: ['c_attn', 'mlp.c_proj'], seed: 'dpsgd', ...lora });
  const init = m.adapterWeights();
  for (const [k, v] of init) if (k.includes('lora_B')) v.forEach((_, i) => { v[i] = ((i * 7919) % 13 - 6) / 50; });
  m.setAdapterWeights(init);
  return m;
}

/** Example i's gradient alone: the ordinary backward pass on a batch of one window. */
function oneAtATime(m: Gpt2Model, w: Uint16Array): Float32Array {
  const vars = m.trainable();
  return tf.tidy(() => {
    const ids = tf.tensor2d([...w], [1, w.length], 'int32');
    const { grads } = tf.variableGrads(() => m.loss(ids), vars);
    const parts = vars.map((v) => grads[v.name]!.dataSync());
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  });
}

const norm = (x: ArrayLike<number>): number => Math.sqrt(Array.from(x).reduce((s, v) => s + v * v, 0));
const maxAbs = (x: ArrayLike<number>): number => Array.from(x).reduce((s, v) => Math.max(s, Math.abs(v)), 0);

describe('training/train: DP-SGD with per-example clipping', function () {
  this.timeout(120_000);

  it('per-example gradients from one vectorised pass equal the gradients taken one window at a time', () => {
    for (const freezeA of [false, true]) {
      const m = model({ freezeA });
      try {
        // Windows of unequal length: the shorter ones are padded in the batch.
        const windows = [...windowsOf(4, 16), Uint16Array.from(TEXT.subarray(3, 12)), Uint16Array.from(TEXT.subarray(40, 43))];
        const per = perExampleGradients(m, windows);
        expect(per).to.have.length(windows.length);
        windows.forEach((w, i) => {
          const want = oneAtATime(m, w);
          expect(per[i]!.length).to.equal(want.length);
          expect(maxAbs(want)).to.be.above(1e-4);
          const err = maxAbs(per[i]!.map((x, j) => x - want[j]!));
          expect(err / maxAbs(want), `window ${i}, freezeA ${freezeA}`).to.be.below(1e-5);
        });
      } finally {
        m.dispose();
      }
    }
  });

  it('clipping bounds each example\'s contribution: with a small clip the step is −η·(C/B)·Σ gᵢ/‖gᵢ‖', () => {
    const m = model();
    try {
      const windows = windowsOf(4, 16);
      const per = perExampleGradients(m, windows);
      const clip = 1e-2, lr = 1;
      for (const g of per) expect(norm(g)).to.be.above(5 * clip);
      const r = trainLocal(m, windows, { steps: 1, batchSize: 4, lr, optimizer: 'sgd', schedule: 'constant', seed: 's', dpSgd: { clip, noiseMultiplier: 0 } });
      expect(r.clippedExamples).to.equal(4);
      const want = new Float64Array(r.delta.length);
      for (const g of per) { const n = norm(g); g.forEach((x, j) => { want[j]! -= (lr * clip * x) / (n * 4); }); }
      expect(maxAbs(r.delta.map((x, j) => x - want[j]!))).to.be.below(1e-4 * maxAbs(want));
      // The triangle inequality: no step is longer than η·C.
      expect(norm(r.delta)).to.be.at.most(lr * clip * (1 + 1e-4));
    } finally {
      m.dispose();
    }
  });

  it('with no noise and a clip nothing reaches, the step is plain SGD\'s on the mean gradient', () => {
    const windows = windowsOf(6, 16);
    const run = (dp: boolean): ReturnType<typeof trainLocal> => {
      const m = model();
      try {
        return trainLocal(m, windows, { steps: 3, batchSize: 3, lr: 0.1, optimizer: 'sgd', momentum: 0.5, seed: 'same', ...(dp ? { dpSgd: { clip: 1e6, noiseMultiplier: 0 } } : {}) });
      } finally {
        m.dispose();
      }
    };
    const plain = run(false), dp = run(true);
    expect(dp.clippedExamples).to.equal(0);
    expect(maxAbs(plain.delta)).to.be.above(1e-4);
    expect(maxAbs(dp.delta.map((x, j) => x - plain.delta[j]!))).to.be.below(1e-5 * maxAbs(plain.delta));
    dp.losses.forEach((l, i) => expect(l).to.be.closeTo(plain.losses[i]!, 1e-5));
  });

  it('adds N(0, (zC)²) per coordinate from the injected rng, and reports the run\'s DP event', () => {
    const windows = windowsOf(8, 16);
    const clip = 0.01, z = 2, lr = 1, batchSize = 2, steps = 3;
    const run = (noiseMultiplier: number, seed: string): ReturnType<typeof trainLocal> => {
      const m = model();
      try {
        return trainLocal(m, windows, { steps, batchSize, lr, optimizer: 'sgd', schedule: 'constant', seed: 'order', dpSgd: { clip, noiseMultiplier }, rng: new DeterministicRng(seed) });
      } finally {
        m.dispose();
      }
    };
    const a = run(z, 'noise'), b = run(z, 'noise'), c = run(z, 'other'), quiet = run(0, 'noise');
    expect([...a.delta]).to.deep.equal([...b.delta]);
    expect([...a.delta]).to.not.deep.equal([...c.delta]);
    // The noise of the update: Σ over 3 steps of η·N(0, (zC)²)/B per coordinate (the
    // noise does not depend on the weights, and these steps' gradients hardly move them).
    const diff = Array.from(a.delta, (x, j) => x - quiet.delta[j]!);
    const std = Math.sqrt(diff.reduce((s, v) => s + v * v, 0) / diff.length);
    const want = (lr * z * clip * Math.sqrt(steps)) / batchSize;
    expect(diff.length).to.be.above(400);
    expect(std / want).to.be.within(0.85, 1.15);
    expect(a.dpEvent).to.deep.equal(sampledGaussian(z, batchSize / windows.length, steps));
    expect(epsilonOf([a.dpEvent!], 1e-5)).to.be.within(0, 10);
    // The sampling rate is the batch over the windows, capped at 1.
    const m = model();
    try {
      const r = trainLocal(m, windows.slice(0, 2), { steps: 1, batchSize: 4, lr, optimizer: 'sgd', seed: 's', dpSgd: { clip, noiseMultiplier: 1 }, rng: new DeterministicRng('q') });
      expect(r.dpEvent).to.deep.equal(sampledGaussian(1, 1, 1));
      expect(trainLocal(m, windows, { steps: 1, batchSize: 2, lr, seed: 's' }).dpEvent).to.equal(undefined);
    } finally {
      m.dispose();
    }
  });

  it('leaves no tensor behind across steps, and refuses bad DP options with typed errors', () => {
    const m = model({ dropout: 0.1 });
    const base = new Gpt2Model(FIXTURE.config, weights, undefined, { trainBase: true });
    try {
      const windows = windowsOf(6, 16);
      const o = { batchSize: 3, lr: 0.01, seed: 's', dpSgd: { clip: 1, noiseMultiplier: 1 }, rng: new DeterministicRng('leak') };
      trainLocal(m, windows, { ...o, steps: 1 });
      const n = tf.memory().numTensors;
      trainLocal(m, windows, { ...o, steps: 3 });
      expect(tf.memory().numTensors).to.equal(n);
      perExampleGradients(m, windows);
      expect(tf.memory().numTensors).to.equal(n);
      const code = (f: () => unknown): string => { try { f(); return 'ok'; } catch (e) { return (e as TallyError).code; } };
      expect(code(() => trainLocal(m, windows, { ...o, steps: 1, dpSgd: { clip: 0, noiseMultiplier: 1 } }))).to.equal('TRAIN_ERR_BAD_PARAM');
      expect(code(() => trainLocal(m, windows, { ...o, steps: 1, dpSgd: { clip: 1, noiseMultiplier: -1 } }))).to.equal('TRAIN_ERR_BAD_PARAM');
      expect(code(() => trainLocal(m, windows, { ...o, steps: 1, dpSgd: { clip: Infinity, noiseMultiplier: 1 } }))).to.equal('TRAIN_ERR_BAD_PARAM');
      expect(code(() => trainLocal(base, windows, { ...o, steps: 1 }))).to.equal('TRAIN_ERR_BAD_PARAM');
      expect(code(() => perExampleGradients(base, windows))).to.equal('TRAIN_ERR_BAD_PARAM');
    } finally {
      m.dispose();
      base.dispose();
    }
  });
});
