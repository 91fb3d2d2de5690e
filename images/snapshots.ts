// Snapshots: each layer unpacked once, into a directory of its own named by
// its diff_id, so images that share a layer share its directory:
//
//   <root>/snapshots/sha256/<hex>/   the layer, whiteouts in overlayfs form
//   <root>/snapshots/tmp/<random>/   a layer being unpacked
//
// Since whiteouts are already in overlayfs form, a container's rootfs is an
// overlay mount of the layer dirs (top layer first) under a writable upper.
// Like containerd's snapshotters, `rootfsMount` only *describes* the mount;
// `mountRootfs` performs it. Where overlayfs is not available, `copyRootfs`
// builds a plain directory instead, applying the whiteouts as it copies.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError, wrap } from '../runtime/sys/errors';
import { ioctlPtr, mknod, mount, umount2 } from '../runtime/sys/libc';
import { withLock } from './lock';
import { DigestMismatchError } from './store';
import { lgetxattr, llistxattr, lsetxattr } from './xattr';
import { OVERLAY_OPAQUE_XATTR } from './unpack';

const FS_IOC_GETFLAGS = 0x80086601;
const FS_IOC_SETFLAGS = 0x40086602;
const FS_TOPDIR_FL = 0x00020000;

/**
 * Marks `dir` as the top of unrelated hierarchies (chattr +T), so ext4's
 * Orlov allocator puts each layer's tree in a block group of its own instead
 * of next to its parent's. Without a journal, ext4 skips inodes freed in the
 * last seconds (minutes, if their table block is still dirty), rescanning
 * them on every new inode: right after a large rm (an image removed, a
 * failed pull cleaned up) that made each file creation cost ~0.4 ms; in a
 * fresh group it costs ~0.02 ms. A hint only: filesystems without the flag
 * (tmpfs, xfs, overlay) are left alone.
 */
