// save / load / import round trips: our archives loaded by podman, podman's
// loaded by us, our OCI layout copied by skopeo, a rootfs tarball imported
// and run.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO, front, mc, testRoot, makeBusyboxRootfs } from '../helpers/bundle';
import { makePodmanStore, podmanMissing, type PodmanStore } from '../helpers/podman';
import { ContentStore } from '../../images/store';
import { findImage } from '../../images/image';
import { ensureSnapshots } from '../../images/bundle';

const BUILD = path.join(REPO, 'scripts', 'build-busybox-image.sh');
const have = ['/usr/bin/skopeo', '/usr/bin/umoci', '/bin/busybox'].every((f) => fs.existsSync(f));
const skip = !have ? 'needs skopeo, umoci and busybox-static' : process.getuid?.() !== 0 ? 'needs root' : false;
const podmanSkip = skip || podmanMissing() || false;

let work = '';
let imageRoot = '';
let runRoot = '';
let pm: PodmanStore | undefined;

function img(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return front(imageRoot, args);
}

before(() => {
  if (skip) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-images-archive-'));
  imageRoot = path.join(work, 'store');
  runRoot = testRoot('images-archive');
  execFileSync(BUILD, [path.join(work, 'oci'), 'latest'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const l = img(['load', '-i', path.join(work, 'oci'), '--name', 'localhost/bb:1']);
  assert.equal(l.status, 0, l.stderr);
});

after(() => {
  pm?.cleanup();
  if (work) fs.rmSync(work, { recursive: true, force: true });
  if (runRoot) fs.rmSync(runRoot, { recursive: true, force: true });
});

test('an OCI layout loads, and our OCI layout output is copied by skopeo', { skip }, async () => {
  const store = new ContentStore(imageRoot);
  const image = findImage(store, 'localhost/bb:1');
  await ensureSnapshots(store, image);
  const out = path.join(work, 'saved-dir');
  const s = img(['save', 'localhost/bb:1', '-o', out, '--format', 'oci-dir']);
  assert.equal(s.status, 0, s.stderr);
  execFileSync('skopeo', ['copy', '--quiet', `oci:${out}:1`, `oci:${path.join(work, 'copied')}:x`], { stdio: ['ignore', 'ignore', 'pipe'] });
  const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${path.join(work, 'copied')}:x`], { encoding: 'utf8' })) as { Layers: string[] };
  assert.deepEqual(inspect.Layers, image.manifest.layers.map((l) => l.digest));
});

test('podman loads our oci-archive and docker-archive', { skip: podmanSkip }, () => {
  pm ??= makePodmanStore('runc', '/run/runc');
  for (const format of ['oci-archive', 'docker-archive']) {
    const file = path.join(work, `bb-${format}.tar`);
    const s = img(['save', 'localhost/bb:1', '-o', file, '--format', format]);
    assert.equal(s.status, 0, s.stderr);
    const l = pm.podman(['load', '-i', file]);
    assert.equal(l.status, 0, `${format}: ${l.stderr}`);
    const r = pm.podman(['image', 'inspect', 'localhost/bb:1', '--format', '{{.Config.Cmd}}']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /sh/);
    pm.podman(['rmi', '-f', 'localhost/bb:1']);
  }
});

test('we load what podman saves (docker-archive and oci-archive), and run it', { skip: podmanSkip }, () => {
  pm ??= makePodmanStore('runc', '/run/runc');
  const oci = path.join(work, 'for-podman.tar');
  assert.equal(img(['save', 'localhost/bb:1', '-o', oci]).status, 0);
  assert.equal(pm.podman(['load', '-i', oci]).status, 0);
  for (const format of ['docker-archive', 'oci-archive']) {
    const file = path.join(work, `podman-${format}.tar`);
    const s = pm.podman(['save', '--format', format, '-o', file, 'localhost/bb:1']);
    assert.equal(s.status, 0, s.stderr);
    const l = img(['load', '-i', file, '--name', `localhost/from-podman:${format}`]);
    assert.equal(l.status, 0, l.stderr);
    assert.match(l.stdout, /Loaded image: localhost\/from-podman/);
    const dir = path.join(work, `bundle-${format}`);
    const b = img(['bundle', `localhost/from-podman:${format}`, dir, '--rootfs', 'copy', '--', 'echo', `ok-${format}`]);
    assert.equal(b.status, 0, b.stderr);
    const r = mc(runRoot, ['run', '--bundle', dir, `arch-${format}`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), `ok-${format}`);
    mc(runRoot, ['delete', '-f', `arch-${format}`]);
  }
});

test('load --name of a layout holding several images is refused; without it, each keeps its own tag', { skip }, () => {
  const layout = path.join(work, 'two-tags');
  execFileSync(BUILD, [layout, 'one'], { stdio: ['ignore', 'ignore', 'pipe'] });
  execFileSync(BUILD, [layout, 'two'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const named = img(['load', '-i', layout, '--name', 'localhost/pair:1']);
  assert.notEqual(named.status, 0);
  assert.match(named.stderr, /holds 2 images/);
  assert.doesNotMatch(img(['images']).stdout, /localhost\/pair/, 'nothing recorded under the name');
  const both = img(['load', '-i', layout]);
  assert.equal(both.status, 0, both.stderr);
  assert.match(both.stdout, /:one\b/);
  assert.match(both.stdout, /:two\b/);
});

test('import: a rootfs tarball becomes a one-layer image that runs', { skip }, () => {
  const rootfs = path.join(work, 'rootfs');
  makeBusyboxRootfs(rootfs);
  const tarball = path.join(work, 'rootfs.tar.gz');
  execFileSync('tar', ['-C', rootfs, '-czf', tarball, '.']);
  const i = img(['import', tarball, 'localhost/imported:1']);
  assert.equal(i.status, 0, i.stderr);
  assert.match(i.stdout, /^sha256:[a-f0-9]{64}$/m);
  const dir = path.join(work, 'bundle-import');
  const b = img(['bundle', 'localhost/imported:1', dir, '--rootfs', 'copy', '--', 'sh', '-c', 'echo imported']);
  assert.equal(b.status, 0, b.stderr);
  const r = mc(runRoot, ['run', '--bundle', dir, 'imported-1']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'imported');
  mc(runRoot, ['delete', '-f', 'imported-1']);
});
