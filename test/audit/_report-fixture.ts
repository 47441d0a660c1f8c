/**
 * An audit bundle of a small fine-tuning run, written with the real writers:
 * openCoordinatorLog, auditListener on lockstep secagg sessions with
 * dropouts, `fl-session` records, `dp-event` records whose ε the real
 * ledger computed, and site logs that witness the coordinator's last
 * checkpoint. For the report's tests.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeProvider as provider } from '../../src/crypto/native.js';
import { DeterministicRng } from '../../src/crypto/rng.js';
import type { SessionConfig } from '../../src/secagg/config.js';
import { LockstepNetwork } from '../../src/secagg/lockstep.js';
import { auditListener, type Transcript } from '../../src/audit/transcript.js';
import { openCoordinatorLog, openSiteLog } from '../../src/audit/bundle.js';
import { planRound } from '../../src/dp/plan.js';
import { PrivacyLedger } from '../../src/dp/ledger.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export interface Fixture { readonly dir: string; readonly siteIds: readonly string[] }

/**
 * Writes a bundle: 5 sites, t = 3, malicious model, `rounds` training rounds
 * (each a train session then an eval session, after a baseline eval), one
 * site silent from R2 in every train session and another from R3 in round 2.
 * `siteIds` may hold hostile text (the escaping tests).
 */
export function writeFixture(o: { readonly siteIds?: readonly string[]; readonly rounds?: number; readonly dp?: boolean; readonly dropCode?: string } = {}): Fixture {
  const dir = join(mkdtempSync(join(tmpdir(), 'tally-report-')), 'audit');
  const siteIds = o.siteIds ?? ['oslo', 'bergen', 'trondheim', 'tromso', 'stavanger', 'bodo', 'alta'];
  const n = siteIds.length, t = 5, rounds = o.rounds ?? 3, dp = o.dp ?? true;
  const rng = new DeterministicRng('audit/report-fixture');
  const seeds = siteIds.map(() => rng.bytes(32));
  const ids = siteIds.map((_, i) => i + 1);
  const coordSeed = rng.bytes(32);
  const delta = 1e-5;
  const dpJob = { mechanism: dp ? 'ddg' : 'none', clip: 1, noiseMultiplier: 2, bits: 20 };
  const plan = planRound({ kind: 'ddg', clip: 1, dim: 12, threshold: t, clients: n, bits: 20, noiseMultiplier: 2 });
  // ε after each round, from the real ledger (the budget is set above the last).
  const ledger = new PrivacyLedger({ accountant: 'rdp' });
  const eps: number[] = [];
  for (let r = 1; r <= rounds; r++) { ledger.record(plan.event); eps.push(ledger.epsilon(delta)); }
  const budget = dp ? { epsilon: Math.ceil(eps.at(-1)! * 1.6 * 10) / 10, delta } : null;
  const consortium = {
    version: 1, name: 'Nordic clinical notes consortium',
    coordinator: { host: 'coordinator.example', port: 7455 },
    roster: siteIds.map((id, i) => ({ id, name: `Hospital ${i + 1}`, publicKey: hex(provider.ed25519PublicKey(seeds[i]!)) })),
    aggregation: { threat: 'malicious', graph: 'complete', threshold: t, bits: 20, dim: 16 },
    deadlines: { gatherMs: 10_000, roundMs: 5_000, handshakeMs: 5_000, idleMs: 60_000, reconnectMaxMs: 30_000 },
    limits: { connectionsPerMinutePerIp: 600 },
  };
  const job = {
    rounds, lora: { r: 4, alpha: 8, targets: ['c_attn'], ffa: true, seed: 'tally/lora-a' },
    local: { steps: 12, batchSize: 8, lr: 0.01, weightDecay: 0 },
    strategy: { kind: 'fedavg', mu: 0, serverLr: 1, serverMomentum: 0 },
    dp: { ...dpJob, ...(budget !== null ? { budget } : {}) },
  };
  const tr = openCoordinatorLog(dir, { signingSeed: coordSeed, config: { consortium, job }, policy: { minSurvivors: t, budget, accountant: 'rdp' } });

  let k = 0;
  const session = (purpose: 'train' | 'eval', round: number, silent: Map<number, number>): { id: string; survivors: number[] } => {
    const id = `s${++k}-${purpose}-r${round}`;
    const dim = purpose === 'train' ? 16 : 2, bits = purpose === 'train' ? 20 : 32;
    const config: SessionConfig = {
      nonce: rng.bytes(32), clientIds: ids, threshold: t, bits, dim, threat: 'malicious', graph: { kind: 'complete' },
      identityKeys: seeds.map((s) => provider.ed25519PublicKey(s)),
    };
    const net = new LockstepNetwork({
      config, provider, silentFrom: silent, listener: auditListener(tr, id, config),
      clients: ids.map((c) => ({ id: c, rng: new DeterministicRng(`${id}/${c}`), input: Uint32Array.from({ length: dim }, (_, j) => (c * 31 + j) % 2 ** Math.min(bits, 16)), identitySeed: seeds[c - 1]! })),
    });
    const out = net.run();
    if (out.kind !== 'completed') throw new Error(`fixture session ${id} aborted: ${out.code}`);
    return { id, survivors: [...out.survivors] };
  };
  const evalRound = (round: number, loss: number): void => {
    const s = session('eval', round, new Map());
    tr.append('fl-session', { round, attempt: 1, session: s.id, purpose: 'eval', result: 'completed', charged: false, survivors: s.survivors, metrics: { evalLoss: loss, perplexity: Math.exp(loss), tokens: 4096 } });
  };
  evalRound(0, 3.2);
  for (let r = 1; r <= rounds; r++) {
    const silent = new Map<number, number>([[n, 2]]);
    if (r === 2) silent.set(n - 1, 3);
    const s = session('train', r, silent);
    if (dp) tr.dpEvent(plan.event, eps[r - 1]!, { session: s.id, round: r, label: `round ${r}` });
    tr.append('fl-session', { round: r, attempt: 1, session: s.id, purpose: 'train', result: 'completed', charged: dp, survivors: s.survivors });
    evalRound(r, 3.2 - 0.35 * r + 0.04 * r * r);
  }
  if (o.dropCode !== undefined) {
    // A drop reported after the outcome, with a code of the caller's (untrusted text in a record).
    tr.append('round', { session: `s${k}-eval-r${rounds}`, round: 4, participants: null, dropped: [{ peer: 1, round: 4, code: o.dropCode }] });
  }
  tr.checkpoint();
  tr.close();
  const last = tr.lastCheckpoint()!;
  siteIds.forEach((site, i) => {
    const log: Transcript = openSiteLog(join(dir, 'sites', `${site.replace(/[^A-Za-z0-9._-]/g, '_')}.jsonl`), { seed: seeds[i]!, site });
    log.witness(last);
    log.checkpoint();
    log.close();
  });
  return { dir, siteIds };
}
