/**
 * `npm run bench -- scale [--quick] [--only NAME]`: `tally simulate` at the
 * sizes of the simulator's scale targets, each in a fresh process, with the
 * run's wall time and peak resident memory (worker threads included) from
 * its JSON report.
 *
 * Baseline, measured in the same run: the floor, what node:crypto's own
 * calls cost however the rest is written. Every client agrees one X25519 key
 * with each neighbour in R1 (share encryption) and one in R2 (pairwise mask),
 * derives a key from each agreement with HKDF-SHA256, seals one share
 * ciphertext (AES-256-GCM) per neighbour in R1, opens one per neighbour in R4,
 * and expands one m-word mask per neighbour plus its self mask in R2. The
 * floor is those calls at the rates node:crypto shows on one core in the same
 * run (each call as the providers make it, results allocated as Node
 * allocates them), divided by the threads the clients ran on, plus the
 * server's own agreements and derivations for the pairwise masks of clients
 * that dropped after sharing keys, which it does alone on its thread.
 * Key-list checks, Shamir sharing, the messages, the rest of the server and
 * the garbage collector are all above it.
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { nativeProvider } from '../src/crypto/native.js';
import { DeterministicRng } from '../src/crypto/rng.js';
import { SHARE_PLAINTEXT_BYTES } from '../src/secagg/keys.js';
import { selects } from './_select.js';
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

/** Best rate (calls per second) of `call` over `count` calls, after a warm-up. */
function callRate(call: (i: number) => unknown, count: number): number {
  for (let i = 0; i < Math.min(count, 2000); i++) call(i); // warm-up (JIT; X25519 public keys imported once)
  let best = 0;
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < count; i++) call(i);
    best = Math.max(best, count / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  return best;
}

/** Calls per second on one core of what every client does per neighbour, with secagg-v1's sizes. */
interface CallRates {
  /** X25519: one private key, many public keys (as a client does). */
  x25519: number;
  /** HKDF-SHA256 of a 32-byte secret, 32-byte salt (the session id), 40-byte info. */
  hkdf: number;
  /** AES-256-GCM seal and open of a 96-byte share plaintext with its 65-byte associated data. */
  seal: number;
  open: number;
}

function callRates(): CallRates {
  const rng = new DeterministicRng('bench/scale/calls');
  const publics = Array.from({ length: 2000 }, () => nativeProvider.x25519PublicKey(rng.bytes(32)));
  const agree = nativeProvider.x25519Agreement(rng.bytes(32));
  const ikm = rng.bytes(32), salt = rng.bytes(32), info = rng.bytes(40);
  const key = rng.bytes(32), nonce = rng.bytes(12), plaintext = rng.bytes(SHARE_PLAINTEXT_BYTES), aad = rng.bytes(65);
  const sealed = nativeProvider.aesGcmSeal(key, nonce, plaintext, aad);
  return {
    x25519: callRate((i) => agree(publics[i % publics.length]!), 20_000),
    hkdf: callRate(() => nativeProvider.hkdf(ikm, salt, info, 32), 50_000),
    seal: callRate(() => nativeProvider.aesGcmSeal(key, nonce, plaintext, aad), 50_000),
    open: callRate(() => nativeProvider.aesGcmOpen(key, nonce, sealed, aad), 50_000),
  };
}

