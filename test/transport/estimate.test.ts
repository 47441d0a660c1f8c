import { expect } from 'chai';
import { estimateSeconds, roughly, type OperationCosts } from '../../src/transport/estimate.js';

describe('transport/estimate', () => {
  const costs: OperationCosts = { keyAgreement: 40e-6, shareCipher: 2e-6, shamirTerm: 0.1e-6, shamirHolder: 0.5e-6, maskWord: 1e-9, keyListEntry: 3e-6, signatureCheck: 60e-6 };
  const shape = { clients: 1000, degree: 999, threshold: 501, dim: 10, droppedAfterSharing: 0, threads: 1 };

  it('counts the clients\' operations and spreads them over the threads', () => {
    const one = estimateSeconds(shape, costs);
    // Per client: n key-list entries, (2k+1) agreements (R1 share keys, kept for R4; R2 mask keys), 2k share ciphers, 2(k+1) shares of t Shamir terms each, (k+2)m mask words.
    const perClient = 1000 * 3e-6 + 1999 * 40e-6 + 1998 * 2e-6 + 2 * 1000 * (501 * 0.1e-6 + 0.5e-6) + 1001 * 10 * 1e-9;
    expect(one.clients).to.be.closeTo(1000 * perClient, 1e-9);
    const two = estimateSeconds({ ...shape, threads: 2 }, costs);
    expect(two.clients).to.be.closeTo(one.clients / 2, 1e-9);
    expect(two.server).to.equal(one.server);
    expect(one.total).to.equal(one.clients + one.server);
    // Malicious: every client also verifies the n signed advertisements.
    expect(estimateSeconds({ ...shape, malicious: true }, costs).clients - one.clients).to.be.closeTo(1000 * 1000 * 60e-6, 1e-9);
  });

  it('charges the server k pairwise masks per client dropped after sharing keys', () => {
    const big = { ...shape, degree: 36, threshold: 19, dim: 100_000 };
    const none = estimateSeconds(big, costs);
    const some = estimateSeconds({ ...big, droppedAfterSharing: 10 }, costs);
    expect(some.server - none.server).to.be.closeTo(10 * 36 * (40e-6 + 100_000 * 1e-9), 1e-9);
  });

  it('rounds a duration for a person', () => {
    expect(roughly(0.2)).to.equal('about 1 s');
    expect(roughly(12.4)).to.equal('about 12 s');
    expect(roughly(43)).to.equal('about 45 s');
    expect(roughly(180)).to.equal('about 3 min');
    expect(roughly(7200)).to.equal('about 2.0 h');
  });
});
