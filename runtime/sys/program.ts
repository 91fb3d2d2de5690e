// The container init's instruction set: what native/src/init.c can do, one
// operation per kernel call (or per small mechanism: a lookup inside the
// rootfs, a hook run, a pty handed over). The runtime decides everything and
// writes it down as a program with ProgramBuilder; the init runs it and
// reports each result (runtime/init/executor.ts). No policy lives in C.
//
// Each op carries the C call it stands for and why it is made, for --debug
// and explain, and the message the init gives if it fails (after `create`
// has exited, the init writes it to stderr itself).

import { constants } from 'node:os';
import { AT_RECURSIVE, MNT_DETACH, cloneFlagNames, msFlagNames } from './constants';

/** Same numbers as the OP_* defines of native/src/init.h (test/unit/init-ops.test.ts compares them). */
export const OP = {
  UNSHARE: 1,
  SETNS: 2,
  WRITE_FILE: 3,
  MOUNT: 4,
  UMOUNT2: 5,
  REMOUNT: 6,
  MOUNT_SETATTR: 7,
  OPEN_IN_ROOT: 8,
  CHECK_UNDER: 9,
  OPEN: 10,
  CLOSE: 11,
  CHDIR: 12,
  CHROOT: 13,
  PIVOT_ROOT: 14,
  MKNOD: 15,
  CHMOD: 16,
  LCHOWN: 17,
  SYMLINK: 18,
  UNLINK: 19,
  STAT_MODE: 20,
  COPY_TREE: 21,
  SETHOSTNAME: 22,
  SETDOMAINNAME: 23,
  HOOK: 24,
  SYNC: 25,
  REPORT: 26,
  CONSOLE: 27,
  ATTACH_CONSOLE: 28,
  FIND_EXEC: 29,
  WAIT_FIFO: 30,
  SETRLIMIT: 31,
  UMASK: 32,
  DUP2: 33,
  CLOEXEC_FROM: 34,
  SET_CLOEXEC: 35,
  PRCTL: 36,
  SETGROUPS: 37,
  SETRESGID: 38,
  SETRESUID: 39,
  CAPSET: 40,
  RESET_SIGNALS: 41,
  SECCOMP: 42,
  EXECVE: 43,
  FCHDIR: 44,
  JUMP: 45,
  WAIT_EOF: 46,
  PAUSE: 47,
  FIX_STDIO: 48,
  MOVE_MOUNT: 49,
} as const;

/** Program flag: report every op's result, not only failures (--debug). */
export const REPORT_EACH = 1;

/** A slot of the init's fd table: filled by an op's result, named in later ops. */
const SECCOMP_FILTER_FLAG_NEW_LISTENER = 8;

export type Slot = number & { readonly __slot: unique symbol };

/** A path: literal, or "/proc/self/fd/<fd of slot>" + rest, resolved by the init when the op runs. */
export type PathArg = string | { slot: Slot; rest?: string };

type Arg = { t: 'i'; v: bigint } | { t: 's'; v: Buffer } | { t: 'n' } | { t: 'p'; slot: number; v: Buffer } | { t: 'l'; v: string[] };

export interface Label {
  at: number | null;
}

/** On an errno (or success), go to a label further on, go on as if it had worked ('next'), or fail with this message. */
export interface Handler {
  on: string | 'success' | 'any';
  to: Label | 'fail' | 'next';
  message?: string;
}

export interface Op {
  code: number;
  args: Arg[];
  store: Slot | null;
  handlers: Handler[];
  errmsg: string;
  /** As written in C, for the trace. */
  call: string;
  why: string;
  /** What a non-zero result means, for the trace. */
  note?: (result: number) => string;
}

const q = (s: string | null): string => (s === null ? 'NULL' : JSON.stringify(s));
const int = (v: number | bigint): Arg => ({ t: 'i', v: BigInt.asIntN(64, BigInt(v)) });
const str = (v: string | Buffer | null): Arg => (v === null ? { t: 'n' } : { t: 's', v: typeof v === 'string' ? Buffer.from(v) : v });
const list = (v: readonly string[]): Arg => ({ t: 'l', v: [...v] });

