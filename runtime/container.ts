// The runtime's operations on one container: create, start, run, state,
// kill, delete, list. Each takes the container's lock (StateDir), works
// through the plan, and on failure undoes what it did, so that no state
// directory, cgroup or process is left behind.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import type { ContainerPlan } from './plan';

import { StateDir, initAlive, liveStatus, ociState, procStat, listIds, type ContainerRecord, type Status } from './state';
import { spawnInit, type SpawnedInit } from './linux/spawn';
import { InitExecutor } from './init/executor';
import { writeStage1, writeStage2, type InitPlan } from './init/program';
import { cgroupSubmountsOf, type CgroupSubmount } from './linux/cgroupmount';
import { hostProcSysMounts } from './linux/rootfs';
import { SECCOMP_LISTENER, processHostView } from './linux/process';
import { sendListener } from './linux/seccomp-notify';
import { ProgramBuilder } from './sys/program';
import { projectFile } from './project';
import { OwnConsole, connectConsole } from './console';
import { PRESERVED_FDS_AT } from './linux/process';
import { runHooks, runHooksWarning } from './hooks';
import { cgroupManager, managerFromPaths } from './cgroups';
import type { CgroupManager } from './cgroups/manager';
import { RuntimeError, messageOf, wrap } from './sys/errors';
import * as sys from './sys/libc';
import { trace, tracing } from './sys/trace';
import { CLONE, MS, parseSignal } from './sys/constants';
import { debugLine } from './log';
import { checkRootlessConfig, ensureOwnRoot, isRootless } from './linux/rootless';

// Loaded only by create and run: validation (the generated schema code) and
// planning are not needed by state, start, kill or delete, which should
// start fast.
const planning = (): typeof import('./plan') => require('./plan') as typeof import('./plan');

export interface RuntimeContext {
  root: string;
  debug: boolean;
  warn: (msg: string) => void;
}

export interface CreateOptions {
  id: string;
  bundle: string;
  pidFile?: string | undefined;
  consoleSocket?: string | undefined;
  noPivot: boolean;
  /** Keep a handle on the init to wait for its exit (foreground run). */
  wait?: boolean;
  /** A connected console socket of our own (foreground run with a terminal). */
  consoleFd?: number;
  /** --preserve-fds: pass our fds 3..3+N-1 to the process. */
  preserveFds?: number;
  /** The process's fds 0-2, when not ours (a monitor's pipes); ignored with a terminal. */
  stdio?: [number | 'ignore', number | 'ignore', number | 'ignore'];
  /** This process exits right after `start` (`run -d`): the init execs only then (program.ts handOff). */
  handOff?: boolean;
  /** A process in front of the init that stays its parent: the engine's monitor (linux/spawn.ts Keeper). */
  keeper?: import('./linux/spawn').Keeper;
}

/** --preserve-fds N, or systemd's LISTEN_FDS (socket activation), as runc counts them. */
export function extraFds(preserve: number | undefined): number {
  const listen = Number(process.env['LISTEN_FDS'] ?? 0);
  return Math.max(preserve ?? 0, Number.isInteger(listen) && listen > 0 ? listen : 0);
}

/**
 * The child's stdio array: 0-2, 3 sync, 4 console, then preserved fds at
 * PRESERVED_FDS_AT. With a terminal the init gets /dev/null until it makes
 * the pty slave its stdio, as runc does: containerd's shim reads create's
 * stdout and stderr to EOF, which would never come while the container
 * held them.
 */
export function initStdio(childFd: number, consoleFd: number | null, preserve: number, std?: readonly (number | 'ignore')[], mountFds: readonly number[] = []): (number | 'inherit' | 'ignore')[] {
  const s = (i: number): number | 'inherit' | 'ignore' => (consoleFd !== null ? 'ignore' : std?.[i] ?? 'inherit');
  const stdio: (number | 'inherit' | 'ignore')[] = [s(0), s(1), s(2), childFd, consoleFd ?? 'ignore'];
  if (preserve > 0 || mountFds.length > 0) {
    while (stdio.length < PRESERVED_FDS_AT) stdio.push('ignore');
    for (let k = 0; k < preserve; k++) stdio.push(3 + k);
    stdio.push(...mountFds); // at mountFdsAt(preserve)
  }
  return stdio;
}

