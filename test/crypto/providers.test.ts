/**
 * Known-answer and behaviour tests, run once for each provider (native and
 * portable). Vectors are the published constants of the cited RFC sections.
 */
import { sign as nodeSign, verify as nodeVerify, createPublicKey, createPrivateKey } from 'node:crypto';
import { expect } from 'chai';
import { CryptoError } from '../../src/errors.js';
import { DECRYPT, LOW_ORDER_KEY, toHex } from '../../src/crypto/_validate.js';
import { expectError, h, PROVIDERS } from './_helpers.js';

const xor = (a: Uint8Array, b: Uint8Array): Uint8Array => a.map((x, i) => x ^ b[i]!);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** RFC 8032 §7.1 TEST 1, TEST 2, TEST 3 (Ed25519). */
const RFC8032 = [
  {
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    pk: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    msg: '',
    sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    pk: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    msg: '72',
    sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    pk: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    msg: 'af82',
    sig: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
];

/** RFC 5869 Appendix A.1, A.2, A.3 (HKDF-SHA256). */
const seq = (from: number, to: number): string =>
  Array.from({ length: to - from + 1 }, (_, i) => (from + i).toString(16).padStart(2, '0')).join('');
const RFC5869 = [
  {
    ikm: '0b'.repeat(22), salt: seq(0x00, 0x0c), info: seq(0xf0, 0xf9), L: 42,
    okm: '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
  },
  {
    ikm: seq(0x00, 0x4f), salt: seq(0x60, 0xaf), info: seq(0xb0, 0xff), L: 82,
    okm: 'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87',
  },
  {
    ikm: '0b'.repeat(22), salt: '', info: '', L: 42,
    okm: '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
  },
];

/** NIST SP 800-38A §F.5.1 CTR-AES128.Encrypt. */
const SP800_38A = {
  key: '2b7e151628aed2a6abf7158809cf4f3c',
  ctr: 'f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff',
  pt: '6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710',
  ct: '874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee',
};

/** NIST SP 800-38A §F.5.5 CTR-AES256.Encrypt (same counter and plaintext as F.5.1). */
const SP800_38A_256 = {
  key: '603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4',
  ct: '601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c52b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6',
};

for (const c of PROVIDERS) {
  describe(`crypto provider: ${c.name}`, () => {
    describe('X25519', () => {
      it('RFC 7748 §5.2 scalar-multiplication vectors', () => {
        expect(toHex(c.x25519(
          h('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4'),
          h('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c'),
        ))).to.equal('c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552');
        // The input u has bit 255 set, which §5 says to ignore.
        expect(toHex(c.x25519(
          h('4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d'),
          h('e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493'),
        ))).to.equal('95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957');
      });

      it('RFC 7748 §5.2 iterated vector, 1 and 1000 iterations', () => {
        let k = h('09' + '00'.repeat(31));
        let u = k;
        for (let i = 1; i <= 1000; i++) {
          [k, u] = [c.x25519(k, u), k];
          if (i === 1) expect(toHex(k)).to.equal('422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079');
        }
        expect(toHex(k)).to.equal('684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51');
      });

      it('RFC 7748 §6.1 Diffie-Hellman', () => {
        const a = h('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
        const b = h('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
        const A = c.x25519PublicKey(a);
        const B = c.x25519PublicKey(b);
        expect(toHex(A)).to.equal('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
        expect(toHex(B)).to.equal('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
        const K = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
        expect(toHex(c.x25519(a, B))).to.equal(K);
        expect(toHex(c.x25519(b, A))).to.equal(K);
      });

      it('rejects the all-zero shared secret with CRYPTO_ERR_LOW_ORDER_KEY', () => {
        const a = h('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
        const err = expectError(() => c.x25519(a, new Uint8Array(32)), CryptoError, LOW_ORDER_KEY);
        expect(err.message).to.match(/low order|all zero/);
      });

      it('returns plain Uint8Arrays that do not alias the inputs', () => {
        const a = h('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
        const pub = c.x25519PublicKey(a);
        expect(Object.getPrototypeOf(pub)).to.equal(Uint8Array.prototype);
        expect(pub.byteLength).to.equal(32);
        expect(Object.getPrototypeOf(c.x25519(a, pub))).to.equal(Uint8Array.prototype);
      });
    });

    describe('Ed25519', () => {
      RFC8032.forEach((v, i) => {
        it(`RFC 8032 §7.1 TEST ${i + 1}`, () => {
          const seed = h(v.seed);
          const msg = h(v.msg);
          expect(toHex(c.ed25519PublicKey(seed))).to.equal(v.pk);
          expect(toHex(c.ed25519Sign(seed, msg))).to.equal(v.sig);
          expect(c.ed25519Verify(h(v.pk), msg, h(v.sig))).to.equal(true);
          // Any change to the message, signature or key breaks it.
          expect(c.ed25519Verify(h(v.pk), utf8('x'), h(v.sig))).to.equal(false);
          const sig = h(v.sig);
          sig[5]! ^= 1;
          expect(c.ed25519Verify(h(v.pk), msg, sig)).to.equal(false);
          expect(c.ed25519Verify(h(RFC8032[(i + 1) % 3]!.pk), msg, h(v.sig))).to.equal(false);
        });
      });

      it('rejects a small-order public key whose forged signature node:crypto alone accepts', () => {
        // A = identity, R = identity, S = 0 satisfies [S]B = R + [k]A for every message.
        const A = h('01' + '00'.repeat(31));
        const sig = h('01' + '00'.repeat(63));
        const spki = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(A).toString('base64url') }, format: 'jwk' });
        expect(nodeVerify(null, utf8('any message'), spki, sig)).to.equal(true); // why the pre-check exists
        expect(c.ed25519Verify(A, utf8('any message'), sig)).to.equal(false);
        // Same with the non-canonical encoding y = p + 1 of the identity.
        expect(c.ed25519Verify(h('ee' + 'ff'.repeat(30) + '7f'), utf8('any message'), sig)).to.equal(false);
      });

      it('returns false for wrong lengths and off-curve keys instead of throwing', () => {
        const v = RFC8032[1]!;
        expect(c.ed25519Verify(h(v.pk).subarray(0, 31), h(v.msg), h(v.sig))).to.equal(false);
        expect(c.ed25519Verify(h(v.pk), h(v.msg), h(v.sig + '00'))).to.equal(false);
        expect(c.ed25519Verify(h(v.pk), h(v.msg), h(v.sig).subarray(0, 63))).to.equal(false);
        // y = 2 is not the y of any curve point.
        expect(c.ed25519Verify(h('02' + '00'.repeat(31)), h(v.msg), h(v.sig))).to.equal(false);
      });

      it('signatures agree with node:crypto on a longer message', () => {
        const seed = h(RFC8032[2]!.seed);
        const msg = utf8('tally/ed25519 '.repeat(100));
        const key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: Buffer.from(seed).toString('base64url'), x: '' }, format: 'jwk' });
        expect(toHex(c.ed25519Sign(seed, msg))).to.equal(nodeSign(null, msg, key).toString('hex'));
      });
    });

    describe('SHA-256 and HKDF', () => {
      it('SHA-256 of "" and "abc" (FIPS 180-2 Appendix B.1)', () => {
        expect(toHex(c.sha256(new Uint8Array(0)))).to.equal('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
        expect(toHex(c.sha256(utf8('abc')))).to.equal('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
      });

      RFC5869.forEach((v, i) => {
        it(`RFC 5869 Appendix A.${i + 1}`, () => {
          expect(toHex(c.hkdf(h(v.ikm), h(v.salt), h(v.info), v.L))).to.equal(v.okm);
        });
      });

      it('HKDF lengths 0 and 255·32, and a prefix property', () => {
        const v = RFC5869[0]!;
        expect(c.hkdf(h(v.ikm), h(v.salt), h(v.info), 0)).to.deep.equal(new Uint8Array(0));
        const max = c.hkdf(h(v.ikm), h(v.salt), h(v.info), 8160);
        expect(max.length).to.equal(8160);
        expect(toHex(max.subarray(0, 42))).to.equal(v.okm); // OKM is a prefix of T(1) ‖ T(2) ‖ …
      });

      it('HKDF accepts info longer than 1024 bytes', () => {
        const info = new Uint8Array(3000).fill(7);
        const out = c.hkdf(utf8('ikm'), utf8('salt'), info, 64);
        expect(out.length).to.equal(64);
        expect(toHex(out)).to.not.equal(toHex(c.hkdf(utf8('ikm'), utf8('salt'), info.subarray(0, 2999), 64)));
      });
    });

    describe('AES-256-GCM', () => {
      const key = h(seq(0x00, 0x1f));
      const nonce = h(seq(0x40, 0x4b));
      const aad = utf8('header');

      it('seal then open round-trips, including the empty plaintext', () => {
        for (const pt of [new Uint8Array(0), utf8('x'), new Uint8Array(1000).fill(9)]) {
          const sealed = c.aesGcmSeal(key, nonce, pt, aad);
          expect(sealed.length).to.equal(pt.length + 16);
          expect(c.aesGcmOpen(key, nonce, sealed, aad)).to.deep.equal(pt);
        }
      });

      it('any change to ciphertext, tag, aad, nonce or key fails with CRYPTO_ERR_DECRYPT', () => {
        const sealed = c.aesGcmSeal(key, nonce, utf8('secret share'), aad);
        for (const i of [0, 5, sealed.length - 16, sealed.length - 1]) {
          const bad = sealed.slice();
          bad[i]! ^= 0x80;
          expectError(() => c.aesGcmOpen(key, nonce, bad, aad), CryptoError, DECRYPT, 'AES-GCM authentication failed');
        }
        expectError(() => c.aesGcmOpen(key, nonce, sealed, utf8('headeR')), CryptoError, DECRYPT);
        expectError(() => c.aesGcmOpen(key, h(seq(0x41, 0x4c)), sealed, aad), CryptoError, DECRYPT);
        expectError(() => c.aesGcmOpen(h(seq(0x01, 0x20)), nonce, sealed, aad), CryptoError, DECRYPT);
        expectError(() => c.aesGcmOpen(key, nonce, sealed.subarray(0, sealed.length - 1), aad), CryptoError, DECRYPT);
      });
    });

    describe('AES-128-CTR keystream', () => {
      it('NIST SP 800-38A §F.5.1 CTR-AES128 (keystream = PT xor CT)', () => {
        const out = new Uint8Array(64);
        c.aes128Ctr(h(SP800_38A.key), h(SP800_38A.ctr)).fill(out);
        expect(toHex(out)).to.equal(toHex(xor(h(SP800_38A.pt), h(SP800_38A.ct))));
      });

      it('fills of any sizes continue the stream exactly', () => {
        const key = h(SP800_38A.key);
        const iv = h(SP800_38A.ctr);
        const sizes = [0, 1, 15, 16, 17, 3, 65535, 2, 65537, 100003, 31, 131072];
        const total = sizes.reduce((a, b) => a + b, 0);
        const whole = new Uint8Array(total);
        c.aes128Ctr(key, iv).fill(whole);
        const gen = c.aes128Ctr(key, iv);
        const pieces = new Uint8Array(total);
        let off = 0;
        for (const n of sizes) {
          gen.fill(pieces.subarray(off, off + n));
          off += n;
        }
        expect(toHex(pieces.subarray(0, 64))).to.equal(toHex(xor(h(SP800_38A.pt), h(SP800_38A.ct))));
        expect(Buffer.from(pieces).equals(Buffer.from(whole))).to.equal(true);
      });

      it('the 128-bit counter wraps from ff…ff to 00…00', () => {
        const key = h(SP800_38A.key);
        const out = new Uint8Array(48);
        c.aes128Ctr(key, h('ff'.repeat(16))).fill(out);
        const fromZero = new Uint8Array(32);
        c.aes128Ctr(key, new Uint8Array(16)).fill(fromZero);
        expect(toHex(out.subarray(16))).to.equal(toHex(fromZero));
        expect(toHex(out.subarray(0, 16))).to.not.equal(toHex(fromZero.subarray(0, 16)));
      });

      it('copies key and iv: later changes to the caller arrays do not matter', () => {
        const key = h(SP800_38A.key);
        const iv = h(SP800_38A.ctr);
        const gen = c.aes128Ctr(key, iv);
        key.fill(0);
        iv.fill(0);
        const out = new Uint8Array(16);
        gen.fill(out);
        expect(toHex(out)).to.equal(toHex(xor(h(SP800_38A.pt), h(SP800_38A.ct)).subarray(0, 16)));
      });
    });

    describe('AES-256-CTR keystream', () => {
      const ks = (): string => toHex(xor(h(SP800_38A.pt), h(SP800_38A_256.ct)));

      it('NIST SP 800-38A §F.5.5 CTR-AES256 (keystream = PT xor CT)', () => {
        const out = new Uint8Array(64);
        c.aes256Ctr(h(SP800_38A_256.key), h(SP800_38A.ctr)).fill(out);
        expect(toHex(out)).to.equal(ks());
      });

      it('fills of any sizes continue the stream exactly', () => {
        const key = h(SP800_38A_256.key);
        const iv = h(SP800_38A.ctr);
        const sizes = [0, 1, 15, 16, 17, 3, 65535, 2, 65537, 31];
        const total = sizes.reduce((a, b) => a + b, 0);
        const whole = new Uint8Array(total);
        c.aes256Ctr(key, iv).fill(whole);
        const gen = c.aes256Ctr(key, iv);
        const pieces = new Uint8Array(total);
        let off = 0;
        for (const n of sizes) {
          gen.fill(pieces.subarray(off, off + n));
          off += n;
        }
        expect(toHex(pieces.subarray(0, 64))).to.equal(ks());
        expect(Buffer.from(pieces).equals(Buffer.from(whole))).to.equal(true);
      });

      it('the 128-bit counter wraps from ff…ff to 00…00', () => {
        const key = h(SP800_38A_256.key);
        const out = new Uint8Array(48);
        c.aes256Ctr(key, h('ff'.repeat(16))).fill(out);
        const fromZero = new Uint8Array(32);
        c.aes256Ctr(key, new Uint8Array(16)).fill(fromZero);
        expect(toHex(out.subarray(16))).to.equal(toHex(fromZero));
      });

      it('is not the AES-128 keystream of the key\'s first half', () => {
        const out128 = new Uint8Array(16);
        c.aes128Ctr(h(SP800_38A_256.key).subarray(0, 16), h(SP800_38A.ctr)).fill(out128);
        expect(toHex(out128)).to.not.equal(ks().slice(0, 32));
      });
    });
  });
}