function errnoNumber(name: string): number {
  const n = (constants.errno as Record<string, number>)[name];
  if (n === undefined) throw new Error(`init program: unknown errno ${name}`);
  return n;
}

export interface OpOptions {
  why: string;
  /** The message if it fails; the init appends ": ERRNO (text)". Default: `${why}: ${call}`. */
  errmsg?: string;
  on?: Handler[];
}

/**
 * Writes a program. Each method appends one op and returns the slot it
 * fills, if any. Labels are for the few steps that depend on an errno (a
 * path that may be missing, a node that may exist): `on` handlers jump
 * forward to them.
 */
export class ProgramBuilder {
  ops: Op[] = [];
  private free: number[] = [];
  private next = 0;
  private names = new Map<number, string>();

  /** The ops written since the last take: one program. Slots stay allocated across programs, as in the init. */
  take(): Op[] {
    const out = this.ops;
    this.ops = [];
    return out;
  }

  label(): Label {
    return { at: null };
  }

  place(l: Label): void {
    l.at = this.ops.length;
  }

  private slot(name: string): Slot {
    const n = this.free.pop() ?? this.next++;
    if (n >= 64) throw new Error('init program: more than 64 fds open at once');
    this.names.set(n, name);
    return n as Slot;
  }

  private path(p: PathArg): { arg: Arg; text: string } {
    if (typeof p === 'string') return { arg: str(p), text: q(p) };
    return { arg: { t: 'p', slot: p.slot, v: Buffer.from(p.rest ?? '') }, text: `${this.names.get(p.slot) ?? `<fd ${p.slot}>`}${p.rest ? '+' + q(p.rest) : ''}` };
  }

  private push(code: number, call: string, args: Arg[], o: OpOptions, store: Slot | null = null): void {
    this.ops.push({ code, args, store, handlers: o.on ?? [], errmsg: o.errmsg ?? `${o.why}: ${call}`, call, why: o.why });
  }

  unshare(flags: number, o: OpOptions): void {
    this.push(OP.UNSHARE, `unshare(${cloneFlagNames(flags)})`, [int(flags)], o);
  }

  setns(path: string, nstype: number, o: OpOptions): void {
    this.push(OP.SETNS, `setns(open(${q(path)}), ${cloneFlagNames(nstype)})`, [str(path), int(nstype)], o);
  }

  writeFile(path: PathArg, content: string, o: OpOptions): void {
    const p = this.path(path);
    this.push(OP.WRITE_FILE, `write(open(${p.text}), ${q(content)})`, [p.arg, str(content)], o);
  }

  mount(source: PathArg | null, target: PathArg, fstype: string | null, flags: number, data: string | null, o: OpOptions): void {
    const s = source === null ? { arg: str(null), text: 'NULL' } : this.path(source);
    const t = this.path(target);
    this.push(OP.MOUNT, `mount(${s.text}, ${t.text}, ${q(fstype)}, ${msFlagNames(flags)}, ${q(data)})`, [s.arg, t.arg, str(fstype), int(flags), str(data)], o);
  }

  /** move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH|MOVE_MOUNT_T_SYMLINKS): attach the detached tree `fd` (the init's fd, not a slot). */
  moveMount(fd: number, target: PathArg, name: string, o: OpOptions): void {
    const t = this.path(target);
    this.push(OP.MOVE_MOUNT, `move_mount(${fd} /* ${name} */, "", AT_FDCWD, ${t.text}, MOVE_MOUNT_F_EMPTY_PATH|MOVE_MOUNT_T_SYMLINKS)`, [int(fd), t.arg], o);
  }

