/**
 * `tally consortium init`: writes a consortium for a trial on one machine
 * (the configuration, a key file per site, the TLS material) and prints the
 * commands that run it. Every option is checked before any file is written.
 * Exit status: 0 done, 2 bad usage, a bad value or an existing consortium.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { joinNegativeValues, UsageError } from './_args.js';
import { TallyError } from '../errors.js';
import { chooseSessionParams, thresholdRange, type Threat } from '../secagg/params.js';
import { COMPLETE_GRAPH_MAX_SITES, defaultInitGraph, type TrainingConfig } from '../federation/consortium.js';

const MAX_SITES = 100_000;
const MAX_DIM = 1 << 28;

const MAIN_HELP = `usage: tally consortium init [options]

  init    write a consortium for a trial on one machine: its configuration,
          one identity key per site and the TLS material

Run 'tally consortium init --help' for its options.`;

const INIT_HELP = `usage: tally consortium init --dir DIR --sites N [options]

Writes DIR/consortium.json (protocols/consortium-v1), one Ed25519 identity
key per site (DIR/keys/site-<i>.key, mode 0600) and the TLS material
(DIR/tls/: a consortium CA and the coordinator's certificate; with --mtls a
client certificate per site in DIR/tls/sites/). Every site's key is here, so
this suits a trial on one machine; in a real consortium each site runs
'tally keygen' and hands over only its public key.

  --dir DIR           folder to write into (created if missing)
  --sites N           number of sites, 3..${MAX_SITES} (4.. with --threat malicious)
  --host H            coordinator address the sites connect to (default 127.0.0.1);
                      its certificate also names localhost, 127.0.0.1 and ::1
  --port P            coordinator port, 1..65535 (default 7455)
  --dim M             vector length, 1..${MAX_DIM} (default 10)
  --bits B            inputs and sum are integers mod 2^B, 1..32 (default 32)
  --threat MODEL      semi-honest (default) | malicious
  --graph KIND        complete (default up to ${COMPLETE_GRAPH_MAX_SITES} sites): every pair of
                      sites shares masks; auto (default above): the SecAgg+
                      parameter finder's choice, as 'tally simulate'; harary
  --neighbors K       Harary degree, with --graph harary only: 2 ≤ K ≤ N−1, even
                      when N is odd (or K = N−1), K ≥ 3 against a malicious
                      coordinator; default: the parameter finder's choice
  --threshold T       Shamir threshold, 2 ≤ T ≤ K (K = N−1 for the complete
                      graph), T > 2(K+1)/3 against a malicious coordinator;
                      default: as 'tally simulate'
  --name NAME         consortium name (default 'tally consortium')
  --mtls              also require client certificates (mutual TLS)
  --sum-to-sites      send each completed session's sum to the sites too
                      (default: only the coordinator learns it)
  --aggregator MODE   secagg (default) | he+masks | he: homomorphic summation
                      (he-sum-v1), the coordinator never learns the sum,
                      the sites decrypt it; writes each site's x25519 key
                      (then run the key ceremony: tally he deal / accept)
  --training FILE     a fine-tuning consortium: FILE is a JSON job (docs/federated.md)
                      whose "model" names the base model folder (relative to
                      FILE); dim, bits and the task bound follow from it
  --force             replace the files of an existing consortium in DIR
  -h, --help          show this help

Exit status: 0 done, 2 bad usage or a bad value, or DIR already holds a
consortium (without --force).
`;

/** A mistake in the command line: one line to the user, exit 2. */
const STRING_OPTIONS = ['dir', 'sites', 'host', 'port', 'dim', 'bits', 'threat', 'graph', 'neighbors', 'threshold', 'name', 'training', 'aggregator'] as const;
type Values = Partial<Record<(typeof STRING_OPTIONS)[number], string>> & { mtls?: boolean; 'sum-to-sites'?: boolean; force?: boolean; help?: boolean };

function aggregatorOf(v: string): 'secagg' | 'he' | 'he+masks' {
  if (v !== 'secagg' && v !== 'he' && v !== 'he+masks') throw new UsageError(`--aggregator expected secagg, he+masks or he, got '${v}'`);
  return v;
}

function int(v: string | undefined, name: string, lo: number, hi: number, what = `an integer in [${lo}, ${hi}]`): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isInteger(x) || x < lo || x > hi) throw new UsageError(`--${name} expected ${what}, got '${v}'`);
  return x;
}

