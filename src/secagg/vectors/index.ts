/**
 * secagg-v1 test vectors: generation (`tally vectors generate`) and checking
 * (`tally vectors check`). The files live in protocols/secagg-v1/vectors,
 * their JSON Schemas in protocols/secagg-v1/schemas; see the README there.
 */
export { generateVectors, generateVectorFiles, generateKind } from './generate.js';
export { checkVectors, type CheckResult, type CheckOptions } from './check.js';
export { defaultSchemaDir, defaultVectorDir, packageRoot } from './paths.js';
export { KINDS, kindByName } from './registry.js';
export type { VectorKind } from './kind.js';
export {
  formatJson, RecordingRng, ReplayRng, VectorMismatch, SEED_PREFIX, seedOf, type TestCase, type VectorFile,
} from './_common.js';
