// explain --evidence's checker (runtime/evidence.ts), pure: a plan and
// made-up kernel readings in, ✓/✗ findings out. The ✗ cases a healthy
// kernel never shows are pinned here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { planContainer } from '../../runtime/plan';
import { defaultSpec } from '../../runtime/spec/default';
import { allFindings, capsAfterExecve, cgroupValueMatches, evidenceFor, parseMountinfo, sameWords, type KernelReadings } from '../../runtime/evidence';
import type { CgroupWrite } from '../../runtime/cgroups/manager';

const bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'evidence-unit-'));
fs.mkdirSync(path.join(bundle, 'rootfs'));
process.on('exit', () => fs.rmSync(bundle, { recursive: true, force: true }));

const spec = defaultSpec({ args: ['true'] });
spec.root = { path: 'rootfs' };
spec.hostname = 'box';
spec.linux!.maskedPaths = [];
spec.linux!.readonlyPaths = [];
const plan = planContainer(spec, bundle, { noPivot: false });
const rootfs = plan.rootfs.rootfs;

const MOUNTINFO = [
  `70 45 254:0 ${rootfs} / rw,relatime - ext4 /dev/vda rw`,
  '71 70 0:41 / /proc rw,relatime - proc proc rw',
  '72 70 0:42 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755',
  '73 72 0:43 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620,ptmxmode=666',
  '74 72 0:44 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k',
  '75 72 0:39 / /dev/mqueue rw,nosuid,nodev,noexec,relatime - mqueue mqueue rw',
  '76 70 0:45 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro',
  '77 76 0:46 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755',
  '78 77 0:28 /c /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,memory',
].join('\n');

const caps = (hex: string): string => BigInt(hex).toString(16).padStart(16, '0');
const p = plan.process.capabilities;
const STATUS = `Umask:\t0022\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\nCapInh:\t${caps(p.inheritable)}\nCapPrm:\t${caps(p.permitted)}\nCapEff:\t${caps(p.effective)}\nCapBnd:\t${caps(p.bounding)}\nCapAmb:\t${caps(p.ambient)}\nNoNewPrivs:\t1\nSeccomp:\t0\n`;
const LIMITS = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 1024                 files\n';

const writes: CgroupWrite[] = [
  { controller: 'memory', file: 'memory.limit_in_bytes', value: '67108864', why: 'linux.resources.memory.limit' },
  { controller: 'pids', file: 'pids.max', value: '50', why: 'linux.resources.pids.limit' },
];

function readings(change: Partial<KernelReadings> = {}): KernelReadings {
  const ns = (init: string, host: string): { init: string; host: string } => ({ init, host });
  return {
    pid: 42,
    namespaces: { pid: ns('2', '1'), network: ns('4', '3'), mount: ns('6', '5'), ipc: ns('8', '7'), uts: ns('10', '9'), user: ns('11', '11'), cgroup: ns('12', '12'), time: ns('13', '13') },
    joined: {},
    mountinfo: MOUNTINFO,
    root: { dev: 1, ino: 2 },
    rootfs: { dev: 1, ino: 2 },
    cwd: { dev: 1, ino: 2 },
    cwdInRoot: { dev: 1, ino: 2 },
    exists: {},
    resolved: {},
    cgroupValues: [{ file: 'memory.limit_in_bytes', value: '67108864\n' }, { file: 'pids.max', value: '50\n' }],
    cgroupMember: { '/cg/memory': true, '/cg/pids': true },
    hostname: 'box',
    domainname: '(none)',
    sysctl: {},
    status: STATUS,
    limits: LIMITS,
    oomScoreAdj: '0\n',
    uidMap: '0 0 4294967295\n',
    gidMap: '0 0 4294967295\n',
    ...change,
  };
}

const dirs = { memory: '/cg/memory', pids: '/cg/pids' };
const failed = (r: KernelReadings): string[] => allFindings(evidenceFor(plan, writes, dirs, r)).filter((f) => f.ok === false).map((f) => f.text);

test('readings that match the plan give no ✗', () => {
  assert.deepEqual(failed(readings()), []);
});

test('a namespace the kernel did not make new, a shared one that differs', () => {
  const r = readings({ namespaces: { ...readings().namespaces, uts: { init: '9', host: '9' }, user: { init: '20', host: '11' } } });
  assert.deepEqual(failed(r), ['uts (/proc/42/ns/uts): NOT new: 9 (host 9)', 'user (/proc/42/ns/user): 20, not the host\'s 11']);
});

test('a mount that is missing, or lacks an option the plan set', () => {
  const lines = MOUNTINFO.split('\n').filter((l) => !l.includes(' /dev/mqueue ')).map((l) => l.replace('/sys ro,nosuid', '/sys rw,nosuid'));
  const f = failed(readings({ mountinfo: lines.join('\n') }));
  assert.ok(f.includes('/dev/mqueue: MISSING from /proc/PID/mountinfo'), f.join('\n'));
  assert.ok(f.some((x) => x.startsWith('/sys: sysfs sysfs rw,nosuid') && x.endsWith('(without ro)')), f.join('\n'));
});

test('pivot_root: another root, or the old root still stacked at "/"', () => {
  const f = failed(readings({ root: { dev: 1, ino: 3 }, mountinfo: `${MOUNTINFO}\n99 70 254:0 / / rw - ext4 /dev/vda rw` }));
  assert.equal(f.length, 2, f.join('\n'));
  assert.match(f[0]!, /^\/proc\/42\/root is NOT /);
  assert.match(f[1]!, /and 1 more mounts at "\/" \(the old root is still there\)/);
});

