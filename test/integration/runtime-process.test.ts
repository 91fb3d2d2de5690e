// process.*, hostname, sysctl and namespaces, each checked from inside the
// container: /proc/self/status, /proc/self/limits, /proc/self/ns, hostname.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { containerSuite, mc } from '../helpers/bundle';
import { CAPABILITIES } from '../../runtime/sys/constants';
import koffi from 'koffi';

const { root, bundle, probe } = containerSuite('process');


function statusField(text: string, field: string): string {
  const m = new RegExp(`^${field}:\\s*(.*)$`, 'm').exec(text);
  assert.ok(m, `${field} in /proc/self/status`);
  return (m[1] as string).trim();
}

const capMask = (names: string[]): string => names.reduce((m, c) => m | (1n << BigInt(CAPABILITIES.indexOf(c as never))), 0n).toString(16).padStart(16, '0');

test('process.capabilities: all five sets', () => {
  const r = probe((s) => {
    s.process!.capabilities = {
      bounding: ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_RAW', 'CAP_SETPCAP'],
      effective: ['CAP_CHOWN', 'CAP_KILL'],
      permitted: ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_RAW'],
      inheritable: ['CAP_NET_RAW', 'CAP_KILL'],
      ambient: ['CAP_NET_RAW'],
    };
    s.process!.user = { uid: 1000, gid: 1000 };
    s.process!.noNewPrivileges = false;
  }, 'cat /proc/self/status');
  assert.equal(r.status, 0, r.err);
  // uid 1000 execs sh: effective and permitted become the ambient set; bounding and inheritable stay.
  assert.equal(statusField(r.out, 'CapBnd'), capMask(['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_RAW', 'CAP_SETPCAP']));
  assert.equal(statusField(r.out, 'CapInh'), capMask(['CAP_NET_RAW', 'CAP_KILL']));
  assert.equal(statusField(r.out, 'CapAmb'), capMask(['CAP_NET_RAW']));
  assert.equal(statusField(r.out, 'CapPrm'), capMask(['CAP_NET_RAW']));
  assert.equal(statusField(r.out, 'CapEff'), capMask(['CAP_NET_RAW']));
});

test('process.capabilities as root: effective and permitted as configured', () => {
  const caps = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_SYS_ADMIN'];
  const r = probe((s) => {
    s.process!.capabilities = { bounding: caps, effective: caps, permitted: caps };
  }, 'cat /proc/self/status');
  assert.equal(r.status, 0, r.err);
  assert.equal(statusField(r.out, 'CapEff'), capMask(caps));
  assert.equal(statusField(r.out, 'CapPrm'), capMask(caps));
  assert.equal(statusField(r.out, 'CapBnd'), capMask(caps));
  assert.equal(statusField(r.out, 'CapAmb'), capMask([]));
});

test('process.user: uid, gid, additionalGids, umask', () => {
  const r = probe((s) => {
    s.process!.user = { uid: 1234, gid: 2345, additionalGids: [10, 20, 30], umask: 0o027 };
  }, 'cat /proc/self/status; echo umask=$(umask)');
  assert.equal(r.status, 0, r.err);
  assert.equal(statusField(r.out, 'Uid'), '1234\t1234\t1234\t1234');
  assert.equal(statusField(r.out, 'Gid'), '2345\t2345\t2345\t2345');
  assert.equal(statusField(r.out, 'Groups'), '10 20 30');
  assert.match(r.out, /umask=0027/);
});

test('process.noNewPrivileges', () => {
  assert.equal(statusField(probe((s) => (s.process!.noNewPrivileges = true), 'cat /proc/self/status').out, 'NoNewPrivs'), '1');
  assert.equal(statusField(probe((s) => (s.process!.noNewPrivileges = false), 'cat /proc/self/status').out, 'NoNewPrivs'), '0');
});

test('process.rlimits', () => {
  const r = probe((s) => {
    s.process!.rlimits = [
      { type: 'RLIMIT_NOFILE', soft: 321, hard: 654 },
      { type: 'RLIMIT_NPROC', soft: 100, hard: 200 },
      { type: 'RLIMIT_CORE', soft: 0, hard: 0 },
    ];
  }, 'cat /proc/self/limits');
  assert.equal(r.status, 0, r.err);
  assert.match(r.out, /^Max open files\s+321\s+654\s+files/m);
  assert.match(r.out, /^Max processes\s+100\s+200\s+processes/m);
  assert.match(r.out, /^Max core file size\s+0\s+0\s+bytes/m);
});

test('process.env, process.cwd, process.args', () => {
  const r = probe((s) => {
    s.process!.env = ['PATH=/bin', 'FOO=bar baz'];
    s.process!.cwd = '/tmp';
  }, 'echo "FOO=$FOO"; pwd; echo "$0"');
  assert.equal(r.status, 0, r.err);
  assert.equal(r.out, 'FOO=bar baz\n/tmp\nsh\n');
});

test('process.oomScoreAdj, and a negative one clamped with a warning', () => {
  const r = probe((s) => (s.process!.oomScoreAdj = 123), 'cat /proc/self/oom_score_adj');
  assert.equal(r.out.trim(), '123');
  const own = Number(fs.readFileSync('/proc/self/oom_score_adj', 'utf8'));
  const neg = probe((s) => (s.process!.oomScoreAdj = -999), 'cat /proc/self/oom_score_adj');
  assert.equal(neg.status, 0, neg.err);
  assert.ok(Number(neg.out.trim()) >= own);
});

