/**
 * `tally simulate --aggregator he+masks|he`: one he-sum-v1 session in one
 * process, through the same session driver as secagg simulate
 * (`transport/simulation.ts` over the lockstep channel), with the HE seams
 * plugged in (aggregate.ts) and the key ceremony (ceremony.ts) run first.
 *
 * 1. Ceremony. Each site has a long-term X25519 key and an Ed25519 identity
 *    key (drawn from the seed). The dealer, the lowest site not silent from
 *    r0, makes the key and wraps it to every other such site; the
 *    coordinator relays each site its part of the signed offer; each site
 *    verifies and unwraps. Sites silent from r0 take no part.
 * 2. Session. The config commits to the mode, the set's digest, the key id
 *    and the envelope size; rounds, dropouts (the secagg simulate drop
 *    points, the same sites for the same seed), thresholds and survivors are
 *    secagg-v1's. In R2 each site sends the envelope of its input (`he`) or
 *    of its input plus its masks mod t (`he+masks`); the coordinator adds
 *    them, and in R4 removes the masks it rebuilt (he+masks) as a plaintext
 *    addition. The survivors are secagg's: a site silent from r2 on sent no
 *    ciphertext and is not in the sum; one silent from r3 or r4 is.
 * 3. Decryption. The coordinator sends the sealed sum to the sites still
 *    present; the lowest of them decrypts it here (any would get the same),
 *    and the result is checked against the exact plaintext sum of the
 *    survivors' inputs (not reduced mod 2^b: t > n·(2^b − 1)).
 * @module
 */
import { performance } from 'node:perf_hooks';
import type { CryptoProvider } from '../crypto/types.js';
import { HeError, ValidationError } from '../errors.js';
import type { DropPoint, SimulationOptions, SimulationResult } from '../transport/simulation.js';
import { heAggregator, heCommitment, heMaskedInputEncoder, type HeMode } from './aggregate.js';
import { acceptKey, dealKey, offerFor, sealedKeyBytes } from './ceremony.js';
import { heParams, type HeParams } from './params.js';
import { heContext } from './seal.js';
import { ciphertextBytes, heDecryptSum, type HeSecretKey } from './sum.js';

/** The session's options are secagg simulate's (same meaning), with the mode and an optional parameter set. */
export interface HeSimulationOptions extends Pick<SimulationOptions, 'clients' | 'dim' | 'bits' | 'threshold' | 'threat' | 'graph' | 'provider' | 'seed' | 'inputs' | 'drops' | 'onRound'> {
  readonly mode: HeMode;
  /** A named parameter set (`heParams`'s `set`); default: the first that holds n sites of b bits. */
  readonly set?: string;
}

export interface HeSimulationResult {
  readonly mode: HeMode;
  /** The secagg session that carried the ciphertexts: survivors, drops, rounds, times and bytes of the session itself. */
  readonly session: SimulationResult;
  readonly params: HeParams;
  /** The decrypted sum: exact integers (not reduced mod 2^b). */
  readonly sum?: Float64Array;
  /** The plaintext sum of the survivors' inputs, exact. */
  readonly expected?: Float64Array;
  readonly selfCheck?: boolean;
  readonly ceremony: {
    /** 0-based index of the dealer. */
    readonly dealer: number;
    readonly recipients: number;
    /** Bytes of the whole offer (dealer → coordinator) and of one site's relayed part. */
    readonly offerBytes: number;
    readonly offerBytesPerSite: number;
    readonly keyBytes: number;
    /** Dealer's keygen and wrapping; mean over recipients of verify and unwrap. */
    readonly dealSeconds: number;
    readonly acceptSecondsMean: number;
  };
  /** Bytes of one site's envelope, and of the sum's. */
  readonly ciphertextBytes: { readonly site: number; readonly sum: number };
  /** 0-based index of the site that decrypted the sum, and the sites the sum was sent to. */
  readonly decryptedBy?: number;
  readonly sumRecipients: number;
  readonly decryptSeconds: number;
  /** Mean over all sites, session and ceremony and decryption included. */
  readonly clientSecondsMean: number;
  readonly serverSeconds: number;
  readonly bytesUpPerClient: number;
  readonly bytesDownPerClient: number;
}

/** Site `id`'s long-term keys in a simulation: X25519 (to receive the key) and Ed25519 (its roster identity). */
async function siteKeys(seed: string, id: number, provider: CryptoProvider): Promise<{ x25519Private: Uint8Array; x25519Public: Uint8Array; identitySeed: Uint8Array; ed25519Public: Uint8Array }> {
  const { simulationRng } = await import('../transport/_clients.js');
  const rng = simulationRng(seed, `he-site/${id}`);
  const x25519Private = rng.bytes(32);
  const identitySeed = rng.bytes(32);
  return { x25519Private, x25519Public: provider.x25519PublicKey(x25519Private), identitySeed, ed25519Public: provider.ed25519PublicKey(identitySeed) };
}

/**
 * Runs the ceremony and one session. Throws `ValidationError` (`HE_ERR_*`)
 * for parameters no set holds, or (`HE_ERR_BAD_PARAMS`) a t the masks mod t
 * cannot use.
 */
