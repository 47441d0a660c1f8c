/**
 * Worker of `npm run bench -- transport`: many sites of one consortium in one
 * process, so that many sockets share a process as they would on a busy host.
 * `node dist/bench/_transport-sites.js JSON` with JSON = {@link SitesJob}:
 * runs `runSite` for every site of the range at once (each over its own TLS
 * connection to the coordinator, with its own state file) and prints one
 * JSON line, a {@link SitesReport}, then exits 0 if every site either has its
 * input in a completed sum or, among the job's `leave` sites, left as asked
 * (`leaveAfterRound`, NET_ERR_LEFT), 1 otherwise. SIGTERM stops the sites
 * that are still waiting (they count as failed, NET_ERR_SHUTDOWN) and still
 * prints the line.
 *
 * Site i's input is {@link siteInput}(seed, i, dim, bits): deterministic, so
 * that the benchmark can recompute the expected sum over the survivors.
 */
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { NetError } from '../src/errors.js';
import { loadConsortium } from '../src/federation/consortium.js';
import { readSiteKey } from '../src/federation/keys.js';
import { runSite, type SiteResult } from '../src/federation/site.js';

export interface SitesJob {
  /** consortium.json. */
  readonly config: string;
  /** Folder of the key files (site-<i>.key). */
  readonly keys: string;
  /** Folder for the sites' state files. */
  readonly state: string;
  /** Site indices from..to (1-based, inclusive): site-<i>. */
  readonly from: number;
  readonly to: number;
  /** Seed of the inputs. */
  readonly seed: string;
  /** Sites of the range (indices) that drop out: they leave after their message of round `leaveAfterRound`. */
  readonly leave?: readonly number[];
  readonly leaveAfterRound?: number;
}

export interface SitesReport {
  readonly from: number;
  readonly to: number;
  readonly sites: number;
  /** Sites whose input is in a completed sum. */
  readonly inSum: number;
  /** Sites that left as the job asked (NET_ERR_LEFT): these are not failures. */
  readonly left: string[];
  /** Sites that ended with an error, with its code (NET_ERR_LEFT included for a site not asked to leave). */
  readonly failed: { readonly site: string; readonly code: string; readonly message: string }[];
  /** The distinct sums the sites saw, as SHA-256 of their little-endian 32-bit words, with how many saw each. */
  readonly sums: { readonly sha256: string; readonly sites: number }[];
  /** The distinct sessions the sites' results came from. */
  readonly sessions: string[];
  /** Survivor count of the results (distinct values). */
  readonly survivorCounts: number[];
  readonly seconds: number;
  readonly cpuSeconds: number;
  readonly peakRssBytes: number;
}

/** Site `i`'s input: `dim` words in [0, 2^bits), from SHA-256(seed/i) through xorshift32. */
export function siteInput(seed: string, i: number, dim: number, bits: number): Uint32Array {
  let x = createHash('sha256').update(`tally/bench/transport/${seed}/${i}`).digest().readUInt32LE(0) || 1;
  const out = new Uint32Array(dim);
  const shift = 32 - bits;
  for (let j = 0; j < dim; j++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[j] = x >>> shift;
  }
  return out;
}

/** SHA-256 of a sum's words, little-endian, in hex. */
export function sumDigest(sum: ArrayLike<number>): string {
  const words = Uint32Array.from(sum as ArrayLike<number>);
  return createHash('sha256').update(new Uint8Array(words.buffer)).digest('hex');
}

async function main(job: SitesJob): Promise<SitesReport> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const consortium = loadConsortium(job.config);
  const { dim, bits } = consortium.config.aggregation;
  const ca = readFileSync(consortium.tls!.ca);
  const ids = Array.from({ length: job.to - job.from + 1 }, (_, k) => job.from + k);
  // SIGTERM (the benchmark giving up) stops every site, which then reports NET_ERR_SHUTDOWN.
  const stop = new AbortController();
  setMaxListeners(0, stop.signal); // one listener per site
  process.once('SIGTERM', () => stop.abort());
  const leave = new Set(job.leave ?? []);
  const outcomes = await Promise.all(ids.map(async (i): Promise<{ site: string; result?: SiteResult; left?: true; error?: { code: string; message: string } }> => {
    const site = `site-${i}`;
    const leaves = leave.has(i);
    try {
      const key = readSiteKey(join(job.keys, `${site}.key`));
      const result = await runSite({
        consortium, siteId: site, seed: key.seed, input: siteInput(job.seed, i, dim, bits), stateFile: join(job.state, `${site}.state.json`), tls: { ca }, signal: stop.signal,
        ...(leaves ? { leaveAfterRound: job.leaveAfterRound ?? 1 } : {}),
      });
      return { site, result };
    } catch (err) {
      if (leaves && err instanceof NetError && err.code === 'NET_ERR_LEFT') return { site, left: true };
      return { site, error: { code: err instanceof NetError ? err.code : (err as Error).name, message: String((err as Error).message ?? err) } };
    }
  }));
  const sums = new Map<string, number>();
  const sessions = new Set<string>();
  const survivorCounts = new Set<number>();
  for (const o of outcomes) {
    if (o.result === undefined) continue;
    // The consortium's default keeps the sum from the sites: they then report it as withheld.
    const d = o.result.sum === undefined ? 'withheld' : sumDigest(o.result.sum);
    sums.set(d, (sums.get(d) ?? 0) + 1);
    sessions.add(o.result.session);
    survivorCounts.add(o.result.survivors.length);
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    from: job.from, to: job.to, sites: ids.length,
    inSum: outcomes.filter((o) => o.result?.inSum === true).length,
    left: outcomes.flatMap((o) => (o.left === true ? [o.site] : [])),
    failed: outcomes.flatMap((o) => (o.error !== undefined ? [{ site: o.site, ...o.error }] : [])),
    sums: [...sums].map(([sha256, sites]) => ({ sha256, sites })),
    sessions: [...sessions], survivorCounts: [...survivorCounts],
    seconds: (performance.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const job = JSON.parse(process.argv[2]!) as SitesJob;
  const report = await main(job);
  console.log(JSON.stringify(report));
  // A site that left as asked is not in a sum it saw (with leaveAfterRound ≥ 2 its input is in the coordinator's sum all the same).
  process.exitCode = report.inSum + report.left.length === report.sites && report.left.length === (job.leave ?? []).length ? 0 : 1;
}
