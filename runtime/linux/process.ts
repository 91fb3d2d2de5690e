// The container process: what `process` asks for, as a plan, and the last
// steps the init takes before execve(2): rlimits, oom score, umask, cwd,
// capabilities and credentials, no_new_privs, signals, fds.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Spec } from '../spec/generated/config';
import { PR, RLIMITS } from '../sys/constants';
import { RuntimeError } from '../sys/errors';
import type { ProgramBuilder } from '../sys/program';
import { emitApplyCapabilities, emitDropBounding, lastCap, planCapabilities, type CapabilityPlan } from './capabilities';
import { compileSeccomp, type SeccompPlan } from './seccomp';

export interface ProcessPlan {
  args: string[];
  env: string[];
  cwd: string;
  terminal: boolean;
  uid: number;
  gid: number;
  additionalGids: number[];
  umask: number | null;
  rlimits: { type: string; resource: number; soft: string; hard: string }[];
  capabilities: CapabilityPlan;
  noNewPrivileges: boolean;
  /** Already clamped to what this host allows (see planProcess). */
  oomScoreAdj: number | null;
  /** --preserve-fds / LISTEN_FDS: fds 3.. the process keeps (the init holds them from PRESERVED_FDS_AT). */
  preserveFds?: number;
  /** linux.seccomp, compiled to BPF by the runtime (seccomp.ts); loaded by the init. */
  seccomp: SeccompPlan | null;
  /** process.apparmorProfile: applied at execve when AppArmor is enabled. */
  apparmorProfile: string | null;
}

/** Where the init receives preserved fds, clear of its own 3 (sync), 4 (console), 5 (nsexec). */
export const PRESERVED_FDS_AT = 10;

export function planProcess(spec: Spec, warnings: string[]): ProcessPlan {
  const p = spec.process;
  if (!p) throw new RuntimeError('process: is required to create a container', { code: 'EINVAL' });
  if (!p.args || p.args.length === 0) throw new RuntimeError('process.args: must name the program to run', { code: 'EINVAL' });
  if (!path.isAbsolute(p.cwd)) throw new RuntimeError(`process.cwd: must be an absolute path, got "${p.cwd}"`, { code: 'EINVAL' });
  const seen = new Set<string>();
  const rlimits = (p.rlimits ?? []).map((r, i) => {
    const resource = RLIMITS[r.type];
    if (resource === undefined) throw new RuntimeError(`process.rlimits[${i}].type: unknown rlimit "${r.type}"`, { code: 'EINVAL' });
    if (seen.has(r.type)) throw new RuntimeError(`process.rlimits[${i}].type: "${r.type}" is set twice`, { code: 'EINVAL' });
    seen.add(r.type);
    if (r.soft > r.hard) throw new RuntimeError(`process.rlimits[${i}]: soft limit ${r.soft} is above hard limit ${r.hard}`, { code: 'EINVAL' });
    return { type: r.type, resource, soft: String(r.soft), hard: String(r.hard) };
  });
  return {
    args: p.args,
    env: p.env ?? [],
    cwd: p.cwd,
    terminal: p.terminal ?? false,
    uid: p.user?.uid ?? 0,
    gid: p.user?.gid ?? 0,
    additionalGids: p.user?.additionalGids ?? [],
    umask: p.user?.umask ?? null,
    rlimits,
    capabilities: planCapabilities(p.capabilities, warnings),
    noNewPrivileges: p.noNewPrivileges ?? false,
    oomScoreAdj: p.oomScoreAdj === undefined ? null : clampOomScoreAdj(p.oomScoreAdj, warnings),
    seccomp: spec.linux?.seccomp ? compileSeccomp(spec.linux.seccomp, warnings) : null,
    apparmorProfile: p.apparmorProfile || null,
  };
}

/**
 * Without CAP_SYS_RESOURCE the kernel refuses to lower oom_score_adj below
 * our own (EACCES). containerd clamps it (restrict_oom_score_adj); so do we,
 * with a warning.
 */