/** Where the init finds the bind sources the runtime opened for it (after the preserved fds). */
function mountFdsAt(preserve: number): number {
  return PRESERVED_FDS_AT + preserve;
}

/**
 * In a user namespace the container's root is another host uid, which may
 * not reach a bind source the host's root can (a 0700 directory on the
 * way): the runtime makes a detached copy of each source (open_tree; an
 * O_PATH fd would not do, as a bind from another mount namespace is
 * EINVAL), and the init attaches it (runc passes mount fds for this).
 * Returns the fds to pass.
 */
function openBindSources(mounts: import('./linux/rootfs').MountStep[], preserve: number): number[] {
  const fds: number[] = [];
  try {
    for (const m of mounts) {
      if (m.kind !== 'bind') continue;
      try {
        fds.push(sys.openTreeClone(m.source, (m.flags & MS.REC) !== 0, `${m.why}: the bind source, taken by the host's root for the user namespace`));
      } catch (e) {
        throw new RuntimeError(`${m.why}: the bind source ${m.source} cannot be opened: ${messageOf(e)}`, { code: (e as { code?: string }).code ?? 'EIO', cause: e });
      }
      m.sourceFd = mountFdsAt(preserve) + fds.length - 1;
    }
  } catch (e) {
    for (const fd of fds) sys.close(fd);
    throw e;
  }
  return fds;
}

/** The host ids of the container's root, when the config maps them. */
function fifoOwner(spec: import('./spec/generated/config').Spec, plan: ContainerPlan): { uid: number; gid: number } | null {
  if (!plan.namespaces.user || plan.namespaces.user.path !== null) return null;
  const uid = spec.linux?.uidMappings?.find((m) => m.containerID === 0);
  const gid = spec.linux?.gidMappings?.find((m) => m.containerID === 0);
  return uid && gid ? { uid: uid.hostID, gid: gid.hostID } : null;
}

const S_IFIFO = 0o010000;

/** A script's path: the bundled one when this code runs from dist/bundle (scripts/bundle.js). */
export function bundledOr(modulePath: string, bundleName: string): string {
  return process.env['MYCONTAINER_BUNDLED'] === '1' ? path.join(__dirname, `${bundleName}.js`) : modulePath;
}

/** native/build/mycontainer-init: the container's init, which runs the programs of runtime/init/program.ts. */
export function initCommand(): { execPath: string; args: string[] } {
  const p = projectFile('native/build/mycontainer-init');
  if (!p) throw new RuntimeError('the container init native/build/mycontainer-init is missing: run `make native`', { code: 'ENOENT' });
  return { execPath: p, args: [] };
}

