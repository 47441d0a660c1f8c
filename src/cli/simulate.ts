/**
 * `tally simulate`: one whole secure-aggregation session in one process, with
 * injected dropouts, a self-check against the plaintext sum, a human summary
 * and an optional JSON report. Every option is checked, alone and in
 * combination, before any work starts.
 * Exit status: 0 done, 1 the self-check failed, 2 bad usage, 3 aborted.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { checkOutPath, isInt, joinNegativeValues, numberOption, usageError, UsageError } from './_args.js';
import { systemRng, type Rng } from '../crypto/rng.js';
import { toHex } from '../crypto/_validate.js';
import { TallyError } from '../errors.js';
import { sessionDegree, type GraphSpec, type ThreatModel } from '../secagg/config.js';
import { chooseSessionParams, DEFAULT_CORRUPT_FRACTION, DEFAULT_DROPOUT_RATE, thresholdRange } from '../secagg/params.js';
import type { DropPoint, SimulationResult } from '../transport/simulation.js';

const MAX_CLIENTS = 100_000;
const MAX_DIM = 1 << 28;
/** Runs expected to take longer than this say so before they start. */
const ANNOUNCE_SECONDS = 10;

const HELP = `usage: tally simulate [options]

Runs a secure-aggregation session (secagg-v1) with a server and N clients in
one process and checks the result against the plaintext sum.

  --clients N         number of clients, 3..${MAX_CLIENTS} (4.. with --threat malicious; default 20)
  --dim M             vector length, 1..${MAX_DIM} (default 10000)
  --bits B            inputs and sum are integers mod 2^B, 1..32 (default 32)
  --dropout RATE      fraction of clients told to drop out, 0..1 (default 0.1)
  --drop-at WHEN      the first round a dropping client is silent in:
                        r0: never advertises keys; r1: advertised keys, shares
                        none; r2: shared keys, sends no masked input;
                        r3: masked input sent, silent from the consistency
                        check (semi-honest has none: silent in unmasking);
                        r4: silent in unmasking; mixed (default): r1, r2, r4
                        in turn (and r3 with --threat malicious).
                      Clients silent from r3 or r4 are in the sum: the server
                      accepted their masked input and unmasks it anyway.
  --threat MODEL      semi-honest (default) | malicious
  --graph KIND        auto (default): the SecAgg+ parameter finder's choice,
                      a Harary graph, or the complete graph where that is
                      cheaper; complete (Bonawitz et al. 2017); harary (SecAgg+)
  --neighbors K       Harary degree, with --graph harary only: 2 ≤ K ≤ N−1,
                      odd K only when N is even (or K = N−1), K ≥ 3 against a
                      malicious server; default: the parameter finder's choice
  --threshold T       Shamir threshold, 2 ≤ T ≤ K (K = N−1 for the complete
                      graph), and T > 2(K+1)/3 against a malicious server;
                      default: the parameter finder's choice, or ⌊(K+1)/2⌋+1
                      (malicious ⌊2(K+1)/3⌋+1) for an explicit graph
  --corrupt FRACTION  fraction of clients assumed to collude with the server,
                      for the parameter finder, 0 ≤ F < 1 (default 0.05)
  --seed S            seed of every random choice (keys, inputs, dropouts);
                      default: drawn from system randomness and reported
  --inputs FILE       JSON {"bits": B, "inputs": [[M integers], ... N rows]}
  --out FILE          write a JSON report (its folder must exist)
  --provider NAME     native (default) | portable
  --threads T         threads the clients run on: auto (default: every core,
                      one for short sessions) or 1..64; the result is the same
  --quiet             print nothing but errors
  --aggregator A      secagg (default) | he+masks | he: homomorphic summation
                      (he-sum-v1, docs/he.md) through the same session: the
                      sites share a BGV key (key ceremony first) and send
                      ciphertexts of their inputs, plus the secagg masks mod t
                      with he+masks; the coordinator never sees the sum.
                      Same options and --out report, plus ciphertext bytes;
                      the clients run on one thread
  --he-set NAME       with --aggregator he|he+masks: auto (default) |
                      bgv-4096-q60 | bgv-8192-q120
  -h, --help          show this help

Exit status: 0 done, 1 the self-check failed, 2 bad usage, 3 the session aborted.
`;

