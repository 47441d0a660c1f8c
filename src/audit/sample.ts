/**
 * A small, fully deterministic federated run written as transcript-v1 logs:
 * the coordinator's transcript and every site's log, for the transcript-v1
 * vectors (`vectors.ts`) and the audit tests. Two training rounds of five
 * sites (threshold 3), each a real secagg-v1 session on the lockstep
 * network with a dropout (round 1: site 5 before its masked input, so its
 * key shares are revealed; round 2: site 4 after its masked input, so it is
 * a survivor), each followed by its DP event (a distributed discrete
 * Gaussian, ε from tally's RDP accountant; none when the policy's budget is
 * null) and its `fl-session` record.
 * The sites log what they sent and received, their reveal, the result and
 * the coordinator's checkpoint as a witness.
 *
 * The caller opens the logs (`openCoordinatorLog`/`openSiteLog` for a
 * bundle on disk, or plain {@link Transcript}s in memory), so the records
 * are the same whichever way they are stored.
 * @module
 */
import { createHash } from 'node:crypto';
import { nativeProvider as provider } from '../crypto/native.js';
import { DeterministicRng } from '../crypto/rng.js';
import type { SessionConfig } from '../secagg/config.js';
import { LockstepNetwork } from '../secagg/lockstep.js';
import { decodeClientMessage } from '../secagg/codec.js';
import { PrivacyLedger } from '../dp/ledger.js';
import type { DpEvent } from '../dp/events.js';
import { auditListener, Transcript, type AuditPolicy, type SoftwareInfo } from './transcript.js';

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The fixed software of the sample's run records (so the vectors do not change with tally's version). */
export const SAMPLE_SOFTWARE: SoftwareInfo = { name: 'tally', version: '0.1.0', node: 'v22.0.0' };
/** The sample's run id. */
export const SAMPLE_RUN = '5a3e1f0c9b7d4e2a8c6b0d1f3e5a7c9b';

/** The keys and configuration of the sample run. */
export interface SampleSetup {
  readonly coordinatorSeed: Uint8Array;
  readonly sites: readonly { readonly id: string; readonly clientId: number; readonly seed: Uint8Array; readonly publicKey: string }[];
  /** The run configuration: `{consortium, job}` (consortium.json and job JSON as read). */
  readonly config: { readonly consortium: Record<string, unknown>; readonly job: Record<string, unknown> };
  readonly policy: AuditPolicy;
  /** The DP event of each training round. */
  readonly event: DpEvent;
}

/** The sample's keys (from a fixed seed) and configuration. */
export function sampleSetup(seed = 'transcript-v1/sample'): SampleSetup {
  const rng = new DeterministicRng(seed);
  const coordinatorSeed = rng.bytes(32);
  const sites = [1, 2, 3, 4, 5].map((clientId) => {
    const s = rng.bytes(32);
    return { id: `site-${String.fromCharCode(96 + clientId)}`, clientId, seed: s, publicKey: hex(provider.ed25519PublicKey(s)) };
  });
  const consortium = {
    version: 1, name: 'transcript-v1 sample',
    coordinator: { host: '127.0.0.1', port: 7443, auditKey: hex(provider.ed25519PublicKey(coordinatorSeed)) },
    roster: sites.map((s) => ({ id: s.id, name: `Site ${s.clientId}`, publicKey: s.publicKey })),
    aggregation: { threat: 'semi-honest', graph: 'complete', threshold: 3, bits: 16, dim: 8 },
    deadlines: { gatherMs: 30000, roundMs: 30000, handshakeMs: 10000, idleMs: 60000, reconnectMaxMs: 30000 },
    limits: { connectionsPerMinutePerIp: 60 },
  };
  const policy: AuditPolicy = { minSurvivors: 3, budget: { epsilon: 8, delta: 1e-5 }, accountant: 'rdp' };
  const job = { rounds: 2, dp: { mechanism: 'ddg', budget: policy.budget } };
  const event: DpEvent = { kind: 'ddg', clip: 1, scale: 64, beta: 0, paddedDim: 8, threshold: 3, siteSigma2: { num: 4096, den: 1 }, bits: 16 };
  return { coordinatorSeed, sites, config: { consortium, job }, policy, event };
}

/** The dropouts of the sample's training rounds: client id → first secagg round it sends nothing in. */
const SILENT: readonly ReadonlyMap<number, number>[] = [new Map([[5, 2]]), new Map([[4, 3]])];

/**
 * Plays the sample run into logs the caller opened: `coordinator` holds its
 * run, config and first checkpoint already, and `sites` (by site id) their
 * run record and checkpoint.
 */
