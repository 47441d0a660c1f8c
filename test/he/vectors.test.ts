/**
 * protocols/he-sum-v1/vectors replay: the mask reduction mod t, envelope
 * headers, the config commitment, the ceremony's wrap derivation, and the
 * decryption of fixed ciphertexts with the pinned SEAL (src/he/vectors.ts);
 * a changed byte is caught.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { checkHeVectors, HE_VECTORS_PATH } from '../../src/he/vectors.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

describe('he: he-sum-v1 vectors', function () {
  this.timeout(60_000);
  const doc = () => JSON.parse(readFileSync(ROOT + HE_VECTORS_PATH, 'utf8'));

  it('every vector replays', async () => {
    expect(await checkHeVectors(doc())).to.deep.equal([]);
  });

  it('a changed entry is caught', async () => {
    const d = doc();
    d.maskModT[1].entries[2] = '1';
    d.configCommitment.configHash = '00' + d.configCommitment.configHash.slice(2);
    d.decrypt.sum[0] += 1;
    expect(await checkHeVectors(d)).to.deep.equal(['maskModT[1].entries', 'maskModT[1].reference', 'configCommitment.configHash', 'decrypt.sum']);
  });
});
