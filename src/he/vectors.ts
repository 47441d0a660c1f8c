/**
 * Test vectors of he-sum-v1 (protocols/he-sum-v1/vectors/he-sum-v1.json):
 * everything in the protocol that is deterministic.
 *
 * - `maskModT`: mask_t(key) (spec §8.2) for keys and moduli, BigInt-checked;
 * - `envelopeHeader`: the 45-byte envelope header of given fields (spec §5);
 * - `configCommitment`: the config encoding and hash with an aggregator
 *   commitment (spec §8.1), and the same config without one (secagg-v1's);
 * - `keyWrap`: the ceremony's wrap key, AAD and sealed key digest from fixed
 *   X25519 keys (spec §9);
 * - `decrypt`: a secret key and a sum envelope of fixed bytes made with the
 *   pinned SEAL (node-seal 6.0.3, SEAL 4.1), and the sum they decrypt to;
 *   also one he+masks site envelope and its slots (the masked input mod t).
 *
 * `node dist/src/he/vectors.js write` regenerates the file (the SEAL
 * ciphertexts are random, so a new file has new bytes); `checkHeVectors`
 * replays one (test/he/vectors.test.ts).
 * @module
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { nativeProvider as p } from '../crypto/native.js';
import { counterBlockAt } from '../crypto/mask.js';
import { concatFields, fromHex, toHex } from '../crypto/_validate.js';
import { configHash, encodeConfig, type SessionConfig } from '../secagg/config.js';
import { CEREMONY_LABELS } from './ceremony.js';
import { expandMaskModT, maskModT } from './masks.js';
import { heParams, paramsDigest } from './params.js';
import { heContext } from './seal.js';
import { HeAccumulator, heDecryptSlots, heDecryptSum, heEncryptResiduesWith, heEncrypt, heImportKey, heKeygen, readHeEnvelope } from './sum.js';

/** The vectors file, relative to the package root. */
export const HE_VECTORS_PATH = 'protocols/he-sum-v1/vectors/he-sum-v1.json';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const bytesOf = (label: string, n: number) => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = createHash('sha256').update(`${label}/${i >> 5}`).digest()[i & 31]!;
  return out;
};

function maskCases(): unknown[] {
  return [[10, 16], [20, 32], [1000, 32]].map(([n, b], i) => {
    const t = heParams(n!, b!).plainModulus;
    const key = bytesOf(`mask-key-${i}`, 16);
    const words = new Uint8Array(16 * 4);
    p.aes128Ctr(key, counterBlockAt(0)).fill(words);
    return { sites: n, bits: b, t: t.toString(), key: toHex(key), keystreamWords: toHex(words), entries: Array.from(expandMaskModT(key, 4, t, p), String) };
  });
}

function header(kind: number, digest: Uint8Array, keyId: Uint8Array, length: number, sites: number): Uint8Array {
  const out = new Uint8Array(45);
  out.set([0x48, 0x45, 0x53, 0x31], 0);
  out[4] = kind;
  out.set(digest, 5);
  out.set(keyId, 21);
  const v = new DataView(out.buffer);
  v.setUint32(37, length, true);
  v.setUint32(41, sites, true);
  return out;
}

function baseConfig(): SessionConfig {
  return { nonce: bytesOf('nonce', 32), clientIds: [1, 2, 3, 4], threshold: 3, bits: 16, dim: 10, threat: 'semi-honest', graph: { kind: 'complete' } };
}

