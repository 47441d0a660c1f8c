/**
 * `tally serve` and `tally join` as separate processes on loopback: one
 * coordinator, several sites, sites killed at random moments, a coordinator
 * killed with SIGKILL and restarted on its state, and hostile peers beside
 * the honest ones. Every case asserts the exact sum over the sites the
 * coordinator reports as survivors.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { nativeProvider } from '../../src/crypto/native.js';
import { consortiumLimits, loadConsortium } from '../../src/federation/consortium.js';
import { readSiteKey } from '../../src/federation/keys.js';
import { CoordinatorStore } from '../../src/federation/store.js';
import { authSignedBytes, decodeEnvelope, encodeEnvelope, type Envelope } from '../../src/transport/envelope.js';

import { freePort, MAIN, tally, type Proc } from './_proc.js';

/** A consortium made by `tally consortium init`, with deadlines short enough for tests. */
async function consortium(sites: number, dim: number, deadlines: Record<string, number>, extra: string[] = []): Promise<{ dir: string; config: string; port: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'tally-sj-'));
  const port = await freePort();
  const r = spawnSync(process.execPath, [MAIN, 'consortium', 'init', '--dir', dir, '--sites', String(sites), '--dim', String(dim), '--port', String(port), '--graph', 'complete', ...extra], { encoding: 'utf8' });
  expect(r.status, r.stderr).to.equal(0);
  const config = join(dir, 'consortium.json');
  const doc = JSON.parse(readFileSync(config, 'utf8'));
  doc.deadlines = { ...doc.deadlines, ...deadlines };
  writeFileSync(config, JSON.stringify(doc, null, 2));
  return { dir, config, port };
}

function vectors(n: number, dim: number, seed: number): number[][] {
  let x = seed;
  return Array.from({ length: n }, () => Array.from({ length: dim }, () => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return x; }));
}

function expectedSum(vs: number[][], survivors: readonly string[]): number[] {
  const out = new Array<number>(vs[0]!.length).fill(0);
  for (const s of survivors) {
    const v = vs[Number(s.slice('site-'.length)) - 1]!;
    for (let j = 0; j < v.length; j++) out[j] = (out[j]! + v[j]!) % 2 ** 32;
  }
  return out;
}

function join_(dir: string, config: string, i: number, extra: string[] = []): Proc {
  return tally(['join', '--config', config, '--key', join(dir, 'keys', `site-${i}.key`), '--vector', join(dir, `v${i}.json`), '--out', join(dir, `r${i}.json`), ...extra]);
}

/** A hostile peer that authenticates as a roster site and then never answers. */
async function silentSite(dir: string, config: string, port: number, i: number): Promise<WebSocket> {
  const c = loadConsortium(config);
  const key = readSiteKey(join(dir, 'keys', `site-${i}.key`));
  const ws = new WebSocket(`wss://127.0.0.1:${port}/`, { ca: readFileSync(join(dir, 'tls', 'ca.crt')), perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.on('error', reject);
    ws.on('open', () => ws.send(encodeEnvelope({ kind: 'hello', siteId: `site-${i}`, consortium: c.hash })));
    ws.on('message', (d) => {
      const e = decodeEnvelope(new Uint8Array(d as Buffer), consortiumLimits(c));
      if (e.kind === 'challenge') ws.send(encodeEnvelope({ kind: 'auth', signature: nativeProvider.ed25519Sign(key.seed, authSignedBytes(c.hash, e.challenge, `site-${i}`)) }));
      if (e.kind === 'welcome') resolve();
    });
  });
  return ws;
}

