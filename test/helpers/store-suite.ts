// The orchestrator's storage contract, as one suite every backend passes
// (SQLite in test/unit/kube-storage.test.ts, etcd in
// test/integration/kube-storage-etcd.test.ts): revisions, compare-and-swap
// on resourceVersion, prefix lists, and watch replaying then following.

import assert from 'node:assert/strict';
import { REVISION, StoreError, type Store, type WatchEvent } from '../../orchestrator/storage/types';

/** A case: its name and its body, on a fresh store from `make`. */
export type StoreCase = [name: string, run: (make: () => Store) => void];

export const STORE_CASES: StoreCase[] = [
  ['create, get, update with compare-and-swap, delete; revisions only grow', (make) => {
    const s = make();
    const a = s.create('/r/pods/ns/a', `{"rv":${REVISION}}`);
    assert.equal(a.value, `{"rv":"${a.revision}"}`, 'the revision is written into the value');
    assert.equal(s.get('/r/pods/ns/a')?.value, a.value, 'and read back with it');
    assert.throws(() => s.create('/r/pods/ns/a', '{}'), (e: unknown) => e instanceof StoreError && e.code === 'AlreadyExists');
    const b = s.update('/r/pods/ns/a', '{"v":2}', a.revision);
    assert.ok(b.revision > a.revision);
    assert.equal(b.createRevision, a.revision);
    assert.throws(() => s.update('/r/pods/ns/a', '{"v":3}', a.revision), (e: unknown) => e instanceof StoreError && e.code === 'Conflict');
    assert.throws(() => s.update('/r/pods/ns/missing', '{}'), (e: unknown) => e instanceof StoreError && e.code === 'NotFound');
    assert.throws(() => s.update('/r/pods/ns/missing', '{}', a.revision), (e: unknown) => e instanceof StoreError && e.code === 'NotFound');
    assert.equal(s.get('/r/pods/ns/a')?.value, '{"v":2}');
    assert.throws(() => s.delete('/r/pods/ns/a', a.revision), (e: unknown) => e instanceof StoreError && e.code === 'Conflict');
    const d = s.delete('/r/pods/ns/a', b.revision);
    assert.equal(d.value, '{"v":2}', 'delete returns the last value');
    assert.equal(s.get('/r/pods/ns/a'), null);
    assert.throws(() => s.delete('/r/pods/ns/a'), (e: unknown) => e instanceof StoreError && e.code === 'NotFound');
    assert.ok(s.revision() > b.revision);
    const again = s.create('/r/pods/ns/a', `{"rv":${REVISION}}`);
    assert.equal(again.createRevision, again.revision, 'a key made again starts a new life');
    const u = s.update('/r/pods/ns/a', `{"rv":${REVISION}}`);
    assert.equal(u.value, `{"rv":"${u.revision}"}`, 'an update writes its own revision');
    assert.equal(s.get('/r/pods/ns/a')?.revision, u.revision);
    s.close();
  }],

  ['list by prefix, in key order, with the revision it was read at', (make) => {
    const s = make();
    for (const k of ['/r/pods/b/x', '/r/pods/a/y', '/r/pods/a/x', '/r/services/a/x']) s.create(k, '{}');
    const all = s.list('/r/pods/');
    assert.deepEqual(all.items.map((i) => i.key), ['/r/pods/a/x', '/r/pods/a/y', '/r/pods/b/x']);
    assert.equal(all.revision, s.revision());
    assert.deepEqual(s.list('/r/pods/a/').items.map((i) => i.key), ['/r/pods/a/x', '/r/pods/a/y']);
    assert.deepEqual(s.list('/r/none/').items, []);
    s.close();
  }],

  ['watch replays what came after a revision, then follows, for its prefix only', (make) => {
    const s = make();
    const first = s.create('/r/pods/a/1', '{}');
    s.create('/r/pods/a/2', '{"v":2}');
    const seen: WatchEvent[] = [];
    const cancel = s.watch('/r/pods/', first.revision, (e) => seen.push(e));
    s.create('/r/services/a/x', '{}');
    s.update('/r/pods/a/1', `{"rv":${REVISION}}`);
    s.delete('/r/pods/a/2');
    cancel();
    s.create('/r/pods/a/3', '{}');
    assert.deepEqual(seen.map((e) => `${e.type} ${e.key}`), ['ADDED /r/pods/a/2', 'MODIFIED /r/pods/a/1', 'DELETED /r/pods/a/2']);
    assert.ok(seen.every((e, i) => i === 0 || e.revision > (seen[i - 1] as WatchEvent).revision));
    const modified = seen[1] as WatchEvent;
    assert.equal(modified.value, `{"rv":"${modified.revision}"}`, 'an event carries the value with its revision');
    assert.equal((seen[2] as WatchEvent).value, '{"v":2}', 'DELETED carries the last value');
    s.close();
  }],
];
