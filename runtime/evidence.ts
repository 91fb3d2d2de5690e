// `explain --evidence`: each step of the plan set beside what the kernel
// shows once the container is created. Pure: the plan and the readings
// (linux/readings.ts takes them from /proc and the cgroup files) in,
// findings out; explain.ts prints them under the steps they check.
//
// A finding is ✓ (the kernel shows what the plan asked for), ✗ (it does
// not: `explain --evidence` then exits 1) or · (shown for reading, nothing
// to compare: a write-only cgroup file, a path the image does not have).

import type { ContainerPlan } from './plan';
import type { CgroupWrite } from './cgroups/manager';
import type { MountStep, PathStep } from './linux/rootfs';
import { capNames, type CapabilityPlan } from './linux/capabilities';
import { MS, NAMESPACES, type NamespaceType } from './sys/constants';

export interface Finding {
  ok: boolean | null;
  text: string;
}

/** dev:ino of a file, to tell whether two paths are the same inode. */
export interface FileId {
  dev: number;
  ino: number;
}

/** What linux/readings.ts read; null where a file could not be read. */
export interface KernelReadings {
  pid: number;
  /** Namespace inodes per type: the runtime's own and the init's (for time: time_for_children, which execve enters). */
  namespaces: Partial<Record<NamespaceType, { host: string | null; init: string | null }>>;
  /** linux.namespaces[].path → the inode it names. */
  joined: Record<string, string | null>;
  /** /proc/PID/mountinfo: mount points relative to the init's root. */
  mountinfo: string | null;
  /** stat of /proc/PID/root and of root.path. */
  root: FileId | null;
  rootfs: FileId | null;
  /** stat of /proc/PID/cwd and of /proc/PID/root + process.cwd. */
  cwd: FileId | null;
  cwdInRoot: FileId | null;
  /** Whether a path exists in the container (lstat through /proc/PID/root). */
  exists: Record<string, boolean>;
  /** Mount destinations and masked/read-only paths with the container's symlinks resolved (/var/run → /run), where they differ. */
  resolved: Record<string, string>;
  /** Per cgroup write, in plan order: the file read back (or its fallback), null when neither exists. */
  cgroupValues: { file: string; value: string | null }[];
  /** Per cgroup directory: whether the init's pid is in its cgroup.procs. */
  cgroupMember: Record<string, boolean | null>;
  /** Read from inside the container's uts, ipc and net namespaces. */
  hostname: string | null;
  domainname: string | null;
  sysctl: Record<string, string | null>;
  status: string | null;
  /** /proc/PID/status read again right after `start`, once the process has exec'd (alive, or a zombie not yet reaped). */
  statusAfterExecve?: string | null;
  limits: string | null;
  oomScoreAdj: string | null;
  uidMap: string | null;
  gidMap: string | null;
}

/** Findings per step of the plan, in the plan's own order. */
export interface Findings {
  cgroupDirs: Record<string, Finding>;
  cgroupWrites: Finding[];
  namespaces: Finding[];
  idMaps: Finding[];
  mounts: Finding[][];
  pivot: Finding[];
  readonlyPaths: Finding[];
  maskedPaths: Finding[];
  hostname: Finding | null;
  domainname: Finding | null;
  sysctl: Finding[];
  rlimits: Finding[];
  oomScoreAdj: Finding | null;
  umask: Finding | null;
  cwd: Finding;
  bounding: Finding;
  ids: Finding;
  capabilities: Record<'effective' | 'permitted' | 'inheritable' | 'ambient', Finding>;
  noNewPrivileges: Finding | null;
  seccomp: Finding;
  /** The capabilities the kernel recomputed at execve (null: not read). */
  afterExecve: Finding | null;
}

const bad = (text: string): Finding => ({ ok: false, text });
const info = (text: string): Finding => ({ ok: null, text });
const check = (good: boolean, text: string): Finding => ({ ok: good, text });

