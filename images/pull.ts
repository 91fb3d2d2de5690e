// pull: reference → manifest → config → layers → image record.
//
//   1. resolve the reference to a manifest; an index or manifest list is
//      narrowed to the wanted platform (the host's by default);
//   2. every manifest we keep is checked against the digest we asked for;
//   3. the config is fetched, verified and stored (it lists the diff_ids);
//   4. layers, at most `concurrency` at a time: each is streamed once from
//      the registry into the store's ingest file *and* into the unpacker, so
//      download and unpack overlap. The snapshot is committed only after the
//      blob's digest and the layer's diff_id both check out. A blob or
//      snapshot already present is not fetched again; a layer shared by two
//      concurrent pulls is fetched by the one that takes its lock first;
//   5. the image record (name → manifest digest) is written last, so a
//      failed pull leaves no image behind.

import * as fs from 'node:fs';
import { PassThrough } from 'node:stream';
import { RuntimeError } from '../runtime/sys/errors';
import { recordName } from './image';
import {
  hostPlatform,
  parseImageConfig,
  parseManifest,
  selectManifest,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  type Platform,
} from './manifest';
import { formatReference, parseReference, repoName, type Reference } from './reference';
import { RegistryClient, type RegistryOptions } from './registry';
import { Snapshots } from './snapshots';
import { ContentStore, DigestMismatchError, sha256 } from './store';
import { noteAllocated, unpackLayer } from './unpack';

export type LayerStatus = 'waiting' | 'exists' | 'downloading' | 'unpacking' | 'verifying' | 'done';

export type PullEvent =
  /** A name resolved through registries.conf (resolve.ts): an alias, a search registry. */
  | { kind: 'trying'; ref: string; origin: string }
  /** `source` is set when the manifest came from elsewhere than `ref` (a mirror, a rewritten location). */
  | { kind: 'resolved'; ref: string; digest: string; layers: number; source?: string | undefined; mirror?: boolean | undefined }
  | { kind: 'layer'; digest: string; status: LayerStatus; current: number; total: number }
  | { kind: 'done'; name: string; digest: string; id: string };

export interface PullOptions {
  platform?: Platform | undefined;
  /** A client, or options for one. */
  registry?: RegistryClient | RegistryOptions | undefined;
  /** Layers fetched at once (default 3). */
  concurrency?: number | undefined;
  /** Unpack layers into snapshots (default true). */
  unpack?: boolean | undefined;
  onEvent?: ((e: PullEvent) => void) | undefined;
  onWarning?: ((msg: string) => void) | undefined;
}

export interface PullResult {
  name: string;
  ref: Reference;
  digest: string;
  indexDigest?: string | undefined;
  manifest: ImageManifest;
  config: ImageConfig;
  id: string;
}

/** Runs `fn` over items, at most `limit` at once; the first error wins (others finish). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  let failed: { e: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, i);
      } catch (e) {
        failed ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed) throw failed.e;
  return out;
}

function checkDigest(body: Buffer, expected: string | undefined, what: string): string {
  const got = sha256(body);
  if (expected !== undefined && expected.startsWith('sha256:') && got !== expected) throw new DigestMismatchError(expected, got, what);
  return got;
}

export async function pull(store: ContentStore, reference: string, opts: PullOptions = {}): Promise<PullResult> {
  const ref = parseReference(reference);
  const client = opts.registry instanceof RegistryClient ? opts.registry : new RegistryClient(opts.registry);
  const emit = opts.onEvent ?? (() => {});
  const refName = formatReference(ref);

  // 1–2. The manifest, through the index if there is one.
  const top = await client.getManifest(ref);
  const topDigest = checkDigest(top.body, ref.digest, `manifest ${refName}`);
  if (top.digest && ref.digest === undefined && top.digest !== topDigest && top.digest.startsWith('sha256:')) {
    throw new DigestMismatchError(top.digest, topDigest, `manifest ${refName} (Docker-Content-Digest)`);
  }
  let parsed = parseManifest(top.body, top.mediaType);
  let manifestBody = top.body;
  let manifestDigest = topDigest;
  let indexDigest: string | undefined;
  if (parsed.kind === 'index') {
    indexDigest = topDigest;
    await store.put(topDigest, top.body);
    const desc = selectManifest(parsed.index, opts.platform ?? hostPlatform());
    const m = await client.getManifest(ref, desc.digest);
    manifestDigest = checkDigest(m.body, desc.digest, `manifest ${desc.digest}`);
    manifestBody = m.body;
    parsed = parseManifest(m.body, m.mediaType);
    if (parsed.kind !== 'manifest') throw new RuntimeError(`${refName}: index entry ${desc.digest} is itself an index`, { code: 'EMANIFEST' });
  }
  const manifest = parsed.manifest;

  // 3. The config.
  let configBody: Buffer;
  if (store.has(manifest.config.digest)) configBody = store.read(manifest.config.digest);
  else {
    configBody = await client.getBlob(ref, manifest.config);
    checkDigest(configBody, manifest.config.digest, `config of ${refName}`);
    await store.put(manifest.config.digest, configBody);
  }
  const config = parseImageConfig(configBody);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) {
    throw new RuntimeError(`${refName}: the manifest has ${manifest.layers.length} layers but the config lists ${diffIds.length} diff_ids`, { code: 'EMANIFEST' });
  }
  const elsewhere = top.source !== undefined && top.source !== repoName(ref);
  emit({ kind: 'resolved', ref: refName, digest: manifestDigest, layers: manifest.layers.length, source: elsewhere ? top.source : undefined, mirror: elsewhere ? top.mirror : undefined });

  // 4. Layers.
  const snapshots = new Snapshots(store.root);
  const unpack = opts.unpack ?? true;
  for (const l of manifest.layers) emit({ kind: 'layer', digest: l.digest, status: 'waiting', current: 0, total: l.size });
  await mapLimit(manifest.layers, opts.concurrency ?? 3, (desc, i) =>
    fetchLayer(store, snapshots, client, ref, desc, unpack ? diffIds[i]! : undefined, emit, opts.onWarning),
  );

  // 5. The record.
  await store.put(manifestDigest, manifestBody);
  const name = recordName(reference);
  await store.setImage({ name, digest: manifestDigest, mediaType: parsed.mediaType, indexDigest, created: new Date().toISOString() });
  emit({ kind: 'done', name, digest: manifestDigest, id: manifest.config.digest });
  return { name, ref, digest: manifestDigest, indexDigest, manifest, config, id: manifest.config.digest };
}

/** Unpacks a stored blob into its snapshot. */
export async function unpackStored(store: ContentStore, snapshots: Snapshots, desc: Descriptor, diffId: string, onWarning?: (m: string) => void): Promise<void> {
  await snapshots.create(diffId, async (tmp) => (await unpackLayer(store.readStream(desc.digest), tmp, { onWarning })).diffId);
}

