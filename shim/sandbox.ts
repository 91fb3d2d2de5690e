// Pod sandboxes: RunPodSandbox, StopPodSandbox, RemovePodSandbox.
//
// A sandbox is a network namespace configured by CNI before any process
// exists (a file bound by `unshare --net`), plus a pause process
// (native/mycontainer-pause, run by the runtime library in this process) that
// holds the pod's IPC, UTS and (with a shared pid namespace) PID namespaces
// and sits in the pod's cgroup. Containers join its namespaces by path.
// Why a pause process rather than namespaces pinned by bind mounts only: a
// pid namespace cannot be pinned (it dies with its PID 1, and kubelet's
// shareProcessNamespace needs a PID 1 that reaps), and one process per pod
// is cheap when it is a 700 KB static binary with no image to pull.
//
// Each step that fails undoes the ones before it: a failed RunPodSandbox
// leaves no netns, veth, IPAM lease, port rule, cgroup, mount or record.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { addNetwork, delNetwork, loadDefaultNetwork, loopbackUp, makeNetns, removeNetns, resultIps, type Attachment } from '../engine/cni';
import { writeJsonAtomic } from '../engine/containers';
import { mark } from '../engine/timing';
import { baseSpec } from '../images/bundle';
import { messageOf } from '../runtime/sys/errors';
import { procStat } from '../runtime/state';
import { projectFile } from '../runtime/project';
import * as rt from '../runtime/container';
import type { Spec } from '../runtime/spec/generated/config';
import type { PodSandboxConfig__Output } from './proto/generated/runtime/v1/PodSandboxConfig';
import { CriError, during, invalid } from './errors';
import { SandboxStore, liveState, nowNanos, sandboxName, type SandboxRecord } from './sandbox-store';
import type { CriOptions, CriPaths } from './options';

export const NS_POD = 0;
export const NS_CONTAINER = 1;
export const NS_NODE = 2;
export const NS_TARGET = 3;

const PROTOCOLS = ['tcp', 'udp', 'sctp'];

export interface SandboxContext {
  paths: CriPaths;
  opts: CriOptions;
  store: SandboxStore;
  runtime: rt.RuntimeContext;
  warn(msg: string): void;
}

export function hostNetwork(c: PodSandboxConfig__Output): boolean {
  return c.linux?.security_context?.namespace_options?.network === NS_NODE;
}

/** The pause binary: next to the project's native build. */
function pauseBinary(): string {
  const p = projectFile('native/build/mycontainer-pause');
  if (p) return p;
  throw new CriError(9, 'the pause binary native/build/mycontainer-pause is missing: run `make native`');
}

/** A read-only rootfs holding /pause, made once per boot and shared by every sandbox. */
function ensurePauseRootfs(paths: CriPaths): string {
  const dir = paths.pauseRootfs;
  const bin = path.join(dir, 'pause');
  if (!fs.existsSync(bin)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    for (const d of ['proc', 'dev', 'sys', 'etc']) fs.mkdirSync(path.join(dir, d), { recursive: true });
    const tmp = `${bin}.${process.pid}`;
    fs.copyFileSync(pauseBinary(), tmp);
    fs.chmodSync(tmp, 0o755);
    fs.renameSync(tmp, bin);
  }
  return dir;
}

function resolvConf(c: PodSandboxConfig__Output): string {
  const d = c.dns_config;
  if (!d || (d.servers.length === 0 && d.searches.length === 0 && d.options.length === 0)) {
    try {
      return fs.readFileSync('/etc/resolv.conf', 'utf8');
    } catch {
      return '';
    }
  }
  const lines: string[] = [];
  if (d.searches.length > 0) lines.push(`search ${d.searches.join(' ')}`);
  for (const s of d.servers) lines.push(`nameserver ${s}`);
  if (d.options.length > 0) lines.push(`options ${d.options.join(' ')}`);
  return lines.join('\n') + '\n';
}

