// Services in the host's iptables, as kube-proxy's iptables mode: in the
// nat table, a chain of cluster IPs and node ports jumped to from
// PREROUTING and OUTPUT, one chain per service port spreading connections
// over its endpoints (statistic --mode random), one DNAT per endpoint, and
// a mark that POSTROUTING masquerades (so a pod reaching itself through its
// service gets the answer back). Chain names carry the server's id, so two
// servers on one host (tests) never touch each other's rules.
//
// Node ports answer on 127.0.0.1 too, as kube-proxy's localhost node ports:
// a DNAT'd packet from 127.0.0.1 may leave through the pods' bridge only with
// route_localnet on it (set on the device an endpoint is reached through,
// so it goes with the bridge), and the masquerade gives it the bridge's
// address. Since that also lets packets for 127/8 in from the bridge, a
// filter rule drops those that are not answers or our own DNAT (kube-proxy's
// fix for CVE-2020-8558).
//
// renderRules is pure (iptables-restore input); the proxy applies it with
// iptables-restore --noflush (our chains are replaced whole, atomically,
// nobody else's is touched) whenever services or endpoints change, and
// removes every rule of its own when the server stops.

import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { KubeObject } from '../api/objects';
import type { Client } from '../client';
import { typeOf } from '../client';
import { WorkQueue } from '../controllers/queue';

const SERVICE = typeOf('Service');
const ENDPOINTS = typeOf('Endpoints');

interface Port { name?: string; port: number; nodePort?: number; protocol?: string }
interface Subset { addresses?: { ip: string }[]; ports?: { name?: string; port: number; protocol?: string }[] }

const short = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 8);

export function chainNames(id: string): { services: string; nodePorts: string; post: string; firewall: string; prefix: string } {
  const p = `MYC${id}`;
  return { services: `${p}-SERVICES`, nodePorts: `${p}-NODEPORTS`, post: `${p}-POSTROUTING`, firewall: `${p}-FIREWALL`, prefix: `${p}-` };
}

/** The filter table's one rule: nothing from outside 127/8 to 127/8 but answers and our DNAT. */
export function firewallRules(id: string): string[] {
  const n = chainNames(id);
  return [`-A ${n.firewall} ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`];
}

/** The nat table's rules for these services and their endpoints: [chains, rules]. */
export function renderRules(id: string, services: KubeObject[], endpoints: KubeObject[]): { chains: string[]; rules: string[] } {
  const n = chainNames(id);
  const chains = [n.services, n.nodePorts, n.post];
  const rules: string[] = [];
  const mark = '-j MARK --set-xmark 0x4000/0x4000';
  for (const svc of services) {
    const spec = (svc.spec ?? {}) as { clusterIP?: string; type?: string; ports?: Port[] };
    if (!spec.clusterIP || spec.clusterIP === 'None') continue;
    const ns = String(svc.metadata.namespace);
    const name = String(svc.metadata.name);
    const ep = endpoints.find((e) => e.metadata.namespace === ns && e.metadata.name === name);
    for (const p of spec.ports ?? []) {
      const proto = (p.protocol ?? 'TCP').toLowerCase();
      const what = `${ns}/${name}${p.name ? ':' + p.name : ''}`;
      const svcChain = `${n.prefix}S-${short(`${what}/${p.port}`)}`;
      chains.push(svcChain);
      const comment = `-m comment --comment "${what}"`;
      rules.push(`-A ${n.services} -d ${spec.clusterIP}/32 -p ${proto} ${comment} --dport ${p.port} -j ${svcChain}`);
      if (p.nodePort && (spec.type === 'NodePort' || spec.type === 'LoadBalancer')) rules.push(`-A ${n.nodePorts} -p ${proto} ${comment} --dport ${p.nodePort} -j ${svcChain}`);
      // The endpoints of this port: the subset port with its name (or the only one).
      const targets: string[] = [];
      for (const s of ((ep?.['subsets'] ?? []) as Subset[])) {
        const sp = (s.ports ?? []).find((x) => (x.name ?? '') === (p.name ?? '')) ?? (s.ports?.length === 1 ? s.ports[0] : undefined);
        if (!sp) continue;
        for (const a of s.addresses ?? []) targets.push(`${a.ip}:${sp.port}`);
      }
      rules.push(`-A ${svcChain} ${mark}`);
      targets.forEach((t, i) => {
        const sep = `${n.prefix}E-${short(`${what}/${p.port}/${t}`)}`;
        chains.push(sep);
        const left = targets.length - i;
        rules.push(`-A ${svcChain} ${left > 1 ? `-m statistic --mode random --probability ${(1 / left).toFixed(10)} ` : ''}-j ${sep}`);
        rules.push(`-A ${sep} -p ${proto} -j DNAT --to-destination ${t}`);
      });
    }
  }
  rules.push(`-A ${n.services} -m addrtype --dst-type LOCAL -j ${n.nodePorts}`);
  rules.push(`-A ${n.post} -m mark --mark 0x4000/0x4000 -j MASQUERADE`);
  return { chains, rules };
}

