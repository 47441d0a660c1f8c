/**
 * Backend selection with fake candidates (not installed, broken at load, a
 * wrong or leaking matmul, working), the real candidates on this machine,
 * TALLY_BACKEND, and the BatchMatMul gradient that tally registers: equal to
 * tfjs-core's, correct with broadcast batches, flat in tensor count, and its
 * wasm speed-up (logged, not asserted).
 */
import { expect } from 'chai';
import { TallyError, ValidationError } from '../../src/errors.js';
import { BUILTIN_CANDIDATES, initBackend, tf, type BackendName, type Candidate } from '../../src/training/backend.js';
import { withStockBatchMatMulGrad } from '../../src/training/_wasm-matmul-grad.js';

const NODE_HINT = /looks like you are running TensorFlow\.js in Node\.js/;
const leaked: tf.Tensor[] = [];

/**
 * Leaves tfjs's active backend as it was found, for the test files that run
 * after this one in the same process (none set: tfjs's own default, cpu).
 */
function keepActiveBackend(): void {
  let found: string | null = null;
  before(() => {
    found = tf.getBackend();
  });
  after(async () => {
    await tf.setBackend(found ?? 'cpu');
  });
}

/** A tfjs backend named `name` made of the cpu kernels, with its matmul made wrong or leaky on request. */
function registerFake(name: string, matmul: 'right' | 'wrong' | 'leaks' = 'right'): void {
  tf.registerBackend(name, () => new tf.MathBackendCPU());
  tf.copyRegisteredKernels('cpu', name);
  if (matmul === 'right') return;
  const cpu = tf.getKernel('BatchMatMul', 'cpu')!;
  tf.unregisterKernel('BatchMatMul', name);
  tf.registerKernel({
    kernelName: 'BatchMatMul',
    backendName: name,
    kernelFunc: (args) => {
      const out = cpu.kernelFunc(args) as tf.TensorInfo;
      if (matmul === 'wrong') {
        const data = (args.backend as unknown as { data: { get(id: object): { values: Float32Array } } }).data;
        data.get(out.dataId).values[0]! += 1;
      } else {
        leaked.push(tf.keep(tf.scalar(0)));
      }
      return out;
    },
  });
}

type Counted = Candidate & { calls: number };
function counted(name: BackendName, load: () => Promise<void | string>): Counted {
  const c: Counted = { name, calls: 0, load: async () => { c.calls++; return load(); } };
  return c;
}
const notInstalled = async (): Promise<never> => {
  throw Object.assign(new Error("Cannot find package '@example/absent' imported from here"), { code: 'ERR_MODULE_NOT_FOUND' });
};
const throwsAtLoad = async (): Promise<never> => {
  throw new Error('native binding failed to load');
};
const backend = (tfjsName: string) => async () => tfjsName;

async function rejection(p: Promise<unknown>): Promise<TallyError> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(TallyError);
    return e as TallyError;
  }
  throw new Error('expected a rejection');
}

