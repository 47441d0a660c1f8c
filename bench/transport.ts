/**
 * `npm run bench -- transport [--sites N] [--dim M] [--bits B] [--procs P] [--dropout RATE] [--drop-after R] [--seed S] [--log] [--keep]`:
 * one secure-aggregation session over the network, as `tally serve` and
 * `tally join` run it: N concurrent sites (default 500) on loopback over TLS,
 * m = M (default 10,000), SecAgg+ (the Harary graph with the degree and
 * threshold of the parameter finder, as `tally consortium init --graph harary`
 * picks them), semi-honest, b = 32, no dropouts by default.
 *
 * Dropouts: with `--dropout RATE` (default 0), round(RATE·N) sites, chosen
 * from the seed (the sites with the smallest SHA-256 of
 * `tally/bench/transport/<seed>/drop/<i>`), drop out: each sends its
 * messages up to and including round R = `--drop-after` (0 … 3, default 1:
 * after its encrypted shares) and then leaves, closing its connection
 * (`runSite`'s `leaveAfterRound`). The coordinator drops them in the next
 * round it expects a message of (R + 1; R4 after R2 or R3, since the
 * semi-honest model has no R3) and, with R ≤ 1, rebuilds their masks from
 * the others' shares in R4 and leaves their inputs out of the sum; with
 * R ≥ 2 their masked inputs are in the sum.
 *
 * The consortium is written to a temporary folder by `initConsortium`, with
 * deadlines long enough for N TLS handshakes at once on a small machine. The
 * coordinator is `tally serve --once --out --quiet` in a child process (with
 * `--log`, without `--quiet`: its log gives the time at which the sites were
 * connected and each round closed, for a few per cent more coordinator CPU);
 * the sites run in P child processes
 * (bench/_transport-sites.ts), each running its share of the sites
 * concurrently, one TLS connection per site. The coordinator starts the
 * session as soon as every roster site is connected.
 *
 * Checks: the session completed with every site in the sum but the chosen
 * dropouts with R ≤ 1; its sum equals the sum of the survivors' inputs,
 * recomputed from the seed, mod 2^b; the coordinator's dropped list is
 * exactly the chosen sites, each in round R + 1 (R4 for R = 3); every site
 * process reports every one of its other sites in the sum, in that session
 * (the consortium keeps the sum from the sites, the default), and every one
 * of its chosen sites as left.
 *
 * Baseline, measured in the same run after the session: `tally simulate` on
 * the same case (same n, m, b, graph, degree, threshold, threat, and
 * `--dropout RATE --drop-at r<R+1>`, its own choice of the same number of
 * dropping clients, or `--dropout 0`), in one process over the lockstep channel: its server seconds and
 * its secagg bytes up and down per client. Targets: the session completes;
 * coordinator peak RSS < 1 GB; envelope bytes per site, up and down, within
 * 10% of simulate's per-client bytes; coordinator CPU seconds (the whole
 * session: TLS, WebSocket, envelopes, store and driver, from the start of
 * gathering to the outcome) ≤ 1.5 × simulate's server seconds.
 *
 * Network floor, measured after the baseline: a bare `node:tls` server with
 * the coordinator's certificate carrying the same bytes per site in the same
 * steps as the session (session-start and each round's messages down, each
 * round's messages up, simulate's per-client bytes, then the result), with no
 * WebSocket, envelope or protocol work (bench/_tls-floor.ts): its CPU seconds
 * are what any coordinator terminating these TLS connections in Node spends
 * before doing anything, reported against simulate's server seconds and
 * against the coordinator's CPU.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initConsortium } from '../src/federation/consortium.js';
import { encodeEnvelope } from '../src/transport/envelope.js';
import { siteInput, type SitesJob, type SitesReport } from './_transport-sites.js';
import { runSimulate } from './_simulate.js';
import { runTlsFloor, type FloorStep, type TlsFloorResult } from './_tls-floor.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const SITES = fileURLToPath(new URL('./_transport-sites.js', import.meta.url));

/** Deadlines for N sites connecting at once to one coordinator on a small machine (milliseconds). */
const DEADLINES = { gatherMs: 120_000, roundMs: 60_000, handshakeMs: 120_000, idleMs: 300_000, reconnectMaxMs: 300_000 };
/** All sites share 127.0.0.1: the per-address rate limit must let them all in, retries included. */
const CONNECTIONS_PER_MINUTE = 100_000;

