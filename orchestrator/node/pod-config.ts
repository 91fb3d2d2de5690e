// A Pod → the CRI's PodSandboxConfig and ContainerConfig, as kubelet makes
// them (pure): metadata with the pod's uid, kubelet's log layout
// (/var/log/pods/NS_NAME_UID/CONTAINER/N.log), hostPorts as port mappings,
// command and args, env, working dir.

import * as path from 'node:path';
import type { KubeObject } from '../api/objects';
import { quantity } from '../api/quantity';

/** The label that ties a sandbox to its pod (kubelet's). */
export const UID_LABEL = 'io.kubernetes.pod.uid';

export interface ContainerSpec {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: { name: string; value?: string }[];
  envFrom?: { prefix?: string; configMapRef?: { name: string; optional?: boolean }; secretRef?: { name: string; optional?: boolean } }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
  ports?: { name?: string; containerPort: number; hostPort?: number; protocol?: string }[];
  resources?: { limits?: Record<string, string | number>; requests?: Record<string, string | number> };
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  livenessProbe?: import('./probes').Probe;
  readinessProbe?: import('./probes').Probe;
  startupProbe?: import('./probes').Probe;
  imagePullPolicy?: string;
  tty?: boolean;
  stdin?: boolean;
}

/**
 * requests and limits → the CRI's LinuxContainerResources, as kubelet maps
 * them: cpu limit → quota over a 100 ms period, cpu request → shares
 * (1024 per core, at least 2), memory limit → memory.limit.
 */
export function linuxResources(r: { limits?: Record<string, string | number>; requests?: Record<string, string | number> } | undefined): Record<string, unknown> {
  const cpuLimit = quantity(r?.limits?.['cpu']);
  const cpuRequest = quantity(r?.requests?.['cpu']) ?? cpuLimit;
  const memLimit = quantity(r?.limits?.['memory']);
  return {
    ...(cpuLimit !== undefined ? { cpu_period: '100000', cpu_quota: String(Math.max(1000, Math.round(cpuLimit * 100000))) } : {}),
    cpu_shares: String(cpuRequest !== undefined ? Math.max(2, Math.round(cpuRequest * 1024)) : 2),
    ...(memLimit !== undefined ? { memory_limit_in_bytes: String(Math.round(memLimit)) } : {}),
  };
}

export interface PodSpec {
  containers: ContainerSpec[];
  restartPolicy?: string;
  terminationGracePeriodSeconds?: number;
  hostname?: string;
  nodeName?: string;
}

export function podSandboxConfig(p: KubeObject, logRoot: string, dns: { servers: string[]; searches: string[]; options: string[] } | null = null): Record<string, unknown> {
  const spec = p.spec as PodSpec;
  const ns = p.metadata.namespace as string;
  const name = p.metadata.name as string;
  const uid = p.metadata.uid as string;
  const ports = spec.containers.flatMap((c) => (c.ports ?? []).filter((x) => x.hostPort).map((x) => ({ protocol: x.protocol === 'UDP' ? 1 : 0, container_port: x.containerPort, host_port: x.hostPort })));
  return {
    metadata: { name, namespace: ns, uid, attempt: 0 },
    hostname: spec.hostname ?? name,
    log_directory: path.join(logRoot, `${ns}_${name}_${uid}`),
    port_mappings: ports,
    // dnsPolicy ClusterFirst (the default): the cluster's DNS; Default: the node's resolv.conf.
    ...(dns && ((spec as { dnsPolicy?: string }).dnsPolicy ?? 'ClusterFirst') === 'ClusterFirst' ? { dns_config: dns } : {}),
    labels: { ...(p.metadata.labels ?? {}), [UID_LABEL]: uid, 'io.kubernetes.pod.name': name, 'io.kubernetes.pod.namespace': ns },
    annotations: { ...(p.metadata.annotations ?? {}) },
    linux: {},
  };
}

/**
 * Docker-link style variables for the services of the pod's namespace that
 * exist when it starts (kubelet's enableServiceLinks): REDIS_MASTER_SERVICE_HOST,
 * REDIS_MASTER_SERVICE_PORT, REDIS_MASTER_PORT_6379_TCP=tcp://IP:6379, ... (pure).
 */
export function serviceEnv(services: KubeObject[]): { name: string; value: string }[] {
  const out: { name: string; value: string }[] = [];
  for (const s of services) {
    const spec = (s.spec ?? {}) as { clusterIP?: string; ports?: { name?: string; port: number; protocol?: string }[] };
    if (!spec.clusterIP || spec.clusterIP === 'None' || !spec.ports?.length) continue;
    const n = String(s.metadata.name).toUpperCase().replace(/-/g, '_');
    const ip = spec.clusterIP;
    const first = spec.ports[0] as { port: number; protocol?: string };
    out.push({ name: `${n}_SERVICE_HOST`, value: ip }, { name: `${n}_SERVICE_PORT`, value: String(first.port) });
    for (const p of spec.ports) if (p.name) out.push({ name: `${n}_SERVICE_PORT_${p.name.toUpperCase().replace(/-/g, '_')}`, value: String(p.port) });
    out.push({ name: `${n}_PORT`, value: `${(first.protocol ?? 'TCP').toLowerCase()}://${ip}:${first.port}` });
    for (const p of spec.ports) {
      const proto = p.protocol ?? 'TCP';
      const pre = `${n}_PORT_${p.port}_${proto}`;
      out.push({ name: pre, value: `${proto.toLowerCase()}://${ip}:${p.port}` }, { name: `${pre}_PROTO`, value: proto.toLowerCase() }, { name: `${pre}_PORT`, value: String(p.port) }, { name: `${pre}_ADDR`, value: ip });
    }
  }
  return out;
}

export function containerConfig(p: KubeObject, c: ContainerSpec, attempt: number, services: KubeObject[] = []): Record<string, unknown> {
  // The container's own env wins over the service links, as kubelet's order has it.
  const env = [...((p.spec as { enableServiceLinks?: boolean }).enableServiceLinks === false ? [] : serviceEnv(services)), ...(c.env ?? [])];
  return {
    metadata: { name: c.name, attempt },
    image: { image: c.image },
    command: c.command ?? [],
    args: c.args ?? [],
    working_dir: c.workingDir ?? '',
    // KeyValue.value is bytes in the CRI API.
    envs: env.filter((e) => e.value !== undefined).map((e) => ({ key: e.name, value: Buffer.from(e.value as string) })),
    // kubelet's labels, which crictl filters on.
    labels: { 'io.kubernetes.container.name': c.name, [UID_LABEL]: p.metadata.uid as string, 'io.kubernetes.pod.name': p.metadata.name as string, 'io.kubernetes.pod.namespace': p.metadata.namespace as string },
    log_path: path.join(c.name, `${attempt}.log`),
    tty: c.tty ?? false,
    stdin: c.stdin ?? false,
    linux: { resources: linuxResources(c.resources) },
  };
}
