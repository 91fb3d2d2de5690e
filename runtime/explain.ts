// `mycontainer explain`: the plan for a bundle in words, step by step, in the
// order create and start perform it, each with the config field behind it.
// With --evidence, the container is created for real, and under each step
// goes what the kernel shows for it (evidence.ts), read before `start`.

import { loadSpec, planContainer } from './plan';
import { describeRootfs, type RootfsStepRef } from './linux/rootfs';
import { capNames } from './linux/capabilities';
import { cloneFlagNames } from './sys/constants';
import { cgroupManager, managerFromPaths } from './cgroups';
import { allFindings, evidenceFor, formatFinding, type Finding, type Findings, type KernelReadings } from './evidence';
import type { RuntimeContext } from './container';
import { RuntimeError, wrap } from './sys/errors';

export interface ExplainOptions {
  noPivot: boolean;
  /** The container id (its cgroup path depends on it); a placeholder when only explaining. */
  id?: string;
}

/** The plan in words; with `evidence`, each step followed by what the kernel showed for it. */
export function explainBundle(bundle: string, opts: ExplainOptions, evidence?: Findings): string[] {
  const spec = loadSpec(bundle);
  const plan = planContainer(spec, bundle, opts);
  const out: string[] = [];
  const step = (title: string): void => {
    out.push('', `== ${title}`);
  };
  const line = (s: string, why?: string): void => {
    out.push(`  ${s}${why ? `   # ${why}` : ''}`);
  };
  const see = (...found: (Finding | null | undefined)[]): void => {
    for (const f of found) if (f) out.push(`    ${formatFinding(f)}`);
  };
  const rootfsNote = (ref: RootfsStepRef): string[] => {
    if (!evidence) return [];
    const found = ref.kind === 'pivot' ? evidence.pivot
      : ref.kind === 'mount' ? evidence.mounts[ref.index] ?? []
      : [(ref.kind === 'readonly' ? evidence.readonlyPaths : evidence.maskedPaths)[ref.index]];
    return found.filter((f): f is Finding => f !== undefined).map((f) => `  ${formatFinding(f)}`);
  };

  out.push(`bundle ${plan.bundle}, rootfs ${plan.rootfs.rootfs}`);
  for (const w of plan.warnings) out.push(`warning: ${w}`);

  step('1. runtime: cgroup (before the init exists, so delete can always find it)');
  const cg = cgroupManager({ cgroupsPath: spec.linux?.cgroupsPath, id: opts.id ?? 'EXPLAIN' });
  for (const [ctrl, dir] of Object.entries(cg.paths())) {
    line(`mkdir ${dir}`, `linux.cgroupsPath (${ctrl})`);
    see(evidence?.cgroupDirs[ctrl]);
  }
  cg.plan(spec.linux?.resources ?? {}).forEach((w, i) => {
    line(`write ${w.controller}/${w.file} = ${w.value}`, w.why);
    see(evidence?.cgroupWrites[i]);
  });

  step('2. runtime main thread: into the namespaces, spawn the init (node), back out');
  const inWorker = plan.namespaces.created.filter((c) => c.type !== 'cgroup' && c.type !== 'time' && c.type !== 'user');
  if (plan.namespaces.user) line(`native/mycontainer-nsexec: ${plan.namespaces.user.path ? `setns(${plan.namespaces.user.path})` : 'unshare(CLONE_NEWUSER), uid/gid maps'}, then the namespaces below inside it`, plan.namespaces.user.why);
  if (plan.namespaces.unshareFlags) line(`unshare(${cloneFlagNames(plan.namespaces.unshareFlags)})`, inWorker.map((c) => `${c.why} (${c.type})`).join(', '));
  for (const j of plan.namespaces.join) line(`setns(open("${j.path}"), ${j.type})`, j.why);
  for (const o of plan.namespaces.timeOffsets) line(`(init) timens_offsets: ${o.clock} ${o.secs}s ${o.nanosecs}ns`, 'linux.timeOffsets');
  line('spawn init: becomes PID 1 of the new pid namespace; runtime adds it to the cgroup');
  if (evidence) {
    line('kernel: the init\'s namespaces against the runtime\'s own (/proc/self/ns)');
    see(...evidence.namespaces, ...evidence.idMaps);
  }

  step('3. init: mounts, while the host root is still visible');
  if (plan.namespaces.newCgroupInInit) line('unshare(CLONE_NEWCGROUP)', 'linux.namespaces (cgroup): rooted at the container cgroup');
  if (plan.namespaces.newTimeInInit) line('unshare(CLONE_NEWTIME), offsets to /proc/self/timens_offsets', 'linux.namespaces (time), linux.timeOffsets');
  for (const s of describeRootfs(plan.rootfs, rootfsNote)) line(s);

  step('4. hooks');
  for (const name of ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const) {
    for (const h of spec.hooks?.[name] ?? []) line(`${name}: ${h.path} ${(h.args ?? []).slice(1).join(' ')}${h.timeout ? ` (timeout ${h.timeout}s)` : ''}`, `hooks.${name}`);
  }

  step('5. init: identity of the container');
  if (spec.hostname) line(`sethostname("${spec.hostname}")`, 'hostname');
  see(evidence?.hostname);
  if (spec.domainname) line(`setdomainname("${spec.domainname}")`, 'domainname');
  see(evidence?.domainname);
  plan.sysctl.forEach((s, i) => {
    line(`write /proc/sys/${s.key.replace(/\./g, '/')} = ${s.value}`, 'linux.sysctl');
    see(evidence?.sysctl[i]);
  });

  step('6. init: wait on exec.fifo for `start`, then the process');
  const p = plan.process;
  p.rlimits.forEach((r, i) => {
    line(`setrlimit(${r.type}, ${r.soft}, ${r.hard})`, 'process.rlimits');
    see(evidence?.rlimits[i]);
  });
  if (p.oomScoreAdj !== null) line(`oom_score_adj = ${p.oomScoreAdj}`, 'process.oomScoreAdj');
  see(evidence?.oomScoreAdj);
  if (p.umask !== null) line(`umask(0${p.umask.toString(8)})`, 'process.user.umask');
  see(evidence?.umask);
  line(`chdir("${p.cwd}")`, 'process.cwd');
  see(evidence?.cwd);
  line(`bounding set: ${capNames(p.capabilities.bounding).join(' ') || '(empty)'}`, 'process.capabilities.bounding');
  see(evidence?.bounding);
  line(`setgroups([${p.additionalGids.join(', ')}]); setresgid(${p.gid}); setresuid(${p.uid})`, 'process.user');
  see(evidence?.ids);
  for (const set of ['effective', 'permitted', 'inheritable', 'ambient'] as const) {
    line(`${set}: ${capNames(p.capabilities[set]).join(' ') || '(empty)'}`, `process.capabilities.${set}`);
    see(evidence?.capabilities[set]);
  }
  if (p.noNewPrivileges) line('prctl(PR_SET_NO_NEW_PRIVS, 1)', 'process.noNewPrivileges');
  see(evidence?.noNewPrivileges);
  if (p.seccomp) {
    line(`seccomp(SECCOMP_SET_MODE_FILTER): ${p.seccomp.instructions} BPF instructions, ${p.seccomp.rules} rules, default ${p.seccomp.defaultAction}${p.noNewPrivileges ? ', last before execve' : ', before setuid (no no_new_privs)'}`, 'linux.seccomp');
    if (p.seccomp.skipped.length > 0) line(`  skipped, unknown here: ${p.seccomp.skipped.join(', ')}`, 'linux.seccomp.syscalls');
  } else if (evidence) {
    line('no seccomp filter', 'linux.seccomp is not set');
  }
  see(evidence?.seccomp);
  line(`execve(${JSON.stringify(p.args)}) with ${p.env.length} env vars`, 'process.args, process.env');
  see(evidence?.afterExecve);
  return out;
}

export interface EvidenceResult {
  /** The plan with the kernel's findings under each step. */
  lines: string[];
  /** How many findings contradict the plan (✗). */
  failures: number;
  /** The container process's exit status. */
  status: number;
}

/**
 * `explain --evidence`: create the container, read what the kernel shows
 * while its init waits for `start` (everything but execve is done then),
 * start it and wait for it (its output is ours), delete it, and return the
 * plan with the findings. The container is deleted also when any of this
 * fails; a failed create cleans up after itself.
 */
export async function explainWithEvidence(ctx: RuntimeContext, opts: ExplainOptions & { id: string; bundle: string; beforeStart?: () => void }): Promise<EvidenceResult> {
  const lib = require('./container') as typeof import('./container');
  const { readKernel, readStatus } = require('./linux/readings') as typeof import('./linux/readings');
  const { OwnConsole } = require('./console') as typeof import('./console');
  // The init is not dumpable until execve: only root may read its /proc files and enter its namespaces.
  if (process.geteuid?.() !== 0) {
    throw new RuntimeError('explain --evidence: needs root (the init\'s /proc files and namespaces are closed to others until it execs)', { code: 'EPERM' });
  }
  // Checked before anything exists: a bundle explain cannot plan is not created either.
  const spec = loadSpec(opts.bundle);
  const plan = planContainer(spec, opts.bundle, opts);
  const own = plan.process.terminal ? new OwnConsole() : null;
  const { rec, init } = await lib.create(ctx, { id: opts.id, bundle: opts.bundle, noPivot: opts.noPivot, wait: true, ...(own ? { consoleFd: own.theirs } : {}) });
  let stopForwarding = (): void => {};
  try {
    const cg = rec.cgroup ? managerFromPaths(rec.cgroup.driver, rec.cgroup.paths) : null;
    const writes = cg && spec.linux?.resources ? cg.plan(spec.linux.resources) : [];
    const dirs = cg?.paths() ?? {};
    let readings: KernelReadings;
    try {
      readings = readKernel(rec.pid, plan, writes, dirs);
    } catch (e) {
      throw wrap(e, `explain --evidence: cannot read what the kernel shows of container "${opts.id}" (pid ${rec.pid}); it is deleted`);
    }
    const copying = own?.attach();
    opts.beforeStart?.();
    await lib.start(ctx, opts.id);
    // start() returns once the init has exec'd the process. We are its
    // parent and reap it only from the event loop, so even a process that
    // has exited already is still a zombie here, with its credentials.
    readings.statusAfterExecve = readStatus(rec.pid);
    const findings = evidenceFor(plan, writes, dirs, readings);
    stopForwarding = lib.forwardSignals(rec.pid);
    const status = await init.exited;
    await copying;
    const lines = explainBundle(opts.bundle, opts, findings);
    lines.push('', `== 7. the process exited with status ${status}`);
    return { lines, failures: allFindings(findings).filter((f) => f.ok === false).length, status };
  } finally {
    stopForwarding();
    lib.remove(ctx, opts.id, true);
  }
}
