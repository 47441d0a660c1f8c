/**
 * Worker side of the mask-expansion pool (_maskPool.ts): for each job, claims
 * windows until none is left, expands every term over the window into a
 * window-sized accumulator with the native provider (node:crypto, the same
 * AES-128-CTR keystream as the caller's native provider), and publishes the
 * window in the job's shared output buffer. Posts one message, 'ready', once
 * loaded; all coordination of jobs is through the job's shared control words
 * (the caller is blocked in Atomics.wait and could not read a message).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { primeAllocator } from './_heap.js';
import { MaskAccumulator, type MaskTerm } from './mask.js';
import { nativeProvider } from './native.js';
import { CLAIMED, DONE, FAILED, FREE, type MaskJobMessage } from './_maskPool.js';

let acc: MaskAccumulator | null = null;

function runJob(job: MaskJobMessage): void {
  const ctrl = new Int32Array(job.ctrl);
  const keyBytes = new Uint8Array(job.keys);
  const signs = new Int8Array(job.signs);
  const out = new Int32Array(job.out);
  for (let k = Atomics.add(ctrl, 0, 1); k < job.windows; k = Atomics.add(ctrl, 0, 1)) {
    // The caller may have taken the window over between our claim and this mark.
    if (Atomics.compareExchange(ctrl, 1 + k, FREE, CLAIMED) !== FREE) continue;
    Atomics.notify(ctrl, 1 + k); // the caller may be waiting on FREE: it now waits on CLAIMED
    const lo = job.bounds[k]!;
    const n = job.bounds[k + 1]! - lo;
    const keys: Uint8Array[] = [];
    let state = FAILED;
    try {
      // Sized for the job's largest window (the first), reused while large enough.
      if (acc === null || acc.dim < job.bounds[1]! || acc.chunkBytes !== job.chunkBytes) {
        acc = new MaskAccumulator(job.bounds[1]!, nativeProvider, { chunkBytes: job.chunkBytes });
      } else {
        acc.clear();
      }
      const terms: MaskTerm[] = [];
      for (let t = 0; t < signs.length; t++) {
        const key = keyBytes.slice(16 * t, 16 * t + 16); // a private copy, wiped below
        keys.push(key);
        terms.push({ key, sign: signs[t] === 1 ? 1 : -1 });
      }
      acc.addMaskRange(terms, lo, 0, n);
      out.set(acc.words(n), lo);
      state = DONE;
    } catch {
      state = FAILED; // the caller redoes the window
    } finally {
      for (const key of keys) key.fill(0);
    }
    if (Atomics.compareExchange(ctrl, 1 + k, CLAIMED, state) === CLAIMED) Atomics.notify(ctrl, 1 + k);
  }
  acc?.clear(); // leave no mask sums behind between jobs
}

if ((workerData as { primeAllocator?: boolean } | null)?.primeAllocator === true) primeAllocator();
parentPort?.on('message', (job: MaskJobMessage) => runJob(job));
parentPort?.postMessage('ready'); // the pool counts loaded workers (tests, diagnostics)
