/**
 * What the commands share on their command lines: the usage error, negative
 * numbers as option values, the --out check made before any work starts, and
 * the loopback test behind --insecure-loopback, the name of a run's output.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';

/** A bad command line: the command prints it with a pointer to --help and exits 2. */
export class UsageError extends Error {}

/**
 * The number an option was given (`dflt` when absent).
 * @throws UsageError naming the option and `what` it expects, when the value is not a finite number or fails `ok`
 */
export function numberOption(v: string | undefined, name: string, dflt: number, ok: (x: number) => boolean, what: string): number {
  if (v === undefined) return dflt;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || !ok(x)) throw new UsageError(`--${name} expected ${what}, got '${v}'`);
  return x;
}

/** A test for {@link numberOption}: an integer in [lo, hi]. */
export const isInt = (lo: number, hi = Number.MAX_SAFE_INTEGER) => (x: number): boolean => Number.isInteger(x) && x >= lo && x <= hi;

/** Prints a usage error of `tally <cmd>`; returns its exit status, 2. */
export function usageError(cmd: string, message: string): number {
  console.error(`tally ${cmd}: ${message} (see tally ${cmd} --help)`);
  return 2;
}

/** The options of a command line: a string for each option given a value, true for each flag. */
export type OptionValues = Readonly<Record<string, string | boolean | undefined>>;

/**
 * Parses the command line of `tally <cmd>`: `valued` options take a value
 * (a negative number included), `flags` do not, and -h/--help is always
 * known. A bad command line is printed as a usage error and gives the exit
 * status 2 instead of values.
 */
export function parseOptions(cmd: string, argv: readonly string[], valued: readonly string[], flags: readonly string[] = []): OptionValues | number {
  try {
    return parseArgs({
      args: joinNegativeValues(argv, valued), strict: true, allowPositionals: false, options: {
        ...Object.fromEntries(valued.map((o) => [o, { type: 'string' as const }])),
        ...Object.fromEntries(flags.map((o) => [o, { type: 'boolean' as const }])),
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    return usageError(cmd, (err as Error).message.split('\n')[0]!);
  }
}

/** A log that prints each line with an ISO timestamp (nothing when quiet), for long-running commands. */
export function timestampedLog(quiet: boolean): (line: string) => void {
  return quiet ? () => {} : (line) => console.log(`${new Date().toISOString()} ${line}`);
}

/**
 * `--clients -5` reads as the value -5 of an option that takes a value
 * (node's parser would call it an ambiguous option); `valued` lists those
 * options, without their dashes.
 */
export function joinNegativeValues(argv: readonly string[], valued: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!, next = argv[i + 1];
    if (a.startsWith('--') && !a.includes('=') && valued.includes(a.slice(2)) && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** Refuses an --out path that cannot be written, before any work is done. */
export function checkOutPath(path: string, flag = '--out'): void {
  const full = resolve(path);
  if (existsSync(full) && statSync(full).isDirectory()) throw new UsageError(`${flag} ${path} is a folder; name a file`);
  const dir = dirname(full);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`${flag} ${path}: the folder ${dir} does not exist`);
  try {
    accessSync(existsSync(full) ? full : dir, constants.W_OK);
  } catch {
    throw new UsageError(`${flag} ${path}: ${existsSync(full) ? 'the file' : `the folder ${dir}`} is not writable`);
  }
}

/** True for `localhost`, 127.0.0.0/8 and ::1: addresses no other machine can reach. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

/**
 * A name for one run's output (a demo run, a serve run's audit bundle, a
 * site's audit log): the UTC time to the second and 3 random bytes, e.g.
 * 20261127-012544-211388, so names sort by time and never collide.
 */
export function runName(now: Date = new Date()): string {
  return `${now.toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-')}-${randomBytes(3).toString('hex')}`;
}
