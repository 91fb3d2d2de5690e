// The node agent (kubelet's job) on our CRI server, over its gRPC socket:
// it registers this machine as a Node and keeps its Ready heartbeat, and
// makes the pods bound to it real: a sandbox per pod, its containers from
// their images (pulled by imagePullPolicy), restarts by restartPolicy with
// kubelet's crash-loop backoff, and the pod's status (phase, podIP,
// containerStatuses, conditions). A pod being deleted is stopped within
// its grace period, then its object goes.
//
// One sync per pod at a time; a loop each second reads every pod bound
// here and every sandbox of ours and acts on the difference, so nothing
// depends on seeing an event (a restart of the server picks up where the
// last one left off, from the sandboxes' labels).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { KubeObject } from '../api/objects';
import type { Client } from '../client';
import { typeOf } from '../client';
import { CONTAINER, type CriClient } from './cri-client';
import { UID_LABEL, podSandboxConfig, containerConfig, type PodSpec } from './pod-config';
import { ConfigError, containerMounts, prepareVolumes, resolveEnv } from './pod-inputs';
import { Prober } from './probes';

const POD = typeOf('Pod');
const NODE = typeOf('Node');
const SERVICE = typeOf('Service');
const CONFIGMAP = typeOf('ConfigMap');
const SECRET = typeOf('Secret');
const HEARTBEAT_MS = 10000;
const BACKOFF_START_MS = 10000;
const BACKOFF_MAX_MS = 300000;

export interface AgentOptions {
  nodeName: string;
  /** Where the pods' logs go (kubelet: /var/log/pods). */
  podLogDir: string;
  /** Where the pods' volumes are made (kubelet: /var/lib/kubelet/pods). */
  podDir: string;
  /** The cluster DNS resolv.conf for a ClusterFirst pod of a namespace, once DNS runs. */
  dns?: (namespace: string) => { servers: string[]; searches: string[]; options: string[] } | null;
  log: (line: string) => void;
}

interface ContainerState {
  id: string;
  attempt: number;
  restarts: number;
  /** No new start before this (crash-loop backoff). */
  backoffUntil: number;
  /** The last terminated state, for lastState. */
  last?: Record<string, unknown>;
  /** Waiting: the reason (ErrImagePull, ImagePullBackOff, CrashLoopBackOff) and its message. */
  waiting?: { reason: string; message?: string };
}

interface PodState {
  sandboxId: string;
  containers: Map<string, ContainerState>;
  pullFailures: Map<string, { count: number; until: number; message: string }>;
  /** A reference that cannot be resolved yet (CreateContainerConfigError), by container. */
  configErrors: Map<string, string>;
}

export interface NodeAgent {
  /** The CRI streaming URL for kubectl exec, attach or port-forward into `pod` (as kubelet answers the API server). */
  streamUrl(kind: 'exec' | 'attach' | 'portforward', pod: KubeObject, q: URLSearchParams): Promise<string>;
  stop(): Promise<void>;
}

