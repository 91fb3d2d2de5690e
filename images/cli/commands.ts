// Image commands: pull, images, inspect, rmi, tag, history, push, save, load,
// import, export, bundle, unbundle.
// Each parses its flags and makes one library call; errors go up to
// cli/main.ts, which prints them.
//
// The image store lives under the front end's global --root (default
// /var/lib/mycontainer, or $MYCONTAINER_ROOT), as podman's --root.
//
// pull and bundle resolve names through registries.conf (images/registries.ts):
// --registries-conf FILE, else $REGISTRIES_CONFIG_PATH, else
// /etc/containers/registries.conf and its registries.conf.d drop-ins.

import * as path from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { RuntimeError } from '../../runtime/sys/errors';

// Loaded lazily, so `--help` and the runtime's commands don't pay for them.
const L = {
  store: () => require('../store') as typeof import('../store'),
  image: () => require('../image') as typeof import('../image'),
  pull: () => require('../pull') as typeof import('../pull'),
  resolve: () => require('../resolve') as typeof import('../resolve'),
  push: () => require('../push') as typeof import('../push'),
  bundle: () => require('../bundle') as typeof import('../bundle'),
  gc: () => require('../gc') as typeof import('../gc'),
  archive: () => require('../archive') as typeof import('../archive'),
  export: () => require('../export') as typeof import('../export'),
  auth: () => require('../auth') as typeof import('../auth'),
  manifest: () => require('../manifest') as typeof import('../manifest'),
  reference: () => require('../reference') as typeof import('../reference'),
  progress: () => require('./progress') as typeof import('./progress'),
};

interface ImageGlobal {
  root: string;
  insecureRegistry: string[];
  authfile?: string | undefined;
  debug: boolean;
}

type Args<T> = ArgumentsCamelCase<ImageGlobal & T>;

function common<T>(y: Argv<T>): Argv<T & ImageGlobal> {
  return y
    .option('insecure-registry', { type: 'string', array: true, default: [] as string[], describe: 'registry (host[:port]) reached over plain HTTP' })
    .option('authfile', { type: 'string', describe: 'registry credentials (default $REGISTRY_AUTH_FILE, then ~/.docker/config.json)' }) as never;
}

function store(a: ImageGlobal): import('../store').ContentStore {
  const { ContentStore } = L.store();
  return new ContentStore(path.resolve(a.root));
}

function registryOptions(a: ImageGlobal): import('../registry').RegistryOptions {
  return {
    insecure: a.insecureRegistry,
    credentials: L.auth().fileCredentials(a.authfile),
    userAgent: 'mycontainer/0.1',
  };
}

const out = (s: string): boolean => process.stdout.write(s);
const warn = (m: string): void => void process.stderr.write(`mycontainer: warning: ${m}\n`);

interface RegistriesArgs {
  registriesConf?: string | undefined;
}

function registriesOption<T>(y: Argv<T>): Argv<T & RegistriesArgs> {
  return y.option('registries-conf', {
    type: 'string',
    describe: 'registries.conf: mirrors, short names, aliases (default $REGISTRIES_CONFIG_PATH, else /etc/containers/registries.conf and registries.conf.d/*.conf)',
  }) as never;
}

/** The registries.conf to use; its warnings (unknown keys...) go to stderr. */
function registries(a: RegistriesArgs): import('../registries').RegistriesConf {
  const env = process.env['REGISTRIES_CONFIG_PATH'];
  const conf = L.resolve().loadRegistriesConf(a.registriesConf ?? (env !== undefined && env !== '' ? env : undefined));
  for (const w of conf.warnings) warn(w);
  return conf;
}

/** `docker.io/library/busybox:latest` → `busybox:latest`, as docker prints names. */
function short(name: string): string {
  try {
    return L.reference().familiarName(L.reference().parseReference(name));
  } catch {
    return name;
  }
}

type PullArgs = RegistriesArgs & { image: string; platform?: string; quiet: boolean };

