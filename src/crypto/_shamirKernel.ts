/**
 * The evaluation kernel of Shamir sharing (src/crypto/shamir.ts, spec §3.8):
 * every share word y_l(x_h) = Σ_i a_{l,i} · x_h^i mod p, p = 2^25 − 39, for
 * all holders h and the 11 limbs l (padded to {@link LP} = 12).
 *
 * The coefficients are taken in blocks of {@link BLOCK} = 30, highest block
 * first, in Horner fashion over X = x^30:
 *   acc ← reduce(acc)·X + Σ_{i<30} a_{l, 30j+i} · x^i      for j = J−1 … 0,
 * so each holder needs only its powers x^0 … x^30, and the work is one
 * multiply-add per coefficient and limb, two limbs per f64x2 instruction.
 *
 * Everything is IEEE-754 double arithmetic on integers, exact because every
 * value stays below 2^53:
 * - powers and coefficients are kept in [−2^24, 2^24] (a near-balanced
 *   representative v − q·p, q a rounded v/p), so one product is below 2^48;
 * - before each block the accumulator is brought back into [−2^24, 2^24], so a
 *   block adds 31 products below 2^48 (X·acc and 30 terms): |acc| < 31·2^48 < 2^53;
 * - a rounded quotient q of v·(1/p) is within 1/2 + 2^-23 of v/p for
 *   |v| < 2^53, so |v − q·p| ≤ p/2 + p·2^-23 < 2^24 (see {@link nearReduce};
 *   the WebAssembly kernel rounds with f64x2.nearest, which meets the same bound).
 * Any representative is fine in between: shamir.ts reduces each result into
 * [0, p) exactly at the end, so both back ends give the same bytes.
 *
 * Two back ends: a WebAssembly SIMD kernel (assembled below without a
 * toolchain, as in mask.ts) and a plain JavaScript loop, used when the runtime
 * has no WebAssembly SIMD.
 *
 * WebAssembly text of the kernel (`$c` coefficients t × 12 doubles, `$rows`
 * 32 doubles per holder: x^0 … x^30 and a pad, `$out` results count × 12):
 * ```wat
 * (func (export "eval") (param $rows i32) (param $c i32) (param $out i32) (param $t i32) (param $count i32)
 *   (local $h i32) (local $i i32) (local $end i32) (local $pp i32) (local $cp i32) (local $bs i32) (local $cb i32) (local $row i32)
 *   (local $a0 v128) … (local $a5 v128) (local $v v128) (local $X v128)
 *   (local.set $row (local.get $rows))
 *   (block $done (loop $holders
 *     (br_if $done (i32.ge_u (local.get $h) (local.get $count)))
 *     (local.set $a0 (v128.const f64x2 0 0)) …
 *     (local.set $X (f64x2.splat (f64.load offset=240 (local.get $row))))   ;; x^30
 *     (local.set $bs (i32.mul (i32.div_u (i32.sub (local.get $t) (i32.const 1)) (i32.const 30)) (i32.const 30)))
 *     (local.set $cb (i32.add (local.get $c) (i32.mul (local.get $bs) (i32.const 96))))
 *     (loop $blocks
 *       (local.set $a0 (f64x2.mul (f64x2.sub (local.get $a0)
 *         (f64x2.mul (f64x2.nearest (f64x2.mul (local.get $a0) (v128.const 1/p))) (v128.const p))) (local.get $X))) …
 *       (local.set $i (local.get $bs))
 *       (local.set $end (min_u (i32.add (local.get $bs) (i32.const 30)) (local.get $t)))
 *       (local.set $pp (local.get $row)) (local.set $cp (local.get $cb))
 *       (loop $terms
 *         (local.set $v (f64x2.splat (f64.load (local.get $pp))))
 *         (local.set $a0 (f64x2.add (local.get $a0) (f64x2.mul (local.get $v) (v128.load offset=0 (local.get $cp))))) … $a5 at offset=80
 *         (local.set $pp (i32.add (local.get $pp) (i32.const 8)))
 *         (local.set $cp (i32.add (local.get $cp) (i32.const 96)))
 *         (br_if $terms (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $end))))
 *       (local.set $bs (i32.sub (local.get $bs) (i32.const 30)))
 *       (local.set $cb (i32.sub (local.get $cb) (i32.const 2880)))
 *       (br_if $blocks (i32.ge_s (local.get $bs) (i32.const 0))))
 *     (v128.store offset=0 (local.get $out) (local.get $a0)) … offset=80
 *     (local.set $out (i32.add (local.get $out) (i32.const 96)))
 *     (local.set $row (i32.add (local.get $row) (i32.const 256)))
 *     (local.set $h (i32.add (local.get $h) (i32.const 1)))
 *     (br $holders))))
 * ```
 */

