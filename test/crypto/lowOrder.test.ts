/**
 * The low-order key blocklists, checked against independent computations:
 * OpenSSL's and noble's raw X25519 (which refuse an all-zero result), noble's
 * edwards25519 point arithmetic, and the Wycheproof X25519 file.
 */
import { diffieHellman, createPrivateKey, createPublicKey } from 'node:crypto';
import { expect } from 'chai';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { CryptoError, ValidationError } from '../../src/errors.js';
import { BAD_INPUT, LOW_ORDER_KEY, toHex } from '../../src/crypto/_validate.js';
import { DeterministicRng } from '../../src/crypto/rng.js';
import {
  isLowOrderEd25519,
  isLowOrderX25519,
  isNonCanonicalEd25519,
  lowOrderLists,
} from '../../src/crypto/lowOrder.js';
import { expectError, h, loadFixture, PROVIDERS, type WycheproofCase, type WycheproofFile } from './_helpers.js';

const P = 2n ** 255n - 19n;
const rng = new DeterministicRng('tally/crypto/lowOrder');
const b64u = (u: Uint8Array): string => Buffer.from(u).toString('base64url');
const le = (n: bigint): Uint8Array => Uint8Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));
const withBit255 = (k: Uint8Array): Uint8Array => {
  const c = k.slice();
  c[31]! |= 0x80;
  return c;
};

/** X25519 straight through OpenSSL, bypassing the providers' checks; null when OpenSSL refuses. */
function opensslX25519(priv: Uint8Array, pub: Uint8Array): Uint8Array | null {
  try {
    const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64u(priv), x: '' }, format: 'jwk' });
    const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64u(pub) }, format: 'jwk' });
    return new Uint8Array(diffieHellman({ privateKey, publicKey }));
  } catch {
    return null;
  }
}

describe('isLowOrderX25519', () => {
  const lists = lowOrderLists();

  it('lists 7 u-coordinates, each of which OpenSSL and noble refuse (all-zero result)', () => {
    expect(lists.x25519).to.have.length(7);
    for (const entry of lists.x25519) {
      for (const key of [entry, withBit255(entry)]) {
        expect(isLowOrderX25519(key), toHex(key)).to.equal(true);
        expect(opensslX25519(rng.bytes(32), key), toHex(key)).to.equal(null);
        expect(() => x25519.getSharedSecret(rng.bytes(32), key), toHex(key)).to.throw();
        for (const c of PROVIDERS) expectError(() => c.x25519(rng.bytes(32), key), CryptoError, LOW_ORDER_KEY);
      }
    }
  });

  it("Bernstein's entries ≥ 2^255 are not low order under RFC 7748 decoding (bit 255 cleared)", () => {
    const order8 = [
      325606250916557431795983626356110631294008115727848805560023387167927233504n,
      39382357235489614581723060781553021112529911719440698176882885853963445705823n,
    ];
    for (const u of [P + order8[0]!, P + order8[1]!, 2n * P - 1n, 2n * P, 2n * P + 1n]) {
      expect(u >= 2n ** 255n).to.equal(true);
      const key = le(u);
      expect(isLowOrderX25519(key), toHex(key)).to.equal(false);
      const priv = rng.bytes(32);
      const shared = opensslX25519(priv, key);
      expect(shared).to.not.equal(null);
      for (const c of PROVIDERS) expect(toHex(c.x25519(priv, key))).to.equal(toHex(shared!));
    }
  });

  it('matches exactly the Wycheproof cases with an all-zero shared secret', () => {
    type Case = WycheproofCase & { public: string; shared: string };
    const file = loadFixture<WycheproofFile<{ tests: Case[] }>>('wycheproof/x25519_test.json');
    let lowOrder = 0;
    for (const group of file.testGroups) {
      for (const v of group.tests) {
        const zero = /^0+$/.test(v.shared);
        expect(isLowOrderX25519(h(v.public)), `(${v.tcId}, ${v.result}): ${v.comment}`).to.equal(zero);
        if (zero) lowOrder++;
      }
    }
    expect(lowOrder).to.be.greaterThan(20);
  });

  it('is false for honest public keys', () => {
    for (let i = 0; i < 50; i++) expect(isLowOrderX25519(x25519.getPublicKey(rng.bytes(32)))).to.equal(false);
  });

  it('rejects invalid inputs', () => {
    expectError(() => isLowOrderX25519(new Uint8Array(31)), ValidationError, BAD_INPUT, '"publicKey" expected Uint8Array of length 32, got length=31');
    expectError(() => isLowOrderX25519('00' as unknown as Uint8Array), ValidationError, BAD_INPUT, '"publicKey" expected Uint8Array of length 32, got type=string');
  });
});

describe('isLowOrderEd25519 / isNonCanonicalEd25519', () => {
  const lists = lowOrderLists();

  it('every entry decodes (leniently, ZIP-215) to a point of small order; 8 are canonical', () => {
    expect(lists.ed25519).to.have.length(14);
    const canonical = new Set<string>();
    for (const entry of lists.ed25519) {
      expect(isLowOrderEd25519(entry)).to.equal(true);
      expect(ed25519.Point.fromBytes(entry, true).isSmallOrder(), toHex(entry)).to.equal(true);
      try {
        const pt = ed25519.Point.fromBytes(entry, false); // RFC 8032 strict decoding
        canonical.add(toHex(pt.toBytes()));
        expect(toHex(pt.toBytes())).to.equal(toHex(entry));
      } catch {
        // a non-canonical encoding: strict decoding refuses it
      }
    }
    expect(canonical.size).to.equal(8);
    // The 8 canonical entries are all 8 torsion points: T·k for k = 0..7 with T of order 8.
    const T = ed25519.Point.fromBytes(h('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'));
    const torsion = new Set<string>();
    for (let k = 0n, Q = ed25519.Point.ZERO; k < 8n; k++, Q = Q.add(T)) torsion.add(toHex(Q.toBytes()));
    expect([...torsion].sort()).to.deep.equal([...canonical].sort());
  });

  it('is false for honest public keys', () => {
    for (let i = 0; i < 20; i++) {
      const pk = ed25519.getPublicKey(rng.bytes(32));
      expect(isLowOrderEd25519(pk)).to.equal(false);
      expect(isNonCanonicalEd25519(pk)).to.equal(false);
    }
  });

  it('isNonCanonicalEd25519 flags y ≥ p exactly, with either sign bit', () => {
    for (const [y, expected] of [[P - 1n, false], [P, true], [P + 1n, true], [2n ** 255n - 1n, true], [0n, false], [2n ** 254n, false]] as const) {
      expect(isNonCanonicalEd25519(le(y)), `y=${y}`).to.equal(expected);
      expect(isNonCanonicalEd25519(withBit255(le(y))), `y=${y}, sign 1`).to.equal(expected);
    }
  });

  it('rejects invalid inputs', () => {
    expectError(() => isLowOrderEd25519(new Uint8Array(33)), ValidationError, BAD_INPUT, '"publicKey" expected Uint8Array of length 32, got length=33');
    expectError(() => isNonCanonicalEd25519([] as unknown as Uint8Array), ValidationError, BAD_INPUT, '"publicKey" expected Uint8Array of length 32, got type=object');
  });
});