const pull: CommandModule<ImageGlobal, ImageGlobal & PullArgs> = {
  command: 'pull <image>',
  describe: 'pull an image from a registry into the store (short names, aliases and mirrors from registries.conf)',
  builder: (y) =>
    registriesOption(common(y))
      .positional('image', { type: 'string', demandOption: true })
      .option('platform', { type: 'string', describe: 'os/arch[/variant] (default: this host)' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'print only the image ID' }) as never,
  handler: async (a: Args<PullArgs>) => {
    const onEvent = a.quiet ? undefined : L.progress().progressPrinter(process.stdout, process.stdout.isTTY === true);
    const { credentials, ...registry } = registryOptions(a);
    const img = await L.resolve().findOrPull(store(a), a.image, {
      registries: registries(a),
      policy: 'always',
      credentials,
      registry,
      platform: a.platform ? L.manifest().parsePlatform(a.platform) : undefined,
      onEvent,
      onWarning: warn,
    });
    if (a.quiet) out(`${img.id}\n`);
  },
};

interface ImageRow {
  repository: string;
  tag: string;
  id: string;
  digest: string;
  created: string;
  size: number;
  names: string[];
}

function rows(s: import('../store').ContentStore): ImageRow[] {
  const { readImage } = L.image();
  const { parseReference, familiarName } = L.reference();
  return s.listImages().map((rec) => {
    const img = readImage(s, rec);
    let repository = rec.name;
    let tag = '<none>';
    try {
      const r = parseReference(rec.name);
      repository = familiarName({ domain: r.domain, path: r.path });
      tag = r.tag ?? '<none>';
    } catch {
      // keep the raw name
    }
    const size = img.manifest.layers.reduce((n, l) => n + l.size, 0) + img.manifest.config.size;
    return { repository, tag, id: img.id, digest: rec.digest, created: img.config.created ?? '', size, names: [rec.name] };
  });
}

function ago(iso: string): string {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '';
  const s = Math.max(0, (Date.now() - t) / 1000);
  const units: [number, string][] = [[31536000, 'year'], [2592000, 'month'], [604800, 'week'], [86400, 'day'], [3600, 'hour'], [60, 'minute']];
  for (const [n, u] of units) if (s >= n) return `${Math.floor(s / n)} ${u}${Math.floor(s / n) === 1 ? '' : 's'} ago`;
  return 'less than a minute ago';
}

function table(header: string[], body: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  return [header, ...body].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]! + 3))).join('').trimEnd()).join('\n') + '\n';
}

const images: CommandModule<ImageGlobal, ImageGlobal & { format: string; quiet: boolean }> = {
  command: 'images',
  describe: 'list the images in the store',
  builder: (y) =>
    common(y)
      .option('format', { choices: ['table', 'json'], default: 'table' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'only IDs' }) as never,
  handler: (a: Args<{ format: string; quiet: boolean }>) => {
    const list = rows(store(a));
    if (a.format === 'json') {
      out(JSON.stringify(list.map((r) => ({ Repository: r.repository, Tag: r.tag, Id: r.id, Digest: r.digest, Created: r.created, Size: r.size, Names: r.names })), null, 2) + '\n');
    } else if (a.quiet) {
      out([...new Set(list.map((r) => r.id.slice(7, 19)))].map((x) => x + '\n').join(''));
    } else {
      const { humanSize } = L.progress();
      out(table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], list.map((r) => [r.repository, r.tag, r.id.slice(7, 19), ago(r.created), humanSize(r.size)])));
    }
  },
};

