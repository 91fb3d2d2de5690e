// The streaming server's pure parts: the token cache (single use, one-minute
// life, a bound on what is outstanding), the CRI request checks, protocol
// negotiation, the resize decoder, the final status in each version's form,
// and SPDY's frame and header-block codec. The SPDY connection itself is
// tested against spdy-transport's client (test/integration/shim-streaming)
// and crictl's spdystream (shim-streaming-crictl).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { RequestCache } from '../../shim/streaming/request-cache';
import { validateAttach, validateExec, validatePortForward } from '../../shim/streaming/requests';
import { negotiate, isWebSocketRequest, isSpdyUpgrade } from '../../shim/streaming/httpstream';
import { JsonObjects, terminalSizeOf } from '../../shim/streaming/resize';
import { encodeStatus, internalError, nonZeroExit, success } from '../../shim/streaming/status';
import { versionOf } from '../../shim/streaming/remotecommand';
import { parsePort } from '../../shim/streaming/portforward';
import {
  FrameReader, FrameType, HeaderZlib, controlFrame, dataFrame, decodeHeaderBlock, encodeHeaderBlock, FLAG_FIN,
} from '../../shim/streaming/spdy';

const req = (headers: Record<string, string | string[]>): IncomingMessage => ({ headers } as unknown as IncomingMessage);
const code = (fn: () => void): unknown => {
  try {
    fn();
  } catch (e) {
    return (e as { code?: unknown }).code;
  }
  return undefined;
};

test('a token is used once; an unknown one is nothing', () => {
  const c = new RequestCache<string>();
  const t = c.insert('a');
  assert.match(t, /^[A-Za-z0-9_-]{16}$/);
  assert.equal(c.consume('nope'), undefined);
  assert.equal(c.consume(t), 'a');
  assert.equal(c.consume(t), undefined);
});

test('a token expires after its minute, and expired ones are collected on insert', () => {
  let now = 1000;
  const c = new RequestCache<string>({ now: () => now });
  const old = c.insert('old');
  now += 60_000;
  const edge = c.insert('edge');
  assert.equal(c.consume(old), 'old', 'exactly a minute old is still valid');
  now += 1;
  assert.equal(c.consume(edge), 'edge');
  const gone = c.insert('gone');
  now += 60_001;
  assert.equal(c.consume(gone), undefined);
  c.insert('x');
  c.insert('y');
  now += 60_001;
  c.insert('z');
  assert.equal(c.size, 1, 'the expired ones went when z came');
});

test('at most maxInFlight tokens are outstanding (EAGAIN)', () => {
  const c = new RequestCache<number>({ maxInFlight: 3 });
  for (let i = 0; i < 3; i++) c.insert(i);
  assert.equal(code(() => c.insert(3)), 'EAGAIN');
});

test('exec requests are checked as kubelet checks them, and a command is required', () => {
  const ok = { container_id: 'c', cmd: ['sh'], tty: false, stdin: false, stdout: true, stderr: true };
  assert.doesNotThrow(() => validateExec(ok));
  assert.equal(code(() => validateExec({ ...ok, container_id: '' })), 'EINVAL');
  assert.equal(code(() => validateExec({ ...ok, cmd: [] })), 'EINVAL');
  assert.equal(code(() => validateExec({ ...ok, cmd: [''] })), 'EINVAL');
  assert.equal(code(() => validateExec({ ...ok, tty: true })), 'EINVAL', 'tty and stderr');
  assert.doesNotThrow(() => validateExec({ ...ok, tty: true, stderr: false }));
  assert.equal(code(() => validateExec({ ...ok, stdout: false, stderr: false })), 'EINVAL');
  assert.throws(() => validateExec({ ...ok, tty: true }), /tty and stderr cannot both be true/);
});

test('attach and port-forward requests are checked', () => {
  assert.equal(code(() => validateAttach({ container_id: '', tty: false, stdin: true, stdout: false, stderr: false })), 'EINVAL');
  assert.equal(code(() => validateAttach({ container_id: 'c', tty: false, stdin: false, stdout: false, stderr: false })), 'EINVAL');
  assert.doesNotThrow(() => validateAttach({ container_id: 'c', tty: true, stdin: true, stdout: true, stderr: false }));
  assert.equal(code(() => validatePortForward({ pod_sandbox_id: '', port: [] })), 'EINVAL');
  assert.equal(code(() => validatePortForward({ pod_sandbox_id: 'p', port: [0] })), 'EINVAL');
  assert.equal(code(() => validatePortForward({ pod_sandbox_id: 'p', port: [65536] })), 'EINVAL');
  assert.doesNotThrow(() => validatePortForward({ pod_sandbox_id: 'p', port: [] }), 'crictl sends no ports');
  assert.doesNotThrow(() => validatePortForward({ pod_sandbox_id: 'p', port: [80, 65535] }));
});

test('the client picks the protocol: its first one the server supports', () => {
  const server = ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'channel.k8s.io'];
  // Node joins a repeated header with ", "
  assert.deepEqual(negotiate(req({ 'x-stream-protocol-version': 'v5.channel.k8s.io, v3.channel.k8s.io, v4.channel.k8s.io' }), server), { ok: true, protocol: 'v3.channel.k8s.io' });
  const missing = negotiate(req({}), server);
  assert.equal(missing.ok, false);
  assert.equal(!missing.ok && missing.status, 400);
  const none = negotiate(req({ 'x-stream-protocol-version': 'v9.channel.k8s.io' }), server);
  assert.equal(!none.ok && none.status, 403);
  assert.deepEqual(!none.ok && none.headers.map(([, v]) => v), server, 'X-Accepted-Stream-Protocol-Versions lists what the server takes');
});

