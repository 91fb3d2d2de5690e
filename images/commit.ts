// commit: a new image from a base image and the changes of an overlay upper
// dir, as `docker commit` makes one: the base's layers plus one layer whose
// whiteouts are in the OCI form (`.wh.NAME` for a deleted NAME,
// `DIR/.wh..wh..opq` for a directory that hides what was below), the config
// with that layer's diff_id appended, a history entry, and the caller's
// container config (with docker's --change instructions applied).
//
// The layer is written once, to a temp file under the store, hashed as it
// goes (diff_id over the uncompressed bytes), then recorded as importRootfs
// records an image. Its snapshot is made by the first container that uses it
// (ensureSnapshots unpacks it), so the layer is checked on the way back in.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { RuntimeError, wrap } from '../runtime/sys/errors';
import { openInRoot, fdPath } from '../runtime/linux/securejoin';
import * as sys from '../runtime/sys/libc';
import { putConfig, putFile } from './archive';
import { recordName, type Image } from './image';
import { MediaType, type ContainerConfig, type Descriptor, type ImageConfig } from './manifest';
import { formatReference } from './reference';
import type { ContentStore } from './store';
import { TarWriter, devNumbers, xattrsOf, type TarHeader, type TarType } from './tarwriter';

/** One entry of the upper dir, as the engine's diff found it. */
export interface LayerChange {
  /** '/'-separated, from the upper dir's top. */
  rel: string;
  st: fs.Stats;
  /** A 0/0 char device: the path is deleted. */
  whiteout: boolean;
  /** trusted.overlay.opaque: what the lowers had below it is hidden. */
  opaque: boolean;
}

export interface CommitOptions {
  /** The new image's name (`repo[:tag]`); without, an unnamed one (localhost/committed@digest). */
  name?: string | undefined;
  comment?: string | undefined;
  author?: string | undefined;
  /** The new image's container config (docker: the container's, with --change applied). */
  config: ContainerConfig;
  /** What the history says made the layer. */
  createdBy: string;
  gzip?: boolean | undefined;
}

export interface CommitResult {
  id: string;
  name: string;
  diffId: string;
}

const CHUNK = 1 << 20;

/** Writes the changes as an OCI layer tar through `tar`. File bytes are read inside `upper` (RESOLVE_IN_ROOT). */
export async function writeLayer(upper: string, changes: readonly LayerChange[], tar: TarWriter): Promise<void> {
  const links = new Map<string, string>();
  for (const c of changes) {
    const st = c.st;
    const mtime = Math.floor(st.mtimeMs / 1000);
    if (c.whiteout) {
      const dir = path.posix.dirname(c.rel);
      const name = `${dir === '.' ? '' : dir + '/'}.wh.${path.posix.basename(c.rel)}`;
      await tar.header({ name, type: 'file', mode: 0, uid: 0, gid: 0, mtime, size: 0 });
      continue;
    }
    const host = path.join(upper, c.rel);
    const base = { name: c.rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime, xattrs: xattrsOf(host) };
    const key = `${st.dev}:${st.ino}`;
    if (!st.isDirectory() && st.nlink > 1 && links.has(key)) {
      await tar.header({ ...base, type: 'link', linkname: links.get(key)! });
      continue;
    }
    if (!st.isDirectory() && st.nlink > 1) links.set(key, c.rel);
    if (st.isDirectory()) {
      await tar.header({ ...base, name: `${c.rel}/`, type: 'directory' });
      if (c.opaque) await tar.header({ name: `${c.rel}/.wh..wh..opq`, type: 'file', mode: 0, uid: 0, gid: 0, mtime, size: 0 });
    } else if (st.isFile()) {
      await writeFileEntry(upper, c.rel, { ...base, type: 'file', size: st.size }, tar);
    } else if (st.isSymbolicLink()) {
      await tar.header({ ...base, type: 'symlink', linkname: fs.readlinkSync(host) });
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const type: TarType = st.isCharacterDevice() ? 'character-device' : 'block-device';
      await tar.header({ ...base, type, ...devNumbers(st.rdev) });
    } else if (st.isFIFO()) {
      await tar.header({ ...base, type: 'fifo' });
    }
    // a socket has no tar form: docker skips it too
  }
}

