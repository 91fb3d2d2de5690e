// The runtime's side of the sync channel with the init (see protocol.ts for
// the frames and their order).

import * as net from 'node:net';
import type { FromInit, ToInit } from './protocol';
import { trace, tracing } from '../sys/trace';

/** Reads the init's frames until it hangs up, tracing its debug lines. */
export async function drain(ch: Channel): Promise<void> {
  for (;;) {
    const f = await ch.recv();
    if (f === null) return ch.close();
    if (f.t === 'debug' && tracing()) trace({ kind: 'syscall', call: `[init] ${f.line}`, result: '' });
  }
}

/** Parent side of the sync channel. */
export class Channel {
  private sock: net.Socket;
  private lines: string[] = [];
  private buf = '';
  private ended = false;
  private waiter: (() => void) | null = null;

  constructor(fd: number) {
    this.sock = new net.Socket({ fd, readable: true, writable: true });
    this.sock.setEncoding('utf8');
    this.sock.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, nl));
        this.buf = this.buf.slice(nl + 1);
      }
      this.wake();
    });
    const end = (): void => {
      this.ended = true;
      this.wake();
    };
    this.sock.on('end', end);
    this.sock.on('close', end);
    this.sock.on('error', end);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  send(m: ToInit): void {
    this.sock.write(JSON.stringify(m) + '\n');
  }

  async recv(): Promise<FromInit | null> {
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) return JSON.parse(line) as FromInit;
      if (this.ended) return null;
      await new Promise<void>((r) => (this.waiter = r));
    }
  }

  close(): void {
    this.sock.destroy();
  }
}
