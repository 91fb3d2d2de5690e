// Garbage collection: blobs and snapshots that no image record reaches.
// Snapshots that a mounted overlay still uses (a bundle's rootfs) are kept,
// and so are the lowers of every container bundle in the store
// (<root>/containers/*/bundle, the front end's), mounted or not: a stopped
// container must find its layers when it starts again.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseManifest } from './manifest';
import { readImage } from './image';
import { Snapshots } from './snapshots';
import type { ContentStore } from './store';

export interface GcResult {
  blobs: string[];
  snapshots: string[];
}

/** Lower dirs named by the rootfs records of the store's container bundles. */
function containerLowers(root: string): Set<string> {
  const out = new Set<string>();
  let ids: string[] = [];
  try {
    ids = fs.readdirSync(path.join(root, 'containers'));
  } catch {
    return out;
  }
  for (const id of ids) {
    try {
      const m = JSON.parse(fs.readFileSync(path.join(root, 'containers', id, 'bundle', 'mycontainer-rootfs.json'), 'utf8')) as { lowers?: string[] };
      for (const l of m.lowers ?? []) out.add(path.resolve(l));
    } catch {
      // no bundle (yet): nothing to keep
    }
  }
  return out;
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
    const used = containerLowers(store.root);
    for (const d of snaps.list()) {
      if (diffIds.has(d) || mounts.includes(snaps.dir(d)) || used.has(path.resolve(snaps.dir(d)))) continue;
      snaps.remove(d);
      removed.snapshots.push(d);
    }
    return removed;
  });
}
