/**
 * Whole-session vector kinds (spec §5, messages encoded as in §6): `session-complete`,
 * `session-dropout-r1`, `session-dropout-r2` and `session-below-threshold`.
 * Each case records the configuration, every client's input and the random
 * bytes it drew (in order: c_u^SK(32) ‖ s_u^SK(32) ‖ b_u(32) ‖ the 48-byte
 * Shamir coefficients of s_u^SK's sharing ‖ those of b_u's sharing), the full
 * transcript of encoded messages, and the expected sum and survivors or the
 * server's abort code.
 */
import type { CryptoProvider } from '../../crypto/types.js';
import { DeterministicRng } from '../../crypto/rng.js';
import type { SessionConfig, ThreatModel } from '../config.js';
import { validateSession } from '../session.js';
import { plaintextSum } from '../session.js';
import {
  bytes, configFromJson, configToJson, expectEqual, expectThat, hex, inputsFrom, RecordingRng, ReplayRng, rngOf, seedOf, u32s,
  VectorMismatch, type ConfigJson, type TestCase,
} from './_common.js';
import type { VectorKind } from './kind.js';
import { runSession, type SessionInput, type SessionOutcome, type TranscriptEntry } from './session.js';

/** A session scenario; `lastRound` maps a client id to the last round it sends in (−1: silent from the start). */
export interface Scenario {
  readonly comment: string;
  readonly clientIds: number[];
  readonly threshold: number;
  readonly bits: number;
  readonly dim: number;
  readonly threat: ThreatModel;
  readonly graph: SessionConfig['graph'];
  readonly lastRound?: Record<number, number>;
  /** A second delivery of server messages (see SessionInput.redeliver). */
  readonly redeliver?: SessionInput['redeliver'];
}

interface ClientJson { id: number; rngSeed: string; random: string; cPk: string; sPk: string; identitySeed?: string; input: number[]; lastRound?: number }

/** Builds the configuration, identity seeds and inputs of a scenario from its setup seed. */
export function setupScenario(p: CryptoProvider, kind: string, tcId: number, s: Scenario): { config: SessionConfig; seeds?: Uint8Array[]; inputs: Uint32Array[] } {
  const rng = rngOf(kind, tcId, 'setup');
  const seeds = s.threat === 'malicious' ? s.clientIds.map(() => rng.bytes(32)) : undefined;
  const config: SessionConfig = {
    nonce: rng.bytes(32), clientIds: s.clientIds, threshold: s.threshold, bits: s.bits, dim: s.dim, threat: s.threat, graph: s.graph,
    ...(seeds ? { identityKeys: seeds.map((x) => p.ed25519PublicKey(x)) } : {}),
  };
  return { config, ...(seeds ? { seeds } : {}), inputs: inputsFrom(rng, s.clientIds.length, s.dim, s.bits) };
}

/** A transcript entry in JSON: a client message names its sender, a server message its recipients. */
export type EntryJson = { round: number; from: 'client'; id: number; message: string } | { round: number; from: 'server'; to: number[]; message: string };

/**
 * The transcript in JSON. Consecutive identical server messages of one round
 * (a broadcast such as the key list) are written once with all recipients.
 */
export function transcriptJson(t: readonly TranscriptEntry[]): EntryJson[] {
  const out: EntryJson[] = [];
  for (const e of t) {
    const message = hex(e.message);
    const prev = out[out.length - 1];
    if (e.from === 'server' && prev?.from === 'server' && prev.round === e.round && prev.message === message) prev.to.push(e.id);
    else out.push(e.from === 'client' ? { round: e.round, from: 'client', id: e.id, message } : { round: e.round, from: 'server', to: [e.id], message });
  }
  return out;
}

function outcomeFields(o: SessionOutcome): Record<string, unknown> {
  return {
    transcript: transcriptJson(o.transcript),
    ...(o.sum === undefined ? {} : { sum: Array.from(o.sum), survivors: o.survivors }),
    ...(o.error === undefined ? {} : { error: o.error }),
    clientStates: o.clientStates,
  };
}

