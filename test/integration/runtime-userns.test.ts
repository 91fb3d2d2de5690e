// User namespaces through native/nsexec: the uid and gid maps seen from
// inside, root of the namespace mapped to an unprivileged host id, exec
// joining it, a user namespace joined by path, and bad mappings refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { CLI, containerSuite, leftovers, mc } from '../helpers/bundle';
import type { Spec } from '../../runtime/spec/generated/config';

const { root, bundle } = containerSuite('userns');

const HOST = 200000;
function usernsBundle(args: string[], adjust: (s: Spec) => void = () => {}): string {
  const b = bundle((s) => {
    s.linux!.namespaces!.push({ type: 'user' });
    s.linux!.uidMappings = [{ containerID: 0, hostID: HOST, size: 65536 }];
    s.linux!.gidMappings = [{ containerID: 0, hostID: HOST, size: 65536 }];
    adjust(s);
  }, { args });
  execFileSync('chown', ['-R', `${HOST}:${HOST}`, path.join(b, 'rootfs')]);
  return b;
}

test('a new user namespace: the maps and ids seen from inside', () => {
  const b = usernsBundle(['sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u /bin/busybox; echo $$']);
  const r = mc(root, ['run', '--bundle', b, 'us1']);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
  assert.deepEqual(lines, [`0 ${HOST} 65536`, `0 ${HOST} 65536`, '0', '0', '1']);
});

test('the container\'s processes run as the mapped host uid', () => {
  const b = usernsBundle(['sleep', '100']);
  assert.equal(mc(root, ['run', '-d', '--bundle', b, 'us2']).status, 0);
  const pid = (JSON.parse(mc(root, ['state', 'us2']).stdout) as { pid: number }).pid;
  assert.match(fs.readFileSync(`/proc/${pid}/status`, 'utf8'), new RegExp(`^Uid:\\s+${HOST}\\s`, 'm'));
  assert.notEqual(fs.readlinkSync(`/proc/${pid}/ns/user`), fs.readlinkSync('/proc/self/ns/user'));
  // exec joins the same user namespace
  const e = mc(root, ['exec', 'us2', 'sh', '-c', '[ "$(readlink /proc/self/ns/user)" = "$(readlink /proc/1/ns/user)" ] && echo same-userns; cat /proc/self/uid_map']);
  assert.equal(e.status, 0, e.stderr);
  assert.match(e.stdout, /same-userns/);
  // a second container joins this user namespace by path
  const b2 = usernsBundle(['cat', '/proc/self/uid_map'], (s) => {
    s.linux!.namespaces = s.linux!.namespaces!.map((n) => (n.type === 'user' ? { type: 'user', path: `/proc/${pid}/ns/user` } : n));
    delete s.linux!.uidMappings;
    delete s.linux!.gidMappings;
  });
  const j = mc(root, ['run', '--bundle', b2, 'us3']);
  assert.equal(j.status, 0, j.stderr);
  assert.equal(j.stdout.trim().split(/\s+/).join(' '), `0 ${HOST} 65536`);
  assert.equal(mc(root, ['delete', '--force', 'us2']).status, 0);
});

test('bad mappings are refused with the field named, leaving nothing', () => {
  const overlap = usernsBundle(['true'], (s) => {
    s.linux!.uidMappings = [{ containerID: 0, hostID: HOST, size: 1000 }, { containerID: 500, hostID: HOST + 5000, size: 10 }];
  });
  const r = mc(root, ['create', '--bundle', overlap, 'bad1']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /linux\.uidMappings\[1\] overlaps linux\.uidMappings\[0\]/);
  const noRoot = usernsBundle(['true'], (s) => {
    s.linux!.gidMappings = [{ containerID: 1, hostID: HOST, size: 10 }];
  });
  const r2 = mc(root, ['create', '--bundle', noRoot, 'bad2']);
  assert.match(r2.stderr, /linux\.gidMappings: must map container id 0/);
  const noUserns = bundle((s) => {
    s.linux!.uidMappings = [{ containerID: 0, hostID: HOST, size: 1 }];
  });
  assert.match(mc(root, ['create', '--bundle', noUserns, 'bad3']).stderr, /mappings need a new user namespace/);
  assert.deepEqual(leftovers(root), []);
});

test('bind sources only the host\'s root can reach (0700 on the way) are mounted, options kept (as runc)', () => {
  const src = fs.mkdtempSync('/tmp/mc-userns-src-'); // 0700, root's
  fs.mkdirSync(path.join(src, 'a'));
  fs.writeFileSync(path.join(src, 'a', 'foo.txt'), 'hello\n');
  try {
    const b = usernsBundle(['sh', '-c', 'cat /mnt/one/foo.txt /mnt/two/foo.txt; touch /mnt/two/x 2>&1 | grep -o "Read-only file system"'], (s) => {
      s.mounts!.push({ source: path.join(src, 'a'), destination: '/mnt/one', options: ['bind'] }, { source: path.join(src, 'a'), destination: '/mnt/two', options: ['bind', 'ro'] });
    });
    const r = mc(root, ['run', '--bundle', b, 'us-bind']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'hello\nhello\nRead-only file system\n');
  } finally {
    fs.rmSync(src, { recursive: true, force: true });
  }
});

test('with a terminal, the init leads its own session, so the pty becomes its controlling tty', () => {
  const b = usernsBundle(['sh', '-c', 'tty; [ "$(cut -d" " -f6 /proc/self/stat)" = "$$" ] && echo session-leader'], (s) => {
    s.process!.terminal = true;
  });
  const r = spawnSync('script', ['-qec', `${CLI} --root ${root} run --bundle ${b} us-tty`, '/dev/null'], { encoding: 'utf8', timeout: 30000 });
  assert.match(r.stdout, /\/dev\/pts\/\d+/, r.stdout);
  assert.match(r.stdout, /session-leader/);
});
