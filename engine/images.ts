// The images containers are made from: the content store under the
// engine's root, and docker's "find the image, or pull it" for run and
// create. What is printed (the "Unable to find" line, pull progress) is the
// caller's, through the callbacks.

import * as path from 'node:path';
import { RuntimeError } from '../runtime/sys/errors';
import { ContentStore } from '../images/store';
import type { Image } from '../images/image';
import type { PullEvent } from '../images/pull';
import { findLocal, findOrPull, loadRegistriesConf } from '../images/resolve';
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
  /** containers-registries.conf(5); default $REGISTRIES_CONFIG_PATH, then /etc/containers/registries.conf. */
  registriesConf?: string | undefined;
}

/** The image, pulled first if missing (docker's --pull=missing), names resolved through registries.conf. */
export async function resolveImage(store: ContentStore, ref: string, opts: ResolveImageOptions): Promise<Image> {
  const registries = loadRegistriesConf(opts.registriesConf ?? process.env['REGISTRIES_CONFIG_PATH']);
  const policy = opts.policy === 'always' || opts.policy === 'never' ? opts.policy : 'missing';
  if (policy === 'missing') {
    try {
      return findLocal(store, ref, registries);
    } catch (e) {
      if ((e as RuntimeError).code !== 'ENOTFOUND') throw e;
    }
    opts.onMissing?.(ref);
  }
  const insecure = (process.env['MYCONTAINER_INSECURE_REGISTRIES'] ?? '').split(',').filter(Boolean);
  return findOrPull(store, ref, {
    registries,
    policy: policy === 'missing' ? 'always' : policy,
    credentials: fileCredentials(undefined),
    registry: { insecure, userAgent: 'mycontainer/0.1' },
    onEvent: opts.onEvent,
    onWarning: opts.onWarning,
  });
}