describe('training/backend: initBackend', () => {
  keepActiveBackend();
  const savedEnv = process.env['TALLY_BACKEND'];
  before(() => {
    delete process.env['TALLY_BACKEND'];
    registerFake('fake-ok');
    registerFake('fake-wrong', 'wrong');
    registerFake('fake-leaks', 'leaks');
  });
  afterEach(() => {
    delete process.env['TALLY_BACKEND'];
  });
  after(async () => {
    if (savedEnv === undefined) delete process.env['TALLY_BACKEND'];
    else process.env['TALLY_BACKEND'] = savedEnv;
    for (const name of ['fake-ok', 'fake-wrong', 'fake-leaks', 'fake-fresh']) if (tf.findBackendFactory(name)) tf.removeBackend(name);
    tf.dispose(leaked);
  });

  it('uses the first real candidate that passes (wasm here) and says why each earlier one was skipped', async () => {
    const lines: string[] = [];
    const info = await initBackend({ log: (l) => lines.push(l) });
    const order = BUILTIN_CANDIDATES.map((c) => c.name);
    expect(info.skipped.map((s) => s.name)).to.deep.equal(order.slice(0, order.indexOf(info.name)));
    // tfjs-backend-wasm is a dependency, so the plain-JavaScript cpu backend is never needed.
    expect(info.name).to.not.equal('cpu');
    expect(info.requestedBy).to.equal('auto');
    expect(tf.getBackend()).to.equal(info.tfjsBackend);
    for (const s of info.skipped) expect(s.reason, `${s.name}: ${s.message}`).to.be.oneOf(['not-installed', 'load-failed', 'smoke-test-failed']);
    if (info.name === 'wasm') {
      expect(info.tfjsBackend).to.equal('wasm');
      expect(info.notes.join('; ')).to.match(/threads off/);
      for (const s of info.skipped) expect(s.reason).to.equal('not-installed');
      expect(info.skipped.map((s) => s.message)).to.deep.equal([
        '@tensorflow/tfjs-node-gpu is not installed', '@tensorflow/tfjs-node is not installed', 'webgpu is not installed',
      ]);
    }
    expect(lines).to.have.length(info.skipped.length + 1);
    console.log(`      backend: ${info.name}, smoke test ${info.smokeMs.toFixed(1)} ms, selection ${info.ms.toFixed(1)} ms`);
  });

  it('is idempotent: a second call returns the same info without loading or testing again', async () => {
    const wasm = counted('wasm', backend('fake-ok'));
    const list = [wasm];
    const first = await initBackend({ candidates: list });
    const second = await initBackend({ candidates: list });
    expect(second).to.equal(first);
    expect(wasm.calls).to.equal(1);
    expect(await initBackend()).to.equal(await initBackend());
  });

  it('tries the candidates in order, skipping one not installed, one that throws at load and one with a wrong matmul', async () => {
    const cpu = counted('cpu', backend('cpu'));
    const info = await initBackend({
      candidates: [
        { name: 'tensorflow-gpu', load: notInstalled },
        { name: 'tensorflow', load: throwsAtLoad },
        { name: 'webgpu', load: backend('fake-wrong') },
        { name: 'wasm', load: backend('fake-ok') },
        cpu,
      ],
    });
    expect(info.name).to.equal('wasm');
    expect(info.tfjsBackend).to.equal('fake-ok');
    expect(tf.getBackend()).to.equal('fake-ok');
    expect(info.skipped.map((s) => [s.name, s.reason])).to.deep.equal([
      ['tensorflow-gpu', 'not-installed'], ['tensorflow', 'load-failed'], ['webgpu', 'smoke-test-failed'],
    ]);
    expect(info.skipped[1]!.message).to.equal('native binding failed to load');
    expect(info.skipped[2]!.message).to.match(/^dL\/dX\[\d+\] is .*, expected .* \(plain JavaScript\)$/);
    expect(cpu.calls, 'a later candidate is never loaded').to.equal(0);
  });

  it('respects the order given: the first working candidate wins even when a later one works too', async () => {
    const later = counted('wasm', backend('fake-ok'));
    const info = await initBackend({ candidates: [{ name: 'cpu', load: backend('cpu') }, later] });
    expect(info.name).to.equal('cpu');
    expect(later.calls).to.equal(0);
  });

  it('fails the smoke test of a backend that leaks tensors', async () => {
    const info = await initBackend({ candidates: [{ name: 'webgpu', load: backend('fake-leaks') }, { name: 'cpu', load: backend('cpu') }] });
    expect(info.name).to.equal('cpu');
    expect(info.skipped[0]!.reason).to.equal('smoke-test-failed');
    expect(info.skipped[0]!.message).to.match(/^it leaked \d+ tensor\(s\)$/);
  });

  it('TALLY_BACKEND picks that backend out of order, loading no other', async () => {
    process.env['TALLY_BACKEND'] = 'cpu';
    const first = counted('wasm', backend('fake-ok'));
    const info = await initBackend({ candidates: [first, { name: 'cpu', load: backend('cpu') }] });
    expect([info.name, info.tfjsBackend, info.requestedBy]).to.deep.equal(['cpu', 'cpu', 'TALLY_BACKEND']);
    expect(info.skipped).to.deep.equal([]);
    expect(first.calls).to.equal(0);
  });

  it('TALLY_BACKEND naming a backend that fails its smoke test is an error, never a fallback', async () => {
    process.env['TALLY_BACKEND'] = 'webgpu';
    const fallback = counted('wasm', backend('fake-ok'));
    const e = await rejection(initBackend({ candidates: [{ name: 'webgpu', load: backend('fake-wrong') }, fallback] }));
    expect(e.code).to.equal('TRAIN_ERR_BACKEND');
    expect(e.message).to.match(/^TALLY_BACKEND=webgpu: failed its smoke test: dL\/dX\[\d+\]/);
    expect(fallback.calls).to.equal(0);
  });

  it('TALLY_BACKEND naming a backend that is not installed or throws at load is an error', async () => {
    process.env['TALLY_BACKEND'] = 'tensorflow';
    const e1 = await rejection(initBackend({ candidates: [{ name: 'tensorflow', load: notInstalled }, { name: 'cpu', load: backend('cpu') }] }));
    expect([e1.code, e1.message]).to.deep.equal(['TRAIN_ERR_BACKEND', "TALLY_BACKEND=tensorflow: Cannot find package '@example/absent' imported from here"]);
    const e2 = await rejection(initBackend({ candidates: [{ name: 'tensorflow', load: throwsAtLoad }] }));
    expect(e2.message).to.equal('TALLY_BACKEND=tensorflow: failed to load: native binding failed to load');
  });

  it('TALLY_BACKEND=tensorflow with the real candidates errors when @tensorflow/tfjs-node is not installed', async function () {
    try {
      import.meta.resolve('@tensorflow/tfjs-node');
      this.skip();
    } catch { /* not installed: the case under test */ }
    process.env['TALLY_BACKEND'] = 'tensorflow';
    const e = await rejection(initBackend({ candidates: [...BUILTIN_CANDIDATES] }));
    expect([e.code, e.message]).to.deep.equal(['TRAIN_ERR_BACKEND', 'TALLY_BACKEND=tensorflow: @tensorflow/tfjs-node is not installed']);
  });

  it('TALLY_BACKEND=cpu with the real candidates runs on cpu, quietly', async () => {
    process.env['TALLY_BACKEND'] = 'cpu';
    const info = await initBackend({ candidates: [...BUILTIN_CANDIDATES] });
    expect([info.name, info.tfjsBackend, tf.getBackend()]).to.deep.equal(['cpu', 'cpu', 'cpu']);
    console.log(`      backend: cpu, smoke test ${info.smokeMs.toFixed(1)} ms`);
  });

  it('rejects a TALLY_BACKEND or prefer that is not a backend name', async () => {
    process.env['TALLY_BACKEND'] = 'gpu';
    const e = await rejection(initBackend({ candidates: [{ name: 'cpu', load: backend('cpu') }] }));
    expect(e).to.be.instanceOf(ValidationError);
    expect([e.code, e.message]).to.deep.equal(['TRAIN_ERR_BACKEND', 'TALLY_BACKEND is "gpu", expected one of tensorflow-gpu, tensorflow, webgpu, wasm, cpu']);
    delete process.env['TALLY_BACKEND'];
    const e2 = await rejection(initBackend({ prefer: 'GPU' as BackendName }));
    expect([e2.code, e2.message]).to.deep.equal(['TRAIN_ERR_BACKEND', 'prefer is "GPU", expected one of tensorflow-gpu, tensorflow, webgpu, wasm, cpu']);
  });

  it('an empty TALLY_BACKEND counts as unset', async () => {
    process.env['TALLY_BACKEND'] = '';
    const info = await initBackend({ candidates: [{ name: 'wasm', load: backend('fake-ok') }] });
    expect(info.requestedBy).to.equal('auto');
  });

  it('prefer wins over TALLY_BACKEND and, like it, never falls back', async () => {
    process.env['TALLY_BACKEND'] = 'wasm';
    const info = await initBackend({ prefer: 'cpu', candidates: [{ name: 'wasm', load: backend('fake-ok') }, { name: 'cpu', load: backend('cpu') }] });
    expect([info.name, info.requestedBy]).to.deep.equal(['cpu', 'prefer']);
    const e = await rejection(initBackend({ prefer: 'webgpu', candidates: [{ name: 'webgpu', load: backend('fake-wrong') }, { name: 'cpu', load: backend('cpu') }] }));
    expect(e.message).to.match(/^prefer: 'webgpu': failed its smoke test/);
  });

  it('errors when the requested backend is not among the candidates, or when none works', async () => {
    const e1 = await rejection(initBackend({ prefer: 'webgpu', candidates: [{ name: 'cpu', load: backend('cpu') }] }));
    expect([e1.code, e1.message]).to.deep.equal(['TRAIN_ERR_BACKEND', "prefer: 'webgpu': not among the candidates (cpu)"]);
    const e2 = await rejection(initBackend({ candidates: [{ name: 'webgpu', load: backend('fake-wrong') }, { name: 'cpu', load: throwsAtLoad }] }));
    expect(e2.code).to.equal('TRAIN_ERR_BACKEND');
    expect(e2.message).to.match(/^no backend works: webgpu smoke-test-failed: dL\/dX.*; cpu load-failed: native binding failed to load$/);
  });

  it('a later call asking for another backend than the one chosen is an error, not a switch', async () => {
    const list: Candidate[] = [{ name: 'wasm', load: backend('fake-ok') }, { name: 'cpu', load: backend('cpu') }];
    await initBackend({ candidates: list });
    const e = await rejection(initBackend({ candidates: list, prefer: 'cpu' }));
    expect(e.message).to.equal("prefer: 'cpu': the backend is already wasm (chosen automatically) and tally uses one backend per process");
    expect(tf.getBackend()).to.equal('fake-ok');
    expect((await initBackend({ candidates: list, prefer: 'wasm' })).name).to.equal('wasm');
  });

  it('forgets a failed selection, so a later call tries again', async () => {
    let broken = true;
    const list: Candidate[] = [{ name: 'cpu', load: async () => { if (broken) throw new Error('not yet'); return 'cpu'; } }];
    await rejection(initBackend({ candidates: list }));
    broken = false;
    expect((await initBackend({ candidates: list })).name).to.equal('cpu');
  });

  it('makes the chosen backend active again when something switched tfjs away from it', async () => {
    const info = await initBackend();
    await tf.setBackend('cpu');
    expect(await initBackend()).to.equal(info);
    expect(tf.getBackend()).to.equal(info.tfjsBackend);
  });

  it('silences only the cpu backend\'s "install tfjs-node" hint, not tfjs\'s warnings', async () => {
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (...a: unknown[]) => { warnings.push(a.join(' ')); };
    try {
      // Control: a fresh cpu backend used directly prints the hint on its first write.
      const raw = new tf.MathBackendCPU();
      raw.write(new Float32Array(1), [1], 'float32');
      raw.dispose();
      expect(warnings.join('\n')).to.match(NODE_HINT);
      warnings.length = 0;
      registerFake('fake-fresh');
      const info = await initBackend({ candidates: [{ name: 'cpu', load: backend('fake-fresh') }] });
      expect(info.tfjsBackend).to.equal('fake-fresh');
      tf.tidy(() => tf.add(tf.ones([2]), 1).dataSync());
      expect(warnings.join('\n')).to.not.match(NODE_HINT);
    } finally {
      console.warn = warn;
    }
    expect(console.warn).to.equal(warn);
    expect([tf.env().getBool('PROD'), tf.env().getBool('IS_TEST')]).to.deep.equal([false, false]);
  });
});

