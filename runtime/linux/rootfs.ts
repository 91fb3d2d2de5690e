// The container's root filesystem: a pure plan made from `root`, `mounts`,
// `linux.devices`, `linux.maskedPaths`, `linux.readonlyPaths` and
// `linux.rootfsPropagation`, and the three stages of steps the runtime writes
// from it into the init's program (native/src/rootfs.c performs them):
//
//   emitPrepareRootfs  host root still ours: / made rslave (or rootfsPropagation)
//                      so nothing reaches the host, the rootfs bound on itself,
//                      every mount in order (mounts.ts), /dev (devices.ts)
//   emitEnterRootfs    pivot_root(".", ".") and detach the old root; or with
//                      --no-pivot, MS_MOVE onto / and chroot
//   emitFinishRootfs   read-only and masked paths, /dev and / read-only,
//                      rootfsPropagation on the new /
//
// Every destination is resolved inside the rootfs by the kernel (openat2
// RESOLVE_IN_ROOT, as securejoin.ts does in TypeScript), so a symlink in the
// image cannot send a mount to the host.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Spec } from '../spec/generated/config';
import { MNT_DETACH, MS, O, PROPAGATION_OPTIONS, msFlagNames } from '../sys/constants';
import { RuntimeError } from '../sys/errors';
import type { ProgramBuilder } from '../sys/program';
import { DEFAULT_DEVICES, emitDevLinks, emitDevice, planDevices, type DeviceNode } from './devices';
import { emitMount, parseMountOptions, planMount, type MountHostView, type MountStep } from './mounts';

export { parseMountOptions, type MountStep } from './mounts';
export type { DeviceNode } from './devices';

/** A path of linux.maskedPaths or linux.readonlyPaths, with the field that names it. */
export interface PathStep {
  path: string;
  why: string;
}

export interface RootfsPlan {
  /** root.path, absolute and with symlinks resolved. */
  rootfs: string;
  /**
   * linux.namespaces has a mount namespace (new or joined). Without one the
   * container shares the host's mounts: nothing is mounted (it would show on
   * the host), and the init only chroots into the rootfs, as runc does.
   */
  mountNamespace: boolean;
  /** root.readonly. */
  readonly: boolean;
  /** --no-pivot: MS_MOVE + chroot instead of pivot_root. */
  noPivot: boolean;
  /** MS_* for "/" before anything is mounted: rootfsPropagation, else MS_SLAVE|MS_REC (runc). */
  rootPropagation: number;
  /** linux.rootfsPropagation for the new "/" (0: none given). */
  propagation: number;
  mounts: MountStep[];
  /** /dev is ours to fill (it is not bound from the host): devices, links, ptmx. */
  setupDev: boolean;
  /** The default devices and linux.devices (made when setupDev). */
  devices: DeviceNode[];
  /** A user namespace: bind the host's nodes, mknod would be refused. */
  bindDevices: boolean;
  /** A tmpfs /dev with `ro`: remounted read-only once filled, with these flags. 0: no. */
  devReadonlyFlags: number;
  maskedPaths: PathStep[];
  readonlyPaths: PathStep[];
}

export interface RootfsOptions {
  noPivot: boolean;
  /** Override: cgroup mounts mount the hierarchies (true) or bind the init's cgroup (false). Default: linux.namespaces has a cgroup namespace. */
  cgroupNamespace?: boolean;
  /** Override: device nodes are bound from the host. Default: linux.namespaces has a user namespace. */
  userNamespace?: boolean;
}

function planPropagation(value: string | undefined): number {
  if (value === undefined || value === '') return 0;
  const flags = PROPAGATION_OPTIONS[value];
  if (flags === undefined) {
    throw new RuntimeError(`linux.rootfsPropagation: "${value}" is not one of ${Object.keys(PROPAGATION_OPTIONS).join(', ')}`, { code: 'EINVAL' });
  }
  return flags;
}

/** Paths of maskedPaths/readonlyPaths: absolute, normalised. */
function planPaths(paths: string[] | undefined, field: string): PathStep[] {
  return (paths ?? []).map((p, i) => {
    if (!p.startsWith('/')) throw new RuntimeError(`${field}[${i}]: "${p}" must be absolute`, { code: 'EINVAL' });
    return { path: path.posix.normalize(p), why: `${field}[${i}] ${p}` };
  });
}