async function fetchLayer(
  store: ContentStore,
  snapshots: Snapshots,
  client: RegistryClient,
  ref: Reference,
  desc: Descriptor,
  diffId: string | undefined,
  emit: (e: PullEvent) => void,
  onWarning?: (m: string) => void,
): Promise<void> {
  const ev = (status: LayerStatus, current: number): void => emit({ kind: 'layer', digest: desc.digest, status, current, total: desc.size });
  const needSnap = (): boolean => diffId !== undefined && !snapshots.has(diffId);
  if (store.has(desc.digest) && !needSnap()) return ev('exists', desc.size);

  await store.lock(desc.digest, async () => {
    if (store.has(desc.digest)) {
      if (needSnap()) {
        ev('unpacking', desc.size);
        await unpackStored(store, snapshots, desc, diffId!, onWarning);
        return ev('done', desc.size);
      }
      return ev('exists', desc.size);
    }
    const ing = store.openIngest(desc.digest, desc.size);
    let lastEv = 0;
    const progress = (): void => {
      const now = Date.now();
      if (now - lastEv >= 100) {
        lastEv = now;
        ev('downloading', ing.offset);
      }
    };

    if (!needSnap()) {
      try {
        await client.downloadBlob(ref, desc, {
          get offset() {
            return ing.offset;
          },
          write: (c) => {
            ing.write(c);
            progress();
          },
          reset: () => ing.reset(),
        });
      } catch (e) {
        ing.suspend();
        throw e;
      }
      ev('verifying', desc.size);
      await ing.commitAsync();
      return ev('done', desc.size);
    }

    // Download and unpack in one pass. If the server ignores a Range request
    // after bytes already went to the unpacker, the unpack is abandoned and
    // redone from the stored blob.
    let restarted = false;
    await snapshots.create(diffId!, async (tmp) => {
      const tee = new PassThrough({ highWaterMark: 1 << 20 });
      let unpackError: unknown;
      const unpacking = unpackLayer(tee, tmp, { onWarning }).catch((e: unknown) => {
        unpackError = e;
        throw e;
      });
      unpacking.catch(() => {});
      const feed = async (c: Uint8Array): Promise<void> => {
        if (restarted) return;
        if (unpackError !== undefined) throw unpackError;
        if (!tee.write(c)) {
          await Promise.race([
            new Promise<void>((r) => tee.once('drain', r)),
            unpacking.then(
              () => {},
              () => {},
            ),
          ]);
          if (unpackError !== undefined) throw unpackError;
        }
      };
      try {
        if (ing.offset > 0) {
          // Bytes a previous, interrupted pull left in the ingest file.
          const fd = fs.openSync(ing.file, 'r');
          try {
            const buf = Buffer.allocUnsafe(1 << 20);
            for (let pos = 0; pos < ing.offset; ) {
              const n = fs.readSync(fd, buf, 0, Math.min(buf.length, ing.offset - pos), pos);
              if (n <= 0) break;
              await feed(Buffer.from(buf.subarray(0, n)));
              pos += n;
            }
          } finally {
            fs.closeSync(fd);
          }
        }
        await client.downloadBlob(ref, desc, {
          get offset() {
            return ing.offset;
          },
          write: async (c) => {
            ing.write(c);
            noteAllocated(c.length);
            progress();
            await feed(c);
          },
          reset: () => {
            if (ing.offset > 0) {
              restarted = true;
              tee.destroy();
            }
            ing.reset();
          },
        });
      } catch (e) {
        tee.destroy();
        if (e instanceof RuntimeError && e.code === 'EDIGEST') ing.abort();
        else ing.suspend();
        throw e;
      }
      ev('verifying', desc.size);
      tee.end();
      await ing.commitAsync(); // throws (and removes the data) on a digest mismatch
      ev('unpacking', desc.size);
      if (restarted) {
        await unpacking.catch(() => {});
        fs.rmSync(tmp, { recursive: true, force: true });
        fs.mkdirSync(tmp, 0o755);
        return (await unpackLayer(store.readStream(desc.digest), tmp, { onWarning })).diffId;
      }
      return (await unpacking).diffId;
    });
    ev('done', desc.size);
  });
}
