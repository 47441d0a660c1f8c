// Five clients add their vectors; the server learns only the sum.
// Build with `npm run build`, then run `node dist/examples/secure-sum.js`.
import { ClientDriver, ServerDriver, type SessionConfig } from 'tally/secagg';
import { defaultProvider, systemRng } from 'tally/crypto';

const config: SessionConfig = {
  nonce: systemRng.bytes(32), // fresh per session: binds every message to this session
  clientIds: [1, 2, 3, 4, 5], // the roster: ids in [1, 2^24 - 1], strictly increasing
  threshold: 3, // t: 3 of 5 must stay to the end; fewer than 3 colluding clients learn nothing
  bits: 16, // b: inputs and the sum are integers mod 2^16
  dim: 4, // m: every input is a vector of 4 integers
  threat: 'semi-honest', // or 'malicious' (signed keys, a consistency round, identityKeys)
  graph: { kind: 'complete' }, // every pair of clients shares a mask (SecAgg+: 'harary')
};
const provider = defaultProvider; // node:crypto

// The transport. Here it is two queues; on a network, `send` writes to a
// socket and the receiving side calls `receive` with what arrived.
type Packet = { to: 'server'; from: number; bytes: Uint8Array } | { to: number; bytes: Uint8Array };
const inFlight: Packet[] = [];

const server = new ServerDriver({
  config,
  provider,
  channel: { send: (to, bytes) => inFlight.push({ to, bytes }) },
});

const inputs = new Map<number, Uint32Array>();
const clients = new Map<number, ClientDriver>();
for (const id of config.clientIds) {
  const input = Uint32Array.from({ length: config.dim }, (_, j) => 1000 * id + j);
  inputs.set(id, input);
  clients.set(id, new ClientDriver({
    config,
    id,
    provider,
    rng: systemRng, // fresh keys for every session
    input,
    channel: { send: (bytes) => inFlight.push({ to: 'server', from: id, bytes }) },
  }));
}

for (const c of clients.values()) c.start(); // R0: every client advertises its keys
while (server.outcome === undefined) {
  const packet = inFlight.shift();
  if (packet === undefined) {
    server.closeRound(); // nothing left to deliver: the round's deadline has passed
  } else if (packet.to === 'server') {
    // The sender is the one the transport vouches for (a TLS certificate, a
    // signed channel), never the id written inside the message.
    server.receive(packet.from, packet.bytes);
  } else {
    clients.get(packet.to)!.receive(packet.bytes);
  }
  // Client 5 drops out after sending its shares (R1), before its masked input (R2).
  if (server.round === 2) clients.get(5)!.leave();
}

const outcome = server.outcome;
if (outcome.kind === 'aborted') throw new Error(`session aborted: ${outcome.code} ${outcome.message}`);

// The server rebuilt client 5's masks from the others' shares and removed them.
const expected = new Uint32Array(config.dim);
for (const id of outcome.survivors) {
  inputs.get(id)!.forEach((x, j) => { expected[j] = (expected[j]! + x) % 2 ** config.bits; });
}
console.log(`dropped: ${[...outcome.dropped.keys()].join(', ')}`);
console.log(`sum of clients ${outcome.survivors.join(', ')}: ${outcome.sum.join(' ')}`);
console.log(outcome.sum.every((x, j) => x === expected[j]) ? 'matches the plaintext sum' : 'MISMATCH');
