// linux.seccomp on the real kernel, checked from inside the container: the
// configured errno comes back, arguments are filtered, /proc/self/status
// shows the filter, and the default profile leaves a shell usable.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { containerSuite, leftovers, mc } from '../helpers/bundle';

const { root, bundle, probe } = containerSuite('seccomp');


test('a blocked syscall returns the configured errno; the filter shows in /proc/self/status', () => {
  const r = probe((s) => {
    s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }] };
  }, 'mkdir /tmp/blocked 2>&1; grep -E "^Seccomp" /proc/self/status; touch /tmp/allowed && echo touch-ok');
  assert.equal(r.status, 0, r.err);
  assert.match(r.out, /can't create directory '\/tmp\/blocked': Function not implemented/);
  assert.match(r.out, /^Seccomp:\s+2$/m);
  assert.match(r.out, /^Seccomp_filters:\s+1$/m);
  assert.match(r.out, /touch-ok/);
});

test('an argument filter blocks only the matching call (socket AF_INET6, not AF_INET)', () => {
  const r = probe((s) => {
    s.linux!.seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: 97, args: [{ index: 0, value: 10, op: 'SCMP_CMP_EQ' }] }],
    };
  }, 'echo v6: $(nc ::1 80 2>&1); echo v4: $(nc 127.0.0.1 80 2>&1)');
  assert.equal(r.status, 0, r.err);
  assert.match(r.out, /^v6: .*Address family not supported by protocol/m, 'AF_INET6 (10) refused with EAFNOSUPPORT');
  assert.match(r.out, /^v4: /m);
  assert.doesNotMatch(r.out.split('\n').find((l) => l.startsWith('v4:')) ?? '', /Address family not supported/, 'AF_INET gets a socket');
});

test('the default profile (spec) keeps a shell working and refuses unshare', () => {
  const r = probe(() => {}, 'ls / >/dev/null && echo ls-ok; (sleep 0.1 & wait) && echo fork-ok; unshare -m true 2>&1; echo unshare=$?');
  assert.equal(r.status, 0, r.err);
  assert.match(r.out, /ls-ok/);
  assert.match(r.out, /fork-ok/);
  assert.match(r.out, /unshare=1/);
  assert.match(r.out, /Operation not permitted/);
});

test('a profile with an unknown syscall still runs; an invalid action is refused with the field named', () => {
  const ok = probe((s) => {
    s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['no_such_syscall'], action: 'SCMP_ACT_ERRNO' }] };
  }, 'echo ran');
  assert.equal(ok.out, 'ran\n');
  const bad = probe((s) => {
    s.linux!.seccomp = { defaultAction: 'SCMP_ACT_NOPE' as never };
  }, 'true');
  assert.notEqual(bad.status, 0);
  assert.match(bad.err, /linux\.seccomp\.defaultAction: must be equal to one of the allowed values/);
  assert.deepEqual(leftovers(root), []);
});

test('exec runs under the container\'s profile too', () => {
  const b = bundle((s) => {
    s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }] };
  }, { args: ['sleep', '100'] });
  assert.equal(mc(root, ['run', '-d', '--bundle', b, 'scx']).status, 0);
  const r = mc(root, ['exec', 'scx', 'sh', '-c', 'mkdir /tmp/x 2>&1; grep -E "^Seccomp:" /proc/self/status']);
  assert.match(r.stdout, /Function not implemented/);
  assert.match(r.stdout, /^Seccomp:\s+2$/m);
  assert.equal(mc(root, ['delete', '--force', 'scx']).status, 0);
});
