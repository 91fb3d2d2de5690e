// Garbage collection: blobs and snapshots that no image record reaches.
// Snapshots that a mounted overlay still uses (a bundle's rootfs) are kept.

import * as fs from 'node:fs';
import { parseManifest } from './manifest';
import { readImage } from './image';
import { Snapshots } from './snapshots';
import type { ContentStore } from './store';

export interface GcResult {
  blobs: string[];
  snapshots: string[];
}

function mountedLowers(): string {
  try {
    return fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return '';
  }
}

export async function collectGarbage(store: ContentStore): Promise<GcResult> {
  return store.lock('gc', async () => {
    const blobs = new Set<string>();
    const diffIds = new Set<string>();
    for (const r of store.listImages()) {
      blobs.add(r.digest);
      if (r.indexDigest) {
        blobs.add(r.indexDigest);
        try {
          const idx = parseManifest(store.read(r.indexDigest));
          if (idx.kind === 'index') for (const m of idx.index.manifests) if (store.has(m.digest)) blobs.add(m.digest);
        } catch {
          // index gone: nothing more to keep
        }
      }
      try {
        const img = readImage(store, r);
        blobs.add(img.id);
        for (const l of img.manifest.layers) blobs.add(l.digest);
        for (const d of img.config.rootfs.diff_ids) diffIds.add(d);
      } catch {
        // a broken record keeps only what it names
      }
    }
    const removed: GcResult = { blobs: [], snapshots: [] };
    for (const b of store.listBlobs()) {
      if (!blobs.has(b)) {
        store.deleteBlob(b);
        removed.blobs.push(b);
      }
    }
    const snaps = new Snapshots(store.root);
    const mounts = mountedLowers();
    for (const d of snaps.list()) {
      if (diffIds.has(d) || mounts.includes(snaps.dir(d))) continue;
      snaps.remove(d);
      removed.snapshots.push(d);
    }
    return removed;
  });
}
