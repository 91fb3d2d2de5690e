// process.terminal: a pty made inside the container (from its own devpts
// instance, after pivot_root), its master sent over the console socket with
// SCM_RIGHTS exactly as runc does, its slave made the controlling terminal
// and stdio of the process.

import * as sys from '../sys/libc';
import { RuntimeError, messageOf } from '../sys/errors';

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
 * Opens a new pty in the container's /dev/ptmx, sends the master over the
 * console socket (fd CONSOLE_FD) and returns the slave, to become stdio.
 */
export function setupConsole(size: ConsoleSize | null): number {
  let master: number;
  try {
    master = sys.open('/dev/ptmx', sys.O.RDWR | sys.O.NOCTTY | sys.O.CLOEXEC, 0, 'process.terminal: a new pty in the container\'s devpts');
  } catch (e) {
    throw new RuntimeError(`process.terminal: cannot open /dev/ptmx in the container (is /dev/pts mounted?): ${messageOf(e)}`, { cause: e });
  }
  sys.ioctlPtr(master, sys.TIOCSPTLCK, Buffer.alloc(4), 'unlockpt', 'TIOCSPTLCK');
  const n = sys.ioctlPtr(master, sys.TIOCGPTN, Buffer.alloc(4), 'ptsname', 'TIOCGPTN').readUInt32LE(0);
  const slave = sys.open(`/dev/pts/${n}`, sys.O.RDWR | sys.O.NOCTTY | sys.O.CLOEXEC, 0, 'process.terminal: the pty slave becomes stdio');
  if (size) setWinsize(master, size, 'process.consoleSize');
  sys.sendFd(CONSOLE_FD, '/dev/ptmx', master, '--console-socket: hand the pty master to the caller');
  sys.close(master);
  sys.close(CONSOLE_FD);
  return slave;
}

/** The slave becomes the controlling terminal and fds 0, 1, 2. */
export function attachConsole(slave: number): void {
  sys.ioctlInt(slave, sys.TIOCSCTTY, 0, 'process.terminal: controlling terminal', 'TIOCSCTTY');
  for (const fd of [0, 1, 2]) sys.dup2(slave, fd, 'process.terminal: stdio is the pty');
  if (slave > 2) sys.close(slave);
}
