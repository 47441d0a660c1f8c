/**
 * A planned round end to end: t..n sites encode with the plan, their inputs
 * are summed mod 2^b by the secure-aggregation accumulator (the server's
 * `maskedSum`, masks omitted: they cancel), and the decoded mean is checked
 * against the true mean of the clipped updates within the error documented
 * in plan.ts and docs/privacy.md §8 (RMS per coordinate γ·√((σ² + v)/k),
 * v ≤ 1/4; checked with 10% slack).
 */
import { expect } from 'chai';
import { maskedSum } from '../../src/crypto/aggregator.js';
import { nativeProvider } from '../../src/crypto/native.js';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { packVector } from '../../src/crypto/vector.js';
import { decodeSum, encodeUpdate } from '../../src/dp/encode.js';
import { encodeParams, planRound } from '../../src/dp/plan.js';
import { checkConfigShape, type SessionConfig } from '../../src/secagg/config.js';
import { validateThreshold } from '../../src/secagg/params.js';

describe('dp/plan with secure aggregation', () => {
  it('plan → encode t..n sites → Σ mod 2^b as secagg sums → decode: the mean within the documented error', () => {
    const [t, n, dim] = [3, 5, 1000];
    const plan = planRound({ kind: 'ddg', clip: 1, dim, threshold: t, clients: n, bits: 16, noiseMultiplier: 0.5 });
    const clientIds = Array.from({ length: n }, (_, i) => i + 1);
    const config: SessionConfig = { ...plan.session, nonce: new Uint8Array(32).fill(7), clientIds, threat: 'semi-honest', graph: { kind: 'complete' } };
    checkConfigShape(config);
    validateThreshold({ n, k: n - 1, t: config.threshold, threat: config.threat });
    expect(config.dim).to.equal(1024);

    const seed = new Uint8Array(32).fill(5);
    const params = encodeParams(plan, seed);
    const rng = new DeterministicRng('plan-secagg');
    // Site i's update has norm 0.4 + 0.3·i: sites 3 and 4 are clipped to C = 1.
    const updates = clientIds.map((id) => {
      const b = new DeterministicRng(`update ${id}`).bytes(dim);
      const x = Float64Array.from(b, (v) => v / 255 - 0.5);
      const norm = Math.sqrt(x.reduce((s, v) => s + v * v, 0));
      return x.map((v) => (v * (0.4 + 0.3 * (id - 1))) / norm);
    });
    const encoded = updates.map((u) => encodeUpdate(u, params, rng));
    for (const e of encoded) expect(e.encoded.length).to.equal(config.dim);
    expect(encoded.map((e) => e.clipped)).to.deep.equal([false, false, true, true, true]);

    const bound = (k: number): number => Math.sqrt((plan.siteSigma2.num / plan.siteSigma2.den + 0.25) / k) / plan.scale;
    for (let k = t; k <= n; k++) {
      const agg = maskedSum(config.dim, config.bits, nativeProvider);
      for (let i = 0; i < k; i++) agg.addInput(packVector(encoded[i]!.encoded, config.bits));
      const mean = decodeSum(agg.result(), plan.dim, params).map((v) => v / k);
      const want = new Float64Array(dim);
      for (let i = 0; i < k; i++) {
        const c = Math.min(1, 1 / encoded[i]!.norm);
        updates[i]!.forEach((v, j) => (want[j]! += (v * c) / k));
      }
      let se = 0;
      mean.forEach((v, j) => (se += (v - want[j]!) ** 2));
      const rms = Math.sqrt(se / dim);
      expect(rms, `k = ${k}`).to.be.below(1.1 * bound(k));
      // The noise is really there: at least the noise alone, γ·σ/√k, less sampling slack.
      expect(rms, `k = ${k}`).to.be.above(0.9 * (plan.siteSigma / plan.scale) / Math.sqrt(k));
    }
  });
});
