/**
 * `tally dp` accounting requests at the edges, run as a process: each ends
 * with a certified figure or a one-line typed refusal (exit 2), never a stack
 * trace, memory exhaustion or a smaller ε. The spawn timeout only catches a
 * runaway (these requests used to run for minutes); speed is measured by
 * `npm run bench -- dp`, not here.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const RUNAWAY_MS = 120_000;
const tally = (...args: string[]): { code: number | null; out: string; err: string; signal: string | null } => {
  // A 1 GiB heap cap makes a runaway fail fast; the PLD's typed arrays (outside the heap) are held by its 2^22-point bound.
  const r = spawnSync(process.execPath, ['--max-old-space-size=1024', MAIN, 'dp', ...args], { encoding: 'utf8', timeout: RUNAWAY_MS });
  return { code: r.status, out: r.stdout, err: r.stderr, signal: r.signal };
};
const eps = (z: string, q: string, steps: string, ...more: string[]): ReturnType<typeof tally> =>
  tally('epsilon', '--mechanism', 'gaussian', '--noise-multiplier', z, '--sampling-rate', q, '--steps', steps, '--delta', '1e-5', ...more);
const json = (r: ReturnType<typeof tally>): Record<string, number> => {
  expect(r.code, r.err).to.equal(0);
  return JSON.parse(r.out) as Record<string, number>;
};
/** A typed refusal: exit 2, one line `tally dp: <CODE>: <message>` on stderr, no stack trace. */
const refused = (r: ReturnType<typeof tally>, code: RegExp): void => {
  expect(r.signal, 'not killed').to.equal(null);
  expect(r.err).to.match(new RegExp(`^tally dp: ${code.source}: [^\\n]+\\n$`));
  expect(r.err).to.not.match(/\n\s+at /);
  expect(r.code, r.err).to.equal(2);
};

describe('cli: tally dp accounting edges', () => {
  it('σ = 0.03, one step: PLD reports ε ≈ 697 (q = 1), not 0, and stays below RDP (721.5)', () => {
    const pld = json(eps('0.03', '1', '1', '--accountant', 'pld', '--json'));
    expect(pld.epsilon).to.be.within(696.7777, 696.8); // exact: 696.77779 (Balle–Wang)
    const rdp = json(eps('0.03', '1', '1', '--json'));
    expect(rdp.epsilon).to.be.within(721.5, 721.6);
  });

  it('σ from 0.01 to 0.03 at q = 0.01: PLD reports ε from 5303 down to 653 (exact 5303.433, 653.002), not 0.018', () => {
    const at = (z: string): number => json(eps(z, '0.01', '1', '--accountant', 'pld', '--json')).epsilon!;
    expect(at('0.01')).to.be.within(5303.433, 5304);
    expect(at('0.02')).to.be.within(1000, 5303);
    expect(at('0.03')).to.be.within(653.002, 653.03);
  });

  it('σ = 0.0001 and 0.001 at q = 0.5, 3 steps: a one-line DP_ERR_ACCOUNTING_LIMIT naming the RDP accountant', () => {
    for (const z of ['0.0001', '0.001']) {
      const r = eps(z, '0.5', '3', '--accountant', 'pld');
      refused(r, /DP_ERR_ACCOUNTING_LIMIT/);
      expect(r.err).to.match(/2\^22/).and.match(/RDP accountant/);
    }
  });

  it('1e9 steps (σ = 1, q = 0.01): PLD composes by squaring and reports a figure between half of RDP and RDP', () => {
    const rdp = json(eps('1', '0.01', '1e9', '--json')).epsilon!;
    expect(rdp).to.be.within(92526, 92527);
    const pld = json(eps('1', '0.01', '1e9', '--accountant', 'pld', '--json')).epsilon!;
    expect(pld).to.be.within(rdp / 2, rdp);
  });

  it('calibrate ε = 500 with PLD: a noise multiplier (≈ 0.0347) whose ε is at most 500', () => {
    const c = json(tally('calibrate', '--epsilon', '500', '--delta', '1e-5', '--sampling-rate', '0.01', '--steps', '1', '--accountant', 'pld', '--json'));
    expect(c.noiseMultiplier).to.be.within(0.0345, 0.035);
    expect(c.epsilon).to.be.at.most(500);
    const check = json(eps(String(c.noiseMultiplier), '0.01', '1', '--accountant', 'pld', '--json'));
    expect(check.epsilon).to.be.at.most(500);
  });

  it('calibrate with a target no noise in [1e-3, 1e6] reaches: DP_ERR_UNREACHABLE at once', () => {
    const r = tally('calibrate', '--epsilon', '0.001', '--delta', '1e-10', '--sampling-rate', '1', '--steps', '1000000', '--accountant', 'pld');
    refused(r, /DP_ERR_UNREACHABLE/);
  });
});
