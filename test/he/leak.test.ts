/**
 * No SEAL object is left behind: node-seal's WebAssembly memory stays the
 * same size across 50 rounds of keygen, encrypt, add, finish, decrypt and
 * dispose (it grows and never shrinks, so any leak would show), while
 * leaking one round's ciphertexts on purpose makes it grow.
 */
import { expect } from 'chai';
import { heParams } from '../../src/he/params.js';
import { heContext, sealHeapBytes, type SealCipherText } from '../../src/he/seal.js';
import { HE_ENVELOPE_HEADER, HeAccumulator, heDecryptSum, heEncrypt, heKeygen } from '../../src/he/sum.js';

const p = heParams(3, 16);
const LENGTH = 3 * 4096 - 5;

async function round(): Promise<void> {
  const key = await heKeygen(p);
  const acc = await HeAccumulator.create(p, LENGTH);
  try {
    const expected = new Float64Array(LENGTH);
    for (let s = 0; s < 3; s++) {
      const v = new Uint32Array(LENGTH);
      for (let i = 0; i < LENGTH; i++) { v[i] = (i * 7919 + s * 104729) % 65536; expected[i] += v[i]!; }
      acc.add(await heEncrypt(key, v));
    }
    const sum = await heDecryptSum(key, acc.finish());
    if (sum.values.some((x, i) => x !== expected[i])) throw new Error('wrong sum');
  } finally {
    acc.dispose();
  }
}

describe('he: no SEAL object leaks', function () {
  this.timeout(60_000);

  it('the WebAssembly memory is flat across 50 rounds', async () => {
    for (let r = 0; r < 3; r++) await round();
    const before = await sealHeapBytes();
    expect(before, 'node-seal\'s memory was found').to.be.a('number');
    const sizes: number[] = [];
    for (let r = 0; r < 50; r++) {
      await round();
      sizes.push((await sealHeapBytes())!);
    }
    expect(sizes.every((s) => s === before), `heap ${before} → ${sizes.join(', ')}`).to.equal(true);
  });

  it('the WebAssembly memory is flat across 20 he+masks sessions (ceremony, masked encryption, mask removal, decryption)', async () => {
    const { simulateHe } = await import('../../src/he/simulate.js');
    const { nativeProvider } = await import('../../src/crypto/native.js');
    const session = async (r: number) => {
      const out = await simulateHe({
        mode: 'he+masks', clients: 4, dim: 4100, bits: 16, threshold: 3, threat: 'semi-honest', graph: { kind: 'complete' },
        provider: nativeProvider, seed: `leak-${r}`, drops: new Map([[3, 'r2' as const]]),
      });
      if (out.selfCheck !== true) throw new Error('wrong sum');
    };
    for (let r = 0; r < 3; r++) await session(r);
    const before = await sealHeapBytes();
    const sizes: number[] = [];
    for (let r = 0; r < 20; r++) {
      await session(r);
      sizes.push((await sealHeapBytes())!);
    }
    expect(sizes.every((s) => s === before), `heap ${before} → ${sizes.join(', ')}`).to.equal(true);
  });

  it('the measure sees a leak: ciphertexts kept alive grow the memory', async () => {
    const hc = await heContext(p);
    const key = await heKeygen(p);
    const env = await heEncrypt(key, new Uint32Array(4096));
    const chunk = env.subarray(HE_ENVELOPE_HEADER);
    const before = (await sealHeapBytes())!;
    const kept: SealCipherText[] = [];
    try {
      // 50 rounds leaking one round's worth: 3 sites × 3 ciphertexts of 64 KiB each.
      for (let i = 0; i < 50 * 9 && (await sealHeapBytes()) === before; i++) {
        const ct = hc.lib.CipherText();
        kept.push(ct);
        ct.loadArray(hc.context, chunk);
      }
      expect((await sealHeapBytes())!).to.be.greaterThan(before);
    } finally {
      for (const ct of kept) ct.delete();
    }
  });
});
