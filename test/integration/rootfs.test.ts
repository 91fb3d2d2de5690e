// The rootfs steps on their own, against the real kernel: the container's
// init (native/build/mycontainer-init), made PID 1 in new mount, pid, ipc,
// uts and net namespaces by util-linux `unshare`, runs the steps rootfs.ts
// writes (prepare, enter, finish) on a busybox rootfs, then execs a script
// with the container's /bin/sh. What the script prints (mountinfo, stat,
// readlink) is checked here. Everything happens in the init's mount
// namespace: after each test no mount may remain under the test's
// directories on the host.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { emitEnterRootfs, emitFinishRootfs, emitPrepareRootfs, hostProcSysMounts, planRootfs, type RootfsOptions, type RootfsPlan } from '../../runtime/linux/rootfs';
import { cgroupSubmountsOf } from '../../runtime/linux/cgroupmount';
import { InitExecutor } from '../../runtime/init/executor';
import { ProgramBuilder } from '../../runtime/sys/program';
import { CLONE } from '../../runtime/sys/constants';
import * as sys from '../../runtime/sys/libc';
import { formatTrace, setTraceSink } from '../../runtime/sys/trace';
import { messageOf } from '../../runtime/sys/errors';
import { projectFile } from '../../runtime/project';
import { detectCgroups, parseProcCgroup } from '../../runtime/cgroups/detect';
import type { Spec } from '../../runtime/spec/generated/config';
import { makeBusyboxRootfs, mountsUnder } from '../helpers/bundle';
import { runcSpec } from '../fixtures/rootfs-runc-spec';

const INIT = projectFile('native/build/mycontainer-init') as string;
const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root';

let cached: string | null = null;
process.on('exit', () => {
  if (cached) fs.rmSync(path.dirname(cached), { recursive: true, force: true });
});

interface Ctx {
  base: string;
  bundle: string;
  rootfs: string;
  /** A directory outside the rootfs that hostile symlinks point at. */
  host: string;
}

/** A fresh bundle with a busybox rootfs; checks afterwards that nothing stays mounted under it. */
function setup(t: { after: (fn: () => void) => void }): Ctx {
  if (!cached) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-rootfs-img-'));
    cached = path.join(dir, 'rootfs');
    fs.mkdirSync(cached);
    makeBusyboxRootfs(cached);
  }
  const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'mc-rootfs-it-')));
  const bundle = path.join(base, 'bundle');
  const host = path.join(base, 'host');
  fs.mkdirSync(bundle);
  fs.mkdirSync(host);
  execFileSync('cp', ['-a', cached, path.join(bundle, 'rootfs')]);
  t.after(() => {
    const left = mountsUnder(base);
    fs.rmSync(base, { recursive: true, force: true });
    assert.deepEqual(left, [], 'no mount is left on the host');
  });
  return { base, bundle, rootfs: path.join(bundle, 'rootfs'), host };
}

interface ChildResult {
  ok: boolean;
  step?: string;
  error?: string;
  status?: number;
  out?: string;
  err?: string;
  trace: string[];
}

/** The deepest process of a chain of single children (unshare, sh, unshare, ... the init). */
function deepest(pid: number): number {
  for (;;) {
    let kids: string[] = [];
    try {
      kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    } catch {
      return pid;
    }
    if (kids.length !== 1) return pid;
    pid = Number(kids[0]);
  }
}

/**
 * Runs the init under `unshare` (or the command `extra.unshare` gives, which
 * must exec INIT with fd 3 kept), drives it through the rootfs steps, and
 * has it exec `/bin/sh -c script`. `step` names the stage that failed.
 */
