/**
 * A deterministic, clock-free channel between one {@link ServerDriver} and its
 * {@link ClientDriver}s in one process. Messages travel in waves: every
 * client message in flight reaches the server in increasing sender id, then
 * every server message in flight reaches its client in the order sent, and
 * so on; when nothing is in flight and the session has not ended, the round's
 * deadline passes (silence is the absence of messages, not a timer). The
 * vectors, the tests and the simulation (`transport/simulation.ts`) run sessions
 * through it, so each replays the same schedule byte for byte.
 *
 * Hooks let a caller act as a faulty network or a dishonest party: a client
 * can fall silent from a given round, any message can be replaced or dropped
 * in flight, server messages can be delivered twice (a retrying transport),
 * and `runUntil` stops before a chosen message is delivered.
 */
import type { CryptoProvider } from '../crypto/types.js';
import type { AggregatorFactory, MaskedInputEncoder } from '../crypto/aggregator.js';
import type { Rng } from '../crypto/rng.js';
import type { SessionConfig } from './config.js';
import { ClientDriver, ServerDriver, type ClientDriverOptions, type ServerOutcome, type SessionListener } from './driver.js';

/** One client of a lockstep session. */
export interface LockstepClient {
  readonly id: number;
  readonly rng: Rng;
  readonly identitySeed?: Uint8Array;
  /** The input, or a function that produces it when the masked-input round starts. */
  readonly input?: Uint32Array | (() => Uint32Array);
  /** The masked-input encoder of a session with an aggregator commitment (he-sum-v1). */
  readonly maskedInput?: MaskedInputEncoder;
  /** The client's own listener (e.g. a site's audit log): every message it sends and receives. */
  readonly listener?: ClientDriverOptions['listener'];
}

/** A message in flight. */
export interface InFlight {
  /** Who sent it. */
  readonly from: 'client' | 'server';
  /** The client at the other end (sender or recipient). */
  readonly id: number;
  /** The round it belongs to (as the drivers' listeners report it). */
  readonly round: number;
  readonly bytes: Uint8Array;
  /** Position in its wave (default `id`): messages sent in place of another keep that one's place. */
  readonly order?: number;
}

export interface LockstepOptions {
  readonly config: SessionConfig;
  readonly provider: CryptoProvider;
  readonly aggregator?: AggregatorFactory;
  readonly clients: readonly LockstepClient[];
  /** Client id → the first round in which it sends nothing (it neither answers nor starts, for 0). */
  readonly silentFrom?: ReadonlyMap<number, number>;
  /**
   * Sees every message as it is sent: return `undefined` to pass it on, new
   * bytes to replace it, `null` to lose it, or a list of messages to send in
   * its place (each with its own sender: a client speaking on another's
   * channel, a repeat, an extra message).
   */
  readonly intercept?: (m: InFlight) => Uint8Array | null | undefined | readonly InFlight[];
  /**
   * A second delivery right after each server message: `true` repeats every
   * message byte for byte (a transport that retries); a function returns the
   * bytes of the second copy for a message (its own bytes for a retry, other
   * bytes for a conflicting message) or `undefined` for none.
   */
  readonly duplicateServerMessages?: boolean | ((m: InFlight) => Uint8Array | undefined);
  /** The server's listener (messages, rejections, drops, rounds, outcome). */
  readonly listener?: SessionListener;
  /** Called around each party's work, e.g. for timing: `party` is 0 for the server, else the client id. */
  readonly onWork?: (party: number, work: () => void) => void;
  /**
   * Hand each client's messages to the server as soon as that client's work
   * ends, instead of holding a whole wave of them (e.g. the n masked inputs
   * of R2, n·m·b/8 bytes). The clients of a wave are then served in
   * increasing id, so the server still receives in the order a wave
   * delivers (increasing sender id) and the session is the same byte for
   * byte; only `inFlight`, `take` and `runUntil` see fewer client messages.
   */
  readonly stream?: boolean;
}

/** A session's server and clients wired together in one process. */
export class LockstepNetwork {
  readonly server: ServerDriver;
  readonly clients: ReadonlyMap<number, ClientDriver>;
  private up: InFlight[] = [];
  private down: InFlight[] = [];
  private readonly o: LockstepOptions;
  private started = false;
  private lastRound = 0;

