/**
 * The coordinator of a consortium (`tally serve`): gathers the roster's sites
 * over the network, runs one secure-aggregation session at a time through the
 * session driver, and keeps every session and result in its store.
 *
 * The network is one more channel behind {@link ServerDriver}: a session's
 * server messages go out as `secagg` envelopes to the site whose client id
 * they name, a site's `secagg` envelopes come in under the client id its
 * connection authenticated (never an id the message claims; the driver
 * refuses a mismatch), and a timer per round is the deadline policy.
 *
 * Sessions. The cohort of every session is the whole roster with the
 * consortium's parameters (so its security parameters are the ones the sites
 * agreed to and check); a site that is not connected when a session starts is
 * silent from R0 and dropped at R0's deadline. A session starts once every
 * roster site is connected, or once `gatherMs` has passed with at least t of
 * them connected; after a session, gathering waits a second (or one round's
 * deadline if shorter) so that sites that leave once they have their result
 * are not counted for the next. Each session has a fresh 32-byte nonce, and so fresh keys on
 * every site: nothing is reused across two sessions, and a session is never
 * resumed. A round closes when every expected site answered, when its
 * deadline passes, or as soon as every site it still waits for has
 * disconnected.
 *
 * Crash recovery: at start-up every session the store still has as running
 * was interrupted by a crash; it is recorded as aborted (COORDINATOR_RESTART)
 * before anything else happens, and the sites, which reconnect by themselves,
 * take part in the next session with fresh keys.
 */
import { randomBytes } from 'node:crypto';
import { equalBytes } from '../crypto/_validate.js';
import { nativeProvider } from '../crypto/native.js';
import type { CryptoProvider } from '../crypto/types.js';
import { ServerDriver, type ServerOutcome, type SessionListener } from '../secagg/driver.js';
import type { AggregatorFactory } from '../crypto/aggregator.js';
import { ValidationError } from '../errors.js';
import { clipText, encodeEnvelope, type Envelope, type SessionStartBody, type WireCheckpoint } from '../transport/envelope.js';
import { SiteListener, type SiteConnection, type TlsServerMaterial } from '../transport/ws-server.js';
import { consortiumLimits, sessionConfig, type Consortium, type RosterSite, type SessionShape } from './consortium.js';
import type { SecureSum } from './rounds.js';
import type { CoordinatorStore } from './store.js';
import { auditListener, withAudit, type Transcript } from '../audit/transcript.js';

/** Pause between the end of a session and the gathering for the next (at most one round's deadline). */
const SETTLE_MS = 1000;

export interface CoordinatorOptions {
  readonly consortium: Consortium;
  readonly store: CoordinatorStore;
  /** TLS material; absent only for plain loopback trials (the CLI's --insecure-loopback). */
  readonly tls?: TlsServerMaterial;
  /** Overrides of the consortium's coordinator address (port 0: a free port). */
  readonly host?: string;
  readonly port?: number;
  readonly provider?: CryptoProvider;
  /** One line per event worth a log (site connected, session started, round closed…). */
  readonly log?: (line: string) => void;
  /**
   * The run's audit transcript (transcript-v1): every session's records are
   * written from the driver's listener, and each result and abort carries
   * its latest checkpoint for the sites to witness.
   */
  readonly audit?: Transcript;
  /**
   * A homomorphic consortium (`aggregation.aggregator` he or he+masks): the
   * key id of the sites' shared key, read from the dealer's signed offer
   * (he-keys.ts `offerKeyId`). The coordinator adds ciphertexts, removes
   * the masks inside them, and sends the sealed sum to the sites; it never
   * holds a key or the sum.
   */
  readonly heKeyId?: Uint8Array;
}

/**
 * What a session is about when it is not a plain secure sum of the
 * consortium's `aggregation` shape: a fine-tuning round's task and the
 * session parameters the job derives for it (job.ts `planSession`).
 */
export interface SessionRequest {
  /** Sent with the session-start; the sites compute their inputs from it. */
  readonly task: Uint8Array;
  readonly shape: SessionShape;
  /** Deadline of the masked-input round (R2), in which the sites compute their inputs (default the round deadline). */
  readonly inputMs?: number;
}

