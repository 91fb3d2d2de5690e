// kubectl 1.33's typed `create` commands send their object in Kubernetes'
// protobuf (application/vnd.kubernetes.protobuf) and nothing else; kubectl
// 1.27 sends the same commands' objects in JSON. Each command is run with
// both, in two namespaces, and the stored objects must be the same. Then
// an update and a delete in protobuf, as client-go sends them, and what
// the server refuses: a field its schema does not know (400, by
// number and message, nothing stored) and a kind it has no schema for
// (415, as kube-apiserver for custom resources). No node agent runs: the
// objects are only stored (the controllers make ReplicaSets and pending pods).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { kubectl, kubectlMissing, startKube, type KubeServerProcess } from '../helpers/kube';
import { entry, envelope, int, len, msg } from '../helpers/protobuf';

const missing = kubectlMissing('1.33') || kubectlMissing('1.27');

/** A file of every byte value, for a ConfigMap's binaryData (map<string, bytes>). */
const files = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-kube-pb-'));
const BLOB = path.join(files, 'blob.bin');
fs.writeFileSync(BLOB, Buffer.from(Array.from({ length: 256 }, (_, i) => i)));

let shared: KubeServerProcess | null = null;
after(async () => {
  fs.rmSync(files, { recursive: true, force: true });
  if (!shared) return;
  await shared.stop();
  fs.rmSync(shared.dataDir, { recursive: true, force: true });
});
async function server(): Promise<KubeServerProcess> {
  return (shared ??= await startKube());
}

type Obj = { metadata: Record<string, unknown>; spec?: Record<string, unknown>; [k: string]: unknown };

function getJson(k: KubeServerProcess, ns: string, what: string, name: string): Obj {
  const r = kubectl('1.33', k, ['-n', ns, 'get', what, name, '-o', 'json']);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Obj;
}

/**
 * What the command asked for, without what the server assigns per object
 * (uid, revision, times, allocated addresses and ports) or what the
 * controllers write (status). kubectl 1.27's JSON carries the pod
 * template's zero creationTimestamp as null, which protobuf leaves out
 * (and kubectl 1.34's JSON too: apimachinery marks it omitzero).
 */
function asked(o: Obj, name: string): unknown {
  const { uid: _u, resourceVersion: _r, creationTimestamp: _c, namespace: _n, generation: _g, ...meta } = o.metadata;
  const out = JSON.parse(JSON.stringify({ ...o, metadata: meta, status: undefined }).split(`"${name}"`).join('"NAME"')) as Obj;
  const spec = out.spec as { clusterIP?: unknown; clusterIPs?: unknown; ports?: { nodePort?: unknown }[]; template?: { metadata?: Record<string, unknown> } } | undefined;
  if (spec) {
    delete spec.clusterIP;
    delete spec.clusterIPs;
    for (const p of spec.ports ?? []) delete p.nodePort;
    if (spec.template?.metadata?.creationTimestamp === null) delete spec.template.metadata.creationTimestamp;
  }
  return out;
}

