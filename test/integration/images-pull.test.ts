// Pulls from a real registry (Debian's docker-registry on 127.0.0.1) with
// images built from busybox-static by umoci and pushed by skopeo: a
// multi-layer image with whiteouts and an opaque dir, a manifest list, zstd
// layers, basic auth, token auth, a dropped connection, a corrupted blob.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import bcrypt from 'bcryptjs';
import { pull } from '../../images/pull';
import { ContentStore, sha256 } from '../../images/store';
import { Snapshots, copyRootfs, mountRootfs, rootfsMount, unmountRootfs } from '../../images/snapshots';
import { RegistryClient } from '../../images/registry';
import { parseReference } from '../../images/reference';
import { MediaType } from '../../images/manifest';
import { findImage } from '../../images/image';
import { REPO } from '../helpers/bundle';
import { startRegistry, skopeoPush, makeTokenKey, signToken, freePort, startProxy, type RegistryHandle } from '../helpers/registry';

const BUILD = path.join(REPO, 'scripts', 'build-busybox-image.sh');
const have = fs.existsSync('/usr/bin/docker-registry') && fs.existsSync('/usr/bin/skopeo') && fs.existsSync('/usr/bin/umoci') && fs.existsSync('/bin/busybox');
const skip = !have ? 'needs docker-registry, skopeo, umoci and busybox-static' : process.getuid?.() !== 0 ? 'needs root' : false;

let work = '';
let reg: RegistryHandle | undefined;
const quick = { retryDelayMs: 10, credentials: () => undefined };

function newStore(): ContentStore {
  return new ContentStore(fs.mkdtempSync(path.join(work, 'store-')));
}

