// The orchestrator's API server driven by the real kubectl, old and new
// (1.20, 1.27, 1.33): discovery, server-side tables, apply, label, scale,
// watch, strict field validation, resourceVersion conflicts, 401 without a
// client certificate, and a restart that loses nothing. No pods run yet:
// the node agent is a later step.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { KUBECTL, kubectl, kubectlMissing, startKube, type KubeServerProcess } from '../helpers/kube';

const servers: KubeServerProcess[] = [];
after(async () => {
  for (const s of servers) await s.stop();
  for (const s of servers) fs.rmSync(s.dataDir, { recursive: true, force: true });
});

let shared: KubeServerProcess | null = null;
async function server(): Promise<KubeServerProcess> {
  if (!shared) servers.push((shared = await startKube()));
  return shared;
}

const POD = (name: string, extra = ''): string => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  labels: {app: web}
spec:
  containers:
  - name: web
    image: localhost/nginx:1
    ports: [{containerPort: 80}]${extra}
`;

for (const v of ['1.20', '1.27', '1.33']) {
  test(`kubectl ${v}: discovery, apply, get (server-side table), label, get -o json, delete`, { skip: kubectlMissing(v) }, async () => {
    const k = await server();
    const ns = `v${v.replace('.', '-')}`;
    const made = kubectl(v, k, ['apply', '-f', '-'], `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}\n`);
    assert.equal(made.status, 0, made.stderr);
    const nss = kubectl(v, k, ['get', 'namespaces']);
    assert.match(nss.stdout, /^NAME\s+STATUS\s+AGE$/m);
    for (const n of ['default', 'kube-system', ns]) assert.match(nss.stdout, new RegExp(`^${n}\\s+Active\\s+\\d+s$`, 'm'));
    const a1 = kubectl(v, k, ['-n', ns, 'apply', '-f', '-'], POD('web'));
    assert.equal(a1.status, 0, a1.stderr);
    assert.match(a1.stdout, /pod\/web created/);
    assert.match(kubectl(v, k, ['-n', ns, 'apply', '-f', '-'], POD('web')).stdout, /pod\/web unchanged/);
    const wide = kubectl(v, k, ['-n', ns, 'get', 'pods', '-o', 'wide']);
    assert.match(wide.stdout, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES$/m, 'the server\'s columns, -o wide ones too');
    assert.match(wide.stdout, /^web\s+0\/1\s+Pending\s+0\s+\d+s\s+<none>\s+<none>/m);
    assert.equal(kubectl(v, k, ['-n', ns, 'label', 'pod', 'web', 'tier=front']).status, 0);
    const json = JSON.parse(kubectl(v, k, ['-n', ns, 'get', 'pod', 'web', '-o', 'json']).stdout) as { metadata: { labels: Record<string, string>; uid: string; resourceVersion: string }; spec: { restartPolicy: string } };
    assert.deepEqual(json.metadata.labels, { app: 'web', tier: 'front' });
    assert.match(json.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.equal(json.spec.restartPolicy, 'Always', 'defaulted by the server');
    assert.match(kubectl(v, k, ['-n', ns, 'get', 'pods', '-l', 'tier=front', '-o', 'name']).stdout, /^pod\/web$/m);
    assert.equal(kubectl(v, k, ['-n', ns, 'get', 'pods', '-l', 'tier=back', '-o', 'name']).stdout, '');
    // --all-namespaces: kubectl asks the cluster-wide list and adds the NAMESPACE column
    assert.match(kubectl(v, k, ['get', 'pods', '--all-namespaces']).stdout, new RegExp(`^NAMESPACE\\s+NAME\\s+READY[^\\n]*\\n(?:.*\\n)*${ns}\\s+web\\s+0/1\\s+Pending`, 'm'));
    assert.match(kubectl(v, k, ['-n', ns, 'delete', 'pod', 'web']).stdout, /pod "web" deleted/);
    assert.match(kubectl(v, k, ['-n', ns, 'get', 'pod', 'web']).stderr, /pods "web" not found/);
    assert.equal(kubectl(v, k, ['delete', 'namespace', ns]).status, 0);
  });
}

test('bad manifests get kubectl\'s messages and nothing is stored', { skip: kubectlMissing('1.33') }, async () => {
  const k = await server();
  const typo = kubectl('1.33', k, ['apply', '-f', '-'], POD('typo').replace('image:', 'imag:'));
  assert.notEqual(typo.status, 0);
  assert.match(typo.stderr, /strict decoding error: unknown field "spec\.containers\[0\]\.imag"/);
  const missing = kubectl('1.33', k, ['apply', '-f', '-'], 'apiVersion: v1\nkind: Pod\nmetadata: {name: nocontainers}\nspec: {}\n');
  assert.match(missing.stderr, /Pod "nocontainers" is invalid: spec\.containers: Required value/);
  const kind = kubectl('1.33', k, ['apply', '-f', '-'], 'apiVersion: v1\nkind: Pid\nmetadata: {name: x}\n');
  assert.match(kind.stderr, /no matches for kind "Pid" in version "v1"/);
  const replicas = kubectl('1.33', k, ['apply', '-f', '-'], 'apiVersion: v1\nkind: ReplicationController\nmetadata: {name: r}\nspec:\n  replicas: three\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: x}]}\n');
  assert.notEqual(replicas.status, 0);
  for (const name of ['typo', 'nocontainers']) assert.match(kubectl('1.33', k, ['get', 'pod', name]).stderr, /not found/);
  assert.match(kubectl('1.33', k, ['get', 'rc', 'r']).stderr, /not found/);
});

test('Deployment revisions: rollout undo takes the old ReplicaSet back; revisionHistoryLimit keeps that many old ones', { skip: kubectlMissing('1.33') }, async () => {
  const k = await server();
  const kc = (a: string[]): ReturnType<typeof kubectl> => kubectl('1.33', k, a);
  // applied from a manifest, so the template is stored with the API's defaults filled in
  assert.equal(kubectl('1.33', k, ['apply', '-f', '-'], 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: revs}\nspec:\n  revisionHistoryLimit: 1\n  selector: {matchLabels: {app: revs}}\n  template:\n    metadata: {labels: {app: revs}}\n    spec: {containers: [{name: c, image: "localhost/busybox:1"}]}\n').status, 0);
  type Rs = { items: { metadata: { name: string; annotations: Record<string, string> }; spec: { template: { spec: { containers: { image: string }[] } } } }[] };
  const sets = async (n: number): Promise<Rs['items']> => {
    const deadline = Date.now() + 20000;
    for (;;) {
      const items = (JSON.parse(kc(['get', 'rs', '-l', 'app=revs', '-o', 'json']).stdout) as Rs).items;
      if (items.length === n || Date.now() > deadline) return items;
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const image = (rs: Rs['items'][number]): string => rs.spec.template.spec.containers[0]?.image ?? '';
  const rev = (rs: Rs['items'][number]): string => rs.metadata.annotations['deployment.kubernetes.io/revision'] ?? '';
  assert.equal((await sets(1)).length, 1);
  assert.equal(kc(['set', 'image', 'deployment/revs', 'c=localhost/busybox:2']).status, 0);
  const two = await sets(2);
  assert.equal(two.length, 2);
  const first = two.find((rs) => image(rs) === 'localhost/busybox:1');
  // undo: the first ReplicaSet is the newest revision again, and no third one is made
  assert.match(kc(['rollout', 'undo', 'deployment/revs']).stdout, /rolled back/);
  await new Promise((r) => setTimeout(r, 1000));
  const back = await sets(2);
  assert.equal(back.length, 2, back.map((rs) => rs.metadata.name).join(' '));
  const again = back.find((rs) => rs.metadata.name === first?.metadata.name);
  assert.equal(again ? rev(again) : '', '3');
  // a third template: with revisionHistoryLimit 1, only the newest old set stays beside the current one
  assert.equal(kc(['set', 'image', 'deployment/revs', 'c=localhost/busybox:3']).status, 0);
  await new Promise((r) => setTimeout(r, 1500));
  const left = await sets(2);
  assert.deepEqual(left.map(image).sort(), ['localhost/busybox:1', 'localhost/busybox:3']);
  assert.match(kc(['rollout', 'history', 'deployment/revs']).stdout, /^3\s+<none>\n4\s+<none>/m);
  assert.equal(kc(['delete', 'deployment', 'revs']).status, 0);
});

test('scale, old extensions/v1beta1 Deployments, and 409 on a stale resourceVersion', { skip: kubectlMissing('1.33') }, async () => {
  const k = await server();
  const rc = 'apiVersion: v1\nkind: ReplicationController\nmetadata: {name: redis}\nspec:\n  replicas: 1\n  template:\n    metadata: {labels: {app: redis}}\n    spec: {containers: [{name: redis, image: localhost/redis:1}]}\n---\n'
    + 'apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: old}\nspec:\n  replicas: 2\n  template:\n    metadata: {labels: {app: old}}\n    spec: {containers: [{name: c, image: localhost/busybox:1}]}\n';
  assert.equal(kubectl('1.33', k, ['apply', '-f', '-'], rc).status, 0);
  assert.match(kubectl('1.33', k, ['scale', 'rc', 'redis', '--replicas=3']).stdout, /scaled/);
  assert.match(kubectl('1.33', k, ['get', 'rc', 'redis']).stdout, /^redis\s+3\s+\d\s+0\s+/m);
  const sel = JSON.parse(kubectl('1.33', k, ['get', 'rc', 'redis', '-o', 'json']).stdout) as { spec: { selector: Record<string, string> } };
  assert.deepEqual(sel.spec.selector, { app: 'redis' }, 'the selector defaults to the template\'s labels');
  const d = JSON.parse(kubectl('1.33', k, ['get', 'deployment', 'old', '-o', 'json']).stdout) as { apiVersion: string; spec: { replicas: number } };
  assert.equal(d.apiVersion, 'apps/v1', 'the extensions/v1beta1 object, read as apps/v1');
  assert.equal(d.spec.replicas, 2);
  // replace with an old resourceVersion: someone else wrote in between.
  const old = kubectl('1.33', k, ['get', 'rc', 'redis', '-o', 'json']).stdout;
  assert.equal(kubectl('1.33', k, ['label', 'rc', 'redis', 'changed=yes']).status, 0);
  const stale = kubectl('1.33', k, ['replace', '-f', '-'], old);
  assert.notEqual(stale.status, 0);
  assert.match(stale.stderr, /Operation cannot be fulfilled on replicationcontrollers "redis": the object has been modified/);
  kubectl('1.33', k, ['delete', 'rc', 'redis']);
  kubectl('1.33', k, ['delete', 'deployment', 'old']);
});

test('kubectl edit: the change the editor made is stored; an invalid one is refused and nothing changes', { skip: kubectlMissing('1.33') }, async () => {
  const k = await server();
  assert.equal(kubectl('1.33', k, ['create', 'configmap', 'edited', '--from-literal=colour=blue']).status, 0);
  // kubectl runs an EDITOR with spaces through the shell, on the object as YAML
  const edit = (editor: string): ReturnType<typeof spawnSync> => spawnSync(KUBECTL['1.33'] as string, ['--kubeconfig', k.kubeconfig, 'edit', 'configmap', 'edited'], { encoding: 'utf8', env: { ...process.env, EDITOR: editor } });
  let r = edit('sed -i s/blue/green/');
  assert.equal(r.status, 0, String(r.stderr));
  assert.match(String(r.stdout), /configmap\/edited edited/);
  assert.equal(kubectl('1.33', k, ['get', 'configmap', 'edited', '-o', 'jsonpath={.data.colour}']).stdout, 'green');
  r = edit('sed -i s/^data:/dta:/');
  assert.notEqual(r.status, 0);
  assert.match(String(r.stderr), /unknown field "dta"/);
  assert.equal(kubectl('1.33', k, ['get', 'configmap', 'edited', '-o', 'jsonpath={.data.colour}']).stdout, 'green');
  assert.equal(kubectl('1.33', k, ['delete', 'configmap', 'edited']).status, 0);
});

test('get -w prints the changes as they happen', { skip: kubectlMissing('1.33') }, async () => {
  const k = await server();
  const w = spawn(KUBECTL['1.33'] as string, ['--kubeconfig', k.kubeconfig, 'get', 'pods', '-w', '-n', 'default']);
  let out = '';
  w.stdout.on('data', (d: Buffer) => (out += d.toString()));
  try {
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(kubectl('1.33', k, ['apply', '-f', '-'], POD('watched')).status, 0);
    const deadline = Date.now() + 10000;
    while (!/watched\s+0\/1\s+Pending/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, /watched\s+0\/1\s+Pending/);
  } finally {
    w.kill();
    kubectl('1.33', k, ['delete', 'pod', 'watched']);
  }
});

test('a request without a client certificate of the cluster CA gets 401', async () => {
  const k = await server();
  const ca = fs.readFileSync(path.join(k.dataDir, 'tls', 'ca.crt'));
  const r = await new Promise<{ code: number; body: string }>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port: k.port, path: '/api/v1/namespaces/default/pods', ca }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ code: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
  assert.equal(r.code, 401);
  assert.equal((JSON.parse(r.body) as { reason: string }).reason, 'Unauthorized');
  if (!kubectlMissing('1.33')) {
    const cfg = JSON.parse(fs.readFileSync(k.kubeconfig, 'utf8')) as { users: { user: Record<string, string> }[] };
    cfg.users[0]!.user = { token: 'not-a-credential' }; // no client certificate (an empty user would make kubectl prompt)
    const anon = path.join(k.dataDir, 'anonymous.kubeconfig');
    fs.writeFileSync(anon, JSON.stringify(cfg));
    const res = kubectl('1.33', { kubeconfig: anon }, ['get', 'pods']);
    assert.notEqual(res.status, 0);
    assert.match(res.stderr, /Unauthorized/);
  }
});

test('restarting the server loses nothing: the same objects, uids and resourceVersions', { skip: kubectlMissing('1.33') }, async () => {
  const k = await startKube();
  servers.push(k);
  assert.equal(kubectl('1.33', k, ['apply', '-f', '-'], POD('kept')).status, 0);
  const before = kubectl('1.33', k, ['get', 'pod', 'kept', '-o', 'json']).stdout;
  await k.stop();
  const again = await startKube(k.dataDir, k.port);
  servers.push(again);
  assert.equal(kubectl('1.33', again, ['get', 'pod', 'kept', '-o', 'json']).stdout, before);
});

test('ReplicationController and ReplicaSet controllers keep the replicas; deleting the owner collects its pods, unless --cascade=orphan', { skip: kubectlMissing('1.33') }, async () => {
  const k = await server();
  const ns = 'ctl';
  assert.equal(kubectl('1.33', k, ['apply', '-f', '-'], `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}\n`).status, 0);
  const rc = 'apiVersion: v1\nkind: ReplicationController\nmetadata: {name: web}\nspec:\n  replicas: 2\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: localhost/nginx:1}]}\n';
  const rs = 'apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: api}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: api}}\n  template:\n    metadata: {labels: {app: api}}\n    spec: {containers: [{name: api, image: localhost/busybox:1}]}\n';
  assert.equal(kubectl('1.33', k, ['-n', ns, 'apply', '-f', '-'], `${rc}---\n${rs}`).status, 0);
  const pods = async (selector: string, n: number): Promise<{ metadata: { name: string; ownerReferences?: { kind: string; name: string; controller: boolean }[] } }[]> => {
    const deadline = Date.now() + 10000;
    for (;;) {
      const items = (JSON.parse(kubectl('1.33', k, ['-n', ns, 'get', 'pods', '-l', selector, '-o', 'json']).stdout) as { items: { metadata: { name: string; ownerReferences?: { kind: string; name: string; controller: boolean }[] } }[] }).items;
      if (items.length === n || Date.now() > deadline) return items;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const web = await pods('app=web', 2);
  assert.equal(web.length, 2);
  for (const p of web) {
    assert.match(p.metadata.name, /^web-[a-z0-9]{5}$/);
    assert.deepEqual(p.metadata.ownerReferences?.map((o) => `${o.kind}/${o.name}/${o.controller}`), ['ReplicationController/web/true']);
  }
  assert.equal((await pods('app=api', 1)).length, 1);
  assert.match(kubectl('1.33', k, ['-n', ns, 'get', 'rc', 'web']).stdout, /^web\s+2\s+2\s+0\s+/m, 'status.replicas counted');
  // A pod deleted by hand is replaced; scaling goes both ways.
  assert.equal(kubectl('1.33', k, ['-n', ns, 'delete', 'pod', web[0]!.metadata.name]).status, 0);
  assert.equal((await pods('app=web', 2)).filter((p) => p.metadata.name === web[0]!.metadata.name).length, 0);
  assert.equal(kubectl('1.33', k, ['-n', ns, 'scale', 'rc', 'web', '--replicas=4']).status, 0);
  assert.equal((await pods('app=web', 4)).length, 4);
  assert.equal(kubectl('1.33', k, ['-n', ns, 'scale', 'rc', 'web', '--replicas=1']).status, 0);
  assert.equal((await pods('app=web', 1)).length, 1);
  // Deleting the owner collects its pods; --cascade=orphan leaves them, unowned.
  assert.equal(kubectl('1.33', k, ['-n', ns, 'delete', 'rc', 'web']).status, 0);
  assert.equal((await pods('app=web', 0)).length, 0);
  assert.equal(kubectl('1.33', k, ['-n', ns, 'delete', 'rs', 'api', '--cascade=orphan']).status, 0);
  await new Promise((r) => setTimeout(r, 500));
  const left = await pods('app=api', 1);
  assert.equal(left.length, 1);
  assert.deepEqual(left[0]!.metadata.ownerReferences ?? [], []);
  assert.equal(kubectl('1.33', k, ['delete', 'namespace', ns]).status, 0);
});

test('a ResourceQuota refuses what would exceed it (403, nothing stored) and shows its use; a LimitRange fills in defaults and refuses what is over its max', { skip: kubectlMissing('1.33') }, async () => {
  const k = await server();
  const setup = `apiVersion: v1
