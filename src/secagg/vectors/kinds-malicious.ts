/**
 * `malicious-server`: an honest client facing a server that lies (Bonawitz
 * et al. 2017 §6; spec §7). Each case runs an honest session, then replays one
 * target client alone: it receives the honest server messages up to the round
 * of the attack, then a forged one, and must abort with the recorded code
 * (before revealing anything). Valid cases are the untouched run and a second
 * unmasking request after completion, which the client must ignore.
 */
import { lowOrderLists } from '../../crypto/lowOrder.js';
import { DeterministicRng, type Rng } from '../../crypto/rng.js';
import type { CryptoProvider } from '../../crypto/types.js';
import { decodeServerMessage, encodeServerMessage } from '../codec.js';
import type { ClientState } from '../client/index.js';
import { ClientDriver } from '../driver.js';
import type { AdvertisedKeys } from '../config.js';
import type { KeyListMessage, ServerMessage, ShareRoutingMessage, UnmaskRequestMessage, ConsistencyRequestMessage } from '../messages.js';
import { sessionGraph, validateSession } from '../session.js';
import {
  bytes, configFromJson, configToJson, expectEqual, expectThat, hex, RecordingRng, ReplayRng, rngOf, seedOf, u32s,
  VectorMismatch, type ConfigJson, type TestCase,
} from './_common.js';
import type { VectorKind } from './kind.js';
import { runSession } from './session.js';
import { setupScenario, type Scenario } from './kinds-sessions.js';

const KIND = 'malicious-server';
const TARGET = 3;
const SH: Scenario = { comment: '', clientIds: [1, 2, 3, 4, 5], threshold: 3, bits: 16, dim: 8, threat: 'semi-honest', graph: { kind: 'complete' } };
const MAL: Scenario = { ...SH, threshold: 4, threat: 'malicious' };
const HARARY: Scenario = { ...SH, clientIds: [1, 2, 3, 4, 5, 6], graph: { kind: 'harary', degree: 4 } };
const MAL_HARARY: Scenario = { ...HARARY, threshold: 4, threat: 'malicious' };
/** The key with bit 255 set: the same X25519 public key, another encoding. */
const highBit = (k: Uint8Array): Uint8Array => { const c = k.slice(); c[31]! |= 0x80; return c; };

interface Kit {
  fresh(): Uint8Array;
  /** N(target) in the session graph, increasing. */
  readonly neighbors: readonly number[];
}
type Forge<M> = (m: M, kit: Kit) => ServerMessage;
interface Attack {
  readonly comment: string;
  readonly base: Scenario;
  /** The round whose server message is forged (1 key list … 4 unmasking request). */
  readonly round: number;
  readonly forge?: Forge<ServerMessage>;
  /** Forge a second message after the honest one of `round` instead of replacing it. */
  readonly after?: boolean;
  /** Clients silent after the given round in the honest run (absent: never). */
  readonly lastRound?: Record<number, number>;
  readonly error?: string;
}

const flip = (b: Uint8Array): Uint8Array => { const c = b.slice(); c[0]! ^= 1; return c; };
const keyList = (f: (m: KeyListMessage, kit: Kit) => Partial<KeyListMessage>): Forge<ServerMessage> => (m, kit) => ({ ...(m as KeyListMessage), ...f(m as KeyListMessage, kit) });
const routing = (f: (m: ShareRoutingMessage) => Partial<ShareRoutingMessage>): Forge<ServerMessage> => (m) => ({ ...(m as ShareRoutingMessage), ...f(m as ShareRoutingMessage) });
const unmask = (f: (m: UnmaskRequestMessage) => Partial<UnmaskRequestMessage>): Forge<ServerMessage> => (m) => ({ ...(m as UnmaskRequestMessage), ...f(m as UnmaskRequestMessage) });
const consistency = (f: (m: ConsistencyRequestMessage) => Partial<ConsistencyRequestMessage>): Forge<ServerMessage> => (m) => ({ ...(m as ConsistencyRequestMessage), ...f(m as ConsistencyRequestMessage) });
const replaceKey = (keys: readonly AdvertisedKeys[], id: number, patch: Partial<AdvertisedKeys>) => keys.map((k) => (k.id === id ? { ...k, ...patch } : k));

