// registries.conf end to end, against the real loopback docker-registry: a
// fake domain (registry.example.test) served through a mirror and recorded
// under its own name; short names through unqualified-search-registries and
// an alias; a blocked registry and a malformed file refused; `bundle NAME`
// finding localhost/NAME; through the library, a pull by digest through a
// mirror (verified: a mirror that alters the manifest is caught), the pull
// policies, and credentials given for one pull (CRI's AuthConfig forms).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO, front } from '../helpers/bundle';
import { startRegistry, skopeoPush, freePort, makeTokenKey, signToken, startProxy, type RegistryHandle } from '../helpers/registry';
import { ContentStore } from '../../images/store';
import { findLocal, findOrPull, loadRegistriesConf } from '../../images/resolve';
import { parseRegistriesConf } from '../../images/registries';
import type { PullEvent } from '../../images/pull';

const BUILD = path.join(REPO, 'scripts', 'build-busybox-image.sh');
const have = ['/usr/bin/docker-registry', '/usr/bin/skopeo', '/usr/bin/umoci', '/bin/busybox'].every((f) => fs.existsSync(f));
const skip = !have ? 'needs docker-registry, skopeo, umoci and busybox-static' : process.getuid?.() !== 0 ? 'needs root' : false;

let work = '';
let reg: RegistryHandle | undefined;
let conf = '';
const quick = { retryDelayMs: 10, retries: 2 };

function storeDir(): string {
  return fs.mkdtempSync(path.join(work, 'store-'));
}

interface Row {
  Repository: string;
  Tag: string;
  Names: string[];
}

function images(store: string): Row[] {
  const r = front(store, ['images', '--format', 'json']);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Row[];
}

before(async () => {
  if (skip) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-registries-'));
  execFileSync(BUILD, [path.join(work, 'oci'), 'latest'], { stdio: ['ignore', 'ignore', 'pipe'] });
  reg = await startRegistry();
  await skopeoPush(path.join(work, 'oci'), 'latest', `${reg.host}/mirror/app:1`);
  await skopeoPush(path.join(work, 'oci'), 'latest', `${reg.host}/search/tool:2`);
  conf = path.join(work, 'registries.conf');
  fs.writeFileSync(
    conf,
    `unqualified-search-registries = ["nothere.example.test", "search.example.test"]
short-name-mode = "enforcing"

[[registry]]
prefix = "registry.example.test"
location = "registry.example.test"

[[registry.mirror]]
location = "${reg.host}/mirror"

[[registry]]
prefix = "search.example.test"
location = "${reg.host}/search"

[[registry]]
prefix = "nothere.example.test"
location = "${reg.host}/nothere"

[[registry]]
prefix = "blocked.example.test"
location = "${reg.host}/mirror"
blocked = true

[aliases]
"myapp" = "registry.example.test/app"
`,
  );
});

after(async () => {
  await reg?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('a fake domain pulled through its mirror is recorded and listed under its own name', { skip }, () => {
  const store = storeDir();
  const p = front(store, ['pull', '--registries-conf', conf, 'registry.example.test/app:1']);
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stdout, new RegExp(`Pulling registry\\.example\\.test/app:1 from mirror ${reg!.host.replace(/\./g, '\\.')}/mirror/app `));
  assert.match(p.stdout, /Image: registry\.example\.test\/app:1 /);
  const rows = images(store);
  assert.deepEqual(rows.map((r) => [r.Repository, r.Tag, r.Names]), [['registry.example.test/app', '1', ['registry.example.test/app:1']]]);
  assert.ok(!JSON.stringify(rows).includes('127.0.0.1'), 'never under the mirror name');
  const dir = path.join(work, 'bundle-app');
  const b = front(store, ['bundle', '--registries-conf', conf, '--rootfs', 'copy', 'registry.example.test/app:1', dir, '--', 'true']);
  assert.equal(b.status, 0, b.stderr);
  assert.ok(fs.existsSync(path.join(dir, 'rootfs', 'bin', 'busybox')));
});

test('a short name through unqualified-search-registries, in order; found again locally by its short name', { skip }, () => {
  const store = storeDir();
  // $REGISTRIES_CONFIG_PATH, as containers/image honours it
  const p = front(store, ['pull', 'tool:2'], { env: { REGISTRIES_CONFIG_PATH: conf } });
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stdout, /Trying to pull nothere\.example\.test\/tool:2 \(unqualified-search-registries in .*registries\.conf\)\.\.\.\n/);
  assert.match(p.stdout, /Trying to pull search\.example\.test\/tool:2 /);
  assert.deepEqual(images(store).map((r) => r.Names[0]), ['search.example.test/tool:2']);
  const dir = path.join(work, 'bundle-tool');
  const b = front(store, ['bundle', '--registries-conf', conf, '--rootfs', 'copy', 'tool:2', dir, '--', 'true']);
  assert.equal(b.status, 0, b.stderr);
  // a name no search registry has: every attempt named
  const miss = front(store, ['pull', '--registries-conf', conf, 'nosuch:1']);
  assert.notEqual(miss.status, 0);
  assert.match(miss.stderr, /cannot pull "nosuch:1" from any of 2 registries .*nothere\.example\.test\/nosuch:1: .*HTTP 404.*search\.example\.test\/nosuch:1: .*HTTP 404/);
});

