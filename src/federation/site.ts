/**
 * A site of a consortium (`tally join`): connects to the coordinator,
 * reconnects by itself, and takes part in sessions with its input until one
 * completes.
 *
 * What a site checks before it takes part. A `session-start` must carry the
 * consortium's own parameters (roster ids, threshold, bits, dim, threat
 * model, graph): a coordinator cannot lower the threshold or shrink the
 * cohort behind the sites' backs. Any difference is refused
 * (NET_ERR_CONFIG_MISMATCH) and the site does not take part.
 *
 * Input release (docs/threat-model.md, "differencing"). Once a site has sent
 * its unmasking shares (R4) in a session, its input counts as released, even
 * if that session then dies: the coordinator may hold the masked input of
 * that session and, from other sessions with the same input, could learn
 * differences of sums that isolate this site. A released input is never
 * used in another session; the release is written to the site's state file
 * (fsync'd) before the R4 message leaves. An input that never reached R4 may
 * join the next session, with fresh keys, like any other input.
 *
 * Fine-tuning sites (`tasks`). A consortium with a training job sends a task
 * with every session-start; the site checks it and the session's shape
 * against its own copy of the job, computes its input from the task when the
 * masked-input round starts (local training, DP encoding), and takes part in
 * every session until the job's last one. Each session's input is computed
 * afresh (fresh noise, fresh rotation), so no input is ever used twice and
 * the release bookkeeping above does not apply.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { equalBytes, toHex } from '../crypto/_validate.js';
import { nativeProvider } from '../crypto/native.js';
import { systemRng } from '../crypto/rng.js';
import type { CryptoProvider } from '../crypto/types.js';
import { NetError, TallyError } from '../errors.js';
import { ClientDriver } from '../secagg/driver.js';
import type { Envelope, SessionStartBody } from '../transport/envelope.js';
import { backoffDelay, CoordinatorLink } from '../transport/ws-client.js';
import { agreedSessionParams, consortiumLimits, sessionConfig, type Consortium, type RosterSite, type SessionShape } from './consortium.js';
import type { MaskedInputEncoder } from '../crypto/aggregator.js';
import type { HeSecretKey } from '../he/sum.js';
import { clientAuditListener, verifyCheckpointSignature, withAudit, type Transcript } from '../audit/transcript.js';
import type { WireCheckpoint } from '../transport/envelope.js';

export interface SiteOptions {
  readonly consortium: Consortium;
  readonly siteId: string;
  /** The site's Ed25519 roster seed. */
  readonly seed: Uint8Array;
  /** The input: `dim` integers in [0, 2^bits). Give this or `tasks`. */
  readonly input?: Uint32Array;
  /** A fine-tuning site: computes each session's input from its task (module comment). */
  readonly tasks?: TaskHandler;
  /** File where released inputs are recorded (created when missing). */
  readonly stateFile: string;
  /** Coordinator URL override (default from the consortium: wss://host:port/, ws:// with `insecure`). */
  readonly url?: string;
  /** TLS: the CA the site trusts, and with mutual TLS its certificate and key. */
  readonly tls?: { readonly ca: Buffer | string; readonly cert?: Buffer | string; readonly key?: Buffer | string };
  readonly provider?: CryptoProvider;
  readonly log?: (line: string) => void;
  /** Stops waiting; the promise rejects with NET_ERR_SHUTDOWN. */
  readonly signal?: AbortSignal;
  /**
   * Testing and benchmarks only: a site that drops out. In a session it
   * takes part in, the site sends its secure-aggregation messages up to and
   * including round `leaveAfterRound` (0 … 3), then leaves: it sends nothing
   * more (a message of a later round is not sent, and no release is recorded
   * for an R4 message that is not sent), closes its connection and stops.
   * The promise then rejects with NET_ERR_LEFT, which means this and nothing
   * else. The coordinator sees a site that fell silent in the next round it
   * expects a message of (R4 after R2 or R3 in the semi-honest model, which
   * has no R3). Unset (the default): the site never leaves.
   */
  readonly leaveAfterRound?: number;
  /**
   * The site's own audit log (transcript-v1 §6, `openSiteLog`): every
   * message it sent and received (digests), its reveal, each session's end
   * as it saw it, and the coordinator's checkpoints it witnessed (checked
   * against the consortium's `coordinator.auditKey`).
   */
  readonly audit?: Transcript;
  /**
   * A homomorphic consortium: the sites' shared key (he-keys.ts
   * `readHeKey`, from the key ceremony). The site encrypts its masked input
   * under it and decrypts the sealed sum of each result.
   */
  readonly heKey?: HeSecretKey;
}

