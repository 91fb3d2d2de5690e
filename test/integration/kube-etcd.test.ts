// `mycontainer kube server --datastore-endpoint http://...` on a real etcd
// (Debian's etcd-server 3.4): kubectl 1.27 and 1.33 create, get, watch and
// delete; the objects are in etcd (a resourceVersion is the key's mod
// revision there, and no SQLite file is made); a restart keeps them; a
// second server on the same etcd, or an endpoint that does not answer,
// stops at the start with the reason.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { KUBECTL, kubectl, kubectlMissing, startKube, type KubeServerProcess } from '../helpers/kube';
import { etcdMissing, startEtcd, type EtcdProcess } from '../helpers/etcd';
import { FRONTEND } from '../helpers/bundle';
import { freePort } from '../helpers/registry';
import { EtcdStore } from '../../orchestrator/storage/etcd';
import { keyOf } from '../../orchestrator/api/resources';
import { typeOf } from '../../orchestrator/client';

const skip = etcdMissing() || kubectlMissing('1.27') || kubectlMissing('1.33');

let etcd: EtcdProcess | null = null;
let kube: KubeServerProcess | null = null;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-kube-etcd-'));
after(async () => {
  await kube?.stop();
  await etcd?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function server(): Promise<KubeServerProcess> {
  etcd ??= await startEtcd();
  kube ??= await startKube(dataDir, 0, ['--datastore-endpoint', etcd.endpoint]);
  return kube;
}

/** What the server stored, read from etcd itself. */
function inEtcd(key: string): { revision: number; value: string } | null {
  const s = new EtcdStore((etcd as EtcdProcess).endpoint);
  try {
    return s.get(key);
  } finally {
    s.close();
  }
}

const CONFIGMAP = (name: string, v: string): string => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\ndata: {v: "${v}"}\n`;

for (const v of ['1.27', '1.33']) {
  test(`kubectl ${v} on etcd: create, get, delete; the objects are etcd's`, { skip }, async () => {
    const k = await server();
    const name = `cm-${v.replace('.', '-')}`;
    const made = kubectl(v, k, ['create', '-f', '-'], CONFIGMAP(name, v));
    assert.equal(made.status, 0, made.stderr);
    assert.match(made.stdout, new RegExp(`configmap/${name} created`));
    const got = kubectl(v, k, ['get', 'configmap', name, '-o', 'json']);
    assert.equal(got.status, 0, got.stderr);
    const obj = JSON.parse(got.stdout) as { data: { v: string }; metadata: { resourceVersion: string } };
    assert.equal(obj.data.v, v);
    const stored = inEtcd(keyOf(typeOf('ConfigMap'), 'default', name));
    assert.ok(stored, 'the object is in etcd under /mycontainer/registry/');
    assert.equal(obj.metadata.resourceVersion, String(stored.revision), 'resourceVersion is etcd\'s mod revision');
    assert.match(kubectl(v, k, ['get', 'namespaces']).stdout, /^kube-system\s+Active/m);
    assert.ok(!fs.existsSync(path.join(k.dataDir, 'db', 'state.db')), 'no SQLite database beside it');
    const del = kubectl(v, k, ['delete', 'configmap', name]);
    assert.match(del.stdout, new RegExp(`configmap "${name}" deleted`), del.stderr);
    assert.match(kubectl(v, k, ['get', 'configmap', name]).stderr, new RegExp(`configmaps "${name}" not found`));
    assert.equal(inEtcd(keyOf(typeOf('ConfigMap'), 'default', name)), null, 'and gone from etcd');
  });
}

