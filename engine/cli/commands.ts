// Docker's container commands over the engine: run, create, start, stop,
// restart, kill, rm, ps, logs, exec, attach, inspect, top, stats, port,
// wait, rename, pause, unpause, update, and the network and volume groups.
// Each parses docker's flags into a request and makes one library call;
// cli/main.ts prints errors.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { RuntimeError } from '../../runtime/sys/errors';
import { mark } from '../timing';
import { ContainerStore, DEFAULT_RUNROOT, Paths, liveStatus, type Container, type MountRequest, type PortBinding, type RestartPolicy } from '../containers';
import { fileCommands } from './files';

const L = {
  lifecycle: () => require('../lifecycle') as typeof import('../lifecycle'),
  network: () => require('../network') as typeof import('../network'),
  volumes: () => require('../volumes') as typeof import('../volumes'),
  logs: () => require('../logs') as typeof import('../logs'),
  attach: () => require('../attach') as typeof import('../attach'),
  rt: () => require('../../runtime/container') as typeof import('../../runtime/container'),
  exec: () => require('../../runtime/exec') as typeof import('../../runtime/exec'),
  images: () => ({
    store: require('../../images/store') as typeof import('../../images/store'),
    image: require('../../images/image') as typeof import('../../images/image'),
    pull: require('../../images/pull') as typeof import('../../images/pull'),
    auth: require('../../images/auth') as typeof import('../../images/auth'),
    progress: require('../../images/cli/progress') as typeof import('../../images/cli/progress'),
    bundle: require('../../images/bundle') as typeof import('../../images/bundle'),
  }),
};

export interface EngineGlobal {
  root: string;
  runroot: string;
  debug: boolean;
}

type Args<T> = ArgumentsCamelCase<EngineGlobal & T>;

const out = (s: string): boolean => process.stdout.write(s);

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
    L.lifecycle().reconcile(p);
  }
  return p;
}

export function defaultRunroot(): string {
  return process.env['MYCONTAINER_RUNROOT'] ?? DEFAULT_RUNROOT;
}

// ---- flags shared by run and create ----------------------------------------

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

/** Boolean flags of run/create/exec (they take no value: the rest take one). */
const BOOLEAN_FLAGS = new Set([
  '-d', '--detach', '-i', '--interactive', '-t', '--tty', '--rm', '-P', '--publish-all', '--read-only', '--privileged',
  '--init', '-q', '--quiet', '--debug', '--help', '--sig-proxy', '--no-stdin', '-a', '--attach',
]);
const SHORT_BOOLEANS = new Set(['d', 'i', 't', 'P', 'q', 'a']);

/**
 * `run [opts] IMAGE [CMD...]`, `exec [opts] CTR CMD...`: the command's own
 * flags (`sh -c`) must not be read as ours. Inserts "--" after the first
 * positional that follows the command name.
 */
export function splitContainerArgv(argv: string[], commands: readonly string[]): string[] {
  let i = 0;
  // global options before the command name
  while (i < argv.length && argv[i]!.startsWith('-')) i += argv[i]!.includes('=') || argv[i] === '--debug' ? 1 : 2;
  if (i >= argv.length || !commands.includes(argv[i]!)) return argv;
  // `container run` and the like
  i++;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return argv;
    if (!a.startsWith('-') || a === '-') return [...argv.slice(0, i + 1), '--', ...argv.slice(i + 1)];
    if (a.startsWith('--')) {
      if (a.includes('=') || BOOLEAN_FLAGS.has(a)) continue;
      i++; // its value
      continue;
    }
    // -it, -dit, -p 80:80, -e A=B
    const letters = a.slice(1);
    if ([...letters].every((l) => SHORT_BOOLEANS.has(l))) continue;
    if (letters.length === 1) i++;
  }
  return argv;
}

function parseSize(s: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmg]?)b?$/i.exec(s.trim());
  if (!m) throw new RuntimeError(`invalid ${what} "${s}": want a number with an optional unit (b, k, m, g)`, { code: 'EINVAL' });
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'b' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * mult);
}

export function parseRestart(s: string): RestartPolicy {
  const m = /^(no|always|unless-stopped|on-failure)(?::(\d+))?$/.exec(s);
  if (!m || (m[2] !== undefined && m[1] !== 'on-failure')) {
    throw new RuntimeError(`invalid --restart "${s}": want no, always, unless-stopped or on-failure[:N]`, { code: 'EINVAL' });
  }
  return { name: m[1] as RestartPolicy['name'], maximumRetryCount: m[2] ? Number(m[2]) : 0 };
}

/** `-v SRC:DST[:ro|rw]`: SRC absolute is a bind, else a volume name; `-v DST` an anonymous volume. */
export function parseVolume(spec: string): MountRequest {
  const parts = spec.split(':');
  const bad = (why: string): never => {
    throw new RuntimeError(`invalid -v "${spec}": ${why}`, { code: 'EINVAL' });
  };
  if (parts.length > 3 || parts.some((p) => p === '')) bad('want SOURCE:DESTINATION[:ro|rw]');
  let opts = '';
  if (parts.length === 3) opts = parts.pop()!;
  else if (parts.length === 2 && !parts[1]!.startsWith('/')) opts = parts.pop()!;
  if (opts && !opts.split(',').every((o) => ['ro', 'rw', 'z', 'Z'].includes(o))) bad(`unknown option "${opts}"`);
  const readonly = opts.split(',').includes('ro');
  if (parts.length === 1) {
    const dst = parts[0]!;
    if (!dst.startsWith('/')) bad('the container path must be absolute');
    return { type: 'volume', source: require('node:crypto').randomBytes(32).toString('hex') as string, destination: dst, readonly };
  }
  const [src, dst] = parts as [string, string];
  if (!dst.startsWith('/')) bad('the container path must be absolute');
  if (src.startsWith('/')) return { type: 'bind', source: path.resolve(src), destination: dst, readonly };
  if (src.startsWith('.')) bad('a relative host path: use an absolute one');
  return { type: 'volume', source: src, destination: dst, readonly };
}

