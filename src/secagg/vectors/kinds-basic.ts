/**
 * Vector kinds of the secagg-v1 building blocks that need no Shamir sharing:
 * `config` (config encoding and hash, neighbour graph, session id, signed
 * bytes; spec §4.1–4.3, §5.2, §5.5), `key-agreement` (X25519 and the HKDF
 * derivations; spec §3.2, §3.4, §3.6–3.7), `mask-expansion` (the AES-128-CTR
 * PRG; spec §3.5–3.6) and `vector-packing` (the bit-packed vector encoding;
 * spec §3.9).
 */
import type { CryptoProvider } from '../../crypto/types.js';
import { lowOrderLists } from '../../crypto/lowOrder.js';
import {
  advertiseSignedBytes, configHash, consistencySignedBytes, encodeConfig, sessionId, type SessionConfig,
} from '../config.js';
import { pairwiseMaskKey, selfMaskKey, shareEncryptionKey } from '../keys.js';
import { expandMask, MaskAccumulator } from '../../crypto/mask.js';
import { sessionGraph, validateSession } from '../session.js';
import { packVector, unpackVector } from '../../crypto/vector.js';
import {
  bytes, configFromJson, configToJson, expectEqual, expectError, expectThat, hex, inputsFrom, rngOf, u32s,
  type ConfigJson, type TestCase,
} from './_common.js';
import type { VectorKind } from './kind.js';

type Spec = Omit<SessionConfig, 'nonce' | 'identityKeys'>;

function buildConfig(p: CryptoProvider, kind: string, tcId: number, s: Spec): { config: SessionConfig; seeds?: Uint8Array[] } {
  const rng = rngOf(kind, tcId, 'setup');
  const seeds = s.threat === 'malicious' ? s.clientIds.map(() => rng.bytes(32)) : undefined;
  const config: SessionConfig = { ...s, nonce: rng.bytes(32), ...(seeds ? { identityKeys: seeds.map((x) => p.ed25519PublicKey(x)) } : {}) };
  return { config, ...(seeds ? { seeds } : {}) };
}

const complete = { kind: 'complete' } as const;

