/**
 * `tally demo`: a whole federated fine-tuning on embedded defaults (what
 * `npm start` runs). The shipped base model (pre-trained on State of the
 * Union addresses up to 1946), N sites each holding one era of the later
 * addresses, secure aggregation of every round's DP-noised updates (the
 * distributed discrete Gaussian), a privacy budget the coordinator enforces,
 * and the consortium's held-out loss after every round, learnt through the
 * same secure sum.
 *
 * By default every site is its own process, talking wss to a coordinator in
 * this process on loopback, exactly as `tally join` and `tally serve` do;
 * `--in-process` runs the sites here over the in-memory channel instead (the
 * same round loop, the same session driver).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { InternalError } from '../errors.js';
import { isInt, numberOption, parseOptions, runName, usageError, UsageError, type OptionValues } from './_args.js';

const HELP = `usage: tally demo [options]

Fine-tunes the shipped base model (models/tally-base) with LoRA across
several sites, each holding one era of the State of the Union addresses after
1946, under secure aggregation and distributed differential privacy, and
reports the consortium's held-out loss after every round.

options:
  --sites N           sites (default 4; 3..16)
  --rounds R          training rounds (default 4; --quick 2)
  --steps S           local steps per round (default 12; --quick 6)
  --quick             a shorter run (under 90 s on 2 cores)
  --in-process        run the sites in this process (default: one process per
                      site, wss on loopback)
  --no-dp             no differential privacy (the sum is still secure)
  --noise Z           noise multiplier z (default 0.05)
  --epsilon E         the privacy budget's ε (default: what the planned rounds
                      spend, rounded up)
  --delta D           the budget's δ (default 1e-5)
  --strategy S        fedavg | fedprox | scaffold (default fedavg)
  --weights W         equal (default) | examples: FedAvg weighted by each
                      site's number of training windows (declared in the job)
  --ranks R1,R2,...   heterogeneous LoRA ranks, one per site (HetLoRA
                      zero-padding; the largest is the adapter's rank)
  --aggregator plain  the coordinator sees every update in the clear (needs
                      --in-process and --no-dp); with --robust
                      median|trimmed-mean|krum it aggregates robustly
  --out DIR           where runs are written (default runs)
  --json FILE         also write the summary as JSON to FILE
  --backend NAME      tfjs backend (default: the best that works)
  --quiet             no progress, only the final table
  -h, --help          show this help

Outputs, under DIR/<run id>/: adapter/ (a Hugging Face PEFT adapter),
coordinator.db (the coordinator's store: sessions and round checkpoints),
audit/ (the audit bundle: the coordinator's signed transcript and every
site's own log; check it with tally audit verify DIR/<run id>/audit),
summary.json.
`;

interface DemoOptions {
  readonly sites: number;
  readonly rounds: number;
  readonly steps: number;
  readonly inProcess: boolean;
  readonly dp: boolean;
  readonly noise: number;
  readonly epsilon: number | undefined;
  readonly delta: number;
  readonly strategy: 'fedavg' | 'fedprox' | 'scaffold';
  readonly ranks: number[] | undefined;
  readonly byExamples: boolean;
  readonly plain: boolean;
  readonly robust: 'median' | 'trimmed-mean' | 'krum' | undefined;
  readonly out: string;
  readonly json: string | undefined;
  readonly backend: string | undefined;
  readonly quiet: boolean;
}

function options(v: OptionValues): DemoOptions {
  const quick = v.quick === true;
  const s = v as Record<string, string | undefined>;
  const strategy = s.strategy ?? 'fedavg';
  if (strategy !== 'fedavg' && strategy !== 'fedprox' && strategy !== 'scaffold') throw new UsageError(`--strategy must be fedavg, fedprox or scaffold, got ${strategy}`);
  const sites = numberOption(s.sites, 'sites', 4, isInt(3, 16), 'an integer in [3, 16]');
  let ranks: number[] | undefined;
  if (s.ranks !== undefined) {
    ranks = s.ranks.split(',').map((x) => Number(x));
    if (ranks.length !== sites || ranks.some((r) => !Number.isInteger(r) || r < 1 || r > 64)) throw new UsageError(`--ranks expected ${sites} comma-separated ranks in [1, 64] (one per site), got '${s.ranks}'`);
  }
  const aggregator = s.aggregator ?? 'secure';
  if (aggregator !== 'secure' && aggregator !== 'plain') throw new UsageError(`--aggregator must be secure or plain, got ${aggregator}`);
  const robust = s.robust;
  if (robust !== undefined && robust !== 'median' && robust !== 'trimmed-mean' && robust !== 'krum') throw new UsageError(`--robust must be median, trimmed-mean or krum, got ${robust}`);
  if (robust !== undefined && aggregator !== 'plain') throw new UsageError('--robust needs --aggregator plain: under secure aggregation the coordinator never sees an update');
  if (aggregator === 'plain' && (v['in-process'] !== true || v['no-dp'] !== true)) throw new UsageError('--aggregator plain needs --in-process and --no-dp (plain aggregation shows every update; the distributed noise protects sums only)');
  const weights = s.weights ?? 'equal';
  if (weights !== 'equal' && weights !== 'examples') throw new UsageError(`--weights must be equal or examples, got ${weights}`);
  return {
    sites,
    ranks,
    byExamples: weights === 'examples',
    plain: aggregator === 'plain',
    robust,
    rounds: numberOption(s.rounds, 'rounds', quick ? 2 : 4, isInt(1, 1000), 'an integer in [1, 1000]'),
    steps: numberOption(s.steps, 'steps', quick ? 6 : 12, isInt(1, 100_000), 'a positive integer'),
    inProcess: v['in-process'] === true,
    dp: v['no-dp'] !== true,
    noise: numberOption(s.noise, 'noise', 0.05, (x) => x > 0, 'a positive number'),
    epsilon: s.epsilon === undefined ? undefined : numberOption(s.epsilon, 'epsilon', 0, (x) => x > 0, 'a positive number'),
    delta: numberOption(s.delta, 'delta', 1e-5, (x) => x > 0 && x < 1, 'a number in (0, 1)'),
    strategy,
    out: resolve(s.out ?? 'runs'),
    json: s.json,
    backend: s.backend,
    quiet: v.quiet === true,
  };
}

/** The job of the demo: FFA-LoRA on c_attn, equal-weight FedAvg, the distributed discrete Gaussian. */
function demoJob(o: DemoOptions, epsilon: number, examples: readonly number[]): Record<string, unknown> {
  return {
    rounds: o.rounds,
    lora: {
      r: o.ranks !== undefined ? Math.max(...o.ranks) : 4, alpha: 2 * (o.ranks !== undefined ? Math.max(...o.ranks) : 4), targets: ['c_attn', 'c_proj', 'c_fc'], ffa: true,
      seed: 'tally/demo/lora-a', ...(o.ranks !== undefined ? { ranks: o.ranks } : {}),
    },
    // SCAFFOLD trains with plain SGD (its control update assumes SGD steps), which wants a far larger rate than AdamW (docs/results.md).
    local: { steps: o.steps, batchSize: 8, lr: o.strategy === 'scaffold' ? 0.3 : 0.01, weightDecay: 0 },
    strategy: { kind: o.strategy, ...(o.strategy === 'fedprox' ? { mu: 0.01 } : {}), serverLr: 1, serverMomentum: 0, ...(o.byExamples ? { examples: [...examples] } : {}) },
    ...(o.plain ? { aggregator: 'plain', ...(o.robust !== undefined ? { robust: { kind: o.robust, ...(o.robust === 'trimmed-mean' ? { trim: 1 } : o.robust === 'krum' ? { f: Math.max(0, Math.floor((o.sites - 3) / 2)) } : {}) } } : {}) } : {}),
    dp: o.dp
      ? { mechanism: 'ddg', clip: 1, noiseMultiplier: o.noise, bits: 20, budget: { epsilon, delta: o.delta } }
      : { mechanism: 'none', clip: 1, noiseMultiplier: 1, bits: 20 },
  };
}

