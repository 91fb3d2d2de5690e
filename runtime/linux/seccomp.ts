// linux.seccomp: the OCI profile compiled, in TypeScript, into a classic BPF
// program (compile in the runtime, apply in the init, as crun does), and the
// one seccomp(2) call that loads it right before execve.
//
// The program, for each architecture in the profile:
//
//   ld  [arch]                 ; seccomp_data.arch
//   jeq AUDIT_ARCH_X86_64 → x86_64 block ... ; other architectures
//   ret KILL_PROCESS           ; an architecture the profile does not know
// x86_64 block:
//   ld  [nr]
//   (x32 syscalls share the arch token: KILL_PROCESS unless SCMP_ARCH_X32;
//    -1, a call a tracer skipped, is not one)
//   (runc's stub: nr above the largest the profile names → ERRNO(ENOSYS),
//    unless the default is permissive)
//   jeq nr_1 ; else skip → its rules: args compared as two 32-bit halves,
//              all args of a rule must match (AND), the rules of a syscall
//              are tried in turn (OR), a match returns the rule's action;
//              on i386 and x32 only the low 32-bit words are compared
//   ...
//   ret defaultAction

import type { Linux } from '../spec/generated/config';
import { RuntimeError } from '../sys/errors';
import { SYSCALLS } from './syscalls.generated';

type SeccompSpec = NonNullable<Linux['seccomp']>;
type Action = SeccompSpec['defaultAction'];
type Op = NonNullable<NonNullable<SeccompSpec['syscalls']>[number]['args']>[number]['op'];

export interface SeccompPlan {
  /** The BPF program: sock_filter entries (8 bytes each), base64. */
  program: string;
  instructions: number;
  flags: number;
  defaultAction: string;
  rules: number;
  /** Names no listed architecture has: skipped, as runc does (shown by explain). */
  skipped: string[];
  /**
   * SCMP_ACT_NOTIFY rules: the filter is loaded with a listener fd, which the
   * runtime takes from the init (pidfd_getfd) and sends to the agent at
   * `path` with the process's state (linux.seccomp.listenerPath, listenerMetadata).
   */
  listener: { path: string; metadata: string } | null;
}

const RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  USER_NOTIF: 0x7fc00000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

const ARCH: Record<string, { token: number; table: 'x86_64' | 'x86' | 'x32' }> = {
  SCMP_ARCH_X86_64: { token: 0xc000003e, table: 'x86_64' },
  SCMP_ARCH_X86: { token: 0x40000003, table: 'x86' },
  SCMP_ARCH_X32: { token: 0xc000003e, table: 'x32' },
};
const X32_BIT = 0x40000000;

type Features = NonNullable<NonNullable<import('../spec/generated/features').Features['linux']>['seccomp']>;

export const SECCOMP_FLAGS: Record<NonNullable<Features['knownFlags']>[number], number> = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 32,
};

export const SECCOMP_ACTIONS: NonNullable<Features['actions']> = [
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG',
];
export const SECCOMP_OPERATORS: NonNullable<Features['operators']> = [
  'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ',
];

// Classic BPF opcodes.
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGT_K = 0x25;
const JGE_K = 0x35;
const JA = 0x05;
const JSET_K = 0x45;
const RET_K = 0x06;
const ALU_AND_K = 0x54;

type Label = string;
interface Insn {
  code: number;
  k: number;
  jt?: Label | 0;
  jf?: Label | 0;
}

/** A tiny assembler: instructions with symbolic jump targets, resolved to 8-bit offsets. */
class Asm {
  readonly insns: (Insn | { label: Label })[] = [];
  private n = 0;
  label(): Label {
    return `L${this.n++}`;
  }
  at(label: Label): void {
    this.insns.push({ label });
  }
  emit(code: number, k: number, jt: Label | 0 = 0, jf: Label | 0 = 0): void {
    this.insns.push({ code, k: k >>> 0, jt, jf });
  }
  assemble(): Buffer {
    const where = new Map<Label, number>();
    let pc = 0;
    for (const x of this.insns) {
      if ('label' in x) where.set(x.label, pc);
      else pc++;
    }
    const buf = Buffer.alloc(pc * 8);
    pc = 0;
    for (const x of this.insns) {
      if ('label' in x) continue;
      const off = (t: Label | 0 | undefined): number => {
        if (!t) return 0;
        const d = (where.get(t) as number) - (pc + 1);
        if (d < 0 || d > 255) throw new RuntimeError(`linux.seccomp: the program needs a jump of ${d} instructions, more than BPF allows`, { code: 'E2BIG' });
        return d;
      };
      let k = x.k;
      if (x.code === JA && typeof x.jt === 'string') k = (where.get(x.jt) as number) - (pc + 1);
      buf.writeUInt16LE(x.code, pc * 8);
      buf.writeUInt8(x.code === JA ? 0 : off(x.jt), pc * 8 + 2);
      buf.writeUInt8(x.code === JA ? 0 : off(x.jf), pc * 8 + 3);
      buf.writeUInt32LE(k >>> 0, pc * 8 + 4);
      pc++;
    }
    return buf;
  }
}