export const configKind: VectorKind = {
  kind: 'config',
  description: 'Session configuration (spec §4.1–4.3, §5.2, §5.5): canonical encoding, config hash, neighbour graph (complete or Harary, permuted by the config hash), session id over advertised keys, and the bytes covered by the R0 advertisement and R3 consistency signatures. Invalid cases are configurations that validateSession rejects.',
  generate(p) {
    const valid: [string, Spec][] = [
      ['semi-honest, complete graph, n=3', { clientIds: [1, 2, 3], threshold: 2, bits: 16, dim: 8, threat: 'semi-honest', graph: complete }],
      ['malicious, complete graph, n=4, identity keys in the encoding', { clientIds: [1, 2, 3, 4], threshold: 3, bits: 32, dim: 4, threat: 'malicious', graph: complete }],
      ['semi-honest, Harary graph k=4, n=6', { clientIds: [1, 2, 3, 4, 5, 6], threshold: 3, bits: 20, dim: 64, threat: 'semi-honest', graph: { kind: 'harary', degree: 4 } }],
      ['semi-honest, Harary graph k=2, sparse ids up to 2^24-1', { clientIds: [3, 7, 10, 42, 100, 1000, 65536, 16777215], threshold: 2, bits: 1, dim: 1, threat: 'semi-honest', graph: { kind: 'harary', degree: 2 } }],
      ['semi-honest, Harary graph k=3 (odd degree, n even): each client also neighbours the client opposite it on the cycle', { clientIds: [1, 2, 3, 4, 5, 6], threshold: 2, bits: 16, dim: 8, threat: 'semi-honest', graph: { kind: 'harary', degree: 3 } }],
    ];
    const invalid: [string, string, Spec][] = [
      ['client ids not strictly increasing', 'SECAGG_ERR_BAD_CONFIG', { clientIds: [1, 3, 2], threshold: 2, bits: 16, dim: 8, threat: 'semi-honest', graph: complete }],
      ['duplicate client id', 'SECAGG_ERR_BAD_CONFIG', { clientIds: [1, 2, 2, 4], threshold: 2, bits: 16, dim: 8, threat: 'semi-honest', graph: complete }],
      ['client id 2^24, above the largest Shamir share index', 'SECAGG_ERR_BAD_CONFIG', { clientIds: [1, 2, 16777216], threshold: 2, bits: 16, dim: 8, threat: 'semi-honest', graph: complete }],
      ['bits = 33', 'SECAGG_ERR_BAD_CONFIG', { clientIds: [1, 2, 3], threshold: 2, bits: 33, dim: 8, threat: 'semi-honest', graph: complete }],
      ['odd Harary degree with n odd', 'SECAGG_ERR_BAD_CONFIG', { clientIds: [1, 2, 3, 4, 5], threshold: 2, bits: 16, dim: 8, threat: 'semi-honest', graph: { kind: 'harary', degree: 3 } }],
      ['threshold t = 1 gives no secrecy', 'SECAGG_ERR_BAD_THRESHOLD', { clientIds: [1, 2, 3], threshold: 1, bits: 16, dim: 8, threat: 'semi-honest', graph: complete }],
      ['threshold above the number of share holders', 'SECAGG_ERR_BAD_THRESHOLD', { clientIds: [1, 2, 3, 4, 5, 6], threshold: 5, bits: 16, dim: 8, threat: 'semi-honest', graph: { kind: 'harary', degree: 4 } }],
      ['malicious mode needs t > 2(k+1)/3', 'SECAGG_ERR_BAD_THRESHOLD', { clientIds: [1, 2, 3, 4, 5], threshold: 3, bits: 16, dim: 8, threat: 'malicious', graph: complete }],
      ['malicious mode, Harary k=4: t = 3 is not above 2(k+1)/3', 'SECAGG_ERR_BAD_THRESHOLD', { clientIds: [1, 2, 3, 4, 5, 6, 7, 8], threshold: 3, bits: 16, dim: 8, threat: 'malicious', graph: { kind: 'harary', degree: 4 } }],
      ['Harary degree above n − 1', 'SECAGG_ERR_BAD_CONFIG', { clientIds: [1, 2, 3, 4], threshold: 2, bits: 16, dim: 8, threat: 'semi-honest', graph: { kind: 'harary', degree: 4 } }],
    ];
    const tests: TestCase[] = [];
    for (const [comment, spec] of valid) {
      const tcId = tests.length + 1;
      const { config, seeds } = buildConfig(p, 'config', tcId, spec);
      const cfgHash = configHash(p, config);
      const rng = rngOf('config', tcId, 'keys');
      const advertised = config.clientIds.map((id) => ({ id, cPk: p.x25519PublicKey(rng.bytes(32)), sPk: p.x25519PublicKey(rng.bytes(32)) }));
      const sid = sessionId(p, cfgHash, advertised);
      const graph = sessionGraph(config, p);
      const survivors = config.clientIds.filter((_, i) => i !== 0);
      const first = advertised[0]!;
      tests.push({
        tcId, comment, result: 'valid', config: configToJson(config),
        ...(seeds ? { identitySeeds: seeds.map(hex) } : {}),
        encodedConfig: hex(encodeConfig(config)), configHash: hex(cfgHash),
        neighbors: config.clientIds.map((id) => ({ id, neighbors: [...graph.neighbors(id)] })),
        advertised: advertised.map((k) => ({ id: k.id, cPk: hex(k.cPk), sPk: hex(k.sPk) })),
        sessionId: hex(sid),
        advertiseSignedBytes: hex(advertiseSignedBytes(cfgHash, first.id, first.cPk, first.sPk)),
        ...(seeds ? { advertiseSignature: hex(p.ed25519Sign(seeds[0]!, advertiseSignedBytes(cfgHash, first.id, first.cPk, first.sPk))) } : {}),
        survivors, consistencySignedBytes: hex(consistencySignedBytes(sid, survivors)),
      });
    }
    for (const [comment, error, spec] of invalid) {
      const tcId = tests.length + 1;
      tests.push({ tcId, comment, result: 'invalid', config: configToJson(buildConfig(p, 'config', tcId, spec).config), error });
    }
    const tcId = tests.length + 1;
    const { config } = buildConfig(p, 'config', tcId, { clientIds: [1, 2, 3, 4], threshold: 3, bits: 16, dim: 8, threat: 'malicious', graph: complete });
    const keys = [...config.identityKeys!];
    keys[2] = keys[1]!; // one roster key for two ids would let one party sign as both
    tests.push({ tcId, comment: 'malicious mode: clients 2 and 3 share one identity key', result: 'invalid', config: configToJson({ ...config, identityKeys: keys }), error: 'SECAGG_ERR_BAD_CONFIG' });
    return tests;
  },
  check(tc, p) {
    const config = configFromJson(tc.config as ConfigJson);
    if (tc.result === 'invalid') return expectError(tc.error!, () => validateSession(config));
    validateSession(config);
    if (tc.identitySeeds !== undefined) {
      (tc.identitySeeds as string[]).forEach((s, i) => expectEqual(`identityKeys[${i}]`, p.ed25519PublicKey(bytes(s)), config.identityKeys![i]));
    }
    expectEqual('encodedConfig', encodeConfig(config), tc.encodedConfig);
    const cfgHash = configHash(p, config);
    expectEqual('configHash', cfgHash, tc.configHash);
    const graph = sessionGraph(config, p);
    expectEqual('neighbors', config.clientIds.map((id) => ({ id, neighbors: [...graph.neighbors(id)] })), tc.neighbors);
    const adv = (tc.advertised as { id: number; cPk: string; sPk: string }[]).map((k) => ({ id: k.id, cPk: bytes(k.cPk), sPk: bytes(k.sPk) }));
    const sid = sessionId(p, cfgHash, adv);
    expectEqual('sessionId', sid, tc.sessionId);
    const a = adv[0]!;
    const signed = advertiseSignedBytes(cfgHash, a.id, a.cPk, a.sPk);
    expectEqual('advertiseSignedBytes', signed, tc.advertiseSignedBytes);
    if (tc.advertiseSignature !== undefined) {
      expectEqual('advertiseSignature', p.ed25519Sign(bytes((tc.identitySeeds as string[])[0]), signed), tc.advertiseSignature);
      expectThat(p.ed25519Verify(config.identityKeys![0]!, signed, bytes(tc.advertiseSignature)), 'advertiseSignature does not verify');
    }
    expectEqual('consistencySignedBytes', consistencySignedBytes(sid, tc.survivors as number[]), tc.consistencySignedBytes);
  },
};