/** The field modulus p = 2^25 − 39. */
const P = 33554393;
const INV_P = 1 / P;
/** Limbs per row, the 11 limbs padded to a multiple of two lanes (the pad column is 0). */
export const LP = 12;
/** Coefficients per Horner block (30 products plus the block step make 31, see above). */
export const BLOCK = 30;
/** Doubles per holder row: x^0 … x^30 and a pad. */
const ROW = 32;

/**
 * v − ⌊v·(1/p) + 1/2⌋·p: a representative of v mod p in [−2^24, 2^24], for
 * |v| < 2^53. With x = v·(1/p), |x| < 2^28, the computed x and x + 1/2 are
 * each within 2^-24 of the exact values, so the quotient is within
 * 1/2 + 2^-23 of v/p and |result| ≤ p/2 + p·2^-23 < p/2 + 5 < 2^24.
 * (Math.floor(x + 0.5) rather than Math.round: V8 compiles it to far fewer
 * instructions; any rounding to nearest meets the bound.)
 */
export const nearReduce = (v: number): number => v - Math.floor(v * INV_P + 0.5) * P;

// ---- WebAssembly assembly -------------------------------------------------

const leb = (n: number): number[] => {
  const out: number[] = [];
  do { let b = n & 0x7f; n >>>= 7; if (n !== 0) b |= 0x80; out.push(b); } while (n !== 0);
  return out;
};
const sleb = (n: number): number[] => { // small signed constants only
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) { out.push(b); return out; }
    out.push(b | 0x80);
  }
};
const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];
const name = (s: string): number[] => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];
const f64x2Const = (v: number): number[] => {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setFloat64(0, v, true);
  dv.setFloat64(8, v, true);
  return [0xfd, 0x0c, ...b];
};

function evalBody(): number[] {
  const GET = 0x20, SET = 0x21, TEE = 0x22, I32 = 0x41, ADD = 0x6a, SUB = 0x6b, MUL = 0x6c, DIV_U = 0x6e;
  const LT_U = 0x49, GE_S = 0x4e, GE_U = 0x4f, F64_LOAD = 0x2b;
  const S = 0xfd, LOAD = 0x00, STORE = 0x0b, SPLAT = 0x14;
  const FADD = [S, ...leb(0xf0)], FSUB = [S, ...leb(0xf1)], FMUL = [S, ...leb(0xf2)], NEAREST = [S, ...leb(0x94)];
  const [rows, c, out, t, count, h, i, end, pp, cp, bs, cb, row, a0, v, X] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 19, 20];
  const acc = [0, 1, 2, 3, 4, 5];
  const code: number[] = [GET, rows, SET, row];
  code.push(0x02, 0x40, 0x03, 0x40); // block $done, loop $holders
  code.push(GET, h, GET, count, GE_U, 0x0d, 1); // br_if $done
  for (const k of acc) code.push(...f64x2Const(0), SET, a0 + k);
  code.push(GET, row, F64_LOAD, 3, ...leb(8 * BLOCK), S, SPLAT, SET, X);
  code.push(GET, t, I32, 1, SUB, I32, ...sleb(BLOCK), DIV_U, I32, ...sleb(BLOCK), MUL, SET, bs);
  code.push(GET, c, GET, bs, I32, ...sleb(8 * LP), MUL, ADD, SET, cb);
  code.push(0x03, 0x40); // loop $blocks
  for (const k of acc) {
    code.push(GET, a0 + k, GET, a0 + k, ...f64x2Const(INV_P), ...FMUL, ...NEAREST, ...f64x2Const(P), ...FMUL, ...FSUB,
      GET, X, ...FMUL, SET, a0 + k);
  }
  code.push(GET, bs, SET, i);
  // end = bs + 30 < t ? bs + 30 : t
  code.push(GET, bs, I32, ...sleb(BLOCK), ADD, TEE, end, GET, t, GET, end, GET, t, LT_U, 0x1b /* select */, SET, end);
  code.push(GET, row, SET, pp, GET, cb, SET, cp);
  code.push(0x03, 0x40); // loop $terms
  code.push(GET, pp, F64_LOAD, 3, 0, S, SPLAT, SET, v);
  for (const k of acc) code.push(GET, a0 + k, GET, v, GET, cp, S, LOAD, 4, ...leb(16 * k), ...FMUL, ...FADD, SET, a0 + k);
  code.push(GET, pp, I32, 8, ADD, SET, pp);
  code.push(GET, cp, I32, ...sleb(8 * LP), ADD, SET, cp);
  code.push(GET, i, I32, 1, ADD, TEE, i, GET, end, LT_U, 0x0d, 0, 0x0b); // br_if $terms; end
  code.push(GET, bs, I32, ...sleb(BLOCK), SUB, SET, bs);
  code.push(GET, cb, I32, ...sleb(8 * LP * BLOCK), SUB, SET, cb);
  code.push(GET, bs, I32, 0, GE_S, 0x0d, 0, 0x0b); // br_if $blocks; end
  for (const k of acc) code.push(GET, out, GET, a0 + k, S, STORE, 4, ...leb(16 * k));
  code.push(GET, out, I32, ...sleb(8 * LP), ADD, SET, out);
  code.push(GET, row, I32, ...sleb(8 * ROW), ADD, SET, row);
  code.push(GET, h, I32, 1, ADD, SET, h);
  code.push(0x0c, 0, 0x0b, 0x0b, 0x0b); // br $holders; end loop; end block; end func
  const body = [2, 8, 0x7f, 8, 0x7b, ...code]; // locals: 8 × i32, 8 × v128
  return [...leb(body.length), ...body];
}

