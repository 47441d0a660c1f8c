/**
 * The he-sum-v1 key ceremony (src/he/ceremony.ts): every recipient unwraps
 * the dealer's key; each tamper (signature, recipient, wrap, key id, ceremony,
 * set, framing) is refused with its typed error and never crashes.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { nativeProvider as p } from '../../src/crypto/native.js';
import { TallyError } from '../../src/errors.js';
import { acceptKey, buildOffer, dealKey, offerFor, readOffer, sealedKeyBytes } from '../../src/he/ceremony.js';
import { heParams, paramsDigest } from '../../src/he/params.js';
import { heKeygen } from '../../src/he/sum.js';

const params = heParams(4, 16);
const site = (id: number) => {
  const x = randomBytes(32), e = randomBytes(32);
  return { id, x25519Private: new Uint8Array(x), x25519Public: p.x25519PublicKey(x), identitySeed: new Uint8Array(e), ed25519Public: p.ed25519PublicKey(e) };
};

async function codeOf(f: () => Promise<unknown>): Promise<string> {
  try { await f(); } catch (err) { expect(err).to.be.instanceOf(TallyError); return (err as TallyError).code; }
  return 'accepted';
}

describe('he: key ceremony', function () {
  this.timeout(60000);
  const sites = [1, 2, 3, 4].map(site);
  const ceremonyId = new Uint8Array(randomBytes(32));
  let offer: Uint8Array;
  let keyId: Uint8Array;
  let S: number;
  const accept = (bytes: Uint8Array, me = sites[1]!, extra: Partial<{ ceremonyId: Uint8Array; dealer: number; dealerKey: Uint8Array; params: typeof params }> = {}) =>
    acceptKey(p, { params, ceremonyId, offer: bytes, dealer: 1, dealerKey: sites[0]!.ed25519Public, me, ...extra });

  before(async () => {
    const dealt = await dealKey(p, { params, ceremonyId, dealer: sites[0]!, recipients: sites.slice(1) });
    offer = dealt.offer;
    keyId = dealt.key.keyId;
    S = await sealedKeyBytes(params);
  });

  it('every recipient gets the dealer\'s key from its relayed part of the offer, the coordinator holds only ciphertexts', async () => {
    for (const s of sites.slice(1)) {
      const mine = offerFor(offer, s.id, S);
      expect(mine.length).to.be.below(offer.length);
      const key = await accept(mine, s);
      expect(Buffer.from(key.keyId).equals(Buffer.from(keyId))).to.equal(true);
    }
    // The secret key's bytes appear nowhere in the offer.
    const o = readOffer(offer, S);
    expect(o.wraps.length).to.equal(3);
    expect(o.wraps.every((w) => w.sealed.length === S)).to.equal(true);
  });

  it('refuses a wrong signature, another dealer, another ceremony and another set', async () => {
    const forged = offer.slice();
    forged[readOffer(offer, S).signed.length + 3]! ^= 1;
    expect(await codeOf(() => accept(forged))).to.equal('HE_ERR_BAD_SIGNATURE');
    expect(await codeOf(() => accept(offer, sites[1], { dealerKey: sites[2]!.ed25519Public }))).to.equal('HE_ERR_BAD_SIGNATURE');
    expect(await codeOf(() => accept(offer, sites[1], { dealer: 2 }))).to.equal('HE_ERR_BAD_SIGNATURE');
    const headerFlip = offer.slice(); headerFlip[60]! ^= 1; // inside the key id: signed
    expect(await codeOf(() => accept(headerFlip))).to.equal('HE_ERR_BAD_SIGNATURE');
    expect(await codeOf(() => accept(offer, sites[1], { ceremonyId: new Uint8Array(32) }))).to.equal('HE_ERR_MISMATCH');
    // A correctly signed offer of another set.
    const other = heParams(4, 20);
    const k2 = await heKeygen(other);
    const otherOffer = buildOffer(p, { params: paramsDigest(other), ceremonyId, dealer: sites[0]!, keyId: k2.keyId, keyBytes: k2.bytes, recipients: sites.slice(1) });
    expect(await codeOf(() => accept(otherOffer))).to.equal('HE_ERR_MISMATCH');
  });

  it('refuses a site that is not a recipient, or whose wrap was stripped or swapped', async () => {
    const outsider = site(9);
    expect(await codeOf(() => accept(offer, outsider))).to.equal('HE_ERR_NOT_RECIPIENT');
    expect(await codeOf(() => accept(offerFor(offer, 3, S), sites[1]))).to.equal('HE_ERR_NOT_RECIPIENT');
    // Site 2 given site 3's wrap relabelled as its own: the digest no longer matches.
    const o = readOffer(offer, S);
    const w3 = o.wraps.find((w) => w.to === 3)!;
    const swapped = Buffer.concat([o.signed, o.signature, Buffer.from([0, 0, 0, 1, 0, 0, 0, 2]), w3.ephemeral, w3.sealed]);
    expect(await codeOf(() => accept(new Uint8Array(swapped)))).to.equal('HE_ERR_BAD_WRAP');
    // Site 3's own wrap opened with site 2's key: not for it.
    expect(await codeOf(() => accept(offerFor(offer, 3, S), { ...sites[2]!, x25519Private: sites[1]!.x25519Private }))).to.equal('HE_ERR_BAD_WRAP');
    // Two wraps for site 2 (its own twice, or a junk one before its own), and a wrap for a site the dealer never signed for.
    const w2 = o.wraps.find((w) => w.to === 2)!;
    const wrapBytes = (to: number, w: { ephemeral: Uint8Array; sealed: Uint8Array }): Buffer => Buffer.concat([Buffer.from([0, 0, 0, to]), w.ephemeral, w.sealed]);
    const twice = Buffer.concat([o.signed, o.signature, Buffer.from([0, 0, 0, 2]), wrapBytes(2, w2), wrapBytes(2, w2)]);
    expect(await codeOf(() => accept(new Uint8Array(twice)))).to.equal('HE_ERR_NOT_RECIPIENT');
    const junkFirst = Buffer.concat([o.signed, o.signature, Buffer.from([0, 0, 0, 2]), wrapBytes(2, w3), wrapBytes(2, w2)]);
    expect(await codeOf(() => accept(new Uint8Array(junkFirst)))).to.equal('HE_ERR_NOT_RECIPIENT');
    const unsigned = Buffer.concat([o.signed, o.signature, Buffer.from([0, 0, 0, 2]), wrapBytes(2, w2), wrapBytes(77, w3)]);
    expect(await codeOf(() => accept(new Uint8Array(unsigned)))).to.equal('HE_ERR_BAD_WRAP');
  });

  it('refuses a tampered wrap (any byte of the ephemeral key or the ciphertext)', async () => {
    const mine = offerFor(offer, 2, S);
    const start = mine.length - (32 + S);
    for (const at of [start, start + 31, start + 32, start + 1000, mine.length - 1]) {
      const t = mine.slice(); t[at]! ^= 0x40;
      expect(await codeOf(() => accept(t)), `byte ${at}`).to.equal('HE_ERR_BAD_WRAP');
    }
  });

  it('refuses a key whose id is not the one the dealer signed (a dishonest dealer)', async () => {
    const key = await heKeygen(params);
    const lying = buildOffer(p, { params: paramsDigest(params), ceremonyId, dealer: sites[0]!, keyId: new Uint8Array(16).fill(7), keyBytes: key.bytes, recipients: sites.slice(1) });
    expect(await codeOf(() => accept(lying))).to.equal('HE_ERR_KEY_MISMATCH');
    // A wrap of bytes that are no key of the set.
    const junk = buildOffer(p, { params: paramsDigest(params), ceremonyId, dealer: sites[0]!, keyId: key.keyId, keyBytes: new Uint8Array(S - 16).fill(0xff), recipients: sites.slice(1) });
    expect(await codeOf(() => accept(junk))).to.equal('HE_ERR_BAD_WRAP');
  });

  it('refuses malformed offers without crashing: truncations, bad magic, random bytes', async () => {
    const mine = offerFor(offer, 2, S);
    for (const len of [0, 3, 10, 71, 72, 200, mine.length - 1]) expect(await codeOf(() => accept(mine.subarray(0, len))), `length ${len}`).to.equal('HE_ERR_BAD_OFFER');
    expect(await codeOf(() => accept(new Uint8Array([...mine, 0])))).to.equal('HE_ERR_BAD_OFFER');
    const magic = mine.slice(); magic[0] = 0;
    expect(await codeOf(() => accept(magic))).to.equal('HE_ERR_BAD_OFFER');
    for (let i = 0; i < 20; i++) {
      const junk = new Uint8Array(randomBytes(mine.length));
      junk.set(mine.subarray(0, 4));
      expect(['HE_ERR_BAD_OFFER', 'HE_ERR_BAD_SIGNATURE']).to.include(await codeOf(() => accept(junk)));
    }
  });
});