export function evidenceFor(plan: ContainerPlan, writes: readonly CgroupWrite[], cgroupDirs: Record<string, string>, r: KernelReadings): Findings {
  const p = plan.process;
  const status = parseStatus(r.status ?? '');
  const mounts = parseMountinfo(r.mountinfo ?? '');
  return {
    cgroupDirs: Object.fromEntries(Object.entries(cgroupDirs).map(([ctrl, dir]) => {
      const member = r.cgroupMember[dir];
      return [ctrl, member === null || member === undefined ? bad(`${dir}/cgroup.procs: unreadable`) : check(member, `${dir}/cgroup.procs ${member ? 'lists' : 'does not list'} the init (pid ${r.pid})`)];
    })),
    cgroupWrites: writes.map((w, i) => cgroupFinding(w, r.cgroupValues[i] ?? { file: w.file, value: null })),
    namespaces: namespaceFindings(plan, r),
    idMaps: plan.namespaces.user && plan.namespaces.user.path === null
      ? [idMapFinding('uid_map', plan.namespaces.uidMap, r.uidMap), idMapFinding('gid_map', plan.namespaces.gidMap, r.gidMap)]
      : [],
    mounts: plan.rootfs.mounts.map((m) => (plan.rootfs.mountNamespace ? mountFindings(m, r.resolved[m.destination] ?? m.destination, mounts) : [info('not mounted: no mount namespace')])),
    pivot: pivotFindings(plan, r, mounts),
    readonlyPaths: plan.rootfs.readonlyPaths.map((s) => pathFinding(s, mounts, r, 'read-only')),
    maskedPaths: plan.rootfs.maskedPaths.map((s) => pathFinding(s, mounts, r, 'masked')),
    hostname: plan.spec.hostname ? valueFinding('/proc/sys/kernel/hostname (its uts namespace)', plan.spec.hostname, r.hostname) : null,
    domainname: plan.spec.domainname ? valueFinding('/proc/sys/kernel/domainname (its uts namespace)', plan.spec.domainname, r.domainname) : null,
    sysctl: plan.sysctl.map((s) => valueFinding(`/proc/sys/${s.key.replace(/\./g, '/')} (its namespaces)`, s.value, r.sysctl[s.key] ?? null)),
    rlimits: p.rlimits.map((rl) => rlimitFinding(rl.type, rl.soft, rl.hard, r.limits)),
    oomScoreAdj: p.oomScoreAdj === null ? null : valueFinding(`/proc/${r.pid}/oom_score_adj`, String(p.oomScoreAdj), r.oomScoreAdj),
    umask: p.umask === null ? null : statusFinding(status, 'Umask', (v) => parseInt(v, 8) === p.umask),
    cwd: r.cwd === null || r.cwdInRoot === null
      ? bad(`/proc/${r.pid}/cwd or ${p.cwd} in its root: unreadable`)
      : check(sameFile(r.cwd, r.cwdInRoot), `/proc/${r.pid}/cwd ${sameFile(r.cwd, r.cwdInRoot) ? 'is' : 'is not'} ${p.cwd} of its root`),
    bounding: capFinding(status, 'CapBnd', p.capabilities.bounding),
    ids: idsFinding(status, p.uid, p.gid, p.additionalGids, r),
    capabilities: {
      effective: capFinding(status, 'CapEff', p.capabilities.effective),
      permitted: capFinding(status, 'CapPrm', p.capabilities.permitted),
      inheritable: capFinding(status, 'CapInh', p.capabilities.inheritable),
      ambient: capFinding(status, 'CapAmb', p.capabilities.ambient),
    },
    noNewPrivileges: p.noNewPrivileges ? statusFinding(status, 'NoNewPrivs', (v) => v === '1') : null,
    // Seccomp: 0 none, 1 strict, 2 filter.
    seccomp: statusFinding(status, 'Seccomp', (v) => v === (p.seccomp ? '2' : '0')),
    afterExecve: r.statusAfterExecve === undefined ? null : execveFinding(p.capabilities, p.uid, p.noNewPrivileges, r.statusAfterExecve),
  };
}

