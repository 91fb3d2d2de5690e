// Resolving a path inside a root directory the way the container will see
// it, without ever leaving the root: like cyphar/filepath-securejoin.
// Symlinks are followed relative to the root (an absolute link target starts
// again at the root, `..` stops at the root), so a hostile rootfs cannot
// point a mount destination at the host.
//
// Two layers:
//   secureJoin      a pure lookup (lstat/readlink): ROOT/UNSAFE with every
//                   symlink resolved inside ROOT. For names and messages.
//   openInRoot,     the kernel does the same walk (openat2 RESOLVE_IN_ROOT)
//   mkdirAllInRoot, and hands back an O_PATH fd, created one component at a
//   createInRoot    time through the parent's fd. Mounts go onto
//                   /proc/self/fd/N (runc's WithProcfd), so a symlink swapped
//                   in between the check and the mount cannot redirect them.
//
// fdPath() needs the host's /proc: the init uses these before pivot_root.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError, messageOf } from '../sys/errors';
import * as sys from '../sys/libc';

const MAX_LINKS = 255;

/** Returns ROOT/UNSAFE with every symlink resolved inside ROOT; missing tail components are kept as they are. */
export function secureJoin(root: string, unsafe: string): string {
  const rootAbs = path.resolve(root);
  let pending = unsafe.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const comp = pending.shift() as string;
    if (comp === '..') {
      done.pop();
      continue;
    }
    const candidate = path.join(rootAbs, ...done, comp);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(candidate);
    } catch {
      // Missing: nothing more to resolve on this path.
      return path.join(rootAbs, ...normalize([...done, comp, ...pending]));
    }
    if (!st.isSymbolicLink()) {
      done.push(comp);
      continue;
    }
    if (++links > MAX_LINKS) {
      throw new RuntimeError(`cannot resolve ${unsafe} in ${rootAbs}: too many levels of symbolic links`, { code: 'ELOOP' });
    }
    const target = fs.readlinkSync(candidate);
    const parts = target.split('/').filter((c) => c !== '' && c !== '.');
    if (target.startsWith('/')) done.length = 0; // absolute: back to the root
    pending = [...parts, ...pending];
  }
  return path.join(rootAbs, ...done);
}

function normalize(parts: string[]): string[] {
  const out: string[] = [];
  for (const p of parts) {
    if (p === '..') out.pop();
    else out.push(p);
  }
  return out;
}

/** The magic link through which an fd can be named as a path (for mount(2), mkdir(2), open(2)). */
export function fdPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

/** Where an fd really points, as a path from our root. */
export function fdTarget(fd: number): string {
  return fs.readlinkSync(fdPath(fd));
}

function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function relIn(unsafe: string): string {
  return unsafe.split('/').filter((c) => c !== '' && c !== '.').join('/') || '.';
}

export interface InRootOptions {
  /** Refuse any symlink on the way (proc and sysfs destinations). */
  noSymlinks?: boolean;
  /** The final component must be a directory. */
  directory?: boolean;
  why?: string;
}

/**
 * Opens ROOT/UNSAFE with O_PATH, resolved by the kernel inside ROOT
 * (RESOLVE_IN_ROOT, no magic links). The caller closes the fd. Throws the
 * SyscallError (ENOENT, ELOOP, ENOTDIR...) as is.
 */
export function openInRoot(root: string, unsafe: string, opts: InRootOptions = {}): number {
  const rootFd = sys.open(root, sys.O.PATH | sys.O.DIRECTORY | sys.O.CLOEXEC, 0, opts.why);
  try {
    return openBeneath(rootFd, root, relIn(unsafe), opts);
  } finally {
    sys.close(rootFd);
  }
}

function openBeneath(rootFd: number, root: string, rel: string, opts: InRootOptions): number {
  let resolve = sys.RESOLVE.IN_ROOT | sys.RESOLVE.NO_MAGICLINKS;
  if (opts.noSymlinks) resolve |= sys.RESOLVE.NO_SYMLINKS;
  const flags = sys.O.PATH | sys.O.CLOEXEC | (opts.directory ? sys.O.DIRECTORY : 0);
  const fd = sys.openat2(rootFd, rel, flags, resolve, opts.why);
  // RESOLVE_IN_ROOT cannot leave the root, but check what we got anyway: the
  // rootfs may have been moved or remounted under us.
  const real = fdTarget(fd);
  if (!isInside(root, real)) {
    sys.close(fd);
    throw new RuntimeError(`${opts.why ? opts.why + ': ' : ''}${rel} resolved to ${real}, outside ${root}`, { code: 'EXDEV' });
  }
  return fd;
}

function codeOf(e: unknown): string | undefined {
  return (e as { code?: string }).code;
}