/** The kernel module bytes (see the text form in the module comment). */
export const SHAMIR_WASM_BYTES: Uint8Array = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, [1, 0x60, 5, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0]), // type 0: (i32 × 5) -> ()
  ...section(3, [1, 0]),
  ...section(5, [1, 0x00, 1]), // one memory, min 1 page
  ...section(7, [2, ...name('mem'), 0x02, 0, ...name('eval'), 0x00, 0]),
  ...section(10, [1, ...evalBody()]),
]);

interface WasmKernel {
  readonly memory: { grow(pages: number): number; readonly buffer: ArrayBuffer };
  evaluate(pw: number, c: number, out: number, t: number, count: number): void;
}

interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

let wasm: WasmKernel | null | undefined;

/** The kernel instance, or null when the runtime has no WebAssembly SIMD. */
function wasmKernel(): WasmKernel | null {
  if (wasm !== undefined) return wasm;
  wasm = null;
  const wa = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  if (wa === undefined || new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) return wasm; // little-endian views only
  try {
    const ex = new wa.Instance(new wa.Module(SHAMIR_WASM_BYTES), {}).exports as unknown as {
      mem: WasmKernel['memory']; eval: WasmKernel['evaluate'];
    };
    wasm = { memory: ex.mem, evaluate: ex.eval };
  } catch {
    wasm = null;
  }
  return wasm;
}

// ---- Backends ---------------------------------------------------------------

/** Which back end runs the kernel: `'wasm'` when available (default) or `'js'`. */
let preferred: 'wasm' | 'js' = 'wasm';

/**
 * Chooses the back end for later calls (tests compare both). Returns the one
 * that will run: `'js'` when WebAssembly SIMD is unavailable.
 */
export function setShamirBackend(backend: 'wasm' | 'js'): 'wasm' | 'js' {
  preferred = backend;
  return backend === 'wasm' && wasmKernel() !== null ? 'wasm' : 'js';
}

/** Plain-JS working memory when WebAssembly is not used. */
let jsMem = new Float64Array(0);

/**
 * Fills each holder's row: rows[h·32 + i] = x_h^i (near-balanced), i ≤ 30.
 * Four holders at a time, so four independent chains of multiply-reduce steps
 * are in flight; a tail repeats the last holder.
 */
function fillRows(mem: Float64Array, base: number, xs: readonly number[]): void {
  const k = xs.length;
  for (let h = 0; h < k; h += 4) {
    const q1 = Math.min(h + 1, k - 1), q2 = Math.min(h + 2, k - 1), q3 = Math.min(h + 3, k - 1);
    const x0 = xs[h]!, x1 = xs[q1]!, x2 = xs[q2]!, x3 = xs[q3]!;
    const r0 = base + h * ROW, r1 = base + q1 * ROW, r2 = base + q2 * ROW, r3 = base + q3 * ROW;
    let v0 = 1, v1 = 1, v2 = 1, v3 = 1;
    for (let i = 0; i <= BLOCK; i++) {
      mem[r0 + i] = v0; mem[r1 + i] = v1; mem[r2 + i] = v2; mem[r3 + i] = v3;
      // |v·x| < 2^24 · 2^24; see nearReduce.
      v0 = nearReduce(v0 * x0); v1 = nearReduce(v1 * x1); v2 = nearReduce(v2 * x2); v3 = nearReduce(v3 * x3);
    }
  }
}

