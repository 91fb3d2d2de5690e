// The cgroup manager interface: a manager owns a container cgroup's
// lifecycle (create, add a process, set limits, freeze, remove). Writing the
// limits is shared code (resources.ts); v1, v2 and hybrid hosts each get a
// manager. A manager is rebuilt from the state file for `delete`, so
// `paths()` says everything needed to find the cgroup again.

import type { Linux } from '../spec/generated/config';
import type { RuncStats } from './stats';

export type LinuxResources = NonNullable<Linux['resources']>;

export type CgroupDriver = 'v1' | 'v2' | 'hybrid';

/** One file write a manager will make: what `explain` prints and `--debug` traces. */
export interface CgroupWrite {
  /** Controller ('memory', 'cpu', ...; 'unified' for a v2 file). */
  controller: string;
  /** File name inside the cgroup directory, e.g. memory.limit_in_bytes. */
  file: string;
  value: string;
  /** The config field that asked for it, e.g. linux.resources.memory.limit. */
  why: string;
  /**
   * Written instead when `file` does not exist (blkio.weight → blkio.bfq.weight,
   * io.bfq.weight → io.weight with a converted value).
   */
  fallback?: { file: string; value: string };
  /**
   * When neither `file` nor `fallback` exists, skip with a warning instead of
   * failing (memory.memsw.* without swap accounting, blkio weights without BFQ).
   */
  optional?: boolean;
}

/** Usage figures; a field is absent when its controller is not there. */
export interface CgroupStats {
  /** memory.usage_in_bytes (v1) or memory.current (v2), bytes. */
  memoryUsage?: number;
  /** memory.limit_in_bytes (v1) or memory.max (v2); absent when unlimited. */
  memoryLimit?: number;
  /** cpuacct.usage (v1) or cpu.stat usage_usec × 1000 (v2), nanoseconds. */
  cpuUsageNs?: number;
  /** pids.current. */
  pidsCurrent?: number;
}

export interface CgroupManager {
  readonly driver: CgroupDriver;
  /** Controller name → absolute directory of this container's cgroup ('unified' for v2). */
  paths(): Record<string, string>;
  /** Creates the directories (mkdir -p); idempotent. */
  create(): void;
  /** Moves a process into the cgroup (every hierarchy). */
  addProcess(pid: number): void;
  /**
   * Writes the limits; throws a RuntimeError naming the file and field on
   * failure. Returns warnings (settings this host cannot apply and skipped).
   */
  setResources(resources: LinuxResources): string[];
  /** The writes setResources would make, without making them (pure). */
  plan(resources: LinuxResources): CgroupWrite[];
  /** PIDs in the cgroup (all hierarchies, deduplicated). */
  pids(): number[];
  /** Freezes or thaws every process in the cgroup; waits until done. */
  freeze(frozen: boolean): void;
  /** How many times the OOM killer struck in the cgroup (v1 memory.oom_control, v2 memory.events oom_kill); 0 without a memory controller. */
  oomKills(): number;
  /** Whether the cgroup exists and is frozen (v1 freezer.state FROZEN or FREEZING, v2 cgroup.freeze 1). */
  frozen(): boolean;
  /** Removes the directories; kills nothing. Missing directories are not an error. */
  destroy(): void;
  /** Current usage (memory, cpu, pids) as far as the controllers are there. */
  stats(): CgroupStats;
  /** Every figure of `runc events --stats` (runc's types.Stats); missing controllers read as zeros. */
  runcStats(): RuncStats;
}
