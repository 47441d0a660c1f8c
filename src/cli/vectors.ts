/**
 * `tally vectors`: generate or check the protocol test vectors of the
 * secagg-v1, dp-v1, wire-v1, transcript-v1 and he-sum-v1 suites.
 * Exit status: 0 success, 1 a mismatch (or a file that fails its schema),
 * 2 bad usage.
 */
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { usageError } from './_args.js';
import { packageRoot } from '../vectors/common.js';
import { checkVectors, defaultVectorDir, generateVectors, KINDS } from '../secagg/vectors/index.js';
import { checkDpVectors, defaultDpVectorDir, DP_KINDS, generateDpVectors } from '../dp/vectors/index.js';
import { checkWireVectors, defaultWireVectorDir, generateWireVectors, WIRE_KINDS } from '../transport/vectors/index.js';
import { checkTranscriptVectors, defaultTranscriptVectorDir, generateTranscriptVectors, TRANSCRIPT_KINDS } from '../audit/vectors.js';

type CheckResult = { kind: string; tcId: number; ok: boolean; message: string };

/** One vector suite: its kinds, default folder, generator and checker. */
interface Suite {
  readonly name: 'secagg-v1' | 'dp-v1' | 'wire-v1' | 'transcript-v1' | 'he-sum-v1';
  readonly kinds: readonly string[];
  readonly defaultDir: () => string;
  readonly generate: (dir: string) => string[] | Promise<string[]>;
  readonly check: (dir: string, kinds?: readonly string[]) => CheckResult[] | Promise<CheckResult[]>;
  /** How the summary line says the cases were recomputed. */
  readonly how: string;
}

const SUITES: readonly Suite[] = [
  {
    name: 'secagg-v1', kinds: KINDS.map((k) => k.kind), defaultDir: defaultVectorDir, generate: (dir) => generateVectors(dir),
    check: (dir, kinds) => checkVectors(dir, kinds === undefined ? {} : { kinds }), how: 'checked with the native and portable providers',
  },
  {
    name: 'dp-v1', kinds: DP_KINDS.map((k) => k.kind), defaultDir: defaultDpVectorDir, generate: (dir) => generateDpVectors(dir),
    check: (dir, kinds) => checkDpVectors(dir, kinds === undefined ? {} : { kinds }), how: 'recomputed with the dp samplers and encoder',
  },
  {
    name: 'wire-v1', kinds: WIRE_KINDS.map((k) => k.kind), defaultDir: defaultWireVectorDir, generate: (dir) => generateWireVectors(dir),
    check: (dir, kinds) => checkWireVectors(dir, kinds === undefined ? {} : { kinds }), how: 'recomputed with the envelope codec',
  },
  {
    name: 'transcript-v1', kinds: TRANSCRIPT_KINDS.map((k) => k.kind), defaultDir: defaultTranscriptVectorDir, generate: (dir) => generateTranscriptVectors(dir),
    check: (dir, kinds) => checkTranscriptVectors(dir, kinds === undefined ? {} : { kinds }), how: 'recomputed with the audit transcript, Merkle tree and bundle verifier',
  },
  {
    // src/he (and node-seal) load only when this suite runs.
    name: 'he-sum-v1', kinds: ['he-sum-v1'], defaultDir: () => join(packageRoot(), 'protocols', 'he-sum-v1', 'vectors'),
    generate: async (dir) => {
      const { generateHeVectors } = await import('../he/vectors.js');
      const file = join(dir, 'he-sum-v1.json');
      mkdirSync(dir, { recursive: true });
      writeFileSync(file, `${JSON.stringify(await generateHeVectors(), null, 2)}\n`);
      return [file];
    },
    check: async (dir) => {
      const { checkHeVectors } = await import('../he/vectors.js');
      const file = join(dir, 'he-sum-v1.json');
      let doc: Record<string, unknown>;
      try {
        doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      } catch (err) {
        return [{ kind: 'he-sum-v1', tcId: 0, ok: false, message: `cannot read ${file}: ${(err as Error).message}` }];
      }
      const groups = ['maskModT', 'envelopeHeader', 'configCommitment', 'keyWrap', 'decrypt'];
      const cases = groups.flatMap((g) => (Array.isArray(doc[g]) ? (doc[g] as unknown[]).map((_, i) => `${g}[${i}]`) : [g]));
      const bad = await checkHeVectors(doc);
      return cases.map((c, i) => {
        const failed = bad.filter((b) => b === c || b.startsWith(`${c}.`) || b.startsWith(`${c}[`));
        return { kind: 'he-sum-v1', tcId: i + 1, ok: failed.length === 0, message: failed.length === 0 ? '' : `${failed.join(', ')} do not match` };
      });
    },
    how: 'recomputed with the HE encoder, key wrap and SEAL decryption',
  },
];