/** `--mount type=bind,source=/a,target=/b,readonly` */
export function parseMount(spec: string): MountRequest {
  const kv = new Map<string, string>();
  for (const item of spec.split(',')) {
    const [k, v] = item.includes('=') ? [item.slice(0, item.indexOf('=')), item.slice(item.indexOf('=') + 1)] : [item, 'true'];
    kv.set(k!.trim(), v!.trim());
  }
  const type = (kv.get('type') ?? 'volume') as MountRequest['type'];
  if (!['bind', 'volume', 'tmpfs'].includes(type)) throw new RuntimeError(`invalid --mount "${spec}": type must be bind, volume or tmpfs`, { code: 'EINVAL' });
  const dst = kv.get('target') ?? kv.get('destination') ?? kv.get('dst') ?? '';
  const src = kv.get('source') ?? kv.get('src') ?? '';
  if (!dst.startsWith('/')) throw new RuntimeError(`invalid --mount "${spec}": target must be an absolute path`, { code: 'EINVAL' });
  if (type === 'bind' && !src.startsWith('/')) throw new RuntimeError(`invalid --mount "${spec}": a bind needs an absolute source`, { code: 'EINVAL' });
  if (type === 'volume' && !src) throw new RuntimeError(`invalid --mount "${spec}": a volume needs a source (its name)`, { code: 'EINVAL' });
  const ro = kv.get('readonly') ?? kv.get('ro');
  return { type, source: type === 'bind' ? path.resolve(src) : src, destination: dst, readonly: ro === 'true' || ro === '1' };
}

function readEnvFile(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new RuntimeError(`cannot read --env-file ${file}: ${(e as Error).message}`, { code: 'ENOENT' });
  }
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((l) => (l.includes('=') ? l : `${l}=${process.env[l] ?? ''}`));
}

function envList(a: RunFlags): string[] {
  const fromFiles = a.envFile.flatMap(readEnvFile);
  // `-e NAME` takes NAME from our environment, as docker
  const given = a.env.map(String).map((e) => (e.includes('=') ? e : `${e}=${process.env[e] ?? ''}`));
  return [...fromFiles, ...given];
}

function parseLabels(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list.map(String)) {
    const i = l.indexOf('=');
    out[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1);
  }
  return out;
}

function imageStore(a: EngineGlobal): import('../../images/store').ContentStore {
  return new (L.images().store.ContentStore)(path.resolve(a.root));
}

/** The image, pulled first if missing (docker's --pull=missing). */
async function resolveImage(a: EngineGlobal, ref: string, policy: string, quiet: boolean): Promise<import('../../images/image').Image> {
  const I = L.images();
  const s = imageStore(a);
  if (policy !== 'always') {
    // podman's short names: `busybox` is also localhost/busybox, an image built or loaded here
    for (const name of /^[a-z0-9._-]+(:[\w.-]+)?$/.test(ref) ? [ref, `localhost/${ref}`] : [ref]) {
      try {
        return I.image.findImage(s, name);
      } catch (e) {
        if ((e as RuntimeError).code !== 'ENOTFOUND') throw e;
      }
    }
    if (policy === 'never') throw new RuntimeError(`image "${ref}" not found and --pull=never`, { code: 'ENOTFOUND' });
    process.stderr.write(`Unable to find image '${ref}' locally\n`);
  }
  const insecure = (process.env['MYCONTAINER_INSECURE_REGISTRIES'] ?? '').split(',').filter(Boolean);
  const r = await I.pull.pull(s, ref, {
    registry: { insecure, credentials: I.auth.fileCredentials(undefined), userAgent: 'mycontainer/0.1' },
    onEvent: quiet ? undefined : I.progress.progressPrinter(process.stderr, process.stderr.isTTY === true),
    onWarning: (m) => process.stderr.write(`mycontainer: warning: ${m}\n`),
  });
  return I.image.findImage(s, r.name);
}

