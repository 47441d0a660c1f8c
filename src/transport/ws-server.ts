/**
 * The coordinator's side of the network: a WebSocket listener (`ws`, over TLS
 * unless the caller explicitly asked for plain loopback) that authenticates
 * each site against the consortium roster and then hands its frames to the
 * coordinator as decoded envelopes (protocols/wire-v1/spec.md).
 *
 * Handshake (spec §4): the site sends `hello` (its roster id and the hash of
 * the consortium configuration it holds); the listener answers with a fresh
 * 32-byte `challenge`; the site signs `authSignedBytes(consortium, challenge,
 * siteId)` with its roster Ed25519 key and sends `auth`; the listener checks
 * the signature against the roster key and sends `welcome`. A challenge is
 * drawn per connection and used once, so an answer recorded on one
 * connection is worthless on any other (replay). Unknown sites, a wrong
 * consortium hash, a bad signature and a second connection for a site that is
 * already connected are refused with an `error` frame naming a NET_ERR_* code,
 * then the connection is closed.
 *
 * Limits, all enforced before a frame is parsed: `maxPayload` (the largest
 * frame any kind may have in this consortium, refused by `ws` while reading),
 * the per-kind bound of the envelope decoder, a connection rate per remote
 * address (refused at the HTTP upgrade with 429), a handshake deadline, and
 * an idle deadline (ping every half of it; a peer that answered none is
 * closed). A peer that sends a bad frame is sent an `error` and disconnected;
 * the listener never throws on peer input.
 */
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { equalBytes } from '../crypto/_validate.js';
import type { CryptoProvider } from '../crypto/types.js';
import { CodecError, NetError, type TallyCode } from '../errors.js';
import { authSignedBytes, clipText, decodeEnvelope, encodeEnvelope, maxFrameBytes, type Envelope, type EnvelopeLimits } from './envelope.js';

/** A roster entry as the listener needs it. */
export interface KnownSite {
  readonly id: string;
  readonly clientId: number;
  readonly publicKey: Uint8Array;
}

export interface TlsServerMaterial {
  readonly cert: Buffer | string;
  readonly key: Buffer | string;
  /** The consortium CA; with `clientCertificates` a site must present a certificate it signed, whose CN is the site id. */
  readonly ca?: Buffer | string;
  readonly clientCertificates?: boolean;
}

export interface SiteListenerEvents {
  /** A site completed the handshake. */
  authenticated?(site: SiteConnection): void;
  /** An authenticated site sent a frame (never a handshake frame) of `bytes` bytes. */
  frame?(site: SiteConnection, e: Envelope, bytes: number): void;
  /** An authenticated site's connection closed (`code` says why when the listener closed it). */
  closed?(site: SiteConnection, code: TallyCode | undefined): void;
  /** A connection was refused or failed before or after authentication (for logs; never throws). */
  refused?(e: { readonly remote: string; readonly site: string | undefined; readonly code: TallyCode; readonly message: string }): void;
}

export interface SiteListenerOptions {
  readonly host: string;
  /** 0 picks a free port (see {@link SiteListener.port}). */
  readonly port: number;
  /** TLS material; without it the listener speaks plain WebSocket (loopback trials only; the CLI enforces that). */
  readonly tls?: TlsServerMaterial;
  readonly consortium: Uint8Array;
  readonly sites: readonly KnownSite[];
  readonly limits: EnvelopeLimits;
  readonly handshakeMs: number;
  readonly idleMs: number;
  readonly connectionsPerMinutePerIp: number;
  readonly provider: CryptoProvider;
  readonly events: SiteListenerEvents;
}

/** WebSocket close codes (RFC 6455 §7.4.1). */
const WS_POLICY = 1008;
const WS_TOO_BIG = 1009;
const WS_GOING_AWAY = 1001;

/** An authenticated site's connection. */
export class SiteConnection {
  private closedWith: TallyCode | undefined;
  private isOpen = true;
  /** @internal */
  constructor(readonly site: KnownSite, readonly remote: string, private readonly ws: WebSocket) {}

  get siteId(): string { return this.site.id; }
  get clientId(): number { return this.site.clientId; }
  get open(): boolean { return this.isOpen; }
  /** Why the listener closed it, when it did. */
  get closeCode(): TallyCode | undefined { return this.closedWith; }

  /** Sends one envelope; returns its size in bytes, or 0 (nothing sent) once the connection is closed. */
  send(e: Envelope): number {
    return this.isOpen ? this.sendEncoded(encodeEnvelope(e)) : 0;
  }

  /** Sends an envelope already encoded (a broadcast encodes once); returns its size, or 0 once closed. */
  sendEncoded(frame: Uint8Array): number {
    if (!this.isOpen) return 0;
    this.ws.send(frame);
    return frame.length;
  }

