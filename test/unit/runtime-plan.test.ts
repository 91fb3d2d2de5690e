// Pure planning: config → namespaces, process, capabilities; signal names;
// schema errors that name the field. No root needed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planNamespaces } from '../../runtime/linux/namespaces';
import { planProcess } from '../../runtime/linux/process';
import { capNames, planCapabilities } from '../../runtime/linux/capabilities';
import { defaultSpec } from '../../runtime/spec/default';
import { schemaErrors } from '../../runtime/spec/validate';
import { CLONE, parseSignal } from '../../runtime/sys/constants';
import type { Spec } from '../../runtime/spec/generated/config';

const spec = (adjust: (s: Spec) => void = () => {}): Spec => {
  const s = defaultSpec();
  adjust(s);
  return s;
};

test('the default spec is valid against the runtime-spec schema', () => {
  assert.deepEqual(schemaErrors('oci-runtime/config-schema.json', defaultSpec()), []);
});

test('schema errors name the field', () => {
  const errs = schemaErrors('oci-runtime/config-schema.json', { ociVersion: '1.0.0', process: { cwd: '/', user: { uid: -1 } }, mounts: [{}] });
  assert.ok(errs.includes('process.user.uid: must be >= 0'), errs.join('\n'));
  assert.ok(errs.includes('mounts[0].destination: is required'), errs.join('\n'));
});

test('namespaces: new ones are unshared by the worker, cgroup and time by the init', () => {
  const p = planNamespaces(spec((s) => s.linux!.namespaces!.push({ type: 'cgroup' }, { type: 'time' })));
  assert.equal(p.unshareFlags, CLONE.NEWPID | CLONE.NEWNET | CLONE.NEWIPC | CLONE.NEWUTS | CLONE.NEWNS);
  assert.equal(p.newCgroupInInit, true);
  assert.equal(p.newTimeInInit, true);
  assert.equal(p.hostPid, false);
});

test('namespaces: joined by path, mount last', () => {
  const p = planNamespaces(spec((s) => {
    s.linux!.namespaces = [{ type: 'mount', path: '/proc/1/ns/mnt' }, { type: 'network', path: '/run/netns/x' }, { type: 'uts' }];
  }));
  assert.deepEqual(p.join.map((j) => j.type), ['network', 'mount']);
  assert.equal(p.unshareFlags, CLONE.NEWUTS);
  assert.equal(p.hostPid, true);
});

test('namespaces: refusals name the field', () => {
  assert.throws(() => planNamespaces(spec((s) => s.linux!.namespaces!.push({ type: 'user' }))), /linux\.uidMappings: a new user namespace needs at least one mapping/);
  assert.throws(() => planNamespaces(spec((s) => s.linux!.namespaces!.push({ type: 'pid' }))), /listed twice/);
  assert.throws(() => planNamespaces(spec((s) => (s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'uts')))), /hostname: .* uts namespace/);
  assert.throws(() => planNamespaces(spec((s) => (s.linux!.timeOffsets = { monotonic: { secs: 1 } }))), /linux\.timeOffsets: requires a new time namespace/);
});

test('process: rlimits, user, and errors naming the field', () => {
  const w: string[] = [];
  const p = planProcess(spec((s) => {
    s.process!.user = { uid: 5, gid: 6, additionalGids: [7], umask: 0o22 };
    s.process!.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 10, hard: 20 }];
  }), w);
  assert.equal(p.uid, 5);
  assert.equal(p.gid, 6);
  assert.deepEqual(p.additionalGids, [7]);
  assert.equal(p.umask, 0o22);
  assert.deepEqual(p.rlimits, [{ type: 'RLIMIT_NOFILE', resource: 7, soft: '10', hard: '20' }]);
  assert.throws(() => planProcess(spec((s) => (s.process!.rlimits = [{ type: 'RLIMIT_BOGUS', soft: 1, hard: 1 }])), []), /process\.rlimits\[0\]\.type: unknown rlimit "RLIMIT_BOGUS"/);
  assert.throws(() => planProcess(spec((s) => (s.process!.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 2, hard: 1 }])), []), /soft limit 2 is above hard limit 1/);
  assert.throws(() => planProcess(spec((s) => (s.process!.args = [])), []), /process\.args: must name the program/);
  assert.throws(() => planProcess(spec((s) => (s.process!.cwd = 'relative')), []), /process\.cwd: must be an absolute path/);
});

