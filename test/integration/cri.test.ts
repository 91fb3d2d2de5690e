// The CRI server end to end, driven by the real crictl (v1.26.1, from the
// critest kit): pods on a real CNI bridge, containers, logs at kubelet's
// path, ExecSync, stats, stop and removal; the server's own restart; bad
// input with the gRPC status kubelet expects, leaving nothing behind.

import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { engineMissing, waitFor, BUSYBOX, HTTPD } from '../helpers/engine';
import * as os from 'node:os';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import bcrypt from 'bcryptjs';
import { startRegistry, skopeoPush, type RegistryHandle } from '../helpers/registry';
import { REPO } from '../helpers/bundle';
import { CRICTL, crictlMissing, startCri, type Cri } from '../helpers/cri';

const skip = engineMissing() ?? crictlMissing() ?? undefined;

const ls = (d: string): string[] => (fs.existsSync(d) ? fs.readdirSync(d) : []);
const sleep = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

describe('CRI server (crictl)', { skip, concurrency: false }, () => {
  let cri: Cri;
  let reg: RegistryHandle | null = null;
  let work = '';
  before(async () => {
    // a registry that wants a password, reached as registry.example.test through registries.conf
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-cri-reg-'));
    const htpasswd = path.join(work, 'htpasswd');
    fs.writeFileSync(htpasswd, `kube:${bcrypt.hashSync('s3cret', 6)}\n`);
    reg = await startRegistry({ htpasswd: { file: htpasswd } });
    execFileSync(path.join(REPO, 'scripts', 'build-busybox-image.sh'), [path.join(work, 'oci'), 'latest'], { stdio: 'ignore' });
    // an image of its own (not localhost/busybox's id): RemoveImage takes every name of an image
    execFileSync('umoci', ['config', '--image', `${path.join(work, 'oci')}:latest`, '--config.env', 'PULLED=1']);
    await skopeoPush(path.join(work, 'oci'), 'latest', `${reg.host}/tools/bb:1`, { creds: 'kube:s3cret' });
    const conf = path.join(work, 'registries.conf');
    fs.writeFileSync(conf, `unqualified-search-registries = []\n\n[[registry]]\nprefix = "registry.example.test"\nlocation = "${reg.host}"\ninsecure = true\n`);
    cri = startCri('e2e', { registriesConf: conf });
  });
  after(async () => {
    cri?.cleanup();
    await reg?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const ok = (args: string[]): string => {
    const r = cri.crictl(args);
    assert.equal(r.status, 0, `crictl ${args.join(' ')}: ${r.stderr}\n--- server log ---\n${cri.serverLog()}`);
    return r.stdout.trim();
  };

  it('Version, Status and the image service', () => {
    assert.match(ok(['version']), /RuntimeName:\s+mycontainer/);
    const info = JSON.parse(ok(['info'])) as { status: { conditions: { type: string; status: boolean }[] } };
    assert.deepEqual(info.status.conditions.map((c) => [c.type, c.status]), [['RuntimeReady', true], ['NetworkReady', true]]);
    const images = ok(['images']);
    assert.match(images, /localhost\/busybox\s+latest/);
    const st = JSON.parse(ok(['inspecti', BUSYBOX])) as { status: { id: string; repoTags: string[] } };
    assert.match(st.status.id, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(st.status.repoTags, [BUSYBOX]);
    // PullImage with AuthConfig, through registries.conf; the image keeps the asked name
    const denied = cri.crictl(['pull', 'registry.example.test/tools/bb:1']);
    assert.notEqual(denied.status, 0, 'no credentials: refused');
    assert.match(denied.stderr, /PullImage registry\.example\.test\/tools\/bb:1: .*(401|unauthorized|credentials)/i);
    assert.match(ok(['pull', '--creds', 'kube:s3cret', 'registry.example.test/tools/bb:1']), /Image is up to date for sha256:[0-9a-f]{64}/);
    const pulled = JSON.parse(ok(['inspecti', 'registry.example.test/tools/bb:1'])) as { status: { repoTags: string[]; repoDigests: string[] } };
    assert.deepEqual(pulled.status.repoTags, ['registry.example.test/tools/bb:1']);
    assert.match(pulled.status.repoDigests[0]!, /^registry\.example\.test\/tools\/bb@sha256:/);
    assert.doesNotMatch(ok(['images']), /127\.0\.0\.1/, 'never the mirror\'s name');
    ok(['rmi', 'registry.example.test/tools/bb:1']);
    assert.doesNotMatch(ok(['images']), /registry\.example\.test/);
    const fsinfo = ok(['imagefsinfo']);
    assert.match(fsinfo, new RegExp(`"mountpoint": "${cri.engine.root}"`));
  });

  it('a pod on the CNI bridge: container output in the CRI log at log_directory/log_path, env, hostname, DNS, pod IP and hostPort', () => {
    const hostPort = 20000 + (process.pid % 10000);
    const pod = ok(['runp', cri.podConfig('web', {
      dns_config: { servers: ['10.0.0.10'], searches: ['svc.test.local'], options: ['ndots:5'] },
      port_mappings: [{ container_port: 80, host_port: hostPort }],
    })]);
    const status = JSON.parse(ok(['inspectp', pod])) as { status: { state: string; network: { ip: string } } };
    assert.equal(status.status.state, 'SANDBOX_READY');
    assert.ok(status.status.network.ip.startsWith(`${cri.subnetPrefix}.`), `pod IP ${status.status.network.ip} on the test bridge`);
    const ctr = ok(['create', pod, cri.containerConfig('web', {
      image: { image: HTTPD },
      envs: [{ key: 'GREETING', value: 'hi there' }],
      command: ['sh', '-c', 'echo "greeting=$GREETING"; echo to-stderr >&2; hostname > /var/www/html/name; exec httpd -f -p 80 -h /var/www/html'],
    }), cri.podConfig('web')]);
    assert.equal(JSON.parse(ok(['inspect', ctr])).status.state, 'CONTAINER_CREATED');
    ok(['start', ctr]);
    assert.equal(JSON.parse(ok(['inspect', ctr])).status.state, 'CONTAINER_RUNNING');
    const logFile = path.join(cri.logDir, 'web', 'web.log');
    const lines = waitFor('the container log', () => {
      const t = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
      return t.includes('to-stderr') ? t : undefined;
    });
    assert.match(lines, /^\S+Z stdout F greeting=hi there$/m);
    assert.match(lines, /^\S+Z stderr F to-stderr$/m);
    assert.match(ok(['logs', ctr]), /greeting=hi there/);
    // what the container sees
    assert.equal(ok(['exec', '-s', ctr, 'hostname']), 'web');
    const resolv = ok(['exec', '-s', ctr, 'cat', '/etc/resolv.conf']);
    assert.match(resolv, /nameserver 10\.0\.0\.10/);
    assert.match(resolv, /search svc\.test\.local/);
    assert.match(resolv, /options ndots:5/);
    assert.match(ok(['exec', '-s', ctr, 'ip', 'addr', 'show', 'eth0']), new RegExp(`inet ${status.status.network.ip.replace(/\./g, '\\.')}/24`));
    // the pod IP from the host, and the hostPort through portmap
    const fetchText = async (url: string): Promise<string> => (await fetch(url, { signal: AbortSignal.timeout(5000) })).text();
    return (async () => {
      assert.equal((await fetchText(`http://${status.status.network.ip}/name`)).trim(), 'web');
      assert.equal((await fetchText(`http://127.0.0.1:${hostPort}/name`)).trim(), 'web');
      // ExecSync: exit status and both streams
      const both = cri.crictl(['exec', '-s', ctr, 'sh', '-c', 'echo out; echo err >&2']);
      assert.equal(both.status, 0);
      assert.match(both.stdout, /^out\n/); // crictl prints the stderr it got after it
      assert.match(both.stdout + both.stderr, /\berr\b/);
      const r = cri.crictl(['exec', '-s', ctr, 'sh', '-c', 'exit 3']);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /exited with 3/);
      const t = cri.crictl(['exec', '-s', '--timeout', '1', ctr, 'sleep', '10']);
      assert.match(t.stderr, /timed out/);
      assert.match(ok(['stats', '-o', 'json', ctr]), /workingSetBytes/);
      ok(['stop', '-t', '2', ctr]);
      const done = JSON.parse(ok(['inspect', ctr])) as { status: { state: string; exitCode: number; finishedAt: string } };
      assert.equal(done.status.state, 'CONTAINER_EXITED');
      ok(['stopp', pod]);
      assert.equal(JSON.parse(ok(['inspectp', pod])).status.state, 'SANDBOX_NOTREADY');
      ok(['rmp', pod]);
      assert.equal(ok(['pods', '-q']), '');
      assert.equal(ok(['ps', '-aq']), '');
      assert.equal(fs.readdirSync(path.join(cri.engine.root, 'cri', 'sandboxes')).length, 0, 'no sandbox dir left');
      assert.equal(fs.readdirSync(path.join(cri.engine.runroot, 'cri', 'netns')).length, 0, 'no netns left');
    })();
  });

  it('streaming through crictl: exec -i, exec -it (a pty), attach, port-forward, logs -f', () => {
    const pod = ok(['runp', cri.podConfig('stream')]);
    const ctr = ok(['create', pod, cri.containerConfig('stream', {
      image: { image: HTTPD }, stdin: true, tty: false,
      // lines from a background loop; stdin read by the main loop (a `read -t` that times out mid-line would drop what it read)
      command: ['sh', '-c', 'httpd -p 8080 -h /var/www/html; (i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.3; done) & while read x; do echo got-$x; done; wait'],
    }), cri.podConfig('stream')]);
    ok(['start', ctr]);
    // exec -i: stdin reaches the process, its output comes back, the exit status too
    const e = cri.crictl(['exec', '-i', ctr, 'sh', '-c', 'tr a-z A-Z; exit 4'], { input: 'hello stdin\n' });
    assert.match(e.stdout, /HELLO STDIN/);
    assert.match(e.stderr, /exit code 4/);
    // exec -it under script(1): a pty in the container
    const t = spawnSync('script', ['-qec', `${CRICTL} --runtime-endpoint unix://${cri.socket} exec -it ${ctr} sh -c 'tty; stty size'`, '/dev/null'], { encoding: 'utf8', timeout: 30000, env: { ...process.env, COLUMNS: '97', LINES: '31' } });
    assert.match(t.stdout, /\/dev\/pts\/\d+/, `exec -it: ${t.stdout} ${t.stderr}`);
    // attach -i: what we type reaches the main process, its output comes back
    const a = spawnSync('sh', ['-c', `(sleep 1; echo typed; sleep 1.5) | timeout 6 ${CRICTL} --runtime-endpoint unix://${cri.socket} attach -i ${ctr}`], { encoding: 'utf8', timeout: 30000 });
    assert.match(a.stdout, /got-typed/, `attach: ${a.stdout} ${a.stderr}`);
    // port-forward: a local port reaches 127.0.0.1:8080 inside the pod
    const local = 30000 + (process.pid % 10000);
    const pf = spawn(CRICTL, ['--runtime-endpoint', `unix://${cri.socket}`, 'port-forward', pod, `${local}:8080`], { stdio: 'ignore' });
    try {
      const body = waitFor('port-forward', () => {
        const r = spawnSync('curl', ['-s', '-m', '2', `http://127.0.0.1:${local}/index.html`], { encoding: 'utf8' });
        return r.status === 0 && r.stdout ? r.stdout : undefined;
      }, 15000);
      assert.match(body, /hello from httpd/);
    } finally {
      pf.kill('SIGKILL');
    }
    // logs -f follows
    const f = spawnSync('timeout', ['2', CRICTL, '--runtime-endpoint', `unix://${cri.socket}`, 'logs', '-f', ctr], { encoding: 'utf8', timeout: 10000 });
    const lines = f.stdout.split('\n').filter((l) => l.startsWith('line-'));
    assert.ok(lines.length >= 3, `logs -f: ${f.stdout}`);
    ok(['rmp', '-f', pod]);
  });

  it('GetContainerEvents streams created, started, stopped (also an exit on its own) and deleted', async () => {
    const grpc = await import('@grpc/grpc-js');
    const loader = await import('@grpc/proto-loader');
    const def = loader.loadSync(path.join(REPO, 'shim', 'proto', 'api.proto'), { keepCase: true, longs: String, enums: Number, defaults: true, oneofs: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: { RuntimeService: new (addr: string, creds: unknown) => { GetContainerEvents(req: object): NodeJS.EventEmitter & { cancel(): void }; close(): void } } } };
    const client = new pkg.runtime.v1.RuntimeService(`unix://${cri.socket}`, grpc.credentials.createInsecure());
    const got: [string, number][] = [];
    const stream = client.GetContainerEvents({});
    stream.on('data', (e: { container_id: string; container_event_type: number }) => got.push([e.container_id, e.container_event_type]));
    stream.on('error', () => undefined);
    try {
      await new Promise((r) => setTimeout(r, 300)); // subscribed
      const pod = ok(['runp', cri.podConfig('events')]);
      const a = ok(['create', pod, cri.containerConfig('ev-a', { image: { image: BUSYBOX }, command: ['sleep', '60'] }), cri.podConfig('events')]);
      const b = ok(['create', pod, cri.containerConfig('ev-b', { image: { image: BUSYBOX }, command: ['true'] }), cri.podConfig('events')]);
      ok(['start', a]);
      ok(['start', b]); // exits on its own: the poll reports it
      ok(['stop', a]);
      ok(['rm', a]);
      const deadline = Date.now() + 10000;
      while (Date.now() < deadline && !got.some(([id, t]) => id === b && t === 2)) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(got.filter(([id]) => id === a).map(([, t]) => t), [0, 1, 2, 3], 'created, started, stopped, deleted');
      assert.deepEqual(got.filter(([id]) => id === b).map(([, t]) => t), [0, 1, 2]);
      const monitorLog = (id: string): string => fs.readFileSync(path.join(cri.engine.root, 'cri', 'containers', id, 'monitor.log'), 'utf8');
      assert.doesNotMatch(monitorLog(b), /exit command/, 'the server recorded the exit itself: no Node start for it');
      ok(['rmp', '-f', pod]);
    } finally {
      stream.cancel();
      client.close();
    }
  });

  it('survives its own restart: containers keep running and logging; an exit meanwhile is reported with its code', () => {
    const pod = ok(['runp', cri.podConfig('keep')]);
    const ticker = ok(['create', pod, cri.containerConfig('ticker', { image: { image: BUSYBOX }, command: ['sh', '-c', 'i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done'] }), cri.podConfig('keep')]);
    const quitter = ok(['create', pod, cri.containerConfig('quitter', { image: { image: BUSYBOX }, command: ['sh', '-c', 'sleep 2; exit 7'] }), cri.podConfig('keep')]);
    ok(['start', ticker]);
    ok(['start', quitter]);
    const log = path.join(cri.logDir, 'keep', 'ticker.log');
    const ticks = (): number => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('tick')).length : 0);
    waitFor('ticks', () => (ticks() > 2 ? true : undefined));
    const before = JSON.parse(ok(['ps', '-a', '-o', 'json'])) as { containers: { id: string }[] };
    cri.stop('SIGKILL'); // as a crash would
    const atStop = ticks();
    sleep(3000);
    assert.ok(ticks() > atStop + 5, 'the log was written while the server was down');
    cri.start();
    const after = JSON.parse(ok(['ps', '-a', '-o', 'json'])) as { containers: { id: string }[] };
    assert.deepEqual(after.containers.map((c) => c.id).sort(), before.containers.map((c) => c.id).sort());
    assert.equal(JSON.parse(ok(['inspect', ticker])).status.state, 'CONTAINER_RUNNING');
    const q = JSON.parse(ok(['inspect', quitter])) as { status: { state: string; exitCode: number; reason: string } };
    assert.equal(q.status.state, 'CONTAINER_EXITED');
    assert.equal(q.status.exitCode, 7);
    assert.equal(q.status.reason, 'Error');
    assert.match(fs.readFileSync(path.join(cri.engine.root, 'cri', 'containers', quitter, 'monitor.log'), 'utf8'), /exit command: the init exited with status 7/, 'with the server down, the monitor\'s exit command recorded it');
    assert.equal(JSON.parse(ok(['inspectp', pod])).status.state, 'SANDBOX_READY');
    ok(['rmp', '-f', pod]);
  });

  it('bad input: the gRPC status kubelet expects, a message naming the object, nothing left behind', () => {
    const sandboxesBefore = ls(path.join(cri.engine.root, 'cri', 'sandboxes')).length;
    let r = cri.crictl(['create', 'f'.repeat(64), cri.containerConfig('x', { image: { image: BUSYBOX }, command: ['true'] }), cri.podConfig('x')]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /code = NotFound desc = CreateContainer x: sandbox \\?"f{64}\\?" not found/);
    r = cri.crictl(['runp', cri.podConfig('badport', { port_mappings: [{ container_port: 70000, host_port: 1 }] })]);
    assert.match(r.stderr, /code = InvalidArgument.*port mapping/);
    const pod = ok(['runp', cri.podConfig('noimg')]);
    r = cri.crictl(['create', pod, cri.containerConfig('noimg', { image: { image: 'localhost/does-not-exist:1' }, command: ['true'] }), cri.podConfig('noimg')]);
    assert.match(r.stderr, /code = NotFound.*does-not-exist/);
    r = cri.crictl(['inspect', '0123456789ab']);
    assert.match(r.stderr, /code = NotFound/);
    assert.equal(ok(['ps', '-aq']), '');
    ok(['rmp', '-f', pod]);
    assert.equal(ls(path.join(cri.engine.root, 'cri', 'sandboxes')).length, sandboxesBefore);
    // a RunPodSandbox that fails half-way (CNI done, then the pause process's
    // sysctl write fails) undoes it all: no record, netns, veth or IPAM lease
    const vethsBefore = spawnSync('ip', ['-o', 'link', 'show', 'master', cri.bridge], { encoding: 'utf8' }).stdout;
    r = cri.crictl(['runp', cri.podConfig('halfway', { linux: { cgroup_parent: cri.engine.cgroupParent, sysctls: { 'net.ipv4.no_such_knob': '1' } } })]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /RunPodSandbox halfway_test_uid-halfway_0: .*no_such_knob/);
    assert.equal(ls(path.join(cri.engine.root, 'cri', 'sandboxes')).length, sandboxesBefore);
    assert.deepEqual(ls(path.join(cri.engine.runroot, 'cri', 'netns')), []);
    assert.equal(spawnSync('ip', ['-o', 'link', 'show', 'master', cri.bridge], { encoding: 'utf8' }).stdout, vethsBefore);
    const leases = ls(path.join(cri.work, 'ipam')).flatMap((n) => ls(path.join(cri.work, 'ipam', n))).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
    assert.deepEqual(leases, [], 'no IPAM lease left');
    // the socket is root's alone
    assert.equal(fs.statSync(cri.socket).mode & 0o777, 0o660);
  });
});
