/**
 * The BatchMatMul gradient tally registers in place of tfjs-core's.
 *
 * tfjs 4 runs every `tf.matMul`, rank 2 included, through one kernel,
 * `BatchMatMul` (there is no separate `MatMul` kernel or gradient), and its
 * gradient multiplies with the `transposeA`/`transposeB` flags set: for
 * C = A·B it computes dA = dC·Bᵀ as `matMul(dy, b, false, true)` and
 * dB = Aᵀ·dC as `matMul(a, dy, true, false)`. The wasm backend hands a matmul
 * to XNNPACK only when it has no flag and no batch above 1; anything else runs
 * in a plain loop 6–15× slower, so on wasm the backward pass of every matmul
 * took about ten times its forward pass. On wasm this gradient computes the
 * same four cases with the transposes materialised (`tf.transpose`, then a
 * plain matmul) and, where the algebra allows, a batch folded into one 2-D
 * product (see {@link wasmProduct}). On every other backend it makes
 * tfjs-core's flagged calls, which cost nothing extra there.
 *
 * It also closes a gap in tfjs-core's gradient: with broadcast batch
 * dimensions (`[8, 128, 256] · [256, 768]`, or a batch of 1 against a batch
 * of 8) tfjs-core returns the gradient at the broadcast shape and the tape
 * rejects it ("does not match the shape of the input"). Here the gradient is
 * summed over the broadcast axes back to the input's shape, as TensorFlow's
 * BatchMatMulV2 gradient does. Where the batch dimensions agree nothing is
 * summed, so the result is tfjs-core's.
 */
import * as tf from '@tensorflow/tfjs';

/** tfjs-core's gradient for BatchMatMul, as registered when `@tensorflow/tfjs` loaded. */
export const STOCK_BATCH_MATMUL_GRAD: tf.GradConfig = tf.getGradient('BatchMatMul');

/** Swaps the last two axes (the matrix axes) of a tensor of rank ≥ 2. */
function transposeLast2(x: tf.Tensor): tf.Tensor {
  const r = x.rank;
  const perm = [...Array(r).keys()];
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return tf.transpose(x, perm);
}

const batchDims = (shape: readonly number[]) => shape.slice(0, -2);
const batchSize = (shape: readonly number[]) => tf.util.sizeFromShape(batchDims(shape));

/**
 * Sums a gradient computed at the broadcast shape back to its input's shape:
 * over the leading axes the input lacks and the batch axes where it has 1.
 */
function reduceToShape(g: tf.Tensor, shape: readonly number[]): tf.Tensor {
  if (tf.util.arraysEqual(g.shape, shape as number[])) return g;
  const axes = tf.broadcast_util.getReductionAxes(shape as number[], g.shape);
  return tf.reshape(tf.sum(g, axes), shape as number[]);
}

/**
 * op(x)·op(y) summed to `target`'s shape (op transposes when its flag is
 * set), for the wasm backend. Its kernel is fast (XNNPACK) only for a single
 * product without transpose flags: a flag, or any batch dimension above 1,
 * sends it to a plain loop 6–15× slower. So the transposes are materialised,
 * and a batch is folded into the rows of one 2-D product where the algebra
 * allows it:
 * - y unbatched and nothing to sum: [B·M, K]·[K, N] is the B products stacked;
 * - everything summed (the gradient of an operand broadcast over the batch)
 *   and x, y batched alike: Σ_b op(x_b)·op(y_b) = L·R with L = [M, B·S] the
 *   op(x_b) side by side and R = [B·S, N] the op(y_b) stacked.
 * Other shapes take the batched kernel and {@link reduceToShape}.
 */