/** docker image inspect's documents; the front end's `inspect` falls back to these for names that are no container. */
export function imageInspectDocs(root: string, names: readonly string[]): Record<string, unknown>[] {
  const s = new (L.store().ContentStore)(path.resolve(root));
  const { findImage } = L.image();
  return names.map((name) => {
    const img = findImage(s, name);
    const tags = s.listImages().filter((r) => r.digest === img.record.digest).map((r) => r.name);
    const repoDigests = tags.map((t) => `${t.replace(/[:@][^/]*$/, '')}@${img.record.indexDigest ?? img.record.digest}`);
    return {
      Id: img.id,
      Digest: img.record.digest,
      RepoTags: tags,
      RepoDigests: [...new Set(repoDigests)],
      Created: img.config.created,
      Author: img.config.author,
      Architecture: img.config.architecture,
      Os: img.config.os,
      Variant: img.config.variant,
      Config: img.config.config ?? {},
      RootFS: img.config.rootfs,
      Size: img.manifest.layers.reduce((n, l) => n + l.size, 0),
      ManifestMediaType: img.record.mediaType,
      Layers: img.manifest.layers,
      History: img.config.history ?? [],
    };
  });
}

const inspect: CommandModule<ImageGlobal, ImageGlobal & { image: string[] }> = {
  command: 'inspect <image..>',
  describe: 'show images as JSON',
  builder: (y) => common(y).positional('image', { type: 'string', array: true, demandOption: true }) as never,
  handler: (a: Args<{ image: string[] }>) => {
    out(JSON.stringify(imageInspectDocs(a.root, a.image), null, 2) + '\n');
  },
};

const rmi: CommandModule<ImageGlobal, ImageGlobal & { image: string[]; force: boolean }> = {
  command: 'rmi <image..>',
  describe: 'remove images (names; an ID removes all its names with --force), then unreferenced blobs and layers',
  builder: (y) => common(y).positional('image', { type: 'string', array: true, demandOption: true }).option('force', { alias: 'f', type: 'boolean', default: false }) as never,
  handler: async (a: Args<{ image: string[]; force: boolean }>) => {
    const s = store(a);
    const { findImage, recordName } = L.image();
    for (const name of a.image) {
      const img = findImage(s, name);
      let exact: string | undefined;
      try {
        exact = recordName(name);
      } catch {
        exact = undefined;
      }
      await s.updateImages((list) => {
        const byName = list.findIndex((r) => r.name === exact);
        if (byName >= 0) {
          out(`Untagged: ${short(list[byName]!.name)}\n`);
          list.splice(byName, 1);
          return;
        }
        const same = list.filter((r) => r.digest === img.record.digest);
        if (same.length > 1 && !a.force) throw new RuntimeError(`image ${name} has ${same.length} names (${same.map((r) => r.name).join(', ')}); remove them by name or use --force`, { code: 'ECONFLICT' });
        for (const r of same) {
          out(`Untagged: ${short(r.name)}\n`);
          list.splice(list.indexOf(r), 1);
        }
      });
    }
    const removed = await L.gc().collectGarbage(s);
    for (const b of removed.blobs) out(`Deleted: ${b}\n`);
  },
};

const tag: CommandModule<ImageGlobal, ImageGlobal & { source: string; target: string }> = {
  command: 'tag <source> <target>',
  describe: 'give an image another name',
  builder: (y) => common(y).positional('source', { type: 'string', demandOption: true }).positional('target', { type: 'string', demandOption: true }) as never,
  handler: async (a: Args<{ source: string; target: string }>) => {
    const s = store(a);
    const img = L.image().findImage(s, a.source);
    const name = L.image().recordName(a.target);
    await s.setImage({ ...img.record, name, created: new Date().toISOString() });
  },
};

