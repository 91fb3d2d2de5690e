// The seccomp compiler (runtime/linux/seccomp.ts) against two references,
// on random (seeded) profiles and seccomp_data near every compared value:
//
// - libseccomp, which runc and crun use: the same profile goes through
//   libseccomp.so.2 (koffi, seccomp_export_bpf) as runc feeds it (one action
//   per syscall, rules OR'ed, args AND'ed, rules equal to the default
//   skipped), with runc's -ENOSYS stub modelled in front; both programs run
//   in the classic-BPF interpreter below. libseccomp 2.5.4 (Debian 12) has
//   bugs of its own, so it is the reference only where it is sound: EQ and
//   MASKED_EQ, x86_64 and i386 (not x32), no socket-family names.
// - the OCI semantics written out in TypeScript, for every operator and ABI.
//
// Where we knowingly differ from libseccomp: a bad architecture kills the
// process (libseccomp: the thread).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import koffi from 'koffi';
import { compileSeccomp } from '../../runtime/linux/seccomp';
import { SYSCALLS } from '../../runtime/linux/syscalls.generated';
import type { Linux } from '../../runtime/spec/generated/config';

type Profile = NonNullable<Linux['seccomp']>;
type Rule = NonNullable<Profile['syscalls']>[number];
type Arg = NonNullable<Rule['args']>[number];
type ArchName = NonNullable<Profile['architectures']>[number];

const AUDIT = { X86_64: 0xc000003e, I386: 0x40000003, AARCH64: 0xc00000b7 };
const SCMP_ARCH = { SCMP_ARCH_X86_64: 0xc000003e, SCMP_ARCH_X86: 0x40000003, SCMP_ARCH_X32: 0x4000003e } as const;
const X32_BIT = 0x40000000;

// ---------------------------------------------------------------- interpreter

interface SeccompData {
  nr: number;
  arch: number;
  ip?: bigint;
  args?: bigint[];
}

/** Classic BPF as the kernel's seccomp checker allows it (loads from seccomp_data only). */
function runBpf(prog: Buffer, d: SeccompData): number {
  const data = Buffer.alloc(64);
  data.writeUInt32LE(d.nr >>> 0, 0);
  data.writeUInt32LE(d.arch >>> 0, 4);
  data.writeBigUInt64LE(d.ip ?? 0n, 8);
  (d.args ?? []).forEach((a, i) => data.writeBigUInt64LE(BigInt.asUintN(64, a), 16 + 8 * i));
  const n = prog.length / 8;
  const mem = new Uint32Array(16);
  let A = 0;
  let X = 0;
  for (let pc = 0; pc < n; ) {
    const code = prog.readUInt16LE(pc * 8);
    const jt = prog.readUInt8(pc * 8 + 2);
    const jf = prog.readUInt8(pc * 8 + 3);
    const k = prog.readUInt32LE(pc * 8 + 4);
    pc++;
    const cls = code & 0x07;
    const src = code & 0x08 ? X : k;
    switch (cls) {
      case 0x00: // LD
        if (code === 0x20) A = data.readUInt32LE(k);
        else if (code === 0x00) A = k; // ld #k
        else if (code === 0x60) A = mem[k] as number;
        else if (code === 0x80) A = 64; // ld #len
        else throw new Error(`bpf: unsupported ld 0x${code.toString(16)}`);
        break;
      case 0x01: // LDX
        if (code === 0x01) X = k;
        else if (code === 0x61) X = mem[k] as number;
        else if (code === 0x81) X = 64;
        else throw new Error(`bpf: unsupported ldx 0x${code.toString(16)}`);
        break;
      case 0x02: mem[k] = A; break; // st
      case 0x03: mem[k] = X; break; // stx
      case 0x04: { // ALU
        const op = code & 0xf0;
        const ops: Record<number, () => number> = {
          0x00: () => A + src, 0x10: () => A - src, 0x20: () => Math.imul(A, src), 0x30: () => Math.floor(A / src),
          0x40: () => A | src, 0x50: () => A & src, 0x60: () => A << src, 0x70: () => A >>> src, 0x80: () => -A,
          0x90: () => A % src, 0xa0: () => A ^ src,
        };
        const f = ops[op];
        if (!f) throw new Error(`bpf: unsupported alu 0x${code.toString(16)}`);
        A = f() >>> 0;
        break;
      }
      case 0x05: { // JMP
        const op = code & 0xf0;
        if (op === 0x00) { pc += k; break; }
        const cond = op === 0x10 ? A === src : op === 0x20 ? A > src : op === 0x30 ? A >= src : op === 0x40 ? (A & src) !== 0 : null;
        if (cond === null) throw new Error(`bpf: unsupported jmp 0x${code.toString(16)}`);
        pc += cond ? jt : jf;
        break;
      }
      case 0x06: return (code & 0x18) === 0x10 ? A : k; // ret A / ret #k
      case 0x07: if (code === 0x07) X = A; else A = X; break; // tax / txa
    }
  }
  throw new Error('bpf: ran off the end of the program');
}