const ATTACKS: Attack[] = [
  { comment: 'honest server (control): the client completes', base: SH, round: 4 },
  { comment: 'honest server, malicious mode (control): the client completes', base: MAL, round: 4 },
  { comment: 'a second unmasking request after completion, now listing survivor 2 as dropped, is ignored: the client never reveals a second share', base: SH, round: 4, after: true, forge: unmask((m) => ({ survivors: m.survivors.filter((v) => v !== 2), dropped: [2] })) },
  { comment: 'key list bound to another config hash', base: SH, round: 1, forge: keyList((m) => ({ configHash: flip(m.configHash) })), error: 'SECAGG_ERR_SESSION_MISMATCH' },
  { comment: 'key list names client 9, not in the roster', base: SH, round: 1, forge: keyList((m, kit) => ({ keys: [...m.keys, { id: 9, cPk: kit.fresh(), sPk: kit.fresh() }] })), error: 'SECAGG_ERR_UNKNOWN_ID' },
  { comment: 'key list lists client 2 twice', base: SH, round: 1, forge: keyList((m) => ({ keys: [m.keys[0]!, m.keys[1]!, m.keys[1]!, ...m.keys.slice(2)] })), error: 'SECAGG_ERR_DUPLICATE_ID' },
  { comment: 'key list not in increasing id order', base: SH, round: 1, forge: keyList((m) => ({ keys: [m.keys[0]!, m.keys[2]!, m.keys[1]!, ...m.keys.slice(3)] })), error: 'SECAGG_ERR_BAD_MESSAGE' },
  { comment: 'key list with |U1| = 2 < t = 3', base: SH, round: 1, forge: keyList((m) => ({ keys: m.keys.filter((k) => k.id === 3 || k.id === 4) })), error: 'SECAGG_ERR_BELOW_THRESHOLD' },
  { comment: 'low-order mask key for client 4 in the key list', base: SH, round: 1, forge: keyList((m) => ({ keys: replaceKey(m.keys, 4, { sPk: lowOrderLists().x25519[3]! }) })), error: 'SECAGG_ERR_LOW_ORDER_KEY' },
  { comment: 'low-order encryption key (u = 0) for client 5 in the key list', base: SH, round: 1, forge: keyList((m) => ({ keys: replaceKey(m.keys, 5, { cPk: new Uint8Array(32) }) })), error: 'SECAGG_ERR_LOW_ORDER_KEY' },
  { comment: 'client 4 shown with client 2\'s encryption key', base: SH, round: 1, forge: keyList((m) => ({ keys: replaceKey(m.keys, 4, { cPk: m.keys[1]!.cPk }) })), error: 'SECAGG_ERR_DUPLICATE_KEY' },
  { comment: 'key list without the client itself', base: SH, round: 1, forge: keyList((m) => ({ keys: m.keys.filter((k) => k.id !== TARGET) })), error: 'SECAGG_ERR_SELF_DROPPED' },
  { comment: 'the client\'s own mask key substituted in the key list', base: SH, round: 1, forge: keyList((m, kit) => ({ keys: replaceKey(m.keys, TARGET, { sPk: kit.fresh() }) })), error: 'SECAGG_ERR_KEY_MISMATCH' },
  { comment: 'malicious mode: advertisement signature of client 4 altered', base: MAL, round: 1, forge: keyList((m) => ({ keys: replaceKey(m.keys, 4, { signature: flip(m.keys[3]!.signature!) }) })), error: 'SECAGG_ERR_BAD_SIGNATURE' },
  { comment: 'malicious mode: client 2\'s keys replaced by the server, signature kept', base: MAL, round: 1, forge: keyList((m, kit) => ({ keys: replaceKey(m.keys, 2, { sPk: kit.fresh() }) })), error: 'SECAGG_ERR_BAD_SIGNATURE' },
  { comment: 'share routing bound to another session id', base: SH, round: 2, forge: routing((m) => ({ sessionId: flip(m.sessionId) })), error: 'SECAGG_ERR_SESSION_MISMATCH' },
  { comment: 'share routing whose last share claims to come from client 9, not in the roster', base: SH, round: 2, forge: routing((m) => ({ shares: [...m.shares.slice(0, -1), { from: 9, ciphertext: m.shares[m.shares.length - 1]!.ciphertext }] })), error: 'SECAGG_ERR_UNKNOWN_ID' },
  { comment: 'share routing with client 2\'s share twice, in place of client 3\'s', base: SH, round: 2, forge: routing((m) => ({ shares: [m.shares[0]!, m.shares[1]!, m.shares[1]!, ...m.shares.slice(3)] })), error: 'SECAGG_ERR_DUPLICATE_ID' },
  { comment: 'share routing with a share claimed to come from the client itself', base: SH, round: 2, forge: routing((m) => ({ shares: [m.shares[0]!, m.shares[1]!, { from: TARGET, ciphertext: m.shares[2]!.ciphertext }, m.shares[3]!] })), error: 'SECAGG_ERR_UNKNOWN_ID' },
  { comment: 'share routing with |U2| = 2 < t = 3', base: SH, round: 2, forge: routing((m) => ({ shares: m.shares.slice(0, 1) })), error: 'SECAGG_ERR_BELOW_THRESHOLD' },
  { comment: 'unmasking request lists client 2 both as survivor and as dropped (both shares of one peer)', base: SH, round: 4, forge: unmask(() => ({ dropped: [2] })), error: 'SECAGG_ERR_BOTH_SHARES_REQUESTED' },
  { comment: 'unmasking request names client 9, not in the roster', base: SH, round: 4, forge: unmask((m) => ({ survivors: [...m.survivors, 9] })), error: 'SECAGG_ERR_UNKNOWN_ID' },
  { comment: 'unmasking request lists survivor 4 twice', base: SH, round: 4, forge: unmask(() => ({ survivors: [1, 2, 3, 4, 4, 5] })), error: 'SECAGG_ERR_DUPLICATE_ID' },
  { comment: 'unmasking request with |U3| = 2 < t = 3', base: SH, round: 4, forge: unmask(() => ({ survivors: [3, 4], dropped: [1, 2, 5] })), error: 'SECAGG_ERR_BELOW_THRESHOLD' },
  { comment: 'unmasking request bound to another session id', base: SH, round: 4, forge: unmask((m) => ({ sessionId: flip(m.sessionId) })), error: 'SECAGG_ERR_SESSION_MISMATCH' },
  { comment: 'unmasking request lists the client itself as dropped', base: SH, round: 4, forge: unmask(() => ({ survivors: [1, 2, 4, 5], dropped: [3] })), error: 'SECAGG_ERR_SELF_DROPPED' },
  { comment: 'semi-honest unmasking request carrying signatures', base: SH, round: 4, forge: unmask(() => ({ signatures: [{ id: 1, signature: new Uint8Array(64) }] })), error: 'SECAGG_ERR_BAD_MESSAGE' },
  { comment: 'malicious mode: consistency request with |U3| = 3 < t = 4', base: MAL, round: 3, forge: consistency(() => ({ survivors: [2, 3, 4] })), error: 'SECAGG_ERR_BELOW_THRESHOLD' },
  { comment: 'malicious mode: consistency request bound to another session id', base: MAL, round: 3, forge: consistency((m) => ({ sessionId: flip(m.sessionId) })), error: 'SECAGG_ERR_SESSION_MISMATCH' },
  { comment: 'malicious mode: consistency request without the client itself', base: MAL, round: 3, forge: consistency(() => ({ survivors: [1, 2, 4, 5] })), error: 'SECAGG_ERR_SELF_DROPPED' },
  { comment: 'malicious mode: unmasking request instead of the consistency request', base: MAL, round: 3, forge: (m) => ({ type: 'unmask-request', sessionId: (m as ConsistencyRequestMessage).sessionId, survivors: [1, 2, 3, 4, 5], dropped: [], signatures: [] }), error: 'SECAGG_ERR_UNEXPECTED_MESSAGE' },
  { comment: 'malicious mode: consistency signature of client 5 altered', base: MAL, round: 4, forge: unmask((m) => ({ signatures: m.signatures.map((s) => (s.id === 5 ? { id: 5, signature: flip(s.signature) } : s)) })), error: 'SECAGG_ERR_BAD_SIGNATURE' },
  { comment: 'malicious mode: survivors differ from the U3 the client signed', base: MAL, round: 4, forge: unmask((m) => ({ survivors: [1, 2, 3, 4], dropped: [5], signatures: m.signatures.filter((s) => s.id !== 5) })), error: 'SECAGG_ERR_INCONSISTENT_VIEW' },
  { comment: 'malicious mode: only 3 < t = 4 consistency signatures', base: MAL, round: 4, forge: unmask((m) => ({ signatures: m.signatures.filter((s) => s.id !== 2 && s.id !== 5) })), error: 'SECAGG_ERR_BELOW_THRESHOLD' },
  { comment: 'malicious mode: the client\'s own consistency signature missing', base: MAL, round: 4, forge: unmask((m) => ({ signatures: m.signatures.filter((s) => s.id !== TARGET) })), error: 'SECAGG_ERR_SELF_DROPPED' },
  { comment: 'client 4 shown with client 2\'s encryption key with bit 255 set (the same X25519 key)', base: SH, round: 1, forge: keyList((m) => ({ keys: replaceKey(m.keys, 4, { cPk: highBit(m.keys[1]!.cPk) }) })), error: 'SECAGG_ERR_NON_CANONICAL_KEY' },
  { comment: 'client 5\'s mask key in the key list is u = p + 9, a non-canonical encoding of 9', base: SH, round: 1, forge: keyList((m) => { const k = new Uint8Array(32).fill(0xff); k[0] = 0xf6; k[31] = 0x7f; return { keys: replaceKey(m.keys, 5, { sPk: k }) }; }), error: 'SECAGG_ERR_NON_CANONICAL_KEY' },
  { comment: 'Harary k=4, n=6, t=3: key list leaving only one neighbour of the client (|H(u)| = 2 < t, |U1| = 3)', base: HARARY, round: 1, forge: keyList((m, kit) => ({ keys: m.keys.filter((k) => !kit.neighbors.slice(1).includes(k.id)) })), error: 'SECAGG_ERR_BELOW_THRESHOLD' },
  { comment: 'Harary k=4, n=6, t=3: unmasking request listing only one neighbour of the client as survivor (|U3 ∩ H(u)| = 2 < t, |U3| = 3)', base: HARARY, round: 4, forge: (m, kit) => { const r = m as UnmaskRequestMessage; return { ...r, survivors: r.survivors.filter((v) => !kit.neighbors.slice(1).includes(v)) }; }, error: 'SECAGG_ERR_BELOW_THRESHOLD' },
  { comment: 'malicious, Harary k=4, n=6, t=4: consistency request leaving two of the client\'s neighbours out (|U3 ∩ H(u)| = 3 < t, |U3| = 4)', base: MAL_HARARY, round: 3, forge: (m, kit) => { const r = m as ConsistencyRequestMessage; return { ...r, survivors: r.survivors.filter((v) => !kit.neighbors.slice(2).includes(v)) }; }, error: 'SECAGG_ERR_BELOW_THRESHOLD' },
  { comment: 'unmasking request lists client 5 as dropped, which never sent the client its shares (dropped ⊄ U2 as the client saw it)', base: SH, round: 4, lastRound: { 5: 0 }, forge: unmask(() => ({ dropped: [5] })), error: 'SECAGG_ERR_NOT_SUBSET' },
  { comment: 'malicious mode: consistency request lists client 5, which never sent the client its shares (U3 ∩ H(u) ⊄ U2 as the client saw it)', base: MAL, round: 3, lastRound: { 5: 0 }, forge: consistency(() => ({ survivors: [1, 2, 3, 4, 5] })), error: 'SECAGG_ERR_NOT_SUBSET' },
  { comment: 'malicious mode: consistency signatures include client 5, which is not in the signed U3 (U4 ⊄ U3)', base: MAL, round: 4, lastRound: { 5: 1 }, forge: unmask((m) => ({ signatures: [...m.signatures, { id: 5, signature: m.signatures[0]!.signature }] })), error: 'SECAGG_ERR_NOT_SUBSET' },
];