export function playSample(setup: SampleSetup, coordinator: Transcript, sites: ReadonlyMap<string, Transcript>): void {
  const budget = setup.policy.budget;
  const ledger = budget === null ? undefined : new PrivacyLedger({ budget, accountant: setup.policy.accountant ?? 'rdp' });
  const a = setup.config.consortium['aggregation'] as { threshold: number; bits: number; dim: number };
  const byClient = new Map(setup.sites.map((s) => [s.clientId, sites.get(s.id)!]));
  SILENT.forEach((silentFrom, k) => {
    const round = k + 1;
    const session = `train-r${round}`;
    const rng = new DeterministicRng(`transcript-v1/sample/${session}`);
    const clientIds = setup.sites.map((s) => s.clientId);
    const config: SessionConfig = { nonce: rng.bytes(32), clientIds, threshold: a.threshold, bits: a.bits, dim: a.dim, threat: 'semi-honest', graph: { kind: 'complete' } };
    for (const t of byClient.values()) t.sessionStart(session, config);
    const gone = (id: number, r: number): boolean => (silentFrom.get(id) ?? Infinity) <= r;
    const net = new LockstepNetwork({
      config, provider, silentFrom,
      listener: auditListener(coordinator, session, config),
      intercept: (m) => {
        // The site's own view: what it sent, and what it received while it was still there.
        if (gone(m.id, m.round)) return undefined;
        const t = byClient.get(m.id)!;
        t.append('message', { session, direction: m.from === 'client' ? 'to-server' : 'to-client', round: m.round, peer: m.id, length: m.bytes.length, sha256: sha256Hex(m.bytes) });
        if (m.from === 'client' && m.round === 4) {
          const u = decodeClientMessage(m.bytes, config);
          if (u.type === 'unmask') t.append('reveal', { session, peer: m.id, selfShares: u.selfShares.map((s) => s.of), keyShares: u.keyShares.map((s) => s.of) });
        }
        return undefined;
      },
      clients: clientIds.map((id) => ({ id, rng: new DeterministicRng(`transcript-v1/sample/${session}/${id}`), input: Uint32Array.from({ length: a.dim }, (_, j) => (id * 131 + j * 17 + round) % 2 ** a.bits) })),
    });
    const out = net.run();
    if (out.kind !== 'completed') throw new Error(`sample session ${session} did not complete: ${out.code}`);
    const sum = sha256Hex(new Uint8Array(out.sum.buffer, out.sum.byteOffset, out.sum.byteLength));
    const cp = coordinator.lastCheckpoint()!;
    for (const [id, t] of byClient) {
      if (silentFrom.has(id)) {
        t.append('site-result', { session, result: 'aborted', code: 'SITE_LEFT', message: 'the site left the session' });
      } else {
        t.append('site-result', { session, result: 'completed', survivors: [...out.survivors], dropped: [...silentFrom.keys()], sumSha256: sum });
        t.witness(cp);
      }
      t.checkpoint();
    }
    // The federation loop: the round's DP event is charged (with DP), then the session is recorded.
    if (ledger !== undefined) {
      ledger.record(setup.event, `round ${round}`);
      coordinator.dpEvent(setup.event, ledger.epsilon(), { session, round, label: `round ${round}` });
    }
    coordinator.append('fl-session', { round, attempt: 1, session, purpose: 'train', result: 'completed', charged: ledger !== undefined, survivors: [...out.survivors] });
    coordinator.checkpoint();
  });
}

/** The sample run held in memory (the vectors): the manifest, the coordinator's transcript and each site's log. */
export function sampleInMemory(setup: SampleSetup = sampleSetup()): { manifest: Record<string, unknown>; transcript: Transcript; sites: Map<string, Transcript> } {
  const transcript = new Transcript({ signingSeed: setup.coordinatorSeed });
  transcript.run({ run: SAMPLE_RUN, role: 'coordinator', software: SAMPLE_SOFTWARE, policy: setup.policy });
  transcript.config(setup.config);
  transcript.checkpoint();
  const sites = new Map(setup.sites.map((s) => {
    const t = new Transcript({ signingSeed: s.seed });
    t.run({ run: SAMPLE_RUN, role: 'site', site: s.id, software: SAMPLE_SOFTWARE });
    t.checkpoint();
    return [s.id, t] as const;
  }));
  playSample(setup, transcript, sites);
  const manifest = { format: 'tally-audit-bundle/1', run: SAMPLE_RUN, coordinatorKey: hex(transcript.publicKey), software: SAMPLE_SOFTWARE, created: '2026-01-01T00:00:00.000Z' };
  return { manifest, transcript, sites };
}
