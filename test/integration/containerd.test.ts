// containerd 1.6 (Debian 12) driving bin/mycontainer through its v2 runc
// shim: `ctr run --runc-binary bin/mycontainer`. containerd runs as a child
// of this test on its own socket and stores (test/helpers/containerd.ts);
// the image is a busybox OCI archive built here and imported with
// `ctr images import`, so no network is needed. Every test runs first with
// runc as a baseline: if it fails there, the host or the ctr invocation is
// at fault, not our runtime.
//
// What the shim (containerd-shim-runc-v2, through go-runc) calls on the runtime:
//   --root R/<ns> --log B/log.json --log-format json create --bundle B --pid-file B/init.pid ID
//                                 (with a terminal: --console-socket S, and the
//                                  shim reads create's stdout+stderr to EOF)
//   start ID
//   exec --process F --pid-file P --detach ID   (ctr task exec; --console-socket S with -t)
//   pause ID, resume ID, ps --format json ID, kill ID SIG
//   delete ID (when the init exits), delete --force ID (ctr task rm)

import { describe, it, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CLI, mountsUnder, type CliResult } from '../helpers/bundle';
import { CTR_IMAGE, containerdMissing, makeBusyboxArchive, startContainerd, waitTaskStatus, type Containerd } from '../helpers/containerd';

const missing = containerdMissing();

const runtimes = [
  { label: 'runc (baseline)', runtime: '/usr/sbin/runc', tag: 'runc' },
  { label: 'mycontainer', runtime: CLI, tag: 'mc' },
];

const explain = (what: string, r: CliResult, c?: Containerd): string =>
  `${what}: ctr exited ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}` + (c ? `\ncontainerd log (tail):\n${c.log().split('\n').slice(-15).join('\n')}` : '');

