// `mycontainer kube server` with no --container-runtime-endpoint, as
// `k3s server` with its own containerd: it runs our CRI server in its own
// process on DATA_DIR/agent/cri.sock, writes a bridge pod network from
// --cluster-cidr when the CNI conf dir is empty, puts pods under
// CGROUP_ROOT/kubepods, and a restart of the server leaves the pods
// running. The store is a test engine's (its images loaded); startCri's
// cleanup takes down whatever a failure leaves.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { CRICTL, crictlMissing, startCri, type Cri } from '../helpers/cri';
import { FRONTEND } from '../helpers/bundle';
import { engineMissing } from '../helpers/engine';
import { KUBECTL, kubectl, kubectlMissing, startKube, until as poll, type KubeServerProcess } from '../helpers/kube';

const skip = crictlMissing() ?? engineMissing() ?? kubectlMissing('1.33');
let cri: Cri;
let k: KubeServerProcess | null = null;
const subnet = `10.125.${process.pid % 200}`;
let args: string[] = [];

/** Waits as the helper does, with the server's log in the failure. */
const until = <T>(what: string, fn: () => T | undefined, ms = 60000): Promise<T> => poll(what, fn, ms, () => k?.log().slice(-3000) ?? '');

before(async () => {
  if (skip) return;
  // the helper's store and cleanup; its own server stops: the kube server runs one
  cri = startCri('kube-own');
  cri.stop();
  args = ['--root', cri.engine.root, '--runroot', cri.engine.runroot, '--cluster-cidr', `${subnet}.0/24`, '--cgroup-root', cri.engine.cgroupParent, '--pod-log-dir', path.join(cri.work, 'pod-logs')];
  k = await startKube(undefined, 0, args, { ownRuntime: true });
});

after(async () => {
  if (skip) return;
  if (k) {
    kubectl('1.33', k, ['delete', 'pods', '--all', '--grace-period=0', '--force']);
    await k.stop();
  }
  cri?.cleanup();
  if (k) fs.rmSync(k.dataDir, { recursive: true, force: true });
});

interface PodView { status: { phase: string; podIP?: string; containerStatuses?: { containerID: string; restartCount: number }[] } }

test('own runtime: a pod runs on the CRI server the kube server started, on its bridge network and cgroup root; crictl sees it; a restart keeps it running', { skip }, async () => {
  const kv = k as KubeServerProcess;
  const kc = (a: string[], input?: string): ReturnType<typeof kubectl> => kubectl('1.33', kv, a, input);
  await until('the node Ready', () => (/\sReady\s/.test(kc(['get', 'nodes']).stdout) ? true : undefined), 30000);
  const r = kc(['apply', '-f', '-'], `apiVersion: v1
kind: Pod
metadata: {name: own}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: localhost/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo started; exec sleep 31337"]
`);
  assert.equal(r.status, 0, r.stderr);
  const pod = (): PodView => JSON.parse(kc(['get', 'pod', 'own', '-o', 'json']).stdout) as PodView;
  const running = await until('own Running', () => (pod().status.phase === 'Running' ? pod() : undefined));
  // an address of the pod network written from --cluster-cidr, on the bridge named after the server
  assert.ok(running.status.podIP?.startsWith(`${subnet}.`), `pod IP ${String(running.status.podIP)} not in ${subnet}.0/24`);
  const conf = path.join(kv.dataDir, 'agent', 'etc', 'cni', 'net.d', '10-mycontainer-kube.conflist');
  const bridge = (JSON.parse(fs.readFileSync(conf, 'utf8')) as { plugins: { bridge?: string }[] }).plugins[0]?.bridge as string;
  assert.match(spawnSync('ip', ['-4', 'addr', 'show', bridge], { encoding: 'utf8' }).stdout, new RegExp(`inet ${subnet.replace(/\./g, '\\.')}\\.1/24`));
  // inside: the cgroup is under CGROUP_ROOT/kubepods
  const cg = kc(['exec', 'own', '--', 'cat', '/proc/self/cgroup']);
  assert.equal(cg.status, 0, cg.stderr);
  assert.ok(cg.stdout.includes(`${cri.engine.cgroupParent}/kubepods`), cg.stdout);
  assert.match(kc(['logs', 'own']).stdout, /^started$/m);
  // crictl on the socket the server made
  const socket = `unix://${path.join(kv.dataDir, 'agent', 'cri.sock')}`;
  const pods = spawnSync(CRICTL, ['--runtime-endpoint', socket, 'pods', '--name', 'own', '-q'], { encoding: 'utf8' });
  assert.equal(pods.stdout.trim().split('\n').filter(Boolean).length, 1, pods.stderr);

  // The server stops: the pod's process goes on; it starts again and takes the pod back as it was.
  const id = running.status.containerStatuses?.[0]?.containerID;
  await kv.stop();
  assert.equal(spawnSync('pgrep', ['-f', 'sleep 31337']).status, 0, 'the container kept running while the server was down');
  k = await startKube(kv.dataDir, kv.port, args, { ownRuntime: true });
  const again = await until('own Running after the restart', () => {
    const p = pod();
    return p.status.phase === 'Running' && p.status.containerStatuses?.[0]?.containerID ? p : undefined;
  });
  assert.equal(again.status.containerStatuses?.[0]?.containerID, id);
  assert.equal(again.status.containerStatuses?.[0]?.restartCount, 0);
  assert.equal(kubectl('1.33', k, ['delete', 'pod', 'own']).status, 0);
  await until('own gone', () => (spawnSync('pgrep', ['-f', 'sleep 31337']).status !== 0 ? true : undefined), 30000);
});