/**
 * mkdir -p of UNSAFE inside ROOT: each component is looked up by the kernel
 * inside the root (symlinks followed, but only within it) and a missing one
 * is made through its parent's fd. Returns an O_PATH fd of the directory.
 */
export function mkdirAllInRoot(root: string, unsafe: string, opts: InRootOptions & { mode?: number } = {}): number {
  const rootFd = sys.open(root, sys.O.PATH | sys.O.DIRECTORY | sys.O.CLOEXEC, 0, opts.why);
  try {
    return mkdirAllBeneath(rootFd, root, relIn(unsafe), opts);
  } finally {
    sys.close(rootFd);
  }
}

function mkdirAllBeneath(rootFd: number, root: string, rel: string, opts: InRootOptions & { mode?: number }): number {
  const dirOpts = { ...opts, directory: true };
  try {
    return openBeneath(rootFd, root, rel, dirOpts);
  } catch (e) {
    if (codeOf(e) !== 'ENOENT' || rel === '.') throw e;
  }
  // The kernel's walk failed on a missing component: make the parent, then this one in it.
  const parent = mkdirAllBeneath(rootFd, root, path.posix.dirname(rel), opts);
  try {
    const name = path.posix.basename(rel);
    if (name === '..') throw new RuntimeError(`cannot create ${rel} in ${root}: ends in ..`, { code: 'EINVAL' });
    try {
      fs.mkdirSync(path.join(fdPath(parent), name), { mode: opts.mode ?? 0o755 });
    } catch (e) {
      // EEXIST: a dangling symlink (made elsewhere in the root) or a racing
      // mkdir; the open below resolves it inside the root or fails.
      if (codeOf(e) !== 'EEXIST') throw new RuntimeError(`cannot create directory ${rel} in ${root}: ${messageOf(e)}`, { cause: e });
      return mkdirDangling(rootFd, root, rel, opts);
    }
    return openBeneath(rootFd, root, rel, dirOpts);
  } finally {
    sys.close(parent);
  }
}

/** REL exists but does not open as a directory: a dangling symlink whose target we make, inside the root. */
function mkdirDangling(rootFd: number, root: string, rel: string, opts: InRootOptions & { mode?: number }): number {
  if (opts.noSymlinks) throw new RuntimeError(`${opts.why ? opts.why + ': ' : ''}${rel} is a symlink`, { code: 'ELOOP' });
  const resolved = path.relative(root, secureJoin(root, rel));
  if (resolved === rel) return openBeneath(rootFd, root, rel, { ...opts, directory: true });
  return mkdirAllBeneath(rootFd, root, resolved || '.', opts);
}

/**
 * Makes UNSAFE inside ROOT an existing regular file (empty if new; its
 * directories made as with mkdirAllInRoot), for a bind mount of a file or a
 * device node. Returns an O_PATH fd of it.
 */
export function createInRoot(root: string, unsafe: string, opts: InRootOptions & { mode?: number } = {}): number {
  const rootFd = sys.open(root, sys.O.PATH | sys.O.DIRECTORY | sys.O.CLOEXEC, 0, opts.why);
  try {
    const rel = relIn(unsafe);
    try {
      return openBeneath(rootFd, root, rel, { ...opts, directory: false });
    } catch (e) {
      if (codeOf(e) !== 'ENOENT') throw e;
    }
    const dir = path.posix.dirname(rel);
    const name = path.posix.basename(rel);
    if (name === '..' || name === '.') throw new RuntimeError(`cannot create file ${rel} in ${root}`, { code: 'EINVAL' });
    const parent = mkdirAllBeneath(rootFd, root, dir, { ...opts, directory: true });
    try {
      // O_NOFOLLOW: a symlink that appeared at NAME is refused, not followed out of the root.
      const fd = fs.openSync(path.join(fdPath(parent), name), fs.constants.O_CREAT | fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW, opts.mode ?? 0o644);
      fs.closeSync(fd);
    } catch (e) {
      if (codeOf(e) === 'ELOOP') {
        // A dangling symlink: make its target, resolved inside the root.
        const resolved = path.relative(root, secureJoin(root, rel));
        if (opts.noSymlinks || resolved === rel || resolved === '') throw new RuntimeError(`cannot create file ${rel} in ${root}: ${messageOf(e)}`, { cause: e });
        return createInRoot(root, resolved, opts);
      }
      throw new RuntimeError(`cannot create file ${rel} in ${root}: ${messageOf(e)}`, { cause: e });
    } finally {
      sys.close(parent);
    }
    return openBeneath(rootFd, root, rel, { ...opts, directory: false });
  } finally {
    sys.close(rootFd);
  }
}
