// Images in the store: finding one by name, digest or ID, and reading its
// manifest and config. The image ID is the config's digest, as docker has it.

import { RuntimeError } from '../runtime/sys/errors';
import { parseImageConfig, parseManifest, type ImageConfig, type ImageManifest } from './manifest';
import { formatReference, parseReference, repoName } from './reference';
import { type ContentStore, type ImageRecord } from './store';

export interface Image {
  record: ImageRecord;
  manifest: ImageManifest;
  config: ImageConfig;
  /** The config's digest. */
  id: string;
}

/** The canonical record name for a reference: `repo:tag`, else `repo@digest`. */
export function recordName(input: string): string {
  const r = parseReference(input);
  if (r.tag !== undefined) return `${repoName(r)}:${r.tag}`;
  return formatReference(r);
}

export function readImage(store: ContentStore, record: ImageRecord): Image {
  const parsed = parseManifest(store.read(record.digest), record.mediaType);
  if (parsed.kind !== 'manifest') throw new RuntimeError(`image ${record.name}: ${record.digest} is an index, not a manifest`, { code: 'EMANIFEST' });
  const config = parseImageConfig(store.read(parsed.manifest.config.digest));
  return { record, manifest: parsed.manifest, config, id: parsed.manifest.config.digest };
}

/**
 * Finds an image by name (`busybox`, `docker.io/library/busybox:latest`,
 * `repo@sha256:…`) or by ID or manifest digest, whole or a prefix of at least
 * 4 hex digits.
 */
export function findImage(store: ContentStore, nameOrId: string): Image {
  const records = store.listImages();
  let name: string | undefined;
  try {
    name = recordName(nameOrId);
  } catch {
    name = undefined;
  }
  const byName = name !== undefined ? records.find((r) => r.name === name) : undefined;
  if (byName) return readImage(store, byName);
  const hex = nameOrId.replace(/^sha256:/, '');
  if (/^[a-f0-9]{4,64}$/.test(hex)) {
    const matches = new Map<string, Image>();
    for (const r of records) {
      const img = readImage(store, r);
      if (img.id.slice(7).startsWith(hex) || r.digest.slice(7).startsWith(hex)) matches.set(img.id, img);
    }
    if (matches.size === 1) return [...matches.values()][0]!;
    if (matches.size > 1) throw new RuntimeError(`"${nameOrId}" matches ${matches.size} images; give more digits`, { code: 'EAMBIGUOUS' });
  }
  // By manifest digest in a reference: `repo@sha256:…` pulled under a tag.
  if (name?.includes('@')) {
    const digest = name.slice(name.indexOf('@') + 1);
    const r = records.find((x) => x.digest === digest || x.indexDigest === digest);
    if (r) return readImage(store, r);
  }
  throw new RuntimeError(`image "${nameOrId}" not found`, { code: 'ENOTFOUND' });
}
