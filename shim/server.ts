// The CRI runtime.v1 server: RuntimeService and ImageService on one unix
// socket (root only, mode 0660), as containerd's CRI plugin serves kubelet.
// A long-lived process that calls the libraries in-process: no Node process
// is started per call (each running container has its monitor, as conmon).
//
// This file is wiring: it loads api.proto, serialises the calls on one
// sandbox (different sandboxes run in parallel), turns every thrown error
// into its gRPC status (shim/errors.ts) and answers UNIMPLEMENTED, with a
// message, for what is not supported. The RPCs live in sandbox.ts,
// containers.ts, images.ts and stats.ts.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ContainerStore } from '../engine/containers';
import { loadDefaultNetwork } from '../engine/cni';
import { ContentStore } from '../images/store';
import type { Image } from '../images/image';
import { messageOf } from '../runtime/sys/errors';
import type { RuntimeContext } from '../runtime/container';
import { CriError, grpcStatusOf, invalid, notFound, precondition, unimplemented } from './errors';
import { liveStatus as liveStatusOf } from '../engine/containers';
import { CriPaths, type CriOptions } from './options';
import { authorityProxy, backendSocket } from './authority';
import { SandboxStore, liveState, type SandboxRecord } from './sandbox-store';
import { hostNetwork, removePauseState, runPodSandbox, stopSandboxNetworkAndPause } from './sandbox';
import {
  MonitorPool, containerStatus, createContainer, execSync, listContainers, readInfo, removeContainerCri, reopenContainerLog, resolveContainer, sandboxContainers,
  startContainerCri, stopContainerCri, type ContainerContext,
} from './containers';
import * as img from './images';
import { containerStats, podSandboxStats, updateResources } from './stats';

/** api.proto, found from here upwards (dist/shim, dist/bundle or the sources). */
export function protoPath(): string {
  for (let d = __dirname; d !== path.dirname(d); d = path.dirname(d)) {
    const p = path.join(d, 'shim', 'proto', 'api.proto');
    if (fs.existsSync(p)) return p;
  }
  throw new Error('cannot find shim/proto/api.proto');
}

export function loadCri(): { runtime: grpc.ServiceDefinition; image: grpc.ServiceDefinition } {
  const def = protoLoader.loadSync(protoPath(), { keepCase: true, longs: String, enums: Number, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: Record<string, { service: grpc.ServiceDefinition }> } };
  return { runtime: pkg.runtime.v1['RuntimeService']!.service, image: pkg.runtime.v1['ImageService']!.service };
}

type Req = Record<string, unknown> & { [k: string]: never | unknown };
type Handler = (req: any) => Promise<unknown> | unknown; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface CriServer {
  server: grpc.Server;
  socket: string;
  close(): Promise<void>;
  /** Where the RPCs' streaming URLs point (exec, attach, port-forward). */
  streaming: import('./streaming/server').StreamingServer;
}

/** Serialises work per key (one sandbox's calls); different keys run in parallel. */
class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }
}