export async function run(argv: string[]): Promise<number> {
  const v = parseOptions('demo', argv, ['sites', 'rounds', 'steps', 'noise', 'epsilon', 'delta', 'strategy', 'out', 'json', 'backend', 'ranks', 'aggregator', 'robust', 'weights'], ['quick', 'in-process', 'no-dp', 'quiet']);
  if (typeof v === 'number') return v;
  if (v.help === true) { console.log(HELP); return 0; }
  let o: DemoOptions;
  try {
    o = options(v);
  } catch (err) {
    if (err instanceof UsageError) return usageError('demo', err.message);
    throw err;
  }
  const t0 = performance.now();
  const say = o.quiet ? () => {} : (l: string) => console.log(l);
  const [{ initBackend }, { loadCheckpoint }, { parseJob, jobHash }, { jobLoraConfig, Learner }, rounds, { CoordinatorStore }, { demoPartition, DEMO_CUTOFF_YEAR }, { saveAdapter }, { packageRoot }, { Progress }] = await Promise.all([
    import('../training/backend.js'), import('../training/checkpoint.js'), import('../federation/job.js'), import('../federation/learner.js'),
    import('../federation/rounds.js'), import('../federation/store.js'), import('../federation/demo-data.js'), import('../training/adapter-format.js'),
    import('../vectors/common.js'), import('./_progress.js'),
  ]);
  const backend = await initBackend({ ...(o.backend !== undefined ? { prefer: o.backend as never } : {}) });
  const modelDir = join(packageRoot(), 'models', 'tally-base');
  const base = loadCheckpoint(modelDir);
  const threshold = Math.floor(o.sites / 2) + 1;
  const part = demoPartition(o.sites, base.config.n_positions, 24);
  // Each site's windows, cut once: the learners train on them in one process, and --weights examples counts them.
  const siteData = o.inProcess || o.byExamples ? Array.from({ length: o.sites }, (_, i) => part.data(i)) : [];
  const examples = o.byExamples ? siteData.map((d) => d.train.length) : [];

  // The budget: by default, what the planned rounds spend (rounded up), so that every round runs and none more.
  let epsilon = o.epsilon ?? 1;
  if (o.dp && o.epsilon === undefined) {
    const { server: probe, model: m } = rounds.openJob({ job: parseJob(demoJob(o, 1e9, examples), { sites: o.sites, threshold }), base: { config: base.config, weights: base.tensors } });
    for (let r = 0; r < o.rounds; r++) probe.charge('plan');
    epsilon = Math.ceil(probe.epsilon());
    m.dispose();
  }
  const job = parseJob(demoJob(o, epsilon, examples), { sites: o.sites, threshold });
  const id = runName();
  const runDir = join(o.out, id);
  mkdirSync(runDir, { recursive: true });
  say(`tally demo: run ${id}, ${o.sites} sites, ${o.rounds} round${o.rounds === 1 ? '' : 's'} of ${o.steps} local steps, ${o.inProcess ? 'in one process' : 'one process per site over wss'}, backend ${backend.name}`);
  say(`  base model ${relative(process.cwd(), modelDir) || modelDir}: ${base.config.n_layer} layers, n_embd ${base.config.n_embd}, pre-trained on addresses up to ${DEMO_CUTOFF_YEAR}`);
  part.parts.forEach((p, i) => say(`  site-${i + 1}: addresses ${p.span?.from}–${p.span?.to}, ${p.documents} documents, ${(p.bytes / 1024).toFixed(0)} KiB`));
  if (o.plain) console.log(`tally demo: aggregator plain: the coordinator sees every site's update in the clear${o.robust !== undefined ? ` (robust aggregation: ${o.robust})` : ''}`);
  say(`  LoRA r=${job.lora.ranks !== undefined ? job.lora.ranks.join('/') : job.lora.r} on ${job.lora.targets.join(', ')} (FFA: A frozen), ${job.strategy.kind}${o.byExamples ? ` weighted by examples (${examples.join('/')})` : ''}, secure aggregation with t=${threshold} of ${o.sites}, ` +
    (o.dp ? `distributed discrete Gaussian z=${o.noise}, clip ${job.dp.clip}, budget (ε=${epsilon}, δ=${o.delta})` : 'no differential privacy'));

  const store = CoordinatorStore.open(join(runDir, 'coordinator.db'));
  const auditDir = join(runDir, 'audit');
  const policy = { minSurvivors: threshold, budget: o.dp ? { epsilon, delta: o.delta } : null, accountant: 'rdp' as const };
  const { server, model, checkpoint } = rounds.openJob({ job, base: { config: base.config, weights: base.tensors }, store });
  const progress = new Progress({ sites: o.sites, rounds: o.rounds, steps: o.steps, enabled: !o.quiet });
  const children: ChildProcess[] = [];
  let closeNet = async (): Promise<void> => {};
  const learners: InstanceType<typeof Learner>[] = [];
  try {
    let sum: import('../federation/rounds.js').SecureSum;
    let plain: import('../federation/rounds.js').PlainCollect | undefined;
    let audit: import('../audit/transcript.js').Transcript;
    const openLogs: import('../audit/transcript.js').Transcript[] = []; // closed once the run is over
    if (o.inProcess) {
      // The in-process sites have identity keys of their own, for their logs; the roster in the config names them.
      const { generateSiteKey } = await import('../federation/keys.js');
      const { openCoordinatorLog, openSiteLog } = await import('../audit/bundle.js');
      const { jobJson } = await import('../federation/job.js');
      const keys = Array.from({ length: o.sites }, () => generateSiteKey());
      const roster = keys.map((k, i) => ({ id: `site-${i + 1}`, name: `Site ${i + 1}`, publicKey: Buffer.from(k.publicKey).toString('hex') }));
      audit = openCoordinatorLog(auditDir, {
        signingSeed: generateSiteKey().seed, policy,
        config: { consortium: { version: 1, name: 'tally demo (in-process)', roster, aggregation: { threat: 'semi-honest', graph: { kind: 'complete' }, threshold } }, job: jobJson(job) },
      });
      const siteLogs = keys.map((k, i) => openSiteLog(join(auditDir, 'sites', `site-${i + 1}.jsonl`), { seed: k.seed, site: `site-${i + 1}` }));
      for (let i = 0; i < o.sites; i++) {
        const d = siteData[i]!;
        learners.push(new Learner({
          job, base: { config: base.config, weights: base.tensors }, train: d.train, heldOut: d.heldOut, seed: `site-${i + 1}`, siteIndex: i,
          onStep: (s) => progress.step(i, s.round, s.step, s.loss),
        }));
      }
      openLogs.push(audit, ...siteLogs);
      sum = rounds.inProcessSum({ sites: learners.map((l, i) => ({ id: `site-${i + 1}`, input: (task, nonce) => l.input(task, nonce).input })), audit, siteLogs });
      if (o.plain) plain = rounds.inProcessPlain(learners.map((l, i) => ({ id: `site-${i + 1}`, update: (task) => l.plainUpdate(task).update })));
    } else {
      const net = await startNetwork(o, job, runDir, modelDir, store, server, progress, auditDir, policy);
      children.push(...net.children);
      closeNet = net.close;
      sum = net.sum;
      audit = net.audit;
      openLogs.push(audit);
    }
    const result = await rounds.runFineTune(server, sum, {
      audit,
      ...(checkpoint !== undefined ? { checkpoint } : {}),
      ...(plain !== undefined ? { plain } : {}),
      events: {
        sessionStarted: (e) => progress.phase(e.round, e.purpose, e.attempt),
        roundDone: (s) => progress.round(s.round, s.evalLoss, s.epsilon),
      },
    });
    progress.stop();
    for (const l of openLogs) l.close();
    const adapterDir = join(runDir, 'adapter');
    saveAdapter(adapterDir, jobLoraConfig(job, modelDir), server.adapter, { tally_job: jobHash(job), tally_rounds: String(result.rounds.length - 1) });
    const hist = result.rounds;
    const summary = {
      rounds: hist.filter((r) => r.round > 0).map((r) => ({ round: r.round, eval_loss: r.evalLoss, perplexity: r.perplexity, survivors: r.survivors.length, epsilon: r.epsilon, seconds: r.seconds, bytes: r.bytes })),
      budget: o.dp ? { epsilon, delta: o.delta } : null,
      base_eval_loss: hist[0]!.evalLoss,
      final_eval_loss: hist[hist.length - 1]!.evalLoss,
      adapter: adapterDir,
      model: modelDir,
      outcome: result.outcome,
      audit: auditDir,
      sites: o.sites, mode: o.inProcess ? 'in-process' : 'processes', backend: backend.name, seconds: (performance.now() - t0) / 1000,
    };
    writeFileSync(join(runDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
    if (o.json !== undefined) writeFileSync(o.json, `${JSON.stringify(summary, null, 2)}\n`);
    printTable(hist, o.dp ? { epsilon, delta: o.delta } : undefined);
    const gain = summary.base_eval_loss - summary.final_eval_loss;
    console.log(`held-out loss ${summary.base_eval_loss.toFixed(4)} → ${summary.final_eval_loss.toFixed(4)} nats/byte (${gain >= 0 ? '−' : '+'}${Math.abs(gain).toFixed(4)}), ${summary.seconds.toFixed(0)} s`);
    if (result.outcome === 'budget-exhausted') console.log(`stopped early: ${result.stoppedBy}`);
    console.log(`wrote ${relative(process.cwd(), adapterDir)}/ (PEFT adapter), ${relative(process.cwd(), join(runDir, 'coordinator.db'))}, ${relative(process.cwd(), join(runDir, 'summary.json'))}`);
    console.log(`audit bundle ${relative(process.cwd(), auditDir)}/: check it with tally audit verify ${relative(process.cwd(), auditDir)}`);
    return 0;
  } finally {
    progress.stop();
    await closeNet();
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    for (const l of learners) l.dispose();
    model.dispose();
    store.close();
  }
}

function printTable(hist: readonly import('../federation/rounds.js').RoundSummary[], budget: { epsilon: number; delta: number } | undefined): void {
  const rows = [['round', 'eval loss', 'perplexity', 'survivors', budget !== undefined ? `ε (δ=${budget.delta})` : 'ε', 'seconds']];
  for (const r of hist) {
    rows.push([r.round === 0 ? 'base' : String(r.round), r.evalLoss.toFixed(4), r.perplexity.toFixed(3), r.round === 0 ? '-' : String(r.survivors.length), budget !== undefined ? r.epsilon.toFixed(2) : '-', r.seconds.toFixed(1)]);
  }
  const w = rows[0]!.map((_, j) => Math.max(...rows.map((r) => r[j]!.length)));
  for (const [i, r] of rows.entries()) {
    console.log(r.map((c, j) => (j === 0 ? c.padEnd(w[j]!) : c.padStart(w[j]!))).join('  '));
    if (i === 0) console.log(w.map((x) => '-'.repeat(x)).join('  '));
  }
  if (budget !== undefined) console.log(`budget: ε = ${budget.epsilon}, δ = ${budget.delta} (site-level: protects each site's whole data set)`);
}

/** The network run: a consortium on loopback, the coordinator here, one `tally join` process per site. */
async function startNetwork(
  o: DemoOptions, job: import('../federation/job.js').FineTuneJob, runDir: string, modelDir: string,
  store: import('../federation/store.js').CoordinatorStore, server: import('../federation/rounds.js').FineTuneServer,
  progress: import('./_progress.js').Progress, auditDir: string, policy: import('../audit/transcript.js').AuditPolicy,
): Promise<{ sum: import('../federation/rounds.js').SecureSum; children: ChildProcess[]; close: () => Promise<void>; audit: import('../audit/transcript.js').Transcript }> {
  const [{ initConsortium }, { Coordinator, networkSum }, { jobJson, jobHash }, { openCoordinatorLog }, { readSiteKey }] = await Promise.all([
    import('../federation/consortium.js'), import('../federation/coordinator.js'), import('../federation/job.js'), import('../audit/bundle.js'), import('../federation/keys.js'),
  ]);
  const dir = join(runDir, 'consortium');
  const init = await initConsortium({
    dir, sites: o.sites, threshold: job.threshold, graph: 'complete', name: 'tally demo',
    training: { model: modelDir, ...jobJson(job) },
    deadlines: { gatherMs: 120_000, roundMs: 30_000, trainMs: 600_000, idleMs: 900_000, reconnectMaxMs: 60_000 },
  });
  const c = init.consortium;
  if (c.training === undefined || jobHash(c.training.job) !== server.jobId) throw new InternalError('the demo consortium\'s job is not the coordinator\'s');
  const t = c.tls!;
  const audit = openCoordinatorLog(auditDir, { signingSeed: readSiteKey(init.auditKeyFile).seed, policy, config: { consortium: c.config, job: jobJson(job) } });
  const coordinator = await Coordinator.start({
    consortium: c, store, port: 0, audit,
    tls: { cert: readFileSync(t.cert), key: readFileSync(t.key), ca: readFileSync(t.ca), clientCertificates: t.clientCertificates },
  });
  const main = fileURLToPath(new URL('./main.js', import.meta.url));
  const children = init.keyFiles.map((keyFile, i) => {
    const child = spawn(process.execPath, [
      main, 'join', '--config', init.configFile, '--key', keyFile, '--demo-site', String(i + 1), '--events', '--quiet',
      '--url', `wss://127.0.0.1:${coordinator.port}/`, '--state', join(dir, 'keys', `site-${i + 1}.state.json`),
      '--audit-log', join(auditDir, 'sites', `site-${i + 1}.jsonl`),
      ...(o.backend !== undefined ? ['--backend', o.backend] : []),
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const e = JSON.parse(line) as { event?: string; round?: number; step?: number; loss?: number };
        if (e.event === 'step') progress.step(i, e.round!, e.step!, e.loss!);
      } catch { /* not an event line */ }
    });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => { err = (err + b.toString()).slice(-2000); });
    child.on('exit', (code) => { if (code !== 0 && code !== null) progress.note(`site-${i + 1} exited with status ${code}: ${err.trim().split('\n').pop() ?? ''}`); });
    return child;
  });
  return {
    sum: networkSum(coordinator),
    audit,
    children,
    close: async () => {
      await coordinator.close();
      await Promise.all(children.map((ch) => (ch.exitCode !== null ? Promise.resolve() : new Promise<void>((r) => { const k = setTimeout(() => { ch.kill('SIGKILL'); r(); }, 5000); ch.once('exit', () => { clearTimeout(k); r(); }); }))));
    },
  };
}
