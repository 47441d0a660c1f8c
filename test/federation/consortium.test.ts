import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lowOrderLists } from '../../src/crypto/index.js';
import { TallyError, ValidationError } from '../../src/errors.js';
import {
  initConsortium, loadConsortium, parseConsortium, siteByClientId, siteById, type ConsortiumConfig,
  COMPLETE_GRAPH_MAX_SITES,
} from '../../src/federation/consortium.js';
import { generateSiteKey, readSiteKey } from '../../src/federation/keys.js';
import { chooseSessionParams } from '../../src/secagg/params.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const KEYS = Array.from({ length: 12 }, () => hex(generateSiteKey().publicKey));

/** A valid configuration of n sites (complete graph, t = 6 for n = 10). */
function sample(n = 10): Record<string, any> {
  return {
    version: 1,
    name: 'test consortium',
    coordinator: { host: '127.0.0.1', port: 7455, tls: { ca: 'tls/ca.crt', cert: 'tls/coordinator.crt', key: 'tls/coordinator.key', clientCertificates: false } },
    roster: KEYS.slice(0, n).map((publicKey, i) => ({ id: `site-${i + 1}`, name: `Site ${i + 1}`, publicKey })),
    aggregation: { threat: 'semi-honest', graph: 'complete', threshold: 6, bits: 32, dim: 10 },
    deadlines: { gatherMs: 10000, roundMs: 5000, handshakeMs: 5000, idleMs: 60000, reconnectMaxMs: 30000 },
    limits: { connectionsPerMinutePerIp: 600 },
  };
}

/** The message of the CONSORTIUM_ERR_BAD_CONFIG that parsing `json` throws. */
function badConfig(json: unknown): string {
  try {
    parseConsortium(json, '/tmp');
  } catch (err) {
    expect(err).to.be.instanceOf(ValidationError);
    expect((err as TallyError).code).to.equal('CONSORTIUM_ERR_BAD_CONFIG');
    return (err as Error).message;
  }
  throw new Error(`accepted: ${JSON.stringify(json).slice(0, 200)}`);
}

/** `sample()` changed by `f`. */
function changed(f: (c: Record<string, any>) => void, n = 10): Record<string, any> {
  const c = sample(n);
  f(c);
  return c;
}