export async function startCriServer(opts: CriOptions, log: (msg: string) => void = (m) => process.stderr.write(`${m}\n`)): Promise<CriServer> {
  const paths = new CriPaths(opts);
  const images = new ContentStore(paths.imageRoot);
  const runtime: RuntimeContext = { root: paths.engine.runtimeRoot, debug: false, warn: (m) => log(`warning: ${m}`) };
  const store = new SandboxStore(paths);
  const containers = new ContainerStore(paths.engine);
  const registries = await loadRegistries(opts.registriesConf, log);
  const findLocal = (name: string): Image => registries.findLocal(images, name);
  const monitors = new MonitorPool();
  const x: ContainerContext = { paths, opts, store, runtime, warn: (m) => log(`warning: ${m}`), containers, findImage: findLocal, monitors };
  const imgx: img.ImageContext = {
    store: images,
    findLocal,
    pull: (name, auth) => registries.pull(images, name, auth),
    inUse: (id) => containers.all().some((c) => c.config.imageId === id),
  };
  // the URLs Exec, Attach and PortForward answer with (kubelet's streaming server)
  const { StreamingServer } = await import('./streaming/server');
  const sb = await import('./streaming-backend');
  const streaming = new StreamingServer({
    exec: (id, cmd, o, io) => sb.execStream(x, id, cmd, o, io),
    attach: (id, o, io) => sb.attachStream(x, id, o, io),
    portForward: (id, port, stream) => sb.portForwardStream(x, id, port, stream),
  }, { address: opts.streamAddress, port: opts.streamPort, log: (m) => log(`streaming: ${m}`) });
  await streaming.start();
  const q = new KeyedQueue();
  // GetContainerEvents (kubelet's evented PLEG): what this server did, and
  // exits seen by a poll of the records while someone listens
  const events = new (await import('node:events')).EventEmitter();
  const emit = (id: string, type: 0 | 1 | 2 | 3): void => {
    if (events.listenerCount('event') === 0) return;
    let statuses: unknown[] = [];
    let sandbox: unknown = null;
    try {
      const st = containerStatus(x, id);
      statuses = [st];
      const sid = readInfo(x, id)?.sandboxId;
      const sb = sid ? store.get(sid) : null;
      if (sb) sandbox = { id: sb.id, metadata: sb.config.metadata, state: liveState(sb) === 'SANDBOX_READY' ? 0 : 1, created_at: sb.createdAt, labels: sb.config.labels, annotations: sb.config.annotations };
    } catch {
      // deleted: no status
    }
    events.emit('event', { container_id: id, container_event_type: type, created_at: String(BigInt(Date.now()) * 1000000n), pod_sandbox_status: sandbox, containers_statuses: statuses });
  };
  const seen = new Map<string, number>();
  const poll = setInterval(() => {
    if (events.listenerCount('event') === 0) return;
    for (const c of containers.all()) {
      const st = liveStatusOf(c);
      const was = seen.get(c.id);
      const now = st === 'running' ? 1 : st === 'exited' ? 2 : 0;
      if (was === 1 && now === 2) emit(c.id, 2);
      seen.set(c.id, now);
    }
  }, 1000);
  poll.unref();
  const sandboxOf = (ref: string): SandboxRecord | null => store.resolve(ref);
  const containerSandbox = (ref: string): string => {
    try {
      return resolveContainer(x, 'lookup', ref).info.sandboxId;
    } catch {
      return `container:${ref}`;
    }
  };

  const stopSandbox = async (s: SandboxRecord): Promise<void> => {
    for (const c of sandboxContainers(x, s.id)) await stopContainerCri(x, c.id, 0);
    await stopSandboxNetworkAndPause(x, s);
  };

  const runtimeHandlers: Record<string, Handler> = {
    Version: () => ({ version: '0.1.0', runtime_name: 'mycontainer', runtime_version: require('../../package.json').version as string, runtime_api_version: 'v1' }),
    Status: (r: { verbose: boolean }) => {
      const net = loadDefaultNetwork(opts.cniConfDir);
      const conditions = [
        { type: 'RuntimeReady', status: true, reason: '', message: '' },
        net
          ? { type: 'NetworkReady', status: true, reason: '', message: '' }
          : { type: 'NetworkReady', status: false, reason: 'NetworkPluginNotReady', message: `Network plugin returns error: no CNI network config found in ${opts.cniConfDir}` },
      ];
      return { status: { conditions }, info: r.verbose ? { config: JSON.stringify({ ...opts, cniConfig: net?.file ?? null }) } : {} };
    },
    UpdateRuntimeConfig: () => ({}),
    RunPodSandbox: async (r: { config: SandboxRecord['config'] | null; runtime_handler: string }) => {
      if (!r.config) throw invalid('RunPodSandbox: config is required');
      const name = `${r.config.metadata?.namespace ?? ''}/${r.config.metadata?.name ?? ''}`;
      return q.run(`name:${name}`, async () => ({ pod_sandbox_id: await runPodSandbox(x, r.config!, r.runtime_handler) }));
    },
    StopPodSandbox: async (r: { pod_sandbox_id: string }) => {
      const s = sandboxOf(r.pod_sandbox_id);
      if (!s) throw notFound(`StopPodSandbox: sandbox "${r.pod_sandbox_id}" not found`);
      return q.run(s.id, async () => {
        await stopSandbox(s);
        return {};
      });
    },
    RemovePodSandbox: async (r: { pod_sandbox_id: string }) => {
      const s = sandboxOf(r.pod_sandbox_id);
      if (!s) return {}; // CRI: idempotent
      return q.run(s.id, async () => {
        for (const c of sandboxContainers(x, s.id)) await removeContainerCri(x, c.id);
        await stopSandboxNetworkAndPause(x, s);
        removePauseState(x, s);
        fs.rmSync(paths.sandboxDir(s.id), { recursive: true, force: true });
        return {};
      });
    },
    PodSandboxStatus: (r: { pod_sandbox_id: string; verbose: boolean }) => {
      const s = sandboxOf(r.pod_sandbox_id);
      if (!s) throw notFound(`PodSandboxStatus: sandbox "${r.pod_sandbox_id}" not found`);
      const state = liveState(s);
      return {
        status: {
          id: s.id, metadata: s.config.metadata, state: state === 'SANDBOX_READY' ? 0 : 1, created_at: s.createdAt,
          network: { ip: s.ip, additional_ips: s.additionalIps.map((ip) => ({ ip })) },
          linux: { namespaces: { options: s.config.linux?.security_context?.namespace_options ?? {} } },
          labels: s.config.labels, annotations: s.config.annotations, runtime_handler: s.runtimeHandler,
        },
        info: r.verbose ? { info: JSON.stringify({ pid: s.pausePid, netns: s.netns, hostNetwork: hostNetwork(s.config), cni: s.cni?.list.file ?? null, config: s.config }) } : {},
        containers_statuses: [],
        timestamp: String(BigInt(Date.now()) * 1000000n),
      };
    },
    ListPodSandbox: (r: { filter: { id: string; state: { state: number } | null; label_selector: Record<string, string> } | null }) => {
      const f = r.filter;
      const items = store.all().filter((s) => {
        const st = liveState(s) === 'SANDBOX_READY' ? 0 : 1;
        if (f?.id && !s.id.startsWith(f.id)) return false;
        if (f?.state && f.state.state !== st) return false;
        return !Object.entries(f?.label_selector ?? {}).some(([k, v]) => s.config.labels[k] !== v);
      });
      return {
        items: items.map((s) => ({
          id: s.id, metadata: s.config.metadata, state: liveState(s) === 'SANDBOX_READY' ? 0 : 1, created_at: s.createdAt,
          labels: s.config.labels, annotations: s.config.annotations, runtime_handler: s.runtimeHandler,
        })),
      };
    },
    CreateContainer: async (r: { pod_sandbox_id: string; config: Parameters<typeof createContainer>[2] | null }) => {
      if (!r.config) throw invalid('CreateContainer: config is required');
      const s = sandboxOf(r.pod_sandbox_id);
      if (!s) throw notFound(`CreateContainer ${r.config.metadata?.name ?? ''}: sandbox "${r.pod_sandbox_id}" not found`);
      return q.run(s.id, async () => {
        const id = await createContainer(x, s.id, r.config!);
        emit(id, 0);
        return { container_id: id };
      });
    },
    StartContainer: async (r: { container_id: string }) => q.run(containerSandbox(r.container_id), async () => {
      await startContainerCri(x, r.container_id);
      emit(resolveContainer(x, 'StartContainer', r.container_id).c.id, 1);
      return {};
    }),
    StopContainer: async (r: { container_id: string; timeout: string }) => {
      await stopContainerCri(x, r.container_id, Number(r.timeout));
      emit(resolveContainer(x, 'StopContainer', r.container_id).c.id, 2);
      return {};
    },
    RemoveContainer: async (r: { container_id: string }) => q.run(containerSandbox(r.container_id), async () => {
      let id = '';
      try {
        id = resolveContainer(x, 'RemoveContainer', r.container_id).c.id;
      } catch {
        // already gone
      }
      await removeContainerCri(x, r.container_id);
      if (id) emit(id, 3);
      return {};
    }),
    ListContainers: (r: { filter: Parameters<typeof listContainers>[1] }) => ({ containers: listContainers(x, r.filter) }),
    ContainerStatus: (r: { container_id: string; verbose: boolean }) => {
      const status = containerStatus(x, r.container_id);
      const info: Record<string, string> = {};
      if (r.verbose) {
        const c = containers.read(status.id!);
        info['info'] = JSON.stringify({ pid: c.state.pid, sandboxID: readInfo(x, c.id)?.sandboxId, runtimeSpec: JSON.parse(fs.readFileSync(path.join(paths.engine.bundle(c.id), 'config.json'), 'utf8')) as unknown, state: c.state });
      }
      return { status, info };
    },
    ExecSync: (r: { container_id: string; cmd: string[]; timeout: string }) => execSync(x, r.container_id, r.cmd, Number(r.timeout)),
    ContainerStats: (r: { container_id: string }) => ({ stats: containerStats(x, resolveContainer(x, 'ContainerStats', r.container_id).c) }),
    ListContainerStats: (r: { filter: { id: string; pod_sandbox_id: string; label_selector: Record<string, string> } | null }) => ({
      stats: listContainers(x, r.filter ? { id: r.filter.id, pod_sandbox_id: r.filter.pod_sandbox_id, label_selector: r.filter.label_selector, state: { state: 1 } } : { id: '', pod_sandbox_id: '', label_selector: {}, state: { state: 1 } })
        .map((c) => containerStats(x, containers.read(c.id!))),
    }),
    UpdateContainerResources: (r: { container_id: string; linux: Parameters<typeof updateResources>[2] }) => {
      const { c } = resolveContainer(x, 'UpdateContainerResources', r.container_id);
      updateResources(x, c, r.linux);
      return {};
    },
    Exec: (r: { container_id: string; cmd: string[]; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }) => {
      const { c, info } = resolveContainer(x, 'Exec', r.container_id);
      if (liveStatusOf(c) !== 'running') throw precondition(`Exec in ${info.metadata.name} (${c.id.slice(0, 13)}): the container is not running`);
      return streaming.getExec({ ...r, container_id: c.id });
    },
    Attach: (r: { container_id: string; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }) => {
      const { c, info } = resolveContainer(x, 'Attach', r.container_id);
      if (liveStatusOf(c) !== 'running') throw precondition(`Attach to ${info.metadata.name} (${c.id.slice(0, 13)}): the container is not running`);
      return streaming.getAttach({ ...r, container_id: c.id });
    },
    PortForward: (r: { pod_sandbox_id: string; port: number[] }) => {
      const s = sandboxOf(r.pod_sandbox_id);
      if (!s) throw notFound(`PortForward: sandbox "${r.pod_sandbox_id}" not found`);
      if (liveState(s) !== 'SANDBOX_READY') throw precondition(`PortForward to ${s.id.slice(0, 13)}: the sandbox is not ready`);
      return streaming.getPortForward({ ...r, pod_sandbox_id: s.id });
    },
    PodSandboxStats: (r: { pod_sandbox_id: string }) => {
      const s = sandboxOf(r.pod_sandbox_id);
      if (!s) throw notFound(`PodSandboxStats: sandbox "${r.pod_sandbox_id}" not found`);
      return { stats: podSandboxStats(x, s, sandboxContainers(x, s.id)) };
    },
    ListPodSandboxStats: (r: { filter: { id: string; label_selector: Record<string, string> } | null }) => ({
      stats: store.all()
        .filter((s) => liveState(s) === 'SANDBOX_READY' && (!r.filter?.id || s.id.startsWith(r.filter.id)) && !Object.entries(r.filter?.label_selector ?? {}).some(([k, v]) => s.config.labels[k] !== v))
        .map((s) => podSandboxStats(x, s, sandboxContainers(x, s.id))),
    }),
    ReopenContainerLog: async (r: { container_id: string }) => {
      await reopenContainerLog(x, r.container_id);
      return {};
    },
  };

  const imageHandlers: Record<string, Handler> = {
    PullImage: async (r: { image: { image: string } | null; auth: Parameters<typeof img.pullImage>[2] }) => ({ image_ref: await img.pullImage(imgx, r.image?.image ?? '', r.auth) }),
    ListImages: (r: { filter: { image: { image: string } | null } | null }) => ({ images: img.listImages(imgx, r.filter?.image?.image ?? '') }),
    ImageStatus: (r: { image: { image: string } | null; verbose: boolean }) => {
      const image = img.imageStatus(imgx, r.image?.image ?? '');
      return { image, info: {} };
    },
    RemoveImage: async (r: { image: { image: string } | null }) => {
      await img.removeImage(imgx, r.image?.image ?? '');
      return {};
    },
    ImageFsInfo: () => img.imageFsInfo(imgx),
  };

  const { runtime: runtimeService, image: imageService } = loadCri();
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024, 'grpc.max_send_message_length': 16 * 1024 * 1024 });
  const implement = (service: grpc.ServiceDefinition, handlers: Record<string, Handler>): grpc.UntypedServiceImplementation => {
    const impl: grpc.UntypedServiceImplementation = {};
    for (const [name, method] of Object.entries(service)) {
      if (method.responseStream) {
        // GetContainerEvents: every event until the client goes
        impl[name] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
          const send = (e: unknown): void => void call.write(e);
          events.on('event', send);
          call.on('cancelled', () => {
            events.off('event', send);
            call.end();
          });
        };
        continue;
      }
      const h = handlers[name];
      impl[name] = (call: grpc.ServerUnaryCall<Req, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        if (!h) {
          cb({ code: grpc.status.UNIMPLEMENTED, details: `${name} is not implemented by mycontainer yet` });
          return;
        }
        Promise.resolve()
          .then(() => h(call.request))
          .then((res) => cb(null, res as never), (e: unknown) => {
            const st = grpcStatusOf(e);
            if (st.code === grpc.status.UNKNOWN || st.code === grpc.status.INTERNAL) log(`${name}: ${st.details}`);
            cb({ code: st.code, details: st.details });
          });
      };
    }
    return impl;
  };
  server.addService(runtimeService, implement(runtimeService, runtimeHandlers));
  server.addService(imageService, implement(imageService, imageHandlers));

  const backend = backendSocket(path.join(opts.runroot, 'cri'));
  fs.rmSync(backend, { force: true });
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${backend}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  fs.mkdirSync(path.dirname(opts.socket), { recursive: true, mode: 0o711 });
  fs.rmSync(opts.socket, { force: true });
  const front = authorityProxy(opts.socket, backend);
  // the socket is made under a umask that leaves it 0660: never a moment when others may connect
  const oldMask = process.umask(0o117);
  try {
    await new Promise<void>((resolve, reject) => {
      front.once('error', reject);
      front.listen(opts.socket, () => resolve());
    });
  } finally {
    process.umask(oldMask);
  }
  fs.chmodSync(opts.socket, 0o660);
  monitors.refill();
  return {
    server,
    socket: opts.socket,
    streaming,
    close: () => new Promise<void>((resolve) => {
      clearInterval(poll);
      monitors.close();
      front.close();
      void streaming.close();
      server.tryShutdown(() => resolve());
      setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 2000).unref();
    }).then(() => {
      fs.rmSync(opts.socket, { force: true });
      fs.rmSync(backend, { force: true });
    }),
  };
}

/** registries.conf through images/ (mirrors, short names, aliases), read once at start. */
async function loadRegistries(file: string | undefined, log: (m: string) => void): Promise<{ findLocal(store: ContentStore, name: string): Image; pull(store: ContentStore, name: string, auth: import('../images/auth').Credentials | undefined): Promise<Image> }> {
  const { loadRegistriesConf, findLocal, findOrPull } = await import('../images/resolve');
  const { fileCredentials } = await import('../images/auth');
  const conf = loadRegistriesConf(file);
  for (const w of conf.warnings ?? []) log(`warning: ${w}`);
  return {
    findLocal: (store, name) => findLocal(store, name, conf),
    // kubelet decides the pull policy: a PullImage always pulls
    pull: (store, name, auth) => findOrPull(store, name, {
      registries: conf, policy: 'always', credentials: fileCredentials(undefined), auth,
      registry: { userAgent: 'mycontainer-cri/0.1' }, onWarning: (m) => log(`warning: ${m}`),
    }),
  };
}

export { CriError, messageOf, unimplemented };
