// OCI hooks: each kind runs at its moment, in the right namespaces, with the
// state on stdin; a failing or slow hook fails the container and leaves
// nothing; --debug traces the syscalls with their reasons; explain prints
// the plan.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cgroupDirsNamed, containerSuite, leftovers, makeBundle, mc } from '../helpers/bundle';
import type { Hook } from '../../runtime/spec/generated/config';

const { root, bundle } = containerSuite('hooks');

/** A hook that appends "<name> <status> <pid> <mnt ns> <arg1>" to OUT (a host path or, for in-container hooks, a rootfs path). */
function recorder(name: string, out: string, extra: Partial<Hook> = {}): Hook {
  return {
    path: '/bin/sh',
    args: ['sh', '-c', `read -r s; st=$(echo "$s" | sed 's/.*"status":"\\([a-z]*\\)".*/\\1/'); echo "${name} $st $(readlink /proc/self/ns/mnt) $1 $HOOKVAR" >> ${out}`, 'argv0', 'arg1'],
    env: ['HOOKVAR=hv', 'PATH=/bin:/usr/bin'],
    ...extra,
  };
}

test('hooks run in order, with the state on stdin, args and env', () => {
  const log = path.join(fs.mkdtempSync('/tmp/mc-hooks-'), 'log');
  let b = '';
  b = makeBundle((s) => {
    s.hooks = {
      prestart: [recorder('prestart', log)],
      createRuntime: [recorder('createRuntime', log)],
      createContainer: [recorder('createContainer', log)],
      // startContainer runs inside the container: /bin/sh is busybox there, and the log is a container path.
      startContainer: [recorder('startContainer', '/hooklog')],
      poststart: [recorder('poststart', log)],
      poststop: [recorder('poststop', log)],
    };
  }, { args: ['sh', '-c', 'echo process >> /hooklog'] });
  const r = mc(root, ['run', '--bundle', b, 'hooks1']);
  assert.equal(r.status, 0, r.stderr);
  const host = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => l.split(' '));
  assert.deepEqual(host.map((l) => l[0]), ['prestart', 'createRuntime', 'createContainer', 'poststart', 'poststop']);
  const hostMnt = fs.readlinkSync('/proc/self/ns/mnt');
  const byName = Object.fromEntries(host.map((l) => [l[0], l]));
  assert.equal(byName['createRuntime']![2], hostMnt, 'createRuntime runs in the runtime namespace');
  assert.notEqual(byName['createContainer']![2], hostMnt, 'createContainer runs in the container namespace');
  assert.equal(byName['poststop']![2], hostMnt);
  // The statuses runc gives each hook (runtime-tools' hooks_stdin checks prestart's).
  assert.equal(byName['prestart']![1], 'created');
  assert.equal(byName['createRuntime']![1], 'created');
  assert.equal(byName['createContainer']![1], 'creating');
  assert.equal(byName['poststart']![1], 'running');
  assert.equal(byName['poststop']![1], 'stopped');
  for (const l of host) assert.deepEqual(l.slice(3), ['arg1', 'hv'], `${l[0]}: args and env`);
  const inside = fs.readFileSync(path.join(b, 'rootfs', 'hooklog'), 'utf8').trim().split('\n');
  assert.equal(inside.length, 2);
  assert.match(inside[0] as string, /^startContainer created /);
  assert.equal(inside[1], 'process');
  fs.rmSync(path.dirname(log), { recursive: true, force: true });
});

test('a startContainer hook runs as the process\'s user, with its capabilities and under its seccomp filter, right before the program (as runc)', () => {
  const b = makeBundle((s) => {
    s.process!.user = { uid: 1000, gid: 1000 };
    s.process!.noNewPrivileges = true;
    // mkdir is refused by the filter: the hook's own mkdir shows whether it runs under it
    s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] };
    s.hooks = {
      startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'mkdir /tmp/byhook 2>/dev/null && echo mkdir-ok > /tmp/hook.out || echo mkdir-refused > /tmp/hook.out; id -u >> /tmp/hook.out; grep CapEff /proc/self/status >> /tmp/hook.out'] }],
    };
  }, { args: ['cat', '/tmp/hook.out'] });
  fs.mkdirSync(path.join(b, 'rootfs', 'tmp'), { recursive: true, mode: 0o1777 });
  fs.chmodSync(path.join(b, 'rootfs', 'tmp'), 0o1777);
  const r = mc(root, ['run', '--bundle', b, 'hookseccomp']);
  assert.equal(r.status, 0, r.stderr);
  const [mkdir, uid, capEff] = r.stdout.trim().split('\n');
  assert.equal(mkdir, 'mkdir-refused', 'the filter holds for the hook');
  assert.equal(uid, '1000');
  assert.match(capEff ?? '', /^CapEff:\s+0+$/, 'no effective capabilities for uid 1000');
});

