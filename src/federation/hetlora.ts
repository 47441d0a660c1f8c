/**
 * Heterogeneous LoRA ranks by zero-padding, after HetLoRA (Cho et al.,
 * "Heterogeneous LoRA for Federated Fine-tuning of On-Device Foundation
 * Models", EMNLP 2024).
 *
 * Site i trains rank r_i ≤ r_max. Secure aggregation sums vectors of one
 * length, so a site pads its rank-r_i tensors to r_max before encoding: A
 * `[r_i, in]` gets zero rows r_i..r_max−1, B `[out, r_i]` zero columns
 * (PEFT layout, adapter-format.ts). The padded product B·A equals the
 * unpadded one. A site receiving the rank-r_max global adapter keeps the
 * first r_i rows of A and the first r_i columns of B ({@link truncateAdapter}).
 * Padding and truncation are linear, so they work through a secure sum.
 *
 * Rank slice k (row k of every A, column k of every B) is trained only by
 * the sites with r_i > k; the others add zeros there. {@link perRankWeights}
 * counts, per slice, the sites (or their weights) that train it, and
 * {@link rescaleByRank} divides each slice of the summed delta by that count
 * instead of by n, giving the mean over the slice's contributors. Count the
 * sites whose inputs are in the sum (a secure sum covers the survivors, a
 * set the coordinator knows). Under secure aggregation this leaks nothing:
 * the ranks belong in the round's plan, known to every party before any
 * input is sent, so the counts are public. With DP noise, a slice with
 * fewer contributors has the same noise divided by a smaller count: it is
 * noisier.
 *
 * The update of a LoRA module is (alpha / r)·B·A. For a padded adapter to
 * mean the same update at r_max, every site must use the same scale
 * alpha / r (lora_alpha proportional to r_i); this module moves values only.
 * HetLoRA's rank self-pruning and its sparsity-weighted aggregation (weights
 * from each site's own update norm, which the coordinator cannot see under
 * secure aggregation) are not implemented.
 * @module
 */
import { ValidationError } from '../errors.js';
import type { DeltaEntry } from '../training/train.js';

/** What {@link padDelta} and {@link truncateDelta} return. */
export interface RankedDelta {
  readonly delta: Float32Array;
  readonly layout: DeltaEntry[];
}

/** `A` or `B` of a PEFT LoRA tensor name of a GPT-2 module (adapter-format.ts), or undefined. */
const NAME = /^base_model\.model\.transformer\.h\.(?:0|[1-9][0-9]*)\.(?:attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.lora_([AB])\.weight$/;
const kindOf = (name: string): 'A' | 'B' | undefined => NAME.exec(name)?.[1] as 'A' | 'B' | undefined;

function badAdapter(message: string): never {
  throw new ValidationError('TRAIN_ERR_BAD_ADAPTER', message);
}
function badParam(message: string): never {
  throw new ValidationError('TRAIN_ERR_BAD_PARAM', message);
}
const isRank = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * Reads one tensor's name and 2-D shape: its kind, its rank (`r` of A
 * `[r, in]` or B `[out, r]`) and the dimension a change of rank keeps
 * (`in` of A, `out` of B).
 */
function parseEntry(name: string, shape: readonly number[]): { kind: 'A' | 'B'; rank: number; other: number } {
  const kind = typeof name === 'string' ? kindOf(name) : undefined;
  if (kind === undefined) badAdapter(`${JSON.stringify(name)} is not a PEFT LoRA tensor of a GPT-2 module`);
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every(isRank)) badAdapter(`${name}: shape ${JSON.stringify(shape)} is not two positive integers`);
  return kind === 'A' ? { kind, rank: shape[0]!, other: shape[1]! } : { kind, rank: shape[1]!, other: shape[0]! };
}

/** {@link parseEntry}, checking that the tensor has rank r. */
function entryOf(name: string, shape: readonly number[], r: number): { kind: 'A' | 'B'; other: number } {
  const e = parseEntry(name, shape);
  if (e.rank !== r) badAdapter(`${name} has shape ${fmt(shape)}, expected rank ${r} (${e.kind === 'A' ? '[r, in]' : '[out, r]'})`);
  return e;
}

