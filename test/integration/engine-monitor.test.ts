// What holds an idle container: native/mycontainer-monitor, launched by the
// CLI as the keeper of the container's init (engine/launch.ts), or exec'd by
// the Node monitor after a restart; Node comes back in the same pid when the
// init exits (engine/monitor.ts). Checked from the host (the process's executable and
// memory, the log files, the store) and from inside (what the container
// reads on stdin, the size its terminal reports).

import { describe, it, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { BUSYBOX, engineMissing, startEngine, waitFor, type Engine } from '../helpers/engine';
import { REPO, processesMentioning } from '../helpers/bundle';
import { F, FrameReader, frame } from '../../engine/attach';
import { parseCri } from '../../engine/logs';

const skip = engineMissing() ?? (fs.existsSync(path.join(REPO, 'native', 'build', 'mycontainer-monitor')) ? false : 'needs native/build/mycontainer-monitor (make native)');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 15000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface State {
  status: string;
  pid: number;
  exitCode: number;
  restartCount: number;
  monitorPid: number;
}

describe('the idle container\'s monitor (native/mycontainer-monitor)', { skip }, () => {
  let e: Engine;
  const idOf = (name: string): string => e.mc(['inspect', '-f', '{{.Id}}', name]).stdout.trim();
  const state = (id: string): State => (JSON.parse(fs.readFileSync(path.join(e.root, 'containers', id, 'container.json'), 'utf8')) as { state: State }).state;
  const exe = (pid: number): string => {
    try {
      return fs.readlinkSync(`/proc/${pid}/exe`);
    } catch {
      return '';
    }
  };
  const isNative = (pid: number): boolean => exe(pid).endsWith('/mycontainer-monitor');
  /** The C monitor holds the container: resolves with its pid. */
  const handedOff = (id: string): Promise<number> => until(`${id.slice(0, 12)}'s hand-off to mycontainer-monitor`, () => {
    const s = state(id);
    return s.monitorPid > 0 && isNative(s.monitorPid) ? s.monitorPid : undefined;
  });
  const logText = (id: string): string => {
    try {
      return fs.readFileSync(path.join(e.root, 'containers', id, 'container.log'), 'utf8');
    } catch {
      return '';
    }
  };

  before(() => {
    e = startEngine('monitor');
  });
  after(() => {
    delete process.env['MYCONTAINER_MONITOR_HANDOFF_MS'];
    e?.cleanup();
  });

  it('run -d: mycontainer-monitor holds the container from the start, under 2 MB, in the host\'s namespaces; its output goes to the CRI log; stop brings Node back in the same pid to clean up', async () => {
    delete process.env['MYCONTAINER_MONITOR_HANDOFF_MS'];
    const r = e.mc(['run', '-d', '--name', 'idle', '--network', 'none', ...e.flags, BUSYBOX, 'sh', '-c', 'echo before; sleep 2; echo after; exec sleep 600']);
    assert.equal(r.status, 0, r.stderr);
    const id = idOf('idle');
    const pid = state(id).monitorPid;
    assert.ok(pid > 0 && isNative(pid), `the monitor is ${exe(pid)}`);
    // it forked the init inside the container's namespaces and left them
    for (const ns of ['mnt', 'pid', 'pid_for_children', 'uts', 'ipc', 'net']) {
      assert.equal(fs.readlinkSync(`/proc/${pid}/ns/${ns}`), fs.readlinkSync(`/proc/self/ns/${ns}`), `the monitor's ${ns} namespace is the host's`);
    }
    const init = state(id).pid;
    assert.equal(fs.readFileSync(`/proc/${init}/stat`, 'utf8').split(') ')[1]!.split(' ')[1], String(pid), 'the init is the monitor\'s child');
    assert.match(fs.readFileSync(`/proc/${init}/status`, 'utf8'), /^NSpid:\s+\d+\s+1$/m, 'the init is PID 1 of its own pid namespace');
    const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? NaN);
    assert.ok(kb('Rss') < 2048, `mycontainer-monitor's RSS is ${kb('Rss')} kB`);
    assert.ok(kb('Private_Clean') + kb('Private_Dirty') < 1024, rollup);
    // written by the C monitor, in CRI's format, nanoseconds and all
    const line = await until('"after" in container.log', () => logText(id).split('\n').find((l) => l.endsWith(' stdout F after')));
    assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z stdout F after$/);
    assert.equal(e.mc(['logs', 'idle']).stdout, 'before\nafter\n');
    const stop = e.mc(['stop', '-t', '1', 'idle']);
    assert.equal(stop.status, 0, stop.stderr);
    const s = state(id);
    assert.equal(s.status, 'exited');
    assert.equal(s.exitCode, 137, 'SIGKILL after the timeout, reaped by mycontainer-monitor');
    assert.equal(s.monitorPid, 0, 'Node came back, recorded the exit and cleaned up');
    assert.equal(e.mc(['inspect', '-f', '{{.State.ExitCode}}', 'idle']).stdout.trim(), '137');
    assert.ok(!fs.existsSync(path.join(e.runroot, 'runtime', id)), 'the runtime\'s container is deleted');
    assert.equal(e.mc(['rm', 'idle']).status, 0);
  });

  it('a command that cannot run: run and run -d exit 127 naming it; the monitor that was launched kills the init and exits, and nothing is left', async () => {
    for (const detach of [[], ['-d']]) {
      const r = e.mc(['run', ...detach, '--name', 'bad', '--network', 'none', ...e.flags, BUSYBOX, '/no/such/command']);
      assert.equal(r.status, 127, r.stderr);
      assert.match(r.stderr, /\/no\/such\/command/);
      assert.equal(e.mc(['ps', '-aq']).stdout, '', 'run removes what it could not start');
      await until('no mycontainer-monitor of this engine', () => (processesMentioning(e.root).some(isNative) ? undefined : true), 5000);
    }
  });

  it('a foreground run handles the exit in its own process (no Node start for it); with a restart policy it leaves the exit to the monitor, and follows every life', () => {
    process.env['MYCONTAINER_TIMING'] = '1';
    try {
      const r = e.mc(['run', '--name', 'fg', '--network', 'none', ...e.flags, BUSYBOX, 'sh', '-c', 'echo fg; exit 3']);
      assert.equal(r.status, 3, r.stderr);
      assert.equal(r.stdout, 'fg\n');
      assert.match(r.stderr, /timing: cli runtime deleted/, 'the CLI deleted the runtime\'s container');
      const id = idOf('fg');
      assert.doesNotMatch(fs.readFileSync(path.join(e.root, 'containers', id, 'monitor.log'), 'utf8'), /exit command/, 'no Node monitor ran');
      const s = state(id);
      assert.equal(s.status, 'exited');
      assert.equal(s.exitCode, 3);
      assert.equal(s.monitorPid, 0);
      assert.equal(e.mc(['rm', 'fg']).status, 0);
      const again = e.mc(['run', '--name', 'again', '--restart', 'on-failure:2', '--network', 'none', ...e.flags, BUSYBOX, 'sh', '-c', 'echo life; exit 4']);
      assert.equal(again.status, 4, again.stderr);
      assert.equal(again.stdout, 'life\nlife\nlife\n', 'attached through the two restarts');
      assert.match(fs.readFileSync(path.join(e.root, 'containers', idOf('again'), 'monitor.log'), 'utf8'), /exit command: the init exited with status 4/, 'the Node monitor restarted it');
      assert.equal(e.mc(['inspect', '-f', '{{.RestartCount}}', 'again']).stdout.trim(), '2');
      assert.equal(e.mc(['rm', 'again']).status, 0);
    } finally {
      delete process.env['MYCONTAINER_TIMING'];
    }
  });

  it('attach -i through mycontainer-monitor: 300 KB of stdin arrive whole, its end ends `cat`, the exit status comes back, --rm removes', async () => {
    process.env['MYCONTAINER_MONITOR_HANDOFF_MS'] = '0';
    const input = Buffer.from(Array.from({ length: 6000 }, (_, i) => `line ${i} ${'x'.repeat(40)}\n`).join(''));
    const cli = spawn(path.join(REPO, 'bin', 'mycontainer'), ['--root', e.root, '--runroot', e.runroot, 'run', '-i', '--rm', '--name', 'cat', '--network', 'none', ...e.flags, BUSYBOX, 'sh', '-c', 'cat; exit 7'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    cli.stdout.on('data', (d: Buffer) => out.push(d));
    cli.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = new Promise<number | null>((resolve) => cli.on('exit', (c) => resolve(c)));
    const id = await until('the container', () => {
      const x = e.mc(['inspect', '-f', '{{.Id}}', 'cat']);
      return x.status === 0 ? x.stdout.trim() : undefined;
    });
    await handedOff(id);
    cli.stdin.end(input);
    assert.equal(await code, 7, err);
    assert.ok(Buffer.concat(out).equals(input), `stdout has ${Buffer.concat(out).length} of ${input.length} bytes`);
    await until('--rm to remove it', () => (e.mc(['ps', '-aq']).stdout === '' ? true : undefined));
  });

  it('a terminal: RESIZE reaches the pty, REOPEN_LOG opens the log anew after it was renamed away, and clients get the output', async () => {
    process.env['MYCONTAINER_MONITOR_HANDOFF_MS'] = '0';
    const r = e.mc(['run', '-d', '-t', '--name', 'tty', '--network', 'none', ...e.flags, BUSYBOX, 'sh', '-c', 'while true; do stty size; sleep 0.2; done']);
    assert.equal(r.status, 0, r.stderr);
    const id = idOf('tty');
    await handedOff(id);
    const sock = net.createConnection(path.join(e.runroot, 'attach', `${id.slice(0, 12)}.sock`));
    const frames: { type: number; payload: string }[] = [];
    const reader = new FrameReader((type, payload) => frames.push({ type, payload: payload.toString() }));
    sock.on('data', (d: Buffer) => reader.push(d));
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    try {
      sock.write(frame(F.HELLO, JSON.stringify({ stdin: false })));
      sock.write(frame(F.RESIZE, JSON.stringify({ rows: 33, cols: 77 })));
      await until('"33 77" to the attached client', () => (frames.some((f) => f.type === F.STDOUT && f.payload.includes('33 77')) ? true : undefined));
      await until('"33 77" in the log', () => (logText(id).includes('stdout F 33 77') ? true : undefined));
      const log = path.join(e.root, 'containers', id, 'container.log');
      fs.renameSync(log, `${log}.rotated`);
      sock.write(frame(F.REOPEN_LOG));
      const reply = await until('LOG_REOPENED', () => frames.find((f) => f.type === F.LOG_REOPENED));
      assert.equal(reply.payload, '', 'no error');
      await until('new lines in the new container.log', () => (fs.existsSync(log) && logText(id).includes('33 77') ? true : undefined));
      assert.ok(parseCri(fs.readFileSync(`${log}.rotated`, 'utf8')).length > 0);
      assert.ok(isNative(state(id).monitorPid), 'still mycontainer-monitor');
    } finally {
      sock.destroy();
    }
    assert.equal(e.mc(['rm', '-f', 'tty']).status, 0);
  });

  it('restart on-failure:2 across hand-offs: the same monitor pid each life, the backoff, the count and the status kept; rotation by size while in C', async () => {
    process.env['MYCONTAINER_MONITOR_HANDOFF_MS'] = '0';
    const script = 'sleep 1; i=0; while [ $i -lt 60 ]; do echo "line $i of forty-odd bytes, padded out"; i=$((i+1)); done; sleep 0.3; exit 3';
    const r = e.mc(['run', '-d', '--name', 'flaky', '--restart', 'on-failure:2', '--log-opt', 'max-size=2k', '--log-opt', 'max-file=3', '--network', 'none', ...e.flags, BUSYBOX, 'sh', '-c', script]);
    assert.equal(r.status, 0, r.stderr);
    const id = idOf('flaky');
    const monitor = state(id).monitorPid;
    await handedOff(id);
    const lives = new Set<number>();
    const done = await until('the third exit', () => {
      const s = state(id);
      if (s.pid > 0) lives.add(s.pid);
      if (s.monitorPid > 0) assert.equal(s.monitorPid, monitor, 'one monitor process for every life');
      return s.status === 'exited' && s.monitorPid === 0 ? s : undefined;
    }, 30000);
    assert.equal(done.exitCode, 3);
    assert.equal(done.restartCount, 2);
    assert.ok(lives.size >= 2, `seen ${lives.size} container pids`);
    const dir = path.join(e.root, 'containers', id);
    const files = ['container.log', 'container.log.1', 'container.log.2'].map((f) => path.join(dir, f));
    for (const f of files) {
      assert.ok(fs.existsSync(f), `${path.basename(f)} exists`);
      assert.ok(fs.statSync(f).size <= 2048, `${path.basename(f)} is ${fs.statSync(f).size} bytes`);
      for (const l of fs.readFileSync(f, 'utf8').split('\n').filter(Boolean)) assert.match(l, /^\S+Z stdout F line \d+ of forty-odd bytes, padded out$/);
    }
    assert.ok(!fs.existsSync(path.join(dir, 'container.log.3')), 'max-file=3 keeps three');
    assert.equal(e.mc(['rm', 'flaky']).status, 0);
  });
});
