/**
 * `tally simulate --aggregator he`: one homomorphic-summation round
 * (he-sum-v1) in one process, with injected dropouts and a self-check
 * against the plaintext sum of the survivors.
 *
 * The round, as simulated (the key ceremony is not built: the key is handed
 * to the sites in memory):
 *
 * - phase 0, key: site 1 (index 0), the key holder, makes the secret key
 *   (`heKeygen`) and every site gets it;
 * - phase 1, ciphertext: each site encrypts its input (`heEncrypt`) and
 *   sends its envelope; the coordinator adds it at once (`HeAccumulator.add`),
 *   one ciphertext at a time, holding only the running sum;
 * - phase 2, decryption: with at least `threshold` sites in the sum the
 *   coordinator sends the sum's envelope (`finish`) to the key holder, which
 *   decrypts it (`heDecryptSum`).
 *
 * Dropouts use secagg simulate's drop points, mapped by whether the site sent
 * its ciphertext: `r0` is silent from phase 0 (never takes the key), `r1` and
 * `r2` from phase 1 (no ciphertext): not in the sum; `r3` and `r4` are silent
 * from phase 2, after their ciphertext was added: in the sum, as in secagg.
 *
 * The round aborts (no sum) when the key holder drops at any point (nobody
 * else decrypts in this mode) or fewer than `threshold` ciphertexts arrive.
 *
 * In this mode the key holder can decrypt any single site's ciphertext it
 * obtains (from the coordinator, or on the wire): the coordinator alone
 * learns nothing, but a coordinator colluding with the key holder learns
 * every input. That is a weaker guarantee than secagg's, where no single
 * party can unmask one input. `he+masks` (not built) is meant to close it.
 * @module
 */
import { performance } from 'node:perf_hooks';
import { ValidationError } from '../errors.js';
import { heParams, type HeParams } from './params.js';
import { ciphertextBytes, HeAccumulator, heDecryptSum, heEncrypt, heKeygen } from './sum.js';

/** The drop points of secagg simulate; see the module comment for their meaning here. */
export type HeDropPoint = 'r0' | 'r1' | 'r2' | 'r3' | 'r4';
const DROP_POINTS: readonly HeDropPoint[] = ['r0', 'r1', 'r2', 'r3', 'r4'];
/** The phase a site told to drop at a point is silent from: 0 key, 1 ciphertext, 2 decryption. */
export const HE_DROP_PHASE: Readonly<Record<HeDropPoint, number>> = Object.freeze({ r0: 0, r1: 1, r2: 1, r3: 2, r4: 2 });
/** The key holder's index (site 1). */
export const HE_KEY_HOLDER = 0;

export interface HeSimulationOptions {
  readonly sites: number;
  readonly dim: number;
  readonly bits: number;
  /** The fewest ciphertexts the coordinator finishes a sum with (2 ≤ T ≤ sites). */
  readonly threshold: number;
  /** The site i's input (entries < 2^bits), called once per site that sends. */
  readonly inputOf: (index: number) => Uint32Array;
  /** Site index (0-based) → its drop point. */
  readonly drops?: ReadonlyMap<number, HeDropPoint>;
  /** A named parameter set (`heParams`'s `set`); default: the first that holds sites and bits. */
  readonly set?: string;
  /** Called as each site's ciphertext is added. */
  readonly onProgress?: (e: { done: number; total: number }) => void;
}

export interface HeDropReport {
  readonly at: HeDropPoint;
  readonly told: number;
  /** Silent from this phase: 0 key, 1 ciphertext, 2 decryption. */
  readonly phase: number;
  /** Of those told, how many are in the sum (all when phase is 2, none otherwise). */
  readonly inSum: number;
}

export interface HeSimulationResult {
  readonly aborted?: { code: 'HE_KEY_HOLDER_DROPPED' | 'HE_TOO_FEW_SITES'; message: string; phase: number };
  /** The decrypted sum: exact integers (not reduced mod 2^b). */
  readonly sum?: Float64Array;
  /** The plaintext sum of the survivors' inputs, exact. */
  readonly expected?: Float64Array;
  readonly selfCheck?: boolean;
  /** 0-based indices of the sites whose ciphertexts are in the sum. */
  readonly survivors: number[];
  readonly dropped: { index: number; phase: number; code: 'SILENT' }[];
  readonly drops: HeDropReport[];
  readonly params: HeParams;
  readonly keyHolder: number;
  /** Bytes of the secret key the key holder hands to each other site (ceremony not built: not counted in bytesDown). */
  readonly keyBytes: number;
  /** Bytes of one site's envelope, and of the sum's. */
  readonly ciphertextBytes: { readonly site: number; readonly sum: number };
  readonly keygenSeconds: number;
  /** Mean over the sites that encrypted. */
  readonly encryptSecondsMean: number;
  /** The coordinator: every add and the finish. */
  readonly serverSeconds: number;
  readonly addSecondsMean: number;
  readonly finishSeconds: number;
  readonly decryptSeconds: number;
  /** Ciphertext bytes sent by the sites, divided by all sites (as secagg simulate's). */
  readonly bytesUpPerClient: number;
  /** The sum's envelope, to the key holder, divided by all sites. */
  readonly bytesDownPerClient: number;
  readonly maxMessageUp: number;
}

