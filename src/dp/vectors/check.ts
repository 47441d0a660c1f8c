/**
 * dp-v1 vector checking (`tally vectors check`): validates each vector file
 * against its JSON Schema, then recomputes every test case with the library
 * and reports every difference.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { GENERATOR, VERSION, type VectorFile } from './_common.js';
import { defaultDpSchemaDir } from './paths.js';
import { DP_KINDS } from './registry.js';

/** The verdict on one test case (tcId ≥ 1) or on a whole file (tcId 0). */
export interface DpCheckResult {
  readonly kind: string;
  readonly tcId: number;
  readonly ok: boolean;
  readonly message: string;
}

export interface DpCheckOptions {
  /** Where `<kind>.schema.json` and `common.schema.json` live (default protocols/dp-v1/schemas). */
  readonly schemaDir?: string;
  /** Check only these kinds (default: every kind; other files in `dir` are then ignored). */
  readonly kinds?: readonly string[];
  /** false: validate schemas and envelopes only, recompute nothing (default true). */
  readonly recompute?: boolean;
}

function loadValidator(schemaDir: string) {
  const Ajv = Ajv2020 as unknown as typeof Ajv2020.default;
  const ajv = new Ajv({ strict: true, strictRequired: false, allErrors: false });
  ajv.addSchema(JSON.parse(readFileSync(join(schemaDir, 'common.schema.json'), 'utf8')) as object);
  return (kind: string) => ajv.compile(JSON.parse(readFileSync(join(schemaDir, `${kind}.schema.json`), 'utf8')) as object);
}

const fileFail = (kind: string, message: string): DpCheckResult => ({ kind, tcId: 0, ok: false, message });

/**
 * Checks every dp-v1 vector file in `dir`. A missing file, an unknown `*.json`
 * file, a schema violation or a wrong envelope is a file-level failure
 * (tcId 0); otherwise there is one result per test case.
 */
export function checkDpVectors(dir: string, options: DpCheckOptions = {}): DpCheckResult[] {
  const validatorFor = loadValidator(options.schemaDir ?? defaultDpSchemaDir());
  const results: DpCheckResult[] = [];
  const known = new Set(DP_KINDS.map((k) => `${k.kind}.json`));
  if (!existsSync(dir)) return [fileFail('*', `vector directory ${dir} does not exist`)];
  if (options.kinds === undefined) {
    for (const name of readdirSync(dir).filter((f) => f.endsWith('.json') && !known.has(f)).sort()) {
      results.push(fileFail(name.slice(0, -5), `${name} is not a known vector kind`));
    }
  }
  for (const k of DP_KINDS.filter((x) => options.kinds === undefined || options.kinds.includes(x.kind))) {
    const path = join(dir, `${k.kind}.json`);
    if (!existsSync(path)) { results.push(fileFail(k.kind, `${path} is missing`)); continue; }
    let file: VectorFile;
    try {
      file = JSON.parse(readFileSync(path, 'utf8')) as VectorFile;
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
    if (file.kind !== k.kind || file.version !== VERSION || file.generator !== GENERATOR) {
      results.push(fileFail(k.kind, `envelope must name kind '${k.kind}', version '${VERSION}', generator '${GENERATOR}'`));
      continue;
    }
    if (options.recompute === false) continue;
    const ids = new Set<number>();
    for (const tc of file.tests) {
      if (ids.has(tc.tcId)) { results.push({ kind: k.kind, tcId: tc.tcId, ok: false, message: `duplicate tcId ${tc.tcId}` }); continue; }
      ids.add(tc.tcId);
      let message = 'ok';
      try {
        k.check(tc);
      } catch (err) {
        message = err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : String(err);
      }
      results.push({ kind: k.kind, tcId: tc.tcId, ok: message === 'ok', message });
    }
  }
  return results;
}