// ------------------------------------------------------------- libseccomp

const libPath = ['/usr/lib/x86_64-linux-gnu/libseccomp.so.2', '/lib/x86_64-linux-gnu/libseccomp.so.2'].find((p) => fs.existsSync(p));

interface LibSeccomp {
  compile(p: Profile): Buffer;
}

let loaded: LibSeccomp | undefined;
function loadLibseccomp(file: string): LibSeccomp {
  if (loaded) return loaded;
  const lib = koffi.load(file);
  const ArgCmp = koffi.struct('scmp_arg_cmp_t', { arg: 'uint32', op: 'uint32', datum_a: 'uint64', datum_b: 'uint64' });
  const init = lib.func('void *seccomp_init(uint32 def_action)');
  const release = lib.func('void seccomp_release(void *ctx)');
  const archAdd = lib.func('int seccomp_arch_add(void *ctx, uint32 arch)');
  const resolve = lib.func('int seccomp_syscall_resolve_name(const char *name)');
  const ruleAdd = lib.func('int seccomp_rule_add_array(void *ctx, uint32 action, int syscall, uint32 n, scmp_arg_cmp_t *args)');
  const exportBpf = lib.func('int seccomp_export_bpf(void *ctx, int fd)');
  const OPS: Record<Arg['op'], number> = { SCMP_CMP_NE: 1, SCMP_CMP_LT: 2, SCMP_CMP_LE: 3, SCMP_CMP_EQ: 4, SCMP_CMP_GE: 5, SCMP_CMP_GT: 6, SCMP_CMP_MASKED_EQ: 7 };
  void ArgCmp;
  return (loaded = {
    compile(p: Profile): Buffer {
      const def = act(p.defaultAction, p.defaultErrnoRet);
      const ctx = init(def) as unknown;
      assert.ok(ctx, 'seccomp_init');
      try {
        for (const a of p.architectures ?? []) {
          const rc = archAdd(ctx, SCMP_ARCH[a as keyof typeof SCMP_ARCH]) as number;
          assert.ok(rc === 0 || rc === -17, `seccomp_arch_add ${a}: ${rc}`); // -EEXIST: the native one
        }
        for (const r of p.syscalls ?? []) {
          const action = act(r.action, r.errnoRet);
          if (action === def) continue; // as runc's matchCall
          for (const name of r.names) {
            const nr = resolve(name) as number;
            if (nr === -1 /* __NR_SCMP_ERROR */) continue;
            const args = (r.args ?? []).map((x) => ({ arg: x.index, op: OPS[x.op], datum_a: BigInt.asUintN(64, BigInt(x.value)), datum_b: BigInt.asUintN(64, BigInt(x.valueTwo ?? 0)) }));
            const rc = ruleAdd(ctx, action, nr, args.length, args.length ? args : null) as number;
            assert.equal(rc, 0, `seccomp_rule_add_array ${name}`);
          }
        }
        const file = path.join(os.tmpdir(), `mc-bpf-${process.pid}`);
        const fd = fs.openSync(file, 'w+');
        try {
          assert.equal(exportBpf(ctx, fd), 0, 'seccomp_export_bpf');
          return fs.readFileSync(file);
        } finally {
          fs.closeSync(fd);
          fs.rmSync(file, { force: true });
        }
      } finally {
        release(ctx);
      }
    },
  });
}

function act(a: Profile['defaultAction'], errno: number | undefined): number {
  switch (a) {
    case 'SCMP_ACT_KILL': case 'SCMP_ACT_KILL_THREAD': return 0;
    case 'SCMP_ACT_KILL_PROCESS': return 0x80000000;
    case 'SCMP_ACT_TRAP': return 0x00030000;
    case 'SCMP_ACT_ERRNO': return (0x00050000 | ((errno ?? 1) & 0xffff)) >>> 0;
    case 'SCMP_ACT_TRACE': return (0x7ff00000 | ((errno ?? 1) & 0xffff)) >>> 0;
    case 'SCMP_ACT_LOG': return 0x7ffc0000;
    case 'SCMP_ACT_ALLOW': return 0x7fff0000;
    default: throw new Error(a);
  }
}

