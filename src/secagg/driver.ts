/**
 * The one session driver of secagg-v1. The state machines in `server/` and
 * `client/` are pure transitions over decoded messages; the driver is what
 * runs them against a transport: it decodes and encodes every message,
 * binds each message's sender to the channel it arrived on, closes a round
 * when every expected client answered or when the deadline policy says so,
 * wipes the secrets a transition hands back, and tells a listener everything
 * that happened (the audit feed). It has no clock and no sockets: the
 * in-process scheduler (`lockstep.ts`), the simulation, the vectors, the
 * tests, the benchmarks and the network coordinator all run sessions through
 * it, each with its own channel and deadline policy.
 *
 * Re-entrancy: a channel may deliver synchronously (a reply can arrive while
 * the driver is still sending a round's messages); such calls are queued and
 * handled in order once the current step finishes.
 */
import { CodecError, TallyError } from '../errors.js';
import type { CryptoProvider } from '../crypto/types.js';
import type { AggregatorFactory } from '../crypto/aggregator.js';
import { equalBytes } from '../crypto/_validate.js';
import type { SessionConfig } from './config.js';
import { decodeClientMessage, decodeServerMessage, encodeClientMessage, encodeServerMessage } from './codec.js';
import { abortClient, clientRoundOf, handleServerMessage, setInput, startClient, type ClientState, type StartClientOptions } from './client/index.js';
import { closeRound, createServer, expectedClients, receiveMessage, refuseUndecodable, roundOf, type DropRecord, type ServerState, type ServerStep } from './server/index.js';
import type { ClientMessage, Outgoing, ServerMessage } from './messages.js';

/** The server's side of a transport: delivers bytes to one client. */
export interface ServerChannel {
  send(to: number, bytes: Uint8Array): void;
}

/** A client's side of a transport: delivers bytes to the server. */
export interface ClientChannel {
  send(bytes: Uint8Array): void;
}

/**
 * When a round's deadline passes. `arm` is called as each round opens; the
 * policy calls `close` once the deadline passes (a timer on a network, the
 * moment the in-process queue runs dry in a simulation) and returns a
 * function that cancels it (called when every expected client answered first).
 * Without a policy the caller closes rounds itself with `closeRound()`.
 */
export interface DeadlinePolicy {
  arm(round: number, close: () => void): () => void;
}

/** How a session ended, as the server saw it. */
export type ServerOutcome =
  | {
    readonly kind: 'completed';
    /** The sum mod 2^b; empty in an HE session, whose sum is `sealedSum`. */
    readonly sum: Uint32Array;
    /** An HE session (config.aggregator): the sum's ciphertext envelope (he-sum-v1). */
    readonly sealedSum?: Uint8Array;
    readonly survivors: readonly number[]; readonly dropped: ReadonlyMap<number, DropRecord>; readonly rounds: readonly RoundRecord[];
  }
  | { readonly kind: 'aborted'; readonly code: string; readonly message: string; readonly round: number; readonly dropped: ReadonlyMap<number, DropRecord>; readonly rounds: readonly RoundRecord[] };

/** What the server heard in one round. */
export interface RoundRecord {
  readonly round: number;
  /** Clients whose message of this round was accepted, increasing id. */
  readonly participants: readonly number[];
}

/**
 * Everything a session does, for audit transcripts, statistics and tests.
 * Every callback is optional and must not throw.
 */
export interface SessionListener {
  /** An encoded message crossed the channel (`peer` is the client at the other end). */
  message?(e: { readonly direction: 'to-server' | 'to-client'; readonly round: number; readonly peer: number; readonly bytes: Uint8Array }): void;
  /** The server refused a message (its sender is dropped unless the code says otherwise; see `dropped`). */
  rejected?(e: { readonly round: number; readonly peer: number | undefined; readonly code: string; readonly message: string }): void;
  /** A client left the session (`code` SILENT when it did not answer in time). */
  dropped?(e: { readonly round: number; readonly peer: number; readonly code: string }): void;
  /** A round closed. */
  roundClosed?(e: RoundRecord): void;
  /** The session ended. */
  outcome?(o: ServerOutcome): void;
}

export interface ServerDriverOptions {
  readonly config: SessionConfig;
  readonly provider: CryptoProvider;
  readonly aggregator?: AggregatorFactory;
  readonly channel: ServerChannel;
  readonly deadlines?: DeadlinePolicy;
  readonly listener?: SessionListener;
}

/** Runs the server of one session. */
export class ServerDriver {
  private s: ServerState;
  private readonly o: ServerDriverOptions;
  private readonly heard: Set<number>[] = [0, 1, 2, 3, 4].map(() => new Set<number>());
  private readonly records: RoundRecord[] = [];
  private readonly reported = new Set<number>();
  private cancel: (() => void) | undefined;
  private busy = false;
  private readonly queue: (() => void)[] = [];
  private result: ServerOutcome | undefined;

  /** @throws ValidationError on a bad configuration (see `createServer`). */
  constructor(o: ServerDriverOptions) {
    this.o = o;
    this.s = createServer({ config: o.config, provider: o.provider, ...(o.aggregator ? { aggregator: o.aggregator } : {}) });
    this.arm();
  }

