/**
 * he-sum-v1 summation: exact sums, refusals (inputs, too many sites, another
 * key, set or length), malformed bytes that must never crash the coordinator,
 * key import, and the load failure.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CodecError, HE_CODES, HeError, TallyError } from '../../src/errors.js';
import { heParams, type HeParams } from '../../src/he/params.js';
import { heContext, loadSealFrom } from '../../src/he/seal.js';
import {
  ciphertextBytes, HE_ENVELOPE_HEADER, HeAccumulator, heDecryptSum, heEncrypt, heImportKey, heKeygen, readHeEnvelope, type HeSecretKey,
} from '../../src/he/sum.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function randomVector(length: number, bits: number): Uint32Array {
  const v = new Uint32Array(length);
  const words = new Uint32Array(randomBytes(length * 4).buffer);
  for (let i = 0; i < length; i++) v[i] = bits === 32 ? words[i]! : words[i]! % 2 ** bits;
  return v;
}

async function codeOf(f: () => unknown): Promise<string> {
  try {
    await f();
  } catch (err) {
    expect(err).to.be.instanceOf(TallyError);
    return (err as TallyError).code;
  }
  throw new Error('did not throw');
}

/** Encrypts n random vectors, sums them at an accumulator, decrypts, and compares with the plain sum. */
async function roundTrip(p: HeParams, key: HeSecretKey, sites: number, length: number, fill?: (s: number) => Uint32Array): Promise<void> {
  const expected = new Float64Array(length);
  const acc = await HeAccumulator.create(p, length);
  try {
    for (let s = 0; s < sites; s++) {
      const v = fill?.(s) ?? randomVector(length, p.bits);
      for (let i = 0; i < length; i++) expected[i] += v[i]!;
      acc.add(await heEncrypt(key, v));
    }
    expect(acc.sites).to.equal(sites);
    const sum = await heDecryptSum(key, acc.finish());
    expect(sum.sites).to.equal(sites);
    expect(sum.values.length).to.equal(length);
    for (let i = 0; i < length; i++) if (sum.values[i] !== expected[i]) expect.fail(`slot ${i}: ${sum.values[i]} ≠ ${expected[i]}`);
  } finally {
    acc.dispose();
  }
}

