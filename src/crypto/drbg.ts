/**
 * The one deterministic random bit generator of tally: the keystream of
 * AES-256-CTR (NIST SP 800-38A §6.5) under key = SHA-256(label ‖ seed), with
 * an all-zero initial counter block. The label separates the uses
 * ("tally/drbg/v1" for test vectors and simulations, secagg-v1 spec §3.10;
 * "tally/dp/rotation/v1" for the DP rotation signs, dp-v1): the same seed
 * gives unrelated streams under different labels. The primitives come from a
 * {@link CryptoProvider}, so both providers give the same bytes.
 *
 * Output is as unpredictable as the seed: it is for reproducible vectors,
 * simulations and public randomness, not for secrets unless the seed itself
 * is secret and uniformly random.
 */
import { ValidationError } from '../errors.js';
import { BAD_INPUT, concatBytes, isBytes } from './_validate.js';
import { nativeProvider } from './native.js';
import type { CryptoProvider, KeystreamGenerator } from './types.js';
import type { Rng } from './rng.js';

const utf8 = new TextEncoder();

/** A DRBG stream; consecutive `bytes` calls continue the same keystream. */
export class Drbg implements Rng {
  readonly #stream: KeystreamGenerator;

  /**
   * @param label - domain-separation label, a string (UTF-8) or bytes
   * @param seed - the seed, bytes or a string (UTF-8)
   * @param provider - where SHA-256 and AES-256-CTR come from (default: native)
   * @throws ValidationError `CRYPTO_ERR_BAD_INPUT` when label or seed is neither a string nor bytes
   * @example
   * const signs = new Drbg('tally/dp/rotation/v1', seed).bytes(128);
   */
  constructor(label: string | Uint8Array, seed: string | Uint8Array, provider: CryptoProvider = nativeProvider) {
    const key = provider.sha256(concatBytes(asBytes(label, 'label'), asBytes(seed, 'seed')));
    this.#stream = provider.aes256Ctr(key, new Uint8Array(16));
    key.fill(0);
  }

  /** The next `n` bytes of the stream. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    this.#stream.fill(out);
    return out;
  }
}

function asBytes(v: string | Uint8Array, name: string): Uint8Array {
  if (typeof v === 'string') return utf8.encode(v);
  if (isBytes(v)) return v;
  throw new ValidationError(BAD_INPUT, `"${name}" expected string or Uint8Array, got type=${v === null ? 'null' : typeof v}`);
}
