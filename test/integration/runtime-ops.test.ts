// pause/resume (freezer), ps, update, events --stats and features on a live
// container, checked in the cgroup files and from /proc.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { containerSuite, leftovers, mc, mcAsync } from '../helpers/bundle';
import { schemaErrors } from '../../runtime/spec/validate';
import { readLayout } from '../../runtime/cgroups';

const { root, bundle } = containerSuite('ops');
const v1 = readLayout().driver !== 'v2';
/** The figures this file checks of `events --stats` (runc's types.Event with types.Stats). */
interface StatsEvent {
  type: string;
  id: string;
  data: {
    cpu: { usage: { total: number; percpu: number[] }; throttling: { throttledPeriods: number } };
    memory: { usage: { usage: number; limit: number; max: number }; raw: Record<string, number> };
    pids: { current: number; limit: number };
    blkio: { ioServiceBytesRecursive: unknown[] };
    hugetlb: Record<string, unknown>;
  };
}
const status = (id: string): string => (JSON.parse(mc(root, ['state', id]).stdout) as { status: string }).status;

test('pause freezes the processes, resume thaws them; ps lists them', { skip: !v1 && 'v1/hybrid freezer checks' }, async () => {
  const rel = `/mycontainer-test/ops-${process.pid}`;
  const b = bundle((s) => (s.linux!.cgroupsPath = rel), { args: ['sh', '-c', 'sleep 100 & sleep 100 & wait'] });
  assert.equal(mc(root, ['run', '-d', '--bundle', b, 'p1']).status, 0);
  const end = Date.now() + 5000;
  let pids: number[] = [];
  while (Date.now() < end) {
    pids = JSON.parse(mc(root, ['ps', '--format', 'json', 'p1']).stdout) as number[];
    if (pids.length === 3) break;
    execFileSync('sleep', ['0.05']);
  }
  assert.equal(pids.length, 3, 'sh and two sleeps');
  const table = mc(root, ['ps', 'p1']).stdout;
  assert.match(table.split('\n')[0] as string, /PID/);
  assert.equal(table.trim().split('\n').length, 4);

  assert.equal(mc(root, ['pause', 'p1']).status, 0);
  assert.equal(status('p1'), 'paused');
  assert.equal(fs.readFileSync(path.join('/sys/fs/cgroup/freezer', rel, 'freezer.state'), 'utf8').trim(), 'FROZEN');
  for (const pid of pids) assert.match(fs.readFileSync(`/proc/${pid}/status`, 'utf8'), /^State:\s+D/m, `pid ${pid} frozen`);
  const again = mc(root, ['pause', 'p1']);
  assert.notEqual(again.status, 0);
  assert.match(again.stderr, /it is paused, not running/);
  // exec into it is refused (255, runc's words), unless --ignore-paused: then it runs once resumed.
  const refused = mc(root, ['exec', 'p1', 'echo', 'ok']);
  assert.equal(refused.status, 255);
  assert.match(refused.stderr, /cannot exec in a paused container/);
  const later = mcAsync(root, ['exec', '--ignore-paused', 'p1', 'echo', 'ok']);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(mc(root, ['resume', 'p1']).status, 0);
  const waited = await later;
  assert.equal(waited.status, 0, waited.stderr);
  assert.equal(waited.stdout, 'ok\n');
  assert.equal(mc(root, ['pause', 'p1']).status, 0);

  assert.equal(mc(root, ['resume', 'p1']).status, 0);
  assert.equal(status('p1'), 'running');
  assert.equal(fs.readFileSync(path.join('/sys/fs/cgroup/freezer', rel, 'freezer.state'), 'utf8').trim(), 'THAWED');
  assert.equal(mc(root, ['delete', '--force', 'p1']).status, 0);
});

test('a paused container can be deleted with --force', { skip: !v1 && 'v1/hybrid' }, () => {
  const b = bundle(() => {}, { args: ['sleep', '100'] });
  assert.equal(mc(root, ['run', '-d', '--bundle', b, 'p2']).status, 0);
  assert.equal(mc(root, ['pause', 'p2']).status, 0);
  assert.equal(mc(root, ['delete', '--force', 'p2']).status, 0);
  assert.deepEqual(leftovers(root), []);
});

