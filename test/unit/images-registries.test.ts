// registries.conf (containers-registries.conf(5) v2): parsing, drop-ins,
// errors naming the file and line, and resolution (prefixes, mirrors,
// wildcards, blocked, short names, aliases), plus findLocal on a small store.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  BUILTIN_ORIGIN,
  findRegistry,
  isShortName,
  localCandidates,
  parseRegistriesConf,
  parseRegistriesConfFile,
  prefixMatch,
  pullCandidates,
  pullSources,
  type RegistriesConf,
} from '../../images/registries';
import { findLocal, loadRegistriesConf } from '../../images/resolve';
import { parseReference } from '../../images/reference';
import { RegistryClient } from '../../images/registry';
import { ContentStore, sha256 } from '../../images/store';
import { MediaType } from '../../images/manifest';

const D = 'sha256:' + 'a'.repeat(64);
const F = '/etc/containers/registries.conf';

const FULL = `
# a comment
unqualified-search-registries = ["registry.fedoraproject.org", "docker.io"]
short-name-mode = "enforcing"
credential-helpers = ["containers-auth.json", "pass"]

[[registry]]
prefix = "registry.k8s.io"
location = "registry.k8s.io"

[[registry.mirror]]
location = "127.0.0.1:5000"
insecure = true

[[registry.mirror]]
location = "m:5000/k8s/"
pull-from-mirror = "digest-only"

[[registry]]
prefix = "example.com/foo"
location = "internal.example.com/bar/foo"
insecure = true

[[registry]]
location = "blocked.example.com"
blocked = true

[[registry]]
prefix = "*.wild.example"

[[registry.mirror]]
location = "wildmirror:5000/cache"

[aliases]
"pause" = "registry.k8s.io/pause"
"alpine" = "docker.io/alpine"
"foo/bar" = "quay.io/foo/bar"
`;

const conf = parseRegistriesConf(FULL, F);
const sources = (c: RegistriesConf, name: string): string[] =>
  pullSources(c, parseReference(name)).map((s) => `${s.host}/${s.path}${s.insecure ? ' insecure' : ''}${s.mirror ? ' mirror' : ''}`);

test('parse: keys, tables, mirrors, aliases; registries sorted by prefix; no warnings', () => {
  assert.deepEqual(conf.unqualifiedSearchRegistries, ['registry.fedoraproject.org', 'docker.io']);
  assert.equal(conf.searchOrigin, F);
  assert.equal(conf.shortNameMode, 'enforcing');
  assert.deepEqual(conf.credentialHelpers, ['containers-auth.json', 'pass']);
  assert.deepEqual(conf.files, [F]);
  assert.deepEqual(conf.warnings, []);
  assert.deepEqual(
    conf.registries.map((r) => r.prefix),
    ['*.wild.example', 'blocked.example.com', 'example.com/foo', 'registry.k8s.io'],
  );
  const k8s = conf.registries.find((r) => r.prefix === 'registry.k8s.io')!;
  assert.deepEqual(k8s.mirrors, [
    { location: '127.0.0.1:5000', insecure: true, pullFromMirror: 'all' },
    { location: 'm:5000/k8s', insecure: false, pullFromMirror: 'digest-only' },
  ]);
  const blocked = conf.registries.find((r) => r.prefix === 'blocked.example.com')!;
  assert.equal(blocked.location, 'blocked.example.com', 'prefix defaults to location');
  assert.equal(blocked.blocked, true);
  assert.equal(conf.registries.find((r) => r.prefix === '*.wild.example')!.location, '');
  assert.deepEqual(conf.aliases['alpine'], { value: 'docker.io/library/alpine', file: F });
  assert.equal(conf.aliases['pause']!.value, 'registry.k8s.io/pause');
});

test('resolution: mirrors first in order, then the location; the prefix replaced by each location', () => {
  assert.deepEqual(sources(conf, 'registry.k8s.io/pause:3.9'), ['127.0.0.1:5000/pause insecure mirror', 'registry.k8s.io/pause']);
  // by digest, the digest-only mirror too; it maps to its path
  assert.deepEqual(sources(conf, `registry.k8s.io/pause@${D}`), ['127.0.0.1:5000/pause insecure mirror', 'm:5000/k8s/pause mirror', 'registry.k8s.io/pause']);
  assert.deepEqual(sources(conf, 'registry.k8s.io/sig/etcd:1'), ['127.0.0.1:5000/sig/etcd insecure mirror', 'registry.k8s.io/sig/etcd']);
  // location with a path, insecure
  assert.deepEqual(sources(conf, 'example.com/foo/app:1'), ['internal.example.com/bar/foo/app insecure']);
  assert.deepEqual(sources(conf, 'example.com/foo:1'), ['internal.example.com/bar/foo insecure']);
  // a prefix ends at a '/': example.com/foobar is not under example.com/foo
  assert.deepEqual(sources(conf, 'example.com/foobar:1'), ['example.com/foobar']);
  // no table: the reference's own registry
  assert.deepEqual(sources(conf, 'quay.io/a/b:1'), ['quay.io/a/b']);
  assert.deepEqual(sources(conf, 'registry.k8s.io.evil.com/pause:1'), ['registry.k8s.io.evil.com/pause']);
});

