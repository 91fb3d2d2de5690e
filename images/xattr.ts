// Extended attributes (Node has no API for them): lsetxattr, lgetxattr and
// llistxattr through koffi, in the style of runtime/sys/libc.ts (traced,
// failures as SyscallError). The only koffi use in images/.

import koffi from 'koffi';
import { SyscallError } from '../runtime/sys/errors';
import { trace, tracing } from '../runtime/sys/trace';

const libc = koffi.load('libc.so.6');
const c = {
  lsetxattr: libc.func('int lsetxattr(const char *, const char *, const void *, size_t, int)'),
  lgetxattr: libc.func('long lgetxattr(const char *, const char *, _Out_ void *, size_t)'),
  llistxattr: libc.func('long llistxattr(const char *, _Out_ void *, size_t)'),
};

function check(name: string, args: string, r: number, why?: string): number {
  const call = `${name}(${args})`;
  if (r < 0) {
    const errno = koffi.errno();
    const err = new SyscallError(name, call, errno, why);
    if (tracing()) trace({ kind: 'syscall', call, result: `= -1 ${err.code}`, why });
    throw err;
  }
  if (tracing()) trace({ kind: 'syscall', call, result: `= ${r}`, why });
  return r;
}

export function lsetxattr(path: string, name: string, value: Buffer, why?: string): void {
  check('lsetxattr', `${JSON.stringify(path)}, ${JSON.stringify(name)}, <${value.length} bytes>, ${value.length}, 0`, Number(c.lsetxattr(path, name, value, value.length, 0)), why);
}

/** The value, or undefined when the attribute is not set (ENODATA). */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  let size = 256;
  for (;;) {
    const buf = Buffer.alloc(size);
    const r = Number(c.lgetxattr(path, name, buf, size));
    if (r >= 0) return buf.subarray(0, r);
    const errno = koffi.errno();
    if (errno === 61 /* ENODATA */ || errno === 95 /* EOPNOTSUPP */) return undefined;
    if (errno === 34 /* ERANGE */ && size < 1 << 20) {
      size *= 16;
      continue;
    }
    check('lgetxattr', `${JSON.stringify(path)}, ${JSON.stringify(name)}`, r);
  }
}

export function llistxattr(path: string): string[] {
  let size = 1024;
  for (;;) {
    const buf = Buffer.alloc(size);
    const r = Number(c.llistxattr(path, buf, size));
    if (r >= 0) return buf.subarray(0, r).toString('utf8').split('\0').filter(Boolean);
    const errno = koffi.errno();
    if (errno === 95 /* EOPNOTSUPP */) return [];
    if (errno === 34 /* ERANGE */ && size < 1 << 20) {
      size *= 16;
      continue;
    }
    check('llistxattr', JSON.stringify(path), r);
  }
}
