// `mycontainer cri`: the CRI server as a long-lived service (kubelet's
// --container-runtime-endpoint points at its socket). Thin: flags in,
// startCriServer out; SIGTERM and SIGINT close the socket and exit, leaving
// every pod and container running (they are on disk and have their own
// monitors: the next start picks them up).

import * as path from 'node:path';
import type { CommandModule } from 'yargs';
import { bundledOr } from '../runtime/container';
import { DEFAULT_SOCKET, defaultOptions } from './options';

interface CriFlags {
  root: string;
  runroot: string;
  socket: string;
  'cni-conf-dir': string;
  'cni-bin-dir': string[];
  'cgroup-manager': string;
  'registries-conf'?: string;
  'stream-address': string;
  'stream-port': number;
  'default-cgroup-parent': string;
}

export const criCommand: CommandModule<object, CriFlags> = {
  command: 'cri',
  describe: 'serve the CRI runtime.v1 API (RuntimeService, ImageService) for kubelet and crictl',
  builder: (y) =>
    y
      .option('socket', { type: 'string', default: DEFAULT_SOCKET, describe: 'unix socket to listen on (mode 0660, root only)' })
      .option('cni-conf-dir', { type: 'string', default: '/etc/cni/net.d', describe: 'CNI network configs: the first one is the pod network' })
      .option('cni-bin-dir', { type: 'string', array: true, default: ['/usr/lib/cni', '/opt/cni/bin'], describe: 'where CNI plugins are' })
      .option('cgroup-manager', { type: 'string', default: 'cgroupfs', choices: ['cgroupfs'], describe: 'cgroup driver' })
      .option('registries-conf', { type: 'string', describe: 'containers-registries.conf(5) (default /etc/containers/registries.conf)' })
      .option('stream-address', { type: 'string', default: '127.0.0.1', describe: 'address of the streaming server (exec, attach, port-forward)' })
      .option('stream-port', { type: 'number', default: 0, describe: 'its port (0: any free one)' })
      .option('default-cgroup-parent', { type: 'string', default: '/mycontainer-cri', describe: 'cgroup of pods whose config names none' }) as never,
  handler: async (a) => {
    // its own bundle (dist/bundle/cri.js): gRPC stays out of every other CLI start
    const { startCriServer } = require(bundledOr(path.join(__dirname, 'server.js'), 'cri')) as typeof import('./server');
    const opts = defaultOptions({
      root: a.root, runroot: a.runroot, socket: a.socket, cniConfDir: a['cni-conf-dir'], cniBinDirs: a['cni-bin-dir'].map(String),
      cgroupDriver: 'cgroupfs', registriesConf: a['registries-conf'], streamAddress: a['stream-address'], streamPort: a['stream-port'],
      defaultCgroupParent: a['default-cgroup-parent'],
    });
    const s = await startCriServer(opts, (m) => process.stderr.write(`${new Date().toISOString()} ${m}\n`));
    process.stderr.write(`mycontainer cri: serving runtime.v1 on unix://${s.socket}\n`);
    const stop = (): void => {
      void s.close().then(() => process.exit(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    await new Promise(() => undefined);
  },
};
