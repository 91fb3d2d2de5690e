// The streaming server end to end, in process, with the host backend of
// test/helpers/cri-stub (exec runs on the host, port-forward reaches a local
// echo server) and clients that are not ours: spdy-transport's SPDY/3.1
// client, and ws. Every protocol kubelet serves: remotecommand v1-v5 over
// SPDY, v5/v4/base64/v1 over WebSocket, port-forward over both; the tokens'
// single use, expiry and 404s; the stream-creation timeout; a client that
// goes away. crictl, the Go client, is in shim-streaming-crictl.test.ts.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { connection as spdyConnection, type ClientStream, type Connection } from 'spdy-transport';
import { WebSocket } from 'ws';
import { StreamingServer, type StreamingServerOptions } from '../../shim/streaming/server';
import { echoServer, hostBackend, type HostBackend } from '../helpers/cri-stub';

const T = { timeout: 20_000 };
const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function startServer(extra: Partial<StreamingServerOptions> = {}): Promise<{ s: StreamingServer; b: HostBackend; logs: string[] }> {
  const b = hostBackend();
  const logs: string[] = [];
  const s = new StreamingServer(b, { address: '127.0.0.1', port: 0, log: (m) => logs.push(m), ...extra });
  await s.start();
  cleanups.push(() => s.close(), () => b.close());
  return { s, b, logs };
}

const exec = (cmd: string[], o: { stdin?: boolean; stdout?: boolean; stderr?: boolean; tty?: boolean } = {}) => ({
  container_id: 'ctr1', cmd, stdin: o.stdin ?? false, stdout: o.stdout ?? true, stderr: o.stderr ?? !o.tty, tty: o.tty ?? false,
});

// ---- an HTTP exchange and a SPDY client (spdy-transport)

interface HttpAnswer { status: number; head: string; body: string }

