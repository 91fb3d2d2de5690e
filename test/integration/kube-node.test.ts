// The orchestrator's node agent on our CRI server (started as a user would,
// with its test images and a bridge of its own): kubectl apply makes pods
// that run, with an IP from the pod network; kubectl logs reads them
// (--previous too); a crashing container restarts with backoff
// (CrashLoopBackOff); a missing image shows ErrImagePull then
// ImagePullBackOff; `crictl rm -f` of a container brings a new one; a
// ReplicationController's pods run; deleting a pod stops it within its
// grace period and its sandbox goes.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crictlMissing, startCri, type Cri } from '../helpers/cri';
import { REPO } from '../helpers/bundle';
import { engineMissing } from '../helpers/engine';
import { KUBECTL, kubectl, kubectlMissing, startKube, until, type KubeServerProcess } from '../helpers/kube';
import { spawnSync } from 'node:child_process';

const skip = crictlMissing() ?? engineMissing() ?? kubectlMissing('1.33');
let cri: Cri;
let k: KubeServerProcess;

before(async () => {
  if (skip) return;
  cri = startCri('kube');
  cri.start();
  k = await startKube(undefined, 0, ['--container-runtime-endpoint', `unix://${cri.socket}`, '--pod-log-dir', path.join(cri.work, 'pod-logs')]);
});

after(async () => {
  if (skip) return;
  await k?.stop();
  cri?.cleanup();
  if (k) fs.rmSync(k.dataDir, { recursive: true, force: true });
});

const kc = (args: string[], input?: string): ReturnType<typeof kubectl> => kubectl('1.33', k, args, input);

interface PodView { metadata: { name: string; uid: string }; status: { phase: string; podIP?: string; containerStatuses?: { restartCount: number; ready: boolean; state: Record<string, { reason?: string }> }[] } }

const pod = (name: string): PodView | undefined => {
  const r = kc(['get', 'pod', name, '-o', 'json']);
  return r.status === 0 ? (JSON.parse(r.stdout) as PodView) : undefined;
};

/** The node's InternalIP, as its Node object reports it (where node ports answer). */
const nodeAddress = (): string => (JSON.parse(kc(['get', 'nodes', '-o', 'json']).stdout) as { items: { status: { addresses: { type: string; address: string }[] } }[] }).items[0]!.status.addresses.find((a) => a.type === 'InternalIP')!.address;

const manifest = (name: string, command: string, extra = ''): string => `apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: localhost/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", ${JSON.stringify(command)}]
    env: [{name: GREETING, value: hello-from-env}]${extra}
`;

test('the node registers, Ready, and a pod runs with an IP from the pod network; logs; delete stops it and its sandbox goes', { skip }, async () => {
  const nodes = await until('the node registered', () => {
    const r = kc(['get', 'nodes']);
    return /^\S+\s+Ready\s+control-plane\s+/m.test(r.stdout) ? r.stdout : undefined;
  }, 20000);
  assert.match(nodes, /^\S+\s+Ready\s+control-plane\s+\d+s\s+v1\.33\.0-mycontainer$/m);
  assert.equal(kc(['apply', '-f', '-'], manifest('hello', 'echo $GREETING; sleep 1000')).status, 0);
  const running = await until('hello running', () => {
    const p = pod('hello');
    return p?.status.phase === 'Running' ? p : undefined;
  });
  assert.ok(running.status.podIP?.startsWith(`${cri.subnetPrefix}.`), `pod IP ${running.status.podIP} in ${cri.subnetPrefix}.0/24`);
  assert.equal(running.status.containerStatuses?.[0]?.ready, true);
  assert.match(kc(['get', 'pods', '-o', 'wide']).stdout, /^hello\s+1\/1\s+Running\s+0\s+/m);
  await until('the log', () => (kc(['logs', 'hello']).stdout === 'hello-from-env\n' ? true : undefined), 10000);
  // The sandbox is the CRI server's, named after the pod.
  assert.match(cri.crictl(['pods', '--name', 'hello', '-q']).stdout, /^[0-9a-f]+$/m);
  const t0 = Date.now();
  const del = kc(['delete', 'pod', 'hello']);
  assert.equal(del.status, 0, del.stderr);
  assert.ok(Date.now() - t0 < 20000, 'stopped within its grace period (2 s, sh ignores SIGTERM as PID 1)');
  assert.equal(cri.crictl(['pods', '--name', 'hello', '-q']).stdout.trim(), '', 'its sandbox is gone');
});

test('restartPolicy Always: a crashing container restarts with backoff (CrashLoopBackOff); logs --previous', { skip }, async () => {
  assert.equal(kc(['apply', '-f', '-'], manifest('crash', 'echo attempt; exit 3')).status, 0);
  const p = await until('a restart', () => {
    const v = pod('crash');
    return (v?.status.containerStatuses?.[0]?.restartCount ?? 0) >= 1 ? v : undefined;
  });
  const state = await until('CrashLoopBackOff', () => {
    const v = pod('crash')?.status.containerStatuses?.[0]?.state['waiting']?.reason;
    return v === 'CrashLoopBackOff' ? v : undefined;
  });
  assert.equal(state, 'CrashLoopBackOff');
  assert.ok(p.status.containerStatuses![0]!.restartCount >= 1);
  assert.match(kc(['get', 'pods', 'crash']).stdout, /crash\s+0\/1\s+(CrashLoopBackOff|Error|Running)\s+\d+/);
  assert.equal(kc(['logs', 'crash', '--previous']).stdout, 'attempt\n');
  assert.equal(kc(['delete', 'pod', 'crash']).status, 0);
});

