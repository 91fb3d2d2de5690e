// The config's `mounts`: options parsed into flags, propagation, data and
// recursive attributes (planned, pure), and each mount made inside the
// rootfs (performed by the init before pivot_root), as runc does:
//
//   bind     mount(src, dst, MS_BIND[|MS_REC]), then, when other flags were
//            asked for, MS_REMOUNT|MS_BIND|flags; on EPERM again with the
//            flags the kernel locks from the source (statfs) added.
//   tmpfs    mounted read-write so the init can fill it (/dev), remounted
//            read-only afterwards when `ro` (for /dev: in finishRootfs).
//   cgroup   a tmpfs with one directory per hierarchy (cgroup.ts).
//   others   mount(source, dst, type, flags, data).
//   then     each propagation option with its own mount(2) call, and the
//            recursive options (rro, rnosuid...) with mount_setattr(2).
//
// Destinations are opened inside the rootfs by the kernel (securejoin.ts)
// and mounted on through /proc/self/fd/N.

import * as path from 'node:path';
import type { Mount } from '../spec/generated/config';
import { AT_RECURSIVE, MOUNT_OPTIONS, MS, O, PROPAGATION_OPTIONS } from '../sys/constants';
import { RuntimeError, messageOf } from '../sys/errors';
import type { ProgramBuilder, Slot } from '../sys/program';
import { emitCgroupMount, type CgroupSubmount } from './cgroupmount';

/** MOUNT_ATTR_* bits of mount_setattr(2). */
export const MOUNT_ATTR = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  _ATIME: 0x70,
  RELATIME: 0x0,
  NOATIME: 0x10,
  STRICTATIME: 0x20,
  NODIRATIME: 0x80,
  NOSYMFOLLOW: 0x200000,
} as const;

/** Recursive mount options (runc's recAttrFlags), applied with mount_setattr(AT_RECURSIVE). */
export const RECURSIVE_MOUNT_OPTIONS: Record<string, { clear: boolean; attr: number }> = {
  rro: { clear: false, attr: MOUNT_ATTR.RDONLY },
  rrw: { clear: true, attr: MOUNT_ATTR.RDONLY },
  rnosuid: { clear: false, attr: MOUNT_ATTR.NOSUID },
  rsuid: { clear: true, attr: MOUNT_ATTR.NOSUID },
  rnodev: { clear: false, attr: MOUNT_ATTR.NODEV },
  rdev: { clear: true, attr: MOUNT_ATTR.NODEV },
  rnoexec: { clear: false, attr: MOUNT_ATTR.NOEXEC },
  rexec: { clear: true, attr: MOUNT_ATTR.NOEXEC },
  rnodiratime: { clear: false, attr: MOUNT_ATTR.NODIRATIME },
  rdiratime: { clear: true, attr: MOUNT_ATTR.NODIRATIME },
  rrelatime: { clear: false, attr: MOUNT_ATTR.RELATIME },
  rnorelatime: { clear: true, attr: MOUNT_ATTR.RELATIME },
  rnoatime: { clear: false, attr: MOUNT_ATTR.NOATIME },
  ratime: { clear: true, attr: MOUNT_ATTR.NOATIME },
  rstrictatime: { clear: false, attr: MOUNT_ATTR.STRICTATIME },
  rnostrictatime: { clear: true, attr: MOUNT_ATTR.STRICTATIME },
  rnosymfollow: { clear: false, attr: MOUNT_ATTR.NOSYMFOLLOW },
  rsymfollow: { clear: true, attr: MOUNT_ATTR.NOSYMFOLLOW },
};

/** Options that are neither flags nor data: runc's extensions. */
export const EXTENSION_OPTIONS = ['tmpcopyup'] as const;

export interface ParsedOptions {
  /** MS_* flags set by the options, in order (a later `rw` clears an earlier `ro`). */
  flags: number;
  /** MS_* flags an option explicitly cleared (rw, suid, dev, exec...): never re-added from the source on a remount. */
  cleared: number;
  /** Propagation changes, each its own mount(2) call, in order. */
  propagation: number[];
  /** Everything else, for the filesystem: `mode=755`, `size=64k`, `newinstance`... */
  data: string[];
  /** mount_setattr(AT_RECURSIVE) attributes from rro, rnosuid...; null when none. */
  recursive: { set: number; clear: number } | null;
  /** tmpcopyup: copy what the destination held into the new tmpfs. */
  copyUp: boolean;
}

