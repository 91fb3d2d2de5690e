// containerd (Debian 12: 1.6.20, with containerd-shim-runc-v2 and ctr) on its
// own socket, in one directory D = /run/mycontainer-test/containerd-<pid>:
//
//   D/config.toml        root, state, grpc/ttrpc addresses; CRI and unused plugins off
//   D/containerd.sock    what `ctr -a` talks to
//   D/root, D/state      containerd's stores (overlay snapshots are mounted under D/state)
//   D/runtime/<name>     the runtime's --root, per runtime (`ctr run --runc-root`)
//   D/fifo               ctr's IO FIFOs (`--fifo-dir`)
//
// Containers run with `ctr run --runc-binary B`, which the v2 shim passes on
// as its runc.options BinaryName, so no containerd config names a runtime.
// Their cgroups go under /mycontainer-test/containerd-<pid>/<id>
// (`--cgroup`). The shim keeps one socket in /run/containerd/s/ whatever
// the config says (containerd 1.6 hardcodes it); cleanup removes the ones
// that appeared while this instance ran.
//
// cleanup() works whatever state the tests left: it deletes tasks and
// containers through ctr, stops containerd, force-deletes what is left in
// each runtime root, kills every process whose command line names D or that
// sits in one of its cgroups, unmounts everything under D, and removes D and
// the cgroups.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { makeBusyboxRootfs, mountsUnder, processesMentioning, removeTestCgroupParents, type CliResult } from './bundle';

export const CTR_IMAGE = 'localhost/mc-busybox:test';
const SHIM_SOCKETS = '/run/containerd/s';

/** Why containerd cannot run here, or null if it can. */
export function containerdMissing(): string | null {
  for (const bin of ['containerd', 'ctr', 'containerd-shim-runc-v2']) {
    const r = spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    if (r.status !== 0) return `${bin} is not installed (Debian package containerd)`;
  }
  return null;
}

export interface Containerd {
  dir: string;
  socket: string;
  namespace: string;
  /** Runs `ctr -a SOCK -n NS ARGS`; output through temp files. */
  ctr(args: string[], opts?: { timeoutMs?: number }): CliResult;
  /** Runs a shell command line under script(1), so ctr gets a terminal; output is the terminal's. */
  ctrInTerminal(args: string[], opts?: { timeoutMs?: number }): CliResult;
  /** Flags for `ctr run`: the runtime binary, its root, the FIFO dir, a cgroup under the test parent. */
  runFlags(runtime: string, id: string): string[];
  /** The --root the shim gives the runtime for this namespace. */
  runtimeRoot(runtime: string): string;
  /** Flags for `ctr task exec`. */
  execFlags(): string[];
  /** The log containerd wrote so far (for failure messages). */
  log(): string;
  cleanup(): void;
}

const sleep = (msec: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, msec);
};

