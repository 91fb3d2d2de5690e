// linux.resources → cgroup file writes, for v1 and v2 (one shared writer, as
// crun's cgroup-resources.c). Two halves:
//
//   planResources(version, resources)  pure: the writes in order, with the
//                                      config field each comes from, plus
//                                      warnings for what this cgroup version
//                                      cannot do. `explain` prints it.
//   applyWrites(dirs, writes)          performs them: one open(O_WRONLY|O_TRUNC)
//                                      + write per value, traced, with the few
//                                      kernel-order rules runc knows about.
//
// Value conventions follow runc (libcontainer/cgroups/fs and fs2): 0 means
// "not set" for limits, -1 means unlimited ("max" on v2).

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DeviceCgroup } from '../spec/generated/config';
import { RuntimeError } from '../sys/errors';
import { trace } from '../sys/trace';
import type { CgroupWrite, LinuxResources } from './manager';

export interface ResourcePlan {
  writes: CgroupWrite[];
  /** Settings this cgroup version cannot apply; they are skipped. */
  warnings: string[];
}

const F = 'linux.resources';

/**
 * runc's (1.1) cpu.shares → cpu.weight: maps [2, 262144] linearly onto
 * [1, 10000] (1024 → 39). 0 is "unset". runc ≥ 1.3 switched to a curve
 * through 1024 → 100; crun 1.8 and runc 1.1 on this host use this one.
 */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  const s = Math.min(Math.max(shares, 2), 262144);
  return 1 + Math.floor(((s - 2) * 9999) / 262142);
}

/** runc's blkio.weight [10, 1000] → io.weight [1, 10000]. */
export function blkioToIoWeight(weight: number): number {
  if (weight === 0) return 0;
  const w = Math.min(Math.max(weight, 10), 1000);
  return 1 + Math.floor(((w - 10) * 9999) / 990);
}

/** runc's ConvertMemorySwapToCgroupV2Value: OCI swap is memory+swap; v2 wants swap alone. */
export function swapToV2(swap: number, limit: number): number {
  if (limit === -1 && swap === 0) return -1;
  if (swap === -1 || swap === 0) return swap;
  if (limit === 0 || limit === -1) {
    throw new RuntimeError(`invalid ${F}.memory.swap ${swap}: a swap limit needs a memory limit`, { code: 'EINVAL' });
  }
  if (swap < limit) {
    throw new RuntimeError(`invalid ${F}.memory.swap ${swap}: memory+swap must be >= memory.limit ${limit}`, { code: 'EINVAL' });
  }
  return swap - limit;
}

/** v2 numbers: 0 unset (''), -1 "max". */
function v2num(n: number | undefined): string {
  if (n === undefined || n === 0) return '';
  return n === -1 ? 'max' : String(n);
}

/**
 * runc's default device rules (specconv.AllowedDevices), appended after the
 * config's own rules: mknod of anything, and the devices every container
 * gets (/dev/null, zero, full, random, urandom, tty, pts, ptmx, net/tun).
 */