test('upgrade requests are told apart as wsstream and the SPDY upgrader do', () => {
  assert.equal(isWebSocketRequest(req({ upgrade: 'WebSocket', connection: 'keep-alive, Upgrade' })), true);
  assert.equal(isWebSocketRequest(req({ upgrade: 'websocket', connection: 'keep-alive' })), false);
  assert.equal(isSpdyUpgrade(req({ upgrade: 'SPDY/3.1', connection: 'Upgrade' })), true);
  assert.equal(isSpdyUpgrade(req({ upgrade: 'SPDY/3', connection: 'Upgrade' })), false);
});

test('protocol names give their version; ports parse as Go ParseUint(s, 10, 16) > 0', () => {
  assert.deepEqual(['channel.k8s.io', 'v2.channel.k8s.io', 'v4.base64.channel.k8s.io', 'v5.channel.k8s.io', ''].map(versionOf), [1, 2, 4, 5, 1]);
  assert.deepEqual(['80', '65535', '0', '65536', '-1', '8o', '', ' 80'].map((s) => parsePort(s)), [80, 65535, null, null, null, null, null, null]);
  assert.equal(parsePort(undefined), null);
});

test('resize messages: objects split across and packed within chunks, keys in any case', () => {
  const j = new JsonObjects();
  assert.deepEqual(j.push('{"Width":80,'), []);
  assert.deepEqual(j.push('"Height":24}\n{"Width":1'), [{ Width: 80, Height: 24 }]);
  assert.deepEqual(j.push('00,"Height":40}\n{"Width":"}{","Height":1}'), [{ Width: 100, Height: 40 }, { Width: '}{', Height: 1 }]);
  assert.deepEqual(terminalSizeOf({ width: 10, HEIGHT: 5 }), { width: 10, height: 5 });
  assert.equal(terminalSizeOf({ Width: '}{', Height: 1 }), null);
  assert.equal(terminalSizeOf({ Width: -1, Height: 1 }), null);
});

test('the final status: JSON with the exit code from v4 on, text on failure only before', () => {
  assert.equal(encodeStatus(success(), 4)!.toString(), '{"metadata":{},"status":"Success"}');
  const failed = JSON.parse(encodeStatus(nonZeroExit(3), 5)!.toString());
  assert.equal(failed.status, 'Failure');
  assert.equal(failed.reason, 'NonZeroExitCode');
  assert.deepEqual(failed.details.causes, [{ reason: 'ExitCode', message: '3' }]);
  assert.equal(encodeStatus(success(), 3), null);
  assert.equal(encodeStatus(nonZeroExit(3), 2)!.toString(), 'command terminated with non-zero exit code: exit status 3');
  const internal = JSON.parse(encodeStatus(internalError('no such container'), 4)!.toString());
  assert.deepEqual([internal.reason, internal.code, internal.message], ['InternalError', 500, 'Internal error occurred: no such container']);
});

test('SPDY frames: headers and payloads survive any split of the byte stream', () => {
  const frames = Buffer.concat([
    controlFrame(FrameType.PING, 0, Buffer.from([0, 0, 0, 7])),
    dataFrame(5, FLAG_FIN, Buffer.from('hello')),
    dataFrame(3, 0, Buffer.alloc(70_000, 1)),
  ]);
  for (const step of [1, 7, 8, 9, 1000, frames.length]) {
    const r = new FrameReader();
    const got = [];
    for (let off = 0; off < frames.length; off += step) got.push(...r.push(frames.subarray(off, off + step)));
    assert.equal(got.length, 3, `step ${step}`);
    assert.deepEqual([got[0]!.control, got[0]!.version, got[0]!.type, got[0]!.payload.readUInt32BE(0)], [true, 3, FrameType.PING, 7]);
    assert.deepEqual([got[1]!.control, got[1]!.streamId, got[1]!.flags, got[1]!.payload.toString()], [false, 5, FLAG_FIN, 'hello']);
    assert.equal(got[2]!.payload.length, 70_000);
  }
});

test('SPDY header blocks: names lowercased, repeated values NUL-joined, one zlib context per direction', async () => {
  const h = new Map([['StreamType', ['stdout']], ['x', ['a', 'b']]]);
  assert.deepEqual(decodeHeaderBlock(encodeHeaderBlock(h)), new Map([['streamtype', ['stdout']], ['x', ['a', 'b']]]));
  assert.throws(() => decodeHeaderBlock(Buffer.from([0, 0, 0, 1, 0, 0, 0, 9])), /truncated/);
  // blocks compressed in sequence decompress in sequence, the later ones referring back to the earlier
  const deflate = new HeaderZlib('deflate');
  const inflate = new HeaderZlib('inflate');
  for (let i = 0; i < 3; i++) {
    const block = encodeHeaderBlock(new Map([['streamtype', ['data']], ['port', [String(8080 + i)]], ['requestid', [String(i)]]]));
    const z = await deflate.run(block);
    assert.equal(z.subarray(-4).toString('hex'), '0000ffff', 'each block ends on a sync flush');
    assert.deepEqual(await inflate.run(z), block);
  }
  deflate.close();
  inflate.close();
});
