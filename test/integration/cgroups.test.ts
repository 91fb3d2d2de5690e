// The cgroup manager on the real kernel: this host is hybrid (v1 controllers
// plus an empty cgroup2 at /sys/fs/cgroup/unified). The v1 driver is tested
// with every controller we set; the v2 driver on the unified hierarchy for
// what needs no controller (create, addProcess, cgroup.freeze, destroy).
// Everything is undone in t.after, even on failure: children thawed and
// killed, cgroups removed, the unified root's subtree_control restored.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cgroupManager, managerFromPaths, parseProcCgroup, readLayout, type CgroupManager } from '../../runtime/cgroups';
import { RuntimeError } from '../../runtime/sys/errors';
import { setTraceSink, type TraceEvent } from '../../runtime/sys/trace';

const ROOT = '/sys/fs/cgroup';
const UNIFIED = '/sys/fs/cgroup/unified';
const isRoot = process.getuid?.() === 0;

function layoutOrNull(root: string): ReturnType<typeof readLayout> | null {
  try {
    return readLayout(root);
  } catch {
    return null;
  }
}
const host = layoutOrNull(ROOT);
const v1Ready = isRoot && host !== null && host.driver !== 'v2' && ['memory', 'cpu', 'cpuset', 'pids', 'freezer', 'devices'].every((c) => host.v1.some((h) => h.controllers.includes(c)));
const unifiedReady = isRoot && fs.existsSync(path.join(UNIFIED, 'cgroup.controllers'));

