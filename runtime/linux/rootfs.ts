// The container's root filesystem: what to mount where (a pure plan made
// from `root`, `mounts`, `linux.devices`, `linux.maskedPaths`,
// `linux.readonlyPaths` and `linux.rootfsPropagation`), and the three steps
// the init performs with it:
//
//   prepareRootfs  host root still visible: bind the rootfs, every mount,
//                  the default /dev, linux.devices
//   enterRootfs    pivot_root (or MS_MOVE + chroot with --no-pivot)
//   finishRootfs   masked and read-only paths, a read-only root, propagation
//
// Every destination is resolved inside the rootfs (securejoin.ts), so a
// symlink in the image cannot send a mount to the host. All calls are
// synchronous: only the init's main thread sees its new mount namespace.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Spec, Mount } from '../spec/generated/config';
import { MOUNT_OPTIONS, MS, MNT_DETACH, PROPAGATION_OPTIONS, msFlagNames } from '../sys/constants';
import { RuntimeError, messageOf } from '../sys/errors';
import * as sys from '../sys/libc';
import { mkdirInRoot, secureJoin } from './securejoin';
import { readLayout } from '../cgroups/detect';

export interface MountStep {
  source: string | null;
  /** Destination inside the container, as written in the config. */
  destination: string;
  type: string | null;
  flags: number;
  /** Flags needing a second, MS_REMOUNT pass (bind mounts with ro, nosuid, ...). */
  remountFlags: number;
  propagation: number[];
  data: string | null;
  bind: boolean;
  /** For a bind: is the source a directory (else an empty file is made). */
  sourceIsDir: boolean;
  why: string;
  /** type "cgroup": the hierarchies to mount or bind under the destination. */
  cgroup?: CgroupMount[];
}

export interface CgroupMount {
  /** Directory name under the destination (cpu, memory, systemd, unified). */
  name: string;
  /** With a cgroup namespace: mount the hierarchy itself. */
  fstype: 'cgroup' | 'cgroup2';
  options: string | null;
  /** Without one: bind the container's own cgroup directory from the host. */
  hostPath: string;
  /** Mount the hierarchy (inside a cgroup namespace) rather than bind hostPath. */
  ownNamespace: boolean;
}

export interface DeviceNode {
  path: string;
  type: 'c' | 'b' | 'p';
  major: number;
  minor: number;
  mode: number;
  uid: number;
  gid: number;
  why: string;
}

export interface RootfsPlan {
  /** Absolute host path of root.path. */
  rootfs: string;
  readonly: boolean;
  noPivot: boolean;
  /** linux.rootfsPropagation as MS_* flags for "/" after pivot (0: leave it). */
  propagation: number;
  mounts: MountStep[];
  /** The default devices and linux.devices, made when /dev is a fresh tmpfs. */
  devices: DeviceNode[];
  defaultDevLinks: boolean;
  maskedPaths: string[];
  readonlyPaths: string[];
}

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

const DEFAULT_DEVICES: [string, number, number][] = [
  ['/dev/null', 1, 3],
  ['/dev/zero', 1, 5],
  ['/dev/full', 1, 7],
  ['/dev/random', 1, 8],
  ['/dev/urandom', 1, 9],
  ['/dev/tty', 5, 0],
];

/** Splits mount options into flags, the flags to clear, propagation, and data for the filesystem. */
export function parseMountOptions(options: readonly string[]): { flags: number; propagation: number[]; data: string[] } {
  let flags = 0;
  const propagation: number[] = [];
  const data: string[] = [];
  for (const o of options) {
    const known = MOUNT_OPTIONS[o];
    if (known) {
      flags = known.clear ? flags & ~known.flag : flags | known.flag;
    } else if (PROPAGATION_OPTIONS[o] !== undefined) {
      propagation.push(PROPAGATION_OPTIONS[o] as number);
    } else if (o === 'tmpcopyup' || o.startsWith('r') && MOUNT_OPTIONS[o.slice(1)]) {
      // tmpcopyup and recursive (rro, rnosuid, ...) options: not supported; ignored as crun does without mount_setattr.
    } else {
      data.push(o);
    }
  }
  return { flags, propagation, data };
}

