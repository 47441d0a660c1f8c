/**
 * TLS material for a consortium: a private certificate authority, the
 * coordinator's server certificate and, for mutual TLS, one client
 * certificate per site. ECDSA P-256 keys and SHA-256 signatures, made with
 * @peculiar/x509 over node's WebCrypto. Certificates are PEM; private keys
 * are PKCS#8 PEM files of mode 0600. Every file is created exclusively:
 * nothing is ever overwritten.
 *
 * Files, under `dir`: `ca.crt`, `ca.key`, `coordinator.crt`,
 * `coordinator.key`, and `sites/<id>.crt`, `sites/<id>.key` per site.
 *
 * @peculiar/x509 and reflect-metadata are loaded on the first call, so
 * nothing else pays for them.
 */
import { KeyObject, randomBytes, webcrypto } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import type * as X509 from '@peculiar/x509';
import { ValidationError } from '../errors.js';

/** Absolute paths of the files {@link generateTlsMaterial} wrote. */
export interface TlsFiles {
  ca: string;
  caKey: string;
  cert: string;
  key: string;
  sites?: { id: string; cert: string; key: string }[];
}

/** Names every coordinator certificate carries, so that loopback trials work whatever host is configured. */
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];
const DEFAULT_DAYS = 825;
const SITE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ECDSA = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

let x509: Promise<typeof X509> | undefined;
/** @peculiar/x509 with node's WebCrypto as its provider (it needs reflect-metadata loaded first). */
function loadX509(): Promise<typeof X509> {
  x509 ??= (async () => {
    await import('reflect-metadata');
    const lib = await import('@peculiar/x509');
    lib.cryptoProvider.set(webcrypto as never);
    return lib;
  })();
  return x509;
}

/**
 * Creates a consortium CA and the certificates signed by it, in `dir`
 * (created if missing).
 *
 * - CA: `CN=tally consortium CA`, basicConstraints CA:true (path length 0)
 *   and keyUsage keyCertSign | cRLSign, both critical.
 * - Coordinator: `CN=<hosts[0]>`, not a CA, keyUsage digitalSignature,
 *   extendedKeyUsage serverAuth, subjectAltName with every host (an IP entry
 *   for an address, a DNS entry otherwise) plus localhost, 127.0.0.1 and ::1.
 * - Each site (`siteIds`): `CN=<id>`, not a CA, keyUsage digitalSignature,
 *   extendedKeyUsage clientAuth.
 *
 * Validity starts an hour ago (clock skew) and lasts `days` (default 825).
 * @throws ValidationError `CONSORTIUM_ERR_BAD_CONFIG` on a bad host, site id or `days`; `CONSORTIUM_ERR_EXISTS` when a file to be written exists
 */
