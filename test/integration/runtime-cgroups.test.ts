// linux.cgroupsPath and linux.resources through the runtime: the container's
// processes are in the cgroup (seen from inside, /proc/self/cgroup), the
// host-side files hold the limits, the cgroup namespace roots the view, and
// delete removes every directory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cgroupDirsNamed, containerSuite, leftovers, mc } from '../helpers/bundle';
import { readLayout } from '../../runtime/cgroups';

const { root, bundle } = containerSuite('cgroups');

const layout = readLayout();
const v1 = layout.driver !== 'v2';
const read = (ctrl: string, rel: string, file: string): string => fs.readFileSync(path.join('/sys/fs/cgroup', v1 ? ctrl : '', rel, file), 'utf8').trim();

test('resources are written to the cgroup, and the container is in it', { skip: !v1 && 'these checks are for v1 and hybrid hosts' }, () => {
  const name = `cg-res-${process.pid}`;
  const rel = `/mycontainer-test/${name}`;
  const b = bundle((s) => {
    s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'cgroup');
    s.linux!.cgroupsPath = rel;
    s.linux!.resources = {
      devices: [{ allow: false, access: 'rwm' }],
      memory: { limit: 64 * 1024 * 1024, reservation: 32 * 1024 * 1024 },
      cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0', mems: '0' },
      pids: { limit: 64 },
    };
  }, { args: ['sleep', '100'] });
  const id = 'res1';
  assert.equal(mc(root, ['run', '-d', '--bundle', b, id]).status, 0);
  const pid = (JSON.parse(mc(root, ['state', id]).stdout) as { pid: number }).pid;
  // From inside: /proc/<pid>/cgroup is what the container reads as /proc/self/cgroup.
  const inside = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  assert.match(inside, new RegExp(`:memory:${rel}$`, 'm'));
  assert.match(inside, new RegExp(`:pids:${rel}$`, 'm'));
  assert.equal(read('memory', rel, 'memory.limit_in_bytes'), String(64 * 1024 * 1024));
  assert.equal(read('memory', rel, 'memory.soft_limit_in_bytes'), String(32 * 1024 * 1024));
  assert.equal(read('cpu', rel, 'cpu.shares'), '512');
  assert.equal(read('cpu', rel, 'cpu.cfs_quota_us'), '50000');
  assert.equal(read('cpu', rel, 'cpu.cfs_period_us'), '100000');
  assert.equal(read('cpuset', rel, 'cpuset.cpus'), '0');
  assert.equal(read('pids', rel, 'pids.max'), '64');
  assert.match(read('devices', rel, 'devices.list'), /^c 1:3 rwm$/m, 'the default /dev/null is allowed');
  assert.doesNotMatch(read('devices', rel, 'devices.list'), /^a /m, 'not allow-all');
  assert.equal(mc(root, ['delete', '--force', id]).status, 0);
  assert.deepEqual(cgroupDirsNamed(name), []);
});

