/**
 * `tally dp`: privacy accounting from the command line.
 *
 *   tally dp epsilon   — ε of T (Poisson-sampled) runs of a mechanism
 *   tally dp calibrate — the smallest Gaussian noise multiplier meeting (ε, δ)
 *
 * Exit status: 0 success, 2 bad usage or bad parameters (one-line error on stderr).
 */
import { parseArgs } from 'node:util';
import { TallyError } from '../errors.js';
import { calibrateNoise } from '../dp/calibrate.js';
import type { DpEvent } from '../dp/events.js';
import { validateEvent } from '../dp/events.js';
import { chooseDdgParams } from '../dp/params.js';
import { PldAccountant } from '../dp/pld.js';
import { type Conversion, RdpAccountant } from '../dp/rdp.js';

const MAIN_HELP = `usage: tally dp <epsilon|calibrate> [options]

  epsilon     privacy spent by T runs of a mechanism, via RDP or PLD
  calibrate   smallest noise multiplier of the sampled Gaussian meeting (epsilon, delta)

Run 'tally dp <command> --help' for its options.`;

const EPSILON_HELP = `usage: tally dp epsilon --mechanism gaussian|discrete-gaussian|ddg|skellam
         --noise-multiplier Z --sampling-rate Q --steps T --delta D
         [--accountant rdp|pld] [--conversion improved|classic] [--json]
         [--clip C --dim D --clients N (--scale S | --bits B [--cohort M]) [--beta BETA]]   (ddg, skellam)

  --noise-multiplier Z  noise standard deviation / L2 sensitivity; for ddg and skellam,
                        the total noise sd over the clip C: each of the N sites adds
                        sd Z*C/sqrt(N) before scaling by S
  --sampling-rate Q     Poisson sampling rate in (0, 1] (1 = every unit, every round)
  --steps T             number of rounds (or DP-SGD steps)
  --delta D             target delta in (0, 1)
  --accountant          rdp (default) or pld (gaussian only; tight)
  --conversion          improved (default, as dp-accounting and Opacus) or classic
  --clients N           minimum number of sites whose noise is in the sum
  --scale S             scale factor 1/gamma applied before integer rounding
  --bits B              bit width of the modular sum; without --scale, the scale is the
                        largest whose modular wrap probability stays below 1e-9 for
                        M contributing sites (the parameter helper of tally/dp)
  --cohort M            sites that may contribute to the sum, M >= N (default N)
  --beta BETA           conditional rounding parameter in [0, 1) (default exp(-1/2),
                        as the encoder)
  --json                print {"epsilon", "accountant", "order", "conversion", "delta"}`;

const CALIBRATE_HELP = `usage: tally dp calibrate --epsilon E --delta D --sampling-rate Q --steps T
         [--accountant rdp|pld] [--conversion improved|classic] [--json]

Prints the smallest noise multiplier of the Poisson-sampled Gaussian whose T runs are
(E, D)-DP (bisection: relative tolerance 1e-4 for rdp, 1e-3 for pld).`;

class UsageError extends Error {}

function num(v: string | undefined, flag: string, required = true): number | undefined {
  if (v === undefined) {
    if (required) throw new UsageError(`missing --${flag}`);
    return undefined;
  }
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x)) throw new UsageError(`--${flag} expected a number, got '${v}'`);
  return x;
}

function int(v: string | undefined, flag: string, required = true): number | undefined {
  const x = num(v, flag, required);
  if (x !== undefined && !(Number.isSafeInteger(x) && x >= 1)) throw new UsageError(`--${flag} expected a positive integer, got '${v}'`);
  return x;
}

function commonChecks(delta: number, q: number): void {
  if (!(delta > 0 && delta < 1)) throw new UsageError(`--delta must be in (0, 1), got ${delta}`);
  if (!(q > 0 && q <= 1)) throw new UsageError(`--sampling-rate must be in (0, 1], got ${q}`);
}

function choice<T extends string>(v: string | undefined, flag: string, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`--${flag} expected one of ${allowed.join('|')}, got '${v}'`);
  return v as T;
}