  /** The current server state (read it, never mutate it). */
  get state(): ServerState { return this.s; }
  /** The current round (see `roundOf`). */
  get round(): number { return roundOf(this.s); }
  /** The outcome once the session ended. */
  get outcome(): ServerOutcome | undefined { return this.result; }
  /** Clients the server still waits for in this round. */
  expected(): number[] { return expectedClients(this.s); }

  /**
   * A message arrived from `from`, the client id the transport authenticated.
   * The driver takes ownership of `bytes`: parts of it are kept as views
   * (see decodeClientMessage), so the transport must not reuse the buffer.
   */
  receive(from: number, bytes: Uint8Array): void {
    this.serialised(() => this.onMessage(from, bytes));
  }

  /** The current round's deadline passed: whoever has not answered is dropped, the round closes. */
  closeRound(): void {
    this.serialised(() => { if (this.result === undefined) this.close(); });
  }

  private serialised(f: () => void): void {
    this.queue.push(f);
    if (this.busy) return;
    this.busy = true;
    try {
      for (let g = this.queue.shift(); g !== undefined; g = this.queue.shift()) g();
    } finally {
      this.busy = false;
    }
  }

  private onMessage(from: number, bytes: Uint8Array): void {
    const round = this.round;
    const l = this.o.listener;
    l?.message?.({ direction: 'to-server', round: Math.min(round, 4), peer: from, bytes });
    if (this.result !== undefined) {
      l?.rejected?.({ round, peer: from, code: 'SECAGG_ERR_UNEXPECTED_MESSAGE', message: `client ${from} sent a message after the session ended` });
      return;
    }
    let step: ServerStep;
    try {
      step = receiveMessage(this.s, from, decodeClientMessage(bytes, this.s.ctx.config));
    } catch (err) {
      if (!(err instanceof CodecError)) throw err;
      step = refuseUndecodable(this.s, from, 'SECAGG_ERR_BAD_MESSAGE', `undecodable message from client ${from}: ${err.message}`);
    }
    this.s = step.state;
    if (step.rejected !== undefined) l?.rejected?.({ round, ...step.rejected });
    else this.heard[round]?.add(from);
    this.reportDrops();
    if (expectedClients(this.s).length === 0) this.close();
  }

  private close(): void {
    this.cancel?.();
    this.cancel = undefined;
    const round = this.round;
    const running = 'acc' in this.s ? this.s.acc : undefined;
    const step = closeRound(this.s);
    this.s = step.state;
    // An aborted session's running sum is never read again: wipe it now.
    if (this.s.kind === 'aborted') running?.clear();
    const record: RoundRecord = { round, participants: [...(this.heard[round] ?? [])].sort((a, b) => a - b) };
    this.records.push(record);
    this.reportDrops();
    this.o.listener?.roundClosed?.(record);
    this.sendAll(step.out);
    const s = this.s;
    if (s.kind === 'completed') {
      this.finish({ kind: 'completed', sum: s.sum, ...(s.sealedSum ? { sealedSum: s.sealedSum } : {}), survivors: s.survivors, dropped: s.ctx.dropped, rounds: this.records });
    } else if (s.kind === 'aborted') {
      this.finish({ kind: 'aborted', code: s.code, message: s.message, round: s.round, dropped: s.ctx.dropped, rounds: this.records });
    } else {
      this.arm();
      // A round nobody needs to answer (everyone expected was already dropped) closes at once.
      if (expectedClients(this.s).length === 0) this.close();
    }
  }

  private finish(o: ServerOutcome): void {
    this.result = o;
    this.o.listener?.outcome?.(o);
  }

  /** A broadcast is one message object sent to many clients: encode it once. */
  private sendAll(out: readonly Outgoing[]): void {
    const encoded = new Map<ServerMessage, Uint8Array>();
    // The round a server message belongs to is the one it opens (5 after completion, the next one for an abort).
    const s = this.s;
    const round = s.kind === 'completed' ? 5 : s.kind === 'aborted' ? s.round + 1 : this.round;
    for (const { to, message } of out) {
      let bytes = encoded.get(message);
      if (bytes === undefined) encoded.set(message, (bytes = encodeServerMessage(message)));
      this.o.listener?.message?.({ direction: 'to-client', round, peer: to, bytes });
      this.o.channel.send(to, bytes);
    }
  }

  private reportDrops(): void {
    const l = this.o.listener;
    for (const [peer, d] of this.s.ctx.dropped) {
      if (this.reported.has(peer)) continue;
      this.reported.add(peer);
      l?.dropped?.({ round: d.round, peer, code: d.code });
    }
  }

  private arm(): void {
    const d = this.o.deadlines;
    if (d !== undefined && this.result === undefined) this.cancel = d.arm(this.round, () => this.closeRound());
  }
}

/** What happened to one client, as it saw it. */
export type ClientOutcome =
  | { readonly kind: 'completed' }
  | { readonly kind: 'aborted'; readonly code: string; readonly message: string; readonly round: number };

