/**
 * Run-time choice of the TensorFlow.js backend, and the one import point of
 * `tf` for the rest of tally.
 *
 * The candidates are tried in order — `@tensorflow/tfjs-node-gpu`,
 * `@tensorflow/tfjs-node`, WebGPU (`@tensorflow/tfjs-backend-webgpu` over the
 * `webgpu` package's Dawn), `@tensorflow/tfjs-backend-wasm`, then tfjs's plain
 * JavaScript `cpu` — and the first that loads and passes a smoke test is used.
 * Each optional package is imported only when its turn comes; a package that
 * is not installed is skipped, not an error. `TALLY_BACKEND` (or the `prefer`
 * option) names one backend instead: that one, or a `TRAIN_ERR_BACKEND` error
 * saying why it cannot be used, never another.
 */
import * as tf from '@tensorflow/tfjs';
import { TallyError, ValidationError } from '../errors.js';
import { installBatchMatMulGrad } from './_wasm-matmul-grad.js';

/** The TensorFlow.js namespace every other module of tally uses (import it from here, not from `@tensorflow/tfjs`). */
export { tf };

/** The backends, in the order they are tried. */
export const BACKEND_NAMES = ['tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
/** A backend tally can run on. */
export type BackendName = (typeof BACKEND_NAMES)[number];

/**
 * One backend to try. `load` imports and registers it and returns the name
 * tfjs knows it by (`'tensorflow'`, `'webgpu'`, …; nothing means the same as
 * `name`). A package that is not installed is reported by throwing an error
 * whose `code` is `'ERR_MODULE_NOT_FOUND'`, which is what a dynamic `import()`
 * of a missing package throws; any other error means it is installed but broken.
 */
export interface Candidate {
  readonly name: BackendName;
  load(): Promise<void | string>;
}

/** A candidate tried before the chosen one, and why it was passed over. */
export interface SkippedBackend {
  readonly name: BackendName;
  readonly reason: 'not-installed' | 'load-failed' | 'smoke-test-failed';
  readonly message: string;
  /** Time spent on it (load and smoke test), in milliseconds. */
  readonly ms: number;
}

/** What {@link initBackend} chose. */
export interface BackendInfo {
  readonly name: BackendName;
  /** tfjs's name for it, `tf.getBackend()` once chosen. */
  readonly tfjsBackend: string;
  /** `'auto'` (the first that works, in order), or who named it. */
  readonly requestedBy: 'auto' | 'prefer' | 'TALLY_BACKEND';
  /** The candidates tried before it, in order (none when one was requested). */
  readonly skipped: readonly SkippedBackend[];
  /** Facts about how it runs, e.g. that wasm uses no threads under Node. */
  readonly notes: readonly string[];
  /** Time of its smoke test, in milliseconds. */
  readonly smokeMs: number;
  /** Time of the whole selection (every load and smoke test), in milliseconds. */
  readonly ms: number;
}

/** Throws `code: 'ERR_MODULE_NOT_FOUND'` only when `spec` itself is missing, not a dependency of an installed `spec`. */
async function importOptional(spec: string): Promise<unknown> {
  try {
    return await import(spec);
  } catch (e) {
    throw classifyMissing(spec, e);
  }
}

function classifyMissing(spec: string, e: unknown): unknown {
  if ((e as { code?: unknown })?.code !== 'ERR_MODULE_NOT_FOUND') return e;
  const message = String((e as Error).message);
  if (message.includes(`'${spec}'`)) return Object.assign(new Error(`${spec} is not installed`, { cause: e }), { code: 'ERR_MODULE_NOT_FOUND' });
  return new Error(`${spec} is installed but cannot load: ${message}`, { cause: e });
}

/** `tfjs-node-gpu` quietly runs TensorFlow on the CPU when it finds no usable GPU; that is the `tensorflow` candidate's job, not this one's. */
async function loadTensorflowGpu(): Promise<string> {
  await importOptional('@tensorflow/tfjs-node-gpu');
  const b = tf.findBackend('tensorflow') as { isUsingGpuDevice?: unknown } | null;
  if (b?.isUsingGpuDevice === false) {
    tf.removeBackend('tensorflow');
    throw new Error('@tensorflow/tfjs-node-gpu loaded, but TensorFlow found no usable GPU (CUDA and cuDNN must match its build)');
  }
  return 'tensorflow';
}

interface DawnGpu { requestAdapter(): Promise<unknown> }
interface DawnModule { create(flags: string[]): DawnGpu; globals: Record<string, unknown> }

/** tfjs-backend-webgpu registers itself at import only if `navigator.gpu` exists, so Dawn's is installed first — and only once an adapter is known to exist. */
async function loadWebGpu(): Promise<string> {
  const dawn = (await importOptional('webgpu')) as DawnModule;
  try {
    import.meta.resolve('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    throw classifyMissing('@tensorflow/tfjs-backend-webgpu', e);
  }
  const gpu = dawn.create([]);
  if ((await gpu.requestAdapter()) == null) throw new Error('Dawn (the webgpu package) found no GPU adapter');
  Object.assign(globalThis, dawn.globals);
  const g = globalThis as { navigator?: object };
  if (g.navigator === undefined) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  Object.defineProperty(g.navigator!, 'gpu', { value: gpu, configurable: true, writable: true });
  await importOptional('@tensorflow/tfjs-backend-webgpu');
  return 'webgpu';
}

/** The real candidates, in {@link BACKEND_NAMES} order. */
export const BUILTIN_CANDIDATES: readonly Candidate[] = Object.freeze([
  { name: 'tensorflow-gpu', load: loadTensorflowGpu },
  { name: 'tensorflow', load: async () => { await importOptional('@tensorflow/tfjs-node'); return 'tensorflow'; } },
  { name: 'webgpu', load: loadWebGpu },
  { name: 'wasm', load: async () => { await importOptional('@tensorflow/tfjs-backend-wasm'); return 'wasm'; } },
  { name: 'cpu', load: async () => 'cpu' },
] satisfies Candidate[]);

// The smoke test: L = Σ (X·W)² with X [2, 3, 4] broadcast against W [4, 5];
// dL/dX = 2·(X·W)·Wᵀ and dL/dW = Σ_batch 2·Xᵀ·(X·W). Entries are multiples of
// 1/64, so float32 holds every product and sum exactly; the tolerance leaves
// room for TF32 matmuls on recent NVIDIA GPUs (10-bit mantissa).
const SB = 2, SM = 3, SK = 4, SN = 5;
const SMOKE_TOLERANCE = 2e-3;
const sixtyFourths = (n: number, phase: number) => Array.from({ length: n }, (_, i) => Math.round(64 * Math.sin(phase + 0.7 * i)) / 64);

/** dL/dX and dL/dW in plain JavaScript (float64). */
function smokeReference(x: readonly number[], w: readonly number[]): { dx: number[]; dw: number[] } {
  const dx = new Array<number>(SB * SM * SK).fill(0);
  const dw = new Array<number>(SK * SN).fill(0);
  for (let b = 0; b < SB; b++) {
    for (let i = 0; i < SM; i++) {
      const row = (b * SM + i) * SK;
      for (let j = 0; j < SN; j++) {
        let y = 0;
        for (let k = 0; k < SK; k++) y += x[row + k] * w[k * SN + j];
        for (let k = 0; k < SK; k++) {
          dx[row + k] += 2 * y * w[k * SN + j];
          dw[k * SN + j] += 2 * x[row + k] * y;
        }
      }
    }
  }
  return { dx, dw };
}

function compare(label: string, got: ArrayLike<number>, want: readonly number[]): void {
  const scale = Math.max(1, ...want.map(Math.abs));
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= SMOKE_TOLERANCE * scale)) throw new Error(`${label}[${i}] is ${got[i]}, expected ${want[i]} (plain JavaScript)`);
  }
}