describe('he/sum', function () {
  this.timeout(60_000);
  const p10 = heParams(10, 16);
  let key: HeSecretKey;
  before(async () => { key = await heKeygen(p10); });

  describe('exact sums', () => {
    it('n sites of b bits, lengths that are not multiples of N', async () => {
      await roundTrip(p10, key, 10, 4097);
      await roundTrip(p10, key, 3, 1);
      for (const [n, b, length] of [[2, 1, 4096], [5, 8, 5000], [7, 32, 9000]] as const) {
        const p = heParams(n, b);
        await roundTrip(p, await heKeygen(p), n, length);
      }
    });

    it('at the bound: every site at 2^b − 1 sums to n·(2^b − 1) without wrapping', async () => {
      for (const [n, b] of [[10, 16], [3, 32]] as const) {
        const p = heParams(n, b);
        await roundTrip(p, await heKeygen(p), n, 4100, () => new Uint32Array(4100).fill(2 ** b - 1));
      }
    });

    it('with fewer sites than n (dropouts), and with the 8192-slot set', async () => {
      await roundTrip(p10, key, 4, 300);
      const p = heParams(3, 32, { set: 'bgv-8192-q120' });
      await roundTrip(p, await heKeygen(p), 3, 8193);
    });

    it('a site\'s envelope is ⌈length/N⌉ seeded ciphertexts: about 8.05 bytes a value at N = 4096', async () => {
      const hc = await heContext(p10);
      const env = await heEncrypt(key, randomVector(3 * 4096, 16));
      expect(env.length).to.equal(HE_ENVELOPE_HEADER + 3 * hc.seeded.bytes);
      expect(hc.seeded.bytes).to.equal(32962);
      expect(ciphertextBytes(p10, 'site')).to.equal(hc.seeded.bytes);
      expect(ciphertextBytes(p10, 'sum')).to.equal(hc.full.bytes);
      const p8192 = heParams(3, 32, { set: 'bgv-8192-q120' });
      const hc8192 = await heContext(p8192);
      expect([ciphertextBytes(p8192, 'site'), ciphertextBytes(p8192, 'sum')]).to.deep.equal([hc8192.seeded.bytes, hc8192.full.bytes]);
      expect(env.length / (3 * 4096)).to.be.below(8.1);
      expect(readHeEnvelope(p10, env)).to.include({ kind: 'site', length: 3 * 4096, sites: 1, chunks: 3 });
      expect(await codeOf(() => readHeEnvelope(p10, env.subarray(0, env.length - 1)))).to.equal('HE_ERR_BAD_CIPHERTEXT');
    });
  });

  describe('refusals', () => {
    it('inputs: a value over b bits, a bad length, not a Uint32Array', async () => {
      const v = randomVector(10, 16);
      v[7] = 2 ** 16;
      expect(await codeOf(() => heEncrypt(key, v))).to.equal('HE_ERR_BAD_INPUT');
      expect(await codeOf(() => heEncrypt(key, new Uint32Array(0)))).to.equal('HE_ERR_BAD_INPUT');
      expect(await codeOf(() => heEncrypt(key, [1, 2] as unknown as Uint32Array))).to.equal('HE_ERR_BAD_INPUT');
      expect(await codeOf(() => HeAccumulator.create(p10, 0))).to.equal('HE_ERR_BAD_INPUT');
    });

    it('a sum of more than n sites could wrap: the (n+1)th is refused and the sum stays exact', async () => {
      const p = heParams(2, 8);
      const k = await heKeygen(p);
      const acc = await HeAccumulator.create(p, 10);
      try {
        const a = randomVector(10, 8);
        const b = randomVector(10, 8);
        acc.add(await heEncrypt(k, a));
        acc.add(await heEncrypt(k, b));
        const third = await heEncrypt(k, randomVector(10, 8));
        expect(await codeOf(() => acc.add(third))).to.equal('HE_ERR_TOO_MANY_SITES');
        const sum = await heDecryptSum(k, acc.finish());
        expect([...sum.values]).to.deep.equal([...a].map((x, i) => x + b[i]!));
      } finally {
        acc.dispose();
      }
    });

    it('another key: between sites, and at decryption; a forged key id fails to decrypt', async () => {
      const other = await heKeygen(p10);
      const acc = await HeAccumulator.create(p10, 100);
      try {
        acc.add(await heEncrypt(key, randomVector(100, 16)));
        expect(await codeOf(async () => acc.add(await heEncrypt(other, randomVector(100, 16))))).to.equal('HE_ERR_KEY_MISMATCH');
        const sum = acc.finish();
        expect(await codeOf(() => heDecryptSum(other, sum))).to.equal('HE_ERR_KEY_MISMATCH');
      } finally {
        acc.dispose();
      }
      // A ciphertext under `other` that claims `key`'s id: the accumulator cannot tell; decryption can.
      const forged = await heEncrypt(other, randomVector(100, 16));
      forged.set(key.keyId, 21);
      const acc2 = await HeAccumulator.create(p10, 100, { keyId: key.keyId });
      try {
        acc2.add(await heEncrypt(key, randomVector(100, 16)));
        acc2.add(forged);
        expect(await codeOf(() => heDecryptSum(key, acc2.finish()))).to.equal('HE_ERR_DECRYPT');
      } finally {
        acc2.dispose();
      }
      // An accumulator told its key refuses any other from the first site on.
      const acc3 = await HeAccumulator.create(p10, 100, { keyId: key.keyId });
      try {
        expect(await codeOf(async () => acc3.add(await heEncrypt(other, randomVector(100, 16))))).to.equal('HE_ERR_KEY_MISMATCH');
      } finally {
        acc3.dispose();
      }
    });

    it('another parameter set, another length, the wrong kind of envelope', async () => {
      const p11 = heParams(11, 16);
      const acc = await HeAccumulator.create(p10, 100);
      try {
        const k11 = await heKeygen(p11);
        expect(await codeOf(async () => acc.add(await heEncrypt(k11, randomVector(100, 16))))).to.equal('HE_ERR_MISMATCH');
        expect(await codeOf(async () => acc.add(await heEncrypt(key, randomVector(101, 16))))).to.equal('HE_ERR_MISMATCH');
        const site = await heEncrypt(key, randomVector(100, 16));
        acc.add(site);
        expect(await codeOf(() => heDecryptSum(key, site))).to.equal('HE_ERR_BAD_CIPHERTEXT');
        expect(await codeOf(() => acc.add(acc.finish()))).to.equal('HE_ERR_BAD_CIPHERTEXT');
        const disposed = await HeAccumulator.create(p10, 100);
        disposed.dispose();
        expect(await codeOf(() => disposed.add(site))).to.equal('HE_ERR_BAD_INPUT');
      } finally {
        acc.dispose();
      }
    });
  });

  describe('an envelope is added whole or not at all', () => {
    it('when SEAL fails midway, the ciphertexts already added are taken out again', async () => {
      const hc = await heContext(p10);
      const length = 3 * 4096;
      const a = randomVector(length, 16);
      const b = randomVector(length, 16);
      const acc = await HeAccumulator.create(p10, length);
      const evaluator = hc.evaluator as { add: (...args: unknown[]) => unknown };
      const add = evaluator.add;
      try {
        acc.add(await heEncrypt(key, a));
        const env = await heEncrypt(key, randomVector(length, 16));
        let calls = 0;
        evaluator.add = (...args: unknown[]) => {
          if (++calls === 3) throw new Error('injected failure');
          return add.apply(hc.evaluator, args);
        };
        expect(await codeOf(() => acc.add(env))).to.equal('HE_ERR_BAD_CIPHERTEXT');
        evaluator.add = add;
        expect(acc.sites).to.equal(1);
        acc.add(await heEncrypt(key, b));
        const sum = await heDecryptSum(key, acc.finish());
        for (let i = 0; i < length; i++) if (sum.values[i] !== a[i]! + b[i]!) expect.fail(`slot ${i}`);
      } finally {
        evaluator.add = add;
        acc.dispose();
      }
    });
  });

  describe('malformed bytes never crash the coordinator', () => {
    it('refuses truncated, extended and mis-framed envelopes with HE_ERR_BAD_CIPHERTEXT', async () => {
      const env = await heEncrypt(key, randomVector(5000, 16));
      const acc = await HeAccumulator.create(p10, 5000);
      try {
        const bad: Uint8Array[] = [
          new Uint8Array(0), env.subarray(0, 44), env.subarray(0, HE_ENVELOPE_HEADER), env.subarray(0, env.length - 1),
          env.subarray(0, env.length - 32962), Buffer.concat([env, new Uint8Array(1)]), Buffer.concat([env, env.subarray(45, 45 + 32962)]),
        ];
        const withByte = (at: number, value: number): Uint8Array => { const b = env.slice(); b[at] = value; return b; };
        const withU32 = (at: number, value: number): Uint8Array => { const b = env.slice(); new DataView(b.buffer).setUint32(at, value, true); return b; };
        bad.push(withByte(0, 0x58), withByte(4, 0), withByte(4, 3));
        for (const len of [0, 4096, 8193, 2 ** 24 + 1, 2 ** 32 - 1]) bad.push(withU32(37, len));
        for (const sites of [0, 2, 11]) bad.push(withU32(41, sites));
        for (const b of bad) expect(await codeOf(() => acc.add(b)), `${b.length} bytes`).to.equal('HE_ERR_BAD_CIPHERTEXT');
        expect(await codeOf(() => acc.add('x' as unknown as Uint8Array))).to.equal('HE_ERR_BAD_CIPHERTEXT');
        // Well framed, but of another length than the sum's.
        expect(await codeOf(() => acc.add(withU32(37, 4097)))).to.equal('HE_ERR_MISMATCH');
        expect(acc.sites).to.equal(0);
      } finally {
        acc.dispose();
      }
    });

    it('refuses every flipped byte of SEAL\'s header and metadata, a coefficient ≥ q, and a bad seed header', async () => {
      const hc = await heContext(p10);
      const env = await heEncrypt(key, randomVector(4096, 16));
      const acc = await HeAccumulator.create(p10, 4096);
      try {
        const prefix = hc.seeded.prefix.length;
        for (let i = 0; i < prefix; i++) {
          const b = env.slice();
          b[HE_ENVELOPE_HEADER + i]! ^= 0x10;
          expect(await codeOf(() => acc.add(b)), `byte ${i}`).to.equal('HE_ERR_BAD_CIPHERTEXT');
        }
        const high = env.slice();
        high.fill(0xff, HE_ENVELOPE_HEADER + prefix + 8 * 100, HE_ENVELOPE_HEADER + prefix + 8 * 101);
        expect(await codeOf(() => acc.add(high))).to.equal('HE_ERR_BAD_CIPHERTEXT');
        const q = env.slice();
        new DataView(q.buffer).setBigUint64(HE_ENVELOPE_HEADER + prefix, p10.dataModulus[0]!, true);
        expect(await codeOf(() => acc.add(q))).to.equal('HE_ERR_BAD_CIPHERTEXT');
        const seedHeader = env.slice();
        seedHeader[HE_ENVELOPE_HEADER + prefix + 8 * 4096 + 16]! ^= 0x07;
        expect(await codeOf(() => acc.add(seedHeader))).to.equal('HE_ERR_BAD_CIPHERTEXT');
        expect(acc.sites).to.equal(0);
      } finally {
        acc.dispose();
      }
    });

    it('random mutations: each envelope is refused with an HE code or summed, and the module stays sound', async () => {
      const length = 4200;
      const many = heParams(1000, 16);
      const manyKey = await heKeygen(many);
      const menv = await heEncrypt(manyKey, randomVector(length, 16));
      const acc = await HeAccumulator.create(many, length);
      const seen = new Map<string, number>();
      try {
        for (let r = 0; r < 400; r++) {
          const b = menv.slice();
          const flips = 1 + (r % 4);
          for (let f = 0; f < flips; f++) {
            // Half the mutations hit the first 300 bytes, where the framing and SEAL's metadata are.
            const at = r % 2 === 0 ? Math.floor(Math.random() * 300) : Math.floor(Math.random() * b.length);
            b[at] = Math.floor(Math.random() * 256);
          }
          try {
            acc.add(b);
            seen.set('summed', (seen.get('summed') ?? 0) + 1);
          } catch (err) {
            if (!(err instanceof CodecError || err instanceof HeError)) throw err;
            expect(HE_CODES).to.include((err as TallyError).code);
            seen.set(err.code, (seen.get(err.code) ?? 0) + 1);
          }
        }
      } finally {
        acc.dispose();
      }
      expect(seen.get('HE_ERR_BAD_CIPHERTEXT') ?? 0).to.be.greaterThan(100);
      // SEAL is alive and exact after all that.
      await roundTrip(p10, key, 2, length);
    });
  });

  describe('keys', () => {
    it('imports its own bytes to the same key id; refuses malformed key bytes with HE_ERR_BAD_KEY', async () => {
      const again = await heImportKey(p10, key.bytes);
      expect(Buffer.from(again.keyId).toString('hex')).to.equal(Buffer.from(key.keyId).toString('hex'));
      const hc = await heContext(p10);
      expect(key.bytes.length).to.equal(hc.secretKey.bytes);
      const flipped = key.bytes.slice();
      flipped[20]! ^= 1;
      const high = key.bytes.slice();
      high.fill(0xff, 200, 208);
      for (const b of [key.bytes.subarray(1), flipped, high, new Uint8Array(10)]) {
        expect(await codeOf(() => heImportKey(p10, b))).to.equal('HE_ERR_BAD_KEY');
      }
      expect(await codeOf(() => heEncrypt({ ...key, keyId: new Uint8Array(16) }, new Uint32Array(3)))).to.equal('HE_ERR_BAD_KEY');
      // The same bytes under another parameter set are another key.
      const other = await heImportKey(heParams(11, 16), key.bytes);
      expect(Buffer.from(other.keyId).toString('hex')).to.not.equal(Buffer.from(key.keyId).toString('hex'));
    });
  });

  describe('loading', () => {
    it('HE_ERR_UNAVAILABLE when node-seal cannot be imported or does not start', async () => {
      const missing = 'node-seal-that-is-not-installed';
      for (const importer of [() => import(missing), async () => ({ default: 42 }), async () => ({ default: async () => ({}) })]) {
        try {
          await loadSealFrom(importer);
          expect.fail('loaded');
        } catch (err) {
          expect(err).to.be.instanceOf(HeError).with.property('code', 'HE_ERR_UNAVAILABLE');
        }
      }
    });

    it('nothing outside src/he imports it or node-seal', () => {
      const files: string[] = [];
      const walk = (dir: string): void => {
        for (const name of readdirSync(dir)) {
          const path = join(dir, name);
          if (statSync(path).isDirectory()) { if (name !== 'he') walk(path); } else if (name.endsWith('.ts')) files.push(path);
        }
      };
      walk(join(ROOT, 'src'));
      expect(files.length).to.be.greaterThan(20);
      // Outside src/he: no node-seal at all, and src/he only through a dynamic import() (or a type-only import),
      // except params.ts: parameter arithmetic with no SEAL, which a consortium's configuration check needs.
      const imports = /(from|import\()\s*'node-seal[^']*'|^import (?!type )[^;]*from\s*'[^']*\/he\/(?!params\.js')[^']*'/m;
      expect(imports.test("import { heEncrypt } from '../he/sum.js';")).to.equal(true);
      expect(imports.test("const m = await import('node-seal');")).to.equal(true);
      expect(imports.test("import type { HeParams } from '../he/params.js';")).to.equal(false);
      expect(imports.test("import { heParams } from '../he/params.js';")).to.equal(false);
      expect(imports.test("import { heContext } from '../he/seal.js';")).to.equal(true);
      for (const f of files) {
        const text = readFileSync(f, 'utf8');
        expect(imports.test(text), f).to.equal(false);
      }
    });
  });

  describe('docs/he.md', () => {
    it('has one Error codes row per HE code of src/errors.ts', () => {
      const doc = readFileSync(join(ROOT, 'docs/he.md'), 'utf8');
      const section = doc.slice(doc.indexOf('\n## Error codes'));
      const rows = section.split('\n').filter((l) => l.startsWith('| `HE_ERR_')).map((l) => /^\| `(HE_ERR_[A-Z_]+)`/.exec(l)![1]);
      expect([...rows].sort()).to.deep.equal([...HE_CODES].sort());
    });
  });
});
