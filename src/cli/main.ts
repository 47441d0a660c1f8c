#!/usr/bin/env node
/**
 * The `tally` command. Each sub-command lives in its own module and exports
 * `run(argv): Promise<number>` returning the process exit status:
 * 0 success, 1 failure (e.g. a vector mismatch), 2 bad usage, 3 protocol abort.
 */
import { TallyError } from '../errors.js';

type Command = { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> };

const COMMANDS: Record<string, Command> = {
  simulate: { summary: 'run a whole secure-aggregation session in one process', load: () => import('./simulate.js') },
  vectors: { summary: 'generate or check the protocol test vectors', load: () => import('./vectors.js') },
  dp: { summary: 'differential-privacy accounting: epsilon, calibrate', load: () => import('./dp.js') },
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
    console.error(`tally: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  try {
    return await (await cmd.load()).run(rest);
  } catch (err) {
    if (err instanceof TallyError) {
      console.error(`tally ${name}: ${err.code}: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => { console.error(err); process.exitCode = 1; },
);
