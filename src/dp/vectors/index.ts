/**
 * dp-v1 test vectors for the client-side DP pipeline: generation and checking
 * (`tally vectors generate|check --suite dp-v1`). The files live in
 * protocols/dp-v1/vectors, their JSON Schemas in protocols/dp-v1/schemas; the
 * algorithms they pin down are described in protocols/dp-v1/README.md.
 */
export { generateDpVectors, generateDpVectorFiles, generateDpKind } from './generate.js';
export { checkDpVectors, type DpCheckResult, type DpCheckOptions } from './check.js';
export { defaultDpSchemaDir, defaultDpVectorDir } from './paths.js';
export { DP_KINDS, dpKindByName } from './registry.js';
export type { DpVectorKind } from './kind.js';
export {
  CountingSource, formatJson, VectorMismatch, SEED_PREFIX, VERSION, GENERATOR, seedOf, type TestCase, type VectorFile,
} from './_common.js';