export async function create(ctx: RuntimeContext, opts: CreateOptions): Promise<{ rec: ContainerRecord; init: SpawnedInit }> {
  const sd = new StateDir(ctx.root, opts.id);
  if (fs.existsSync(sd.dir)) throw new RuntimeError(`container "${opts.id}" already exists`, { code: 'EEXIST' });
  // Everything that can be checked without side effects, first.
  crashPoint('start');
  const { loadSpec, planContainer } = planning();
  const spec = loadSpec(opts.bundle);
  const plan = planContainer(spec, opts.bundle, { noPivot: opts.noPivot });
  plan.process.preserveFds = extraFds(opts.preserveFds);
  for (const w of plan.warnings) ctx.warn(w);
  if (plan.process.terminal && !opts.consoleSocket && opts.consoleFd === undefined) {
    throw new RuntimeError('process.terminal is true: --console-socket is required', { code: 'EINVAL' });
  }
  if (!plan.process.terminal && opts.consoleSocket) {
    throw new RuntimeError('--console-socket was given but process.terminal is false', { code: 'EINVAL' });
  }
  // Connect now, so that a missing socket fails before anything exists.
  const rootless = isRootless();
  if (rootless) checkRootlessConfig(plan.namespaces.user !== null, plan.namespaces.user?.path === null ? spec.linux?.uidMappings : undefined);
  const consoleFd = plan.process.terminal ? (opts.consoleFd ?? connectConsole(opts.consoleSocket as string)) : null;

  try {
    if (rootless) ensureOwnRoot(ctx.root);
    sd.createAndLock();
  } catch (e) {
    if (consoleFd !== null && opts.consoleFd === undefined) fs.closeSync(consoleFd);
    throw e;
  }
  let cg: CgroupManager | null = null;
  let init: SpawnedInit | null = null;
  let channel: InitExecutor | null = null;
  const rec: ContainerRecord = {
    ociVersion: spec.ociVersion,
    id: opts.id,
    status: 'creating',
    pid: 0,
    pidStartTime: '',
    bundle: plan.bundle,
    rootfs: plan.rootfs.rootfs,
    created: new Date().toISOString(),
    annotations: (spec.annotations ?? {}) as Record<string, string>,
    cgroup: null,
    namespaces: {},
    hooks: { poststop: spec.hooks?.poststop ?? [], poststart: spec.hooks?.poststart ?? [] },
    owner: os.userInfo().username,
    config: { process: spec.process, ...(spec.linux?.seccomp ? { seccomp: spec.linux.seccomp } : {}) },
  };
  try {
    crashPoint('state-dir');
    sys.mknod(sd.fifo, S_IFIFO | 0o600, 0, 0, 'exec.fifo: `start` writes here to let the init exec');
    // The init reads it; in a user namespace the init's root is another host uid
    // (rootless, it is us: checkRootlessConfig).
    const owner = rootless ? null : fifoOwner(spec, plan);
    if (owner) fs.chownSync(sd.fifo, owner.uid, owner.gid);
    else if (plan.namespaces.user && !rootless) fs.chmodSync(sd.fifo, 0o644);
    let mgr: CgroupManager | null = cgroupManager({ cgroupsPath: spec.linux?.cgroupsPath, id: opts.id });
    const denied = rootless ? unwritableCgroup(mgr) : null;
    if (denied !== null) {
      // No delegation: run without a cgroup of our own, as runc does rootless.
      const fields = resourceFields(spec.linux?.resources);
      ctx.warn(`cgroups: no write access to ${denied} for uid ${process.geteuid?.()} (no cgroup delegation): the container gets no cgroup${fields.length ? `; not applied: ${fields.join(', ')}` : ''}`);
      mgr = null;
    }
    // A process moved into a frozen cgroup would stop there, and create with it (runc refuses too).
    if (mgr?.frozen()) throw new RuntimeError(`cannot create container "${opts.id}": container's cgroup unexpectedly frozen (${mgr.paths()['freezer'] ?? mgr.paths()['unified'] ?? ''}): thaw it first`, { code: 'EBUSY' });
    cg = mgr;
    rec.cgroup = mgr ? { driver: mgr.driver, paths: mgr.paths() } : null;
    sd.write(rec); // before any cgroup exists, so `delete --force` can always find it
    mgr?.create();
    // Sharing a cgroup with another container: runc warns, and so do we.
    const others = mgr?.pids().length ?? 0;
    if (others > 0) ctx.warn(`container's cgroup is not empty: ${others} process(es) found; limits and kill --all reach them too`);
    crashPoint('cgroup');

    const mountFds = plan.namespaces.user && !rootless ? openBindSources(plan.rootfs.mounts, plan.process.preserveFds ?? 0) : [];
    const [parentFd, childFd] = sys.socketpair('sync channel between the runtime and the init');
    const cmd = initCommand();
    try {
      init = spawnInit({
        unshareFlags: plan.namespaces.unshareFlags,
        join: plan.namespaces.join,
        execPath: cmd.execPath,
        sealDir: plan.namespaces.unshareFlags & CLONE.NEWNS ? makeSealDir(sd) : null,
        args: cmd.args,
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
        stdio: initStdio(childFd, consoleFd, plan.process.preserveFds ?? 0, opts.stdio, mountFds),
        wait: opts.wait ?? false,
        user: plan.namespaces.user ? { path: plan.namespaces.user.path, uidMap: plan.namespaces.uidMap, gidMap: plan.namespaces.gidMap } : null,
        keeper: opts.keeper,
      });
    } finally {
      fs.closeSync(childFd);
      for (const fd of mountFds) sys.close(fd);
      // Ours to close only if we connected it; an OwnConsole closes its own.
      if (consoleFd !== null && opts.consoleFd === undefined) fs.closeSync(consoleFd);
    }
    channel = new InitExecutor(parentFd, 'init');
    rec.pid = init.pid;
    // runc's own --debug milestones, for those who grep for them (runc's debug.bats does).
    if (ctx.debug) debugLine(`nsexec container setup: init ${init.pid} is in its namespaces`);
    rec.pidStartTime = procStat(init.pid)?.startTime ?? '';
    for (const [type, info] of Object.entries({ pid: 'pid', network: 'net', ipc: 'ipc', uts: 'uts', mount: 'mnt', cgroup: 'cgroup', time: 'time', user: 'user' })) {
      rec.namespaces[type] = `/proc/${init.pid}/ns/${info}`;
    }
    crashPoint('spawned');
    sd.write(rec);

    mgr?.addProcess(init.pid);
    // linux.devices nodes are made, not allowed: under a deny-all rule only
    // linux.resources.devices (and the default nodes) let one through, as with runc.
    if (mgr && spec.linux?.resources) for (const w of mgr.setResources(spec.linux.resources)) ctx.warn(w);

    const initPlan: InitPlan = {
      id: opts.id,
      newCgroupNamespace: plan.namespaces.newCgroupInInit,
      newTimeNamespace: plan.namespaces.newTimeInInit ? { offsets: plan.namespaces.timeOffsets } : null,
      rootfs: plan.rootfs,
      hostname: spec.hostname ?? null,
      domainname: spec.domainname ?? null,
      sysctl: plan.sysctl,
      process: plan.process,
      hooks: { createContainer: spec.hooks?.createContainer ?? [], startContainer: spec.hooks?.startContainer ?? [] },
      execFifo: sd.fifo,
      console: plan.process.terminal ? { size: spec.process?.consoleSize ?? null } : null,
      handOff: opts.handOff ?? false,
    };
    const pid = init.pid;
    let subs: CgroupSubmount[] | null = null;
    const b = new ProgramBuilder();
    const fifo = writeStage1(b, initPlan, {
      statfsType: (p) => sys.statfs(p, 'a bind onto /proc must come from a procfs').type,
      cgroupSubmounts: () => (subs ??= cgroupSubmountsOf(pid)),
    });
    channel.run(b.take());
    crashPoint('plan-sent');
    await channel.until('createRuntime');
    if (ctx.debug) debugLine('child process in init(): the rootfs is prepared (stage 1)');
    crashPoint('hooks');
    // runc gives these "created" (its status is derived: an init and an
    // exec.fifo), and runtime-tools' hooks_stdin checks that it does.
    const created = JSON.stringify(ociState(rec, 'created'));
    runHooks('prestart', spec.hooks?.prestart, created);
    runHooks('createRuntime', spec.hooks?.createRuntime, created);
    const hostProcSys = plan.rootfs.noPivot ? hostProcSysMounts(fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8'), plan.rootfs.rootfs) : [];
    writeStage2(b, initPlan, fifo, (status) => JSON.stringify(ociState(rec, status)), hostProcSys, processHostView(pid));
    const listener = plan.process.seccomp?.listener;
    if (listener) channel.onPause(SECCOMP_LISTENER, (fd) => sendListener(listener, pid, fd, ociState(rec, 'creating')));
    channel.run(b.take());
    await channel.until('created');
    if (ctx.debug) debugLine('init: closing the pipe to signal completion (created)');
    crashPoint('created');
    // A foreground run keeps listening: the init's last steps (startContainer
    // hooks, execve) are traced too. Otherwise we hang up, and the
    // init's later frames go nowhere.
    if (opts.wait && ctx.debug) void channel.drain();
    else if (opts.handOff) channel.release();
    else channel.close();
    rec.status = 'created';
    sd.write(rec);
    if (opts.pidFile) writePidFile(opts.pidFile, init.pid);
    sd.unlock();
    return { rec, init };
  } catch (e) {
    channel?.close();
    destroyQuietly(ctx, rec, cg, sd);
    throw wrap(e, `cannot create container "${opts.id}"`);
  }
}

/**
 * Test hook for the robustness tests: MYCONTAINER_CRASH_AT=<point> makes the
 * runtime SIGKILL itself there, as an OOM killer or an impatient user would.
 */
function crashPoint(point: string): void {
  if (process.env['MYCONTAINER_CRASH_AT'] === point) process.kill(process.pid, 'SIGKILL');
  if (process.env['MYCONTAINER_TIMING']) process.stderr.write(`timing: ${point} at ${performance.now().toFixed(1)} ms\n`);
}

/**
 * The first cgroup directory (or, when it does not exist yet, its nearest
 * existing parent) we may not write, or null when we may write them all.
 */
function unwritableCgroup(mgr: CgroupManager): string | null {
  for (const dir of new Set(Object.values(mgr.paths()))) {
    let d = dir;
    while (!fs.existsSync(d) && path.dirname(d) !== d) d = path.dirname(d);
    try {
      fs.accessSync(d, fs.constants.W_OK);
    } catch {
      return d;
    }
  }
  return null;
}

/** The linux.resources fields a config sets (leaves, arrays whole), to name what is not applied. */
function resourceFields(resources: unknown, prefix = 'linux.resources'): string[] {
  if (resources === null || resources === undefined) return [];
  if (typeof resources !== 'object' || Array.isArray(resources)) return Array.isArray(resources) && resources.length === 0 ? [] : [prefix];
  return Object.entries(resources as Record<string, unknown>).flatMap(([k, v]) => resourceFields(v, `${prefix}.${k}`));
}

/** Undo a failed create: kill the init, remove the cgroup and the state directory. */
function destroyQuietly(ctx: RuntimeContext, rec: ContainerRecord, cg: CgroupManager | null, sd: StateDir): void {
  try {
    if (rec.pid > 0 && initAlive(rec)) {
      sys.kill(rec.pid, 9, 'undo a failed create');
      waitGone(rec.pid, rec.pidStartTime, 5000);
    }
    if (cg) {
      killCgroup(cg);
      cg.destroy();
    }
  } catch (e) {
    ctx.warn(`cleanup after a failed create: ${messageOf(e)}`);
  }
  sd.remove();
}

function exeOf(pid: number): string | null {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return null;
  }
}