export function planRootfs(spec: Spec, bundleDir: string, opts: { noPivot: boolean; cgroupNamespace?: boolean }): RootfsPlan {
  const root = spec.root?.path;
  if (!root) throw new RuntimeError('root.path: is required', { code: 'EINVAL' });
  const rootfs = path.resolve(bundleDir, root);
  let st: fs.Stats;
  try {
    st = fs.statSync(rootfs);
  } catch (e) {
    throw new RuntimeError(`root.path: rootfs ${rootfs} does not exist`, { code: 'ENOENT', cause: e });
  }
  if (!st.isDirectory()) throw new RuntimeError(`root.path: ${rootfs} is not a directory`, { code: 'ENOTDIR' });
  const cgroupNs = opts.cgroupNamespace ?? (spec.linux?.namespaces ?? []).some((n) => n.type === 'cgroup' && !n.path);

  const mounts = (spec.mounts ?? []).map((m, i) => planMount(m, i, bundleDir, cgroupNs, spec.linux?.cgroupsPath));
  const devTmpfs = mounts.some((m) => path.posix.normalize(m.destination) === '/dev' && !m.bind);
  const devices: DeviceNode[] = [];
  if (devTmpfs) {
    for (const [p, major, minor] of DEFAULT_DEVICES) {
      devices.push({ path: p, type: 'c', major, minor, mode: 0o666, uid: 0, gid: 0, why: 'default device' });
    }
  }
  (spec.linux?.devices ?? []).forEach((d, i) => {
    const field = `linux.devices[${i}]`;
    if (!d.path.startsWith('/dev/')) throw new RuntimeError(`${field}.path: "${d.path}" must be under /dev`, { code: 'EINVAL' });
    const type = d.type === 'u' ? 'c' : d.type;
    if (type !== 'c' && type !== 'b' && type !== 'p') throw new RuntimeError(`${field}.type: "${d.type}" is not one of c, b, u, p`, { code: 'EINVAL' });
    if (type !== 'p' && (d.major === undefined || d.minor === undefined)) {
      throw new RuntimeError(`${field}: major and minor are required for type ${d.type}`, { code: 'EINVAL' });
    }
    const node: DeviceNode = { path: d.path, type, major: d.major ?? 0, minor: d.minor ?? 0, mode: d.fileMode ?? 0o666, uid: d.uid ?? 0, gid: d.gid ?? 0, why: field };
    const same = devices.findIndex((x) => x.path === d.path);
    if (same >= 0) devices[same] = node;
    else devices.push(node);
  });
  const prop = spec.linux?.rootfsPropagation;
  return {
    rootfs,
    readonly: spec.root?.readonly ?? false,
    noPivot: opts.noPivot,
    propagation: prop ? (PROPAGATION_OPTIONS[prop] as number) | MS.REC : 0,
    mounts,
    devices,
    defaultDevLinks: devTmpfs,
    maskedPaths: spec.linux?.maskedPaths ?? [],
    readonlyPaths: spec.linux?.readonlyPaths ?? [],
  };
}

function planMount(m: Mount, i: number, bundleDir: string, cgroupNs: boolean, cgroupsPath: string | undefined): MountStep {
  const field = `mounts[${i}]`;
  if (!m.destination.startsWith('/')) throw new RuntimeError(`${field}.destination: "${m.destination}" must be absolute`, { code: 'EINVAL' });
  const { flags, propagation, data } = parseMountOptions(m.options ?? []);
  const bind = (flags & MS.BIND) !== 0 || m.type === 'bind';
  let source = m.source ?? null;
  let sourceIsDir = true;
  if (bind) {
    if (!source) throw new RuntimeError(`${field}.source: a bind mount needs a source`, { code: 'EINVAL' });
    source = path.resolve(bundleDir, source);
    try {
      sourceIsDir = fs.statSync(source).isDirectory();
    } catch (e) {
      throw new RuntimeError(`${field}.source: ${source} does not exist (bind mount to ${m.destination})`, { code: 'ENOENT', cause: e });
    }
  }
  const step: MountStep = {
    source,
    destination: m.destination,
    type: bind ? null : m.type ?? null,
    flags: bind ? MS.BIND | (flags & MS.REC) : flags,
    remountFlags: bind ? flags & ~(MS.BIND | MS.REC | MS.REMOUNT) : 0,
    propagation,
    data: data.length > 0 ? data.join(',') : null,
    bind,
    sourceIsDir,
    why: `${field} ${m.destination}`,
  };
  if (m.type === 'cgroup') step.cgroup = planCgroupMount(cgroupNs, cgroupsPath);
  return step;
}