/** A homomorphic site's part (he-sum-v1): its R2 encoder and the decryption of a sealed sum. */
interface SiteHe {
  readonly keyId: Uint8Array;
  readonly encoder: MaskedInputEncoder;
  /** The decrypted sum and the number of sites its envelope says it holds. */
  decrypt(sealed: Uint8Array): Promise<{ values: number[]; sites: number }>;
}

/** Loads node-seal and the site's encoder, once, for a homomorphic consortium. */
async function siteHe(c: Consortium, key: HeSecretKey | undefined, provider: CryptoProvider): Promise<SiteHe | undefined> {
  const he = c.he;
  if (he === undefined) {
    if (key !== undefined) throw new NetError('NET_ERR_CONFIG_MISMATCH', 'an HE key was given, and the consortium is not homomorphic');
    return undefined;
  }
  if (key === undefined) throw new NetError('NET_ERR_CONFIG_MISMATCH', `the consortium aggregates with "${he.mode}": the site needs the consortium's HE key (tally he deal / tally he accept)`);
  const [{ heContext }, { heMaskedInputEncoder }, { heDecryptSum }] = await Promise.all([import('../he/seal.js'), import('../he/aggregate.js'), import('../he/sum.js')]);
  const hc = await heContext(he.params);
  return {
    keyId: key.keyId,
    encoder: heMaskedInputEncoder(hc, key, he.mode, provider),
    decrypt: async (sealed) => { const r = await heDecryptSum(key, sealed); return { values: [...r.values], sites: r.sites }; },
  };
}

/** How a fine-tuning site handles the tasks of its sessions. */
export interface TaskHandler {
  /**
   * Checks a session-start: why the site refuses it (empty: it takes part; use
   * {@link startMismatches} with the shape the task's purpose derives), and
   * whether it is the job's last session (the site stops after its result).
   */
  accept(start: SessionStartBody): { readonly refused: readonly string[]; readonly last: boolean };
  /** The site's input of the session (called when the masked-input round starts). */
  input(task: Uint8Array, nonce: Uint8Array): Uint32Array;
}

/** What a site learns from a completed session. */
export interface SiteResult {
  readonly session: string;
  readonly inSum: boolean;
  readonly survivors: readonly string[];
  readonly dropped: readonly string[];
  /** The sum, when the consortium sends it to the sites (`aggregation.sumToSites`). */
  readonly sum: readonly number[] | undefined;
}

/** Released inputs of a site, on disk. */
interface SiteState {
  readonly version: 1;
  readonly released: { readonly input: string; readonly session: string; readonly at: string }[];
}

function readState(file: string): SiteState {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, released: [] };
    throw err;
  }
  const s = JSON.parse(text) as SiteState;
  if (s?.version !== 1 || !Array.isArray(s.released)) throw new NetError('NET_ERR_PROTOCOL', `${file} is not a tally site state file`);
  return s;
}