const fmt = (x: number): string => (Number.isFinite(x) ? Number(x.toPrecision(8)).toString() : 'inf');
const jnum = (x: number): number | null => (Number.isFinite(x) ? x : null);

const DISTRIBUTED_FLAGS = ['clip', 'dim', 'clients', 'scale', 'beta', 'bits', 'cohort'] as const;

function epsilonCmd(argv: string[]): number {
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    options: {
      mechanism: { type: 'string' }, 'noise-multiplier': { type: 'string' }, 'sampling-rate': { type: 'string' },
      steps: { type: 'string' }, delta: { type: 'string' }, accountant: { type: 'string' }, conversion: { type: 'string' },
      clip: { type: 'string' }, dim: { type: 'string' }, clients: { type: 'string' }, bits: { type: 'string' },
      scale: { type: 'string' }, beta: { type: 'string' }, cohort: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help) {
    console.log(EPSILON_HELP);
    return 0;
  }
  const mechanism = choice(v.mechanism, 'mechanism', ['gaussian', 'discrete-gaussian', 'ddg', 'skellam'] as const, 'gaussian');
  if (v.mechanism === undefined) throw new UsageError('missing --mechanism');
  const z = num(v['noise-multiplier'], 'noise-multiplier')!;
  const q = num(v['sampling-rate'], 'sampling-rate')!;
  const steps = int(v.steps, 'steps')!;
  const delta = num(v.delta, 'delta')!;
  commonChecks(delta, q);
  if (z < 0) throw new UsageError(`--noise-multiplier must be >= 0, got ${z}`);
  const accountant = choice(v.accountant, 'accountant', ['rdp', 'pld'] as const, 'rdp');
  const conversion = choice<Conversion>(v.conversion, 'conversion', ['improved', 'classic'], 'improved');
  const distributed = mechanism === 'ddg' || mechanism === 'skellam';
  if (!distributed) {
    const extra = DISTRIBUTED_FLAGS.find((f) => v[f] !== undefined);
    if (extra) throw new UsageError(`--${extra} applies only to --mechanism ddg or skellam`);
  }
  if (accountant === 'pld' && mechanism !== 'gaussian') throw new UsageError(`--accountant pld supports only --mechanism gaussian, got ${mechanism}`);
  if (accountant === 'pld' && v.conversion !== undefined) throw new UsageError('--conversion applies only to --accountant rdp');
  let mech: DpEvent;
  let chosenScale: number | undefined;
  if (mechanism === 'gaussian') mech = { kind: 'gaussian', noiseMultiplier: z };
  else if (mechanism === 'discrete-gaussian') mech = { kind: 'discrete_gaussian', noiseMultiplier: z };
  else {
    const beta = num(v.beta, 'beta', false) ?? Math.exp(-0.5);
    if (!(beta >= 0 && beta < 1)) throw new UsageError(`--beta must be in [0, 1), got ${beta}`);
    const clip = num(v.clip, 'clip')!;
    if (!(clip > 0)) throw new UsageError(`--clip must be > 0, got ${clip}`);
    const dim = int(v.dim, 'dim')!;
    const minClients = int(v.clients, 'clients')!;
    const bits = int(v.bits, 'bits', false);
    let scale = num(v.scale, 'scale', false);
    if (scale === undefined) {
      if (bits === undefined) throw new UsageError('missing --scale (or --bits, to choose the scale)');
      const cohortSize = int(v.cohort, 'cohort', false) ?? minClients;
      // Throws DP_ERR_WRAP_RISK when no scale keeps the modular sum from wrapping.
      scale = chooseDdgParams({ kind: mechanism, clip, dim, bits, minSurvivors: minClients, cohortSize, noiseMultiplier: z, beta }).scale;
      chosenScale = scale;
    } else if (v.cohort !== undefined) {
      throw new UsageError('--cohort applies only when the scale is chosen from --bits');
    }
    if (!(scale > 0)) throw new UsageError(`--scale must be > 0, got ${scale}`);
    mech = {
      kind: mechanism === 'ddg' ? 'distributed_discrete_gaussian' : 'skellam',
      noiseMultiplier: z, clip, dim, minClients, scale, beta,
      ...(bits !== undefined ? { bits } : {}),
    };
  }
  const inner: DpEvent = q < 1 ? { kind: 'poisson_sampled', q, event: mech } : mech;
  const event: DpEvent = steps > 1 ? { kind: 'self_composed', event: inner, count: steps } : inner;
  validateEvent(event);
  if (accountant === 'pld') {
    const eps = new PldAccountant().compose(event).getEpsilon(delta);
    if (v.json) console.log(JSON.stringify({ epsilon: jnum(eps), accountant, delta }));
    else console.log(`epsilon = ${fmt(eps)} at delta = ${delta} (pld)`);
    return 0;
  }
  const { epsilon, order } = new RdpAccountant().compose(event).getEpsilon(delta, conversion);
  const scaleNote = chosenScale === undefined ? {} : { scale: chosenScale };
  if (v.json) console.log(JSON.stringify({ epsilon: jnum(epsilon), accountant, order, conversion, delta, ...scaleNote }));
  else console.log(`epsilon = ${fmt(epsilon)} at delta = ${delta} (rdp, order ${order}, ${conversion} conversion${chosenScale === undefined ? '' : `, scale ${fmt(chosenScale)} chosen for ${v.bits} bits`})`);
  return 0;
}

