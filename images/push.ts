// push: the image's layers and config (from the store), then its manifest
// under the destination tag. Blobs the registry has are skipped (HEAD).

import { RuntimeError } from '../runtime/sys/errors';
import type { Image } from './image';
import { parseReference, repoName } from './reference';
import { RegistryClient, type RegistryOptions } from './registry';
import type { ContentStore } from './store';

export interface PushOptions {
  registry?: RegistryClient | RegistryOptions | undefined;
  onBlob?: ((digest: string, result: 'exists' | 'pushed') => void) | undefined;
}

export async function push(store: ContentStore, image: Image, destination: string, opts: PushOptions = {}): Promise<{ digest: string; name: string }> {
  const ref = parseReference(destination);
  const client = opts.registry instanceof RegistryClient ? opts.registry : new RegistryClient(opts.registry);
  for (const desc of [...image.manifest.layers, image.manifest.config]) {
    if (!store.has(desc.digest)) throw new RuntimeError(`cannot push ${image.record.name}: blob ${desc.digest} is not in the store`, { code: 'ENOTFOUND' });
    const r = await client.pushBlob(ref, desc, () => store.readStream(desc.digest));
    opts.onBlob?.(desc.digest, r);
  }
  const body = store.read(image.record.digest);
  const tag = ref.tag ?? ref.digest ?? 'latest';
  await client.putManifest(ref, tag, image.record.mediaType, body);
  return { digest: image.record.digest, name: `${repoName(ref)}:${tag}` };
}
