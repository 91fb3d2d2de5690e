// The container process: what `process` asks for, as a plan, and the last
// steps of the init before execve(2): rlimits, oom score, umask, cwd,
// capabilities and credentials, no_new_privs, signals, fds.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Spec } from '../spec/generated/config';
import { RLIMITS } from '../sys/constants';
import { RuntimeError } from '../sys/errors';
import * as sys from '../sys/libc';
import { applyCapabilities, dropBounding, planCapabilities, type CapabilityPlan } from './capabilities';
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

/** PATH lookup inside the container's root, done by the init after pivot_root, like execvp. */
export function resolveExecutable(args0: string, env: readonly string[]): string {
  const check = (p: string): boolean => {
    try {
      const st = fs.statSync(p);
      return st.isFile() && (st.mode & 0o111) !== 0;
    } catch {
      return false;
    }
  };
  // The wording matters: podman maps "no such file or directory" and
  // "executable file not found" to exit 127, "permission denied" to 126, as with runc.
  if (args0.includes('/')) {
    if (check(args0)) return args0;
    if (fs.existsSync(args0)) {
      throw new RuntimeError(`process.args[0]: exec "${args0}": permission denied (not an executable file)`, { code: 'EACCES' });
    }
    throw new RuntimeError(`process.args[0]: exec "${args0}": stat ${args0}: no such file or directory`, { code: 'ENOENT' });
  }
  const pathVar = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  for (const dir of pathVar.split(':')) {
    const p = path.join(dir || '.', args0);
    if (check(p)) return p;
  }
  throw new RuntimeError(`process.args[0]: "${args0}": executable file not found in $PATH (${pathVar})`, { code: 'ENOENT' });
}

/**
 * The last steps before execve, in the init's main thread. The order matters:
 * rlimits and oom score need privileges we are about to drop; the bounding
 * set needs CAP_SETPCAP, so it goes before setuid; KEEPCAPS keeps the
 * permitted set across setuid; capset comes after, then no_new_privs.
 */
export function finalizeProcess(plan: ProcessPlan): void {
  for (const r of plan.rlimits) sys.setrlimit(r.resource, BigInt(r.soft), BigInt(r.hard), `process.rlimits ${r.type}`, r.type);
  if (plan.oomScoreAdj !== null) {
    fs.writeFileSync('/proc/self/oom_score_adj', String(plan.oomScoreAdj));
  }
  if (plan.umask !== null) sys.umask(plan.umask, 'process.user.umask');
  // The runc CVE-2024-21626 lesson: make sure no fd of ours leaks into the
  // container, and chdir only after every host fd is closed-on-exec.
  // Preserved fds move down to 3.. (over the sync channel, which is done).
  const keep = plan.preserveFds ?? 0;
  for (let k = 0; k < keep; k++) sys.dup2(PRESERVED_FDS_AT + k, 3 + k, '--preserve-fds');
  sys.cloexecFrom(3 + keep, 'no runtime fd may leak into the container');
  for (let k = 0; k < keep; k++) sys.setCloexec(3 + k, false, '--preserve-fds');
  for (const fd of [0, 1, 2]) sys.setCloexec(fd, false, 'stdio is inherited by the process');
  try {
    sys.chdir(plan.cwd, 'process.cwd');
  } catch (e) {
    throw new RuntimeError(`process.cwd: cannot chdir to "${plan.cwd}": ${(e as Error).message}`, { cause: e });
  }
  // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while
  // we still have it (runc does the same); the profile must then allow the
  // credential calls below.
  if (plan.seccomp && !plan.noNewPrivileges) loadSeccomp(plan.seccomp);
  dropBounding(plan.capabilities);
  sys.prctl(sys.PR.SET_KEEPCAPS, 1, 'keep the permitted set across setuid', 'PR_SET_KEEPCAPS');
  if (setgroupsAllowed()) sys.setgroups(plan.additionalGids, 'process.user.additionalGids');
  else if (plan.additionalGids.length > 0) {
    throw new RuntimeError(`process.user.additionalGids: cannot set [${plan.additionalGids.join(', ')}]: setgroups is denied in this user namespace (a rootless gid map of one id; map /etc/subgid ranges through newgidmap)`, { code: 'EPERM' });
  }
  sys.setresgid(plan.gid, 'process.user.gid');
  sys.setresuid(plan.uid, 'process.user.uid');
  sys.prctl(sys.PR.SET_KEEPCAPS, 0, 'done with setuid', 'PR_SET_KEEPCAPS');
  applyCapabilities(plan.capabilities);
  if (plan.noNewPrivileges) sys.prctl(sys.PR.SET_NO_NEW_PRIVS, 1, 'process.noNewPrivileges', 'PR_SET_NO_NEW_PRIVS');
  if (plan.apparmorProfile) applyApparmor(plan.apparmorProfile);
  sys.resetSignals('Node ignores SIGPIPE; ignored signals would survive execve');
  // As late as possible: only execve follows.
  if (plan.seccomp && plan.noNewPrivileges) loadSeccomp(plan.seccomp);
}

/** False in a user namespace whose gid map was written unprivileged (/proc/self/setgroups "deny"). */
function setgroupsAllowed(): boolean {
  try {
    return fs.readFileSync('/proc/self/setgroups', 'utf8').trim() !== 'deny';
  } catch {
    return true; // kernels before 3.19 have no such file
  }
}

/**
 * The AppArmor profile the program gets at execve ("exec NAME" on the
 * thread's attr file, as runc's apparmor.ApplyProfile). Without AppArmor on
 * the host there is nothing to apply, as with runc.
 */
function applyApparmor(profile: string): void {
  if (!fs.existsSync('/sys/kernel/security/apparmor')) return;
  const attr = fs.existsSync('/proc/thread-self/attr/apparmor/exec') ? '/proc/thread-self/attr/apparmor/exec' : '/proc/thread-self/attr/exec';
  try {
    fs.writeFileSync(attr, `exec ${profile}`);
  } catch (e) {
    throw new RuntimeError(`process.apparmorProfile: cannot apply "${profile}" (${attr}): ${(e as Error).message}`, { cause: e });
  }
}

function loadSeccomp(s: SeccompPlan): void {
  sys.seccompFilter(Buffer.from(s.program, 'base64'), s.flags, `linux.seccomp: ${s.rules} rules, default ${s.defaultAction}`);
}
