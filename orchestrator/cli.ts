// `mycontainer kube`: the orchestrator's commands, as k3s's: `kube server`
// runs it all in one process; `kube kubeconfig` prints the admin kubeconfig
// of a data dir (what `k3s kubectl` reads).

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { bundledOr } from '../runtime/container';

export const DEFAULT_DATA_DIR = '/var/lib/mycontainer/kube';

interface ServerFlags {
  'service-cidr': string;
  'service-node-port-range': string;
  'container-runtime-endpoint'?: string;
  'node-name'?: string;
  'pod-log-dir': string;
  'data-dir': string;
  'bind-address': string;
  'https-listen-port': number;
  'write-kubeconfig'?: string;
  'datastore-endpoint'?: string;
}

function serviceNetwork(cidr: string, range: string): { cidr: string; nodePorts: { from: number; to: number } } {
  const m = /^(\d+)-(\d+)$/.exec(range);
  if (!m || Number(m[1]) > Number(m[2]) || Number(m[2]) > 65535) throw new Error(`kube server: --service-node-port-range "${range}": want FROM-TO, e.g. 30000-32767`);
  const { parseCidr } = require('./api/allocate') as typeof import('./api/allocate');
  parseCidr(cidr); // throws with the reason
  return { cidr, nodePorts: { from: Number(m[1]), to: Number(m[2]) } };
}

const server: CommandModule<object, ServerFlags> = {
  command: 'server',
  describe: 'run the Kubernetes API server (and, as they land, controllers, scheduler and node agent), as k3s server',
  builder: (y) =>
    y
      .option('data-dir', { type: 'string', default: DEFAULT_DATA_DIR, describe: 'certificates and the database' })
      .option('datastore-endpoint', { type: 'string', describe: 'etcd\'s client URL (http://127.0.0.1:2379, several separated by commas) to store the objects in; without it, SQLite in --data-dir' })
      .option('bind-address', { type: 'string', default: '127.0.0.1', describe: 'address the API server listens on' })
      .option('https-listen-port', { type: 'number', default: 6443, describe: 'its port (0: any free one)' })
      .option('write-kubeconfig', { type: 'string', describe: 'also write the admin kubeconfig here' })
      .option('container-runtime-endpoint', { type: 'string', describe: 'the CRI server the node agent drives (unix:///run/mycontainer/cri.sock); without it, no pods run' })
      .option('node-name', { type: 'string', describe: 'this node\'s name (the host name)' })
      .option('pod-log-dir', { type: 'string', default: '/var/log/pods', describe: 'where pods\' logs go' })
      .option('service-cidr', { type: 'string', default: '10.43.0.0/16', describe: 'the services\' cluster IPs' })
      .option('service-node-port-range', { type: 'string', default: '30000-32767', describe: 'the ports of NodePort services' }) as never,
  handler: async (a) => {
    // its own bundle (dist/bundle/kube.js): SQLite stays out of every other CLI start
    const { startKubeServer } = require(bundledOr(path.join(__dirname, 'server.js'), 'kube')) as typeof import('./server');
    const s = await startKubeServer({
      dataDir: a['data-dir'], datastoreEndpoint: a['datastore-endpoint'], bindAddress: a['bind-address'], port: a['https-listen-port'], writeKubeconfig: a['write-kubeconfig'],
      criEndpoint: a['container-runtime-endpoint'], nodeName: a['node-name'], podLogDir: a['pod-log-dir'],
      serviceNetwork: serviceNetwork(a['service-cidr'], a['service-node-port-range']),
      log: (l) => process.stderr.write(`${new Date().toISOString()} ${l}\n`),
    });
    process.stderr.write(`mycontainer kube: serving the Kubernetes API on https://${a['bind-address']}:${s.port}; kubeconfig: ${s.kubeconfigPath}\n`);
    const stop = (): void => {
      void s.close().then(() => process.exit(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    await new Promise(() => undefined);
  },
};

const kubeconfig: CommandModule<object, { 'data-dir': string }> = {
  command: 'kubeconfig',
  describe: 'print the admin kubeconfig of a running (or past) server',
  builder: (y) => y.option('data-dir', { type: 'string', default: DEFAULT_DATA_DIR }) as never,
  handler: (a) => {
    const file = path.join(a['data-dir'], 'kubeconfig.yaml');
    if (!fs.existsSync(file)) throw new Error(`kube kubeconfig: ${file} does not exist: start \`mycontainer kube server --data-dir ${a['data-dir']}\` first`);
    process.stdout.write(fs.readFileSync(file, 'utf8'));
  },
};

export const kubeCommand: CommandModule<object, object> = {
  command: 'kube <command>',
  describe: 'a Kubernetes API for manifests on this machine (as k3s)',
  builder: (y: Argv) => y.command(server as never).command(kubeconfig as never).demandCommand(1) as never,
  handler: () => {},
};