function generateCase(p: CryptoProvider, kind: string, tcId: number, s: Scenario): TestCase {
  const { config, seeds, inputs } = setupScenario(p, kind, tcId, s);
  const rngs = new Map(s.clientIds.map((id) => [id, new RecordingRng(rngOf(kind, tcId, `client/${id}`))]));
  const lastRound = new Map(Object.entries(s.lastRound ?? {}).map(([k, v]) => [Number(k), v]));
  const o = runSession({ config, inputs, lastRound, rngOf: (id) => rngs.get(id)!, ...(seeds ? { identitySeeds: seeds } : {}), ...(s.redeliver ? { redeliver: s.redeliver } : {}) }, p);
  if (o.sum !== undefined) {
    const idx = o.survivors!.map((id) => s.clientIds.indexOf(id));
    expectEqual(`tcId ${tcId}: sum vs plaintext sum`, o.sum, plaintextSum(inputs, idx, s.dim, s.bits));
  }
  const clients: ClientJson[] = s.clientIds.map((id, i) => {
    const random = rngs.get(id)!.recorded;
    return {
      id, rngSeed: seedOf(kind, tcId, `client/${id}`), random: hex(random),
      cPk: hex(p.x25519PublicKey(random.slice(0, 32))), sPk: hex(p.x25519PublicKey(random.slice(32, 64))),
      ...(seeds ? { identitySeed: hex(seeds[i]!) } : {}), input: Array.from(inputs[i]!),
      ...(lastRound.has(id) ? { lastRound: lastRound.get(id)! } : {}),
    };
  });
  return {
    tcId, comment: s.comment, result: o.error === undefined ? 'valid' : 'invalid', config: configToJson(config), clients,
    ...(s.redeliver ? { redeliver: s.redeliver } : {}), ...outcomeFields(o),
  };
}

/** Recomputes one session case: randomness, keys, the whole transcript and the outcome. */
function checkCase(tc: TestCase, p: CryptoProvider): void {
  const config = configFromJson(tc.config as ConfigJson);
  validateSession(config);
  const clients = tc.clients as ClientJson[];
  expectEqual('clients[].id', clients.map((c) => c.id), config.clientIds);
  const replays = new Map<number, ReplayRng>();
  for (const c of clients) {
    const random = bytes(c.random);
    expectEqual(`client ${c.id} random (DeterministicRng of rngSeed)`, new DeterministicRng(c.rngSeed).bytes(random.length), random);
    expectEqual(`client ${c.id} cPk`, p.x25519PublicKey(random.slice(0, 32)), c.cPk);
    expectEqual(`client ${c.id} sPk`, p.x25519PublicKey(random.slice(32, 64)), c.sPk);
    replays.set(c.id, new ReplayRng(random));
  }
  const seeds = config.threat === 'malicious' ? clients.map((c) => bytes(c.identitySeed)) : undefined;
  const lastRound = new Map(clients.filter((c) => c.lastRound !== undefined).map((c) => [c.id, c.lastRound!]));
  const inputs = clients.map((c) => u32s(c.input));
  const redeliver = tc.redeliver as SessionInput['redeliver'];
  const o = runSession({ config, inputs, lastRound, rngOf: (id) => replays.get(id)!, ...(seeds ? { identitySeeds: seeds } : {}), ...(redeliver ? { redeliver } : {}) }, p);
  for (const [id, r] of replays) expectThat(r.remaining === 0, `client ${id} drew ${r.remaining} fewer random bytes than recorded`);
  const want = tc.transcript as EntryJson[];
  const got = transcriptJson(o.transcript);
  for (let i = 0; i < Math.max(want.length, got.length); i++) {
    const w = want[i], g = got[i];
    if (w === undefined || g === undefined) throw new VectorMismatch(`transcript: expected ${want.length} entries, got ${got.length}`);
    expectEqual(`transcript[${i}] (round ${w.round}, ${w.from === 'client' ? `from client ${w.id}` : `to ${w.to.join(',')}`})`, g, w);
  }
  if (tc.result === 'valid') {
    expectThat(o.error === undefined, `session aborted with ${o.error}`);
    expectEqual('survivors', o.survivors, tc.survivors);
    expectEqual('sum', o.sum, tc.sum);
    const idx = (tc.survivors as number[]).map((id) => config.clientIds.indexOf(id));
    expectEqual('sum (plaintext sum of the survivors\' inputs)', plaintextSum(inputs, idx, config.dim, config.bits), tc.sum);
  } else {
    expectEqual('error', o.error, tc.error);
  }
  expectEqual('clientStates', o.clientStates, tc.clientStates);
}

