/**
 * `tally simulate` in a fresh process, as the benchmarks run it: the given
 * arguments plus `--out` to a temporary file and `--quiet`; returns the run's
 * JSON report (its keys: src/cli/simulate.ts `report`). A failed run throws
 * execFileSync's error, its `stderr` holding what the run printed.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function runSimulate(args: readonly string[]): unknown {
  const out = join(tmpdir(), `tally-bench-simulate-${process.pid}.json`);
  try {
    execFileSync(process.execPath, [new URL('../src/cli/main.js', import.meta.url).pathname, 'simulate', ...args, '--out', out, '--quiet'],
      { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    return JSON.parse(readFileSync(out, 'utf8')) as unknown;
  } finally {
    rmSync(out, { force: true });
  }
}
