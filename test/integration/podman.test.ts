// Podman (Debian 12: podman 4.3 + conmon) driving bin/mycontainer as its OCI
// runtime, in a private store (test/helpers/podman.ts). The same tests run
// first with runc, as a baseline: if they fail there, the host or the podman
// invocation is at fault, not our runtime.
//
// What podman calls on the runtime, seen through a logging wrapper:
//   create --bundle B --pid-file P ID   (conmon; --console-socket S with -t)
//   start ID
//   kill ID 15, kill ID 9               (stop -t N: TERM, then KILL after N s)
//   exec --pid-file P --process F ...   (podman exec; --detach --tty --console-socket S with -it)
//   pause ID, resume ID                 (pause, unpause; rm -f of a paused one resumes, then kills)
//   update --resources=F ID             (F: {"memory":{"limit":L,"swap":2L},"cpu":{"shares":S}})
//   delete --force ID                   (rm, run --rm, and after a failed create)
// with the runtime's default --root. top and stats call no runtime: podman
// reads the container's processes and cgroups itself, so they check where
// the runtime put them. Errors reach podman through the runtime's stderr,
// which conmon reads from the container's stderr pipe.

import { describe, it, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CLI } from '../helpers/bundle';
import { IMAGE, makePodmanStore, podmanMissing, pollPodman, v1CgroupDir, type PodmanStore } from '../helpers/podman';

const missing = podmanMissing();

const runtimes = [
  { label: 'runc (baseline)', runtime: 'runc', stateRoot: '/run/runc' },
  { label: 'mycontainer', runtime: CLI, stateRoot: '/run/mycontainer' },
];

