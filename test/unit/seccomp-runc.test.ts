// Where runc's seccomp differs from a plain reading of the spec, and we
// follow runc: the -ENOSYS stub, rules that repeat the default, the same
// argument index twice in a rule, a flag that needs a listener, 32-bit ABIs,
// the -1 a tracer leaves. Run through the classic-BPF interpreter below.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileSeccomp } from '../../runtime/linux/seccomp';
import { SYSCALLS } from '../../runtime/linux/syscalls.generated';
import type { Linux } from '../../runtime/spec/generated/config';

type Profile = NonNullable<Linux['seccomp']>;
const X86_64 = 0xc000003e;
const I386 = 0x40000003;
const ALLOW = 0x7fff0000;
const ERRNO = (e: number): number => 0x00050000 | e;
const KILL_PROCESS = 0x80000000;

function run(programB64: string, nr: number, arch = X86_64, args: bigint[] = []): number {
  const p = Buffer.from(programB64, 'base64');
  const data = Buffer.alloc(64);
  data.writeUInt32LE(nr >>> 0, 0);
  data.writeUInt32LE(arch >>> 0, 4);
  args.forEach((a, i) => data.writeBigUInt64LE(BigInt.asUintN(64, a), 16 + 8 * i));
  let A = 0;
  for (let pc = 0; pc < p.length / 8; ) {
    const code = p.readUInt16LE(pc * 8);
    const jt = p.readUInt8(pc * 8 + 2);
    const jf = p.readUInt8(pc * 8 + 3);
    const k = p.readUInt32LE(pc * 8 + 4);
    pc++;
    switch (code) {
      case 0x20: A = data.readUInt32LE(k); break;
      case 0x54: A = (A & k) >>> 0; break;
      case 0x05: pc += k; break;
      case 0x15: pc += A === k ? jt : jf; break;
      case 0x25: pc += A > k ? jt : jf; break;
      case 0x35: pc += A >= k ? jt : jf; break;
      case 0x45: pc += (A & k) !== 0 ? jt : jf; break;
      case 0x06: return k;
      default: throw new Error(`unknown BPF op 0x${code.toString(16)}`);
    }
  }
  throw new Error('no return');
}

const nr = (name: string): number => SYSCALLS.x86_64[name] as number;
const compile = (p: Profile, w: string[] = []): string => compileSeccomp(p, w).program;

test('ENOSYS for a syscall above the largest the profile names, as runc\'s stub; not with a permissive default or a default of ENOSYS', () => {
  const profile: Profile = { defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'], syscalls: [{ names: ['read', 'mkdir'], action: 'SCMP_ACT_ALLOW' }] };
  const prog = compile(profile);
  assert.equal(run(prog, nr('mkdir') + 1), ERRNO(38), 'above mkdir (83) on x86_64');
  assert.equal(run(prog, 452), ERRNO(38), 'fchmodat2');
  assert.equal(run(prog, nr('write')), ERRNO(1), 'below: the default');
  assert.equal(run(prog, (SYSCALLS.x86.mkdir as number) + 1, I386), ERRNO(38), 'i386 has its own largest');
  assert.equal(run(compile({ ...profile, defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO' }] }), 452), ALLOW);
  assert.equal(run(compile({ ...profile, defaultAction: 'SCMP_ACT_LOG', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO' }] }), 452), 0x7ffc0000);
  assert.equal(run(compile({ ...profile, defaultErrnoRet: 38 }), 452), ERRNO(38));
  assert.equal(run(compile({ ...profile, defaultErrnoRet: 13 }), 452), ERRNO(38), 'ENOSYS even when the default errno is another');
  assert.equal(run(compile({ ...profile, architectures: [] }), 452), ERRNO(1), 'runc stubs only the architectures listed');
});

test('a rule that repeats the default action is dropped, as runc does (a later rule of the call decides)', () => {
  const prog = compile({
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [
      { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', args: [{ index: 1, op: 'SCMP_CMP_EQ', value: 0o700 }] },
      { names: ['mkdir'], action: 'SCMP_ACT_ALLOW' },
    ],
  });
  assert.equal(run(prog, nr('mkdir'), X86_64, [0n, 0o700n]), ALLOW);
});

test('the same argument index twice in one rule: each condition is a rule of its own (OR), as runc does', () => {
  const prog = compile({
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [{ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 0 }, { index: 0, op: 'SCMP_CMP_EQ', value: 8 }] }],
  });
  assert.equal(run(prog, nr('personality'), X86_64, [0n]), ALLOW);
  assert.equal(run(prog, nr('personality'), X86_64, [8n]), ALLOW);
  assert.equal(run(prog, nr('personality'), X86_64, [9n]), ERRNO(1));
});

test('i386 and x32 calls: only the low 32 bits of argument and value count, as libseccomp does', () => {
  const prog = compile({
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [{ names: ['umask'], action: 'SCMP_ACT_ERRNO', errnoRet: 99, args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 0o22 }] }],
  });
  assert.equal(run(prog, SYSCALLS.x86.umask as number, I386, [0x1_0000_0012n]), ERRNO(99), 'i386: high bits of rbx through int 0x80');
  assert.equal(run(prog, SYSCALLS.x32.umask as number, X86_64, [0x1_0000_0012n]), ERRNO(99), 'x32');
  assert.equal(run(prog, nr('umask'), X86_64, [0x1_0000_0012n]), ALLOW, 'x86_64 compares all 64 bits (libseccomp too)');
});

test('-1 (a call a tracer skipped) is no x32 call: it gets the default action, not KILL', () => {
  const prog = compile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] });
  assert.equal(run(prog, 0xffffffff), ALLOW);
  assert.equal(run(prog, (SYSCALLS.x32.mkdir as number)), KILL_PROCESS, 'x32 is still refused when not listed');
});

test('SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is dropped with a warning (the kernel wants a listener for it)', () => {
  const w: string[] = [];
  const p = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV', 'SECCOMP_FILTER_FLAG_LOG'] }, w);
  assert.equal(p.flags, 2);
  assert.match(w.join('\n'), /linux\.seccomp\.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV/);
});

test('skipped names: only those no listed architecture has', () => {
  const p = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'], syscalls: [{ names: ['mmap2', 'no_such_call'], action: 'SCMP_ACT_ERRNO' }] }, []);
  assert.deepEqual(p.skipped, ['no_such_call (x86_64, x86)']);
  assert.equal(run(p.program, SYSCALLS.x86.mmap2 as number, I386), ERRNO(1));
});
