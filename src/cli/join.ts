/**
 * `tally join`: one site of a consortium. Connects to the coordinator with
 * the site's roster key, takes part in sessions with its input vector until
 * one completes, and reconnects by itself when the connection drops.
 * Exit status: 0 the input is in a completed sum, 1 the coordinator stayed
 * unreachable, 2 bad usage, configuration or a refusal a retry cannot change
 * (unknown site, failed authentication, different consortium), 3 the input
 * was released in a session that did not complete and may not be used again.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { NetError, ValidationError } from '../errors.js';
import type { Consortium } from '../federation/consortium.js';
import type { TaskHandler } from '../federation/site.js';
import { checkOutPath, isLoopback, parseOptions, runName, timestampedLog, usageError, UsageError } from './_args.js';

const HELP = `usage: tally join --config FILE --key KEYFILE (--vector VECTOR | --text DIR) [options]

Takes part, as one site, in the consortium's secure-aggregation sessions
until one completes with this site's vector in the sum. In a consortium
with a training job (consortium.json 'training'), the site fine-tunes
instead: every round it trains the global adapter on its own text, sends
its DP-encoded update into the secure sum and its held-out loss into the
evaluation sum, until the job's last round (exit 0; also when the
coordinator stops the job).

  --config FILE         the consortium configuration (consortium.json)
  --key KEYFILE         the site's identity (made by 'tally keygen' or
                        'tally consortium init'); the roster entry with its
                        public key names the site
  --vector VECTOR       a JSON array of dim integers in [0, 2^bits)
  --text FILE|DIR       training consortia: the site's UTF-8 text (a file, or
                        the *.txt files of a folder); 10% of the documents
                        are held out for evaluation
  --demo-site I         training consortia: instead of --text, share I of the
                        demo's State of the Union partition (tally demo)
  --backend NAME        training: the tfjs backend (default: the best that works)
  --events              training: progress as JSON lines on stdout
  --state FILE          where the site records released inputs
                        (default: KEYFILE.state.json)
  --audit-log FILE      the site's own audit log (transcript-v1): what it
                        sent and received, and the coordinator's checkpoints
                        it witnessed (default: KEYFILE.audit/<time>.jsonl);
                        an auditor checks it with tally audit verify --site-log
  --he-key FILE         a homomorphic consortium: the consortium's HE key from
                        the key ceremony (default: KEYFILE.he.json)
  --out FILE            write the result as JSON (its folder must exist)
  --url URL             the coordinator's address (default: from FILE)
  --tls-cert FILE, --tls-key FILE
                        the site's client certificate and key, when the
                        consortium uses mutual TLS (default: tls/sites/<id>.crt
                        and .key beside FILE)
  --insecure-loopback   connect without TLS (loopback trials only)
  --quiet               print nothing but errors
  -h, --help            show this help

A site never uses one input in two sessions once it has sent its unmasking
shares: if such a session does not complete, join exits with status 3 and
the site needs a new input (see docs/threat-model.md).
`;

/** Reads --vector: a JSON array of `dim` integers in [0, 2^bits). */
function loadVector(file: string, dim: number, bits: number): Uint32Array {
  let doc: unknown;
  try { doc = JSON.parse(readFileSync(file, 'utf8')); } catch (err) { throw new UsageError(`--vector: cannot read ${file}: ${(err as Error).message.split('\n')[0]}`); }
  if (!Array.isArray(doc) || doc.length !== dim) throw new UsageError(`--vector: ${file} must hold a JSON array of ${dim} integers (the consortium's dim), got ${Array.isArray(doc) ? `${doc.length} entries` : typeof doc}`);
  const limit = 2 ** bits;
  return Uint32Array.from(doc, (x, i) => {
    if (!Number.isInteger(x) || x < 0 || x >= limit) throw new UsageError(`--vector: entry ${i} = ${JSON.stringify(x)} is not an integer in [0, 2^${bits})`);
    return x as number;
  });
}

