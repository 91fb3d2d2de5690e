// The export's tar writer, read back by tar-stream (an independent parser):
// names and link targets past ustar's limits or not ASCII go through PAX,
// so do ids too large for the octal fields; data is padded to 512 bytes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { TarWriter, type TarHeader } from '../../images/tarwriter';

async function roundTrip(entries: { h: TarHeader; data?: Buffer }[]): Promise<{ archive: Buffer; got: { h: tar.Header; data: Buffer }[] }> {
  const parts: Buffer[] = [];
  const w = new TarWriter((c) => void parts.push(Buffer.from(c)));
  for (const e of entries) {
    await w.header({ ...e.h, size: e.data?.length });
    if (e.data) {
      await w.data(e.data);
      await w.pad(e.data.length);
    }
  }
  await w.finish();
  const archive = Buffer.concat(parts);
  const ex = tar.extract();
  const got: { h: tar.Header; data: Buffer }[] = [];
  const reading = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry as AsyncIterable<Buffer>) chunks.push(c);
      got.push({ h: entry.header, data: Buffer.concat(chunks) });
    }
  })();
  Readable.from([archive]).pipe(ex);
  await reading;
  return { archive, got };
}

const base = { mode: 0o644, uid: 0, gid: 0, mtime: 1_000_000_000 };

test('ustar fields, PAX for long and non-ASCII names, links and big ids', async () => {
  const long = './' + 'd'.repeat(120) + '/' + 'f'.repeat(90);
  const veryLong = './' + 'x/'.repeat(200) + 'end';
  const { archive, got } = await roundTrip([
    { h: { ...base, name: './', type: 'directory', mode: 0o755 } },
    { h: { ...base, name: './a', type: 'file', mode: 0o4755, uid: 1234, gid: 5678 }, data: Buffer.from('hello\n') },
    { h: { ...base, name: long, type: 'file' }, data: Buffer.alloc(1000, 7) },
    { h: { ...base, name: veryLong, type: 'file' }, data: Buffer.alloc(0) },
    { h: { ...base, name: './ünï', type: 'symlink', linkname: 'l'.repeat(150) } },
    { h: { ...base, name: './h', type: 'link', linkname: './a' } },
    { h: { ...base, name: './big', type: 'file', uid: 4_000_000_000, gid: 3_000_000 }, data: Buffer.from('b') },
    { h: { ...base, name: './null', type: 'character-device', devmajor: 1, devminor: 3 } },
  ]);
  assert.equal(archive.length % 512, 0);
  assert.deepEqual(got.map((g) => g.h.name), ['./', './a', long, veryLong, './ünï', './h', './big', './null']);
  assert.equal(got[1]!.h.mode, 0o4755);
  assert.equal(got[1]!.h.uid, 1234);
  assert.equal(got[1]!.h.gid, 5678);
  assert.equal(got[1]!.h.mtime!.getTime(), 1_000_000_000_000);
  assert.equal(got[1]!.data.toString(), 'hello\n');
  assert.deepEqual(got[2]!.data, Buffer.alloc(1000, 7));
  assert.equal(got[4]!.h.linkname, 'l'.repeat(150));
  assert.equal(got[5]!.h.type, 'link');
  assert.equal(got[5]!.h.linkname, './a');
  // tar-stream leaves PAX ids in h.pax (unpack.ts applies them).
  assert.equal((got[6]!.h.pax as Record<string, string>)['uid'], '4000000000');
  assert.equal((got[6]!.h.pax as Record<string, string>)['gid'], '3000000');
  assert.equal(got[7]!.h.type, 'character-device');
  assert.equal(got[7]!.h.devmajor, 1);
  assert.equal(got[7]!.h.devminor, 3);
});

test('PAX record lengths count bytes, including their own digits', async () => {
  // A value whose record length crosses from 2 to 3 digits, with multi-byte characters.
  for (let n = 80; n < 110; n++) {
    const name = './' + 'é'.repeat(n % 40) + 'a'.repeat(n);
    const { got } = await roundTrip([{ h: { ...base, name, type: 'file' }, data: Buffer.from('x') }]);
    assert.equal(got[0]!.h.name, name);
  }
});