function runTo(dir: string, argv: string[], timeoutMs: number): CliResult {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error('cannot run an empty command');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-ctr-out-'));
  const out = fs.openSync(path.join(tmp, 'out'), 'w+');
  const err = fs.openSync(path.join(tmp, 'err'), 'w+');
  try {
    const r = spawnSync(cmd, args, { stdio: ['ignore', out, err], timeout: timeoutMs, killSignal: 'SIGKILL', cwd: dir });
    return {
      status: r.status,
      stdout: fs.readFileSync(path.join(tmp, 'out'), 'utf8'),
      stderr: fs.readFileSync(path.join(tmp, 'err'), 'utf8') + (r.error ? `\n(${r.error.message})` : '') + (r.signal ? `\n(killed by ${r.signal} after ${timeoutMs} ms)` : ''),
    };
  } finally {
    fs.closeSync(out);
    fs.closeSync(err);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function runtimeName(runtime: string): string {
  return path.basename(runtime);
}

/** Starts containerd as a child of this process and waits until it answers. */
export function startContainerd(): Containerd {
  const dir = path.join('/run', 'mycontainer-test', `containerd-${process.pid}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
  const socket = path.join(dir, 'containerd.sock');
  const namespace = 'mctest';
  const cgroupParent = `/mycontainer-test/containerd-${process.pid}`;
  const shimSocketsBefore = new Set(listDir(SHIM_SOCKETS));
  const runContainerdDirBefore = fs.existsSync('/run/containerd');
  const shimDirBefore = fs.existsSync(SHIM_SOCKETS);

  const config = [
    'version = 2',
    `root = "${dir}/root"`,
    `state = "${dir}/state"`,
    // io.containerd.runtime.v1.linux stays: containerd 1.6's tasks service will not load without it
    'disabled_plugins = [',
    '  "io.containerd.grpc.v1.cri",',
    '  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",',
    '  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",',
    '  "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",',
    ']',
    '[grpc]',
    `  address = "${socket}"`,
    '[ttrpc]',
    `  address = "${socket}.ttrpc"`,
    '[debug]',
    '  address = ""',
    '  level = "info"',
    '[metrics]',
    '  address = ""',
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'config.toml'), config);
  const logFd = fs.openSync(path.join(dir, 'containerd.log'), 'w');
  let child: ChildProcess | null = spawn('containerd', ['--config', path.join(dir, 'config.toml')], { stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  // the tests block the event loop, so the exit event would come late: look at /proc instead
  const running = (): boolean => child !== null && alive(child.pid ?? 0);

  const log = (): string => {
    try {
      return fs.readFileSync(path.join(dir, 'containerd.log'), 'utf8');
    } catch {
      return '';
    }
  };
  const ctr = (args: string[], opts: { timeoutMs?: number } = {}): CliResult => runTo(dir, ['ctr', '-a', socket, '-n', namespace, ...args], opts.timeoutMs ?? 60000);
  const ctrInTerminal = (args: string[], opts: { timeoutMs?: number } = {}): CliResult => {
    const line = ['ctr', '-a', socket, '-n', namespace, ...args].map(shellQuote).join(' ');
    return runTo(dir, ['script', '-qec', line, '/dev/null'], opts.timeoutMs ?? 60000);
  };
  // the shim runs the runtime with --root <runc-root>/<namespace>
  const runtimeRoot = (runtime: string): string => path.join(dir, 'runtime', runtimeName(runtime), namespace);
  const runFlags = (runtime: string, id: string): string[] => [
    '--runc-binary', runtime,
    '--runc-root', path.join(dir, 'runtime', runtimeName(runtime)),
    '--fifo-dir', path.join(dir, 'fifo'),
    '--cgroup', `${cgroupParent}/${id}`,
  ];

  const cleanup = (): void => {
    const problems: string[] = [];
    // 1. tasks and containers, through containerd while it runs
    if (running()) {
      const ls = ctr(['containers', 'ls', '-q'], { timeoutMs: 20000 });
      for (const id of ls.stdout.split('\n').map((l) => l.trim()).filter(Boolean)) {
        ctr(['tasks', 'rm', '-f', id], { timeoutMs: 20000 });
        ctr(['containers', 'rm', id], { timeoutMs: 20000 });
      }
      // 2. containerd itself: TERM, then KILL
      child?.kill('SIGTERM');
      const deadline = Date.now() + 10000;
      while (running() && Date.now() < deadline) sleep(20);
      if (running()) child?.kill('SIGKILL');
      while (running() && Date.now() < deadline + 5000) sleep(20);
    }
    child = null;
    // 3. what each runtime still knows about (a shim killed mid-way leaves state)
    for (const name of listDir(path.join(dir, 'runtime'))) {
      const runtime = name === 'mycontainer-runtime' ? path.resolve(__dirname, '..', '..', '..', 'bin', 'mycontainer-runtime') : name;
      for (const ns of listDir(path.join(dir, 'runtime', name))) {
        const root = path.join(dir, 'runtime', name, ns);
        for (const id of listDir(root)) {
          if (!fs.statSync(path.join(root, id)).isDirectory()) continue;
          runTo(dir, [runtime, '--root', root, 'delete', '--force', id], 20000);
        }
      }
    }
    // 4. shims, inits, anything else: by command line and by cgroup
    const cgroups = cgroupTree(cgroupParent);
    for (let round = 0; round < 3; round++) {
      const pids = new Set([...processesMentioning(dir), ...cgroups.flatMap(procsOf)]);
      pids.delete(process.pid);
      if (pids.size === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      waitGone([...pids], 5000);
    }
    // 5. mounts (overlay snapshots under D/state, anything a runtime left), deepest first
    for (let round = 0; round < 3; round++) {
      const mounts = mountsUnder(dir).sort((a, b) => b.length - a.length);
      if (mounts.length === 0) break;
      for (const m of mounts) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
    }
    const still = mountsUnder(dir);
    if (still.length > 0) problems.push(`mounts still under ${dir}: ${still.join(', ')}`);
    else fs.rmSync(dir, { recursive: true, force: true });
    // 6. cgroups, deepest first, then the shared test parents if empty
    for (const d of cgroupTree(cgroupParent).sort((a, b) => b.length - a.length)) {
      try {
        fs.rmdirSync(d);
      } catch (e) {
        problems.push(`cannot remove cgroup ${d}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    removeTestCgroupParents();
    // 7. the shim's sockets outside D, and the dirs holding them if this run made them
    for (const s of listDir(SHIM_SOCKETS)) if (!shimSocketsBefore.has(s)) fs.rmSync(path.join(SHIM_SOCKETS, s), { force: true });
    if (!shimDirBefore) rmdirQuiet(SHIM_SOCKETS);
    if (!runContainerdDirBefore) {
      rmdirQuiet('/run/containerd/fifo');
      rmdirQuiet('/run/containerd');
    }
    if (problems.length > 0) throw new Error(`containerd cleanup: ${problems.join('; ')}`);
  };

  // wait until it serves
  const deadline = Date.now() + 30000;
  for (;;) {
    if (!running()) {
      const l = log();
      cleanup();
      throw new Error(`containerd exited at start:\n${l}`);
    }
    if (fs.existsSync(socket) && ctr(['version'], { timeoutMs: 10000 }).status === 0) break;
    if (Date.now() > deadline) {
      const l = log();
      cleanup();
      throw new Error(`containerd did not answer on ${socket} within 30 s:\n${l}`);
    }
    sleep(50);
  }

  return { dir, socket, namespace, ctr, ctrInTerminal, runFlags, runtimeRoot, execFlags: () => ['--fifo-dir', path.join(dir, 'fifo')], log, cleanup };
}

/**
 * Builds an OCI image layout holding a busybox rootfs (one uncompressed
 * layer), named by the io.containerd.image.name annotation, as a tar archive
 * for `ctr images import`.
 */
export function makeBusyboxArchive(dir: string, name: string = CTR_IMAGE): string {
  const work = fs.mkdtempSync(path.join(dir, 'image-'));
  try {
    const rootfs = path.join(work, 'rootfs');
    fs.mkdirSync(rootfs);
    makeBusyboxRootfs(rootfs);
    const layout = path.join(work, 'layout');
    const blobs = path.join(layout, 'blobs', 'sha256');
    fs.mkdirSync(blobs, { recursive: true });
    const put = (data: Buffer): { digest: string; size: number } => {
      const hex = crypto.createHash('sha256').update(data).digest('hex');
      fs.writeFileSync(path.join(blobs, hex), data);
      return { digest: `sha256:${hex}`, size: data.length };
    };
    const layerTar = path.join(work, 'layer.tar');
    execFileSync('tar', ['--sort=name', '--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', layerTar, '.']);
    const layer = put(fs.readFileSync(layerTar));
    const arch = os.arch() === 'x64' ? 'amd64' : os.arch() === 'arm64' ? 'arm64' : os.arch();
    const config = put(Buffer.from(JSON.stringify({
      architecture: arch,
      os: 'linux',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
      history: [{ created_by: 'mycontainer test: busybox-static' }],
    })));
    const manifest = put(Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
    })));
    fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        ...manifest,
        platform: { architecture: arch, os: 'linux' },
        annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': name.split(':').pop() ?? 'latest' },
      }],
    }));
    const archive = path.join(dir, 'busybox-oci.tar');
    execFileSync('tar', ['-C', layout, '-cf', archive, '.']);
    return archive;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Polls `ctr tasks ls` until the task's status is `status`; returns the last listing. */
