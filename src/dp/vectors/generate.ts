/**
 * dp-v1 vector generation (`tally vectors generate --suite dp-v1`): one
 * `<kind>.json` per kind. Every random byte comes from a DeterministicRng whose
 * seed string is recorded in the case, and the JSON layout is fixed, so the
 * output is reproducible byte for byte.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatJson, GENERATOR, VERSION, type VectorFile } from './_common.js';
import type { DpVectorKind } from './kind.js';
import { DP_KINDS } from './registry.js';

/** The file of one kind, as a value. */
export function generateDpKind(k: DpVectorKind): VectorFile {
  return { kind: k.kind, version: VERSION, generator: GENERATOR, description: k.description, tests: k.generate() };
}

/** The text of every dp-v1 vector file, by file name (`<kind>.json`). */
export function generateDpVectorFiles(): Map<string, string> {
  return new Map(DP_KINDS.map((k) => [`${k.kind}.json`, formatJson(generateDpKind(k)) + '\n']));
}

/**
 * Generates every dp-v1 vector file into `dir` (created if needed).
 * @returns the paths written
 */
export function generateDpVectors(dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  return [...generateDpVectorFiles()].map(([name, text]) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  });
}
