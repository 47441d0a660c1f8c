/**
 * The key ceremony of he-sum-v1 (spec §9): how the sites come to share one
 * BGV secret key that the coordinator never reads.
 *
 * 1. The dealer, a site (in a session: the lowest present client id), makes
 *    the key (`heKeygen`).
 * 2. For every other site j it wraps the key bytes to j's long-term X25519
 *    key P_j: a fresh ephemeral key pair (e, E), then
 *    k = HKDF-SHA256(X25519(e, P_j), salt = ceremony id,
 *                    info = "tally/he-sum-v1/key-wrap" ‖ u32(dealer) ‖ u32(j) ‖ key id),
 *    sealed = AES-256-GCM(k, nonce = 0^12, key bytes,
 *                         aad = "tally/he-sum-v1/wrap-aad" ‖ params digest ‖ key id ‖ ceremony id ‖ u32(dealer) ‖ u32(j) ‖ E).
 *    Each k is used once (e is fresh), so the zero nonce is never reused
 *    under one key.
 * 3. It signs, with its Ed25519 identity key, the offer's header: the params
 *    digest, the key id, the ceremony id and, per recipient, u32(j) and the
 *    SHA-256 of its wrap. The coordinator relays the offer, each site
 *    getting the signed header and its own wrap ({@link offerFor}); it holds
 *    nothing secret (the wraps are ciphertexts to the sites' keys).
 * 4. Each site checks the signature against the dealer's roster key, finds
 *    its wrap, checks the wrap's digest, unwraps, loads the key and checks
 *    that its key id is the signed one.
 *
 * Every refusal is a typed error: a malformed offer `HE_ERR_BAD_OFFER`
 * (CodecError), another parameter set `HE_ERR_MISMATCH`, a bad signature
 * `HE_ERR_BAD_SIGNATURE`, no wrap for this site `HE_ERR_NOT_RECIPIENT`, a
 * wrap that does not open or does not match its digest `HE_ERR_BAD_WRAP`, a
 * key whose id is not the signed one `HE_ERR_KEY_MISMATCH`.
 *
 * Offer bytes (integers big-endian, as secagg-v1):
 *
 *     "HEK1" ‖ u32 dealer ‖ ceremony id (32) ‖ params digest (16) ‖ key id (16)
 *       ‖ u32 count ‖ count × (u32 j ‖ wrap digest (32))          ← signed
 *       ‖ signature (64) ‖ u32 wraps ‖ wraps × (u32 j ‖ E (32) ‖ sealed (S + 16))
 *
 * with S the set's secret-key size; the signature covers
 * "tally/he-sum-v1/key-offer" ‖ the signed bytes, and a wrap's digest is
 * SHA-256("tally/he-sum-v1/wrap-digest" ‖ u32 j ‖ E ‖ sealed).
 * @module
 */
import type { CryptoProvider } from '../crypto/types.js';
import { systemRng, type Rng } from '../crypto/rng.js';
import { concatFields, equalBytes } from '../crypto/_validate.js';
import { CodecError, CryptoError, HeError, TallyError, ValidationError } from '../errors.js';
import { paramsDigest, type HeParams } from './params.js';
import { heContext } from './seal.js';
import { heImportKey, heKeygen, type HeSecretKey } from './sum.js';

const enc = new TextEncoder();
/** Domain-separation labels of the ceremony (prefix-free among themselves and with secagg-v1's). */
export const CEREMONY_LABELS = Object.freeze({
  keyWrap: enc.encode('tally/he-sum-v1/key-wrap'),
  wrapAad: enc.encode('tally/he-sum-v1/wrap-aad'),
  wrapDigest: enc.encode('tally/he-sum-v1/wrap-digest'),
  offer: enc.encode('tally/he-sum-v1/key-offer'),
});
const MAGIC = enc.encode('HEK1');
const NONCE = new Uint8Array(12);
const HEAD = 4 + 4 + 32 + 16 + 16 + 4;

/** A recipient of the key: its id and long-term X25519 public key. */
export interface KeyRecipient {
  readonly id: number;
  readonly x25519Public: Uint8Array;
}

/** The dealer: its id and Ed25519 identity seed (its roster key's secret). */
export interface KeyDealer {
  readonly id: number;
  readonly identitySeed: Uint8Array;
}