/** Writes the state file atomically and durably (temp file, fsync, rename). */
function writeState(file: string, s: SiteState): void {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(s, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/**
 * A keyed digest of the input (HMAC-SHA256 under the site's seed), so the
 * state file records which input was released without revealing it.
 */
function inputDigest(seed: Uint8Array, input: Uint32Array): string {
  return createHmac('sha256', seed).update('tally/site/released-input').update(new Uint8Array(input.buffer, input.byteOffset, input.byteLength)).digest('hex');
}

/** Differences between a session-start and what the consortium agreed, in words (empty: none). */
export function startMismatches(c: Consortium, s: SessionStartBody, shape?: SessionShape): string[] {
  const want = agreedSessionParams(c, s.session, shape);
  const out: string[] = [];
  const ids = want.clientIds;
  if (s.clientIds.length !== ids.length || s.clientIds.some((id, i) => id !== ids[i])) out.push(`the cohort is not the roster (${s.clientIds.length} ids, roster ${ids.length})`);
  if (s.threshold !== want.threshold) out.push(`threshold ${s.threshold}, agreed ${want.threshold}`);
  if (s.bits !== want.bits) out.push(`bits ${s.bits}, agreed ${want.bits}`);
  if (s.dim !== want.dim) out.push(`dim ${s.dim}, agreed ${want.dim}`);
  if (s.threat !== want.threat) out.push(`threat model ${s.threat}, agreed ${want.threat}`);
  const graph = (g: SessionStartBody['graph']): string => (g.kind === 'harary' ? `harary k=${g.degree}` : 'complete');
  if (graph(s.graph) !== graph(want.graph)) out.push(`graph ${graph(s.graph)}, agreed ${graph(want.graph)}`);
  return out;
}

/**
 * Takes part in sessions until one completes; resolves with its result.
 * @throws NetError: NET_ERR_INPUT_RELEASED (the input was released in a
 *   session that did not complete), NET_ERR_UNREACHABLE (no connection for
 *   the consortium's `reconnectMaxMs`), NET_ERR_AUTH_FAILED /
 *   NET_ERR_UNKNOWN_SITE / NET_ERR_CONFIG_MISMATCH (refused by the
 *   coordinator: retrying cannot help), NET_ERR_SHUTDOWN (aborted by `signal`)
 */
export async function runSite(o: SiteOptions): Promise<SiteResult> {
  const c = o.consortium;
  const me: RosterSite | undefined = c.sites.find((s) => s.id === o.siteId);
  if (me === undefined) throw new NetError('NET_ERR_UNKNOWN_SITE', `site '${o.siteId}' is not in the roster`);
  const log = o.log ?? (() => {});
  const provider = o.provider ?? nativeProvider;
  if ((o.input === undefined) === (o.tasks === undefined)) throw new NetError('NET_ERR_PROTOCOL', 'a site takes either an input or a task handler');
  const leaveAfter = o.leaveAfterRound;
  if (leaveAfter !== undefined && !(Number.isInteger(leaveAfter) && leaveAfter >= 0 && leaveAfter <= 3)) throw new NetError('NET_ERR_PROTOCOL', `leaveAfterRound expected an integer in [0, 3], got ${leaveAfter}`);
  const digest = o.input !== undefined ? inputDigest(o.seed, o.input) : '';
  const he = await siteHe(c, o.heKey, provider);
  const released = (): boolean => o.input !== undefined && readState(o.stateFile).released.some((r) => r.input === digest);
  if (released()) throw new NetError('NET_ERR_INPUT_RELEASED', 'this input was already released in an earlier session (its unmasking shares were sent); give the site a new input');
  const { host, port } = c.config.coordinator;
  const url = o.url ?? `${o.tls !== undefined ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${port}/`;
  const limits = consortiumLimits(c);
  const maxWait = c.config.deadlines.reconnectMaxMs;
  let attempt = 0;
  let unreachableSince = Date.now();

  for (;;) {
    if (o.signal?.aborted === true) throw new NetError('NET_ERR_SHUTDOWN', 'stopped');
    let link: CoordinatorLink;
    try {
      link = await CoordinatorLink.connect({
        url, ...(o.tls !== undefined ? { tls: o.tls } : {}), siteId: o.siteId, seed: o.seed, consortium: c.hash, limits,
        handshakeMs: c.config.deadlines.handshakeMs, provider,
      });
    } catch (err) {
      if (!(err instanceof NetError)) throw err;
      if (isFinal(err)) throw err;
      if (o.tasks !== undefined && err.code === 'NET_ERR_SHUTDOWN') throw err;
      if (Date.now() - unreachableSince > maxWait) throw new NetError('NET_ERR_UNREACHABLE', `no connection to ${url} for ${maxWait} ms: ${err.message}`, { cause: err });
      const wait = backoffDelay(attempt++);
      log(`connection failed (${err.code}); retrying in ${wait} ms`);
      await sleep(wait, o.signal);
      continue;
    }
    attempt = 0;
    log(`connected to ${url} as ${o.siteId} (client id ${link.clientId})`);
    // One connection: sessions until one completes with this input, or the link drops.
    while (link.open) {
      const r = await takePart(o, me, link, provider, digest, log, he);
      if (r.kind === 'result') { link.close(); return r.result; }
      if (r.kind === 'fatal') { link.close(); throw r.error; }
      if (r.kind === 'left') {
        link.close();
        throw new NetError('NET_ERR_LEFT', `the site left session ${r.session.slice(0, 16)}… after its R${r.round} message, as leaveAfterRound asked`);
      }
      if (released()) {
        link.close();
        throw new NetError('NET_ERR_INPUT_RELEASED', 'the session this input was released in did not complete; the input may not be used again: give the site a new input');
      }
    }
    unreachableSince = Date.now();
    await sleep(backoffDelay(attempt++), o.signal);
  }
}

/** Refusals by the coordinator that a retry cannot change: they end the site's run. */
export function isFinal(err: NetError): boolean {
  return err.code === 'NET_ERR_AUTH_FAILED' || err.code === 'NET_ERR_UNKNOWN_SITE' || err.code === 'NET_ERR_CONFIG_MISMATCH';
}

type Turn = { kind: 'result'; result: SiteResult } | { kind: 'again' } | { kind: 'fatal'; error: NetError } | { kind: 'left'; session: string; round: number };

/**
 * One connection's life: waits for a session-start, runs the session, and
 * returns when the session ends (result or abort) or the link closes.
 */
function takePart(o: SiteOptions, me: RosterSite, link: CoordinatorLink, provider: CryptoProvider, digest: string, log: (l: string) => void, he: SiteHe | undefined): Promise<Turn> {
  const c = o.consortium;
  return new Promise<Turn>((resolve) => {
    let driver: ClientDriver | undefined;
    let session: Uint8Array | undefined;
    let sessionDim = c.config.aggregation.dim;
    let last = false;
    let settled = false;
    /** A homomorphic result is being decrypted: frames that arrive meanwhile are not this site's to act on. */
    let settling = false;
    /** The session the audit log has open (its end not yet written). */
    let logged: string | undefined;
    const auditKey = c.config.coordinator.auditKey === undefined ? undefined : Buffer.from(c.config.coordinator.auditKey, 'hex');
    /** Witnesses a coordinator checkpoint in the site's log (after checking its signature), then checkpoints the log. */
    /**
     * Witnesses a coordinator checkpoint in the site's log (after checking its
     * signature), then checkpoints the log. A checkpoint that does not verify
     * is written down as `unwitnessed`, with what was received: a coordinator
     * that withholds valid checkpoints is then visible to an auditor.
     */
    const witness = (cp: WireCheckpoint, own = true): void => {
      const a = o.audit;
      if (a === undefined) return;
      if (auditKey !== undefined && verifyCheckpointSignature(auditKey, cp, undefined, provider)) {
        a.witness(cp);
      } else {
        const reason = auditKey === undefined ? 'the consortium names no coordinator.auditKey to check it against' : 'the checkpoint does not verify under coordinator.auditKey';
        log(`not witnessed: the coordinator's checkpoint of size ${cp.size}: ${reason}`);
        a.append('unwitnessed', { session: logged ?? null, reason, size: cp.size, root: toHex(cp.root), signature: toHex(cp.signature) });
      }
      if (own) a.checkpoint();
    };
    /** Writes the end of the open session to the site's log, witnesses the coordinator's checkpoint, and checkpoints the log. */
    const logEnd = (fields: Readonly<Record<string, unknown>>, cp?: WireCheckpoint): void => {
      const a = o.audit;
      if (a === undefined || logged === undefined) return;
      const session = logged;
      a.append('site-result', { session, ...fields });
      if (cp !== undefined) witness(cp, false);
      // A result or abort from a coordinator that keeps a transcript carries its checkpoint; one without is recorded.
      else if (fields['result'] === 'completed' && auditKey !== undefined) a.append('unwitnessed', { session, reason: 'the result carried no checkpoint' });
      logged = undefined;
      a.checkpoint();
    };
    const end = (t: Turn): void => {
      if (settled) return;
      settled = true;
      if (t.kind !== 'result') {
        const code = t.kind === 'left' ? 'NET_ERR_LEFT' : t.kind === 'fatal' ? t.error.code : 'NET_ERR_CLOSED';
        logEnd({ result: 'aborted', code, message: t.kind === 'fatal' ? t.error.message : t.kind === 'left' ? 'the site left the session' : 'the session ended without a result for this site' });
      }
      driver?.leave(); // zeroes every secret still held
      link.off('frame', onFrame);
      link.off('close', onClose);
      o.signal?.removeEventListener('abort', onAbort);
      resolve(t);
    };
    const onAbort = (): void => end({ kind: 'fatal', error: new NetError('NET_ERR_SHUTDOWN', 'stopped') });
    const onClose = (err: NetError): void => {
      log(`connection closed: ${err.code}: ${err.message}`);
      if (isFinal(err) || (o.tasks !== undefined && err.code === 'NET_ERR_SHUTDOWN')) end({ kind: 'fatal', error: err });
      else end({ kind: 'again' });
    };
    const onFrame = (e: Envelope): void => {
      if (settling) return;
      if (e.kind === 'session-start') {
        if (driver !== undefined && driver.outcome === undefined) driver.leave(); // a new session replaces an unfinished one
        logEnd({ result: 'aborted', code: 'NET_ERR_PROTOCOL', message: 'a new session started before this one ended' });
        let bad: readonly string[];
        if (o.tasks !== undefined) {
          const a = o.tasks.accept(e);
          bad = a.refused;
          last = a.last;
        } else {
          bad = startMismatches(c, e);
        }
        if (bad.length > 0) {
          log(`refused a session: ${bad.join('; ')}`);
          driver = undefined;
          session = undefined;
          return;
        }
        // The session runs on the site's own copy of the agreed parameters, with the coordinator's nonce.
        // (A task's session has the shape its purpose derives; accept() checked it against the site's own derivation.)
        const config = sessionConfig(c, e.session, o.tasks !== undefined ? { dim: e.dim, bits: e.bits, threshold: e.threshold } : undefined, he?.keyId);
        session = e.session;
        sessionDim = config.dim;
        const nonce = e.session;
        const hex = Buffer.from(nonce).toString('hex');
        log(`session ${hex.slice(0, 16)}… started`);
        if (o.audit !== undefined) logged = hex;
        // leaveAfterRound: the round of the message about to be sent (the listener sees it just before the channel does).
        let sending = 0;
        const leaveAfter = o.leaveAfterRound;
        const leave = (): void => {
          if (settled) return;
          log(`leaving session ${hex.slice(0, 16)}… after R${leaveAfter} (leaveAfterRound)`);
          end({ kind: 'left', session: hex, round: leaveAfter! });
        };
        driver = new ClientDriver({
          config, id: me.clientId, provider, rng: systemRng, ...(he !== undefined ? { maskedInput: he.encoder } : {}),
          ...(e.threat === 'malicious' ? { identitySeed: o.seed } : {}),
          input: o.tasks !== undefined ? taskInput(o.tasks, e.task ?? new Uint8Array(0), nonce) : o.input!,
          channel: {
            send: leaveAfter === undefined
              ? (bytes) => { link.send({ kind: 'secagg', session: nonce, payload: bytes }); }
              : (bytes) => {
                if (settled) return;
                if (sending <= leaveAfter) link.send({ kind: 'secagg', session: nonce, payload: bytes });
                // Leaves once the driver is done with this step: after the last message of its round, or instead of a later one.
                if (sending >= leaveAfter) queueMicrotask(leave);
              },
          },
          listener: withAudit(o.audit === undefined ? undefined : clientAuditListener(o.audit, hex, config, me.clientId), {
            message: (m) => {
              if (leaveAfter !== undefined && m.direction === 'to-server') {
                sending = m.round;
                if (sending > leaveAfter) return; // not sent: nothing released
              }
              // Record the release durably before the unmasking shares leave (see the module comment).
              if (m.direction === 'to-server' && m.round === 4 && o.input !== undefined) {
                const s = readState(o.stateFile);
                if (!s.released.some((r) => r.input === digest)) {
                  writeState(o.stateFile, { version: 1, released: [...s.released, { input: digest, session: hex, at: new Date().toISOString() }] });
                }
              }
            },
          }),
        });
        driver.start();
        return;
      }
      if (session === undefined || !('session' in e) || !equalBytes(e.session, session)) return; // not about our session
      if (e.kind === 'secagg') {
        if (e.checkpoint !== undefined) witness(e.checkpoint);
        driver?.receive(e.payload);
        return;
      }
      if (e.kind === 'result') {
        const name = (id: number): string => c.sites.find((s) => s.clientId === id)?.id ?? `client-${id}`;
        const inSum = e.survivors.includes(me.clientId);
        if (he !== undefined) {
          // A homomorphic consortium: the result carries the sealed sum, which this site decrypts (the coordinator cannot).
          const sealed = e.sealedSum;
          if (sealed === undefined || sealed.length !== c.he!.sumBytes || e.sum.length !== 0) {
            log(`refused a result: a homomorphic consortium's result carries a sealed sum of ${c.he!.sumBytes} bytes and no sum`);
            end({ kind: 'fatal', error: new NetError('NET_ERR_CONFIG_MISMATCH', 'the coordinator\'s result does not carry the sealed sum of a homomorphic consortium') });
            return;
          }
          const cp = e.checkpoint;
          const survivors = [...e.survivors], dropped = [...e.dropped], sid = Buffer.from(e.session).toString('hex');
          settling = true;
          // A sum that does not decrypt, or is not a sum of the survivors over this session's length, ends the session
          // without a result, as an abort does (docs/he.md: one site, or the coordinator, can spoil a sealed sum unseen).
          const spoiled = (code: string, why: string): void => {
            log(`the sealed sum of session ${sid.slice(0, 16)}… is refused: ${why}`);
            logEnd({ result: 'aborted', code, message: why }, cp);
            driver = undefined; session = undefined;
            end({ kind: 'again' });
          };
          he.decrypt(sealed).then((s) => {
            if (s.sites !== survivors.length || s.values.length !== sessionDim) {
              spoiled('HE_ERR_MISMATCH', `it holds ${s.values.length} values of ${s.sites} sites, not ${sessionDim} values of the ${survivors.length} survivors`);
              return;
            }
            log(`session completed: ${survivors.length} sites in the sum${inSum ? ', this site among them' : ', this site not among them'}; the sealed sum decrypted`);
            logEnd({ result: 'completed', survivors, dropped, sumSha256: createHash('sha256').update(sealed).digest('hex') }, cp);
            const result: SiteResult = { session: sid, inSum, survivors: survivors.map(name), dropped: dropped.map(name), sum: s.values };
            if (inSum) end({ kind: 'result', result });
            else { driver = undefined; session = undefined; end({ kind: 'again' }); }
          }, (err: unknown) => {
            spoiled(err instanceof TallyError ? err.code : 'HE_ERR_DECRYPT', `it does not decrypt: ${(err as Error).message}`);
          });
          return;
        }
        const shared = c.config.aggregation.sumToSites === true;
        if (shared !== (e.sum.length === sessionDim)) {
          log(`refused a result: ${shared ? `expected the sum of ${sessionDim} entries, got ${e.sum.length}` : 'the consortium does not send the sum to the sites, and the result carries one'}`);
          end({ kind: 'fatal', error: new NetError('NET_ERR_CONFIG_MISMATCH', 'the coordinator\'s result does not follow the consortium\'s aggregation.sumToSites') });
          return;
        }
        const result: SiteResult = {
          session: Buffer.from(e.session).toString('hex'), inSum, survivors: e.survivors.map(name), dropped: e.dropped.map(name), sum: shared ? [...e.sum] : undefined,
        };
        log(`session completed: ${e.survivors.length} sites in the sum${inSum ? ', this site among them' : ', this site not among them'}`);
        logEnd({
          result: 'completed', survivors: [...e.survivors], dropped: [...e.dropped],
          sumSha256: shared ? createHash('sha256').update(new Uint8Array(e.sum.buffer, e.sum.byteOffset, e.sum.byteLength)).digest('hex') : null,
        }, e.checkpoint);
        if (o.tasks !== undefined) end(last ? { kind: 'result', result } : { kind: 'again' }); // a fine-tuning site goes on to the next session
        else if (inSum) end({ kind: 'result', result });
        else { driver = undefined; session = undefined; end({ kind: 'again' }); }
        return;
      }
      if (e.kind === 'abort') {
        log(`session aborted by the coordinator: ${e.code}: ${e.message}`);
        logEnd({ result: 'aborted', code: e.code, message: e.message }, e.checkpoint);
        end({ kind: 'again' });
      }
    };
    link.on('frame', onFrame);
    link.on('close', onClose);
    o.signal?.addEventListener('abort', onAbort);
    if (o.signal?.aborted === true) onAbort();
    else if (!link.open) onClose(new NetError('NET_ERR_CLOSED', 'closed'));
  });
}

/** The lazy input of a task's session: a failure to compute it makes the site leave that session (typed, never a crash). */
function taskInput(tasks: TaskHandler, task: Uint8Array, nonce: Uint8Array): () => Uint32Array {
  return () => {
    try {
      return tasks.input(task, nonce);
    } catch (err) {
      if (err instanceof TallyError) throw err;
      throw new TallyError('FL_ERR_ABORTED', `the site could not compute its input: ${(err as Error).message}`, { cause: err });
    }
  };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