test('an image that is nowhere: ErrImagePull, then ImagePullBackOff', { skip }, async () => {
  const m = manifest('noimage', 'true').replace('localhost/busybox:latest', 'localhost/does-not-exist:1').replace('imagePullPolicy: IfNotPresent', 'imagePullPolicy: Always');
  assert.equal(kc(['apply', '-f', '-'], m).status, 0);
  await until('ErrImagePull', () => (/noimage\s+0\/1\s+ErrImagePull/.test(kc(['get', 'pods', 'noimage']).stdout) ? true : undefined));
  await until('ImagePullBackOff', () => (/noimage\s+0\/1\s+ImagePullBackOff/.test(kc(['get', 'pods', 'noimage']).stdout) ? true : undefined), 40000);
  assert.equal(kc(['delete', 'pod', 'noimage']).status, 0);
});

test('a ReplicationController\'s pods run; crictl rm -f of a container brings a new one', { skip }, async () => {
  const rc = `apiVersion: v1
kind: ReplicationController
metadata: {name: web}
spec:
  replicas: 2
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: httpd, image: localhost/httpd:latest, imagePullPolicy: IfNotPresent}]
`;
  assert.equal(kc(['apply', '-f', '-'], rc).status, 0);
  const names = await until('2 running pods', () => {
    const list = JSON.parse(kc(['get', 'pods', '-l', 'app=web', '-o', 'json']).stdout) as { items: PodView[] };
    const up = list.items.filter((p) => p.status.phase === 'Running');
    return up.length === 2 ? up.map((p) => p.metadata.name) : undefined;
  });
  const first = names[0] as string;
  const ctr = cri.crictl(['ps', '-q', '--label', `io.kubernetes.pod.name=${first}`]).stdout.trim().split('\n')[0] as string;
  assert.ok(ctr, 'the pod\'s container, by its label');
  assert.equal(cri.crictl(['rm', '-f', ctr]).status, 0);
  await until('a new container', () => {
    const p = pod(first);
    return p && p.status.phase === 'Running' && (p.status.containerStatuses?.[0]?.restartCount ?? 0) >= 1 ? true : undefined;
  });
  assert.equal(kc(['delete', 'rc', 'web']).status, 0);
  await until('the pods gone', () => (kc(['get', 'pods', '-l', 'app=web', '-o', 'name']).stdout.trim() === '' ? true : undefined), 30000);
});

