// MS_REMOUNT with runc's fallback for flags the kernel locks: a mount
// copied into a mount namespace owned by a less privileged user namespace
// keeps its ro/nosuid/nodev/noexec/atime flags, and a remount that would
// drop one fails with EPERM. Then the source's flags (statfs) are added,
// unless the config explicitly cleared them (the error stands then).

import { MS, msFlagNames } from '../sys/constants';
import * as sys from '../sys/libc';

const ST_TO_MS: [bigint, number][] = [
  [1n, MS.RDONLY], [2n, MS.NOSUID], [4n, MS.NODEV], [8n, MS.NOEXEC], [16n, MS.SYNCHRONOUS],
  [64n, MS.MANDLOCK], [1024n, MS.NOATIME], [2048n, MS.NODIRATIME], [4096n, MS.RELATIME], [8192n, MS.NOSYMFOLLOW],
];

/** statfs ST_* flags → MS_* flags. */
export function statfsToMs(st: bigint): number {
  let flags = 0;
  for (const [bit, ms] of ST_TO_MS) if (st & bit) flags |= ms;
  return flags;
}

/** Flags the kernel locks on a mount copied into a less privileged namespace. */
const LOCKABLE = MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.NODIRATIME;
const ATIME = MS.NOATIME | MS.RELATIME | MS.STRICTATIME;

/**
 * MS_REMOUNT of the mount at `target` (a path or /proc/self/fd/N). When the
 * kernel refuses (EPERM: flags locked in a user namespace), retry with the
 * locked flags of `lockSource` added, unless the config cleared them; an
 * access-time mode the config names is kept, else the source's is taken.
 */
export function remount(target: string, flags: number, cleared: number, lockSource: string, why: string, data: string | null = null): void {
  try {
    sys.mount(null, target, null, flags, data, why);
  } catch (e) {
    if ((e as { code?: string }).code !== 'EPERM') throw e;
    const src = statfsToMs(sys.statfs(lockSource, `${why}: the source's locked flags`).flags);
    if (src & LOCKABLE & cleared) throw e;
    let retry = flags | (src & LOCKABLE);
    if ((flags & ATIME) === 0) retry |= src & ATIME;
    if (retry === flags) throw e;
    sys.mount(null, target, null, retry, data, `${why} (again, keeping the locked ${msFlagNames(retry & ~flags)})`);
  }
}
