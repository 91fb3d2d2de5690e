// docker's file commands against a real engine (test/helpers/engine.ts):
// cp both ways on running and stopped containers (content, modes, owners,
// symlinks), cp through hostile symlinks (nothing read or written outside
// the container), diff after adds, changes and deletes, commit then run the
// new image, and export of a container piped into tar -t.

import { describe, it, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BUSYBOX, engineMissing, startEngine, type Engine } from '../helpers/engine';
import { FRONTEND, mountsUnder, type CliResult } from '../helpers/bundle';

const skip = engineMissing() ?? false;

const explain = (what: string, r: CliResult): string => `${what}: exited ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

describe('mycontainer cp, diff, commit, export', { skip }, () => {
  let e: Engine;
  let host: string;
  /** Outside every container: a secret a hostile symlink points at, and where a write would land. */
  let canary: string;
  const ok = (args: string[], opts: { input?: string } = {}): string => {
    const r = e.mc(args, opts);
    assert.equal(r.status, 0, explain(args.join(' '), r));
    return r.stdout;
  };
  const sh = (ctr: string, script: string): string => ok(['exec', ctr, 'sh', '-c', script]);
  const rootfsOf = (ctr: string): string => {
    const id = ok(['inspect', '-f', '{{.Id}}', ctr]).trim();
    return path.join(e.root, 'containers', id, 'bundle', 'rootfs');
  };
  const canaryState = (): string => spawnSync('sh', ['-c', `cd ${canary} && find . -exec stat -c '%n %s %Y %a' {} +`], { encoding: 'utf8' }).stdout;

  before(() => {
    e = startEngine('files');
    host = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-files-host-'));
    canary = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-files-canary-'));
    fs.writeFileSync(path.join(canary, 'secret'), 'host secret\n', { mode: 0o600 });
  });
  after(() => {
    try {
      e?.cleanup();
    } finally {
      for (const d of [host, canary]) if (d) fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('cp into and out of a running container keeps content, modes and (with -a) owners', () => {
    ok(['run', '-d', '--name', 'cp-run', ...e.flags, BUSYBOX, 'sleep', '600']);
    // host → container: a file into a dir, a tree to a new name
    const src = path.join(host, 'src');
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(src, 'a.txt'), 'alpha\n', { mode: 0o640 });
    fs.writeFileSync(path.join(src, 'sub', 'run.sh'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
    fs.chmodSync(path.join(src, 'a.txt'), 0o640);
    fs.chownSync(path.join(src, 'a.txt'), 1234, 5678);
    fs.symlinkSync('sub/run.sh', path.join(src, 'link'));
    ok(['cp', path.join(src, 'a.txt'), 'cp-run:/tmp/']);
    assert.equal(sh('cp-run', 'cat /tmp/a.txt; stat -c "%a %u %g" /tmp/a.txt'), 'alpha\n640 0 0\n', 'without -a the container root owns it');
    ok(['cp', '-a', path.join(src, 'a.txt'), 'cp-run:/tmp/owned.txt']);
    assert.equal(sh('cp-run', 'stat -c "%a %u %g" /tmp/owned.txt'), '640 1234 5678\n');
    ok(['cp', src, 'cp-run:/data']);
    assert.equal(sh('cp-run', 'cat /data/a.txt; stat -c %a /data/sub/run.sh; /data/sub/run.sh; readlink /data/link'), 'alpha\n755\nran\nsub/run.sh\n');
    // SRC/. copies the contents into an existing dir
    ok(['cp', `${src}/.`, 'cp-run:/tmp']);
    assert.equal(sh('cp-run', 'cat /tmp/sub/run.sh | tail -1'), 'echo ran\n');

    // container → host
    sh('cp-run', 'mkdir -p /out/sub && echo inner > /out/sub/f && chmod 751 /out/sub/f && chown 42:43 /out/sub/f && ln -s sub/f /out/link && ln -s / /out/rootlink');
    const out = path.join(host, 'out');
    ok(['cp', 'cp-run:/out', out]);
    assert.equal(fs.readFileSync(path.join(out, 'sub', 'f'), 'utf8'), 'inner\n');
    const st = fs.statSync(path.join(out, 'sub', 'f'));
    assert.equal(st.mode & 0o7777, 0o751);
    assert.equal(st.uid, 0, 'without -a we own what we copied out');
    assert.equal(fs.readlinkSync(path.join(out, 'link')), 'sub/f');
    assert.equal(fs.readlinkSync(path.join(out, 'rootlink')), '/', 'a symlink is copied as a symlink, not followed into the host');
    const kept = path.join(host, 'kept');
    ok(['cp', '-a', 'cp-run:/out/sub/f', kept]);
    assert.equal(fs.statSync(kept).uid, 42);
    assert.equal(fs.statSync(kept).gid, 43);
    // a file into an existing host dir
    ok(['cp', 'cp-run:/etc/passwd', host + '/']);
    assert.match(fs.readFileSync(path.join(host, 'passwd'), 'utf8'), /^root:x:0:0:/);
    // a tar on stdout
    const tar = spawnSync('bash', ['-c', `set -o pipefail; ${FRONTEND} --root ${e.root} --runroot ${e.runroot} cp cp-run:/out - | tar -tvf -`], { encoding: 'utf8' });
    assert.equal(tar.status, 0, tar.stderr);
    assert.match(tar.stdout, /out\/sub\/f\n/);
    assert.match(tar.stdout, /out\/link -> sub\/f/);
  });

  it('cp into and out of a stopped container mounts its rootfs for the copy only', () => {
    ok(['run', '--name', 'cp-stopped', ...e.flags, BUSYBOX, 'sh', '-c', 'echo made > /made.txt; chmod 604 /made.txt']);
    const rootfs = rootfsOf('cp-stopped');
    assert.deepEqual(mountsUnder(rootfs), [], 'a stopped container has no rootfs mount');
    ok(['cp', 'cp-stopped:/made.txt', path.join(host, 'made.txt')]);
    assert.equal(fs.readFileSync(path.join(host, 'made.txt'), 'utf8'), 'made\n');
    assert.equal(fs.statSync(path.join(host, 'made.txt')).mode & 0o7777, 0o604);
    fs.writeFileSync(path.join(host, 'in.txt'), 'into a stopped one\n', { mode: 0o600 });
    fs.chmodSync(path.join(host, 'in.txt'), 0o600);
    ok(['cp', path.join(host, 'in.txt'), 'cp-stopped:/root/in.txt']);
    assert.deepEqual(mountsUnder(rootfs), [], 'unmounted after the copy');
    ok(['cp', 'cp-stopped:/root/in.txt', path.join(host, 'back.txt')]);
    assert.equal(fs.readFileSync(path.join(host, 'back.txt'), 'utf8'), 'into a stopped one\n');
    assert.equal(fs.statSync(path.join(host, 'back.txt')).mode & 0o7777, 0o600);
    assert.deepEqual(mountsUnder(rootfs), []);
    assert.match(ok(['diff', 'cp-stopped']), /^A \/root\/in.txt$/m, 'the copy is in the container\'s own layer');
  });

  it('cp through a hostile symlink stays inside the container', () => {
    const name = path.basename(canary);
    ok(['run', '-d', '--name', 'cp-evil', ...e.flags, BUSYBOX, 'sleep', '600']);
    // in the container, the canary's path holds a decoy: what a symlink to it must reach
    sh('cp-evil', [
      `mkdir -p /tmp/${name} && echo decoy > /tmp/${name}/secret`,
      `ln -s ${canary} /abs`,
      `ln -s ../../../../../../../..${canary} /up`,
      'ln -s / /root/rootlink',
      'ln -s ../../../../../../.. /root/uplink',
      `ln -s ${canary}/secret /secretlink`,
    ].join(' && '));
    const before = canaryState();
    const rootfs = rootfsOf('cp-evil');
    // reads: each resolves in the container, reaching the decoy, never the host's secret
    for (const p of ['/abs/secret', '/up/secret', `/root/rootlink${canary}/secret`, `/root/uplink${canary}/secret`]) {
      const dst = path.join(host, `read-${path.basename(path.dirname(p))}-${Math.random().toString(36).slice(2)}`);
      ok(['cp', `cp-evil:${p}`, dst]);
      assert.equal(fs.readFileSync(dst, 'utf8'), 'decoy\n', `cp ${p} read the container's file`);
    }
    ok(['cp', '-L', 'cp-evil:/secretlink', path.join(host, 'followed')]);
    assert.equal(fs.readFileSync(path.join(host, 'followed'), 'utf8'), 'decoy\n');
    // writes: into the container's path, the host's canary untouched
    fs.writeFileSync(path.join(host, 'planted'), 'planted\n');
    for (const p of ['/abs/', '/up/', `/root/rootlink${canary}/`, `/root/uplink${canary}/`, '/secretlink']) {
      ok(['cp', path.join(host, 'planted'), `cp-evil:${p}`]);
    }
    assert.equal(canaryState(), before, 'nothing outside the container changed');
    assert.equal(fs.readFileSync(path.join(canary, 'secret'), 'utf8'), 'host secret\n');
    assert.ok(!fs.existsSync(path.join(canary, 'planted')));
    assert.equal(fs.readFileSync(path.join(rootfs, 'tmp', name, 'planted'), 'utf8'), 'planted\n', 'the write landed in the container');
    assert.equal(sh('cp-evil', `cat /tmp/${name}/secret`), 'planted\n', 'through /secretlink: the container\'s file');
    // a dir that is a symlink in the container, written as a tree
    fs.mkdirSync(path.join(host, 'tree', 'd'), { recursive: true });
    fs.writeFileSync(path.join(host, 'tree', 'd', 'x'), 'x\n');
    ok(['cp', `${path.join(host, 'tree')}/.`, `cp-evil:/root/uplink${canary}`]);
    assert.equal(canaryState(), before);
    assert.equal(sh('cp-evil', `cat /tmp/${name}/d/x`), 'x\n');
    // a dir of the copy that is a symlink to the host's dir in the container: refused (docker:
    // a directory does not overwrite a non-directory), never followed
    sh('cp-evil', `rm -rf /tmp/${name}/d && ln -s ${canary} /tmp/${name}/d`);
    const r = e.mc(['cp', `${path.join(host, 'tree')}/.`, `cp-evil:/tmp/${name}`]);
    assert.notEqual(r.status, 0, explain('cp over a symlinked dir', r));
    assert.match(r.stderr, /cannot copy .*cannot overwrite a non-directory with a directory/);
    assert.equal(canaryState(), before);
  });

  it('cp under a bind mount or a volume reaches its host source; a read-only mount refuses', () => {
    const bind = path.join(host, 'bind');
    const ro = path.join(host, 'ro');
    fs.mkdirSync(bind);
    fs.mkdirSync(ro);
    fs.writeFileSync(path.join(bind, 'from-host'), 'bound\n');
    ok(['run', '-d', '--name', 'cp-mounts', ...e.flags, '-v', `${bind}:/srv/bind`, '-v', `${ro}:/srv/ro:ro`, '-v', 'files-vol:/srv/vol', BUSYBOX, 'sleep', '600']);
    const volData = path.join(e.root, 'volumes', 'files-vol', '_data');
    fs.writeFileSync(path.join(host, 'v.txt'), 'into the volume\n');
    ok(['cp', path.join(host, 'v.txt'), 'cp-mounts:/srv/vol/']);
    assert.equal(fs.readFileSync(path.join(volData, 'v.txt'), 'utf8'), 'into the volume\n');
    ok(['cp', path.join(host, 'v.txt'), 'cp-mounts:/srv/bind/b.txt']);
    assert.equal(fs.readFileSync(path.join(bind, 'b.txt'), 'utf8'), 'into the volume\n');
    assert.equal(sh('cp-mounts', 'cat /srv/bind/b.txt /srv/vol/v.txt'), 'into the volume\ninto the volume\n');
    // a tree that spans the mounts: each part read from where it lives
    const got = path.join(host, 'srv-copy');
    ok(['cp', 'cp-mounts:/srv', got]);
    assert.equal(fs.readFileSync(path.join(got, 'bind', 'from-host'), 'utf8'), 'bound\n');
    assert.equal(fs.readFileSync(path.join(got, 'vol', 'v.txt'), 'utf8'), 'into the volume\n');
    // the container's /etc/hosts is the engine's file
    ok(['cp', 'cp-mounts:/etc/hosts', path.join(host, 'hosts')]);
    assert.match(fs.readFileSync(path.join(host, 'hosts'), 'utf8'), /localhost/);
    const r = e.mc(['cp', path.join(host, 'v.txt'), 'cp-mounts:/srv/ro/']);
    assert.notEqual(r.status, 0, explain('cp into a read-only mount', r));
    assert.match(r.stderr, /read-only/);
    assert.deepEqual(fs.readdirSync(ro), []);
  });

  it('diff lists what changed against the image, sorted, docker style', () => {
    ok(['run', '--name', 'changed', ...e.flags, BUSYBOX, 'sh', '-c',
      'echo extra >> /etc/passwd && rm /etc/group && mkdir -p /new/deeper && echo hi > /new/deeper/f && touch /root/note && rm -rf /home && mkdir /home && touch /home/fresh']);
    const diff = ok(['diff', 'changed']);
    assert.equal(diff, [
      'C /etc',
      'C /etc/passwd',
      'D /etc/group',
      'C /home',
      'A /home/fresh',
      'A /new',
      'A /new/deeper',
      'A /new/deeper/f',
      'C /root',
      'A /root/note',
    ].sort((a, b) => (a.slice(2) < b.slice(2) ? -1 : 1)).join('\n') + '\n');
    ok(['run', '-d', '--name', 'pristine', ...e.flags, BUSYBOX, 'sleep', '600']);
    assert.equal(ok(['diff', 'pristine']), '', 'the runtime\'s mount points are no change');
  });

  it('commit makes an image that runs with the changes, the deletion included', () => {
    const id = ok(['commit', '-m', 'from the test', '-a', 'tester', '-c', 'ENV COMMITTED=yes', '-c', 'CMD ["cat", "/new/deeper/f"]', 'changed', 'files-committed:v1']).trim();
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    assert.equal(ok(['run', '--rm', ...e.flags, 'files-committed:v1']), 'hi\n', 'the new CMD shows the committed file');
    assert.equal(ok(['run', '--rm', ...e.flags, 'files-committed:v1', 'sh', '-c',
      'tail -1 /etc/passwd; test -e /etc/group || echo group gone; test -e /home/app || echo app gone; ls /home; echo $COMMITTED']),
    'extra\ngroup gone\napp gone\nfresh\nyes\n');
    const hist = ok(['inspect', '--type', 'image', '-f', '{{json .}}', 'localhost/files-committed:v1']);
    assert.match(hist, /tester/);
    // gzip, and no name: docker prints the ID of an unnamed image
    const gz = ok(['commit', '--gzip', 'cp-run']).trim();
    assert.match(gz, /^sha256:[0-9a-f]{64}$/);
    assert.equal(ok(['run', '--rm', ...e.flags, gz.slice(7, 19), 'cat', '/tmp/a.txt', '/data/sub/run.sh']), 'alpha\n#!/bin/sh\necho ran\n');
  });

  it('export writes a container\'s filesystem as a tar; images still export', () => {
    const r = spawnSync('bash', ['-c', `set -o pipefail; ${FRONTEND} --root ${e.root} --runroot ${e.runroot} export changed | tar -tf -`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const names = r.stdout.split('\n');
    assert.ok(names.includes('./new/deeper/f'), r.stdout.slice(0, 500));
    assert.ok(names.includes('./bin/busybox'));
    assert.ok(!names.includes('./etc/group'), 'the deleted file is not exported');
    const file = path.join(host, 'image.tar');
    ok(['export', '-o', file, BUSYBOX]);
    const t = spawnSync('tar', ['-tf', file], { encoding: 'utf8' });
    assert.ok(t.stdout.split('\n').includes('./etc/group'));
    const missing = e.mc(['export', 'no-such-thing']);
    assert.notEqual(missing.status, 0);
  });
});
