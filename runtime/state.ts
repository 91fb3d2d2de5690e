// Container state on disk: /run/mycontainer/<id>/ holds state.json (ours,
// a superset of the OCI state) and exec.fifo while the container is created
// but not started. The directory itself is the lock: flock(2) on it
// serialises every command on one id.
//
// The status is derived, not trusted: a container whose init is gone (or a
// zombie, or a different process with a reused pid) is stopped, even when no
// process of ours watched it die.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Hook, Spec } from './spec/generated/config';
import type { State as OciState } from './spec/generated/state';
import type { CgroupDriver } from './cgroups/manager';
import { RuntimeError } from './sys/errors';
import * as sys from './sys/libc';

export type Status = 'creating' | 'created' | 'running' | 'stopped' | 'paused';

export interface ContainerRecord {
  ociVersion: string;
  id: string;
  /** Last status written; the live one comes from liveStatus(). */
  status: Status;
  pid: number;
  /** /proc/PID/stat field 22: tells our init from a process that reused its pid. */
  pidStartTime: string;
  bundle: string;
  rootfs: string;
  created: string;
  annotations: Record<string, string>;
  cgroup: { driver: CgroupDriver; paths: Record<string, string> } | null;
  /** Namespace paths of the init, kept for `exec` and for joins. */
  namespaces: Record<string, string>;
  hooks: { poststop?: Hook[]; poststart?: Hook[]; startContainer?: Hook[] };
  owner: string;
  /** What `exec` starts from: the config's process and seccomp profile. */
  config: Pick<Spec, 'process'> & { seccomp?: NonNullable<Spec['linux']>['seccomp'] };
}

const ID_RE = /^[\w+\-.]+$/;

export function checkId(id: string): void {
  if (!id || !ID_RE.test(id) || id === '.' || id === '..') {
    throw new RuntimeError(`invalid container id "${id}": use letters, digits, and _ + - .`, { code: 'EINVAL' });
  }
}

export class StateDir {
  readonly dir: string;
  private lockFd = -1;

  constructor(readonly root: string, readonly id: string) {
    checkId(id);
    this.dir = path.join(root, id);
  }

  get stateFile(): string {
    return path.join(this.dir, 'state.json');
  }

  get fifo(): string {
    return path.join(this.dir, 'exec.fifo');
  }

  /** Makes the directory (fails if the id is taken) and locks it. */
  createAndLock(): void {
    fs.mkdirSync(this.root, { recursive: true, mode: 0o711 });
    try {
      fs.mkdirSync(this.dir, { mode: 0o711 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new RuntimeError(`container "${this.id}" already exists`, { code: 'EEXIST' });
      }
      throw e;
    }
    this.lock();
  }

  /** Locks an existing container; fails with ENOENT for an unknown id. */
  lock(): void {
    let fd: number;
    try {
      fd = fs.openSync(this.dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new RuntimeError(`container "${this.id}" does not exist`, { code: 'ENOENT' });
      }
      throw e;
    }
    sys.flock(fd, sys.LOCK_EX, `serialise commands on container ${this.id}`);
    // A delete may have removed the directory while we waited.
    if (!fs.existsSync(this.dir)) {
      fs.closeSync(fd);
      throw new RuntimeError(`container "${this.id}" does not exist`, { code: 'ENOENT' });
    }
    this.lockFd = fd;
  }

  unlock(): void {
    if (this.lockFd >= 0) fs.closeSync(this.lockFd);
    this.lockFd = -1;
  }

  exists(): boolean {
    return fs.existsSync(this.stateFile);
  }

  read(): ContainerRecord {
    let text: string;
    try {
      text = fs.readFileSync(this.stateFile, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new RuntimeError(`container "${this.id}" does not exist`, { code: 'ENOENT' });
      }
      throw e;
    }
    return JSON.parse(text) as ContainerRecord;
  }

  /**
   * Atomic: temp file, then rename. No fsync: the state lives on /run (tmpfs)
   * and does not outlive a reboot anyway; rename alone keeps readers from
   * ever seeing half a file.
   */
  write(rec: ContainerRecord): void {
    const tmp = `${this.stateFile}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(rec, null, 2) + '\n', { mode: 0o600 });
    fs.renameSync(tmp, this.stateFile);
  }

  /** Removes the directory and everything in it; the lock goes with it. */
  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
    this.unlock();
  }
}

/** Field 22 of /proc/PID/stat (start time in clock ticks), and the state letter. */
export function procStat(pid: number): { startTime: string; state: string } | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '?', startTime: rest[19] ?? '' };
  } catch {
    return null;
  }
}

/** Is the init of this record still alive (not a zombie, not a reused pid)? */
export function initAlive(rec: ContainerRecord): boolean {
  if (rec.pid <= 0) return false;
  const st = procStat(rec.pid);
  return st !== null && st.state !== 'Z' && st.state !== 'X' && st.startTime === rec.pidStartTime;
}

export function liveStatus(rec: ContainerRecord, sd: StateDir): Status {
  if (rec.status === 'creating') return initAlive(rec) ? 'creating' : 'stopped';
  if (!initAlive(rec)) return 'stopped';
  if (fs.existsSync(sd.fifo)) return 'created';
  if (rec.cgroup && isFrozen(rec.cgroup.paths)) return 'paused';
  return 'running';
}

function isFrozen(paths: Record<string, string>): boolean {
  try {
    if (paths['freezer']) return fs.readFileSync(path.join(paths['freezer'], 'freezer.state'), 'utf8').trim() === 'FROZEN';
    if (paths['unified']) return /^frozen 1$/m.test(fs.readFileSync(path.join(paths['unified'], 'cgroup.events'), 'utf8'));
  } catch {
    // A cgroup that is gone is not frozen.
  }
  return false;
}

/** The OCI state document (state-schema.json). */
export function ociState(rec: ContainerRecord, status: Status): OciState {
  // runc reports "paused" although the schema lists four statuses; so do we.
  const s: OciState = { ociVersion: rec.ociVersion, id: rec.id, status: status as OciState['status'], bundle: rec.bundle };
  if (status !== 'stopped' && rec.pid > 0) s.pid = rec.pid;
  if (Object.keys(rec.annotations).length > 0) s.annotations = rec.annotations;
  return s;
}

export function listIds(root: string): string[] {
  try {
    return fs.readdirSync(root).filter((n) => ID_RE.test(n) && fs.existsSync(path.join(root, n, 'state.json'))).sort();
  } catch {
    return [];
  }
}
