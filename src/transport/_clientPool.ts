/**
 * The clients of a simulated session spread over worker threads
 * (`_clientWorker.ts`), so a session uses every core while the server stays
 * on the calling thread.
 *
 * Ownership is by block: ids are cut into blocks of `block` consecutive ids,
 * and block j belongs to worker j mod W. A wave (the clients' start, or the
 * server messages of one wave, in increasing recipient id) is cut into
 * segments, each the part of the wave inside one block; segments go to their
 * workers in order, at most `window` (2·W by default) in flight, and their
 * answers are handed on strictly in segment order. So the server receives the
 * clients' messages in increasing sender id, as the lockstep channel delivers
 * them, while holding at most `window` segments of messages: the block is
 * sized so that a segment of masked inputs stays a few MiB.
 */
import { Worker } from 'node:worker_threads';
import { TallyError, ValidationError } from '../errors.js';
import { sessionDegree } from '../secagg/config.js';
import type { ClientJob, ClientJobDone, ClientWorkerInit } from './_clientWorker.js';

/**
 * Young-generation size of a client worker's heap, in MiB, by the session's
 * degree (neighbours per client). The clients make many short-lived objects
 * with native memory behind them (key objects, ciphers, HMACs, each freed only
 * when its wrapper is collected); a small young generation collects them
 * sooner. Measured (Harary n = 5,000, k = 42, two workers): peak resident
 * memory 594 MiB with V8's default, 481 MiB with 4 MiB for 5% more time,
 * 459 MiB with 2 MiB for 13% more. A session of large degree has few clients
 * (the parameter finder picks the complete graph only for small n), each
 * making thousands of such objects per round: there the collections
 * themselves cost (complete graph, n = 400: 9% less client time with
 * 16 MiB than with 4, about the same peak memory), so degrees from
 * {@link LARGE_DEGREE} up get {@link LARGE_DEGREE_YOUNG_GENERATION_MB}.
 */
const CLIENT_YOUNG_GENERATION_MB = 4;
const LARGE_DEGREE = 128;
const LARGE_DEGREE_YOUNG_GENERATION_MB = 16;

/** The young generation of a client worker for a session whose clients have `degree` neighbours. */
function clientYoungGenerationMb(degree: number): number {
  return degree >= LARGE_DEGREE ? LARGE_DEGREE_YOUNG_GENERATION_MB : CLIENT_YOUNG_GENERATION_MB;
}

/** A client message handed back by a worker. */
export interface PooledMessage {
  readonly id: number;
  readonly round: number;
  readonly bytes: Uint8Array;
}

interface Pending {
  resolve(d: ClientJobDone): void;
  reject(e: Error): void;
}

export class ClientPool {
  private readonly workers: Worker[];
  private readonly pending = new Map<number, Pending>();
  private readonly seen: Map<Uint8Array, number>[];
  private jobs = 0;
  private waves = 0;
  private failure: Error | undefined;