test('an alias resolves to its fully-qualified name (then the mirror)', { skip }, () => {
  const store = storeDir();
  const p = front(store, ['pull', '--registries-conf', conf, 'myapp:1']);
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stdout, /Trying to pull registry\.example\.test\/app:1 \(alias in .*registries\.conf\)/);
  assert.deepEqual(images(store).map((r) => r.Names[0]), ['registry.example.test/app:1']);
});

test('a blocked registry is refused, naming the file; nothing is recorded', { skip }, () => {
  const store = storeDir();
  const p = front(store, ['pull', '--registries-conf', conf, 'blocked.example.test/app:1']);
  assert.notEqual(p.status, 0);
  assert.match(p.stderr, new RegExp(`registry blocked\\.example\\.test is blocked in ${conf.replace(/[.]/g, '\\.')}: refusing to pull blocked\\.example\\.test/app:1`));
  assert.deepEqual(images(store), []);
});

test('a malformed or missing registries.conf is refused with the file named', { skip }, () => {
  const store = storeDir();
  const bad = path.join(work, 'bad.conf');
  fs.writeFileSync(bad, '[[registry]]\nprefix = "registry.example.test"\ninsecure = maybe\n');
  const p = front(store, ['pull', '--registries-conf', bad, 'registry.example.test/app:1']);
  assert.notEqual(p.status, 0);
  assert.match(p.stderr, new RegExp(`cannot read registries\\.conf ${bad.replace(/[.]/g, '\\.')}: line 3: invalid value`));
  fs.writeFileSync(bad, '[[registry]]\nlocation = "http://registry.example.test"\n');
  const q = front(store, ['bundle', '--registries-conf', bad, 'busybox', path.join(work, 'never')]);
  assert.notEqual(q.status, 0);
  assert.match(q.stderr, /cannot read registries\.conf .*bad\.conf: line 2: .*URL schemes are not supported/);
  const m = front(store, ['pull', '--registries-conf', path.join(work, 'missing.conf'), 'busybox']);
  assert.match(m.stderr, /cannot read registries\.conf .*missing\.conf: no such file/);
});

test('bundle busybox finds localhost/busybox (podman short names); --insecure-registry still works for pull', { skip }, () => {
  const store = storeDir();
  const p = front(store, ['pull', '--registries-conf', conf, '--insecure-registry', reg!.host, `${reg!.host}/mirror/app:1`]);
  assert.equal(p.status, 0, p.stderr);
  assert.equal(front(store, ['tag', `${reg!.host}/mirror/app:1`, 'localhost/busybox']).status, 0);
  const withConf = front(store, ['bundle', '--registries-conf', conf, '--rootfs', 'copy', 'busybox', path.join(work, 'bb1'), '--', 'true']);
  assert.equal(withConf.status, 0, withConf.stderr);
  // the host's own registries.conf (or the built-in defaults), as the README shows it
  const plain = front(store, ['bundle', '--rootfs', 'copy', 'busybox', path.join(work, 'bb2'), '--', 'true'], { env: { REGISTRIES_CONFIG_PATH: '' } });
  assert.equal(plain.status, 0, plain.stderr);
  const none = front(store, ['bundle', '--registries-conf', conf, 'nosuch', path.join(work, 'bb3')]);
  assert.notEqual(none.status, 0);
  assert.match(none.stderr, /image "nosuch" not found \(looked for localhost\/nosuch:latest, nothere\.example\.test\/nosuch:latest, search\.example\.test\/nosuch:latest, docker\.io\/library\/nosuch:latest\)/);
});

/** A mirror in front of the registry that can alter manifests fetched by digest. */
async function startMirror(upstream: RegistryHandle, tamper: () => boolean): Promise<{ host: string; requests: string[]; close(): Promise<void> }> {
  const proxy = await startProxy(upstream, (req, ur, res) => {
    if (!(tamper() && /\/manifests\/sha256:/.test(req.url ?? '') && ur.statusCode === 200)) return false;
    const chunks: Buffer[] = [];
    ur.on('data', (d: Buffer) => chunks.push(d));
    ur.on('end', () => {
      const body = Buffer.concat([Buffer.concat(chunks), Buffer.from(' ')]); // still JSON, another digest
      res.writeHead(200, { 'content-type': ur.headers['content-type'] ?? '', 'content-length': String(body.length) });
      res.end(body);
    });
    return true;
  });
  return {
    host: proxy.host,
    get requests() {
      return proxy.requests.map((r) => r.url ?? '');
    },
    close: proxy.close,
  };
}

