// Kubernetes' protobuf bodies decoded to the JSON kubectl would have sent
// (orchestrator/api/protobuf.ts, protobuf-schema.ts), from wire bytes
// built by hand here: varints, nested messages, maps, bytes, repeated
// fields packed or not, zero values dropped where JSON omits them, and a
// field the table does not know refused by number and message.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtobufError, isZero, readEnvelope, readFields, readVarint, toInt } from '../../orchestrator/api/protobuf';
import { decodeObject, SCHEMA } from '../../orchestrator/api/protobuf-schema';
import { entry, envelope, int, len, msg, tag, varint } from '../helpers/protobuf';

const decode = (body: Buffer): Record<string, unknown> | null => decodeObject(readEnvelope(body));

test('varints: one byte, several, 64 bits, negative int32 sign-extended to ten bytes; truncated or too long refused', () => {
  assert.deepEqual(readVarint(Buffer.from([0x01]), 0), [1n, 1]);
  assert.deepEqual(readVarint(Buffer.from([0xac, 0x02]), 0), [300n, 2]);
  assert.deepEqual(readVarint(varint(2n ** 64n - 1n), 0), [2n ** 64n - 1n, 10]);
  assert.equal(varint(-1).length, 10);
  assert.equal(toInt(readVarint(varint(-1), 0)[0], ''), -1);
  assert.equal(toInt(readVarint(varint(-62135596800), 0)[0], ''), -62135596800);
  assert.throws(() => readVarint(Buffer.from([0x80, 0x80]), 0), /truncated varint/);
  assert.throws(() => readVarint(Buffer.alloc(11, 0x80), 0), /longer than 10 bytes/);
  assert.throws(() => toInt(2n ** 62n, 'x'), /out of JSON's safe range/);
});

test('wire fields: varint, fixed32, fixed64, length-delimited; groups and overlong lengths refused', () => {
  const fixed32 = Buffer.concat([tag(3, 5), Buffer.from([1, 0, 0, 0])]);
  const fixed64 = Buffer.concat([tag(4, 1), Buffer.from([2, 0, 0, 0, 0, 0, 0, 0])]);
  const f = readFields(Buffer.concat([int(1, 150), len(2, 'hi'), fixed32, fixed64]));
  assert.deepEqual(f.map((x) => [x.no, x.wire, x.value, x.bytes.toString()]), [[1, 0, 150n, ''], [2, 2, 0n, 'hi'], [3, 5, 1n, ''], [4, 1, 2n, '']]);
  assert.throws(() => readFields(Buffer.concat([tag(1, 3)])), /wire type 3/);
  assert.throws(() => readFields(Buffer.concat([tag(1, 2), varint(5), Buffer.from('ab')])), /longer \(5 bytes\)/);
  assert.throws(() => readFields(Buffer.from([0x01, 0x00])), (e: unknown) => e instanceof ProtobufError && /invalid field number 0/.test(e.message)); // field 0, fixed64 wire
  // Zero: 0, empty, and a message of zero fields only; anything else is a value.
  assert.ok(isZero(readFields(int(9, 0))[0]!));
  assert.ok(isZero(readFields(len(9, ''))[0]!));
  assert.ok(isZero(readFields(msg(9, int(1, 0), len(2, ''), msg(3)))[0]!));
  assert.ok(!isZero(readFields(len(9, 'x'))[0]!));
  assert.ok(!isZero(readFields(msg(9, int(1, 0), int(2, 7)))[0]!));
  let nested = msg(1, int(1, 0));
  for (let i = 0; i < 1000; i++) nested = msg(1, nested);
  assert.equal(isZero(readFields(nested)[0]!), false, 'nesting without end is not taken apart to the bottom');
});

test('the envelope: magic, runtime.Unknown with typeMeta and raw; no magic is refused', () => {
  const e = readEnvelope(envelope('apps/v1', 'Deployment', len(1, 'x')));
  assert.equal(e.apiVersion, 'apps/v1');
  assert.equal(e.kind, 'Deployment');
  assert.deepEqual(e.raw, len(1, 'x'));
  assert.throws(() => readEnvelope(Buffer.from('{"kind":"Pod"}')), /does not start with the Kubernetes protobuf prefix/);
  assert.equal(decode(envelope('batch/v1', 'Job')), null, 'a kind not in the table: the server answers 415');
  assert.equal(decode(envelope('v1', 'Node')), null);
});

// The Deployment `kubectl create deployment web --image=nginx:1 --replicas=2 --port=80` sends, as gogo writes
// it: every non-pointer field, empty or not (creationTimestamp, restartPolicy "", hostNetwork false, status zeros).
const objectMeta = (no: number, ...extra: Buffer[]): Buffer => msg(no, ...extra, len(8, ''));
const deployment = (podSpecExtra: Buffer[] = []): Buffer =>
  envelope('apps/v1', 'Deployment',
    objectMeta(1, len(1, 'web'), len(2, ''), len(3, ''), int(7, 0), entry(11, 'app', len(2, 'web'))),
    msg(2,
      int(1, 2),
      msg(2, entry(1, 'app', len(2, 'web'))),
      msg(3,
        objectMeta(1, len(1, ''), entry(11, 'app', len(2, 'web'))),
        msg(2,
          msg(2, len(1, 'nginx'), len(2, 'nginx:1'), len(5, ''), msg(6, len(1, ''), int(2, 0), int(3, 80), len(4, '')), msg(8), len(13, ''), len(14, ''), int(16, 0), int(17, 0), int(18, 0)),
          len(3, ''), len(6, ''), len(8, ''), int(11, 0), int(12, 0), int(13, 0), len(16, ''),
          ...podSpecExtra)),
      msg(4, len(1, '')),
      int(5, 0), int(7, 0)),
    msg(3, int(1, 0), int(2, 0), int(3, 0), int(4, 0), int(5, 0), int(7, 0)));

test('a Deployment as kubectl create deployment sends it: the JSON kubectl 1.27 sends, zero values dropped', () => {
  assert.deepEqual(decode(deployment()), {
    kind: 'Deployment',
    apiVersion: 'apps/v1',
    metadata: { name: 'web', labels: { app: 'web' } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { containers: [{ name: 'nginx', image: 'nginx:1', ports: [{ containerPort: 80 }], resources: {} }] },
      },
      strategy: {},
    },
    status: {},
  });
});

