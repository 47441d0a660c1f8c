/**
 * `npm run bench -- he [--values V] [--sites 10,100] [--bits B] [--reps R]`:
 * homomorphic summation (src/he) of V values (default 1,000,000) from n
 * sites, for each n:
 *
 * - client: one site's encryption (node-seal is single-threaded WebAssembly:
 *   one core), median of R (default 3) distinct vectors, and its bytes per
 *   value against float32's 4;
 * - coordinator: the time to add one site's envelope (check, load, add,
 *   free); its memory: the process's peak RSS over the n additions less the
 *   RSS just before the first (after a full GC), and node-seal's WebAssembly
 *   memory; flat in n is the target;
 * - a key holder: finish (serialize the sum) and decrypt + decode + checks.
 *
 * Each n runs in a fresh Node process (so one n's garbage does not count in
 * the next one's RSS). The sum is checked exactly. The coordinator reuses R distinct envelopes
 * round-robin for the n sites (adding costs the same whatever the values),
 * so the bench holds R envelopes whatever n. Targets: encrypt ≤ 0.6 s per
 * million values on one core, ≤ 8.8 bytes a value (2.2× float32).
 */
import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { heParams } from '../src/he/params.js';
import { sealHeapBytes } from '../src/he/seal.js';
import { HeAccumulator, heDecryptSum, heEncrypt, heKeygen } from '../src/he/sum.js';

const ENCRYPT_TARGET_S_PER_MILLION = 0.6;
const BYTES_TARGET = 8.8;
const MB = 1024 * 1024;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function seconds(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

interface Case { readonly n: number; readonly length: number; readonly bits: number; readonly reps: number }

/** The figures of one n. */
interface CaseResult {
  sites: number; set: string; plainModulusBits: number;
  encryptSeconds: number; encryptSecondsAll: number[]; encryptSecondsPerMillion: number; encryptVsTarget: number;
  siteBytes: number; bytesPerValue: number; bytesVsFloat32: number; bytesVsTarget: number;
  addSecondsPerSite: number; addSecondsTotal: number; finishSeconds: number; sumBytes: number; decryptSeconds: number;
  rssBeforeMiB: number; rssPeakMiB: number; coordinatorRssMiB: number;
  wasmHeapBeforeMiB: number; wasmHeapAfterFirstSiteMiB: number; wasmHeapAfterLastSiteMiB: number; exact: true;
}

/** One n, in this (child) process. */
async function runCase({ n, length, bits, reps }: Case): Promise<CaseResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const params = heParams(n, bits);
  const key = await heKeygen(params);
  const vectors: Uint32Array[] = [];
  const envelopes: Uint8Array[] = [];
  const encryptS: number[] = [];
  for (let r = 0; r < Math.min(reps, n); r++) {
    const v = new Uint32Array(length);
    for (let i = 0; i < length; i++) v[i] = (Math.random() * 2 ** bits) >>> 0;
    vectors.push(v);
    const t0 = process.hrtime.bigint();
    envelopes.push(await heEncrypt(key, v));
    encryptS.push(seconds(t0));
  }
  gc?.();
  const rssBefore = process.memoryUsage().rss;
  const heapBefore = (await sealHeapBytes()) ?? 0;
  const acc = await HeAccumulator.create(params, length);
  const addS: number[] = [];
  let rssPeak = rssBefore;
  let heapFirst = 0;
  let sumEnvelope: Uint8Array;
  let finishS: number;
  try {
    for (let s = 0; s < n; s++) {
      const t0 = process.hrtime.bigint();
      acc.add(envelopes[s % envelopes.length]!);
      addS.push(seconds(t0));
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
      if (s === 0) heapFirst = (await sealHeapBytes()) ?? 0;
    }
    const t0 = process.hrtime.bigint();
    sumEnvelope = acc.finish();
    finishS = seconds(t0);
  } finally {
    acc.dispose();
  }
  const heapLast = (await sealHeapBytes()) ?? 0;
  const t0 = process.hrtime.bigint();
  const sum = await heDecryptSum(key, sumEnvelope);
  const decryptS = seconds(t0);
  for (let i = 0; i < length; i++) {
    let e = 0;
    for (let s = 0; s < n; s++) e += vectors[s % vectors.length]![i]!;
    if (sum.values[i] !== e) throw new Error(`wrong sum at ${i}: ${sum.values[i]} ≠ ${e}`);
  }
  const bytesPerValue = envelopes[0]!.length / length;
  const encrypt = median(encryptS);
  return {
    sites: n,
    set: params.set,
    plainModulusBits: params.plainModulusBits,
    encryptSeconds: encrypt,
    encryptSecondsAll: encryptS,
    encryptSecondsPerMillion: encrypt / (length / 1e6),
    encryptVsTarget: encrypt / (length / 1e6) / ENCRYPT_TARGET_S_PER_MILLION,
    siteBytes: envelopes[0]!.length,
    bytesPerValue,
    bytesVsFloat32: bytesPerValue / 4,
    bytesVsTarget: bytesPerValue / BYTES_TARGET,
    addSecondsPerSite: median(addS),
    addSecondsTotal: addS.reduce((a, b) => a + b, 0),
    finishSeconds: finishS,
    sumBytes: sumEnvelope.length,
    decryptSeconds: decryptS,
    rssBeforeMiB: rssBefore / MB,
    rssPeakMiB: rssPeak / MB,
    coordinatorRssMiB: (rssPeak - rssBefore) / MB,
    wasmHeapBeforeMiB: heapBefore / MB,
    wasmHeapAfterFirstSiteMiB: heapFirst / MB,
    wasmHeapAfterLastSiteMiB: heapLast / MB,
    exact: true,
  };
}