test('library: by digest through a mirror, verified; pull policies; recorded under the asked name', { skip }, async (t) => {
  let altering = false;
  const mirror = await startMirror(reg!, () => altering);
  t.after(() => mirror.close());
  const c = parseRegistriesConf(`[[registry]]\nprefix = "registry.k8s.io"\nlocation = "registry.k8s.io"\n[[registry.mirror]]\nlocation = "${mirror.host}/mirror"\n`, '/test/registries.conf');
  const store = new ContentStore(storeDir());
  const events: PullEvent[] = [];
  const opts = { registries: c, credentials: () => undefined, registry: quick };
  await assert.rejects(findOrPull(store, 'registry.k8s.io/app:1', { ...opts, policy: 'never' }), (e: Error & { code?: string }) => e.code === 'ENOTFOUND' && /pull policy is "never"/.test(e.message));
  const img = await findOrPull(store, 'registry.k8s.io/app:1', { ...opts, policy: 'missing', onEvent: (e) => events.push(e) });
  assert.equal(img.record.name, 'registry.k8s.io/app:1');
  assert.ok(events.some((e) => e.kind === 'resolved' && e.source === `${mirror.host}/mirror/app` && e.mirror === true));
  const seen = mirror.requests.length;
  assert.equal((await findOrPull(store, 'registry.k8s.io/app:1', { ...opts, policy: 'missing' })).id, img.id);
  assert.equal(mirror.requests.length, seen, 'missing: the local image, no request');
  // by digest, through the mirror
  const byDigest = `registry.k8s.io/app@${img.record.digest}`;
  const fresh = new ContentStore(storeDir());
  const d = await findOrPull(fresh, byDigest, { ...opts, policy: 'always' });
  assert.equal(d.record.name, byDigest);
  assert.equal(findLocal(fresh, byDigest, c).id, img.id);
  // a mirror that serves other bytes for the digest is caught, and nothing is recorded
  altering = true;
  const other = new ContentStore(storeDir());
  await assert.rejects(findOrPull(other, byDigest, { ...opts, policy: 'always' }), (e: Error & { code?: string }) => e.code === 'EDIGEST' && /digest mismatch for manifest/.test(e.message));
  assert.deepEqual(other.listImages(), []);
  altering = false;
  // loadRegistriesConf reads the same file the CLI does
  assert.deepEqual(loadRegistriesConf(conf).unqualifiedSearchRegistries, ['nothere.example.test', 'search.example.test']);
});

test('library: credentials for one pull only (password, identity token, registry token)', { skip }, async (t) => {
  const dir = fs.mkdtempSync(path.join(work, 'token-'));
  const { key, certFile, kid } = makeTokenKey(dir);
  const issuer = 'mc-test-issuer';
  const service = 'mc-test-registry';
  const asked: string[] = [];
  const grant = (scope: string): string => {
    const [, name, actions] = scope.split(':');
    return signToken(key, kid, { issuer, service, sub: 'bob', access: scope ? [{ type: 'repository', name: name!, actions: actions!.split(',') }] : [] });
  };
  const tokenSrv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      let scope = url.searchParams.get('scope') ?? '';
      let ok = req.headers['authorization'] === 'Basic ' + Buffer.from('bob:pw').toString('base64');
      if (req.method === 'POST') {
        const form = new URLSearchParams(body);
        scope = form.get('scope') ?? '';
        ok = form.get('grant_type') === 'refresh_token' && form.get('refresh_token') === 'refresh-123';
      }
      asked.push(`${req.method} ${ok ? 'ok' : 'denied'}`);
      if (!ok) return void res.writeHead(401).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(req.method === 'POST' ? { access_token: grant(scope) } : { token: grant(scope) }));
    });
  });
  const tport = await freePort();
  await new Promise<void>((r) => tokenSrv.listen(tport, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => tokenSrv.close(() => r())));
  const treg = await startRegistry({ token: { realm: `http://127.0.0.1:${tport}/token`, service, issuer, certFile } });
  t.after(() => treg.stop());
  await skopeoPush(path.join(work, 'oci'), 'latest', `${treg.host}/priv/app:1`, { creds: 'bob:pw' });
  const c = parseRegistriesConf(`[[registry]]\nprefix = "private.example.test"\nlocation = "${treg.host}/priv"\n`, '/test/registries.conf');
  const name = 'private.example.test/app:1';
  const opts = { registries: c, policy: 'always' as const, credentials: () => undefined, registry: quick };
  await assert.rejects(findOrPull(new ContentStore(storeDir()), name, opts), /cannot get a token/);
  asked.length = 0;
  const a = await findOrPull(new ContentStore(storeDir()), name, { ...opts, auth: { username: 'bob', password: 'pw' } });
  assert.equal(a.record.name, name);
  assert.deepEqual([...new Set(asked)], ['GET ok']);
  // the next pull without auth gets nothing from the last one
  await assert.rejects(findOrPull(new ContentStore(storeDir()), name, opts), /cannot get a token/);
  asked.length = 0;
  await findOrPull(new ContentStore(storeDir()), name, { ...opts, auth: { identityToken: 'refresh-123' } });
  assert.deepEqual([...new Set(asked)], ['POST ok']);
  asked.length = 0;
  const registryToken = grant('repository:priv/app:pull');
  await findOrPull(new ContentStore(storeDir()), name, { ...opts, auth: { registryToken } });
  assert.deepEqual(asked, [], 'a registry token goes to the registry as is');
});