/**
 * Until the init has exec'd the process (at most 2 s): a signal sent before
 * would reach the init, and PID 1 of a pid namespace drops signals it has no
 * handler for, so a `kill TERM` right after `start` would be lost.
 */
function waitExecve(pid: number, initExe: string | null): void {
  if (initExe === null) return;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + 2000;
  while (Date.now() < deadline) {
    const now = exeOf(pid);
    if (now === null || now !== initExe) return;
    Atomics.wait(pause, 0, 0, 1);
  }
}

export async function start(ctx: RuntimeContext, id: string, opts: { waitExecve?: boolean } = {}): Promise<ContainerRecord> {
  const sd = new StateDir(ctx.root, id);
  sd.lock();
  try {
    const rec = sd.read();
    const status = liveStatus(rec, sd);
    if (status !== 'created') {
      throw new RuntimeError(`cannot start container "${id}": it is ${status}, not created`, { code: 'EINVAL' });
    }
    let fd: number;
    try {
      fd = fs.openSync(sd.fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    } catch (e) {
      throw new RuntimeError(`cannot start container "${id}": its init is not waiting on exec.fifo (${(e as NodeJS.ErrnoException).code})`, { cause: e });
    }
    const initExe = exeOf(rec.pid);
    fs.writeSync(fd, '0');
    fs.closeSync(fd);
    fs.unlinkSync(sd.fifo);
    if (opts.waitExecve ?? true) waitExecve(rec.pid, initExe);
    rec.status = 'running';
    sd.write(rec);
    runHooksWarning('poststart', rec.hooks.poststart, JSON.stringify(ociState(rec, 'running')), ctx.warn);
    return rec;
  } finally {
    sd.unlock();
  }
}

export function state(ctx: RuntimeContext, id: string): Record<string, unknown> {
  const sd = new StateDir(ctx.root, id);
  const rec = sd.read();
  return runcStyleState(rec, liveStatus(rec, sd));
}

function runcStyleState(rec: ContainerRecord, status: Status): Record<string, unknown> {
  // runc's key order (its containerState struct), which scripts match on.
  const oci = ociState(rec, status);
  const s: Record<string, unknown> = { ociVersion: oci.ociVersion, id: oci.id, pid: status === 'stopped' ? 0 : rec.pid, status: oci.status, bundle: oci.bundle, rootfs: rec.rootfs, created: rec.created };
  if (oci.annotations) s['annotations'] = oci.annotations;
  s['owner'] = rec.owner;
  return s;
}

export function list(ctx: RuntimeContext): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const id of listIds(ctx.root)) {
    try {
      const sd = new StateDir(ctx.root, id);
      const rec = sd.read();
      out.push(runcStyleState(rec, liveStatus(rec, sd)));
    } catch {
      // deleted while we listed
    }
  }
  return out;
}

