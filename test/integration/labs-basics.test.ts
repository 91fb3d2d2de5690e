// The course's labs 01-04 (labs/): each run.sh runs as a user would run it,
// and what its README claims is checked from the CLAIM lines it prints,
// which carry the kernel's evidence. After each lab nothing of it is left:
// no container, no cgroup under the labs' parent, no mount, no temp dir.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, REPO } from '../helpers/bundle';

const LABS = path.join(REPO, 'labs');
const notRoot = process.getuid?.() !== 0 && 'the labs run as root';

interface LabRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

function runLab(dir: string): LabRun {
  const r = spawnSync(path.join(LABS, dir, 'run.sh'), [], { encoding: 'utf8', timeout: 180000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The evidence of claim NAME, failing the test unless the lab printed it as held. */
function held(run: LabRun, name: string): string {
  const m = new RegExp(`^CLAIM ${name}: (held|FAILED) \\((.*)\\)$`, 'm').exec(run.stdout);
  assert.ok(m, `the lab printed no CLAIM ${name} line:\n${run.stdout}\n${run.stderr}`);
  assert.equal(m[1], 'held', `CLAIM ${name} failed: ${m[2]}\n${run.stdout}`);
  return m[2] ?? '';
}

/** Everything a lab could leave behind, by the name prefix of its containers and temp dirs. */
function leftovers(prefix: string): string[] {
  const left: string[] = [];
  const list = spawnSync(CLI, ['list', '-q'], { encoding: 'utf8' }).stdout.split('\n').filter((id) => id.startsWith(prefix));
  left.push(...list.map((id) => `container ${id}`));
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    const mountPoint = fields[4] ?? '';
    if (mountPoint.includes(`/tmp/${prefix}.`)) left.push(`mount ${mountPoint}`);
    // every cgroup hierarchy: the lab's cgroup parent is gone, with its containers' cgroups
    if (sep > 0 && (fields[sep + 1] === 'cgroup' || fields[sep + 1] === 'cgroup2') && mountPoint.startsWith('/sys/fs/cgroup')) {
      const parent = path.join(mountPoint, `mycontainer-${prefix}`);
      if (fs.existsSync(parent)) left.push(`cgroup ${parent} (${fs.readdirSync(parent).filter((d) => d.startsWith(prefix)).join(' ')})`);
    }
  }
  left.push(...fs.readdirSync('/tmp').filter((d) => d.startsWith(`${prefix}.`)).map((d) => `temp dir /tmp/${d}`));
  return left;
}

/** Runs lab DIR once; skips with the lab's own reason if it refuses this machine (exit 2). */
function lab(t: { skip: (why: string) => void }, dir: string, prefix: string): LabRun | null {
  const run = runLab(dir);
  assert.deepEqual(leftovers(prefix), [], `lab ${dir} left these behind`);
  if (run.status === 2) {
    t.skip(run.stderr.trim());
    return null;
  }
  assert.equal(run.status, 0, `lab ${dir} exited ${run.status}:\n${run.stdout}\n${run.stderr}`);
  // every lab opens with what it needs and how long it takes
  assert.match(run.stdout, /^== Lab \d\d: .*\nNeeds: .+\nTakes: .+\n/);
  return run;
}

test('lab 01: the escape works from a chroot and fails after pivot_root', { skip: notRoot }, (t) => {
  const run = lab(t, '01-chroot', 'lab01');
  if (!run) return;
  held(run, 'chroot-hides-host');
  held(run, 'chroot-escape');
  assert.match(run.stdout, /escape: open\("[^"]+host-marker"\) = found, it reads "on the host, outside the rootfs/);
  held(run, 'pivot-root-contains');
  assert.match(run.stdout, /escape: open\("[^"]+host-marker"\): No such file or directory: CONTAINED/);
  held(run, 'trace-pivot-root');
  assert.match(run.stdout, /\[init\] pivot_root\("\.", "\."\) = 0/);
  held(run, 'runtime-chroot-escapes');
});

test('lab 02: each namespace, seen from the host and from inside', { skip: notRoot }, (t) => {
  const run = lab(t, '02-namespaces', 'lab02');
  if (!run) return;
  for (const ns of ['uts', 'pid', 'mount', 'network', 'ipc', 'user', 'cgroup']) held(run, ns);
  if (fs.existsSync('/proc/self/ns/time')) held(run, 'time');
  assert.match(held(run, 'pid'), /is PID 1 in its namespace/);
  assert.match(held(run, 'user'), /uid 0 inside is uid 100000 on the host/);
  assert.match(run.stdout, /trace: unshare\(CLONE_NEWUTS\) = 0/);
  // the last bundle through explain --evidence: each namespace new, every finding a ✓, exit 0
  assert.match(held(run, 'evidence'), /(\d) of \1 namespaces new .* 0 ✗, exit 0$/);
  assert.match(run.stdout, /✓ user \(\/proc\/\d+\/ns\/user\): new: \d+ \(host \d+\)/);
});

test('lab 03: a 50% quota, an OOM kill, a pids limit, the freezer', { skip: notRoot }, (t) => {
  const run = lab(t, '03-cgroups', 'lab03');
  if (!run) return;
  const cores = Number(/^([\d.]+) cores used under a 50% quota/.exec(held(run, 'cpu-quota'))?.[1]);
  assert.ok(cores >= 0.3 && cores <= 0.65, `usage ${cores} cores is not near half a core`);
  assert.match(held(run, 'oom-kill'), /exit status 137 .* oom_kill [1-9]/);
  assert.match(held(run, 'pids-limit'), /can't fork: Resource temporarily unavailable" once 16 of pids\.max 16/);
  assert.match(held(run, 'freezer-froze'), /state paused/);
  held(run, 'freezer-thawed');
  // explain --evidence reads the limits back from the cgroup files
  assert.match(held(run, 'evidence'), /read \d+ cgroup files back as written, 0 ✗, exit 0$/);
  assert.match(run.stdout, /✓ pids\.max reads 16$/m);
});

test('lab 04: capabilities, no_new_privs and a seccomp errno', { skip: notRoot }, (t) => {
  const run = lab(t, '04-security', 'lab04');
  if (!run) return;
  held(run, 'cap-refused');
  assert.match(run.stdout, /hostname: sethostname: Operation not permitted/);
  held(run, 'cap-allows');
  held(run, 'suid-gains-root');
  held(run, 'nnp-blocks-suid');
  assert.match(held(run, 'seccomp-errno'), /errno 122/);
  assert.match(run.stdout, /mkdir: can't create directory '\/tmp\/dir': Disk quota exceeded/);
  held(run, 'seccomp-status');
});

test('a lab refuses a non-root user with exit 2 and says why', { skip: notRoot }, () => {
  // setpriv drops to nobody; the lab must stop before making anything.
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', path.join(LABS, '03-cgroups', 'run.sh')], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /cannot run here: it must run as root/);
  assert.match(r.stdout, /^Needs: root/m);
});
