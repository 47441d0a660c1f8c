/**
 * `tally dp`: privacy accounting from the command line.
 *
 *   tally dp epsilon   — ε of T (Poisson-sampled) runs of a mechanism
 *   tally dp calibrate — the smallest Gaussian noise multiplier meeting (ε, δ)
 *
 * For the distributed mechanisms (ddg, skellam) the round is planned by
 * `planRound` (src/dp/plan.ts), the same derivation the encoder and the
 * secure-aggregation session use, and its event is what is accounted.
 *
 * Exit status: 0 success, 2 bad usage or bad parameters, including every
 * `DpError` (one line on stderr, naming the flag or the code). JSON output uses
 * camelCase keys; an infinite ε is the string "Infinity".
 */
import { parseArgs } from 'node:util';
import { DpError } from '../errors.js';
import { calibrateNoise } from '../dp/calibrate.js';
import { type DistributedKind, type DpEvent, type MechanismKind, MECHANISM_KINDS, validateEvent } from '../dp/events.js';
import { planRound, type RoundPlan } from '../dp/plan.js';
import { PldAccountant } from '../dp/pld.js';
import { type Conversion, RdpAccountant } from '../dp/rdp.js';

const MAIN_HELP = `usage: tally dp <epsilon|calibrate> [options]

  epsilon     privacy spent by T runs of a mechanism, via RDP or PLD
  calibrate   smallest noise multiplier of the sampled Gaussian meeting (epsilon, delta)

Run 'tally dp <command> --help' for its options.`;

const EPSILON_HELP = `usage: tally dp epsilon --mechanism gaussian|discrete_gaussian|ddg|skellam
         --noise-multiplier Z --sampling-rate Q --steps T --delta D
         [--accountant rdp|pld] [--conversion improved|classic] [--json]
         [--clip C --dim D --threshold T [--cohort N] (--scale S [--bits B] | --bits B) [--beta BETA]]   (ddg, skellam)

  --noise-multiplier Z  noise standard deviation / L2 sensitivity; for ddg and skellam,
                        the total noise sd of the T surviving sites over the clip C: each
                        site adds sd Z*C*S/sqrt(T) in integer units (its variance rounded up
                        onto the sampler grid; that exact variance is what is accounted)
  --sampling-rate Q     Poisson sampling rate in (0, 1] (1 = every unit, every round)
  --steps T             number of rounds (or DP-SGD steps)
  --delta D             target delta in (0, 1)
  --accountant          rdp (default) or pld (gaussian only; tight)
  --conversion          improved (default, as dp-accounting and Opacus) or classic
  --clip C              L2 clip of one site's update
  --dim D               the update's dimension; it is padded to a power of two (the
                        padded dimension is what is encoded and accounted)
  --threshold T         t: the secure-aggregation threshold, the fewest surviving sites
                        whose noise is in any released sum (as 'tally simulate --threshold')
  --clients T           deprecated alias of --threshold
  --cohort N            n: the most sites whose inputs can be in one sum (the cohort,
                        'tally simulate --clients'), N >= T (default T); sizes the wrap check
  --scale S             scale factor 1/gamma applied before integer rounding
  --bits B              bit width of the modular sum, 1..32 (default 32 with --scale); the
                        scale must keep the wrap probability of a sum of N sites below
                        1e-9 (refused with DP_ERR_WRAP_RISK otherwise); without --scale,
                        the largest such scale is chosen
  --beta BETA           conditional rounding parameter in [0, 1) (default exp(-1/2),
                        as the encoder)
  --json                print {"epsilon", "accountant", "order", "conversion", "delta"} and,
                        for ddg and skellam, "scale", "paddedDim", "siteSigma2" and
                        "wrapProbabilityBound"; an infinite epsilon is "Infinity"`;

const CALIBRATE_HELP = `usage: tally dp calibrate --epsilon E --delta D --sampling-rate Q --steps T
         [--accountant rdp|pld] [--conversion improved|classic] [--json]

Prints the smallest noise multiplier of the Poisson-sampled Gaussian whose T runs are
(E, D)-DP (bisection: relative tolerance 1e-4 for rdp, 1e-3 for pld).
--json prints {"noiseMultiplier", "epsilon", "accountant", "delta"}.`;

class UsageError extends Error {}

function num(v: string | undefined, flag: string, required = true): number | undefined {
  if (v === undefined) {
    if (required) throw new UsageError(`missing --${flag}`);
    return undefined;
  }
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x)) throw new UsageError(`--${flag} expected a finite number, got '${v}'`);
  return x;
}

function int(v: string | undefined, flag: string, lo: number, hi: number, required = true): number | undefined {
  const x = num(v, flag, required);
  if (x !== undefined && !(Number.isInteger(x) && x >= lo && x <= hi)) {
    throw new UsageError(hi === Number.MAX_SAFE_INTEGER ? `--${flag} expected an integer >= ${lo}, got '${v}'` : `--${flag} expected an integer in [${lo}, ${hi}], got '${v}'`);
  }
  return x;
}

