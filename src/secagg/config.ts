/**
 * Session configuration of secagg-v1 and the two hashes that bind every
 * message to one session (spec §4):
 *
 * - the config hash, H("tally/secagg-v1/config" ‖ encode(config)), known
 *   before any key exists and carried by R0 messages;
 * - the session id, H("tally/secagg-v1/session" ‖ configHash ‖ every
 *   advertised key), carried by every later message. A server that shows
 *   different keys to different clients gives them different session ids, so
 *   their later messages no longer verify (in malicious mode the R3
 *   signatures cover the session id).
 */
import { ValidationError } from '../errors.js';
import type { CryptoProvider } from '../crypto/types.js';
import { concatFields } from '../crypto/_validate.js';
import { SHAMIR_MAX_X } from '../crypto/shamir.js';

/** The adversary the session is built to withstand (secagg-v1 §2.2). */
export type ThreatModel = 'semi-honest' | 'malicious';

/** The neighbour graph: everyone (Bonawitz 2017) or a k-regular Harary graph (SecAgg+). */
export type GraphSpec = { readonly kind: 'complete' } | { readonly kind: 'harary'; readonly degree: number };

export interface SessionConfig {
  /** 32 fresh random bytes chosen by the server for this session; never reused. */
  readonly nonce: Uint8Array;
  /** The roster of client ids, each in [1, 2^24-1] (Shamir share indices, spec §3.8), strictly increasing. */
  readonly clientIds: readonly number[];
  /** Shamir threshold t: shares needed to rebuild a secret; also the minimum |U_i| in every round. */
  readonly threshold: number;
  /** Bit width b: inputs and the sum are integers mod 2^b, 1 ≤ b ≤ 32. */
  readonly bits: number;
  /** Vector length m. */
  readonly dim: number;
  readonly threat: ThreatModel;
  readonly graph: GraphSpec;
  /** Malicious mode: each client's long-term Ed25519 public key, in `clientIds` order. */
  readonly identityKeys?: readonly Uint8Array[];
  /**
   * A session whose masked inputs are homomorphic ciphertexts (he-sum-v1 §8)
   * instead of secagg-v1's packed vectors. Absent for secagg-v1 (the default):
   * its encoding and hashes are then unchanged. When present it is part of the
   * config hash, so a client cannot be led into another mode, set or key.
   */
  readonly aggregator?: AggregatorCommitment;
}

/** The aggregation a session commits to when it is not secagg-v1's (he-sum-v1 §8.1). */
export interface AggregatorCommitment {
  /** `he`: ciphertexts of the inputs alone; `he+masks`: of the inputs plus the secagg masks mod t. */
  readonly mode: 'he' | 'he+masks';
  /** The parameter set's 16-byte digest (he-sum-v1 §2). */
  readonly params: Uint8Array;
  /** The 16-byte key id of the sites' shared key (he-sum-v1 §5), from the key ceremony. */
  readonly keyId: Uint8Array;
  /** The exact length in bytes of every masked input (a site's envelope of m values). */
  readonly inputBytes: number;
}

/** The mode byte of an {@link AggregatorCommitment} in the config encoding. */
export const AGGREGATOR_MODE_BYTE = { he: 1, 'he+masks': 2 } as const;

/** Largest client id: ids are Shamir share indices, which must be distinct non-zero field elements (spec §3.8). */
export const MAX_CLIENT_ID = SHAMIR_MAX_X;
export const MAX_DIM = 1 << 28;

const enc = new TextEncoder();
/** Domain-separation labels (spec §3.1). */
export const LABELS = {
  config: enc.encode('tally/secagg-v1/config'),
  session: enc.encode('tally/secagg-v1/session'),
  advertise: enc.encode('tally/secagg-v1/advertise'),
  consistency: enc.encode('tally/secagg-v1/consistency'),
  pairwiseMask: enc.encode('tally/secagg-v1/pairwise-mask'),
  selfMask: enc.encode('tally/secagg-v1/self-mask'),
  shareEncryption: enc.encode('tally/secagg-v1/share-encryption'),
  // Not 'tally/secagg-v1/share': that would be a prefix of the share-encryption label (labels are prefix-free, spec §3.1).
  share: enc.encode('tally/secagg-v1/share-aad'),
} as const;