/** Every finding, flattened: for counting the ✗. */
export function allFindings(f: Findings): Finding[] {
  const maybe = (x: Finding | null): Finding[] => (x ? [x] : []);
  return [
    ...Object.values(f.cgroupDirs), ...f.cgroupWrites, ...f.namespaces, ...f.idMaps, ...f.mounts.flat(), ...f.pivot,
    ...f.readonlyPaths, ...f.maskedPaths, ...maybe(f.hostname), ...maybe(f.domainname), ...f.sysctl, ...f.rlimits,
    ...maybe(f.oomScoreAdj), ...maybe(f.umask), f.cwd, f.bounding, f.ids, ...Object.values(f.capabilities),
    ...maybe(f.noNewPrivileges), f.seccomp, ...maybe(f.afterExecve),
  ];
}

export function formatFinding(f: Finding): string {
  return `${f.ok === true ? '✓' : f.ok === false ? '✗' : '·'} ${f.text}`;
}

// ---------------------------------------------------------------- namespaces

/** "pid:[4026531836]" → "4026531836". */
export function nsInode(link: string): string | null {
  return /\[(\d+)\]$/.exec(link)?.[1] ?? null;
}

function namespaceFindings(plan: ContainerPlan, r: KernelReadings): Finding[] {
  const out: Finding[] = [];
  for (const type of Object.keys(NAMESPACES) as NamespaceType[]) {
    const seen = r.namespaces[type];
    const name = `${type} (/proc/${r.pid}/ns/${NAMESPACES[type].proc}${type === 'time' ? '_for_children' : ''})`;
    if (!seen || seen.init === null) {
      out.push(info(`${name}: not readable here (the kernel may not have it)`));
      continue;
    }
    const created = plan.namespaces.created.some((c) => c.type === type);
    const joinedPath = type === 'user' ? plan.namespaces.user?.path ?? null : plan.namespaces.join.find((j) => j.type === type)?.path ?? null;
    if (joinedPath !== null) {
      const want = r.joined[joinedPath] ?? null;
      out.push(check(want !== null && want === seen.init, `${name}: ${want === seen.init ? `joined ${joinedPath} (${want})` : `${seen.init}, not ${joinedPath} (${want ?? 'unreadable'})`}`));
    } else if (created) {
      out.push(check(seen.init !== seen.host, `${name}: ${seen.init !== seen.host ? 'new' : 'NOT new'}: ${seen.init} (host ${seen.host ?? '?'})`));
    } else {
      out.push(check(seen.init === seen.host, `${name}: ${seen.init === seen.host ? `shared with host (${seen.host})` : `${seen.init}, not the host's ${seen.host ?? '?'}`}`));
    }
  }
  return out;
}

function idMapFinding(file: string, planned: string, read: string | null): Finding {
  const norm = (s: string): string => s.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' ')).join('; ');
  if (read === null) return bad(`${file}: unreadable`);
  return check(norm(read) === norm(planned), `${file}: ${norm(read)}${norm(read) === norm(planned) ? '' : ` (planned ${norm(planned)})`}`);
}

// ---------------------------------------------------------------- mounts

export interface MountInfoLine {
  mountPoint: string;
  /** The path inside its filesystem that is mounted there (a bind's source). */
  root: string;
  options: string[];
  fstype: string;
  source: string;
  superOptions: string;
}

const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountinfo(text: string): MountInfoLine[] {
  const out: MountInfoLine[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 6) continue;
    out.push({
      root: unescape(f[3] ?? ''),
      mountPoint: unescape(f[4] ?? ''),
      options: (f[5] ?? '').split(','),
      fstype: f[sep + 1] ?? '',
      source: unescape(f[sep + 2] ?? ''),
      superOptions: f[sep + 3] ?? '',
    });
  }
  return out;
}

