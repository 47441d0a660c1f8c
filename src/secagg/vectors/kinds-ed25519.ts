/**
 * `ed25519`: strict Ed25519 verification (spec §3.3; RFC 8032 §5.1.7 with the
 * checks of Chalkias, Garillot, Nikolaenko, "Taming the many EdDSAs", SSR
 * 2020). Valid cases verify; invalid ones must make verification return
 * false (never raise): small-order public keys (every encoding, with the
 * forgery R = identity, S = 0 that the cofactorless equation accepts for
 * every message under the identity key), non-canonical public keys and R
 * (y ≥ p), S ≥ L, and keys or signatures of the wrong length.
 */
import { lowOrderLists } from '../../crypto/lowOrder.js';
import { concatBytes } from '../../crypto/_validate.js';
import type { CryptoProvider } from '../../crypto/types.js';
import { advertiseSignedBytes } from '../config.js';
import { bytes, expectEqual, hex, rngOf, type TestCase } from './_common.js';
import type { VectorKind } from './kind.js';

const KIND = 'ed25519';
/** L = 2^252 + 27742317777372353535851937790883648493, the order of the base point. */
const L = (1n << 252n) + 27742317777372353535851937790883648493n;

const le = (v: bigint, n = 32): Uint8Array => Uint8Array.from({ length: n }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
const fromLe = (b: Uint8Array): bigint => b.reduceRight((acc, x) => (acc << 8n) | BigInt(x), 0n);
/** y = p + d with the x sign bit `sign`: a non-canonical encoding (y ≥ p = 2^255 − 19). */
const aboveP = (d: number, sign = 0): Uint8Array => { const b = le((1n << 255n) - 19n + BigInt(d)); b[31]! |= sign << 7; return b; };

export const ed25519Kind: VectorKind = {
  kind: KIND,
  description: 'Strict Ed25519 verification (spec §3.3, RFC 8032 §5.1.7): `verifies` is the required result of verify(publicKey, message, signature). Valid cases are signatures by `seed` (RFC 8032 §5.1.6). Invalid cases must verify false without raising: small-order public keys in every encoding (signature R = identity, S = 0, which the cofactorless equation accepts under the identity key for every message), non-canonical public keys and R (y ≥ p), S + L in place of S, and wrong lengths. `error` is the code a party raises when such a signature is presented (R0 advertisement, R3 consistency).',
  generate(p: CryptoProvider) {
    const tests: TestCase[] = [];
    const push = (comment: string, publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array, seed?: Uint8Array) => {
      const verifies = p.ed25519Verify(publicKey, message, signature);
      tests.push({
        tcId: tests.length + 1, comment, result: verifies ? 'valid' : 'invalid', ...(verifies ? {} : { error: 'SECAGG_ERR_BAD_SIGNATURE' }), ...(seed ? { seed: hex(seed) } : {}),
        publicKey: hex(publicKey), message: hex(message), signature: hex(signature), verifies,
      });
    };
    const rng = rngOf(KIND, 0, 'keys');
    const seed = rng.bytes(32);
    const pk = p.ed25519PublicKey(seed);
    const msg = advertiseSignedBytes(rng.bytes(32), 7, p.x25519PublicKey(rng.bytes(32)), p.x25519PublicKey(rng.bytes(32)));
    const sig = p.ed25519Sign(seed, msg);
    push('an R0 advertisement signature', pk, msg, sig, seed);
    push('the empty message', pk, new Uint8Array(0), p.ed25519Sign(seed, new Uint8Array(0)), seed);
    const identityForgery = concatBytes(le(1n), new Uint8Array(32));
    lowOrderLists().ed25519.forEach((a, i) => push(`small-order public key #${i} (R = identity, S = 0)`, a, msg, identityForgery));
    push('non-canonical public key y = p + 2', aboveP(2), msg, sig);
    push('non-canonical public key y = p + 3 with the sign bit set', aboveP(3, 1), msg, sig);
    push('non-canonical R (y = p + 1, the identity), S = 0, under a valid key', pk, msg, concatBytes(aboveP(1), new Uint8Array(32)));
    push('S replaced by S + L (the same residue mod L)', pk, msg, concatBytes(sig.slice(0, 32), le(fromLe(sig.slice(32)) + L)));
    push('S = L', pk, msg, concatBytes(sig.slice(0, 32), le(L)));
    push('signature of 63 bytes', pk, msg, sig.slice(0, 63));
    push('public key of 31 bytes', pk.slice(0, 31), msg, sig);
    push('message altered in one bit', pk, concatBytes(Uint8Array.of(msg[0]! ^ 1), msg.slice(1)), sig);
    return tests;
  },
  check(tc, p) {
    const publicKey = bytes(tc.publicKey), message = bytes(tc.message), signature = bytes(tc.signature);
    if (tc.seed !== undefined) {
      expectEqual('publicKey (from seed)', p.ed25519PublicKey(bytes(tc.seed)), publicKey);
      expectEqual('signature (deterministic, from seed)', p.ed25519Sign(bytes(tc.seed), message), signature);
    }
    expectEqual('verifies', p.ed25519Verify(publicKey, message, signature), tc.verifies);
    expectEqual('verifies (result)', tc.result === 'valid', tc.verifies);
  },
};