/** A session's outcome with site ids instead of client ids. */
export interface SessionReport {
  readonly session: string;
  readonly outcome: 'completed' | 'aborted';
  readonly survivors: readonly string[];
  readonly dropped: readonly { readonly site: string; readonly round: number; readonly code: string }[];
  readonly sum: readonly number[] | undefined;
  readonly abort: { readonly code: string; readonly message: string; readonly round: number } | undefined;
  readonly rounds: readonly { readonly round: number; readonly participants: readonly string[] }[];
  /** Envelope bytes of this session on the sites' connections (frames, without WebSocket and TLS framing). */
  readonly traffic: { readonly up: number; readonly down: number };
  /** Wall time from the session-start to the outcome. */
  readonly seconds: number;
}

interface Running {
  readonly nonce: Uint8Array;
  readonly hex: string;
  readonly driver: ServerDriver;
  readonly done: Promise<SessionReport>;
  readonly finish: (r: SessionReport) => void;
  readonly traffic: { up: number; down: number };
  /** The session's audit listener, when the run keeps a transcript. */
  readonly audit: SessionListener | undefined;
}

export class Coordinator {
  private readonly bySiteClient = new Map<number, RosterSite>();
  private running: Running | undefined;
  private readonly waiters = new Set<() => void>();
  private closed = false;
  private lastEnded = 0;
  private readonly log: (line: string) => void;

  private constructor(
    private readonly o: CoordinatorOptions, private readonly listener: SiteListener, readonly recovered: readonly string[],
    private readonly aggregator: AggregatorFactory | undefined,
  ) {
    for (const s of o.consortium.sites) this.bySiteClient.set(s.clientId, s);
    this.log = o.log ?? (() => {});
  }

  /** Recovers the store, then starts listening. */
  static async start(o: CoordinatorOptions): Promise<Coordinator> {
    let aggregator: AggregatorFactory | undefined;
    const he = o.consortium.he;
    if (he !== undefined) {
      if (o.heKeyId === undefined) throw new ValidationError('HE_ERR_BAD_INPUT', 'a homomorphic consortium\'s coordinator needs the key id of the sites\' shared key (tally serve --he-offer)');
      // node-seal is loaded here, once, and only for a homomorphic consortium.
      const [{ heContext }, { heAggregator }] = await Promise.all([import('../he/seal.js'), import('../he/aggregate.js')]);
      aggregator = heAggregator(await heContext(he.params), he.mode, o.heKeyId, o.provider ?? nativeProvider);
    }
    const recovered = o.store.recoverInterrupted();
    o.store.syncRoster(o.consortium.sites.map((s) => ({ id: s.id, name: s.name, clientId: s.clientId, publicKey: s.publicKey })));
    const c = o.consortium.config;
    let self: Coordinator | undefined;
    const listener = await SiteListener.listen({
      host: o.host ?? c.coordinator.host,
      port: o.port ?? c.coordinator.port,
      ...(o.tls !== undefined ? { tls: o.tls } : {}),
      consortium: o.consortium.hash,
      sites: o.consortium.sites,
      limits: consortiumLimits(o.consortium),
      handshakeMs: c.deadlines.handshakeMs,
      idleMs: c.deadlines.idleMs,
      connectionsPerMinutePerIp: c.limits?.connectionsPerMinutePerIp ?? 600,
      provider: o.provider ?? nativeProvider,
      events: {
        authenticated: (s) => self?.onConnected(s),
        frame: (s, e, bytes) => self?.onFrame(s, e, bytes),
        closed: (s, code) => self?.onClosed(s, code),
        refused: (e) => self?.log(`refused ${e.site ?? '(unidentified)'} from ${e.remote}: ${e.code}: ${e.message}`),
      },
    });
    self = new Coordinator(o, listener, recovered, aggregator);
    for (const id of recovered) self.log(`session ${id} was interrupted by a restart: recorded as aborted (COORDINATOR_RESTART)`);
    return self;
  }

  get port(): number { return this.listener.port; }
  /** The consortium's deadline of a training session's masked-input round. */
  get trainMs(): number { return this.o.consortium.config.deadlines.trainMs ?? this.o.consortium.config.deadlines.roundMs; }
  /** Site ids connected and authenticated now. */
  connectedSites(): string[] { return this.listener.connected().map((c) => c.siteId).sort(); }