function iptables(args: string[]): string {
  return execFileSync('iptables', ['-w', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Our chains now in a table. */
function existingChains(prefix: string, table = 'nat'): string[] {
  return iptables(['-t', table, '-S']).split('\n').filter((l) => l.startsWith(`-N ${prefix}`)).map((l) => l.slice(3));
}

const JUMPS = (id: string): [string, string, string][] => {
  const n = chainNames(id);
  return [['nat', 'PREROUTING', n.services], ['nat', 'OUTPUT', n.services], ['nat', 'POSTROUTING', n.post], ['filter', 'INPUT', n.firewall]];
};

/**
 * The devices the endpoints are reached through (the pods' bridge): where route_localnet must be on.
 * From the kernel's route table as /proc/net/route prints it (pure): the longest prefix that holds
 * each address, as `ip route get` would answer, without a process per endpoint at every resync.
 */
export function endpointDevices(rules: string[], routeTable: string): string[] {
  const hexIp = (h: string): number => {
    const n = parseInt(h, 16); // in host byte order: on a little-endian host a.b.c.d is 0xDDCCBBAA
    if (os.endianness() === 'BE') return n >>> 0;
    return (((n & 0xff) << 24) | (((n >>> 8) & 0xff) << 16) | (((n >>> 16) & 0xff) << 8) | ((n >>> 24) & 0xff)) >>> 0;
  };
  const routes = routeTable.split('\n').slice(1).map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 8)
    .map((f) => ({ dev: f[0] as string, dest: hexIp(f[1] as string), mask: hexIp(f[7] as string) }));
  const devs = new Set<string>();
  for (const r of rules) {
    const ip = / --to-destination (\d+)\.(\d+)\.(\d+)\.(\d+):/.exec(r);
    if (!ip) continue;
    const n = ((Number(ip[1]) << 24) | (Number(ip[2]) << 16) | (Number(ip[3]) << 8) | Number(ip[4])) >>> 0;
    const best = routes.filter((x) => ((n & x.mask) >>> 0) === x.dest).sort((x, y) => y.mask - x.mask)[0];
    if (best && best.dev !== 'lo') devs.add(best.dev);
  }
  return [...devs];
}

/** Replaces our chains with `rendered`, dropping chains no longer used, and makes sure the built-in chains jump to ours. */
export function applyRules(id: string, rendered: { chains: string[]; rules: string[] }): void {
  const { prefix } = chainNames(id);
  const stale = existingChains(prefix).filter((c) => !rendered.chains.includes(c));
  const input = ['*nat', ...rendered.chains.map((c) => `:${c} - [0:0]`), ...stale.map((c) => `:${c} - [0:0]`), ...rendered.rules, ...stale.map((c) => `-X ${c}`), 'COMMIT', ''].join('\n');
  execFileSync('iptables-restore', ['-w', '--noflush'], { input, stdio: ['pipe', 'ignore', 'pipe'] });
  const fw = chainNames(id).firewall;
  execFileSync('iptables-restore', ['-w', '--noflush'], { input: ['*filter', `:${fw} - [0:0]`, ...firewallRules(id), 'COMMIT', ''].join('\n'), stdio: ['pipe', 'ignore', 'pipe'] });
  for (const [table, from, to] of JUMPS(id)) {
    const rule = [from, '-m', 'comment', '--comment', 'mycontainer services', '-j', to];
    try {
      iptables(['-t', table, '-C', ...rule]);
    } catch {
      iptables(['-t', table, '-I', ...rule]);
    }
  }
  for (const dev of endpointDevices(rendered.rules, fs.readFileSync('/proc/net/route', 'utf8'))) {
    const file = `/proc/sys/net/ipv4/conf/${dev}/route_localnet`;
    try {
      if (fs.readFileSync(file, 'utf8').trim() !== '1') fs.writeFileSync(file, '1');
    } catch {
      // the device went meanwhile
    }
  }
}

/** Takes out every rule and chain of ours (the server's stop, and tests). */
export function removeRules(id: string): void {
  for (const [table, from, to] of JUMPS(id)) {
    try {
      iptables(['-t', table, '-D', from, '-m', 'comment', '--comment', 'mycontainer services', '-j', to]);
    } catch {
      // not there
    }
  }
  for (const table of ['nat', 'filter']) {
    const chains = existingChains(chainNames(id).prefix, table);
    if (chains.length === 0) continue;
    const input = [`*${table}`, ...chains.map((c) => `:${c} - [0:0]`), ...chains.map((c) => `-X ${c}`), 'COMMIT', ''].join('\n');
    execFileSync('iptables-restore', ['-w', '--noflush'], { input, stdio: ['pipe', 'ignore', 'pipe'] });
  }
}

/** The proxy: re-renders on every change to services or endpoints. Returns its stop, which removes its rules. */
export function startServiceProxy(client: Client, id: string, log: (line: string) => void): () => void {
  let last = '';
  const queue = new WorkQueue(() => {
    const rendered = renderRules(id, client.list(SERVICE, null), client.list(ENDPOINTS, null));
    const text = JSON.stringify(rendered);
    if (text === last) return;
    applyRules(id, rendered);
    last = text;
  }, (_k, e) => log(`service proxy: ${(e as Error).message}`));
  queue.add('all');
  const cancel = client.watch([SERVICE, ENDPOINTS], () => queue.add('all'));
  // As kube-proxy's periodic sync: rules that another tool flushed or reloaded come back.
  const resync = setInterval(() => {
    last = '';
    queue.add('all');
  }, 10000);
  resync.unref();
  return () => {
    clearInterval(resync);
    cancel();
    queue.stop();
    try {
      removeRules(id);
    } catch (e) {
      log(`service proxy: removing rules: ${(e as Error).message}`);
    }
  };
}
