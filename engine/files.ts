// Files in and out of a container, as docker's `cp` and `diff` see them.
//
// A container's filesystem is a view: its rootfs (the overlay, mounted for
// the copy when the container is stopped) with its bind mounts, volumes and
// the /etc/hosts, /etc/hostname, /etc/resolv.conf files over it. A path in
// the container is resolved in that view: symlinks are followed as the
// container would follow them (an absolute target starts again at the
// container's /, `..` stops there) and each step is mapped to the host
// directory that holds it.
//
// The resolution by name only picks the right host directory; every open
// goes through the kernel: the start is opened with openat2 RESOLVE_IN_ROOT
// inside that directory, and the walk below it is through directory fds with
// O_NOFOLLOW, so a running container that swaps a directory for a symlink
// mid-copy makes the copy fail, never reach the host.
//
// Trees move as a stream of entries (a reader, a writer), so the same code
// copies container→host, host→container, and to and from a tar stream.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import * as tarStream from 'tar-stream';
import { RuntimeError, wrap } from '../runtime/sys/errors';
import * as sys from '../runtime/sys/libc';
import { fdPath, openInRoot, secureJoin } from '../runtime/linux/securejoin';
import { ContainerStore, liveStatus, withFileLockAsync, type Container, type Paths } from './containers';
import type { RootfsMount } from '../images/snapshots';
import { TarWriter, type TarSink } from '../images/tarwriter';

const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';
const CHUNK = 1 << 20;

// ---- the container's view ----------------------------------------------------------

export interface ViewMount {
  /** Where the container sees it: canonical (no symlinks), '/' for the rootfs. */
  dest: string;
  /** The host directory (or file) behind it. */
  host: string;
  readonly: boolean;
  /** A bind of one file (/etc/hosts, `-v /a/file:/b`): no paths below it. */
  file: boolean;
}

export interface ContainerView {
  container: Container;
  rootfs: string;
  /** Longest destination first, so the first prefix match is the innermost mount. */
  mounts: ViewMount[];
}

function readJson<T>(file: string, what: string): T {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (e) {
    throw wrap(e, `cannot read ${what} ${file}`);
  }
}

function rootfsRecord(paths: Paths, c: Container): RootfsMount {
  const { ROOTFS_RECORD } = require('../images/bundle') as typeof import('../images/bundle');
  return readJson<RootfsMount>(path.join(paths.bundle(c.id), ROOTFS_RECORD), `the rootfs record of container ${c.name}`);
}

function isMounted(target: string): boolean {
  const want = path.resolve(target);
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => (l.split(' ')[4] ?? '').replace(/\\040/g, ' ') === want);
}

const components = (p: string): string[] => p.split('/').filter((c) => c !== '' && c !== '.');

/** The container path `dest` with the rootfs's symlinks resolved, as the runtime resolved it to mount there. */
function canonicalDest(rootfs: string, dest: string): string {
  return '/' + path.relative(rootfs, secureJoin(rootfs, dest));
}

function viewOf(paths: Paths, c: Container, rootfs: string): ContainerView {
  const { volumeDir } = require('./volumes') as typeof import('./volumes');
  const mounts: ViewMount[] = [{ dest: '/', host: rootfs, readonly: c.hostConfig.readonlyRootfs, file: false }];
  const add = (dest: string, host: string, readonly: boolean): void => {
    let st: fs.Stats;
    try {
      st = fs.statSync(host);
    } catch {
      return; // a source gone since the start: docker cp sees the empty mount point
    }
    mounts.push({ dest: canonicalDest(rootfs, dest), host, readonly, file: !st.isDirectory() });
  };
  const d = paths.dir(c.id);
  if (c.hostConfig.networkMode !== 'host') add('/etc/hostname', path.join(d, 'hostname'), false);
  add('/etc/hosts', path.join(d, 'hosts'), false);
  add('/etc/resolv.conf', path.join(d, 'resolv.conf'), false);
  for (const m of c.hostConfig.mounts) {
    if (m.type === 'bind') add(m.destination, m.source, m.readonly);
    else if (m.type === 'volume') add(m.destination, path.join(volumeDir(paths, m.source), '_data'), m.readonly);
    // tmpfs lives only in the container's mount namespace: the rootfs's mount point is what we see
  }
  mounts.sort((a, b) => b.dest.length - a.dest.length);
  return { container: c, rootfs, mounts };
}

const isLive = (c: Container): boolean => ['running', 'paused', 'restarting'].includes(liveStatus(c));

/**
 * Runs fn with the container's view. A stopped container's overlay is
 * mounted for fn and unmounted after, unless the container started
 * meanwhile (its start found the rootfs mounted and uses it: its stop
 * unmounts). The per-container lock keeps two copies from mounting one
 * upper dir twice.
 */
export async function withContainerView<T>(paths: Paths, ref: string, op: string, fn: (v: ContainerView) => Promise<T>): Promise<T> {
  const store = new ContainerStore(paths);
  const c = store.resolve(ref);
  return withFileLockAsync(path.join(paths.dir(c.id), 'files.lock'), async () => {
    const m = rootfsRecord(paths, c);
    let mountedHere = false;
    if (m.type === 'overlay' && !isMounted(m.target)) {
      const { mountRootfs } = require('../images/snapshots') as typeof import('../images/snapshots');
      try {
        mountRootfs(m);
      } catch (e) {
        throw wrap(e, `cannot ${op} container ${c.name}: mounting its rootfs`);
      }
      mountedHere = true;
    }
    try {
      return await fn(viewOf(paths, c, m.target));
    } finally {
      if (mountedHere && !isLive(store.read(c.id))) {
        const { unmountRootfs } = require('../images/snapshots') as typeof import('../images/snapshots');
        unmountRootfs(m.target);
      }
    }
  });
}