function calibrateCmd(argv: string[]): number {
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    options: {
      epsilon: { type: 'string' }, delta: { type: 'string' }, 'sampling-rate': { type: 'string' }, steps: { type: 'string' },
      accountant: { type: 'string' }, conversion: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help) {
    console.log(CALIBRATE_HELP);
    return 0;
  }
  const epsilon = num(v.epsilon, 'epsilon')!;
  const delta = num(v.delta, 'delta')!;
  const q = num(v['sampling-rate'], 'sampling-rate')!;
  const steps = int(v.steps, 'steps')!;
  commonChecks(delta, q);
  if (!(epsilon > 0)) throw new UsageError(`--epsilon must be > 0, got ${epsilon}`);
  const accountant = choice(v.accountant, 'accountant', ['rdp', 'pld'] as const, 'rdp');
  const conversion = choice<Conversion>(v.conversion, 'conversion', ['improved', 'classic'], 'improved');
  const c = calibrateNoise({ epsilon, delta, q, steps, accountant, conversion });
  if (v.json) console.log(JSON.stringify({ noiseMultiplier: c.noiseMultiplier, epsilon: c.epsilon, accountant, delta }));
  else console.log(`noise multiplier = ${fmt(c.noiseMultiplier)} (epsilon = ${fmt(c.epsilon)} at delta = ${delta}, ${accountant})`);
  return 0;
}

/** Joins `--flag -1` into `--flag=-1`, so a negative value reaches the range check instead of the option parser. */
function joinNegatives(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (a.startsWith('--') && !a.includes('=') && next !== undefined && /^-(\d|\.\d|inf)/i.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** Entry point of `tally dp`; returns the exit status. */
export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest0] = argv;
  const rest = joinNegatives(rest0);
  try {
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
      console.log(MAIN_HELP);
      return sub === undefined ? 2 : 0;
    }
    if (sub === 'epsilon') return epsilonCmd(rest);
    if (sub === 'calibrate') return calibrateCmd(rest);
    throw new UsageError(`unknown sub-command '${sub}' (expected epsilon or calibrate)`);
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    const isParse = err instanceof TypeError && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
    if (err instanceof UsageError || isParse) {
      console.error(`tally dp: ${(err as Error).message.split('\n')[0]}`);
      return 2;
    }
    if (err instanceof TallyError && ['DP_ERR_BAD_PARAM', 'DP_ERR_UNSUPPORTED', 'DP_ERR_UNREACHABLE', 'DP_ERR_WRAP_RISK'].includes(err.code)) {
      console.error(`tally dp: ${err.code === 'DP_ERR_WRAP_RISK' ? `${err.code}: ` : ''}${err.message}`);
      return 2;
    }
    throw err;
  }
}
