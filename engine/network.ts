// Container networking with the real CNI plugins (Debian's
// containernetworking-plugins in /usr/lib/cni), driven as libcni does:
// each plugin of a network's list is run with CNI_COMMAND=ADD in order,
// handed the previous result, and with DEL in reverse order on teardown.
//
// Modes (--network): a bridge network by name (default "bridge": bridge +
// host-local IPAM + portmap), `host` (the host's namespace, nothing to do),
// `none` (a namespace with only lo), `container:X` (X's namespace).
//
// Each container that is not `host` gets a persistent network namespace,
// <runroot>/netns/<id12>, bound there by `unshare --net=FILE`, so CNI can
// configure it before the container exists and keep it across restarts.
// IPAM leases live under <root>/cni (host-local's dataDir).

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { RuntimeError } from '../runtime/sys/errors';
import { DEFAULT_CNI_BIN_DIRS, addNetwork, delNetworkSync, loopbackUp, makeNetns, removeNetns, type Attachment, type NetworkConfigList } from './cni';
import { ContainerStore, liveStatus, withFileLock, withFileLockAsync, writeJsonAtomic, type Container, type NetworkAttachment, type Paths, type PortBinding } from './containers';
import { validName } from './names';
import { mark } from './timing';

export const DEFAULT_NETWORK = 'bridge';

export interface Network {
  name: string;
  id: string;
  driver: 'bridge';
  bridge: string;
  subnet: string;
  gateway: string;
  created: string;
  internal: boolean;
}

function networkFile(paths: Paths, name: string): string {
  return path.join(paths.networks, `${name}.json`);
}

/** The store docker-like defaults belong to: its bridge is mycontainer0, others get one of their own. */
const DEFAULT_ROOT = '/var/lib/mycontainer';

