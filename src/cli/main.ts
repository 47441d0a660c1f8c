#!/usr/bin/env node
/**
 * The `tally` command. Each sub-command lives in its own module and exports
 * `run(argv): Promise<number>` returning the process exit status:
 * 0 success, 1 failure (e.g. a vector mismatch), 2 bad usage or a bad
 * parameter, 3 protocol abort, 70 a bug in tally (an error that is not a
 * TallyError: the only case that prints a stack trace).
 */
import { TallyError, ValidationError } from '../errors.js';

/** Exit status of an error that is a bug in tally (sysexits.h EX_SOFTWARE). */
export const EXIT_BUG = 70;
/** Node system-error codes that mean a path the user gave is wrong, not a failure of tally. */
const PATH_ERRORS = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'EACCES', 'EPERM', 'EEXIST', 'EROFS', 'ENAMETOOLONG']);

/** Prints an error that escaped a command; returns the exit status. */
function report(name: string, err: unknown): number {
  if (err instanceof TallyError) {
    console.error(`tally ${name}: ${err.code}: ${err.message}`);
    return err instanceof ValidationError ? 2 : 1;
  }
  const sys = err as NodeJS.ErrnoException;
  if (err instanceof Error && typeof sys.code === 'string' && typeof sys.syscall === 'string') {
    console.error(`tally ${name}: ${sys.code}: ${sys.message}`);
    return PATH_ERRORS.has(sys.code) ? 2 : 1;
  }
  console.error(`tally ${name}: internal error: this is a bug in tally; please report it with the command line and the trace below`);
  console.error(err instanceof Error ? err.stack ?? String(err) : String(err));
  return EXIT_BUG;
}

type Command = { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> };

const COMMANDS: Record<string, Command> = {
  demo: { summary: 'federated fine-tuning on embedded defaults: sites, secure aggregation, DP (npm start)', load: () => import('./demo.js') },
  simulate: { summary: 'run a whole secure-aggregation session in one process', load: () => import('./simulate.js') },
  vectors: { summary: 'generate or check the protocol test vectors', load: () => import('./vectors.js') },
  audit: { summary: 'verify an audit bundle (transcript, site logs, DP, secrets) or write its report', load: () => import('./audit.js') },
  dp: { summary: 'differential-privacy accounting: epsilon, calibrate', load: () => import('./dp.js') },
  consortium: { summary: 'write a consortium: configuration, site keys, TLS material (init)', load: () => import('./consortium.js') },
  keygen: { summary: 'write an Ed25519 site identity and print its public key', load: () => import('./keygen.js') },
  serve: { summary: 'run the coordinator: secure-aggregation sessions with the roster\'s sites', load: () => import('./serve.js') },
  join: { summary: 'take part in the consortium\'s sessions as one site', load: () => import('./join.js') },
  he: { summary: 'the key ceremony of a homomorphic consortium (deal, accept)', load: () => import('./he.js') },
  pretrain: { summary: 'pre-train a GPT-2 base model on the shipped public-domain corpus', load: async () => ({ run: (await import('./training.js')).pretrain }) },
  train: { summary: 'train a LoRA adapter on a text, locally (writes a PEFT adapter)', load: async () => ({ run: (await import('./training.js')).train }) },
  eval: { summary: 'loss and perplexity of a model (and adapter) on a text', load: async () => ({ run: (await import('./training.js')).evalCommand }) },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `usage: tally <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'tally <command> --help' for a command's options.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    const { createRequire } = await import('node:module');
    console.log((createRequire(import.meta.url)('../../../package.json') as { version: string }).version);
    return 0;
  }
  const cmd = COMMANDS[name];
  if (cmd === undefined) {
    console.error(`tally: unknown command '${name}' (see tally --help)`);
    return 2;
  }
  try {
    return await (await cmd.load()).run(rest);
  } catch (err) {
    return report(name, err);
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => { process.exitCode = report('', err); },
);
