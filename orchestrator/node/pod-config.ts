// A Pod → the CRI's PodSandboxConfig and ContainerConfig, as kubelet makes
// them (pure): metadata with the pod's uid, kubelet's log layout
// (/var/log/pods/NS_NAME_UID/CONTAINER/N.log), hostPorts as port mappings,
// command and args, env, working dir.

import * as path from 'node:path';
import type { KubeObject } from '../api/objects';

/** The label that ties a sandbox to its pod (kubelet's). */
export const UID_LABEL = 'io.kubernetes.pod.uid';

export interface ContainerSpec {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: { name: string; value?: string }[];
  ports?: { containerPort: number; hostPort?: number; protocol?: string }[];
  imagePullPolicy?: string;
  tty?: boolean;
  stdin?: boolean;
}

export interface PodSpec {
  containers: ContainerSpec[];
  restartPolicy?: string;
  terminationGracePeriodSeconds?: number;
  hostname?: string;
  nodeName?: string;
}

export function podSandboxConfig(p: KubeObject, logRoot: string): Record<string, unknown> {
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
    labels: { ...(p.metadata.labels ?? {}), [UID_LABEL]: uid, 'io.kubernetes.pod.name': name, 'io.kubernetes.pod.namespace': ns },
    annotations: { ...(p.metadata.annotations ?? {}) },
    linux: {},
  };
}

export function containerConfig(p: KubeObject, c: ContainerSpec, attempt: number): Record<string, unknown> {
  return {
    metadata: { name: c.name, attempt },
    image: { image: c.image },
    command: c.command ?? [],
    args: c.args ?? [],
    working_dir: c.workingDir ?? '',
    // KeyValue.value is bytes in the CRI API.
    envs: (c.env ?? []).filter((e) => e.value !== undefined).map((e) => ({ key: e.name, value: Buffer.from(e.value as string) })),
    // kubelet's labels, which crictl filters on.
    labels: { 'io.kubernetes.container.name': c.name, [UID_LABEL]: p.metadata.uid as string, 'io.kubernetes.pod.name': p.metadata.name as string, 'io.kubernetes.pod.namespace': p.metadata.namespace as string },
    log_path: path.join(c.name, `${attempt}.log`),
    tty: c.tty ?? false,
    stdin: c.stdin ?? false,
  };
}
