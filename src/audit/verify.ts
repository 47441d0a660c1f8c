/**
 * `tally audit verify`: the five checks of an audit bundle
 * (protocols/transcript-v1/spec.md §5), each passed or failed with a reason
 * and the findings behind it:
 *
 * 1. **integrity**: the coordinator's transcript and every site log verify
 *    (format, Merkle roots, checkpoint signatures, session structure), each
 *    site log is signed by its roster key, every witnessed coordinator
 *    checkpoint is signed, countersigned and is the root of the transcript's
 *    prefix of that size, and the message digests of both sides agree.
 * 2. **config**: the configuration that ran is the approved one (`--config`),
 *    the coordinator key is the approved one, the software is recorded.
 * 3. **protocol**: per session, |U| ≥ t, U4 ⊆ U3 ⊆ U2 ⊆ U1 ⊆ U0, no peer had
 *    both its self-mask and key shares revealed, sites' reveals and results
 *    agree with the coordinator's, the cohort never below the policy minimum.
 * 4. **privacy**: ε recomputed from the `dp-event` records with tally's
 *    accountant equals the logged ε, never above the budget, and every
 *    released training sum is preceded by its noisy DP event.
 * 5. **secrets**: no record field outside the spec's, no PEM private key,
 *    no Ed25519 seed of the coordinator or of a roster site anywhere.
 *
 * {@link verifyBundle} never throws for a bad bundle: what cannot be read is
 * a failed check.
 * @module
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, relative } from 'node:path';
import { nativeProvider } from '../crypto/native.js';
import { canonicalJson } from '../canonical-json.js';
import { PrivacyLedger } from '../dp/ledger.js';
import type { DpEvent } from '../dp/events.js';
import { leafHash, rootOf } from './merkle.js';
import { BUNDLE_FORMAT, readJsonLines } from './bundle.js';
import { verifyCheckpointSignature, verifyTranscript, WITNESS_LABEL, type RecordKind } from './transcript.js';

export type AuditCheckId = 'integrity' | 'config' | 'protocol' | 'privacy' | 'secrets';
export interface AuditFinding { readonly ok: boolean; readonly what: string; readonly log?: string; readonly seq?: number }
export interface AuditCheck { readonly id: AuditCheckId; readonly title: string; readonly ok: boolean; readonly reason: string; readonly findings: readonly AuditFinding[] }
export interface BundleVerdict { readonly ok: boolean; readonly run: string; readonly checks: readonly AuditCheck[] }

/** The checks in the order they are reported, with their titles. */
export const AUDIT_CHECKS: readonly { readonly id: AuditCheckId; readonly title: string }[] = [
  { id: 'integrity', title: 'Merkle tree, hash chain, signatures and checkpoints' },
  { id: 'config', title: 'approved configuration and software version' },
  { id: 'protocol', title: 'secure-aggregation invariants in every session' },
  { id: 'privacy', title: 'differential privacy: ε recomputed, budget, noise before release' },
  { id: 'secrets', title: 'nothing secret in the bundle' },
];

/** Relative tolerance of the recomputed ε against the logged one. */
export const EPSILON_TOLERANCE = 1e-9;

type Rec = Readonly<Record<string, unknown>> & { readonly kind: RecordKind; readonly seq: number };

/** One log: the coordinator's transcript or a site's log. */
interface Log {
  /** 'transcript' or 'site:<id>'. */
  name: string;
  /** Where it was read from. */
  file: string;
  lines: string[];
  /** Parsed records (undefined for a line that is not a JSON object). */
  records: (Rec | undefined)[];
}

interface RosterEntry { readonly id: string; readonly clientId: number; readonly publicKey: string }

const enc = new TextEncoder();
const isObj = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);
const isHex32 = (x: unknown): x is string => typeof x === 'string' && /^[0-9a-f]{64}$/.test(x);
const sha256Hex = (s: string): string => createHash('sha256').update(s).digest('hex');
const fromHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const ids = (x: unknown): number[] => (Array.isArray(x) ? x.filter((v): v is number => typeof v === 'number') : []);
const short = (h: string): string => (h.length > 16 ? `${h.slice(0, 16)}…` : h);

function parseRecords(lines: readonly string[]): (Rec | undefined)[] {
  return lines.map((l) => {
    try {
      const r = JSON.parse(l) as unknown;
      return isObj(r) ? (r as Rec) : undefined;
    } catch {
      return undefined;
    }
  });
}

/** A check being built: findings accumulate, the check fails if any finding failed. */
class Builder {
  readonly findings: AuditFinding[] = [];
  constructor(readonly id: AuditCheckId) {}
  pass(what: string, log?: string, seq?: number): void { this.add(true, what, log, seq); }
  fail(what: string, log?: string, seq?: number): void { this.add(false, what, log, seq); }
  add(ok: boolean, what: string, log?: string, seq?: number): void {
    this.findings.push({ ok, what, ...(log !== undefined ? { log } : {}), ...(seq !== undefined ? { seq } : {}) });
  }
  get ok(): boolean { return this.findings.every((f) => f.ok); }
  done(okReason: string): AuditCheck {
    const failed = this.findings.filter((f) => !f.ok);
    const title = AUDIT_CHECKS.find((c) => c.id === this.id)!.title;
    const reason = failed.length === 0 ? okReason
      : `${failed[0]!.log !== undefined ? `${failed[0]!.log}${failed[0]!.seq !== undefined ? ` seq ${failed[0]!.seq}` : ''}: ` : ''}${failed[0]!.what}${failed.length > 1 ? ` (and ${failed.length - 1} more)` : ''}`;
    return { id: this.id, title, ok: failed.length === 0, reason, findings: this.findings };
  }
}

