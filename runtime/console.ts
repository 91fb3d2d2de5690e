// The console of a container with process.terminal: either the caller's
// --console-socket (we only connect to it and hand the socket to the init,
// which sends the pty master there), or, for a foreground run or exec
// without one, ourselves.

import * as fs from 'node:fs';
import { RuntimeError, messageOf } from './sys/errors';
import * as sys from './sys/libc';

export function connectConsole(socketPath: string): number {
  try {
    return sys.connectUnix(socketPath, '--console-socket');
  } catch (e) {
    throw new RuntimeError(`cannot connect to --console-socket ${socketPath}: ${messageOf(e)}`, { cause: e });
  }
}

/**
 * A foreground run or exec with a terminal and no --console-socket: we are
 * the console. The init sends us the pty master; we copy our stdin to it and
 * it to our stdout, in raw mode when stdin is a terminal, and pass resizes on.
 */
export class OwnConsole {
  private readonly ours: number;
  readonly theirs: number;
  private master = -1;
  private cleanup: (() => void)[] = [];

  constructor() {
    [this.ours, this.theirs] = sys.socketpair('our own console socket');
  }

  /** After the init has sent the master: start copying. Resolves when the pty closes. */
  attach(): Promise<void> {
    fs.closeSync(this.theirs);
    this.master = sys.recvFd(this.ours, 'the pty master from the init').fd;
    fs.closeSync(this.ours);
    const tty = require('node:tty') as typeof import('node:tty');
    const { setWinsize } = require('./linux/terminal') as typeof import('./linux/terminal');
    const resize = (): void => {
      if (process.stdout.isTTY) setWinsize(this.master, { height: process.stdout.rows, width: process.stdout.columns }, 'terminal resize');
    };
    resize();
    process.on('SIGWINCH', resize);
    this.cleanup.push(() => process.off('SIGWINCH', resize));
    if (process.stdin.isTTY) {
      process.stdin.setRawMode(true);
      this.cleanup.push(() => process.stdin.setRawMode(false));
    }
    const master = this.master;
    const onInput = (d: Buffer): void => {
      try {
        fs.writeSync(master, d);
      } catch {
        // the pty is gone
      }
    };
    process.stdin.on('data', onInput);
    this.cleanup.push(() => {
      process.stdin.off('data', onInput);
      process.stdin.pause();
    });
    const out = new tty.ReadStream(master);
    out.on('data', (d: Buffer) => process.stdout.write(d));
    return new Promise((resolve) => {
      const done = (): void => {
        for (const c of this.cleanup.splice(0)) c();
        out.destroy();
        resolve();
      };
      out.on('end', done);
      out.on('error', done); // EIO once the last slave fd closes
      out.on('close', done);
    });
  }
}