function sessionKind(kind: string, description: string, scenarios: Scenario[]): VectorKind {
  return {
    kind, description,
    generate: (p) => scenarios.map((s, i) => generateCase(p, kind, i + 1, s)),
    check: checkCase,
  };
}

const complete = { kind: 'complete' } as const;
const harary = (degree: number) => ({ kind: 'harary', degree }) as const;
const SH = 'semi-honest' as const, MAL = 'malicious' as const;
const ids = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

export const sessionCompleteKind = sessionKind('session-complete',
  'Complete sessions with no dropout (spec §5): every client takes part in every round; the server outputs the sum of all inputs mod 2^b and U3 = every client.', [
    { comment: 'semi-honest, complete graph, n=3, t=2, b=16, m=8', clientIds: ids(3), threshold: 2, bits: 16, dim: 8, threat: SH, graph: complete },
    { comment: 'semi-honest, complete graph, n=5, t=3, b=32, m=16', clientIds: ids(5), threshold: 3, bits: 32, dim: 16, threat: SH, graph: complete },
    { comment: 'malicious (signed keys, consistency round), complete graph, n=4, t=3, b=20, m=10', clientIds: ids(4), threshold: 3, bits: 20, dim: 10, threat: MAL, graph: complete },
    { comment: 'semi-honest, Harary graph k=4 (SecAgg+), n=8, t=3, b=8, m=32', clientIds: ids(8), threshold: 3, bits: 8, dim: 32, threat: SH, graph: harary(4) },
    { comment: 'semi-honest, sparse ids up to 2^24-1, n=3, t=2, b=1, m=64', clientIds: [5, 17, 16777215], threshold: 2, bits: 1, dim: 64, threat: SH, graph: complete },
    { comment: 'malicious, Harary graph k=4, n=7, t=4, b=16, m=4', clientIds: ids(7), threshold: 4, bits: 16, dim: 4, threat: MAL, graph: harary(4) },
  ]);

export const sessionDropoutR1Kind = sessionKind('session-dropout-r1',
  'Dropout after R1 (spec §5.6): the client sent its encrypted shares, then falls silent before its masked input. Survivors reveal their shares of its s^SK so the server removes its pairwise masks; the sum covers U3 only.', [
    { comment: 'semi-honest, n=5, t=3: client 2 drops after R1', clientIds: ids(5), threshold: 3, bits: 16, dim: 8, threat: SH, graph: complete, lastRound: { 2: 1 } },
    { comment: 'semi-honest, n=6, t=3: clients 1 and 6 (smallest and largest id) drop after R1', clientIds: ids(6), threshold: 3, bits: 32, dim: 12, threat: SH, graph: complete, lastRound: { 1: 1, 6: 1 } },
    { comment: 'malicious, n=5, t=4: client 3 drops after R1', clientIds: ids(5), threshold: 4, bits: 24, dim: 6, threat: MAL, graph: complete, lastRound: { 3: 1 } },
    { comment: 'semi-honest, Harary k=4, n=8, t=3: client 4 drops after R1, client 7 after R0 (never shares)', clientIds: ids(8), threshold: 3, bits: 12, dim: 20, threat: SH, graph: harary(4), lastRound: { 4: 1, 7: 0 } },
  ]);

export const sessionDropoutR2Kind = sessionKind('session-dropout-r2',
  'Dropout after R2 (spec §5.6): the client sent its masked input, then falls silent. Its input stays in the sum; the other survivors reveal their shares of its self-mask seed b_u.', [
    { comment: 'semi-honest, n=5, t=3: client 4 drops after R2', clientIds: ids(5), threshold: 3, bits: 16, dim: 8, threat: SH, graph: complete, lastRound: { 4: 2 } },
    { comment: 'malicious, n=5, t=4: client 5 drops after R2 (does not sign U3)', clientIds: ids(5), threshold: 4, bits: 16, dim: 8, threat: MAL, graph: complete, lastRound: { 5: 2 } },
    { comment: 'semi-honest, n=6, t=3: client 2 drops after R1 and client 5 after R2', clientIds: ids(6), threshold: 3, bits: 10, dim: 16, threat: SH, graph: complete, lastRound: { 2: 1, 5: 2 } },
    { comment: 'malicious, n=6, t=5: client 1 signs U3 in R3, then is silent in R4', clientIds: ids(6), threshold: 5, bits: 32, dim: 5, threat: MAL, graph: complete, lastRound: { 1: 3 } },
  ]);