const HELP = `usage: tally vectors generate [--suite SUITE] [DIR]
       tally vectors check [--suite SUITE] [--kind KIND]... [DIR]

generate  writes one <kind>.json per vector kind into DIR, from seeded
          deterministic randomness (the output is reproducible byte for byte)
check     validates every file in DIR against its JSON Schema, then recomputes
          every test case with the library (secagg-v1: with the native and the
          portable crypto providers); prints one line per failure and a
          summary per suite; exit 1 on any mismatch

Without DIR each selected suite uses its folder in the tally package:
protocols/secagg-v1/vectors, protocols/dp-v1/vectors,
protocols/wire-v1/vectors, protocols/transcript-v1/vectors and
protocols/he-sum-v1/vectors. With DIR and no --suite, the suite is the
"version" of the vector files already in DIR (secagg-v1 when DIR holds
none).

  --suite SUITE  secagg-v1, dp-v1, wire-v1, transcript-v1, he-sum-v1 or all
                 (default all; he-sum-v1 needs node-seal, and its generated
                 ciphertexts are fresh each time, the rest byte for byte)
  --kind KIND    check only this kind (repeatable); kinds:
                   secagg-v1: ${KINDS.map((k) => k.kind).join(', ')}
                   dp-v1: ${DP_KINDS.map((k) => k.kind).join(', ')}
                   wire-v1: ${WIRE_KINDS.map((k) => k.kind).join(', ')}
                   transcript-v1: ${TRANSCRIPT_KINDS.map((k) => k.kind).join(', ')}
  -h, --help     show this help
`;

/** Why `dir` cannot be read as a vector folder, or undefined when it can. */
function unreadableDir(dir: string): string | undefined {
  if (!existsSync(dir)) return `${dir} does not exist`;
  if (!statSync(dir).isDirectory()) return `${dir} is a file; name the folder that holds the vector files`;
  return undefined;
}

/** Why vector files cannot be written into `dir` (created with its parents when missing), or undefined when they can. */
function unwritableDir(dir: string): string | undefined {
  let d = dir;
  while (!existsSync(d)) {
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  if (!statSync(d).isDirectory()) return d === dir ? `${dir} is a file; name a folder for the vector files` : `${d} is a file, so ${dir} cannot be created`;
  try {
    accessSync(d, constants.W_OK);
  } catch {
    return `${d} is not writable`;
  }
  return undefined;
}

/** The suites named by the "version" fields of the *.json files in `dir` (unreadable files are skipped). */
function suitesIn(dir: string): Set<string> {
  const found = new Set<string>();
  if (!existsSync(dir)) return found;
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    try {
      const v = (JSON.parse(readFileSync(join(dir, name), 'utf8')) as { version?: unknown }).version;
      if (typeof v === 'string' && SUITES.some((s) => s.name === v)) found.add(v);
    } catch {
      // A file that is not JSON is reported by the checker of the suite.
    }
  }
  return found;
}

/** Runs `tally vectors …`; returns the exit status. */
export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true,
      options: { help: { type: 'boolean', short: 'h' }, kind: { type: 'string', multiple: true }, suite: { type: 'string' } },
    });
  } catch (err) {
    return usageError('vectors', (err as Error).message.split('. To specify')[0]!);
  }
  const { values, positionals } = parsed;
  if (values.help) { console.log(HELP); return 0; }
  const [command, dirArg, ...extra] = positionals;
  if (command === undefined) return usageError('vectors', 'missing command (generate or check)');
  if (extra.length > 0) return usageError('vectors', `unexpected argument '${extra[0]}'`);
  const suiteArg = values.suite ?? 'all';
  if (suiteArg !== 'all' && !SUITES.some((s) => s.name === suiteArg)) return usageError('vectors', `--suite: unknown suite '${suiteArg}' (secagg-v1, dp-v1, wire-v1, transcript-v1, he-sum-v1 or all)`);

  let selected = SUITES.filter((s) => suiteArg === 'all' || s.name === suiteArg);
  const dir = dirArg === undefined ? undefined : resolve(dirArg);
  if (command !== 'generate' && command !== 'check') return usageError('vectors', `unknown command '${command}' (generate or check)`);
  if (dir !== undefined) {
    const why = command === 'generate' ? unwritableDir(dir) : unreadableDir(dir);
    if (why !== undefined) return usageError('vectors', `DIR: ${why}`);
  }
  if (dir !== undefined && suiteArg === 'all') {
    const found = suitesIn(dir);
    if (found.size > 1) return usageError('vectors', `${dir} holds vectors of several suites (${[...found].sort().join(', ')}); name one with --suite`);
    selected = SUITES.filter((s) => s.name === (found.size === 1 ? [...found][0] : 'secagg-v1'));
  }
  const kinds = values.kind ?? [];
  for (const k of kinds) if (!selected.some((s) => s.kinds.includes(k))) return usageError('vectors', `--kind: unknown kind '${k}' in ${selected.map((s) => s.name).join(' and ')}`);

  if (command === 'generate') {
    if (kinds.length > 0) return usageError('vectors', '--kind applies to check only');
    for (const s of selected) {
      const to = dir ?? s.defaultDir();
      const paths = await s.generate(to);
      console.log(`wrote ${paths.length} ${s.name} vector files to ${to}`);
    }
    return 0;
  }
  let failures = 0;
  for (const s of selected) {
    const mine = kinds.filter((k) => s.kinds.includes(k));
    if (kinds.length > 0 && mine.length === 0) continue;
    const to = dir ?? s.defaultDir();
    const results = await s.check(to, mine.length > 0 ? mine : undefined);
    const failed = results.filter((r) => !r.ok);
    for (const r of failed) console.log(`FAIL ${r.kind}${r.tcId > 0 ? ` tcId ${r.tcId}` : ''}: ${r.message}`);
    const cases = results.filter((r) => r.tcId > 0).length;
    console.log(`${failed.length === 0 ? 'ok' : 'FAILED'}: ${cases} test cases in ${new Set(results.map((r) => r.kind)).size} kinds ${s.how}, ${failed.length} failure(s) (${s.name}: ${to})`);
    failures += failed.length;
  }
  return failures === 0 ? 0 : 1;
}
