// linux.resources → the planned cgroup writes, for v1 and v2 (pure).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  blkioToIoWeight,
  deviceRuleLines,
  orderV1Memory,
  planResources,
  sharesToWeight,
  swapToV2,
  type CgroupWrite,
  type LinuxResources,
} from '../../runtime/cgroups';

const short = (ws: CgroupWrite[]): string[] => ws.map((w) => `${w.controller}/${w.file}=${w.value}`);

const FULL: LinuxResources = {
  memory: { limit: 104857600, reservation: 52428800, swap: 209715200, swappiness: 10, disableOOMKiller: true },
  cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0-1', mems: '0' },
  pids: { limit: 100 },
  blockIO: {
    weight: 300,
    weightDevice: [{ major: 8, minor: 0, weight: 200 }],
    throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }],
    throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 100 }],
  },
  hugepageLimits: [{ pageSize: '2MB', limit: 4194304 }],
  devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }],
};

test('v1: every field to its file, in runc\'s order, each with the config field', () => {
  const p = planResources(1, FULL);
  assert.deepEqual(short(p.writes).slice(0, 21), [
    'memory/memory.limit_in_bytes=104857600',
    'memory/memory.memsw.limit_in_bytes=209715200',
    'memory/memory.soft_limit_in_bytes=52428800',
    'memory/memory.oom_control=1',
    'memory/memory.swappiness=10',
    'cpu/cpu.shares=512',
    'cpu/cpu.cfs_period_us=100000',
    'cpu/cpu.cfs_quota_us=50000',
    'cpuset/cpuset.cpus=0-1',
    'cpuset/cpuset.mems=0',
    'pids/pids.max=100',
    'blkio/blkio.weight=300',
    'blkio/blkio.weight_device=8:0 200',
    'blkio/blkio.throttle.read_bps_device=8:0 1048576',
    'blkio/blkio.throttle.write_iops_device=8:0 100',
    'hugetlb/hugetlb.2MB.limit_in_bytes=4194304',
    'devices/devices.deny=a',
    'devices/devices.allow=c 1:3 rw',
    'devices/devices.allow=c *:* m',
    'devices/devices.allow=b *:* m',
    'devices/devices.allow=c 1:3 rwm',
  ]);
  const byFile = new Map(p.writes.map((w) => [w.file, w]));
  assert.equal(byFile.get('memory.limit_in_bytes')?.why, 'linux.resources.memory.limit');
  assert.equal(byFile.get('cpu.cfs_quota_us')?.why, 'linux.resources.cpu.quota');
  assert.equal(byFile.get('blkio.throttle.read_bps_device')?.why, 'linux.resources.blockIO.throttleReadBpsDevice[0]');
  assert.equal(byFile.get('devices.deny')?.why, 'linux.resources.devices[0]');
  // Optional where the file depends on kernel features; blkio weight falls back to BFQ.
  assert.equal(byFile.get('memory.memsw.limit_in_bytes')?.optional, true);
  assert.deepEqual(byFile.get('blkio.weight')?.fallback, { file: 'blkio.bfq.weight', value: '300' });
  assert.equal(byFile.get('blkio.weight')?.optional, true);
  assert.equal(byFile.get('memory.limit_in_bytes')?.optional, undefined);
  assert.deepEqual(p.warnings, []);
});

test('v2: the same config in v2 files, all in the unified directory', () => {
  const p = planResources(2, FULL);
  assert.deepEqual(short(p.writes), [
    'unified/memory.swap.max=104857600',
    'unified/memory.max=104857600',
    'unified/memory.low=52428800',
    'unified/cpu.weight=20',
    'unified/cpu.max=50000 100000',
    'unified/cpuset.cpus=0-1',
    'unified/cpuset.mems=0',
    'unified/pids.max=100',
    'unified/io.bfq.weight=300',
    'unified/io.bfq.weight=8:0 200',
    'unified/io.max=8:0 rbps=1048576',
    'unified/io.max=8:0 wiops=100',
    'unified/hugetlb.2MB.max=4194304',
  ]);
  assert.deepEqual(p.writes.find((w) => w.file === 'io.bfq.weight')?.fallback, { file: 'io.weight', value: String(blkioToIoWeight(300)) });
  // What v2 cannot do is a warning, not a silent drop.
  assert.equal(p.warnings.length, 3);
  assert.match(p.warnings.join('\n'), /swappiness/);
  assert.match(p.warnings.join('\n'), /disableOOMKiller/);
  assert.match(p.warnings.join('\n'), /devices is not enforced.*eBPF/);
});

