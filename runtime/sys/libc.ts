// The one syscall layer of the Node side: typed wrappers over libc through
// koffi. Every call is traced (see trace.ts) with a one-line note of why it
// is made, and every failure becomes a SyscallError naming the call, its
// arguments and errno. The container's init makes its calls in C
// (native/src/init.c) from the ops of program.ts, traced the same way.

import koffi from 'koffi';
import { SyscallError } from './errors';
import { trace, tracing } from './trace';
import { cloneFlagNames, msFlagNames, O, PR } from './constants';

export { AT_RECURSIVE, O, PR, PR_CAP_AMBIENT_CLEAR_ALL, PR_CAP_AMBIENT_RAISE } from './constants';

const libc = koffi.load('libc.so.6');

const c = {
  syscall: libc.func('long syscall(long, ...)'),
  mount: libc.func('int mount(const char *, const char *, const char *, unsigned long, const char *)'),
  umount2: libc.func('int umount2(const char *, int)'),
  unshare: libc.func('int unshare(int)'),
  setns: libc.func('int setns(int, int)'),
  chdir: libc.func('int chdir(const char *)'),
  mknod: libc.func('int mknod(const char *, unsigned int, unsigned long)'),
  open: libc.func('int open(const char *, int, unsigned int)'),
  close: libc.func('int close(int)'),
  fcntl: libc.func('int fcntl(int, int, ...)'),
  prctl: libc.func('int prctl(int, unsigned long, unsigned long, unsigned long, unsigned long)'),
  setsid: libc.func('int setsid()'),
  gettid: libc.func('int gettid()'),
  flock: libc.func('int flock(int, int)'),
  socketpair: libc.func('int socketpair(int, int, int, _Out_ int *)'),
  pipe2: libc.func('int pipe2(_Out_ int *, int)'),
  socket: libc.func('int socket(int, int, int)'),
  connect: libc.func('int connect(int, const void *, unsigned int)'),
  bind: libc.func('int bind(int, const void *, unsigned int)'),
  listen: libc.func('int listen(int, int)'),
  sendmsg: libc.func('long sendmsg(int, const void *, int)'),
  recvmsg: libc.func('long recvmsg(int, void *, int)'),
  ioctl: libc.func('int ioctl(int, unsigned long, ...)'),
  dup3: libc.func('int dup3(int, int, int)'),
  statfs: libc.func('int statfs(const char *, void *)'),
  kill: libc.func('int kill(int, int)'),
  execve: libc.func('int execve(const char *, const char **, const char **)'),
};

const SYS = {
  openat2: 437,
  open_tree: 428,
  pidfd_open: 434,
  pidfd_getfd: 438,
  waitid: 247,
} as const;


export const RESOLVE = {
  NO_XDEV: 0x01,
  NO_MAGICLINKS: 0x02,
  NO_SYMLINKS: 0x04,
  BENEATH: 0x08,
  IN_ROOT: 0x10,
} as const;

const F_GETFD = 1;
const F_SETFD = 2;
const F_GETFL = 3;
const F_SETFL = 4;
const FD_CLOEXEC = 1;


const q = (s: string | null): string => (s === null ? 'NULL' : JSON.stringify(s));

/** Runs one libc call: traces it, and turns -1 into a SyscallError. */
function run<T extends number | bigint>(name: string, args: string, why: string | undefined, fn: () => T): T {
  const r = fn();
  const failed = typeof r === 'bigint' ? r < 0n : r < 0;
  const call = `${name}(${args})`;
  if (failed) {
    const errno = koffi.errno();
    if (tracing()) trace({ kind: 'syscall', call, result: `= -1 ${new SyscallError(name, call, errno).code}`, why });
    throw new SyscallError(name, call, errno, why);
  }
  if (tracing()) trace({ kind: 'syscall', call, result: `= ${r}`, why });
  return r;
}

export function mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null, why?: string): void {
  run('mount', `${q(source)}, ${q(target)}, ${q(fstype)}, ${msFlagNames(flags)}, ${q(data)}`, why, () =>
    c.mount(source, target, fstype, flags, data) as number);
}

export function umount2(target: string, flags: number, why?: string): void {
  run('umount2', `${q(target)}, ${flags === 2 ? 'MNT_DETACH' : flags}`, why, () => c.umount2(target, flags) as number);
}

export function unshare(flags: number, why?: string): void {
  run('unshare', cloneFlagNames(flags), why, () => c.unshare(flags) as number);
}

export function setns(fd: number, nstype: number, why?: string): void {
  run('setns', `${fd}, ${cloneFlagNames(nstype)}`, why, () => c.setns(fd, nstype) as number);
}

export function chdir(path: string, why?: string): void {
  run('chdir', q(path), why, () => c.chdir(path) as number);
}

