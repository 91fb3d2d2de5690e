// docker run and create: their flags (shared) into a create request, the
// image found or pulled, one library call to make the container; run then
// starts it and, unless -d, attaches until it exits.

import type { Argv, CommandModule } from 'yargs';
import { mark } from '../timing';
import type { Container, MountRequest, PortBinding } from '../containers';
import type { Image } from '../../images/image';
import { paths, imageStore, out, type Args, type EngineGlobal } from './common';
import { envList, parseLabels, parseMount, parseRestart, parseSize, parseVolume } from './flags';
import { attachAndWait } from './exec';

const L = {
  lifecycle: () => require('../lifecycle') as typeof import('../lifecycle'),
  network: () => require('../network') as typeof import('../network'),
  create: () => require('../create') as typeof import('../create'),
  images: () => require('../images') as typeof import('../images'),
  progress: () => require('../../images/cli/progress') as typeof import('../../images/cli/progress'),
};

interface RunFlags {
  image: string;
  command: string[];
  detach: boolean;
  interactive: boolean;
  tty: boolean;
  rm: boolean;
  name?: string;
  env: string[];
  envFile: string[];
  publish: string[];
  publishAll: boolean;
  volume: string[];
  mount: string[];
  tmpfs: string[];
  workdir?: string;
  user?: string;
  entrypoint?: string;
  hostname?: string;
  network: string;
  memory?: string;
  cpus?: number;
  pidsLimit?: number;
  restart: string;
  readOnly: boolean;
  capAdd: string[];
  capDrop: string[];
  privileged: boolean;
  init: boolean;
  label: string[];
  stopSignal?: string;
  stopTimeout?: number;
  logOpt: string[];
  pull: string;
  quiet: boolean;
  cgroupParent: string;
}

function runOptions<T>(y: Argv<T>): Argv<T & RunFlags> {
  return y
    .positional('image', { type: 'string', demandOption: true })
    .positional('command', { type: 'string', array: true, default: [] as string[] })
    .option('interactive', { alias: 'i', type: 'boolean', default: false, describe: 'keep stdin open' })
    .option('tty', { alias: 't', type: 'boolean', default: false, describe: 'allocate a pseudo-terminal' })
    .option('rm', { type: 'boolean', default: false, describe: 'remove the container when it exits' })
    .option('name', { type: 'string' })
    .option('env', { alias: 'e', type: 'string', array: true, default: [] as string[] })
    .option('env-file', { type: 'string', array: true, default: [] as string[] })
    .option('publish', { alias: 'p', type: 'string', array: true, default: [] as string[], describe: '[ip:]hostPort:containerPort[/proto]' })
    .option('publish-all', { alias: 'P', type: 'boolean', default: false })
    .option('volume', { alias: 'v', type: 'string', array: true, default: [] as string[], describe: 'host-path|volume:container-path[:ro]' })
    .option('mount', { type: 'string', array: true, default: [] as string[], describe: 'type=bind|volume|tmpfs,source=...,target=...[,readonly]' })
    .option('tmpfs', { type: 'string', array: true, default: [] as string[] })
    .option('workdir', { alias: 'w', type: 'string' })
    .option('user', { alias: 'u', type: 'string' })
    .option('entrypoint', { type: 'string' })
    .option('hostname', { alias: 'h', type: 'string' })
    .option('network', { alias: 'net', type: 'string', default: 'bridge', describe: 'bridge|host|none|container:X|NAME' })
    .option('memory', { alias: 'm', type: 'string', describe: 'limit, e.g. 32m' })
    .option('cpus', { type: 'number' })
    .option('pids-limit', { type: 'number' })
    .option('restart', { type: 'string', default: 'no', describe: 'no|on-failure[:N]|always|unless-stopped' })
    .option('read-only', { type: 'boolean', default: false })
    .option('cap-add', { type: 'string', array: true, default: [] as string[] })
    .option('cap-drop', { type: 'string', array: true, default: [] as string[] })
    .option('privileged', { type: 'boolean', default: false })
    .option('init', { type: 'boolean', default: false, describe: 'run an init as PID 1 that reaps zombies and forwards signals' })
    .option('label', { alias: 'l', type: 'string', array: true, default: [] as string[] })
    .option('stop-signal', { type: 'string' })
    .option('stop-timeout', { type: 'number' })
    .option('log-opt', { type: 'string', array: true, default: [] as string[], describe: 'max-size=10m, max-file=3' })
    .option('pull', { choices: ['missing', 'always', 'never'], default: 'missing' })
    .option('cgroup-parent', { type: 'string', default: '/mycontainer', describe: 'the cgroup containers go under' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false }) as never;
}