  /**
   * Waits for the sites (see the module comment), then runs one session to
   * its end. Resolves with the report; rejects only if the coordinator is
   * closed while waiting.
   */
  async runSession(signal?: AbortSignal, request?: SessionRequest): Promise<SessionReport> {
    await this.gather(signal);
    return this.startSession(request).done;
  }

  /** Stops: an unfinished session is recorded as aborted (NET_ERR_SHUTDOWN), the sites are told, the listener closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters) w();
    const r = this.running;
    if (r !== undefined) {
      const abort = { code: 'NET_ERR_SHUTDOWN', message: 'the coordinator was stopped', round: Math.min(r.driver.round, 4) };
      this.o.store.finishSession(r.hex, { kind: 'aborted', ...abort });
      this.running = undefined;
      // The transcript records the stop as the session's outcome, as the driver's own outcomes are.
      r.audit?.outcome?.({ kind: 'aborted', ...abort, dropped: new Map(), rounds: [] });
      r.traffic.down += this.broadcast({ kind: 'abort', session: r.nonce, code: abort.code, message: abort.message, ...this.checkpoint() });
      r.finish({ session: r.hex, outcome: 'aborted', survivors: [], dropped: [], sum: undefined, abort, rounds: [], traffic: { ...r.traffic }, seconds: 0 });
    }
    await this.listener.close();
  }

  private get threshold(): number { return this.o.consortium.config.aggregation.threshold; }

  private async gather(signal?: AbortSignal): Promise<void> {
    // Sites that were only waiting for the last result leave right after it: give them the
    // time to go, so that they do not count as connected for the next session.
    const settle = this.lastEnded + Math.min(SETTLE_MS, this.o.consortium.config.deadlines.roundMs) - Date.now();
    if (settle > 0) await new Promise((r) => setTimeout(r, settle));
    const total = this.o.consortium.sites.length;
    const gatherMs = this.o.consortium.config.deadlines.gatherMs;
    const since = Date.now();
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = (): void => {
        if (this.closed || signal?.aborted === true) { done(); reject(new Error('closed')); return; }
        const n = this.listener.connected().length;
        if (n >= total || (n >= this.threshold && Date.now() - since >= gatherMs)) { done(); resolve(); }
      };
      const done = (): void => { this.waiters.delete(check); if (timer !== undefined) clearInterval(timer); signal?.removeEventListener('abort', check); };
      this.waiters.add(check);
      signal?.addEventListener('abort', check);
      timer = setInterval(check, Math.max(20, Math.min(500, gatherMs / 4)));
      timer.unref();
      check();
    });
  }

  private startSession(request?: SessionRequest): Running {
    const nonce = new Uint8Array(randomBytes(32));
    const hex = Buffer.from(nonce).toString('hex');
    const config = sessionConfig(this.o.consortium, nonce, request?.shape, this.o.heKeyId);
    const roundMs = this.o.consortium.config.deadlines.roundMs;
    const deadlinesMs = [roundMs, roundMs, request?.inputMs ?? roundMs, roundMs, roundMs];
    const cohort = this.listener.connected();
    const began = performance.now();
    const start: SessionStartBody = {
      session: nonce, clientIds: config.clientIds, threshold: config.threshold, bits: config.bits, dim: config.dim,
      threat: config.threat, graph: config.graph, roundDeadlinesMs: deadlinesMs, ...(request !== undefined ? { task: request.task } : {}),
    };
    this.o.store.beginSession({
      sessionId: hex,
      params: { clientIds: config.clientIds, threshold: config.threshold, bits: config.bits, dim: config.dim, threat: config.threat, graph: config.graph, roundMs, connectedAtStart: cohort.map((c) => c.siteId) },
    });
    this.log(`session ${hex.slice(0, 16)}… started: ${cohort.length} of ${config.clientIds.length} sites connected, t=${config.threshold}`);
    const traffic = { up: 0, down: 0 };
    let finish!: (r: SessionReport) => void;
    const done = new Promise<SessionReport>((resolve) => { finish = resolve; });
    const siteOf = (clientId: number): string => this.bySiteClient.get(clientId)?.id ?? `client-${clientId}`;
    const store = this.o.store;
    const audit = this.o.audit === undefined ? undefined : auditListener(this.o.audit, hex, config);
    const driver: ServerDriver = new ServerDriver({
      config,
      provider: this.o.provider ?? nativeProvider,
      ...(this.aggregator !== undefined ? { aggregator: this.aggregator } : {}),
      channel: {
        // Each site gets the transcript's latest checkpoint with its first message after it, to witness (transcript-v1 §6).
        send: (to, bytes) => { traffic.down += this.connectionOf(to)?.send({ kind: 'secagg', session: nonce, payload: bytes, ...this.newCheckpointFor(to) }) ?? 0; },
      },
      deadlines: {
        arm: (round, close) => {
          const t = setTimeout(close, deadlinesMs[round] ?? roundMs);
          // Sites that are gone will not answer: close as soon as only they are left.
          const early = setImmediate(() => this.closeIfOnlyAbsent());
          return () => { clearTimeout(t); clearImmediate(early); };
        },
      },
      // The audit records come first: the result and abort then carry the checkpoint after the outcome.
      listener: withAudit(audit, {
        roundClosed: (r) => {
          if (this.running?.driver !== driver) return;
          store.recordRound(hex, { round: r.round, participants: r.participants.map(siteOf) });
          this.log(`session ${hex.slice(0, 16)}… R${r.round} closed: ${r.participants.length} answered`);
        },
        dropped: (d) => {
          if (this.running?.driver !== driver) return;
          store.recordDrop(hex, { site: siteOf(d.peer), round: d.round, code: d.code });
        },
        outcome: (out) => {
          if (this.running?.driver !== driver) return; // closed meanwhile: already recorded
          // Recorded first: whatever happens next, the store has the outcome.
          this.running = undefined;
          this.lastEnded = Date.now();
          if (out.kind === 'completed') {
            store.finishSession(hex, { kind: 'completed', sum: out.sum, survivors: out.survivors.map(siteOf) });
            // `dropped` of a result: the sites whose input is not in the sum (an R4 dropout is in it).
            const inSum = new Set(out.survivors);
            const notInSum = config.clientIds.filter((id) => !inSum.has(id));
            // The sites get the sum only when the consortium agreed to it (aggregation.sumToSites);
            // a homomorphic consortium's sites always get the sealed sum, which only they can decrypt.
            const sum = this.o.consortium.config.aggregation.sumToSites === true && out.sealedSum === undefined ? out.sum : new Uint32Array(0);
            traffic.down += this.broadcast({
              kind: 'result', session: nonce, sum, survivors: out.survivors, dropped: notInSum, ...this.checkpoint(),
              ...(out.sealedSum !== undefined ? { sealedSum: out.sealedSum } : {}),
            });
            this.log(`session ${hex.slice(0, 16)}… completed: ${out.survivors.length} sites in the sum`);
          } else {
            store.finishSession(hex, { kind: 'aborted', code: out.code, message: out.message, round: out.round });
            traffic.down += this.broadcast({ kind: 'abort', session: nonce, code: out.code, message: clipText(out.message), ...this.checkpoint() });
            this.log(`session ${hex.slice(0, 16)}… aborted in R${out.round}: ${out.code}: ${out.message}`);
          }
          finish(toReport(hex, out, siteOf, traffic, (performance.now() - began) / 1000));
        },
      }),
    });
    const running: Running = { nonce, hex, driver, done, finish, traffic, audit };
    this.running = running;
    const startFrame = encodeEnvelope({ kind: 'session-start', ...start });
    for (const c of cohort) traffic.down += c.sendEncoded(startFrame);
    return running;
  }

  /** The checkpoint sizes each client was last sent (a checkpoint goes to a site once). */
  private readonly sentCheckpoint = new Map<number, number>();

