// docker exec and attach, and the attached client that run and start -a
// share: stdio over the monitor's attach socket, our signals passed on.

import type { CommandModule } from 'yargs';
import { RuntimeError } from '../../runtime/sys/errors';
import { ContainerStore, type Container, type Paths } from '../containers';
import { paths, type Args, type EngineGlobal } from './common';

const L = {
  lifecycle: () => require('../lifecycle') as typeof import('../lifecycle'),
  manage: () => require('../manage') as typeof import('../manage'),
  exec: () => require('../exec') as typeof import('../exec'),
  attach: () => require('../attach') as typeof import('../attach'),
  rt: () => require('../../runtime/container') as typeof import('../../runtime/container'),
};

/** Attaches (run, start -a, attach) and returns the container's exit code. */
/** Attaches our stdio to the container; `begin` (a start waiting for us) runs once the monitor has our HELLO. */
export async function attachAndWait(p: Paths, c: Container, opts: { stdin: boolean; begin?: (() => Promise<void>) | undefined; awaitExit?: (() => Promise<number | null>) | undefined }): Promise<number> {
  // A foreground run handles the exit itself: its code, once the cleanup is done.
  let handled: Promise<number | null> = Promise.resolve(null);
  const begin = opts.begin;
  const awaitExit = opts.awaitExit;
  const start = begin && awaitExit ? async (): Promise<void> => {
    await begin();
    handled = awaitExit();
  } : begin;
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
    r = await L.attach().attach({ socket: p.attachSocket(c.id), stdin: opts.stdin, begin: start, tty: c.config.tty });
  } finally {
    for (const s of sigs) process.off(s, forward);
  }
  if (r?.error) throw new RuntimeError(r.error, { code: 'ESTART' });
  if (r) return r.exitCode;
  const code = await handled;
  if (code !== null) return code;
  // The socket closed without an exit frame: read what the record says.
  const fresh = new ContainerStore(p).resolve(c.id);
  return fresh.state.exitCode;
}

interface ExecFlags {
  container: string;
  command: string[];
  interactive: boolean;
  tty: boolean;
  detach: boolean;
  env: string[];
  workdir?: string;
  user?: string;
  privileged: boolean;
}

const exec: CommandModule<EngineGlobal, EngineGlobal & ExecFlags> = {
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
  handler: async (a: Args<ExecFlags>) => {
    process.exitCode = await L.exec().execInContainer(paths(a), a.container, {
      args: [...a.command.map(String), ...a._.slice(1).map(String)],
      tty: a.tty,
      detach: a.detach,
      env: a.env.map(String),
      workdir: a.workdir,
      user: a.user,
      privileged: a.privileged,
    });
  },
};

const attachCmd: CommandModule<EngineGlobal, EngineGlobal & { container: string; noStdin: boolean }> = {
  command: 'attach <container>',
  describe: 'attach to a running container\'s stdio',
  builder: (y) => y.positional('container', { type: 'string', demandOption: true }).option('no-stdin', { type: 'boolean', default: false }) as never,
  handler: async (a: Args<{ container: string; noStdin: boolean }>) => {
    const p = paths(a);
    const c = L.manage().runningContainer(p, a.container);
    process.exitCode = await attachAndWait(p, c, { stdin: !a.noStdin && c.config.openStdin });
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const execCommands: CommandModule<any, any>[] = [exec, attachCmd];
