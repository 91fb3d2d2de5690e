// `mycontainer kube server`: one process, as `k3s server`: the cluster's
// certificates, the storage (SQLite or etcd), the API server, the
// controllers, the scheduler, and the node agent on a CRI server (our own,
// started here, unless --container-runtime-endpoint names another) with
// the service proxy and the cluster DNS. This file only wires them; each
// part is its own module.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startApiServer } from './api/server';
import { Client } from './client';
import { startGarbageCollector } from './controllers/gc';
import { startReplicaControllers } from './controllers/replicas';
import { startEndpointsController } from './controllers/endpoints';
import { startDeploymentController } from './controllers/deployment';
import { startQuotaController } from './controllers/quota';
import { startStatefulSetController } from './controllers/statefulset';
import { startNodeLifecycleController } from './controllers/node-lifecycle';
import { startScheduler } from './scheduler/scheduler';
import { createHash } from 'node:crypto';
import { Rest } from './api/rest';
import { RESOURCES, keyOf } from './api/resources';
import { ensurePki, kubeconfig } from './pki';
import { SqliteStore } from './storage/sqlite';
import type { Store } from './storage/types';

export interface KubeServerOptions {
  /** k3s's --data-dir: certificates, the database. */
  dataDir: string;
  /** --datastore-endpoint: etcd's client URL(s); none, SQLite in DATA_DIR/db/state.db. */
  datastoreEndpoint?: string | undefined;
  /** --bind-address (k3s's default 0.0.0.0; ours 127.0.0.1 until the node agent needs more). */
  bindAddress: string;
  /** --https-listen-port (6443). 0: any free port. */
  port: number;
  /** --write-kubeconfig: where the admin kubeconfig goes (also DATA_DIR/kubeconfig.yaml). */
  writeKubeconfig?: string | undefined;
  /** --container-runtime-endpoint: the CRI server the node agent drives; without it, our own in this process (`embeddedRuntime`). */
  criEndpoint?: string | undefined;
  /** k3s's --disable-agent: no node agent, no runtime. */
  disableAgent?: boolean | undefined;
  /** The CRI server to start in this process when no endpoint is given; undefined with no endpoint: no node agent (an API-only server). */
  embeddedRuntime?: Omit<import('./node/runtime').EmbeddedRuntimeOptions, 'dataDir' | 'id'> | undefined;
  /** --node-name (the host's name). */
  nodeName?: string | undefined;
  /** Where pods' logs go (/var/log/pods). */
  podLogDir?: string | undefined;
  /** k3s's --service-cidr and --service-node-port-range. */
  serviceNetwork?: import('./api/allocate').ServiceNetwork | undefined;
  /** kube-controller-manager's --node-monitor-grace-period: a node silent this long is Unknown and tainted (40 s). */
  nodeMonitorGracePeriodMs?: number | undefined;
  log?: (line: string) => void;
}

export interface KubeServer {
  port: number;
  kubeconfigPath: string;
  close(): Promise<void>;
}

/** The namespaces every cluster has, made on the first start. */
function bootstrap(store: Store): void {
  const ns = RESOURCES.find((r) => r.kind === 'Namespace');
  if (!ns) return;
  const rest = new Rest(store);
  for (const name of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
    if (store.get(keyOf(ns, null, name))) continue;
    rest.handle({ method: 'POST', target: { type: ns, namespace: null }, query: new URLSearchParams(), table: false, body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } }, contentType: 'application/json' });
  }
}

/** etcd when --datastore-endpoint names one (its client loads only then), else SQLite in the data dir. */
function openStore(o: KubeServerOptions): Store {
  if (!o.datastoreEndpoint) return new SqliteStore(path.join(o.dataDir, 'db', 'state.db'));
  const { EtcdStore, DEFAULT_ETCD_PREFIX } = require('./storage/etcd') as typeof import('./storage/etcd');
  // one server per prefix: two would both run the controllers on the same objects
  const store = new EtcdStore(o.datastoreEndpoint, { owner: `${os.hostname()} pid ${process.pid} (--data-dir ${path.resolve(o.dataDir)})` });
  o.log?.(`storage: etcd at ${o.datastoreEndpoint}, keys under ${DEFAULT_ETCD_PREFIX}/registry/`);
  return store;
}

/** The id in this server's iptables chain names: its data dir's, so that two servers never share rules. */
export function proxyId(dataDir: string): string {
  return createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 4);
}

/** The admin kubeconfig's path in a data dir. */
export function kubeconfigPath(dataDir: string): string {
  return path.join(dataDir, 'kubeconfig.yaml');
}

