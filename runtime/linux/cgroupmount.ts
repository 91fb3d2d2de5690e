// A mount of type "cgroup" (the default spec's /sys/fs/cgroup), as runc
// makes it. The init is already in the container's cgroup when it runs this,
// so it reads its own /proc/self/cgroup, like runc's getCgroupMounts:
//
//   v1/hybrid  a tmpfs (nosuid,nodev,noexec, mode=755) with one directory
//              per hierarchy, named as on the host (cpu, memory, systemd,
//              and unified for the cgroup2 one of a hybrid host):
//                cgroup namespace: mount("cgroup", dir, "cgroup", ..., "cpu")
//                                  (its root is the container's cgroup)
//                otherwise:        bind /sys/fs/cgroup/cpu/<own cgroup>
//              co-mounted controllers get symlinks (cpuacct -> cpu,cpuacct);
//              `ro` makes each hierarchy and then the tmpfs read-only.
//   v2         cgroup2 itself in a cgroup namespace, else a bind of the
//              container's own directory.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { detectCgroups, parseProcCgroup, type CgroupLayout, type OwnCgroups } from '../cgroups/detect';
import { MS } from '../sys/constants';
import { RuntimeError, messageOf } from '../sys/errors';
import * as sys from '../sys/libc';
import { remount } from './remount';
import { fdPath, mkdirAllInRoot, openInRoot } from './securejoin';

export interface CgroupSubmount {
  /** Directory under the destination ('' on a pure v2 host: the destination itself). */
  name: string;
  /** Co-mounted controllers: symlinks to `name`. */
  links: string[];
  /** In a cgroup namespace: the filesystem to mount. */
  fs: { source: string; fstype: 'cgroup' | 'cgroup2'; data: string | null };
  /** Without one: the container's own directory in this hierarchy. */
  bindSource: string;
}

function ownDir(mountPoint: string, mountRoot: string, own: string | undefined | null, label: string): string {
  if (own === undefined || own === null) throw new RuntimeError(`cannot find the init's own ${label} cgroup in /proc/self/cgroup`, { code: 'ENOENT' });
  const rel = path.posix.relative(mountRoot, own);
  if (rel.startsWith('..')) throw new RuntimeError(`the init's ${label} cgroup ${own} is outside the mount of ${mountRoot}`, { code: 'ENOENT' });
  return path.posix.join(mountPoint, rel);
}

/** What goes under a cgroup mount, from the host's layout and the init's own cgroups (pure). */
export function cgroupSubmounts(layout: CgroupLayout, own: OwnCgroups): CgroupSubmount[] {
  const u = layout.unified;
  if (layout.driver === 'v2' && u) {
    return [{ name: '', links: [], fs: { source: 'cgroup2', fstype: 'cgroup2', data: null }, bindSource: ownDir(u.mountPoint, u.mountRoot, own.unified, 'cgroup2') }];
  }
  const out: CgroupSubmount[] = [];
  for (const h of layout.v1) {
    const name = path.posix.basename(h.mountPoint);
    const named = h.controllers.find((c) => c.startsWith('name='));
    const first = h.controllers[0] ?? '';
    out.push({
      name,
      links: h.controllers.filter((c) => !c.startsWith('name=') && c !== name),
      fs: named ? { source: named.slice(5), fstype: 'cgroup', data: `none,${named}` } : { source: 'cgroup', fstype: 'cgroup', data: h.controllers.join(',') },
      bindSource: ownDir(h.mountPoint, h.mountRoot, own.v1.get(first), first),
    });
  }
  if (u) out.push({ name: 'unified', links: [], fs: { source: 'cgroup2', fstype: 'cgroup2', data: null }, bindSource: ownDir(u.mountPoint, u.mountRoot, own.unified, 'cgroup2') });
  return out;
}

function readOwn(): { layout: CgroupLayout; own: OwnCgroups } {
  try {
    const layout = detectCgroups({ mountinfo: fs.readFileSync('/proc/self/mountinfo', 'utf8') });
    const own = parseProcCgroup(fs.readFileSync('/proc/self/cgroup', 'utf8'));
    return { layout, own };
  } catch (e) {
    throw new RuntimeError(`cannot find the host's cgroup hierarchies: ${messageOf(e)}`, { cause: e });
  }
}

const BASE = MS.NOSUID | MS.NODEV | MS.NOEXEC;

/** What a cgroup mount takes of its step (mounts.ts's MountStep, which calls it, has these fields). */
export interface CgroupMountStep {
  /** The config field, e.g. `mounts[3] /sys/fs/cgroup`. */
  why: string;
  destination: string;
  flags: number;
  clearedFlags: number;
  /** Mount each hierarchy (in a cgroup namespace), or bind the init's own cgroup directories. */
  cgroupns?: boolean;
}

/** One hierarchy at `target` (a /proc/self/fd path), then read-only if asked. */
function mountOne(rootfs: string, dest: string, target: string, sub: CgroupSubmount, m: CgroupMountStep, why: string): void {
  const ro = m.flags & MS.RDONLY;
  if (m.cgroupns) {
    sys.mount(sub.fs.source, target, sub.fs.fstype, (m.flags & ~(MS.BIND | MS.REC | MS.REMOUNT)) | BASE, sub.fs.data, `${why} (inside the cgroup namespace)`);
    return;
  }
  sys.mount(sub.bindSource, target, null, MS.BIND | MS.REC, null, `${why} (the container's own cgroup)`);
  const extra = m.flags & ~(MS.BIND | MS.REC | MS.REMOUNT);
  if (extra || ro) {
    const fd = openInRoot(rootfs, dest, { why, directory: true });
    try {
      remount(fdPath(fd), MS.BIND | MS.REMOUNT | extra, m.clearedFlags, sub.bindSource, `${why} (options)`);
    } finally {
      sys.close(fd);
    }
  }
}

/** Mounts the cgroup hierarchies at `target`, the destination opened inside `rootfs`. */
export function mountCgroup(rootfs: string, target: string, m: CgroupMountStep): void {
  const { layout, own } = readOwn();
  const subs = cgroupSubmounts(layout, own);
  const only = subs[0];
  if (subs.length === 1 && only && only.name === '') {
    mountOne(rootfs, m.destination, target, only, m, m.why);
    return;
  }
  sys.mount('tmpfs', target, 'tmpfs', BASE, 'mode=755', `${m.why} (a tmpfs for the hierarchies)`);
  for (const sub of subs) {
    const dest = path.posix.join(m.destination, sub.name);
    const fd = mkdirAllInRoot(rootfs, dest, { why: m.why });
    try {
      mountOne(rootfs, dest, fdPath(fd), sub, m, `${m.why} ${sub.name}`);
    } finally {
      sys.close(fd);
    }
  }
  const top = openInRoot(rootfs, m.destination, { why: m.why, directory: true });
  try {
    for (const sub of subs) {
      for (const link of sub.links) {
        try {
          fs.symlinkSync(sub.name, path.join(fdPath(top), link));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
      }
    }
    if (m.flags & MS.RDONLY) remount(fdPath(top), MS.BIND | MS.REMOUNT | MS.RDONLY | BASE, 0, fdPath(top), `${m.why} (the tmpfs read-only)`);
  } finally {
    sys.close(top);
  }
}
