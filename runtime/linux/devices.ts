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
import { RuntimeError } from '../sys/errors';
import type { ProgramBuilder } from '../sys/program';

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

/**
 * One node in the rootfs: mknod, its mode and owner; with `bind` (a user
 * namespace), or when mknod is refused, the host's node bound onto an empty
 * file instead (runc's bindMountDeviceNode). A node the rootfs has already
 * is kept, as runc does.
 */
export function emitDevice(b: ProgramBuilder, rootfs: string, d: DeviceNode, bind: boolean): void {
  const errmsg = `${d.why}: cannot create ${d.path} (${d.type} ${d.major}:${d.minor})`;
  const o = { why: d.why, errmsg };
  const end = b.label();
  if (!bind || d.type === 'p') {
    const kept = b.label();
    const refused = b.label();
    const dir = b.openInRoot(rootfs, path.posix.dirname(d.path), 'mkdir', {}, o);
    const at = { slot: dir, rest: '/' + path.posix.basename(d.path) };
    const kind = d.type === 'b' ? S_IFBLK : d.type === 'p' ? S_IFIFO : S_IFCHR;
    b.mknod(at, kind | d.mode, d.major, d.minor, { ...o, on: [{ on: 'EEXIST', to: kept }, ...(d.type !== 'p' ? [{ on: 'EPERM', to: refused }] : [])] });
    b.chmod(at, d.mode, { why: `${d.why}: mknod's mode went through the umask`, errmsg });
    b.lchown(at, d.uid, d.gid, o);
    b.place(kept);
    b.close(dir);
    b.jump(end);
    b.place(refused);
    b.close(dir);
    if (d.type === 'p') {
      b.place(end);
      return;
    }
  }
  const reason = bind ? 'in a user namespace' : 'mknod not permitted';
  const f = b.openInRoot(rootfs, d.path, 'file', {}, o);
  b.mount(d.path, { slot: f }, null, MS.BIND, null, { why: `${d.why} (the host's node bound: ${reason})`, errmsg });
  b.close(f);
  b.place(end);
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

export function emitDevLinks(b: ProgramBuilder, rootfs: string): void {
  const o = { why: 'default /dev', errmsg: 'default /dev' };
  const dev = b.openInRoot(rootfs, '/dev', 'mkdir', {}, o);
  for (const [name, to] of devLinks()) {
    b.symlink(to, { slot: dev, rest: `/${name}` }, { why: 'default /dev', errmsg: `cannot link /dev/${name} -> ${to}`, on: [{ on: 'EEXIST', to: 'next' }] });
  }
  b.unlink({ slot: dev, rest: '/ptmx' }, { why: 'default /dev: ptmx is the devpts one', errmsg: 'cannot replace /dev/ptmx', on: [{ on: 'ENOENT', to: 'next' }] });
  b.symlink('pts/ptmx', { slot: dev, rest: '/ptmx' }, { why: 'default /dev: ptmx is the devpts one', errmsg: 'cannot link /dev/ptmx -> pts/ptmx' });
  b.close(dev);
}