function actionValue(action: Action, errnoRet: number | undefined, field: string): number {
  switch (action) {
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return RET.KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS':
      return RET.KILL_PROCESS;
    case 'SCMP_ACT_TRAP':
      return RET.TRAP;
    case 'SCMP_ACT_ERRNO':
      return RET.ERRNO | ((errnoRet ?? 1) & 0xffff);
    case 'SCMP_ACT_TRACE':
      return RET.TRACE | ((errnoRet ?? 1) & 0xffff);
    case 'SCMP_ACT_LOG':
      return RET.LOG;
    case 'SCMP_ACT_ALLOW':
      return RET.ALLOW;
    case 'SCMP_ACT_NOTIFY':
      return RET.USER_NOTIF;
    default:
      throw new RuntimeError(`${field}: unknown action "${String(action)}"`, { code: 'EINVAL' });
  }
}

const off = { nr: 0, arch: 4, argLo: (i: number): number => 16 + 8 * i, argHi: (i: number): number => 20 + 8 * i };

/**
 * One argument comparison: falls through when it holds, jumps to `fail`
 * when not. 64-bit values are compared as (high word, low word). For a
 * 32-bit ABI (i386, x32) only the low words count, value and argument
 * alike, as libseccomp does: the kernel reads 32-bit registers, so the high
 * word (which a 64-bit process can fill through int 0x80) must not decide.
 */
function emitArg(a: Asm, index: number, op: Op, value: number, valueTwo: number | undefined, fail: Label, word32: boolean): void {
  if (word32) return emitArg32(a, index, op, value, valueTwo, fail);
  const v = BigInt.asUintN(64, BigInt(value));
  const hi = Number(v >> 32n);
  const lo = Number(v & 0xffffffffn);
  const ok = a.label();
  switch (op) {
    case 'SCMP_CMP_EQ':
      a.emit(LD_W_ABS, off.argHi(index));
      a.emit(JEQ_K, hi, 0, fail);
      a.emit(LD_W_ABS, off.argLo(index));
      a.emit(JEQ_K, lo, 0, fail);
      break;
    case 'SCMP_CMP_NE':
      a.emit(LD_W_ABS, off.argHi(index));
      a.emit(JEQ_K, hi, 0, ok);
      a.emit(LD_W_ABS, off.argLo(index));
      a.emit(JEQ_K, lo, fail, 0);
      break;
    case 'SCMP_CMP_MASKED_EQ': {
      const m = v;
      const want = BigInt.asUintN(64, BigInt(valueTwo ?? 0));
      a.emit(LD_W_ABS, off.argHi(index));
      a.emit(ALU_AND_K, Number(m >> 32n));
      a.emit(JEQ_K, Number(want >> 32n), 0, fail);
      a.emit(LD_W_ABS, off.argLo(index));
      a.emit(ALU_AND_K, Number(m & 0xffffffffn));
      a.emit(JEQ_K, Number(want & 0xffffffffn), 0, fail);
      break;
    }
    case 'SCMP_CMP_GT':
    case 'SCMP_CMP_GE':
    case 'SCMP_CMP_LT':
    case 'SCMP_CMP_LE': {
      // high word decides unless equal; then the low word (unsigned).
      a.emit(LD_W_ABS, off.argHi(index));
      if (op === 'SCMP_CMP_GT' || op === 'SCMP_CMP_GE') {
        a.emit(JGT_K, hi, ok, 0);
        a.emit(JEQ_K, hi, 0, fail);
        a.emit(LD_W_ABS, off.argLo(index));
        a.emit(op === 'SCMP_CMP_GT' ? JGT_K : JGE_K, lo, ok, fail);
      } else {
        a.emit(JGT_K, hi, fail, 0); // hi > v.hi: not less
        a.emit(JEQ_K, hi, 0, ok); // hi < v.hi: less
        a.emit(LD_W_ABS, off.argLo(index));
        // LT: lo < v.lo  ⇔ !(lo >= v.lo);  LE: lo <= v.lo ⇔ !(lo > v.lo)
        a.emit(op === 'SCMP_CMP_LT' ? JGE_K : JGT_K, lo, fail, ok);
      }
      break;
    }
    default:
      throw new RuntimeError(`linux.seccomp: unknown operator "${String(op)}"`, { code: 'EINVAL' });
  }
  a.at(ok);
}