function wasmProduct(x: tf.Tensor, tx: boolean, y: tf.Tensor, ty: boolean, target: readonly number[]): tf.Tensor {
  const bx = batchSize(x.shape);
  const bt = batchSize(target);
  if (batchSize(y.shape) === 1 && bt === bx) {
    const xm = tx ? transposeLast2(x) : x; // [..., M, K]
    const ym = ty ? transposeLast2(y) : y; // [1..., K, N]
    const k = xm.shape[xm.rank - 1]!;
    return tf.reshape(tf.matMul(tf.reshape(xm, [-1, k]), tf.reshape(ym, ym.shape.slice(-2))), target as number[]);
  }
  if (bt === 1 && bx > 1 && tf.util.arraysEqual(batchDims(x.shape), batchDims(y.shape))) {
    const lt = tx ? x : transposeLast2(x); // op(x)ᵀ: [..., S, M]
    const rm = ty ? transposeLast2(y) : y; // op(y):  [..., S, N]
    const m = lt.shape[lt.rank - 1]!;
    const n = rm.shape[rm.rank - 1]!;
    const l = tf.transpose(tf.reshape(lt, [-1, m])); // [M, B·S]
    return tf.reshape(tf.matMul(l, tf.reshape(rm, [-1, n])), target as number[]);
  }
  return reduceToShape(tf.matMul(tx ? transposeLast2(x) : x, ty ? transposeLast2(y) : y), target);
}

/** op(x)·op(y) with tfjs's flags, summed to `target`'s shape: every backend but wasm. */
function flaggedProduct(x: tf.Tensor, tx: boolean, y: tf.Tensor, ty: boolean, target: readonly number[]): tf.Tensor {
  return reduceToShape(tf.matMul(x, y, tx, ty), target);
}

/** The BatchMatMul gradient: tfjs-core's four cases, with explicit transposes on wasm and broadcast batch axes summed. */
export const BATCH_MATMUL_GRAD: tf.GradConfig = {
  kernelName: 'BatchMatMul',
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved, attrs) => {
    const d = dy as tf.Tensor;
    const [a, b] = saved as [tf.Tensor, tf.Tensor];
    const { transposeA = false, transposeB = false } = attrs as { transposeA?: boolean; transposeB?: boolean };
    const p = tf.getBackend() === 'wasm' ? wasmProduct : flaggedProduct;
    // tfjs-core's BatchMatMul_grad.ts, case by case (C = op(A)·op(B)); the
    // tape runs each closure inside tf.tidy, so intermediates are freed.
    if (!transposeA && !transposeB) {
      return { a: () => p(d, false, b, true, a.shape), b: () => p(a, true, d, false, b.shape) }; // dA = dC·Bᵀ, dB = Aᵀ·dC
    }
    if (!transposeA && transposeB) {
      return { a: () => p(d, false, b, false, a.shape), b: () => p(d, true, a, false, b.shape) }; // dA = dC·B, dB = dCᵀ·A
    }
    if (transposeA && !transposeB) {
      return { a: () => p(b, false, d, true, a.shape), b: () => p(a, false, d, false, b.shape) }; // dA = B·dCᵀ, dB = A·dC
    }
    return { a: () => p(b, true, d, true, a.shape), b: () => p(d, true, a, true, b.shape) }; // dA = Bᵀ·dCᵀ, dB = dCᵀ·Aᵀ
  },
};

/** Registers {@link BATCH_MATMUL_GRAD} for BatchMatMul (once; a no-op when it is already the registered gradient). */
export function installBatchMatMulGrad(): void {
  if (tf.getGradient('BatchMatMul') !== BATCH_MATMUL_GRAD) tf.registerGradient(BATCH_MATMUL_GRAD);
}

/**
 * Runs `fn` with tfjs-core's own BatchMatMul gradient registered, then puts
 * back whichever gradient was registered before. For comparisons only.
 */
export function withStockBatchMatMulGrad<T>(fn: () => T): T {
  const current = tf.getGradient('BatchMatMul');
  tf.registerGradient(STOCK_BATCH_MATMUL_GRAD);
  try {
    return fn();
  } finally {
    tf.registerGradient(current);
  }
}
