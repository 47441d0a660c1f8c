/**
 * Cross-tests: on random inputs from a DeterministicRng, the native and
 * portable providers give identical outputs and identical rejections for every
 * operation.
 */
import { expect } from 'chai';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { CryptoError } from '../../src/errors.js';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { concatBytes, fromHex, toHex } from '../../src/crypto/_validate.js';
import { nativeProvider as N } from '../../src/crypto/native.js';
import { portableProvider as P } from '../../src/crypto/portable.js';
import type { CryptoProvider } from '../../src/crypto/types.js';

const rng = new DeterministicRng('tally/crypto/crosstest');
/** A uniform integer in [0, n), n ≤ 2^32. */
const randInt = (n: number): number => new DataView(rng.bytes(4).buffer).getUint32(0) % n;
const same = (a: Uint8Array, b: Uint8Array): void => {
  expect(toHex(a)).to.equal(toHex(b));
};

/** Calls `f` with both providers; both must return equal bytes, or both throw the same code. */
function agree(f: (c: typeof N) => Uint8Array | boolean): void {
  const run = (c: typeof N): { ok: unknown } | { code: string } => {
    try {
      const r = f(c);
      return { ok: typeof r === 'boolean' ? r : toHex(r) };
    } catch (e) {
      return { code: (e as CryptoError).code };
    }
  };
  expect(run(N)).to.deep.equal(run(P));
}

