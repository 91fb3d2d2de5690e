// Unpacks one layer tarball (gzip, zstd or plain, found by its magic bytes)
// into an empty directory, by streaming, and returns its diff_id (the sha256
// of the uncompressed tar).
//
// Safety: every entry name and every hardlink target is resolved inside the
// target directory by `resolveIn`, which follows symlinks already unpacked
// with the target as their root (an absolute link `/etc` means <dir>/etc, and
// `..` stops at <dir>). A name that climbs out with `../` is refused. Files are
// created with O_EXCL|O_NOFOLLOW after whatever was at their path is removed,
// so nothing is ever written through a symlink. Headers are bounded
// (tar-stream refuses long headers over 4 MiB; names over PATH_MAX are
// refused here).
//
// Whiteouts become overlayfs ones, since each layer is an overlay lower dir:
//   .wh.NAME      → NAME as a character device 0/0
//   .wh..wh..opq  → the directory gets trusted.overlay.opaque=y
//
// Metadata kept: uid/gid, mode (with setuid/setgid/sticky, applied after the
// chown that would clear them), mtime (directories last, deepest first),
// xattrs from PAX SCHILY.xattr.* records (binary-safe), hardlinks, symlinks,
// device nodes and fifos.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { promisify } from 'node:util';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import * as zlib from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import * as tar from 'tar-stream';
import { RuntimeError } from '../runtime/sys/errors';
import { mknod } from '../runtime/sys/libc';
import { lsetxattr } from './xattr';

const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const PATH_MAX = 4096;
const MAX_SYMLINKS = 40;
export type TarEntry = AsyncIterable<Buffer> & { header: tar.Header };

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

export interface UnpackResult {
  /** sha256 of the uncompressed tar stream. */
  diffId: string;
  /** Uncompressed size in bytes. */
  size: number;
  entries: number;
  compression: Compression;
}

export type Compression = 'gzip' | 'zstd' | 'none';

export interface UnpackOptions {
  /** Set owners (default: when running as root). */
  chown?: boolean | undefined;
  onWarning?: ((msg: string) => void) | undefined;
}

export class UnsafeEntryError extends RuntimeError {
  constructor(entry: string, why: string) {
    super(`refusing layer entry "${entry}": ${why}`, { code: 'EUNSAFE' });
    this.name = 'UnsafeEntryError';
  }
}

export function compressionOf(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** zstd through fzstd's streaming decoder (pure JS; Node 20 has no zstd). */
class ZstdStream extends Transform {
  private readonly d = new ZstdDecompress((data) => {
    this.push(Buffer.from(data));
  });
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.d.push(chunk);
      cb();
    } catch (e) {
      cb(new RuntimeError(`cannot decompress zstd layer: ${(e as Error).message}`, { code: 'ELAYER' }));
    }
  }
  override _flush(cb: TransformCallback): void {
    try {
      this.d.push(new Uint8Array(0), true);
      cb();
    } catch (e) {
      cb(new RuntimeError(`cannot decompress zstd layer: ${(e as Error).message}`, { code: 'ELAYER' }));
    }
  }
}

export function decompressor(kind: Compression): Transform {
  if (kind === 'gzip') return zlib.createGunzip({ chunkSize: 128 * 1024 });
  if (kind === 'zstd') return new ZstdStream();
  return new PassThrough();
}

/**
 * PAX records as tar-stream reads them, except that SCHILY.xattr.* values are
 * kept byte for byte (as latin1 strings): tar-stream decodes every value as
 * UTF-8, which mangles binary attributes such as security.capability.
 */
function decodePax(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let b = buf;
  while (b.length > 0) {
    const sp = b.indexOf(0x20);
    if (sp <= 0) break;
    const len = parseInt(b.subarray(0, sp).toString('latin1'), 10);
    if (!(len > sp + 1) || len > b.length) break;
    const rec = b.subarray(sp + 1, len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) break;
    const key = rec.subarray(0, eq).toString('utf8');
    out[key] = rec.subarray(eq + 1).toString(key.startsWith('SCHILY.xattr.') ? 'latin1' : 'utf8');
    b = b.subarray(len);
  }
  return out;
}