function emitArg32(a: Asm, index: number, op: Op, value: number, valueTwo: number | undefined, fail: Label): void {
  const v = Number(BigInt.asUintN(32, BigInt(value)));
  a.emit(LD_W_ABS, off.argLo(index));
  switch (op) {
    case 'SCMP_CMP_EQ': a.emit(JEQ_K, v, 0, fail); break;
    case 'SCMP_CMP_NE': a.emit(JEQ_K, v, fail, 0); break;
    case 'SCMP_CMP_GT': a.emit(JGT_K, v, 0, fail); break;
    case 'SCMP_CMP_GE': a.emit(JGE_K, v, 0, fail); break;
    case 'SCMP_CMP_LT': a.emit(JGE_K, v, fail, 0); break;
    case 'SCMP_CMP_LE': a.emit(JGT_K, v, fail, 0); break;
    case 'SCMP_CMP_MASKED_EQ':
      a.emit(ALU_AND_K, v);
      a.emit(JEQ_K, Number(BigInt.asUintN(32, BigInt(valueTwo ?? 0))), 0, fail);
      break;
    default:
      throw new RuntimeError(`linux.seccomp: unknown operator "${String(op)}"`, { code: 'EINVAL' });
  }
}

/**
 * runc's rule for a rule whose args name the same index twice: each
 * condition becomes a rule of its own (OR), not one rule (AND).
 */
function splitSameIndex<T extends { index: number }>(args: T[]): T[][] {
  const seen = new Set<number>();
  for (const x of args) {
    if (seen.has(x.index)) return args.map((y) => [y]);
    seen.add(x.index);
  }
  return [args];
}

const ENOSYS = 38;
/** runc: with a permissive default there is nothing to stub; ALLOW, LOG and TRACE count as permissive. */
const PERMISSIVE = new Set(['SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_TRACE']);

