// The attach protocol between a CLI (run, start -a, attach) and a
// container's monitor, over the monitor's unix socket. Frames, both ways:
//
//   [type: u8][length: u32 big-endian][payload]
//
// client → monitor: HELLO {stdin, start}, STDIN bytes, STDIN_EOF, RESIZE {rows, cols}
// monitor → client: STDOUT bytes, STDERR bytes, EXIT {exitCode, error?}
//
// Docker's attach stream has the same idea (an 8-byte header per frame);
// ours adds the control frames so one socket carries all of it.

import * as net from 'node:net';

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
} as const;

export interface Hello {
  /** Forward our stdin to the container. */
  stdin: boolean;
  /** The monitor waits for this before `start` (run and start -a attach first, so no output is lost). */
  start: boolean;
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

export interface AttachOptions {
  socket: string;
  stdin: boolean;
  start: boolean;
  tty: boolean;
}

/**
 * The client side: copies the container's output to ours and our stdin to
 * it; with a tty, raw mode and window size. Resolves with the exit status,
 * or null when the socket closed without one (detached, or the monitor died).
 */
export function attach(opts: AttachOptions): Promise<ExitInfo | null> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(opts.socket);
    let exit: ExitInfo | null = null;
    const cleanups: (() => void)[] = [];
    const done = (): void => {
      for (const c of cleanups.splice(0)) c();
      resolve(exit);
    };
    sock.once('error', (e) => {
      for (const c of cleanups.splice(0)) c();
      reject(e);
    });
    sock.on('connect', () => {
      sock.write(frame(F.HELLO, JSON.stringify({ stdin: opts.stdin, start: opts.start } satisfies Hello)));
      if (opts.tty && process.stdout.isTTY) {
        const resize = (): void => {
          sock.write(frame(F.RESIZE, JSON.stringify({ rows: process.stdout.rows, cols: process.stdout.columns })));
        };
        resize();
        process.on('SIGWINCH', resize);
        cleanups.push(() => process.off('SIGWINCH', resize));
      }
      if (opts.stdin) {
        if (opts.tty && process.stdin.isTTY) {
          process.stdin.setRawMode(true);
          cleanups.push(() => process.stdin.setRawMode(false));
        }
        const onData = (d: Buffer): void => {
          sock.write(frame(F.STDIN, d));
        };
        const onEnd = (): void => {
          if (!sock.destroyed) sock.write(frame(F.STDIN_EOF));
        };
        process.stdin.on('data', onData);
        process.stdin.on('end', onEnd);
        cleanups.push(() => {
          process.stdin.off('data', onData);
          process.stdin.off('end', onEnd);
          process.stdin.pause();
        });
      }
    });
    const reader = new FrameReader((type, payload) => {
      if (type === F.STDOUT) process.stdout.write(payload);
      else if (type === F.STDERR) process.stderr.write(payload);
      else if (type === F.EXIT) exit = JSON.parse(payload.toString()) as ExitInfo;
      else if (type === F.DEBUG) process.stderr.write(`debug: ${payload.toString()}\n`);
    });
    sock.on('data', (d: Buffer) => reader.push(d));
    sock.on('close', done);
  });
}
