// What every engine command shares: the global flags, the engine's paths
// (reconciled once per process), and where output goes.

import type { ArgumentsCamelCase } from 'yargs';
import { DEFAULT_RUNROOT, Paths } from '../containers';

export interface EngineGlobal {
  root: string;
  runroot: string;
  debug: boolean;
}

export type Args<T> = ArgumentsCamelCase<EngineGlobal & T>;

export const out = (s: string): boolean => process.stdout.write(s);
export const warn = (m: string): void => void process.stderr.write(`mycontainer: warning: ${m}\n`);

let reconciled = false;

/** The engine's paths; the first call of a process reconciles crashed containers, so every status shown is true. */
export function paths(a: EngineGlobal): Paths {
  const p = new Paths(a.root, a.runroot);
  if (!reconciled && a.debug) {
    // --debug: our own syscalls here; the monitor's come over the attach socket
    const { setTraceSink, formatTrace } = require('../../runtime/sys/trace') as typeof import('../../runtime/sys/trace');
    setTraceSink((e) => void process.stderr.write(`debug: ${formatTrace(e)}\n`));
  }
  if (!reconciled) {
    reconciled = true;
    (require('../lifecycle') as typeof import('../lifecycle')).reconcile(p);
  }
  return p;
}

export function defaultRunroot(): string {
  return process.env['MYCONTAINER_RUNROOT'] ?? DEFAULT_RUNROOT;
}

/** The image store under --root, shared with the image commands. */
export function imageStore(a: EngineGlobal): import('../../images/store').ContentStore {
  return (require('../images') as typeof import('../images')).imageStore(a.root);
}
