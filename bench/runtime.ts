// Runtime benchmark: mycontainer, runc and crun side by side on one busybox
// bundle (one config.json for all three), plus `node -e 0` as the floor a
// Node runtime cannot go under.
//
//   node dist/bench/runtime.js            (BENCH_N=20 iterations by default)
//
// Each runtime is measured by a worker process (this same file with
// --worker NAME), so all three run the same timing loop. crun refuses this
// host's hybrid cgroups (an empty cgroup2 at /sys/fs/cgroup/unified), so its
// worker runs in a private mount namespace with that mount removed:
// `unshare -m` (util-linux makes the new namespace's mounts private, so the
// umount does not reach the host).
//
// Measured per runtime:
//   run     `X run --bundle B id` of `true` in the foreground: mean/median/p95 ms
//   cycle   create, start, poll `state` until stopped, delete: total and each step
//   rate    sequential containers per second (1000 / mean run ms)
//   exec    `X exec id true` into one running container (`sleep` as its init),
//           N times after 2 warm-ups: mean/median/p95 ms
//   rss     peak RSS, from getrusage of /usr/bin/time -f %M:
//             run:  the whole `run` (max over the CLI and its waited children;
//                   the container process keeps its pre-exec peak across execve,
//                   so the init's peak is in it)
//             cli:  `X create` alone (the init is not waited by the CLI)
//             init: VmHWM of the created init waiting on exec.fifo (/proc/PID/status)
//
// Results: a table on stdout and bench/results/runtime-<date>.json.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { makeBusyboxRootfs } from '../test/helpers/bundle';
import { defaultSpec } from '../runtime/spec/default';

const REPO = path.resolve(__dirname, '..', '..');
const MYCONTAINER = path.join(REPO, 'bin', 'mycontainer-runtime');
const TIME = '/usr/bin/time';
const RUNTIMES = ['mycontainer', 'runc', 'crun'] as const;
type RuntimeName = (typeof RUNTIMES)[number];

interface Stats {
  n: number;
  mean: number;
  median: number;
  p95: number;
  min: number;
  max: number;
}

interface CycleStats {
  total: Stats;
  create: Stats;
  start: Stats;
  state: Stats; // the polling, all `state` calls of one cycle together
  stateCalls: number; // mean number of `state` calls until stopped
  delete: Stats;
}

interface RssStats {
  runMB: number; // median over samples of the run tree's max RSS
  cliMB: number; // `create` alone
  initMB: number; // the created init, before exec
}

interface RuntimeResult {
  name: RuntimeName;
  version: string;
  run: Stats;
  containersPerSecond: number;
  cycle: CycleStats;
  exec: Stats;
  rss: RssStats;
}

interface FloorResult {
  nodeMs: Stats;
  nodeRssMB: number;
  spawnTrueMs: Stats; // /bin/true: what spawning costs the bench itself
}

interface Report {
  date: string;
  host: { kernel: string; cpus: number; node: string };
  n: number;
  rssSamples: number;
  ociVersion: string;
  floor: FloorResult;
  runtimes: RuntimeResult[];
  ratios: Record<string, Record<string, number>>;
}

// ---------------------------------------------------------------- helpers

function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  const mid = s.length % 2 === 1 ? (s[(s.length - 1) / 2] ?? NaN) : ((s[s.length / 2 - 1] ?? NaN) + (s[s.length / 2] ?? NaN)) / 2;
  return { n: s.length, mean, median: mid, p95: at(0.95), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN };
}

function median(xs: number[]): number {
  return stats(xs).median;
}

