/**
 * Vector kinds of the per-client secrets: `shamir` (t-of-k sharing, limb
 * by limb over GF(2^25 − 39); spec §3.8), `share-encryption` (AES-256-GCM sealing of
 * a share pair; spec §3.7) and `masked-input` (the R2 computation
 * y_u = x_u + PRG(b_u) + Σ ±PRG(s_uv) mod 2^b and its packing; spec §5.4).
 */
import { concatBytes, u32be } from '../../crypto/_validate.js';
import { lowOrderLists } from '../../crypto/lowOrder.js';
import { SHAMIR_LIMBS, SHAMIR_MAX_X, SHAMIR_PRIME, SHAMIR_SHARE_BYTES, shamirCombine, shamirSplit } from '../../crypto/shamir.js';
import type { Rng } from '../../crypto/rng.js';
import type { CryptoProvider } from '../../crypto/types.js';
import { checkInput } from '../session.js';
import { openShares, pairwiseMaskKey, sealShares, selfMaskKey, SHARE_BYTES, shareAad, shareEncryptionKey, shareNonce } from '../keys.js';
import { expandMask, MaskAccumulator } from '../../crypto/mask.js';
import { packVector, reduce } from '../../crypto/vector.js';
import {
  bytes, expectEqual, expectError, expectThat, hex, inputsFrom, RecordingRng, ReplayRng, rngOf, u32s, type TestCase,
} from './_common.js';
import type { VectorKind } from './kind.js';

/** A share value from its eleven words (each written as a 4-byte big-endian word, unchecked). */
const shareOf = (words: readonly number[]): Uint8Array => {
  const out = new Uint8Array(SHAMIR_SHARE_BYTES);
  const dv = new DataView(out.buffer);
  words.forEach((w, l) => dv.setUint32(4 * l, w, false));
  return out;
};
/** The share whose word `limb` is `w` and every other word 0. */
const oneWord = (limb: number, w: number): Uint8Array => shareOf(Array.from({ length: SHAMIR_LIMBS }, (_, l) => (l === limb ? w : 0)));

/** An Rng that hands out `prefix` first, then the bytes of `inner`. */
class PrefixedRng implements Rng {
  private off = 0;
  constructor(private readonly prefix: Uint8Array, private readonly inner: Rng) {}
  bytes(n: number): Uint8Array {
    const head = this.prefix.subarray(this.off, Math.min(this.prefix.length, this.off + n));
    this.off += head.length;
    return head.length === n ? head.slice() : concatBytes(head, this.inner.bytes(n - head.length));
  }
}

/**
 * Reference decoding of the coefficient words (spec §3.8): each 4-byte
 * big-endian word keeps its low 25 bits and is skipped when they are ≥ p; the
 * accepted values fill limb 0's a_1 … a_{t−1}, then limb 1's, and so on.
 */
function coefficientsOf(randomness: Uint8Array, t: number): number[][] {
  const values: number[] = [];
  const dv = new DataView(randomness.buffer, randomness.byteOffset, randomness.byteLength);
  for (let o = 0; o + 4 <= randomness.length; o += 4) {
    const v = dv.getUint32(o, false) & 0x1ffffff;
    if (v < SHAMIR_PRIME) values.push(v);
  }
  return Array.from({ length: SHAMIR_LIMBS }, (_, l) => values.slice(l * (t - 1), (l + 1) * (t - 1)));
}

/** Reference evaluation with BigInt: word l of the share at x is f_l(x) = s_l + Σ a_{l,i} x^i mod p. */
function referenceShare(secret: Uint8Array, coeffs: number[][], x: number): string {
  const p = BigInt(SHAMIR_PRIME);
  const words = coeffs.map((a, l) => {
    const s = l < SHAMIR_LIMBS - 1 ? (secret[3 * l]! << 16) | (secret[3 * l + 1]! << 8) | secret[3 * l + 2]! : (secret[3 * l]! << 8) | secret[3 * l + 1]!;
    let y = 0n;
    for (let i = a.length; i >= 1; i--) y = (y * BigInt(x) + BigInt(a[i - 1]!)) % p; // Horner over a_{t−1} … a_1
    return Number((y * BigInt(x) + BigInt(s)) % p);
  });
  return hex(shareOf(words));
}