export function clampOomScoreAdj(wanted: number, warnings: string[]): number {
  let current = 0;
  try {
    current = Number(fs.readFileSync('/proc/self/oom_score_adj', 'utf8').trim());
  } catch {
    return wanted;
  }
  if (wanted < current && !hasCapSysResource()) {
    warnings.push(`process.oomScoreAdj: ${wanted} is below the runtime's own ${current} and CAP_SYS_RESOURCE is missing; using ${current}`);
    return current;
  }
  return wanted;
}

function hasCapSysResource(): boolean {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const m = /^CapEff:\s*([0-9a-f]+)/m.exec(status);
  return m ? ((BigInt('0x' + m[1]) >> 24n) & 1n) === 1n : false;
}

/**
 * The PATH lookup of process.args[0], done by the init after pivot_root,
 * like execvp: the candidates in order, and what to say when none is an
 * executable file. The wording matters: podman maps "no such file or
 * directory" and "executable file not found" to exit 127, "permission
 * denied" to 126, as with runc.
 */
export function emitFindExecutable(b: ProgramBuilder, args0: string, env: readonly string[]): void {
  const why = 'process.args[0]';
  if (args0.includes('/')) {
    b.findExec([args0], {
      why,
      on: [
        { on: 'EACCES', to: 'fail', message: `process.args[0]: exec "${args0}": permission denied (not an executable file)` },
        { on: 'ENOENT', to: 'fail', message: `process.args[0]: exec "${args0}": stat ${args0}: no such file or directory` },
      ],
    });
    return;
  }
  const pathVar = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  const notFound = `process.args[0]: "${args0}": executable file not found in $PATH (${pathVar})`;
  b.findExec(pathVar.split(':').map((dir) => path.posix.join(dir || '.', args0)), { why, on: [{ on: 'any', to: 'fail', message: notFound }] });
}

/** What the runtime reads on the host for the last steps. */
export interface ProcessHostView {
  /** False in a user namespace whose gid map was written unprivileged (/proc/PID/setgroups "deny"). */
  setgroupsAllowed: boolean;
  /** The highest capability the kernel knows. */
  lastCap: number;
  /** Where the AppArmor exec profile is written; null when the host has no AppArmor. */
  apparmorAttr: string | null;
}

/** The host's answers for the init PID (which must have its id maps written). */
export function processHostView(pid: number): ProcessHostView {
  let setgroupsAllowed = true;
  try {
    setgroupsAllowed = fs.readFileSync(`/proc/${pid}/setgroups`, 'utf8').trim() !== 'deny';
  } catch {
    // kernels before 3.19 have no such file
  }
  const apparmor = fs.existsSync('/sys/kernel/security/apparmor');
  return {
    setgroupsAllowed,
    lastCap: lastCap(),
    apparmorAttr: !apparmor ? null : fs.existsSync('/proc/self/attr/apparmor/exec') ? '/proc/self/attr/apparmor/exec' : '/proc/self/attr/exec',
  };
}

/**
 * The last steps before execve, in the init. The order matters:
 * rlimits and oom score need privileges we are about to drop; the bounding
 * set needs CAP_SETPCAP, so it goes before setuid; KEEPCAPS keeps the
 * permitted set across setuid; capset comes after, then no_new_privs.
 */
