// Images in and out of files:
//   save    → an OCI layout (directory), an OCI archive (tar of the layout),
//             or a docker-archive (manifest.json + config + layer tarballs);
//   load    ← any of the three, found by what the archive holds;
//   import  ← a rootfs tarball, as a one-layer image.
// Archives are read by extracting them into a temp dir under the store root
// with the layer unpacker's path rules (nothing lands outside it), then every
// blob is copied into the store with its digest checked.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { RuntimeError } from '../runtime/sys/errors';
import { recordName, type Image } from './image';
import { hostPlatform, MediaType, parseManifest, selectManifest, type Descriptor, type ImageConfig } from './manifest';
import { familiarName, formatReference, parseReference } from './reference';
import { sha256, type ContentStore } from './store';
import { compressionOf, decompressor, unpackLayer } from './unpack';

export type ArchiveFormat = 'oci-archive' | 'oci-dir' | 'docker-archive';

async function fileDigest(file: string): Promise<{ digest: string; size: number }> {
  const h = crypto.createHash('sha256');
  let size = 0;
  for await (const c of fs.createReadStream(file) as AsyncIterable<Buffer>) {
    h.update(c);
    size += c.length;
  }
  return { digest: 'sha256:' + h.digest('hex'), size };
}

/** Copies a file into the store as a blob; checks `expected` when given. */
export async function putFile(store: ContentStore, file: string, expected?: string): Promise<Descriptor> {
  const { digest, size } = await fileDigest(file);
  if (expected !== undefined && expected !== digest) throw new RuntimeError(`digest mismatch for ${file}: expected ${expected}, got ${digest}`, { code: 'EDIGEST' });
  if (!store.has(digest)) {
    await store.lock(digest, async () => {
      if (store.has(digest)) return;
      const ing = store.openIngest(digest, size);
      ing.reset();
      try {
        for await (const c of fs.createReadStream(file) as AsyncIterable<Buffer>) ing.write(c);
      } catch (e) {
        ing.abort();
        throw e;
      }
      ing.commit();
    });
  }
  return { mediaType: 'application/octet-stream', digest, size };
}

/** sha256 of a (possibly compressed) layer's uncompressed tar. */
async function diffIdOf(file: string): Promise<{ diffId: string; mediaType: string }> {
  const fd = fs.openSync(file, 'r');
  const head = Buffer.alloc(4);
  fs.readSync(fd, head, 0, 4, 0);
  fs.closeSync(fd);
  const kind = compressionOf(head);
  const h = crypto.createHash('sha256');
  await pipeline(fs.createReadStream(file), decompressor(kind), async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) h.update(c);
  });
  const mediaType = kind === 'gzip' ? MediaType.ociLayerGzip : kind === 'zstd' ? MediaType.ociLayerZstd : MediaType.ociLayer;
  return { diffId: 'sha256:' + h.digest('hex'), mediaType };
}

// ---- save ----

function entryOf(pack: tar.Pack, name: string, data: Buffer): Promise<void> {
  return new Promise((res, rej) => pack.entry({ name, size: data.length, mode: 0o644, mtime: new Date(0) }, data, (e) => (e ? rej(e) : res())));
}

async function fileEntry(pack: tar.Pack, name: string, file: string): Promise<void> {
  const size = fs.statSync(file).size;
  const sink = pack.entry({ name, size, mode: 0o644, mtime: new Date(0) });
  await pipeline(fs.createReadStream(file), sink as unknown as NodeJS.WritableStream);
}