export const shamirKind: VectorKind = {
  kind: 'shamir',
  description: `Shamir t-of-k sharing of a 32-byte secret limb by limb over GF(p), p = 2^25 − 39 = ${SHAMIR_PRIME} (spec §3.8): limb l < 10 is secret bytes [3l, 3l+3) and limb 10 bytes [30, 32), big-endian; share x is the holder's client id (1 ≤ x ≤ 2^24 − 1); a share value is the eleven f_l(x) as 4-byte big-endian words (44 bytes). \`randomness\` is every byte the sharing drew, as 4-byte big-endian words: each keeps its low 25 bits and is skipped when they are ≥ p; the accepted values are \`coefficients\`, a_{l,1}..a_{l,t−1} of limb 0, then limb 1, and so on. Every listed subset of exactly t shares recovers the secret. Invalid cases are share sets that recovery must refuse.`,
  generate() {
    const tests: TestCase[] = [];
    const cases: [string, number, number[], 'random' | 'zero' | 'max', Uint8Array][] = [
      ['t=2 of 3', 2, [1, 2, 3], 'random', new Uint8Array(0)],
      ['t=3 of 5', 3, [1, 2, 3, 4, 5], 'random', new Uint8Array(0)],
      ['t=3 of 5, sparse ids up to 2^24-1', 3, [2, 5, 9, 1000, SHAMIR_MAX_X], 'random', new Uint8Array(0)],
      ['t=5 of 8', 5, [1, 2, 3, 4, 5, 6, 7, 8], 'random', new Uint8Array(0)],
      ['secret 0', 2, [1, 2, 3], 'zero', new Uint8Array(0)],
      ['secret ff..ff (every limb at its maximum)', 3, [4, 5, 6, 7], 'max', new Uint8Array(0)],
      // Words 01ffffd9 (= p) and ffffffff (low 25 bits 2^25 − 1) are skipped; 81ffffd8 gives a_{0,1} = p − 1.
      ['the first two coefficient words are rejected, the third is p − 1', 2, [3, 9, 27], 'random', bytes('01ffffd9ffffffff81ffffd8')],
    ];
    for (const [comment, t, xs, which, prefix] of cases) {
      const tcId = tests.length + 1;
      const rng = rngOf('shamir', tcId, 'secret');
      const secret = which === 'zero' ? new Uint8Array(32) : which === 'max' ? new Uint8Array(32).fill(0xff) : rng.bytes(32);
      const rec = new RecordingRng(new PrefixedRng(prefix, rngOf('shamir', tcId, 'coefficients')));
      const shares = shamirSplit(secret, t, xs, rec);
      // Subsets of exactly t holders: the first t, the last t, and every other one (wrapping).
      const subsets = [xs.slice(0, t), xs.slice(-t), xs.filter((_, i) => i % 2 === 0).concat(xs.filter((_, i) => i % 2 === 1)).slice(0, t)];
      tests.push({
        tcId, comment, result: 'valid', secret: hex(secret), threshold: t, xs,
        randomness: hex(rec.recorded), coefficients: coefficientsOf(rec.recorded, t),
        shares: shares.map(hex), recover: subsets,
      });
    }
    const p = SHAMIR_PRIME;
    const invalid: [string, string, number, number[], Uint8Array[]][] = [
      // f(0) = 2·f(1) − f(2) = 2^24 in limb 0 (limbs 0..9 must be < 2^24).
      ['interpolated limb 0 is 2^24, not a 3-byte limb', 'SHAMIR_ERR_INCONSISTENT', 2, [1, 2], [oneWord(0, 0), oneWord(0, p - 2 ** 24)]],
      // f(0) = 2^16 in limb 10 (the last limb must be < 2^16).
      ['interpolated limb 10 is 2^16, not a 2-byte limb', 'SHAMIR_ERR_INCONSISTENT', 2, [1, 2], [oneWord(10, 0), oneWord(10, p - 2 ** 16)]],
      ['a share word equal to p', 'SHAMIR_ERR_BAD_INPUT', 2, [1, 2], [oneWord(4, p), oneWord(4, 5)]],
      ['a share word 2^32 − 1', 'SHAMIR_ERR_BAD_INPUT', 2, [1, 2], [oneWord(0, 7), oneWord(10, 0xffffffff)]],
      ['the same holder twice', 'SHAMIR_ERR_BAD_INPUT', 2, [3, 3], [oneWord(0, 7), oneWord(0, 7)]],
      ['holder id 2^24, above the largest share index', 'SHAMIR_ERR_BAD_INPUT', 2, [1, SHAMIR_MAX_X + 1], [oneWord(0, 7), oneWord(0, 9)]],
      ['fewer shares than t', 'SHAMIR_ERR_BAD_INPUT', 3, [1, 2], [oneWord(0, 7), oneWord(0, 9)]],
      ['share of 43 bytes', 'SHAMIR_ERR_BAD_INPUT', 2, [1, 2], [oneWord(0, 7).slice(1), oneWord(0, 9)]],
    ];
    for (const [comment, error, t, xs, ys] of invalid) {
      tests.push({ tcId: tests.length + 1, comment, result: 'invalid', threshold: t, xs, shares: ys.map(hex), error });
    }
    return tests;
  },
  check(tc) {
    const t = tc.threshold as number, xs = tc.xs as number[], shares = (tc.shares as string[]).map((s) => bytes(s));
    if (tc.result === 'invalid') return expectError(tc.error!, () => shamirCombine(xs, shares, t));
    const secret = bytes(tc.secret);
    const randomness = bytes(tc.randomness);
    const coeffs = coefficientsOf(randomness, t);
    expectEqual('coefficients', coeffs, tc.coefficients);
    expectEqual('shares (BigInt reference)', xs.map((x) => referenceShare(secret, coeffs, x)), tc.shares);
    const replay = new ReplayRng(randomness);
    expectEqual('shares', shamirSplit(secret, t, xs, replay).map(hex), tc.shares);
    expectThat(replay.remaining === 0, `${replay.remaining} randomness bytes not consumed`);
    for (const subset of tc.recover as number[][]) {
      const ys = subset.map((x) => shares[xs.indexOf(x)]!);
      expectEqual(`secret from holders ${subset.join(',')}`, shamirCombine(subset, ys, t), secret);
    }
  },
};

