/**
 * `tally simulate --aggregator he`: the command line of the HE simulation
 * (src/he/simulate.ts). The same flags as secagg simulate where they mean
 * something here (--clients, --dim, --bits, --dropout, --drop-at, --threshold,
 * --seed, --inputs, --out, --quiet), and the same drop choice and input
 * generation, so one seed gives the same inputs and the same sites dropping
 * at the same points as secagg simulate.
 * Exit status: 0 done, 1 the self-check failed, 2 bad usage, 3 aborted (the
 * key holder dropped, or fewer than the threshold of ciphertexts arrived).
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { checkOutPath, isInt, numberOption, usageError, UsageError } from './_args.js';
import { chooseDrops, inputShape, type Values } from './simulate.js';
import { systemRng } from '../crypto/rng.js';
import { toHex } from '../crypto/_validate.js';
import { TallyError } from '../errors.js';
import { DEFAULT_DROPOUT_RATE } from '../secagg/params.js';
import type { HeDropPoint, HeSimulationResult } from '../he/simulate.js';

const MAX_CLIENTS = 100_000;
const MAX_DIM = 1 << 24;
const SECAGG_ONLY = ['threat', 'graph', 'neighbors', 'corrupt', 'provider', 'threads'] as const;
const PHASES = ['key', 'ciphertext', 'decryption'];
/** The guarantee of this mode, said in the summary and the report. */
export const HE_KEY_HOLDER_NOTE = 'site 1 holds the secret key and can decrypt any single site\'s ciphertext it obtains: '
  + 'the coordinator alone learns nothing, but the coordinator and the key holder together learn every input (weaker than secagg)';

interface HePlan {
  readonly n: number; readonly dim: number; readonly bits: number; readonly rate: number; readonly at: string;
  readonly threshold: number; readonly seed: string; readonly set: string | undefined;
  readonly inputsFile: string | undefined; readonly inputs: Uint32Array[] | undefined; readonly out: string | undefined;
}

function plan(values: Values): HePlan {
  for (const o of SECAGG_ONLY) if (values[o] !== undefined) throw new UsageError(`--${o} is an option of secure aggregation, not of --aggregator he`);
  const n0 = numberOption(values.clients, 'clients', 20, isInt(3, MAX_CLIENTS), `an integer in [3, ${MAX_CLIENTS}]`);
  const dim0 = numberOption(values.dim, 'dim', 10000, isInt(1, MAX_DIM), `an integer in [1, ${MAX_DIM}] with --aggregator he`);
  const bits0 = numberOption(values.bits, 'bits', 32, isInt(1, 32), 'an integer in [1, 32]');
  const rate = numberOption(values.dropout, 'dropout', DEFAULT_DROPOUT_RATE, (x) => x >= 0 && x <= 1, 'a rate in [0, 1]');
  const at = values['drop-at'] ?? 'mixed';
  if (!['r0', 'r1', 'r2', 'r3', 'r4', 'mixed'].includes(at)) throw new UsageError(`--drop-at expected r0|r1|r2|r3|r4|mixed, got '${at}'`);
  const setName = values['he-set'] ?? 'auto';
  if (!['auto', 'bgv-4096-q60', 'bgv-8192-q120'].includes(setName)) throw new UsageError(`--he-set expected auto|bgv-4096-q60|bgv-8192-q120, got '${setName}'`);
  if (values.seed !== undefined && values.seed.length === 0) throw new UsageError('--seed expected a non-empty string');
  if (values.out !== undefined) checkOutPath(values.out);
  const { file, n, dim, bits } = inputShape(values, n0, dim0, bits0);
  const threshold = numberOption(values.threshold, 'threshold', Math.floor(n / 2) + 1, isInt(2, n),
    `an integer in [2, ${n}]: the fewest ciphertexts the coordinator finishes a sum with`);
  return {
    n, dim, bits, rate, at, threshold, set: setName === 'auto' ? undefined : setName,
    seed: values.seed ?? toHex(systemRng.bytes(16)), inputsFile: values.inputs, inputs: file?.inputs, out: values.out,
  };
}

function summary(r: HeSimulationResult, p: HePlan, wallSeconds: number, peakRssBytes: number): string {
  const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  const told = r.drops.reduce((a, d) => a + d.told, 0);
  const q = r.params;
  const lines = [
    `he-sum-v1: ${p.n} sites, m=${p.dim}, b=${p.bits}, threshold ${p.threshold}, ${q.set} (N=${q.polyModulusDegree}, t of ${q.plainModulusBits} bits), seed ${p.seed}`,
    `key holder: ${HE_KEY_HOLDER_NOTE}`,
    `dropouts: ${told} of ${p.n} sites told to fall silent (--dropout ${p.rate}, --drop-at ${p.at})`,
    ...r.drops.map((d) => `  ${d.at}: ${d.told} silent from the ${PHASES[d.phase]} phase: ${d.inSum} in the sum, ${d.told - d.inSum} not`),
    r.aborted ? `ABORTED in the ${PHASES[r.aborted.phase]} phase: ${r.aborted.code}: ${r.aborted.message}` : `survivors: ${r.survivors.length} in the sum, ${p.n - r.survivors.length} not`,
    `ciphertext: ${kib(r.ciphertextBytes.site)} per site (${(r.ciphertextBytes.site / p.dim).toFixed(2)} bytes a value), ${kib(r.ciphertextBytes.sum)} for the sum; key ${kib(r.keyBytes)}`,
    `time: keygen ${r.keygenSeconds.toFixed(3)} s, encrypt ${r.encryptSecondsMean.toFixed(4)} s a site, add ${r.addSecondsMean.toFixed(4)} s a site, finish ${r.finishSeconds.toFixed(3)} s, decrypt ${r.decryptSeconds.toFixed(3)} s`,
    `run: ${wallSeconds.toFixed(1)} s wall, peak memory ${(peakRssBytes / 2 ** 20).toFixed(0)} MiB`,
  ];
  if (r.selfCheck !== undefined) lines.push(`self-check against the plaintext sum of the survivors: ${r.selfCheck ? 'OK' : 'MISMATCH'}`);
  return lines.join('\n');
}

