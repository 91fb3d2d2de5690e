// The runtime's lifecycle, end to end through bin/mycontainer: run, create,
// start, state, kill, delete, list; exit status; bad input leaves nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { containerSuite, mc, leftovers, mountsUnder } from '../helpers/bundle';

const { root, bundle } = containerSuite('lifecycle');

function waitFor(pred: () => boolean, what: string, ms = 10000): void {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    execFileSync('sleep', ['0.02']);
  }
}

const status = (id: string): string => (JSON.parse(mc(root, ['state', id]).stdout) as { status: string }).status;

test('run prints the output and passes the exit status through', () => {
  const b = bundle(() => {}, { args: ['sh', '-c', 'echo hello; exit 7'] });
  const r = mc(root, ['run', '--bundle', b, 'run1']);
  assert.equal(r.stdout, 'hello\n');
  assert.equal(r.status, 7, r.stderr);
  assert.deepEqual(leftovers(root), []);
});

test('create, start, state, kill, delete move through the statuses', () => {
  const b = bundle(() => {}, { args: ['sh', '-c', 'echo started > /tmp/started; sleep 60'] });
  const pidFile = path.join(b, 'pid');
  const c = mc(root, ['create', '--bundle', b, '--pid-file', pidFile, 'life1']);
  assert.equal(c.status, 0, c.stderr);
  const st = JSON.parse(mc(root, ['state', 'life1']).stdout) as { status: string; pid: number; id: string; bundle: string; ociVersion: string };
  assert.equal(st.status, 'created');
  assert.equal(st.id, 'life1');
  assert.equal(st.bundle, b);
  assert.equal(Number(fs.readFileSync(pidFile, 'utf8')), st.pid);
  assert.ok(fs.existsSync(`/proc/${st.pid}`));
  assert.ok(!fs.existsSync(path.join(b, 'rootfs', 'tmp', 'started')), 'the process must not run before start');

  const list = JSON.parse(mc(root, ['list', '--format', 'json']).stdout) as { id: string; status: string }[];
  assert.deepEqual(list.map((x) => [x.id, x.status]), [['life1', 'created']]);

  assert.equal(mc(root, ['start', 'life1']).status, 0);
  assert.equal(status('life1'), 'running');
  waitFor(() => fs.existsSync(path.join(b, 'rootfs', 'tmp', 'started')), 'the process to start');

  const again = mc(root, ['start', 'life1']);
  assert.notEqual(again.status, 0);
  assert.match(again.stderr, /running, not created/);

  const del = mc(root, ['delete', 'life1']);
  assert.notEqual(del.status, 0, 'delete of a running container needs --force');
  assert.match(del.stderr, /not stopped/);

  assert.equal(mc(root, ['kill', 'life1', 'KILL']).status, 0);
  waitFor(() => status('life1') === 'stopped', 'stopped');
  assert.equal(JSON.parse(mc(root, ['state', 'life1']).stdout).pid, 0);
  const k = mc(root, ['kill', 'life1', 'TERM']);
  assert.notEqual(k.status, 0);
  assert.match(k.stderr, /not running/);
  assert.equal(mc(root, ['delete', 'life1']).status, 0);
  assert.deepEqual(leftovers(root), []);
});

test('kill accepts signal names with or without SIG, and numbers', () => {
  const b = bundle(() => {}, { args: ['sh', '-c', 'trap "echo got USR1 > /tmp/sig" USR1; while true; do sleep 0.05; done'] });
  assert.equal(mc(root, ['run', '-d', '--bundle', b, 'sig1']).status, 0);
  waitFor(() => status('sig1') === 'running', 'running');
  execFileSync('sleep', ['0.2']); // let sh install its trap
  assert.equal(mc(root, ['kill', 'sig1', 'USR1']).status, 0);
  waitFor(() => fs.existsSync(path.join(b, 'rootfs', 'tmp', 'sig')), 'the trap to run');
  assert.equal(mc(root, ['kill', 'sig1', 'SIGUSR1']).status, 0);
  const bad = mc(root, ['kill', 'sig1', 'NOPE']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /unknown signal "NOPE"/);
  assert.equal(mc(root, ['kill', 'sig1', '9']).status, 0);
  waitFor(() => status('sig1') === 'stopped', 'stopped');
  assert.equal(mc(root, ['delete', 'sig1']).status, 0);
});

