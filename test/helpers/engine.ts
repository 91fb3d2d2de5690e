// An engine of its own for a test file: a store (--root) under a temp dir, a
// runroot under /run/mycontainer-test, containers under a test cgroup
// parent, and two images built from Debian's busybox-static with umoci:
//
//   localhost/busybox:latest   busybox, Cmd sh
//   localhost/httpd:latest     busybox's httpd serving /var/www/html on :80,
//                              ExposedPorts 80/tcp, StopSignal SIGUSR1
//
// cleanup() removes every container (rm -f), then whatever a crash could
// leave: monitor processes, mounts and network namespaces under the dirs,
// cgroups, the default bridge device if this run made it, the CNI
// iptables chains if this run made them, and the dirs.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { FRONTEND, REPO, mountsUnder, processesMentioning, removeTestCgroupParents, type CliResult } from './bundle';

export const BUSYBOX = 'localhost/busybox:latest';
export const HTTPD = 'localhost/httpd:latest';

export function engineMissing(): string | null {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const f of ['/usr/bin/umoci', '/bin/busybox', '/usr/lib/cni/bridge', '/usr/sbin/iptables']) if (!fs.existsSync(f)) return `needs ${f}`;
  return null;
}

export interface Engine {
  root: string;
  runroot: string;
  cgroupParent: string;
  /** Runs bin/mycontainer with this engine's --root and --runroot. */
  mc(args: string[], opts?: { timeoutMs?: number; input?: string }): CliResult;
  /** Under script(1), so the CLI has a terminal; `input` is typed after `delayMs`. */
  mcInTerminal(args: string[], input: string, opts?: { timeoutMs?: number; delayMs?: number }): CliResult;
  /** `run` flags every test container needs here (the cgroup parent). */
  flags: string[];
  cleanup(): void;
}

const sleep = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function run(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): CliResult {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-engine-out-'));
  const out = fs.openSync(path.join(tmp, 'out'), 'w+');
  const err = fs.openSync(path.join(tmp, 'err'), 'w+');
  try {
    // Output through files: a detached monitor must not hold our pipes.
    const r = spawnSync(cmd, args, { stdio: [opts.input !== undefined ? 'pipe' : 'ignore', out, err], input: opts.input, timeout: opts.timeoutMs ?? 60000 });
    return {
      status: r.status,
      stdout: fs.readFileSync(path.join(tmp, 'out'), 'utf8'),
      stderr: fs.readFileSync(path.join(tmp, 'err'), 'utf8') + (r.signal ? `\n(killed by ${r.signal})` : ''),
    };
  } finally {
    fs.closeSync(out);
    fs.closeSync(err);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

const shq = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

function natChains(): Set<string> {
  const r = spawnSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' });
  return new Set((r.stdout ?? '').split('\n').filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]!));
}

function linkExists(name: string): boolean {
  return spawnSync('ip', ['link', 'show', name], { stdio: 'ignore' }).status === 0;
}

/** The subnets this store claimed (engine/network.ts writes /run/mycontainer-subnets/A.B.C.D_N with the store's root). */
function ownSubnets(root: string): { net: number; mask: number }[] {
  const claims = '/run/mycontainer-subnets';
  const out: { net: number; mask: number }[] = [];
  for (const f of fs.existsSync(claims) ? fs.readdirSync(claims) : []) {
    const m = /^(\d+\.\d+\.\d+\.\d+)_(\d+)$/.exec(f);
    try {
      if (!m || fs.readFileSync(path.join(claims, f), 'utf8').trim() !== root) continue;
    } catch {
      continue;
    }
    const mask = Number(m[2]) === 0 ? 0 : (~0 << (32 - Number(m[2]))) >>> 0;
    out.push({ net: (ipv4(m[1]!) & mask) >>> 0, mask });
  }
  return out;
}

const ipv4 = (a: string): number => a.split('.').reduce((n, o) => ((n << 8) | Number(o)) >>> 0, 0);

/** CNI's per-container chains whose jump rule (`-s IP ... -j CNI-x`) is for an address in `subnets`. */
function ownedChains(save: string, subnets: { net: number; mask: number }[]): Set<string> {
  const out = new Set<string>();
  for (const line of save.split('\n')) {
    const m = /^-A \S+ -s (\d+\.\d+\.\d+\.\d+)(?:\/32)? .*-j (CNI-\S+)/.exec(line);
    if (!m) continue;
    const ip = ipv4(m[1]!);
    if (subnets.some((s) => ((ip & s.mask) >>> 0) === s.net)) out.add(m[2]!);
  }
  return out;
}