export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | (mi & 0xffn) | ((mi & 0xfff00n) << 12n) | ((ma & 0xfffff000n) << 32n);
}

export function mknod(path: string, mode: number, major: number, minor: number, why?: string): void {
  run('mknod', `${q(path)}, 0${mode.toString(8)}, makedev(${major}, ${minor})`, why, () =>
    c.mknod(path, mode, makedev(major, minor)) as number);
}

export function open(path: string, flags: number, mode = 0, why?: string): number {
  return run('open', `${q(path)}, 0${flags.toString(8)}`, why, () => c.open(path, flags, mode) as number);
}

/** open_tree(AT_FDCWD, path, OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC[|AT_RECURSIVE]): a detached copy of the mount at `path`, as an fd. */
export function openTreeClone(path: string, recursive: boolean, why?: string): number {
  const flags = 1 /* OPEN_TREE_CLONE */ | 0o2000000 /* OPEN_TREE_CLOEXEC */ | (recursive ? 0x8000 /* AT_RECURSIVE */ : 0);
  return run('open_tree', `AT_FDCWD, ${q(path)}, OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC${recursive ? '|AT_RECURSIVE' : ''}`, why, () =>
    Number(c.syscall(SYS.open_tree, 'int', -100, 'const char *', path, 'unsigned int', flags)));
}

/** openat2(2): resolves `path` with the kernel's own rules, e.g. RESOLVE_IN_ROOT. */
export function openat2(dirfd: number, path: string, flags: number, resolve: number, why?: string): number {
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags), 0);
  how.writeBigUInt64LE(0n, 8);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  return run('openat2', `${dirfd}, ${q(path)}, {flags=0${flags.toString(8)}, resolve=0x${resolve.toString(16)}}`, why, () =>
    Number(c.syscall(SYS.openat2, 'int', dirfd, 'const char *', path, 'void *', how, 'size_t', 24)));
}

export function close(fd: number): void {
  c.close(fd);
}

export function setNonblock(fd: number, on: boolean): void {
  const cur = c.fcntl(fd, F_GETFL, 'int', 0) as number;
  const next = on ? cur | O.NONBLOCK : cur & ~O.NONBLOCK;
  if (next !== cur) run('fcntl', `${fd}, F_SETFL, 0${next.toString(8)}`, undefined, () => c.fcntl(fd, F_SETFL, 'int', next) as number);
}

/** Lets `fd` survive execve (Node opens everything O_CLOEXEC). */
export function keepAcrossExec(fd: number, why?: string): void {
  const cur = c.fcntl(fd, F_GETFD, 'int', 0) as number;
  if (cur & FD_CLOEXEC) run('fcntl', `${fd}, F_SETFD, 0`, why, () => c.fcntl(fd, F_SETFD, 'int', cur & ~FD_CLOEXEC) as number);
}

/** execve(2): replaces this process (every thread of it); returns only by throwing. */
export function execve(file: string, argv: string[], env: Record<string, string | undefined>, why?: string): never {
  const envp = Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  run('execve', `${q(file)}, ${JSON.stringify(argv)}`, why, () => c.execve(file, [...argv, null], [...envp, null]) as number);
  throw new SyscallError('execve', file, 0, why);
}

export function prctl(option: number, arg2: number, why?: string, label?: string): number {
  return run('prctl', `${label ?? option}, ${arg2}`, why, () => c.prctl(option, arg2, 0, 0, 0) as number);
}

export function prctl3(option: number, arg2: number, arg3: number, why?: string, label?: string): number {
  return run('prctl', `${label ?? option}, ${arg2}, ${arg3}`, why, () => c.prctl(option, arg2, arg3, 0, 0) as number);
}

// Credentials, per thread (see the note at the top).
export interface CapSets {
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
}

const CAP_V3 = 0x20080522;

export function setsid(why?: string): void {
  run('setsid', '', why, () => c.setsid() as number);
}

export function gettid(): number {
  return c.gettid() as number;
}

export const LOCK_EX = 2;
export const LOCK_NB = 4;

/** flock(2) on an fd; blocking unless LOCK_NB (then EWOULDBLOCK throws). */
export function flock(fd: number, op: number, why?: string): void {
  for (;;) {
    const r = c.flock(fd, op) as number;
    if (r < 0 && koffi.errno() === 4 /* EINTR */) continue;
    run('flock', `${fd}, ${op & LOCK_EX ? 'LOCK_EX' : op}${op & LOCK_NB ? '|LOCK_NB' : ''}`, why, () => r);
    return;
  }
}