/** The pause process's config (pure). */
export function pauseSpec(c: PodSandboxConfig__Output, id: string, rootfs: string, netns: string | null, defaultCgroupParent = '/mycontainer-cri'): Spec {
  const spec = baseSpec();
  const ns = c.linux?.security_context?.namespace_options;
  const sc = c.linux?.security_context;
  spec.root = { path: rootfs, readonly: true };
  spec.process = {
    ...spec.process!,
    args: ['/pause'],
    env: [],
    user: { uid: Number(sc?.run_as_user?.value ?? 65535), gid: Number(sc?.run_as_group?.value ?? 65535) },
    capabilities: { bounding: [], effective: [], permitted: [] },
    noNewPrivileges: true,
  };
  // none given: the uts namespace starts with the node's name, as /etc/hostname says (containerd does the same)
  if (c.hostname) spec.hostname = c.hostname;
  else delete spec.hostname;
  const namespaces: NonNullable<NonNullable<Spec['linux']>['namespaces']> = [{ type: 'mount' }];
  if (ns?.pid !== NS_NODE) namespaces.push({ type: 'pid' });
  if (ns?.ipc !== NS_NODE) namespaces.push({ type: 'ipc' });
  if (ns?.network !== NS_NODE) {
    namespaces.push({ type: 'uts' });
    namespaces.push({ type: 'network', path: netns! });
  } else {
    delete spec.hostname; // the host's own uts namespace
  }
  spec.linux = {
    ...spec.linux,
    namespaces,
    cgroupsPath: `${(c.linux?.cgroup_parent || defaultCgroupParent).replace(/\/+$/, '')}/${id}`,
    sysctl: { ...(c.linux?.sysctls ?? {}) },
    resources: { devices: [{ allow: false, access: 'rwm' }] },
  };
  spec.annotations = { 'io.kubernetes.cri.container-type': 'sandbox', 'io.kubernetes.cri.sandbox-id': id };
  return spec;
}

function cniArgs(c: PodSandboxConfig__Output, id: string): [string, string][] {
  return [
    ['IgnoreUnknown', '1'],
    ['K8S_POD_NAMESPACE', c.metadata?.namespace ?? ''],
    ['K8S_POD_NAME', c.metadata?.name ?? ''],
    ['K8S_POD_INFRA_CONTAINER_ID', id],
    ['K8S_POD_UID', c.metadata?.uid ?? ''],
  ];
}

function attachment(s: Pick<SandboxRecord, 'id' | 'config'>, netns: string): Attachment {
  const ports = s.config.port_mappings
    .filter((p) => p.host_port > 0)
    .map((p) => ({ hostPort: p.host_port, containerPort: p.container_port, protocol: PROTOCOLS[p.protocol] ?? 'tcp', hostIP: p.host_ip || '' }));
  return { containerId: s.id, netns, ifname: 'eth0', args: cniArgs(s.config, s.id), capabilityArgs: { portMappings: ports } };
}

function validate(c: PodSandboxConfig__Output): void {
  const m = c.metadata;
  if (!m || !m.name) throw invalid('RunPodSandbox: metadata.name is required');
  for (const p of c.port_mappings) {
    if (p.container_port <= 0 || p.container_port > 65535 || p.host_port < 0 || p.host_port > 65535) {
      throw invalid(`RunPodSandbox ${m.name}: port mapping ${p.host_port}:${p.container_port} is out of range`);
    }
  }
  for (const k of Object.keys(c.linux?.sysctls ?? {})) {
    if (!/^[a-z0-9_.\/-]+$/i.test(k)) throw invalid(`RunPodSandbox ${m.name}: invalid sysctl name "${k}"`);
  }
}