/** Gradients of Σ R ⊙ f(a, b) for a fixed random R, as arrays. */
function gradsOf(f: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, a: tf.Tensor, b: tf.Tensor): Float32Array[] {
  return tf.tidy(() => {
    const r = tf.randomUniform(f(a, b).shape, -1, 1, 'float32', 7);
    return tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(f(x, y), r)))([a, b]).map((g) => g.dataSync() as Float32Array);
  });
}

function expectClose(got: Float32Array[], want: Float32Array[], label: string): void {
  for (let i = 0; i < want.length; i++) {
    expect(got[i]!.length, label).to.equal(want[i]!.length);
    const scale = Math.max(1, ...want[i]!.map(Math.abs));
    for (let j = 0; j < want[i]!.length; j++) {
      expect(Math.abs(got[i]![j]! - want[i]![j]!), `${label}: gradient ${i}[${j}]`).to.be.at.most(1e-5 * scale);
    }
  }
}

const shaped = (shape: number[], seed: number) => tf.randomUniform(shape, -1, 1, 'float32', seed);
/** Operand shapes for op(a)·op(b) = [..., M, N] with M = 5, K = 7, N = 3. */
const opShapes = (batchA: number[], batchB: number[], ta: boolean, tb: boolean) => [
  [...batchA, ...(ta ? [7, 5] : [5, 7])], [...batchB, ...(tb ? [3, 7] : [7, 3])],
];
const FLAGS: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];

