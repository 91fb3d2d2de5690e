// securejoin against a tree of hostile symlinks: the pure lookup, and the
// kernel's (openat2 RESOLVE_IN_ROOT, no privilege needed) with directories
// and files created inside the root only.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInRoot, fdTarget, mkdirAllInRoot, openInRoot, secureJoin } from '../../runtime/linux/securejoin';
import * as sys from '../../runtime/sys/libc';

/** root/ with hostile links, and a host dir outside it that must stay untouched. */
function tree(t: { after: (fn: () => void) => void }): { root: string; host: string } {
  const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'mc-sj-')));
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  const root = path.join(base, 'root');
  const host = path.join(base, 'host');
  fs.mkdirSync(host);
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(root, 'a/b'), { recursive: true });
  fs.writeFileSync(path.join(root, 'file'), '');
  fs.symlinkSync('/etc', path.join(root, 'abs'));
  fs.symlinkSync('../../../../../../etc', path.join(root, 'rel'));
  fs.symlinkSync('b', path.join(root, 'a/tob'));
  fs.symlinkSync('loop2', path.join(root, 'loop1'));
  fs.symlinkSync('loop1', path.join(root, 'loop2'));
  // Pointing at the host directory, absolutely and relatively: inside the root they mean root/<host>.
  fs.symlinkSync(host, path.join(root, 'evil-abs'));
  fs.symlinkSync(`../../../../../../../..${host}`, path.join(root, 'evil-rel'));
  fs.symlinkSync('../..', path.join(root, 'a/up'));
  return { root, host };
}

function withFd<T>(fd: number, fn: (fd: number) => T): T {
  try {
    return fn(fd);
  } finally {
    sys.close(fd);
  }
}

test('secureJoin keeps every path inside the root', (t) => {
  const { root, host } = tree(t);
  assert.equal(secureJoin(root, '/abs/passwd'), path.join(root, 'etc/passwd'), 'absolute link restarts at the root');
  assert.equal(secureJoin(root, '/rel/shadow'), path.join(root, 'etc/shadow'), '.. stops at the root');
  assert.equal(secureJoin(root, '/../../etc'), path.join(root, 'etc'));
  assert.equal(secureJoin(root, '/a/tob/c'), path.join(root, 'a/b/c'));
  assert.equal(secureJoin(root, '/a/up/etc'), path.join(root, 'etc'));
  assert.equal(secureJoin(root, 'missing/x/../y'), path.join(root, 'missing/y'));
  assert.equal(secureJoin(root, '/evil-abs/x'), path.join(root, host, 'x'));
  assert.equal(secureJoin(root, '/evil-rel/x'), path.join(root, host, 'x'));
  assert.throws(() => secureJoin(root, '/loop1/x'), /too many levels of symbolic links/);
});

test('openInRoot: the kernel resolves inside the root, and says so', (t) => {
  const { root } = tree(t);
  withFd(openInRoot(root, '/abs', { directory: true }), (fd) => assert.equal(fdTarget(fd), path.join(root, 'etc')));
  withFd(openInRoot(root, '/rel'), (fd) => assert.equal(fdTarget(fd), path.join(root, 'etc')));
  withFd(openInRoot(root, '/a/tob/../../etc'), (fd) => assert.equal(fdTarget(fd), path.join(root, 'etc')));
  withFd(openInRoot(root, '/'), (fd) => assert.equal(fdTarget(fd), root));
  assert.throws(() => openInRoot(root, '/missing'), { code: 'ENOENT' });
  assert.throws(() => openInRoot(root, '/loop1'), { code: 'ELOOP' });
  assert.throws(() => openInRoot(root, '/abs', { noSymlinks: true }), { code: 'ELOOP' });
  assert.throws(() => openInRoot(root, '/file', { directory: true }), { code: 'ENOTDIR' });
});

test('mkdirAllInRoot: missing directories are made where the links lead inside the root, never on the host', (t) => {
  const { root, host } = tree(t);
  withFd(mkdirAllInRoot(root, '/evil-abs/x/y'), (fd) => assert.equal(fdTarget(fd), path.join(root, host, 'x/y')));
  withFd(mkdirAllInRoot(root, '/evil-rel/z'), (fd) => assert.equal(fdTarget(fd), path.join(root, host, 'z')));
  withFd(mkdirAllInRoot(root, '/a/tob/new/deeper'), (fd) => assert.equal(fdTarget(fd), path.join(root, 'a/b/new/deeper')));
  withFd(mkdirAllInRoot(root, '/etc'), (fd) => assert.equal(fdTarget(fd), path.join(root, 'etc')));
  withFd(mkdirAllInRoot(root, '/'), (fd) => assert.equal(fdTarget(fd), root));
  assert.deepEqual(fs.readdirSync(host), [], 'nothing was made on the host');
  assert.ok(fs.statSync(path.join(root, host, 'x/y')).isDirectory());
  assert.throws(() => mkdirAllInRoot(root, '/file/sub'), { code: 'ENOTDIR' });
  assert.throws(() => mkdirAllInRoot(root, '/evil-abs/q', { noSymlinks: true }), { code: 'ELOOP' });
  assert.throws(() => mkdirAllInRoot(root, '/loop1/x'), { code: 'ELOOP' });
});

test('mkdirAllInRoot: a dangling link whose target is missing gets its target made inside the root', (t) => {
  const { root, host } = tree(t);
  fs.symlinkSync(path.join(host, 'gone/deep'), path.join(root, 'dangling'));
  withFd(mkdirAllInRoot(root, '/dangling/x'), (fd) => assert.equal(fdTarget(fd), path.join(root, host, 'gone/deep/x')));
  assert.deepEqual(fs.readdirSync(host), []);
});

test('createInRoot: an empty file made inside the root, an existing one kept, a dangling link resolved inside', (t) => {
  const { root, host } = tree(t);
  withFd(createInRoot(root, '/evil-abs/sub/file'), (fd) => assert.equal(fdTarget(fd), path.join(root, host, 'sub/file')));
  assert.equal(fs.readFileSync(path.join(root, host, 'sub/file'), 'utf8'), '');
  fs.writeFileSync(path.join(root, 'etc/kept'), 'x');
  withFd(createInRoot(root, '/abs/kept'), (fd) => assert.equal(fdTarget(fd), path.join(root, 'etc/kept')));
  assert.equal(fs.readFileSync(path.join(root, 'etc/kept'), 'utf8'), 'x');
  fs.symlinkSync(path.join(host, 'target-file'), path.join(root, 'dangling-file'));
  withFd(createInRoot(root, '/dangling-file'), (fd) => assert.equal(fdTarget(fd), path.join(root, host, 'target-file')));
  assert.deepEqual(fs.readdirSync(host), [], 'nothing was made on the host');
});
