import { expect } from 'chai';
import { nativeProvider as provider } from '../../src/crypto/native.js';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { lowOrderLists } from '../../src/crypto/lowOrder.js';
import { AdvertisedKeySet, checkAdvertisement } from '../../src/secagg/advertisement.js';
import type { SessionConfig } from '../../src/secagg/config.js';
import { isCanonicalX25519 } from '../../src/secagg/keys.js';
import { SecAggError } from '../../src/errors.js';

/** 2^255 − 19 + d, little-endian. */
const pPlus = (d: bigint): Uint8Array => {
  const v = (1n << 255n) - 19n + d;
  return Uint8Array.from({ length: 32 }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
};

describe('secagg: canonical X25519 public keys (spec §3.2)', () => {
  const rng = new DeterministicRng('canonical-keys');
  const honest = Array.from({ length: 50 }, () => provider.x25519PublicKey(rng.bytes(32)));

  it('every key X25519(sk, 9) is canonical', () => {
    for (const k of honest) expect(isCanonicalX25519(k)).to.equal(true);
  });

  it('bit 255 set, u = p, p + 9 and 2^255 − 1 are not; p − 1 and 0 are (canonical, though low-order)', () => {
    const high = honest[0]!.slice();
    high[31]! |= 0x80;
    expect(isCanonicalX25519(high)).to.equal(false);
    expect(isCanonicalX25519(pPlus(0n))).to.equal(false);
    expect(isCanonicalX25519(pPlus(9n))).to.equal(false);
    expect(isCanonicalX25519(pPlus(18n))).to.equal(false);
    expect(isCanonicalX25519(pPlus(-1n))).to.equal(true);
    expect(isCanonicalX25519(new Uint8Array(32))).to.equal(true);
    expect(isCanonicalX25519(new Uint8Array(31))).to.equal(false);
    // X25519 really does treat the aliases as the same key: same shared secret.
    const sk = rng.bytes(32);
    expect(provider.x25519(sk, high)).to.deep.equal(provider.x25519(sk, honest[0]!));
    expect(provider.x25519(sk, pPlus(9n))).to.deep.equal(provider.x25519(sk, Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 9 : 0))));
  });

  it('the advertisement check refuses them with SECAGG_ERR_NON_CANONICAL_KEY, after the low-order check', () => {
    const config: SessionConfig = { nonce: new Uint8Array(32), clientIds: [1, 2, 3], threshold: 2, bits: 8, dim: 1, threat: 'semi-honest', graph: { kind: 'complete' } };
    const code = (cPk: Uint8Array, seen = new AdvertisedKeySet()) => {
      try {
        checkAdvertisement(config, provider, new Uint8Array(32), { id: 2, cPk, sPk: honest[1]! }, seen, 0);
        return 'accepted';
      } catch (err) {
        return (err as SecAggError).code;
      }
    };
    const high = honest[0]!.slice();
    high[31]! |= 0x80;
    const seen = new AdvertisedKeySet();
    expect(code(honest[0]!, seen)).to.equal('accepted');
    // A copy of an accepted key with bit 255 flipped passes the byte comparison but not the canonical check.
    expect(code(high, seen)).to.equal('SECAGG_ERR_NON_CANONICAL_KEY');
    expect(code(pPlus(9n))).to.equal('SECAGG_ERR_NON_CANONICAL_KEY');
    // p and p + 1 are low-order as well as non-canonical: low-order is checked first.
    expect(code(pPlus(0n))).to.equal('SECAGG_ERR_LOW_ORDER_KEY');
    expect(code(pPlus(1n))).to.equal('SECAGG_ERR_LOW_ORDER_KEY');
    const lowHigh = lowOrderLists().x25519[2]!.slice();
    lowHigh[31]! |= 0x80;
    expect(code(lowHigh)).to.equal('SECAGG_ERR_LOW_ORDER_KEY');
  });

  it('the advertised-key set finds exactly the keys added, also among keys that share their first bytes', () => {
    const set = new AdvertisedKeySet();
    const base = rng.bytes(32);
    // Same 6-byte index, different keys: compared whole, not by the index.
    const siblings = Array.from({ length: 5 }, (_, i) => { const k = base.slice(); k[31] = i; k[6] = 255 - i; return k; });
    for (const k of siblings.slice(0, 3)) set.add(k);
    for (const k of siblings.slice(0, 3)) expect(set.has(k.slice())).to.equal(true);
    for (const k of siblings.slice(3)) expect(set.has(k)).to.equal(false);
    for (const k of honest) expect(set.has(k)).to.equal(false);
    for (const k of honest) set.add(k);
    for (const k of honest) expect(set.has(Uint8Array.from(k))).to.equal(true);
    const flipped = honest[7]!.slice();
    flipped[0]! ^= 1;
    expect(set.has(flipped)).to.equal(false);
  });
});