/**
 * The session's shape: --clients, --dim and --bits, or those of the --inputs
 * file when not given (the values already read with their defaults are
 * n0, dim0, bits0); a file that contradicts a given option is refused.
 */
export function inputShape(values: Values, n0: number, dim0: number, bits0: number): { file: ReturnType<typeof loadInputs> | undefined; n: number; dim: number; bits: number } {
  const file = values.inputs === undefined ? undefined : loadInputs(values.inputs);
  const n = values.clients === undefined && file ? file.inputs.length : n0;
  const dim = values.dim === undefined && file ? file.inputs[0]!.length : dim0;
  const bits = values.bits === undefined && file ? file.bits : bits0;
  if (file && (file.inputs.length !== n || file.inputs[0]!.length !== dim || file.bits !== bits)) {
    throw new UsageError(`--inputs holds ${file.inputs.length} rows of ${file.inputs[0]!.length} at ${file.bits} bits, which contradicts --clients/--dim/--bits`);
  }
  return { file, n, dim, bits };
}

/** A mistake in the command line: one line to the user, exit 2. */
const STRING_OPTIONS = ['clients', 'dim', 'bits', 'dropout', 'drop-at', 'threat', 'graph', 'neighbors', 'threshold', 'corrupt', 'seed', 'inputs', 'out', 'provider', 'threads', 'aggregator', 'he-set'] as const;

function oneOf<T extends string>(v: string | undefined, name: string, dflt: T, allowed: readonly T[]): T {
  if (v === undefined) return dflt;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`--${name} expected ${allowed.join('|')}, got '${v}'`);
  return v as T;
}

