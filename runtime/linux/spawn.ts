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
//
// With a Keeper (the engine's C monitor), the keeper is what gets spawned
// there: it forks the init inside those namespaces and goes back to ours,
// so the init is its child and outlives this process (see Keeper).

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { constants as osConstants } from 'node:os';
import type { NamespaceJoin } from './namespaces';
import { CLONE, MS } from '../sys/constants';
import { RuntimeError } from '../sys/errors';
import * as sys from '../sys/libc';
import { isRootless, writeIdMaps } from './rootless';
import { statfsToMs } from './remount';
import { projectFile } from '../project';
import { trace } from '../sys/trace';

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
  /**
   * A user namespace (new, or joined by path): native/mycontainer-nsexec
   * enters it, then creates `unshareFlags` inside it, so that it owns them.
   */
  user: { path: string | null; uidMap: string; gidMap: string } | null;
  /** Run the init through this launcher (native/nsexec), given the (sealed) init path. */
  launcher?: (initPath: string) => { file: string; args: string[] };
  /** A process spawned in front of it all that stays the init's parent (see Keeper). */
  keeper?: Keeper | undefined;
}

/**
 * A keeper: what the engine's monitor is (native/mycontainer-monitor
 * --launch), as conmon for podman. It is spawned where the init would be,
 * inside the new namespaces, forks the init there, returns to our
 * namespaces with the fds we saved of them, and reports the init's pid
 * ("pid N\n", or "error MSG\n") on `sync`. So the init is its child, and the
 * container outlives this process without a Node monitor.
 */
export interface Keeper {
  file: string;
  /** Its own fds, passed to it after the init's. */
  fds: number[];
  /**
   * Its argv: where its fds landed, the sync fd, our namespaces to go back
   * to (FLAG:FD), the pid namespace it makes ('new') or joins (a path) for
   * the init (from this thread, the keeper itself would be born in it), and
   * the program to fork.
   */
  args(at: Map<number, number>, sync: number, restore: string[], pidns: string | null, program: string[]): string[];
}

export interface SpawnedInit {
  pid: number;
  /** The keeper's pid, when there is one. */
  keeperPid?: number | undefined;
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
  if (req.user) return spawnInUserNamespace(req, req.user);
  if (req.keeper) {
    // The keeper enters the pid namespace itself, just before it forks the init.
    const pidJoin = req.join.find((j) => j.flag === CLONE.NEWPID);
    const pidns = req.unshareFlags & CLONE.NEWPID ? 'new' : pidJoin ? pidJoin.path : null;
    if (pidns) return spawnInitIn({ ...req, unshareFlags: req.unshareFlags & ~CLONE.NEWPID, join: req.join.filter((j) => j !== pidJoin) }, pidns);
  }
  return spawnInitIn(req, null);
}

