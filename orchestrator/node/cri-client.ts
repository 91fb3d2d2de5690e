// The node agent's CRI client: runtime.v1 over the CRI server's unix
// socket, as kubelet speaks it (generated from shim/proto/api.proto, the
// published CRI API). Only the calls the agent makes, as promises.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { projectFile } from '../../runtime/project';

type Msg = Record<string, unknown>;

export interface CriClient {
  version(): Promise<{ runtime_name: string; runtime_version: string }>;
  runPodSandbox(config: Msg): Promise<string>;
  stopPodSandbox(id: string): Promise<void>;
  removePodSandbox(id: string): Promise<void>;
  podSandboxStatus(id: string): Promise<{ state: number; network?: { ip?: string } }>;
  listPodSandbox(): Promise<{ id: string; state: number; metadata: { name: string; namespace: string; uid: string } }[]>;
  createContainer(podId: string, config: Msg, podConfig: Msg): Promise<string>;
  startContainer(id: string): Promise<void>;
  stopContainer(id: string, timeout: number): Promise<void>;
  removeContainer(id: string): Promise<void>;
  containerStatus(id: string): Promise<{ id: string; state: number; started_at: string; finished_at: string; exit_code: number; reason: string; image_ref: string }>;
  listContainers(podId: string): Promise<{ id: string; state: number; metadata: { name: string; attempt: number } }[]>;
  /** The streaming URLs (kubectl exec, attach, port-forward go there, through the API server). */
  exec(containerId: string, cmd: string[], o: { tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }): Promise<string>;
  attach(containerId: string, o: { tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }): Promise<string>;
  portForward(sandboxId: string, ports: number[]): Promise<string>;
  /** Runs `cmd` in the container, waits (timeout in seconds), returns its exit code (exec probes). */
  execSync(containerId: string, cmd: string[], timeout: number): Promise<number>;
  imageStatus(image: string): Promise<{ id: string } | null>;
  pullImage(image: string): Promise<string>;
  close(): void;
}

/** CRI container states. */
export const CONTAINER = { CREATED: 0, RUNNING: 1, EXITED: 2, UNKNOWN: 3 } as const;

export function connectCri(endpoint: string): CriClient {
  const file = projectFile('shim/proto/api.proto');
  if (!file) throw new Error('cannot find shim/proto/api.proto');
  const def = protoLoader.loadSync(file, { keepCase: true, longs: String, enums: Number, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: Record<string, grpc.ServiceClientConstructor> } };
  const address = endpoint.startsWith('unix://') ? endpoint : `unix://${endpoint}`;
  const rt = new pkg.runtime.v1['RuntimeService']!(address, grpc.credentials.createInsecure());
  const im = new pkg.runtime.v1['ImageService']!(address, grpc.credentials.createInsecure());
  const call = <T>(client: grpc.Client, method: string, req: Msg): Promise<T> =>
    new Promise((resolve, reject) => {
      const fn = (client as unknown as Record<string, (r: Msg, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, res: T) => void) => void>)[method];
      if (!fn) return reject(new Error(`CRI: no method ${method}`));
      fn.call(client, req, { deadline: Date.now() + 300000 }, (e, res) => (e ? reject(new Error(`CRI ${method}: ${e.details || e.message}`)) : resolve(res)));
    });
  return {
    version: () => call(rt, 'Version', { version: 'v1' }),
    runPodSandbox: async (config) => (await call<{ pod_sandbox_id: string }>(rt, 'RunPodSandbox', { config })).pod_sandbox_id,
    stopPodSandbox: async (id) => void (await call(rt, 'StopPodSandbox', { pod_sandbox_id: id })),
    removePodSandbox: async (id) => void (await call(rt, 'RemovePodSandbox', { pod_sandbox_id: id })),
    podSandboxStatus: async (id) => (await call<{ status: { state: number; network?: { ip?: string } } }>(rt, 'PodSandboxStatus', { pod_sandbox_id: id })).status,
    listPodSandbox: async () => (await call<{ items: { id: string; state: number; metadata: { name: string; namespace: string; uid: string } }[] }>(rt, 'ListPodSandbox', {})).items,
    createContainer: async (podId, config, podConfig) => (await call<{ container_id: string }>(rt, 'CreateContainer', { pod_sandbox_id: podId, config, sandbox_config: podConfig })).container_id,
    startContainer: async (id) => void (await call(rt, 'StartContainer', { container_id: id })),
    stopContainer: async (id, timeout) => void (await call(rt, 'StopContainer', { container_id: id, timeout })),
    removeContainer: async (id) => void (await call(rt, 'RemoveContainer', { container_id: id })),
    containerStatus: async (id) => (await call<{ status: { id: string; state: number; started_at: string; finished_at: string; exit_code: number; reason: string; image_ref: string } }>(rt, 'ContainerStatus', { container_id: id })).status,
    listContainers: async (podId) => (await call<{ containers: { id: string; state: number; metadata: { name: string; attempt: number } }[] }>(rt, 'ListContainers', { filter: { pod_sandbox_id: podId } })).containers,
    exec: async (id, cmd, o) => (await call<{ url: string }>(rt, 'Exec', { container_id: id, cmd, ...o })).url,
    attach: async (id, o) => (await call<{ url: string }>(rt, 'Attach', { container_id: id, ...o })).url,
    portForward: async (id, ports) => (await call<{ url: string }>(rt, 'PortForward', { pod_sandbox_id: id, port: ports })).url,
    execSync: async (id, cmd, timeout) => (await call<{ exit_code: number }>(rt, 'ExecSync', { container_id: id, cmd, timeout })).exit_code,
    imageStatus: async (image) => (await call<{ image: { id: string } | null }>(im, 'ImageStatus', { image: { image } })).image ?? null,
    pullImage: async (image) => (await call<{ image_ref: string }>(im, 'PullImage', { image: { image } })).image_ref,
    close: () => {
      rt.close();
      im.close();
    },
  };
}