function ms(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

interface Exec {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs a command to completion. Output goes through temp files, never pipes:
 * a created container inherits the CLI's stdio and would hold a pipe open
 * (and spawnSync with it) long after the CLI exits.
 */
function exec(argv: string[]): Exec {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error('cannot run an empty command');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-out-'));
  const out = fs.openSync(path.join(dir, 'out'), 'w+');
  const err = fs.openSync(path.join(dir, 'err'), 'w+');
  try {
    const t = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { stdio: ['ignore', out, err], timeout: 120000 });
    const elapsed = ms(t);
    if (r.error) throw new Error(`cannot run ${argv.join(' ')}: ${r.error.message}`);
    return { status: r.status, stdout: fs.readFileSync(path.join(dir, 'out'), 'utf8'), stderr: fs.readFileSync(path.join(dir, 'err'), 'utf8'), ms: elapsed };
  } finally {
    fs.closeSync(out);
    fs.closeSync(err);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function mustExec(argv: string[]): Exec {
  const r = exec(argv);
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return r;
}

function runtimeBinary(name: RuntimeName): string {
  return name === 'mycontainer' ? MYCONTAINER : name;
}

function stateRoot(name: RuntimeName): string {
  return `/run/bench-${name}`;
}

function cli(name: RuntimeName, args: string[]): string[] {
  return [runtimeBinary(name), '--root', stateRoot(name), ...args];
}

/** Peak RSS in MB of a command (and its waited-for children), via GNU time. */
function peakRssMB(argv: string[]): { mb: number; status: number | null; stderr: string } {
  const out = path.join(os.tmpdir(), `bench-rss-${process.pid}`);
  try {
    const r = exec([TIME, '-f', '%M', '-o', out, ...argv]);
    const kb = Number(fs.readFileSync(out, 'utf8').trim().split('\n').pop());
    return { mb: kb / 1024, status: r.status, stderr: r.stderr };
  } finally {
    fs.rmSync(out, { force: true });
  }
}

function vmHWMMB(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m?.[1]) throw new Error(`cannot read VmHWM of pid ${pid}`);
  return Number(m[1]) / 1024;
}

// ---------------------------------------------------------------- worker: one runtime

/** Deletes every container left in a runtime's state root, then the root. */
function cleanupRuntime(name: RuntimeName): void {
  const root = stateRoot(name);
  let ids: string[] = [];
  try {
    ids = fs.readdirSync(root).filter((e) => fs.statSync(path.join(root, e)).isDirectory());
  } catch {
    return;
  }
  for (const id of ids) exec(cli(name, ['delete', '--force', id]));
  fs.rmSync(root, { recursive: true, force: true });
}

function measureRuntime(name: RuntimeName, bundle: string, execBundle: string, n: number, rssSamples: number): RuntimeResult {
  fs.mkdirSync(stateRoot(name), { recursive: true });
  let seq = 0;
  const nextId = (): string => `bench-${process.pid}-${seq++}`;
  const v = exec([runtimeBinary(name), '--version']);
  const version = v.status === 0 ? (v.stdout.split('\n')[0] ?? '').trim() : `unknown (--version exited ${v.status})`;

  // a) run: warm up twice (page cache, first-run lazy work), then N timed runs
  const runOnce = (): number => {
    const id = nextId();
    const r = exec(cli(name, ['run', '--bundle', bundle, id]));
    if (r.status !== 0) throw new Error(`${name} run ${id} exited ${r.status}: ${r.stderr.trim()}`);
    return r.ms;
  };
  runOnce();
  runOnce();
  const runs: number[] = [];
  for (let i = 0; i < n; i++) runs.push(runOnce());

  // b) create + start + poll state until stopped + delete
  const cycles = { total: [] as number[], create: [] as number[], start: [] as number[], state: [] as number[], delete: [] as number[], calls: [] as number[] };
  for (let i = 0; i < n + 1; i++) {
    const id = nextId();
    const t = process.hrtime.bigint();
    const c = mustExec(cli(name, ['create', '--bundle', bundle, id]));
    const s = mustExec(cli(name, ['start', id]));
    let stateMs = 0;
    let calls = 0;
    const deadline = Date.now() + 30000;
    for (;;) {
      const st = mustExec(cli(name, ['state', id]));
      stateMs += st.ms;
      calls++;
      const status = (JSON.parse(st.stdout) as { status?: string }).status;
      if (status === 'stopped') break;
      if (Date.now() > deadline) throw new Error(`${name}: container ${id} still ${status} after 30 s`);
    }
    const d = mustExec(cli(name, ['delete', id]));
    const total = ms(t);
    if (i === 0) continue; // warm-up
    cycles.total.push(total);
    cycles.create.push(c.ms);
    cycles.start.push(s.ms);
    cycles.state.push(stateMs);
    cycles.delete.push(d.ms);
    cycles.calls.push(calls);
  }

  // d) peak RSS: the whole run; create alone; the created init before exec
  const runRss: number[] = [];
  const cliRss: number[] = [];
  const initRss: number[] = [];
  const pidFile = path.join(os.tmpdir(), `bench-pid-${process.pid}`);
  try {
    for (let i = 0; i < rssSamples; i++) {
      const id = nextId();
      const r = peakRssMB(cli(name, ['run', '--bundle', bundle, id]));
      if (r.status !== 0) throw new Error(`${name} run ${id} (under time) exited ${r.status}: ${r.stderr.trim()}`);
      runRss.push(r.mb);

      const id2 = nextId();
      const c = peakRssMB(cli(name, ['create', '--bundle', bundle, '--pid-file', pidFile, id2]));
      if (c.status !== 0) throw new Error(`${name} create ${id2} (under time) exited ${c.status}: ${c.stderr.trim()}`);
      cliRss.push(c.mb);
      try {
        initRss.push(vmHWMMB(Number(fs.readFileSync(pidFile, 'utf8').trim())));
      } finally {
        mustExec(cli(name, ['delete', '--force', id2]));
      }
    }
  } finally {
    fs.rmSync(pidFile, { force: true });
  }

  // e) exec: one container that sleeps, then N `exec id true` into it
  const execs: number[] = [];
  const execId = nextId();
  mustExec(cli(name, ['create', '--bundle', execBundle, execId]));
  try {
    mustExec(cli(name, ['start', execId]));
    for (let i = 0; i < n + 2; i++) {
      const r = exec(cli(name, ['exec', execId, 'true']));
      if (r.status !== 0) throw new Error(`${name} exec ${execId} true exited ${r.status}: ${r.stderr.trim()}`);
      if (i >= 2) execs.push(r.ms); // two warm-ups
    }
  } finally {
    mustExec(cli(name, ['delete', '--force', execId]));
  }

  const run = stats(runs);
  return {
    name,
    version,
    run,
    containersPerSecond: 1000 / run.mean,
    cycle: {
      total: stats(cycles.total),
      create: stats(cycles.create),
      start: stats(cycles.start),
      state: stats(cycles.state),
      stateCalls: cycles.calls.reduce((a, b) => a + b, 0) / (cycles.calls.length || 1),
      delete: stats(cycles.delete),
    },
    exec: stats(execs),
    rss: { runMB: median(runRss), cliMB: median(cliRss), initMB: median(initRss) },
  };
}

function measureFloor(n: number, rssSamples: number): FloorResult {
  exec([process.execPath, '-e', '0']);
  const nodeMs: number[] = [];
  const trueMs: number[] = [];
  for (let i = 0; i < n; i++) nodeMs.push(mustExec([process.execPath, '-e', '0']).ms);
  for (let i = 0; i < n; i++) trueMs.push(mustExec(['/bin/true']).ms);
  const rss: number[] = [];
  for (let i = 0; i < rssSamples; i++) rss.push(peakRssMB([process.execPath, '-e', '0']).mb);
  return { nodeMs: stats(nodeMs), nodeRssMB: median(rss), spawnTrueMs: stats(trueMs) };
}

/** Worker entry: measures one runtime and writes its result as JSON to --out. */
function worker(argv: string[]): void {
  const arg = (flag: string): string => {
    const i = argv.indexOf(flag);
    const v = i >= 0 ? argv[i + 1] : undefined;
    if (v === undefined) throw new Error(`worker: missing ${flag}`);
    return v;
  };
  const name = arg('--worker') as RuntimeName;
  if (!RUNTIMES.includes(name)) throw new Error(`worker: unknown runtime ${name}`);
  const out = arg('--out');
  try {
    const result = measureRuntime(name, arg('--bundle'), arg('--exec-bundle'), Number(arg('--n')), Number(arg('--rss-samples')));
    fs.writeFileSync(out, JSON.stringify(result));
  } finally {
    cleanupRuntime(name);
  }
}

// ---------------------------------------------------------------- main

/** Runs this file with ARGS as a child; crun's side runs in a mount namespace without the cgroup2 mount. */
function spawnSelf(name: RuntimeName, args: string[]): number | null {
  const self = [process.execPath, __filename, ...args];
  const argv = name !== 'crun' ? self : ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'umount /sys/fs/cgroup/unified && exec "$@"', 'sh', ...self];
  return spawnSync(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'] }).status;
}

/** /sys/fs/cgroup/<hierarchy>/mycontainer, wherever it exists. */
function mycontainerCgroupParents(): string[] {
  let hierarchies: string[] = [];
  try {
    hierarchies = fs.readdirSync('/sys/fs/cgroup');
  } catch {
    return [];
  }
  const found = ['', ...hierarchies].map((h) => path.join('/sys/fs/cgroup', h, 'mycontainer'));
  return found.filter((d) => fs.existsSync(d));
}

/** The bundle that runs `true`, and one on the same rootfs whose init sleeps (for exec). */
function makeBundles(dir: string): { bundle: string; execBundle: string } {
  const bundle = path.join(dir, 'bundle');
  const execBundle = path.join(dir, 'bundle-exec');
  const rootfs = path.join(bundle, 'rootfs');
  fs.mkdirSync(rootfs, { recursive: true });
  fs.mkdirSync(execBundle);
  fs.chmodSync(dir, 0o755);
  makeBusyboxRootfs(rootfs);
  const write = (b: string, args: string[]): void => {
    const spec = defaultSpec({ args });
    spec.root = { path: path.relative(b, rootfs), readonly: false };
    // crun 1.8 rejects "1.2.0" ("unknown version specified"); runc 1.1 and
    // mycontainer accept 1.0.2, and nothing in the default spec is newer.
    spec.ociVersion = '1.0.2';
    // runc spec's terminal and namespaces; the runs here have no console, and
    // kept the cgroup namespace the default spec used to add (figures comparable).
    spec.process!.terminal = false;
    spec.linux!.namespaces!.push({ type: 'cgroup' });
    fs.writeFileSync(path.join(b, 'config.json'), JSON.stringify(spec, null, 2));
  };
  write(bundle, ['true']);
  write(execBundle, ['sleep', '100000']);
  return { bundle, execBundle };
}

function ratio(a: number, b: number): number {
  return Math.round((a / b) * 100) / 100;
}

function fmt(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ')).join('\n');
}

function render(rep: Report): string {
  const by = (n: RuntimeName): RuntimeResult | undefined => rep.runtimes.find((r) => r.name === n);
  const mc = by('mycontainer');
  const metrics: { label: string; get: (r: RuntimeResult) => number; digits?: number }[] = [
    { label: 'run mean ms', get: (r) => r.run.mean },
    { label: 'run median ms', get: (r) => r.run.median },
    { label: 'run p95 ms', get: (r) => r.run.p95 },
    { label: 'containers/s (sequential run)', get: (r) => r.containersPerSecond, digits: 2 },
    { label: 'create+start+state+delete mean ms', get: (r) => r.cycle.total.mean },
    { label: 'cycle median ms', get: (r) => r.cycle.total.median },
    { label: 'cycle p95 ms', get: (r) => r.cycle.total.p95 },
    { label: '  create median ms', get: (r) => r.cycle.create.median },
    { label: '  start median ms', get: (r) => r.cycle.start.median },
    { label: '  state polling median ms', get: (r) => r.cycle.state.median },
    { label: '  state calls per cycle', get: (r) => r.cycle.stateCalls, digits: 2 },
    { label: '  delete median ms', get: (r) => r.cycle.delete.median },
    { label: 'exec true mean ms', get: (r) => r.exec.mean },
    { label: 'exec true median ms', get: (r) => r.exec.median },
    { label: 'exec true p95 ms', get: (r) => r.exec.p95 },
    { label: 'peak RSS MB, whole run', get: (r) => r.rss.runMB },
    { label: 'peak RSS MB, CLI (create)', get: (r) => r.rss.cliMB },
    { label: 'peak RSS MB, init before exec', get: (r) => r.rss.initMB },
  ];
  const names = rep.runtimes.map((r) => r.name);
  const others = names.filter((n) => n !== 'mycontainer');
  const header = ['', ...names, ...(mc ? others.map((o) => `mc/${o}`) : [])];
  const rows = [header];
  for (const m of metrics) {
    const row = [m.label, ...rep.runtimes.map((r) => fmt(m.get(r), m.digits))];
    if (mc) for (const o of others) {
      const r = by(o);
      row.push(r ? `${fmt(m.get(mc) / m.get(r), 2)}x` : '-');
    }
    rows.push(row);
  }
  const f = rep.floor;
  const lines = [
    `runtime benchmark, ${rep.date}, N=${rep.n}, RSS samples=${rep.rssSamples}, kernel ${rep.host.kernel}, ${rep.host.cpus} CPUs, node ${rep.host.node}`,
    ...rep.runtimes.map((r) => `  ${r.name}: ${r.version}`),
    '',
    table(rows),
    '',
    `floor: node -e 0  mean ${fmt(f.nodeMs.mean)} ms, median ${fmt(f.nodeMs.median)} ms, p95 ${fmt(f.nodeMs.p95)} ms, peak RSS ${fmt(f.nodeRssMB)} MB`,
    `       /bin/true  mean ${fmt(f.spawnTrueMs.mean)} ms (the bench's own spawn cost, in every figure above)`,
  ];
  if (mc) lines.push(`       mycontainer run mean = ${fmt(mc.run.mean / f.nodeMs.mean, 2)} x node -e 0`);
  return lines.join('\n');
}

function main(): void {
  const n = Number(process.env['BENCH_N'] ?? 20);
  const rssSamples = Number(process.env['BENCH_RSS_N'] ?? 5);
  if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_N must be a positive integer, not ${process.env['BENCH_N']}`);
  if (!fs.existsSync(TIME)) throw new Error(`${TIME} is missing: install Debian's "time" package`);
  const only = (process.env['BENCH_RUNTIMES'] ?? RUNTIMES.join(',')).split(',').filter((x): x is RuntimeName => (RUNTIMES as readonly string[]).includes(x));

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-runtime-'));
  const parentsBefore = new Set(mycontainerCgroupParents());
  const cleanup = (): void => {
    for (const name of only) {
      // a worker that died half-way leaves its containers: delete them the same way it would
      if (fs.existsSync(stateRoot(name))) spawnSelf(name, ['--cleanup', name]);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
    // mycontainer's default cgroup is /mycontainer/<id>: remove the parent if this run made it
    for (const d of mycontainerCgroupParents()) {
      if (parentsBefore.has(d)) continue;
      try {
        fs.rmdirSync(d);
      } catch {
        // not empty: something else runs there now
      }
    }
  };
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    const { bundle, execBundle } = makeBundles(tmp);
    const date = new Date().toISOString();
    process.stderr.write(`bench: floor (node -e 0)\n`);
    const floor = measureFloor(n, rssSamples);
    const runtimes: RuntimeResult[] = [];
    for (const name of only) {
      process.stderr.write(`bench: ${name}, ${n} runs + ${n} create/start/state/delete cycles + ${rssSamples} RSS samples + ${n} execs\n`);
      const out = path.join(tmp, `${name}.json`);
      const status = spawnSelf(name, ['--worker', name, '--bundle', bundle, '--exec-bundle', execBundle, '--n', String(n), '--rss-samples', String(rssSamples), '--out', out]);
      if (status !== 0 || !fs.existsSync(out)) throw new Error(`the ${name} worker failed (status ${status})`);
      runtimes.push(JSON.parse(fs.readFileSync(out, 'utf8')) as RuntimeResult);
    }
    const ratios: Report['ratios'] = {};
    const mc = runtimes.find((r) => r.name === 'mycontainer');
    if (mc) for (const o of runtimes.filter((r) => r.name !== 'mycontainer')) {
      ratios[`mycontainer/${o.name}`] = {
        runMean: ratio(mc.run.mean, o.run.mean),
        runMedian: ratio(mc.run.median, o.run.median),
        runP95: ratio(mc.run.p95, o.run.p95),
        containersPerSecond: ratio(mc.containersPerSecond, o.containersPerSecond),
        cycleMean: ratio(mc.cycle.total.mean, o.cycle.total.mean),
        cycleMedian: ratio(mc.cycle.total.median, o.cycle.total.median),
        execMean: ratio(mc.exec.mean, o.exec.mean),
        execMedian: ratio(mc.exec.median, o.exec.median),
        execP95: ratio(mc.exec.p95, o.exec.p95),
        rssRun: ratio(mc.rss.runMB, o.rss.runMB),
        rssCli: ratio(mc.rss.cliMB, o.rss.cliMB),
        rssInit: ratio(mc.rss.initMB, o.rss.initMB),
      };
    }
    if (mc) ratios['mycontainer/node-e-0'] = { runMean: ratio(mc.run.mean, floor.nodeMs.mean), rssCli: ratio(mc.rss.cliMB, floor.nodeRssMB) };
    const report: Report = {
      date,
      host: { kernel: os.release(), cpus: os.cpus().length, node: process.version },
      n,
      rssSamples,
      ociVersion: '1.0.2',
      floor,
      runtimes,
      ratios,
    };
    console.log(render(report));
    const dir = path.join(REPO, 'bench', 'results');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `runtime-${date.replace(/:/g, '-').replace(/\..*$/, '')}.json`);
    fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
    console.log(`\nresults: ${path.relative(REPO, file)}`);
  } finally {
    cleanup();
  }
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  try {
    if (argv[0] === '--worker') worker(argv);
    else if (argv[0] === '--cleanup') cleanupRuntime(argv[1] as RuntimeName);
    else main();
  } catch (e) {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
}