function oneOf<T extends string>(v: string | undefined, name: string, dflt: T, allowed: readonly T[]): T {
  if (v === undefined) return dflt;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`--${name} expected ${allowed.join('|')}, got '${v}'`);
  return v as T;
}

/** The checked options of init, and warnings for stderr. */
function planInit(v: Values) {
  if (v.dir === undefined || v.dir === '') throw new UsageError('missing --dir');
  if (v.sites === undefined) throw new UsageError('missing --sites');
  const threat = oneOf<Threat>(v.threat, 'threat', 'semi-honest', ['semi-honest', 'malicious']);
  const minSites = threat === 'malicious' ? 4 : 3;
  const n = int(v.sites, 'sites', minSites, MAX_SITES, `an integer in [${minSites}, ${MAX_SITES}]${threat === 'malicious' ? ' against a malicious coordinator' : ''}`)!;
  if (v.host !== undefined && (v.host === '' || v.host.length > 253 || /[\s,/]/.test(v.host))) throw new UsageError(`--host expected a host name or IP address, got '${v.host}'`);
  const port = int(v.port, 'port', 1, 65535);
  const dim = int(v.dim, 'dim', 1, MAX_DIM);
  const bits = int(v.bits, 'bits', 1, 32);
  if (v.name !== undefined && (v.name.length === 0 || v.name.length > 200)) throw new UsageError('--name expected 1..200 characters');
  const graph = oneOf(v.graph, 'graph', defaultInitGraph(n), ['auto', 'complete', 'harary'] as const);
  if (v.neighbors !== undefined && graph !== 'harary') throw new UsageError('--neighbors sets the Harary degree: use it with --graph harary');
  const kMin = threat === 'malicious' ? 3 : 2;
  const degree = int(v.neighbors, 'neighbors', kMin, n - 1,
    `an integer in [${kMin}, ${n - 1}] with ${n} sites${threat === 'malicious' ? ' against a malicious coordinator' : ''}`);
  if (degree !== undefined && degree % 2 === 1 && n % 2 === 1 && degree !== n - 1) {
    throw new UsageError(`--neighbors ${degree}: with ${n} sites the Harary graph takes an even K in [2, ${n - 1}], or K = ${n - 1}`);
  }
  let chosen;
  try {
    chosen = chooseSessionParams({ n, threat, graph, ...(degree !== undefined ? { degree } : {}) });
  } catch (err) {
    if (!(err instanceof TallyError)) throw err;
    throw new UsageError(`--sites ${n}: the parameter finder found no safe graph (${err.message}); choose --graph complete`);
  }
  const warnings: string[] = [];
  let threshold: number | undefined;
  if (v.threshold !== undefined) {
    const [lo, hi] = thresholdRange(chosen.k, threat);
    const rule = threat === 'malicious' ? '2(k+1)/3 < T ≤ k against a malicious coordinator (Bonawitz et al. 2017 §6)' : '2 ≤ T ≤ k';
    threshold = int(v.threshold, 'threshold', lo, hi,
      lo <= hi ? `an integer in [${lo}, ${hi}] with k=${chosen.k} share holders per site (${rule})` : `a value that k=${chosen.k} does not allow (${rule})`)!;
    if (threshold < chosen.t) {
      warnings.push(`--threshold ${threshold} is below the ${chosen.t} the defaults use: the coordinator together with any ${threshold} colluding neighbours ` +
        `of a site can rebuild its secrets and unmask its input`);
    }
  }
  return {
    options: {
      dir: v.dir, sites: n, threat, mtls: v.mtls === true, sumToSites: v['sum-to-sites'] === true, force: v.force === true,
      ...(v.host !== undefined ? { host: v.host } : {}), ...(port !== undefined ? { port } : {}), ...(dim !== undefined ? { dim } : {}),
      ...(bits !== undefined ? { bits } : {}), ...(graph !== 'auto' ? { graph } : {}), ...(degree !== undefined ? { degree } : {}),
      ...(threshold !== undefined ? { threshold } : {}), ...(v.name !== undefined ? { name: v.name } : {}),
      ...(v.training !== undefined ? { training: readTraining(v.training, v.dir) } : {}),
      ...(v.aggregator !== undefined ? { aggregator: aggregatorOf(v.aggregator) } : {}),
    },
    warnings,
    finder: chosen.finder,
  };
}

