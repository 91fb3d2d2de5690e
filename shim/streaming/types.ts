// The streaming server's contract with the CRI server (as kubelet's
// streaming.Runtime is for containerd and CRI-O): the server speaks the
// wire protocols and hands the backend plain Node streams.

import type { Duplex, Readable, Writable } from 'node:stream';
import type { EventEmitter } from 'node:events';

/** Which of the process's streams the client asked for (the CRI request's flags). */
export interface StreamOptions { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }

/** A terminal size as client-go sends it on the resize stream ({"Width":..,"Height":..}). */
export interface TerminalSize { width: number; height: number }

export interface ExecIO {
  /** Data from the client; ends when the client closes its stdin (or goes away). */
  stdin: Readable | null;
  stdout: Writable | null;
  /** null with a tty: the terminal merges stderr into stdout. */
  stderr: Writable | null;
  /** Emits 'resize' (TerminalSize) for each size the client sends. */
  resize: EventEmitter;
  /** Aborted when the client goes away before the backend returns. */
  signal: AbortSignal;
}

export interface StreamingBackend {
  /** Runs cmd in the container; resolves to its exit code. A rejection is reported to the client as an internal error. */
  exec(containerId: string, cmd: string[], opts: StreamOptions, io: ExecIO): Promise<number>;
  /** Attaches to the container's main process until it exits, or the client goes away. */
  attach(containerId: string, opts: StreamOptions, io: ExecIO): Promise<void>;
  /** Connects `stream` to port `port` in the pod's network namespace; resolves when the connection is done. */
  portForward(podSandboxId: string, port: number, stream: Duplex): Promise<void>;
}

/** The CRI requests, as @grpc/proto-loader gives them (keepCase). */
export interface ExecRequest { container_id: string; cmd: string[]; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }
export interface AttachRequest { container_id: string; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }
export interface PortForwardRequest { pod_sandbox_id: string; port: number[] }