function locate(v: ContainerView, cpath: string): { m: ViewMount; rel: string } {
  for (const m of v.mounts) {
    if (m.dest === '/' || cpath === m.dest || cpath.startsWith(m.dest + '/')) {
      return { m, rel: m.dest === '/' ? cpath.slice(1) : cpath.slice(m.dest.length + 1) };
    }
  }
  throw new RuntimeError(`no mount holds ${cpath}`, { code: 'EINTERNAL' }); // the rootfs holds every path
}

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw e;
  }
}

/**
 * A container path with its symlinks resolved in the view (the last one
 * only with `followLast`); never leaves the container's /. Missing tail
 * components are kept.
 */
export function resolveInView(v: ContainerView, unsafe: string, followLast: boolean): string {
  let pending = components(unsafe);
  let done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const comp = pending.shift()!;
    if (comp === '..') {
      done.pop();
      continue;
    }
    const cand = '/' + [...done, comp].join('/');
    const { m, rel } = locate(v, cand);
    // A mount point is the mount's root: whatever the rootfs has under it is hidden.
    const st = m.dest === cand && m.dest !== '/' ? null : lstatOrNull(path.join(m.host, rel));
    if (m.dest !== cand && !st) {
      const rest: string[] = [];
      for (const c of [...done, comp, ...pending]) {
        if (c === '..') rest.pop();
        else rest.push(c);
      }
      return '/' + rest.join('/');
    }
    if (st?.isSymbolicLink() && (pending.length > 0 || followLast)) {
      if (++links > 255) throw new RuntimeError(`cannot resolve ${unsafe} in container ${v.container.name}: too many levels of symbolic links`, { code: 'ELOOP' });
      const target = fs.readlinkSync(path.join(m.host, rel));
      if (target.startsWith('/')) done = [];
      pending = [...components(target), ...pending];
      continue;
    }
    done.push(comp);
  }
  return '/' + done.join('/');
}

// ---- places: an entry named in a directory fd ---------------------------------------

/** `name` in the directory `dirFd` (an O_PATH fd), or with name '' the object `dirFd` itself. */
interface Place {
  dirFd: number;
  name: string;
}

const placePath = (p: Place): string => (p.name === '' ? fdPath(p.dirFd) : `${fdPath(p.dirFd)}/${p.name}`);
/** lstat of the entry (a name '' place is the fd's object: stat through the magic link). */
const placeStat = (p: Place): fs.Stats | null => (p.name === '' ? fs.statSync(placePath(p)) : lstatOrNull(placePath(p)));

const O_PATH_DIR = sys.O.PATH | sys.O.DIRECTORY | sys.O.CLOEXEC;

/** Opens a child directory without following a symlink there (one swapped in fails with ENOTDIR). */
function openChildDir(p: Place, why: string): number {
  return sys.open(placePath(p), O_PATH_DIR | (p.name === '' ? 0 : sys.O.NOFOLLOW), 0, why);
}

/** The place of a host path we trust (a mount source, the caller's own file). */
function hostPlace(host: string, why: string): Place {
  const abs = path.resolve(host);
  if (abs === '/') return { dirFd: sys.open('/', O_PATH_DIR, 0, why), name: '' };
  return { dirFd: sys.open(path.dirname(abs), O_PATH_DIR, 0, why), name: path.basename(abs) };
}

/** The place of a canonical container path: its parent opened by the kernel inside its mount. */
function viewPlace(v: ContainerView, cpath: string, why: string): { place: Place; mount: ViewMount } {
  const { m, rel } = locate(v, cpath);
  if (m.file) {
    if (rel !== '') throw new RuntimeError(`${cpath}: ${m.dest} is a file`, { code: 'ENOTDIR' });
    return { place: hostPlace(m.host, why), mount: m };
  }
  if (rel === '') return { place: { dirFd: sys.open(m.host, O_PATH_DIR, 0, why), name: '' }, mount: m };
  const parent = path.posix.dirname(rel);
  const dirFd = openInRoot(m.host, parent === '.' ? '' : parent, { directory: true, why });
  return { place: { dirFd, name: path.posix.basename(rel) }, mount: m };
}

// ---- entries ------------------------------------------------------------------

export type EntryKind = 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block' | 'link';

export interface Entry {
  /** '/'-separated path below the copied object; '' is the object itself. */
  rel: string;
  kind: EntryKind;
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  size: number;
  /** symlink target; for a hardlink ('link'), the rel of the entry it links to. */
  linkname?: string;
  rdev?: number;
  /** A file's bytes. */
  content?: () => AsyncIterable<Buffer>;
}

function kindOf(st: fs.Stats): EntryKind | null {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return null; // a socket
}

/** A file's bytes through a fresh open of the place: O_NOFOLLOW, and checked to be a regular file. */
function fileContent(p: Place): () => AsyncIterable<Buffer> {
  const file = placePath(p);
  const flags = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | (p.name === '' ? 0 : fs.constants.O_NOFOLLOW);
  return async function* () {
    const fd = fs.openSync(file, flags);
    try {
      if (!fs.fstatSync(fd).isFile()) throw new RuntimeError(`${file} is no longer a regular file`, { code: 'EINVAL' });
      for (;;) {
        const buf = Buffer.allocUnsafe(CHUNK);
        const n = fs.readSync(fd, buf, 0, CHUNK, null);
        if (n === 0) return;
        yield buf.subarray(0, n);
      }
    } finally {
      fs.closeSync(fd);
    }
  };
}

