// The container's init: the steps from "PID 1 in new namespaces, host root"
// to execve of process.args, in order. This file makes no syscall itself; each
// step calls the module that owns the kernel concept. See protocol.ts for the
// frames exchanged with the runtime at each sync point.

import * as fs from 'node:fs';
import { enterRootfs, finishRootfs, prepareRootfs } from '../linux/rootfs';
import { finalizeProcess, resolveExecutable } from '../linux/process';
import { attachConsole, setupConsole } from '../linux/terminal';
import { runHooks } from '../hooks';
import { CLONE } from '../sys/constants';
import { RuntimeError } from '../sys/errors';
import * as sys from '../sys/libc';
import type { ExecPlan, InitChannel, InitPlan } from './protocol';

export function setupContainer(plan: InitPlan, ch: InitChannel): never {
  // Nothing in the container may ptrace us or open our /proc files before execve.
  sys.prctl(sys.PR.SET_DUMPABLE, 0, 'hide the init from the container until execve', 'PR_SET_DUMPABLE');

  // 1. The runtime has already put us in the container's cgroup, so a new
  //    cgroup namespace made now is rooted there.
  if (plan.newCgroupNamespace) sys.unshare(CLONE.NEWCGROUP, 'linux.namespaces (cgroup), after joining the cgroup');
  //    A new time namespace is for our children, and execve moves us into it;
  //    its offsets must be written before anything enters it.
  if (plan.newTimeNamespace) {
    sys.unshare(CLONE.NEWTIME, 'linux.namespaces (time): entered at execve');
    for (const o of plan.newTimeNamespace.offsets) {
      fs.writeFileSync('/proc/self/timens_offsets', `${o.clock} ${o.secs} ${o.nanosecs}`);
    }
  }

  // 2. Mounts, while the host's root is still ours: the bundle's rootfs, the
  //    config's mounts, /dev.
  prepareRootfs(plan.rootfs);

  // 3. exec.fifo lives on the host; open it before the host disappears.
  //    O_RDONLY|O_NONBLOCK succeeds with no writer; poll() then waits for `start`.
  const fifo = sys.open(plan.execFifo, sys.O.RDONLY | sys.O.NONBLOCK | sys.O.CLOEXEC, 0, 'exec.fifo: wait here for `start`');

  // 4. Sync point: the runtime runs createRuntime (and prestart) hooks.
  ch.send({ t: 'hooks', name: 'createRuntime' });
  const go = ch.recv();
  if (!go || go.t !== 'go') throw new RuntimeError('the runtime went away before the container was created', { code: 'EPIPE' });
  const state = go.state;

  // 5. createContainer hooks: in our namespaces, before pivot_root.
  runHooks('createContainer', plan.hooks.createContainer, state);

  // 6. Switch to the container's root, then the mounts that need the new root.
  enterRootfs(plan.rootfs);

  // 7. UTS and sysctls, before readonlyPaths makes /proc/sys read-only.
  if (plan.hostname !== null) sys.sethostname(plan.hostname, 'hostname');
  if (plan.domainname !== null) sys.setdomainname(plan.domainname, 'domainname');
  for (const { key, value } of plan.sysctl) {
    const file = '/proc/sys/' + key.replace(/\./g, '/');
    try {
      fs.writeFileSync(file, value);
    } catch (e) {
      throw new RuntimeError(`linux.sysctl: cannot set ${key}=${value} (${file}): ${(e as Error).message}`, { cause: e });
    }
  }
  finishRootfs(plan.rootfs);
  // The pty comes from the container's own devpts, so it is made after pivot_root.
  const console = plan.console ? setupConsole(plan.console.size) : null;

  // 8. Fail at create, not at start, when the program is missing (as runc does).
  const exe = resolveExecutable(plan.process.args[0] as string, plan.process.env);

  // 9. Created. The runtime writes the state and exits; we wait for `start`.
  ch.send({ t: 'created' });
  // The channel stays open (close-on-exec) so that a foreground `run --debug`
  // still sees the last steps; after `create` exits, writes fail quietly.
  sys.pollIn(fifo, -1, 'wait for `start` to write exec.fifo');
  fs.readSync(fifo, Buffer.alloc(1), 0, 1, null);
  sys.close(fifo);

  // 10. startContainer hooks, in the container, before the program.
  runHooks('startContainer', plan.hooks.startContainer, state.replace('"status":"created"', '"status":"running"'));

  // 11. The terminal, privileges, then the program.
  if (console !== null) attachConsole(console);
  finalizeProcess(plan.process);
  return sys.execve(exe, plan.process.args, plan.process.env, 'process.args');
}

/**
 * `exec`: the runtime put us in the container's pid, net, ipc, uts
 * and cgroup namespaces (and the runtime in its cgroup). We started in a
 * private copy of the host's mount namespace so that node could load its
 * code; now the main thread joins the container's mount namespace, which
 * also makes the container's root our root, and execs from there.
 */
export function execInContainer(plan: ExecPlan, ch: InitChannel): never {
  sys.prctl(sys.PR.SET_DUMPABLE, 0, 'hide the exec init from the container until execve', 'PR_SET_DUMPABLE');
  if (plan.mountNamespace) {
    const fd = sys.open(plan.mountNamespace, sys.O.RDONLY | sys.O.CLOEXEC, 0, 'the container\'s mount namespace');
    sys.unshare(CLONE.FS, 'own fs_struct, so this thread may setns into a mount namespace');
    sys.setns(fd, CLONE.NEWNS, 'exec: join the container\'s mount namespace (root and cwd become its /)');
    sys.close(fd);
  }
  const exe = resolveExecutable(plan.process.args[0] as string, plan.process.env);
  const console = plan.console ? setupConsole(plan.console.size) : null;
  ch.send({ t: 'created' });
  if (console !== null) attachConsole(console);
  finalizeProcess(plan.process);
  return sys.execve(exe, plan.process.args, plan.process.env, 'exec: process.args');
}
