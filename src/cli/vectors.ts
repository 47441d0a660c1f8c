/**
 * `tally vectors`: generate or check the secagg-v1 test vectors.
 * Exit status: 0 success, 1 a mismatch (or a file that fails its schema),
 * 2 bad usage.
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { checkVectors, defaultVectorDir, generateVectors, KINDS } from '../secagg/vectors/index.js';

const HELP = `usage: tally vectors generate [DIR]
       tally vectors check [--kind KIND]... [DIR]

generate  writes one <kind>.json per vector kind into DIR, from seeded
          deterministic randomness (the output is reproducible byte for byte)
check     validates every file in DIR against its JSON Schema, then recomputes
          every test case with the native and the portable crypto providers;
          prints one line per failure and a summary; exit 1 on any mismatch

DIR defaults to protocols/secagg-v1/vectors of the tally package.

  --kind KIND   check only this kind (repeatable); kinds: ${KINDS.map((k) => k.kind).join(', ')}
  -h, --help    show this help
`;

function usageError(message: string): number {
  console.error(`tally vectors: ${message}\n\n${HELP}`);
  return 2;
}

/** Runs `tally vectors …`; returns the exit status. */
export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { help: { type: 'boolean', short: 'h' }, kind: { type: 'string', multiple: true } } });
  } catch (err) {
    return usageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) { console.log(HELP); return 0; }
  const [command, dirArg, ...extra] = positionals;
  if (command === undefined) return usageError('missing command (generate or check)');
  if (extra.length > 0) return usageError(`unexpected argument '${extra[0]}'`);
  const dir = dirArg === undefined ? defaultVectorDir() : resolve(dirArg);
  const kinds = values.kind ?? [];
  for (const k of kinds) if (!KINDS.some((x) => x.kind === k)) return usageError(`unknown kind '${k}'`);

  if (command === 'generate') {
    if (kinds.length > 0) return usageError('--kind applies to check only');
    const paths = generateVectors(dir);
    console.log(`wrote ${paths.length} vector files to ${dir}`);
    return 0;
  }
  if (command !== 'check') return usageError(`unknown command '${command}'`);
  const results = checkVectors(dir, kinds.length > 0 ? { kinds } : {});
  const failed = results.filter((r) => !r.ok);
  for (const r of failed) console.log(`FAIL ${r.kind}${r.tcId > 0 ? ` tcId ${r.tcId}` : ''}: ${r.message}`);
  const cases = results.filter((r) => r.tcId > 0).length;
  console.log(`${failed.length === 0 ? 'ok' : 'FAILED'}: ${cases} test cases in ${new Set(results.map((r) => r.kind)).size} kinds checked with the native and portable providers, ${failed.length} failure(s) (${dir})`);
  return failed.length === 0 ? 0 : 1;
}
