// runc's command line, over the library in runtime/. Each handler parses its
// flags into options and makes one library call.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ArgumentsCamelCase, CommandModule } from 'yargs';
import { debugLine, hasLog, logLine, programName, setLog } from '../log';
import { setTraceSink, formatTrace } from '../sys/trace';
import type { RuntimeContext } from '../container';
import { RuntimeError } from '../sys/errors';

interface Global {
  root: string;
  log?: string;
  logFormat: 'text' | 'json';
  debug: boolean;
}

function context(a: Global): RuntimeContext {
  setLog(a.log, a.logFormat);
  if (a.debug) {
    // runc's --debug lines (level=debug, to --log or stderr), then our trace:
    // to --log as more level=debug lines, else to stderr as "debug: ...".
    const argv = (a as unknown as { _: unknown[] })._.map(String);
    debugLine(`${programName()} ${argv.join(' ')}: root ${path.resolve(a.root)}, log ${a.log ?? '/dev/stderr'} (${a.logFormat})`);
    process.once('exit', (code) => debugLine(`${programName()} ${argv[0] ?? ''}: exit status ${code}`));
    setTraceSink((e) => {
      const line = formatTrace(e);
      if (a.log) logLine('debug', line);
      else process.stderr.write(`debug: ${line}\n`);
    });
  }
  return {
    root: path.resolve(a.root),
    debug: a.debug,
    // As runc's logrus: to --log when given, else to stderr.
    warn: (msg) => {
      if (hasLog()) logLine('warning', msg);
      else process.stderr.write(`${programName()}: warning: ${msg}\n`);
    },
  };
}

// Loaded lazily: `spec` and `--help` should not pay for koffi and the runtime.
const lib = (): typeof import('../container') => require('../container') as typeof import('../container');

type Args<T> = ArgumentsCamelCase<Global & T>;

const spec: CommandModule<Global, Global & { bundle: string; rootless: boolean }> = {
  command: 'spec',
  describe: 'write a new config.json (runc spec)',
  builder: (y) =>
    y.option('bundle', { alias: 'b', type: 'string', default: '.', describe: 'bundle directory' })
      .option('rootless', { type: 'boolean', default: false }) as never,
  handler: async (a: Args<{ bundle: string; rootless: boolean }>) => {
    const { defaultSpec, rootlessSpec } = require('../spec/default') as typeof import('../spec/default');
    const file = path.join(a.bundle, 'config.json');
    if (fs.existsSync(file)) throw new RuntimeError(`cannot write ${file}: file exists`, { code: 'EEXIST' });
    const rootless = specRootless(process.argv.slice(2));
    // runc maps the effective ids.
    const spec = rootless ? rootlessSpec(defaultSpec(), process.geteuid?.() ?? 0, process.getegid?.() ?? 0) : defaultSpec();
    fs.writeFileSync(file, JSON.stringify(spec, null, '\t') + '\n');
  },
};

/**
 * `spec --rootless`: the flag after the command. yargs cannot tell it from
 * the global `--rootless value` (runc's, before the command), which it
 * parses it as (and loses), so the command line is read directly.
 */
export function specRootless(argv: readonly string[]): boolean {
  const at = argv.indexOf('spec');
  return at >= 0 && argv.slice(at + 1).some((t) => t === '--rootless' || t === '--rootless=true');
}

interface CreateArgs {
  id: string;
  preserveFds: number;
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  noPivot: boolean;
}

const createFlags = <T>(y: import('yargs').Argv<T>): import('yargs').Argv<T & CreateArgs> =>
  y.positional('id', { type: 'string', demandOption: true, describe: 'container id' })
    .option('bundle', { alias: 'b', type: 'string', default: '.', describe: 'bundle directory' })
    .option('pid-file', { type: 'string', describe: 'write the init pid here' })
    .option('console-socket', { type: 'string', describe: 'unix socket to send the pty master to' })
    .option('no-pivot', { type: 'boolean', default: false, describe: 'use chroot (MS_MOVE) instead of pivot_root' })
    .option('no-new-keyring', { type: 'boolean', default: false, hidden: true })
    .option('preserve-fds', { type: 'number', default: 0, describe: 'pass N more fds (3..) to the process' }) as never;