/** A decoded offer. */
export interface KeyOffer {
  readonly dealer: number;
  readonly ceremonyId: Uint8Array;
  readonly params: Uint8Array;
  readonly keyId: Uint8Array;
  readonly digests: readonly { readonly to: number; readonly digest: Uint8Array }[];
  readonly signature: Uint8Array;
  readonly wraps: readonly { readonly to: number; readonly ephemeral: Uint8Array; readonly sealed: Uint8Array }[];
  /** The bytes the signature covers (without the label). */
  readonly signed: Uint8Array;
}

function badOffer(message: string): never {
  throw new CodecError('HE_ERR_BAD_OFFER', message);
}

function checkId(id: number, what: string): void {
  if (!Number.isInteger(id) || id < 1 || id > 0xffffffff) throw new ValidationError('HE_ERR_BAD_INPUT', `${what} must be an integer id in [1, 2^32 − 1], got ${String(id)}`);
}

function wrapDigest(p: CryptoProvider, to: number, ephemeral: Uint8Array, sealed: Uint8Array): Uint8Array {
  return p.sha256(concatFields([CEREMONY_LABELS.wrapDigest, to, ephemeral, sealed]));
}

function wrapKey(p: CryptoProvider, shared: Uint8Array, ceremonyId: Uint8Array, dealer: number, to: number, keyId: Uint8Array): Uint8Array {
  return p.hkdf(shared, ceremonyId, concatFields([CEREMONY_LABELS.keyWrap, dealer, to, keyId]), 32);
}

function wrapAad(params: Uint8Array, keyId: Uint8Array, ceremonyId: Uint8Array, dealer: number, to: number, ephemeral: Uint8Array): Uint8Array {
  return concatFields([CEREMONY_LABELS.wrapAad, params, keyId, ceremonyId, dealer, to, ephemeral]);
}

/**
 * The offer of a key already made: wraps `keyBytes` to each recipient and
 * signs. `keyId` is what the offer claims; {@link dealKey} passes the key's
 * own id (a test passes another to play a dishonest dealer).
 */
export function buildOffer(p: CryptoProvider, o: {
  readonly params: Uint8Array; readonly ceremonyId: Uint8Array; readonly dealer: KeyDealer; readonly keyId: Uint8Array;
  readonly keyBytes: Uint8Array; readonly recipients: readonly KeyRecipient[]; readonly rng?: Rng;
}): Uint8Array {
  const rng = o.rng ?? systemRng;
  checkId(o.dealer.id, 'the dealer');
  if (!(o.ceremonyId instanceof Uint8Array) || o.ceremonyId.length !== 32) throw new ValidationError('HE_ERR_BAD_INPUT', 'a ceremony id has 32 bytes');
  const seen = new Set<number>([o.dealer.id]);
  const wraps = o.recipients.map((r) => {
    checkId(r.id, 'a recipient');
    if (seen.has(r.id)) throw new ValidationError('HE_ERR_BAD_INPUT', `recipient ${r.id} twice, or the dealer itself`);
    seen.add(r.id);
    const e = rng.bytes(32);
    try {
      const ephemeral = p.x25519PublicKey(e);
      const shared = p.x25519(e, r.x25519Public);
      const k = wrapKey(p, shared, o.ceremonyId, o.dealer.id, r.id, o.keyId);
      shared.fill(0);
      const sealed = p.aesGcmSeal(k, NONCE, o.keyBytes, wrapAad(o.params, o.keyId, o.ceremonyId, o.dealer.id, r.id, ephemeral));
      k.fill(0);
      return { to: r.id, ephemeral, sealed };
    } finally {
      e.fill(0);
    }
  });
  const signed = concatFields([MAGIC, o.dealer.id, o.ceremonyId, o.params, o.keyId, wraps.length,
    ...wraps.flatMap((w) => [w.to, wrapDigest(p, w.to, w.ephemeral, w.sealed)])]);
  const signature = p.ed25519Sign(o.dealer.identitySeed, concatFields([CEREMONY_LABELS.offer, signed]));
  return concatFields([signed, signature, wraps.length, ...wraps.flatMap((w) => [w.to, w.ephemeral, w.sealed])]);
}