function umoci(...args: string[]): void {
  execFileSync('umoci', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

before(async () => {
  if (skip) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-images-'));
  const layout = path.join(work, 'oci');
  execFileSync(BUILD, [layout, 'latest'], { stdio: ['ignore', 'ignore', 'pipe'] });
  // multi: busybox + /data/{a,b} + /opq/{x,y}; then a whiteout of /data/a;
  // then /opq replaced (opaque) by a dir holding only z.
  umoci('config', '--image', `${layout}:latest`, '--tag', 'multi');
  const src = path.join(work, 'src');
  fs.mkdirSync(path.join(src, 'data'), { recursive: true });
  fs.mkdirSync(path.join(src, 'opq'), { recursive: true });
  fs.writeFileSync(path.join(src, 'data', 'a'), 'a\n');
  fs.writeFileSync(path.join(src, 'data', 'b'), 'b\n');
  fs.writeFileSync(path.join(src, 'opq', 'x'), 'x\n');
  fs.writeFileSync(path.join(src, 'opq', 'y'), 'y\n');
  umoci('insert', '--image', `${layout}:multi`, path.join(src, 'data'), '/data');
  umoci('insert', '--image', `${layout}:multi`, path.join(src, 'opq'), '/opq');
  umoci('insert', '--image', `${layout}:multi`, '--whiteout', '/data/a');
  const opq2 = path.join(work, 'opq2');
  fs.mkdirSync(opq2);
  fs.writeFileSync(path.join(opq2, 'z'), 'z\n');
  umoci('insert', '--image', `${layout}:multi`, '--opaque', opq2, '/opq');
  // arm64: the same layer under another platform, for the manifest list.
  umoci('config', '--image', `${layout}:latest`, '--tag', 'arm64', '--architecture', 'arm64', '--config.label', 'arch=arm64');
  reg = await startRegistry();
  for (const tag of ['latest', 'multi', 'arm64']) await skopeoPush(layout, tag, `${reg.host}/test/busybox:${tag}`);
});

after(async () => {
  await reg?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('pull busybox: blobs, snapshot, record; a second pull fetches nothing', { skip }, async () => {
  const store = newStore();
  const events: string[] = [];
  const r = await pull(store, `${reg!.host}/test/busybox:latest`, { registry: quick, onEvent: (e) => events.push(e.kind === 'layer' ? e.status : e.kind) });
  assert.equal(r.name, `${reg!.host}/test/busybox:latest`);
  assert.ok(store.has(r.digest) && store.has(r.id));
  for (const l of r.manifest.layers) assert.ok(store.has(l.digest));
  const snaps = new Snapshots(store.root);
  const dir = snaps.dir(r.config.rootfs.diff_ids[0]!);
  assert.ok(fs.statSync(path.join(dir, 'bin', 'busybox')).mode & 0o111);
  assert.equal(fs.readlinkSync(path.join(dir, 'bin', 'sh')), 'busybox');
  assert.equal(fs.statSync(path.join(dir, 'home', 'app')).uid, 1000);
  assert.equal(fs.statSync(path.join(dir, 'tmp')).mode & 0o7777, 0o1777);
  assert.ok(events.includes('done'));
  assert.deepEqual(fs.readdirSync(path.join(store.root, 'ingest')), []);
  const img = findImage(store, `${reg!.host}/test/busybox`);
  assert.equal(img.id, r.id);
  const again: string[] = [];
  await pull(store, `${reg!.host}/test/busybox:latest`, { registry: quick, onEvent: (e) => e.kind === 'layer' && again.push(e.status) });
  assert.deepEqual(again.filter((s) => s !== 'waiting'), ['exists']);
});

test('multi-layer image: whiteouts and an opaque dir, as overlay and as a copy', { skip }, async (t) => {
  const store = newStore();
  const r = await pull(store, `${reg!.host}/test/busybox:multi`, { registry: quick });
  assert.equal(r.manifest.layers.length, 5);
  const snaps = new Snapshots(store.root);
  const lowers = r.config.rootfs.diff_ids.map((d) => snaps.dir(d));
  const wh = fs.lstatSync(path.join(lowers[3]!, 'data', 'a'));
  assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'whiteout is a 0/0 char device');
  const check = (root: string): void => {
    assert.deepEqual(fs.readdirSync(path.join(root, 'data')).sort(), ['b']);
    assert.deepEqual(fs.readdirSync(path.join(root, 'opq')).sort(), ['z']);
    assert.ok(fs.existsSync(path.join(root, 'bin', 'busybox')));
  };
  const c = path.join(work, 'ctr-' + process.hrtime.bigint());
  const m = rootfsMount(lowers, path.join(c, 'upper'), path.join(c, 'work'), path.join(c, 'rootfs'));
  t.after(() => {
    unmountRootfs(m.target);
    fs.rmSync(c, { recursive: true, force: true });
  });
  mountRootfs(m);
  check(m.target);
  fs.writeFileSync(path.join(m.target, 'data', 'new'), 'n');
  assert.ok(fs.existsSync(path.join(c, 'upper', 'data', 'new')), 'writes go to the upper dir');
  const copy = path.join(c, 'copy');
  fs.mkdirSync(copy);
  copyRootfs(lowers, copy);
  check(copy);
});

test('manifest list: the platform decides which manifest is pulled', { skip }, async () => {
  const client = new RegistryClient(quick);
  const ref = parseReference(`${reg!.host}/test/busybox:latest`);
  const amd = await client.getManifest(ref);
  const arm = await client.getManifest(ref, 'arm64');
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      { mediaType: MediaType.ociManifest, digest: sha256(arm.body), size: arm.body.length, platform: { os: 'linux', architecture: 'arm64' } },
      { mediaType: MediaType.ociManifest, digest: sha256(amd.body), size: amd.body.length, platform: { os: 'linux', architecture: 'amd64' } },
    ],
  };
  await client.putManifest(ref, 'list', MediaType.ociIndex, Buffer.from(JSON.stringify(index)));
  const store = newStore();
  const a = await pull(store, `${reg!.host}/test/busybox:list`, { registry: quick, platform: { os: 'linux', architecture: 'amd64' } });
  assert.equal(a.digest, sha256(amd.body));
  assert.ok(a.indexDigest);
  const b = await pull(store, `${reg!.host}/test/busybox:list`, { registry: quick, platform: { os: 'linux', architecture: 'arm64' } });
  assert.equal(b.digest, sha256(arm.body));
  assert.equal(b.config.config?.Labels?.['arch'], 'arm64');
  await assert.rejects(pull(store, `${reg!.host}/test/busybox:list`, { registry: quick, platform: { os: 'linux', architecture: 's390x' } }), /no manifest for platform linux\/s390x/);
  // By digest of the index, too.
  const c = await pull(newStore(), `${reg!.host}/test/busybox@${a.indexDigest}`, { registry: quick, platform: { os: 'linux', architecture: 'amd64' } });
  assert.equal(c.digest, a.digest);
});

test('zstd layers (pushed with our client)', { skip: skip || (!fs.existsSync('/usr/bin/zstd') && 'needs zstd') }, async () => {
  const layout = path.join(work, 'oci');
  const blob = (d: string): string => path.join(layout, 'blobs', 'sha256', d.slice(7));
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const top = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'latest')!;
  const manifest = JSON.parse(fs.readFileSync(blob(top.digest), 'utf8')) as { config: { digest: string; size: number; mediaType: string }; layers: { digest: string; size: number; mediaType: string }[] };
  const tarData = execFileSync('gzip', ['-dc', blob(manifest.layers[0]!.digest)], { maxBuffer: 1 << 28 });
  const zst = execFileSync('zstd', ['-q', '-c', '-3'], { input: tarData, maxBuffer: 1 << 28 });
  const layer = { mediaType: MediaType.ociLayerZstd, digest: sha256(zst), size: zst.length };
  const client = new RegistryClient(quick);
  const ref = parseReference(`${reg!.host}/test/zstd:latest`);
  await client.pushBlob(ref, layer, () => Readable.from([zst]));
  await client.pushBlob(ref, manifest.config, () => fs.createReadStream(blob(manifest.config.digest)));
  const m = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: manifest.config, layers: [layer] };
  await client.putManifest(ref, 'latest', MediaType.ociManifest, Buffer.from(JSON.stringify(m)));
  const store = newStore();
  const r = await pull(store, `${reg!.host}/test/zstd:latest`, { registry: quick });
  assert.equal(r.manifest.layers[0]!.mediaType, MediaType.ociLayerZstd);
  assert.ok(fs.existsSync(path.join(new Snapshots(store.root).dir(r.config.rootfs.diff_ids[0]!), 'bin', 'busybox')));
});