function bad(message: string): never {
  throw new ValidationError('SECAGG_ERR_BAD_CONFIG', message);
}

/**
 * Checks the structural validity of a configuration (types, ranges, ids).
 * Threshold conditions are checked by `validateThreshold` in params.ts (through `validateSession`).
 * @throws ValidationError `SECAGG_ERR_BAD_CONFIG`
 */
export function checkConfigShape(c: SessionConfig): void {
  if (!(c.nonce instanceof Uint8Array) || c.nonce.length !== 32) bad(`"nonce" expected Uint8Array of length 32, got ${c.nonce instanceof Uint8Array ? `length=${c.nonce.length}` : typeof c.nonce}`);
  const ids = c.clientIds;
  if (!Array.isArray(ids) || ids.length < 2) bad(`"clientIds" expected at least 2 ids, got ${Array.isArray(ids) ? ids.length : typeof ids}`);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!Number.isInteger(id) || id < 1 || id > MAX_CLIENT_ID) bad(`"clientIds[${i}]" expected an integer in [1, ${MAX_CLIENT_ID}], got ${id}`);
    if (i > 0 && id <= ids[i - 1]!) bad(`"clientIds" must be strictly increasing (unique), got ${ids[i - 1]} then ${id}`);
  }
  if (!Number.isInteger(c.bits) || c.bits < 1 || c.bits > 32) bad(`"bits" expected an integer in [1, 32], got ${c.bits}`);
  if (!Number.isInteger(c.dim) || c.dim < 1 || c.dim > MAX_DIM) bad(`"dim" expected an integer in [1, ${MAX_DIM}], got ${c.dim}`);
  if (!Number.isInteger(c.threshold)) bad(`"threshold" expected an integer, got ${c.threshold}`);
  if (c.threat !== 'semi-honest' && c.threat !== 'malicious') bad(`"threat" expected 'semi-honest' or 'malicious', got ${String(c.threat)}`);
  if (c.graph.kind === 'harary') {
    const k = c.graph.degree;
    if (!Number.isInteger(k) || k < 2 || k > ids.length - 1 || (k % 2 !== 0 && ids.length % 2 !== 0)) {
      bad(`"graph.degree" expected an integer in [2, ${ids.length - 1}] (even when the number of clients is odd), got ${k}`);
    }
  } else if (c.graph.kind !== 'complete') bad(`"graph.kind" expected 'complete' or 'harary', got ${String((c.graph as { kind: unknown }).kind)}`);
  if (c.threat === 'malicious') {
    const keys = c.identityKeys;
    if (keys === undefined || keys.length !== ids.length) bad(`"identityKeys" expected ${ids.length} Ed25519 public keys in malicious mode, got ${keys?.length ?? 0}`);
    const seen = new Set<string>();
    keys.forEach((k, i) => {
      if (!(k instanceof Uint8Array) || k.length !== 32) bad(`"identityKeys[${i}]" expected Uint8Array of length 32`);
      const hex = Buffer.from(k).toString('hex');
      // One key for two ids would let one party sign as both.
      if (seen.has(hex)) bad(`"identityKeys[${i}]" repeats the roster key of another client`);
      seen.add(hex);
    });
  } else if (c.identityKeys !== undefined && c.identityKeys.length !== ids.length) {
    bad(`"identityKeys" expected ${ids.length} keys when given, got ${c.identityKeys.length}`);
  }
  const a = c.aggregator;
  if (a !== undefined) {
    if (a === null || typeof a !== 'object' || !Object.hasOwn(AGGREGATOR_MODE_BYTE, a.mode)) bad(`"aggregator.mode" expected 'he' or 'he+masks', got ${String((a as { mode?: unknown } | null)?.mode)}`);
    if (!(a.params instanceof Uint8Array) || a.params.length !== 16) bad('"aggregator.params" expected Uint8Array of length 16');
    if (!(a.keyId instanceof Uint8Array) || a.keyId.length !== 16) bad('"aggregator.keyId" expected Uint8Array of length 16');
    if (!Number.isInteger(a.inputBytes) || a.inputBytes < 1 || a.inputBytes > 2 ** 31) bad(`"aggregator.inputBytes" expected an integer in [1, 2^31], got ${a.inputBytes}`);
  }
}

