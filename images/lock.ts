// Locks by key, across the tasks of this process and across processes.
//
// In-process waiters queue on a promise per key, so they don't poll; across
// processes the holder keeps flock(2) on `<dir>/<key>.lock`. flock is taken
// with LOCK_NB and retried with a short backoff so the event loop never
// blocks. Lock files are left in place (removing them would race).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { flock, LOCK_EX, LOCK_NB } from '../runtime/sys/libc';
import { SyscallError } from '../runtime/sys/errors';

const inProcess = new Map<string, Promise<void>>();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function withLock<T>(dir: string, key: string, fn: () => Promise<T>): Promise<T> {
  const file = path.join(dir, `${key.replace(/[^A-Za-z0-9._-]/g, '_')}.lock`);
  // Queue behind the previous in-process holder of this key.
  const prev = inProcess.get(file) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const tail = prev.then(() => mine);
  inProcess.set(file, tail);
  await prev;
  let fd = -1;
  try {
    fs.mkdirSync(dir, { recursive: true });
    fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    for (let delay = 5; ; delay = Math.min(delay * 2, 200)) {
      try {
        flock(fd, LOCK_EX | LOCK_NB, `lock ${key}`);
        break;
      } catch (e) {
        if (!(e instanceof SyscallError) || (e.code !== 'EAGAIN' && e.code !== 'EWOULDBLOCK')) throw e;
        await sleep(delay);
      }
    }
    return await fn();
  } finally {
    if (fd >= 0) fs.closeSync(fd); // closing drops the flock
    release();
    if (inProcess.get(file) === tail) inProcess.delete(file);
  }
}
