// `explain --evidence`: the runtime creates the container, reads what the
// kernel shows for each step of the plan (namespaces, mounts, cgroup files,
// hostname...), runs it, deletes it, and prints the plan with a ✓ or ✗
// under each step. Checked against the test's own readings of the host
// (its namespace inodes), and for what it leaves behind: nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { cgroupDirsNamed, containerSuite, mc, mountsUnder, processesMentioning, removeTestCgroupParents, type CliResult } from '../helpers/bundle';
import { readLayout } from '../../runtime/cgroups';
import type { Spec } from '../../runtime/spec/generated/config';

const { root, bundle } = containerSuite('explain');

const show = (r: CliResult): string => `exit ${r.status}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
const hostNs = (proc: string): string => /\[(\d+)\]/.exec(fs.readlinkSync(`/proc/self/ns/${proc}`))?.[1] ?? '?';

/** A bundle in its own cgroup under /mycontainer-test, so leftovers can be looked for by name. */
function evidenceBundle(cgroup: string, adjust: (s: Spec) => void, args: string[]): string {
  return bundle((s) => {
    s.linux!.namespaces = ['pid', 'mount', 'uts', 'ipc', 'network'].map((type) => ({ type: type as 'pid' }));
    s.linux!.cgroupsPath = `/mycontainer-test/${cgroup}`;
    adjust(s);
  }, { args });
}

/** Nothing of a container left: not listed, no cgroup, no mount under its bundle, no process. */
function assertNothingLeft(bundleDir: string, cgroup: string): void {
  assert.equal(mc(root, ['list', '-q']).stdout, '', 'no container listed');
  assert.deepEqual(cgroupDirsNamed(cgroup), [], 'no cgroup directory');
  assert.deepEqual(mountsUnder(bundleDir), [], 'no mount under the bundle');
  assert.deepEqual(processesMentioning(bundleDir), [], 'no process');
}

test('explain --evidence shows new namespaces, the hostname, cgroup values and mounts, and leaves nothing', (t) => {
  const layout = readLayout();
  if (layout.driver !== 'v2' && !fs.existsSync('/sys/fs/cgroup/pids')) return t.skip('no pids controller');
  const cgroup = `ev-ok-${process.pid}`;
  t.after(() => removeTestCgroupParents());
  const b = evidenceBundle(cgroup, (s) => {
    s.hostname = 'evbox';
    s.linux!.resources = { memory: { limit: 64 * 1024 * 1024 }, pids: { limit: 50 } };
  }, ['sh', '-c', 'echo "inside: $(hostname)"']);
  const r = mc(root, ['explain', '--evidence', '--bundle', b, 'ev-ok']);
  assert.equal(r.status, 0, show(r));
  assert.doesNotMatch(r.stdout, /✗/, show(r));
  // The container ran, and its output came through.
  assert.match(r.stdout, /^inside: evbox$/m);
  assert.match(r.stdout, /== 7\. the process exited with status 0/);

  // Each namespace of the plan: new, and the "host" inode is really ours.
  for (const [type, proc] of [['pid', 'pid'], ['network', 'net'], ['mount', 'mnt'], ['ipc', 'ipc'], ['uts', 'uts']] as const) {
    const m = new RegExp(`✓ ${type} \\(/proc/\\d+/ns/${proc}\\): new: (\\d+) \\(host (\\d+)\\)`).exec(r.stdout);
    assert.ok(m, `${type}: ${r.stdout}`);
    assert.notEqual(m[1], m[2]);
    assert.equal(m[2], hostNs(proc), `${type}: the host's inode`);
  }
  assert.match(r.stdout, new RegExp(`✓ user \\(/proc/\\d+/ns/user\\): shared with host \\(${hostNs('user')}\\)`));

  assert.match(r.stdout, /sethostname\("evbox"\)[^\n]*\n {4}✓ \/proc\/sys\/kernel\/hostname \(its uts namespace\) reads "evbox"/);
  // The cgroup files, read back.
  const memFile = layout.driver === 'v2' ? 'memory.max' : 'memory.limit_in_bytes';
  assert.match(r.stdout, new RegExp(`✓ ${memFile.replace(/\./g, '\\.')} reads 67108864$`, 'm'));
  assert.match(r.stdout, /✓ pids\.max reads 50$/m);
  assert.match(r.stdout, new RegExp(`✓ /sys/fs/cgroup/${layout.driver === 'v2' ? '' : 'memory/'}mycontainer-test/${cgroup}/cgroup\\.procs lists the init`));
  // The mounts, as the init's mountinfo shows them (relative to its root).
  assert.match(r.stdout, /mounts\[\d+\] \/proc\n {4}✓ \/proc: proc proc /);
  assert.match(r.stdout, /mounts\[\d+\] \/dev\n {4}✓ \/dev: tmpfs tmpfs rw,nosuid/);
  assert.match(r.stdout, /✓ \/proc\/\d+\/root is \S+\/rootfs/);
  assert.match(r.stdout, /the only mount at "\/" \(the old root is detached\)/);
  // The process: rlimits, capabilities, no_new_privs, from /proc/PID.
  assert.match(r.stdout, /✓ limits "Max open files": soft 1024, hard 1024/);
  assert.match(r.stdout, /✓ status CapBnd: [0-9a-f]{16}/);
  assert.match(r.stdout, /✓ status NoNewPrivs: 1/);
  // Read again once the process had exec'd: what execve made of the capabilities.
  assert.match(r.stdout, /execve\(\["sh","-c",[^\n]*\n {4}✓ after execve: status CapEff [0-9a-f]{16}/);

  assertNothingLeft(b, cgroup);
});

