/**
 * Key derivations of secagg-v1 (spec §3): pairwise mask keys, self-mask keys,
 * share-encryption keys and the share plaintext. Bonawitz et al. 2017, §4
 * (Fig. 4: "s_{u,v} ← KA.agree(s_u^SK, s_v^PK)", "c_{u,v} ← KA.agree(c_u^SK, c_v^PK)").
 */
import { SecAggError } from '../errors.js';
import type { CryptoProvider, X25519Agreement } from '../crypto/types.js';
import { concatFields } from '../crypto/_validate.js';
import { isShamirShare, SHAMIR_SHARE_BYTES } from '../crypto/shamir.js';
import { CryptoError, ValidationError } from '../errors.js';
import { LABELS } from './config.js';

/** Length of one Shamir share value: eleven GF(2^25 − 39) elements as 4-byte big-endian words (spec §3.8). */
export const SHARE_BYTES = SHAMIR_SHARE_BYTES;
/** Share plaintext: u32(sender) ‖ u32(recipient) ‖ s^SK share(44) ‖ b share(44). */
export const SHARE_PLAINTEXT_BYTES = 8 + 2 * SHARE_BYTES;
/** Sealed share: plaintext plus the 16-byte GCM tag. */
export const SHARE_CIPHERTEXT_BYTES = SHARE_PLAINTEXT_BYTES + 16;

/** Whether a share value is well formed (44 bytes, every word < p = 2^25 − 39), as every honest share is. */
export function isShareValue(share: Uint8Array): boolean {
  return isShamirShare(share);
}

/**
 * Whether a 32-byte X25519 public key is the canonical encoding of its
 * u-coordinate: the little-endian integer is below p = 2^255 − 19, so bit 255
 * is clear and u is reduced (spec §3.2). X25519 itself ignores bit 255 and
 * reduces u mod p (RFC 7748 §5), so a non-canonical key denotes the same
 * point as a canonical one with other bytes: byte equality would no longer
 * mean key equality (the duplicate-key check), and a key rebuilt from its
 * private half would not equal the advertised bytes (the R4 check).
 * X25519(sk, 9) always yields the canonical encoding.
 */
export function isCanonicalX25519(pk: Uint8Array): boolean {
  if (!(pk instanceof Uint8Array) || pk.length !== 32) return false;
  if (pk[31]! & 0x80) return false;
  // p little-endian is ed ff … ff 7f: u ≥ p iff byte 31 is 7f, bytes 30…1 are ff and byte 0 ≥ ed.
  if (pk[31] !== 0x7f || pk[0]! < 0xed) return true;
  for (let i = 1; i < 31; i++) if (pk[i] !== 0xff) return true;
  return false;
}

/**
 * A private key, or an agreement bound to it (`provider.x25519Agreement(sk)`):
 * a client deriving keys with many neighbours passes the agreement, so its
 * private key is imported once per round instead of once per neighbour.
 */
export type PrivateKeyOrAgreement = Uint8Array | X25519Agreement;

/** Runs X25519 and turns a low-order failure into a protocol abort naming the peer. */
function agree(p: CryptoProvider, sk: PrivateKeyOrAgreement, pk: Uint8Array, round: number, peer: number): Uint8Array {
  try {
    return typeof sk === 'function' ? sk(pk) : p.x25519(sk, pk);
  } catch (err) {
    if (err instanceof CryptoError) throw new SecAggError('SECAGG_ERR_LOW_ORDER_KEY', `key agreement with client ${peer} gave a degenerate secret`, round, peer);
    throw err;
  }
}

/**
 * `prefix ‖ u32(a) ‖ u32(b) [‖ u32(c)]`, big-endian: the fixed layouts of the
 * per-neighbour byte strings below, built without concatFields' general
 * checks (a client builds four per neighbour). Ids are checked as u32.
 */
function withIds(prefix: Uint8Array | null, a: number, b: number, c?: number): Uint8Array {
  if (a >>> 0 !== a || b >>> 0 !== b || (c !== undefined && c >>> 0 !== c)) {
    throw new ValidationError('CRYPTO_ERR_BAD_INPUT', `client ids expected integers in [0, 2^32 - 1], got ${[a, b, c].filter((x) => x !== undefined).join(', ')}`);
  }
  const at = prefix === null ? 0 : prefix.length;
  const out = new Uint8Array(at + (c === undefined ? 8 : 12));
  if (prefix !== null) out.set(prefix);
  const dv = new DataView(out.buffer);
  dv.setUint32(at, a);
  dv.setUint32(at + 4, b);
  if (c !== undefined) dv.setUint32(at + 8, c);
  return out;
}

function pairInfo(label: Uint8Array, u: number, v: number): Uint8Array {
  return withIds(label, Math.min(u, v), Math.max(u, v));
}

/** HKDF of an agreed secret, which is wiped once the key is derived. */
function deriveFrom(p: CryptoProvider, secret: Uint8Array, sid: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  const key = p.hkdf(secret, sid, info, length);
  secret.fill(0);
  return key;
}

