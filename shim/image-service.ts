// ImageService, one handler per RPC, over images.ts; and the
// registries.conf the server reads once at start.

import type { ContentStore } from '../images/store';
import type { Image } from '../images/image';
import * as img from './images';
import type { Handler } from './runtime-service';

export function imageHandlers(imgx: img.ImageContext): Record<string, Handler> {
  return {
    PullImage: async (r: { image: { image: string } | null; auth: Parameters<typeof img.pullImage>[2] }) => ({ image_ref: await img.pullImage(imgx, r.image?.image ?? '', r.auth) }),
    ListImages: (r: { filter: { image: { image: string } | null } | null }) => ({ images: img.listImages(imgx, r.filter?.image?.image ?? '') }),
    ImageStatus: (r: { image: { image: string } | null; verbose: boolean }) => {
      const image = img.imageStatus(imgx, r.image?.image ?? '');
      return { image, info: {} };
    },
    RemoveImage: async (r: { image: { image: string } | null }) => {
      await img.removeImage(imgx, r.image?.image ?? '');
      return {};
    },
    ImageFsInfo: () => img.imageFsInfo(imgx),
  };
}

/** registries.conf through images/ (mirrors, short names, aliases), read once at start. */
export async function loadRegistries(file: string | undefined, log: (m: string) => void): Promise<{ findLocal(store: ContentStore, name: string): Image; pull(store: ContentStore, name: string, auth: import('../images/auth').Credentials | undefined): Promise<Image> }> {
  const { loadRegistriesConf, findLocal, findOrPull } = await import('../images/resolve');
  const { fileCredentials } = await import('../images/auth');
  const conf = loadRegistriesConf(file);
  for (const w of conf.warnings ?? []) log(`warning: ${w}`);
  return {
    findLocal: (store, name) => findLocal(store, name, conf),
    // kubelet decides the pull policy: a PullImage always pulls
    pull: (store, name, auth) => findOrPull(store, name, {
      registries: conf, policy: 'always', credentials: fileCredentials(undefined), auth,
      registry: { userAgent: 'mycontainer-cri/0.1' }, onWarning: (m) => log(`warning: ${m}`),
    }),
  };
}

