/**
 * Heterogeneous LoRA ranks by zero-padding: pad → truncate is the identity,
 * the padded product B·A equals the unpadded one, a padded flat delta is in
 * the rank-rMax model's trainable order, per-slice rescaling of a sum of
 * padded deltas gives each slice's mean over the sites that train it, and
 * the refusals.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { ValidationError } from '../../src/errors.js';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { padAdapter, padDelta, perRankWeights, rescaleByRank, truncateAdapter, truncateDelta } from '../../src/federation/hetlora.js';
import { GPT2_MODULES, loraTensorName, loraTensorShapes, type LoraConfig } from '../../src/training/adapter-format.js';
import type { Gpt2Config } from '../../src/training/checkpoint.js';
import { Gpt2Model, type Gpt2Shape } from '../../src/training/gpt2.js';
import type { DeltaEntry } from '../../src/training/train.js';

const MODEL = { n_layer: 2, n_embd: 8 } as Gpt2Config;
const lora = (r: number): LoraConfig => ({ r, alpha: 2 * r, dropout: 0, targetModules: ['c_attn', 'c_proj', 'c_fc'], baseModel: '', extra: {} });
const shapesAt = (r: number) => loraTensorShapes(MODEL, lora(r));

function randomValues(n: number, rng: DeterministicRng): Float32Array {
  const b = rng.bytes(4 * n);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Float32Array.from({ length: n }, (_, j) => dv.getUint32(4 * j) / 2 ** 31 - 1);
}

function randomAdapter(r: number, seed: string): Map<string, Float32Array> {
  const rng = new DeterministicRng(seed);
  return new Map([...shapesAt(r)].map(([name, s]) => [name, randomValues(s[0]! * s[1]!, rng)]));
}

/** B·A for B `[out, r]` and A `[r, in]`, in float64. */
function product(b: Float32Array, a: Float32Array, out: number, r: number, inDim: number): Float64Array {
  const p = new Float64Array(out * inDim);
  for (let o = 0; o < out; o++) for (let k = 0; k < r; k++) for (let i = 0; i < inDim; i++) p[o * inDim + i]! += b[o * r + k]! * a[k * inDim + i]!;
  return p;
}

/** A flat delta and its layout from adapter tensors, in the shapes' order. */
function flatten(tensors: ReadonlyMap<string, Float32Array>, shapes: ReadonlyMap<string, readonly number[]>): { delta: Float32Array; layout: DeltaEntry[] } {
  const layout: DeltaEntry[] = [];
  let offset = 0;
  for (const [name, shape] of shapes) {
    layout.push({ name, shape, offset });
    offset += shape[0]! * shape[1]!;
  }
  const delta = new Float32Array(offset);
  for (const e of layout) delta.set(tensors.get(e.name)!, e.offset);
  return { delta, layout };
}

function refuses(fn: () => unknown, code: string, pattern: RegExp): void {
  expect(fn).to.throw(ValidationError, pattern).with.property('code', code);
}

