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
import { TallyError, ValidationError } from '../errors.js';
import type { Coordinator as CoordinatorT } from '../federation/coordinator.js';
import { openCoordinatorLog } from '../audit/bundle.js';
import { AUDIT_KEY_FILE } from '../federation/consortium.js';
import { primeAllocator } from '../crypto/_heap.js';
import { jobJson } from '../federation/job.js';
import { generateSiteKey, readSiteKey } from '../federation/keys.js';
import { checkOutPath, isLoopback, parseOptions, runName, timestampedLog, usageError, UsageError } from './_args.js';

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
  --audit DIR           where this run's audit bundle is written (default:
                        audit/<time> in the state folder): the signed
                        transcript; check it with tally audit verify DIR
  --audit-key FILE      the key that signs the transcript's checkpoints
                        (default: keys/coordinator-audit.key beside FILE;
                        its public key must be coordinator.auditKey)
  --he-offer FILE       a homomorphic consortium (aggregation.aggregator he or
                        he+masks): the dealer's key offer (tally he deal),
                        whose signature is checked and whose key id every
                        session commits to (default: he-offer-E.bin beside
                        FILE); the coordinator never holds the key or a sum
  --he-epoch E          the key's epoch (default 1)
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

A consortium with a training job (consortium.json 'training') runs that
job's rounds instead: every round's task goes to the sites, their DP-encoded
updates are summed securely, the global adapter moves, the consortium's
held-out loss is summed too, and a checkpoint of the round is stored. Started
again with the same --state, the coordinator continues after the last
completed round. At the end it writes the adapter (a PEFT folder) to
--adapter DIR (default: 'adapter' in the state folder) and, with --out, a
JSON summary of the rounds. Exit status 3: a round's session aborted too
often.
  --adapter DIR         where the final adapter is written (training only)
`;

export async function run(argv: string[]): Promise<number> {
  const v = parseOptions('serve', argv, ['config', 'state', 'out', 'host', 'port', 'adapter', 'audit', 'audit-key', 'he-offer', 'he-epoch'], ['once', 'insecure-loopback', 'quiet']);
  if (typeof v === 'number') return v;
  if (v.help === true) { console.log(HELP); return 0; }
  const values = v as Partial<Record<'config' | 'state' | 'out' | 'host' | 'port' | 'adapter' | 'audit' | 'audit-key' | 'he-offer' | 'he-epoch', string>> & Partial<Record<'once' | 'insecure-loopback' | 'quiet', boolean>>;
  const log = timestampedLog(values.quiet === true);
  let port: number | undefined;
  try {
    if (values.config === undefined) throw new UsageError('--config FILE is required');
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
  if (consortium.training !== undefined && values.once === true) return usageError('serve', '--once runs one secure sum; this consortium runs a training job (drop --once)');
  if (consortium.training === undefined && values.adapter !== undefined) return usageError('serve', '--adapter applies to a consortium with a training job');
  if (consortium.training === undefined && values.out !== undefined && values.once !== true) return usageError('serve', '--out needs --once (a result is one session\'s)');
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
  let heKeyId: Uint8Array | undefined;
  if (consortium.he !== undefined) {
    const epoch = Number(values['he-epoch'] ?? '1');
    if (!Number.isInteger(epoch) || epoch < 1 || epoch > 0xffffffff) return usageError('serve', `--he-epoch expected an integer in [1, 2^32 − 1], got '${values['he-epoch']}'`);
    const offerFile = resolve(values['he-offer'] ?? join(consortium.dir, `he-offer-${epoch}.bin`));
    let offer: Uint8Array;
    try {
      offer = new Uint8Array(readFileSync(offerFile));
    } catch (err) {
      return usageError('serve', `a homomorphic consortium needs the dealer's key offer (tally he deal): cannot read ${offerFile}: ${(err as Error).message}`);
    }
    const { offerKeyId } = await import('../federation/he-keys.js');
    const k = await offerKeyId(consortium, offer, epoch);
    heKeyId = k.keyId;
    log(`aggregation ${consortium.he.mode} (he-sum-v1, ${consortium.he.params.set}): the sites' key ${Buffer.from(k.keyId).toString('hex')}, dealt by ${k.dealer.id}`);
  } else if (values['he-offer'] !== undefined || values['he-epoch'] !== undefined) {
    return usageError('serve', '--he-offer and --he-epoch apply to a homomorphic consortium (aggregation.aggregator he or he+masks)');
  }
  const stateDir = resolve(values.state ?? join(consortium.dir, 'state'));
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const audit = openServeAudit(consortium, stateDir, values.audit, values['audit-key'], log);
  const store = CoordinatorStore.open(join(stateDir, 'coordinator.sqlite'));
  primeAllocator(); // a long-running aggregator: keep glibc from trimming its heap after every burst of keystream (crypto/_heap.ts)
  let coordinator: CoordinatorT;
  try {
    coordinator = await Coordinator.start({ consortium, store, ...(tls !== undefined ? { tls } : {}), host, ...(port !== undefined ? { port } : {}), log, audit: audit.transcript, ...(heKeyId !== undefined ? { heKeyId } : {}) });
  } catch (err) {
    store.close();
    throw err;
  }
  // The first line names the address, so scripts (and tests) can read the port.
  console.log(`tally serve: listening on ${tls !== undefined ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${coordinator.port}/ for ${consortium.sites.length} sites; state in ${stateDir}; audit bundle ${audit.dir}`);

  const stop = new AbortController();
  // A signal stops waiting, or ends a running session as aborted (recorded, the sites told).
  const onSignal = (sig: string): void => { log(`${sig}: stopping`); stop.abort(); void coordinator.close(); };
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  if (consortium.training !== undefined) {
    try {
      return await serveJob(consortium, coordinator, store, { adapterDir: resolve(values.adapter ?? join(stateDir, 'adapter')), out: values.out, signal: stop.signal, log, audit: audit.transcript, ...(heKeyId !== undefined ? { heKeyId } : {}) });
    } finally {
      await coordinator.close();
      store.close();
      audit.transcript.close();
    }
  }
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
    audit.transcript.close();
  }
}

