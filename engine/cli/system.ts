// docker system (service: bring --restart containers back at boot; prune),
// version and info.

import type { Argv, CommandModule } from 'yargs';
import { imageStore, out, paths, warn, type Args, type EngineGlobal } from './common';

const L = {
  lifecycle: () => require('../lifecycle') as typeof import('../lifecycle'),
  prune: () => require('../prune') as typeof import('../prune'),
  info: () => require('../info') as typeof import('../info'),
};

const systemCmd: CommandModule<EngineGlobal, EngineGlobal> = {
  command: 'system <command>',
  describe: 'service (bring back --restart containers), prune',
  builder: (y) =>
    y.command({
      command: 'service',
      describe: 'start the containers whose restart policy says so (at boot), then stay until stopped',
      builder: (z: Argv) => z.option('once', { type: 'boolean', default: false, describe: 'restore and exit (a oneshot unit)' }) as never,
      handler: async (a: Args<{ once: boolean }>) => {
        const p = paths(a);
        const started = await L.lifecycle().restoreContainers(p, warn);
        out(started.map((n) => `started ${n}\n`).join(''));
        if (a.once) return;
        // Containers have monitors of their own: this only reconciles now and then.
        await new Promise<void>((resolve) => {
          const t = setInterval(() => {
            try {
              L.lifecycle().reconcile(p);
            } catch (e) {
              warn((e as Error).message);
            }
          }, 10000);
          for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => {
            clearInterval(t);
            resolve();
          });
        });
      },
    } as never).command({
      command: 'prune',
      describe: 'remove stopped containers, unused networks and unused images',
      builder: (z: Argv) => z.option('force', { alias: 'f', type: 'boolean', default: false }).option('all', { alias: 'a', type: 'boolean', default: false, describe: 'images without a container, not only dangling ones' }) as never,
      handler: async (a: Args<{ force: boolean; all: boolean }>) => {
        const r = await L.prune().systemPrune(paths(a), imageStore(a), { all: a.all }, (e) => {
          if (e.kind === 'container') out(`deleted container ${e.id}\n`);
          else if (e.kind === 'network') out(`deleted network ${e.name}\n`);
          else out(`untagged ${e.name}\n`);
        });
        out(`deleted ${r.containers} containers, ${r.blobs} blobs, ${r.snapshots} snapshots\n`);
      },
    } as never).demandCommand(1) as never,
  handler: () => {},
};

const version: CommandModule<EngineGlobal, EngineGlobal & { format: string }> = {
  command: 'version',
  describe: 'versions of the front end, the runtime and Node',
  builder: (y) => y.option('format', { type: 'string', default: 'text' }) as never,
  handler: (a: Args<{ format: string }>) => {
    const v = L.info().versionInfo();
    if (a.format === 'json') out(JSON.stringify(v) + '\n');
    else out(Object.entries(v).map(([k, x]) => `${k}:`.padEnd(16) + `${x}\n`).join(''));
  },
};

const info: CommandModule<EngineGlobal, EngineGlobal & { format: string }> = {
  command: 'info',
  describe: 'the host as the engine sees it',
  builder: (y) => y.option('format', { type: 'string', default: 'text' }) as never,
  handler: (a: Args<{ format: string }>) => {
    const v = L.info().engineInfo(paths(a), imageStore(a));
    if (a.format === 'json') out(JSON.stringify(v) + '\n');
    else out(Object.entries(v).map(([k, x]) => `${k}: ${Array.isArray(x) ? x.join(', ') : x}\n`).join(''));
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const systemCommands: CommandModule<any, any>[] = [systemCmd, version, info];