/** Runs the suite (see the module comment): each n in a child process. */
export async function main(argv: string[]): Promise<object> {
  const { values: opts } = parseArgs({
    args: argv,
    options: { values: { type: 'string' }, sites: { type: 'string' }, bits: { type: 'string' }, reps: { type: 'string' } },
  });
  const length = Number(opts.values ?? 1_000_000);
  const siteCounts = (opts.sites ?? '10,100').split(',').map(Number);
  const bits = Number(opts.bits ?? 16);
  const reps = Number(opts.reps ?? 3);
  console.log(`${length} values of ${bits} bits; n = ${siteCounts.join(', ')}; node ${process.version}; ` +
    `one core for SEAL (single-threaded WebAssembly), other jobs may share the machine's cores`);
  const loadBefore = loadavg();
  const rows: CaseResult[] = [];
  for (const n of siteCounts) {
    const child = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', JSON.stringify({ n, length, bits, reps })], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20,
    });
    if (child.status !== 0) throw new Error(`the n = ${n} case failed (exit ${child.status})`);
    rows.push(JSON.parse(child.stdout.trim().split('\n').pop()!) as CaseResult);
  }
  console.table(rows.map((r) => ({
    n: r.sites,
    set: r.set,
    't bits': r.plainModulusBits,
    'encrypt s': r.encryptSeconds.toFixed(3),
    'encrypt ÷ target': r.encryptVsTarget.toFixed(2),
    'B/value': r.bytesPerValue.toFixed(3),
    '÷ float32': r.bytesVsFloat32.toFixed(2),
    'add s/site': r.addSecondsPerSite.toFixed(3),
    'decrypt s': r.decryptSeconds.toFixed(3),
    'coord. RSS MiB': r.coordinatorRssMiB.toFixed(0),
    'wasm MiB before/1st/last': `${r.wasmHeapBeforeMiB.toFixed(0)}/${r.wasmHeapAfterFirstSiteMiB.toFixed(0)}/${r.wasmHeapAfterLastSiteMiB.toFixed(0)}`,
  })));
  return {
    suite: 'he',
    node: process.version,
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
    loadAverage1m: { before: loadBefore[0], after: loadavg()[0] },
    values: length,
    bits,
    reps,
    targets: { encryptSecondsPerMillion: ENCRYPT_TARGET_S_PER_MILLION, bytesPerValue: BYTES_TARGET },
    rows,
  };
}

if (process.argv[2] === '--child') {
  console.log(JSON.stringify(await runCase(JSON.parse(process.argv[3]!) as Case)));
}
