/**
 * `tally vectors generate`: writes one `<kind>.json` per vector kind. Every
 * random byte comes from a DeterministicRng whose seed string is recorded in
 * the file or follows `tally/vectors/secagg-v1/<kind>/<tcId>/<label>`, and the
 * JSON layout is fixed, so the output is reproducible byte for byte.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nativeProvider } from '../../crypto/native.js';
import type { CryptoProvider } from '../../crypto/types.js';
import { formatJson, GENERATOR, VERSION, type VectorFile } from './_common.js';
import type { VectorKind } from './kind.js';
import { KINDS } from './registry.js';

/** The file of one kind, as a value. */
export function generateKind(k: VectorKind, provider: CryptoProvider = nativeProvider): VectorFile {
  return { kind: k.kind, version: VERSION, generator: GENERATOR, description: k.description, tests: k.generate(provider) };
}

/** The text of every vector file, by file name (`<kind>.json`). */
export function generateVectorFiles(provider: CryptoProvider = nativeProvider): Map<string, string> {
  return new Map(KINDS.map((k) => [`${k.kind}.json`, formatJson(generateKind(k, provider)) + '\n']));
}

/**
 * Generates every vector file into `dir` (created if needed).
 * @returns the paths written
 */
export function generateVectors(dir: string, provider: CryptoProvider = nativeProvider): string[] {
  mkdirSync(dir, { recursive: true });
  return [...generateVectorFiles(provider)].map(([name, text]) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  });
}