/**
 * The roster of the run's configuration: `config.consortium.roster[]`
 * (consortium.json: `id`, `publicKey`; client id = position + 1), or
 * `config.consortium.sites[]` (`id`, `clientId`, `publicKey`); the config
 * itself when it is a consortium file.
 */
export function rosterOf(config: unknown): RosterEntry[] | undefined {
  const c = consortiumOf(config);
  if (c === undefined) return undefined;
  const list = Array.isArray(c['roster']) ? c['roster'] : Array.isArray(c['sites']) ? c['sites'] : undefined;
  if (list === undefined) return undefined;
  const out: RosterEntry[] = [];
  list.forEach((e: unknown, i: number) => {
    if (!isObj(e) || typeof e['id'] !== 'string' || !isHex32(e['publicKey'])) return;
    out.push({ id: e['id'], clientId: typeof e['clientId'] === 'number' ? e['clientId'] : i + 1, publicKey: e['publicKey'] });
  });
  return out;
}

/** The consortium part of a run configuration: `config.consortium`, or the config itself when it has a roster. */
function consortiumOf(config: unknown): Record<string, unknown> | undefined {
  if (!isObj(config)) return undefined;
  if (isObj(config['consortium'])) return config['consortium'];
  if (Array.isArray(config['roster']) || Array.isArray(config['sites'])) return config;
  return undefined;
}

/** `coordinator.auditKey` of a consortium, when it names one. */
function auditKeyOf(consortium: Record<string, unknown> | undefined): string | undefined {
  const c = consortium?.['coordinator'];
  return isObj(c) && typeof c['auditKey'] === 'string' ? c['auditKey'] : undefined;
}

/** Every file under `dir` (recursively), sorted. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let names: string[];
    try { names = readdirSync(d).sort(); } catch { return; }
    for (const n of names) {
      const p = join(d, n);
      let st;
      try { st = statSync(p); } catch { continue; }
      if (st.isDirectory()) walk(p); else if (st.isFile()) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** The closed field sets of transcript-v1 §2 (beyond kind and seq); `config` and `dp-event` are open. */
const SPEC_FIELDS: Partial<Record<RecordKind, readonly string[]>> = {
  'run': ['run', 'role', 'signer', 'software', 'site', 'policy'],
  'session-start': ['session', 'clientIds', 'threshold', 'bits', 'dim', 'threat', 'graph', 'configHash'],
  'round': ['session', 'round', 'participants', 'dropped'],
  'message': ['session', 'direction', 'round', 'peer', 'length', 'sha256'],
  'rejected': ['session', 'round', 'peer', 'code', 'message'],
  'reveal': ['session', 'peer', 'selfShares', 'keyShares'],
  'outcome': ['session', 'result', 'survivors', 'sumSha256', 'sealed', 'code', 'message', 'round', 'dropped'],
  'site-result': ['session', 'result', 'survivors', 'dropped', 'sumSha256', 'code', 'message'],
  'unwitnessed': ['session', 'reason', 'size', 'root', 'signature'],
  'fl-session': ['round', 'attempt', 'session', 'purpose', 'result', 'charged', 'code', 'survivors', 'metrics'],
  'witness': ['size', 'root', 'signature', 'cosignature'],
  'checkpoint': ['size', 'root', 'signature'],
};

/** Whether a DP event adds noise in every mechanism it composes (a zero noise multiplier or variance is no noise). */
export function eventHasNoise(ev: unknown): boolean {
  if (!isObj(ev)) return false;
  switch (ev['kind']) {
    case 'gaussian': case 'discrete_gaussian':
      return typeof ev['noiseMultiplier'] === 'number' && ev['noiseMultiplier'] > 0;
    case 'ddg': case 'skellam': {
      const s = ev['siteSigma2'];
      return isObj(s) && typeof s['num'] === 'number' && s['num'] > 0 && typeof s['den'] === 'number' && s['den'] > 0;
    }
    case 'poisson_sampled': case 'self_composed':
      return eventHasNoise(ev['event']);
    case 'composed':
      return Array.isArray(ev['events']) && ev['events'].length > 0 && ev['events'].every(eventHasNoise);
    default:
      return false;
  }
}

export interface VerifyOptions {
  /** Site logs kept outside the bundle (`--site-log`). */
  readonly siteLogs?: readonly string[];
  /** The approved configuration (`--config`): a consortium.json, a job JSON, or the whole run configuration. */
  readonly config?: string;
}

/** Verifies the audit bundle in `dir` (see the module comment). Never throws for a bad bundle. */
export function verifyBundle(dir: string, options: VerifyOptions = {}): BundleVerdict {
  try {
    return verifyInner(dir, options);
  } catch (err) {
    // A bug or an unexpected I/O failure: still a verdict, never a throw.
    const integrity = new Builder('integrity');
    integrity.fail(`the verifier could not read the bundle: ${(err as Error).message}`);
    return notChecked(integrity.done(''), '');
  }
}

function notChecked(integrity: AuditCheck, run: string): BundleVerdict {
  const rest = AUDIT_CHECKS.filter((c) => c.id !== 'integrity').map((c): AuditCheck => ({
    id: c.id, title: c.title, ok: false, reason: 'not checked: the bundle could not be read', findings: [],
  }));
  return { ok: false, run, checks: [integrity, ...rest] };
}

