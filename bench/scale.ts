/**
 * `npm run bench -- scale [--quick] [--only NAME]`: `tally simulate` at the
 * sizes of the simulator's scale targets, each in a fresh process, with the
 * run's wall time and peak resident memory (worker threads included) from
 * its JSON report.
 *
 * Baseline, measured in the same run: the clients' floor. Every client
 * agrees one X25519 key with each neighbour in R1 (share encryption) and one
 * in R2 (pairwise mask), and expands one m-word mask per neighbour plus its
 * self mask in R2, however the rest is written: the floor is the agreements
 * at the measured rate of node:crypto X25519 on one core plus the keystream
 * at the measured raw AES-128-CTR rate, divided by the threads the clients
 * ran on. Key-list checks, share encryption, Shamir sharing, the server and
 * the messages are all above it.
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { nativeProvider } from '../src/crypto/native.js';
import { DeterministicRng } from '../src/crypto/rng.js';
import { rawKeystreamRate } from './_mask.js';
import { runSimulate } from './_simulate.js';

interface ScaleCase {
  readonly name: string;
  readonly args: readonly string[];
  /** Targets: wall seconds and peak resident bytes, when the project names them. */
  readonly maxWallSeconds?: number;
  readonly maxPeakRssBytes?: number;
}

function cases(quick: boolean): ScaleCase[] {
  if (quick) {
    return [
      { name: 'complete n=300 m=10', args: ['--clients', '300', '--dim', '10', '--graph', 'complete', '--seed', 'scale-a'] },
      { name: 'secagg+ n=2000 m=10k (finder)', args: ['--clients', '2000', '--dim', '10000', '--seed', 'scale-b'] },
    ];
  }
  return [
    { name: 'complete n=1000 m=10', args: ['--clients', '1000', '--dim', '10', '--graph', 'complete', '--seed', 'scale-a'], maxWallSeconds: 60 },
    { name: 'secagg+ n=10000 m=100k (finder)', args: ['--clients', '10000', '--dim', '100000', '--seed', 'scale-b'], maxWallSeconds: 600, maxPeakRssBytes: 1e9 },
  ];
}

/** X25519 agreements per second on one core: one private key, many public keys (as a client does). */
function agreementRate(count = 20_000): number {
  const rng = new DeterministicRng('bench/scale/x25519');
  const publics = Array.from({ length: 2000 }, () => nativeProvider.x25519PublicKey(rng.bytes(32)));
  const agree = nativeProvider.x25519Agreement(rng.bytes(32));
  for (let i = 0; i < 2000; i++) agree(publics[i]!); // warm-up; later calls find the keys imported
  let best = 0;
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < count; i++) agree(publics[i % publics.length]!);
    best = Math.max(best, count / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  return best;
}

interface Report {
  config: { clients: number; neighbors: number; dim: number };
  outcome: string;
  selfCheck?: boolean;
  threads: number;
  wallSeconds: number;
  peakRssBytes: number;
  serverSeconds: number;
  rounds: { round: number; participants: number[] }[];
}

/** One run of `tally simulate` in a fresh process; its report. */
function runCase(c: ScaleCase): Report {
  return runSimulate(c.args) as Report;
}

/** How many clients took part in `round` (the report's participants). */
function participants(r: Report, round: number): number {
  return r.rounds.find((x) => x.round === round)?.participants.length ?? 0;
}

/**
 * X25519 agreements the clients did: each client that sent shares agreed a key
 * with each neighbour that advertised, each client that sent a masked input
 * one with each neighbour whose shares reached it. Exact for the complete
 * graph; for a Harary graph the neighbourhoods are counted at the session's
 * average survival rate.
 */
function agreements(r: Report): number {
  const n = r.config.clients, k = r.config.neighbors;
  const [u1, u2, sentMasked] = [participants(r, 0), participants(r, 1), participants(r, 2)];
  return u2 * ((u1 - 1) * k) / (n - 1) + sentMasked * ((u2 - 1) * k) / (n - 1);
}

/** Keystream bytes the clients expanded in R2: a self mask and one pairwise mask per neighbour in U2, 4·m bytes each. */
function keystreamBytes(r: Report): number {
  const n = r.config.clients, k = r.config.neighbors;
  return participants(r, 2) * (1 + ((participants(r, 1) - 1) * k) / (n - 1)) * 4 * r.config.dim;
}

const fmt = (x: number, d = 1) => x.toFixed(d);

/** Runs the suite (see the module comment); returns the results to record. */
export async function main(argv: string[]): Promise<object> {
  const { values } = parseArgs({ args: argv, options: { quick: { type: 'boolean' }, only: { type: 'string' } } });
  const loadAtStart = loadavg();
  let rate = agreementRate();
  let aes = rawKeystreamRate(64_000_000);
  console.log(`X25519 agreements (node:crypto, one core, one private key): ${fmt(rate / 1000)}k/s; AES-128-CTR keystream: ${fmt(aes / 1e9, 2)} GB/s`);
  const rows = [];
  for (const c of cases(values.quick ?? false)) {
    if (values.only !== undefined && !c.name.includes(values.only)) continue;
    const r = runCase(c);
    rate = Math.max(rate, agreementRate()); // the best the machine showed: the floor never flatters the run
    aes = Math.max(aes, rawKeystreamRate(64_000_000, 1));
    const a = agreements(r), ks = keystreamBytes(r);
    const floorSeconds = (a / rate + ks / aes) / r.threads;
    const targets: Record<string, { limit: number; met: boolean }> = {};
    if (c.maxWallSeconds !== undefined) targets.wallSeconds = { limit: c.maxWallSeconds, met: r.wallSeconds <= c.maxWallSeconds };
    if (c.maxPeakRssBytes !== undefined) targets.peakRssBytes = { limit: c.maxPeakRssBytes, met: r.peakRssBytes <= c.maxPeakRssBytes };
    const row = {
      name: c.name, command: `tally simulate ${c.args.join(' ')}`, outcome: r.outcome, selfCheck: r.selfCheck ?? false, threads: r.threads,
      wallSeconds: r.wallSeconds, peakRssBytes: r.peakRssBytes, serverSeconds: r.serverSeconds,
      agreements: Math.round(a), keystreamBytes: Math.round(ks), floorSeconds, wallOverFloor: r.wallSeconds / floorSeconds, targets,
    };
    rows.push(row);
    const met = Object.entries(targets).map(([k, t]) => `${k} ${t.met ? 'met' : 'MISSED'}`).join(', ');
    console.log(`${c.name.padEnd(34)} ${fmt(r.wallSeconds).padStart(7)} s wall  ${fmt(r.peakRssBytes / 2 ** 20, 0).padStart(6)} MiB peak  ` +
      `${(a / 1e6).toFixed(2)}M agreements + ${fmt(ks / 1e9)} GB keystream, floor ${fmt(floorSeconds)} s (${r.threads} threads): wall ÷ floor ${fmt(r.wallSeconds / floorSeconds, 2)}` +
      `  self-check ${r.selfCheck ? 'OK' : 'FAILED'}${met ? `  [${met}]` : ''}`);
  }
  return {
    suite: 'scale', date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown',
    loadAverageAtStart: loadAtStart, x25519AgreementsPerSecond: rate, aesCtrBytesPerSecond: aes, cases: rows,
  };
}