/**
 * Copies one tensor from rank `from` to rank `to`: A `[from, in]` → `[to, in]`
 * (leading rows), B `[out, from]` → `[out, to]` (leading columns of each row);
 * new places are zero.
 */
function resizeInto(src: ArrayLike<number>, srcAt: number, dst: Float32Array, dstAt: number, kind: 'A' | 'B', other: number, from: number, to: number): void {
  const keep = Math.min(from, to);
  if (kind === 'A') {
    for (let i = 0; i < keep * other; i++) dst[dstAt + i] = src[srcAt + i]!;
  } else {
    for (let o = 0; o < other; o++) {
      for (let k = 0; k < keep; k++) dst[dstAt + o * to + k] = src[srcAt + o * from + k]!;
    }
  }
}

function resizeAdapter(tensors: ReadonlyMap<string, Float32Array>, shapes: ReadonlyMap<string, readonly number[]>, to: number, pad: boolean): Map<string, Float32Array> {
  if (!(tensors instanceof Map)) badAdapter('tensors must be a Map from PEFT name to Float32Array');
  if (!(shapes instanceof Map) || shapes.size === 0) badAdapter('shapes must be a non-empty Map from PEFT name to shape');
  const [firstName, firstShape] = shapes.entries().next().value as [string, readonly number[]];
  const from = parseEntry(firstName, firstShape).rank;
  if (!isRank(to)) badParam(`the target rank must be a positive integer, got ${String(to)}`);
  if (pad && to < from) badParam(`cannot pad rank ${from} to the smaller rank ${to}`);
  if (!pad && to > from) badParam(`cannot truncate rank ${from} to the larger rank ${to}`);
  for (const name of tensors.keys()) if (!shapes.has(name)) badAdapter(`unexpected tensor ${JSON.stringify(name)}`);
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of shapes) {
    const { kind, other } = entryOf(name, shape, from);
    const t = tensors.get(name);
    if (t === undefined) badAdapter(`missing tensor ${JSON.stringify(name)}`);
    if (!(t instanceof Float32Array) || t.length !== from * other) badAdapter(`${name} has ${t instanceof Float32Array ? t.length : 'no'} float32 values, expected ${fmt(shape)}`);
    const dst = new Float32Array(to * other);
    resizeInto(t, 0, dst, 0, kind, other, from, to);
    out.set(name, dst);
  }
  return out;
}

/**
 * Pads a rank-r adapter to rank rMax: each A `[r, in]` → `[rMax, in]` with
 * zero rows r..rMax−1, each B `[out, r]` → `[out, rMax]` with zero columns.
 * @param tensors - the adapter's tensors under PEFT's names (as `loadAdapter` gives them)
 * @param shapes - their shapes at rank r (`loraTensorShapes(model, config)`); r is read from them
 * @param rMax - the padded rank, ≥ r
 * @returns new tensors in `shapes`' order; the inputs are not modified
 * @throws ValidationError `TRAIN_ERR_BAD_ADAPTER` for a name that is not a PEFT LoRA tensor, a missing,
 *   extra or mis-sized tensor, or shapes of different ranks; `TRAIN_ERR_BAD_PARAM` for rMax < r
 */
export function padAdapter(tensors: ReadonlyMap<string, Float32Array>, shapes: ReadonlyMap<string, readonly number[]>, rMax: number): Map<string, Float32Array> {
  return resizeAdapter(tensors, shapes, rMax, true);
}

/**
 * Truncates a rank-rMax adapter (the global one) to rank r: the first r rows
 * of each A, the first r columns of each B.
 * @param shapes - the tensors' shapes at rank rMax (`loraTensorShapes(model, { ...config, r: rMax })`); rMax is read from them
 * @param r - the site's rank, 1 ≤ r ≤ rMax
 * @returns new tensors in `shapes`' order, A `[r, in]` and B `[out, r]`
 * @throws ValidationError as {@link padAdapter}; `TRAIN_ERR_BAD_PARAM` for r > rMax
 */