export async function save(store: ContentStore, image: Image, output: string, format: ArchiveFormat = 'oci-archive'): Promise<void> {
  const blobs = [image.record.digest, image.manifest.config.digest, ...image.manifest.layers.map((l) => l.digest)];
  for (const b of blobs) if (!store.has(b)) throw new RuntimeError(`cannot save ${image.record.name}: blob ${b} is not in the store`, { code: 'ENOTFOUND' });
  const ref = parseReference(image.record.name);
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      {
        mediaType: image.record.mediaType,
        digest: image.record.digest,
        size: store.size(image.record.digest),
        annotations: { 'io.containerd.image.name': formatReference({ ...ref, digest: undefined }), 'org.opencontainers.image.ref.name': ref.tag ?? 'latest' },
      },
    ],
  };
  const layoutFile = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  if (format === 'oci-dir') {
    fs.mkdirSync(path.join(output, 'blobs', 'sha256'), { recursive: true });
    fs.writeFileSync(path.join(output, 'oci-layout'), layoutFile);
    for (const b of blobs) fs.copyFileSync(store.blobPath(b), path.join(output, 'blobs', 'sha256', b.slice(7)));
    fs.writeFileSync(path.join(output, 'index.json'), JSON.stringify(index));
    return;
  }
  const pack = tar.pack();
  const tmp = `${output}.${process.pid}.tmp`;
  const writing = pipeline(pack as unknown as NodeJS.ReadableStream, fs.createWriteStream(tmp));
  try {
    if (format === 'oci-archive') {
      await entryOf(pack, 'oci-layout', layoutFile);
      for (const b of blobs) await fileEntry(pack, `blobs/sha256/${b.slice(7)}`, store.blobPath(b));
      await entryOf(pack, 'index.json', Buffer.from(JSON.stringify(index)));
    } else {
      const configName = `${image.id.slice(7)}.json`;
      await fileEntry(pack, configName, store.blobPath(image.id));
      const layerNames: string[] = [];
      for (const l of image.manifest.layers) {
        const name = `${l.digest.slice(7)}.tar`;
        layerNames.push(name);
        await fileEntry(pack, name, store.blobPath(l.digest));
      }
      const tags = ref.tag !== undefined ? [familiarName({ ...ref, digest: undefined })] : [];
      await entryOf(pack, 'manifest.json', Buffer.from(JSON.stringify([{ Config: configName, RepoTags: tags, Layers: layerNames }])));
    }
    pack.finalize();
    await writing;
    fs.renameSync(tmp, output);
  } catch (e) {
    pack.destroy();
    await writing.catch(() => {});
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

// ---- load ----

async function record(store: ContentStore, name: string, manifest: object, mediaType: string, indexDigest?: string): Promise<string> {
  const body = Buffer.from(JSON.stringify(manifest));
  const digest = await store.putNew(body);
  await store.setImage({ name, digest, mediaType, indexDigest, created: new Date().toISOString() });
  return digest;
}

async function loadOciLayout(store: ContentStore, dir: string, nameOverride?: string): Promise<string[]> {
  const blob = (d: string): string => path.join(dir, 'blobs', ...d.split(':'));
  const index = parseManifest(fs.readFileSync(path.join(dir, 'index.json')), MediaType.ociIndex);
  if (index.kind !== 'index') throw new RuntimeError(`${dir}/index.json is not an image index`, { code: 'EMANIFEST' });
  // --name names one image: with several, each would be recorded under it and the last would win
  if (nameOverride && index.index.manifests.length > 1) {
    throw new RuntimeError(`cannot load ${dir} as ${nameOverride}: it holds ${index.index.manifests.length} images (load it without --name to keep their own names)`, { code: 'EINVAL' });
  }
  const names: string[] = [];
  for (const top of index.index.manifests) {
    let desc = top;
    let indexDigest: string | undefined;
    let parsed = parseManifest(fs.readFileSync(blob(desc.digest)), desc.mediaType);
    if (parsed.kind === 'index') {
      indexDigest = (await putFile(store, blob(desc.digest), desc.digest)).digest;
      desc = selectManifest(parsed.index, hostPlatform());
      parsed = parseManifest(fs.readFileSync(blob(desc.digest)), desc.mediaType);
    }
    if (parsed.kind !== 'manifest') throw new RuntimeError(`${desc.digest}: nested index`, { code: 'EMANIFEST' });
    for (const d of [parsed.manifest.config, ...parsed.manifest.layers]) await putFile(store, blob(d.digest), d.digest);
    await putFile(store, blob(desc.digest), desc.digest);
    const ann = top.annotations ?? {};
    const refName = ann['io.containerd.image.name'] ?? ann['org.opencontainers.image.ref.name'];
    let name: string;
    if (nameOverride) name = recordName(nameOverride);
    else if (refName && /[/:]/.test(refName)) name = recordName(refName);
    else if (refName) name = recordName(`localhost/${path.basename(dir).replace(/[^a-z0-9._-]/g, '') || 'image'}:${refName}`);
    else name = formatReference({ domain: 'localhost', path: 'loaded', digest: desc.digest });
    await store.setImage({ name, digest: desc.digest, mediaType: parsed.mediaType, indexDigest, created: new Date().toISOString() });
    names.push(name);
  }
  return names;
}

async function loadDockerArchive(store: ContentStore, dir: string, nameOverride?: string): Promise<string[]> {
  const list = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { Config: string; RepoTags?: string[] | null; Layers: string[] }[];
  if (nameOverride && list.length > 1) {
    throw new RuntimeError(`cannot load ${dir} as ${nameOverride}: it holds ${list.length} images (load it without --name to keep their own names)`, { code: 'EINVAL' });
  }
  const names: string[] = [];
  for (const m of list) {
    const configDesc = await putFile(store, path.join(dir, m.Config));
    const config = JSON.parse(fs.readFileSync(path.join(dir, m.Config), 'utf8')) as ImageConfig;
    const layers: Descriptor[] = [];
    for (let i = 0; i < m.Layers.length; i++) {
      const file = path.join(dir, m.Layers[i]!);
      const d = await putFile(store, file);
      const { diffId, mediaType } = await diffIdOf(file);
      if (config.rootfs.diff_ids[i] !== diffId) throw new RuntimeError(`docker-archive layer ${m.Layers[i]}: diff_id ${diffId} does not match the config's ${config.rootfs.diff_ids[i]}`, { code: 'EDIGEST' });
      layers.push({ ...d, mediaType: mediaType === MediaType.ociLayerGzip ? MediaType.dockerLayer : mediaType === MediaType.ociLayer ? 'application/vnd.docker.image.rootfs.diff.tar' : mediaType });
    }
    const manifest = { schemaVersion: 2, mediaType: MediaType.dockerManifest, config: { ...configDesc, mediaType: MediaType.dockerConfig }, layers };
    const tags = nameOverride ? [nameOverride] : (m.RepoTags ?? []);
    if (tags.length === 0) {
      const body = Buffer.from(JSON.stringify(manifest));
      tags.push(formatReference({ domain: 'localhost', path: 'loaded', digest: sha256(body) }));
    }
    for (const t of tags) {
      const name = recordName(t);
      await record(store, name, manifest, MediaType.dockerManifest);
      names.push(name);
    }
  }
  return names;
}

/** Loads an OCI layout dir, an OCI archive or a docker-archive; returns the names recorded. */
export async function load(store: ContentStore, input: string, opts: { name?: string | undefined } = {}): Promise<string[]> {
  if (fs.statSync(input).isDirectory()) {
    if (fs.existsSync(path.join(input, 'index.json'))) return loadOciLayout(store, input, opts.name);
    if (fs.existsSync(path.join(input, 'manifest.json'))) return loadDockerArchive(store, input, opts.name);
    throw new RuntimeError(`${input}: neither an OCI layout nor a docker-archive directory`, { code: 'EINVAL' });
  }
  const tmpBase = path.join(store.root, 'tmp');
  fs.mkdirSync(tmpBase, { recursive: true, mode: 0o700 });
  const dir = fs.mkdtempSync(path.join(tmpBase, 'load-'));
  try {
    await unpackLayer(fs.createReadStream(input), dir, { chown: false });
    if (fs.existsSync(path.join(dir, 'index.json')) && fs.existsSync(path.join(dir, 'blobs'))) return await loadOciLayout(store, dir, opts.name);
    if (fs.existsSync(path.join(dir, 'manifest.json'))) return await loadDockerArchive(store, dir, opts.name);
    throw new RuntimeError(`${input}: neither an OCI archive nor a docker-archive`, { code: 'EINVAL' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Stores an image config and returns it with the OCI manifest that names it and `layers` (not stored yet). */
export async function putConfig(store: ContentStore, config: ImageConfig, layers: readonly Descriptor[]): Promise<{ configDigest: string; manifest: { schemaVersion: 2; mediaType: string; config: Descriptor; layers: Descriptor[] } }> {
  const configBody = Buffer.from(JSON.stringify(config));
  const configDigest = await store.putNew(configBody);
  return {
    configDigest,
    manifest: { schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: MediaType.ociConfig, digest: configDigest, size: configBody.length }, layers: [...layers] },
  };
}

/** A rootfs tarball (plain, gzip or zstd) as a one-layer image named `name`. */
export async function importRootfs(store: ContentStore, tarball: string, name: string, opts: { cmd?: string[] | undefined; env?: string[] | undefined } = {}): Promise<string> {
  const layer = await putFile(store, tarball);
  const { diffId, mediaType } = await diffIdOf(tarball);
  const now = new Date().toISOString();
  const config: ImageConfig = {
    created: now,
    architecture: hostPlatform().architecture,
    os: 'linux',
    config: { Env: opts.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], ...(opts.cmd ? { Cmd: opts.cmd } : {}) },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created: now, created_by: `mycontainer import ${path.basename(tarball)}` }],
  };
  const { configDigest, manifest } = await putConfig(store, config, [{ ...layer, mediaType }]);
  await record(store, recordName(name), manifest, MediaType.ociManifest);
  return configDigest;
}
