// export: a flattened root filesystem as one tar, as `docker export` writes
// a container's.
//
//   an image    its layer snapshots merged as overlayfs shows them: the top
//               layer that has a path wins, a 0/0 char device hides the path
//               below it, an opaque dir hides everything below it;
//   a bundle    (made by `bundle`) its rootfs as it is now: the mounted
//               overlay, or the copy; an overlay no longer mounted is merged
//               from upper/ over the lowers by the same rules.
//
// Kept: uid/gid, mode bits, mtime (seconds), xattrs except overlayfs' own
// (trusted.overlay.*), symlinks, hardlinks (by inode, within the export),
// device nodes and fifos. Sockets have no tar form and are skipped.
// Entries are named like `tar -C root -cf - .` names them (`./`, `./bin/sh`).

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { RuntimeError, wrap } from '../runtime/sys/errors';
import { ensureSnapshots, ROOTFS_RECORD } from './bundle';
import type { Image } from './image';
import type { RootfsMount } from './snapshots';
import type { ContentStore } from './store';
import { TarWriter, devNumbers, xattrsOf, type TarHeader, type TarSink, type TarType } from './tarwriter';
import { OVERLAY_OPAQUE_XATTR } from './unpack';
import { lgetxattr } from './xattr';

const CHUNK = 1 << 20;

export interface ExportOptions {
  onWarning?: ((msg: string) => void) | undefined;
}

/** Without an exception for ENOENT: a fresh layer's every entry misses, and a thrown error costs more than the lstat. */
function lstatOrNull(p: string): fs.Stats | null {
  return fs.lstatSync(p, { throwIfNoEntry: false }) ?? null;
}

const isWhiteout = (st: fs.Stats): boolean => st.isCharacterDevice() && st.rdev === 0;
const isOpaque = (p: string): boolean => lgetxattr(p, OVERLAY_OPAQUE_XATTR)?.toString() === 'y';

/**
 * Writes the merged view of `layers` (bottom first) to `sink` as a tar.
 * With `whiteouts`, the layers are overlayfs lower/upper dirs and their
 * whiteouts and opaque dirs apply; without, each dir is a plain tree.
 */
export async function exportLayers(layers: readonly string[], sink: TarSink, whiteouts: boolean, opts: ExportOptions = {}): Promise<void> {
  if (layers.length === 0) throw new RuntimeError('cannot export: no layers', { code: 'EINVAL' });
  const warn = opts.onWarning ?? (() => {});
  const tar = new TarWriter(sink);
  const links = new Map<string, string>();

  const cut = (dirs: string[]): string[] => {
    if (!whiteouts) return dirs;
    const i = dirs.findIndex(isOpaque);
    return i < 0 ? dirs : dirs.slice(0, i + 1);
  };

  async function emit(name: string, host: string, st: fs.Stats): Promise<boolean> {
    const base = { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) };
    const key = `${st.dev}:${st.ino}`;
    if (!st.isDirectory() && st.nlink > 1) {
      const first = links.get(key);
      if (first !== undefined) {
        await tar.header({ ...base, type: 'link', linkname: first });
        return true;
      }
    }
    let type: TarType;
    const h: TarHeader = { ...base, type: 'file' };
    if (st.isFile()) type = 'file';
    else if (st.isDirectory()) type = 'directory';
    else if (st.isSymbolicLink()) {
      type = 'symlink';
      h.linkname = fs.readlinkSync(host);
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      type = st.isCharacterDevice() ? 'character-device' : 'block-device';
      Object.assign(h, devNumbers(st.rdev));
    } else if (st.isFIFO()) type = 'fifo';
    else {
      warn(`skipping ${name}: a socket has no tar form`);
      return false;
    }
    h.type = type;
    h.xattrs = xattrsOf(host);
    if (type !== 'file') {
      await tar.header(h);
    } else {
      await writeFile(h, host, st.size);
    }
    if (!st.isDirectory() && st.nlink > 1) links.set(key, name);
    return true;
  }

  /** The header says `size` bytes; a file that changed meanwhile is cut or padded to that, as GNU tar does. */
  async function writeFile(h: TarHeader, host: string, size: number): Promise<void> {
    const fd = fs.openSync(host, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      await tar.header({ ...h, size });
      let pos = 0;
      while (pos < size) {
        const buf = Buffer.allocUnsafe(Math.min(CHUNK, size - pos));
        const n = fs.readSync(fd, buf, 0, buf.length, pos);
        if (n === 0) {
          warn(`${h.name} shrank while being exported; padded with zeros`);
          buf.fill(0);
          await tar.data(buf);
          pos += buf.length;
          continue;
        }
        await tar.data(n === buf.length ? buf : buf.subarray(0, n));
        pos += n;
      }
      await tar.pad(size);
    } finally {
      fs.closeSync(fd);
    }
  }

  async function walk(rel: string, dirs: string[]): Promise<void> {
    const names = new Set<string>();
    for (const d of dirs) for (const n of fs.readdirSync(d)) names.add(n);
    for (const n of [...names].sort()) {
      let winner: { host: string; st: fs.Stats } | undefined;
      const below: string[] = [];
      for (const d of dirs) {
        const host = path.join(d, n);
        const st = lstatOrNull(host);
        if (!st) continue;
        if (whiteouts && isWhiteout(st)) break;
        if (winner && !st.isDirectory()) break;
        winner ??= { host, st };
        if (!st.isDirectory()) break;
        below.push(host);
        if (whiteouts && isOpaque(host)) break;
      }
      if (!winner) continue;
      const r = rel === '' ? n : `${rel}/${n}`;
      const isDir = winner.st.isDirectory();
      await emit(`./${r}${isDir ? '/' : ''}`, winner.host, winner.st);
      if (isDir) await walk(r, below);
    }
  }

  const top = cut([...layers].reverse());
  await emit('./', top[0]!, fs.lstatSync(top[0]!));
  await walk('', top);
  await tar.finish();
}