test('update changes the cgroup files; events --stats reports usage', { skip: !v1 && 'v1/hybrid' }, () => {
  const rel = `/mycontainer-test/upd-${process.pid}`;
  const b = bundle((s) => {
    s.linux!.cgroupsPath = rel;
    s.linux!.resources = { memory: { limit: 128 * 1024 * 1024 }, pids: { limit: 100 } };
  }, { args: ['sleep', '100'] });
  assert.equal(mc(root, ['run', '-d', '--bundle', b, 'u1']).status, 0);
  const r = mc(root, ['update', '--memory', '64m', '--pids-limit', '20', '--cpu-shares', '256', 'u1']);
  assert.equal(r.status, 0, r.stderr);
  const read = (c: string, f: string): string => fs.readFileSync(path.join('/sys/fs/cgroup', c, rel, f), 'utf8').trim();
  assert.equal(read('memory', 'memory.limit_in_bytes'), String(64 * 1024 * 1024));
  assert.equal(read('pids', 'pids.max'), '20');
  assert.equal(read('cpu', 'cpu.shares'), '256');
  // runc's spellings: --cpu-share, and the realtime period where the kernel has group scheduling for it.
  const rt = fs.existsSync(path.join('/sys/fs/cgroup/cpu', rel, 'cpu.rt_period_us'));
  const r2 = mc(root, ['update', '--cpu-share', '300', ...(rt ? ['--cpu-rt-period', '900001'] : []), 'u1']);
  assert.equal(r2.status, 0, r2.stderr);
  assert.equal(read('cpu', 'cpu.shares'), '300');
  if (rt) assert.equal(read('cpu', 'cpu.rt_period_us'), '900001');
  assert.match(mc(root, ['update', '--l3-cache-schema', 'L3:0=f', 'u1']).stderr, /need Intel RDT/);
  const resFile = path.join(b, 'res.json');
  fs.writeFileSync(resFile, JSON.stringify({ pids: { limit: 30 } }));
  assert.equal(mc(root, ['update', '-r', resFile, 'u1']).status, 0);
  assert.equal(read('pids', 'pids.max'), '30');

  // "unified" on v1 is refused even empty (as runc), naming the field; nothing is written.
  for (const unified of [{}, { 'pids.max': '5' }]) {
    fs.writeFileSync(resFile, JSON.stringify({ pids: { limit: 40 }, unified }));
    const bad = mc(root, ['update', '-r', resFile, 'u1']);
    assert.notEqual(bad.status, 0, JSON.stringify(unified));
    assert.match(bad.stderr, /cannot use unified on cgroup v1: linux\.resources\.unified is set/);
    assert.equal(read('pids', 'pids.max'), '30');
  }

  const ev = mc(root, ['events', '--stats', 'u1']);
  assert.equal(ev.status, 0, ev.stderr);
  const st = JSON.parse(ev.stdout) as StatsEvent;
  assert.equal(st.type, 'stats');
  assert.equal(st.id, 'u1');
  assert.equal(st.data.memory.usage.limit, 64 * 1024 * 1024);
  assert.ok(st.data.memory.usage.usage > 0, 'memory.usage.usage');
  assert.ok(st.data.memory.usage.max >= st.data.memory.usage.usage, 'memory.usage.max');
  assert.ok(st.data.pids.current >= 1, 'pids.current');
  assert.equal(st.data.pids.limit, 30);
  assert.ok(st.data.cpu.usage.total > 0, 'cpu.usage.total');
  assert.ok(Array.isArray(st.data.cpu.usage.percpu) && st.data.cpu.usage.percpu.length > 0, 'cpu.usage.percpu');
  assert.equal(typeof st.data.cpu.throttling.throttledPeriods, 'number');
  assert.ok('cache' in st.data.memory.raw, 'memory.raw has memory.stat keys');
  assert.ok(Array.isArray(st.data.blkio.ioServiceBytesRecursive));
  assert.equal(typeof st.data.hugetlb, 'object');
  assert.equal(mc(root, ['delete', '--force', 'u1']).status, 0);
});

test('features prints a document valid against features-schema.json', () => {
  const r = mc(root, ['features']);
  assert.equal(r.status, 0);
  const doc = JSON.parse(r.stdout) as { linux: { namespaces: string[] }; mountOptions: string[] };
  assert.deepEqual(schemaErrors('oci-runtime/features-schema.json', doc), []);
  assert.ok(doc.linux.namespaces.includes('pid'));
  assert.ok(doc.mountOptions.includes('rbind'));
});

test('events streams an "oom" event when the OOM killer strikes, as runc\'s, and exits once the container is gone', { skip: !v1 && 'v1/hybrid' }, async () => {
  const { spawn } = await import('node:child_process');
  const { CLI } = await import('../helpers/bundle');
  const b = bundle((s) => {
    s.linux!.cgroupsPath = `/mycontainer-test/ops-oom-${process.pid}`;
    s.linux!.resources = { memory: { limit: 32 * 1024 * 1024, ...(fs.existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes') ? { swap: 32 * 1024 * 1024 } : {}) } };
  }, { args: ['sleep', '100'] });
  assert.equal(mc(root, ['run', '-d', '--bundle', b, 'oom1']).status, 0);
  const events = spawn(CLI, ['--root', root, 'events', '--interval', '1', 'oom1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  events.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => events.on('exit', (c) => resolve(c)));
  const until = async (what: string, fn: () => boolean, ms: number): Promise<void> => {
    for (const end = Date.now() + ms; !fn(); await new Promise((r) => setTimeout(r, 100))) if (Date.now() > end) throw new Error(`timed out waiting for ${what}; events printed: ${out.slice(0, 500)}`);
  };
  try {
    await until('the first stats event', () => out.includes('"type":"stats"'), 10000);
    // busybox tail reads /dev/zero looking for a newline: memory grows until the killer comes
    assert.equal(mc(root, ['exec', '-d', 'oom1', 'tail', '/dev/zero']).status, 0);
    await until('the oom event', () => out.includes('{"type":"oom","id":"oom1"}'), 20000);
  } finally {
    assert.equal(mc(root, ['delete', '--force', 'oom1']).status, 0);
  }
  const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running'), 5000))]);
  if (code === 'still running') events.kill('SIGKILL');
  assert.equal(code, 0, 'events exits when the container is gone');
});