/** Sends a request on a fresh connection; returns the answer's head, and the socket if it switched protocols. */
function httpRequest(url: string, headers: Record<string, string | string[]>, method = 'POST'): Promise<HttpAnswer & { socket: net.Socket }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(u.port), u.hostname);
    cleanups.push(() => socket.destroy());
    const lines = [`${method} ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, 'Content-Length: 0'];
    for (const [k, v] of Object.entries(headers)) for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${one}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      const head = buf.subarray(0, i).toString();
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]);
      if (status === 101) {
        socket.off('data', onData);
        socket.pause();
        const rest = buf.subarray(i + 4);
        if (rest.length > 0) socket.unshift(rest);
        return resolve({ status, head, body: '', socket });
      }
      const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length >= i + 4 + len) {
        socket.off('data', onData);
        resolve({ status, head, body: buf.subarray(i + 4, i + 4 + len).toString(), socket });
      }
    };
    socket.on('data', onData);
    socket.on('error', reject);
  });
}

interface SpdyClient { conn: Connection; socket: net.Socket; head: string; open(headers: Record<string, string>): Promise<ClientStream> }

async function spdyDial(url: string, protocols: string[]): Promise<SpdyClient> {
  const a = await httpRequest(url, { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': protocols });
  assert.equal(a.status, 101, a.head + a.body);
  const conn = spdyConnection.create(a.socket, { protocol: 'spdy', isServer: false });
  conn.on('error', () => undefined);
  conn.start(3.1);
  a.socket.resume();
  return {
    conn, socket: a.socket, head: a.head,
    open: (headers) => new Promise((resolve, reject) => {
      const st = conn.request({ method: 'POST', path: '/', headers }, (e) => e && reject(e));
      st.on('response', () => resolve(st));
      st.on('error', reject);
      st.on('close', () => reject(new Error(`stream ${JSON.stringify(headers)} closed before its reply`)));
    }),
  };
}

/** Everything a stream delivers until it ends, is reset, or its connection goes. */
function readAll(st: ClientStream): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    st.on('data', (d: Buffer) => chunks.push(d));
    const done = (): void => resolve(Buffer.concat(chunks).toString());
    st.on('end', done);
    st.on('close', done);
    st.on('error', done);
  });
}

async function spdyExec(url: string, protocol: string, o: { stdin?: string; stdout?: boolean; stderr?: boolean; resize?: { Width: number; Height: number } } = {}): Promise<{ stdout: string; stderr: string; error: string; head: string }> {
  const c = await spdyDial(url, [protocol]);
  const error = await c.open({ streamtype: 'error' });
  const errorText = readAll(error);
  let stdin: ClientStream | undefined;
  if (o.stdin !== undefined) stdin = await c.open({ streamtype: 'stdin' });
  const stdout = o.stdout === false ? null : await c.open({ streamtype: 'stdout' });
  const stderr = o.stderr ? await c.open({ streamtype: 'stderr' }) : null;
  if (o.resize) {
    const r = await c.open({ streamtype: 'resize' });
    r.write(`${JSON.stringify(o.resize)}\n`);
  }
  const outs = [stdout ? readAll(stdout) : Promise.resolve(''), stderr ? readAll(stderr) : Promise.resolve('')];
  if (stdin) stdin.end(o.stdin);
  const [out, err, status] = await Promise.all([...outs, errorText]);
  c.socket.destroy();
  return { stdout: out!, stderr: err!, error: status!, head: c.head };
}

// ---- SPDY remotecommand

test('SPDY v4 exec: stdout and stderr apart, exit 0 as Success, exit 3 as NonZeroExitCode with its ExitCode cause', T, async () => {
  const { s, b } = await startServer();
  const ok = await spdyExec(s.getExec(exec(['sh', '-c', 'echo out; echo err >&2'])).url, 'v4.channel.k8s.io', { stderr: true });
  assert.match(ok.head, /X-Stream-Protocol-Version: v4\.channel\.k8s\.io/);
  assert.deepEqual([ok.stdout, ok.stderr], ['out\n', 'err\n']);
  assert.deepEqual(JSON.parse(ok.error), { metadata: {}, status: 'Success' });

  const bad = await spdyExec(s.getExec(exec(['sh', '-c', 'echo out; echo err >&2; exit 3'])).url, 'v4.channel.k8s.io', { stderr: true });
  assert.deepEqual([bad.stdout, bad.stderr], ['out\n', 'err\n']);
  const st = JSON.parse(bad.error);
  assert.equal(st.status, 'Failure');
  assert.equal(st.reason, 'NonZeroExitCode');
  assert.deepEqual(st.details.causes, [{ reason: 'ExitCode', message: '3' }]);
  assert.deepEqual(b.calls[1], { kind: 'exec', id: 'ctr1', cmd: ['sh', '-c', 'echo out; echo err >&2; exit 3'], opts: { stdin: false, stdout: true, stderr: true, tty: false } });
});

test('SPDY exec: stdin reaches the process and its end (FIN) ends it; 300 KB each way', T, async () => {
  const { s } = await startServer();
  const r = await spdyExec(s.getExec(exec(['sh', '-c', 'cat; echo done'], { stdin: true, stderr: false })).url, 'v4.channel.k8s.io', { stdin: 'hello\nworld\n' });
  assert.equal(r.stdout, 'hello\nworld\ndone\n');
  const big = 'x'.repeat(300_000);
  const r2 = await spdyExec(s.getExec(exec(['cat'], { stdin: true, stderr: false })).url, 'v4.channel.k8s.io', { stdin: big });
  assert.equal(r2.stdout.length, big.length, 'past the 64 KiB window: WINDOW_UPDATEs kept spdy-transport sending');
  assert.equal(r2.stdout, big);
});

test('SPDY exec with a tty: the resize stream sizes the terminal; stderr is merged', T, async () => {
  const { s, b } = await startServer();
  const r = await spdyExec(s.getExec(exec(['sh', '-c', 'stty size; test -t 1 && echo tty; echo e >&2'], { tty: true })).url, 'v4.channel.k8s.io', { resize: { Width: 123, Height: 45 } });
  assert.match(r.stdout, /^45 123\r\ntty\r\ne\r\n$/);
  assert.deepEqual(b.resizes, [{ width: 123, height: 45 }]);
});

test('SPDY versions: v5 is v4; v3 and v2 write only a failure, as text; v1 resets the error stream', T, async () => {
  const { s } = await startServer();
  const cmd = exec(['sh', '-c', 'echo hi; exit 2'], { stderr: false });
  const v5 = await spdyExec(s.getExec(cmd).url, 'v5.channel.k8s.io');
  assert.equal(JSON.parse(v5.error).details.causes[0].message, '2');
  for (const p of ['v3.channel.k8s.io', 'v2.channel.k8s.io']) {
    const r = await spdyExec(s.getExec(cmd).url, p);
    assert.equal(r.stdout, 'hi\n', p);
    assert.equal(r.error, 'command terminated with non-zero exit code: exit status 2', p);
    const ok = await spdyExec(s.getExec(exec(['true'], { stderr: false })).url, p);
    assert.equal(ok.error, '', `${p}: nothing on success`);
  }
  const v1 = await spdyExec(s.getExec(cmd).url, 'channel.k8s.io');
  assert.deepEqual([v1.stdout, v1.error], ['hi\n', '']);
  // a client offering v9 first still gets v4
  const c = await spdyDial(s.getExec(cmd).url, ['v9.channel.k8s.io', 'v4.channel.k8s.io']);
  assert.match(c.head, /X-Stream-Protocol-Version: v4\.channel\.k8s\.io/);
  c.socket.destroy();
});

test('SPDY attach: the backend gets the streams; pings are answered', T, async () => {
  const { s, b } = await startServer();
  const url = s.getAttach({ container_id: 'ctr2', stdin: true, stdout: true, stderr: true, tty: false }).url;
  const c = await spdyDial(url, ['v4.channel.k8s.io']);
  await new Promise<void>((resolve, reject) => c.conn.ping((e) => (e ? reject(e) : resolve())));
  const error = readAll(await c.open({ streamtype: 'error' }));
  const stdin = await c.open({ streamtype: 'stdin' });
  const out = readAll(await c.open({ streamtype: 'stdout' }));
  const err = readAll(await c.open({ streamtype: 'stderr' }));
  stdin.end('one\ntwo\n');
  assert.equal(await out, 'attached to ctr2\necho: one\necho: two\n');
  assert.equal(await err, 'attached (stderr) to ctr2\n');
  assert.deepEqual(JSON.parse(await error), { metadata: {}, status: 'Success' });
  assert.equal(b.calls[0]!.kind, 'attach');
  c.socket.destroy();
});

test('SPDY: a client that opens too few streams is dropped after the creation timeout', T, async () => {
  const { s, logs } = await startServer({ streamCreationTimeoutMs: 300 });
  const c = await spdyDial(s.getExec(exec(['true'], { stderr: false })).url, ['v4.channel.k8s.io']);
  await c.open({ streamtype: 'error' });
  const t0 = Date.now();
  await new Promise((resolve) => c.socket.once('close', resolve));
  assert.ok(Date.now() - t0 < 5000);
  assert.ok(logs.some((l) => /timed out waiting for client to create streams/.test(l)), logs.join('\n'));
});

test('SPDY: a client going away aborts the exec (its process is killed)', T, async () => {
  const { s } = await startServer();
  const marker = `${process.pid}${Date.now() % 100000}`;
  const c = await spdyDial(s.getExec(exec(['sh', '-c', `exec sleep 31.${marker}`], { stderr: false })).url, ['v4.channel.k8s.io']);
  await c.open({ streamtype: 'error' });
  await c.open({ streamtype: 'stdout' });
  const running = (): boolean => spawnSync('pgrep', ['-f', `sleep 31.${marker}`]).status === 0;
  for (let i = 0; i < 50 && !running(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(running(), true, 'the exec started');
  c.socket.destroy();
  for (let i = 0; i < 100 && running(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(running(), false, 'killed when the client went');
});

// ---- SPDY port-forward

test('SPDY port-forward: data/error pairs by requestid reach the port; a bad port header is refused; a closed port is reported', T, async () => {
  const { s, b } = await startServer();
  const echo = await echoServer();
  cleanups.push(() => echo.close());
  const c = await spdyDial(s.getPortForward({ pod_sandbox_id: 'pod1', port: [] }).url, ['portforward.k8s.io']);
  assert.match(c.head, /X-Stream-Protocol-Version: portforward\.k8s\.io/);
  for (const id of ['0', '1']) {
    const port = String(echo.port);
    const error = readAll(await c.open({ streamtype: 'error', port, requestid: id }));
    const data = await c.open({ streamtype: 'data', port, requestid: id });
    const got = readAll(data);
    data.end(`hello ${id}\n`);
    assert.equal(await got, `hello ${id}\n`, 'echoed, then ended when the echo server ended');
    assert.equal(await error, '');
  }
  await assert.rejects(c.open({ streamtype: 'data', port: '0', requestid: '9' }), 'a port of 0 is reset');
  await assert.rejects(c.open({ streamtype: 'bogus', port: '80', requestid: '9' }), 'an unknown stream type is reset');
  // a port nobody listens on: the error stream says so
  const closed = await echoServer();
  await closed.close();
  const error = readAll(await c.open({ streamtype: 'error', port: String(closed.port), requestid: '2' }));
  const data = readAll(await c.open({ streamtype: 'data', port: String(closed.port), requestid: '2' }));
  assert.match(await error, new RegExp(`error forwarding port ${closed.port} to pod pod1: .*ECONNREFUSED`));
  assert.equal(await data, '');
  assert.deepEqual(b.calls.map((x) => [x.kind, x.id]), [['portForward', 'pod1'], ['portForward', 'pod1'], ['portForward', 'pod1']]);
  c.socket.destroy();
});

// ---- WebSocket

interface WsResult { first: Buffer | string; channels: Map<number, Buffer>; protocol: string; code: number }

function wsRun(url: string, protocols: string[], onOpen: (ws: WebSocket) => void = () => undefined, base64 = false): Promise<WsResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), protocols, { rejectUnauthorized: false });
    cleanups.push(() => ws.terminate());
    const channels = new Map<number, Buffer>();
    let first: Buffer | string | undefined;
    ws.on('message', (data: Buffer, isBinary) => {
      first ??= isBinary ? Buffer.from(data) : data.toString();
      let n: number;
      let payload: Buffer;
      if (base64) {
        const s = data.toString();
        n = s.charCodeAt(0) - 48;
        payload = Buffer.from(s.slice(1), 'base64');
      } else {
        n = data[0]!;
        payload = data.subarray(1);
      }
      channels.set(n, Buffer.concat([channels.get(n) ?? Buffer.alloc(0), payload]));
    });
    ws.on('open', () => onOpen(ws));
    ws.on('close', (code) => resolve({ first: first ?? '', channels, protocol: ws.protocol, code }));
    ws.on('error', reject);
  });
}

const text = (r: WsResult, n: number): string => r.channels.get(n)?.toString() ?? '';

test('WebSocket v5 exec: channels 1/2 apart, stdin closed with the CLOSE signal [255, 0], the status on channel 3', T, async () => {
  const { s } = await startServer();
  const url = s.getExec(exec(['sh', '-c', 'cat; echo err >&2; exit 4'], { stdin: true })).url;
  const r = await wsRun(url, ['v5.channel.k8s.io', 'v4.channel.k8s.io'], (ws) => {
    ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('via stdin\n')]));
    ws.send(Buffer.from([255, 0]));
  });
  assert.equal(r.protocol, 'v5.channel.k8s.io');
  assert.deepEqual(r.first, Buffer.from([1]), 'the first message: empty, on stdout, "established"');
  assert.equal(r.code, 1000);
  assert.equal(text(r, 1), 'via stdin\n');
  assert.equal(text(r, 2), 'err\n');
  const st = JSON.parse(text(r, 3));
  assert.deepEqual([st.reason, st.details.causes[0]], ['NonZeroExitCode', { reason: 'ExitCode', message: '4' }]);
});

test('WebSocket v4 with a tty: resize on channel 4; v4.base64 framing; channel.k8s.io (v1) reports failures as text', T, async () => {
  const { s, b } = await startServer();
  const tty = await wsRun(s.getExec(exec(['stty', 'size'], { tty: true })).url, ['v4.channel.k8s.io'], (ws) => {
    ws.send(Buffer.concat([Buffer.from([4]), Buffer.from('{"Width":90,"Height":21}\n')]));
  });
  assert.equal(text(tty, 1), '21 90\r\n');
  assert.deepEqual(b.resizes, [{ width: 90, height: 21 }]);

  const b64 = await wsRun(s.getExec(exec(['sh', '-c', 'echo out; echo err >&2'])).url, ['v4.base64.channel.k8s.io'], undefined, true);
  assert.equal(b64.protocol, 'v4.base64.channel.k8s.io');
  assert.equal(b64.first, '1', 'an empty base64 message on stdout');
  assert.deepEqual([text(b64, 1), text(b64, 2), JSON.parse(text(b64, 3)).status], ['out\n', 'err\n', 'Success']);

  const v1 = await wsRun(s.getExec(exec(['sh', '-c', 'exit 5'], { stderr: false })).url, ['channel.k8s.io']);
  assert.equal(text(v1, 3), 'command terminated with non-zero exit code: exit status 5');
  const none = await wsRun(s.getExec(exec(['true'], { stderr: false })).url, []);
  assert.deepEqual([none.protocol, text(none, 3)], ['', ''], 'no subprotocol: v1, binary, nothing on success');
});

test('WebSocket attach, and a protocol the server does not speak is refused (403)', T, async () => {
  const { s } = await startServer();
  const r = await wsRun(s.getAttach({ container_id: 'ctr3', stdin: false, stdout: true, stderr: false, tty: false }).url, ['v4.channel.k8s.io']);
  assert.equal(text(r, 1), 'attached to ctr3\n');
  assert.equal(JSON.parse(text(r, 3)).status, 'Success');
  const a = await httpRequest(s.getExec(exec(['true'])).url, {
    Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Protocol': 'v9.channel.k8s.io',
  }, 'GET');
  assert.equal(a.status, 403);
  assert.match(a.body, /not supported/);
});

test('WebSocket port-forward: channels 0/1 per port, each opened with the port (LE16), data echoed', T, async () => {
  const { s } = await startServer();
  const echo = await echoServer();
  cleanups.push(() => echo.close());
  const url = s.getPortForward({ pod_sandbox_id: 'pod2', port: [echo.port] }).url;
  const seen: Buffer[] = [];
  const r = await new Promise<{ protocol: string; echoed: string }>((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), ['v4.channel.k8s.io']);
    cleanups.push(() => ws.terminate());
    let echoed = '';
    ws.on('message', (d: Buffer) => {
      seen.push(Buffer.from(d));
      if (seen.length === 2) ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('ping\n')]));
      if (seen.length > 2 && d[0] === 0) {
        echoed += d.subarray(1).toString();
        if (echoed === 'ping\n') ws.close();
      }
    });
    ws.on('close', () => resolve({ protocol: ws.protocol, echoed }));
    ws.on('error', reject);
  });
  const le = Buffer.alloc(2);
  le.writeUInt16LE(echo.port);
  assert.equal(r.protocol, 'v4.channel.k8s.io');
  assert.deepEqual(seen.slice(0, 2), [Buffer.concat([Buffer.from([0]), le]), Buffer.concat([Buffer.from([1]), le])]);
  assert.equal(r.echoed, 'ping\n');
});

// ---- tokens and plain HTTP

test('a URL works once; unknown, reused, expired or misrouted tokens answer 404; no upgrade answers 400', T, async () => {
  let now = 0;
  const { s } = await startServer({ now: () => now });
  const upgrade = { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' };
  const url = s.getExec(exec(['true'], { stderr: false })).url;
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]{16}$/);
  const first = await httpRequest(url, upgrade);
  assert.equal(first.status, 101);
  first.socket.destroy();
  assert.equal((await httpRequest(url, upgrade)).status, 404, 'used');
  assert.equal((await httpRequest(url.replace(/[^/]+$/, 'AAAAAAAAAAAAAAAA'), upgrade)).status, 404, 'unknown');
  const attach = s.getAttach({ container_id: 'c', stdin: false, stdout: true, stderr: false, tty: false }).url;
  assert.equal((await httpRequest(attach.replace('/attach/', '/exec/'), upgrade)).status, 404, 'an attach token on /exec');
  assert.equal((await httpRequest(`${s.url}nothing/here`, upgrade)).status, 404);
  const late = s.getExec(exec(['true'], { stderr: false })).url;
  now += 60_001;
  assert.equal((await httpRequest(late, upgrade)).status, 404, 'expired');
  const plain = await httpRequest(s.getExec(exec(['true'], { stderr: false })).url, {}, 'GET');
  assert.equal(plain.status, 400);
  assert.match(plain.body, /X-Stream-Protocol-Version is required/);
  const noUpgrade = await httpRequest(s.getExec(exec(['true'], { stderr: false })).url, { 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' });
  assert.deepEqual([noUpgrade.status, noUpgrade.body], [400, 'unable to upgrade: missing upgrade headers in request\n']);
  const wrong = await httpRequest(s.getExec(exec(['true'], { stderr: false })).url, { ...upgrade, 'X-Stream-Protocol-Version': 'v9.channel.k8s.io' });
  assert.equal(wrong.status, 403);
  assert.match(wrong.head, /X-Accepted-Stream-Protocol-Versions: v4\.channel\.k8s\.io/);
  assert.equal((await httpRequest(s.getExec(exec(['true'])).url, upgrade, 'PUT')).status, 405);
});

test('bad requests are refused with EINVAL before any URL exists', T, async () => {
  const { s } = await startServer();
  const codeOf = (fn: () => unknown): unknown => {
    try {
      fn();
    } catch (e) {
      return (e as { code?: unknown }).code;
    }
    return 'no error';
  };
  assert.equal(codeOf(() => s.getExec(exec([]))), 'EINVAL');
  assert.equal(codeOf(() => s.getExec({ ...exec(['sh']), tty: true, stderr: true })), 'EINVAL');
  assert.equal(codeOf(() => s.getExec(exec(['sh'], { stdout: false, stderr: false }))), 'EINVAL');
  assert.equal(codeOf(() => s.getAttach({ container_id: '', stdin: true, stdout: false, stderr: false, tty: false })), 'EINVAL');
  assert.equal(codeOf(() => s.getPortForward({ pod_sandbox_id: '', port: [] })), 'EINVAL');
});

test('https: a WebSocket exec over TLS', T, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streaming-tls-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-days', '1',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { encoding: 'utf8' });
  if (r.status !== 0) return t.skip(`needs openssl to make a certificate: ${r.error?.message ?? r.stderr}`);
  const { s } = await startServer({ tls: { cert: fs.readFileSync(path.join(dir, 'cert.pem')), key: fs.readFileSync(path.join(dir, 'key.pem')) } });
  const url = s.getExec(exec(['echo', 'secure'], { stderr: false })).url;
  assert.match(url, /^https:\/\//);
  const res = await wsRun(url, ['v5.channel.k8s.io']);
  assert.equal(text(res, 1), 'secure\n');
});
