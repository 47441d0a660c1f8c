/**
 * `tally audit report`: one self-contained HTML file about a run's audit
 * bundle, laid out like a section of a data-protection impact assessment
 * (DPIA), for a privacy officer (docs/privacy-officer-guide.md).
 *
 * The page holds everything it shows: CSS inline, charts as inline SVG
 * rendered here (`_charts.ts`), no script and no link to anything outside
 * it, so it opens offline and prints as it looks. Every string taken from a
 * record is escaped: a bundle is evidence handed over by others, and a site
 * id or an error message in it is untrusted text.
 *
 * {@link renderReport} is pure (facts, verdict and rendered charts in, HTML
 * out); {@link writeReport} reads the bundle, verifies it (`verify.ts`),
 * renders the charts and writes the file, and with `pdf` prints it with
 * Chromium.
 * @module
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { TallyError, type AuditCode } from '../errors.js';
import { packageRoot } from '../vectors/common.js';
import { readBundle, type Bundle } from './bundle.js';
import { verifyBundle, type BundleVerdict } from './verify.js';
import { renderCharts, type ChartData, type ChartSvgs, type DropPoint, type FunnelPoint } from './_charts.js';

// ------------------------------------------------------------- verdict

export type { AuditCheck, AuditCheckId, AuditFinding, BundleVerdict } from './verify.js';

// ------------------------------------------------------------- errors

/** The report could not be written (no browser for the PDF, Chromium failed). */
export class ReportError extends TallyError {
  declare readonly code: AuditCode;
  constructor(code: AuditCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

// ------------------------------------------------------------- facts

type Obj = Readonly<Record<string, unknown>>;
const isObj = (x: unknown): x is Obj => x !== null && typeof x === 'object' && !Array.isArray(x);
const str = (x: unknown): string | undefined => (typeof x === 'string' ? x : undefined);
const num = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);
const arr = (x: unknown): readonly unknown[] => (Array.isArray(x) ? x : []);

/** Parses JSON lines, keeping only objects (a malformed line is the verifier's to report). */
function records(lines: readonly string[]): Obj[] {
  const out: Obj[] = [];
  for (const l of lines) {
    try {
      const r: unknown = JSON.parse(l);
      if (isObj(r)) out.push(r);
    } catch { /* reported by the verifier */ }
  }
  return out;
}

/** One secure-aggregation session as the coordinator's transcript tells it. */
export interface SessionFacts {
  readonly session: string;
  readonly purpose: string | undefined;
  readonly trainingRound: number | undefined;
  readonly cohort: number | undefined;
  readonly threshold: number | undefined;
  readonly dim: number | undefined;
  readonly bits: number | undefined;
  readonly threat: string | undefined;
  /** Participants accepted in R0..R4 (undefined: no record of that round). */
  readonly participants: readonly (number | undefined)[];
  readonly result: string | undefined;
  readonly survivors: number | undefined;
  readonly abortCode: string | undefined;
}

/** A site log found in the bundle. */
export interface SiteLogFacts {
  readonly file: string;
  readonly site: string | undefined;
  readonly signer: string | undefined;
  readonly records: number;
  readonly witnesses: number;
  readonly lastWitness: { readonly size: number; readonly root: string } | undefined;
}

/** What the report says, read from the bundle's records (untrusted until the verdict says otherwise). */
export interface ReportFacts {
  readonly dir: string;
  readonly run: string;
  readonly created: string | undefined;
  readonly coordinatorKey: string | undefined;
  readonly software: Obj | undefined;
  readonly policy: { readonly minSurvivors: number | undefined; readonly budget: { readonly epsilon: number; readonly delta: number } | null; readonly accountant: string | undefined };
  readonly config: unknown;
  readonly configHash: string | undefined;
  readonly consortium: Obj | undefined;
  readonly job: Obj | undefined;
  readonly sessions: readonly SessionFacts[];
  readonly epsilonSpent: number | undefined;
  readonly dpEvents: number;
  readonly records: number;
  readonly checkpoints: number;
  readonly lastCheckpoint: { readonly size: number; readonly root: string; readonly signature: string } | undefined;
  readonly siteLogs: readonly SiteLogFacts[];
  readonly charts: ChartData;
}

/** Reads the facts of a bundle (never throws on a malformed record: it is left out). */
export function reportFacts(b: Bundle): ReportFacts {
  const recs = records(b.transcript);
  const run = recs.find((r) => r['kind'] === 'run');
  const cfg = recs.find((r) => r['kind'] === 'config');
  const config = cfg?.['config'];
  const consortium = isObj(config) ? (isObj(config['consortium']) ? config['consortium'] : Array.isArray(config['roster']) ? config : undefined) : undefined;
  const job = isObj(config) && isObj(config['job']) ? config['job'] : isObj(consortium?.['training']) ? consortium['training'] : undefined;
  const pol = isObj(run?.['policy']) ? run['policy'] : {};
  const bud = isObj(pol['budget']) ? pol['budget'] : undefined;
  const budget = bud !== undefined && num(bud['epsilon']) !== undefined && num(bud['delta']) !== undefined ? { epsilon: bud['epsilon'] as number, delta: bud['delta'] as number } : null;

  // Sessions, in order of their start.
  interface S { start: Obj | undefined; parts: (number | undefined)[]; outcome: Obj | undefined; fl: Obj | undefined }
  const sessions = new Map<string, S>();
  const get = (id: string): S => {
    let s = sessions.get(id);
    if (s === undefined) { s = { start: undefined, parts: [], outcome: undefined, fl: undefined }; sessions.set(id, s); }
    return s;
  };
  const funnel: FunnelPoint[] = [];
  const drops: DropPoint[] = [];
  const stepOf = (r: unknown): string => { const n = num(r); return n !== undefined && n >= 0 && n <= 4 ? `R${n}` : 'after'; };
  const addDrops = (list: unknown): void => {
    for (const d of arr(list)) if (isObj(d)) drops.push({ step: stepOf(d['round']), code: str(d['code']) ?? 'unknown' });
  };
  const eps: { round: number; epsilon: number }[] = [];
  const loss: { round: number; loss: number }[] = [];
  let epsilonSpent: number | undefined;
  let dpEvents = 0;
  let checkpoints = 0;
  let lastCheckpoint: ReportFacts['lastCheckpoint'];
  for (const r of recs) {
    const sid = str(r['session']);
    switch (r['kind']) {
      case 'session-start': if (sid !== undefined) get(sid).start = r; break;
      case 'round': {
        if (sid === undefined) break;
        const round = num(r['round']);
        const p = r['participants'];
        if (round !== undefined && round >= 0 && round <= 4 && Array.isArray(p)) get(sid).parts[round] = p.length;
        addDrops(r['dropped']);
        break;
      }
      case 'outcome': if (sid !== undefined) get(sid).outcome = r; addDrops(r['dropped']); break;
      case 'fl-session': {
        if (sid !== undefined) get(sid).fl = r;
        const m = isObj(r['metrics']) ? r['metrics'] : undefined;
        const l = num(m?.['evalLoss']);
        const round = num(r['round']);
        if (r['purpose'] === 'eval' && r['result'] === 'completed' && l !== undefined && round !== undefined) loss.push({ round, loss: l });
        break;
      }
      case 'dp-event': {
        const e = num(r['epsilon']);
        if (e === undefined) break;
        dpEvents++;
        epsilonSpent = e;
        const round = num(r['round']) ?? dpEvents;
        const at = eps.findIndex((p) => p.round === round);
        if (at >= 0) eps[at] = { round, epsilon: Math.max(eps[at]!.epsilon, e) }; else eps.push({ round, epsilon: e });
        break;
      }
      case 'checkpoint': {
        checkpoints++;
        const size = num(r['size']), root = str(r['root']), signature = str(r['signature']);
        if (size !== undefined && root !== undefined && signature !== undefined) lastCheckpoint = { size, root, signature };
        break;
      }
      default: break;
    }
  }
  const out: SessionFacts[] = [];
  for (const [session, s] of sessions) {
    const survivors = arr(s.outcome?.['survivors']).length;
    const result = str(s.outcome?.['result']);
    out.push({
      session, purpose: str(s.fl?.['purpose']), trainingRound: num(s.fl?.['round']),
      cohort: s.start !== undefined ? arr(s.start['clientIds']).length : undefined, threshold: num(s.start?.['threshold']),
      dim: num(s.start?.['dim']), bits: num(s.start?.['bits']), threat: str(s.start?.['threat']),
      participants: [0, 1, 2, 3, 4].map((i) => s.parts[i]), result,
      survivors: result === 'completed' ? survivors : undefined, abortCode: result === 'aborted' ? str(s.outcome?.['code']) : undefined,
    });
    const purpose = str(s.fl?.['purpose']) ?? 'secure sum';
    s.parts.forEach((c, i) => { if (c !== undefined) funnel.push({ session, purpose, step: `R${i}`, count: c }); });
    if (result === 'completed') funnel.push({ session, purpose, step: 'sum', count: survivors });
  }
  const siteLogs: SiteLogFacts[] = [];
  for (const [file, lines] of b.siteLogs) {
    const rs = records(lines);
    const sr = rs.find((r) => r['kind'] === 'run');
    const ws = rs.filter((r) => r['kind'] === 'witness');
    const lw = ws.at(-1);
    const size = num(lw?.['size']), root = str(lw?.['root']);
    siteLogs.push({
      file, site: str(sr?.['site']), signer: str(sr?.['signer']), records: lines.length, witnesses: ws.length,
      lastWitness: size !== undefined && root !== undefined ? { size, root } : undefined,
    });
  }
  return {
    dir: b.dir, run: str(run?.['run']) ?? b.manifest.run, created: str(b.manifest.created), coordinatorKey: str(b.manifest.coordinatorKey) ?? str(run?.['signer']),
    software: isObj(run?.['software']) ? run['software'] : isObj(b.manifest.software) ? (b.manifest.software as unknown as Obj) : undefined,
    policy: { minSurvivors: num(pol['minSurvivors']), budget, accountant: str(pol['accountant']) },
    config, configHash: str(cfg?.['hash']), consortium, job,
    sessions: out, epsilonSpent, dpEvents, records: recs.length, checkpoints, lastCheckpoint, siteLogs,
    charts: { epsilon: eps.sort((a, b) => a.round - b.round), budget: budget?.epsilon ?? null, delta: budget?.delta ?? null, funnel, drops, loss: loss.sort((a, b) => a.round - b.round) },
  };
}

// ------------------------------------------------------------- HTML

/** Escapes text for HTML element content and quoted attribute values. */
export function esc(x: unknown): string {
  return String(x).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A key's fingerprint: the first 16 bytes of SHA-256 of the raw key, hex in groups of four. */
export function fingerprint(keyHex: string | undefined): string {
  if (keyHex === undefined || !/^[0-9a-f]{64}$/.test(keyHex)) return 'unknown';
  const h = createHash('sha256').update(Buffer.from(keyHex, 'hex')).digest('hex').slice(0, 32);
  return h.match(/.{4}/g)!.join(' ');
}

const fmtNum = (x: number | undefined, digits = 3): string => (x === undefined ? '—' : Number.isInteger(x) ? String(x) : String(Number(x.toPrecision(digits))));
const code = (x: unknown): string => `<code>${esc(x)}</code>`;
const badge = (ok: boolean): string => (ok ? '<span class="badge pass">PASS</span>' : '<span class="badge fail">FAIL</span>');

function table(head: readonly string[], rows: readonly (readonly string[])[], cls = ''): string {
  return `<table${cls !== '' ? ` class="${cls}"` : ''}><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

/** A chart's figure: the inline SVG (made by vega from numbers and escaped labels) or a line saying why there is none. */
function figure(id: string, svg: string | null, caption: string, none: string): string {
  if (svg === null) return `<p class="none" id="${id}">${esc(none)}</p>`;
  // The XML prolog, if any, is not HTML; an inline <svg> needs no namespace declaration.
  const inline = svg.replace(/^<\?xml[^>]*>\s*/, '');
  return `<figure class="chart" id="${id}">${inline}<figcaption>${caption}</figcaption></figure>`;
}

/** The data-flow diagram: sites, what leaves them, the coordinator, what it learns. */
function dataFlow(f: ReportFacts, sites: readonly string[], plain: boolean): string {
  const shown = sites.slice(0, 4);
  const more = sites.length - shown.length;
  const boxes = [...shown.map((s) => s), ...(more > 0 ? [`… and ${more} more`] : [])];
  const h = Math.max(boxes.length * 52 + 46, 200);
  const t = num(f.consortium?.['aggregation'] !== undefined && isObj(f.consortium['aggregation']) ? f.consortium['aggregation']['threshold'] : undefined) ?? f.policy.minSurvivors;
  const siteBoxes = boxes.map((s, i) => {
    const y = 40 + i * 52;
    const label = s.length > 22 ? `${s.slice(0, 21)}…` : s;
    return `<rect x="10" y="${y}" width="170" height="38" rx="6" class="site"/><text x="95" y="${y + 17}" text-anchor="middle" class="lbl">${esc(label)}</text>` +
      `<text x="95" y="${y + 31}" text-anchor="middle" class="small">data stays here</text>` +
      `<line x1="180" y1="${y + 19}" x2="388" y2="${h / 2}" class="arrow" marker-end="url(#arr)"/>`;
  }).join('');
  const cy = h / 2 - 40;
  return `<svg class="flow" role="img" aria-label="Data flow: sites send masked inputs to the coordinator, which learns only their sum" viewBox="0 0 820 ${h}" width="820" height="${h}">` +
    '<defs><marker id="arr" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>' +
    siteBoxes +
    `<text x="285" y="16" text-anchor="middle" class="small">${plain ? 'update in the clear (plain aggregation)' : 'masked, noised update (R2)'}</text>` +
    `<text x="285" y="30" text-anchor="middle" class="small">keys, encrypted shares (R0, R1, R4)</text>` +
    `<rect x="390" y="${cy}" width="180" height="80" rx="8" class="coord"/><text x="480" y="${cy + 30}" text-anchor="middle" class="lbl">coordinator</text>` +
    `<text x="480" y="${cy + 48}" text-anchor="middle" class="small">${plain ? 'sees each update' : 'removes the masks'}</text>` +
    `<text x="480" y="${cy + 63}" text-anchor="middle" class="small">${plain ? '' : `of the sum only (≥ ${esc(t ?? 't')} sites)`}</text>` +
    `<line x1="570" y1="${h / 2}" x2="640" y2="${h / 2}" class="arrow" marker-end="url(#arr)"/>` +
    `<rect x="642" y="${cy + 10}" width="168" height="60" rx="8" class="out"/><text x="726" y="${cy + 35}" text-anchor="middle" class="lbl">sum → new model</text>` +
    `<text x="726" y="${cy + 52}" text-anchor="middle" class="small">sent to every site</text>` +
    '</svg>';
}

const STYLE = `
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1b1b1b; background: #fff; margin: 0; line-height: 1.45; }
main { max-width: 980px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 1.7em; margin: 0.2em 0 0.1em; }
h2 { font-size: 1.3em; border-bottom: 2px solid #1f6fb2; padding-bottom: 4px; margin-top: 2.2em; }
h3 { font-size: 1.05em; margin-top: 1.5em; }
.sub { color: #555; margin: 0 0 1em; }
table { border-collapse: collapse; margin: 0.8em 0; width: 100%; font-size: 0.92em; }
th, td { border: 1px solid #d4d4d4; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f1f4f8; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.88em; }
code { overflow-wrap: anywhere; }
pre { background: #f6f8fa; border: 1px solid #e1e4e8; padding: 10px; overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
.verdict { padding: 12px 16px; border-radius: 6px; font-size: 1.1em; margin: 1em 0; }
.verdict.pass { background: #e6f4ea; border: 1px solid #34a853; }
.verdict.fail { background: #fce8e6; border: 1px solid #d93025; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.8em; font-weight: 600; color: #fff; }
.badge.pass { background: #188038; } .badge.fail { background: #c5221f; }
.note { background: #fff8e1; border-left: 4px solid #f4b400; padding: 8px 12px; }
figure.chart { margin: 1.2em 0; page-break-inside: avoid; }
figure.chart svg { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.88em; margin-top: 4px; }
.none { color: #555; font-style: italic; }
svg.flow { max-width: 100%; height: auto; font-family: inherit; }
svg.flow .site { fill: #e8f0fe; stroke: #1f6fb2; } svg.flow .coord { fill: #fef7e0; stroke: #b06000; } svg.flow .out { fill: #e6f4ea; stroke: #188038; }
svg.flow .lbl { font-size: 13px; font-weight: 600; fill: #1b1b1b; } svg.flow .small { font-size: 11px; fill: #444; }
svg.flow .arrow { stroke: #555; stroke-width: 1.4; }
nav ol { columns: 2; font-size: 0.95em; }
.findings li.fail { color: #a50e0e; }
@media print { main { padding: 0; } h2 { page-break-after: avoid; } a { color: inherit; text-decoration: none; } }
`;

/** What the report's generator is (the appendix's versions). */
export interface GeneratorInfo { readonly name: string; readonly version: string; readonly node: string; readonly vega?: string; readonly vegaLite?: string }

/** Everything {@link renderReport} draws. */
export interface ReportInput {
  readonly facts: ReportFacts;
  readonly verdict: BundleVerdict;
  readonly charts: ChartSvgs;
  /** When the report was made (ISO 8601); default now. */
  readonly generated?: string;
  readonly generator?: GeneratorInfo;
}

const PHASES: readonly (readonly [string, string, string])[] = [
  ['R0 AdvertiseKeys', 'two fresh public keys (key agreement, share encryption), signed with the roster key in the malicious model', 'public keys only'],
  ['R1 ShareKeys', "Shamir shares of its self-mask seed and of its key, each encrypted for the neighbour that holds it", 'ciphertexts the coordinator cannot read'],
  ['R2 MaskedInputCollection', 'its input plus pairwise and self masks, mod 2^b: for training, its clipped, rotated, DP-noised update; for evaluation, its held-out loss sum and token count', 'a uniformly random-looking vector'],
  ['R3 ConsistencyCheck', 'its signature over the list of sites that sent a masked input (malicious model only)', 'a signature'],
  ['R4 Unmasking', "shares of the self-mask seeds of surviving neighbours and of the keys of dropped neighbours, never both for one site", 'what removes the masks of the sum, and only of the sum'],
];

/** The report as one HTML document (pure: the same input gives the same text). */
export function renderReport(i: ReportInput): string {
  const { facts: f, verdict: v, charts: c } = i;
  const generated = i.generated ?? new Date().toISOString();
  const cons = f.consortium;
  const agg = isObj(cons?.['aggregation']) ? cons['aggregation'] : {};
  const roster = arr(cons?.['roster']).filter(isObj);
  const coord = isObj(cons?.['coordinator']) ? cons['coordinator'] : {};
  const job = f.job;
  const dp = isObj(job?.['dp']) ? job['dp'] : undefined;
  const plain = job?.['aggregator'] === 'plain';
  // A homomorphic consortium (he-sum-v1): the coordinator held ciphertexts and a sealed sum only.
  const heMode = agg['aggregator'] === 'he+masks' || agg['aggregator'] === 'he' ? agg['aggregator'] : undefined;
  const n = roster.length > 0 ? roster.length : f.sessions.find((s) => s.cohort !== undefined)?.cohort;
  const t = num(agg['threshold']) ?? f.policy.minSurvivors ?? f.sessions.find((s) => s.threshold !== undefined)?.threshold;
  const threat = str(agg['threat']) ?? f.sessions.find((s) => s.threat !== undefined)?.threat;
  const mechanism = str(dp?.['mechanism']);
  const noDp = f.policy.budget === null && (mechanism === undefined || mechanism === 'none');
  const siteIds = roster.map((r) => str(r['id']) ?? '?');
  const completed = f.sessions.filter((s) => s.result === 'completed').length;
  const aborted = f.sessions.filter((s) => s.result === 'aborted').length;
  const trainRounds = new Set(f.sessions.filter((s) => s.purpose === 'train' && s.result === 'completed').map((s) => s.trainingRound)).size;
  const toc: [string, string][] = [
    ['description', '1. Description of the processing'], ['parties', '2. Parties and roles'], ['threats', '3. Threat model'],
    ['privacy', '4. Differential privacy'], ['verification', '5. Verification'], ['run', '6. The run in figures'],
    ['evidence', '7. Evidence'], ['limits', '8. What this report cannot show'], ['appendix', 'Appendix: configuration and versions'],
  ];
  const out: string[] = [];
  const add = (s: string): void => { out.push(s); };

  add('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">');
  add('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; img-src data:">');
  add('<meta name="viewport" content="width=device-width, initial-scale=1">');
  add(`<title>tally audit report: run ${esc(f.run)}</title><style>${STYLE}</style></head><body><main>`);
  add(`<h1>Audit report: federated run <code>${esc(f.run)}</code></h1>`);
  add(`<p class="sub">${esc(str(cons?.['name']) ?? 'consortium')} · run started ${esc(f.created ?? 'unknown')} · report made ${esc(generated)} · bundle ${code(f.dir)}</p>`);
  add(`<div class="verdict ${v.ok ? 'pass' : 'fail'}" id="verdict">${badge(v.ok)} ${v.ok
    ? 'Every check of the bundle passed: the transcript is intact and signed, the configuration is the one recorded, the protocol ran within its rules, the privacy budget held, and no secret is in the records.'
    : `${v.checks.filter((x) => !x.ok).length} of ${v.checks.length} checks failed: see <a href="#verification">§5</a>. Until they are explained, treat the figures below as claims of the coordinator, not as evidence.`}</div>`);
  add(`<nav><ol>${toc.map(([id, h]) => `<li><a href="#${id}">${esc(h)}</a></li>`).join('')}</ol></nav>`);

  // 1. Description
  add('<section id="description"><h2>1. Description of the processing</h2>');
  add(`<p>${esc(n ?? 'Several')} sites ${job !== undefined
    ? `fine-tuned a shared model together for ${esc(num(job['rounds']) ?? '?')} rounds (a LoRA adapter of a common base model; strategy ${code(isObj(job['strategy']) ? (str(job['strategy']['kind']) ?? '?') : '?')}). Each round every site trained on its own data, and the coordinator learned ${plain ? '<strong>each site\'s update in the clear</strong> (plain aggregation)' : 'only the sum of their updates'}; a second secure sum per round gave the consortium-wide held-out loss.`
    : heMode !== undefined
      ? `computed sums of their inputs under homomorphic encryption (${code(heMode)}, he-sum-v1): the coordinator added ciphertexts and sent the sealed sum back; only the sites, which share the key, decrypted it. The coordinator learned neither an input nor a sum.`
      : 'computed secure sums of their inputs: the coordinator learned each sum, never an input.'}
    The transcript records ${f.sessions.length} secure-aggregation sessions (${completed} completed, ${aborted} aborted)${trainRounds > 0 ? ` over ${trainRounds} training rounds` : ''}.</p>`);
  add('<h3>Data flow</h3>');
  add(dataFlow(f, siteIds.length > 0 ? siteIds : Array.from({ length: Math.min(n ?? 3, 5) }, (_, k) => `site ${k + 1}`), plain));
  add('<h3>What leaves each site, per session</h3>');
  // A homomorphic run's R2: the masked input is encrypted under the sites' key, and R4 removes the masks inside the ciphertexts.
  const phases = heMode === undefined ? PHASES : PHASES.map(([a, b, cc]) => (a.startsWith('R2')
    ? [a, `its input${heMode === 'he+masks' ? ' plus pairwise and self masks, mod the plaintext modulus t,' : ''} encrypted under the key the sites share (BGV)`, 'a ciphertext it holds no key for'] as const
    : a.startsWith('R4') ? [a, b, 'what removes the masks inside the sealed sum; the sum stays encrypted'] as const : [a, b, cc] as const));
  add(table(['protocol round', 'what a site sends', 'what the coordinator can read of it'], phases.map(([a, b, cc]) => [esc(a), esc(b), esc(cc)])));
  add(`<p>Never sent: a site's records, its unmasked update, its private keys. ${plain
    ? '<strong>This run used plain aggregation: each site\'s update reached the coordinator in the clear, and secure aggregation protected nothing.</strong>'
    : heMode !== undefined
      ? `The coordinator learns no sum: it holds each completed session's sum over at least t = ${esc(t ?? '?')} sites encrypted, and learns which sites took part in each round and when they dropped out.`
      : `The coordinator learns the sum over at least t = ${esc(t ?? '?')} sites of each completed session, which sites took part in each round and when they dropped out.`}</p>`);
  add('</section>');

  // 2. Parties
  add('<section id="parties"><h2>2. Parties and roles</h2>');
  const siteLogBySite = new Map(f.siteLogs.map((s) => [s.site ?? s.file, s]));
  add(table(['party', 'role in the run', 'identity key (fingerprint)'], [
    [`coordinator ${str(coord['host']) !== undefined ? code(`${str(coord['host'])}:${esc(num(coord['port']) ?? '')}`) : ''}`, 'runs the sessions, removes the masks of each sum, updates the model, writes and signs the transcript', code(fingerprint(f.coordinatorKey))],
    ...roster.map((r, k) => {
      const id = str(r['id']) ?? '?';
      const log = siteLogBySite.get(id);
      return [`site ${code(id)} (${esc(str(r['name']) ?? '')}, client ${k + 1})`, `holds its own data; trains locally; sends masked inputs${log !== undefined ? '; its own signed log is in the bundle' : ''}`, code(fingerprint(str(r['publicKey'])))];
    }),
  ]));
  if (roster.length === 0) add('<p class="none">The configuration record names no roster.</p>');
  add('</section>');

  // 3. Threats
  add('<section id="threats"><h2>3. Threat model</h2>');
  add(table(['parameter', 'value', 'meaning'], [
    ['n (cohort)', esc(n ?? '?'), 'the sites whose inputs may be in one sum'],
    ['t (threshold)', esc(t ?? '?'), 'the fewest surviving sites whose sum is ever released; a coordinator colluding with fewer than t sites learns nothing about another site\'s input beyond the sum'],
    ['threat model', code(threat ?? '?'), threat === 'malicious' ? 'the coordinator may lie about who dropped out: every site signs its keys and checks that all survivors saw the same set (R3)' : 'the coordinator follows the protocol but tries to learn more than the sum'],
    ['neighbour graph', code(`${str(agg['graph']) ?? '?'}${num(agg['degree']) !== undefined ? ` (k = ${num(agg['degree'])})` : ''}`), 'which sites share masks with each other'],
    ['modulus', esc(`b = ${num(agg['bits']) ?? f.sessions[0]?.bits ?? '?'} bits`), 'every input is summed mod 2^b'],
    ['aggregation', plain ? '<strong>plain</strong>' : heMode !== undefined ? code(heMode) : 'secure', plain
      ? 'every update reaches the coordinator in the clear'
      : heMode === 'he+masks'
        ? 'homomorphic summation (BGV, Microsoft SEAL) with the secure-aggregation masks inside the plaintexts: the coordinator never holds the sum; with one site\'s key it still learns only the sum'
        : heMode === 'he'
          ? 'homomorphic summation (BGV, Microsoft SEAL) without masks: the coordinator never holds the sum, but <strong>with any one site\'s key it can read every input</strong>'
          : 'Bonawitz et al. (CCS 2017) secure aggregation, SecAgg+ graphs (Bell et al., CCS 2020)'],
  ]));
  add(`<p class="note">Not protected: a coordinator colluding with <strong>t = ${esc(t ?? '?')} or more</strong> sites can rebuild any site's masks; sites can send any vector (secure aggregation hides inputs, it does not check them); who connects, when and how much is visible on the network. See docs/threat-model.md of tally.</p>`);
  add('</section>');

  // 4. DP
  add('<section id="privacy"><h2>4. Differential privacy</h2>');
  if (noDp) {
    add('<p class="note"><strong>This run used no differential privacy.</strong> The sums, and the model computed from them, carry no formal bound on what they reveal about a site\'s data.</p>');
  } else {
    const b = f.policy.budget;
    add(table(['parameter', 'value'], [
      ['unit of privacy', 'one site\'s whole contribution in a round (client-level, add/remove one site): everything derived from all of that site\'s records'],
      ['mechanism', code(mechanism ?? '?')],
      ['clip C (L2 norm of a site\'s update)', esc(fmtNum(num(dp?.['clip'])))],
      ['noise multiplier z', esc(fmtNum(num(dp?.['noiseMultiplier'])))],
      ['noise of each site', `a share: sd z·C/√t, so that the sum of any t sites carries noise of sd z·C`],
      ['budget (ε, δ)', b === null ? 'none set' : esc(`ε = ${b.epsilon}, δ = ${b.delta}`)],
      ['accountant', code(f.policy.accountant ?? 'rdp')],
      ['ε spent (ledger, after the last event)', `<strong>${esc(fmtNum(f.epsilonSpent, 4))}</strong>${b !== null && f.epsilonSpent !== undefined ? ` of ${esc(b.epsilon)} (${esc((100 * f.epsilonSpent / b.epsilon).toFixed(0))}%)` : ''}`],
      ['DP events recorded', esc(f.dpEvents)],
    ]));
  }
  add(figure('chart-epsilon', c.epsilon, 'ε of the whole ledger after each training round, as recorded in the transcript\'s <code>dp-event</code> records; the dashed line is the budget. An aborted session that was charged counts too.', 'No DP event is recorded in this run, so there is no ε to draw.'));
  add('</section>');

  // 5. Verification
  add('<section id="verification"><h2>5. Verification</h2>');
  add(`<p>The checks of <code>tally audit verify</code> on this bundle, run when this report was made. Overall: ${badge(v.ok)}</p>`);
  add(table(['check', 'result', 'reason'], v.checks.map((x) => [`<strong>${esc(x.title)}</strong> ${code(x.id)}`, badge(x.ok), esc(x.reason)]), 'checks'));
  for (const x of v.checks) {
    const bad = x.findings.filter((y) => !y.ok);
    if (bad.length === 0) continue;
    add(`<h3>Failures of “${esc(x.title)}”</h3><ul class="findings">${bad.slice(0, 50).map((y) => `<li class="fail">${esc(y.what)}${y.log !== undefined ? ` (${esc(y.log)}${y.seq !== undefined ? `, record ${esc(y.seq)}` : ''})` : y.seq !== undefined ? ` (record ${esc(y.seq)})` : ''}</li>`).join('')}${bad.length > 50 ? `<li>… and ${bad.length - 50} more</li>` : ''}</ul>`);
  }
  add('</section>');

  // 6. The run
  add('<section id="run"><h2>6. The run in figures</h2>');
  add(figure('chart-funnel', c.funnel, 'Sites accepted in each protocol round of each session (one line per session), then the number of inputs in the released sum. A line that falls is a dropout; a session whose sum is released keeps at least t.', 'No session round is recorded.'));
  add(figure('chart-drops', c.drops, 'Every dropout, by its code (<code>SILENT</code>: a site sent nothing before the round\'s deadline) and the round it happened in.', 'No site dropped out in this run.'));
  add(figure('chart-loss', c.loss, 'Consortium-wide held-out loss after each round, decoded from the secure eval sum (exact, not noised, outside the DP accounting).', job !== undefined ? 'No eval session completed, so there is no loss to draw.' : 'The run trained no model.'));
  const sessRows = f.sessions.slice(0, 200).map((s) => [code(s.session), esc(s.purpose ?? '—'), esc(s.trainingRound ?? '—'),
    esc(s.participants.map((p) => p ?? '·').join(' → ')), s.result === 'completed' ? esc(`completed, ${s.survivors} in the sum`) : s.result === 'aborted' ? `aborted ${code(s.abortCode ?? '')}` : '<em>no outcome</em>']);
  add('<h3>Sessions</h3>');
  add(table(['session', 'purpose', 'round', 'sites R0 → R4', 'outcome'], sessRows));
  if (f.sessions.length > 200) add(`<p>… and ${f.sessions.length - 200} more sessions.</p>`);
  add('</section>');

  // 7. Evidence
  add('<section id="evidence"><h2>7. Evidence</h2>');
  add('<p>The transcript is a Merkle tree (RFC 6962) of its records; each checkpoint signs the root of every record before it with the coordinator\'s Ed25519 key. Anyone holding a root below can check that a copy of the transcript is the one it commits to.</p>');
  add(table(['item', 'value'], [
    ['run id', code(f.run)],
    ['coordinator signing key', `${code(f.coordinatorKey ?? 'unknown')}<br>fingerprint ${code(fingerprint(f.coordinatorKey))}`],
    ['records / checkpoints', esc(`${f.records} / ${f.checkpoints}`)],
    ['latest checkpoint', f.lastCheckpoint === undefined ? 'none' : `size ${esc(f.lastCheckpoint.size)}<br>root ${code(f.lastCheckpoint.root)}<br>signature ${code(f.lastCheckpoint.signature)}`],
    ['configuration hash (SHA-256)', code(f.configHash ?? 'none')],
  ]));
  add('<h3>Site logs</h3>');
  if (f.siteLogs.length === 0) add('<p class="none">No site log is in the bundle: nobody but the coordinator vouches for this transcript. Ask the sites for their logs and verify with <code>--site-log</code>.</p>');
  else {
    add(table(['log', 'site', 'signer fingerprint', 'records', 'witnessed checkpoints', 'latest witnessed (size, root)'], f.siteLogs.map((s) => [
      code(s.file), code(s.site ?? '?'), code(fingerprint(s.signer)), esc(s.records), esc(s.witnesses), s.lastWitness === undefined ? '—' : `${esc(s.lastWitness.size)}, ${code(s.lastWitness.root)}`,
    ])));
  }
  add('</section>');

  // 8. Limits
  add('<section id="limits"><h2>8. What this report cannot show</h2><ul>');
  add('<li><strong>The final model itself can leak.</strong> Differential privacy bounds what the model reveals about one site\'s contribution to the stated ε; it does not make the model free of personal data, and without DP there is no bound at all. Memorised text, membership inference within the bound, and outputs of the model are outside what the transcript records.</li>');
  add('<li><strong>Whether ε is small enough</strong> is a decision of the consortium, not a result of the software. The same ε means different risks for different data; every other training run on the same data (tuning included) spends budget too.</li>');
  add(`<li><strong>Collusion of the coordinator with t = ${esc(t ?? '?')} or more sites</strong> defeats secure aggregation, and with distributed noise only honest sites' noise protects the others. A transcript cannot show who colluded.</li>`);
  add('<li>The transcript records what the coordinator saw and signed. Without site logs that witnessed its checkpoints, a coordinator could have rewritten it before the first witness, or cut it after a completed session.</li>');
  add('</ul></section>');

  // Appendix
  add('<section id="appendix"><h2>Appendix: configuration and versions</h2>');
  const sw = f.software;
  const g = i.generator;
  add(table(['software', 'version'], [
    ['run written by', esc(sw !== undefined ? `${str(sw['name']) ?? '?'} ${str(sw['version']) ?? '?'} on Node.js ${str(sw['node']) ?? '?'}` : 'unknown')],
    ['report made by', esc(g !== undefined ? `${g.name} ${g.version} on Node.js ${g.node}` : 'tally')],
    ...(g?.vega !== undefined ? [['charts', esc(`vega ${g.vega}, vega-lite ${g.vegaLite ?? '?'} (rendered to SVG when the report was made)`)]] : []),
    ['bundle format', code('tally-audit-bundle/1, transcript-v1')],
  ]));
  add(`<h3>The configuration record</h3><p>SHA-256 of its canonical JSON: ${code(f.configHash ?? 'none')}</p>`);
  add(`<pre id="config">${esc(JSON.stringify(f.config ?? null, null, 2))}</pre>`);
  add('</section>');
  add('</main></body></html>\n');
  return out.join('\n');
}

// ------------------------------------------------------------- writing

/** vega and vega-lite versions as installed (the appendix). */
function chartVersions(): { vega?: string; vegaLite?: string } {
  const read = (name: string): string | undefined => {
    try {
      return (JSON.parse(readFileSync(join(packageRoot(), 'node_modules', name, 'package.json'), 'utf8')) as { version?: string }).version;
    } catch { return undefined; }
  };
  const vega = read('vega'), vegaLite = read('vega-lite');
  return { ...(vega !== undefined ? { vega } : {}), ...(vegaLite !== undefined ? { vegaLite } : {}) };
}

function generatorInfo(): GeneratorInfo {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { name: string; version: string };
  return { name: pkg.name, version: pkg.version, node: process.version, ...chartVersions() };
}

/** Reads, verifies and renders a bundle: the report's HTML. */
export async function buildReport(bundleDir: string, o: { readonly siteLogs?: readonly string[]; readonly config?: string; readonly generated?: string } = {}): Promise<string> {
  const bundle = readBundle(bundleDir);
  const verdict = verifyBundle(bundleDir, { ...(o.siteLogs !== undefined ? { siteLogs: o.siteLogs } : {}), ...(o.config !== undefined ? { config: o.config } : {}) });
  const facts = reportFacts(bundle);
  const charts = await renderCharts(facts.charts);
  return renderReport({ facts, verdict, charts, generator: generatorInfo(), ...(o.generated !== undefined ? { generated: o.generated } : {}) });
}

/** Where Debian's Chromium is. */
export const CHROMIUM = '/usr/bin/chromium';

/** The flags a headless Chromium runs with here: no network of its own, a fresh profile. */
export function chromiumFlags(profile: string): string[] {
  return ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`];
}

/** Prints an HTML file to PDF with headless Chromium. @throws ReportError AUDIT_ERR_NO_BROWSER without Chromium, or when it fails. */
export async function printPdf(html: string, pdf: string, browser: string = CHROMIUM): Promise<void> {
  if (!existsSync(browser)) {
    throw new ReportError('AUDIT_ERR_NO_BROWSER', `--pdf needs Chromium at ${browser}, and there is none (on Debian: apt-get install chromium); the HTML report was written, print it from any browser instead`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'tally-report-chromium-'));
  try {
    rmSync(pdf, { force: true });
    await new Promise<void>((res, rej) => {
      execFile(browser, [...chromiumFlags(profile), '--no-pdf-header-footer', `--print-to-pdf=${resolve(pdf)}`, pathToFileURL(resolve(html)).href],
        { timeout: 120_000 }, (err, _out, stderr) => {
          if (err !== null) rej(new ReportError('AUDIT_ERR_NO_BROWSER', `Chromium (${browser}) could not print ${html}: ${err.message}${stderr !== '' ? `\n${stderr.slice(-2000)}` : ''}`, { cause: err }));
          else res();
        });
    });
    if (!existsSync(pdf) || statSync(pdf).size === 0) throw new ReportError('AUDIT_ERR_NO_BROWSER', `Chromium (${browser}) wrote no PDF at ${pdf}`);
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/**
 * Writes the report of the bundle at `bundleDir` to `o.out` (HTML), and with
 * `o.pdf` a PDF beside it (same name, `.pdf`).
 * @throws ValidationError AUDIT_ERR_BAD_BUNDLE for a bundle that cannot be read; ReportError AUDIT_ERR_NO_BROWSER for a PDF without Chromium
 */
export async function writeReport(bundleDir: string, o: { readonly out: string; readonly pdf?: boolean; readonly siteLogs?: readonly string[]; readonly config?: string }): Promise<{ out: string; pdf?: string }> {
  const html = await buildReport(bundleDir, { ...(o.siteLogs !== undefined ? { siteLogs: o.siteLogs } : {}), ...(o.config !== undefined ? { config: o.config } : {}) });
  mkdirSync(dirname(resolve(o.out)), { recursive: true });
  writeFileSync(o.out, html);
  if (o.pdf !== true) return { out: o.out };
  const pdf = o.out.replace(/\.html?$/i, '') + '.pdf';
  await printPdf(o.out, pdf);
  return { out: o.out, pdf };
}
