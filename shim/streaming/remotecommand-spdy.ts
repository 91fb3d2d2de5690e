// Exec and attach over SPDY/3.1 (kubelet's remotecommand/httpstream.go).
// The client opens one stream per purpose, named by its streamtype header;
// the session starts once all the expected ones exist:
//
//   error (always)  stdin  stdout  stderr  resize (tty, v3 on)
//
// Versions: channel.k8s.io (v1) and v2 have no resize stream; before v4
// the error stream carries only a failure's text; v5 over SPDY is v4 (its
// CLOSE signal is for WebSockets, SPDY has half-close). v1 also keeps two
// quirks of 1.0 kubelets: the server half-closes stdin at once and resets
// the error stream, so a v1 client learns nothing of the outcome.

import type { IncomingMessage } from 'node:http';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { SpdyStream } from './spdy';
import { upgradeToSpdy } from './httpstream';
import { REMOTECOMMAND_PROTOCOLS, versionOf, type Session } from './remotecommand';
import { pumpResizes } from './resize';
import { encodeStatus } from './status';
import type { StreamOptions } from './types';

type StreamType = 'error' | 'stdin' | 'stdout' | 'stderr' | 'resize';

export interface Timeouts {
  /** How long the client has to open its streams (kubelet: 30 s). */
  creationMs: number;
  /** How long a connection may be idle (kubelet: 4 h). */
  idleMs: number;
}

export function openSpdySession(
  req: IncomingMessage, socket: Duplex, head: Buffer, opts: StreamOptions, t: Timeouts, log: (msg: string) => void,
): Promise<Session | null> {
  return new Promise((resolve) => {
    const got: Partial<Record<StreamType, SpdyStream>> = {};
    let version = 0;
    let expected = Infinity;
    let received = 0;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;

    const up = upgradeToSpdy(req, socket, head, REMOTECOMMAND_PROTOCOLS, {
      idleTimeoutMs: t.idleMs,
      onStream: (s) => {
        const type = s.header('streamtype') ?? '';
        const known = type === 'error' || type === 'stdin' || type === 'stdout' || type === 'stderr' || (type === 'resize' && version >= 3);
        if (settled || !known) {
          // accepted and ignored, as kubelet does
          log(`unexpected stream type: ${JSON.stringify(type)}`);
          s.discardInput();
          return;
        }
        got[type as StreamType] = s;
        if (type !== 'stdin' && type !== 'resize') s.discardInput();
        // the reply goes out when this returns; the session starts after it
        if (++received === expected) queueMicrotask(start);
      },
    });
    if (!up) return resolve(null);
    const { conn } = up;
    version = versionOf(up.protocol);
    expected = 1 + Number(opts.stdin) + Number(opts.stdout) + Number(opts.stderr) + (opts.tty && version >= 3 ? 1 : 0);

    const fail = (why: string | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (why) log(why);
      conn.destroy();
      resolve(null);
    };
    timer = setTimeout(() => fail('timed out waiting for client to create streams'), t.creationMs);
    conn.on('close', () => fail(null));

    function start(): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const ac = new AbortController();
      let done = false;
      conn.on('close', () => {
        if (!done) ac.abort(new Error('the client went away'));
      });
      const resize = new EventEmitter();
      if (got.resize) pumpResizes(got.resize, resize);
      if (version === 1) {
        got.stdin?.end();
        got.error?.destroy();
      }
      const error = got.error;
      resolve({
        io: {
          stdin: opts.stdin ? got.stdin ?? null : null,
          stdout: opts.stdout ? got.stdout ?? null : null,
          stderr: opts.stderr && !opts.tty ? got.stderr ?? null : null,
          resize,
          signal: ac.signal,
        },
        writeStatus: async (st) => {
          if (!error || error.destroyed || error.writableEnded) return;
          const bytes = encodeStatus(st, version);
          if (bytes) error.write(bytes);
          error.end();
          await finished(error, { readable: false });
        },
        close: () => {
          done = true;
          conn.close();
        },
      });
    }
  });
}
