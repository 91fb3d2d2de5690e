// The seccomp compiler, run through a classic-BPF interpreter (written here)
// on synthetic seccomp_data: actions, errno values, every operator on
// 64-bit arguments, AND and OR of rules, architectures, size.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileSeccomp } from '../../runtime/linux/seccomp';
import { defaultSeccompProfile } from '../../runtime/spec/seccomp-default';
import { SYSCALLS } from '../../runtime/linux/syscalls.generated';
import type { Linux } from '../../runtime/spec/generated/config';

type Profile = NonNullable<Linux['seccomp']>;
const X86_64 = 0xc000003e;
const I386 = 0x40000003;

/** Runs a classic BPF program on seccomp_data {nr, arch, args}; returns the 32-bit verdict. */
function run(programB64: string, nr: number, arch = X86_64, args: bigint[] = []): number {
  const p = Buffer.from(programB64, 'base64');
  const data = Buffer.alloc(64);
  data.writeUInt32LE(nr >>> 0, 0);
  data.writeUInt32LE(arch >>> 0, 4);
  args.forEach((a, i) => data.writeBigUInt64LE(BigInt.asUintN(64, a), 16 + 8 * i));
  let A = 0;
  let X = 0;
  for (let pc = 0, steps = 0; steps < 100000; steps++) {
    const code = p.readUInt16LE(pc * 8);
    const jt = p.readUInt8(pc * 8 + 2);
    const jf = p.readUInt8(pc * 8 + 3);
    const k = p.readUInt32LE(pc * 8 + 4);
    pc++;
    switch (code) {
      case 0x20: A = data.readUInt32LE(k); break; // ld [k]
      case 0x54: A = (A & k) >>> 0; break; // and #k
      case 0x87: A = X; break;
      case 0x07: X = A; break;
      case 0x05: pc += k; break; // ja
      case 0x15: pc += A === k ? jt : jf; break; // jeq
      case 0x25: pc += A > k ? jt : jf; break; // jgt
      case 0x35: pc += A >= k ? jt : jf; break; // jge
      case 0x45: pc += (A & k) !== 0 ? jt : jf; break; // jset
      case 0x06: return k; // ret
      default: throw new Error(`unknown BPF op 0x${code.toString(16)}`);
    }
  }
  throw new Error('no return');
}

const nr = (name: string): number => SYSCALLS.x86_64[name] as number;
const compile = (p: Profile): string => compileSeccomp(p, []).program;
const ALLOW = 0x7fff0000;
const ERRNO = (e: number): number => 0x00050000 | e;

test('default action, allowed syscalls and errno values', () => {
  const prog = compile({
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 13,
    syscalls: [
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
      { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
      { names: ['kill'], action: 'SCMP_ACT_KILL_PROCESS' },
      { names: ['getpid'], action: 'SCMP_ACT_LOG' },
      { names: ['getppid'], action: 'SCMP_ACT_TRAP' },
    ],
  });
  assert.equal(run(prog, nr('read')), ALLOW);
  assert.equal(run(prog, nr('write')), ALLOW);
  assert.equal(run(prog, nr('mkdir')), ERRNO(38));
  assert.equal(run(prog, nr('open')), ERRNO(13));
  assert.equal(run(prog, nr('kill')), 0x80000000);
  assert.equal(run(prog, nr('getpid')), 0x7ffc0000);
  assert.equal(run(prog, nr('getppid')), 0x00030000);
});

test('every operator on 64-bit arguments, whose high words differ', () => {
  const big = 0x1_0000_0005n;
  const ops = ['SCMP_CMP_EQ', 'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_GE', 'SCMP_CMP_GT'] as const;
  const truth = (op: (typeof ops)[number], a: bigint, v: bigint): boolean =>
    ({ SCMP_CMP_EQ: a === v, SCMP_CMP_NE: a !== v, SCMP_CMP_LT: a < v, SCMP_CMP_LE: a <= v, SCMP_CMP_GE: a >= v, SCMP_CMP_GT: a > v })[op];
  for (const op of ops) {
    const prog = compile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['ioctl'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 1, value: Number(big), op }] }] });
    for (const a of [0n, 5n, big - 1n, big, big + 1n, 0x2_0000_0000n, 0xffff_ffffn, 0x1_ffff_ffffn]) {
      assert.equal(run(prog, nr('ioctl'), X86_64, [0n, a]) === ERRNO(1), truth(op, a, big), `${op} ${a} vs ${big}`);
    }
  }
});