/** The JavaScript kernel: the same blocks, two holders × six limbs per pass (twelve accumulators). */
function evaluateJs(mem: Float64Array, rowBase: number, cBase: number, outBase: number, t: number, count: number): void {
  const top = Math.floor((t - 1) / BLOCK) * BLOCK;
  for (let h = 0; h < count; h += 2) {
    const o0 = rowBase + h * ROW;
    const o1 = rowBase + (h + 1 < count ? h + 1 : h) * ROW; // an odd last holder is computed twice
    const X = mem[o0 + BLOCK]!, Y = mem[o1 + BLOCK]!;
    for (let lb = 0; lb < LP; lb += 6) {
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0;
      let b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0;
      for (let bs = top; bs >= 0; bs -= BLOCK) {
        a0 = nearReduce(a0) * X; a1 = nearReduce(a1) * X; a2 = nearReduce(a2) * X;
        a3 = nearReduce(a3) * X; a4 = nearReduce(a4) * X; a5 = nearReduce(a5) * X;
        b0 = nearReduce(b0) * Y; b1 = nearReduce(b1) * Y; b2 = nearReduce(b2) * Y;
        b3 = nearReduce(b3) * Y; b4 = nearReduce(b4) * Y; b5 = nearReduce(b5) * Y;
        const n = Math.min(BLOCK, t - bs);
        for (let i = 0; i < n; i++) {
          const v = mem[o0 + i]!, w = mem[o1 + i]!;
          const c = cBase + (bs + i) * LP + lb;
          const c0 = mem[c]!, c1 = mem[c + 1]!, c2 = mem[c + 2]!, c3 = mem[c + 3]!, c4 = mem[c + 4]!, c5 = mem[c + 5]!;
          a0 += v * c0; a1 += v * c1; a2 += v * c2; a3 += v * c3; a4 += v * c4; a5 += v * c5;
          b0 += w * c0; b1 += w * c1; b2 += w * c2; b3 += w * c3; b4 += w * c4; b5 += w * c5;
        }
      }
      const r0 = outBase + h * LP + lb;
      mem[r0] = a0; mem[r0 + 1] = a1; mem[r0 + 2] = a2; mem[r0 + 3] = a3; mem[r0 + 4] = a4; mem[r0 + 5] = a5;
      if (h + 1 < count) {
        const r1 = r0 + LP;
        mem[r1] = b0; mem[r1 + 1] = b1; mem[r1 + 2] = b2; mem[r1 + 3] = b3; mem[r1 + 4] = b4; mem[r1 + 5] = b5;
      }
    }
  }
}

/**
 * Evaluates every limb polynomial at every holder.
 * @param coeffs t × LP doubles, row i = (a_{0,i}, …, a_{10,i}, 0), entries in [−2^24, 2^24]
 * @param xs holder ids (distinct, in [1, 2^24 − 1]; checked by the caller)
 * @param t number of coefficients per limb
 * @param results receives holder h's LP values at [h·LP, h·LP + LP) (any representatives mod p)
 */
export function evaluateShares(coeffs: Float64Array, xs: readonly number[], t: number, results: Float64Array): void {
  const k = xs.length;
  // Layout in doubles: [coefficients t·LP][results k·LP][rows k·ROW]; every part 16-byte aligned.
  const cBase = 0, outBase = t * LP, rowBase = outBase + k * LP;
  const doubles = rowBase + k * ROW;
  const kernel = preferred === 'wasm' ? wasmKernel() : null;
  let mem: Float64Array;
  if (kernel !== null) {
    const need = doubles * 8 - kernel.memory.buffer.byteLength;
    if (need > 0) kernel.memory.grow(Math.ceil(need / 65536));
    mem = new Float64Array(kernel.memory.buffer, 0, doubles);
  } else {
    if (jsMem.length < doubles) jsMem = new Float64Array(doubles);
    mem = jsMem;
  }
  try {
    mem.set(coeffs, cBase);
    fillRows(mem, rowBase, xs);
    if (kernel !== null) kernel.evaluate(8 * rowBase, 8 * cBase, 8 * outBase, t, k);
    else evaluateJs(mem, rowBase, cBase, outBase, t, k);
    results.set(mem.subarray(outBase, outBase + k * LP));
  } finally {
    // The coefficients and results are secret; the rows are public.
    mem.fill(0, cBase, rowBase);
  }
}
