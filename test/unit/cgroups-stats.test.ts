// `events --stats` figures (runc's types.Stats) from a fake cgroupfs: the
// files the kernel would show, in a temp dir, read through the manager.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cgroupManager, emptyStats, formatStatsEvent, managerFromPaths, UINT64_MAX } from '../../runtime/cgroups';
import { parseBlkioV1, parseIoStat, parseKeyValues, parseUint } from '../../runtime/cgroups/stats';

function tempRoot(t: TestContext): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cgstats-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  return root;
}

function files(dir: string, contents: Record<string, string>): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, value] of Object.entries(contents)) fs.writeFileSync(path.join(dir, name), value);
}

const V1_UNLIMITED = '9223372036854771712';
const C = 'mycontainer/c1';

test('v1: every figure from cpuacct, cpu, memory, pids, blkio (throttle) and hugetlb files', (t) => {
  const root = tempRoot(t);
  files(path.join(root, 'cpu,cpuacct', C), {
    'cpuacct.usage': '5000000000\n',
    'cpuacct.usage_percpu': '3000000000 2000000000 \n',
    'cpuacct.usage_all': 'cpu user system\n0 2500000000 500000000\n1 1500000000 500000000\n',
    'cpuacct.stat': 'user 350\nsystem 100\n',
    'cpu.stat': 'nr_periods 10\nnr_throttled 2\nthrottled_time 777\n',
  });
  files(path.join(root, 'memory', C), {
    'memory.usage_in_bytes': '8192\n',
    'memory.max_usage_in_bytes': '16384\n',
    'memory.limit_in_bytes': '67108864\n',
    'memory.failcnt': '4\n',
    'memory.memsw.usage_in_bytes': '8192\n',
    'memory.memsw.max_usage_in_bytes': '16384\n',
    'memory.memsw.limit_in_bytes': `${V1_UNLIMITED}\n`,
    'memory.memsw.failcnt': '0\n',
    'memory.kmem.usage_in_bytes': '1024\n',
    'memory.kmem.limit_in_bytes': `${V1_UNLIMITED}\n`,
    'memory.stat': 'cache 4096\nrss 2048\ntotal_cache 4096\n',
  });
  files(path.join(root, 'pids', C), { 'pids.current': '3\n', 'pids.max': 'max\n' });
  files(path.join(root, 'blkio', C), {
    'blkio.io_serviced_recursive': 'Total 0\n', // CFQ gone (blk-mq): empty, so the throttle layer's
    'blkio.throttle.io_service_bytes_recursive': '8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\nTotal 4608\n',
    'blkio.throttle.io_serviced_recursive': '8:0 Read 1\n8:0 Write 1\n8:0 Total 2\nTotal 2\n',
  });
  files(path.join(root, 'hugetlb', C), {
    'hugetlb.2MB.usage_in_bytes': '2097152\n',
    'hugetlb.2MB.max_usage_in_bytes': '4194304\n',
    'hugetlb.2MB.failcnt': '1\n',
    'hugetlb.2MB.limit_in_bytes': `${V1_UNLIMITED}\n`,
    'hugetlb.1GB.usage_in_bytes': '0\n',
  });
  const dir = (c: string): string => path.join(root, c, C);
  const m = managerFromPaths('hybrid', {
    cpu: dir('cpu,cpuacct'), cpuacct: dir('cpu,cpuacct'), memory: dir('memory'), pids: dir('pids'), blkio: dir('blkio'), hugetlb: dir('hugetlb'),
  });
  const s = m.runcStats();
  assert.deepEqual(s.cpu, {
    usage: {
      total: 5e9, percpu: [3e9, 2e9], percpu_user: [2.5e9, 1.5e9], percpu_kernel: [5e8, 5e8],
      user: 3.5e9, kernel: 1e9, // ticks of 10 ms
    },
    throttling: { periods: 10, throttledPeriods: 2, throttledTime: 777 },
  });
  assert.deepEqual(s.memory.usage, { limit: 67108864, usage: 8192, max: 16384, failcnt: 4 });
  assert.deepEqual(s.memory.swap, { limit: Number(V1_UNLIMITED), usage: 8192, max: 16384, failcnt: 0 });
  assert.deepEqual(s.memory.kernel, { limit: Number(V1_UNLIMITED), usage: 1024, max: 0, failcnt: 0 });
  assert.deepEqual(s.memory.kernelTCP, { limit: 0, usage: 0, max: 0, failcnt: 0 }); // no files
  assert.deepEqual(s.memory.raw, { cache: 4096, rss: 2048, total_cache: 4096 });
  assert.equal(s.memory.cache, 4096);
  assert.deepEqual(s.pids, { current: 3, limit: 0 }); // "max" is 0, as runc
  assert.deepEqual(s.blkio.ioServiceBytesRecursive, [
    { major: 8, minor: 0, op: 'Read', value: 4096 },
    { major: 8, minor: 0, op: 'Write', value: 512 },
    { major: 8, minor: 0, op: 'Total', value: 4608 },
  ]);
  assert.equal(s.blkio.ioServicedRecursive.length, 3);
  assert.deepEqual(s.blkio.ioQueueRecursive, []);
  assert.deepEqual(s.hugetlb, { '1GB': { usage: 0, max: 0, failcnt: 0 }, '2MB': { usage: 2097152, max: 4194304, failcnt: 1 } });
});

