// The hand-off between a container's Node monitor (engine/monitor.ts) and
// native/mycontainer-monitor, both ways, as data: the command line that
// execs the C monitor with the fds it takes over, and the one it execs Node
// back with when the container's init has exited (`monitor.js --exited`).
// Pure, but for fdOf, which reads the fd under a Node handle.

import type * as net from 'node:net';

/** What the Node monitor is told of its container (the JSON after `monitor.js --exited`). */
export interface MonitorJob {
  root: string;
  runroot: string;
  id: string;
  debug: boolean;
  timing: boolean;
  /** When a restarted life has run this long, native/mycontainer-monitor takes over again (<0: never). */
  handOffMs: number;
}

/** The fds of a running container's stdio, as mycontainer-monitor takes them. */
export interface HandOffStdio {
  stdout?: number;
  stderr?: number;
  pty?: number;
  stdin?: { fd: number; sock: net.Socket };
}

export interface HandOff {
  bin: string;
  id: string;
  /** The container's init, our child. */
  pid: number;
  stdio: HandOffStdio;
  /** The attach socket, listening; -1: none. */
  listenFd: number;
  clients: { fd: number; hello: boolean; stdin: boolean }[];
  log: { file: string; maxSize: number; maxFiles: number };
  /** How to start the Node monitor again: mycontainer-monitor appends --status and the fds. */
  exitCommand: string[];
  /** The restart backoff now, and when this life began (ms since the epoch). */
  delay: number;
  began: number;
}

/** What native/mycontainer-monitor hands back when the init has exited. */
export interface Resumed {
  /** The init's exit status (128+signal if killed). */
  status: number;
  /** The attach socket, still listening; -1: none. */
  listenFd: number;
  clients: { fd: number; hello: boolean; stdin: boolean }[];
  /** The restart backoff and the life's start, carried over the hand-off. */
  delay: number;
  began: number;
}

/** mycontainer-monitor's argv (native/src/monitor.c), and the fds that must survive execve. */
export function handOffCommand(h: HandOff): { argv: string[]; keep: number[] } {
  const argv = ['mycontainer-monitor', '--id', h.id, '--pid', String(h.pid)];
  const keep: number[] = [];
  const pass = (flag: string, fd: number | undefined, value = String(fd)): void => {
    if (fd === undefined || fd < 0) return;
    keep.push(fd);
    argv.push(flag, value);
  };
  pass('--stdout', h.stdio.stdout);
  pass('--stderr', h.stdio.stderr);
  pass('--pty', h.stdio.pty);
  pass('--stdin', h.stdio.stdin?.fd);
  pass('--listen', h.listenFd);
  for (const c of h.clients) pass('--client', c.fd, `${c.fd}:${c.hello ? 'h' : ''}${c.stdin ? 'i' : ''}`);
  argv.push('--log', h.log.file, '--log-max-size', String(h.log.maxSize), '--log-max-files', String(h.log.maxFiles));
  argv.push('--', ...h.exitCommand, '--delay', String(h.delay), '--began', String(h.began));
  return { argv, keep };
}

/** `--delay N --began MS --status N [--listen FD] [--client FD:FLAGS]...`, after `--exited JOB`. */
export function parseResumed(args: string[], now = Date.now()): Resumed {
  const r: Resumed = { status: 0, listenFd: -1, clients: [], delay: 100, began: now };
  for (let i = 0; i < args.length; i += 2) {
    const flag = args[i]!;
    const v = args[i + 1];
    const n = Number(v);
    if (v === undefined || (flag !== '--client' && !Number.isInteger(n))) throw new Error(`monitor --exited: ${flag} needs a number, got ${v ?? 'nothing'}`);
    switch (flag) {
      case '--status': r.status = n; break;
      case '--listen': r.listenFd = n; break;
      case '--delay': r.delay = n; break;
      case '--began': r.began = n; break;
      case '--client': {
        const [fd = '', flags = ''] = v.split(':');
        if (!/^\d+$/.test(fd)) throw new Error(`monitor --exited: bad --client ${v}`);
        r.clients.push({ fd: Number(fd), hello: flags.includes('h'), stdin: flags.includes('i') });
        break;
      }
      default: throw new Error(`monitor --exited: unknown argument ${flag}`);
    }
  }
  return r;
}

/** The fd under a net handle (a unix socket or server); -1 if it has none. */
export function fdOf(h: net.Socket | net.Server): number {
  const fd = (h as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
}
