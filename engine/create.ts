// A container made from an image as docker's run and create ask for it:
// -P publishes what the image exposes, a host port 0 gets a free one, and
// the network mode is checked against the ports and the networks there are;
// then the record, the bundle and config.json (lifecycle.createContainer).

import { RuntimeError } from '../runtime/sys/errors';
import type { ContentStore } from '../images/store';
import type { Image } from '../images/image';
import type { Container, Paths } from './containers';
import { createContainer, type CreateRequest } from './lifecycle';
import { ephemeralPort, findNetwork } from './network';

export interface CreateFromImageOptions {
  /** docker's -P: every port the image exposes, on a free host port, unless published already. */
  publishAll: boolean;
}

export async function createFromImage(paths: Paths, images: ContentStore, image: Image, req: CreateRequest, opts: CreateFromImageOptions): Promise<Container> {
  const publish = req.hostConfig.portBindings;
  if (opts.publishAll) {
    for (const e of Object.keys(image.config.config?.ExposedPorts ?? {})) {
      const [port, proto] = e.split('/');
      if (!publish.some((b) => b.containerPort === Number(port))) publish.push({ hostIp: '0.0.0.0', hostPort: 0, containerPort: Number(port), protocol: (proto as 'tcp' | 'udp') ?? 'tcp' });
    }
  }
  for (const b of publish) if (b.hostPort === 0) b.hostPort = await ephemeralPort(b.hostIp);
  const network = req.hostConfig.networkMode;
  if (publish.length > 0 && (network === 'host' || network === 'none' || network.startsWith('container:'))) {
    throw new RuntimeError(`cannot publish ports with --network ${network}`, { code: 'EINVAL' });
  }
  if (!['host', 'none'].includes(network) && !network.startsWith('container:')) findNetwork(paths, network);
  return createContainer(paths, images, image, req);
}
