/**
 * `tally keygen --out FILE`: writes a new Ed25519 site identity (mode 0600,
 * never over an existing file) and prints its public key, in hex, on stdout:
 * the value of the site's `publicKey` in the consortium roster.
 * Exit status: 0 done, 2 bad usage or FILE exists.
 */
import { parseArgs } from 'node:util';
import { usageError } from './_args.js';
import { generateSiteKey, writeSiteKey } from '../federation/keys.js';

const HELP = `usage: tally keygen --out FILE

Writes a new Ed25519 identity for a site of a consortium to FILE (JSON, mode
0600; an existing file is never overwritten) and prints its public key, as
64 hex digits, on stdout. Send the public key, and only it, to whoever keeps
the consortium's roster: it is the site's "publicKey" in consortium.json.

  --out FILE      the key file to create (its folder must exist)
  -h, --help      show this help

Exit status: 0 done, 2 bad usage or FILE exists.
`;

/** Entry point of `tally keygen`; returns the exit status. */
export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (err) {
    return usageError('keygen', (err as Error).message.split('\n')[0]!);
  }
  if (values.help) { console.log(HELP); return 0; }
  if (values.out === undefined || values.out === '') return usageError('keygen', 'missing --out');
  const key = generateSiteKey();
  writeSiteKey(values.out, key);
  console.log(Buffer.from(key.publicKey).toString('hex'));
  return 0;
}
