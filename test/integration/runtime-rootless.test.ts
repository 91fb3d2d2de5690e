// Rootless: bin/mycontainer-runtime run by a throwaway non-root user, with
// its own user namespace. The single-id maps it writes itself, subordinate
// ranges through newuidmap/newgidmap (from /etc/subuid and /etc/subgid), the
// lifecycle, cgroups skipped with a warning, the node binary sealed inside
// the user namespace, and the default state roots. The user, its subordinate
// ids and every file and process it made are removed in `after`, which also
// restores /etc's files byte for byte, whatever failed.

import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { CLI, REPO, cgroupDirsNamed, makeBundle, mountsUnder, removeBundle, type CliResult } from '../helpers/bundle';
import { rootlessSpec } from '../../runtime/spec/default';
import type { Spec } from '../../runtime/spec/generated/config';

// useradd/userdel rewrite these (and their "-" backups): all restored exactly.
const ETC_FILES = ['subuid', 'subgid', 'subuid-', 'subgid-', 'passwd-', 'group-', 'shadow-', 'gshadow-'].map((f) => `/etc/${f}`);
interface Snapshot {
  file: string;
  content: Buffer | null;
  mode: number;
  uid: number;
  gid: number;
}

function snapshot(file: string): Snapshot {
  try {
    const st = fs.statSync(file);
    return { file, content: fs.readFileSync(file), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  } catch {
    return { file, content: null, mode: 0, uid: 0, gid: 0 };
  }
}

function restore(s: Snapshot): void {
  if (s.content === null) {
    fs.rmSync(s.file, { force: true });
    return;
  }
  fs.writeFileSync(s.file, s.content);
  fs.chownSync(s.file, s.uid, s.gid);
  fs.chmodSync(s.file, s.mode);
}

const NAME = `mcrl${process.pid % 1000000}`;
const SUB = 400000; // subordinate ids granted to NAME
const SUB_SIZE = 65536;
const saved = ETC_FILES.map(snapshot);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-rootless-'));
fs.chmodSync(tmp, 0o755);
const home = path.join(tmp, 'home');
const xdg = path.join(tmp, 'xdg'); // the user's $XDG_RUNTIME_DIR
const bundles: string[] = [];
let uid = -1;
let gid = -1;

function tmpRoot(): string {
  return `/tmp/mycontainer-${uid}`;
}

/**
 * Live pids whose real uid is the user's or one of its subordinate ids (the
 * container's). Zombies are dead already: orphans wait there for the host's
 * init to reap them.
 */
function userProcesses(): number[] {
  if (uid < 0) return [];
  const pids: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const status = fs.readFileSync(`/proc/${p}/status`, 'utf8');
      const u = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? -1);
      if (/^State:\s+Z/m.test(status)) continue;
      if (u === uid || (u >= SUB && u < SUB + SUB_SIZE)) pids.push(Number(p));
    } catch {
      // gone
    }
  }
  return pids;
}

before(() => {
  // No automatic subordinate ids: we write exactly the range under test.
  execFileSync('useradd', ['-K', 'SUB_UID_COUNT=0', '-K', 'SUB_GID_COUNT=0', '--home-dir', home, '--create-home', '--user-group', '--shell', '/bin/sh', NAME]);
  uid = Number(execFileSync('id', ['-u', NAME], { encoding: 'utf8' }).trim());
  gid = Number(execFileSync('id', ['-g', NAME], { encoding: 'utf8' }).trim());
  for (const [file, snap] of [['/etc/subuid', saved[0]], ['/etc/subgid', saved[1]]] as const) {
    fs.writeFileSync(file, Buffer.concat([snap?.content ?? Buffer.alloc(0), Buffer.from(`${NAME}:${SUB}:${SUB_SIZE}\n`)]));
  }
  fs.mkdirSync(xdg, { mode: 0o700 });
  fs.chownSync(xdg, uid, gid);
});