interface Proc {
  readonly p: ChildProcess;
  out: string;
  err: string;
  readonly exit: Promise<number | null>;
  waitFor(re: RegExp, ms: number): Promise<string>;
}

function start(args: string[]): Proc {
  const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc: Proc = {
    p, out: '', err: '',
    exit: new Promise((resolve) => p.on('exit', (code, signal) => resolve(signal !== null ? null : code))),
    waitFor(re, ms) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = proc.out.split('\n').find((l) => re.test(l));
          if (m !== undefined) { clearTimeout(t); p.stdout!.off('data', check); p.off('exit', gone); resolve(m); }
        };
        const gone = (): void => { clearTimeout(t); reject(new Error(`exited before printing ${re}: ${proc.err.trim().split('\n').slice(-3).join(' ')}`)); };
        const t = setTimeout(() => { p.off('exit', gone); reject(new Error(`no line matching ${re} within ${ms} ms`)); }, ms);
        p.stdout!.on('data', check);
        p.once('exit', gone);
        check();
      });
    },
  };
  p.stdout!.on('data', (d: Buffer) => { proc.out += d.toString(); });
  p.stderr!.on('data', (d: Buffer) => { proc.err += d.toString(); });
  return proc;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves with `p`'s exit code, or 'timeout' after `ms`. */
function exitWithin(p: Proc, ms: number): Promise<number | null | 'timeout'> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve('timeout'), ms);
    void p.exit.then((c) => { clearTimeout(t); resolve(c); });
  });
}

/** Phase times from the coordinator's log (ISO timestamp, then the line). */
function phases(log: string): { firstConnectedS?: number; allConnectedS?: number; sessionStartS?: number; rounds: { round: number; seconds: number; answered: number }[]; outcomeS?: number; connected: number; disconnected: number; refused: string[] } {
  const lines = log.split('\n').map((l) => ({ at: Date.parse(l.slice(0, 24)), text: l.slice(25) })).filter((l) => Number.isFinite(l.at));
  const t0 = lines[0]?.at ?? 0;
  const s = (at: number | undefined) => (at === undefined ? undefined : (at - t0) / 1000);
  const connects = lines.filter((l) => /^site \S+ connected from/.test(l.text));
  const startLine = lines.find((l) => /^session \S+ started/.test(l.text));
  const roundLines = lines.filter((l) => /^session \S+ R\d closed/.test(l.text));
  let prev = startLine?.at ?? t0;
  const rounds = roundLines.map((l) => {
    const [, r, answered] = /R(\d) closed: (\d+) answered/.exec(l.text)!;
    const seconds = (l.at - prev) / 1000;
    prev = l.at;
    return { round: Number(r), seconds, answered: Number(answered) };
  });
  const outcome = lines.find((l) => /^session \S+ (completed|aborted)/.test(l.text));
  return {
    firstConnectedS: s(connects[0]?.at), allConnectedS: s(connects[connects.length - 1]?.at), sessionStartS: s(startLine?.at),
    rounds, outcomeS: s(outcome?.at), connected: connects.length,
    disconnected: lines.filter((l) => /^site \S+ disconnected/.test(l.text) && (outcome === undefined || l.at < outcome.at)).length,
    refused: lines.filter((l) => /^refused /.test(l.text)).map((l) => l.text),
  };
}

interface ServeResult {
  session: string;
  outcome: 'completed' | 'aborted';
  survivors: string[];
  dropped: { site: string; round: number; code: string }[];
  sum?: number[];
  abort?: { code: string; message: string; round: number };
  rounds: { round: number; participants: string[] }[];
  traffic: { up: number; down: number };
  wallSeconds: number;
  cpuSeconds: number;
  peakRssBytes: number;
}

interface SimulateReport {
  serverSeconds: number;
  clientSecondsMean: number;
  wallSeconds: number;
  peakRssBytes: number;
  bytesUpPerClient: number;
  bytesDownPerClient: number;
  selfCheck?: boolean;
  rounds: { round: number; serverSeconds: number; bytesUp: number; bytesDown: number }[];
}

const fmt = (x: number, d = 3) => x.toFixed(d);