/** Splits mount options into flags, the flags cleared, propagation, recursive attributes and data for the filesystem. */
export function parseMountOptions(options: readonly string[]): ParsedOptions {
  let flags = 0;
  let cleared = 0;
  const propagation: number[] = [];
  const data: string[] = [];
  let set = 0;
  let clear = 0;
  let recursive = false;
  let copyUp = false;
  for (const o of options) {
    const known = MOUNT_OPTIONS[o];
    const rec = RECURSIVE_MOUNT_OPTIONS[o];
    if (known) {
      if (known.clear) {
        flags &= ~known.flag;
        cleared |= known.flag;
      } else {
        flags |= known.flag;
        cleared &= ~known.flag;
      }
    } else if (PROPAGATION_OPTIONS[o] !== undefined) {
      propagation.push(PROPAGATION_OPTIONS[o] as number);
    } else if (rec) {
      recursive = true;
      if (rec.clear) {
        clear |= rec.attr;
        set &= ~rec.attr;
      } else {
        set |= rec.attr;
        clear &= ~rec.attr;
        // mount_setattr(2): an access-time mode goes with MOUNT_ATTR__ATIME in attr_clr.
        if ((rec.attr & MOUNT_ATTR._ATIME) === rec.attr) clear |= MOUNT_ATTR._ATIME;
      }
    } else if (o === 'tmpcopyup') {
      copyUp = true;
    } else {
      data.push(o);
    }
  }
  return { flags, cleared, propagation, data, recursive: recursive ? { set, clear } : null, copyUp };
}

export interface MountStep {
  /** bind: a bind mount; fs: a filesystem of `type`; cgroup: a tmpfs plus the hierarchies. */
  kind: 'bind' | 'fs' | 'cgroup';
  /** The config field, e.g. `mounts[3] /dev/pts`. */
  why: string;
  /** Destination inside the container, normalised. */
  destination: string;
  /** bind: the absolute host path; fs: the source as written (or the type). */
  source: string;
  /** fs: the filesystem type. */
  type: string | null;
  /** MS_* flags of the first mount(2) call (bind: MS_BIND[|MS_REC]; tmpfs: without MS_RDONLY). */
  flags: number;
  /** MS_* flags for a second MS_REMOUNT call (bind with ro/nosuid/..., tmpfs ro); 0: none. */
  remountFlags: number;
  /** Flags the options cleared, never taken over from the source on a remount. */
  clearedFlags: number;
  propagation: number[];
  data: string | null;
  recursive: { set: number; clear: number } | null;
  copyUp: boolean;
  /** type "cgroup": mount each hierarchy (cgroup namespace) or bind the init's own cgroup directories. */
  cgroupns?: boolean;
  /**
   * bind, in a user namespace: the init's fd for a detached copy of the
   * source (open_tree(OPEN_TREE_CLONE) by the runtime, as the host's root),
   * since the container's root may not reach a source the host's root can
   * (a 0700 directory on the way; runc passes mount fds for this). The init
   * attaches it with move_mount.
   */
  sourceFd?: number;
}

/** What the init uses as the bind's source: the path, or its fd's magic link. */
function sourceOf(m: MountStep): string {
  return m.sourceFd === undefined ? m.source : `/proc/self/fd/${m.sourceFd}`;
}

/** Where bind mounts onto /proc itself are allowed: files lxcfs emulates (runc's checkProcMount). */
const PROC_BIND_ALLOWED = [
  '/proc/cpuinfo', '/proc/diskstats', '/proc/meminfo', '/proc/stat', '/proc/swaps', '/proc/uptime', '/proc/loadavg',
  '/proc/slabinfo', '/proc/pressure/cpu', '/proc/pressure/io', '/proc/pressure/memory', '/proc/net/dev', '/proc/sys/kernel/ns_last_pid',
];

