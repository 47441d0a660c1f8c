/**
 * `npm run bench -- dp [--quick] [--dim N] [--reps R] [--steps S]`: client-side
 * DP encoding of one update on one core (Node's main thread): the Hadamard
 * rotation alone, the exact noise samplers alone, and the whole
 * encodeUpdate (clip, rotation, conditional rounding, noise, wrap) for
 * noise none / ddg / skellam at the parameters planRound picks for
 * (C = 1, n = 100, t = 80, b = 20, z = 1); plus decodeSum, and the
 * accountants' time for S steps (bench/_dp-accounting.ts).
 * Returns the results (bench/run.ts writes them).
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { DeterministicRng } from '../src/crypto/rng.js';
import { fillDiscreteGaussian } from '../src/dp/discrete-gaussian.js';
import { decodeSum, encodeUpdate, type EncodeParams } from '../src/dp/encode.js';
import { rotate } from '../src/dp/hadamard.js';
import { encodeParams, planRound } from '../src/dp/plan.js';
import { fillSkellam } from '../src/dp/skellam.js';
import { benchAccountants } from './_dp-accounting.js';

interface Row {
  name: string;
  entries: number;
  seconds: number;
  entriesPerSecond: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(name: string, entries: number, reps: number, fn: () => void): Row {
  fn(); // warm-up (JIT)
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  const seconds = median(ts);
  return { name, entries, seconds, entriesPerSecond: entries / seconds };
}

/** Runs the suite (see the module comment). */
export async function main(argv: string[]): Promise<object> {
  const { values } = parseArgs({
    args: argv,
    options: { quick: { type: 'boolean' }, dim: { type: 'string' }, reps: { type: 'string' }, steps: { type: 'string' } },
  });
  const quick = values.quick ?? false;
  const dim = Number(values.dim ?? (quick ? 100_000 : 1_000_000));
  const reps = Number(values.reps ?? (quick ? 1 : 3));
  const steps = Number(values.steps ?? (quick ? 1000 : 10_000));
  const chosen = planRound({ clip: 1, dim, threshold: 80, clients: 100, bits: 20, noiseMultiplier: 1, kind: 'ddg' });
  const sigma = chosen.siteSigma;
  console.log(`dim ${dim} (padded ${chosen.paddedDim}), bits 20, scale ${chosen.scale.toPrecision(5)}, per-site σ ${sigma.toPrecision(5)}, ` +
    `wrap bound ${chosen.wrapProbabilityBound.toExponential(2)}; one core, median of ${reps}`);

  const update = Float32Array.from(new DeterministicRng('bench-update').bytes(dim), (b) => (b - 127.5) / 1e4);
  const seed = new Uint8Array(32).fill(1);
  const rng = new DeterministicRng('bench-dp');
  // The encoder's parameters come from the round plan itself (exact σ² fraction), as in a real round.
  const skellamPlan = planRound({ clip: 1, dim, threshold: 80, clients: 100, bits: 20, noiseMultiplier: 1, kind: 'skellam' });
  const params = (kind: 'none' | 'ddg' | 'skellam'): EncodeParams => (kind === 'ddg' ? encodeParams(chosen, seed)
    : kind === 'skellam' ? encodeParams(skellamPlan, seed)
      : { ...encodeParams(chosen, seed), noise: { kind: 'none' } });
  const noise = new Float64Array(chosen.paddedDim);
  let encoded: Uint32Array = new Uint32Array(0);
  const rows: Row[] = [
    time('rotation H·D·x', dim, reps, () => void rotate(update, seed)),
    time(`discrete Gaussian σ=${sigma.toFixed(0)}`, noise.length, reps, () => void fillDiscreteGaussian(noise, sigma, rng)),
    time('discrete Gaussian σ=30', noise.length, reps, () => void fillDiscreteGaussian(noise, 30, rng)),
    time(`Skellam σ=${sigma.toFixed(0)}`, noise.length, reps, () => void fillSkellam(noise, sigma, rng)),
    time('Skellam σ=30', noise.length, reps, () => void fillSkellam(noise, 30, rng)),
    time('encodeUpdate, no noise', dim, reps, () => void encodeUpdate(update, params('none'), rng)),
    time('encodeUpdate, ddg', dim, reps, () => void (encoded = encodeUpdate(update, params('ddg'), rng).encoded)),
    time('encodeUpdate, skellam', dim, reps, () => void encodeUpdate(update, params('skellam'), rng)),
    time('decodeSum', dim, reps, () => void decodeSum(encoded, dim, params('ddg'))),
  ];
  for (const r of rows) {
    console.log(`${r.name.padEnd(30)} ${r.seconds.toFixed(3).padStart(8)} s  ${(r.entriesPerSecond / 1e6).toFixed(2).padStart(7)} M entries/s`);
  }
  const acc = await benchAccountants(steps);
  console.log(`${`RDP accountant, ${steps} steps`.padEnd(30)} ${acc.rdp_s!.toFixed(3).padStart(8)} s  (ε = ${acc.rdp_epsilon!.toFixed(4)})`);
  console.log(`${`PLD accountant, ${steps} steps`.padEnd(30)} ${acc.pld_s!.toFixed(3).padStart(8)} s  (ε = ${acc.pld_epsilon!.toFixed(4)})`);
  console.log(`${`RDP accountant, ${acc.long_steps} steps`.padEnd(30)} ${acc.long_rdp_s!.toFixed(3).padStart(8)} s  (ε = ${acc.long_rdp_epsilon!.toFixed(1)})`);
  console.log(`${`PLD accountant, ${acc.long_steps} steps`.padEnd(30)} ${acc.long_pld_s!.toFixed(3).padStart(8)} s  (ε = ${acc.long_pld_epsilon!.toFixed(1)})`);

  const result = {
    suite: 'dp', date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, cores: 1, quick, dim,
    params: { scale: chosen.scale, siteSigma: sigma, bits: 20, threshold: 80, clients: 100, noiseMultiplier: 1 },
    encoding: rows, accountants: acc,
  };
  return result;
}
