// What follows a container's exit, wherever it is handled: by the Node
// monitor (engine/monitor.ts, exec'd by mycontainer-monitor), or by a
// foreground `run` that is still attached (engine/launch.ts awaitExit), so
// that a short `run --rm` pays no second Node start.

import * as fs from 'node:fs';
import { messageOf } from '../runtime/sys/errors';
import type { RuntimeContext } from '../runtime/container';
import { ContainerStore, type Container, type Paths } from './containers';
import { mark } from './timing';

const rt = (): typeof import('../runtime/container') => require('../runtime/container') as typeof import('../runtime/container');
const lifecycle = (): typeof import('./lifecycle') => require('./lifecycle') as typeof import('./lifecycle');

/** docker's restart policies, on the record as it is now (a `stop` meanwhile wins). */
export function shouldRestart(c: Container, exitCode: number): boolean {
  if (c.state.manuallyStopped) return false;
  const p = c.hostConfig.restartPolicy;
  switch (p.name) {
    case 'always':
    case 'unless-stopped':
      return true;
    case 'on-failure':
      return exitCode !== 0 && (p.maximumRetryCount === 0 || c.state.restartCount < p.maximumRetryCount);
    default:
      return false;
  }
}

/**
 * The init has exited and its output is drained: whether the OOM killer
 * struck (its cgroup still counts), then the runtime's container goes.
 */
export function deleteAfterExit(ctx: RuntimeContext, id: string, exitCode: number): { exitCode: number; oomKilled: boolean } {
  let oomKilled = false;
  try {
    oomKilled = rt().oomKills(ctx, id) > 0;
  } catch {
    // no runtime record: nothing to delete either
  }
  try {
    rt().remove(ctx, id, true);
  } catch (e) {
    ctx.warn(`cannot delete the runtime's container: ${messageOf(e)}`);
  }
  mark('runtime deleted');
  return { exitCode, oomKilled };
}

export function recordExit(store: ContainerStore, id: string, r: { exitCode: number; oomKilled: boolean }): void {
  store.update(id, (x) => {
    x.state.status = 'exited';
    x.state.exitCode = r.exitCode;
    x.state.oomKilled = r.oomKilled;
    x.state.pid = 0;
    x.state.finishedAt = new Date().toISOString();
  });
}

/** The last stop (no restart follows): network and rootfs released, --rm removes, the attach socket goes. */
export function lastStop(paths: Paths, id: string, warn: (msg: string) => void): void {
  mark('finish');
  const store = new ContainerStore(paths);
  const c = store.read(id);
  try {
    lifecycle().afterStop(paths, c);
  } catch (e) {
    warn(`cleanup after stop: ${messageOf(e)}`);
  }
  if (c.hostConfig.autoRemove) {
    try {
      lifecycle().removeContainer(paths, c.id, { fromMonitor: true });
    } catch (e) {
      warn(`--rm: cannot remove the container: ${messageOf(e)}`);
    }
  } else {
    store.update(id, (x) => {
      x.state.monitorPid = 0;
      x.state.monitorStartTime = '';
    });
  }
  fs.rmSync(paths.attachSocket(id), { force: true });
  mark('cleaned up');
}