test('memory -1 means unlimited, swap too (v1 memsw optional, v2 "max")', () => {
  assert.deepEqual(short(planResources(1, { memory: { limit: -1 } }).writes), ['memory/memory.limit_in_bytes=-1', 'memory/memory.memsw.limit_in_bytes=-1']);
  assert.deepEqual(short(planResources(2, { memory: { limit: -1 } }).writes), ['unified/memory.swap.max=max', 'unified/memory.max=max']);
  // swap == limit: no swap at all on v2.
  assert.deepEqual(short(planResources(2, { memory: { limit: 1000, swap: 1000 } }).writes), ['unified/memory.swap.max=0', 'unified/memory.max=1000']);
  // limit only: no swap write.
  assert.deepEqual(short(planResources(1, { memory: { limit: 1000 } }).writes), ['memory/memory.limit_in_bytes=1000']);
});

test('swap conversion (runc ConvertMemorySwapToCgroupV2Value)', () => {
  assert.equal(swapToV2(300, 100), 200);
  assert.equal(swapToV2(0, -1), -1);
  assert.equal(swapToV2(-1, 100), -1);
  assert.equal(swapToV2(0, 100), 0);
  assert.throws(() => swapToV2(50, 100), /must be >= memory.limit/);
  assert.throws(() => swapToV2(50, 0), /needs a memory limit/);
});

test('cpu.shares → cpu.weight and blkio weight → io.weight (runc 1.1 formulas)', () => {
  assert.equal(sharesToWeight(0), 0);
  assert.equal(sharesToWeight(2), 1);
  assert.equal(sharesToWeight(1), 1); // clamped, no underflow
  assert.equal(sharesToWeight(1024), 39);
  assert.equal(sharesToWeight(262144), 10000);
  assert.equal(sharesToWeight(1 << 20), 10000);
  assert.equal(blkioToIoWeight(10), 1);
  assert.equal(blkioToIoWeight(500), 4950);
  assert.equal(blkioToIoWeight(1000), 10000);
});

test('cpu: quota -1 / period only / realtime / burst / idle', () => {
  assert.deepEqual(short(planResources(2, { cpu: { quota: -1, period: 100000 } }).writes), ['unified/cpu.max=max 100000']);
  assert.deepEqual(short(planResources(2, { cpu: { period: 50000 } }).writes), ['unified/cpu.max=max 50000']);
  assert.deepEqual(short(planResources(2, { cpu: { quota: 20000 } }).writes), ['unified/cpu.max=20000']);
  assert.deepEqual(short(planResources(1, { cpu: { quota: -1 } }).writes), ['cpu/cpu.cfs_quota_us=-1']);
  assert.deepEqual(short(planResources(1, { cpu: { realtimePeriod: 1000000, realtimeRuntime: 950000, burst: 1000, idle: 1 } }).writes), [
    'cpu/cpu.cfs_burst_us=1000',
    'cpu/cpu.idle=1',
    'cpu/cpu.rt_period_us=1000000',
    'cpu/cpu.rt_runtime_us=950000',
  ]);
  const v2 = planResources(2, { cpu: { realtimeRuntime: 950000 } });
  assert.deepEqual(v2.writes, []);
  assert.match(v2.warnings[0] ?? '', /realtime/);
});

test('pids: 0 and -1 mean unlimited', () => {
  assert.deepEqual(short(planResources(1, { pids: { limit: 0 } }).writes), ['pids/pids.max=max']);
  assert.deepEqual(short(planResources(2, { pids: { limit: -1 } }).writes), ['unified/pids.max=max']);
});