/** IPv4 networks the host already routes (other bridges, other stores' networks, the LAN), but through `own`. */
function hostRoutes(own?: string): string[] {
  const r = spawnSync('ip', ['-o', '-4', 'route', 'show'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n')
    .filter((l) => !own || !new RegExp(`\\bdev ${own.replace(/[.]/g, '\\.')}\\b`).test(l))
    .map((l) => l.split(' ')[0] ?? '')
    .filter((d) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(d));
}

/** The subnet a bridge device already has (it outlived its record): reusing it keeps the bridge plugin content. */
function bridgeSubnet(bridge: string): string | undefined {
  const r = spawnSync('ip', ['-o', '-4', 'addr', 'show', 'dev', bridge], { encoding: 'utf8' });
  const m = /inet (\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(r.stdout ?? '');
  if (!m) return undefined;
  const { base } = parseCidr(`${m[1]}/${m[2]}`);
  return `${ipStr(base)}/${m[2]}`;
}

/**
 * Subnets claimed host-wide, one file each under /run/mycontainer-subnets
 * naming the store that holds it: two stores (a test's and the default one,
 * two tests at once) choose before either bridge exists, so the host's
 * routes alone cannot tell them apart. A claim whose store no longer has a
 * network on that subnet is stale and may be taken.
 */
const CLAIMS = '/run/mycontainer-subnets';

function claimFile(subnet: string): string {
  return path.join(CLAIMS, subnet.replace('/', '_'));
}

function claimedByOther(subnet: string, root: string): boolean {
  let owner: string;
  try {
    owner = fs.readFileSync(claimFile(subnet), 'utf8').trim();
  } catch {
    return false;
  }
  if (owner === root) return false;
  try {
    return fs.readdirSync(path.join(owner, 'networks')).some((f) => {
      try {
        return (JSON.parse(fs.readFileSync(path.join(owner, 'networks', f), 'utf8')) as Network).subnet === subnet;
      } catch {
        return false;
      }
    });
  } catch {
    return false; // that store is gone
  }
}

/** Claims a subnet for this store (under the host-wide lock); false if another store holds it. */
function claim(subnet: string, root: string): boolean {
  return withFileLock(path.join(CLAIMS, '.lock'), () => {
    if (claimedByOther(subnet, root)) return false;
    fs.writeFileSync(claimFile(subnet), root + '\n');
    return true;
  });
}

function unclaim(subnet: string, root: string): void {
  try {
    if (fs.readFileSync(claimFile(subnet), 'utf8').trim() === root) fs.rmSync(claimFile(subnet), { force: true });
  } catch {
    // not ours, or none
  }
}

/** The first 10.89.N.0/24 that this store's networks, the host's routes and other stores' claims leave free; claimed. */
function freeSubnet(paths: Paths, taken: readonly string[], own?: string): string | undefined {
  const routes = hostRoutes(own);
  for (let i = 0; i < 255; i++) {
    const s = `10.89.${i}.0/24`;
    if (!taken.some((t) => overlaps(t, s)) && !routes.some((r) => overlaps(r, s)) && claim(s, paths.root)) return s;
  }
  return undefined;
}

function readNetworks(paths: Paths): Network[] {
  const out: Network[] = [];
  try {
    for (const f of fs.readdirSync(paths.networks).sort()) {
      if (!f.endsWith('.json')) continue;
      try {
        out.push(JSON.parse(fs.readFileSync(path.join(paths.networks, f), 'utf8')) as Network);
      } catch {
        // not a network record
      }
    }
  } catch {
    // no networks dir yet
  }
  return out;
}

/**
 * The default "bridge" network, made on first use: mycontainer0 on
 * 10.89.0.0/24 for the default store; another store (a test's, a second
 * user's) gets a bridge and a free subnet of its own, so two stores never
 * hand out one address on one bridge.
 */
function defaultNetwork(paths: Paths): Network {
  const file = networkFile(paths, DEFAULT_NETWORK);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Network;
  } catch {
    // first use
  }
  return withFileLock(paths.globalLock, () => {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8')) as Network;
    } catch {
      // still missing: make it
    }
    const ours = paths.root === DEFAULT_ROOT;
    const hash = require('node:crypto').createHash('sha256').update(paths.root).digest('hex') as string;
    const bridge = ours ? 'mycontainer0' : `mc0-${hash.slice(0, 8)}`;
    const kept = bridgeSubnet(bridge);
    const subnet = kept && claim(kept, paths.root) ? kept
      : ours && !hostRoutes(bridge).some((r) => overlaps(r, '10.89.0.0/24')) && claim('10.89.0.0/24', paths.root) ? '10.89.0.0/24'
        : freeSubnet(paths, readNetworks(paths).map((n) => n.subnet), bridge);
    if (!subnet) throw new RuntimeError('cannot make the default network: no free subnet in 10.89.0.0/16', { code: 'ENOSPC' });
    const { base } = parseCidr(subnet);
    const n: Network = {
      name: DEFAULT_NETWORK, id: '0'.repeat(64), driver: 'bridge', bridge,
      subnet, gateway: ipStr(base + 1), created: new Date().toISOString(), internal: false,
    };
    fs.mkdirSync(paths.networks, { recursive: true, mode: 0o755 });
    writeJsonAtomic(file, n);
    return n;
  });
}

export function listNetworks(paths: Paths): Network[] {
  return [defaultNetwork(paths), ...readNetworks(paths).filter((n) => n.name !== DEFAULT_NETWORK)];
}

export function findNetwork(paths: Paths, name: string): Network {
  const n = listNetworks(paths).find((x) => x.name === name || (name.length >= 6 && x.id.startsWith(name)));
  if (!n) throw new RuntimeError(`network ${name} not found`, { code: 'ENOENT' });
  return n;
}

function parseCidr(cidr: string): { base: number; bits: number } {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  if (!m) throw new RuntimeError(`invalid subnet "${cidr}": want a.b.c.d/n`, { code: 'EINVAL' });
  const parts = m.slice(1, 5).map(Number);
  const bits = Number(m[5]);
  if (parts.some((p) => p > 255) || bits < 8 || bits > 30) throw new RuntimeError(`invalid subnet "${cidr}"`, { code: 'EINVAL' });
  const ip = ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return { base: (ip & mask) >>> 0, bits };
}

const ipStr = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

function overlaps(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  const bits = Math.min(x.bits, y.bits);
  const mask = (0xffffffff << (32 - bits)) >>> 0;
  return ((x.base & mask) >>> 0) === ((y.base & mask) >>> 0);
}

/** `network create`: a bridge network with its own subnet (the next free 10.89.N.0/24 by default). */
export function createNetwork(paths: Paths, name: string, opts: { subnet?: string | undefined; internal?: boolean } = {}): Network {
  if (!validName(name)) throw new RuntimeError(`cannot create network "${name}": use [a-zA-Z0-9][a-zA-Z0-9_.-]*`, { code: 'EINVAL' });
  // The default network first, outside the lock: making it takes the lock too (flock does not nest).
  defaultNetwork(paths);
  return withFileLock(paths.globalLock, () => {
    const all = listNetworks(paths);
    if (all.some((n) => n.name === name)) throw new RuntimeError(`cannot create network ${name}: it already exists`, { code: 'EEXIST' });
    let subnet = opts.subnet;
    if (subnet) {
      const clash = all.find((n) => overlaps(n.subnet, subnet!));
      if (clash) throw new RuntimeError(`cannot create network ${name}: subnet ${subnet} overlaps network ${clash.name} (${clash.subnet})`, { code: 'EEXIST' });
      if (!claim(subnet, paths.root)) throw new RuntimeError(`cannot create network ${name}: subnet ${subnet} is used by another store's network`, { code: 'EEXIST' });
    } else {
      subnet = freeSubnet(paths, all.map((n) => n.subnet));
      if (!subnet) throw new RuntimeError(`cannot create network ${name}: no free subnet in 10.89.0.0/16`, { code: 'ENOSPC' });
    }
    const { base } = parseCidr(subnet);
    const id = require('node:crypto').randomBytes(32).toString('hex') as string;
    const n: Network = {
      name, id, driver: 'bridge', bridge: `mc-${id.slice(0, 8)}`, subnet: `${ipStr(base)}/${parseCidr(subnet).bits}`,
      gateway: ipStr(base + 1), created: new Date().toISOString(), internal: opts.internal ?? false,
    };
    fs.mkdirSync(paths.networks, { recursive: true, mode: 0o755 });
    writeJsonAtomic(networkFile(paths, name), n);
    return n;
  });
}

/** `network rm`: refused while a container uses it; removes the bridge device if it was made. */
export function removeNetwork(paths: Paths, name: string): void {
  if (name === DEFAULT_NETWORK) throw new RuntimeError('cannot remove the default network "bridge"', { code: 'EPERM' });
  const n = findNetwork(paths, name);
  const users = new ContainerStore(paths).all().filter((c) => c.hostConfig.networkMode === n.name);
  if (users.length > 0) throw new RuntimeError(`cannot remove network ${n.name}: in use by container(s) ${users.map((c) => c.name).join(', ')}`, { code: 'EBUSY' });
  spawnSync('ip', ['link', 'del', n.bridge], { stdio: 'ignore' });
  fs.rmSync(networkFile(paths, n.name), { force: true });
  unclaim(n.subnet, paths.root);
  fs.rmSync(path.join(paths.root, 'cni', 'networks', n.name), { recursive: true, force: true });
}

/** The CNI network configuration list for a network. */
export function conflist(paths: Paths, n: Network): { cniVersion: string; name: string; plugins: Record<string, unknown>[] } {
  return {
    cniVersion: '1.0.0',
    name: n.name,
    plugins: [
      {
        type: 'bridge',
        bridge: n.bridge,
        isGateway: true,
        ipMasq: !n.internal,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          dataDir: path.join(paths.root, 'cni', 'networks'),
          routes: n.internal ? [] : [{ dst: '0.0.0.0/0' }],
          ranges: [[{ subnet: n.subnet, gateway: n.gateway }]],
        },
      },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    ],
  };
}

