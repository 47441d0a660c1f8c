/**
 * The checking loop shared by the vector suites: every `<kind>.json` file in
 * a folder is validated against its JSON Schema and envelope, then each test
 * case is recomputed by the suite's `runCase`, and every difference is
 * reported. A missing file, an unknown `*.json` file, invalid JSON, a schema
 * violation or a wrong envelope is a file-level failure (tcId 0).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { GENERATOR, type TestCase, type VectorFileOf } from './common.js';

/** The verdict on one test case (tcId ≥ 1) or on a whole file (tcId 0). */
export interface CheckResult {
  readonly kind: string;
  readonly tcId: number;
  readonly ok: boolean;
  readonly message: string;
}

export interface SuiteCheck<K extends { readonly kind: string }> {
  /** The suite's version string, e.g. 'secagg-v1'. */
  readonly version: string;
  readonly kinds: readonly K[];
  /** Where `<kind>.schema.json` and `common.schema.json` live. */
  readonly schemaDir: string;
  /** Check only these kinds (default: every kind; other files in the folder are then ignored). */
  readonly only?: readonly string[];
  /** Recomputes one case; returns failure messages (empty when it matches), or undefined to skip recomputing. */
  readonly runCase: ((kind: K, tc: TestCase) => string[]) | undefined;
}

/** Formats a thrown value as a one-line failure message. */
export function failureOf(err: unknown): string {
  return err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : String(err);
}

function loadValidator(schemaDir: string) {
  const Ajv = Ajv2020 as unknown as typeof Ajv2020.default;
  const ajv = new Ajv({ strict: true, strictRequired: false, allErrors: false });
  ajv.addSchema(JSON.parse(readFileSync(join(schemaDir, 'common.schema.json'), 'utf8')) as object);
  return (kind: string) => ajv.compile(JSON.parse(readFileSync(join(schemaDir, `${kind}.schema.json`), 'utf8')) as object);
}

const fileFail = (kind: string, message: string): CheckResult => ({ kind, tcId: 0, ok: false, message });

/** Checks every vector file of one suite in `dir` (see the module comment). */
export function checkSuite<K extends { readonly kind: string }>(dir: string, s: SuiteCheck<K>): CheckResult[] {
  const validatorFor = loadValidator(s.schemaDir);
  const results: CheckResult[] = [];
  const known = new Set(s.kinds.map((k) => `${k.kind}.json`));
  if (!existsSync(dir)) return [fileFail('*', `vector directory ${dir} does not exist`)];
  if (s.only === undefined) {
    for (const name of readdirSync(dir).filter((f) => f.endsWith('.json') && !known.has(f)).sort()) {
      results.push(fileFail(name.slice(0, -5), `${name} is not a known vector kind`));
    }
  }
  for (const k of s.kinds.filter((x) => s.only === undefined || s.only.includes(x.kind))) {
    const path = join(dir, `${k.kind}.json`);
    if (!existsSync(path)) { results.push(fileFail(k.kind, `${path} is missing`)); continue; }
    let file: VectorFileOf<string>;
    try {
      file = JSON.parse(readFileSync(path, 'utf8')) as VectorFileOf<string>;
    } catch (err) {
      results.push(fileFail(k.kind, `${path} is not valid JSON: ${(err as Error).message}`));
      continue;
    }
    const validate = validatorFor(k.kind);
    if (!validate(file)) {
      const e = validate.errors?.[0];
      results.push(fileFail(k.kind, `schema violation at ${e?.instancePath || '/'}: ${e?.message ?? 'invalid'}`));
      continue;
    }
    if (file.kind !== k.kind || file.version !== s.version || file.generator !== GENERATOR) {
      results.push(fileFail(k.kind, `envelope must name kind '${k.kind}', version '${s.version}', generator '${GENERATOR}'`));
      continue;
    }
    if (s.runCase === undefined) continue;
    const ids = new Set<number>();
    for (const tc of file.tests) {
      if (ids.has(tc.tcId)) { results.push({ kind: k.kind, tcId: tc.tcId, ok: false, message: `duplicate tcId ${tc.tcId}` }); continue; }
      ids.add(tc.tcId);
      const failures = s.runCase(k, tc);
      results.push({ kind: k.kind, tcId: tc.tcId, ok: failures.length === 0, message: failures.length === 0 ? 'ok' : failures.join('; ') });
    }
  }
  return results;
}
