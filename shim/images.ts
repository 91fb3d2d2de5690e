// The CRI ImageService: PullImage, ListImages, ImageStatus, RemoveImage,
// ImageFsInfo, over the image store that `mycontainer` uses too (one pull
// serves both; see shim/README.md). Images are reported under the names they
// were asked by (registry.k8s.io/pause:3.9), never a mirror's; the id is the
// config's digest, as containerd reports it.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { findImage, readImage, type Image } from '../images/image';
import { ContentStore, type ImageRecord } from '../images/store';
import { parseReference } from '../images/reference';
import type { Credentials } from '../images/auth';
import type { AuthConfig__Output } from './proto/generated/runtime/v1/AuthConfig';
import type { Image as CriImage } from './proto/generated/runtime/v1/Image';
import { CriError, during, invalid, notFound } from './errors';
import { nowNanos } from './sandbox-store';

export interface ImageContext {
  store: ContentStore;
  /** Resolves a name through registries.conf (short names, aliases) to an image in the store. */
  findLocal(name: string): Image;
  /** Pulls through registries.conf (mirrors first) and records the image under the asked name. */
  pull(name: string, auth: Credentials | undefined): Promise<Image>;
  /** Whether a running or created container uses the image. */
  inUse(imageId: string): boolean;
}

/** CRI AuthConfig → the registry client's credentials (auth is base64 user:password). */
export function credentialsOf(a: AuthConfig__Output | null): Credentials | undefined {
  if (!a) return undefined;
  if (a.username || a.password) return { username: a.username, password: a.password };
  if (a.auth) {
    const s = Buffer.from(a.auth, 'base64').toString('utf8');
    const i = s.indexOf(':');
    if (i < 0) throw invalid('PullImage: auth is not base64 of user:password');
    return { username: s.slice(0, i), password: s.slice(i + 1) };
  }
  if (a.identity_token) return { identityToken: a.identity_token } as unknown as Credentials;
  if (a.registry_token) return { registryToken: a.registry_token } as unknown as Credentials;
  return undefined;
}

/** Every record of one image (its tags and digests), grouped by image id. */
function recordsById(x: ImageContext): Map<string, { image: Image; records: ImageRecord[] }> {
  const out = new Map<string, { image: Image; records: ImageRecord[] }>();
  for (const r of x.store.listImages()) {
    let img: Image;
    try {
      img = readImage(x.store, r);
    } catch {
      continue; // a record whose blobs are gone
    }
    const e = out.get(img.id);
    if (e) e.records.push(r);
    else out.set(img.id, { image: img, records: [r] });
  }
  return out;
}

function repoOf(name: string): string {
  const at = name.indexOf('@');
  if (at >= 0) return name.slice(0, at);
  const r = parseReference(name);
  return `${r.domain}/${r.path}`;
}

export function criImage(image: Image, records: readonly ImageRecord[]): CriImage {
  const tags = records.filter((r) => !r.name.includes('@')).map((r) => r.name);
  const digests = [...new Set(records.map((r) => `${repoOf(r.name)}@${r.indexDigest ?? r.digest}`))];
  const size = image.manifest.layers.reduce((n, l) => n + l.size, image.manifest.config.size);
  const user = image.config.config?.User ?? '';
  const u = user.split(':')[0] ?? '';
  return {
    id: image.id,
    repo_tags: tags,
    repo_digests: digests,
    size: String(size),
    ...(/^\d+$/.test(u) ? { uid: { value: u } } : {}),
    username: /^\d+$/.test(u) ? '' : u,
    spec: { image: image.id, annotations: {} },
    pinned: false,
  };
}

/** An image by name (through registries.conf), id or digest; null if absent. */
export function lookup(x: ImageContext, ref: string): { image: Image; records: ImageRecord[] } | null {
  let img: Image;
  try {
    img = x.findLocal(ref);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOTFOUND' || code === 'ENOENT') return null;
    if (code === 'EINVALIDREF') throw invalid(`image "${ref}": ${(e as Error).message}`);
    try {
      img = findImage(x.store, ref);
    } catch {
      return null;
    }
  }
  return recordsById(x).get(img.id) ?? { image: img, records: [img.record] };
}

export async function pullImage(x: ImageContext, ref: string, auth: AuthConfig__Output | null): Promise<string> {
  if (!ref) throw invalid('PullImage: an image is required');
  try {
    parseReference(ref);
  } catch (e) {
    throw invalid(`PullImage ${ref}: ${(e as Error).message}`);
  }
  try {
    const img = await x.pull(ref, credentialsOf(auth));
    return img.id;
  } catch (e) {
    if (e instanceof CriError) throw e;
    throw during(`PullImage ${ref}`, e);
  }
}

export function listImages(x: ImageContext, filter: string): CriImage[] {
  if (filter) {
    const hit = lookup(x, filter);
    return hit ? [criImage(hit.image, hit.records)] : [];
  }
  return [...recordsById(x).values()].map((e) => criImage(e.image, e.records));
}

export function imageStatus(x: ImageContext, ref: string): CriImage | null {
  if (!ref) throw invalid('ImageStatus: an image is required');
  const hit = lookup(x, ref);
  return hit ? criImage(hit.image, hit.records) : null;
}

/** Removes every name of the image (CRI: by id or by any name, all go). Idempotent. */
export async function removeImage(x: ImageContext, ref: string): Promise<void> {
  if (!ref) throw invalid('RemoveImage: an image is required');
  const hit = lookup(x, ref);
  if (!hit) return;
  if (x.inUse(hit.image.id)) throw new CriError(9, `RemoveImage ${ref}: the image is in use by a container`);
  const names = new Set(hit.records.map((r) => r.name));
  await x.store.updateImages((images) => {
    for (let i = images.length - 1; i >= 0; i--) if (names.has(images[i]!.name)) images.splice(i, 1);
  });
}

function du(dir: string): { bytes: number; inodes: number } {
  let bytes = 0;
  let inodes = 0;
  const walk = (d: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      inodes++;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        try {
          bytes += fs.lstatSync(p).blocks * 512;
        } catch {
          // removed meanwhile
        }
      }
    }
  };
  walk(dir);
  return { bytes, inodes };
}

export function imageFsInfo(x: ImageContext): { image_filesystems: unknown[]; container_filesystems: unknown[] } {
  const mountpoint = x.store.root;
  const blobs = du(path.join(mountpoint, 'blobs'));
  const snaps = du(path.join(mountpoint, 'snapshots'));
  return {
    image_filesystems: [{
      timestamp: nowNanos(),
      fs_id: { mountpoint },
      used_bytes: { value: String(blobs.bytes + snaps.bytes) },
      inodes_used: { value: String(blobs.inodes + snaps.inodes) },
    }],
    container_filesystems: [],
  };
}

export const notFoundImage = (op: string, ref: string): CriError => notFound(`${op}: image "${ref}" not found`);