/** A matmul and its gradient on the active backend, against plain JavaScript, leaking no tensor. */
async function smokeTest(): Promise<void> {
  const x = sixtyFourths(SB * SM * SK, 0.3);
  const w = sixtyFourths(SK * SN, 1.1);
  const before = tf.memory().numTensors;
  const [dx, dw] = tf.tidy(() => {
    const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.matMul(a, b)));
    return tf.grads(f)([tf.tensor3d(x, [SB, SM, SK]), tf.tensor2d(w, [SK, SN])]);
  }) as [tf.Tensor, tf.Tensor];
  try {
    const want = smokeReference(x, w);
    compare('dL/dX', await dx.data(), want.dx);
    compare('dL/dW', await dw.data(), want.dw);
  } finally {
    tf.dispose([dx, dw]);
  }
  const after = tf.memory().numTensors;
  if (after !== before) throw new Error(`it leaked ${after - before} tensor(s)`);
}

/** Makes `name` the active tfjs backend, without the CPU backend's "install tfjs-node" hint. */
async function activate(name: string): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`tfjs could not initialise backend '${name}'`);
  await tf.ready();
  // tfjs's cpu backend prints "Hi, looks like you are running TensorFlow.js in
  // Node.js…" on its first write; tally chose it, so the hint is noise. Only
  // that flag is cleared: tfjs's other warnings still print.
  const b = tf.backend();
  if (b instanceof tf.MathBackendCPU && 'firstUse' in b) (b as unknown as { firstUse: boolean }).firstUse = false;
}