async function createFromFlags(a: Args<RunFlags>): Promise<Container> {
  const p = paths(a);
  if (a.tty && !process.stdin.isTTY && a.interactive && !a.detach) {
    // docker says "the input device is not a TTY"; we let it run, the pty is still the container's
  }
  const publish: PortBinding[] = a.publish.map(String).map(L.network().parsePublish);
  const image = await resolveImage(a, a.image, a.pull, a.quiet);
  const exposed = Object.keys(image.config.config?.ExposedPorts ?? {});
  if (a.publishAll) {
    for (const e of exposed) {
      const [port, proto] = e.split('/');
      if (!publish.some((b) => b.containerPort === Number(port))) publish.push({ hostIp: '0.0.0.0', hostPort: 0, containerPort: Number(port), protocol: (proto as 'tcp' | 'udp') ?? 'tcp' });
    }
  }
  for (const b of publish) if (b.hostPort === 0) b.hostPort = await L.network().ephemeralPort(b.hostIp);
  const mounts: MountRequest[] = [
    ...a.volume.map(String).map(parseVolume),
    ...a.mount.map(String).map(parseMount),
    ...a.tmpfs.map(String).map((t): MountRequest => ({ type: 'tmpfs', source: 'tmpfs', destination: t.split(':')[0]!, readonly: false })),
  ];
  const network = a.network === 'default' ? 'bridge' : a.network;
  if (publish.length > 0 && (network === 'host' || network === 'none' || network.startsWith('container:'))) {
    throw new RuntimeError(`cannot publish ports with --network ${network}`, { code: 'EINVAL' });
  }
  if (!['host', 'none'].includes(network) && !network.startsWith('container:')) L.network().findNetwork(p, network);
  const logOpts = new Map(a.logOpt.map(String).map((o) => [o.slice(0, o.indexOf('=')), o.slice(o.indexOf('=') + 1)] as [string, string]));
  let entrypoint: string[] | null = null;
  if (a.entrypoint !== undefined) entrypoint = a.entrypoint === '' ? [] : a.entrypoint.startsWith('[') ? (JSON.parse(a.entrypoint) as string[]) : [a.entrypoint];
  const cmd = [...a.command.map(String), ...a._.slice(1).map(String)];
  return L.lifecycle().createContainer(p, imageStore(a), image, {
    name: a.name,
    config: {
      entrypoint,
      cmd: cmd.length > 0 ? cmd : null,
      env: envList(a),
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
      networkMode: network,
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
  });
}

/** Attaches (run, start -a, attach) and returns the container's exit code. */
async function attachAndWait(p: Paths, c: Container, opts: { stdin: boolean; start: boolean }): Promise<number> {
  // docker's --sig-proxy: what we are sent, the container gets (with a tty, ^C is a byte on the pty instead)
  const sigs: NodeJS.Signals[] = c.config.tty ? ['SIGTERM', 'SIGHUP'] : ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  const forward = (sig: NodeJS.Signals): void => {
    try {
      L.rt().kill(L.lifecycle().runtimeContext(p), c.id, sig, false);
    } catch {
      // not running (yet, or any more)
    }
  };
  for (const s of sigs) process.on(s, forward);
  let r: import('../attach').ExitInfo | null;
  try {
    r = await L.attach().attach({ socket: p.attachSocket(c.id), stdin: opts.stdin, start: opts.start, tty: c.config.tty });
  } finally {
    for (const s of sigs) process.off(s, forward);
  }
  if (r?.error) throw new RuntimeError(r.error, { code: 'ESTART' });
  if (r) return r.exitCode;
  // The socket closed without an exit frame: read what the record says.
  const fresh = new ContainerStore(p).resolve(c.id);
  return fresh.state.exitCode;
}

const run: CommandModule<EngineGlobal, EngineGlobal & RunFlags> = {
  command: 'run <image> [command..]',
  describe: 'create and start a container from an image',
  builder: (y) => runOptions(y).option('detach', { alias: 'd', type: 'boolean', default: false }) as never,
  handler: async (a: Args<RunFlags>) => {
    const p = paths(a);
    mark('run');
    // The monitor boots while we make the container: one Node start off the critical path.
    const standby = L.lifecycle().standbyMonitor();
    let c: Container;
    try {
      c = await createFromFlags(a);
    } catch (e) {
      standby.cancel();
      throw e;
    }
    mark('created');
    try {
      await L.lifecycle().startContainer(p, c.id, { attach: !a.detach, debug: a.debug, standby });
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
    const code = await attachAndWait(p, c, { stdin: a.interactive, start: true });
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

const start: CommandModule<EngineGlobal, EngineGlobal & { containers: string[]; attach: boolean; interactive: boolean }> = {
  command: 'start <containers..>',
  describe: 'start stopped containers',
  builder: (y) =>
    y.positional('containers', { type: 'string', array: true, demandOption: true })
      .option('attach', { alias: 'a', type: 'boolean', default: false })
      .option('interactive', { alias: 'i', type: 'boolean', default: false }) as never,
  handler: async (a: Args<{ containers: string[]; attach: boolean; interactive: boolean }>) => {
    const p = paths(a);
    const store = new ContainerStore(p);
    for (const ref of a.containers.map(String)) {
      const c = store.resolve(ref);
      if (a.attach) {
        await L.lifecycle().startContainer(p, c.id, { attach: true, debug: a.debug });
        process.exitCode = await attachAndWait(p, c, { stdin: a.interactive, start: true });
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

const stop: CommandModule<EngineGlobal, EngineGlobal & { containers: string[]; time?: number }> = {
  command: 'stop <containers..>',
  describe: 'stop running containers: the stop signal, then KILL after the timeout',
  builder: (y) => y.positional('containers', { type: 'string', array: true, demandOption: true }).option('time', { alias: 't', type: 'number' }) as never,
  handler: (a: Args<{ containers: string[]; time?: number }>) => {
    for (const ref of a.containers.map(String)) {
      L.lifecycle().stopContainer(paths(a), ref, a.time);
      out(`${ref}\n`);
    }
  },
};

const restart: CommandModule<EngineGlobal, EngineGlobal & { containers: string[]; time?: number }> = {
  command: 'restart <containers..>',
  describe: 'stop, then start containers',
  builder: (y) => y.positional('containers', { type: 'string', array: true, demandOption: true }).option('time', { alias: 't', type: 'number' }) as never,
  handler: async (a: Args<{ containers: string[]; time?: number }>) => {
    for (const ref of a.containers.map(String)) {
      const c = L.lifecycle().stopContainer(paths(a), ref, a.time);
      await L.lifecycle().startContainer(paths(a), c.id, { attach: false });
      out(`${ref}\n`);
    }
  },
};

const kill: CommandModule<EngineGlobal, EngineGlobal & { containers: string[]; signal: string }> = {
  command: 'kill <containers..>',
  describe: 'send a signal to containers (default KILL)',
  builder: (y) => y.positional('containers', { type: 'string', array: true, demandOption: true }).option('signal', { alias: 's', type: 'string', default: 'KILL' }) as never,
  handler: (a: Args<{ containers: string[]; signal: string }>) => {
    for (const ref of a.containers.map(String)) {
      L.lifecycle().killContainer(paths(a), ref, a.signal);
      out(`${ref}\n`);
    }
  },
};

const rm: CommandModule<EngineGlobal, EngineGlobal & { containers: string[]; force: boolean; volumes: boolean }> = {
  command: 'rm <containers..>',
  describe: 'remove containers (-f: running ones too)',
  builder: (y) =>
    y.positional('containers', { type: 'string', array: true, demandOption: true })
      .option('force', { alias: 'f', type: 'boolean', default: false })
      .option('volumes', { alias: 'v', type: 'boolean', default: false, describe: 'remove anonymous volumes too' }) as never,
  handler: (a: Args<{ containers: string[]; force: boolean; volumes: boolean }>) => {
    const p = paths(a);
    const store = new ContainerStore(p);
    const errors: string[] = [];
    for (const ref of a.containers.map(String)) {
      try {
        const c = store.resolve(ref);
        L.lifecycle().removeContainer(p, c.id, { force: a.force });
        if (a.volumes) {
          for (const m of c.hostConfig.mounts) if (m.type === 'volume' && /^[0-9a-f]{64}$/.test(m.source)) fs.rmSync(L.volumes().volumeDir(p, m.source), { recursive: true, force: true });
        }
        out(`${ref}\n`);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    if (errors.length > 0) throw new RuntimeError(errors.join('\n'), { code: 'ERM' });
  },
};

// ---- ps ------------------------------------------------------------------------

export function ago(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 1) return 'Less than a second';
  if (s < 60) return s === 1 ? '1 second' : `${s} seconds`;
  const m = Math.round(s / 60);
  if (m < 60) return m === 1 ? 'About a minute' : `${m} minutes`;
  const h = Math.round(m / 60);
  if (h < 48) return h === 1 ? 'About an hour' : `${h} hours`;
  const d = Math.round(h / 24);
  if (d < 14) return `${d} days`;
  return `${Math.round(d / 7)} weeks`;
}

/** docker ps's STATUS column. */
export function statusText(c: Container, now = Date.now()): string {
  const s = liveStatus(c);
  switch (s) {
    case 'running':
      return `Up ${ago(c.state.startedAt, now)}`;
    case 'paused':
      return `Up ${ago(c.state.startedAt, now)} (Paused)`;
    case 'restarting':
      return `Restarting (${c.state.exitCode}) ${ago(c.state.finishedAt, now)} ago`;
    case 'exited':
      return c.state.finishedAt.startsWith('0001') ? 'Exited (0)' : `Exited (${c.state.exitCode}) ${ago(c.state.finishedAt, now)} ago`;
    case 'created':
      return 'Created';
    default:
      return s[0]!.toUpperCase() + s.slice(1);
  }
}

export function portsText(c: Container): string {
  return c.hostConfig.portBindings.map((b) => `${b.hostIp}:${b.hostPort}->${b.containerPort}/${b.protocol}`).join(', ');
}

function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]! + 3))).join('').trimEnd()).join('\n') + '\n';
}

function shortImage(name: string): string {
  return name.replace(/^docker\.io\/(library\/)?/, '');
}

function commandText(c: Container): string {
  const s = c.config.args.map((x) => (/\s/.test(x) ? `'${x}'` : x)).join(' ');
  return `"${s.length > 20 ? s.slice(0, 19) + '…' : s}"`;
}

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
      .filter((c) => a.all || ['running', 'paused', 'restarting'].includes(liveStatus(c)))
      .sort((x, y) => y.created.localeCompare(x.created));
    const id = (c: Container): string => (a.noTrunc ? c.id : c.id.slice(0, 12));
    if (a.quiet) {
      out(list.map((c) => `${id(c)}\n`).join(''));
    } else if (a.format === 'json' || a.format.includes('{{')) {
      const row = (c: Container): Record<string, unknown> => ({
        ID: id(c), Image: shortImage(c.config.image), Command: commandText(c), CreatedAt: c.created, RunningFor: ago(c.created), Status: statusText(c),
        State: liveStatus(c), Ports: portsText(c), Names: c.name, Labels: c.config.labels,
      });
      // docker's --format '{{.Names}} {{.Status}}' (a Go template's field references), or one JSON object a line
      out(list.map((c) => (a.format === 'json' ? JSON.stringify(row(c)) : formatTemplate(a.format, row(c))) + '\n').join(''));
    } else {
      out(table(['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
        list.map((c) => [id(c), shortImage(c.config.image), commandText(c), `${ago(c.created)} ago`, statusText(c), portsText(c), c.name])));
    }
  },
};

// ---- logs ----------------------------------------------------------------------

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
          return ['running', 'paused', 'restarting'].includes(liveStatus(store.read(c.id)));
        } catch {
          return false;
        }
      },
    });
  },
};