export const DEFAULT_DEVICE_RULES: readonly DeviceCgroup[] = [
  { allow: true, type: 'c', access: 'm' },
  { allow: true, type: 'b', access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
  { allow: true, type: 'c', major: 136, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' },
];

/** One OCI device rule → the lines for v1 devices.allow / devices.deny. */
export function deviceRuleLines(d: DeviceCgroup): string[] {
  const type = d.type ?? 'a';
  const access = d.access ?? 'rwm';
  if (!/^[rwm]{1,3}$/.test(access)) throw new RuntimeError(`invalid device rule access "${access}" in ${F}.devices`, { code: 'EINVAL' });
  if (!['a', 'b', 'c'].includes(type)) throw new RuntimeError(`invalid device rule type "${type}" in ${F}.devices`, { code: 'EINVAL' });
  const num = (n: number | undefined): string => (n === undefined || n === -1 ? '*' : String(n));
  const wildcard = d.major === undefined || d.major === -1 ? d.minor === undefined || d.minor === -1 : false;
  if (type === 'a') {
    // The kernel reads any line starting with 'a' as "every device, every
    // access" (it switches the whole cgroup to allow or deny). Only say that
    // when it is meant; otherwise spell the rule out for both types.
    if (wildcard && [...'rwm'].every((c) => access.includes(c))) return ['a'];
    return [`c ${num(d.major)}:${num(d.minor)} ${access}`, `b ${num(d.major)}:${num(d.minor)} ${access}`];
  }
  return [`${type} ${num(d.major)}:${num(d.minor)} ${access}`];
}

/** The writes (and warnings) for one cgroup version. Throws on invalid values. */
export function planResources(version: 1 | 2, r: LinuxResources): ResourcePlan {
  return version === 1 ? planV1(r) : planV2(r);
}

function planV1(r: LinuxResources): ResourcePlan {
  // Refused even when empty, as runc (ErrV1NoUnified: any non-nil map; JSON
  // null is nil there and passes): the config was written for a v2 host.
  if (r.unified !== undefined && (r.unified as unknown) !== null) {
    const keys = Object.keys(r.unified);
    const what = keys.length === 0 ? 'is set (to {})' : `is set (${keys.join(', ')})`;
    throw new RuntimeError(`invalid configuration: cannot use unified on cgroup v1: ${F}.unified ${what}; it needs cgroup v2, and this host's controllers are cgroup v1`, { code: 'ENOTSUP' });
  }
  const writes: CgroupWrite[] = [];
  const warnings: string[] = [];
  const w = (controller: string, file: string, value: string | number, why: string, extra: Partial<CgroupWrite> = {}): void => {
    writes.push({ controller, file, value: String(value), why, ...extra });
  };

  const m = r.memory;
  if (m) {
    const limit = m.limit ?? 0;
    const swap = m.swap ?? 0;
    // Listed limit first; applyWrites swaps the pair when the current
    // limit asks for it (runc's setMemoryAndSwap).
    if (limit !== 0) w('memory', 'memory.limit_in_bytes', limit, `${F}.memory.limit`);
    if (swap !== 0) {
      w('memory', 'memory.memsw.limit_in_bytes', swap, `${F}.memory.swap`, { optional: true });
    } else if (limit === -1) {
      // runc: an unlimited memory with no swap setting means unlimited swap too.
      w('memory', 'memory.memsw.limit_in_bytes', -1, `${F}.memory.limit (-1: memory+swap unlimited too)`, { optional: true });
    }
    if (m.reservation) w('memory', 'memory.soft_limit_in_bytes', m.reservation, `${F}.memory.reservation`);
    if (m.disableOOMKiller) w('memory', 'memory.oom_control', 1, `${F}.memory.disableOOMKiller`);
    if (m.swappiness !== undefined && m.swappiness !== -1) {
      if (m.swappiness < 0 || m.swappiness > 100) {
        throw new RuntimeError(`invalid ${F}.memory.swappiness ${m.swappiness} (valid range is 0-100)`, { code: 'EINVAL' });
      }
      w('memory', 'memory.swappiness', m.swappiness, `${F}.memory.swappiness`);
    }
    if (m.kernel) warnings.push(`${F}.memory.kernel is ignored: kernel memory limits are deprecated (as runc)`);
    if (m.kernelTCP) warnings.push(`${F}.memory.kernelTCP is ignored: deprecated (as runc)`);
  }

  const c = r.cpu;
  if (c) {
    if (c.shares) w('cpu', 'cpu.shares', c.shares, `${F}.cpu.shares`);
    // A period lower than the current one may get EINVAL until the quota is
    // written; applyWrites retries it after the quota (as runc).
    if (c.period) w('cpu', 'cpu.cfs_period_us', c.period, `${F}.cpu.period`);
    if (c.quota) w('cpu', 'cpu.cfs_quota_us', c.quota, `${F}.cpu.quota`);
    if (c.burst !== undefined) w('cpu', 'cpu.cfs_burst_us', c.burst, `${F}.cpu.burst`);
    if (c.idle !== undefined) w('cpu', 'cpu.idle', c.idle, `${F}.cpu.idle`);
    if (c.realtimePeriod) w('cpu', 'cpu.rt_period_us', c.realtimePeriod, `${F}.cpu.realtimePeriod`);
    if (c.realtimeRuntime) w('cpu', 'cpu.rt_runtime_us', c.realtimeRuntime, `${F}.cpu.realtimeRuntime`);
    if (c.cpus) w('cpuset', 'cpuset.cpus', c.cpus, `${F}.cpu.cpus`);
    if (c.mems) w('cpuset', 'cpuset.mems', c.mems, `${F}.cpu.mems`);
  }

  if (r.pids) w('pids', 'pids.max', r.pids.limit > 0 ? r.pids.limit : 'max', `${F}.pids.limit`);

  const b = r.blockIO;
  if (b) {
    // blkio.weight exists with CFQ (kernels < 5.0); with BFQ it is
    // blkio.bfq.weight. With neither, skip with a warning (as Docker does).
    if (b.weight) {
      w('blkio', 'blkio.weight', b.weight, `${F}.blockIO.weight`, { fallback: { file: 'blkio.bfq.weight', value: String(b.weight) }, optional: true });
    }
    if (b.leafWeight) w('blkio', 'blkio.leaf_weight', b.leafWeight, `${F}.blockIO.leafWeight`, { optional: true });
    for (const [i, d] of (b.weightDevice ?? []).entries()) {
      const dev = `${d.major}:${d.minor}`;
      if (d.weight) {
        const v = `${dev} ${d.weight}`;
        w('blkio', 'blkio.weight_device', v, `${F}.blockIO.weightDevice[${i}].weight`, { fallback: { file: 'blkio.bfq.weight_device', value: v }, optional: true });
      }
      if (d.leafWeight) w('blkio', 'blkio.leaf_weight_device', `${dev} ${d.leafWeight}`, `${F}.blockIO.weightDevice[${i}].leafWeight`, { optional: true });
    }
    const throttle = [
      ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device'],
      ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'],
      ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'],
      ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'],
    ] as const;
    for (const [field, file] of throttle) {
      for (const [i, d] of (b[field] ?? []).entries()) w('blkio', file, `${d.major}:${d.minor} ${d.rate ?? 0}`, `${F}.blockIO.${field}[${i}]`);
    }
  }

  for (const [i, h] of (r.hugepageLimits ?? []).entries()) {
    w('hugetlb', `hugetlb.${pageSize(h.pageSize)}.limit_in_bytes`, h.limit, `${F}.hugepageLimits[${i}]`);
  }

  if (r.network) {
    if (r.network.classID !== undefined) w('net_cls', 'net_cls.classid', r.network.classID, `${F}.network.classID`);
    for (const [i, p] of (r.network.priorities ?? []).entries()) {
      w('net_prio', 'net_prio.ifpriomap', `${p.name} ${p.priority}`, `${F}.network.priorities[${i}]`);
    }
  }

  planRdma(r, writes, 'rdma');

  if (r.devices && r.devices.length > 0) {
    for (const [i, d] of r.devices.entries()) {
      for (const line of deviceRuleLines(d)) w('devices', d.allow ? 'devices.allow' : 'devices.deny', line, `${F}.devices[${i}]`);
    }
    for (const d of DEFAULT_DEVICE_RULES) {
      for (const line of deviceRuleLines(d)) w('devices', 'devices.allow', line, `${F}.devices (runc's default allowed devices)`);
    }
  }

  return { writes, warnings };
}

function planV2(r: LinuxResources): ResourcePlan {
  const writes: CgroupWrite[] = [];
  const warnings: string[] = [];
  const w = (file: string, value: string | number, why: string, extra: Partial<CgroupWrite> = {}): void => {
    writes.push({ controller: 'unified', file, value: String(value), why, ...extra });
  };

  const m = r.memory;
  if (m) {
    const limit = m.limit ?? 0;
    const swap = m.swap ?? 0;
    const v2swap = swapToV2(swap, limit);
    let swapStr = v2num(v2swap);
    if (swapStr === '' && v2swap === 0 && swap > 0) swapStr = '0'; // memory == memory+swap: no swap
    // Written before memory.max, as runc. Without swap accounting the file
    // is missing; that only matters when a real limit was asked for.
    if (swapStr !== '') {
      const why = swap === 0 ? `${F}.memory.limit (-1: swap unlimited too)` : `${F}.memory.swap (minus memory.limit)`;
      w('memory.swap.max', swapStr, why, swapStr === 'max' || swapStr === '0' ? { optional: true } : {});
    }
    if (limit !== 0) w('memory.max', v2num(limit), `${F}.memory.limit`);
    if (m.reservation) w('memory.low', v2num(m.reservation), `${F}.memory.reservation`);
    if (m.swappiness !== undefined && m.swappiness !== -1) warnings.push(`${F}.memory.swappiness is ignored: cgroup v2 has no per-cgroup swappiness`);
    if (m.disableOOMKiller) warnings.push(`${F}.memory.disableOOMKiller is ignored: cgroup v2 cannot disable the OOM killer`);
    if (m.kernel) warnings.push(`${F}.memory.kernel is ignored: kernel memory limits are deprecated (as runc)`);
    if (m.kernelTCP) warnings.push(`${F}.memory.kernelTCP is ignored: deprecated (as runc)`);
  }

  const c = r.cpu;
  if (c) {
    if (c.shares) w('cpu.weight', sharesToWeight(c.shares), `${F}.cpu.shares (${c.shares} → weight)`);
    if (c.idle !== undefined) w('cpu.idle', c.idle, `${F}.cpu.idle`);
    if (c.quota || c.period) {
      let v = c.quota && c.quota > 0 ? String(c.quota) : 'max';
      if (c.period) v += ` ${c.period}`;
      w('cpu.max', v, `${F}.cpu.quota/period`);
    }
    if (c.burst !== undefined) w('cpu.max.burst', c.burst, `${F}.cpu.burst`);
    if (c.realtimePeriod || c.realtimeRuntime) warnings.push(`${F}.cpu.realtimePeriod/realtimeRuntime are ignored: cgroup v2 has no realtime group scheduling`);
    if (c.cpus) w('cpuset.cpus', c.cpus, `${F}.cpu.cpus`);
    if (c.mems) w('cpuset.mems', c.mems, `${F}.cpu.mems`);
  }

  if (r.pids) w('pids.max', r.pids.limit > 0 ? r.pids.limit : 'max', `${F}.pids.limit`);

  const b = r.blockIO;
  if (b) {
    // BFQ takes the weight as is; without it, io.weight with runc's conversion.
    if (b.weight) {
      w('io.bfq.weight', b.weight, `${F}.blockIO.weight`, { fallback: { file: 'io.weight', value: String(blkioToIoWeight(b.weight)) } });
    }
    if (b.leafWeight) warnings.push(`${F}.blockIO.leafWeight is ignored: cgroup v2 has no leaf weight`);
    for (const [i, d] of (b.weightDevice ?? []).entries()) {
      // Only BFQ has per-device weights (runc skips them without it).
      if (d.weight) w('io.bfq.weight', `${d.major}:${d.minor} ${d.weight}`, `${F}.blockIO.weightDevice[${i}].weight`, { optional: true });
      if (d.leafWeight) warnings.push(`${F}.blockIO.weightDevice[${i}].leafWeight is ignored: cgroup v2 has no leaf weight`);
    }
    const throttle = [
      ['throttleReadBpsDevice', 'rbps'],
      ['throttleWriteBpsDevice', 'wbps'],
      ['throttleReadIOPSDevice', 'riops'],
      ['throttleWriteIOPSDevice', 'wiops'],
    ] as const;
    for (const [field, key] of throttle) {
      for (const [i, d] of (b[field] ?? []).entries()) w('io.max', `${d.major}:${d.minor} ${key}=${d.rate ?? 0}`, `${F}.blockIO.${field}[${i}]`);
    }
  }

  for (const [i, h] of (r.hugepageLimits ?? []).entries()) {
    w(`hugetlb.${pageSize(h.pageSize)}.max`, h.limit, `${F}.hugepageLimits[${i}]`);
  }

  if (r.network && (r.network.classID !== undefined || (r.network.priorities ?? []).length > 0)) {
    warnings.push(`${F}.network is ignored: net_cls and net_prio do not exist on cgroup v2`);
  }

  planRdma(r, writes, 'unified');

  if (r.devices && r.devices.length > 0) {
    warnings.push(`${F}.devices is not enforced: cgroup v2 device control needs an eBPF program, which mycontainer does not load yet`);
  }

  // Last, so that it overrides the fields above (as runc).
  for (const [key, value] of Object.entries(r.unified ?? {})) {
    if (value === undefined) continue;
    if (key.includes('/') || !key.includes('.')) {
      throw new RuntimeError(`invalid ${F}.unified key "${key}": must be a file name of the form controller.parameter`, { code: 'EINVAL' });
    }
    for (const line of value.split('\n')) if (line !== '') w(key, line, `${F}.unified["${key}"]`);
  }
  return { writes, warnings };
}

function planRdma(r: LinuxResources, writes: CgroupWrite[], controller: string): void {
  for (const [dev, lim] of Object.entries(r.rdma ?? {})) {
    if (!lim) continue;
    const parts = [dev];
    if (lim.hcaHandles !== undefined) parts.push(`hca_handle=${lim.hcaHandles}`);
    if (lim.hcaObjects !== undefined) parts.push(`hca_object=${lim.hcaObjects}`);
    if (parts.length > 1) writes.push({ controller, file: 'rdma.max', value: parts.join(' '), why: `${F}.rdma["${dev}"]` });
  }
}

function pageSize(s: string): string {
  if (!/^\d+[KMGTP]?B$/.test(s)) throw new RuntimeError(`invalid ${F}.hugepageLimits pageSize "${s}" (expected like 2MB, 1GB)`, { code: 'EINVAL' });
  return s;
}

/**
 * runc's setMemoryAndSwap order for v1: the kernel wants limit ≤ memsw at
 * every moment, so when the new memsw is above the current limit (or
 * unlimited), memsw goes first; otherwise the limit goes first.
 */
export function orderV1Memory(writes: CgroupWrite[], currentLimit: bigint): CgroupWrite[] {
  const li = writes.findIndex((x) => x.controller === 'memory' && x.file === 'memory.limit_in_bytes');
  const si = writes.findIndex((x) => x.controller === 'memory' && x.file === 'memory.memsw.limit_in_bytes');
  if (li < 0 || si < 0 || si < li) return writes;
  const swapValue = writes[si]?.value ?? '0';
  const swapFirst = swapValue === '-1' || currentLimit < BigInt(swapValue);
  if (!swapFirst) return writes;
  const out = [...writes];
  const [swap] = out.splice(si, 1);
  if (swap) out.splice(li, 0, swap);
  return out;
}

/** A period written before its quota (or rt runtime) may be refused until that is written. */
const RETRY_AFTER: Record<string, string> = {
  'cpu.cfs_period_us': 'cpu.cfs_quota_us',
  'cpu.rt_period_us': 'cpu.rt_runtime_us',
};

function errnoOf(e: unknown): string {
  return e && typeof e === 'object' && 'code' in e && typeof e.code === 'string' ? e.code : 'EIO';
}

function errnoTextOf(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const m = /^[A-Z0-9]+: ([^,]+)/.exec(msg);
  return `${errnoOf(e)} (${m?.[1] ?? msg})`;
}

/** One cgroup file write, as the kernel wants it: one write(2) into an existing file. */
export function writeCgroupFile(file: string, value: string, why: string): void {
  try {
    // O_WRONLY without O_CREAT: a missing file is ENOENT, never a new file
    // (some cgroup files are write-only, so no O_RDWR either).
    const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_TRUNC);
    try {
      fs.writeFileSync(fd, value);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    trace({ kind: 'cgroup', call: `write ${file}`, result: `"${value}" = -1 ${errnoOf(e)}`, why });
    throw e;
  }
  trace({ kind: 'cgroup', call: `write ${file}`, result: `"${value}"`, why });
}

function failure(file: string, value: string, why: string, e: unknown, extra = ''): RuntimeError {
  return new RuntimeError(`cannot write "${value}" to ${file} (${why})${extra}: ${errnoTextOf(e)}`, { code: errnoOf(e), cause: e });
}

function readTrim(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

/**
 * Performs the writes into the container's directories (controller →
 * directory). Returns the warnings for skipped optional writes. Throws a
 * RuntimeError naming the file, the value, the config field and the errno.
 */
export function applyWrites(dirs: Record<string, string>, planned: CgroupWrite[]): string[] {
  const warnings: string[] = [];
  for (const w of planned) {
    if (dirs[w.controller] !== undefined) continue;
    const msg = `cannot apply ${w.why}: the ${w.controller} controller is not available on this host`;
    if (w.optional) warnings.push(msg);
    else throw new RuntimeError(msg, { code: 'ENOTSUP' });
  }
  let writes = planned.filter((w) => dirs[w.controller] !== undefined);

  const memDir = dirs['memory'];
  if (memDir !== undefined && writes.some((w) => w.controller === 'memory' && w.file === 'memory.memsw.limit_in_bytes')) {
    const cur = readTrim(path.join(memDir, 'memory.limit_in_bytes'));
    if (cur !== null && /^\d+$/.test(cur)) writes = orderV1Memory(writes, BigInt(cur));
  }

  const deferred = new Map<string, CgroupWrite>(); // partner file → write to retry after it
  for (const w of writes) {
    const dir = dirs[w.controller] ?? '';
    writeOne(dir, w, writes, deferred, warnings);
    const again = deferred.get(`${w.controller}/${w.file}`);
    if (again) {
      deferred.delete(`${w.controller}/${w.file}`);
      const file = path.join(dir, again.file);
      try {
        writeCgroupFile(file, again.value, again.why);
      } catch (e) {
        throw failure(file, again.value, again.why, e);
      }
    }
  }
  return warnings;
}

function writeOne(dir: string, w: CgroupWrite, all: CgroupWrite[], deferred: Map<string, CgroupWrite>, warnings: string[]): void {
  const file = path.join(dir, w.file);
  try {
    writeCgroupFile(file, w.value, w.why);
  } catch (e) {
    const code = errnoOf(e);
    if (code === 'ENOENT' && w.fallback) {
      const fb = path.join(dir, w.fallback.file);
      try {
        writeCgroupFile(fb, w.fallback.value, w.why);
        return;
      } catch (e2) {
        if (errnoOf(e2) !== 'ENOENT') throw failure(fb, w.fallback.value, w.why, e2);
      }
    }
    if (code === 'ENOENT' && w.optional) {
      const names = w.fallback ? `${w.file} nor ${w.fallback.file} exists` : `${w.file} does not exist`;
      const msg = `skipped ${w.why}: ${names} in ${dir} (controller feature not enabled in this kernel)`;
      trace({ kind: 'cgroup', call: `write ${file}`, result: 'skipped: no such file', why: w.why });
      warnings.push(msg);
      return;
    }
    const partner = RETRY_AFTER[w.file];
    if (code === 'EINVAL' && partner && all.some((x) => x.controller === w.controller && x.file === partner)) {
      deferred.set(`${w.controller}/${partner}`, w);
      return;
    }
    if (code === 'EBUSY' && (w.file === 'memory.limit_in_bytes' || w.file === 'memory.max')) {
      const usage = readTrim(path.join(dir, w.file === 'memory.max' ? 'memory.current' : 'memory.usage_in_bytes'));
      const peak = readTrim(path.join(dir, w.file === 'memory.max' ? 'memory.peak' : 'memory.max_usage_in_bytes'));
      throw failure(file, w.value, w.why, e, `: below the current usage ${usage ?? '?'} (peak ${peak ?? '?'})`);
    }
    if (code === 'ENOENT') throw failure(file, w.value, w.why, e, ' (the kernel does not offer this file: controller or feature missing)');
    throw failure(file, w.value, w.why, e);
  }
  if (w.file === 'cpu.shares') {
    // The kernel clamps cpu.shares silently; runc reads it back and says so.
    const got = readTrim(file);
    if (got !== null && got !== w.value) {
      const bound = Number(got) < Number(w.value) ? 'maximum' : 'minimum';
      throw new RuntimeError(`cannot set ${w.why} to ${w.value}: the ${bound} allowed cpu.shares is ${got}`, { code: 'EINVAL' });
    }
  }
}