/** What to put under a "cgroup" mount: one entry per hierarchy of this host. */
function planCgroupMount(cgroupNs: boolean, cgroupsPath: string | undefined): CgroupMount[] {
  let layout;
  try {
    layout = readLayout();
  } catch {
    return [];
  }
  const inner = cgroupsPath && cgroupsPath.startsWith('/') ? cgroupsPath : null;
  const out: CgroupMount[] = [];
  for (const h of layout.v1) {
    const named = h.controllers.find((c) => c.startsWith('name='));
    const name = named ? named.slice(5) : h.controllers.join(',');
    out.push({
      name,
      fstype: 'cgroup',
      options: named ? `none,${named}` : h.controllers.join(','),
      hostPath: inner ? path.join(h.mountPoint, inner) : h.mountPoint,
      ownNamespace: cgroupNs,
    });
  }
  if (layout.unified) {
    out.push({ name: layout.v1.length > 0 ? 'unified' : '', fstype: 'cgroup2', options: null, hostPath: inner ? path.join(layout.unified.mountPoint, inner) : layout.unified.mountPoint, ownNamespace: cgroupNs });
  }
  return out;
}

// ---------------------------------------------------------------- perform

/** MS_* flags of the mount holding `p` (statvfs), to keep locked flags on a remount. */
function lockedFlags(p: string): number {
  const f = sys.statvfsFlags(p);
  let flags = 0;
  if (f & 1n) flags |= MS.RDONLY;
  if (f & 2n) flags |= MS.NOSUID;
  if (f & 4n) flags |= MS.NODEV;
  if (f & 8n) flags |= MS.NOEXEC;
  return flags & ~MS.RDONLY;
}

/** Resolves a destination inside the rootfs and creates it (a dir, or an empty file for a file bind). */
function prepareTarget(rootfs: string, destination: string, asFile: boolean, why: string, mustBeDir = false): string {
  const target = secureJoin(rootfs, destination);
  if (mustBeDir && target !== path.join(rootfs, destination)) {
    // proc and sysfs on a symlink were runc's CVE-2019-16884 / CVE-2019-19921.
    throw new RuntimeError(`${why}: ${destination} must be a directory, not a symlink`, { code: 'ELOOP' });
  }
  const rel = path.relative(rootfs, target);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new RuntimeError(`${why}: destination ${destination} resolves outside the rootfs`, { code: 'EINVAL' });
  }
  if (asFile) {
    mkdirInRoot(rootfs, path.dirname(target));
    if (!fs.existsSync(target)) fs.writeFileSync(target, '', { mode: 0o644 });
  } else {
    mkdirInRoot(rootfs, target);
  }
  if (mustBeDir) {
    const st = fs.lstatSync(target);
    if (!st.isDirectory()) throw new RuntimeError(`${why}: ${destination} must be a directory`, { code: 'ENOTDIR' });
  }
  return target;
}

function performMount(rootfs: string, m: MountStep): void {
  const special = m.type === 'proc' || m.type === 'sysfs';
  const target = prepareTarget(rootfs, m.destination, m.bind && !m.sourceIsDir, m.why, special);
  try {
    if (m.cgroup) {
      mountCgroup(target, m);
    } else if (m.bind) {
      sys.mount(m.source, target, null, m.flags, null, m.why);
      if (m.remountFlags) {
        sys.mount(null, target, null, MS.BIND | MS.REMOUNT | m.remountFlags | lockedFlags(target), null, `${m.why} (options)`);
      }
    } else {
      sys.mount(m.source ?? m.type ?? 'none', target, m.type, m.flags, m.data, m.why);
    }
    for (const p of m.propagation) sys.mount(null, target, null, p, null, `${m.why} (propagation)`);
  } catch (e) {
    throw new RuntimeError(`${m.why}: cannot mount ${m.type ?? 'bind'} on ${m.destination}: ${messageOf(e)}`, { cause: e });
  }
}