// ---- inspect, wait, port, rename, top, stats -----------------------------------------------

function inspectDoc(p: Paths, c: Container): Record<string, unknown> {
  const s = liveStatus(c);
  return {
    Id: c.id,
    Created: c.created,
    Path: c.config.args[0] ?? '',
    Args: c.config.args.slice(1),
    State: {
      Status: s,
      Running: s === 'running' || s === 'paused',
      Paused: s === 'paused',
      Restarting: s === 'restarting',
      OOMKilled: c.state.oomKilled,
      Dead: s === 'dead',
      Pid: s === 'running' || s === 'paused' ? c.state.pid : 0,
      ExitCode: c.state.exitCode,
      Error: c.state.error,
      StartedAt: c.state.startedAt,
      FinishedAt: c.state.finishedAt,
    },
    Image: c.config.imageId,
    LogPath: p.log(c.id),
    Name: `/${c.name}`,
    RestartCount: c.state.restartCount,
    Driver: 'overlay',
    HostConfig: {
      AutoRemove: c.hostConfig.autoRemove,
      RestartPolicy: { Name: c.hostConfig.restartPolicy.name, MaximumRetryCount: c.hostConfig.restartPolicy.maximumRetryCount },
      NetworkMode: c.hostConfig.networkMode,
      PortBindings: Object.fromEntries(c.hostConfig.portBindings.map((b) => [`${b.containerPort}/${b.protocol}`, [{ HostIp: b.hostIp, HostPort: String(b.hostPort) }]])),
      Memory: c.hostConfig.memory,
      NanoCpus: c.hostConfig.nanoCpus,
      PidsLimit: c.hostConfig.pidsLimit,
      ReadonlyRootfs: c.hostConfig.readonlyRootfs,
      CapAdd: c.hostConfig.capAdd,
      CapDrop: c.hostConfig.capDrop,
      Privileged: c.hostConfig.privileged,
      Init: c.hostConfig.init,
      LogConfig: { Type: 'cri', Config: { 'max-size': String(c.hostConfig.logMaxSize), 'max-file': String(c.hostConfig.logMaxFiles) } },
    },
    Mounts: c.hostConfig.mounts.map((m) => ({
      Type: m.type,
      Name: m.type === 'volume' ? m.source : undefined,
      Source: m.type === 'volume' ? path.join(p.volumes, m.source, '_data') : m.source,
      Destination: m.destination,
      RW: !m.readonly,
    })),
    Config: {
      Hostname: c.config.hostname,
      User: c.config.user,
      Tty: c.config.tty,
      OpenStdin: c.config.openStdin,
      Env: c.config.env,
      Cmd: c.config.cmd,
      Entrypoint: c.config.entrypoint,
      Image: c.config.image,
      WorkingDir: c.config.workingDir,
      Labels: c.config.labels,
      StopSignal: c.config.stopSignal,
      StopTimeout: c.config.stopTimeout,
      ExposedPorts: Object.fromEntries(c.config.exposedPorts.map((e) => [e, {}])),
    },
    NetworkSettings: {
      IPAddress: c.network?.ipAddress ?? '',
      IPPrefixLen: c.network?.prefixLen ?? 0,
      Gateway: c.network?.gateway ?? '',
      MacAddress: c.network?.macAddress ?? '',
      SandboxKey: c.network?.netns ?? '',
      Ports: Object.fromEntries(c.hostConfig.portBindings.map((b) => [`${b.containerPort}/${b.protocol}`, [{ HostIp: b.hostIp, HostPort: String(b.hostPort) }]])),
      Networks: c.network && c.network.network !== 'none'
        ? { [c.network.network]: { IPAddress: c.network.ipAddress, IPPrefixLen: c.network.prefixLen, Gateway: c.network.gateway, MacAddress: c.network.macAddress } }
        : {},
    },
  };
}