/** Builds the two images and loads them into the engine's store. */
function loadImages(e: Engine, work: string): void {
  const bb = path.join(work, 'busybox-oci');
  execFileSync(path.join(REPO, 'scripts', 'build-busybox-image.sh'), [bb, 'latest'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const httpd = path.join(work, 'httpd-oci');
  execFileSync('cp', ['-a', bb, httpd]);
  const www = path.join(work, 'www');
  fs.mkdirSync(path.join(www, 'var', 'www', 'html'), { recursive: true });
  fs.writeFileSync(path.join(www, 'var', 'www', 'html', 'index.html'), 'hello from httpd\n');
  execFileSync('umoci', ['insert', '--image', `${httpd}:latest`, www, '/']);
  execFileSync('umoci', ['config', '--image', `${httpd}:latest`, '--config.cmd', 'httpd', '--config.cmd', '-f', '--config.cmd', '-v', '--config.cmd', '-p', '--config.cmd', '80', '--config.cmd', '-h', '--config.cmd', '/var/www/html', '--config.exposedports', '80/tcp', '--config.stopsignal', 'SIGUSR1']);
  execFileSync('umoci', ['gc', '--layout', httpd]);
  for (const [dir, name] of [[bb, BUSYBOX], [httpd, HTTPD]] as const) {
    const r = e.mc(['load', '-i', dir, '--name', name]);
    if (r.status !== 0) throw new Error(`load ${name}: ${r.stderr}`);
  }
}

export function startEngine(name: string): Engine {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `mc-engine-${name}-`));
  const root = path.join(work, 'store');
  const runroot = path.join('/run', 'mycontainer-test', `engine-${name}-${process.pid}`);
  const cgroupParent = `/mycontainer-test/engine-${name}-${process.pid}`;
  const chainsBefore = natChains();
  const forwardBefore = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');

  const base = ['--root', root, '--runroot', runroot];
  const e: Engine = {
    root,
    runroot,
    cgroupParent,
    flags: ['--cgroup-parent', cgroupParent],
    mc: (args, opts = {}) => run(FRONTEND, [...base, ...args], opts),
    mcInTerminal: (args, input, opts = {}) => {
      const line = [FRONTEND, ...base, ...args].map(shq).join(' ');
      // the input arrives once the container runs; script's stdin is ours
      const feed = `sleep ${(opts.delayMs ?? 1500) / 1000}; printf %s ${shq(input)}; sleep 2`;
      return run('sh', ['-c', `(${feed}) | script -qec ${shq(line)} /dev/null`], { timeoutMs: opts.timeoutMs ?? 30000 });
    },
    cleanup: () => {
      const problems: string[] = [];
      // 1. containers, through the engine
      const ls = e.mc(['ps', '-aq', '--no-trunc'], { timeoutMs: 20000 });
      for (const id of ls.stdout.split('\n').filter(Boolean)) e.mc(['rm', '-f', id], { timeoutMs: 30000 });
      // 2. whatever still runs: monitors, containers
      for (let round = 0; round < 3; round++) {
        const pids = [...processesMentioning(root), ...processesMentioning(runroot)].filter((p) => p !== process.pid);
        if (pids.length === 0) break;
        for (const p of pids) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            // gone
          }
        }
        sleep(200);
      }
      // 3. mounts (rootfs overlays, netns binds), deepest first
      for (const dir of [root, runroot]) {
        for (const m of mountsUnder(dir).sort((a, b) => b.length - a.length)) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
        const still = mountsUnder(dir);
        if (still.length > 0) problems.push(`mounts left under ${dir}: ${still.join(', ')}`);
      }
      // 4. cgroups under the test parent
      for (const h of ['', ...fs.readdirSync('/sys/fs/cgroup')]) {
        const d = path.join('/sys/fs/cgroup', h, cgroupParent);
        if (!fs.existsSync(d)) continue;
        for (const sub of fs.readdirSync(d).filter((x) => fs.statSync(path.join(d, x)).isDirectory())) {
          try {
            fs.rmdirSync(path.join(d, sub));
          } catch (err) {
            problems.push(`cgroup ${path.join(d, sub)}: ${(err as Error).message}`);
          }
        }
        try {
          fs.rmdirSync(d);
        } catch {
          // not empty: reported above
        }
      }
      removeTestCgroupParents();
      // 5. network: the bridge and the CNI chains, if this run made them
      // this store's bridges (its default network has one of its own)
      const nets = path.join(root, 'networks');
      for (const f of fs.existsSync(nets) ? fs.readdirSync(nets) : []) {
        try {
          const bridge = (JSON.parse(fs.readFileSync(path.join(nets, f), 'utf8')) as { bridge: string }).bridge;
          if (linkExists(bridge)) spawnSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
        } catch {
          // not a network record
        }
      }
      // The HOSTPORT chains are shared by every CNI user on the host (another
      // test file's engine, podman): they go only when no container's chain is left.
      const now = [...natChains()];
      const shared = (c: string): boolean => c.startsWith('CNI-HOSTPORT-');
      // another engine test still running may add a rule any moment: then they stay, for the suite's cleanup
      const othersInUse = now.some((c) => c.startsWith('CNI-') && !shared(c)) || otherEnginesRunning(runroot);
      // A container's chain is ours if the rule that jumps to it is for an
      // address of this store's subnets: test files run side by side, and
      // another's chains come and go meanwhile.
      const save = spawnSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' }).stdout ?? '';
      const mine = ownedChains(save, ownSubnets(root));
      const made = now.filter((c) => !chainsBefore.has(c) && c.startsWith('CNI-') && (shared(c) ? !othersInUse : mine.has(c)));
      if (made.length > 0) {
        for (const line of save.split('\n')) {
          const m = /^-A (\S+) (.*-j (\S+).*)$/.exec(line);
          // iptables-save quotes comments as a shell would: let sh split the rule
          if (m && made.includes(m[3]!) && !made.includes(m[1]!)) spawnSync('sh', ['-c', `iptables -t nat ${line.replace(/^-A/, '-D')}`], { stdio: 'ignore' });
        }
        for (const c of made) spawnSync('iptables', ['-t', 'nat', '-F', c], { stdio: 'ignore' });
        for (const c of made) spawnSync('iptables', ['-t', 'nat', '-X', c], { stdio: 'ignore' });
      }
      // this store's subnet claims (engine/network.ts)
      const claims = '/run/mycontainer-subnets';
      for (const f of fs.existsSync(claims) ? fs.readdirSync(claims) : []) {
        try {
          if (fs.readFileSync(path.join(claims, f), 'utf8').trim() === root) fs.rmSync(path.join(claims, f), { force: true });
        } catch {
          // the lock, or gone
        }
      }
      // the bridge plugin turns forwarding on for its gateway: back as it was
      fs.writeFileSync('/proc/sys/net/ipv4/ip_forward', forwardBefore);
      fs.rmSync(work, { recursive: true, force: true });
      fs.rmSync(runroot, { recursive: true, force: true });
      if (problems.length > 0) throw new Error(`engine cleanup: ${problems.join('; ')}`);
    },
  };
  try {
    loadImages(e, work);
  } catch (err) {
    e.cleanup();
    throw err;
  }
  return e;
}

