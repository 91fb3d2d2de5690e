// process.terminal: a pty from the container's devpts, its master sent over
// --console-socket with SCM_RIGHTS (as runc), the slave the controlling tty
// and stdio of the process; a foreground run or exec with -t proxies it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync, execFileSync } from 'node:child_process';
import { CLI, containerSuite, leftovers, mc } from '../helpers/bundle';
import { recvtty } from '../helpers/recvtty';

const { root, bundle } = containerSuite('terminal');

test('--console-socket receives the pty master; the process has a tty of the configured size', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-tty-'));
  const sock = path.join(dir, 'console.sock');
  const server = await recvtty(sock);
  try {
    const b = bundle((s) => {
      s.process!.terminal = true;
      s.process!.consoleSize = { height: 25, width: 100 };
    }, { args: ['sh', '-c', 'tty; stty size; [ -t 0 ] && [ -t 1 ] && echo stdio-is-tty'] });
    const c = mc(root, ['create', '--console-socket', sock, '--bundle', b, 'tty1']);
    assert.equal(c.status, 0, c.stderr);
    assert.equal(mc(root, ['start', 'tty1']).status, 0);
    await server.closed(10000);
    const out = server.output();
    assert.match(out, /name=\/dev\/ptmx/);
    assert.match(out, /^\/dev\/pts\/\d+$/m);
    assert.match(out, /^25 100$/m);
    assert.match(out, /^stdio-is-tty$/m);
    assert.equal(mc(root, ['delete', '--force', 'tty1']).status, 0);
  } finally {
    server.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a terminal without --console-socket is refused for create; a missing socket is a clear error', () => {
  const b = bundle((s) => (s.process!.terminal = true));
  const r = mc(root, ['create', '--bundle', b, 'tty2']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--console-socket is required/);
  const m = mc(root, ['create', '--console-socket', '/nonexistent/sock', '--bundle', b, 'tty3']);
  assert.notEqual(m.status, 0);
  assert.match(m.stderr, /cannot connect to --console-socket \/nonexistent\/sock: .*ENOENT/);
  assert.deepEqual(leftovers(root), []);
});

test('run and exec -t in the foreground proxy a real tty', () => {
  const b = bundle((s) => (s.process!.terminal = true), { args: ['sh', '-c', 'tty; echo run-ok'] });
  // `script` gives the CLI a terminal of its own, as a user's shell would.
  const r = spawnSync('script', ['-qec', `${CLI} --root ${root} run --bundle ${b} tty4`, '/dev/null'], { encoding: 'utf8', timeout: 30000 });
  assert.match(r.stdout, /\/dev\/pts\/\d+/);
  assert.match(r.stdout, /run-ok/);

  const b2 = bundle(() => {}, { args: ['sleep', '100'] });
  assert.equal(mc(root, ['run', '-d', '--bundle', b2, 'tty5']).status, 0);
  const e = spawnSync('script', ['-qec', `${CLI} --root ${root} exec -t tty5 sh -c 'tty; echo exec-ok'`, '/dev/null'], { encoding: 'utf8', timeout: 30000 });
  assert.match(e.stdout, /\/dev\/pts\/\d+/);
  assert.match(e.stdout, /exec-ok/);
  const plain = mc(root, ['exec', 'tty5', 'sh', '-c', '[ -t 0 ] && echo tty || echo not-a-tty']);
  assert.equal(plain.stdout.trim(), 'not-a-tty');
  execFileSync(CLI, ['--root', root, 'delete', '--force', 'tty5']);
});

test('the tty belongs to the process\'s user and keeps devpts\' tty group, for run and exec -t (as runc)', () => {
  const stat = 'stat -c %u:%g $(tty)';
  const b = bundle((s) => {
    s.process!.terminal = true;
    s.process!.user = { uid: 1000, gid: 100 };
  }, { args: ['sh', '-c', stat] });
  const r = spawnSync('script', ['-qec', `${CLI} --root ${root} run --bundle ${b} ttyowner`, '/dev/null'], { encoding: 'utf8', timeout: 30000 });
  assert.match(r.stdout, /\b1000:5\r?$/m, r.stdout);

  const b2 = bundle(() => {}, { args: ['sleep', '100'] });
  assert.equal(mc(root, ['run', '-d', '--bundle', b2, 'ttyowner2']).status, 0);
  const e = spawnSync('script', ['-qec', `${CLI} --root ${root} exec -t --user 1000:100 ttyowner2 sh -c '${stat}'`, '/dev/null'], { encoding: 'utf8', timeout: 30000 });
  assert.match(e.stdout, /\b1000:5\r?$/m, e.stdout);
  // A file given as stdio is not chowned (runc would): it is the host's.
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mc-stdio-')), 'out');
  const fd = fs.openSync(file, 'w');
  try {
    const p = spawnSync(CLI, ['--root', root, 'exec', '--user', '1000:100', 'ttyowner2', 'true'], { stdio: ['ignore', fd, 'pipe'] });
    assert.equal(p.status, 0, String(p.stderr));
  } finally {
    fs.closeSync(fd);
  }
  assert.equal(fs.statSync(file).uid, 0);
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
  execFileSync(CLI, ['--root', root, 'delete', '--force', 'ttyowner2']);
});