/** The plan. Pure but for resolving root.path (it must be a directory). */
export function planRootfs(spec: Spec, bundleDir: string, opts: RootfsOptions): RootfsPlan {
  const root = spec.root?.path;
  if (!root) throw new RuntimeError('root.path: is required', { code: 'EINVAL' });
  let rootfs = path.resolve(bundleDir, root);
  try {
    rootfs = fs.realpathSync(rootfs);
  } catch (e) {
    throw new RuntimeError(`root.path: rootfs ${rootfs} does not exist`, { code: 'ENOENT', cause: e });
  }
  if (!fs.statSync(rootfs).isDirectory()) throw new RuntimeError(`root.path: ${rootfs} is not a directory`, { code: 'ENOTDIR' });
  if (rootfs === '/') throw new RuntimeError('root.path: the rootfs cannot be the host\'s /', { code: 'EINVAL' });

  const namespaces = spec.linux?.namespaces ?? [];
  const cgroupns = opts.cgroupNamespace ?? namespaces.some((n) => n.type === 'cgroup');
  const userns = opts.userNamespace ?? namespaces.some((n) => n.type === 'user');
  const mounts = (spec.mounts ?? []).map((m, i) => planMount(m, i, bundleDir, cgroupns));
  // runc's needsSetupDev: /dev is ours unless the config binds it from the host.
  const setupDev = !mounts.some((m) => m.kind === 'bind' && m.destination === '/dev');
  // A read-only tmpfs /dev is filled first, then remounted read-only (runc's finalizeRootfs).
  const devIndex = mounts.map((m) => m.destination).lastIndexOf('/dev');
  const devMount = mounts[devIndex];
  const devFlags = devMount?.kind === 'fs' && devMount.type === 'tmpfs' ? parseMountOptions(spec.mounts?.[devIndex]?.options ?? []).flags : 0;
  const propagation = planPropagation(spec.linux?.rootfsPropagation);
  return {
    rootfs,
    mountNamespace: namespaces.some((n) => n.type === 'mount'),
    readonly: spec.root?.readonly ?? false,
    noPivot: opts.noPivot,
    rootPropagation: propagation || MS.SLAVE | MS.REC,
    propagation,
    mounts,
    setupDev,
    devices: setupDev ? planDevices(spec) : [],
    bindDevices: userns,
    devReadonlyFlags: devFlags & MS.RDONLY ? devFlags | MS.REMOUNT : 0,
    maskedPaths: planPaths(spec.linux?.maskedPaths, 'linux.maskedPaths'),
    readonlyPaths: planPaths(spec.linux?.readonlyPaths, 'linux.readonlyPaths'),
  };
}

/** What the runtime reads on the host to write the rootfs steps (see mounts.ts). */
export type RootfsHostView = MountHostView;

/**
 * In the init, before pivot_root: / made rslave (or rootfsPropagation) so
 * nothing reaches the host, the mount holding the rootfs made private
 * (runc's rootfsParentMountPrivate: EINVAL means "not a mount point", so
 * the parent directory is tried), the rootfs bound on itself, every mount
 * in order, /dev.
 */
export function emitPrepareRootfs(b: ProgramBuilder, plan: RootfsPlan, host: RootfsHostView): void {
  if (!plan.mountNamespace) return;
  const errmsg = `root.path: cannot prepare the rootfs ${plan.rootfs}`;
  b.mount(null, '/', null, plan.rootPropagation, null, { why: plan.propagation ? 'linux.rootfsPropagation' : 'no mount may reach the host (rslave, as runc)', errmsg });
  const privateDone = b.label();
  for (let p = plan.rootfs; ; p = path.dirname(p)) {
    const last = p === '/';
    b.mount(null, p, null, MS.PRIVATE, null, {
      why: 'root.path: the mount holding the rootfs must not be shared',
      errmsg,
      on: last ? [] : [{ on: 'success', to: privateDone }, { on: 'EINVAL', to: 'next' }],
    });
    if (last) break;
  }
  b.place(privateDone);
  b.mount(plan.rootfs, plan.rootfs, null, MS.BIND | MS.REC, null, { why: 'root.path: the rootfs becomes a mount point (pivot_root needs one)', errmsg });
  for (const m of plan.mounts) emitMount(b, plan.rootfs, m, host);
  if (plan.setupDev) {
    for (const d of plan.devices) emitDevice(b, plan.rootfs, d, plan.bindDevices);
    emitDevLinks(b, plan.rootfs);
  }
}

