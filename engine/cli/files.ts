// Docker's file commands over the engine: cp, diff, commit, and `export`
// of a container (an image or a bundle dir falls through to the image
// command of that name). Each parses its flags and makes one library call
// (engine/files.ts); cli/main.ts prints errors.

import type { CommandModule } from 'yargs';
import { RuntimeError, wrap } from '../../runtime/sys/errors';
import { ContainerStore } from '../containers';
import { imageStore, out, paths, warn, type Args, type EngineGlobal } from './common';

const L = {
  files: () => require('../files') as typeof import('../files'),
  export: () => require('../../images/export') as typeof import('../../images/export'),
  imageCli: () => require('../../images/cli/commands') as typeof import('../../images/cli/commands'),
};

/**
 * docker's split of a cp argument: an absolute path (or one whose part
 * before the first ':' has a '/', like ./a:b) is local; otherwise
 * `CONTAINER:PATH`. `-` is the tar stream.
 */
export function splitCopyArg(arg: string): { container?: string; path: string } {
  if (arg === '') throw new RuntimeError('cannot copy: an empty path', { code: 'EINVAL' });
  if (arg === '-' || arg.startsWith('/')) return { path: arg };
  const i = arg.indexOf(':');
  if (i < 0 || arg.slice(0, i).includes('/')) return { path: arg };
  return { container: arg.slice(0, i), path: arg.slice(i + 1) || '/' };
}

const refuseTty = (what: string): void => {
  if (process.stdout.isTTY) throw new RuntimeError(`refusing to write ${what} to a terminal: redirect stdout`, { code: 'EINVAL' });
};

interface CpFlags {
  src: string;
  dest: string;
  archive: boolean;
  followLink: boolean;
  quiet: boolean;
}

const cp: CommandModule<EngineGlobal, EngineGlobal & CpFlags> = {
  command: 'cp <src> <dest>',
  describe: 'copy files between a container and the host (CONTAINER:PATH on one side; - for a tar on stdin/stdout)',
  builder: (y) =>
    y.positional('src', { type: 'string', demandOption: true })
      .positional('dest', { type: 'string', demandOption: true })
      .option('archive', { alias: 'a', type: 'boolean', default: false, describe: 'keep uid/gid' })
      .option('follow-link', { alias: 'L', type: 'boolean', default: false, describe: 'follow a symlink given as SRC' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false }) as never,
  handler: async (a: Args<CpFlags>) => {
    // yargs hands a lone "-" to a string positional as '': it was the stream
    const raw = (v: unknown): string => (v === '' && process.argv.includes('-') ? '-' : String(v));
    const src = splitCopyArg(raw(a.src));
    const dest = splitCopyArg(raw(a.dest));
    if ((src.container === undefined) === (dest.container === undefined)) {
      throw new RuntimeError(`cannot copy ${a.src} to ${a.dest}: exactly one of them must be CONTAINER:PATH`, { code: 'EINVAL' });
    }
    const F = L.files();
    const opts = { archive: a.archive, followLink: a.followLink, warn };
    if (src.container !== undefined) {
      if (dest.path === '-') {
        refuseTty('a tar archive');
        await F.copyFromContainer(paths(a), src.container, src.path, '-', { ...opts, stdout: L.export().streamSink(process.stdout) });
        return;
      }
      await F.copyFromContainer(paths(a), src.container, src.path, dest.path, opts);
    } else {
      await F.copyToContainer(paths(a), dest.container!, src.path, dest.path, { ...opts, stdin: process.stdin });
    }
    if (!a.quiet && dest.path !== '-' && process.stderr.isTTY) process.stderr.write(`Successfully copied to ${a.dest}\n`);
  },
};

const diff: CommandModule<EngineGlobal, EngineGlobal & { container: string }> = {
  command: 'diff <container>',
  describe: "changes to a container's filesystem against its image (A added, C changed, D deleted)",
  builder: (y) => y.positional('container', { type: 'string', demandOption: true }) as never,
  handler: (a: Args<{ container: string }>) => {
    out(L.files().containerDiff(paths(a), String(a.container)).map((c) => `${c.kind} ${c.path}\n`).join(''));
  },
};

interface CommitFlags {
  container: string;
  repository?: string;
  message?: string;
  author?: string;
  change: string[];
  gzip: boolean;
  pause: boolean;
}

const commit: CommandModule<EngineGlobal, EngineGlobal & CommitFlags> = {
  command: 'commit <container> [repository]',
  describe: "a new image from a container's changes",
  builder: (y) =>
    y.positional('container', { type: 'string', demandOption: true })
      .positional('repository', { type: 'string', describe: 'REPO[:TAG] (a bare name is localhost/NAME)' })
      .option('message', { alias: 'm', type: 'string', describe: 'the commit message (history comment)' })
      .option('author', { alias: 'a', type: 'string' })
      .option('change', { alias: 'c', type: 'string', array: true, default: [] as string[], describe: "Dockerfile instructions: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL" })
      .option('gzip', { type: 'boolean', default: false, describe: 'compress the new layer' })
      .option('pause', { alias: 'p', type: 'boolean', default: true, describe: 'freeze a running container while its files are read (--pause=false: don\'t)' }) as never,
  handler: async (a: Args<CommitFlags>) => {
    const r = await L.files().commitContainer(paths(a), imageStore(a), String(a.container), {
      name: a.repository,
      comment: a.message,
      author: a.author,
      changes: a.change.map(String),
      gzip: a.gzip,
      pause: a.pause, // as docker: a running container is frozen, so the layer is one moment of it
    });
    out(`${r.id}\n`);
  },
};

interface ExportFlags {
  target: string;
  output?: string;
}

/** The image command `export`, which ours falls through to for what is not a container. */
function imageExport(): CommandModule<EngineGlobal, EngineGlobal & ExportFlags> {
  const m = L.imageCli().imageCommands.find((x) => String(x.command).startsWith('export'));
  if (!m) throw new RuntimeError('the image export command is missing', { code: 'EINTERNAL' });
  return m as CommandModule<EngineGlobal, EngineGlobal & ExportFlags>;
}

const exportCmd: CommandModule<EngineGlobal, EngineGlobal & ExportFlags> = {
  command: 'export <target>',
  describe: "write a container's (or an image's, or a bundle dir's) filesystem as a tar (to stdout without -o)",
  builder: (y) =>
    y.positional('target', { type: 'string', demandOption: true, describe: 'a container, an image, or a bundle dir made by `bundle`' })
      .option('output', { alias: 'o', type: 'string', describe: 'write to this file (atomically) instead of stdout' }) as never,
  handler: async (a: Args<ExportFlags>) => {
    const p = paths(a);
    let id: string | undefined;
    try {
      id = new ContainerStore(p).resolve(String(a.target)).id;
    } catch (e) {
      if ((e as RuntimeError).code !== 'ENOENT') throw e;
    }
    if (id === undefined) {
      await imageExport().handler(a);
      return;
    }
    const ex = L.export();
    const name = String(a.target);
    const produce = async (sink: import('../../images/tarwriter').TarSink): Promise<void> => {
      try {
        await ex.exportBundle(p.bundle(id!), sink, { onWarning: warn });
      } catch (e) {
        throw wrap(e, `cannot export container ${name}`);
      }
    };
    if (a.output !== undefined) return ex.writeAtomically(a.output, produce);
    refuseTty('a tar archive');
    await produce(ex.streamSink(process.stdout));
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const fileCommands: CommandModule<any, any>[] = [cp, diff, commit, exportCmd];
