// runc's command line as runc's own integration suite meets it: `spec`
// writes runc's default (a terminal, so the --console-socket that 78 bats
// tests send is accepted; no cgroup namespace, so a test adding one does
// not find it twice; the ambient set, raised silently or not at all), help
// and version in runc's layout, `run --keep`, and --debug's level=debug lines
// beside --log-format.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, containerSuite, leftovers, makeBusyboxRootfs, mc } from '../helpers/bundle';
import { recvtty } from '../helpers/recvtty';
import type { Spec } from '../../runtime/spec/generated/config';

const { root, bundle } = containerSuite('cli');
const RUNC = '/usr/sbin/runc';
const haveRunc = fs.existsSync(RUNC);

function specIn(args: string[], bin = CLI): Spec {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-spec-'));
  try {
    const r = spawnSync(bin, ['spec', ...args], { cwd: dir, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Spec;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** runc's spec and ours, less the fields we differ on by design. */
const comparable = (s: Spec): Spec => {
  const c = JSON.parse(JSON.stringify(s)) as Spec;
  delete (c as { ociVersion?: string }).ociVersion; // the version we validate against
  delete c.hostname; // "runc" / "mycontainer"
  return c;
};

test('spec: a terminal, no cgroup namespace, the ambient set: runc spec\'s fields', () => {
  const s = specIn([]);
  assert.equal(s.process!.terminal, true);
  assert.deepEqual(s.linux!.namespaces!.map((n) => n.type), ['pid', 'network', 'ipc', 'uts', 'mount']);
  assert.deepEqual(s.process!.capabilities!.ambient, ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']);
  const r = specIn(['--rootless']);
  assert.equal(r.process!.terminal, true);
  assert.deepEqual(r.linux!.namespaces!.map((n) => n.type), ['pid', 'ipc', 'uts', 'mount', 'user']);
  assert.deepEqual(r.linux!.uidMappings, [{ containerID: 0, hostID: process.geteuid!(), size: 1 }]);
  assert.equal(r.linux!.resources, undefined);
});

test('spec and spec --rootless match runc spec field for field (but ociVersion and hostname; no seccomp profile, as runc)', { skip: !haveRunc && `${RUNC} not installed` }, () => {
  assert.deepEqual(comparable(specIn([])), comparable(specIn([], RUNC)));
  assert.deepEqual(comparable(specIn(['--rootless'])), comparable(specIn(['--rootless'], RUNC)));
});

test('a bundle from `spec`, as bats uses it: --console-socket accepted, a cgroup namespace added once, no ambient warning', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-cli-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const b = path.join(dir, 'bundle');
  fs.mkdirSync(path.join(b, 'rootfs'), { recursive: true });
  makeBusyboxRootfs(path.join(b, 'rootfs'));
  assert.equal(spawnSync(CLI, ['spec'], { cwd: b }).status, 0);
  const s = JSON.parse(fs.readFileSync(path.join(b, 'config.json'), 'utf8')) as Spec;
  s.process!.args = ['sh', '-c', 'tty; readlink /proc/self/ns/cgroup; grep CapAmb /proc/self/status'];
  s.linux!.namespaces!.push({ type: 'cgroup' });
  fs.writeFileSync(path.join(b, 'config.json'), JSON.stringify(s));
  const sock = path.join(dir, 'console.sock');
  const server = await recvtty(sock);
  t.after(() => server.kill());
  const c = mc(root, ['create', '--console-socket', sock, '--bundle', b, 'spec1']);
  assert.equal(c.status, 0, c.stderr);
  assert.equal(c.stderr, '', 'nothing on stderr: no warning about the ambient set');
  const st = mc(root, ['start', 'spec1']);
  assert.equal(st.status, 0, st.stderr);
  assert.equal(st.stderr, '');
  await server.closed(10000);
  const out = server.output();
  assert.match(out, /^\/dev\/pts\/\d+$/m);
  assert.match(out, /^cgroup:\[\d+\]$/m);
  assert.notEqual(/^cgroup:\[\d+\]$/m.exec(out)?.[0], fs.readlinkSync('/proc/self/ns/cgroup'), 'its own cgroup namespace');
  assert.match(out, /^CapAmb:\s+0+$/m, 'ambient not raised (not inheritable), as runc');
  assert.equal(mc(root, ['delete', '--force', 'spec1']).status, 0);
});

test('-v/--version: runc\'s block, global flags before it or not', () => {
  for (const args of [['-v'], ['--version'], ['--root', root, '-v'], ['--debug', '--log-format', 'json', '--version']]) {
    const r = spawnSync(CLI, args, { encoding: 'utf8' });
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stdout.split('\n');
    assert.match(lines[0]!, /^mycontainer-runtime version \d+\.\d+\.\d+$/, args.join(' '));
    assert.match(lines[1]!, /^commit: \S+/);
    assert.match(lines[2]!, /^spec: \d+\.\d+\.\d+$/);
  }
});

test('-h/--help: runc\'s sections; `<command> -h` and `help <command>` name the command; invoked as runc, says runc', (t) => {
  for (const args of [['-h'], ['--help'], ['--root', root, '--help'], [], ['help']]) {
    const r = spawnSync(CLI, args, { encoding: 'utf8' });
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], 'NAME:', args.join(' '));
    assert.match(lines[1]!, /^ {3}mycontainer-runtime - Open Container Initiative runtime$/);
    for (const h of ['USAGE:', 'VERSION:', 'COMMANDS:', 'GLOBAL OPTIONS:']) assert.match(r.stdout, new RegExp(`^${h}$`, 'm'), h);
    assert.match(r.stdout, /^ {3}run +create and start a container/m);
    assert.match(r.stdout, /^ {3}--root value +root directory/m);
  }
  for (const args of [['delete', '-h'], ['--root', root, 'run', '--help'], ['help', 'exec'], ['exec', '-h']]) {
    const r = spawnSync(CLI, args, { encoding: 'utf8' });
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], 'NAME:');
    const cmd = args.filter((a) => !a.startsWith('-') && a !== root && a !== 'help')[0]!;
    assert.match(lines[1]!, new RegExp(`^ {3}mycontainer-runtime ${cmd} - `));
    assert.match(r.stdout, /^USAGE:$/m);
    assert.match(r.stdout, /^OPTIONS:$/m);
  }
  assert.match(spawnSync(CLI, ['run', '-h'], { encoding: 'utf8' }).stdout, /--keep +do not delete the container after it exits/);
  // A `runc` symlink to us (how runc's bats suite would run us) names itself runc.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-runc-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.symlinkSync(CLI, path.join(dir, 'runc'));
  const h = spawnSync(path.join(dir, 'runc'), ['--root', root, '-h'], { encoding: 'utf8' });
  assert.match(h.stdout.split('\n')[1]!, /^ {3}runc - Open Container Initiative runtime$/);
  assert.match(spawnSync(path.join(dir, 'runc'), ['-v'], { encoding: 'utf8' }).stdout, /^runc version \d+\.\d+\.\d+\ncommit: .+\nspec: \d+\.\d+\.\d+\n/);
  // runc's CRIU verbs have help pages, and say why they do nothing.
  assert.match(spawnSync(path.join(dir, 'runc'), ['checkpoint', '-h'], { encoding: 'utf8' }).stdout.split('\n')[1]!, /^ {3}runc checkpoint - /);
  const cp = spawnSync(CLI, ['--root', root, 'restore', 'x'], { encoding: 'utf8' });
  assert.equal(cp.status, 1);
  assert.match(cp.stderr, /restore: not supported: mycontainer-runtime has no CRIU integration/);
});

