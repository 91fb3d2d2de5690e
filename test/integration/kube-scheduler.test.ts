// The scheduler and the node lifecycle controller, driven by the real
// kubectl against a server with no node agent: the nodes are Node objects
// made with kubectl, whose status the test posts as an agent would
// (`kubectl patch --subresource=status`). Requests against allocatable,
// nodeSelector, cordon, a node that never posts status tainted
// unreachable (and a pod that tolerates it), kube-scheduler's
// FailedScheduling message, a retry when resources free up, and a second
// binding refused with 409.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { KUBECTL, kubectl, kubectlMissing, startKube, until as poll, type KubeServerProcess } from '../helpers/kube';

const until = <T>(what: string, fn: () => T | undefined, ms = 30000): Promise<T> => poll(what, fn, ms);

const skip = kubectlMissing('1.33');
let k: KubeServerProcess;
let beating: NodeJS.Timeout | null = null;
const GRACE_S = 10; // the live nodes beat every 1.5 s: well inside it, even under CI's load

const kc = (args: string[], input?: string): ReturnType<typeof kubectl> => kubectl('1.33', k, args, input);

/** Posts NAME's status as its agent would: Ready, with a fresh heartbeat and its allocatable. */
async function beat(name: string, cpu: string, memory: string): Promise<void> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const status = { capacity: { cpu, memory, pods: '110' }, allocatable: { cpu, memory, pods: '110' }, conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'test agent', lastHeartbeatTime: now, lastTransitionTime: now }] };
  await promisify(execFile)(KUBECTL['1.33'] as string, ['--kubeconfig', k.kubeconfig, 'patch', 'node', name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
}

before(async () => {
  if (skip) return;
  k = await startKube(undefined, 0, ['--node-monitor-grace-period', `${GRACE_S}s`]);
  const node = (name: string, labels: string): string => `apiVersion: v1\nkind: Node\nmetadata: {name: ${name}, labels: {${labels}}}\n---\n`;
  const r = kc(['apply', '-f', '-'], node('big', 'disktype: ssd, kubernetes.io/hostname: big') + node('small', 'kubernetes.io/hostname: small') + node('ghost', 'kubernetes.io/hostname: ghost'));
  assert.equal(r.status, 0, r.stderr);
  const beatAll = async (): Promise<void> => {
    await Promise.all([beat('big', '4', '8Gi'), beat('small', '1', '1Gi')]).catch(() => undefined);
  };
  await beatAll();
  // ghost posts its status once, then falls silent
  await beat('ghost', '8', '16Gi');
  beating = setInterval(() => void beatAll(), 1500);
});

after(async () => {
  if (beating) clearInterval(beating);
  if (skip) return;
  await k?.stop();
  if (k) fs.rmSync(k.dataDir, { recursive: true, force: true });
});

interface PodView { spec: { nodeName?: string }; status?: { phase?: string; conditions?: { type: string; status: string; reason?: string; message?: string }[] } }
const pod = (name: string): PodView => JSON.parse(kc(['get', 'pod', name, '-o', 'json']).stdout) as PodView;
const nodeOf = (name: string): Promise<string> => until(`${name} bound`, () => pod(name).spec.nodeName);
const unschedulable = (name: string, re: RegExp): Promise<string> => until(`${name} unschedulable with ${re}`, () => {
  const c = pod(name).status?.conditions?.find((x) => x.type === 'PodScheduled');
  return c?.status === 'False' && c.reason === 'Unschedulable' && re.test(c.message ?? '') ? c.message : undefined;
});

const manifest = (name: string, o: { cpu?: string; selector?: Record<string, string>; tolerate?: string }): string => `apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  containers:
  - name: main
    image: localhost/busybox:latest${o.cpu ? `\n    resources: {requests: {cpu: "${o.cpu}"}}` : ''}${o.selector ? `\n  nodeSelector: ${JSON.stringify(o.selector)}` : ''}${o.tolerate ? `\n  tolerations: [{key: ${o.tolerate}, operator: Exists, effect: NoSchedule}]` : ''}
`;

test('a node that never posts status turns NotReady and is tainted unreachable; only a pod that tolerates it goes there', { skip }, async () => {
  const taints = await until('ghost tainted', () => {
    const n = JSON.parse(kc(['get', 'node', 'ghost', '-o', 'json']).stdout) as { spec?: { taints?: { key: string; effect: string }[] } };
    return n.spec?.taints?.length ? n.spec.taints : undefined;
  }, GRACE_S * 1000 + 15000);
  assert.deepEqual(taints, [{ key: 'node.kubernetes.io/unreachable', effect: 'NoSchedule' }]);
  const ready = (JSON.parse(kc(['get', 'node', 'ghost', '-o', 'json']).stdout) as { status: { conditions: { type: string; status: string; message: string }[] } }).status.conditions.find((c) => c.type === 'Ready');
  assert.equal(ready?.status, 'Unknown');
  assert.equal(ready?.message, 'Kubelet stopped posting node status.');
  assert.match(kc(['get', 'nodes']).stdout, /^ghost\s+NotReady\s/m);
  // The live nodes, beaten every 1.5 s, stay Ready and untainted.
  assert.match(kc(['get', 'nodes']).stdout, /^big\s+Ready\s/m);

  assert.equal(kc(['apply', '-f', '-'], manifest('to-ghost', { selector: { 'kubernetes.io/hostname': 'ghost' } })).status, 0);
  const msg = await unschedulable('to-ghost', /untolerated taint/);
  assert.equal(msg, "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 2 node(s) didn't match Pod's node affinity/selector.");
  // kubectl describe shows the scheduler's event
  assert.match(kc(['describe', 'pod', 'to-ghost']).stdout, /Warning\s+FailedScheduling\s+.*default-scheduler\s+0\/3 nodes are available/);
  assert.equal(kc(['apply', '-f', '-'], manifest('tolerant', { selector: { 'kubernetes.io/hostname': 'ghost' }, tolerate: 'node.kubernetes.io/unreachable' })).status, 0);
  assert.equal(await nodeOf('tolerant'), 'ghost');
  assert.equal(pod('to-ghost').spec.nodeName, undefined);
  kc(['delete', 'pod', 'to-ghost', 'tolerant', '--grace-period=0', '--force']);
});

test('requests against allocatable, nodeSelector, cordon; a pod that fits nowhere waits and is placed when room is made', { skip }, async () => {
  // 2 cores fit only on big (4); a nodeSelector picks big too.
  assert.equal(kc(['apply', '-f', '-'], manifest('two-cores', { cpu: '2' })).status, 0);
  assert.equal(await nodeOf('two-cores'), 'big');
  assert.equal(kc(['apply', '-f', '-'], manifest('ssd', { selector: { disktype: 'ssd' }, cpu: '100m' })).status, 0);
  assert.equal(await nodeOf('ssd'), 'big');
  // With no requests, the least requested node wins: small (nothing placed there).
  assert.equal(kc(['apply', '-f', '-'], manifest('light', {})).status, 0);
  assert.equal(await nodeOf('light'), 'small');

  // 3 cores: big has 4 - 2.1 left, small has 1.
  assert.equal(kc(['apply', '-f', '-'], manifest('three-cores', { cpu: '3' })).status, 0);
  const msg = await unschedulable('three-cores', /Insufficient cpu/);
  assert.match(msg, /^0\/3 nodes are available: 1 node\(s\) had untolerated taint \{node\.kubernetes\.io\/unreachable: \}, 2 Insufficient cpu\.$/);
  assert.equal(pod('three-cores').status?.phase, 'Pending');
  assert.match(kc(['get', 'events', '--field-selector', 'involvedObject.name=three-cores']).stdout, /FailedScheduling/);
  // Room made on big: the waiting pod goes there.
  assert.equal(kc(['delete', 'pod', 'two-cores', '--grace-period=0', '--force']).status, 0);
  assert.equal(await nodeOf('three-cores'), 'big');

  // kubectl cordon: no new pods on small.
  assert.equal(kc(['cordon', 'small']).status, 0);
  assert.match(kc(['get', 'nodes']).stdout, /^small\s+Ready,SchedulingDisabled\s/m);
  assert.equal(kc(['apply', '-f', '-'], manifest('on-small', { selector: { 'kubernetes.io/hostname': 'small' } })).status, 0);
  await unschedulable('on-small', /1 node\(s\) were unschedulable/);
  assert.equal(kc(['uncordon', 'small']).status, 0);
  assert.equal(await nodeOf('on-small'), 'small');
  kc(['delete', 'pod', '--all', '--grace-period=0', '--force']);
});

test('pods/binding: the scheduler\'s write; a second binding is a 409 and an unknown pod a 404', { skip }, () => {
  assert.equal(kc(['apply', '-f', '-'], manifest('bound', { selector: { disktype: 'none' } })).status, 0);
  const binding = (node: string): string => JSON.stringify({ apiVersion: 'v1', kind: 'Binding', metadata: { name: 'bound' }, target: { apiVersion: 'v1', kind: 'Node', name: node } });
  let r = kc(['create', '--raw', '/api/v1/namespaces/default/pods/bound/binding', '-f', '-'], binding('small'));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(pod('bound').spec.nodeName, 'small');
  r = kc(['create', '--raw', '/api/v1/namespaces/default/pods/bound/binding', '-f', '-'], binding('big'));
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /Conflict|already assigned to node "small"/);
  r = kc(['create', '--raw', '/api/v1/namespaces/default/pods/nope/binding', '-f', '-'], binding('big'));
  assert.match(r.stderr, /NotFound|not found/);
  kc(['delete', 'pod', 'bound', '--grace-period=0', '--force']);
});
