// The runtime side of spawning the init from a worker thread (see
// spawn-worker.ts for why a thread).

import { Worker } from 'node:worker_threads';
import * as path from 'node:path';
import type { NamespaceJoin } from './namespaces';
import { RuntimeError } from '../sys/errors';
import { trace, tracing } from '../sys/trace';

export interface SpawnRequest {
  unshareFlags: number;
  join: NamespaceJoin[];
  execPath: string;
  /** An empty directory where the executable is sealed read-only (new mount namespace only). */
  sealDir: string | null;
  args: string[];
  env: Record<string, string>;
  /** Child fds 0..n: numbers are our fds to pass. */
  stdio: (number | 'inherit' | 'ignore')[];
  /** Keep the worker until the init exits (foreground `run`). */
  wait: boolean;
  debug: boolean;
}

export type SpawnReply =
  | { t: 'spawned'; pid: number }
  | { t: 'exit'; status: number }
  | { t: 'error'; msg: string }
  | { t: 'debug'; line: string };

export interface SpawnedInit {
  pid: number;
  /** Resolves with the exit status, when `wait` was asked. */
  exited: Promise<number>;
  worker: Worker;
}

export function spawnInit(req: SpawnRequest): Promise<SpawnedInit> {
  // Next to this module in dist/runtime/linux, and next to the bundled CLI in
  // dist/bundle (scripts/bundle.js names it the same).
  const worker = new Worker(path.join(__dirname, 'spawn-worker.js'), { workerData: req });
  let resolveExit: (n: number) => void = () => {};
  const exited = new Promise<number>((r) => (resolveExit = r));
  return new Promise((resolve, reject) => {
    let spawned = false;
    worker.on('message', (m: SpawnReply) => {
      if (m.t === 'debug') {
        if (tracing()) trace({ kind: 'syscall', call: `[worker] ${m.line}`, result: '' });
      } else if (m.t === 'spawned') {
        spawned = true;
        resolve({ pid: m.pid, exited, worker });
      } else if (m.t === 'exit') {
        resolveExit(m.status);
        void worker.terminate();
      } else if (m.t === 'error') {
        if (!spawned) reject(new RuntimeError(m.msg, { code: 'ESPAWN' }));
        void worker.terminate();
      }
    });
    worker.on('error', (e) => reject(new RuntimeError(`spawn worker failed: ${e.message}`, { cause: e })));
    worker.on('exit', () => {
      if (!spawned) reject(new RuntimeError('spawn worker exited before the init started', { code: 'ESPAWN' }));
    });
  });
}
