// Labs 05-07 (labs/NN-name/run.sh) as a reader runs them: each must open
// with what it needs and how long it takes, exit 0, print the CLAIM lines
// its README points at as held, and leave nothing behind (mounts, links,
// netns, iptables rules, cgroups, processes, temp dirs).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, mountsUnder, processesMentioning } from '../helpers/bundle';
import { CRICTL } from '../helpers/cri';

interface LabRun {
  status: number | null;
  out: string;
  err: string;
  /** The lab's temp dirs (/tmp/labNN.XXXX), from its output. */
  work: string[];
}

function runLab(dir: string): LabRun {
  const r = spawnSync('bash', [path.join(REPO, 'labs', dir, 'run.sh')], { encoding: 'utf8', timeout: 120_000, killSignal: 'SIGTERM' });
  const out = r.stdout ?? '';
  const work = [...new Set(out.match(/\/tmp\/lab0\d\.[A-Za-z0-9]{4}/g) ?? [])];
  return { status: r.status, out, err: (r.stderr ?? '') + (r.signal ? `\n(killed by ${r.signal})` : ''), work };
}

function claim(run: LabRun, name: string): void {
  const line = run.out.split('\n').find((l) => l.startsWith(`CLAIM ${name}:`));
  assert.ok(line, `no CLAIM ${name} line in:\n${run.out}\n${run.err}`);
  assert.match(line, new RegExp(`^CLAIM ${name}: held \\(`), line);
}

function checkRun(run: LabRun, lab: string, t: { skip(msg: string): void }): boolean {
  if (run.status === 2) {
    t.skip(run.err.trim());
    return false;
  }
  const [title, needs, takes] = run.out.split('\n');
  assert.match(title ?? '', new RegExp(`^== Lab ${lab}: `));
  assert.match(needs ?? '', /^Needs: root; /);
  assert.match(takes ?? '', /^Takes: about \d+ seconds$/);
  assert.equal(run.status, 0, `lab ${lab} failed:\n${run.out}\n${run.err}`);
  assert.doesNotMatch(run.out, /CLAIM [\w-]+: FAILED/);
  assert.match(run.out, new RegExp(`^lab ${lab}: all \\d+ claims held$`, 'm'));
  return true;
}

/** What any lab must not leave: its temp dirs, mounts under them, processes using them. */
function assertNoLeftovers(run: LabRun): void {
  assert.ok(run.work.length > 0, 'the lab printed no temp dir');
  for (const w of run.work) {
    assert.deepEqual(mountsUnder(w), [], `mounts left under ${w}`);
    assert.equal(fs.existsSync(w), false, `${w} left behind`);
    assert.deepEqual(processesMentioning(w), [], `processes left using ${w}`);
  }
}

const sh = (cmd: string): string => spawnSync('sh', ['-c', cmd], { encoding: 'utf8' }).stdout ?? '';
const linkExists = (name: string): boolean => spawnSync('ip', ['link', 'show', name], { stdio: 'ignore' }).status === 0;
const tools = (list: string[]): string | false => {
  if (process.getuid?.() !== 0) return 'needs root';
  const missing = list.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }).status !== 0);
  return missing.length > 0 ? `needs ${missing.join(', ')}` : false;
};

test('lab 05: whiteouts and opaque dirs, by hand and in a container', { skip: tools(['setfattr', 'umoci', 'skopeo', 'docker-registry', 'busybox']), timeout: 150_000 }, (t) => {
  const run = runLab('05-layers');
  if (!checkRun(run, '05', t)) return;
  claim(run, 'whiteout-hides-file');
  claim(run, 'opaque-hides-lower-dir');
  claim(run, 'delete-makes-whiteout');
  claim(run, 'same-view-in-container');
  claim(run, 'container-root-is-overlay');
  claim(run, 'store-converted-whiteouts');
  // what the lesson points at: the raw tar entries, and the overlay line of the container's root
  assert.match(run.out, /lab\/\.wh\.gone\.txt$/m);
  assert.match(run.out, /lab\/cfg\/\.wh\.\.wh\.\.opq$/m);
  assert.match(run.out, /^\d+ \d+ \d+:\d+ \/ \/ \S+ .*- overlay overlay \S*lowerdir=/m);
  assertNoLeftovers(run);
});

test('lab 06: veth, bridge and NAT by hand, then by CNI', { skip: tools(['ip', 'iptables', 'umoci', 'jq', 'wget', 'busybox']) || (!fs.existsSync('/usr/lib/cni/bridge') && 'needs the CNI plugins'), timeout: 150_000 }, (t) => {
  const forward = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
  const run = runLab('06-network');
  if (!checkRun(run, '06', t)) return;
  claim(run, 'netns-pings-bridge');
  claim(run, 'hand-nat-forward-answers');
  claim(run, 'hand-made-removed');
  claim(run, 'cni-veth-on-bridge');
  claim(run, 'cni-nat-rules');
  claim(run, 'cni-port-answers');
  claim(run, 'cni-rules-removed');
  assertNoLeftovers(run);
  assert.equal(sh('ip netns list').includes('lab06'), false, 'netns lab06 left');
  assert.equal(linkExists('lab06br') || linkExists('lab06h'), false, 'a lab06 link left');
  assert.equal(sh('iptables-save').includes('lab06'), false, 'a lab06 iptables rule left');
  // CNI's rules carry the container id in their comments
  const id = /^\+ mc run -d .*\n([0-9a-f]{64})$/m.exec(run.out)?.[1];
  assert.ok(id, 'no container id in the output');
  assert.equal(sh('iptables-save').includes(id), false, `nat rules of container ${id} left`);
  assert.equal(fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), forward, 'ip_forward not restored');
});

test('lab 07: a pod of two containers sharing one network namespace, through crictl', { skip: tools(['ip', 'umoci', 'busybox']) || (!fs.existsSync(CRICTL) && spawnSync('sh', ['-c', 'command -v crictl'], { stdio: 'ignore' }).status !== 0 && `needs crictl (on PATH or ${CRICTL})`), timeout: 150_000 }, (t) => {
  const run = runLab('07-pod');
  if (!checkRun(run, '07', t)) return;
  claim(run, 'pod-localhost-reaches-sibling');
  claim(run, 'pod-shares-net-ns');
  claim(run, 'pod-separate-pid-mnt-ns');
  claim(run, 'pod-not-host-net');
  claim(run, 'pod-removed');
  // the table the lesson reads: one net inode on three rows
  const rows = run.out.split('\n').filter((l) => /^(pause|web|client) +\d+ +\d+/.test(l)).map((l) => l.trim().split(/ +/));
  assert.equal(rows.length, 3, run.out);
  assert.equal(new Set(rows.map((r) => r[2])).size, 1, 'net inodes differ');
  assertNoLeftovers(run);
  assert.equal(linkExists('lab07br'), false, 'bridge lab07br left');
  assert.equal(sh('find /sys/fs/cgroup -type d -path "*mycontainer-lab07*"').trim(), '', 'pod cgroups left');
});
