// The rootfs, checked from inside the container through /proc/self/mountinfo
// and the files themselves: mounts and their options, /dev, linux.devices,
// masked and read-only paths, a read-only root, --no-pivot, propagation,
// and destinations that try to escape through symlinks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { containerSuite, leftovers, mc, mountsUnder } from '../helpers/bundle';

const { root, bundle, probe } = containerSuite('rootfs');


/** mountinfo lines as {mountPoint, options, fstype, superOptions}. */
function mountinfo(text: string): { mp: string; opts: string[]; fstype: string; sopts: string[] }[] {
  return text.trim().split('\n').filter((l) => l.includes(' - ')).map((l) => {
    const [a, b] = l.split(' - ') as [string, string];
    const f = a.split(' ');
    const g = b.split(' ');
    return { mp: f[4] as string, opts: (f[5] as string).split(','), fstype: g[0] as string, sopts: (g[2] ?? '').split(',') };
  });
}

test('mounts: options, data, bind ro, and the default set', () => {
  const src = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-src-'));
  fs.writeFileSync(path.join(src, 'hello'), 'from the host\n');
  const r = probe((s) => {
    s.mounts!.push({ destination: '/data', type: 'bind', source: src, options: ['rbind', 'ro', 'nosuid', 'nodev'] });
    s.mounts!.push({ destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'size=1m', 'mode=1777'] });
    s.mounts!.push({ destination: '/etc/hello', type: 'bind', source: path.join(src, 'hello'), options: ['bind', 'rprivate'] });
  }, 'cat /proc/self/mountinfo; echo ---; cat /data/hello /etc/hello; touch /data/x 2>&1; stat -c %a /scratch');
  fs.rmSync(src, { recursive: true, force: true });
  assert.equal(r.status, 0, r.err);
  const [mi, rest] = r.out.split('---\n') as [string, string];
  const m = mountinfo(mi);
  const at = (mp: string): { opts: string[]; fstype: string; sopts: string[] } => {
    const x = m.find((e) => e.mp === mp);
    assert.ok(x, `${mp} is mounted`);
    return x;
  };
  assert.deepEqual(['ro', 'nosuid', 'nodev'].filter((o) => at('/data').opts.includes(o)), ['ro', 'nosuid', 'nodev']);
  assert.equal(at('/scratch').fstype, 'tmpfs');
  assert.ok(at('/scratch').opts.includes('noexec'));
  assert.ok(at('/scratch').sopts.includes('size=1024k'));
  assert.equal(at('/proc').fstype, 'proc');
  assert.equal(at('/dev').fstype, 'tmpfs');
  assert.equal(at('/dev/pts').fstype, 'devpts');
  assert.equal(at('/dev/shm').fstype, 'tmpfs');
  assert.equal(at('/dev/mqueue').fstype, 'mqueue');
  assert.ok(at('/sys').opts.includes('ro'));
  assert.ok(at('/sys/fs/cgroup').opts.includes('ro'));
  assert.match(rest, /^from the host\nfrom the host\n/);
  assert.match(rest, /Read-only file system/);
  assert.match(rest, /1777/);
});

