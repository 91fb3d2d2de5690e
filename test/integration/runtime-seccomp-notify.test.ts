// Seccomp user notification (linux.seccomp.listenerPath, SCMP_ACT_NOTIFY):
// a real agent (test/fixtures/seccomp-agent.c) gets the listener fd and the
// runtime-spec's ContainerProcessState from the runtime, and its answers
// are what the container's calls return; checked from inside the container
// for run and exec, with and without no_new_privs, and for the ways it can
// go wrong (no agent, an agent gone, a profile runc refuses).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { REPO, containerSuite, leftovers, mc } from '../helpers/bundle';
import { compileC } from '../helpers/machine';
import type { Spec } from '../../runtime/spec/generated/config';

const { root, bundle } = containerSuite('seccomp-notify');
const agentBin = compileC('seccomp-agent', fs.readFileSync(path.join(REPO, 'test', 'fixtures', 'seccomp-agent.c'), 'utf8'));
const skip = agentBin ? false : 'gcc is not available to build the test seccomp agent';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-notify-'));
const agents: ChildProcess[] = [];
after(() => {
  for (const a of agents) stop(a);
  fs.rmSync(dir, { recursive: true, force: true });
});

function stop(a: ChildProcess): void {
  try {
    process.kill(-(a.pid as number), 'SIGKILL'); // the agent and the children serving each listener
  } catch {
    // gone
  }
}

let n = 0;
/** Starts an agent; resolves once it listens. */
async function startAgent(answers = 100): Promise<{ socket: string; state: (k: number) => Record<string, unknown>; proc: ChildProcess }> {
  const socket = path.join(dir, `agent-${++n}.sock`);
  const out = path.join(dir, `state-${n}`);
  const proc = spawn(agentBin as string, [socket, out, String(answers)], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
  agents.push(proc);
  await new Promise<void>((resolve, reject) => {
    proc.stdout?.once('data', () => resolve());
    proc.once('exit', (code) => reject(new Error(`the agent exited (${code})`)));
  });
  return { socket, proc, state: (k) => JSON.parse(fs.readFileSync(`${out}.${k}`, 'utf8')) as Record<string, unknown> };
}

function notify(socket: string, names: [string, ...string[]], noNewPrivileges: boolean): (s: Spec) => void {
  return (s) => {
    s.process!.noNewPrivileges = noNewPrivileges;
    s.linux!.seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      listenerPath: socket,
      listenerMetadata: 'meta-for-the-agent',
      architectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32', 'SCMP_ARCH_X86_64'],
      syscalls: [{ names, action: 'SCMP_ACT_NOTIFY' }],
    };
  };
}

for (const nnp of [false, true]) {
  test(`run: the agent gets the listener and the process state, and answers mkdir (noNewPrivileges ${nnp})`, { skip }, async () => {
    const agent = await startAgent();
    // With read, close, openat and execve notified too, the init's own last steps go through the agent.
    const names: [string, ...string[]] = nnp ? ['mkdir', 'mkdirat', 'read', 'close', 'openat', 'execve'] : ['mkdir', 'mkdirat'];
    const b = bundle(notify(agent.socket, names, nnp), { args: ['sh', '-c', 'mkdir /tmp/x 2>&1; echo rc=$?; ls /tmp'] });
    const r = mc(root, ['run', '--bundle', b, `notify-run-${nnp}`]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /No medium found\nrc=1\n$/, 'mkdir returned the agent\'s ENOMEDIUM, and nothing was made');
    const st = agent.state(1);
    assert.deepEqual(st['fds'], ['seccompFd']);
    assert.equal(st['metadata'], 'meta-for-the-agent');
    const state = st['state'] as Record<string, unknown>;
    assert.equal(state['id'], `notify-run-${nnp}`);
    assert.equal(state['status'], 'creating');
    assert.equal(state['pid'], st['pid'], 'the pid is the init\'s');
    assert.equal(state['bundle'], b);
    assert.deepEqual(leftovers(root), []);
  });
}

test('exec: a process of its own filter gets a listener of its own, sent to the agent', { skip }, async () => {
  const agent = await startAgent();
  const b = bundle(notify(agent.socket, ['mkdir', 'mkdirat'], false), { args: ['sleep', '100'] });
  const id = 'notify-exec';
  assert.equal(mc(root, ['run', '-d', '--bundle', b, id]).status, 0);
  try {
    const r = mc(root, ['exec', id, 'sh', '-c', 'mkdir /tmp/y 2>&1; echo rc=$?']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /No medium found\nrc=1/);
    const st = agent.state(2); // 1 was the init's
    assert.equal((st['state'] as Record<string, unknown>)['status'], 'running');
    assert.notEqual(st['pid'], (st['state'] as Record<string, unknown>)['pid'], 'the pid is the exec\'s, the state\'s the init\'s');
  } finally {
    mc(root, ['delete', '--force', id]);
  }
});

test('an agent gone: the notified calls fail with ENOSYS instead of hanging', { skip }, async () => {
  const agent = await startAgent(1); // answers one mkdir, then its child exits
  const b = bundle(notify(agent.socket, ['mkdir', 'mkdirat'], false), { args: ['sh', '-c', 'mkdir /tmp/a 2>&1; sleep 0.5; mkdir /tmp/b 2>&1; true'] });
  const r = mc(root, ['run', '--bundle', b, 'notify-gone'], { timeoutMs: 20000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\/tmp\/a.*No medium found/);
  assert.match(r.stdout, /\/tmp\/b.*Function not implemented/, 'only the agent held the listener: no copy of ours kept the calls waiting');
});

test('no agent listening: create fails in runc\'s words and leaves nothing', { skip }, () => {
  const b = bundle(notify(path.join(dir, 'nobody.sock'), ['mkdir'], false), { args: ['true'] });
  const r = mc(root, ['run', '--bundle', b, 'notify-none']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /failed to connect with seccomp agent specified in the seccomp profile/);
  assert.deepEqual(leftovers(root), []);
});

test('profiles runc refuses: notify on write, notify as the default, no listenerPath', { skip }, () => {
  const cases: [string, (s: Spec) => void, RegExp][] = [
    ['write', notify('/run/agent.sock', ['write'], false), /SCMP_ACT_NOTIFY cannot be used for the write syscall/],
    ['default', (s) => {
      s.linux!.seccomp = { defaultAction: 'SCMP_ACT_NOTIFY', listenerPath: '/run/agent.sock' };
    }, /SCMP_ACT_NOTIFY cannot be used as default action/],
    ['nopath', (s) => {
      notify('', ['mkdir'], false)(s);
    }, /listenerPath: SCMP_ACT_NOTIFY needs the absolute path/],
  ];
  for (const [name, adjust, message] of cases) {
    const r = mc(root, ['run', '--bundle', bundle(adjust, { args: ['true'] }), `notify-bad-${name}`]);
    assert.notEqual(r.status, 0, name);
    assert.match(r.stderr, message, name);
    assert.deepEqual(leftovers(root), [], name);
  }
});
