/**
 * A whole secagg-v1 session in one process: one server, N clients, injected
 * dropouts, every message passed through the binary codec (so byte counts
 * are the real encoded sizes) and every party's work timed separately.
 * Used by `tally simulate` and the benchmarks.
 */
import { performance } from 'node:perf_hooks';
import { ValidationError } from '../errors.js';
import type { CryptoProvider } from '../crypto/types.js';
import { DeterministicRng, systemRng, type Rng } from '../crypto/rng.js';
import type { SessionConfig, ThreatModel } from './config.js';
import { decodeClientMessage, decodeServerMessage, encodeClientMessage, encodeServerMessage } from './codec.js';
import { handleServerMessage, startClient, type ClientState } from './client/index.js';
import { closeRound, createServer, receiveMessage, type ServerState } from './server/index.js';
import type { ClientMessage, Outgoing } from './messages.js';

/** The last round a dropping client takes part in: it is silent from `dropAt` on. */
export type DropPoint = 'r0' | 'r1' | 'r2' | 'r3' | 'r4';
const DROP_ROUND: Record<DropPoint, number> = { r0: 0, r1: 1, r2: 2, r3: 3, r4: 4 };

export interface SimulationOptions {
  readonly clients: number;
  readonly dim: number;
  readonly bits: number;
  readonly threshold: number;
  readonly threat: ThreatModel;
  readonly graph: SessionConfig['graph'];
  readonly provider: CryptoProvider;
  /** Seed of every random choice; without it the system CSPRNG is used. */
  readonly seed?: string;
  /** One input per client (entries < 2^bits); generated from the seed when absent. */
  readonly inputs?: readonly Uint32Array[];
  /** Client index (0-based) → the round from which it is silent. */
  readonly drops?: ReadonlyMap<number, DropPoint>;
}

export interface RoundStats {
  round: number;
  serverSeconds: number;
  clientSecondsMean: number;
  bytesUp: number;
  bytesDown: number;
}

export interface SimulationResult {
  readonly aborted?: { code: string; message: string; round: number };
  readonly sum?: Uint32Array;
  /** 0-based indices of the clients whose inputs are in the sum. */
  readonly survivors: number[];
  readonly dropped: number[];
  readonly inputs: readonly Uint32Array[];
  readonly serverSeconds: number;
  readonly clientSecondsMean: number;
  readonly bytesUpPerClient: number;
  readonly bytesDownPerClient: number;
  /** Largest single client → server message (the masked input, for large m). */
  readonly maxMessageUp: number;
  readonly rounds: RoundStats[];
  readonly config: SessionConfig;
}

function rngFor(seed: string | undefined, label: string): Rng {
  return seed === undefined ? systemRng : new DeterministicRng(`tally/simulate/${seed}/${label}`);
}

/**
 * `n` random inputs below 2^bits drawn from `rng`: 4 bytes per entry, read
 * little-endian and masked to `bits` (the layout the session vectors record).
 */
export function randomInputs(rng: Rng, n: number, dim: number, bits: number): Uint32Array[] {
  const mask = bits === 32 ? 0xffffffff : 2 ** bits - 1;
  return Array.from({ length: n }, () => {
    const b = rng.bytes(4 * dim);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const v = new Uint32Array(dim);
    for (let i = 0; i < dim; i++) v[i] = dv.getUint32(4 * i, true) & mask;
    return v;
  });
}

