// The container init's programs: everything the init does, from "PID 1 in
// new namespaces, host root" to execve of process.args, written down by the
// runtime as steps for native/src/init.c (runtime/sys/program.ts is its
// instruction set). Each stage ends where the init must wait for the
// runtime:
//
//   runtime                                   init (PID 1 in the new namespaces)
//   ───────                                   ────
//   spawn init, move it into the cgroup
//   ── stage 1 ──────────────────────────────▶ unshare cgroupns, prepare rootfs
//                                              (mounts, /dev), open exec.fifo
//   ◀────────────────────── sync createRuntime
//   run createRuntime + prestart hooks
//   ── stage 2 ──────────────────────────────▶ createContainer hooks, pivot_root,
//                                              hostname, sysctl, masked/readonly
//                                              paths, pty, look up process.args[0],
//                                              rlimits, uid/gid, caps, seccomp
//   (hand a seccomp listener to its agent) ◀─▶ (pause seccomp-listener)
//   ◀────────────────────────────── created
//   write state "created", exit (create)
//                                              ... waits on exec.fifo ...
//   `start` writes a byte to exec.fifo ─────▶  startContainer hooks, execve
//
// If the runtime dies before `created`, the init reads EOF and exits,
// leaving nothing behind: its namespaces and mounts die with it.

import type { ProcessPlan, ProcessHostView } from '../linux/process';
import { emitFinalizeProcess, emitFindExecutable } from '../linux/process';
import { emitAttachConsole, emitConsole, type ConsoleSize } from '../linux/terminal';
import { emitEnterRootfs, emitFinishRootfs, emitPrepareRootfs, type RootfsHostView, type RootfsPlan } from '../linux/rootfs';
import { emitHooks } from '../hooks';
import type { Hook } from '../spec/generated/config';
import { CLONE, O, PR } from '../sys/constants';
import type { ProgramBuilder } from '../sys/program';

export interface InitPlan {
  id: string;
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
  /** The runtime exits right after (`run -d`): the process starts once it has (see handOff). */
  handOff: boolean;
}

/** `exec`: a process that joins a running container (see runtime/exec.ts). */
export interface ExecPlan {
  /** The container's mount namespace, joined by the exec init (host path). */
  mountNamespace: string | null;
  /** Without a mount namespace of its own: the container's root (/proc/PID/root), chrooted into. */
  chroot: string | null;
  process: ProcessPlan;
  console: { size: ConsoleSize | null } | null;
  /** The runtime exits right after (`exec -d`): the process starts once it has (see handOff). */
  handOff: boolean;
}

/**
 * A runtime that exits right after starting the process (`run -d`,
 * `exec -d`) must never reap it: its caller's subreaper (conmon, a
 * containerd shim) waits for that exit status. So the init execs only once
 * the runtime has hung up; from then on nothing of ours can wait for it.
 */
function emitHandOff(b: ProgramBuilder, handOff: boolean): void {
  if (handOff) b.waitEof({ why: 'the runtime exits first, so that only its caller\'s subreaper reaps the process' });
}


/** Stage 1: up to the createRuntime hooks. Returns the exec.fifo slot, which stage 2 waits on. */
export function writeStage1(b: ProgramBuilder, plan: InitPlan, host: RootfsHostView): ReturnType<ProgramBuilder['open']> {
  // Nothing in the container may ptrace us or open our /proc files before execve.
  b.prctl(PR.SET_DUMPABLE, 0, 0, 'PR_SET_DUMPABLE, 0', { why: 'hide the init from the container until execve' });
  // The runtime has already put us in the container's cgroup, so a new
  // cgroup namespace made now is rooted there.
  if (plan.newCgroupNamespace) b.unshare(CLONE.NEWCGROUP, { why: 'linux.namespaces (cgroup), after joining the cgroup' });
  // A new time namespace is for our children, and execve moves us into it;
  // its offsets must be written before anything enters it.
  if (plan.newTimeNamespace) {
    b.unshare(CLONE.NEWTIME, { why: 'linux.namespaces (time): entered at execve' });
    for (const o of plan.newTimeNamespace.offsets) b.writeFile('/proc/self/timens_offsets', `${o.clock} ${o.secs} ${o.nanosecs}`, { why: 'linux.timeOffsets' });
  }
  // Mounts, while the host's root is still ours: the bundle's rootfs, the config's mounts, /dev.
  emitPrepareRootfs(b, plan.rootfs, host);
  // exec.fifo lives on the host; open it before the host disappears.
  // O_RDONLY|O_NONBLOCK succeeds with no writer; poll() then waits for `start`.
  const fifo = b.open(plan.execFifo, O.RDONLY | O.NONBLOCK, 0, 'exec.fifo', { why: 'exec.fifo: wait here for `start`' });
  b.sync('createRuntime');
  return fifo;
}

