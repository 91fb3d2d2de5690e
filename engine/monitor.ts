// A container's monitor after its first life: what runs when the init has
// exited. The first life is launched by the CLI or the CRI server
// (engine/launch.ts) under native/mycontainer-monitor, which holds the
// container's stdio, writes its log and waits for it; when the init exits it
// execs Node in its place (`monitor.js --exited`, engine/monitor-main.ts):
// this. The same pid, with the exit status, the attach socket and its
// clients (engine/handoff.ts Resumed). It then
//
//   - records the exit code, the time, and whether the OOM killer struck,
//     and deletes the runtime's container;
//   - applies the restart policy with docker's backoff (100 ms, doubling,
//     reset after 10 s of running): the next life is created and started
//     here, through the runtime library, the init this process's child;
//   - once that life has run `handOffMs`, execs mycontainer-monitor again
//     (handOff below), so that an idle container never keeps a Node process
//     (~15 MB; conmon is 0.3 MB, ours 0.1 MB). --debug keeps Node, so its
//     trace stays whole;
//   - at the last stop releases the network and the rootfs, and removes the
//     container for --rm.
//
// That is conmon's --exit-command (`podman container cleanup`), without a
// second process.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tty from 'node:tty';
import { ContainerStore, Paths } from './containers';
import { CriLogWriter, type Stream } from './logs';
import { F, FrameReader, frame, type ExitInfo, type Hello } from './attach';
import { messageOf } from '../runtime/sys/errors';
import * as sys from '../runtime/sys/libc';
import { deleteAfterExit, lastStop, recordExit, shouldRestart } from './exit';
import { projectFile } from '../runtime/project';
import { fdOf, handOffCommand, type HandOffStdio, type Resumed } from './handoff';

export type { Resumed } from './handoff';
import type { RuntimeContext } from '../runtime/container';
import { mark } from './timing';

const rt = (): typeof import('../runtime/container') => require('../runtime/container') as typeof import('../runtime/container');
const lifecycle = (): typeof import('./lifecycle') => require('./lifecycle') as typeof import('./lifecycle');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Client {
  sock: net.Socket;
  hello: Hello | null;
  reader: FrameReader;
}

export interface MonitorOptions {
  /** How long the container runs before this process becomes mycontainer-monitor; <0: never. */
  handOffMs: number;
  /** The argv that brings this monitor back (mycontainer-monitor appends --status and the fds). */
  exitCommand: string[];
  /** The exit mycontainer-monitor came back with. */
  resumed: Resumed;
}

export class Monitor {
  private readonly store: ContainerStore;
  private readonly ctx: RuntimeContext;
  private readonly clients = new Set<Client>();
  private server: net.Server | null = null;
  private log: CriLogWriter | null = null;
  /** Where client stdin goes: the stdin pipe, or the pty master. */
  private stdinWrite: ((d: Buffer) => void) | null = null;
  private stdinEnd: (() => void) | null = null;
  private master = -1;

  private resumed: Resumed | null;
  /** The restart backoff (docker's: 100 ms, doubling, reset after 10 s of running), and when this life began. */
  private delay: number;
  private began = 0;

  constructor(readonly paths: Paths, readonly id: string, readonly opts: MonitorOptions) {
    this.resumed = opts.resumed ?? null;
    this.delay = this.resumed?.delay ?? 100;
    this.store = new ContainerStore(paths);
    const debug = process.env['MYCONTAINER_DEBUG'] === '1';
    this.ctx = {
      root: paths.runtimeRoot,
      debug,
      warn: (msg) => this.note(`warning: ${msg}`),
    };
    if (debug) {
      // `mycontainer --debug run`: every syscall and cgroup write, to monitor.log and to the attached CLI
      const { setTraceSink, formatTrace } = require('../runtime/sys/trace') as typeof import('../runtime/sys/trace');
      setTraceSink((e) => {
        const line = formatTrace(e);
        this.note(`debug: ${line}`);
        this.broadcast(F.DEBUG, line);
      });
    }
  }