for (const { label, runtime, stateRoot } of runtimes) {
  describe(`podman with ${label}`, { skip: missing ?? false }, () => {
    let store: PodmanStore;

    before(() => {
      store = makePodmanStore(runtime, stateRoot);
      store.importBusybox();
    });
    after(() => {
      store?.cleanup();
    });

    const explain = (what: string, r: { status: number | null; stdout: string; stderr: string }): string =>
      `${what}: podman exited ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

    it('run --rm echo hello prints hello', () => {
      const r = store.podman(['run', '--rm', ...store.runFlags, IMAGE, 'echo', 'hello']);
      assert.equal(r.status, 0, explain('run --rm echo hello', r));
      assert.equal(r.stdout, 'hello\n');
    });

    it('run -d, ps, stop -t 2, rm', () => {
      const run = store.podman(['run', '-d', ...store.runFlags, IMAGE, 'sleep', '100']);
      assert.equal(run.status, 0, explain('run -d sleep 100', run));
      const id = run.stdout.trim();
      assert.match(id, /^[0-9a-f]{64}$/);
      try {
        const ps = pollPodman(store, ['ps', '--format', '{{.ID}} {{.Status}}'], (r) => r.stdout.includes(id.slice(0, 12)));
        assert.equal(ps.status, 0, explain('ps', ps));
        assert.match(ps.stdout, new RegExp(`^${id.slice(0, 12)} Up`, 'm'));

        // sleep as PID 1 ignores SIGTERM: podman sends KILL after 2 s
        const stop = store.podman(['stop', '-t', '2', id]);
        assert.equal(stop.status, 0, explain('stop -t 2', stop));
        const ps2 = store.podman(['ps', '-a', '--format', '{{.ID}} {{.Status}}']);
        assert.match(ps2.stdout, new RegExp(`^${id.slice(0, 12)} Exited \\(137\\)`, 'm'), explain('ps -a after stop', ps2));
        assert.equal(store.podman(['ps', '-q']).stdout.trim(), '', 'nothing runs after stop');
      } finally {
        const rm = store.podman(['rm', '-f', id]);
        assert.equal(rm.status, 0, explain('rm', rm));
      }
      const left = store.podman(['ps', '-a', '-q']);
      assert.equal(left.stdout.trim(), '', 'no container left after rm');
      // the runtime was asked to delete it, and did
      assert.equal(fs.existsSync(path.join(store.stateRoot, id)), false, `${store.stateRoot}/${id} is left after rm`);
    });

    it('the exit status passes through', () => {
      const r = store.podman(['run', '--rm', ...store.runFlags, IMAGE, 'sh', '-c', 'exit 3']);
      assert.equal(r.status, 3, explain("run --rm sh -c 'exit 3'", r));
    });

    it('run -t: the process gets a terminal (--console-socket)', () => {
      const r = store.podman(['run', '--rm', '-t', ...store.runFlags, IMAGE, 'tty']);
      assert.equal(r.status, 0, explain('run --rm -t tty', r));
      assert.match(r.stdout, /^\/dev\/pts\/\d+\r?\n$/);
    });

    it('exec runs in the container and passes its exit status', () => {
      const run = store.podman(['run', '-d', ...store.runFlags, IMAGE, 'sleep', '100']);
      assert.equal(run.status, 0, explain('run -d sleep 100', run));
      const id = run.stdout.trim();
      try {
        const r = store.podman(['exec', id, 'sh', '-c', 'echo in-$(hostname); exit 4']);
        assert.equal(r.status, 4, explain('exec', r));
        assert.equal(r.stdout, `in-${id.slice(0, 12)}\n`);
      } finally {
        store.podman(['rm', '-f', '-t', '0', id]);
      }
    });

    /** Runs FN on a fresh `run -d sleep 1000` container and its init's host pid; removes it after, also on failure. */
    const withContainer = (fn: (id: string, pid: number) => void): void => {
      const run = store.podman(['run', '-d', ...store.runFlags, IMAGE, 'sleep', '1000']);
      assert.equal(run.status, 0, explain('run -d sleep 1000', run));
      const id = run.stdout.trim();
      let rm: ReturnType<typeof store.podman>;
      try {
        const insp = store.podman(['inspect', '--format', '{{.State.Pid}}', id]);
        assert.equal(insp.status, 0, explain('inspect State.Pid', insp));
        const pid = Number(insp.stdout.trim());
        assert.ok(pid > 1, `State.Pid is "${insp.stdout.trim()}"`);
        fn(id, pid);
      } finally {
        // a paused container too: podman resumes it before the kill
        rm = store.podman(['rm', '-f', '-t', '0', id]);
      }
      // checked after the finally, so that a failure in FN is the one reported
      assert.equal(rm.status, 0, explain('rm -f', rm));
      assert.equal(fs.existsSync(path.join(store.stateRoot, id)), false, `${store.stateRoot}/${id} is left after rm`);
    };
    const status = (id: string): string => store.podman(['inspect', '--format', '{{.State.Status}}', id]).stdout.trim();
    const readCg = (pid: number, controller: string, file: string): string => fs.readFileSync(path.join(v1CgroupDir(pid, controller), file), 'utf8').trim();

    it('run -it under a pty: the process has a terminal on stdin and stdout, its exit status passes', () => {
      const r = store.podmanInPty(['run', '--rm', '-it', ...store.runFlags, IMAGE, 'sh', '-c', 'tty; test -t 0 && echo stdin-is-a-tty; exit 5']);
      assert.equal(r.status, 5, explain('run --rm -it (under script)', r));
      assert.match(r.stdout, /^\/dev\/pts\/\d+\r?$/m, explain('tty', r));
      assert.match(r.stdout, /stdin-is-a-tty\r?$/m, explain('test -t 0', r));
    });

    it('exec -it under a pty: a terminal of its own, the exit status passes', () => {
      withContainer((id) => {
        const r = store.podmanInPty(['exec', '-it', id, 'sh', '-c', 'tty; test -t 0 && echo stdin-is-a-tty; exit 6']);
        assert.equal(r.status, 6, explain('exec -it (under script)', r));
        assert.match(r.stdout, /^\/dev\/pts\/\d+\r?$/m, explain('tty', r));
        assert.match(r.stdout, /stdin-is-a-tty\r?$/m, explain('test -t 0', r));
      });
    });

    it('pause freezes the container cgroup, unpause thaws it', () => {
      withContainer((id, pid) => {
        assert.equal(readCg(pid, 'freezer', 'freezer.state'), 'THAWED');
        const p = store.podman(['pause', id]);
        assert.equal(p.status, 0, explain('pause', p));
        assert.equal(status(id), 'paused');
        assert.equal(readCg(pid, 'freezer', 'freezer.state'), 'FROZEN');
        // plain ps lists running ones only
        const ps = store.podman(['ps', '-a', '--format', '{{.ID}} {{.Status}}']);
        assert.match(ps.stdout, new RegExp(`^${id.slice(0, 12)} Paused`, 'm'), explain('ps while paused', ps));

        const u = store.podman(['unpause', id]);
        assert.equal(u.status, 0, explain('unpause', u));
        assert.equal(status(id), 'running');
        assert.equal(readCg(pid, 'freezer', 'freezer.state'), 'THAWED');
        // the same init goes on and takes execs again
        const e = store.podman(['exec', id, 'echo', 'thawed']);
        assert.equal(e.status, 0, explain('exec after unpause', e));
        assert.equal(e.stdout, 'thawed\n');
        assert.equal(store.podman(['inspect', '--format', '{{.State.Pid}}', id]).stdout.trim(), String(pid));
      });
    });

    it('top lists the init and an exec -d process', () => {
      withContainer((id) => {
        const d = store.podman(['exec', '-d', id, 'sleep', '999']);
        assert.equal(d.status, 0, explain('exec -d sleep 999', d));
        const top = pollPodman(store, ['top', id, 'pid', 'args'], (r) => /sleep 999/.test(r.stdout), 10000);
        assert.equal(top.status, 0, explain('top', top));
        const rows = top.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/));
        assert.deepEqual(rows[0], ['PID', 'COMMAND'], explain('top header', top));
        // pids as the container's pid namespace sees them: the init is 1
        assert.ok(rows.some((r) => r.join(' ') === '1 sleep 1000'), explain('top: init', top));
        assert.ok(rows.some((r) => r[0] !== '1' && r.slice(1).join(' ') === 'sleep 999'), explain('top: exec -d', top));
      });
    });

    it('stats --no-stream prints a row with the memory usage', () => {
      withContainer((id, pid) => {
        const r = store.podman(['stats', '--no-stream', '--format', 'json', id]);
        assert.equal(r.status, 0, explain('stats --no-stream', r));
        const rows = JSON.parse(r.stdout) as { id?: string; mem_usage?: string; pids?: string }[];
        assert.equal(rows.length, 1, explain('stats rows', r));
        const row = rows[0] ?? {};
        assert.equal(row.id, id.slice(0, 12));
        assert.equal(row.pids, '1');
        // "612kB / 25.28GB": the usage of the container's memory cgroup, not zero
        const m = /^([\d.]+)([kMG]?B) \/ /.exec(row.mem_usage ?? '');
        assert.ok(m && Number(m[1]) > 0, `mem_usage is "${row.mem_usage}"`);
        assert.ok(Number(readCg(pid, 'memory', 'memory.usage_in_bytes')) > 0);
        // the table form too: a header and one row for the container
        const t = store.podman(['stats', '--no-stream', id]);
        assert.equal(t.status, 0, explain('stats --no-stream (table)', t));
        assert.match(t.stdout, /^ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT/, explain('stats header', t));
        assert.match(t.stdout, new RegExp(`^${id.slice(0, 12)}\\s.*\\s[\\d.]+[kMG]?B / [\\d.]+[kMG]?B\\s`, 'm'), explain('stats row', t));
      });
    });

    it('update --memory --cpu-shares rewrites the container cgroup', () => {
      withContainer((id, pid) => {
        // tail -c N buffers N bytes: 200 MB fits before the update, not in 64m + 64m swap after
        const hog = ['exec', id, 'sh', '-c', 'head -c 200000000 /dev/zero | tail -c 200000000 >/dev/null'];
        const before = store.podman(hog);
        assert.equal(before.status, 0, explain('200 MB before the update', before));
        assert.notEqual(readCg(pid, 'memory', 'memory.limit_in_bytes'), '67108864');
        const r = store.podman(['update', '--memory', '64m', '--cpu-shares', '512', id]);
        assert.equal(r.status, 0, explain('update --memory 64m --cpu-shares 512', r));
        assert.equal(readCg(pid, 'memory', 'memory.limit_in_bytes'), '67108864');
        // podman sends swap = 2 x memory when none is given
        assert.equal(readCg(pid, 'memory', 'memory.memsw.limit_in_bytes'), '134217728');
        assert.equal(readCg(pid, 'cpu', 'cpu.shares'), '512');
        // the limit binds: the kernel OOM-kills tail (137), the container goes on
        const after = store.podman(hog);
        assert.equal(after.status, 137, explain('200 MB after update --memory 64m', after));
        assert.ok(Number(readCg(pid, 'memory', 'memory.failcnt')) > 0);
        assert.equal(status(id), 'running');
      });
    });
  });
}
