// The content store: blobs by digest and image records, under one root.
//
//   <root>/blobs/sha256/<hex>        content, immutable once committed
//   <root>/ingest/sha256-<hex>       a blob being written (resumable)
//   <root>/snapshots/sha256/<hex>/   one unpacked layer per diff_id (snapshots.ts)
//   <root>/images.json               name → manifest digest
//   <root>/locks/                    per-key lock files (lock.ts)
//
// A blob is committed like containerd's local store does it: write to the
// ingest file while hashing, fsync, check size and digest, rename into
// blobs/, fsync the directory. A blob is therefore either whole and verified
// under blobs/ or absent. Writers of the same digest take a lock on it, so a
// layer shared by concurrent pulls is downloaded once.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { RuntimeError } from '../runtime/sys/errors';
import { withLock } from './lock';
import { validateDigest } from './reference';

const fsyncAsync = promisify(fs.fsync);

export const DEFAULT_ROOT = '/var/lib/mycontainer';

export interface ImageRecord {
  /** Canonical name: `docker.io/library/busybox:latest` or `repo@sha256:…`. */
  name: string;
  /** Digest of the platform manifest (not the index). */
  digest: string;
  mediaType: string;
  /** Digest of the index or manifest list the name pointed to, if any. */
  indexDigest?: string | undefined;
  /** When this record was written (pull, tag, load). */
  created: string;
}

function hexOf(digest: string): string {
  validateDigest(digest);
  const [alg, hex] = digest.split(':') as [string, string];
  if (alg !== 'sha256') throw new RuntimeError(`unsupported digest algorithm "${alg}" (only sha256)`, { code: 'EDIGEST' });
  return hex;
}