/** Refuses mounts into /proc other than proc itself and the lxcfs files (runc's checkProcMount). */
export function checkProcMount(destination: string, kind: MountStep['kind'], type: string | null, why: string): void {
  const rel = path.posix.relative('/proc', destination);
  if (rel.startsWith('..')) return;
  if (rel === '') {
    if (kind === 'fs' && type === 'proc') return;
    if (kind === 'bind') return; // checked when mounting: the source must be the root of a procfs
    throw new RuntimeError(`${why}: only a proc filesystem may be mounted on /proc, not ${type}`, { code: 'EINVAL' });
  }
  if (PROC_BIND_ALLOWED.includes(destination)) return;
  throw new RuntimeError(`${why}: ${destination} cannot be mounted because it is inside /proc`, { code: 'EINVAL' });
}

export function planMount(m: Mount, i: number, bundleDir: string, cgroupns: boolean): MountStep {
  const field = `mounts[${i}]`;
  if (!m.destination.startsWith('/')) throw new RuntimeError(`${field}.destination: "${m.destination}" must be absolute`, { code: 'EINVAL' });
  const destination = path.posix.normalize(m.destination).replace(/(.)\/+$/, '$1');
  const why = `${field} ${destination}`;
  const o = parseMountOptions(m.options ?? []);
  const bind = (o.flags & MS.BIND) !== 0 || m.type === 'bind';
  const step: MountStep = {
    kind: bind ? 'bind' : m.type === 'cgroup' ? 'cgroup' : 'fs',
    why,
    destination,
    source: m.source ?? m.type ?? 'none',
    type: bind ? null : m.type ?? null,
    flags: o.flags,
    remountFlags: 0,
    clearedFlags: o.cleared,
    propagation: o.propagation,
    data: o.data.length > 0 ? o.data.join(',') : null,
    recursive: o.recursive,
    copyUp: o.copyUp,
  };
  if (bind) {
    if (!m.source) throw new RuntimeError(`${field}.source: a bind mount needs a source`, { code: 'EINVAL' });
    step.source = path.resolve(bundleDir, m.source);
    step.flags = MS.BIND | (o.flags & MS.REC);
    // A bind keeps the source's flags: what the options ask for needs a remount.
    if (o.flags & ~(MS.BIND | MS.REC | MS.REMOUNT)) step.remountFlags = (o.flags & ~MS.REC) | MS.BIND | MS.REMOUNT;
  } else {
    if (!m.type) throw new RuntimeError(`${field}.type: required for a mount that is not a bind mount`, { code: 'EINVAL' });
    if (m.type === 'tmpfs' && o.flags & MS.RDONLY) {
      // Filled (or chmod-ed) first, made read-only after (runc's mountPropagate).
      step.flags = o.flags & ~MS.RDONLY;
      if (destination !== '/dev') step.remountFlags = o.flags | MS.REMOUNT;
    }
    if (m.type === 'cgroup') step.cgroupns = cgroupns;
  }
  if (o.copyUp && m.type !== 'tmpfs') throw new RuntimeError(`${field}.options: tmpcopyup is only for tmpfs`, { code: 'EINVAL' });
  checkProcMount(destination, step.kind, step.type, why);
  return step;
}

// ---------------------------------------------------------------- perform

/** What the runtime looks up on the host before writing a mount's steps. */
export interface MountHostView {
  /** The filesystem type (statfs f_type) of a host path. */
  statfsType(p: string): number;
  /** The hierarchies under a cgroup mount (cgroupmount.ts). */
  cgroupSubmounts(): CgroupSubmount[];
}

const PROC_SUPER_MAGIC = 0x9fa0;

/** Where under /proc the destination may lead once symlinks are followed (checkProcMount's rules). */
function allowedUnderProc(m: MountStep): string[] {
  const ok = [...PROC_BIND_ALLOWED, m.destination];
  if (m.kind === 'bind' || (m.kind === 'fs' && m.type === 'proc')) ok.push('/proc');
  return ok;
}

/**
 * Opens the destination inside the rootfs (made if missing) into a slot,
 * and checks where symlinks led it: a link must not carry a mount into
 * /proc (runc checks the resolved destination).
 */
