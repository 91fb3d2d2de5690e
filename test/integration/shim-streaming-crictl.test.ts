// The streaming server against the real crictl 1.26.1 (client-go's SPDY
// executor and port-forwarder over moby/spdystream), through a CRI stub
// (test/helpers/cri-stub): crictl calls Version, then Exec/Attach/PortForward,
// then speaks SPDY/3.1 to the URL it got. Exec runs on the host.
//
// crictl 1.26.1 exits 1 (logrus.Fatal) when the command exits non-zero, with
// "command terminated with exit code N": that N is client-go's reading of the
// v4 status's ExitCode cause, so it proves the code crossed the wire.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { spawn, type ChildProcess } from 'node:child_process';
import { StreamingServer } from '../../shim/streaming/server';
import { echoServer, hostBackend, startCriStub, type CriStub, type HostBackend } from '../helpers/cri-stub';

const CRICTL = '/work/shared/tools/critest/bin/crictl';
const missing = fs.existsSync(CRICTL) ? null : `needs crictl 1.26.1 at ${CRICTL} (from the critest kit)`;
const T = { timeout: 60_000, skip: missing ?? false };

let dir = '';
let backend: HostBackend;
let server: StreamingServer;
let stub: CriStub;
let echo: { port: number; close(): Promise<void> };
const children = new Set<ChildProcess>();

before(async () => {
  if (missing) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streaming-crictl-'));
  backend = hostBackend();
  server = new StreamingServer(backend, { address: '127.0.0.1', port: 0 });
  await server.start();
  stub = await startCriStub(server, dir);
  echo = await echoServer();
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  if (missing) return;
  await stub.close();
  await server.close();
  await echo.close();
  backend.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Run { status: number | null; stdout: string; stderr: string }

/** Runs a command without blocking the event loop (the server under test lives in it); killed at the timeout. */
function run(file: string, args: string[], o: { input?: string; keepStdinOpen?: boolean; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin!.on('error', () => undefined);
    if (o.input !== undefined) child.stdin!.end(o.input);
    else if (!o.keepStdinOpen) child.stdin!.end();
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${o.timeoutMs ?? 30_000} ms)`;
      child.kill('SIGKILL');
    }, o.timeoutMs ?? 30_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      children.delete(child);
      child.stdin!.destroy();
      resolve({ status, stdout, stderr });
    });
  });
}

const crictlArgs = (...args: string[]): string[] => ['--runtime-endpoint', `unix://${stub.socket}`, '--timeout', '20s', ...args];
const crictl = (args: string[], o: { input?: string } = {}): Promise<Run> => run(CRICTL, crictlArgs(...args), o);

test('crictl exec: stdout and stderr apart; exit 0; exit 3 reported as "exit code 3"', T, async () => {
  const ok = await crictl(['exec', 'ctr1', 'sh', '-c', 'echo fine']);
  assert.deepEqual([ok.status, ok.stdout], [0, 'fine\n'], ok.stderr);
  const r = await crictl(['exec', 'ctr1', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  assert.equal(r.stdout, 'out\n');
  assert.match(r.stderr, /^err\n/);
  assert.match(r.stderr, /command terminated with exit code 3/);
  assert.equal(r.status, 1, 'crictl 1.26.1 exits 1 on a non-zero exit code');
  const exec = backend.calls.find((c) => c.kind === 'exec' && c.cmd?.includes('echo out; echo err >&2; exit 3'));
  assert.deepEqual(exec?.opts, { stdin: false, stdout: true, stderr: true, tty: false });
});

test('crictl exec -i: piped stdin reaches the command and its end ends it; 200 KB through', T, async () => {
  const r = await crictl(['exec', '-i', 'ctr1', 'sh', '-c', 'cat; echo done'], { input: 'hello\nworld\n' });
  assert.deepEqual([r.status, r.stdout], [0, 'hello\nworld\ndone\n'], r.stderr);
  const big = `${'0123456789abcdef'.repeat(12_500)}\n`;
  const b = await crictl(['exec', '-i', 'ctr1', 'wc', '-c'], { input: big });
  assert.deepEqual([b.status, b.stdout.trim()], [0, String(big.length)], b.stderr);
});

test('crictl exec -it in a terminal: the command has a tty of the terminal\'s size', T, async () => {
  // script(1) gives crictl a terminal, sized by stty before crictl reads it; stdin stays open (a closed one would send EOF into the tty)
  const cmd = [CRICTL, ...crictlArgs('exec', '-it', 'ctr1', 'sh', '-c', 'stty size; tty; exit 5')].map((a) => `'${a}'`).join(' ');
  const r = await run('script', ['-qec', `stty cols 97 rows 31; ${cmd}`, '/dev/null'], { keepStdinOpen: true });
  assert.match(r.stdout, /31 97\r\n\/dev\/pts\/\d+\r\n/, r.stdout + r.stderr);
  assert.match(r.stdout, /command terminated with exit code 5/);
  assert.ok(backend.resizes.some((s) => s.width === 97 && s.height === 31), JSON.stringify(backend.resizes));
  const exec = backend.calls.find((c) => c.kind === 'exec' && c.opts?.tty);
  assert.deepEqual(exec?.opts, { stdin: true, stdout: true, stderr: false, tty: true });
});

test('crictl attach, with and without -i', T, async () => {
  const plain = await crictl(['attach', 'ctr2']);
  assert.deepEqual([plain.status, plain.stdout], [0, 'attached to ctr2\n'], plain.stderr);
  assert.match(plain.stderr, /attached \(stderr\) to ctr2/);
  const i = await crictl(['attach', '-i', 'ctr2'], { input: 'line1\nline2\n' });
  assert.deepEqual([i.status, i.stdout], [0, 'attached to ctr2\necho: line1\necho: line2\n'], i.stderr);
});

function echoThrough(port: number, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.length >= payload.length) s.end();
    });
    s.on('close', () => resolve(got));
    s.on('error', reject);
    s.setTimeout(10_000, () => s.destroy(new Error('no echo in 10 s')));
    s.write(payload);
  });
}