test('MASKED_EQ, AND of args, OR of rules', () => {
  const prog = compile({
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [
      { names: ['clone'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 0, value: 0x7e020000, valueTwo: 0x10000000, op: 'SCMP_CMP_MASKED_EQ' }] },
      { names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: 97, args: [{ index: 0, value: 2, op: 'SCMP_CMP_EQ' }, { index: 1, value: 3, op: 'SCMP_CMP_EQ' }] },
      { names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: 98, args: [{ index: 0, value: 10, op: 'SCMP_CMP_EQ' }] },
    ],
  });
  assert.equal(run(prog, nr('clone'), X86_64, [0x10000000n | 0x11n]), ERRNO(1), 'CLONE_NEWUSER');
  assert.equal(run(prog, nr('clone'), X86_64, [0x11n]), ALLOW);
  assert.equal(run(prog, nr('socket'), X86_64, [2n, 3n]), ERRNO(97), 'AF_INET, SOCK_RAW');
  assert.equal(run(prog, nr('socket'), X86_64, [2n, 1n]), ALLOW, 'both args must match');
  assert.equal(run(prog, nr('socket'), X86_64, [10n, 1n]), ERRNO(98), 'second rule');
});

test('architectures: i386 by its own numbers, x32 refused unless listed, unknown arch killed', () => {
  const profile: Profile = { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'], syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] };
  const prog = compile(profile);
  assert.equal(run(prog, SYSCALLS.x86.mkdir as number, I386), ERRNO(1));
  assert.equal(run(prog, nr('mkdir'), I386), ALLOW, 'x86_64 number on i386 is another syscall');
  assert.equal(run(prog, (SYSCALLS.x32.mkdir as number), X86_64), 0x80000000, 'x32 not listed');
  assert.equal(run(prog, nr('mkdir'), 0xc00000b7 /* aarch64 */), 0x80000000);
  const withX32 = compile({ ...profile, architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32'] });
  assert.equal(run(withX32, SYSCALLS.x32.mkdir as number, X86_64), ERRNO(1));
});

test('unknown names are skipped; bad input names the field', () => {
  const w: string[] = [];
  const p = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['no_such_call', 'mkdir'], action: 'SCMP_ACT_ERRNO' }] }, w);
  assert.deepEqual(p.skipped, ['no_such_call (x86_64)']);
  assert.equal(run(p.program, nr('mkdir')), ERRNO(1), 'errnoRet defaults to EPERM');
  assert.throws(() => compile({ defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_BOGUS' as never] }), /linux\.seccomp\.flags: unknown flag/);
  assert.throws(() => compile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 7, value: 1, op: 'SCMP_CMP_EQ' }] }] }), /args\[0\]\.index: 7 is not an argument/);
  assert.equal(compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'] }, []).flags, 6);
});

test('the default profile: under 4096 instructions, common calls allowed, dangerous ones EPERM', () => {
  const p = compileSeccomp(defaultSeccompProfile(), []);
  assert.ok(p.instructions < 4096, `${p.instructions} instructions`);
  for (const n of ['read', 'write', 'openat', 'execve', 'mmap', 'futex', 'exit_group', 'rt_sigaction']) assert.equal(run(p.program, nr(n)), ALLOW, n);
  for (const n of ['mount', 'unshare', 'setns', 'kexec_load', 'init_module', 'ptrace', 'bpf']) assert.equal(run(p.program, nr(n)), ERRNO(1), n);
  assert.equal(run(p.program, nr('clone'), X86_64, [0x11n]), ALLOW, 'fork-like clone');
  assert.equal(run(p.program, nr('clone'), X86_64, [0x20000000n]), ERRNO(1), 'clone with CLONE_NEWPID');
  assert.equal(run(p.program, nr('clone3')), ERRNO(38), 'clone3 says ENOSYS: libc falls back to clone');
});