export function kill(ctx: RuntimeContext, id: string, signal: string, all: boolean): void {
  // Signal 0 only asks whether the processes are there, as kill(2).
  const sig = /^0+$/.test(signal) ? 0 : parseSignal(signal);
  if (sig === undefined) throw new RuntimeError(`cannot kill container "${id}": unknown signal "${signal}"`, { code: 'EINVAL' });
  const sd = new StateDir(ctx.root, id);
  const rec = sd.read();
  const status = liveStatus(rec, sd);
  // --all signals whatever is left in the cgroup, even once the init is gone (as runc).
  if (status === 'stopped' && !(all && rec.cgroup)) throw new RuntimeError(`cannot kill container "${id}": container not running`, { code: 'ESRCH' });
  if (all && rec.cgroup) {
    const cg = managerFromPaths(rec.cgroup.driver, rec.cgroup.paths);
    for (const pid of cg.pids()) {
      try {
        sys.kill(pid, sig, `kill --all ${signal}`);
      } catch {
        // exited meanwhile
      }
    }
  } else {
    sys.kill(rec.pid, sig, `kill ${signal}`);
  }
}

export function remove(ctx: RuntimeContext, id: string, force: boolean): void {
  const sd = new StateDir(ctx.root, id);
  try {
    sd.lock();
  } catch (e) {
    if (force && (e as RuntimeError).code === 'ENOENT') return; // as runc: --force on a missing container is no error
    throw e;
  }
  if (!sd.exists()) {
    // Killed before its first state write: only the directory is there.
    sd.remove();
    return;
  }
  const rec = sd.read();
  const status = liveStatus(rec, sd);
  if ((status === 'running' || status === 'paused' || status === 'creating') && !force) {
    sd.unlock();
    throw new RuntimeError(`cannot delete container "${id}" that is not stopped: ${status} (use --force)`, { code: 'EBUSY' });
  }
  const cg = rec.cgroup ? managerFromPaths(rec.cgroup.driver, rec.cgroup.paths) : null;
  if (initAlive(rec)) {
    try {
      sys.kill(rec.pid, 9, `delete ${force ? '--force ' : ''}container ${id}`);
    } catch {
      // exited meanwhile
    }
  }
  if (cg) killCgroup(cg);
  waitGone(rec.pid, rec.pidStartTime, 10000);
  if (cg) cg.destroy();
  if (status !== 'creating') {
    runHooksWarning('poststop', rec.hooks.poststop, JSON.stringify(ociState(rec, 'stopped')), ctx.warn);
  }
  sd.remove();
}