interface ExtractInternals {
  _header: { type: string };
  _missing: number;
  _stream: unknown;
  _finished: boolean;
  _buffer: { buffered: number };
  _final(cb: (err: Error | null) => void): void;
  _pax: Record<string, string> | null;
  _paxGlobal: Record<string, string> | null;
  _decodeLongHeader(buf: Buffer): void;
}

function binarySafePax(ex: tar.Extract): void {
  const x = ex as unknown as ExtractInternals;
  const orig = x._decodeLongHeader.bind(x);
  x._decodeLongHeader = (buf: Buffer) => {
    const t = x._header.type;
    if (t === 'pax-header') x._pax = Object.assign({}, x._paxGlobal ?? {}, decodePax(buf));
    else if (t === 'pax-global-header') x._paxGlobal = decodePax(buf);
    else orig(buf);
  };
  // Some writers (umoci 0.4) end a layer right after the last file's data,
  // without the padding to 512 bytes or the end-of-archive blocks; Go's
  // archive/tar accepts that, and so do we. A truncated entry is still refused.
  const final = x._final.bind(x);
  x._final = (cb) => {
    if (x._stream === null && x._buffer.buffered === 0 && x._missing > 0 && x._missing < 512) {
      x._finished = true;
      cb(null);
    } else final(cb);
  };
}

// Streaming makes a fresh Buffer per chunk (fetch, gunzip), hundreds of MB
// per pull. V8 frees them only at a GC, and external memory alone triggers
// one late (past 64 MiB), so RSS balloons. A scavenge alone is not enough: chunks
// in flight at that moment get promoted and wait for a full GC. So a full GC
// (a few ms: the heap is small) every 16 MiB of buffers made. Since inode
// creation moved onto this thread, 32 MiB let the bench pull peak at
// 126–145 MB; 16 MiB keeps it at 119–129 MB for ~0.1 s more CPU.
let collect: (() => void) | undefined;
let allocated = 0;
const COLLECT_EVERY = 16 << 20;

/** Notes `bytes` of short-lived buffers made; collects every 16 MiB. */
export function noteAllocated(bytes: number): void {
  allocated += bytes;
  if (allocated < COLLECT_EVERY) return;
  allocated = 0;
  if (!collect) {
    v8.setFlagsFromString('--expose-gc');
    collect = vm.runInNewContext('gc') as () => void;
  }
  collect();
}

// The syscalls that create an inode (open O_CREAT, mkdir, symlink, link)
// usually cost ~20 µs of kernel time: less than a thread-pool round trip,
// which costs this thread ~90 µs here (waking an idle pool thread on a VM).
// But on ext4 without a journal, right after a large rm, each can cost
// ~0.4 ms (recently freed inodes are skipped one by one on every
// allocation); then the pool wins, since it overlaps the creations of
// concurrent layers with this thread's tar parsing. So they run here while
// they are cheap and go to the pool while recent ones were slow, with one
// call in 8 still made here to notice when they get cheap again.
const openAsync = promisify(fs.open);
const mkdirAsync = promisify(fs.mkdir);
const symlinkAsync = promisify(fs.symlink);
const linkAsync = promisify(fs.link);
const SLOW_CREATE_US = 150;
let createCostUs = 0; // moving average of the creations made on this thread
let createCalls = 0;

function createInode<T>(here: () => T, pool: () => Promise<T>): T | Promise<T> {
  if (createCostUs > SLOW_CREATE_US && (++createCalls & 7) !== 0) return pool();
  const t0 = performance.now();
  try {
    return here();
  } finally {
    // Clamped, so that one call preempted by another process does not count as a slow spell.
    createCostUs = createCostUs * 0.9 + Math.min((performance.now() - t0) * 1000, 2 * SLOW_CREATE_US) * 0.1;
  }
}

/** Splits and checks an entry name; `[]` is the root itself. */
export function entryParts(name: string): string[] {
  if (name.includes('\0')) throw new UnsafeEntryError(name, 'NUL in name');
  if (Buffer.byteLength(name) > PATH_MAX) throw new UnsafeEntryError(name.slice(0, 64) + '…', `name longer than ${PATH_MAX} bytes`);
  const out: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (out.length === 0) throw new UnsafeEntryError(name, 'climbs out of the layer with ".."');
      out.pop();
      continue;
    }
    out.push(p);
  }
  return out;
}

