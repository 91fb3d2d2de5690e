// `exec`: another process in a running container. The runtime steps into
// the container's namespaces (but the mount one) and spawns an exec init
// from a private copy of its own mount namespace, where the init binary is
// sealed; the init joins the container's mount namespace itself, then drops
// privileges and execs (see runtime/README.md).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { StateDir, liveStatus, ociState } from './state';
import { debugLine } from './log';
import { spawnInit, type SpawnedInit } from './linux/spawn';
import { managerFromPaths } from './cgroups';
import { subCgroupPaths } from './cgroups/paths';
import { InitExecutor } from './init/executor';
import { writeExecProgram } from './init/program';
import { SECCOMP_LISTENER, processHostView } from './linux/process';
import { sendListener } from './linux/seccomp-notify';
import { ProgramBuilder } from './sys/program';
import { OwnConsole, connectConsole } from './console';
import { RuntimeError, messageOf, wrap } from './sys/errors';
import * as sys from './sys/libc';
import { CLONE } from './sys/constants';
import { extraFds, forwardSignals, initCommand, initStdio, writePidFile, type RuntimeContext } from './container';

export interface ExecOptions {
  id: string;
  preserveFds?: number;
  consoleSocket?: string | undefined;
  /** A process.json (OCI `process`) replacing the container's. */
  processFile?: string | undefined;
  args: string[];
  tty: boolean;
  /**
   * Return once the process is set up; this process exits right after (a
   * CLI), and the process execs only then, so that we never reap it.
   */
  detach: boolean;
  pidFile?: string | undefined;
  cwd?: string | undefined;
  env: string[];
  /** "uid[:gid]" */
  user?: string | undefined;
  caps: string[];
  noNewPrivs?: boolean | undefined;
  additionalGids: number[];
  /** --ignore-paused: exec into a paused container; the process runs once it is resumed. */
  ignorePaused?: boolean;
  /** --cgroup: "[controller[,controller]:]path" sub-cgroups of the container's to run in. */
  cgroups?: string[];
  /** The process's fds 0-2, when not ours (a server's pipes); ignored with a terminal. */
  stdio?: [number | 'ignore', number | 'ignore', number | 'ignore'];
  /** A connected socket for the pty master (a server's own end of a socketpair), instead of consoleSocket. */
  consoleFd?: number;
  /** Told the process's pid once it runs (a server enforcing a timeout kills it). */
  onStarted?: (pid: number) => void;
}

type ProcessSpec = NonNullable<import('./spec/generated/config').Spec['process']>;

/** The process an exec runs: the container's, with the command line's changes (as runc exec). */
export function execProcess(base: ProcessSpec | undefined, opts: ExecOptions): ProcessSpec {
  if (opts.processFile) {
    let text: string;
    try {
      text = fs.readFileSync(opts.processFile, 'utf8');
    } catch (e) {
      throw new RuntimeError(`cannot read --process ${opts.processFile}: ${messageOf(e)}`, { cause: e });
    }
    try {
      return JSON.parse(text) as ProcessSpec;
    } catch (e) {
      throw new RuntimeError(`cannot parse --process ${opts.processFile}: ${messageOf(e)}`, { code: 'EINVAL', cause: e });
    }
  }
  if (opts.args.length === 0) throw new RuntimeError('exec: a command is required (or --process)', { code: 'EINVAL' });
  const p: ProcessSpec = JSON.parse(JSON.stringify(base ?? { cwd: '/' })) as ProcessSpec;
  p.args = opts.args;
  p.terminal = opts.tty;
  if (opts.cwd) p.cwd = opts.cwd;
  const env = new Map((p.env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e] as [string, string]));
  for (const e of opts.env) {
    if (!e.includes('=')) throw new RuntimeError(`exec --env "${e}": must be NAME=VALUE`, { code: 'EINVAL' });
    env.set(e.slice(0, e.indexOf('=')), e);
  }
  p.env = [...env.values()];
  if (opts.user) {
    const m = /^(\d+)(?::(\d+))?$/.exec(opts.user);
    if (!m) throw new RuntimeError(`exec --user "${opts.user}": must be UID[:GID] (numbers)`, { code: 'EINVAL' });
    p.user = { ...(p.user ?? {}), uid: Number(m[1]), gid: m[2] !== undefined ? Number(m[2]) : 0 };
  }
  if (opts.additionalGids.length > 0) p.user = { ...(p.user ?? { uid: 0, gid: 0 }), additionalGids: opts.additionalGids };
  if (opts.caps.length > 0) {
    const caps = { ...(p.capabilities ?? {}) };
    for (const set of ['bounding', 'effective', 'permitted', 'inheritable', 'ambient'] as const) {
      caps[set] = [...new Set([...(caps[set] ?? []), ...opts.caps.map((c) => c.toUpperCase())])];
    }
    p.capabilities = caps;
  }
  if (opts.noNewPrivs !== undefined) p.noNewPrivileges = opts.noNewPrivs;
  return p;
}

const EXEC_NAMESPACES: [string, string, number][] = [
  ['pid', 'pid', CLONE.NEWPID],
  ['network', 'net', CLONE.NEWNET],
  ['ipc', 'ipc', CLONE.NEWIPC],
  ['uts', 'uts', CLONE.NEWUTS],
  ['cgroup', 'cgroup', CLONE.NEWCGROUP],
];

