// docker system prune: stopped containers, networks no container uses,
// images no container uses (with `all`; dangling ones go in any case), and
// then the blobs and snapshots nothing refers to. Each removal is told to
// ON as it happens.

import type { ContentStore } from '../images/store';
import { readImage } from '../images/image';
import { collectGarbage } from '../images/gc';
import { ContainerStore, liveStatus, type Paths } from './containers';
import { removeContainer } from './lifecycle';
import { listNetworks, removeNetwork, DEFAULT_NETWORK } from './network';

export type PruneEvent =
  | { kind: 'container'; id: string }
  | { kind: 'network'; name: string }
  | { kind: 'image'; name: string };

export interface PruneResult {
  containers: number;
  blobs: number;
  snapshots: number;
}

export async function systemPrune(p: Paths, images: ContentStore, opts: { all: boolean }, on: (e: PruneEvent) => void): Promise<PruneResult> {
  const store = new ContainerStore(p);
  let removed = 0;
  for (const c of store.all()) {
    if (['exited', 'created', 'dead'].includes(liveStatus(c))) {
      removeContainer(p, c.id, { force: true });
      on({ kind: 'container', id: c.id });
      removed++;
    }
  }
  const used = new Set(store.all().map((c) => c.hostConfig.networkMode));
  for (const n of listNetworks(p)) {
    if (n.name !== DEFAULT_NETWORK && !used.has(n.name)) {
      removeNetwork(p, n.name);
      on({ kind: 'network', name: n.name });
    }
  }
  const inUse = new Set(store.all().map((c) => c.config.imageId));
  if (opts.all) {
    const drop = images.listImages().filter((r) => !inUse.has(readImage(images, r).id)).map((r) => r.name);
    await images.updateImages((list) => {
      for (const n of drop) list.splice(list.findIndex((r) => r.name === n), 1);
    });
    for (const n of drop) on({ kind: 'image', name: n });
  }
  const gc = await collectGarbage(images);
  return { containers: removed, blobs: gc.blobs.length, snapshots: gc.snapshots.length };
}
