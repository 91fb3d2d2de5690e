// Podman in a private store, driving a given OCI runtime. Everything podman
// would keep on the host goes under one temp dir T: image and container store
// (--root, --runroot), libpod's tmp dir, network configs, volumes. The
// runtime keeps its default --root (/run/runc, /run/mycontainer): podman does
// not pass --runtime-flag on to the `podman container cleanup` that conmon
// runs when a container exits, so a private runtime root would make that
// cleanup's `delete` look in the default one. Containers run with no
// network (nothing touches the host's iptables) and under a test cgroup
// parent. cleanup() removes all of it: containers, conmon processes, mounts
// podman made under T, cgroups, T.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { makeBusyboxRootfs, mountsUnder, processesMentioning, cgroupDirsNamed, type CliResult } from './bundle';

export const IMAGE = 'localhost/mc-busybox:test';

/** Why podman cannot run here, or null if it can. */
export function podmanMissing(): string | null {
  for (const bin of ['podman', 'conmon']) {
    const r = spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    if (r.status !== 0) return `${bin} is not installed`;
  }
  return null;
}

export interface PodmanStore {
  dir: string;
  runtime: string;
  /** Where the runtime keeps container state (its default --root). */
  stateRoot: string;
  /** Runs podman with the store's global flags; output through temp files. */
  podman(args: string[], opts?: { timeoutMs?: number }): CliResult;
  /** The same, with a pty as podman's terminal (util-linux script): for -it. Output has \r\n. */
  podmanInPty(args: string[], opts?: { timeoutMs?: number }): CliResult;
  /** Flags for `podman run`: no network, the test cgroup parent, ulimits root may set here. */
  runFlags: string[];
  /** Imports a busybox rootfs as IMAGE. */
  importBusybox(): void;
  cleanup(): void;
}

