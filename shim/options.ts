// What the CRI server is configured with (`mycontainer cri` flags), and the
// places it keeps things.
//
//   <root>            the image store, shared with `mycontainer` (one pull serves both)
//   <root>/cri/       the CRI's own namespace, as containerd's k8s.io:
//     containers/<id>/   engine records (container.json, bundle/) of CRI containers
//     sandboxes/<id>/    sandbox.json, resolv.conf, hostname, hosts
//   <runroot>/cri/    state that ends at reboot: the runtime's state (runtime/),
//                     attach sockets, netns/<id12>, the pause rootfs

import * as path from 'node:path';
import { Paths } from '../engine/containers';
import { DEFAULT_CNI_BIN_DIRS, DEFAULT_CNI_CONF_DIR } from '../engine/cni';

export const DEFAULT_SOCKET = '/run/mycontainer/cri.sock';

export interface CriOptions {
  root: string;
  runroot: string;
  socket: string;
  cniConfDir: string;
  cniBinDirs: string[];
  /** `cgroupfs` (systemd cgroup paths are not accepted yet). */
  cgroupDriver: 'cgroupfs';
  /** containers-registries.conf(5); undefined: the default file and drop-ins. */
  registriesConf: string | undefined;
  /** Where the streaming server (exec, attach, port-forward URLs) listens. */
  streamAddress: string;
  streamPort: number;
  /** The cgroup of pods whose config names none (kubelet always does). */
  defaultCgroupParent: string;
}

export function defaultOptions(over: Partial<CriOptions> = {}): CriOptions {
  return {
    root: '/var/lib/mycontainer',
    runroot: '/run/mycontainer-engine',
    socket: DEFAULT_SOCKET,
    cniConfDir: DEFAULT_CNI_CONF_DIR,
    cniBinDirs: DEFAULT_CNI_BIN_DIRS,
    cgroupDriver: 'cgroupfs',
    registriesConf: undefined,
    streamAddress: '127.0.0.1',
    streamPort: 0,
    defaultCgroupParent: '/mycontainer-cri',
    ...over,
  };
}

export class CriPaths {
  readonly engine: Paths;
  constructor(readonly opts: Pick<CriOptions, 'root' | 'runroot'>) {
    this.engine = new Paths(path.join(opts.root, 'cri'), path.join(opts.runroot, 'cri'));
  }
  get imageRoot(): string {
    return path.resolve(this.opts.root);
  }
  get sandboxes(): string {
    return path.join(this.engine.root, 'sandboxes');
  }
  sandboxDir(id: string): string {
    return path.join(this.sandboxes, id);
  }
  netns(id: string): string {
    return path.join(this.engine.netns, id.slice(0, 12));
  }
  /** The pause process's rootfs: one static binary, shared read-only by every sandbox. */
  get pauseRootfs(): string {
    return path.join(this.engine.runroot, 'pause-rootfs');
  }
  pauseBundle(id: string): string {
    return path.join(this.sandboxDir(id), 'bundle');
  }
}
