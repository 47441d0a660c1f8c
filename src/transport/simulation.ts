/**
 * A whole secagg-v1 session in one process over the in-memory lockstep
 * channel (`secagg/lockstep.ts`, the one session driver): one server, N
 * clients, injected dropouts, every message through the binary codec (so
 * byte counts are the real encoded sizes), each party's work timed
 * separately. Used by `tally simulate` and the benchmarks.
 *
 * Memory is O(m) plus O(n·k) metadata, like the server's: a client's input
 * is drawn from its own seeded stream when its masked-input round starts and
 * released after, each client's messages reach the server as soon as the
 * client has answered (the lockstep channel's `stream` option, or the
 * worker pool's bounded window) instead of a whole wave of masked inputs at
 * once, and the self-check re-draws the survivors' inputs one at a time
 * instead of keeping all n.
 *
 * Threads: with `threads` > 1 the clients run on worker threads
 * (`_clientPool.ts`) and the server on the calling thread. The server
 * receives the same messages in the same order as on one thread, so a seed
 * gives the same session, byte for byte, whatever the thread count.
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { ValidationError } from '../errors.js';
import type { CryptoProvider } from '../crypto/types.js';
import { systemRng } from '../crypto/rng.js';
import { toHex } from '../crypto/_validate.js';
import { sessionDegree, type AggregatorCommitment, type SessionConfig, type ThreatModel } from '../secagg/config.js';
import type { AggregatorFactory, MaskedInputEncoder } from '../crypto/aggregator.js';
import { ServerDriver, type ServerOutcome, type SessionListener } from '../secagg/driver.js';
import { LockstepNetwork } from '../secagg/lockstep.js';
import { plaintextSum } from '../secagg/session.js';
import type { DropRecord } from '../secagg/server/index.js';
import { drawnInput, simulatedClient, simulationRng, type ClientSetup } from './_clients.js';
import { ClientPool } from './_clientPool.js';
import { estimateSeconds, measureCosts } from './estimate.js';

/** The first round a dropping client is silent in: it sends nothing from `dropAt` on. */
export type DropPoint = 'r0' | 'r1' | 'r2' | 'r3' | 'r4';
export const DROP_POINTS: readonly DropPoint[] = ['r0', 'r1', 'r2', 'r3', 'r4'];
const DROP_ROUND: Record<DropPoint, number> = { r0: 0, r1: 1, r2: 2, r3: 3, r4: 4 };

export interface SimulationOptions {
  readonly clients: number;
  readonly dim: number;
  readonly bits: number;
  readonly threshold: number;
  readonly threat: ThreatModel;
  readonly graph: SessionConfig['graph'];
  readonly provider: CryptoProvider;
  /** Seed of every random choice (keys, inputs, nonce); drawn from the system CSPRNG when absent and reported. */
  readonly seed?: string;
  /** One input per client (entries < 2^bits); drawn per client from the seed when absent. */
  readonly inputs?: readonly Uint32Array[];
  /** Client index (0-based) → the round from which it is silent. */
  readonly drops?: ReadonlyMap<number, DropPoint>;
  /** Called as each round closes (e.g. for a progress line). */
  readonly onRound?: (e: { round: number; seconds: number }) => void;
  /** Called as clients finish their part of a round (at most a few hundred times a round). */
  readonly onProgress?: (e: { round: number; done: number; total: number }) => void;
  /**
   * Threads the clients run on: a count ≥ 1, or `'auto'` (the default): every
   * core, but one thread when the session is expected to take under a second,
   * and fewer when m is so large that each thread's vectors add up (over 512
   * MiB in all).
   * Only the `native` and `portable` providers run on worker threads.
   */
  readonly threads?: number | 'auto';
  /**
   * A session whose sum stays sealed (he-sum-v1 §8, set up by
   * src/he/simulate.ts): the config commits to `commitment`, the server sums
   * with `aggregator`, each client masks and encodes its input with
   * `maskedInput(id)`. The session is otherwise the same, on one thread (the
   * seams hold loaded HE state); the result carries `sealedSum` and no
   * self-check (the caller decrypts and checks).
   */
  readonly sealed?: {
    readonly commitment: AggregatorCommitment;
    readonly aggregator: AggregatorFactory;
    readonly maskedInput: (id: number) => MaskedInputEncoder;
  };
}

export interface RoundStats {
  round: number;
  serverSeconds: number;
  clientSecondsMean: number;
  bytesUp: number;
  bytesDown: number;
  /** 0-based indices of the clients whose message of this round the server accepted. */
  participants: number[];
}

