// docker's verbs on existing containers: start, stop, restart, kill, rm,
// wait, rename, pause, unpause, update. Each takes names or id prefixes,
// makes one library call per container and prints the name back.

import type { CommandModule } from 'yargs';
import { RuntimeError } from '../../runtime/sys/errors';
import { ContainerStore, liveStatus } from '../containers';
import { out, paths, type Args, type EngineGlobal } from './common';
import { parseRestart, parseSize } from './flags';
import { attachAndWait } from './exec';

const L = {
  lifecycle: () => require('../lifecycle') as typeof import('../lifecycle'),
  manage: () => require('../manage') as typeof import('../manage'),
  volumes: () => require('../volumes') as typeof import('../volumes'),
};

type Refs = { containers: string[] };
const refs = { type: 'string', array: true, demandOption: true } as const;

const start: CommandModule<EngineGlobal, EngineGlobal & Refs & { attach: boolean; interactive: boolean }> = {
  command: 'start <containers..>',
  describe: 'start stopped containers',
  builder: (y) =>
    y.positional('containers', refs)
      .option('attach', { alias: 'a', type: 'boolean', default: false })
      .option('interactive', { alias: 'i', type: 'boolean', default: false }) as never,
  handler: async (a: Args<Refs & { attach: boolean; interactive: boolean }>) => {
    const p = paths(a);
    const store = new ContainerStore(p);
    for (const ref of a.containers.map(String)) {
      const c = store.resolve(ref);
      if (a.attach) {
        const launched = await L.lifecycle().startContainer(p, c.id, { attach: true, debug: a.debug });
        process.exitCode = await attachAndWait(p, c, { stdin: a.interactive, begin: launched.begin, awaitExit: launched.awaitExit });
        return;
      }
      if (liveStatus(c) === 'running') {
        out(`${ref}\n`); // docker: starting a running container is no error
        continue;
      }
      await L.lifecycle().startContainer(p, c.id, { attach: false, debug: a.debug });
      out(`${ref}\n`);
    }
  },
};

const stop: CommandModule<EngineGlobal, EngineGlobal & Refs & { time?: number }> = {
  command: 'stop <containers..>',
  describe: 'stop running containers: the stop signal, then KILL after the timeout',
  builder: (y) => y.positional('containers', refs).option('time', { alias: 't', type: 'number' }) as never,
  handler: async (a: Args<Refs & { time?: number }>) => {
    for (const ref of a.containers.map(String)) {
      await L.lifecycle().stopContainer(paths(a), ref, a.time);
      out(`${ref}\n`);
    }
  },
};

const restart: CommandModule<EngineGlobal, EngineGlobal & Refs & { time?: number }> = {
  command: 'restart <containers..>',
  describe: 'stop, then start containers',
  builder: (y) => y.positional('containers', refs).option('time', { alias: 't', type: 'number' }) as never,
  handler: async (a: Args<Refs & { time?: number }>) => {
    for (const ref of a.containers.map(String)) {
      const c = await L.lifecycle().stopContainer(paths(a), ref, a.time);
      await L.lifecycle().startContainer(paths(a), c.id, { attach: false });
      out(`${ref}\n`);
    }
  },
};

const kill: CommandModule<EngineGlobal, EngineGlobal & Refs & { signal: string }> = {
  command: 'kill <containers..>',
  describe: 'send a signal to containers (default KILL)',
  builder: (y) => y.positional('containers', refs).option('signal', { alias: 's', type: 'string', default: 'KILL' }) as never,
  handler: (a: Args<Refs & { signal: string }>) => {
    for (const ref of a.containers.map(String)) {
      L.lifecycle().killContainer(paths(a), ref, a.signal);
      out(`${ref}\n`);
    }
  },
};

const rm: CommandModule<EngineGlobal, EngineGlobal & Refs & { force: boolean; volumes: boolean }> = {
  command: 'rm <containers..>',
  describe: 'remove containers (-f: running ones too)',
  builder: (y) =>
    y.positional('containers', refs)
      .option('force', { alias: 'f', type: 'boolean', default: false })
      .option('volumes', { alias: 'v', type: 'boolean', default: false, describe: 'remove anonymous volumes too' }) as never,
  handler: (a: Args<Refs & { force: boolean; volumes: boolean }>) => {
    const p = paths(a);
    const store = new ContainerStore(p);
    const errors: string[] = [];
    for (const ref of a.containers.map(String)) {
      try {
        const c = store.resolve(ref);
        L.lifecycle().removeContainer(p, c.id, { force: a.force });
        if (a.volumes) L.volumes().removeAnonymousVolumes(p, c.hostConfig.mounts);
        out(`${ref}\n`);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    if (errors.length > 0) throw new RuntimeError(errors.join('\n'), { code: 'ERM' });
  },
};

const wait: CommandModule<EngineGlobal, EngineGlobal & Refs> = {
  command: 'wait <containers..>',
  describe: 'wait until containers stop, then print their exit codes',
  builder: (y) => y.positional('containers', refs) as never,
  handler: async (a: Args<Refs>) => {
    const p = paths(a);
    for (const ref of a.containers.map(String)) out(`${await L.manage().waitContainer(p, ref)}\n`);
  },
};

const rename: CommandModule<EngineGlobal, EngineGlobal & { container: string; newName: string }> = {
  command: 'rename <container> <newName>',
  describe: 'rename a container',
  builder: (y) => y.positional('container', { type: 'string', demandOption: true }).positional('newName', { type: 'string', demandOption: true }) as never,
  handler: (a: Args<{ container: string; newName: string }>) => {
    L.manage().renameContainer(paths(a), a.container, a.newName);
  },
};

/** pause and unpause: the freezer through the runtime, then the record's status. */
function freezeCommand(command: string, describe: string, frozen: boolean): CommandModule<EngineGlobal, EngineGlobal & Refs> {
  return {
    command: `${command} <containers..>`,
    describe,
    builder: (y) => y.positional('containers', refs) as never,
    handler: (a: Args<Refs>) => {
      const p = paths(a);
      for (const ref of a.containers.map(String)) {
        L.manage().pauseContainer(p, ref, frozen);
        out(`${ref}\n`);
      }
    },
  };
}

const pause = freezeCommand('pause', 'freeze every process of containers', true);
const unpause = freezeCommand('unpause', 'thaw paused containers', false);

interface UpdateFlags {
  memory?: string;
  cpus?: number;
  pidsLimit?: number;
  restart?: string;
}

const update: CommandModule<EngineGlobal, EngineGlobal & Refs & UpdateFlags> = {
  command: 'update <containers..>',
  describe: 'change the limits (or restart policy) of containers',
  builder: (y) =>
    y.positional('containers', refs)
      .option('memory', { alias: 'm', type: 'string' })
      .option('cpus', { type: 'number' })
      .option('pids-limit', { type: 'number' })
      .option('restart', { type: 'string' }) as never,
  handler: (a: Args<Refs & UpdateFlags>) => {
    const p = paths(a);
    const req = {
      memory: a.memory !== undefined ? parseSize(a.memory, '--memory') : undefined,
      nanoCpus: a.cpus !== undefined ? Math.round(a.cpus * 1e9) : undefined,
      pidsLimit: a.pidsLimit,
      restartPolicy: a.restart !== undefined ? parseRestart(a.restart) : undefined,
    };
    for (const ref of a.containers.map(String)) {
      L.manage().updateContainer(p, ref, req);
      out(`${ref}\n`);
    }
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const lifecycleCommands: CommandModule<any, any>[] = [start, stop, restart, kill, rm, wait, rename, pause, unpause, update];