const create: CommandModule<Global, Global & CreateArgs> = {
  command: 'create <id>',
  describe: 'create a container (its process waits for start)',
  builder: createFlags,
  handler: async (a: Args<CreateArgs>) => {
    await lib().create(context(a), { id: a.id, bundle: a.bundle, pidFile: a.pidFile, consoleSocket: a.consoleSocket, noPivot: a.noPivot, preserveFds: a.preserveFds });
  },
};

const run: CommandModule<Global, Global & CreateArgs & { detach: boolean; keep: boolean }> = {
  command: 'run <id>',
  describe: 'create and start a container; wait for it unless --detach',
  builder: (y) =>
    createFlags(y)
      .option('detach', { alias: 'd', type: 'boolean', default: false })
      .option('keep', { type: 'boolean', default: false, describe: 'do not delete the container after it exits' })
      .option('no-subreaper', { type: 'boolean', default: false, hidden: true }) as never,
  handler: async (a: Args<CreateArgs & { detach: boolean; keep: boolean }>) => {
    // --keep with --detach changes nothing: a detached run never deletes.
    process.exitCode = await lib().run(context(a), { id: a.id, bundle: a.bundle, pidFile: a.pidFile, consoleSocket: a.consoleSocket, noPivot: a.noPivot, detach: a.detach, preserveFds: a.preserveFds, keep: a.keep });
  },
};

const idOnly = (command: string, describe: string, fn: (ctx: RuntimeContext, id: string) => unknown): CommandModule<Global, Global & { id: string }> => ({
  command: `${command} <id>`,
  describe,
  builder: (y) => y.positional('id', { type: 'string', demandOption: true }) as never,
  handler: async (a: Args<{ id: string }>) => {
    await fn(context(a), a.id);
  },
});

const start = idOnly('start', 'start a created container', (ctx, id) => lib().start(ctx, id));

// runc's CRIU verbs: listed, with help, and refused with the reason.
const noCriu = (verb: string) => (): never => {
  throw new RuntimeError(`${verb}: not supported: mycontainer-runtime has no CRIU integration`, { code: 'ENOTSUP' });
};
const checkpoint = idOnly('checkpoint', 'checkpoint a running container (not supported: no CRIU integration)', noCriu('checkpoint'));
const restore = idOnly('restore', 'restore a container from a checkpoint (not supported: no CRIU integration)', noCriu('restore'));

const state = idOnly('state', 'print the state of a container as JSON', (ctx, id) => {
  process.stdout.write(JSON.stringify(lib().state(ctx, id), null, 2) + '\n');
});

const kill: CommandModule<Global, Global & { id: string; signal: string; all: boolean }> = {
  command: 'kill <id> [signal]',
  describe: 'send a signal (default SIGTERM) to the container',
  builder: (y) =>
    y.positional('id', { type: 'string', demandOption: true })
      .positional('signal', { type: 'string', default: 'SIGTERM' })
      .option('all', { alias: 'a', type: 'boolean', default: false, describe: 'signal every process in the container' }) as never,
  handler: async (a: Args<{ id: string; signal: string; all: boolean }>) => {
    lib().kill(context(a), a.id, String(a.signal), a.all);
  },
};

const del: CommandModule<Global, Global & { id: string; force: boolean }> = {
  command: 'delete <id>',
  aliases: ['rm'],
  describe: 'delete a stopped container (--force: any container)',
  builder: (y) => y.positional('id', { type: 'string', demandOption: true }).option('force', { alias: 'f', type: 'boolean', default: false }) as never,
  handler: async (a: Args<{ id: string; force: boolean }>) => {
    lib().remove(context(a), a.id, a.force);
  },
};

