// Validation of the CRI streaming requests, as kubelet's server.go does it
// before handing out a URL. Errors carry code EINVAL, which the CRI server
// maps to INVALID_ARGUMENT.

import type { AttachRequest, ExecRequest, PortForwardRequest } from './types';

const invalid = (msg: string): Error => Object.assign(new Error(msg), { code: 'EINVAL' });

function checkStreams(r: { tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }): void {
  // a terminal has one output stream: stderr cannot be told apart from stdout
  if (r.tty && r.stderr) throw invalid('tty and stderr cannot both be true');
  if (!r.stdin && !r.stdout && !r.stderr) throw invalid('one of stdin, stdout, or stderr must be set');
}

export function validateExec(r: ExecRequest): void {
  if (!r.container_id) throw invalid('missing required container_id');
  // kubelet leaves this to the runtime; an empty command can never run
  if (!Array.isArray(r.cmd) || r.cmd.length === 0 || r.cmd[0] === '') throw invalid('missing required cmd');
  checkStreams(r);
}

export function validateAttach(r: AttachRequest): void {
  if (!r.container_id) throw invalid('missing required container_id');
  checkStreams(r);
}

export function validatePortForward(r: PortForwardRequest): void {
  if (!r.pod_sandbox_id) throw invalid('missing required pod_sandbox_id');
  for (const p of r.port ?? []) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw invalid(`port ${String(p)} must be between 1 and 65535`);
  }
}
