/**
 * `tally dp`, run as a process: output formats and exit statuses.
 * Reference value: Opacus `accountants_test.py::test_rdp_accountant` (ε = 7.32911117143).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/cli/dp.js';

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

  // tally dp epsilon --mechanism ddg … --dim 1025 reported ε = 154.6: the accountant was told the unpadded dimension.
  const example = ['--mechanism', 'ddg', '--noise-multiplier', '1', '--sampling-rate', '1', '--steps', '10', '--delta', '1e-5', '--clip', '1', '--threshold', '10', '--bits', '20', '--scale', '4'];

  it('a padded dimension is accounted at its padded length: --dim 1025 and 2048 give the same ε', () => {
    const at = (dim: string) => JSON.parse(tally('epsilon', ...example, '--dim', dim, '--json').out) as { epsilon: number; paddedDim: number; siteSigma2: unknown; scale: number };
    const [padded, exact] = [at('1025'), at('2048')];
    expect(padded).to.deep.equal(exact);
    expect(padded.paddedDim).to.equal(2048);
    expect(padded.epsilon).to.be.closeTo(261.3546, 1e-3);
    // σ² = (z·C·S)²/t = 1.6, rounded up onto the sampler grid: what the encoder draws from.
    expect(padded.siteSigma2).to.deep.equal({ num: 104858, den: 65536 });
    expect(tally('epsilon', ...example, '--dim', '1025').out).to.match(/^epsilon = 261\.354\d* at delta = 0\.00001 \(rdp, order 1\.3, improved conversion; scale 4, padded dim 2048, per-site sd 1\.26\d*\)\n$/);
  });

  it('--clients is a deprecated alias of --threshold: same result, one warning line on stderr', () => {
    const args = [...example, '--dim', '1024', '--json'];
    const t = tally('epsilon', ...args);
    const c = tally('epsilon', ...args.map((a) => (a === '--threshold' ? '--clients' : a)));
    expect(c.code).to.equal(0);
    expect(c.out).to.equal(t.out);
    expect(t.err).to.equal('');
    expect(c.err).to.match(/^tally dp: warning: --clients is deprecated, use --threshold[^\n]*\n$/);
    const both = tally('epsilon', ...args, '--clients', '10');
    expect(both.code).to.equal(2);
    expect(both.err).to.match(/give only --threshold/);
  });

  it('--mechanism discrete-gaussian is a deprecated spelling of discrete_gaussian; warnings only follow a success', () => {
    const args = ['--noise-multiplier', '2', '--sampling-rate', '0.1', '--steps', '5', '--delta', '1e-5', '--json'];
    const old = tally('epsilon', '--mechanism', 'discrete-gaussian', ...args);
    const now = tally('epsilon', '--mechanism', 'discrete_gaussian', ...args);
    expect(old.code).to.equal(0);
    expect(old.out).to.equal(now.out);
    expect(old.err).to.match(/^tally dp: warning: --mechanism discrete-gaussian is deprecated, use discrete_gaussian\n$/);
    const bad = tally('epsilon', '--mechanism', 'discrete-gaussian', ...args, '--accountant', 'pld');
    expect(bad.code).to.equal(2);
    expect(bad.err).to.equal('tally dp: --accountant pld supports only --mechanism gaussian, got discrete_gaussian\n');
  });

  it('ddg and skellam cost more than the continuous Gaussian (rounding inflates the sensitivity)', () => {
    const args = ['--noise-multiplier', '1', '--sampling-rate', '1', '--steps', '10', '--delta', '1e-5', '--clip', '1', '--dim', '1024', '--threshold', '10', '--scale', '100', '--beta', '0.6', '--json'];
    const ddg = JSON.parse(tally('epsilon', '--mechanism', 'ddg', ...args).out) as { epsilon: number };
    const sk = JSON.parse(tally('epsilon', '--mechanism', 'skellam', ...args).out) as { epsilon: number };
    const g = JSON.parse(tally('epsilon', '--mechanism', 'gaussian', '--noise-multiplier', '1', '--sampling-rate', '1', '--steps', '10', '--delta', '1e-5', '--json').out) as { epsilon: number };
    expect(ddg.epsilon).to.be.above(g.epsilon);
    expect(sk.epsilon).to.be.above(g.epsilon);
    expect(tally('epsilon', '--mechanism', 'ddg', ...args.filter((a) => a !== '--scale' && a !== '100')).err).to.match(/missing --scale \(or --bits/);
  });

  it('--bits chooses the scale; --scale with --bits is checked for wrapping at that width (DP_ERR_WRAP_RISK, exit 2)', () => {
    const dist = ['--noise-multiplier', '10', '--sampling-rate', '1', '--steps', '100', '--delta', '1e-5', '--clip', '1', '--dim', '100000', '--threshold', '80', '--cohort', '100'];
    const chosen = JSON.parse(tally('epsilon', '--mechanism', 'ddg', ...dist, '--bits', '20', '--json').out) as { epsilon: number; scale: number; wrapProbabilityBound: number };
    const gaussian = JSON.parse(tally('epsilon', '--mechanism', 'gaussian', '--noise-multiplier', '10', '--sampling-rate', '1', '--steps', '100', '--delta', '1e-5', '--json').out) as { epsilon: number };
    // A well-chosen scale makes the distributed discrete Gaussian cost barely more than the continuous one.
    expect(chosen.epsilon).to.be.above(gaussian.epsilon);
    expect(chosen.epsilon).to.be.below(gaussian.epsilon * 1.01);
    expect(chosen.wrapProbabilityBound).to.be.within(0.9e-9, 1e-9);
    // The same scale given explicitly, at the same width, passes the check and gives the same ε.
    const explicit = JSON.parse(tally('epsilon', '--mechanism', 'ddg', ...dist, '--bits', '20', '--scale', String(chosen.scale), '--json').out) as { epsilon: number };
    expect(explicit.epsilon).to.equal(chosen.epsilon);
    // Twice that scale wraps at 20 bits: refused. At 32 bits (the default with --scale alone) it fits.
    const wraps = tally('epsilon', '--mechanism', 'ddg', ...dist, '--bits', '20', '--scale', String(2 * chosen.scale));
    expect(wraps.code).to.equal(2);
    expect(wraps.out).to.equal('');
    expect(wraps.err).to.match(/^tally dp: DP_ERR_WRAP_RISK: scale \S+ wraps at bits=20 for 100 sites/);
    expect(tally('epsilon', '--mechanism', 'ddg', ...dist, '--scale', String(2 * chosen.scale)).code).to.equal(0);
    // More bits allow a finer scale; no width holds a cohort of 2^(b−1) sites.
    const wide = JSON.parse(tally('epsilon', '--mechanism', 'ddg', ...dist, '--bits', '24', '--json').out) as { scale: number };
    expect(wide.scale).to.be.above(chosen.scale);
    const narrow = tally('epsilon', '--mechanism', 'ddg', ...dist, '--bits', '7');
    expect(narrow.code).to.equal(2);
    expect(narrow.err).to.match(/^tally dp: DP_ERR_WRAP_RISK: bits=7 cannot hold the sum of 100 sites/);
  });

  it('--json: camelCase keys everywhere; an infinite ε is the string "Infinity"', () => {
    const camel = (x: unknown): void => {
      if (x === null || typeof x !== 'object') return;
      for (const [k, v] of Object.entries(x)) {
        expect(k).to.match(/^[a-z][a-zA-Z0-9]*$/);
        camel(v);
      }
    };
    for (const args of [
      ['epsilon', ...example, '--dim', '100', '--json'],
      ['epsilon', '--mechanism', 'skellam', ...example.slice(2), '--dim', '100', '--json'],
      ['epsilon', '--mechanism', 'gaussian', ...base, '--accountant', 'pld', '--json'],
      ['calibrate', '--epsilon', '8', '--delta', '1e-5', '--sampling-rate', '0.04', '--steps', '20', '--json'],
    ]) {
      const r = tally(...args);
      expect(r.code, args.join(' ')).to.equal(0);
      camel(JSON.parse(r.out));
    }
    const inf = tally('epsilon', '--mechanism', 'gaussian', '--noise-multiplier', '0', '--sampling-rate', '1', '--steps', '1', '--delta', '1e-5', '--json');
    expect(inf.code).to.equal(0);
    expect(JSON.parse(inf.out)).to.include({ epsilon: 'Infinity' });
  });

  it('calibrate prints the smallest noise multiplier (Opacus: 1.3562 for ε=8, 2000 steps)', () => {
    const r = tally('calibrate', '--epsilon', '8', '--delta', '1e-5', '--sampling-rate', '0.04', '--steps', '2000', '--json');
    expect(r.code).to.equal(0);
    const j = JSON.parse(r.out) as { noiseMultiplier: number; epsilon: number };
    expect(j.noiseMultiplier).to.be.closeTo(1.3562, 5e-4);
    expect(j.epsilon).to.be.at.most(8);
  });

  it('a user error never prints a stack trace: exit 2, one line (the per-flag table is below)', () => {
    for (const args of [
      ['epsilon', '--mechanism', 'gaussian', '--noise-multiplier', '1', '--sampling-rate', '0.1', '--steps', '-5', '--delta', '1e-5'],
      ['epsilon', '--mechanism', 'ddg', ...example.slice(2), '--dim', '100', '--scale', '1e12'],
      ['epsilon', '--mechanism', 'gaussian', '--sigma', '1'],
      ['frobnicate'],
    ]) {
      const r = tally(...args);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.out).to.equal('');
      expect(r.err.trim().split('\n'), r.err).to.have.length(1);
      expect(r.err).to.match(/^tally dp: /);
    }
  });

  it('--help exits 0', () => {
    expect(tally('epsilon', '--help').code).to.equal(0);
    expect(tally('--help').out).to.match(/calibrate/);
  });
});

/** Runs `tally dp` in this process, capturing its output (fast enough to try every flag). */
async function inProcess(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    return { code: await run(args), out: out.join('\n'), err: err.join('\n') };
  } finally {
    [console.log, console.error] = [log, error];
  }
}