const COMMANDS: { name: string; what: string; args: (name: string) => string[]; check: (o: Obj) => void }[] = [
  {
    name: 'web', what: 'deployment',
    args: (n) => ['create', 'deployment', n, '--image', 'localhost/nginx:1', '--replicas', '2', '--port', '80'],
    check: (o) => {
      const spec = o.spec as { replicas: number; template: { spec: { containers: { image: string; ports: { containerPort: number }[] }[]; hostNetwork?: boolean } } };
      assert.equal(spec.replicas, 2);
      assert.equal(spec.template.spec.containers[0]?.image, 'localhost/nginx:1');
      assert.deepEqual(spec.template.spec.containers[0]?.ports.map((p) => p.containerPort), [80]);
      assert.equal(spec.template.spec.hostNetwork, undefined, 'gogo writes hostNetwork: false; JSON omits it');
    },
  },
  { name: 'settings', what: 'configmap', args: (n) => ['create', 'configmap', n, '--from-literal=greeting=hello', '--from-literal=empty='], check: (o) => assert.deepEqual(o.data, { greeting: 'hello', empty: '' }) },
  { name: 'blob', what: 'configmap', args: (n) => ['create', 'configmap', n, `--from-file=blob=${BLOB}`], check: (o) => assert.deepEqual(o.binaryData, { blob: fs.readFileSync(BLOB).toString('base64') }) },
  { name: 'password', what: 'secret', args: (n) => ['create', 'secret', 'generic', n, '--from-literal=password=s3cret'], check: (o) => assert.deepEqual(o.data, { password: Buffer.from('s3cret').toString('base64') }) },
  {
    name: 'np', what: 'service',
    args: (n) => ['create', 'service', 'nodeport', n, '--tcp=80:8080'],
    check: (o) => {
      const spec = o.spec as { type: string; ports: { port: number; targetPort: number; nodePort: number }[] };
      assert.equal(spec.type, 'NodePort');
      assert.deepEqual(spec.ports.map((p) => [p.port, p.targetPort]), [[80, 8080]]);
      assert.ok(spec.ports[0]!.nodePort >= 30000, 'a node port allocated');
    },
  },
  {
    name: 'dns', what: 'service',
    args: (n) => ['create', 'service', 'clusterip', n, '--tcp=53:dns'],
    check: (o) => assert.deepEqual((o.spec as { ports: { targetPort: unknown }[] }).ports.map((p) => p.targetPort), ['dns'], 'IntOrString as a string'),
  },
  {
    name: 'external', what: 'service',
    args: (n) => ['create', 'service', 'externalname', n, '--external-name=db.example.com'],
    check: (o) => assert.deepEqual([(o.spec as { type: string }).type, (o.spec as { externalName: string }).externalName], ['ExternalName', 'db.example.com']),
  },
  { name: 'q', what: 'resourcequota', args: (n) => ['create', 'quota', n, '--hard=pods=3,requests.cpu=500m'], check: (o) => assert.deepEqual((o.spec as { hard: unknown }).hard, { pods: '3', 'requests.cpu': '500m' }) },
  { name: 'robot', what: 'serviceaccount', args: (n) => ['create', 'serviceaccount', n], check: (o) => assert.equal(o.kind, 'ServiceAccount') },
  { name: 'pull', what: 'secret', args: (n) => ['create', 'secret', 'docker-registry', n, '--docker-server=registry.local', '--docker-username=u', '--docker-password=p'], check: (o) => assert.equal(o.type, 'kubernetes.io/dockerconfigjson') },
];

test('kubectl 1.33 creates in protobuf what kubectl 1.27 creates in JSON', { skip: missing }, async () => {
  const k = await server();
  // create namespace: the first protobuf body, and the namespaces the rest go in.
  const ns33 = kubectl('1.33', k, ['create', 'namespace', 'pb33', '-v=8']);
  assert.equal(ns33.status, 0, ns33.stderr);
  assert.match(ns33.stderr, /Content-Type: application\/vnd\.kubernetes\.protobuf/, 'kubectl 1.33 sends protobuf');
  assert.match(ns33.stderr, /Accept: application\/vnd\.kubernetes\.protobuf,application\/json/, 'and accepts the JSON we answer');
  assert.equal(kubectl('1.27', k, ['create', 'namespace', 'pb27']).status, 0);
  assert.deepEqual(asked(getJson(k, 'default', 'namespace', 'pb33'), 'pb33'), asked(getJson(k, 'default', 'namespace', 'pb27'), 'pb27'));
  for (const c of COMMANDS) {
    const name = c.name;
    const made = kubectl('1.33', k, ['-n', 'pb33', ...c.args(name)]);
    assert.equal(made.status, 0, `kubectl 1.33 ${c.args(name).join(' ')}: ${made.stderr}`);
    assert.match(made.stdout, new RegExp(`/${name} created`));
    const json = kubectl('1.27', k, ['-n', 'pb27', ...c.args(name)]);
    assert.equal(json.status, 0, `kubectl 1.27 ${c.args(name).join(' ')}: ${json.stderr}`);
    const o33 = getJson(k, 'pb33', c.what, name);
    c.check(o33);
    assert.deepEqual(asked(o33, name), asked(getJson(k, 'pb27', c.what, name), name), `${c.args(name).join(' ')}: the same object from protobuf and from JSON`);
  }
});

