/**
 * `npm run bench -- secagg [--quick] [--only NAME] [--repeat N] [--no-simulate]`:
 * secure-aggregation sessions at the sizes named in the project's targets,
 * at b = 16, 20 and 32, each in a fresh server process running the session
 * driver with the clients in a child process (bench/_secagg-server.ts), plus,
 * measured in the same run: the raw AES-128-CTR keystream rate, the mask
 * expansion rate, the memory copy rate, and `tally simulate` on the r2-dropout
 * case for comparison. With `--repeat N` every case runs N times (in turn) and
 * its fastest run is reported, all N server times and the highest peak RSS
 * beside it.
 *
 * The floor of a case is what one core cannot go below: the keystream the
 * server must expand in R4 (one m-word mask per surviving neighbour of each
 * client that shared keys and sent no masked input, one self mask per
 * survivor, 4·m bytes each) at the raw AES-128-CTR rate, plus the masked-input
 * bytes received at the memory copy rate. Server time ÷ floor below 1 needs
 * more than one core.
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { primeAllocator } from '../src/crypto/_heap.js';
import { findSecAggPlusParams } from '../src/secagg/params.js';
import { benchMaskExpansion, rawKeystreamRate } from './_mask.js';
import type { CaseResult, DropMode, ServerCase } from './_secagg-server.js';
import { selects } from './_select.js';
import { runSimulate } from './_simulate.js';

const half = (k: number) => Math.floor(k / 2) + 1; // semi-honest default threshold over k+1 holders

/** Case name: graph, n, m, b, dropouts. */
function label(graph: string, n: number, dim: number, bits: number, drop: DropMode, extra = ''): string {
  const m = dim >= 1e6 ? `${dim / 1e6}M` : `${dim / 1e3}k`;
  return `${graph} n=${n} m=${m}${extra} b=${bits} ${drop === 'mixed' ? 'mixed' : `${drop}-dropout`} 10%`;
}

function cases(quick: boolean): ServerCase[] {
  const scale = quick ? 10 : 1;
  const out: ServerCase[] = [];
  const add = (graph: ServerCase['graph'], n: number, dim: number, bits: number, drop: DropMode, threshold: number, seed: string, extra = '', threads?: number) => {
    const d = dim / scale;
    const name = label(graph.kind === 'complete' ? 'complete' : 'secagg+', n, d, bits, drop, extra) + (threads === undefined ? '' : `, ${threads} thread`);
    out.push({ name, n, dim: d, bits, dropout: 0.1, drop, threshold, graph, seed, ...(threads !== undefined ? { threads } : {}) });
  };
  const complete = { kind: 'complete' } as const;
  for (const bits of [16, 20, 32]) add(complete, 100, 100_000, bits, 'mixed', half(100), 'a');
  for (const bits of [16, 20, 32]) add(complete, 50, 1_000_000, bits, 'mixed', half(50), 'b');
  for (const bits of [20, 32]) add(complete, 50, 1_000_000, bits, 'r2', half(50), 'b');
  add(complete, 50, 1_000_000, 32, 'r2', half(50), 'b', '', 1); // mask removal on the calling thread only, for comparison
  add({ kind: 'harary', degree: 15 }, 100, 100_000, 32, 'mixed', half(16), 'c', ' k=15');
  add({ kind: 'harary', degree: 13 }, 50, 1_000_000, 32, 'mixed', half(14), 'd', ' k=13');
  add({ kind: 'harary', degree: 13 }, 50, 1_000_000, 32, 'r2', half(14), 'd', ' k=13');
  const finder = findSecAggPlusParams({ n: 1000, corruptFraction: 0.05, dropoutRate: 0.1 });
  add(finder.graph === 'harary' ? { kind: 'harary', degree: finder.k } : complete, 1000, 100_000, 32, 'mixed', finder.t, 'e', ` k=${finder.k} (finder)`);
  return out;
}

