// Seccomp user notification (SCMP_ACT_NOTIFY): the kernel parks a
// process's matching syscalls on a listener fd until an agent answers.
// The init loads the filter with SECCOMP_FILTER_FLAG_NEW_LISTENER and pauses
// (process.ts emitSeccomp); here the runtime takes that fd from it with
// pidfd_getfd and sends it to the agent at linux.seccomp.listenerPath, with
// the runtime-spec's ContainerProcessState as the message, as runc does.
// The init then closes its copy and this process closes its own, so the
// agent holds the only one: when the agent dies, the notified calls fail
// with ENOSYS instead of hanging.

import * as sys from '../sys/libc';
import { RuntimeError } from '../sys/errors';
import type { State as OciState } from '../spec/generated/state';
import type { SeccompPlan } from './seccomp';

/** runtime-spec's ContainerProcessState: what the agent reads beside the fd. */
export interface ContainerProcessState {
  ociVersion: string;
  fds: string[];
  pid: number;
  metadata: string;
  state: OciState;
}

/** The message for the agent (a pure function, so that it can be checked without an agent). */
export function containerProcessState(listener: NonNullable<SeccompPlan['listener']>, pid: number, state: OciState): ContainerProcessState {
  return { ociVersion: state.ociVersion, fds: ['seccompFd'], pid, metadata: listener.metadata, state };
}

/** Takes fd `fd` of process `pid` (the listener) and sends it to the agent. */
export function sendListener(listener: NonNullable<SeccompPlan['listener']>, pid: number, fd: number, state: OciState): void {
  const pidfd = sys.pidfdOpen(pid, 'seccomp notify: reach the init to take its listener fd');
  let copy = -1;
  let sock = -1;
  try {
    copy = sys.pidfdGetfd(pidfd, fd, 'seccomp notify: a copy of the init\'s listener fd');
    try {
      sock = sys.connectUnix(listener.path, 'linux.seccomp.listenerPath: the seccomp agent');
    } catch (e) {
      throw new RuntimeError(`failed to connect with seccomp agent specified in the seccomp profile (linux.seccomp.listenerPath ${JSON.stringify(listener.path)}): ${(e as Error).message}`, { code: (e as { code?: string }).code ?? 'ECONNREFUSED' });
    }
    sys.sendFd(sock, JSON.stringify(containerProcessState(listener, pid, state)), copy, 'seccomp notify: the listener fd and the process state, to the agent');
  } finally {
    for (const f of [sock, copy, pidfd]) if (f >= 0) sys.close(f);
  }
}