test('cgroup values read back: page rounding and "max" are the same value, another number is not', () => {
  assert.ok(cgroupValueMatches('memory.limit_in_bytes', '1000000', '999424'));
  assert.ok(cgroupValueMatches('memory.limit_in_bytes', '-1', '9223372036854771712'));
  assert.ok(cgroupValueMatches('memory.max', 'max', 'max'));
  assert.ok(cgroupValueMatches('io.max', '8:0 rbps=1048576', '8:0 rbps=1048576 wbps=max riops=max wiops=max'));
  assert.ok(cgroupValueMatches('cpu.max', 'max 100000', 'max 100000'));
  assert.ok(cgroupValueMatches('hugetlb.2MB.limit_in_bytes', String(3 * 1024 * 1024), String(2 * 1024 * 1024)));
  assert.ok(cgroupValueMatches('cpuset.cpus', '0,1,3', '0-1,3'));
  assert.ok(cgroupValueMatches('memory.oom_control', '1', 'oom_kill_disable 1\nunder_oom 0\noom_kill 0'));
  assert.ok(cgroupValueMatches('io.weight', '500', 'default 500'));
  assert.ok(cgroupValueMatches('blkio.throttle.read_bps_device', '8:0 1048576', '8:16 5\n8:0 1048576'));
  assert.ok(!cgroupValueMatches('memory.oom_control', '1', 'oom_kill_disable 0\nunder_oom 0'));
  assert.ok(!cgroupValueMatches('cpuset.cpus', '0-1', '0'));
  assert.ok(!cgroupValueMatches('pids.max', '50', '49'));
  assert.ok(!cgroupValueMatches('pids.max', '5', '5 6'));
  assert.ok(!cgroupValueMatches('cpu.shares', '1', '2'));
  const f = failed(readings({ cgroupValues: [{ file: 'memory.limit_in_bytes', value: '9223372036854771712' }, { file: 'pids.max', value: null }], cgroupMember: { '/cg/memory': false, '/cg/pids': true } }));
  assert.deepEqual(f, ['/cg/memory/cgroup.procs does not list the init (pid 42)', 'memory.limit_in_bytes reads 9223372036854771712, not 67108864', 'pids.max: MISSING (cannot read it back)']);
});

test('identity and process: hostname, rlimits, capabilities, no_new_privs', () => {
  const f = failed(readings({
    hostname: 'other',
    limits: LIMITS.replace('1024                 1024', '1024                 4096'),
    status: STATUS.replace(/^CapEff:.*$/m, 'CapEff:\t0000000000000000').replace('NoNewPrivs:\t1', 'NoNewPrivs:\t0'),
  }));
  assert.deepEqual(f, [
    '/proc/sys/kernel/hostname (its uts namespace) reads "other", not "box"',
    'limits "Max open files": soft 1024, hard 4096',
    'status CapEff: 0000000000000000 = (empty), not KILL NET_BIND_SERVICE AUDIT_WRITE',
    'status NoNewPrivs: 0',
  ]);
});

test('capabilities after execve: the kernel\'s rule, and never ✗ when a program differs', () => {
  const c = { bounding: '0x21', effective: '0x1', permitted: '0x1', inheritable: '0x0', ambient: '0x0' };
  // Root gains its bounding set at execve, unless no_new_privs caps it at what it had.
  assert.deepEqual(capsAfterExecve(c, 0, false), { permitted: 0x21n, effective: 0x21n });
  assert.deepEqual(capsAfterExecve(c, 0, true), { permitted: 0x1n, effective: 0x1n });
  // Anyone else keeps only the ambient set.
  assert.deepEqual(capsAfterExecve({ ...c, ambient: '0x1', inheritable: '0x1' }, 1000, false), { permitted: 0x1n, effective: 0x1n });
  const status = (eff: string): string => STATUS.replace(/^CapEff:.*$/m, `CapEff:\t${eff}`).replace(/^CapPrm:.*$/m, `CapPrm:\t${eff}`);
  const after = (eff: string) => evidenceFor(plan, writes, dirs, readings({ statusAfterExecve: status(eff) })).afterExecve;
  assert.equal(after(caps(p.bounding))?.ok, true);
  assert.equal(after('0000000000000001')?.ok, null, 'a program with file capabilities is no contradiction of the plan');
  assert.equal(evidenceFor(plan, writes, dirs, readings()).afterExecve, null, 'not read, not shown');
});

test('sysctl values compare as words and numbers', () => {
  assert.ok(sameWords('1024\t65000', '1024 65000'));
  assert.ok(sameWords('1', '01'));
  assert.ok(!sameWords('1', '0'));
  assert.ok(!sameWords('1 2', '1'));
});

test('a mount whose destination is a symlink in the image is looked for where it resolves', () => {
  const lines = MOUNTINFO.replace(' /dev/mqueue ', ' /run/mq ');
  const f = failed(readings({ mountinfo: lines, resolved: { '/dev/mqueue': '/run/mq' } }));
  assert.deepEqual(f, []);
});

test('mountinfo: escaped mount points are decoded', () => {
  const [m] = parseMountinfo('1 0 0:1 / /a\\040b rw - tmpfs tmpfs rw');
  assert.equal(m?.mountPoint, '/a b');
});
