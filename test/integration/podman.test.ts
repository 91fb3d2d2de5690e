// Podman (Debian 12: podman 4.3 + conmon) driving bin/mycontainer as its OCI
// runtime, in a private store (test/helpers/podman.ts). The same tests run
// first with runc, as a baseline: if they fail there, the host or the podman
// invocation is at fault, not our runtime.
//
// What podman calls on the runtime, seen through a logging wrapper:
//   create --bundle B --pid-file P ID   (conmon; --console-socket S with -t)
//   start ID
//   kill ID 15, kill ID 9               (stop -t N: TERM, then KILL after N s)
//   exec --pid-file P --process F ...   (podman exec)
//   delete --force ID                   (rm, run --rm, and after a failed create)
// with the runtime's default --root. Errors reach podman through the
// runtime's stderr, which conmon reads from the container's stderr pipe.

import { describe, it, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CLI } from '../helpers/bundle';
import { IMAGE, makePodmanStore, podmanMissing, pollPodman, type PodmanStore } from '../helpers/podman';

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
  });
}
