// What runs in a container and what it uses: its processes (docker top)
// and a sample of its cgroup's figures (docker stats), through the runtime.

import * as fs from 'node:fs';
import type { Container, Paths } from './containers';
import { runtimeContext } from './lifecycle';

const rt = (): typeof import('../runtime/container') => require('../runtime/container') as typeof import('../runtime/container');

export interface ProcessRow {
  uid: string;
  pid: number;
  ppid: string;
  cmd: string;
}

/** The container's processes, from /proc (those gone meanwhile are left out). */
export function containerProcesses(p: Paths, c: Container): ProcessRow[] {
  const pids = rt().pids(runtimeContext(p), c.id);
  return pids.map((pid): ProcessRow | null => {
    try {
      const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const uid = /^Uid:\s+(\d+)/m.exec(st)?.[1] ?? '?';
      const ppid = /^PPid:\s+(\d+)/m.exec(st)?.[1] ?? '?';
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      return { uid, pid, ppid, cmd };
    } catch {
      return null;
    }
  }).filter((r): r is ProcessRow => r !== null);
}

export interface StatsSample {
  /** cpu time used, ns */
  cpu: number;
  mem: number;
  limit: number;
  pids: number;
}

/** One sample of each container's figures, by id (those stopped meanwhile are left out). */
export function sampleStats(p: Paths, containers: readonly Container[]): Map<string, StatsSample> {
  const ctx = runtimeContext(p);
  const m = new Map<string, StatsSample>();
  for (const c of containers) {
    try {
      const s = rt().stats(ctx, c.id) as { data: { cpu: { usage: { total: number } }; memory: { usage: { usage: number; limit: number } }; pids: { current: number } } };
      m.set(c.id, { cpu: s.data.cpu.usage.total, mem: s.data.memory.usage.usage, limit: s.data.memory.usage.limit, pids: s.data.pids.current });
    } catch {
      // stopped meanwhile
    }
  }
  return m;
}