  constructor(o: LockstepOptions) {
    this.o = o;
    let pendingRound = 0;
    this.server = new ServerDriver({
      config: o.config, provider: o.provider, ...(o.aggregator ? { aggregator: o.aggregator } : {}),
      channel: { send: (to, bytes) => this.push({ from: 'server', id: to, round: pendingRound, bytes }) },
      listener: {
        ...o.listener,
        message: (e) => { if (e.direction === 'to-client') pendingRound = e.round; o.listener?.message?.(e); },
      },
    });
    const clients = new Map<number, ClientDriver>();
    for (const c of o.clients) {
      let round = 0;
      const driver: ClientDriver = new ClientDriver({
        config: o.config, id: c.id, provider: o.provider, rng: c.rng,
        ...(c.identitySeed ? { identitySeed: c.identitySeed } : {}), ...(c.input !== undefined ? { input: c.input } : {}),
        ...(c.maskedInput ? { maskedInput: c.maskedInput } : {}),
        channel: { send: (bytes) => this.push({ from: 'client', id: c.id, round, bytes }) },
        listener: { ...c.listener, message: (e) => { if (e.direction === 'to-server') round = e.round; c.listener?.message?.(e); } },
      });
      clients.set(c.id, driver);
    }
    this.clients = clients;
  }

  private silentFrom(id: number): number {
    return this.o.silentFrom?.get(id) ?? Infinity;
  }

  private push(m: InFlight): void {
    if (m.from === 'client' && this.silentFrom(m.id) <= m.round) return;
    const replaced = this.o.intercept?.(m);
    if (replaced === null) return;
    if (replaced === undefined || replaced instanceof Uint8Array) {
      (m.from === 'client' ? this.up : this.down).push(replaced === undefined ? m : { ...m, bytes: replaced });
      return;
    }
    for (const x of replaced) (x.from === 'client' ? this.up : this.down).push({ ...x, order: m.order ?? m.id });
  }

  /** Whether the session has ended at the server. */
  get done(): boolean {
    return this.server.outcome !== undefined;
  }

  /** Messages in flight, not yet delivered (server → client first). */
  inFlight(): readonly InFlight[] {
    return [...this.down, ...this.up];
  }

  /**
   * One wave: starts the clients, or delivers every client message in
   * flight, or every server message in flight, or (nothing in flight) closes
   * the round at its deadline. Returns false once there is nothing left to do.
   */
  step(): boolean {
    const work = this.o.onWork ?? ((_p: number, f: () => void) => f());
    if (!this.started) {
      this.started = true;
      // A client silent from R0 still starts (draws its keys) but none of its messages leave.
      const order = this.o.stream ? [...this.clients].sort((a, b) => a[0] - b[0]) : this.clients;
      for (const [id, c] of order) {
        work(id, () => c.start());
        if (this.o.stream) this.deliverUp(work);
      }
      return true;
    }
    if (this.up.length > 0) {
      this.deliverUp(work);
      return true;
    }
    if (this.down.length > 0) {
      // Sorting is stable: a client's messages keep the order they were sent in.
      const wave = this.o.stream ? this.down.sort((a, b) => a.id - b.id) : this.down;
      this.down = [];
      for (const m of wave) {
        this.lastRound = m.round;
        const c = this.clients.get(m.id);
        if (c === undefined || this.silentFrom(m.id) <= m.round) continue;
        work(m.id, () => c.receive(m.bytes));
        const dup = this.o.duplicateServerMessages;
        const second = typeof dup === 'function' ? dup(m) : dup === true ? m.bytes : undefined;
        if (second !== undefined) work(m.id, () => c.receive(second));
        if (this.o.stream) this.deliverUp(work);
      }
      return true;
    }
    if (this.done) return false;
    work(0, () => this.server.closeRound());
    return true;
  }

  /** Delivers every client message in flight to the server, in increasing sender id (or the place `order` gives it). */
  private deliverUp(work: (party: number, f: () => void) => void): void {
    const wave = this.up.sort((a, b) => (a.order ?? a.id) - (b.order ?? b.id));
    this.up = [];
    for (const m of wave) work(0, () => this.server.receive(m.id, m.bytes));
  }

  /** Runs until the session ends and every message is delivered; returns the server's outcome. */
  run(): ServerOutcome {
    while (this.step());
    return this.server.outcome!;
  }

  /**
   * Runs until `stop` holds for a message about to be delivered (it stays in
   * flight) or the session ends. Returns the messages in flight at that point.
   */
  runUntil(stop: (m: InFlight) => boolean): readonly InFlight[] {
    for (;;) {
      if (this.inFlight().some(stop)) return this.inFlight();
      if (!this.step()) return this.inFlight();
    }
  }

  /** Removes and returns every message in flight (a test delivers them itself, altered or not). */
  take(): InFlight[] {
    const all = [...this.down, ...this.up];
    this.down = [];
    this.up = [];
    return all;
  }

  /** Puts a message in flight as if its sender had sent it (bypassing `intercept`). */
  inject(m: InFlight): void {
    (m.from === 'client' ? this.up : this.down).push(m);
  }

  /** The round of the last server message delivered. */
  get round(): number {
    return this.lastRound;
  }
}