export const shareEncryptionKind: VectorKind = {
  kind: 'share-encryption',
  description: 'Share encryption (spec §3.7): key = HKDF(X25519(c_sender, C_recipient), salt = session id, info = "tally/secagg-v1/share-encryption" ‖ u32(min) ‖ u32(max), 32 bytes); AES-256-GCM with nonce u32(sender) ‖ u32(recipient) ‖ u32(1), associated data "tally/secagg-v1/share" ‖ session id ‖ u32(sender) ‖ u32(recipient), plaintext u32(sender) ‖ u32(recipient) ‖ s^SK share(44) ‖ b share(44). Invalid cases must be refused by the recipient with SECAGG_ERR_BAD_SHARE.',
  generate(p) {
    const tests: TestCase[] = [];
    const make = (tcId: number, sender: number, recipient: number) => {
      const rng = rngOf('share-encryption', tcId, 'secrets');
      const sid = rng.bytes(32), cSkSender = rng.bytes(32), cSkRecipient = rng.bytes(32), skShare = rng.bytes(SHARE_BYTES), bShare = rng.bytes(SHARE_BYTES);
      // Share values are 4-byte words < p < 2^25: clearing each word's top byte makes them so.
      for (let o = 0; o < SHARE_BYTES; o += 4) { skShare[o] = 0; bShare[o] = 0; }
      const cPkRecipient = p.x25519PublicKey(cSkRecipient);
      const key = shareEncryptionKey(p, sid, sender, cSkSender, recipient, cPkRecipient, 1);
      return { sid, cSkSender, cSkRecipient, cPkSender: p.x25519PublicKey(cSkSender), cPkRecipient, key, skShare, bShare };
    };
    for (const [sender, recipient] of [[1, 2], [5, 3], [4294967295, 1]] as const) {
      const tcId = tests.length + 1;
      const s = make(tcId, sender, recipient);
      tests.push({
        tcId, comment: `sender ${sender} to recipient ${recipient}`, result: 'valid', sessionId: hex(s.sid), sender, recipient,
        cSkSender: hex(s.cSkSender), cPkSender: hex(s.cPkSender), cSkRecipient: hex(s.cSkRecipient), cPkRecipient: hex(s.cPkRecipient),
        key: hex(s.key), nonce: hex(shareNonce(sender, recipient)), aad: hex(shareAad(s.sid, sender, recipient)),
        skShare: hex(s.skShare), bShare: hex(s.bShare), plaintext: hex(concatBytes(u32be(sender), u32be(recipient), s.skShare, s.bShare)),
        ciphertext: hex(sealShares(p, s.key, s.sid, sender, recipient, s.skShare, s.bShare)),
      });
    }
    const bad: [string, (s: ReturnType<typeof make>) => { ct: Uint8Array; sid?: Uint8Array; sender?: number; recipient?: number }][] = [
      ['one bit of the tag flipped', (s) => { const ct = sealShares(p, s.key, s.sid, 1, 2, s.skShare, s.bShare); ct[ct.length - 1]! ^= 1; return { ct }; }],
      ['one bit of the ciphertext body flipped', (s) => { const ct = sealShares(p, s.key, s.sid, 1, 2, s.skShare, s.bShare); ct[9]! ^= 0x40; return { ct }; }],
      ['truncated by one byte', (s) => ({ ct: sealShares(p, s.key, s.sid, 1, 2, s.skShare, s.bShare).slice(0, -1) })],
      ['sealed under another session id', (s) => ({ ct: sealShares(p, s.key, new Uint8Array(32).fill(7), 1, 2, s.skShare, s.bShare) })],
      ['opened in the wrong direction (sender and recipient swapped)', (s) => ({ ct: sealShares(p, s.key, s.sid, 1, 2, s.skShare, s.bShare), sender: 2, recipient: 1 })],
      ['authentic, but the b share has words not below p = 2^25 − 39', (s) => ({
        ct: p.aesGcmSeal(s.key, shareNonce(1, 2), concatBytes(u32be(1), u32be(2), s.skShare, new Uint8Array(SHARE_BYTES).fill(0xff)), shareAad(s.sid, 1, 2)),
      })],
      ['authentic, but the plaintext names another pair', (s) => ({
        ct: p.aesGcmSeal(s.key, shareNonce(1, 2), concatBytes(u32be(1), u32be(3), s.skShare, s.bShare), shareAad(s.sid, 1, 2)),
      })],
    ];
    for (const [comment, f] of bad) {
      const tcId = tests.length + 1;
      const s = make(tcId, 1, 2);
      const r = f(s);
      tests.push({
        tcId, comment, result: 'invalid', sessionId: hex(s.sid), sender: r.sender ?? 1, recipient: r.recipient ?? 2,
        cPkSender: hex(s.cPkSender), cSkRecipient: hex(s.cSkRecipient), ciphertext: hex(r.ct), error: 'SECAGG_ERR_BAD_SHARE',
      });
    }
    return tests;
  },
  check(tc, p) {
    const sid = bytes(tc.sessionId), sender = tc.sender as number, recipient = tc.recipient as number;
    // The recipient's side: the only side that ever decrypts.
    const key = shareEncryptionKey(p, sid, recipient, bytes(tc.cSkRecipient), sender, bytes(tc.cPkSender), 4);
    const ct = bytes(tc.ciphertext);
    if (tc.result === 'invalid') return expectError(tc.error!, () => openShares(p, key, sid, sender, recipient, ct, 4));
    expectEqual('key (recipient side)', key, tc.key);
    expectEqual('key (sender side)', shareEncryptionKey(p, sid, sender, bytes(tc.cSkSender), recipient, bytes(tc.cPkRecipient), 1), tc.key);
    expectEqual('nonce', shareNonce(sender, recipient), tc.nonce);
    expectEqual('aad', shareAad(sid, sender, recipient), tc.aad);
    expectEqual('ciphertext', sealShares(p, key, sid, sender, recipient, bytes(tc.skShare), bytes(tc.bShare)), ct);
    expectEqual('ciphertext (from plaintext)', p.aesGcmSeal(key, bytes(tc.nonce), bytes(tc.plaintext), bytes(tc.aad)), ct);
    const opened = openShares(p, key, sid, sender, recipient, ct, 4);
    expectEqual('skShare', opened.skShare, tc.skShare);
    expectEqual('bShare', opened.bShare, tc.bShare);
  },
};