async function portForward(spec: string, body: (localPort: number) => Promise<void>): Promise<void> {
  const child = spawn(CRICTL, crictlArgs('port-forward', 'pod1', spec), { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  try {
    const local = await new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no "Forwarding from" in 15 s: ${out} ${err}`)), 15_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /Forwarding from 127\.0\.0\.1:(\d+) ->/.exec(out);
        if (m) {
          clearTimeout(t);
          resolve(Number(m[1]));
        }
      });
      child.once('close', () => reject(new Error(`crictl port-forward exited: ${out} ${err}`)));
    });
    await body(local);
  } finally {
    const closed = new Promise((resolve) => child.once('close', resolve));
    child.kill('SIGINT');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await closed;
    clearTimeout(t);
    children.delete(child);
  }
}

test('crictl port-forward 0:PORT: two connections echoed, big and small; pings answered', T, async () => {
  const pings: unknown[] = [];
  const onPing = (m: unknown): void => void pings.push(m);
  subscribe('mycontainer:streaming:spdy-ping', onPing);
  try {
    await portForward(`0:${echo.port}`, async (local) => {
      assert.equal(await echoThrough(local, 'hello\n'), 'hello\n');
      const big = 'y'.repeat(300_000);
      assert.equal(await echoThrough(local, big), big);
      // client-go pings every 5 s
      await new Promise((r) => setTimeout(r, 5500));
      assert.equal(await echoThrough(local, 'still there\n'), 'still there\n');
    });
  } finally {
    unsubscribe('mycontainer:streaming:spdy-ping', onPing);
  }
  assert.ok(pings.length >= 1, 'crictl pinged and was answered');
  assert.deepEqual(backend.calls.filter((c) => c.kind === 'portForward').slice(0, 3).map((c) => [c.id, c.port]), [['pod1', echo.port], ['pod1', echo.port], ['pod1', echo.port]]);
});

test('crictl port-forward LOCAL:PORT', T, async () => {
  const free = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  await portForward(`${free}:${echo.port}`, async (local) => {
    assert.equal(local, free);
    assert.equal(await echoThrough(local, 'fixed port\n'), 'fixed port\n');
  });
});

test('crictl asks the CRI server only Version before each streaming call', T, () => {
  assert.deepEqual([...new Set(stub.calls)].sort(), ['Attach', 'Exec', 'PortForward', 'Version']);
});
