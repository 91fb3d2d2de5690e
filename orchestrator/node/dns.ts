// Cluster DNS: NAME.NAMESPACE.svc.cluster.local for every service (its
// cluster IP, or its pods' IPs when headless), HOSTNAME.SUBDOMAIN.NAMESPACE.svc.cluster.local
// for pods that set both (StatefulSets do), and the host's resolvers for
// everything else. Debian's dnsmasq serves it, fed a hosts file that is
// rewritten (then SIGHUP) when services, endpoints or pods change: a
// maintained DNS server rather than one of our own, and a small one.
//
// Pods reach it as kube-dns.kube-system (the service network's .10), whose
// endpoint is dnsmasq on this node's address: the service proxy's DNAT does
// the rest. They get kubelet's resolv.conf: that server, the search list
// NAMESPACE.svc.cluster.local svc.cluster.local cluster.local, ndots:5.

import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import type { KubeObject } from '../api/objects';
import type { Client } from '../client';
import { typeOf } from '../client';
import { WorkQueue } from '../controllers/queue';

const SERVICE = typeOf('Service');
const ENDPOINTS = typeOf('Endpoints');
const POD = typeOf('Pod');
export const DOMAIN = 'cluster.local';

/** The hosts file dnsmasq serves (pure). */
export function dnsRecords(services: KubeObject[], endpoints: KubeObject[], pods: KubeObject[]): string {
  const lines: string[] = [];
  for (const s of services) {
    const ns = String(s.metadata.namespace);
    const name = String(s.metadata.name);
    const fqdn = `${name}.${ns}.svc.${DOMAIN}`;
    const ip = (s.spec as { clusterIP?: string } | undefined)?.clusterIP;
    if (ip && ip !== 'None') lines.push(`${ip} ${fqdn}`);
    else if (ip === 'None') {
      const ep = endpoints.find((e) => e.metadata.namespace === ns && e.metadata.name === name);
      for (const sub of ((ep?.['subsets'] ?? []) as { addresses?: { ip: string }[] }[])) for (const a of sub.addresses ?? []) lines.push(`${a.ip} ${fqdn}`);
    }
  }
  for (const p of pods) {
    const spec = (p.spec ?? {}) as { hostname?: string; subdomain?: string };
    const ip = (p.status as { podIP?: string } | undefined)?.podIP;
    if (ip && spec.hostname && spec.subdomain) lines.push(`${ip} ${spec.hostname}.${spec.subdomain}.${String(p.metadata.namespace)}.svc.${DOMAIN}`);
  }
  return lines.sort().join('\n') + '\n';
}

/** The host's resolvers, for names outside the cluster. */
function upstreams(): string[] {
  try {
    return fs.readFileSync('/etc/resolv.conf', 'utf8').split('\n').map((l) => /^nameserver\s+(\S+)/.exec(l)?.[1]).filter((x): x is string => !!x);
  } catch {
    return [];
  }
}

async function freeUdpPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.on('error', reject);
    s.bind(0, host, () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

export interface ClusterDns {
  /** kubelet's dns_config for a ClusterFirst pod of `namespace`. */
  config(namespace: string): { servers: string[]; searches: string[]; options: string[] };
  stop(): void;
}

export async function startClusterDns(client: Client, o: { dir: string; nodeIp: string; serviceIp: string; log: (line: string) => void }): Promise<ClusterDns> {
  fs.mkdirSync(o.dir, { recursive: true, mode: 0o755 });
  const hosts = path.join(o.dir, 'hosts');
  fs.writeFileSync(hosts, '', { mode: 0o644 });
  const port = await freeUdpPort(o.nodeIp);
  const args = ['--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', `--addn-hosts=${hosts}`, `--listen-address=${o.nodeIp}`, '--bind-interfaces', `--port=${port}`, `--local=/${DOMAIN}/`, '--domain-needed', `--pid-file=${path.join(o.dir, 'dnsmasq.pid')}`, ...upstreams().map((u) => `--server=${u}`)];
  let proc: ChildProcess | null = spawn('dnsmasq', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr?.on('data', (d: Buffer) => o.log(`dnsmasq: ${d.toString().trim()}`));
  proc.on('exit', (code) => {
    if (proc) o.log(`dnsmasq exited (${code}); cluster DNS is down`);
    proc = null;
  });
  // The kube-dns service, its endpoint this dnsmasq (the service proxy DNATs to it).
  const ns = 'kube-system';
  if (!client.get(SERVICE, ns, 'kube-dns')) {
    client.create(SERVICE, ns, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'kube-dns', namespace: ns, labels: { 'k8s-app': 'kube-dns' } }, spec: { clusterIP: o.serviceIp, ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: port }, { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: port }] } });
  }
  const subsets = [{ addresses: [{ ip: o.nodeIp }], ports: [{ name: 'dns', port, protocol: 'UDP' }, { name: 'dns-tcp', port, protocol: 'TCP' }] }];
  if (client.get(ENDPOINTS, ns, 'kube-dns')) client.patch(ENDPOINTS, ns, 'kube-dns', { subsets });
  else client.create(ENDPOINTS, ns, { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'kube-dns', namespace: ns }, subsets });
  let last = '';
  const queue = new WorkQueue(() => {
    const text = dnsRecords(client.list(SERVICE, null), client.list(ENDPOINTS, null), client.list(POD, null));
    if (text === last) return;
    fs.writeFileSync(`${hosts}.tmp`, text, { mode: 0o644 });
    fs.renameSync(`${hosts}.tmp`, hosts);
    last = text;
    proc?.kill('SIGHUP'); // dnsmasq re-reads its hosts files and clears its cache
  }, (_k, e) => o.log(`cluster dns: ${(e as Error).message}`));
  queue.add('all');
  const cancel = client.watch([SERVICE, ENDPOINTS, POD], () => queue.add('all'));
  return {
    config: (namespace) => ({ servers: [o.serviceIp], searches: [`${namespace}.svc.${DOMAIN}`, `svc.${DOMAIN}`, DOMAIN], options: ['ndots:5'] }),
    stop: () => {
      cancel();
      queue.stop();
      const p = proc;
      proc = null;
      p?.kill('SIGTERM');
    },
  };
}