test('run --keep: the state stays, stopped, with the exit status returned; delete removes it', () => {
  const b = bundle(() => {}, { args: ['sh', '-c', 'echo kept; exit 3'] });
  const r = mc(root, ['run', '--keep', '--bundle', b, 'keep1']);
  assert.equal(r.status, 3, r.stderr);
  assert.equal(r.stdout, 'kept\n');
  const st = mc(root, ['state', 'keep1']);
  assert.equal(st.status, 0, st.stderr);
  assert.equal((JSON.parse(st.stdout) as { status: string }).status, 'stopped');
  assert.ok(leftovers(root).includes('keep1'));
  assert.equal(mc(root, ['delete', 'keep1']).status, 0);
  assert.ok(!leftovers(root).includes('keep1'));
  assert.notEqual(mc(root, ['state', 'keep1']).status, 0);
  // Without --keep, run still deletes.
  assert.equal(mc(root, ['run', '--bundle', b, 'keep2']).status, 3);
  assert.ok(!leftovers(root).includes('keep2'));
});

test('--debug: runc\'s level=debug lines to stderr, or only to --log in its format; our trace kept', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-debug-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const b = bundle(() => {}, { args: ['true'] });
  const plain = mc(root, ['--debug', 'run', '--bundle', b, 'dbg1']);
  assert.equal(plain.status, 0, plain.stderr);
  assert.match(plain.stderr, /^time="[^"]+" level=debug msg="mycontainer-runtime run/m);
  assert.match(plain.stderr, /^debug: /m, 'our trace, as before');
  // runc's own milestones, which its bats suite greps for.
  for (const m of ['nsexec container setup', 'child process in init()', 'init: closing the pipe to signal completion']) assert.ok(plain.stderr.includes(m), m);
  for (const format of ['text', 'json'] as const) {
    const log = path.join(dir, `log.${format}`);
    const r = mc(root, ['--log', log, '--log-format', format, '--debug', 'run', '--bundle', b, `dbg-${format}`]);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /level=debug|"level":"debug"|^debug: /m, 'nothing of the debug output on stderr');
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
    assert.ok(lines.length > 2);
    if (format === 'json') {
      for (const l of lines) assert.equal((JSON.parse(l) as { level: string }).level, 'debug', l);
      assert.ok(lines.some((l) => (JSON.parse(l) as { msg: string }).msg.startsWith('mycontainer-runtime run')));
    } else {
      for (const l of lines) assert.match(l, /^time="[^"]+" level=debug msg=".*"$/);
    }
  }
});