/** The chain a container runs: portmap only when it publishes ports (a Go binary less each way). */
function chainFor(paths: Paths, n: Network, c: Container): NetworkConfigList {
  const list = conflist(paths, n);
  return { ...list, plugins: list.plugins.filter((p) => p['type'] !== 'portmap' || c.hostConfig.portBindings.length > 0) };
}

/** One container's attachment to a network, as the CNI plugins are told it. */
function cniAttachment(c: Container, netns: string): Attachment {
  const portMappings = c.hostConfig.portBindings.map((p) => ({ hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol, hostIP: p.hostIp }));
  return { containerId: c.id, netns, ifname: 'eth0', args: [], capabilityArgs: { portMappings } };
}

function netnsFile(paths: Paths, id: string): string {
  return path.join(paths.netns, id.slice(0, 12));
}

/** A host port is free when nothing listens there and no other container of ours has it. */
async function checkPortsFree(paths: Paths, c: Container): Promise<void> {
  const others = new ContainerStore(paths).all().filter((o) => o.id !== c.id && o.network && ['running', 'restarting', 'paused'].includes(liveStatus(o)));
  for (const p of c.hostConfig.portBindings) {
    const clash = others.find((o) => o.hostConfig.portBindings.some((q) => q.hostPort === p.hostPort && q.protocol === p.protocol && (q.hostIp === p.hostIp || q.hostIp === '0.0.0.0' || p.hostIp === '0.0.0.0')));
    if (clash) throw new RuntimeError(`port ${p.hostIp}:${p.hostPort}/${p.protocol} is already allocated (container ${clash.name})`, { code: 'EADDRINUSE' });
    if (p.protocol === 'tcp' && !(await tcpPortFree(p.hostIp, p.hostPort))) {
      throw new RuntimeError(`port ${p.hostIp}:${p.hostPort}/tcp is already in use on the host`, { code: 'EADDRINUSE' });
    }
  }
}

