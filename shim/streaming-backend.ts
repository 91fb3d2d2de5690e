// What the streaming server's URLs do, for our containers: Exec is
// exec.ts's (ExecSync's path too), Attach speaks the engine monitor's
// attach protocol, PortForward dials 127.0.0.1:PORT from inside the pod's
// network namespace (as kubelet does). The streaming server owns the wire protocols
// (SPDY, websocket); this file only moves bytes between them and the
// container.

import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { liveStatus } from '../engine/containers';
import * as sys from '../runtime/sys/libc';
import { resolveContainer, type ContainerContext } from './containers';
import { invalid, notFound, precondition } from './errors';
import { liveState } from './sandbox-store';
import type { ExecIO, StreamOptions } from './streaming/types';

export async function attachStream(x: ContainerContext, id: string, o: StreamOptions, io: ExecIO): Promise<void> {
  const { c, info } = resolveContainer(x, 'Attach', id);
  const op = `Attach to ${info.metadata.name} (${c.id.slice(0, 13)})`;
  if (liveStatus(c) !== 'running') throw precondition(`${op}: the container is not running`);
  const { attachStreams } = await import('../engine/attach');
  // client-go sends {Width, Height}; the monitor takes {rows, cols}
  const resize = new EventEmitter();
  io.resize.on('resize', (t: { width: number; height: number }) => resize.emit('resize', { rows: t.height, cols: t.width }));
  try {
    await attachStreams({
      socket: x.paths.engine.attachSocket(c.id),
      stdin: o.stdin ? io.stdin : null,
      stdinEof: info.stdinOnce === true, // the client's stdin ending closes the process's only with stdin_once, as kubelet
      stdout: o.stdout ? io.stdout : null,
      stderr: o.stderr ? (o.tty ? io.stdout : io.stderr) : null,
      resize, signal: io.signal,
    });
  } catch (e) {
    throw new Error(`${op}: cannot reach the container's monitor: ${(e as Error).message}`);
  }
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
