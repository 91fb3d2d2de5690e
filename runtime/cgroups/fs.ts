// The cgroupfs manager: one class for v1, v2 and hybrid hosts. What differs
// is only which directories there are (paths()) and a few per-version rules:
//
//   create   v1 cpuset: each new level gets cpuset.cpus/mems copied from its
//            parent, or no task could join it (runc's cpusetEnsureParent +
//            cpusetCopyIfNeeded). v2: each level enables the controllers it
//            has for its children (cgroup.subtree_control), best effort, as
//            runc's CreateCgroupPath. Hybrid's unified dir needs neither.
//   freeze   v1 freezer.state (FROZEN/THAWED, retried while FREEZING, as
//            runc), else v2 cgroup.freeze waited on through cgroup.events.
//   destroy  rmdir every directory, sub-cgroups first, retrying on EBUSY
//            while exiting processes leave. Parents are kept (as runc).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError, errnoMessage, messageOf } from '../sys/errors';
import { trace } from '../sys/trace';
import type { CgroupDriver, CgroupManager, CgroupStats, CgroupWrite, LinuxResources } from './manager';
import { applyWrites, planResources, writeCgroupFile } from './resources';
import { readStatsV1, readStatsV2, type RuncStats } from './stats';

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepMs(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

function code(e: unknown): string {
  return e && typeof e === 'object' && 'code' in e && typeof e.code === 'string' ? e.code : 'EIO';
}

function readOr(file: string, fallback: string | null = null): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

function exists(p: string): boolean {
  return fs.existsSync(p);
}

/** Limits that mean "unlimited" on v1 (PAGE_COUNTER_MAX × page size, rounded). */
const V1_UNLIMITED = 2 ** 62;

export class FsManager implements CgroupManager {
  private readonly dirs: Record<string, string>;

  constructor(
    readonly driver: CgroupDriver,
    dirs: Record<string, string>,
  ) {
    this.dirs = { ...dirs };
  }

  paths(): Record<string, string> {
    return { ...this.dirs };
  }

  /** Each directory once (co-mounted controllers share one), v1 ones first, unified last. */
  private uniqueDirs(): string[] {
    const out: string[] = [];
    for (const [c, d] of Object.entries(this.dirs)) if (c !== 'unified' && !out.includes(d)) out.push(d);
    const u = this.dirs['unified'];
    if (u !== undefined && !out.includes(u)) out.push(u);
    return out;
  }

  create(): void {
    const cpuset = this.dirs['cpuset'];
    for (const dir of this.uniqueDirs()) {
      if (dir === cpuset) createCpuset(dir);
      else if (dir === this.dirs['unified'] && this.driver === 'v2') createV2(dir);
      else mkdirP(dir);
    }
  }

  addProcess(pid: number): void {
    for (const dir of this.uniqueDirs()) {
      const file = path.join(dir, 'cgroup.procs');
      try {
        writeCgroupFile(file, String(pid), 'move the process into the container cgroup');
      } catch (e) {
        // runc's words, which its users grep for ("error adding pid N to cgroups: ...: no such file or directory").
        throw new RuntimeError(`error adding pid ${pid} to cgroups: ${file}: ${errnoMessage(code(e))} (${code(e)})`, { code: code(e), cause: e });
      }
    }
  }

  private version(): 1 | 2 {
    return this.driver === 'v2' ? 2 : 1;
  }

  plan(resources: LinuxResources): CgroupWrite[] {
    return planResources(this.version(), resources).writes;
  }

  setResources(resources: LinuxResources): string[] {
    const plan = planResources(this.version(), resources);
    for (const w of plan.warnings) trace({ kind: 'cgroup', call: 'skip', result: w });
    return [...plan.warnings, ...applyWrites(this.dirs, plan.writes)];
  }

  pids(): number[] {
    const set = new Set<number>();
    for (const dir of this.uniqueDirs()) {
      const text = readOr(path.join(dir, 'cgroup.procs'));
      if (text === null) continue;
      for (const line of text.split('\n')) if (/^\d+$/.test(line)) set.add(Number(line));
    }
    return [...set].sort((a, b) => a - b);
  }

  freeze(frozen: boolean): void {
    const freezer = this.dirs['freezer'];
    const unified = this.dirs['unified'];
    if (freezer !== undefined) freezeV1(freezer, frozen);
    else if (unified !== undefined && exists(path.join(unified, 'cgroup.freeze'))) freezeV2(unified, frozen);
    else throw new RuntimeError(`cannot ${frozen ? 'freeze' : 'thaw'} the container: no freezer (neither v1 freezer nor cgroup.freeze)`, { code: 'ENOTSUP' });
  }

  oomKills(): number {
    const memory = this.dirs['memory'];
    const unified = this.dirs['unified'];
    const file = memory !== undefined ? path.join(memory, 'memory.oom_control') : unified !== undefined ? path.join(unified, 'memory.events') : null;
    const m = file ? /^oom_kill (\d+)$/m.exec(readOr(file) ?? '') : null;
    return m ? Number(m[1]) : 0;
  }

  frozen(): boolean {
    const freezer = this.dirs['freezer'];
    const unified = this.dirs['unified'];
    if (freezer !== undefined) return /^(FROZEN|FREEZING)/.test(readOr(path.join(freezer, 'freezer.state')) ?? '');
    return unified !== undefined && (readOr(path.join(unified, 'cgroup.freeze')) ?? '').trim() === '1';
  }

  destroy(): void {
    const errors: string[] = [];
    const deadline = Date.now() + 2000; // for all of them: exiting processes leave every hierarchy at once
    for (const dir of this.uniqueDirs().reverse()) {
      try {
        removeCgroup(dir, deadline);
      } catch (e) {
        errors.push(messageOf(e));
      }
    }
    if (errors.length > 0) throw new RuntimeError(`cannot remove the container cgroup: ${errors.join('; ')}`, { code: 'EBUSY' });
  }

  stats(): CgroupStats {
    const s: CgroupStats = {};
    const num = (dir: string | undefined, file: string): number | undefined => {
      if (dir === undefined) return undefined;
      const t = readOr(path.join(dir, file))?.trim();
      return t !== undefined && /^\d+$/.test(t) ? Number(t) : undefined;
    };
    const set = <K extends keyof CgroupStats>(k: K, v: number | undefined): void => {
      if (v !== undefined) s[k] = v;
    };
    const u = this.dirs['unified'];
    if (this.driver === 'v2') {
      set('memoryUsage', num(u, 'memory.current'));
      set('memoryLimit', num(u, 'memory.max'));
      const cpu = u === undefined ? null : readOr(path.join(u, 'cpu.stat'));
      const usec = cpu ? /^usage_usec (\d+)$/m.exec(cpu)?.[1] : undefined;
      if (usec !== undefined) s.cpuUsageNs = Number(usec) * 1000;
      set('pidsCurrent', num(u, 'pids.current'));
    } else {
      set('memoryUsage', num(this.dirs['memory'], 'memory.usage_in_bytes'));
      const limit = num(this.dirs['memory'], 'memory.limit_in_bytes');
      if (limit !== undefined && limit < V1_UNLIMITED) s.memoryLimit = limit;
      set('cpuUsageNs', num(this.dirs['cpuacct'], 'cpuacct.usage'));
      set('pidsCurrent', num(this.dirs['pids'], 'pids.current'));
    }
    return s;
  }

  runcStats(): RuncStats {
    // Hybrid: every controller is v1; the unified directory has no controller files.
    return this.driver === 'v2' ? readStatsV2(this.dirs['unified']) : readStatsV1(this.dirs);
  }
}

function mkdirOne(dir: string): boolean {
  try {
    fs.mkdirSync(dir, 0o755);
  } catch (e) {
    if (code(e) === 'EEXIST') return false;
    trace({ kind: 'cgroup', call: `mkdir ${dir}`, result: `= -1 ${code(e)}`, why: 'linux.cgroupsPath' });
    throw new RuntimeError(`cannot create cgroup ${dir}: ${code(e)} (${messageOf(e)})`, { code: code(e), cause: e });
  }
  trace({ kind: 'cgroup', call: `mkdir ${dir}`, result: '= 0', why: 'linux.cgroupsPath' });
  return true;
}

function mkdirP(dir: string): void {
  if (exists(dir)) return;
  const parent = path.dirname(dir);
  if (parent !== dir) mkdirP(parent);
  mkdirOne(dir);
}

/** Directories from just below the hierarchy root down to dir; the root is the topmost ancestor holding `marker`. */
function levelsBelowRoot(dir: string, marker: string): string[] {
  const chain: string[] = [];
  let cur = dir;
  for (;;) {
    const parent = path.dirname(cur);
    if (parent === cur) throw new RuntimeError(`cannot create cgroup ${dir}: no cgroup hierarchy above it (no ${marker})`, { code: 'ENOENT' });
    chain.unshift(cur);
    if (exists(path.join(parent, marker)) && !exists(path.join(path.dirname(parent), marker))) return chain;
    cur = parent;
  }
}

function createCpuset(dir: string): void {
  for (const level of levelsBelowRoot(dir, 'cpuset.cpus')) {
    mkdirOne(level);
    copyIfEmpty(level, 'cpuset.cpus');
    copyIfEmpty(level, 'cpuset.mems');
  }
}

/** A new v1 cpuset has empty cpus/mems and accepts no task until they are set. */
function copyIfEmpty(dir: string, file: string): void {
  const cur = readOr(path.join(dir, file), '')?.trim() ?? '';
  if (cur !== '') return;
  const parentValue = readOr(path.join(path.dirname(dir), file), '')?.trim() ?? '';
  const target = path.join(dir, file);
  try {
    writeCgroupFile(target, parentValue, `a new cpuset cgroup inherits ${file} from its parent`);
  } catch (e) {
    throw new RuntimeError(`cannot write "${parentValue}" to ${target} (copied from the parent cpuset): ${code(e)} (${messageOf(e)})`, { code: code(e), cause: e });
  }
}

function createV2(dir: string): void {
  for (const level of levelsBelowRoot(dir, 'cgroup.controllers')) {
    const parent = path.dirname(level);
    enableControllers(parent);
    mkdirOne(level);
  }
}

/**
 * Lets the children of `dir` use every controller `dir` has. Best effort,
 * as runc: a cgroup with processes in it cannot enable controllers (EBUSY),
 * and setResources reports what is really missing.
 */
function enableControllers(dir: string): void {
  const available = (readOr(path.join(dir, 'cgroup.controllers')) ?? '').split(/\s+/).filter(Boolean);
  const enabled = new Set((readOr(path.join(dir, 'cgroup.subtree_control')) ?? '').split(/\s+/).filter(Boolean));
  const missing = available.filter((c) => !enabled.has(c));
  if (missing.length === 0) return;
  const file = path.join(dir, 'cgroup.subtree_control');
  const why = 'enable controllers for the container cgroup';
  try {
    writeCgroupFile(file, missing.map((c) => '+' + c).join(' '), why);
  } catch {
    for (const c of missing) {
      try {
        writeCgroupFile(file, '+' + c, why);
      } catch {
        // not delegated here; setResources will name the missing file
      }
    }
  }
}

function freezeV1(dir: string, frozen: boolean): void {
  const file = path.join(dir, 'freezer.state');
  const want = frozen ? 'FROZEN' : 'THAWED';
  const why = frozen ? 'pause' : 'resume';
  const deadline = Date.now() + 10000;
  const write = (v: string): void => {
    try {
      writeCgroupFile(file, v, why);
    } catch (e) {
      throw new RuntimeError(`cannot write "${v}" to ${file} (${why}): ${code(e)} (${messageOf(e)})`, { code: code(e), cause: e });
    }
  };
  for (let i = 0; ; i++) {
    // runc: v1 freezing can stall while tasks keep arriving; thawing now and
    // then and writing FROZEN again gets it through.
    if (frozen && i % 50 === 49) {
      write('THAWED');
      sleepMs(10);
    }
    write(want);
    const state = readOr(file)?.trim();
    if (state === want) return;
    if (state !== 'FREEZING') {
      throw new RuntimeError(`cannot ${why} cgroup ${dir}: freezer.state reads "${state ?? '(unreadable)'}" after writing ${want}`, { code: 'EIO' });
    }
    if (Date.now() > deadline) {
      write('THAWED');
      throw new RuntimeError(`cannot freeze cgroup ${dir}: still FREEZING after 10 s (thawed again)`, { code: 'ETIMEDOUT' });
    }
    sleepMs(1);
  }
}

function freezeV2(dir: string, frozen: boolean): void {
  const file = path.join(dir, 'cgroup.freeze');
  const why = frozen ? 'pause' : 'resume';
  try {
    writeCgroupFile(file, frozen ? '1' : '0', why);
  } catch (e) {
    throw new RuntimeError(`cannot write "${frozen ? 1 : 0}" to ${file} (${why}): ${code(e)} (${messageOf(e)})`, { code: code(e), cause: e });
  }
  const want = frozen ? 'frozen 1' : 'frozen 0';
  const deadline = Date.now() + 10000;
  for (;;) {
    const events = readOr(path.join(dir, 'cgroup.events')) ?? '';
    if (events.split('\n').includes(want)) return;
    if (Date.now() > deadline) {
      if (frozen) writeCgroupFile(file, '0', 'undo a freeze that did not complete');
      throw new RuntimeError(`cannot ${why} cgroup ${dir}: cgroup.events did not reach "${want}" within 10 s`, { code: 'ETIMEDOUT' });
    }
    sleepMs(1);
  }
}

/** rmdir, sub-cgroups first; retry EBUSY until the deadline (processes still exiting). */
function removeCgroup(dir: string, deadline: number): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (code(e) === 'ENOENT') return;
    throw new RuntimeError(`cannot remove cgroup ${dir}: ${code(e)} (${messageOf(e)})`, { code: code(e), cause: e });
  }
  for (const ent of entries) if (ent.isDirectory()) removeCgroup(path.join(dir, ent.name), deadline);
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    try {
      fs.rmdirSync(dir);
      trace({ kind: 'cgroup', call: `rmdir ${dir}`, result: '= 0', why: 'delete the container cgroup' });
      return;
    } catch (e) {
      const c = code(e);
      if (c === 'ENOENT') return;
      if (c !== 'EBUSY' || Date.now() > deadline) {
        trace({ kind: 'cgroup', call: `rmdir ${dir}`, result: `= -1 ${c}`, why: 'delete the container cgroup' });
        const procs = (readOr(path.join(dir, 'cgroup.procs')) ?? '').trim().split('\n').filter(Boolean);
        const who = c === 'EBUSY' && procs.length > 0 ? ` (processes still in it: ${procs.join(', ')})` : '';
        throw new RuntimeError(`cannot remove cgroup ${dir}: ${c} (${messageOf(e)})${who}`, { code: c, cause: e });
      }
      sleepMs(delay);
    }
  }
}
