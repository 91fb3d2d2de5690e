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
  'node-monitor-grace-period': string;
  'disable-agent': boolean;
  'cluster-cidr': string;
  'cni-conf-dir'?: string;
  'cni-bin-dir'?: string[];
  'registries-conf'?: string;
  'cgroup-root': string;
  root: string;
  runroot: string;
  'datastore-endpoint'?: string;
}

/** A Go-style duration as Kubernetes' flags take them: "40s", "2m", "1m30s", "500ms". */
export function durationMs(flag: string, v: string): number {
  const parts = [...v.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== v) throw new Error(`kube server: --${flag} "${v}": want a duration such as 40s, 2m or 1m30s`);
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60000, h: 3600000 };
  return parts.reduce((n, p) => n + Number(p[1]) * (unit[p[2] as string] as number), 0);
}

function serviceNetwork(cidr: string, range: string): { cidr: string; nodePorts: { from: number; to: number } } {
  const m = /^(\d+)-(\d+)$/.exec(range);
  if (!m || Number(m[1]) > Number(m[2]) || Number(m[2]) > 65535) throw new Error(`kube server: --service-node-port-range "${range}": want FROM-TO, e.g. 30000-32767`);
  const { parseCidr } = require('./api/allocate') as typeof import('./api/allocate');
  parseCidr(cidr); // throws with the reason
  return { cidr, nodePorts: { from: Number(m[1]), to: Number(m[2]) } };
}

function clusterCidr(cidr: string): string {
  const { parseCidr } = require('./api/allocate') as typeof import('./api/allocate');
  try {
    parseCidr(cidr);
  } catch {
    throw new Error(`kube server: --cluster-cidr "${cidr}": want a.b.c.d/8..30, e.g. 10.42.0.0/16`);
  }
  return cidr;
}

const server: CommandModule<object, ServerFlags> = {
  command: 'server',
  describe: 'run it all in one process, as k3s server: the Kubernetes API, controllers, scheduler, and a node agent on a CRI server (our own unless --container-runtime-endpoint)',
  builder: (y) =>
    y
      .option('data-dir', { type: 'string', default: DEFAULT_DATA_DIR, describe: 'certificates and the database' })
      .option('datastore-endpoint', { type: 'string', describe: 'etcd\'s client URL (http://127.0.0.1:2379, several separated by commas) to store the objects in; without it, SQLite in --data-dir' })
      .option('bind-address', { type: 'string', default: '127.0.0.1', describe: 'address the API server listens on' })
      .option('https-listen-port', { type: 'number', default: 6443, describe: 'its port (0: any free one)' })
      .option('write-kubeconfig', { type: 'string', describe: 'also write the admin kubeconfig here' })
      .option('container-runtime-endpoint', { type: 'string', describe: 'a CRI server for the node agent to drive (unix:///run/mycontainer/cri.sock); without it, ours runs in this process on DATA_DIR/agent/cri.sock' })
      .option('disable-agent', { type: 'boolean', default: false, describe: 'no node agent and no container runtime: the API, the controllers and the scheduler only' })
      .option('cluster-cidr', { type: 'string', default: '10.42.0.0/16', describe: 'the pods\' addresses: this node takes its first /24 (own runtime only)' })
      .option('cni-conf-dir', { type: 'string', describe: 'CNI configs of the pod network (own runtime only; default DATA_DIR/agent/etc/cni/net.d, a bridge written there if empty)' })
      .option('cni-bin-dir', { type: 'string', array: true, describe: 'where CNI plugins are (own runtime only; /usr/lib/cni, /opt/cni/bin)' })
      .option('registries-conf', { type: 'string', describe: 'containers-registries.conf(5) for pulls (own runtime only; default /etc/containers/registries.conf)' })
      .option('cgroup-root', { type: 'string', default: '/', describe: 'pods go under CGROUP_ROOT/kubepods (own runtime only), as kubelet\'s --cgroup-root' })
      .option('node-name', { type: 'string', describe: 'this node\'s name (the host name)' })
      .option('pod-log-dir', { type: 'string', default: '/var/log/pods', describe: 'where pods\' logs go' })
      .option('service-cidr', { type: 'string', default: '10.43.0.0/16', describe: 'the services\' cluster IPs' })
      .option('service-node-port-range', { type: 'string', default: '30000-32767', describe: 'the ports of NodePort services' })
      .option('node-monitor-grace-period', { type: 'string', default: '40s', describe: 'a node that posts no status this long is NotReady (Unknown) and tainted unreachable' }) as never,
  handler: async (a) => {
    // its own bundle (dist/bundle/kube.js): SQLite stays out of every other CLI start
    const { startKubeServer } = require(bundledOr(path.join(__dirname, 'server.js'), 'kube')) as typeof import('./server');
    const s = await startKubeServer({
      dataDir: a['data-dir'], datastoreEndpoint: a['datastore-endpoint'], bindAddress: a['bind-address'], port: a['https-listen-port'], writeKubeconfig: a['write-kubeconfig'],
      criEndpoint: a['container-runtime-endpoint'], nodeName: a['node-name'], podLogDir: a['pod-log-dir'],
      serviceNetwork: serviceNetwork(a['service-cidr'], a['service-node-port-range']),
      nodeMonitorGracePeriodMs: durationMs('node-monitor-grace-period', a['node-monitor-grace-period']),
      disableAgent: a['disable-agent'],
      embeddedRuntime: a['container-runtime-endpoint'] || a['disable-agent'] ? undefined : {
        root: a.root, runroot: a.runroot, clusterCidr: clusterCidr(a['cluster-cidr']), cniConfDir: a['cni-conf-dir'],
        cniBinDirs: a['cni-bin-dir']?.map(String), registriesConf: a['registries-conf'], cgroupParent: path.posix.join(a['cgroup-root'], 'kubepods'),
      },
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
