// Where a container's cgroup goes: linux.cgroupsPath → one directory per
// hierarchy, with the semantics of runc's cgroupfs driver (pure).
//
//   "/a/b"              absolute: /a/b inside every hierarchy
//                        (/sys/fs/cgroup/memory/a/b, ...; podman's
//                        --cgroup-manager cgroupfs gives /libpod_parent/libpod-<id>)
//   "a/b"               relative to the runtime's own cgroup in each
//                        hierarchy, from /proc/self/cgroup
//   "slice:prefix:name" systemd style, mapped as runc's systemd driver names
//                        it: system.slice:docker:abc → /system.slice/docker-abc.scope,
//                        a-b.slice:p:n → /a.slice/a-b.slice/p-n.scope
//   absent              /mycontainer/<id>. runc uses /<id>; a parent of our
//                        own keeps the hierarchy roots tidy and shows whose
//                        cgroups these are.

import * as path from 'node:path';
import { RuntimeError } from '../sys/errors';
import type { CgroupLayout, Hierarchy, OwnCgroups } from './detect';

export const DEFAULT_PARENT = '/mycontainer';

export interface InnerPath {
  /** Normalised: starts with '/' when absolute. */
  path: string;
  absolute: boolean;
}

/** runc's systemd.ExpandSlice: "a-b-c.slice" → "/a.slice/a-b.slice/a-b-c.slice". */
export function expandSlice(slice: string): string {
  const suffix = '.slice';
  if (slice.length < suffix.length || !slice.endsWith(suffix) || slice.includes('/')) {
    throw new RuntimeError(`invalid slice name "${slice}" in linux.cgroupsPath`, { code: 'EINVAL' });
  }
  const name = slice.slice(0, -suffix.length);
  if (name === '-') return '/';
  let out = '';
  let prefix = '';
  for (const component of name.split('-')) {
    if (component === '') throw new RuntimeError(`invalid slice name "${slice}" in linux.cgroupsPath`, { code: 'EINVAL' });
    out += '/' + prefix + component + suffix;
    prefix += component + '-';
  }
  return out;
}

/** linux.cgroupsPath (and the container id) → the path inside each hierarchy. */
export function resolveCgroupsPath(cgroupsPath: string | undefined, id: string): InnerPath {
  if (cgroupsPath === undefined || cgroupsPath === '') {
    if (id === '' || id === '.' || id === '..' || id.includes('/')) {
      throw new RuntimeError(`cannot name a cgroup after container id "${id}"`, { code: 'EINVAL' });
    }
    return { path: path.posix.join(DEFAULT_PARENT, id), absolute: true };
  }
  if (cgroupsPath.includes('\0')) throw new RuntimeError('invalid linux.cgroupsPath: contains a NUL byte', { code: 'EINVAL' });
  const systemd = /^([^:/]*):([^:/]*):([^:/]+)$/.exec(cgroupsPath);
  if (systemd) {
    const slice = systemd[1] || 'system.slice';
    const prefix = systemd[2] ?? '';
    const name = systemd[3] ?? '';
    const unit = name.endsWith('.slice') ? name : prefix ? `${prefix}-${name}.scope` : `${name}.scope`;
    return { path: path.posix.join(expandSlice(slice), unit), absolute: true };
  }
  if (cgroupsPath.startsWith('/')) {
    // Normalising an absolute path cannot climb above '/'.
    return { path: path.posix.normalize(cgroupsPath).replace(/\/+$/, '') || '/', absolute: true };
  }
  const rel = path.posix.normalize(cgroupsPath).replace(/\/+$/, '');
  if (rel === '..' || rel.startsWith('../')) {
    throw new RuntimeError(`invalid linux.cgroupsPath "${cgroupsPath}": leaves the runtime's cgroup`, { code: 'EINVAL' });
  }
  return { path: rel === '.' ? '' : rel, absolute: false };
}