export const sessionBelowThresholdKind = sessionKind('session-below-threshold',
  'Sessions in which fewer than t clients remain in some round (spec §5.1, §7: |U_i| ≥ t): the server aborts with SECAGG_ERR_BELOW_THRESHOLD and tells every remaining client, which aborts with the same code. No sum is output.', [
    { comment: 'n=4, t=3: clients 3 and 4 never advertise (|U1| = 2)', clientIds: ids(4), threshold: 3, bits: 16, dim: 4, threat: SH, graph: complete, lastRound: { 3: -1, 4: -1 } },
    { comment: 'n=4, t=3: clients 1 and 2 drop after R0 (|U2| = 2)', clientIds: ids(4), threshold: 3, bits: 16, dim: 4, threat: SH, graph: complete, lastRound: { 1: 0, 2: 0 } },
    { comment: 'n=5, t=3: clients 2, 3 and 5 drop after R1 (|U3| = 2)', clientIds: ids(5), threshold: 3, bits: 16, dim: 4, threat: SH, graph: complete, lastRound: { 2: 1, 3: 1, 5: 1 } },
    { comment: 'n=5, t=3: clients 1, 4 and 5 drop after R2 (2 unmasking answers)', clientIds: ids(5), threshold: 3, bits: 16, dim: 4, threat: SH, graph: complete, lastRound: { 1: 2, 4: 2, 5: 2 } },
    { comment: 'malicious, n=5, t=4: clients 2 and 3 drop after R2 (|U4| = 3)', clientIds: ids(5), threshold: 4, bits: 16, dim: 4, threat: MAL, graph: complete, lastRound: { 2: 2, 3: 2 } },
  ]);

export const sessionRetryKind = sessionKind('session-retry',
  'Server messages delivered more than once (spec §5.8). With `redeliver` {"kind": "retry"} every server message reaches its client twice in a row, byte for byte (each delivery is a transcript entry, so a broadcast lists every recipient twice): the client ignores the second copy and the session ends exactly as without retries. With {"kind": "conflict", "to": u, "round": r} client u receives, right after the server message of round r, a different, well-formed message for the same round (the same bytes with the second-to-last one flipped): u aborts, tells the server, and the session goes on without u while t remain.', [
    { comment: 'semi-honest, n=4, t=3: every server message delivered twice', clientIds: ids(4), threshold: 3, bits: 16, dim: 6, threat: SH, graph: complete, redeliver: { kind: 'retry' } },
    { comment: 'malicious, n=4, t=3: every server message delivered twice (consistency round included)', clientIds: ids(4), threshold: 3, bits: 12, dim: 6, threat: MAL, graph: complete, redeliver: { kind: 'retry' } },
    { comment: 'semi-honest, n=5, t=3, client 4 drops after R1: retries while masks of a dropped client are rebuilt', clientIds: ids(5), threshold: 3, bits: 16, dim: 6, threat: SH, graph: complete, lastRound: { 4: 1 }, redeliver: { kind: 'retry' } },
    { comment: 'semi-honest, n=5, t=3: client 2 receives a second, different key list in R1 and aborts; the others complete', clientIds: ids(5), threshold: 3, bits: 16, dim: 6, threat: SH, graph: complete, redeliver: { kind: 'conflict', to: 2, round: 1 } },
    { comment: 'semi-honest, n=5, t=3: client 3 receives a second, different share routing after sending its masked input and aborts; its input stays in the sum (its self mask is rebuilt)', clientIds: ids(5), threshold: 3, bits: 16, dim: 6, threat: SH, graph: complete, redeliver: { kind: 'conflict', to: 3, round: 2 } },
  ]);