function mountCgroup(target: string, m: MountStep): void {
  const entries = m.cgroup ?? [];
  const flags = m.flags & ~MS.RDONLY;
  const only = entries.length === 1 ? entries[0] : undefined;
  if (only && only.name === '') {
    // Pure cgroup v2: the hierarchy itself, or the container's directory.
    if (only.ownNamespace) sys.mount('cgroup2', target, 'cgroup2', m.flags, null, m.why);
    else sys.mount(only.hostPath, target, null, MS.BIND | MS.REC, null, `${m.why} (bind)`);
    return;
  }
  sys.mount('tmpfs', target, 'tmpfs', MS.NOSUID | MS.NODEV | MS.NOEXEC, 'mode=755', `${m.why} (tmpfs for the hierarchies)`);
  for (const e of entries) {
    const dir = path.join(target, e.name);
    fs.mkdirSync(dir, { recursive: true });
    // Inside a cgroup namespace the hierarchy is mounted itself (its root is
    // the container's cgroup); without one, the container's directory is bound.
    if (e.ownNamespace) sys.mount(e.fstype, dir, e.fstype, flags, e.options, `${m.why} (${e.name})`);
    else sys.mount(e.hostPath, dir, null, MS.BIND | MS.REC, null, `${m.why} (${e.name}, bind)`);
    if (m.flags & MS.RDONLY) sys.mount(null, dir, null, MS.BIND | MS.REMOUNT | MS.RDONLY | flags, null, `${m.why} (${e.name} ro)`);
  }
  if (m.flags & MS.RDONLY) sys.mount(null, target, null, MS.REMOUNT | MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC, 'mode=755', `${m.why} (ro)`);
}

function makeDevice(rootfs: string, d: DeviceNode): void {
  const target = prepareTarget(rootfs, d.path, true, d.why);
  fs.rmSync(target, { force: true });
  const kind = d.type === 'b' ? S_IFBLK : d.type === 'p' ? S_IFIFO : S_IFCHR;
  try {
    sys.mknod(target, kind | (d.mode & 0o7777), d.major, d.minor, d.why);
  } catch (e) {
    if ((e as { code?: string }).code !== 'EPERM' || d.type === 'p') throw e;
    // In a user namespace mknod is refused: bind the host's node instead, as runc does.
    fs.writeFileSync(target, '', { mode: 0o644 });
    sys.mount(d.path, target, null, MS.BIND, null, `${d.why} (bind from the host: mknod not permitted)`);
    return;
  }
  fs.chmodSync(target, d.mode & 0o7777);
  fs.chownSync(target, d.uid, d.gid);
}

export function prepareRootfs(plan: RootfsPlan): void {
  // Nothing we mount may propagate back to the host.
  sys.mount(null, '/', null, MS.SLAVE | MS.REC, null, 'linux.rootfsPropagation: no mount may reach the host');
  sys.mount(plan.rootfs, plan.rootfs, null, MS.BIND | MS.REC, null, 'root.path: the rootfs becomes a mount point (pivot_root needs one)');
  for (const m of plan.mounts) performMount(plan.rootfs, m);
  for (const d of plan.devices) makeDevice(plan.rootfs, d);
  if (plan.defaultDevLinks) {
    const links: [string, string][] = [
      ['/proc/self/fd', '/dev/fd'],
      ['/proc/self/fd/0', '/dev/stdin'],
      ['/proc/self/fd/1', '/dev/stdout'],
      ['/proc/self/fd/2', '/dev/stderr'],
    ];
    if (fs.existsSync('/proc/kcore')) links.push(['/proc/kcore', '/dev/core']);
    for (const [to, at] of links) {
      const p = secureJoin(plan.rootfs, at);
      if (!fs.existsSync(p)) fs.symlinkSync(to, p);
    }
    const ptmx = secureJoin(plan.rootfs, '/dev/ptmx');
    try {
      fs.lstatSync(ptmx);
    } catch {
      fs.symlinkSync('pts/ptmx', ptmx);
    }
  }
}

export function enterRootfs(plan: RootfsPlan): void {
  if (plan.noPivot) {
    sys.chdir(plan.rootfs, '--no-pivot');
    sys.mount(plan.rootfs, '/', null, MS.MOVE, null, '--no-pivot: move the rootfs onto /');
    sys.chroot('.', '--no-pivot: chroot instead of pivot_root');
    sys.chdir('/', '--no-pivot');
    return;
  }
  const oldroot = sys.open('/', sys.O.DIRECTORY | sys.O.RDONLY | sys.O.CLOEXEC, 0, 'pivot_root: the old root');
  const newroot = sys.open(plan.rootfs, sys.O.DIRECTORY | sys.O.RDONLY | sys.O.CLOEXEC, 0, 'pivot_root: the new root');
  try {
    sys.fchdir(newroot, 'pivot_root');
    sys.pivotRoot('.', '.', 'root.path: the rootfs becomes / (old root stacked on top)');
    sys.fchdir(oldroot, 'pivot_root: back to the old root, to unmount it');
    sys.mount(null, '.', null, MS.SLAVE | MS.REC, null, 'pivot_root: the unmount of the old root must not propagate');
    sys.umount2('.', MNT_DETACH, 'pivot_root: detach the old root (the host)');
    sys.chdir('/', 'pivot_root');
  } finally {
    sys.close(oldroot);
    sys.close(newroot);
  }
}

