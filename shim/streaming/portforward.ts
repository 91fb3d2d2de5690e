// Port forwarding (kubelet's portforward/httpstream.go and websocket.go).
//
// SPDY (portforward.k8s.io): one connection carries any number of forwarded
// connections; each is a pair of client-opened streams with the same
// requestid header, one `streamtype: error`, one `streamtype: data`, both
// with the `port`. A stream without a valid port or type is reset. When a
// pair is complete the backend gets the data stream; a failure is written
// as text on the error stream; both are half-closed when it is done.
//
// WebSocket (v4.channel.k8s.io, v4.base64.channel.k8s.io, or none): one
// forwarded connection per port of the request, channels 2i (data) and
// 2i+1 (error); the server first writes the port, little-endian 16 bits,
// on both. The connection closes when every port's forwarding is done.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import { upgradeToSpdy, writeHttpError } from './httpstream';
import type { SpdyStream } from './spdy';
import type { Timeouts } from './remotecommand-spdy';
import { acceptWebSocket, type WsProtocol } from './remotecommand-ws';
import type { StreamingBackend } from './types';
import { WsChannels, type ChannelType } from './wsstream';

export const PORTFORWARD_PROTOCOLS = ['portforward.k8s.io'] as const;

export const PORTFORWARD_WS_PROTOCOLS: ReadonlyMap<string, WsProtocol> = new Map([
  ['v4.channel.k8s.io', { base64: false, version: 4 }],
  ['v4.base64.channel.k8s.io', { base64: true, version: 4 }],
]);

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A port as Go's strconv.ParseUint(s, 10, 16) reads it, and > 0; null if not one. */
export function parsePort(s: string | undefined): number | null {
  if (s === undefined || !/^\d+$/.test(s)) return null;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : null;
}

interface Pair {
  requestId: string;
  data?: SpdyStream;
  error?: SpdyStream;
  timer: NodeJS.Timeout;
}

export function servePortForwardSpdy(
  req: IncomingMessage, socket: Duplex, head: Buffer, backend: StreamingBackend, podId: string, t: Timeouts, log: (msg: string) => void,
): void {
  const pairs = new Map<string, Pair>();
  const printError = (p: Pair, msg: string): void => {
    log(msg);
    if (p.error && !p.error.writableEnded) p.error.write(msg);
  };
  const forward = async (p: Pair): Promise<void> => {
    const data = p.data!;
    const error = p.error!;
    const port = parsePort(data.header('port'))!;
    try {
      await backend.portForward(podId, port, data);
    } catch (e) {
      printError(p, `error forwarding port ${port} to pod ${podId}: ${messageOf(e)}`);
    } finally {
      if (!data.writableEnded) data.end();
      if (!error.writableEnded) error.end();
    }
  };

  const up = upgradeToSpdy(req, socket, head, PORTFORWARD_PROTOCOLS, {
    idleTimeoutMs: t.idleMs,
    onStream: (s) => {
      if (parsePort(s.header('port')) === null) {
        log(`port-forward stream ${s.id}: "port" header ${JSON.stringify(s.header('port') ?? '')} is not a port`);
        return false;
      }
      const type = s.header('streamtype');
      if (type !== 'error' && type !== 'data') {
        log(`port-forward stream ${s.id}: invalid stream type ${JSON.stringify(type ?? '')}`);
        return false;
      }
      // clients before request ids: the error stream comes first, then data, on consecutive odd ids
      const requestId = s.header('requestid') ?? String(type === 'error' ? s.id : s.id - 2);
      let p = pairs.get(requestId);
      if (!p) {
        const pair: Pair = {
          requestId,
          timer: setTimeout(() => {
            printError(pair, `(request=${requestId}) timed out waiting for streams`);
            pairs.delete(requestId);
            pair.data?.destroy();
            if (pair.error && !pair.error.writableEnded) pair.error.end();
          }, t.creationMs),
        };
        p = pair;
        pairs.set(requestId, p);
      }
      if (p[type]) {
        // accepted, then told off on the pair's error stream, as kubelet does
        queueMicrotask(() => printError(p!, `error processing stream for request ${requestId}: ${type} stream already assigned`));
        s.discardInput();
        return;
      }
      p[type] = s;
      if (type === 'error') s.discardInput();
      if (p.data && p.error) {
        clearTimeout(p.timer);
        pairs.delete(requestId);
        const complete = p;
        queueMicrotask(() => void forward(complete));
      }
    },
  });
  if (!up) return;
  up.conn.on('close', () => {
    for (const p of pairs.values()) clearTimeout(p.timer);
    pairs.clear();
  });
}

export async function servePortForwardWs(
  wss: WebSocketServer, req: IncomingMessage, socket: Duplex, head: Buffer, backend: StreamingBackend, podId: string, requestPorts: readonly number[], t: Timeouts,
): Promise<void> {
  let ports = [...requestPorts];
  if (ports.length === 0) {
    // no ports in the CRI request: the query's, as kubelet's own port-forward endpoint takes them (?port=80,443&port=8080)
    const url = new URL(req.url ?? '/', 'http://localhost');
    const raw = url.searchParams.getAll('port').flatMap((v) => v.split(','));
    const parsed = raw.map((v) => parsePort(v));
    if (parsed.length === 0 || parsed.some((p) => p === null)) {
      writeHttpError(socket, 400, parsed.length === 0 ? 'query parameter "port" is required' : `unable to parse ${JSON.stringify(raw.join(','))} as ports`);
      return;
    }
    ports = parsed as number[];
  }
  const ws = await acceptWebSocket(wss, req, socket, head, t.idleMs);
  if (!ws) return;
  const proto = PORTFORWARD_WS_PROTOCOLS.get(ws.protocol) ?? { base64: false, version: 4 };
  const types: ChannelType[] = ports.flatMap((): ChannelType[] => ['readwrite', 'write']);
  const conn = new WsChannels(ws, types, { base64: proto.base64, closeSignal: false });
  await Promise.all(ports.map(async (port, i) => {
    const data = conn.channels[2 * i]!;
    const error = conn.channels[2 * i + 1]!;
    const portBytes = Buffer.alloc(2);
    portBytes.writeUInt16LE(port);
    data.write(portBytes);
    error.write(portBytes);
    try {
      await backend.portForward(podId, port, data);
    } catch (e) {
      await new Promise<void>((resolve) => error.write(`error forwarding port ${port} to pod ${podId}: ${messageOf(e)}`, () => resolve()));
    }
  }));
  conn.close();
}