/** SIGKILL every process in the cgroup (thawing it first if frozen), until it is empty. */
function killCgroup(cg: CgroupManager): void {
  const deadline = Date.now() + 10000;
  let thawed = false;
  for (;;) {
    let pids: number[];
    try {
      pids = cg.pids();
    } catch {
      return;
    }
    if (pids.length === 0) return;
    if (!thawed) {
      try {
        cg.freeze(false);
      } catch {
        // no freezer: fine
      }
      thawed = true;
    }
    for (const pid of pids) {
      try {
        sys.kill(pid, 9, 'empty the container cgroup');
      } catch {
        // gone
      }
    }
    if (Date.now() > deadline) throw new RuntimeError(`processes ${pids.join(', ')} did not die`, { code: 'EBUSY' });
    sleepMs(10);
  }
}

function waitGone(pid: number, startTime: string, timeoutMs: number): void {
  if (pid <= 0) return;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = procStat(pid);
    if (st === null || st.state === 'Z' || st.startTime !== startTime) return;
    if (Date.now() > deadline) throw new RuntimeError(`process ${pid} did not exit`, { code: 'EBUSY' });
    sleepMs(5);
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepMs(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

function makeSealDir(sd: StateDir): string {
  const dir = path.join(sd.dir, 'seal');
  fs.mkdirSync(dir, { mode: 0o700 });
  return dir;
}

/** --pid-file: written whole or not at all; a failure names the file and its cause. */
export function writePidFile(file: string, pid: number): void {
  try {
    writeAtomic(file, String(pid));
  } catch (e) {
    throw new RuntimeError(`--pid-file: cannot write ${file}: ${(e as Error).message}`, { code: (e as { code?: string }).code ?? 'EIO' });
  }
}

export function writeAtomic(file: string, content: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content);
  fs.renameSync(tmp, file);
}

/** Passes the signals a foreground runtime receives on to `pid`, as runc does; returns the undo. */
export function forwardSignals(pid: number): () => void {
  const forward = (sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  };
  const sigs: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];
  for (const s of sigs) process.on(s, forward);
  return () => {
    for (const s of sigs) process.off(s, forward);
  };
}