/**
 * Opens this run's audit bundle: the transcript is signed with the
 * consortium's coordinator audit key, which must match coordinator.auditKey.
 * A consortium that names none gets a fresh key for this run (said in the
 * log: its sites cannot check the checkpoints, so they witness none).
 */
function openServeAudit(
  consortium: import('../federation/consortium.js').Consortium, stateDir: string, dirOpt: string | undefined, keyOpt: string | undefined, log: (l: string) => void,
): { transcript: import('../audit/transcript.js').Transcript; dir: string } {
  const named = consortium.config.coordinator.auditKey;
  const keyFile = resolve(keyOpt ?? join(consortium.dir, 'keys', AUDIT_KEY_FILE));
  let seed: Uint8Array;
  if (named === undefined && keyOpt === undefined) {
    seed = generateSiteKey().seed;
    log('the consortium names no coordinator.auditKey: this run\'s transcript is signed with a fresh key, and the sites witness no checkpoint');
  } else {
    const key = readSiteKey(keyFile);
    if (named !== undefined && Buffer.from(key.publicKey).toString('hex') !== named) {
      throw new ValidationError('AUDIT_ERR_BAD_BUNDLE', `${keyFile} is not the key coordinator.auditKey names (${named.slice(0, 16)}…)`);
    }
    seed = key.seed;
  }
  const job = consortium.training?.job;
  const dir = resolve(dirOpt ?? join(stateDir, 'audit', runName()));
  const transcript = openCoordinatorLog(dir, {
    signingSeed: seed,
    policy: { minSurvivors: consortium.config.aggregation.threshold, budget: job?.dp.budget !== undefined && job.dp.mechanism !== 'none' ? { ...job.dp.budget } : null, accountant: 'rdp' },
    config: { consortium: consortium.config, ...(job !== undefined ? { job: jobJson(job) } : {}) },
  });
  return { transcript, dir };
}

