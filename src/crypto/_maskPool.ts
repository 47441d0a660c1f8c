/**
 * A pool of worker threads that expand masks beside the calling thread, so
 * that {@link MaskAccumulator.addMasks} (mask.ts) keeps a synchronous API and
 * still uses every core.
 *
 * One call is one job. The padded vector is cut into windows of decreasing
 * size (guided scheduling: each is 1/(2·threads) of what remains, rounded up
 * to the accumulator's chunk), so that the threads finish within one small
 * window of each other while each thread keys few ciphers; each window is
 * claimed by exactly one thread through an atomic counter (work stealing, so
 * a slow or not yet started worker only means the others take more windows). A worker
 * expands every term over its window into a private window-sized accumulator
 * and copies it into a SharedArrayBuffer; the calling thread expands its own
 * windows straight into its accumulator, then blocks in Atomics.wait until
 * each worker window is done and adds it in. Mod 2^32 sums do not depend on
 * the order of additions, so the result is bit-identical to one thread.
 *
 * Window states (one int32 each in the job's control buffer; 0 is the claim counter):
 *   FREE → CLAIMED → DONE | FAILED    (a worker: compare-exchange at each step)
 *   FREE → MAIN                        (the calling thread's own windows)
 *   FREE | CLAIMED | FAILED → TAKEN    (the calling thread takes the window over)
 * A worker publishes its window only by the CLAIMED → DONE exchange, so after a
 * take-over its late result is never read; the pool is then retired and its
 * output buffer dropped, so a late write lands in memory nobody reads.
 *
 * Keys travel in a per-job SharedArrayBuffer (never in a structured-clone
 * message, whose copies could not be wiped); workers copy each key for the
 * time of one window and wipe the copy, and the caller wipes the buffer once
 * every window is in. Workers are created lazily, reused across calls and
 * sessions, and unref'd so they never keep the process alive.
 *
 * Memory: each worker is a V8 isolate (about 10 MiB resident) holding one
 * accumulator the size of a job's largest window (a quarter of the vector or
 * less); the pool keeps one shared output buffer of 4 bytes per word of the
 * largest vector it has served, for reuse.
 *
 * Node-only: worker_threads and os are reached through process.getBuiltinModule,
 * so on other runtimes {@link maskPool} returns null and masks are expanded on
 * the calling thread.
 */
import { ValidationError } from '../errors.js';
import type { MaskTerm } from './mask.js';
import { allocatorPriming } from './_heapState.js';

type WorkerThreads = typeof import('node:worker_threads');
type Worker = InstanceType<WorkerThreads['Worker']>;
type Os = typeof import('node:os');

/** Threads for mask expansion: a count in [1, {@link MAX_MASK_THREADS}], or `'auto'` (one per core). */
export type MaskThreads = number | 'auto';

/** Most threads one accumulator may be given. */
export const MAX_MASK_THREADS = 16;

/**
 * Most threads `'auto'` picks: each worker costs about 10 MiB of resident
 * memory (its V8 isolate), so a many-core server does not pay 15 isolates for
 * a job that eight cores already finish in an eighth of the time.
 */
export const AUTO_MASK_THREADS = 8;

/**
 * Least keystream (terms × padded words) worth handing to workers: 2^21 words
 * = 8 MiB, a few milliseconds of AES-128-CTR on one core, against a hand-off
 * of tens of microseconds (a message per worker, its wake-up) plus one copy
 * and one add pass over the workers' windows and a cipher keyed per window
 * and term. At the cutoff (bench: 2^16 words × 32 terms, or 2^18 × 8) the
 * busiest of two threads already does about half to three quarters of the
 * one-thread work; below it the fixed costs eat the gain. A vector shorter
 * than two chunks (2 × 16 384 words by default) is one window and stays on
 * the calling thread whatever the number of terms.
 */
export const PARALLEL_MIN_WORDS = 2 ** 21;

/**
 * How long the caller waits on a claimed window before doing it itself: 10 s
 * plus 1 ms per 100 000 keystream words of the window (a rate of 0.4 GB/s,
 * several times below one loaded core), so only a dead or hung worker hits it.
 */
const STALL_MS = 10_000;
const STALL_WORDS_PER_MS = 100_000;
/** After this many failures (a worker that failed to load, failed a window or stalled) the pool stays off for this thread. */
const MAX_FAILURES = 3;

