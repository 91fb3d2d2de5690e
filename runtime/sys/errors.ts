import { constants } from 'node:os';

const errnoNames = new Map<number, string>();
for (const [name, num] of Object.entries(constants.errno)) {
  if (!errnoNames.has(num)) errnoNames.set(num, name);
}

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

const errnoText: Record<string, string> = {
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  ESRCH: 'no such process',
  EINTR: 'interrupted system call',
  EIO: 'input/output error',
  EBADF: 'bad file descriptor',
  EAGAIN: 'resource temporarily unavailable',
  ENOMEM: 'cannot allocate memory',
  EACCES: 'permission denied',
  EBUSY: 'device or resource busy',
  EEXIST: 'file exists',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  EINVAL: 'invalid argument',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  ENOSYS: 'function not implemented',
  ELOOP: 'too many levels of symbolic links',
  EXDEV: 'invalid cross-device link',
  ENODEV: 'no such device',
  EUSERS: 'too many users',
  ENXIO: 'no such device or address',
  ETXTBSY: 'text file busy',
};

/** strerror's words for an errno name ("no such file or directory"). */
export function errnoMessage(code: string): string {
  return errnoText[code] ?? code;
}

/**
 * A failed system call: which call, with which arguments, the errno, and why
 * it was made. Its message reads like `mount("proc", ...): EPERM (operation
 * not permitted)`.
 */
export class SyscallError extends Error {
  readonly code: string;
  constructor(
    readonly syscall: string,
    readonly call: string,
    readonly errno: number,
    readonly why?: string,
  ) {
    const code = errnoName(errno);
    super(`${call}: ${code} (${errnoText[code] ?? 'error ' + errno})${why ? ` [${why}]` : ''}`);
    this.name = 'SyscallError';
    this.code = code;
  }
}

/**
 * The one error type of the runtime. `op` says what we were doing ("create
 * container foo"), the message says what went wrong, and `cause` carries the
 * lower-level error. Context is added on the way up with `wrap`; only CLI entry
 * points print.
 */
export class RuntimeError extends Error {
  readonly code: string;
  constructor(message: string, opts: { code?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RuntimeError';
    this.code = opts.code ?? codeOf(opts.cause) ?? 'EINTERNAL';
  }
}

function codeOf(e: unknown): string | undefined {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  return undefined;
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Adds context: `wrap(e, 'cannot mount /proc')` reads "cannot mount /proc: <cause>". */
export function wrap(e: unknown, context: string, code?: string): RuntimeError {
  const c = code ?? codeOf(e);
  return new RuntimeError(`${context}: ${messageOf(e)}`, c === undefined ? { cause: e } : { cause: e, code: c });
}
