// export: an image's layers flattened into one tar (whiteouts and opaque
// dirs applied, metadata kept), and a bundle's rootfs as a container left
// it; round trip through import into a container that runs; the -o file is
// written atomically.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO, front, mc, testRoot, mountsUnder } from '../helpers/bundle';
import { ContentStore } from '../../images/store';
import { findImage } from '../../images/image';
import { Snapshots } from '../../images/snapshots';
import { lgetxattr, lsetxattr } from '../../images/xattr';

const BUILD = path.join(REPO, 'scripts', 'build-busybox-image.sh');
const have = ['/usr/bin/umoci', '/bin/busybox', '/usr/bin/tar'].every((f) => fs.existsSync(f));
const skip = !have ? 'needs umoci, tar and busybox-static' : process.getuid?.() !== 0 ? 'needs root' : false;

const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // cap_net_bind_service, binary
const MTIME = new Date('2001-02-03T04:05:06Z');

let work = '';
let imageRoot = '';
let runRoot = '';
const containers: string[] = [];

function img(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return front(imageRoot, args);
}

function umoci(...args: string[]): void {
  execFileSync('umoci', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** `tar -tvf` lines by entry name (the last word, or the word before "->" / "link to"). */
function listing(file: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of execFileSync('tar', ['-tvf', file], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
    const m = /^\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+(.*?)(?: -> .*| link to .*)?$/.exec(line);
    if (m) out.set(m[1]!, line);
  }
  return out;
}

function run(bundle: string, id: string): string {
  containers.push(id);
  const r = mc(runRoot, ['run', '--bundle', bundle, id]);
  assert.equal(r.status, 0, r.stderr);
  mc(runRoot, ['delete', '-f', id]);
  return r.stdout;
}

before(() => {
  if (skip) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-images-export-'));
  imageRoot = path.join(work, 'store');
  runRoot = testRoot('images-export');
  const layout = path.join(work, 'oci');
  execFileSync(BUILD, [layout, 'rich'], { stdio: ['ignore', 'ignore', 'pipe'] });
  // Layer 2: /data with every kind of entry and metadata; /opq/{x,y}.
  const data = path.join(work, 'src', 'data');
  fs.mkdirSync(data, { recursive: true });
  fs.writeFileSync(path.join(data, 'owned'), 'owned\n');
  fs.chownSync(path.join(data, 'owned'), 1234, 5678);
  fs.chmodSync(path.join(data, 'owned'), 0o4755);
  fs.linkSync(path.join(data, 'owned'), path.join(data, 'hl'));
  fs.symlinkSync('owned', path.join(data, 'sl'));
  execFileSync('mknod', [path.join(data, 'null'), 'c', '1', '3']);
  execFileSync('mkfifo', [path.join(data, 'fifo')]);
  fs.writeFileSync(path.join(data, 'gone'), 'gone\n');
  fs.writeFileSync(path.join(data, 'cap'), 'cap\n');
  lsetxattr(path.join(data, 'cap'), 'security.capability', CAP);
  lsetxattr(path.join(data, 'cap'), 'user.bin', Buffer.from([0, 0xff, 0x41]));
  for (const f of fs.readdirSync(data)) fs.lutimesSync(path.join(data, f), MTIME, MTIME);
  const opq = path.join(work, 'src', 'opq');
  fs.mkdirSync(opq);
  fs.writeFileSync(path.join(opq, 'x'), 'x\n');
  fs.writeFileSync(path.join(opq, 'y'), 'y\n');
  umoci('insert', '--image', `${layout}:rich`, data, '/data');
  umoci('insert', '--image', `${layout}:rich`, opq, '/opq');
  // Layer 4: a whiteout of /data/gone; layer 5: /opq opaque, holding only z.
  umoci('insert', '--image', `${layout}:rich`, '--whiteout', '/data/gone');
  const opq2 = path.join(work, 'src', 'opq2');
  fs.mkdirSync(opq2);
  fs.writeFileSync(path.join(opq2, 'z'), 'z\n');
  umoci('insert', '--image', `${layout}:rich`, '--opaque', opq2, '/opq');
  const l = img(['load', '-i', layout, '--name', 'localhost/rich:1']);
  assert.equal(l.status, 0, l.stderr);
});

after(() => {
  for (const id of containers) mc(runRoot, ['delete', '-f', id]);
  if (work) {
    for (const m of mountsUnder(work).sort((a, b) => b.length - a.length)) {
      try {
        execFileSync('umount', ['-l', m], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
    fs.rmSync(work, { recursive: true, force: true });
  }
  if (runRoot) fs.rmSync(runRoot, { recursive: true, force: true });
});

test('export an image: layers flattened, whiteouts and opaque dirs applied, ownership and kinds kept', { skip }, () => {
  const file = path.join(work, 'rich.tar');
  const e = img(['export', 'localhost/rich:1', '-o', file]);
  assert.equal(e.status, 0, e.stderr);
  const ls = listing(file);
  assert.ok(!ls.has('./data/gone'), 'the whited-out file is not exported');
  assert.ok([...ls.keys()].every((n) => !n.includes('.wh.')), 'no whiteout entries');
  assert.deepEqual([...ls.keys()].filter((n) => n.startsWith('./opq/') && n !== './opq/'), ['./opq/z']);
  assert.match(ls.get('./data/hl')!, /^-rwsr-xr-x 1234\/5678 /);
  assert.match(ls.get('./data/owned')!, /^hrwsr-xr-x 1234\/5678 .* link to \.\/data\/hl$/);
  assert.match(ls.get('./data/sl')!, /^lrwxrwxrwx .* -> owned$/);
  assert.match(ls.get('./data/null')!, /^crw-r--r-- 0\/0 +1,3 /);
  assert.match(ls.get('./data/fifo')!, /^prw-r--r-- /);
  assert.match(ls.get('./data/cap')!, / 2001-02-03 04:05 /);
  assert.match(ls.get('./home/app/')!, /^drwxr-xr-x 1000\/1000 /);
  assert.match(ls.get('./tmp/')!, /^drwxrwxrwt /);
  // The same bytes to stdout.
  const viaStdout = execFileSync(path.join(REPO, 'bin', 'mycontainer'), ['--root', imageRoot, 'export', 'localhost/rich:1'], { maxBuffer: 64 << 20 });
  assert.ok(viaStdout.equals(fs.readFileSync(file)), 'stdout and -o give the same archive');
});

test('round trip: export → import keeps metadata and binary xattrs, and the imported image runs', { skip }, () => {
  const file = path.join(work, 'rt.tar');
  assert.equal(img(['export', 'localhost/rich:1', '-o', file]).status, 0);
  const i = img(['import', file, 'localhost/flat:1']);
  assert.equal(i.status, 0, i.stderr);
  const store = new ContentStore(imageRoot);
  const flat = findImage(store, 'localhost/flat:1');
  assert.equal(flat.manifest.layers.length, 1);
  const b0 = path.join(work, 'bundle-flat0');
  assert.equal(img(['bundle', 'localhost/flat:1', b0, '--rootfs', 'copy', '--', 'true']).status, 0); // unpacks the snapshot
  const snap = new Snapshots(imageRoot).dir(flat.config.rootfs.diff_ids[0]!);
  const st = fs.lstatSync(path.join(snap, 'data', 'owned'));
  assert.equal(st.uid, 1234);
  assert.equal(st.gid, 5678);
  assert.equal(st.mode & 0o7777, 0o4755);
  assert.equal(st.nlink, 2);
  assert.equal(st.ino, fs.lstatSync(path.join(snap, 'data', 'hl')).ino);
  assert.equal(fs.lstatSync(path.join(snap, 'data', 'cap')).mtime.getTime(), MTIME.getTime());
  assert.deepEqual(lgetxattr(path.join(snap, 'data', 'cap'), 'security.capability'), CAP);
  assert.deepEqual(lgetxattr(path.join(snap, 'data', 'cap'), 'user.bin'), Buffer.from([0, 0xff, 0x41]));
  assert.equal(fs.lstatSync(path.join(snap, 'data', 'null')).rdev, fs.lstatSync('/dev/null').rdev);
  assert.ok(fs.lstatSync(path.join(snap, 'data', 'fifo')).isFIFO());
  assert.ok(!fs.existsSync(path.join(snap, 'data', 'gone')));
  const b = path.join(work, 'bundle-flat');
  const bb = img(['bundle', 'localhost/flat:1', b, '--', 'sh', '-c', 'cat /data/owned; ls /data /opq; stat -c %u:%g:%a /data/owned']);
  assert.equal(bb.status, 0, bb.stderr);
  const out = run(b, 'export-flat');
  assert.match(out, /^owned$/m);
  assert.doesNotMatch(out, /gone/);
  assert.match(out, /^z$/m);
  assert.match(out, /^1234:5678:4755$/m);
  assert.equal(img(['unbundle', b]).status, 0);
});

test('export a bundle: the rootfs as a container left it (overlay mounted, overlay unmounted, copy)', { skip }, () => {
  for (const mode of ['overlay', 'copy'] as const) {
    const b = path.join(work, `bundle-${mode}`);
    const r = img(['bundle', 'localhost/rich:1', b, '--rootfs', mode, '--', 'sh', '-c', 'echo made > /data/new; rm /data/owned; rm -r /opq; mkdir /opq; echo w > /opq/w; chown 42:43 /data/new']);
    assert.equal(r.status, 0, r.stderr);
    const cfgFile = path.join(b, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as { process: { capabilities: Record<string, string[]> } };
    for (const k of ['bounding', 'effective', 'permitted']) cfg.process.capabilities[k]!.push('CAP_CHOWN');
    fs.writeFileSync(cfgFile, JSON.stringify(cfg));
    run(b, `export-${mode}`);
    const check = (file: string): void => {
      const ls = listing(file);
      assert.match(ls.get('./data/new') ?? '', /^-rw-r--r-- 42\/43 /, `${mode}: the container's new file`);
      assert.ok(!ls.has('./data/owned'), `${mode}: the file the container removed`);
      assert.match(ls.get('./data/hl') ?? '', /^-rwsr-xr-x 1234\/5678 /);
      assert.deepEqual([...ls.keys()].filter((n) => n.startsWith('./opq/') && n !== './opq/'), ['./opq/w'], `${mode}: the dir the container replaced`);
      assert.ok(ls.has('./bin/busybox'));
    };
    const file = path.join(work, `bundle-${mode}.tar`);
    const e = img(['export', b, '-o', file]);
    assert.equal(e.status, 0, e.stderr);
    check(file);
    if (mode === 'overlay') {
      // Unmounted, the same view is merged from upper/ over the layers.
      execFileSync('umount', [path.join(b, 'rootfs')]);
      const file2 = path.join(work, 'bundle-unmounted.tar');
      const e2 = img(['export', b, '-o', file2]);
      assert.equal(e2.status, 0, e2.stderr);
      check(file2);
    }
    assert.equal(img(['unbundle', b]).status, 0);
  }
});

test('export -o is atomic: a failure leaves neither the file nor a temp file', { skip }, (t) => {
  const dir = path.join(work, 'small');
  fs.mkdirSync(dir);
  // 256 KiB: the busybox binary alone does not fit, so the write fails midway.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir]);
  t.after(() => execFileSync('umount', ['-l', dir], { stdio: 'ignore' }));
  const full = img(['export', 'localhost/rich:1', '-o', path.join(dir, 'out.tar')]);
  assert.notEqual(full.status, 0);
  assert.match(full.stderr, /cannot write .*out\.tar.*(ENOSPC|no space)/i);
  assert.deepEqual(fs.readdirSync(dir), []);
  // An existing file is left as it was.
  fs.writeFileSync(path.join(dir, 'keep.tar'), 'old');
  const again = img(['export', 'localhost/rich:1', '-o', path.join(dir, 'keep.tar')]);
  assert.notEqual(again.status, 0);
  assert.deepEqual(fs.readdirSync(dir), ['keep.tar']);
  assert.equal(fs.readFileSync(path.join(dir, 'keep.tar'), 'utf8'), 'old');
  const missing = img(['export', 'localhost/nosuch:1', '-o', path.join(work, 'nosuch.tar')]);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /nosuch/);
  assert.ok(!fs.readdirSync(work).some((n) => n.includes('nosuch')));
});