export interface ClientDriverOptions extends Omit<StartClientOptions, 'input'> {
  /**
   * The input vector, or a function that produces it when the masked-input
   * round starts (so a simulation holds each input only while it is used).
   */
  readonly input?: Uint32Array | (() => Uint32Array);
  readonly channel: ClientChannel;
  /** Sees every encoded message this client sends or receives. */
  readonly listener?: { message?(e: { readonly direction: 'to-server' | 'to-client'; readonly round: number; readonly bytes: Uint8Array }): void };
}

/**
 * Runs one client of one session. Server messages are decoded here (an
 * undecodable one aborts the client with `SECAGG_ERR_BAD_MESSAGE`); a
 * byte-identical copy of a server message already handled is ignored
 * (secagg-v1 spec §5.8, so a transport may retry), a different message for a
 * round already handled aborts as the state machine says; every secret a
 * transition releases is zeroed at once.
 */
export class ClientDriver {
  private s: ClientState | undefined;
  private readonly o: ClientDriverOptions;
  private readonly handled: Uint8Array[] = [];
  private busy = false;
  private readonly queue: Uint8Array[] = [];

  constructor(o: ClientDriverOptions) {
    this.o = o;
  }

  /** The client's state (undefined before `start`). */
  get state(): ClientState | undefined { return this.s; }
  get id(): number { return this.o.id; }
  /** The outcome once the client finished. */
  get outcome(): ClientOutcome | undefined {
    const s = this.s;
    if (s?.kind === 'completed') return { kind: 'completed' };
    if (s?.kind === 'aborted') return { kind: 'aborted', code: s.code, message: s.message, round: s.round };
    return undefined;
  }

  /**
   * Draws fresh keys and sends the R0 advertisement.
   * @throws ValidationError on a bad configuration, id, identity seed or input
   */
  start(): void {
    if (this.s !== undefined) return;
    const { input, channel: _c, listener: _l, ...rest } = this.o;
    const step = startClient({ ...rest, ...(input instanceof Uint32Array ? { input } : {}) });
    this.s = step.state;
    this.send(step.out, 0);
  }

  /** Stops taking part: nothing more is sent or handled, and every secret held is zeroed. */
  leave(): void {
    const s = this.s;
    if (s === undefined || s.kind === 'completed' || s.kind === 'aborted') return;
    const step = abortClient(s, 'SILENT', 'the client left the session', clientRoundOf(s), false);
    for (const c of step.consumed) c.fill(0);
    this.s = step.state;
  }

  /** A message arrived from the server. The driver takes ownership of `bytes` (see decodeServerMessage). */
  receive(bytes: Uint8Array): void {
    this.queue.push(bytes);
    if (this.busy) return;
    this.busy = true;
    try {
      for (let b = this.queue.shift(); b !== undefined; b = this.queue.shift()) this.onMessage(b);
    } finally {
      this.busy = false;
    }
  }

  private onMessage(bytes: Uint8Array): void {
    const s = this.s;
    if (s === undefined) return;
    this.o.listener?.message?.({ direction: 'to-client', round: clientRoundOf(s), bytes });
    if (this.handled.some((h) => h === bytes || equalBytes(h, bytes))) return;
    let msg: ServerMessage;
    try {
      msg = decodeServerMessage(bytes, s.ctx.config);
    } catch (err) {
      if (!(err instanceof CodecError)) throw err;
      this.apply(abortClient(s, 'SECAGG_ERR_BAD_MESSAGE', `undecodable message from the server: ${err.message}`, clientRoundOf(s)));
      return;
    }
    let state = s;
    // The masked-input round starts with the share routing: supply a lazy input now.
    if (state.kind === 'shared' && state.input === undefined && msg.type === 'share-routing' && typeof this.o.input === 'function') {
      try {
        state = setInput(state, this.o.input());
      } catch (err) {
        if (!(err instanceof TallyError)) throw err;
        this.apply(abortClient(state, 'SECAGG_ERR_NO_INPUT', `the input could not be set: ${err.message}`, 2));
        return;
      }
    }
    if (state.kind !== 'completed' && state.kind !== 'aborted') this.handled.push(bytes);
    this.apply(handleServerMessage(state, msg), clientRoundOf(s));
  }

  /** Applies a transition; its messages belong to `round`, the round of the server message being answered. */
  private apply(step: { state: ClientState; out: readonly ClientMessage[]; consumed: readonly Uint8Array[] }, round = clientRoundOf(step.state)): void {
    for (const c of step.consumed) c.fill(0);
    this.s = step.state;
    if (step.state.kind === 'completed' || step.state.kind === 'aborted') this.handled.length = 0;
    this.send(step.out, round);
  }

  private send(out: readonly ClientMessage[], round: number): void {
    for (const m of out) {
      const bytes = encodeClientMessage(m);
      this.o.listener?.message?.({ direction: 'to-server', round: Math.min(round, 4), bytes });
      this.o.channel.send(bytes);
    }
  }
}
