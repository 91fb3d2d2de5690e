// The orchestrator: `mycontainer kube server` driving our CRI server (on a
// store of its own with the test images, as the tests make it).
//
//   1. kubectl apply of a 10-replica Deployment → all 10 pods Ready
//      (`kubectl rollout status` returns), N times;
//   2. `get pods` requests per second with 100 pods in a namespace: HTTPS
//      with the admin client certificate, keep-alive, 8 concurrent
//      clients, 5 s; and one `kubectl get pods` (a kubectl start included);
//   3. the server's RSS with those objects;
//   4. storage, side by side: the same API-only server on SQLite and on
//      etcd (Debian's etcd-server 3.4): 100 pods created by one kubectl
//      apply, and `get pods` per second, as ratios etcd / SQLite.
//
// No peer runs here (k3s and kube-apiserver cannot be had on this machine):
// the figures stand alone, with the machine's load beside them.
//
//   node dist/bench/kube.js [--n 3] [--storage-only]

import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startCri } from '../test/helpers/cri';
import { KUBECTL, kubectl, startKube } from '../test/helpers/kube';
import { etcdMissing, startEtcd } from '../test/helpers/etcd';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const N = arg('n', 3);

function deployment(name: string, replicas: number): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: c, image: "localhost/busybox:latest", imagePullPolicy: IfNotPresent, command: ["sleep", "1000"]}]
`;
}

function loadavg(): string {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

async function rps(k: { kubeconfig: string; port: number }, seconds: number, concurrency: number): Promise<number> {
  const cfg = JSON.parse(fs.readFileSync(k.kubeconfig, 'utf8')) as { clusters: { cluster: Record<string, string> }[]; users: { user: Record<string, string> }[] };
  const b64 = (s: string | undefined): Buffer => Buffer.from(s ?? '', 'base64');
  const agent = new https.Agent({ keepAlive: true, maxSockets: concurrency, ca: b64(cfg.clusters[0]!.cluster['certificate-authority-data']), cert: b64(cfg.users[0]!.user['client-certificate-data']), key: b64(cfg.users[0]!.user['client-key-data']) });
  const end = Date.now() + seconds * 1000;
  let done = 0;
  const one = (): Promise<void> => new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port: k.port, path: '/api/v1/namespaces/bench/pods', agent, headers: { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    }).on('error', reject);
  });
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < end) {
      await one();
      done++;
    }
  }));
  agent.destroy();
  return done / seconds;
}

const hundredPods = (): string => Array.from({ length: 100 }, (_, i) => `apiVersion: v1\nkind: Pod\nmetadata: {name: p${i}, namespace: bench, labels: {app: bench}}\nspec:\n  nodeName: elsewhere\n  containers: [{name: c, image: localhost/busybox:latest}]\n`).join('---\n');

/** One API-only server on `extra`'s storage: 100 pods in one apply (ms), then get pods per second. */
async function storage(extra: string[]): Promise<{ create100Ms: number; getPodsPerSecond: number }> {
  const k = await startKube(undefined, 0, extra);
  try {
    kubectl('1.33', k, ['apply', '-f', '-'], 'apiVersion: v1\nkind: Namespace\nmetadata: {name: bench}\n');
    const t0 = Date.now();
    const made = kubectl('1.33', k, ['apply', '-f', '-'], hundredPods());
    if (made.status !== 0) throw new Error(made.stderr);
    const create100Ms = Date.now() - t0;
    return { create100Ms, getPodsPerSecond: Math.round(await rps(k, 5, 8)) };
  } finally {
    await k.stop();
    fs.rmSync(k.dataDir, { recursive: true, force: true });
  }
}

async function storageSideBySide(): Promise<Record<string, unknown>> {
  const missing = etcdMissing();
  if (missing) return { skipped: missing };
  const sqlite = await storage([]);
  const etcd = await startEtcd();
  try {
    const onEtcd = await storage(['--datastore-endpoint', etcd.endpoint]);
    return {
      sqlite, etcd: onEtcd,
      ratios: { create100: +(onEtcd.create100Ms / sqlite.create100Ms).toFixed(2), getPodsPerSecond: +(onEtcd.getPodsPerSecond / sqlite.getPodsPerSecond).toFixed(2) },
    };
  } finally {
    await etcd.stop();
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--storage-only')) {
    process.stdout.write(JSON.stringify({ date: new Date().toISOString(), load: loadavg(), storage: await storageSideBySide() }, null, 2) + '\n');
    return;
  }
  const cri = startCri('bench-kube');
  cri.start();
  const k = await startKube(undefined, 0, ['--container-runtime-endpoint', `unix://${cri.socket}`, '--pod-log-dir', path.join(cri.work, 'pod-logs')]);
  const out: Record<string, unknown> = { date: new Date().toISOString(), loadBefore: loadavg() };
  try {
    const times: number[] = [];
    for (let i = 0; i < N; i++) {
      const name = `bench${i}`;
      const t0 = Date.now();
      const a = kubectl('1.33', k, ['apply', '-f', '-'], deployment(name, 10));
      if (a.status !== 0) throw new Error(a.stderr);
      const r = kubectl('1.33', k, ['rollout', 'status', `deployment/${name}`, '--timeout=300s']);
      if (r.status !== 0) throw new Error(r.stderr);
      times.push(Date.now() - t0);
      kubectl('1.33', k, ['delete', 'deployment', name]);
      for (let w = 0; w < 300 && kubectl('1.33', k, ['get', 'pods', '-l', `app=${name}`, '-o', 'name']).stdout.trim(); w++) spawnSync('sleep', ['0.2']);
    }
    times.sort((x, y) => x - y);
    out['deploy10ReadyMs'] = { runs: times, median: times[Math.floor(times.length / 2)] };
    // 100 pods bound to a node that does not exist: objects only, nothing runs.
    kubectl('1.33', k, ['apply', '-f', '-'], 'apiVersion: v1\nkind: Namespace\nmetadata: {name: bench}\n');
    const made = kubectl('1.33', k, ['apply', '-f', '-'], hundredPods());
    if (made.status !== 0) throw new Error(made.stderr);
    out['getPodsPerSecond'] = Math.round(await rps(k, 5, 8));
    const t0 = Date.now();
    spawnSync(KUBECTL['1.33'] as string, ['--kubeconfig', k.kubeconfig, '-n', 'bench', 'get', 'pods'], { stdio: 'ignore' });
    out['kubectlGetPodsMs'] = Date.now() - t0;
    out['serverRssMb'] = Math.round(Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${k.proc.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024);
    out['loadAfter'] = loadavg();
  } finally {
    await k.stop();
    cri.cleanup();
    fs.rmSync(k.dataDir, { recursive: true, force: true });
  }
  out['storage'] = await storageSideBySide();
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  const dir = path.join(__dirname, '..', '..', 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `kube-${(out['date'] as string).slice(0, 10)}.json`), JSON.stringify(out, null, 2));
}

main().catch((e: unknown) => {
  process.stderr.write(`bench kube: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