export function sha256(data: Buffer | string): string {
  return 'sha256:' + crypto.createHash('sha256').update(data).digest('hex');
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export class DigestMismatchError extends RuntimeError {
  constructor(readonly expected: string, readonly actual: string, what: string) {
    super(`digest mismatch for ${what}: expected ${expected}, got ${actual}`, { code: 'EDIGEST' });
  }
}

/**
 * A blob being written. Chunks go to the file and the hash together; `offset`
 * is how much is on disk, which is where a resumed download starts.
 */
export class Ingest {
  private hash = crypto.createHash('sha256');
  private fd: number;
  offset = 0;

  constructor(
    private readonly store: ContentStore,
    readonly digest: string,
    readonly size: number,
    readonly file: string,
  ) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    // A previous process may have left part of this blob: hash what is there
    // and go on from its end.
    const have = fs.fstatSync(this.fd).size;
    if (have > size) {
      fs.ftruncateSync(this.fd, 0);
    } else if (have > 0) {
      const buf = Buffer.allocUnsafe(1 << 20);
      let pos = 0;
      while (pos < have) {
        const n = fs.readSync(this.fd, buf, 0, Math.min(buf.length, have - pos), pos);
        if (n <= 0) break;
        this.hash.update(buf.subarray(0, n));
        pos += n;
      }
      this.offset = pos;
    }
  }

  write(chunk: Uint8Array): void {
    if (this.offset + chunk.length > this.size) {
      throw new RuntimeError(`blob ${this.digest} is longer than its descriptor's ${this.size} bytes`, { code: 'EDIGEST' });
    }
    let done = 0;
    while (done < chunk.length) done += fs.writeSync(this.fd, chunk, done, chunk.length - done, this.offset + done);
    this.hash.update(chunk);
    this.offset += chunk.length;
  }

  /** Starts over (the server ignored our Range request). */
  reset(): void {
    fs.ftruncateSync(this.fd, 0);
    this.hash = crypto.createHash('sha256');
    this.offset = 0;
  }

  /** Verifies size and digest, then renames into blobs/. On mismatch the data is removed. */
  commit(): string {
    try {
      this.verify();
      fs.fsyncSync(this.fd);
    } catch (e) {
      this.abort();
      throw e;
    }
    return this.publish();
  }

  /** commit(), with the fsync of a large blob (hundreds of ms) off the event loop, which meanwhile unpacks other layers. */
  async commitAsync(): Promise<string> {
    try {
      this.verify();
      await fsyncAsync(this.fd);
    } catch (e) {
      this.abort();
      throw e;
    }
    return this.publish();
  }

  private verify(): void {
    const actual = 'sha256:' + this.hash.digest('hex');
    if (this.offset !== this.size) {
      throw new RuntimeError(`blob ${this.digest} is ${this.offset} bytes, its descriptor says ${this.size}`, { code: 'EDIGEST' });
    }
    if (actual !== this.digest) throw new DigestMismatchError(this.digest, actual, `blob ${this.digest}`);
  }

  private publish(): string {
    fs.closeSync(this.fd);
    this.fd = -1;
    const dest = this.store.blobPath(this.digest);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.renameSync(this.file, dest);
    fsyncDir(path.dirname(dest));
    return dest;
  }

  /** Closes the file but keeps it, so a later pull resumes from here. */
  suspend(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  /** Closes and removes the partial file. */
  abort(): void {
    this.suspend();
    fs.rmSync(this.file, { force: true });
  }
}

export class ContentStore {
  constructor(readonly root: string = DEFAULT_ROOT) {}

  blobPath(digest: string): string {
    return path.join(this.root, 'blobs', 'sha256', hexOf(digest));
  }

  get lockDir(): string {
    return path.join(this.root, 'locks');
  }

  has(digest: string): boolean {
    return fs.existsSync(this.blobPath(digest));
  }

  size(digest: string): number {
    return fs.statSync(this.blobPath(digest)).size;
  }

  read(digest: string): Buffer {
    try {
      return fs.readFileSync(this.blobPath(digest));
    } catch (e) {
      throw new RuntimeError(`blob ${digest} is not in the store (${(e as Error).message})`, { code: 'ENOTFOUND', cause: e });
    }
  }

  readStream(digest: string): fs.ReadStream {
    return fs.createReadStream(this.blobPath(digest));
  }

  /** Runs fn holding the lock for `key` (e.g. a digest), across processes. */
  lock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return withLock(this.lockDir, key, fn);
  }

  /** An ingest for a blob; the caller holds the blob's lock. */
  openIngest(digest: string, size: number): Ingest {
    return new Ingest(this, digest, size, path.join(this.root, 'ingest', `sha256-${hexOf(digest)}`));
  }

  /** Writes a small blob held in memory (manifest, config), verified. */
  async put(digest: string, data: Buffer): Promise<void> {
    if (this.has(digest)) return;
    await this.lock(digest, async () => {
      if (this.has(digest)) return;
      const ing = this.openIngest(digest, data.length);
      ing.reset();
      try {
        ing.write(data);
      } catch (e) {
        ing.abort();
        throw e;
      }
      ing.commit();
    });
  }

  /** Stores data whose digest we compute (a config or manifest we wrote). */
  async putNew(data: Buffer): Promise<string> {
    const d = sha256(data);
    await this.put(d, data);
    return d;
  }

  /** Every blob digest in the store. */
  listBlobs(): string[] {
    try {
      return fs.readdirSync(path.join(this.root, 'blobs', 'sha256')).map((h) => `sha256:${h}`);
    } catch {
      return [];
    }
  }

  deleteBlob(digest: string): void {
    fs.rmSync(this.blobPath(digest), { force: true });
  }

  // ---- image records ----

  private get imagesFile(): string {
    return path.join(this.root, 'images.json');
  }

  listImages(): ImageRecord[] {
    try {
      const doc = JSON.parse(fs.readFileSync(this.imagesFile, 'utf8')) as { images?: ImageRecord[] };
      return doc.images ?? [];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new RuntimeError(`cannot read ${this.imagesFile}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Read-modify-write of the image records under a lock, written atomically. */
  async updateImages<T>(fn: (images: ImageRecord[]) => T): Promise<T> {
    return this.lock('images', async () => {
      const images = this.listImages();
      const result = fn(images);
      fs.mkdirSync(this.root, { recursive: true });
      const tmp = `${this.imagesFile}.${process.pid}.tmp`;
      const fd = fs.openSync(tmp, 'w', 0o644);
      try {
        fs.writeSync(fd, JSON.stringify({ images }, null, 2) + '\n');
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, this.imagesFile);
      return result;
    });
  }

  async setImage(rec: ImageRecord): Promise<void> {
    await this.updateImages((images) => {
      const i = images.findIndex((r) => r.name === rec.name);
      if (i >= 0) images[i] = rec;
      else images.push(rec);
    });
  }
}
