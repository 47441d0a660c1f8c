/**
 * A homomorphic consortium in one process (coordinator and three sites over
 * plain WebSocket on loopback), with a relay between them that spoils the
 * sealed sum of the result (one bit flipped). Every site refuses that
 * result instead of reporting a wrong sum: the session ends without one for
 * it, its input counts as released (it sent its unmasking shares), and its
 * audit log records the aborted session.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { openSiteLog } from '../../src/audit/bundle.js';
import { NetError } from '../../src/errors.js';
import { consortiumLimits, initConsortium, parseConsortium, type Consortium } from '../../src/federation/consortium.js';
import { Coordinator } from '../../src/federation/coordinator.js';
import { acceptConsortiumKey, dealConsortiumKey } from '../../src/federation/he-keys.js';
import { readSiteKey } from '../../src/federation/keys.js';
import { runSite } from '../../src/federation/site.js';
import { CoordinatorStore } from '../../src/federation/store.js';
import { decodeEnvelope, encodeEnvelope } from '../../src/transport/envelope.js';

describe('federation/site: a homomorphic site refuses a spoiled sealed sum', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), 'tally-he-site-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('every site ends the session without a result, logs why, and keeps its input released', async () => {
    const made = await initConsortium({ dir, sites: 3, dim: 8, bits: 8, graph: 'complete', port: 0, aggregator: 'he+masks' });
    const raw = JSON.parse(readFileSync(made.configFile, 'utf8'));
    raw.deadlines = { ...raw.deadlines, gatherMs: 3000, roundMs: 3000, reconnectMaxMs: 500 };
    const c: Consortium = parseConsortium(raw, dir, made.configFile);
    const keys = [1, 2, 3].map((i) => readSiteKey(join(dir, 'keys', `site-${i}.key`)));
    const dealt = await dealConsortiumKey(c, c.sites[0]!, keys[0]!.seed);
    const heKeys = [dealt.key, ...(await Promise.all([1, 2].map((i) => acceptConsortiumKey(c, c.sites[i]!, keys[i]!.seed, dealt.offer))))];

    const store = CoordinatorStore.open(join(dir, 'coordinator.sqlite'));
    const coordinator = await Coordinator.start({ consortium: c, store, host: '127.0.0.1', port: 0, heKeyId: dealt.key.keyId });
    // The relay: frames pass unchanged, but for the result, whose sealed sum gets one bit flipped inside a ciphertext.
    const limits = consortiumLimits(c);
    const relay = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    await new Promise<void>((r) => relay.once('listening', () => r()));
    let spoiled = 0;
    relay.on('connection', (site) => {
      const up = new WebSocket(`ws://127.0.0.1:${coordinator.port}/`, { perMessageDeflate: false });
      const held: Buffer[] = [];
      up.on('open', () => { for (const m of held.splice(0)) up.send(m); });
      site.on('message', (d) => { if (up.readyState === WebSocket.OPEN) up.send(d as Buffer); else held.push(d as Buffer); });
      up.on('message', (d) => {
        let bytes: Uint8Array = new Uint8Array(d as Buffer);
        const e = decodeEnvelope(bytes, limits);
        if (e.kind === 'result' && e.sealedSum !== undefined) {
          const sealed = e.sealedSum.slice();
          sealed[sealed.length - 1000]! ^= 1;
          bytes = encodeEnvelope({ ...e, sealedSum: sealed });
          spoiled++;
        }
        site.send(bytes);
      });
      site.on('close', () => up.close());
      up.on('close', () => site.close());
    });
    const url = `ws://127.0.0.1:${(relay.address() as { port: number }).port}/`;
    try {
      const logs: string[][] = [[], [], []];
      const sites = [0, 1, 2].map((i) => runSite({
        consortium: c, siteId: `site-${i + 1}`, seed: keys[i]!.seed, input: Uint32Array.from({ length: 8 }, (_, j) => (i * 8 + j) % 256),
        stateFile: join(dir, `s${i + 1}.json`), url, heKey: heKeys[i]!, log: (l) => logs[i]!.push(l),
        audit: openSiteLog(join(dir, `site-${i + 1}.jsonl`), { seed: keys[i]!.seed, site: `site-${i + 1}` }),
      }).then(() => undefined, (e: unknown) => e));
      const report = await coordinator.runSession();
      expect(report.outcome).to.equal('completed');
      expect(report.sum).to.equal(undefined); // the coordinator holds no sum
      const errs = await Promise.all(sites);
      expect(spoiled).to.equal(3);
      for (let i = 0; i < 3; i++) {
        expect((errs[i] as NetError).code, `site-${i + 1}: ${String(errs[i])}`).to.equal('NET_ERR_INPUT_RELEASED');
        expect(logs[i]!.some((l) => /sealed sum of session .* is refused: it does not decrypt/.test(l)), logs[i]!.join('\n')).to.equal(true);
        const ends = readFileSync(join(dir, `site-${i + 1}.jsonl`), 'utf8').split('\n').filter((l) => l.includes('"kind":"site-result"'));
        expect(ends).to.have.length(1);
        expect(ends[0]).to.match(/"result":"aborted"/).and.match(/"code":"HE_ERR_DECRYPT"/);
      }
    } finally {
      relay.close();
      for (const s of relay.clients) s.terminate();
      await coordinator.close();
      store.close();
    }
  });
});