test('resolution: the longest prefix wins; wildcards match subdomains (host[:port]) only', () => {
  const c = parseRegistriesConf(
    `
[[registry]]
prefix = "example.com"
location = "a.mirror"
[[registry]]
prefix = "example.com/team"
location = "b.mirror/t"
[[registry]]
prefix = "*.example.com"
location = "c.mirror"
`,
    F,
  );
  assert.equal(findRegistry(c, parseReference('example.com/x:1'))!.prefix, 'example.com');
  assert.equal(findRegistry(c, parseReference('example.com/team/app:1'))!.prefix, 'example.com/team');
  assert.deepEqual(sources(c, 'example.com/team/app:1'), ['b.mirror/t/app']);
  assert.deepEqual(sources(c, 'sub.example.com/x:1'), ['c.mirror/x']);
  assert.deepEqual(sources(c, 'sub.example.com:5000/x:1'), ['c.mirror/x']);
  assert.equal(findRegistry(c, parseReference('example.com:5000/x')), undefined, 'a port is another registry');
  // without a location, a wildcard entry is the reference's own registry, with the table's settings
  assert.deepEqual(sources(conf, 'a.b.wild.example/x/y:1'), ['wildmirror:5000/cache/x/y mirror', 'a.b.wild.example/x/y']);
  assert.equal(prefixMatch('wild.example/x', '*.wild.example'), -1);
  assert.equal(prefixMatch('docker.io/library/busybox', '*.io'), 'docker.io'.length);
});

test('resolution: pull-from-mirror and mirror-by-digest-only', () => {
  const c = parseRegistriesConf(
    `
[[registry]]
location = "r.example"
[[registry.mirror]]
location = "tags.example"
pull-from-mirror = "tag-only"
[[registry.mirror]]
location = "all.example"
[[registry]]
location = "d.example"
mirror-by-digest-only = true
[[registry.mirror]]
location = "dm.example"
`,
    F,
  );
  assert.deepEqual(sources(c, 'r.example/x:1'), ['tags.example/x mirror', 'all.example/x mirror', 'r.example/x']);
  assert.deepEqual(sources(c, `r.example/x@${D}`), ['all.example/x mirror', 'r.example/x']);
  assert.deepEqual(sources(c, 'd.example/x:1'), ['d.example/x']);
  assert.deepEqual(sources(c, `d.example/x@${D}`), ['dm.example/x mirror', 'd.example/x']);
});

test('resolution: docker.io prefixes map through library/', () => {
  const c = parseRegistriesConf(`[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n[[registry.mirror]]\nlocation = "mirror.gcr.io"\n`, F);
  assert.deepEqual(sources(c, 'busybox'), ['mirror.gcr.io/library/busybox mirror', 'docker.io/library/busybox']);
  const c2 = parseRegistriesConf(`[[registry]]\nprefix = "quay.io/x"\nlocation = "docker.io"\n`, F);
  assert.deepEqual(sources(c2, 'quay.io/x/app:1'), ['docker.io/library/app']);
  const c3 = parseRegistriesConf(`[[registry]]\nprefix = "quay.io/x/app"\nlocation = "m.example"\n`, F);
  assert.throws(() => pullSources(c3, parseReference('quay.io/x/app:1')), /location "m\.example" of \[\[registry\]\] "quay\.io\/x\/app" .* leaves no repository/);
});

test('resolution: a blocked registry is refused, naming the file', () => {
  assert.throws(
    () => pullSources(conf, parseReference('blocked.example.com/x:1')),
    (e: Error & { code?: string }) => e.code === 'EBLOCKED' && /registry blocked\.example\.com is blocked in \/etc\/containers\/registries\.conf: refusing to pull blocked\.example\.com\/x:1/.test(e.message),
  );
});