test('a createContainer hook runs from inside the rootfs, and a mount it makes there is the container\'s (as runc)', () => {
  const b = bundle((s) => {
    s.hooks = { createContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'pwd > ./hook-cwd && mkdir -p ./mnt/byhook && mount -t tmpfs byhook ./mnt/byhook'] }] };
  }, { args: ['sh', '-c', 'grep " /mnt/byhook " /proc/self/mounts'] });
  const r = mc(root, ['run', '--bundle', b, 'hookcwd']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^byhook \/mnt\/byhook tmpfs /, 'the hook\'s mount is seen inside the container');
  assert.equal(fs.readFileSync(path.join(b, 'rootfs', 'hook-cwd'), 'utf8').trim(), fs.realpathSync(path.join(b, 'rootfs')), 'its cwd was the rootfs, not the host\'s');
});

test('a startContainer hook killed by the seccomp filter fails the container, in runc\'s words', () => {
  const b = bundle((s) => {
    s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_KILL' }] };
    s.hooks = { startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'mkdir /tmp/foo'] }] };
  }, { args: ['true'] });
  const r = mc(root, ['run', '--bundle', b, 'hookkilled']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /hooks\.startContainer\[0\]: error running hook \/bin\/sh: killed by signal 31 \(bad system call\)/);
});

test('a failing createRuntime hook fails create and leaves nothing', () => {
  const b = bundle((s) => {
    s.linux!.cgroupsPath = `/mycontainer-test/hookfail-${process.pid}`;
    s.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', 'echo nope >&2; exit 3'] }] };
  });
  const r = mc(root, ['create', '--bundle', b, 'hookfail']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /hooks\.createRuntime\[0\]: error running hook \/bin\/sh: exited with status 3: nope/);
  assert.deepEqual(leftovers(root), []);
  assert.deepEqual(cgroupDirsNamed(`hookfail-${process.pid}`), []);
});

test('a hook timeout is honoured', () => {
  const b = bundle((s) => {
    s.hooks = { prestart: [{ path: '/bin/sleep', args: ['sleep', '30'], timeout: 1 }] };
  });
  const t0 = Date.now();
  const r = mc(root, ['create', '--bundle', b, 'hookslow']);
  assert.notEqual(r.status, 0);
  assert.ok(Date.now() - t0 < 15000, 'killed after its timeout, not after 30 s');
  assert.match(r.stderr, /hooks\.prestart\[0\]: hook \/bin\/sleep timed out after 1s/);
  assert.deepEqual(leftovers(root), []);
});

test('a createContainer hook timeout is honoured by the init, also once the hook has closed its stderr', () => {
  // The init runs these (native/src/init.c): one hook writes nothing and sleeps, one closes stderr first.
  for (const [i, script] of ['sleep 30', 'exec 2>&-; sleep 30'].entries()) {
    const b = bundle((s) => {
      s.hooks = { createContainer: [{ path: '/bin/sh', args: ['sh', '-c', script], timeout: 1 }] };
    });
    const t0 = Date.now();
    const r = mc(root, ['create', '--bundle', b, `hookslow-in${i}`]);
    assert.notEqual(r.status, 0);
    assert.ok(Date.now() - t0 < 15000, 'killed after its timeout, not after 30 s');
    assert.match(r.stderr, /hooks\.createContainer\[0\]: hook \/bin\/sh timed out after 1s/);
    assert.deepEqual(leftovers(root), []);
  }
});

test('--debug traces syscalls with the config field behind each', () => {
  const b = bundle((s) => {
    s.hostname = 'traced';
  }, { args: ['true'] });
  const r = mc(root, ['--debug', 'run', '--bundle', b, 'dbg1']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /unshare\(CLONE_NEWNS\|.*\) = 0 {2}# linux\.namespaces/);
  assert.match(r.stderr, /sethostname\("traced", 6\) = 0 {2}# hostname/);
  assert.match(r.stderr, /capset\(.*# process\.capabilities/);
  assert.match(r.stderr, /execve\("\/bin\/true"/);
  assert.match(r.stderr, /\[cgroup\] write .*# linux\.(cgroupsPath|resources)/);
});

test('explain prints the plan without running anything', () => {
  const b = bundle((s) => {
    s.hostname = 'planned';
    s.linux!.resources = { ...s.linux!.resources, memory: { limit: 64 * 1024 * 1024 } };
  }, { args: ['true'] });
  const r = mc(root, ['explain', '--bundle', b]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /sethostname\("planned"\)\s+# hostname/);
  assert.match(r.stdout, /67108864\s+# linux\.resources\.memory\.limit/);
  assert.match(r.stdout, /pivot_root/);
  assert.deepEqual(leftovers(root), []);
});