/** Runs one round; throws `ValidationError` (`HE_ERR_*`) for parameters no set holds. */
export async function simulateHe(o: HeSimulationOptions): Promise<HeSimulationResult> {
  const { sites: n, dim, bits, threshold } = o;
  if (!Number.isInteger(n) || n < 2) throw new ValidationError('HE_ERR_BAD_PARAMS', `sites must be an integer ≥ 2, got ${String(n)}`);
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > n) throw new ValidationError('HE_ERR_BAD_PARAMS', `threshold must be an integer in 2…${n}, got ${String(threshold)}`);
  const params = heParams(n, bits, o.set === undefined ? {} : { set: o.set });
  const drops = o.drops ?? new Map<number, HeDropPoint>();
  const phaseOf = (i: number): number => { const d = drops.get(i); return d === undefined ? Infinity : HE_DROP_PHASE[d]; };
  const dropped = [...drops].map(([index, d]) => ({ index, phase: HE_DROP_PHASE[d], code: 'SILENT' as const })).sort((a, b) => a.index - b.index);
  const dropReports = (inSum: ReadonlySet<number>): HeDropReport[] => DROP_POINTS.flatMap((at) => {
    const told = [...drops].filter(([, d]) => d === at).map(([i]) => i);
    return told.length === 0 ? [] : [{ at, told: told.length, phase: HE_DROP_PHASE[at], inSum: told.filter((i) => inSum.has(i)).length }];
  });
  const sizes = { site: 45 + Math.ceil(dim / params.polyModulusDegree) * ciphertextBytes(params, 'site'), sum: 45 + Math.ceil(dim / params.polyModulusDegree) * ciphertextBytes(params, 'sum') };
  const base = {
    dropped, params, keyHolder: HE_KEY_HOLDER, ciphertextBytes: sizes,
  };
  const empty = {
    ...base, survivors: [] as number[], drops: dropReports(new Set()), keyBytes: 0, keygenSeconds: 0, encryptSecondsMean: 0,
    serverSeconds: 0, addSecondsMean: 0, finishSeconds: 0, decryptSeconds: 0, bytesUpPerClient: 0, bytesDownPerClient: 0, maxMessageUp: 0,
  };
  const holderPhase = phaseOf(HE_KEY_HOLDER);
  if (holderPhase === 0) {
    return { ...empty, aborted: { code: 'HE_KEY_HOLDER_DROPPED', message: 'the key holder (site 1) was silent from the start: no key was made', phase: 0 } };
  }

  // Phase 0: the key holder makes the key; every site that is not silent from phase 0 gets it.
  let t0 = performance.now();
  const key = await heKeygen(params);
  const keygenSeconds = (performance.now() - t0) / 1000;

  // Phase 1: each site that reaches it encrypts and sends; the coordinator adds each envelope as it arrives.
  const acc = await HeAccumulator.create(params, dim, { keyId: key.keyId });
  const survivors: number[] = [];
  let encryptSeconds = 0, addSeconds = 0, up = 0, maxUp = 0;
  const senders = Array.from({ length: n }, (_, i) => i).filter((i) => phaseOf(i) > 1);
  try {
    for (const i of senders) {
      const x = o.inputOf(i);
      t0 = performance.now();
      const env = await heEncrypt(key, x);
      encryptSeconds += (performance.now() - t0) / 1000;
      up += env.length;
      maxUp = Math.max(maxUp, env.length);
      t0 = performance.now();
      acc.add(env);
      addSeconds += (performance.now() - t0) / 1000;
      survivors.push(i);
      o.onProgress?.({ done: survivors.length, total: senders.length });
    }
    const inSum = new Set(survivors);
    const costs = {
      ...base, survivors, drops: dropReports(inSum), keyBytes: key.bytes.length, keygenSeconds,
      encryptSecondsMean: survivors.length ? encryptSeconds / survivors.length : 0,
      addSecondsMean: survivors.length ? addSeconds / survivors.length : 0,
      bytesUpPerClient: up / n, maxMessageUp: maxUp,
    };
    // Phase 2: the coordinator needs threshold ciphertexts, and the key holder to decrypt.
    if (survivors.length < threshold) {
      return { ...costs, serverSeconds: addSeconds, finishSeconds: 0, decryptSeconds: 0, bytesDownPerClient: 0,
        aborted: { code: 'HE_TOO_FEW_SITES', message: `${survivors.length} ciphertexts arrived, fewer than the threshold ${threshold}`, phase: 2 } };
    }
    if (holderPhase <= 2) {
      return { ...costs, serverSeconds: addSeconds, finishSeconds: 0, decryptSeconds: 0, bytesDownPerClient: 0,
        aborted: { code: 'HE_KEY_HOLDER_DROPPED', message: `the key holder (site 1) was silent from phase ${holderPhase}: nobody can decrypt the sum`, phase: 2 } };
    }
    t0 = performance.now();
    const sumEnv = acc.finish();
    const finishSeconds = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const decrypted = await heDecryptSum(key, sumEnv);
    const decryptSeconds = (performance.now() - t0) / 1000;
    const expected = new Float64Array(dim);
    for (const i of survivors) { const x = o.inputOf(i); for (let j = 0; j < dim; j++) expected[j] += x[j]!; }
    const selfCheck = decrypted.sites === survivors.length && decrypted.values.every((v, j) => v === expected[j]);
    return {
      ...costs, serverSeconds: addSeconds + finishSeconds, finishSeconds, decryptSeconds, bytesDownPerClient: sumEnv.length / n,
      sum: decrypted.values, expected, selfCheck,
    };
  } finally {
    acc.dispose();
  }
}