test('short names: docker rule for a registry in the first component', () => {
  for (const n of ['busybox', 'busybox:1', 'foo/bar:1', 'library/busybox', `busybox@${D}`, 'a/b/c']) assert.equal(isShortName(n), true, n);
  for (const n of ['localhost/x', 'localhost:5000/x', 'registry.k8s.io/pause:3.9', '127.0.0.1:5000/x', 'docker.io/busybox', 'host:1/x']) assert.equal(isShortName(n), false, n);
});

test('short names: an alias alone (tag or digest carried over), else each search registry in order', () => {
  assert.deepEqual(pullCandidates(conf, 'pause:3.9').map((c) => [c.name, c.origin]), [['registry.k8s.io/pause:3.9', `alias in ${F}`]]);
  assert.deepEqual(pullCandidates(conf, 'pause').map((c) => c.name), ['registry.k8s.io/pause:latest']);
  assert.deepEqual(pullCandidates(conf, `alpine@${D}`).map((c) => c.name), [`docker.io/library/alpine@${D}`]);
  assert.deepEqual(pullCandidates(conf, 'foo/bar:2').map((c) => c.name), ['quay.io/foo/bar:2']);
  assert.deepEqual(
    pullCandidates(conf, 'busybox').map((c) => [c.name, c.origin]),
    [
      ['registry.fedoraproject.org/busybox:latest', `unqualified-search-registries in ${F}`],
      ['docker.io/library/busybox:latest', `unqualified-search-registries in ${F}`],
    ],
  );
  assert.deepEqual(pullCandidates(conf, 'registry.k8s.io/pause:3.9').map((c) => c.name), ['registry.k8s.io/pause:3.9']);
  const none = parseRegistriesConf('', '/x/empty.conf');
  assert.throws(() => pullCandidates(none, 'busybox'), /short name "busybox" did not resolve to an alias and no unqualified-search-registries are defined in \/x\/empty\.conf/);
  assert.throws(() => pullCandidates(conf, 'BusyBox'), /invalid reference/);
});

test('short names locally: alias, localhost/, the search registries, then docker.io', () => {
  assert.deepEqual(localCandidates(conf, 'pause:3.9').map((c) => c.name), [
    'registry.k8s.io/pause:3.9',
    'localhost/pause:3.9',
    'registry.fedoraproject.org/pause:3.9',
    'docker.io/library/pause:3.9',
  ]);
  const none = parseRegistriesConf('', '/x/empty.conf');
  assert.deepEqual(localCandidates(none, 'foo/bar').map((c) => c.name), ['localhost/foo/bar:latest', 'docker.io/foo/bar:latest']);
  assert.deepEqual(localCandidates(none, 'quay.io/a:1').map((c) => c.name), ['quay.io/a:1']);
});

function rejects(text: string, re: RegExp, opts: { dropIn?: boolean } = {}): void {
  assert.throws(() => parseRegistriesConfFile(text, '/tmp/r.conf', opts), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'EREGISTRIESCONF');
    assert.match(e.message, /^cannot read registries\.conf \/tmp\/r\.conf: /);
    assert.match(e.message, re);
    return true;
  });
}

