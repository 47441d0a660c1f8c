/**
 * `tally audit`: tools for a privacy officer over an audit bundle
 * (protocols/transcript-v1/spec.md §5, §7).
 *
 *     tally audit verify <bundle dir> [--site-log FILE ...] [--config FILE] [--json]
 *     tally audit report <bundle dir> --out FILE [--pdf] [--site-log FILE ...] [--config FILE]
 *
 * Exit status: 0 every check passed, 1 a check failed, 2 bad usage (an
 * unknown option, a bundle folder, site log or approved configuration that
 * does not exist or cannot be read).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { usageError } from './_args.js';
import { verifyBundle, type BundleVerdict } from '../audit/verify.js';

const HELP = `usage: tally audit verify <bundle dir> [--site-log FILE]... [--config FILE] [--json]
       tally audit report <bundle dir> --out FILE [--pdf] [--site-log FILE]... [--config FILE]

verify  checks an audit bundle (bundle.json, transcript.jsonl, sites/*.jsonl)
        and prints one line per check, passed (✔) or failed (✘) with its
        reason, then every failed finding:
          integrity  Merkle roots, checkpoint signatures, site logs signed by
                     their roster keys, witnessed checkpoints, message digests
          config     the configuration that ran is the approved one (--config),
                     the software version recorded
          protocol   |U| ≥ t, U4 ⊆ U3 ⊆ U2 ⊆ U1 ⊆ U0, no double reveal, the
                     cohort never below the policy minimum
          privacy    ε recomputed from the DP events equals the logged ε, within
                     the budget, noise before every release
          secrets    no field outside the spec, no private key, no seed
        exit 0 when every check passes, 1 when one fails
report  writes the officer's report of a bundle: one self-contained HTML file
        with the verdict of verify (--site-log and --config as for verify);
        --pdf also prints it to a PDF beside it with Chromium (/usr/bin/chromium)

  --site-log FILE  a site's own log kept outside the bundle (repeatable)
  --config FILE    the approved configuration: a consortium.json (compared with
                   the consortium that ran), a job JSON (compared with the job),
                   or the whole run configuration; SHA-256 of canonical JSON
  --json           print the verdict as JSON instead
  --out FILE       report: where the report is written
  --pdf            report: also write a PDF (needs /usr/bin/chromium)
  -h, --help       show this help
`;

/** The human form of a verdict: one line per check, then the failed findings. */
export function formatVerdict(v: BundleVerdict): string {
  const out: string[] = [];
  for (const c of v.checks) out.push(`${c.ok ? '✔' : '✘'} ${c.id.padEnd(9)} ${c.reason}`);
  const failed = v.checks.flatMap((c) => c.findings.filter((f) => !f.ok).map((f) => ({ c, f })));
  if (failed.length > 0) {
    out.push('', 'failed:');
    for (const { c, f } of failed) out.push(`  ${c.id}: ${f.log !== undefined ? `${f.log}${f.seq !== undefined ? ` seq ${f.seq}` : ''}: ` : ''}${f.what}`);
  }
  out.push('', v.ok ? `bundle ${v.run || '(no run id)'}: every check passed` : `bundle ${v.run || '(no run id)'}: ${v.checks.filter((c) => !c.ok).length} check(s) failed`);
  return out.join('\n');
}

function isDir(p: string): boolean {
  try { return statSync(p).isDirectory(); } catch { return false; }
}

type Option = { type: 'string' | 'boolean'; multiple?: boolean; short?: string };

/**
 * What `verify` and `report` read alike: their options, --help, one bundle
 * folder and the --site-log files, each checked before any work. Returns
 * the exit status when the command line is refused or was --help.
 */
function bundleArgs(command: 'verify' | 'report', argv: string[], options: Record<string, Option>):
  { dir: string; siteLogs: string[]; values: Record<string, string | boolean | string[] | undefined> } | number {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: { ...options, 'site-log': { type: 'string', multiple: true }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    return usageError('audit', (err as Error).message.split('\n')[0]!);
  }
  const { values, positionals } = parsed;
  if (values.help === true) { console.log(HELP); return 0; }
  const [dir, ...extra] = positionals;
  if (dir === undefined) return usageError('audit', `${command}: missing the bundle folder`);
  if (extra.length > 0) return usageError('audit', `${command}: unexpected argument '${extra[0]}'`);
  if (!isDir(dir)) return usageError('audit', `${command}: ${dir} is not a folder (name the audit bundle's folder)`);
  const siteLogs = (values['site-log'] as string[] | undefined) ?? [];
  for (const f of siteLogs) {
    if (!existsSync(f) || isDir(f)) return usageError('audit', `--site-log ${f}: no such file`);
  }
  return { dir, siteLogs, values };
}

async function verify(argv: string[]): Promise<number> {
  const a = bundleArgs('verify', argv, { json: { type: 'boolean' } });
  if (typeof a === 'number') return a;
  const { dir, siteLogs, values } = a;
  const config = values['config'] as string | undefined;
  if (config !== undefined) {
    try {
      JSON.parse(readFileSync(config, 'utf8'));
    } catch (err) {
      return usageError('audit', `--config ${config}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not readable JSON (${(err as Error).message})`}`);
    }
  }
  const v = verifyBundle(dir, { siteLogs, ...(config !== undefined ? { config } : {}) });
  console.log(values['json'] === true ? JSON.stringify(v, null, 2) : formatVerdict(v));
  return v.ok ? 0 : 1;
}

// ---------------------------------------------------------------------------
// `tally audit report`: the officer's report (src/audit/report.ts), loaded on
// demand: it brings vega and vega-lite, which `tally audit verify` does not need.
// ---------------------------------------------------------------------------
async function report(argv: string[]): Promise<number> {
  const a = bundleArgs('report', argv, { out: { type: 'string' }, pdf: { type: 'boolean' } });
  if (typeof a === 'number') return a;
  const { dir, siteLogs, values } = a;
  const out = values['out'] as string | undefined;
  const config = values['config'] as string | undefined;
  if (out === undefined) return usageError('audit', 'report: --out FILE is required');
  if (config !== undefined && !existsSync(config)) return usageError('audit', `--config ${config}: no such file`);
  const { writeReport, ReportError } = await import('../audit/report.js');
  try {
    const r = await writeReport(dir, { out, pdf: values['pdf'] === true, siteLogs, ...(config !== undefined ? { config } : {}) });
    console.log(`wrote ${r.out}${r.pdf !== undefined ? ` and ${r.pdf}` : ''}`);
  } catch (err) {
    if (!(err instanceof ReportError)) throw err;
    console.error(`tally audit: report: ${err.code}: ${err.message}`);
    return 1;
  }
  return 0;
}

/** Runs `tally audit …`; returns the exit status. */
export async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) return usageError('audit', 'missing command (verify or report)');
  if (command === '--help' || command === '-h') { console.log(HELP); return 0; }
  if (command === 'verify') return verify(rest);
  if (command === 'report') return report(rest);
  return usageError('audit', `unknown command '${command}' (verify or report)`);
}