test('a container whose process died unwatched reads as stopped', () => {
  const b = bundle(() => {}, { args: ['sh', '-c', 'exit 0'] });
  assert.equal(mc(root, ['create', '--bundle', b, 'unwatched']).status, 0);
  assert.equal(mc(root, ['start', 'unwatched']).status, 0);
  waitFor(() => status('unwatched') === 'stopped', 'stopped');
  assert.equal(mc(root, ['delete', 'unwatched']).status, 0);
});

test('bad input: clear errors, non-zero exit, nothing left behind', () => {
  const missing = mc(root, ['create', '--bundle', '/nonexistent/bundle', 'bad1']);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /bundle directory \/nonexistent\/bundle does not exist/);

  const b = bundle();
  fs.writeFileSync(path.join(b, 'config.json'), '{"ociVersion": "1.0.2", ');
  const malformed = mc(root, ['create', '--bundle', b, 'bad2']);
  assert.notEqual(malformed.status, 0);
  assert.match(malformed.stderr, /cannot parse .*config\.json/);

  const b2 = bundle((s) => {
    (s.process as { user: { uid: unknown } }).user.uid = 'root';
  });
  const invalid = mc(root, ['create', '--bundle', b2, 'bad3']);
  assert.notEqual(invalid.status, 0);
  assert.match(invalid.stderr, /process\.user\.uid: must be integer/);

  for (const cmd of [['start', 'nope'], ['state', 'nope'], ['kill', 'nope'], ['delete', 'nope']]) {
    const r = mc(root, cmd);
    assert.notEqual(r.status, 0, cmd.join(' '));
    assert.match(r.stderr, /container "nope" does not exist/);
  }
  assert.equal(mc(root, ['delete', '--force', 'nope']).status, 0, 'delete --force of a missing container is not an error (runc)');

  const b3 = bundle(() => {}, { args: ['/no/such/program'] });
  const noexe = mc(root, ['create', '--bundle', b3, 'bad4']);
  assert.notEqual(noexe.status, 0);
  assert.match(noexe.stderr, /\/no\/such\/program/);

  const b4 = bundle((s) => {
    s.process!.args = ['true'];
  });
  assert.equal(mc(root, ['create', '--bundle', b4, 'dup']).status, 0);
  const dup = mc(root, ['create', '--bundle', b4, 'dup']);
  assert.notEqual(dup.status, 0);
  assert.match(dup.stderr, /container "dup" already exists/);
  assert.equal(mc(root, ['delete', '--force', 'dup']).status, 0);

  const badId = mc(root, ['create', '--bundle', b4, '../escape']);
  assert.notEqual(badId.status, 0);
  assert.match(badId.stderr, /invalid container id/);

  assert.deepEqual(leftovers(root), []);
  assert.deepEqual([...mountsUnder(root), ...mountsUnder('/tmp/mc-bundle-')], [], 'no mount left on the host');
});

test('kill --all signals every process in the container', () => {
  const b = bundle(() => {}, { args: ['sh', '-c', 'trap "" TERM; sleep 100 & sleep 100 & wait'] });
  assert.equal(mc(root, ['run', '-d', '--bundle', b, 'killall']).status, 0);
  const end = Date.now() + 5000;
  let pids: number[] = [];
  while (Date.now() < end) {
    pids = JSON.parse(mc(root, ['ps', '--format', 'json', 'killall']).stdout) as number[];
    if (pids.length === 3) break;
    execFileSync('sleep', ['0.05']);
  }
  assert.equal(pids.length, 3);
  // runc's key order in list --format json (scripts match on it).
  const listed = JSON.parse(mc(root, ['list', '--format', 'json']).stdout) as Record<string, unknown>[];
  assert.deepEqual(Object.keys(listed.find((c) => c['id'] === 'killall')!), ['ociVersion', 'id', 'pid', 'status', 'bundle', 'rootfs', 'created', 'owner']);
  assert.equal(mc(root, ['kill', '--all', 'killall', 'KILL']).status, 0);
  waitFor(() => status('killall') === 'stopped', 'stopped');
  for (const pid of pids) assert.ok(!fs.existsSync(`/proc/${pid}/stat`) || /\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')), `pid ${pid} gone`);
  // Once stopped: signal 0 to what is left of the cgroup is no error with --all (as runc), but is without.
  assert.equal(mc(root, ['kill', '--all', 'killall', '0']).status, 0);
  assert.match(mc(root, ['kill', 'killall', '0']).stderr, /container not running/);
  assert.equal(mc(root, ['delete', 'killall']).status, 0);
});