/** The directory of the container's cgroup in one hierarchy. */
function dirIn(h: Hierarchy, inner: InnerPath, own: string | undefined, label: string): string {
  if (inner.absolute) return path.posix.join(h.mountPoint, inner.path);
  if (own === undefined) {
    throw new RuntimeError(`cannot place relative linux.cgroupsPath: the runtime's own ${label} cgroup is unknown`, { code: 'ENOENT' });
  }
  // /proc/self/cgroup paths are relative to the hierarchy's root cgroup;
  // the mount may show a sub-tree of it (mountRoot), as inside a container.
  const rel = path.posix.relative(h.mountRoot, own);
  if (rel.startsWith('..')) {
    throw new RuntimeError(`cannot place relative linux.cgroupsPath: our ${label} cgroup ${own} is outside the mount of ${h.mountRoot}`, { code: 'ENOENT' });
  }
  return path.posix.join(h.mountPoint, rel, inner.path);
}

/**
 * Controller → directory for every hierarchy of the layout. Controllers
 * mounted together share a directory ('cpu' and 'cpuacct' both map to
 * .../cpu,cpuacct/x); the cgroup2 one is 'unified'.
 */
export function cgroupDirs(layout: CgroupLayout, inner: InnerPath, own?: OwnCgroups): Record<string, string> {
  const dirs: Record<string, string> = {};
  for (const h of layout.v1) {
    const first = h.controllers[0] ?? '';
    const dir = dirIn(h, inner, own?.v1.get(first), first);
    for (const c of h.controllers) dirs[c] = dir;
  }
  if (layout.unified) dirs['unified'] = dirIn(layout.unified, inner, own?.unified ?? undefined, 'cgroup2');
  for (const [c, d] of Object.entries(dirs)) {
    const h = c === 'unified' ? layout.unified : layout.v1.find((x) => x.controllers.includes(c));
    if (h && path.posix.relative(h.mountPoint, d) === '') {
      throw new RuntimeError(`invalid linux.cgroupsPath: the container cgroup would be the root of the ${c} hierarchy (${d})`, { code: 'EINVAL' });
    }
  }
  return dirs;
}

/**
 * `exec --cgroup` (runc's): "[controller[,controller]:]path" puts the process
 * in an existing sub-cgroup of the container's instead of its own cgroup.
 * Without a controller (one flag only) every hierarchy gets that path, which
 * is the only form cgroup v2 has. Returns the container's paths with those
 * replaced; never a path above the container's.
 */
export function subCgroupPaths(paths: Record<string, string>, args: readonly string[]): Record<string, string> {
  const out = { ...paths };
  if (args.length === 0) return out;
  const below = (base: string, add: string): string => {
    const p = path.join(base, add);
    if (p !== base && !p.startsWith(base + '/')) throw new RuntimeError(`exec --cgroup: ${add} is not a sub cgroup path`, { code: 'EINVAL' });
    return p;
  };
  for (const arg of args) {
    const parts = arg.split(':');
    if (parts.length > 2) throw new RuntimeError(`exec --cgroup: invalid --cgroup argument: ${arg} (want [<controller>[,<controller>]:]<path>)`, { code: 'EINVAL' });
    if (parts.length === 1) {
      if (args.length !== 1) throw new RuntimeError(`exec --cgroup: invalid --cgroup argument: ${arg} (missing <controller>: prefix)`, { code: 'EINVAL' });
      for (const [k, base] of Object.entries(paths)) out[k] = below(base, arg);
      continue;
    }
    const [ctrls, add] = parts as [string, string];
    for (const ctrl of ctrls.split(',')) {
      const base = paths[ctrl];
      if (base === undefined) throw new RuntimeError(`exec --cgroup: unknown controller ${ctrl} (the container has ${Object.keys(paths).join(', ')})`, { code: 'EINVAL' });
      out[ctrl] = below(base, add);
    }
  }
  return out;
}
