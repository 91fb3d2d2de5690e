// A Service's cluster IP and node ports, given out when it is created, as
// the API server's allocators do: the first free address of the service
// CIDR (k3s's 10.43.0.0/16 by default; .1 and .10 are kept for the
// kubernetes and DNS services), and the first free port of the node port
// range (30000-32767) for type NodePort. A value the manifest asks for is
// checked against the range and against what is taken (pure).

export interface ServiceNetwork {
  /** e.g. "10.43.0.0/16" */
  cidr: string;
  nodePorts: { from: number; to: number };
}

export const DEFAULT_SERVICE_NETWORK: ServiceNetwork = { cidr: '10.43.0.0/16', nodePorts: { from: 30000, to: 32767 } };

const toInt = (ip: string): number => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const toIp = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

/** The n-th address of a CIDR ("10.43.0.0/16", 10 → "10.43.0.10"): the cluster DNS service's. */
export function nthAddress(cidr: string, n: number): string {
  return toIp(parseCidr(cidr).base + n);
}

export function parseCidr(cidr: string): { base: number; size: number } {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(cidr);
  const bits = Number(m?.[2]);
  if (!m || bits < 8 || bits > 30 || (m[1] as string).split('.').some((o) => Number(o) > 255)) throw new Error(`invalid service CIDR "${cidr}" (want a.b.c.d/8..30)`);
  const size = 2 ** (32 - bits);
  return { base: Math.floor(toInt(m[1] as string) / size) * size, size };
}

interface ServiceSpec {
  type?: string;
  clusterIP?: string;
  clusterIPs?: string[];
  ports?: { port: number; nodePort?: number; name?: string }[];
}

/** Fills spec.clusterIP(s) and the node ports; returns the problems (field, message) instead when what was asked cannot be had. */
export function allocate(spec: ServiceSpec, taken: { ips: Set<string>; ports: Set<number> }, net: ServiceNetwork): { field: string; message: string }[] {
  const { base, size } = parseCidr(net.cidr);
  const problems: { field: string; message: string }[] = [];
  if (spec.clusterIP === 'None') {
    spec.clusterIPs = ['None'];
  } else if (spec.clusterIP) {
    const n = toInt(spec.clusterIP);
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(spec.clusterIP) || n < base || n >= base + size) problems.push({ field: 'spec.clusterIPs', message: `Invalid value: "${spec.clusterIP}": failed to allocate IP ${spec.clusterIP}: the provided IP (${spec.clusterIP}) is not in the valid range. The range of valid IPs is ${net.cidr}` });
    else if (taken.ips.has(spec.clusterIP)) problems.push({ field: 'spec.clusterIPs', message: `Invalid value: "${spec.clusterIP}": failed to allocate IP ${spec.clusterIP}: provided IP is already allocated` });
    spec.clusterIPs = [spec.clusterIP];
  } else {
    let ip: string | null = null;
    for (let i = 2; i < size - 1 && ip === null; i++) {
      if (i === 10) continue;
      const c = toIp(base + i);
      if (!taken.ips.has(c)) ip = c;
    }
    if (ip === null) problems.push({ field: 'spec.clusterIPs', message: `Internal error: no cluster IP left in ${net.cidr}` });
    else {
      spec.clusterIP = ip;
      spec.clusterIPs = [ip];
    }
  }
  if (spec.type === 'NodePort' || spec.type === 'LoadBalancer') {
    (spec.ports ?? []).forEach((p, i) => {
      if (p.nodePort) {
        if (p.nodePort < net.nodePorts.from || p.nodePort > net.nodePorts.to) problems.push({ field: `spec.ports[${i}].nodePort`, message: `Invalid value: ${p.nodePort}: provided port is not in the valid range. The range of valid ports is ${net.nodePorts.from}-${net.nodePorts.to}` });
        else if (taken.ports.has(p.nodePort)) problems.push({ field: `spec.ports[${i}].nodePort`, message: `Invalid value: ${p.nodePort}: provided port is already allocated` });
        taken.ports.add(p.nodePort);
        return;
      }
      for (let port = net.nodePorts.from; port <= net.nodePorts.to; port++) {
        if (!taken.ports.has(port)) {
          p.nodePort = port;
          taken.ports.add(port);
          return;
        }
      }
      problems.push({ field: `spec.ports[${i}].nodePort`, message: 'Internal error: no node port left' });
    });
  }
  return problems;
}