export function startNodeAgent(client: Client, cri: CriClient, o: AgentOptions): NodeAgent {
  const pods = new Map<string, PodState>(); // by pod uid
  const prober = new Prober();
  const busy = new Set<string>();
  let stopped = false;
  let lastBeat = 0;
  let runtimeVersion = 'mycontainer';

  // Ready as kubelet reports it: False while the container runtime does not answer.
  const ensureNode = (runtimeDown: string | null): void => {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const node = client.get(NODE, null, o.nodeName);
    const was = ((node?.status as { conditions?: { type: string; status: string; lastTransitionTime?: string }[] } | undefined)?.conditions ?? []).find((c) => c.type === 'Ready');
    const status = runtimeDown ? 'False' : 'True';
    const ready = runtimeDown
      ? { type: 'Ready', status, reason: 'KubeletNotReady', message: `container runtime is down: ${runtimeDown}` }
      : { type: 'Ready', status, reason: 'KubeletReady', message: 'mycontainer node agent is posting ready status' };
    const nodeStatus = {
      capacity: { cpu: String(os.cpus().length), memory: `${Math.floor(os.totalmem() / 1024)}Ki`, pods: '110' },
      allocatable: { cpu: String(os.cpus().length), memory: `${Math.floor(os.totalmem() / 1024)}Ki`, pods: '110' },
      conditions: [{ ...ready, lastHeartbeatTime: now, lastTransitionTime: was?.status === status && was.lastTransitionTime ? was.lastTransitionTime : now }],
      addresses: [{ type: 'InternalIP', address: internalIp() }, { type: 'Hostname', address: o.nodeName }],
      nodeInfo: { kubeletVersion: 'v1.33.0-mycontainer', containerRuntimeVersion: runtimeVersion, kernelVersion: os.release(), osImage: osImage(), operatingSystem: 'linux', architecture: process.arch === 'x64' ? 'amd64' : process.arch },
    };
    if (!node) {
      client.create(NODE, null, { apiVersion: 'v1', kind: 'Node', metadata: { name: o.nodeName, labels: { 'kubernetes.io/hostname': o.nodeName, 'kubernetes.io/os': 'linux', 'node-role.kubernetes.io/control-plane': 'true' } } });
    }
    client.patchStatus(NODE, null, o.nodeName, nodeStatus);
  };

  async function tick(): Promise<void> {
    if (Date.now() - lastBeat > HEARTBEAT_MS) {
      lastBeat = Date.now();
      let down: string | null = null;
      try {
        const v = await cri.version();
        runtimeVersion = `${v.runtime_name}://${v.runtime_version}`;
      } catch (e) {
        down = (e as Error).message;
      }
      ensureNode(down);
    }
    const mine = client.list(POD, null).filter((p) => (p.spec as { nodeName?: string }).nodeName === o.nodeName);
    const uids = new Set(mine.map((p) => p.metadata.uid as string));
    // Sandboxes of pods that are gone (deleted with --force, or while we were down).
    for (const sb of await cri.listPodSandbox()) {
      const uid = sb.metadata.uid;
      if (!uids.has(uid) && sb.metadata.namespace !== '' && isOurs(sb)) await removeSandbox(sb.id, uid);
    }
    // Not awaited: a slow pull must not hold the other pods back (syncOnce runs one sync per pod at a time).
    for (const p of mine) void syncOnce(p);
  }

  const isOurs = (sb: { metadata: { uid: string } }): boolean => pods.has(sb.metadata.uid) || sb.metadata.uid.length === 36;

  async function removeSandbox(id: string, uid: string): Promise<void> {
    try {
      await cri.stopPodSandbox(id);
      await cri.removePodSandbox(id);
    } catch (e) {
      o.log(`node agent: removing sandbox ${id}: ${(e as Error).message}`);
    }
    pods.delete(uid);
    // Its volumes (configMap and secret files, emptyDirs) go with it.
    if (/^[0-9a-f-]{36}$/.test(uid)) fs.rmSync(path.join(o.podDir, uid), { recursive: true, force: true });
  }

  async function syncOnce(p: KubeObject): Promise<void> {
    const uid = p.metadata.uid as string;
    if (busy.has(uid) || stopped) return;
    busy.add(uid);
    try {
      await syncPod(p);
    } catch (e) {
      o.log(`node agent: pod ${String(p.metadata.namespace)}/${String(p.metadata.name)}: ${(e as Error).message}`);
    } finally {
      busy.delete(uid);
    }
  }

  async function syncPod(p: KubeObject): Promise<void> {
    const uid = p.metadata.uid as string;
    const ns = p.metadata.namespace as string;
    const name = p.metadata.name as string;
    const spec = p.spec as PodSpec;
    let st = pods.get(uid);
    if (p.metadata.deletionTimestamp) {
      // Graceful termination: each container gets the grace period, then the sandbox goes, then the object.
      const grace = Number((p.metadata as { deletionGracePeriodSeconds?: number }).deletionGracePeriodSeconds ?? spec.terminationGracePeriodSeconds ?? 30);
      if (st) {
        // preStop hooks first (exec, within the grace period), then SIGTERM, then SIGKILL at its end.
        const state = st;
        await Promise.all(spec.containers.map(async (c) => {
          const id = state.containers.get(c.name)?.id;
          const hook = c.lifecycle?.preStop?.exec?.command;
          if (id && hook) await cri.execSync(id, hook, grace).catch(() => undefined);
        }));
        await Promise.all([...st.containers.values()].map((c) => cri.stopContainer(c.id, grace).catch(() => undefined)));
        await removeSandbox(st.sandboxId, uid);
      } else {
        for (const sb of await cri.listPodSandbox()) if (sb.metadata.uid === uid) await removeSandbox(sb.id, uid);
      }
      client.delete(POD, ns, name);
      return;
    }
    const phase = (p.status as { phase?: string } | undefined)?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') return;
    const podConfig = podSandboxConfig(p, o.podLogDir, o.dns?.(p.metadata.namespace as string) ?? null);
    let sb = st ? await cri.podSandboxStatus(st.sandboxId).catch(() => null) : null;
    // A sandbox that died or went (crictl stopp/rmp): a new one, as kubelet makes.
    if (st && sb?.state !== 0) {
      await removeSandbox(st.sandboxId, uid);
      st = undefined;
    }
    if (!st) {
      const existing = (await cri.listPodSandbox()).find((x) => x.metadata.uid === uid && x.state === 0);
      const sandboxId = existing?.id ?? (await cri.runPodSandbox(podConfig));
      st = { sandboxId, containers: new Map(), pullFailures: new Map(), configErrors: new Map() };
      // Containers a previous server started: take them back.
      for (const c of await cri.listContainers(sandboxId)) {
        const prev = st.containers.get(c.metadata.name);
        if (!prev || prev.attempt < c.metadata.attempt) st.containers.set(c.metadata.name, { id: c.id, attempt: c.metadata.attempt, restarts: c.metadata.attempt, backoffUntil: 0 });
      }
      pods.set(uid, st);
      sb = await cri.podSandboxStatus(sandboxId).catch(() => null);
    }
    const podIp = sb?.network?.ip || null;
    const statuses: Record<string, unknown>[] = [];
    let ready = 0;
    let running = 0;
    let succeeded = 0;
    let failed = 0;
    for (const c of spec.containers) {
      let cs = st.containers.get(c.name);
      if (cs) {
        // A container removed behind our back (crictl rm -f) counts as one that died.
        const s = (await cri.containerStatus(cs.id).catch(() => null)) ?? { id: cs.id, state: CONTAINER.EXITED, started_at: '0', finished_at: '0', exit_code: 137, reason: 'ContainerGone', image_ref: '' };
        if (s.state === CONTAINER.EXITED) {
          const terminated = { exitCode: s.exit_code, reason: s.reason || (s.exit_code === 0 ? 'Completed' : 'Error'), startedAt: isoOf(s.started_at), finishedAt: isoOf(s.finished_at), containerID: `mycontainer://${cs.id}` };
          const policy = spec.restartPolicy ?? 'Always';
          const again = policy === 'Always' || (policy === 'OnFailure' && s.exit_code !== 0);
          if (!again) {
            statuses.push(containerStatus(c, cs, { terminated }, false, s.image_ref));
            if (s.exit_code === 0) succeeded++;
            else failed++;
            continue;
          }
          if (!cs.waiting) {
            // kubelet's crash-loop backoff: the first restart at once, then 10 s, doubling, at most 5 min.
            cs.backoffUntil = Date.now() + (cs.restarts === 0 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** (cs.restarts - 1)));
            cs.last = { terminated };
            cs.waiting = { reason: 'CrashLoopBackOff', message: `back-off restarting failed container ${c.name} in pod ${name}_${ns}(${uid})` };
          }
          if (Date.now() < cs.backoffUntil) {
            statuses.push(containerStatus(c, cs, { waiting: cs.waiting }, false, s.image_ref));
            continue;
          }
          prober.forget(cs.id);
          await cri.removeContainer(cs.id).catch(() => undefined);
          const id = await startContainer(p, st, c, podConfig, cs.attempt + 1);
          if (!id) {
            statuses.push(containerStatus(c, cs, { waiting: waitingReason(st, c.name) }, false, ''));
            continue;
          }
          cs = { id, attempt: cs.attempt + 1, restarts: cs.restarts + 1, backoffUntil: 0, ...(cs.last ? { last: cs.last } : {}) };
          st.containers.set(c.name, cs);
        }
      } else {
        const id = await startContainer(p, st, c, podConfig, 0);
        if (!id) {
          statuses.push(containerStatus(c, { id: '', attempt: 0, restarts: 0, backoffUntil: 0 }, { waiting: waitingReason(st, c.name) }, false, ''));
          continue;
        }
        cs = { id, attempt: 0, restarts: 0, backoffUntil: 0 };
        st.containers.set(c.name, cs);
      }
      const s = await cri.containerStatus(cs.id);
      delete cs.waiting;
      const id = cs.id;
      const probed = prober.check({
        containerId: id, podIp: podIp ?? undefined, ports: c.ports ?? [], startedAt: Number(s.started_at) / 1e6,
        execSync: (cmd, timeout) => cri.execSync(id, cmd, timeout),
      }, { startup: c.startupProbe, liveness: c.livenessProbe, readiness: c.readinessProbe });
      if (!probed.alive) {
        // kubelet kills a container whose liveness (or startup) probe failed; restartPolicy does the rest.
        o.log(`node agent: pod ${ns}/${name} container ${c.name}: ${probed.why}; killing it`);
        prober.forget(id);
        await cri.stopContainer(id, Number(spec.terminationGracePeriodSeconds ?? 30)).catch(() => undefined);
      }
      statuses.push(containerStatus(c, cs, { running: { startedAt: isoOf(s.started_at) } }, probed.ready && probed.alive, s.image_ref, probed.started));
      if (probed.ready && probed.alive) ready++;
      running++;
    }
    const total = spec.containers.length;
    const newPhase = succeeded === total ? 'Succeeded' : failed > 0 && failed + succeeded === total ? 'Failed' : running > 0 || succeeded > 0 ? 'Running' : 'Pending';
    const allReady = ready === total;
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const prev = (p.status ?? {}) as { conditions?: { type: string; status: string; lastTransitionTime?: string }[]; startTime?: string };
    const cond = (type: string, ok: boolean): Record<string, unknown> => {
      const was = prev.conditions?.find((c) => c.type === type);
      const status = ok ? 'True' : 'False';
      return { type, status, lastProbeTime: null, lastTransitionTime: was && was.status === status ? was.lastTransitionTime : now };
    };
    const status = {
      phase: newPhase,
      conditions: [cond('Initialized', true), cond('Ready', allReady), cond('ContainersReady', allReady), cond('PodScheduled', true)],
      hostIP: internalIp(),
      podIP: sb?.network?.ip || undefined,
      podIPs: sb?.network?.ip ? [{ ip: sb.network.ip }] : undefined,
      startTime: prev.startTime ?? now,
      containerStatuses: statuses,
      qosClass: 'BestEffort',
    };
    const clean = JSON.parse(JSON.stringify(status)) as Record<string, unknown>;
    if (JSON.stringify({ ...clean, conditions: undefined }) !== JSON.stringify({ ...(p.status as object), conditions: undefined }) || JSON.stringify((p.status as { conditions?: unknown })?.conditions) !== JSON.stringify(clean['conditions'])) {
      client.patchStatus(POD, ns, name, clean);
    }
  }

  /** Pulls by imagePullPolicy, creates and starts; null while the image cannot be had (with backoff). */
  async function startContainer(p: KubeObject, st: PodState, c: PodSpec['containers'][number], podConfig: Record<string, unknown>, attempt: number): Promise<string | null> {
    const f = st.pullFailures.get(c.name);
    if (f && Date.now() < f.until) return null;
    const policy = c.imagePullPolicy ?? 'IfNotPresent';
    try {
      const have = policy === 'Always' ? null : await cri.imageStatus(c.image);
      if (!have) {
        if (policy === 'Never') throw new Error(`container image "${c.image}" is not present with pull policy of Never`);
        await cri.pullImage(c.image);
      }
      st.pullFailures.delete(c.name);
    } catch (e) {
      const count = (f?.count ?? 0) + 1;
      st.pullFailures.set(c.name, { count, until: Date.now() + Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** (count - 1)), message: (e as Error).message });
      return null;
    }
    const ns = p.metadata.namespace as string;
    const services = client.list(SERVICE, ns);
    const lookup = (kind: 'ConfigMap' | 'Secret', name: string): KubeObject | null => client.get(kind === 'ConfigMap' ? CONFIGMAP : SECRET, ns, name);
    let env: { name: string; value: string }[];
    let mounts: { container_path: string; host_path: string; readonly: boolean }[];
    try {
      env = resolveEnv(p, c, lookup);
      const volumes = prepareVolumes(p, path.join(o.podDir, p.metadata.uid as string, 'volumes'), lookup);
      mounts = containerMounts(c, volumes);
      st.configErrors.delete(c.name);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      st.configErrors.set(c.name, e.message);
      return null;
    }
    const id = await cri.createContainer(st.sandboxId, { ...containerConfig(p, { ...c, env }, attempt, services), mounts }, podConfig);
    await cri.startContainer(id);
    return id;
  }

  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> = Promise.resolve();
  const loop = (): void => {
    if (stopped) return;
    running = tick().catch((e: unknown) => o.log(`node agent: ${(e as Error).message}`)).finally(() => {
      if (!stopped) timer = setTimeout(loop, 1000);
    });
  };
  loop();
  const streamUrl = async (kind: 'exec' | 'attach' | 'portforward', pod: KubeObject, q: URLSearchParams): Promise<string> => {
    const st = pods.get(pod.metadata.uid as string);
    const name = pod.metadata.name as string;
    if (!st) throw new Error(`pod ${name} has no sandbox on this node yet`);
    if (kind === 'portforward') return cri.portForward(st.sandboxId, q.getAll('ports').flatMap((p) => p.split(',')).map(Number));
    const names = (pod.spec as PodSpec).containers.map((c) => c.name);
    const container = q.get('container') ?? (names.length === 1 ? names[0] : undefined);
    if (!container) throw new Error(`a container name must be specified for pod ${name}, choose one of: [${names.join(' ')}]`);
    const cs = st.containers.get(container);
    if (!cs?.id) throw new Error(`container ${container} is not valid for pod ${name}`);
    const flags = { tty: q.get('tty') === 'true', stdin: q.get('stdin') === 'true', stdout: q.get('stdout') !== 'false', stderr: q.get('stderr') === 'true' };
    return kind === 'exec' ? cri.exec(cs.id, q.getAll('command'), flags) : cri.attach(cs.id, flags);
  };
  return {
    streamUrl,
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

/** Why a container is not running yet: a config reference, an image, or being made. */
function waitingReason(st: PodState, name: string): { reason: string; message?: string } {
  const config = st.configErrors.get(name);
  if (config) return { reason: 'CreateContainerConfigError', message: config };
  const f = st.pullFailures.get(name);
  if (f) return { reason: f.count > 1 ? 'ImagePullBackOff' : 'ErrImagePull', message: f.message };
  return { reason: 'ContainerCreating' };
}

function containerStatus(c: { name: string; image: string }, cs: ContainerState, state: Record<string, unknown>, ready: boolean, imageRef: string, started = ready): Record<string, unknown> {
  return {
    name: c.name, image: c.image, imageID: imageRef, ...(cs.id ? { containerID: `mycontainer://${cs.id}` } : {}),
    ready, started, restartCount: cs.restarts, state, lastState: cs.last ?? {},
  };
}

function isoOf(ns: string | number): string {
  const n = Number(ns);
  return n > 0 ? new Date(n / 1e6).toISOString().replace(/\.\d+Z$/, 'Z') : '';
}

export function internalIp(): string {
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return '127.0.0.1';
}

function osImage(): string {
  try {
    const text = require('node:fs').readFileSync('/etc/os-release', 'utf8') as string;
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text)?.[1] ?? 'Linux';
  } catch {
    return 'Linux';
  }
}

export const DEFAULT_POD_LOG_DIR = path.join('/var/log', 'pods');
