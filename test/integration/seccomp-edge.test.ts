// linux.seccomp on the real kernel, the corners: actions that kill, the
// filter loaded before setuid for a user without no_new_privs, flags the
// kernel only takes with a listener, i386 calls made through int 0x80 by a
// 64-bit process, and syscalls newer than our table. A static probe (C,
// built here with gcc, bound into the container at /probe) makes the raw
// calls busybox cannot make. Tests that need it skip without gcc; the i386
// ones also where int $0x80 does not work on the host (test/helpers/machine.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { containerSuite } from '../helpers/bundle';
import { compileC, int80Unavailable } from '../helpers/machine';
import { defaultSeccompProfile } from '../../runtime/spec/seccomp-default';
import type { Spec } from '../../runtime/spec/generated/config';

const { probe } = containerSuite('seccomp-edge');

const PROBE_C = String.raw`
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
/* probe sys NR [ARG0..5]      : syscall(NR, ...) -> "ret=R errno=E"
 * probe int80 NR ARG0HEX      : i386 call through int $0x80, rbx = ARG0 (all 64 bits) */
int main(int argc, char **argv) {
  if (argc >= 3 && !strcmp(argv[1], "sys")) {
    long a[6] = {0};
    for (int i = 3; i < argc && i < 9; i++) a[i - 3] = strtol(argv[i], 0, 0);
    errno = 0;
    long r = syscall(strtol(argv[2], 0, 0), a[0], a[1], a[2], a[3], a[4], a[5]);
    printf("ret=%ld errno=%d\n", r, r < 0 ? errno : 0);
    return 0;
  }
  if (argc == 4 && !strcmp(argv[1], "int80")) {
    long nr = strtol(argv[2], 0, 0), ret;
    uint64_t a0 = strtoull(argv[3], 0, 16);
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a0) : "memory");
    printf("ret=%ld\n", ret);
    return 0;
  }
  fprintf(stderr, "usage: probe sys NR [ARGS] | probe int80 NR ARG0HEX\n");
  return 2;
}
`;

let probeBin: string | null | undefined;
/** Builds the probe once (static, so it runs on the busybox rootfs); null without gcc. */
function probeBinary(): string | null {
  if (probeBin === undefined) probeBin = compileC('seccomp-probe', PROBE_C, ['-static']);
  return probeBin;
}

function withProbe(s: Spec): void {
  const bin = probeBinary();
  if (!bin) throw new Error('no probe');
  s.mounts = [...(s.mounts ?? []), { destination: '/probe', type: 'bind', source: bin, options: ['bind', 'ro'] }];
}

const noGcc = (): string | false => (probeBinary() ? false : 'gcc (with a static libc) is not available to build the probe');
/** The i386 tests need the probe and a host whose 64-bit processes can make i386 calls at all. */
const noInt80 = (): string | false => noGcc() || int80Unavailable();

test('SCMP_ACT_KILL_PROCESS and SCMP_ACT_TRAP end the process with SIGSYS', () => {
  for (const action of ['SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_TRAP', 'SCMP_ACT_KILL'] as const) {
    const r = probe((s) => {
      s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action }] };
    }, 'exec mkdir /tmp/x');
    assert.equal(r.status, 128 + 31, `${action}: ${r.err}`);
  }
});

test('a non-root user without no_new_privs still gets the filter (loaded before setuid)', () => {
  for (const nnp of [false, true]) {
    const r = probe((s) => {
      s.process!.user = { uid: 65534, gid: 65534 };
      s.process!.noNewPrivileges = nnp;
      s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }] };
    }, 'id -u; mkdir /tmp/x 2>&1; grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status');
    assert.equal(r.status, 0, `nnp=${nnp}: ${r.err}`);
    assert.match(r.out, /^65534$/m);
    assert.match(r.out, /Function not implemented/, `nnp=${nnp}`);
    assert.match(r.out, /^Seccomp:\s+2$/m);
    assert.match(r.out, new RegExp(`^NoNewPrivs:\\s+${nnp ? 1 : 0}$`, 'm'));
  }
});

test('the flags the kernel takes without a listener: LOG, SPEC_ALLOW, TSYNC', () => {
  const r = probe((s) => {
    s.linux!.seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_TSYNC'],
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }],
    };
  }, 'mkdir /tmp/x 2>&1; grep -E "^Seccomp:" /proc/self/status');
  assert.equal(r.status, 0, r.err);
  assert.match(r.out, /Function not implemented/);
});

test('SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV without SCMP_ACT_NOTIFY does not stop the container', () => {
  const r = probe((s) => {
    s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'], syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }] };
  }, 'mkdir /tmp/x 2>&1; true');
  assert.equal(r.status, 0, r.err);
  assert.match(r.out, /Function not implemented/);
  assert.match(r.err, /SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV/, 'a warning names the flag');
});

test('an i386 call through int 0x80 is judged on the low 32 bits of its arguments, as the kernel reads them', { skip: noInt80() }, () => {
  // i386 umask is 60; the kernel takes the low 32 bits of rbx. 0x1_00000012
  // is umask(022) to the kernel: the rule must catch it.
  const r = probe((s) => {
    withProbe(s);
    s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'], syscalls: [{ names: ['umask'], action: 'SCMP_ACT_ERRNO', errnoRet: 99, args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 0o22 }] }] };
  }, '/probe int80 60 12; /probe int80 60 100000012; /probe int80 60 13');
  assert.equal(r.status, 0, r.err);
  assert.deepEqual(r.out.trim().split('\n'), ['ret=-99', 'ret=-99', 'ret=18']);
});

test('the default profile: a syscall newer than our table answers ENOSYS (libc falls back), not EPERM', { skip: noGcc() }, () => {
  // 452 is fchmodat2 (Linux 6.6), which glibc 2.39+ tries first and leaves on ENOSYS.
  const r = probe((s) => {
    withProbe(s);
    s.linux!.seccomp = defaultSeccompProfile();
  }, '/probe sys 452 -100 0 0 0; /probe sys 272 0; /probe sys 39');
  assert.equal(r.status, 0, r.err);
  const [newer, unshare, getpid] = r.out.trim().split('\n');
  assert.equal(newer, 'ret=-1 errno=38', 'fchmodat2');
  assert.equal(unshare, 'ret=-1 errno=1', 'a known, refused call (unshare) keeps EPERM');
  assert.match(getpid ?? '', /^ret=1 errno=0$/, 'getpid');
});

test('the default profile lets a 32-bit process allocate memory (mmap2 is an i386-only name)', { skip: noInt80() }, () => {
  // i386 mmap2 is 192; with a bad length the kernel says EINVAL (22) once the filter lets it through.
  const r = probe((s) => {
    withProbe(s);
    s.linux!.seccomp = defaultSeccompProfile();
  }, '/probe int80 192 0');
  assert.equal(r.status, 0, r.err);
  assert.notEqual(r.out.trim(), 'ret=-1', 'EPERM from the filter');
});