/** What became of the clients told to drop at one point. */
export interface DropReport {
  readonly at: DropPoint;
  /** Clients told to fall silent from this round. */
  readonly told: number;
  /** Of those, how many are in the sum anyway (their masked input was accepted before they fell silent). */
  readonly inSum: number;
  /** Of those, how many the server dropped, by the round it dropped them in. */
  readonly droppedInRound: Record<number, number>;
}

export interface SimulationResult {
  readonly aborted?: { code: string; message: string; round: number };
  readonly sum?: Uint32Array;
  /** A sealed session (`sealed`): the sum's ciphertext envelope. */
  readonly sealedSum?: Uint8Array;
  /** The plaintext sum of the survivors' inputs mod 2^b (computed independently of the protocol). */
  readonly expected?: Uint32Array;
  /** `sum` equals `expected`. */
  readonly selfCheck?: boolean;
  /** 0-based indices of the clients whose inputs are in the sum. */
  readonly survivors: number[];
  /** 0-based indices of the clients dropped, with the round and reason. */
  readonly dropped: { index: number; round: number; code: string }[];
  readonly drops: DropReport[];
  readonly seed: string;
  readonly serverSeconds: number;
  readonly clientSecondsMean: number;
  readonly bytesUpPerClient: number;
  readonly bytesDownPerClient: number;
  /** Largest single client → server message (the masked input, for large m). */
  readonly maxMessageUp: number;
  readonly rounds: RoundStats[];
  readonly config: SessionConfig;
  /** Threads the clients ran on. */
  readonly threads: number;
  /** The input of client `index` (re-drawn from the seed, or the given one). */
  inputOf(index: number): Uint32Array;
}

/** Below this expected duration the clients stay on the calling thread (starting workers costs ~0.2 s). */
const POOL_MIN_SECONDS = 1;
/** 'auto' starts no more threads than hold about four vectors of m words each in this many bytes. */
const THREAD_BYTES = 512 << 20;
/** A pool segment of client messages stays under this many bytes (see `_clientPool.ts`). */
const SEGMENT_BYTES = 4 << 20;

/**
 * Most client threads 'auto' starts for vectors of `dim` entries: every core
 * (at most 16), fewer when each thread's vectors would add up past
 * {@link THREAD_BYTES}. A thread holds about four vectors of m words while a
 * client masks its input (sum, packed output, input, its random bytes).
 */
export function autoClientThreads(dim: number): number {
  return Math.max(1, Math.min(availableParallelism(), 16, Math.floor(THREAD_BYTES / (16 * dim))));
}

/** Threads for a session: the requested count, or for 'auto' every core when the session is long enough to pay. */
function threadsFor(o: SimulationOptions, config: SessionConfig): number {
  const want = o.threads ?? 'auto';
  if (want !== 'auto' && (!Number.isInteger(want) || want < 1 || want > 64)) {
    throw new ValidationError('SECAGG_ERR_BAD_CONFIG', `"threads" expected an integer in [1, 64] or 'auto', got ${String(want)}`);
  }
  if (o.provider.name !== 'native' && o.provider.name !== 'portable') return 1;
  if (want !== 'auto') return want;
  const cores = autoClientThreads(config.dim);
  if (cores < 2) return 1;
  const n = config.clientIds.length;
  const k = sessionDegree(config);
  const e = estimateSeconds({ clients: n, degree: k, threshold: config.threshold, dim: config.dim, droppedAfterSharing: 0, threads: 1, malicious: config.threat === 'malicious' }, measureCosts(o.provider));
  return e.clients >= POOL_MIN_SECONDS ? cores : 1;
}