/** Runs the consortium's training job (see HELP); returns the exit status. */
async function serveJob(
  consortium: import('../federation/consortium.js').Consortium, coordinator: CoordinatorT, store: import('../federation/store.js').CoordinatorStore,
  o: { adapterDir: string; out: string | undefined; signal: AbortSignal; log: (l: string) => void; audit: import('../audit/transcript.js').Transcript },
): Promise<number> {
  const [{ initBackend }, { loadCheckpoint }, { openJob, runFineTune }, { networkSum }, { jobLoraConfig }, { saveAdapter }] = await Promise.all([
    import('../training/backend.js'), import('../training/checkpoint.js'), import('../federation/rounds.js'), import('../federation/coordinator.js'),
    import('../federation/learner.js'), import('../training/adapter-format.js'),
  ]);
  const { job, modelDir } = consortium.training!;
  await initBackend();
  const base = loadCheckpoint(modelDir);
  if (job.aggregator === 'plain') throw new ValidationError('FL_ERR_BAD_JOB', 'training.aggregator "plain" runs in one process only (tally demo --in-process --aggregator plain); over the network the coordinator learns only secure sums');
  const { server, model, resumedAfter, checkpoint } = openJob({ job, base: { config: base.config, weights: base.tensors }, store, siteIds: consortium.sites.map((s) => s.id) });
  try {
    if (resumedAfter !== undefined) {
      o.log(`resuming job ${server.jobId.slice(0, 16)}… after round ${resumedAfter} (ε spent ${server.epsilon().toPrecision(4)})`);
      // This run's bundle starts with the ledger it resumes, so that ε can be recomputed from its records alone.
      const { PrivacyLedger } = await import('../dp/ledger.js');
      const replay = new PrivacyLedger({ ...(job.dp.budget !== undefined ? { budget: job.dp.budget } : {}), accountant: 'rdp' });
      for (const e of server.ledger.entries) {
        replay.record(e.event, e.label);
        o.audit.dpEvent(e.event, replay.epsilon(job.dp.budget!.delta), { restored: true, ...(e.label !== undefined ? { label: e.label } : {}) });
      }
      o.audit.checkpoint();
    }
    else o.log(`job ${server.jobId.slice(0, 16)}…: ${job.rounds} rounds, ${job.strategy.kind}, ${job.dp.mechanism === 'none' ? 'no DP' : `${job.dp.mechanism} z=${job.dp.noiseMultiplier}, budget ε=${job.dp.budget!.epsilon} δ=${job.dp.budget!.delta}`}`);
    let result;
    try {
      result = await runFineTune(server, networkSum(coordinator, { signal: o.signal }), { ...(checkpoint !== undefined ? { checkpoint } : {}), signal: o.signal, events: { log: o.log }, audit: o.audit });
    } catch (err) {
      if (o.signal.aborted) return 0; // stopped: the checkpoints so far stay, a restart continues
      if (err instanceof TallyError && err.code === 'FL_ERR_ABORTED') { console.error(`tally serve: ${err.code}: ${err.message}`); return 3; }
      throw err;
    }
    saveAdapter(o.adapterDir, jobLoraConfig(job, modelDir), server.adapter, { tally_job: server.jobId });
    o.log(`job ${result.outcome}: adapter written to ${o.adapterDir}`);
    if (o.out !== undefined) {
      writeFileSync(o.out, `${JSON.stringify({
        job: server.jobId, outcome: result.outcome, ...(result.stoppedBy !== undefined ? { stoppedBy: result.stoppedBy } : {}), adapter: o.adapterDir,
        budget: job.dp.budget ?? null,
        rounds: result.rounds.map((r) => ({ round: r.round, eval_loss: r.evalLoss, perplexity: r.perplexity, survivors: r.survivors, dropped: r.dropped, epsilon: r.epsilon, attempts: r.attempts, seconds: r.seconds, bytes: r.bytes })),
      }, null, 2)}\n`);
    }
    return 0;
  } finally {
    model.dispose();
  }
}
