import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import tls from 'node:tls';
import { ValidationError } from '../../src/errors.js';
import { generateTlsMaterial, type TlsFiles } from '../../src/transport/tls-material.js';

const read = (f: string) => readFileSync(f);

/** A TLS server on 127.0.0.1:0 that greets every client it accepts; closed by `close()`. */
async function server(opts: tls.TlsOptions): Promise<{ port: number; peers: string[]; close(): Promise<void> }> {
  const peers: string[] = [];
  const srv = tls.createServer(opts, (s) => {
    const cert = s.getPeerCertificate();
    peers.push(cert && cert.subject ? String(cert.subject.CN) : '');
    s.end('hello');
  });
  srv.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: (srv.address() as AddressInfo).port, peers,
    close: () => new Promise<void>((resolve) => srv.close(() => resolve())),
  };
}

/** Connects and reads the greeting: 'ok', or the error code that ended the attempt. */
function attempt(opts: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    let done = false;
    const finish = (v: string) => { if (!done) { done = true; s.destroy(); resolve(v); } };
    const s = tls.connect({ host: '127.0.0.1', ...opts });
    s.setTimeout(10_000, () => finish('timeout'));
    s.on('data', (d: Buffer) => { data += d.toString(); if (data === 'hello') finish('ok'); });
    s.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
    s.on('close', () => finish(data === 'hello' ? 'ok' : 'closed'));
  });
}

