/**
 * Mask-expansion benchmark helpers for the secagg suite: compares the raw
 * AES-128-CTR keystream rate of node:crypto with the rate of expanding masks
 * and accumulating them ({@link MaskAccumulator}), in the same run; packing
 * and unpacking per width; removing masks on one and two threads against the
 * one-core keystream floor. Run alone: `npx tsc -p . && node dist/bench/_mask.js`.
 */
import { createCipheriv } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { nativeProvider } from '../src/crypto/native.js';
import { MaskAccumulator, type MaskAccumulatorOptions, type MaskTerm } from '../src/crypto/mask.js';
import { maskedSum } from '../src/crypto/aggregator.js';
import { maskPool } from '../src/crypto/_maskPool.js';
import { packVector, unpackVector } from '../src/crypto/vector.js';

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

/* ---------- packing, unpacking and multi-core mask removal ---------- */

/** The byte-at-a-time packer the word-at-a-time one replaced (double-precision bit buffer), kept as the "before" of {@link benchPacking}. */
function packBytewise(vec: Uint32Array, b: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((b * vec.length) / 8));
  let acc = 0, nbits = 0, j = 0;
  for (let i = 0; i < vec.length; i++) {
    acc += vec[i]! * 2 ** nbits;
    nbits += b;
    while (nbits >= 8) { out[j++] = acc % 256; acc = Math.floor(acc / 256); nbits -= 8; }
  }
  if (nbits > 0) out[j] = acc;
  return out;
}

/** Its unpacker. */
function unpackBytewise(bytes: Uint8Array, b: number, m: number): Uint32Array {
  const out = new Uint32Array(m);
  const mod = 2 ** b;
  let acc = 0, nbits = 0, j = 0;
  for (let i = 0; i < m; i++) {
    while (nbits < b) { acc += bytes[j++]! * 2 ** nbits; nbits += 8; }
    out[i] = acc % mod;
    acc = Math.floor(acc / mod);
    nbits -= b;
  }
  return out;
}

/** ns per entry of pack, unpack and addPacked (payload at byte offset 42, as off the wire) at width b. */
export interface PackingBenchRow {
  bits: number;
  packNs: number;
  unpackNs: number;
  /** Byte-at-a-time pack and unpack in the same run (the generic path before word-at-a-time; NaN at b = 32, which had its own). */
  packBytewiseNs: number;
  unpackBytewiseNs: number;
  addPackedUnalignedNs: number;
}

function bestNs(m: number, repeats: number, f: () => void): number {
  let best = Infinity;
  for (let r = 0; r < repeats; r++) {
    const t0 = now();
    f();
    best = Math.min(best, now() - t0);
  }
  return (best * 1e9) / m;
}

/** Packing benchmark over m entries (default 2^20) at the given widths. */
export function benchPacking(m = 2 ** 20, widths: readonly number[] = [16, 20, 24, 32], repeats = 7): PackingBenchRow[] {
  const acc = new MaskAccumulator(m, nativeProvider);
  return widths.map((bits) => {
    const v = new Uint32Array(m);
    for (let i = 0; i < m; i++) v[i] = Math.imul(i + 1, 0x9e3779b1) >>> (32 - bits);
    const packed = packVector(v, bits);
    const wire = new Uint8Array(packed.length + 42);
    wire.set(packed, 42);
    const payload = wire.subarray(42);
    const generic = bits !== 32;
    return {
      bits,
      packNs: bestNs(m, repeats, () => packVector(v, bits)),
      unpackNs: bestNs(m, repeats, () => unpackVector(packed, bits, m)),
      packBytewiseNs: generic ? bestNs(m, Math.min(3, repeats), () => packBytewise(v, bits)) : NaN,
      unpackBytewiseNs: generic ? bestNs(m, Math.min(3, repeats), () => unpackBytewise(packed, bits, m)) : NaN,
      addPackedUnalignedNs: bestNs(m, repeats, () => acc.addPacked(payload, bits, 1)),
    };
  });
}

/** Seconds to remove `keys` masks of `dim` entries with 1 and with 2 threads, against the one-core keystream floor. */
export interface RemoveMasksBenchResult {
  dim: number;
  keys: number;
  oneThreadSec: number;
  twoThreadsSec: number;
  /** Keystream bytes (keys × dim × 4) ÷ the raw AES-128-CTR rate of one core. */
  floorSec: number;
}

/**
 * removeMasks through {@link maskedSum} with `threads` 1 and 2, interleaved
 * with the raw keystream measurement; best of `rounds` each. The pool is
 * started and given time to load first (the server starts it when the
 * session's aggregator is created, long before the unmasking round).
 */
export async function benchRemoveMasks(dim = 1_000_000, keys = 64, rounds = 5): Promise<RemoveMasksBenchResult> {
  const terms: MaskTerm[] = Array.from({ length: keys }, (_, i) => ({ key: keyFor(i), sign: i % 2 === 0 ? 1 : -1 }));
  const one = new MaskAccumulator(dim, nativeProvider, { threads: 1 });
  const two = new MaskAccumulator(dim, nativeProvider, { threads: 2 });
  maskedSum(dim, 32, nativeProvider, { threads: 2 }); // starts the worker
  const pool = maskPool();
  for (let i = 0; i < 200 && pool !== null && pool.ready < 1; i++) await new Promise((r) => setTimeout(r, 25));
  one.addMasks(terms.slice(0, 2));
  two.addMasks(terms.slice(0, 2));
  let oneSec = Infinity, twoSec = Infinity, raw = 0;
  for (let r = 0; r < rounds; r++) {
    let t0 = now();
    one.addMasks(terms);
    oneSec = Math.min(oneSec, now() - t0);
    t0 = now();
    two.addMasks(terms);
    twoSec = Math.min(twoSec, now() - t0);
    raw = Math.max(raw, rawKeystreamRate(dim * 4 * keys, 1));
  }
  return { dim, keys, oneThreadSec: oneSec, twoThreadsSec: twoSec, floorSec: (dim * 4 * keys) / raw };
}

