// From what a `run` asked for (the engine record) to the OCI config the
// runtime runs: pure, so that what docker's flags mean is in one place and
// testable without root. The image's part (args, env, user, workdir) is
// images/bundle.ts's imageSpec; this adds docker's defaults and the flags.

import type { Mount, Spec } from '../runtime/spec/generated/config';
import { defaultSeccompProfile } from '../runtime/spec/seccomp-default';
import type { Container } from './containers';

/** Docker's default capability set (moby oci/caps/defaults.go). */
export const DOCKER_DEFAULT_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** Every capability the kernel here knows (for --privileged and --cap-add ALL). */
export const ALL_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** Names of the capabilities set in a /proc/PID/status mask (CapBnd), by kernel number. */
export function capsFromMask(hex: string): string[] {
  const mask = BigInt(`0x${hex}`);
  return ALL_CAPS.filter((_, i) => (mask >> BigInt(i)) & 1n);
}

function capName(c: string): string {
  const u = c.toUpperCase();
  return u.startsWith('CAP_') ? u : `CAP_${u}`;
}

/** --cap-add / --cap-drop on docker's default set, as docker resolves them (ALL on either side). */
export function capabilities(capAdd: readonly string[], capDrop: readonly string[], privileged: boolean, bounding: readonly string[] = ALL_CAPS): string[] {
  // --privileged: every capability we hold ourselves, as docker's GetAllCapabilities
  if (privileged) return ALL_CAPS.filter((c) => bounding.includes(c));
  const add = capAdd.map(capName);
  const drop = capDrop.map(capName);
  let caps = drop.includes('CAP_ALL') ? [] : [...DOCKER_DEFAULT_CAPS];
  if (add.includes('CAP_ALL')) caps = [...ALL_CAPS];
  for (const a of add) {
    if (a === 'CAP_ALL') continue;
    if (!ALL_CAPS.includes(a)) throw new Error(`--cap-add: unknown capability "${a}"`);
    if (!caps.includes(a)) caps.push(a);
  }
  for (const d of drop) {
    if (d === 'CAP_ALL') continue;
    if (!ALL_CAPS.includes(d)) throw new Error(`--cap-drop: unknown capability "${d}"`);
    caps = caps.filter((c) => c !== d);
  }
  return caps;
}

/** Where --init's binary appears in the container (docker's path), and the host's (Debian package tini). */
export const INIT_PATH = '/sbin/docker-init';
export const TINI = '/usr/bin/tini-static';

export interface HostFiles {
  hosts: string;
  hostname: string;
  resolvConf: string;
}

export interface EngineSpecInput {
  container: Container;
  /** The image's config.json, from imageSpec. */
  spec: Spec;
  /** Host paths of the files bind-mounted to /etc/hosts, /etc/hostname, /etc/resolv.conf. */
  files: HostFiles;
  /** Host source dir of each volume mount, by destination. */
  volumeSources: Record<string, string>;
  /** Path of the network namespace to join ('bridge' and 'container:' modes), if any. */
  netnsPath: string | null;
  /** The hard RLIMIT_NOFILE we may give (ours). */
  nofileHard: number;
  /** cgroupsPath for the container. */
  cgroupsPath: string;
  /** The capabilities in our own bounding set (what --privileged can give). */
  boundingCaps?: readonly string[];
  /** A static init for --init (default TINI). */
  initBinary?: string;
}