describe('transport/tls-material: a consortium CA and its certificates', () => {
  const root = mkdtempSync(join(tmpdir(), 'tally-tls-'));
  let m: TlsFiles;
  let other: TlsFiles;

  before(async () => {
    m = await generateTlsMaterial({ dir: join(root, 'a'), hosts: ['coordinator.test', '10.1.2.3'], siteIds: ['site-1', 'site-2'] });
    other = await generateTlsMaterial({ dir: join(root, 'b'), hosts: ['127.0.0.1'], siteIds: ['site-1'] });
  });

  it('writes PEM certificates and PKCS#8 private keys of mode 0600', () => {
    const dir = join(root, 'a');
    expect(m).to.deep.equal({
      ca: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key'), cert: join(dir, 'coordinator.crt'), key: join(dir, 'coordinator.key'),
      sites: ['site-1', 'site-2'].map((id) => ({ id, cert: join(dir, 'sites', `${id}.crt`), key: join(dir, 'sites', `${id}.key`) })),
    });
    for (const f of [m.ca, m.cert, ...m.sites!.map((s) => s.cert)]) expect(read(f).toString()).to.match(/^-----BEGIN CERTIFICATE-----\n/);
    for (const f of [m.caKey, m.key, ...m.sites!.map((s) => s.key)]) {
      expect(read(f).toString()).to.match(/^-----BEGIN PRIVATE KEY-----\n/);
      if (process.platform !== 'win32') expect(statSync(f).mode & 0o777, f).to.equal(0o600);
    }
  });

  it('makes a CA and certificates with the documented extensions (ECDSA P-256, SHA-256)', async () => {
    const ca = new X509Certificate(read(m.ca));
    const coord = new X509Certificate(read(m.cert));
    const site = new X509Certificate(read(m.sites![0]!.cert));
    expect(ca.ca).to.equal(true);
    expect(ca.subject).to.equal('CN=tally consortium CA');
    expect(ca.publicKey.asymmetricKeyDetails).to.deep.include({ namedCurve: 'prime256v1' });
    for (const c of [coord, site]) {
      expect(c.ca).to.equal(false);
      expect(c.checkIssued(ca)).to.equal(true);
      expect(c.verify(ca.publicKey)).to.equal(true);
      expect(c.verify(new X509Certificate(read(other.ca)).publicKey)).to.equal(false);
    }
    expect(coord.subject).to.equal('CN=coordinator.test');
    expect(coord.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.1']); // extended key usage: serverAuth
    expect(coord.subjectAltName!.split(', ')).to.deep.equal(['DNS:coordinator.test', 'IP Address:10.1.2.3', 'DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1']);
    expect(site.subject).to.equal('CN=site-1');
    expect(site.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.2']); // clientAuth
    // Criticality and key-usage bits, read with the library that wrote them.
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    const caCert = new x509.X509Certificate(read(m.ca).toString());
    const bc = caCert.getExtension(x509.BasicConstraintsExtension)!;
    expect([bc.ca, bc.critical]).to.deep.equal([true, true]);
    const ku = caCert.getExtension(x509.KeyUsagesExtension)!;
    expect([ku.usages, ku.critical]).to.deep.equal([x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true]);
    expect(caCert.signatureAlgorithm).to.deep.include({ name: 'ECDSA', hash: { name: 'SHA-256' } });
    const leafBc = new x509.X509Certificate(read(m.cert).toString()).getExtension(x509.BasicConstraintsExtension)!;
    expect([leafBc.ca, leafBc.critical]).to.deep.equal([false, true]);
  });

  it("is accepted by node's tls: a client trusting the CA verifies the coordinator by address or name", async () => {
    const s = await server({ cert: read(m.cert), key: read(m.key) });
    try {
      expect(await attempt({ port: s.port, ca: read(m.ca) })).to.equal('ok');
      for (const servername of ['localhost', 'coordinator.test']) expect(await attempt({ port: s.port, ca: read(m.ca), servername }), servername).to.equal('ok');
      // A name the certificate does not carry, a client trusting another CA, and one trusting nothing are refused.
      expect(await attempt({ port: s.port, ca: read(m.ca), servername: 'elsewhere.test' })).to.equal('ERR_TLS_CERT_ALTNAME_INVALID');
      expect(await attempt({ port: s.port, ca: read(other.ca) })).to.be.oneOf(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY']);
      expect(await attempt({ port: s.port })).to.be.oneOf(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN']);
    } finally {
      await s.close();
    }
  });

  it('supports mutual TLS: a site certificate of the CA connects, no certificate or another CA\'s is refused', async () => {
    const s = await server({ cert: read(m.cert), key: read(m.key), ca: read(m.ca), requestCert: true, rejectUnauthorized: true });
    try {
      const site = m.sites![1]!;
      expect(await attempt({ port: s.port, ca: read(m.ca), cert: read(site.cert), key: read(site.key) })).to.equal('ok');
      expect(s.peers).to.deep.equal(['site-2']);
      expect(await attempt({ port: s.port, ca: read(m.ca) })).to.not.equal('ok');
      const stranger = other.sites![0]!;
      expect(await attempt({ port: s.port, ca: read(m.ca), cert: read(stranger.cert), key: read(stranger.key) })).to.not.equal('ok');
      // The coordinator's own server certificate is not a client certificate (serverAuth only).
      expect(await attempt({ port: s.port, ca: read(m.ca), cert: read(m.cert), key: read(m.key) })).to.not.equal('ok');
      expect(s.peers).to.deep.equal(['site-2']);
    } finally {
      await s.close();
    }
  });

  it('never overwrites a file (CONSORTIUM_ERR_EXISTS) and checks its inputs', async () => {
    const before = read(m.ca).toString();
    const err = await generateTlsMaterial({ dir: join(root, 'a'), hosts: ['x.test'] }).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(ValidationError).with.property('code', 'CONSORTIUM_ERR_EXISTS');
    expect(read(m.ca).toString()).to.equal(before);
    const bad: Parameters<typeof generateTlsMaterial>[0][] = [
      { dir: join(root, 'c1'), hosts: [] },
      { dir: join(root, 'c2'), hosts: ['a b'] },
      { dir: join(root, 'c3'), hosts: ['h'], siteIds: ['-x'] },
      { dir: join(root, 'c4'), hosts: ['h'], siteIds: ['a', 'a'] },
      { dir: join(root, 'c5'), hosts: ['h'], days: 0 },
    ];
    for (const o of bad) {
      const e = await generateTlsMaterial(o).then(() => undefined, (x: unknown) => x);
      expect(e, JSON.stringify(o)).to.be.instanceOf(ValidationError).with.property('code', 'CONSORTIUM_ERR_BAD_CONFIG');
      expect(existsSync(o.dir)).to.equal(false);
    }
  });

  it('loads the certificate library only when certificates are made', () => {
    const consortium = fileURLToPath(new URL('../../src/federation/consortium.js', import.meta.url));
    const keygen = fileURLToPath(new URL('../../src/federation/keys.js', import.meta.url));
    const script = `
      const c = await import(${JSON.stringify(consortium)});
      await import(${JSON.stringify(keygen)});
      try { c.loadConsortium('/nonexistent/consortium.json'); } catch {}
      console.log(typeof Reflect.getMetadata);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal('undefined');
  });
});