// ------------------------------------------------------------- random profiles

/** mulberry32: a seeded generator, so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const POOL = ['read', 'write', 'openat', 'mkdir', 'socket', 'ioctl', 'clone', 'personality', 'kill', 'getpid', 'mmap', 'futex', 'fcntl', 'prctl', 'setsockopt', 'mmap2', 'socketcall', '_llseek', 'no_such_call'];
/**
 * On i386 libseccomp turns a rule for socket() & co into one for
 * socketcall(SYS_SOCKET, ...) as well (and refuses a socketcall rule next to
 * it); we keep them apart, as the profile says. Not compared with libseccomp.
 */
const LIB_POOL = POOL.filter((n) => !['socket', 'setsockopt', 'socketcall'].includes(n));
const ACTIONS: Profile['defaultAction'][] = ['SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL', 'SCMP_ACT_TRAP', 'SCMP_ACT_LOG', 'SCMP_ACT_TRACE'];
const OPS: Arg['op'][] = ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'];
/** Interesting 64-bit values; all below 2^53 so JSON numbers hold them exactly. */
const VALUES = [0n, 1n, 2n, 10n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x1_0000_0000n, 0x1_0000_0005n, 0x3_ffff_fff0n, 0x1f_ffff_ffff_ffffn];

function randomProfile(r: () => number, archs: ArchName[], ops: readonly Arg['op'][] = OPS, pool: readonly string[] = POOL): Profile {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const defaultAction = pick(ACTIONS);
  const syscalls: Rule[] = [];
  const names = pool.filter(() => r() < 0.4);
  for (const name of names) {
    let action = pick(ACTIONS);
    while (action === defaultAction) action = pick(ACTIONS);
    const errnoRet = action === 'SCMP_ACT_ERRNO' || action === 'SCMP_ACT_TRACE' ? 1 + Math.floor(r() * 100) : undefined;
    const nrules = r() < 0.5 ? 1 : 2;
    for (let i = 0; i < nrules; i++) {
      const indices = [0, 1, 2, 3, 4, 5].filter(() => r() < 0.25).slice(0, 2);
      const args: Arg[] = indices.map((index) => {
        const op = pick(ops);
        const value = pick(VALUES);
        return op === 'SCMP_CMP_MASKED_EQ' ? { index, op, value: Number(value), valueTwo: Number(pick(VALUES) & value) } : { index, op, value: Number(value) };
      });
      const rule: Rule = { names: [name], action, ...(errnoRet === undefined ? {} : { errnoRet }), ...(args.length ? { args } : {}) };
      syscalls.push(rule);
      if (args.length === 0) break; // an unconditional rule covers the others
    }
  }
  return { defaultAction, ...(defaultAction === 'SCMP_ACT_ERRNO' ? { defaultErrnoRet: 1 + Math.floor(r() * 100) } : {}), architectures: archs, syscalls };
}

/** Argument vectors near every value the profile compares with. */
function argVectors(p: Profile, r: () => number): bigint[][] {
  const near = new Set<bigint>([0n, 0xffff_ffff_ffff_ffffn]);
  for (const s of p.syscalls ?? []) {
    for (const a of s.args ?? []) {
      const v = BigInt(a.value);
      for (const d of [v - 1n, v, v + 1n, v ^ 0x1_0000_0000n, v | 0xffff_ffff_0000_0000n, BigInt(a.valueTwo ?? 0)]) near.add(BigInt.asUintN(64, d));
    }
  }
  const vals = [...near];
  const out: bigint[][] = [];
  for (let i = 0; i < 24; i++) out.push([0, 1, 2, 3, 4, 5].map(() => vals[Math.floor(r() * vals.length)] as bigint));
  return out;
}

const KILL_THREAD = 0;
const KILL_PROCESS = 0x80000000;
const ERRNO_ENOSYS = 0x00050000 | 38;

/**
 * runc's -ENOSYS stub (libcontainer/seccomp/patchbpf), which it puts before
 * libseccomp's program: unless the default action is permissive (ALLOW, LOG,
 * TRACE) or already ENOSYS, a syscall numbered above the largest one the
 * profile names for a listed architecture answers ENOSYS.
 */