export async function run(argv: string[]): Promise<number> {
  const v = parseOptions('join', argv, ['config', 'key', 'vector', 'state', 'out', 'url', 'tls-cert', 'tls-key', 'text', 'demo-site', 'backend', 'audit-log', 'he-key'], ['insecure-loopback', 'quiet', 'events']);
  if (typeof v === 'number') return v;
  if (v.help === true) { console.log(HELP); return 0; }
  const values = v as Partial<Record<'config' | 'key' | 'vector' | 'state' | 'out' | 'url' | 'tls-cert' | 'tls-key' | 'text' | 'demo-site' | 'backend' | 'audit-log' | 'he-key', string>> & Partial<Record<'insecure-loopback' | 'quiet' | 'events', boolean>>;
  const quiet = values.quiet === true;
  const log = timestampedLog(quiet);
  const [{ loadConsortium }, { readSiteKey }, { runSite, isFinal }] = await Promise.all([
    import('../federation/consortium.js'), import('../federation/keys.js'), import('../federation/site.js'),
  ]);
  let input: Uint32Array | undefined;
  let consortium: Consortium;
  try {
    for (const f of ['config', 'key'] as const) if (values[f] === undefined) throw new UsageError(`--${f} is required`);
    if (values.out !== undefined) checkOutPath(values.out);
    if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
    consortium = loadConsortium(resolve(values.config!));
    if (consortium.training !== undefined) {
      if (values.vector !== undefined) throw new UsageError('this consortium fine-tunes a model: give the site\'s text (--text DIR) instead of --vector');
      if ((values.text === undefined) === (values['demo-site'] === undefined)) throw new UsageError('a fine-tuning site needs its text: --text FILE|DIR (or --demo-site I for the demo\'s SOTU share)');
    } else {
      if (values.vector === undefined) throw new UsageError('--vector is required');
      input = loadVector(values.vector, consortium.config.aggregation.dim, consortium.config.aggregation.bits);
    }
  } catch (err) {
    if (err instanceof UsageError) return usageError('join', err.message);
    throw err;
  }
  const key = readSiteKey(resolve(values.key!));
  const hexKey = Buffer.from(key.publicKey).toString('hex');
  const site = consortium.sites.find((s) => Buffer.from(s.publicKey).toString('hex') === hexKey);
  if (site === undefined) throw new ValidationError('NET_ERR_UNKNOWN_SITE', `no roster entry of ${values.config} has the public key of ${values.key} (${hexKey})`);

  let tls: { ca: Buffer; cert?: Buffer; key?: Buffer } | undefined;
  if (values['insecure-loopback'] === true) {
    const host = values.url !== undefined ? new URL(values.url).hostname.replace(/^\[|\]$/g, '') : consortium.config.coordinator.host;
    if (!isLoopback(host)) throw new ValidationError('NET_ERR_INSECURE', `--insecure-loopback is only allowed with a loopback coordinator address, and ${host} is not one`);
  } else if (consortium.tls === undefined) {
    throw new ValidationError('NET_ERR_INSECURE', 'the configuration names no TLS material (coordinator.tls.ca); give it the consortium CA, or run a loopback trial with --insecure-loopback');
  } else {
    tls = { ca: readFileSync(consortium.tls.ca) };
    const certFile = values['tls-cert'] ?? (consortium.tls.clientCertificates ? resolve(consortium.tls.ca, '..', 'sites', `${site.id}.crt`) : undefined);
    const keyFile = values['tls-key'] ?? (consortium.tls.clientCertificates ? resolve(consortium.tls.ca, '..', 'sites', `${site.id}.key`) : undefined);
    if (certFile !== undefined && keyFile !== undefined) tls = { ...tls, cert: readFileSync(certFile), key: readFileSync(keyFile) };
  }

  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  log(`site ${site.id} (${site.name}) joining`);
  let tasks: TaskHandler | undefined;
  let dispose = (): void => {};
  if (consortium.training !== undefined) {
    const { siteLearner } = await import('../federation/site-data.js');
    const events = values.events === true ? (e: object) => process.stdout.write(`${JSON.stringify({ site: site.id, ...e })}\n`) : undefined;
    const learner = await siteLearner({
      consortium, siteId: site.id, ...(values.text !== undefined ? { text: resolve(values.text) } : { demoSite: Number(values['demo-site']) }),
      ...(values.backend !== undefined ? { backend: values.backend } : {}), log, ...(events !== undefined ? { events } : {}),
    });
    tasks = learner.tasks(consortium);
    dispose = () => learner.dispose();
  }
  let heKey;
  if (consortium.he !== undefined) {
    const { readHeKey } = await import('../federation/he-keys.js');
    heKey = await readHeKey(resolve(values['he-key'] ?? `${values.key}.he.json`), consortium);
  } else if (values['he-key'] !== undefined) {
    return usageError('join', '--he-key applies to a homomorphic consortium (aggregation.aggregator he or he+masks)');
  }
  const { openSiteLog } = await import('../audit/bundle.js');
  const auditLog = resolve(values['audit-log'] ?? join(`${values.key}.audit`, `${runName()}.jsonl`));
  const audit = openSiteLog(auditLog, { seed: key.seed, site: site.id });
  log(`audit log ${auditLog}`);
  try {
    const result = await runSite({
      audit, ...(heKey !== undefined ? { heKey } : {}),
      consortium, siteId: site.id, seed: key.seed, ...(input !== undefined ? { input } : { tasks: tasks! }), stateFile: resolve(values.state ?? `${values.key}.state.json`),
      ...(values.url !== undefined ? { url: values.url } : {}), ...(tls !== undefined ? { tls } : {}), log, signal: stop.signal,
    });
    if (values.out !== undefined) writeFileSync(values.out, `${JSON.stringify({ site: site.id, ...result })}\n`);
    if (!quiet) console.log(`tally join: session ${result.session.slice(0, 16)}… completed with ${result.survivors.length} sites in the sum`);
    return 0;
  } catch (err) {
    if (!(err instanceof NetError)) throw err;
    if (tasks !== undefined && err.code === 'NET_ERR_SHUTDOWN' && !stop.signal.aborted) {
      if (!quiet) console.error('tally join: the coordinator stopped the job');
      return 0;
    }
    console.error(`tally join: ${err.code}: ${err.message}`);
    if (isFinal(err)) return 2;
    return err.code === 'NET_ERR_INPUT_RELEASED' ? 3 : err.code === 'NET_ERR_SHUTDOWN' ? 130 : 1;
  } finally {
    audit.close();
    dispose();
  }
}