function choice<T extends string>(v: string | undefined, flag: string, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`--${flag} expected one of ${allowed.join('|')}, got '${v}'`);
  return v as T;
}

function commonChecks(delta: number, q: number): void {
  if (!(delta > 0 && delta < 1)) throw new UsageError(`--delta must be in (0, 1), got ${delta}`);
  if (!(q > 0 && q <= 1)) throw new UsageError(`--sampling-rate must be in (0, 1], got ${q}`);
}

/** Deprecation warnings, printed only once the command has succeeded (an error stays one line). */
let warnings: string[] = [];
const warn = (msg: string): void => void warnings.push(msg);
function flushWarnings(): void {
  for (const w of warnings) console.error(`tally dp: warning: ${w}`);
  warnings = [];
}
const fmt = (x: number): string => (Number.isFinite(x) ? Number(x.toPrecision(8)).toString() : 'inf');
/** JSON has no infinity: an infinite ε is written as the string "Infinity". */
const jnum = (x: number): number | string => (Number.isFinite(x) ? x : String(x));

const STEPS_MAX = Number.MAX_SAFE_INTEGER;
const DISTRIBUTED_FLAGS = ['clip', 'dim', 'threshold', 'clients', 'cohort', 'scale', 'beta', 'bits'] as const;

const EPSILON_OPTIONS = {
  mechanism: { type: 'string' }, 'noise-multiplier': { type: 'string' }, 'sampling-rate': { type: 'string' },
  steps: { type: 'string' }, delta: { type: 'string' }, accountant: { type: 'string' }, conversion: { type: 'string' },
  clip: { type: 'string' }, dim: { type: 'string' }, threshold: { type: 'string' }, clients: { type: 'string' },
  cohort: { type: 'string' }, bits: { type: 'string' }, scale: { type: 'string' }, beta: { type: 'string' },
  json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
} as const;

const CALIBRATE_OPTIONS = {
  epsilon: { type: 'string' }, delta: { type: 'string' }, 'sampling-rate': { type: 'string' }, steps: { type: 'string' },
  accountant: { type: 'string' }, conversion: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
} as const;

/**
 * Joins `--flag VALUE` into `--flag=VALUE` for the options that take a value,
 * so a value starting with '-' (`--steps -5`) reaches the range check instead of
 * node's "argument is ambiguous". A following `--name` is left alone: it is the
 * next flag, and the missing value is reported.
 */