export async function runPodSandbox(x: SandboxContext, config: PodSandboxConfig__Output, runtimeHandler: string): Promise<string> {
  validate(config);
  const name = sandboxName(config);
  if (runtimeHandler && runtimeHandler !== 'runc' && runtimeHandler !== 'mycontainer') {
    throw invalid(`RunPodSandbox ${name}: unknown runtime handler "${runtimeHandler}"`);
  }
  const clash = x.store.all().find((s) => sandboxName(s.config) === name);
  if (clash) throw new CriError(6, `RunPodSandbox ${name}: the name is reserved for sandbox ${clash.id}`);
  const id = crypto.randomBytes(32).toString('hex');
  const dir = x.paths.sandboxDir(id);
  const undo: (() => Promise<void> | void)[] = [];
  const rec: SandboxRecord = {
    id, config, runtimeHandler, createdAt: nowNanos(), state: 'SANDBOX_NOTREADY', netns: null, ip: '', additionalIps: [], cni: null, pausePid: 0, pauseStartTime: '',
  };
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
    undo.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    // the files containers get as /etc/resolv.conf, /etc/hostname, /etc/hosts
    fs.writeFileSync(path.join(dir, 'resolv.conf'), resolvConf(config));
    const hostname = (!hostNetwork(config) && config.hostname) || (require('node:os') as typeof import('node:os')).hostname();
    fs.writeFileSync(path.join(dir, 'hostname'), `${hostname}\n`);
    x.store.write(rec);
    if (!hostNetwork(config)) {
      mark('RunPodSandbox: begin');
      const netns = x.paths.netns(id);
      await makeNetns(netns);
      undo.push(() => removeNetns(netns));
      rec.netns = netns;
      mark('RunPodSandbox: netns');
    }
    // The pod network and the pause process come up side by side: the
    // pause joins the netns file, which CNI configures meanwhile (the
    // plugins are processes of their own; the runtime's init boots at once).
    const network = async (): Promise<void> => {
      if (!rec.netns) return;
      const netns = rec.netns;
      const list = loadDefaultNetwork(x.opts.cniConfDir);
      const lo = loopbackUp(id, netns, x.opts.cniBinDirs);
      if (!list) {
        x.warn(`RunPodSandbox ${name}: no CNI config in ${x.opts.cniConfDir}: the pod has only lo`);
        await lo;
        return;
      }
      // portmap only when the pod maps host ports: a plugin exec less each way
      const used = { ...list, plugins: list.plugins.filter((p) => p['type'] !== 'portmap' || config.port_mappings.some((m) => m.host_port > 0)) };
      const a = attachment(rec, netns);
      const [, result] = await Promise.all([lo, addNetwork(used, a, x.opts.cniBinDirs)]);
      mark('RunPodSandbox: CNI ADD');
      rec.cni = { list: used, result };
      undo.push(() => delNetwork(used, a, result, x.opts.cniBinDirs).catch(() => undefined));
      const ips = resultIps(result);
      rec.ip = ips[0] ?? '';
      rec.additionalIps = ips.slice(1);
    };
    const pause = async (): Promise<void> => {
      const bundle = x.paths.pauseBundle(id);
      fs.mkdirSync(bundle, { recursive: true, mode: 0o700 });
      writeJsonAtomic(path.join(bundle, 'config.json'), pauseSpec(config, id, ensurePauseRootfs(x.paths), rec.netns, x.opts.defaultCgroupParent));
      const created = await rt.create(x.runtime, { id, bundle, noPivot: false, stdio: ['ignore', 'ignore', 'ignore'] });
      undo.push(() => {
        try {
          rt.remove(x.runtime, id, true);
        } catch {
          // gone
        }
      });
      created.init.release();
      mark('RunPodSandbox: pause created');
    };
    const [n, p] = await Promise.allSettled([network(), pause()]);
    if (n.status === 'rejected') throw n.reason;
    if (p.status === 'rejected') throw p.reason;
    x.store.write(rec);
    fs.writeFileSync(path.join(dir, 'hosts'), `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${rec.ip ? `${rec.ip}\t${hostname}\n` : ''}`);
    const started = await rt.start(x.runtime, id);
    mark('RunPodSandbox: pause started');
    rec.pausePid = started.pid;
    rec.pauseStartTime = procStat(started.pid)?.startTime ?? '';
    rec.state = 'SANDBOX_READY';
    x.store.write(rec);
    return id;
  } catch (e) {
    for (const u of undo.reverse()) {
      try {
        await u();
      } catch {
        // best effort: the original error matters
      }
    }
    throw during(`RunPodSandbox ${name}`, e);
  }
}

/** Kills the pause process and takes the network down; the record stays (NOTREADY). Idempotent. */
export async function stopSandboxNetworkAndPause(x: SandboxContext, s: SandboxRecord): Promise<void> {
  const problems: string[] = [];
  try {
    rt.kill(x.runtime, s.id, 'KILL', false);
  } catch {
    // not running
  }
  for (let i = 0; i < 100 && liveState(s) === 'SANDBOX_READY'; i++) await new Promise((r) => setTimeout(r, 20));
  if (s.netns && s.cni) {
    try {
      await delNetwork(s.cni.list, attachment(s, fs.existsSync(s.netns) ? s.netns : ''), s.cni.result, x.opts.cniBinDirs);
    } catch (e) {
      problems.push(`CNI DEL: ${messageOf(e)}`);
    }
  }
  if (s.netns) removeNetns(s.netns);
  s.state = 'SANDBOX_NOTREADY';
  s.cni = problems.length > 0 ? s.cni : null;
  x.store.write(s);
  if (problems.length > 0) throw new CriError(2, problems.join('; '));
}

export function removePauseState(x: SandboxContext, s: SandboxRecord): void {
  try {
    rt.remove(x.runtime, s.id, true);
  } catch {
    // already gone
  }
}
