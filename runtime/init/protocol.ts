// The sync protocol between the runtime (parent) and the container's init,
// over a unix socketpair that the init sees as fd 3. Frames are JSON lines.
//
//   runtime                                   init (PID 1 in the new namespaces)
//   ───────                                   ────
//   spawn init, move it into the cgroup
//   ── plan ─────────────────────────────────▶ unshare cgroupns, prepare rootfs
//                                              (mounts, /dev), open exec.fifo
//   ◀──────────────────── hooks:createRuntime ─
//   run createRuntime + prestart hooks
//   ── go {state} ───────────────────────────▶ createContainer hooks, pivot_root,
//                                              masked/readonly paths, hostname,
//                                              sysctl, look up process.args[0]
//   ◀────────────────────────────── created ─
//   write state "created", exit (create)
//                                              ... blocks on exec.fifo ...
//   `start` writes a byte to exec.fifo ─────▶  startContainer hooks, rlimits,
//                                              caps, uid/gid, execve(args)
//
// At any point the init may send `debug` (a trace line), `warning`, or
// `error` (then it exits). If the runtime dies before `created`, the init
// reads EOF and exits, leaving nothing behind: its namespaces and mounts die
// with it.

import * as fs from 'node:fs';
import type { ProcessPlan } from '../linux/process';
import type { ConsoleSize } from '../linux/terminal';
import type { RootfsPlan } from '../linux/rootfs';
import type { Hook } from '../spec/generated/config';

export const SYNC_FD = 3;

export interface InitPlan {
  id: string;
  debug: boolean;
  newCgroupNamespace: boolean;
  newTimeNamespace: { offsets: { clock: string; secs: number; nanosecs: number }[] } | null;
  rootfs: RootfsPlan;
  hostname: string | null;
  domainname: string | null;
  sysctl: { key: string; value: string }[];
  process: ProcessPlan;
  hooks: { createContainer: Hook[]; startContainer: Hook[] };
  /** Host path of exec.fifo; opened before pivot_root. */
  execFifo: string;
  /** process.terminal: make a pty and send its master over fd 4. */
  console: { size: ConsoleSize | null } | null;
}

/** `exec`: a process that joins a running container (see container.ts exec). */
export interface ExecPlan {
  id: string;
  debug: boolean;
  /** The container's mount namespace, joined by the exec init's main thread (host path). */
  mountNamespace: string | null;
  process: ProcessPlan;
  console: { size: ConsoleSize | null } | null;
}

export type ToInit =
  | { t: 'plan'; plan: InitPlan }
  | { t: 'exec'; plan: ExecPlan }
  | { t: 'go'; state: string };

export type FromInit =
  | { t: 'debug'; line: string }
  | { t: 'warning'; msg: string }
  | { t: 'hooks'; name: 'createRuntime' }
  | { t: 'created' }
  | { t: 'error'; msg: string; code: string };

/** Init side: blocking, synchronous reads and writes on fd 3. */
export class InitChannel {
  private buf = '';
  private closed = false;

  send(f: FromInit): void {
    if (this.closed) return;
    try {
      fs.writeSync(SYNC_FD, JSON.stringify(f) + '\n');
    } catch {
      this.closed = true; // the runtime is gone; nothing to report to
    }
  }

  /** Blocks for the next frame; null on EOF (the runtime died or closed). */
  recv(): ToInit | null {
    const chunk = Buffer.alloc(65536);
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        return JSON.parse(line) as ToInit;
      }
      let n: number;
      try {
        n = fs.readSync(SYNC_FD, chunk, 0, chunk.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
        return null;
      }
      if (n === 0) return null;
      this.buf += chunk.toString('utf8', 0, n);
    }
  }

  close(): void {
    this.closed = true;
    try {
      fs.closeSync(SYNC_FD);
    } catch {
      // already closed
    }
  }
}
