// The CRI runtime.v1 server: RuntimeService and ImageService on one unix
// socket (root only, mode 0660), as containerd's CRI plugin serves kubelet.
// A long-lived process that calls the libraries in-process: no Node process
// is started per call (each running container has its monitor, as conmon).
//
// This file is wiring: it loads api.proto, serialises the calls on one
// sandbox (different sandboxes run in parallel), turns every thrown error
// into its gRPC status (shim/errors.ts) and answers UNIMPLEMENTED, with a
// message, for what is not supported. The handlers are in
// runtime-service.ts and image-service.ts.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ContainerStore } from '../engine/containers';
import { ContentStore } from '../images/store';
import type { Image } from '../images/image';
import type { RuntimeContext } from '../runtime/container';
import { projectFile } from '../runtime/project';
import { grpcStatusOf } from './errors';
import { CriPaths, type CriOptions } from './options';
import { authorityProxy, backendSocket } from './authority';
import { SandboxStore } from './sandbox-store';
import { type ContainerContext } from './containers';
import type * as img from './images';
import { KeyedQueue } from './queue';
import { containerEvents } from './events';
import { runtimeHandlers, type Handler } from './runtime-service';
import { imageHandlers, loadRegistries } from './image-service';

/** api.proto, found from here upwards (dist/shim, dist/bundle or the sources). */
export function protoPath(): string {
  const p = projectFile('shim/proto/api.proto');
  if (p) return p;
  throw new Error('cannot find shim/proto/api.proto');
}

export function loadCri(): { runtime: grpc.ServiceDefinition; image: grpc.ServiceDefinition } {
  const def = protoLoader.loadSync(protoPath(), { keepCase: true, longs: String, enums: Number, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: Record<string, { service: grpc.ServiceDefinition }> } };
  return { runtime: pkg.runtime.v1['RuntimeService']!.service, image: pkg.runtime.v1['ImageService']!.service };
}

export interface CriServer {
  server: grpc.Server;
  socket: string;
  close(): Promise<void>;
  /** Where the RPCs' streaming URLs point (exec, attach, port-forward). */
  streaming: import('./streaming/server').StreamingServer;
}

export async function startCriServer(opts: CriOptions, log: (msg: string) => void = (m) => process.stderr.write(`${m}\n`)): Promise<CriServer> {
  const paths = new CriPaths(opts);
  const images = new ContentStore(paths.imageRoot);
  const runtime: RuntimeContext = { root: paths.engine.runtimeRoot, debug: false, warn: (m) => log(`warning: ${m}`) };
  const store = new SandboxStore(paths);
  const containers = new ContainerStore(paths.engine);
  const registries = await loadRegistries(opts.registriesConf, log);
  const findLocal = (name: string): Image => registries.findLocal(images, name);
  const x: ContainerContext = { paths, opts, store, runtime, warn: (m) => log(`warning: ${m}`), containers, findImage: findLocal };
  const imgx: img.ImageContext = {
    store: images,
    findLocal,
    pull: (name, auth) => registries.pull(images, name, auth),
    inUse: (id) => containers.all().some((c) => c.config.imageId === id),
  };
  // the URLs Exec, Attach and PortForward answer with (kubelet's streaming server)
  const { StreamingServer } = await import('./streaming/server');
  const sb = await import('./streaming-backend');
  const { execProcess } = await import('./exec');
  const streaming = new StreamingServer({
    exec: (id, cmd, o, io) => execProcess(x, id, cmd, o, io),
    attach: (id, o, io) => sb.attachStream(x, id, o, io),
    portForward: (id, port, stream) => sb.portForwardStream(x, id, port, stream),
  }, { address: opts.streamAddress, port: opts.streamPort, log: (m) => log(`streaming: ${m}`) });
  await streaming.start();
  const q = new KeyedQueue();
  const ev = containerEvents(x);
  const events = ev.events;
  const rpcs = { runtime: runtimeHandlers(x, q, streaming, ev), image: imageHandlers(imgx) };
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
      impl[name] = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        if (!h) {
          cb({ code: grpc.status.UNIMPLEMENTED, details: `${name} is not implemented by mycontainer yet` });
          return;
        }
        Promise.resolve()
          .then(() => h(call.request as never))
          .then((res) => cb(null, res as never), (e: unknown) => {
            const st = grpcStatusOf(e);
            if (st.code === grpc.status.UNKNOWN || st.code === grpc.status.INTERNAL) log(`${name}: ${st.details}`);
            cb({ code: st.code, details: st.details });
          });
      };
    }
    return impl;
  };
  server.addService(runtimeService, implement(runtimeService, rpcs.runtime));
  server.addService(imageService, implement(imageService, rpcs.image));

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
  return {
    server,
    socket: opts.socket,
    streaming,
    close: () => new Promise<void>((resolve) => {
      ev.close();
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