export const keyAgreementKind: VectorKind = {
  kind: 'key-agreement',
  description: 'Key agreement and seed derivation (spec §3.2, §3.4, §3.6–3.7): X25519 between u and v, the pairwise-mask AES-128 key and the share-encryption AES-256 key (HKDF-SHA256, salt = session id, info = label ‖ u32(min) ‖ u32(max)), the same from both sides, and the self-mask key of u from b_u. Invalid cases give v a low-order public key, which must abort with SECAGG_ERR_LOW_ORDER_KEY.',
  generate(p) {
    const tests: TestCase[] = [];
    for (const [u, v] of [[1, 2], [7, 3], [1, 4294967295], [65536, 65537]] as const) {
      const tcId = tests.length + 1;
      const rng = rngOf('key-agreement', tcId, 'secrets');
      const sid = rng.bytes(32), skU = rng.bytes(32), skV = rng.bytes(32), bU = rng.bytes(32);
      const pkV = p.x25519PublicKey(skV);
      tests.push({
        tcId, comment: `u=${u}, v=${v}`, result: 'valid', sessionId: hex(sid), u, v,
        skU: hex(skU), skV: hex(skV), pkU: hex(p.x25519PublicKey(skU)), pkV: hex(pkV), sharedSecret: hex(p.x25519(skU, pkV)),
        pairwiseMaskKey: hex(pairwiseMaskKey(p, sid, u, skU, v, pkV, 2)),
        shareEncryptionKey: hex(shareEncryptionKey(p, sid, u, skU, v, pkV, 1)),
        bU: hex(bU), selfMaskKey: hex(selfMaskKey(p, sid, u, bU)),
      });
    }
    const lowOrder = lowOrderLists().x25519;
    const highBit = lowOrder[0]!.slice();
    highBit[31] = 0x80;
    for (const [i, pk] of [...lowOrder, highBit].entries()) {
      const tcId = tests.length + 1;
      const rng = rngOf('key-agreement', tcId, 'secrets');
      tests.push({
        tcId, comment: i < lowOrder.length ? `low-order public key #${i} of the blocklist` : 'the zero point with bit 255 set (ignored by RFC 7748 decoding)',
        result: 'invalid', sessionId: hex(rng.bytes(32)), u: 1, v: 2, skU: hex(rng.bytes(32)), pkV: hex(pk), error: 'SECAGG_ERR_LOW_ORDER_KEY',
      });
    }
    return tests;
  },
  check(tc, p) {
    const sid = bytes(tc.sessionId), u = tc.u as number, v = tc.v as number, skU = bytes(tc.skU), pkV = bytes(tc.pkV);
    if (tc.result === 'invalid') {
      expectError(tc.error!, () => pairwiseMaskKey(p, sid, u, skU, v, pkV, 2));
      return expectError(tc.error!, () => shareEncryptionKey(p, sid, u, skU, v, pkV, 1));
    }
    const skV = bytes(tc.skV);
    expectEqual('pkU', p.x25519PublicKey(skU), tc.pkU);
    expectEqual('pkV', p.x25519PublicKey(skV), tc.pkV);
    expectEqual('sharedSecret', p.x25519(skU, pkV), tc.sharedSecret);
    expectEqual('sharedSecret (v side)', p.x25519(skV, bytes(tc.pkU)), tc.sharedSecret);
    expectEqual('pairwiseMaskKey', pairwiseMaskKey(p, sid, u, skU, v, pkV, 2), tc.pairwiseMaskKey);
    expectEqual('pairwiseMaskKey (v side)', pairwiseMaskKey(p, sid, v, skV, u, bytes(tc.pkU), 2), tc.pairwiseMaskKey);
    expectEqual('shareEncryptionKey', shareEncryptionKey(p, sid, u, skU, v, pkV, 1), tc.shareEncryptionKey);
    expectEqual('shareEncryptionKey (v side)', shareEncryptionKey(p, sid, v, skV, u, bytes(tc.pkU), 1), tc.shareEncryptionKey);
    expectEqual('selfMaskKey', selfMaskKey(p, sid, u, bytes(tc.bU)), tc.selfMaskKey);
  },
};

