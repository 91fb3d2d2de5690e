// End to end through bin/mycontainer (images) and bin/mycontainer-runtime: busybox built from busybox-static,
// pushed to a local docker-registry by skopeo, then pull, images, inspect,
// tag, history, bundle, run (our runtime), push, rmi.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO, front, mc, testRoot, mountsUnder } from '../helpers/bundle';
import { startRegistry, skopeoPush, type RegistryHandle } from '../helpers/registry';
import { schemaErrors } from '../../runtime/spec/validate';

const BUILD = path.join(REPO, 'scripts', 'build-busybox-image.sh');
const have = ['/usr/bin/docker-registry', '/usr/bin/skopeo', '/usr/bin/umoci', '/bin/busybox'].every((f) => fs.existsSync(f));
const skip = !have ? 'needs docker-registry, skopeo, umoci and busybox-static' : process.getuid?.() !== 0 ? 'needs root' : false;

let work = '';
let imageRoot = '';
let runRoot = '';
let reg: RegistryHandle | undefined;
const bundles: string[] = [];

function img(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return front(imageRoot, args);
}

before(async () => {
  if (skip) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-images-cli-'));
  imageRoot = path.join(work, 'store');
  runRoot = testRoot('images-cli');
  execFileSync(BUILD, [path.join(work, 'oci'), 'latest'], { stdio: ['ignore', 'ignore', 'pipe'] });
  reg = await startRegistry();
  await skopeoPush(path.join(work, 'oci'), 'latest', `${reg.host}/busybox:latest`);
});

after(async () => {
  for (const b of bundles) {
    try {
      execFileSync('umount', ['-l', path.join(b, 'rootfs')], { stdio: 'ignore' });
    } catch {
      // not mounted
    }
  }
  await reg?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
  if (runRoot) fs.rmSync(runRoot, { recursive: true, force: true });
});

test('pull, images, inspect, tag, history', { skip }, () => {
  const ref = `${reg!.host}/busybox`;
  const p = img(['pull', ref]);
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stdout, /Pull complete/);
  assert.match(p.stdout, /Digest: sha256:/);
  const list = JSON.parse(img(['images', '--format', 'json']).stdout) as { Repository: string; Tag: string; Id: string }[];
  assert.equal(list.length, 1);
  assert.equal(list[0]!.Repository, ref);
  assert.equal(list[0]!.Tag, 'latest');
  const t = img(['tag', ref, 'local/bb:v1']);
  assert.equal(t.status, 0, t.stderr);
  const table = img(['images']).stdout;
  assert.match(table, /^REPOSITORY\s+TAG\s+IMAGE ID/);
  assert.match(table, /local\/bb\s+v1/);
  const ins = JSON.parse(img(['inspect', 'local/bb:v1']).stdout) as { Id: string; RepoTags: string[]; Config: { Cmd: string[] }; Architecture: string }[];
  assert.equal(ins[0]!.Id, list[0]!.Id);
  assert.deepEqual(ins[0]!.Config.Cmd, ['sh']);
  assert.equal(ins[0]!.RepoTags.length, 2);
  const byId = JSON.parse(img(['inspect', list[0]!.Id.slice(7, 19)]).stdout) as { Id: string }[];
  assert.equal(byId[0]!.Id, list[0]!.Id);
  const h = img(['history', ref]);
  assert.match(h.stdout, /build-busybox-image\.sh/);
  const bad = img(['inspect', 'nosuch']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /image "nosuch" not found/);
});

test('bundle: runs in our runtime, with the image user resolved from /etc/passwd', { skip }, () => {
  const dir = path.join(work, 'bundle1');
  bundles.push(dir);
  const b = img(['bundle', `${reg!.host}/busybox`, dir, '--', 'sh', '-c', 'id; echo $HOME; pwd; cat /etc/hostname 2>/dev/null; echo hello > /tmp/x && cat /tmp/x']);
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stdout, /rootfs: overlay/);
  assert.ok(mountsUnder(path.join(dir, 'rootfs')).length === 1, 'rootfs is mounted');
  const spec = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as { process: { user: { uid: number } } };
  assert.deepEqual(schemaErrors('oci-runtime/config-schema.json', spec), []);
  const r = mc(runRoot, ['run', '--bundle', dir, 'img-run-1']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /uid=0\(root\) gid=0\(root\)/);
  assert.match(r.stdout, /hello/);
  assert.ok(fs.existsSync(path.join(dir, 'upper', 'tmp', 'x')), 'the write went to the upper dir');
  mc(runRoot, ['delete', '-f', 'img-run-1']);

  const dir2 = path.join(work, 'bundle2');
  bundles.push(dir2);
  const b2 = img(['bundle', `${reg!.host}/busybox`, dir2, '--user', 'app', '--workdir', '/home/app', '--rootfs', 'copy', '-e', 'FOO=bar', '--', 'sh', '-c', 'id; echo $HOME $FOO; pwd']);
  assert.equal(b2.status, 0, b2.stderr);
  assert.match(b2.stdout, /rootfs: copy/);
  const r2 = mc(runRoot, ['run', '--bundle', dir2, 'img-run-2']);
  assert.equal(r2.status, 0, r2.stderr);
  assert.match(r2.stdout, /uid=1000\(app\) gid=1000\(app\) groups=(1000\(app\),)?50\(staff\)/);
  assert.match(r2.stdout, /\/home\/app bar/);
  mc(runRoot, ['delete', '-f', 'img-run-2']);

  const u = img(['unbundle', dir]);
  assert.equal(u.status, 0, u.stderr);
  assert.deepEqual(mountsUnder(path.join(dir, 'rootfs')), []);
  assert.ok(!fs.existsSync(dir));
});

test('push to another repository, pull it back; rmi removes names then blobs', { skip }, () => {
  const p = img(['push', `${reg!.host}/busybox`, `${reg!.host}/copy/busybox:2`]);
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stdout, /digest: sha256:/);
  const other = path.join(work, 'store2');
  const q = front(other, ['pull', `${reg!.host}/copy/busybox:2`]);
  assert.equal(q.status, 0, q.stderr);
  const r1 = img(['rmi', 'local/bb:v1']);
  assert.equal(r1.status, 0, r1.stderr);
  assert.match(r1.stdout, /Untagged: local\/bb:v1/);
  assert.doesNotMatch(r1.stdout, /Deleted/);
  const r2 = img(['rmi', `${reg!.host}/busybox`]);
  assert.equal(r2.status, 0, r2.stderr);
  assert.match(r2.stdout, /Deleted: sha256:/);
  assert.deepEqual(fs.readdirSync(path.join(imageRoot, 'blobs', 'sha256')), []);
  assert.deepEqual(fs.readdirSync(path.join(imageRoot, 'snapshots', 'sha256')), []);
});
