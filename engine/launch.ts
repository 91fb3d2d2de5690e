// A container's first life, started in the process that asks for it (the
// CLI, the CRI server): prepare (rootfs, network), create through the
// runtime library with native/mycontainer-monitor as the keeper of its init
// (runtime/linux/spawn.ts Keeper), start, record it running. So a start
// costs one Node start, the caller's, and an idle container costs the C
// monitor only (conmon's model: podman → conmon → runc init).
//
//   caller (node)                      mycontainer-monitor --launch (C)
//   prepare, pipes, attach socket
//   runtime create ──spawn, in the new namespaces──▶ fork init, setns back,
//                  ◀──"pid N"──────────────────────  hold pipes, log, attach
//   program to the init over its channel, hooks, cgroup
//   [attach: the client's HELLO first]
//   runtime start, record running ──"running"──────▶ ... init exits, drained:
//                                                    exec node monitor.js --exited
//
// What comes after the exit (the record, the runtime delete, restarts, --rm)
// is engine/monitor.ts, in the same pid as the C monitor.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { RuntimeError, messageOf } from '../runtime/sys/errors';
import * as sys from '../runtime/sys/libc';
import { procStat } from '../runtime/state';
import { projectFile } from '../runtime/project';
import type { Keeper } from '../runtime/linux/spawn';
import { tracing } from '../runtime/sys/trace';
import type { RuntimeContext } from '../runtime/container';
import { ContainerStore, liveStatus, type Container, type Paths } from './containers';
import { mark } from './timing';
import { deleteAfterExit, lastStop, recordExit, shouldRestart } from './exit';
import type { MonitorJob } from './handoff';

const rt = (): typeof import('../runtime/container') => require('../runtime/container') as typeof import('../runtime/container');
const lifecycle = (): typeof import('./lifecycle') => require('./lifecycle') as typeof import('./lifecycle');

/** The Node monitor lives as long as its container's restarts: a small young generation and no optimizing compiler keep it light. */
const MONITOR_NODE_FLAGS = ['--max-old-space-size=48', '--max-semi-space-size=1', '--no-opt', '--expose-gc'];

/** The monitor's script: the bundle through bin/lib/load.js (its code cache), or the compiled module. */
function monitorScript(): string[] {
  const bundled = path.join(__dirname, 'monitor.js');
  const loader = path.join(__dirname, '..', '..', 'bin', 'lib', 'load.js');
  if (process.env['MYCONTAINER_BUNDLED'] === '1' && fs.existsSync(bundled)) return fs.existsSync(loader) ? [loader, bundled] : [bundled];
  return [path.join(__dirname, 'monitor-main.js')];
}

/** How mycontainer-monitor starts the Node monitor when the init exits (it appends the backoff, the status and the fds). */
export function exitCommand(job: MonitorJob): string[] {
  return [process.execPath, ...MONITOR_NODE_FLAGS, ...monitorScript(), '--exited', JSON.stringify(job)];
}

/**
 * How long a container runs under a Node monitor (after a restart) before
 * native/mycontainer-monitor takes over again (engine/monitor.ts).
 * MYCONTAINER_MONITOR_HANDOFF_MS sets it (-1: keep Node).
 */
export function handOffMs(): number {
  const v = process.env['MYCONTAINER_MONITOR_HANDOFF_MS'];
  return v !== undefined && v !== '' && Number.isFinite(Number(v)) ? Number(v) : 1000;
}

export interface Launched {
  container: Container;
  /** With `attach`: start the process, once the client has said HELLO (so that no output is lost). */
  begin?: () => Promise<void>;
  /**
   * With `attach`, after `begin`: wait for the exit and handle it here (the
   * record, the runtime delete, the network, --rm), so that a foreground
   * run pays no Node start for it. Null when the monitor's exit command
   * handles it instead (a restart policy), or the monitor died.
   */
  awaitExit?: () => Promise<number | null>;
}

export interface LaunchOptions {
  /** Return once created, with `begin` (a foreground run, `start -a`). */
  attach: boolean;
  /**
   * This process will outlive the container (the CRI server) and handles its
   * exit through `awaitExit`; if it dies first, the monitor's exit command
   * does. Implied by `attach`.
   */
  exitHere?: boolean;
  debug?: boolean;
  warn?: (msg: string) => void;
}