/** Without an exception for ENOENT: a fresh layer's every entry misses, and a thrown error costs more than the lstat. */
function lstatOrNull(p: string): fs.Stats | null {
  return fs.lstatSync(p, { throwIfNoEntry: false }) ?? null;
}

/**
 * Resolves `parts` inside `root` as if root were `/`: symlinks met on the way
 * are followed with root as their root, `..` never leaves it. The last part
 * is followed only with `followLast`. With `mkdirs`, missing directories on
 * the way are created (0755). Returns a host path under root.
 */
export function resolveIn(root: string, parts: readonly string[], opts: { followLast?: boolean; mkdirs?: boolean } = {}): string {
  let stack: string[] = [];
  let todo = [...parts];
  let links = 0;
  while (todo.length > 0) {
    const p = todo.shift()!;
    if (p === '' || p === '.') continue;
    if (p === '..') {
      stack.pop();
      continue;
    }
    const isLast = todo.length === 0;
    const cand = path.join(root, ...stack, p);
    const st = lstatOrNull(cand);
    if (st?.isSymbolicLink() && (!isLast || opts.followLast)) {
      if (++links > MAX_SYMLINKS) throw new RuntimeError(`too many levels of symbolic links resolving "${parts.join('/')}" in ${root}`, { code: 'ELOOP' });
      const target = fs.readlinkSync(cand);
      if (target.startsWith('/')) stack = [];
      todo = [...target.split('/'), ...todo];
      continue;
    }
    if (!isLast) {
      if (st === null) {
        if (!opts.mkdirs) throw new RuntimeError(`"${parts.join('/')}": ${path.join(...stack, p)} does not exist in the layer`, { code: 'ENOENT' });
        fs.mkdirSync(cand, 0o755);
      } else if (!st.isDirectory()) {
        throw new RuntimeError(`"${parts.join('/')}": ${path.join(...stack, p)} is not a directory`, { code: 'ENOTDIR' });
      }
    }
    stack.push(p);
  }
  return path.join(root, ...stack);
}

/** PAX uid/gid (ids over ustar's 7 octal digits) win over the header's; tar-stream leaves them in h.pax. */
function paxId(h: tar.Header, key: 'uid' | 'gid', fallback: number | undefined): number {
  const v = (h.pax as Record<string, string> | null | undefined)?.[key];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : (fallback ?? 0);
}
const uidOf = (h: tar.Header): number => paxId(h, 'uid', h.uid);
const gidOf = (h: tar.Header): number => paxId(h, 'gid', h.gid);

/** Removes whatever is at p (not following symlinks). */
function removeAt(p: string, st: fs.Stats): void {
  if (st.isDirectory()) fs.rmSync(p, { recursive: true, force: true });
  else fs.unlinkSync(p);
}

/**
 * Unpacks a layer stream into `dir` (which should be empty: each layer is a
 * snapshot of its own). Rejects on the first unsafe or broken entry; the
 * caller removes `dir` then.
 */