/** A request with the admin's client certificate, as kubectl sends it. */
function send(k: KubeServerProcess, method: string, urlPath: string, contentType: string, body: Buffer): Promise<{ code: number; json: { message: string; reason: string } }> {
  const tls = (f: string): Buffer => fs.readFileSync(path.join(k.dataDir, 'tls', f));
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: k.port, path: urlPath, method, ca: tls('ca.crt'), cert: tls('admin.crt'), key: tls('admin.key'), headers: { 'Content-Type': contentType, 'Content-Length': body.length, Accept: 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ code: res.statusCode ?? 0, json: (text ? JSON.parse(text) : { message: `(no body, ${res.statusCode ?? 0})`, reason: '' }) as { message: string; reason: string } }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const post = (k: KubeServerProcess, urlPath: string, contentType: string, body: Buffer): ReturnType<typeof send> => send(k, 'POST', urlPath, contentType, body);

test('protobuf update and delete; a field the server does not know is refused by number and message (400), a kind it has no schema for gets 415; nothing is stored', { skip: missing }, async () => {
  const k = await server();
  const PB = 'application/vnd.kubernetes.protobuf';
  // A Deployment whose pod spec has an affinity (PodSpec field 18), which the table leaves out.
  const affinity = msg(18, msg(1, msg(1, msg(1, msg(1, len(1, 'zone'), len(2, 'In'), len(3, 'a'))))));
  const deployment = (o: { image?: string; resourceVersion?: string; podSpec?: Buffer[] } = {}): Buffer => envelope('apps/v1', 'Deployment',
    msg(1, len(1, 'affine'), len(6, o.resourceVersion ?? ''), entry(11, 'app', len(2, 'affine'))),
    msg(2, int(1, 1), msg(2, entry(1, 'app', len(2, 'affine'))),
      msg(3, msg(1, entry(11, 'app', len(2, 'affine'))), msg(2, msg(2, len(1, 'c'), len(2, o.image ?? 'localhost/nginx:1')), ...(o.podSpec ?? [])))));
  const refused = await post(k, '/apis/apps/v1/namespaces/default/deployments', PB, deployment({ podSpec: [affinity] }));
  assert.equal(refused.code, 400);
  assert.equal(refused.json.reason, 'BadRequest');
  assert.equal(refused.json.message, 'Deployment in version "v1" cannot be handled as a Deployment: cannot create from protobuf: field 18 of io.k8s.api.core.v1.PodSpec is not understood by this server (at spec.template.spec); send it as JSON (kubectl apply -f does)');
  assert.match(kubectl('1.33', k, ['get', 'deployment', 'affine']).stderr, /not found/);
  // The same body without the affinity is stored.
  assert.equal((await post(k, '/apis/apps/v1/namespaces/default/deployments', PB, deployment())).code, 201);
  assert.equal(kubectl('1.33', k, ['get', 'deployment', 'affine', '-o', 'jsonpath={.spec.template.spec.containers[0].image}']).stdout, 'localhost/nginx:1');
  // An update (PUT, with the resourceVersion read) and a delete with DeleteOptions, both in protobuf, as client-go sends them.
  const rv = kubectl('1.33', k, ['get', 'deployment', 'affine', '-o', 'jsonpath={.metadata.resourceVersion}']).stdout;
  const put = await send(k, 'PUT', '/apis/apps/v1/namespaces/default/deployments/affine', PB, deployment({ image: 'localhost/nginx:2', resourceVersion: rv }));
  assert.equal(put.code, 200, put.json.message);
  assert.equal(kubectl('1.33', k, ['get', 'deployment', 'affine', '-o', 'jsonpath={.spec.template.spec.containers[0].image}']).stdout, 'localhost/nginx:2');
  const del = await send(k, 'DELETE', '/apis/apps/v1/namespaces/default/deployments/affine', PB, envelope('v1', 'DeleteOptions', msg(2, len(2, '1'))));
  assert.equal(del.code, 409, `the precondition on resourceVersion "1" fails: ${del.json.message}`);
  assert.equal((await send(k, 'DELETE', '/apis/apps/v1/namespaces/default/deployments/affine', PB, envelope('v1', 'DeleteOptions', len(4, 'Background')))).code, 200);
  assert.match(kubectl('1.33', k, ['get', 'deployment', 'affine']).stderr, /not found/);
  // Events have no schema here: kube-apiserver's 415 for a media type a resource does not take.
  const event = await post(k, '/api/v1/namespaces/default/events', PB, envelope('v1', 'Event', msg(1, len(1, 'e'))));
  assert.equal(event.code, 415);
  assert.match(event.json.message, /^the body of the request was in an unknown format - accepted media types include: application\/json/);
  const garbage = await post(k, '/api/v1/namespaces/default/configmaps', PB, Buffer.from('{"kind":"ConfigMap"}'));
  assert.equal(garbage.code, 400);
  assert.match(garbage.json.message, /^the object provided is unrecognized \(must be of type ConfigMap\): cannot create from protobuf: the body does not start with the Kubernetes protobuf prefix/);
  // `kubectl create token` posts a protobuf TokenRequest to a subresource not served: 404, as with JSON.
  assert.equal(kubectl('1.33', k, ['create', 'serviceaccount', 'tok']).status, 0);
  assert.match(kubectl('1.33', k, ['create', 'token', 'tok']).stderr, /the server could not find the requested resource/);
});