export const FREE = 0, CLAIMED = 1, DONE = 2, FAILED = 3, MAIN = 4, TAKEN = 5;

/** The message a worker gets for one job (buffers are shared, not copied). */
export interface MaskJobMessage {
  readonly ctrl: SharedArrayBuffer; // Int32Array: [claim counter, state of window 0, 1, …]
  readonly keys: SharedArrayBuffer; // 16 bytes per term
  readonly signs: SharedArrayBuffer; // Int8Array, ±1 per term
  readonly out: SharedArrayBuffer; // Int32Array over the padded vector: worker windows land here
  readonly windows: number;
  /** Window k is words [bounds[k], bounds[k + 1]); window 0 is the largest. */
  readonly bounds: readonly number[];
  readonly padded: number;
  readonly chunkBytes: number;
}

/** One addMasks call as the pool sees it. */
export interface ParallelMaskJob {
  readonly terms: readonly MaskTerm[];
  /** Padded dimension in words (a multiple of 16). */
  readonly padded: number;
  readonly chunkBytes: number;
  /** Expands every term over words [lo, hi) straight into the caller's accumulator. */
  expand(lo: number, hi: number): void;
  /** Adds a worker's window src[lo, hi) into the caller's accumulator. */
  addWindow(src: Int32Array, lo: number, hi: number): void;
}

interface NodeApi { wt: WorkerThreads; os: Os }
let nodeApi: NodeApi | null | undefined;
function node(): NodeApi | null {
  if (nodeApi === undefined) {
    const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    try {
      const wt = proc?.getBuiltinModule?.('node:worker_threads') as WorkerThreads | undefined;
      const os = proc?.getBuiltinModule?.('node:os') as Os | undefined;
      nodeApi = wt?.Worker !== undefined && os !== undefined && typeof SharedArrayBuffer === 'function' ? { wt, os } : null;
    } catch {
      nodeApi = null;
    }
  }
  return nodeApi;
}

/**
 * Validates a thread count and resolves `'auto'` to the cores available
 * (at most {@link AUTO_MASK_THREADS}; 1 where worker_threads is missing).
 * @throws ValidationError `SECAGG_ERR_BAD_MASK`
 */
export function resolveThreads(threads: MaskThreads): number {
  if (threads === 'auto') {
    const api = node();
    return api === null ? 1 : Math.max(1, Math.min(AUTO_MASK_THREADS, api.os.availableParallelism()));
  }
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_MASK_THREADS) {
    throw new ValidationError('SECAGG_ERR_BAD_MASK', `"threads" expected an integer in [1, ${MAX_MASK_THREADS}] or 'auto', got ${String(threads)}`);
  }
  return threads;
}

/**
 * Window boundaries over [0, padded): guided sizes, each ⌈remaining / (2·threads)⌉
 * rounded up to a multiple of `chunkWords` (itself a multiple of 16), at least
 * one chunk; the last window takes what is left.
 */
export function windowBounds(padded: number, chunkWords: number, threads: number): number[] {
  const bounds = [0];
  for (let at = 0; at < padded;) {
    const want = Math.ceil((padded - at) / (2 * threads));
    at = Math.min(padded, at + Math.max(1, Math.ceil(want / chunkWords)) * chunkWords);
    bounds.push(at);
  }
  return bounds;
}

/** The worker pool of this thread (module state: one pool per JS realm). */
export class MaskPool {
  private readonly workers = new Set<Worker>();
  private out: Int32Array | null = null;
  private loaded = 0;

  constructor(private readonly api: NodeApi) {}

  /** Workers started and not retired or dead. */
  get size(): number {
    return this.workers.size;
  }

  /** Workers that have loaded their script (each posts one message when it has). */
  get ready(): number {
    return this.loaded;
  }

  /** Starts workers until there are `n` (they load in the background). */
  grow(n: number): void {
    while (this.workers.size < n) {
      // Unless the process is primed already (tally serve at start), the first worker primes glibc's allocator (_heap.ts) as it loads, off the caller's thread.
      const w = new this.api.wt.Worker(new URL('./_maskWorker.js', import.meta.url), { workerData: { primeAllocator: !allocatorPriming.requested } });
      allocatorPriming.requested = true;
      w.unref();
      // A worker that fails to load or dies is dropped; the windows it never
      // claimed are done by the others (its claimed one by take-over).
      let loaded = false;
      const drop = (): void => {
        if (this.workers.delete(w) && loaded) this.loaded--;
      };
      w.on('error', () => {
        if (!loaded) failures++; // e.g. the script cannot be found: do not respawn forever
        drop();
        void w.terminate();
      });
      w.on('exit', drop);
      w.once('message', () => { loaded = true; if (this.workers.has(w)) this.loaded++; });
      this.workers.add(w);
    }
  }