interface ReadOptions {
  /** A mount on a container path below the top (the view's binds), read from its host source instead. */
  mountAt?: ((rel: string) => ViewMount | undefined) | undefined;
  warn: (msg: string) => void;
}

/**
 * The tree at `top`, parents before children, names sorted. Directories are
 * walked through their fds, so nothing below `top` can lead elsewhere.
 * The caller closes `top.dirFd` (after the walk).
 */
export async function* readTree(top: Place, opts: ReadOptions): AsyncGenerator<Entry> {
  const links = new Map<string, string>();
  async function* visit(p: Place, rel: string): AsyncGenerator<Entry> {
    const st = placeStat(p);
    if (!st) throw new RuntimeError(`${rel || '.'}: no such file or directory`, { code: 'ENOENT' });
    const kind = kindOf(st);
    if (!kind) {
      opts.warn(`skipping ${rel || '.'}: a socket cannot be copied`);
      return;
    }
    const base = { rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtimeMs: st.mtimeMs, size: 0 };
    const key = `${st.dev}:${st.ino}`;
    if (kind !== 'dir' && st.nlink > 1 && links.has(key)) {
      yield { ...base, kind: 'link', linkname: links.get(key)! };
      return;
    }
    if (kind !== 'dir' && st.nlink > 1) links.set(key, rel);
    if (kind === 'file') yield { ...base, kind, size: st.size, content: fileContent(p) };
    else if (kind === 'symlink') yield { ...base, kind, linkname: fs.readlinkSync(placePath(p)) };
    else if (kind === 'char' || kind === 'block') yield { ...base, kind, rdev: st.rdev };
    else if (kind === 'fifo') yield { ...base, kind };
    if (kind !== 'dir') return;
    yield { ...base, kind };
    const fd = openChildDir(p, `copy ${rel || '.'}`);
    try {
      for (const name of fs.readdirSync(fdPath(fd)).sort()) {
        const childRel = rel === '' ? name : `${rel}/${name}`;
        const m = opts.mountAt?.(childRel);
        if (m) {
          const hp = hostPlace(m.host, `copy the mount at ${m.dest}`);
          try {
            yield* visit(hp, childRel);
          } finally {
            sys.close(hp.dirFd);
          }
          continue;
        }
        yield* visit({ dirFd: fd, name }, childRel);
      }
    } finally {
      sys.close(fd);
    }
  }
  yield* visit(top, '');
}

interface WriteOptions {
  /** uid/gid for what is written; without, the entry's own (docker cp -a). */
  owner?: { uid: number; gid: number } | undefined;
  /** Where a path below the top is a mount of the view (its host source is written instead). */
  mountAt?: ((rel: string) => ViewMount | undefined) | undefined;
  /** The top is an existing directory that the entries go into ('' entries update it). */
  into?: boolean;
  what: string;
}

function devSplit(rdev: number): [number, number] {
  const d = BigInt(rdev);
  return [Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn)), Number((d & 0xffn) | ((d >> 12n) & ~0xffn))];
}

/**
 * Writes entries at `top`: the '' entry becomes `top` (a directory merges
 * with an existing one, anything else replaces what is there), the rest go
 * below it. Every name is made through its parent's fd with O_NOFOLLOW.
 * The caller closes `top.dirFd`.
 */
