// ContainerStats and UpdateContainerResources: the cgroup figures of a CRI
// container (read through the runtime library, v1 or v2 alike) in the CRI's
// shape, and CRI resources written back as an OCI update.

import * as rt from '../runtime/container';
import { liveStatus, type Container } from '../engine/containers';
import type { LinuxContainerResources__Output } from './proto/generated/runtime/v1/LinuxContainerResources';
import { readInfo, type ContainerContext } from './containers';
import { invalid, precondition } from './errors';
import { nowNanos, type SandboxRecord } from './sandbox-store';

export function containerStats(x: ContainerContext, c: Container): Record<string, unknown> {
  const info = readInfo(x, c.id);
  const ts = nowNanos();
  const out: Record<string, unknown> = {
    attributes: { id: c.id, metadata: info?.metadata ?? null, labels: info?.labels ?? {}, annotations: info?.annotations ?? {} },
  };
  if (liveStatus(c) !== 'running') return out;
  let s: ReturnType<typeof rt.stats>;
  try {
    s = rt.stats(x.runtime, c.id);
  } catch {
    return out;
  }
  const d = s.data;
  const usage = d.memory?.usage?.usage ?? 0;
  const inactive = Number(d.memory?.raw?.['total_inactive_file'] ?? d.memory?.raw?.['inactive_file'] ?? 0);
  out['cpu'] = { timestamp: ts, usage_core_nano_seconds: { value: String(d.cpu?.usage?.total ?? 0) } };
  out['memory'] = {
    timestamp: ts,
    working_set_bytes: { value: String(Math.max(0, usage - inactive)) },
    usage_bytes: { value: String(usage) },
    rss_bytes: { value: String(d.memory?.raw?.['total_rss'] ?? d.memory?.raw?.['anon'] ?? 0) },
  };
  return out;
}

export function updateResources(x: ContainerContext, c: Container, r: LinuxContainerResources__Output | null): void {
  if (!r) throw invalid(`UpdateContainerResources ${c.id.slice(0, 13)}: linux resources are required`);
  if (liveStatus(c) !== 'running') throw precondition(`UpdateContainerResources ${c.id.slice(0, 13)}: the container is not running`);
  const res: import('../runtime/cgroups/manager').LinuxResources = {};
  const cpu: NonNullable<typeof res.cpu> = {};
  if (Number(r.cpu_shares) > 0) cpu.shares = Number(r.cpu_shares);
  if (Number(r.cpu_quota) !== 0) cpu.quota = Number(r.cpu_quota);
  if (Number(r.cpu_period) > 0) cpu.period = Number(r.cpu_period);
  if (r.cpuset_cpus) cpu.cpus = r.cpuset_cpus;
  if (r.cpuset_mems) cpu.mems = r.cpuset_mems;
  if (Object.keys(cpu).length > 0) res.cpu = cpu;
  if (Number(r.memory_limit_in_bytes) > 0) res.memory = { limit: Number(r.memory_limit_in_bytes) };
  rt.update(x.runtime, c.id, res);
}

/** A pod's figures: the sum of its running containers' (each container has its own cgroup under the pod's parent). */
export function podSandboxStats(x: ContainerContext, s: SandboxRecord, containers: readonly Container[]): Record<string, unknown> {
  const ts = nowNanos();
  const each = containers.map((c) => containerStats(x, c));
  const sum = (pick: (st: Record<string, unknown>) => unknown): string =>
    String(each.reduce((n, st) => n + Number((pick(st) as { value?: string } | undefined)?.value ?? 0), 0));
  return {
    attributes: { id: s.id, metadata: s.config.metadata, labels: s.config.labels, annotations: s.config.annotations },
    linux: {
      cpu: { timestamp: ts, usage_core_nano_seconds: { value: sum((st) => (st['cpu'] as Record<string, unknown> | undefined)?.['usage_core_nano_seconds']) } },
      memory: { timestamp: ts, working_set_bytes: { value: sum((st) => (st['memory'] as Record<string, unknown> | undefined)?.['working_set_bytes']) } },
      containers: each,
    },
  };
}