/** Whether a listen() on ip:port succeeds now. */
function tcpPortFree(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, ip, () => s.close(() => resolve(true)));
  });
}

/**
 * Before a start: the namespace the container joins, set up. Returns its
 * path (null for `host`). Idempotent across restarts: an attachment in the
 * record whose namespace still exists is kept.
 */
export async function prepareNetwork(paths: Paths, c: Container): Promise<string | null> {
  const mode = c.hostConfig.networkMode;
  if (mode === 'host') return null;
  const store = new ContainerStore(paths);
  // a namespace someone else made and owns (a CRI pod's): joined as it is
  if (mode.startsWith('netns:')) return mode.slice('netns:'.length);
  if (mode.startsWith('container:')) {
    const other = store.resolve(mode.slice('container:'.length));
    if (liveStatus(other) !== 'running' || other.state.pid <= 0) throw new RuntimeError(`cannot join the network of container ${other.name}: it is not running`, { code: 'EINVAL' });
    return other.network?.netns ?? `/proc/${other.state.pid}/ns/net`;
  }
  const file = netnsFile(paths, c.id);
  if (c.network && fs.existsSync(file)) return file;
  if (mode === 'none') {
    if (!fs.existsSync(file)) await makeNetns(file);
    try {
      await loopbackUp(c.id, file, DEFAULT_CNI_BIN_DIRS);
    } catch (e) {
      removeNetns(file);
      throw e;
    }
    store.update(c.id, (x) => {
      x.network = { network: 'none', netns: file, ipAddress: '', prefixLen: 0, gateway: '', macAddress: '', interface: '', cniResult: null };
    });
    return file;
  }
  const n = findNetwork(paths, mode);
  return withFileLockAsync(paths.globalLock, async () => {
    await checkPortsFree(paths, c);
    if (!fs.existsSync(file)) await makeNetns(file);
    const list = chainFor(paths, n, c);
    let prev: Record<string, unknown> | null;
    try {
      await loopbackUp(c.id, file, DEFAULT_CNI_BIN_DIRS);
      prev = await addNetwork(list, cniAttachment(c, file), DEFAULT_CNI_BIN_DIRS); // DELs what it did if a plugin fails
    } catch (e) {
      removeNetns(file);
      throw e;
    }
    const att = attachmentFrom(n.name, file, prev);
    store.update(c.id, (x) => {
      x.network = att;
    });
    return file;
  });
}