export async function unpackLayer(input: Readable, dir: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  const doChown = opts.chown ?? process.getuid?.() === 0;
  const warn = opts.onWarning ?? (() => {});
  const hash = crypto.createHash('sha256');
  let size = 0;
  let entries = 0;
  let compression: Compression = 'none';
  const dirTimes: [string, Date][] = [];
  /** Resolved parent dirs by entry-parent key; cleared when a dir or link is replaced. */
  const parentCache = new Map<string, string>();

  const extract = tar.extract();
  binarySafePax(extract);
  // The root cause when the archive breaks: an entry being read meanwhile
  // (say, while its file is opened) only sees "Stream was destroyed".
  let extractError: unknown;
  extract.on('error', (e: Error) => (extractError ??= e));

  // Feed: input → decompressor → hash → extract. Runs beside the entry loop.
  const feed = (async () => {
    let dec: Transform | undefined;
    const pump = (async () => {
      for await (const chunk of input as AsyncIterable<Buffer>) {
        if (!dec) {
          compression = compressionOf(chunk);
          dec = decompressor(compression);
          dec.on('error', () => {}); // surfaced through the reader below
          startReader(dec);
        }
        if (!dec.write(chunk)) {
          const d = dec;
          await new Promise<void>((r, j) => {
            const ok = (): void => {
              d.off('error', bad);
              r();
            };
            const bad = (e: Error): void => {
              d.off('drain', ok);
              j(e);
            };
            d.once('drain', ok);
            d.once('error', bad);
          });
        }
      }
      if (!dec) {
        dec = decompressor('none');
        startReader(dec);
      }
      dec.end();
    })();
    let reader: Promise<void> | undefined;
    function startReader(d: Transform): void {
      reader = (async () => {
        for await (const out of d as AsyncIterable<Buffer>) {
          hash.update(out);
          size += out.length;
          noteAllocated(out.length);
          if (!extract.write(out)) {
            await new Promise<void>((r) => {
              const done = (): void => {
                extract.off('drain', done);
                extract.off('close', done);
                r();
              };
              extract.on('drain', done);
              extract.on('close', done);
            });
          }
          if (extract.destroyed) throw new RuntimeError('layer extraction stopped', { code: 'ELAYER' });
        }
        (extract as unknown as { end(): void }).end();
      })();
      // Awaited below, after the pump; if reading fails, stop the pump too.
      reader.catch((e: unknown) => d.destroy(e as Error));
    }
    await pump;
    await reader;
  })();
  feed.catch((e: unknown) => extract.destroy(e as Error));

  try {
    for await (const entry of extract) {
      entries++;
      await applyEntry(entry as unknown as TarEntry);
    }
    await feed;
  } catch (e) {
    const cause = extractError ?? e;
    extract.destroy();
    input.destroy();
    await feed.catch(() => {});
    throw cause;
  }

  for (let i = dirTimes.length - 1; i >= 0; i--) {
    const [p, t] = dirTimes[i]!;
    fs.lutimesSync(p, t, t);
  }
  return { diffId: 'sha256:' + hash.digest('hex'), size, entries, compression };

  async function drain(entry: TarEntry): Promise<void> {
    for await (const _ of entry) void _;
  }

  function parentOf(parts: string[]): string {
    const key = parts.slice(0, -1).join('/');
    const hit = parentCache.get(key);
    if (hit !== undefined) return hit;
    const p = resolveIn(dir, parts.slice(0, -1), { followLast: true, mkdirs: true });
    const st = lstatOrNull(p);
    if (st === null) fs.mkdirSync(p, 0o755);
    else if (!st.isDirectory()) throw new UnsafeEntryError(parts.join('/'), `parent ${key} is not a directory`);
    parentCache.set(key, p);
    return p;
  }

  function setXattrs(target: string, h: tar.Header): void {
    const pax = h.pax as Record<string, string> | null | undefined;
    if (!pax) return;
    for (const [k, v] of Object.entries(pax)) {
      if (!k.startsWith('SCHILY.xattr.')) continue;
      const name = k.slice('SCHILY.xattr.'.length);
      try {
        lsetxattr(target, name, Buffer.from(v, 'latin1'), `layer xattr of ${h.name}`);
      } catch (e) {
        warn(`cannot set xattr ${name} on ${h.name}: ${(e as Error).message}`);
      }
    }
  }

  function owner(target: string, h: tar.Header): void {
    if (doChown) fs.lchownSync(target, uidOf(h), gidOf(h));
  }

  async function applyEntry(entry: TarEntry): Promise<void> {
    const h = entry.header;
    const parts = entryParts(h.name);
    const mode = (h.mode ?? 0o644) & 0o7777;
    const mtime = h.mtime ?? new Date(0);

    if (parts.length === 0) {
      // "./": the layer's root directory itself.
      await drain(entry);
      if (h.type === 'directory') {
        owner(dir, h);
        fs.chmodSync(dir, mode);
        setXattrs(dir, h);
        dirTimes.push([dir, mtime]);
      }
      return;
    }
    const base = parts[parts.length - 1]!;

    if (base.startsWith(WHITEOUT_PREFIX)) {
      await drain(entry);
      const parent = parentOf(parts);
      if (base === OPAQUE_WHITEOUT) {
        lsetxattr(parent, OVERLAY_OPAQUE_XATTR, Buffer.from('y'), `opaque whiteout ${h.name}`);
        return;
      }
      if (base.startsWith(WHITEOUT_PREFIX + WHITEOUT_PREFIX)) return; // aufs metadata (.wh..wh.plnk …)
      const hidden = base.slice(WHITEOUT_PREFIX.length);
      if (hidden === '' || hidden === '.' || hidden === '..') throw new UnsafeEntryError(h.name, 'bad whiteout name');
      const target = path.join(parent, hidden);
      const st = lstatOrNull(target);
      if (st) {
        removeAt(target, st);
        parentCache.clear();
      }
      mknod(target, S_IFCHR | 0o000, 0, 0, `whiteout ${h.name}`);
      return;
    }

    const parent = parentOf(parts);
    const target = path.join(parent, base);
    const st = lstatOrNull(target);
    if (st && !(h.type === 'directory' && st.isDirectory())) {
      removeAt(target, st);
      if (st.isDirectory() || st.isSymbolicLink()) parentCache.clear();
    }

    switch (h.type) {
      case 'file':
      case 'contiguous-file': {
        const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
        const fd = await createInode(
          () => fs.openSync(target, flags, 0o600),
          () => openAsync(target, flags, 0o600),
        );
        try {
          let pos = 0;
          for await (const chunk of entry as AsyncIterable<Buffer>) {
            let done = 0;
            while (done < chunk.length) done += fs.writeSync(fd, chunk, done, chunk.length - done, pos + done);
            pos += chunk.length;
          }
          if (doChown) fs.fchownSync(fd, uidOf(h), gidOf(h));
          fs.fchmodSync(fd, mode);
        } finally {
          fs.closeSync(fd);
        }
        setXattrs(target, h);
        fs.lutimesSync(target, mtime, mtime);
        return;
      }
      case 'directory': {
        await drain(entry);
        if (!st || !st.isDirectory()) {
          await createInode(
            () => fs.mkdirSync(target, 0o700),
            () => mkdirAsync(target, 0o700),
          );
        }
        owner(target, h);
        fs.chmodSync(target, mode);
        setXattrs(target, h);
        dirTimes.push([target, mtime]);
        return;
      }
      case 'symlink': {
        await drain(entry);
        if (!h.linkname) throw new UnsafeEntryError(h.name, 'symlink without a target');
        const linkname = h.linkname;
        await createInode(
          () => fs.symlinkSync(linkname, target),
          () => symlinkAsync(linkname, target),
        );
        owner(target, h);
        setXattrs(target, h);
        fs.lutimesSync(target, mtime, mtime);
        return;
      }
      case 'link': {
        await drain(entry);
        if (!h.linkname) throw new UnsafeEntryError(h.name, 'hardlink without a target');
        const srcParts = entryParts(h.linkname);
        if (srcParts.length === 0) throw new UnsafeEntryError(h.name, 'hardlink to the root');
        // Resolved inside the layer like any name; the link itself is not followed.
        let src: string;
        try {
          src = resolveIn(dir, srcParts, { followLast: false });
        } catch (e) {
          throw new UnsafeEntryError(h.name, `hardlink target "${h.linkname}": ${(e as Error).message}`);
        }
        const sst = lstatOrNull(src);
        if (!sst) throw new UnsafeEntryError(h.name, `hardlink target "${h.linkname}" is not in this layer`);
        if (sst.isDirectory()) throw new UnsafeEntryError(h.name, `hardlink to directory "${h.linkname}"`);
        await createInode(
          () => fs.linkSync(src, target),
          () => linkAsync(src, target),
        );
        return;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        await drain(entry);
        const kind = h.type === 'fifo' ? S_IFIFO : h.type === 'character-device' ? S_IFCHR : S_IFBLK;
        mknod(target, kind | mode, h.devmajor ?? 0, h.devminor ?? 0, `layer entry ${h.name}`);
        owner(target, h);
        fs.chmodSync(target, mode);
        setXattrs(target, h);
        fs.lutimesSync(target, mtime, mtime);
        return;
      }
      default:
        await drain(entry);
        warn(`skipping layer entry ${h.name} of type ${h.type ?? 'unknown'}`);
    }
  }
}