describe('containerd (ctr, v2 runc shim)', { skip: missing ?? false }, () => {
  let c: Containerd;

  before(() => {
    c = startContainerd();
    const archive = makeBusyboxArchive(c.dir);
    const r = c.ctr(['images', 'import', archive]);
    assert.equal(r.status, 0, explain('images import', r, c));
    const ls = c.ctr(['images', 'ls', '-q']);
    assert.match(ls.stdout, new RegExp(`^${CTR_IMAGE}$`, 'm'), explain('images ls', ls));
  });
  after(() => {
    c?.cleanup();
  });

  for (const { label, runtime, tag } of runtimes) {
    describe(`with ${label}`, () => {
      let n = 0;
      const id = (what: string): string => `${tag}-${what}-${++n}`;

      it('run --rm echo hello prints hello', () => {
        const name = id('hello');
        const r = c.ctr(['run', '--rm', ...c.runFlags(runtime, name), CTR_IMAGE, name, 'echo', 'hello']);
        assert.equal(r.status, 0, explain('run --rm echo hello', r, c));
        assert.equal(r.stdout, 'hello\n');
        assert.equal(fs.existsSync(path.join(c.runtimeRoot(runtime), name)), false, 'the runtime state is deleted after run --rm');
      });

      it('the exit status passes through', () => {
        const name = id('exit');
        const r = c.ctr(['run', '--rm', ...c.runFlags(runtime, name), CTR_IMAGE, name, 'sh', '-c', 'exit 3']);
        assert.equal(r.status, 3, explain("run --rm sh -c 'exit 3'", r, c));
      });

      it('run -d, tasks ls, exec, ps, pause/resume, kill, tasks rm, containers rm', () => {
        const name = id('detached');
        // exits 42 on SIGTERM (ctr tasks kill's default signal); PID 1 ignores it otherwise
        const script = "trap 'exit 42' TERM; while true; do sleep 1; done";
        const run = c.ctr(['run', '-d', ...c.runFlags(runtime, name), CTR_IMAGE, name, 'sh', '-c', script]);
        assert.equal(run.status, 0, explain('run -d', run, c));
        try {
          const up = waitTaskStatus(c, name, 'RUNNING');
          assert.ok(up.ok, `task ${name} is not RUNNING:\n${up.listing}`);

          const ex = c.ctr(['tasks', 'exec', ...c.execFlags(), '--exec-id', 'e1', name, 'sh', '-c', 'echo in-$(cat /proc/1/comm); exit 5']);
          assert.equal(ex.status, 5, explain('tasks exec', ex, c));
          assert.equal(ex.stdout, 'in-sh\n');

          const ps = c.ctr(['tasks', 'ps', name]);
          assert.equal(ps.status, 0, explain('tasks ps', ps, c));
          assert.match(ps.stdout, /^\d+\s/m, explain('tasks ps lists a pid', ps));

          const pause = c.ctr(['tasks', 'pause', name]);
          assert.equal(pause.status, 0, explain('tasks pause', pause, c));
          const paused = waitTaskStatus(c, name, 'PAUSED');
          assert.ok(paused.ok, `task ${name} is not PAUSED:\n${paused.listing}`);
          const resume = c.ctr(['tasks', 'resume', name]);
          assert.equal(resume.status, 0, explain('tasks resume', resume, c));
          const resumed = waitTaskStatus(c, name, 'RUNNING');
          assert.ok(resumed.ok, `task ${name} is not RUNNING after resume:\n${resumed.listing}`);

          const kill = c.ctr(['tasks', 'kill', name]);
          assert.equal(kill.status, 0, explain('tasks kill', kill, c));
          const stopped = waitTaskStatus(c, name, 'STOPPED');
          assert.ok(stopped.ok, `task ${name} is not STOPPED after kill:\n${stopped.listing}`);

          const rm = c.ctr(['tasks', 'rm', name]);
          assert.equal(rm.status, 0, explain('tasks rm', rm, c));
          assert.match(rm.stderr, /exit code 42/, explain('tasks rm reports the exit status of the trap', rm));
          const crm = c.ctr(['containers', 'rm', name]);
          assert.equal(crm.status, 0, explain('containers rm', crm, c));
        } finally {
          c.ctr(['tasks', 'rm', '-f', name]);
          c.ctr(['containers', 'rm', name]);
        }
        assert.doesNotMatch(c.ctr(['containers', 'ls', '-q']).stdout, new RegExp(`^${name}$`, 'm'), 'the container is gone');
        assert.equal(fs.existsSync(path.join(c.runtimeRoot(runtime), name)), false, 'the runtime was asked to delete its state, and did');
        assert.deepEqual(mountsUnder(path.join(c.dir, 'state', 'io.containerd.runtime.v2.task', c.namespace, name)), [], 'the rootfs snapshot is unmounted');
      });

      it('tasks kill -s SIGKILL stops a process that ignores TERM', () => {
        const name = id('sigkill');
        const run = c.ctr(['run', '-d', ...c.runFlags(runtime, name), CTR_IMAGE, name, 'sleep', '100']);
        assert.equal(run.status, 0, explain('run -d sleep 100', run, c));
        try {
          assert.ok(waitTaskStatus(c, name, 'RUNNING').ok);
          const kill = c.ctr(['tasks', 'kill', '-s', 'SIGKILL', name]);
          assert.equal(kill.status, 0, explain('tasks kill -s SIGKILL', kill, c));
          const stopped = waitTaskStatus(c, name, 'STOPPED');
          assert.ok(stopped.ok, `task ${name} is not STOPPED after SIGKILL:\n${stopped.listing}`);
          const rm = c.ctr(['tasks', 'rm', name]);
          assert.equal(rm.status, 0, explain('tasks rm', rm, c));
          assert.match(rm.stderr, /exit code 137/, explain('tasks rm reports 137', rm));
        } finally {
          c.ctr(['tasks', 'rm', '-f', name]);
          c.ctr(['containers', 'rm', name]);
        }
      });

      // The shim runs `create --console-socket S` and reads its stdout and
      // stderr through a pipe until EOF: if the container's init keeps the
      // CLI's stdio, EOF comes only when the container exits, and create
      // never returns. Bounded, so a hang fails the test instead of the run.
      it('run -t: the process gets a terminal (--console-socket)', () => {
        const name = id('tty');
        const r = c.ctrInTerminal(['run', '--rm', '-t', ...c.runFlags(runtime, name), CTR_IMAGE, name, 'tty'], { timeoutMs: 20000 });
        assert.equal(r.status, 0, explain('run --rm -t tty (under script)', r, c));
        assert.match(r.stdout, /\/dev\/pts\/\d+\r*\n/);
      });

      it('tasks exec -t: the exec gets a terminal', () => {
        const name = id('exectty');
        const run = c.ctr(['run', '-d', ...c.runFlags(runtime, name), CTR_IMAGE, name, 'sleep', '100']);
        assert.equal(run.status, 0, explain('run -d sleep 100', run, c));
        try {
          assert.ok(waitTaskStatus(c, name, 'RUNNING').ok);
          const r = c.ctrInTerminal(['tasks', 'exec', '-t', ...c.execFlags(), '--exec-id', 't1', name, 'tty'], { timeoutMs: 20000 });
          assert.equal(r.status, 0, explain('tasks exec -t tty (under script)', r, c));
          assert.match(r.stdout, /\/dev\/pts\/\d+\r*\n/);
        } finally {
          c.ctr(['tasks', 'rm', '-f', name], { timeoutMs: 20000 });
          c.ctr(['containers', 'rm', name]);
        }
      });
    });
  }
});
