// The HTTP side of a streaming request: protocol negotiation with
// X-Stream-Protocol-Version (apimachinery's httpstream.Handshake), the
// SPDY/3.1 upgrade (spdy.NewResponseUpgrader), and plain HTTP answers on a
// socket that Node handed over for an upgrade.
//
//   POST /exec/<token> HTTP/1.1
//   Connection: Upgrade
//   Upgrade: SPDY/3.1
//   X-Stream-Protocol-Version: v4.channel.k8s.io
//   X-Stream-Protocol-Version: v3.channel.k8s.io ...
//
//   HTTP/1.1 101 Switching Protocols
//   Connection: Upgrade
//   Upgrade: SPDY/3.1
//   X-Stream-Protocol-Version: v4.channel.k8s.io
//   (SPDY frames from here on)

import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { SpdyConnection, type SpdyConnectionOptions } from './spdy';

export const HEADER_PROTOCOL_VERSION = 'X-Stream-Protocol-Version';
export const HEADER_ACCEPTED_PROTOCOL_VERSIONS = 'X-Accepted-Stream-Protocol-Versions';

export type Negotiation =
  | { ok: true; protocol: string }
  | { ok: false; status: number; message: string; headers: [string, string][] };

/** Comma-separated values of a (possibly repeated) header; Node joins repeats with ", ". */
export function headerValues(req: IncomingMessage, name: string): string[] {
  const raw = req.headers[name.toLowerCase()];
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  return list.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v.length > 0);
}

/** The first protocol the client lists that the server supports (the client's preference wins). */
export function negotiate(req: IncomingMessage, serverProtocols: readonly string[]): Negotiation {
  const client = headerValues(req, HEADER_PROTOCOL_VERSION);
  if (client.length === 0) {
    return { ok: false, status: 400, message: `unable to upgrade: ${HEADER_PROTOCOL_VERSION} is required`, headers: [] };
  }
  const protocol = client.find((p) => serverProtocols.includes(p));
  if (protocol === undefined) {
    return {
      ok: false,
      status: 403,
      message: `unable to upgrade: unable to negotiate protocol: client supports [${client.join(' ')}], server accepts [${serverProtocols.join(' ')}]`,
      headers: serverProtocols.map((p) => [HEADER_ACCEPTED_PROTOCOL_VERSIONS, p]),
    };
  }
  return { ok: true, protocol };
}

/** Connection: ...upgrade... and Upgrade: websocket (wsstream.IsWebSocketRequest). */
export function isWebSocketRequest(req: IncomingMessage): boolean {
  if (String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return false;
  return /(^|.*,\s*)upgrade($|\s*,)/.test(String(req.headers.connection ?? '').toLowerCase());
}

/** Connection and Upgrade headers asking for SPDY/3.1 (spdy.NewResponseUpgrader's check). */
export function isSpdyUpgrade(req: IncomingMessage): boolean {
  return String(req.headers.connection ?? '').toLowerCase().includes('upgrade')
    && String(req.headers.upgrade ?? '').toLowerCase().includes('spdy/3.1');
}

/** An HTTP response written straight to a socket, which is then closed (Go's http.Error, text/plain). */
export function writeHttpError(socket: Duplex, status: number, message: string, headers: [string, string][] = []): void {
  const body = `${message}\n`;
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'Content-Type: text/plain; charset=utf-8',
    'X-Content-Type-Options: nosniff',
    ...headers.map(([k, v]) => `${k}: ${v}`),
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    '',
    '',
  ];
  socket.on('error', () => undefined);
  socket.end(lines.join('\r\n') + body);
}

/**
 * Negotiates the protocol and switches the socket to SPDY/3.1; on failure
 * answers the client (400 or 403, as kubelet) and returns null.
 */
export function upgradeToSpdy(
  req: IncomingMessage, socket: Duplex, head: Buffer, serverProtocols: readonly string[], opts: SpdyConnectionOptions,
): { conn: SpdyConnection; protocol: string } | null {
  const n = negotiate(req, serverProtocols);
  if (!n.ok) {
    writeHttpError(socket, n.status, n.message, n.headers);
    return null;
  }
  if (!isSpdyUpgrade(req)) {
    writeHttpError(socket, 400, 'unable to upgrade: missing upgrade headers in request');
    return null;
  }
  socket.write([
    'HTTP/1.1 101 Switching Protocols',
    'Connection: Upgrade',
    'Upgrade: SPDY/3.1',
    `${HEADER_PROTOCOL_VERSION}: ${n.protocol}`,
    `Date: ${new Date().toUTCString()}`,
    '',
    '',
  ].join('\r\n'));
  return { conn: new SpdyConnection(socket, head, opts), protocol: n.protocol };
}