export async function writeTree(entries: AsyncIterable<Entry>, top: Place, opts: WriteOptions): Promise<number> {
  // The open directory chain: stack[i] is the dir at rel stack[i].rel.
  const stack: { rel: string; fd: number; times?: { atime: number; mtime: number } }[] = [];
  const fail = (rel: string, why: string, code = 'EINVAL'): never => {
    throw new RuntimeError(`${opts.what}: ${rel || '.'}: ${why}`, { code });
  };
  const closeTop = (): void => {
    const d = stack.pop()!;
    if (d.times) {
      try {
        fs.utimesSync(fdPath(d.fd), d.times.atime, d.times.mtime);
      } catch {
        // a mount root we may not touch: the times are cosmetic
      }
    }
    sys.close(d.fd);
  };
  const isUnder = (rel: string, dir: string): boolean => dir === '' || rel.startsWith(dir + '/');

  /** The fd of directory `rel`, made (0755) if missing. */
  const dirFor = (rel: string): number => {
    while (stack.length > 1 && !(stack[stack.length - 1]!.rel === rel || isUnder(rel, stack[stack.length - 1]!.rel))) closeTop();
    const have = stack[stack.length - 1];
    if (!have) return fail(rel, 'no directory to write into', 'EINTERNAL');
    if (have.rel === rel) return have.fd;
    const rest = (have.rel === '' ? rel : rel.slice(have.rel.length + 1)).split('/');
    let cur = have.rel;
    for (const name of rest) {
      const next = cur === '' ? name : `${cur}/${name}`;
      const parentFd = stack[stack.length - 1]!.fd;
      stack.push({ rel: next, fd: openDirIn({ dirFd: parentFd, name }, next, true) });
      cur = next;
    }
    return stack[stack.length - 1]!.fd;
  };

  /** A child dir (made if missing, or the view's mount there). */
  const openDirIn = (p: Place, rel: string, create: boolean, mode = 0o755): number => {
    const m = opts.mountAt?.(rel);
    if (m) {
      if (m.readonly) fail(rel, `the mount at ${m.dest} is read-only`, 'EROFS');
      if (m.file) fail(rel, `${m.dest} is a file mount, not a directory`, 'ENOTDIR');
      return sys.open(m.host, O_PATH_DIR, 0, opts.what);
    }
    const st = placeStat(p);
    if (st && !st.isDirectory()) {
      fail(rel, 'cannot overwrite a non-directory with a directory', 'ENOTDIR');
    }
    if (!st) {
      if (!create) fail(rel, 'no such directory', 'ENOENT');
      fs.mkdirSync(placePath(p), { mode });
    }
    return openChildDir(p, opts.what);
  };

  const applyMeta = (pathStr: string, e: Entry, isLink: boolean): void => {
    const o = opts.owner ?? { uid: e.uid, gid: e.gid };
    fs.lchownSync(pathStr, o.uid, o.gid);
    // chown clears set-id bits: the mode goes after it
    if (!isLink) fs.chmodSync(pathStr, e.mode);
    const t = e.mtimeMs / 1000;
    fs.lutimesSync(pathStr, t, t);
  };

  const writeAt = async (p: Place, e: Entry): Promise<void> => {
    const target = placePath(p);
    const m = opts.mountAt?.(e.rel);
    if (m?.readonly) fail(e.rel, `the mount at ${m.dest} is read-only`, 'EROFS');
    const st = placeStat(p);
    if (e.kind === 'dir') {
      const fd = openDirIn(p, e.rel, true, e.mode);
      stack.push({ rel: e.rel, fd, times: { atime: e.mtimeMs / 1000, mtime: e.mtimeMs / 1000 } });
      const o = opts.owner ?? { uid: e.uid, gid: e.gid };
      fs.chownSync(fdPath(fd), o.uid, o.gid);
      fs.chmodSync(fdPath(fd), e.mode);
      return;
    }
    if (m?.file && e.kind === 'file') {
      // A file bind (/etc/hosts): written in place, the mount holds that inode.
      await writeContent(m.host, e, fs.constants.O_TRUNC);
      return;
    }
    if (st?.isDirectory()) fail(e.rel, 'cannot overwrite a directory with a non-directory', 'EISDIR');
    // Replace what is there (a symlink is replaced, never followed), keep a regular file's inode.
    if (st && !(st.isFile() && e.kind === 'file')) fs.unlinkSync(target);
    switch (e.kind) {
      case 'file':
        await writeContent(target, e, st ? fs.constants.O_TRUNC : fs.constants.O_CREAT | fs.constants.O_EXCL);
        applyMeta(target, e, false);
        return;
      case 'symlink':
        fs.symlinkSync(e.linkname ?? '', target);
        applyMeta(target, e, true);
        return;
      case 'link': {
        const to = e.linkname ?? '';
        const parent = path.posix.dirname(to);
        const fd = walkDirs(parent === '.' ? '' : parent);
        try {
          fs.linkSync(`${fdPath(fd)}/${path.posix.basename(to)}`, target);
        } finally {
          sys.close(fd);
        }
        return;
      }
      case 'fifo':
      case 'char':
      case 'block': {
        const type = e.kind === 'fifo' ? fs.constants.S_IFIFO : e.kind === 'char' ? fs.constants.S_IFCHR : fs.constants.S_IFBLK;
        const [major, minor] = devSplit(e.rdev ?? 0);
        sys.mknod(target, type | e.mode, major, minor, opts.what);
        applyMeta(target, e, false);
        return;
      }
    }
  };

  /** Opens an existing dir below the top, through fds, no symlinks (a hardlink's source). */
  const walkDirs = (rel: string): number => {
    let fd = sys.open(fdPath(stack[0]!.fd), O_PATH_DIR, 0, opts.what);
    for (const name of rel === '' ? [] : rel.split('/')) {
      const next = sys.open(`${fdPath(fd)}/${name}`, O_PATH_DIR | sys.O.NOFOLLOW, 0, opts.what);
      sys.close(fd);
      fd = next;
    }
    return fd;
  };

  let count = 0;
  try {
    if (opts.into) {
      const st = placeStat(top);
      if (!st?.isDirectory()) fail('', 'not a directory', 'ENOTDIR');
      stack.push({ rel: '', fd: openChildDir(top, opts.what) });
    }
    for await (const e of entries) {
      const parts = e.rel === '' ? [] : e.rel.split('/');
      if (parts.some((c) => c === '..' || c === '.' || c === '')) fail(e.rel, 'a path with "..", "." or an empty component');
      if (e.rel === '') {
        if (stack.length > 0) {
          // into an existing dir (a tar's "./"): its metadata stays ours
          if (e.kind !== 'dir') fail('', 'the top of the archive is not a directory');
          continue;
        }
        await writeAt(top, e);
      } else {
        if (stack.length === 0) fail(e.rel, 'the top of the copy is not a directory', 'ENOTDIR');
        const parent = parts.slice(0, -1).join('/');
        const dirFd = dirFor(parent);
        await writeAt({ dirFd, name: parts[parts.length - 1]! }, e);
      }
      count++;
    }
  } finally {
    while (stack.length > 0) closeTop();
  }
  return count;
}

