/**
 * `tally vectors check`: validates each vector file against its JSON Schema,
 * then recomputes every test case with the library, once with each crypto
 * provider (native and portable), and reports every difference.
 */
import { nativeProvider } from '../../crypto/native.js';
import { portableProvider } from '../../crypto/portable.js';
import type { CryptoProvider } from '../../crypto/types.js';
import { checkSuite, failureOf, type CheckResult } from '../../vectors/check.js';
import { VERSION } from './_common.js';
import { defaultSchemaDir } from './paths.js';
import { KINDS } from './registry.js';

export type { CheckResult } from '../../vectors/check.js';

export interface CheckOptions {
  /** Where `<kind>.schema.json` and `common.schema.json` live (default protocols/secagg-v1/schemas). */
  readonly schemaDir?: string;
  /** Providers each case is recomputed with (default native and portable). */
  readonly providers?: readonly CryptoProvider[];
  /** Check only these kinds (default: every kind; other files in `dir` are then ignored). */
  readonly kinds?: readonly string[];
}

/**
 * Checks every secagg-v1 vector file in `dir`, recomputing each case once
 * with each crypto provider.
 */
export function checkVectors(dir: string, options: CheckOptions = {}): CheckResult[] {
  const providers = options.providers ?? [nativeProvider, portableProvider];
  return checkSuite(dir, {
    version: VERSION, kinds: KINDS, schemaDir: options.schemaDir ?? defaultSchemaDir(),
    ...(options.kinds === undefined ? {} : { only: options.kinds }),
    runCase: (k, tc) => providers.flatMap((p) => {
      try { k.check(tc, p); return []; } catch (err) { return [`[${p.name}] ${failureOf(err)}`]; }
    }),
  });
}
