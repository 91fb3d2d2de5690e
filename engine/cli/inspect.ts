// docker's views of containers: ps, inspect (containers, then images),
// logs, port, top, stats. The documents come from engine/inspect.ts and
// engine/stats.ts; here they are picked by the flags and printed.

import * as fs from 'node:fs';
import type { CommandModule } from 'yargs';
import { RuntimeError } from '../../runtime/sys/errors';
import { ContainerStore, liveStatus, type Container } from '../containers';
import { ago, commandText, containerSummary, inspectContainer, isActive, portsText, shortImage, statusText } from '../inspect';
import { out, paths, type Args, type EngineGlobal } from './common';
import { formatTemplate, table } from './format';

const L = {
  logs: () => require('../logs') as typeof import('../logs'),
  manage: () => require('../manage') as typeof import('../manage'),
  stats: () => require('../stats') as typeof import('../stats'),
  imageCli: () => require('../../images/cli/commands') as typeof import('../../images/cli/commands'),
  progress: () => require('../../images/cli/progress') as typeof import('../../images/cli/progress'),
};

const ps: CommandModule<EngineGlobal, EngineGlobal & { all: boolean; quiet: boolean; format: string; noTrunc: boolean }> = {
  command: 'ps',
  describe: 'list containers (running ones; -a: all)',
  builder: (y) =>
    y.option('all', { alias: 'a', type: 'boolean', default: false })
      .option('quiet', { alias: 'q', type: 'boolean', default: false })
      .option('no-trunc', { type: 'boolean', default: false })
      .option('format', { type: 'string', default: 'table', describe: 'table, json, or a template: \'{{.Names}} {{.Status}}\'' }) as never,
  handler: (a: Args<{ all: boolean; quiet: boolean; format: string; noTrunc: boolean }>) => {
    const store = new ContainerStore(paths(a));
    const list = store.all()
      .filter((c) => a.all || isActive(c))
      .sort((x, y) => y.created.localeCompare(x.created));
    const id = (c: Container): string => (a.noTrunc ? c.id : c.id.slice(0, 12));
    if (a.quiet) {
      out(list.map((c) => `${id(c)}\n`).join(''));
    } else if (a.format === 'json' || a.format.includes('{{')) {
      // docker's --format '{{.Names}} {{.Status}}' (a Go template's field references), or one JSON object a line
      const row = (c: Container): Record<string, unknown> => containerSummary(c, { noTrunc: a.noTrunc });
      out(list.map((c) => (a.format === 'json' ? JSON.stringify(row(c)) : formatTemplate(a.format, row(c))) + '\n').join(''));
    } else {
      out(table(['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
        list.map((c) => [id(c), shortImage(c.config.image), commandText(c), `${ago(c.created)} ago`, statusText(c), portsText(c), c.name])));
    }
  },
};

const logs: CommandModule<EngineGlobal, EngineGlobal & { container: string; follow: boolean; tail: string; timestamps: boolean }> = {
  command: 'logs <container>',
  describe: 'print a container\'s output (CRI log file)',
  builder: (y) =>
    y.positional('container', { type: 'string', demandOption: true })
      .option('follow', { alias: 'f', type: 'boolean', default: false })
      .option('tail', { alias: 'n', type: 'string', default: 'all' })
      .option('timestamps', { alias: 't', type: 'boolean', default: false }) as never,
  handler: async (a: Args<{ container: string; follow: boolean; tail: string; timestamps: boolean }>) => {
    const p = paths(a);
    const store = new ContainerStore(p);
    const c = store.resolve(a.container);
    const Lg = L.logs();
    const file = p.log(c.id);
    const print = (e: import('../logs').LogEntry): void => {
      const line = a.timestamps ? `${e.time} ${e.text}` : e.text;
      (e.stream === 'stderr' ? process.stderr : process.stdout).write(line);
    };
    let offset = 0;
    try {
      offset = fs.statSync(file).size;
    } catch {
      offset = 0;
    }
    let entries = Lg.readAll(file);
    if (a.tail !== 'all') {
      const n = Number(a.tail);
      if (!Number.isInteger(n) || n < 0) throw new RuntimeError(`invalid --tail "${a.tail}": want a number or "all"`, { code: 'EINVAL' });
      entries = n === 0 ? [] : entries.slice(-n);
    }
    for (const e of entries) print(e);
    if (!a.follow) return;
    await Lg.follow(file, {
      offset,
      onEntry: print,
      stillRunning: () => {
        try {
          return isActive(store.read(c.id));
        } catch {
          return false;
        }
      },
    });
  },
};

const inspect: CommandModule<EngineGlobal, EngineGlobal & { names: string[]; format?: string; type?: string }> = {
  command: 'inspect <names..>',
  describe: 'show containers (or images) as JSON',
  builder: (y) =>
    y.positional('names', { type: 'string', array: true, demandOption: true })
      .option('format', { alias: 'f', type: 'string' })
      .option('type', { choices: ['container', 'image'] }) as never,
  handler: async (a: Args<{ names: string[]; format?: string; type?: string }>) => {
    const p = paths(a);
    const store = new ContainerStore(p);
    const docs: unknown[] = [];
    const imageNames: string[] = [];
    for (const n of a.names.map(String)) {
      if (a.type !== 'image') {
        try {
          docs.push(inspectContainer(p, store.resolve(n)));
          continue;
        } catch (e) {
          if ((e as RuntimeError).code !== 'ENOENT' || a.type === 'container') throw e;
        }
      }
      imageNames.push(n);
    }
    if (imageNames.length > 0) {
      const { imageInspectDocs } = L.imageCli();
      for (const n of imageNames) {
        try {
          docs.push(...imageInspectDocs(a.root, [n]));
        } catch (e) {
          if ((e as RuntimeError).code !== 'ENOTFOUND') throw e;
          throw new RuntimeError(`no such object: "${n}" is no container, and image "${n}" not found`, { code: 'ENOENT' });
        }
      }
    }
    if (a.format) out(docs.map((d) => formatTemplate(a.format!, d) + '\n').join(''));
    else out(JSON.stringify(docs, null, 4) + '\n');
  },
};

const port: CommandModule<EngineGlobal, EngineGlobal & { container: string; port?: string }> = {
  command: 'port <container> [port]',
  describe: 'list the container\'s published ports',
  builder: (y) => y.positional('container', { type: 'string', demandOption: true }).positional('port', { type: 'string' }) as never,
  handler: (a: Args<{ container: string; port?: string }>) => {
    const c = new ContainerStore(paths(a)).resolve(a.container);
    let list = c.hostConfig.portBindings;
    if (a.port) {
      const [n, proto] = a.port.split('/');
      list = list.filter((b) => b.containerPort === Number(n) && (!proto || b.protocol === proto));
      out(list.map((b) => `${b.hostIp}:${b.hostPort}\n`).join(''));
      return;
    }
    out(list.map((b) => `${b.containerPort}/${b.protocol} -> ${b.hostIp}:${b.hostPort}\n`).join(''));
  },
};

const top: CommandModule<EngineGlobal, EngineGlobal & { container: string }> = {
  command: 'top <container>',
  describe: 'the processes of a container',
  builder: (y) => y.positional('container', { type: 'string', demandOption: true }) as never,
  handler: (a: Args<{ container: string }>) => {
    const p = paths(a);
    const c = L.manage().runningContainer(p, a.container);
    const rows = L.stats().containerProcesses(p, c).map((r) => [r.uid, String(r.pid), r.ppid, r.cmd]);
    out(table(['UID', 'PID', 'PPID', 'CMD'], rows));
  },
};

const stats: CommandModule<EngineGlobal, EngineGlobal & { containers: string[]; noStream: boolean; format: string }> = {
  command: 'stats [containers..]',
  describe: 'CPU, memory and pids of running containers',
  builder: (y) =>
    y.positional('containers', { type: 'string', array: true, default: [] as string[] })
      .option('no-stream', { type: 'boolean', default: false })
      .option('format', { type: 'string', default: 'table' }) as never,
  handler: async (a: Args<{ containers: string[]; noStream: boolean; format: string }>) => {
    const p = paths(a);
    const store = new ContainerStore(p);
    const pick = (): Container[] =>
      a.containers.length > 0 ? a.containers.map((r) => L.manage().runningContainer(p, String(r))) : store.all().filter((c) => liveStatus(c) === 'running');
    const sample = (): ReturnType<typeof import('../stats').sampleStats> => L.stats().sampleStats(p, pick());
    const { humanSize } = L.progress();
    for (;;) {
      const t0 = process.hrtime.bigint();
      const s0 = sample();
      await new Promise((r) => setTimeout(r, 500));
      const dt = Number(process.hrtime.bigint() - t0);
      const s1 = sample();
      const rows: string[][] = [];
      const json: Record<string, unknown>[] = [];
      for (const c of pick()) {
        const x = s1.get(c.id);
        if (!x) continue;
        const cpu = ((x.cpu - (s0.get(c.id)?.cpu ?? x.cpu)) / dt) * 100;
        const limit = x.limit > 0 && x.limit < 2 ** 62 ? x.limit : 0;
        const memPct = limit ? (x.mem / limit) * 100 : 0;
        rows.push([c.id.slice(0, 12), c.name, `${cpu.toFixed(2)}%`, `${humanSize(x.mem)} / ${limit ? humanSize(limit) : '-'}`, `${memPct.toFixed(2)}%`, String(x.pids)]);
        json.push({ ID: c.id.slice(0, 12), Name: c.name, CPUPerc: `${cpu.toFixed(2)}%`, MemUsage: x.mem, MemLimit: limit, MemPerc: `${memPct.toFixed(2)}%`, PIDs: x.pids });
      }
      if (a.format === 'json') out(json.map((j) => JSON.stringify(j) + '\n').join(''));
      else {
        // streaming on a terminal: each sample replaces the last, as docker stats draws it
        if (!a.noStream && process.stdout.isTTY) out('\x1b[2J\x1b[H');
        out(table(['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'PIDS'], rows));
      }
      if (a.noStream) return;
    }
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const inspectCommands: CommandModule<any, any>[] = [ps, logs, inspect, port, top, stats];