test('capabilities: masks, unknown names, and ambient needing permitted+inheritable (the rest skipped silently, as runc)', () => {
  const w: string[] = [];
  const c = planCapabilities({ bounding: ['CAP_CHOWN', 'CAP_KILL'], permitted: ['CAP_KILL'], inheritable: ['CAP_KILL'], ambient: ['CAP_KILL', 'CAP_CHOWN'] }, w);
  assert.deepEqual(capNames(c.bounding), ['CAP_CHOWN', 'CAP_KILL']);
  assert.deepEqual(capNames(c.ambient), ['CAP_KILL']);
  assert.deepEqual(w, [], 'no warning for CAP_CHOWN, which is not inheritable');
  // runc spec's own sets: ambient listed, inheritable empty: nothing raised, nothing said.
  const d = defaultSpec().process!.capabilities!;
  const w2: string[] = [];
  assert.equal(planCapabilities(d, w2).ambient, '0x0');
  assert.deepEqual(w2, []);
  assert.throws(() => planCapabilities({ effective: ['CAP_BOGUS'] }, []), /process\.capabilities\.effective: unknown capability "CAP_BOGUS"/);
});

test('user namespace: maps rendered for /proc, overlaps and unmapped root refused', () => {
  const p = planNamespaces(spec((s) => {
    s.linux!.namespaces!.push({ type: 'user' });
    s.linux!.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }, { containerID: 1, hostID: 100000, size: 65535 }];
    s.linux!.gidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
  }));
  assert.deepEqual(p.user, { path: null, why: 'linux.namespaces[5]' }); // after runc spec's five
  assert.equal(p.uidMap, '0 1000 1\n1 100000 65535\n');
  assert.equal(p.unshareFlags & CLONE.NEWUSER, 0, 'nsexec, not unshare, makes the user namespace');
  assert.throws(() => planNamespaces(spec((s) => {
    s.linux!.namespaces!.push({ type: 'user' });
    s.linux!.uidMappings = [{ containerID: 0, hostID: 1000, size: 10 }, { containerID: 20, hostID: 1005, size: 10 }];
    s.linux!.gidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
  })), /linux\.uidMappings\[1\] overlaps linux\.uidMappings\[0\] \(hostID ranges\)/);
});

test('signals: names with or without SIG, numbers, real-time', () => {
  assert.equal(parseSignal('KILL'), 9);
  assert.equal(parseSignal('SIGTERM'), 15);
  assert.equal(parseSignal('sigusr1'), 10);
  assert.equal(parseSignal('9'), 9);
  assert.equal(parseSignal('RTMIN+2'), 36);
  assert.equal(parseSignal('SIGRTMAX'), 64);
  assert.equal(parseSignal('NOPE'), undefined);
  assert.equal(parseSignal('65'), undefined);
});

test('linux.rootfsPropagation "rslave" and "rshared" (containerd writes them) are accepted as runc does, and stay recursive', () => {
  const fs = require('node:fs') as typeof import('node:fs');
  const os = require('node:os') as typeof import('node:os');
  const path = require('node:path') as typeof import('node:path');
  const { loadSpec, planContainer } = require('../../runtime/plan') as typeof import('../../runtime/plan');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-prop-'));
  try {
    fs.mkdirSync(path.join(dir, 'rootfs'));
    for (const [value, flags] of [['rslave', 0x80000 | 0x4000], ['rshared', 0x100000 | 0x4000]] as const) {
      const s = defaultSpec();
      (s.linux as Record<string, unknown>)['rootfsPropagation'] = value; // outside the schema's list, as containerd writes it
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(s));
      const plan = planContainer(loadSpec(dir), dir, { noPivot: false });
      assert.equal(plan.rootfs.propagation, flags, value);
    }
    const s = defaultSpec();
    (s.linux as Record<string, unknown>)['rootfsPropagation'] = 'rbogus';
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(s));
    assert.throws(() => loadSpec(dir), /linux\.rootfsPropagation/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
