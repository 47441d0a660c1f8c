/**
 * `npm run bench -- training [--steps N] [--batch B] [--rank R] [--model DIR]`: one site's
 * local LoRA step on the shipped base model (models/tally-base), per
 * available backend, with and without the wasm matmul gradient, against
 * PyTorch's CPU step on the same model, batch and adapter measured in the
 * same run (scripts/torch_gpt2.py bench, with Debian's python3-torch when it
 * is installed; skipped with a note otherwise).
 *
 * A step is a forward and backward pass over B windows of n_positions bytes
 * and an AdamW update of a LoRA adapter of rank R on c_attn (alpha 2R). The
 * figure is the median of N timed steps after two warm-up steps. Target:
 * tally's wasm step within 3× of PyTorch's CPU step.
 *
 * On wasm, also the DP-SGD step (`dpSgd`: per-example gradients from one
 * vectorised backward pass, per-example clipping, Gaussian noise, then the
 * same AdamW update) against the plain step, measured right after it, as a
 * ratio; and the per-example gradients alone, vectorised against a loop of B
 * one-window backward passes.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { initBackend, tf, type BackendName } from '../src/training/backend.js';
import { withStockBatchMatMulGrad } from '../src/training/_wasm-matmul-grad.js';
import { loadCheckpoint } from '../src/training/checkpoint.js';
import { Gpt2Model } from '../src/training/gpt2.js';
import { perExampleGradients, trainLocal, type TrainOptions } from '../src/training/train.js';
import { DeterministicRng } from '../src/crypto/rng.js';

const MODEL = fileURLToPath(new URL('../../models/tally-base', import.meta.url));
const TORCH = fileURLToPath(new URL('../../scripts/torch_gpt2.py', import.meta.url));

function arg(argv: string[], name: string, dflt: number): number {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
}

interface Row { readonly backend: string; readonly msPerStep: number; readonly tokensPerSecond: number }

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function main(argv: string[]): Promise<object> {
  const steps = arg(argv, 'steps', 10), batch = arg(argv, 'batch', 8), rank = arg(argv, 'rank', 8);
  const mi = argv.indexOf('--model');
  const modelDir = mi >= 0 ? argv[mi + 1]! : MODEL;
  const ck = loadCheckpoint(modelDir);
  const p = ck.config.n_positions;
  // Random byte windows: the cost of a step does not depend on the text.
  let x = 12345;
  const windows = Array.from({ length: batch * 4 }, () => Uint16Array.from({ length: p }, () => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return x >>> 24; }));
  const rows: Row[] = [];
  const time = (label: string, wrap: <T>(f: () => T) => T = (f) => f()): void => {
    const model = new Gpt2Model(ck.config, ck.tensors, { r: rank, alpha: 2 * rank, targets: ['c_attn'], seed: 'bench' });
    try {
      const stamps: number[] = [];
      wrap(() => trainLocal(model, windows, { steps: steps + 2, batchSize: batch, lr: 1e-3, schedule: 'constant', seed: 'bench', onStep: () => stamps.push(performance.now()) }));
      const per = stamps.slice(2).map((t, i) => t - stamps[i + 1]!);
      const ms = median(per);
      rows.push({ backend: label, msPerStep: ms, tokensPerSecond: (batch * (p - 1)) / (ms / 1000) });
    } finally {
      model.dispose();
    }
  };
  const DP_LABEL = 'wasm, DP-SGD (per-example clip, noise)';
  /** Per-example gradients of one batch: one vectorised pass against B one-window passes (median of `steps` each). */
  const timePerExample = (): { vectorisedMs: number; loopMs: number } => {
    const model = new Gpt2Model(ck.config, ck.tensors, { r: rank, alpha: 2 * rank, targets: ['c_attn'], seed: 'bench' });
    try {
      const b = windows.slice(0, batch), vars = model.trainable();
      const vec: number[] = [], loop: number[] = [];
      for (let i = 0; i < steps + 1; i++) {
        let t = performance.now();
        perExampleGradients(model, b);
        vec.push(performance.now() - t);
        t = performance.now();
        for (const w of b) {
          tf.tidy(() => {
            const ids = tf.tensor2d(Int32Array.from(w), [1, w.length], 'int32');
            const { grads } = tf.variableGrads(() => model.loss(ids), vars);
            for (const v of vars) grads[v.name]!.dataSync();
          });
        }
        loop.push(performance.now() - t);
      }
      return { vectorisedMs: median(vec.slice(1)), loopMs: median(loop.slice(1)) };
    } finally {
      model.dispose();
    }
  };
  let perExample: { vectorisedMs: number; loopMs: number } | undefined;
  /**
   * The DP-SGD step against the plain step, interleaved so that both see the
   * same machine load: N rounds (after one warm-up round), each two steps of
   * one then two of the other on their own models; a step's time is the gap
   * between consecutive onStep calls. Ratio = median DP step ÷ median plain step.
   */
  const timeDpPaired = (): { plainMs: number; dpMs: number; ratio: number; roundRatios: number[] } => {
    const make = () => new Gpt2Model(ck.config, ck.tensors, { r: rank, alpha: 2 * rank, targets: ['c_attn'], seed: 'bench' });
    const plainModel = make(), dpModel = make();
    const rng = new DeterministicRng('bench-noise');
    try {
      const run = (model: Gpt2Model, extra: Partial<TrainOptions>): number[] => {
        const stamps: number[] = [];
        trainLocal(model, windows, { steps: 3, batchSize: batch, lr: 1e-3, schedule: 'constant', seed: 'bench', onStep: () => stamps.push(performance.now()), ...extra });
        return stamps.slice(1).map((t, i) => t - stamps[i]!);
      };
      const plain: number[] = [], dp: number[] = [], roundRatios: number[] = [];
      for (let round = 0; round <= steps; round++) {
        const a = run(plainModel, {});
        const b = run(dpModel, { dpSgd: { clip: 1, noiseMultiplier: 1 }, rng });
        if (round === 0) continue;
        plain.push(...a); dp.push(...b);
        roundRatios.push(median(b) / median(a));
      }
      const plainMs = median(plain), dpMs = median(dp);
      return { plainMs, dpMs, ratio: dpMs / plainMs, roundRatios };
    } finally {
      plainModel.dispose();
      dpModel.dispose();
    }
  };
  let dpPaired: ReturnType<typeof timeDpPaired> | undefined;
  const tried: string[] = [];
  for (const name of ['wasm', 'cpu'] as BackendName[]) {
    try {
      // initBackend loads, registers and smoke-tests wasm (and its matmul gradient); cpu is built in.
      if (name === 'wasm') await initBackend({ prefer: 'wasm' });
      else await tf.setBackend('cpu');
    } catch (err) {
      tried.push(`${name}: ${(err as Error).message}`);
      continue;
    }
    time(name);
    if (name === 'wasm') {
      dpPaired = timeDpPaired();
      rows.push({ backend: DP_LABEL, msPerStep: dpPaired.dpMs, tokensPerSecond: (batch * (p - 1)) / (dpPaired.dpMs / 1000) });
      perExample = timePerExample();
      time('wasm, tfjs-core matmul gradient', withStockBatchMatMulGrad);
    }
  }
  let torch: { msPerStep: number; threads: number; torch: string } | undefined;
  let torch1: typeof torch;
  let torchNote = '';
  const py = (threads: number) => spawnSync('/usr/bin/python3', [TORCH, 'bench', '--model', modelDir, '--batch', `${batch}`, '--rank', `${rank}`, '--steps', `${steps}`, '--threads', `${threads}`], { encoding: 'utf8' });
  const r = py(0);
  if (r.status === 0) {
    torch = JSON.parse(r.stdout);
    const r1 = py(1);
    if (r1.status === 0) torch1 = JSON.parse(r1.stdout);
  } else torchNote = `PyTorch not measured: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`;
  const c = ck.config;
  console.log(`model ${modelDir}: n_layer ${c.n_layer}, n_embd ${c.n_embd}, n_head ${c.n_head}, n_positions ${p}; LoRA r=${rank} on c_attn; batch ${batch}`);
  for (const row of rows) console.log(`  ${row.backend.padEnd(36)} ${row.msPerStep.toFixed(1).padStart(8)} ms/step  ${row.tokensPerSecond.toFixed(0).padStart(8)} tokens/s`);
  if (torch !== undefined) console.log(`  PyTorch ${torch.torch} CPU, ${torch.threads} threads`.padEnd(38) + `${torch.msPerStep.toFixed(1).padStart(8)} ms/step`);
  if (torch1 !== undefined) console.log(`  PyTorch ${torch1.torch} CPU, 1 thread`.padEnd(38) + `${torch1.msPerStep.toFixed(1).padStart(8)} ms/step`);
  if (torchNote !== '') console.log(`  ${torchNote}`);
  const wasm = rows.find((x) => x.backend === 'wasm');
  const ratio = wasm !== undefined && torch !== undefined ? wasm.msPerStep / torch.msPerStep : undefined;
  if (ratio !== undefined) console.log(`  wasm ÷ PyTorch: ${ratio.toFixed(2)} (target ≤ 3: ${ratio <= 3 ? 'MET' : 'MISSED'})`);
  if (dpPaired !== undefined) {
    const rr = [...dpPaired.roundRatios].sort((a, b) => a - b);
    console.log(`  DP-SGD step ÷ plain step (wasm, interleaved): ${dpPaired.ratio.toFixed(2)} (${dpPaired.dpMs.toFixed(1)} ÷ ${dpPaired.plainMs.toFixed(1)} ms; per round ${rr[0]!.toFixed(2)}–${rr[rr.length - 1]!.toFixed(2)})`);
  }
  if (perExample !== undefined) {
    console.log(`  per-example gradients of ${batch} windows (wasm): one vectorised pass ${perExample.vectorisedMs.toFixed(1)} ms, ${batch} one-window passes ${perExample.loopMs.toFixed(1)} ms (${(perExample.loopMs / perExample.vectorisedMs).toFixed(2)}×)`);
  }
  for (const t of tried) console.log(`  skipped ${t}`);
  const peak = process.resourceUsage().maxRSS * 1024;
  console.log(`  peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB`);
  return { model: { ...c, extra: undefined }, batch, rank, steps, rows, torch, torch1Thread: torch1, wasmOverTorch: ratio, dpSgdOverPlain: dpPaired, perExampleGradients: perExample, peakRssBytes: peak };
}