/** Best memory-copy rate (bytes/s) over `bytes`-sized copies between two buffers. */
export function memcpyRate(bytes: number, repeats = 5): number {
  const a = new Uint8Array(bytes).fill(1), b = new Uint8Array(bytes);
  let best = 0;
  for (let r = 0; r < repeats; r++) {
    const t0 = now();
    b.set(a);
    best = Math.max(best, bytes / (now() - t0));
  }
  return best;
}

/** The server's share of a session, against the one-core floor. */
export interface ServerWorkBenchResult {
  dim: number;
  bits: number;
  inputs: number;
  masks: number;
  oneThreadSec: number;
  twoThreadsSec: number;
  /** masks × dim × 4 ÷ raw AES-128-CTR rate + inputs × packed bytes ÷ memory-copy rate (one core). */
  floorSec: number;
}

/**
 * What the server of `tally simulate --clients 50 --dim 10^6 --dropout 0.1
 * --drop-at r2 --graph complete` does with the sum: `inputs` masked inputs
 * added off the wire (payload at byte offset 42), then `masks` masks removed
 * (45 self masks + 5 dropped × 45 surviving neighbours = 270), result taken;
 * one fresh maskedSum per run, with 1 and with 2 threads, best of `rounds`.
 */
export async function benchServerWork(dim = 1_000_000, bits = 32, inputs = 45, masks = 270, rounds = 3): Promise<ServerWorkBenchResult> {
  const terms: MaskTerm[] = Array.from({ length: masks }, (_, i) => ({ key: keyFor(i), sign: i % 2 === 0 ? 1 : -1 }));
  const v = new Uint32Array(dim);
  for (let i = 0; i < dim; i++) v[i] = Math.imul(i + 7, 0x9e3779b1) >>> (32 - bits);
  const packed = packVector(v, bits);
  const payloads = Array.from({ length: inputs }, () => {
    const wire = new Uint8Array(packed.length + 42);
    wire.set(packed, 42);
    return wire.subarray(42);
  });
  maskedSum(dim, bits, nativeProvider, { threads: 2 }); // starts the worker, as the server does at session start
  const pool = maskPool();
  for (let i = 0; i < 200 && pool !== null && pool.ready < 1; i++) await new Promise((r) => setTimeout(r, 25));
  const run = (threads: number): number => {
    const agg = maskedSum(dim, bits, nativeProvider, { threads });
    const t0 = now();
    for (const p of payloads) agg.addInput(p);
    agg.removeMasks(terms);
    agg.result();
    const t = now() - t0;
    agg.clear();
    return t;
  };
  let one = Infinity, two = Infinity, raw = 0, copy = 0;
  for (let r = 0; r < rounds; r++) {
    one = Math.min(one, run(1));
    two = Math.min(two, run(2));
    raw = Math.max(raw, rawKeystreamRate(dim * 4 * 16, 1));
    copy = Math.max(copy, memcpyRate(packed.length, 3));
  }
  return { dim, bits, inputs, masks, oneThreadSec: one, twoThreadsSec: two, floorSec: (masks * dim * 4) / raw + (inputs * packed.length) / copy };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const nsf = (x: number): string => (Number.isNaN(x) ? '   –' : x.toFixed(2).padStart(6));
  console.log('width  pack ns/entry (bytewise)  unpack ns/entry (bytewise)  addPacked @ offset 42 ns/entry');
  for (const r of benchPacking()) {
    console.log(`b=${String(r.bits).padEnd(3)}  ${nsf(r.packNs)} (${nsf(r.packBytewiseNs)})        ${nsf(r.unpackNs)} (${nsf(r.unpackBytewiseNs)})          ${nsf(r.addPackedUnalignedNs)}`);
  }
  const rm = await benchRemoveMasks();
  console.log(`removeMasks m=${rm.dim}, ${rm.keys} keys: 1 thread ${(rm.oneThreadSec * 1e3).toFixed(0)} ms, 2 threads ${(rm.twoThreadsSec * 1e3).toFixed(0)} ms; ` +
    `one-core keystream floor ${(rm.floorSec * 1e3).toFixed(0)} ms (2 threads = ${(rm.twoThreadsSec / rm.floorSec).toFixed(2)} × floor, 1 thread = ${(rm.oneThreadSec / rm.floorSec).toFixed(2)} ×)`);
  for (const bits of [32, 20]) {
    const sw = await benchServerWork(1_000_000, bits);
    console.log(`server sum, m=${sw.dim}, b=${bits}, ${sw.inputs} inputs + ${sw.masks} masks: 1 thread ${(sw.oneThreadSec * 1e3).toFixed(0)} ms, ` +
      `2 threads ${(sw.twoThreadsSec * 1e3).toFixed(0)} ms; one-core floor ${(sw.floorSec * 1e3).toFixed(0)} ms ` +
      `(2 threads = ${(sw.twoThreadsSec / sw.floorSec).toFixed(2)} × floor, 1 thread = ${(sw.oneThreadSec / sw.floorSec).toFixed(2)} ×)`);
  }
}