const list: CommandModule<Global, Global & { format: string; quiet: boolean }> = {
  command: 'list',
  aliases: ['ls'],
  describe: 'list containers',
  builder: (y) =>
    y.option('format', { alias: 'f', choices: ['table', 'json'], default: 'table' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false }) as never,
  handler: async (a: Args<{ format: string; quiet: boolean }>) => {
    const rows = lib().list(context(a));
    if (a.quiet) {
      for (const r of rows) process.stdout.write(`${String(r['id'])}\n`);
    } else if (a.format === 'json') {
      process.stdout.write(JSON.stringify(rows) + '\n');
    } else {
      const table = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...rows.map((r) => [r['id'], r['pid'], r['status'], r['bundle'], r['created'], r['owner']].map(String))];
      const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
      for (const row of table) process.stdout.write(row.map((c, i) => c.padEnd(widths[i]! + 3)).join('').trimEnd() + '\n');
    }
  },
};

interface ExplainArgs {
  bundle: string;
  noPivot: boolean;
  evidence: boolean;
  id?: string;
}

const explain: CommandModule<Global, Global & ExplainArgs> = {
  command: 'explain [id]',
  describe: 'print what create would do for a bundle, step by step, without doing it (--evidence ID: do it, and show what the kernel shows)',
  builder: (y) =>
    y.positional('id', { type: 'string', describe: 'with --evidence: the id of the container to run' })
      .option('bundle', { alias: 'b', type: 'string', default: '.', describe: 'bundle directory' })
      .option('no-pivot', { type: 'boolean', default: false, describe: 'use chroot (MS_MOVE) instead of pivot_root' })
      .option('evidence', {
        type: 'boolean',
        default: false,
        describe: 'create the container ID, read under each step what the kernel shows (namespaces, mounts, cgroup files, hostname, sysctls, rlimits, ids, capabilities, no_new_privs, seccomp), start it, wait, delete it; exit 1 if any step (✗) does not match the plan',
      }) as never,
  handler: async (a: Args<ExplainArgs>) => {
    const ex = require('../explain') as typeof import('../explain');
    if (!a.evidence) {
      if (a.id !== undefined) throw new RuntimeError(`explain: a container id ("${a.id}") is only taken with --evidence`, { code: 'EINVAL' });
      process.stdout.write(ex.explainBundle(a.bundle, { noPivot: a.noPivot }).join('\n') + '\n');
      return;
    }
    if (a.id === undefined) throw new RuntimeError('explain --evidence: a container id is required (explain --evidence --bundle DIR ID)', { code: 'EINVAL' });
    const r = await ex.explainWithEvidence(context(a), {
      id: a.id,
      bundle: a.bundle,
      noPivot: a.noPivot,
      beforeStart: () => process.stdout.write(`== the container's output (${a.id})\n`),
    });
    process.stdout.write(r.lines.join('\n') + '\n');
    if (r.failures > 0) {
      process.stderr.write(`${programName()}: explain --evidence: ${r.failures} step(s) marked ✗ do not match the plan\n`);
      process.exitCode = 1;
    }
  },
};

const pause = idOnly('pause', 'freeze every process of the container', (ctx, id) => lib().pause(ctx, id, true));
const resume = idOnly('resume', 'thaw a paused container', (ctx, id) => lib().pause(ctx, id, false));

const ps: CommandModule<Global, Global & { id: string; format: string; psArgs: string[] }> = {
  command: 'ps <id> [psArgs..]',
  describe: 'list the processes of a container (ps arguments after the id)',
  builder: (y) =>
    y.positional('id', { type: 'string', demandOption: true })
      .positional('psArgs', { type: 'string', array: true, default: [] })
      .option('format', { alias: 'f', choices: ['table', 'json'], default: 'table' })
      .parserConfiguration({ 'unknown-options-as-args': true }) as never,
  handler: async (a: Args<{ id: string; format: string; psArgs: string[] }>) => {
    const pids = lib().pids(context(a), a.id);
    if (a.format === 'json') {
      process.stdout.write(JSON.stringify(pids) + '\n');
      return;
    }
    // As runc: run ps with the given arguments (default -ef) and keep the header and our pids.
    const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
    const args = a.psArgs.length > 0 ? a.psArgs.map(String) : ['-ef'];
    const out = execFileSync('ps', args, { encoding: 'utf8' }).split('\n');
    const header = out[0] ?? '';
    const col = header.trim().split(/\s+/).indexOf('PID');
    if (col < 0) throw new RuntimeError(`ps ${args.join(' ')}: no PID column in its output`, { code: 'EINVAL' });
    const keep = new Set(pids.map(String));
    process.stdout.write([header, ...out.slice(1).filter((l) => keep.has(l.trim().split(/\s+/)[col] ?? ''))].join('\n') + '\n');
  },
};