export function finishRootfs(plan: RootfsPlan): void {
  for (const p of plan.maskedPaths) {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      continue; // nothing to mask
    }
    if (st.isDirectory()) sys.mount('tmpfs', p, 'tmpfs', MS.RDONLY, null, `linux.maskedPaths ${p}`);
    else sys.mount('/dev/null', p, null, MS.BIND, null, `linux.maskedPaths ${p}`);
  }
  for (const p of plan.readonlyPaths) {
    if (!fs.existsSync(p)) continue;
    sys.mount(p, p, null, MS.BIND | MS.REC, null, `linux.readonlyPaths ${p}`);
    sys.mount(null, p, null, MS.BIND | MS.REMOUNT | MS.RDONLY | MS.REC | lockedFlags(p), null, `linux.readonlyPaths ${p}`);
  }
  if (plan.readonly) {
    sys.mount(null, '/', null, MS.BIND | MS.REMOUNT | MS.RDONLY | lockedFlags('/'), null, 'root.readonly');
  }
  if (plan.propagation) sys.mount(null, '/', null, plan.propagation, null, 'linux.rootfsPropagation');
}

/** One line per step, for `explain`. */
export function describeRootfs(plan: RootfsPlan): string[] {
  const out: string[] = [];
  const w = (s: string, why: string): void => {
    out.push(`${s}   # ${why}`);
  };
  w('mount("", "/", MS_SLAVE|MS_REC)', 'no mount reaches the host');
  w(`mount("${plan.rootfs}", "${plan.rootfs}", MS_BIND|MS_REC)`, 'root.path');
  for (const m of plan.mounts) {
    if (m.cgroup) {
      w(`mount("tmpfs", rootfs+"${m.destination}", "tmpfs", MS_NOSUID|MS_NODEV|MS_NOEXEC)`, `${m.why}: a directory per hierarchy`);
      for (const c of m.cgroup) {
        const at = `rootfs+"${path.posix.join(m.destination, c.name)}"`;
        if (c.ownNamespace) w(`  mount("${c.fstype}", ${at}, "${c.fstype}", ${msFlagNames(m.flags & ~MS.RDONLY)}, ${c.options ? `"${c.options}"` : 'NULL'})`, `${m.why} (inside the cgroup namespace)`);
        else w(`  mount("${c.hostPath}", ${at}, MS_BIND|MS_REC)`, `${m.why} (no cgroup namespace: the container's own directory)`);
      }
      if (m.flags & MS.RDONLY) w(`  remount each, and the tmpfs, read-only`, m.why);
    } else if (m.bind) {
      w(`mount("${m.source}", rootfs+"${m.destination}", ${msFlagNames(m.flags)})${m.remountFlags ? ` then remount ${msFlagNames(m.remountFlags)}` : ''}`, m.why);
    } else {
      w(`mount("${m.source ?? m.type}", rootfs+"${m.destination}", "${m.type}", ${msFlagNames(m.flags)}, ${m.data ? `"${m.data}"` : 'NULL'})`, m.why);
    }
  }
  for (const d of plan.devices) w(`mknod(rootfs+"${d.path}", ${d.type} ${d.major}:${d.minor}, 0${d.mode.toString(8)})`, d.why);
  if (plan.defaultDevLinks) w('symlinks /dev/fd, /dev/std{in,out,err}, /dev/ptmx -> pts/ptmx', 'default /dev');
  w(plan.noPivot ? 'mount(rootfs, "/", MS_MOVE); chroot(".")' : 'pivot_root(".", "."); umount2(old root, MNT_DETACH)', plan.noPivot ? '--no-pivot' : 'root.path');
  for (const p of plan.maskedPaths) w(`mask ${p} (/dev/null or a read-only tmpfs)`, 'linux.maskedPaths');
  for (const p of plan.readonlyPaths) w(`bind ${p} read-only`, 'linux.readonlyPaths');
  if (plan.readonly) w('remount / read-only', 'root.readonly');
  if (plan.propagation) w(`mount("", "/", ${msFlagNames(plan.propagation)})`, 'linux.rootfsPropagation');
  return out;
}