function joinValues(argv: string[], options: Record<string, { type: string }>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    const name = a.startsWith('--') && !a.includes('=') ? a.slice(2) : undefined;
    if (name !== undefined && options[name]?.type === 'string') {
      if (next === undefined || /^--[a-z]/i.test(next)) throw new UsageError(`--${name} expects a value`);
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** The round plan of `--mechanism ddg|skellam` from its flags. */
function planFromFlags(kind: DistributedKind, z: number, v: Record<string, string | boolean | undefined>): RoundPlan {
  const s = (k: string): string | undefined => v[k] as string | undefined;
  if (!(z > 0)) throw new UsageError(`--noise-multiplier must be > 0 for --mechanism ${kind}, got ${z}`);
  const clip = num(s('clip'), 'clip')!;
  if (!(clip > 0)) throw new UsageError(`--clip must be > 0, got ${clip}`);
  const dim = int(s('dim'), 'dim', 1, 2 ** 30)!;
  if (s('threshold') !== undefined && s('clients') !== undefined) throw new UsageError('--clients is a deprecated alias of --threshold: give only --threshold');
  const threshold = s('clients') !== undefined ? int(s('clients'), 'clients', 1, 2 ** 20)! : int(s('threshold'), 'threshold', 1, 2 ** 20)!;
  if (s('clients') !== undefined) warn('--clients is deprecated, use --threshold (t, the fewest surviving sites whose noise is in the sum)');
  const cohort = int(s('cohort'), 'cohort', 1, 2 ** 20, false);
  if (cohort !== undefined && cohort < threshold) throw new UsageError(`--cohort must be >= --threshold (${threshold}), got ${cohort}`);
  const beta = num(s('beta'), 'beta', false);
  if (beta !== undefined && !(beta >= 0 && beta < 1)) throw new UsageError(`--beta must be in [0, 1), got ${beta}`);
  const bits = int(s('bits'), 'bits', 1, 32, false);
  const scale = num(s('scale'), 'scale', false);
  if (scale !== undefined && !(scale > 0)) throw new UsageError(`--scale must be > 0, got ${scale}`);
  if (scale === undefined && bits === undefined) throw new UsageError('missing --scale (or --bits, to choose the scale)');
  // Throws DP_ERR_WRAP_RISK when the scale (given, or any) wraps at that width.
  return planRound({
    kind, clip, dim, threshold, bits: bits ?? 32, noiseMultiplier: z,
    ...(cohort !== undefined ? { clients: cohort } : {}), ...(scale !== undefined ? { scale } : {}), ...(beta !== undefined ? { beta } : {}),
  });
}

function epsilonCmd(argv: string[]): number {
  const { values: v } = parseArgs({ args: joinValues(argv, EPSILON_OPTIONS), strict: true, options: EPSILON_OPTIONS });
  if (v.help) {
    console.log(EPSILON_HELP);
    return 0;
  }
  if (v.mechanism === undefined) throw new UsageError('missing --mechanism');
  if (v.mechanism === 'discrete-gaussian') warn("--mechanism discrete-gaussian is deprecated, use discrete_gaussian");
  const mechanism: MechanismKind = v.mechanism === 'discrete-gaussian' ? 'discrete_gaussian' : choice(v.mechanism, 'mechanism', MECHANISM_KINDS, 'gaussian');
  const z = num(v['noise-multiplier'], 'noise-multiplier')!;
  if (z < 0) throw new UsageError(`--noise-multiplier must be >= 0, got ${z}`);
  const q = num(v['sampling-rate'], 'sampling-rate')!;
  const steps = int(v.steps, 'steps', 1, STEPS_MAX)!;
  const delta = num(v.delta, 'delta')!;
  commonChecks(delta, q);
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
  let plan: RoundPlan | undefined;
  if (mechanism === 'ddg' || mechanism === 'skellam') {
    plan = planFromFlags(mechanism, z, v);
    mech = plan.event;
  } else mech = { kind: mechanism, noiseMultiplier: z };
  const inner: DpEvent = q < 1 ? { kind: 'poisson_sampled', q, event: mech } : mech;
  const event: DpEvent = steps > 1 ? { kind: 'self_composed', event: inner, count: steps } : inner;
  validateEvent(event);
  if (accountant === 'pld') {
    const eps = new PldAccountant().compose(event).getEpsilon(delta);
    flushWarnings();
    if (v.json) console.log(JSON.stringify({ epsilon: jnum(eps), accountant, delta }));
    else console.log(`epsilon = ${fmt(eps)} at delta = ${delta} (pld)`);
    return 0;
  }
  const { epsilon, order } = new RdpAccountant().compose(event).getEpsilon(delta, conversion);
  flushWarnings();
  if (v.json) {
    const round = plan === undefined ? {} : {
      scale: plan.scale, paddedDim: plan.paddedDim, siteSigma2: plan.siteSigma2, wrapProbabilityBound: plan.wrapProbabilityBound,
    };
    console.log(JSON.stringify({ epsilon: jnum(epsilon), accountant, order, conversion, delta, ...round }));
  } else {
    const round = plan === undefined ? '' : `; scale ${fmt(plan.scale)}${v.scale === undefined ? ` chosen for ${plan.bits} bits` : ''}, padded dim ${plan.paddedDim}, per-site sd ${fmt(plan.siteSigma)}`;
    console.log(`epsilon = ${fmt(epsilon)} at delta = ${delta} (rdp, order ${order}, ${conversion} conversion${round})`);
  }
  return 0;
}

function calibrateCmd(argv: string[]): number {
  const { values: v } = parseArgs({ args: joinValues(argv, CALIBRATE_OPTIONS), strict: true, options: CALIBRATE_OPTIONS });
  if (v.help) {
    console.log(CALIBRATE_HELP);
    return 0;
  }
  const epsilon = num(v.epsilon, 'epsilon')!;
  if (!(epsilon > 0)) throw new UsageError(`--epsilon must be > 0, got ${epsilon}`);
  const delta = num(v.delta, 'delta')!;
  const q = num(v['sampling-rate'], 'sampling-rate')!;
  const steps = int(v.steps, 'steps', 1, STEPS_MAX)!;
  commonChecks(delta, q);
  const accountant = choice(v.accountant, 'accountant', ['rdp', 'pld'] as const, 'rdp');
  const conversion = choice<Conversion>(v.conversion, 'conversion', ['improved', 'classic'], 'improved');
  if (accountant === 'pld' && v.conversion !== undefined) throw new UsageError('--conversion applies only to --accountant rdp');
  const c = calibrateNoise({ epsilon, delta, q, steps, accountant, conversion });
  if (v.json) console.log(JSON.stringify({ noiseMultiplier: c.noiseMultiplier, epsilon: jnum(c.epsilon), accountant, delta }));
  else console.log(`noise multiplier = ${fmt(c.noiseMultiplier)} (epsilon = ${fmt(c.epsilon)} at delta = ${delta}, ${accountant})`);
  return 0;
}

/** Entry point of `tally dp`; returns the exit status. */
export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  warnings = [];
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
    // Every DP error is a caller error (protocols/dp-v1/errors.md): the parameters cannot be accounted or run.
    if (err instanceof DpError) {
      console.error(`tally dp: ${err.code}: ${err.message.split('\n')[0]}`);
      return 2;
    }
    throw err;
  }
}