export function makePodmanStore(runtime: string, stateRoot: string): PodmanStore {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-podman-'));
  const cgroupParent = `/mycontainer-test/podman-${process.pid}-${path.basename(dir)}`;
  const global = [
    '--root', path.join(dir, 'root'),
    '--runroot', path.join(dir, 'runroot'),
    '--tmpdir', path.join(dir, 'tmp'),
    '--network-config-dir', path.join(dir, 'networks'),
    '--volumepath', path.join(dir, 'volumes'),
    '--cgroup-manager', 'cgroupfs',
    '--events-backend', 'file',
    '--runtime', runtime,
  ];
  fs.mkdirSync(path.join(dir, 'networks'));

  const spawnPodman = (argv: string[], timeoutMs: number, stdin: number | 'ignore' = 'ignore'): CliResult => {
    const [cmd, ...rest] = argv;
    if (!cmd) throw new Error('cannot run an empty command');
    const out = fs.openSync(path.join(dir, 'out'), 'w+');
    const err = fs.openSync(path.join(dir, 'err'), 'w+');
    try {
      // Temp files, not pipes: conmon and the container inherit stdio.
      // cwd: the store: conmon writes an "oom" file in its cwd when the container is OOM-killed
      const r = spawnSync(cmd, rest, { stdio: [stdin, out, err], timeout: timeoutMs, cwd: dir });
      return {
        status: r.status,
        stdout: fs.readFileSync(path.join(dir, 'out'), 'utf8'),
        stderr: fs.readFileSync(path.join(dir, 'err'), 'utf8') + (r.error ? `\n(${r.error.message})` : ''),
      };
    } finally {
      fs.closeSync(out);
      fs.closeSync(err);
    }
  };
  const podman = (args: string[], opts: { timeoutMs?: number } = {}): CliResult => spawnPodman(['podman', ...global, ...args], opts.timeoutMs ?? 120000);
  // script's stdin is a FIFO we hold open for writing, so it never reads EOF:
  // at EOF script types ^D into the pty (podman echoes it as ^@ in raw mode)
  // and, with a container as quick as runc's, sometimes drops all its output.
  const podmanInPty = (args: string[], opts: { timeoutMs?: number } = {}): CliResult => {
    const fifo = path.join(dir, 'pty-stdin');
    if (!fs.existsSync(fifo)) execFileSync('mkfifo', [fifo]);
    const stdin = fs.openSync(fifo, 'r+'); // O_RDWR: opens without a peer, and is the writer that keeps it open
    try {
      return spawnPodman(['script', '-qec', ['podman', ...global, ...args].map(shellQuote).join(' '), '/dev/null'], opts.timeoutMs ?? 120000, stdin);
    } finally {
      fs.closeSync(stdin);
    }
  };

  const importBusybox = (): void => {
    const rootfs = path.join(dir, 'image-rootfs');
    fs.mkdirSync(rootfs);
    makeBusyboxRootfs(rootfs);
    const tar = path.join(dir, 'rootfs.tar');
    execFileSync('tar', ['-C', rootfs, '-cf', tar, '.']);
    const r = podman(['import', tar, IMAGE]);
    if (r.status !== 0) throw new Error(`cannot import the busybox image: podman exited ${r.status}: ${r.stderr}`);
    fs.rmSync(rootfs, { recursive: true, force: true });
    fs.rmSync(tar, { force: true });
  };

  const cleanup = (): void => {
    // Containers first, with podman (it stops conmon and asks the runtime to delete).
    podman(['rm', '--all', '--force', '--time', '0'], { timeoutMs: 60000 });
    // conmon (and anything else) still running from this store: their command lines name T.
    for (let round = 0; round < 2; round++) {
      const pids = processesMentioning(dir);
      if (pids.length === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      waitGone(pids, 5000);
    }
    // podman's overlay driver mounts its home and each container's root under T
    for (const m of mountsUnder(dir).sort((a, b) => b.length - a.length)) {
      spawnSync('umount', ['-l', m], { stdio: 'ignore' });
    }
    const still = mountsUnder(dir);
    if (still.length > 0) throw new Error(`podman mounts still under ${dir}: ${still.join(', ')}`);
    fs.rmSync(dir, { recursive: true, force: true });
    // conmon's and the containers' cgroups under the test parent, deepest first
    const name = path.basename(cgroupParent);
    const cgroups = cgroupDirsNamed(name).flatMap((d) => walkDirs(d)).sort((a, b) => b.length - a.length);
    for (const d of cgroups) {
      try {
        fs.rmdirSync(d);
      } catch {
        // busy or gone
      }
    }
  };

  return {
    dir,
    runtime,
    stateRoot,
    podman,
    podmanInPty,
    runFlags: ['--network', 'none', '--cgroup-parent', cgroupParent, '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'],
    importBusybox,
    cleanup,
  };
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The v1 cgroup directory of PID for CONTROLLER (freezer, memory, cpu...):
 * its path from /proc/PID/cgroup under that hierarchy's mount point, both
 * read from the kernel rather than guessed from podman's naming.
 */
export function v1CgroupDir(pid: number, controller: string): string {
  const line = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')
    .map((l) => /^\d+:([^:]*):(.*)$/.exec(l))
    .find((m) => m?.[1]?.split(',').includes(controller));
  if (!line?.[2]) throw new Error(`pid ${pid} is in no v1 ${controller} cgroup`);
  // mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
  const mount = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => {
    const [pre, post] = l.split(' - ');
    const [fstype, , superOpts] = (post ?? '').split(' ');
    return { point: (pre ?? '').split(' ')[4] ?? '', fstype, opts: (superOpts ?? '').split(',') };
  }).find((m) => m.fstype === 'cgroup' && m.opts.includes(controller));
  if (!mount) throw new Error(`no v1 ${controller} hierarchy is mounted`);
  return path.join(mount.point, line[2]);
}

function walkDirs(dir: string): string[] {
  const found = [dir];
  let entries: fs.Dirent[] = [];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const e of entries) if (e.isDirectory()) found.push(...walkDirs(path.join(dir, e.name)));
  return found;
}

function waitGone(pids: number[], timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  const alive = (pid: number): boolean => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      return !/\) Z /.test(stat);
    } catch {
      return false;
    }
  };
  while (pids.some(alive) && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
}

/** Polls podman until `check` holds for the output of `args`, or the deadline passes. */
export function pollPodman(store: PodmanStore, args: string[], check: (r: CliResult) => boolean, timeoutMs = 30000): CliResult {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = store.podman(args);
    if (check(r) || Date.now() > deadline) return r;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
  }
}