test('get -w on etcd prints a change as it happens', { skip }, async () => {
  const k = await server();
  assert.equal(kubectl('1.33', k, ['create', '-f', '-'], CONFIGMAP('watched', '1')).status, 0);
  const w = spawn(KUBECTL['1.33'] as string, ['--kubeconfig', k.kubeconfig, 'get', 'configmaps', '-w', '--output-watch-events']);
  let out = '';
  w.stdout.on('data', (d: Buffer) => (out += d.toString()));
  try {
    const wait = async (re: RegExp): Promise<void> => {
      const deadline = Date.now() + 10000;
      while (!re.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.match(out, re);
    };
    await wait(/ADDED\s+watched\s+1\s/);
    assert.equal(kubectl('1.33', k, ['label', 'configmap', 'watched', 'seen=yes']).status, 0);
    await wait(/MODIFIED\s+watched\s+1\s/);
    assert.equal(kubectl('1.33', k, ['delete', 'configmap', 'watched']).status, 0);
    await wait(/DELETED\s+watched\s+1\s/);
  } finally {
    w.kill();
  }
});

test('a restart of the server on the same etcd keeps the objects and their resourceVersions', { skip }, async () => {
  const k = await server();
  assert.equal(kubectl('1.33', k, ['create', '-f', '-'], CONFIGMAP('kept', 'before')).status, 0);
  const before = kubectl('1.33', k, ['get', 'configmap', 'kept', '-o', 'jsonpath={.metadata.resourceVersion} {.metadata.uid}']).stdout;
  await k.stop();
  kube = null;
  const again = await server();
  assert.equal(kubectl('1.33', again, ['get', 'configmap', 'kept', '-o', 'jsonpath={.metadata.resourceVersion} {.metadata.uid}']).stdout, before);
  assert.equal(kubectl('1.27', again, ['get', 'configmap', 'kept', '-o', 'jsonpath={.data.v}']).stdout, 'before');
  assert.equal(kubectl('1.33', again, ['delete', 'configmap', 'kept']).status, 0);
});

test('etcd stopped and started again: meanwhile reads from the cache and a 500 naming etcd for a write, then writes work and a watch goes on', { skip }, async () => {
  const k = await server();
  const e = etcd as EtcdProcess;
  assert.equal(kubectl('1.33', k, ['create', '-f', '-'], CONFIGMAP('through', '1')).status, 0);
  const w = spawn(KUBECTL['1.33'] as string, ['--kubeconfig', k.kubeconfig, 'get', 'configmap', 'through', '-w', '--output-watch-events']);
  let out = '';
  w.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const until = async (re: RegExp, ms: number): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!re.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  };
  try {
    await until(/ADDED\s+through/, 10000);
    assert.match(out, /ADDED\s+through/);
    await e.pause();
    try {
      // reads come from the server's cache, as the apiserver's watch cache serves them (it alone writes the prefix);
      // a write needs etcd: a 500 naming it
      assert.equal(kubectl('1.33', k, ['get', 'configmap', 'through']).status, 0);
      const down = kubectl('1.33', k, ['label', 'configmap', 'through', 'during=outage']);
      assert.notEqual(down.status, 0);
      assert.match(down.stderr, /InternalError.*etcd/);
    } finally {
      await e.resume();
    }
    const deadline = Date.now() + 30000;
    let up = kubectl('1.33', k, ['label', 'configmap', 'through', 'after=restart']);
    while (up.status !== 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      up = kubectl('1.33', k, ['label', 'configmap', 'through', 'after=restart']);
    }
    assert.equal(up.status, 0, up.stderr);
    await until(/MODIFIED\s+through/, 10000);
    assert.match(out, /MODIFIED\s+through/, 'the watch from before the outage sees the change after it');
  } finally {
    w.kill();
    kubectl('1.33', k, ['delete', 'configmap', 'through']);
  }
});

test('a second server on the same etcd fails at the start, naming the one that has it', { skip }, async () => {
  const k = await server();
  const other = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-kube-etcd2-'));
  try {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [FRONTEND, 'kube', 'server', '--data-dir', other, '--https-listen-port', '0', '--datastore-endpoint', (etcd as EtcdProcess).endpoint], { encoding: 'utf8', timeout: 60000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, new RegExp(`/mycontainer on this etcd is in use by .* pid ${String(k.proc.pid)} \\(--data-dir ${k.dataDir}\\): one server at a time`));
    assert.ok(Date.now() - t0 < 30000);
    assert.equal(kubectl('1.33', k, ['get', 'namespace', 'default', '-o', 'name']).stdout.trim(), 'namespace/default', 'the first one still serves');
  } finally {
    fs.rmSync(other, { recursive: true, force: true });
  }
});

test('an etcd endpoint that does not answer stops the server at the start, named', { skip: etcdMissing() }, async () => {
  const nobody = `http://127.0.0.1:${await freePort()}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-kube-noetcd-'));
  try {
    const r = spawnSync(process.execPath, [FRONTEND, 'kube', 'server', '--data-dir', dir, '--https-listen-port', '0', '--datastore-endpoint', nobody], { encoding: 'utf8', timeout: 60000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, new RegExp(`cannot use etcd at ${nobody}: .*ECONNREFUSED`));
    assert.doesNotMatch(r.stderr, /serving the Kubernetes API/);
    const bad = spawnSync(process.execPath, [FRONTEND, 'kube', 'server', '--data-dir', dir, '--https-listen-port', '0', '--datastore-endpoint', 'mysql://x'], { encoding: 'utf8', timeout: 60000 });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /datastore endpoint "mysql:\/\/x": want etcd's client URL, http:\/\/HOST:PORT/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
