// What the streaming server's URLs do, for our containers: Exec is
// exec.ts's (ExecSync's path too), Attach speaks the engine monitor's
// attach protocol, PortForward dials 127.0.0.1:PORT from inside the pod's
// network namespace (as kubelet does). The streaming server owns the wire protocols
// (SPDY, websocket); this file only moves bytes between them and the
// container.

import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { liveStatus } from '../engine/containers';
import * as sys from '../runtime/sys/libc';
import { resolveContainer, type ContainerContext } from './containers';
import { invalid, notFound, precondition } from './errors';
import { pump } from './exec';
import { liveState } from './sandbox-store';
import type { ExecIO, StreamOptions } from './streaming/types';

export async function attachStream(x: ContainerContext, id: string, o: StreamOptions, io: ExecIO): Promise<void> {
  const { c, info } = resolveContainer(x, 'Attach', id);
  const op = `Attach to ${info.metadata.name} (${c.id.slice(0, 13)})`;
  if (liveStatus(c) !== 'running') throw precondition(`${op}: the container is not running`);
  const { F, FrameReader, frame } = await import('../engine/attach');
  await new Promise<void>((resolve, reject) => {
    const sock = net.connect(x.paths.engine.attachSocket(c.id));
    const done = (): void => {
      sock.destroy();
      resolve();
    };
    io.signal.addEventListener('abort', done);
    const reader = new FrameReader((type, payload) => {
      if (type === F.STDOUT && o.stdout) io.stdout?.write(payload);
      else if (type === F.STDERR && o.stderr) (o.tty ? io.stdout : io.stderr)?.write(payload);
      else if (type === F.EXIT) done();
    });
    sock.on('connect', () => {
      sock.write(frame(F.HELLO, JSON.stringify({ stdin: o.stdin, start: false })));
      // the client's stdin ending closes the process's only with stdin_once, as kubelet
      if (o.stdin && io.stdin) pump(io.stdin, (d) => void sock.write(frame(F.STDIN, d)), () => void (info.stdinOnce && sock.write(frame(F.STDIN_EOF))));
      io.resize.on('resize', (s: { width: number; height: number }) => sock.write(frame(F.RESIZE, JSON.stringify({ rows: s.height, cols: s.width }))));
    });
    sock.on('data', (d: Buffer) => reader.push(d));
    sock.on('close', done);
    sock.on('error', (e) => reject(new Error(`${op}: cannot reach the container's monitor: ${e.message}`)));
  });
}

export async function portForwardStream(x: ContainerContext, podId: string, port: number, stream: Duplex): Promise<void> {
  const s = x.store.resolve(podId);
  if (!s) throw notFound(`PortForward: sandbox "${podId}" not found`);
  if (liveState(s) !== 'SANDBOX_READY') throw precondition(`PortForward to ${s.id.slice(0, 13)}: the sandbox is not ready`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid(`PortForward to ${s.id.slice(0, 13)}: bad port ${port}`);
  const sock = s.netns
    ? new net.Socket({ fd: sys.connectTcpInNetns(s.netns, port, `PortForward: 127.0.0.1:${port} in pod ${s.id.slice(0, 13)}`), readable: true, writable: true })
    : net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (e?: Error): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      stream.end();
      if (e && !sock.bytesRead && !sock.bytesWritten) reject(new Error(`PortForward to ${s.id.slice(0, 13)} port ${port}: ${e.message}`));
      else resolve();
    };
    stream.pipe(sock);
    sock.pipe(stream);
    sock.on('error', (e) => finish(e));
    sock.on('close', () => finish());
    stream.on('error', () => finish());
    stream.on('close', () => finish());
  });
}
