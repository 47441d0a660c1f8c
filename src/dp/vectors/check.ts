/**
 * dp-v1 vector checking (`tally vectors check`): validates each vector file
 * against its JSON Schema, then recomputes every test case with the library
 * and reports every difference.
 */
import { checkSuite, failureOf, type CheckResult } from '../../vectors/check.js';
import { VERSION } from './_common.js';
import { defaultDpSchemaDir } from './paths.js';
import { DP_KINDS } from './registry.js';

/** The verdict on one test case (tcId ≥ 1) or on a whole file (tcId 0). */
export type DpCheckResult = CheckResult;

export interface DpCheckOptions {
  /** Where `<kind>.schema.json` and `common.schema.json` live (default protocols/dp-v1/schemas). */
  readonly schemaDir?: string;
  /** Check only these kinds (default: every kind; other files in `dir` are then ignored). */
  readonly kinds?: readonly string[];
  /** false: validate schemas and envelopes only, recompute nothing (default true). */
  readonly recompute?: boolean;
}

/** Checks every dp-v1 vector file in `dir`, recomputing each case. */
export function checkDpVectors(dir: string, options: DpCheckOptions = {}): DpCheckResult[] {
  return checkSuite(dir, {
    version: VERSION, kinds: DP_KINDS, schemaDir: options.schemaDir ?? defaultDpSchemaDir(),
    ...(options.kinds === undefined ? {} : { only: options.kinds }),
    runCase: options.recompute === false ? undefined : (k, tc) => {
      try { k.check(tc); return []; } catch (err) { return [failureOf(err)]; }
    },
  });
}