function verifyInner(dir: string, options: VerifyOptions): BundleVerdict {
  const integrity = new Builder('integrity');

  // The manifest and the coordinator's transcript.
  let manifest: Record<string, unknown>;
  try {
    const m = JSON.parse(readFileSync(join(dir, 'bundle.json'), 'utf8')) as unknown;
    if (!isObj(m)) throw new Error('not a JSON object');
    manifest = m;
  } catch (err) {
    integrity.fail(`no readable bundle.json in ${dir} (${(err as Error).message})`);
    return notChecked(integrity.done(''), '');
  }
  const run = typeof manifest['run'] === 'string' ? manifest['run'] : '';
  if (manifest['format'] !== BUNDLE_FORMAT) {
    integrity.fail(`bundle.json: format is ${JSON.stringify(manifest['format'])}, not ${BUNDLE_FORMAT}`);
    return notChecked(integrity.done(''), run);
  }
  const coordKeyHex = manifest['coordinatorKey'];
  if (!isHex32(coordKeyHex)) {
    integrity.fail('bundle.json: coordinatorKey is not a 32-byte hex Ed25519 public key');
    return notChecked(integrity.done(''), run);
  }
  let tlines: string[];
  try {
    tlines = readJsonLines(join(dir, 'transcript.jsonl'));
  } catch (err) {
    integrity.fail(`no readable transcript.jsonl in ${dir} (${(err as Error).message})`);
    return notChecked(integrity.done(''), run);
  }
  const coordKey = fromHex(coordKeyHex);
  const transcript: Log = { name: 'transcript', file: join(dir, 'transcript.jsonl'), lines: tlines, records: parseRecords(tlines) };
  const T = transcript.records;

  // The coordinator's run and config records.
  const runRec = T[0]?.kind === 'run' ? T[0] : undefined;
  const configRec = T[1]?.kind === 'config' ? T[1] : undefined;
  const roster = configRec !== undefined ? rosterOf(configRec['config']) ?? [] : [];
  const rosterById = new Map(roster.map((s) => [s.id, s]));
  const policy = isObj(runRec?.['policy']) ? runRec['policy'] : undefined;

  // Site logs: sites/*.jsonl, then each --site-log.
  const siteFiles: string[] = [];
  const sitesDir = join(dir, 'sites');
  if (existsSync(sitesDir)) {
    try {
      for (const f of readdirSync(sitesDir).filter((x) => x.endsWith('.jsonl')).sort()) siteFiles.push(join(sitesDir, f));
    } catch (err) {
      integrity.fail(`sites/ cannot be read (${(err as Error).message})`);
    }
  }
  siteFiles.push(...(options.siteLogs ?? []));
  const sites: (Log & { site: RosterEntry | undefined })[] = [];
  for (const file of siteFiles) {
    let lines: string[];
    try { lines = readJsonLines(file); } catch (err) { integrity.fail(`site log ${file} cannot be read (${(err as Error).message})`); continue; }
    const records = parseRecords(lines);
    const r0 = records[0];
    const id = r0?.kind === 'run' && typeof r0['site'] === 'string' ? r0['site'] : undefined;
    sites.push({ name: `site:${id ?? relative(dir, file)}`, file, lines, records, site: id !== undefined ? rosterById.get(id) : undefined });
  }

  const sessionFindings: AuditFinding[] = [];
  checkIntegrity(integrity, { manifest, coordKey, coordKeyHex, transcript, runRec, configRec, roster, sites, sessions: sessionFindings });
  const config = checkConfig({ manifest, runRec, configRec, coordKeyHex, approved: options.config });
  const protocol = checkProtocol({ transcript, sites, policy, structure: sessionFindings });
  const privacy = checkPrivacy({ transcript, policy });
  const secrets = checkSecrets({ dir, transcript, sites, coordKeyHex, roster, extraFiles: options.siteLogs ?? [] });

  const integrityCheck = integrity.done(`transcript of ${tlines.length} records and ${sites.length} site log(s) verified: roots, signatures, witnesses`);
  const checks = [integrityCheck, config, protocol, privacy, secrets];
  return { ok: checks.every((c) => c.ok), run, checks };
}

interface IntegrityInput {
  manifest: Record<string, unknown>;
  coordKey: Uint8Array;
  coordKeyHex: string;
  transcript: Log;
  runRec: Rec | undefined;
  configRec: Rec | undefined;
  roster: RosterEntry[];
  sites: (Log & { site: RosterEntry | undefined })[];
  /** Where the session failures of verifyTranscript go (the protocol check). */
  sessions: AuditFinding[];
}

/**
 * verifyTranscript on one log: its format, root, signature and config-hash
 * failures are integrity findings; its session failures (the structure of a
 * session) go to `sessions`, for the protocol check.
 */
function reportVerdict(b: Builder, log: Log, key: Uint8Array, sessions: AuditFinding[]): boolean {
  const v = verifyTranscript(log.lines, key);
  for (const c of v.checks) {
    if (c.ok) continue;
    if (c.check === 'session') sessions.push({ ok: false, what: c.reason ?? 'session invariant failed', log: log.name, ...(c.seq !== undefined ? { seq: c.seq } : {}) });
    else b.fail(`${c.check}: ${c.reason ?? 'failed'}`, log.name, c.seq);
  }
  return v.checks.every((c) => c.ok || c.check === 'session');
}

