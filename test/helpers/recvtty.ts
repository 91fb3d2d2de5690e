// A console-socket server (like runc's recvtty) for tests: accepts one
// connection, receives the pty master over SCM_RIGHTS, prints "name=" and
// the payload, then everything read from the master until the pty closes.

import { spawn } from 'node:child_process';

const SCRIPT = `
import socket, os, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
msg, fds, _, _ = socket.recv_fds(c, 4096, 1)
print("name=" + msg.decode(), flush=True)
out = b""
while True:
    try:
        d = os.read(fds[0], 4096)
    except OSError:
        break
    if not d:
        break
    out += d
sys.stdout.write(out.decode(errors="replace").replace("\\r\\n", "\\n"))
`;

export interface ConsoleServer {
  /** What it printed so far. */
  output(): string;
  /** Resolves when the pty closed (or after `ms`). */
  closed(ms: number): Promise<void>;
  kill(): void;
}

/** Starts listening on `sock`; resolves once it does (or after 5 s). */
export async function recvtty(sock: string): Promise<ConsoleServer> {
  const server = spawn('python3', ['-c', SCRIPT, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  server.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => server.on('exit', () => r()));
  const end = Date.now() + 5000;
  while (!out.includes('listening') && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return {
    output: () => out,
    closed: (ms) => Promise.race([exited, new Promise<void>((r) => setTimeout(r, ms))]),
    kill: () => server.kill(),
  };
}
