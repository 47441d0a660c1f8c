/**
 * A homomorphic consortium (he-sum-v1, `aggregation.aggregator` he+masks)
 * as separate processes: `consortium init --aggregator he+masks`, the key
 * ceremony run by the sites (`tally he deal` / `tally he accept`), then
 * `tally serve` and the sites' `tally join`. The sites decrypt the exact sum
 * of the survivors; the coordinator's result and store hold no sum; the
 * audit bundle and the sites' logs verify; a tampered offer is refused.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConsortium } from '../../src/federation/consortium.js';
import { readSiteKey, siteX25519 } from '../../src/federation/keys.js';
import { CoordinatorStore } from '../../src/federation/store.js';
import { freePort, MAIN, tally, type Proc } from './_proc.js';

const run = (args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });

describe('cli: a homomorphic consortium (he+masks) over the network', function () {
  this.timeout(120_000);
  const procs: Proc[] = [];
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'tally-he-net-')); });
  after(() => {
    for (const p of procs) if (p.p.exitCode === null) p.p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('the sites run the key ceremony, the coordinator adds ciphertexts it cannot read, and every site decrypts the exact sum of the survivors', async () => {
    const port = await freePort();
    const n = 5, dim = 300, bits = 16;
    let r = run(['consortium', 'init', '--dir', dir, '--sites', String(n), '--dim', String(dim), '--bits', String(bits), '--port', String(port), '--graph', 'complete', '--aggregator', 'he+masks']);
    expect(r.status, r.stderr).to.equal(0);
    const config = join(dir, 'consortium.json');
    const doc = JSON.parse(readFileSync(config, 'utf8'));
    doc.deadlines = { ...doc.deadlines, gatherMs: 4000, roundMs: 4000 };
    writeFileSync(config, JSON.stringify(doc, null, 2));
    const c = loadConsortium(config);
    expect(c.he?.mode).to.equal('he+masks');
    // Each roster x25519 key is the one the site derives from its own seed.
    for (let i = 1; i <= n; i++) {
      expect(doc.roster[i - 1].x25519).to.equal(Buffer.from(siteX25519(readSiteKey(join(dir, 'keys', `site-${i}.key`)).seed).publicKey).toString('hex'));
    }

    // The ceremony: site-1 deals, the others accept; a tampered offer is refused with a typed error and exit 1.
    r = run(['he', 'deal', '--config', config, '--key', join(dir, 'keys', 'site-1.key')]);
    expect(r.status, r.stderr).to.equal(0);
    const offerFile = join(dir, 'he-offer-1.bin');
    const offer = readFileSync(offerFile);
    const bad = Buffer.from(offer);
    bad[100] ^= 1; // inside the signed header
    writeFileSync(join(dir, 'bad-offer.bin'), bad);
    r = run(['he', 'accept', '--config', config, '--key', join(dir, 'keys', 'site-2.key'), '--offer', join(dir, 'bad-offer.bin'), '--he-key', join(dir, 'x.json')]);
    expect(r.status, r.stdout + r.stderr).to.equal(1);
    expect(r.stderr).to.match(/HE_ERR_BAD_SIGNATURE/);
    for (let i = 2; i <= n; i++) {
      r = run(['he', 'accept', '--config', config, '--key', join(dir, 'keys', `site-${i}.key`), '--offer', offerFile]);
      expect(r.status, r.stderr).to.equal(0);
    }
    const keyIds = [1, 2, 3, 4, 5].map((i) => JSON.parse(readFileSync(join(dir, 'keys', `site-${i}.key.he.json`), 'utf8')).keyId);
    expect(new Set(keyIds).size).to.equal(1);

    // A session with site-5 absent: the sum of sites 1–4.
    const vs = Array.from({ length: n }, (_, i) => Array.from({ length: dim }, (_, j) => (i * 7919 + j * 104729) % 2 ** bits));
    vs.forEach((v, i) => writeFileSync(join(dir, `v${i + 1}.json`), JSON.stringify(v)));
    const serve = tally(['serve', '--config', config, '--once', '--out', join(dir, 'result.json'), '--audit', join(dir, 'audit')]);
    procs.push(serve);
    await serve.waitFor(/listening on wss:/);
    const sites = [1, 2, 3, 4].map((i) => tally(['join', '--config', config, '--key', join(dir, 'keys', `site-${i}.key`), '--vector', join(dir, `v${i}.json`),
      '--out', join(dir, `r${i}.json`), '--audit-log', join(dir, `site-${i}.jsonl`)]));
    procs.push(...sites);
    expect(await serve.exit, serve.err).to.equal(0);
    for (const s of sites) expect(await s.exit, s.err).to.equal(0);

    const result = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8'));
    expect(result.outcome).to.equal('completed');
    expect(result.survivors).to.deep.equal(['site-1', 'site-2', 'site-3', 'site-4']);
    expect(result).to.not.have.property('sum'); // the coordinator never holds it
    const expected = vs[0]!.map((_, j) => vs[0]![j]! + vs[1]![j]! + vs[2]![j]! + vs[3]![j]!);
    for (let i = 1; i <= 4; i++) {
      const mine = JSON.parse(readFileSync(join(dir, `r${i}.json`), 'utf8'));
      expect(mine.inSum).to.equal(true);
      expect(mine.sum, `site-${i}`).to.deep.equal(expected);
    }
    const store = CoordinatorStore.open(join(dir, 'state', 'coordinator.sqlite'));
    try {
      const [s] = store.sessions({ state: 'completed' });
      expect(s!.sum).to.have.length(0);
    } finally {
      store.close();
    }

    // The audit bundle, with the four sites' logs, verifies; its outcome records the sealed sum's digest.
    const logs = [1, 2, 3, 4].flatMap((i) => ['--site-log', join(dir, `site-${i}.jsonl`)]);
    r = run(['audit', 'verify', join(dir, 'audit'), ...logs, '--config', config]);
    expect(r.status, r.stdout + r.stderr).to.equal(0);
    expect(readFileSync(join(dir, 'audit', 'transcript.jsonl'), 'utf8')).to.match(/"kind":"outcome".*"sealed":true/);
    // The privacy officer's report says the coordinator never held the sum.
    r = run(['audit', 'report', join(dir, 'audit'), '--out', join(dir, 'report.html')]);
    expect(r.status, r.stderr).to.equal(0);
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).to.match(/under homomorphic encryption \(<code>he\+masks<\/code>/);
  });
});
