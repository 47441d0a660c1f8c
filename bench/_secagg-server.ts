/**
 * Server process of the secagg benchmark: one session, the server here and
 * every client in a child process (bench/_secagg-clients.ts), so the peak
 * RSS measured here is the server's alone. Prints one JSON line of results.
 */
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { getProvider } from '../src/crypto/index.js';
import { DeterministicRng } from '../src/crypto/rng.js';
import type { SessionConfig } from '../src/secagg/config.js';
import { decodeClientMessage, encodeServerMessage } from '../src/secagg/codec.js';
import { closeRound, createServer, receiveMessage, type ServerState } from '../src/secagg/server/index.js';

export interface ServerCase {
  name: string; n: number; dim: number; bits: number; dropout: number; threshold: number;
  graph: SessionConfig['graph']; seed: string; provider?: string;
}

const ROUND: Record<string, number> = { r0: 0, r1: 1, r2: 2, r3: 3, r4: 4 };

async function main(): Promise<void> {
  const c = JSON.parse(process.argv[2]!) as ServerCase;
  const provider = getProvider((c.provider ?? 'native') as 'native');
  const rng = new DeterministicRng(`bench/${c.seed}/server`);
  const ids = Array.from({ length: c.n }, (_, i) => i + 1);
  const config: SessionConfig = { nonce: rng.bytes(32), clientIds: ids, threshold: c.threshold, bits: c.bits, dim: c.dim, threat: 'semi-honest', graph: c.graph };
  // Dropouts: every 1/rate-th client, at rotating points (silent before R1, after R1, after R2).
  const drops = Math.round(c.dropout * c.n);
  const silentFrom: Record<number, number> = {};
  for (let k = 0; k < drops; k++) silentFrom[ids[Math.floor((k * c.n) / drops)]!] = [1, 2, 4][k % 3]!;

  const child = fork(new URL('./_secagg-clients.js', import.meta.url), [], { serialization: 'advanced' });
  let serverSeconds = 0;
  let up = 0;
  let down = 0;
  let maskedInputBytes = 0;
  const upById = new Map<number, number>();
  const roundSeconds = [0, 0, 0, 0, 0];
  let server: ServerState = createServer({ config, provider });
  let resolveStats: (s: { clientSeconds: number; sumHash: string }) => void;
  const statsArrived = new Promise<{ clientSeconds: number; sumHash: string }>((r) => { resolveStats = r; });
  // Each client message is handled as it arrives; 'end' closes the round.
  child.on('message', (m: { type: string; from: number; bytes: Uint8Array; clientSeconds: number; sumHash: string }) => {
    if (m.type === 'stats') { resolveStats(m); return; }
    const round = ROUND[server.kind]!;
    const t0 = performance.now();
    if (m.type === 'msg') {
      up += m.bytes.length;
      upById.set(m.from, (upById.get(m.from) ?? 0) + m.bytes.length);
      const msg = decodeClientMessage(m.bytes);
      if (msg.type === 'masked-input') maskedInputBytes = Math.max(maskedInputBytes, m.bytes.length);
      server = receiveMessage(server, m.from, msg).state;
      const dt = (performance.now() - t0) / 1000;
      serverSeconds += dt; roundSeconds[round]! += dt;
      return;
    }
    const step = closeRound(server);
    server = step.state;
    const dt = (performance.now() - t0) / 1000;
    serverSeconds += dt; roundSeconds[round]! += dt;
    // A broadcast is one message object sent to many clients: encode it once, as a real server would.
    const encoded = new Map<object, Uint8Array>();
    const messages = step.out.map((o) => {
      let bytes = encoded.get(o.message);
      if (bytes === undefined) encoded.set(o.message, (bytes = encodeServerMessage(o.message)));
      return { to: o.to, bytes };
    });
    for (const x of messages) down += x.bytes.length;
    if (server.kind === 'completed' || server.kind === 'aborted') child.send({ type: 'done' });
    else child.send({ type: 'deliver', round: ROUND[server.kind]!, messages });
  });
  child.send({ type: 'init', config, seed: c.seed, silentFrom, provider: c.provider ?? 'native' });
  const stats = await statsArrived;
  const done = server as ServerState;
  const sumHash = done.kind === 'completed' ? createHash('sha256').update(new Uint8Array(done.sum.buffer, done.sum.byteOffset, done.sum.byteLength)).digest('hex') : '';
  console.log(JSON.stringify({
    name: c.name, n: c.n, dim: c.dim, bits: c.bits, dropout: c.dropout, threshold: c.threshold,
    graph: c.graph.kind, neighbors: c.graph.kind === 'harary' ? c.graph.degree : c.n - 1,
    outcome: done.kind === 'completed' ? 'completed' : `aborted: ${(done as { code?: string }).code}`,
    survivors: done.kind === 'completed' ? done.survivors.length : 0,
    selfCheck: sumHash !== '' && sumHash === stats.sumHash,
    serverSeconds, roundSeconds, clientSecondsPerClient: stats.clientSeconds / c.n,
    bytesUpPerClient: up / c.n, bytesDownPerClient: down / c.n, maskedInputBytes,
    maxBytesUpOneClient: Math.max(...upById.values()),
    serverPeakRssBytes: process.resourceUsage().maxRSS * 1024,
  }));
}

await main();