function wrapCase(keyBytes: Uint8Array, keyId: Uint8Array, digest: Uint8Array): Record<string, unknown> {
  const e = bytesOf('ephemeral', 32), r = bytesOf('recipient', 32);
  const ceremonyId = bytesOf('ceremony', 32);
  const dealer = 1, to = 2;
  const ephemeral = p.x25519PublicKey(e);
  const shared = p.x25519(e, p.x25519PublicKey(r));
  const info = concatFields([CEREMONY_LABELS.keyWrap, dealer, to, keyId]);
  const k = p.hkdf(shared, ceremonyId, info, 32);
  const aad = concatFields([CEREMONY_LABELS.wrapAad, digest, keyId, ceremonyId, dealer, to, ephemeral]);
  const sealed = p.aesGcmSeal(k, new Uint8Array(12), keyBytes, aad);
  return {
    dealer, to, ceremonyId: toHex(ceremonyId), keyId: toHex(keyId), paramsDigest: toHex(digest),
    ephemeralPrivate: toHex(e), recipientPrivate: toHex(r), ephemeralPublic: toHex(ephemeral), shared: toHex(shared),
    info: toHex(info), wrapKey: toHex(k), aad: toHex(aad), sealedSha256: sha(sealed), sealedBytes: sealed.length,
  };
}

