/**
 * Client process of the secagg benchmark: every client of a session as a
 * `ClientDriver`, run one after another, talking to the server process over
 * IPC with the binary codec's bytes. A client's messages leave as soon as its
 * step returns, so the server never receives a whole round at once; after each
 * batch of server messages the process reports that it has nothing more to
 * send for that round (the server's deadline). Inputs are drawn per client
 * when its masked-input round starts (never all n·m at once); the plaintext
 * sum of the clients that sent a masked input is kept for the self-check.
 * Client time excludes drawing the inputs and the IPC hand-off.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { getProvider } from '../src/crypto/index.js';
import { DeterministicRng } from '../src/crypto/rng.js';
import type { SessionConfig } from '../src/secagg/config.js';
import { ClientDriver } from '../src/secagg/driver.js';
import { randomInput } from '../src/secagg/session.js';
import type { FromClients } from './_secagg-server.js';

interface Init { type: 'init'; config: SessionConfig; seed: string; silentFrom: Record<number, number>; provider: string }
type FromServer = Init | { type: 'deliver'; round: number; messages: { to: number; bytes: Uint8Array }[] } | { type: 'done' };

const send = (m: FromClients): void => void process.send!(m);
let config: SessionConfig;
let silentFrom: Record<number, number> = {};
/** The clients that started, each with the messages it sent and not yet handed to IPC. */
const clients = new Map<number, { driver: ClientDriver; outbox: Uint8Array[] }>();
let clientSeconds = 0;
let inputSeconds = 0;
let plain: Uint32Array;

/** Runs one client's step, timed, then sends what it produced. */
function step(outbox: Uint8Array[], from: number, f: () => void): void {
  const in0 = inputSeconds;
  const t0 = performance.now();
  f();
  clientSeconds += (performance.now() - t0) / 1000 - (inputSeconds - in0);
  for (const bytes of outbox.splice(0)) send({ type: 'msg', from, bytes });
}

function init(msg: Init): void {
  ({ config, silentFrom } = msg);
  const provider = getProvider(msg.provider as 'native' | 'portable');
  plain = new Uint32Array(config.dim);
  for (const id of config.clientIds) {
    const outbox: Uint8Array[] = [];
    const input = (): Uint32Array => {
      const t0 = performance.now();
      const x = randomInput(new DeterministicRng(`bench/${msg.seed}/input/${id}`), config.dim, config.bits);
      for (let i = 0; i < x.length; i++) plain[i] = plain[i]! + x[i]!; // for the self-check only
      inputSeconds += (performance.now() - t0) / 1000;
      return x;
    };
    const rng = new DeterministicRng(`bench/${msg.seed}/client/${id}`);
    if ((silentFrom[id] ?? Infinity) <= 0) continue;
    const driver = new ClientDriver({ config, id, provider, rng, input, channel: { send: (bytes) => void outbox.push(bytes) } });
    clients.set(id, { driver, outbox });
    step(outbox, id, () => driver.start());
  }
  send({ type: 'end', round: 0 });
}

process.on('message', (msg: FromServer) => {
  if (msg.type === 'init') {
    init(msg);
  } else if (msg.type === 'deliver') {
    for (const { to, bytes } of msg.messages) {
      const c = clients.get(to);
      if (c === undefined || (silentFrom[to] ?? Infinity) <= msg.round) continue;
      step(c.outbox, to, () => c.driver.receive(bytes));
    }
    send({ type: 'end', round: msg.round });
  } else {
    const mask = config.bits === 32 ? 0xffffffff : (1 << config.bits) - 1;
    for (let i = 0; i < plain.length; i++) plain[i] = (plain[i]! & mask) >>> 0;
    const sumHash = createHash('sha256').update(new Uint8Array(plain.buffer)).digest('hex');
    process.send!({ type: 'stats', clientSeconds, sumHash } satisfies FromClients, () => process.exit(0));
  }
});