interface UpdateArgs {
  id: string;
  resources?: string;
  memory?: string;
  memoryReservation?: string;
  memorySwap?: string;
  cpuShare?: number;
  cpuQuota?: number;
  cpuPeriod?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: number;
  blkioWeight?: number;
  cpuRtPeriod?: number;
  cpuRtRuntime?: number;
  kernelMemory?: string;
  kernelMemoryTcp?: string;
  l3CacheSchema?: string;
  memBwSchema?: string;
}

/** 64m, 1g, 1024 → bytes; -1 stays -1 (unlimited). */
function bytes(v: string, flag: string): number {
  const m = /^(-1|\d+)([kmg]?)b?$/i.exec(v.trim());
  if (!m) throw new RuntimeError(`update --${flag}: invalid size "${v}"`, { code: 'EINVAL' });
  const n = Number(m[1]);
  return n * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? '').toLowerCase()] ?? 1);
}

const update: CommandModule<Global, Global & UpdateArgs> = {
  command: 'update <id>',
  describe: 'change the resource limits of a running container',
  builder: (y) =>
    y.positional('id', { type: 'string', demandOption: true })
      .option('resources', { alias: 'r', type: 'string', describe: 'a linux.resources JSON file ("-" for stdin)' })
      .option('memory', { type: 'string' })
      .option('memory-reservation', { type: 'string' })
      .option('memory-swap', { type: 'string' })
      // runc's flag is --cpu-share; --cpu-shares as docker spells it.
      .option('cpu-share', { alias: 'cpu-shares', type: 'number' })
      .option('cpu-rt-period', { type: 'number', describe: 'realtime period (us), cgroup v1' })
      .option('cpu-rt-runtime', { type: 'number', describe: 'realtime runtime (us), cgroup v1' })
      .option('kernel-memory', { type: 'string', hidden: true })
      .option('kernel-memory-tcp', { type: 'string', hidden: true })
      .option('l3-cache-schema', { type: 'string', describe: 'Intel RDT (not supported)' })
      .option('mem-bw-schema', { type: 'string', describe: 'Intel RDT (not supported)' })
      .option('cpu-quota', { type: 'number' })
      .option('cpu-period', { type: 'number' })
      .option('cpuset-cpus', { type: 'string' })
      .option('cpuset-mems', { type: 'string' })
      .option('pids-limit', { type: 'number' })
      .option('blkio-weight', { type: 'number' }) as never,
  handler: async (a: Args<UpdateArgs>) => {
    type R = import('../cgroups/manager').LinuxResources;
    if (a.l3CacheSchema !== undefined || a.memBwSchema !== undefined) {
      throw new RuntimeError(`cannot update container "${a.id}": --l3-cache-schema and --mem-bw-schema need Intel RDT (resctrl), which mycontainer-runtime does not manage`, { code: 'ENOTSUP' });
    }
    // runc 1.1 ignores kernel memory limits (the kernel dropped them); so do we, aloud.
    if (a.kernelMemory !== undefined || a.kernelMemoryTcp !== undefined) context(a).warn('--kernel-memory and --kernel-memory-tcp are ignored: kernel memory limits are deprecated in the kernel');
    let r: R = {};
    if (a.resources) r = JSON.parse(fs.readFileSync(a.resources === '-' ? 0 : a.resources, 'utf8')) as R;
    const memory = { ...(r.memory ?? {}) };
    if (a.memory !== undefined) memory.limit = bytes(a.memory, 'memory');
    if (a.memoryReservation !== undefined) memory.reservation = bytes(a.memoryReservation, 'memory-reservation');
    if (a.memorySwap !== undefined) memory.swap = bytes(a.memorySwap, 'memory-swap');
    if (Object.keys(memory).length) r.memory = memory;
    const cpu = { ...(r.cpu ?? {}) };
    if (a.cpuShare !== undefined) cpu.shares = a.cpuShare;
    if (a.cpuRtPeriod !== undefined) cpu.realtimePeriod = a.cpuRtPeriod;
    if (a.cpuRtRuntime !== undefined) cpu.realtimeRuntime = a.cpuRtRuntime;
    if (a.cpuQuota !== undefined) cpu.quota = a.cpuQuota;
    if (a.cpuPeriod !== undefined) cpu.period = a.cpuPeriod;
    if (a.cpusetCpus !== undefined) cpu.cpus = a.cpusetCpus;
    if (a.cpusetMems !== undefined) cpu.mems = a.cpusetMems;
    if (Object.keys(cpu).length) r.cpu = cpu;
    if (a.pidsLimit !== undefined) r.pids = { limit: a.pidsLimit };
    if (a.blkioWeight !== undefined) r.blockIO = { ...(r.blockIO ?? {}), weight: a.blkioWeight };
    lib().update(context(a), a.id, r);
  },
};

