// exec: a second process in a running container lands in the same pid,
// mount, network, ipc and uts namespaces and cgroup as PID 1 (checked from
// inside), with its own args, env, cwd and user; its exit status passes
// through; exec into a stopped container is refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { containerSuite, leftovers, mc } from '../helpers/bundle';

const { root, bundle } = containerSuite('exec');

function running(id: string): string {
  const b = bundle((s) => (s.process!.env = ['PATH=/bin', 'BASE=1']), { args: ['sleep', '100'] });
  const r = mc(root, ['run', '-d', '--bundle', b, id]);
  assert.equal(r.status, 0, r.stderr);
  return b;
}

test('exec joins the namespaces and cgroup of PID 1', () => {
  running('x1');
  const script = 'for n in pid mnt net ipc uts cgroup; do a=$(readlink /proc/self/ns/$n); b=$(readlink /proc/1/ns/$n); [ "$a" = "$b" ] && echo "$n same" || echo "$n differs"; done; '
    + '[ "$(cat /proc/self/cgroup)" = "$(cat /proc/1/cgroup)" ] && echo "cgroup same"; echo "pid $$"';
  const r = mc(root, ['exec', 'x1', 'sh', '-c', script]);
  assert.equal(r.status, 0, r.stderr);
  for (const n of ['pid', 'mnt', 'net', 'ipc', 'uts', 'cgroup']) assert.match(r.stdout, new RegExp(`^${n} same$`, 'm'));
  assert.match(r.stdout, /^cgroup same$/m);
  assert.doesNotMatch(r.stdout, /^pid 1$/m);
  assert.equal(mc(root, ['delete', '--force', 'x1']).status, 0);
});

test('exec: exit status, env, cwd, user, detach with pid file', () => {
  const b = running('x2');
  assert.equal(mc(root, ['exec', 'x2', 'sh', '-c', 'exit 9']).status, 9);
  const env = mc(root, ['exec', '--env', 'EXTRA=2', '--cwd', '/tmp', 'x2', 'sh', '-c', 'echo $BASE $EXTRA; pwd']);
  assert.equal(env.stdout, '1 2\n/tmp\n');
  const user = mc(root, ['exec', '--user', '1000:1001', 'x2', 'sh', '-c', 'grep -E "^(Uid|Gid)" /proc/self/status']);
  assert.match(user.stdout, /^Uid:\s+1000\s/m);
  assert.match(user.stdout, /^Gid:\s+1001\s/m);
  const pidFile = path.join(b, 'exec.pid');
  assert.equal(mc(root, ['exec', '-d', '--pid-file', pidFile, 'x2', 'sleep', '50']).status, 0);
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  assert.ok((JSON.parse(mc(root, ['ps', '--format', 'json', 'x2']).stdout) as number[]).includes(pid));
  const processFile = path.join(b, 'process.json');
  fs.writeFileSync(processFile, JSON.stringify({ args: ['sh', '-c', 'echo from process.json'], cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 } }));
  assert.equal(mc(root, ['exec', '--process', processFile, 'x2']).stdout, 'from process.json\n');
  assert.equal(mc(root, ['delete', '--force', 'x2']).status, 0);
  assert.deepEqual(leftovers(root), []);
});

test('exec into a stopped container, or an unknown one, is refused', () => {
  const b = bundle(() => {}, { args: ['true'] });
  assert.equal(mc(root, ['create', '--bundle', b, 'x3']).status, 0);
  assert.equal(mc(root, ['start', 'x3']).status, 0);
  const end = Date.now() + 5000;
  while ((JSON.parse(mc(root, ['state', 'x3']).stdout) as { status: string }).status !== 'stopped' && Date.now() < end) execFileSync('sleep', ['0.05']);
  const r = mc(root, ['exec', 'x3', 'true']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /cannot exec in container "x3": it is stopped/);
  const u = mc(root, ['exec', 'nope', 'true']);
  assert.match(u.stderr, /container "nope" does not exist/);
  assert.equal(mc(root, ['delete', 'x3']).status, 0);
});

