// `mycontainer explain`: the plan for a bundle in words, step by step, in the
// order create and start perform it, each with the config field behind it.

import { loadSpec, planContainer } from './plan';
import { describeRootfs } from './linux/rootfs';
import { capNames } from './linux/capabilities';
import { cloneFlagNames } from './sys/constants';
import { cgroupManager } from './cgroups';

export function explainBundle(bundle: string, opts: { noPivot: boolean }): string[] {
  const spec = loadSpec(bundle);
  const plan = planContainer(spec, bundle, opts);
  const out: string[] = [];
  const step = (title: string): void => {
    out.push('', `== ${title}`);
  };
  const line = (s: string, why?: string): void => {
    out.push(`  ${s}${why ? `   # ${why}` : ''}`);
  };

  out.push(`bundle ${plan.bundle}, rootfs ${plan.rootfs.rootfs}`);
  for (const w of plan.warnings) out.push(`warning: ${w}`);

  step('1. runtime: cgroup (before the init exists, so delete can always find it)');
  const cg = cgroupManager({ cgroupsPath: spec.linux?.cgroupsPath, id: 'EXPLAIN' });
  for (const [ctrl, dir] of Object.entries(cg.paths())) line(`mkdir ${dir}`, `linux.cgroupsPath (${ctrl})`);
  for (const w of cg.plan(spec.linux?.resources ?? {})) line(`write ${w.controller}/${w.file} = ${w.value}`, w.why);

  step('2. runtime main thread: into the namespaces, spawn the init (node), back out');
  const inWorker = plan.namespaces.created.filter((c) => c.type !== 'cgroup' && c.type !== 'time' && c.type !== 'user');
  if (plan.namespaces.user) line(`native/mycontainer-nsexec: ${plan.namespaces.user.path ? `setns(${plan.namespaces.user.path})` : 'unshare(CLONE_NEWUSER), uid/gid maps'}, then the namespaces below inside it`, plan.namespaces.user.why);
  if (plan.namespaces.unshareFlags) line(`unshare(${cloneFlagNames(plan.namespaces.unshareFlags)})`, inWorker.map((c) => `${c.why} (${c.type})`).join(', '));
  for (const j of plan.namespaces.join) line(`setns(open("${j.path}"), ${j.type})`, j.why);
  for (const o of plan.namespaces.timeOffsets) line(`(init) timens_offsets: ${o.clock} ${o.secs}s ${o.nanosecs}ns`, 'linux.timeOffsets');
  line('spawn init: becomes PID 1 of the new pid namespace; runtime adds it to the cgroup');

  step('3. init: mounts, while the host root is still visible');
  if (plan.namespaces.newCgroupInInit) line('unshare(CLONE_NEWCGROUP)', 'linux.namespaces (cgroup): rooted at the container cgroup');
  if (plan.namespaces.newTimeInInit) line('unshare(CLONE_NEWTIME), offsets to /proc/self/timens_offsets', 'linux.namespaces (time), linux.timeOffsets');
  for (const s of describeRootfs(plan.rootfs)) line(s);

  step('4. hooks');
  for (const name of ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const) {
    for (const h of spec.hooks?.[name] ?? []) line(`${name}: ${h.path} ${(h.args ?? []).slice(1).join(' ')}${h.timeout ? ` (timeout ${h.timeout}s)` : ''}`, `hooks.${name}`);
  }

  step('5. init: identity of the container');
  if (spec.hostname) line(`sethostname("${spec.hostname}")`, 'hostname');
  if (spec.domainname) line(`setdomainname("${spec.domainname}")`, 'domainname');
  for (const s of plan.sysctl) line(`write /proc/sys/${s.key.replace(/\./g, '/')} = ${s.value}`, 'linux.sysctl');

  step('6. init: wait on exec.fifo for `start`, then the process');
  const p = plan.process;
  for (const r of p.rlimits) line(`setrlimit(${r.type}, ${r.soft}, ${r.hard})`, 'process.rlimits');
  if (p.oomScoreAdj !== null) line(`oom_score_adj = ${p.oomScoreAdj}`, 'process.oomScoreAdj');
  if (p.umask !== null) line(`umask(0${p.umask.toString(8)})`, 'process.user.umask');
  line(`chdir("${p.cwd}")`, 'process.cwd');
  line(`bounding set: ${capNames(p.capabilities.bounding).join(' ') || '(empty)'}`, 'process.capabilities.bounding');
  line(`setgroups([${p.additionalGids.join(', ')}]); setresgid(${p.gid}); setresuid(${p.uid})`, 'process.user');
  for (const set of ['effective', 'permitted', 'inheritable', 'ambient'] as const) {
    line(`${set}: ${capNames(p.capabilities[set]).join(' ') || '(empty)'}`, `process.capabilities.${set}`);
  }
  if (p.noNewPrivileges) line('prctl(PR_SET_NO_NEW_PRIVS, 1)', 'process.noNewPrivileges');
  if (p.seccomp) {
    line(`seccomp(SECCOMP_SET_MODE_FILTER): ${p.seccomp.instructions} BPF instructions, ${p.seccomp.rules} rules, default ${p.seccomp.defaultAction}${p.noNewPrivileges ? ', last before execve' : ', before setuid (no no_new_privs)'}`, 'linux.seccomp');
    if (p.seccomp.skipped.length > 0) line(`  skipped, unknown here: ${p.seccomp.skipped.join(', ')}`, 'linux.seccomp.syscalls');
  }
  line(`execve(${JSON.stringify(p.args)}) with ${p.env.length} env vars`, 'process.args, process.env');
  return out;
}