after(() => {
  const errors: string[] = [];
  const step = (what: string, f: () => void): void => {
    try {
      f();
    } catch (e) {
      errors.push(`${what}: ${(e as Error).message}`);
    }
  };
  if (uid >= 0) {
    for (const root of [path.join(xdg, 'mycontainer'), tmpRoot()]) {
      let ids: string[] = [];
      step(`list ${root}`, () => {
        ids = fs.existsSync(root) ? fs.readdirSync(root) : [];
      });
      for (const id of ids) step(`delete ${id}`, () => void asUser(['--root', root, 'delete', '--force', id]));
    }
    for (const pid of userProcesses()) step(`kill ${pid}`, () => process.kill(pid, 'SIGKILL'));
    step('userdel', () => execFileSync('userdel', ['--force', NAME], { stdio: 'ignore' }));
    step(`rm ${tmpRoot()}`, () => fs.rmSync(tmpRoot(), { recursive: true, force: true }));
  }
  for (const s of saved) step(`restore ${s.file}`, () => restore(s));
  for (const b of bundles) step(`rm ${b}`, () => removeBundle(b));
  step(`rm ${tmp}`, () => fs.rmSync(tmp, { recursive: true, force: true }));
  if (errors.length) throw new Error(`rootless test cleanup: ${errors.join('; ')}`);
});