/** The topmost mount at a mount point (mountinfo lists parents before children, and later mounts over earlier ones). */
function topmostAt(mounts: readonly MountInfoLine[], mp: string): MountInfoLine | undefined {
  return [...mounts].reverse().find((m) => m.mountPoint === mp);
}

/** Per-mount flags mountinfo shows in its options column. */
const SHOWN_FLAGS: [number, string][] = [[MS.RDONLY, 'ro'], [MS.NOSUID, 'nosuid'], [MS.NODEV, 'nodev'], [MS.NOEXEC, 'noexec'], [MS.NOATIME, 'noatime'], [MS.NODIRATIME, 'nodiratime']];

/** The flags a mount step ends with, as mountinfo names them. */
export function expectedOptions(m: MountStep): string[] {
  const flags = m.flags | m.remountFlags;
  return SHOWN_FLAGS.filter(([bit]) => flags & bit).map(([, name]) => name);
}

const describeLine = (l: MountInfoLine): string => `${l.mountPoint}: ${l.fstype} ${l.source}${l.root !== '/' ? ` [${l.root}]` : ''} ${l.options.join(',')}`;

function mountFindings(m: MountStep, at: string, mounts: readonly MountInfoLine[]): Finding[] {
  const line = topmostAt(mounts, at);
  const via = at === m.destination ? '' : ` (${m.destination} resolves to ${at} in the container)`;
  if (!line) return [bad(`${at}: MISSING from /proc/PID/mountinfo${via}`)];
  const problems: string[] = [];
  if (m.kind === 'fs' && m.type !== null && line.fstype !== m.type) problems.push(`type ${line.fstype}, not ${m.type}`);
  if (m.kind === 'cgroup' && line.fstype !== 'tmpfs') problems.push(`type ${line.fstype}, not the tmpfs holding the hierarchies`);
  const missing = expectedOptions(m).filter((o) => !line.options.includes(o));
  if (missing.length > 0) problems.push(`without ${missing.join(',')}`);
  const out = [check(problems.length === 0, `${describeLine(line)}${via}${problems.length ? ` (${problems.join('; ')})` : ''}`)];
  if (m.kind === 'cgroup') {
    const below = mounts.filter((l) => l.mountPoint.startsWith(at + '/') && (l.fstype === 'cgroup' || l.fstype === 'cgroup2'));
    out.push(check(below.length > 0, `${below.length} cgroup hierarchies under ${at}${below[0] ? `, e.g. ${describeLine(below[0])}` : ''}`));
  }
  return out;
}

function pivotFindings(plan: ContainerPlan, r: KernelReadings, mounts: readonly MountInfoLine[]): Finding[] {
  const out: Finding[] = [];
  const same = r.root !== null && r.rootfs !== null && sameFile(r.root, r.rootfs);
  out.push(check(same, `/proc/${r.pid}/root ${same ? 'is' : 'is NOT'} ${plan.rootfs.rootfs} (dev:ino ${fileId(r.root)}${same ? '' : ` vs ${fileId(r.rootfs)}`})`));
  if (!plan.rootfs.mountNamespace) return out;
  const roots = mounts.filter((l) => l.mountPoint === '/');
  const top = roots[roots.length - 1];
  if (!top) return [...out, bad('/proc/PID/mountinfo has no "/" entry')];
  // Detached, the host's root leaves no "/" entry above the rootfs.
  // With --no-pivot the host's root stays in the mount namespace, out of the chroot's sight.
  const alone = plan.rootfs.noPivot ? ', the only mount at "/" its root sees (chroot: the host\'s root is out of its sight)' : ', the only mount at "/" (the old root is detached)';
  out.push(check(roots.length === 1, `mountinfo "/": ${top.fstype} ${top.source} [${top.root}]${roots.length === 1 ? alone : `, and ${roots.length - 1} more mounts at "/" (the old root is still there)`}`));
  return out;
}