test('v1: the CFQ tables when CFQ counts, with time and sectors (no op)', () => {
  assert.deepEqual(parseBlkioV1('8:16 1234\n8:0 Read 7\nTotal 9\ngarbage\n'), [
    { major: 8, minor: 16, op: '', value: 1234 },
    { major: 8, minor: 0, op: 'Read', value: 7 },
  ]);
});

test('v1: missing controllers give zeros and empty lists, not errors', (t) => {
  const root = tempRoot(t);
  files(path.join(root, 'memory', C), { 'memory.usage_in_bytes': '100\n' });
  // A directory that is gone and a controller that is not mounted at all.
  const m = managerFromPaths('v1', { memory: path.join(root, 'memory', C), pids: path.join(root, 'pids', C) });
  const s = m.runcStats();
  const want = emptyStats();
  want.memory.usage.usage = 100;
  assert.deepEqual(s, want);
});

test('v2: cpu.stat, memory.*, pids, io.stat and hugetlb from the unified directory', (t) => {
  const root = tempRoot(t);
  files(root, { 'cgroup.controllers': 'cpu io memory pids hugetlb\n', 'cgroup.subtree_control': '', 'cgroup.procs': '' });
  const m = cgroupManager({ id: 'c2', cgroupsPath: '/pods/c2', root });
  assert.equal(m.driver, 'v2');
  const dir = path.join(root, 'pods/c2');
  files(dir, {
    'cgroup.procs': '10\n11\n',
    'cpu.stat': 'usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 30\n',
    'memory.current': '1048576\n',
    'memory.max': '4194304\n',
    'memory.peak': '2097152\n',
    'memory.swap.current': '4096\n',
    'memory.swap.max': 'max\n',
    'memory.stat': 'anon 524288\nfile 262144\n',
    'pids.current': '2\n',
    'pids.max': '100\n',
    'io.stat': '8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n',
    'hugetlb.2MB.current': '2097152\n',
    'hugetlb.2MB.events': 'max 3\n',
    'hugetlb.2MB.max': 'max\n',
  });
  const s = m.runcStats();
  assert.deepEqual(s.cpu, {
    usage: { total: 2500000, percpu: [], percpu_kernel: [], percpu_user: [], user: 2000000, kernel: 500000 },
    throttling: { periods: 4, throttledPeriods: 1, throttledTime: 30000 },
  });
  assert.deepEqual(s.memory.usage, { limit: 4194304, usage: 1048576, max: 2097152, failcnt: 0 });
  // v1-compatible swap: memory + swap; an unlimited swap stays UINT64_MAX.
  assert.deepEqual(s.memory.swap, { limit: UINT64_MAX, usage: 1048576 + 4096, max: 0, failcnt: 0 });
  assert.equal(s.memory.cache, 262144); // v2's "file"
  assert.deepEqual(s.memory.raw, { anon: 524288, file: 262144 });
  assert.deepEqual(s.pids, { current: 2, limit: 100 });
  assert.deepEqual(s.blkio.ioServiceBytesRecursive, [
    { major: 8, minor: 0, op: 'Read', value: 4096 },
    { major: 8, minor: 0, op: 'Write', value: 8192 },
  ]);
  assert.deepEqual(s.blkio.ioServicedRecursive, [
    { major: 8, minor: 0, op: 'Read', value: 1 },
    { major: 8, minor: 0, op: 'Write', value: 2 },
  ]);
  assert.deepEqual(s.hugetlb, { '2MB': { usage: 2097152, max: 0, failcnt: 3 } });
});

