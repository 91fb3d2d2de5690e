// The attach protocol between a CLI (run, start -a, attach) and a
// container's monitor, over the monitor's unix socket. Frames, both ways:
//
//   [type: u8][length: u32 big-endian][payload]
//
// client → monitor: HELLO {stdin}, STDIN bytes, STDIN_EOF, RESIZE {rows, cols}
// monitor → client: READY (HELLO taken), STDOUT bytes, STDERR bytes, EXIT {exitCode, error?}
//
// Docker's attach stream has the same idea (an 8-byte header per frame);
// ours adds the control frames so one socket carries all of it.

import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import type { Readable, Writable } from 'node:stream';

export const F = {
  HELLO: 0,
  STDIN: 1,
  STDIN_EOF: 2,
  RESIZE: 3,
  /** Open the log file anew (it was renamed away: CRI ReopenContainerLog); answered by LOG_REOPENED. */
  REOPEN_LOG: 4,
  STDOUT: 11,
  STDERR: 12,
  EXIT: 13,
  /** A --debug trace line of the monitor's (a syscall, a cgroup write, with why). */
  DEBUG: 14,
  /** REOPEN_LOG done: empty, or the error. */
  LOG_REOPENED: 15,
  /** HELLO taken: from now on this client gets the output (a start that waited for us may go). */
  READY: 16,
} as const;

export interface Hello {
  /** Forward our stdin to the container. */
  stdin: boolean;
}

export interface ExitInfo {
  exitCode: number;
  error?: string;
}

export function frame(type: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = Buffer.alloc(5);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Splits a byte stream into frames. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (type: number, payload: Buffer) => void) {}

  /** Bytes of a frame not yet whole. */
  get partial(): number {
    return this.buf.length;
  }

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 5) {
      const len = this.buf.readUInt32BE(1);
      if (this.buf.length < 5 + len) break;
      const type = this.buf.readUInt8(0);
      const payload = this.buf.subarray(5, 5 + len);
      this.buf = this.buf.subarray(5 + len);
      this.onFrame(type, payload);
    }
  }
}

/** A client's ends: where output goes, what feeds stdin, terminal sizes to pass on. */
export interface AttachStreams {
  socket: string;
  /** Run once our HELLO is sent: the start of a container that waited for us (run, start -a). Its failure ends the attach with that error. */
  begin?: (() => Promise<void>) | undefined;
  /** Bytes for the container's stdin; null: none. */
  stdin: Readable | null;
  /** Tell the monitor when `stdin` ends: it closes the container's stdin. */
  stdinEof: boolean;
  stdout: Writable | null;
  stderr: Writable | null;
  /** Emits 'resize' ({rows, cols}) for the container's terminal. */
  resize?: EventEmitter | undefined;
  /** Sent once connected. */
  initialSize?: { rows: number; cols: number } | undefined;
  onDebug?: ((line: string) => void) | undefined;
  /** Aborting ends the attach (the container goes on). */
  signal?: AbortSignal | undefined;
}

/**
 * The client side of the protocol, on any streams: the CLI's own stdio
 * (attach below) and the CRI's Attach (a streaming server's streams).
 * Resolves with the exit status, or null when the socket closed without one
 * (detached, aborted, or the monitor died).
 */
export function attachStreams(o: AttachStreams): Promise<ExitInfo | null> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(o.socket);
    let exit: ExitInfo | null = null;
    const cleanups: (() => void)[] = [];
    const done = (): void => {
      for (const c of cleanups.splice(0)) c();
      if (failure !== null) reject(failure);
      else resolve(exit);
    };
    let failure: unknown = null;
    let begun = false;
    sock.once('error', (e) => {
      for (const c of cleanups.splice(0)) c();
      reject(e);
    });
    if (o.signal) {
      const abort = (): void => void sock.destroy();
      o.signal.addEventListener('abort', abort);
      cleanups.push(() => o.signal?.removeEventListener('abort', abort));
    }
    sock.on('connect', () => {
      sock.write(frame(F.HELLO, JSON.stringify({ stdin: o.stdin !== null } satisfies Hello)));
      const resize = (s: { rows: number; cols: number }): void => {
        if (!sock.destroyed) sock.write(frame(F.RESIZE, JSON.stringify({ rows: s.rows, cols: s.cols })));
      };
      if (o.initialSize) resize(o.initialSize);
      if (o.resize) {
        o.resize.on('resize', resize);
        cleanups.push(() => o.resize?.off('resize', resize));
      }
      const input = o.stdin;
      if (input) {
        const onData = (d: Buffer): void => {
          if (!sock.destroyed) sock.write(frame(F.STDIN, d));
        };
        const onEnd = (): void => {
          if (o.stdinEof && !sock.destroyed) sock.write(frame(F.STDIN_EOF));
        };
        input.on('data', onData);
        input.on('end', onEnd);
        cleanups.push(() => {
          input.off('data', onData);
          input.off('end', onEnd);
        });
      }
    });
    const reader = new FrameReader((type, payload) => {
      if (type === F.STDOUT) o.stdout?.write(payload);
      else if (type === F.STDERR) o.stderr?.write(payload);
      else if (type === F.EXIT) exit = JSON.parse(payload.toString()) as ExitInfo;
      else if (type === F.DEBUG) o.onDebug?.(payload.toString());
      else if (type === F.READY && o.begin && !begun) {
        // only now does the monitor send us output: a container started earlier could print before we are counted
        begun = true;
        o.begin().catch((e: unknown) => {
          failure = e;
          sock.destroy();
        });
      }
    });
    sock.on('data', (d: Buffer) => reader.push(d));
    sock.on('close', done);
  });
}

export interface AttachOptions {
  socket: string;
  stdin: boolean;
  begin?: (() => Promise<void>) | undefined;
  tty: boolean;
}

/**
 * The CLI's attach: the container's output to ours and our stdin to it;
 * with a tty, raw mode and window size. Resolves as attachStreams does.
 */
export async function attach(opts: AttachOptions): Promise<ExitInfo | null> {
  const terminal = opts.tty && process.stdout.isTTY;
  const size = (): { rows: number; cols: number } => ({ rows: process.stdout.rows, cols: process.stdout.columns });
  const resize = new EventEmitter();
  const onWinch = (): void => void resize.emit('resize', size());
  if (terminal) process.on('SIGWINCH', onWinch);
  const raw = opts.stdin && opts.tty && process.stdin.isTTY;
  if (raw) process.stdin.setRawMode(true);
  try {
    return await attachStreams({
      socket: opts.socket, begin: opts.begin, stdin: opts.stdin ? process.stdin : null, stdinEof: true,
      stdout: process.stdout, stderr: process.stderr,
      resize: terminal ? resize : undefined, initialSize: terminal ? size() : undefined,
      onDebug: (line) => process.stderr.write(`debug: ${line}\n`),
    });
  } finally {
    if (terminal) process.off('SIGWINCH', onWinch);
    if (raw) process.stdin.setRawMode(false);
    if (opts.stdin) process.stdin.pause();
  }
}
