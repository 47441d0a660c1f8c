/**
 * Site identity files: each site of a consortium holds one long-term Ed25519
 * key, whose public half is its entry in the roster (`consortium.json`).
 * The file is JSON,
 *
 *   {"type": "tally-site-key", "version": 1, "seed": "<64 hex>", "publicKey": "<64 hex>"}
 *
 * with the 32-byte RFC 8032 private key (the seed) and the public key derived
 * from it, both lowercase hex. It is created exclusively (never overwritten)
 * with mode 0600; reading it checks that the seed gives the public key.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { equalBytes, fromHex, toHex } from '../crypto/_validate.js';
import { nativeProvider } from '../crypto/native.js';
import { ValidationError } from '../errors.js';

/** One site's long-term Ed25519 identity. */
export interface SiteKey {
  /** The 32-byte private key (RFC 8032 seed). */
  readonly seed: Uint8Array;
  /** The 32-byte public key derived from `seed`: the site's roster key. */
  readonly publicKey: Uint8Array;
}

/** The `type` field of a site key file. */
export const SITE_KEY_TYPE = 'tally-site-key';
const HEX32 = /^[0-9a-f]{64}$/;

/** A fresh identity: 32 bytes of system randomness (node:crypto) and their Ed25519 public key. */
export function generateSiteKey(): SiteKey {
  const seed = new Uint8Array(randomBytes(32));
  return { seed, publicKey: nativeProvider.ed25519PublicKey(seed) };
}

/**
 * Writes `key` to a new file at `path` with mode 0600 (the folder must exist).
 * @throws ValidationError `CONSORTIUM_ERR_EXISTS` when `path` exists; `CONSORTIUM_ERR_BAD_KEY` when the seed does not give the public key
 */
export function writeSiteKey(path: string, key: SiteKey): void {
  checkPair(key.seed, key.publicKey, path);
  const text = JSON.stringify({ type: SITE_KEY_TYPE, version: 1, seed: toHex(key.seed), publicKey: toHex(key.publicKey) }) + '\n';
  try {
    writeFileSync(path, text, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new ValidationError('CONSORTIUM_ERR_EXISTS', `${path} already exists; a key file is never overwritten`, { cause: err });
    }
    throw err;
  }
}

/**
 * Reads and checks a site key file.
 * @throws ValidationError `CONSORTIUM_ERR_BAD_KEY` when the file cannot be read, is not a site key file, or its seed does not give its public key
 */
export function readSiteKey(path: string): SiteKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ValidationError('CONSORTIUM_ERR_BAD_KEY', `cannot read the key file ${path}: ${(err as Error).message}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw bad(path, 'not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad(path, 'expected a JSON object');
  const d = doc as Record<string, unknown>;
  const extra = Object.keys(d).filter((k) => !['type', 'version', 'seed', 'publicKey'].includes(k));
  if (extra.length > 0) throw bad(path, `unknown field '${extra[0]}'`);
  if (d.type !== SITE_KEY_TYPE) throw bad(path, `"type" expected '${SITE_KEY_TYPE}', got ${JSON.stringify(d.type)}`);
  if (d.version !== 1) throw bad(path, `"version" expected 1, got ${JSON.stringify(d.version)}`);
  for (const f of ['seed', 'publicKey'] as const) {
    if (typeof d[f] !== 'string' || !HEX32.test(d[f] as string)) throw bad(path, `"${f}" expected 64 lowercase hex digits (32 bytes)`);
  }
  const seed = fromHex(d.seed as string), publicKey = fromHex(d.publicKey as string);
  checkPair(seed, publicKey, path);
  return { seed, publicKey };
}

function bad(path: string, what: string): ValidationError {
  return new ValidationError('CONSORTIUM_ERR_BAD_KEY', `${path} is not a valid site key file: ${what}`);
}

function checkPair(seed: Uint8Array, publicKey: Uint8Array, path: string): void {
  if (!(seed instanceof Uint8Array) || seed.length !== 32 || !(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw bad(path, 'the seed and the public key must be 32 bytes each');
  }
  if (!equalBytes(nativeProvider.ed25519PublicKey(seed), publicKey)) throw bad(path, 'its seed does not give its public key (the file was altered)');
}

const X25519_INFO = new TextEncoder().encode('tally/he-sum-v1/site-x25519');

/**
 * A site's long-term X25519 key of homomorphic consortia (he-sum-v1 key
 * ceremony: the key the consortium's HE secret key is wrapped to), derived
 * from its identity seed with HKDF-SHA256 (RFC 5869; empty salt, info
 * "tally/he-sum-v1/site-x25519"), so the site keeps one secret. The
 * derivation is one-way: the X25519 key reveals nothing of the signing
 * seed, and the two keys are never used for each other's purpose.
 */
export function siteX25519(seed: Uint8Array): { readonly privateKey: Uint8Array; readonly publicKey: Uint8Array } {
  const privateKey = nativeProvider.hkdf(seed, new Uint8Array(0), X25519_INFO, 32);
  return { privateKey, publicKey: nativeProvider.x25519PublicKey(privateKey) };
}
