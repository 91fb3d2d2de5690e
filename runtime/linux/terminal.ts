// process.terminal: a pty made inside the container (from its own devpts
// instance, after pivot_root), its master sent over the console socket with
// SCM_RIGHTS exactly as runc does, its slave made the controlling terminal
// and stdio of the process.

import * as sys from '../sys/libc';
import type { ProgramBuilder, Slot } from '../sys/program';

/** The fd number at which the init finds the console socket. */
export const CONSOLE_FD = 4;

export interface ConsoleSize {
  height: number;
  width: number;
}

export function setWinsize(fd: number, size: ConsoleSize, why: string): void {
  const ws = Buffer.alloc(8);
  ws.writeUInt16LE(size.height, 0);
  ws.writeUInt16LE(size.width, 2);
  sys.ioctlPtr(fd, sys.TIOCSWINSZ, ws, why, 'TIOCSWINSZ');
}

/**
 * In the init, after pivot_root: a new pty in the container's own devpts,
 * its master sent over the console socket (fd CONSOLE_FD), the slave kept
 * in a slot until emitAttachConsole makes it the controlling terminal and
 * fds 0, 1, 2.
 */
export function emitConsole(b: ProgramBuilder, size: ConsoleSize | null): Slot {
  return b.console(CONSOLE_FD, size?.height ?? 0, size?.width ?? 0, {
    why: 'process.terminal: a new pty in the container\'s devpts, the master to --console-socket',
    errmsg: 'process.terminal: cannot set up the pty in the container (is /dev/pts mounted?)',
  });
}

export function emitAttachConsole(b: ProgramBuilder, slave: Slot): void {
  b.attachConsole(slave, { why: 'process.terminal: the pty is the controlling terminal and stdio' });
}
