// The engine's containers on disk. Each lives in <root>/containers/<id>/:
//
//   container.json   this record: what was asked (config, hostConfig) and what happened (state)
//   bundle/          the OCI bundle: config.json, rootfs/ (overlay of the image), upper/, work/
//   container.log    stdout and stderr in the CRI log format (rotated to .1, .2, ...)
//   hosts, hostname, resolv.conf   bind-mounted into the container
//
// and in <runroot> (a tmpfs, gone at reboot, as the runtime's state):
//
//   runtime/<id>/    the OCI runtime's state (its --root is <runroot>/runtime)
//   attach/<id12>.sock   the monitor's attach socket (short: sun_path has 108 bytes)
//
// Records are written atomically (temp file, rename) under a per-container
// flock, so the monitor and CLI commands can update them concurrently.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from '../runtime/sys/errors';
import { flock, LOCK_EX } from '../runtime/sys/libc';
import { procStat } from '../runtime/state';

export const DEFAULT_RUNROOT = '/run/mycontainer-engine';

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'exited' | 'removing' | 'dead';

export interface PortBinding {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

export interface MountRequest {
  /** bind: a host path; volume: a volume name (made if missing). */
  type: 'bind' | 'volume' | 'tmpfs';
  source: string;
  destination: string;
  readonly: boolean;
}

export interface RestartPolicy {
  name: 'no' | 'on-failure' | 'always' | 'unless-stopped';
  maximumRetryCount: number;
}

/** What the user asked for, in docker's terms (docker inspect's Config). */
export interface ContainerConfig {
  image: string;
  imageId: string;
  entrypoint: string[] | null;
  cmd: string[] | null;
  /** The process that runs: entrypoint + cmd resolved against the image. */
  args: string[];
  env: string[];
  workingDir: string;
  user: string;
  tty: boolean;
  openStdin: boolean;
  hostname: string;
  labels: Record<string, string>;
  stopSignal: string;
  stopTimeout: number;
  exposedPorts: string[];
}

/** How it runs on the host (docker inspect's HostConfig). */
export interface HostConfig {
  autoRemove: boolean;
  restartPolicy: RestartPolicy;
  /** bridge network name, 'host', 'none', or 'container:<id>'. */
  networkMode: string;
  portBindings: PortBinding[];
  mounts: MountRequest[];
  memory: number;
  nanoCpus: number;
  pidsLimit: number;
  readonlyRootfs: boolean;
  capAdd: string[];
  capDrop: string[];
  privileged: boolean;
  init: boolean;
  logMaxSize: number;
  logMaxFiles: number;
  /** The cgroup the container's goes under (docker --cgroup-parent). */
  cgroupParent: string;
  /** Where the monitor writes the CRI log, when not <dir>/container.log (the CRI's log_path). */
  logPath?: string;
}

export interface NetworkAttachment {
  network: string;
  netns: string;
  ipAddress: string;
  prefixLen: number;
  gateway: string;
  macAddress: string;
  interface: string;
  /** The CNI ADD result, handed back to DEL as prevResult. */
  cniResult: Record<string, unknown> | null;
}

export interface ContainerState {
  status: ContainerStatus;
  pid: number;
  exitCode: number;
  error: string;
  oomKilled: boolean;
  startedAt: string;
  finishedAt: string;
  restartCount: number;
  /** `stop`/`kill` by the user: the restart policy does not apply (docker's HasBeenManuallyStopped). */
  manuallyStopped: boolean;
  monitorPid: number;
  monitorStartTime: string;
}

export interface Container {
  id: string;
  name: string;
  created: string;
  config: ContainerConfig;
  hostConfig: HostConfig;
  state: ContainerState;
  network: NetworkAttachment | null;
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

export function initialState(): ContainerState {
  return {
    status: 'created', pid: 0, exitCode: 0, error: '', oomKilled: false, startedAt: ZERO_TIME, finishedAt: ZERO_TIME,
    restartCount: 0, manuallyStopped: false, monitorPid: 0, monitorStartTime: '',
  };
}

export class Paths {
  readonly root: string;
  readonly runroot: string;

  constructor(root: string, runroot: string) {
    this.root = path.resolve(root);
    this.runroot = path.resolve(runroot);
  }

