// A tar writer (ustar headers, PAX extended headers where ustar can't hold a
// field). Ours rather than tar-stream's pack because tar-stream writes PAX
// values as UTF-8 strings, which mangles binary xattrs (security.capability),
// and counts record lengths in characters, not bytes.
//
// PAX records are added for: names or link targets over ustar's limits or
// not ASCII, uid/gid over 7 octal digits, sizes over 11, and every xattr
// (SCHILY.xattr.NAME, the key GNU tar, Go and containerd read).

import { lgetxattr, llistxattr } from './xattr';

const BLOCK = 512;
const ZEROS = Buffer.alloc(BLOCK * 2);

export type TarType = 'file' | 'link' | 'symlink' | 'character-device' | 'block-device' | 'directory' | 'fifo';

const TYPEFLAG: Record<TarType | 'pax', string> = {
  file: '0',
  link: '1',
  symlink: '2',
  'character-device': '3',
  'block-device': '4',
  directory: '5',
  fifo: '6',
  pax: 'x',
};

export interface TarHeader {
  name: string;
  type: TarType;
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data that follow (files only). */
  size?: number | undefined;
  /** Seconds since the epoch. */
  mtime: number;
  linkname?: string | undefined;
  devmajor?: number | undefined;
  devminor?: number | undefined;
  /** xattr name → raw value. */
  xattrs?: ReadonlyMap<string, Buffer> | undefined;
}

/** Where the archive goes: a write that resolves when the bytes may be reused or more may be written. */
export type TarSink = (chunk: Buffer) => void | Promise<void>;

function octal(buf: Buffer, off: number, len: number, value: number): boolean {
  const s = Math.trunc(value).toString(8);
  if (value < 0 || s.length > len - 1) return false;
  buf.write(s.padStart(len - 1, '0'), off, len - 1, 'latin1');
  buf[off + len - 1] = 0;
  return true;
}

/** One PAX record, "LEN key=value\n", LEN counting its own digits, in bytes. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'latin1'), body]);
}

const isAscii = (s: string): boolean => /^[\x01-\x7f]*$/.test(s);

/** Splits a name into ustar prefix (≤155) + name (≤100) at a slash, if it fits. */
function splitName(name: string): [string, string] | undefined {
  if (!isAscii(name)) return undefined;
  if (name.length <= 100) return ['', name];
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    if (i <= 155 && name.length - i - 1 <= 100 && name.length - i - 1 > 0) return [name.slice(0, i), name.slice(i + 1)];
  }
  return undefined;
}

function block(h: { name: string; prefix: string; type: string; mode: number; uid: number; gid: number; size: number; mtime: number; linkname: string; devmajor: number; devminor: number }): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(h.name, 0, 100, 'utf8');
  octal(b, 100, 8, h.mode & 0o7777);
  octal(b, 108, 8, h.uid);
  octal(b, 116, 8, h.gid);
  octal(b, 124, 12, h.size);
  octal(b, 136, 12, h.mtime);
  b.fill(0x20, 148, 156);
  b.write(h.type, 156, 1, 'latin1');
  b.write(h.linkname, 157, 100, 'utf8');
  b.write('ustar\u000000', 257, 8, 'latin1');
  octal(b, 329, 8, h.devmajor);
  octal(b, 337, 8, h.devminor);
  b.write(h.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const x of b) sum += x;
  b.write(sum.toString(8).padStart(6, '0') + '\u0000 ', 148, 8, 'latin1');
  return b;
}

export class TarWriter {
  private finished = false;

  constructor(private readonly sink: TarSink) {}

  /** Writes one entry's header(s); a file's data follows through `data`, then `pad`. */
  async header(h: TarHeader): Promise<void> {
    const size = h.type === 'file' ? (h.size ?? 0) : 0;
    const pax: Buffer[] = [];
    const split = splitName(h.name);
    const linkname = h.linkname ?? '';
    if (!split) pax.push(paxRecord('path', Buffer.from(h.name, 'utf8')));
    if (!isAscii(linkname) || linkname.length > 100) pax.push(paxRecord('linkpath', Buffer.from(linkname, 'utf8')));
    if (h.uid > 0o7777777) pax.push(paxRecord('uid', Buffer.from(String(h.uid))));
    if (h.gid > 0o7777777) pax.push(paxRecord('gid', Buffer.from(String(h.gid))));
    if (size > 0o77777777777) pax.push(paxRecord('size', Buffer.from(String(size))));
    for (const [k, v] of h.xattrs ?? []) pax.push(paxRecord(`SCHILY.xattr.${k}`, v));
    const fields = {
      name: split ? split[1] : Buffer.from(h.name, 'utf8').subarray(0, 100).toString('latin1').replace(/[^\x01-\x7f]/g, '_'),
      prefix: split ? split[0] : '',
      type: TYPEFLAG[h.type],
      mode: h.mode,
      uid: h.uid > 0o7777777 ? 0 : h.uid,
      gid: h.gid > 0o7777777 ? 0 : h.gid,
      size: size > 0o77777777777 ? 0 : size,
      mtime: Math.max(0, Math.min(h.mtime, 0o77777777777)),
      linkname: isAscii(linkname) && linkname.length <= 100 ? linkname : '',
      devmajor: h.devmajor ?? 0,
      devminor: h.devminor ?? 0,
    };
    if (pax.length > 0) {
      const body = Buffer.concat(pax);
      await this.sink(block({ ...fields, name: 'PaxHeader', prefix: '', type: TYPEFLAG.pax, mode: 0o644, uid: 0, gid: 0, size: body.length, linkname: '', devmajor: 0, devminor: 0 }));
      await this.sink(body);
      await this.pad(body.length);
    }
    await this.sink(block(fields));
  }

  data(chunk: Buffer): void | Promise<void> {
    return this.sink(chunk);
  }

  /** Zeros up to the next 512-byte boundary after `size` bytes of data. */
  async pad(size: number): Promise<void> {
    const rest = size % BLOCK;
    if (rest !== 0) await this.sink(ZEROS.subarray(0, BLOCK - rest));
  }

  /** The two zero blocks that end an archive. */
  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await this.sink(Buffer.from(ZEROS));
  }
}

/** Linux's dev_t split (glibc's gnu_dev_major/minor), for a device entry's header. */
export function devNumbers(rdev: number): { devmajor: number; devminor: number } {
  const d = BigInt(rdev);
  return {
    devmajor: Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn)),
    devminor: Number((d & 0xffn) | ((d >> 12n) & ~0xffn)),
  };
}

/** A file's xattrs for its header; overlayfs' own (opaque, origin, redirect) are its bookkeeping, not the file's. */
export function xattrsOf(p: string): Map<string, Buffer> | undefined {
  const names = llistxattr(p).filter((n) => !n.startsWith('trusted.overlay.')).sort();
  if (names.length === 0) return undefined;
  const m = new Map<string, Buffer>();
  for (const n of names) {
    const v = lgetxattr(p, n);
    if (v !== undefined) m.set(n, v);
  }
  return m;
}
