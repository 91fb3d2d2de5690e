// Namespaces: which to create, which to join, and in which order.
//
// The plan is made from `linux.namespaces`. The runtime's main thread
// performs it (spawn.ts, runtime/README.md): it unshares the new namespaces
// and setns(2)es into the joined ones, spawns the container's init, which
// inherits them all, and steps back. The cgroup namespace is the exception: the init unshares
// it itself, after the runtime has moved it into its cgroup, so that the
// namespace's root is the container's cgroup.

import type { Spec } from '../spec/generated/config';
import { NAMESPACES, type NamespaceType } from '../sys/constants';
import { RuntimeError } from '../sys/errors';

export interface NamespaceJoin {
  type: NamespaceType;
  path: string;
  flag: number;
  why: string;
}

export interface NamespacePlan {
  /** Flags for unshare(2) in the spawning thread (everything new but cgroup and time). */
  unshareFlags: number;
  /** Namespaces to enter by path, in a safe order (mount last). */
  join: NamespaceJoin[];
  /** The init unshares CLONE_NEWCGROUP itself, once inside its cgroup. */
  newCgroupInInit: boolean;
  /**
   * The init unshares CLONE_NEWTIME itself: offsets can only be written through
   * /proc/PID/timens_offsets, which speaks for the main thread, and execve
   * moves the process into its time namespace for children.
   */
  newTimeInInit: boolean;
  /** Which types are new, and which config entry asked: for explain. */
  created: { type: NamespaceType; why: string }[];
  /** `linux.timeOffsets`, written by the init to /proc/self/timens_offsets. */
  timeOffsets: { clock: 'monotonic' | 'boottime'; secs: number; nanosecs: number }[];
  /** True when the container shares the host's pid namespace (no PID 1 of its own). */
  hostPid: boolean;
  /** A user namespace: new (path null) or joined; entered by native/nsexec. */
  user: { path: string | null; why: string } | null;
  /** linux.uidMappings / gidMappings, as lines for /proc/PID/{uid,gid}_map. */
  uidMap: string;
  gidMap: string;
}

type IdMapping = { containerID: number; hostID: number; size: number };

/** Checks one mappings list (sizes, overlaps, root mapped) and renders it for /proc/PID/*_map. */
export function renderIdMap(list: IdMapping[] | undefined, field: string): string {
  const maps = list ?? [];
  if (maps.length === 0) throw new RuntimeError(`${field}: a new user namespace needs at least one mapping`, { code: 'EINVAL' });
  if (maps.length > 340) throw new RuntimeError(`${field}: at most 340 mappings (the kernel's limit)`, { code: 'EINVAL' });
  maps.forEach((m, i) => {
    if (m.size <= 0) throw new RuntimeError(`${field}[${i}].size: must be positive`, { code: 'EINVAL' });
  });
  const overlap = (key: 'containerID' | 'hostID'): void => {
    const sorted = maps.map((m, i) => ({ ...m, i })).sort((a, b) => a[key] - b[key]);
    for (let k = 1; k < sorted.length; k++) {
      const prev = sorted[k - 1] as IdMapping & { i: number };
      const cur = sorted[k] as IdMapping & { i: number };
      if (prev[key] + prev.size > cur[key]) {
        throw new RuntimeError(`${field}[${cur.i}] overlaps ${field}[${prev.i}] (${key} ranges)`, { code: 'EINVAL' });
      }
    }
  };
  overlap('containerID');
  overlap('hostID');
  if (!maps.some((m) => m.containerID === 0)) {
    throw new RuntimeError(`${field}: must map container id 0 (the init becomes root of the user namespace)`, { code: 'EINVAL' });
  }
  return maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}`).join('\n') + '\n';
}

// Joining order: the mount namespace last, since after it paths resolve in
// the container's view; pid before mount so /proc paths still resolve.
const JOIN_ORDER: NamespaceType[] = ['cgroup', 'ipc', 'uts', 'network', 'pid', 'time', 'mount'];

export function planNamespaces(spec: Spec): NamespacePlan {
  const list = spec.linux?.namespaces ?? [];
  const plan: NamespacePlan = { unshareFlags: 0, join: [], newCgroupInInit: false, newTimeInInit: false, created: [], timeOffsets: [], hostPid: true, user: null, uidMap: '', gidMap: '' };
  const seen = new Set<string>();
  list.forEach((ns, i) => {
    const field = `linux.namespaces[${i}]`;
    if (seen.has(ns.type)) throw new RuntimeError(`${field}: namespace type "${ns.type}" is listed twice`, { code: 'EINVAL' });
    seen.add(ns.type);
    const info = NAMESPACES[ns.type];
    if (ns.type === 'user') {
      // Entered by native/ (mycontainer-nsexec): a multi-threaded process cannot.
      plan.user = ns.path ? { path: ns.path, why: field } : { path: null, why: field };
      if (!ns.path) plan.created.push({ type: ns.type, why: field });
      return;
    }
    if (ns.type === 'pid') plan.hostPid = false;
    if (ns.path) {
      plan.join.push({ type: ns.type, path: ns.path, flag: info.flag, why: `${field} (${ns.type}, path ${ns.path})` });
    } else if (ns.type === 'cgroup') {
      plan.newCgroupInInit = true;
      plan.created.push({ type: ns.type, why: field });
    } else if (ns.type === 'time') {
      plan.newTimeInInit = true;
      plan.created.push({ type: ns.type, why: field });
    } else {
      plan.unshareFlags |= info.flag;
      plan.created.push({ type: ns.type, why: field });
    }
  });
  plan.join.sort((a, b) => JOIN_ORDER.indexOf(a.type) - JOIN_ORDER.indexOf(b.type));

  const offsets = spec.linux?.timeOffsets;
  if (offsets) {
    if (!plan.newTimeInInit) {
      throw new RuntimeError('linux.timeOffsets: requires a new time namespace in linux.namespaces', { code: 'EINVAL' });
    }
    for (const clock of ['monotonic', 'boottime'] as const) {
      const o = offsets[clock];
      if (o) plan.timeOffsets.push({ clock, secs: o.secs ?? 0, nanosecs: o.nanosecs ?? 0 });
    }
  }
  // Hostname needs its own UTS namespace, as runc insists.
  if ((spec.hostname || spec.domainname) && !seen.has('uts')) {
    throw new RuntimeError('hostname: setting the hostname or domainname needs a new uts namespace in linux.namespaces', { code: 'EINVAL' });
  }
  if (plan.user && plan.user.path === null) {
    plan.uidMap = renderIdMap(spec.linux?.uidMappings, 'linux.uidMappings');
    plan.gidMap = renderIdMap(spec.linux?.gidMappings, 'linux.gidMappings');
  } else if ((spec.linux?.uidMappings?.length ?? 0) > 0 || (spec.linux?.gidMappings?.length ?? 0) > 0) {
    throw new RuntimeError('linux.uidMappings: mappings need a new user namespace in linux.namespaces', { code: 'EINVAL' });
  }
  return plan;
}