/** The best of each rate: the floor never flatters the run. */
function bestRates(a: CallRates, b: CallRates): CallRates {
  return { x25519: Math.max(a.x25519, b.x25519), hkdf: Math.max(a.hkdf, b.hkdf), seal: Math.max(a.seal, b.seal), open: Math.max(a.open, b.open) };
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

/** What the floor counts for one run (see the module comment). */
interface FloorCounts {
  /** The clients' X25519 agreements, each followed by one HKDF. */
  agreements: number;
  /** Share ciphertexts sealed (R1) and opened (R4) by the clients. */
  seals: number;
  opens: number;
  /** Keystream bytes the clients expanded in R2. */
  keystreamBytes: number;
  /** The server's agreements (and HKDFs) rebuilding the pairwise masks of clients dropped after sharing keys. */
  serverAgreements: number;
}

/**
 * Counted from the report's participants: each client that sent shares agreed
 * a key with, and sealed shares for, each neighbour that advertised; each
 * client that sent a masked input agreed one with each neighbour whose shares
 * reached it and expanded that many masks plus its own; each client that
 * answered the unmasking round opened the shares of each such neighbour; the
 * server agreed one key per pair of a client dropped in R2 and a neighbour in
 * the sum. Exact for the complete graph; for a Harary graph the
 * neighbourhoods are counted at the session's average survival rate.
 */
function floorCounts(r: Report): FloorCounts {
  const n = r.config.clients, k = r.config.neighbors, share = k / (n - 1);
  const [u1, u2, u3] = [participants(r, 0), participants(r, 1), participants(r, 2)];
  const unmasked = participants(r, 4);
  return {
    agreements: u2 * (u1 - 1) * share + u3 * (u2 - 1) * share,
    seals: u2 * (u1 - 1) * share,
    opens: unmasked * (u2 - 1) * share,
    keystreamBytes: u3 * (1 + (u2 - 1) * share) * 4 * r.config.dim,
    serverAgreements: (u2 - u3) * u3 * share,
  };
}

/** Seconds of the floor: the clients' calls over their threads, then the server's on its own. */
function floorSeconds(c: FloorCounts, rates: CallRates, aes: number, threads: number): { clients: number; server: number; total: number } {
  const clients = (c.agreements / rates.x25519 + c.agreements / rates.hkdf + c.seals / rates.seal + c.opens / rates.open + c.keystreamBytes / aes) / threads;
  const server = c.serverAgreements / rates.x25519 + c.serverAgreements / rates.hkdf;
  return { clients, server, total: clients + server };
}

const fmt = (x: number, d = 1) => x.toFixed(d);

/** Runs the suite (see the module comment); returns the results to record. */
export async function main(argv: string[]): Promise<object> {
  const { values } = parseArgs({ args: argv, options: { quick: { type: 'boolean' }, only: { type: 'string' } } });
  const loadAtStart = loadavg();
  let rates = callRates();
  let aes = rawKeystreamRate(64_000_000);
  const perSecond = (x: number) => `${fmt(x / 1000)}k/s`;
  console.log(`node:crypto on one core: X25519 ${perSecond(rates.x25519)}, HKDF ${perSecond(rates.hkdf)}, AES-256-GCM seal ${perSecond(rates.seal)} ` +
    `and open ${perSecond(rates.open)} (share sizes); AES-128-CTR keystream ${fmt(aes / 1e9, 2)} GB/s`);
  const rows = [];
  for (const c of cases(values.quick ?? false)) {
    if (!selects(c.name, values.only)) continue;
    const r = runCase(c);
    rates = bestRates(rates, callRates());
    aes = Math.max(aes, rawKeystreamRate(64_000_000, 1));
    const counts = floorCounts(r);
    const floor = floorSeconds(counts, rates, aes, r.threads);
    const targets: Record<string, { limit: number; met: boolean }> = {};
    if (c.maxWallSeconds !== undefined) targets.wallSeconds = { limit: c.maxWallSeconds, met: r.wallSeconds <= c.maxWallSeconds };
    if (c.maxPeakRssBytes !== undefined) targets.peakRssBytes = { limit: c.maxPeakRssBytes, met: r.peakRssBytes <= c.maxPeakRssBytes };
    const row = {
      name: c.name, command: `tally simulate ${c.args.join(' ')}`, outcome: r.outcome, selfCheck: r.selfCheck ?? false, threads: r.threads,
      wallSeconds: r.wallSeconds, peakRssBytes: r.peakRssBytes, serverSeconds: r.serverSeconds,
      floorCounts: Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, Math.round(v)])),
      floorSeconds: floor.total, floorClientSeconds: floor.clients, floorServerSeconds: floor.server, wallOverFloor: r.wallSeconds / floor.total, targets,
    };
    rows.push(row);
    const met = Object.entries(targets).map(([k, t]) => `${k} ${t.met ? 'met' : 'MISSED'}`).join(', ');
    console.log(`${c.name.padEnd(34)} ${fmt(r.wallSeconds).padStart(7)} s wall  ${fmt(r.peakRssBytes / 2 ** 20, 0).padStart(6)} MiB peak  ` +
      `${(counts.agreements / 1e6).toFixed(2)}M agreements, ${(counts.seals / 1e6).toFixed(2)}M seals, ${(counts.opens / 1e6).toFixed(2)}M opens, ${fmt(counts.keystreamBytes / 1e9)} GB keystream: ` +
      `floor ${fmt(floor.total)} s (clients ${fmt(floor.clients)} s on ${r.threads} threads, server ${fmt(floor.server)} s): wall ÷ floor ${fmt(r.wallSeconds / floor.total, 2)}` +
      `  self-check ${r.selfCheck ? 'OK' : 'FAILED'}${met ? `  [${met}]` : ''}`);
  }
  return {
    suite: 'scale', date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown',
    loadAverageAtStart: loadAtStart, callsPerSecond: rates, aesCtrBytesPerSecond: aes, cases: rows,
  };
}
