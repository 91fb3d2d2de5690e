// The docker-style front end next to podman (driving runc), in one run, on
// the same busybox content, both with --network none (and ours with its
// bridge too):
//
//   run --rm IMAGE true       N times (BENCH_N, default 10) after a warm-up: mean, median, p95
//   idle containers           BENCH_IDLE (default 100) `run -d IMAGE sleep 3600`, then:
//                               the time to start them all,
//                               the monitor's RSS, PSS and private memory (smaps_rollup)
//                               per container: ours is a Node process, podman's is conmon,
//                               the host's MemAvailable drop per container (everything:
//                               monitor, container, kernel objects)
//
// Each engine has its own store (test/helpers/engine.ts, test/helpers/podman.ts),
// and everything is removed at the end, also on failure. Results print as a
// table and go to bench/results/engine-<date>.json.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BUSYBOX, startEngine, type Engine } from '../test/helpers/engine';
import { IMAGE as PODMAN_IMAGE, makePodmanStore, podmanMissing, type PodmanStore } from '../test/helpers/podman';

const N = Number(process.env['BENCH_N'] ?? 10);
const IDLE = Number(process.env['BENCH_IDLE'] ?? 100);

interface Times {
  mean: number;
  median: number;
  p95: number;
}

interface Memory {
  startAllS: number;
  monitorRssMB: number;
  monitorPssMB: number;
  monitorPrivateMB: number;
  hostPerContainerMB: number;
}

function stats(ms: number[]): Times {
  const s = [...ms].sort((a, b) => a - b);
  return {
    mean: s.reduce((x, y) => x + y, 0) / s.length,
    median: s[Math.floor(s.length / 2)]!,
    p95: s[Math.min(s.length - 1, Math.floor(s.length * 0.95))]!,
  };
}