describe('federation/hetlora: heterogeneous LoRA ranks by zero-padding', function () {
  this.timeout(120_000);

  it('pads A with zero rows and B with zero columns; truncation after padding is the identity', () => {
    for (const r of [1, 2, 3, 4]) {
      const t = randomAdapter(r, `het/${r}`);
      const padded = padAdapter(t, shapesAt(r), 4);
      expect([...padded.keys()]).to.deep.equal([...shapesAt(4).keys()]);
      for (const [name, [d0, d1]] of shapesAt(4)) {
        const v = padded.get(name)!;
        expect(v.length).to.equal(d0! * d1!);
        if (name.endsWith('lora_A.weight')) {
          for (let k = r; k < 4; k++) for (let i = 0; i < d1!; i++) expect(v[k * d1! + i]).to.equal(0);
        } else {
          for (let o = 0; o < d0!; o++) for (let k = r; k < 4; k++) expect(v[o * 4 + k]).to.equal(0);
        }
      }
      const back = truncateAdapter(padded, shapesAt(4), r);
      expect(back).to.deep.equal(t);
    }
  });

  it('the padded product B·A equals the unpadded product', () => {
    const r = 2, rMax = 5;
    const t = randomAdapter(r, 'het/product');
    const padded = padAdapter(t, shapesAt(r), rMax);
    const shapes = shapesAt(r);
    for (let layer = 0; layer < MODEL.n_layer; layer++) {
      for (const m of GPT2_MODULES) {
        const a = loraTensorName(layer, m, 'A'), b = loraTensorName(layer, m, 'B');
        const [, inDim] = shapes.get(a)!, [out] = shapes.get(b)!;
        const small = product(t.get(b)!, t.get(a)!, out!, r, inDim!);
        const big = product(padded.get(b)!, padded.get(a)!, out!, rMax, inDim!);
        expect(big).to.deep.equal(small);
      }
    }
  });

  it('truncating the rank-rMax global adapter keeps the first r rows of A and columns of B', () => {
    const g = randomAdapter(4, 'het/global');
    const t = truncateAdapter(g, shapesAt(4), 2);
    const a = loraTensorName(1, 'mlp.c_fc', 'A'), b = loraTensorName(1, 'mlp.c_fc', 'B');
    expect([...t.get(a)!]).to.deep.equal([...g.get(a)!.subarray(0, 2 * 8)]);
    const gb = g.get(b)!, tb = t.get(b)!;
    for (let o = 0; o < 32; o++) expect([...tb.subarray(o * 2, o * 2 + 2)]).to.deep.equal([...gb.subarray(o * 4, o * 4 + 2)]);
    expect(truncateAdapter(g, shapesAt(4), 4)).to.deep.equal(g);
  });

  it('padDelta: the padded flat delta is the padded adapter, in the rank-rMax model\'s trainable order', () => {
    const fixture = JSON.parse(readFileSync(new URL('../../../test/fixtures/gpt2-anchor.json', import.meta.url), 'utf8')) as {
      config: Gpt2Shape; weights: Record<string, { f32: string }>;
    };
    const weights = new Map(Object.entries(fixture.weights).map(([k, v]) => {
      const b = Buffer.from(v.f32, 'base64');
      return [k, Float32Array.from({ length: b.length / 4 }, (_, i) => b.readFloatLE(4 * i))];
    }));
    const targets = ['c_attn', 'c_proj', 'c_fc'] as const;
    for (const freezeA of [false, true]) {
      const small = new Gpt2Model(fixture.config, weights, { r: 2, alpha: 4, targets, seed: 's', freezeA });
      const big = new Gpt2Model(fixture.config, weights, { r: 4, alpha: 8, targets, seed: 's', freezeA });
      try {
        const names = small.trainableNames();
        const vars = small.trainable();
        const layout: DeltaEntry[] = [];
        let offset = 0;
        for (const [i, v] of vars.entries()) {
          layout.push({ name: names[i]!, shape: v.shape, offset });
          offset += v.size;
        }
        const rng = new DeterministicRng(`het/delta/${freezeA}`);
        const delta = randomValues(offset, rng);
        const padded = padDelta(delta, layout, 2, 4);
        const bigNames = big.trainableNames();
        expect(padded.layout.map((e) => e.name)).to.deep.equal(bigNames);
        expect(padded.layout.map((e) => e.shape)).to.deep.equal(big.trainable().map((v) => v.shape));
        expect(padded.delta.length).to.equal(big.trainable().reduce((n, v) => n + v.size, 0));
        // The same values as padding each tensor.
        const tensors = new Map(layout.map((e) => [e.name, delta.slice(e.offset, e.offset + e.shape[0]! * e.shape[1]!)]));
        const want = padAdapter(tensors, new Map(layout.map((e) => [e.name, e.shape])), 4);
        for (const e of padded.layout) expect([...padded.delta.subarray(e.offset, e.offset + e.shape[0]! * e.shape[1]!)]).to.deep.equal([...want.get(e.name)!]);
        const back = truncateDelta(padded.delta, padded.layout, 4, 2);
        expect([...back.delta]).to.deep.equal([...delta]);
        expect(back.layout).to.deep.equal(layout.map((e) => ({ ...e, shape: [...e.shape] })));
      } finally {
        small.dispose();
        big.dispose();
      }
    }
  });

  it('perRankWeights counts, per rank slice, the sites (or their weights) that train it', () => {
    expect([...perRankWeights([1, 2, 4], 4)]).to.deep.equal([3, 2, 1, 1]);
    expect([...perRankWeights([1, 2], 4)]).to.deep.equal([2, 1, 0, 0]);
    expect([...perRankWeights([3, 1, 2], 3, [10, 20, 5])]).to.deep.equal([35, 15, 10]);
  });

  it('rescaleByRank gives each slice\'s mean over the sites that train it', () => {
    const ranks = [1, 2, 4, 3];
    const rMax = 4;
    const sites = ranks.map((r, i) => flatten(randomAdapter(r, `het/site/${i}`), shapesAt(r)));
    const padded = sites.map((s, i) => padDelta(s.delta, s.layout, ranks[i]!, rMax));
    const layout = padded[0]!.layout;
    for (const p of padded) expect(p.layout).to.deep.equal(layout);
    const sum = new Float64Array(padded[0]!.delta.length);
    for (const p of padded) p.delta.forEach((v, j) => { sum[j]! += v; });
    const mean = rescaleByRank(sum, layout, perRankWeights(ranks, rMax));
    // By hand: slice k of a tensor averages that slice over the sites with r_i > k.
    for (const e of layout) {
      const isA = e.name.endsWith('lora_A.weight');
      const other = isA ? e.shape[1]! : e.shape[0]!;
      for (let k = 0; k < rMax; k++) {
        const who = ranks.map((r, i) => (r > k ? i : -1)).filter((i) => i >= 0);
        for (let x = 0; x < other; x++) {
          const at = (r: number) => (isA ? k * other + x : x * r + k);
          const src = who.map((i) => sites[i]!.delta[sites[i]!.layout.find((s) => s.name === e.name)!.offset + at(ranks[i]!)]!);
          const want = Math.fround(src.reduce((a, b) => a + b, 0) / who.length);
          expect(mean[e.offset + at(rMax)]).to.be.closeTo(want, 1e-6);
        }
      }
    }
  });

  it('rescaleByRank: a weighted sum divided by the slices\' total weights is the weighted mean; an untrained slice is 0', () => {
    // One A [4, 1] and one B [1, 4], i.e. in = out = 1 (names only; the values are what matter).
    const layout: DeltaEntry[] = [
      { name: loraTensorName(0, 'attn.c_proj', 'A'), shape: [4, 1], offset: 0 },
      { name: loraTensorName(0, 'attn.c_proj', 'B'), shape: [1, 4], offset: 4 },
    ];
    // Sites of ranks 1 and 2, weights 1 and 3, values a = (2, 4) and b = (6, 8) with noise 0.5 everywhere.
    const w = perRankWeights([1, 2], 4, [1, 3]);
    const sum = Float64Array.from([1 * 2 + 3 * 6, 3 * 8, 0.5, 0.5, 1 * 2 + 3 * 6, 3 * 8, 0.5, 0.5]);
    expect([...rescaleByRank(sum, layout, w)]).to.deep.equal([5, 8, 0, 0, 5, 8, 0, 0]);
  });

  it('refuses bad names, mixed ranks, missing or extra tensors, impossible ranks and bad layouts', () => {
    const t = randomAdapter(2, 'het/refuse');
    const s = shapesAt(2);
    refuses(() => padAdapter(t, s, 1), 'TRAIN_ERR_BAD_PARAM', /cannot pad rank 2 to the smaller rank 1/);
    refuses(() => truncateAdapter(t, s, 3), 'TRAIN_ERR_BAD_PARAM', /cannot truncate rank 2 to the larger rank 3/);
    refuses(() => padAdapter(t, s, 2.5), 'TRAIN_ERR_BAD_PARAM', /positive integer/);
    const mixed = new Map(s);
    mixed.set(loraTensorName(1, 'mlp.c_fc', 'B'), [32, 3]);
    refuses(() => padAdapter(t, mixed, 4), 'TRAIN_ERR_BAD_ADAPTER', /mlp\.c_fc\.lora_B\.weight has shape \[32, 3\], expected rank 2/);
    const missing = new Map(t);
    missing.delete(loraTensorName(0, 'attn.c_attn', 'B'));
    refuses(() => padAdapter(missing, s, 4), 'TRAIN_ERR_BAD_ADAPTER', /missing tensor/);
    const extra = new Map(t);
    extra.set('transformer.wte.weight', new Float32Array(1));
    refuses(() => padAdapter(extra, s, 4), 'TRAIN_ERR_BAD_ADAPTER', /unexpected tensor "transformer\.wte\.weight"/);
    const short = new Map(t);
    short.set(loraTensorName(0, 'attn.c_attn', 'A'), new Float32Array(3));
    refuses(() => padAdapter(short, s, 4), 'TRAIN_ERR_BAD_ADAPTER', /has 3 float32 values, expected \[2, 8\]/);
    refuses(() => padAdapter(new Map([['w', new Float32Array(4)]]), new Map([['w', [2, 2]]]), 4), 'TRAIN_ERR_BAD_ADAPTER', /not a PEFT LoRA tensor/);

    const { delta, layout } = flatten(t, s);
    refuses(() => padDelta(delta, layout, 2, 1), 'TRAIN_ERR_BAD_PARAM', /smaller rank/);
    refuses(() => padDelta(delta, layout, 3, 4), 'TRAIN_ERR_BAD_ADAPTER', /expected rank 3/);
    refuses(() => padDelta(delta.subarray(1), layout, 2, 4), 'TRAIN_ERR_BAD_PARAM', /the layout covers \d+ values, the delta has/);
    const gap = layout.map((e, i) => (i === 1 ? { ...e, offset: e.offset + 1 } : e));
    refuses(() => padDelta(delta, gap, 2, 4), 'TRAIN_ERR_BAD_PARAM', /contiguous/);
    refuses(() => truncateDelta(delta, layout, 2, 3), 'TRAIN_ERR_BAD_PARAM', /larger rank/);

    refuses(() => perRankWeights([], 4), 'TRAIN_ERR_BAD_PARAM', /non-empty/);
    refuses(() => perRankWeights([1, 5], 4), 'TRAIN_ERR_BAD_PARAM', /site 1 has rank 5/);
    refuses(() => perRankWeights([1, 0], 4), 'TRAIN_ERR_BAD_PARAM', /site 1 has rank 0/);
    refuses(() => perRankWeights([1, 2], 4, [1]), 'TRAIN_ERR_BAD_PARAM', /one weight per site/);
    refuses(() => perRankWeights([1, 2], 4, [1, 0]), 'TRAIN_ERR_BAD_PARAM', /site 1 has weight 0/);
    refuses(() => perRankWeights([1, 2], 4, [1, NaN]), 'TRAIN_ERR_BAD_PARAM', /weight NaN/);

    const big = padDelta(delta, layout, 2, 4);
    refuses(() => rescaleByRank(big.delta, big.layout, [1, 1, 1]), 'TRAIN_ERR_BAD_ADAPTER', /expected rank 3/);
    refuses(() => rescaleByRank(big.delta, big.layout, [1, 1, -1, 1]), 'TRAIN_ERR_BAD_PARAM', /counts\[2\] is -1/);
    refuses(() => rescaleByRank(big.delta.subarray(1), big.layout, [1, 1, 1, 1]), 'TRAIN_ERR_BAD_PARAM', /covers more than/);
  });
});
