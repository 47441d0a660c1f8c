/**
 * Whether glibc's allocator has been primed in this process (_heap.ts), by
 * this realm or by a mask-pool worker it asked to: one flag for both, so a
 * process primes once. Kept apart from _heap.ts, which imports node:crypto,
 * so that the portable mask pool (_maskPool.ts) can read and set it.
 */
export const allocatorPriming = { requested: false };