test('the pids limit holds inside the container', { skip: !v1 && 'v1 and hybrid hosts' }, () => {
  const b = bundle((s) => {
    s.linux!.cgroupsPath = `/mycontainer-test/cg-pids-${process.pid}`;
    s.linux!.resources = { pids: { limit: 5 } };
  }, { args: ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; echo all forked'] });
  const r = mc(root, ['run', '--bundle', b, 'pids1']);
  assert.match(r.stderr, /can't fork: Resource temporarily unavailable/);
  assert.doesNotMatch(r.stdout, /all forked/);
  assert.notEqual(r.status, 0);
});

test('a cgroup namespace makes the container cgroup its root', () => {
  const b = bundle((s) => {
    s.linux!.cgroupsPath = `/mycontainer-test/cg-ns-${process.pid}`;
  }, { args: ['cat', '/proc/self/cgroup'] });
  const r = mc(root, ['run', '--bundle', b, 'cgns1']);
  assert.equal(r.status, 0, r.stderr);
  for (const line of r.stdout.trim().split('\n')) {
    assert.match(line, /:\/$/, `every hierarchy reads "/" inside: ${line}`);
  }
});

test('an invalid resource names the file and the field, and leaves nothing', () => {
  const name = `cg-bad-${process.pid}`;
  const b = bundle((s) => {
    s.linux!.cgroupsPath = `/mycontainer-test/${name}`;
    s.linux!.resources = { cpu: { cpus: '999' } };
  });
  const r = mc(root, ['create', '--bundle', b, 'badcg']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /cpuset\.cpus/);
  assert.match(r.stderr, /linux\.resources\.cpu\.cpus/);
  assert.deepEqual(leftovers(root), []);
  assert.deepEqual(cgroupDirsNamed(name), []);
});

test('a cgroup frozen beforehand: create and run -d refuse it at once, as runc ("container\'s cgroup unexpectedly frozen"), and leave the cgroup as it was', () => {
  const name = `cg-frozen-${process.pid}`;
  const rel = `/mycontainer-test/${name}`;
  // the freezer of whichever hierarchy the runtime uses: v1's freezer, else cgroup.freeze
  const dir = v1 ? path.join('/sys/fs/cgroup/freezer', rel) : path.join('/sys/fs/cgroup', rel);
  fs.mkdirSync(dir, { recursive: true });
  try {
    if (v1) fs.writeFileSync(path.join(dir, 'freezer.state'), 'FROZEN');
    else fs.writeFileSync(path.join(dir, 'cgroup.freeze'), '1');
    const b = bundle((s) => {
      s.linux!.cgroupsPath = rel;
    }, { args: ['true'] });
    for (const [verb, args] of [['run -d', ['run', '-d', '--bundle', b, 'frozen1']], ['create', ['create', '--bundle', b, 'frozen2']]] as const) {
      const t0 = Date.now();
      const r = mc(root, [...args]);
      assert.equal(r.status, 1, `${verb}: ${r.stderr}`);
      assert.match(r.stderr, /container's cgroup unexpectedly frozen/);
      assert.ok(Date.now() - t0 < 10000, `${verb} answered at once`);
      assert.notEqual(mc(root, ['state', args[args.length - 1]!]).status, 0, 'no container left');
    }
    assert.match(fs.readFileSync(path.join(dir, v1 ? 'freezer.state' : 'cgroup.freeze'), 'utf8'), v1 ? /FROZEN/ : /1/, 'still frozen: not ours to thaw');
  } finally {
    if (v1) fs.writeFileSync(path.join(dir, 'freezer.state'), 'THAWED');
    else fs.writeFileSync(path.join(dir, 'cgroup.freeze'), '0');
    for (const d of cgroupDirsNamed(name).reverse()) fs.rmdirSync(d);
  }
});

test('a linux.devices node under a deny-all rule is made but not usable, also after an update (as runc)', { skip: !v1 && 'the v1 devices controller' }, () => {
  const b = bundle((s) => {
    s.linux!.resources = { devices: [{ allow: false, access: 'rwm' }] };
    s.linux!.devices = [{ path: '/dev/kmsg', type: 'c', major: 1, minor: 11 }];
  }, { args: ['sleep', '100'] });
  const id = 'cg-deny';
  assert.equal(mc(root, ['run', '-d', '--bundle', b, id]).status, 0);
  try {
    const probe = (): string => mc(root, ['exec', id, 'sh', '-c', 'ls -l /dev/kmsg >/dev/null && echo made; echo x > /dev/kmsg']).stdout + mc(root, ['exec', id, 'sh', '-c', 'echo x > /dev/kmsg']).stderr;
    const before = probe();
    assert.match(before, /^made$/m);
    assert.match(before, /Operation not permitted/, 'the device cgroup refuses it');
    assert.equal(mc(root, ['update', '--pids-limit', '42', id]).status, 0);
    assert.match(probe(), /Operation not permitted/, 'an update of another resource keeps the device rules');
  } finally {
    mc(root, ['delete', '--force', id]);
  }
});

test('a second container in the same cgroup is warned about, as runc does', () => {
  const rel = `/mycontainer-test/cg-shared-${process.pid}`;
  const b = bundle((s) => {
    s.linux!.cgroupsPath = rel;
  }, { args: ['sleep', '100'] });
  try {
    assert.equal(mc(root, ['run', '-d', '--bundle', b, 'cg-shared1']).stderr, '');
    const second = mc(root, ['run', '-d', '--bundle', b, 'cg-shared2']);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stderr, /container's cgroup is not empty: 1 process\(es\) found/);
  } finally {
    mc(root, ['delete', '--force', 'cg-shared2']);
    mc(root, ['delete', '--force', 'cg-shared1']);
  }
});
