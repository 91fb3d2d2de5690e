// Which cgroup layout the host has, worked out from /proc/self/mountinfo
// (pure: the text is an argument, so fixtures test it without root).
//
//   v2      cgroup2 mounted at the root (/sys/fs/cgroup)
//   v1      one cgroup (v1) mount per controller set under the root
//   hybrid  v1 mounts plus a cgroup2 mount under the root (usually
//           /sys/fs/cgroup/unified, with no controllers). crun refuses this
//           layout; runc, and we, use v1 for every controller and also put
//           the container into the unified hierarchy for cgroup2 tracking.
//
// Also here: /proc/self/cgroup parsing (the runtime's own cgroup, which a
// relative cgroupsPath is relative to).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError, messageOf } from '../sys/errors';
import type { CgroupDriver } from './manager';

export const DEFAULT_ROOT = '/sys/fs/cgroup';

/** One mounted hierarchy. */
export interface Hierarchy {
  /** v1: controllers of the hierarchy ('cpu', 'cpuacct', 'name=systemd'); v2: []. */
  controllers: string[];
  /** Where it is mounted, e.g. /sys/fs/cgroup/memory. */
  mountPoint: string;
  /** The cgroup that is the root of this mount (field 4 of mountinfo; '/' on the host). */
  mountRoot: string;
}

export interface CgroupLayout {
  driver: CgroupDriver;
  /** v1 hierarchies (v1 and hybrid); empty on v2. */
  v1: Hierarchy[];
  /** The cgroup2 hierarchy (v2 and hybrid); null on v1. */
  unified: Hierarchy | null;
}

/** v1 controllers the kernel knows; anything else in the super options is an option. */
const V1_CONTROLLERS = new Set([
  'cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids',
  'hugetlb', 'net_cls', 'net_prio', 'perf_event', 'rdma', 'misc', 'debug',
]);

interface MountLine {
  mountRoot: string;
  mountPoint: string;
  fstype: string;
  superOptions: string[];
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The cgroup and cgroup2 lines of a mountinfo text. */
export function parseCgroupMounts(mountinfo: string): MountLine[] {
  const out: MountLine[] = [];
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    if (sep < 6) continue;
    const fstype = fields[sep + 1];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    out.push({
      mountRoot: unescapeMountinfo(fields[3] ?? '/'),
      mountPoint: unescapeMountinfo(fields[4] ?? ''),
      fstype,
      superOptions: (fields[sep + 3] ?? '').split(','),
    });
  }
  return out;
}

function v1Controllers(superOptions: string[]): string[] {
  return superOptions.filter((o) => V1_CONTROLLERS.has(o) || o.startsWith('name='));
}

function isUnder(p: string, root: string): boolean {
  return p === root || p.startsWith(root.endsWith('/') ? root : root + '/');
}

/**
 * Detects the layout under `root`. `listing` (the entry names of the root
 * directory) is the fallback when no cgroup mount sits under the root, as in
 * a fake cgroupfs made of plain directories: `cgroup.controllers` at the top
 * means v2; otherwise each directory is a v1 hierarchy named after its
 * controllers ('cpu,cpuacct', 'systemd' for name=systemd), and 'unified' is
 * a cgroup2 one.
 */
export function detectCgroups(input: { mountinfo: string; root?: string; listing?: string[] }): CgroupLayout {
  const root = path.posix.normalize(input.root ?? DEFAULT_ROOT);
  const mounts = parseCgroupMounts(input.mountinfo).filter((m) => isUnder(m.mountPoint, root));

  const v2AtRoot = mounts.find((m) => m.fstype === 'cgroup2' && m.mountPoint === root);
  if (v2AtRoot) {
    return { driver: 'v2', v1: [], unified: { controllers: [], mountPoint: root, mountRoot: v2AtRoot.mountRoot } };
  }
  const v1: Hierarchy[] = [];
  const seen = new Set<string>();
  let unified: Hierarchy | null = null;
  for (const m of mounts) {
    if (m.fstype === 'cgroup2') {
      unified ??= { controllers: [], mountPoint: m.mountPoint, mountRoot: m.mountRoot };
      continue;
    }
    const controllers = v1Controllers(m.superOptions);
    const key = [...controllers].sort().join(',');
    if (controllers.length === 0 || seen.has(key)) continue; // a second mount of the same hierarchy
    seen.add(key);
    v1.push({ controllers, mountPoint: m.mountPoint, mountRoot: m.mountRoot });
  }
  if (v1.length > 0) return { driver: unified ? 'hybrid' : 'v1', v1, unified };
  if (unified) return { driver: 'v2', v1: [], unified };

  if (input.listing) return detectFromListing(root, input.listing);
  throw new RuntimeError(`cannot find cgroups: no cgroup filesystem is mounted under ${root}`, { code: 'ENOENT' });
}

function detectFromListing(root: string, listing: string[]): CgroupLayout {
  if (listing.includes('cgroup.controllers')) {
    return { driver: 'v2', v1: [], unified: { controllers: [], mountPoint: root, mountRoot: '/' } };
  }
  const v1: Hierarchy[] = [];
  let unified: Hierarchy | null = null;
  for (const name of [...listing].sort()) {
    const mountPoint = path.posix.join(root, name);
    if (name === 'unified') {
      unified = { controllers: [], mountPoint, mountRoot: '/' };
      continue;
    }
    const controllers = name.split(',').map((c) => (c === 'systemd' ? 'name=systemd' : c));
    if (controllers.every((c) => V1_CONTROLLERS.has(c) || c.startsWith('name='))) {
      v1.push({ controllers, mountPoint, mountRoot: '/' });
    }
  }
  if (v1.length > 0) return { driver: unified ? 'hybrid' : 'v1', v1, unified };
  if (unified) return { driver: 'v2', v1: [], unified };
  throw new RuntimeError(`cannot find cgroups: ${root} holds no cgroup hierarchy`, { code: 'ENOENT' });
}

/** /proc/<pid>/cgroup: v1 controller → path, and the cgroup2 path ('0::/x'). */
export interface OwnCgroups {
  v1: Map<string, string>;
  unified: string | null;
}

export function parseProcCgroup(text: string): OwnCgroups {
  const own: OwnCgroups = { v1: new Map(), unified: null };
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const controllers = m[2] ?? '';
    const p = m[3] ?? '/';
    if (m[1] === '0' && controllers === '') {
      own.unified = p;
      continue;
    }
    for (const c of controllers.split(',')) if (c) own.v1.set(c, p);
  }
  return own;
}

/** Reads the host's layout (mountinfo, or the listing of a fake root). */
export function readLayout(root: string = DEFAULT_ROOT): CgroupLayout {
  let mountinfo = '';
  try {
    mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch (e) {
    throw new RuntimeError(`cannot read /proc/self/mountinfo: ${messageOf(e)}`, { cause: e });
  }
  let listing: string[] | undefined;
  try {
    listing = fs
      .readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory() || d.name === 'cgroup.controllers')
      .map((d) => d.name);
  } catch {
    listing = undefined;
  }
  return listing === undefined ? detectCgroups({ mountinfo, root }) : detectCgroups({ mountinfo, root, listing });
}