/** socketpair(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC): the runtime↔init sync channel. */
export function socketpair(why?: string): [number, number] {
  const fds = [0, 0];
  run('socketpair', 'AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0', why, () => c.socketpair(1, 1 | 0o2000000, 0, fds) as number);
  return [fds[0] as number, fds[1] as number];
}

/** pipe2(O_CLOEXEC): [read end, write end]; a container's stdout must be a real pipe (/dev/stdout on a socket fails). */
export function pipe(why?: string): [number, number] {
  const fds = [0, 0];
  run('pipe2', 'O_CLOEXEC', why, () => c.pipe2(fds, 0o2000000) as number);
  return [fds[0] as number, fds[1] as number];
}

export function kill(pid: number, sig: number, why?: string): void {
  run('kill', `${pid}, ${sig}`, why, () => c.kill(pid, sig) as number);
}

// Terminals and fd passing (the console socket protocol runc uses).

export const TIOCSCTTY = 0x540e;
export const TIOCSWINSZ = 0x5414;
export const TIOCGPTN = 0x80045430;
export const TIOCSPTLCK = 0x40045431;

/** ioctl with a pointer argument; returns the buffer it filled. */
export function ioctlPtr(fd: number, req: number, buf: Buffer, why?: string, label?: string): Buffer {
  run('ioctl', `${fd}, ${label ?? '0x' + req.toString(16)}, &buf`, why, () => c.ioctl(fd, req, 'void *', buf) as number);
  return buf;
}

export function dup2(oldfd: number, newfd: number, why?: string): void {
  if (oldfd === newfd) return;
  run('dup3', `${oldfd}, ${newfd}, 0`, why, () => c.dup3(oldfd, newfd, 0) as number);
}

/** socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC) + connect(path). */
/** A listening unix stream socket bound at `path`: an fd to hand to another process (Node's servers unlink their path when closed). */
export function listenUnix(path: string, why?: string): number {
  const fd = run('socket', 'AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0', why, () => c.socket(1, 1 | 0o2000000, 0) as number);
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(1, 0);
  try {
    if (Buffer.byteLength(path) > 107) throw new SyscallError('bind', `bind(${q(path)})`, 36 /* ENAMETOOLONG */, why);
    addr.write(path, 2);
    run('bind', `${fd}, {AF_UNIX, ${q(path)}}`, why, () => c.bind(fd, addr, 110) as number);
    run('listen', `${fd}, 64`, why, () => c.listen(fd, 64) as number);
  } catch (e) {
    c.close(fd);
    throw e;
  }
  return fd;
}

export function connectUnix(path: string, why?: string): number {
  const fd = run('socket', 'AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0', why, () => c.socket(1, 1 | 0o2000000, 0) as number);
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(1, 0);
  if (Buffer.byteLength(path) > 107) throw new SyscallError('connect', `connect(${q(path)})`, 36 /* ENAMETOOLONG */, why);
  addr.write(path, 2);
  try {
    run('connect', `${fd}, {AF_UNIX, ${q(path)}}`, why, () => c.connect(fd, addr, 110) as number);
  } catch (e) {
    c.close(fd);
    throw e;
  }
  return fd;
}

/**
 * A TCP socket made inside the network namespace at `netnsPath` and
 * connected to 127.0.0.1:port there (CRI port-forward, as kubelet dials
 * localhost in the pod). A socket belongs to the namespace it was made in:
 * the calling thread enters it for socket(2) only, then comes back.
 */
export function connectTcpInNetns(netnsPath: string, port: number, why?: string): number {
  const back = c.open('/proc/thread-self/ns/net', 0o2000000, 0) as number;
  if (back < 0) throw new SyscallError('open', 'open("/proc/thread-self/ns/net")', koffi.errno(), why);
  let fd = -1;
  try {
    const target = run('open', `${q(netnsPath)}, O_RDONLY|O_CLOEXEC`, why, () => c.open(netnsPath, 0o2000000, 0) as number);
    try {
      run('setns', `${target}, CLONE_NEWNET`, why, () => c.setns(target, 0x40000000) as number);
      try {
        fd = run('socket', 'AF_INET, SOCK_STREAM|SOCK_CLOEXEC, 0', why, () => c.socket(2, 1 | 0o2000000, 0) as number);
      } finally {
        run('setns', `${back}, CLONE_NEWNET`, 'back to our own network namespace', () => c.setns(back, 0x40000000) as number);
      }
    } finally {
      c.close(target);
    }
  } finally {
    c.close(back);
  }
  const addr = Buffer.alloc(16);
  addr.writeUInt16LE(2, 0); // AF_INET
  addr.writeUInt16BE(port, 2);
  addr.writeUInt32BE(0x7f000001, 4);
  try {
    run('connect', `${fd}, {AF_INET, 127.0.0.1:${port}}`, why, () => c.connect(fd, addr, 16) as number);
  } catch (e) {
    c.close(fd);
    throw e;
  }
  return fd;
}