/** A path as the user would type it: relative to the working folder when inside it. */
function shownPath(p: string): string {
  const r = relative(process.cwd(), p);
  return r !== '' && !r.startsWith('..') && !isAbsolute(r) ? r : p;
}

/** A shell word: quoted when it holds anything but safe characters. */
function sh(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

async function init(argv: string[]): Promise<number> {
  let values: Values;
  try {
    ({ values } = parseArgs({
      args: joinNegativeValues(argv, STRING_OPTIONS), strict: true, allowPositionals: false, options: {
        ...Object.fromEntries(STRING_OPTIONS.map((o) => [o, { type: 'string' as const }])),
        mtls: { type: 'boolean' }, 'sum-to-sites': { type: 'boolean' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    }) as { values: Values });
  } catch (err) {
    return usageError((err as Error).message.split('\n')[0]!, 'init');
  }
  if (values.help) { console.log(INIT_HELP); return 0; }
  let p;
  try {
    p = planInit(values);
  } catch (err) {
    if (err instanceof UsageError) return usageError(err.message, 'init');
    throw err;
  }
  for (const w of p.warnings) console.error(`tally consortium: warning: ${w}`);
  const { initConsortium } = await import('../federation/consortium.js');
  const r = await initConsortium(p.options);
  const c = r.consortium, a = c.config.aggregation, n = c.sites.length;
  const k = a.graph === 'harary' ? a.degree! : n - 1;
  const { host, port } = c.config.coordinator;
  const cfg = shownPath(r.configFile);
  const lines = [
    `wrote ${cfg}: "${c.config.name}", ${n} sites, ${a.graph === 'harary' ? `Harary graph k=${k}` : `complete graph (k=${k})`}, t=${a.threshold}, ${a.threat}, m=${a.dim}, b=${a.bits}; coordinator ${host.includes(':') ? `[${host}]` : host}:${port}, TLS${c.tls?.clientCertificates ? ' with client certificates' : ''}`,
  ];
  if (p.finder) lines.push(`  graph and threshold: the parameter finder's (${p.finder.reason})`);
  lines.push(
    `wrote ${r.keyFiles.length} site key files, mode 0600: ${shownPath(r.keyFiles[0]!)} … ${shownPath(r.keyFiles[r.keyFiles.length - 1]!)}`,
    `wrote the coordinator's audit signing key, mode 0600: ${shownPath(r.auditKeyFile)} (it signs the audit transcript's checkpoints; its public key is coordinator.auditKey)`,
    `wrote TLS material: ${r.tlsFiles.slice(0, 4).map(shownPath).join(', ')}` +
      (r.tlsFiles.length > 4 ? `, and ${(r.tlsFiles.length - 4) / 2} site client certificates with their keys in ${shownPath(join(c.dir, 'tls', 'sites'))}` : ''),
    `consortium hash: ${Buffer.from(c.hash).toString('hex')}`,
    '',
    'Every private key of the trial is in this folder; keep tls/ca.key offline in a real consortium.',
    'Next, start the coordinator, then one site per key file (each with its own vector):',
    `  tally serve --config ${sh(cfg)}`,
    ...c.sites.slice(0, 3).map((s, i) => `  tally join --config ${sh(cfg)} --key ${sh(shownPath(r.keyFiles[i]!))} --vector FILE   # ${s.id}`),
    ...(n > 3 ? [`  … and so on to ${c.sites[n - 1]!.id}`] : []),
  );
  console.log(lines.join('\n'));
  return 0;
}

function usageError(message: string, sub?: string): number {
  console.error(`tally consortium: ${message} (see tally consortium ${sub === undefined ? '' : `${sub} `}--help)`);
  return 2;
}

/** Entry point of `tally consortium`; returns the exit status. */
export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    (sub === undefined ? console.error : console.log)(MAIN_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'init') return init(rest);
  return usageError(`unknown sub-command '${sub}' (expected init)`);
}

/** Reads --training FILE: a JSON job whose "model" is relative to FILE; returned with "model" relative to the consortium's folder. */
function readTraining(file: string, dir: string): TrainingConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`--training: cannot read ${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`--training: ${file} must hold a JSON object (a job)`);
  const model = (doc as { model?: unknown }).model;
  if (typeof model !== 'string' || model === '') throw new UsageError(`--training: ${file} must name the base model folder in "model"`);
  return { ...(doc as Record<string, unknown>), model: relative(resolve(dir), resolve(dirname(resolve(file)), model)) } as TrainingConfig;
}
