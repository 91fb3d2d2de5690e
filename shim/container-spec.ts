// From a CRI ContainerConfig (and its sandbox) to the OCI config the runtime
// runs: pure, as containerd's container_create_linux.go containerSpec. The
// image's part (args, env, user, workdir) comes from images/bundle.ts's
// imageSpec; this applies what kubelet asked for: the pod's namespaces,
// mounts with propagation, devices, the security context, and resources.

import * as path from 'node:path';
import type { DeviceCgroup, Mount, Spec } from '../runtime/spec/generated/config';
import { defaultSeccompProfile } from '../runtime/spec/seccomp-default';
import { ALL_CAPS, DOCKER_DEFAULT_CAPS } from '../engine/spec';
import type { ContainerConfig__Output } from './proto/generated/runtime/v1/ContainerConfig';
import type { SecurityProfile__Output } from './proto/generated/runtime/v1/SecurityProfile';
import { NS_CONTAINER, NS_NODE, NS_POD, NS_TARGET } from './sandbox';
import type { SandboxRecord } from './sandbox-store';

export interface ContainerSpecInput {
  id: string;
  config: ContainerConfig__Output;
  sandbox: SandboxRecord;
  /** The image's config.json (images/bundle.ts). */
  spec: Spec;
  /** /etc/hostname, /etc/hosts, /etc/resolv.conf of the sandbox. */
  sandboxFiles: { hostname: string; hosts: string; resolvConf: string };
  /** The pid of the target container (namespace mode TARGET). */
  targetPid: number;
  /** Devices: what the host has at each path (stat), looked up by the caller. */
  devices: { path: string; type: 'c' | 'b'; major: number; minor: number; fileMode: number; uid: number; gid: number }[];
  nofileHard: number;
  /** The lowest oom_score_adj this process may set (0 without CAP_SYS_RESOURCE). */
  minOomScoreAdj: number;
  /** Reads a Localhost seccomp profile. */
  readProfile(file: string): string;
  /** The capabilities we hold (privileged gets these). */
  boundingCaps: readonly string[];
  /** The cgroup parent when the pod names none. */
  defaultCgroupParent?: string;
}

const PROPAGATION = ['rprivate', 'rslave', 'rshared'];

function capName(c: string): string {
  const u = c.toUpperCase();
  return u.startsWith('CAP_') ? u : `CAP_${u}`;
}

/** containerd's capability rules: the default set, ALL on either side, add then drop. */
export function criCapabilities(add: readonly string[], drop: readonly string[], held: readonly string[] = ALL_CAPS): string[] {
  const a = add.map(capName);
  const d = drop.map(capName);
  // ALL is every capability we hold ourselves: one we lack (CAP_SYS_RESOURCE here) cannot be given
  let caps = a.includes('CAP_ALL') ? ALL_CAPS.filter((c) => held.includes(c)) : [...DOCKER_DEFAULT_CAPS];
  for (const c of a) if (c !== 'CAP_ALL' && !caps.includes(c)) caps.push(c);
  if (d.includes('CAP_ALL')) caps = a.filter((c) => c !== 'CAP_ALL');
  for (const c of d) caps = caps.filter((x) => x !== c);
  return caps;
}

