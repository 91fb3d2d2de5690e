// Test bundles: a busybox rootfs from Debian's busybox-static, and a config
// from our default spec that each test adjusts.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { defaultSpec } from '../../runtime/spec/default';
import type { Spec } from '../../runtime/spec/generated/config';

export const REPO = path.resolve(__dirname, '..', '..', '..');
/** The OCI runtime, runc's command line. */
export const CLI = path.join(REPO, 'bin', 'mycontainer-runtime');
/** The front end: images now, docker-style containers as they land. */
export const FRONTEND = path.join(REPO, 'bin', 'mycontainer');
const BUSYBOX = '/bin/busybox';

/** Makes DIR/rootfs a busybox root: /bin/busybox plus a link per applet, and the usual dirs. */
export function makeBusyboxRootfs(rootfs: string): void {
  for (const d of ['bin', 'proc', 'sys', 'dev', 'etc', 'tmp', 'root', 'var', 'run']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  fs.copyFileSync(BUSYBOX, path.join(rootfs, 'bin', 'busybox'));
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const a of applets) {
    if (a === 'busybox') continue;
    try {
      fs.symlinkSync('busybox', path.join(rootfs, 'bin', a));
    } catch {
      // duplicate applet name
    }
  }
  fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  fs.writeFileSync(path.join(rootfs, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777);
}

let cachedRootfs: string | null = null;

/** A fresh bundle dir whose rootfs is a copy of one busybox rootfs (made once per process). */
export function makeBundle(adjust: (s: Spec) => void = () => {}, opts: { args?: string[] } = {}): string {
  if (!cachedRootfs) {
    cachedRootfs = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-rootfs-'));
    makeBusyboxRootfs(cachedRootfs);
    process.on('exit', () => fs.rmSync(cachedRootfs as string, { recursive: true, force: true }));
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-bundle-'));
  execFileSync('cp', ['-a', cachedRootfs, path.join(dir, 'rootfs')]);
  fs.chmodSync(dir, 0o755); // mkdtemp makes 0700: a non-root container user could not reach its own /
  fs.chmodSync(path.join(dir, 'rootfs'), 0o755);
  const spec = defaultSpec({ args: opts.args ?? ['sh', '-c', 'true'] });
  spec.root = { path: 'rootfs', readonly: false };
  // `spec` writes runc's default, a terminal and no cgroup namespace; the
  // tests run without a console and check the cgroup namespace by default.
  spec.process!.terminal = false;
  spec.linux!.namespaces!.push({ type: 'cgroup' });
  adjust(spec);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec, null, 2));
  return dir;
}