/**
 * AES-128 key of the pairwise mask between u and v (spec §3.6):
 * HKDF-SHA256(ikm = X25519(s_u^SK, s_v^PK), salt = sessionId,
 * info = "tally/secagg-v1/pairwise-mask" ‖ u32(min(u,v)) ‖ u32(max(u,v)), L = 16).
 */
export function pairwiseMaskKey(p: CryptoProvider, sid: Uint8Array, u: number, sSk: PrivateKeyOrAgreement, v: number, sPkV: Uint8Array, round: number): Uint8Array {
  return deriveFrom(p, agree(p, sSk, sPkV, round, v), sid, pairInfo(LABELS.pairwiseMask, u, v), 16);
}

/**
 * AES-128 key of u's self mask (spec §3.6):
 * HKDF-SHA256(ikm = b_u, salt = sessionId, info = "tally/secagg-v1/self-mask" ‖ u32(u), L = 16).
 */
export function selfMaskKey(p: CryptoProvider, sid: Uint8Array, u: number, bU: Uint8Array): Uint8Array {
  return p.hkdf(bU, sid, concatFields([LABELS.selfMask, u]), 16);
}

/**
 * AES-256-GCM key protecting the shares exchanged by u and v (spec §3.7):
 * HKDF-SHA256(ikm = X25519(c_u^SK, c_v^PK), salt = sessionId,
 * info = "tally/secagg-v1/share-encryption" ‖ u32(min) ‖ u32(max), L = 32).
 * Both directions use this key; the nonce names the direction.
 */
export function shareEncryptionKey(p: CryptoProvider, sid: Uint8Array, u: number, cSk: PrivateKeyOrAgreement, v: number, cPkV: Uint8Array, round: number): Uint8Array {
  return deriveFrom(p, agree(p, cSk, cPkV, round, v), sid, pairInfo(LABELS.shareEncryption, u, v), 32);
}

/** GCM nonce: u32(sender) ‖ u32(recipient) ‖ u32(1). Unique per key since each direction is used once. */
export function shareNonce(sender: number, recipient: number): Uint8Array {
  return withIds(null, sender, recipient, 1);
}

/** GCM associated data: "tally/secagg-v1/share-aad" ‖ sessionId ‖ u32(sender) ‖ u32(recipient). */
export function shareAad(sid: Uint8Array, sender: number, recipient: number): Uint8Array {
  return concatFields([LABELS.share, sid, sender, recipient]);
}

/** Encrypts u's shares of s_u^SK and b_u for recipient v (Bonawitz Fig. 4, round 1). */
export function sealShares(p: CryptoProvider, key: Uint8Array, sid: Uint8Array, sender: number, recipient: number, skShare: Uint8Array, bShare: Uint8Array): Uint8Array {
  if (!isShareValue(skShare) || !isShareValue(bShare)) throw new ValidationError('SECAGG_ERR_BAD_SHARE', `shares to seal must be ${SHARE_BYTES}-byte share values`);
  const pt = concatFields([sender, recipient, skShare, bShare]);
  const sealed = p.aesGcmSeal(key, shareNonce(sender, recipient), pt, shareAad(sid, sender, recipient));
  pt.fill(0);
  return sealed;
}

/**
 * Decrypts the shares `sender` sent to `recipient` and checks the plaintext names
 * the same pair (Bonawitz Fig. 4, round 4: "assert u = u' ∧ v = v'").
 * @throws SecAggError `SECAGG_ERR_BAD_SHARE`
 */
export function openShares(p: CryptoProvider, key: Uint8Array, sid: Uint8Array, sender: number, recipient: number, sealed: Uint8Array, round: number): { skShare: Uint8Array; bShare: Uint8Array } {
  if (sealed.length !== SHARE_CIPHERTEXT_BYTES) {
    throw new SecAggError('SECAGG_ERR_BAD_SHARE', `share ciphertext from client ${sender} expected ${SHARE_CIPHERTEXT_BYTES} bytes, got ${sealed.length}`, round, sender);
  }
  let pt: Uint8Array;
  try {
    pt = p.aesGcmOpen(key, shareNonce(sender, recipient), sealed, shareAad(sid, sender, recipient));
  } catch (err) {
    if (err instanceof CryptoError) throw new SecAggError('SECAGG_ERR_BAD_SHARE', `share ciphertext from client ${sender} does not decrypt`, round, sender);
    throw err;
  }
  const dv = new DataView(pt.buffer, pt.byteOffset, pt.byteLength);
  const pairOk = dv.getUint32(0) === sender && dv.getUint32(4) === recipient;
  const skShare = pt.slice(8, 8 + SHARE_BYTES);
  const bShare = pt.slice(8 + SHARE_BYTES, 8 + 2 * SHARE_BYTES);
  pt.fill(0);
  if (!pairOk) throw new SecAggError('SECAGG_ERR_BAD_SHARE', `share plaintext from client ${sender} names the wrong pair`, round, sender);
  if (!isShareValue(skShare) || !isShareValue(bShare)) {
    throw new SecAggError('SECAGG_ERR_BAD_SHARE', `share plaintext from client ${sender} holds a value outside the Shamir field`, round, sender);
  }
  return { skShare, bShare };
}
