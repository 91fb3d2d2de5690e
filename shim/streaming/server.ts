// The CRI streaming server (kubelet's pkg/kubelet/cri/streaming, as
// containerd and CRI-O embed it). The CRI Exec, Attach and PortForward RPCs
// call getExec/getAttach/getPortForward, which validate the request, keep it
// under a single-use token and answer a URL; the client (crictl, or kubelet
// on behalf of the API server) then connects here:
//
//   CRI client ──Exec RPC──▶ CRI server ──getExec()──▶ {url: http://addr/exec/<token>}
//   CRI client ──POST /exec/<token>, Upgrade: SPDY/3.1 or websocket──▶ this server
//        ──▶ token consumed (404 if unknown, used or older than a minute)
//        ──▶ streams set up (remotecommand-spdy.ts / remotecommand-ws.ts / portforward.ts)
//        ──▶ backend.exec / attach / portForward
//
// Routes: GET or POST /exec/<token>, /attach/<token>, /portforward/<token>.

import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { headerValues, isWebSocketRequest, negotiate, writeHttpError } from './httpstream';
import { PORTFORWARD_PROTOCOLS, PORTFORWARD_WS_PROTOCOLS, servePortForwardSpdy, servePortForwardWs } from './portforward';
import { REMOTECOMMAND_PROTOCOLS, runAttach, runExec, type Session } from './remotecommand';
import { openSpdySession, type Timeouts } from './remotecommand-spdy';
import { openWsSession, REMOTECOMMAND_WS_PROTOCOLS, type WsProtocol } from './remotecommand-ws';
import { RequestCache } from './request-cache';
import { validateAttach, validateExec, validatePortForward } from './requests';
import type { AttachRequest, ExecRequest, PortForwardRequest, StreamingBackend, StreamOptions } from './types';

export interface StreamingServerOptions {
  /** The address to listen on (kubelet's streaming address; containerd's default is 127.0.0.1). */
  address: string;
  /** 0: any free port. */
  port: number;
  /** Serve https with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** The URL clients reach this server at, when it differs from the listening address (kubelet's BaseURL). */
  baseUrl?: string;
  /** How long a URL stays valid (kubelet: 1 minute). */
  tokenTtlMs?: number;
  /** How long an SPDY client has to open its streams (kubelet: 30 s). */
  streamCreationTimeoutMs?: number;
  /** How long a connection may be idle before it is closed (kubelet: 4 h). */
  streamIdleTimeoutMs?: number;
  /** The token clock, for tests. */
  now?: () => number;
  /** Diagnostics (a stream protocol error, a backend failure); the server never prints. */
  log?: (msg: string) => void;
}

type Cached =
  | { kind: 'exec'; req: ExecRequest }
  | { kind: 'attach'; req: AttachRequest }
  | { kind: 'portforward'; req: PortForwardRequest };

const ROUTE = /^\/(exec|attach|portforward)\/([^/]+)$/;

function wsServer(protocols: ReadonlyMap<string, WsProtocol>): WebSocketServer {
  return new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 16 * 1024 * 1024,
    // the client's order of preference, as x/net/websocket's handshake
    handleProtocols: (offered) => [...offered].find((p) => protocols.has(p)) ?? false,
  });
}

export class StreamingServer {
  private readonly server: http.Server;
  private readonly cache: RequestCache<Cached>;
  private readonly sockets = new Set<Duplex>();
  private readonly wsRemoteCommand = wsServer(REMOTECOMMAND_WS_PROTOCOLS);
  private readonly wsPortForward = wsServer(PORTFORWARD_WS_PROTOCOLS);
  private readonly timeouts: Timeouts;
  private readonly log: (msg: string) => void;
  private base: URL | null = null;

