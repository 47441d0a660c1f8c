import { createCipheriv, createHash } from 'node:crypto';
import { expect } from 'chai';
import { ValidationError } from '../../src/errors.js';
import { Drbg } from '../../src/crypto/drbg.js';
import { nativeProvider } from '../../src/crypto/native.js';
import { portableProvider } from '../../src/crypto/portable.js';
import { CountingRng, DeterministicRng, DRBG_LABEL, systemRng } from '../../src/crypto/rng.js';
import { rotationSigns } from '../../src/dp/hadamard.js';
import { expectError } from './_helpers.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The DRBG written out with node:crypto: AES-256-CTR under SHA-256(label ‖ seed), zero counter block. */
function reference(label: string, seed: Uint8Array | string, n: number): string {
  const key = createHash('sha256').update(label).update(seed).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(n)).toString('hex');
}

describe('crypto/rng', () => {
  it('CountingRng yields 00 01 02 … and wraps', () => {
    const r = new CountingRng();
    expect(Array.from(r.bytes(3))).to.deep.equal([0, 1, 2]);
    const big = r.bytes(300);
    expect(big[0]).to.equal(3);
    expect(big[253]).to.equal(0);
  });

  it('DeterministicRng is reproducible and continues its stream', () => {
    const a = new DeterministicRng('seed');
    const b = new DeterministicRng('seed');
    const whole = b.bytes(64);
    const parts = new Uint8Array([...a.bytes(10), ...a.bytes(54)]);
    expect(hex(parts)).to.equal(hex(whole));
    expect(hex(new DeterministicRng('other').bytes(16))).to.not.equal(hex(whole.subarray(0, 16)));
  });

  it('DeterministicRng is AES-256-CTR under SHA-256("tally/drbg/v1" ‖ seed) with either provider', () => {
    expect(DRBG_LABEL).to.equal('tally/drbg/v1');
    // A pinned value of the stream (secagg-v1 drbg.json carries more).
    expect(hex(new DeterministicRng('').bytes(16))).to.equal(reference('tally/drbg/v1', '', 16));
    for (const seed of ['', 'seed', 'tally/vectors/secagg-v1/x', new Uint8Array(0), Uint8Array.of(0, 1, 255)]) {
      const want = reference('tally/drbg/v1', seed, 70000);
      for (const p of [nativeProvider, portableProvider]) {
        const r = new DeterministicRng(seed, p);
        expect(hex(new Uint8Array([...r.bytes(1), ...r.bytes(65536), ...r.bytes(4463)])), p.name).to.equal(want);
      }
    }
  });

  it('Drbg separates labels: the same seed gives unrelated streams', () => {
    const seed = Uint8Array.of(1, 2, 3);
    expect(hex(new Drbg('tally/drbg/v1', seed).bytes(32))).to.equal(hex(new DeterministicRng(seed).bytes(32)));
    expect(hex(new Drbg('tally/dp/rotation/v1', seed).bytes(32))).to.equal(reference('tally/dp/rotation/v1', seed, 32));
    expect(hex(new Drbg('tally/dp/rotation/v1', seed).bytes(32))).to.not.equal(hex(new DeterministicRng(seed).bytes(32)));
    // Byte labels equal their UTF-8 strings.
    expect(hex(new Drbg(new TextEncoder().encode('tally/drbg/v1'), seed).bytes(16))).to.equal(hex(new DeterministicRng(seed).bytes(16)));
    expectError(() => new Drbg('x', 5 as unknown as string), ValidationError, 'CRYPTO_ERR_BAD_INPUT', '"seed" expected string or Uint8Array, got type=number');
    expectError(() => new Drbg(null as unknown as string, seed), ValidationError, 'CRYPTO_ERR_BAD_INPUT', '"label" expected string or Uint8Array, got type=null');
  });

  it('the DP rotation signs are the rotation-label DRBG', () => {
    const seed = new Uint8Array(16).fill(7);
    expect(hex(rotationSigns(seed, 1000))).to.equal(reference('tally/dp/rotation/v1', seed, 125));
    expect(hex(rotationSigns(seed, 1000))).to.equal(hex(new Drbg('tally/dp/rotation/v1', seed, portableProvider).bytes(125)));
  });

  it('systemRng fills more than one getRandomValues block', () => {
    const x = systemRng.bytes(70000);
    expect(x.length).to.equal(70000);
    expect(x.subarray(65536).some((v) => v !== 0)).to.equal(true);
  });
});
