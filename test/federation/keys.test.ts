import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeProvider, portableProvider } from '../../src/crypto/index.js';
import { TallyError, ValidationError } from '../../src/errors.js';
import { generateSiteKey, readSiteKey, writeSiteKey } from '../../src/federation/keys.js';

/** The code of the TallyError `f` throws. */
function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect(err).to.be.instanceOf(ValidationError);
    return (err as TallyError).code;
  }
  throw new Error('expected an error');
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('federation/keys: site identity files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-keys-'));
  let n = 0;
  const fresh = () => join(dir, `k${++n}.key`);

  it('generates distinct keys whose public half both providers derive from the seed', () => {
    const a = generateSiteKey(), b = generateSiteKey();
    expect(a.seed.length).to.equal(32);
    expect(a.publicKey.length).to.equal(32);
    expect(hex(a.seed)).to.not.equal(hex(b.seed));
    expect(hex(a.publicKey)).to.equal(hex(nativeProvider.ed25519PublicKey(a.seed)));
    expect(hex(a.publicKey)).to.equal(hex(portableProvider.ed25519PublicKey(a.seed)));
  });

  it('round-trips through a JSON file of mode 0600 with exactly the documented fields', () => {
    const key = generateSiteKey();
    const path = fresh();
    writeSiteKey(path, key);
    if (process.platform !== 'win32') expect(statSync(path).mode & 0o777).to.equal(0o600);
    const doc = JSON.parse(readFileSync(path, 'utf8'));
    expect(doc).to.deep.equal({ type: 'tally-site-key', version: 1, seed: hex(key.seed), publicKey: hex(key.publicKey) });
    const back = readSiteKey(path);
    expect(hex(back.seed)).to.equal(hex(key.seed));
    expect(hex(back.publicKey)).to.equal(hex(key.publicKey));
    // The key signs and verifies under its roster key.
    const msg = new TextEncoder().encode('hello');
    expect(nativeProvider.ed25519Verify(back.publicKey, msg, nativeProvider.ed25519Sign(back.seed, msg))).to.equal(true);
  });

  it('never overwrites a file (CONSORTIUM_ERR_EXISTS), leaving it as it was', () => {
    const path = fresh();
    writeSiteKey(path, generateSiteKey());
    const before = readFileSync(path, 'utf8');
    expect(codeOf(() => writeSiteKey(path, generateSiteKey()))).to.equal('CONSORTIUM_ERR_EXISTS');
    expect(readFileSync(path, 'utf8')).to.equal(before);
  });

  it('refuses to write a pair whose seed does not give its public key, and writes nothing', () => {
    const a = generateSiteKey(), b = generateSiteKey();
    const path = fresh();
    expect(codeOf(() => writeSiteKey(path, { seed: a.seed, publicKey: b.publicKey }))).to.equal('CONSORTIUM_ERR_BAD_KEY');
    expect(codeOf(() => writeSiteKey(path, { seed: a.seed.subarray(0, 31), publicKey: a.publicKey }))).to.equal('CONSORTIUM_ERR_BAD_KEY');
    expect(existsSync(path)).to.equal(false);
  });

  it('detects tampering and refuses every malformed file with CONSORTIUM_ERR_BAD_KEY', () => {
    const key = generateSiteKey(), other = generateSiteKey();
    const good = { type: 'tally-site-key', version: 1, seed: hex(key.seed), publicKey: hex(key.publicKey) };
    const flip = (h: string) => (h[0] === '0' ? '1' : '0') + h.slice(1);
    const cases: [string, string][] = [
      ['public key altered', JSON.stringify({ ...good, publicKey: flip(good.publicKey) })],
      ['seed altered', JSON.stringify({ ...good, seed: flip(good.seed) })],
      ['another site\'s public key', JSON.stringify({ ...good, publicKey: hex(other.publicKey) })],
      ['wrong type', JSON.stringify({ ...good, type: 'ssh-key' })],
      ['wrong version', JSON.stringify({ ...good, version: 2 })],
      ['extra field', JSON.stringify({ ...good, comment: 'x' })],
      ['missing seed', JSON.stringify({ type: good.type, version: 1, publicKey: good.publicKey })],
      ['uppercase hex', JSON.stringify({ ...good, seed: good.seed.toUpperCase() })],
      ['short seed', JSON.stringify({ ...good, seed: good.seed.slice(2) })],
      ['seed not a string', JSON.stringify({ ...good, seed: 5 })],
      ['not JSON', 'seed=00'],
      ['an array', '[]'],
      ['null', 'null'],
      ['empty', ''],
    ];
    for (const [what, text] of cases) {
      const path = fresh();
      writeFileSync(path, text);
      expect(codeOf(() => readSiteKey(path)), what).to.equal('CONSORTIUM_ERR_BAD_KEY');
    }
  });

  it('reports a missing file as CONSORTIUM_ERR_BAD_KEY naming the path', () => {
    const path = join(dir, 'absent.key');
    try {
      readSiteKey(path);
      expect.fail('expected an error');
    } catch (err) {
      expect((err as TallyError).code).to.equal('CONSORTIUM_ERR_BAD_KEY');
      expect((err as Error).message).to.include(path);
    }
  });
});