const uniqueName = (tag: string): string => `mycontainer-itest-${tag}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
const read = (p: string): string => fs.readFileSync(p, 'utf8').trim();
const sleeper = new Int32Array(new SharedArrayBuffer(4));

function waitFor(what: string, cond: () => boolean, ms = 5000): void {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    Atomics.wait(sleeper, 0, 0, 5);
  }
}

function procState(pid: number): string {
  return /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
}

function startSleep(t: TestContext): ChildProcess & { pid: number } {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  if (child.pid === undefined) throw new Error('cannot spawn sleep');
  return child as ChildProcess & { pid: number };
}

/**
 * Registers the cleanup: thaw, kill the children and wait for them, then
 * rmdir the given directories (deepest first), retrying while the dying
 * processes leave them.
 */
function cleanupAfter(t: TestContext, children: ChildProcess[], dirs: () => string[], extra?: () => void): void {
  t.after(async () => {
    for (const d of dirs()) {
      for (const [f, v] of [['freezer.state', 'THAWED'], ['cgroup.freeze', '0']] as const) {
        try {
          fs.writeFileSync(path.join(d, f), v);
        } catch {
          // not that kind of directory, or gone
        }
      }
    }
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        const exited = once(c, 'exit');
        c.kill('SIGKILL');
        await exited;
      }
    }
    const sorted = [...new Set(dirs())].sort((a, b) => b.length - a.length);
    for (const d of sorted) {
      for (let i = 0; i < 200 && fs.existsSync(d); i++) {
        try {
          fs.rmdirSync(d);
        } catch {
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    }
    extra?.();
  });
}

test('v1/hybrid: create, limits, join, freeze, destroy on the real kernel', { skip: v1Ready ? false : 'needs root and v1 memory/cpu/cpuset/pids/freezer/devices' }, async (t) => {
  const parent = uniqueName('v1');
  const m = cgroupManager({ id: 'unused', cgroupsPath: `/${parent}/inner` });
  const p = m.paths();
  const child = startSleep(t);
  const parentDirs = (): string[] => Object.values(p).map((d) => path.dirname(d));
  cleanupAfter(t, [child], () => [...Object.values(p), ...parentDirs()]);

  assert.equal(m.driver, host?.driver);
  m.create();
  m.create(); // idempotent
  for (const d of Object.values(p)) assert.ok(fs.statSync(d).isDirectory(), d);
  // cpuset: both the new parent and the container inherited cpus/mems.
  const rootCpus = read(path.join(ROOT, 'cpuset', 'cpuset.cpus'));
  assert.equal(read(path.join(ROOT, 'cpuset', parent, 'cpuset.cpus')), rootCpus);
  assert.equal(read(path.join(p['cpuset'] ?? '', 'cpuset.mems')), read(path.join(ROOT, 'cpuset', 'cpuset.mems')));

  const events: TraceEvent[] = [];
  setTraceSink((e) => events.push(e));
  t.after(() => setTraceSink(undefined));

  const MiB = 1024 * 1024;
  const warnings = m.setResources({
    memory: { limit: 64 * MiB, swap: 128 * MiB, reservation: 32 * MiB, swappiness: 10 },
    cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0', mems: '0' },
    pids: { limit: 32 },
    blockIO: { weight: 200 },
    devices: [{ allow: false, access: 'rwm' }],
  });
  t.diagnostic(`warnings: ${JSON.stringify(warnings)}`);
  const mem = p['memory'] ?? '';
  assert.equal(read(path.join(mem, 'memory.limit_in_bytes')), String(64 * MiB));
  if (fs.existsSync(path.join(mem, 'memory.memsw.limit_in_bytes'))) assert.equal(read(path.join(mem, 'memory.memsw.limit_in_bytes')), String(128 * MiB));
  assert.equal(read(path.join(mem, 'memory.soft_limit_in_bytes')), String(32 * MiB));
  assert.equal(read(path.join(mem, 'memory.swappiness')), '10');
  assert.equal(read(path.join(p['cpu'] ?? '', 'cpu.shares')), '512');
  assert.equal(read(path.join(p['cpu'] ?? '', 'cpu.cfs_quota_us')), '50000');
  assert.equal(read(path.join(p['cpu'] ?? '', 'cpu.cfs_period_us')), '100000');
  assert.equal(read(path.join(p['cpuset'] ?? '', 'cpuset.cpus')), '0');
  assert.equal(read(path.join(p['pids'] ?? '', 'pids.max')), '32');
  const devices = read(path.join(p['devices'] ?? '', 'devices.list')).split('\n');
  assert.ok(!devices.includes('a *:* rwm'), 'deny-all took effect');
  assert.ok(devices.includes('c 1:3 rwm'), '/dev/null allowed again');
  assert.ok(devices.includes('c 136:* rwm'), 'ptys allowed');
  const blkio = p['blkio'];
  if (blkio && fs.existsSync(path.join(blkio, 'blkio.bfq.weight'))) assert.match(read(path.join(blkio, 'blkio.bfq.weight')), /\b200\b/);
  assert.ok(events.some((e) => e.kind === 'cgroup' && e.call === `write ${path.join(mem, 'memory.limit_in_bytes')}` && e.why === 'linux.resources.memory.limit'));

  // Join: /proc/<pid>/cgroup names our cgroup in every hierarchy.
  m.addProcess(child.pid);
  const own = parseProcCgroup(fs.readFileSync(`/proc/${child.pid}/cgroup`, 'utf8'));
  for (const h of host?.v1 ?? []) {
    for (const c of h.controllers) assert.equal(own.v1.get(c), `/${parent}/inner`, c);
  }
  if (host?.driver === 'hybrid') assert.equal(own.unified, `/${parent}/inner`);
  assert.deepEqual(m.pids(), [child.pid]);
  const st = m.stats();
  assert.equal(st.pidsCurrent, 1);
  assert.equal(st.memoryLimit, 64 * MiB);
  assert.equal(typeof st.memoryUsage, 'number');
  assert.equal(typeof st.cpuUsageNs, 'number');

  // Updates in both directions: the kernel wants limit ≤ memsw at every
  // moment, so lowering writes the limit first and raising memsw first.
  m.setResources({ memory: { limit: 32 * MiB, swap: 48 * MiB } });
  assert.equal(read(path.join(mem, 'memory.limit_in_bytes')), String(32 * MiB));
  m.setResources({ memory: { limit: 256 * MiB, swap: 512 * MiB } });
  assert.equal(read(path.join(mem, 'memory.limit_in_bytes')), String(256 * MiB));
  // A shorter period with its quota (runc retries a refused period after the quota).
  m.setResources({ cpu: { period: 10000, quota: 5000 } });
  assert.equal(read(path.join(p['cpu'] ?? '', 'cpu.cfs_period_us')), '10000');

  // The kernel's refusal comes back naming the file, the value, the field and the errno.
  assert.throws(
    () => m.setResources({ cpu: { cpus: '63' } }),
    (e: unknown) => e instanceof RuntimeError && /cannot write "63" to .*cpuset\.cpus \(linux\.resources\.cpu\.cpus\): (EINVAL \(invalid argument\)|ERANGE \(result too large\))/.test(e.message),
  );
  if (!host?.v1.some((h) => h.controllers.includes('hugetlb'))) {
    assert.throws(() => m.setResources({ hugepageLimits: [{ pageSize: '2MB', limit: 2097152 }] }), /hugetlb controller is not available/);
  }
  assert.throws(() => m.setResources({ unified: { 'pids.max': '3' } }), /needs cgroup v2/);

  // Freeze: freezer.state FROZEN, the task stops running; then thaw.
  m.freeze(true);
  assert.equal(read(path.join(p['freezer'] ?? '', 'freezer.state')), 'FROZEN');
  const frozenState = procState(child.pid);
  t.diagnostic(`frozen sleep shows State: ${frozenState}`);
  assert.ok(['D', 'S', 'T'].includes(frozenState), frozenState);
  m.freeze(false);
  assert.equal(read(path.join(p['freezer'] ?? '', 'freezer.state')), 'THAWED');

  // Destroy while the process is in it: EBUSY, naming who is still there.
  assert.throws(() => m.destroy(), (e: unknown) => e instanceof RuntimeError && e.code === 'EBUSY' && e.message.includes(`processes still in it: ${child.pid}`));

  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
  // Rebuilt from the state file, as `delete` does.
  const again = managerFromPaths(m.driver, m.paths());
  waitFor('the cgroup to empty', () => again.pids().length === 0);
  again.destroy();
  for (const d of Object.values(p)) assert.equal(fs.existsSync(d), false, d);
  again.destroy(); // missing is fine
  // Parents we made are kept (as runc); the test removes them.
  assert.ok(fs.existsSync(path.join(ROOT, 'memory', parent)));
});

test('v2 driver on the unified hierarchy: create, join, cgroup.freeze, destroy', { skip: unifiedReady ? false : 'needs root and a cgroup2 mount at /sys/fs/cgroup/unified' }, async (t) => {
  const name = uniqueName('v2');
  const subtree = path.join(UNIFIED, 'cgroup.subtree_control');
  const before = new Set(read(subtree).split(/\s+/).filter(Boolean));
  const m: CgroupManager = cgroupManager({ id: 'unused', cgroupsPath: `/${name}`, root: UNIFIED });
  const dir = m.paths()['unified'] ?? '';
  const child = startSleep(t);
  cleanupAfter(t, [child], () => [dir], () => {
    // create() enabled the root's controllers for its children, as runc
    // does; put the host back as it was.
    for (const c of read(subtree).split(/\s+/).filter(Boolean)) {
      if (!before.has(c)) fs.writeFileSync(subtree, `-${c}`);
    }
  });

  assert.equal(m.driver, 'v2');
  assert.deepEqual(m.paths(), { unified: path.join(UNIFIED, name) });
  m.create();
  assert.ok(fs.statSync(dir).isDirectory());
  assert.equal(read(path.join(dir, 'cgroup.type')), 'domain');

  m.addProcess(child.pid);
  assert.equal(parseProcCgroup(fs.readFileSync(`/proc/${child.pid}/cgroup`, 'utf8')).unified, `/${name}`);
  assert.deepEqual(m.pids(), [child.pid]);
  assert.match(read(path.join(dir, 'cgroup.events')), /^populated 1$/m);
  assert.equal(typeof m.stats().cpuUsageNs, 'number');

  m.freeze(true);
  assert.match(read(path.join(dir, 'cgroup.events')), /^frozen 1$/m);
  t.diagnostic(`frozen (v2) sleep shows State: ${procState(child.pid)}`);
  m.freeze(false);
  assert.match(read(path.join(dir, 'cgroup.events')), /^frozen 0$/m);

  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
  waitFor('the cgroup to empty', () => m.pids().length === 0);
  m.destroy();
  assert.equal(fs.existsSync(dir), false);
});

test('destroy removes sub-cgroups the container made, deepest first', { skip: unifiedReady ? false : 'needs root and a cgroup2 mount' }, (t) => {
  const name = uniqueName('nest');
  const dir = path.join(UNIFIED, name);
  cleanupAfter(t, [], () => [path.join(dir, 'a/b'), path.join(dir, 'a'), path.join(dir, 'c'), dir]);
  fs.mkdirSync(path.join(dir, 'a/b'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'c'));
  managerFromPaths('v2', { unified: dir }).destroy();
  assert.equal(fs.existsSync(dir), false);
});