/** Best Uint8Array.set rate over `bytes` (default 64 MiB), in bytes per second. */
function memoryCopyRate(bytes = 64 * 2 ** 20, repeats = 5): number {
  const src = new Uint8Array(bytes).fill(1);
  const dst = new Uint8Array(bytes);
  dst.set(src); // first touch of the pages
  let best = 0;
  for (let r = 0; r < repeats; r++) {
    const t0 = process.hrtime.bigint();
    dst.set(src);
    best = Math.max(best, bytes / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  return best;
}

/** One session of `c` in a fresh server process (bench/_secagg-server.ts). */
function runCase(c: ServerCase): CaseResult {
  const out = execFileSync(process.execPath, ['--max-old-space-size=4096', new URL('./_secagg-server.js', import.meta.url).pathname, JSON.stringify(c)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  return JSON.parse(out.trim().split('\n').pop()!) as CaseResult;
}

/** `tally simulate` on the same case (in one process, over the lockstep channel); its report's figures. */
function simulateCase(n: number, dim: number, bits: number): { command: string; serverSeconds: number; roundSeconds: { round: number; seconds: number }[]; selfCheck: boolean; threads?: number } {
  const args = ['--clients', `${n}`, '--dim', `${dim}`, '--dropout', '0.1', '--drop-at', 'r2', '--graph', 'complete', '--bits', `${bits}`, '--seed', 's'];
  const r = runSimulate(args) as { serverSeconds: number; selfCheck?: boolean; threads: number; rounds: { round: number; serverSeconds: number }[] };
  return {
    command: `tally simulate ${args.join(' ')}`, serverSeconds: r.serverSeconds,
    roundSeconds: r.rounds.map((x) => ({ round: x.round, seconds: x.serverSeconds })), selfCheck: r.selfCheck ?? false, threads: r.threads,
  };
}

const fmt = (x: number, d = 3) => x.toFixed(d);

/** A case's result with its floor and targets, added once the whole run's rates are known. */
interface Row extends CaseResult {
  /** Server time of every run of the case (the row is the fastest). */
  serverSecondsRuns: number[];
  floor?: { keystreamSeconds: number; copySeconds: number; seconds: number; serverOverFloor: number };
  targets?: Record<string, { limit?: number; limitBytes?: number; met: boolean }>;
}

/** Runs the suite (see the module comment); returns the results to record. */
export async function main(argv: string[]): Promise<object> {
  const { values } = parseArgs({ args: argv, options: { quick: { type: 'boolean' }, only: { type: 'string' }, repeat: { type: 'string' }, 'no-simulate': { type: 'boolean' } } });
  const quick = values.quick ?? false;
  const repeat = Number(values.repeat ?? 1);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat expected an integer ≥ 1, got ${values.repeat}`);
  const loadAtStart = loadavg(); // other work on the machine inflates wall times; recorded with the results
  primeAllocator(); // the floor's raw rate at its best: glibc's thresholds as the server's pool leaves them
  const mask = await benchMaskExpansion(quick ? 100_000 : 1_000_000, 8);
  let memcpy = memoryCopyRate();
  let aes = mask.rawKeystreamBytesPerSec;
  // The floor's rates are measured again after every session; the floor uses the best of each (the fastest the machine showed).
  const remeasure = () => {
    aes = Math.max(aes, rawKeystreamRate(quick ? 3_200_000 : 32_000_000, 1));
    memcpy = Math.max(memcpy, memoryCopyRate(64 * 2 ** 20, 2));
  };
  console.log(`AES-128-CTR keystream (node:crypto, one core): ${fmt(mask.rawKeystreamBytesPerSec / 1e9, 2)} GB/s; ` +
    `mask expansion + accumulation: ${fmt(mask.expandAccumulateBytesPerSec / 1e9, 2)} GB/s = ${(100 * mask.ratio).toFixed(0)}% of raw (target ≥ 50%); ` +
    `memory copy (Uint8Array.set, 64 MiB): ${fmt(memcpy / 1e9, 2)} GB/s`);
  const selected = cases(quick).filter((c) => selects(c.name, values.only));
  const runs: CaseResult[][] = selected.map(() => []);
  // Repeats go round all the cases in turn, so that load from other processes spreads over them alike.
  for (let k = 0; k < repeat; k++) for (const [i, c] of selected.entries()) {
    const r = runCase(c);
    runs[i]!.push(r);
    remeasure();
    console.log(`${c.name.padEnd(50)} server ${fmt(r.serverSeconds).padStart(6)} s (CPU ${fmt(r.serverCpuSeconds)} s; R2 ${fmt(r.roundSeconds[2])}, R4 ${fmt(r.roundSeconds[4])})  ` +
      `client ${fmt(r.clientSecondsPerClient, 4)} s  up ${(r.maskedInputBytes / 1024).toFixed(1)} KiB masked input, ${r.maxBytesUpOneClient} B all rounds  ` +
      `RSS ${(r.serverPeakRssBytes / 2 ** 20).toFixed(0)} MiB  ${r.selfCheck ? 'sum OK' : `SUM MISMATCH (${r.outcome})`}`);
  }
  // Each case's row is its run with the least server time (every run's server time kept beside it) and the highest peak RSS of its runs.
  const rows: Row[] = runs.map((rs) => ({
    ...rs.reduce((a, b) => (b.serverSeconds < a.serverSeconds ? b : a)),
    serverSecondsRuns: rs.map((r) => r.serverSeconds), serverPeakRssBytes: Math.max(...rs.map((r) => r.serverPeakRssBytes)),
  }));
  for (const r of rows) {
    const keystreamSeconds = r.floorCounts.keystreamBytes / aes;
    const copySeconds = r.floorCounts.inputBytes / memcpy;
    const floorSeconds = keystreamSeconds + copySeconds;
    const rssLimit = 3 * 4 * r.dim + 200e6;
    const upLimit = Math.ceil((r.bits * r.dim) / 8) + 1024;
    const serverLimit = r.graph === 'complete' && r.n === 100 && r.dim === (quick ? 10_000 : 100_000) ? 1.5
      : r.graph === 'complete' && r.n === 50 && r.dim === (quick ? 100_000 : 1_000_000) ? 3 : undefined;
    r.floor = { keystreamSeconds, copySeconds, seconds: floorSeconds, serverOverFloor: r.serverSeconds / floorSeconds };
    r.targets = {
      serverPeakRss: { limitBytes: rssLimit, met: r.serverPeakRssBytes <= rssLimit },
      maskedInputUpload: { limitBytes: upLimit, met: r.maskedInputBytes <= upLimit },
      ...(serverLimit !== undefined ? { serverSeconds: { limit: serverLimit, met: r.serverSeconds <= serverLimit } } : {}),
      ...(serverLimit === 3 && r.drop === 'r2' && r.threads === undefined ? { serverOverFloor: { limit: 0.75, met: r.serverSeconds / floorSeconds <= 0.75 } } : {}),
    };
  }
  // b = 20 against b = 32 for the same n, m, graph and dropouts, in this run.
  const bitsRatios = rows.filter((r) => r.bits === 20).flatMap((r20) => {
    const r32 = rows.find((r) => r.bits === 32 && r.n === r20.n && r.dim === r20.dim && r.graph === r20.graph && r.neighbors === r20.neighbors && r.drop === r20.drop && r.threads === r20.threads);
    if (r32 === undefined) return [];
    const ratio = r20.serverSeconds / r32.serverSeconds;
    return [{
      b20: r20.name, b32: r32.name, serverSecondsB20: r20.serverSeconds, serverSecondsB32: r32.serverSeconds, ratio, limit: 1.2, met: ratio <= 1.2,
      cpuSecondsB20: r20.serverCpuSeconds, cpuSecondsB32: r32.serverCpuSeconds, cpuRatio: r20.serverCpuSeconds / r32.serverCpuSeconds,
    }];
  });
  // tally simulate against the benchmark on complete n=50 m=1M r2-dropout b=32: each simulate run right after a
  // fresh run of the benchmark's case, so the two of a pair see the same load; the fastest of each side's paired
  // runs are compared, and each pair's ratio is recorded.
  let simulate: Record<string, unknown> | undefined;
  const r2index = selected.findIndex((c) => c.graph.kind === 'complete' && c.n === 50 && c.bits === 32 && c.drop === 'r2' && c.threads === undefined);
  const r2case = rows[r2index];
  if (r2case !== undefined && !values['no-simulate']) {
    try {
      const sims: ReturnType<typeof simulateCase>[] = [];
      const paired: CaseResult[] = [];
      for (let k = 0; k < repeat; k++) {
        paired.push(runCase(selected[r2index]!));
        sims.push(simulateCase(50, r2case.dim, 32));
      }
      const s = sims.reduce((a, b) => (b.serverSeconds < a.serverSeconds ? b : a));
      const b = paired.reduce((x, y) => (y.serverSeconds < x.serverSeconds ? y : x));
      simulate = {
        case: r2case.name, ...s, simulateRuns: sims.map((x) => x.serverSeconds),
        benchServerSeconds: b.serverSeconds, benchRoundSeconds: b.roundSeconds, benchRuns: paired.map((x) => x.serverSeconds),
        pairRatios: sims.map((x, i) => x.serverSeconds / paired[i]!.serverSeconds),
        simulateOverBench: s.serverSeconds / b.serverSeconds,
      };
    } catch (err) {
      simulate = { case: r2case.name, error: String((err as { stderr?: string }).stderr || err).trim().split('\n').slice(-3).join(' ') };
    }
  }

  console.log(`\nfloor: AES-128-CTR ${fmt(aes / 1e9, 2)} GB/s, memory copy ${fmt(memcpy / 1e9, 2)} GB/s (best of the run)`);
  console.log(`${'case'.padEnd(50)} ${'server s'.padStart(8)} ${'floor s'.padStart(8)} ${'÷ floor'.padStart(7)}  targets`);
  for (const r of rows) {
    const t = Object.entries(r.targets!).filter(([, v]) => !v.met).map(([k]) => k);
    console.log(`${r.name.padEnd(50)} ${fmt(r.serverSeconds).padStart(8)} ${fmt(r.floor!.seconds).padStart(8)} ${fmt(r.floor!.serverOverFloor, 2).padStart(7)}  ${t.length === 0 ? 'all met' : `MISSED: ${t.join(', ')}`}`);
  }
  for (const x of bitsRatios) {
    console.log(`server time b=20 ÷ b=32, ${x.b32.replace(/ b=32/, '')}: ${fmt(x.ratio, 2)} (target ≤ 1.2: ${x.met ? 'met' : 'MISSED'}); CPU time ${fmt(x.cpuRatio, 2)}`);
  }
  if (simulate?.error !== undefined) console.log(`tally simulate failed, no comparison: ${simulate.error as string}`);
  else if (simulate !== undefined) {
    console.log(`${simulate.command}: server ${fmt(simulate.serverSeconds as number)} s; benchmark ${fmt(simulate.benchServerSeconds as number)} s (simulate ÷ bench ${fmt(simulate.simulateOverBench as number, 2)})`);
  }
  return {
    suite: 'secagg', date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, cores: cpus().length, quick,
    loadAverage: { start: loadAtStart, end: loadavg() },
    mask: { ...mask, target: 0.5, met: mask.ratio >= 0.5 },
    floorRates: { aesCtrBytesPerSec: aes, memoryCopyBytesPerSec: memcpy },
    cases: rows, bitsRatios, ...(simulate !== undefined ? { simulate } : {}),
  };
}