/** A file's bytes, cut or padded to the size in its header (it may change while a running container is committed). */
async function writeFileEntry(upper: string, rel: string, h: TarHeader & { size: number }, tar: TarWriter): Promise<void> {
  // The container may have swapped a parent for a symlink since the walk: open inside upper only.
  const pathFd = openInRoot(upper, rel, { why: `commit ${rel}` });
  let fd: number;
  try {
    fd = fs.openSync(fdPath(pathFd), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } finally {
    sys.close(pathFd);
  }
  try {
    if (!fs.fstatSync(fd).isFile()) throw new RuntimeError(`${rel} is no longer a regular file`, { code: 'EINVAL' });
    await tar.header(h);
    let pos = 0;
    while (pos < h.size) {
      const buf = Buffer.alloc(Math.min(CHUNK, h.size - pos));
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      await tar.data(n === 0 ? buf : buf.subarray(0, n));
      pos += n === 0 ? buf.length : n;
    }
    await tar.pad(h.size);
  } finally {
    fs.closeSync(fd);
  }
}

/** Docker's layer media types, as the OCI manifest we write names them. */
function ociLayerType(mt: string): string {
  switch (mt) {
    case MediaType.dockerLayer:
      return MediaType.ociLayerGzip;
    case 'application/vnd.docker.image.rootfs.diff.tar':
      return MediaType.ociLayer;
    case MediaType.dockerForeignLayer:
      return MediaType.ociLayerNondistGzip;
    default:
      return mt;
  }
}

/** `name` as a record name; a bare `repo[:tag]` is local (localhost/repo), as podman commit names it. */
function commitName(name: string): string {
  const first = name.split('/')[0]!;
  const hasDomain = name.includes('/') && (/[.:]/.test(first) || first === 'localhost');
  return recordName(hasDomain ? name : `localhost/${name}`);
}

/** Writes the layer to a temp file, hashing its tar (diff_id) and, with gzip, compressing it. */
async function layerFile(store: ContentStore, upper: string, changes: readonly LayerChange[], gzip: boolean): Promise<{ file: string; diffId: string }> {
  const tmpDir = path.join(store.root, 'tmp');
  fs.mkdirSync(tmpDir, { recursive: true, mode: 0o700 });
  const file = path.join(tmpDir, `commit-${crypto.randomBytes(8).toString('hex')}.tar${gzip ? '.gz' : ''}`);
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'wx', 0o600);
  try {
    const writeAll = (b: Buffer): void => {
      let off = 0;
      while (off < b.length) off += fs.writeSync(fd, b, off, b.length - off);
    };
    const gz = gzip ? zlib.createGzip() : undefined;
    const gzDone = gz
      ? new Promise<void>((res, rej) => {
          gz.on('data', (b: Buffer) => writeAll(b));
          gz.on('end', res);
          gz.on('error', rej);
        })
      : Promise.resolve();
    const tar = new TarWriter(async (chunk) => {
      hash.update(chunk);
      if (!gz) return writeAll(chunk);
      if (!gz.write(chunk)) await new Promise<void>((res) => gz.once('drain', res));
    });
    await writeLayer(upper, changes, tar);
    await tar.finish();
    gz?.end();
    await gzDone;
    fs.fsyncSync(fd);
    return { file, diffId: `sha256:${hash.digest('hex')}` };
  } catch (e) {
    fs.rmSync(file, { force: true });
    throw e;
  } finally {
    fs.closeSync(fd);
  }
}

/** Records base + the upper dir's changes as a new image; returns its ID (the config's digest). */
export async function commitImage(store: ContentStore, base: Image, upper: string, changes: readonly LayerChange[], opts: CommitOptions): Promise<CommitResult> {
  const name = opts.name !== undefined ? commitName(opts.name) : undefined;
  const gzip = opts.gzip ?? false;
  const { file, diffId } = await layerFile(store, upper, changes, gzip);
  try {
    const blob = await putFile(store, file);
    const layer: Descriptor = { mediaType: gzip ? MediaType.ociLayerGzip : MediaType.ociLayer, digest: blob.digest, size: blob.size };
    const now = new Date().toISOString();
    const config: ImageConfig = {
      ...base.config,
      created: now,
      config: opts.config,
      rootfs: { type: 'layers', diff_ids: [...base.config.rootfs.diff_ids, diffId] },
      history: [
        ...(base.config.history ?? []),
        { created: now, created_by: opts.createdBy, ...(opts.author ? { author: opts.author } : {}), ...(opts.comment ? { comment: opts.comment } : {}) },
      ],
    };
    if (opts.author) config.author = opts.author;
    const { configDigest, manifest } = await putConfig(store, config, [...base.manifest.layers.map((l) => ({ ...l, mediaType: ociLayerType(l.mediaType) })), layer]);
    const manifestDigest = await store.putNew(Buffer.from(JSON.stringify(manifest)));
    const recName = name ?? formatReference({ domain: 'localhost', path: 'committed', digest: manifestDigest });
    await store.setImage({ name: recName, digest: manifestDigest, mediaType: MediaType.ociManifest, created: now });
    return { id: configDigest, name: recName, diffId };
  } catch (e) {
    throw wrap(e, `cannot commit a new image from ${base.record.name}`);
  } finally {
    fs.rmSync(file, { force: true });
  }
}

