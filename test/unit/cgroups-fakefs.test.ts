// The manager against a fake cgroupfs: plain files in a temp dir stand in
// for the kernel's (pre-created where the kernel would create them), the
// manager runs with root pointing there, and the files are read back.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cgroupManager, managerFromPaths } from '../../runtime/cgroups';
import { RuntimeError } from '../../runtime/sys/errors';
import { setTraceSink, type TraceEvent } from '../../runtime/sys/trace';

function tempRoot(t: TestContext): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cgfake-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  return root;
}

function files(dir: string, contents: Record<string, string>): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, value] of Object.entries(contents)) fs.writeFileSync(path.join(dir, name), value);
}

const read = (p: string): string => fs.readFileSync(p, 'utf8');

function captureTrace(t: TestContext): TraceEvent[] {
  const events: TraceEvent[] = [];
  setTraceSink((e) => events.push(e));
  t.after(() => setTraceSink(undefined));
  return events;
}

/** A v1 host with the files the kernel would have in the container's (already made) directories. */
function fakeV1(t: TestContext, opts: { memsw?: boolean; cfq?: boolean } = {}): string {
  const root = tempRoot(t);
  const c = 'mycontainer/c1';
  const ctl = { 'cgroup.procs': '', tasks: '' };
  files(path.join(root, 'memory', c), {
    ...ctl,
    'memory.limit_in_bytes': '9223372036854771712\n',
    'memory.soft_limit_in_bytes': '9223372036854771712\n',
    'memory.swappiness': '60\n',
    'memory.oom_control': 'oom_kill_disable 0\n',
    'memory.usage_in_bytes': '4096\n',
    ...(opts.memsw === false ? {} : { 'memory.memsw.limit_in_bytes': '9223372036854771712\n' }),
  });
  files(path.join(root, 'cpu,cpuacct', c), { ...ctl, 'cpu.shares': '1024\n', 'cpu.cfs_period_us': '100000\n', 'cpu.cfs_quota_us': '-1\n', 'cpuacct.usage': '123456\n' });
  files(path.join(root, 'cpuset'), { ...ctl, 'cpuset.cpus': '0-3\n', 'cpuset.mems': '0\n' });
  files(path.join(root, 'cpuset', 'mycontainer'), { ...ctl, 'cpuset.cpus': '\n', 'cpuset.mems': '\n' });
  files(path.join(root, 'cpuset', c), { ...ctl, 'cpuset.cpus': '\n', 'cpuset.mems': '\n' });
  files(path.join(root, 'pids', c), { ...ctl, 'pids.max': 'max\n', 'pids.current': '3\n' });
  files(path.join(root, 'blkio', c), {
    ...ctl,
    ...(opts.cfq ? { 'blkio.weight': '500\n', 'blkio.weight_device': '' } : { 'blkio.bfq.weight': '100\n', 'blkio.bfq.weight_device': '' }),
    'blkio.throttle.read_bps_device': '',
  });
  files(path.join(root, 'devices', c), { ...ctl, 'devices.allow': '', 'devices.deny': '' });
  files(path.join(root, 'freezer', c), { ...ctl, 'freezer.state': 'THAWED\n' });
  files(path.join(root, 'systemd', c), ctl);
  files(path.join(root, 'unified'), { 'cgroup.controllers': '', 'cgroup.procs': '' });
  files(path.join(root, 'unified', c), { 'cgroup.procs': '' });
  return root;
}