export async function startKubeServer(o: KubeServerOptions): Promise<KubeServer> {
  const store = openStore(o); // first: an etcd that does not answer leaves nothing made
  let pki: ReturnType<typeof ensurePki>;
  try {
    fs.mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
    pki = ensurePki(o.dataDir, [o.bindAddress]);
    bootstrap(store);
  } catch (e) {
    store.close();
    throw e;
  }
  let api: Awaited<ReturnType<typeof startApiServer>>;
  try {
    api = await startApiServer({ store, tls: { key: pki.serverKey, cert: pki.serverCert, ca: pki.ca }, host: o.bindAddress, port: o.port, log: o.log });
  } catch (e) {
    store.close();
    throw new Error(`cannot start the API server on ${o.bindAddress}:${o.port}: ${(e as Error).message}`);
  }
  if (o.serviceNetwork) api.rest.serviceNetwork = o.serviceNetwork;
  // The controllers, in this process, through the same API handlers as kubectl.
  const client = new Client(store);
  const log = o.log ?? ((): void => {});
  const controllers = [startReplicaControllers(client, log), startGarbageCollector(client, log), startEndpointsController(client, log), startDeploymentController(client, log), startQuotaController(client, log), startStatefulSetController(client, log), startNodeLifecycleController(client, log, o.nodeMonitorGracePeriodMs), startScheduler(client, log)];
  let agent: import('./node/agent').NodeAgent | null = null;
  let cri: import('./node/cri-client').CriClient | null = null;
  let runtime: import('./node/runtime').EmbeddedRuntime | null = null;
  if (!o.criEndpoint && o.embeddedRuntime) {
    const { startEmbeddedRuntime } = require('./node/runtime') as typeof import('./node/runtime');
    try {
      runtime = await startEmbeddedRuntime({ ...o.embeddedRuntime, dataDir: o.dataDir, id: proxyId(o.dataDir) }, log);
    } catch (e) {
      for (const stop of controllers) stop();
      await api.close();
      store.close();
      throw new Error(`cannot start the container runtime (CRI server): ${(e as Error).message}`);
    }
    o = { ...o, criEndpoint: runtime.endpoint };
    log(`container runtime: our CRI server at ${runtime.endpoint}`);
  }
  if (o.criEndpoint && !o.disableAgent) {
    const { connectCri } = require('./node/cri-client') as typeof import('./node/cri-client');
    const { startNodeAgent, DEFAULT_POD_LOG_DIR } = require('./node/agent') as typeof import('./node/agent');
    cri = connectCri(o.criEndpoint);
    let dns: import('./node/dns').ClusterDns | null = null;
    agent = startNodeAgent(client, cri, { nodeName: o.nodeName ?? os.hostname(), podLogDir: o.podLogDir ?? DEFAULT_POD_LOG_DIR, podDir: path.join(o.dataDir, 'pods'), log, dns: (ns) => dns?.config(ns) ?? null });
    // kube-proxy's job, with the node agent: services in this host's iptables.
    const { startServiceProxy } = require('./node/proxy') as typeof import('./node/proxy');
    controllers.push(startServiceProxy(client, proxyId(o.dataDir), log));
    // Cluster DNS: dnsmasq on this node's address, as kube-dns.kube-system (the service network's .10).
    const { startClusterDns } = require('./node/dns') as typeof import('./node/dns');
    const { internalIp } = require('./node/agent') as typeof import('./node/agent');
    const { nthAddress, DEFAULT_SERVICE_NETWORK } = require('./api/allocate') as typeof import('./api/allocate');
    const dnsDir = path.join('/run', `mycontainer-kube-${proxyId(o.dataDir)}`);
    try {
      dns = await startClusterDns(client, { dir: dnsDir, nodeIp: internalIp(), serviceIp: nthAddress((o.serviceNetwork ?? DEFAULT_SERVICE_NETWORK).cidr, 10), log });
      const d = dns;
      controllers.push(() => {
        d.stop();
        fs.rmSync(dnsDir, { recursive: true, force: true });
      });
    } catch (e) {
      log(`cluster DNS not started: ${(e as Error).message} (is dnsmasq installed?)`);
    }
  }
  if (agent) {
    const a = agent;
    api.podStream = (kind, pod, q) => a.streamUrl(kind, pod, q);
  }
  if (agent) {
    const { logFile, streamLog } = require('./node/logs') as typeof import('./node/logs');
    const { DEFAULT_POD_LOG_DIR } = require('./node/agent') as typeof import('./node/agent');
    const root = o.podLogDir ?? DEFAULT_POD_LOG_DIR;
    api.rest.podLogs = (pod, q, res, alive) => {
      const opts = { container: q.get('container') ?? undefined, previous: q.get('previous') === 'true', follow: q.get('follow') === 'true', tailLines: q.has('tailLines') ? Number(q.get('tailLines')) : undefined, timestamps: q.get('timestamps') === 'true' };
      streamLog(res, logFile(root, pod, opts), opts, alive);
    };
  }
  const host = o.bindAddress === '0.0.0.0' ? '127.0.0.1' : o.bindAddress;
  const config = kubeconfig(pki, `https://${host}:${api.port}`);
  const file = kubeconfigPath(o.dataDir);
  fs.writeFileSync(file, config, { mode: 0o600 });
  if (o.writeKubeconfig) {
    fs.mkdirSync(path.dirname(o.writeKubeconfig), { recursive: true });
    fs.writeFileSync(o.writeKubeconfig, config, { mode: 0o600 });
  }
  return {
    port: api.port,
    kubeconfigPath: file,
    close: async () => {
      for (const stop of controllers) stop();
      await agent?.stop();
      cri?.close();
      // The pods keep running (each container has its monitor); the next start takes them back.
      await runtime?.close();
      await api.close();
      store.close();
    },
  };
}