/** The `count` sites (1-based indices, ascending) that drop out: those with the smallest SHA-256 of `tally/bench/transport/<seed>/drop/<i>`. */
export function chooseDrops(seed: string, n: number, count: number): number[] {
  const key = (i: number) => createHash('sha256').update(`tally/bench/transport/${seed}/drop/${i}`).digest('hex');
  return Array.from({ length: n }, (_, i) => ({ i: i + 1, h: key(i + 1) })).sort((a, b) => (a.h < b.h ? -1 : 1)).slice(0, count).map((x) => x.i).sort((a, b) => a - b);
}
const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

/** Runs the suite (see the module comment); returns the results to record. */
export async function main(argv: string[]): Promise<object> {
  const { values } = parseArgs({
    args: argv, options: {
      sites: { type: 'string' }, dim: { type: 'string' }, bits: { type: 'string' }, procs: { type: 'string' }, seed: { type: 'string' }, log: { type: 'boolean' }, keep: { type: 'boolean' },
      dropout: { type: 'string' }, 'drop-after': { type: 'string' },
    },
  });
  const int = (v: string | undefined, name: string, dflt: number, lo: number): number => {
    const x = Number(v ?? dflt);
    if (!Number.isInteger(x) || x < lo) throw new Error(`--${name} expected an integer ≥ ${lo}, got ${v}`);
    return x;
  };
  const n = int(values.sites, 'sites', 500, 3);
  const dim = int(values.dim, 'dim', 10_000, 1);
  const procs = Math.min(n, int(values.procs, 'procs', 4, 1));
  const seed = values.seed ?? 'transport';
  const bits = int(values.bits, 'bits', 32, 1);
  if (bits > 32) throw new Error(`--bits expected an integer in [1, 32], got ${bits}`);
  const rate = Number(values.dropout ?? 0);
  if (!(rate >= 0 && rate < 1)) throw new Error(`--dropout expected a fraction in [0, 1), got ${values.dropout}`);
  const dropAfter = int(values['drop-after'], 'drop-after', 1, 0);
  if (dropAfter > 3) throw new Error(`--drop-after expected an integer in [0, 3], got ${dropAfter}`);
  // The dropping sites, from the seed; the round the coordinator drops them in (semi-honest: no R3); whether their inputs are in the sum.
  const drops = chooseDrops(seed, n, Math.round(rate * n));
  const dropRound = dropAfter + 1 === 3 ? 4 : dropAfter + 1;
  const dropsInSum = dropAfter >= 2;
  const loadAtStart = loadavg();
  console.log(`load average at start: ${loadAtStart.map((x) => x.toFixed(2)).join(', ')} (${cpus().length} cores)`);

  // The consortium: the finder's Harary degree and threshold, long deadlines.
  const dir = mkdtempSync(join(tmpdir(), 'tally-bench-transport-'));
  try {
    const port = await freePort();
    const init = await initConsortium({ dir, sites: n, dim, bits, graph: 'harary', threat: 'semi-honest', port, name: 'tally transport benchmark' });
    const a = init.consortium.config.aggregation;
    if (a.graph !== 'harary') throw new Error(`the parameter finder chose the ${a.graph} graph for ${n} sites`);
    const k = a.degree!, t = a.threshold;
    const doc = JSON.parse(readFileSync(init.configFile, 'utf8')) as { deadlines: object; limits: object };
    doc.deadlines = { ...doc.deadlines, ...DEADLINES };
    doc.limits = { ...doc.limits, connectionsPerMinutePerIp: CONNECTIONS_PER_MINUTE };
    writeFileSync(init.configFile, JSON.stringify(doc, null, 2) + '\n');
    const caseName = `secagg+ n=${n} m=${dim >= 1000 ? `${dim / 1000}k` : dim} k=${k} t=${t} b=${bits} semi-honest, TLS loopback` +
      (drops.length > 0 ? `, ${drops.length} sites leave after R${dropAfter}` : '');
    console.log(`${caseName}: consortium in ${dir}; ${procs} site processes`);

    // The coordinator, then the sites.
    const resultFile = join(dir, 'result.json');
    const serve = start([MAIN, 'serve', '--config', init.configFile, '--once', '--out', resultFile, ...(values.log === true ? [] : ['--quiet'])]);
    try {
      await serve.waitFor(/tally serve: listening on wss:/, 60_000);
    } catch (err) {
      serve.p.kill('SIGKILL');
      throw err;
    }
    const t0 = performance.now();
    const per = Math.ceil(n / procs);
    const jobs: SitesJob[] = Array.from({ length: procs }, (_, p) => {
      const from = p * per + 1, to = Math.min(n, (p + 1) * per);
      const leave = drops.filter((i) => i >= from && i <= to);
      return { config: init.configFile, keys: join(dir, 'keys'), state: dir, from, to, seed, ...(leave.length > 0 ? { leave, leaveAfterRound: dropAfter } : {}) };
    }).filter((j) => j.from <= j.to);
    const workers = jobs.map((j) => start([SITES, JSON.stringify(j)]));

    // The coordinator ends with the session (--once); the sites a moment later.
    const serveLimitMs = DEADLINES.gatherMs + 5 * DEADLINES.roundMs + 60_000;
    let serveExit = await exitWithin(serve, serveLimitMs);
    if (serveExit === 'timeout') {
      serve.p.kill('SIGTERM');
      serveExit = await exitWithin(serve, 10_000);
      if (serveExit === 'timeout') serve.p.kill('SIGKILL');
    }
    const sessionWall = (performance.now() - t0) / 1000;
    const workerExits = await Promise.all(workers.map(async (w) => {
      let c = await exitWithin(w, 60_000);
      if (c === 'timeout') { w.p.kill('SIGTERM'); c = await exitWithin(w, 15_000); }
      if (c === 'timeout') { w.p.kill('SIGKILL'); c = await w.exit; }
      return c;
    }));
    const reports: (SitesReport | undefined)[] = workers.map((w) => {
      const last = w.out.trim().split('\n').pop();
      try { return last === undefined || last === '' ? undefined : JSON.parse(last) as SitesReport; } catch { return undefined; }
    });
    const log = values.log === true ? phases(serve.out) : undefined;
    let result: ServeResult | undefined;
    try { result = JSON.parse(readFileSync(resultFile, 'utf8')) as ServeResult; } catch { result = undefined; }

    // Checks: completion, the survivors and the dropped, the sum against the survivors' inputs, every site process.
    const checks: string[] = [];
    let sumOk = false;
    let droppedOk = false;
    const dropSet = new Set(drops);
    const expectedSurvivors = Array.from({ length: n }, (_, i) => i + 1).filter((i) => dropsInSum || !dropSet.has(i)).map((i) => `site-${i}`);
    if (result === undefined) checks.push(`no result file (serve exit ${serveExit}; stderr: ${serve.err.trim().split('\n').slice(-3).join(' ') || 'empty'})`);
    else if (result.outcome !== 'completed') checks.push(`session aborted in R${result.abort?.round}: ${result.abort?.code}: ${result.abort?.message}`);
    else {
      const expected = new Uint32Array(dim);
      for (const s of result.survivors) {
        const v = siteInput(seed, Number(s.slice('site-'.length)), dim, bits);
        for (let j = 0; j < dim; j++) expected[j] = (expected[j]! + v[j]!) % 2 ** bits;
      }
      sumOk = result.sum !== undefined && result.sum.length === dim && result.sum.every((x, j) => x === expected[j]);
      if (!sumOk) checks.push('the sum differs from the sum of the survivors\' inputs');
      const survivorsOk = result.survivors.length === expectedSurvivors.length && [...result.survivors].sort().join() === [...expectedSurvivors].sort().join();
      if (!survivorsOk) checks.push(`${result.survivors.length} of ${n} sites in the sum, expected ${expectedSurvivors.length} (dropped: ${result.dropped.slice(0, 5).map((d) => `${d.site} R${d.round} ${d.code}`).join(', ')}${result.dropped.length > 5 ? ', …' : ''})`);
      // The coordinator's dropped list: exactly the chosen sites, each in the round it fell silent in.
      const got = result.dropped.map((d) => `${d.site}@R${d.round}`).sort();
      const want = drops.map((i) => `site-${i}@R${dropRound}`).sort();
      droppedOk = got.join() === want.join();
      if (!droppedOk) {
        const extra = got.filter((x) => !want.includes(x)), missing = want.filter((x) => !got.includes(x));
        checks.push(`the coordinator's dropped list is not the ${drops.length} chosen sites in R${dropRound}: ${extra.length} unexpected (${extra.slice(0, 5).join(', ')}), ${missing.length} missing (${missing.slice(0, 5).join(', ')})`);
      }
    }
    // Sites receive the sum only with aggregation.sumToSites, which the benchmark's consortium (the default) does not set.
    const digest = 'withheld';
    reports.forEach((r, i) => {
      const j = jobs[i]!;
      if (r === undefined) { checks.push(`site process ${j.from}..${j.to} printed no report (exit ${workerExits[i]}; stderr: ${workers[i]!.err.trim().split('\n').slice(-3).join(' ') || 'empty'})`); return; }
      const leaving = j.leave?.length ?? 0;
      if (r.inSum !== r.sites - leaving) checks.push(`site process ${j.from}..${j.to}: ${r.inSum} of ${r.sites - leaving} staying sites in the sum; failures: ${[...new Set(r.failed.map((f) => `${f.code}: ${f.message}`))].slice(0, 3).join(' | ')}`);
      if (r.left.length !== leaving) checks.push(`site process ${j.from}..${j.to}: ${r.left.length} of its ${leaving} dropping sites left as asked`);
      const seen = r.inSum > 0 ? 1 : 0;
      if (r.sums.length !== seen || (seen === 1 && r.sums[0]!.sha256 !== digest)) checks.push(`site process ${j.from}..${j.to} saw ${r.sums.length} sums, ${r.sums.some((s) => s.sha256 === digest) ? 'including' : 'none of them'} the coordinator's`);
    });
    const completed = result?.outcome === 'completed' && checks.length === 0;

    // Envelope bytes that simulate has no counterpart of: session-start to every site and the result to every site still
    // connected (not those that left), per site on average.
    let startBytes = 0, resultBytes = 0;
    if (result !== undefined) {
      const session = Buffer.from(result.session, 'hex');
      const clientIds = Array.from({ length: n }, (_, i) => i + 1);
      const id = (site: string) => Number(site.slice('site-'.length));
      const inSum = new Set(result.survivors.map(id));
      startBytes = encodeEnvelope({ kind: 'session-start', session, clientIds, threshold: t, bits, dim, threat: 'semi-honest', graph: { kind: 'harary', degree: k }, roundDeadlinesMs: [1, 1, 1, 1, 1].map(() => DEADLINES.roundMs) }).length;
      const resultFrame = encodeEnvelope({ kind: 'result', session, sum: new Uint32Array(0), survivors: result.survivors.map(id), dropped: clientIds.filter((i) => !inSum.has(i)) }).length;
      resultBytes = resultFrame * (n - drops.length) / n;
    }

    // Baseline: tally simulate on the same case, after the session, on the same machine.
    const simArgs = ['--clients', `${n}`, '--dim', `${dim}`, '--bits', `${bits}`, '--graph', 'harary', '--neighbors', `${k}`, '--threshold', `${t}`,
      ...(drops.length > 0 ? ['--dropout', `${rate}`, '--drop-at', `r${dropAfter + 1}`] : ['--dropout', '0']), '--threat', 'semi-honest', '--seed', seed];
    let sim: SimulateReport | undefined;
    let simError: string | undefined;
    try {
      sim = runSimulate(simArgs) as SimulateReport;
    } catch (err) {
      simError = String((err as { stderr?: string }).stderr || err).trim().split('\n').slice(-3).join(' ');
    }
    // The network floor: a bare TLS server carrying the same bytes per site and step (bench/_tls-floor.ts).
    let floor: TlsFloorResult | undefined;
    let floorError: string | undefined;
    if (sim !== undefined) {
      const perSite = (x: number) => Math.round(x / n);
      const [r0, ...later] = sim.rounds;
      const steps: FloorStep[] = [
        { down: Math.round(startBytes) + perSite(r0?.bytesDown ?? 0), up: perSite(r0?.bytesUp ?? 0) },
        ...later.map((r) => ({ down: perSite(r.bytesDown), up: perSite(r.bytesUp) })),
      ];
      try {
        floor = await runTlsFloor({ tlsDir: join(dir, 'tls'), sites: n, procs, steps, finalDown: Math.round(resultBytes) });
      } catch (err) {
        floorError = String(err);
      }
    }
    const loadAtEnd = loadavg();

    // Figures and targets.
    const upPerSite = result !== undefined ? result.traffic.up / n : NaN;
    const downPerSite = result !== undefined ? result.traffic.down / n : NaN;
    const downSecaggPerSite = downPerSite - startBytes - resultBytes;
    const upRatio = sim !== undefined ? upPerSite / sim.bytesUpPerClient : NaN;
    const downRatio = sim !== undefined ? downPerSite / sim.bytesDownPerClient : NaN;
    const cpuRatio = sim !== undefined && result !== undefined ? result.cpuSeconds / sim.serverSeconds : NaN;
    const within = (r: number) => Math.abs(r - 1) <= 0.1;
    const targets = {
      sessionCompletes: { met: completed },
      coordinatorPeakRss: { limitBytes: 1e9, value: result?.peakRssBytes ?? null, met: result !== undefined && result.peakRssBytes < 1e9 },
      bytesUpPerSite: { limitRatio: [0.9, 1.1], ratio: upRatio, met: within(upRatio) },
      bytesDownPerSite: { limitRatio: [0.9, 1.1], ratio: downRatio, met: within(downRatio) },
      coordinatorCpuSeconds: { limitRatio: 1.5, ratio: cpuRatio, met: cpuRatio <= 1.5 },
    };
    const mark = (m: boolean) => (m ? 'MET' : 'MISSED');

    console.log(`\n${caseName}`);
    for (const c of checks) console.log(`  CHECK FAILED: ${c}`);
    if (completed) {
      console.log(`  session completed: ${result!.survivors.length} of ${n} sites in the sum, the sum equals the sum of their inputs mod 2^${bits}, every site process saw it` +
        (drops.length > 0 ? `; the ${drops.length} chosen sites left after R${dropAfter} and are exactly the coordinator's dropped list, all in R${dropRound}` : ''));
    }
    if (log?.sessionStartS !== undefined) {
      console.log(`  coordinator log: first site connected at ${fmt(log.firstConnectedS!, 2)} s, all ${log.connected} at ${fmt(log.allConnectedS!, 2)} s, ` +
        `session started at ${fmt(log.sessionStartS, 2)} s, rounds ${log.rounds.map((r) => `R${r.round} ${fmt(r.seconds, 2)} s`).join(', ')}, outcome at ${fmt(log.outcomeS ?? NaN, 2)} s; ` +
        `${log.disconnected} disconnections, ${log.refused.length} refusals before the outcome`);
    }
    for (const r of log?.refused.slice(0, 5) ?? []) console.log(`  refused: ${r}`);
    if (simError !== undefined) console.log(`  tally simulate failed: ${simError}`);
    if (floorError !== undefined) console.log(`  TLS floor failed: ${floorError}`);
    const rows: [string, string, string, string][] = [
      ['session wall s (coordinator, gather to outcome)', result !== undefined ? fmt(result.wallSeconds, 2) : '-', '', ''],
      ['coordinator CPU s', result !== undefined ? fmt(result.cpuSeconds, 2) : '-', sim !== undefined ? `simulate server ${fmt(sim.serverSeconds, 3)} s` : '-', `${fmt(cpuRatio, 2)} (≤ 1.5 ${mark(targets.coordinatorCpuSeconds.met)})`],
      ['TLS floor CPU s (bare node:tls, same bytes)', floor !== undefined ? fmt(floor.cpuSeconds, 2) : '-', sim !== undefined ? `simulate server ${fmt(sim.serverSeconds, 3)} s` : '-', floor !== undefined && sim !== undefined ? `${fmt(floor.cpuSeconds / sim.serverSeconds, 2)} (coordinator ÷ floor ${fmt((result?.cpuSeconds ?? NaN) / floor.cpuSeconds, 2)})` : '-'],
      ['coordinator peak RSS', result !== undefined ? mib(result.peakRssBytes) : '-', '', `< 1 GB ${mark(targets.coordinatorPeakRss.met)}`],
      ['envelope bytes up per site', result !== undefined ? `${upPerSite.toFixed(0)} B` : '-', sim !== undefined ? `simulate ${sim.bytesUpPerClient.toFixed(0)} B` : '-', `${fmt(upRatio, 3)} (0.9..1.1 ${mark(targets.bytesUpPerSite.met)})`],
      ['envelope bytes down per site', result !== undefined ? `${downPerSite.toFixed(0)} B` : '-', sim !== undefined ? `simulate ${sim.bytesDownPerClient.toFixed(0)} B` : '-', `${fmt(downRatio, 3)} (0.9..1.1 ${mark(targets.bytesDownPerSite.met)})`],
      ['  of which session-start + result', `${(startBytes + resultBytes).toFixed(0)} B`, '', ''],
      ['  down without them (secagg frames)', result !== undefined ? `${downSecaggPerSite.toFixed(0)} B` : '-', '', sim !== undefined ? fmt(downSecaggPerSite / sim.bytesDownPerClient, 3) : '-'],
    ];
    console.log(`  ${'figure'.padEnd(48)} ${'measured'.padStart(12)}  ${'baseline'.padEnd(28)} ratio (target)`);
    for (const [a1, b1, c1, d1] of rows) console.log(`  ${a1.padEnd(48)} ${b1.padStart(12)}  ${c1.padEnd(28)} ${d1}`);
    console.log(`  session completes: ${mark(targets.sessionCompletes.met)}; site processes: ${reports.map((r) => (r === undefined ? 'no report' : `${r.inSum}/${r.sites}${r.left.length > 0 ? ` (+${r.left.length} left)` : ''} in ${fmt(r.seconds, 1)} s, CPU ${fmt(r.cpuSeconds, 1)} s, ${mib(r.peakRssBytes)}`)).join('; ')}`);
    if (sim !== undefined) console.log(`  tally simulate ${simArgs.join(' ')}: server ${fmt(sim.serverSeconds)} s, wall ${fmt(sim.wallSeconds, 1)} s, up ${kib(sim.bytesUpPerClient)} and down ${kib(sim.bytesDownPerClient)} per client`);
    console.log(`load average at end: ${loadAtEnd.map((x) => x.toFixed(2)).join(', ')}`);

    return {
      suite: 'transport', date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, cores: cpus().length,
      loadAverage: { start: loadAtStart, end: loadAtEnd },
      case: { name: caseName, sites: n, dim, bits, graph: 'harary', degree: k, threshold: t, threat: 'semi-honest', dropout: rate, dropAfter, procs, seed, coordinatorLog: values.log === true, deadlines: DEADLINES, connectionsPerMinutePerIp: CONNECTIONS_PER_MINUTE },
      drops: { count: drops.length, afterRound: dropAfter, droppedInRound: dropRound, inSum: dropsInSum, sites: drops.map((i) => `site-${i}`) },
      checks: { completed, sumOk, droppedOk: result !== undefined && result.outcome === 'completed' ? droppedOk : false, failures: checks },
      session: result === undefined ? null : {
        outcome: result.outcome, survivors: result.survivors.length, dropped: result.dropped.length,
        droppedCodes: [...new Set(result.dropped.map((d) => d.code))], wallSeconds: result.wallSeconds,
        cpuSeconds: result.cpuSeconds, peakRssBytes: result.peakRssBytes, traffic: result.traffic,
        bytesUpPerSite: upPerSite, bytesDownPerSite: downPerSite, sessionStartBytes: startBytes, resultBytes, bytesDownSecaggPerSite: downSecaggPerSite,
        benchWallSeconds: sessionWall, serveExit,
      },
      ...(log !== undefined ? { coordinatorLog: log } : {}),
      siteProcesses: reports.map((r, i) => ({ ...(r ?? { from: jobs[i]!.from, to: jobs[i]!.to, report: null }), exit: workerExits[i], failed: r?.failed.slice(0, 10) })),
      simulate: sim === undefined ? { command: `tally simulate ${simArgs.join(' ')}`, error: simError } : {
        command: `tally simulate ${simArgs.join(' ')}`, serverSeconds: sim.serverSeconds, wallSeconds: sim.wallSeconds, peakRssBytes: sim.peakRssBytes,
        bytesUpPerClient: sim.bytesUpPerClient, bytesDownPerClient: sim.bytesDownPerClient, selfCheck: sim.selfCheck ?? null,
        rounds: sim.rounds.map((r) => ({ round: r.round, serverSeconds: r.serverSeconds, bytesUp: r.bytesUp, bytesDown: r.bytesDown })),
      },
      tlsFloor: floor === undefined ? { error: floorError ?? 'no simulate baseline' } : floor,
      ratios: {
        bytesUp: upRatio, bytesDown: downRatio, bytesDownSecaggOnly: sim !== undefined ? downSecaggPerSite / sim.bytesDownPerClient : null, cpuOverSimulateServer: cpuRatio,
        tlsFloorOverSimulateServer: floor !== undefined && sim !== undefined ? floor.cpuSeconds / sim.serverSeconds : null,
        cpuOverTlsFloor: floor !== undefined && result !== undefined ? result.cpuSeconds / floor.cpuSeconds : null,
      },
      targets,
    };
  } finally {
    if (values.keep === true) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}
