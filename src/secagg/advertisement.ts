/**
 * Checks on one R0 advertisement, shared by the client (R1, on the whole key
 * list) and the server (R0, as each advertisement arrives).
 */
import { SecAggError } from '../errors.js';
import type { CryptoProvider } from '../crypto/types.js';
import { isLowOrderX25519 } from '../crypto/lowOrder.js';
import { equalBytes } from '../crypto/_validate.js';
import { advertiseSignedBytes, type AdvertisedKeys, type SessionConfig } from './config.js';
import { isCanonicalX25519 } from './keys.js';

/**
 * The public keys accepted so far in one session, for the distinctness check.
 * Keys are indexed by their first six bytes and compared whole within an
 * index entry: a client checks every key of the key list (spec §5.3), so the
 * check costs a map lookup per key, not a hex string.
 */
export class AdvertisedKeySet {
  readonly #byPrefix = new Map<number, Uint8Array[]>();

  static #prefix(pk: Uint8Array): number {
    return (pk[0]! * 2 ** 40) + (pk[1]! * 2 ** 32) + ((pk[2]! << 24) >>> 0) + (pk[3]! << 16) + (pk[4]! << 8) + pk[5]!;
  }

  has(pk: Uint8Array): boolean {
    return this.#byPrefix.get(AdvertisedKeySet.#prefix(pk))?.some((k) => equalBytes(k, pk)) ?? false;
  }

  add(pk: Uint8Array): void {
    const p = AdvertisedKeySet.#prefix(pk);
    const list = this.#byPrefix.get(p);
    if (list === undefined) this.#byPrefix.set(p, [pk]);
    else list.push(pk);
  }
}

/**
 * Rejects an advertisement whose keys are malformed, low-order or already
 * advertised in this session (`seen` holds every accepted key and is
 * extended), or, in malicious mode, not signed by the client's roster key.
 */
export function checkAdvertisement(config: SessionConfig, provider: CryptoProvider, cfgHash: Uint8Array,
  k: AdvertisedKeys, seen: AdvertisedKeySet, round: number): void {
  for (const [i, pk] of [k.cPk, k.sPk].entries()) {
    if (!(pk instanceof Uint8Array) || pk.length !== 32) throw new SecAggError('SECAGG_ERR_BAD_MESSAGE', `client ${k.id} advertised a key that is not 32 bytes`, round, k.id);
    // A low-order key makes the X25519 output known to everyone (RFC 7748 §7): its masks would be public.
    if (isLowOrderX25519(pk)) throw new SecAggError('SECAGG_ERR_LOW_ORDER_KEY', `client ${k.id} advertised a low-order public key`, round, k.id);
    // X25519 ignores bit 255 and reduces u mod p: only the canonical encoding makes byte equality key equality (spec §3.2).
    if (!isCanonicalX25519(pk)) throw new SecAggError('SECAGG_ERR_NON_CANONICAL_KEY', `client ${k.id} advertised a public key that is not canonically encoded`, round, k.id);
    // Identical keys would give identical pairwise secrets (Flower: "Some public keys are identical"),
    // also the two keys of one advertisement.
    if (seen.has(pk) || (i === 1 && equalBytes(k.cPk, pk))) throw new SecAggError('SECAGG_ERR_DUPLICATE_KEY', `client ${k.id} advertised a public key already advertised in this session`, round, k.id);
  }
  if (config.threat === 'malicious') {
    const rosterKey = config.identityKeys![config.clientIds.indexOf(k.id)]!;
    const ok = k.signature instanceof Uint8Array && k.signature.length === 64
      && provider.ed25519Verify(rosterKey, advertiseSignedBytes(cfgHash, k.id, k.cPk, k.sPk), k.signature);
    if (!ok) throw new SecAggError('SECAGG_ERR_BAD_SIGNATURE', `advertisement of client ${k.id} is not signed by its roster key`, round, k.id);
  }
  seen.add(k.cPk);
  seen.add(k.sPk);
}