export async function generateTlsMaterial(o: { dir: string; hosts: string[]; siteIds?: string[]; days?: number }): Promise<TlsFiles> {
  const days = o.days ?? DEFAULT_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > 36500) throw new ValidationError('CONSORTIUM_ERR_BAD_CONFIG', `days: expected an integer in [1, 36500], got ${String(days)}`);
  if (!Array.isArray(o.hosts) || o.hosts.length === 0) throw new ValidationError('CONSORTIUM_ERR_BAD_CONFIG', 'hosts: expected at least one host name or address');
  for (const h of o.hosts) {
    if (typeof h !== 'string' || h.length === 0 || h.length > 253 || /[\s,/]/.test(h)) {
      throw new ValidationError('CONSORTIUM_ERR_BAD_CONFIG', `hosts: expected host names or IP addresses, got ${JSON.stringify(h)}`);
    }
  }
  const siteIds = o.siteIds ?? [];
  for (const id of siteIds) {
    if (typeof id !== 'string' || !SITE_ID.test(id)) throw new ValidationError('CONSORTIUM_ERR_BAD_CONFIG', `siteIds: expected ids matching ${SITE_ID.source}, got ${JSON.stringify(id)}`);
  }
  if (new Set(siteIds).size !== siteIds.length) throw new ValidationError('CONSORTIUM_ERR_BAD_CONFIG', 'siteIds: ids must be unique');

  const lib = await loadX509();
  const crypto = webcrypto as never;
  const subtle = webcrypto.subtle;
  const dir = resolve(o.dir);
  const notBefore = new Date(Date.now() - 3600_000);
  const notAfter = new Date(notBefore.getTime() + days * 86_400_000 + 3600_000);
  const newKeys = () => subtle.generateKey(ECDSA, true, ['sign', 'verify']) as Promise<webcrypto.CryptoKeyPair>;

  const caKeys = await newKeys();
  const caName = [{ CN: ['tally consortium CA'] }];
  const ca = await lib.X509CertificateGenerator.create({
    serialNumber: serial(), subject: caName, issuer: caName, notBefore, notAfter, signingAlgorithm: SIGNING,
    publicKey: caKeys.publicKey, signingKey: caKeys.privateKey,
    extensions: [
      new lib.BasicConstraintsExtension(true, 0, true),
      new lib.KeyUsagesExtension(lib.KeyUsageFlags.keyCertSign | lib.KeyUsageFlags.cRLSign, true),
      await lib.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
    ],
  }, crypto);

  const leaf = async (cn: string, usage: string, extra: X509.Extension[]) => {
    const keys = await newKeys();
    const cert = await lib.X509CertificateGenerator.create({
      serialNumber: serial(), subject: [{ CN: [cn] }], issuer: ca.subjectName, notBefore, notAfter, signingAlgorithm: SIGNING,
      publicKey: keys.publicKey, signingKey: caKeys.privateKey,
      extensions: [
        new lib.BasicConstraintsExtension(false, undefined, true),
        new lib.KeyUsagesExtension(lib.KeyUsageFlags.digitalSignature, true),
        new lib.ExtendedKeyUsageExtension([usage], false),
        ...extra,
        await lib.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        await lib.AuthorityKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
      ],
    }, crypto);
    return { cert: cert.toString('pem'), key: pkcs8Pem(keys.privateKey) };
  };

  const names = [...new Set([...o.hosts, ...LOOPBACK_NAMES])];
  const san = new lib.SubjectAlternativeNameExtension(names.map((h) => ({ type: isIP(h) ? 'ip' as const : 'dns' as const, value: h })), false);
  const coordinator = await leaf(o.hosts[0]!, lib.ExtendedKeyUsage.serverAuth, [san]);
  const sites = [];
  for (const id of siteIds) sites.push({ id, ...await leaf(id, lib.ExtendedKeyUsage.clientAuth, []) });

  // Every file is written only once all the material exists.
  const out: TlsFiles = {
    ca: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key'), cert: join(dir, 'coordinator.crt'), key: join(dir, 'coordinator.key'),
    ...(o.siteIds === undefined ? {} : { sites: siteIds.map((id) => ({ id, cert: join(dir, 'sites', `${id}.crt`), key: join(dir, 'sites', `${id}.key`) })) }),
  };
  mkdirSync(dir, { recursive: true });
  if (siteIds.length > 0) mkdirSync(join(dir, 'sites'), { recursive: true });
  writeNew(out.ca, ca.toString('pem'), 0o644);
  writeNew(out.caKey, pkcs8Pem(caKeys.privateKey), 0o600);
  writeNew(out.cert, coordinator.cert, 0o644);
  writeNew(out.key, coordinator.key, 0o600);
  sites.forEach((s, i) => {
    writeNew(out.sites![i]!.cert, s.cert, 0o644);
    writeNew(out.sites![i]!.key, s.key, 0o600);
  });
  return out;
}

/** A random positive 128-bit serial number, as hex. */
function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
}

function pkcs8Pem(key: webcrypto.CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }) as string;
}

function writeNew(path: string, text: string, mode: number): void {
  try {
    writeFileSync(path, text.endsWith('\n') ? text : `${text}\n`, { flag: 'wx', mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new ValidationError('CONSORTIUM_ERR_EXISTS', `${path} already exists; TLS material is never overwritten`, { cause: err });
    }
    throw err;
  }
}
