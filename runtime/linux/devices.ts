// /dev, as runc sets it up unless the config bind-mounts /dev from the
// host: the default nodes (null, zero, full, random, urandom, tty) and
// linux.devices made with mknod(2) — or, in a user namespace where mknod is
// refused, the host's node bind-mounted instead — then the /dev/fd,
// /dev/std{in,out,err} and /dev/core links, and /dev/ptmx -> pts/ptmx.
// Everything is created through fds opened inside the rootfs.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Spec } from '../spec/generated/config';
import { MS } from '../sys/constants';
import { RuntimeError, messageOf } from '../sys/errors';
import * as sys from '../sys/libc';
import { createInRoot, fdPath, mkdirAllInRoot } from './securejoin';

export interface DeviceNode {
  /** Path inside the container, under /dev. */
  path: string;
  type: 'c' | 'b' | 'p';
  major: number;
  minor: number;
  /** Permission bits (fileMode without the type). */
  mode: number;
  uid: number;
  gid: number;
  why: string;
}

export const DEFAULT_DEVICES: readonly (readonly [string, number, number])[] = [
  ['/dev/null', 1, 3],
  ['/dev/zero', 1, 5],
  ['/dev/full', 1, 7],
  ['/dev/random', 1, 8],
  ['/dev/urandom', 1, 9],
  ['/dev/tty', 5, 0],
];

/** The default devices (those linux.devices does not redefine), then linux.devices in order. */
export function planDevices(spec: Spec): DeviceNode[] {
  const configured = spec.linux?.devices ?? [];
  const out: DeviceNode[] = [];
  for (const [p, major, minor] of DEFAULT_DEVICES) {
    if (configured.some((d) => path.posix.normalize(d.path) === p)) continue;
    out.push({ path: p, type: 'c', major, minor, mode: 0o666, uid: 0, gid: 0, why: `default device ${p}` });
  }
  configured.forEach((d, i) => {
    const field = `linux.devices[${i}]`;
    const p = path.posix.normalize(d.path);
    if (!p.startsWith('/dev/') || p.includes('/../')) throw new RuntimeError(`${field}.path: "${d.path}" must be under /dev`, { code: 'EINVAL' });
    const type = d.type === 'u' ? 'c' : d.type;
    if (type !== 'c' && type !== 'b' && type !== 'p') throw new RuntimeError(`${field}.type: "${d.type}" is not one of c, b, u, p`, { code: 'EINVAL' });
    if (type !== 'p' && (d.major === undefined || d.minor === undefined)) {
      throw new RuntimeError(`${field}: major and minor are required for type ${d.type}`, { code: 'EINVAL' });
    }
    if (out.some((x) => x.path === p)) throw new RuntimeError(`${field}.path: ${p} is listed twice`, { code: 'EINVAL' });
    out.push({ path: p, type, major: d.major ?? 0, minor: d.minor ?? 0, mode: (d.fileMode ?? 0o666) & 0o7777, uid: d.uid ?? 0, gid: d.gid ?? 0, why: `${field} ${p}` });
  });
  return out;
}

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

/** Makes one node in the rootfs; `bind` (a user namespace) binds the host's node instead of mknod. */
export function makeDevice(rootfs: string, d: DeviceNode, bind: boolean): void {
  try {
    if (bind && d.type !== 'p') return bindDevice(rootfs, d, 'in a user namespace');
    const dir = mkdirAllInRoot(rootfs, path.posix.dirname(d.path), { why: d.why });
    try {
      const at = path.join(fdPath(dir), path.posix.basename(d.path));
      const kind = d.type === 'b' ? S_IFBLK : d.type === 'p' ? S_IFIFO : S_IFCHR;
      try {
        sys.mknod(at, kind | d.mode, d.major, d.minor, d.why);
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === 'EEXIST') return; // the rootfs has it already (runc keeps it)
        if (code === 'EPERM' && d.type !== 'p') return bindDevice(rootfs, d, 'mknod not permitted');
        throw e;
      }
      fs.chmodSync(at, d.mode); // mknod's mode went through the umask
      fs.lchownSync(at, d.uid, d.gid);
    } finally {
      sys.close(dir);
    }
  } catch (e) {
    if (e instanceof RuntimeError && e.message.startsWith(d.why)) throw e;
    throw new RuntimeError(`${d.why}: cannot create ${d.path} (${d.type} ${d.major}:${d.minor}): ${messageOf(e)}`, { cause: e });
  }
}

/** runc's bindMountDeviceNode: an empty file with the host's node bound on it. */
function bindDevice(rootfs: string, d: DeviceNode, reason: string): void {
  const fd = createInRoot(rootfs, d.path, { why: d.why });
  try {
    sys.mount(d.path, fdPath(fd), null, MS.BIND, null, `${d.why} (the host's node bound: ${reason})`);
  } finally {
    sys.close(fd);
  }
}

/** /dev/fd, /dev/std{in,out,err}, /dev/core (when the host has /proc/kcore), and /dev/ptmx -> pts/ptmx. */
export function devLinks(): [string, string][] {
  const links: [string, string][] = [
    ['fd', '/proc/self/fd'],
    ['stdin', '/proc/self/fd/0'],
    ['stdout', '/proc/self/fd/1'],
    ['stderr', '/proc/self/fd/2'],
  ];
  if (fs.existsSync('/proc/kcore')) links.push(['core', '/proc/kcore']);
  return links;
}

export function makeDevLinks(rootfs: string): void {
  const dev = mkdirAllInRoot(rootfs, '/dev', { why: 'default /dev links' });
  try {
    for (const [name, to] of devLinks()) {
      try {
        fs.symlinkSync(to, path.join(fdPath(dev), name));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new RuntimeError(`cannot link /dev/${name} -> ${to}: ${messageOf(e)}`, { cause: e });
      }
    }
    // The pty master comes from the container's devpts (newinstance): whatever was there goes.
    const ptmx = path.join(fdPath(dev), 'ptmx');
    try {
      fs.unlinkSync(ptmx);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new RuntimeError(`cannot replace /dev/ptmx: ${messageOf(e)}`, { cause: e });
    }
    fs.symlinkSync('pts/ptmx', ptmx);
  } finally {
    sys.close(dev);
  }
}
