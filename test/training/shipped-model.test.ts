/**
 * The base model shipped in models/tally-base: it loads, its metadata records
 * how it was made, and it predicts held-out text far better than chance.
 */
import { expect } from 'chai';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadCheckpoint } from '../../src/training/checkpoint.js';
import { sotuDocuments, windows, EOS_ID } from '../../src/training/corpus.js';
import { Gpt2Model } from '../../src/training/gpt2.js';
import { evaluate } from '../../src/training/train.js';
import { initBackend, tf } from '../../src/training/backend.js';

const DIR = fileURLToPath(new URL('../../../models/tally-base', import.meta.url));

describe('models/tally-base: the shipped base model', function () {
  this.timeout(120_000);
  // On wasm, as a site runs it (and ten times faster than tfjs's cpu backend); put back what was active.
  let previous: string;
  before(async () => { previous = tf.getBackend() ?? 'cpu'; await initBackend({ prefer: 'wasm' }); });
  after(async () => { await tf.setBackend(previous); });

  it('loads, records its run, stays under 10 MB, and predicts a held-out address far better than chance', () => {
    const ck = loadCheckpoint(DIR);
    expect(statSync(`${DIR}/model.safetensors`).size).to.be.below(10 * 2 ** 20);
    expect(ck.config).to.include({ model_type: 'gpt2', vocab_size: 257, eos_token_id: EOS_ID });
    const md = ck.metadata;
    for (const k of ['data', 'steps', 'batch', 'lr', 'seed', 'held_out_loss', 'held_out_documents', 'backend']) expect(md, k).to.have.property(k);
    const heldOut = new Set(md.held_out_documents!.split(','));
    const doc = sotuDocuments().find((d) => heldOut.has(d.id))!;
    expect(doc, 'a held-out address').to.not.equal(undefined);
    const sample = { ...doc, text: doc.text.slice(0, 3000) };
    const model = new Gpt2Model(ck.config, ck.tensors);
    try {
      const e = evaluate(model, windows([sample], ck.config.n_positions));
      // Uniform guessing over 257 tokens costs ln 257 ≈ 5.55 nats per byte.
      expect(e.loss).to.be.below(Math.log(257) / 2);
      expect(Math.abs(e.loss - Number(md.held_out_loss))).to.be.below(0.6);
    } finally {
      model.dispose();
    }
  });
});