/** Compiles the OCI profile for the host's architectures (x86_64, with x86 and x32 if listed). */
export function compileSeccomp(profile: SeccompSpec, warnings: string[]): SeccompPlan {
  const field = 'linux.seccomp';
  const defaultRet = actionValue(profile.defaultAction, profile.defaultErrnoRet, `${field}.defaultAction`);
  let flags = 0;
  for (const f of profile.flags ?? []) {
    const bit = (SECCOMP_FLAGS as Record<string, number>)[f];
    if (bit === undefined) throw new RuntimeError(`${field}.flags: unknown flag "${f}"`, { code: 'EINVAL' });
    flags |= bit;
  }
  const listener = notifyListener(profile, field);
  if (flags & SECCOMP_FLAGS.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV && !listener) {
    // The kernel refuses it (EINVAL) without SECCOMP_FILTER_FLAG_NEW_LISTENER,
    // which only SCMP_ACT_NOTIFY asks for.
    warnings.push(`${field}.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV only applies with SCMP_ACT_NOTIFY; ignored`);
    flags &= ~SECCOMP_FLAGS.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
  }
  const archs = (profile.architectures && profile.architectures.length > 0 ? profile.architectures : ['SCMP_ARCH_X86_64']).filter((x) => {
    if (ARCH[x]) return true;
    warnings.push(`${field}.architectures: ${x} is not handled on this host; ignored`);
    return false;
  });
  const listed = new Set<string>(profile.architectures ?? []); // runc stubs only the architectures the profile lists
  if (!archs.includes('SCMP_ARCH_X86_64')) archs.unshift('SCMP_ARCH_X86_64'); // the native one is always there, as libseccomp does
  const x32 = archs.includes('SCMP_ARCH_X32');

  const a = new Asm();
  const bad = a.label();
  const blocks = archs.filter((x) => x !== 'SCMP_ARCH_X32').map((x) => ({ arch: ARCH[x] as { token: number; table: 'x86_64' | 'x86' | 'x32' }, label: a.label() }));
  a.emit(LD_W_ABS, off.arch);
  for (const b of blocks) {
    // Blocks can be far: a short conditional over a long unconditional jump.
    const notThis = a.label();
    a.emit(JEQ_K, b.arch.token, 0, notThis);
    a.emit(JA, 0, b.label);
    a.at(notThis);
  }
  a.at(bad);
  a.emit(RET_K, RET.KILL_PROCESS);

  // runc's -ENOSYS stub: a syscall newer than any the profile names (for an
  // architecture it lists) answers ENOSYS rather than the default errno, so
  // that libc falls back (glibc's fchmodat2, clone3...) on a kernel newer
  // than our table. Not with a permissive default or a default of ENOSYS.
  const stub = !PERMISSIVE.has(profile.defaultAction) && !(profile.defaultAction === 'SCMP_ACT_ERRNO' && profile.defaultErrnoRet === ENOSYS);
  const lastNr = (table: 'x86_64' | 'x86' | 'x32'): number | undefined => {
    let max: number | undefined;
    for (const rule of profile.syscalls ?? []) for (const name of rule.names) {
      const nr = SYSCALLS[table][name];
      if (nr !== undefined && (max === undefined || nr > max)) max = nr;
    }
    return max;
  };
  const lastOf = (arch: string, table: 'x86_64' | 'x86' | 'x32'): number | undefined => (stub && listed.has(arch) ? lastNr(table) : undefined);

  const unknown = new Map<string, string[]>(); // name → the tables that lack it
  let ruleCount = 0;
  for (const b of blocks) {
    a.at(b.label);
    a.emit(LD_W_ABS, off.nr);
    const tables = [b.arch.table];
    if (b.arch.table === 'x86_64') {
      const last64 = lastOf('SCMP_ARCH_X86_64', 'x86_64');
      const last32 = x32 ? lastOf('SCMP_ARCH_X32', 'x32') : undefined;
      if (x32) tables.push('x32');
      else {
        // x32 syscalls come with the x86_64 token: refuse them unless the
        // profile lists x32. -1 is no x32 call (a tracer skipping one): it
        // goes on to the rules, as with libseccomp.
        const native = a.label();
        a.emit(JGE_K, X32_BIT, 0, native);
        a.emit(JEQ_K, 0xffffffff, native, 0);
        a.emit(RET_K, RET.KILL_PROCESS);
        a.at(native);
      }
      if (last64 !== undefined || last32 !== undefined) {
        const isX32 = a.label();
        const enosys = a.label();
        const rules = a.label();
        a.emit(JSET_K, X32_BIT, isX32, 0);
        if (last64 !== undefined) a.emit(JGT_K, last64, enosys, rules);
        else a.emit(JA, 0, rules);
        a.at(isX32);
        if (last32 !== undefined) a.emit(JGT_K, last32, enosys, rules);
        else a.emit(JA, 0, rules);
        a.at(enosys);
        a.emit(RET_K, RET.ERRNO | ENOSYS);
        a.at(rules);
      }
    } else {
      const last = lastOf('SCMP_ARCH_X86', 'x86');
      if (last !== undefined) {
        const rules = a.label();
        a.emit(JGT_K, last, 0, rules);
        a.emit(RET_K, RET.ERRNO | ENOSYS);
        a.at(rules);
      }
    }
    // Group the rules by syscall number, keeping their order.
    const bySyscall = new Map<number, { ret: number; args: NonNullable<NonNullable<SeccompSpec['syscalls']>[number]['args']> }[]>();
    (profile.syscalls ?? []).forEach((rule, i) => {
      const ret = actionValue(rule.action, rule.errnoRet, `${field}.syscalls[${i}].action`);
      for (const name of rule.names) {
        for (const t of tables) {
          const nr = SYSCALLS[t][name];
          if (nr === undefined) {
            if (t === b.arch.table) unknown.set(name, [...(unknown.get(name) ?? []), t]);
            continue;
          }
          if (ret === defaultRet) continue; // runc skips a rule that only repeats the default
          const list = bySyscall.get(nr) ?? [];
          for (const args of splitSameIndex(rule.args ?? [])) list.push({ ret, args });
          bySyscall.set(nr, list);
        }
      }
      (rule.args ?? []).forEach((arg, j) => {
        if (arg.index > 5) throw new RuntimeError(`${field}.syscalls[${i}].args[${j}].index: ${arg.index} is not an argument (0..5)`, { code: 'EINVAL' });
      });
    });
    // A syscall with one argument-free rule is a single `jeq nr → ret`; they
    // go in chunks, each followed by its return stubs, so that every jump
    // stays within BPF's 255 instructions.
    const simple: [number, number][] = [];
    for (const [nr, rules] of bySyscall) {
      const only = rules[0];
      if (rules.length === 1 && only && only.args.length === 0) {
        simple.push([nr, only.ret]);
        bySyscall.delete(nr);
      }
    }
    for (let i = 0; i < simple.length; i += 120) {
      const chunk = simple.slice(i, i + 120);
      const stubs = new Map<number, Label>();
      for (const [, ret] of chunk) if (!stubs.has(ret)) stubs.set(ret, a.label());
      const after = a.label();
      for (const [nr, ret] of chunk) {
        a.emit(JEQ_K, nr, stubs.get(ret) as Label, 0);
        ruleCount++;
      }
      a.emit(JA, 0, after);
      for (const [ret, label] of stubs) {
        a.at(label);
        a.emit(RET_K, ret);
      }
      a.at(after);
    }
    for (const [nr, rules] of bySyscall) {
      const next = a.label();
      const here = a.label();
      a.emit(JEQ_K, nr, here, 0);
      a.emit(JA, 0, next);
      a.at(here);
      for (const r of rules) {
        ruleCount++;
        if (r.ret === defaultRet && r.args.length === 0) {
          a.emit(RET_K, r.ret);
          break;
        }
        const nextRule = a.label();
        const word32 = b.arch.table === 'x86' || nr >= X32_BIT;
        for (const arg of r.args) emitArg(a, arg.index, arg.op, arg.value, arg.valueTwo, nextRule, word32);
        a.emit(RET_K, r.ret);
        a.at(nextRule);
      }
      a.emit(RET_K, defaultRet); // no rule matched its arguments
      a.at(next);
      a.emit(LD_W_ABS, off.nr); // args comparisons clobbered A
    }
    a.emit(RET_K, defaultRet);
  }
  const program = a.assemble();
  if (program.length / 8 > 4096) throw new RuntimeError(`${field}: the profile compiles to ${program.length / 8} BPF instructions, over the kernel's 4096`, { code: 'E2BIG' });
  // A name some listed architecture has (mmap2 on i386) is not worth a
  // mention for the others; one none of them has is (a typo, or newer than our table).
  const skipped = [...unknown].filter(([, lacking]) => lacking.length === blocks.length).map(([name, lacking]) => `${name} (${lacking.join(', ')})`);
  return { program: program.toString('base64'), instructions: program.length / 8, flags, defaultAction: profile.defaultAction, rules: ruleCount, skipped, listener };
}