async function writeContent(file: string, e: Entry, extra: number): Promise<void> {
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW | extra, 0o600);
  try {
    if (!fs.fstatSync(fd).isFile()) throw new RuntimeError(`${file} is not a regular file`, { code: 'EINVAL' });
    if (e.content) {
      for await (const chunk of e.content()) {
        let off = 0;
        while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

// ---- tar streams (cp's "-") ---------------------------------------------------------

/** Entries as a tar, each named under `topName` (docker cp - names them after the source). */
export async function entriesToTar(entries: AsyncIterable<Entry>, topName: string, sink: TarSink): Promise<void> {
  const tar = new TarWriter(sink);
  const name = (rel: string): string => (rel === '' ? topName : `${topName}/${rel}`);
  const TYPES = { file: 'file', dir: 'directory', symlink: 'symlink', fifo: 'fifo', char: 'character-device', block: 'block-device', link: 'link' } as const;
  for await (const e of entries) {
    const h = { name: name(e.rel) + (e.kind === 'dir' ? '/' : ''), type: TYPES[e.kind], mode: e.mode, uid: e.uid, gid: e.gid, mtime: Math.floor(e.mtimeMs / 1000) };
    if (e.kind === 'file') {
      await tar.header({ ...h, size: e.size });
      let written = 0;
      for await (const chunk of e.content!()) {
        const part = chunk.subarray(0, Math.max(0, e.size - written));
        if (part.length > 0) await tar.data(part);
        written += part.length;
      }
      // a file that shrank since its stat: padded to what the header says
      if (written < e.size) await tar.data(Buffer.alloc(e.size - written));
      await tar.pad(e.size);
    } else if (e.kind === 'link') {
      await tar.header({ ...h, linkname: name(e.linkname ?? '') });
    } else if (e.kind === 'char' || e.kind === 'block') {
      const [devmajor, devminor] = devSplit(e.rdev ?? 0);
      await tar.header({ ...h, devmajor, devminor });
    } else {
      await tar.header({ ...h, linkname: e.linkname });
    }
  }
  await tar.finish();
}

/** A tar stream's entries, named relative to the archive's top ("./a" and "a" alike). */
export async function* tarToEntries(input: Readable): AsyncGenerator<Entry> {
  const ex = tarStream.extract();
  input.pipe(ex);
  const rel = (n: string): string => components(n).join('/');
  for await (const item of ex as unknown as AsyncIterable<AsyncIterable<Buffer> & { header: tarStream.Header }>) {
    const h = item.header;
    const base = { rel: rel(h.name), mode: (h.mode ?? 0o644) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0, mtimeMs: (h.mtime ?? new Date()).getTime(), size: h.size ?? 0 };
    const drain = async (): Promise<void> => {
      for await (const _ of item) {
        // skip the data of entries that have none for us
      }
    };
    switch (h.type) {
      case 'file':
      case 'contiguous-file': {
        const chunks: Buffer[] = [];
        // tar-stream hands out one entry at a time: its bytes are read before the next
        for await (const c of item as AsyncIterable<Buffer>) chunks.push(c);
        yield { ...base, kind: 'file', content: async function* () { yield* chunks; } };
        break;
      }
      case 'directory':
        await drain();
        yield { ...base, kind: 'dir' };
        break;
      case 'symlink':
        await drain();
        yield { ...base, kind: 'symlink', linkname: h.linkname ?? '' };
        break;
      case 'link':
        await drain();
        yield { ...base, kind: 'link', linkname: rel(h.linkname ?? '') };
        break;
      case 'fifo':
        await drain();
        yield { ...base, kind: 'fifo' };
        break;
      case 'character-device':
      case 'block-device': {
        await drain();
        const rdev = Number(sys.makedev(h.devmajor ?? 0, h.devminor ?? 0));
        yield { ...base, kind: h.type === 'character-device' ? 'char' : 'block', rdev };
        break;
      }
      default:
        await drain(); // pax and GNU long-name headers are folded in by tar-stream; the rest we skip
    }
  }
}

// ---- cp -------------------------------------------------------------------------------

export interface CopyOptions {
  /** Keep uid/gid (docker cp -a); otherwise what is written belongs to the container's root or to us. */
  archive: boolean;
  /** Follow a symlink given as the source (docker cp -L). */
  followLink: boolean;
  warn?: ((msg: string) => void) | undefined;
}

/** The name the source has at its destination, and whether only its contents are copied (`SRC/.`). */
function sourceShape(src: string): { base: string; contentsOnly: boolean; trailingSlash: boolean } {
  const contentsOnly = /(^|\/)\.$/.test(src);
  const base = path.posix.basename(src.replace(/\/+\.?$/, '')) || '';
  return { base, contentsOnly: contentsOnly || base === '', trailingSlash: /\/\.?$/.test(src) };
}

type Target = { place: Place; into: boolean };

/**
 * docker cp's destination rules, given what the source is:
 *   DEST a directory        → DEST/basename(SRC) (`SRC/.`: into DEST itself)
 *   DEST missing            → made as DEST (its parent must exist; `DEST/` only for a directory)
 *   DEST a file             → overwritten by a file; a directory cannot go there
 */
function chooseTarget(
  srcIsDir: boolean,
  src: ReturnType<typeof sourceShape>,
  dest: string,
  destStat: fs.Stats | null,
  place: () => Place,
  child: (base: string) => Place,
): Target {
  const destSlash = dest.endsWith('/');
  if (destStat?.isDirectory()) {
    if (srcIsDir && src.contentsOnly) return { place: place(), into: true };
    if (!srcIsDir && src.base === '') throw new RuntimeError(`cannot copy: the source has no name`, { code: 'EINVAL' });
    return { place: child(src.base), into: false };
  }
  if (destStat) {
    if (srcIsDir) throw new RuntimeError(`cannot copy a directory to ${dest}: it is a file`, { code: 'ENOTDIR' });
    if (destSlash) throw new RuntimeError(`cannot copy to ${dest}: not a directory`, { code: 'ENOTDIR' });
    return { place: place(), into: false };
  }
  if (destSlash && !srcIsDir) throw new RuntimeError(`cannot copy to ${dest}: no such directory`, { code: 'ENOENT' });
  return { place: place(), into: false };
}

function checkWritable(v: ContainerView, m: ViewMount, dest: string): void {
  if (m.dest === '/' && v.container.hostConfig.readonlyRootfs) {
    throw new RuntimeError(`cannot copy to ${dest}: the container's root filesystem is read-only`, { code: 'EROFS' });
  }
  if (m.readonly) throw new RuntimeError(`cannot copy to ${dest}: the mount at ${m.dest} is read-only`, { code: 'EROFS' });
}

/** Mounts of the view below the container path `top`, by path relative to it. */
function mountsBelow(v: ContainerView, top: string): (rel: string) => ViewMount | undefined {
  return (rel) => {
    const c = top === '/' ? `/${rel}` : `${top}/${rel}`;
    return v.mounts.find((m) => m.dest === c && m.dest !== '/');
  };
}

/** Runs fn with places it opens, closing all of them after. */
async function withPlaces<T>(fn: (open: (p: Place) => Place) => Promise<T>): Promise<T> {
  const opened: Place[] = [];
  try {
    return await fn((p) => {
      opened.push(p);
      return p;
    });
  } finally {
    for (const p of opened) sys.close(p.dirFd);
  }
}

/** `cp CONTAINER:SRC DEST` (DEST '-': a tar on `stdout`). Returns the entries copied. */
export async function copyFromContainer(paths: Paths, ref: string, src: string, dest: string, opts: CopyOptions & { stdout?: TarSink }): Promise<number> {
  const warn = opts.warn ?? (() => {});
  return withContainerView(paths, ref, 'copy from', (v) => withPlaces(async (open) => {
    const op = `cannot copy ${v.container.name}:${src} to ${dest}`;
    try {
      const shape = sourceShape(src);
      const cpath = resolveInView(v, src, opts.followLink || shape.trailingSlash);
      const from = open(viewPlace(v, cpath, op).place);
      const st = placeStat(from);
      if (!st) throw new RuntimeError(`no such file or directory in the container: ${src}`, { code: 'ENOENT' });
      if (shape.trailingSlash && !st.isDirectory()) throw new RuntimeError(`${src} is not a directory`, { code: 'ENOTDIR' });
      const entries = readTree(from, { mountAt: mountsBelow(v, cpath), warn });
      if (dest === '-') {
        let n = 0;
        const counted = (async function* () {
          for await (const e of entries) {
            n++;
            yield e;
          }
        })();
        await entriesToTar(counted, shape.base || '.', opts.stdout!);
        return n;
      }
      const absDest = path.resolve(dest);
      const destStat = fs.existsSync(absDest) ? fs.statSync(absDest) : null;
      const target = chooseTarget(st.isDirectory(), shape, dest, destStat, () => open(hostPlace(absDest, op)), (b) => open(hostPlace(path.join(absDest, b), op)));
      const owner = opts.archive ? undefined : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
      return await writeTree(entries, target.place, { owner, into: target.into, what: op });
    } catch (e) {
      throw wrap(e, op);
    }
  }));
}

/** `cp SRC CONTAINER:DEST` (SRC '-': a tar on `stdin`, extracted into the directory DEST). */
export async function copyToContainer(paths: Paths, ref: string, src: string, dest: string, opts: CopyOptions & { stdin?: Readable }): Promise<number> {
  const warn = opts.warn ?? (() => {});
  return withContainerView(paths, ref, 'copy to', (v) => withPlaces(async (open) => {
    const op = `cannot copy ${src} to ${v.container.name}:${dest}`;
    try {
      const cdest = resolveInView(v, dest, true);
      checkWritable(v, locate(v, cdest).m, dest);
      const owner = opts.archive ? undefined : { uid: 0, gid: 0 };
      const destPlace = open(viewPlace(v, cdest, op).place);
      const destStat = placeStat(destPlace);
      if (src === '-') {
        if (!destStat?.isDirectory()) throw new RuntimeError(`${dest} is not a directory in the container (a tar is extracted into one)`, { code: 'ENOTDIR' });
        return await writeTree(tarToEntries(opts.stdin!), destPlace, { owner, into: true, mountAt: mountsBelow(v, cdest), what: op });
      }
      const shape = sourceShape(src);
      // -L (or SRC/): the host's symlinks are ours to follow; otherwise a symlink is copied as one
      const absSrc = opts.followLink || shape.trailingSlash ? fs.realpathSync(path.resolve(src)) : path.resolve(src);
      const from = open(hostPlace(absSrc, op));
      const st = placeStat(from);
      if (!st) throw new RuntimeError(`no such file or directory: ${src}`, { code: 'ENOENT' });
      if (shape.trailingSlash && !st.isDirectory()) throw new RuntimeError(`${src} is not a directory`, { code: 'ENOTDIR' });
      const intoChild = destStat?.isDirectory() === true && !(st.isDirectory() && shape.contentsOnly);
      const top = intoChild ? path.posix.join(cdest, shape.base) : cdest;
      const target = chooseTarget(st.isDirectory(), shape, dest, destStat, () => destPlace, (b) => open(viewPlace(v, path.posix.join(cdest, b), op).place));
      return await writeTree(readTree(from, { warn }), target.place, { owner, into: target.into, mountAt: mountsBelow(v, top), what: op });
    } catch (e) {
      throw wrap(e, op);
    }
  }));
}

// ---- diff -----------------------------------------------------------------------------

export type ChangeKind = 'A' | 'C' | 'D';
export interface Change {
  kind: ChangeKind;
  path: string;
}

const isWhiteout = (st: fs.Stats): boolean => st.isCharacterDevice() && st.rdev === 0;

function isOpaque(p: string): boolean {
  const { lgetxattr } = require('../images/xattr') as typeof import('../images/xattr');
  return lgetxattr(p, OVERLAY_OPAQUE_XATTR)?.toString() === 'y';
}

/** What the lowers (bottom first) show at `rel`, as overlayfs merges them; null if nothing. */
export function lowerStat(lowers: readonly string[], rel: string): fs.Stats | null {
  const parts = components(rel);
  for (let i = lowers.length - 1; i >= 0; i--) {
    let opaqueAbove = false;
    let st: fs.Stats | null = null;
    for (let j = 0; j < parts.length; j++) {
      const p = path.join(lowers[i]!, ...parts.slice(0, j + 1));
      st = lstatOrNull(p);
      if (!st) break;
      if (isWhiteout(st)) return null;
      if (j < parts.length - 1) {
        if (!st.isDirectory()) return null; // a file here hides everything below it
        if (isOpaque(p)) opaqueAbove = true;
      }
    }
    if (st && parts.length > 0) return st;
    if (opaqueAbove) return null;
  }
  return null;
}

/**
 * The mount points the runtime made in the upper dir (/etc/hosts and the
 * like where the image has none): docker keeps those in its init layer, so
 * neither diff nor commit shows them. Only while empty: content is a change.
 */
function runtimePlaceholder(upperPath: string, st: fs.Stats, cpath: string, mountPoints: ReadonlySet<string>, inLower: boolean): boolean {
  if (inLower || !mountPoints.has(cpath)) return false;
  if (st.isFile()) return st.size === 0;
  if (st.isDirectory()) return fs.readdirSync(upperPath).length === 0;
  return false;
}

/** The container's mount destinations (config.json's), canonical. */
function mountPointsOf(paths: Paths, c: Container, rootfs: string): Set<string> {
  const spec = readJson<{ mounts?: { destination: string }[] }>(path.join(paths.bundle(c.id), 'config.json'), `the config of container ${c.name}`);
  const out = new Set<string>();
  for (const m of spec.mounts ?? []) {
    out.add(path.posix.normalize(m.destination));
    try {
      out.add(canonicalDest(rootfs, m.destination));
    } catch {
      // unresolvable: the literal one is enough
    }
  }
  return out;
}

export interface UpperEntry {
  rel: string;
  st: fs.Stats;
  kind: ChangeKind;
  whiteout: boolean;
  opaque: boolean;
}

/**
 * The upper dir's entries as changes, parents before children, placeholders
 * of the runtime's mount points left out. A directory is C when it holds a
 * change, is opaque, or its mode or owner differ from the lower one.
 */
export function upperChanges(upper: string, lowers: readonly string[], mountPoints: ReadonlySet<string>): UpperEntry[] {
  const out: UpperEntry[] = [];
  // A running container can swap a dir of its upper for a symlink between our
  // lstat and our readdir: each dir is opened beneath the upper dir with no
  // symlink on the way, and listed through its fd, so only its names are read.
  const top = sys.open(upper, sys.O.RDONLY | sys.O.DIRECTORY | sys.O.CLOEXEC, 0, 'diff: the container\'s upper dir');
  const list = (rel: string): string[] => {
    if (rel === '') return fs.readdirSync(`/proc/self/fd/${top}`);
    const fd = sys.openat2(top, rel, sys.O.RDONLY | sys.O.DIRECTORY | sys.O.CLOEXEC, sys.RESOLVE.NO_SYMLINKS | sys.RESOLVE.BENEATH | sys.RESOLVE.NO_MAGICLINKS, 'diff: a dir of the upper, no symlink followed');
    try {
      return fs.readdirSync(`/proc/self/fd/${fd}`);
    } finally {
      sys.close(fd);
    }
  };
  // Below an opaque dir the lowers are hidden: everything there is new.
  const walk = (rel: string, hidden: boolean): boolean => {
    let any = false;
    for (const name of list(rel).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const host = path.join(upper, r);
      const st = fs.lstatSync(host);
      if (isWhiteout(st)) {
        // a whiteout of nothing (a file made and deleted in a fresh dir) is no change
        if (!hidden && lowerStat(lowers, r)) {
          out.push({ rel: r, st, kind: 'D', whiteout: true, opaque: false });
          any = true;
        }
        continue;
      }
      const low = hidden ? null : lowerStat(lowers, r);
      if (runtimePlaceholder(host, st, `/${r}`, mountPoints, low !== null)) continue;
      if (st.isDirectory() && low?.isDirectory()) {
        const opaque = isOpaque(host);
        const i = out.length;
        const changedBelow = walk(r, opaque);
        const meta = (low.mode & 0o7777) !== (st.mode & 0o7777) || low.uid !== st.uid || low.gid !== st.gid;
        if (changedBelow || opaque || meta) {
          out.splice(i, 0, { rel: r, st, kind: 'C', whiteout: false, opaque });
          any = true;
        }
        continue;
      }
      out.push({ rel: r, st, kind: low ? 'C' : 'A', whiteout: false, opaque: false });
      any = true;
      if (st.isDirectory()) walk(r, true);
    }
    return any;
  };
  try {
    walk('', false);
  } finally {
    sys.close(top);
  }
  return out;
}

/** The container's upper dir, lowers and mount points (overlay rootfs only: a copy keeps no record of changes). */
export function containerLayers(paths: Paths, c: Container, op: string): { upper: string; lowers: string[]; mountPoints: Set<string> } {
  const m = rootfsRecord(paths, c);
  if (m.type !== 'overlay') throw new RuntimeError(`cannot ${op} container ${c.name}: its rootfs is a copy (no overlayfs here), its changes are not tracked`, { code: 'ENOTSUP' });
  return { upper: m.upper, lowers: m.lowers, mountPoints: mountPointsOf(paths, c, m.target) };
}

/** `diff CONTAINER`: docker's A/C/D list, sorted by path. */
export function containerDiff(paths: Paths, ref: string): Change[] {
  const c = new ContainerStore(paths).resolve(ref);
  try {
    const { upper, lowers, mountPoints } = containerLayers(paths, c, 'diff');
    return upperChanges(upper, lowers, mountPoints)
      .map((u) => ({ kind: u.kind, path: `/${u.rel}` }))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  } catch (e) {
    if ((e as RuntimeError).code === 'ENOTSUP') throw e;
    throw wrap(e, `cannot diff container ${c.name}`);
  }
}


// ---- commit ---------------------------------------------------------------------------

export interface ContainerCommitOptions {
  name?: string | undefined;
  comment?: string | undefined;
  author?: string | undefined;
  /** docker's --change instructions. */
  changes: readonly string[];
  gzip?: boolean | undefined;
  /** Freeze a running container while its files are read, so the layer is one moment of it (docker's default). */
  pause?: boolean | undefined;
}

/**
 * `commit CONTAINER [REPO[:TAG]]`: the container's image plus its upper dir
 * as one more layer. The config is the container's (its command, env,
 * workdir, user, labels), as docker's; --change instructions go over it.
 */
export async function commitContainer(paths: Paths, images: import('../images/store').ContentStore, ref: string, opts: ContainerCommitOptions): Promise<import('../images/commit').CommitResult> {
  const c = new ContainerStore(paths).resolve(ref);
  if (!opts.pause || liveStatus(c) !== 'running') return commitLayer(paths, images, c, opts);
  const rt = require('../runtime/container') as typeof import('../runtime/container');
  const ctx = (require('./lifecycle') as typeof import('./lifecycle')).runtimeContext(paths);
  rt.pause(ctx, c.id, true);
  try {
    return await commitLayer(paths, images, c, opts);
  } finally {
    rt.pause(ctx, c.id, false);
  }
}

async function commitLayer(paths: Paths, images: import('../images/store').ContentStore, c: Container, opts: ContainerCommitOptions): Promise<import('../images/commit').CommitResult> {
  const { findImage } = require('../images/image') as typeof import('../images/image');
  const { applyChange, commitImage } = require('../images/commit') as typeof import('../images/commit');
  const op = `cannot commit container ${c.name}`;
  const { upper, lowers, mountPoints } = containerLayers(paths, c, 'commit');
  let base: import('../images/image').Image;
  try {
    base = findImage(images, c.config.imageId);
  } catch (e) {
    throw wrap(e, `${op}: its image ${c.config.image} (${c.config.imageId.slice(7, 19)})`);
  }
  const ic = base.config.config ?? {};
  // HOME is the bundle's default from passwd, not part of what the container was asked to have
  const imageHasHome = (ic.Env ?? []).some((e) => e.startsWith('HOME='));
  const cfg: import('../images/manifest').ContainerConfig = {
    ...ic,
    Env: c.config.env.filter((e) => imageHasHome || !e.startsWith('HOME=')),
    Entrypoint: c.config.entrypoint ?? ic.Entrypoint ?? null,
    Cmd: c.config.cmd ?? (c.config.entrypoint !== null ? null : (ic.Cmd ?? null)),
    WorkingDir: c.config.workingDir === '/' && !ic.WorkingDir ? '' : c.config.workingDir,
    User: c.config.user,
    Labels: Object.keys(c.config.labels).length > 0 ? c.config.labels : (ic.Labels ?? null),
  };
  for (const ch of opts.changes) {
    try {
      applyChange(cfg, ch);
    } catch (e) {
      throw wrap(e, op);
    }
  }
  let changes: UpperEntry[];
  try {
    changes = upperChanges(upper, lowers, mountPoints);
  } catch (e) {
    throw wrap(e, `${op}: reading its changes in ${upper}`);
  }
  try {
    return await commitImage(images, base, upper, changes, {
      name: opts.name,
      comment: opts.comment,
      author: opts.author,
      config: cfg,
      createdBy: c.config.args.join(' '),
      gzip: opts.gzip,
    });
  } catch (e) {
    throw wrap(e, op);
  }
}