export const maskExpansionKind: VectorKind = {
  kind: 'mask-expansion',
  description: 'PRG mask expansion (spec §3.5–3.6): mask[i] = little-endian uint32 word i of the AES-128-CTR keystream under the 16-byte key with an all-zero initial counter block. Checked with the reference expansion and with the chunked accumulator (both add kernels, added and subtracted). Invalid cases have a key that is not 16 bytes.',
  generate(p) {
    const tests: TestCase[] = [];
    for (const dim of [1, 4, 16, 17, 64]) {
      const tcId = tests.length + 1;
      const key = rngOf('mask-expansion', tcId, 'key').bytes(16);
      tests.push({ tcId, comment: `dim=${dim}`, result: 'valid', key: hex(key), dim, mask: Array.from(expandMask(key, dim, p)) });
    }
    for (const len of [15, 32]) {
      const tcId = tests.length + 1;
      tests.push({ tcId, comment: `key of ${len} bytes`, result: 'invalid', key: hex(rngOf('mask-expansion', tcId, 'key').bytes(len)), dim: 4, error: 'SECAGG_ERR_BAD_MASK' });
    }
    return tests;
  },
  check(tc, p) {
    const key = bytes(tc.key), dim = tc.dim as number;
    if (tc.result === 'invalid') {
      expectError(tc.error!, () => expandMask(key, dim, p));
      return expectError(tc.error!, () => new MaskAccumulator(dim, p, { backend: 'js' }).addMask(key, 1));
    }
    expectEqual('mask', expandMask(key, dim, p), tc.mask);
    for (const backend of ['js', 'auto'] as const) {
      const acc = new MaskAccumulator(dim, p, { backend, chunkBytes: 64 });
      acc.addMask(key, 1);
      expectEqual(`mask (accumulator, ${backend})`, acc.result(32), tc.mask);
      acc.clear();
      acc.addMask(key, -1);
      expectEqual(`-mask (accumulator, ${backend})`, acc.result(32), (tc.mask as number[]).map((x) => (2 ** 32 - x) % 2 ** 32));
    }
  },
};