/** Runs one session to completion or abort. */
export function simulate(o: SimulationOptions): SimulationResult {
  const { clients: n, provider } = o;
  if (!Number.isInteger(n) || n < 2) throw new ValidationError('SECAGG_ERR_BAD_CONFIG', `"clients" expected an integer ≥ 2, got ${n}`);
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const setupRng = rngFor(o.seed, 'setup');
  const seeds = o.threat === 'malicious' ? ids.map(() => setupRng.bytes(32)) : undefined;
  const config: SessionConfig = {
    nonce: setupRng.bytes(32), clientIds: ids, threshold: o.threshold, bits: o.bits, dim: o.dim,
    threat: o.threat, graph: o.graph, ...(seeds ? { identityKeys: seeds.map((s) => provider.ed25519PublicKey(s)) } : {}),
  };
  const inputs = o.inputs ?? randomInputs(rngFor(o.seed, 'inputs'), n, o.dim, o.bits);
  if (inputs.length !== n) throw new ValidationError('SECAGG_ERR_BAD_CONFIG', `expected ${n} inputs, got ${inputs.length}`);

  const rounds: RoundStats[] = [0, 1, 2, 3, 4].map((round) => ({ round, serverSeconds: 0, clientSecondsMean: 0, bytesUp: 0, bytesDown: 0 }));
  const clientTime = new Float64Array(n);
  const up = new Float64Array(n);
  const down = new Float64Array(n);
  let maxMessageUp = 0;
  let serverSeconds = 0;
  const timed = <T>(f: () => T): [T, number] => { const t0 = performance.now(); const r = f(); return [r, (performance.now() - t0) / 1000]; };

  let [server, dt] = timed((): ServerState => createServer({ config, provider }));
  serverSeconds += dt;
  const states: (ClientState | undefined)[] = new Array(n);
  const silentFrom = (i: number): number => { const d = o.drops?.get(i); return d === undefined ? Infinity : DROP_ROUND[d]; };
  let inbox: { from: number; bytes: Uint8Array }[] = [];
  const send = (i: number, round: number, msgs: readonly ClientMessage[]) => {
    for (const m of msgs) {
      const bytes = encodeClientMessage(m);
      up[i]! += bytes.length; rounds[round]!.bytesUp += bytes.length;
      maxMessageUp = Math.max(maxMessageUp, bytes.length);
      inbox.push({ from: i, bytes });
    }
  };

  // R0: every client that is not silent from R0 starts and advertises.
  for (let i = 0; i < n; i++) {
    if (silentFrom(i) <= 0) continue;
    const [step, t] = timed(() => startClient({ config, id: ids[i]!, provider, rng: rngFor(o.seed, `client/${ids[i]}`), input: inputs[i]!, ...(seeds ? { identitySeed: seeds[i]! } : {}) }));
    clientTime[i]! += t; rounds[0]!.clientSecondsMean += t / n;
    states[i] = step.state;
    send(i, 0, step.out);
  }
  const roundOf = (s: ServerState): number => ({ r0: 0, r1: 1, r2: 2, r3: 3, r4: 4 } as Record<string, number>)[s.kind] ?? 4;
  for (;;) {
    // The server takes this round's messages, then closes the round.
    const round = roundOf(server);
    const batch = inbox; inbox = [];
    let serverRound = 0;
    for (const { from, bytes } of batch) {
      const [s, t] = timed(() => receiveMessage(server, ids[from]!, decodeClientMessage(bytes)).state);
      server = s; serverRound += t;
    }
    const [step, t] = timed(() => closeRound(server));
    server = step.state; serverRound += t;
    rounds[round]!.serverSeconds += serverRound;
    serverSeconds += serverRound;
    if (server.kind === 'completed' || server.kind === 'aborted') {
      deliver(step.out, round);
      break;
    }
    deliver(step.out, roundOf(server));
  }

  function deliver(out: readonly Outgoing[], round: number): void {
    for (const { to, message } of out) {
      const i = to - 1;
      const bytes = encodeServerMessage(message);
      down[i]! += bytes.length; rounds[Math.min(round, 4)]!.bytesDown += bytes.length;
      const st = states[i];
      if (st === undefined || silentFrom(i) <= round) continue;
      const [step, t] = timed(() => handleServerMessage(st, decodeServerMessage(bytes)));
      clientTime[i]! += t; rounds[Math.min(round, 4)]!.clientSecondsMean += t / n;
      states[i] = step.state;
      for (const c of step.consumed) c.fill(0);
      send(i, Math.min(round, 4), step.out);
    }
  }

  const final = server as ServerState;
  const survivors = final.kind === 'completed' ? final.survivors.map((id) => id - 1) : [];
  const inSum = new Set(survivors);
  const mean = (a: Float64Array) => a.reduce((x, y) => x + y, 0) / n;
  return {
    ...(final.kind === 'aborted' ? { aborted: { code: final.code, message: final.message, round: final.round } } : {}),
    ...(final.kind === 'completed' ? { sum: final.sum } : {}),
    survivors,
    dropped: ids.map((_, i) => i).filter((i) => !inSum.has(i)),
    inputs,
    serverSeconds,
    clientSecondsMean: mean(clientTime),
    bytesUpPerClient: mean(up),
    bytesDownPerClient: mean(down),
    maxMessageUp,
    rounds,
    config,
  };
}

/** The plaintext sum of the survivors' inputs mod 2^bits (the self-check). */
export function plaintextSum(inputs: readonly Uint32Array[], survivors: readonly number[], dim: number, bits: number): Uint32Array {
  const acc = new Uint32Array(dim);
  for (const i of survivors) { const x = inputs[i]!; for (let j = 0; j < dim; j++) acc[j] = acc[j]! + x[j]!; }
  if (bits < 32) { const m = (1 << bits) - 1; for (let j = 0; j < dim; j++) acc[j] = acc[j]! & m; }
  return acc;
}