export function truncateAdapter(tensors: ReadonlyMap<string, Float32Array>, shapes: ReadonlyMap<string, readonly number[]>, r: number): Map<string, Float32Array> {
  return resizeAdapter(tensors, shapes, r, false);
}

function resizeDelta(delta: Float32Array, layout: readonly DeltaEntry[], from: number, to: number): RankedDelta {
  if (!(delta instanceof Float32Array)) badParam('delta must be a Float32Array');
  if (!Array.isArray(layout) || layout.length === 0) badParam('layout must be a non-empty list of { name, shape, offset }');
  if (!isRank(from) || !isRank(to)) badParam(`ranks must be positive integers, got ${String(from)} and ${String(to)}`);
  const out: DeltaEntry[] = [];
  const parts: { kind: 'A' | 'B'; other: number; src: number; dst: number }[] = [];
  let at = 0, dstAt = 0;
  for (const e of layout) {
    const { kind, other } = entryOf(e.name, e.shape, from);
    if (e.offset !== at) badParam(`layout entry ${e.name} is at offset ${e.offset}, expected ${at} (entries must be contiguous, in order, from 0)`);
    parts.push({ kind, other, src: at, dst: dstAt });
    out.push({ name: e.name, shape: kind === 'A' ? [to, other] : [other, to], offset: dstAt });
    at += from * other;
    dstAt += to * other;
  }
  if (at !== delta.length) badParam(`the layout covers ${at} values, the delta has ${delta.length}`);
  const dst = new Float32Array(dstAt);
  for (const p of parts) resizeInto(delta, p.src, dst, p.dst, p.kind, p.other, from, to);
  return { delta: dst, layout: out };
}

/**
 * Pads a site's flat rank-r delta (`LocalResult.delta` and `.layout`) to rank
 * rMax. Entries keep their order and get rank rMax and new offsets, so the
 * result is in the trainable order of the same adapter at rank rMax (the
 * model orders its tensors by layer, module and A before B, independently
 * of r). Entries may be A and B or B alone (FFA-LoRA's frozen A).
 * @returns the padded delta and its layout
 * @throws ValidationError `TRAIN_ERR_BAD_ADAPTER` for an entry that is not a rank-r PEFT LoRA tensor;
 *   `TRAIN_ERR_BAD_PARAM` for rMax < r, or a layout that is not contiguous from 0 or does not cover the delta
 */
export function padDelta(delta: Float32Array, layout: readonly DeltaEntry[], r: number, rMax: number): RankedDelta {
  if (isRank(r) && isRank(rMax) && rMax < r) badParam(`cannot pad rank ${r} to the smaller rank ${rMax}`);
  return resizeDelta(delta, layout, r, rMax);
}

/**
 * Truncates a flat rank-rMax delta (a global update) to rank r: the inverse
 * of {@link padDelta} on the places a rank-r site has.
 * @throws ValidationError as {@link padDelta}; `TRAIN_ERR_BAD_PARAM` for r > rMax
 */
export function truncateDelta(delta: Float32Array, layout: readonly DeltaEntry[], rMax: number, r: number): RankedDelta {
  if (isRank(r) && isRank(rMax) && r > rMax) badParam(`cannot truncate rank ${rMax} to the larger rank ${r}`);
  return resizeDelta(delta, layout, rMax, r);
}

/**
 * Per rank slice k = 0..rMax−1, the number of sites that train it (those with
 * r_i > k), or, with `weights`, the sum of their weights (for a weighted mean,
 * where site i sends w_i·Δ_i).
 * @param ranks - each site's rank, integers in 1..rMax
 * @param weights - optional, one finite weight > 0 per site
 * @returns Float64Array of length rMax, non-increasing; 0 for a slice no site trains
 * @throws ValidationError `TRAIN_ERR_BAD_PARAM` for no sites, a rank outside 1..rMax, or bad weights
 */