export function openTarget(b: ProgramBuilder, rootfs: string, m: MountStep, errmsg: string): Slot {
  const special = m.kind === 'fs' && (m.type === 'proc' || m.type === 'sysfs');
  // A bind's destination is made as its source is, which the init looks at
  // when it gets there: an earlier mount may be what made the source.
  const how = m.kind === 'bind' ? { like: sourceOf(m) } : 'mkdir';
  const fd = b.openInRoot(rootfs, m.destination, how, { noSymlinks: special }, {
    why: m.why,
    errmsg,
    on: m.kind === 'bind'
      ? [{ on: 'ENOENT', to: 'fail', message: `${m.why}: the bind source ${m.source} does not exist` }]
      : special
      ? [
          { on: 'ELOOP', to: 'fail', message: `${m.why}: ${m.destination} must be a directory, not a symlink (${m.type} is never mounted through one)` },
          { on: 'ENOTDIR', to: 'fail', message: `${m.why}: ${m.destination} must be a directory to mount ${m.type} on` },
        ]
      : [],
  });
  b.checkUnder(fd, rootfs, '/proc', allowedUnderProc(m), { why: m.why, errmsg: m.why });
  return fd;
}

/** The steps of one mount, in the init, before pivot_root: every destination opened inside the rootfs first. */
export function emitMount(b: ProgramBuilder, rootfs: string, m: MountStep, host: MountHostView): void {
  const errmsg = `${m.why}: cannot mount ${m.kind === 'bind' ? m.source : m.type} on ${m.destination}`;
  const o = { why: m.why, errmsg };
  if (m.kind === 'cgroup') {
    const t = openTarget(b, rootfs, m, errmsg);
    emitCgroupMount(b, rootfs, t, m, host.cgroupSubmounts());
    b.close(t);
  } else if (m.kind === 'bind') {
    if (m.destination === '/proc' && host.statfsType(m.source) !== PROC_SUPER_MAGIC) {
      throw new RuntimeError(`${m.source} cannot be mounted on /proc: it is not a procfs`, { code: 'EINVAL' });
    }
    let t = openTarget(b, rootfs, m, errmsg);
    if (m.sourceFd === undefined) b.mount(m.source, { slot: t }, null, m.flags, null, o);
    else b.moveMount(m.sourceFd, { slot: t }, m.source, o);
    b.close(t);
    if (m.remountFlags) {
      // The fd opened before the bind names what is under it: open the destination again.
      t = openTarget(b, rootfs, m, errmsg);
      b.remount({ slot: t }, m.remountFlags, m.clearedFlags, sourceOf(m), null, 0, { why: `${m.why} (options)`, errmsg });
      b.close(t);
    }
  } else {
    let t = openTarget(b, rootfs, m, errmsg);
    const tmpfs = m.type === 'tmpfs';
    const keepMode = tmpfs && !/(^|,)mode=/.test(m.data ?? '');
    if (keepMode) b.statMode({ slot: t }, { why: `${m.why}: a tmpfs keeps the mode of the directory it covers`, errmsg });
    const copyFrom = tmpfs && m.copyUp ? b.open({ slot: t }, O.DIRECTORY, 0, `${m.destination} before the tmpfs`, { why: `${m.why} (tmpcopyup)`, errmsg }) : null;
    b.mount(m.source, { slot: t }, m.type, m.flags, m.data, o);
    b.close(t);
    if (tmpfs && (copyFrom !== null || keepMode || m.remountFlags)) {
      t = openTarget(b, rootfs, m, errmsg);
      if (copyFrom !== null) {
        b.copyTree({ slot: copyFrom }, { slot: t }, { why: `${m.why} (tmpcopyup)`, errmsg });
        b.close(copyFrom);
      }
      if (keepMode) b.chmod({ slot: t }, null, { why: `${m.why}: the mode of the directory it covers`, errmsg });
      if (m.remountFlags) b.remount({ slot: t }, m.remountFlags, m.clearedFlags, { slot: t }, m.data, 0, { why: `${m.why} (read-only, once filled)`, errmsg });
      b.close(t);
    }
  }
  if (m.propagation.length > 0 || m.recursive) {
    const t = openTarget(b, rootfs, m, errmsg);
    for (const p of m.propagation) b.mount(null, { slot: t }, null, p, null, { why: `${m.why} (propagation)`, errmsg });
    if (m.recursive) b.mountSetattr({ slot: t }, AT_RECURSIVE, m.recursive.set, m.recursive.clear, { why: `${m.why} (recursive options)`, errmsg });
    b.close(t);
  }
}