test('a connection dropped mid-blob is resumed with Range', { skip }, async (t) => {
  const layer = (await pull(newStore(), `${reg!.host}/test/busybox:latest`, { registry: quick, unpack: false })).manifest.layers[0]!;
  let cut = 0;
  const proxy = await startProxy(reg!, (req, up, res) => {
    if (req.url?.includes(`/blobs/${layer.digest}`) && !req.headers['range'] && cut === 0) {
      cut++;
      res.writeHead(up.statusCode ?? 200, up.headers);
      let sent = 0;
      up.on('data', (d: Buffer) => {
        if (sent >= 300_000) return;
        res.write(d);
        sent += d.length;
        if (sent >= 300_000) setImmediate(() => res.socket?.destroy());
      });
      return true;
    }
    return false;
  });
  t.after(() => proxy.close());
  const store = newStore();
  const r = await pull(store, `${proxy.host}/test/busybox:latest`, { registry: quick });
  assert.equal(cut, 1);
  const ranged = proxy.requests.filter((q) => q.url?.includes(layer.digest) && q.headers['range']);
  assert.equal(ranged.length, 1, 'one ranged request');
  assert.match(String(ranged[0]!.headers['range']), /^bytes=[1-9]\d*-$/);
  assert.ok(store.has(layer.digest));
  assert.ok(new Snapshots(store.root).has(r.config.rootfs.diff_ids[0]!));
});

test('a corrupted blob is rejected and leaves nothing in the store', { skip }, async (t) => {
  const ok = await pull(newStore(), `${reg!.host}/test/busybox:latest`, { registry: quick, unpack: false });
  const layer = ok.manifest.layers[0]!;
  const proxy = await startProxy(reg!, (req, up, res) => {
    if (!req.url?.includes(`/blobs/${layer.digest}`)) return false;
    res.writeHead(up.statusCode ?? 200, up.headers);
    let pos = 0;
    up.on('data', (d: Buffer) => {
      const b = Buffer.from(d);
      // Flip one byte past the gzip header, well inside the first tar entries.
      if (pos <= 5000 && pos + b.length > 5000) b.writeUInt8(b.readUInt8(5000 - pos) ^ 0xff, 5000 - pos);
      pos += b.length;
      res.write(b);
    });
    up.on('end', () => res.end());
    return true;
  });
  t.after(() => proxy.close());
  const store = newStore();
  await assert.rejects(pull(store, `${proxy.host}/test/busybox:latest`, { registry: quick }), (e: Error & { code?: string }) => {
    assert.ok(e.code === 'EDIGEST' || e.code === 'Z_DATA_ERROR' || /digest|invalid|incorrect/i.test(e.message), e.message);
    return true;
  });
  assert.ok(!store.has(layer.digest));
  assert.deepEqual(fs.readdirSync(path.join(store.root, 'ingest')), []);
  assert.deepEqual(new Snapshots(store.root).list(), []);
  assert.deepEqual(fs.readdirSync(path.join(store.root, 'snapshots', 'tmp')), []);
  assert.deepEqual(store.listImages(), []);
});