describe('cli: tally serve and tally join as processes', function () {
  this.timeout(120_000);
  const procs: Proc[] = [];
  const dirs: string[] = [];
  afterEach(() => {
    for (const p of procs.splice(0)) if (p.p.exitCode === null) p.p.kill('SIGKILL');
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('one coordinator and five sites over TLS: every process exits 0 and the sum, sent to the sites too (--sum-to-sites), is exact', async () => {
    const c = await consortium(5, 32, { gatherMs: 15000, roundMs: 5000 }, ['--sum-to-sites']);
    dirs.push(c.dir);
    const vs = vectors(5, 32, 11);
    vs.forEach((v, i) => writeFileSync(join(c.dir, `v${i + 1}.json`), JSON.stringify(v)));
    const serve = tally(['serve', '--config', c.config, '--once', '--out', join(c.dir, 'result.json'), '--audit', join(c.dir, 'audit')]);
    procs.push(serve);
    await serve.waitFor(/listening on wss:/);
    const sites = [1, 2, 3, 4, 5].map((i) => join_(c.dir, c.config, i, ['--audit-log', join(c.dir, `site-${i}.audit.jsonl`)]));
    procs.push(...sites);
    expect(await serve.exit, serve.err).to.equal(0);
    for (const s of sites) expect(await s.exit, s.err).to.equal(0);
    const result = JSON.parse(readFileSync(join(c.dir, 'result.json'), 'utf8'));
    expect(result.outcome).to.equal('completed');
    expect(result.survivors).to.deep.equal(['site-1', 'site-2', 'site-3', 'site-4', 'site-5']);
    expect(result.sum).to.deep.equal(expectedSum(vs, result.survivors));
    expect(result.rounds.map((r: { round: number }) => r.round)).to.deep.equal([0, 1, 2, 4]);
    for (let i = 1; i <= 5; i++) {
      const r = JSON.parse(readFileSync(join(c.dir, `r${i}.json`), 'utf8'));
      expect(r).to.include({ site: `site-${i}`, session: result.session, inSum: true });
      expect(r.sum).to.deep.equal(result.sum);
    }
    // The run's audit bundle and the sites' own logs verify together: every site witnessed the coordinator's checkpoints.
    const logs = [1, 2, 3, 4, 5].flatMap((i) => ['--site-log', join(c.dir, `site-${i}.audit.jsonl`)]);
    let v = spawnSync(process.execPath, [MAIN, 'audit', 'verify', join(c.dir, 'audit'), ...logs, '--config', c.config, '--json'], { encoding: 'utf8' });
    expect(v.status, v.stdout + v.stderr).to.equal(0);
    const verdict = JSON.parse(v.stdout) as { ok: boolean; checks: { id: string; ok: boolean }[] };
    expect(verdict.checks.map((x) => [x.id, x.ok])).to.deep.equal([['integrity', true], ['config', true], ['protocol', true], ['privacy', true], ['secrets', true]]);
    for (let i = 1; i <= 5; i++) {
      const w = readFileSync(join(c.dir, `site-${i}.audit.jsonl`), 'utf8').split('\n').filter((l) => l.includes('"kind":"witness"'));
      // One checkpoint per round with the next message to the site, and the one after the outcome with the result.
      expect(w.length, `site-${i} witnessed`).to.be.at.least(4);
    }
    // One changed byte in the coordinator's transcript (a message digest) fails it.
    const tf = join(c.dir, 'audit', 'transcript.jsonl');
    const text = readFileSync(tf, 'utf8');
    const at = text.indexOf('"sha256":"') + 10;
    writeFileSync(tf, text.slice(0, at) + (text[at] === '0' ? '1' : '0') + text.slice(at + 1));
    v = spawnSync(process.execPath, [MAIN, 'audit', 'verify', join(c.dir, 'audit'), ...logs], { encoding: 'utf8' });
    expect(v.status, v.stdout).to.equal(1);
  });

  it('a site killed with SIGKILL at a random moment: the session completes and names exactly the sites in the sum', async () => {
    const c = await consortium(6, 16, { gatherMs: 6000, roundMs: 1500 });
    dirs.push(c.dir);
    const vs = vectors(6, 16, 12);
    vs.forEach((v, i) => writeFileSync(join(c.dir, `v${i + 1}.json`), JSON.stringify(v)));
    const serve = tally(['serve', '--config', c.config, '--once', '--out', join(c.dir, 'result.json')]);
    procs.push(serve);
    await serve.waitFor(/listening on wss:/);
    const sites = [1, 2, 3, 4, 5, 6].map((i) => join_(c.dir, c.config, i));
    procs.push(...sites);
    const victim = sites[Math.floor(Math.random() * 6)]!;
    setTimeout(() => victim.p.kill('SIGKILL'), Math.floor(Math.random() * 800));
    expect(await serve.exit, serve.err).to.equal(0);
    const result = JSON.parse(readFileSync(join(c.dir, 'result.json'), 'utf8'));
    expect(result.outcome).to.equal('completed');
    expect(result.survivors.length).to.be.at.least(5);
    expect(result.sum).to.deep.equal(expectedSum(vs, result.survivors));
    for (const s of sites) if (s !== victim) expect(await s.exit, s.err).to.equal(0);
  });

  it('the coordinator killed with SIGKILL mid-session and restarted: the session is recorded as aborted, the sites reconnect and the next one completes', async () => {
    const c = await consortium(5, 8, { gatherMs: 1500, roundMs: 4000, reconnectMaxMs: 60000 });
    dirs.push(c.dir);
    const vs = vectors(5, 8, 13);
    vs.forEach((v, i) => writeFileSync(join(c.dir, `v${i + 1}.json`), JSON.stringify(v)));
    const state = join(c.dir, 'state');
    const first = tally(['serve', '--config', c.config, '--state', state]);
    procs.push(first);
    await first.waitFor(/listening on wss:/);
    // site-5 is a peer that authenticates and never answers: R0 waits for it until its deadline.
    const stall = await silentSite(c.dir, c.config, c.port, 5);
    const sites = [1, 2, 3, 4].map((i) => join_(c.dir, c.config, i));
    procs.push(...sites);
    await first.waitFor(/session [0-9a-f]{16}… started/);
    first.p.kill('SIGKILL');
    expect(await first.exit).to.equal(null);
    stall.terminate();
    const second = tally(['serve', '--config', c.config, '--state', state, '--once', '--out', join(c.dir, 'result.json')]);
    procs.push(second);
    expect(await second.exit, second.err + second.out).to.equal(0);
    for (const s of sites) expect(await s.exit, s.err).to.equal(0);
    const result = JSON.parse(readFileSync(join(c.dir, 'result.json'), 'utf8'));
    expect(result.survivors).to.deep.equal(['site-1', 'site-2', 'site-3', 'site-4']);
    expect(result.sum).to.deep.equal(expectedSum(vs, result.survivors));
    const store = CoordinatorStore.open(join(state, 'coordinator.sqlite'));
    try {
      const all = store.sessions();
      expect(all.map((s) => s.state)).to.deep.equal(['completed', 'aborted']);
      expect(all[1]!.abort!.code).to.equal('COORDINATOR_RESTART');
      expect(all[0]!.sessionId).to.equal(result.session);
      expect([...all[0]!.sum!]).to.deep.equal(result.sum);
    } finally {
      store.close();
    }
  });

  it('hostile peers beside honest sites (a key not in the roster, random bytes, an oversized frame, a replayed answer): refused, and the sum is exact', async () => {
    const c = await consortium(4, 8, { gatherMs: 3000, roundMs: 4000 });
    dirs.push(c.dir);
    const vs = vectors(4, 8, 14);
    vs.forEach((v, i) => writeFileSync(join(c.dir, `v${i + 1}.json`), JSON.stringify(v)));
    const serve = tally(['serve', '--config', c.config, '--once', '--out', join(c.dir, 'result.json')]);
    procs.push(serve);
    await serve.waitFor(/listening on wss:/);
    const cons = loadConsortium(c.config);
    const limits = consortiumLimits(cons);
    const ca = readFileSync(join(c.dir, 'tls', 'ca.crt'));
    const peer = (): Promise<{ ws: WebSocket; first: Promise<Envelope | 'closed'> }> => new Promise((resolve) => {
      const ws = new WebSocket(`wss://127.0.0.1:${c.port}/`, { ca, perMessageDeflate: false });
      const first = new Promise<Envelope | 'closed'>((r) => {
        ws.once('message', (d) => r(decodeEnvelope(new Uint8Array(d as Buffer), limits)));
        ws.once('close', () => r('closed'));
      });
      ws.on('error', () => {});
      ws.on('open', () => resolve({ ws, first }));
    });
    // An identity that is not in the roster, claiming site-1.
    const stranger = nativeProvider.ed25519PublicKey(new Uint8Array(32).fill(9));
    expect(stranger.length).to.equal(32);
    let p = await peer();
    p.ws.send(encodeEnvelope({ kind: 'hello', siteId: 'site-1', consortium: cons.hash }));
    const ch = await p.first as Extract<Envelope, { kind: 'challenge' }>;
    const refused = new Promise<Envelope>((r) => p.ws.once('message', (d) => r(decodeEnvelope(new Uint8Array(d as Buffer), limits))));
    p.ws.send(encodeEnvelope({ kind: 'auth', signature: nativeProvider.ed25519Sign(new Uint8Array(32).fill(9), authSignedBytes(cons.hash, ch.challenge, 'site-1')) }));
    expect(await refused).to.include({ kind: 'error', code: 'NET_ERR_AUTH_FAILED' });
    // Random bytes, then an oversized frame.
    p = await peer();
    p.ws.send(Buffer.from(Array.from({ length: 64 }, () => Math.floor(Math.random() * 256))));
    const junk = await p.first;
    expect(junk === 'closed' || (junk.kind === 'error' && /^WIRE_ERR_|^NET_ERR_PROTOCOL$/.test(junk.code))).to.equal(true);
    p = await peer();
    p.ws.send(Buffer.alloc(16 << 20));
    expect(await p.first).to.equal('closed');
    // Replay: site-3's valid answer to the challenge of one connection, sent on another connection.
    const k3 = readSiteKey(join(c.dir, 'keys', 'site-3.key'));
    const a = await peer();
    a.ws.send(encodeEnvelope({ kind: 'hello', siteId: 'site-3', consortium: cons.hash }));
    const chA = await a.first as Extract<Envelope, { kind: 'challenge' }>;
    const answer = nativeProvider.ed25519Sign(k3.seed, authSignedBytes(cons.hash, chA.challenge, 'site-3'));
    const b = await peer();
    b.ws.send(encodeEnvelope({ kind: 'hello', siteId: 'site-3', consortium: cons.hash }));
    await b.first; // b's own challenge
    const replayed = new Promise<Envelope>((r) => b.ws.once('message', (d) => r(decodeEnvelope(new Uint8Array(d as Buffer), limits))));
    b.ws.send(encodeEnvelope({ kind: 'auth', signature: answer }));
    expect(await replayed).to.include({ kind: 'error', code: 'NET_ERR_AUTH_FAILED' });
    a.ws.terminate(); // never authenticated: the real site-3 connects below
    // The honest sites.
    const sites = [1, 2, 3, 4].map((i) => join_(c.dir, c.config, i));
    procs.push(...sites);
    expect(await serve.exit, serve.err).to.equal(0);
    for (const s of sites) expect(await s.exit, s.err).to.equal(0);
    const result = JSON.parse(readFileSync(join(c.dir, 'result.json'), 'utf8'));
    expect(result.survivors).to.deep.equal(['site-1', 'site-2', 'site-3', 'site-4']);
    expect(result.sum).to.deep.equal(expectedSum(vs, result.survivors));
  });

  it('without --once the coordinator serves session after session until SIGTERM, which closes it cleanly', async () => {
    const c = await consortium(3, 4, { gatherMs: 10000, roundMs: 4000 }, ['--sum-to-sites']);
    dirs.push(c.dir);
    const state = join(c.dir, 'state');
    const serve = tally(['serve', '--config', c.config, '--state', state]);
    procs.push(serve);
    await serve.waitFor(/listening on wss:/);
    const vs = [vectors(3, 4, 15), vectors(3, 4, 16)];
    for (const [n, v] of vs.entries()) {
      v.forEach((x, i) => writeFileSync(join(c.dir, `v${i + 1}.json`), JSON.stringify(x)));
      const sites = [1, 2, 3].map((i) => join_(c.dir, c.config, i, ['--state', join(c.dir, `s${i}.json`)]));
      procs.push(...sites);
      for (const s of sites) expect(await s.exit, s.err).to.equal(0);
      const r = JSON.parse(readFileSync(join(c.dir, 'r1.json'), 'utf8'));
      expect(r.sum, `session ${n + 1}`).to.deep.equal(expectedSum(v, ['site-1', 'site-2', 'site-3']));
    }
    serve.p.kill('SIGTERM');
    expect(await serve.exit, serve.err).to.equal(0);
    const store = CoordinatorStore.open(join(state, 'coordinator.sqlite'));
    try {
      expect(store.sessions().map((s) => s.state)).to.deep.equal(['completed', 'completed']);
    } finally {
      store.close();
    }
  });

  it('refuses to start without TLS unless --insecure-loopback on a loopback address, where a session runs over plain WebSocket; join refuses a vector of the wrong length', async () => {
    const c = await consortium(3, 4, {});
    dirs.push(c.dir);
    const doc = JSON.parse(readFileSync(c.config, 'utf8'));
    delete doc.coordinator.tls;
    writeFileSync(c.config, JSON.stringify(doc));
    let r = spawnSync(process.execPath, [MAIN, 'serve', '--config', c.config, '--once'], { encoding: 'utf8' });
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/NET_ERR_INSECURE/);
    r = spawnSync(process.execPath, [MAIN, 'serve', '--config', c.config, '--once', '--insecure-loopback', '--host', '0.0.0.0'], { encoding: 'utf8' });
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/NET_ERR_INSECURE.*not one/);
    writeFileSync(join(c.dir, 'v1.json'), JSON.stringify([1, 2, 3]));
    r = spawnSync(process.execPath, [MAIN, 'join', '--config', c.config, '--key', join(c.dir, 'keys', 'site-1.key'), '--vector', join(c.dir, 'v1.json'), '--insecure-loopback'], { encoding: 'utf8' });
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/--vector.*4 integers/);
    r = spawnSync(process.execPath, [MAIN, 'serve', '--config', c.config, '--out', join(c.dir, 'nope', 'r.json'), '--once', '--insecure-loopback'], { encoding: 'utf8' });
    expect(r.status).to.equal(2);
    // On loopback, --insecure-loopback on both sides runs a session over plain WebSocket.
    const vs = vectors(3, 4, 17);
    vs.forEach((v, i) => writeFileSync(join(c.dir, `v${i + 1}.json`), JSON.stringify(v)));
    const serve = tally(['serve', '--config', c.config, '--once', '--insecure-loopback', '--out', join(c.dir, 'result.json')]);
    procs.push(serve);
    await serve.waitFor(/listening on ws:/);
    const sites = [1, 2, 3].map((i) => join_(c.dir, c.config, i, ['--insecure-loopback']));
    procs.push(...sites);
    expect(await serve.exit, serve.err).to.equal(0);
    for (const s of sites) expect(await s.exit, s.err).to.equal(0);
    const result = JSON.parse(readFileSync(join(c.dir, 'result.json'), 'utf8'));
    expect(result.sum).to.deep.equal(expectedSum(vs, result.survivors));
    expect(result.survivors).to.deep.equal(['site-1', 'site-2', 'site-3']);
  });
});