function pathFinding(s: PathStep, mounts: readonly MountInfoLine[], r: KernelReadings, what: 'read-only' | 'masked'): Finding {
  const line = topmostAt(mounts, r.resolved[s.path] ?? s.path);
  if (!line) return r.exists[s.path] ? bad(`${s.path}: MISSING (the path exists, nothing is mounted on it)`) : info(`${s.path}: not in this container (skipped)`);
  if (what === 'read-only') return check(line.options.includes('ro'), describeLine(line));
  // A masked file is /dev/null bound over it (root "/null" of the /dev tmpfs), a directory an empty read-only tmpfs.
  return check(line.root.endsWith('/null') || (line.fstype === 'tmpfs' && line.options.includes('ro')), describeLine(line));
}

// ---------------------------------------------------------------- cgroups

const UNLIMITED = 2n ** 62n;
const INT = /^-?\d+$/;

/** The unit the kernel rounds a byte limit down to: a page for memory, the huge page for hugetlb.<size>. */
function roundingUnit(file: string): bigint | null {
  if (file.startsWith('memory.')) return 4096n;
  const m = /^hugetlb\.(\d+)([KMG])B\./.exec(file);
  return m ? BigInt(m[1] as string) * { K: 1024n, M: 1024n ** 2n, G: 1024n ** 3n }[m[2] as 'K' | 'M' | 'G'] : null;
}

/** "0-2,4" → "0,1,2,4": cpuset lists as the kernel prints them (ranges) or as written (commas). */
export function expandList(list: string): string {
  const out: number[] = [];
  for (const part of list.trim().split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || Number.isNaN(a)) return list.trim();
    for (let i = a; i <= (b ?? a); i++) out.push(i);
  }
  return [...new Set(out)].sort((x, y) => x - y).join(',');
}

/** Whether a cgroup file reads back as `written`: the kernel rounds, spells "unlimited" its own way, and lists some values among others. */
export function cgroupValueMatches(file: string, written: string, read: string): boolean {
  const w = written.trim();
  const r = read.trim();
  if (w === r) return true;
  if ((w === '-1' || w === 'max') && (r === 'max' || (INT.test(r) && BigInt(r) >= UNLIMITED))) return true;
  const unit = roundingUnit(file);
  if (unit !== null && INT.test(w) && INT.test(r) && BigInt(w) > 0n && BigInt(r) === (BigInt(w) / unit) * unit) return true;
  if (file.startsWith('cpuset.')) return expandList(w) === expandList(r);
  const lines = r.split('\n').map((l) => l.trim());
  // memory.oom_control lists "oom_kill_disable 1" among its counters; io.weight and the bfq weights read "default 100".
  if (file === 'memory.oom_control') return lines.includes(`oom_kill_disable ${w}`);
  if (lines.includes(`default ${w}`)) return true;
  // Files listing one line per key (blkio throttles, net_prio.ifpriomap): our line among them.
  if (lines.includes(w)) return true;
  // io.max, rdma.max, cpu.max: "8:0 rbps=1048576" within "8:0 rbps=1048576 wbps=max ...".
  const words = w.split(/\s+/);
  return words.length > 1 && lines.some((l) => {
    const have = l.split(/\s+/);
    return have[0] === words[0] && words.every((x) => have.includes(x));
  });
}

/** Write-only files: the kernel turns them into a list (devices.list) or a move. */
const WRITE_ONLY = new Set(['devices.allow', 'devices.deny', 'cgroup.procs']);

function cgroupFinding(w: CgroupWrite, got: { file: string; value: string | null }): Finding {
  if (WRITE_ONLY.has(w.file)) return info(`${w.file} is write-only (the kernel keeps the resulting rules in devices.list)`);
  if (got.value === null) return w.optional ? info(`${w.file}: not on this host (skipped)`) : bad(`${w.file}: MISSING (cannot read it back)`);
  const wanted = got.file === w.file ? w.value : w.fallback?.value ?? w.value;
  const shown = got.value.trim().split('\n').join('; ');
  return check(cgroupValueMatches(got.file, wanted, got.value), `${got.file} reads ${shown}${cgroupValueMatches(got.file, wanted, got.value) ? '' : `, not ${wanted}`}`);
}

