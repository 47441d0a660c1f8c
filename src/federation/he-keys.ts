/**
 * A homomorphic consortium's key handling at the sites and the coordinator
 * (he-sum-v1 key ceremony, src/he/ceremony.ts), as files:
 *
 * - the dealer site makes the consortium's BGV secret key and an offer that
 *   wraps it to every other roster site's X25519 key (`roster[].x25519`),
 *   signed with the dealer's identity key ({@link dealConsortiumKey});
 * - each other site opens its wrap ({@link acceptConsortiumKey});
 * - the coordinator reads, from the same offer, only the key id every
 *   session commits to, after checking the dealer's signature
 *   ({@link offerKeyId}); it never holds the key.
 *
 * The offer travels by any channel (it holds only ciphertexts to the sites'
 * keys). The ceremony id binds it to the consortium (its hash) and an epoch,
 * so an offer of another consortium or epoch is refused.
 *
 * A site's key file (JSON, mode 0600, never overwritten):
 *
 *   {"type": "tally-he-key", "version": 1, "consortium": "<hash hex>", "epoch": E,
 *    "keyId": "<32 hex>", "key": "<base64 of SEAL's key bytes>"}
 * @module
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { concatFields, equalBytes } from '../crypto/_validate.js';
import { nativeProvider } from '../crypto/native.js';
import { HeError, ValidationError } from '../errors.js';
import type { HeSecretKey } from '../he/sum.js';
import type { Consortium, RosterSite } from './consortium.js';
import { siteX25519 } from './keys.js';

/** The `type` of a site's HE key file. */
export const HE_KEY_TYPE = 'tally-he-key';

/** The ceremony id of a consortium's key of one epoch: SHA-256("tally/he-sum-v1/ceremony" ‖ consortium hash ‖ u32 epoch). */
export function ceremonyId(c: Consortium, epoch: number): Uint8Array {
  if (!Number.isInteger(epoch) || epoch < 1 || epoch > 0xffffffff) throw new ValidationError('HE_ERR_BAD_INPUT', `the epoch must be an integer in [1, 2^32 − 1], got ${String(epoch)}`);
  return new Uint8Array(createHash('sha256').update(concatFields([new TextEncoder().encode('tally/he-sum-v1/ceremony'), c.hash, epoch])).digest());
}

function heOf(c: Consortium): NonNullable<Consortium['he']> {
  if (c.he === undefined) throw new ValidationError('HE_ERR_BAD_INPUT', 'the consortium is not homomorphic: aggregation.aggregator is not "he" or "he+masks"');
  return c.he;
}

/** The dealer's step: the consortium's key (kept by the dealer) and the offer to every other roster site. */
export async function dealConsortiumKey(c: Consortium, dealer: RosterSite, seed: Uint8Array, epoch = 1): Promise<{ key: HeSecretKey; offer: Uint8Array }> {
  const he = heOf(c);
  const { dealKey } = await import('../he/ceremony.js');
  return dealKey(nativeProvider, {
    params: he.params, ceremonyId: ceremonyId(c, epoch), dealer: { id: dealer.clientId, identitySeed: seed },
    recipients: c.sites.filter((s) => s.clientId !== dealer.clientId).map((s) => ({ id: s.clientId, x25519Public: he.x25519[s.clientId - 1]! })),
  });
}

/** A recipient's step: checks the offer (the dealer's signature, this consortium and epoch, this site's wrap) and opens the key. */
export async function acceptConsortiumKey(c: Consortium, me: RosterSite, seed: Uint8Array, offer: Uint8Array, epoch = 1): Promise<HeSecretKey> {
  const he = heOf(c);
  const { acceptKey, readOffer, sealedKeyBytes } = await import('../he/ceremony.js');
  const mine = siteX25519(seed);
  if (!equalBytes(mine.publicKey, he.x25519[me.clientId - 1]!)) throw new HeError('HE_ERR_NOT_RECIPIENT', `this key's X25519 key is not roster entry ${me.id}'s x25519`);
  const dealerId = readOffer(offer, await sealedKeyBytes(he.params)).dealer;
  const dealer = c.sites.find((s) => s.clientId === dealerId);
  if (dealer === undefined) throw new HeError('HE_ERR_BAD_SIGNATURE', 'the offer\'s dealer is not a roster site');
  try {
    return await acceptKey(nativeProvider, {
      params: he.params, ceremonyId: ceremonyId(c, epoch), offer, dealer: dealer.clientId, dealerKey: dealer.publicKey,
      me: { id: me.clientId, x25519Private: mine.privateKey },
    });
  } finally {
    mine.privateKey.fill(0);
  }
}

/**
 * What the coordinator takes from an offer: the key id, once the dealer's
 * signature (a roster site's), the consortium, epoch and parameter set are
 * checked. It opens nothing.
 */
export async function offerKeyId(c: Consortium, offer: Uint8Array, epoch = 1): Promise<{ keyId: Uint8Array; dealer: RosterSite }> {
  const he = heOf(c);
  const { checkOffer } = await import('../he/ceremony.js');
  // Any roster site may deal; the offer names which, and must carry its signature.
  const o = await checkOffer(nativeProvider, { params: he.params, ceremonyId: ceremonyId(c, epoch), offer, dealerKeyOf: (id) => c.sites.find((s) => s.clientId === id)?.publicKey });
  const dealer = c.sites.find((s) => s.clientId === o.dealer)!;
  const recipients = new Set(o.digests.map((d) => d.to));
  const missing = c.sites.filter((s) => s.clientId !== dealer.clientId && !recipients.has(s.clientId)).map((s) => s.id);
  if (missing.length > 0) throw new HeError('HE_ERR_NOT_RECIPIENT', `the offer holds no key for ${missing.join(', ')}`);
  return { keyId: o.keyId.slice(), dealer };
}

/** Writes a site's key (mode 0600; an existing file is never overwritten). */
export function writeHeKey(path: string, c: Consortium, key: HeSecretKey, epoch = 1): void {
  const text = `${JSON.stringify({
    type: HE_KEY_TYPE, version: 1, consortium: Buffer.from(c.hash).toString('hex'), epoch,
    keyId: Buffer.from(key.keyId).toString('hex'), key: Buffer.from(key.bytes).toString('base64'),
  })}\n`;
  try {
    writeFileSync(path, text, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ValidationError('CONSORTIUM_ERR_EXISTS', `${path} already exists; a key file is never overwritten`, { cause: err });
    throw err;
  }
}

/** Reads a site's key of this consortium, checked (SEAL loads it and its id is the recorded one). */
export async function readHeKey(path: string, c: Consortium): Promise<HeSecretKey> {
  const he = heOf(c);
  let d: Record<string, unknown>;
  try {
    d = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new ValidationError('HE_ERR_BAD_KEY', `cannot read the HE key file ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (d === null || typeof d !== 'object' || d['type'] !== HE_KEY_TYPE || d['version'] !== 1 || typeof d['key'] !== 'string' || typeof d['keyId'] !== 'string') {
    throw new ValidationError('HE_ERR_BAD_KEY', `${path} is not a tally HE key file`);
  }
  if (d['consortium'] !== Buffer.from(c.hash).toString('hex')) throw new ValidationError('HE_ERR_BAD_KEY', `${path} is the key of another consortium`);
  const { heImportKey } = await import('../he/sum.js');
  const key = await heImportKey(he.params, new Uint8Array(Buffer.from(d['key'], 'base64')));
  if (Buffer.from(key.keyId).toString('hex') !== d['keyId']) throw new ValidationError('HE_ERR_BAD_KEY', `${path}: the key is not the key id it records`);
  return key;
}