describe('cli: tally dp, every flag with a bad value', () => {
  const gaussian = ['--mechanism', 'gaussian', '--noise-multiplier', '1', '--sampling-rate', '0.5', '--steps', '10', '--delta', '1e-5'];
  const ddg = ['--mechanism', 'ddg', '--noise-multiplier', '1', '--sampling-rate', '1', '--steps', '10', '--delta', '1e-5', '--clip', '1', '--dim', '1000', '--threshold', '10', '--bits', '20'];
  const calibrate = ['--epsilon', '8', '--delta', '1e-5', '--sampling-rate', '0.04', '--steps', '20'];
  /** `args` with `--flag`'s value replaced by `value` (or the flag added). */
  const set = (args: string[], flag: string, value: string): string[] => {
    const i = args.indexOf(`--${flag}`);
    return i < 0 ? [...args, `--${flag}`, value] : [...args.slice(0, i + 1), value, ...args.slice(i + 2)];
  };
  const cases: [cmd: 'epsilon' | 'calibrate', base: string[], flag: string, value: string, message: RegExp][] = [
    ['epsilon', gaussian, 'mechanism', 'laplace', /--mechanism expected one of gaussian\|discrete_gaussian\|ddg\|skellam, got 'laplace'/],
    ['epsilon', gaussian, 'noise-multiplier', '-1', /--noise-multiplier must be >= 0, got -1/],
    ['epsilon', gaussian, 'noise-multiplier', 'abc', /--noise-multiplier expected a finite number, got 'abc'/],
    ['epsilon', ddg, 'noise-multiplier', '0', /--noise-multiplier must be > 0 for --mechanism ddg, got 0/],
    ['epsilon', gaussian, 'sampling-rate', '0', /--sampling-rate must be in \(0, 1\], got 0/],
    ['epsilon', gaussian, 'sampling-rate', '-0.5', /--sampling-rate must be in \(0, 1\], got -0.5/],
    ['epsilon', gaussian, 'sampling-rate', '1.5', /--sampling-rate must be in \(0, 1\], got 1.5/],
    ['epsilon', gaussian, 'steps', '-5', /--steps expected an integer >= 1, got '-5'/],
    ['epsilon', gaussian, 'steps', '2.5', /--steps expected an integer >= 1, got '2.5'/],
    ['epsilon', gaussian, 'steps', '1e300', /--steps expected an integer >= 1, got '1e300'/],
    ['epsilon', gaussian, 'delta', '1', /--delta must be in \(0, 1\), got 1/],
    ['epsilon', gaussian, 'delta', '-1e-5', /--delta must be in \(0, 1\), got -0.00001/],
    ['epsilon', gaussian, 'delta', 'NaN', /--delta expected a finite number, got 'NaN'/],
    ['epsilon', gaussian, 'accountant', 'moments', /--accountant expected one of rdp\|pld, got 'moments'/],
    ['epsilon', gaussian, 'conversion', 'fast', /--conversion expected one of improved\|classic, got 'fast'/],
    ['epsilon', ddg, 'clip', '0', /--clip must be > 0, got 0/],
    ['epsilon', ddg, 'clip', '-1', /--clip must be > 0, got -1/],
    ['epsilon', gaussian, 'clip', '1', /--clip applies only to --mechanism ddg or skellam/],
    ['epsilon', ddg, 'dim', '0', /--dim expected an integer in \[1, 1073741824\], got '0'/],
    ['epsilon', ddg, 'dim', '-3', /--dim expected an integer in \[1, 1073741824\], got '-3'/],
    ['epsilon', ddg, 'dim', '2.5', /--dim expected an integer in \[1, 1073741824\], got '2.5'/],
    ['epsilon', ddg, 'threshold', '0', /--threshold expected an integer in \[1, 1048576\], got '0'/],
    ['epsilon', ddg.filter((a, i) => a !== '--threshold' && ddg[i - 1] !== '--threshold'), 'clients', '-2', /--clients expected an integer in \[1, 1048576\], got '-2'/],
    ['epsilon', ddg, 'cohort', '5', /--cohort must be >= --threshold \(10\), got 5/],
    ['epsilon', ddg, 'cohort', '-5', /--cohort expected an integer in \[1, 1048576\], got '-5'/],
    ['epsilon', ddg, 'bits', '33', /--bits expected an integer in \[1, 32\], got '33'/],
    ['epsilon', ddg, 'bits', '0', /--bits expected an integer in \[1, 32\], got '0'/],
    ['epsilon', ddg, 'scale', '-4', /--scale must be > 0, got -4/],
    ['epsilon', ddg, 'scale', 'inf', /--scale expected a finite number, got 'inf'/],
    ['epsilon', ddg, 'beta', '1', /--beta must be in \[0, 1\), got 1/],
    ['epsilon', ddg, 'beta', '-0.1', /--beta must be in \[0, 1\), got -0.1/],
    ['epsilon', gaussian, 'json=yes', '', /Option '--json' does not take an argument/],
    ['epsilon', gaussian, 'sigma', '1', /Unknown option '--sigma'/],
    ['calibrate', calibrate, 'epsilon', '0', /--epsilon must be > 0, got 0/],
    ['calibrate', calibrate, 'epsilon', '-1', /--epsilon must be > 0, got -1/],
    ['calibrate', calibrate, 'delta', '0', /--delta must be in \(0, 1\), got 0/],
    ['calibrate', calibrate, 'sampling-rate', '2', /--sampling-rate must be in \(0, 1\], got 2/],
    ['calibrate', calibrate, 'steps', '0', /--steps expected an integer >= 1, got '0'/],
    ['calibrate', calibrate, 'accountant', 'x', /--accountant expected one of rdp\|pld, got 'x'/],
    ['calibrate', calibrate, 'conversion', 'x', /--conversion expected one of improved\|classic, got 'x'/],
    ['calibrate', calibrate, 'json=1', '', /Option '--json' does not take an argument/],
  ];
  for (const [cmd, base, flag, value, message] of cases) {
    it(`${cmd} --${flag} ${value}: exit 2, one line naming the flag`, async () => {
      const args = value === '' ? [...base, `--${flag}`] : set(base, flag, value);
      const r = await inProcess([cmd, ...args]);
      expect(r.code).to.equal(2);
      expect(r.out).to.equal('');
      expect(r.err.split('\n')).to.have.length(1);
      expect(r.err).to.match(/^tally dp: /).and.match(message);
      expect(r.err).to.contain(`--${flag.split('=')[0]}`);
    });
  }

  it('a flag missing its value is named; a value that looks like a flag is left to be the next flag', async () => {
    const r = await inProcess(['epsilon', ...gaussian, '--accountant']);
    expect(r).to.deep.equal({ code: 2, out: '', err: 'tally dp: --accountant expects a value' });
    const s = await inProcess(['epsilon', ...set(gaussian, 'steps', '--delta')]);
    expect(s.code).to.equal(2);
    expect(s.err).to.equal('tally dp: --steps expects a value');
  });
});