function attachmentFrom(network: string, netns: string, result: Record<string, unknown> | null): NetworkAttachment {
  const ips = (result?.['ips'] ?? []) as { address?: string; gateway?: string; interface?: number }[];
  const ifaces = (result?.['interfaces'] ?? []) as { name?: string; mac?: string; sandbox?: string }[];
  const ip = ips[0];
  const [addr, prefix] = (ip?.address ?? '/').split('/');
  const iface = ip?.interface !== undefined ? ifaces[ip.interface] : ifaces.find((i) => i.sandbox);
  return {
    network,
    netns,
    ipAddress: addr ?? '',
    prefixLen: Number(prefix ?? 0),
    gateway: ip?.gateway ?? '',
    macAddress: iface?.mac ?? '',
    interface: iface?.name ?? 'eth0',
    cniResult: result,
  };
}

/** After the last stop or on rm: CNI DEL in reverse (veth, IPAM lease, portmap rules), then the namespace. */
export function releaseNetwork(paths: Paths, c: Container): void {
  const fresh = (() => {
    try {
      return new ContainerStore(paths).read(c.id);
    } catch {
      return c;
    }
  })();
  const att = fresh.network;
  const file = netnsFile(paths, c.id);
  if (att && att.network !== 'none') {
    let n: Network | null = null;
    try {
      n = findNetwork(paths, att.network);
    } catch {
      n = null; // removed meanwhile: the namespace goes anyway
    }
    if (n) {
      const list = chainFor(paths, n, fresh);
      try {
        delNetworkSync(list, cniAttachment(fresh, fs.existsSync(file) ? file : ''), att.cniResult, DEFAULT_CNI_BIN_DIRS);
      } catch (e) {
        process.stderr.write(`mycontainer: warning: network teardown of ${c.name}: ${(e as Error).message}\n`);
      }
    }
  }
  mark('cni del done');
  removeNetns(file);
  mark('netns removed');
  try {
    new ContainerStore(paths).update(c.id, (x) => {
      x.network = null;
    });
  } catch {
    // the record is gone (rm)
  }
}

/** `-p [ip:][hostPort:]containerPort[/proto]`, as docker parses it (ranges not supported). */
export function parsePublish(spec: string): PortBinding {
  const m = /^(?:(\[[^\]]+\]|[^:]*):)??(?:(\d*):)?(\d+)(?:\/(tcp|udp))?$/.exec(spec);
  if (!m) throw new RuntimeError(`invalid -p "${spec}": want [ip:][hostPort:]containerPort[/tcp|udp]`, { code: 'EINVAL' });
  const hostIp = m[1] ? m[1].replace(/^\[|\]$/g, '') : '0.0.0.0';
  if (hostIp && net.isIP(hostIp) === 0) throw new RuntimeError(`invalid -p "${spec}": "${hostIp}" is not an IP address`, { code: 'EINVAL' });
  const containerPort = Number(m[3]);
  const hostPort = m[2] ? Number(m[2]) : 0;
  if (containerPort < 1 || containerPort > 65535 || hostPort > 65535) throw new RuntimeError(`invalid -p "${spec}": ports are 1-65535`, { code: 'EINVAL' });
  return { hostIp, hostPort, containerPort, protocol: (m[4] as 'tcp' | 'udp' | undefined) ?? 'tcp' };
}

/** A free ephemeral port for -P and `-p ctr` (the kernel picks one). */
export function ephemeralPort(ip: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', (e) => reject(new RuntimeError(`cannot find a free host port on ${ip}: ${e.message}`, { code: 'EADDRINUSE' })));
    s.listen(0, ip, () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}