test('as containerd\'s shim calls it (stdio a read-only /dev/null): create works, warnings and every failure go to --log as runc writes them', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-shimlike-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'log.json');
  const ro = fs.openSync('/dev/null', 'r');
  t.after(() => fs.closeSync(ro));
  const shimLike = (args: string[]): number | null =>
    spawnSync(process.execPath, [CLI, '--root', root, '--log', log, '--log-format', 'json', ...args], { stdio: [ro, ro, ro], timeout: 60000 }).status;
  // A config that warns (an oom_score_adj we may not set), so stderr is written to.
  const b = bundle((s) => (s.process!.oomScoreAdj = -999), { args: ['sleep', '100'] });
  assert.equal(shimLike(['create', '--bundle', b, 'shim1']), 0, fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : 'no log');
  const entries = (): { level: string; msg: string }[] => fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { level: string; msg: string });
  assert.ok(entries().some((e) => e.level === 'warning' && /oomScoreAdj/.test(e.msg)), 'the warning is in --log');
  // Failures of other verbs, each with its cause, at level error.
  assert.equal(shimLike(['start', 'nosuch']), 1);
  assert.equal(shimLike(['create', '--bundle', path.join(dir, 'missing'), 'shim2']), 1);
  const errors = entries().filter((e) => e.level === 'error');
  assert.ok(errors.some((e) => /nosuch/.test(e.msg) && /does not exist/.test(e.msg)), JSON.stringify(errors));
  assert.ok(errors.some((e) => /missing/.test(e.msg)), JSON.stringify(errors));
  assert.equal(mc(root, ['delete', '--force', 'shim1']).status, 0);
});