/** Whether another test process's engine is alive (its runroot is /run/mycontainer-test/engine-<name>-<pid>). */
export function otherEnginesRunning(ours?: string): boolean {
  let dirs: string[] = [];
  try {
    dirs = fs.readdirSync('/run/mycontainer-test');
  } catch {
    return false;
  }
  return dirs.some((d) => {
    const m = /^engine-.*-(\d+)$/.exec(d);
    if (!m || path.join('/run/mycontainer-test', d) === ours || Number(m[1]) === process.pid) return false;
    try {
      process.kill(Number(m[1]), 0);
      return true;
    } catch {
      return false;
    }
  });
}

/** The CNI port chains every CNI user shares, removed when no container's chain is left (the suite's last step). */
export function removeSharedCniChains(): void {
  // the subnet claims dir, once no claim is left in it
  const claims = '/run/mycontainer-subnets';
  if (fs.existsSync(claims) && fs.readdirSync(claims).every((f) => f === '.lock') && !otherEnginesRunning()) fs.rmSync(claims, { recursive: true, force: true });
  const now = [...natChains()];
  if (now.some((c) => c.startsWith('CNI-') && !c.startsWith('CNI-HOSTPORT-')) || otherEnginesRunning()) return;
  const made = now.filter((c) => c.startsWith('CNI-HOSTPORT-'));
  const save = spawnSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of save.split('\n')) {
    const m = /^-A (\S+) .*-j (\S+)/.exec(line);
    if (m && made.includes(m[2]!) && !made.includes(m[1]!)) spawnSync('sh', ['-c', `iptables -t nat ${line.replace(/^-A/, '-D')}`], { stdio: 'ignore' });
  }
  for (const c of made) spawnSync('iptables', ['-t', 'nat', '-F', c], { stdio: 'ignore' });
  for (const c of made) spawnSync('iptables', ['-t', 'nat', '-X', c], { stdio: 'ignore' });
}

/** Polls fn until it returns a value (not undefined) or the time is up. */
export function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 15000): T {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    sleep(100);
  }
}

/** The veth devices on a bridge, or on the host (their count tells a leak). */
export function hostVeths(bridge?: string): string[] {
  const r = spawnSync('ip', ['-o', 'link', 'show', 'type', 'veth', ...(bridge ? ['master', bridge] : [])], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').filter(Boolean).map((l) => l.split(':')[1]!.trim().split('@')[0]!);
}

/** nat rules mentioning a container id (CNI's comments carry it). */
export function natRulesFor(id: string): string[] {
  const r = spawnSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').filter((l) => l.includes(id));
}