/** Runs one session to completion or abort. */
export async function simulate(o: SimulationOptions): Promise<SimulationResult> {
  const { clients: n, provider } = o;
  if (!Number.isInteger(n) || n < 2) throw new ValidationError('SECAGG_ERR_BAD_CONFIG', `"clients" expected an integer ≥ 2, got ${n}`);
  if (o.inputs !== undefined && o.inputs.length !== n) throw new ValidationError('SECAGG_ERR_BAD_CONFIG', `expected ${n} inputs, got ${o.inputs.length}`);
  const seed = o.seed ?? toHex(systemRng.bytes(16));
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const setupRng = simulationRng(seed, 'setup');
  const seeds = o.threat === 'malicious' ? ids.map(() => setupRng.bytes(32)) : undefined;
  const config: SessionConfig = {
    nonce: setupRng.bytes(32), clientIds: ids, threshold: o.threshold, bits: o.bits, dim: o.dim,
    threat: o.threat, graph: o.graph, ...(seeds ? { identityKeys: seeds.map((s) => provider.ed25519PublicKey(s)) } : {}),
    ...(o.sealed ? { aggregator: o.sealed.commitment } : {}),
  };
  const setup: ClientSetup = {
    seed, config,
    ...(o.inputs ? { inputs: new Map(o.inputs.map((x, i) => [ids[i]!, x])) } : {}),
    ...(seeds ? { identitySeeds: new Map(seeds.map((x, i) => [ids[i]!, x])) } : {}),
  };
  const inputOf = (i: number): Uint32Array => o.inputs?.[i] ?? drawnInput(seed, ids[i]!, o.dim, o.bits);

  const rounds: RoundStats[] = [0, 1, 2, 3, 4].map((round) => ({ round, serverSeconds: 0, clientSecondsMean: 0, bytesUp: 0, bytesDown: 0, participants: [] }));
  let clientSeconds = 0;
  let serverSeconds = 0;
  let up = 0;
  let down = 0;
  let maxMessageUp = 0;
  const silentFrom = new Map([...(o.drops ?? [])].map(([i, d]) => [ids[i]!, DROP_ROUND[d]]));
  let roundStart = performance.now();
  const listener: SessionListener = {
    message: (e) => {
      const r = rounds[Math.min(e.round, 4)]!;
      if (e.direction === 'to-server') { up += e.bytes.length; r.bytesUp += e.bytes.length; maxMessageUp = Math.max(maxMessageUp, e.bytes.length); }
      else { down += e.bytes.length; r.bytesDown += e.bytes.length; }
    },
    roundClosed: (e) => {
      rounds[e.round]!.participants = e.participants.map((id) => id - 1);
      const now = performance.now();
      o.onRound?.({ round: e.round, seconds: (now - roundStart) / 1000 });
      roundStart = now;
    },
  };
  const addClientTime = (round: number, dt: number) => { clientSeconds += dt; rounds[Math.min(round, 4)]!.clientSecondsMean += dt / n; };
  const addServerTime = (round: number, dt: number) => { serverSeconds += dt; rounds[Math.min(round, 4)]!.serverSeconds += dt; };

  const threads = o.sealed ? 1 : threadsFor(o, config);
  let outcome: ServerOutcome;
  if (threads === 1) {
    let done = 0, total = n, waveRound = 0;
    const every = Math.max(1, Math.ceil(n / 200));
    const net: LockstepNetwork = new LockstepNetwork({
      config, provider, silentFrom, listener, stream: true,
      ...(o.sealed ? { aggregator: o.sealed.aggregator } : {}),
      clients: ids.map((id) => o.sealed ? { ...simulatedClient(setup, id), maskedInput: o.sealed.maskedInput(id) } : simulatedClient(setup, id)),
      onWork: (party, work) => {
        const round = party === 0 ? net.server.round : waveRound;
        const t0 = performance.now();
        work();
        const dt = (performance.now() - t0) / 1000;
        if (party === 0) { addServerTime(round, dt); return; }
        addClientTime(round, dt);
        if (++done % every === 0 || done === total) o.onProgress?.({ round, done, total });
      },
    });
    for (let started = false; ; started = true) {
      const wave = net.inFlight();
      if (started && wave.length > 0) { waveRound = wave[0]!.round; total = wave.length; done = 0; }
      if (!net.step()) break;
    }
    outcome = net.server.outcome!;
  } else {
    outcome = await runPooled(o, config, setup, threads, silentFrom, listener, addClientTime, addServerTime);
  }

  const survivors = outcome.kind === 'completed' ? outcome.survivors.map((id) => id - 1) : [];
  const inSum = new Set(survivors);
  const dropped = [...outcome.dropped].map(([id, d]: [number, DropRecord]) => ({ index: id - 1, round: d.round, code: d.code })).sort((a, b) => a.index - b.index);
  const droppedRound = new Map(dropped.map((d) => [d.index, d.round]));
  const drops: DropReport[] = DROP_POINTS.flatMap((at) => {
    const told = [...(o.drops ?? [])].filter(([, d]) => d === at).map(([i]) => i);
    if (told.length === 0) return [];
    const droppedInRound: Record<number, number> = {};
    for (const i of told) {
      const r = droppedRound.get(i);
      if (r !== undefined) droppedInRound[r] = (droppedInRound[r] ?? 0) + 1;
    }
    return [{ at, told: told.length, inSum: told.filter((i) => inSum.has(i)).length, droppedInRound }];
  });
  let expected: Uint32Array | undefined;
  if (outcome.kind === 'completed' && !o.sealed) {
    // One survivor's input at a time (re-drawn from the seed): O(m) memory.
    expected = plaintextSum(inputOf, survivors, o.dim, o.bits);
  }
  const sum = outcome.kind === 'completed' && !o.sealed ? outcome.sum : undefined;
  return {
    ...(outcome.kind === 'aborted' ? { aborted: { code: outcome.code, message: outcome.message, round: outcome.round } } : {}),
    ...(outcome.kind === 'completed' && outcome.sealedSum ? { sealedSum: outcome.sealedSum } : {}),
    ...(sum !== undefined && expected !== undefined ? { sum, expected, selfCheck: sum.every((x, j) => x === expected![j]) } : {}),
    survivors, dropped, drops, seed,
    serverSeconds, clientSecondsMean: clientSeconds / n,
    bytesUpPerClient: up / n, bytesDownPerClient: down / n, maxMessageUp,
    rounds, config, threads, inputOf,
  };
}