function spawnInitIn(req: SpawnRequest, pidns: string | null): SpawnedInit {
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
  let kept: { keeper: ReturnType<typeof spawn>; sync: number } | undefined;
  try {
    // setns(CLONE_NEWNS) wants a thread with its own fs_struct; unshare(CLONE_NEWNS) implies that.
    if (touched & CLONE.NEWNS) sys.unshare(CLONE.FS, 'own fs_struct, so this thread may change mount namespace');
    if (req.unshareFlags) sys.unshare(req.unshareFlags, 'linux.namespaces: new namespaces for the container');
    for (const j of joins) sys.setns(j.fd, j.flag, j.why);
    const initPath = req.sealDir ? sealExecutable(req.execPath, req.sealDir) : req.execPath;
    const { file, args } = req.launcher ? req.launcher(initPath) : { file: initPath, args: req.args };
    if (req.keeper) {
      kept = spawnKeeper(req.keeper, req, saved, pidns, [file, ...args]);
    } else {
      child = spawn(file, args, {
        stdio: req.stdio,
        detached: true, // setsid(): the init leads its own session, as runc's does
        env: req.env,
        cwd: '/',
      });
    }
  } finally {
    for (const j of joins) sys.close(j.fd);
    for (const s of saved) {
      sys.setns(s.fd, s.flag, 'back to the runtime\'s own namespace');
      sys.close(s.fd);
    }
    if (touched & CLONE.NEWNS) process.chdir(cwd);
  }
  if (kept) return keeperReport(kept.keeper, kept.sync);
  if (child?.pid === undefined) {
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

/** Spawns the keeper with the init's stdio, then its own fds, the fds of our namespaces, and the sync pipe. */
function spawnKeeper(k: Keeper, req: SpawnRequest, saved: { flag: number; fd: number }[], pidns: string | null, program: string[]): { keeper: ReturnType<typeof spawn>; sync: number } {
  const stdio = [...req.stdio];
  const at = new Map<number, number>();
  const place = (fd: number): number => {
    stdio.push(fd);
    return stdio.length - 1;
  };
  for (const fd of k.fds) at.set(fd, place(fd));
  const restore = saved.map((s) => `0x${s.flag.toString(16)}:${place(s.fd)}`);
  const [r, w] = sys.pipe('the keeper reports the init\'s pid');
  const sync = place(w);
  try {
    const keeper = spawn(k.file, k.args(at, sync, restore, pidns, program), { stdio, detached: true, env: req.env, cwd: '/' });
    return { keeper, sync: r };
  } finally {
    fs.closeSync(w);
  }
}

/** The keeper's "pid N" line: the init's pid. Before it, with --debug, its steps ("step CALL = RESULT # WHY"). */
function keeperReport(keeper: ReturnType<typeof spawn>, sync: number): SpawnedInit {
  let line: string;
  try {
    const next = lineReader(sync);
    for (line = next(); line.startsWith('step '); line = next()) {
      const m = /^step (.*) (= .*?) # (.*)$/.exec(line);
      if (m) trace({ kind: 'syscall', call: `[monitor] ${m[1]}`, result: m[2]!, why: m[3] });
    }
  } catch {
    line = 'error the keeper exited without a word';
  } finally {
    fs.closeSync(sync);
  }
  keeper.unref(); // it outlives us
  if (!line.startsWith('pid ')) throw new RuntimeError(`cannot start the container's init: ${line.replace(/^error /, '')}`, { code: 'ESPAWN' });
  return { pid: Number(line.slice(4)), keeperPid: keeper.pid, exited: new Promise(() => {}), release: () => {} };
}

/**
 * The init runs the host's init binary (native/build/mycontainer-init)
 * inside the container until it execs. So that no container process can write that binary through
 * /proc/<pid>/exe (CVE-2019-5736), it is executed from a read-only bind
 * mount in the new, private mount namespace: opening it for writing gives
 * EROFS, and once pivot_root detaches the old root, the container cannot
 * reach the mount to remount it. The tmpfs and bind never exist in the
 * host's namespace.
 */
function sealExecutable(execPath: string, sealDir: string): string {
  const why = 'protect the host\'s init binary from /proc/self/exe writes (CVE-2019-5736)';
  // Only the mount that holds sealDir turns slave, so the seal's tmpfs does
  // not reach the host; the rest keeps its propagation until the init
  // applies linux.rootfsPropagation (rslave by default), so that a
  // container asking for rshared stays a peer of the host's shared mounts.
  for (let p = path.dirname(sealDir); ; p = path.dirname(p)) {
    try {
      sys.mount(null, p, null, MS.SLAVE, null, 'keep the seal\'s mounts out of the host namespace');
      break;
    } catch (e) {
      if ((e as { code?: string }).code !== 'EINVAL' || p === '/') throw e;
    }
  }
  sys.mount('tmpfs', sealDir, 'tmpfs', MS.NOSUID | MS.NODEV, 'size=16k,mode=711', why);
  const target = sealDir + '/init';
  fs.writeFileSync(target, '');
  sys.mount(execPath, target, null, MS.BIND, null, why);
  sys.mount(null, target, null, MS.BIND | MS.REMOUNT | MS.RDONLY | MS.NOSUID | MS.NODEV, null, why);
  return target;
}

/**
 * Rootless, the seal cannot be made here: unshare(CLONE_NEWNS) needs
 * CAP_SYS_ADMIN in our user namespace. native/nsexec makes it instead, in
 * the mount namespace it creates inside the container's user namespace,
 * onto this empty file, with these remount flags. Once pivot_root detaches
 * the old root, that mount is in no namespace, so not even the container's
 * root can remount it writable.
 */
function innerSeal(execPath: string, sealDir: string): { target: string; flags: number } {
  const target = path.join(sealDir, 'init');
  fs.writeFileSync(target, '', { mode: 0o500 });
  // A bind remount must keep the flags the kernel locked on the source's mount (copied from a more privileged namespace).
  const src = statfsToMs(sys.statfs(execPath, 'the init binary\'s mount flags, which the read-only remount must keep').flags);
  let flags = MS.BIND | MS.REMOUNT | MS.RDONLY | MS.NOSUID | MS.NODEV | (src & (MS.NOEXEC | MS.NOATIME | MS.RELATIME | MS.NODIRATIME));
  if (!(src & (MS.NOATIME | MS.RELATIME))) flags |= MS.STRICTATIME;
  return { target, flags };
}


/** Where `make native` puts mycontainer-nsexec, from dist/runtime/linux or dist/bundle. */
function nsexecPath(): string {
  const p = projectFile('native/build/mycontainer-nsexec');
  if (p) return p;
  throw new RuntimeError('user namespaces need native/build/mycontainer-nsexec: run `make native`', { code: 'ENOENT' });
}

const NSEXEC_FD = 5;

/**
 * With a user namespace, the init is spawned through native/nsexec (see its
 * header): the main thread still seals node in a private mount namespace and
 * joins the namespaces given by path; nsexec enters the user namespace, we
 * write its id maps, it creates the rest inside and reports the init's pid.
 * Rootless, the seal and the joins are nsexec's too (runtime/README.md).
 */
function spawnInUserNamespace(req: SpawnRequest, user: NonNullable<SpawnRequest['user']>): SpawnedInit {
  const nsexec = nsexecPath();
  const [ours, theirs] = sys.socketpair('sync channel with native/nsexec');
  const stdio = [...req.stdio];
  while (stdio.length < NSEXEC_FD) stdio.push('ignore');
  stdio[NSEXEC_FD] = theirs;
  const flags = (user.path === null ? CLONE.NEWUSER : 0) | req.unshareFlags;
  // Rootless, the seal's mount namespace is nsexec's own (see innerSeal), and
  // namespaces are joined by nsexec too: setns() needs CAP_SYS_ADMIN in our
  // own user namespace as well as in theirs, and only inside theirs do we have it.
  const rootless = isRootless();
  const inner = rootless && req.sealDir ? innerSeal(req.execPath, req.sealDir) : null;
  const innerJoins = rootless ? req.join : [];
  // nsexec forks when the init must be born in a new or joined pid namespace.
  const forks = (flags & CLONE.NEWPID) !== 0 || innerJoins.some((j) => j.flag === CLONE.NEWPID);
  if (req.wait && forks) {
    // nsexec forks the init and exits: become the init's parent when it does.
    sys.prctl(sys.PR.SET_CHILD_SUBREAPER, 1, 'the init is our grandchild: reap it ourselves', 'PR_SET_CHILD_SUBREAPER');
  }
  let child: SpawnedInit;
  try {
    child = spawnInit({
      ...req,
      user: null,
      // Only what must happen outside the user namespace: the seal (as root), and the joins.
      unshareFlags: req.sealDir && !inner ? CLONE.NEWNS : 0,
      sealDir: inner ? null : req.sealDir,
      join: rootless ? [] : req.join,
      stdio,
      // Without a new pid namespace nsexec execs the init itself: then it is our child.
      wait: req.wait && !forks,
      launcher: (initPath) => ({
        file: nsexec,
        args: [
          String(NSEXEC_FD), '0x' + flags.toString(16), user.path ?? '-', inner?.target ?? '-', '0x' + (inner?.flags ?? 0).toString(16),
          ...innerJoins.map((j) => `0x${j.flag.toString(16)}:${j.path}`), '--', initPath, ...req.args,
        ],
      }),
    });
  } finally {
    fs.closeSync(theirs);
  }
  try {
    const lines = lineReader(ours);
    let line = lines();
    if (line.startsWith('maps ')) {
      const pid = Number(line.slice(5));
      try {
        writeIdMaps(pid, user.uidMap, user.gidMap);
      } catch (e) {
        fs.writeSync(ours, 'no\n');
        throw e;
      }
      fs.writeSync(ours, 'go\n');
      line = lines();
    }
    if (line.startsWith('error ')) throw new RuntimeError(line.slice(6), { code: 'ENSEXEC' });
    if (!line.startsWith('pid ')) throw new RuntimeError(`native/nsexec: unexpected reply "${line}"`, { code: 'ENSEXEC' });
    if (!forks) return child; // nsexec became the init: same pid
    // nsexec forked PID 1 and exits; its pid is as seen from our namespace.
    const pid = Number(line.slice(4));
    const exited = req.wait ? watchExit(pid) : Promise.resolve(0);
    return { pid, keeperPid: child.keeperPid, exited, release: () => {} };
  } catch (e) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // gone
    }
    throw e;
  } finally {
    fs.closeSync(ours);
  }
}

/** Blocking line reader on a socket fd (nsexec answers at once). */
function lineReader(fd: number): () => string {
  let buf = '';
  return () => {
    for (;;) {
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        return line;
      }
      const chunk = Buffer.alloc(512);
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) throw new RuntimeError('native/nsexec exited without a word', { code: 'ENSEXEC' });
      buf += chunk.toString('utf8', 0, n);
    }
  };
}

/** The exit status of a process we are subreaper of (not our own child for libuv). */
function watchExit(pid: number): Promise<number> {
  const fd = sys.pidfdOpen(pid, 'watch the init for its exit');
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      let status: number | null;
      try {
        status = sys.waitPidfd(fd);
      } catch {
        status = 127; // not ours to reap after all
      }
      if (status === null) return;
      clearInterval(timer);
      fs.closeSync(fd);
      resolve(status);
    }, 10);
  });
}