export function loadInputs(file: string): { bits: number; inputs: Uint32Array[] } {
  let doc: unknown;
  try { doc = JSON.parse(readFileSync(file, 'utf8')); } catch (err) { throw new UsageError(`--inputs: cannot read ${file}: ${(err as Error).message.split('\n')[0]}`); }
  const d = doc as { bits?: unknown; inputs?: unknown };
  if (typeof d !== 'object' || d === null || !isInt(1, 32)(d.bits as number) || !Array.isArray(d.inputs) || d.inputs.length < 3) {
    throw new UsageError(`--inputs: ${file} must hold {"bits": 1..32, "inputs": [[...], ...]} with at least 3 rows`);
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
export function chooseDrops(rng: Rng, n: number, count: number, at: string, threat: ThreatModel): Map<number, DropPoint> {
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

/** Everything a run needs, checked. */
export interface Plan {
  readonly n: number;
  readonly dim: number;
  readonly bits: number;
  readonly rate: number;
  readonly at: string;
  readonly threat: ThreatModel;
  readonly graph: GraphSpec;
  readonly threshold: number;
  readonly corrupt: number;
  readonly seed: string;
  readonly provider: 'native' | 'portable';
  readonly threads: number | 'auto';
  readonly inputsFile: string | undefined;
  readonly inputs: Uint32Array[] | undefined;
  readonly out: string | undefined;
  /** Lines for the user before the run (the finder's reasoning). */
  readonly notes: string[];
  /** Warnings (stderr). */
  readonly warnings: string[];
}

export type Values = Partial<Record<(typeof STRING_OPTIONS)[number], string>>;

export function plan(values: Values): Plan {
  // Each option alone.
  const threat = oneOf(values.threat, 'threat', 'semi-honest', ['semi-honest', 'malicious'] as const);
  const minClients = threat === 'malicious' ? 4 : 3;
  const n0 = numberOption(values.clients, 'clients', 20, isInt(1, MAX_CLIENTS), `an integer in [${minClients}, ${MAX_CLIENTS}]`);
  const dim0 = numberOption(values.dim, 'dim', 10000, isInt(1, MAX_DIM), `an integer in [1, ${MAX_DIM}]`);
  const bits0 = numberOption(values.bits, 'bits', 32, isInt(1, 32), 'an integer in [1, 32]');
  const rate = numberOption(values.dropout, 'dropout', DEFAULT_DROPOUT_RATE, (x) => x >= 0 && x <= 1, 'a rate in [0, 1]');
  const at = oneOf(values['drop-at'], 'drop-at', 'mixed', ['r0', 'r1', 'r2', 'r3', 'r4', 'mixed'] as const);
  const graphKind = oneOf(values.graph, 'graph', 'auto', ['auto', 'complete', 'harary'] as const);
  const corrupt = numberOption(values.corrupt, 'corrupt', DEFAULT_CORRUPT_FRACTION, (x) => x >= 0 && x < 1, 'a fraction in [0, 1)');
  const provider = oneOf(values.provider, 'provider', 'native', ['native', 'portable'] as const);
  const threads = values.threads === 'auto' ? 'auto' : numberOption(values.threads, 'threads', 0, isInt(1, 64), "'auto' or an integer in [1, 64]") || 'auto';
  if (values.seed !== undefined && values.seed.length === 0) throw new UsageError('--seed expected a non-empty string');
  if (values.out !== undefined) checkOutPath(values.out);
  // Combinations.
  const { file, n, dim, bits } = inputShape(values, n0, dim0, bits0);
  if (n < minClients) {
    throw new UsageError(`--clients ${n} is too few: each client's secrets are shared among its k neighbours with a threshold 2 ≤ t ≤ k` +
      (threat === 'malicious' ? ' and t > 2(k+1)/3 against a malicious server, which needs k ≥ 3, so at least 4 clients' : ', which needs k ≥ 2, so at least 3 clients'));
  }
  if (values.neighbors !== undefined && graphKind !== 'harary') throw new UsageError('--neighbors sets the Harary degree: use it with --graph harary');
  if (values.corrupt !== undefined && graphKind === 'complete') throw new UsageError('--corrupt is an assumption of the parameter finder, which --graph complete does not use');

  const notes: string[] = [];
  const warnings: string[] = [];
  let degree: number | undefined;
  if (values.neighbors !== undefined) {
    const oddOk = n % 2 === 0 ? 'any K' : 'even K (N is odd)';
    degree = numberOption(values.neighbors, 'neighbors', 0, isInt(threat === 'malicious' ? 3 : 2, n - 1),
      `an integer in [${threat === 'malicious' ? 3 : 2}, ${n - 1}] with ${n} clients${threat === 'malicious' ? ' against a malicious server' : ''}`);
    if (degree % 2 === 1 && n % 2 === 1 && degree !== n - 1) {
      throw new UsageError(`--neighbors ${degree}: with ${n} clients the Harary graph takes ${oddOk} in [2, ${n - 1}], or K = ${n - 1}`);
    }
  }
  let p;
  try {
    p = chooseSessionParams({ n, threat, graph: graphKind, degree, corruptFraction: corrupt, dropoutRate: rate });
  } catch (err) {
    if (!(err instanceof TallyError)) throw err;
    throw new UsageError(`--corrupt ${corrupt} with --dropout ${rate} and ${n} clients: the parameter finder found no safe graph (${err.message}); lower --corrupt or --dropout, or choose --graph complete`);
  }
  if (p.finder) notes.push(`parameter finder: ${p.graph === 'harary' ? `Harary graph, k=${p.k}, t=${p.t}` : `complete graph, t=${p.t}`}: ${p.finder.reason}`);
  const graph: GraphSpec = p.graph === 'harary' ? { kind: 'harary', degree: p.k } : { kind: 'complete' };
  const k = p.k;
  const recommended = p.t;
  const [lo, hi] = thresholdRange(k, threat);
  let threshold = recommended;
  if (values.threshold !== undefined) {
    const rule = threat === 'malicious' ? `2(k+1)/3 < T ≤ k against a malicious server (Bonawitz et al. 2017 §6)` : '2 ≤ T ≤ k';
    threshold = numberOption(values.threshold, 'threshold', 0, isInt(lo, hi),
      lo <= hi ? `an integer in [${lo}, ${hi}] with k=${k} share holders per client (${rule})` : `a value that k=${k} does not allow (${rule})`);
    if (threshold < recommended) {
      warnings.push(`--threshold ${threshold} is below the ${recommended} the defaults use: the server together with any ${threshold} colluding neighbours ` +
        `of a client can rebuild its secrets and unmask its input (privacy needs t above the number of corrupt share holders, Bonawitz et al. 2017 §6)`);
    }
  }
  return {
    n, dim, bits, rate, at, threat, graph, threshold, corrupt, provider, threads, notes, warnings,
    seed: values.seed ?? toHex(systemRng.bytes(16)),
    inputsFile: values.inputs, inputs: file?.inputs, out: values.out,
  };
}

const ROUND_NAMES = ['R0 AdvertiseKeys', 'R1 ShareKeys', 'R2 MaskedInput', 'R3 Consistency', 'R4 Unmasking'];
const DROP_MEANING: Record<DropPoint, string> = {
  r0: 'silent from R0 (no keys advertised)', r1: 'silent from R1 (keys advertised, no shares)', r2: 'silent from R2 (keys shared, no masked input)',
  r3: 'silent from R3 (masked input sent)', r4: 'silent from R4 (masked input sent, no unmasking)',
};

/** What the whole run cost this process: wall time and peak resident memory (worker threads included). */
export interface RunCost { wallSeconds: number; peakRssBytes: number }

export function summary(r: SimulationResult, p: Plan, cost: RunCost): string {
  const c = r.config;
  const n = c.clientIds.length;
  const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  const told = r.drops.reduce((a, d) => a + d.told, 0);
  const lines = [
    `secagg-v1: ${n} clients, m=${c.dim}, b=${c.bits}, t=${c.threshold}, ${c.threat}, ${c.graph.kind === 'harary' ? `harary k=${c.graph.degree}` : 'complete graph'}, seed ${r.seed}`,
    `dropouts: ${told} of ${n} clients told to fall silent (--dropout ${p.rate}, --drop-at ${p.at})`,
  ];
  for (const d of r.drops) {
    const fate = Object.entries(d.droppedInRound).map(([round, count]) => `${count} dropped by the server in R${round}`);
    lines.push(`  ${d.at}: ${d.told} ${DROP_MEANING[d.at]}: ${d.inSum} in the sum, ${d.told - d.inSum} not${fate.length ? `; ${fate.join(', ')}` : ''}`);
  }
  const droppedTold = r.drops.reduce((a, d) => a + Object.values(d.droppedInRound).reduce((x, y) => x + y, 0), 0);
  if (r.dropped.length > droppedTold) lines.push(`  ${r.dropped.length - droppedTold} other client(s) dropped by the server: ${r.dropped.filter((x) => x.code !== 'SILENT').map((x) => `${x.index} in R${x.round} (${x.code})`).slice(0, 5).join(', ')}`);
  lines.push(
    r.aborted ? `ABORTED in round ${r.aborted.round}: ${r.aborted.code}: ${r.aborted.message}` : `survivors: ${r.survivors.length} in the sum, ${n - r.survivors.length} not`,
    `round               server s   client s (mean)   up/client   down/client`,
    ...r.rounds.filter((x) => x.round !== 3 || c.threat === 'malicious').map((x) => `${ROUND_NAMES[x.round]!.padEnd(18)} ${x.serverSeconds.toFixed(3).padStart(9)} ${x.clientSecondsMean.toFixed(4).padStart(17)} ${kib(x.bytesUp / n).padStart(11)} ${kib(x.bytesDown / n).padStart(13)}`),
    `total: server ${r.serverSeconds.toFixed(3)} s, client ${r.clientSecondsMean.toFixed(4)} s (${r.threads} thread${r.threads === 1 ? '' : 's'}), up ${kib(r.bytesUpPerClient)} and down ${kib(r.bytesDownPerClient)} per client`,
    `run: ${cost.wallSeconds.toFixed(1)} s wall, peak memory ${(cost.peakRssBytes / 2 ** 20).toFixed(0)} MiB`,
  );
  if (r.selfCheck !== undefined) lines.push(`self-check against the plaintext sum of the survivors: ${r.selfCheck ? 'OK' : 'MISMATCH'}`);
  return lines.join('\n');
}

function version(): string {
  return (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;
}

/** The JSON report: the configuration that reproduces the run, then what happened. */
export function report(r: SimulationResult, p: Plan, cost: RunCost): Record<string, unknown> {
  const c = r.config;
  return {
    tally: version(), node: process.version,
    config: {
      clients: c.clientIds.length, dim: c.dim, bits: c.bits, threshold: c.threshold, threat: c.threat,
      graph: c.graph.kind, neighbors: sessionDegree(c),
      dropout: p.rate, dropAt: p.at, corrupt: p.corrupt, seed: r.seed, provider: p.provider, inputs: p.inputsFile ?? null,
    },
    outcome: r.aborted ? 'aborted' : 'completed',
    ...(r.aborted ? { aborted: r.aborted } : {}),
    ...(r.sum ? { sum: Array.from(r.sum), selfCheck: r.selfCheck } : {}),
    survivors: r.survivors,
    notInSum: c.clientIds.map((_, i) => i).filter((i) => !r.survivors.includes(i)),
    drops: r.drops,
    dropped: r.dropped,
    threads: r.threads,
    serverSeconds: r.serverSeconds, clientSecondsMean: r.clientSecondsMean,
    wallSeconds: cost.wallSeconds, peakRssBytes: cost.peakRssBytes,
    bytesUpPerClient: r.bytesUpPerClient, bytesDownPerClient: r.bytesDownPerClient, maxMessageUpBytes: r.maxMessageUp,
    // A semi-honest session has no R3 (consistency check): its rounds are R0, R1, R2 and R4.
    rounds: r.rounds.filter((x) => x.round !== 3 || c.threat === 'malicious').map((x) => ({
      round: x.round, participants: x.participants, serverSeconds: x.serverSeconds, clientSecondsMean: x.clientSecondsMean, bytesUp: x.bytesUp, bytesDown: x.bytesDown,
    })),
  };
}

/** One line on stderr, rewritten in place (a TTY only). */
function progressLine(): { update(text: string): void; done(): void } {
  let last = 0, shown = false;
  return {
    update(text) {
      const now = Date.now();
      if (now - last < 200) return;
      last = now;
      shown = true;
      process.stderr.write(`\r\x1b[K${text}`);
    },
    done() { if (shown) process.stderr.write('\r\x1b[K'); },
  };
}

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: joinNegativeValues(argv, STRING_OPTIONS), strict: true, allowPositionals: false, options: {
        ...Object.fromEntries(STRING_OPTIONS.map((o) => [o, { type: 'string' as const }])),
        quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    return usageError('simulate', (err as Error).message.split('\n')[0]!);
  }
  if (values.help) { console.log(HELP); return 0; }
  const aggregator = (values as Values).aggregator ?? 'secagg';
  if (!['secagg', 'he', 'he+masks'].includes(aggregator)) return usageError('simulate', `--aggregator expected secagg|he+masks|he, got '${aggregator}'`);
  const heSet = (values as Values)['he-set'];
  if (heSet !== undefined && aggregator === 'secagg') return usageError('simulate', '--he-set chooses a parameter set of --aggregator he or he+masks');
  if (heSet !== undefined && !['auto', 'bgv-4096-q60', 'bgv-8192-q120'].includes(heSet)) return usageError('simulate', `--he-set expected auto|bgv-4096-q60|bgv-8192-q120, got '${heSet}'`);
  let p: Plan;
  try {
    p = plan(values as Values);
  } catch (err) {
    if (err instanceof UsageError) return usageError('simulate', err.message);
    throw err;
  }
  if (aggregator !== 'secagg') {
    if (p.dim > 1 << 24) return usageError('simulate', `--dim ${p.dim}: an HE session carries at most 2^24 values`);
    return (await import('./_simulate-he.js')).runHe(p, aggregator as 'he' | 'he+masks', heSet === 'auto' ? undefined : heSet, values.quiet === true);
  }
  const quiet = values.quiet === true;
  const log = quiet ? () => {} : console.log;
  for (const line of p.notes) log(line);
  if (!quiet) for (const w of p.warnings) console.error(`tally simulate: warning: ${w}`);

  // Loaded once the command line is known to be good, so a usage error answers at once.
  const [{ getProvider }, { simulationRng }, { estimateSeconds, measureCosts, roughly }, { simulate, autoClientThreads }] = await Promise.all([
    import('../crypto/index.js'), import('../transport/_clients.js'), import('../transport/estimate.js'), import('../transport/simulation.js'),
  ]);
  const provider = getProvider(p.provider);
  const k = p.graph.kind === 'harary' ? p.graph.degree : p.n - 1;
  const count = Math.round(p.rate * p.n);
  const drops = chooseDrops(simulationRng(p.seed, 'drops'), p.n, count, p.at, p.threat);
  if (!quiet) {
    const threads = p.threads === 'auto' ? autoClientThreads(p.dim) : p.threads;
    const early = [...drops.values()].filter((d) => d === 'r1' || d === 'r2').length;
    const e = estimateSeconds({ clients: p.n, degree: k, threshold: p.threshold, dim: p.dim, droppedAfterSharing: early, threads, malicious: p.threat === 'malicious' }, measureCosts(provider));
    if (e.total > ANNOUNCE_SECONDS) console.error(`tally simulate: ${roughly(e.total)} expected (${p.n} clients, k=${k}, m=${p.dim})`);
  }
  const tty = !quiet && process.stderr.isTTY === true;
  const line = progressLine();
  const started = Date.now();
  let result: SimulationResult;
  try {
    result = await simulate({
      clients: p.n, dim: p.dim, bits: p.bits, threshold: p.threshold, threat: p.threat, graph: p.graph, provider,
      seed: p.seed, drops, threads: p.threads, ...(p.inputs ? { inputs: p.inputs } : {}),
      ...(tty ? {
        onProgress: (e: { round: number; done: number; total: number }) =>
          line.update(`${ROUND_NAMES[e.round] ?? `R${e.round}`}: ${e.done}/${e.total} clients, ${Math.round((Date.now() - started) / 1000)} s`),
      } : {}),
    });
  } catch (err) {
    line.done();
    if (err instanceof TallyError && err.code.startsWith('SECAGG_ERR_BAD_')) return usageError('simulate', `${err.code}: ${err.message}`);
    throw err;
  }
  line.done();
  // maxRSS: the process's peak resident set in KiB (getrusage), worker threads included.
  const cost: RunCost = { wallSeconds: (Date.now() - started) / 1000, peakRssBytes: process.resourceUsage().maxRSS * 1024 };
  log(summary(result, p, cost));
  if (p.out !== undefined) writeFileSync(p.out, JSON.stringify(report(result, p, cost), null, 1) + '\n');
  if (result.aborted) {
    console.error(`tally simulate: aborted in round ${result.aborted.round}: ${result.aborted.code}`);
    return 3;
  }
  return result.selfCheck ? 0 : 1;
}