interface ClientJson { id: number; rngSeed: string; random: string; identitySeed?: string; input: number[] }
interface StepJson { round: number; forged?: true; server: string; client: string[] }

const ROUND_OF_REQUEST: Record<string, number> = { 'key-list': 1, 'share-routing': 2, 'consistency-request': 3, 'unmask-request': 4 };

/** Feeds `msgs` to a fresh target client on the session driver; returns its encoded answers and final state. */
function replayClient(tc: { config: ConfigJson; client: ClientJson }, rng: Rng, msgs: Uint8Array[], p: CryptoProvider): { advertise: string; answers: string[][]; state: ClientState } {
  const config = configFromJson(tc.config);
  const c = tc.client;
  let sent: string[] = [];
  const driver = new ClientDriver({
    config, id: c.id, provider: p, rng, input: u32s(c.input), ...(c.identitySeed ? { identitySeed: bytes(c.identitySeed) } : {}),
    channel: { send: (b) => sent.push(hex(b)) },
  });
  driver.start();
  const advertise = sent[0]!;
  const answers = msgs.map((m) => {
    sent = [];
    driver.receive(m);
    return sent;
  });
  return { advertise, answers, state: driver.state! };
}

function generateCase(p: CryptoProvider, tcId: number, a: Attack): TestCase {
  const { config, seeds, inputs } = setupScenario(p, KIND, tcId, a.base);
  const seedOfClient = (id: number) => seedOf(KIND, tcId, `client/${id}`);
  const lastRound = new Map(Object.entries(a.lastRound ?? {}).map(([k, v]) => [Number(k), v]));
  const honest = runSession({ config, inputs, lastRound, rngOf: (id) => new DeterministicRng(seedOfClient(id)), ...(seeds ? { identitySeeds: seeds } : {}) }, p);
  const toTarget = honest.transcript.filter((e) => e.from === 'server' && e.id === TARGET);
  const kitRng = rngOf(KIND, tcId, 'forge');
  const kit: Kit = { fresh: () => p.x25519PublicKey(kitRng.bytes(32)), neighbors: sessionGraph(config, p).neighbors(TARGET) };
  const steps: { round: number; message: Uint8Array }[] = toTarget.filter((e) => e.round < a.round || (e.round === a.round && (a.after || a.forge === undefined)));
  if (a.forge !== undefined) {
    const original = toTarget.find((e) => e.round === a.round);
    if (original === undefined) throw new VectorMismatch(`tcId ${tcId}: no honest message in round ${a.round}`);
    steps.push({ round: a.round, message: encodeServerMessage(a.forge(decodeServerMessage(original.message), kit)) });
  }
  const i = config.clientIds.indexOf(TARGET);
  const client: ClientJson = {
    id: TARGET, rngSeed: seedOfClient(TARGET), random: '', ...(seeds ? { identitySeed: hex(seeds[i]!) } : {}), input: Array.from(inputs[i]!),
  };
  const rec = new RecordingRng(new DeterministicRng(client.rngSeed));
  const r = replayClient({ config: configToJson(config), client }, rec, steps.map((s) => s.message), p);
  client.random = hex(rec.recorded);
  const finalState = r.state.kind === 'aborted' ? `aborted:${r.state.code}` : r.state.kind;
  const want = a.error === undefined ? 'completed' : `aborted:${a.error}`;
  if (finalState !== want) throw new VectorMismatch(`tcId ${tcId} (${a.comment}): expected ${want}, the client ended ${finalState}`);
  return {
    tcId, comment: a.comment, result: a.error === undefined ? 'valid' : 'invalid', config: configToJson(config), client,
    advertise: r.advertise,
    steps: steps.map((s, k) => ({ round: s.round, ...(a.forge !== undefined && k === steps.length - 1 ? { forged: true } : {}), server: hex(s.message), client: r.answers[k]! })),
    ...(a.error === undefined ? { finalState: 'completed' } : { error: a.error }),
  };
}

