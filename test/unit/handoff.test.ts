// engine/handoff.ts: the command lines between the Node monitor and
// native/mycontainer-monitor, both ways.

import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { handOffCommand, parseResumed } from '../../engine/handoff';

describe('the monitor hand-off', () => {
  const base = {
    bin: '/x/mycontainer-monitor', id: 'abc', pid: 42, listenFd: 20,
    log: { file: '/s/container.log', maxSize: 2048, maxFiles: 3 },
    exitCommand: ['/usr/bin/node', 'monitor.js', '--exited', '{"id":"abc"}'], delay: 400, began: 1700000000000,
  };

  it('passes pipes, the listening socket and clients with their flags, and keeps exactly those fds', () => {
    const { argv, keep } = handOffCommand({
      ...base, stdio: { stdout: 21, stderr: 23, stdin: { fd: 25, sock: null as never } },
      clients: [{ fd: 30, hello: true, stdin: true }, { fd: 31, hello: false, stdin: false }],
    });
    assert.deepEqual(argv, [
      'mycontainer-monitor', '--id', 'abc', '--pid', '42', '--stdout', '21', '--stderr', '23', '--stdin', '25', '--listen', '20',
      '--client', '30:hi', '--client', '31:', '--log', '/s/container.log', '--log-max-size', '2048', '--log-max-files', '3',
      '--', '/usr/bin/node', 'monitor.js', '--exited', '{"id":"abc"}', '--delay', '400', '--began', '1700000000000',
    ]);
    assert.deepEqual(keep, [21, 23, 25, 20, 30, 31]);
  });

  it('a terminal is one fd, the pty master; no socket, no --listen', () => {
    const { argv, keep } = handOffCommand({ ...base, listenFd: -1, stdio: { pty: 19 }, clients: [] });
    assert.ok(argv.includes('--pty') && !argv.includes('--stdout') && !argv.includes('--listen'));
    assert.deepEqual(keep, [19]);
  });

  it('reads back what mycontainer-monitor appends after the exit command', () => {
    const tail = handOffCommand({ ...base, stdio: {}, clients: [] }).argv.slice(-4);
    const r = parseResumed([...tail, '--status', '137', '--listen', '20', '--client', '30:hi', '--client', '31:']);
    assert.deepEqual(r, { status: 137, listenFd: 20, delay: 400, began: 1700000000000, clients: [{ fd: 30, hello: true, stdin: true }, { fd: 31, hello: false, stdin: false }] });
  });

  it('refuses what it does not know, naming it', () => {
    assert.throws(() => parseResumed(['--status', 'x']), /--status needs a number, got x/);
    assert.throws(() => parseResumed(['--status']), /--status needs a number, got nothing/);
    assert.throws(() => parseResumed(['--bogus', '1']), /unknown argument --bogus/);
    assert.throws(() => parseResumed(['--client', 'a:h']), /bad --client a:h/);
  });
});