export function perRankWeights(ranks: readonly number[], rMax: number, weights?: readonly number[]): Float64Array {
  if (!isRank(rMax)) badParam(`rMax must be a positive integer, got ${String(rMax)}`);
  if (!Array.isArray(ranks) || ranks.length === 0) badParam('ranks must be a non-empty list, one rank per site');
  if (weights !== undefined && (!Array.isArray(weights) || weights.length !== ranks.length)) {
    badParam(`weights must list one weight per site (${ranks.length}), got ${Array.isArray(weights) ? weights.length : typeof weights}`);
  }
  const out = new Float64Array(rMax);
  ranks.forEach((r, i) => {
    if (!isRank(r) || r > rMax) badParam(`site ${i} has rank ${String(r)}; ranks must be integers in 1..${rMax}`);
    const w = weights === undefined ? 1 : weights[i];
    if (typeof w !== 'number' || !Number.isFinite(w) || w <= 0) badParam(`site ${i} has weight ${String(w)}; weights must be finite and > 0`);
    for (let k = 0; k < r; k++) out[k]! += w;
  });
  return out;
}

/**
 * Divides each rank slice of a summed rank-rMax delta by its count: row k of
 * every A and column k of every B by `counts[k]` ({@link perRankWeights}).
 * A slice of count 0 (no site trains it) is set to 0, so noise added there
 * by DP is dropped rather than applied.
 * @param sum - the sum of the sites' padded deltas (e.g. `decodeSum`'s output), covered exactly by `layout`
 * @param layout - the rank-rMax layout ({@link padDelta}'s); rMax = counts.length
 * @param counts - per slice, the number (or total weight) of contributing sites; finite, ≥ 0
 * @returns the per-slice mean, as float32
 * @throws ValidationError `TRAIN_ERR_BAD_ADAPTER` for an entry that is not a rank-rMax PEFT LoRA tensor;
 *   `TRAIN_ERR_BAD_PARAM` for bad counts or a layout that does not cover `sum`
 */
export function rescaleByRank(sum: Float32Array | Float64Array, layout: readonly DeltaEntry[], counts: ArrayLike<number>): Float32Array {
  if (!(sum instanceof Float32Array || sum instanceof Float64Array)) badParam('sum must be a Float32Array or Float64Array');
  if (!Array.isArray(layout) || layout.length === 0) badParam('layout must be a non-empty list of { name, shape, offset }');
  const rMax = counts?.length;
  if (!isRank(rMax)) badParam('counts must list one count per rank slice');
  const inv = new Float64Array(rMax);
  for (let k = 0; k < rMax; k++) {
    const c = counts[k];
    if (typeof c !== 'number' || !Number.isFinite(c) || c < 0) badParam(`counts[${k}] is ${String(c)}; counts must be finite and ≥ 0`);
    inv[k] = c === 0 ? 0 : 1 / c;
  }
  const out = new Float32Array(sum.length);
  let at = 0;
  for (const e of layout) {
    const { kind, other } = entryOf(e.name, e.shape, rMax);
    if (e.offset !== at) badParam(`layout entry ${e.name} is at offset ${e.offset}, expected ${at} (entries must be contiguous, in order, from 0)`);
    if (at + rMax * other > sum.length) badParam(`the layout covers more than the ${sum.length} values of the sum`);
    if (kind === 'A') {
      for (let k = 0; k < rMax; k++) for (let j = 0; j < other; j++) out[at + k * other + j] = sum[at + k * other + j]! * inv[k]!;
    } else {
      for (let o = 0; o < other; o++) for (let k = 0; k < rMax; k++) out[at + o * rMax + k] = sum[at + o * rMax + k]! * inv[k]!;
    }
    at += rMax * other;
  }
  if (at !== sum.length) badParam(`the layout covers ${at} values, the sum has ${sum.length}`);
  return out;
}