/**
 * Canonical encoding of a configuration (spec §4.1):
 * nonce(32) ‖ u32(n) ‖ u32(id)·n ‖ u32(t) ‖ u8(b) ‖ u32(m) ‖ u8(threat) ‖
 * u8(graph) ‖ u32(k) ‖ [identity key(32)·n in malicious mode]. All integers big-endian.
 * A session with an aggregator commitment (he-sum-v1 §8.1) appends
 * u8(mode: 1 he, 2 he+masks) ‖ params digest(16) ‖ key id(16) ‖ u32(input bytes);
 * the secagg-v1 encoding is self-delimiting, so the two never collide, and a
 * secagg-v1 config (no commitment) encodes exactly as before.
 */
export function encodeConfig(c: SessionConfig): Uint8Array {
  return concatFields(configFields(c));
}

/** The session's degree k: neighbours per client, the Harary degree or n − 1 for the complete graph. */
export function sessionDegree(c: Pick<SessionConfig, 'clientIds' | 'graph'>): number {
  return c.graph.kind === 'harary' ? c.graph.degree : c.clientIds.length - 1;
}

/** The fields of {@link encodeConfig}, in order (u32 numbers, one-byte arrays, keys). */
function configFields(c: SessionConfig): (Uint8Array | number)[] {
  const n = c.clientIds.length;
  const k = sessionDegree(c);
  return [c.nonce, n, ...c.clientIds, c.threshold, Uint8Array.of(c.bits), c.dim,
    Uint8Array.of(c.threat === 'malicious' ? 1 : 0), Uint8Array.of(c.graph.kind === 'harary' ? 1 : 0), k,
    ...(c.threat === 'malicious' ? c.identityKeys! : []),
    ...(c.aggregator ? [Uint8Array.of(AGGREGATOR_MODE_BYTE[c.aggregator.mode]), c.aggregator.params, c.aggregator.keyId, c.aggregator.inputBytes] : [])];
}

/** configHash = SHA-256(label ‖ encodeConfig(c)). */
export function configHash(provider: CryptoProvider, c: SessionConfig): Uint8Array {
  return provider.sha256(concatFields([LABELS.config, ...configFields(c)]));
}

/** One advertised key pair set (R0). */
export interface AdvertisedKeys {
  readonly id: number;
  /** X25519 key used to encrypt shares (c_u^PK in the paper). */
  readonly cPk: Uint8Array;
  /** X25519 key used for pairwise masks (s_u^PK in the paper). */
  readonly sPk: Uint8Array;
  /** Malicious mode: Ed25519 signature over the advertisement (spec §5.2). */
  readonly signature?: Uint8Array;
}

/**
 * sessionId = SHA-256(label ‖ configHash ‖ u32(|U1|) ‖ (u32(id) ‖ cPk ‖ sPk) for
 * each advertised client in increasing id order). Signatures are not hashed:
 * they are checked separately and bind the same keys.
 */
export function sessionId(provider: CryptoProvider, cfgHash: Uint8Array, keys: readonly AdvertisedKeys[]): Uint8Array {
  // One buffer for the whole list: every client hashes all |U1| entries.
  const parts: (Uint8Array | number)[] = [LABELS.session, cfgHash, keys.length];
  for (const k of keys) parts.push(k.id, k.cPk, k.sPk);
  return provider.sha256(concatFields(parts));
}

/** The message an R0 advertisement signature covers (spec §5.2). */
export function advertiseSignedBytes(cfgHash: Uint8Array, id: number, cPk: Uint8Array, sPk: Uint8Array): Uint8Array {
  return concatFields([LABELS.advertise, cfgHash, id, cPk, sPk]);
}

/** The message an R3 consistency signature covers (spec §5.5). */
export function consistencySignedBytes(sid: Uint8Array, survivors: readonly number[]): Uint8Array {
  return concatFields([LABELS.consistency, sid, survivors.length, ...survivors]);
}
