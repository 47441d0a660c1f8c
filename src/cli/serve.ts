/**
 * `tally serve`: the coordinator of a consortium. Listens for the roster's
 * sites (WebSocket over TLS), runs secure-aggregation sessions and keeps
 * every session and result in its SQLite store.
 * Exit status: 0 done (with --once: the session completed; without: stopped
 * by SIGINT/SIGTERM), 2 bad usage or configuration, 3 the session aborted
 * (--once).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ValidationError } from '../errors.js';
import type { Coordinator as CoordinatorT } from '../federation/coordinator.js';
import { checkOutPath, isLoopback, parseOptions, timestampedLog, usageError, UsageError } from './_args.js';

const HELP = `usage: tally serve --config FILE [options]

Runs the coordinator of the consortium described by FILE (made by
'tally consortium init'): waits for the roster's sites, runs a secure-
aggregation session (secagg-v1) with them, and records every session and
result in an SQLite database.

  --config FILE         the consortium configuration (consortium.json)
  --state DIR           where the coordinator keeps its database
                        (default: the folder 'state' beside FILE)
  --once                run one session, then exit: 0 if it completed, 3 if
                        it aborted
  --out FILE            with --once: write the session's result as JSON
                        (its folder must exist)
  --host H, --port P    listen on another address than the configuration's
                        (--port 0: any free port, printed at start)
  --insecure-loopback   run without TLS; allowed only on a loopback address
                        (127.0.0.0/8, ::1, localhost)
  --quiet               print nothing but errors
  -h, --help            show this help

Without --once the coordinator runs sessions one after another until it is
stopped (SIGINT or SIGTERM close it cleanly; an unfinished session is
recorded as aborted). After a crash, start it again with the same --state:
the interrupted session is recorded as aborted and a new one starts with
fresh keys; the sites reconnect by themselves.
`;

export async function run(argv: string[]): Promise<number> {
  const v = parseOptions('serve', argv, ['config', 'state', 'out', 'host', 'port'], ['once', 'insecure-loopback', 'quiet']);
  if (typeof v === 'number') return v;
  if (v.help === true) { console.log(HELP); return 0; }
  const values = v as Partial<Record<'config' | 'state' | 'out' | 'host' | 'port', string>> & Partial<Record<'once' | 'insecure-loopback' | 'quiet', boolean>>;
  const log = timestampedLog(values.quiet === true);
  let port: number | undefined;
  try {
    if (values.config === undefined) throw new UsageError('--config FILE is required');
    if (values.out !== undefined && values.once !== true) throw new UsageError('--out needs --once (a result is one session\'s)');
    if (values.out !== undefined) checkOutPath(values.out);
    if (values.port !== undefined) {
      port = Number(values.port);
      if (!/^\d+$/.test(values.port) || port > 65535) throw new UsageError(`--port expected an integer in [0, 65535], got '${values.port}'`);
    }
  } catch (err) {
    if (err instanceof UsageError) return usageError('serve', err.message);
    throw err;
  }

  const [{ loadConsortium }, { CoordinatorStore }, { Coordinator }] = await Promise.all([
    import('../federation/consortium.js'), import('../federation/store.js'), import('../federation/coordinator.js'),
  ]);
  const consortium = loadConsortium(resolve(values.config));
  const host = values.host ?? consortium.config.coordinator.host;
  let tls;
  if (values['insecure-loopback'] === true) {
    if (!isLoopback(host)) throw new ValidationError('NET_ERR_INSECURE', `--insecure-loopback is only allowed on a loopback address, and ${host} is not one`);
  } else if (consortium.tls === undefined) {
    throw new ValidationError('NET_ERR_INSECURE', 'the configuration names no TLS material (coordinator.tls); give it one, or run a loopback trial with --insecure-loopback');
  } else {
    const t = consortium.tls;
    tls = { cert: readFileSync(t.cert), key: readFileSync(t.key), ca: readFileSync(t.ca), clientCertificates: t.clientCertificates };
  }
  const stateDir = resolve(values.state ?? join(consortium.dir, 'state'));
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const store = CoordinatorStore.open(join(stateDir, 'coordinator.sqlite'));
  let coordinator: CoordinatorT;
  try {
    coordinator = await Coordinator.start({ consortium, store, ...(tls !== undefined ? { tls } : {}), host, ...(port !== undefined ? { port } : {}), log });
  } catch (err) {
    store.close();
    throw err;
  }
  // The first line names the address, so scripts (and tests) can read the port.
  console.log(`tally serve: listening on ${tls !== undefined ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${coordinator.port}/ for ${consortium.sites.length} sites; state in ${stateDir}`);

  const stop = new AbortController();
  // A signal stops waiting, or ends a running session as aborted (recorded, the sites told).
  const onSignal = (sig: string): void => { log(`${sig}: stopping`); stop.abort(); void coordinator.close(); };
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  try {
    for (;;) {
      let report;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      try {
        report = await coordinator.runSession(stop.signal);
      } catch (err) {
        if (stop.signal.aborted) return 0;
        throw err;
      }
      if (stop.signal.aborted) return values.once === true ? 3 : 0;
      if (values.once === true) {
        if (values.out !== undefined) {
          const cpu = process.cpuUsage(cpu0);
          writeFileSync(values.out, `${JSON.stringify({
            session: report.session, outcome: report.outcome, survivors: report.survivors, dropped: report.dropped,
            ...(report.sum !== undefined ? { sum: report.sum } : {}), ...(report.abort !== undefined ? { abort: report.abort } : {}), rounds: report.rounds,
            // What the session cost the coordinator, from the start of gathering the sites to the outcome.
            traffic: report.traffic, wallSeconds: (performance.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6,
            peakRssBytes: process.resourceUsage().maxRSS * 1024,
          })}\n`);
        }
        return report.outcome === 'completed' ? 0 : 3;
      }
    }
  } finally {
    await coordinator.close();
    store.close();
  }
}