// ---- docker's --change -----------------------------------------------------------

/** Shell-like words: quotes ('' and "") group, a backslash escapes the next character. */
export function splitWords(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (quote) {
      if (ch === quote) quote = null;
      else if (ch === '\\' && quote === '"' && i + 1 < s.length) cur += s[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      has = true;
    } else if (ch === '\\' && i + 1 < s.length) {
      cur += s[++i];
      has = true;
    } else if (/\s/.test(ch)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (quote) throw new RuntimeError(`unterminated ${quote} in "${s}"`, { code: 'EINVAL' });
  if (has || cur) out.push(cur);
  return out;
}

/** CMD/ENTRYPOINT: the exec form (a JSON array) or the shell form (sh -c). */
function commandForm(rest: string, what: string): string[] {
  if (rest.trimStart().startsWith('[')) {
    let v: unknown;
    try {
      v = JSON.parse(rest);
    } catch (e) {
      throw new RuntimeError(`invalid ${what} "${rest}": not a JSON array (${(e as Error).message})`, { code: 'EINVAL' });
    }
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new RuntimeError(`invalid ${what} "${rest}": want an array of strings`, { code: 'EINVAL' });
    return v as string[];
  }
  return ['/bin/sh', '-c', rest];
}

function keyValues(rest: string, what: string): [string, string][] {
  const words = splitWords(rest);
  if (words.length === 0) throw new RuntimeError(`invalid ${what}: no value`, { code: 'EINVAL' });
  // the old form: `ENV NAME value with spaces`
  if (!words[0]!.includes('=')) {
    if (words.length < 2) throw new RuntimeError(`invalid ${what} "${rest}": want NAME=VALUE`, { code: 'EINVAL' });
    return [[words[0]!, words.slice(1).join(' ')]];
  }
  return words.map((w) => {
    const i = w.indexOf('=');
    if (i <= 0) throw new RuntimeError(`invalid ${what} "${rest}": "${w}" is not NAME=VALUE`, { code: 'EINVAL' });
    return [w.slice(0, i), w.slice(i + 1)];
  });
}

/** Applies one docker --change instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL) to `cfg`. */
export function applyChange(cfg: ContainerConfig, change: string): void {
  const m = /^\s*(\w+)\s+([\s\S]*)$/.exec(change);
  if (!m) throw new RuntimeError(`invalid --change "${change}": want INSTRUCTION ARGUMENTS`, { code: 'EINVAL' });
  const op = m[1]!.toUpperCase();
  const rest = m[2]!.trim();
  switch (op) {
    case 'CMD':
      cfg.Cmd = commandForm(rest, 'CMD');
      return;
    case 'ENTRYPOINT':
      cfg.Entrypoint = commandForm(rest, 'ENTRYPOINT');
      return;
    case 'ENV': {
      const env = new Map((cfg.Env ?? []).map((e) => [e.slice(0, e.indexOf('=') < 0 ? e.length : e.indexOf('=')), e] as [string, string]));
      for (const [k, v] of keyValues(rest, 'ENV')) env.set(k, `${k}=${v}`);
      cfg.Env = [...env.values()];
      return;
    }
    case 'LABEL':
      cfg.Labels = { ...(cfg.Labels ?? {}), ...Object.fromEntries(keyValues(rest, 'LABEL')) };
      return;
    case 'WORKDIR': {
      const w = splitWords(rest).join(' ');
      cfg.WorkingDir = w.startsWith('/') ? w : path.posix.join(cfg.WorkingDir || '/', w);
      return;
    }
    case 'USER':
      cfg.User = splitWords(rest).join(' ');
      return;
    case 'EXPOSE': {
      const ports = { ...(cfg.ExposedPorts ?? {}) };
      for (const p of splitWords(rest)) {
        if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/.test(p)) throw new RuntimeError(`invalid EXPOSE "${p}": want PORT[/tcp|udp|sctp]`, { code: 'EINVAL' });
        ports[p.includes('/') ? p : `${p}/tcp`] = {};
      }
      cfg.ExposedPorts = ports;
      return;
    }
    default:
      throw new RuntimeError(`invalid --change "${change}": ${op} is not one of CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL`, { code: 'EINVAL' });
  }
}