  constructor(private readonly backend: StreamingBackend, private readonly opts: StreamingServerOptions) {
    this.cache = new RequestCache<Cached>({
      ...(opts.tokenTtlMs !== undefined ? { ttlMs: opts.tokenTtlMs } : {}),
      ...(opts.now ? { now: opts.now } : {}),
    });
    this.timeouts = { creationMs: opts.streamCreationTimeoutMs ?? 30_000, idleMs: opts.streamIdleTimeoutMs ?? 4 * 3600_000 };
    this.log = opts.log ?? (() => undefined);
    this.server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }) : http.createServer();
    this.server.on('connection', (s: Duplex) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    this.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => this.onRequest(req, res));
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.server.on('clientError', (_e, socket: Duplex) => socket.destroy());
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.address, () => {
        this.server.off('error', reject);
        const a = this.server.address() as AddressInfo;
        const host = a.family === 'IPv6' || a.address.includes(':') ? `[${a.address}]` : a.address;
        this.base = new URL(this.opts.baseUrl ?? `${this.opts.tls ? 'https' : 'http'}://${host}:${a.port}/`);
        resolve();
      });
    });
  }

  /** The server's base URL (http://127.0.0.1:PORT/); it exists once start() has resolved. */
  get url(): string {
    if (!this.base) throw new Error('Cannot build a streaming URL: the streaming server is not started');
    return this.base.toString();
  }

  getExec(req: ExecRequest): { url: string } {
    validateExec(req);
    return { url: this.urlFor('exec', { kind: 'exec', req }) };
  }

  getAttach(req: AttachRequest): { url: string } {
    validateAttach(req);
    return { url: this.urlFor('attach', { kind: 'attach', req }) };
  }

  getPortForward(req: PortForwardRequest): { url: string } {
    validatePortForward(req);
    return { url: this.urlFor('portforward', { kind: 'portforward', req }) };
  }

  /** Stops listening, drops every connection (their sessions see the abort) and forgets every token. */
  close(): Promise<void> {
    this.cache.clear();
    for (const s of this.sockets) s.destroy();
    this.wsRemoteCommand.close();
    this.wsPortForward.close();
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
    });
  }

  private urlFor(kind: Cached['kind'], entry: Cached): string {
    const base = new URL(this.url);
    const token = this.cache.insert(entry);
    const dir = base.pathname.endsWith('/') ? base.pathname : `${base.pathname}/`;
    return new URL(`${dir}${kind}/${token}`, base).toString();
  }

  /** The cached request this URL names, consumed; or why not, as an HTTP status. */
  private route(req: http.IncomingMessage): { entry: Cached } | { status: number; message: string } {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const prefix = this.base ? this.base.pathname.replace(/\/$/, '') : '';
    const m = path.startsWith(prefix) ? ROUTE.exec(path.slice(prefix.length)) : null;
    if (!m) return { status: 404, message: '404 page not found' };
    if (req.method !== 'GET' && req.method !== 'POST') return { status: 405, message: '405: Method Not Allowed' };
    const entry = this.cache.consume(m[2]!);
    if (!entry || entry.kind !== m[1]) return { status: 404, message: '404 page not found' };
    return { entry };
  }

  /** No upgrade asked for: a valid token is used up all the same, and the client told why, as kubelet does. */
  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const r = this.route(req);
    let status: number;
    let message: string;
    const headers: [string, string][] = [];
    if ('status' in r) {
      ({ status, message } = r);
    } else {
      const n = negotiate(req, r.entry.kind === 'portforward' ? PORTFORWARD_PROTOCOLS : REMOTECOMMAND_PROTOCOLS);
      if (n.ok) {
        status = 400;
        message = 'unable to upgrade: missing upgrade headers in request';
      } else {
        ({ status, message } = n);
        headers.push(...n.headers);
      }
    }
    res.statusCode = status;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    for (const [k, v] of headers) res.appendHeader(k, v);
    res.end(`${message}\n`);
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => undefined);
    const r = this.route(req);
    if ('status' in r) return writeHttpError(socket, r.status, r.message);
    const { entry } = r;
    const ws = isWebSocketRequest(req);
    if (ws) {
      const table = entry.kind === 'portforward' ? PORTFORWARD_WS_PROTOCOLS : REMOTECOMMAND_WS_PROTOCOLS;
      const offered = headerValues(req, 'sec-websocket-protocol');
      if (offered.length > 0 && !offered.some((p) => table.has(p))) {
        return writeHttpError(socket, 403, `requested protocol(s) are not supported: [${offered.join(' ')}]; supports [${[...table.keys()].join(' ')}]`);
      }
    }
    switch (entry.kind) {
      case 'exec':
      case 'attach': {
        const q = entry.req;
        const opts: StreamOptions = { stdin: q.stdin, stdout: q.stdout, stderr: q.stderr, tty: q.tty };
        const open = ws
          ? openWsSession(this.wsRemoteCommand, req, socket, head, opts, this.timeouts)
          : openSpdySession(req, socket, head, opts, this.timeouts, this.log);
        void open.then((s: Session | null) => {
          if (!s) return;
          return entry.kind === 'exec'
            ? runExec(s, this.backend, q.container_id, entry.req.cmd, opts)
            : runAttach(s, this.backend, q.container_id, opts);
        }).catch((e: unknown) => this.log(`${entry.kind} ${q.container_id}: ${e instanceof Error ? e.message : String(e)}`));
        return;
      }
      case 'portforward': {
        const q = entry.req;
        if (ws) {
          void servePortForwardWs(this.wsPortForward, req, socket, head, this.backend, q.pod_sandbox_id, q.port ?? [], this.timeouts)
            .catch((e: unknown) => this.log(`portforward ${q.pod_sandbox_id}: ${e instanceof Error ? e.message : String(e)}`));
        } else {
          servePortForwardSpdy(req, socket, head, this.backend, q.pod_sandbox_id, this.timeouts, this.log);
        }
        return;
      }
    }
  }
}