test('/dev: default nodes, linux.devices, and the standard links', () => {
  const r = probe((s) => {
    s.linux!.devices = [
      { path: '/dev/mydev', type: 'c', major: 1, minor: 3, fileMode: 0o600, uid: 7, gid: 8 },
      { path: '/dev/sub/mynull', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 },
    ];
    s.linux!.resources = { devices: [{ allow: false, access: 'rwm' }] };
  }, 'for d in null zero full random urandom tty mydev; do stat -c "%n %F %t:%T %a %u:%g" /dev/$d; done; for l in fd stdin stdout stderr ptmx; do echo "$l -> $(readlink /dev/$l)"; done; echo x > /dev/sub/mynull && echo mynull-writable');
  assert.equal(r.status, 0, r.err);
  for (const [d, maj, min] of [['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0]] as const) {
    assert.match(r.out, new RegExp(`^/dev/${d} character special file ${maj.toString(16)}:${min.toString(16)} 666 0:0$`, 'm'));
  }
  assert.match(r.out, /^\/dev\/mydev character special file 1:3 600 7:8$/m);
  assert.match(r.out, /^fd -> \/proc\/self\/fd$/m);
  assert.match(r.out, /^stdin -> \/proc\/self\/fd\/0$/m);
  assert.match(r.out, /^ptmx -> pts\/ptmx$/m);
  assert.match(r.out, /mynull-writable/, 'a linux.devices node in a new directory works');
});

test('masked paths, read-only paths and a read-only root', () => {
  const r = probe((s) => {
    s.root!.readonly = true;
    s.linux!.maskedPaths = ['/proc/kcore', '/proc/keys', '/sys/firmware', '/nonexistent'];
    s.linux!.readonlyPaths = ['/proc/sys', '/proc/sysrq-trigger'];
  }, 'cat /proc/keys | wc -c; ls /sys/firmware | wc -l; { echo 1 > /proc/sys/kernel/domainname; } 2>&1; touch /newfile 2>&1; cat /proc/self/mountinfo');
  assert.equal(r.status, 0, r.err);
  const lines = r.out.split('\n');
  assert.equal(lines[0]?.trim(), '0', '/proc/keys reads empty');
  assert.equal(lines[1]?.trim(), '0', '/sys/firmware is an empty tmpfs');
  assert.match(r.out, /can't create \/proc\/sys\/kernel\/domainname: Read-only file system/);
  assert.match(r.out, /touch: \/newfile: Read-only file system/);
  const m = mountinfo(r.out.slice(r.out.indexOf('\n', r.out.indexOf('newfile')) + 1));
  assert.ok(m.find((e) => e.mp === '/')?.opts.includes('ro'), 'root is ro');
  assert.ok(m.find((e) => e.mp === '/proc/sys')?.opts.includes('ro'));
});

test('a mount destination that escapes through a symlink lands inside the rootfs', () => {
  const hostTarget = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-escape-'));
  const before = mountsUnder(hostTarget).length;
  const b = bundle((s) => {
    s.mounts!.push({ destination: '/evil-abs/x', type: 'tmpfs', source: 'tmpfs' });
    s.mounts!.push({ destination: '/evil-rel/y', type: 'tmpfs', source: 'tmpfs' });
  }, { args: ['sh', '-c', `grep -c tmpfs /proc/self/mountinfo; ls -d ${hostTarget}/x ${hostTarget}/y`] });
  fs.symlinkSync(hostTarget, path.join(b, 'rootfs', 'evil-abs'));
  fs.symlinkSync(`../../../../../../..${hostTarget}`, path.join(b, 'rootfs', 'evil-rel'));
  const r = mc(root, ['run', '--bundle', b, 'escape1']);
  assert.equal(r.status, 0, r.stderr);
  // Inside the container the symlinks resolve to rootfs/<hostTarget>/x: created there, not on the host.
  assert.ok(fs.existsSync(path.join(b, 'rootfs', hostTarget, 'x')), 'made inside the rootfs');
  assert.ok(fs.existsSync(path.join(b, 'rootfs', hostTarget, 'y')));
  assert.deepEqual(fs.readdirSync(hostTarget), [], 'nothing created on the host');
  assert.equal(mountsUnder(hostTarget).length, before, 'nothing mounted on the host');
  fs.rmSync(hostTarget, { recursive: true, force: true });
});

test('proc must be mounted on a real directory, not a symlink', () => {
  const b = bundle(() => {}, { args: ['true'] });
  fs.rmSync(path.join(b, 'rootfs', 'proc'), { recursive: true });
  fs.symlinkSync('/tmp', path.join(b, 'rootfs', 'proc'));
  const r = mc(root, ['run', '--bundle', b, 'procsym']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /mounts\[0\] \/proc.*must be (a|mounted on a) directory/);
  assert.deepEqual(leftovers(root), []);
});

test('--no-pivot uses MS_MOVE and chroot', () => {
  const r = probe(() => {}, 'cat /proc/self/mountinfo | head -1; ls /', ['--no-pivot']);
  assert.equal(r.status, 0, r.err);
  assert.match(r.out, /\bbin\b/);
});

test('--no-pivot: a user namespace made inside may not mount a bare /proc (runc\'s no_pivot.bats)', () => {
  // Not chrooted in the kernel's eyes (the rootfs was moved onto /), so unshare may make a user
  // namespace; the host's full /proc is hidden, so a new proc mount is refused.
  const r = probe((s) => {
    for (const set of ['bounding', 'permitted'] as const) s.process!.capabilities![set]!.push('CAP_SETFCAP');
  }, 'unshare -mrpf sh -euxc "mount -t proc none /proc && echo h > /proc/sysrq-trigger"', ['--no-pivot']);
  assert.equal(r.status, 1, r.out + r.err);
  assert.match(r.out + r.err, /mount: permission denied/);
});

test('linux.rootfsPropagation applies to the container\'s /', () => {
  const root = 'awk \'$5 == "/"\' /proc/self/mountinfo';
  const r = probe((s) => (s.linux!.rootfsPropagation = 'shared'), root);
  assert.equal(r.status, 0, r.err);
  assert.match(r.out, /shared:\d+/);
  const p = probe((s) => (s.linux!.rootfsPropagation = 'private'), root);
  assert.doesNotMatch(p.out, /shared:|master:/);
});

test('mounts made in the container never appear on the host', () => {
  const b = bundle(() => {}, { args: ['sleep', '100'] });
  assert.equal(mc(root, ['run', '-d', '--bundle', b, 'leak1']).status, 0);
  // The rootfs bind, /proc, /dev, ... exist only in the container's mount namespace.
  assert.deepEqual([...mountsUnder(b), ...mountsUnder(root)], []);
  assert.equal(mc(root, ['delete', '--force', 'leak1']).status, 0);
});

test('without a mount namespace: the host\'s mounts, chrooted into the rootfs, nothing mounted, a warning names what is not applied', () => {
  // runtime-tools' linux_ns_itype: every namespace inherited from the runtime.
  const b = bundle((s) => {
    s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'mount');
  }, { args: ['sleep', '100'] });
  const r = mc(root, ['run', '-d', '--bundle', b, 'nomnt1']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /no mount namespace: .*mounts, linux\.maskedPaths, linux\.readonlyPaths .*not applied/);
  const state = JSON.parse(mc(root, ['state', 'nomnt1']).stdout) as { pid: number };
  assert.equal(fs.readlinkSync(`/proc/${state.pid}/ns/mnt`), fs.readlinkSync('/proc/self/ns/mnt'), 'the host\'s mount namespace');
  assert.equal(fs.readlinkSync(`/proc/${state.pid}/root`), path.join(b, 'rootfs'), 'chrooted into the rootfs');
  assert.deepEqual(mountsUnder(b), [], 'nothing mounted on the host');
  // exec lands in the same root.
  const e = mc(root, ['exec', 'nomnt1', 'sh', '-c', 'ls /']);
  assert.equal(e.status, 0, e.stderr);
  assert.match(e.stdout, /\bbin\b/);
  assert.doesNotMatch(e.stdout, /\bwork\b|\bboot\b/);
  assert.equal(mc(root, ['delete', '--force', 'nomnt1']).status, 0);
});