test('explain without --evidence is the plan only, and an id needs --evidence', () => {
  const b = bundle();
  const plain = mc(root, ['explain', '--bundle', b]);
  assert.equal(plain.status, 0, show(plain));
  assert.doesNotMatch(plain.stdout, /[✓✗]/);
  assert.match(plain.stdout, /== 6\. init: wait on exec\.fifo/);
  const r = mc(root, ['explain', '--bundle', b, 'some-id']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /explain: a container id \("some-id"\) is only taken with --evidence/);
  const noId = mc(root, ['explain', '--evidence', '--bundle', b]);
  assert.notEqual(noId.status, 0);
  assert.match(noId.stderr, /explain --evidence: a container id is required/);
});

test('explain --evidence fails clearly and leaves nothing: an id in use, a sysctl the kernel does not have', (t) => {
  t.after(() => removeTestCgroupParents());
  // An id already taken: refused before anything is made, and the other container is untouched.
  const busy = bundle(() => {}, { args: ['sleep', '30'] });
  assert.equal(mc(root, ['create', '--bundle', busy, 'ev-busy']).status, 0);
  t.after(() => mc(root, ['delete', '--force', 'ev-busy']));
  const cgroupA = `ev-busy-${process.pid}`;
  const a = evidenceBundle(cgroupA, () => {}, ['true']);
  const ra = mc(root, ['explain', '--evidence', '--bundle', a, 'ev-busy']);
  assert.notEqual(ra.status, 0, show(ra));
  assert.match(ra.stderr, /container "ev-busy" already exists/);
  assert.equal((JSON.parse(mc(root, ['state', 'ev-busy']).stdout) as { status: string }).status, 'created', 'the container that had the id is untouched');
  assert.deepEqual(cgroupDirsNamed(cgroupA), []);
  assert.deepEqual(mountsUnder(a), []);
  assert.equal(mc(root, ['delete', '--force', 'ev-busy']).status, 0);

  // A sysctl this kernel does not have: create fails in the init, after the cgroup and namespaces were made.
  const cgroupB = `ev-sysctl-${process.pid}`;
  const b = evidenceBundle(cgroupB, (s) => {
    s.linux!.sysctl = { 'net.ipv4.no_such_sysctl': '1' };
    s.linux!.resources = { pids: { limit: 20 } };
  }, ['true']);
  const rb = mc(root, ['explain', '--evidence', '--bundle', b, 'ev-sysctl']);
  assert.notEqual(rb.status, 0, show(rb));
  assert.match(rb.stderr, /cannot create container "ev-sysctl": linux\.sysctl: cannot set net\.ipv4\.no_such_sysctl=1 .*ENOENT/);
  assertNothingLeft(b, cgroupB);
});
