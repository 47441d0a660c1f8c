/**
 * What a site checks before it takes part: the session's parameters against
 * its own copy of the consortium configuration (a coordinator must not lower
 * the threshold or change the cohort), tested on the function the site uses
 * and through a hostile coordinator that speaks the wire protocol by hand.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { NetError } from '../../src/errors.js';
import { consortiumLimits, initConsortium, parseConsortium, type Consortium } from '../../src/federation/consortium.js';
import { readSiteKey } from '../../src/federation/keys.js';
import { runSite, startMismatches } from '../../src/federation/site.js';
import { decodeEnvelope, encodeEnvelope, type SessionStartBody } from '../../src/transport/envelope.js';

describe('federation/site: what a site checks', function () {
  this.timeout(30_000);
  const dir = mkdtempSync(join(tmpdir(), 'tally-site-'));
  let c: Consortium;
  before(async () => {
    const made = await initConsortium({ dir, sites: 5, dim: 4, graph: 'complete', port: 0 });
    const raw = JSON.parse(readFileSync(made.configFile, 'utf8'));
    raw.deadlines = { ...raw.deadlines, handshakeMs: 2000, reconnectMaxMs: 500 };
    c = parseConsortium(raw, dir, made.configFile);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const agreed = (): SessionStartBody => ({
    session: new Uint8Array(32).fill(1), clientIds: [1, 2, 3, 4, 5], threshold: c.config.aggregation.threshold, bits: 32, dim: 4,
    threat: 'semi-honest', graph: { kind: 'complete' }, roundDeadlinesMs: [1, 1, 1, 1, 1],
  });

  it('accepts the agreed parameters and names every difference', () => {
    expect(startMismatches(c, agreed())).to.deep.equal([]);
    expect(startMismatches(c, { ...agreed(), threshold: 2 })[0]).to.match(/threshold 2, agreed 3/);
    expect(startMismatches(c, { ...agreed(), clientIds: [1, 2, 3] })[0]).to.match(/cohort is not the roster/);
    expect(startMismatches(c, { ...agreed(), clientIds: [1, 2, 3, 4, 6] })[0]).to.match(/cohort is not the roster/);
    expect(startMismatches(c, { ...agreed(), bits: 16 })[0]).to.match(/bits 16, agreed 32/);
    expect(startMismatches(c, { ...agreed(), dim: 5 })[0]).to.match(/dim 5, agreed 4/);
    expect(startMismatches(c, { ...agreed(), threat: 'malicious' })[0]).to.match(/threat model malicious/);
    expect(startMismatches(c, { ...agreed(), graph: { kind: 'harary', degree: 2 } })[0]).to.match(/graph harary k=2, agreed complete/);
  });

  it('against a coordinator that lowers the threshold, the site sends nothing of the session', async () => {
    const key = readSiteKey(join(dir, 'keys', 'site-1.key'));
    const limits = consortiumLimits(c);
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const port = (wss.address() as { port: number }).port;
    const secagg: Uint8Array[] = [];
    wss.on('connection', (ws) => {
      ws.on('message', (d) => {
        const e = decodeEnvelope(new Uint8Array(d as Buffer), limits);
        if (e.kind === 'hello') ws.send(encodeEnvelope({ kind: 'challenge', challenge: new Uint8Array(32).fill(5) }));
        if (e.kind === 'auth') {
          ws.send(encodeEnvelope({ kind: 'welcome', siteId: 'site-1', clientId: 1 }));
          ws.send(encodeEnvelope({ kind: 'session-start', ...agreed(), threshold: 2 }));
          setTimeout(() => ws.close(), 300);
        }
        if (e.kind === 'secagg') secagg.push(e.payload);
      });
    });
    try {
      const stop = new AbortController();
      const logs: string[] = [];
      setTimeout(() => stop.abort(), 1500);
      const err = await runSite({
        consortium: c, siteId: 'site-1', seed: key.seed, input: new Uint32Array(4), stateFile: join(dir, 's1.json'), url: `ws://127.0.0.1:${port}/`,
        log: (l) => logs.push(l), signal: stop.signal,
      }).catch((e: unknown) => e);
      // The site refused every such session (it reconnects, and is offered it again) and sent no protocol message.
      expect(secagg).to.deep.equal([]);
      expect(logs.some((l) => /refused a session: threshold 2, agreed 3/.test(l)), logs.join("\n")).to.equal(true);
      expect((err as NetError).code, String(err)).to.equal("NET_ERR_SHUTDOWN");
    } finally {
      wss.close();
      for (const ws of wss.clients) ws.terminate();
    }
  });
});
