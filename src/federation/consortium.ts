/**
 * The consortium configuration (`consortium.json`, version 1): one coordinator,
 * a roster of sites with their Ed25519 identity keys, the secure-aggregation
 * parameters every session uses, deadlines and limits. The format is
 * specified by `protocols/consortium-v1/consortium.schema.json` (read from the
 * package at run time) and `protocols/consortium-v1/README.md`, which also
 * lists the rules the schema cannot express; both are checked here, and every
 * error names the JSON field at fault.
 *
 * {@link initConsortium} writes a whole consortium for a trial on one machine:
 * the configuration, a key file per site and the TLS material.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { fromHex, toHex } from '../crypto/_validate.js';
import { isLowOrderEd25519, isNonCanonicalEd25519 } from '../crypto/lowOrder.js';
import { nativeProvider } from '../crypto/native.js';
import { canonicalJson } from '../canonical-json.js';
import { TallyError, ValidationError } from '../errors.js';
import { checkConfigShape, type GraphSpec, type SessionConfig } from '../secagg/config.js';
import { chooseSessionParams, thresholdRange, validateThreshold, type Threat } from '../secagg/params.js';
import { envelopeLimits, type EnvelopeLimits } from '../transport/envelope.js';
import { generateTlsMaterial } from '../transport/tls-material.js';
import { packageRoot } from '../vectors/common.js';
import { generateSiteKey, siteX25519, writeSiteKey } from './keys.js';
import { jobJson, maxTaskBytes, parseJob, planSession, trainableSize, type FineTuneJob } from './job.js';
// params.ts is parameter arithmetic only (no SEAL): the consortium checks its HE set when it is read.
import { envelopeBytes, heParams, paramsDigest, type HeParams } from '../he/params.js';
import type { HeMode } from '../he/aggregate.js';
import type { AggregatorCommitment } from '../secagg/config.js';
import { parseGpt2Config, readJsonFile } from '../training/checkpoint.js';

/** One site of the roster. */
export interface RosterSite {
  readonly id: string;
  readonly name: string;
  /** 1-based position in the roster: the site's secure-aggregation client id. */
  readonly clientId: number;
  /** 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
}

/** The coordinator's audit signing key, in the consortium folder's `keys/` (consortium init writes it). */
export const AUDIT_KEY_FILE = 'coordinator-audit.key';

/** `coordinator.tls`: paths as written in the file (relative to its folder). */
export interface TlsConfig {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  readonly clientCertificates?: boolean;
}

export interface CoordinatorConfig {
  readonly host: string;
  readonly port: number;
  readonly tls?: TlsConfig;
  /** The Ed25519 public key (hex) that signs the coordinator's audit checkpoints (transcript-v1). */
  readonly auditKey?: string;
}

/** One entry of `roster`, as written in the file. */
export interface RosterEntry {
  readonly id: string;
  readonly name: string;
  /** 64 lowercase hex digits. */
  readonly publicKey: string;
  /** Homomorphic consortia: the site's X25519 public key (64 hex digits), from its seed (keys.ts `siteX25519`). */
  readonly x25519?: string;
}

export interface AggregationConfig {
  readonly threat: Threat;
  readonly graph: 'complete' | 'harary';
  /** Harary degree k (required for harary; for complete absent or n − 1). */
  readonly degree?: number;
  readonly threshold: number;
  readonly bits: number;
  readonly dim: number;
  /** Whether sites receive each completed session's sum (absent: false; see the schema). */
  readonly sumToSites?: boolean;
  /** How the sum is formed (absent: 'secagg'); the HE modes are he-sum-v1's. */
  readonly aggregator?: 'secagg' | HeMode;
}

/** A homomorphic consortium's aggregation (he-sum-v1): the mode, the parameter set, and its envelope sizes at the consortium's dim. */
export interface ConsortiumHe {
  readonly mode: HeMode;
  readonly params: HeParams;
  /** Bytes of a site's envelope (every masked input). */
  readonly siteBytes: number;
  /** Bytes of the sealed sum's envelope. */
  readonly sumBytes: number;
  /** Each roster site's X25519 public key, in roster order. */
  readonly x25519: readonly Uint8Array[];
}

export interface DeadlinesConfig {
  readonly gatherMs: number;
  readonly roundMs: number;
  /** Fine-tuning: deadline of a training session's masked-input round (local training happens in it; default roundMs). */
  readonly trainMs?: number;
  readonly handshakeMs: number;
  readonly idleMs: number;
  readonly reconnectMaxMs: number;
}

export interface LimitsConfig {
  readonly connectionsPerMinutePerIp: number;
  /** Fine-tuning: longest session-start task in bytes (wire-v1 τ; default 0). */
  readonly maxTaskBytes?: number;
}

/** `training`: a federated fine-tuning job (src/federation/job.ts) and its base model. */
export interface TrainingConfig extends Record<string, unknown> {
  /** Base model directory, relative to the configuration's folder. */
  readonly model: string;
}

/** `consortium.json`, version 1, as parsed (see protocols/consortium-v1/README.md). */
export interface ConsortiumConfig {
  readonly version: 1;
  readonly name: string;
  readonly coordinator: CoordinatorConfig;
  readonly roster: readonly RosterEntry[];
  readonly aggregation: AggregationConfig;
  readonly deadlines: DeadlinesConfig;
  readonly limits: LimitsConfig;
  readonly training?: TrainingConfig;
}

/** A checked consortium configuration. */
export interface Consortium {
  /** Absolute path of the file, when loaded from one. */
  readonly file: string | undefined;
  /** Absolute folder that relative paths resolve against. */
  readonly dir: string;
  readonly config: ConsortiumConfig;
  /** The roster, in order: `sites[i].clientId === i + 1`. */
  readonly sites: readonly RosterSite[];
  /** `coordinator.tls` with absolute paths, or undefined without TLS. */
  readonly tls: { readonly ca: string; readonly cert: string; readonly key: string; readonly clientCertificates: boolean } | undefined;
  /**
   * SHA-256 over the canonical JSON (sorted keys, no spaces) of
   * { version, name, roster, aggregation } only: what every party must agree
   * on; deadlines and paths may differ per machine.
   */
  readonly hash: Uint8Array;
  /** The fine-tuning job, when the consortium has one: the job and its base model's absolute directory. */
  readonly training: { readonly job: FineTuneJob; readonly modelDir: string } | undefined;
  /** A homomorphic consortium's aggregation (`aggregation.aggregator` he or he+masks), else undefined. */
  readonly he: ConsortiumHe | undefined;
}

/** Default deadline of a training session's masked-input round (local training happens in it): 10 minutes. */
export const TRAIN_MS_DEFAULT = 600_000;

/** Defaults of {@link initConsortium}: a loopback trial. */
export const INIT_DEFAULTS = {
  host: '127.0.0.1', port: 7455, dim: 10, bits: 32, threat: 'semi-honest', name: 'tally consortium',
  deadlines: { gatherMs: 10_000, roundMs: 5_000, handshakeMs: 5_000, idleMs: 60_000, reconnectMaxMs: 30_000 },
  limits: { connectionsPerMinutePerIp: 600 },
} as const;

const BAD = 'CONSORTIUM_ERR_BAD_CONFIG';
const MIN_SITES = 3;
const MAX_SITES = 100_000;

function bad(path: string, message: string): ValidationError {
  return new ValidationError(BAD, `${path}: ${message}`);
}

/** A value for a message: JSON, cut at 40 characters. */
function shown(v: unknown): string {
  const s = v === undefined ? 'nothing' : JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

// --- the schema ---------------------------------------------------------

let validator: ValidateFunction | undefined;

/** The schema's validator, compiled once from the shipped file. */
function validate(): ValidateFunction {
  if (validator === undefined) {
    const file = join(packageRoot(), 'protocols', 'consortium-v1', 'consortium.schema.json');
    const Ajv = Ajv2020 as unknown as typeof Ajv2020.default;
    const ajv = new Ajv({ strict: true, allErrors: true, verbose: true });
    validator = ajv.compile(JSON.parse(readFileSync(file, 'utf8')) as object);
  }
  return validator;
}

/** `/roster/3/publicKey` → `roster[3].publicKey`. */
function fieldPath(instancePath: string, child?: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (child !== undefined) parts.push(child);
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out === '' ? p : `.${p}`;
  return out === '' ? '(top level)' : out;
}

/** One schema error in words, naming its field. */
function describe(e: ErrorObject): string {
  const ps = (e.parentSchema ?? {}) as Record<string, unknown>;
  const p = e.params as Record<string, unknown>;
  const path = fieldPath(e.instancePath);
  switch (e.keyword) {
    case 'required': return `${fieldPath(e.instancePath, String(p.missingProperty))}: missing (required)`;
    case 'additionalProperties': {
      const allowed = Object.keys((ps.properties ?? {}) as object).join(', ');
      return `${fieldPath(e.instancePath, String(p.additionalProperty))}: unknown field (${path === '(top level)' ? 'the top level' : path} allows ${allowed})`;
    }
    case 'type': case 'minimum': case 'maximum':
      if (e.keyword === 'type' && deferred({ ...e, keyword: 'minimum' })) return `${path}: expected an integer, got ${shown(e.data)}`;
      if (ps.type === 'integer' && typeof ps.minimum === 'number' && typeof ps.maximum === 'number') {
        return `${path}: expected an integer in [${ps.minimum}, ${ps.maximum}], got ${shown(e.data)}`;
      }
      if (e.keyword === 'type') return `${path}: expected ${ps.type === 'object' ? 'an object' : ps.type === 'array' ? 'an array' : `a ${String(ps.type)}`}, got ${shown(e.data)}`;
      return `${path}: ${e.message ?? 'out of range'}, got ${shown(e.data)}`;
    case 'const': return `${path}: expected ${shown(p.allowedValue)}, got ${shown(e.data)}`;
    case 'enum': return `${path}: expected one of ${(p.allowedValues as unknown[]).map((v) => shown(v)).join(' | ')}, got ${shown(e.data)}`;
    case 'pattern':
      if (path.endsWith('.publicKey')) return `${path}: expected an Ed25519 public key as 64 lowercase hex digits, got ${shown(e.data)}`;
      if (/^roster\[\d+\]\.id$/.test(path)) return `${path}: expected a letter or digit, then up to 63 letters, digits, '.', '_' or '-', got ${shown(e.data)}`;
      return `${path}: expected a string matching ${String(p.pattern)}, got ${shown(e.data)}`;
    case 'minLength': case 'maxLength':
      return `${path}: expected a string of ${ps.minLength ?? 0}..${ps.maxLength ?? 'any'} characters, got ${shown(e.data)}`;
    case 'minItems': case 'maxItems':
      return `${path}: expected ${ps.minItems ?? 0}..${ps.maxItems ?? 'any'} entries, got ${Array.isArray(e.data) ? e.data.length : shown(e.data)}`;
    default: return `${path}: ${e.message ?? 'invalid'}`;
  }
}

/**
 * Range errors the semantic checks report better (with the bound that follows
 * from the roster size and threat model); they are left to those checks,
 * whose bounds are within the schema's.
 */
function deferred(e: ErrorObject): boolean {
  return (e.keyword === 'minimum' || e.keyword === 'maximum') && (e.instancePath === '/aggregation/threshold' || e.instancePath === '/aggregation/degree');
}

// --- parsing ------------------------------------------------------------

/**
 * Checks a parsed `consortium.json` against the schema and the rules it
 * cannot express, and resolves its paths against `dir`.
 * @param file - the file it came from, for {@link Consortium.file}
 * @throws ValidationError `CONSORTIUM_ERR_BAD_CONFIG`, naming the field
 */
export function parseConsortium(json: unknown, dir: string, file?: string): Consortium {
  const v = validate();
  if (!v(json)) {
    const first = (v.errors ?? []).find((e) => !deferred(e));
    if (first !== undefined) throw new ValidationError(BAD, describe(first));
  }
  // A copy, so that changing the caller's object later changes nothing here.
  const config = deepFreeze(structuredClone(json)) as ConsortiumConfig;
  const n = config.roster.length;

  const ids = new Map<string, number>();
  const keys = new Map<string, number>();
  const sites: RosterSite[] = config.roster.map((s, i) => {
    const seenId = ids.get(s.id);
    if (seenId !== undefined) throw bad(`roster[${i}].id`, `${shown(s.id)} is already the id of roster[${seenId}]; site ids must be unique`);
    ids.set(s.id, i);
    const seenKey = keys.get(s.publicKey);
    if (seenKey !== undefined) throw bad(`roster[${i}].publicKey`, `repeats the key of roster[${seenKey}] (${config.roster[seenKey]!.id}); one key for two sites would let one party sign as both`);
    keys.set(s.publicKey, i);
    const publicKey = fromHex(s.publicKey);
    if (isNonCanonicalEd25519(publicKey)) throw bad(`roster[${i}].publicKey`, 'not a canonical Ed25519 point encoding (y ≥ 2^255 − 19)');
    if (isLowOrderEd25519(publicKey)) throw bad(`roster[${i}].publicKey`, 'a small-order Ed25519 point, under which signatures prove nothing');
    return Object.freeze({ id: s.id, name: s.name, clientId: i + 1, publicKey });
  });

  const a = config.aggregation;
  let k: number;
  if (a.graph === 'harary') {
    const rule = `an integer in [2, ${n - 1}]${n % 2 === 1 ? `, even since the roster has an odd number of sites (${n})` : ''}`;
    if (a.degree === undefined) throw bad('aggregation.degree', `required with graph "harary": ${rule}`);
    k = a.degree;
    if (k < 2 || k > n - 1 || (k % 2 === 1 && n % 2 === 1)) throw bad('aggregation.degree', `expected ${rule}, got ${k}`);
  } else {
    k = n - 1;
    if (a.degree !== undefined && a.degree !== k) {
      throw bad('aggregation.degree', `the complete graph of ${n} sites has k = ${k} share holders per site: omit degree or give ${k}, got ${a.degree}`);
    }
  }
  try {
    validateThreshold({ n, k, t: a.threshold, threat: a.threat });
  } catch (err) {
    if (!(err instanceof TallyError)) throw err;
    const [lo, hi] = thresholdRange(k, a.threat);
    const rule = `${a.threat === 'malicious' ? '2(k+1)/3 < t ≤ k against a malicious coordinator (Bonawitz et al. 2017 §6)' : '2 ≤ t ≤ k'} with k = ${k} share holders per site`;
    throw bad('aggregation.threshold', lo <= hi
      ? `expected an integer in [${lo}, ${hi}], got ${a.threshold}: ${rule}`
      : `no threshold satisfies ${rule}; ${a.graph === 'harary' ? 'raise aggregation.degree' : 'the roster needs at least 4 sites'}`);
  }
  // What the sessions will check: the consortium must give a valid secagg-v1 configuration.
  try {
    checkConfigShape(configOf(a, sites, new Uint8Array(32)));
  } catch (err) {
    if (!(err instanceof TallyError)) throw err;
    throw bad('aggregation', err.message);
  }

  let training: Consortium['training'];
  if (config.training !== undefined) {
    const { model, ...rest } = config.training;
    try {
      training = Object.freeze({ job: parseJob(rest, { sites: n, threshold: a.threshold }), modelDir: resolve(dir, model) });
    } catch (err) {
      if (!(err instanceof TallyError)) throw err;
      throw bad('training', err.message);
    }
    if (training.job.dp.bits !== a.bits) throw bad('aggregation.bits', `must equal training.dp.bits (${training.job.dp.bits}): the training sessions' width`);
  }
  let he: ConsortiumHe | undefined;
  if (a.aggregator === 'he' || a.aggregator === 'he+masks') {
    if (training !== undefined) throw bad('aggregation.aggregator', `a training consortium needs the sum at the coordinator (it moves the model); "${a.aggregator}" keeps it from the coordinator`);
    const x25519 = config.roster.map((s, i) => {
      if (s.x25519 === undefined) throw bad(`roster[${i}].x25519`, `required with aggregator "${a.aggregator}": the key the consortium's HE key is wrapped to`);
      return fromHex(s.x25519);
    });
    let params: HeParams;
    try {
      params = heParams(n, a.bits);
    } catch (err) {
      if (!(err instanceof TallyError)) throw err;
      throw bad('aggregation.aggregator', err.message);
    }
    he = Object.freeze({
      mode: a.aggregator, params, x25519: Object.freeze(x25519), siteBytes: envelopeBytes(params, 'site', a.dim), sumBytes: envelopeBytes(params, 'sum', a.dim),
    });
  }
  const root = resolve(dir);
  const t = config.coordinator.tls;
  return Object.freeze({
    he,
    file: file === undefined ? undefined : resolve(file),
    dir: root,
    config,
    sites: Object.freeze(sites),
    tls: t === undefined ? undefined : Object.freeze({
      ca: resolve(root, t.ca), cert: resolve(root, t.cert), key: resolve(root, t.key), clientCertificates: t.clientCertificates ?? false,
    }),
    hash: consortiumHash(config),
    training,
  });
}

/**
 * Reads and checks a consortium file; relative paths in it resolve against its folder.
 * @throws ValidationError `CONSORTIUM_ERR_BAD_CONFIG` (not JSON, or invalid); a file-system error as is
 */
export function loadConsortium(file: string): Consortium {
  const path = resolve(file);
  const text = readFileSync(path, 'utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ValidationError(BAD, `${path} is not valid JSON: ${(err as Error).message}`);
  }
  return parseConsortium(json, dirname(path), path);
}


/** {@link Consortium.hash} of a configuration. */
export function consortiumHash(c: ConsortiumConfig): Uint8Array {
  const agreed = { version: c.version, name: c.name, roster: c.roster, aggregation: c.aggregation, ...(c.training !== undefined ? { training: c.training } : {}) };
  return nativeProvider.sha256(new TextEncoder().encode(canonicalJson(agreed)));
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

const byId = new WeakMap<Consortium, Map<string, RosterSite>>();

/** The neighbour graph of the consortium's sessions. */
export function graphOf(a: AggregationConfig): GraphSpec {
  return a.graph === 'harary' ? { kind: 'harary', degree: a.degree! } : { kind: 'complete' };
}

function configOf(a: AggregationConfig, sites: readonly RosterSite[], nonce: Uint8Array, shape?: SessionShape, aggregator?: AggregatorCommitment): SessionConfig {
  return {
    nonce, clientIds: sites.map((s) => s.clientId), threshold: shape?.threshold ?? a.threshold, bits: shape?.bits ?? a.bits, dim: shape?.dim ?? a.dim, threat: a.threat, graph: graphOf(a),
    ...(a.threat === 'malicious' ? { identityKeys: sites.map((s) => s.publicKey) } : {}),
    ...(aggregator !== undefined ? { aggregator } : {}),
  };
}

/**
 * The secagg-v1 configuration of one session of the consortium: the whole
 * roster with the agreed parameters and the session's nonce. The one
 * derivation the coordinator, every site and the configuration check use.
 */
export function sessionConfig(c: Consortium, nonce: Uint8Array, shape?: SessionShape, heKeyId?: Uint8Array): SessionConfig {
  return configOf(c.config.aggregation, c.sites, nonce, shape, c.he === undefined ? undefined : heSessionCommitment(c, heKeyId));
}

/**
 * The secagg-v1 parameters the consortium agreed to for a session (the
 * roster, threshold, bits, dim, threat model, graph), without a homomorphic
 * session's commitment to its key: what a site compares a session-start with.
 */
export function agreedSessionParams(c: Consortium, nonce: Uint8Array, shape?: SessionShape): SessionConfig {
  return configOf(c.config.aggregation, c.sites, nonce, shape);
}

/** The aggregator commitment of a homomorphic consortium's sessions (he-sum-v1 §8.1). */
function heSessionCommitment(c: Consortium, keyId: Uint8Array | undefined): AggregatorCommitment {
  // The coordinator reads the key id from the dealer's signed offer, a site from its own key: a site whose key is another refuses the session.
  if (keyId === undefined || keyId.length !== 16) throw new ValidationError(BAD, 'a homomorphic consortium\'s session needs the 16-byte key id of its shared HE key (tally he deal / accept)');
  return { mode: c.he!.mode, params: paramsDigest(c.he!.params), keyId: keyId.slice(), inputBytes: c.he!.siteBytes };
}

/**
 * A session's `dim`, `bits` and `threshold` when they are not the
 * consortium's `aggregation` ones: a fine-tuning job's sessions take theirs
 * from the job's one derivation (`planSession` in job.ts).
 */
export interface SessionShape {
  readonly dim: number;
  readonly bits: number;
  readonly threshold: number;
}

/** The envelope limits of the consortium: every frame bound follows from its roster size and parameters. */
export function consortiumLimits(c: Consortium): EnvelopeLimits {
  const a = c.config.aggregation;
  return envelopeLimits({
    rosterSize: c.sites.length, dim: a.dim, bits: a.bits, graph: graphOf(a), maxTaskBytes: c.config.limits.maxTaskBytes ?? 0,
    ...(c.he !== undefined ? { maskedInputBytes: c.he.siteBytes, sealedSumBytes: c.he.sumBytes } : {}),
  });
}

/** The roster site with this id, or undefined. */
export function siteById(c: Consortium, id: string): RosterSite | undefined {
  let m = byId.get(c);
  if (m === undefined) byId.set(c, (m = new Map(c.sites.map((s) => [s.id, s]))));
  return m.get(id);
}

/** The roster site with this secure-aggregation client id (its 1-based roster position), or undefined. */
export function siteByClientId(c: Consortium, clientId: number): RosterSite | undefined {
  return Number.isInteger(clientId) && clientId >= 1 ? c.sites[clientId - 1] : undefined;
}

// --- init ---------------------------------------------------------------

export interface InitOptions {
  /** Folder to write into (created if missing). */
  dir: string;
  /** Number of sites, 3..100000 (4.. against a malicious coordinator). */
  sites: number;
  /** Coordinator address (default 127.0.0.1). */
  host?: string;
  /** Coordinator port (default 7455). */
  port?: number;
  /** Vector length (default 10). */
  dim?: number;
  /** Bit width (default 32). */
  bits?: number;
  /** Neighbour graph; default: the parameter finder's choice (as `tally simulate`). */
  graph?: 'complete' | 'harary';
  /** Harary degree; implies graph harary. */
  degree?: number;
  /** Default semi-honest. */
  threat?: 'semi-honest' | 'malicious';
  /** Shamir threshold; default: the finder's, or the default threshold of the given graph. */
  threshold?: number;
  /** Also write a client certificate per site and require them (`clientCertificates: true`). */
  mtls?: boolean;
  /** Send each completed session's sum to the sites (`aggregation.sumToSites`). */
  sumToSites?: boolean;
  /** How the sum is formed (`aggregation.aggregator`; default secagg); the HE modes write each site's x25519 key. */
  aggregator?: 'secagg' | HeMode;
  /** Replace the files of an existing consortium in `dir`. */
  force?: boolean;
  /** Consortium name (default 'tally consortium'). */
  name?: string;
  /** A fine-tuning job (`training` of the file; its `model` relative to `dir` or absolute). */
  training?: TrainingConfig;
  /** Overrides of the default deadlines and limits. */
  deadlines?: Partial<DeadlinesConfig>;
  limits?: Partial<LimitsConfig>;
}

/**
 * Up to this many sites, `consortium init` chooses the complete graph when no
 * graph is given: each site then holds shares for every other (O(n) work and
 * traffic, small at this size), and privacy rests on fewer than t of all n
 * sites colluding with the coordinator, with no assumption about the fraction
 * of corrupt sites. Above it, the SecAgg+ parameter finder's choice.
 */
export const COMPLETE_GRAPH_MAX_SITES = 100;

/** The graph `consortium init` uses for n sites when none is given. */
export function defaultInitGraph(n: number): 'complete' | 'auto' {
  return n <= COMPLETE_GRAPH_MAX_SITES ? 'complete' : 'auto';
}

/**
 * Writes a consortium for a trial on one machine: `DIR/consortium.json`, one
 * key file per site (`DIR/keys/site-<i>.key`, mode 0600) and the TLS material
 * under `DIR/tls/` (with `mtls`, client certificates under `DIR/tls/sites/`).
 * Everything is checked before the first file is written, and the
 * configuration is written last. Without `force`, refuses when any of these
 * files exists; with it, replaces them (other files are left alone).
 * @throws ValidationError `CONSORTIUM_ERR_EXISTS`; `CONSORTIUM_ERR_BAD_CONFIG` for bad options, naming the field
 */
export async function initConsortium(o: InitOptions): Promise<{ configFile: string; keyFiles: string[]; auditKeyFile: string; tlsFiles: string[]; consortium: Consortium }> {
  const n = o.sites;
  if (!Number.isInteger(n) || n < MIN_SITES || n > MAX_SITES) throw bad('sites', `expected an integer in [${MIN_SITES}, ${MAX_SITES}], got ${shown(n)}`);
  const dir = resolve(o.dir);
  const threat = o.threat ?? INIT_DEFAULTS.threat;
  const graphKind = o.graph ?? (o.degree !== undefined ? 'harary' : defaultInitGraph(n));
  let chosen;
  try {
    chosen = chooseSessionParams({ n, threat, graph: graphKind, ...(o.degree !== undefined ? { degree: o.degree } : {}) });
  } catch (err) {
    if (!(err instanceof TallyError)) throw err;
    throw bad('aggregation', `the parameter finder found no safe graph for ${n} sites (${err.message})`);
  }
  const degree = chosen.graph === 'harary' ? chosen.k : o.degree;
  let aggregation: AggregationConfig = {
    threat, graph: chosen.graph, ...(degree !== undefined ? { degree } : {}),
    threshold: o.threshold ?? chosen.t, bits: o.bits ?? INIT_DEFAULTS.bits, dim: o.dim ?? INIT_DEFAULTS.dim,
    ...(o.sumToSites === true ? { sumToSites: true } : {}),
    ...(o.aggregator !== undefined && o.aggregator !== 'secagg' ? { aggregator: o.aggregator } : {}),
  };
  const limits: LimitsConfig = { ...INIT_DEFAULTS.limits, ...o.limits };
  let deadlines: DeadlinesConfig = { ...INIT_DEFAULTS.deadlines, ...o.deadlines };
  let training = o.training;
  if (training !== undefined) {
    // A training consortium's sessions take their shape from the job (job.ts planSession): derive
    // aggregation.dim and bits, the task bound and the training deadline here, from the model's config.
    if (o.dim !== undefined || o.bits !== undefined) throw bad('dim', 'a training consortium derives dim and bits from its job and model; give neither');
    if (o.sumToSites === true) throw bad('aggregation.sumToSites', 'a training consortium does not send the sums to the sites');
    const { model, ...rest } = training;
    if (typeof model !== 'string' || model === '') throw bad('training.model', 'expected the base model directory');
    const dirOf = resolve(o.dir);
    let job: FineTuneJob;
    try {
      job = parseJob(rest, { sites: n, threshold: aggregation.threshold });
    } catch (err) {
      if (!(err instanceof TallyError)) throw err;
      throw bad('training', err.message);
    }
    const modelConfig = parseGpt2Config(readJsonFile(join(resolve(dirOf, model), 'config.json'), 'TRAIN_ERR_BAD_CHECKPOINT'));
    const shape = planSession(job, 'train', trainableSize(modelConfig, job)).session;
    aggregation = { ...aggregation, dim: shape.dim, bits: shape.bits };
    (limits as { maxTaskBytes?: number }).maxTaskBytes = o.limits?.maxTaskBytes ?? maxTaskBytes(modelConfig, job);
    deadlines = { ...deadlines, trainMs: o.deadlines?.trainMs ?? TRAIN_MS_DEFAULT };
    training = { ...jobJson(job), model };
  }

  const configFile = join(dir, 'consortium.json');
  const ids = Array.from({ length: n }, (_, i) => `site-${i + 1}`);
  const keyFiles = ids.map((id) => join(dir, 'keys', `${id}.key`));
  const auditKeyFile = join(dir, 'keys', AUDIT_KEY_FILE);
  const tlsDir = join(dir, 'tls');
  const tlsNames = ['ca.crt', 'ca.key', 'coordinator.crt', 'coordinator.key', ...(o.mtls ? ids.flatMap((id) => [`sites/${id}.crt`, `sites/${id}.key`]) : [])];
  const targets = [configFile, ...keyFiles, auditKeyFile, ...tlsNames.map((f) => join(tlsDir, f))];
  if (!o.force) {
    if (existsSync(configFile)) throw new ValidationError('CONSORTIUM_ERR_EXISTS', `${configFile} already exists (force replaces the consortium)`);
    const found = targets.find((f) => existsSync(f));
    if (found !== undefined) throw new ValidationError('CONSORTIUM_ERR_EXISTS', `${found} already exists (force replaces the consortium)`);
  }

  const siteKeys = ids.map(() => generateSiteKey());
  const auditKey = generateSiteKey();
  const config: ConsortiumConfig = {
    version: 1,
    name: o.name ?? INIT_DEFAULTS.name,
    coordinator: {
      host: o.host ?? INIT_DEFAULTS.host, port: o.port ?? INIT_DEFAULTS.port,
      tls: { ca: 'tls/ca.crt', cert: 'tls/coordinator.crt', key: 'tls/coordinator.key', clientCertificates: o.mtls === true },
      auditKey: toHex(auditKey.publicKey),
    },
    roster: ids.map((id, i) => ({
      id, name: `Site ${i + 1}`, publicKey: toHex(siteKeys[i]!.publicKey),
      ...(o.aggregator === 'he' || o.aggregator === 'he+masks' ? { x25519: toHex(siteX25519(siteKeys[i]!.seed).publicKey) } : {}),
    })),
    aggregation,
    deadlines,
    limits,
    ...(training !== undefined ? { training } : {}),
  };
  parseConsortium(config, dir, configFile); // every check, before anything is written

  if (o.force) for (const f of targets) rmSync(f, { force: true });
  mkdirSync(dir, { recursive: true });
  mkdirSync(join(dir, 'keys'), { recursive: true, mode: 0o700 });
  keyFiles.forEach((f, i) => writeSiteKey(f, siteKeys[i]!));
  writeSiteKey(auditKeyFile, auditKey);
  const tls = await generateTlsMaterial({ dir: tlsDir, hosts: [config.coordinator.host], ...(o.mtls ? { siteIds: ids } : {}) });
  const tlsFiles = [tls.ca, tls.caKey, tls.cert, tls.key, ...(tls.sites ?? []).flatMap((s) => [s.cert, s.key])];
  writeFileSync(configFile, JSON.stringify(config, null, 2) + '\n', { flag: o.force ? 'w' : 'wx' });
  return { configFile, keyFiles, auditKeyFile, tlsFiles, consortium: loadConsortium(configFile) };
}