  umount2(target: PathArg, flags: number, o: OpOptions): void {
    const t = this.path(target);
    this.push(OP.UMOUNT2, `umount2(${t.text}, ${flags === MNT_DETACH ? 'MNT_DETACH' : flags})`, [t.arg, int(flags)], o);
  }

  /** MS_REMOUNT with `flags` | (the target's current flags & keep); on EPERM again with lockSource's locked flags (remount.ts). */
  remount(target: PathArg, flags: number, cleared: number, lockSource: PathArg, data: string | null, keep: number, o: OpOptions): void {
    const t = this.path(target);
    const l = this.path(lockSource);
    const extra = keep ? ` | (current & ${msFlagNames(keep)})` : '';
    this.push(OP.REMOUNT, `mount(NULL, ${t.text}, NULL, ${msFlagNames(flags)}${extra}, ${q(data)})`, [t.arg, int(flags), int(cleared), l.arg, str(data), int(keep)], o);
    const op = this.ops[this.ops.length - 1] as Op;
    op.note = (r) => `(EPERM, then again keeping the locked ${msFlagNames(r & ~flags)} of ${l.text})`;
  }

  mountSetattr(target: PathArg, atFlags: number, set: number, clear: number, o: OpOptions): void {
    const t = this.path(target);
    this.push(OP.MOUNT_SETATTR, `mount_setattr(AT_FDCWD, ${t.text}, ${atFlags & AT_RECURSIVE ? 'AT_RECURSIVE' : atFlags}, {set=0x${set.toString(16)}, clr=0x${clear.toString(16)}})`, [t.arg, int(atFlags), int(set), int(clear)], o);
  }

  /**
   * An O_PATH fd of ROOT/UNSAFE, looked up by the kernel inside ROOT
   * (securejoin.ts does the same in TypeScript). What is missing is made:
   * directories ('mkdir'), a file ('file'), or as `like` is (a bind source:
   * a directory for a directory, else a file).
   */
  openInRoot(root: string, unsafe: string, how: 'open' | 'mkdir' | 'file' | { like: string }, opts: { noSymlinks?: boolean; directory?: boolean }, o: OpOptions): Slot {
    const s = this.slot(`rootfs+${q(unsafe)}`);
    const verb = how === 'open' ? 'openat2' : how === 'mkdir' ? 'mkdir -p, openat2' : how === 'file' ? 'create, openat2' : `make like ${q(how.like)}, openat2`;
    const res = `RESOLVE_IN_ROOT${opts.noSymlinks ? '|RESOLVE_NO_SYMLINKS' : ''}`;
    const code = how === 'open' ? 0 : how === 'mkdir' ? 1 : how === 'file' ? 2 : 3;
    const like = typeof how === 'object' ? how.like : null;
    this.push(OP.OPEN_IN_ROOT, `${verb}(${q(root)}, ${q(unsafe)}, O_PATH, ${res})`, [str(root), str(unsafe), int(code), int(opts.noSymlinks ? 1 : 0), int(opts.directory ? 1 : 0), str(like)], o, s);
    return s;
  }

  /** Fails when where `fd` leads, seen from `root`, is `prefix` or under it, unless it is one of `allowed`. */
  checkUnder(fd: Slot, root: string, prefix: string, allowed: readonly string[], o: OpOptions): void {
    const p = this.path({ slot: fd });
    this.push(OP.CHECK_UNDER, `readlink(${p.text}) not under ${q(prefix)}`, [p.arg, str(root), str(prefix), list(allowed)], o);
  }

  open(path: PathArg, flags: number, mode: number, name: string, o: OpOptions): Slot {
    const p = this.path(path);
    const s = this.slot(name);
    this.push(OP.OPEN, `open(${p.text}, 0${flags.toString(8)}|O_CLOEXEC)`, [p.arg, int(flags), int(mode)], o, s);
    return s;
  }

