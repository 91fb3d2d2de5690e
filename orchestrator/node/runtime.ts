// The node's container runtime when none is named, as k3s starts its own
// containerd: our CRI server (shim/), in this process, on a socket under
// the data dir. The node agent still drives it over that socket, as it
// would drive any CRI runtime; crictl can too. Its pod network is a CNI
// bridge written into the data dir when the conf dir has none (as k3s
// writes flannel's): the first /24 of --cluster-cidr, masqueraded, with
// portmap for hostPort.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { nthAddress, parseCidr } from '../api/allocate';

export interface EmbeddedRuntimeOptions {
  /** The data dir: the socket, the CNI conf and IPAM state go under DATA_DIR/agent. */
  dataDir: string;
  /** Names the bridge: two servers on one host never share one. */
  id: string;
  /** The store the engine uses too (`mycontainer --root/--runroot`): images pulled by either are seen by both. */
  root: string;
  runroot: string;
  /** k3s's --cluster-cidr (10.42.0.0/16): this node's pods get its first /24. */
  clusterCidr: string;
  /** CNI configs; the default is DATA_DIR/agent/etc/cni/net.d, made if empty. */
  cniConfDir?: string | undefined;
  cniBinDirs?: string[] | undefined;
  registriesConf?: string | undefined;
  /** Where pods' cgroups go (kubelet's CGROUP_ROOT/kubepods). */
  cgroupParent: string;
}

export const DEFAULT_CLUSTER_CIDR = '10.42.0.0/16';

/** This node's pod subnet: the first /24 of the cluster CIDR (or the CIDR itself if smaller). */
export function nodePodSubnet(clusterCidr: string): string {
  const bits = 32 - Math.log2(parseCidr(clusterCidr).size);
  return `${nthAddress(clusterCidr, 0)}/${Math.max(bits, 24)}`;
}

/** The pod network's CNI conflist (pure): a bridge per server, host-local addresses kept in the data dir. */
export function podNetworkConflist(o: { id: string; clusterCidr: string; ipamDir: string }): Record<string, unknown> {
  return {
    cniVersion: '0.4.0',
    name: `mycontainer-kube-${o.id}`,
    plugins: [
      {
        type: 'bridge', bridge: `mck${o.id}`, isGateway: true, ipMasq: true, hairpinMode: true,
        ipam: { type: 'host-local', dataDir: o.ipamDir, ranges: [[{ subnet: nodePodSubnet(o.clusterCidr) }]], routes: [{ dst: '0.0.0.0/0' }] },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

export interface EmbeddedRuntime {
  /** unix:///…/cri.sock, for the node agent (and crictl). */
  endpoint: string;
  close(): Promise<void>;
}

export async function startEmbeddedRuntime(o: EmbeddedRuntimeOptions, log: (line: string) => void): Promise<EmbeddedRuntime> {
  const agentDir = path.join(path.resolve(o.dataDir), 'agent');
  const confDir = o.cniConfDir ?? path.join(agentDir, 'etc', 'cni', 'net.d');
  fs.mkdirSync(confDir, { recursive: true, mode: 0o755 });
  if (!fs.readdirSync(confDir).some((f) => /\.(conflist|conf|json)$/.test(f))) {
    const conf = podNetworkConflist({ id: o.id, clusterCidr: o.clusterCidr, ipamDir: path.join(agentDir, 'ipam') });
    fs.writeFileSync(path.join(confDir, '10-mycontainer-kube.conflist'), JSON.stringify(conf, null, 2) + '\n');
    log(`pod network: ${nodePodSubnet(o.clusterCidr)} on bridge mck${o.id} (${confDir})`);
  }
  const socket = path.join(agentDir, 'cri.sock');
  // the CRI server's bundle: gRPC and the engine load only here
  const { bundledOr } = require('../../runtime/container') as typeof import('../../runtime/container');
  const { startCriServer } = require(bundledOr(path.join(__dirname, '..', '..', 'shim', 'server.js'), 'cri')) as typeof import('../../shim/server');
  const { defaultOptions } = require('../../shim/options') as typeof import('../../shim/options');
  const cri = await startCriServer(defaultOptions({
    root: o.root, runroot: o.runroot, socket, cniConfDir: confDir,
    ...(o.cniBinDirs ? { cniBinDirs: o.cniBinDirs } : {}),
    registriesConf: o.registriesConf, defaultCgroupParent: o.cgroupParent,
  }), (m) => log(`cri: ${m}`));
  return { endpoint: `unix://${cri.socket}`, close: () => cri.close() };
}