function markTopdir(dir: string): void {
  let fd = -1;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    const flags = ioctlPtr(fd, FS_IOC_GETFLAGS, Buffer.alloc(8), 'read the snapshot dir flags', 'FS_IOC_GETFLAGS');
    const v = flags.readUInt32LE(0);
    if ((v & FS_TOPDIR_FL) === 0) {
      flags.writeUInt32LE(v | FS_TOPDIR_FL, 0);
      ioctlPtr(fd, FS_IOC_SETFLAGS, flags, 'spread layer trees over block groups (chattr +T)', 'FS_IOC_SETFLAGS');
    }
  } catch {
    // ENOTTY/EOPNOTSUPP: no such flag here.
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

export class Snapshots {
  constructor(readonly root: string) {}

  private get base(): string {
    return path.join(this.root, 'snapshots');
  }

  dir(diffId: string): string {
    const [alg, hex] = diffId.split(':');
    if (alg !== 'sha256' || !hex || !/^[a-f0-9]{64}$/.test(hex)) throw new RuntimeError(`bad diff_id "${diffId}"`, { code: 'EDIGEST' });
    return path.join(this.base, 'sha256', hex);
  }

  has(diffId: string): boolean {
    return fs.existsSync(this.dir(diffId));
  }

  /** An empty lower dir, for images without layers (overlay needs one). */
  emptyDir(): string {
    const d = path.join(this.base, 'empty');
    fs.mkdirSync(d, { recursive: true, mode: 0o755 });
    return d;
  }

  /**
   * Creates the snapshot for `diffId` unless it exists: `fill` unpacks into a
   * temp dir and returns the diff_id it computed; on a match the dir is
   * renamed into place, otherwise (or on any error) it is removed.
   */
  async create(diffId: string, fill: (tmp: string) => Promise<string>): Promise<'exists' | 'created'> {
    const final = this.dir(diffId);
    if (fs.existsSync(final)) return 'exists';
    return withLock(path.join(this.root, 'locks'), `snapshot-${diffId}`, async () => {
      if (fs.existsSync(final)) return 'exists';
      const tmpBase = path.join(this.base, 'tmp');
      fs.mkdirSync(tmpBase, { recursive: true, mode: 0o700 });
      markTopdir(tmpBase);
      const tmp = path.join(tmpBase, crypto.randomBytes(8).toString('hex'));
      fs.mkdirSync(tmp, 0o755);
      try {
        const got = await fill(tmp);
        if (got !== diffId) throw new DigestMismatchError(diffId, got, 'unpacked layer (diff_id)');
        fs.mkdirSync(path.dirname(final), { recursive: true });
        fs.renameSync(tmp, final);
        return 'created';
      } catch (e) {
        fs.rmSync(tmp, { recursive: true, force: true });
        throw e;
      }
    });
  }

  list(): string[] {
    try {
      return fs.readdirSync(path.join(this.base, 'sha256')).map((h) => `sha256:${h}`);
    } catch {
      return [];
    }
  }

  remove(diffId: string): void {
    fs.rmSync(this.dir(diffId), { recursive: true, force: true });
  }
}

/** How a container's rootfs is made: the mount(2) arguments, or a copy. */
export type RootfsMount =
  | { type: 'overlay'; source: 'overlay'; target: string; options: string[]; upper: string; work: string; lowers: string[] }
  | { type: 'copy'; target: string; lowers: string[] };

/**
 * Describes the overlay for a rootfs: `lowers` bottom layer first (as in
 * rootfs.diff_ids); overlayfs wants them top first.
 */
export function rootfsMount(lowers: readonly string[], upper: string, work: string, target: string): RootfsMount {
  const top = [...lowers].reverse();
  return {
    type: 'overlay',
    source: 'overlay',
    target,
    upper,
    work,
    lowers: [...lowers],
    options: [`lowerdir=${top.join(':')}`, `upperdir=${upper}`, `workdir=${work}`],
  };
}

let overlayKnown: boolean | undefined;

export function overlayAvailable(): boolean {
  if (overlayKnown === undefined) {
    try {
      overlayKnown = /\boverlay$/m.test(fs.readFileSync('/proc/filesystems', 'utf8'));
    } catch {
      overlayKnown = false;
    }
  }
  return overlayKnown;
}

/** Performs a RootfsMount: mounts the overlay, or copies the layers. */
export function mountRootfs(m: RootfsMount): void {
  fs.mkdirSync(m.target, { recursive: true, mode: 0o755 });
  if (m.type === 'copy') {
    copyRootfs(m.lowers, m.target);
    return;
  }
  fs.mkdirSync(m.upper, { recursive: true, mode: 0o755 });
  fs.mkdirSync(m.work, { recursive: true, mode: 0o700 });
  const data = m.options.join(',');
  if (data.length >= 4096) {
    throw new RuntimeError(`cannot mount the rootfs at ${m.target}: overlay options are ${data.length} bytes, over the page size (too many layers)`, { code: 'E2BIG' });
  }
  try {
    mount('overlay', m.target, 'overlay', 0, data, 'image rootfs');
  } catch (e) {
    throw wrap(e, `cannot mount the rootfs at ${m.target}`);
  }
}

export function unmountRootfs(target: string): void {
  try {
    umount2(target, 2 /* MNT_DETACH */, 'image rootfs');
  } catch (e) {
    if ((e as { code?: string }).code !== 'EINVAL' && (e as { code?: string }).code !== 'ENOENT') throw e;
  }
}

function isWhiteout(st: fs.Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/** Copies one entry with its metadata; `dst` must not exist. */
function copyEntry(src: string, dst: string, st: fs.Stats): void {
  if (st.isDirectory()) fs.mkdirSync(dst, st.mode & 0o7777);
  else if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dst);
  else if (st.isFile()) fs.copyFileSync(src, dst);
  else {
    const major = Number((BigInt(st.rdev) >> 8n) & 0xfffn);
    const minor = Number((BigInt(st.rdev) & 0xffn) | ((BigInt(st.rdev) >> 12n) & 0xfff00n));
    mknod(dst, st.mode, major, minor, 'copy rootfs');
  }
  fs.lchownSync(dst, st.uid, st.gid);
  if (!st.isSymbolicLink()) fs.chmodSync(dst, st.mode & 0o7777);
  for (const name of llistxattr(src)) {
    if (name === OVERLAY_OPAQUE_XATTR) continue;
    const v = lgetxattr(src, name);
    if (v) lsetxattr(dst, name, v, 'copy rootfs');
  }
}

/**
 * Merges layer dirs (bottom first) into `target` as overlayfs would show
 * them: a 0/0 char device deletes the path below it, an opaque directory
 * hides everything below it. Hardlinks within a layer stay hardlinks.
 */
export function copyRootfs(lowers: readonly string[], target: string): void {
  for (const layer of lowers) {
    const links = new Map<string, string>();
    const dirTimes: [string, fs.Stats][] = [];
    const walk = (rel: string): void => {
      const src = path.join(layer, rel);
      for (const name of fs.readdirSync(src)) {
        const r = path.join(rel, name);
        const s = path.join(layer, r);
        const d = path.join(target, r);
        const st = fs.lstatSync(s);
        let existing: fs.Stats | null = null;
        try {
          existing = fs.lstatSync(d);
        } catch {
          existing = null;
        }
        if (isWhiteout(st)) {
          if (existing) fs.rmSync(d, { recursive: true, force: true });
          continue;
        }
        const opaque = st.isDirectory() && lgetxattr(s, OVERLAY_OPAQUE_XATTR)?.toString() === 'y';
        if (existing && (!st.isDirectory() || !existing.isDirectory() || opaque)) {
          fs.rmSync(d, { recursive: true, force: true });
          existing = null;
        }
        const key = `${st.dev}:${st.ino}`;
        if (st.isFile() && st.nlink > 1 && links.has(key)) {
          fs.linkSync(links.get(key)!, d);
          continue;
        }
        if (!existing) copyEntry(s, d, st);
        else {
          fs.lchownSync(d, st.uid, st.gid);
          fs.chmodSync(d, st.mode & 0o7777);
        }
        if (st.isFile() && st.nlink > 1) links.set(key, d);
        if (st.isDirectory()) {
          walk(r);
          dirTimes.push([d, st]);
        } else {
          fs.lutimesSync(d, st.atime, st.mtime);
        }
      }
    };
    walk('');
    for (let i = dirTimes.length - 1; i >= 0; i--) {
      const [d, st] = dirTimes[i]!;
      fs.lutimesSync(d, st.atime, st.mtime);
    }
  }
}