  /** Closes a slot's fd (nothing if it is empty). A slot closed on two paths is freed once. */
  close(fd: Slot): void {
    const name = this.names.get(fd) ?? String(fd);
    this.push(OP.CLOSE, `close(${name})`, [int(fd)], { why: 'done with it' });
    if (!this.free.includes(fd)) this.free.push(fd);
  }

  /** Waits until the runtime has hung up (exited). */
  waitEof(o: OpOptions): void {
    this.push(OP.WAIT_EOF, 'read(channel) until EOF', [], o);
  }

  /** Goes on at `to`. */
  jump(to: Label): void {
    this.push(OP.JUMP, 'goto', [], { why: 'skip the other way', on: [{ on: 'success', to }] });
  }

  chdir(path: PathArg, o: OpOptions): void {
    const p = this.path(path);
    this.push(OP.CHDIR, `chdir(${p.text})`, [p.arg], o);
  }

  fchdir(fd: Slot, o: OpOptions): void {
    this.push(OP.FCHDIR, `fchdir(${this.names.get(fd)})`, [int(fd)], o);
  }

  chroot(path: string, o: OpOptions): void {
    this.push(OP.CHROOT, `chroot(${q(path)})`, [str(path)], o);
  }

  pivotRoot(newRoot: string, putOld: string, o: OpOptions): void {
    this.push(OP.PIVOT_ROOT, `pivot_root(${q(newRoot)}, ${q(putOld)})`, [str(newRoot), str(putOld)], o);
  }

  mknod(path: PathArg, mode: number, major: number, minor: number, o: OpOptions): void {
    const p = this.path(path);
    this.push(OP.MKNOD, `mknod(${p.text}, 0${mode.toString(8)}, makedev(${major}, ${minor}))`, [p.arg, int(mode), int(major), int(minor)], o);
  }

  /** mode null: the mode the last statMode read. */
  chmod(path: PathArg, mode: number | null, o: OpOptions): void {
    const p = this.path(path);
    this.push(OP.CHMOD, `chmod(${p.text}, ${mode === null ? '<the mode read before>' : '0' + mode.toString(8)})`, [p.arg, int(mode ?? -1)], o);
  }

  lchown(path: PathArg, uid: number, gid: number, o: OpOptions): void {
    const p = this.path(path);
    this.push(OP.LCHOWN, `lchown(${p.text}, ${uid}, ${gid})`, [p.arg, int(uid), int(gid)], o);
  }

  symlink(target: string, linkPath: PathArg, o: OpOptions): void {
    const p = this.path(linkPath);
    this.push(OP.SYMLINK, `symlink(${q(target)}, ${p.text})`, [str(target), p.arg], o);
  }

  unlink(path: PathArg, o: OpOptions): void {
    const p = this.path(path);
    this.push(OP.UNLINK, `unlink(${p.text})`, [p.arg], o);
  }

  statMode(path: PathArg, o: OpOptions): void {
    const p = this.path(path);
    this.push(OP.STAT_MODE, `stat(${p.text}).st_mode`, [p.arg], o);
  }

  copyTree(from: PathArg, to: PathArg, o: OpOptions): void {
    const f = this.path(from);
    const t = this.path(to);
    this.push(OP.COPY_TREE, `cp -a ${f.text}/. ${t.text}`, [f.arg, t.arg], o);
  }

  sethostname(name: string, o: OpOptions): void {
    this.push(OP.SETHOSTNAME, `sethostname(${q(name)}, ${Buffer.byteLength(name)})`, [str(name)], o);
  }

  setdomainname(name: string, o: OpOptions): void {
    this.push(OP.SETDOMAINNAME, `setdomainname(${q(name)}, ${Buffer.byteLength(name)})`, [str(name)], o);
  }

  /** An OCI hook: `field` names it in errors, `state` goes to its stdin. */
  hook(field: string, path: string, args: readonly string[], env: readonly string[], timeout: number, state: string): void {
    this.push(OP.HOOK, `${path} ${JSON.stringify(args.slice(1))} <state`, [str(field), str(path), list(args), list(env), int(timeout), str(state)], { why: field, errmsg: '' });
  }

