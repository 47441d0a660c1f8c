import { expect } from 'chai';
import { ValidationError } from '../../src/errors.js';
import type { SessionConfig } from '../../src/secagg/config.js';
import { validateSession } from '../../src/secagg/session.js';

const base: SessionConfig = {
  nonce: new Uint8Array(32), clientIds: [1, 2, 3, 4, 5, 6], threshold: 4, bits: 16, dim: 10, threat: 'semi-honest', graph: { kind: 'complete' },
};

function codeOf(c: Partial<SessionConfig>): string {
  try { validateSession({ ...base, ...c } as SessionConfig); } catch (e) { expect(e).to.be.instanceOf(ValidationError); return (e as ValidationError).code; }
  return 'ok';
}

describe('secagg/session: configuration checks', () => {
  it('accepts a valid configuration', () => expect(codeOf({})).to.equal('ok'));
  const bad: [string, Partial<SessionConfig>, string][] = [
    ['a short nonce', { nonce: new Uint8Array(31) }, 'SECAGG_ERR_BAD_CONFIG'],
    ['one client', { clientIds: [1] }, 'SECAGG_ERR_BAD_CONFIG'],
    ['id 0', { clientIds: [0, 1, 2] }, 'SECAGG_ERR_BAD_CONFIG'],
    ['unsorted ids', { clientIds: [1, 3, 2, 4, 5, 6] }, 'SECAGG_ERR_BAD_CONFIG'],
    ['duplicate ids', { clientIds: [1, 2, 2, 4, 5, 6] }, 'SECAGG_ERR_BAD_CONFIG'],
    ['33 bits', { bits: 33 }, 'SECAGG_ERR_BAD_CONFIG'],
    ['dim 0', { dim: 0 }, 'SECAGG_ERR_BAD_CONFIG'],
    ['an odd Harary degree with an odd n', { clientIds: [1, 2, 3, 4, 5], graph: { kind: 'harary', degree: 3 }, threshold: 2 }, 'SECAGG_ERR_BAD_CONFIG'],
    ['t = 1', { threshold: 1 }, 'SECAGG_ERR_BAD_THRESHOLD'],
    ['t above the share holders', { threshold: 6 }, 'SECAGG_ERR_BAD_THRESHOLD'],
    ['malicious without roster keys', { threat: 'malicious' }, 'SECAGG_ERR_BAD_CONFIG'],
    ['malicious with t ≤ 2n/3', { threat: 'malicious', threshold: 4, identityKeys: [1, 2, 3, 4, 5, 6].map((i) => new Uint8Array(32).fill(i)) }, 'SECAGG_ERR_BAD_THRESHOLD'],
    ['a roster key used twice', { threat: 'malicious', threshold: 5, identityKeys: [1, 2, 3, 4, 5, 5].map((i) => new Uint8Array(32).fill(i)) }, 'SECAGG_ERR_BAD_CONFIG'],
  ];
  for (const [what, c, code] of bad) it(`rejects ${what} (${code})`, () => expect(codeOf(c)).to.equal(code));
});