function msghdr(data: Buffer, ctrl: Buffer): { hdr: Buffer; keep: Buffer[] } {
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(BigInt(koffi.address(data) as unknown as bigint | number), 0);
  iov.writeBigUInt64LE(BigInt(data.length), 8);
  const hdr = Buffer.alloc(56);
  hdr.writeBigUInt64LE(BigInt(koffi.address(iov) as unknown as bigint | number), 16);
  hdr.writeBigUInt64LE(1n, 24);
  hdr.writeBigUInt64LE(BigInt(koffi.address(ctrl) as unknown as bigint | number), 32);
  hdr.writeBigUInt64LE(BigInt(ctrl.length), 40);
  return { hdr, keep: [iov, data, ctrl] };
}

/** Sends `fd` over a unix socket with SCM_RIGHTS, `name` as the payload (runc's utils.SendFd). */
export function sendFd(sock: number, name: string, fd: number, why?: string): void {
  const ctrl = Buffer.alloc(24);
  ctrl.writeBigUInt64LE(20n, 0); // cmsg_len = CMSG_LEN(sizeof(int))
  ctrl.writeInt32LE(1, 8); // SOL_SOCKET
  ctrl.writeInt32LE(1, 12); // SCM_RIGHTS
  ctrl.writeInt32LE(fd, 16);
  const m = msghdr(Buffer.from(name), ctrl);
  run('sendmsg', `${sock}, {${q(name)}, SCM_RIGHTS [${fd}]}, 0`, why, () => Number(c.sendmsg(sock, m.hdr, 0)));
}

/** Receives one fd sent with sendFd; returns it with the payload. */
export function recvFd(sock: number, why?: string): { fd: number; name: string } {
  const data = Buffer.alloc(4096);
  const ctrl = Buffer.alloc(64);
  const m = msghdr(data, ctrl);
  const n = run('recvmsg', `${sock}, &msg, MSG_CMSG_CLOEXEC`, why, () => Number(c.recvmsg(sock, m.hdr, 0x40000000)));
  const len = Number(ctrl.readBigUInt64LE(0));
  if (len < 20 || ctrl.readInt32LE(8) !== 1 || ctrl.readInt32LE(12) !== 1) {
    throw new SyscallError('recvmsg', 'recvmsg(SCM_RIGHTS)', 22 /* EINVAL */, why ?? 'no fd in the message');
  }
  return { fd: ctrl.readInt32LE(16), name: data.toString('utf8', 0, n) };
}

export function pidfdOpen(pid: number, why?: string): number {
  return run('pidfd_open', `${pid}, 0`, why, () => Number(c.syscall(SYS.pidfd_open, 'int', pid, 'unsigned int', 0)));
}

/** pidfd_getfd(2): a copy of another process's fd `fd` (needs ptrace rights over it). */
export function pidfdGetfd(pidfd: number, fd: number, why?: string): number {
  return run('pidfd_getfd', `${pidfd}, ${fd}, 0`, why, () => Number(c.syscall(SYS.pidfd_getfd, 'int', pidfd, 'int', fd, 'unsigned int', 0)));
}

/**
 * waitid(P_PIDFD, fd, WEXITED|WNOHANG): null while the process runs, else
 * its exit status (128+signal when killed). Reaps it: we must be its parent
 * (or its subreaper).
 */
export function waitPidfd(pidfd: number): number | null {
  const info = Buffer.alloc(128);
  const r = Number(c.syscall(SYS.waitid, 'int', 3 /* P_PIDFD */, 'int', pidfd, 'void *', info, 'int', 4 | 1 /* WEXITED|WNOHANG */, 'void *', null));
  if (r < 0) throw new SyscallError('waitid', `waitid(P_PIDFD, ${pidfd})`, koffi.errno());
  if (info.readInt32LE(16) === 0) return null; // si_pid 0: still running
  const code = info.readInt32LE(8); // si_code: CLD_EXITED 1, CLD_KILLED 2, CLD_DUMPED 3
  const status = info.readInt32LE(24);
  return code === 1 ? status : 128 + status;
}

/** statfs(2): the filesystem type (f_type, e.g. PROC_SUPER_MAGIC 0x9fa0) and ST_* mount flags of the mount holding `path`. */
export function statfs(path: string, why?: string): { type: number; flags: bigint } {
  const buf = Buffer.alloc(120);
  run('statfs', q(path), why, () => c.statfs(path, buf) as number);
  return { type: Number(buf.readBigInt64LE(0)), flags: buf.readBigUInt64LE(80) };
}

export const AT_EMPTY_PATH = 0x1000;

