// kubectl exec, attach and port-forward: an upgraded connection (SPDY or
// WebSocket, whichever kubectl offers) to pods/NAME/exec|attach|portforward.
// As the API server does with kubelet, we ask the node for the CRI
// streaming URL and pass the connection on: the same request line and
// upgrade headers to that URL, then bytes both ways. The CRI streaming
// server (shim/streaming) answers the upgrade and speaks the protocol.

import * as net from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

/** Headers that belong to this hop, or carry our client's credentials: not passed on. */
const HOP = new Set(['host', 'authorization', 'proxy-authorization', 'content-length']);

/** Opens `url` and hands it the client's upgrade request; pipes the two until either side closes. */
export function proxyUpgrade(req: IncomingMessage, client: Duplex, head: Buffer, url: string, onError: (e: Error) => void): void {
  const u = new URL(url);
  const upstream = net.connect(Number(u.port || (u.protocol === 'https:' ? 443 : 80)), u.hostname);
  // On an error both go at once; otherwise a side that ends is ended on the other gracefully:
  // destroying the client's TLS socket when the node's side closed dropped the last frames
  // still queued for kubectl (the end of an exec's output, its exit status).
  const close = (): void => {
    client.destroy();
    upstream.destroy();
  };
  upstream.on('error', (e) => {
    onError(e);
    close();
  });
  client.on('error', close);
  upstream.on('connect', () => {
    const lines = [`${req.method ?? 'GET'} ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i] as string;
      if (!HOP.has(name.toLowerCase())) lines.push(`${name}: ${req.rawHeaders[i + 1] as string}`);
    }
    upstream.write(lines.join('\r\n') + '\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  });
  upstream.on('close', () => {
    if (client.writableEnded || client.destroyed) return;
    client.end(); // what is queued goes out first
    setTimeout(() => client.destroy(), 10000).unref(); // a client that never closes its side
  });
  client.on('close', () => upstream.destroy()); // nobody left to read what the node sends
}