/**
 * Stage 2: the rest, to execve. `state` is the container's state as hooks
 * read it; `hostProcSys` the host's proc and sysfs mounts --no-pivot hides.
 */
export function writeStage2(
  b: ProgramBuilder,
  plan: InitPlan,
  fifo: ReturnType<ProgramBuilder['open']>,
  state: (status: 'creating' | 'created') => string,
  hostProcSys: readonly string[],
  host: ProcessHostView,
): void {
  // In our namespaces, before pivot_root, from inside the rootfs (as runc's
  // prepareRootfs): a hook's relative paths ("./lib/x") are the container's,
  // never the host's. runc gives them the state "creating".
  if (plan.hooks.createContainer.length > 0) {
    b.chdir(plan.rootfs.rootfs, { why: 'hooks.createContainer run from inside the rootfs', errmsg: `root.path: cannot chdir to ${plan.rootfs.rootfs}` });
  }
  emitHooks(b, 'createContainer', plan.hooks.createContainer, state('creating'));
  emitEnterRootfs(b, plan.rootfs, hostProcSys);
  // UTS and sysctls, before readonlyPaths makes /proc/sys read-only.
  if (plan.hostname !== null) b.sethostname(plan.hostname, { why: 'hostname' });
  if (plan.domainname !== null) b.setdomainname(plan.domainname, { why: 'domainname' });
  for (const { key, value } of plan.sysctl) {
    const file = '/proc/sys/' + key.replace(/\./g, '/');
    b.writeFile(file, value, { why: `linux.sysctl ${key}`, errmsg: `linux.sysctl: cannot set ${key}=${value} (${file})` });
  }
  emitFinishRootfs(b, plan.rootfs);
  // The pty comes from the container's own devpts, so it is made after pivot_root.
  const slave = plan.console ? emitConsole(b, plan.console.size) : null;
  // Fail at create, not at start, when the program is missing (as runc does).
  emitFindExecutable(b, plan.process.args[0] as string, plan.process.env);
  if (slave !== null) emitAttachConsole(b, slave);
  // The process's rlimits, user, capabilities and seccomp filter before
  // `created`, as runc does: a failure is create's, and the runtime is
  // still there to hand a seccomp listener fd to its agent.
  emitFinalizeProcess(b, plan.process, host);
  b.report('created');
  b.waitFifo(fifo, { why: 'wait for `start` to write exec.fifo' });
  emitHandOff(b, plan.handOff);
  // In the container, right before the program, as the process's user and
  // under its seccomp filter, as runc runs them; runc gives them the state "created".
  emitHooks(b, 'startContainer', plan.hooks.startContainer, state('created'));
  b.execve(plan.process.args, plan.process.env, { why: 'process.args' });
}

/**
 * `exec`: the runtime put us in the container's pid, net, ipc, uts and
 * cgroup namespaces (and in its cgroup). We started in a private copy of the
 * host's mount namespace (holding the sealed init); joining the container's
 * also makes its root our root.
 */
export function writeExecProgram(b: ProgramBuilder, plan: ExecPlan, host: ProcessHostView): void {
  b.prctl(PR.SET_DUMPABLE, 0, 0, 'PR_SET_DUMPABLE, 0', { why: 'hide the exec init from the container until execve' });
  if (plan.mountNamespace) b.setns(plan.mountNamespace, CLONE.NEWNS, { why: 'exec: join the container\'s mount namespace (root and cwd become its /)' });
  if (plan.chroot) {
    b.chroot(plan.chroot, { why: 'exec: the container shares the host\'s mounts, chrooted to its rootfs' });
    b.chdir('/', { why: 'exec: the container\'s root' });
  }
  emitFindExecutable(b, plan.process.args[0] as string, plan.process.env);
  const slave = plan.console ? emitConsole(b, plan.console.size) : null;
  if (slave !== null) emitAttachConsole(b, slave);
  emitFinalizeProcess(b, plan.process, host);
  b.report('created');
  emitHandOff(b, plan.handOff);
  b.execve(plan.process.args, plan.process.env, { why: 'exec: process.args' });
}