test('v2: no pids controller: the processes are counted; memory.max "max" is UINT64_MAX', (t) => {
  const root = tempRoot(t);
  const dir = path.join(root, 'c3');
  files(dir, { 'cgroup.procs': '7\n8\n9\n', 'memory.current': '10\n', 'memory.max': 'max\n' });
  const s = managerFromPaths('v2', { unified: dir }).runcStats();
  assert.equal(s.pids.current, 3);
  assert.equal(s.pids.limit, 0);
  assert.equal(s.memory.usage.limit, UINT64_MAX);
  // No swap files (no swap accounting): memory's own figures, as runc.
  assert.deepEqual(s.memory.swap, { limit: UINT64_MAX, usage: 10, max: 0, failcnt: 0 });
  assert.deepEqual(s.cpu.usage.total, 0);
  assert.deepEqual(s.blkio.ioServiceBytesRecursive, []);
});

test('formatStatsEvent: runc names, and integers above 2^53 in runc\'s digits', () => {
  const data = emptyStats();
  data.memory.usage.limit = UINT64_MAX;
  data.memory.swap.limit = parseUint(V1_UNLIMITED);
  data.memory.raw['hierarchical_memory_limit'] = parseUint(V1_UNLIMITED);
  const line = formatStatsEvent({ type: 'stats', id: 'c1', data });
  assert.match(line, /^\{"type":"stats","id":"c1","data":\{"cpu":\{"usage":\{"total":0,"percpu":\[\],"percpu_kernel":\[\],"percpu_user":\[\],"kernel":0,"user":0\},"throttling":\{"periods":0,"throttledPeriods":0,"throttledTime":0\}\}/);
  assert.match(line, /"memory":\{"cache":0,"usage":\{"limit":18446744073709551615,"usage":0,"max":0,"failcnt":0\},"swap":/);
  assert.match(line, /"swap":\{"limit":9223372036854771712,/);
  assert.match(line, /"raw":\{"hierarchical_memory_limit":9223372036854771712\}/);
  assert.match(line, /"kernelTCP":\{/);
  assert.match(line, /"blkio":\{"ioServiceBytesRecursive":\[\],"ioServicedRecursive":\[\],"ioQueueRecursive":\[\]/);
  assert.match(line, /"pids":\{"current":0,"limit":0\}/);
  assert.match(line, /"hugetlb":\{\}\}\}$/);
});

test('parsers: malformed lines are skipped, "max" is the given maximum', () => {
  assert.equal(parseUint('max\n'), UINT64_MAX);
  assert.equal(parseUint('max', 0), 0);
  assert.equal(parseUint(null), 0);
  assert.equal(parseUint('-1'), 0);
  assert.deepEqual(parseKeyValues('a 1\nb\nc x\n d 4 \n'), { a: 1, d: 4 });
  assert.deepEqual(parseIoStat('bad\n253:1 rbytes=5 foo=bar\n'), {
    ioServiceBytesRecursive: [{ major: 253, minor: 1, op: 'Read', value: 5 }],
    ioServicedRecursive: [],
  });
});
