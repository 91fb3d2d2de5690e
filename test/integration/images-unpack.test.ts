// Layer unpacking: metadata kept, and hostile tarballs refused or neutralized
// with nothing written outside the target.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { unpackLayer } from '../../images/unpack';
import { lgetxattr } from '../../images/xattr';
import { sha256 } from '../../images/store';
import { Snapshots } from '../../images/snapshots';

const skip = process.getuid?.() !== 0 ? 'needs root (chown, mknod, trusted.* xattrs)' : false;

type Entry = Partial<tar.Header> & { name: string; body?: Buffer | string };

async function makeTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  })();
  for (const e of entries) {
    const { body, ...h } = e;
    await new Promise<void>((res, rej) => pack.entry(h, body ?? '', (err) => (err ? rej(err) : res())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

let work = '';
let outside = '';
let secret = '';
before(() => {
  if (skip) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-unpack-'));
  outside = path.join(work, 'outside');
  fs.mkdirSync(outside);
  secret = path.join(outside, 'secret');
  fs.writeFileSync(secret, 'untouched\n');
});
after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function target(): string {
  return fs.mkdtempSync(path.join(work, 'layer-'));
}

function assertOutsideUntouched(): void {
  assert.deepEqual(fs.readdirSync(outside), ['secret']);
  assert.equal(fs.readFileSync(secret, 'utf8'), 'untouched\n');
  assert.equal(fs.statSync(secret).nlink, 1, 'no hardlink made to the host file');
}

test('metadata: owners, modes with setuid, mtimes, xattrs (binary), links, devices, whiteouts', { skip }, async () => {
  const mtime = new Date('2020-02-02T02:02:02Z');
  const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0x00, 0x80, 0xfe]);
  const data = await makeTar([
    { name: 'd/suid', mode: 0o4755, uid: 1000, gid: 1000, mtime, body: 'x' },
    { name: './', type: 'directory', mode: 0o755, mtime },
    { name: 'd/', type: 'directory', mode: 0o750, uid: 12, gid: 34, mtime },
    { name: 'd/hl', type: 'link', linkname: 'd/suid' },
    { name: 'd/sym', type: 'symlink', linkname: '/nowhere', uid: 5, gid: 6, mtime },
    { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
    { name: 'dev/loop9', type: 'block-device', devmajor: 7, devminor: 9, mode: 0o660 },
    { name: 'fifo', type: 'fifo', mode: 0o600 },
    { name: 'gone/.wh.file', body: '' },
    { name: 'opq/.wh..wh..opq', body: '' },
    { name: 'opq/kept', body: 'k' },
  ]);
  const dir = target();
  const tarWithCap = Buffer.concat([paxBinary(cap), data]);
  const r = await unpackLayer(Readable.from([zlib.gzipSync(tarWithCap)]), dir);
  assert.equal(r.compression, 'gzip');
  assert.equal(r.diffId, sha256(tarWithCap));
  const s = fs.lstatSync(path.join(dir, 'd', 'suid'));
  assert.equal(s.mode & 0o7777, 0o4755);
  assert.equal(s.uid, 1000);
  assert.equal(s.mtime.getTime(), mtime.getTime());
  assert.equal(s.nlink, 2);
  assert.deepEqual(lgetxattr(path.join(dir, 'd', 'suid'), 'user.bin'), cap);
  const d = fs.lstatSync(path.join(dir, 'd'));
  assert.equal(d.mode & 0o7777, 0o750);
  assert.equal(d.uid, 12);
  assert.equal(d.mtime.getTime(), mtime.getTime(), 'directory mtimes are set last');
  const l = fs.lstatSync(path.join(dir, 'd', 'sym'));
  assert.ok(l.isSymbolicLink() && l.uid === 5 && l.mtime.getTime() === mtime.getTime());
  const c = fs.lstatSync(path.join(dir, 'dev', 'null'));
  assert.ok(c.isCharacterDevice() && c.rdev === (1 << 8 | 3));
  assert.ok(fs.lstatSync(path.join(dir, 'dev', 'loop9')).isBlockDevice());
  assert.ok(fs.lstatSync(path.join(dir, 'fifo')).isFIFO());
  const wh = fs.lstatSync(path.join(dir, 'gone', 'file'));
  assert.ok(wh.isCharacterDevice() && wh.rdev === 0);
  assert.equal(lgetxattr(path.join(dir, 'opq'), 'trusted.overlay.opaque')?.toString(), 'y');
  assert.ok(!fs.existsSync(path.join(dir, 'opq', '.wh..wh..opq')));
});

/** A raw PAX header carrying user.bin as raw bytes (tar-stream's pack would UTF-8 encode it). */
function paxBinary(value: Buffer): Buffer {
  const rec = Buffer.concat([Buffer.from(' SCHILY.xattr.user.bin='), value, Buffer.from('\n')]);
  let len = rec.length + 2;
  while (String(len).length + rec.length !== len) len = String(len).length + rec.length;
  const record = Buffer.concat([Buffer.from(String(len)), rec]);
  const padded = Buffer.alloc(Math.ceil(record.length / 512) * 512);
  record.copy(padded);
  return Buffer.concat([paxHeaderBlock(record.length), padded]);
}

function paxHeaderBlock(size: number): Buffer {
  const b = Buffer.alloc(512);
  b.write('PaxHeaders/suid', 0);
  b.write('0000644\0', 100);
  b.write('0000000\0', 108);
  b.write('0000000\0', 116);
  b.write(size.toString(8).padStart(11, '0') + '\0', 124);
  b.write('00000000000\0', 136);
  b.write('        ', 148);
  b.write('x', 156);
  b.write('ustar\x0000', 257);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return b;
}

async function expectRefused(entries: Entry[], re: RegExp): Promise<string> {
  const dir = target();
  await assert.rejects(unpackLayer(Readable.from([await makeTar(entries)]), dir), re);
  assertOutsideUntouched();
  return dir;
}

test('hostile: `../` entries are refused', { skip }, async () => {
  const rel = path.relative(path.join(work, 'layer-xxxxxx'), secret);
  await expectRefused([{ name: rel, body: 'pwned' }], /climbs out/);
  await expectRefused([{ name: 'a/../../outside/new', body: 'pwned' }], /climbs out/);
});

test('hostile: writes through an absolute or climbing symlink stay inside', { skip }, async () => {
  const dir = target();
  const data = await makeTar([
    { name: 'abs', type: 'symlink', linkname: outside },
    { name: 'abs/secret', body: 'pwned' },
    { name: 'up', type: 'symlink', linkname: '../../../../../../../..' + outside },
    { name: 'up/new', body: 'pwned' },
    { name: 'f', type: 'symlink', linkname: secret },
    { name: 'f', body: 'replaced the link, not the target' },
  ]);
  await unpackLayer(Readable.from([data]), dir);
  assertOutsideUntouched();
  // Neutralized: the writes landed inside, where the links point when dir is /.
  assert.equal(fs.readFileSync(path.join(dir, outside, 'secret'), 'utf8'), 'pwned');
  assert.equal(fs.readFileSync(path.join(dir, outside, 'new'), 'utf8'), 'pwned');
  assert.ok(fs.lstatSync(path.join(dir, 'f')).isFile());
});

test('hostile: hardlinks to host files are refused', { skip }, async () => {
  await expectRefused([{ name: 'h', type: 'link', linkname: secret }], /does not exist in the layer/);
  await expectRefused([{ name: 'l', type: 'symlink', linkname: outside }, { name: 'h', type: 'link', linkname: 'l/secret' }], /does not exist in the layer|not in this layer/);
  await expectRefused([{ name: 'h', type: 'link', linkname: '../outside/secret' }], /climbs out/);
});

test('hostile: huge headers are refused', { skip }, async () => {
  // A PAX header bigger than tar-stream's 4 MiB limit.
  await expectRefused([{ name: 'big', body: 'x', pax: { comment: 'y'.repeat(5 << 20) } } as Entry], /exceeds max size/);
  // A name longer than PATH_MAX (through a PAX path).
  await expectRefused([{ name: 'a/'.repeat(3000) + 'f', body: 'x' }], /longer than 4096/);
  // Whiteouts of `.` or `..`.
  await expectRefused([{ name: 'x/.wh..', body: '' }], /bad whiteout/);
});

test('truncated layers are refused; a missing end-of-archive is accepted', { skip }, async () => {
  const data = await makeTar([{ name: 'f', body: 'hello world' }]);
  const dir = target();
  await assert.rejects(unpackLayer(Readable.from([data.subarray(0, 512 + 5)]), dir), /Unexpected end of data/);
  const r = await unpackLayer(Readable.from([data.subarray(0, 512 + 11)]), target());
  assert.equal(r.entries, 1);
});

test('a layer whose diff_id does not match the config is not committed as a snapshot', { skip }, async () => {
  const data = await makeTar([{ name: 'f', body: 'hello' }]);
  const root = target();
  const snaps = new Snapshots(root);
  const wrong = sha256('not this layer');
  await assert.rejects(
    snaps.create(wrong, async (tmp) => (await unpackLayer(Readable.from([data]), tmp)).diffId),
    (e: Error & { code?: string }) => e.code === 'EDIGEST' && /diff_id/.test(e.message),
  );
  assert.ok(!snaps.has(wrong));
  assert.deepEqual(fs.readdirSync(path.join(root, 'snapshots', 'tmp')), [], 'the unpacked temp dir is removed');
  assert.equal(await snaps.create(sha256(data), async (tmp) => (await unpackLayer(Readable.from([data]), tmp)).diffId), 'created');
});
