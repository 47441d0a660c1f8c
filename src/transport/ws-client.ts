/**
 * A site's side of the network: one authenticated WebSocket connection to the
 * coordinator (protocols/wire-v1/spec.md §4), and the reconnection schedule
 * sites use when it drops.
 *
 * `CoordinatorLink.connect` opens the socket (TLS verified against the
 * consortium CA unless the caller asked for plain loopback), sends `hello`,
 * signs the coordinator's challenge with the site's roster key and resolves
 * once `welcome` arrives. Frames are decoded with the consortium's limits; a
 * bad frame from the coordinator closes the link (it never throws).
 */
import { EventEmitter } from 'node:events';
import { WebSocket, type RawData } from 'ws';
import type { CryptoProvider } from '../crypto/types.js';
import { CodecError, NetError, NET_CODES, WIRE_CODES, type NetCode, type WireCode } from '../errors.js';
import { authSignedBytes, decodeEnvelope, encodeEnvelope, maxFrameBytes, type Envelope, type EnvelopeLimits } from './envelope.js';
import { toBytes } from './ws-server.js';

export interface CoordinatorLinkOptions {
  /** `wss://host:port/` (or `ws://` for loopback trials without TLS). */
  readonly url: string;
  /** The consortium CA to verify the coordinator against, and with mutual TLS the site's certificate and key. */
  readonly tls?: { readonly ca: Buffer | string; readonly cert?: Buffer | string; readonly key?: Buffer | string };
  readonly siteId: string;
  /** The site's Ed25519 roster seed. */
  readonly seed: Uint8Array;
  readonly consortium: Uint8Array;
  readonly limits: EnvelopeLimits;
  readonly handshakeMs: number;
  readonly provider: CryptoProvider;
}

const KNOWN = new Set<string>([...NET_CODES, ...WIRE_CODES]);

/** Maps a code received in an `error` frame to a local one (an unknown code is a protocol error). */
function remoteCode(code: string): NetCode | WireCode {
  return KNOWN.has(code) ? (code as NetCode | WireCode) : 'NET_ERR_PROTOCOL';
}

/**
 * One authenticated connection. Events: `frame` (an envelope after the
 * handshake), `close` (a NetError saying why, once).
 */
export class CoordinatorLink extends EventEmitter<{ frame: [Envelope]; close: [NetError] }> {
  private closedWith: NetError | undefined;
  /** Frames that arrived while nobody listened (e.g. a session-start right behind the welcome). */
  private readonly pending: Envelope[] = [];
  private constructor(private readonly ws: WebSocket, readonly clientId: number) {
    super();
    // Hand the held frames to the first 'frame' listener, once it is attached.
    (this as unknown as EventEmitter).on('newListener', (event: string | symbol) => { if (event === 'frame' && this.pending.length > 0) setImmediate(() => this.flush()); });
  }

  /** Delivers a frame to the listeners, or holds it until there is one. */
  private deliver(e: Envelope): void {
    if (this.listenerCount('frame') === 0 || this.pending.length > 0) { this.pending.push(e); this.flush(); return; }
    this.emit('frame', e);
  }

  private flush(): void {
    while (this.pending.length > 0 && this.listenerCount('frame') > 0) this.emit('frame', this.pending.shift()!);
  }

  get open(): boolean { return this.closedWith === undefined; }

