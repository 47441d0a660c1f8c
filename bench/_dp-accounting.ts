/**
 * Accountant timings for the dp bench: RDP and PLD accounting of `steps`
 * steps of the Poisson-subsampled Gaussian (q = 0.01, σ = 1.1, δ = 1e-5, the
 * DP-SGD setting of Abadi et al. 2016), each from a fresh accountant; and the
 * same at 10^9 steps, where PLD composes by repeated squaring on a grid
 * planned to fit its bound.
 */
import { sampledGaussian } from '../src/dp/events.js';
import { PldAccountant } from '../src/dp/pld.js';
import { RdpAccountant } from '../src/dp/rdp.js';

const LONG = 1e9;

/** Seconds and ε of both accountants for `n` steps. */
function run(n: number): { rdpS: number; pldS: number; rdp: number; pld: number } {
  const ev = sampledGaussian(1.1, 0.01, n);
  let t = performance.now();
  const rdp = new RdpAccountant().compose(ev).getEpsilon(1e-5).epsilon;
  const rdpS = (performance.now() - t) / 1000;
  t = performance.now();
  const pld = new PldAccountant().compose(ev).getEpsilon(1e-5);
  const pldS = (performance.now() - t) / 1000;
  return { rdpS, pldS, rdp, pld };
}

/**
 * Seconds taken by the RDP and the PLD accountant (keys `rdp_s`, `pld_s`) and
 * the ε each reports, for `steps` steps and (keys `long_*`) for 10^9 steps.
 */
export async function benchAccountants(steps: number): Promise<Record<string, number>> {
  const a = run(steps);
  const b = run(LONG);
  return {
    steps, rdp_s: a.rdpS, pld_s: a.pldS, rdp_epsilon: a.rdp, pld_epsilon: a.pld,
    long_steps: LONG, long_rdp_s: b.rdpS, long_pld_s: b.pldS, long_rdp_epsilon: b.rdp, long_pld_epsilon: b.pld,
  };
}
