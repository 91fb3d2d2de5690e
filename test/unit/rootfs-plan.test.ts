// The rootfs plan (pure): mount options, the plan of `runc spec`'s config,
// custom mounts, devices, paths, propagation, bad input, and the cgroup
// sub-mounts worked out from a host layout.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeRootfs, hostProcSysMounts, parseMountOptions, planRootfs, type RootfsPlan } from '../../runtime/linux/rootfs';
import { MOUNT_ATTR } from '../../runtime/linux/mounts';
import { cgroupSubmounts } from '../../runtime/linux/cgroupmount';
import { detectCgroups, parseProcCgroup } from '../../runtime/cgroups/detect';
import { defaultSpec } from '../../runtime/spec/default';
import type { Spec } from '../../runtime/spec/generated/config';
import { MS } from '../../runtime/sys/constants';
import { runcSpec } from '../fixtures/rootfs-runc-spec';

function bundleDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-plan-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'rootfs'));
  return dir;
}

test('mount options: flags set and cleared in order, propagation apart, the rest is data', () => {
  const p = parseMountOptions(['nosuid', 'noexec', 'rw', 'ro', 'mode=755', 'size=64k', 'rslave', 'strictatime', 'exec', 'private']);
  assert.equal(p.flags, MS.NOSUID | MS.RDONLY | MS.STRICTATIME);
  assert.equal(p.cleared, MS.NOEXEC, 'exec cleared noexec; rw was undone by a later ro');
  assert.deepEqual(p.propagation, [MS.SLAVE | MS.REC, MS.PRIVATE]);
  assert.deepEqual(p.data, ['mode=755', 'size=64k']);
  assert.equal(p.recursive, null);
  assert.equal(p.copyUp, false);
  const b = parseMountOptions(['rbind', 'suid', 'dev', 'defaults']);
  assert.equal(b.flags, MS.BIND | MS.REC);
  assert.equal(b.cleared, MS.NOSUID | MS.NODEV);
});

test('mount options: recursive attributes (rro, rnosuid, rnoatime...) and tmpcopyup', () => {
  const p = parseMountOptions(['rbind', 'rro', 'rnosuid', 'rnoatime', 'rexec', 'tmpcopyup']);
  assert.equal(p.flags, MS.BIND | MS.REC);
  assert.deepEqual(p.recursive, {
    set: MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NOATIME,
    clear: MOUNT_ATTR._ATIME | MOUNT_ATTR.NOEXEC,
  });
  assert.equal(p.copyUp, true);
  assert.deepEqual(p.data, []);
  assert.deepEqual(parseMountOptions(['rro', 'rrw']).recursive, { set: 0, clear: MOUNT_ATTR.RDONLY });
});

