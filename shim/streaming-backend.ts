// What the streaming server's URLs do, for our containers: Exec runs the
// command through the runtime library (pipes, or a pty whose master comes
// back over a socketpair), Attach speaks the engine monitor's attach
// protocol, PortForward dials 127.0.0.1:PORT from inside the pod's network
// namespace (as kubelet does). The streaming server owns the wire protocols
// (SPDY, websocket); this file only moves bytes between them and the
// container.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tty from 'node:tty';
import type { Duplex, Readable, Writable } from 'node:stream';
import type { EventEmitter } from 'node:events';
import { liveStatus } from '../engine/containers';
import * as sys from '../runtime/sys/libc';
import { messageOf } from '../runtime/sys/errors';
import { resolveContainer, type ContainerContext } from './containers';
import { invalid, notFound, precondition } from './errors';
import { liveState } from './sandbox-store';

export interface StreamOpts {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

export interface StreamIo {
  stdin: Readable | null;
  stdout: Writable | null;
  stderr: Writable | null;
  resize: EventEmitter;
  signal: AbortSignal;
}

function pump(from: Readable, to: (d: Buffer) => void, end: () => void): void {
  from.on('data', (d: Buffer) => to(d));
  from.on('end', end);
  from.on('error', end);
}

export async function execStream(x: ContainerContext, id: string, cmd: string[], o: StreamOpts, io: StreamIo): Promise<number> {
  const { c, info } = resolveContainer(x, 'Exec', id);
  const op = `Exec in ${info.metadata.name} (${c.id.slice(0, 13)})`;
  if (cmd.length === 0) throw invalid(`${op}: a command is required`);
  if (liveStatus(c) !== 'running') throw precondition(`${op}: the container is not running`);
  const { exec } = await import('../runtime/exec');
  const close: number[] = [];
  const readers: Promise<void>[] = [];
  let stdinFd: number | 'ignore' = 'ignore';
  let outFd: number | 'ignore' = 'ignore';
  let errFd: number | 'ignore' = 'ignore';
  let ours = -1;
  let theirs = -1;
  const drain = (fd: number, to: Writable | null): void => {
    const s = new net.Socket({ fd, readable: true, writable: false });
    readers.push(new Promise((resolve) => {
      s.on('data', (d: Buffer) => to?.write(d));
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    }));
  };
  if (o.tty) {
    [ours, theirs] = sys.socketpair('Exec: the pty master from the exec init');
  } else {
    if (o.stdin && io.stdin) {
      const [r, w] = sys.pipe('Exec stdin');
      stdinFd = r;
      close.push(r);
      const ws = new net.Socket({ fd: w, readable: false, writable: true });
      pump(io.stdin, (d) => void ws.write(d), () => ws.end());
      ws.on('error', () => undefined);
    }
    const [outR, outW] = sys.pipe('Exec stdout');
    outFd = outW;
    close.push(outW);
    drain(outR, o.stdout ? io.stdout : null);
    const [errR, errW] = sys.pipe('Exec stderr');
    errFd = errW;
    close.push(errW);
    drain(errR, o.stderr ? io.stderr : null);
  }
  let pid = 0;
  let master = -1;
  const onAbort = (): void => {
    if (pid > 0) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  };
  io.signal.addEventListener('abort', onAbort);
  let code: number;
  try {
    code = await exec(x.runtime, {
      id: c.id, args: cmd, tty: o.tty, detach: false, env: [], caps: [], additionalGids: [],
      stdio: [stdinFd, outFd, errFd],
      ...(o.tty ? { consoleFd: theirs } : {}),
      onStarted: (p) => {
        pid = p;
        for (const fd of close.splice(0)) fs.closeSync(fd);
        if (o.tty) {
          master = sys.recvFd(ours, 'Exec: the pty master').fd;
          fs.closeSync(ours);
          ours = -1;
          const m = master;
          const r = new tty.ReadStream(m);
          readers.push(new Promise((resolve) => {
            r.on('data', (d: Buffer) => io.stdout?.write(d));
            r.on('error', () => resolve()); // EIO once the process is gone
            r.on('close', () => resolve());
          }));
          if (o.stdin && io.stdin) pump(io.stdin, (d) => { try { fs.writeSync(m, d); } catch { /* gone */ } }, () => { try { fs.writeSync(m, Buffer.from([4])); } catch { /* gone */ } });
          io.resize.on('resize', (s: { width: number; height: number }) => {
            try {
              (require('../runtime/linux/terminal') as typeof import('../runtime/linux/terminal')).setWinsize(m, { height: s.height, width: s.width }, 'Exec: terminal resize');
            } catch {
              // the pty is gone
            }
          });
        }
        if (io.signal.aborted) onAbort();
      },
    });
  } catch (e) {
    throw new Error(`${op}: ${messageOf(e)}`);
  } finally {
    io.signal.removeEventListener('abort', onAbort);
    for (const fd of close) try { fs.closeSync(fd); } catch { /* closed */ }
    if (ours >= 0) fs.closeSync(ours);
  }
  await Promise.race([Promise.all(readers), new Promise((r) => setTimeout(r, 2000))]);
  if (master >= 0) try { fs.closeSync(master); } catch { /* the stream closed it */ }
  return code;
}

export async function attachStream(x: ContainerContext, id: string, o: StreamOpts, io: StreamIo): Promise<void> {
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
