/**
 * The coordinator and its sites over real WebSocket connections on loopback,
 * in one process: TLS, roster authentication, refusals, dropouts, exact sums.
 * (test/cli/serve-join.test.ts runs the same with separate processes.)
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { nativeProvider } from '../../src/crypto/native.js';
import { NetError } from '../../src/errors.js';
import { type SessionReport } from '../../src/federation/coordinator.js';
import { loadConsortium, type Consortium } from '../../src/federation/consortium.js';
import { readSiteKey } from '../../src/federation/keys.js';
import { runSite } from '../../src/federation/site.js';
import { authSignedBytes, encodeEnvelope, type Envelope } from '../../src/transport/envelope.js';
import { fixture, inputs, partialSite, rawPeer, site, sumOf, teardown } from './_net.js';

describe('coordinator and sites over WebSockets (in process)', function () {
  this.timeout(60_000);

  it('five sites over TLS: the session completes and every site gets the exact sum (aggregation.sumToSites)', async () => {
    const f = await fixture({ sites: 5, dim: 64, sumToSites: true });
    try {
      const xs = inputs(5, 64, 32, 1);
      const session = f.coordinator.runSession();
      const results = await Promise.all(xs.map((x, i) => site(f, i + 1, x)));
      const report: SessionReport = await session;
      expect(report.outcome).to.equal('completed');
      expect(report.survivors).to.deep.equal(['site-1', 'site-2', 'site-3', 'site-4', 'site-5']);
      expect(report.sum).to.deep.equal(sumOf(xs, report.survivors, 32));
      for (const r of results) {
        expect(r.inSum).to.equal(true);
        expect(r.sum).to.deep.equal(report.sum);
        expect(r.session).to.equal(report.session);
      }
      const stored = f.store.session(report.session)!;
      expect(stored.state).to.equal('completed');
      expect([...stored.sum!]).to.deep.equal(report.sum);
      expect(stored.survivors).to.deep.equal(report.survivors);
    } finally {
      await teardown(f);
    }
  });

  it('malicious threat model with mutual TLS: completes with the exact sum', async () => {
    const f = await fixture({ sites: 5, dim: 16, bits: 20, threat: 'malicious', mtls: true });
    try {
      const xs = inputs(5, 16, 20, 2);
      const session = f.coordinator.runSession();
      await Promise.all(xs.map((x, i) => site(f, i + 1, x)));
      const report = await session;
      expect(report.outcome).to.equal('completed');
      expect(report.sum).to.deep.equal(sumOf(xs, report.survivors, 20));
    } finally {
      await teardown(f);
    }
  });

  it('a site that is not connected is dropped at R0; the rest complete with the exact sum over the survivors', async () => {
    const f = await fixture({ sites: 5, dim: 8, roundMs: 800 });
    try {
      const xs = inputs(5, 8, 32, 3);
      const session = f.coordinator.runSession();
      const results = await Promise.all([1, 2, 3, 4].map((i) => site(f, i, xs[i - 1]!)));
      const report = await session;
      expect(report.outcome).to.equal('completed');
      expect(report.survivors).to.deep.equal(['site-1', 'site-2', 'site-3', 'site-4']);
      expect(report.dropped.map((d) => [d.site, d.round])).to.deep.equal([['site-5', 0]]);
      expect(report.sum).to.deep.equal(sumOf(xs, report.survivors, 32));
      expect(results[0]!.dropped).to.deep.equal(['site-5']);
      // By default the sites learn the outcome and who is in the sum, not the sum.
      for (const r of results) expect(r).to.include({ inSum: true, sum: undefined, session: report.session });
    } finally {
      await teardown(f);
    }
  });

  it('refuses an unknown site, a wrong signature, a replayed answer, a second connection, garbage and oversized frames', async () => {
    const f = await fixture({ sites: 3, dim: 4 });
    try {
      const hash = f.consortium.hash;
      // Unknown site id.
      let p = await rawPeer(f);
      p.ws.send(encodeEnvelope({ kind: 'hello', siteId: 'site-9', consortium: hash }));
      expect(await p.next()).to.include({ kind: 'error', code: 'NET_ERR_UNKNOWN_SITE' });
      // A different consortium.
      p = await rawPeer(f);
      p.ws.send(encodeEnvelope({ kind: 'hello', siteId: 'site-1', consortium: new Uint8Array(32) }));
      expect(await p.next()).to.include({ kind: 'error', code: 'NET_ERR_CONFIG_MISMATCH' });
      // A key that is not site-1's roster key.
      p = await rawPeer(f);
      p.ws.send(encodeEnvelope({ kind: 'hello', siteId: 'site-1', consortium: hash }));
      let ch = (await p.next()) as Extract<Envelope, { kind: 'challenge' }>;
      const other = readSiteKey(join(f.dir, 'keys', 'site-2.key'));
      p.ws.send(encodeEnvelope({ kind: 'auth', signature: nativeProvider.ed25519Sign(other.seed, authSignedBytes(hash, ch.challenge, 'site-1')) }));
      expect(await p.next()).to.include({ kind: 'error', code: 'NET_ERR_AUTH_FAILED' });
      // Replay: a valid answer to one challenge, sent on another connection.
      const k1 = readSiteKey(join(f.dir, 'keys', 'site-1.key'));
      const a = await rawPeer(f);
      a.ws.send(encodeEnvelope({ kind: 'hello', siteId: 'site-1', consortium: hash }));
      ch = (await a.next()) as Extract<Envelope, { kind: 'challenge' }>;
      const answer = nativeProvider.ed25519Sign(k1.seed, authSignedBytes(hash, ch.challenge, 'site-1'));
      const b = await rawPeer(f);
      b.ws.send(encodeEnvelope({ kind: 'hello', siteId: 'site-1', consortium: hash }));
      await b.next(); // its own, different challenge
      b.ws.send(encodeEnvelope({ kind: 'auth', signature: answer }));
      expect(await b.next()).to.include({ kind: 'error', code: 'NET_ERR_AUTH_FAILED' });
      // The genuine answer on its own connection is welcome; a second connection for site-1 is refused.
      a.ws.send(encodeEnvelope({ kind: 'auth', signature: answer }));
      expect(await a.next()).to.include({ kind: 'welcome', siteId: 'site-1', clientId: 1 });
      const dup = await rawPeer(f);
      dup.ws.send(encodeEnvelope({ kind: 'hello', siteId: 'site-1', consortium: hash }));
      ch = (await dup.next()) as Extract<Envelope, { kind: 'challenge' }>;
      dup.ws.send(encodeEnvelope({ kind: 'auth', signature: nativeProvider.ed25519Sign(k1.seed, authSignedBytes(hash, ch.challenge, 'site-1')) }));
      expect(await dup.next()).to.include({ kind: 'error', code: 'NET_ERR_DUPLICATE_CONNECTION' });
      a.ws.close();
      // Random bytes.
      p = await rawPeer(f);
      p.ws.send(Buffer.from([0xde, 0xad, 0xbe, 0xef, 1, 2, 3]));
      const e = (await p.next()) as Extract<Envelope, { kind: 'error' }>;
      expect(e.kind).to.equal('error');
      expect(e.code).to.match(/^WIRE_ERR_/);
      // A text frame.
      p = await rawPeer(f);
      p.ws.send('hello');
      expect(await p.next()).to.include({ kind: 'error', code: 'NET_ERR_PROTOCOL' });
      // An oversized frame: cut off by the listener before it is parsed.
      p = await rawPeer(f);
      p.ws.send(Buffer.alloc(8 << 20));
      expect(await p.next()).to.deep.equal({ closed: true });
      // The coordinator still serves honest sites.
      const xs = inputs(3, 4, 32, 4);
      const session = f.coordinator.runSession();
      await Promise.all(xs.map((x, i) => site(f, i + 1, x)));
      const report = await session;
      expect(report.outcome).to.equal('completed');
      expect(report.sum).to.deep.equal(sumOf(xs, report.survivors, 32));
    } finally {
      await teardown(f);
    }
  });

  it('a site whose connection is refused for good gives up with the coordinator\'s code', async () => {
    const f = await fixture({ sites: 3, dim: 4 });
    try {
      const other = loadConsortium(join(f.dir, 'consortium.json'));
      // The same site, but a consortium file whose threshold differs: a different hash.
      const changed = { ...other, hash: new Uint8Array(32).fill(7) } as Consortium;
      const key = readSiteKey(join(f.dir, 'keys', 'site-1.key'));
      const err = await runSite({ consortium: changed, siteId: 'site-1', seed: key.seed, input: new Uint32Array(4), stateFile: join(f.dir, 's.json'), url: f.url, tls: { ca: f.ca } }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(NetError);
      expect((err as NetError).code).to.equal('NET_ERR_CONFIG_MISMATCH');
    } finally {
      await teardown(f);
    }
  });

  it('a connected site that stays silent is dropped when the round deadline passes (SILENT)', async () => {
    const f = await fixture({ sites: 4, dim: 8, roundMs: 600 });
    try {
      const xs = inputs(4, 8, 32, 5);
      const quiet = await partialSite(f, 4, xs[3]!, 0); // authenticates, never answers
      const session = f.coordinator.runSession();
      await Promise.all([1, 2, 3].map((i) => site(f, i, xs[i - 1]!)));
      const report = await session;
      quiet.link.close();
      expect(report.outcome).to.equal('completed');
      expect(report.dropped).to.deep.equal([{ site: 'site-4', round: 0, code: 'SILENT' }]);
      expect(report.sum).to.deep.equal(sumOf(xs, ['site-1', 'site-2', 'site-3'], 32));
    } finally {
      await teardown(f);
    }
  });

  it('a site that leaves after R1 (leaveAfterRound 1) is dropped in R2, its mask is rebuilt, and the sum over the others is exact', async () => {
    const f = await fixture({ sites: 5, dim: 16, roundMs: 20_000 });
    try {
      const xs = inputs(5, 16, 32, 8);
      const session = f.coordinator.runSession();
      const t0 = Date.now();
      const [results, left] = await Promise.all([
        Promise.all([1, 2, 3, 4].map((i) => site(f, i, xs[i - 1]!))),
        site(f, 5, xs[4]!, undefined, 1).then(() => 'completed', (e: unknown) => e),
      ]);
      const report = await session;
      // The site stops with its own code, after its shares went out in R1.
      expect(left).to.be.instanceOf(NetError);
      expect((left as NetError).code).to.equal('NET_ERR_LEFT');
      expect(report.outcome).to.equal('completed');
      expect(report.rounds.find((r) => r.round === 1)!.participants).to.include('site-5');
      expect(report.dropped).to.deep.equal([{ site: 'site-5', round: 2, code: 'SILENT' }]);
      expect(report.survivors).to.deep.equal(['site-1', 'site-2', 'site-3', 'site-4']);
      expect(report.sum).to.deep.equal(sumOf(xs, report.survivors, 32));
      for (const r of results) expect(r).to.include({ inSum: true, session: report.session });
      expect(results[0]!.dropped).to.deep.equal(['site-5']);
      // R2 closed on the disconnection, not at its 20 s deadline; the site released nothing.
      expect(Date.now() - t0).to.be.below(15_000);
      expect(existsSync(join(f.dir, 'site-5.state.json'))).to.equal(false);
    } finally {
      await teardown(f);
    }
  });

  it('a site that leaves after R3 (semi-honest: silent in R4, its unmasking shares never sent) stays in the sum and releases nothing', async () => {
    const f = await fixture({ sites: 5, dim: 16, roundMs: 20_000 });
    try {
      const xs = inputs(5, 16, 32, 9);
      const session = f.coordinator.runSession();
      const [, left] = await Promise.all([
        Promise.all([1, 2, 3, 4].map((i) => site(f, i, xs[i - 1]!))),
        site(f, 5, xs[4]!, undefined, 3).then(() => 'completed', (e: unknown) => e),
      ]);
      const report = await session;
      expect((left as NetError).code).to.equal('NET_ERR_LEFT');
      expect(report.outcome).to.equal('completed');
      expect(report.dropped).to.deep.equal([{ site: 'site-5', round: 4, code: 'SILENT' }]);
      expect(report.survivors).to.deep.equal(['site-1', 'site-2', 'site-3', 'site-4', 'site-5']);
      expect(report.sum).to.deep.equal(sumOf(xs, report.survivors, 32));
      expect(existsSync(join(f.dir, 'site-5.state.json'))).to.equal(false);
    } finally {
      await teardown(f);
    }
  });

  it('an input whose unmasking shares were sent is never used again when that session dies', async () => {
    const f = await fixture({ sites: 4, dim: 8, roundMs: 30_000 });
    try {
      const xs = inputs(4, 8, 32, 6);
      // site-4 takes part until its masked input, then stays silent: R4 waits for it.
      const stuck = await partialSite(f, 4, xs[3]!, 4);
      const session = f.coordinator.runSession();
      const honest = [1, 2, 3].map((i) => site(f, i, xs[i - 1]!).then(() => 'completed', (e: unknown) => e));
      // Each honest site records the release before its R4 message leaves.
      for (let i = 0; i < 400 && ![1, 2, 3].every((i) => existsSync(join(f.dir, `site-${i}.state.json`))); i++) await new Promise((r) => setTimeout(r, 25));
      expect([1, 2, 3].every((i) => existsSync(join(f.dir, `site-${i}.state.json`)))).to.equal(true);
      await f.coordinator.close(); // the session dies in R4
      const report = await session;
      expect(report.outcome).to.equal('aborted');
      for (const r of await Promise.all(honest)) {
        expect(r).to.be.instanceOf(NetError);
        expect((r as NetError).code).to.equal('NET_ERR_INPUT_RELEASED');
      }
      stuck.link.close();
      // The same input is refused at once, before any connection; a new input is fine locally.
      const again = await site(f, 1, xs[0]!).catch((e: unknown) => e);
      expect((again as NetError).code).to.equal('NET_ERR_INPUT_RELEASED');
      expect(f.store.session(report.session)!.state).to.equal('aborted');
    } finally {
      await teardown(f);
    }
  });

  it('a peer that never says hello is cut off at the handshake deadline; connections beyond the per-address rate are refused', async () => {
    const f = await fixture({ sites: 3, dim: 4, handshakeMs: 300, perMinute: 4 });
    try {
      const p = await rawPeer(f);
      expect(await p.next()).to.include({ kind: 'error', code: 'NET_ERR_HANDSHAKE_TIMEOUT' });
      const results: string[] = [];
      for (let i = 0; i < 5; i++) results.push(await rawPeer(f).then(() => 'open', (e: Error) => e.message));
      // 1 + 3 connections are allowed in the minute; the fifth upgrade is answered 429.
      expect(results.slice(0, 3)).to.deep.equal(['open', 'open', 'open']);
      expect(results[3]).to.match(/429/);
    } finally {
      await teardown(f);
    }
  });

  it('an authenticated peer that answers no ping is cut off at the idle deadline', async () => {
    const f = await fixture({ sites: 3, dim: 4, idleMs: 400 });
    try {
      const p = await rawPeer(f, { autoPong: false });
      const key = readSiteKey(join(f.dir, 'keys', 'site-1.key'));
      p.ws.send(encodeEnvelope({ kind: 'hello', siteId: 'site-1', consortium: f.consortium.hash }));
      const ch = (await p.next()) as Extract<Envelope, { kind: 'challenge' }>;
      p.ws.send(encodeEnvelope({ kind: 'auth', signature: nativeProvider.ed25519Sign(key.seed, authSignedBytes(f.consortium.hash, ch.challenge, 'site-1')) }));
      expect(await p.next()).to.include({ kind: 'welcome' });
      const t0 = Date.now();
      expect(await p.next()).to.include({ kind: 'error', code: 'NET_ERR_IDLE_TIMEOUT' });
      expect(Date.now() - t0).to.be.within(300, 3000);
      expect(f.coordinator.connectedSites()).to.not.include('site-1');
    } finally {
      await teardown(f);
    }
  });
});
