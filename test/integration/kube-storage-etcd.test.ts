// The orchestrator's Store on a real etcd (Debian's etcd-server 3.4): the
// same cases as SQLite's (test/helpers/store-suite.ts), then what only a
// shared etcd has: another server's writes reaching this one's watch,
// compare-and-swap across servers, keys under the prefix, a watch from
// before this server's window (410), and an endpoint that does not answer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { EtcdStore } from '../../orchestrator/storage/etcd';
import { REVISION, StoreError, type WatchEvent } from '../../orchestrator/storage/types';
import { STORE_CASES } from '../helpers/store-suite';
import { etcdMissing, startEtcd } from '../helpers/etcd';
import { freePort } from '../helpers/registry';

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('etcd store', { skip: etcdMissing() }, async (t) => {
  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  let n = 0;
  // each case on its own prefix: a fresh keyspace, as SQLite's :memory:
  for (const [name, run] of STORE_CASES) await t.test(name, () => run(() => new EtcdStore(etcd.endpoint, { prefix: `/case${n++}` })));

  await t.test('two servers on one etcd: writes of one reach the other\'s watch, compare-and-swap holds across them', async () => {
    const a = new EtcdStore(etcd.endpoint, { prefix: '/shared' });
    const b = new EtcdStore(etcd.endpoint, { prefix: '/shared' });
    try {
      const seen: WatchEvent[] = [];
      b.watch('/r/pods/', b.revision(), (e) => seen.push(e));
      const x = a.create('/r/pods/ns/x', `{"rv":${REVISION}}`);
      a.update('/r/pods/ns/x', '{"v":2}', x.revision);
      a.create('/r/services/ns/x', '{}');
      a.delete('/r/pods/ns/x');
      await until('b to see a\'s writes', () => seen.length >= 3);
      assert.deepEqual(seen.map((e) => `${e.type} ${e.key}`), ['ADDED /r/pods/ns/x', 'MODIFIED /r/pods/ns/x', 'DELETED /r/pods/ns/x']);
      assert.equal((seen[0] as WatchEvent).value, `{"rv":"${x.revision}"}`);
      const y = b.create('/r/pods/ns/y', '{}');
      a.update('/r/pods/ns/y', '{"by":"a"}', y.revision);
      assert.throws(() => b.update('/r/pods/ns/y', '{"by":"b"}', y.revision), (e: unknown) => e instanceof StoreError && e.code === 'Conflict', 'b\'s stale write loses');
      assert.equal(b.get('/r/pods/ns/y')?.value, '{"by":"a"}');
      // the keys are under the prefix in etcd, as etcdctl would list them
      const root = new EtcdStore(etcd.endpoint, { prefix: '' });
      try {
        assert.deepEqual(root.list('/shared/').items.map((i) => i.key), ['/shared/r/pods/ns/y', '/shared/r/services/ns/x']);
      } finally {
        root.close();
      }
    } finally {
      a.close();
      b.close();
    }
  });

  await t.test('a watch from before the store\'s window is Gone (410: the client lists again)', () => {
    const a = new EtcdStore(etcd.endpoint, { prefix: '/window' });
    const first = a.create('/r/pods/ns/a', '{}');
    a.close();
    const b = new EtcdStore(etcd.endpoint, { prefix: '/window' });
    try {
      assert.throws(() => b.watch('/r/pods/', first.revision - 1, () => undefined), (e: unknown) => e instanceof StoreError && e.code === 'Gone');
      assert.equal(b.get('/r/pods/ns/a')?.revision, first.revision, 'the object is still there');
    } finally {
      b.close();
    }
  });

  await t.test('cut off while another writer changes keys and etcd compacts: the watch starts again from a snapshot, the cache follows it and the gap reaches the watchers as events', async () => {
    // a's etcd connection goes through a proxy the test can cut: a process of its own, since the store
    // blocks this thread while it waits for etcd
    const target = Number(new URL(etcd.endpoint).port);
    const port = await freePort();
    const script = `const net = require('net'); net.createServer((c) => { const u = net.connect(${target}, '127.0.0.1'); c.on('error', () => u.destroy()); u.on('error', () => c.destroy()); c.pipe(u).pipe(c); }).listen(${port}, '127.0.0.1', () => process.stdout.write('up\\n'));`;
    let proxy: ChildProcess | null = null;
    const open = async (): Promise<void> => {
      const p = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      proxy = p;
      await new Promise<void>((resolve) => p.stdout?.once('data', () => resolve()));
    };
    const cut = async (): Promise<void> => {
      const p = proxy as ChildProcess | null;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        p.once('exit', () => resolve());
        p.kill('SIGKILL');
      });
    };
    await open();
    const a = new EtcdStore(`http://127.0.0.1:${port}`, { prefix: '/gap' });
    const b = new EtcdStore(etcd.endpoint, { prefix: '/gap', keep: 2 });
    try {
      const stays = a.create('/r/pods/ns/stays', '{"v":1}');
      const goes = a.create('/r/pods/ns/goes', '{}');
      const seen: WatchEvent[] = [];
      a.watch('/r/pods/', a.revision(), (e) => seen.push(e));
      await cut();
      b.update('/r/pods/ns/stays', '{"v":2}', stays.revision);
      b.delete('/r/pods/ns/goes', goes.revision);
      b.create('/r/pods/ns/new', '{}');
      for (let i = 0; i < 5; i++) b.update('/r/pods/ns/new', `{"i":${i}}`); // b compacts its history as it writes (keep: 2)
      await open();
      await until('a to see the gap', () => seen.length >= 3, 30000);
      assert.deepEqual(seen.map((e) => `${e.type} ${e.key}`).sort(), ['ADDED /r/pods/ns/new', 'DELETED /r/pods/ns/goes', 'MODIFIED /r/pods/ns/stays']);
      assert.equal(a.get('/r/pods/ns/stays')?.value, '{"v":2}');
      assert.equal(a.get('/r/pods/ns/goes'), null);
      assert.equal(a.get('/r/pods/ns/new')?.value, '{"i":4}');
      assert.deepEqual(a.list('/r/pods/').items.map((i) => i.key), ['/r/pods/ns/new', '/r/pods/ns/stays']);
    } finally {
      b.close();
      a.close();
      await cut();
    }
  });

  await t.test('history is compacted in etcd and in the watch window: a watch from before it is Gone, one within it replays', async () => {
    const s = new EtcdStore(etcd.endpoint, { prefix: '/compact', keep: 20 });
    const { Etcd3 } = require('etcd3') as typeof import('etcd3');
    const raw = new Etcd3({ hosts: etcd.endpoint });
    try {
      const first = s.create('/r/pods/ns/a', '{}');
      let last = first;
      for (let i = 1; i <= 40; i++) last = s.update('/r/pods/ns/a', `{"i":${i}}`);
      assert.throws(() => s.watch('/r/pods/', first.revision, () => undefined), (e: unknown) => e instanceof StoreError && e.code === 'Gone');
      const seen: WatchEvent[] = [];
      s.watch('/r/pods/', last.revision - 10, (e) => seen.push(e))();
      assert.deepEqual(seen.map((e) => e.value), Array.from({ length: 10 }, (_, i) => `{"i":${31 + i}}`));
      // etcd itself no longer has the old revisions (the compaction is sent without waiting)
      let compacted = '';
      await until('etcd to compact', () => {
        void raw.kv.range({ key: Buffer.from('/compact/r/pods/ns/a'), revision: first.revision }).then(() => undefined, (e: Error) => (compacted = e.message));
        return compacted !== '';
      });
      assert.match(compacted, /compacted/);
    } finally {
      raw.close();
      s.close();
    }
  });

  await t.test('an endpoint that does not answer fails at the start, naming it; a bad one too', async () => {
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const t0 = Date.now();
    assert.throws(() => new EtcdStore(nobody, { timeoutMs: 1000 }), (e: unknown) => e instanceof Error && e.message.includes(`cannot use etcd at ${nobody}`));
    assert.ok(Date.now() - t0 < 10000, `it gave up in ${Date.now() - t0} ms`);
    assert.throws(() => new EtcdStore('etcd.example:2379'), /datastore endpoint "etcd.example:2379": want etcd's client URL, http:\/\/HOST:PORT/);
  });
});
