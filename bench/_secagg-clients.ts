/**
 * Client process of the secagg benchmark: runs every client of a session,
 * sequentially, and talks to the server process over IPC with the binary
 * codec's bytes. Inputs are drawn per client when needed (never all n·m at
 * once); the plaintext sum of the clients whose masked input was sent is
 * kept for the self-check.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { getProvider } from '../src/crypto/index.js';
import { DeterministicRng } from '../src/crypto/rng.js';
import type { SessionConfig } from '../src/secagg/config.js';
import { decodeServerMessage, encodeClientMessage } from '../src/secagg/codec.js';
import { handleServerMessage, startClient, type ClientState } from '../src/secagg/client/index.js';
import type { ClientMessage } from '../src/secagg/messages.js';
import { randomInput } from '../src/secagg/session.js';

interface Init { type: 'init'; config: SessionConfig; seed: string; silentFrom: Record<number, number>; provider: string }
type FromServer = Init | { type: 'deliver'; round: number; messages: { to: number; bytes: Uint8Array }[] } | { type: 'done' };

let config: SessionConfig;
let seed = '';
let silentFrom: Record<number, number> = {};
let provider = getProvider('native');
const states = new Map<number, ClientState>();
let clientSeconds = 0;
let plain: Uint32Array;

const inputOf = (id: number) => randomInput(new DeterministicRng(`bench/${seed}/input/${id}`), config.dim, config.bits);

/** Sends each message as soon as it exists, so the server never receives a whole round at once. */
function emit(from: number, msgs: readonly ClientMessage[]): void {
  for (const m of msgs) {
    if (m.type === 'masked-input') {
      const x = inputOf(from); // the plaintext, for the self-check only
      for (let i = 0; i < x.length; i++) plain[i] = plain[i]! + x[i]!;
    }
    process.send!({ type: 'msg', from, bytes: encodeClientMessage(m) });
  }
}

process.on('message', (msg: FromServer) => {
  if (msg.type === 'init') {
    ({ config, seed, silentFrom } = msg);
    provider = getProvider(msg.provider as 'native' | 'portable');
    plain = new Uint32Array(config.dim);
    for (const id of config.clientIds) {
      if ((silentFrom[id] ?? 99) <= 0) continue;
      const t0 = performance.now();
      const step = startClient({ config, id, provider, rng: new DeterministicRng(`bench/${seed}/client/${id}`), input: inputOf(id) });
      clientSeconds += (performance.now() - t0) / 1000;
      states.set(id, step.state);
      emit(id, step.out);
    }
    process.send!({ type: 'end' });
  } else if (msg.type === 'deliver') {
    for (const { to, bytes } of msg.messages) {
      const st = states.get(to);
      if (st === undefined || (silentFrom[to] ?? 99) <= msg.round) continue;
      const t0 = performance.now();
      const step = handleServerMessage(st, decodeServerMessage(bytes));
      for (const c of step.consumed) c.fill(0);
      clientSeconds += (performance.now() - t0) / 1000;
      states.set(to, step.state);
      emit(to, step.out);
    }
    process.send!({ type: 'end' });
  } else {
    const mask = config.bits === 32 ? 0xffffffff : (1 << config.bits) - 1;
    for (let i = 0; i < plain.length; i++) plain[i] = (plain[i]! & mask) >>> 0;
    const sumHash = createHash('sha256').update(new Uint8Array(plain.buffer)).digest('hex');
    process.send!({ type: 'stats', clientSeconds, sumHash }, () => process.exit(0));
  }
});
