// Exec and attach once the streams exist (kubelet's remotecommand exec.go
// and attach.go): run the backend, end the output streams, write the final
// status on the error stream, close the connection. The transport (SPDY in
// remotecommand-spdy.ts, WebSocket in remotecommand-ws.ts) makes the Session.

import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ExecIO, StreamingBackend, StreamOptions } from './types';
import { internalError, nonZeroExit, success, type Status } from './status';

/** Protocol versions of the remotecommand subprotocol, newest first (apimachinery's SupportedStreamingProtocols). */
export const REMOTECOMMAND_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'] as const;

/** 1 for channel.k8s.io (and no protocol at all), n for vn.[base64.]channel.k8s.io. */
export function versionOf(protocol: string): number {
  const m = /^v(\d+)\./.exec(protocol);
  return m ? Number(m[1]) : 1;
}

export interface Session {
  io: ExecIO;
  /** Writes the final status as the negotiated version wants it, and ends the error stream. */
  writeStatus(st: Status): Promise<void>;
  /** Closes the connection; the client is done once it has read everything. */
  close(): void;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function endOutput(w: Writable | null): Promise<void> {
  if (!w || w.destroyed) return;
  if (!w.writableEnded) w.end();
  await finished(w, { readable: false }).catch(() => undefined);
}

async function finish(s: Session, st: Status): Promise<void> {
  if (!s.io.signal.aborted) {
    await endOutput(s.io.stdout);
    await endOutput(s.io.stderr);
    await s.writeStatus(st).catch(() => undefined);
  }
  s.close();
}

export async function runExec(s: Session, backend: StreamingBackend, containerId: string, cmd: string[], opts: StreamOptions): Promise<void> {
  let st: Status;
  try {
    const code = await backend.exec(containerId, cmd, opts, s.io);
    st = code === 0 ? success() : nonZeroExit(code);
  } catch (e) {
    st = internalError(`error executing command in container: ${messageOf(e)}`);
  }
  await finish(s, st);
}

export async function runAttach(s: Session, backend: StreamingBackend, containerId: string, opts: StreamOptions): Promise<void> {
  let st: Status;
  try {
    await backend.attach(containerId, opts, s.io);
    st = success();
  } catch (e) {
    st = internalError(`error attaching to container: ${messageOf(e)}`);
  }
  await finish(s, st);
}