test('devices: OCI rules to devices.allow/deny lines', () => {
  assert.deepEqual(deviceRuleLines({ allow: false }), ['a']);
  assert.deepEqual(deviceRuleLines({ allow: true, type: 'a', access: 'rwm', major: -1, minor: -1 }), ['a']);
  assert.deepEqual(deviceRuleLines({ allow: true, type: 'a', access: 'm' }), ['c *:* m', 'b *:* m']);
  assert.deepEqual(deviceRuleLines({ allow: true, type: 'c', major: 136, access: 'rwm' }), ['c 136:* rwm']);
  assert.deepEqual(deviceRuleLines({ allow: true, type: 'b', major: 8, minor: 0 }), ['b 8:0 rwm']);
  assert.throws(() => deviceRuleLines({ allow: true, type: 'x' }), /invalid device rule type/);
  assert.throws(() => deviceRuleLines({ allow: true, access: 'rx' }), /invalid device rule access/);
  // No rules: nothing written (the default cgroup allows everything).
  assert.deepEqual(planResources(1, { devices: [] }).writes, []);
});

test('unified: v2 only, written last so it overrides; bad keys refused', () => {
  const p = planResources(2, { pids: { limit: 5 }, unified: { 'pids.max': '7', 'memory.high': '1000' } });
  assert.deepEqual(short(p.writes), ['unified/pids.max=5', 'unified/pids.max=7', 'unified/memory.high=1000']);
  assert.equal(p.writes[1]?.why, 'linux.resources.unified["pids.max"]');
  assert.throws(() => planResources(1, { unified: { 'pids.max': '7' } }), /^RuntimeError: invalid configuration: cannot use unified on cgroup v1: linux\.resources\.unified is set \(pids\.max\); it needs cgroup v2/);
  // Even empty, as runc (a non-nil map); null is nil in Go and passes.
  assert.throws(() => planResources(1, { unified: {} }), /cannot use unified on cgroup v1: linux\.resources\.unified is set \(to \{\}\)/);
  assert.throws(() => planResources(1, { memory: { limit: 1 << 20 }, unified: {} }), /cannot use unified on cgroup v1/);
  assert.deepEqual(planResources(1, JSON.parse('{"pids":{"limit":3},"unified":null}') as LinuxResources).writes.length, 1);
  assert.deepEqual(planResources(2, { unified: {} }).writes, []);
  assert.throws(() => planResources(2, { unified: { '../x': '1' } }), /controller.parameter/);
});

test('invalid values are refused before any write', () => {
  assert.throws(() => planResources(1, { memory: { swappiness: 200 } }), /swappiness 200 \(valid range is 0-100\)/);
  assert.throws(() => planResources(1, { hugepageLimits: [{ pageSize: '2M; rm', limit: 1 }] }), /pageSize/);
  assert.throws(() => planResources(2, { memory: { limit: 100, swap: 50 } }), /memory\+swap/);
});

test('network and rdma', () => {
  assert.deepEqual(short(planResources(1, { network: { classID: 1048577, priorities: [{ name: 'eth0', priority: 5 }] } }).writes), [
    'net_cls/net_cls.classid=1048577',
    'net_prio/net_prio.ifpriomap=eth0 5',
  ]);
  assert.match(planResources(2, { network: { classID: 1 } }).warnings[0] ?? '', /network is ignored/);
  assert.deepEqual(short(planResources(2, { rdma: { mlx5_1: { hcaHandles: 3, hcaObjects: 10000 } } }).writes), ['unified/rdma.max=mlx5_1 hca_handle=3 hca_object=10000']);
});

test('v1 memory order: memsw first when it rises above the current limit (runc setMemoryAndSwap)', () => {
  const { writes } = planResources(1, { memory: { limit: 200, swap: 400 } });
  // Current limit 100 (< new memsw 400): raising, memsw goes first.
  assert.deepEqual(short(orderV1Memory(writes, 100n)).slice(0, 2), ['memory/memory.memsw.limit_in_bytes=400', 'memory/memory.limit_in_bytes=200']);
  // Current limit unlimited (huge, ≥ new memsw): lowering, limit goes first.
  assert.deepEqual(short(orderV1Memory(writes, 9223372036854771712n)).slice(0, 2), ['memory/memory.limit_in_bytes=200', 'memory/memory.memsw.limit_in_bytes=400']);
  // memsw -1 always goes first.
  const unl = planResources(1, { memory: { limit: -1, swap: -1 } }).writes;
  assert.deepEqual(short(orderV1Memory(unl, 9223372036854771712n)), ['memory/memory.memsw.limit_in_bytes=-1', 'memory/memory.limit_in_bytes=-1']);
});