/** mountinfo: the full proc and sysfs mounts outside the rootfs, which --no-pivot must hide (runc's msMoveRoot). */
export function hostProcSysMounts(mountinfo: string, rootfs: string): string[] {
  const out: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 6) continue;
    const root = f[3];
    const mp = (f[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const fstype = f[sep + 1];
    if (root !== '/' || (fstype !== 'proc' && fstype !== 'sysfs')) continue;
    if (mp === rootfs || mp.startsWith(rootfs + '/')) continue;
    out.push(mp);
  }
  return out;
}

/**
 * In the init: the rootfs becomes "/". With --no-pivot, `hostProcSys` is
 * what hostProcSysMounts found in the init's mountinfo once the mounts were
 * made.
 */
export function emitEnterRootfs(b: ProgramBuilder, plan: RootfsPlan, hostProcSys: readonly string[]): void {
  const errmsg = `root.path: cannot make ${plan.rootfs} the root${plan.noPivot ? ' (--no-pivot)' : ''}`;
  if (!plan.mountNamespace) {
    b.chdir(plan.rootfs, { why: 'root.path: no mount namespace, so no pivot_root', errmsg });
    b.chroot('.', { why: 'root.path: no mount namespace: chroot into the rootfs', errmsg });
    b.chdir('/', { why: 'root.path', errmsg });
    return;
  }
  if (plan.noPivot) {
    b.chdir(plan.rootfs, { why: '--no-pivot: into the rootfs', errmsg });
    // chroot leaves the host's /proc and /sys reachable in this mount
    // namespace, and the kernel lets a new proc or sysfs mount see through
    // masks only if no full one is visible: hide them (runc's msMoveRoot).
    for (const mp of hostProcSys) {
      const next = b.label();
      const cover = b.label();
      b.mount(null, mp, null, MS.SLAVE | MS.REC, null, { why: '--no-pivot: hiding the host\'s proc and sysfs must not propagate', errmsg, on: [{ on: 'ENOENT', to: next }] });
      b.umount2(mp, MNT_DETACH, { why: '--no-pivot: hide the host\'s proc and sysfs', errmsg, on: [{ on: 'success', to: next }, { on: 'EINVAL', to: cover }, { on: 'EPERM', to: cover }] });
      b.place(cover);
      b.mount('tmpfs', mp, 'tmpfs', 0, null, { why: '--no-pivot: cover the host\'s proc or sysfs', errmsg });
      b.place(next);
    }
    b.mount(plan.rootfs, '/', null, MS.MOVE, null, { why: '--no-pivot: move the rootfs onto /', errmsg });
    b.chroot('.', { why: '--no-pivot: chroot instead of pivot_root', errmsg });
    b.chdir('/', { why: '--no-pivot', errmsg });
    return;
  }
  // runc's trick: with new_root and put_old both ".", the old root ends up
  // stacked on top of the new one; detaching it leaves the new root alone.
  const oldroot = b.open('/', O.DIRECTORY, 0, 'the old root', { why: 'pivot_root: the old root', errmsg });
  const newroot = b.open(plan.rootfs, O.DIRECTORY, 0, 'the new root', { why: 'pivot_root: the new root', errmsg });
  b.fchdir(newroot, { why: 'pivot_root: into the new root', errmsg });
  b.pivotRoot('.', '.', { why: 'root.path: the rootfs becomes / (the old root stacked on top)', errmsg });
  b.close(newroot);
  // Into the old root itself: "." looked up from the new root's dentry
  // would name the new root (mount(2) does not cross onto the mount
  // stacked there), and rslave would then flatten the container's mounts.
  b.fchdir(oldroot, { why: 'pivot_root: into the old root, to detach it', errmsg });
  b.close(oldroot);
  b.mount(null, '.', null, MS.SLAVE | MS.REC, null, { why: 'pivot_root: unmounting the old root must not propagate', errmsg });
  b.umount2('.', MNT_DETACH, { why: 'pivot_root: detach the old root (the host)', errmsg });
  b.chdir('/', { why: 'pivot_root', errmsg });
}