test('fake v1: paths, create (cpuset inherited from the parent), setResources read back', (t) => {
  const root = fakeV1(t);
  const events = captureTrace(t);
  const m = cgroupManager({ id: 'c1', root });
  assert.equal(m.driver, 'hybrid');
  const p = m.paths();
  assert.equal(p['memory'], path.join(root, 'memory/mycontainer/c1'));
  assert.equal(p['cpu'], path.join(root, 'cpu,cpuacct/mycontainer/c1'));
  assert.equal(p['cpuacct'], p['cpu']);
  assert.equal(p['name=systemd'], path.join(root, 'systemd/mycontainer/c1'));
  assert.equal(p['unified'], path.join(root, 'unified/mycontainer/c1'));

  m.create();
  assert.equal(read(path.join(root, 'cpuset/mycontainer/cpuset.cpus')), '0-3');
  assert.equal(read(path.join(root, 'cpuset/mycontainer/c1/cpuset.mems')), '0');

  const warnings = m.setResources({
    memory: { limit: 104857600, swap: 209715200, reservation: 1000, swappiness: 0, disableOOMKiller: true },
    cpu: { shares: 512, quota: 25000, period: 50000, cpus: '1' },
    pids: { limit: 64 },
    blockIO: { weight: 250, throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1000 }] },
    devices: [{ allow: false, access: 'rwm' }],
  });
  assert.deepEqual(warnings, []);
  const mem = p['memory'] ?? '';
  assert.equal(read(path.join(mem, 'memory.limit_in_bytes')), '104857600');
  assert.equal(read(path.join(mem, 'memory.memsw.limit_in_bytes')), '209715200');
  assert.equal(read(path.join(mem, 'memory.soft_limit_in_bytes')), '1000');
  assert.equal(read(path.join(mem, 'memory.swappiness')), '0');
  assert.equal(read(path.join(mem, 'memory.oom_control')), '1');
  assert.equal(read(path.join(p['cpu'] ?? '', 'cpu.shares')), '512');
  assert.equal(read(path.join(p['cpu'] ?? '', 'cpu.cfs_quota_us')), '25000');
  assert.equal(read(path.join(p['cpu'] ?? '', 'cpu.cfs_period_us')), '50000');
  assert.equal(read(path.join(p['cpuset'] ?? '', 'cpuset.cpus')), '1');
  assert.equal(read(path.join(p['pids'] ?? '', 'pids.max')), '64');
  assert.equal(read(path.join(p['blkio'] ?? '', 'blkio.bfq.weight')), '250'); // no blkio.weight: BFQ
  assert.equal(read(path.join(p['blkio'] ?? '', 'blkio.throttle.read_bps_device')), '8:0 1000');
  // Each devices write replaces the file's content; the last one stays.
  assert.equal(read(path.join(p['devices'] ?? '', 'devices.deny')), 'a');
  assert.equal(read(path.join(p['devices'] ?? '', 'devices.allow')), 'c 10:200 rwm');

  // Traced: write <path> = "value" # field.
  const quota = events.find((e) => e.call === `write ${path.join(p['cpu'] ?? '', 'cpu.cfs_quota_us')}`);
  assert.deepEqual(quota, { kind: 'cgroup', call: `write ${path.join(p['cpu'] ?? '', 'cpu.cfs_quota_us')}`, result: '"25000"', why: 'linux.resources.cpu.quota' });
  assert.ok(events.some((e) => e.call.startsWith('mkdir ') || e.call.includes('cpuset.cpus')));
});

test('fake v1: memory order follows the current limit (runc setMemoryAndSwap)', (t) => {
  const root = fakeV1(t);
  const m = cgroupManager({ id: 'c1', root });
  const mem = m.paths()['memory'] ?? '';
  const order = (): string[] => {
    const events: TraceEvent[] = [];
    setTraceSink((e) => events.push(e));
    try {
      m.setResources({ memory: { limit: 200, swap: 400 } });
    } finally {
      setTraceSink(undefined);
    }
    return events.map((e) => path.basename(e.call));
  };
  fs.writeFileSync(path.join(mem, 'memory.limit_in_bytes'), '9223372036854771712\n');
  assert.deepEqual(order(), ['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes']);
  fs.writeFileSync(path.join(mem, 'memory.limit_in_bytes'), '100\n');
  assert.deepEqual(order(), ['memory.memsw.limit_in_bytes', 'memory.limit_in_bytes']);
});

test('fake v1: optional files missing are skipped with a warning; CFQ blkio.weight preferred when present', (t) => {
  const root = fakeV1(t, { memsw: false, cfq: true });
  const m = cgroupManager({ id: 'c1', root });
  const warnings = m.setResources({ memory: { limit: 1000, swap: 2000 }, blockIO: { weight: 300 } });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0] ?? '', /skipped linux\.resources\.memory\.swap: memory\.memsw\.limit_in_bytes does not exist/);
  assert.equal(read(path.join(m.paths()['memory'] ?? '', 'memory.limit_in_bytes')), '1000');
  assert.equal(read(path.join(m.paths()['blkio'] ?? '', 'blkio.weight')), '300');
  assert.equal(fs.existsSync(path.join(m.paths()['memory'] ?? '', 'memory.memsw.limit_in_bytes')), false); // never created
});

test('fake v1: a missing required file or controller is an error naming file, value and field', (t) => {
  const root = fakeV1(t);
  const m = cgroupManager({ id: 'c1', root });
  fs.rmSync(path.join(m.paths()['pids'] ?? '', 'pids.max'));
  assert.throws(
    () => m.setResources({ pids: { limit: 10 } }),
    (e: unknown) => {
      assert.ok(e instanceof RuntimeError);
      assert.equal(e.code, 'ENOENT');
      assert.match(e.message, /cannot write "10" to .*\/pids\/mycontainer\/c1\/pids\.max \(linux\.resources\.pids\.limit\).*ENOENT \(no such file or directory\)/);
      return true;
    },
  );
  assert.throws(() => m.setResources({ hugepageLimits: [{ pageSize: '2MB', limit: 1 }] }), /linux\.resources\.hugepageLimits\[0\]: the hugetlb controller is not available/);
  assert.throws(() => m.setResources({ unified: { 'pids.max': '1' } }), /needs cgroup v2/);
});

