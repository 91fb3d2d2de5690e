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
import type { ProgramBuilder, Slot } from '../sys/program';

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

/**
 * What goes under a cgroup mount for the init PID: the host's hierarchies
 * (its mountinfo, the same as ours before any container mount) and its own
 * cgroups, read from the host once the runtime has moved it there.
 */
export function cgroupSubmountsOf(pid: number): CgroupSubmount[] {
  let layout: CgroupLayout;
  let own: OwnCgroups;
  try {
    layout = detectCgroups({ mountinfo: fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8') });
    own = parseProcCgroup(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
  } catch (e) {
    throw new RuntimeError(`cannot find the host's cgroup hierarchies: ${messageOf(e)}`, { cause: e });
  }
  return cgroupSubmounts(layout, own);
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

/** One hierarchy at `target`, then read-only if asked. */
function emitOne(b: ProgramBuilder, rootfs: string, dest: string, target: Slot, sub: CgroupSubmount, m: CgroupMountStep, why: string): void {
  const errmsg = `${m.why}: cannot mount the cgroup hierarchies on ${m.destination}`;
  const ro = m.flags & MS.RDONLY;
  if (m.cgroupns) {
    // Mounted by the init, inside its cgroup namespace: the hierarchy's root is the container's cgroup.
    b.mount(sub.fs.source, { slot: target }, sub.fs.fstype, (m.flags & ~(MS.BIND | MS.REC | MS.REMOUNT)) | BASE, sub.fs.data, { why: `${why} (inside the cgroup namespace)`, errmsg });
    return;
  }
  b.mount(sub.bindSource, { slot: target }, null, MS.BIND | MS.REC, null, { why: `${why} (the container's own cgroup)`, errmsg });
  const extra = m.flags & ~(MS.BIND | MS.REC | MS.REMOUNT);
  if (extra || ro) {
    const fd = b.openInRoot(rootfs, dest, 'open', { directory: true }, { why, errmsg });
    b.remount({ slot: fd }, MS.BIND | MS.REMOUNT | extra, m.clearedFlags, sub.bindSource, null, 0, { why: `${why} (options)`, errmsg });
    b.close(fd);
  }
}

/** The steps that mount the cgroup hierarchies at `target`, the destination opened inside `rootfs`. */
export function emitCgroupMount(b: ProgramBuilder, rootfs: string, target: Slot, m: CgroupMountStep, subs: CgroupSubmount[]): void {
  const errmsg = `${m.why}: cannot mount the cgroup hierarchies on ${m.destination}`;
  const only = subs[0];
  if (subs.length === 1 && only && only.name === '') {
    emitOne(b, rootfs, m.destination, target, only, m, m.why);
    return;
  }
  b.mount('tmpfs', { slot: target }, 'tmpfs', BASE, 'mode=755', { why: `${m.why} (a tmpfs for the hierarchies)`, errmsg });
  for (const sub of subs) {
    const dest = path.posix.join(m.destination, sub.name);
    const fd = b.openInRoot(rootfs, dest, 'mkdir', {}, { why: m.why, errmsg });
    emitOne(b, rootfs, dest, fd, sub, m, `${m.why} ${sub.name}`);
    b.close(fd);
  }
  const top = b.openInRoot(rootfs, m.destination, 'open', { directory: true }, { why: m.why, errmsg });
  for (const sub of subs) {
    for (const link of sub.links) {
      b.symlink(sub.name, { slot: top, rest: `/${link}` }, { why: `${m.why}: ${link} is co-mounted with ${sub.name}`, errmsg, on: [{ on: 'EEXIST', to: 'next' }] });
    }
  }
  if (m.flags & MS.RDONLY) b.remount({ slot: top }, MS.BIND | MS.REMOUNT | MS.RDONLY | BASE, 0, { slot: top }, null, 0, { why: `${m.why} (the tmpfs read-only)`, errmsg });
  b.close(top);
}