  get containers(): string {
    return path.join(this.root, 'containers');
  }
  dir(id: string): string {
    return path.join(this.containers, id);
  }
  record(id: string): string {
    return path.join(this.dir(id), 'container.json');
  }
  bundle(id: string): string {
    return path.join(this.dir(id), 'bundle');
  }
  log(id: string): string {
    return path.join(this.dir(id), 'container.log');
  }
  /** Where the OCI runtime keeps its state (its --root). */
  get runtimeRoot(): string {
    return path.join(this.runroot, 'runtime');
  }
  attachSocket(id: string): string {
    return path.join(this.runroot, 'attach', `${id.slice(0, 12)}.sock`);
  }
  get volumes(): string {
    return path.join(this.root, 'volumes');
  }
  get networks(): string {
    return path.join(this.root, 'networks');
  }
  get netns(): string {
    return path.join(this.runroot, 'netns');
  }
  /** Serialises name allocation and network/port bookkeeping across processes. */
  get globalLock(): string {
    return path.join(this.root, 'engine.lock');
  }
}

/** Runs fn holding flock on `file` (made if missing). Synchronous: records are small. */
export function withFileLock<T>(file: string, fn: () => T): T {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o711 });
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  try {
    flock(fd, LOCK_EX, `lock ${path.basename(file)}`);
    return fn();
  } finally {
    fs.closeSync(fd);
  }
}

/** withFileLock for async work: the flock is held until fn's promise settles. */
export async function withFileLockAsync<T>(file: string, fn: () => Promise<T>): Promise<T> {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o711 });
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  try {
    flock(fd, LOCK_EX, `lock ${path.basename(file)}`);
    return await fn();
  } finally {
    fs.closeSync(fd);
  }
}

export function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  fs.renameSync(tmp, file);
}

export class ContainerStore {
  constructor(readonly paths: Paths) {}

  ids(): string[] {
    try {
      return fs.readdirSync(this.paths.containers).filter((d) => /^[0-9a-f]{64}$/.test(d) && fs.existsSync(this.paths.record(d)));
    } catch {
      return [];
    }
  }

  read(id: string): Container {
    try {
      return JSON.parse(fs.readFileSync(this.paths.record(id), 'utf8')) as Container;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new RuntimeError(`no such container: ${id}`, { code: 'ENOENT' });
      throw new RuntimeError(`cannot read container ${id}: ${(e as Error).message}`, { cause: e });
    }
  }

  all(): Container[] {
    const out: Container[] = [];
    for (const id of this.ids()) {
      try {
        out.push(this.read(id));
      } catch {
        // removed while we listed
      }
    }
    return out;
  }

  write(c: Container): void {
    writeJsonAtomic(this.paths.record(c.id), c);
  }

  /** Read-modify-write under the container's lock. */
  update(id: string, fn: (c: Container) => void): Container {
    return withFileLock(path.join(this.paths.dir(id), 'lock'), () => {
      const c = this.read(id);
      fn(c);
      this.write(c);
      return c;
    });
  }

  /** An id, a unique id prefix, or a name (with or without docker's leading /). */
  resolve(ref: string): Container {
    const name = ref.startsWith('/') ? ref.slice(1) : ref;
    const all = this.all();
    const exact = all.find((c) => c.id === ref || c.name === name);
    if (exact) return exact;
    if (/^[0-9a-f]+$/.test(ref)) {
      const hits = all.filter((c) => c.id.startsWith(ref));
      if (hits.length === 1) return hits[0]!;
      if (hits.length > 1) throw new RuntimeError(`container id prefix "${ref}" is ambiguous: ${hits.length} containers match`, { code: 'EINVAL' });
    }
    throw new RuntimeError(`no such container: ${ref}`, { code: 'ENOENT' });
  }
}

/** Whether the monitor recorded in the state still runs (pid and start time match). */
export function monitorAlive(s: ContainerState): boolean {
  if (s.monitorPid <= 0) return false;
  const st = procStat(s.monitorPid);
  return st !== null && st.state !== 'Z' && st.startTime === s.monitorStartTime;
}

/**
 * The status to show: the recorded one, unless its monitor died (a crash,
 * a kill -9, a reboot) while it said running: then the container is exited.
 */
export function liveStatus(c: Container): ContainerStatus {
  const s = c.state.status;
  if ((s === 'running' || s === 'paused' || s === 'restarting') && !monitorAlive(c.state)) return 'exited';
  return s;
}