  /** The monitor's own diagnostics go to its stderr, which the CLI pointed at monitor.log. */
  private note(msg: string): void {
    process.stderr.write(`${new Date().toISOString()} ${msg}\n`);
  }

  private broadcast(type: number, payload: Buffer | string): void {
    const f = frame(type, payload);
    for (const c of this.clients) if (c.hello && !c.sock.destroyed) c.sock.write(f);
  }

  private output(stream: Stream, d: Buffer): void {
    this.log?.write(stream, d);
    this.broadcast(stream === 'stdout' ? F.STDOUT : F.STDERR, d);
  }

  private addClient(sock: net.Socket, hello: Hello | null): void {
    const client: Client = { sock, hello, reader: new FrameReader((type, payload) => this.onFrame(client, type, payload)) };
    this.clients.add(client);
    sock.on('data', (d: Buffer) => client.reader.push(d));
    sock.on('error', () => {});
    sock.on('close', () => this.clients.delete(client));
  }

  private onFrame(client: Client, type: number, payload: Buffer): void {
    const sock = client.sock;
    if (type === F.HELLO) {
      client.hello = JSON.parse(payload.toString()) as Hello;
      sock.write(frame(F.READY));
    } else if (type === F.STDIN && client.hello?.stdin) {
      this.stdinWrite?.(payload);
    } else if (type === F.STDIN_EOF && client.hello?.stdin) {
      this.stdinEnd?.();
    } else if (type === F.REOPEN_LOG) {
      let err = '';
      try {
        this.log?.reopen();
      } catch (e) {
        err = messageOf(e);
      }
      sock.write(frame(F.LOG_REOPENED, err));
    } else if (type === F.RESIZE && this.master >= 0) {
      const { rows, cols } = JSON.parse(payload.toString()) as { rows: number; cols: number };
      try {
        require('../runtime/linux/terminal').setWinsize(this.master, { height: rows, width: cols }, 'attach: terminal resize');
      } catch {
        // the pty is gone
      }
    }
  }

  private listen(): Promise<void> {
    const file = this.paths.attachSocket(this.id);
    this.server = net.createServer((sock) => this.addClient(sock, null));
    const back = this.resumed;
    if (back) {
      // mycontainer-monitor kept the socket listening and its clients connected
      for (const c of back.clients) this.addClient(new net.Socket({ fd: c.fd, readable: true, writable: true }), c.hello ? { stdin: c.stdin } : null);
      if (back.listenFd >= 0) {
        return new Promise((resolve, reject) => {
          this.server!.once('error', reject);
          this.server!.listen({ fd: back.listenFd }, () => resolve());
        });
      }
    }
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.rmSync(file, { force: true });
    return new Promise((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(file, () => resolve());
    });
  }

