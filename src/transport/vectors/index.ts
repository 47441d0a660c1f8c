/**
 * wire-v1 test vectors: generation and checking (`tally vectors
 * generate|check --suite wire-v1`). The files live in
 * protocols/wire-v1/vectors, their JSON Schemas in protocols/wire-v1/schemas;
 * what they fix is described in protocols/wire-v1/spec.md §8. The file
 * envelope and the JSON layout are those of the other suites, so the output
 * is reproducible byte for byte.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkSuite, failureOf, type CheckResult } from '../../vectors/check.js';
import { formatJson, GENERATOR, protocolDir, type TestCase, type VectorFileOf } from '../../vectors/common.js';
import { envelopeKind } from './kinds-envelope.js';

/** Protocol version written in every wire-v1 vector file. */
export const VERSION = 'wire-v1';

/** One wire-v1 vector kind: its cases, and a checker that throws on any difference. */
export interface WireVectorKind {
  /** File stem: `vectors/<kind>.json`, `schemas/<kind>.schema.json`. */
  readonly kind: string;
  readonly description: string;
  generate(): TestCase[];
  check(tc: TestCase): void;
}

/** Every wire-v1 vector kind, in the order they are generated and checked. */
export const WIRE_KINDS: readonly WireVectorKind[] = [envelopeKind];

/** protocols/wire-v1/vectors */
export function defaultWireVectorDir(): string { return protocolDir(VERSION, 'vectors'); }
/** protocols/wire-v1/schemas */
export function defaultWireSchemaDir(): string { return protocolDir(VERSION, 'schemas'); }

/** The text of every wire-v1 vector file, by file name (`<kind>.json`). */
export function generateWireVectorFiles(): Map<string, string> {
  return new Map(WIRE_KINDS.map((k) => {
    const file: VectorFileOf<typeof VERSION> = { kind: k.kind, version: VERSION, generator: GENERATOR, description: k.description, tests: k.generate() };
    return [`${k.kind}.json`, formatJson(file) + '\n'];
  }));
}

/**
 * Generates every wire-v1 vector file into `dir` (created if needed).
 * @returns the paths written
 */
export function generateWireVectors(dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  return [...generateWireVectorFiles()].map(([name, text]) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  });
}

export interface WireCheckOptions {
  /** Where `<kind>.schema.json` and `common.schema.json` live (default protocols/wire-v1/schemas). */
  readonly schemaDir?: string;
  /** Check only these kinds (default: every kind; other files in `dir` are then ignored). */
  readonly kinds?: readonly string[];
}

/** Checks every wire-v1 vector file in `dir` against its schema, recomputing each case with the envelope codec. */
export function checkWireVectors(dir: string, options: WireCheckOptions = {}): CheckResult[] {
  return checkSuite(dir, {
    version: VERSION, kinds: WIRE_KINDS, schemaDir: options.schemaDir ?? defaultWireSchemaDir(),
    ...(options.kinds === undefined ? {} : { only: options.kinds }),
    runCase: (k, tc) => {
      try { k.check(tc); return []; } catch (err) { return [failureOf(err)]; }
    },
  });
}