test('kubectl logs -f follows as lines are written and ends when the pod goes; exec -it gets a terminal', { skip }, async () => {
  const kv = k as KubeServerProcess;
  const kc = (a: string[], input?: string): ReturnType<typeof kubectl> => kubectl('1.33', kv, a, input);
  assert.equal(kc(['apply', '-f', '-'], `apiVersion: v1
kind: Pod
metadata: {name: ticker}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: localhost/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done"]
`).status, 0);
  await until('ticker Running', () => (/"phase":\s*"Running"/.test(kc(['get', 'pod', 'ticker', '-o', 'json']).stdout) ? true : undefined));
  const f = spawn(KUBECTL['1.33'] as string, ['--kubeconfig', kv.kubeconfig, 'logs', '-f', 'ticker']);
  let out = '';
  f.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const ended = new Promise<number | null>((r) => f.on('exit', (c) => r(c)));
  try {
    // lines written after kubectl started reach it
    const seen = (): number => Math.max(0, ...[...out.matchAll(/^tick (\d+)$/gm)].map((m) => Number(m[1])));
    const first = await until('a first tick', () => (seen() > 0 ? seen() : undefined), 20000);
    await until('three more ticks', () => (seen() >= first + 3 ? true : undefined), 20000);
    // a terminal through exec -it (script(1) gives kubectl one)
    const tty = spawnSync('script', ['-qec', `${KUBECTL['1.33'] as string} --kubeconfig ${kv.kubeconfig} exec -it ticker -- sh -c '[ -t 0 ] && [ -t 1 ] && echo both-terminals \$(tty); sleep 0.5'`, '/dev/null'], { encoding: 'utf8', timeout: 30000, stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(tty.status, 0, tty.stderr);
    assert.match(tty.stdout, /both-terminals \/dev\/pts\/\d+/);
    assert.equal(kc(['delete', 'pod', 'ticker']).status, 0);
    // -f ends once the pod is gone, as with kubelet
    const code = await Promise.race([ended, new Promise<string>((r) => setTimeout(() => r('still running'), 20000))]);
    assert.equal(code, 0);
  } finally {
    f.kill();
  }
});

test('a restarting container of a pod leaves the ConfigMap volume of its running neighbour as it was', { skip }, async () => {
  const kv = k as KubeServerProcess;
  const kc = (a: string[], input?: string): ReturnType<typeof kubectl> => kubectl('1.33', kv, a, input);
  assert.equal(kc(['apply', '-f', '-'], `apiVersion: v1
kind: ConfigMap
metadata: {name: shared}
data: {greeting: hello-volume}
---
apiVersion: v1
kind: Pod
metadata: {name: neighbours}
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{name: cfg, configMap: {name: shared}}]
  containers:
  - name: reader
    image: localhost/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sleep", "1000"]
    volumeMounts: [{name: cfg, mountPath: /cfg}]
  - name: crasher
    image: localhost/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "exit 1"]
`).status, 0);
  // each start of the crasher prepares the pod's volumes again
  await until('the crasher restarted', () => {
    const p = JSON.parse(kc(['get', 'pod', 'neighbours', '-o', 'json']).stdout || '{}') as { status?: { containerStatuses?: { name: string; restartCount: number }[] } };
    return (p.status?.containerStatuses?.find((c) => c.name === 'crasher')?.restartCount ?? 0) >= 2 ? true : undefined;
  });
  const r = kc(['exec', 'neighbours', '-c', 'reader', '--', 'cat', '/cfg/greeting']);
  assert.equal(r.stdout, 'hello-volume', r.stderr);
  assert.equal(kc(['delete', 'pod', 'neighbours']).status, 0);
  assert.equal(kc(['delete', 'configmap', 'shared']).status, 0);
});

test('a bad --cluster-cidr is refused before anything is made', { skip }, () => {
  const dir = path.join(cri.work, 'never-made');
  const r = spawnSync(process.execPath, [FRONTEND, 'kube', 'server', '--data-dir', dir, '--cluster-cidr', '10.42.0.0/33'], { encoding: 'utf8', timeout: 30000 });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--cluster-cidr "10\.42\.0\.0\/33": want a\.b\.c\.d\/8\.\.30/);
  assert.equal(fs.existsSync(dir), false);
});