test('plan of `runc spec`: the mounts in order with their flags, /dev set up, masked and read-only paths', (t) => {
  const dir = bundleDir(t);
  const plan = planRootfs(runcSpec(), dir, { noPivot: false });
  assert.equal(plan.rootfs, fs.realpathSync(path.join(dir, 'rootfs')));
  assert.equal(plan.readonly, true);
  assert.equal(plan.rootPropagation, MS.SLAVE | MS.REC, 'runc\'s default: rslave');
  assert.equal(plan.propagation, 0);
  assert.deepEqual(plan.mounts.map((m) => [m.destination, m.kind, m.type]), [
    ['/proc', 'fs', 'proc'], ['/dev', 'fs', 'tmpfs'], ['/dev/pts', 'fs', 'devpts'], ['/dev/shm', 'fs', 'tmpfs'],
    ['/dev/mqueue', 'fs', 'mqueue'], ['/sys', 'fs', 'sysfs'], ['/sys/fs/cgroup', 'cgroup', 'cgroup'],
  ]);
  const [proc, dev, pts, shm, mq, sys, cg] = plan.mounts as [RootfsPlan['mounts'][0], RootfsPlan['mounts'][0], ...RootfsPlan['mounts']];
  assert.equal(proc.flags, 0);
  assert.equal(proc.data, null);
  assert.equal(dev.flags, MS.NOSUID | MS.STRICTATIME);
  assert.equal(dev.data, 'mode=755,size=65536k');
  assert.equal(pts?.data, 'newinstance,ptmxmode=0666,mode=0620,gid=5');
  assert.equal(pts?.flags, MS.NOSUID | MS.NOEXEC);
  assert.equal(shm?.source, 'shm');
  assert.equal(mq?.flags, MS.NOSUID | MS.NOEXEC | MS.NODEV);
  assert.equal(sys?.flags, MS.NOSUID | MS.NOEXEC | MS.NODEV | MS.RDONLY, 'sysfs is mounted ro directly');
  assert.equal(sys?.remountFlags, 0);
  assert.equal(cg?.flags, MS.NOSUID | MS.NOEXEC | MS.NODEV | MS.RELATIME | MS.RDONLY);
  assert.equal(cg?.cgroupns, false, 'runc spec has no cgroup namespace');
  assert.ok(plan.mounts.every((m) => m.why === `mounts[${plan.mounts.indexOf(m)}] ${m.destination}`));
  assert.equal(plan.setupDev, true);
  assert.deepEqual(plan.devices.map((d) => `${d.path} ${d.type} ${d.major}:${d.minor} ${d.mode.toString(8)} ${d.uid}:${d.gid}`), [
    '/dev/null c 1:3 666 0:0', '/dev/zero c 1:5 666 0:0', '/dev/full c 1:7 666 0:0',
    '/dev/random c 1:8 666 0:0', '/dev/urandom c 1:9 666 0:0', '/dev/tty c 5:0 666 0:0',
  ]);
  assert.equal(plan.bindDevices, false);
  assert.equal(plan.devReadonlyFlags, 0);
  assert.equal(plan.maskedPaths.length, 10);
  assert.deepEqual(plan.maskedPaths[2], { path: '/proc/kcore', why: 'linux.maskedPaths[2] /proc/kcore' });
  assert.deepEqual(plan.readonlyPaths.map((p) => p.path), ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
  assert.deepEqual(JSON.parse(JSON.stringify(plan)), plan, 'the plan is plain JSON');
});

test('plan: custom binds (ro needs a remount), tmpfs ro filled first, propagation, devices, namespaces', (t) => {
  const dir = bundleDir(t);
  const s = defaultSpec();
  s.mounts!.push(
    { destination: '/data/', type: 'bind', source: '/etc', options: ['rbind', 'ro', 'nosuid', 'rslave'] },
    { destination: '/rel', type: 'none', source: 'relative/dir', options: ['bind'] },
    { destination: '/plain', type: 'bind', source: '/etc' },
    { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['ro', 'size=1m', 'tmpcopyup'] },
    { destination: '/recursive', type: 'bind', source: '/sys', options: ['rbind', 'rro'] },
  );
  s.linux!.devices = [
    { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o600, uid: 1, gid: 2 },
    { path: '/dev/null', type: 'u', major: 1, minor: 3, fileMode: 0o620 },
    { path: '/dev/fifo', type: 'p' },
  ];
  s.linux!.namespaces!.push({ type: 'user' }, { type: 'cgroup' });
  s.linux!.rootfsPropagation = 'shared';
  const plan = planRootfs(s, dir, { noPivot: true });
  const at = (d: string): RootfsPlan['mounts'][0] => {
    const m = plan.mounts.find((x) => x.destination === d);
    assert.ok(m, d);
    return m;
  };
  assert.equal(at('/data').kind, 'bind');
  assert.equal(at('/data').why, 'mounts[7] /data', 'trailing slash normalised');
  assert.equal(at('/data').flags, MS.BIND | MS.REC);
  assert.equal(at('/data').remountFlags, MS.BIND | MS.REMOUNT | MS.RDONLY | MS.NOSUID);
  assert.deepEqual(at('/data').propagation, [MS.SLAVE | MS.REC]);
  assert.equal(at('/rel').source, path.join(dir, 'relative/dir'), 'a relative bind source is in the bundle');
  assert.equal(at('/plain').kind, 'bind', 'type bind without options');
  assert.equal(at('/plain').flags, MS.BIND);
  assert.equal(at('/plain').remountFlags, 0);
  assert.equal(at('/scratch').flags, 0, 'tmpfs mounted rw first');
  assert.equal(at('/scratch').remountFlags, MS.RDONLY | MS.REMOUNT);
  assert.equal(at('/scratch').copyUp, true);
  assert.deepEqual(at('/recursive').recursive, { set: MOUNT_ATTR.RDONLY, clear: 0 });
  assert.equal(at('/sys/fs/cgroup').cgroupns, true, 'with a cgroup namespace, cgroupfs is mounted, not bound');
  assert.equal(plan.rootPropagation, MS.SHARED);
  assert.equal(plan.propagation, MS.SHARED);
  assert.equal(plan.noPivot, true);
  assert.equal(plan.bindDevices, true, 'a user namespace binds the host\'s nodes');
  assert.deepEqual(plan.devices.map((d) => [d.path, d.type, d.mode, d.why]), [
    ['/dev/zero', 'c', 0o666, 'default device /dev/zero'],
    ['/dev/full', 'c', 0o666, 'default device /dev/full'],
    ['/dev/random', 'c', 0o666, 'default device /dev/random'],
    ['/dev/urandom', 'c', 0o666, 'default device /dev/urandom'],
    ['/dev/tty', 'c', 0o666, 'default device /dev/tty'],
    ['/dev/fuse', 'c', 0o600, 'linux.devices[0] /dev/fuse'],
    ['/dev/null', 'c', 0o620, 'linux.devices[1] /dev/null'],
    ['/dev/fifo', 'p', 0o666, 'linux.devices[2] /dev/fifo'],
  ]);
  const forced = planRootfs(s, dir, { noPivot: false, cgroupNamespace: false, userNamespace: false });
  assert.equal(forced.mounts.find((m) => m.kind === 'cgroup')?.cgroupns, false);
  assert.equal(forced.bindDevices, false);
});

test('plan: /dev bound from the host means no device setup; a ro tmpfs /dev is remounted at the end', (t) => {
  const dir = bundleDir(t);
  const s = defaultSpec();
  s.mounts = [{ destination: '/dev', type: 'bind', source: '/dev', options: ['rbind'] }];
  s.linux!.devices = [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229 }];
  const plan = planRootfs(s, dir, { noPivot: false });
  assert.equal(plan.setupDev, false);
  assert.deepEqual(plan.devices, []);
  s.mounts = [{ destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'ro', 'mode=755'] }];
  const ro = planRootfs(s, dir, { noPivot: false });
  assert.equal(ro.mounts[0]?.flags, MS.NOSUID, 'mounted rw to be filled');
  assert.equal(ro.mounts[0]?.remountFlags, 0, 'not remounted right away');
  assert.equal(ro.devReadonlyFlags, MS.NOSUID | MS.RDONLY | MS.REMOUNT);
  s.mounts = [];
  assert.equal(planRootfs(s, dir, { noPivot: false }).setupDev, true, 'no /dev mount: made in the rootfs\' own /dev, as runc does');
});

