// `runc events --stats`: the figures of runc's types.Stats (types/events.go),
// read from the container's cgroup files, v1 (fs/*.go) or v2 (fs2/*.go).
//
// Every figure is a number: a missing controller or file gives zeros (and
// empty lists), never an error, so a host without hugetlb or swap
// accounting still prints the rest. runc omits zero fields (omitempty);
// we print them as 0, which a Go decoder reads the same.
//
// Values that mean "no limit" are what runc reports: v1's raw page-counter
// maximum (9223372036854771712), v2's "max" as UINT64_MAX, pids "max" as 0.

import * as fs from 'node:fs';
import * as path from 'node:path';

/** v2's "max" (runc: math.MaxUint64). Not exact as a double; formatStatsEvent prints runc's digits. */
export const UINT64_MAX = 2 ** 64;

/** USER_HZ: cpuacct.stat counts ticks of 1/100 s on every Linux (runc hardcodes it too). */
const CLOCK_TICKS = 100;

export interface RuncCpuUsage {
  /** Nanoseconds, as all the cpu figures. */
  total: number;
  percpu: number[];
  percpu_kernel: number[];
  percpu_user: number[];
  kernel: number;
  user: number;
}

export interface RuncThrottling {
  periods: number;
  throttledPeriods: number;
  /** Nanoseconds. */
  throttledTime: number;
}

export interface RuncMemoryEntry {
  limit: number;
  usage: number;
  max: number;
  failcnt: number;
}

export interface RuncMemory {
  cache: number;
  usage: RuncMemoryEntry;
  swap: RuncMemoryEntry;
  kernel: RuncMemoryEntry;
  kernelTCP: RuncMemoryEntry;
  /** memory.stat, key by key. */
  raw: Record<string, number>;
}

export interface RuncBlkioEntry {
  major: number;
  minor: number;
  /** Read, Write, Sync, Async, Discard, Total; '' for files without one (time, sectors). */
  op: string;
  value: number;
}

export interface RuncBlkio {
  ioServiceBytesRecursive: RuncBlkioEntry[];
  ioServicedRecursive: RuncBlkioEntry[];
  ioQueueRecursive: RuncBlkioEntry[];
  ioServiceTimeRecursive: RuncBlkioEntry[];
  ioWaitTimeRecursive: RuncBlkioEntry[];
  ioMergedRecursive: RuncBlkioEntry[];
  ioTimeRecursive: RuncBlkioEntry[];
  sectorsRecursive: RuncBlkioEntry[];
}

export interface RuncHugetlb {
  usage: number;
  max: number;
  failcnt: number;
}

/** runc's types.Stats, the parts a cgroup gives (no cpuset, intel_rdt, network_interfaces). */
export interface RuncStats {
  cpu: { usage: RuncCpuUsage; throttling: RuncThrottling };
  memory: RuncMemory;
  pids: { current: number; limit: number };
  blkio: RuncBlkio;
  /** Page size as the file names spell it ("2MB", "1GB") → figures. */
  hugetlb: Record<string, RuncHugetlb>;
}

/** runc's types.Event for `events --stats`. */
export interface RuncStatsEvent {
  type: 'stats';
  id: string;
  data: RuncStats;
}

const memoryEntry = (): RuncMemoryEntry => ({ limit: 0, usage: 0, max: 0, failcnt: 0 });

export function emptyStats(): RuncStats {
  return {
    cpu: {
      usage: { total: 0, percpu: [], percpu_kernel: [], percpu_user: [], kernel: 0, user: 0 },
      throttling: { periods: 0, throttledPeriods: 0, throttledTime: 0 },
    },
    memory: { cache: 0, usage: memoryEntry(), swap: memoryEntry(), kernel: memoryEntry(), kernelTCP: memoryEntry(), raw: {} },
    pids: { current: 0, limit: 0 },
    blkio: {
      ioServiceBytesRecursive: [],
      ioServicedRecursive: [],
      ioQueueRecursive: [],
      ioServiceTimeRecursive: [],
      ioWaitTimeRecursive: [],
      ioMergedRecursive: [],
      ioTimeRecursive: [],
      sectorsRecursive: [],
    },
    hugetlb: {},
  };
}