/** Runs the runtime as the user (setpriv), with output through files: a created container inherits it. */
function asUser(args: string[], opts: { xdg?: string | null; node?: string; cli?: string } = {}): CliResult {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-out-'));
  const out = fs.openSync(path.join(dir, 'out'), 'w+');
  const err = fs.openSync(path.join(dir, 'err'), 'w+');
  const env = ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', `HOME=${home}`, `USER=${NAME}`];
  const runtimeDir = opts.xdg === undefined ? xdg : opts.xdg;
  if (runtimeDir !== null) env.push(`XDG_RUNTIME_DIR=${runtimeDir}`);
  try {
    const r = spawnSync('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--init-groups', 'env', '-i', ...env, opts.node ?? process.execPath, opts.cli ?? CLI, ...args], {
      stdio: ['ignore', out, err],
      timeout: 60000,
      cwd: REPO,
    });
    return { status: r.status, stdout: fs.readFileSync(path.join(dir, 'out'), 'utf8'), stderr: fs.readFileSync(path.join(dir, 'err'), 'utf8') };
  } finally {
    fs.closeSync(out);
    fs.closeSync(err);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A busybox bundle owned by the user, with the rootless spec (single-id maps) adjusted. */
function userBundle(args: string[], adjust: (s: Spec) => void = () => {}): string {
  const b = makeBundle((s) => {
    rootlessSpec(s, uid, gid);
    adjust(s);
  }, { args });
  bundles.push(b);
  execFileSync('chown', ['-R', `${uid}:${gid}`, b]);
  return b;
}

function subordinate(s: Spec): void {
  s.linux!.uidMappings = [{ containerID: 0, hostID: uid, size: 1 }, { containerID: 1, hostID: SUB, size: SUB_SIZE }];
  s.linux!.gidMappings = [{ containerID: 0, hostID: gid, size: 1 }, { containerID: 1, hostID: SUB, size: SUB_SIZE }];
}

const norm = (out: string): string[] => out.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
const cgroupWarnings = (stderr: string): string[] => stderr.split('\n').filter((l) => /warning: cgroups: no write access/.test(l));

/** A failed test's containers go at once, so that the next test's leftover checks see only its own. */
function deleteAfter(t: TestContext, ids: string[], opts: { xdg?: string | null } = {}): void {
  t.after(() => {
    for (const id of ids) asUser(['delete', '--force', id], opts);
  });
}

/** No state, no process, no mount left by container `id`. */
function assertNothingLeft(id: string, root = path.join(xdg, 'mycontainer')): void {
  assert.equal(fs.existsSync(path.join(root, id)), false, `state dir of ${id} removed`);
  const procs = userProcesses().map((p) => {
    try {
      return `${p} ${fs.readFileSync(`/proc/${p}/stat`, 'utf8').split(' ')[2]} ${fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ')}`;
    } catch {
      return `${p} (gone)`;
    }
  });
  assert.deepEqual(procs, [], 'no process of the user or its subordinate ids');
  assert.deepEqual(mountsUnder(tmp), [], 'no host mount under the test dir');
  assert.deepEqual(mountsUnder(tmpRoot()), []);
  assert.deepEqual(cgroupDirsNamed(id), [], 'no cgroup');
}

test('single-id maps, written by the runtime itself: root inside, setgroups denied, state in $XDG_RUNTIME_DIR', (t) => {
  deleteAfter(t, ['rl1']);
  const b = userBundle(['sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; id -u; id -g; stat -c %u /bin/busybox']);
  const r = asUser(['run', '--bundle', b, 'rl1']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(norm(r.stdout), [`0 ${uid} 1`, `0 ${gid} 1`, 'deny', '0', '0', '0']);
  assert.equal(cgroupWarnings(r.stderr).length, 1, r.stderr);
  const st = fs.statSync(path.join(xdg, 'mycontainer'));
  assert.equal(st.uid, uid);
  assert.equal(st.mode & 0o777, 0o700);
  assertNothingLeft('rl1');
});

test('subordinate ranges through newuidmap/newgidmap: the maps inside, another user in the container', (t) => {
  deleteAfter(t, ['rl2', 'rl2b']);
  const b = userBundle(['sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; id -u; id -g; id -G'], (s) => {
    subordinate(s);
    s.process!.user = { uid: 1000, gid: 1000, additionalGids: [1001] };
  });
  const r = asUser(['run', '--bundle', b, 'rl2']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(norm(r.stdout), [`0 ${uid} 1`, `1 ${SUB} ${SUB_SIZE}`, `0 ${gid} 1`, `1 ${SUB} ${SUB_SIZE}`, 'allow', '1000', '1000', '1000 1001']);
  // and root of the container with the same maps
  const b0 = userBundle(['id', '-u'], subordinate);
  const r0 = asUser(['run', '--bundle', b0, 'rl2b']);
  assert.equal(r0.status, 0, r0.stderr);
  assert.equal(r0.stdout.trim(), '0');
  assertNothingLeft('rl2');
  assertNothingLeft('rl2b');
});

test('mappings a non-root user may not make are refused, naming the field, leaving nothing', (t) => {
  deleteAfter(t, ['rl3', 'rl3g', 'rl3b', 'rl3c']);
  const outside = userBundle(['true'], (s) => {
    subordinate(s);
    s.linux!.uidMappings![1] = { containerID: 1, hostID: SUB + SUB_SIZE, size: 10 };
  });
  const r = asUser(['create', '--bundle', outside, 'rl3']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /linux\.uidMappings: newuidmap \d+ 0 \d+ 1 1 465536 10 refused "0 \d+ 1, 1 465536 10"/);
  const gids = userBundle(['true'], (s) => {
    subordinate(s);
    s.linux!.gidMappings![1] = { containerID: 1, hostID: 1, size: 1 };
  });
  assert.match(asUser(['create', '--bundle', gids, 'rl3g']).stderr, /linux\.gidMappings: newgidmap .* refused/);
  const foreignRoot = userBundle(['true'], (s) => {
    s.linux!.uidMappings = [{ containerID: 0, hostID: SUB, size: SUB_SIZE }];
  });
  const r2 = asUser(['create', '--bundle', foreignRoot, 'rl3b']);
  assert.match(r2.stderr, new RegExp(`linux\\.uidMappings: running as uid ${uid} \\(not root\\), container uid 0 must map to host uid ${uid}, not ${SUB}`));
  const noUserns = userBundle(['true'], (s) => {
    s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'user');
    delete s.linux!.uidMappings;
    delete s.linux!.gidMappings;
  });
  assert.match(asUser(['create', '--bundle', noUserns, 'rl3c']).stderr, /linux\.namespaces: running as uid \d+ \(not root\), the container needs a new user namespace/);
  assert.deepEqual(fs.readdirSync(path.join(xdg, 'mycontainer')), []);
  for (const id of ['rl3', 'rl3g', 'rl3b', 'rl3c']) assertNothingLeft(id);
});

test('create, start, state, kill, delete', (t) => {
  deleteAfter(t, ['rl4']);
  const b = userBundle(['sleep', '100'], subordinate);
  const c = asUser(['create', '--bundle', b, 'rl4']);
  assert.equal(c.status, 0, c.stderr);
  const st = (): { status: string; pid: number } => JSON.parse(asUser(['state', 'rl4']).stdout) as { status: string; pid: number };
  const created = st();
  assert.equal(created.status, 'created');
  assert.match(fs.readFileSync(`/proc/${created.pid}/status`, 'utf8'), new RegExp(`^Uid:\\s+${uid}\\s`, 'm'));
  assert.notEqual(fs.readlinkSync(`/proc/${created.pid}/ns/user`), fs.readlinkSync('/proc/self/ns/user'));
  assert.equal(asUser(['start', 'rl4']).status, 0);
  assert.equal(st().status, 'running');
  assert.ok((JSON.parse(asUser(['list', '--format', 'json']).stdout) as { id: string }[]).some((x) => x.id === 'rl4'));
  const k = asUser(['kill', 'rl4', 'KILL']);
  assert.equal(k.status, 0, k.stderr);
  const end = Date.now() + 5000;
  while (st().status !== 'stopped' && Date.now() < end) execFileSync('sleep', ['0.05']);
  assert.equal(st().status, 'stopped');
  const d = asUser(['delete', 'rl4']);
  assert.equal(d.status, 0, d.stderr);
  assert.match(asUser(['state', 'rl4']).stderr, /container "rl4" does not exist/);
  assertNothingLeft('rl4');
});

test('exec joins the container\'s namespaces through nsexec, as root or another user of the container', (t) => {
  deleteAfter(t, ['rl8']);
  const b = userBundle(['sleep', '100'], subordinate);
  assert.equal(asUser(['run', '-d', '--bundle', b, 'rl8']).status, 0);
  const e = asUser(['exec', 'rl8', 'sh', '-c', 'for n in user pid mnt net ipc uts; do [ "$(readlink /proc/self/ns/$n)" = "$(readlink /proc/1/ns/$n)" ] || echo "not in $n"; done; cat /proc/self/uid_map; id -u; echo $$']);
  assert.equal(e.status, 0, e.stderr);
  const lines = norm(e.stdout);
  assert.deepEqual(lines.slice(0, 3), [`0 ${uid} 1`, `1 ${SUB} ${SUB_SIZE}`, '0']);
  assert.ok(Number(lines[3]) > 1, 'a pid of the container\'s pid namespace');
  const u = asUser(['exec', '--user', '1000:1000', 'rl8', 'id', '-u']);
  assert.equal(u.stdout.trim(), '1000', u.stderr);
  assert.equal(asUser(['delete', '--force', 'rl8']).status, 0);
  assertNothingLeft('rl8');
});

test('cgroup resources without delegation: one warning naming them, and the container still runs', (t) => {
  deleteAfter(t, ['rl5']);
  const b = userBundle(['echo', 'ran'], (s) => {
    s.linux!.resources = { memory: { limit: 64 * 1024 * 1024 }, pids: { limit: 32 } };
  });
  const r = asUser(['run', '--bundle', b, 'rl5']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'ran\n');
  const w = cgroupWarnings(r.stderr);
  assert.equal(w.length, 1, r.stderr);
  assert.match(w[0] ?? '', /\(no cgroup delegation\): the container gets no cgroup; not applied: linux\.resources\.memory\.limit, linux\.resources\.pids\.limit$/);
  assertNothingLeft('rl5');
});

test('the init binary is sealed inside the user namespace: not writable through /proc/1/exe from the container', (t) => {
  deleteAfter(t, ['rl6']);
  // A clone the user owns (as a developer's checkout): the container's root
  // is that user, so only the read-only bind keeps it from rewriting the
  // runtime's init. A startContainer hook (in the container, while PID 1 is
  // still the init) keeps an fd on /proc/1/exe, and once the runtime is gone
  // (no ETXTBSY) writes through it.
  const clone = path.join(tmp, 'clone');
  fs.mkdirSync(path.join(clone, 'dist', 'bundle'), { recursive: true });
  fs.mkdirSync(path.join(clone, 'native', 'build'), { recursive: true });
  fs.copyFileSync(path.join(REPO, 'dist', 'bundle', 'mycontainer-runtime.js'), path.join(clone, 'dist', 'bundle', 'mycontainer-runtime.js'));
  for (const f of ['mycontainer-init', 'mycontainer-nsexec']) fs.copyFileSync(path.join(REPO, 'native', 'build', f), path.join(clone, 'native', 'build', f));
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(clone, 'node_modules'));
  const init = path.join(clone, 'native', 'build', 'mycontainer-init');
  fs.chmodSync(init, 0o755);
  execFileSync('chown', ['-R', `${uid}:${gid}`, clone]);
  const cli = path.join(clone, 'dist', 'bundle', 'mycontainer-runtime.js');
  const digest = (): string => crypto.createHash('sha256').update(fs.readFileSync(init)).digest('hex');
  const before = digest();
  const attack = 'exec 3</proc/1/exe; echo open=$? > /tmp/rc; (sleep 1; echo pwned >> /proc/self/fd/3; echo write=$? >> /tmp/rc) >/dev/null 2>>/tmp/rc &';
  const b = userBundle(['sh', '-c', 'while ! grep -q write= /tmp/rc; do sleep 0.1; done; cat /tmp/rc'], (s) => {
    s.hooks = { startContainer: [{ path: '/bin/sh', args: ['sh', '-c', attack] }] };
    // The hook runs with the process's credentials (as runc's): CAP_SYS_PTRACE
    // lets it open the non-dumpable init's /proc/1/exe, so that only the seal
    // stands between it and the binary.
    const caps = s.process!.capabilities!;
    for (const set of ['bounding', 'effective', 'permitted'] as const) caps[set] = [...(caps[set] ?? []), 'CAP_SYS_PTRACE'];
  });
  const c = asUser(['create', '--bundle', b, 'rl6'], { cli });
  assert.equal(c.status, 0, c.stderr);
  assert.equal((JSON.parse(asUser(['state', 'rl6'], { cli }).stdout) as { status: string }).status, 'created');
  assert.equal(asUser(['start', 'rl6'], { cli }).status, 0);
  // The container's stdout went to create's (gone) output file: read the result through its rootfs.
  const rc = path.join(b, 'rootfs', 'tmp', 'rc');
  const end = Date.now() + 10000;
  while (!(fs.existsSync(rc) && /write=/.test(fs.readFileSync(rc, 'utf8'))) && Date.now() < end) execFileSync('sleep', ['0.1']);
  const text = fs.readFileSync(rc, 'utf8');
  assert.match(text, /^open=0$/m, 'the hook could open /proc/1/exe (the init) for reading');
  assert.match(text, /Read-only file system/);
  assert.match(text, /^write=1$/m);
  assert.equal(digest(), before, 'the user\'s init binary is unchanged');
  const end2 = Date.now() + 5000;
  while ((JSON.parse(asUser(['state', 'rl6']).stdout) as { status: string }).status !== 'stopped' && Date.now() < end2) execFileSync('sleep', ['0.05']);
  assert.equal(asUser(['delete', 'rl6']).status, 0);
  assertNothingLeft('rl6');
});

test('without $XDG_RUNTIME_DIR the state root is /tmp/mycontainer-<uid>, private, and refused when someone else owns it', (t) => {
  deleteAfter(t, ['rl7'], { xdg: null });
  fs.mkdirSync(tmpRoot(), { mode: 0o755 }); // made by root first
  try {
    const b = userBundle(['true']);
    const r = asUser(['create', '--bundle', b, 'rl7'], { xdg: null });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, new RegExp(`state root /tmp/mycontainer-${uid}: owned by uid 0, not by uid ${uid}: refusing`));
  } finally {
    fs.rmdirSync(tmpRoot());
  }
  const b = userBundle(['sleep', '100']);
  assert.equal(asUser(['run', '-d', '--bundle', b, 'rl7'], { xdg: null }).status, 0);
  const st = fs.statSync(tmpRoot());
  assert.equal(st.uid, uid);
  assert.equal(st.mode & 0o777, 0o700);
  assert.ok(fs.existsSync(path.join(tmpRoot(), 'rl7', 'state.json')));
  assert.equal(asUser(['delete', '--force', 'rl7'], { xdg: null }).status, 0);
  assert.deepEqual(fs.readdirSync(tmpRoot()), []);
  assertNothingLeft('rl7', tmpRoot());
});
