// What is done to a container besides its lifecycle (lifecycle.ts): rename,
// pause and unpause, update of its limits or restart policy, and waiting
// for it to stop. Each resolves the container by name or id prefix, and
// keeps the record (and config.json, for the next start) in step with the
// runtime.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from '../runtime/sys/errors';
import type { LinuxResources } from '../runtime/cgroups/manager';
import type { Spec } from '../runtime/spec/generated/config';
import { ContainerStore, liveStatus, withFileLock, writeJsonAtomic, type Container, type Paths, type RestartPolicy } from './containers';
import { runtimeContext } from './lifecycle';
import { validName } from './names';

const rt = (): typeof import('../runtime/container') => require('../runtime/container') as typeof import('../runtime/container');

/** The container REF, which must be running or paused. */
export function runningContainer(p: Paths, ref: string): Container {
  const c = new ContainerStore(p).resolve(ref);
  const s = liveStatus(c);
  if (s !== 'running' && s !== 'paused') throw new RuntimeError(`container ${c.name} is not running`, { code: 'EINVAL' });
  return c;
}

/** Renames REF to NEW, under the engine lock so two containers never share a name. */
export function renameContainer(p: Paths, ref: string, newName: string): void {
  if (!validName(newName)) throw new RuntimeError(`cannot rename: invalid name "${newName}"`, { code: 'EINVAL' });
  const store = new ContainerStore(p);
  withFileLock(p.globalLock, () => {
    const c = store.resolve(ref);
    const other = store.all().find((x) => x.name === newName && x.id !== c.id);
    if (other) throw new RuntimeError(`cannot rename: the name "/${newName}" is already in use by container ${other.id.slice(0, 12)}`, { code: 'EEXIST' });
    store.update(c.id, (x) => {
      x.name = newName;
    });
  });
}

/** pause (FROZEN) or unpause: the freezer through the runtime, then the record's status. */
export function pauseContainer(p: Paths, ref: string, frozen: boolean): Container {
  const c = runningContainer(p, ref);
  rt().pause(runtimeContext(p), c.id, frozen);
  new ContainerStore(p).update(c.id, (x) => {
    if (frozen) x.state.status = 'paused';
    else if (x.state.status === 'paused') x.state.status = 'running';
  });
  return c;
}

export interface UpdateRequest {
  /** bytes; swap is set to the same, as docker does without --memory-swap */
  memory?: number | undefined;
  nanoCpus?: number | undefined;
  pidsLimit?: number | undefined;
  restartPolicy?: RestartPolicy | undefined;
}

/** docker update: the live cgroup (if it runs), the record, and config.json for the next start. */
export function updateContainer(p: Paths, ref: string, u: UpdateRequest): Container {
  const store = new ContainerStore(p);
  const c = store.resolve(ref);
  const resources: LinuxResources = {};
  if (u.memory !== undefined) resources.memory = { limit: u.memory, swap: u.memory };
  if (u.nanoCpus !== undefined) resources.cpu = { period: 100000, quota: Math.round((u.nanoCpus / 1e9) * 100000) };
  if (u.pidsLimit !== undefined) resources.pids = { limit: u.pidsLimit };
  const s = liveStatus(c);
  if ((s === 'running' || s === 'paused') && Object.keys(resources).length > 0) rt().update(runtimeContext(p), c.id, resources);
  store.update(c.id, (x) => {
    if (u.memory !== undefined) x.hostConfig.memory = u.memory;
    if (u.nanoCpus !== undefined) x.hostConfig.nanoCpus = u.nanoCpus;
    if (u.pidsLimit !== undefined) x.hostConfig.pidsLimit = u.pidsLimit;
    if (u.restartPolicy !== undefined) x.hostConfig.restartPolicy = u.restartPolicy;
  });
  // the next start reads config.json: keep its resources in step
  const cfg = path.join(p.bundle(c.id), 'config.json');
  const spec = JSON.parse(fs.readFileSync(cfg, 'utf8')) as Spec;
  spec.linux = { ...(spec.linux ?? {}), resources: { ...(spec.linux?.resources ?? {}), ...resources } };
  writeJsonAtomic(cfg, spec);
  return c;
}

/** Waits until REF is stopped (exited, created, dead, or removed) and answers its exit code. */
export async function waitContainer(p: Paths, ref: string): Promise<number> {
  const store = new ContainerStore(p);
  const c = store.resolve(ref);
  for (;;) {
    let fresh: Container;
    try {
      fresh = store.read(c.id);
    } catch {
      return c.state.exitCode;
    }
    const s = liveStatus(fresh);
    if (s === 'exited' || s === 'created' || s === 'dead') return fresh.state.exitCode;
    await new Promise((r) => setTimeout(r, 100));
  }
}