const events: CommandModule<Global, Global & { id: string; stats: boolean; interval: number }> = {
  command: 'events <id>',
  describe: 'print container events; --stats prints usage once',
  builder: (y) =>
    y.positional('id', { type: 'string', demandOption: true })
      .option('stats', { type: 'boolean', default: false })
      .option('interval', { type: 'number', default: 5, describe: 'seconds between stats' }) as never,
  handler: async (a: Args<{ id: string; stats: boolean; interval: number }>) => {
    const ctx = context(a);
    const { formatStatsEvent } = require('../cgroups/stats') as typeof import('../cgroups/stats');
    const print = (): void => {
      process.stdout.write(formatStatsEvent(lib().stats(ctx, a.id)) + '\n');
    };
    print();
    if (a.stats) return;
    // Without --stats, runc streams stats every interval and an "oom" event
    // each time the OOM killer strikes, until the container stops (or goes).
    let ooms = lib().oomKills(ctx, a.id);
    let next = Date.now() + a.interval * 1000;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        try {
          if ((lib().state(ctx, a.id) as { status: string }).status === 'stopped') throw new Error('stopped');
          const now = lib().oomKills(ctx, a.id);
          if (now > ooms) process.stdout.write(JSON.stringify({ type: 'oom', id: a.id }) + '\n');
          ooms = now;
          if (Date.now() >= next) {
            next += a.interval * 1000;
            print();
          }
        } catch {
          clearInterval(timer);
          resolve();
        }
      }, 200);
    });
  },
};

const featuresCmd: CommandModule<Global, Global> = {
  command: 'features',
  describe: 'print what this runtime supports (runtime-spec features JSON)',
  handler: async () => {
    const { features } = require('../features') as typeof import('../features');
    process.stdout.write(JSON.stringify(features(), null, 4) + '\n');
  },
};

interface ExecArgs {
  id: string;
  preserveFds: number;
  command: string[];
  process?: string;
  tty: boolean;
  detach: boolean;
  pidFile?: string;
  consoleSocket?: string;
  cwd?: string;
  env?: string | string[];
  user?: string;
  cap?: string | string[];
  noNewPrivs?: boolean;
  additionalGids?: number | number[];
  cgroup?: string | string[];
  ignorePaused?: boolean;
}

