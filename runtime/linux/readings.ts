// What the kernel shows of a created container, read from the host: the
// init's /proc files, its cgroup files, and (from inside its uts, ipc and
// net namespaces) the hostname and sysctls. The readings feed evidence.ts,
// which compares them with the plan.
//
// Read while the init waits on exec.fifo: it has made its mounts, pivoted,
// and taken the process's rlimits, ids, capabilities, no_new_privs and
// seccomp filter, and nothing of the container's own has run yet.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ContainerPlan } from '../plan';
import type { CgroupWrite } from '../cgroups/manager';
import type { FileId, KernelReadings } from '../evidence';
import { nsInode } from '../evidence';
import { CLONE, NAMESPACES, type NamespaceType } from '../sys/constants';
import * as sys from '../sys/libc';
import { secureJoin } from './securejoin';

function readOrNull(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function nsOf(link: string): string | null {
  try {
    return nsInode(fs.readlinkSync(link));
  } catch {
    return null;
  }
}

function idOf(file: string, follow = true): FileId | null {
  try {
    const st = follow ? fs.statSync(file) : fs.lstatSync(file);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return null;
  }
}

/** The file a cgroup write landed in (its fallback when the file is absent), read back. */
function readCgroupWrite(dir: string | undefined, w: CgroupWrite): { file: string; value: string | null } {
  if (dir === undefined) return { file: w.file, value: null };
  const value = readOrNull(path.join(dir, w.file));
  if (value !== null || !w.fallback) return { file: w.file, value };
  return { file: w.fallback.file, value: readOrNull(path.join(dir, w.fallback.file)) };
}

/** uts, ipc and net sysctls (and the hostname) speak for the reading thread's namespaces. */
const SYSCTL_NAMESPACES: [NamespaceType, number][] = [['uts', CLONE.NEWUTS], ['ipc', CLONE.NEWIPC], ['network', CLONE.NEWNET]];

/**
 * Runs `fn` on this thread inside the init's uts, ipc and net namespaces,
 * then steps back: setns(2) for these changes the calling thread only, and
 * `fn` reads synchronously, so no other code runs in between.
 */
function inNamespacesOf<T>(pid: number, fn: () => T): T {
  const ours = SYSCTL_NAMESPACES.map(([type, flag]) => ({ flag, fd: sys.open(`/proc/thread-self/ns/${NAMESPACES[type].proc}`, sys.O.RDONLY | sys.O.CLOEXEC, 0, 'evidence: remember our own namespace') }));
  const theirs: { flag: number; fd: number }[] = [];
  try {
    for (const [type, flag] of SYSCTL_NAMESPACES) theirs.push({ flag, fd: sys.open(`/proc/${pid}/ns/${NAMESPACES[type].proc}`, sys.O.RDONLY | sys.O.CLOEXEC, 0, `evidence: the container's ${type} namespace`) });
    for (const t of theirs) sys.setns(t.fd, t.flag, 'evidence: read the container\'s hostname and sysctls');
    return fn();
  } finally {
    for (const t of theirs) sys.close(t.fd);
    for (const o of ours) {
      sys.setns(o.fd, o.flag, 'evidence: back to our own namespace');
      sys.close(o.fd);
    }
  }
}

/** Reads everything evidence.ts compares for the container whose init is `pid`. */
export function readKernel(pid: number, plan: ContainerPlan, writes: readonly CgroupWrite[], cgroupDirs: Record<string, string>): KernelReadings {
  const proc = `/proc/${pid}`;
  const namespaces: KernelReadings['namespaces'] = {};
  for (const type of Object.keys(NAMESPACES) as NamespaceType[]) {
    // A new time namespace is the init's children's until execve moves it there.
    const file = NAMESPACES[type].proc + (type === 'time' ? '_for_children' : '');
    namespaces[type] = { host: nsOf(`/proc/self/ns/${file}`), init: nsOf(`${proc}/ns/${file}`) };
  }
  const joinedPaths = [...plan.namespaces.join.map((j) => j.path), ...(plan.namespaces.user?.path ? [plan.namespaces.user.path] : [])];
  const joined = Object.fromEntries(joinedPaths.map((p) => [p, nsOf(p) ?? (idOf(p) ? String(idOf(p)?.ino) : null)]));
  const inRoot = (p: string): string => path.join(`${proc}/root`, p);
  const exists: Record<string, boolean> = {};
  for (const s of [...plan.rootfs.readonlyPaths, ...plan.rootfs.maskedPaths]) exists[s.path] = idOf(inRoot(s.path), false) !== null;
  // Destinations resolve inside the container's root, as the init resolved them (securejoin.ts).
  const resolved: Record<string, string> = {};
  for (const p of [...plan.rootfs.mounts.map((m) => m.destination), ...plan.rootfs.readonlyPaths.map((s) => s.path), ...plan.rootfs.maskedPaths.map((s) => s.path)]) {
    const inside = '/' + path.relative(`${proc}/root`, secureJoin(`${proc}/root`, p));
    if (inside !== p) resolved[p] = inside;
  }
  const cgroupMember: Record<string, boolean | null> = {};
  for (const dir of new Set(Object.values(cgroupDirs))) {
    const procs = readOrNull(path.join(dir, 'cgroup.procs'));
    cgroupMember[dir] = procs === null ? null : procs.split('\n').includes(String(pid));
  }
  const inside = inNamespacesOf(pid, () => ({
    hostname: readOrNull('/proc/sys/kernel/hostname')?.trim() ?? null,
    domainname: readOrNull('/proc/sys/kernel/domainname')?.trim() ?? null,
    sysctl: Object.fromEntries(plan.sysctl.map((s) => [s.key, readOrNull(`/proc/sys/${s.key.replace(/\./g, '/')}`)])),
  }));
  return {
    pid,
    namespaces,
    joined,
    mountinfo: readOrNull(`${proc}/mountinfo`),
    root: idOf(`${proc}/root`),
    rootfs: idOf(plan.rootfs.rootfs),
    cwd: idOf(`${proc}/cwd`),
    cwdInRoot: idOf(inRoot(plan.process.cwd)),
    exists,
    resolved,
    cgroupValues: writes.map((w) => readCgroupWrite(cgroupDirs[w.controller], w)),
    cgroupMember,
    ...inside,
    status: readOrNull(`${proc}/status`),
    limits: readOrNull(`${proc}/limits`),
    oomScoreAdj: readOrNull(`${proc}/oom_score_adj`),
    uidMap: readOrNull(`${proc}/uid_map`),
    gidMap: readOrNull(`${proc}/gid_map`),
  };
}

/** /proc/PID/status, or null when it is gone: read again once the process has exec'd. */
export function readStatus(pid: number): string | null {
  return readOrNull(`/proc/${pid}/status`);
}
