/**
 * `tally dp`, run as a process: output formats and exit statuses.
 * Reference value: Opacus `accountants_test.py::test_rdp_accountant` (ε = 7.32911117143).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const tally = (...args: string[]): { code: number | null; out: string; err: string } => {
  const r = spawnSync(process.execPath, [MAIN, 'dp', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const base = ['--noise-multiplier', '1.5', '--sampling-rate', '0.04', '--steps', '2250', '--delta', '1e-5'];

describe('cli: tally dp', () => {
  it('epsilon --json (RDP) prints epsilon, accountant, order and conversion', () => {
    const r = tally('epsilon', '--mechanism', 'gaussian', ...base, '--json');
    expect(r.code).to.equal(0);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    expect(Math.abs((j.epsilon as number) - 7.32911117143) / 7.32911117143).to.be.below(1e-6); // the optimum, 3.9, is in both order lists
    expect(j).to.include({ accountant: 'rdp', order: 3.9, conversion: 'improved' });
  });

  it('epsilon with the PLD accountant and the classic conversion; human-readable output', () => {
    const pld = JSON.parse(tally('epsilon', '--mechanism', 'gaussian', ...base, '--accountant', 'pld', '--json').out) as { epsilon: number; accountant: string };
    expect(pld.accountant).to.equal('pld');
    expect(pld.epsilon).to.be.within(6.76, 6.78);
    const classic = JSON.parse(tally('epsilon', '--mechanism', 'gaussian', ...base, '--conversion', 'classic', '--json').out) as { epsilon: number };
    expect(classic.epsilon).to.be.above(7.33);
    const text = tally('epsilon', '--mechanism', 'gaussian', ...base);
    expect(text.out).to.match(/^epsilon = 7\.329\d* at delta = 0\.00001 \(rdp, order 3\.9, improved conversion\)\n$/);
  });

  it('ddg and skellam take the distributed parameters', () => {
    const args = ['--noise-multiplier', '1', '--sampling-rate', '1', '--steps', '10', '--delta', '1e-5', '--clip', '1', '--dim', '1024', '--clients', '10', '--scale', '100', '--beta', '0.6', '--json'];
    const ddg = JSON.parse(tally('epsilon', '--mechanism', 'ddg', ...args).out) as { epsilon: number };
    const sk = JSON.parse(tally('epsilon', '--mechanism', 'skellam', ...args).out) as { epsilon: number };
    const g = JSON.parse(tally('epsilon', '--mechanism', 'gaussian', '--noise-multiplier', '1', '--sampling-rate', '1', '--steps', '10', '--delta', '1e-5', '--json').out) as { epsilon: number };
    expect(ddg.epsilon).to.be.above(g.epsilon); // rounding inflates the sensitivity
    expect(sk.epsilon).to.be.above(g.epsilon);
    expect(tally('epsilon', '--mechanism', 'ddg', ...args.filter((a) => a !== '--scale' && a !== '100')).err).to.match(/missing --scale/);
  });

  it('ddg and skellam choose the scale from --bits when --scale is absent, and refuse a width that would wrap', () => {
    const dist = ['--noise-multiplier', '10', '--sampling-rate', '1', '--steps', '100', '--delta', '1e-5', '--clip', '1', '--dim', '100000', '--clients', '80'];
    const chosen = JSON.parse(tally('epsilon', '--mechanism', 'ddg', ...dist, '--bits', '20', '--cohort', '100', '--json').out) as { epsilon: number; scale: number };
    const gaussian = JSON.parse(tally('epsilon', '--mechanism', 'gaussian', '--noise-multiplier', '10', '--sampling-rate', '1', '--steps', '100', '--delta', '1e-5', '--json').out) as { epsilon: number };
    // A well-chosen scale makes the distributed discrete Gaussian cost barely more than the continuous one.
    expect(chosen.epsilon).to.be.above(gaussian.epsilon);
    expect(chosen.epsilon).to.be.below(gaussian.epsilon * 1.01);
    // The same scale given explicitly gives the same ε.
    const explicit = JSON.parse(tally('epsilon', '--mechanism', 'ddg', ...dist, '--scale', String(chosen.scale), '--json').out) as { epsilon: number };
    expect(explicit.epsilon).to.equal(chosen.epsilon);
    // More bits allow a finer scale and a smaller rounding penalty.
    const wide = JSON.parse(tally('epsilon', '--mechanism', 'ddg', ...dist, '--bits', '24', '--json').out) as { epsilon: number; scale: number };
    expect(wide.scale).to.be.above(chosen.scale);
    const narrow = tally('epsilon', '--mechanism', 'ddg', ...dist.map((x) => (x === '100000' ? '1000000' : x)), '--bits', '8');
    expect(narrow.code).to.equal(2);
    expect(narrow.err).to.match(/DP_ERR_WRAP_RISK/);
    const missing = tally('epsilon', '--mechanism', 'ddg', ...dist);
    expect(missing.code).to.equal(2);
    expect(missing.err).to.match(/missing --scale \(or --bits/);
  });

  it('calibrate prints the smallest noise multiplier (Opacus: 1.3562 for ε=8, 2000 steps)', () => {
    const r = tally('calibrate', '--epsilon', '8', '--delta', '1e-5', '--sampling-rate', '0.04', '--steps', '2000', '--json');
    expect(r.code).to.equal(0);
    const j = JSON.parse(r.out) as { noiseMultiplier: number; epsilon: number };
    expect(j.noiseMultiplier).to.be.closeTo(1.3562, 5e-4);
    expect(j.epsilon).to.be.at.most(8);
  });

  const bad: [string, string[], RegExp][] = [
    ['δ ≥ 1', ['epsilon', '--mechanism', 'gaussian', '--noise-multiplier', '1', '--sampling-rate', '0.1', '--steps', '1', '--delta', '1'], /--delta must be in \(0, 1\)/],
    ['q = 0', ['epsilon', '--mechanism', 'gaussian', '--noise-multiplier', '1', '--sampling-rate', '0', '--steps', '1', '--delta', '1e-5'], /--sampling-rate must be in \(0, 1\]/],
    ['q > 1', ['calibrate', '--epsilon', '1', '--sampling-rate', '1.5', '--steps', '1', '--delta', '1e-5'], /--sampling-rate/],
    ['negative noise', ['epsilon', '--mechanism', 'gaussian', '--noise-multiplier', '-1', '--sampling-rate', '0.1', '--steps', '1', '--delta', '1e-5'], /--noise-multiplier must be >= 0, got -1/],
    ['unknown option', ['epsilon', '--mechanism', 'gaussian', '--sigma', '1'], /Unknown option '--sigma'/],
    ['PLD for a discrete mechanism', ['epsilon', '--mechanism', 'discrete-gaussian', '--noise-multiplier', '1', '--sampling-rate', '0.1', '--steps', '1', '--delta', '1e-5', '--accountant', 'pld'], /supports only --mechanism gaussian/],
    ['ddg flag on gaussian', ['epsilon', '--mechanism', 'gaussian', '--noise-multiplier', '1', '--sampling-rate', '0.1', '--steps', '1', '--delta', '1e-5', '--clip', '1'], /--clip applies only to/],
    ['non-integer steps', ['epsilon', '--mechanism', 'gaussian', '--noise-multiplier', '1', '--sampling-rate', '0.1', '--steps', '2.5', '--delta', '1e-5'], /--steps expected a positive integer/],
  ];
  for (const [name, args, re] of bad) {
    it(`bad parameters exit 2 with a one-line error: ${name}`, () => {
      const r = tally(...args);
      expect(r.code).to.equal(2);
      expect(r.out).to.equal('');
      expect(r.err).to.match(re);
      expect(r.err.trim().split('\n')).to.have.length(1);
    });
  }

  it('--help exits 0', () => {
    expect(tally('epsilon', '--help').code).to.equal(0);
    expect(tally('--help').out).to.match(/calibrate/);
  });
});
