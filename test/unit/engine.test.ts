// The front end's pure parts: docker's flag syntax, the OCI config it turns
// into, the CRI log format, docker ps's wording. No root, no kernel.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseMount, parseRestart, parseVolume } from '../../engine/cli/flags';
import { splitContainerArgv } from '../../engine/cli/argv';
import { formatTemplate } from '../../engine/cli/format';
import { ago, statusText } from '../../engine/inspect';
import { parsePublish } from '../../engine/network';
import { ALL_CAPS, DOCKER_DEFAULT_CAPS, capabilities, capsFromMask, engineSpec, hostsFile, resolvConf, INIT_PATH } from '../../engine/spec';
import { CriLogWriter, parseCri, readAll } from '../../engine/logs';
import { initialState, type Container } from '../../engine/containers';
import { shouldRestart } from '../../engine/exit';
import { baseSpec } from '../../images/bundle';

function container(over: Partial<Container['hostConfig']> = {}, config: Partial<Container['config']> = {}): Container {
  return {
    id: 'a'.repeat(64),
    name: 'c1',
    created: '2026-01-01T00:00:00Z',
    config: {
      image: 'localhost/busybox:latest', imageId: 'sha256:' + 'b'.repeat(64), entrypoint: null, cmd: null, args: ['sh'], env: [], workingDir: '/',
      user: '', tty: false, openStdin: false, hostname: 'aaaaaaaaaaaa', labels: {}, stopSignal: 'SIGTERM', stopTimeout: 10, exposedPorts: [], ...config,
    },
    hostConfig: {
      autoRemove: false, restartPolicy: { name: 'no', maximumRetryCount: 0 }, networkMode: 'bridge', portBindings: [], mounts: [], memory: 0, nanoCpus: 0,
      pidsLimit: 0, readonlyRootfs: false, capAdd: [], capDrop: [], privileged: false, init: false, logMaxSize: 0, logMaxFiles: 1, cgroupParent: '/mycontainer', ...over,
    },
    state: initialState(),
    network: null,
  };
}

test('-p as docker parses it', () => {
  assert.deepEqual(parsePublish('8080:80'), { hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, protocol: 'tcp' });
  assert.deepEqual(parsePublish('127.0.0.1:18080:80/udp'), { hostIp: '127.0.0.1', hostPort: 18080, containerPort: 80, protocol: 'udp' });
  assert.deepEqual(parsePublish('80'), { hostIp: '0.0.0.0', hostPort: 0, containerPort: 80, protocol: 'tcp' });
  assert.deepEqual(parsePublish('127.0.0.1::80'), { hostIp: '127.0.0.1', hostPort: 0, containerPort: 80, protocol: 'tcp' });
  for (const bad of ['x:80', '80:', '1.2.3:80:80', '70000:80', '80/sctp']) assert.throws(() => parsePublish(bad), /invalid -p/, bad);
});

test('-v and --mount: binds, named and anonymous volumes, options; bad specs name themselves', () => {
  assert.deepEqual(parseVolume('/srv/www:/var/www:ro'), { type: 'bind', source: '/srv/www', destination: '/var/www', readonly: true });
  assert.deepEqual(parseVolume('data:/data'), { type: 'volume', source: 'data', destination: '/data', readonly: false });
  const anon = parseVolume('/cache');
  assert.equal(anon.type, 'volume');
  assert.match(anon.source, /^[0-9a-f]{64}$/);
  for (const bad of ['relative/path', 'a:b', '/a:/b:bogus', '/a:/b:ro:x', './here:/x']) assert.throws(() => parseVolume(bad), /invalid -v/, bad);
  assert.deepEqual(parseMount('type=bind,source=/a,target=/b,readonly'), { type: 'bind', source: '/a', destination: '/b', readonly: true });
  assert.deepEqual(parseMount('type=volume,src=v,dst=/d'), { type: 'volume', source: 'v', destination: '/d', readonly: false });
  assert.throws(() => parseMount('type=nfs,target=/x'), /type must be/);
  assert.throws(() => parseMount('type=bind,source=rel,target=/x'), /absolute source/);
});