interface Peer { id: number; sPk: string; pairwiseMaskKey?: string; sign?: 1 | -1 }

function maskedInput(p: CryptoProvider, tc: TestCase): { selfKey: Uint8Array; keys: Uint8Array[]; masked: Uint32Array } {
  const sid = bytes(tc.sessionId), u = tc.id as number, bits = tc.bits as number, dim = tc.dim as number;
  const input = u32s(tc.input);
  checkInput(input, { dim, bits } as Parameters<typeof checkInput>[1]);
  const selfKey = selfMaskKey(p, sid, u, bytes(tc.bU));
  const peers = tc.peers as Peer[];
  const keys = peers.map((v) => pairwiseMaskKey(p, sid, u, bytes(tc.sSk), v.id, bytes(v.sPk), 2));
  // Reference: plain uint32 sums of fully expanded masks, reduced mod 2^b once.
  const ref = input.slice();
  const add = (m: Uint32Array, sign: number) => { for (let i = 0; i < dim; i++) ref[i] = ref[i]! + sign * m[i]!; };
  add(expandMask(selfKey, dim, p), 1);
  peers.forEach((v, i) => add(expandMask(keys[i]!, dim, p), u < v.id ? 1 : -1));
  const acc = new MaskAccumulator(dim, p, { chunkBytes: 64 });
  acc.addVector(input, 1);
  acc.addMasks([{ key: selfKey, sign: 1 }, ...peers.map((v, i) => ({ key: keys[i]!, sign: (u < v.id ? 1 : -1) as 1 | -1 }))]);
  const masked = acc.result(bits);
  expectEqual('masked (accumulator vs reference)', masked, reduce(ref, bits));
  return { selfKey, keys, masked };
}