/**
 * The dealer's step: makes the key and its offer to every recipient.
 * Returns the key (the dealer keeps it) and the offer (to the coordinator).
 */
export async function dealKey(p: CryptoProvider, o: {
  readonly params: HeParams; readonly ceremonyId: Uint8Array; readonly dealer: KeyDealer; readonly recipients: readonly KeyRecipient[]; readonly rng?: Rng;
}): Promise<{ key: HeSecretKey; offer: Uint8Array }> {
  const key = await heKeygen(o.params);
  const offer = buildOffer(p, { params: paramsDigest(o.params), ceremonyId: o.ceremonyId, dealer: o.dealer, keyId: key.keyId,
    keyBytes: key.bytes, recipients: o.recipients, ...(o.rng ? { rng: o.rng } : {}) });
  return { key, offer };
}

/** Reads an offer's fields (framing only: nothing is verified). */
export function readOffer(bytes: Uint8Array, sealedBytes: number): KeyOffer {
  if (!(bytes instanceof Uint8Array) || bytes.length < HEAD + 64 + 4) badOffer('an offer is too short');
  if (!equalBytes(bytes.subarray(0, 4), MAGIC)) badOffer('not an he-sum-v1 key offer (bad magic)');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dealer = dv.getUint32(4, false);
  const count = dv.getUint32(HEAD - 4, false);
  const signedEnd = HEAD + 36 * count;
  if (count > 1 << 20 || bytes.length < signedEnd + 64 + 4) badOffer(`an offer listing ${count} wraps is truncated`);
  const digests = Array.from({ length: count }, (_, i) => ({
    to: dv.getUint32(HEAD + 36 * i, false), digest: bytes.slice(HEAD + 36 * i + 4, HEAD + 36 * i + 36),
  }));
  const present = dv.getUint32(signedEnd + 64, false);
  const wrapBytes = 4 + 32 + sealedBytes;
  if (present > count || bytes.length !== signedEnd + 68 + present * wrapBytes) badOffer(`an offer with ${present} wraps of ${wrapBytes} bytes has ${signedEnd + 68 + present * wrapBytes} bytes, got ${bytes.length}`);
  const wraps = Array.from({ length: present }, (_, i) => {
    const off = signedEnd + 68 + i * wrapBytes;
    return { to: dv.getUint32(off, false), ephemeral: bytes.slice(off + 4, off + 36), sealed: bytes.slice(off + 36, off + wrapBytes) };
  });
  return {
    dealer, ceremonyId: bytes.slice(8, 40), params: bytes.slice(40, 56), keyId: bytes.slice(56, 72), digests,
    signature: bytes.slice(signedEnd, signedEnd + 64), wraps, signed: bytes.subarray(0, signedEnd),
  };
}

/**
 * What the coordinator relays to site `id`: the signed header and that
 * site's wrap alone (the coordinator can do this without any secret).
 */
export function offerFor(offer: Uint8Array, id: number, sealedBytes: number): Uint8Array {
  const o = readOffer(offer, sealedBytes);
  const mine = o.wraps.filter((w) => w.to === id);
  return concatFields([o.signed, o.signature, mine.length, ...mine.flatMap((w) => [w.to, w.ephemeral, w.sealed])]);
}

/** Bytes of a sealed key of a set: the secret key and the 16-byte GCM tag. */
export async function sealedKeyBytes(params: HeParams): Promise<number> {
  return (await heContext(params)).secretKey.bytes + 16;
}

/**
 * Reads an offer and checks its signed part before anything is opened (spec
 * §9, step 5): its dealer's signature under the key `dealerKeyOf` gives for
 * the dealer it names (undefined: not a dealer the caller accepts), its
 * ceremony id and its parameter set. A recipient runs it in
 * {@link acceptKey}; a coordinator runs it to learn the key id it relays.
 * Throws `HE_ERR_BAD_OFFER`, `HE_ERR_BAD_SIGNATURE` or `HE_ERR_MISMATCH`.
 */
