// Runs in a worker_threads thread of the runtime. It exists because
// namespaces are per thread: unshare(2) and setns(2) here change this thread
// only, so the runtime's main thread (and libuv's pool, which every async fs
// call uses) stays in the host's namespaces, while the child we spawn from
// here inherits the new ones. libuv forks from the calling thread, so the
// init is born inside them: PID 1 of a new pid namespace, in a new mount
// namespace, with its cgroup namespace still to come (it unshares that one
// itself once it is in its cgroup).

import { parentPort, workerData } from 'node:worker_threads';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as sys from '../sys/libc';
import { CLONE, MS } from '../sys/constants';
import { setTraceSink, formatTrace } from '../sys/trace';
import { messageOf } from '../sys/errors';
import type { SpawnRequest, SpawnReply } from './spawn';

const req = workerData as SpawnRequest;
const post = (m: SpawnReply): void => parentPort?.postMessage(m);

try {
  if (req.debug) setTraceSink((e) => post({ t: 'debug', line: formatTrace(e) }));

  // Open every namespace to join first: after setns into a mount namespace,
  // paths resolve in the container's view.
  const joins = req.join.map((j) => ({ ...j, fd: sys.open(j.path, sys.O.RDONLY | sys.O.CLOEXEC, 0, j.why) }));

  // setns(CLONE_NEWNS) wants a thread with its own fs_struct; unshare(CLONE_NEWNS) implies that.
  const joinsMount = joins.some((j) => j.flag === CLONE.NEWNS);
  if (joinsMount && !(req.unshareFlags & CLONE.NEWNS)) sys.unshare(CLONE.FS, 'own fs_struct, so setns into a mount namespace is allowed');
  if (req.unshareFlags) sys.unshare(req.unshareFlags, 'linux.namespaces: new namespaces for the container');
  for (const j of joins) {
    sys.setns(j.fd, j.flag, j.why);
    sys.close(j.fd);
  }

  const execPath = req.sealDir ? sealExecutable(req.execPath, req.sealDir) : req.execPath;
  const child = spawn(execPath, req.args, {
    stdio: req.stdio,
    detached: true, // setsid(): the init leads its own session, as runc's does
    env: req.env,
    cwd: '/',
  });
  child.on('error', (e) => post({ t: 'error', msg: `cannot start the container's init: ${messageOf(e)}` }));
  if (child.pid !== undefined) post({ t: 'spawned', pid: child.pid });
  child.on('exit', (code, signal) => {
    post({ t: 'exit', status: code ?? 128 + (signal ? (require('node:os').constants.signals[signal] as number) : 0) });
  });
  if (!req.wait) child.unref();
} catch (e) {
  post({ t: 'error', msg: messageOf(e) });
}

/**
 * The init runs the host's node binary inside the container until it
 * execs. So that no container process can write that binary through
 * /proc/<pid>/exe (CVE-2019-5736), it is executed from a read-only bind
 * mount in this private mount namespace: opening it for writing gives EROFS,
 * and once pivot_root detaches the old root, the container cannot reach the
 * mount to remount it. The tmpfs and bind never exist in the host's namespace.
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