  /**
   * Connects and authenticates.
   * @throws NetError: NET_ERR_UNREACHABLE (no connection, TLS refused), NET_ERR_HANDSHAKE_TIMEOUT,
   *   or the code of the coordinator's `error` frame (NET_ERR_AUTH_FAILED, NET_ERR_UNKNOWN_SITE, …)
   */
  static connect(o: CoordinatorLinkOptions): Promise<CoordinatorLink> {
    return new Promise((resolve, reject) => {
      let settled = false;
      let link: CoordinatorLink | undefined;
      let challenged = false; // welcome is only valid after our answer to a challenge (spec §4.2)
      const ws = new WebSocket(o.url, {
        perMessageDeflate: false,
        maxPayload: maxFrameBytes(o.limits),
        handshakeTimeout: o.handshakeMs,
        ...(o.tls !== undefined ? { ca: o.tls.ca, ...(o.tls.cert !== undefined ? { cert: o.tls.cert, key: o.tls.key } : {}), rejectUnauthorized: true } : {}),
      });
      const timer = setTimeout(() => fail(new NetError('NET_ERR_HANDSHAKE_TIMEOUT', `no welcome from the coordinator within ${o.handshakeMs} ms`)), o.handshakeMs);
      timer.unref();
      const fail = (err: NetError): void => {
        clearTimeout(timer);
        if (!settled) { settled = true; reject(err); try { ws.terminate(); } catch { /* gone */ } return; }
        link?.closeWith(err);
      };
      ws.on('open', () => {
        ws.send(encodeEnvelope({ kind: 'hello', siteId: o.siteId, consortium: o.consortium }));
      });
      ws.on('message', (data: RawData, isBinary: boolean) => {
        if (!isBinary) { fail(new NetError('NET_ERR_PROTOCOL', 'the coordinator sent a text frame')); return; }
        let e: Envelope;
        try {
          e = decodeEnvelope(toBytes(data), o.limits);
        } catch (err) {
          if (err instanceof CodecError) { fail(new NetError(err.code as WireCode, `bad frame from the coordinator: ${err.message}`)); return; }
          throw err;
        }
        if (e.kind === 'error') { fail(new NetError(remoteCode(e.code), `the coordinator refused: ${e.message}`)); return; }
        if (link !== undefined) { link.deliver(e); return; }
        if (e.kind === 'challenge' && !challenged) {
          challenged = true;
          const sig = o.provider.ed25519Sign(o.seed, authSignedBytes(o.consortium, e.challenge, o.siteId));
          ws.send(encodeEnvelope({ kind: 'auth', signature: sig }));
          return;
        }
        if (e.kind === 'welcome' && challenged) {
          if (e.siteId !== o.siteId) { fail(new NetError('NET_ERR_PROTOCOL', `welcomed as '${e.siteId}', not '${o.siteId}'`)); return; }
          clearTimeout(timer);
          settled = true;
          link = new CoordinatorLink(ws, e.clientId);
          resolve(link);
          return;
        }
        fail(new NetError('NET_ERR_PROTOCOL', `unexpected ${e.kind} during the handshake`));
      });
      ws.on('error', (err) => {
        const code = /max payload/i.test(err.message) ? 'WIRE_ERR_OVERSIZE' : 'NET_ERR_UNREACHABLE';
        fail(new NetError(code, `connection to ${o.url} failed: ${err.message}`, { cause: err }));
      });
      ws.on('close', (code, reason) => {
        fail(new NetError('NET_ERR_CLOSED', `the coordinator closed the connection (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`));
      });
    });
  }

  /** Sends one envelope; false once the link is closed. */
  send(e: Envelope): boolean {
    if (!this.open) return false;
    this.ws.send(encodeEnvelope(e));
    return true;
  }

  /** Closes the link (no error frame: a site just leaves). */
  close(): void {
    this.closeWith(new NetError('NET_ERR_CLOSED', 'the site closed the connection'));
    this.ws.close(1000);
    setTimeout(() => this.ws.terminate(), 1000).unref();
  }

  private closeWith(err: NetError): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = err;
    this.emit('close', err);
  }
}

/**
 * Delay before reconnection attempt `attempt` (0-based): "full jitter"
 * exponential backoff, uniform in [0, min(maxMs, baseMs·2^attempt)], so that
 * sites cut off together do not all come back at the same instant.
 */
export function backoffDelay(attempt: number, baseMs = 250, maxMs = 5000, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}