test('plan: bad input is refused with the field named', (t) => {
  const dir = bundleDir(t);
  const bad = (adjust: (s: Spec) => void, re: RegExp): void => {
    const s = defaultSpec();
    adjust(s);
    assert.throws(() => planRootfs(s, dir, { noPivot: false }), re);
  };
  bad((s) => (s.mounts = [{ destination: 'relative', type: 'tmpfs' }]), /mounts\[0\]\.destination: "relative" must be absolute/);
  bad((s) => (s.mounts = [{ destination: '/x', options: ['bind'] }]), /mounts\[0\]\.source: a bind mount needs a source/);
  bad((s) => (s.mounts = [{ destination: '/x', source: 'x' }]), /mounts\[0\]\.type: required/);
  bad((s) => (s.mounts = [{ destination: '/x', type: 'proc', source: 'proc', options: ['tmpcopyup'] }]), /mounts\[0\]\.options: tmpcopyup is only for tmpfs/);
  bad((s) => (s.mounts = [{ destination: '/proc', type: 'tmpfs', source: 'tmpfs' }]), /mounts\[0\] \/proc: only a proc filesystem may be mounted on \/proc/);
  bad((s) => (s.mounts = [{ destination: '/proc/sys/x', type: 'bind', source: '/etc', options: ['bind'] }]), /mounts\[0\] \/proc\/sys\/x: .* inside \/proc/);
  bad((s) => (s.root = { path: 'nope' }), /root\.path: rootfs .*nope does not exist/);
  bad((s) => (s.root = { path: '/' }), /root\.path: the rootfs cannot be the host's \//);
  bad((s) => (s.linux!.rootfsPropagation = 'sideways' as never), /linux\.rootfsPropagation: "sideways" is not one of/);
  bad((s) => (s.linux!.devices = [{ path: '/etc/x', type: 'c', major: 1, minor: 3 }]), /linux\.devices\[0\]\.path: "\/etc\/x" must be under \/dev/);
  bad((s) => (s.linux!.devices = [{ path: '/dev/../etc/x', type: 'c', major: 1, minor: 3 }]), /linux\.devices\[0\]\.path: .* must be under \/dev/);
  bad((s) => (s.linux!.devices = [{ path: '/dev/x', type: 'q', major: 1, minor: 3 }]), /linux\.devices\[0\]\.type: "q"/);
  bad((s) => (s.linux!.devices = [{ path: '/dev/x', type: 'b' }]), /linux\.devices\[0\]: major and minor are required/);
  bad((s) => (s.linux!.maskedPaths = ['proc/kcore']), /linux\.maskedPaths\[0\]: "proc\/kcore" must be absolute/);
  // Allowed into /proc: the files lxcfs emulates.
  const s = defaultSpec();
  s.mounts!.push({ destination: '/proc/meminfo', type: 'bind', source: '/proc/meminfo', options: ['bind'] });
  assert.doesNotThrow(() => planRootfs(s, dir, { noPivot: false }));
});

test('plan: the bundle is not touched (bind sources are checked when mounting)', (t) => {
  const dir = bundleDir(t);
  const s = defaultSpec();
  s.mounts!.push({ destination: '/x', type: 'bind', source: '/nonexistent', options: ['bind'] });
  const plan = planRootfs(s, dir, { noPivot: false });
  assert.equal(plan.mounts.at(-1)?.source, '/nonexistent');
});

test('describeRootfs: one line per step, each with its reason', (t) => {
  const dir = bundleDir(t);
  const s = defaultSpec();
  s.mounts!.push({ destination: '/data', type: 'bind', source: '/etc', options: ['rbind', 'ro'] });
  const lines = describeRootfs(planRootfs(s, dir, { noPivot: false }));
  assert.ok(lines.every((l) => / {3}# \S/.test(l)), 'every line has a reason');
  assert.match(lines[0] ?? '', /^mount\(NULL, "\/", NULL, MS_REC\|MS_SLAVE, NULL\)/);
  assert.ok(lines.some((l) => l.includes('MS_RDONLY|MS_REMOUNT|MS_BIND') && l.includes('mounts[7] /data')));
  assert.ok(lines.some((l) => l.startsWith('mknod(rootfs+"/dev/null", c 0666, 1:3)')));
  assert.ok(lines.some((l) => l.includes('pivot_root(".", ".")')));
  assert.ok(lines.some((l) => l.includes('linux.maskedPaths[2] /proc/kcore')));
  assert.ok(lines.some((l) => l.endsWith('# root.readonly')));
});

test('cgroup sub-mounts on a hybrid host: one per hierarchy, the init\'s own directory, links for co-mounted controllers', () => {
  const mountinfo = [
    '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
    '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
    '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
    '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd',
    '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
  ].join('\n');
  const own = parseProcCgroup('5:name=systemd:/user.slice\n4:memory:/mycontainer/c1\n2:cpu,cpuacct:/mycontainer/c1\n0::/mycontainer/c1\n');
  const subs = cgroupSubmounts(detectCgroups({ mountinfo }), own);
  assert.deepEqual(subs.map((s) => [s.name, s.links, s.bindSource, s.fs.data]), [
    ['cpu,cpuacct', ['cpu', 'cpuacct'], '/sys/fs/cgroup/cpu,cpuacct/mycontainer/c1', 'cpu,cpuacct'],
    ['memory', [], '/sys/fs/cgroup/memory/mycontainer/c1', 'memory'],
    ['systemd', [], '/sys/fs/cgroup/systemd/user.slice', 'none,name=systemd'],
    ['unified', [], '/sys/fs/cgroup/unified/mycontainer/c1', null],
  ]);
  assert.equal(subs[2]?.fs.source, 'systemd');
  // Pure v2: the destination itself.
  const v2 = cgroupSubmounts(detectCgroups({ mountinfo: '30 23 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw' }), parseProcCgroup('0::/a/b\n'));
  assert.deepEqual(v2.map((s) => [s.name, s.bindSource, s.fs.fstype]), [['', '/sys/fs/cgroup/a/b', 'cgroup2']]);
  assert.throws(() => cgroupSubmounts(detectCgroups({ mountinfo }), parseProcCgroup('0::/x\n')), /own cpu cgroup/);
});

test('--no-pivot hides the host\'s full proc and sysfs mounts, not those in the rootfs', () => {
  const mi = [
    '22 27 0:21 / /proc rw,relatime - proc proc rw',
    '23 27 0:22 / /sys rw,relatime - sysfs sysfs rw',
    '24 22 0:40 / /proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw',
    '25 27 0:21 /sys /mnt/procsys rw - proc proc rw',
    '26 27 0:50 / /b/rootfs/proc rw - proc proc rw',
    '28 27 0:51 / /b/rootfs2/sys rw - sysfs sysfs rw',
  ].join('\n');
  assert.deepEqual(hostProcSysMounts(mi, '/b/rootfs'), ['/proc', '/sys', '/b/rootfs2/sys']);
});