  /**
   * Runs one job on the calling thread and up to `threads` − 1 workers.
   * Returns how many windows the workers did, or −1 (having done nothing)
   * when the job does not split into two windows or there is no worker.
   */
  run(job: ParallelMaskJob, threads: number): number {
    this.grow(threads - 1);
    const helpers = [...this.workers].slice(0, threads - 1);
    const bounds = windowBounds(job.padded, job.chunkBytes >> 2, helpers.length + 1);
    const windows = bounds.length - 1;
    if (helpers.length === 0 || windows < 2) return -1;

    const T = job.terms.length;
    const ctrl = new Int32Array(new SharedArrayBuffer(4 * (1 + windows)));
    const keys = new Uint8Array(new SharedArrayBuffer(16 * T));
    const signs = new Int8Array(new SharedArrayBuffer(T));
    job.terms.forEach((t, i) => { keys.set(t.key, 16 * i); signs[i] = t.sign; });
    if (this.out === null || this.out.length < job.padded) this.out = new Int32Array(new SharedArrayBuffer(4 * job.padded));
    const out = this.out;
    const msg: MaskJobMessage = {
      ctrl: ctrl.buffer as SharedArrayBuffer, keys: keys.buffer as SharedArrayBuffer, signs: signs.buffer as SharedArrayBuffer,
      out: out.buffer as SharedArrayBuffer, windows, bounds, padded: job.padded, chunkBytes: job.chunkBytes,
    };
    for (const w of helpers) w.postMessage(msg);

    const range = (k: number): [number, number] => [bounds[k]!, bounds[k + 1]!];
    const stallMs = STALL_MS + (bounds[1]! * T) / STALL_WORDS_PER_MS;
    let retire = false, byWorkers = 0;
    try {
      // Our share: claim windows until none is left.
      for (let k = Atomics.add(ctrl, 0, 1); k < windows; k = Atomics.add(ctrl, 0, 1)) {
        Atomics.store(ctrl, 1 + k, MAIN);
        job.expand(...range(k));
      }
      // Collect the workers' windows, in order.
      for (let k = 0; k < windows; k++) {
        for (;;) {
          const st = Atomics.load(ctrl, 1 + k);
          if (st === MAIN) break;
          if (st === DONE) { job.addWindow(out, ...range(k)); byWorkers++; break; }
          // FREE (claimed, not yet marked) or CLAIMED: wait for news; FAILED: take over now.
          if (st !== FAILED && Atomics.wait(ctrl, 1 + k, st, stallMs) !== 'timed-out') continue;
          if (Atomics.compareExchange(ctrl, 1 + k, st, TAKEN) !== st) continue; // it moved on meanwhile
          job.expand(...range(k));
          retire = true;
          break;
        }
      }
    } catch (err) {
      retire = true; // workers may still write `out`: never reuse it
      throw err;
    } finally {
      keys.fill(0);
      if (retire) this.retire();
    }
    return byWorkers;
  }

  /** Terminates the workers and drops the output buffer (a late write from a stalled worker lands there). */
  retire(): void {
    for (const w of this.workers) void w.terminate();
    this.workers.clear();
    this.out = null;
    this.loaded = 0;
    failures++;
  }
}

let pool: MaskPool | null | undefined;
let failures = 0;

/**
 * The pool of this thread, created on first use; null where worker_threads is
 * unavailable or after repeated worker failures.
 */
export function maskPool(): MaskPool | null {
  if (pool === undefined) {
    const api = node();
    pool = api === null ? null : new MaskPool(api);
  }
  return failures >= MAX_FAILURES ? null : pool;
}

/**
 * Starts `threads` − 1 workers now, so that they have loaded by the time the
 * first large job arrives (the server calls it when a session's aggregator is
 * created). No-op for 1 thread or without worker_threads.
 */
export function warmMaskPool(threads: number): void {
  if (threads > 1) maskPool()?.grow(threads - 1);
}