/** An image's root filesystem: its layers applied in order (unpacking any missing snapshot first). */
export async function exportImage(store: ContentStore, image: Image, sink: TarSink, opts: ExportOptions = {}): Promise<void> {
  const lowers = await ensureSnapshots(store, image);
  try {
    await exportLayers(lowers, sink, true, opts);
  } catch (e) {
    throw wrap(e, `cannot export image ${image.record.name}`);
  }
}

function mounted(target: string): boolean {
  const want = path.resolve(target);
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => (l.split(' ')[4] ?? '').replace(/\\040/g, ' ') === want);
}

/** Whether `dir` looks like a bundle (ours, or any with a config.json). */
export function isBundleDir(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory() && (fs.existsSync(path.join(dir, ROOTFS_RECORD)) || fs.existsSync(path.join(dir, 'config.json')));
  } catch {
    return false;
  }
}

/** A bundle's rootfs as it is now, including what a container changed in it. */
export async function exportBundle(bundleDir: string, sink: TarSink, opts: ExportOptions = {}): Promise<void> {
  const dir = path.resolve(bundleDir);
  let layers: string[];
  let whiteouts = false;
  try {
    let m: RootfsMount | undefined;
    try {
      m = JSON.parse(fs.readFileSync(path.join(dir, ROOTFS_RECORD), 'utf8')) as RootfsMount;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (m?.type === 'overlay' && !mounted(m.target)) {
      // Not mounted (say, after a reboot): the same view, merged by us.
      layers = [...m.lowers, m.upper];
      whiteouts = true;
    } else if (m) {
      layers = [m.target];
    } else {
      const spec = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as { root?: { path?: string } };
      layers = [path.resolve(dir, spec.root?.path ?? 'rootfs')];
    }
    if (!fs.statSync(layers[layers.length - 1]!).isDirectory()) throw new RuntimeError(`${layers[layers.length - 1]} is not a directory`, { code: 'ENOTDIR' });
    await exportLayers(layers, sink, whiteouts, opts);
  } catch (e) {
    throw wrap(e, `cannot export bundle ${dir}`);
  }
}

/** A sink over a stream (stdout), waiting for 'drain' and failing on the stream's error (EPIPE). */
export function streamSink(w: Writable): TarSink {
  let failed: Error | undefined;
  w.on('error', (e: Error) => (failed ??= e));
  return (chunk) => {
    if (failed) throw failed;
    if (w.write(chunk)) return;
    return new Promise<void>((res, rej) => {
      const done = (): void => {
        w.off('error', bad);
        res();
      };
      const bad = (e: Error): void => {
        w.off('drain', done);
        rej(e);
      };
      w.once('drain', done);
      w.once('error', bad);
    });
  };
}

/**
 * Runs `produce` into `file` atomically: a temp file beside it, fsync'd and
 * renamed over it on success, removed on failure (or SIGINT/SIGTERM), so
 * `file` is either the whole archive or untouched.
 */
export async function writeAtomically(file: string, produce: (sink: TarSink) => Promise<void>): Promise<void> {
  const dest = path.resolve(file);
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.${process.pid}.tmp`);
  let fd: number;
  try {
    fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
  } catch (e) {
    throw wrap(e, `cannot create ${dest}`);
  }
  const onSignal = (sig: NodeJS.Signals): void => {
    fs.rmSync(tmp, { force: true });
    process.kill(process.pid, sig);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await produce((chunk) => {
      let done = 0;
      while (done < chunk.length) done += fs.writeSync(fd, chunk, done, chunk.length - done);
    });
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = -1;
    fs.renameSync(tmp, dest);
  } catch (e) {
    if (fd >= 0) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw wrap(e, `cannot write ${dest}`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
