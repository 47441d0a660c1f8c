/**
 * The transport benchmark's network floor: what terminating the session's TLS
 * connections costs a Node process, with no WebSocket, no envelopes and no
 * protocol at all. A bare `node:tls` server with the coordinator's
 * certificate and key (the consortium's ECDSA P-256 material, TLS 1.2 or
 * later as `tally serve` accepts) takes N connections from P site processes;
 * then, step by step, it writes each site the bytes the coordinator sent it
 * in that step of the session and waits until every site has written back
 * the bytes it sent in that step; last it writes each site its result bytes
 * and closes. The server's CPU time (every thread) from listening to the end
 * is the floor: the handshakes, the record encryption and decryption, and the
 * socket calls the same traffic needs, whatever a coordinator does on top.
 *
 *   node dist/bench/_tls-floor.js server JSON   (prints "port P", then one JSON line)
 *   node dist/bench/_tls-floor.js sites JSON
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, connect, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';

/** One step of the exchange, per site: the server writes `down` bytes, then the site writes `up` bytes. */
export interface FloorStep { readonly down: number; readonly up: number }

export interface TlsFloorJob {
  /** Folder of the consortium's TLS material (coordinator.key, coordinator.crt, ca.crt). */
  readonly tlsDir: string;
  readonly sites: number;
  readonly procs: number;
  readonly steps: readonly FloorStep[];
  /** Bytes the server writes each site at the end (the result). */
  readonly finalDown: number;
}

export interface TlsFloorResult { cpuSeconds: number; wallSeconds: number; connections: number }

const SELF = fileURLToPath(import.meta.url);

/**
 * The steps with bytes both ways: a step the server sends nothing in joins the
 * previous one's answer, a step the sites answer nothing in joins the next
 * one's message (or the final bytes). The first step must send something.
 */
export function floorSteps(steps: readonly FloorStep[], finalDown: number): { steps: FloorStep[]; finalDown: number } {
  const out: { down: number; up: number }[] = [];
  for (const s of steps) {
    const last = out[out.length - 1];
    if (last !== undefined && s.down === 0) last.up += s.up;
    else if (last !== undefined && last.up === 0) { last.down += s.down; last.up = s.up; } else out.push({ ...s });
  }
  if (out.length > 0 && out[0]!.down === 0) throw new Error('the first step of the TLS floor must send bytes');
  const last = out[out.length - 1];
  if (last !== undefined && last.up === 0) { out.pop(); return { steps: out, finalDown: finalDown + last.down }; }
  return { steps: out, finalDown };
}

/** Runs the floor (a server process and `procs` site processes); its server's figures. */
export async function runTlsFloor(given: TlsFloorJob): Promise<TlsFloorResult> {
  const job = { ...given, ...floorSteps(given.steps, given.finalDown) };
  const server = spawn(process.execPath, [SELF, 'server', JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const sites: ReturnType<typeof spawn>[] = [];
  try {
    return await new Promise<TlsFloorResult>((resolve, reject) => {
      let out = '';
      server.once('error', reject);
      server.once('exit', (code) => reject(new Error(`the TLS floor's server exited (${code}) before its result`)));
      server.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const port = /^port (\d+)$/m.exec(out);
        if (port !== null && sites.length === 0) {
          const per = Math.ceil(job.sites / job.procs);
          for (let p = 0; p < job.procs && p * per < job.sites; p++) {
            const count = Math.min(per, job.sites - p * per);
            sites.push(spawn(process.execPath, [SELF, 'sites', JSON.stringify({ ...job, sites: count, port: Number(port[1]) })], { stdio: ['ignore', 'ignore', 'inherit'] }));
          }
        }
        const line = /^(\{.*\})$/m.exec(out);
        if (line !== null) resolve(JSON.parse(line[1]!) as TlsFloorResult);
      });
    });
  } finally {
    server.kill();
    for (const s of sites) s.kill();
  }
}

/** Server side: accept every site, run the steps in lockstep, report CPU and wall time. */
function serve(job: TlsFloorJob): void {
  const socks: { s: TLSSocket; need: number }[] = [];
  let step = 0, answered = 0;
  const c0 = process.cpuUsage(), t0 = performance.now();
  const next = (): void => {
    answered = 0;
    if (step === job.steps.length) {
      const last = Buffer.alloc(job.finalDown);
      for (const x of socks) x.s.end(last);
      const c = process.cpuUsage(c0);
      console.log(JSON.stringify({ cpuSeconds: (c.user + c.system) / 1e6, wallSeconds: (performance.now() - t0) / 1000, connections: socks.length }));
      server.close();
      return;
    }
    const { down, up } = job.steps[step++]!;
    const msg = Buffer.alloc(down); // never empty: floorSteps folds a silent step into its neighbour
    for (const x of socks) {
      x.need = up;
      x.s.write(msg);
    }
  };
  const server = createServer({ key: readFileSync(`${job.tlsDir}/coordinator.key`), cert: readFileSync(`${job.tlsDir}/coordinator.crt`), minVersion: 'TLSv1.2' }, (s) => {
    const x = { s, need: 0 };
    s.on('data', (d: Buffer) => {
      x.need -= d.length;
      if (x.need === 0 && ++answered === job.sites) next();
    });
    s.on('error', () => undefined);
    socks.push(x);
    if (socks.length === job.sites) next();
  });
  server.listen(0, '127.0.0.1', () => console.log(`port ${(server.address() as { port: number }).port}`));
}

/** Site side: `sites` connections, each answering every step once its bytes have arrived. */
function sites(job: TlsFloorJob & { port: number }): void {
  const ca = readFileSync(`${job.tlsDir}/ca.crt`);
  let open = job.sites;
  for (let i = 0; i < job.sites; i++) {
    const s = connect({ host: '127.0.0.1', port: job.port, ca });
    let step = 0, have = 0;
    s.on('data', (d: Buffer) => {
      have += d.length;
      while (step < job.steps.length && have >= job.steps[step]!.down) {
        have -= job.steps[step]!.down;
        s.write(Buffer.alloc(job.steps[step++]!.up));
      }
    });
    s.on('error', (err) => { console.error(`TLS floor site: ${err.message}`); process.exitCode = 1; });
    s.on('close', () => { if (--open === 0) process.exit(); });
  }
}

const [mode, arg] = process.argv.slice(2);
if (process.argv[1] === SELF && mode === 'server') serve(JSON.parse(arg!) as TlsFloorJob);
if (process.argv[1] === SELF && mode === 'sites') sites(JSON.parse(arg!) as TlsFloorJob & { port: number });