function checkCase(tc: TestCase, p: CryptoProvider): void {
  const config = configFromJson(tc.config as ConfigJson);
  validateSession(config);
  const client = tc.client as ClientJson;
  const random = bytes(client.random);
  expectEqual('client random (DeterministicRng of rngSeed)', new DeterministicRng(client.rngSeed).bytes(random.length), random);
  const steps = tc.steps as StepJson[];
  const msgs = steps.map((s) => bytes(s.server));
  msgs.forEach((m, k) => {
    const decoded = decodeServerMessage(m);
    expectEqual(`steps[${k}].server (codec round trip)`, encodeServerMessage(decoded), m);
    // An honest step carries the request that opens its round; only the forged (last) step may differ.
    if (steps[k]!.forged === undefined) expectEqual(`steps[${k}].round (message type ${decoded.type})`, ROUND_OF_REQUEST[decoded.type], steps[k]!.round);
    else expectThat(k === steps.length - 1, `steps[${k}]: only the last step may be forged`);
  });
  const replay = new ReplayRng(random);
  const r = replayClient({ config: tc.config as ConfigJson, client }, replay, msgs, p);
  expectThat(replay.remaining === 0, `the client drew ${replay.remaining} fewer random bytes than recorded`);
  expectEqual('advertise', r.advertise, tc.advertise);
  steps.forEach((s, k) => expectEqual(`steps[${k}].client (round ${s.round})`, r.answers[k], s.client));
  if (tc.result === 'valid') return expectEqual('finalState', r.state.kind, tc.finalState);
  expectEqual('error', r.state.kind === 'aborted' ? r.state.code : `no abort (state ${r.state.kind})`, tc.error);
  const last = r.answers[r.answers.length - 1]!;
  expectThat(last.length === 1 && bytes(last[0]!)[1] === 0x0f, 'the aborting client must send exactly one client-abort message');
}

export const maliciousServerKind: VectorKind = {
  kind: KIND,
  description: 'Malicious-server negatives (spec §7): a valid session up to the attack, then one forged server message to client 3. The checker replays client 3 alone from its recorded randomness: its R0 advertisement, its answer to every server message, and, for invalid cases, the exact abort code (its last answer is a client-abort message carrying that code and no share is revealed).',
  generate: (p) => ATTACKS.map((a, i) => generateCase(p, i + 1, a)),
  check: checkCase,
};