  /** One life of the container: create, start, pump its output until it exits. */
  private async runOnce(): Promise<{ exitCode: number; oomKilled: boolean }> {
    const c = this.store.read(this.id);
    mark('runOnce');
    await lifecycle().prepareStart(this.paths, c);
    mark('prepared');
    const bundle = this.paths.bundle(this.id);
    const closeAfterCreate: number[] = [];
    const readers: Promise<void>[] = [];
    /** Our ends of the stdio, to drop if the container never comes to be. */
    const ends: net.Socket[] = [];
    let consoleOurs = -1;
    const stdio: HandOffStdio = {};
    let opts: import('../runtime/container').CreateOptions = { id: this.id, bundle, noPivot: false, wait: true };
    if (c.config.tty) {
      const [ours, theirs] = sys.socketpair('the pty master from the init');
      consoleOurs = ours;
      closeAfterCreate.push(theirs);
      opts = { ...opts, consoleFd: theirs };
    } else {
      const [outR, outW] = sys.pipe('the container\'s stdout');
      const [errR, errW] = sys.pipe('the container\'s stderr');
      let stdin: number | 'ignore' = 'ignore';
      if (c.config.openStdin) {
        const [inR, inW] = sys.pipe('the container\'s stdin');
        stdin = inR;
        closeAfterCreate.push(inR);
        const w = new net.Socket({ fd: inW, readable: false, writable: true });
        ends.push(w);
        stdio.stdin = { fd: inW, sock: w };
        w.on('error', () => {});
        this.stdinWrite = (d) => void w.write(d);
        this.stdinEnd = () => void w.end();
      }
      closeAfterCreate.push(outW, errW);
      opts = { ...opts, stdio: [stdin, outW, errW] };
      stdio.stdout = outR;
      stdio.stderr = errR;
      for (const [fd, stream] of [[outR, 'stdout'], [errR, 'stderr']] as const) {
        const r = new net.Socket({ fd, readable: true, writable: false });
        ends.push(r);
        readers.push(new Promise((resolve) => {
          r.on('data', (d: Buffer) => this.output(stream, d));
          r.on('error', () => resolve());
          r.on('close', () => resolve());
        }));
      }
    }
    let created: Awaited<ReturnType<typeof import('../runtime/container').create>>;
    try {
      created = await rt().create(this.ctx, opts);
      mark('created');
    } catch (e) {
      for (const end of ends) end.destroy();
      if (consoleOurs >= 0) fs.closeSync(consoleOurs);
      throw e;
    } finally {
      for (const fd of closeAfterCreate) fs.closeSync(fd);
    }
    if (consoleOurs >= 0) {
      this.master = sys.recvFd(consoleOurs, 'the pty master from the init').fd;
      fs.closeSync(consoleOurs);
      const master = this.master;
      stdio.pty = master;
      this.stdinWrite = (d) => {
        try {
          fs.writeSync(master, d);
        } catch {
          // the pty is gone
        }
      };
      this.stdinEnd = null; // a terminal has no EOF but ^D
      const r = new tty.ReadStream(master);
      readers.push(new Promise((resolve) => {
        r.on('data', (d: Buffer) => this.output('stdout', d));
        r.on('error', () => resolve()); // EIO once the last slave closes
        r.on('close', () => resolve());
      }));
    }
    try {
      await rt().start(this.ctx, this.id);
    } catch (e) {
      // no half-made container for the next attempt to trip over
      try {
        rt().remove(this.ctx, this.id, true);
      } catch {
        // the start error matters
      }
      throw e;
    }
    mark('started');
    this.store.update(this.id, (x) => {
      x.state.status = 'running';
      x.state.pid = created.rec.pid;
      x.state.startedAt = new Date().toISOString();
      x.state.error = '';
    });
    // What create needed (the planner, the schema code, seccomp's compiler) is garbage now.
    setTimeout(() => {
      (globalThis as { gc?: () => void }).gc?.();
      mark(`memory ${JSON.stringify(process.memoryUsage())}`);
    }, 200).unref();
    let gone = false;
    const exited = created.init.exited.then((code) => {
      gone = true;
      return code;
    });
    this.handOffLater(created.rec.pid, stdio, () => gone);
    const exitCode = await exited;
    mark('exited');
    // The output that was still in the pipes, then the pty is gone.
    await Promise.race([Promise.all(readers), sleep(2000)]);
    if (this.master >= 0) {
      this.master = -1;
    }
    this.stdinWrite = null;
    this.stdinEnd = null;
    mark('drained');
    return this.afterExit(exitCode);
  }

  /** The init has exited and its output is drained: the OOM verdict, the runtime's container deleted. */
  private afterExit(exitCode: number): { exitCode: number; oomKilled: boolean } {
    return deleteAfterExit(this.ctx, this.id, exitCode);
  }