test('--restart policies, and which exits restart', () => {
  assert.deepEqual(parseRestart('on-failure:3'), { name: 'on-failure', maximumRetryCount: 3 });
  assert.deepEqual(parseRestart('always'), { name: 'always', maximumRetryCount: 0 });
  for (const bad of ['sometimes', 'always:3', 'on-failure:x']) assert.throws(() => parseRestart(bad), /invalid --restart/, bad);
  const c = container({ restartPolicy: { name: 'on-failure', maximumRetryCount: 2 } });
  assert.equal(shouldRestart(c, 1), true);
  assert.equal(shouldRestart(c, 0), false, 'on-failure: not after success');
  c.state.restartCount = 2;
  assert.equal(shouldRestart(c, 1), false, 'the count is spent');
  const a = container({ restartPolicy: { name: 'always', maximumRetryCount: 0 } });
  assert.equal(shouldRestart(a, 0), true);
  a.state.manuallyStopped = true;
  assert.equal(shouldRestart(a, 0), false, 'a stop by the user wins');
});

test('the command line: "--" goes after the image (or container), whatever flags come first', () => {
  assert.deepEqual(splitContainerArgv(['run', '-it', '--rm', 'busybox', 'sh', '-c', 'ls -l'], ['run']), ['run', '-it', '--rm', 'busybox', '--', 'sh', '-c', 'ls -l']);
  assert.deepEqual(splitContainerArgv(['--root', '/r', 'run', '-p', '80:80', '-e', 'A=1', '--name=x', 'img', '-v'], ['run']), ['--root', '/r', 'run', '-p', '80:80', '-e', 'A=1', '--name=x', 'img', '--', '-v']);
  assert.deepEqual(splitContainerArgv(['exec', '-it', 'c1', 'ls', '-la'], ['exec']), ['exec', '-it', 'c1', '--', 'ls', '-la']);
  assert.deepEqual(splitContainerArgv(['ps', '-a'], ['run']), ['ps', '-a'], 'other commands are left alone');
});

test('capabilities: docker\'s default set, --cap-add/--cap-drop with ALL, --privileged within our bounding set', () => {
  assert.deepEqual(capabilities([], [], false), DOCKER_DEFAULT_CAPS);
  assert.deepEqual(capabilities(['NET_RAW'], ['ALL'], false), ['CAP_NET_RAW']);
  assert.ok(capabilities(['SYS_ADMIN'], ['chown'], false).includes('CAP_SYS_ADMIN'));
  assert.ok(!capabilities([], ['chown'], false).includes('CAP_CHOWN'));
  assert.throws(() => capabilities(['NOPE'], [], false), /unknown capability "CAP_NOPE"/);
  const bounding = ALL_CAPS.filter((c) => c !== 'CAP_SYS_RESOURCE');
  assert.deepEqual(capabilities([], [], true, bounding), bounding);
  assert.deepEqual(capsFromMask('3'), ['CAP_CHOWN', 'CAP_DAC_OVERRIDE']);
  assert.equal(capsFromMask('1fffeffffff').length, ALL_CAPS.length - 1);
});

test('engineSpec: namespaces by --network, mounts, resources, read-only root, --init, privileged', () => {
  const files = { hosts: '/c/hosts', hostname: '/c/hostname', resolvConf: '/c/resolv.conf' };
  const input = (c: Container, netnsPath: string | null = '/run/x/netns/c1') => ({ container: c, spec: baseSpec(), files, volumeSources: { '/data': '/v/data/_data' }, netnsPath, nofileHard: 20000, cgroupsPath: '/mycontainer/c1' });
  const c = container({
    mounts: [{ type: 'bind', source: '/srv', destination: '/srv', readonly: true }, { type: 'volume', source: 'data', destination: '/data', readonly: false }],
    memory: 32 * 1024 * 1024, nanoCpus: 5e8, pidsLimit: 20, readonlyRootfs: true, init: true,
  });
  const s = engineSpec(input(c));
  assert.deepEqual(s.linux?.namespaces?.find((n) => n.type === 'network'), { type: 'network', path: '/run/x/netns/c1' });
  assert.deepEqual(s.linux?.resources, { memory: { limit: 32 * 1024 * 1024, swap: 32 * 1024 * 1024 }, cpu: { period: 100000, quota: 50000 }, pids: { limit: 20 } });
  assert.equal(s.root?.readonly, true);
  assert.equal(s.linux?.cgroupsPath, '/mycontainer/c1');
  assert.deepEqual(s.process?.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 20000, soft: 20000 }]);
  assert.deepEqual(s.process?.args, [INIT_PATH, '--', 'sh']);
  const dests = (s.mounts ?? []).map((m) => m.destination);
  for (const d of ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf', '/srv', '/data', INIT_PATH]) assert.ok(dests.includes(d), d);
  assert.deepEqual(s.mounts?.find((m) => m.destination === '/data')?.source, '/v/data/_data');
  assert.ok(s.mounts?.find((m) => m.destination === '/srv')?.options?.includes('ro'));
  assert.ok(s.linux?.seccomp, 'the default seccomp profile');

  const host = engineSpec(input(container({ networkMode: 'host' }), null));
  assert.equal(host.linux?.namespaces?.some((n) => n.type === 'network'), false, '--network host: no network namespace');
  assert.equal(host.mounts?.some((m) => m.destination === '/etc/hostname'), false);
  const priv = engineSpec(input(container({ privileged: true })));
  assert.equal(priv.linux?.seccomp, undefined);
  assert.equal(priv.linux?.maskedPaths, undefined);
  assert.deepEqual(priv.mounts?.find((m) => m.destination === '/sys')?.options, ['nosuid', 'noexec', 'nodev', 'rw']);
});

