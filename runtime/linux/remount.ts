// statfs flags as mount flags. A mount copied into a mount namespace owned
// by a less privileged user namespace keeps its ro/nosuid/nodev/noexec/atime
// flags locked, and a remount that would drop one fails with EPERM: the
// init's REMOUNT op (native/src/rootfs.c) then adds the source's flags, and
// the runtime needs them to seal its init binary (spawn.ts).

import { MS } from '../sys/constants';

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
