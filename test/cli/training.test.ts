import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const tally = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { ...process.env, TALLY_BACKEND: 'wasm' } });

describe('cli: tally pretrain, train and eval', function () {
  this.timeout(120_000);
  const dir = mkdtempSync(join(tmpdir(), 'tally-train-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('pretrains a tiny model, trains an adapter on a text and evaluates both, with metadata and PEFT files', () => {
    const base = join(dir, 'base'), adapter = join(dir, 'adapter'), text = join(dir, 'site.txt');
    let r = tally('pretrain', '--out', base, '--layers', '1', '--embd', '16', '--heads', '2', '--positions', '32', '--steps', '8', '--batch', '4', '--held-out', '0.02', '--quiet');
    expect(r.status, r.stderr).to.equal(0);
    expect(existsSync(join(base, 'config.json')) && existsSync(join(base, 'model.safetensors'))).to.equal(true);
    const cfg = JSON.parse(readFileSync(join(base, 'config.json'), 'utf8'));
    expect(cfg).to.include({ model_type: 'gpt2', vocab_size: 257, n_positions: 32, n_embd: 16, n_layer: 1, n_head: 2, eos_token_id: 256 });
    // The safetensors header records the run.
    const st = readFileSync(join(base, 'model.safetensors'));
    const header = JSON.parse(st.subarray(8, 8 + Number(st.readBigUInt64LE(0))).toString('utf8'));
    expect(header.__metadata__).to.include({ steps: '8', batch: '4', seed: 'tally-base' });
    expect(Number(header.__metadata__.held_out_loss)).to.be.within(1, 6);
    writeFileSync(text, 'We the people of the United States, in order to form a more perfect union. '.repeat(20));
    r = tally('train', '--model', base, '--text', text, '--out', adapter, '--rank', '2', '--alpha', '4', '--steps', '20', '--lr', '0.05', '--targets', 'c_attn,c_proj');
    expect(r.status, r.stderr).to.equal(0);
    const m = /loss on the training text ([\d.]+) → ([\d.]+)/.exec(r.stdout)!;
    expect(Number(m[2])).to.be.below(Number(m[1]));
    const ac = JSON.parse(readFileSync(join(adapter, 'adapter_config.json'), 'utf8'));
    expect(ac).to.include({ peft_type: 'LORA', r: 2, lora_alpha: 4, fan_in_fan_out: true, bias: 'none' });
    expect(ac.target_modules).to.deep.equal(['c_attn', 'c_proj']);
    const plain = JSON.parse(tally('eval', '--model', base, '--text', text, '--json').stdout);
    const tuned = JSON.parse(tally('eval', '--model', base, '--adapter', adapter, '--text', text, '--json').stdout);
    expect(plain.tokens).to.equal(tuned.tokens);
    expect(plain.tokens).to.equal(1500 - Math.ceil(1500 / 32));
    expect(tuned.loss).to.be.below(plain.loss);
    expect(tuned.perplexity).to.be.closeTo(Math.exp(tuned.loss), 1e-9);
  });

  it('exits 2 naming the flag for bad values, and refuses a missing model with its code', () => {
    for (const [args, flag] of [
      [['pretrain', '--out', join(dir, 'x'), '--embd', '10', '--heads', '4'], '--embd'],
      [['pretrain', '--out', join(dir, 'x'), '--steps', '-1'], '--steps'],
      [['pretrain'], '--out'],
      [['train', '--model', join(dir, 'base'), '--text', join(dir, 'site.txt'), '--out', join(dir, 'a2'), '--targets', 'q_proj'], '--targets'],
      [['train', '--model', join(dir, 'base'), '--text', join(dir, 'site.txt'), '--out', join(dir, 'a2'), '--dropout', '1'], '--dropout'],
      [['eval', '--model', join(dir, 'base')], '--text'],
      [['eval', '--model', join(dir, 'base'), '--text', join(dir, 'site.txt'), '--backend', 'tpu'], '--backend'],
    ] as const) {
      const r = tally(...args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).to.equal(2);
      expect(r.stderr).to.contain(flag);
    }
    const r = tally('eval', '--model', join(dir, 'nope'), '--text', join(dir, 'site.txt'));
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/TRAIN_ERR_BAD_CHECKPOINT/);
  });
});
