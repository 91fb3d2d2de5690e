// Spawning the container's init into its namespaces, from the runtime's
// main thread.
//
// Namespaces are per thread: unshare(2) and setns(2) change the calling
// thread only, and libuv forks from the thread that calls spawn(). So the
// main thread briefly enters the container's namespaces, spawns the init
// (born inside them: PID 1 of a new pid namespace, in a new mount
// namespace), and goes back to its own, which it saved as fds first. The
// whole sequence is synchronous: no other JavaScript runs in between, and
// libuv's pool threads (async fs) never leave the host's namespaces.
// (A worker_threads thread would do as well, at ~50 ms more per start.)

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { NamespaceJoin } from './namespaces';
import { CLONE, MS } from '../sys/constants';
import { RuntimeError } from '../sys/errors';
import * as sys from '../sys/libc';

export interface SpawnRequest {
  unshareFlags: number;
  join: NamespaceJoin[];
  execPath: string;
  /** An empty directory where the executable is sealed read-only (needs CLONE_NEWNS in unshareFlags). */
  sealDir: string | null;
  args: string[];
  env: Record<string, string>;
  /** Child fds 0..n: numbers are our fds to pass. */
  stdio: (number | 'inherit' | 'ignore')[];
  /** Keep a handle on the init to learn its exit status (foreground `run`, `exec`). */
  wait: boolean;
}

export interface SpawnedInit {
  pid: number;
  /** Resolves with the exit status (128+signal if killed), when `wait` was asked. */
  exited: Promise<number>;
  /** Stop watching the init (detached runs). */
  release(): void;
}

const NS_FILES: [number, string][] = [
  [CLONE.NEWNS, 'mnt'],
  [CLONE.NEWUTS, 'uts'],
  [CLONE.NEWIPC, 'ipc'],
  [CLONE.NEWNET, 'net'],
  [CLONE.NEWPID, 'pid_for_children'],
  [CLONE.NEWCGROUP, 'cgroup'],
];

export function spawnInit(req: SpawnRequest): SpawnedInit {
  const touched = req.unshareFlags | req.join.reduce((f, j) => f | j.flag, 0);
  // Our own namespaces, to come back to.
  const saved = NS_FILES.filter(([flag]) => touched & flag).map(([flag, name]) => ({
    flag,
    fd: sys.open(`/proc/thread-self/ns/${name}`, sys.O.RDONLY | sys.O.CLOEXEC, 0, 'remember the runtime\'s own namespace'),
  }));
  const cwd = process.cwd();
  // Open every namespace to join first: after setns into a mount namespace,
  // paths resolve in the container's view.
  const joins = req.join.map((j) => ({ ...j, fd: sys.open(j.path, sys.O.RDONLY | sys.O.CLOEXEC, 0, j.why) }));
  let child: ReturnType<typeof spawn> | undefined;
  try {
    // setns(CLONE_NEWNS) wants a thread with its own fs_struct; unshare(CLONE_NEWNS) implies that.
    if (touched & CLONE.NEWNS) sys.unshare(CLONE.FS, 'own fs_struct, so this thread may change mount namespace');
    if (req.unshareFlags) sys.unshare(req.unshareFlags, 'linux.namespaces: new namespaces for the container');
    for (const j of joins) sys.setns(j.fd, j.flag, j.why);
    const execPath = req.sealDir ? sealExecutable(req.execPath, req.sealDir) : req.execPath;
    child = spawn(execPath, req.args, {
      stdio: req.stdio,
      detached: true, // setsid(): the init leads its own session, as runc's does
      env: req.env,
      cwd: '/',
    });
  } finally {
    for (const j of joins) sys.close(j.fd);
    for (const s of saved) {
      sys.setns(s.fd, s.flag, 'back to the runtime\'s own namespace');
      sys.close(s.fd);
    }
    if (touched & CLONE.NEWNS) process.chdir(cwd);
  }
  if (child.pid === undefined) {
    throw new RuntimeError(`cannot start the container's init (${req.execPath})`, { code: 'ESPAWN' });
  }
  const c = child;
  const exited = new Promise<number>((resolve) => {
    c.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? osConstants.signals[signal] : 0)));
    c.on('error', () => resolve(127));
  });
  if (!req.wait) c.unref();
  return { pid: child.pid, exited, release: () => c.unref() };
}

/**
 * The init runs the host's node binary inside the container until it
 * execs. So that no container process can write that binary through
 * /proc/<pid>/exe (CVE-2019-5736), it is executed from a read-only bind
 * mount in the new, private mount namespace: opening it for writing gives
 * EROFS, and once pivot_root detaches the old root, the container cannot
 * reach the mount to remount it. The tmpfs and bind never exist in the
 * host's namespace.
 */
function sealExecutable(execPath: string, sealDir: string): string {
  const why = 'protect the host node binary from /proc/self/exe writes (CVE-2019-5736)';
  sys.mount(null, '/', null, MS.SLAVE | MS.REC, null, 'keep the container\'s mounts out of the host namespace');
  sys.mount('tmpfs', sealDir, 'tmpfs', MS.NOSUID | MS.NODEV, 'size=16k,mode=700', why);
  const target = sealDir + '/node';
  fs.writeFileSync(target, '');
  sys.mount(execPath, target, null, MS.BIND, null, why);
  sys.mount(null, target, null, MS.BIND | MS.REMOUNT | MS.RDONLY | MS.NOSUID | MS.NODEV, null, why);
  return target;
}