/** docker's defaults and flags applied to the image's config.json. */
export function engineSpec(input: EngineSpecInput): Spec {
  const { container: c, files } = input;
  const spec: Spec = JSON.parse(JSON.stringify(input.spec)) as Spec;
  const h = c.hostConfig;
  const proc = spec.process!;
  const caps = capabilities(h.capAdd, h.capDrop, h.privileged, input.boundingCaps);
  proc.capabilities = { bounding: [...caps], effective: [...caps], permitted: [...caps] };
  proc.noNewPrivileges = false;
  proc.terminal = c.config.tty;
  const nofile = Math.min(1048576, input.nofileHard);
  proc.rlimits = [{ type: 'RLIMIT_NOFILE', hard: nofile, soft: nofile }];
  if (c.config.tty && !proc.env?.some((e) => e.startsWith('TERM='))) proc.env = [...(proc.env ?? []), 'TERM=xterm'];
  spec.hostname = c.config.hostname;
  spec.root = { path: 'rootfs', readonly: h.readonlyRootfs };

  const linux = spec.linux ?? {};
  spec.linux = linux;
  linux.cgroupsPath = input.cgroupsPath;
  const ns: NonNullable<typeof linux.namespaces> = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (h.networkMode !== 'host') ns.push(input.netnsPath ? { type: 'network', path: input.netnsPath } : { type: 'network' });
  linux.namespaces = ns;
  if (h.privileged) {
    delete linux.maskedPaths;
    delete linux.readonlyPaths;
    delete linux.seccomp;
  } else {
    linux.seccomp = defaultSeccompProfile();
  }

  const resources: NonNullable<typeof linux.resources> = {};
  if (h.memory > 0) resources.memory = { limit: h.memory, swap: h.memory };
  if (h.nanoCpus > 0) resources.cpu = { period: 100000, quota: Math.round((h.nanoCpus / 1e9) * 100000) };
  if (h.pidsLimit > 0) resources.pids = { limit: h.pidsLimit };
  if (Object.keys(resources).length > 0) linux.resources = resources;
  else delete linux.resources;

  const mounts: Mount[] = (spec.mounts ?? []).filter((m) => m.destination !== '/sys/fs/cgroup');
  // /sys read-only, as docker (rw with --privileged); the cgroup tree read-only inside it.
  for (const m of mounts) if (m.destination === '/sys') m.options = ['nosuid', 'noexec', 'nodev', h.privileged ? 'rw' : 'ro'];
  mounts.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', h.privileged ? 'rw' : 'ro'] });
  const etc = (dest: string, src: string): Mount => ({ destination: dest, type: 'bind', source: src, options: ['rbind', 'rprivate', 'rw'] });
  if (h.networkMode !== 'host') mounts.push(etc('/etc/hostname', files.hostname));
  mounts.push(etc('/etc/hosts', files.hosts), etc('/etc/resolv.conf', files.resolvConf));
  for (const m of h.mounts) {
    const ro = m.readonly ? 'ro' : 'rw';
    if (m.type === 'tmpfs') {
      mounts.push({ destination: m.destination, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', ro] });
    } else {
      const source = m.type === 'volume' ? input.volumeSources[m.destination] : m.source;
      if (!source) throw new Error(`no source for the volume mounted at ${m.destination}`);
      mounts.push({ destination: m.destination, type: 'bind', source, options: ['rbind', 'rprivate', ro] });
    }
  }
  spec.mounts = mounts;
  if (h.init) {
    // docker's --init: tini as PID 1 reaps zombies and passes signals on
    mounts.push({ destination: INIT_PATH, type: 'bind', source: input.initBinary ?? TINI, options: ['bind', 'ro', 'nosuid', 'nodev'] });
    proc.args = [INIT_PATH, '--', ...(proc.args ?? [])];
  }
  spec.annotations = { ...(spec.annotations ?? {}), 'mycontainer.engine.name': c.name };
  return spec;
}

/** /etc/hosts for a container, as docker writes it. */
export function hostsFile(hostname: string, ip: string | null, extra: readonly string[] = []): string {
  const lines = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
  ];
  if (ip) lines.push(`${ip}\t${hostname}`);
  lines.push(...extra);
  return lines.join('\n') + '\n';
}

/**
 * resolv.conf from the host's, minus loopback resolvers (they would point
 * at the container itself); with none left, docker's fallback: Google's.
 */
export function resolvConf(host: string, keepLoopback: boolean): string {
  const out: string[] = [];
  let servers = 0;
  for (const line of host.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m) {
      const ip = m[1]!;
      if (!keepLoopback && (/^127\./.test(ip) || ip === '::1')) continue;
      servers++;
    }
    if (line.trim() !== '') out.push(line);
  }
  if (servers === 0) out.push('nameserver 8.8.8.8', 'nameserver 8.8.4.4');
  return out.join('\n') + '\n';
}