export function removeBundle(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** A private --root for one test file, so tests never touch /run/mycontainer. */
export function testRoot(name: string): string {
  const dir = path.join('/run', 'mycontainer-test', `${name}-${process.pid}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs bin/mycontainer-runtime synchronously. Output goes through temp files, not
 * pipes: a created container inherits the CLI's stdio (as with runc) and
 * would hold a pipe open long after the CLI exits.
 */
export function mc(root: string, args: string[], opts: { timeoutMs?: number; cwd?: string; env?: Record<string, string> } = {}): CliResult {
  return runCli(CLI, ['--root', root, ...args], opts);
}

/** Runs bin/mycontainer (the front end) with --root STORE. */
export function front(store: string, args: string[], opts: { timeoutMs?: number; cwd?: string; env?: Record<string, string> } = {}): CliResult {
  return runCli(FRONTEND, ['--root', store, ...args], opts);
}

function runCli(bin: string, argv: string[], opts: { timeoutMs?: number; cwd?: string; env?: Record<string, string> }): CliResult {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-out-'));
  const out = fs.openSync(path.join(dir, 'out'), 'w+');
  const err = fs.openSync(path.join(dir, 'err'), 'w+');
  try {
    const r: SpawnSyncReturns<Buffer> = spawnSync(bin, argv, {
      stdio: ['ignore', out, err],
      timeout: opts.timeoutMs ?? 60000,
      cwd: opts.cwd ?? REPO,
      env: { ...process.env, ...(opts.env ?? {}) },
    });
    return { status: r.status, stdout: fs.readFileSync(path.join(dir, 'out'), 'utf8'), stderr: fs.readFileSync(path.join(dir, 'err'), 'utf8') };
  } finally {
    fs.closeSync(out);
    fs.closeSync(err);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs a container in the foreground and returns its output. */
export function runIn(root: string, bundle: string, id: string): CliResult {
  return mc(root, ['run', '--bundle', bundle, id]);
}

/** Everything left under a test root: state dirs (should be none after delete). */
export function leftovers(root: string): string[] {
  try {
    return fs.readdirSync(root);
  } catch {
    return [];
  }
}

/** Mount points under a path, from the host's mountinfo. */
export function mountsUnder(prefix: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(prefix));
}

/** The async twin of mc(), for running many CLIs at once. */
export function mcAsync(root: string, args: string[]): Promise<CliResult> {
  const { spawn } = require('node:child_process') as typeof import('node:child_process');
  return new Promise((resolve) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-out-'));
    const out = fs.openSync(path.join(dir, 'out'), 'w+');
    const err = fs.openSync(path.join(dir, 'err'), 'w+');
    const p = spawn(CLI, ['--root', root, ...args], { stdio: ['ignore', out, err], cwd: REPO });
    p.on('exit', (status) => {
      fs.closeSync(out);
      fs.closeSync(err);
      const r = { status, stdout: fs.readFileSync(path.join(dir, 'out'), 'utf8'), stderr: fs.readFileSync(path.join(dir, 'err'), 'utf8') };
      fs.rmSync(dir, { recursive: true, force: true });
      resolve(r);
    });
  });
}

/** Cgroup directories of a container id under every v1 hierarchy and the unified one. */
export function cgroupDirsNamed(name: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    if (depth > 4) return;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = path.join(dir, e.name);
      if (e.name.includes(name)) found.push(p);
      walk(p, depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 0);
  return found;
}

/**
 * Processes whose command line mentions `needle` (e.g. a bundle path), or
 * that hold a file under it open: a monitor retitles itself
 * ("mycontainer-monitor ID") and is found by its monitor.log.
 */
export function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(needle)) {
        pids.push(Number(p));
        continue;
      }
      for (const fd of fs.readdirSync(`/proc/${p}/fd`)) {
        let target = '';
        try {
          target = fs.readlinkSync(`/proc/${p}/fd/${fd}`);
        } catch {
          continue;
        }
        if (target.startsWith(needle)) {
          pids.push(Number(p));
          break;
        }
      }
    } catch {
      // gone
    }
  }
  return pids;
}

/** Removes the empty parent cgroups tests create (/mycontainer-test, /mycontainer) in every hierarchy. */
export function removeTestCgroupParents(): void {
  for (const top of ['mycontainer-test', 'mycontainer']) {
    const dirs = cgroupDirsNamed(top).filter((d) => path.basename(d) === top).sort((a, b) => b.length - a.length);
    for (const d of dirs) {
      try {
        fs.rmdirSync(d);
      } catch {
        // not empty (something still runs there) or gone
      }
    }
  }
}

/**
 * One test file's containers: a private --root, bundles made through it, and
 * an `after` hook that deletes whatever the tests left and removes both.
 */
export function containerSuite(name: string): {
  root: string;
  bundle: (adjust?: (s: Spec) => void, opts?: { args?: string[] }) => string;
  probe: (adjust: (s: Spec) => void, script: string, extra?: string[]) => { out: string; err: string; status: number | null; bundle: string };
} {
  const { after } = require('node:test') as typeof import('node:test');
  const root = testRoot(name);
  const bundles: string[] = [];
  after(() => {
    for (const id of leftovers(root)) mc(root, ['delete', '--force', id]);
    fs.rmSync(root, { recursive: true, force: true });
    for (const b of bundles) removeBundle(b);
  });
  const bundle = (adjust: (s: Spec) => void = () => {}, opts: { args?: string[] } = {}): string => {
    const b = makeBundle(adjust, opts);
    bundles.push(b);
    return b;
  };
  let n = 0;
  /** Runs `script` under sh in a container configured by `adjust`, in the foreground. */
  const probe = (adjust: (s: Spec) => void, script: string, extra: string[] = []): { out: string; err: string; status: number | null; bundle: string } => {
    const b = bundle(adjust, { args: ['sh', '-c', script] });
    const r = mc(root, ['run', ...extra, '--bundle', b, `${name}-${++n}`]);
    return { out: r.stdout, err: r.stderr, status: r.status, bundle: b };
  };
  return { root, bundle, probe };
}