// ---------------------------------------------------------------- identity and process

/** Sysctl-style values: words separated by any whitespace, numbers compared as numbers ("01" is 1). */
export function sameWords(a: string, b: string): boolean {
  const x = a.trim().split(/\s+/);
  const y = b.trim().split(/\s+/);
  return x.length === y.length && x.every((w, i) => w === y[i] || (INT.test(w) && INT.test(y[i] ?? '') && BigInt(w) === BigInt(y[i] as string)));
}

function valueFinding(where: string, wanted: string, read: string | null): Finding {
  if (read === null) return bad(`${where}: unreadable`);
  const same = sameWords(read, wanted);
  return check(same, `${where} reads ${JSON.stringify(read.trim())}${same ? '' : `, not ${JSON.stringify(wanted)}`}`);
}

/** /proc/PID/status → field → value. */
export function parseStatus(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const at = line.indexOf(':');
    if (at > 0) out[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  return out;
}

function statusFinding(status: Record<string, string>, field: string, good: (v: string) => boolean): Finding {
  const v = status[field];
  if (v === undefined) return bad(`status ${field}: not shown`);
  return check(good(v), `status ${field}: ${v}`);
}

function capFinding(status: Record<string, string>, field: string, planned: string): Finding {
  const v = status[field];
  if (v === undefined) return bad(`status ${field}: not shown`);
  const same = BigInt(`0x${v}`) === BigInt(planned);
  const names = (hex: string): string => capNames(hex).map((c) => c.replace(/^CAP_/, '')).join(' ') || '(empty)';
  return check(same, `status ${field}: ${v}${same ? '' : ` = ${names(`0x${v}`)}, not ${names(planned)}`}`);
}

/**
 * A container id as the host sees it: /proc/PID/status speaks in the
 * reader's user namespace, so ids go through the uid_map or gid_map
 * ("inside outside count" lines); without a user namespace it is "0 0 4294967295".
 */
export function hostId(id: number, map: string | null): number | null {
  if (map === null) return id;
  for (const line of map.split('\n')) {
    const [inside, outside, count] = line.trim().split(/\s+/).map(Number);
    if (inside === undefined || outside === undefined || count === undefined || Number.isNaN(count)) continue;
    if (id >= inside && id < inside + count) return outside + (id - inside);
  }
  return null;
}

function idsFinding(status: Record<string, string>, uid: number, gid: number, groups: readonly number[], r: KernelReadings): Finding {
  const uids = (status['Uid'] ?? '').split(/\s+/).filter(Boolean).map(Number);
  const gids = (status['Gid'] ?? '').split(/\s+/).filter(Boolean).map(Number);
  const have = (status['Groups'] ?? '').split(/\s+/).filter(Boolean).map(Number).sort((a, b) => a - b);
  const hostUid = hostId(uid, r.uidMap);
  const hostGid = hostId(gid, r.gidMap);
  const want = [...new Set(groups.map((g) => hostId(g, r.gidMap)))].sort((a, b) => (a ?? -1) - (b ?? -1));
  const good = uids.length === 4 && uids.every((u) => u === hostUid) && gids.length === 4 && gids.every((g) => g === hostGid) && have.join(',') === want.join(',');
  const mapped = hostUid !== uid || hostGid !== gid ? ` (the host's ids for ${uid}:${gid} through the id maps)` : '';
  return check(good, `status Uid: ${uids.join(' ')}; Gid: ${gids.join(' ')}; Groups: ${have.join(' ') || '(none)'}${mapped}`);
}

/**
 * What execve(2) makes of the capability sets, for a program without file
 * capabilities that is not set-id (capabilities(7)): a root process gets
 * bounding | inheritable as permitted and effective (capped by the permitted
 * set it had, under no_new_privs), anyone else its ambient set; ambient
 * capabilities are added to both.
 */
export function capsAfterExecve(c: CapabilityPlan, uid: number, noNewPrivs: boolean): { permitted: bigint; effective: bigint } {
  const ambient = BigInt(c.ambient);
  if (uid !== 0) return { permitted: ambient, effective: ambient };
  let permitted = BigInt(c.bounding) | BigInt(c.inheritable);
  if (noNewPrivs && (permitted & ~BigInt(c.permitted)) !== 0n) permitted &= BigInt(c.permitted);
  permitted |= ambient;
  return { permitted, effective: permitted };
}

/** ✓ when execve gave what the rule says; · otherwise (file capabilities, set-id, or the program changed them itself): never ✗. */
function execveFinding(c: CapabilityPlan, uid: number, noNewPrivs: boolean, status: string | null): Finding {
  const st = parseStatus(status ?? '');
  const eff = st['CapEff'];
  const prm = st['CapPrm'];
  if (eff === undefined || prm === undefined) return info('after execve: /proc/PID/status unreadable (the process is gone)');
  const want = capsAfterExecve(c, uid, noNewPrivs);
  const same = BigInt(`0x${eff}`) === want.effective && BigInt(`0x${prm}`) === want.permitted;
  const names = (hex: string): string => capNames(hex).map((n) => n.replace(/^CAP_/, '')).join(' ') || '(empty)';
  const rule = uid === 0 ? `root: bounding | inheritable${noNewPrivs ? ', no more than before under no_new_privs' : ''}` : 'not root: the ambient set';
  return { ok: same ? true : null, text: `after execve: status CapEff ${eff} = ${names(`0x${eff}`)}; CapPrm ${prm} (${same ? `the kernel's rule for ${rule}` : `not the ${rule} the kernel gives a program without file capabilities: file capabilities, set-id, or the program changed them`})` };
}

/** /proc/PID/limits names each rlimit in words. */
const LIMIT_NAMES: Record<string, string> = {
  RLIMIT_CPU: 'Max cpu time', RLIMIT_FSIZE: 'Max file size', RLIMIT_DATA: 'Max data size', RLIMIT_STACK: 'Max stack size',
  RLIMIT_CORE: 'Max core file size', RLIMIT_RSS: 'Max resident set', RLIMIT_NPROC: 'Max processes', RLIMIT_NOFILE: 'Max open files',
  RLIMIT_MEMLOCK: 'Max locked memory', RLIMIT_AS: 'Max address space', RLIMIT_LOCKS: 'Max file locks', RLIMIT_SIGPENDING: 'Max pending signals',
  RLIMIT_MSGQUEUE: 'Max msgqueue size', RLIMIT_NICE: 'Max nice priority', RLIMIT_RTPRIO: 'Max realtime priority', RLIMIT_RTTIME: 'Max realtime timeout',
};

const RLIM_INFINITY = 2n ** 64n - 1n;

function rlimitFinding(type: string, soft: string, hard: string, limits: string | null): Finding {
  const label = LIMIT_NAMES[type] ?? type;
  const line = (limits ?? '').split('\n').find((l) => l.startsWith(label + ' '));
  if (!line) return bad(`limits "${label}": not shown`);
  const [s, h] = line.slice(label.length).trim().split(/\s+/);
  const num = (v: string | undefined): bigint | null => (v === 'unlimited' ? RLIM_INFINITY : v !== undefined && /^\d+$/.test(v) ? BigInt(v) : null);
  const good = num(s) === BigInt(soft) && num(h) === BigInt(hard);
  return check(good, `limits "${label}": soft ${s ?? '?'}, hard ${h ?? '?'}`);
}

function sameFile(a: FileId, b: FileId): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

function fileId(f: FileId | null): string {
  return f ? `${f.dev}:${f.ino}` : '?';
}