  /** Stop, say `name`, and wait for the next program. Ends a program. */
  sync(name: string): void {
    this.push(OP.SYNC, `sync ${name}`, [str(name)], { why: 'wait for the runtime' });
  }

  /** Say `name` and go on. */
  report(name: string): void {
    this.push(OP.REPORT, `report ${name}`, [str(name)], { why: 'tell the runtime' });
  }

  console(socketFd: number, rows: number, cols: number, o: OpOptions): Slot {
    const s = this.slot('the pty slave');
    this.push(OP.CONSOLE, `open("/dev/ptmx"), unlockpt, open(ptsname), TIOCSWINSZ ${rows}x${cols}, sendmsg(${socketFd}, SCM_RIGHTS master)`, [int(socketFd), int(rows), int(cols)], o, s);
    return s;
  }

  attachConsole(slave: Slot, o: OpOptions): void {
    this.push(OP.ATTACH_CONSOLE, 'ioctl(slave, TIOCSCTTY); dup2(slave, 0..2)', [int(slave)], o);
  }

  findExec(candidates: readonly string[], o: OpOptions): void {
    this.push(OP.FIND_EXEC, `stat(${candidates.map(q).join(' | ')}): the first executable`, [list(candidates)], o);
  }

  waitFifo(fd: Slot, o: OpOptions): void {
    this.push(OP.WAIT_FIFO, `poll(${this.names.get(fd)}, POLLIN, -1); read(1)`, [int(fd)], o);
  }

  setrlimit(resource: number, name: string, soft: bigint, hard: bigint, o: OpOptions): void {
    this.push(OP.SETRLIMIT, `setrlimit(${name}, {${soft}, ${hard}})`, [int(resource), int(soft), int(hard)], o);
  }

  umask(mask: number, o: OpOptions): void {
    this.push(OP.UMASK, `umask(0${mask.toString(8)})`, [int(mask)], o);
  }

  dup2(from: number, to: number, o: OpOptions): void {
    this.push(OP.DUP2, `dup2(${from}, ${to})`, [int(from), int(to)], o);
  }

  cloexecFrom(first: number, o: OpOptions): void {
    this.push(OP.CLOEXEC_FROM, `close_range(${first}, ~0U, CLOSE_RANGE_CLOEXEC)`, [int(first)], o);
  }

  setCloexec(fd: number, on: boolean, o: OpOptions): void {
    this.push(OP.SET_CLOEXEC, `fcntl(${fd}, F_SETFD, ${on ? 'FD_CLOEXEC' : '0'})`, [int(fd), int(on ? 1 : 0)], o);
  }

  prctl(option: number, a2: number, a3: number, label: string, o: OpOptions): void {
    this.push(OP.PRCTL, `prctl(${label})`, [int(option), int(a2), int(a3)], o);
  }

  setgroups(gids: readonly number[], o: OpOptions): void {
    this.push(OP.SETGROUPS, `setgroups(${gids.length}, [${gids.join(', ')}])`, [list(gids.map(String))], o);
  }

  setresgid(gid: number, o: OpOptions): void {
    this.push(OP.SETRESGID, `setresgid(${gid}, ${gid}, ${gid})`, [int(gid)], o);
  }

  /** runc's fixStdioPermissions (native/src/process.c op_fix_stdio). */
  fixStdio(uid: number, o: OpOptions): void {
    this.push(OP.FIX_STDIO, `fchown(0..2, ${uid}, <their gid>) unless /dev/null or a file`, [int(uid)], o);
  }

  setresuid(uid: number, o: OpOptions): void {
    this.push(OP.SETRESUID, `setresuid(${uid}, ${uid}, ${uid})`, [int(uid)], o);
  }

