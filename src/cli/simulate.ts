/**
 * `tally simulate`: one whole secure-aggregation session in one process, with
 * injected dropouts, a self-check against the plaintext sum, a human summary
 * and an optional JSON report. Exit status: 0 done, 2 bad usage, 3 aborted.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { getProvider } from '../crypto/index.js';
import { DeterministicRng, systemRng, type Rng } from '../crypto/rng.js';
import { TallyError } from '../errors.js';
import type { GraphSpec, ThreatModel } from '../secagg/config.js';
import { findSecAggPlusParams } from '../secagg/params.js';
import { simulate, type DropPoint, type SimulationResult } from '../transport/simulation.js';

const HELP = `usage: tally simulate [options]

Runs a secure-aggregation session (secagg-v1) with a server and N clients in
one process and checks the result against the plaintext sum.

  --clients N         number of clients (default 20)
  --dim M             vector length (default 10000)
  --bits B            inputs and sum are integers mod 2^B, 1..32 (default 32)
  --dropout RATE      fraction of clients that drop out, 0..1 (default 0.1)
  --drop-at WHEN      r1: silent before sharing keys; r2: shared keys, no masked
                      input; r3: masked input sent, silent from the consistency
                      check; r4: silent in unmasking; mixed (default)
  --threat MODEL      semi-honest (default) | malicious
  --graph KIND        complete (default) | harary (SecAgg+)
  --neighbors K       Harary degree (even); default: the parameter finder's choice
  --threshold T       Shamir threshold; default: the threat model's minimum
  --corrupt FRACTION  assumed corrupt fraction for the Harary parameter finder (default 0.05)
  --seed S            seed of every random choice (default: system randomness)
  --inputs FILE       JSON {"bits": B, "inputs": [[M integers], ... N rows]}
  --out FILE          write a JSON report
  --provider NAME     native (default) | portable
  --quiet             print nothing but errors
`;

class UsageError extends Error {}

function num(v: string | undefined, name: string, dflt: number, ok: (x: number) => boolean, what: string): number {
  if (v === undefined) return dflt;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || !ok(x)) throw new UsageError(`--${name} expected ${what}, got '${v}'`);
  return x;
}

const isInt = (lo: number, hi: number) => (x: number) => Number.isInteger(x) && x >= lo && x <= hi;

function loadInputs(file: string): { bits: number; inputs: Uint32Array[] } {
  let doc: unknown;
  try { doc = JSON.parse(readFileSync(file, 'utf8')); } catch (err) { throw new UsageError(`--inputs: cannot read ${file}: ${(err as Error).message}`); }
  const d = doc as { bits?: unknown; inputs?: unknown };
  if (typeof d !== 'object' || d === null || !isInt(1, 32)(d.bits as number) || !Array.isArray(d.inputs) || d.inputs.length < 2) {
    throw new UsageError(`--inputs: ${file} must hold {"bits": 1..32, "inputs": [[...], ...]} with at least 2 rows`);
  }
  const bits = d.bits as number;
  const rows = d.inputs as unknown[];
  const m = Array.isArray(rows[0]) ? rows[0].length : 0;
  const limit = 2 ** bits;
  const inputs = rows.map((row, i) => {
    if (!Array.isArray(row) || row.length !== m || m === 0) throw new UsageError(`--inputs: row ${i} must be an array of ${m || 'at least 1'} integers`);
    return Uint32Array.from(row, (x, j) => {
      if (!Number.isInteger(x) || x < 0 || x >= limit) throw new UsageError(`--inputs: inputs[${i}][${j}] = ${String(x)} is not an integer in [0, 2^${bits})`);
      return x as number;
    });
  });
  return { bits, inputs };
}

/** Chooses `count` distinct client indices and their drop points from `rng`. */
function chooseDrops(rng: Rng, n: number, count: number, at: string, threat: ThreatModel): Map<number, DropPoint> {
  const order = Array.from({ length: n }, (_, i) => i);
  const r = rng.bytes(8 * n);
  const dv = new DataView(r.buffer, r.byteOffset, r.byteLength);
  for (let i = n - 1; i > 0; i--) {
    const j = Number(dv.getBigUint64(8 * i) % BigInt(i + 1)); // bias ≤ 2^-50, fine for a simulation
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const mixed: DropPoint[] = threat === 'malicious' ? ['r1', 'r2', 'r3', 'r4'] : ['r1', 'r2', 'r4'];
  return new Map(order.slice(0, count).map((i, k) => [i, at === 'mixed' ? mixed[k % mixed.length]! : (at as DropPoint)]));
}

function defaultThreshold(holders: number, threat: ThreatModel): number {
  // Bonawitz et al. 2017 §6: t > holders/2 (semi-honest default), t > 2·holders/3 (malicious, required).
  return threat === 'malicious' ? Math.floor((2 * holders) / 3) + 1 : Math.floor(holders / 2) + 1;
}

function summary(r: SimulationResult, ok: boolean | undefined): string {
  const c = r.config;
  const names = ['R0 AdvertiseKeys', 'R1 ShareKeys', 'R2 MaskedInput', 'R3 Consistency', 'R4 Unmasking'];
  const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  const lines = [
    `secagg-v1: ${c.clientIds.length} clients, m=${c.dim}, b=${c.bits}, t=${c.threshold}, ${c.threat}, ${c.graph.kind === 'harary' ? `harary k=${c.graph.degree}` : 'complete graph'}`,
    r.aborted ? `ABORTED in round ${r.aborted.round}: ${r.aborted.code}: ${r.aborted.message}` : `survivors: ${r.survivors.length} in the sum, ${c.clientIds.length - r.survivors.length} not`,
    `round               server s   client s (mean)   up/client   down/client`,
    ...r.rounds.filter((x) => x.round !== 3 || c.threat === 'malicious').map((x) => `${names[x.round]!.padEnd(18)} ${x.serverSeconds.toFixed(3).padStart(9)} ${x.clientSecondsMean.toFixed(4).padStart(17)} ${kib(x.bytesUp / c.clientIds.length).padStart(11)} ${kib(x.bytesDown / c.clientIds.length).padStart(13)}`),
    `total: server ${r.serverSeconds.toFixed(3)} s, client ${r.clientSecondsMean.toFixed(4)} s, up ${kib(r.bytesUpPerClient)} and down ${kib(r.bytesDownPerClient)} per client`,
  ];
  if (ok !== undefined) lines.push(`self-check against the plaintext sum of the survivors: ${ok ? 'OK' : 'MISMATCH'}`);
  return lines.join('\n');
}

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv, strict: true, allowPositionals: false, options: {
        clients: { type: 'string' }, dim: { type: 'string' }, bits: { type: 'string' }, dropout: { type: 'string' },
        'drop-at': { type: 'string' }, threat: { type: 'string' }, graph: { type: 'string' }, neighbors: { type: 'string' },
        threshold: { type: 'string' }, corrupt: { type: 'string' }, seed: { type: 'string' }, inputs: { type: 'string' },
        out: { type: 'string' }, provider: { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    console.error(`tally simulate: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) { console.log(HELP); return 0; }
  const log = values.quiet ? () => {} : console.log;
  let result: SimulationResult;
  try {
    const file = values.inputs === undefined ? undefined : loadInputs(values.inputs);
    const n = num(values.clients, 'clients', file?.inputs.length ?? 20, isInt(2, 100000), 'an integer ≥ 2');
    const dim = num(values.dim, 'dim', file?.inputs[0]!.length ?? 10000, isInt(1, 1 << 28), 'an integer ≥ 1');
    const bits = num(values.bits, 'bits', file?.bits ?? 32, isInt(1, 32), 'an integer in 1..32');
    if (file && (file.inputs.length !== n || file.inputs[0]!.length !== dim || file.bits !== bits)) {
      throw new UsageError(`--inputs holds ${file.inputs.length} rows of ${file.inputs[0]!.length} at ${file.bits} bits, which contradicts --clients/--dim/--bits`);
    }
    const rate = num(values.dropout, 'dropout', 0.1, (x) => x >= 0 && x <= 1, 'a rate in [0, 1]');
    const at = values['drop-at'] ?? 'mixed';
    if (!['r1', 'r2', 'r3', 'r4', 'mixed'].includes(at)) throw new UsageError(`--drop-at expected r1|r2|r3|r4|mixed, got '${at}'`);
    const threat = (values.threat ?? 'semi-honest') as ThreatModel;
    if (threat !== 'semi-honest' && threat !== 'malicious') throw new UsageError(`--threat expected semi-honest|malicious, got '${threat}'`);
    const graphKind = values.graph ?? 'complete';
    if (graphKind !== 'complete' && graphKind !== 'harary') throw new UsageError(`--graph expected complete|harary, got '${graphKind}'`);
    const corrupt = num(values.corrupt, 'corrupt', 0.05, (x) => x >= 0 && x < 1, 'a fraction in [0, 1)');
    const providerName = values.provider ?? 'native';
    if (providerName !== 'native' && providerName !== 'portable') throw new UsageError(`--provider expected native|portable, got '${providerName}'`);

    let graph: GraphSpec = { kind: 'complete' };
    let threshold: number | undefined;
    if (graphKind === 'harary') {
      if (values.neighbors !== undefined) {
        graph = { kind: 'harary', degree: num(values.neighbors, 'neighbors', 0, isInt(2, n - 1), `an even integer in [2, ${n - 1}]`) };
      } else {
        const p = findSecAggPlusParams({ n, corruptFraction: corrupt, dropoutRate: rate });
        graph = p.graph === 'harary' ? { kind: 'harary', degree: p.k } : { kind: 'complete' };
        if (threat === 'semi-honest') threshold = p.t;
        log(`parameter finder: ${p.reason}`);
      }
    }
    const holders = (graph.kind === 'harary' ? graph.degree : n - 1) + 1;
    threshold = num(values.threshold, 'threshold', threshold ?? defaultThreshold(holders, threat), isInt(2, holders - 1), `an integer in [2, ${holders - 1}]`);
    const seed = values.seed;
    const dropRng = seed === undefined ? systemRng : new DeterministicRng(`tally/simulate/${seed}/drops`);
    const drops = chooseDrops(dropRng, n, Math.round(rate * n), at, threat);
    result = simulate({
      clients: n, dim, bits, threshold, threat, graph, provider: getProvider(providerName),
      ...(seed === undefined ? {} : { seed }), ...(file ? { inputs: file.inputs } : {}), drops,
    });
  } catch (err) {
    if (err instanceof UsageError || (err instanceof TallyError && err.code.endsWith('BAD_CONFIG')) || (err instanceof TallyError && err.code.endsWith('BAD_THRESHOLD'))) {
      console.error(`tally simulate: ${err instanceof TallyError ? `${err.code}: ` : ''}${err.message}`);
      return 2;
    }
    throw err;
  }

  const c = result.config;
  const ok = result.selfCheck;
  log(summary(result, ok));
  if (values.out !== undefined) {
    const report = result.aborted ? { aborted: result.aborted.code, round: result.aborted.round, message: result.aborted.message } : {
      bits: c.bits, clients: c.clientIds.length, dim: c.dim, threshold: c.threshold, threat: c.threat,
      graph: c.graph.kind, neighbors: c.graph.kind === 'harary' ? c.graph.degree : c.clientIds.length - 1,
      survivors: result.survivors, dropped: c.clientIds.map((_, i) => i).filter((i) => !result.survivors.includes(i)), sum: Array.from(result.sum!),
      self_check: ok, server_seconds: result.serverSeconds, client_seconds_mean: result.clientSecondsMean,
      bytes_up_per_client: result.bytesUpPerClient, bytes_down_per_client: result.bytesDownPerClient,
      max_message_up_bytes: result.maxMessageUp,
      rounds: result.rounds.map((x) => ({ round: x.round, server_seconds: x.serverSeconds, client_seconds_mean: x.clientSecondsMean, bytes_up: x.bytesUp, bytes_down: x.bytesDown })),
    };
    writeFileSync(values.out, JSON.stringify(report, null, 1) + '\n');
  }
  if (result.aborted) {
    console.error(`tally simulate: aborted: ${result.aborted.code}`);
    return 3;
  }
  return ok ? 0 : 1;
}
