/**
 * Accountant timings for the dp bench: RDP and PLD accounting of `steps`
 * steps of the Poisson-subsampled Gaussian (q = 0.01, σ = 1.1, δ = 1e-5, the
 * DP-SGD setting of Abadi et al. 2016), each from a fresh accountant.
 */
import { sampledGaussian } from '../src/dp/events.js';
import { PldAccountant } from '../src/dp/pld.js';
import { RdpAccountant } from '../src/dp/rdp.js';

/** Seconds taken by the RDP and the PLD accountant (keys `rdp_s`, `pld_s`) and the ε each reports. */
export async function benchAccountants(steps: number): Promise<Record<string, number>> {
  const ev = sampledGaussian(1.1, 0.01, steps);
  let t = performance.now();
  const rdp = new RdpAccountant().compose(ev).getEpsilon(1e-5).epsilon;
  const rdpS = (performance.now() - t) / 1000;
  t = performance.now();
  const pld = new PldAccountant().compose(ev).getEpsilon(1e-5);
  const pldS = (performance.now() - t) / 1000;
  return { steps, rdp_s: rdpS, pld_s: pldS, rdp_epsilon: rdp, pld_epsilon: pld };
}
