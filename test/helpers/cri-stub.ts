// A CRI stand-in for the streaming server's tests: a gRPC RuntimeService on
// a unix socket that answers Version and hands Exec, Attach and PortForward
// to a StreamingServer (every other RPC: UNIMPLEMENTED, and recorded), and a
// StreamingBackend that runs on the host instead of in containers:
//
//   exec         runs cmd with pipes; with a tty, under `script` (a pty), sized
//                from the client's first resize
//   attach       greets ("attached to ID"), then echoes stdin lines as "echo: LINE"
//   portForward  connects to 127.0.0.1:PORT
//
// crictl (grpc-go) sends the socket's path as :authority, which Node's HTTP/2
// refuses; the public socket is served through shim/authority's rewriter, as
// the real CRI server does.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { authorityProxy } from '../../shim/authority';
import type { ExecIO, StreamingBackend, StreamOptions, TerminalSize } from '../../shim/streaming/types';

export interface HostBackend extends StreamingBackend {
  /** Every resize an exec or attach received, in order. */
  resizes: TerminalSize[];
  /** What each call was asked (kind, id, cmd, opts). */
  calls: { kind: 'exec' | 'attach' | 'portForward'; id: string; cmd?: string[]; opts?: StreamOptions; port?: number }[];
  /** Kills what still runs. */
  close(): void;
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

function firstResize(io: ExecIO, ms: number): Promise<TerminalSize | null> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(null), ms);
    io.resize.once('resize', (s: TerminalSize) => {
      clearTimeout(t);
      resolve(s);
    });
  });
}

export function hostBackend(): HostBackend {
  const children = new Set<ChildProcess>();
  const sockets = new Set<net.Socket>();
  const b: HostBackend = {
    resizes: [],
    calls: [],
    async exec(id, cmd, opts, io) {
      b.calls.push({ kind: 'exec', id, cmd, opts });
      io.resize.on('resize', (s: TerminalSize) => b.resizes.push(s));
      let file = cmd[0]!;
      let args = cmd.slice(1);
      if (opts.tty) {
        // a pty from util-linux script; its size is the client's, set before the command runs
        const size = await firstResize(io, 2000);
        const stty = size ? `stty cols ${size.width} rows ${size.height}; ` : '';
        file = 'script';
        args = ['-qfec', `${stty}exec ${cmd.map(quote).join(' ')}`, '/dev/null'];
      }
      const child = spawn(file, args, { stdio: [io.stdin ? 'pipe' : 'ignore', io.stdout ? 'pipe' : 'ignore', io.stderr ? 'pipe' : 'ignore'] });
      children.add(child);
      const onAbort = (): void => void child.kill('SIGKILL');
      io.signal.addEventListener('abort', onAbort);
      if (io.stdin && child.stdin) {
        child.stdin.on('error', () => undefined);
        io.stdin.pipe(child.stdin);
      }
      if (io.stdout && child.stdout) child.stdout.pipe(io.stdout, { end: false });
      if (io.stderr && child.stderr) child.stderr.pipe(io.stderr, { end: false });
      try {
        return await new Promise<number>((resolve, reject) => {
          child.once('error', reject);
          child.once('close', (code, signal) => resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0)));
        });
      } finally {
        children.delete(child);
        io.signal.removeEventListener('abort', onAbort);
        if (io.stdin && child.stdin) io.stdin.unpipe(child.stdin);
      }
    },
    async attach(id, opts, io) {
      b.calls.push({ kind: 'attach', id, opts });
      io.resize.on('resize', (s: TerminalSize) => b.resizes.push(s));
      io.stdout?.write(`attached to ${id}\n`);
      io.stderr?.write(`attached (stderr) to ${id}\n`);
      if (!io.stdin) return;
      let buf = '';
      io.stdin.setEncoding('utf8');
      await new Promise<void>((resolve) => {
        io.stdin!.on('data', (s: string) => {
          buf += s;
          let i: number;
          while ((i = buf.indexOf('\n')) >= 0) {
            io.stdout?.write(`echo: ${buf.slice(0, i)}\n`);
            buf = buf.slice(i + 1);
          }
        });
        io.stdin!.once('end', () => resolve());
        io.signal.addEventListener('abort', () => resolve());
      });
    },
    portForward(pod, port, stream) {
      b.calls.push({ kind: 'portForward', id: pod, port });
      return new Promise<void>((resolve, reject) => {
        const sock = net.connect(port, '127.0.0.1');
        sockets.add(sock);
        let connected = false;
        sock.once('connect', () => {
          connected = true;
          stream.pipe(sock);
          sock.pipe(stream);
        });
        sock.once('error', (e) => {
          if (!connected) reject(e);
        });
        sock.once('close', () => {
          sockets.delete(sock);
          resolve();
        });
        stream.once('close', () => sock.destroy());
      });
    },
    close() {
      for (const c of children) c.kill('SIGKILL');
      for (const s of sockets) s.destroy();
    },
  };
  return b;
}