/** `exec`: run another process in a running container. Returns its exit status (0 with --detach). */
export async function exec(ctx: RuntimeContext, opts: ExecOptions): Promise<number> {
  const sd = new StateDir(ctx.root, opts.id);
  const rec = sd.read();
  const status = liveStatus(rec, sd);
  // A process joining a frozen cgroup freezes too: only with --ignore-paused,
  // for a caller that resumes the container (as runc).
  if (status === 'paused' && !opts.ignorePaused) {
    throw new RuntimeError(`cannot exec in container "${opts.id}": cannot exec in a paused container (resume it, or pass --ignore-paused)`, { code: 'EINVAL' });
  }
  if (status !== 'running' && status !== 'created' && status !== 'paused') {
    throw new RuntimeError(`cannot exec in container "${opts.id}": it is ${status}`, { code: 'EINVAL' });
  }
  const processSpec = execProcess(rec.config.process, opts);
  const warnings: string[] = [];
  const { planProcess } = require('./linux/process') as typeof import('./linux/process');
  const processPlan = planProcess({ ociVersion: rec.ociVersion, process: processSpec, linux: rec.config.seccomp ? { seccomp: rec.config.seccomp } : {} }, warnings);
  for (const w of warnings) ctx.warn(w);
  // --cgroup: checked before anything is made.
  if (!rec.cgroup && (opts.cgroups ?? []).length > 0) throw new RuntimeError(`cannot exec in container "${opts.id}": exec --cgroup: the container has no cgroup`, { code: 'EINVAL' });
  const cgroupPaths = rec.cgroup ? subCgroupPaths(rec.cgroup.paths, opts.cgroups ?? []) : null;
  processPlan.preserveFds = extraFds(opts.preserveFds);
  const terminal = processSpec.terminal === true;
  if (terminal && opts.detach && !opts.consoleSocket) throw new RuntimeError('exec --tty --detach: --console-socket is required', { code: 'EINVAL' });
  const own = terminal && !opts.consoleSocket && opts.consoleFd === undefined ? new OwnConsole() : null;
  const consoleFd = !terminal ? null : own ? own.theirs : opts.consoleFd !== undefined ? opts.consoleFd : opts.consoleSocket ? connectConsole(opts.consoleSocket) : null;

  // Join each namespace the container has of its own; the mount namespace is
  // joined by the exec init itself, from a copy of ours that holds its sealed binary.
  const ino = (p: string): number => fs.statSync(p).ino;
  const hasOwn = (type: string): boolean => ino(`/proc/${rec.pid}/ns/${type}`) !== ino(`/proc/self/ns/${type}`);
  const join = EXEC_NAMESPACES.filter(([, proc]) => hasOwn(proc)).map(([type, proc, flag]) => ({
    type: type as import('./sys/constants').NamespaceType,
    path: `/proc/${rec.pid}/ns/${proc}`,
    flag,
    why: `exec: join the container's ${type} namespace`,
  }));
  if (fs.existsSync(`/proc/${rec.pid}/ns/time`) && hasOwn('time')) ctx.warn('exec: the container\'s time namespace is not joined (needs native/ support)');
  const mountNamespace = hasOwn('mnt') ? `/proc/${rec.pid}/ns/mnt` : null;
  // A container with its own user namespace is joined through native/nsexec.
  const userns = hasOwn('user') ? `/proc/${rec.pid}/ns/user` : null;

  const sealDir = fs.mkdtempSync(path.join(sd.dir, 'exec-'));
  const [parentFd, childFd] = sys.socketpair('sync channel between the runtime and the exec init');
  let init: SpawnedInit;
  const cmd = initCommand();
  try {
    init = spawnInit({
      unshareFlags: CLONE.NEWNS, // a private copy of ours, only to hold the sealed init binary
      join,
      execPath: cmd.execPath,
      sealDir,
      args: cmd.args,
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      stdio: initStdio(childFd, consoleFd, processPlan.preserveFds ?? 0, opts.stdio),
      wait: !opts.detach,
      user: userns ? { path: userns, uidMap: '', gidMap: '' } : null,
    });
  } finally {
    fs.closeSync(childFd);
    if (consoleFd !== null && !own) fs.closeSync(consoleFd);
  }
  const channel = new InitExecutor(parentFd, 'exec');
  // runc's own --debug milestones, for those who grep for them (runc's exec.bats does).
  if (ctx.debug) debugLine(`nsexec container setup: exec init ${init.pid} is in the container's namespaces`);
  try {
    if (rec.cgroup && cgroupPaths) managerFromPaths(rec.cgroup.driver, cgroupPaths).addProcess(init.pid);
    const b = new ProgramBuilder();
    const listener = processPlan.seccomp?.listener;
    if (listener) channel.onPause(SECCOMP_LISTENER, (fd) => sendListener(listener, init.pid, fd, ociState(rec, 'running')));
    writeExecProgram(b, { mountNamespace, chroot: mountNamespace ? null : `/proc/${rec.pid}/root`, process: processPlan, console: terminal ? { size: processSpec.consoleSize ?? null } : null, handOff: opts.detach }, processHostView(init.pid));
    channel.run(b.take());
    if (ctx.debug) debugLine('child process in init(): the exec init runs its program');
    await channel.until('created');
    if (ctx.debug) debugLine('setns_init: about to exec');
    if (opts.pidFile) writePidFile(opts.pidFile, init.pid);
  } catch (e) {
    try {
      process.kill(init.pid, 'SIGKILL');
    } catch {
      // gone
    }
    init.release();
    channel.close();
    throw wrap(e, `cannot exec in container "${opts.id}"`);
  } finally {
    fs.rmSync(sealDir, { recursive: true, force: true });
  }
  if (opts.detach) channel.release();
  else channel.close();
  opts.onStarted?.(init.pid);
  if (opts.detach) {
    init.release();
    return 0;
  }
  const copying = own?.attach();
  const stopForwarding = forwardSignals(init.pid);
  const code = await init.exited;
  await copying;
  stopForwarding();
  return code;
}
