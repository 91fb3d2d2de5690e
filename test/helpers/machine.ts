// Probes of the machine, for tests that need a kernel or CPU feature some
// hosts lack although their kernel config says otherwise. Each runs the
// feature once, outside any container, and answers false where it works or
// the reason to skip (for `{ skip }` or t.skip), so a test that cannot run
// here says why instead of failing.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

/** Compiles C SOURCE with gcc into a temp dir (removed at exit); null without gcc. */
export function compileC(name: string, source: string, flags: string[] = []): string | null {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mc-${name}-`));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, `${name}.c`), source);
  const r = spawnSync('gcc', [...flags, '-O1', '-o', path.join(dir, name), path.join(dir, `${name}.c`)], { encoding: 'utf8' });
  return r.status === 0 ? path.join(dir, name) : null;
}

// i386 getpid (20) through int $0x80, from this 64-bit process.
const INT80_C = String.raw`
#include <stdio.h>
int main(void) {
  long ret;
  __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
  printf("%ld\n", ret);
  return 0;
}
`;

let int80: string | false | undefined;
/**
 * Whether a 64-bit process can make i386 syscalls through int $0x80. Some
 * kernels have CONFIG_IA32_EMULATION and still fault it (a PVM guest, say,
 * or ia32_emulation=0 on the command line): the process gets SIGSEGV.
 */
export function int80Unavailable(): string | false {
  if (int80 !== undefined) return int80;
  if (process.arch !== 'x64') return (int80 = `i386 calls through int $0x80 need an x86_64 host (this is ${process.arch})`);
  const bin = compileC('int80', INT80_C);
  if (!bin) return (int80 = 'gcc is not available to build the int $0x80 probe');
  const r = spawnSync(bin, [], { encoding: 'utf8' });
  if (r.signal) return (int80 = `int $0x80 from a 64-bit process dies of ${r.signal} on this machine (its kernel or hypervisor takes no i386 syscalls from 64-bit code, although the kernel may have IA32 emulation)`);
  const ret = Number(r.stdout.trim());
  if (r.status !== 0 || !(ret > 0)) return (int80 = `int $0x80 from a 64-bit process does not work here (exit ${r.status}, getpid answered ${r.stdout.trim() || 'nothing'})`);
  return (int80 = false);
}