  /**
   * @param init what every worker needs, less the ids it owns
   * @param ids every client id, increasing
   * @param threads workers to start, ≥ 2
   * @param block ids per block, ≥ 1
   * @param window segments in flight at once, ≥ threads
   */
  constructor(init: Omit<ClientWorkerInit, 'ids' | 'inputs' | 'identitySeeds'> & {
    inputs?: ReadonlyMap<number, Uint32Array>; identitySeeds?: ReadonlyMap<number, Uint8Array>;
  }, ids: readonly number[], threads: number, readonly block: number, private readonly window = 2 * threads) {
    const url = new URL('./_clientWorker.js', import.meta.url);
    const youngMb = clientYoungGenerationMb(sessionDegree(init.config));
    this.workers = [];
    this.seen = [];
    for (let w = 0; w < threads; w++) {
      const mine = ids.filter((id) => this.owner(id, threads) === w);
      const data: ClientWorkerInit = {
        seed: init.seed, config: init.config, provider: init.provider, ids: mine,
        ...(init.inputs ? { inputs: mine.map((id) => [id, init.inputs!.get(id)!] as const) } : {}),
        ...(init.identitySeeds ? { identitySeeds: mine.map((id) => [id, init.identitySeeds!.get(id)!] as const) } : {}),
      };
      const worker = new Worker(url, { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: youngMb } });
      worker.on('message', (d: ClientJobDone) => {
        const p = this.pending.get(d.job);
        this.pending.delete(d.job);
        p?.resolve(d);
      });
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => { if (code !== 0) this.fail(new Error(`a client worker exited with status ${code}`)); });
      this.workers.push(worker);
      this.seen.push(new Map());
    }
  }

  private owner(id: number, threads = this.workers.length): number {
    return Math.floor((id - 1) / this.block) % threads;
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private send(w: number, job: Omit<ClientJob, 'job' | 'wave' | 'bufs'>, bytes: readonly Uint8Array[]): Promise<ClientJobDone> {
    if (this.failure) return Promise.reject(this.failure);
    const seen = this.seen[w]!;
    const bufs: Uint8Array[] = [];
    const refs = bytes.map((b) => {
      let i = seen.get(b);
      if (i === undefined) { i = seen.size; seen.set(b, i); bufs.push(b); }
      return i;
    });
    const full: ClientJob = {
      job: ++this.jobs, wave: this.waves, bufs,
      ...(job.start ? { start: job.start } : {}),
      ...(job.deliver ? { deliver: job.deliver.map(([id], k) => [id, refs[k]!] as const) } : {}),
    };
    return new Promise((resolve, reject) => {
      this.pending.set(full.job, { resolve, reject });
      this.workers[w]!.postMessage(full);
    });
  }

  /**
   * Starts the given clients (`start`) or delivers the given server messages
   * (`deliver`, in increasing recipient id), and hands every message the
   * clients send to `onMessage` in increasing sender id, and the clients'
   * working time and count of each segment to `onSegment`, as they come in.
   */
  async wave(w: { start: readonly number[] } | { deliver: readonly (readonly [number, Uint8Array])[] },
    onMessage: (m: PooledMessage) => void, onSegment: (seconds: number, clients: number) => void): Promise<void> {
    this.waves++;
    for (const s of this.seen) s.clear();
    const items: readonly (readonly [number, Uint8Array | undefined])[] = 'start' in w ? w.start.map((id) => [id, undefined] as const) : w.deliver;
    const segments: { worker: number; items: (readonly [number, Uint8Array | undefined])[] }[] = [];
    let blockOf = -1;
    for (const it of items) {
      const b = Math.floor((it[0] - 1) / this.block);
      if (b !== blockOf) { segments.push({ worker: this.owner(it[0]), items: [] }); blockOf = b; }
      segments[segments.length - 1]!.items.push(it);
    }
    const window = this.window;
    const answers: (Promise<ClientJobDone> | undefined)[] = [];
    let next = 0;
    for (let i = 0; i < segments.length; i++) {
      for (; next < segments.length && next < i + window; next++) {
        const s = segments[next]!;
        const p = 'start' in w
          ? this.send(s.worker, { start: s.items.map(([id]) => id) }, [])
          : this.send(s.worker, { deliver: s.items.map(([id]) => [id, 0] as const) }, s.items.map(([, b]) => b!));
        p.catch(() => {}); // observed below, in order
        answers[next] = p;
      }
      const d = await answers[i]!;
      answers[i] = undefined;
      if (d.error) {
        const { message, code, stack } = d.error;
        const e = code !== undefined ? new ValidationError(code as TallyError['code'], message) : new Error(message);
        if (stack !== undefined) e.stack = stack;
        throw e;
      }
      for (const [id, round, bytes] of d.out) onMessage({ id, round, bytes });
      onSegment(d.seconds, segments[i]!.items.length);
    }
  }

  /** Stops every worker. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
