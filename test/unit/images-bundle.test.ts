import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imageSpec, mergeEnv, processArgs, resolveUser, DEFAULT_PATH } from '../../images/bundle';
import type { Image } from '../../images/image';

const passwd = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n# comment\nbad line\n';
const group = 'root:x:0:\napp:x:1000:\nstaff:x:50:app,other\nwheel:x:10:root\n';

test('User: names and numbers, as runc resolves them', () => {
  assert.deepEqual(resolveUser('', passwd, group), { uid: 0, gid: 0, home: '/' });
  assert.deepEqual(resolveUser('app', passwd, group), { uid: 1000, gid: 1000, home: '/home/app', additionalGids: [50] });
  assert.deepEqual(resolveUser('1000', passwd, group), { uid: 1000, gid: 1000, home: '/home/app', additionalGids: [50] });
  assert.deepEqual(resolveUser('app:staff', passwd, group), { uid: 1000, gid: 50, home: '/home/app' });
  assert.deepEqual(resolveUser('4242', passwd, group), { uid: 4242, gid: 0, home: '/' });
  assert.deepEqual(resolveUser('4242:4343', passwd, group), { uid: 4242, gid: 4343, home: '/' });
  assert.throws(() => resolveUser('nobody', passwd, group), /unable to find user nobody/);
  assert.throws(() => resolveUser('app:nogroup', passwd, group), /unable to find group nogroup/);
});

test('Entrypoint and Cmd with overrides', () => {
  assert.deepEqual(processArgs(['/ep'], ['a', 'b']), ['/ep', 'a', 'b']);
  assert.deepEqual(processArgs(['/ep'], ['a'], { cmd: ['x'] }), ['/ep', 'x']);
  assert.deepEqual(processArgs(['/ep'], ['a'], { entrypoint: ['/other'] }), ['/other']);
  assert.deepEqual(processArgs(null, ['sh']), ['sh']);
  assert.throws(() => processArgs(null, null), /no Entrypoint or Cmd/);
});

test('Env: later lists replace by name; PATH added when missing', () => {
  assert.deepEqual(mergeEnv(['A=1', 'B=2'], ['A=3']), ['A=3', 'B=2', DEFAULT_PATH]);
  assert.deepEqual(mergeEnv(['PATH=/x']), ['PATH=/x']);
});

test('image config → OCI config: args, env, cwd, labels, ports, volumes, stop signal', () => {
  const image: Image = {
    id: 'sha256:' + 'a'.repeat(64),
    record: { name: 'docker.io/library/web:1', digest: 'sha256:' + 'b'.repeat(64), mediaType: 'application/vnd.oci.image.manifest.v1+json', created: '2024-01-01T00:00:00Z' },
    manifest: { schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: 'sha256:' + 'a'.repeat(64), size: 1 }, layers: [] },
    config: {
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [] },
      config: {
        Entrypoint: ['/bin/web'],
        Cmd: ['--port', '80'],
        Env: ['A=1', 'PATH=/opt/bin'],
        WorkingDir: 'srv',
        Labels: { team: 'x' },
        ExposedPorts: { '80/tcp': {}, '443/tcp': {} },
        Volumes: { '/data': {} },
        StopSignal: 'SIGQUIT',
      },
    },
  };
  const spec = imageSpec(image, '/nonexistent-rootfs', { env: ['A=2'] });
  assert.deepEqual(spec.process!.args, ['/bin/web', '--port', '80']);
  assert.equal(spec.process!.cwd, '/srv');
  assert.deepEqual(spec.process!.env, ['HOME=/root', 'A=2', 'PATH=/opt/bin']);
  const ann = spec.annotations!;
  assert.equal(ann['team'], 'x');
  assert.equal(ann['org.opencontainers.image.exposedPorts'], '80/tcp,443/tcp');
  assert.equal(ann['mycontainer.image.volumes'], '/data');
  assert.equal(ann['org.opencontainers.image.stopSignal'], 'SIGQUIT');
  assert.equal(ann['org.opencontainers.image.ref.name'], 'web:1');
});