// ---- parsers (pure: file text in, figures out) ----

/** One number, or "max" → `max`; anything else (or null: no file) → 0. */
export function parseUint(text: string | null, max = UINT64_MAX): number {
  const t = text?.trim() ?? '';
  if (t === 'max') return max;
  return /^\d+$/.test(t) ? Number(t) : 0;
}

/** "key value" lines (memory.stat, cpu.stat, cpuacct.stat, *.events). Malformed lines are skipped. */
export function parseKeyValues(text: string | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (text ?? '').split('\n')) {
    const m = /^(\S+)\s+(\d+)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** Space-separated numbers (cpuacct.usage_percpu). */
export function parseList(text: string | null): number[] {
  return (text ?? '').split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number);
}

/**
 * v1 blkio tables: "8:0 Read 4096" lines (or "8:0 4096" for time/sectors),
 * then a "Total N" summary line that runc skips as well.
 */
export function parseBlkioV1(text: string | null): RuncBlkioEntry[] {
  const out: RuncBlkioEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    const dev = /^(\d+):(\d+)$/.exec(f[0] ?? '');
    if (!dev) continue;
    const [op, value] = f.length >= 3 ? [f[1] ?? '', f[2]] : ['', f[1]];
    if (value === undefined || !/^\d+$/.test(value)) continue;
    out.push({ major: Number(dev[1]), minor: Number(dev[2]), op, value: Number(value) });
  }
  return out;
}

/** v2 io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...") mapped onto v1's tables, as runc's statIo. */
export function parseIoStat(text: string | null): Pick<RuncBlkio, 'ioServiceBytesRecursive' | 'ioServicedRecursive'> {
  const bytes: RuncBlkioEntry[] = [];
  const ios: RuncBlkioEntry[] = [];
  const table: Record<string, [RuncBlkioEntry[], string]> = { rbytes: [bytes, 'Read'], wbytes: [bytes, 'Write'], rios: [ios, 'Read'], wios: [ios, 'Write'] };
  for (const line of (text ?? '').split('\n')) {
    const [devField, ...items] = line.trim().split(/\s+/);
    const dev = /^(\d+):(\d+)$/.exec(devField ?? '');
    if (!dev) continue;
    for (const item of items) {
      const kv = /^([a-z]+)=(\d+)$/.exec(item);
      const target = kv?.[1] !== undefined ? table[kv[1]] : undefined;
      if (!kv || !target) continue; // dbytes, dios, ...: runc has no table for them either
      target[0].push({ major: Number(dev[1]), minor: Number(dev[2]), op: target[1], value: Number(kv[2]) });
    }
  }
  return { ioServiceBytesRecursive: bytes, ioServicedRecursive: ios };
}

/** cpuacct.usage_all: a "cpu user system" header, then one line per cpu. */
export function parseUsageAll(text: string | null): { user: number[]; kernel: number[] } {
  const user: number[] = [];
  const kernel: number[] = [];
  for (const line of (text ?? '').split('\n').slice(1)) {
    const m = /^\d+\s+(\d+)\s+(\d+)$/.exec(line.trim());
    if (!m) continue;
    user.push(Number(m[1]));
    kernel.push(Number(m[2]));
  }
  return { user, kernel };
}

// ---- readers ----

function readOr(dir: string | undefined, file: string): string | null {
  if (dir === undefined) return null;
  try {
    return fs.readFileSync(path.join(dir, file), 'utf8');
  } catch {
    return null;
  }
}