export const vectorPackingKind: VectorKind = {
  kind: 'vector-packing',
  description: 'Bit-packed vector encoding (spec §3.9): m values of b bits as one little-endian bit stream in exactly ceil(b·m/8) bytes, unused high bits of the last byte zero. Invalid cases: a value ≥ 2^b (packing fails), a wrong length or non-zero padding bits (decoding fails), all with SECAGG_ERR_BAD_VECTOR.',
  generate() {
    const tests: TestCase[] = [];
    for (const [bits, dim] of [[1, 7], [5, 10], [8, 8], [13, 9], [16, 5], [24, 3], [31, 4], [32, 6]] as const) {
      const tcId = tests.length + 1;
      const values = inputsFrom(rngOf('vector-packing', tcId, 'values'), 1, dim, bits)[0]!;
      values[0] = bits === 32 ? 0xffffffff : 2 ** bits - 1; // the largest value
      tests.push({ tcId, comment: `b=${bits}, m=${dim}`, result: 'valid', bits, dim, values: Array.from(values), packed: hex(packVector(values, bits)) });
    }
    const v = Uint32Array.from([1, 2, 3]);
    const padded = packVector(v, 5);
    padded[padded.length - 1]! |= 0x80;
    const invalid: [string, Record<string, unknown>][] = [
      ['value 2^b does not fit b bits', { bits: 5, dim: 3, values: [1, 32, 3] }],
      ['non-zero padding bit in the last byte', { bits: 5, dim: 3, packed: hex(padded) }],
      ['one byte too many', { bits: 16, dim: 3, packed: hex(new Uint8Array(7)) }],
      ['one byte too few', { bits: 13, dim: 3, packed: hex(new Uint8Array(4)) }],
    ];
    for (const [comment, f] of invalid) tests.push({ tcId: tests.length + 1, comment, result: 'invalid', ...f, error: 'SECAGG_ERR_BAD_VECTOR' });
    return tests;
  },
  check(tc) {
    const bits = tc.bits as number, dim = tc.dim as number;
    if (tc.result === 'invalid') {
      if (tc.packed !== undefined) return expectError(tc.error!, () => unpackVector(bytes(tc.packed), bits, dim));
      return expectError(tc.error!, () => packVector(u32s(tc.values), bits));
    }
    expectEqual('packed', packVector(u32s(tc.values), bits), tc.packed);
    expectEqual('values', unpackVector(bytes(tc.packed), bits, dim), tc.values);
  },
};
