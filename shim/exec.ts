// Running a command in a CRI container: the one path behind Exec (the
// streaming server's URL) and ExecSync. The runtime library runs it (its
// init joins the container and execs the command); stdio goes through
// pipes, or a pty whose master comes back over a socketpair.

import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tty from 'node:tty';
import { Writable, type Readable } from 'node:stream';
import { liveStatus } from '../engine/containers';
import * as sys from '../runtime/sys/libc';
import { resolveContainer, type ContainerContext } from './containers';
import { CriError, during, invalid, precondition } from './errors';
import type { ExecIO, StreamOptions } from './streaming/types';

function pump(from: Readable, to: (d: Buffer) => void, end: () => void): void {
  from.on('data', (d: Buffer) => to(d));
  from.on('end', end);
  from.on('error', end);
}

/**
 * A command in a running container, its stdio moved to and from `io`:
 * the one path behind the streaming server's Exec and ExecSync (`rpc`
 * names which in errors). Aborting `io.signal` kills the process.
 */
export async function execProcess(x: ContainerContext, id: string, cmd: string[], o: StreamOptions, io: ExecIO, rpc = 'Exec'): Promise<number> {
  const { c, info } = resolveContainer(x, rpc, id);
  const op = `${rpc} in ${info.metadata.name} (${c.id.slice(0, 13)})`;
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
    throw during(op, e);
  } finally {
    io.signal.removeEventListener('abort', onAbort);
    for (const fd of close) try { fs.closeSync(fd); } catch { /* closed */ }
    if (ours >= 0) fs.closeSync(ours);
  }
  await Promise.race([Promise.all(readers), new Promise((r) => setTimeout(r, 2000))]);
  if (master >= 0) try { fs.closeSync(master); } catch { /* the stream closed it */ }
  return code;
}

/** ExecSync: the command's output gathered, the process killed at the timeout (DEADLINE_EXCEEDED). */
export async function execSync(x: ContainerContext, ref: string, cmd: string[], timeoutSec: number): Promise<{ stdout: Buffer; stderr: Buffer; exit_code: number }> {
  const { c, info } = resolveContainer(x, 'ExecSync', ref);
  const chunks: Record<'out' | 'err', Buffer[]> = { out: [], err: [] };
  const gather = (k: 'out' | 'err'): Writable => new Writable({
    write(d: Buffer, _enc, done): void {
      chunks[k].push(d);
      done();
    },
  });
  const abort = new AbortController();
  let timedOut = false;
  const timer = timeoutSec > 0 ? setTimeout(() => {
    timedOut = true;
    abort.abort();
  }, timeoutSec * 1000) : null;
  let code: number;
  try {
    code = await execProcess(x, c.id, cmd, { stdin: false, stdout: true, stderr: true, tty: false },
      { stdin: null, stdout: gather('out'), stderr: gather('err'), resize: new EventEmitter(), signal: abort.signal }, 'ExecSync');
  } finally {
    if (timer) clearTimeout(timer);
  }
  if (timedOut) throw new CriError(4, `ExecSync in ${info.metadata.name} (${c.id.slice(0, 13)}): command ${JSON.stringify(cmd)} timed out after ${timeoutSec}s`);
  return { stdout: Buffer.concat(chunks.out), stderr: Buffer.concat(chunks.err), exit_code: code };
}
