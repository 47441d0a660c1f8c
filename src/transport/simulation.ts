/**
 * A whole secagg-v1 session in one process over the in-memory lockstep
 * channel (`secagg/lockstep.ts`, the one session driver): one server, N
 * clients, injected dropouts, every message through the binary codec (so
 * byte counts are the real encoded sizes), each party's work timed
 * separately. Used by `tally simulate` and the benchmarks.
 *
 * Memory is O(m) plus O(n·k) metadata, like the server's: a client's input
 * is drawn from its own seeded stream when its masked-input round starts and
 * released after, and the self-check re-draws the survivors' inputs one at a
 * time instead of keeping all n.
 */
import { performance } from 'node:perf_hooks';
import { ValidationError } from '../errors.js';
import type { CryptoProvider } from '../crypto/types.js';
import { DeterministicRng, systemRng } from '../crypto/rng.js';
import { toHex } from '../crypto/_validate.js';
import type { SessionConfig, ThreatModel } from '../secagg/config.js';
import { LockstepNetwork } from '../secagg/lockstep.js';
import type { DropRecord } from '../secagg/server/index.js';
import { plaintextSum, randomInput } from '../secagg/session.js';

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
  /** The input of client `index` (re-drawn from the seed, or the given one). */
  inputOf(index: number): Uint32Array;
}

/** Runs one session to completion or abort. */
export function simulate(o: SimulationOptions): SimulationResult {
  const { clients: n, provider } = o;
  if (!Number.isInteger(n) || n < 2) throw new ValidationError('SECAGG_ERR_BAD_CONFIG', `"clients" expected an integer ≥ 2, got ${n}`);
  if (o.inputs !== undefined && o.inputs.length !== n) throw new ValidationError('SECAGG_ERR_BAD_CONFIG', `expected ${n} inputs, got ${o.inputs.length}`);
  const seed = o.seed ?? toHex(systemRng.bytes(16));
  const rng = (label: string) => new DeterministicRng(`tally/simulate/${seed}/${label}`);
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const setupRng = rng('setup');
  const seeds = o.threat === 'malicious' ? ids.map(() => setupRng.bytes(32)) : undefined;
  const config: SessionConfig = {
    nonce: setupRng.bytes(32), clientIds: ids, threshold: o.threshold, bits: o.bits, dim: o.dim,
    threat: o.threat, graph: o.graph, ...(seeds ? { identityKeys: seeds.map((s) => provider.ed25519PublicKey(s)) } : {}),
  };
  const inputOf = (i: number): Uint32Array => o.inputs?.[i] ?? randomInput(rng(`input/${ids[i]}`), o.dim, o.bits);

  const rounds: RoundStats[] = [0, 1, 2, 3, 4].map((round) => ({ round, serverSeconds: 0, clientSecondsMean: 0, bytesUp: 0, bytesDown: 0, participants: [] }));
  let clientSeconds = 0;
  let serverSeconds = 0;
  let up = 0;
  let down = 0;
  let maxMessageUp = 0;
  const silentFrom = new Map([...(o.drops ?? [])].map(([i, d]) => [ids[i]!, DROP_ROUND[d]]));
  let roundStart = performance.now();

  const net: LockstepNetwork = new LockstepNetwork({
    config, provider, silentFrom,
    clients: ids.map((id, i) => ({ id, rng: rng(`client/${id}`), input: () => inputOf(i), ...(seeds ? { identitySeed: seeds[i]! } : {}) })),
    listener: {
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
    },
    onWork: (party, work) => {
      const round = Math.min(party === 0 ? net.server.round : net.round, 4);
      const t0 = performance.now();
      work();
      const dt = (performance.now() - t0) / 1000;
      if (party === 0) { serverSeconds += dt; rounds[round]!.serverSeconds += dt; }
      else { clientSeconds += dt; rounds[round]!.clientSecondsMean += dt / n; }
    },
  });
  const outcome = net.run();

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
  if (outcome.kind === 'completed') {
    // One survivor's input at a time: O(m) memory.
    expected = new Uint32Array(o.dim);
    for (const i of survivors) expected = plaintextSum([expected, inputOf(i)], [0, 1], o.dim, 32);
    expected = plaintextSum([expected], [0], o.dim, o.bits);
  }
  const sum = outcome.kind === 'completed' ? outcome.sum : undefined;
  return {
    ...(outcome.kind === 'aborted' ? { aborted: { code: outcome.code, message: outcome.message, round: outcome.round } } : {}),
    ...(sum !== undefined && expected !== undefined ? { sum, expected, selfCheck: sum.every((x, j) => x === expected![j]) } : {}),
    survivors, dropped, drops, seed,
    serverSeconds, clientSecondsMean: clientSeconds / n,
    bytesUpPerClient: up / n, bytesDownPerClient: down / n, maxMessageUp,
    rounds, config, inputOf,
  };
}