/**
 * The lockstep schedule with the clients on worker threads: the clients
 * start, then each wave of server messages goes to the clients in increasing
 * recipient id and their answers reach the server in increasing sender id as
 * they come back; with nothing in flight the round's deadline passes. This is
 * the order of `LockstepNetwork` with `stream` (and, the server receiving the
 * same messages in the same order, of the plain lockstep channel).
 */
async function runPooled(o: SimulationOptions, config: SessionConfig, setup: ClientSetup, threads: number,
  silentFrom: ReadonlyMap<number, number>, listener: SessionListener,
  addClientTime: (round: number, dt: number) => void, addServerTime: (round: number, dt: number) => void): Promise<ServerOutcome> {
  const n = config.clientIds.length;
  const k = sessionDegree(config);
  // The largest client message: the masked input (m·b/8 bytes) or the R1 shares (k · ~100 bytes).
  const largest = Math.max(Math.ceil((config.dim * config.bits) / 8), 100 * k) + 256;
  const block = Math.max(1, Math.min(64, Math.floor(SEGMENT_BYTES / largest), Math.ceil(n / (4 * threads))));
  // Messages larger than a segment: one in flight per worker, not two.
  const window = largest > SEGMENT_BYTES ? threads : 2 * threads;
  let pendingRound = 0;
  let down: { id: number; round: number; bytes: Uint8Array }[] = [];
  const server = new ServerDriver({
    config, provider: o.provider,
    channel: { send: (to, bytes) => down.push({ id: to, round: pendingRound, bytes }) },
    listener: { ...listener, message: (e) => { if (e.direction === 'to-client') pendingRound = e.round; listener.message?.(e); } },
  });
  const serverWork = (f: () => void) => {
    const round = server.round;
    const t0 = performance.now();
    f();
    addServerTime(round, (performance.now() - t0) / 1000);
  };
  const silent = (id: number, round: number) => (silentFrom.get(id) ?? Infinity) <= round;
  const pool = new ClientPool({
    seed: setup.seed, config, provider: o.provider.name as 'native' | 'portable',
    ...(setup.inputs ? { inputs: setup.inputs } : {}), ...(setup.identitySeeds ? { identitySeeds: setup.identitySeeds } : {}),
  }, config.clientIds, threads, block, window);
  try {
    const wave = async (round: number, w: Parameters<ClientPool['wave']>[0], total: number) => {
      let done = 0;
      await pool.wave(w, (m) => {
        if (!silent(m.id, m.round)) serverWork(() => server.receive(m.id, m.bytes));
      }, (seconds, count) => {
        addClientTime(round, seconds);
        done += count;
        o.onProgress?.({ round, done, total });
      });
    };
    await wave(0, { start: config.clientIds }, n);
    for (;;) {
      if (down.length > 0) {
        const all = down.sort((a, b) => a.id - b.id);
        down = [];
        const live = all.filter((m) => !silent(m.id, m.round));
        await wave(all[all.length - 1]!.round, { deliver: live.map((m) => [m.id, m.bytes] as const) }, live.length);
        continue;
      }
      if (server.outcome !== undefined) return server.outcome;
      serverWork(() => server.closeRound());
    }
  } finally {
    await pool.close();
  }
}
