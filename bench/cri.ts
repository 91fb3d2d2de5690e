// The CRI server against containerd 1.6 + runc, side by side in one run, on
// the critest kit (../shared/tools/critest: its images on 127.0.0.1:5000,
// containerd-baseline.sh):
//
//   1. critest -benchmark (bench.sh): p50 of each CRI operation of the pod
//      and container lifecycles and PullImage, ours / containerd's;
//   2. host memory per idle pod: MemAvailable before and after 50 pods
//      (crictl runp; caches dropped before each reading), and the processes
//      each side added per pod;
//   3. Node processes our server started per pod and per container.
//
//   node dist/bench/cri.js [--pods 50] [--n 20]

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

const REPO = path.resolve(__dirname, '..', '..');
const KIT = path.resolve(REPO, '..', 'shared', 'tools', 'critest');
const CRICTL = path.join(KIT, 'bin', 'crictl');
const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const PODS = arg('pods', 50);
const N = arg('n', 20);
const sleep = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function sh(cmd: string, args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 45 * 60000, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function memAvailableKb(): number {
  spawnSync('sync');
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
  sleep(1000);
  return Number(/MemAvailable:\s+(\d+)/.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
}

/** p50 per operation from bench.sh's p50.tsv. */
function benchP50(endpoint: string, work: string): Map<string, number> {
  const r = sh(path.join(KIT, 'bench.sh'), [endpoint], { CRITEST_WORK: work, CRITEST_BENCH_N: String(N) });
  const tsv = path.join(work, 'bench', 'latest', 'p50.tsv');
  const out = new Map<string, number>();
  if (!fs.existsSync(tsv)) {
    process.stderr.write(`bench.sh against ${endpoint} wrote no data:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}\n`);
    return out;
  }
  for (const line of fs.readFileSync(tsv, 'utf8').split('\n').filter(Boolean)) {
    const [suite, op, , p50] = line.split('\t');
    out.set(`${suite} ${op}`, Number(p50));
  }
  return out;
}

function pids(): Set<number> {
  return new Set(fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number));
}

/** Proportional set size of a process, kB (shared pages split among their users). */
function pssKb(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function nodeProcesses(match: string): number {
  return fs.readdirSync('/proc').filter((d) => {
    if (!/^\d+$/.test(d)) return false;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
      return cmd.startsWith(process.execPath) && cmd.includes(match);
    } catch {
      return false;
    }
  }).length;
}

/** MemAvailable drop and processes added per idle pod (crictl runp, nothing else). */
function podMemory(endpoint: string, work: string, cgroupParent: string): { kbPerPod: number; procsPerPod: number; pssKbPerPod: number } {
  const before = memAvailableKb();
  const procs0 = pids();
  const ids: string[] = [];
  for (let i = 0; i < PODS; i++) {
    const f = path.join(work, `pod-${i}.json`);
    fs.writeFileSync(f, JSON.stringify({ metadata: { name: `bench-${i}`, namespace: 'bench', uid: `bench-${i}-${Date.now()}` }, linux: { cgroup_parent: cgroupParent } }));
    const r = sh(CRICTL, ['-r', endpoint, '-i', endpoint, 'runp', f]);
    if (r.status !== 0) throw new Error(`runp against ${endpoint}: ${r.stderr}`);
    ids.push(r.stdout.trim());
  }
  sleep(3000);
  const after = memAvailableKb();
  const added = [...pids()].filter((p) => !procs0.has(p));
  const pss = added.reduce((n, p) => n + pssKb(p), 0);
  for (const id of ids) sh(CRICTL, ['-r', endpoint, '-i', endpoint, 'rmp', '-f', id]);
  return { kbPerPod: (before - after) / PODS, procsPerPod: added.length / PODS, pssKbPerPod: pss / PODS };
}

function main(): number {
  if (!fs.existsSync(path.join(KIT, 'bench.sh'))) {
    process.stderr.write(`bench cri: the critest kit is not at ${KIT}: skipped\n`);
    return 0;
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-bench-cri-'));
  const setup = sh(path.join(KIT, 'setup.sh'), []);
  if (setup.status !== 0) throw new Error(`setup.sh: ${setup.stderr}`);
  // ours
  const root = path.join(work, 'store');
  const runroot = `/run/mc-bench-cri-${process.pid}`;
  const netd = path.join(work, 'net.d');
  fs.mkdirSync(netd, { recursive: true });
  fs.writeFileSync(path.join(netd, '10-bench.conflist'), JSON.stringify({
    cniVersion: '0.4.0', name: 'bench', plugins: [
      { type: 'bridge', bridge: 'mcbench0', isGateway: true, ipMasq: true, ipam: { type: 'host-local', dataDir: path.join(work, 'ipam'), ranges: [[{ subnet: '10.126.0.0/16' }]], routes: [{ dst: '0.0.0.0/0' }] } },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  }));
  const sock = path.join(runroot, 'cri.sock');
  const ours = `unix://${sock}`;
  const log = fs.openSync(path.join(work, 'server.log'), 'a');
  const server: ChildProcess = spawn(path.join(REPO, 'bin', 'mycontainer'), ['--root', root, '--runroot', runroot, 'cri', '--socket', sock, '--cni-conf-dir', netd, '--registries-conf', path.join(KIT, 'registries.conf')], { stdio: ['ignore', log, log], detached: true });
  for (let i = 0; i < 100 && !fs.existsSync(sock); i++) sleep(100);
  const baseline = sh(path.join(KIT, 'containerd-baseline.sh'), ['start']);
  if (baseline.status !== 0) throw new Error(`containerd-baseline.sh start: ${baseline.stderr}`);
  const theirs = 'unix:///run/critest-containerd/containerd.sock';
  try {
    const load = (): string => os.loadavg().map((l) => l.toFixed(1)).join(' ');
    process.stdout.write(`critest -benchmark, N=${N}, parallel 1 (load ${load()})\n`);
    const a = benchP50(ours, path.join(work, 'ours'));
    const b = benchP50(theirs, path.join(work, 'containerd'));
    process.stdout.write(`${'operation'.padEnd(58)} ${'ours ms'.padStart(9)} ${'containerd'.padStart(10)} ${'ratio'.padStart(6)}\n`);
    for (const [op, v] of a) {
      const w = b.get(op);
      process.stdout.write(`${op.padEnd(58)} ${v.toFixed(1).padStart(9)} ${(w ?? NaN).toFixed(1).padStart(10)} ${w ? (v / w).toFixed(2).padStart(6) : '     -'}\n`);
    }
    const monitors0 = nodeProcesses('monitor');
    const pm = podMemory(ours, path.join(work, 'ours'), '/mc-bench-cri');
    const pt = podMemory(theirs, path.join(work, 'containerd'), '/mc-bench-cri');
    process.stdout.write(`\nidle pods: ${PODS} (load ${load()})\n`);
    process.stdout.write(`  host memory per pod: ours ${(pm.kbPerPod / 1024).toFixed(2)} MB, containerd ${(pt.kbPerPod / 1024).toFixed(2)} MB, ratio ${(pm.kbPerPod / pt.kbPerPod).toFixed(2)}\n`);
    process.stdout.write(`  PSS of the processes a pod adds: ours ${(pm.pssKbPerPod / 1024).toFixed(2)} MB, containerd ${(pt.pssKbPerPod / 1024).toFixed(2)} MB, ratio ${(pm.pssKbPerPod / pt.pssKbPerPod).toFixed(2)}\n`);
    process.stdout.write(`  processes per pod: ours ${pm.procsPerPod.toFixed(1)}, containerd ${pt.procsPerPod.toFixed(1)}\n`);
    process.stdout.write(`  Node processes our server started for ${PODS} pods: ${nodeProcesses('monitor') - monitors0} (a pod is a pause process, not Node)\n`);
  } finally {
    sh(path.join(KIT, 'containerd-baseline.sh'), ['stop']);
    try {
      process.kill(server.pid!, 'SIGTERM');
    } catch {
      // gone
    }
    sleep(1000);
    spawnSync('ip', ['link', 'del', 'mcbench0']);
    for (const m of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((p) => p.startsWith(root) || p.startsWith(runroot)).reverse()) spawnSync('umount', ['-l', m]);
    fs.rmSync(runroot, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
    // the pods' cgroups (empty by now)
    for (const h of ['', ...fs.readdirSync('/sys/fs/cgroup')]) {
      for (const parent of ['mc-bench-cri', 'mycontainer-cri']) {
        const d = path.join('/sys/fs/cgroup', h, parent);
        if (!fs.existsSync(d) || !fs.statSync(d).isDirectory()) continue;
        for (const sub of fs.readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory())) spawnSync('rmdir', [path.join(d, sub.name)]);
        spawnSync('rmdir', [d]);
      }
    }
  }
  return 0;
}

process.exitCode = main();
