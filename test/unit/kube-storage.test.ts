// The orchestrator's storage contract on SQLite (the cases every backend
// passes: revisions, compare-and-swap on resourceVersion, prefix lists,
// watch replaying then following). Also the patch types kubectl sends and
// the selectors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SqliteStore } from '../../orchestrator/storage/sqlite';
import { STORE_CASES } from '../helpers/store-suite';
import { jsonPatch, mergePatch, strategicMergePatch, type Json } from '../../orchestrator/api/patch';
import { matchesLabels, parseFieldSelector, parseLabelSelector } from '../../orchestrator/api/selectors';
import { humanDuration } from '../../orchestrator/api/table';

// The shared store cases (test/helpers/store-suite.ts) on SQLite; etcd runs
// them in test/integration/kube-storage-etcd.test.ts.
for (const [name, run] of STORE_CASES) test(`sqlite: ${name}`, () => run(() => new SqliteStore(':memory:')));

test('merge patch (RFC 7386): objects merge, null deletes, lists replace', () => {
  assert.deepEqual(mergePatch({ a: 1, b: { c: 2, d: 3 }, l: [1, 2] }, { b: { c: null, e: 4 }, l: [3] }), { a: 1, b: { d: 3, e: 4 }, l: [3] });
});

test('strategic merge patch: containers merge by name, ports by containerPort, $patch: delete', () => {
  const pod = { spec: { containers: [{ name: 'a', image: 'x:1', ports: [{ containerPort: 80 }] }, { name: 'b', image: 'y:1' }] } };
  const out = strategicMergePatch(pod as unknown as Json, { spec: { containers: [{ name: 'a', image: 'x:2', ports: [{ containerPort: 443 }] }, { name: 'b', $patch: 'delete' }, { name: 'c', image: 'z' }] } }) as unknown as typeof pod;
  assert.deepEqual(out.spec.containers.map((c) => `${c.name}=${c.image}`), ['a=x:2', 'c=z']);
  assert.deepEqual(out.spec.containers[0]!.ports, [{ containerPort: 80 }, { containerPort: 443 }]);
  assert.deepEqual(strategicMergePatch({ metadata: { labels: { a: '1', b: '2' } } }, { metadata: { labels: { b: null } } }), { metadata: { labels: { a: '1' } } });
});

test('JSON patch (RFC 6902): add, replace, remove, test', () => {
  assert.deepEqual(jsonPatch({ spec: { replicas: 1, l: [1] } }, [{ op: 'replace', path: '/spec/replicas', value: 3 }, { op: 'add', path: '/spec/l/-', value: 2 }, { op: 'remove', path: '/spec/l/0' }]), { spec: { replicas: 3, l: [2] } });
  assert.throws(() => jsonPatch({ a: 1 }, [{ op: 'test', path: '/a', value: 2 }]), /test failed/);
});

test('label and field selectors', () => {
  const r = parseLabelSelector('app=web,tier!=db,env in (prod, stage),!legacy,release');
  assert.ok(matchesLabels(r, { app: 'web', env: 'prod', release: '1' }));
  assert.ok(!matchesLabels(r, { app: 'web', env: 'dev', release: '1' }));
  assert.ok(!matchesLabels(r, { app: 'web', env: 'prod', release: '1', legacy: 'y' }));
  assert.throws(() => parseLabelSelector('app=(x'), /unable to parse/);
  const f = parseFieldSelector('metadata.name=web,status.phase!=Running');
  assert.ok(f({ metadata: { name: 'web' }, status: { phase: 'Pending' } }));
  assert.ok(!f({ metadata: { name: 'web' }, status: { phase: 'Running' } }));
});

test('AGE as kubectl prints it', () => {
  assert.equal(humanDuration(45_000), '45s');
  assert.equal(humanDuration(185_000), '3m5s');
  assert.equal(humanDuration(3 * 3600_000 + 60_000), '3h1m');
  assert.equal(humanDuration(50 * 3600_000), '2d2h');
});
