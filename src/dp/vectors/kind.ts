/** The interface every dp-v1 vector kind implements. */
import type { TestCase } from './_common.js';

/**
 * One kind of vector: a generator (run by `tally vectors generate`) and a
 * checker that recomputes one test case with the library and throws
 * `VectorMismatch` (or any error) when it disagrees.
 */
export interface DpVectorKind {
  /** File stem: `vectors/<kind>.json`, `schemas/<kind>.schema.json`. */
  readonly kind: string;
  /** One paragraph written into the file's `description`. */
  readonly description: string;
  /** The test cases, randomness drawn only from seeded DeterministicRngs. */
  generate(): TestCase[];
  /** Recomputes `tc`; throws on any difference. */
  check(tc: TestCase): void;
}
