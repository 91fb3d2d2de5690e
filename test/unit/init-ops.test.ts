// The init's instruction set has two copies of its table: runtime/sys/program.ts
// and native/src/init.h. They must agree, and programs must encode as the C
// decoder reads them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OP, ProgramBuilder, encodeProgram } from '../../runtime/sys/program';

const source = path.join(__dirname, '..', '..', '..', 'native', 'src', 'init.h');

test('every op code in program.ts is the same number in init.h, and the other way round', () => {
  const c = fs.readFileSync(source, 'utf8');
  const fromC = Object.fromEntries([...c.matchAll(/^#define OP_(\w+) (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
  assert.deepEqual(fromC, { ...OP });
});

test('a program encodes its header, handlers as forward jumps, and slots', () => {
  const b = new ProgramBuilder();
  const skip = b.label();
  const fd = b.openInRoot('/r', '/proc', 'mkdir', { noSymlinks: true }, { why: 'mounts[0] /proc' });
  b.mount('proc', { slot: fd }, 'proc', 0, null, { why: 'mounts[0] /proc', on: [{ on: 'ENOENT', to: skip }] });
  b.close(fd);
  b.place(skip);
  b.sync('x');
  const ops = b.take();
  const buf = encodeProgram(ops, 1);
  assert.equal(buf.toString('latin1', 0, 4), 'MCP1');
  assert.equal(buf.readUInt32LE(4), 1);
  assert.equal(buf.readUInt32LE(8), 4);
  assert.equal(ops[0]?.store, 0, 'the first slot');
  assert.match(ops[1]?.call ?? '', /^mount\("proc", rootfs\+"\/proc", "proc", 0, NULL\)$/);
  // The mount (op 1) jumps over the close (op 2) to the sync: skip 1.
  const second = 12 + 4 + (buf.readUInt32LE(12) as number);
  const head = second + 4;
  assert.equal(buf.readUInt16LE(head), OP.MOUNT);
  assert.equal(buf.readUInt8(head + 3), 1, 'one handler');
  assert.equal(buf.readInt32LE(head + 4), 2, 'ENOENT');
  assert.equal(buf.readInt32LE(head + 8), 1, 'skip one op');
  const bad = new ProgramBuilder();
  bad.mount(null, '/', null, 0, null, { why: 'x', on: [{ on: 'EINVAL', to: bad.label() }] });
  assert.throws(() => encodeProgram(bad.take(), 0), /label not placed after it/);
});
