// Cgroups: detect the host's layout, place the container's cgroup
// (paths.ts), and hand back a manager (fs.ts) that writes the limits
// (resources.ts). See manager.ts for the interface.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError, messageOf } from '../sys/errors';
import { DEFAULT_ROOT, detectCgroups, parseProcCgroup, readLayout } from './detect';
import { FsManager } from './fs';
import type { CgroupDriver, CgroupManager } from './manager';
import { cgroupDirs, resolveCgroupsPath } from './paths';

export type { CgroupDriver, CgroupManager, CgroupStats, CgroupWrite, LinuxResources } from './manager';
export { detectCgroups, parseProcCgroup, readLayout, DEFAULT_ROOT } from './detect';
export type { CgroupLayout, Hierarchy, OwnCgroups } from './detect';
export { resolveCgroupsPath, expandSlice, cgroupDirs, DEFAULT_PARENT } from './paths';
export { planResources, applyWrites, deviceRuleLines, DEFAULT_DEVICE_RULES, sharesToWeight, blkioToIoWeight, swapToV2, orderV1Memory } from './resources';
export type { ResourcePlan } from './resources';
export { readStatsV1, readStatsV2, formatStatsEvent, emptyStats, UINT64_MAX } from './stats';
export type { RuncStats, RuncStatsEvent, RuncCpuUsage, RuncThrottling, RuncMemory, RuncMemoryEntry, RuncBlkio, RuncBlkioEntry, RuncHugetlb } from './stats';

export interface CgroupManagerOptions {
  /** linux.cgroupsPath: absolute, relative (to our own cgroup), "slice:prefix:name", or absent (/mycontainer/<id>). */
  cgroupsPath?: string | undefined;
  id: string;
  /** Where the hierarchies are; default /sys/fs/cgroup. Tests point it at a fake tree or at /sys/fs/cgroup/unified. */
  root?: string | undefined;
  /** /proc/self/mountinfo text (default: read it). */
  mountinfo?: string | undefined;
  /** /proc/self/cgroup text, for a relative cgroupsPath (default: read it). */
  procSelfCgroup?: string | undefined;
}

/** The manager for a new container's cgroup on this host (creates nothing yet). */
export function cgroupManager(opts: CgroupManagerOptions): CgroupManager {
  const root = opts.root ?? DEFAULT_ROOT;
  const layout = opts.mountinfo === undefined ? readLayout(root) : detectCgroups({ mountinfo: opts.mountinfo, root });
  const inner = resolveCgroupsPath(opts.cgroupsPath, opts.id);
  let own;
  if (!inner.absolute) {
    let text = opts.procSelfCgroup;
    if (text === undefined) {
      try {
        text = fs.readFileSync('/proc/self/cgroup', 'utf8');
      } catch (e) {
        throw new RuntimeError(`cannot read /proc/self/cgroup for the relative linux.cgroupsPath: ${messageOf(e)}`, { cause: e });
      }
    }
    own = parseProcCgroup(text);
  }
  return new FsManager(layout.driver, cgroupDirs(layout, inner, own));
}

/** Rebuilds a manager from what paths() returned (the state file), for kill --all, pause and delete. */
export function managerFromPaths(driver: CgroupDriver, paths: Record<string, string>): CgroupManager {
  for (const [c, p] of Object.entries(paths)) {
    if (!path.isAbsolute(p) || path.normalize(p) !== p) {
      throw new RuntimeError(`invalid cgroup path for ${c} in the state file: "${p}"`, { code: 'EINVAL' });
    }
  }
  return new FsManager(driver, paths);
}
