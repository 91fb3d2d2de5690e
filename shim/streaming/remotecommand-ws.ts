// Exec and attach over a WebSocket (kubelet's remotecommand/websocket.go,
// plus v5.channel.k8s.io, which kubelet leaves to the API server's
// translator). Five channels: 0 stdin, 1 stdout, 2 stderr, 3 error,
// 4 resize. The subprotocol comes from Sec-WebSocket-Protocol:
//
//   v5.channel.k8s.io           binary, v4 status, CLOSE signal [255, n]
//   v4.channel.k8s.io           binary, v4 status (JSON, with the exit code)
//   v4.base64.channel.k8s.io    base64 text, v4 status
//   channel.k8s.io, or none     binary, status as text on failure only
//   base64.channel.k8s.io       base64 text, likewise

import type { IncomingMessage } from 'node:http';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Session } from './remotecommand';
import type { Timeouts } from './remotecommand-spdy';
import { pumpResizes } from './resize';
import { encodeStatus } from './status';
import type { StreamOptions } from './types';
import { WsChannels, type ChannelType } from './wsstream';

export interface WsProtocol { base64: boolean; version: number }

export const REMOTECOMMAND_WS_PROTOCOLS: ReadonlyMap<string, WsProtocol> = new Map([
  ['v5.channel.k8s.io', { base64: false, version: 5 }],
  ['v4.channel.k8s.io', { base64: false, version: 4 }],
  ['v4.base64.channel.k8s.io', { base64: true, version: 4 }],
  ['channel.k8s.io', { base64: false, version: 1 }],
  ['base64.channel.k8s.io', { base64: true, version: 1 }],
]);

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const RESIZE = 4;

/** Completes the WebSocket handshake; null if it failed (the client has been answered). */
export function acceptWebSocket(wss: WebSocketServer, req: IncomingMessage, socket: Duplex, head: Buffer, idleMs: number): Promise<WebSocket | null> {
  return new Promise((resolve) => {
    let opened = false;
    socket.once('close', () => {
      if (!opened) resolve(null);
    });
    wss.handleUpgrade(req, socket, head, (ws) => {
      opened = true;
      const s = socket as Duplex & { setTimeout?: (ms: number, cb: () => void) => void };
      if (idleMs > 0 && typeof s.setTimeout === 'function') s.setTimeout(idleMs, () => ws.terminate());
      resolve(ws);
    });
  });
}

export async function openWsSession(
  wss: WebSocketServer, req: IncomingMessage, socket: Duplex, head: Buffer, opts: StreamOptions, t: Timeouts,
): Promise<Session | null> {
  const ws = await acceptWebSocket(wss, req, socket, head, t.idleMs);
  if (!ws) return null;
  const proto = REMOTECOMMAND_WS_PROTOCOLS.get(ws.protocol) ?? { base64: false, version: 1 };
  const types: ChannelType[] = [
    opts.stdin ? 'read' : 'ignore',
    opts.stdout ? 'write' : 'ignore',
    opts.stderr ? 'write' : 'ignore',
    'write',
    'read',
  ];
  const conn = new WsChannels(ws, types, { base64: proto.base64, closeSignal: proto.version >= 5 });
  const ch = conn.channels;
  // an empty message on the lowest writable channel tells the client the connection is established
  const hello = opts.stdout ? STDOUT : opts.stderr ? STDERR : ERROR;
  conn.send(hello, Buffer.alloc(0), () => undefined);

  const ac = new AbortController();
  let done = false;
  ws.on('close', () => {
    if (!done) ac.abort(new Error('the client went away'));
  });
  const resize = new EventEmitter();
  pumpResizes(ch[RESIZE]!, resize);
  return {
    io: {
      stdin: opts.stdin ? ch[STDIN]! : null,
      stdout: opts.stdout ? ch[STDOUT]! : null,
      stderr: opts.stderr && !opts.tty ? ch[STDERR]! : null,
      resize,
      signal: ac.signal,
    },
    writeStatus: (st) => new Promise<void>((resolve) => {
      const bytes = encodeStatus(st, proto.version);
      if (!bytes) return resolve();
      conn.send(ERROR, bytes, () => resolve());
    }),
    close: () => {
      done = true;
      conn.close();
    },
  };
}