/** The fds of one launch: ours to close whatever happens. */
class Fds {
  private readonly open = new Set<number>();
  add(fd: number): number {
    this.open.add(fd);
    return fd;
  }
  forget(fd: number): void {
    this.open.delete(fd);
  }
  close(fd: number): void {
    if (this.open.delete(fd)) fs.closeSync(fd);
  }
  closeAll(): void {
    for (const fd of [...this.open]) this.close(fd);
  }
}

/** docker's statuses for a command that cannot run: 127 not found, 126 not executable, else 125. */
function startError(c: Container, msg: string): RuntimeError {
  const err = new RuntimeError(`cannot start container ${c.name}: ${msg}`, { code: 'ESTART' });
  Object.assign(err, { exitCode: /process\.args\[0\].*(no such file|not found)/.test(msg) ? 127 : /process\.args\[0\].*permission denied/.test(msg) ? 126 : 125 });
  return err;
}

/**
 * Starts container `id` under a new mycontainer-monitor. Without `attach`
 * it returns once the container runs; with it, once it is created, and
 * `begin` starts it.
 */
export async function launchContainer(paths: Paths, id: string, opts: LaunchOptions): Promise<Launched> {
  const store = new ContainerStore(paths);
  let c = store.read(id);
  const status = liveStatus(c);
  if (status === 'running' || status === 'paused' || status === 'restarting') {
    throw new RuntimeError(`cannot start container ${c.name}: it is already ${status}`, { code: 'EBUSY' });
  }
  const bin = projectFile('native/build/mycontainer-monitor');
  if (!bin) throw new RuntimeError(`cannot start container ${c.name}: native/build/mycontainer-monitor is missing (make native)`, { code: 'ENOENT' });
  store.update(id, (x) => {
    x.state.manuallyStopped = false;
    x.state.error = '';
  });
  const ctx: RuntimeContext = { root: paths.runtimeRoot, debug: opts.debug === true, warn: opts.warn ?? ((m) => process.stderr.write(`mycontainer: warning: ${m}\n`)) };
  const fds = new Fds();
  let control = -1;
  /** Undo after a failed create or start: the monitor (told by EOF on control), the runtime's container, the network and rootfs. */
  const fail = (e: unknown, created: boolean): RuntimeError => {
    const msg = messageOf(e);
    fds.closeAll();
    if (created) {
      try {
        rt().remove(ctx, id, true);
      } catch {
        // the start error matters
      }
    }
    try {
      lifecycle().afterStop(paths, store.read(id));
    } catch (err) {
      ctx.warn(`cleanup after a failed start: ${messageOf(err)}`);
    }
    store.update(id, (x) => {
      x.state.status = 'created';
      x.state.error = msg;
      x.state.pid = 0;
      x.state.monitorPid = 0;
      x.state.monitorStartTime = '';
    });
    return e instanceof RuntimeError && e.message.startsWith('cannot start container') ? e : startError(c, msg);
  };

  let init: Awaited<ReturnType<typeof import('../runtime/container').create>>['init'];
  try {
    await lifecycle().prepareStart(paths, c);
    c = store.read(id);
    mark('prepared');
    const sock = paths.attachSocket(id);
    fs.mkdirSync(path.dirname(sock), { recursive: true, mode: 0o700 });
    fs.rmSync(sock, { force: true });
    const listen = fds.add(sys.listenUnix(sock, 'the attach socket, for the monitor to serve'));
    const diag = fds.add(fs.openSync(path.join(paths.dir(id), 'monitor.log'), 'a', 0o600));
    const [ctlR, ctlW] = sys.socketpair('the monitor learns whether the start succeeded; a foreground run learns the exit');
    fds.add(ctlR);
    control = fds.add(ctlW);
    const mine: [string, number][] = [['--listen', listen], ['--diag', diag], ['--control', ctlR]];
    const theirs: number[] = [];
    let createOpts: import('../runtime/container').CreateOptions = { id, bundle: paths.bundle(id), noPivot: false, wait: false };
    if (c.config.tty) {
      const [ours, forInit] = sys.socketpair('the pty master from the init, for the monitor');
      mine.push(['--console', fds.add(ours)]);
      theirs.push(fds.add(forInit));
      createOpts = { ...createOpts, consoleFd: forInit };
    } else {
      const [outR, outW] = sys.pipe('the container\'s stdout');
      const [errR, errW] = sys.pipe('the container\'s stderr');
      mine.push(['--stdout', fds.add(outR)], ['--stderr', fds.add(errR)]);
      theirs.push(fds.add(outW), fds.add(errW));
      let stdin: number | 'ignore' = 'ignore';
      if (c.config.openStdin) {
        const [inR, inW] = sys.pipe('the container\'s stdin');
        mine.push(['--stdin', fds.add(inW)]);
        theirs.push(fds.add(inR));
        stdin = inR;
      }
      createOpts = { ...createOpts, stdio: [stdin, outW, errW] };
    }
    const job: MonitorJob = {
      root: paths.root, runroot: paths.runroot, id, debug: opts.debug === true,
      timing: process.env['MYCONTAINER_TIMING'] !== undefined, handOffMs: handOffMs(),
    };
    const onExit = [...exitCommand(job), '--delay', '100', '--began', String(Date.now())];
    const log = c.hostConfig.logPath || paths.log(id);
    const keeper: Keeper = {
      file: bin,
      fds: mine.map(([, fd]) => fd),
      args: (at, sync, restore, pidns, program) => [
        '--id', id, '--launch', String(sync), '--launch-argc', String(program.length), '--debug', tracing() ? '1' : '0',
        ...mine.flatMap(([flag, fd]) => [flag, String(at.get(fd))]),
        '--log', log, '--log-max-size', String(c.hostConfig.logMaxSize), '--log-max-files', String(c.hostConfig.logMaxFiles),
        ...restore.flatMap((r) => ['--restore', r]), ...(pidns ? ['--pidns', pidns] : []),
        '--', ...program, ...onExit,
      ],
    };
    try {
      init = (await rt().create(ctx, { ...createOpts, keeper })).init;
    } finally {
      // the monitor and the init have their copies now
      for (const [, fd] of mine) fds.close(fd);
      for (const fd of theirs) fds.close(fd);
    }
    mark('created');
  } catch (e) {
    throw fail(e, false);
  }
  const monitorPid = init.keeperPid ?? 0;
  store.update(id, (x) => {
    x.state.monitorPid = monitorPid;
    x.state.monitorStartTime = procStat(monitorPid)?.startTime ?? '';
  });
  const begin = async (): Promise<void> => {
    try {
      await rt().start(ctx, id);
    } catch (e) {
      throw fail(e, true);
    }
    mark('started');
    store.update(id, (x) => {
      x.state.status = 'running';
      x.state.pid = init.pid;
      x.state.startedAt = new Date().toISOString();
      x.state.error = '';
    });
    try {
      fs.writeSync(control, exitHere ? 'running attached\n' : 'running\n');
    } catch {
      // the monitor died: the record reads as exited (reconcile)
    }
    if (exitHere) fds.forget(control); // awaitExit's now
    fds.closeAll();
  };
  const exitHere = opts.attach || opts.exitHere === true;
  const waitExit = exitHere ? { awaitExit: () => awaitExit(paths, ctx, id, control) } : {};
  if (opts.attach) return { container: store.read(id), begin, ...waitExit };
  await begin();
  return { container: store.read(id), ...waitExit };
}

/** The monitor's "exited N" on the control socket; we answer "done" once it is handled, or "yours". */
function awaitExit(paths: Paths, ctx: RuntimeContext, id: string, control: number): Promise<number | null> {
  const sock = new net.Socket({ fd: control, readable: true, writable: true });
  return new Promise((resolve) => {
    let buf = '';
    let settled = false;
    const settle = (code: number | null): void => {
      if (settled) return;
      settled = true;
      resolve(code);
    };
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /^exited (\d+)\n/.exec(buf);
      if (!m || settled) return;
      const status = Number(m[1]);
      mark('exited');
      const store = new ContainerStore(paths);
      if (shouldRestart(store.read(id), status)) {
        sock.end('yours\n');
        settle(null);
        return;
      }
      let answer = 'done\n';
      try {
        recordExit(store, id, deleteAfterExit(ctx, id, status));
        lastStop(paths, id, ctx.warn);
      } catch (e) {
        ctx.warn(`after the exit: ${messageOf(e)}`);
        answer = 'yours\n';
      }
      sock.end(answer);
      settle(answer === 'done\n' ? status : null);
    });
    sock.on('error', () => settle(null));
    sock.on('close', () => settle(null));
  });
}