function runcStub(p: Profile, c: SeccompData): number | undefined {
  if (['SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_TRACE'].includes(p.defaultAction)) return undefined;
  if (p.defaultAction === 'SCMP_ACT_ERRNO' && p.defaultErrnoRet === 38) return undefined;
  const archs = p.architectures ?? [];
  const last = (table: keyof typeof SYSCALLS): number | undefined => {
    let max: number | undefined;
    for (const r of p.syscalls ?? []) for (const n of r.names) {
      const nr = SYSCALLS[table][n];
      if (nr !== undefined && (max === undefined || nr > max)) max = nr;
    }
    return max;
  };
  const over = (arch: ArchName, table: keyof typeof SYSCALLS): boolean => {
    const l = archs.includes(arch) ? last(table) : undefined;
    return l !== undefined && c.nr >>> 0 > l;
  };
  if (c.arch === AUDIT.X86_64) return (c.nr & X32_BIT ? over('SCMP_ARCH_X32', 'x32') : over('SCMP_ARCH_X86_64', 'x86_64')) ? ERRNO_ENOSYS : undefined;
  if (c.arch === AUDIT.I386) return over('SCMP_ARCH_X86', 'x86') ? ERRNO_ENOSYS : undefined;
  return undefined;
}

interface Mismatch {
  seed: number;
  c: SeccompData;
  got: number;
  want: number;
  profile: Profile;
}