export function waitTaskStatus(c: Containerd, id: string, status: string, timeoutMs = 30000): { ok: boolean; listing: string } {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = c.ctr(['tasks', 'ls']);
    const row = r.stdout.split('\n').find((l) => l.split(/\s+/)[0] === id);
    if (row?.split(/\s+/)[2] === status) return { ok: true, listing: r.stdout };
    if (Date.now() > deadline) return { ok: false, listing: r.stdout + r.stderr };
    sleep(100);
  }
}

function listDir(d: string): string[] {
  try {
    return fs.readdirSync(d);
  } catch {
    return [];
  }
}

function rmdirQuiet(d: string): void {
  try {
    fs.rmdirSync(d);
  } catch {
    // not empty or gone
  }
}

/** Every directory of a cgroup path, in every hierarchy, parent first. */
function cgroupTree(cgroupPath: string): string[] {
  const found: string[] = [];
  const walk = (d: string): void => {
    found.push(d);
    for (const e of listDir(d)) {
      const p = path.join(d, e);
      try {
        if (fs.statSync(p).isDirectory()) walk(p);
      } catch {
        // gone
      }
    }
  };
  for (const h of ['', ...listDir('/sys/fs/cgroup')]) {
    const d = path.join('/sys/fs/cgroup', h, cgroupPath);
    if (fs.existsSync(d)) walk(d);
  }
  return found;
}

function procsOf(cgroupDir: string): number[] {
  try {
    return fs.readFileSync(path.join(cgroupDir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function waitGone(pids: number[], timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(alive) && Date.now() < deadline) sleep(20);
}