describe('crosstest: native and portable agree', () => {
  it('X25519 public keys and shared secrets (random scalars and random u, including the twist)', () => {
    for (let i = 0; i < 24; i++) {
      const a = rng.bytes(32);
      const b = rng.bytes(32);
      const A = N.x25519PublicKey(a);
      same(A, P.x25519PublicKey(a));
      same(N.x25519(b, A), P.x25519(b, A));
      same(N.x25519(b, A), N.x25519(a, P.x25519PublicKey(b)));
      // An arbitrary 32-byte string (any bit 255) is a u on the curve or its twist.
      const u = rng.bytes(32);
      same(N.x25519(a, u), P.x25519(a, u));
    }
  });

  it('X25519 agreements bound to one private key equal the one-shot calls, for many peers and after the key cache fills', () => {
    const a = rng.bytes(32);
    const [nAgree, pAgree] = [N.x25519Agreement(a), P.x25519Agreement(a)];
    const peers = Array.from({ length: 16 }, () => N.x25519PublicKey(rng.bytes(32)));
    for (const pk of [...peers, ...peers]) { // each peer twice: the second import comes from the cache
      same(nAgree(pk), P.x25519(a, pk));
      same(pAgree(pk), N.x25519(a, pk));
    }
    // More distinct keys than the native provider's public-key cache holds: it starts over, results stay exact.
    for (let i = 0; i < 8300; i++) N.x25519(a, rng.bytes(32));
    for (const pk of peers) same(nAgree(pk), P.x25519(a, pk));
  });

  it('Ed25519 keys, signatures and verification of valid and corrupted signatures', () => {
    for (let i = 0; i < 12; i++) {
      const seed = rng.bytes(32);
      const msg = rng.bytes(randInt(300));
      const pk = N.ed25519PublicKey(seed);
      same(pk, P.ed25519PublicKey(seed));
      const sig = N.ed25519Sign(seed, msg);
      same(sig, P.ed25519Sign(seed, msg));
      expect(N.ed25519Verify(pk, msg, sig)).to.equal(true);
      expect(P.ed25519Verify(pk, msg, sig)).to.equal(true);
      const bad = sig.slice();
      bad[randInt(64)]! ^= 1 << randInt(8);
      agree((c) => c.ed25519Verify(pk, msg, bad));
      const randomKey = rng.bytes(32);
      agree((c) => c.ed25519Verify(randomKey, msg, sig));
      // S ≥ L (add L to S): malleated, must fail in both.
      agree((c) => c.ed25519Verify(pk, msg, addL(sig)));
    }
  });

  it('Ed25519 with a torsion component in A or R: both use the cofactorless equation', () => {
    // A' = [a]B + T and R' = [r]B + T with T of order 8: the cofactored equation
    // accepts every such signature, the cofactorless one [S]B = R + [k]A only
    // when the torsion cancels ([k]T = 0 for A', never for R').
    const { Point } = ed25519;
    const T = Point.fromBytes(fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'));
    const L = Point.Fn.ORDER;
    const kOf = (R: Uint8Array, A: Uint8Array, m: Uint8Array): bigint => leNum(sha512(concatBytes(R, A, m))) % L;
    let divisible = 0;
    for (let i = 0; i < 24; i++) {
      const a = leNum(rng.bytes(32)) % L;
      const r = leNum(rng.bytes(32)) % L;
      const msg = rng.bytes(8);
      // Mixed-order public key, honest R.
      const A = Point.BASE.multiply(a).add(T).toBytes();
      const R = Point.BASE.multiply(r).toBytes();
      const k = kOf(R, A, msg);
      const sig = concatBytes(R, numLe((r + k * a) % L));
      const expected = k % 8n === 0n;
      if (expected) divisible++;
      expect(N.ed25519Verify(A, msg, sig)).to.equal(expected);
      expect(P.ed25519Verify(A, msg, sig)).to.equal(expected);
      // Honest key, mixed-order R: rejected by both.
      const A2 = Point.BASE.multiply(a).toBytes();
      const R2 = Point.BASE.multiply(r).add(T).toBytes();
      const sig2 = concatBytes(R2, numLe((r + kOf(R2, A2, msg) * a) % L));
      expect(N.ed25519Verify(A2, msg, sig2)).to.equal(false);
      expect(P.ed25519Verify(A2, msg, sig2)).to.equal(false);
    }
    expect(divisible).to.be.greaterThan(0); // the accepting branch was exercised
  });

  it('SHA-256 and HKDF over random lengths, including info > 1024 bytes', () => {
    for (let i = 0; i < 30; i++) {
      const data = rng.bytes(randInt(2000));
      same(N.sha256(data), P.sha256(data));
      const ikm = rng.bytes(randInt(100));
      const salt = rng.bytes(randInt(100));
      const info = rng.bytes(i % 3 === 0 ? 1025 + randInt(2000) : randInt(1025));
      const length = i === 0 ? 8160 : randInt(600);
      same(N.hkdf(ikm, salt, info, length), P.hkdf(ikm, salt, info, length));
    }
  });

  it('AES-256-GCM: identical ciphertexts, each opens the other, same rejections', () => {
    for (let i = 0; i < 20; i++) {
      const key = rng.bytes(32);
      const nonce = rng.bytes(12);
      const pt = rng.bytes(randInt(3000));
      const aad = rng.bytes(randInt(50));
      const sealed = N.aesGcmSeal(key, nonce, pt, aad);
      same(sealed, P.aesGcmSeal(key, nonce, pt, aad));
      same(P.aesGcmOpen(key, nonce, sealed, aad), pt);
      same(N.aesGcmOpen(key, nonce, sealed, aad), pt);
      const bad = sealed.slice();
      bad[randInt(bad.length)]! ^= 1 << randInt(8);
      agree((c) => c.aesGcmOpen(key, nonce, bad, aad));
    }
  });

  for (const [name, keyLen] of [['AES-128-CTR', 16], ['AES-256-CTR', 32]] as const) it(`${name}: same keystream for fills of odd sizes continuing across calls`, () => {
    const gen = (c: CryptoProvider, key: Uint8Array, iv: Uint8Array) => (keyLen === 16 ? c.aes128Ctr(key, iv) : c.aes256Ctr(key, iv));
    for (let i = 0; i < 6; i++) {
      const key = rng.bytes(keyLen);
      // Half the ivs sit a few blocks below 2^128 so the stream crosses the wrap.
      const iv = i % 2 === 0 ? rng.bytes(16) : Uint8Array.from([...new Uint8Array(15).fill(0xff), 256 - 1 - randInt(8)]);
      const n = gen(N, key, iv);
      const p = gen(P, key, iv);
      let total = 0;
      for (let j = 0; j < 14; j++) {
        const size = j % 5 === 4 ? 16384 + randInt(70000) : randInt(40);
        const a = new Uint8Array(size);
        const b = new Uint8Array(size);
        n.fill(a);
        p.fill(b);
        same(a, b);
        total += size;
      }
      expect(total).to.be.greaterThan(16384);
    }
  });
});

/** Little-endian bytes to bigint, and a bigint to 32 little-endian bytes. */
const leNum = (b: Uint8Array): bigint => b.reduceRight((acc, x) => (acc << 8n) | BigInt(x), 0n);
const numLe = (n: bigint): Uint8Array => Uint8Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));

/** The signature with S replaced by S + L (little-endian), L = 2^252 + 27742317777372353535851937790883648493. */
function addL(sig: Uint8Array): Uint8Array {
  const L = 2n ** 252n + 27742317777372353535851937790883648493n;
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
  s += L;
  const out = sig.slice();
  for (let i = 32; i < 64; i++, s >>= 8n) out[i] = Number(s & 0xffn);
  return out;
}
