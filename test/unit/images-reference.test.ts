import { test } from 'node:test';
import assert from 'node:assert/strict';
import { familiarName, formatReference, parseReference } from '../../images/reference';
import { parseChallenges } from '../../images/auth';
import { parseManifest, parsePlatform, selectManifest, MediaType, type ImageIndex } from '../../images/manifest';
import { entryParts } from '../../images/unpack';

const D = 'sha256:' + 'a'.repeat(64);

test('references: docker defaults', () => {
  const cases: [string, string][] = [
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['user/app', 'docker.io/user/app:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/a/b:t', 'localhost:5000/a/b:t'],
    ['127.0.0.1:5000/busybox', '127.0.0.1:5000/busybox:latest'],
    ['quay.io/org/img:v1.2-rc_3', 'quay.io/org/img:v1.2-rc_3'],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`],
    [`busybox:1@${D}`, `docker.io/library/busybox:1@${D}`],
    ['[::1]:5000/x', '[::1]:5000/x:latest'],
    ['a/b__c/d-e.f', 'docker.io/a/b__c/d-e.f:latest'],
  ];
  for (const [input, want] of cases) assert.equal(formatReference(parseReference(input)), want, input);
  assert.equal(familiarName(parseReference('busybox')), 'busybox:latest');
  assert.equal(familiarName(parseReference('user/app:1')), 'user/app:1');
  assert.equal(familiarName(parseReference('127.0.0.1:5000/x')), '127.0.0.1:5000/x:latest');
});

test('references: invalid ones are refused', () => {
  for (const bad of ['', 'Busybox', 'docker.io/Busybox', 'a//b', 'a/b/', ':tag', 'a:-tag', 'a@sha256:abc', `a@sha256:${'A'.repeat(64)}`, 'a b', '-a', 'a:' + 'x'.repeat(129), 'x/' + 'a'.repeat(260)]) {
    assert.throws(() => parseReference(bad), /invalid/, bad);
  }
});

test('WWW-Authenticate challenges', () => {
  assert.deepEqual(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
  ]);
  assert.deepEqual(parseChallenges('Basic realm="Registry Realm"'), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
  assert.deepEqual(parseChallenges('Basic realm=x, Bearer realm="a\\"b", error=insufficient_scope'), [
    { scheme: 'basic', params: { realm: 'x' } },
    { scheme: 'bearer', params: { realm: 'a"b', error: 'insufficient_scope' } },
  ]);
});

test('manifests: kinds, and platform selection', () => {
  const desc = { mediaType: MediaType.ociManifest, digest: D, size: 1 };
  const index: ImageIndex = {
    schemaVersion: 2,
    manifests: [
      { ...desc, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
      { ...desc, digest: 'sha256:' + 'b'.repeat(64), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { ...desc, digest: 'sha256:' + 'c'.repeat(64), platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest' } },
      { ...desc, digest: 'sha256:' + 'd'.repeat(64), platform: { os: 'linux', architecture: 'amd64' } },
    ],
  };
  assert.equal(selectManifest(index, parsePlatform('linux/amd64')).digest, 'sha256:' + 'd'.repeat(64));
  assert.equal(selectManifest(index, parsePlatform('linux/arm64')).digest, 'sha256:' + 'b'.repeat(64));
  assert.equal(selectManifest(index, parsePlatform('linux/arm/v7')).digest, D);
  assert.throws(() => selectManifest(index, parsePlatform('linux/arm/v6')), /no manifest for platform linux\/arm\/v6/);
  const p = parseManifest(Buffer.from(JSON.stringify({ ...index, mediaType: MediaType.dockerList })));
  assert.equal(p.kind, 'index');
  const m = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, config: desc, layers: [desc] })), MediaType.dockerManifest);
  assert.equal(m.kind, 'manifest');
  assert.throws(() => parseManifest(Buffer.from('{"schemaVersion":1}')), /schemaVersion 1/);
  assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, config: { ...desc, digest: 'sha256:zz' }, layers: [] }))), /invalid/);
});

test('layer entry names: cleaned, and `..` out of the layer refused', () => {
  assert.deepEqual(entryParts('./a/b/'), ['a', 'b']);
  assert.deepEqual(entryParts('/a//./b'), ['a', 'b']);
  assert.deepEqual(entryParts('a/../b'), ['b']);
  assert.deepEqual(entryParts('./'), []);
  assert.throws(() => entryParts('../etc/passwd'), /climbs out/);
  assert.throws(() => entryParts('a/../../b'), /climbs out/);
  assert.throws(() => entryParts('a\0b'), /NUL/);
  assert.throws(() => entryParts('x/'.repeat(3000)), /longer than/);
});