/** Go-template-ish --format: `{{.State.Status}}`, `{{.NetworkSettings.IPAddress}}`, `{{json .State}}`. */
export function formatTemplate(tpl: string, doc: unknown): string {
  return tpl.replace(/\{\{\s*(json\s+)?\.([\w.]*)\s*\}\}/g, (_m, json: string | undefined, field: string) => {
    let v: unknown = doc;
    for (const k of field.split('.').filter(Boolean)) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
    if (json) return JSON.stringify(v ?? null);
    if (v === undefined || v === null) return '<no value>';
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  });
}

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
          docs.push(inspectDoc(p, store.resolve(n)));
          continue;
        } catch (e) {
          if ((e as RuntimeError).code !== 'ENOENT' || a.type === 'container') throw e;
        }
      }
      imageNames.push(n);
    }
    if (imageNames.length > 0) {
      const { imageInspectDocs } = require('../../images/cli/commands') as typeof import('../../images/cli/commands');
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

const wait: CommandModule<EngineGlobal, EngineGlobal & { containers: string[] }> = {
  command: 'wait <containers..>',
  describe: 'wait until containers stop, then print their exit codes',
  builder: (y) => y.positional('containers', { type: 'string', array: true, demandOption: true }) as never,
  handler: async (a: Args<{ containers: string[] }>) => {
    const store = new ContainerStore(paths(a));
    for (const ref of a.containers.map(String)) {
      const c = store.resolve(ref);
      for (;;) {
        let fresh: Container;
        try {
          fresh = store.read(c.id);
        } catch {
          out(`${c.state.exitCode}\n`);
          break;
        }
        const s = liveStatus(fresh);
        if (s === 'exited' || s === 'created' || s === 'dead') {
          out(`${fresh.state.exitCode}\n`);
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
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

const rename: CommandModule<EngineGlobal, EngineGlobal & { container: string; newName: string }> = {
  command: 'rename <container> <newName>',
  describe: 'rename a container',
  builder: (y) => y.positional('container', { type: 'string', demandOption: true }).positional('newName', { type: 'string', demandOption: true }) as never,
  handler: (a: Args<{ container: string; newName: string }>) => {
    const p = paths(a);
    const store = new ContainerStore(p);
    const { validName } = require('../names') as typeof import('../names');
    if (!validName(a.newName)) throw new RuntimeError(`cannot rename: invalid name "${a.newName}"`, { code: 'EINVAL' });
    const { withFileLock } = require('../containers') as typeof import('../containers');
    withFileLock(p.globalLock, () => {
      const c = store.resolve(a.container);
      const other = store.all().find((x) => x.name === a.newName && x.id !== c.id);
      if (other) throw new RuntimeError(`cannot rename: the name "/${a.newName}" is already in use by container ${other.id.slice(0, 12)}`, { code: 'EEXIST' });
      store.update(c.id, (x) => {
        x.name = a.newName;
      });
    });
  },
};

function running(p: Paths, ref: string): Container {
  const c = new ContainerStore(p).resolve(ref);
  const s = liveStatus(c);
  if (s !== 'running' && s !== 'paused') throw new RuntimeError(`container ${c.name} is not running`, { code: 'EINVAL' });
  return c;
}

const top: CommandModule<EngineGlobal, EngineGlobal & { container: string }> = {
  command: 'top <container>',
  describe: 'the processes of a container',
  builder: (y) => y.positional('container', { type: 'string', demandOption: true }) as never,
  handler: (a: Args<{ container: string }>) => {
    const p = paths(a);
    const c = running(p, a.container);
    const pids = L.rt().pids(L.lifecycle().runtimeContext(p), c.id);
    const rows = pids.map((pid) => {
      try {
        const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
        const uid = /^Uid:\s+(\d+)/m.exec(st)?.[1] ?? '?';
        const ppid = /^PPid:\s+(\d+)/m.exec(st)?.[1] ?? '?';
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
        return [uid, String(pid), ppid, cmd];
      } catch {
        return null;
      }
    }).filter((r): r is string[] => r !== null);
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
    const ctx = L.lifecycle().runtimeContext(p);
    const pick = (): Container[] =>
      a.containers.length > 0 ? a.containers.map((r) => running(p, String(r))) : store.all().filter((c) => liveStatus(c) === 'running');
    const sample = (): Map<string, { cpu: number; mem: number; limit: number; pids: number }> => {
      const m = new Map<string, { cpu: number; mem: number; limit: number; pids: number }>();
      for (const c of pick()) {
        try {
          const s = L.rt().stats(ctx, c.id) as { data: { cpu: { usage: { total: number } }; memory: { usage: { usage: number; limit: number } }; pids: { current: number } } };
          m.set(c.id, { cpu: s.data.cpu.usage.total, mem: s.data.memory.usage.usage, limit: s.data.memory.usage.limit, pids: s.data.pids.current });
        } catch {
          // stopped meanwhile
        }
      }
      return m;
    };
    const { humanSize } = L.images().progress;
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

/** pause and unpause: the freezer through the runtime, then the record's status. */
function freezeCommand(command: string, describe: string, frozen: boolean): CommandModule<EngineGlobal, EngineGlobal & { containers: string[] }> {
  return {
    command: `${command} <containers..>`,
    describe,
    builder: (y) => y.positional('containers', { type: 'string', array: true, demandOption: true }) as never,
    handler: (a: Args<{ containers: string[] }>) => {
      const p = paths(a);
      for (const ref of a.containers.map(String)) {
        const c = running(p, ref);
        L.rt().pause(L.lifecycle().runtimeContext(p), c.id, frozen);
        new ContainerStore(p).update(c.id, (x) => {
          if (frozen) x.state.status = 'paused';
          else if (x.state.status === 'paused') x.state.status = 'running';
        });
        out(`${ref}\n`);
      }
    },
  };
}

const pause = freezeCommand('pause', 'freeze every process of containers', true);
const unpause = freezeCommand('unpause', 'thaw paused containers', false);

const update: CommandModule<EngineGlobal, EngineGlobal & { containers: string[]; memory?: string; cpus?: number; pidsLimit?: number; restart?: string }> = {
  command: 'update <containers..>',
  describe: 'change the limits (or restart policy) of containers',
  builder: (y) =>
    y.positional('containers', { type: 'string', array: true, demandOption: true })
      .option('memory', { alias: 'm', type: 'string' })
      .option('cpus', { type: 'number' })
      .option('pids-limit', { type: 'number' })
      .option('restart', { type: 'string' }) as never,
  handler: (a: Args<{ containers: string[]; memory?: string; cpus?: number; pidsLimit?: number; restart?: string }>) => {
    const p = paths(a);
    const store = new ContainerStore(p);
    for (const ref of a.containers.map(String)) {
      const c = store.resolve(ref);
      const memory = a.memory !== undefined ? parseSize(a.memory, '--memory') : undefined;
      const nano = a.cpus !== undefined ? Math.round(a.cpus * 1e9) : undefined;
      const resources: import('../../runtime/cgroups/manager').LinuxResources = {};
      if (memory !== undefined) resources.memory = { limit: memory, swap: memory };
      if (nano !== undefined) resources.cpu = { period: 100000, quota: Math.round((nano / 1e9) * 100000) };
      if (a.pidsLimit !== undefined) resources.pids = { limit: a.pidsLimit };
      const s = liveStatus(c);
      if ((s === 'running' || s === 'paused') && Object.keys(resources).length > 0) L.rt().update(L.lifecycle().runtimeContext(p), c.id, resources);
      store.update(c.id, (x) => {
        if (memory !== undefined) x.hostConfig.memory = memory;
        if (nano !== undefined) x.hostConfig.nanoCpus = nano;
        if (a.pidsLimit !== undefined) x.hostConfig.pidsLimit = a.pidsLimit;
        if (a.restart !== undefined) x.hostConfig.restartPolicy = parseRestart(a.restart);
      });
      // the next start reads config.json: keep its resources in step
      const cfg = path.join(p.bundle(c.id), 'config.json');
      const spec = JSON.parse(fs.readFileSync(cfg, 'utf8')) as import('../../runtime/spec/generated/config').Spec;
      spec.linux = { ...(spec.linux ?? {}), resources: { ...(spec.linux?.resources ?? {}), ...resources } };
      (require('../containers') as typeof import('../containers')).writeJsonAtomic(cfg, spec);
      out(`${ref}\n`);
    }
  },
};

// ---- exec, attach ----------------------------------------------------------------

const exec: CommandModule<EngineGlobal, EngineGlobal & { container: string; command: string[]; interactive: boolean; tty: boolean; detach: boolean; env: string[]; workdir?: string; user?: string; privileged: boolean }> = {
  command: 'exec <container> [command..]',
  describe: 'run a command in a running container',
  builder: (y) =>
    y.positional('container', { type: 'string', demandOption: true })
      .positional('command', { type: 'string', array: true, default: [] as string[] })
      .option('interactive', { alias: 'i', type: 'boolean', default: false })
      .option('tty', { alias: 't', type: 'boolean', default: false })
      .option('detach', { alias: 'd', type: 'boolean', default: false })
      .option('env', { alias: 'e', type: 'string', array: true, default: [] as string[] })
      .option('workdir', { alias: 'w', type: 'string' })
      .option('user', { alias: 'u', type: 'string' })
      .option('privileged', { type: 'boolean', default: false }) as never,
  handler: async (a: Args<{ container: string; command: string[]; interactive: boolean; tty: boolean; detach: boolean; env: string[]; workdir?: string; user?: string; privileged: boolean }>) => {
    const p = paths(a);
    const c = running(p, a.container);
    if (liveStatus(c) === 'paused') throw new RuntimeError(`cannot exec in container ${c.name}: it is paused, unpause it first`, { code: 'EINVAL' });
    const args = [...a.command.map(String), ...a._.slice(1).map(String)];
    let user: string | undefined;
    if (a.user !== undefined) {
      const { resolveUser } = L.images().bundle;
      const rootfs = path.join(p.bundle(c.id), 'rootfs');
      const read = (f: string): string => {
        try {
          return fs.readFileSync(path.join(rootfs, f), 'utf8');
        } catch {
          return '';
        }
      };
      const u = resolveUser(a.user, read('etc/passwd'), read('etc/group'));
      user = `${u.uid}:${u.gid}`;
    }
    const code = await L.exec().exec(L.lifecycle().runtimeContext(p), {
      id: c.id,
      args,
      tty: a.tty,
      detach: a.detach,
      env: a.env.map(String),
      cwd: a.workdir,
      user,
      caps: a.privileged ? (require('../spec') as typeof import('../spec')).ALL_CAPS : [],
      additionalGids: [],
    });
    process.exitCode = code;
  },
};

const attachCmd: CommandModule<EngineGlobal, EngineGlobal & { container: string; noStdin: boolean }> = {
  command: 'attach <container>',
  describe: 'attach to a running container\'s stdio',
  builder: (y) => y.positional('container', { type: 'string', demandOption: true }).option('no-stdin', { type: 'boolean', default: false }) as never,
  handler: async (a: Args<{ container: string; noStdin: boolean }>) => {
    const p = paths(a);
    const c = running(p, a.container);
    process.exitCode = await attachAndWait(p, c, { stdin: !a.noStdin && c.config.openStdin, start: false });
  },
};

// ---- network, volume ---------------------------------------------------------------------

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
      builder: (z: Argv) => z.option('quiet', { alias: 'q', type: 'boolean', default: false }).option('format', { type: 'string', default: 'table' }) as never,
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
      builder: (z: Argv) => z.positional('names', { type: 'string', array: true, demandOption: true }) as never,
      handler: (a: Args<{ names: string[] }>) => {
        for (const n of a.names.map(String)) {
          L.network().removeNetwork(paths(a), n);
          out(`${n}\n`);
        }
      },
    } as never).command({
      command: 'inspect <names..>',
      describe: 'show networks as JSON',
      builder: (z: Argv) => z.positional('names', { type: 'string', array: true, demandOption: true }) as never,
      handler: (a: Args<{ names: string[] }>) => {
        const p = paths(a);
        const all = new ContainerStore(p).all();
        out(JSON.stringify(a.names.map(String).map((name) => {
          const n = L.network().findNetwork(p, name);
          return {
            Name: n.name, Id: n.id, Created: n.created, Driver: n.driver, Internal: n.internal,
            IPAM: { Driver: 'host-local', Config: [{ Subnet: n.subnet, Gateway: n.gateway }] },
            Options: { 'bridge.name': n.bridge },
            Containers: Object.fromEntries(all.filter((c) => c.network?.network === n.name).map((c) => [c.id, { Name: c.name, IPv4Address: `${c.network!.ipAddress}/${c.network!.prefixLen}`, MacAddress: c.network!.macAddress }])),
          };
        }), null, 4) + '\n');
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
        const name = a.name ?? (require('node:crypto').randomBytes(32).toString('hex') as string);
        out(`${L.volumes().createVolume(paths(a), name, parseLabels(a.label)).name}\n`);
      },
    } as never).command({
      command: 'ls',
      aliases: ['list'],
      describe: 'list volumes',
      builder: (z: Argv) => z.option('quiet', { alias: 'q', type: 'boolean', default: false }).option('format', { type: 'string', default: 'table' }) as never,
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
      builder: (z: Argv) => z.positional('names', { type: 'string', array: true, demandOption: true }) as never,
      handler: (a: Args<{ names: string[] }>) => {
        const p = paths(a);
        const all = new ContainerStore(p).all();
        for (const n of a.names.map(String)) {
          const users = all.filter((c) => c.hostConfig.mounts.some((m) => m.type === 'volume' && m.source === n)).map((c) => c.name);
          L.volumes().removeVolume(p, n, users);
          out(`${n}\n`);
        }
      },
    } as never).command({
      command: 'inspect <names..>',
      describe: 'show volumes as JSON',
      builder: (z: Argv) => z.positional('names', { type: 'string', array: true, demandOption: true }) as never,
      handler: (a: Args<{ names: string[] }>) => {
        const vols = a.names.map(String).map((n) => L.volumes().inspectVolume(paths(a), n));
        out(JSON.stringify(vols.map((v) => ({ CreatedAt: v.createdAt, Driver: v.driver, Labels: v.labels, Mountpoint: v.mountpoint, Name: v.name, Scope: 'local' })), null, 4) + '\n');
      },
    } as never).demandCommand(1) as never,
  handler: () => {},
};

// ---- system, version, info --------------------------------------------------------------

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
        const warn = (m: string): void => void process.stderr.write(`mycontainer: warning: ${m}\n`);
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
        const p = paths(a);
        const store = new ContainerStore(p);
        let removed = 0;
        for (const c of store.all()) {
          if (['exited', 'created', 'dead'].includes(liveStatus(c))) {
            L.lifecycle().removeContainer(p, c.id, { force: true });
            out(`deleted container ${c.id}\n`);
            removed++;
          }
        }
        const used = new Set(store.all().map((c) => c.hostConfig.networkMode));
        for (const n of L.network().listNetworks(p)) {
          if (n.name !== 'bridge' && !used.has(n.name)) {
            L.network().removeNetwork(p, n.name);
            out(`deleted network ${n.name}\n`);
          }
        }
        const I = L.images();
        const s = imageStore(a);
        const inUse = new Set(store.all().map((c) => c.config.imageId));
        if (a.all) {
          const drop = s.listImages().filter((r) => !inUse.has(I.image.readImage(s, r).id)).map((r) => r.name);
          await s.updateImages((images) => {
            for (const n of drop) images.splice(images.findIndex((r) => r.name === n), 1);
          });
          for (const n of drop) out(`untagged ${n}\n`);
        }
        const gc = await (require('../../images/gc') as typeof import('../../images/gc')).collectGarbage(s);
        out(`deleted ${removed} containers, ${gc.blobs.length} blobs, ${gc.snapshots.length} snapshots\n`);
      },
    } as never).demandCommand(1) as never,
  handler: () => {},
};

const version: CommandModule<EngineGlobal, EngineGlobal & { format: string }> = {
  command: 'version',
  describe: 'versions of the front end, the runtime and Node',
  builder: (y) => y.option('format', { type: 'string', default: 'text' }) as never,
  handler: (a: Args<{ format: string }>) => {
    const pkg = require('../../../package.json') as { version: string };
    const v = { Version: pkg.version, ApiVersion: '1.41', Runtime: 'mycontainer-runtime', OciRuntimeSpec: '1.2.1', NodeVersion: process.version, Os: process.platform, Arch: process.arch, Kernel: require('node:os').release() as string };
    if (a.format === 'json') out(JSON.stringify(v) + '\n');
    else out(Object.entries(v).map(([k, x]) => `${k}:`.padEnd(16) + `${x}\n`).join(''));
  },
};

const info: CommandModule<EngineGlobal, EngineGlobal & { format: string }> = {
  command: 'info',
  describe: 'the host as the engine sees it',
  builder: (y) => y.option('format', { type: 'string', default: 'text' }) as never,
  handler: (a: Args<{ format: string }>) => {
    const p = paths(a);
    const all = new ContainerStore(p).all();
    const st = all.map(liveStatus);
    const { readLayout } = require('../../runtime/cgroups/detect') as typeof import('../../runtime/cgroups/detect');
    const os = require('node:os') as typeof import('node:os');
    const v = {
      Containers: all.length,
      ContainersRunning: st.filter((s) => s === 'running').length,
      ContainersPaused: st.filter((s) => s === 'paused').length,
      ContainersStopped: st.filter((s) => s === 'exited' || s === 'created').length,
      Images: imageStore(a).listImages().length,
      StorageDriver: 'overlay',
      LoggingDriver: 'cri (k8s-file)',
      CgroupDriver: readLayout().driver,
      NetworkPlugins: ['bridge', 'host-local', 'portmap', 'loopback'],
      Root: p.root,
      RunRoot: p.runroot,
      KernelVersion: os.release(),
      NCPU: os.cpus().length,
      MemTotal: os.totalmem(),
    };
    if (a.format === 'json') out(JSON.stringify(v) + '\n');
    else out(Object.entries(v).map(([k, x]) => `${k}: ${Array.isArray(x) ? x.join(', ') : x}\n`).join(''));
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const engineCommands: CommandModule<any, any>[] = [
  run, create, start, stop, restart, kill, rm, ps, logs, inspect, wait, port, rename, top, stats, pause, unpause, update, exec, attachCmd, networkCmd, volumeCmd, systemCmd, version, info, ...fileCommands,
];

/** Commands whose trailing words are the container's command line. */
export const COMMANDS_WITH_ARGV = ['run', 'create', 'exec'];
