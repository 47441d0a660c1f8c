/**
 * A worker thread that runs some clients of a simulated session for
 * `_clientPool.ts`. It builds its clients exactly as the main thread would
 * (`_clients.ts`), then answers jobs in the order they arrive: a job starts
 * clients or delivers server messages to them, and returns every message the
 * clients sent, in the order sent, with the time the clients spent working.
 *
 * Server messages travel once per wave and worker: a job carries only the
 * byte strings this worker has not seen in the current wave, and refers to
 * them by index (a broadcast reaches all of a worker's clients as one copy,
 * as it does in one process).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { getProvider } from '../crypto/index.js';
import { ClientDriver } from '../secagg/driver.js';
import { TallyError } from '../errors.js';
import type { SessionConfig } from '../secagg/config.js';
import { simulatedClient } from './_clients.js';

/** The `workerData` of a client worker. */
export interface ClientWorkerInit {
  readonly seed: string;
  readonly config: SessionConfig;
  readonly provider: 'native' | 'portable';
  /** The ids of the clients this worker owns. */
  readonly ids: readonly number[];
  readonly inputs?: readonly (readonly [number, Uint32Array])[];
  readonly identitySeeds?: readonly (readonly [number, Uint8Array])[];
}

/** One job: start clients, or hand them server messages (`[client id, index into the wave's byte strings]`). */
export interface ClientJob {
  readonly job: number;
  readonly wave: number;
  /** Byte strings new to this worker in this wave, appended to its table. */
  readonly bufs: readonly Uint8Array[];
  readonly start?: readonly number[];
  readonly deliver?: readonly (readonly [number, number])[];
}

/** A job's answer: the messages sent (`[client id, round, bytes]`) and the clients' working time. */
export interface ClientJobDone {
  readonly job: number;
  readonly out: [number, number, Uint8Array][];
  readonly seconds: number;
  readonly error?: { readonly message: string; readonly code?: string; readonly stack?: string };
}

const port = parentPort;
if (port === null) throw new Error('_clientWorker.ts runs as a worker thread only');
const init = workerData as ClientWorkerInit;
const provider = getProvider(init.provider);
const setup = {
  seed: init.seed, config: init.config,
  ...(init.inputs ? { inputs: new Map(init.inputs) } : {}),
  ...(init.identitySeeds ? { identitySeeds: new Map(init.identitySeeds) } : {}),
};

let out: [number, number, Uint8Array][] = [];
const drivers = new Map<number, ClientDriver>();
for (const id of init.ids) {
  const c = simulatedClient(setup, id);
  let round = 0;
  drivers.set(id, new ClientDriver({
    config: init.config, id, provider, rng: c.rng,
    ...(c.identitySeed ? { identitySeed: c.identitySeed } : {}), ...(c.input !== undefined ? { input: c.input } : {}),
    channel: { send: (bytes) => out.push([id, round, bytes]) },
    listener: { message: (e) => { if (e.direction === 'to-server') round = e.round; } },
  }));
}

let table: Uint8Array[] = [];
let tableWave = -1;

port.on('message', (j: ClientJob) => {
  let seconds = 0;
  try {
    if (j.wave !== tableWave) { table = []; tableWave = j.wave; }
    table.push(...j.bufs);
    const t0 = performance.now();
    for (const id of j.start ?? []) drivers.get(id)!.start();
    for (const [id, b] of j.deliver ?? []) drivers.get(id)!.receive(table[b]!);
    seconds = (performance.now() - t0) / 1000;
  } catch (err) {
    const e = err as Error;
    const done: ClientJobDone = { job: j.job, out: [], seconds, error: { message: e.message, ...(err instanceof TallyError ? { code: err.code } : {}), ...(e.stack ? { stack: e.stack } : {}) } };
    port.postMessage(done);
    return;
  }
  const sent = out;
  out = [];
  // A message that owns its whole buffer moves to the main thread without a copy.
  const transfer: ArrayBuffer[] = [];
  for (const m of sent) {
    const b = m[2];
    if (b.byteOffset === 0 && b.buffer instanceof ArrayBuffer && b.byteLength === b.buffer.byteLength && !transfer.includes(b.buffer)) transfer.push(b.buffer);
    else m[2] = b.slice();
  }
  const done: ClientJobDone = { job: j.job, out: sent, seconds };
  port.postMessage(done, transfer);
});