  /** Closes without an `error` frame (the answer to the peer's own `error`, spec §4). */
  close(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.ws.close(1000);
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  /** Sends an `error` frame naming `code`, then closes the connection. */
  fail(code: TallyCode, message: string): void {
    if (!this.isOpen) return;
    this.closedWith = code;
    sendErrorAndClose(this.ws, code, message);
    this.isOpen = false;
  }

  /** @internal */
  markClosed(): void { this.isOpen = false; }
}

function sendErrorAndClose(ws: WebSocket, code: TallyCode, message: string, wsCode = WS_POLICY): void {
  try {
    ws.send(encodeEnvelope({ kind: 'error', code, message: clipText(message) }));
  } catch { /* the socket may already be gone */ }
  ws.close(wsCode, code);
  // A peer that never completes the closing handshake is cut off.
  setTimeout(() => ws.terminate(), 2000).unref();
}

/** Remote address of a request, for logs and the rate limit. */
function remoteOf(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

/**
 * A sliding one-minute window of connection attempts per remote address.
 * Memory is bounded: entries older than a minute are swept on every call.
 */
class RateLimiter {
  private readonly hits = new Map<string, number[]>();
  constructor(private readonly perMinute: number) {}
  allow(remote: string, now = Date.now()): boolean {
    if (this.hits.size > 10_000) this.sweep(now);
    const list = (this.hits.get(remote) ?? []).filter((t) => now - t < 60_000);
    const ok = list.length < this.perMinute;
    if (ok) list.push(now);
    this.hits.set(remote, list);
    return ok;
  }
  private sweep(now: number): void {
    for (const [k, v] of this.hits) if (v.every((t) => now - t >= 60_000)) this.hits.delete(k);
  }
}

/** The coordinator's WebSocket listener. */
export class SiteListener {
  private readonly byId = new Map<string, KnownSite>();
  private readonly live = new Map<string, SiteConnection>();
  private readonly sockets = new Set<WebSocket>();
  private readonly rate: RateLimiter;
  private closing = false;

  private constructor(private readonly o: SiteListenerOptions, private readonly http: HttpServer, private readonly wss: WebSocketServer) {
    for (const s of o.sites) this.byId.set(s.id, s);
    this.rate = new RateLimiter(o.connectionsPerMinutePerIp);
  }

  /** Starts listening. @throws NetError NET_ERR_TLS on unusable TLS material; the socket error when the address is taken */
  static async listen(o: SiteListenerOptions): Promise<SiteListener> {
    let http: HttpServer;
    try {
      http = o.tls === undefined
        ? createHttpServer()
        : createHttpsServer({
          cert: o.tls.cert, key: o.tls.key, ...(o.tls.ca !== undefined ? { ca: o.tls.ca } : {}),
          requestCert: o.tls.clientCertificates === true, rejectUnauthorized: o.tls.clientCertificates === true,
          minVersion: 'TLSv1.2',
        });
    } catch (err) {
      throw new NetError('NET_ERR_TLS', `the coordinator's TLS material is unusable: ${(err as Error).message}`, { cause: err });
    }
    // One consortium-wide bound on a frame; the per-kind bound is the envelope decoder's.
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: maxFrameBytes(o.limits), clientTracking: false });
    const l = new SiteListener(o, http, wss);
    http.on('upgrade', (req, socket, head) => l.upgrade(req, socket, head));
    http.on('request', (_req, res) => { res.writeHead(426, { 'content-type': 'text/plain' }).end('tally: WebSocket only\n'); });
    http.on('clientError', (_err, socket) => socket.destroy());
    http.on('tlsClientError', () => { /* a failed TLS handshake: nothing to answer */ });
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(o.port, o.host, () => { http.off('error', reject); resolve(); });
    });
    return l;
  }

  /** The port the listener is bound to. */
  get port(): number {
    const a = this.http.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  }

  /** Authenticated sites connected now. */
  connected(): SiteConnection[] {
    return [...this.live.values()].filter((c) => c.open);
  }

  /** The connection of a site, if it is connected. */
  connection(siteId: string): SiteConnection | undefined {
    const c = this.live.get(siteId);
    return c?.open === true ? c : undefined;
  }

  /** Closes every connection (an `error` frame with NET_ERR_SHUTDOWN first) and stops listening. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const ws of this.sockets) sendErrorAndClose(ws, 'NET_ERR_SHUTDOWN', 'the coordinator is shutting down', WS_GOING_AWAY);
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections?.();
      setTimeout(() => { for (const ws of this.sockets) ws.terminate(); }, 500).unref();
    });
    this.wss.close();
  }

  private refuse(remote: string, site: string | undefined, code: TallyCode, message: string): void {
    this.o.events.refused?.({ remote, site, code, message });
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const remote = remoteOf(req);
    if (this.closing) { socket.destroy(); return; }
    if (!this.rate.allow(remote)) {
      this.refuse(remote, undefined, 'NET_ERR_RATE_LIMITED', 'too many connections from this address in the last minute');
      socket.end('HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.handshake(ws, req, remote));
  }

  private handshake(ws: WebSocket, req: IncomingMessage, remote: string): void {
    this.sockets.add(ws);
    let state: 'hello' | 'auth' | 'open' = 'hello';
    let claimed: KnownSite | undefined;
    let challenge: Uint8Array | undefined;
    let conn: SiteConnection | undefined;
    let lastPong = Date.now();

    const fail = (code: TallyCode, message: string, wsCode?: number): void => {
      this.refuse(remote, claimed?.id, code, message);
      if (conn !== undefined) conn.fail(code, message);
      else sendErrorAndClose(ws, code, message, wsCode);
    };
    const handshakeTimer = setTimeout(() => fail('NET_ERR_HANDSHAKE_TIMEOUT', `no authentication within ${this.o.handshakeMs} ms`), this.o.handshakeMs);
    handshakeTimer.unref();
    // Idle: ping every half period; a peer that answered no ping in a whole period is cut off.
    const idle = setInterval(() => {
      if (Date.now() - lastPong > this.o.idleMs) { clearInterval(idle); fail('NET_ERR_IDLE_TIMEOUT', `no answer to pings for ${this.o.idleMs} ms`); return; }
      try { ws.ping(); } catch { /* closing */ }
    }, Math.max(50, Math.floor(this.o.idleMs / 2)));
    idle.unref();
    ws.on('pong', () => { lastPong = Date.now(); });

    ws.on('message', (data: RawData, isBinary: boolean) => {
      lastPong = Date.now(); // any frame shows the peer is alive
      if (!isBinary) { fail('NET_ERR_PROTOCOL', 'text frames are not part of wire-v1'); return; }
      const bytes = toBytes(data);
      let e: Envelope;
      try {
        e = decodeEnvelope(bytes, this.o.limits);
      } catch (err) {
        if (err instanceof CodecError) { fail(err.code, `bad frame: ${err.message}`); return; }
        throw err;
      }
      if (state === 'open') { this.o.events.frame?.(conn!, e, bytes.length); return; }
      if (state === 'hello') {
        if (e.kind !== 'hello') { fail('NET_ERR_PROTOCOL', `expected hello, got ${e.kind}`); return; }
        claimed = this.byId.get(e.siteId);
        if (claimed === undefined) { fail('NET_ERR_UNKNOWN_SITE', `site '${e.siteId}' is not in the roster`); return; }
        if (!equalBytes(e.consortium, this.o.consortium)) { fail('NET_ERR_CONFIG_MISMATCH', 'the site holds a different consortium configuration (its hash differs)'); return; }
        // With client certificates, the certificate's CN must be the claimed site.
        if (this.o.tls?.clientCertificates === true) {
          const cn = (req.socket as TLSSocket).getPeerCertificate?.()?.subject?.CN;
          if (cn !== claimed.id) { fail('NET_ERR_AUTH_FAILED', `the client certificate names '${String(cn)}', not '${claimed.id}'`); return; }
        }
        challenge = randomBytes(32);
        state = 'auth';
        ws.send(encodeEnvelope({ kind: 'challenge', challenge }));
        return;
      }
      // state === 'auth'
      if (e.kind !== 'auth') { fail('NET_ERR_PROTOCOL', `expected auth, got ${e.kind}`); return; }
      const site = claimed!;
      const signed = authSignedBytes(this.o.consortium, challenge!, site.id);
      challenge = undefined; // used once
      let ok = false;
      try { ok = this.o.provider.ed25519Verify(site.publicKey, signed, e.signature); } catch { ok = false; }
      if (!ok) { fail('NET_ERR_AUTH_FAILED', `the signature does not verify under the roster key of '${site.id}'`); return; }
      if (this.connection(site.id) !== undefined) {
        fail('NET_ERR_DUPLICATE_CONNECTION', `site '${site.id}' is already connected`);
        return;
      }
      clearTimeout(handshakeTimer);
      state = 'open';
      conn = new SiteConnection(site, remote, ws);
      this.live.set(site.id, conn);
      ws.send(encodeEnvelope({ kind: 'welcome', siteId: site.id, clientId: site.clientId }));
      this.o.events.authenticated?.(conn);
    });

    ws.on('error', (err) => {
      const code: TallyCode = /max payload/i.test(err.message) ? 'WIRE_ERR_OVERSIZE' : 'NET_ERR_CLOSED';
      this.refuse(remote, claimed?.id, code, err.message);
      if (code === 'WIRE_ERR_OVERSIZE') { conn?.markClosed(); ws.close(WS_TOO_BIG); }
    });
    ws.on('close', () => {
      clearTimeout(handshakeTimer);
      clearInterval(idle);
      this.sockets.delete(ws);
      if (conn !== undefined) {
        conn.markClosed();
        if (this.live.get(conn.siteId) === conn) this.live.delete(conn.siteId);
        this.o.events.closed?.(conn, conn.closeCode);
      }
    });
  }
}

/** A `ws` message as one Uint8Array (the driver takes ownership of it). */
export function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}