/** SecurityProfile (or the deprecated path string) → the seccomp part of the config, or null for none. */
export function seccompFor(p: SecurityProfile__Output | null, legacyPath: string, privileged: boolean, read: (f: string) => string): NonNullable<Spec['linux']>['seccomp'] | null {
  if (privileged) return null;
  let kind: 'default' | 'unconfined' | 'localhost' = 'unconfined';
  let ref = '';
  if (p && (p.profile_type !== 1 || p.localhost_ref)) {
    if (p.profile_type === 0) kind = 'default';
    else if (p.profile_type === 2) {
      kind = 'localhost';
      ref = p.localhost_ref;
    }
  } else if (legacyPath) {
    if (legacyPath === 'runtime/default' || legacyPath === 'docker/default') kind = 'default';
    else if (legacyPath.startsWith('localhost/')) {
      kind = 'localhost';
      ref = legacyPath.slice('localhost/'.length);
    } else if (legacyPath !== 'unconfined') throw new Error(`unknown seccomp profile "${legacyPath}"`);
  } else if (p) {
    kind = 'unconfined';
  }
  if (kind === 'unconfined') return null;
  if (kind === 'default') return defaultSeccompProfile();
  if (!path.isAbsolute(ref)) throw new Error(`seccomp localhost profile "${ref}" is not an absolute path`);
  let text: string;
  try {
    text = read(ref);
  } catch (e) {
    throw new Error(`cannot read seccomp profile ${ref}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as NonNullable<Spec['linux']>['seccomp'];
  } catch (e) {
    throw new Error(`seccomp profile ${ref} is not valid JSON: ${(e as Error).message}`);
  }
}

export function containerSpec(input: ContainerSpecInput): Spec {
  const { config: cfg, sandbox } = input;
  const spec: Spec = JSON.parse(JSON.stringify(input.spec)) as Spec;
  const sc = cfg.linux?.security_context ?? null;
  const podNs = sandbox.config.linux?.security_context?.namespace_options ?? null;
  const privileged = sc?.privileged === true;
  const proc = spec.process!;

  proc.terminal = cfg.tty;
  if (cfg.tty && !proc.env?.some((e) => e.startsWith('TERM='))) proc.env = [...(proc.env ?? []), 'TERM=xterm'];
  const caps = privileged ? ALL_CAPS.filter((c) => input.boundingCaps.includes(c)) : criCapabilities(sc?.capabilities?.add_capabilities ?? [], sc?.capabilities?.drop_capabilities ?? [], input.boundingCaps);
  proc.capabilities = { bounding: [...caps], effective: [...caps], permitted: [...caps] };
  const ambient = (sc?.capabilities?.add_ambient_capabilities ?? []).map(capName);
  if (ambient.length > 0) {
    proc.capabilities.inheritable = [...ambient];
    proc.capabilities.ambient = [...ambient];
  }
  proc.noNewPrivileges = sc?.no_new_privs === true;
  const nofile = Math.min(1048576, input.nofileHard);
  proc.rlimits = [{ type: 'RLIMIT_NOFILE', hard: nofile, soft: nofile }];
  const groups = (sc?.supplemental_groups ?? []).map(Number);
  if (groups.length > 0 && proc.user) proc.user.additionalGids = [...new Set([...(proc.user.additionalGids ?? []), ...groups])];
  delete spec.hostname; // the pod's uts namespace has it
  spec.root = { path: 'rootfs', readonly: sc?.readonly_rootfs === true };

  const linux = spec.linux ?? {};
  spec.linux = linux;
  linux.cgroupsPath = `${(sandbox.config.linux?.cgroup_parent || input.defaultCgroupParent || '/mycontainer-cri').replace(/\/+$/, '')}/${input.id}`;
  const pausePid = sandbox.pausePid;
  const ns: NonNullable<typeof linux.namespaces> = [{ type: 'mount' }];
  const pidMode = sc?.namespace_options?.pid ?? podNs?.pid ?? NS_CONTAINER;
  if (pidMode === NS_POD) ns.push({ type: 'pid', path: `/proc/${pausePid}/ns/pid` });
  else if (pidMode === NS_TARGET) ns.push({ type: 'pid', path: `/proc/${input.targetPid}/ns/pid` });
  else if (pidMode === NS_CONTAINER) ns.push({ type: 'pid' });
  if ((podNs?.ipc ?? NS_POD) !== NS_NODE) ns.push({ type: 'ipc', path: `/proc/${pausePid}/ns/ipc` });
  if ((podNs?.network ?? NS_POD) !== NS_NODE) {
    ns.push({ type: 'uts', path: `/proc/${pausePid}/ns/uts` });
    ns.push({ type: 'network', path: sandbox.netns! });
  }
  linux.namespaces = ns;
  if (privileged) {
    delete linux.maskedPaths;
    delete linux.readonlyPaths;
  } else {
    if (sc?.masked_paths && sc.masked_paths.length > 0) linux.maskedPaths = [...sc.masked_paths];
    if (sc?.readonly_paths && sc.readonly_paths.length > 0) linux.readonlyPaths = [...sc.readonly_paths];
  }
  const seccomp = seccompFor(sc?.seccomp ?? null, sc?.seccomp_profile_path ?? '', privileged, input.readProfile);
  if (seccomp) linux.seccomp = seccomp;
  else delete linux.seccomp;

  // resources
  const r = cfg.linux?.resources;
  const resources: NonNullable<typeof linux.resources> = {};
  const devRules: DeviceCgroup[] = privileged ? [{ allow: true, access: 'rwm' }] : [];
  if (r) {
    const cpu: NonNullable<typeof resources.cpu> = {};
    if (Number(r.cpu_shares) > 0) cpu.shares = Number(r.cpu_shares);
    if (Number(r.cpu_quota) > 0) cpu.quota = Number(r.cpu_quota);
    if (Number(r.cpu_period) > 0) cpu.period = Number(r.cpu_period);
    if (r.cpuset_cpus) cpu.cpus = r.cpuset_cpus;
    if (r.cpuset_mems) cpu.mems = r.cpuset_mems;
    if (Object.keys(cpu).length > 0) resources.cpu = cpu;
    if (Number(r.memory_limit_in_bytes) > 0) {
      resources.memory = { limit: Number(r.memory_limit_in_bytes) };
      if (Number(r.memory_swap_limit_in_bytes) > 0) resources.memory.swap = Number(r.memory_swap_limit_in_bytes);
    }
    if (r.hugepage_limits.length > 0) resources.hugepageLimits = r.hugepage_limits.map((h) => ({ pageSize: h.page_size, limit: Number(h.limit) }));
    if (Object.keys(r.unified ?? {}).length > 0) resources.unified = { ...r.unified };
    const adj = Number(r.oom_score_adj);
    if (adj !== 0) proc.oomScoreAdj = Math.max(adj, input.minOomScoreAdj);
  }
  linux.devices = [];
  for (const d of input.devices) {
    const want = cfg.devices.find((x) => x.host_path === d.path);
    if (!want) continue;
    linux.devices.push({ path: want.container_path, type: d.type, major: d.major, minor: d.minor, fileMode: d.fileMode, uid: d.uid, gid: d.gid });
    devRules.push({ allow: true, type: d.type, major: d.major, minor: d.minor, access: want.permissions || 'rwm' });
  }
  if (devRules.length > 0) resources.devices = devRules;
  if (Object.keys(resources).length > 0) linux.resources = resources;
  else delete linux.resources;

  // mounts: the image's defaults, then the pod's /etc files, then kubelet's
  const wanted = new Set(cfg.mounts.map((m) => path.posix.normalize(m.container_path)));
  const mounts: Mount[] = (spec.mounts ?? []).filter((m) => !wanted.has(m.destination) && m.destination !== '/sys/fs/cgroup');
  for (const m of mounts) if (m.destination === '/sys') m.options = ['nosuid', 'noexec', 'nodev', privileged ? 'rw' : 'ro'];
  mounts.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', privileged ? 'rw' : 'ro'] });
  const etc = (dest: string, src: string): void => {
    if (!wanted.has(dest)) mounts.push({ destination: dest, type: 'bind', source: src, options: ['rbind', 'rprivate', sc?.readonly_rootfs ? 'ro' : 'rw'] });
  };
  etc('/etc/hostname', input.sandboxFiles.hostname);
  etc('/etc/hosts', input.sandboxFiles.hosts);
  etc('/etc/resolv.conf', input.sandboxFiles.resolvConf);
  for (const m of cfg.mounts) {
    if (!path.isAbsolute(m.container_path)) throw new Error(`mount ${m.container_path}: the container path must be absolute`);
    if (!path.isAbsolute(m.host_path)) throw new Error(`mount ${m.container_path}: the host path "${m.host_path}" must be absolute`);
    mounts.push({
      destination: path.posix.normalize(m.container_path),
      type: 'bind',
      source: m.host_path,
      options: ['rbind', PROPAGATION[m.propagation] ?? 'rprivate', m.readonly ? 'ro' : 'rw'],
    });
  }
  spec.mounts = mounts;
  // A shared or slave mount needs "/" to allow it, as containerd asks (its
  // rshared/rslave are outside the schema's enum; the submounts keep the
  // host's propagation anyway, since "/" is then not made rslave).
  if (cfg.mounts.some((m) => m.propagation === 2)) linux.rootfsPropagation = 'shared';
  else if (cfg.mounts.some((m) => m.propagation === 1)) linux.rootfsPropagation = 'slave';

  spec.annotations = {
    ...(spec.annotations ?? {}),
    ...cfg.annotations,
    'io.kubernetes.cri.container-type': 'container',
    'io.kubernetes.cri.container-name': cfg.metadata?.name ?? '',
    'io.kubernetes.cri.sandbox-id': sandbox.id,
  };
  return spec;
}