export async function simulateHe(o: HeSimulationOptions): Promise<HeSimulationResult> {
  const { clients: n, dim, bits, provider, mode } = o;
  if (mode !== 'he' && mode !== 'he+masks') throw new ValidationError('HE_ERR_BAD_PARAMS', `mode must be 'he' or 'he+masks', got ${String(mode)}`);
  if (!Number.isInteger(n) || n < 2) throw new ValidationError('HE_ERR_BAD_PARAMS', `sites must be an integer ≥ 2, got ${String(n)}`);
  const params = heParams(n, bits, o.set === undefined ? {} : { set: o.set });
  if (mode === 'he+masks' && params.plainModulus >= 2n ** 52n) throw new ValidationError('HE_ERR_BAD_PARAMS', `he+masks needs t < 2^52, got t of ${params.plainModulusBits} bits: fewer sites or bits, or mode he`);
  const [{ simulate }, { simulationRng, drawnInput }] = await Promise.all([import('../transport/simulation.js'), import('../transport/_clients.js')]);
  const hc = await heContext(params);
  const seed = o.seed ?? Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('hex');
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const drops = o.drops ?? new Map<number, DropPoint>();
  const keys = await Promise.all(ids.map((id) => siteKeys(seed, id, provider)));

  // 1. Ceremony among the sites present from the start.
  const present = ids.filter((id) => drops.get(id - 1) !== 'r0');
  const dealerId = present[0] ?? 1;
  const ceremonyId = simulationRng(seed, 'he-ceremony').bytes(32);
  const recipients = present.filter((id) => id !== dealerId);
  let t0 = performance.now();
  const dealt = await dealKey(provider, {
    params, ceremonyId, dealer: { id: dealerId, identitySeed: keys[dealerId - 1]!.identitySeed },
    recipients: recipients.map((id) => ({ id, x25519Public: keys[id - 1]!.x25519Public })), rng: simulationRng(seed, 'he-ephemeral'),
  });
  const dealSeconds = (performance.now() - t0) / 1000;
  const S = await sealedKeyBytes(params);
  const siteKey = new Map<number, HeSecretKey>([[dealerId, dealt.key]]);
  let acceptSeconds = 0, offerDown = 0, offerPerSite = 0;
  for (const id of recipients) {
    const part = offerFor(dealt.offer, id, S); // the coordinator's relay: public bytes only
    offerDown += part.length;
    offerPerSite = part.length;
    t0 = performance.now();
    siteKey.set(id, await acceptKey(provider, { params, ceremonyId, offer: part, dealer: dealerId, dealerKey: keys[dealerId - 1]!.ed25519Public, me: { id, x25519Private: keys[id - 1]!.x25519Private } }));
    acceptSeconds += (performance.now() - t0) / 1000;
  }
  const keyId = dealt.key.keyId;

  // 2. The session, through the secagg driver with the HE seams.
  const noKey = { encode(): Uint8Array { throw new HeError('HE_ERR_BAD_KEY', 'this site took no part in the key ceremony'); } };
  const session = await simulate({
    clients: n, dim, bits, threshold: o.threshold, threat: o.threat, graph: o.graph, provider, seed, drops, threads: 1,
    ...(o.inputs ? { inputs: o.inputs } : {}), ...(o.onRound ? { onRound: o.onRound } : {}),
    sealed: {
      commitment: heCommitment(hc, mode, keyId, dim),
      aggregator: heAggregator(hc, mode, keyId, provider),
      maskedInput: (id) => { const k = siteKey.get(id); return k === undefined ? noKey : heMaskedInputEncoder(hc, k, mode, provider); },
    },
  });
  const sizes = {
    site: hc.seeded.bytes * Math.ceil(dim / params.polyModulusDegree) + 45,
    sum: ciphertextBytes(params, 'sum') * Math.ceil(dim / params.polyModulusDegree) + 45,
  };
  const ceremony = {
    dealer: dealerId - 1, recipients: recipients.length, offerBytes: dealt.offer.length, offerBytesPerSite: offerPerSite,
    keyBytes: dealt.key.bytes.length, dealSeconds, acceptSecondsMean: recipients.length ? acceptSeconds / recipients.length : 0,
  };
  const clientBase = session.clientSecondsMean * n + dealSeconds + acceptSeconds;
  const upBase = session.bytesUpPerClient * n + dealt.offer.length;
  const downBase = session.bytesDownPerClient * n + offerDown;
  const base = { mode, session, params, ceremony, ciphertextBytes: sizes, serverSeconds: session.serverSeconds };
  if (session.sealedSum === undefined) {
    return { ...base, sumRecipients: 0, decryptSeconds: 0, clientSecondsMean: clientBase / n, bytesUpPerClient: upBase / n, bytesDownPerClient: downBase / n };
  }

  // 3. The sites still present get the sealed sum; the lowest decrypts it.
  const holders = session.survivors.filter((i) => !drops.has(i) && siteKey.has(i + 1));
  const decrypter = holders[0]!;
  t0 = performance.now();
  const decrypted = await heDecryptSum(siteKey.get(decrypter + 1)!, session.sealedSum);
  const decryptSeconds = (performance.now() - t0) / 1000;
  const expected = new Float64Array(dim);
  for (const i of session.survivors) {
    const x = o.inputs?.[i] ?? drawnInput(seed, i + 1, dim, bits);
    for (let j = 0; j < dim; j++) expected[j] += x[j]!;
  }
  const selfCheck = decrypted.sites === session.survivors.length && decrypted.values.every((v, j) => v === expected[j]);
  return {
    ...base, sum: decrypted.values, expected, selfCheck, decryptedBy: decrypter, sumRecipients: holders.length, decryptSeconds,
    clientSecondsMean: (clientBase + decryptSeconds) / n, bytesUpPerClient: upBase / n,
    bytesDownPerClient: (downBase + holders.length * session.sealedSum.length) / n,
  };
}