export async function checkOffer(p: CryptoProvider, o: {
  readonly params: HeParams; readonly ceremonyId: Uint8Array; readonly offer: Uint8Array; readonly dealerKeyOf: (dealer: number) => Uint8Array | undefined;
}): Promise<KeyOffer> {
  const offer = readOffer(o.offer, await sealedKeyBytes(o.params));
  const dealerKey = o.dealerKeyOf(offer.dealer);
  if (dealerKey === undefined) throw new HeError('HE_ERR_BAD_SIGNATURE', `the offer names dealer ${offer.dealer}, not one this party accepts`);
  if (!p.ed25519Verify(dealerKey, concatFields([CEREMONY_LABELS.offer, offer.signed]), offer.signature)) {
    throw new HeError('HE_ERR_BAD_SIGNATURE', `the offer is not signed by dealer ${offer.dealer}'s roster key`);
  }
  if (!equalBytes(offer.ceremonyId, o.ceremonyId)) throw new HeError('HE_ERR_MISMATCH', 'the offer is of another ceremony (another consortium, epoch or run)');
  if (!equalBytes(offer.params, paramsDigest(o.params))) throw new HeError('HE_ERR_MISMATCH', 'the offer is of another parameter set');
  return offer;
}

/**
 * A recipient's step: verifies the offer and unwraps its key.
 * `dealerKey` is the dealer's Ed25519 roster key.
 */
export async function acceptKey(p: CryptoProvider, o: {
  readonly params: HeParams; readonly ceremonyId: Uint8Array; readonly offer: Uint8Array;
  readonly dealer: number; readonly dealerKey: Uint8Array; readonly me: { readonly id: number; readonly x25519Private: Uint8Array };
}): Promise<HeSecretKey> {
  const offer = await checkOffer(p, { ...o, dealerKeyOf: (id) => (id === o.dealer ? o.dealerKey : undefined) });
  const listed = offer.digests.filter((d) => d.to === o.me.id);
  if (listed.length !== 1) throw new HeError('HE_ERR_NOT_RECIPIENT', `the offer lists ${listed.length === 0 ? 'no' : 'several'} wraps for site ${o.me.id}`);
  // Exactly one wrap for this site, and none the dealer did not sign (spec §9, step 5).
  const signedTo = new Set(offer.digests.map((d) => d.to));
  const unsigned = offer.wraps.find((w) => !signedTo.has(w.to));
  if (unsigned !== undefined) throw new HeError('HE_ERR_BAD_WRAP', `the offer carries a wrap for site ${unsigned.to} that the dealer did not sign`);
  const mine = offer.wraps.filter((w) => w.to === o.me.id);
  if (mine.length !== 1) throw new HeError('HE_ERR_NOT_RECIPIENT', `the offer carries ${mine.length === 0 ? 'no' : 'several'} wraps for site ${o.me.id}`);
  const wrap = mine[0]!;
  if (!equalBytes(wrapDigest(p, wrap.to, wrap.ephemeral, wrap.sealed), listed[0]!.digest)) {
    throw new HeError('HE_ERR_BAD_WRAP', `the wrap for site ${o.me.id} is not the one the dealer signed`);
  }
  let keyBytes: Uint8Array;
  try {
    const shared = p.x25519(o.me.x25519Private, wrap.ephemeral);
    const k = wrapKey(p, shared, o.ceremonyId, o.dealer, o.me.id, offer.keyId);
    shared.fill(0);
    try {
      keyBytes = p.aesGcmOpen(k, NONCE, wrap.sealed, wrapAad(offer.params, offer.keyId, o.ceremonyId, o.dealer, o.me.id, wrap.ephemeral));
    } finally {
      k.fill(0);
    }
  } catch (err) {
    if (err instanceof CryptoError || (err instanceof TallyError && err.code === 'CRYPTO_ERR_BAD_INPUT')) {
      throw new HeError('HE_ERR_BAD_WRAP', `the wrap for site ${o.me.id} does not open: ${err.message}`, { cause: err });
    }
    throw err;
  }
  try {
    const key = await heImportKey(o.params, keyBytes);
    if (!equalBytes(key.keyId, offer.keyId)) throw new HeError('HE_ERR_KEY_MISMATCH', 'the unwrapped key is not the key id the dealer signed');
    return key;
  } catch (err) {
    if (err instanceof TallyError && err.code === 'HE_ERR_BAD_KEY') throw new HeError('HE_ERR_BAD_WRAP', `the wrap holds no key of this set: ${err.message}`, { cause: err });
    throw err;
  } finally {
    keyBytes.fill(0);
  }
}