test('kubectl exec (websocket from 1.33, SPDY from 1.27 and 1.20), with stdin and the exit status; port-forward', { skip }, async () => {
  const web = manifest('shell', 'mkdir -p /www && echo served-by-pod > /www/index.html && httpd -f -p 8080 -h /www');
  assert.equal(kc(['apply', '-f', '-'], web).status, 0);
  await until('shell running', () => (pod('shell')?.status.phase === 'Running' ? true : undefined));
  const e = kc(['exec', 'shell', '--', 'sh', '-c', 'echo $GREETING in $(hostname)']);
  assert.equal(e.status, 0, e.stderr);
  assert.equal(e.stdout, 'hello-from-env in shell\n', 'run inside the container: its env and hostname');
  for (const v of ['1.27', '1.20']) {
    if (kubectlMissing(v)) continue;
    assert.equal(kubectl(v, k, ['exec', 'shell', '--', 'echo', `from-${v}`]).stdout, `from-${v}\n`);
  }
  assert.equal(kc(['exec', '-i', 'shell', '--', 'cat'], 'through stdin\n').stdout, 'through stdin\n');
  const failed = kc(['exec', 'shell', '--', 'sh', '-c', 'exit 7']);
  assert.equal(failed.status, 7);
  assert.match(failed.stderr, /command terminated with exit code 7/);
  const { spawn } = await import('node:child_process');
  const { freePort } = await import('../helpers/registry');
  const port = await freePort();
  const pf = spawn(KUBECTL['1.33'] as string, ['--kubeconfig', k.kubeconfig, 'port-forward', 'pod/shell', `${port}:8080`], { stdio: 'ignore' });
  try {
    const body = await until('port-forward', () => {
      const r = spawnSync('curl', ['-s', '--max-time', '2', `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
      return r.stdout.includes('served-by-pod') ? r.stdout : undefined;
    }, 20000);
    assert.equal(body, 'served-by-pod\n');
  } finally {
    pf.kill();
  }
  assert.equal(kc(['delete', 'pod', 'shell']).status, 0);
});

test('Services: a cluster IP and a NodePort in the host\'s iptables reach the ready pods; Endpoints; the service env vars in a pod', { skip }, async () => {
  const m = `apiVersion: v1
kind: ReplicationController
metadata: {name: echo}
spec:
  replicas: 2
  template:
    metadata: {labels: {app: echo}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: localhost/busybox:latest
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && httpd -f -p 8080 -h /www"]
        ports: [{containerPort: 8080, name: http}]
---
apiVersion: v1
kind: Service
metadata: {name: echo-svc}
spec:
  type: NodePort
  selector: {app: echo}
  ports: [{port: 80, targetPort: http}]
`;
  assert.equal(kc(['apply', '-f', '-'], m).status, 0);
  const svc = JSON.parse(kc(['get', 'svc', 'echo-svc', '-o', 'json']).stdout) as { spec: { clusterIP: string; ports: { nodePort: number }[] } };
  assert.match(svc.spec.clusterIP, /^10\.43\.\d+\.\d+$/, 'from the default service CIDR');
  const nodePort = svc.spec.ports[0]!.nodePort;
  assert.ok(nodePort >= 30000 && nodePort <= 32767);
  const ips = await until('two endpoints', () => {
    const ep = JSON.parse(kc(['get', 'endpoints', 'echo-svc', '-o', 'json']).stdout || '{}') as { subsets?: { addresses?: { ip: string }[]; ports: { port: number }[] }[] };
    const a = ep.subsets?.[0]?.addresses ?? [];
    return a.length === 2 && ep.subsets?.[0]?.ports[0]?.port === 8080 ? a.map((x) => x.ip) : undefined;
  });
  for (const ip of ips) assert.ok(ip.startsWith(`${cri.subnetPrefix}.`));
  const pods = (JSON.parse(kc(['get', 'pods', '-l', 'app=echo', '-o', 'json']).stdout) as { items: { metadata: { name: string } }[] }).items.map((p) => p.metadata.name).sort();
  // Both pods answer through the cluster IP (connections are spread at random).
  const seen = new Set<string>();
  await until('both pods through the cluster IP', () => {
    const r = spawnSync('curl', ['-s', '--max-time', '2', `http://${svc.spec.clusterIP}/`], { encoding: 'utf8' });
    if (r.stdout.trim()) seen.add(r.stdout.trim());
    return seen.size === 2 ? true : undefined;
  }, 30000);
  assert.deepEqual([...seen].sort(), pods);
  const nodeIp = nodeAddress();
  const viaNodePort = spawnSync('curl', ['-s', '--max-time', '3', `http://${nodeIp}:${nodePort}/`], { encoding: 'utf8' }).stdout.trim();
  assert.ok(pods.includes(viaNodePort), `the NodePort on ${nodeIp}:${nodePort} answered ${JSON.stringify(viaNodePort)}`);
  // and on 127.0.0.1, as kube-proxy's localhost node ports
  const viaLocalhost = spawnSync('curl', ['-s', '--max-time', '3', `http://127.0.0.1:${nodePort}/`], { encoding: 'utf8' }).stdout.trim();
  assert.ok(pods.includes(viaLocalhost), `the NodePort on 127.0.0.1:${nodePort} answered ${JSON.stringify(viaLocalhost)}`);
  // A pod started after the service sees its variables, and reaches it by them.
  assert.equal(kc(['apply', '-f', '-'], manifest('client', 'sleep 1000')).status, 0);
  await until('client running', () => (pod('client')?.status.phase === 'Running' ? true : undefined));
  const env = kc(['exec', 'client', '--', 'sh', '-c', 'echo $ECHO_SVC_SERVICE_HOST:$ECHO_SVC_SERVICE_PORT $ECHO_SVC_PORT_80_TCP; wget -qO- http://$ECHO_SVC_SERVICE_HOST:$ECHO_SVC_SERVICE_PORT/']);
  assert.equal(env.status, 0, env.stderr);
  const [vars, answer] = env.stdout.trim().split('\n');
  assert.equal(vars, `${svc.spec.clusterIP}:80 tcp://${svc.spec.clusterIP}:80`);
  assert.ok(pods.includes(answer ?? ''), 'reached through the service from inside a pod');
  // Deleting the service takes its rules out.
  assert.equal(kc(['delete', 'svc', 'echo-svc']).status, 0);
  await until('the rule gone', () => (!spawnSync('iptables', ['-t', 'nat', '-S'], { encoding: 'utf8' }).stdout.includes(`-d ${svc.spec.clusterIP}/32`) ? true : undefined), 10000);
  assert.equal(kc(['delete', 'rc', 'echo']).status, 0);
  assert.equal(kc(['delete', 'pod', 'client']).status, 0);
});

test('a Deployment rolls out, updates with no moment without a ready replica (a client polling its Service sees no error), and rolls back', { skip }, async () => {
  const dep = (version: string): string => `apiVersion: apps/v1
kind: Deployment
metadata: {name: roll}
spec:
  replicas: 3
  selector: {matchLabels: {app: roll}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: roll}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: localhost/busybox:latest
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "mkdir -p /www && echo ${version} > /www/index.html && httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Service
metadata: {name: roll}
spec:
  selector: {app: roll}
  ports: [{port: 80, targetPort: 8080}]
`;
  assert.equal(kc(['apply', '-f', '-'], dep('v1')).status, 0);
  const status = kc(['rollout', 'status', 'deployment/roll', '--timeout=90s']);
  assert.equal(status.status, 0, status.stderr);
  assert.match(status.stdout, /successfully rolled out/);
  assert.match(kc(['get', 'deployment', 'roll']).stdout, /^roll\s+3\/3\s+3\s+3\s+/m);
  const ip = (JSON.parse(kc(['get', 'svc', 'roll', '-o', 'json']).stdout) as { spec: { clusterIP: string } }).spec.clusterIP;
  const http = await import('node:http');
  const get = (): Promise<string> => new Promise((resolve) => {
    // A new connection each time (agent: false), as a client of a service opens them: a kept-alive
    // one would stay on a pod that the update then takes away.
    const req = http.get({ host: ip, port: 80, path: '/', timeout: 2000, agent: false }, (res) => {
      let b = '';
      res.on('data', (d: Buffer) => (b += d.toString()));
      res.on('end', () => resolve(b.trim()));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve(`error: ${e.message}`));
  });
  // Only `version` answers, several times in a row: pods of the old version may serve for the last
  // moments of their grace period, until the proxy has dropped them.
  const settled = async (version: string): Promise<void> => {
    let streak = 0;
    const deadline = Date.now() + 20000;
    while (streak < 5 && Date.now() < deadline) {
      streak = (await get()) === version ? streak + 1 : 0;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(streak, 5, `only ${version} answers`);
  };
  await settled('v1');
  // Poll the service all through the update.
  const answers: string[] = [];
  let polling = true;
  const poller = (async (): Promise<void> => {
    while (polling) {
      answers.push(await get());
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  assert.equal(kc(['apply', '-f', '-'], dep('v2')).status, 0);
  // Waited for without blocking this process: the poller must keep running.
  const { spawn } = await import('node:child_process');
  const rolled = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
    const p = spawn(KUBECTL['1.33'] as string, ['--kubeconfig', k.kubeconfig, 'rollout', 'status', 'deployment/roll', '--timeout=120s']);
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (status) => resolve({ status, stderr }));
  });
  polling = false;
  await poller;
  assert.equal(rolled.status, 0, rolled.stderr);
  const errors = answers.filter((a) => a !== 'v1' && a !== 'v2');
  assert.deepEqual(errors, [], `${answers.length} requests during the update`);
  assert.ok(answers.includes('v2'));
  await settled('v2');
  const rs = JSON.parse(kc(['get', 'rs', '-l', 'app=roll', '-o', 'json']).stdout) as { items: { metadata: { annotations: Record<string, string> }; spec: { replicas: number } }[] };
  assert.deepEqual(rs.items.map((r) => r.spec.replicas).sort(), [0, 3], 'the old ReplicaSet scaled to 0, the new one to 3');
  // rollout undo: the previous template again.
  assert.equal(kc(['rollout', 'undo', 'deployment/roll']).status, 0);
  assert.equal(kc(['rollout', 'status', 'deployment/roll', '--timeout=120s']).status, 0);
  await settled('v1');
  assert.equal(kc(['delete', 'deployment', 'roll']).status, 0);
  assert.equal(kc(['delete', 'svc', 'roll']).status, 0);
  await until('its pods gone', () => (kc(['get', 'pods', '-l', 'app=roll', '-o', 'name']).stdout.trim() === '' ? true : undefined), 30000);
});

test('ConfigMaps and Secrets reach the container: env (valueFrom, envFrom), read-only volume files; a missing one is CreateContainerConfigError until it exists', { skip }, async () => {
  const m = `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {color: blue, app.conf: "port=8080\\n"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
data: {password: c2VjcmV0}
stringData: {user: admin}
---
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {name: conf, configMap: {name: settings}}
  - {name: sec, secret: {secretName: creds}}
  - {name: scratch, emptyDir: {}}
  containers:
  - name: c
    image: localhost/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sleep", "1000"]
    env:
    - {name: COLOR, valueFrom: {configMapKeyRef: {name: settings, key: color}}}
    - {name: PASS, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: MY_POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: LATE, valueFrom: {configMapKeyRef: {name: later, key: x}}}
    envFrom: [{prefix: CFG_, configMapRef: {name: settings}}]
    volumeMounts:
    - {name: conf, mountPath: /etc/app}
    - {name: sec, mountPath: /etc/creds}
    - {name: scratch, mountPath: /scratch}
`;
  assert.equal(kc(['apply', '-f', '-'], m).status, 0);
  const secret = JSON.parse(kc(['get', 'secret', 'creds', '-o', 'json']).stdout) as { data: Record<string, string>; stringData?: unknown };
  assert.deepEqual(secret.data, { password: 'c2VjcmV0', user: 'YWRtaW4=' }, 'stringData folded into data');
  assert.equal(secret.stringData, undefined);
  const waiting = await until('CreateContainerConfigError', () => {
    const st = pod('reader')?.status.containerStatuses?.[0]?.state['waiting'] as { reason?: string; message?: string } | undefined;
    return st?.reason === 'CreateContainerConfigError' ? st : undefined;
  });
  assert.match(waiting.message ?? '', /configmap "later" not found/);
  assert.equal(kc(['apply', '-f', '-'], 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later}\ndata: {x: "1"}\n').status, 0);
  await until('reader running', () => (pod('reader')?.status.phase === 'Running' ? true : undefined));
  const r = kc(['exec', 'reader', '--', 'sh', '-c', 'echo $COLOR $PASS $MY_POD $CFG_color $LATE; cat /etc/app/app.conf /etc/creds/user; echo; touch /etc/app/x 2>&1; touch /scratch/ok && echo scratch-writable']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'blue secret reader blue 1\nport=8080\nadmin\ntouch: /etc/app/x: Read-only file system\nscratch-writable\n');
  assert.equal(kc(['delete', 'pod', 'reader']).status, 0);
  for (const o of ['configmap/settings', 'configmap/later', 'secret/creds']) kc(['delete', o]);
});

test('probes: a failing liveness probe restarts the container; readiness (httpGet on a named port) and startup (tcpSocket) gate Ready and the Endpoints', { skip }, async () => {
  const m = `apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: localhost/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "touch /tmp/healthy; sleep 3; rm /tmp/healthy; sleep 1000"]
    livenessProbe: {exec: {command: ["test", "-f", "/tmp/healthy"]}, periodSeconds: 1, failureThreshold: 2}
---
apiVersion: v1
kind: Pod
metadata: {name: slow, labels: {app: slow}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: localhost/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "sleep 4; mkdir -p /w; echo ok > /w/index.html; httpd -f -p 8080 -h /w"]
    ports: [{name: web, containerPort: 8080}]
    readinessProbe: {httpGet: {path: /, port: web}, periodSeconds: 1}
    startupProbe: {tcpSocket: {port: 8080}, periodSeconds: 1, failureThreshold: 30}
---
apiVersion: v1
kind: Service
metadata: {name: slow}
spec:
  selector: {app: slow}
  ports: [{port: 80, targetPort: web}]
`;
  assert.equal(kc(['apply', '-f', '-'], m).status, 0);
  // Not ready (and not in the service's addresses) until its server answers.
  await until('slow running', () => (pod('slow')?.status.phase === 'Running' ? true : undefined));
  const early = pod('slow')!;
  assert.equal(early.status.containerStatuses?.[0]?.ready, false);
  const ep = (): { addresses?: unknown[]; notReadyAddresses?: unknown[] } => ((JSON.parse(kc(['get', 'endpoints', 'slow', '-o', 'json']).stdout || '{}') as { subsets?: { addresses?: unknown[]; notReadyAddresses?: unknown[] }[] }).subsets ?? [])[0] ?? {};
  assert.equal(ep().addresses, undefined, 'not ready: not an address of the service yet');
  await until('slow ready', () => (pod('slow')?.status.containerStatuses?.[0]?.ready ? true : undefined), 30000);
  await until('an address of the service', () => (ep().addresses?.length === 1 ? true : undefined), 10000);
  // The liveness probe fails after 3 s: the container is killed and started again.
  await until('a liveness restart', () => ((pod('live')?.status.containerStatuses?.[0]?.restartCount ?? 0) >= 1 ? true : undefined), 40000);
  for (const o of ['pod/live', 'pod/slow', 'service/slow']) assert.equal(kc(['delete', o]).status, 0);
});

test('resources become cgroup limits (read inside the container); a preStop hook runs before the container is stopped', { skip }, async () => {
  const out = fs.mkdtempSync(path.join(cri.work, 'prestop-'));
  const m = `apiVersion: v1
kind: Pod
metadata: {name: limited}
spec:
  terminationGracePeriodSeconds: 5
  volumes: [{name: out, hostPath: {path: ${out}}}]
  containers:
  - name: c
    image: localhost/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sleep", "1000"]
    resources: {limits: {memory: 64Mi, cpu: 500m}, requests: {cpu: 250m}}
    volumeMounts: [{name: out, mountPath: /out}]
    lifecycle: {preStop: {exec: {command: ["sh", "-c", "echo stopping > /out/prestop"]}}}
`;
  assert.equal(kc(['apply', '-f', '-'], m).status, 0);
  await until('limited running', () => (pod('limited')?.status.phase === 'Running' ? true : undefined));
  const v1 = fs.existsSync('/sys/fs/cgroup/memory/tasks');
  const files = v1 ? '/sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us' : '/sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max';
  const r = kc(['exec', 'limited', '--', 'sh', '-c', `cat ${files}`]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^67108864$/m, 'memory limit 64Mi');
  assert.match(r.stdout, v1 ? /^50000$/m : /^50000 100000$/m, 'cpu limit 500m: half of each 100 ms');
  assert.equal(kc(['delete', 'pod', 'limited']).status, 0);
  assert.equal(fs.readFileSync(path.join(out, 'prestop'), 'utf8'), 'stopping\n');
});

test('a StatefulSet makes its pods in order with stable names (each once the one before is Ready), and scales down from the top', { skip }, async () => {
  const sts = (replicas: number): string => `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: ${replicas}
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: c, image: localhost/busybox:latest, imagePullPolicy: IfNotPresent, command: ["sleep", "1000"]}]
`;
  assert.equal(kc(['apply', '-f', '-'], sts(3)).status, 0);
  await until('3 ready', () => (/^db\s+3\/3\s+/m.test(kc(['get', 'statefulset', 'db']).stdout) ? true : undefined), 60000);
  const created = (JSON.parse(kc(['get', 'pods', '-l', 'app=db', '-o', 'json']).stdout) as { items: { metadata: { name: string; creationTimestamp: string }; spec: { hostname: string; subdomain: string } }[] }).items;
  assert.deepEqual(created.map((p) => p.metadata.name).sort(), ['db-0', 'db-1', 'db-2']);
  const order = [...created].sort((a, b) => a.metadata.creationTimestamp.localeCompare(b.metadata.creationTimestamp) || a.metadata.name.localeCompare(b.metadata.name)).map((p) => p.metadata.name);
  assert.deepEqual(order, ['db-0', 'db-1', 'db-2'], 'made in order');
  assert.equal(kc(['exec', 'db-1', '--', 'hostname']).stdout.trim(), 'db-1', 'its stable name is its hostname');
  assert.equal(kc(['scale', 'statefulset', 'db', '--replicas=1']).status, 0);
  await until('down to db-0', () => (kc(['get', 'pods', '-l', 'app=db', '-o', 'name']).stdout.trim() === 'pod/db-0' ? true : undefined), 60000);
  assert.equal(kc(['delete', 'statefulset', 'db']).status, 0);
  await until('its pods gone', () => (kc(['get', 'pods', '-l', 'app=db', '-o', 'name']).stdout.trim() === '' ? true : undefined), 30000);
});

test('cluster DNS: pods get kubelet\'s resolv.conf and reach services by short and full names', { skip: skip || (fs.existsSync('/usr/sbin/dnsmasq') ? false : 'needs dnsmasq (dnsmasq-base)') }, async () => {
  const m = `apiVersion: v1
kind: Pod
metadata: {name: named, labels: {app: named}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: localhost/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /www && echo found-by-name > /www/index.html && httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Service
metadata: {name: named-svc}
spec:
  selector: {app: named}
  ports: [{port: 80, targetPort: 8080}]
`;
  assert.equal(kc(['apply', '-f', '-'], m).status, 0);
  assert.equal(kc(['apply', '-f', '-'], manifest('asker', 'sleep 1000')).status, 0);
  await until('both running', () => (pod('named')?.status.phase === 'Running' && pod('asker')?.status.phase === 'Running' ? true : undefined));
  const dnsIp = (JSON.parse(kc(['-n', 'kube-system', 'get', 'svc', 'kube-dns', '-o', 'json']).stdout) as { spec: { clusterIP: string } }).spec.clusterIP;
  assert.equal(dnsIp, '10.43.0.10');
  const conf = kc(['exec', 'asker', '--', 'cat', '/etc/resolv.conf']).stdout;
  assert.match(conf, /^nameserver 10\.43\.0\.10$/m);
  assert.match(conf, /^search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local$/m);
  assert.match(conf, /^options ndots:5$/m);
  await until('an address of the service', () => (/found-by-name/.test(kc(['exec', 'asker', '--', 'wget', '-qO-', 'http://named-svc/']).stdout) ? true : undefined), 20000);
  assert.equal(kc(['exec', 'asker', '--', 'wget', '-qO-', 'http://named-svc.default.svc.cluster.local/']).stdout, 'found-by-name\n');
  for (const o of ['pod/named', 'pod/asker', 'service/named-svc']) assert.equal(kc(['delete', o]).status, 0);
});

test('restarting the server loses nothing: a running pod keeps running, the same container, not restarted', { skip }, async () => {
  assert.equal(kc(['apply', '-f', '-'], manifest('survivor', 'sleep 1000')).status, 0);
  const before = await until('survivor running', () => {
    const p = pod('survivor');
    return p?.status.phase === 'Running' ? p : undefined;
  });
  const id = (JSON.parse(kc(['get', 'pod', 'survivor', '-o', 'json']).stdout) as { status: { containerStatuses: { containerID: string }[] } }).status.containerStatuses[0]!.containerID;
  const args = ['--container-runtime-endpoint', `unix://${cri.socket}`, '--pod-log-dir', path.join(cri.work, 'pod-logs')];
  await k.stop();
  assert.match(cri.crictl(['ps', '-q', '--label', 'io.kubernetes.pod.name=survivor']).stdout, /^[0-9a-f]+$/m, 'the container runs on while the server is down');
  k = await startKube(k.dataDir, k.port, args);
  await new Promise((r) => setTimeout(r, 3000)); // a few syncs of the new agent
  const after = JSON.parse(kc(['get', 'pod', 'survivor', '-o', 'json']).stdout) as { metadata: { uid: string }; status: { phase: string; containerStatuses: { containerID: string; restartCount: number }[] } };
  assert.equal(after.metadata.uid, before.metadata.uid);
  assert.equal(after.status.phase, 'Running');
  assert.equal(after.status.containerStatuses[0]!.containerID, id, 'the same container, taken back');
  assert.equal(after.status.containerStatuses[0]!.restartCount, 0);
  assert.equal(kc(['delete', 'pod', 'survivor']).status, 0);
});

test('a node whose runtime does not answer turns NotReady and gets the not-ready taint; Ready again once it answers', { skip }, async () => {
  interface NodeView { spec?: { taints?: { key: string; effect: string }[] }; status: { conditions: { type: string; status: string; message: string }[] } }
  const node = (): NodeView => (JSON.parse(kc(['get', 'nodes', '-o', 'json']).stdout) as { items: NodeView[] }).items[0] as NodeView;
  const ready = (): { status: string; message: string } | undefined => node().status.conditions.find((c) => c.type === 'Ready');
  cri.stop();
  try {
    // the agent's next heartbeat (10 s) finds the runtime gone; the lifecycle controller then taints the node
    const down = await until('NotReady', () => (ready()?.status === 'False' ? ready() : undefined), 30000);
    assert.match(down.message, /^container runtime is down: /);
    await until('the not-ready taint', () => (node().spec?.taints?.some((t) => t.key === 'node.kubernetes.io/not-ready' && t.effect === 'NoSchedule') ? true : undefined), 15000);
    assert.match(kc(['get', 'nodes']).stdout, /^\S+\s+NotReady\s/m);
  } finally {
    cri.start();
  }
  await until('Ready again', () => (ready()?.status === 'True' ? true : undefined), 30000);
  await until('the taint gone', () => (!(node().spec?.taints ?? []).length ? true : undefined), 15000);
});

const GUESTBOOK_DEBS = '/usr/local/lib/mycontainer/debs';
const guestbookSkip = skip || (fs.existsSync(GUESTBOOK_DEBS) && fs.readdirSync(GUESTBOOK_DEBS).some((f) => f.startsWith('redis-tools_')) ? false : `needs Debian's redis packages in ${GUESTBOOK_DEBS} (scripts/setup.sh downloads them)`);

test('the classic guestbook: redis-master and 2 redis-slave RCs with Services, a 3-replica frontend on a NodePort that writes to the master and reads from the slaves', { skip: guestbookSkip }, async () => {
  // An image from Debian's redis-tools (and busybox for the frontend's httpd and CGI).
  const oci = path.join(cri.work, 'redis-oci');
  const { execFileSync } = await import('node:child_process');
  execFileSync(path.join(REPO, 'scripts', 'build-debian-image.sh'), [oci, '7', 'redis-tools libjemalloc2 liblzf1 liblua5.1-0', '/usr/bin/redis-check-rdb /usr/bin/redis-cli', 'redis-server'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const loaded = cri.engine.mc(['load', '-i', oci, '--name', 'localhost/redis:7']);
  assert.equal(loaded.status, 0, loaded.stderr);
  // The manifests the README walks through: services first, so that the pods get their variables.
  const applied = kc(['apply', '-f', path.join(REPO, 'orchestrator', 'examples', 'guestbook.yaml')]);
  assert.equal(applied.status, 0, applied.stderr);
  const ready = (sel: string, n: number): Promise<boolean> => until(`${n} ready ${sel}`, () => {
    const items = (JSON.parse(kc(['get', 'pods', '-l', sel, '-o', 'json']).stdout) as { items: { status: { containerStatuses?: { ready: boolean }[] } }[] }).items;
    return items.length === n && items.every((p) => p.status.containerStatuses?.[0]?.ready) ? true : undefined;
  }, 120000);
  await ready('role=master', 1);
  await ready('role=slave', 2); // replicating from the master
  await ready('tier=frontend', 3);
  const nodeIp = nodeAddress();
  const nodePort = (JSON.parse(kc(['get', 'svc', 'frontend', '-o', 'json']).stdout) as { spec: { ports: { nodePort: number }[] } }).spec.ports[0]!.nodePort;
  const curl = (q: string): string => spawnSync('curl', ['-s', '--max-time', '5', `http://${nodeIp}:${nodePort}/cgi-bin/guestbook?${q}`], { encoding: 'utf8' }).stdout.trim();
  await until('the frontend answers on the NodePort', () => (curl('cmd=set&value=hello-guestbook') === 'Updated' ? true : undefined), 30000);
  // Read back through the slaves (replication is asynchronous: a moment).
  await until('the message through the slaves', () => (curl('cmd=get') === 'hello-guestbook' ? true : undefined), 30000);
  // A slave reaches the master by its DNS name too.
  const slave = (JSON.parse(kc(['get', 'pods', '-l', 'role=slave', '-o', 'json']).stdout) as { items: { metadata: { name: string } }[] }).items[0]!.metadata.name;
  assert.equal(kc(['exec', slave, '--', 'redis-cli', '-h', 'redis-master.default.svc.cluster.local', 'get', 'messages']).stdout.trim(), 'hello-guestbook');
  for (const d of ['rc/frontend', 'rc/redis-slave', 'rc/redis-master', 'svc/frontend', 'svc/redis-slave', 'svc/redis-master', 'configmap/frontend-cgi']) kc(['delete', d]);
  await until('the guestbook gone', () => (kc(['get', 'pods', '-o', 'name']).stdout.trim() === '' ? true : undefined), 60000);
});

test('kubectl apply of several documents: a Pod of two containers (nginx from Debian\'s package, a small echo server) and a NodePort Service with two ports; both answer', { skip: skip || (fs.existsSync(GUESTBOOK_DEBS) && fs.readdirSync(GUESTBOOK_DEBS).some((f) => f.startsWith('nginx_')) ? false : `needs Debian's nginx package in ${GUESTBOOK_DEBS}`) }, async () => {
  const oci = path.join(cri.work, 'nginx-oci');
  const { execFileSync } = await import('node:child_process');
  execFileSync(path.join(REPO, 'scripts', 'build-debian-image.sh'), [oci, '1', 'nginx', '/usr/sbin/nginx', 'nginx'], { stdio: ['ignore', 'ignore', 'pipe'] });
  assert.equal(cri.engine.mc(['load', '-i', oci, '--name', 'localhost/nginx:1']).status, 0);
  const conf = ['worker_processes 1;', 'pid /tmp/nginx.pid;', 'events { worker_connections 64; }', 'http {', '  access_log off;',
    '  client_body_temp_path /tmp/cb; proxy_temp_path /tmp/pt; fastcgi_temp_path /tmp/ft; uwsgi_temp_path /tmp/ut; scgi_temp_path /tmp/st;',
    '  server { listen 8080; location / { return 200 "nginx says hello\\n"; } }', '}'].join('\n');
  const echo = ['#!/bin/sh', 'echo "Content-Type: text/plain"; echo', 'echo "echo: $QUERY_STRING"'].join('\n');
  const m = `apiVersion: v1
kind: ConfigMap
metadata: {name: two-conf}
data:
  nginx.conf: ${JSON.stringify(conf)}
  echo: ${JSON.stringify(echo)}
---
apiVersion: v1
kind: Pod
metadata: {name: two, labels: {app: two}}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {name: conf, configMap: {name: two-conf, items: [{key: nginx.conf, path: nginx.conf}]}}
  - {name: cgi, configMap: {name: two-conf, items: [{key: echo, path: echo}], defaultMode: 0755}}
  containers:
  - name: nginx
    image: localhost/nginx:1
    imagePullPolicy: IfNotPresent
    command: ["nginx", "-e", "stderr", "-c", "/etc/nginx-conf/nginx.conf", "-g", "daemon off;"]
    ports: [{name: web, containerPort: 8080}]
    volumeMounts: [{name: conf, mountPath: /etc/nginx-conf}]
  - name: echo
    image: localhost/nginx:1
    imagePullPolicy: IfNotPresent
    command: ["httpd", "-f", "-p", "9090", "-h", "/www"]
    ports: [{name: echo, containerPort: 9090}]
    volumeMounts: [{name: cgi, mountPath: /www/cgi-bin}]
---
apiVersion: v1
kind: Service
metadata: {name: two}
spec:
  type: NodePort
  selector: {app: two}
  ports: [{name: web, port: 80, targetPort: web}, {name: echo, port: 90, targetPort: echo}]
`;
  const r = kc(['apply', '-f', '-'], m);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /configmap\/two-conf created\npod\/two created\nservice\/two created/);
  await until('both containers running', () => (/^two\s+2\/2\s+Running/m.test(kc(['get', 'pods', 'two']).stdout) ? true : undefined), 60000);
  const svc = JSON.parse(kc(['get', 'svc', 'two', '-o', 'json']).stdout) as { spec: { ports: { name: string; nodePort: number }[] } };
  const nodeIp = nodeAddress();
  const port = (n: string): number => svc.spec.ports.find((p) => p.name === n)!.nodePort;
  const get = (url: string): string => spawnSync('curl', ['-s', '--max-time', '3', url], { encoding: 'utf8' }).stdout;
  await until('nginx on its node port', () => (get(`http://${nodeIp}:${port('web')}/`) === 'nginx says hello\n' ? true : undefined), 20000);
  try {
    await until('the echo server on the other', () => (get(`http://${nodeIp}:${port('echo')}/cgi-bin/echo?ping`) === 'echo: ping\n' ? true : undefined), 40000);
  } catch (e) {
    // What the pod, the endpoints and the host's rules said, for the report.
    const direct = spawnSync('curl', ['-sv', '--max-time', '3', `http://${nodeIp}:${port('echo')}/cgi-bin/echo?ping`], { encoding: 'utf8' });
    const inside = kc(['exec', 'two', '-c', 'echo', '--', 'wget', '-qO-', 'http://127.0.0.1:9090/cgi-bin/echo?ping']);
    throw new Error(`${(e as Error).message}\ncurl: ${direct.stdout} ${direct.stderr}\ninside: ${inside.stdout} ${inside.stderr}\nendpoints: ${kc(['get', 'endpoints', 'two', '-o', 'json']).stdout}\nlogs: ${kc(['logs', 'two', '-c', 'echo']).stdout}\nrules: ${spawnSync('iptables', ['-t', 'nat', '-S'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes('MYC') || l.includes('HOSTPORT')).join('\n')}`);
  }
  // The two containers share the pod's network: one reaches the other on localhost.
  assert.equal(kc(['exec', 'two', '-c', 'echo', '--', 'wget', '-qO-', 'http://127.0.0.1:8080/']).stdout, 'nginx says hello\n');
  for (const o of ['pod/two', 'svc/two', 'configmap/two-conf']) assert.equal(kc(['delete', o]).status, 0);
});