describe('federation/consortium: consortium.json', () => {
  it('parses a valid configuration: roster order gives the client ids, paths resolve against the folder', () => {
    const c = parseConsortium(sample(), '/srv/tally');
    expect(c.file).to.equal(undefined);
    expect(c.dir).to.equal('/srv/tally');
    expect(c.sites.map((s) => s.clientId)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(c.sites[2]!.id).to.equal('site-3');
    expect(c.sites[2]!.name).to.equal('Site 3');
    expect(hex(c.sites[2]!.publicKey)).to.equal(KEYS[2]);
    expect(c.tls).to.deep.equal({ ca: '/srv/tally/tls/ca.crt', cert: '/srv/tally/tls/coordinator.crt', key: '/srv/tally/tls/coordinator.key', clientCertificates: false });
    expect(c.hash.length).to.equal(32);
    expect(siteById(c, 'site-7')!.clientId).to.equal(7);
    expect(siteById(c, 'site-70')).to.equal(undefined);
    expect(siteByClientId(c, 10)!.id).to.equal('site-10');
    for (const bad of [0, 11, -1, 1.5, NaN]) expect(siteByClientId(c, bad)).to.equal(undefined);
  });

  it('accepts what the rules allow: no TLS, absolute paths, complete with degree n−1, Harary, malicious', () => {
    expect(parseConsortium(changed((c) => { delete c.coordinator.tls; }), '/x').tls).to.equal(undefined);
    const abs = parseConsortium(changed((c) => { c.coordinator.tls = { ca: '/etc/ca.pem', cert: 'c.pem', key: 'k.pem' }; }), '/x');
    expect(abs.tls).to.deep.equal({ ca: '/etc/ca.pem', cert: '/x/c.pem', key: '/x/k.pem', clientCertificates: false });
    parseConsortium(changed((c) => { c.aggregation.degree = 9; }), '/x');
    parseConsortium(changed((c) => { Object.assign(c.aggregation, { graph: 'harary', degree: 4, threshold: 3 }); }), '/x');
    parseConsortium(changed((c) => { Object.assign(c.aggregation, { graph: 'harary', degree: 3, threshold: 2 }); }), '/x'); // odd k, even n
    parseConsortium(changed((c) => { Object.assign(c.aggregation, { graph: 'harary', degree: 8, threshold: 2 }); }, 9), '/x');
    parseConsortium(changed((c) => { Object.assign(c.aggregation, { threat: 'malicious', threshold: 7 }); }), '/x');
    parseConsortium(changed((c) => { Object.assign(c.aggregation, { threshold: 2, bits: 1, dim: 1 << 28 }); c.coordinator.port = 0; }, 3), '/x');
  });

  it('refuses each bad configuration with CONSORTIUM_ERR_BAD_CONFIG and a message that starts with the field', () => {
    const n = 10;
    const [lowOrder] = lowOrderLists().ed25519;
    const nonCanonical = 'ed' + 'ff'.repeat(30) + '7f';
    const cases: [string, unknown][] = [
      ['(top level)', null],
      ['(top level)', []],
      ['(top level)', 'consortium'],
      ['version', changed((c) => { c.version = 2; })],
      ['version', changed((c) => { delete c.version; })],
      ['name', changed((c) => { c.name = ''; })],
      ['name', changed((c) => { c.name = 5; })],
      ['extra', changed((c) => { c.extra = true; })],
      ['coordinator', changed((c) => { delete c.coordinator; })],
      ['coordinator.host', changed((c) => { c.coordinator.host = ''; })],
      ['coordinator.host', changed((c) => { c.coordinator.host = 'a b'; })],
      ['coordinator.host', changed((c) => { delete c.coordinator.host; })],
      ['coordinator.port', changed((c) => { c.coordinator.port = 65536; })],
      ['coordinator.port', changed((c) => { c.coordinator.port = -1; })],
      ['coordinator.port', changed((c) => { c.coordinator.port = '7455'; })],
      ['coordinator.port', changed((c) => { c.coordinator.port = 74.5; })],
      ['coordinator.url', changed((c) => { c.coordinator.url = 'wss://x'; })],
      ['coordinator.tls', changed((c) => { c.coordinator.tls = true; })],
      ['coordinator.tls.key', changed((c) => { delete c.coordinator.tls.key; })],
      ['coordinator.tls.ca', changed((c) => { c.coordinator.tls.ca = ''; })],
      ['coordinator.tls.clientCertificates', changed((c) => { c.coordinator.tls.clientCertificates = 'yes'; })],
      ['coordinator.tls.insecure', changed((c) => { c.coordinator.tls.insecure = true; })],
      ['roster', changed((c) => { c.roster = c.roster.slice(0, 2); })],
      ['roster', changed((c) => { c.roster = {}; })],
      ['roster', changed((c) => { c.roster = Array.from({ length: 100_001 }, (_, i) => ({ ...c.roster[0], id: `s${i}` })); })],
      ['roster[3]', changed((c) => { c.roster[3] = 'site-4'; })],
      ['roster[3].id', changed((c) => { c.roster[3].id = '-site'; })],
      ['roster[3].id', changed((c) => { c.roster[3].id = 'site 4'; })],
      ['roster[3].id', changed((c) => { c.roster[3].id = 'x'.repeat(65); })],
      ['roster[3].id', changed((c) => { c.roster[3].id = 'site-1'; })],
      ['roster[3].id', changed((c) => { delete c.roster[3].id; })],
      ['roster[3].name', changed((c) => { delete c.roster[3].name; })],
      ['roster[3].name', changed((c) => { c.roster[3].name = ''; })],
      ['roster[3].publicKey', changed((c) => { c.roster[3].publicKey = c.roster[0].publicKey; })],
      ['roster[3].publicKey', changed((c) => { c.roster[3].publicKey = c.roster[3].publicKey.toUpperCase(); })],
      ['roster[3].publicKey', changed((c) => { c.roster[3].publicKey = c.roster[3].publicKey.slice(2); })],
      ['roster[3].publicKey', changed((c) => { c.roster[3].publicKey = hex(lowOrder!); })],
      ['roster[3].publicKey', changed((c) => { c.roster[3].publicKey = nonCanonical; })],
      ['roster[3].role', changed((c) => { c.roster[3].role = 'admin'; })],
      ['aggregation', changed((c) => { delete c.aggregation; })],
      ['aggregation.threat', changed((c) => { c.aggregation.threat = 'byzantine'; })],
      ['aggregation.graph', changed((c) => { c.aggregation.graph = 'ring'; })],
      ['aggregation.graph', changed((c) => { delete c.aggregation.graph; })],
      ['aggregation.degree', changed((c) => { c.aggregation.graph = 'harary'; })],
      ['aggregation.degree', changed((c) => { Object.assign(c.aggregation, { graph: 'harary', degree: 1, threshold: 2 }); })],
      ['aggregation.degree', changed((c) => { Object.assign(c.aggregation, { graph: 'harary', degree: 10, threshold: 2 }); })],
      ['aggregation.degree', changed((c) => { Object.assign(c.aggregation, { graph: 'harary', degree: 3, threshold: 2 }); }, 9)],
      ['aggregation.degree', changed((c) => { Object.assign(c.aggregation, { graph: 'harary', degree: 200_000, threshold: 2 }); })],
      ['aggregation.degree', changed((c) => { Object.assign(c.aggregation, { graph: 'harary', degree: '4', threshold: 2 }); })],
      ['aggregation.degree', changed((c) => { c.aggregation.degree = 4; })],
      ['aggregation.threshold', changed((c) => { c.aggregation.threshold = 1; })],
      ['aggregation.threshold', changed((c) => { c.aggregation.threshold = 0; })],
      ['aggregation.threshold', changed((c) => { c.aggregation.threshold = 10; })],
      ['aggregation.threshold', changed((c) => { c.aggregation.threshold = 6.5; })],
      ['aggregation.threshold', changed((c) => { delete c.aggregation.threshold; })],
      ['aggregation.threshold', changed((c) => { Object.assign(c.aggregation, { graph: 'harary', degree: 4, threshold: 5 }); })],
      ['aggregation.threshold', changed((c) => { Object.assign(c.aggregation, { threat: 'malicious', threshold: 6 }); })],
      ['aggregation.threshold', changed((c) => { Object.assign(c.aggregation, { threat: 'malicious', graph: 'harary', degree: 2, threshold: 2 }); })],
      ['aggregation.threshold', changed((c) => { Object.assign(c.aggregation, { threat: 'malicious', threshold: 2 }); }, 3)],
      ['aggregation.bits', changed((c) => { c.aggregation.bits = 0; })],
      ['aggregation.bits', changed((c) => { c.aggregation.bits = 33; })],
      ['aggregation.dim', changed((c) => { c.aggregation.dim = 0; })],
      ['aggregation.dim', changed((c) => { c.aggregation.dim = 2 ** 28 + 1; })],
      ['aggregation.dim', changed((c) => { c.aggregation.dim = 1.5; })],
      ['aggregation.noise', changed((c) => { c.aggregation.noise = 1; })],
      ['deadlines', changed((c) => { delete c.deadlines; })],
      ['deadlines.roundMs', changed((c) => { delete c.deadlines.roundMs; })],
      ['deadlines.gatherMs', changed((c) => { c.deadlines.gatherMs = 0; })],
      ['deadlines.idleMs', changed((c) => { c.deadlines.idleMs = '60s'; })],
      ['deadlines.reconnectMaxMs', changed((c) => { c.deadlines.reconnectMaxMs = 86_400_001; })],
      ['deadlines.sessionMs', changed((c) => { c.deadlines.sessionMs = 1; })],
      ['limits', changed((c) => { delete c.limits; })],
      ['limits.connectionsPerMinutePerIp', changed((c) => { c.limits.connectionsPerMinutePerIp = 0; })],
      ['limits.bytesPerSecond', changed((c) => { c.limits.bytesPerSecond = 1; })],
    ];
    for (const [field, json] of cases) {
      const message = badConfig(json);
      expect(message.startsWith(`${field}: `), `${field}: got '${message}'`).to.equal(true);
    }
    // The threshold's bounds follow from the roster and the threat model.
    expect(badConfig(changed((c) => { c.aggregation.threshold = 1; }))).to.match(/^aggregation\.threshold: expected an integer in \[2, 9\], got 1\b/);
    expect(badConfig(changed((c) => { Object.assign(c.aggregation, { threat: 'malicious', threshold: 6 }); }))).to.match(/^aggregation\.threshold: expected an integer in \[7, 9\], got 6\b/);
    expect(badConfig(changed((c) => { Object.assign(c.aggregation, { graph: 'harary', degree: 3, threshold: 2 }); }, 9))).to.include('even');
    expect(n).to.equal(10);
  });

  it('keeps its own frozen copy of the configuration', () => {
    const json = sample();
    const c = parseConsortium(json, '/x');
    json.aggregation.threshold = 9;
    json.roster[0].id = 'changed';
    expect(c.config.aggregation.threshold).to.equal(6);
    expect(c.config.roster[0]!.id).to.equal('site-1');
    expect(Object.isFrozen(c.config.aggregation)).to.equal(true);
    expect(Object.isFrozen(c.sites[0])).to.equal(true);
  });

  describe('the consortium hash', () => {
    const base = parseConsortium(sample(), '/x').hash;

    it('is SHA-256 of the sorted-key JSON of version, name, roster and aggregation', () => {
      const s = sample();
      const sortKeys = (v: unknown): unknown => Array.isArray(v) ? v.map(sortKeys)
        : v !== null && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])])) : v;
      const text = JSON.stringify(sortKeys({ version: s.version, name: s.name, roster: s.roster, aggregation: s.aggregation }));
      expect(text).to.not.match(/[,:] |\n/);
      expect(hex(base)).to.equal(createHash('sha256').update(text, 'utf8').digest('hex'));
    });

    it('is the same for a copy with other deadlines, limits, address, paths and key order', () => {
      const other = changed((c) => {
        c.deadlines = { reconnectMaxMs: 1000, idleMs: 2000, handshakeMs: 3000, roundMs: 4000, gatherMs: 5000 };
        c.limits.connectionsPerMinutePerIp = 5;
        c.coordinator = { port: 9999, host: 'coordinator.example', tls: { key: '/k', cert: '/c', ca: '/ca', clientCertificates: true } };
        c.aggregation = { dim: 10, bits: 32, threshold: 6, graph: 'complete', threat: 'semi-honest' };
        c.roster = c.roster.map((s: { id: string; name: string; publicKey: string }) => ({ publicKey: s.publicKey, name: s.name, id: s.id }));
      });
      expect(hex(parseConsortium(other, '/elsewhere', '/elsewhere/c.json').hash)).to.equal(hex(base));
    });

    it('changes with any roster key, id, name or order, the threshold, any parameter, or the name', () => {
      const variants = [
        changed((c) => { c.roster[4].publicKey = KEYS[11]; }),
        changed((c) => { c.roster[4].id = 'site-x'; }),
        changed((c) => { c.roster[4].name = 'Site five'; }),
        changed((c) => { [c.roster[0], c.roster[1]] = [c.roster[1], c.roster[0]]; }),
        changed((c) => { c.aggregation.threshold = 7; }),
        changed((c) => { c.aggregation.dim = 11; }),
        changed((c) => { c.aggregation.bits = 31; }),
        changed((c) => { c.aggregation.degree = 9; }),
        changed((c) => { c.name = 'another consortium'; }),
        sample(11),
      ];
      const hashes = new Set([hex(base), ...variants.map((v) => hex(parseConsortium(v, '/x').hash))]);
      expect(hashes.size).to.equal(variants.length + 1);
    });
  });

  describe('loadConsortium', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-consortium-'));

    it('reads a file, resolving relative paths against its folder', () => {
      const file = join(dir, 'c.json');
      writeFileSync(file, JSON.stringify(sample(), null, 2));
      const c = loadConsortium(file);
      expect(c.file).to.equal(file);
      expect(c.dir).to.equal(dir);
      expect(c.tls!.ca).to.equal(join(dir, 'tls', 'ca.crt'));
      expect(hex(c.hash)).to.equal(hex(parseConsortium(sample(), '/x').hash));
    });

    it('refuses a file that is not JSON with CONSORTIUM_ERR_BAD_CONFIG, and passes a missing file through as ENOENT', () => {
      const file = join(dir, 'broken.json');
      writeFileSync(file, '{"version": 1,');
      expect(() => loadConsortium(file)).to.throw(ValidationError, /not valid JSON/).with.property('code', 'CONSORTIUM_ERR_BAD_CONFIG');
      try {
        loadConsortium(join(dir, 'absent.json'));
        expect.fail('expected an error');
      } catch (err) {
        expect(err).to.not.be.instanceOf(TallyError);
        expect((err as NodeJS.ErrnoException).code).to.equal('ENOENT');
      }
    });
  });

  describe('initConsortium', () => {
    const root = mkdtempSync(join(tmpdir(), 'tally-init-'));

    it('writes a loadable consortium with the loopback defaults and the parameter rule of tally simulate', async () => {
      const dir = join(root, 'a');
      const r = await initConsortium({ dir, sites: 6 });
      expect(r.configFile).to.equal(join(dir, 'consortium.json'));
      expect(r.keyFiles).to.deep.equal([1, 2, 3, 4, 5, 6].map((i) => join(dir, 'keys', `site-${i}.key`)));
      expect(r.tlsFiles).to.deep.equal(['ca.crt', 'ca.key', 'coordinator.crt', 'coordinator.key'].map((f) => join(dir, 'tls', f)));
      for (const f of [...r.keyFiles, ...r.tlsFiles]) expect(existsSync(f), f).to.equal(true);
      if (process.platform !== 'win32') for (const f of [...r.keyFiles, join(dir, 'tls', 'ca.key'), join(dir, 'tls', 'coordinator.key')]) expect(statSync(f).mode & 0o777, f).to.equal(0o600);
      const c = loadConsortium(r.configFile);
      expect(hex(c.hash)).to.equal(hex(r.consortium.hash));
      const cfg: ConsortiumConfig = c.config;
      expect(cfg.name).to.equal('tally consortium');
      // The coordinator's audit key: its private half in keys/, mode 0600; the public half in the file.
      expect(r.auditKeyFile).to.equal(join(dir, 'keys', 'coordinator-audit.key'));
      if (process.platform !== 'win32') expect(statSync(r.auditKeyFile).mode & 0o777).to.equal(0o600);
      expect(cfg.coordinator).to.deep.equal({
        host: '127.0.0.1', port: 7455, tls: { ca: 'tls/ca.crt', cert: 'tls/coordinator.crt', key: 'tls/coordinator.key', clientCertificates: false },
        auditKey: hex(readSiteKey(r.auditKeyFile).publicKey),
      });
      expect(cfg.deadlines).to.deep.equal({ gatherMs: 10000, roundMs: 5000, handshakeMs: 5000, idleMs: 60000, reconnectMaxMs: 30000 });
      expect(cfg.limits).to.deep.equal({ connectionsPerMinutePerIp: 600 });
      // Up to COMPLETE_GRAPH_MAX_SITES sites the default is the complete graph.
      const p = chooseSessionParams({ n: 6, graph: 'complete' });
      expect(cfg.aggregation).to.deep.equal({ threat: 'semi-honest', graph: 'complete', threshold: p.t, bits: 32, dim: 10 });
      c.sites.forEach((s, i) => expect(hex(readSiteKey(r.keyFiles[i]!).publicKey)).to.equal(hex(s.publicKey)));
    });

    it('above COMPLETE_GRAPH_MAX_SITES sites, takes the parameter finder\'s graph and threshold', async () => {
      const n = COMPLETE_GRAPH_MAX_SITES + 20;
      const r = await initConsortium({ dir: join(root, 'large'), sites: n });
      const p = chooseSessionParams({ n });
      expect(p.graph).to.equal('harary');
      expect(r.consortium.config.aggregation).to.deep.equal({ threat: 'semi-honest', graph: 'harary', degree: p.k, threshold: p.t, bits: 32, dim: 10 });
    });

    it('takes explicit parameters, and with mtls writes and requires site certificates', async () => {
      const dir = join(root, 'b');
      const r = await initConsortium({ dir, sites: 8, host: 'localhost', port: 9000, dim: 100, bits: 16, graph: 'harary', degree: 4, threat: 'malicious', mtls: true, name: 'trial' });
      const c = r.consortium.config;
      expect(c.aggregation).to.deep.equal({ threat: 'malicious', graph: 'harary', degree: 4, threshold: 4, bits: 16, dim: 100 });
      expect(c.coordinator.host).to.equal('localhost');
      expect(c.coordinator.port).to.equal(9000);
      expect(c.name).to.equal('trial');
      expect(r.consortium.tls!.clientCertificates).to.equal(true);
      expect(r.tlsFiles.length).to.equal(4 + 16);
      for (let i = 1; i <= 8; i++) expect(existsSync(join(dir, 'tls', 'sites', `site-${i}.crt`))).to.equal(true);
      const complete = await initConsortium({ dir: join(root, 'c'), sites: 5, graph: 'complete', threshold: 2 });
      expect(complete.consortium.config.aggregation).to.deep.equal({ threat: 'semi-honest', graph: 'complete', threshold: 2, bits: 32, dim: 10 });
    });

    it('refuses to overwrite without force (CONSORTIUM_ERR_EXISTS) and replaces the consortium with it', async () => {
      const dir = join(root, 'd');
      const first = await initConsortium({ dir, sites: 4 });
      const text = readFileSync(first.configFile, 'utf8');
      for (const o of [{ dir, sites: 4 }, { dir, sites: 5, mtls: true }]) {
        const err = await initConsortium(o).then(() => undefined, (e: unknown) => e);
        expect(err).to.be.instanceOf(ValidationError).with.property('code', 'CONSORTIUM_ERR_EXISTS');
      }
      expect(readFileSync(first.configFile, 'utf8')).to.equal(text);
      const second = await initConsortium({ dir, sites: 4, force: true });
      expect(hex(second.consortium.hash)).to.not.equal(hex(first.consortium.hash));
      expect(hex(readSiteKey(second.keyFiles[0]!).publicKey)).to.equal(hex(second.consortium.sites[0]!.publicKey));
    });

    it('refuses a stray key file without force, even with no consortium.json, and writes nothing', async () => {
      const dir = join(root, 'e');
      await initConsortium({ dir, sites: 3 });
      const { rmSync } = await import('node:fs');
      rmSync(join(dir, 'consortium.json'));
      rmSync(join(dir, 'tls'), { recursive: true });
      const err = await initConsortium({ dir, sites: 3 }).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(ValidationError).with.property('code', 'CONSORTIUM_ERR_EXISTS');
      expect((err as Error).message).to.include('site-1.key');
      expect(existsSync(join(dir, 'tls'))).to.equal(false);
    });

    it('checks its options before writing anything, naming the field', async () => {
      const cases: [Parameters<typeof initConsortium>[0], RegExp][] = [
        [{ dir: join(root, 'f1'), sites: 2 }, /^sites: /],
        [{ dir: join(root, 'f2'), sites: 4.5 }, /^sites: /],
        [{ dir: join(root, 'f3'), sites: 5, threshold: 1, graph: 'complete' }, /^aggregation\.threshold: expected an integer in \[2, 4\]/],
        [{ dir: join(root, 'f4'), sites: 5, graph: 'harary', degree: 3 }, /^aggregation\.degree: /],
        [{ dir: join(root, 'f5'), sites: 5, dim: 0 }, /^aggregation\.dim: /],
        [{ dir: join(root, 'f6'), sites: 5, port: 70000 }, /^coordinator\.port: /],
        [{ dir: join(root, 'f7'), sites: 3, threat: 'malicious' }, /^aggregation/],
      ];
      for (const [o, re] of cases) {
        const err = await initConsortium(o).then(() => undefined, (e: unknown) => e);
        expect(err, JSON.stringify(o)).to.be.instanceOf(ValidationError).with.property('code', 'CONSORTIUM_ERR_BAD_CONFIG');
        expect((err as Error).message).to.match(re);
        expect(existsSync(o.dir), o.dir).to.equal(false);
      }
    });
  });
});
