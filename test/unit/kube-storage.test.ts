// The orchestrator's storage contract, as one suite any backend must pass
// (SQLite now; etcd will run the same): revisions, compare-and-swap on
// resourceVersion, prefix lists, and watch replaying then following. Also
// the patch types kubectl sends and the selectors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SqliteStore } from '../../orchestrator/storage/sqlite';
import { REVISION, StoreError, type Store, type WatchEvent } from '../../orchestrator/storage/types';
import { jsonPatch, mergePatch, strategicMergePatch, type Json } from '../../orchestrator/api/patch';
import { matchesLabels, parseFieldSelector, parseLabelSelector } from '../../orchestrator/api/selectors';
import { humanDuration } from '../../orchestrator/api/table';

function storeSuite(name: string, make: () => Store): void {
  test(`${name}: create, get, update with compare-and-swap, delete; revisions only grow`, () => {
    const s = make();
    const a = s.create('/r/pods/ns/a', `{"rv":${REVISION}}`);
    assert.equal(a.value, `{"rv":"${a.revision}"}`, 'the revision is written into the value');
    assert.throws(() => s.create('/r/pods/ns/a', '{}'), (e: unknown) => e instanceof StoreError && e.code === 'AlreadyExists');
    const b = s.update('/r/pods/ns/a', '{"v":2}', a.revision);
    assert.ok(b.revision > a.revision);
    assert.equal(b.createRevision, a.revision);
    assert.throws(() => s.update('/r/pods/ns/a', '{"v":3}', a.revision), (e: unknown) => e instanceof StoreError && e.code === 'Conflict');
    assert.throws(() => s.update('/r/pods/ns/missing', '{}'), (e: unknown) => e instanceof StoreError && e.code === 'NotFound');
    assert.equal(s.get('/r/pods/ns/a')?.value, '{"v":2}');
    const d = s.delete('/r/pods/ns/a', b.revision);
    assert.equal(d.value, '{"v":2}', 'delete returns the last value');
    assert.equal(s.get('/r/pods/ns/a'), null);
    assert.ok(s.revision() > b.revision);
    s.close();
  });

  test(`${name}: list by prefix, in key order, with the revision it was read at`, () => {
    const s = make();
    for (const k of ['/r/pods/b/x', '/r/pods/a/y', '/r/pods/a/x', '/r/services/a/x']) s.create(k, '{}');
    const all = s.list('/r/pods/');
    assert.deepEqual(all.items.map((i) => i.key), ['/r/pods/a/x', '/r/pods/a/y', '/r/pods/b/x']);
    assert.equal(all.revision, s.revision());
    assert.deepEqual(s.list('/r/pods/a/').items.map((i) => i.key), ['/r/pods/a/x', '/r/pods/a/y']);
    s.close();
  });

  test(`${name}: watch replays what came after a revision, then follows, for its prefix only`, () => {
    const s = make();
    const first = s.create('/r/pods/a/1', '{}');
    s.create('/r/pods/a/2', '{}');
    const seen: WatchEvent[] = [];
    const cancel = s.watch('/r/pods/', first.revision, (e) => seen.push(e));
    s.create('/r/services/a/x', '{}');
    s.update('/r/pods/a/1', '{"v":1}');
    s.delete('/r/pods/a/2');
    cancel();
    s.create('/r/pods/a/3', '{}');
    assert.deepEqual(seen.map((e) => `${e.type} ${e.key}`), ['ADDED /r/pods/a/2', 'MODIFIED /r/pods/a/1', 'DELETED /r/pods/a/2']);
    assert.ok(seen.every((e, i) => i === 0 || e.revision > (seen[i - 1] as WatchEvent).revision));
    s.close();
  });
}

storeSuite('sqlite', () => new SqliteStore(':memory:'));

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