test('a field the table does not know, with a value, is refused by number, message and place; empty, it is ignored', () => {
  const affinity = msg(18, msg(1, msg(1, msg(1, msg(1, len(1, 'zone'), len(2, 'In'))))));
  assert.throws(() => decode(deployment([affinity])), (e: unknown) =>
    e instanceof ProtobufError && e.unknownField && e.message === 'field 18 of io.k8s.api.core.v1.PodSpec is not understood by this server' && e.path === 'spec.template.spec');
  const deep = msg(14, msg(8, len(1, 'x'))); // securityContext.windowsOptions
  assert.throws(() => decode(deployment([deep])), (e: unknown) =>
    e instanceof ProtobufError && /^field 8 of io.k8s.api.core.v1.PodSecurityContext is not understood/.test(e.message) && e.path === 'spec.template.spec.securityContext');
  // A newer client's empty non-pointer fields (a string, a bool, a struct of zeros) lose nothing.
  assert.deepEqual(decode(deployment([len(41, ''), int(99, 0), msg(98, int(1, 0), len(2, ''))])), decode(deployment()));
  // A known field with the wrong wire type is a malformed body, not an unknown field.
  assert.throws(() => decode(deployment([len(11, 'yes')])), (e: unknown) => e instanceof ProtobufError && !e.unknownField && /bool was sent with wire type 2/.test(e.message));
});

test('maps of strings and of bytes: ConfigMap data and binaryData, Secret data in base64, type kept', () => {
  const cm = decode(envelope('v1', 'ConfigMap', objectMeta(1, len(1, 'c')), entry(2, 'a', len(2, 'b')), entry(2, 'empty', Buffer.alloc(0)), entry(3, 'bin', len(2, Buffer.from([0, 1, 255])))));
  const proto = decode(envelope('v1', 'ConfigMap', objectMeta(1, len(1, 'c')), entry(2, '__proto__', len(2, 'x')))) as { data: Record<string, string> };
  assert.equal(Object.getPrototypeOf(proto.data), Object.prototype);
  assert.equal(JSON.stringify(proto.data), '{"__proto__":"x"}', 'a key like any other');
  assert.deepEqual(cm, { kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'c' }, data: { a: 'b', empty: '' }, binaryData: { bin: 'AAH/' } });
  const secret = decode(envelope('v1', 'Secret', objectMeta(1, len(1, 's')), entry(2, 'a', len(2, 'b')), len(3, 'Opaque')));
  assert.deepEqual(secret, { kind: 'Secret', apiVersion: 'v1', metadata: { name: 's' }, data: { a: 'Yg==' }, type: 'Opaque' });
  const quota = decode(envelope('v1', 'ResourceQuota', objectMeta(1, len(1, 'q')), msg(2, entry(1, 'pods', msg(2, len(1, '3'))), entry(1, 'requests.cpu', msg(2, len(1, '500m')))), msg(3)));
  assert.deepEqual(quota, { kind: 'ResourceQuota', apiVersion: 'v1', metadata: { name: 'q' }, spec: { hard: { pods: '3', 'requests.cpu': '500m' } }, status: {} });
});