export const maskedInputKind: VectorKind = {
  kind: 'masked-input',
  description: 'Masked input of client u (spec §3.6, §5.4, Bonawitz Fig. 4 round 2): y = x + PRG(selfMaskKey(b_u)) + Σ_v sign_v · PRG(pairwiseMaskKey(s_u, S_v)) mod 2^b, sign_v = +1 if u < v else −1, over the peers v in U2 ∩ N(u); `packed` is the bit-packed y sent in the R2 message. Invalid cases: an input entry ≥ 2^b (SECAGG_ERR_BAD_VECTOR) and a peer with a low-order key (SECAGG_ERR_LOW_ORDER_KEY).',
  generate(p) {
    const tests: TestCase[] = [];
    const make = (tcId: number, u: number, peerIds: number[], bits: number, dim: number) => {
      const rng = rngOf('masked-input', tcId, 'secrets');
      const sid = rng.bytes(32), sSk = rng.bytes(32), bU = rng.bytes(32);
      const peers: Peer[] = peerIds.map((id) => ({ id, sPk: hex(p.x25519PublicKey(rng.bytes(32))) }));
      const input = inputsFrom(rng, 1, dim, bits)[0]!;
      return { sessionId: hex(sid), id: u, bits, dim, input: Array.from(input), bU: hex(bU), sSk: hex(sSk), peers };
    };
    for (const [u, peerIds, bits, dim] of [[2, [1, 3], 16, 8], [3, [1, 2, 4, 5], 32, 16], [1, [2], 5, 17], [1000, [7, 65536, 4294967295], 13, 64]] as const) {
      const tcId = tests.length + 1;
      const base = make(tcId, u, [...peerIds], bits, dim);
      const r = maskedInput(p, { tcId, comment: '', result: 'valid', ...base });
      tests.push({
        tcId, comment: `u=${u}, ${peerIds.length} peers, b=${bits}, m=${dim}`, result: 'valid', ...base, selfMaskKey: hex(r.selfKey),
        peers: base.peers.map((v, i) => ({ ...v, pairwiseMaskKey: hex(r.keys[i]!), sign: u < v.id ? 1 : -1 })),
        masked: Array.from(r.masked), packed: hex(packVector(r.masked, bits)),
      });
    }
    let tcId = tests.length + 1;
    const tooBig = make(tcId, 2, [1, 3], 8, 4);
    tooBig.input[2] = 256;
    tests.push({ tcId, comment: 'input entry 2^b', result: 'invalid', ...tooBig, error: 'SECAGG_ERR_BAD_VECTOR' });
    tcId++;
    const lowOrder = make(tcId, 2, [1, 3], 8, 4);
    lowOrder.peers[1]!.sPk = hex(lowOrderLists().x25519[2]!);
    tests.push({ tcId, comment: 'peer 3 has a low-order key', result: 'invalid', ...lowOrder, error: 'SECAGG_ERR_LOW_ORDER_KEY' });
    return tests;
  },
  check(tc, p) {
    if (tc.result === 'invalid') return expectError(tc.error!, () => maskedInput(p, tc));
    const r = maskedInput(p, tc);
    expectEqual('selfMaskKey', r.selfKey, tc.selfMaskKey);
    (tc.peers as Peer[]).forEach((v, i) => {
      expectEqual(`peers[${i}].pairwiseMaskKey`, r.keys[i], v.pairwiseMaskKey);
      expectEqual(`peers[${i}].sign`, (tc.id as number) < v.id ? 1 : -1, v.sign);
    });
    expectEqual('masked', r.masked, tc.masked);
    expectEqual('packed', packVector(r.masked, tc.bits as number), tc.packed);
  },
};
