/**
 * What the network tests share: a consortium with TLS material in a temp
 * folder, an in-process coordinator on a free port, honest sites, a raw
 * WebSocket peer for attacks and a site driven by hand.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { nativeProvider } from '../../src/crypto/native.js';
import { systemRng } from '../../src/crypto/rng.js';
import { Coordinator } from '../../src/federation/coordinator.js';
import { consortiumLimits, initConsortium, parseConsortium, sessionConfig, type Consortium } from '../../src/federation/consortium.js';
import { readSiteKey } from '../../src/federation/keys.js';
import { runSite, type SiteResult } from '../../src/federation/site.js';
import { CoordinatorStore } from '../../src/federation/store.js';
import { ClientDriver } from '../../src/secagg/driver.js';
import { decodeEnvelope, type Envelope } from '../../src/transport/envelope.js';
import { CoordinatorLink } from '../../src/transport/ws-client.js';

export interface Fixture {
  dir: string;
  consortium: Consortium;
  coordinator: Coordinator;
  store: CoordinatorStore;
  url: string;
  ca: Buffer;
}

export async function fixture(o: { sites: number; dim: number; bits?: number; threat?: 'semi-honest' | 'malicious'; roundMs?: number; mtls?: boolean; handshakeMs?: number; idleMs?: number; perMinute?: number; sumToSites?: boolean }): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'tally-net-'));
  const made = await initConsortium({ dir, sites: o.sites, dim: o.dim, bits: o.bits ?? 32, threat: o.threat ?? 'semi-honest', graph: 'complete', port: 0, ...(o.mtls === true ? { mtls: true } : {}), ...(o.sumToSites === true ? { sumToSites: true } : {}) });
  const raw = JSON.parse(readFileSync(made.configFile, 'utf8'));
  // Short deadlines keep the tests quick; deadlines are not part of the consortium hash.
  raw.deadlines = { ...raw.deadlines, gatherMs: 1000, roundMs: o.roundMs ?? 2000, handshakeMs: o.handshakeMs ?? 2000, reconnectMaxMs: 3000 };
  if (o.idleMs !== undefined) raw.deadlines.idleMs = o.idleMs;
  if (o.perMinute !== undefined) raw.limits = { ...raw.limits, connectionsPerMinutePerIp: o.perMinute };
  const consortium = parseConsortium(raw, dir, made.configFile);
  const t = consortium.tls!;
  const store = CoordinatorStore.open(':memory:');
  const coordinator = await Coordinator.start({
    consortium, store, host: '127.0.0.1', port: 0,
    tls: { cert: readFileSync(t.cert), key: readFileSync(t.key), ca: readFileSync(t.ca), clientCertificates: t.clientCertificates },
  });
  return { dir, consortium, coordinator, store, url: `wss://127.0.0.1:${coordinator.port}/`, ca: readFileSync(t.ca) };
}

export async function teardown(f: Fixture): Promise<void> {
  await f.coordinator.close();
  f.store.close();
  rmSync(f.dir, { recursive: true, force: true });
}

export function inputs(n: number, dim: number, bits: number, seed: number): Uint32Array[] {
  let x = seed >>> 0;
  const next = (): number => { x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0; return x; };
  return Array.from({ length: n }, () => Uint32Array.from({ length: dim }, () => (bits === 32 ? next() : next() % 2 ** bits)));
}

export function sumOf(vs: Uint32Array[], ids: readonly string[], bits: number): number[] {
  const mod = 2 ** bits;
  const out = new Array<number>(vs[0]!.length).fill(0);
  for (const id of ids) {
    const v = vs[Number(id.slice('site-'.length)) - 1]!;
    for (let j = 0; j < v.length; j++) out[j] = (out[j]! + v[j]!) % mod;
  }
  return out;
}

export function site(f: Fixture, i: number, input: Uint32Array, signal?: AbortSignal, leaveAfterRound?: number): Promise<SiteResult> {
  const key = readSiteKey(join(f.dir, 'keys', `site-${i}.key`));
  const tlsDir = join(f.dir, 'tls');
  const mtls = f.consortium.tls!.clientCertificates;
  return runSite({
    consortium: f.consortium, siteId: `site-${i}`, seed: key.seed, input, stateFile: join(f.dir, `site-${i}.state.json`), url: f.url,
    tls: { ca: f.ca, ...(mtls ? { cert: readFileSync(join(tlsDir, 'sites', `site-${i}.crt`)), key: readFileSync(join(tlsDir, 'sites', `site-${i}.key`)) } : {}) },
    ...(signal !== undefined ? { signal } : {}),
    ...(leaveAfterRound !== undefined ? { leaveAfterRound } : {}),
  });
}

/** A raw WebSocket peer that speaks the envelope by hand (for attacks). */
export function rawPeer(f: Fixture, o: { autoPong?: boolean } = {}): Promise<{ ws: WebSocket; next: () => Promise<Envelope | { closed: true }> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(f.url, { ca: f.ca, perMessageDeflate: false, autoPong: o.autoPong ?? true });
    const queue: (Envelope | { closed: true })[] = [];
    const wait: ((e: Envelope | { closed: true }) => void)[] = [];
    const push = (e: Envelope | { closed: true }): void => { const w = wait.shift(); if (w) w(e); else queue.push(e); };
    ws.on('message', (d) => push(decodeEnvelope(new Uint8Array(d as Buffer), consortiumLimits(f.consortium))));
    ws.on('close', () => push({ closed: true }));
    ws.on('error', (err) => reject(err)); // before 'open' only; later the close event follows
    ws.on('open', () => resolve({ ws, next: () => new Promise((r) => { const q = queue.shift(); if (q) r(q); else wait.push(r); }) }));
    setTimeout(() => reject(new Error('no connection')), 3000).unref();
  });
}

/**
 * A site run by hand through the library's driver, which stops sending from
 * round `silentFrom` on (0: authenticates, then never answers); `mutate`
 * may change each message it sends.
 */
export async function partialSite(f: Fixture, i: number, input: Uint32Array, silentFrom: number, mutate?: (bytes: Uint8Array, round: number) => Uint8Array): Promise<{ link: CoordinatorLink }> {
  const key = readSiteKey(join(f.dir, 'keys', `site-${i}.key`));
  const link = await CoordinatorLink.connect({
    url: f.url, tls: { ca: f.ca }, siteId: `site-${i}`, seed: key.seed, consortium: f.consortium.hash,
    limits: consortiumLimits(f.consortium), handshakeMs: 2000, provider: nativeProvider,
  });
  let driver: ClientDriver | undefined;
  let round = 0;
  link.on('frame', (e) => {
    if (e.kind === 'session-start') {
      if (silentFrom === 0) return;
      const nonce = e.session;
      driver = new ClientDriver({
        config: sessionConfig(f.consortium, nonce),
        id: i, provider: nativeProvider, rng: systemRng, input,
        channel: { send: (bytes) => { if (round < silentFrom) link.send({ kind: 'secagg', session: nonce, payload: mutate !== undefined ? mutate(bytes, round) : bytes }); } },
        listener: { message: (m) => { if (m.direction === 'to-server') round = m.round; } },
      });
      driver.start();
    } else if (e.kind === 'secagg') driver?.receive(e.payload);
  });
  return { link };
}