const history: CommandModule<ImageGlobal, ImageGlobal & { image: string; format: string }> = {
  command: 'history <image>',
  describe: 'show how an image was built, layer by layer',
  builder: (y) => common(y).positional('image', { type: 'string', demandOption: true }).option('format', { choices: ['table', 'json'], default: 'table' }) as never,
  handler: (a: Args<{ image: string; format: string }>) => {
    const img = L.image().findImage(store(a), a.image);
    const layers = [...img.manifest.layers];
    const hist: import('../manifest').HistoryEntry[] = img.config.history ?? layers.map(() => ({}));
    const entries = hist.map((h) => ({ ...h, size: h.empty_layer ? 0 : (layers.shift()?.size ?? 0) })).reverse();
    if (a.format === 'json') {
      out(JSON.stringify(entries, null, 2) + '\n');
      return;
    }
    const { humanSize } = L.progress();
    out(table(['CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], entries.map((e) => [ago(e.created ?? ''), (e.created_by ?? '').slice(0, 60), humanSize(e.size), e.comment ?? ''])));
  },
};

const pushCmd: CommandModule<ImageGlobal, ImageGlobal & { image: string; destination?: string }> = {
  command: 'push <image> [destination]',
  describe: 'push an image from the store to a registry',
  builder: (y) => common(y).positional('image', { type: 'string', demandOption: true }).positional('destination', { type: 'string' }) as never,
  handler: async (a: Args<{ image: string; destination?: string }>) => {
    const s = store(a);
    const img = L.image().findImage(s, a.image);
    const r = await L.push().push(s, img, a.destination ?? img.record.name, {
      registry: registryOptions(a),
      onBlob: (d, res) => out(`${d.slice(7, 19)}: ${res === 'exists' ? 'Layer already exists' : 'Pushed'}\n`),
    });
    out(`${r.name}: digest: ${r.digest}\n`);
  },
};

interface BundleArgs extends RegistriesArgs {
  image: string;
  dir: string;
  cmd: string[];
  entrypoint?: string;
  env: string[];
  user?: string;
  workdir?: string;
  rootfs: 'overlay' | 'copy' | 'auto';
  tty: boolean;
  hostname?: string;
  readOnly: boolean;
}

const bundle: CommandModule<ImageGlobal, ImageGlobal & BundleArgs> = {
  command: 'bundle <image> <dir> [cmd..]',
  describe: 'make an OCI bundle (rootfs + config.json) from an image',
  builder: (y) =>
    registriesOption(common(y))
      .positional('image', { type: 'string', demandOption: true })
      .positional('dir', { type: 'string', demandOption: true })
      .positional('cmd', { type: 'string', array: true, default: [] as string[] })
      .option('entrypoint', { type: 'string', describe: 'replace the image entrypoint (JSON array or a single program)' })
      .option('env', { alias: 'e', type: 'string', array: true, default: [] as string[] })
      .option('user', { alias: 'u', type: 'string' })
      .option('workdir', { alias: 'w', type: 'string' })
      .option('rootfs', { choices: ['overlay', 'copy', 'auto'] as const, default: 'auto' as const })
      .option('tty', { alias: 't', type: 'boolean', default: false })
      .option('hostname', { type: 'string' })
      .option('read-only', { type: 'boolean', default: false }) as never,
  handler: async (a: Args<BundleArgs>) => {
    const s = store(a);
    // `busybox` is also localhost/busybox and the search registries' busybox, as podman
    const img = L.resolve().findLocal(s, a.image, registries(a));
    // Words after `--` land in argv._ (after the command's own name).
    const cmd = a.cmd.length > 0 ? a.cmd.map(String) : a._.slice(1).map(String);
    let entrypoint: string[] | undefined;
    if (a.entrypoint !== undefined) entrypoint = a.entrypoint.startsWith('[') ? (JSON.parse(a.entrypoint) as string[]) : [a.entrypoint];
    const r = await L.bundle().imageToBundle(s, img, a.dir, {
      entrypoint,
      cmd: cmd.length > 0 ? cmd : undefined,
      env: a.env,
      user: a.user,
      workdir: a.workdir,
      rootfs: a.rootfs,
      terminal: a.tty,
      hostname: a.hostname,
      readonly: a.readOnly,
    });
    out(`${r.dir} (rootfs: ${r.rootfs.type})\n`);
  },
};

const unbundle: CommandModule<ImageGlobal, ImageGlobal & { dir: string }> = {
  command: 'unbundle <dir>',
  describe: 'unmount and remove a bundle made by `bundle`',
  builder: (y) => common(y).positional('dir', { type: 'string', demandOption: true }) as never,
  handler: (a: Args<{ dir: string }>) => {
    L.bundle().removeImageBundle(a.dir);
  },
};

const saveCmd: CommandModule<ImageGlobal, ImageGlobal & { image: string; output: string; format: string }> = {
  command: 'save <image>',
  describe: 'write an image to an OCI archive, OCI layout dir, or docker-archive',
  builder: (y) =>
    common(y)
      .positional('image', { type: 'string', demandOption: true })
      .option('output', { alias: 'o', type: 'string', demandOption: true })
      .option('format', { choices: ['oci-archive', 'oci-dir', 'docker-archive'], default: 'oci-archive' }) as never,
  handler: async (a: Args<{ image: string; output: string; format: string }>) => {
    const s = store(a);
    await L.archive().save(s, L.image().findImage(s, a.image), a.output, a.format as import('../archive').ArchiveFormat);
  },
};

const loadCmd: CommandModule<ImageGlobal, ImageGlobal & { input: string; name?: string }> = {
  command: 'load',
  describe: 'load images from an OCI archive, OCI layout dir, or docker-archive',
  builder: (y) => common(y).option('input', { alias: 'i', type: 'string', demandOption: true }).option('name', { type: 'string', describe: 'name the loaded image' }) as never,
  handler: async (a: Args<{ input: string; name?: string }>) => {
    for (const n of await L.archive().load(store(a), a.input, { name: a.name })) out(`Loaded image: ${short(n)}\n`);
  },
};

const importCmd: CommandModule<ImageGlobal, ImageGlobal & { tarball: string; name: string; cmd: string[] }> = {
  command: 'import <tarball> <name> [cmd..]',
  describe: 'make a one-layer image from a rootfs tarball',
  builder: (y) =>
    common(y).positional('tarball', { type: 'string', demandOption: true }).positional('name', { type: 'string', demandOption: true }).positional('cmd', { type: 'string', array: true, default: [] as string[] }) as never,
  handler: async (a: Args<{ tarball: string; name: string; cmd: string[] }>) => {
    const cmd = a.cmd.length > 0 ? a.cmd.map(String) : a._.slice(1).map(String);
    out(`${await L.archive().importRootfs(store(a), a.tarball, a.name, { cmd: cmd.length > 0 ? cmd : undefined })}\n`);
  },
};

const exportCmd: CommandModule<ImageGlobal, ImageGlobal & { target: string; output?: string }> = {
  command: 'export <target>',
  describe: "write an image's or a bundle's flattened root filesystem as a tar (to stdout without -o)",
  builder: (y) =>
    common(y)
      .positional('target', { type: 'string', demandOption: true, describe: 'an image, or a bundle dir made by `bundle`' })
      .option('output', { alias: 'o', type: 'string', describe: 'write to this file (atomically) instead of stdout' }) as never,
  handler: async (a: Args<{ target: string; output?: string }>) => {
    const ex = L.export();
    const onWarning = (m: string): void => void process.stderr.write(`mycontainer: warning: ${m}\n`);
    const produce = async (sink: import('../tarwriter').TarSink): Promise<void> => {
      if (ex.isBundleDir(a.target)) return ex.exportBundle(a.target, sink, { onWarning });
      const s = store(a);
      return ex.exportImage(s, L.image().findImage(s, a.target), sink, { onWarning });
    };
    if (a.output !== undefined) return ex.writeAtomically(a.output, produce);
    if (process.stdout.isTTY) throw new RuntimeError('refusing to write a tar archive to a terminal: use -o FILE or redirect stdout', { code: 'EINVAL' });
    await produce(ex.streamSink(process.stdout));
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const imageCommands: CommandModule<any, any>[] = [pull, images, inspect, rmi, tag, history, pushCmd, saveCmd, loadCmd, importCmd, exportCmd, bundle, unbundle];
