/**
 * Federated fine-tuning from the command line: `tally demo` on its quick
 * defaults (the federated adapter must improve the held-out loss within the
 * budget), and a training consortium of real processes — `tally serve` and
 * three `tally join --text` — whose coordinator is killed with SIGKILL after
 * a round and started again on its state: it continues after the last
 * completed round, the sites reconnect by themselves, and the job ends with
 * every round, the adapter and the sites all done.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConsortium } from '../../src/federation/consortium.js';
import { CoordinatorStore } from '../../src/federation/store.js';
import { loadAdapter } from '../../src/training/adapter-format.js';
import { gpt2ConfigJson, parseGpt2Config, saveCheckpoint } from '../../src/training/checkpoint.js';
import { initGpt2Weights } from '../../src/training/gpt2.js';

import { freePort, MAIN, tally, type Proc } from './_proc.js';

describe('cli: federated fine-tuning', function () {
  this.timeout(300_000);
  const dirs: string[] = [];
  after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

  it('tally demo --quick (in one process) improves the held-out loss within its budget and writes a PEFT adapter', () => {
    const out = mkdtempSync(join(tmpdir(), 'tally-demo-'));
    dirs.push(out);
    const json = join(out, 'summary.json');
    const r = spawnSync(process.execPath, [MAIN, 'demo', '--quick', '--in-process', '--quiet', '--out', out, '--json', json], { encoding: 'utf8' });
    expect(r.status, r.stderr + r.stdout).to.equal(0);
    const s = JSON.parse(readFileSync(json, 'utf8'));
    expect(s.rounds).to.have.length(2);
    expect(s.final_eval_loss).to.be.below(s.base_eval_loss - 0.001);
    for (const round of s.rounds) {
      expect(round.survivors).to.equal(4);
      expect(round.epsilon).to.be.above(0).and.at.most(s.budget.epsilon);
    }
    expect(s.rounds[1].epsilon).to.be.above(s.rounds[0].epsilon);
    const base = parseGpt2Config(JSON.parse(readFileSync(join(s.model, 'config.json'), 'utf8')));
    const adapter = loadAdapter(s.adapter, base);
    expect(adapter.config.r).to.equal(4);
    // FFA-LoRA: B moved away from zero.
    const b = [...adapter.tensors].find(([n]) => n.endsWith('lora_B.weight'))![1];
    expect(b.some((x) => x !== 0)).to.equal(true);
    expect(r.stdout).to.match(/^round\s+eval loss/m);
    // The run's audit bundle (named by --json) verifies: the sites' logs witnessed it, ε recomputes to the table's.
    const v = spawnSync(process.execPath, [MAIN, 'audit', 'verify', s.audit, '--json'], { encoding: 'utf8' });
    expect(v.status, v.stdout + v.stderr).to.equal(0);
    expect((JSON.parse(v.stdout) as { checks: { ok: boolean }[] }).checks.every((c) => c.ok)).to.equal(true);
    const dp = readFileSync(join(s.audit, 'transcript.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"kind":"dp-event"')).map((l) => JSON.parse(l) as { epsilon: number });
    expect(dp.map((e) => e.epsilon)).to.deep.equal(s.rounds.map((x: { epsilon: number }) => x.epsilon));
  });

  it('serve and three join processes: SIGKILL of the coordinator after round 1, restart on its state, the job completes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-ft-'));
    dirs.push(dir);
    // A tiny base model, written as a checkpoint (what a consortium would ship to its sites).
    const model = join(dir, 'model');
    const config = parseGpt2Config({ model_type: 'gpt2', vocab_size: 257, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2, layer_norm_epsilon: 1e-5, eos_token_id: 256, bos_token_id: 256 });
    saveCheckpoint(model, parseGpt2Config(gpt2ConfigJson(config)), initGpt2Weights(config, 'finetune-test'));
    // Each site's own text: ten small files.
    for (let i = 1; i <= 3; i++) {
      const t = join(dir, `text-${i}`);
      mkdirSync(t);
      for (let j = 0; j < 10; j++) writeFileSync(join(t, `doc-${j}.txt`), `Site ${i} writes document ${j}. `.repeat(12));
    }
    const job = {
      model: 'model', rounds: 3,
      lora: { r: 2, alpha: 4, targets: ['c_attn'], ffa: true, seed: 'test/lora' },
      local: { steps: 2, batchSize: 4, lr: 0.01 },
      dp: { mechanism: 'ddg', clip: 1, noiseMultiplier: 1, bits: 20, budget: { epsilon: 1000, delta: 1e-5 } },
    };
    writeFileSync(join(dir, 'job.json'), JSON.stringify(job));
    const port = await freePort();
    const cdir = join(dir, 'c');
    const init = spawnSync(process.execPath, [MAIN, 'consortium', 'init', '--dir', cdir, '--sites', '3', '--port', String(port), '--training', join(dir, 'job.json')], { encoding: 'utf8' });
    expect(init.status, init.stderr).to.equal(0);
    const file = join(cdir, 'consortium.json');
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    doc.deadlines = { ...doc.deadlines, gatherMs: 60_000, roundMs: 20_000, trainMs: 60_000, reconnectMaxMs: 60_000 };
    writeFileSync(file, JSON.stringify(doc, null, 2));
    const c = loadConsortium(file);
    expect(c.training?.job.rounds).to.equal(3);
    expect(c.config.aggregation.dim).to.equal(128); // B of c_attn: 48 × 2 = 96 values, padded to 128

    const state = join(dir, 'state');
    const serve = (): Proc => tally(['serve', '--config', file, '--state', state, '--adapter', join(dir, 'adapter'), '--out', join(dir, 'result.json')]);
    let coordinator = serve();
    const sites = [1, 2, 3].map((i) => tally(['join', '--config', file, '--key', join(cdir, 'keys', `site-${i}.key`), '--text', join(dir, `text-${i}`), '--state', join(dir, `site-${i}.state.json`)]));
    try {
      await coordinator.waitFor(/round 1: held-out loss/, 120_000);
      coordinator.p.kill('SIGKILL');
      expect(await coordinator.exit).to.equal(null);
      coordinator = serve();
      await coordinator.waitFor(/resuming job [0-9a-f]+… after round 1/, 120_000);
      expect(await coordinator.exit, coordinator.err).to.equal(0);
      for (const s of sites) expect(await s.exit, s.err).to.equal(0);
    } finally {
      for (const p of [coordinator, ...sites]) if (p.p.exitCode === null) p.p.kill('SIGKILL');
    }
    const result = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8'));
    expect(result.outcome).to.equal('completed');
    expect(result.rounds.map((r: { round: number }) => r.round)).to.deep.equal([0, 1, 2, 3]);
    for (const r of result.rounds.slice(1)) {
      expect(r.survivors).to.have.length.at.least(2);
      expect(r.epsilon).to.be.at.most(1000);
    }
    // ε grows with every charged round, and never falls back after the restart.
    const eps = result.rounds.map((r: { epsilon: number }) => r.epsilon);
    for (let i = 1; i < eps.length; i++) expect(eps[i]).to.be.at.least(eps[i - 1]);
    expect(existsSync(join(dir, 'adapter', 'adapter_model.safetensors'))).to.equal(true);
    // The restarted run's audit bundle starts with the ledger it resumed and verifies on its own (ε recomputed from its records).
    const bundles = readdirSync(join(state, 'audit')).sort();
    expect(bundles).to.have.length(2);
    const v = spawnSync(process.execPath, [MAIN, 'audit', 'verify', join(state, 'audit', bundles[1]!), '--config', file], { encoding: 'utf8' });
    expect(v.status, v.stdout + v.stderr).to.equal(0);
    // The store kept one checkpoint per round of the job, across the restart.
    const store = CoordinatorStore.open(join(state, 'coordinator.sqlite'));
    try {
      const last = store.latestCheckpoint(result.job);
      expect(last?.round).to.equal(3);
      expect(store.sessions({ state: 'completed' }).length).to.be.at.least(7); // base eval + 3 × (train + eval)
    } finally {
      store.close();
    }
  });
});