test('the exec init runs from a read-only bind, like the container\'s init', () => {
  const b = bundle(() => {}, { args: ['sleep', '100'] });
  assert.equal(mc(root, ['run', '-d', '--bundle', b, 'x4']).status, 0);
  const r = mc(root, ['--debug', 'exec', 'x4', 'true']);
  assert.equal(r.status, 0, r.stderr);
  // The same sealing as create (runtime/linux/spawn.ts): tmpfs, bind, read-only remount, then spawn from there.
  assert.match(r.stderr, /mount\("[^"]*mycontainer-init", "[^"]*\/exec-[^"/]*\/init", NULL, MS_BIND, NULL\) = 0/);
  assert.match(r.stderr, /mount\(NULL, "[^"]*\/exec-[^"/]*\/init", NULL, MS_RDONLY\|MS_NOSUID\|MS_NODEV\|MS_REMOUNT\|MS_BIND, NULL\) = 0/);
  // What the exec init did, traced with the field behind each step.
  assert.match(r.stderr, /\[exec\] setns\(open\("\/proc\/\d+\/ns\/mnt"\), CLONE_NEWNS\) = 0 {2}# exec: join the container's mount namespace/);
  assert.equal(mc(root, ['delete', '--force', 'x4']).status, 0);
});

test('exec -d hands the process over: the caller\'s subreaper reaps it with its exit status, however quick it is', (t) => {
  // As conmon and containerd's shim are: the runtime must never reap the
  // process it leaves behind (a Node runtime's libuv would, for its own child).
  const sys = require('../../runtime/sys/libc') as typeof import('../../runtime/sys/libc');
  sys.prctl(sys.PR.SET_CHILD_SUBREAPER, 1, 'test: adopt what the runtime leaves', 'PR_SET_CHILD_SUBREAPER');
  t.after(() => sys.prctl(sys.PR.SET_CHILD_SUBREAPER, 0, 'test', 'PR_SET_CHILD_SUBREAPER'));
  const b = running('x9');
  for (let i = 0; i < 5; i++) {
    const pidFile = path.join(b, `exec-${i}.pid`);
    const r = mc(root, ['exec', '-d', '--pid-file', pidFile, 'x9', 'sh', '-c', `exit ${10 + i}`]);
    assert.equal(r.status, 0, r.stderr);
    const fd = sys.pidfdOpen(Number(fs.readFileSync(pidFile, 'utf8')), 'test: the exec process');
    let status: number | null = null;
    const end = Date.now() + 5000;
    while ((status = sys.waitPidfd(fd)) === null && Date.now() < end) execFileSync('sleep', ['0.01']);
    fs.closeSync(fd);
    assert.equal(status, 10 + i, 'the exit status came to us, the subreaper');
  }
  assert.equal(mc(root, ['delete', '--force', 'x9']).status, 0);
});

test('exec in runc\'s terms: repeated flags right before the id, exit 255 for exec\'s own failures, --debug milestones', () => {
  running('x5');
  // Repeated one-value flags, the last one right before the id (runc's StringSliceFlag).
  const env = mc(root, ['exec', '--env', 'A=1', '--env', 'B=2', 'x5', 'sh', '-c', 'echo $A $B']);
  assert.equal(env.stdout, '1 2\n', env.stderr);
  const gids = mc(root, ['exec', '--user', '1000:1000', '--additional-gids', '100', '--additional-gids', '65534', 'x5', 'id', '-G']);
  assert.equal(gids.stdout.trim(), '1000 100 65534', gids.stderr);
  // The process's status passes through; exec's own failures are 255, as runc.
  assert.equal(mc(root, ['exec', 'x5', 'false']).status, 1);
  assert.equal(mc(root, ['exec', 'x5', 'sh', '-c', 'exit 42']).status, 42);
  assert.equal(mc(root, ['exec', 'x5', 'no-such-binary']).status, 255);
  const pidFile = mc(root, ['exec', '--pid-file', '/nonexistent/dir/pid', 'x5', 'true']);
  assert.equal(pidFile.status, 255);
  assert.match(pidFile.stderr, /--pid-file: cannot write \/nonexistent\/dir\/pid: .*ENOENT|no such file/);
  assert.equal(mc(root, ['exec', 'nosuchcontainer', 'true']).status, 255);
  // runc's own --debug lines, which its users grep for, beside our trace.
  const dbg = mc(root, ['--debug', 'exec', 'x5', 'true']);
  assert.equal(dbg.status, 0, dbg.stderr);
  for (const m of ['level=debug', 'nsexec container setup', 'child process in init()', 'setns_init: about to exec']) assert.ok(dbg.stderr.includes(m), m);
  assert.equal(mc(root, ['delete', '--force', 'x5']).status, 0);
});

test('exec --cgroup runs the process in a sub-cgroup of the container\'s, never above it', () => {
  running('x6');
  const pid = Number(JSON.parse(mc(root, ['state', 'x6']).stdout).pid);
  const v1 = fs.existsSync('/sys/fs/cgroup/memory/tasks');
  // The container's own cgroup, as the host sees it (v1: the memory hierarchy; v2: the only one).
  const line = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => (v1 ? /^\d+:memory:/ : /^0::/).test(l)) as string;
  const own = line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1);
  const dir = path.join(v1 ? '/sys/fs/cgroup/memory' : '/sys/fs/cgroup', own, 'sub');
  fs.mkdirSync(dir);
  try {
    const arg = v1 ? 'memory:sub' : 'sub';
    const r = mc(root, ['exec', '--cgroup', arg, 'x6', 'cat', '/proc/self/cgroup']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, v1 ? /:memory:.*\/sub$/m : /^0::.*\/sub$/m, 'the process is in the sub-cgroup');
    const up = mc(root, ['exec', '--cgroup', '..', 'x6', 'true']);
    assert.equal(up.status, 255);
    assert.match(up.stderr, / \.\. is not a sub cgroup path/);
    const missing = mc(root, ['exec', '--cgroup', v1 ? 'memory:nonexistent' : 'nonexistent', 'x6', 'true']);
    assert.match(missing.stderr, /error adding pid \d+ to cgroups: .*\/nonexistent\/cgroup\.procs: no such file or directory/);
    const unknown = mc(root, ['exec', '--cgroup', 'whaaat:/', 'x6', 'true']);
    assert.match(unknown.stderr, /unknown controller whaaat/);
  } finally {
    assert.equal(mc(root, ['delete', '--force', 'x6']).status, 0);
    try {
      fs.rmdirSync(dir);
    } catch {
      // delete removed it with the container's cgroup
    }
  }
});
