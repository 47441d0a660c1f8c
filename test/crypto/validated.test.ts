/**
 * The validating wrapper on its own: bad inputs never reach the raw provider,
 * and the raw providers' by-value failure reports become the typed errors.
 */
import { expect } from 'chai';
import { CryptoError, ValidationError } from '../../src/errors.js';
import { BAD_INPUT, DECRYPT, LOW_ORDER_KEY } from '../../src/crypto/_validate.js';
import { lowOrderLists } from '../../src/crypto/lowOrder.js';
import { nativeProvider, nativeRaw } from '../../src/crypto/native.js';
import { portableProvider, portableRaw } from '../../src/crypto/portable.js';
import type { RawCryptoProvider } from '../../src/crypto/types.js';
import { validated } from '../../src/crypto/validated.js';
import { expectError } from './_helpers.js';

/** A raw provider that records which operations ran and returns fixed failure values. */
function spy(): { raw: RawCryptoProvider; calls: string[] } {
  const calls: string[] = [];
  const rec = <T>(name: string, v: T) => (): T => { calls.push(name); return v; };
  const ks = { fill: (out: Uint8Array) => { calls.push('fill'); out.fill(0xab); } };
  const raw: RawCryptoProvider = {
    name: 'spy',
    x25519PublicKey: rec('x25519PublicKey', new Uint8Array(32)),
    x25519: rec('x25519', new Uint8Array(32)), // the all-zero secret
    x25519Agreement: () => { calls.push('x25519Agreement'); return () => { calls.push('agree'); return new Uint8Array(32); }; },
    ed25519PublicKey: rec('ed25519PublicKey', new Uint8Array(32)),
    ed25519Sign: rec('ed25519Sign', new Uint8Array(64)),
    ed25519Verify: rec('ed25519Verify', true),
    sha256: rec('sha256', new Uint8Array(32)),
    hkdf: rec('hkdf', new Uint8Array(0)),
    aesGcmSeal: rec('aesGcmSeal', new Uint8Array(16)),
    aesGcmOpen: rec('aesGcmOpen', null), // tag failure
    aes128Ctr: rec('aes128Ctr', ks),
    aes256Ctr: rec('aes256Ctr', ks),
  };
  return { raw, calls };
}

describe('crypto/validated', () => {
  it('the exported providers are the wrapper around the raw ones', () => {
    expect(nativeProvider.name).to.equal(nativeRaw.name);
    expect(portableProvider.name).to.equal(portableRaw.name);
    expect(nativeProvider).to.not.equal(nativeRaw);
  });

  it('invalid inputs are refused before the raw provider runs', () => {
    const { raw, calls } = spy();
    const c = validated(raw);
    const b = (n: number) => new Uint8Array(n).fill(1);
    expectError(() => c.x25519PublicKey(b(31)), ValidationError, BAD_INPUT);
    expectError(() => c.x25519(b(32), b(33)), ValidationError, BAD_INPUT);
    expectError(() => c.ed25519Sign(b(32), 'm' as unknown as Uint8Array), ValidationError, BAD_INPUT);
    expectError(() => c.hkdf(b(1), b(1), b(1), 8161), ValidationError, BAD_INPUT);
    expectError(() => c.aesGcmOpen(b(32), b(12), b(15), b(0)), ValidationError, BAD_INPUT);
    expectError(() => c.aes256Ctr(b(16), b(16)), ValidationError, BAD_INPUT);
    expectError(() => c.aes128Ctr(b(32), b(16)), ValidationError, BAD_INPUT);
    expect(c.ed25519Verify(b(31), b(1), b(64))).to.equal(false);
    // A low-order public key is refused without computing anything.
    expectError(() => c.x25519(b(32), lowOrderLists().x25519[1]!), CryptoError, LOW_ORDER_KEY, 'X25519 public key has low order');
    expectError(() => c.x25519Agreement(b(31)), ValidationError, BAD_INPUT);
    expect(calls).to.deep.equal([]);
    const agree = c.x25519Agreement(b(32));
    expectError(() => agree(b(31)), ValidationError, BAD_INPUT);
    expectError(() => agree(lowOrderLists().x25519[1]!), CryptoError, LOW_ORDER_KEY, 'X25519 public key has low order');
    expect(calls).to.deep.equal(['x25519Agreement']);
    calls.length = 0;
    const gen = c.aes256Ctr(b(32), b(16));
    expectError(() => gen.fill([0, 0] as unknown as Uint8Array), ValidationError, BAD_INPUT, '"out" expected Uint8Array, got type=object');
    expect(calls).to.deep.equal(['aes256Ctr']);
  });

  it('turns by-value failures into typed errors', () => {
    const { raw, calls } = spy();
    const c = validated(raw);
    const b = (n: number) => new Uint8Array(n).fill(9);
    expectError(() => c.x25519(b(32), b(32)), CryptoError, LOW_ORDER_KEY, 'X25519 shared secret is all zero');
    expectError(() => c.x25519Agreement(b(32))(b(32)), CryptoError, LOW_ORDER_KEY, 'X25519 shared secret is all zero');
    expectError(() => c.aesGcmOpen(b(32), b(12), b(16), b(0)), CryptoError, DECRYPT, 'AES-GCM authentication failed');
    const out = new Uint8Array(3);
    c.aes128Ctr(b(16), b(16)).fill(out);
    expect(Array.from(out)).to.deep.equal([0xab, 0xab, 0xab]);
    expect(calls).to.deep.equal(['x25519', 'x25519Agreement', 'agree', 'aesGcmOpen', 'aes128Ctr', 'fill']);
  });

  it('both raw providers report a failed GCM tag as null and release nothing', () => {
    const key = new Uint8Array(32).fill(3), nonce = new Uint8Array(12).fill(4), aad = Uint8Array.of(1);
    for (const raw of [nativeRaw, portableRaw]) {
      const sealed = raw.aesGcmSeal(key, nonce, Uint8Array.of(1, 2, 3), aad);
      expect(Array.from(raw.aesGcmOpen(key, nonce, sealed, aad)!), raw.name).to.deep.equal([1, 2, 3]);
      sealed[0]! ^= 1;
      expect(raw.aesGcmOpen(key, nonce, sealed, aad), raw.name).to.equal(null);
    }
  });
});
