// bin/mycontainer as a person uses it, docker style: run, ps, logs, exec,
// stop, rm, restart policies, OOM, ports and bridges, volumes, bad input.
// One engine for the file (test/helpers/engine.ts): its own store, runroot
// and cgroup parent, images built from busybox-static, real CNI plugins.
// Each container is checked from inside (what it prints) and from the host
// (veths, iptables rules, mounts, cgroups).

import { describe, it, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { BUSYBOX, HTTPD, engineMissing, hostVeths, natRulesFor, startEngine, waitFor, type Engine } from '../helpers/engine';
import { mountsUnder, type CliResult } from '../helpers/bundle';

const skip = engineMissing() ?? false;

const explain = (what: string, r: CliResult): string => `${what}: exited ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function httpGet(url: string): Promise<string> {
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
      return await r.text();
    } catch (e) {
      if (i >= 30) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe('mycontainer (docker-style front end)', { skip }, () => {
  let e: Engine;
  const inspect = (ref: string, fmt: string): string => e.mc(['inspect', '-f', fmt, ref]).stdout.trim();
  /** The bridge device of a network. */
  const bridgeOf = (name: string): string => (JSON.parse(e.mc(['network', 'inspect', name]).stdout) as { Options: { 'bridge.name': string } }[])[0]!.Options['bridge.name'];
  /** A network's subnet without its last octet: "10.89.3". */
  const inspectNet = (name: string): string => {
    const doc = JSON.parse(e.mc(['network', 'inspect', name]).stdout) as { IPAM: { Config: { Subnet: string }[] } }[];
    return doc[0]!.IPAM.Config[0]!.Subnet.split('.').slice(0, 3).join('.');
  };

  before(() => {
    e = startEngine('main');
  });
  after(() => {
    e?.cleanup();
  });

  it('run --rm prints the output, passes the exit status, and leaves no container', () => {
    const r = e.mc(['run', '--rm', ...e.flags, BUSYBOX, 'sh', '-c', 'echo hello; echo oops >&2; exit 3']);
    assert.equal(r.status, 3, explain('run --rm', r));
    assert.equal(r.stdout, 'hello\n');
    assert.equal(r.stderr, 'oops\n');
    assert.equal(e.mc(['ps', '-aq']).stdout, '', 'the container is removed');
  });

  it('short names: `busybox` is localhost/busybox; unknown images are a clear error with nothing made', () => {
    const r = e.mc(['run', '--rm', '--network', 'none', ...e.flags, 'busybox', 'true']);
    assert.equal(r.status, 0, explain('run busybox', r));
    const bad = e.mc(['run', '--pull', 'never', ...e.flags, 'localhost/no-such-image', 'true']);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /no-such-image.*not found/);
    assert.equal(e.mc(['ps', '-aq']).stdout, '');
  });

  it('run -d -p 127.0.0.1:PORT:80 answers on the host; ps shows it Up with its ports; rm -f leaves no veth, rule, mount or cgroup', async () => {
    const port = await freePort();
    const vethsBefore = hostVeths(bridgeOf('bridge')).length;
    const r = e.mc(['run', '-d', '--name', 'mynginx', '-p', `127.0.0.1:${port}:80`, ...e.flags, HTTPD]);
    assert.equal(r.status, 0, explain('run -d', r));
    const id = r.stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    try {
      assert.equal(await httpGet(`http://127.0.0.1:${port}/`), 'hello from httpd\n');
    } catch (err) {
      e.mc(['rm', '-f', 'mynginx']); // no leftover for the tests after this one
      throw err;
    }
    const ps = e.mc(['ps']);
    assert.match(ps.stdout, /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/m);
    assert.match(ps.stdout, new RegExp(`^${id.slice(0, 12)}\\s+localhost/httpd:latest\\s+"httpd.*Up .*127\\.0\\.0\\.1:${port}->80/tcp\\s+mynginx$`, 'm'));
    assert.equal(e.mc(['port', 'mynginx', '80']).stdout, `127.0.0.1:${port}\n`);
    assert.equal(hostVeths(bridgeOf('bridge')).length, vethsBefore + 1, 'one veth for the container');
    assert.ok(natRulesFor(id).length > 0, 'CNI added nat rules for it');
    const ip = inspect('mynginx', '{{.NetworkSettings.IPAddress}}');
    assert.match(ip, /^10\.89\.\d+\.\d+$/);
    const cgroupDirs = ['memory', 'pids', 'unified', ''].map((h) => path.join('/sys/fs/cgroup', h, e.cgroupParent, id)).filter((d) => fs.existsSync(d));
    assert.ok(cgroupDirs.length > 0, 'the container has a cgroup under the parent');

    const rm = e.mc(['rm', '-f', 'mynginx']);
    assert.equal(rm.status, 0, explain('rm -f', rm));
    assert.equal(hostVeths(bridgeOf('bridge')).length, vethsBefore, 'the veth is gone');
    assert.deepEqual(natRulesFor(id), [], 'no nat rule names the container');
    assert.deepEqual(mountsUnder(path.join(e.root, 'containers', id)), [], 'the rootfs is unmounted');
    assert.deepEqual(mountsUnder(path.join(e.runroot, 'netns')), [], 'the network namespace is unmounted');
    assert.deepEqual(cgroupDirs.filter((d) => fs.existsSync(d)), [], 'the cgroup is removed');
    assert.equal(fs.existsSync(path.join(e.root, 'containers', id)), false, 'the container dir is removed');
    const leases = fs.readdirSync(path.join(e.root, 'cni', 'networks', 'bridge')).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
    assert.deepEqual(leases, [], 'the IPAM lease is released');
  });

  it('two containers on one bridge reach each other by IP', async () => {
    const srv = e.mc(['run', '-d', '--name', 'web-a', ...e.flags, HTTPD]);
    assert.equal(srv.status, 0, explain('run web-a', srv));
    try {
      const ip = waitFor('web-a to have an IP', () => inspect('web-a', '{{.NetworkSettings.IPAddress}}') || undefined);
      const r = e.mc(['run', '--rm', ...e.flags, BUSYBOX, 'sh', '-c', `for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://${ip}/ && exit 0; sleep 0.2; done; exit 1`]);
      assert.equal(r.status, 0, explain('wget from another container', r));
      assert.equal(r.stdout, 'hello from httpd\n');
      const hosts = e.mc(['exec', 'web-a', 'cat', '/etc/hosts']);
      assert.match(hosts.stdout, new RegExp(`^${ip.replace(/\./g, '\\.')}\\s+\\w{12}$`, 'm'), '/etc/hosts names the container');
      const resolv = e.mc(['exec', 'web-a', 'cat', '/etc/resolv.conf']);
      assert.doesNotMatch(resolv.stdout, /nameserver 127\./, 'no loopback resolver from the host');
    } finally {
      e.mc(['rm', '-f', 'web-a']);
    }
  });

  it('logs -f follows; logs --tail and -t; the log file is in the CRI format', async () => {
    const r = e.mc(['run', '-d', '--name', 'ticker', '--network', 'none', ...e.flags, BUSYBOX, 'sh', '-c', 'for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.3; done; echo done >&2']);
    assert.equal(r.status, 0, explain('run ticker', r));
    const id = r.stdout.trim();
    try {
      // started while the container runs: gets what comes later too, and ends when it exits
      const f = e.mc(['logs', '-f', 'ticker'], { timeoutMs: 20000 });
      assert.equal(f.status, 0, explain('logs -f', f));
      assert.equal(f.stdout, 'tick 1\ntick 2\ntick 3\ntick 4\ntick 5\ntick 6\n');
      assert.equal(f.stderr, 'done\n');
      assert.equal(e.mc(['logs', '--tail', '2', 'ticker']).stdout, 'tick 6\n');
      assert.match(e.mc(['logs', '-t', '--tail', '1', 'ticker']).stderr, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z done\n$/);
      const file = fs.readFileSync(path.join(e.root, 'containers', id, 'container.log'), 'utf8');
      assert.match(file, /^\d{4}-\d\d-\d\dT[\d:.]+Z stdout F tick 1$/m);
      assert.match(file, /^\d{4}-\d\d-\d\dT[\d:.]+Z stderr F done$/m);
    } finally {
      e.mc(['rm', '-f', 'ticker']);
    }
  });

  it('run -it busybox sh gets a tty; exec -it too; leaving an exec shell keeps the container running', () => {
    const r = e.mcInTerminal(['run', '-it', '--rm', '--network', 'none', ...e.flags, BUSYBOX, 'sh'], 'tty; echo in-$((6*7))\nexit 5\n');
    assert.equal(r.status, 5, explain('run -it', r));
    assert.match(r.stdout, /\/dev\/pts\/\d+\r*\n/);
    assert.match(r.stdout, /in-42/);

    const d = e.mc(['run', '-d', '-it', '--name', 'shell', '--network', 'none', ...e.flags, BUSYBOX, 'sh']);
    assert.equal(d.status, 0, explain('run -d -it', d));
    try {
      const x = e.mcInTerminal(['exec', '-it', 'shell', 'sh'], 'tty; exit 0\n');
      assert.equal(x.status, 0, explain('exec -it', x));
      assert.match(x.stdout, /\/dev\/pts\/\d+/);
      assert.equal(inspect('shell', '{{.State.Status}}'), 'running', 'leaving the exec shell keeps the container');
      // attach: what we type goes to the container's own shell; its exit ends the container
      const a = e.mcInTerminal(['attach', 'shell'], 'echo attached-$((1+1)); exit 9\n', { delayMs: 1000 });
      assert.equal(a.status, 9, explain('attach', a));
      assert.match(a.stdout, /attached-2/);
      waitFor('shell to exit', () => (inspect('shell', '{{.State.Status}}') === 'exited' ? true : undefined));
    } finally {
      e.mc(['rm', '-f', 'shell']);
    }
  });

  it('exec: exit status, env, user and workdir; exec into a stopped container is refused', () => {
    const d = e.mc(['run', '-d', '--name', 'ex', '--network', 'none', ...e.flags, BUSYBOX, 'sleep', '100']);
    assert.equal(d.status, 0, explain('run -d', d));
    try {
      const x = e.mc(['exec', '-e', 'FOO=bar', '-w', '/tmp', '-u', 'app', 'ex', 'sh', '-c', 'echo $FOO $(pwd) $(id -u); exit 4']);
      assert.equal(x.status, 4, explain('exec', x));
      assert.equal(x.stdout, 'bar /tmp 1000\n');
      e.mc(['stop', '-t', '0', 'ex']);
      const y = e.mc(['exec', 'ex', 'true']);
      assert.notEqual(y.status, 0);
      assert.match(y.stderr, /not running/);
    } finally {
      e.mc(['rm', '-f', 'ex']);
    }
  });

  it('--restart on-failure:3 restarts exactly 3 times', () => {
    const r = e.mc(['run', '-d', '--name', 'flaky', '--restart', 'on-failure:3', '--network', 'none', ...e.flags, BUSYBOX, 'sh', '-c', 'echo run; exit 2']);
    assert.equal(r.status, 0, explain('run --restart', r));
    try {
      waitFor('the restarts to end', () => {
        const s = inspect('flaky', '{{.State.Status}} {{.RestartCount}}');
        return s === 'exited 3' ? s : undefined;
      }, 30000);
      assert.equal(inspect('flaky', '{{.State.ExitCode}}'), '2');
      assert.equal(e.mc(['logs', 'flaky']).stdout, 'run\nrun\nrun\nrun\n', 'the first run and 3 restarts');
    } finally {
      e.mc(['rm', '-f', 'flaky']);
    }
  });

  it('--restart always: brought back after its process dies; stop ends it for good; ps -a shows Up and Exited rows', () => {
    const r = e.mc(['run', '-d', '--name', 'always', '--restart=always', '--network', 'none', ...e.flags, BUSYBOX, 'sleep', '100']);
    assert.equal(r.status, 0, explain('run --restart=always', r));
    const x = e.mc(['run', '-d', '--name', 'once', '--network', 'none', ...e.flags, BUSYBOX, 'true']);
    assert.equal(x.status, 0, explain('run once', x));
    try {
      const pid1 = Number(inspect('always', '{{.State.Pid}}'));
      assert.ok(pid1 > 0);
      process.kill(pid1, 'SIGKILL'); // as the OOM killer or a crash would
      waitFor('a restart', () => {
        const pid = Number(inspect('always', '{{.State.Pid}}'));
        return pid > 0 && pid !== pid1 && inspect('always', '{{.State.Status}}') === 'running' ? pid : undefined;
      });
      assert.equal(inspect('always', '{{.RestartCount}}'), '1');
      waitFor('once to exit', () => (inspect('once', '{{.State.Status}}') === 'exited' ? true : undefined));
      const ps = e.mc(['ps', '-a']).stdout;
      assert.match(ps, /\sUp [^\n]*\salways$/m);
      assert.match(ps, /\sExited \(0\) [^\n]*\sonce$/m);
      assert.doesNotMatch(e.mc(['ps']).stdout, /\sonce$/m, 'ps without -a: running ones only');
      assert.match(e.mc(['ps', '-a', '--format', '{{.Names}}|{{.State}}']).stdout, /^once\|exited$/m, 'ps --format with a template');
      const stop = e.mc(['stop', '-t', '1', 'always']);
      assert.equal(stop.status, 0, explain('stop', stop));
      assert.equal(inspect('always', '{{.State.Status}}'), 'exited');
    } finally {
      e.mc(['rm', '-f', 'always', 'once']);
    }
  });

  it('--memory 32m: the OOM kill is reported by inspect, and the limit is in the cgroup', () => {
    const r = e.mc(['run', '-d', '--name', 'hog', '--memory', '32m', '--network', 'none', ...e.flags, BUSYBOX, 'sh', '-c', 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; sleep 0.5; tail /dev/zero']);
    assert.equal(r.status, 0, explain('run --memory', r));
    try {
      waitFor('the OOM kill', () => (inspect('hog', '{{.State.Status}}') === 'exited' ? true : undefined), 30000);
      assert.equal(inspect('hog', '{{.State.OOMKilled}}'), 'true');
      assert.equal(inspect('hog', '{{.State.ExitCode}}'), '137');
      assert.equal(e.mc(['logs', 'hog']).stdout.trim(), String(32 * 1024 * 1024));
    } finally {
      e.mc(['rm', '-f', 'hog']);
    }
  });

  it('stop sends the image\'s StopSignal, then KILL after the timeout', () => {
    // httpd's image says StopSignal SIGUSR1; this process notes it and carries on
    const r = e.mc(['run', '-d', '--name', 'stubborn', '--network', 'none', ...e.flags, HTTPD, 'sh', '-c', 'trap "echo got USR1" USR1; echo ready; while true; do sleep 0.1; done']);
    assert.equal(r.status, 0, explain('run', r));
    try {
      waitFor('ready', () => (e.mc(['logs', 'stubborn']).stdout.includes('ready') ? true : undefined));
      const t0 = Date.now();
      const s = e.mc(['stop', '-t', '2', 'stubborn']);
      const took = Date.now() - t0;
      assert.equal(s.status, 0, explain('stop', s));
      assert.ok(took >= 1900, `stop waited for the timeout (${took} ms)`);
      assert.match(e.mc(['logs', 'stubborn']).stdout, /got USR1/);
      assert.equal(inspect('stubborn', '{{.State.ExitCode}}'), '137');
    } finally {
      e.mc(['rm', '-f', 'stubborn']);
    }
  });

  it('-p 8080:80 -v /webdata:/var/www/html serves the host directory; named volumes outlive their container', async () => {
    const webdata = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-webdata-'));
    fs.writeFileSync(path.join(webdata, 'index.html'), 'from the host\n');
    const port = await freePort();
    try {
      const r = e.mc(['run', '-d', '--name', 'webvol', '-p', `${port}:80`, '-v', `${webdata}:/var/www/html:ro`, ...e.flags, HTTPD]);
      assert.equal(r.status, 0, explain('run -v', r));
      assert.equal(await httpGet(`http://127.0.0.1:${port}/`), 'from the host\n');
      const w = e.mc(['exec', 'webvol', 'sh', '-c', 'echo x > /var/www/html/new']);
      assert.notEqual(w.status, 0, 'the bind is read-only');
      e.mc(['rm', '-f', 'webvol']);

      const a = e.mc(['run', '--rm', '-v', 'mcdata:/data', '--network', 'none', ...e.flags, BUSYBOX, 'sh', '-c', 'echo kept > /data/f']);
      assert.equal(a.status, 0, explain('write to a volume', a));
      assert.match(e.mc(['volume', 'ls']).stdout, /^local\s+mcdata$/m);
      const b = e.mc(['run', '--rm', '--mount', 'type=volume,source=mcdata,target=/d,readonly', '--network', 'none', ...e.flags, BUSYBOX, 'cat', '/d/f']);
      assert.equal(b.stdout, 'kept\n', explain('read it back', b));
      assert.equal(e.mc(['volume', 'rm', 'mcdata']).status, 0);
      assert.doesNotMatch(e.mc(['volume', 'ls']).stdout, /mcdata/);
    } finally {
      e.mc(['rm', '-f', 'webvol']);
      fs.rmSync(webdata, { recursive: true, force: true });
    }
  });

  it('network create/ls/rm: containers on a user network, --network host and none', () => {
    const c = e.mc(['network', 'create', 'mcnet']);
    assert.equal(c.status, 0, explain('network create', c));
    try {
      assert.match(e.mc(['network', 'ls']).stdout, /\smcnet\s+bridge\s+10\.89\.\d+\.0\/24$/m);
      const r = e.mc(['run', '--rm', '--network', 'mcnet', ...e.flags, BUSYBOX, 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
      assert.equal(r.status, 0, explain('run --network mcnet', r));
      assert.match(r.stdout, /inet 10\.89\.\d+\.\d+\/24/);
      assert.notEqual(r.stdout.match(/inet (10\.89\.\d+)\./)?.[1], inspectNet('bridge'), 'a subnet of its own');
      const none = e.mc(['run', '--rm', '--network', 'none', ...e.flags, BUSYBOX, 'sh', '-c', 'ls /sys/class/net']);
      assert.equal(none.stdout, 'lo\n', explain('--network none', none));
      const host = e.mc(['run', '--rm', '--network', 'host', ...e.flags, BUSYBOX, 'sh', '-c', 'readlink /proc/self/ns/net; hostname']);
      assert.equal(host.stdout, `${fs.readlinkSync('/proc/self/ns/net')}\n${os.hostname()}\n`, explain('--network host: the host\'s namespace and name', host));
    } finally {
      const rm = e.mc(['network', 'rm', 'mcnet']);
      assert.equal(rm.status, 0, explain('network rm', rm));
    }
    assert.doesNotMatch(e.mc(['network', 'ls']).stdout, /mcnet/);
  });

  it('bad input: a port taken, a bad -v, a name in use, a bad --restart; each a clear error and no half-made container', async () => {
    const holder = net.createServer();
    const port = await new Promise<number>((resolve) => holder.listen(0, '127.0.0.1', () => resolve((holder.address() as net.AddressInfo).port)));
    try {
      const before = e.mc(['ps', '-aq']).stdout;
      const taken = e.mc(['run', '-d', '-p', `127.0.0.1:${port}:80`, ...e.flags, HTTPD]);
      assert.notEqual(taken.status, 0);
      assert.match(taken.stderr, new RegExp(`port 127\\.0\\.0\\.1:${port}/tcp is already in use`));
      const badv = e.mc(['run', '-v', 'relative/path', ...e.flags, BUSYBOX]);
      assert.notEqual(badv.status, 0);
      assert.match(badv.stderr, /invalid -v "relative\/path"/);
      const badr = e.mc(['run', '--restart', 'sometimes', ...e.flags, BUSYBOX]);
      assert.match(badr.stderr, /invalid --restart "sometimes"/);
      const one = e.mc(['create', '--name', 'dup', ...e.flags, BUSYBOX]);
      assert.equal(one.status, 0, explain('create dup', one));
      const two = e.mc(['create', '--name', 'dup', ...e.flags, BUSYBOX]);
      assert.notEqual(two.status, 0);
      assert.match(two.stderr, /the name "\/dup" is already in use/);
      e.mc(['rm', 'dup']);
      // the failed run made a container record, and removed it with its network
      assert.equal(e.mc(['ps', '-aq']).stdout, before, 'no container is left by the failures');
      assert.deepEqual(fs.readdirSync(path.join(e.root, 'containers')).filter((d) => /^[0-9a-f]{64}$/.test(d)), []);
      assert.deepEqual(mountsUnder(e.root), []);
    } finally {
      holder.close();
    }
  });

  it('a restart-always container comes back after its monitor and process die (system service --once)', () => {
    const r = e.mc(['run', '-d', '--name', 'phoenix', '--restart', 'always', '--network', 'none', ...e.flags, BUSYBOX, 'sleep', '1000']);
    assert.equal(r.status, 0, explain('run', r));
    const id = r.stdout.trim();
    try {
      const rec = (): { state: { monitorPid: number; pid: number } } => JSON.parse(fs.readFileSync(path.join(e.root, 'containers', id, 'container.json'), 'utf8'));
      const { monitorPid, pid } = rec().state;
      assert.ok(monitorPid > 0 && pid > 0);
      // the tool dies first (nothing restarts the container), then the container
      process.kill(monitorPid, 'SIGKILL');
      waitFor('the monitor to go', () => (fs.existsSync(`/proc/${monitorPid}/stat`) && !/\) Z /.test(fs.readFileSync(`/proc/${monitorPid}/stat`, 'utf8')) ? undefined : true));
      process.kill(pid, 'SIGKILL');
      assert.match(e.mc(['ps', '-a']).stdout, /\sExited \(\d+\)[^\n]*phoenix$/m, 'without a monitor it reads as exited');
      const svc = e.mc(['system', 'service', '--once']);
      assert.equal(svc.status, 0, explain('system service --once', svc));
      assert.match(svc.stdout, /started phoenix/);
      assert.equal(inspect('phoenix', '{{.State.Status}}'), 'running');
      assert.notEqual(Number(inspect('phoenix', '{{.State.Pid}}')), pid);
    } finally {
      e.mc(['rm', '-f', 'phoenix']);
    }
  });

  it('--init: tini is PID 1 and the command its child', () => {
    const r = e.mc(['run', '--rm', '--init', '--network', 'none', ...e.flags, BUSYBOX, 'sh', '-c', 'tr "\\0" " " < /proc/1/cmdline; echo; echo $$']);
    assert.equal(r.status, 0, explain('run --init', r));
    const [cmdline, pid] = r.stdout.split('\n');
    assert.match(cmdline!, /^\/sbin\/docker-init -- sh -c /);
    assert.notEqual(pid, '1', 'the shell is not PID 1');
  });

  it('logs rotate by size (--log-opt max-size, max-file); logs reads across the files', () => {
    const r = e.mc(['run', '--name', 'chatty', '--log-opt', 'max-size=2k', '--log-opt', 'max-file=2', '--network', 'none', ...e.flags, BUSYBOX, 'sh', '-c', 'i=0; while [ $i -lt 200 ]; do i=$((i+1)); echo line-$i; done']);
    assert.equal(r.status, 0, explain('run', r));
    try {
      const id = inspect('chatty', '{{.Id}}');
      const dir = path.join(e.root, 'containers', id);
      const files = fs.readdirSync(dir).filter((f) => f.startsWith('container.log')).sort();
      assert.deepEqual(files, ['container.log', 'container.log.1']);
      for (const f of files) assert.ok(fs.statSync(path.join(dir, f)).size <= 4096, `${f} stays near max-size`);
      const lines = e.mc(['logs', 'chatty']).stdout.trim().split('\n');
      assert.equal(lines.at(-1), 'line-200');
      assert.ok(lines.length < 200, 'the oldest lines were rotated away');
      assert.deepEqual(lines, lines.map((_, k) => `line-${201 - lines.length + k}`), 'what is left is in order, with no gap');
    } finally {
      e.mc(['rm', '-f', 'chatty']);
    }
  });

  it('run flags, checked from inside: -e/--env-file, -w, -u, --entrypoint, --hostname, --read-only, caps, --privileged, --cpus, --pids-limit', () => {
    const envFile = path.join(e.root, 'env.list');
    fs.writeFileSync(envFile, '# a comment\nFROM_FILE=yes\n');
    const script = 'echo "$A $FROM_FILE $(pwd) $(id -u):$(id -g) $(hostname)"; grep CapEff /proc/self/status; touch /x 2>/dev/null && echo rw || echo ro';
    const r = e.mc(['run', '--rm', '-e', 'A=1', '--env-file', envFile, '-w', '/tmp', '-u', 'app', '--hostname', 'box', '--read-only',
      '--cap-drop', 'ALL', '--cap-add', 'NET_RAW', '--entrypoint', 'sh', '--network', 'none', ...e.flags, BUSYBOX, '-c', script]);
    assert.equal(r.status, 0, explain('run with flags', r));
    const [line, caps, ro] = r.stdout.trim().split('\n');
    assert.equal(line, '1 yes /tmp 1000:1000 box');
    // as a non-root user the effective set is empty; root with only NET_RAW below
    assert.match(caps!, /^CapEff:\s+0000000000000000$/);
    assert.equal(ro, 'ro');
    const root = e.mc(['run', '--rm', '--cap-drop', 'ALL', '--cap-add', 'NET_RAW', '--network', 'none', ...e.flags, BUSYBOX, 'grep', 'CapEff', '/proc/self/status']);
    assert.match(root.stdout, /^CapEff:\s+0000000000002000$/m, explain('root with NET_RAW only', root));
    const dflt = e.mc(['run', '--rm', '--network', 'none', ...e.flags, BUSYBOX, 'grep', 'CapEff', '/proc/self/status']);
    assert.match(dflt.stdout, /^CapEff:\s+00000000a80425fb$/m, explain('docker\'s default set', dflt));
    const priv = e.mc(['run', '--rm', '--privileged', '--network', 'none', ...e.flags, BUSYBOX, 'sh', '-c', 'grep CapEff /proc/self/status; grep -c . /proc/self/mountinfo >/dev/null; cat /proc/keys >/dev/null 2>&1 && echo unmasked']);
    const bounding = /^CapBnd:\s+([0-9a-f]+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]!;
    assert.match(priv.stdout, new RegExp(`^CapEff:\\s+${bounding}$`, 'm'), explain('--privileged: every capability we have', priv));
    assert.match(priv.stdout, /unmasked/, '--privileged: no masked paths');

    const lim = e.mc(['run', '-d', '--name', 'limits', '--cpus', '0.5', '--pids-limit', '20', '--memory', '64m', '--network', 'none', ...e.flags, BUSYBOX, 'sleep', '100']);
    assert.equal(lim.status, 0, explain('run with limits', lim));
    try {
      const id = inspect('limits', '{{.Id}}');
      const cg = (ctl: string, file: string): string => fs.readFileSync(path.join('/sys/fs/cgroup', ctl, e.cgroupParent, id, file), 'utf8').trim();
      assert.equal(cg('cpu', 'cpu.cfs_quota_us'), '50000');
      assert.equal(cg('cpu', 'cpu.cfs_period_us'), '100000');
      assert.equal(cg('pids', 'pids.max'), '20');
      assert.equal(cg('memory', 'memory.limit_in_bytes'), String(64 * 1024 * 1024));
      const u = e.mc(['update', '--memory', '96m', '--pids-limit', '30', 'limits']);
      assert.equal(u.status, 0, explain('update', u));
      assert.equal(cg('memory', 'memory.limit_in_bytes'), String(96 * 1024 * 1024));
      assert.equal(cg('pids', 'pids.max'), '30');
      const pause = e.mc(['pause', 'limits']);
      assert.equal(pause.status, 0, explain('pause', pause));
      assert.equal(cg('freezer', 'freezer.state'), 'FROZEN');
      assert.equal(inspect('limits', '{{.State.Status}}'), 'paused');
      assert.match(e.mc(['ps']).stdout, /\(Paused\)\s+limits$/m);
      assert.equal(e.mc(['unpause', 'limits']).status, 0);
      assert.equal(cg('freezer', 'freezer.state'), 'THAWED');
      assert.match(e.mc(['top', 'limits']).stdout, /^0\s+\d+\s+\d+\s+sleep 100$/m);
      const st = JSON.parse(e.mc(['stats', '--no-stream', '--format', 'json', 'limits']).stdout) as { Name: string; PIDs: number; MemLimit: number };
      assert.equal(st.Name, 'limits');
      assert.equal(st.PIDs, 1);
      assert.equal(st.MemLimit, 96 * 1024 * 1024);
      // ids by unique prefix; rename
      assert.equal(e.mc(['rename', id.slice(0, 6), 'limits2']).status, 0);
      assert.equal(inspect('limits2', '{{.Name}}'), '/limits2');
      assert.equal(e.mc(['kill', '-s', 'SIGKILL', 'limits2']).status, 0); // sleep as PID 1 has no TERM handler
      const w = e.mc(['wait', 'limits2']);
      assert.equal(w.stdout, '137\n', explain('wait', w));
    } finally {
      e.mc(['rm', '-f', 'limits', 'limits2']);
    }
  });

  it('a stopped container keeps its layers through rmi and system prune, and starts again', () => {
    const rootfs = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-gc-rootfs-'));
    const tarball = path.join(os.tmpdir(), `mc-gc-${process.pid}.tar`);
    try {
      require('../helpers/bundle').makeBusyboxRootfs(rootfs);
      fs.writeFileSync(path.join(rootfs, 'only-here'), 'unique layer\n');
      require('node:child_process').execFileSync('tar', ['-C', rootfs, '-cf', tarball, '.']);
      const imp = e.mc(['import', tarball, 'localhost/gc-test:1']);
      assert.equal(imp.status, 0, explain('import', imp));
      const c = e.mc(['create', '--name', 'keeper', '--network', 'none', ...e.flags, 'localhost/gc-test:1', 'cat', '/only-here']);
      assert.equal(c.status, 0, explain('create', c));
      // rmi runs the image gc: the layer only this container still uses must stay
      const rmi = e.mc(['rmi', 'localhost/gc-test:1']);
      assert.equal(rmi.status, 0, explain('rmi', rmi));
      const s1 = e.mc(['start', '-a', 'keeper']);
      assert.equal(s1.stdout, 'unique layer\n', explain('start -a after the image is gone', s1));
      const s2 = e.mc(['start', '-a', 'keeper']);
      assert.equal(s2.stdout, 'unique layer\n', explain('and again, from a stopped container', s2));
      // system prune: stopped containers go, then their layers
      const prune = e.mc(['system', 'prune', '-f']);
      assert.equal(prune.status, 0, explain('system prune', prune));
      assert.match(prune.stdout, /deleted container [0-9a-f]{64}/);
      assert.notEqual(e.mc(['inspect', '--type', 'container', 'keeper']).status, 0);
      assert.match(prune.stdout, /deleted 1 containers, \d+ blobs, [1-9]\d* snapshots/, 'the unused layer is collected');
    } finally {
      e.mc(['rm', '-f', 'keeper']);
      fs.rmSync(rootfs, { recursive: true, force: true });
      fs.rmSync(tarball, { force: true });
    }
  });

  it('after a crash (monitor and container killed), the next command releases the veth, the port rules and the IPAM lease', async () => {
    const port = await freePort();
    const vethsBefore = hostVeths(bridgeOf('bridge')).length;
    const r = e.mc(['run', '-d', '--name', 'crashy', '-p', `127.0.0.1:${port}:80`, ...e.flags, HTTPD]);
    assert.equal(r.status, 0, explain('run', r));
    const id = r.stdout.trim();
    try {
      assert.equal(await httpGet(`http://127.0.0.1:${port}/`), 'hello from httpd\n');
      const { monitorPid, pid } = (JSON.parse(fs.readFileSync(path.join(e.root, 'containers', id, 'container.json'), 'utf8')) as { state: { monitorPid: number; pid: number } }).state;
      process.kill(monitorPid, 'SIGKILL');
      process.kill(pid, 'SIGKILL');
      waitFor('both to die', () => ([monitorPid, pid].every((p) => !fs.existsSync(`/proc/${p}/stat`) || /\) Z /.test(fs.readFileSync(`/proc/${p}/stat`, 'utf8'))) ? true : undefined));
      assert.ok(natRulesFor(id).length > 0, 'the rules are still there before any command runs');
      const ps = e.mc(['ps', '-a']);
      assert.match(ps.stdout, /\sExited \(\d+\)[^\n]*crashy$/m, explain('ps after the crash', ps));
      assert.deepEqual(natRulesFor(id), [], 'the port rules are gone');
      assert.equal(hostVeths(bridgeOf('bridge')).length, vethsBefore, 'the veth is gone');
      const leases = fs.readdirSync(path.join(e.root, 'cni', 'networks', 'bridge')).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
      assert.deepEqual(leases, [], 'the IPAM lease is released');
      assert.deepEqual(mountsUnder(path.join(e.runroot, 'netns')), [], 'the network namespace is unmounted');
      // and it can start again, on the same port
      const s = e.mc(['start', 'crashy']);
      assert.equal(s.status, 0, explain('start after the crash', s));
      assert.equal(await httpGet(`http://127.0.0.1:${port}/`), 'hello from httpd\n');
    } finally {
      e.mc(['rm', '-f', 'crashy']);
    }
  });

  it('-P publishes the image\'s exposed ports; --network container:X shares X\'s network; --tmpfs', async () => {
    const r = e.mc(['run', '-d', '--name', 'pub', '-P', ...e.flags, HTTPD]);
    assert.equal(r.status, 0, explain('run -P', r));
    try {
      const mapping = e.mc(['port', 'pub']).stdout;
      const m = /^80\/tcp -> 0\.0\.0\.0:(\d+)$/m.exec(mapping);
      assert.ok(m, `port lists 80/tcp: ${mapping}`);
      assert.equal(await httpGet(`http://127.0.0.1:${m[1]}/`), 'hello from httpd\n');
      const j = e.mc(['run', '--rm', '--network', 'container:pub', ...e.flags, BUSYBOX, 'wget', '-qO-', 'http://127.0.0.1/']);
      assert.equal(j.stdout, 'hello from httpd\n', explain('--network container:pub reaches its localhost', j));
      const t = e.mc(['run', '--rm', '--tmpfs', '/scratch', '--read-only', '--network', 'none', ...e.flags, BUSYBOX, 'sh', '-c', 'echo x > /scratch/f && grep " /scratch " /proc/self/mountinfo']);
      assert.equal(t.status, 0, explain('--tmpfs on a read-only root', t));
      assert.match(t.stdout, / \/scratch .* - tmpfs /);
    } finally {
      e.mc(['rm', '-f', 'pub']);
    }
  });

  it('a foreground run passes the signals it gets on to the container (sig-proxy)', async () => {
    const { spawn } = require('node:child_process') as typeof import('node:child_process');
    const child = spawn(require('../helpers/bundle').FRONTEND, ['--root', e.root, '--runroot', e.runroot, 'run', '--rm', '--name', 'sigs', '--network', 'none', ...e.flags, BUSYBOX,
      'sh', '-c', 'trap "echo got INT; exit 7" INT; echo ready; while true; do sleep 0.1; done'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const t = setInterval(() => {
        if (out.includes('ready')) {
          clearInterval(t);
          child.kill('SIGINT');
        }
      }, 50);
      child.on('exit', (c) => {
        clearInterval(t);
        resolve(c);
      });
    });
    assert.equal(code, 7, `the container's exit status: ${out}`);
    assert.match(out, /got INT/);
    assert.notEqual(e.mc(['inspect', 'sigs']).status, 0, '--rm removed it');
  });

  it('a command that cannot run: 127 (not found) or 126 (not executable), as docker, and no container is left', () => {
    const nf = e.mc(['run', '--rm', '--network', 'none', ...e.flags, BUSYBOX, '/nonexistent']);
    assert.equal(nf.status, 127, explain('run /nonexistent', nf));
    assert.match(nf.stderr, /cannot start container \w+: .*"\/nonexistent".*no such file or directory/);
    const nx = e.mc(['run', '--network', 'none', ...e.flags, BUSYBOX, '/etc/passwd']);
    assert.equal(nx.status, 126, explain('run /etc/passwd', nx));
    assert.equal(e.mc(['ps', '-aq']).stdout, '', 'a run that cannot start leaves no container');
    const fg = e.mc(['run', '-i', '--rm', '--network', 'none', ...e.flags, BUSYBOX, 'nosuchcmd']);
    assert.equal(fg.status, 127, explain('run -i nosuchcmd', fg));
  });

  it('--debug shows every syscall and cgroup write of the run, the init\'s too, with why', () => {
    const r = e.mc(['--debug', 'run', '--rm', '--network', 'none', '--memory', '40m', ...e.flags, BUSYBOX, 'echo', 'traced']);
    assert.equal(r.status, 0, explain('--debug run', r));
    assert.equal(r.stdout, 'traced\n', 'the container\'s output is untouched');
    assert.match(r.stderr, /^debug: mount\("overlay", .*# image rootfs$/m, 'the CLI\'s own: the rootfs');
    assert.match(r.stderr, /^debug: \[cgroup\] write \S+memory\.limit_in_bytes "41943040"\s+# linux\.resources\.memory\.limit$/m, 'a cgroup write and its field');
    assert.match(r.stderr, /^debug: \[monitor\] fork\(\) = \d+ +# the init, the monitor's child/m, 'mycontainer-monitor\'s launch steps');
    assert.match(r.stderr, /^debug: \[monitor\] setns\(\d+, CLONE_NEWNS\) = 0 +# back to the host's namespace/m);
    assert.match(r.stderr, /^debug: \[init\] .*pivot_root/m, 'the init\'s, from inside');
  });

  it('network create as the first command of a fresh store (the default network is made first, without a nested lock)', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-fresh-store-'));
    const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
    const run = (args: string[]): CliResult => {
      const r = spawnSync(require('../helpers/bundle').FRONTEND, ['--root', root, '--runroot', path.join(root, 'run'), ...args], { encoding: 'utf8', timeout: 20000 });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    try {
      const c = run(['network', 'create', 'first']);
      assert.equal(c.status, 0, explain('network create in a fresh store', c));
      assert.match(run(['network', 'ls']).stdout, /\sbridge\s+bridge\s[\s\S]*\sfirst\s+bridge\s/);
      assert.equal(run(['network', 'rm', 'first']).status, 0);
    } finally {
      for (const f of fs.existsSync('/run/mycontainer-subnets') ? fs.readdirSync('/run/mycontainer-subnets') : []) {
        try {
          if (fs.readFileSync(path.join('/run/mycontainer-subnets', f), 'utf8').trim() === root) fs.rmSync(path.join('/run/mycontainer-subnets', f));
        } catch {
          // the lock
        }
      }
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