test('/etc/hosts and resolv.conf as docker writes them', () => {
  assert.match(hostsFile('box', '10.89.0.2'), /^127\.0\.0\.1\tlocalhost$/m);
  assert.match(hostsFile('box', '10.89.0.2'), /^10\.89\.0\.2\tbox$/m);
  assert.doesNotMatch(hostsFile('box', null), /box/);
  const r = resolvConf('nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch lan\n', false);
  assert.equal(r, 'nameserver 192.0.2.53\nsearch lan\n');
  assert.equal(resolvConf('nameserver 127.0.0.1\n', false), 'nameserver 8.8.8.8\nnameserver 8.8.4.4\n', 'docker\'s fallback when only loopback resolvers are left');
  assert.equal(resolvConf('nameserver 127.0.0.1\n', true), 'nameserver 127.0.0.1\n', '--network host keeps them');
});

test('CRI logs: F and P lines, joined on read; rotation between lines', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-cri-'));
  try {
    const file = path.join(dir, 'container.log');
    const w = new CriLogWriter(file, 300, 2);
    w.write('stdout', Buffer.from('one\ntwo'));
    w.write('stdout', Buffer.from(' halves\n'));
    w.write('stderr', Buffer.from('err\n'));
    w.close();
    const text = fs.readFileSync(file, 'utf8');
    assert.match(text, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z stdout F one$/m);
    assert.match(text, /^\S+ stdout P two$/m);
    assert.deepEqual(readAll(file).map((e) => [e.stream, e.text]), [['stdout', 'one\n'], ['stdout', 'two halves\n'], ['stderr', 'err\n']]);
    const w2 = new CriLogWriter(file, 300, 2);
    for (let i = 0; i < 20; i++) w2.write('stdout', Buffer.from(`line ${i}\n`));
    w2.close();
    assert.ok(fs.existsSync(`${file}.1`) && !fs.existsSync(`${file}.2`), 'max-file 2: one rotated file');
    for (const f of [file, `${file}.1`]) assert.ok(fs.statSync(f).size <= 300, `${f} within max-size`);
    const lines = readAll(file).map((e) => e.text);
    assert.equal(lines.at(-1), 'line 19\n');
    assert.deepEqual(parseCri('2026-01-01T00:00:00.000000000Z stdout P a\n2026-01-01T00:00:00.000000001Z stdout F b\n').map((e) => e.text), ['ab\n']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('docker ps wording and --format templates', () => {
  const now = Date.parse('2026-01-01T00:10:00Z');
  const c = container();
  assert.equal(statusText(c, now), 'Created');
  c.state.status = 'exited';
  c.state.exitCode = 3;
  c.state.finishedAt = '2026-01-01T00:05:00Z';
  assert.equal(statusText(c, now), 'Exited (3) 5 minutes ago');
  assert.equal(ago('2026-01-01T00:09:59Z', now), '1 second');
  assert.equal(ago('2025-12-31T23:10:00Z', now), 'About an hour');
  assert.equal(formatTemplate('{{.State.Status}} {{.Name}} {{json .Args}}', { State: { Status: 'running' }, Name: '/c1', Args: ['a'] }), 'running /c1 ["a"]');
  assert.equal(formatTemplate('{{.Nope.X}}', {}), '<no value>');
});