/** A TCP echo server on 127.0.0.1 (port-forward's far end). */
export async function echoServer(): Promise<{ port: number; close(): Promise<void> }> {
  const conns = new Set<net.Socket>();
  const server = net.createServer((c) => {
    conns.add(c);
    c.on('close', () => conns.delete(c));
    c.on('error', () => undefined);
    c.pipe(c);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      for (const c of conns) c.destroy();
      server.close(() => resolve());
    }),
  };
}

export interface Streaming {
  getExec(r: never): { url: string };
  getAttach(r: never): { url: string };
  getPortForward(r: never): { url: string };
}

export interface CriStub {
  socket: string;
  /** The RPCs called, in order. */
  calls: string[];
  close(): Promise<void>;
}

function protoPath(): string {
  for (let d = __dirname; d !== path.dirname(d); d = path.dirname(d)) {
    const p = path.join(d, 'shim', 'proto', 'api.proto');
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`Cannot find shim/proto/api.proto above ${__dirname}`);
}

/** Serves RuntimeService on `dir`/cri.sock. */
export async function startCriStub(streaming: Streaming, dir: string): Promise<CriStub> {
  const def = protoLoader.loadSync(protoPath(), { keepCase: true, longs: String, enums: Number, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: Record<string, { service: grpc.ServiceDefinition }> } };
  const service = pkg.runtime.v1['RuntimeService']!.service;
  const calls: string[] = [];
  type Unary = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => void;
  const answers: Record<string, (req: never) => unknown> = {
    Version: () => ({ version: '0.1.0', runtime_name: 'cri-stub', runtime_version: '0.0.0', runtime_api_version: 'v1' }),
    Exec: (r) => streaming.getExec(r),
    Attach: (r) => streaming.getAttach(r),
    PortForward: (r) => streaming.getPortForward(r),
  };
  const impl: grpc.UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(service)) {
    if (method.responseStream) {
      impl[name] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
        calls.push(name);
        call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: `${name}: not in the stub` });
      };
      continue;
    }
    const unary: Unary = (call, cb) => {
      calls.push(name);
      const answer = answers[name];
      if (!answer) return cb({ code: grpc.status.UNIMPLEMENTED, details: `${name}: not in the stub` });
      try {
        cb(null, answer(call.request as never));
      } catch (e) {
        const code = (e as { code?: unknown }).code === 'EINVAL' ? grpc.status.INVALID_ARGUMENT : grpc.status.UNKNOWN;
        cb({ code, details: `${name}: ${(e as Error).message}` });
      }
    };
    impl[name] = unary;
  }
  const server = new grpc.Server();
  server.addService(service, impl);
  const backend = path.join(dir, 'grpc.sock');
  const socket = path.join(dir, 'cri.sock');
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${backend}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  const front = authorityProxy(socket, backend);
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(socket, () => resolve());
  });
  return {
    socket,
    calls,
    close: () => new Promise<void>((resolve) => {
      front.close();
      server.forceShutdown();
      fs.rmSync(socket, { force: true });
      fs.rmSync(backend, { force: true });
      resolve();
    }),
  };
}
