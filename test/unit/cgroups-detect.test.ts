// Layout detection and cgroupsPath placement, from fixture mountinfo texts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cgroupDirs, cgroupManager, detectCgroups, expandSlice, parseProcCgroup, resolveCgroupsPath } from '../../runtime/cgroups';
import { RuntimeError } from '../../runtime/sys/errors';

// A systemd host with the unified hierarchy only (Debian 11+, Fedora 31+).
const V2 = `
22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
28 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
`;

// A legacy host (Ubuntu 18.04, CentOS 7): cpu,cpuacct and net_cls,net_prio co-mounted.
const V1 = `
25 22 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
30 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
31 25 0:29 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,net_cls,net_prio
32 25 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
33 25 0:31 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,cpuset,clone_children
34 25 0:32 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,freezer
35 25 0:33 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,pids
36 25 0:34 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:20 - cgroup cgroup rw,devices
37 25 0:35 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:21 - cgroup cgroup rw,blkio
38 25 0:36 / /sys/fs/cgroup/hugetlb rw,nosuid,nodev,noexec,relatime shared:22 - cgroup cgroup rw,hugetlb,release_agent=/x
99 1 0:30 / /mnt/memory-again rw,relatime shared:16 - cgroup cgroup rw,memory
`;

// This host: v1 controllers, an empty cgroup2 at /sys/fs/cgroup/unified.
const HYBRID = `
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

// Inside a Docker container on a v1 host: each mount shows the container's sub-tree.
const V1_IN_CONTAINER = `
600 590 0:30 /docker/abc /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:16 - cgroup cgroup rw,memory
601 590 0:33 /docker/abc /sys/fs/cgroup/pids ro,nosuid,nodev,noexec,relatime master:19 - cgroup cgroup rw,pids
`;

test('v2: cgroup2 at /sys/fs/cgroup', () => {
  const l = detectCgroups({ mountinfo: V2 });
  assert.equal(l.driver, 'v2');
  assert.deepEqual(l.v1, []);
  assert.equal(l.unified?.mountPoint, '/sys/fs/cgroup');
});

test('v1: one hierarchy per mount, co-mounted controllers together, name=systemd kept, options dropped, second mounts ignored', () => {
  const l = detectCgroups({ mountinfo: V1 });
  assert.equal(l.driver, 'v1');
  assert.equal(l.unified, null);
  const byMount = Object.fromEntries(l.v1.map((h) => [h.mountPoint, h.controllers]));
  assert.deepEqual(byMount, {
    '/sys/fs/cgroup/systemd': ['name=systemd'],
    '/sys/fs/cgroup/cpu,cpuacct': ['cpu', 'cpuacct'],
    '/sys/fs/cgroup/net_cls,net_prio': ['net_cls', 'net_prio'],
    '/sys/fs/cgroup/memory': ['memory'],
    '/sys/fs/cgroup/cpuset': ['cpuset'],
    '/sys/fs/cgroup/freezer': ['freezer'],
    '/sys/fs/cgroup/pids': ['pids'],
    '/sys/fs/cgroup/devices': ['devices'],
    '/sys/fs/cgroup/blkio': ['blkio'],
    '/sys/fs/cgroup/hugetlb': ['hugetlb'],
  });
});

test('hybrid: v1 controllers plus cgroup2 at /sys/fs/cgroup/unified', () => {
  const l = detectCgroups({ mountinfo: HYBRID });
  assert.equal(l.driver, 'hybrid');
  assert.equal(l.v1.length, 9);
  assert.equal(l.unified?.mountPoint, '/sys/fs/cgroup/unified');
});

test('a root that is itself a cgroup2 mount is v2 (the unified hierarchy of a hybrid host)', () => {
  const l = detectCgroups({ mountinfo: HYBRID, root: '/sys/fs/cgroup/unified' });
  assert.equal(l.driver, 'v2');
  assert.equal(l.unified?.mountPoint, '/sys/fs/cgroup/unified');
});

test('no cgroup mount: the listing of a fake root decides, else an error', () => {
  assert.equal(detectCgroups({ mountinfo: HYBRID, root: '/tmp/fake', listing: ['cgroup.controllers', 'x'] }).driver, 'v2');
  const l = detectCgroups({ mountinfo: '', root: '/tmp/fake', listing: ['memory', 'cpu,cpuacct', 'systemd', 'unified', 'not-a-controller'] });
  assert.equal(l.driver, 'hybrid');
  assert.deepEqual(l.v1.map((h) => h.controllers), [['cpu', 'cpuacct'], ['memory'], ['name=systemd']]);
  assert.equal(l.unified?.mountPoint, '/tmp/fake/unified');
  assert.throws(() => detectCgroups({ mountinfo: '', root: '/tmp/fake' }), RuntimeError);
});

test('mountinfo escapes (\\040) in mount points are decoded', () => {
  const l = detectCgroups({ mountinfo: '41 31 0:38 / /tmp/my\\040cg rw - cgroup2 cgroup2 rw\n', root: '/tmp/my cg' });
  assert.equal(l.driver, 'v2');
});

test('/proc/self/cgroup parsing', () => {
  const own = parseProcCgroup('9:name=systemd:/user.slice\n4:memory:/process_api/x\n2:cpu,cpuacct:/a\n0::/b\n');
  assert.equal(own.v1.get('memory'), '/process_api/x');
  assert.equal(own.v1.get('cpuacct'), '/a');
  assert.equal(own.v1.get('name=systemd'), '/user.slice');
  assert.equal(own.unified, '/b');
});

test('cgroupsPath: absent → /mycontainer/<id>; absolute normalised; relative kept; .. rejected', () => {
  assert.deepEqual(resolveCgroupsPath(undefined, 'c1'), { path: '/mycontainer/c1', absolute: true });
  assert.deepEqual(resolveCgroupsPath('', 'c1'), { path: '/mycontainer/c1', absolute: true });
  assert.deepEqual(resolveCgroupsPath('/libpod_parent//libpod-abc/', 'c1'), { path: '/libpod_parent/libpod-abc', absolute: true });
  assert.deepEqual(resolveCgroupsPath('/../../x', 'c1'), { path: '/x', absolute: true });
  assert.deepEqual(resolveCgroupsPath('a/b', 'c1'), { path: 'a/b', absolute: false });
  assert.throws(() => resolveCgroupsPath('a/../../x', 'c1'), /leaves the runtime's cgroup/);
  assert.throws(() => resolveCgroupsPath(undefined, '../x'), RuntimeError);
});

test('cgroupsPath: systemd "slice:prefix:name" maps like runc\'s systemd driver', () => {
  assert.equal(resolveCgroupsPath('system.slice:docker:abc', 'x').path, '/system.slice/docker-abc.scope');
  assert.equal(resolveCgroupsPath(':crio:abc', 'x').path, '/system.slice/crio-abc.scope');
  assert.equal(resolveCgroupsPath('kubepods-besteffort.slice:cri-containerd:abc', 'x').path, '/kubepods.slice/kubepods-besteffort.slice/cri-containerd-abc.scope');
  assert.equal(resolveCgroupsPath('machine.slice::my.slice', 'x').path, '/machine.slice/my.slice');
  assert.equal(expandSlice('-.slice'), '/');
  assert.throws(() => expandSlice('a--b.slice'), /invalid slice/);
  assert.throws(() => expandSlice('nope'), /invalid slice/);
});

test('directories: absolute path in every hierarchy; relative under our own cgroup, minus the mount root', () => {
  const hybrid = detectCgroups({ mountinfo: HYBRID });
  const abs = cgroupDirs(hybrid, resolveCgroupsPath('/libpod_parent/libpod-abc', 'x'));
  assert.equal(abs['memory'], '/sys/fs/cgroup/memory/libpod_parent/libpod-abc');
  assert.equal(abs['name=systemd'], '/sys/fs/cgroup/systemd/libpod_parent/libpod-abc');
  assert.equal(abs['unified'], '/sys/fs/cgroup/unified/libpod_parent/libpod-abc');

  const v1 = detectCgroups({ mountinfo: V1 });
  const co = cgroupDirs(v1, resolveCgroupsPath(undefined, 'c1'));
  assert.equal(co['cpu'], '/sys/fs/cgroup/cpu,cpuacct/mycontainer/c1');
  assert.equal(co['cpuacct'], co['cpu']);

  const own = parseProcCgroup('9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n4:memory:/process_api/h\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n');
  const rel = cgroupDirs(detectCgroups({ mountinfo: HYBRID }), resolveCgroupsPath('ctr/c1', 'x'), own);
  assert.equal(rel['memory'], '/sys/fs/cgroup/memory/process_api/h/ctr/c1');
  assert.equal(rel['cpu'], '/sys/fs/cgroup/cpu/ctr/c1');

  // In a container, /proc/self/cgroup says /docker/abc/sub but the mount shows /docker/abc.
  const inCtr = cgroupDirs(detectCgroups({ mountinfo: V1_IN_CONTAINER }), resolveCgroupsPath('c1', 'x'), parseProcCgroup('4:memory:/docker/abc/sub\n5:pids:/docker/abc\n'));
  assert.equal(inCtr['memory'], '/sys/fs/cgroup/memory/sub/c1');
  assert.equal(inCtr['pids'], '/sys/fs/cgroup/pids/c1');
});

test('a cgroupsPath of "/" (the hierarchy root itself) is refused', () => {
  assert.throws(() => cgroupDirs(detectCgroups({ mountinfo: V2 }), resolveCgroupsPath('/', 'x')), /root of the/);
});

test('cgroupManager with fixture texts needs no host access', () => {
  const m = cgroupManager({ id: 'c1', cgroupsPath: 'x/y', mountinfo: V2, procSelfCgroup: '0::/user.slice/me\n' });
  assert.equal(m.driver, 'v2');
  assert.deepEqual(m.paths(), { unified: '/sys/fs/cgroup/user.slice/me/x/y' });
});