/** Page sizes present in dir, from the names of its hugetlb.<size>.<suffix> files. */
function hugePageSizes(dir: string | undefined, suffix: string): string[] {
  if (dir === undefined) return [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const sizes: string[] = [];
  for (const n of names) {
    const m = /^hugetlb\.(\d+[KMGTP]?B)\.(.+)$/.exec(n);
    if (m?.[1] !== undefined && m[2] === suffix) sizes.push(m[1]);
  }
  return sizes.sort();
}

/** runc's fs (v1) GetStats. `dirs` is controller → directory, as CgroupManager.paths(). */
export function readStatsV1(dirs: Record<string, string>): RuncStats {
  const s = emptyStats();
  const cpuacct = dirs['cpuacct'];
  const u = s.cpu.usage;
  u.total = parseUint(readOr(cpuacct, 'cpuacct.usage'));
  u.percpu = parseList(readOr(cpuacct, 'cpuacct.usage_percpu'));
  const all = parseUsageAll(readOr(cpuacct, 'cpuacct.usage_all'));
  u.percpu_user = all.user;
  u.percpu_kernel = all.kernel;
  const ticks = parseKeyValues(readOr(cpuacct, 'cpuacct.stat'));
  u.user = ((ticks['user'] ?? 0) * 1e9) / CLOCK_TICKS;
  u.kernel = ((ticks['system'] ?? 0) * 1e9) / CLOCK_TICKS;
  const cpu = parseKeyValues(readOr(dirs['cpu'], 'cpu.stat'));
  s.cpu.throttling = { periods: cpu['nr_periods'] ?? 0, throttledPeriods: cpu['nr_throttled'] ?? 0, throttledTime: cpu['throttled_time'] ?? 0 };

  const mem = dirs['memory'];
  const entry = (prefix: string): RuncMemoryEntry => ({
    limit: parseUint(readOr(mem, `${prefix}.limit_in_bytes`)),
    usage: parseUint(readOr(mem, `${prefix}.usage_in_bytes`)),
    max: parseUint(readOr(mem, `${prefix}.max_usage_in_bytes`)),
    failcnt: parseUint(readOr(mem, `${prefix}.failcnt`)),
  });
  s.memory.usage = entry('memory');
  s.memory.swap = entry('memory.memsw');
  s.memory.kernel = entry('memory.kmem');
  s.memory.kernelTCP = entry('memory.kmem.tcp');
  s.memory.raw = parseKeyValues(readOr(mem, 'memory.stat'));
  s.memory.cache = s.memory.raw['cache'] ?? 0;

  const pids = dirs['pids'];
  s.pids = { current: parseUint(readOr(pids, 'pids.current')), limit: parseUint(readOr(pids, 'pids.max'), 0) };

  s.blkio = readBlkioV1(dirs['blkio']);

  const huge = dirs['hugetlb'];
  for (const size of hugePageSizes(huge, 'usage_in_bytes')) {
    s.hugetlb[size] = {
      usage: parseUint(readOr(huge, `hugetlb.${size}.usage_in_bytes`)),
      max: parseUint(readOr(huge, `hugetlb.${size}.max_usage_in_bytes`)),
      failcnt: parseUint(readOr(huge, `hugetlb.${size}.failcnt`)),
    };
  }
  return s;
}

/**
 * runc's blkio order: the CFQ tables when CFQ is there, else BFQ's (bytes and
 * ios only), else the throttle layer's, which counts every device's I/O.
 */
function readBlkioV1(dir: string | undefined): RuncBlkio {
  const s = emptyStats().blkio;
  const table = (name: string): RuncBlkioEntry[] => parseBlkioV1(readOr(dir, name));
  const cfq = table('blkio.io_serviced_recursive');
  if (cfq.length > 0) {
    return {
      ioServiceBytesRecursive: table('blkio.io_service_bytes_recursive'),
      ioServicedRecursive: cfq,
      ioQueueRecursive: table('blkio.io_queued_recursive'),
      ioServiceTimeRecursive: table('blkio.io_service_time_recursive'),
      ioWaitTimeRecursive: table('blkio.io_wait_time_recursive'),
      ioMergedRecursive: table('blkio.io_merged_recursive'),
      ioTimeRecursive: table('blkio.time_recursive'),
      sectorsRecursive: table('blkio.sectors_recursive'),
    };
  }
  const bfq = table('blkio.bfq.io_serviced_recursive');
  const prefix = bfq.length > 0 ? 'blkio.bfq' : 'blkio.throttle';
  s.ioServiceBytesRecursive = table(`${prefix}.io_service_bytes_recursive`);
  s.ioServicedRecursive = bfq.length > 0 ? bfq : table(`${prefix}.io_serviced_recursive`);
  return s;
}

/** runc's fs2 GetStats on the container's unified directory. */
export function readStatsV2(dir: string | undefined): RuncStats {
  const s = emptyStats();
  const cpu = parseKeyValues(readOr(dir, 'cpu.stat'));
  const u = s.cpu.usage;
  u.total = (cpu['usage_usec'] ?? 0) * 1000;
  u.user = (cpu['user_usec'] ?? 0) * 1000;
  u.kernel = (cpu['system_usec'] ?? 0) * 1000;
  s.cpu.throttling = { periods: cpu['nr_periods'] ?? 0, throttledPeriods: cpu['nr_throttled'] ?? 0, throttledTime: (cpu['throttled_usec'] ?? 0) * 1000 };

  const entry = (prefix: string): RuncMemoryEntry => ({
    limit: parseUint(readOr(dir, `${prefix}.max`)),
    usage: parseUint(readOr(dir, `${prefix}.current`)),
    max: parseUint(readOr(dir, `${prefix}.peak`)), // kernel ≥ 5.19; 0 before
    failcnt: 0, // runc reports none on v2
  });
  const usage = entry('memory');
  const swap = entry('memory.swap');
  // v1 reports swap as memory+swap; runc adds memory to v2's swap-only figures to match.
  swap.usage += usage.usage;
  if (swap.limit !== UINT64_MAX) swap.limit += usage.limit;
  s.memory.usage = usage;
  s.memory.swap = swap;
  s.memory.raw = parseKeyValues(readOr(dir, 'memory.stat'));
  s.memory.cache = s.memory.raw['file'] ?? 0;

  let current = parseUint(readOr(dir, 'pids.current'));
  if (readOr(dir, 'pids.current') === null) {
    // The pids controller is not enabled here: count the processes, as runc does.
    current = (readOr(dir, 'cgroup.procs') ?? '').split('\n').filter((l) => /^\d+$/.test(l)).length;
  }
  s.pids = { current, limit: parseUint(readOr(dir, 'pids.max'), 0) };

  Object.assign(s.blkio, parseIoStat(readOr(dir, 'io.stat')));

  for (const size of hugePageSizes(dir, 'current')) {
    s.hugetlb[size] = {
      usage: parseUint(readOr(dir, `hugetlb.${size}.current`)),
      max: 0, // v2 keeps no peak
      failcnt: parseKeyValues(readOr(dir, `hugetlb.${size}.events`))['max'] ?? 0,
    };
  }
  return s;
}

/**
 * The event as one JSON line, with integers above 2^53 in exact digits:
 * JSON.stringify prints v1's "unlimited" 9223372036854771712 (exact as a
 * double: a multiple of the page size) as 9223372036854772000, and
 * UINT64_MAX as 18446744073709552000, which a Go uint64 refuses.
 */
export function formatStatsEvent(e: RuncStatsEvent): string {
  const mark = '\u2063'; // no kernel file name or value holds U+2063
  const text = JSON.stringify(e, (_k, v: unknown) => {
    if (typeof v !== 'number' || Number.isSafeInteger(v) || !Number.isInteger(v)) return v;
    return mark + (v === UINT64_MAX ? '18446744073709551615' : BigInt(v).toString()) + mark;
  });
  return text.replace(new RegExp(`"${mark}(\\d+)${mark}"`, 'g'), '$1');
}
