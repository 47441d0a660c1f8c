/**
 * Server process of the secagg benchmark: one session run by the session
 * driver (`ServerDriver`), the server here and every client in a child
 * process (bench/_secagg-clients.ts) over IPC, so the time and peak RSS
 * measured here are the server's alone. The channel is the IPC pipe; a round
 * closes when every expected client answered (the driver does that) or when
 * the client process reports it has nothing more to send for the round (the
 * deadline policy). Prints one JSON line of results.
 *
 * Server time is the wall time spent inside the driver (decoding, the state
 * machine, encoding each broadcast once), with the process's CPU time over
 * the same spans beside it; handing the encoded bytes to IPC is not counted. Also counted, for the floor (bench/secagg.ts): the keystream
 * the server must expand in R4 (one m-word mask per surviving neighbour of
 * each client that shared keys and sent no masked input, one self mask per
 * survivor, 4·m bytes each) and the masked-input bytes received.
 */
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { primeAllocator } from '../src/crypto/_heap.js';
import { getProvider } from '../src/crypto/index.js';
import { DeterministicRng } from '../src/crypto/rng.js';
import type { SessionConfig } from '../src/secagg/config.js';
import { maskedSum } from '../src/crypto/aggregator.js';
import { ServerDriver, type ServerOutcome } from '../src/secagg/driver.js';

/** Where the dropping clients fall silent: `mixed` rotates r1, r2, r4; `rN` is one point for all. */
export type DropMode = 'mixed' | 'r1' | 'r2' | 'r4';

export interface ServerCase {
  name: string; n: number; dim: number; bits: number; dropout: number; drop: DropMode; threshold: number;
  graph: SessionConfig['graph']; seed: string; provider?: string;
  /** Threads of the server's mask removal (`maskedSum`'s option); the library default when absent. */
  threads?: number;
}

/** What the server process prints (one JSON line). */
export interface CaseResult {
  threads?: number;
  name: string; n: number; dim: number; bits: number; dropout: number; drop: DropMode; threshold: number;
  graph: 'complete' | 'harary'; neighbors: number;
  /** `completed`, or `aborted: CODE`. */
  outcome: string;
  /** |U3|, and |U2 ∖ U3| (shared keys, no masked input). */
  survivors: number; droppedAfterShares: number;
  /** The server's sum equals the plaintext sum of the clients that sent a masked input. */
  selfCheck: boolean;
  /** Wall time inside the driver; CPU time of the whole process (every thread) over the same spans. */
  serverSeconds: number; serverCpuSeconds: number; roundSeconds: number[]; roundCpuSeconds: number[]; clientSecondsPerClient: number;
  bytesUpPerClient: number; bytesDownPerClient: number;
  /** The largest masked-input message. */
  maskedInputBytes: number;
  /** One client's upload over all rounds, the largest. */
  maxBytesUpOneClient: number;
  /** What the floor is made of: R4 keystream bytes (and how many m-word masks), masked-input bytes received. */
  floorCounts: { keystreamBytes: number; masks: number; inputBytes: number };
  serverPeakRssBytes: number;
}

/** Messages from the client process. */
export type FromClients =
  | { type: 'msg'; from: number; bytes: Uint8Array }
  | { type: 'end'; round: number }
  | { type: 'stats'; clientSeconds: number; sumHash: string };

/** Client id → the first round in which it sends nothing; `count` clients spread evenly over the ids. */
function dropSchedule(ids: readonly number[], count: number, mode: DropMode): Record<number, number> {
  const at: Record<DropMode, number[]> = { mixed: [1, 2, 4], r1: [1], r2: [2], r4: [4] };
  const points = at[mode];
  const silentFrom: Record<number, number> = {};
  for (let k = 0; k < count; k++) silentFrom[ids[Math.floor((k * ids.length) / count)]!] = points[k % points.length]!;
  return silentFrom;
}