kind: Namespace
metadata: {name: quota}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: q, namespace: quota}
spec: {hard: {pods: "2", limits.memory: 256Mi}}
---
apiVersion: v1
kind: LimitRange
metadata: {name: lr, namespace: quota}
spec:
  limits:
  - type: Container
    default: {memory: 100Mi, cpu: 200m}
    defaultRequest: {memory: 50Mi}
    max: {memory: 200Mi}
`;
  assert.equal(kubectl('1.33', k, ['apply', '-f', '-'], setup).status, 0);
  const podIn = (name: string, resources = ''): string => `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: quota}\nspec:\n  containers: [{name: c, image: localhost/busybox:latest${resources}}]\n`;
  for (const n of ['p1', 'p2']) assert.equal(kubectl('1.33', k, ['apply', '-f', '-'], podIn(n)).status, 0);
  const res = JSON.parse(kubectl('1.33', k, ['-n', 'quota', 'get', 'pod', 'p1', '-o', 'jsonpath={.spec.containers[0].resources}']).stdout) as unknown;
  assert.deepEqual(res, { limits: { memory: '100Mi', cpu: '200m' }, requests: { memory: '50Mi', cpu: '200m' } }, 'the LimitRange\'s defaults');
  const over = kubectl('1.33', k, ['apply', '-f', '-'], podIn('p3'));
  assert.notEqual(over.status, 0);
  assert.match(over.stderr, /pods "p3" is forbidden: exceeded quota: q, requested: limits\.memory=100Mi,pods=1, used: limits\.memory=200Mi,pods=2, limited: limits\.memory=256Mi,pods=2/);
  assert.match(kubectl('1.33', k, ['-n', 'quota', 'get', 'pod', 'p3']).stderr, /not found/, 'nothing stored');
  const big = kubectl('1.33', k, ['apply', '-f', '-'], podIn('big', ', resources: {limits: {memory: 300Mi}}'));
  assert.match(big.stderr, /pods "big" is forbidden: \[maximum memory usage per Container is 200Mi, but limit is 300Mi\]/);
  const described = kubectl('1.33', k, ['-n', 'quota', 'describe', 'quota', 'q']).stdout;
  assert.match(described, /limits\.memory\s+200Mi\s+256Mi/);
  assert.match(described, /pods\s+2\s+2/);
  assert.equal(kubectl('1.33', k, ['delete', 'namespace', 'quota']).status, 0);
});