test('fake v1: addProcess writes cgroup.procs in every hierarchy once; pids() merges; freezer; stats', (t) => {
  const root = fakeV1(t);
  const m = cgroupManager({ id: 'c1', root });
  m.addProcess(4242);
  const dirs = [...new Set(Object.values(m.paths()))];
  assert.equal(dirs.length, 9); // cpu,cpuacct shared; unified included
  for (const d of dirs) assert.equal(read(path.join(d, 'cgroup.procs')), '4242');
  fs.writeFileSync(path.join(m.paths()['memory'] ?? '', 'cgroup.procs'), '4242\n17\n');
  assert.deepEqual(m.pids(), [17, 4242]);

  m.freeze(true);
  assert.equal(read(path.join(m.paths()['freezer'] ?? '', 'freezer.state')), 'FROZEN');
  m.freeze(false);
  assert.equal(read(path.join(m.paths()['freezer'] ?? '', 'freezer.state')), 'THAWED');

  assert.deepEqual(m.stats(), { memoryUsage: 4096, cpuUsageNs: 123456, pidsCurrent: 3 });
});

test('fake v2: create enables the parent controllers, setResources writes v2 files', (t) => {
  const root = tempRoot(t);
  files(root, { 'cgroup.controllers': 'cpuset cpu io memory pids\n', 'cgroup.subtree_control': '', 'cgroup.procs': '' });
  files(path.join(root, 'pods'), { 'cgroup.controllers': 'cpu memory pids\n', 'cgroup.subtree_control': 'memory\n' });
  const m = cgroupManager({ id: 'x', cgroupsPath: '/pods/c2', root });
  assert.equal(m.driver, 'v2');
  assert.deepEqual(m.paths(), { unified: path.join(root, 'pods/c2') });
  m.create();
  assert.equal(read(path.join(root, 'cgroup.subtree_control')), '+cpuset +cpu +io +memory +pids');
  assert.equal(read(path.join(root, 'pods/cgroup.subtree_control')), '+cpu +pids'); // memory was on already
  const dir = path.join(root, 'pods/c2');
  assert.ok(fs.statSync(dir).isDirectory());

  files(dir, { 'memory.max': 'max\n', 'memory.swap.max': 'max\n', 'memory.low': '0\n', 'cpu.weight': '100\n', 'cpu.max': 'max 100000\n', 'pids.max': 'max\n', 'io.weight': 'default 100\n', 'memory.high': 'max\n', 'cgroup.procs': '' });
  const warnings = m.setResources({
    memory: { limit: 1 << 20, swap: 3 << 20, swappiness: 5 },
    cpu: { shares: 2048, quota: 10000, period: 20000 },
    pids: { limit: -1 },
    blockIO: { weight: 100 },
    unified: { 'memory.high': '999999' },
  });
  assert.deepEqual(warnings, ['linux.resources.memory.swappiness is ignored: cgroup v2 has no per-cgroup swappiness']);
  assert.equal(read(path.join(dir, 'memory.max')), String(1 << 20));
  assert.equal(read(path.join(dir, 'memory.swap.max')), String(2 << 20));
  assert.equal(read(path.join(dir, 'cpu.weight')), '79');
  assert.equal(read(path.join(dir, 'cpu.max')), '10000 20000');
  assert.equal(read(path.join(dir, 'pids.max')), 'max');
  assert.equal(read(path.join(dir, 'io.weight')), String(1 + Math.floor((90 * 9999) / 990))); // no BFQ: converted
  assert.equal(read(path.join(dir, 'memory.high')), '999999');
});

test('fake v2: an unknown unified key is an error naming the file', (t) => {
  const root = tempRoot(t);
  files(root, { 'cgroup.controllers': '', 'cgroup.subtree_control': '' });
  const m = cgroupManager({ id: 'x', root });
  m.create();
  assert.throws(() => m.setResources({ unified: { 'memory.high': '1' } }), /cannot write "1" to .*memory\.high \(linux\.resources\.unified\["memory\.high"\]\)/);
});

test('managerFromPaths rebuilds the same manager; rejects odd paths', (t) => {
  const root = fakeV1(t);
  const m = cgroupManager({ id: 'c1', root });
  const again = managerFromPaths(m.driver, m.paths());
  assert.deepEqual(again.paths(), m.paths());
  assert.equal(again.driver, 'hybrid');
  assert.throws(() => managerFromPaths('v1', { memory: 'relative/x' }), /invalid cgroup path/);
  assert.throws(() => managerFromPaths('v1', { memory: '/sys/fs/cgroup/memory/../../etc' }), /invalid cgroup path/);
});

test('destroy: missing directories are fine', () => {
  const m = managerFromPaths('v1', { memory: '/nonexistent/cgroup/a', pids: '/nonexistent/cgroup/b' });
  m.destroy();
  assert.deepEqual(m.pids(), []);
});
