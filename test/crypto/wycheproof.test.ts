/**
 * Wycheproof vectors (test/fixtures/wycheproof/, see its README for provenance)
 * against both providers, in the noble style: iterate testGroups[g].tests[i],
 * branch on valid/acceptable vs invalid, throw on an unknown result.
 */
import { expect } from 'chai';
import { CryptoError, ValidationError } from '../../src/errors.js';
import { BAD_INPUT, DECRYPT, LOW_ORDER_KEY, toHex } from '../../src/crypto/_validate.js';
import { expectError, h, loadFixture, PROVIDERS, type WycheproofCase, type WycheproofFile } from './_helpers.js';

interface XdhCase extends WycheproofCase { public: string; private: string; shared: string }
interface EddsaCase extends WycheproofCase { msg: string; sig: string }
interface AeadCase extends WycheproofCase { key: string; iv: string; aad: string; msg: string; ct: string; tag: string }
interface HkdfCase extends WycheproofCase { ikm: string; salt: string; info: string; size: number; okm: string }

const x25519File = loadFixture<WycheproofFile<{ curve: string; tests: XdhCase[] }>>('wycheproof/x25519_test.json');
const ed25519File = loadFixture<WycheproofFile<{ publicKey: { pk: string }; tests: EddsaCase[] }>>(
  'wycheproof/ed25519_test.json',
);
const gcmFile = loadFixture<
  WycheproofFile<{ keySize: number; ivSize: number; tagSize: number; tests: AeadCase[] }>
>('wycheproof/aes_gcm_test.json');
const hkdfFile = loadFixture<WycheproofFile<{ tests: HkdfCase[] }>>('wycheproof/hkdf_sha256_test.json');

const count = (f: WycheproofFile<{ tests: unknown[] }>): number =>
  f.testGroups.reduce((n, g) => n + g.tests.length, 0);

describe('Wycheproof', () => {
  it('fixtures are complete', () => {
    for (const f of [x25519File, ed25519File, gcmFile, hkdfFile]) expect(count(f)).to.equal(f.numberOfTests);
  });

  for (const c of PROVIDERS) {
    describe(`${c.name} provider`, () => {
      it('x25519_test.json: all-zero secrets rejected, every other case matches', () => {
        let rejected = 0;
        for (let g = 0; g < x25519File.testGroups.length; g++) {
          const group = x25519File.testGroups[g]!;
          expect(group.curve).to.equal('curve25519');
          for (let i = 0; i < group.tests.length; i++) {
            const v = group.tests[i]!;
            const comment = `(${v.tcId}, ${v.result}): ${v.comment}`;
            const priv = h(v.private);
            const pub = h(v.public);
            // Both forms: the one-shot call and the agreement bound to the private key.
            const agree = c.x25519Agreement(priv);
            for (const run of [() => c.x25519(priv, pub), () => agree(pub)]) {
              if (/^0+$/.test(v.shared)) {
                // tally rejects an all-zero secret even where Wycheproof says 'acceptable'.
                expectError(run, CryptoError, LOW_ORDER_KEY);
              } else if (v.result === 'valid' || v.result === 'acceptable') {
                expect(toHex(run()), comment).to.equal(v.shared);
              } else if (v.result === 'invalid') {
                expect(run, comment).to.throw();
              } else throw new Error(`unknown test result ${comment}`);
            }
            if (/^0+$/.test(v.shared)) rejected++;
          }
        }
        expect(rejected).to.be.greaterThan(20);
      });

      it('ed25519_test.json: valid verify, invalid do not', () => {
        for (let g = 0; g < ed25519File.testGroups.length; g++) {
          const group = ed25519File.testGroups[g]!;
          const pk = h(group.publicKey.pk);
          for (let i = 0; i < group.tests.length; i++) {
            const v = group.tests[i]!;
            const comment = `(${v.tcId}, ${v.result}): ${v.comment}`;
            const ok = c.ed25519Verify(pk, h(v.msg), h(v.sig));
            if (v.result === 'valid' || v.result === 'acceptable') expect(ok, comment).to.equal(true);
            else if (v.result === 'invalid') expect(ok, comment).to.equal(false);
            else throw new Error(`unknown test result ${comment}`);
          }
        }
      });

      it('aes_gcm_test.json: AES-256, 96-bit nonce, 128-bit tag groups seal and open exactly', () => {
        let run = 0;
        let skipped = 0;
        for (let g = 0; g < gcmFile.testGroups.length; g++) {
          const group = gcmFile.testGroups[g]!;
          // tally's AES-GCM is AES-256 with 12-byte nonces and 16-byte tags only.
          if (group.keySize !== 256 || group.ivSize !== 96 || group.tagSize !== 128) {
            skipped += group.tests.length;
            continue;
          }
          for (let i = 0; i < group.tests.length; i++) {
            const v = group.tests[i]!;
            const comment = `(${v.tcId}, ${v.result}): ${v.comment}`;
            const key = h(v.key);
            const iv = h(v.iv);
            const aad = h(v.aad);
            const sealed = h(v.ct + v.tag);
            if (v.result === 'valid' || v.result === 'acceptable') {
              expect(toHex(c.aesGcmSeal(key, iv, h(v.msg), aad)), comment).to.equal(v.ct + v.tag);
              expect(toHex(c.aesGcmOpen(key, iv, sealed, aad)), comment).to.equal(v.msg);
              run++;
            } else if (v.result === 'invalid') {
              expectError(() => c.aesGcmOpen(key, iv, sealed, aad), CryptoError, DECRYPT);
              run++;
            } else throw new Error(`unknown test result ${comment}`);
          }
        }
        expect(run).to.be.greaterThan(60);
        expect(run + skipped).to.equal(gcmFile.numberOfTests);
      });

      it('hkdf_sha256_test.json: valid outputs match, oversize lengths rejected', () => {
        for (let g = 0; g < hkdfFile.testGroups.length; g++) {
          const group = hkdfFile.testGroups[g]!;
          for (let i = 0; i < group.tests.length; i++) {
            const v = group.tests[i]!;
            const comment = `(${v.tcId}, ${v.result}): ${v.comment}`;
            const run = (): Uint8Array => c.hkdf(h(v.ikm), h(v.salt), h(v.info), v.size);
            if (v.result === 'valid' || v.result === 'acceptable') expect(toHex(run()), comment).to.equal(v.okm);
            else if (v.result === 'invalid') expectError(run, ValidationError, BAD_INPUT);
            else throw new Error(`unknown test result ${comment}`);
          }
        }
      });
    });
  }
});