test('malformed files: the file, the line and the cause', () => {
  rejects('a = 1\nunqualified-search-registries = [\n"x"\n', /line \d+: /);
  rejects('unqualified-search-registries = ["docker.io"]\n\n[[registry]]\ninsecure = yes\n', /line 4: invalid value/);
  rejects('[[registry]]\nlocation = "a.example"\ninsecure = "yes"\n', /line 3: \[\[registry\]\] "a\.example" insecure must be true or false, not "yes"/);
  rejects('[[registry]]\nlocation = "https://a.example"\n', /line 2: .*URL schemes are not supported/);
  rejects('[[registry]]\nprefix = ""\n', /line 1: \[\[registry\]\] #1: both prefix and location are unset/);
  rejects('[[registry]]\nprefix = "a.example"\n', /location is unset and the prefix is not a wildcard/);
  rejects('[[registry]]\nprefix = "*.a.example/x"\n', /a wildcard prefix must be \*\.example\.com/);
  rejects('[[registry]]\nlocation = "a.example/UPPER"\n', /"UPPER" is not a repository path/);
  rejects('[[registry]]\nlocation = "a.example"\npull-from-mirror = "all"\n', /line 3: .*pull-from-mirror is for \[\[registry\.mirror\]\]/);
  rejects('[[registry]]\nlocation = "a.example"\n[[registry.mirror]]\nlocation = "m"\npull-from-mirror = "sometimes"\n', /line 5: \[\[registry\]\] "a\.example" mirror #1: pull-from-mirror must be/);
  rejects('[[registry]]\nlocation = "a.example"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "m"\npull-from-mirror = "tag-only"\n', /line 6: .*mirror-by-digest-only/);
  rejects('[[registry]]\nlocation = "a.example"\n[[registry.mirror]]\ninsecure = true\n', /line 3: .*mirror #1: location is unset/);
  rejects('[[registry]]\nlocation = "a.example"\n[[registry]]\nprefix = "a.example/x"\nlocation = "a.example"\ninsecure = true\n', /registry location "a\.example" is defined more than once with conflicting "insecure"/);
  rejects('[registry]\nlocation = "a.example"\n', /registry must be an array of tables/);
  rejects('short-name-mode = "prompt"\n', /line 1: short-name-mode must be "enforcing", "permissive" or "disabled"/);
  rejects('unqualified-search-registries = ["quay.io/org"]\n', /line 1: unqualified-search-registries entry "quay\.io\/org" is not a registry host\[:port\]/);
  rejects('unqualified-search-registries = "docker.io"\n', /must be an array of strings/);
  rejects('[aliases]\n"x" = "quay.io/x:1"\n', /line 2: invalid alias "x" = "quay\.io\/x:1": must not contain a tag/);
  rejects('[aliases]\n"x" = "x/y"\n', /must contain a registry and a repository/);
  rejects('[aliases]\n"quay.io/x" = "quay.io/x"\n', /invalid short name "quay\.io\/x" in \[aliases\]: must not contain a registry/);
  rejects('[aliases]\n"x:1" = "quay.io/x"\n', /must not contain a tag or digest/);
  rejects('[registries.search]\nregistries = ["docker.io"]\n', /a drop-in file must be in the v2 format/, { dropIn: true });
  rejects('unqualified-search-registries = ["docker.io"]\n[registries.search]\nregistries = ["docker.io"]\n', /mixing the v1 format/);
});

test('unknown keys and repeated prefixes are warnings with the line', () => {
  const f = parseRegistriesConfFile('insecure-registries = ["x"]\n[[registry]]\nlocation = "a.example"\nmirrors = 1\n[[registry]]\nlocation = "a.example"\n', '/tmp/w.conf');
  assert.deepEqual(f.warnings, [
    '/tmp/w.conf: line 1: unknown key "insecure-registries" ignored',
    '/tmp/w.conf: line 4: unknown key "mirrors" in [[registry]] "a.example" ignored',
    '/tmp/w.conf: line 5: [[registry]] prefix "a.example" is defined again: this one is ignored',
  ]);
  assert.equal(f.registries.length, 1);
});

test('the v1 format is converted', () => {
  const c = parseRegistriesConf('[registries.search]\nregistries = ["docker.io", "quay.io"]\n[registries.insecure]\nregistries = ["i.example:5000"]\n[registries.block]\nregistries = ["b.example"]\n', F);
  assert.deepEqual(c.unqualifiedSearchRegistries, ['docker.io', 'quay.io']);
  assert.deepEqual(c.registries.map((r) => [r.prefix, r.insecure, r.blocked]), [['b.example', false, true], ['i.example:5000', true, false]]);
});

test('loadRegistriesConf: built-in defaults, drop-ins in name order, an explicit file alone', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-regconf-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const main = path.join(dir, 'registries.conf');
  const d = path.join(dir, 'registries.conf.d');
  // neither file nor dir: the built-in defaults (docker.io for short names)
  const builtin = loadRegistriesConf(undefined, { defaultFile: main, dropInDir: d });
  assert.deepEqual(builtin.unqualifiedSearchRegistries, ['docker.io']);
  assert.equal(builtin.searchOrigin, BUILTIN_ORIGIN);
  assert.deepEqual(builtin.files, []);
  fs.mkdirSync(d);
  fs.writeFileSync(path.join(d, '10-a.conf'), '[[registry]]\nlocation = "a.example"\n[aliases]\n"x" = "a.example/x"\n"y" = "a.example/y"\n');
  fs.writeFileSync(path.join(d, '20-b.conf'), 'unqualified-search-registries = ["quay.io"]\n[[registry]]\nlocation = "a.example"\nblocked = true\n[aliases]\n"y" = ""\n');
  fs.writeFileSync(path.join(d, 'ignored.txt'), 'not toml [');
  const dropIns = loadRegistriesConf(undefined, { defaultFile: main, dropInDir: d });
  assert.deepEqual(dropIns.files, [path.join(d, '10-a.conf'), path.join(d, '20-b.conf')]);
  assert.deepEqual(dropIns.unqualifiedSearchRegistries, ['quay.io']);
  assert.equal(dropIns.searchOrigin, path.join(d, '20-b.conf'));
  assert.equal(dropIns.registries.length, 1);
  assert.equal(dropIns.registries[0]!.blocked, true, 'a later drop-in replaces a prefix');
  assert.deepEqual(pullCandidates(dropIns, 'x:1').map((c) => c.name), ['a.example/x:1']);
  assert.deepEqual(pullCandidates(dropIns, 'y:1').map((c) => c.name), ['quay.io/y:1'], 'an alias reset with ""');
  // a main file that sets no search registries: none (as podman), drop-ins still apply
  fs.writeFileSync(main, 'short-name-mode = "disabled"\n');
  const withMain = loadRegistriesConf(undefined, { defaultFile: main, dropInDir: d });
  assert.deepEqual(withMain.files, [main, path.join(d, '10-a.conf'), path.join(d, '20-b.conf')]);
  assert.equal(withMain.shortNameMode, 'disabled');
  // an explicit file: alone, and it must exist
  const alone = loadRegistriesConf(main);
  assert.deepEqual(alone.files, [main]);
  assert.deepEqual(alone.unqualifiedSearchRegistries, []);
  assert.throws(() => loadRegistriesConf(path.join(dir, 'nope.conf')), /cannot read registries\.conf .*nope\.conf: no such file/);
  // a broken drop-in names itself
  fs.writeFileSync(path.join(d, '30-bad.conf'), '[[registry]]\nlocation = \n');
  assert.throws(() => loadRegistriesConf(undefined, { defaultFile: main, dropInDir: d }), /cannot read registries\.conf .*30-bad\.conf: line 2: /);
});

test('RegistryClient: pull sources from registries.conf, else the per-domain mirrors', () => {
  const ref = parseReference('registry.k8s.io/pause:3.9');
  const plain = new RegistryClient({ credentials: () => undefined, mirrors: { 'registry.k8s.io': ['m:5000'] } });
  assert.deepEqual(plain.pullSources(ref), [{ host: 'm:5000', path: 'pause', mirror: true }, { host: 'registry.k8s.io', path: 'pause' }]);
  const viaConf = new RegistryClient({ credentials: () => undefined, pullSources: (r) => pullSources(conf, r) });
  assert.deepEqual(viaConf.pullSources(ref).map((s) => `${s.host}/${s.path}`), ['127.0.0.1:5000/pause', 'registry.k8s.io/pause']);
  assert.equal(viaConf.endpoint('m.example', true).base, 'http://m.example');
  assert.equal(viaConf.endpoint('m.example').base, 'https://m.example');
});

test('findLocal: short names through localhost/, the search registries and docker.io; IDs; a clear not-found', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-findlocal-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const store = new ContentStore(root);
  const add = async (name: string, label: string): Promise<string> => {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: { l: label } }, rootfs: { type: 'layers', diff_ids: [] } }));
    const cd = sha256(config);
    await store.put(cd, config);
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: MediaType.ociConfig, digest: cd, size: config.length }, layers: [] }));
    const md = sha256(manifest);
    await store.put(md, manifest);
    await store.setImage({ name, digest: md, mediaType: MediaType.ociManifest, created: new Date().toISOString() });
    return cd;
  };
  const local = await add('localhost/busybox:latest', 'local');
  const quay = await add('quay.io/tools/jq:1', 'quay');
  const hub = await add('docker.io/local/bb:v1', 'hub');
  const c = parseRegistriesConf('unqualified-search-registries = ["quay.io"]\n[aliases]\n"jqa" = "quay.io/tools/jq"\n', F);
  assert.equal(findLocal(store, 'busybox', c).id, local);
  assert.equal(findLocal(store, 'tools/jq:1', c).id, quay);
  assert.equal(findLocal(store, 'jqa:1', c).id, quay);
  assert.equal(findLocal(store, 'local/bb:v1', c).id, hub, "names recorded docker's way");
  assert.equal(findLocal(store, 'quay.io/tools/jq:1', c).id, quay);
  assert.equal(findLocal(store, local.slice(7, 19), c).id, local);
  assert.throws(
    () => findLocal(store, 'nosuch:2', c),
    (e: Error & { code?: string }) => e.code === 'ENOTFOUND' && e.message === 'image "nosuch:2" not found (looked for localhost/nosuch:2, quay.io/nosuch:2, docker.io/library/nosuch:2)',
  );
  assert.throws(() => findLocal(store, 'quay.io/none:1', c), /image "quay\.io\/none:1" not found$/);
});