async function main(): Promise<void> {
  const c = JSON.parse(process.argv[2]!) as ServerCase;
  primeAllocator(); // as `tally serve` does when it starts, before any session
  const provider = getProvider((c.provider ?? 'native') as 'native');
  const rng = new DeterministicRng(`bench/${c.seed}/server`);
  const ids = Array.from({ length: c.n }, (_, i) => i + 1);
  const config: SessionConfig = { nonce: rng.bytes(32), clientIds: ids, threshold: c.threshold, bits: c.bits, dim: c.dim, threat: 'semi-honest', graph: c.graph };
  const silentFrom = dropSchedule(ids, Math.round(c.dropout * c.n), c.drop);

  const child = fork(new URL('./_secagg-clients.js', import.meta.url), [], { serialization: 'advanced' });
  let serverSeconds = 0;
  let serverCpuSeconds = 0;
  let up = 0;
  let down = 0;
  let maskedInputBytes = 0;
  let maskedInputBytesReceived = 0;
  const upById = new Map<number, number>();
  const roundSeconds = [0, 0, 0, 0, 0];
  const roundCpuSeconds = [0, 0, 0, 0, 0];

  // Server → clients: the driver's sends are queued and handed to IPC after the driver returns, one batch per round.
  let outbox: { round: number; messages: { to: number; bytes: Uint8Array }[] }[] = [];
  let sendingRound = 0;
  // The deadline: the current round's close function, called when the client process has sent everything for it.
  let deadline: { round: number; close: () => void } | undefined;
  const driver = new ServerDriver({
    config, provider, ...(c.threads !== undefined ? { aggregator: (dim: number, bits: number, p: typeof provider) => maskedSum(dim, bits, p, { threads: c.threads! }) } : {}),
    channel: {
      send: (to, bytes) => {
        let batch = outbox[outbox.length - 1];
        if (batch?.round !== sendingRound) outbox.push((batch = { round: sendingRound, messages: [] }));
        batch.messages.push({ to, bytes });
        down += bytes.length;
      },
    },
    deadlines: {
      arm: (round, close) => {
        const d = { round, close };
        deadline = d;
        return () => { if (deadline === d) deadline = undefined; };
      },
    },
    listener: {
      message: (e) => {
        if (e.direction === 'to-client') { sendingRound = e.round; return; }
        up += e.bytes.length;
        upById.set(e.peer, (upById.get(e.peer) ?? 0) + e.bytes.length);
        if (e.round === 2) { maskedInputBytes = Math.max(maskedInputBytes, e.bytes.length); maskedInputBytesReceived += e.bytes.length; }
      },
    },
  });

  /** Runs `f` in the driver, timed as server work of the current round, then hands what it sent to IPC. */
  const timed = (f: () => void): void => {
    const round = Math.min(driver.round, 4);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    f();
    const dt = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(c0);
    serverCpuSeconds += (cpu.user + cpu.system) / 1e6;
    roundCpuSeconds[round]! += (cpu.user + cpu.system) / 1e6;
    serverSeconds += dt;
    roundSeconds[round]! += dt;
    const batches = outbox;
    outbox = [];
    for (const b of batches) child.send({ type: 'deliver', ...b });
    if (driver.outcome !== undefined && !doneSent) { doneSent = true; child.send({ type: 'done' }); }
  };
  let doneSent = false;

  let resolveStats: (s: { clientSeconds: number; sumHash: string }) => void;
  const statsArrived = new Promise<{ clientSeconds: number; sumHash: string }>((r) => { resolveStats = r; });
  child.on('message', (m: FromClients) => {
    if (m.type === 'stats') resolveStats(m);
    else if (m.type === 'msg') timed(() => driver.receive(m.from, m.bytes));
    // The client process has sent all it will for round m.round: that round's deadline passes (unless it already closed).
    else if (deadline !== undefined && deadline.round === m.round) { const close = deadline.close; timed(close); }
  });
  child.send({ type: 'init', config, seed: c.seed, silentFrom, provider: c.provider ?? 'native' });
  const stats = await statsArrived;
  const outcome = driver.outcome as ServerOutcome;

  // The floor's counts: U2 = clients whose R1 shares were accepted, U3 = whose masked input was.
  let maskWords = 0;
  if (outcome.kind === 'completed') {
    const u2 = outcome.rounds.find((r) => r.round === 1)?.participants ?? [];
    const u3 = new Set(outcome.survivors);
    const graph = driver.state.ctx.graph;
    maskWords = u3.size;
    for (const v of u2) if (!u3.has(v)) maskWords += graph.neighbors(v).filter((u) => u3.has(u)).length;
  }
  const sumHash = outcome.kind === 'completed' ? createHash('sha256').update(new Uint8Array(outcome.sum.buffer, outcome.sum.byteOffset, outcome.sum.byteLength)).digest('hex') : '';
  const droppedAfterShares = outcome.kind === 'completed'
    ? (outcome.rounds.find((r) => r.round === 1)?.participants ?? []).filter((v) => !outcome.survivors.includes(v)).length : 0;
  const result: CaseResult = {
    name: c.name, n: c.n, dim: c.dim, bits: c.bits, ...(c.threads !== undefined ? { threads: c.threads } : {}), dropout: c.dropout, drop: c.drop, threshold: c.threshold,
    graph: c.graph.kind, neighbors: c.graph.kind === 'harary' ? c.graph.degree : c.n - 1,
    outcome: outcome.kind === 'completed' ? 'completed' : `aborted: ${outcome.code}`,
    survivors: outcome.kind === 'completed' ? outcome.survivors.length : 0, droppedAfterShares,
    selfCheck: sumHash !== '' && sumHash === stats.sumHash,
    serverSeconds, serverCpuSeconds, roundSeconds, roundCpuSeconds, clientSecondsPerClient: stats.clientSeconds / c.n,
    bytesUpPerClient: up / c.n, bytesDownPerClient: down / c.n, maskedInputBytes,
    maxBytesUpOneClient: Math.max(...upById.values()),
    floorCounts: { keystreamBytes: 4 * c.dim * maskWords, masks: maskWords, inputBytes: maskedInputBytesReceived },
    serverPeakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
  console.log(JSON.stringify(result));
}

await main();
