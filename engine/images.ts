// The images containers are made from: the content store under the
// engine's root, and docker's "find the image, or pull it" for run and
// create. What is printed (the "Unable to find" line, pull progress) is the
// caller's, through the callbacks.

import * as path from 'node:path';
import { RuntimeError } from '../runtime/sys/errors';
import { ContentStore } from '../images/store';
import { findImage, type Image } from '../images/image';
import { pull, type PullEvent } from '../images/pull';
import { fileCredentials } from '../images/auth';

/** The image store the engine shares with the image commands: <root>/... */
export function imageStore(root: string): ContentStore {
  return new ContentStore(path.resolve(root));
}

export interface ResolveImageOptions {
  /** docker's --pull: missing (the default), always, never. */
  policy: string;
  /** The image is not here and will be pulled. */
  onMissing?: ((ref: string) => void) | undefined;
  onEvent?: ((e: PullEvent) => void) | undefined;
  onWarning?: ((msg: string) => void) | undefined;
}

/** The image, pulled first if missing (docker's --pull=missing). */
export async function resolveImage(store: ContentStore, ref: string, opts: ResolveImageOptions): Promise<Image> {
  if (opts.policy !== 'always') {
    // podman's short names: `busybox` is also localhost/busybox, an image built or loaded here
    for (const name of /^[a-z0-9._-]+(:[\w.-]+)?$/.test(ref) ? [ref, `localhost/${ref}`] : [ref]) {
      try {
        return findImage(store, name);
      } catch (e) {
        if ((e as RuntimeError).code !== 'ENOTFOUND') throw e;
      }
    }
    if (opts.policy === 'never') throw new RuntimeError(`image "${ref}" not found and --pull=never`, { code: 'ENOTFOUND' });
    opts.onMissing?.(ref);
  }
  const insecure = (process.env['MYCONTAINER_INSECURE_REGISTRIES'] ?? '').split(',').filter(Boolean);
  const r = await pull(store, ref, {
    registry: { insecure, credentials: fileCredentials(undefined), userAgent: 'mycontainer/0.1' },
    onEvent: opts.onEvent,
    onWarning: opts.onWarning,
  });
  return findImage(store, r.name);
}