/**
 * The agent that answers SCMP_ACT_NOTIFY rules, if any rule has it. As runc:
 * never the default action and never write(2), since the init reports the
 * listener fd with a write and would wait forever for an agent that has not
 * got it yet; read and close may notify (the agent lets them through).
 */
function notifyListener(profile: SeccompSpec, field: string): SeccompPlan['listener'] {
  if (profile.defaultAction === 'SCMP_ACT_NOTIFY') throw new RuntimeError(`${field}.defaultAction: SCMP_ACT_NOTIFY cannot be used as default action`, { code: 'EINVAL' });
  let notify = false;
  (profile.syscalls ?? []).forEach((rule, i) => {
    if (rule.action !== 'SCMP_ACT_NOTIFY') return;
    notify = true;
    if (rule.names.includes('write')) throw new RuntimeError(`${field}.syscalls[${i}]: SCMP_ACT_NOTIFY cannot be used for the write syscall (the init reports the listener fd with write)`, { code: 'EINVAL' });
  });
  if (!notify) return null;
  const p = profile.listenerPath ?? '';
  if (!p.startsWith('/')) throw new RuntimeError(`${field}.listenerPath: SCMP_ACT_NOTIFY needs the absolute path of the agent's unix socket, got ${JSON.stringify(p)}`, { code: 'EINVAL' });
  return { path: p, metadata: profile.listenerMetadata ?? '' };
}

