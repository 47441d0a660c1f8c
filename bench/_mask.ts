/**
 * Mask-expansion benchmark helpers for the secagg suite: compares the raw
 * AES-128-CTR keystream rate of node:crypto with the rate of expanding masks
 * and accumulating them ({@link MaskAccumulator}), in the same run.
 */
import { createCipheriv } from 'node:crypto';
import { nativeProvider } from '../src/crypto/native.js';
import { MaskAccumulator, type MaskAccumulatorOptions, type MaskTerm } from '../src/crypto/mask.js';

/** Result of {@link benchMaskExpansion}; rates in bytes of mask (4 per entry) per second. */
export interface MaskBenchResult {
  rawKeystreamBytesPerSec: number;
  expandAccumulateBytesPerSec: number;
  /** expandAccumulate / raw. */
  ratio: number;
}

const now = (): number => Number(process.hrtime.bigint()) / 1e9;

function keyFor(i: number): Uint8Array {
  const k = new Uint8Array(16);
  new DataView(k.buffer).setUint32(0, i + 1, true);
  k[15] = 0xa5;
  return k;
}

/** Best raw node:crypto aes-128-ctr rate over 64/128/256 KiB updates of zeros, for `bytes` of keystream each. */
export function rawKeystreamRate(bytes: number, repeats = 3): number {
  let best = 0;
  for (const chunk of [65536, 131072, 262144]) {
    const zeros = Buffer.alloc(chunk);
    for (let r = 0; r < repeats; r++) {
      const c = createCipheriv('aes-128-ctr', Buffer.from(keyFor(r)), Buffer.alloc(16));
      const t0 = now();
      for (let done = 0; done < bytes; done += chunk) c.update(zeros);
      best = Math.max(best, bytes / (now() - t0));
    }
  }
  return best;
}

/** Best rate of expanding and accumulating `keys` masks of `dim` entries into `acc` (default: a fresh accumulator). */
export function expandAccumulateRate(dim: number, keys: number, options: MaskAccumulatorOptions = {}, repeats = 3,
  acc: MaskAccumulator = new MaskAccumulator(dim, nativeProvider, options)): number {
  const terms: MaskTerm[] = Array.from({ length: keys }, (_, i) => ({ key: keyFor(i), sign: i % 2 === 0 ? 1 : -1 }));
  acc.addMask(keyFor(999), 1); // warm-up: JIT and first touch of the accumulator pages
  let best = 0;
  for (let r = 0; r < repeats; r++) {
    const t0 = now();
    acc.addMasks(terms);
    best = Math.max(best, (dim * 4 * keys) / (now() - t0));
  }
  return best;
}

/**
 * Measures raw keystream and mask expansion + accumulation in the same run.
 * @param dim mask entries per key
 * @param keys number of masks accumulated per measurement
 */
export async function benchMaskExpansion(dim: number, keys: number, rounds = 5): Promise<MaskBenchResult> {
  const bytes = dim * 4 * keys;
  // Interleave the two measurements and keep the best of each, so that load
  // from other processes hits both alike.
  const acc = new MaskAccumulator(dim, nativeProvider);
  let raw = 0, expand = 0;
  for (let r = 0; r < rounds; r++) {
    raw = Math.max(raw, rawKeystreamRate(bytes, 1));
    expand = Math.max(expand, expandAccumulateRate(dim, keys, {}, 1, acc));
  }
  return { rawKeystreamBytesPerSec: raw, expandAccumulateBytesPerSec: expand, ratio: expand / raw };
}

/** Expansion rate per chunk size and kernel (for choosing DEFAULT_MASK_CHUNK_BYTES). */
export async function benchMaskChunkSizes(dim: number, keys: number): Promise<{ chunkBytes: number; backend: string; bytesPerSec: number }[]> {
  const out: { chunkBytes: number; backend: string; bytesPerSec: number }[] = [];
  for (const backend of ['wasm', 'js'] as const) {
    for (const chunkBytes of [16384, 65536, 131072, 262144]) {
      out.push({ chunkBytes, backend, bytesPerSec: expandAccumulateRate(dim, keys, { chunkBytes, backend }) });
    }
  }
  return out;
}