/** Makes the vectors (the decryption ones with fresh SEAL randomness). */
export async function generateHeVectors(): Promise<unknown> {
  const params = heParams(4, 16);
  const hc = await heContext(params);
  const key = await heKeygen(params);
  const a = Uint32Array.from({ length: 10 }, (_, i) => i * 1000 + 1);
  const b = Uint32Array.from({ length: 10 }, (_, i) => 65535 - i);
  const acc = await HeAccumulator.create(params, 10);
  let sum: Uint8Array;
  try {
    acc.add(await heEncrypt(key, a));
    acc.add(await heEncrypt(key, b));
    sum = acc.finish();
  } finally {
    acc.dispose();
  }
  const maskKey = bytesOf('site-mask', 16);
  const masked = maskModT(a, [{ key: maskKey, sign: 1 }], params.plainModulus, p);
  const site = heEncryptResiduesWith(hc, key, masked);
  const cfg = baseConfig();
  const withHe: SessionConfig = { ...cfg, aggregator: { mode: 'he+masks', params: paramsDigest(params), keyId: key.keyId, inputBytes: site.length } };
  return {
    suite: 'he-sum-v1', seal: 'SEAL 4.1 (node-seal 6.0.3)',
    maskModT: maskCases(),
    envelopeHeader: [
      { kind: 1, paramsDigest: toHex(paramsDigest(params)), keyId: toHex(key.keyId), length: 10, sites: 1, header: toHex(header(1, paramsDigest(params), key.keyId, 10, 1)) },
      { kind: 2, paramsDigest: toHex(paramsDigest(params)), keyId: toHex(key.keyId), length: 5000, sites: 3, header: toHex(header(2, paramsDigest(params), key.keyId, 5000, 3)) },
    ],
    configCommitment: {
      config: { nonce: toHex(cfg.nonce), clientIds: cfg.clientIds, threshold: cfg.threshold, bits: cfg.bits, dim: cfg.dim, threat: cfg.threat, graph: 'complete' },
      aggregator: { mode: 'he+masks', params: toHex(paramsDigest(params)), keyId: toHex(key.keyId), inputBytes: site.length },
      encodedConfig: toHex(encodeConfig(withHe)), configHash: toHex(configHash(p, withHe)),
      secaggEncodedConfig: toHex(encodeConfig(cfg)), secaggConfigHash: toHex(configHash(p, cfg)),
    },
    keyWrap: wrapCase(key.bytes, key.keyId, paramsDigest(params)),
    decrypt: {
      sites: 4, bits: 16, secretKey: toHex(key.bytes), keyId: toHex(key.keyId),
      sumEnvelope: toHex(sum), sum: Array.from(a, (x, i) => x + b[i]!),
      maskedSiteEnvelope: toHex(site), maskKey: toHex(maskKey), input: Array.from(a), maskedSlots: Array.from(masked),
    },
  };
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Replays a vectors document; returns the names of the cases that do not match (empty: all match). */
export async function checkHeVectors(doc: Json): Promise<string[]> {
  const bad: string[] = [];
  const eq = (name: string, got: unknown, want: unknown) => { if (JSON.stringify(got) !== JSON.stringify(want)) bad.push(name); };
  (doc.maskModT as Json[]).forEach((c, i) => {
    const params = heParams(c.sites, c.bits);
    eq(`maskModT[${i}].t`, params.plainModulus.toString(), c.t);
    const words = new Uint8Array(64);
    p.aes128Ctr(fromHex(c.key), counterBlockAt(0)).fill(words);
    eq(`maskModT[${i}].keystreamWords`, toHex(words), c.keystreamWords);
    eq(`maskModT[${i}].entries`, Array.from(expandMaskModT(fromHex(c.key), 4, BigInt(c.t), p), String), c.entries);
    // The definition, in BigInt.
    const dv = new DataView(words.buffer);
    const ref = [0, 1, 2, 3].map((e) => ([3, 2, 1, 0].reduce((v, j) => (v << 32n) + BigInt(dv.getUint32(16 * e + 4 * j, true)), 0n) % BigInt(c.t)).toString());
    eq(`maskModT[${i}].reference`, ref, c.entries);
  });
  (doc.envelopeHeader as Json[]).forEach((c, i) => eq(`envelopeHeader[${i}]`, toHex(header(c.kind, fromHex(c.paramsDigest), fromHex(c.keyId), c.length, c.sites)), c.header));
  const cc = doc.configCommitment as Json;
  const cfg: SessionConfig = { nonce: fromHex(cc.config.nonce), clientIds: cc.config.clientIds, threshold: cc.config.threshold, bits: cc.config.bits, dim: cc.config.dim, threat: cc.config.threat, graph: { kind: 'complete' } };
  const withHe: SessionConfig = { ...cfg, aggregator: { mode: cc.aggregator.mode, params: fromHex(cc.aggregator.params), keyId: fromHex(cc.aggregator.keyId), inputBytes: cc.aggregator.inputBytes } };
  eq('configCommitment.encodedConfig', toHex(encodeConfig(withHe)), cc.encodedConfig);
  eq('configCommitment.configHash', toHex(configHash(p, withHe)), cc.configHash);
  eq('configCommitment.secaggEncodedConfig', toHex(encodeConfig(cfg)), cc.secaggEncodedConfig);
  eq('configCommitment.secaggConfigHash', toHex(configHash(p, cfg)), cc.secaggConfigHash);
  const d = doc.decrypt as Json;
  const params = heParams(d.sites, d.bits);
  const key = await heImportKey(params, fromHex(d.secretKey));
  eq('decrypt.keyId', toHex(key.keyId), d.keyId);
  const w = doc.keyWrap as Json;
  const got = wrapCase(key.bytes, key.keyId, paramsDigest(params));
  for (const f of ['ephemeralPublic', 'shared', 'info', 'wrapKey', 'aad', 'sealedSha256', 'sealedBytes']) eq(`keyWrap.${f}`, got[f], w[f]);
  const sumEnv = fromHex(d.sumEnvelope);
  const info = readHeEnvelope(params, sumEnv);
  eq('decrypt.sumEnvelope header', [info.kind, toHex(info.keyId), info.length, info.sites], ['sum', d.keyId, d.sum.length, 2]);
  eq('decrypt.sum', Array.from((await heDecryptSum(key, sumEnv)).values), d.sum);
  const slots = await heDecryptSlots(key, fromHex(d.maskedSiteEnvelope));
  eq('decrypt.maskedSlots', Array.from(slots), d.maskedSlots);
  eq('decrypt.maskedSlots = input + mask_t', Array.from(maskModT(Uint32Array.from(d.input), [{ key: fromHex(d.maskKey), sign: 1 }], params.plainModulus, p)), d.maskedSlots);
  return bad;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const file = root + HE_VECTORS_PATH;
  if (process.argv[2] === 'write') {
    writeFileSync(file, JSON.stringify(await generateHeVectors(), null, 1) + '\n');
    console.log(`wrote ${file}`);
  } else {
    const bad = await checkHeVectors(JSON.parse(readFileSync(file, 'utf8')));
    console.log(bad.length === 0 ? 'he-sum-v1 vectors: all match' : `he-sum-v1 vectors: mismatch in ${bad.join(', ')}`);
    process.exitCode = bad.length === 0 ? 0 : 1;
  }
}
