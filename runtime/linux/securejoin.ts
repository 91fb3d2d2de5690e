// Resolving a path inside a root directory the way the container will see
// it, without ever leaving the root: like cyphar/filepath-securejoin.
// Symlinks are followed relative to the root (an absolute link target starts
// again at the root, `..` stops at the root), so a hostile rootfs cannot
// point a mount destination at the host.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from '../sys/errors';

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

/** mkdir -p of a path already resolved by secureJoin, refusing to create through a symlink. */
export function mkdirInRoot(root: string, resolved: string, mode = 0o755): void {
  const rel = path.relative(root, resolved);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new RuntimeError(`refusing to create ${resolved}: outside ${root}`, { code: 'EINVAL' });
  }
  let cur = path.resolve(root);
  for (const comp of rel.split('/').filter(Boolean)) {
    cur = path.join(cur, comp);
    try {
      const st = fs.lstatSync(cur);
      if (st.isSymbolicLink()) throw new RuntimeError(`refusing to create through the symlink ${cur}`, { code: 'ELOOP' });
      if (!st.isDirectory()) throw new RuntimeError(`cannot create a directory at ${cur}: a file is there`, { code: 'ENOTDIR' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      fs.mkdirSync(cur, { mode });
    }
  }
}