function checkIntegrity(b: Builder, x: IntegrityInput): void {
  const { transcript, coordKey, coordKeyHex, runRec, configRec } = x;
  const T = transcript.records;
  const n = transcript.lines.length;
  const cps = T.filter((r) => r?.kind === 'checkpoint').length;
  if (reportVerdict(b, transcript, coordKey, x.sessions)) b.pass(`${n} records, ${cps} checkpoints: every root and signature verifies under the coordinator key ${short(coordKeyHex)}`, 'transcript');

  // The coordinator's log begins run, config, checkpoint; one of each of the first two.
  if (runRec === undefined || runRec['role'] !== 'coordinator') b.fail('the transcript does not begin with the coordinator\'s run record', 'transcript', 0);
  else {
    if (runRec['signer'] !== coordKeyHex) b.fail(`run record signer ${short(String(runRec['signer']))} is not bundle.json's coordinatorKey ${short(coordKeyHex)}`, 'transcript', 0);
    if (runRec['run'] !== x.manifest['run']) b.fail(`run id ${String(runRec['run'])} is not bundle.json's ${String(x.manifest['run'])}`, 'transcript', 0);
  }
  if (configRec === undefined) b.fail('the transcript\'s second record is not its config record', 'transcript', 1);
  T.forEach((r, i) => {
    if ((r?.kind === 'run' && i !== 0) || (r?.kind === 'config' && i !== 1)) b.fail(`a second ${r.kind} record`, 'transcript', i);
  });
  if (configRec !== undefined && x.roster.length === 0 && x.sites.length > 0) b.fail('the run\'s config names no roster, so no site log can be checked against a roster key', 'transcript', 1);

  const leaves = transcript.lines.map((l) => leafHash(enc.encode(l)));
  // Sites witness the same checkpoints: each prefix root is computed once.
  const rootCache = new Map<number, string>();
  // Coordinator messages by (session, round, direction, peer).
  const key = (r: Rec): string => `${String(r['session'])}|${String(r['round'])}|${String(r['direction'])}|${String(r['peer'])}`;
  const coordMsgs = new Map<string, Set<string>>();
  for (const r of T) {
    if (r?.kind !== 'message') continue;
    const k = key(r);
    if (!coordMsgs.has(k)) coordMsgs.set(k, new Set());
    coordMsgs.get(k)!.add(String(r['sha256']));
  }

  const coordSessions = new Set(T.filter((r) => r?.kind === 'session-start').map((r) => String(r!['session'])));
  if (x.sites.length === 0) b.pass('no site logs: a transcript cut right after its last checkpoint cannot be detected without a witness');
  for (const s of x.sites) {
    const r0 = s.records[0];
    if (r0?.kind !== 'run' || r0['role'] !== 'site' || typeof r0['site'] !== 'string') { b.fail('a site log must begin with a site\'s run record', s.name, 0); continue; }
    if (s.site === undefined) { b.fail(`site ${r0['site']} is not in the run's roster`, s.name, 0); continue; }
    if (r0['signer'] !== s.site.publicKey) { b.fail(`signer ${short(String(r0['signer']))} is not the roster key ${short(s.site.publicKey)} of site ${s.site.id}`, s.name, 0); continue; }
    const siteKey = fromHex(s.site.publicKey);
    const ok = reportVerdict(b, s, siteKey, x.sessions);
    let witnesses = 0;
    s.records.forEach((r, i) => {
      if (r?.kind !== 'witness') return;
      witnesses++;
      const size = r['size'] as number;
      const rootHex = String(r['root']);
      const ref = { size, root: fromHex(rootHex), signature: fromHex(String(r['signature'])) };
      if (!verifyCheckpointSignature(coordKey, ref)) b.fail(`witnessed checkpoint of size ${size}: not signed by the coordinator key`, s.name, i);
      if (!verifyCheckpointSignature(siteKey, { ...ref, signature: fromHex(String(r['cosignature'])) }, WITNESS_LABEL)) b.fail(`witness of size ${size}: the cosignature is not the site's`, s.name, i);
      if (!Number.isSafeInteger(size) || size < 0) { b.fail(`witness size ${String(size)} is not a size`, s.name, i); return; }
      if (size >= transcript.lines.length) {
        b.fail(`transcript truncated after a witnessed checkpoint: site ${s.site!.id} witnessed size ${size}, the transcript holds ${transcript.lines.length} records`, s.name, i);
        return;
      }
      let root = rootCache.get(size);
      if (root === undefined) { root = Buffer.from(rootOf(leaves, size)).toString('hex'); rootCache.set(size, root); }
      if (root !== rootHex) {
        b.fail(`the coordinator rewrote history after a witness: the root of the transcript's first ${size} records is ${short(root)}, site ${s.site!.id} witnessed ${short(rootHex)}`, s.name, i);
        return;
      }
      const cp = T[size];
      if (cp?.kind !== 'checkpoint' || cp['root'] !== rootHex) b.fail(`the transcript's record ${size} is not the witnessed checkpoint`, s.name, i);
    });
    // A coordinator that withholds valid checkpoints escapes its witnesses: the site writes down each one it could not witness,
    // and every session the site saw completed must be followed by a witness that covers the transcript's outcome of it.
    s.records.forEach((r, i) => {
      if (r?.kind === 'unwitnessed') b.fail(`site ${s.site!.id} could not witness the coordinator's checkpoint${r['size'] !== undefined ? ` of size ${String(r['size'])}` : ''}: ${String(r['reason'])}`, s.name, i);
    });
    s.records.forEach((r, i) => {
      if (r?.kind !== 'site-result' || r['result'] !== 'completed') return;
      const sid = String(r['session']);
      const outcome = T.findIndex((t) => t?.kind === 'outcome' && t['session'] === sid);
      if (outcome < 0) return; // reported with the session check
      let covered = false;
      for (let j = i + 1; j < s.records.length; j++) {
        const w = s.records[j];
        if (w?.kind === 'session-start') break;
        if (w?.kind === 'witness' && (w['size'] as number) > outcome) { covered = true; break; }
      }
      if (!covered) b.fail(`site ${s.site!.id} saw session ${sid.slice(0, 16)}… complete but witnessed no checkpoint covering its outcome (transcript record ${outcome})`, s.name, i);
    });
    // Message digests: a different digest is a lie in one of the logs; a missing message was lost in transit.
    const siteMsgs = new Map<string, Set<string>>();
    s.records.forEach((r, i) => {
      if (r?.kind !== 'message') return;
      if (r['peer'] !== s.site!.clientId) b.fail(`message record with peer ${String(r['peer'])}, not the site's client id ${s.site!.clientId}`, s.name, i);
      const k = key(r);
      if (!siteMsgs.has(k)) siteMsgs.set(k, new Set());
      siteMsgs.get(k)!.add(String(r['sha256']));
      const c = coordMsgs.get(k);
      if (c !== undefined && !c.has(String(r['sha256']))) {
        b.fail(`message (session ${String(r['session'])}, round ${String(r['round'])}, ${String(r['direction'])}): digest ${short(String(r['sha256']))} in the site's log, ${[...c].map(short).join(', ')} in the transcript`, s.name, i);
      }
    });
    const siteSessions = new Set(s.records.filter((r) => r?.kind === 'session-start').map((r) => String(r!['session'])));
    s.records.forEach((r, i) => {
      if (r?.kind === 'session-start' && !coordSessions.has(String(r['session']))) b.fail(`site ${s.site!.id} took part in session ${String(r['session'])}, which the transcript does not hold`, s.name, i);
    });
    let onlyCoord = 0, onlySite = 0, both = 0;
    for (const [k, _] of coordMsgs) {
      const [sess, , , peer] = k.split('|');
      if (!siteSessions.has(sess!) || Number(peer) !== s.site.clientId) continue;
      if (siteMsgs.has(k)) both++; else onlyCoord++;
    }
    for (const k of siteMsgs.keys()) if (!coordMsgs.has(k)) onlySite++;
    if (ok) b.pass(`${s.lines.length} records signed by the roster key of site ${s.site.id}; ${witnesses} witnessed checkpoint(s)`, s.name);
    b.pass(`${both} message(s) in both logs with the same digest${onlyCoord + onlySite > 0 ? `; ${onlyCoord} only in the transcript, ${onlySite} only in the site's log (lost in transit, or after the site left)` : ''}`, s.name);
  }
}

function checkConfig(x: { manifest: Record<string, unknown>; runRec: Rec | undefined; configRec: Rec | undefined; coordKeyHex: string; approved: string | undefined }): AuditCheck {
  const b = new Builder('config');
  const sw = x.runRec?.['software'];
  if (!isObj(sw) || typeof sw['version'] !== 'string') b.fail('no software version recorded in the run record', 'transcript', 0);
  else {
    b.pass(`software ${String(sw['name'])} ${sw['version']} (node ${String(sw['node'])})`, 'transcript', 0);
    const msw = x.manifest['software'];
    if (isObj(msw) && canonicalJson(msw) !== canonicalJson(sw)) b.fail(`bundle.json names software ${String(msw['name'])} ${String(msw['version'])}, the run record ${String(sw['name'])} ${sw['version']}`);
  }
  if (x.configRec === undefined) {
    b.fail('no config record: the configuration that ran is not recorded', 'transcript');
    return b.done('');
  }
  const cfg = x.configRec['config'];
  const ranHash = sha256Hex(canonicalJson(cfg));
  if (ranHash !== x.configRec['hash']) b.fail(`config record hash ${short(String(x.configRec['hash']))} is not the SHA-256 ${short(ranHash)} of its config`, 'transcript', x.configRec.seq);
  else b.pass(`the configuration that ran has SHA-256 ${ranHash}`, 'transcript', x.configRec.seq);
  const ranConsortium = consortiumOf(cfg);
  const ranKey = auditKeyOf(ranConsortium);
  if (ranKey !== undefined && ranKey !== x.coordKeyHex) b.fail(`the run's consortium names coordinator.auditKey ${short(ranKey)}, the bundle is signed by ${short(x.coordKeyHex)}`, 'transcript', x.configRec.seq);

  if (x.approved === undefined) {
    b.pass('no approved configuration given (--config): the configuration that ran was not compared');
    return b.done(`config ${short(ranHash)} recorded (not compared: no --config); software ${isObj(sw) ? String(sw['version']) : '?'}`);
  }
  let approved: unknown;
  try {
    approved = JSON.parse(readFileSync(x.approved, 'utf8')) as unknown;
  } catch (err) {
    b.fail(`the approved configuration ${x.approved} cannot be read as JSON (${(err as Error).message})`);
    return b.done('');
  }
  const approvedHash = sha256Hex(canonicalJson(approved));
  let what: string;
  if (approvedHash === ranHash) {
    what = 'the whole run configuration';
    b.pass(`${what} is the approved one (SHA-256 ${approvedHash})`);
  } else if (isObj(approved) && (Array.isArray(approved['roster']) || Array.isArray(approved['sites']))) {
    what = 'the consortium';
    const ranC = isObj(cfg) && isObj(cfg['consortium']) ? cfg['consortium'] : undefined;
    if (ranC === undefined) b.fail(`${x.approved} is a consortium file, but the run's config has no consortium part`, 'transcript', x.configRec.seq);
    else {
      const ranCHash = sha256Hex(canonicalJson(ranC));
      if (ranCHash === approvedHash) b.pass(`the consortium that ran is the approved one (SHA-256 ${approvedHash})`);
      else {
        const keys = new Set([...Object.keys(ranC), ...Object.keys(approved)]);
        const diff = [...keys].filter((k) => canonicalJson(ranC[k]) !== canonicalJson((approved as Record<string, unknown>)[k])).sort();
        b.fail(`the consortium that ran (SHA-256 ${short(ranCHash)}) is not the approved one (${short(approvedHash)}): ${diff.join(', ')} differ`, 'transcript', x.configRec.seq);
      }
    }
    const key = auditKeyOf(approved);
    if (key !== undefined) {
      if (key === x.coordKeyHex) b.pass(`the bundle is signed by the approved coordinator.auditKey ${short(key)}`);
      else b.fail(`the bundle is signed by ${short(x.coordKeyHex)}, the approved coordinator.auditKey is ${short(key)}`);
    }
  } else {
    what = 'the job';
    const ranJ = isObj(cfg) ? cfg['job'] : undefined;
    if (ranJ === undefined) b.fail(`${x.approved} is not a consortium file (no roster), and the run's config has no job part to compare it with`, 'transcript', x.configRec.seq);
    else {
      const ranJHash = sha256Hex(canonicalJson(ranJ));
      if (ranJHash === approvedHash) b.pass(`the job that ran is the approved one (SHA-256 ${approvedHash})`);
      else b.fail(`the job that ran (SHA-256 ${short(ranJHash)}) is not the approved one (${short(approvedHash)})`, 'transcript', x.configRec.seq);
    }
  }
  return b.done(`${what} that ran is the approved one; software ${isObj(sw) ? String(sw['version']) : '?'}`);
}

interface SessionView {
  start: Rec | undefined;
  rounds: Map<number, number[]>;
  outcome: Rec | undefined;
}

function checkProtocol(x: { transcript: Log; sites: (Log & { site: RosterEntry | undefined })[]; policy: Record<string, unknown> | undefined; structure: readonly AuditFinding[] }): AuditCheck {
  const b = new Builder('protocol');
  // The session structure as verifyTranscript checks it in each log (a session starts once, rounds in order, one outcome).
  for (const f of x.structure) b.add(f.ok, f.what, f.log, f.seq);
  const minRaw = x.policy?.['minSurvivors'];
  const min = typeof minRaw === 'number' ? minRaw : undefined;
  if (min === undefined) b.fail('the run record holds no policy with minSurvivors', 'transcript', 0);
  const sessions = new Map<string, SessionView>();
  const view = (sid: string): SessionView => {
    let s = sessions.get(sid);
    if (s === undefined) { s = { start: undefined, rounds: new Map(), outcome: undefined }; sessions.set(sid, s); }
    return s;
  };
  // Reveals by session: who revealed which peers' self-mask and key shares, in the transcript and in each site log.
  const reveals = new Map<string, { log: string; seq: number; peer: number; self: number[]; key: number[] }[]>();
  const coordReveal = new Map<string, Rec>();
  x.transcript.records.forEach((r) => {
    if (r === undefined || typeof r['session'] !== 'string') return;
    const sid = r['session'];
    if (r.kind === 'session-start') view(sid).start ??= r;
    else if (r.kind === 'round' && Array.isArray(r['participants'])) view(sid).rounds.set(r['round'] as number, ids(r['participants']));
    else if (r.kind === 'outcome') view(sid).outcome ??= r;
    else if (r.kind === 'reveal') {
      if (!reveals.has(sid)) reveals.set(sid, []);
      reveals.get(sid)!.push({ log: 'transcript', seq: r.seq, peer: r['peer'] as number, self: ids(r['selfShares']), key: ids(r['keyShares']) });
      coordReveal.set(`${sid}|${String(r['peer'])}`, r);
    }
  });
  for (const s of x.sites) {
    s.records.forEach((r, i) => {
      if (r === undefined || typeof r['session'] !== 'string') return;
      const sid = r['session'];
      if (r.kind === 'reveal') {
        if (!reveals.has(sid)) reveals.set(sid, []);
        reveals.get(sid)!.push({ log: s.name, seq: i, peer: r['peer'] as number, self: ids(r['selfShares']), key: ids(r['keyShares']) });
        const c = coordReveal.get(`${sid}|${String(r['peer'])}`);
        if (c !== undefined && (canonicalJson(ids(c['selfShares'])) !== canonicalJson(ids(r['selfShares'])) || canonicalJson(ids(c['keyShares'])) !== canonicalJson(ids(r['keyShares'])))) {
          b.fail(`session ${sid}: the site's reveal differs from the coordinator's record of it (seq ${c.seq})`, s.name, i);
        }
      } else if (r.kind === 'site-result' && r['result'] === 'completed') {
        const o = sessions.get(sid)?.outcome;
        if (o === undefined) { b.fail(`session ${sid}: the site saw a completed session the transcript has no outcome for`, s.name, i); return; }
        if (o['result'] !== 'completed') { b.fail(`session ${sid}: the site saw it complete, the transcript says ${String(o['result'])}`, s.name, i); return; }
        if (Array.isArray(r['survivors']) && canonicalJson(ids(r['survivors'])) !== canonicalJson(ids(o['survivors']))) b.fail(`session ${sid}: the site was told survivors ${ids(r['survivors']).join(',')}, the transcript says ${ids(o['survivors']).join(',')}`, s.name, i);
        if (typeof r['sumSha256'] === 'string' && r['sumSha256'] !== o['sumSha256']) b.fail(`session ${sid}: the sum the site received is not the sum in the transcript's outcome`, s.name, i);
      }
    });
  }

  let completed = 0, aborted = 0;
  for (const [sid, s] of sessions) {
    if (s.start === undefined) { b.fail(`session ${sid} has records but no session-start`, 'transcript'); continue; }
    const seq = s.start.seq;
    const t = s.start['threshold'] as number;
    const cohort = ids(s.start['clientIds']);
    if (min !== undefined) {
      if (cohort.length < min) b.fail(`session ${sid}: a cohort of ${cohort.length} sites, below the policy minimum ${min}`, 'transcript', seq);
      if (t < min) b.fail(`session ${sid}: threshold ${t} below the policy minimum ${min}`, 'transcript', seq);
    }
    // U(i+1) ⊆ U(i) for the recorded rounds.
    const rounds = [...s.rounds.keys()].sort((a, c) => a - c);
    for (let k = 1; k < rounds.length; k++) {
      const prev = new Set(s.rounds.get(rounds[k - 1]!)!);
      const extra = s.rounds.get(rounds[k]!)!.filter((v) => !prev.has(v));
      if (extra.length > 0) b.fail(`session ${sid}: U${rounds[k]} ⊄ U${rounds[k - 1]}: ${extra.join(',')} not in round ${rounds[k - 1]}`, 'transcript', seq);
    }
    const inRoster = new Set(cohort);
    for (const [rn, p] of s.rounds) {
      const out = p.filter((v) => !inRoster.has(v));
      if (out.length > 0) b.fail(`session ${sid}: round ${rn} participants ${out.join(',')} are not in the cohort`, 'transcript', seq);
    }
    const o = s.outcome;
    if (o === undefined) { b.fail(`session ${sid} has no outcome`, 'transcript', seq); continue; }
    if (o['result'] === 'completed') {
      completed++;
      const surv = ids(o['survivors']);
      if (surv.length < t) b.fail(`session ${sid}: |U| = ${surv.length} survivors, below the threshold t = ${t}`, 'transcript', o.seq);
      if (min !== undefined && surv.length < min) b.fail(`session ${sid}: ${surv.length} survivors, below the policy minimum ${min}`, 'transcript', o.seq);
      const r0 = s.rounds.get(0);
      if (min !== undefined && r0 !== undefined && r0.length < min) b.fail(`session ${sid}: ${r0.length} sites in round 0, below the policy minimum ${min}`, 'transcript', o.seq);
      const masked = new Set(s.rounds.get(2) ?? []);
      const notMasked = surv.filter((v) => !masked.has(v));
      if (notMasked.length > 0) b.fail(`session ${sid}: survivors ${notMasked.join(',')} are not in U2 (sent no masked input)`, 'transcript', o.seq);
    } else aborted++;
    // No site revealed both shares of a peer, and no peer had both kinds of share revealed at all.
    const rv = reveals.get(sid) ?? [];
    const perSender = new Map<string, { self: Set<number>; key: Set<number>; log: string; seq: number }>();
    const allSelf = new Set<number>(), allKey = new Set<number>();
    for (const r of rv) {
      const k = `${r.log === 'transcript' ? '' : `${r.log}:`}${r.peer}`;
      const e = perSender.get(k) ?? { self: new Set<number>(), key: new Set<number>(), log: r.log, seq: r.seq };
      r.self.forEach((v) => { e.self.add(v); allSelf.add(v); });
      r.key.forEach((v) => { e.key.add(v); allKey.add(v); });
      perSender.set(k, e);
      const both = [...e.self].filter((v) => e.key.has(v));
      if (both.length > 0) b.fail(`session ${sid}: client ${r.peer} revealed both the self-mask share and the key share of ${both.join(',')}`, r.log, r.seq);
    }
    const both = [...allSelf].filter((v) => allKey.has(v));
    if (both.length > 0) b.fail(`session ${sid}: both the self-mask and the key shares of client(s) ${both.join(',')} were revealed (the coordinator could unmask their input)`, 'transcript', o.seq);
  }
  for (const [sid] of reveals) if (!sessions.has(sid)) b.fail(`reveal records for session ${sid}, which the transcript does not hold`);
  b.pass(`${sessions.size} session(s): ${completed} completed, ${aborted} aborted${min !== undefined ? `; policy minimum ${min}` : ''}`);
  return b.done(`${sessions.size} session(s) (${completed} completed): |U| ≥ t, U4 ⊆ U3 ⊆ U2 ⊆ U1 ⊆ U0, no double reveal, cohort ≥ ${min ?? '?'}`);
}

function checkPrivacy(x: { transcript: Log; policy: Record<string, unknown> | undefined }): AuditCheck {
  const b = new Builder('privacy');
  const T = x.transcript.records;
  const events = T.filter((r): r is Rec => r?.kind === 'dp-event');
  if (x.policy === undefined) { b.fail('the run record holds no policy: the DP budget is unknown', 'transcript', 0); return b.done(''); }
  const budget = x.policy['budget'];
  if (budget === null) {
    if (events.length > 0) b.fail(`${events.length} dp-event record(s) in a run whose policy has no DP budget`, 'transcript', events[0]!.seq);
    else b.pass('no DP in this run (the policy\'s budget is null): no ε is claimed; released sums carry no noise');
    return b.done('no DP in this run (budget null): nothing to recompute');
  }
  if (!isObj(budget) || typeof budget['epsilon'] !== 'number' || typeof budget['delta'] !== 'number') {
    b.fail('the policy\'s budget is not {epsilon, delta}', 'transcript', 0);
    return b.done('');
  }
  const eps = budget['epsilon'], delta = budget['delta'];
  const accountant = x.policy['accountant'] === 'pld' ? 'pld' : x.policy['accountant'] === undefined || x.policy['accountant'] === 'rdp' ? 'rdp' : undefined;
  if (accountant === undefined) { b.fail(`unknown accountant ${JSON.stringify(x.policy['accountant'])}`, 'transcript', 0); return b.done(''); }
  let ledger: PrivacyLedger;
  try { ledger = new PrivacyLedger({ accountant }); } catch (err) { b.fail(`cannot build the ${accountant} accountant: ${(err as Error).message}`); return b.done(''); }
  let last = 0;
  let recomputedOk = true;
  const noisy = new Map<string, number>(); // session → seq of its noisy dp-event
  for (const r of events) {
    let got: number;
    try {
      ledger.record(r['event'] as DpEvent);
      got = ledger.epsilon(delta);
    } catch (err) {
      b.fail(`the event cannot be accounted: ${(err as Error).message}`, 'transcript', r.seq);
      recomputedOk = false;
      continue;
    }
    const logged = r['epsilon'];
    if (typeof logged !== 'number' || !(Math.abs(got - logged) <= EPSILON_TOLERANCE * Math.max(Math.abs(got), Math.abs(logged)))) {
      b.fail(`logged ε = ${String(logged)}, recomputed with the ${accountant} accountant ε = ${got} at δ = ${delta}`, 'transcript', r.seq);
      recomputedOk = false;
    }
    if (got > eps + 1e-9) b.fail(`ε = ${got} exceeds the budget ε = ${eps}`, 'transcript', r.seq);
    last = got;
    if (typeof r['session'] === 'string') {
      if (eventHasNoise(r['event'])) noisy.set(r['session'], r.seq);
      else b.fail(`session ${r['session']}: the DP event adds no noise`, 'transcript', r.seq);
    }
  }
  if (recomputedOk) b.pass(`${events.length} DP event(s) recomputed with the ${accountant} accountant at δ = ${delta}: ε = ${last} of the budget ${eps}`);
  let released = 0;
  for (const r of T) {
    if (r?.kind !== 'fl-session') continue;
    const sid = String(r['session']);
    const needs = (r['purpose'] === 'train' && r['result'] === 'completed') || r['charged'] === true;
    if (!needs) continue;
    released++;
    const at = noisy.get(sid);
    if (at === undefined || at > r.seq) b.fail(`session ${sid} (${String(r['purpose'])}, ${String(r['result'])}${r['charged'] === true ? ', charged' : ''}) has no noisy dp-event before it`, 'transcript', r.seq);
  }
  b.pass(`${released} training sum(s) released or charged, each after its DP event`);
  return b.done(`ε = ${last} recomputed from ${events.length} event(s) (${accountant}, δ = ${delta}), within the budget ${eps}; noise before every release`);
}

function checkSecrets(x: { dir: string; transcript: Log; sites: Log[]; coordKeyHex: string; roster: RosterEntry[]; extraFiles: readonly string[] }): AuditCheck {
  const b = new Builder('secrets');
  // Fields outside the spec.
  let records = 0;
  for (const log of [x.transcript, ...x.sites]) {
    log.records.forEach((r, i) => {
      if (r === undefined) return;
      records++;
      const allowed = SPEC_FIELDS[r.kind];
      if (allowed === undefined) return;
      const extra = Object.keys(r).filter((f) => f !== 'kind' && f !== 'seq' && !allowed.includes(f));
      if (extra.length > 0) b.fail(`${r.kind} record with field(s) outside the spec: ${extra.join(', ')}`, log.name, i);
    });
  }
  // Every file: PEM private keys, and 64-hex strings that are an Ed25519 seed of a known key.
  const keys = new Set<string>([x.coordKeyHex, ...x.roster.map((s) => s.publicKey)]);
  for (const s of x.sites) { const r0 = s.records[0]; if (typeof r0?.['signer'] === 'string') keys.add(r0['signer']); }
  const files = [...filesUnder(x.dir), ...x.extraFiles];
  const logOf = new Map<string, string>([[x.transcript.file, x.transcript.name], ...x.sites.map((s): [string, string] => [s.file, s.name])]);
  const tried = new Map<string, boolean>();
  let bytes = 0;
  for (const file of files) {
    let text: string;
    try { text = readFileSync(file, 'utf8'); } catch (err) { b.fail(`cannot read ${file} (${(err as Error).message})`); continue; }
    bytes += text.length;
    const name = relative(x.dir, file).startsWith('..') ? file : relative(x.dir, file);
    if (/PRIVATE KEY/.test(text)) b.fail(`${name} holds a PEM "PRIVATE KEY"`);
    const lineOf = (pos: number): number => text.slice(0, pos).split('\n').length - 1;
    for (const m of text.matchAll(/[0-9a-fA-F]{64,}/g)) {
      const run = m[0];
      for (let o = 0; o + 64 <= run.length; o += (run.length === 64 ? 64 : 2)) {
        const cand = run.slice(o, o + 64).toLowerCase();
        let hit = tried.get(cand);
        if (hit === undefined) {
          try { hit = keys.has(Buffer.from(nativeProvider.ed25519PublicKey(fromHex(cand))).toString('hex')); } catch { hit = false; }
          tried.set(cand, hit);
        }
        if (hit) {
          const line = lineOf(m.index! + o);
          const log = logOf.get(file);
          b.fail(`${name} line ${line + 1} holds the Ed25519 seed of a coordinator or site key`, log, log !== undefined ? line : undefined);
        }
      }
    }
  }
  b.pass(`scanned ${files.length} file(s) (${bytes} characters, ${records} records): field sets, PEM private keys, ${tried.size} distinct 64-hex strings against ${keys.size} Ed25519 keys`);
  return b.done(`no secret found in ${files.length} file(s): ${records} records within the spec's fields, no private key, no seed of ${keys.size} keys`);
}