/** A flag given any number of times: yargs makes one value a scalar. */
function many<T>(v: T | T[] | undefined): T[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

const exec: CommandModule<Global, Global & ExecArgs> = {
  // Options go before the id (runc's order); everything after it is the
  // command, flags included: cli/main.ts inserts "--" after the id.
  command: 'exec <id> [command..]',
  describe: 'run a process in a running container',
  builder: (y) =>
    y.positional('id', { type: 'string', demandOption: true })
      .positional('command', { type: 'string', array: true, default: [] })
      .option('process', { alias: 'p', type: 'string', describe: 'process.json to run' })
      .option('tty', { alias: 't', type: 'boolean', default: false })
      .option('detach', { alias: 'd', type: 'boolean', default: false })
      .option('pid-file', { type: 'string' })
      .option('console-socket', { type: 'string' })
      .option('cwd', { type: 'string' })
      // Repeated flags, one value each (runc's StringSliceFlag): `array` would also eat the id after them.
      .option('env', { alias: 'e', type: 'string' })
      .option('user', { alias: 'u', type: 'string', describe: 'UID[:GID]' })
      .option('additional-gids', { alias: 'g', type: 'number' })
      .option('cap', { alias: 'c', type: 'string' })
      .option('ignore-paused', { type: 'boolean', describe: 'allow exec in a paused container (the process starts once it is resumed)' })
      .option('cgroup', { type: 'string', describe: 'run in an existing sub-cgroup: [controller[,controller]:]path (repeatable)' })
      .option('no-new-privs', { type: 'boolean' })
      .option('preserve-fds', { type: 'number', default: 0, describe: 'pass N more fds (3..) to the process' }) as never,
  handler: async (a: Args<ExecArgs>) => {
    const { exec: execIn } = require('../exec') as typeof import('../exec');
    // runc exits 255 when exec itself fails, so that callers can tell it from the process's own status.
    process.exitCode = await execIn(context(a), {
      id: a.id,
      preserveFds: a.preserveFds,
      processFile: a.process,
      // After the "--" that splitExecArgv inserted, yargs leaves the command in `_`.
      args: [...a.command, ...a._.slice(1)].map(String),
      tty: a.tty,
      detach: a.detach,
      pidFile: a.pidFile,
      consoleSocket: a.consoleSocket,
      cwd: a.cwd,
      env: many(a.env).map(String),
      user: a.user,
      caps: many(a.cap).map(String),
      noNewPrivs: a.noNewPrivs,
      additionalGids: many(a.additionalGids).map(Number),
      cgroups: many(a.cgroup).map(String),
      ignorePaused: a.ignorePaused,
    }).catch((e: unknown) => {
      throw Object.assign(e instanceof Error ? e : new Error(String(e)), { exitCode: 255 });
    });
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const runtimeCommands: CommandModule<any, any>[] = [spec, create, start, run, state, kill, del, list, explain, pause, resume, ps, update, events, featuresCmd, exec, checkpoint, restore];

/** Flags of `exec` that take no value: the rest take one (see splitExecArgv). */
const EXEC_BOOLEANS = new Set(['-t', '--tty', '-d', '--detach', '--no-new-privs', '--ignore-paused', '--debug', '--systemd-cgroup', '--help', '-h', '--no-subreaper']);
const GLOBAL_WITH_VALUE = new Set(['--root', '--log', '--log-format', '--criu', '--rootless']);

/**
 * runc's `exec [options] <id> <command> [args...]`: the command's own flags
 * (`sh -c`) must not be read as ours. Inserts "--" after the id.
 */
export function splitExecArgv(argv: string[]): string[] {
  let i = 0;
  // global options before the command name
  while (i < argv.length && argv[i] !== 'exec') {
    const t = argv[i] as string;
    i += GLOBAL_WITH_VALUE.has(t) ? 2 : 1;
  }
  if (i >= argv.length) return argv;
  for (let j = i + 1; j < argv.length; j++) {
    const t = argv[j] as string;
    if (t === '--') return argv;
    if (!t.startsWith('-') || t === '-') return [...argv.slice(0, j + 1), '--', ...argv.slice(j + 1)];
    if (!t.includes('=') && !EXEC_BOOLEANS.has(t) && !/^-[td]+$/.test(t)) j++; // its value
  }
  return argv;
}