/** The image, pulled first if missing (docker's --pull=missing), with pull progress on stderr unless -q. */
async function resolveImage(a: EngineGlobal, ref: string, policy: string, quiet: boolean): Promise<Image> {
  return L.images().resolveImage(imageStore(a), ref, {
    policy,
    onMissing: (r) => process.stderr.write(`Unable to find image '${r}' locally\n`),
    onEvent: quiet ? undefined : L.progress().progressPrinter(process.stderr, process.stderr.isTTY === true),
    onWarning: (m) => process.stderr.write(`mycontainer: warning: ${m}\n`),
  });
}

async function createFromFlags(a: Args<RunFlags>): Promise<Container> {
  const p = paths(a);
  // -t without a terminal on stdin: docker says "the input device is not a TTY"; we let it run, the pty is still the container's
  const publish: PortBinding[] = a.publish.map(String).map(L.network().parsePublish);
  const image = await resolveImage(a, a.image, a.pull, a.quiet);
  const mounts: MountRequest[] = [
    ...a.volume.map(String).map(parseVolume),
    ...a.mount.map(String).map(parseMount),
    ...a.tmpfs.map(String).map((t): MountRequest => ({ type: 'tmpfs', source: 'tmpfs', destination: t.split(':')[0]!, readonly: false })),
  ];
  const logOpts = new Map(a.logOpt.map(String).map((o) => [o.slice(0, o.indexOf('=')), o.slice(o.indexOf('=') + 1)] as [string, string]));
  let entrypoint: string[] | null = null;
  if (a.entrypoint !== undefined) entrypoint = a.entrypoint === '' ? [] : a.entrypoint.startsWith('[') ? (JSON.parse(a.entrypoint) as string[]) : [a.entrypoint];
  const cmd = [...a.command.map(String), ...a._.slice(1).map(String)];
  return L.create().createFromImage(p, imageStore(a), image, {
    name: a.name,
    config: {
      entrypoint,
      cmd: cmd.length > 0 ? cmd : null,
      env: envList(a.env, a.envFile),
      workingDir: a.workdir,
      user: a.user,
      tty: a.tty,
      openStdin: a.interactive,
      hostname: a.hostname,
      labels: parseLabels(a.label),
      stopSignal: a.stopSignal,
      stopTimeout: a.stopTimeout ?? 10,
    },
    hostConfig: {
      autoRemove: a.rm,
      restartPolicy: parseRestart(a.restart),
      networkMode: a.network === 'default' ? 'bridge' : a.network,
      portBindings: publish,
      mounts,
      memory: a.memory ? parseSize(a.memory, '--memory') : 0,
      nanoCpus: a.cpus ? Math.round(a.cpus * 1e9) : 0,
      pidsLimit: a.pidsLimit ?? 0,
      readonlyRootfs: a.readOnly,
      capAdd: a.capAdd.map(String),
      capDrop: a.capDrop.map(String),
      privileged: a.privileged,
      init: a.init,
      logMaxSize: logOpts.has('max-size') ? parseSize(logOpts.get('max-size')!, '--log-opt max-size') : 10 * 1024 * 1024,
      logMaxFiles: logOpts.has('max-file') ? Number(logOpts.get('max-file')) : 2,
      cgroupParent: a.cgroupParent,
    },
  }, { publishAll: a.publishAll });
}

const run: CommandModule<EngineGlobal, EngineGlobal & RunFlags> = {
  command: 'run <image> [command..]',
  describe: 'create and start a container from an image',
  builder: (y) => runOptions(y).option('detach', { alias: 'd', type: 'boolean', default: false }) as never,
  handler: async (a: Args<RunFlags>) => {
    const p = paths(a);
    mark('run');
    const c: Container = await createFromFlags(a);
    mark('created');
    let launched: import('../launch').Launched;
    try {
      launched = await L.lifecycle().startContainer(p, c.id, { attach: !a.detach, debug: a.debug });
    } catch (e) {
      // a run that cannot start leaves no container behind (docker keeps a Created one)
      try {
        L.lifecycle().removeContainer(p, c.id, { force: true });
      } catch {
        // the start error matters
      }
      throw e;
    }
    mark('monitor ready');
    if (a.detach) {
      out(`${c.id}\n`);
      return;
    }
    const code = await attachAndWait(p, c, { stdin: a.interactive, begin: launched.begin, awaitExit: launched.awaitExit });
    mark('exit frame');
    process.exitCode = code;
  },
};

const create: CommandModule<EngineGlobal, EngineGlobal & RunFlags> = {
  command: 'create <image> [command..]',
  describe: 'create a container from an image, without starting it',
  builder: (y) => runOptions(y) as never,
  handler: async (a: Args<RunFlags>) => {
    const c = await createFromFlags(a);
    out(`${c.id}\n`);
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const runCommands: CommandModule<any, any>[] = [run, create];