  /** The transcript's latest checkpoint when client `to` has not been sent it yet. */
  private newCheckpointFor(to: number): { checkpoint?: WireCheckpoint } {
    const c = this.o.audit?.lastCheckpoint();
    if (c === undefined || (this.sentCheckpoint.get(to) ?? -1) >= c.size) return {};
    this.sentCheckpoint.set(to, c.size);
    return { checkpoint: c };
  }

  /** The audit transcript's latest checkpoint, as a result or abort carries it. */
  private checkpoint(): { checkpoint?: WireCheckpoint } {
    const c = this.o.audit?.lastCheckpoint();
    return c === undefined ? {} : { checkpoint: c };
  }

  private connectionOf(clientId: number): SiteConnection | undefined {
    const site = this.bySiteClient.get(clientId);
    return site === undefined ? undefined : this.listener.connection(site.id);
  }

  /** Sends `e`, encoded once, to every connected site; returns the bytes sent. */
  private broadcast(e: Envelope): number {
    const frame = encodeEnvelope(e);
    let bytes = 0;
    for (const c of this.listener.connected()) bytes += c.sendEncoded(frame);
    return bytes;
  }

  /** Closes the current round when every site it waits for has disconnected. */
  private closeIfOnlyAbsent(): void {
    const r = this.running;
    if (r === undefined || r.driver.outcome !== undefined) return;
    const waiting = r.driver.expected();
    if (waiting.length > 0 && waiting.every((id) => this.connectionOf(id) === undefined)) r.driver.closeRound();
  }