  capset(effective: bigint, permitted: bigint, inheritable: bigint, o: OpOptions): void {
    const h = (v: bigint): string => '0x' + v.toString(16);
    this.push(OP.CAPSET, `capset(eff=${h(effective)}, prm=${h(permitted)}, inh=${h(inheritable)})`, [int(effective), int(permitted), int(inheritable)], o);
  }

  resetSignals(o: OpOptions): void {
    this.push(OP.RESET_SIGNALS, 'sigaction(1..64, SIG_DFL); sigprocmask(SIG_SETMASK, {})', [], o);
  }

  /** Loads a filter; with `listener` (SECCOMP_FILTER_FLAG_NEW_LISTENER) returns the slot of its notify fd. */
  seccomp(flags: number, program: Buffer, o: OpOptions, listener = false): Slot | null {
    const fd = listener ? this.slot('seccomp listener') : null;
    const f = flags | (listener ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0);
    this.push(OP.SECCOMP, `seccomp(SECCOMP_SET_MODE_FILTER, 0x${f.toString(16)}, {${program.length / 8} insns})`, [int(f), str(program)], o, fd);
    return fd;
  }

  /** Say `name` and the fd in `fd`, and wait until the runtime has acted on it (one byte back). */
  pause(name: string, fd: Slot, o: OpOptions): void {
    this.push(OP.PAUSE, `pause ${name} (${this.names.get(fd) ?? `<fd ${fd}>`})`, [str(name), int(fd)], o);
  }

  /** execve of the path findExec chose. */
  execve(args: readonly string[], env: readonly string[], o: OpOptions): void {
    this.push(OP.EXECVE, `execve(<found>, ${JSON.stringify(args)}, [${env.length} vars])`, [list(args), list(env)], o);
  }
}

// ---------------------------------------------------------------- encoding

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n, 0);
  return b;
}

function i32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n, 0);
  return b;
}

function bytes(v: Buffer): Buffer[] {
  return [u32(v.length), v];
}

function encodeArg(a: Arg): Buffer[] {
  switch (a.t) {
    case 'i': {
      const b = Buffer.alloc(9);
      b.write('i', 0);
      b.writeBigInt64LE(a.v, 1);
      return [b];
    }
    case 's':
      return [Buffer.from('s'), ...bytes(a.v)];
    case 'n':
      return [Buffer.from('n')];
    case 'p':
      return [Buffer.from('p'), i32(a.slot), ...bytes(a.v)];
    case 'l':
      return [Buffer.from('l'), u32(a.v.length), ...a.v.flatMap((s) => bytes(Buffer.from(s)))];
  }
}

/** The wire form native/src/init.c reads (its header describes it). */
export function encodeProgram(ops: readonly Op[], flags: number): Buffer {
  const parts: Buffer[] = [Buffer.from('MCP1'), u32(flags), u32(ops.length)];
  ops.forEach((op, i) => {
    const body: Buffer[] = [];
    const head = Buffer.alloc(4);
    head.writeUInt16LE(op.code, 0);
    head.writeUInt8(op.store ?? 0xff, 2);
    head.writeUInt8(op.handlers.length, 3);
    body.push(head);
    for (const h of op.handlers) {
      const err = h.on === 'success' ? -1 : h.on === 'any' ? 0 : errnoNumber(h.on);
      let action = h.to === 'next' ? 0 : -1;
      if (h.to !== 'fail' && h.to !== 'next') {
        if (h.to.at === null || h.to.at <= i) throw new Error(`init program: op ${i} (${op.call}) jumps to a label not placed after it`);
        action = h.to.at - i - 1;
      }
      body.push(i32(err), i32(action), ...bytes(Buffer.from(h.message ?? '')));
    }
    body.push(...bytes(Buffer.from(op.errmsg)), Buffer.from([op.args.length]));
    for (const a of op.args) body.push(...encodeArg(a));
    const b = Buffer.concat(body);
    parts.push(u32(b.length), b);
  });
  return Buffer.concat(parts);
}