test('concurrent pulls of one image download each blob once', { skip }, async (t) => {
  const proxy = await startProxy(reg!, () => false);
  t.after(() => proxy.close());
  const store = newStore();
  const ref = `${proxy.host}/test/busybox:multi`;
  const [a, b] = await Promise.all([pull(store, ref, { registry: quick }), pull(store, ref, { registry: quick })]);
  assert.equal(a.digest, b.digest);
  for (const l of a.manifest.layers) {
    assert.equal(proxy.requests.filter((q) => q.method === 'GET' && q.url?.endsWith(`/blobs/${l.digest}`)).length, 1, l.digest);
  }
});

test('htpasswd basic auth: credentials from an auth file', { skip }, async (t) => {
  const dir = fs.mkdtempSync(path.join(work, 'auth-'));
  const htpasswd = path.join(dir, 'htpasswd');
  fs.writeFileSync(htpasswd, `alice:${bcrypt.hashSync('s3cret', 6)}\n`);
  const r2 = await startRegistry({ htpasswd: { file: htpasswd } });
  t.after(() => r2.stop());
  await skopeoPush(path.join(work, 'oci'), 'latest', `${r2.host}/private/bb:1`, { creds: 'alice:s3cret' });
  const authFile = path.join(dir, 'auth.json');
  fs.writeFileSync(authFile, JSON.stringify({ auths: { [r2.host]: { auth: Buffer.from('alice:s3cret').toString('base64') } } }));
  await assert.rejects(pull(newStore(), `${r2.host}/private/bb:1`, { registry: quick }), /unauthorized \(no credentials/);
  const { fileCredentials } = await import('../../images/auth');
  const r = await pull(newStore(), `${r2.host}/private/bb:1`, { registry: { retryDelayMs: 10, credentials: fileCredentials(authFile) } });
  assert.equal(r.manifest.layers.length, 1);
  const wrong = path.join(dir, 'wrong.json');
  fs.writeFileSync(wrong, JSON.stringify({ auths: { [r2.host]: { auth: Buffer.from('alice:nope').toString('base64') } } }));
  await assert.rejects(pull(newStore(), `${r2.host}/private/bb:1`, { registry: { retryDelayMs: 10, credentials: fileCredentials(wrong) } }), /credentials rejected/);
});

test('token auth: a Bearer challenge answered by a token server', { skip }, async (t) => {
  const dir = fs.mkdtempSync(path.join(work, 'token-'));
  const { key, certFile, kid } = makeTokenKey(dir);
  const issuer = 'mycontainer-test-issuer';
  const service = 'mycontainer-test-registry';
  const seen: string[] = [];
  const tokenSrv = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scope = url.searchParams.get('scope') ?? '';
    seen.push(scope);
    const auth = req.headers['authorization'] ?? '';
    if (auth !== 'Basic ' + Buffer.from('bob:pw').toString('base64')) {
      res.writeHead(401).end();
      return;
    }
    const [, name, actions] = scope.split(':');
    const token = signToken(key, kid, { issuer, service, sub: 'bob', access: scope ? [{ type: 'repository', name: name!, actions: actions!.split(',') }] : [] });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
  });
  const tport = await freePort();
  await new Promise<void>((r) => tokenSrv.listen(tport, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => tokenSrv.close(() => r())));
  const r3 = await startRegistry({ token: { realm: `http://127.0.0.1:${tport}/token`, service, issuer, certFile } });
  t.after(() => r3.stop());
  await skopeoPush(path.join(work, 'oci'), 'latest', `${r3.host}/tok/bb:1`, { creds: 'bob:pw' });
  await assert.rejects(pull(newStore(), `${r3.host}/tok/bb:1`, { registry: quick }), /token/);
  const creds = (host: string) => (host === r3.host ? { username: 'bob', password: 'pw' } : undefined);
  const r = await pull(newStore(), `${r3.host}/tok/bb:1`, { registry: { retryDelayMs: 10, credentials: creds } });
  assert.equal(r.manifest.layers.length, 1);
  assert.ok(seen.includes('repository:tok/bb:pull'));
});

test('mirrors are tried first; the registry itself when a mirror fails', { skip }, async (t) => {
  const proxy = await startProxy(reg!, () => false);
  t.after(() => proxy.close());
  const ref = `${reg!.host}/test/busybox:latest`;
  const r = await pull(newStore(), ref, { registry: { ...quick, mirrors: { [reg!.host]: [proxy.host] } } });
  assert.ok(proxy.requests.some((q) => q.url?.includes(`/blobs/${r.manifest.layers[0]!.digest}`)), 'layers came through the mirror');
  const dead = `127.0.0.1:${await freePort()}`;
  const r2 = await pull(newStore(), ref, { registry: { ...quick, retries: 1, mirrors: { [reg!.host]: [dead] } } });
  assert.equal(r2.digest, r.digest);
});
