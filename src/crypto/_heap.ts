/**
 * Keeps glibc's malloc from handing memory back to the kernel after every
 * burst of keystream (Node on Linux/glibc only; elsewhere a harmless copy).
 *
 * Every node:crypto `update` returns a freshly allocated buffer: mask
 * expansion allocates and frees 64 KiB (twice, see native.ts) per chunk of
 * keystream, about 16,000 times per GiB. glibc trims the top of a heap as soon
 * as more than M_TRIM_THRESHOLD bytes there are free (128 KiB by default), so
 * when the garbage collector frees a batch of those buffers the heap shrinks
 * (`brk`, or `madvise` in a worker thread's arena) and the next allocations
 * fault the same pages in again: measured here, one thread's raw AES-128-CTR
 * keystream ran about 15% slower and two threads at once gained 1.2-1.4x over
 * one instead of 1.6x, the kernel's page handling being shared by both.
 *
 * glibc adjusts both thresholds on its own (mallopt(3), M_MMAP_THRESHOLD,
 * "dynamic mmap threshold"): when a block that was allocated with mmap (one
 * above the current mmap threshold, 128 KiB at first) is freed, the mmap
 * threshold becomes that block's size and the trim threshold twice that, for
 * every arena of the process, up to a block of 32 MiB. One freed block of
 * just under 32 MiB thus sets the trim threshold to about 64 MiB, what the
 * environment variables MALLOC_TRIM_THRESHOLD_ and MALLOC_MMAP_THRESHOLD_
 * would set, but from inside a process already running. Node cannot call
 * mallopt, so the block is one node:crypto makes and frees itself: for CTR
 * mode `update` allocates its output one byte longer than its input, then
 * copies it into an exact-size buffer and frees the first at once.
 *
 * Costs about 50 ms of one core once per process (32 MiB of keystream and a
 * copy); callers run it off the critical path (the first mask-pool worker
 * does, as it loads). Blocks between 32 and 64 MiB stay in the heap instead of
 * their own mapping afterwards, which is what a long-running aggregator wants.
 */
import { createCipheriv } from 'node:crypto';
import { allocatorPriming } from './_heapState.js';

/** Just under glibc's DEFAULT_MMAP_THRESHOLD_MAX (32 MiB on 64-bit), less the output's extra byte and chunk header. */
const PRIME_BYTES = 32 * 2 ** 20 - 2 * 4096;

/** Raises glibc's mmap and trim thresholds for the whole process (see the module comment); once, unless a worker was already asked to. */
export function primeAllocator(): void {
  if (allocatorPriming.requested) return;
  allocatorPriming.requested = true;
  const input = new Uint8Array(PRIME_BYTES); // never written: reading untouched pages maps the zero page
  createCipheriv('aes-128-ctr', new Uint8Array(16), new Uint8Array(16)).update(input);
}
