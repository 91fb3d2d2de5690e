// Robustness: the runtime killed with SIGKILL at each step of create, then
// `delete --force`, leaves nothing; 20 containers created and deleted in
// parallel all succeed and leak nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { cgroupDirsNamed, containerSuite, leftovers, mc, mcAsync, mountsUnder } from '../helpers/bundle';

const { root, bundle } = containerSuite('robust');

function initsOf(id: string): number[] {
  // The init is a node process whose state dir is under our root.
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cg = fs.readFileSync(`/proc/${p}/cgroup`, 'utf8');
      if (cg.includes(`/${id}\n`) || cg.includes(`/${id}/`)) out.push(Number(p));
    } catch {
      // gone
    }
  }
  return out;
}

for (const point of ['state-dir', 'cgroup', 'spawned', 'plan-sent', 'hooks', 'created']) {
  test(`SIGKILL of the runtime at "${point}", then delete --force, leaves nothing`, () => {
    const id = `crash-${point}-${process.pid}`;
    const b = bundle((s) => {
      s.linux!.cgroupsPath = `/mycontainer-test/${id}`;
      s.linux!.resources = { ...s.linux!.resources, pids: { limit: 50 } };
    }, { args: ['sleep', '100'] });
    const r = mc(root, ['create', '--bundle', b, id], { env: { MYCONTAINER_CRASH_AT: point } });
    assert.equal(r.status, null, `the runtime was killed (${r.stderr})`);
    const del = mc(root, ['delete', '--force', id]);
    assert.equal(del.status, 0, del.stderr);
    assert.deepEqual(leftovers(root), []);
    assert.deepEqual(cgroupDirsNamed(id), []);
    // The init exits by itself when the runtime dies before "created"; give it a moment.
    const end = Date.now() + 5000;
    while (initsOf(id).length > 0 && Date.now() < end) execFileSync('sleep', ['0.05']);
    assert.deepEqual(initsOf(id), []);
    // Only our paths: other test files mount and unmount elsewhere meanwhile.
    assert.deepEqual([...mountsUnder(b), ...mountsUnder(root)], []);
  });
}

test('20 containers created, started and deleted in parallel', async () => {
  const b = bundle(() => {}, { args: ['sleep', '100'] });
  const ids = Array.from({ length: 20 }, (_, i) => `par${i}-${process.pid}`);
  const created = await Promise.all(ids.map((id) => mcAsync(root, ['create', '--bundle', b, id])));
  created.forEach((r, i) => assert.equal(r.status, 0, `${ids[i]}: ${r.stderr}`));
  const started = await Promise.all(ids.map((id) => mcAsync(root, ['start', id])));
  started.forEach((r, i) => assert.equal(r.status, 0, `${ids[i]}: ${r.stderr}`));
  const list = JSON.parse(mc(root, ['list', '--format', 'json']).stdout) as { id: string; status: string }[];
  assert.equal(list.filter((c) => c.status === 'running').length, 20);
  const deleted = await Promise.all(ids.map((id) => mcAsync(root, ['delete', '--force', id])));
  deleted.forEach((r, i) => assert.equal(r.status, 0, `${ids[i]}: ${r.stderr}`));
  assert.deepEqual(leftovers(root), []);
  for (const id of ids) assert.deepEqual(cgroupDirsNamed(id), []);
});

test('concurrent commands on one id are serialised', async () => {
  const b = bundle(() => {}, { args: ['sleep', '100'] });
  const id = `lock-${process.pid}`;
  const rs = await Promise.all([1, 2, 3, 4].map(() => mcAsync(root, ['create', '--bundle', b, id])));
  assert.equal(rs.filter((r) => r.status === 0).length, 1, 'exactly one create wins');
  for (const r of rs.filter((x) => x.status !== 0)) assert.match(r.stderr, /already exists/);
  const starts = await Promise.all([1, 2, 3].map(() => mcAsync(root, ['start', id])));
  assert.equal(starts.filter((r) => r.status === 0).length, 1, 'exactly one start wins');
  assert.equal(mc(root, ['delete', '--force', id]).status, 0);
});