async function notesFor(tfjsBackend: string): Promise<string[]> {
  if (tfjsBackend !== 'wasm') return [];
  const notes = ['threads off: tfjs-backend-wasm runs single-threaded under Node', 'matmul gradients transpose explicitly (no transposeA/transposeB flags)'];
  try {
    notes.push(`SIMD ${(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) ? 'on' : 'off'}`);
  } catch { /* the flag exists only once tfjs-backend-wasm is loaded */ }
  return notes;
}

interface Request { readonly name: BackendName; readonly by: 'prefer' | 'TALLY_BACKEND' }

function parseName(value: string, source: string): BackendName {
  if ((BACKEND_NAMES as readonly string[]).includes(value)) return value as BackendName;
  throw new ValidationError('TRAIN_ERR_BACKEND', `${source} is ${JSON.stringify(value)}, expected one of ${BACKEND_NAMES.join(', ')}`);
}

/** `prefer` wins over `TALLY_BACKEND` (an argument is the more specific request); an empty variable counts as unset. */
function request(prefer: string | undefined): Request | undefined {
  if (prefer !== undefined) return { name: parseName(prefer, 'prefer'), by: 'prefer' };
  const env = process.env['TALLY_BACKEND'];
  if (env !== undefined && env !== '') return { name: parseName(env, 'TALLY_BACKEND'), by: 'TALLY_BACKEND' };
  return undefined;
}

const describeRequest = (r: Request) => (r.by === 'prefer' ? `prefer: '${r.name}'` : `TALLY_BACKEND=${r.name}`);
const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