/** Compiles random profiles with both compilers and returns where their verdicts differ. */
function differential(lib: LibSeccomp, seeds: number, only?: (c: SeccompData) => boolean, ops: readonly Arg['op'][] = OPS): { compared: number; mismatches: Mismatch[] } {
  // Not x32: libseccomp 2.5.4 merges x32 into the x86_64 filter without
  // reloading the syscall number (it compares the arch token with syscall
  // numbers), so its verdicts there are wrong. The semantic test covers x32.
  const archSets: ArchName[][] = [['SCMP_ARCH_X86_64'], ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86']];
  let compared = 0;
  const mismatches: Mismatch[] = [];
  for (let seed = 1; seed <= seeds; seed++) {
    const r = rng(seed);
    const archs = archSets[seed % archSets.length] as ArchName[];
    const profile = randomProfile(r, archs, ops, LIB_POOL);
    const ours = Buffer.from(compileSeccomp(profile, []).program, 'base64');
    const theirs = lib.compile(profile);
    const vectors = argVectors(profile, r);
    const cases: SeccompData[] = [];
    for (const name of POOL) {
      for (const [table, arch] of [['x86_64', AUDIT.X86_64], ['x86', AUDIT.I386], ['x32', AUDIT.X86_64]] as const) {
        const nr = SYSCALLS[table][name];
        if (nr === undefined) continue;
        for (const args of vectors) cases.push({ nr, arch, args });
      }
    }
    // -1 is what a tracer leaves to skip a call; 451+ are newer than our table.
    for (const nr of [0, 1, 400, 450, 451, 470, 0x40000300, 0xffffffff]) cases.push({ nr, arch: AUDIT.X86_64 }, { nr, arch: AUDIT.I386 }, { nr, arch: AUDIT.AARCH64 });
    for (const c of cases) {
      if (only && !only(c)) continue;
      const want = runcStub(profile, c) ?? runBpf(theirs, c);
      const got = runBpf(ours, c);
      // libseccomp's bad-arch action is KILL (the thread); ours kills the process.
      const badArch = c.arch === AUDIT.AARCH64 || (c.arch === AUDIT.I386 && !archs.includes('SCMP_ARCH_X86')) || (c.nr >= X32_BIT && !archs.includes('SCMP_ARCH_X32'));
      if (badArch && want === KILL_THREAD && got === KILL_PROCESS) continue;
      compared++;
      if (got !== want) mismatches.push({ seed, c, got, want, profile });
    }
  }
  return { compared, mismatches };
}

function describe(m: Mismatch): string {
  return `seed ${m.seed}: nr 0x${m.c.nr.toString(16)} arch 0x${m.c.arch.toString(16)} args ${(m.c.args ?? []).map((a) => a.toString(16)).join(',')}: ours 0x${m.got.toString(16)}, libseccomp 0x${m.want.toString(16)}\nprofile ${JSON.stringify(m.profile)}`;
}

/**
 * The OCI semantics written out directly, as a second reference that covers
 * what libseccomp 2.5.4 gets wrong (see below): the first rule of the call
 * whose args all hold gives the action, else the default. For a 32-bit ABI
 * (i386, x32) only the low 32 bits of value and argument count.
 */
function semantic(p: Profile, c: SeccompData): number {
  const archs = p.architectures?.length ? p.architectures : ['SCMP_ARCH_X86_64'];
  let table: keyof typeof SYSCALLS;
  if (c.arch === AUDIT.I386 && archs.includes('SCMP_ARCH_X86')) table = 'x86';
  else if (c.arch === AUDIT.X86_64 && c.nr >>> 0 === 0xffffffff) table = 'x86_64';
  else if (c.arch === AUDIT.X86_64 && c.nr & X32_BIT) {
    if (!archs.includes('SCMP_ARCH_X32')) return KILL_PROCESS;
    table = 'x32';
  } else if (c.arch === AUDIT.X86_64) table = 'x86_64';
  else return KILL_PROCESS;
  const stub = runcStub(p, c);
  if (stub !== undefined) return stub;
  const def = act(p.defaultAction, p.defaultErrnoRet);
  const w32 = table !== 'x86_64';
  const norm = (x: bigint): bigint => (w32 ? BigInt.asUintN(32, x) : BigInt.asUintN(64, x));
  for (const r of p.syscalls ?? []) {
    const action = act(r.action, r.errnoRet);
    if (action === def) continue;
    if (!r.names.some((n) => SYSCALLS[table][n] === c.nr >>> 0)) continue;
    const holds = (x: Arg): boolean => {
      const a = norm((c.args ?? [])[x.index] ?? 0n);
      const v = norm(BigInt(x.value));
      switch (x.op) {
        case 'SCMP_CMP_EQ': return a === v;
        case 'SCMP_CMP_NE': return a !== v;
        case 'SCMP_CMP_LT': return a < v;
        case 'SCMP_CMP_LE': return a <= v;
        case 'SCMP_CMP_GT': return a > v;
        case 'SCMP_CMP_GE': return a >= v;
        case 'SCMP_CMP_MASKED_EQ': return (a & v) === norm(BigInt(x.valueTwo ?? 0));
      }
    };
    if ((r.args ?? []).every(holds)) return action;
  }
  return def;
}

/**
 * libseccomp 2.5.4 miscompiles some trees with LT/LE/GT/GE on 64-bit values
 * and with NE across rules of one syscall: its BPF then disagrees with its
 * own seccomp_export_pfc (checked by hand on seeds 6, 23 and 50). So it is
 * the reference for EQ and MASKED_EQ; the semantic test covers the rest.
 */
const EQUALITY: Arg['op'][] = ['SCMP_CMP_EQ', 'SCMP_CMP_MASKED_EQ'];

const skipLib = libPath ? false : 'libseccomp.so.2 not found';

test('against libseccomp (+ runc\'s ENOSYS stub), x86_64 syscalls', { skip: skipLib }, () => {
  const { compared, mismatches } = differential(loadLibseccomp(libPath as string), 300, (c) => c.arch !== AUDIT.I386, EQUALITY);
  assert.deepEqual(mismatches.slice(0, 3).map(describe), []);
  assert.ok(compared > 10000, `${compared} verdicts compared`);
});

test('against libseccomp, i386 syscalls: only the low words of arguments count', { skip: skipLib }, () => {
  const { compared, mismatches } = differential(loadLibseccomp(libPath as string), 300, (c) => c.arch === AUDIT.I386, EQUALITY);
  assert.deepEqual(mismatches.slice(0, 3).map(describe), []);
  assert.ok(compared > 1000, `${compared} verdicts compared`);
});

test('against the OCI semantics written out, every operator, every ABI', () => {
  const archSets: ArchName[][] = [['SCMP_ARCH_X86_64'], ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'], ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']];
  const bad: string[] = [];
  let compared = 0;
  for (let seed = 1; seed <= 400; seed++) {
    const r = rng(1000 + seed);
    const profile = randomProfile(r, archSets[seed % 3] as ArchName[]);
    const ours = Buffer.from(compileSeccomp(profile, []).program, 'base64');
    const vectors = argVectors(profile, r);
    const cases: SeccompData[] = [];
    for (const name of POOL) {
      for (const [table, arch] of [['x86_64', AUDIT.X86_64], ['x86', AUDIT.I386], ['x32', AUDIT.X86_64]] as const) {
        const nr = SYSCALLS[table][name];
        if (nr !== undefined) for (const args of vectors) cases.push({ nr, arch, args });
      }
    }
    for (const nr of [0, 450, 451, 470, 0x40000300, 0xffffffff]) cases.push({ nr, arch: AUDIT.X86_64 }, { nr, arch: AUDIT.I386 }, { nr, arch: AUDIT.AARCH64 });
    for (const c of cases) {
      compared++;
      const got = runBpf(ours, c);
      const want = semantic(profile, c);
      if (got !== want && bad.length < 3) bad.push(describe({ seed: 1000 + seed, c, got, want, profile }));
    }
  }
  assert.deepEqual(bad, []);
  assert.ok(compared > 100000, `${compared} verdicts compared`);
});