/** In the init, after the rootfs became / (and sysctls): what needs the container's own /proc, /dev and /. */
export function emitFinishRootfs(b: ProgramBuilder, plan: RootfsPlan): void {
  if (!plan.mountNamespace) return;
  for (const p of plan.readonlyPaths) {
    // runc's readonlyPath: bound onto itself, remounted read-only keeping nosuid, nodev, noexec. Missing paths are skipped.
    const skip = b.label();
    const errmsg = `${p.why}: cannot make ${p.path} read-only`;
    b.mount(p.path, p.path, null, MS.BIND | MS.REC, null, { why: p.why, errmsg, on: [{ on: 'ENOENT', to: skip }] });
    b.remount(p.path, MS.BIND | MS.REMOUNT | MS.RDONLY, 0, p.path, null, MS.NOSUID | MS.NODEV | MS.NOEXEC, { why: `${p.why} (read-only)`, errmsg });
    b.place(skip);
  }
  for (const p of plan.maskedPaths) {
    // runc's maskPath: /dev/null bound over a file, a read-only tmpfs over a directory. Missing paths are skipped.
    const done = b.label();
    const dir = b.label();
    const errmsg = `${p.why}: cannot mask ${p.path}`;
    b.mount('/dev/null', p.path, null, MS.BIND, null, { why: p.why, errmsg, on: [{ on: 'success', to: done }, { on: 'ENOENT', to: done }, { on: 'ENOTDIR', to: dir }] });
    b.place(dir);
    b.mount('tmpfs', p.path, 'tmpfs', MS.RDONLY, null, { why: `${p.why} (a directory: an empty read-only tmpfs)`, errmsg });
    b.place(done);
  }
  const errmsg = 'cannot finish the rootfs';
  if (plan.devReadonlyFlags) b.mount(null, '/dev', null, plan.devReadonlyFlags, null, { why: 'mounts /dev: read-only, once filled', errmsg });
  if (plan.readonly) b.remount('/', MS.BIND | MS.REMOUNT | MS.RDONLY, 0, '/', null, 0, { why: 'root.readonly', errmsg });
  if (plan.propagation) b.mount(null, '/', null, plan.propagation, null, { why: 'linux.rootfsPropagation', errmsg });
}

// ---------------------------------------------------------------- explain

const q = (s: string | null): string => (s === null ? 'NULL' : JSON.stringify(s));

function describeMount(m: MountStep, w: (s: string, why: string) => void): void {
  const at = `rootfs+${q(m.destination)}`;
  if (m.kind === 'cgroup') {
    w(`mount("tmpfs", ${at}, "tmpfs", MS_NOSUID|MS_NODEV|MS_NOEXEC, "mode=755")`, `${m.why}: a directory per hierarchy`);
    if (m.cgroupns) w(`  mount("cgroup", ${at}+"/<hierarchy>", "cgroup", ${msFlagNames(m.flags | MS.NOSUID | MS.NODEV | MS.NOEXEC)}, "<controllers>") each`, `${m.why}: inside the cgroup namespace`);
    else w(`  mount("/sys/fs/cgroup/<hierarchy>/<the init's cgroup>", ${at}+"/<hierarchy>", MS_BIND|MS_REC) each${m.flags & ~MS.REC ? `, remount ${msFlagNames(m.flags | MS.BIND | MS.REMOUNT)}` : ''}`, `${m.why}: no cgroup namespace, the container's own cgroup`);
    if (m.flags & MS.RDONLY) w('  remount the tmpfs read-only', m.why);
  } else if (m.kind === 'bind') {
    w(`mount(${q(m.source)}, ${at}, NULL, ${msFlagNames(m.flags)}, NULL)`, m.why);
    if (m.remountFlags) w(`  mount(NULL, ${at}, NULL, ${msFlagNames(m.remountFlags)}, NULL)`, `${m.why}: a bind keeps the source's flags`);
  } else {
    w(`mount(${q(m.source)}, ${at}, ${q(m.type)}, ${msFlagNames(m.flags)}, ${q(m.data)})`, m.why);
    if (m.copyUp) w('  copy what the directory held into the tmpfs', `${m.why}: tmpcopyup`);
    if (m.remountFlags) w(`  mount(NULL, ${at}, NULL, ${msFlagNames(m.remountFlags)}, ${q(m.data)})`, `${m.why}: read-only once filled`);
  }
  for (const p of m.propagation) w(`  mount(NULL, ${at}, NULL, ${msFlagNames(p)}, NULL)`, `${m.why}: propagation`);
  if (m.recursive) w(`  mount_setattr(${at}, AT_RECURSIVE, {set=0x${m.recursive.set.toString(16)}, clr=0x${m.recursive.clear.toString(16)}})`, `${m.why}: recursive options`);
}