async function runChild(ctx: Ctx, plan: RootfsPlan, script: string, extra: { cgroupDirs?: string[]; cgroupns?: boolean; trace?: boolean; unshare?: string[] } = {}): Promise<ChildResult> {
  const traced: string[] = [];
  if (extra.trace) setTraceSink((e) => traced.push(formatTrace(e)));
  for (const d of extra.cgroupDirs ?? []) {
    fs.mkdirSync(d, { recursive: true });
    // A new v1 cpuset cgroup is empty: nothing can join it until it has cpus and mems.
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      if (fs.existsSync(`${d}/${f}`) && fs.readFileSync(`${d}/${f}`, 'utf8').trim() === '') {
        fs.writeFileSync(`${d}/${f}`, fs.readFileSync(`${d}/../${f}`, 'utf8').trim());
      }
    }
  }
  const [ours, theirs] = sys.socketpair('test: the init\'s channel');
  const flags = extra.unshare ?? ['--mount', '--pid', '--fork', '--ipc', '--uts', '--net', '--propagation', 'unchanged', '--', INIT];
  const child = spawn('unshare', flags, { stdio: ['ignore', 'pipe', 'pipe', theirs] });
  fs.closeSync(theirs);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number>((resolve) => child.on('close', (code, signal) => resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0))));
  const ex = new InitExecutor(ours, '');
  let step = 'cgroup';
  try {
    const b = new ProgramBuilder();
    for (const d of extra.cgroupDirs ?? []) b.writeFile(`${d}/cgroup.procs`, '0', { why: 'test: join the cgroup' });
    if (extra.cgroupns) b.unshare(CLONE.NEWCGROUP, { why: 'test: linux.namespaces (cgroup)' });
    b.sync('joined');
    ex.run(b.take());
    await ex.until('joined');
    step = 'prepare';
    const pid = deepest(child.pid as number);
    emitPrepareRootfs(b, plan, {
      statfsType: (p) => sys.statfs(p).type,
      cgroupSubmounts: () => cgroupSubmountsOf(pid),
    });
    b.sync('prepared');
    ex.run(b.take());
    await ex.until('prepared');
    step = 'enter';
    emitEnterRootfs(b, plan, plan.noPivot ? hostProcSysMounts(fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8'), plan.rootfs) : []);
    b.report('entered');
    emitFinishRootfs(b, plan);
    b.findExec(['/bin/sh'], { why: 'test: the script' });
    b.report('finished');
    b.cloexecFrom(3, { why: 'test: nothing leaks' });
    b.execve(['/bin/sh', '-c', script], ['PATH=/bin'], { why: 'test: the script' });
    ex.run(b.take());
    await ex.until('entered');
    step = 'finish';
    await ex.until('finished');
  } catch (e) {
    child.kill('SIGKILL');
    ex.close();
    await exited;
    setTraceSink(undefined);
    return { ok: false, step, error: messageOf(e), trace: traced };
  }
  ex.close();
  const status = await exited;
  setTraceSink(undefined);
  return { ok: true, status, out, err, trace: traced };
}

function plan(ctx: Ctx, adjust: (s: Spec) => void = () => {}, opts: Partial<RootfsOptions> = {}): RootfsPlan {
  const s = runcSpec();
  s.root = { path: 'rootfs', readonly: false };
  adjust(s);
  return planRootfs(s, ctx.bundle, { noPivot: false, ...opts });
}

interface MountLine {
  root: string;
  mp: string;
  opts: string[];
  optional: string;
  fstype: string;
  source: string;
  sopts: string[];
}

function mountinfo(text: string): MountLine[] {
  return text.split('\n').filter((l) => l.includes(' - ')).map((l) => {
    const [a, b] = l.split(' - ') as [string, string];
    const f = a.split(' ');
    const g = b.split(' ');
    return { root: f[3] as string, mp: f[4] as string, opts: (f[5] as string).split(','), optional: f.slice(6).join(' '), fstype: g[0] as string, source: g[1] as string, sopts: (g[2] ?? '').split(',') };
  });
}

/** The last mount at `mp` (the one on top). */
function at(m: MountLine[], mp: string): MountLine {
  const x = m.filter((e) => e.mp === mp).pop();
  assert.ok(x, `${mp} is mounted:\n${m.map((e) => e.mp).join('\n')}`);
  return x;
}

function sections(out: string): string[] {
  return out.split('\n---\n');
}

function ok(r: ChildResult): string {
  assert.equal(r.ok, true, `failed at ${r.step}: ${r.error}\n${r.trace.join('\n')}`);
  assert.equal(r.status, 0, r.err);
  return r.out ?? '';
}

test('runc spec\'s config: the mounts, /dev, masked and read-only paths, a read-only root', { skip }, async (t) => {
  const ctx = setup(t);
  const p = plan(ctx, (s) => (s.root!.readonly = true));
  const out = ok(await runChild(ctx, p, [
    'cat /proc/self/mountinfo',
    'echo ---; for d in null zero full random urandom tty; do stat -c "%n %F %t:%T %a %u:%g" /dev/$d; done',
    'echo ---; for l in fd stdin stdout stderr ptmx core; do echo "$l -> $(readlink /dev/$l)"; done',
    'echo ---; cat /proc/keys | wc -c; ls /sys/firmware | wc -l; touch /newfile 2>&1; { echo 1 > /proc/sys/kernel/domainname; } 2>&1; echo x > /dev/null && echo null-ok',
    'echo ---; ls /; echo pid $$',
  ].join('; ')));
  const [mi, devs, links, checks, ls] = sections(out) as [string, string, string, string, string];
  const m = mountinfo(mi);
  assert.equal(at(m, '/').root, ctx.rootfs, 'the rootfs is /');
  assert.ok(at(m, '/').opts.includes('ro'), 'root.readonly');
  assert.equal(at(m, '/proc').fstype, 'proc');
  assert.equal(at(m, '/dev').fstype, 'tmpfs');
  assert.deepEqual(['nosuid'].filter((o) => at(m, '/dev').opts.includes(o)), ['nosuid']);
  assert.ok(at(m, '/dev').sopts.includes('mode=755'));
  assert.equal(at(m, '/dev/pts').fstype, 'devpts');
  assert.ok(at(m, '/dev/pts').sopts.includes('ptmxmode=000') === false && at(m, '/dev/pts').sopts.includes('ptmxmode=666'));
  assert.equal(at(m, '/dev/shm').fstype, 'tmpfs');
  assert.deepEqual(['nosuid', 'nodev', 'noexec'].filter((o) => at(m, '/dev/shm').opts.includes(o)), ['nosuid', 'nodev', 'noexec']);
  assert.equal(at(m, '/dev/mqueue').fstype, 'mqueue');
  assert.equal(at(m, '/sys').fstype, 'sysfs');
  assert.ok(at(m, '/sys').opts.includes('ro'));
  const cg = at(m, '/sys/fs/cgroup');
  assert.equal(cg.fstype, 'tmpfs');
  assert.ok(cg.opts.includes('ro'), 'the cgroup tmpfs is read-only');
  const mem = at(m, '/sys/fs/cgroup/memory');
  assert.equal(mem.fstype, 'cgroup');
  assert.ok(mem.opts.includes('ro') && mem.opts.includes('nosuid'), 'each hierarchy read-only, nosuid');
  // Masked: a file gets /dev/null, a directory an empty read-only tmpfs.
  assert.equal(at(m, '/proc/keys').fstype, 'tmpfs', '/dev/null of the container\'s /dev (a tmpfs) on /proc/keys');
  assert.equal(at(m, '/sys/firmware').fstype, 'tmpfs');
  for (const p of ['/proc/kcore', '/proc/sched_debug', '/proc/scsi']) assert.equal(m.some((e) => e.mp === p), fs.existsSync(p), `${p} masked if it exists`);
  assert.ok(at(m, '/sys/firmware').opts.includes('ro'));
  // The kernel decides which exist (this one may lack sysrq-trigger, kcore...); missing ones are skipped.
  for (const ro of ['/proc/sys', '/proc/bus', '/proc/sysrq-trigger', '/proc/irq', '/proc/fs'].filter((p) => fs.existsSync(p))) {
    assert.ok(at(m, ro).opts.includes('ro'), `${ro} read-only`);
  }
  for (const [d, maj, min] of [['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0]] as const) {
    assert.match(devs, new RegExp(`^/dev/${d} character special file ${maj.toString(16)}:${min.toString(16)} 666 0:0$`, 'm'));
  }
  assert.match(links, /^fd -> \/proc\/self\/fd$/m);
  assert.match(links, /^stdin -> \/proc\/self\/fd\/0$/m);
  assert.match(links, /^stdout -> \/proc\/self\/fd\/1$/m);
  assert.match(links, /^stderr -> \/proc\/self\/fd\/2$/m);
  assert.match(links, /^ptmx -> pts\/ptmx$/m);
  if (fs.existsSync('/proc/kcore')) assert.match(links, /^core -> \/proc\/kcore$/m);
  const [keys, firmware] = checks.split('\n');
  assert.equal(keys?.trim(), '0', '/proc/keys reads empty');
  assert.equal(firmware?.trim(), '0', '/sys/firmware is empty');
  assert.match(checks, /touch: \/newfile: Read-only file system/);
  assert.match(checks, /\/proc\/sys\/kernel\/domainname: Read-only file system/);
  assert.match(checks, /null-ok/);
  assert.match(ls, /\bbin\b/);
  assert.doesNotMatch(ls, /\bwork\b|\bbundle\b/, 'the host\'s root is gone');
  assert.equal(fs.readdirSync(path.join(ctx.rootfs, 'dev')).length, 0, 'the nodes went to the tmpfs, not the image');
});

test('custom mounts: bind ro of a dir and a file, tmpfs ro with data, tmpcopyup, rro, propagation, devices', { skip }, async (t) => {
  const ctx = setup(t);
  const src = path.join(ctx.base, 'src');
  fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(src, 'hello'), 'from the host\n');
  fs.mkdirSync(path.join(ctx.rootfs, 'etc/skel'), { recursive: true });
  fs.writeFileSync(path.join(ctx.rootfs, 'etc/skel/profile'), 'kept\n');
  fs.chmodSync(path.join(ctx.rootfs, 'etc/skel'), 0o750);
  const p = plan(ctx, (s) => {
    s.mounts!.push(
      { destination: '/data', type: 'bind', source: src, options: ['rbind', 'ro', 'nosuid', 'nodev', 'shared'] },
      { destination: '/etc/hello', type: 'bind', source: path.join(src, 'hello'), options: ['bind', 'ro'] },
      { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['ro', 'noexec', 'size=1m', 'mode=1777'] },
      { destination: '/etc/skel', type: 'tmpfs', source: 'tmpfs', options: ['tmpcopyup', 'size=1m'] },
      { destination: '/data/sub', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] },
      // The init's view of rootfs/data now has a submount: rro must reach it.
      { destination: '/rec', type: 'bind', source: path.join(ctx.rootfs, 'data'), options: ['rbind', 'rro', 'rnoexec'] },
    );
    s.linux!.devices = [
      { path: '/dev/mydev', type: 'c', major: 1, minor: 3, fileMode: 0o600, uid: 7, gid: 8 },
      { path: '/dev/sub/myblk', type: 'b', major: 7, minor: 0, fileMode: 0o640 },
      { path: '/dev/fifo', type: 'p', fileMode: 0o600 },
    ];
  });
  const out = ok(await runChild(ctx, p, [
    'cat /proc/self/mountinfo',
    'echo ---; cat /data/hello /etc/hello; touch /data/x 2>&1; { echo y > /etc/hello; } 2>&1; touch /scratch/x 2>&1; stat -c %a /scratch; cat /etc/skel/profile; stat -c %a /etc/skel; touch /rec/sub/x 2>&1',
    'echo ---; stat -c "%n %F %t:%T %a %u:%g" /dev/mydev /dev/sub/myblk /dev/fifo',
  ].join('; ')));
  const [mi, files, devs] = sections(out) as [string, string, string];
  const m = mountinfo(mi);
  const data = at(m, '/data');
  assert.deepEqual(['ro', 'nosuid', 'nodev'].filter((o) => data.opts.includes(o)), ['ro', 'nosuid', 'nodev']);
  assert.match(data.optional, /shared:\d+/, 'the propagation option');
  assert.ok(at(m, '/etc/hello').opts.includes('ro'), 'a file bound read-only');
  const scratch = at(m, '/scratch');
  assert.ok(scratch.opts.includes('ro') && scratch.opts.includes('noexec'));
  assert.ok(scratch.sopts.includes('size=1024k'), `data kept through the remount: ${scratch.sopts}`);
  assert.equal(at(m, '/etc/skel').fstype, 'tmpfs');
  assert.ok(!at(m, '/data/sub').opts.includes('ro'), 'the tmpfs on /data/sub is rw');
  for (const r of ['/rec', '/rec/sub']) assert.ok(at(m, r).opts.includes('ro') && at(m, r).opts.includes('noexec'), `rro, rnoexec reach ${r}`);
  assert.match(files, /^from the host\nfrom the host\n/);
  assert.match(files, /touch: \/data\/x: Read-only file system/);
  assert.match(files, /\/etc\/hello: Read-only file system/);
  assert.match(files, /touch: \/scratch\/x: Read-only file system/);
  assert.match(files, /^1777$/m);
  assert.match(files, /^kept$/m, 'tmpcopyup copied the directory\'s files');
  assert.match(files, /^750$/m, 'the tmpfs took the mode of the directory it covers');
  assert.match(files, /touch: \/rec\/sub\/x: Read-only file system/);
  assert.match(devs, /^\/dev\/mydev character special file 1:3 600 7:8$/m);
  assert.match(devs, /^\/dev\/sub\/myblk block special file 7:0 640 0:0$/m);
  assert.match(devs, /^\/dev\/fifo fifo 0:0 600 0:0$/m);
  assert.deepEqual(fs.readdirSync(src).sort(), ['hello', 'sub']);
});

test('destinations that escape through symlinks (absolute and ../..) land inside the rootfs', { skip }, async (t) => {
  const ctx = setup(t);
  fs.symlinkSync(ctx.host, path.join(ctx.rootfs, 'evil-abs'));
  fs.symlinkSync(`../../../../../../../..${ctx.host}`, path.join(ctx.rootfs, 'evil-rel'));
  fs.symlinkSync('/etc/passwd-link-target', path.join(ctx.rootfs, 'evil-file'));
  const hostFile = path.join(ctx.base, 'hostfile');
  fs.writeFileSync(hostFile, 'host\n');
  const p = plan(ctx, (s) => {
    s.mounts!.push(
      { destination: '/evil-abs/x', type: 'tmpfs', source: 'tmpfs' },
      { destination: '/evil-rel/y/z', type: 'tmpfs', source: 'tmpfs' },
      { destination: '/evil-file', type: 'bind', source: hostFile, options: ['bind'] },
    );
  });
  const out = ok(await runChild(ctx, p, `cat /proc/self/mountinfo; echo ---; ls -d ${ctx.host}/x ${ctx.host}/y/z; cat /etc/passwd-link-target`));
  const [mi, rest] = sections(out) as [string, string];
  const m = mountinfo(mi);
  assert.equal(at(m, `${ctx.host}/x`).fstype, 'tmpfs', 'inside the container, the link leads to <rootfs><host>/x');
  assert.equal(at(m, `${ctx.host}/y/z`).fstype, 'tmpfs');
  assert.match(rest, /^host$/m, 'the file bind went to the link\'s target inside the rootfs');
  assert.deepEqual(fs.readdirSync(ctx.host), [], 'nothing made on the host');
  assert.ok(fs.statSync(path.join(ctx.rootfs, ctx.host, 'x')).isDirectory(), 'made inside the rootfs instead');
  assert.ok(fs.statSync(path.join(ctx.rootfs, 'etc/passwd-link-target')).isFile());
});

test('proc and sysfs are refused on a symlink, with the field named; nothing leaks', { skip }, async (t) => {
  const ctx = setup(t);
  fs.rmSync(path.join(ctx.rootfs, 'proc'), { recursive: true });
  fs.symlinkSync('/tmp', path.join(ctx.rootfs, 'proc'));
  const r = await runChild(ctx, plan(ctx), 'true');
  assert.equal(r.ok, false);
  assert.equal(r.step, 'prepare');
  assert.match(r.error ?? '', /^mounts\[0\] \/proc: \/proc must be a directory, not a symlink/);
  assert.equal(fs.readdirSync(path.join(ctx.rootfs, 'tmp')).length, 0);
});

test('a symlink cannot carry a mount into /proc, and a missing bind source is named', { skip }, async (t) => {
  const ctx = setup(t);
  fs.symlinkSync('/proc/sys/kernel', path.join(ctx.rootfs, 'etc/kernel'));
  const file = path.join(ctx.base, 'pattern');
  fs.writeFileSync(file, '|/evil\n');
  const r = await runChild(ctx, plan(ctx, (s) => s.mounts!.push({ destination: '/etc/kernel/core_pattern', type: 'bind', source: file, options: ['bind'] })), 'true');
  assert.equal(r.ok, false);
  assert.match(r.error ?? '', /^mounts\[7\] \/etc\/kernel\/core_pattern \(resolved to \/proc\/sys\/kernel\/core_pattern\): .* inside \/proc/);
  const missing = await runChild(ctx, plan(ctx, (s) => s.mounts!.push({ destination: '/x', type: 'bind', source: '/nonexistent', options: ['bind'] })), 'true');
  assert.match(missing.error ?? '', /^mounts\[7\] \/x: the bind source \/nonexistent does not exist/);
});

test('a read-only tmpfs /dev is filled first, then made read-only', { skip }, async (t) => {
  const ctx = setup(t);
  const p = plan(ctx, (s) => s.mounts!.find((m) => m.destination === '/dev')!.options!.push('ro'));
  const out = ok(await runChild(ctx, p, 'awk \'$5 == "/dev"\' /proc/self/mountinfo; stat -c "%n %t:%T" /dev/null; touch /dev/x 2>&1; true'));
  assert.match(out, / \/dev ro,nosuid/);
  assert.match(out, /size=65536k/);
  assert.match(out, /^\/dev\/null 1:3$/m);
  assert.match(out, /touch: \/dev\/x: Read-only file system/);
});

test('--no-pivot: MS_MOVE and chroot, the host\'s proc and sysfs hidden', { skip }, async (t) => {
  const ctx = setup(t);
  const p = plan(ctx, () => {}, { noPivot: true });
  const r = await runChild(ctx, p, 'cat /proc/self/mountinfo; echo ---; ls /', { trace: true });
  const [mi, ls] = sections(ok(r)) as [string, string];
  for (const hidden of ['/proc', '/sys']) {
    assert.ok(r.trace.some((l) => l.startsWith(`umount2("${hidden}", MNT_DETACH) = 0`)), `the host's ${hidden} detached:\n${r.trace.join('\n')}`);
  }
  assert.ok(r.trace.some((l) => l.includes('MS_MOVE') && l.endsWith('= 0  # --no-pivot: move the rootfs onto /')));
  const m = mountinfo(mi);
  assert.ok(m.some((e) => e.mp === '/' && e.root !== '/'), 'the root is the rootfs moved onto the old /');
  assert.equal(at(m, '/proc').fstype, 'proc');
  assert.match(ls, /\bbin\b/);
  assert.doesNotMatch(ls, /\bwork\b/);
});

test('linux.rootfsPropagation: shared and private on the container\'s /', { skip }, async (t) => {
  const ctx = setup(t);
  const root = 'awk \'$5 == "/"\' /proc/self/mountinfo';
  const shared = ok(await runChild(ctx, plan(ctx, (s) => (s.linux!.rootfsPropagation = 'shared')), root));
  assert.match(shared, /shared:\d+/);
  const priv = ok(await runChild(ctx, plan(ctx, (s) => (s.linux!.rootfsPropagation = 'private')), root));
  assert.doesNotMatch(priv, /shared:|master:/);
});

/** A cgroup per hierarchy under the test's own, which the child joins. */
function testCgroups(t: { after: (fn: () => void) => void }, name: string): string[] {
  const layout = detectCgroups({ mountinfo: fs.readFileSync('/proc/self/mountinfo', 'utf8') });
  const own = parseProcCgroup(fs.readFileSync('/proc/self/cgroup', 'utf8'));
  const dirs: string[] = [];
  for (const h of layout.v1) {
    const mine = own.v1.get(h.controllers[0] ?? '') ?? '/';
    dirs.push(path.join(h.mountPoint, path.posix.relative(h.mountRoot, mine), name));
  }
  if (layout.unified) dirs.push(path.join(layout.unified.mountPoint, path.posix.relative(layout.unified.mountRoot, own.unified ?? '/'), name));
  t.after(() => {
    for (const d of dirs) {
      try {
        fs.rmdirSync(d);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
  });
  return dirs;
}

test('cgroup mount without a cgroup namespace: the init\'s own cgroup of each hierarchy, read-only', { skip }, async (t) => {
  const ctx = setup(t);
  const name = `mc-rootfs-it-${process.pid}-a`;
  const dirs = testCgroups(t, name);
  const out = ok(await runChild(ctx, plan(ctx, () => {}, { cgroupNamespace: false }), 'cat /proc/self/mountinfo; echo ---; ls /sys/fs/cgroup; echo ---; cat /sys/fs/cgroup/pids/cgroup.procs', { cgroupDirs: dirs }));
  const [mi, ls, procs] = sections(out) as [string, string, string];
  const m = mountinfo(mi);
  for (const h of ['memory', 'pids', 'cpu', 'systemd']) {
    const e = at(m, `/sys/fs/cgroup/${h}`);
    assert.ok(e.root.endsWith(`/${name}`), `${h}: the container's cgroup is bound (root ${e.root})`);
    assert.ok(e.opts.includes('ro'), `${h} read-only`);
  }
  assert.match(ls, /\bmemory\b/);
  assert.match(procs, /^1$/m, 'the init is in the bound cgroup (pids as the container sees them)');
});

test('cgroup mount in a cgroup namespace: each hierarchy mounted, rooted at the container\'s cgroup', { skip }, async (t) => {
  const ctx = setup(t);
  const dirs = testCgroups(t, `mc-rootfs-it-${process.pid}-b`);
  const out = ok(await runChild(ctx, plan(ctx, () => {}, { cgroupNamespace: true }), 'cat /proc/self/mountinfo; echo ---; cat /proc/self/cgroup', { cgroupDirs: dirs, cgroupns: true }));
  const [mi, self] = sections(out) as [string, string];
  const m = mountinfo(mi);
  for (const h of ['memory', 'pids', 'systemd']) {
    const e = at(m, `/sys/fs/cgroup/${h}`);
    assert.equal(e.fstype, 'cgroup');
    assert.equal(e.root, '/', `${h}: the namespace's root`);
    assert.ok(e.opts.includes('ro'));
  }
  assert.match(self, /^\d+:memory:\/$/m, 'the container sees itself at its cgroup namespace\'s root');
});

test('in a user namespace: device nodes are bound from the host, locked flags are kept on a ro remount', { skip }, async (t) => {
  const ctx = setup(t);
  const src = path.join(ctx.base, 'locked');
  fs.mkdirSync(src);
  const p = plan(ctx, (s) => {
    // gid=5 is not mapped in this user namespace; cgroups are not the point here.
    s.mounts = s.mounts!.filter((m) => m.type !== 'cgroup').map((m) => ({ ...m, options: (m.options ?? []).filter((o) => o !== 'gid=5') }));
    s.mounts.push({ destination: '/locked', type: 'bind', source: src, options: ['rbind', 'ro'] });
    s.linux!.devices = [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o600 }];
  }, { userNamespace: true });
  // The outer, private mount namespace gets a nosuid,nodev tmpfs on src; the
  // inner one, owned by a new user namespace, sees it with those flags locked.
  const inner = ['unshare', '--user', '--map-root-user', '--mount', '--pid', '--fork', '--ipc', '--uts', '--net', '--', INIT].map((a) => `'${a}'`).join(' ');
  const r = await runChild(ctx, p, 'cat /proc/self/mountinfo; echo ---; stat -c "%n %t:%T" /dev/null /dev/fuse', {
    trace: true,
    unshare: ['--mount', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o nosuid,nodev,size=1m tmpfs '${src}' && exec ${inner}`],
  });
  const out = ok(r);
  const [mi, devs] = sections(out) as [string, string];
  const locked = at(mountinfo(mi), '/locked');
  assert.deepEqual(['ro', 'nosuid', 'nodev'].filter((o) => locked.opts.includes(o)), ['ro', 'nosuid', 'nodev']);
  assert.ok(r.trace.some((l) => l.includes('keeping the locked') && l.includes('MS_NOSUID')), 'retried with the locked flags');
  assert.equal(at(mountinfo(mi), '/dev/null').fstype, 'devtmpfs', 'the host\'s /dev/null bound');
  assert.match(devs, /^\/dev\/fuse a:e5$/m);
});