  private onConnected(s: SiteConnection): void {
    this.log(`site ${s.siteId} connected from ${s.remote}`);
    for (const w of this.waiters) w();
  }

  private onFrame(s: SiteConnection, e: Envelope, bytes: number): void {
    if (e.kind === 'error') { s.close(); return; } // a party that receives error closes without answering (wire-v1 §4)
    if (e.kind !== 'secagg') {
      s.fail('NET_ERR_PROTOCOL', `a site may only send secagg frames after the handshake, got ${e.kind}`);
      return;
    }
    if (e.checkpoint !== undefined) {
      s.fail('NET_ERR_PROTOCOL', 'a site\'s secagg frame carries an audit checkpoint; only the coordinator sends them');
      return;
    }
    const r = this.running;
    // A late frame of an earlier session, or one sent before any session: ignored.
    if (r === undefined || !equalBytes(e.session, r.nonce)) return;
    r.traffic.up += bytes;
    r.driver.receive(s.clientId, e.payload);
    this.closeIfOnlyAbsent();
  }

  private onClosed(s: SiteConnection, code: string | undefined): void {
    this.log(`site ${s.siteId} disconnected${code !== undefined ? ` (${code})` : ''}`);
    this.closeIfOnlyAbsent();
  }
}

function toReport(hex: string, out: ServerOutcome, siteOf: (id: number) => string, t: { up: number; down: number }, seconds: number): SessionReport {
  const traffic = { up: t.up, down: t.down };
  const dropped = [...out.dropped].sort((a, b) => a[0] - b[0]).map(([peer, d]) => ({ site: siteOf(peer), round: d.round, code: d.code }));
  const rounds = out.rounds.map((r) => ({ round: r.round, participants: r.participants.map(siteOf) }));
  if (out.kind === 'completed') {
    // A homomorphic session's sum is sealed: the coordinator has none to report.
    return { session: hex, outcome: 'completed', survivors: out.survivors.map(siteOf), dropped, sum: out.sealedSum !== undefined ? undefined : [...out.sum], abort: undefined, rounds, traffic, seconds };
  }
  return { session: hex, outcome: 'aborted', survivors: [], dropped, sum: undefined, abort: { code: out.code, message: out.message, round: out.round }, rounds, traffic, seconds };
}

/**
 * The round loop's secure aggregation over the network (rounds.ts
 * `SecureSum`): each session is one {@link Coordinator.runSession} with the
 * round's task, after gathering the connected sites.
 * @param o.inputMs - deadline of the masked-input round, in which sites train (default the consortium's `deadlines.trainMs`)
 */
export function networkSum(c: Coordinator, o: { readonly inputMs?: number; readonly signal?: AbortSignal } = {}): SecureSum {
  return {
    async run(req) {
      const inputMs = req.purpose === 'train' ? o.inputMs ?? c.trainMs : undefined;
      const r = await c.runSession(o.signal, { task: req.task, shape: req.session, ...(inputMs !== undefined ? { inputMs } : {}) });
      const nonce = new Uint8Array(Buffer.from(r.session, 'hex'));
      if (r.outcome === 'completed') {
        const inSum = new Set(r.survivors);
        return {
          kind: 'completed', nonce, sum: Uint32Array.from(r.sum!), survivors: r.survivors,
          dropped: r.dropped.map((d) => d.site).filter((s) => !inSum.has(s)), traffic: r.traffic, seconds: r.seconds,
        };
      }
      return { kind: 'aborted', nonce, code: r.abort!.code, message: r.abort!.message, round: r.abort!.round, traffic: r.traffic, seconds: r.seconds };
    },
  };
}
