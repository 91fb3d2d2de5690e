// Pure parts of the rootfs: securejoin against hostile symlinks, mount
// option parsing, and the plan made from the default spec.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { secureJoin } from '../../runtime/linux/securejoin';
import { parseMountOptions, planRootfs } from '../../runtime/linux/rootfs';
import { defaultSpec } from '../../runtime/spec/default';
import { MS } from '../../runtime/sys/constants';

function tree(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-sj-'));
  fs.mkdirSync(path.join(root, 'etc'));
  fs.mkdirSync(path.join(root, 'a/b'), { recursive: true });
  fs.symlinkSync('/etc', path.join(root, 'abs'));
  fs.symlinkSync('../../../../../../etc', path.join(root, 'rel'));
  fs.symlinkSync('b', path.join(root, 'a/tob'));
  fs.symlinkSync('loop2', path.join(root, 'loop1'));
  fs.symlinkSync('loop1', path.join(root, 'loop2'));
  return root;
}

test('securejoin keeps every path inside the root', (t) => {
  const root = tree();
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  assert.equal(secureJoin(root, '/abs/passwd'), path.join(root, 'etc/passwd'), 'absolute link restarts at the root');
  assert.equal(secureJoin(root, '/rel/shadow'), path.join(root, 'etc/shadow'), '.. stops at the root');
  assert.equal(secureJoin(root, '/../../etc'), path.join(root, 'etc'));
  assert.equal(secureJoin(root, '/a/tob/c'), path.join(root, 'a/b/c'));
  assert.equal(secureJoin(root, 'missing/x/../y'), path.join(root, 'missing/y'));
  assert.throws(() => secureJoin(root, '/loop1/x'), /too many levels of symbolic links/);
});

test('mount options: flags set and cleared, propagation apart, the rest is data', () => {
  const p = parseMountOptions(['nosuid', 'noexec', 'rw', 'ro', 'mode=755', 'size=64k', 'rslave', 'strictatime', 'exec']);
  assert.equal(p.flags, MS.NOSUID | MS.RDONLY | MS.STRICTATIME);
  assert.deepEqual(p.propagation, [MS.SLAVE | MS.REC]);
  assert.deepEqual(p.data, ['mode=755', 'size=64k']);
});

test('plan of the default spec: the mounts in order, the default devices, masked and read-only paths', (t) => {
  const bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-plan-'));
  t.after(() => fs.rmSync(bundle, { recursive: true, force: true }));
  fs.mkdirSync(path.join(bundle, 'rootfs'));
  const s = defaultSpec();
  s.mounts!.push({ destination: '/data', type: 'bind', source: '/etc', options: ['rbind', 'ro', 'nosuid'] });
  s.linux!.devices = [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o600, uid: 0, gid: 0 }];
  const plan = planRootfs(s, bundle, { noPivot: false });
  assert.equal(plan.rootfs, path.join(bundle, 'rootfs'));
  assert.deepEqual(plan.mounts.map((m) => m.destination), ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup', '/data']);
  const data = plan.mounts[7]!;
  assert.equal(data.bind, true);
  assert.equal(data.flags, MS.BIND | MS.REC);
  assert.equal(data.remountFlags, MS.RDONLY | MS.NOSUID);
  assert.deepEqual(plan.devices.map((d) => d.path), ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty', '/dev/fuse']);
  assert.equal(plan.defaultDevLinks, true);
  assert.ok(plan.maskedPaths.includes('/proc/kcore'));
  assert.ok(plan.readonlyPaths.includes('/proc/sys'));
  assert.throws(() => planRootfs({ ...s, mounts: [{ destination: 'relative', type: 'tmpfs' }] }, bundle, { noPivot: false }), /mounts\[0\]\.destination: "relative" must be absolute/);
  assert.throws(() => planRootfs({ ...s, mounts: [{ destination: '/x', type: 'bind', source: '/nonexistent', options: ['bind'] }] }, bundle, { noPivot: false }), /mounts\[0\]\.source: \/nonexistent does not exist/);
  assert.throws(() => planRootfs({ ...s, root: { path: 'nope' } }, bundle, { noPivot: false }), /root\.path: rootfs .*nope does not exist/);
});