export function emitFinalizeProcess(b: ProgramBuilder, plan: ProcessPlan, host: ProcessHostView): void {
  for (const r of plan.rlimits) b.setrlimit(r.resource, r.type, BigInt(r.soft), BigInt(r.hard), { why: `process.rlimits ${r.type}` });
  if (plan.oomScoreAdj !== null) b.writeFile('/proc/self/oom_score_adj', String(plan.oomScoreAdj), { why: 'process.oomScoreAdj' });
  if (plan.umask !== null) b.umask(plan.umask, { why: 'process.user.umask' });
  // The runc CVE-2024-21626 lesson: make sure no fd of ours leaks into the
  // container, and chdir only after every host fd is closed-on-exec.
  // Preserved fds move down to 3.. (the init moved its channel out of the way).
  const keep = plan.preserveFds ?? 0;
  for (let k = 0; k < keep; k++) b.dup2(PRESERVED_FDS_AT + k, 3 + k, { why: '--preserve-fds' });
  b.cloexecFrom(3 + keep, { why: 'no runtime fd may leak into the container' });
  for (let k = 0; k < keep; k++) b.setCloexec(3 + k, false, { why: '--preserve-fds' });
  for (const fd of [0, 1, 2]) b.setCloexec(fd, false, { why: 'stdio is inherited by the process' });
  b.chdir(plan.cwd, { why: 'process.cwd', errmsg: `process.cwd: cannot chdir to "${plan.cwd}"` });
  // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while
  // we still have it (runc does the same); the profile must then allow the
  // credential calls below.
  if (plan.seccomp && !plan.noNewPrivileges) emitSeccomp(b, plan.seccomp);
  emitDropBounding(b, plan.capabilities, host.lastCap);
  b.prctl(PR.SET_KEEPCAPS, 1, 0, 'PR_SET_KEEPCAPS, 1', { why: 'keep the permitted set across setuid' });
  if (plan.uid !== 0) b.fixStdio(plan.uid, { why: 'process.user.uid: stdio (the tty) becomes the user\'s, as runc' });
  if (host.setgroupsAllowed) b.setgroups(plan.additionalGids, { why: 'process.user.additionalGids' });
  else if (plan.additionalGids.length > 0) {
    throw new RuntimeError(`process.user.additionalGids: cannot set [${plan.additionalGids.join(', ')}]: setgroups is denied in this user namespace (a rootless gid map of one id; map /etc/subgid ranges through newgidmap)`, { code: 'EPERM' });
  }
  b.setresgid(plan.gid, { why: 'process.user.gid' });
  b.setresuid(plan.uid, { why: 'process.user.uid' });
  b.prctl(PR.SET_KEEPCAPS, 0, 0, 'PR_SET_KEEPCAPS, 0', { why: 'done with setuid' });
  emitApplyCapabilities(b, plan.capabilities);
  if (plan.noNewPrivileges) b.prctl(PR.SET_NO_NEW_PRIVS, 1, 0, 'PR_SET_NO_NEW_PRIVS, 1', { why: 'process.noNewPrivileges' });
  if (plan.apparmorProfile && host.apparmorAttr) {
    // The profile the program gets at execve, as runc's apparmor.ApplyProfile.
    // Without AppArmor on the host there is nothing to apply, as with runc.
    b.writeFile(host.apparmorAttr, `exec ${plan.apparmorProfile}`, { why: 'process.apparmorProfile', errmsg: `process.apparmorProfile: cannot apply "${plan.apparmorProfile}" (${host.apparmorAttr})` });
  }
  b.resetSignals({ why: 'signals the init ignored would survive execve' });
  // As late as possible: only execve follows.
  if (plan.seccomp && plan.noNewPrivileges) emitSeccomp(b, plan.seccomp);
}


function emitSeccomp(b: ProgramBuilder, s: SeccompPlan): void {
  const listener = b.seccomp(s.flags, Buffer.from(s.program, 'base64'), { why: `linux.seccomp: ${s.rules} rules, default ${s.defaultAction}` }, s.listener !== null);
  if (listener === null) return;
  // runc's procSeccomp: the runtime takes the fd and gives it to the agent
  // before anything of ours can make a call the agent must answer.
  b.pause(SECCOMP_LISTENER, listener, { why: 'linux.seccomp.listenerPath: the runtime sends the listener fd to the agent' });
  b.close(listener);
}

/** The pause at which the runtime hands the seccomp listener fd to the agent (runtime/linux/seccomp-notify.ts). */
export const SECCOMP_LISTENER = 'seccomp-listener';