test('ignored signals are reset: SIGPIPE is default in the container', () => {
  // Not through sh: busybox sh as PID 1 ignores SIGQUIT itself.
  const r = probe((s) => (s.process!.args = ['grep', '-E', '^Sig(Ign|Blk)', '/proc/self/status']), '');
  assert.match(r.out, /^SigIgn:\s*0000000000000000$/m);
  assert.match(r.out, /^SigBlk:\s*0000000000000000$/m);
});

test('no runtime fd leaks into the container', () => {
  const r = probe(() => {}, 'ls /proc/self/fd');
  assert.deepEqual(r.out.trim().split(/\s+/).sort(), ['0', '1', '2', '3'], 'only stdio and ls\'s own dir fd');
});

test('hostname and domainname', () => {
  const r = probe((s) => {
    s.hostname = 'box1';
    s.domainname = 'example.org';
  }, 'hostname; cat /proc/sys/kernel/domainname');
  assert.equal(r.out, 'box1\nexample.org\n');
  assert.notEqual(execFileSync('hostname', { encoding: 'utf8' }).trim(), 'box1');
});

test('linux.sysctl', () => {
  const r = probe((s) => {
    s.linux!.sysctl = { 'net.ipv4.ip_forward': '1', 'kernel.msgmax': '4096' };
  }, 'cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax');
  assert.equal(r.status, 0, r.err);
  assert.equal(r.out, '1\n4096\n');
});

test('namespaces: new ones differ from the host; PID 1', () => {
  const r = probe(() => {}, 'echo $$; for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done');
  const [pid, ...ns] = r.out.trim().split('\n');
  assert.equal(pid, '1');
  for (const line of ns) {
    const type = line.split(':')[0] as string;
    assert.notEqual(line, fs.readlinkSync(`/proc/self/ns/${type}`), `${type} namespace is new`);
  }
});

test('namespaces: a network namespace joined by path', (t) => {
  const name = `mctest${process.pid}`;
  execFileSync('ip', ['netns', 'add', name]);
  t.after(() => execFileSync('ip', ['netns', 'del', name]));
  const r = probe((s) => {
    s.linux!.namespaces = s.linux!.namespaces!.map((x) => (x.type === 'network' ? { type: 'network', path: `/run/netns/${name}` } : x));
  }, 'readlink /proc/self/ns/net');
  const ino = fs.statSync(`/run/netns/${name}`).ino;
  assert.equal(r.out.trim(), `net:[${ino}]`);
});

test('namespaces: time namespace with offsets', () => {
  const r = probe((s) => {
    s.linux!.namespaces!.push({ type: 'time' });
    s.linux!.timeOffsets = { boottime: { secs: 86400 * 365, nanosecs: 0 } };
  }, 'cat /proc/uptime');
  assert.equal(r.status, 0, r.err);
  assert.ok(Number(r.out.split(' ')[0]) > 86400 * 365, r.out);
});

test('the host node binary cannot be written through the init\'s /proc/PID/exe', () => {
  // CVE-2019-5736: while created, the init (the host's node) is PID 1 in the
  // container. An attacker would keep an O_PATH fd on /proc/PID/exe and
  // reopen it for writing once no process runs it (ETXTBSY until then). The
  // exe must sit on a read-only mount, so that the reopen gives EROFS.
  const b = bundle(() => {}, { args: ['true'] });
  assert.equal(mc(root, ['create', '--bundle', b, 'exe1']).status, 0);
  const st = JSON.parse(mc(root, ['state', 'exe1']).stdout) as { pid: number };
  const O_PATH = 0o10000000;
  const fd = fs.openSync(`/proc/${st.pid}/exe`, O_PATH);
  try {
    // statvfs through the magic link reports the flags of the exe's mount.
    const statvfs = koffi.load('libc.so.6').func('int statvfs(const char *, void *)');
    const buf = Buffer.alloc(128);
    assert.equal(statvfs(`/proc/self/fd/${fd}`, buf), 0);
    const ST_RDONLY = 1n;
    assert.equal(buf.readBigUInt64LE(72) & ST_RDONLY, ST_RDONLY, 'the init\'s exe is on a read-only mount');
    // And the host's own node is not (the check above means something).
    assert.equal(statvfs(fs.realpathSync(process.execPath), buf), 0);
    assert.equal(buf.readBigUInt64LE(72) & ST_RDONLY, 0n);
  } finally {
    fs.closeSync(fd);
    assert.equal(mc(root, ['delete', '--force', 'exe1']).status, 0);
  }
});

test('--preserve-fds passes fds 3.. to the process, and nothing more', () => {
  const b = bundle(() => {}, { args: ['sh', '-c', 'cat <&3; cat <&4; ls /proc/self/fd | sort -n | tr "\\n" " "'] });
  const f1 = `${b}/one`;
  const f2 = `${b}/two`;
  fs.writeFileSync(f1, 'first\n');
  fs.writeFileSync(f2, 'second\n');
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const CLI = require('../helpers/bundle').CLI as string;
  const r = spawnSync('bash', ['-c', `exec 3<${f1} 4<${f2} 5</etc/hostname; ${CLI} --root ${root} run --preserve-fds 2 --bundle ${b} pfds`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^first\nsecond\n/);
  assert.match(r.stdout, /^0 1 2 3 4 5 $/m, 'fds 3 and 4 passed (5 is ls\'s own), the caller\'s fd 5 not');
});
