/**
 * How long a simulated secagg-v1 session should take on this machine: the
 * operation counts of the protocol (per client: the n entries of the key
 * list checked and hashed, about 2k key agreements (R1's share keys serve
 * R4 too), 2k share encryptions, 2(k+1)·t Shamir coefficient evaluations, (k+2)·m mask
 * words; at the server: one self mask per survivor, k pairwise masks per
 * client dropped after sharing keys, 2t share terms per reconstruction)
 * times the cost of each operation, measured here in a few milliseconds.
 * It is an order of magnitude, meant to tell a user before a long run what
 * to expect, not a benchmark (scripts and bench/ measure the protocol).
 */
import { performance } from 'node:perf_hooks';
import type { CryptoProvider } from '../crypto/types.js';
import { DeterministicRng } from '../crypto/rng.js';
import { shamirSplit } from '../crypto/shamir.js';
import { AdvertisedKeySet, checkAdvertisement } from '../secagg/advertisement.js';
import { sessionId, type AdvertisedKeys, type SessionConfig } from '../secagg/config.js';

/** Seconds per operation. */
export interface OperationCosts {
  /** One X25519 agreement and its HKDF. */
  readonly keyAgreement: number;
  /** Sealing (or opening) one encrypted share. */
  readonly shareCipher: number;
  /** One Shamir coefficient term for one holder (all limbs). */
  readonly shamirTerm: number;
  /** One share of one secret, less its coefficient terms (the per-holder cost of a split). */
  readonly shamirHolder: number;
  /** One 32-bit mask word of AES-128-CTR keystream, added into a sum. */
  readonly maskWord: number;
  /** One entry of the R1 key list, which every client checks and hashes whole (all n entries). */
  readonly keyListEntry: number;
  /** One Ed25519 verification (malicious mode: each client verifies every advertisement). */
  readonly signatureCheck: number;
}

const cache = new Map<string, OperationCosts>();

/** The fastest of `reps` runs of `f`: a run the scheduler interrupted says nothing about the operation. */
function timeOf(reps: number, f: () => void): number {
  f(); // warm up (JIT, lazy tables)
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    f();
    best = Math.min(best, performance.now() - t0);
  }
  return best / 1000;
}

/** Measures the cost of each operation with `provider` (about 10 ms, once per provider and process). */
export function measureCosts(provider: CryptoProvider): OperationCosts {
  const hit = cache.get(provider.name);
  if (hit) return hit;
  const rng = new DeterministicRng('tally/estimate');
  const sk = rng.bytes(32), pk = provider.x25519PublicKey(rng.bytes(32));
  const salt = rng.bytes(32), info = rng.bytes(16);
  const agree = provider.x25519Agreement(sk); // as the clients agree: the private key imported once per round
  const keyAgreement = timeOf(32, () => provider.hkdf(agree(pk), salt, info, 32)) * 1.2; // the fastest run flatters it
  const key = rng.bytes(32), nonce = rng.bytes(12), plain = rng.bytes(88), aad = rng.bytes(8);
  const shareCipher = timeOf(64, () => provider.aesGcmSeal(key, nonce, plain, aad));
  // Two thresholds over the same holders separate the per-term cost from the per-holder one.
  const secret = rng.bytes(32), xs = Array.from({ length: 256 }, (_, i) => i + 1);
  const low = timeOf(4, () => shamirSplit(secret, 8, xs, rng)), high = timeOf(4, () => shamirSplit(secret, 128, xs, rng));
  const shamirTerm = Math.max(0, high - low) / (256 * 120);
  const shamirHolder = Math.max(0, low / 256 - 8 * shamirTerm);
  const words = 1 << 16, buf = new Uint8Array(4 * words);
  const maskWord = timeOf(8, () => provider.aes128Ctr(key.subarray(0, 16), new Uint8Array(16)).fill(buf)) / words * 1.5;
  const entries = 1024;
  const list: AdvertisedKeys[] = Array.from({ length: entries }, (_, i) => ({
    id: i + 1, cPk: provider.x25519PublicKey(rng.bytes(32)), sPk: provider.x25519PublicKey(rng.bytes(32)),
  }));
  const config = { threat: 'semi-honest' } as SessionConfig;
  const keyListEntry = timeOf(4, () => {
    const seen = new AdvertisedKeySet();
    for (const k of list) checkAdvertisement(config, provider, salt, k, seen, 1);
    sessionId(provider, salt, list);
  }) / entries;
  const idKey = rng.bytes(32), signed = rng.bytes(100);
  const signature = provider.ed25519Sign(idKey, signed), idPk = provider.ed25519PublicKey(idKey);
  const signatureCheck = timeOf(8, () => provider.ed25519Verify(idPk, signed, signature));
  const costs = { keyAgreement, shareCipher, shamirTerm, shamirHolder, maskWord, keyListEntry, signatureCheck };
  cache.set(provider.name, costs);
  return costs;
}

/** The size of a session, as the estimate needs it. */
export interface SessionShape {
  readonly clients: number;
  /** Neighbours per client (n − 1 for the complete graph). */
  readonly degree: number;
  readonly threshold: number;
  readonly dim: number;
  /** Clients that fall silent after sharing keys and before sending their masked input. */
  readonly droppedAfterSharing: number;
  /** Threads the clients run on. */
  readonly threads: number;
  /** Malicious mode: every client verifies all n advertisements. */
  readonly malicious?: boolean;
}

/** Seconds the session should take: the clients' share (spread over `threads`) and the server's. */
export function estimateSeconds(s: SessionShape, c: OperationCosts): { clients: number; server: number; total: number } {
  const { clients: n, degree: k, threshold: t, dim: m } = s;
  const perClient = n * (c.keyListEntry + (s.malicious ? c.signatureCheck : 0)) + (2 * k + 1) * c.keyAgreement + 2 * k * c.shareCipher + 2 * (k + 1) * (t * c.shamirTerm + c.shamirHolder) + (k + 2) * m * c.maskWord;
  const clients = (n * perClient) / Math.max(1, s.threads);
  const server = n * m * c.maskWord * 1.5 // adding the inputs and removing the self masks
    + s.droppedAfterSharing * k * (c.keyAgreement + m * c.maskWord)
    + 2 * n * t * k * c.shamirTerm / 4 // reconstructions
    + n * k * c.shareCipher / 4; // routing the shares
  return { clients, server, total: clients + server };
}

/** "about 3 min", "about 40 s": a duration rounded for a person. */
export function roughly(seconds: number): string {
  if (seconds < 90) return `about ${Math.max(1, Math.round(seconds / (seconds < 20 ? 1 : 5)) * (seconds < 20 ? 1 : 5))} s`;
  if (seconds < 5400) return `about ${Math.round(seconds / 60)} min`;
  return `about ${(seconds / 3600).toFixed(1)} h`;
}
