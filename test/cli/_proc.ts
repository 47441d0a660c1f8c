/**
 * Running `tally` commands as child processes in the CLI tests: the output so
 * far, the exit status, waiting for a line, a free loopback port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface Proc {
  readonly p: ChildProcess;
  out: string;
  err: string;
  readonly exit: Promise<number | null>;
  /** Resolves when stdout has a line matching `re`. */
  waitFor(re: RegExp, ms?: number): Promise<string>;
}

export function tally(args: string[]): Proc {
  const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc: Proc = {
    p, out: '', err: '',
    exit: new Promise((resolve) => p.on('exit', (code, signal) => resolve(signal !== null ? null : code))),
    waitFor(re, ms = 20_000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${re}; stdout:\n${proc.out}\nstderr:\n${proc.err}`)), ms);
        const check = (): void => {
          const m = proc.out.split('\n').find((l) => re.test(l));
          if (m !== undefined) { clearTimeout(t); p.stdout!.off('data', check); resolve(m); }
        };
        p.stdout!.on('data', check);
        check();
      });
    },
  };
  p.stdout!.on('data', (d: Buffer) => { proc.out += d.toString(); });
  p.stderr!.on('data', (d: Buffer) => { proc.err += d.toString(); });
  return proc;
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