/** What a config without a mount namespace asks for that is not done (planContainer warns). */
export function ignoredWithoutMountNamespace(plan: RootfsPlan): string[] {
  if (plan.mountNamespace) return [];
  const fields: string[] = [];
  if (plan.mounts.length > 0) fields.push('mounts');
  if (plan.maskedPaths.length > 0) fields.push('linux.maskedPaths');
  if (plan.readonlyPaths.length > 0) fields.push('linux.readonlyPaths');
  if (plan.readonly) fields.push('root.readonly');
  if (plan.propagation) fields.push('linux.rootfsPropagation');
  return fields;
}

/** A step of describeRootfs that `explain --evidence` writes what the kernel shows under. */
export type RootfsStepRef = { kind: 'mount' | 'readonly' | 'masked'; index: number } | { kind: 'pivot' };

/** One line per step, for `explain`; `note` adds lines under a step (explain --evidence). */
export function describeRootfs(plan: RootfsPlan, note: (step: RootfsStepRef) => string[] = () => []): string[] {
  const out: string[] = [];
  const w = (s: string, why: string): void => {
    out.push(`${s}   # ${why}`);
  };
  const under = (step: RootfsStepRef): void => {
    out.push(...note(step));
  };
  if (!plan.mountNamespace) {
    w(`chdir(${q(plan.rootfs)}); chroot("."); chdir("/")`, 'root.path: no mount namespace');
    under({ kind: 'pivot' });
    return out;
  }
  w(`mount(NULL, "/", NULL, ${msFlagNames(plan.rootPropagation)}, NULL)`, plan.propagation ? 'linux.rootfsPropagation' : 'no mount may reach the host');
  w(`mount(NULL, <the mount holding ${q(plan.rootfs)}>, NULL, MS_PRIVATE, NULL)`, 'root.path: the bind must not propagate');
  w(`mount(${q(plan.rootfs)}, ${q(plan.rootfs)}, NULL, MS_BIND|MS_REC, NULL)`, 'root.path');
  plan.mounts.forEach((m, index) => {
    describeMount(m, w);
    under({ kind: 'mount', index });
  });
  if (plan.setupDev) {
    for (const d of plan.devices) {
      const how = plan.bindDevices && d.type !== 'p' ? `mount(${q(d.path)}, rootfs+${q(d.path)}, NULL, MS_BIND, NULL)` : `mknod(rootfs+${q(d.path)}, ${d.type} 0${d.mode.toString(8)}, ${d.major}:${d.minor}); chown ${d.uid}:${d.gid}`;
      w(how, DEFAULT_DEVICES.some(([p]) => p === d.path) && d.why.startsWith('default') ? 'default device' : d.why);
    }
    w('symlink /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr -> /proc/self/fd/..., /dev/core -> /proc/kcore', 'default /dev');
    w('symlink /dev/ptmx -> pts/ptmx', 'default /dev');
  }
  if (plan.noPivot) {
    w('umount2(<the host\'s proc and sysfs>, MNT_DETACH)', '--no-pivot');
    w(`mount(${q(plan.rootfs)}, "/", NULL, MS_MOVE, NULL); chroot(".")`, '--no-pivot');
  } else {
    w('fchdir(rootfs); pivot_root(".", "."); umount2(".", MNT_DETACH); chdir("/")', 'root.path');
  }
  under({ kind: 'pivot' });
  plan.readonlyPaths.forEach((p, index) => {
    w(`mount(${q(p.path)}, ${q(p.path)}, NULL, MS_BIND|MS_REC); remount MS_RDONLY`, p.why);
    under({ kind: 'readonly', index });
  });
  plan.maskedPaths.forEach((p, index) => {
    w(`mount("/dev/null", ${q(p.path)}, NULL, MS_BIND) or a read-only tmpfs on a directory`, p.why);
    under({ kind: 'masked', index });
  });
  if (plan.devReadonlyFlags) w(`mount(NULL, "/dev", NULL, ${msFlagNames(plan.devReadonlyFlags)}, NULL)`, 'mounts /dev: ro');
  if (plan.readonly) w('mount(NULL, "/", NULL, MS_BIND|MS_REMOUNT|MS_RDONLY, NULL)', 'root.readonly');
  if (plan.propagation) w(`mount(NULL, "/", NULL, ${msFlagNames(plan.propagation)}, NULL)`, 'linux.rootfsPropagation');
  return out;
}