function report(r: HeSimulationResult, p: HePlan, wallSeconds: number, peakRssBytes: number): unknown {
  const q = r.params;
  return {
    tally: (createRequire(import.meta.url)('../../../package.json') as { version: string }).version, node: process.version,
    aggregator: 'he',
    config: {
      clients: p.n, dim: p.dim, bits: p.bits, threshold: p.threshold, dropout: p.rate, dropAt: p.at, seed: p.seed,
      heSet: p.set ?? 'auto', inputs: p.inputsFile ?? null,
    },
    params: {
      set: q.set, scheme: q.scheme, N: q.polyModulusDegree, coeffModulusBits: q.coeffModulusBits,
      plainModulus: q.plainModulus.toString(), plainModulusBits: q.plainModulusBits, securityLevel: q.securityLevel, sites: q.sites, bits: q.bits,
    },
    keyHolder: r.keyHolder, keyHolderNote: HE_KEY_HOLDER_NOTE,
    outcome: r.aborted ? 'aborted' : 'completed',
    ...(r.aborted ? { aborted: r.aborted } : {}),
    ...(r.sum ? { sum: Array.from(r.sum), selfCheck: r.selfCheck } : {}),
    survivors: r.survivors,
    notInSum: Array.from({ length: p.n }, (_, i) => i).filter((i) => !r.survivors.includes(i)),
    drops: r.drops,
    dropped: r.dropped,
    ciphertextBytes: { site: r.ciphertextBytes.site, sum: r.ciphertextBytes.sum, sitePerValue: r.ciphertextBytes.site / p.dim, sumPerValue: r.ciphertextBytes.sum / p.dim },
    keyBytes: r.keyBytes,
    serverSeconds: r.serverSeconds, clientSecondsMean: r.encryptSecondsMean,
    keygenSeconds: r.keygenSeconds, encryptSecondsMean: r.encryptSecondsMean, addSecondsMean: r.addSecondsMean,
    finishSeconds: r.finishSeconds, decryptSeconds: r.decryptSeconds,
    wallSeconds, peakRssBytes,
    bytesUpPerClient: r.bytesUpPerClient, bytesDownPerClient: r.bytesDownPerClient, maxMessageUpBytes: r.maxMessageUp,
  };
}

export async function runHe(values: Values, quiet: boolean): Promise<number> {
  let p: HePlan;
  try {
    p = plan(values);
  } catch (err) {
    if (err instanceof UsageError) return usageError('simulate', err.message);
    throw err;
  }
  const log = quiet ? () => {} : console.log;
  const [{ simulationRng, drawnInput }, { simulateHe }] = await Promise.all([import('../transport/_clients.js'), import('../he/simulate.js')]);
  // The same draw as secagg simulate (semi-honest: r1, r2, r4 in turn for mixed).
  const drops = chooseDrops(simulationRng(p.seed, 'drops'), p.n, Math.round(p.rate * p.n), p.at, 'semi-honest') as Map<number, HeDropPoint>;
  const inputOf = (i: number): Uint32Array => p.inputs?.[i] ?? drawnInput(p.seed, i + 1, p.dim, p.bits);
  const started = Date.now();
  let r: HeSimulationResult;
  try {
    r = await simulateHe({ sites: p.n, dim: p.dim, bits: p.bits, threshold: p.threshold, inputOf, drops, ...(p.set ? { set: p.set } : {}) });
  } catch (err) {
    if (err instanceof TallyError && ['HE_ERR_WRAP_RISK', 'HE_ERR_BAD_PARAMS', 'HE_ERR_INSECURE'].includes(err.code)) return usageError('simulate', `${err.code}: ${err.message}`);
    if (err instanceof TallyError && err.code === 'HE_ERR_UNAVAILABLE') { console.error(`tally simulate: ${err.code}: ${err.message}`); return 3; }
    throw err;
  }
  const wallSeconds = (Date.now() - started) / 1000;
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  log(summary(r, p, wallSeconds, peakRssBytes));
  if (p.out !== undefined) writeFileSync(p.out, JSON.stringify(report(r, p, wallSeconds, peakRssBytes), null, 1) + '\n');
  if (r.aborted) {
    console.error(`tally simulate: aborted in the ${PHASES[r.aborted.phase]} phase: ${r.aborted.code}`);
    return 3;
  }
  return r.selfCheck ? 0 : 1;
}