describe('training/backend: the BatchMatMul gradient', () => {
  keepActiveBackend();
  before(async () => {
    await initBackend();
  });

  for (const name of ['wasm', 'cpu']) {
    for (const batch of [[], [4], [2, 3]]) {
      it(`equals tfjs-core's on ${name}, rank ${batch.length + 2}, all four transpose combinations`, async () => {
        await tf.setBackend(name);
        for (const [ta, tb] of FLAGS) {
          const [sa, sb] = opShapes(batch, batch, ta, tb);
          const a = shaped(sa!, 1), b = shaped(sb!, 2);
          const f = (x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, ta, tb);
          const stock = withStockBatchMatMulGrad(() => gradsOf(f, a, b));
          expectClose(gradsOf(f, a, b), stock, `transposeA=${ta} transposeB=${tb}`);
          tf.dispose([a, b]);
        }
      });
    }
  }

  for (const name of ['wasm', 'cpu']) {
    it(`sums broadcast batch dimensions back to each input's shape on ${name} (tfjs-core's gradient throws there)`, async () => {
      await tf.setBackend(name);
      // Only broadcasts that tfjs's kernels compute right in the forward pass: one
      // flattened batch 1, or one batch a suffix of the other ([2, 1]·[3] is not).
      const cases: [number[], number[]][] = [[[8], []], [[], [2]], [[1], [4]], [[4], [1]], [[2, 3], [3]], [[3], [2, 3]], [[2, 3], [1, 3]]];
      for (const [ba, bb] of cases) {
        for (const [ta, tb] of FLAGS) {
          const [sa, sb] = opShapes(ba, bb, ta, tb);
          const a = shaped(sa!, 3), b = shaped(sb!, 4);
          const label = `[${sa}]·[${sb}] transposeA=${ta} transposeB=${tb}`;
          const out = tf.broadcast_util.assertAndGetBroadcastShape(ba, bb);
          // Reference: broadcast both operands explicitly; tf.broadcastTo's own gradient sums.
          const full = (x: tf.Tensor, y: tf.Tensor) =>
            tf.matMul(tf.broadcastTo(x, [...out, ...x.shape.slice(-2)]), tf.broadcastTo(y, [...out, ...y.shape.slice(-2)]), ta, tb);
          const want = withStockBatchMatMulGrad(() => gradsOf(full, a, b));
          const got = gradsOf((x, y) => tf.matMul(x, y, ta, tb), a, b);
          expectClose(got, want, label);
          tf.dispose([a, b]);
        }
      }
      const [a, b] = [shaped([8, 5, 7], 5), shaped([7, 3], 6)];
      expect(() => withStockBatchMatMulGrad(() => gradsOf((x, y) => tf.matMul(x, y), a, b))).to.throw(/does not match the shape of the input/);
      tf.dispose([a, b]);
    });
  }

  it('keeps tf.memory().numTensors flat over 20 training steps on wasm (tf.tidy and optimizer.minimize)', async () => {
    const info = await initBackend();
    if (info.tfjsBackend !== 'wasm') await tf.setBackend('wasm');
    const x = shaped([4, 16, 32], 8);
    const w1 = tf.variable(tf.mul(shaped([32, 24], 9), 0.1));
    const w2 = tf.variable(tf.mul(shaped([8, 24], 10), 0.1));
    const loss = () => tf.mean(tf.square(tf.matMul(tf.tanh(tf.matMul(x, w1)), w2, false, true))) as tf.Scalar;
    const tidyCounts: number[] = [];
    for (let i = 0; i < 20; i++) {
      tf.tidy(() => {
        const { grads } = tf.variableGrads(loss, [w1, w2]);
        w1.assign(tf.sub(w1, tf.mul(grads[w1.name]!, 0.01)));
        w2.assign(tf.sub(w2, tf.mul(grads[w2.name]!, 0.01)));
      });
      tidyCounts.push(tf.memory().numTensors);
    }
    const opt = tf.train.adam(1e-3);
    const minimizeCounts: number[] = [];
    for (let i = 0; i < 20; i++) {
      opt.minimize(loss, true, [w1, w2])?.dispose();
      minimizeCounts.push(tf.memory().numTensors);
    }
    expect(tidyCounts, 'tf.tidy steps').to.deep.equal(new Array(20).fill(tidyCounts[0]));
    // Adam creates its moment variables on its first step.
    expect(minimizeCounts, 'optimizer.minimize steps').to.deep.equal(new Array(20).fill(minimizeCounts[0]));
    opt.dispose();
    tf.dispose([x, w1, w2]);
  });

  it('measures the wasm backward pass of [8,128,256]·[256,768] against tfjs-core (logged, not asserted)', async function () {
    this.timeout(300_000);
    await tf.setBackend('wasm');
    const a3 = shaped([8, 128, 256], 11), b = shaped([256, 768], 12);
    const a2 = tf.reshape(a3, [1024, 256]);
    const loss = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y)));
    const median = (run: () => tf.Tensor | tf.Tensor[]) => {
      tf.dispose(tf.tidy(run)); // warm-up
      const ms: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        const r = tf.tidy(run);
        for (const g of [r].flat()) g.dataSync();
        ms.push(performance.now() - t);
        tf.dispose(r);
      }
      return ms.sort((p, q) => p - q)[2]!;
    };
    const fwd3 = median(() => loss(a3, b)), fwd2 = median(() => loss(a2, b));
    const ours3 = median(() => tf.grads(loss)([a3, b])) - fwd3;
    const ours2 = median(() => tf.grads(loss)([a2, b])) - fwd2;
    const stock2 = withStockBatchMatMulGrad(() => median(() => tf.grads(loss)([a2, b]))) - fwd2;
    const load = (await import('node:os')).loadavg()[0]!.toFixed(2);
    console.log(`      wasm backward (fwd+bwd − fwd, median of 5; load ${load}): tfjs-core's gradient cannot take [8,128,256]·[256,768] (broadcast); ` +
      `on the same product as [1024,256]·[256,768] it takes ${stock2.toFixed(1)} ms; tally's ${ours2.toFixed(1)} ms there ` +
      `(${(stock2 / ours2).toFixed(1)}×) and ${ours3.toFixed(1)} ms on [8,128,256]·[256,768] (${(stock2 / ours3).toFixed(1)}×); ` +
      `forward ${fwd2.toFixed(1)} ms as 2-D, ${fwd3.toFixed(1)} ms as rank 3`);
    tf.dispose([a3, a2, b]);
  });
});