test('a Service: IntOrString as int or string, port 0 kept (no omitempty), nodePort 0 dropped, empty status.loadBalancer kept', () => {
  const svc = decode(envelope('v1', 'Service', objectMeta(1, len(1, 'np')),
    msg(2,
      msg(1, len(1, '80-8080'), len(2, 'TCP'), int(3, 80), msg(4, int(1, 0), int(2, 8080), len(3, '')), int(5, 0)),
      msg(1, len(1, 'web'), len(2, 'TCP'), int(3, 0), msg(4, int(1, 1), int(2, 0), len(3, 'http')), int(5, 30080)),
      entry(2, 'app', len(2, 'np')), len(3, ''), len(4, 'NodePort'), int(13, 0)),
    msg(3, msg(1))));
  assert.deepEqual(svc, {
    kind: 'Service', apiVersion: 'v1', metadata: { name: 'np' },
    spec: {
      ports: [{ name: '80-8080', protocol: 'TCP', port: 80, targetPort: 8080 }, { name: 'web', protocol: 'TCP', port: 0, targetPort: 'http', nodePort: 30080 }],
      selector: { app: 'np' }, type: 'NodePort',
    },
    status: { loadBalancer: {} },
  });
});

test('repeated fields packed or not, pointers kept at zero, inline structs, times in RFC 3339', () => {
  const pod = decode(envelope('v1', 'Pod',
    msg(1, len(1, 'p'), msg(8, int(1, 1767225600)), msg(13, len(1, 'ReplicaSet'), len(3, 'rs'), len(4, 'u-1'), len(5, 'apps/v1'), int(6, 1)), len(14, 'a'), len(14, 'b')),
    msg(2,
      msg(1, len(1, 'cfg'), msg(2, msg(19, msg(1, len(1, 'settings')), int(3, 420)))),
      msg(2, len(1, 'c'), len(3, 'sh'), len(3, '-c'), msg(10, msg(1, msg(2, len(1, '/healthz'), msg(2, int(1, 0), int(2, 8080)))), int(2, 0), int(4, 5)),
        msg(9, len(1, 'cfg'), int(2, 1), len(3, '/etc/cfg'))),
      int(4, 0),
      msg(14, len(4, Buffer.concat([varint(1000), varint(2000)])), int(4, 3000), int(2, 0))),
    msg(3, len(1, ''))));
  assert.deepEqual(pod, {
    kind: 'Pod', apiVersion: 'v1',
    metadata: {
      name: 'p', creationTimestamp: '2026-01-01T00:00:00Z',
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'u-1', controller: true }],
      finalizers: ['a', 'b'],
    },
    spec: {
      volumes: [{ name: 'cfg', configMap: { name: 'settings', defaultMode: 420 } }],
      containers: [{
        name: 'c', command: ['sh', '-c'],
        volumeMounts: [{ name: 'cfg', readOnly: true, mountPath: '/etc/cfg' }],
        livenessProbe: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 5 },
      }],
      terminationGracePeriodSeconds: 0,
      securityContext: { runAsUser: 0, supplementalGroups: [1000, 2000, 3000] },
    },
    status: {},
  });
  const deleting = decode(envelope('v1', 'Pod', msg(1, len(1, 'p'), msg(8, int(1, -62135596800)), msg(9, int(1, 1767225600), int(2, 999)))));
  assert.deepEqual(deleting, { kind: 'Pod', apiVersion: 'v1', metadata: { name: 'p', deletionTimestamp: '2026-01-01T00:00:00Z' } }, "Go's zero time, written out, is no time; nanoseconds dropped as metav1.Time does");
  assert.throws(() => decode(envelope('v1', 'Pod', msg(1, msg(8, int(1, 2 ** 50))))), /out of RFC 3339's range/);
  assert.deepEqual(decode(envelope('apps/v1', 'Deployment', objectMeta(1, len(1, 'zero')), msg(2, int(1, 0)))), { kind: 'Deployment', apiVersion: 'apps/v1', metadata: { name: 'zero' }, spec: { replicas: 0 } }, 'replicas is a pointer: 0 is a value');
});

test('the schema table names only messages it defines, and every top-level kind decodes an empty body', () => {
  for (const m of SCHEMA.values()) assert.match(m.name, /^io\.k8s\.(api|apimachinery)\./);
  for (const [apiVersion, kind] of [['v1', 'Namespace'], ['v1', 'ServiceAccount'], ['v1', 'LimitRange'], ['v1', 'Endpoints'], ['v1', 'ReplicationController'], ['apps/v1', 'ReplicaSet'], ['apps/v1', 'StatefulSet'], ['autoscaling/v1', 'Scale'], ['meta.k8s.io/v1', 'DeleteOptions']] as const) {
    assert.deepEqual(decode(envelope(apiVersion, kind)), { kind, apiVersion });
  }
  assert.deepEqual(decode(envelope('v1', 'DeleteOptions', int(1, 0), len(4, 'Orphan'))), { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, propagationPolicy: 'Orphan' });
});