  /**
   * Once the container has run `handOffMs`, become native/mycontainer-monitor
   * (see the top of this file). Waits while a client's frame or our own
   * writes are half done: those bytes live in this process only.
   */
  private handOffLater(pid: number, stdio: HandOffStdio, gone: () => boolean): void {
    if (this.opts.handOffMs < 0 || this.ctx.debug) return;
    const bin = projectFile('native/build/mycontainer-monitor');
    if (!bin) {
      this.note('native/build/mycontainer-monitor is missing (make native): this Node process stays the monitor');
      return;
    }
    const attempt = (): void => {
      if (gone()) return;
      const busy = [...this.clients].some((c) => c.reader.partial > 0 || c.sock.writableLength > 0 || c.sock.connecting) || (stdio.stdin?.sock.writableLength ?? 0) > 0;
      if (busy) {
        setTimeout(attempt, 50).unref();
        return;
      }
      try {
        this.handOff(bin, pid, stdio);
      } catch (e) {
        this.note(`cannot hand the container over to mycontainer-monitor: ${messageOf(e)}`);
      }
    };
    setTimeout(attempt, this.opts.handOffMs).unref();
  }

  private handOff(bin: string, pid: number, stdio: HandOffStdio): never {
    const log = this.log!;
    const { argv, keep } = handOffCommand({
      bin, id: this.id, pid, stdio,
      listenFd: this.server ? fdOf(this.server) : -1,
      clients: [...this.clients].map((c) => ({ fd: fdOf(c.sock), hello: c.hello !== null, stdin: c.hello?.stdin === true })),
      log: { file: log.file, maxSize: log.maxSize, maxFiles: log.maxFiles },
      exitCommand: this.opts.exitCommand, delay: this.delay, began: this.began,
    });
    const why = 'hand the running container to mycontainer-monitor';
    for (const fd of keep) sys.keepAcrossExec(fd, why);
    mark('hand-off');
    return sys.execve(bin, argv, process.env, why);
  }

  async main(): Promise<void> {
    // The record's monitorPid is this pid already (mycontainer-monitor's), and a `stop` meanwhile must hold.
    let c = this.store.read(this.id);
    if (this.resumed) this.note(`exit command: the init exited with status ${this.resumed.status}`);
    this.log = new CriLogWriter(c.hostConfig.logPath || this.paths.log(this.id), c.hostConfig.logMaxSize, c.hostConfig.logMaxFiles);
    await this.listen();
    let last: ExitInfo = { exitCode: 0 };
    for (;;) {
      this.began = this.resumed?.began ?? Date.now();
      try {
        const back = this.resumed;
        this.resumed = null;
        const r = back ? this.afterExit(back.status) : await this.runOnce();
        last = { exitCode: r.exitCode };
        recordExit(this.store, this.id, r);
      } catch (e) {
        const msg = messageOf(e);
        this.note(`start failed: ${msg}`);
        last = { exitCode: 127, error: msg };
        this.store.update(this.id, (x) => {
          x.state.status = 'exited';
          x.state.error = msg;
          x.state.exitCode = 127;
          x.state.pid = 0;
          x.state.finishedAt = new Date().toISOString();
        });
      }
      this.broadcast(F.EXIT, JSON.stringify(last));
      c = this.store.read(this.id);
      if (!shouldRestart(c, last.exitCode)) break;
      if (Date.now() - this.began > 10000) this.delay = 100;
      this.store.update(this.id, (x) => {
        x.state.status = 'restarting';
        x.state.restartCount += 1;
      });
      // Interruptible: `stop` during the backoff ends it.
      const until = Date.now() + this.delay;
      while (Date.now() < until && !this.store.read(this.id).state.manuallyStopped) await sleep(Math.min(100, until - Date.now()));
      this.delay = Math.min(this.delay * 2, 60000);
      if (this.store.read(this.id).state.manuallyStopped) {
        this.store.update(this.id, (x) => {
          x.state.status = 'exited';
        });
        break;
      }
    }
    await this.finish();
  }

  private async finish(): Promise<void> {
    lastStop(this.paths, this.id, (m) => this.note(m));
    // EXIT went out when the process ended; with --rm, clients wait for the removal too.
    for (const cl of this.clients) cl.sock.end();
    await Promise.race([new Promise<void>((r) => this.server?.close(() => r())), sleep(1000)]);
    this.log?.close();
    mark('done');
  }
}