/** `run`: create, start, wait, delete. Returns the exit status. */
/** `run`: create, start, and unless detached wait and delete (`keep`: the state stays, "stopped", until `delete`, as runc --keep). */
export async function run(ctx: RuntimeContext, opts: CreateOptions & { detach: boolean; keep?: boolean }): Promise<number> {
  const terminal = !opts.consoleSocket && !opts.detach && planning().loadSpec(opts.bundle).process?.terminal === true;
  const own = terminal ? new OwnConsole() : null;
  const { rec, init } = await create(ctx, { ...opts, wait: !opts.detach, handOff: opts.detach, ...(own ? { consoleFd: own.theirs } : {}) });
  const copying = own?.attach();
  // Detached, the init execs only once we have exited (handOff): do not wait for it.
  await start(ctx, opts.id, { waitExecve: !opts.detach });
  crashPoint('started');
  if (opts.detach) {
    init.release();
    return 0;
  }
  const stopForwarding = forwardSignals(rec.pid);
  const status = await init.exited;
  await copying;
  crashPoint('exited');
  stopForwarding();
  if (opts.keep) return status;
  remove(ctx, opts.id, true);
  crashPoint('deleted');
  return status;
}

function cgroupOf(rec: ContainerRecord, id: string): CgroupManager {
  if (!rec.cgroup) throw new RuntimeError(`container "${id}" has no cgroup`, { code: 'ENOTSUP' });
  return managerFromPaths(rec.cgroup.driver, rec.cgroup.paths);
}

/** pause / resume: the freezer (v1 freezer.state, v2 cgroup.freeze). */
export function pause(ctx: RuntimeContext, id: string, frozen: boolean): void {
  const sd = new StateDir(ctx.root, id);
  sd.lock();
  try {
    const rec = sd.read();
    const status = liveStatus(rec, sd);
    const want = frozen ? 'running' : 'paused';
    if (status !== want) {
      throw new RuntimeError(`cannot ${frozen ? 'pause' : 'resume'} container "${id}": it is ${status}, not ${want}`, { code: 'EINVAL' });
    }
    cgroupOf(rec, id).freeze(frozen);
    rec.status = frozen ? 'paused' : 'running';
    sd.write(rec);
  } finally {
    sd.unlock();
  }
}

/** The pids of every process in the container (its cgroup). */
export function pids(ctx: RuntimeContext, id: string): number[] {
  const sd = new StateDir(ctx.root, id);
  const rec = sd.read();
  if (liveStatus(rec, sd) === 'stopped') return [];
  return cgroupOf(rec, id).pids().sort((a, b) => a - b);
}

/** update: new limits for a live container, written like create writes them. */
export function update(ctx: RuntimeContext, id: string, resources: import('./cgroups/manager').LinuxResources): void {
  const sd = new StateDir(ctx.root, id);
  sd.lock();
  try {
    const rec = sd.read();
    const status = liveStatus(rec, sd);
    if (status === 'stopped') throw new RuntimeError(`cannot update container "${id}": it is stopped`, { code: 'EINVAL' });
    for (const w of cgroupOf(rec, id).setResources(resources)) ctx.warn(w);
  } finally {
    sd.unlock();
  }
}

/** events --stats: every figure of runc's types.Stats, in its JSON shape. */
/** The OOM killer's count in the container's cgroup (`events` reports each new one, as runc's "oom" event). */
export function oomKills(ctx: RuntimeContext, id: string): number {
  const rec = new StateDir(ctx.root, id).read();
  return rec.cgroup ? managerFromPaths(rec.cgroup.driver, rec.cgroup.paths).oomKills() : 0;
}

export function stats(ctx: RuntimeContext, id: string): import('./cgroups/stats').RuncStatsEvent {
  const sd = new StateDir(ctx.root, id);
  const rec = sd.read();
  return { type: 'stats', id, data: cgroupOf(rec, id).runcStats() };
}