function timed(fn: () => { status: number | null; stderr: string }, what: string): number {
  const t0 = process.hrtime.bigint();
  const r = fn();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}): ${r.stderr}`);
  return ms;
}

function memAvailableKB(): number {
  return Number(/^MemAvailable:\s+(\d+)/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
}

function rollup(pid: number): { rss: number; pss: number; priv: number } {
  try {
    const t = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)?.[1] ?? 0);
    return { rss: kb('Rss'), pss: kb('Pss'), priv: kb('Private_Clean') + kb('Private_Dirty') };
  } catch {
    return { rss: 0, pss: 0, priv: 0 };
  }
}

/** The pids whose command line matches, children of none of each other's (monitors, conmons). */
function pidsByCmdline(test: (argv: string[]) => boolean): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (test(argv)) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

function settle(): void {
  spawnSync('sync');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);
}

function idle(start: (i: number) => void, monitors: () => number[], removeAll: () => void): Memory {
  settle();
  const before = memAvailableKB();
  const t0 = Date.now();
  for (let i = 0; i < IDLE; i++) start(i);
  const startAllS = (Date.now() - t0) / 1000;
  settle();
  const after = memAvailableKB();
  const mons = monitors();
  const r = mons.map(rollup);
  const avg = (f: (x: { rss: number; pss: number; priv: number }) => number): number => r.reduce((s, x) => s + f(x), 0) / Math.max(1, r.length) / 1024;
  if (mons.length !== IDLE) process.stderr.write(`bench: found ${mons.length} monitors for ${IDLE} containers\n`);
  removeAll();
  return { startAllS, monitorRssMB: avg((x) => x.rss), monitorPssMB: avg((x) => x.pss), monitorPrivateMB: avg((x) => x.priv), hostPerContainerMB: (before - after) / IDLE / 1024 };
}

function benchOurs(e: Engine): { none: Times; bridge: Times; idle: Memory } {
  const runOnce = (network: string): number => timed(() => e.mc(['run', '--rm', '--network', network, ...e.flags, BUSYBOX, 'true']), `mycontainer run --network ${network}`);
  runOnce('none');
  runOnce('bridge');
  const none = stats(Array.from({ length: N }, () => runOnce('none')));
  const bridge = stats(Array.from({ length: N }, () => runOnce('bridge')));
  const mem = idle(
    (i) => {
      const r = e.mc(['run', '-d', '--name', `idle-${i}`, '--network', 'none', ...e.flags, BUSYBOX, 'sleep', '3600']);
      if (r.status !== 0) throw new Error(`run -d idle-${i}: ${r.stderr}`);
    },
    // monitors rename themselves (process.title): their records name them
    () => fs.readdirSync(path.join(e.root, 'containers')).map((id) => {
      try {
        return (JSON.parse(fs.readFileSync(path.join(e.root, 'containers', id, 'container.json'), 'utf8')) as { state: { monitorPid: number } }).state.monitorPid;
      } catch {
        return 0;
      }
    }).filter((p) => p > 0),
    () => {
      const ids = e.mc(['ps', '-aq']).stdout.split('\n').filter(Boolean);
      for (let i = 0; i < ids.length; i += 20) e.mc(['rm', '-f', ...ids.slice(i, i + 20)], { timeoutMs: 300000 });
    },
  );
  return { none, bridge, idle: mem };
}

function benchPodman(p: PodmanStore): { none: Times; idle: Memory } {
  const runOnce = (): number => timed(() => p.podman(['run', '--rm', ...p.runFlags, PODMAN_IMAGE, 'true']), 'podman run');
  runOnce();
  const none = stats(Array.from({ length: N }, runOnce));
  const mem = idle(
    (i) => {
      const r = p.podman(['run', '-d', '--name', `idle-${i}`, ...p.runFlags, PODMAN_IMAGE, 'sleep', '3600']);
      if (r.status !== 0) throw new Error(`podman run -d idle-${i}: ${r.stderr}`);
    },
    () => pidsByCmdline((a) => path.basename(a[0] ?? '') === 'conmon' && a.some((x) => x.includes(p.dir))),
    () => void p.podman(['rm', '--all', '--force', '--time', '0'], { timeoutMs: 600000 }),
  );
  return { none, idle: mem };
}

function table(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i]! + 2)).join('').trimEnd()).join('\n') + '\n';
}

function main(): void {
  const missing = podmanMissing();
  const e = startEngine('bench');
  let pm: PodmanStore | null = null;
  try {
    const ours = benchOurs(e);
    let theirs: ReturnType<typeof benchPodman> | null = null;
    if (!missing) {
      pm = makePodmanStore('runc', '/run/runc');
      pm.importBusybox();
      theirs = benchPodman(pm);
    } else {
      process.stderr.write(`bench: podman skipped: ${missing}\n`);
    }
    const f = (x: number, d = 1): string => x.toFixed(d);
    const ratio = (a: number, b: number | undefined): string => (b ? `${f(a / b, 2)}x` : '-');
    const rows = [
      ['', 'mycontainer', 'podman+runc', 'ours/theirs'],
      ['run --rm true, --network none: mean ms', f(ours.none.mean), theirs ? f(theirs.none.mean) : '-', ratio(ours.none.mean, theirs?.none.mean)],
      ['  median ms', f(ours.none.median), theirs ? f(theirs.none.median) : '-', ratio(ours.none.median, theirs?.none.median)],
      ['  p95 ms', f(ours.none.p95), theirs ? f(theirs.none.p95) : '-', ratio(ours.none.p95, theirs?.none.p95)],
      ['run --rm true, our bridge (CNI): mean ms', f(ours.bridge.mean), '-', '-'],
      [`${IDLE} idle containers: start all, s`, f(ours.idle.startAllS), theirs ? f(theirs.idle.startAllS) : '-', ratio(ours.idle.startAllS, theirs?.idle.startAllS)],
      ['  monitor RSS MB (ours mycontainer-monitor, theirs conmon)', f(ours.idle.monitorRssMB), theirs ? f(theirs.idle.monitorRssMB) : '-', ratio(ours.idle.monitorRssMB, theirs?.idle.monitorRssMB)],
      ['  monitor PSS MB', f(ours.idle.monitorPssMB), theirs ? f(theirs.idle.monitorPssMB) : '-', ratio(ours.idle.monitorPssMB, theirs?.idle.monitorPssMB)],
      ['  monitor private MB', f(ours.idle.monitorPrivateMB), theirs ? f(theirs.idle.monitorPrivateMB) : '-', ratio(ours.idle.monitorPrivateMB, theirs?.idle.monitorPrivateMB)],
      ['  host MemAvailable drop per container MB', f(ours.idle.hostPerContainerMB), theirs ? f(theirs.idle.hostPerContainerMB) : '-', ratio(ours.idle.hostPerContainerMB, theirs?.idle.hostPerContainerMB)],
    ];
    process.stdout.write(table(rows));
    const dir = path.join(__dirname, '..', '..', 'bench', 'results');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `engine-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    fs.writeFileSync(file, JSON.stringify({ n: N, idle: IDLE, ours, theirs }, null, 2) + '\n');
    process.stdout.write(`results: ${path.relative(process.cwd(), file)}\n`);
  } finally {
    pm?.cleanup();
    e.cleanup();
  }
}

main();