async function select(candidates: readonly Candidate[], req: Request | undefined, log: (line: string) => void): Promise<BackendInfo> {
  const t0 = performance.now();
  installBatchMatMulGrad();
  const tried = req === undefined ? candidates : candidates.filter((c) => c.name === req.name);
  if (tried.length === 0) {
    throw new TallyError('TRAIN_ERR_BACKEND', `${describeRequest(req!)}: not among the candidates (${candidates.map((c) => c.name).join(', ')})`);
  }
  const skipped: SkippedBackend[] = [];
  for (const c of tried) {
    const t = performance.now();
    let stage: 'load' | 'smoke' = 'load';
    try {
      const tfjsBackend = (await c.load()) ?? c.name;
      stage = 'smoke';
      await activate(tfjsBackend);
      const s = performance.now();
      await smokeTest();
      const smokeMs = performance.now() - s;
      const info: BackendInfo = Object.freeze({
        name: c.name, tfjsBackend, requestedBy: req?.by ?? 'auto', skipped: Object.freeze(skipped),
        notes: Object.freeze(await notesFor(tfjsBackend)), smokeMs, ms: performance.now() - t0,
      });
      log(`backend: ${c.name} (tfjs '${tfjsBackend}') passed its smoke test in ${smokeMs.toFixed(1)} ms${info.notes.length ? `; ${info.notes.join('; ')}` : ''}`);
      return info;
    } catch (e) {
      const reason = stage === 'smoke' ? 'smoke-test-failed' : (e as { code?: unknown })?.code === 'ERR_MODULE_NOT_FOUND' ? 'not-installed' : 'load-failed';
      const message = errorMessage(e);
      const why = reason === 'not-installed' ? message : reason === 'load-failed' ? `failed to load: ${message}` : `failed its smoke test: ${message}`;
      if (req !== undefined) throw new TallyError('TRAIN_ERR_BACKEND', `${describeRequest(req)}: ${why}`, { cause: e });
      skipped.push(Object.freeze({ name: c.name, reason, message, ms: performance.now() - t }));
      log(`backend: skipping ${c.name}: ${why}`);
    }
  }
  throw new TallyError('TRAIN_ERR_BACKEND', `no backend works: ${skipped.map((s) => `${s.name} ${s.reason}: ${s.message}`).join('; ')}`);
}

const selections = new WeakMap<readonly Candidate[], Promise<BackendInfo>>();

/**
 * Chooses the backend, makes it tfjs's active backend and returns what was
 * chosen. Idempotent: later calls with the same candidate list return the
 * same {@link BackendInfo} without loading or testing anything again (and
 * make its backend active again if something switched tfjs away from it).
 *
 * @param o.prefer the backend to use instead of the automatic order; it wins over `TALLY_BACKEND`.
 * @param o.log receives one line per candidate tried (default: nothing is printed).
 * @param o.candidates the backends to try, in order (default {@link BUILTIN_CANDIDATES}); for tests.
 * @returns the chosen backend, why each earlier one was skipped, and the time taken.
 * @throws {ValidationError} TRAIN_ERR_BACKEND when `prefer` or `TALLY_BACKEND` is not a {@link BackendName}.
 * @throws {TallyError} TRAIN_ERR_BACKEND when the requested backend is not installed, fails to load or
 *   fails its smoke test; when no candidate works; or when a backend other than the one already chosen is requested.
 * @example
 * ```ts
 * import { initBackend, tf } from './backend.js';
 * const info = await initBackend({ log: console.error });
 * console.error(`training on ${info.name}`);
 * ```
 */
export async function initBackend(o: { prefer?: BackendName; log?: (line: string) => void; candidates?: readonly Candidate[] } = {}): Promise<BackendInfo> {
  const candidates = o.candidates ?? BUILTIN_CANDIDATES;
  const req = request(o.prefer);
  const pending = selections.get(candidates);
  if (pending === undefined) {
    const p = select(candidates, req, o.log ?? (() => {}));
    selections.set(candidates, p);
    // A failed selection is not remembered: the next call tries again.
    p.catch(() => { if (selections.get(candidates) === p) selections.delete(candidates); });
    return p;
  }
  const info = await pending;
  if (req !== undefined && req.name !== info.name) {
    throw new TallyError('TRAIN_ERR_BACKEND', `${describeRequest(req)}: the backend is already ${info.name} (${info.requestedBy === 'auto' ? 'chosen automatically' : `chosen by ${info.requestedBy}`}) and tally uses one backend per process`);
  }
  if (tf.getBackend() !== info.tfjsBackend) await activate(info.tfjsBackend);
  return info;
}
