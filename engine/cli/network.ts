// docker network and docker volume: create, ls, rm, inspect of bridge
// networks (engine/network.ts) and named volumes (engine/volumes.ts).

import type { Argv, CommandModule } from 'yargs';
import { ContainerStore } from '../containers';
import { inspectNetwork, inspectVolumeDoc } from '../inspect';
import { out, paths, type Args, type EngineGlobal } from './common';
import { parseLabels } from './flags';
import { table } from './format';

const L = {
  network: () => require('../network') as typeof import('../network'),
  volumes: () => require('../volumes') as typeof import('../volumes'),
};

const listFlags = (z: Argv): Argv => z.option('quiet', { alias: 'q', type: 'boolean', default: false }).option('format', { type: 'string', default: 'table' });
const names = (z: Argv): Argv => z.positional('names', { type: 'string', array: true, demandOption: true });

const networkCmd: CommandModule<EngineGlobal, EngineGlobal> = {
  command: 'network <command>',
  describe: 'bridge networks: create, ls, rm, inspect',
  builder: (y) =>
    y.command({
      command: 'create <name>',
      describe: 'create a bridge network',
      builder: (z: Argv) => z.positional('name', { type: 'string', demandOption: true }).option('subnet', { type: 'string' }).option('internal', { type: 'boolean', default: false }) as never,
      handler: (a: Args<{ name: string; subnet?: string; internal: boolean }>) => {
        const n = L.network().createNetwork(paths(a), a.name, { subnet: a.subnet, internal: a.internal });
        out(`${n.id}\n`);
      },
    } as never).command({
      command: 'ls',
      aliases: ['list'],
      describe: 'list networks',
      builder: listFlags as never,
      handler: (a: Args<{ quiet: boolean; format: string }>) => {
        const list = L.network().listNetworks(paths(a));
        if (a.quiet) out(list.map((n) => `${n.id.slice(0, 12)}\n`).join(''));
        else if (a.format === 'json') out(list.map((n) => JSON.stringify({ ID: n.id.slice(0, 12), Name: n.name, Driver: n.driver, Subnet: n.subnet }) + '\n').join(''));
        else out(table(['NETWORK ID', 'NAME', 'DRIVER', 'SUBNET'], list.map((n) => [n.id.slice(0, 12), n.name, n.driver, n.subnet])));
      },
    } as never).command({
      command: 'rm <names..>',
      aliases: ['remove'],
      describe: 'remove networks',
      builder: names as never,
      handler: (a: Args<{ names: string[] }>) => {
        for (const n of a.names.map(String)) {
          L.network().removeNetwork(paths(a), n);
          out(`${n}\n`);
        }
      },
    } as never).command({
      command: 'inspect <names..>',
      describe: 'show networks as JSON',
      builder: names as never,
      handler: (a: Args<{ names: string[] }>) => {
        const p = paths(a);
        const all = new ContainerStore(p).all();
        out(JSON.stringify(a.names.map(String).map((name) => inspectNetwork(L.network().findNetwork(p, name), all)), null, 4) + '\n');
      },
    } as never).demandCommand(1) as never,
  handler: () => {},
};

const volumeCmd: CommandModule<EngineGlobal, EngineGlobal> = {
  command: 'volume <command>',
  describe: 'named volumes: create, ls, rm, inspect',
  builder: (y) =>
    y.command({
      command: 'create [name]',
      describe: 'create a volume',
      builder: (z: Argv) => z.positional('name', { type: 'string' }).option('label', { type: 'string', array: true, default: [] as string[] }) as never,
      handler: (a: Args<{ name?: string; label: string[] }>) => {
        const name = a.name ?? L.volumes().anonymousVolumeName();
        out(`${L.volumes().createVolume(paths(a), name, parseLabels(a.label)).name}\n`);
      },
    } as never).command({
      command: 'ls',
      aliases: ['list'],
      describe: 'list volumes',
      builder: listFlags as never,
      handler: (a: Args<{ quiet: boolean; format: string }>) => {
        const list = L.volumes().listVolumes(paths(a));
        if (a.quiet) out(list.map((v) => `${v.name}\n`).join(''));
        else if (a.format === 'json') out(list.map((v) => JSON.stringify({ Driver: v.driver, Name: v.name, Mountpoint: v.mountpoint }) + '\n').join(''));
        else out(table(['DRIVER', 'VOLUME NAME'], list.map((v) => [v.driver, v.name])));
      },
    } as never).command({
      command: 'rm <names..>',
      aliases: ['remove'],
      describe: 'remove volumes (not while a container uses them)',
      builder: names as never,
      handler: (a: Args<{ names: string[] }>) => {
        const p = paths(a);
        const all = new ContainerStore(p).all();
        for (const n of a.names.map(String)) {
          L.volumes().removeVolume(p, n, L.volumes().volumeUsers(all, n));
          out(`${n}\n`);
        }
      },
    } as never).command({
      command: 'inspect <names..>',
      describe: 'show volumes as JSON',
      builder: names as never,
      handler: (a: Args<{ names: string[] }>) => {
        const vols = a.names.map(String).map((n) => L.volumes().inspectVolume(paths(a), n));
        out(JSON.stringify(vols.map(inspectVolumeDoc), null, 4) + '\n');
      },
    } as never).demandCommand(1) as never,
  handler: () => {},
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const networkCommands: CommandModule<any, any>[] = [networkCmd, volumeCmd];
