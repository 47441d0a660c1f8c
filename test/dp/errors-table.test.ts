/** protocols/dp-v1/errors.md lists every DpCode, and nothing else, once. */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DP_CODES } from '../../src/errors.js';

// Tests run from dist/test/dp: the repository root is three levels up.
const DOC = fileURLToPath(new URL('../../../protocols/dp-v1/errors.md', import.meta.url));

describe('protocols/dp-v1/errors.md', () => {
  it('has one table row per DP code of src/errors.ts', () => {
    const rows = readFileSync(DOC, 'utf8').split('\n').filter((l) => l.startsWith('| `DP_ERR_')).map((l) => /^\| `(DP_ERR_[A-Z_]+)`/.exec(l)![1]);
    expect([...rows].sort()).to.deep.equal([...DP_CODES].sort());
  });
});
