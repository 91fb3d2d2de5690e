// OCI hooks: each runs with the container state as JSON on stdin, its own
// args and env, and its timeout honoured (the process is killed after it).
// prestart, createRuntime and poststart/poststop run in the runtime's
// namespaces; createContainer and startContainer run from the init, in the
// container's.

import { spawnSync } from 'node:child_process';
import type { Hook } from './spec/generated/config';
import type { ProgramBuilder } from './sys/program';
import { RuntimeError } from './sys/errors';
import { trace, tracing } from './sys/trace';

export type HookName = 'prestart' | 'createRuntime' | 'createContainer' | 'startContainer' | 'poststart' | 'poststop';

export function runHooks(name: HookName, hooks: readonly Hook[] | undefined, stateJson: string): void {
  (hooks ?? []).forEach((h, i) => runHook(`hooks.${name}[${i}]`, h, stateJson));
}

/**
 * poststart and poststop: a failing hook is a warning, and the remaining
 * hooks still run (the spec's MUST; the conformance suite checks it).
 */
export function runHooksWarning(name: 'poststart' | 'poststop', hooks: readonly Hook[] | undefined, stateJson: string, warn: (msg: string) => void): void {
  (hooks ?? []).forEach((h, i) => {
    try {
      runHook(`hooks.${name}[${i}]`, h, stateJson);
    } catch (e) {
      warn((e as Error).message);
    }
  });
}

export function runHook(field: string, h: Hook, stateJson: string): void {
  const args = h.args && h.args.length > 0 ? h.args : [h.path];
  const timeoutMs = h.timeout !== undefined ? h.timeout * 1000 : undefined;
  const r = spawnSync(h.path, args.slice(1), {
    argv0: args[0],
    env: Object.fromEntries((h.env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])),
    input: stateJson,
    stdio: ['pipe', 'inherit', 'pipe'],
    ...(timeoutMs !== undefined ? { timeout: timeoutMs, killSignal: 'SIGKILL' as const } : {}),
  });
  const res = r.error ? `error ${(r.error as NodeJS.ErrnoException).code}` : r.signal ? `killed by ${r.signal}` : `exit ${r.status}`;
  if (tracing()) trace({ kind: 'hook', call: `${h.path} ${JSON.stringify(args.slice(1))}`, result: res, why: field });
  const stderr = r.stderr ? r.stderr.toString().trim() : '';
  // A hook that exits without reading its stdin makes our write fail with
  // EPIPE: that is the hook's business, its exit status is what counts.
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'EPIPE' && (r.status !== null || r.signal !== null)) {
    delete (r as { error?: Error }).error;
  }
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === 'ETIMEDOUT') throw new RuntimeError(`${field}: hook ${h.path} timed out after ${h.timeout}s`, { code: 'ETIMEDOUT' });
    throw new RuntimeError(`${field}: cannot run hook ${h.path}: ${r.error.message}`, { cause: r.error });
  }
  if (r.signal) {
    const why = r.signal === 'SIGKILL' && timeoutMs !== undefined ? `timed out after ${h.timeout}s` : `killed by ${r.signal}`;
    throw new RuntimeError(`${field}: error running hook ${h.path}: ${why}`, { code: 'EHOOK' });
  }
  if (r.status !== 0) {
    throw new RuntimeError(`${field}: error running hook ${h.path}: exited with status ${r.status}${stderr ? `: ${stderr}` : ''}`, { code: 'EHOOK' });
  }
}

/** createContainer and startContainer hooks: run by the init, in the container's namespaces. */
export function emitHooks(b: ProgramBuilder, name: 'createContainer' | 'startContainer', hooks: readonly Hook[] | undefined, stateJson: string): void {
  (hooks ?? []).forEach((h, i) => {
    const args = h.args && h.args.length > 0 ? h.args : [h.path];
    b.hook(`hooks.${name}[${i}]`, h.path, args, h.env ?? [], h.timeout ?? 0, stateJson);
  });
}
