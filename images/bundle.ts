// Image → OCI bundle: a rootfs (overlay of the image's layer snapshots under
// a writable upper, or a copy) and a config.json made from the image config,
// following the image-spec's conversion rules (conversion.md):
//
//   Entrypoint + Cmd → process.args   (an --entrypoint override drops Cmd)
//   Env              → process.env    (overrides replace by name; PATH added if missing)
//   WorkingDir       → process.cwd
//   User             → process.user   (names looked up in the image's /etc/passwd and /etc/group)
//   Labels           → annotations
//   ExposedPorts     → annotation org.opencontainers.image.exposedPorts
//   StopSignal       → annotation org.opencontainers.image.stopSignal
//   Volumes          → annotation mycontainer.image.volumes (no mount is made)
//
// The base config is our own (namespaces pid/net/ipc/uts/mount, the standard
// /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys mounts, runc's default
// capabilities), so this module needs nothing from the runtime's spec code.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError, wrap } from '../runtime/sys/errors';
import type { Spec } from '../runtime/spec/generated/config';

type User = NonNullable<NonNullable<Spec['process']>['user']>;
import type { Image } from './image';
import { unpackStored } from './pull';
import { familiarName, parseReference } from './reference';
import { copyRootfs, mountRootfs, overlayAvailable, rootfsMount, Snapshots, unmountRootfs, type RootfsMount } from './snapshots';
import type { ContentStore } from './store';
import { resolveIn } from './unpack';

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** In a bundle dir: how its rootfs was made (a RootfsMount), for unbundle and export. */
export const ROOTFS_RECORD = 'mycontainer-rootfs.json';

export interface BundleOptions {
  /** Replaces the image's Entrypoint (and then its Cmd too, as docker does). */
  entrypoint?: string[] | undefined;
  /** Replaces the image's Cmd. */
  cmd?: string[] | undefined;
  /** `NAME=value` entries, added or replacing the image's. */
  env?: string[] | undefined;
  /** `user[:group]`, by name or number; overrides the image's User. */
  user?: string | undefined;
  workdir?: string | undefined;
  terminal?: boolean | undefined;
  hostname?: string | undefined;
  readonly?: boolean | undefined;
  /** How to make the rootfs: overlay, copy, or overlay falling back to copy (default). */
  rootfs?: 'overlay' | 'copy' | 'auto' | undefined;
}

export interface BundleResult {
  dir: string;
  spec: Spec;
  rootfs: RootfsMount;
}

const DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

/** The base config: like `runc spec`, with a writable root and no cgroup namespace. */
export function baseSpec(): Spec {
  return {
    ociVersion: '1.2.0',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ['sh'],
      env: [DEFAULT_PATH],
      cwd: '/',
      capabilities: { bounding: [...DEFAULT_CAPS], effective: [...DEFAULT_CAPS], permitted: [...DEFAULT_CAPS] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: false },
    hostname: 'mycontainer',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** Merges `NAME=value` lists; later ones replace earlier ones by name. */
export function mergeEnv(...lists: (readonly string[] | null | undefined)[]): string[] {
  const out = new Map<string, string>();
  for (const l of lists) {
    for (const e of l ?? []) {
      const i = e.indexOf('=');
      out.set(i < 0 ? e : e.slice(0, i), e);
    }
  }
  if (!out.has('PATH')) out.set('PATH', DEFAULT_PATH);
  return [...out.values()];
}

/** Entrypoint and Cmd with overrides, as `docker run` combines them. */
export function processArgs(entrypoint: readonly string[] | null | undefined, cmd: readonly string[] | null | undefined, opts: Pick<BundleOptions, 'entrypoint' | 'cmd'> = {}): string[] {
  const ep = opts.entrypoint ?? entrypoint ?? [];
  const c = opts.cmd ?? (opts.entrypoint !== undefined ? [] : cmd ?? []);
  const args = [...ep, ...c];
  if (args.length === 0) throw new RuntimeError('the image has no Entrypoint or Cmd, and none was given', { code: 'EINVAL' });
  return args;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

function readInRoot(rootfs: string, file: string): string {
  try {
    return fs.readFileSync(resolveIn(rootfs, file.split('/').filter(Boolean), { followLast: true }), 'utf8');
  } catch {
    return '';
  }
}

export function parsePasswd(text: string): PasswdEntry[] {
  return text.split('\n').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 7 || line.startsWith('#')) return [];
    return [{ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! }];
  });
}

export function parseGroup(text: string): GroupEntry[] {
  return text.split('\n').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 4 || line.startsWith('#')) return [];
    return [{ name: f[0]!, gid: Number(f[2]), members: f[3]!.split(',').filter(Boolean) }];
  });
}

const isNum = (s: string): boolean => /^\d+$/.test(s);

/**
 * Resolves `user[:group]` against passwd/group text, as runc's libcontainer
 * user package does: names must exist, numbers need not; without a group the
 * user's primary group; supplementary groups from the group file.
 */
export function resolveUser(spec: string, passwd: string, group: string): User & { home: string } {
  const [u = '', g] = spec.split(':', 2) as [string, string | undefined];
  const users = parsePasswd(passwd);
  const groups = parseGroup(group);
  let uid = 0;
  let gid = 0;
  let home = '/';
  let name: string | undefined;
  const byUser = users.find((x) => (isNum(u) ? x.uid === Number(u) : x.name === u));
  if (u === '') {
    // root
  } else if (byUser) {
    uid = byUser.uid;
    gid = byUser.gid;
    home = byUser.home;
    name = byUser.name;
  } else if (isNum(u)) {
    uid = Number(u);
  } else {
    throw new RuntimeError(`unable to find user ${u}: no matching entries in passwd file`, { code: 'ENOTFOUND' });
  }
  if (g !== undefined && g !== '') {
    const byGroup = groups.find((x) => (isNum(g) ? x.gid === Number(g) : x.name === g));
    if (byGroup) gid = byGroup.gid;
    else if (isNum(g)) gid = Number(g);
    else throw new RuntimeError(`unable to find group ${g}: no matching entries in group file`, { code: 'ENOTFOUND' });
  }
  const additionalGids = name !== undefined && (g === undefined || g === '') ? groups.filter((x) => x.members.includes(name!) && x.gid !== gid).map((x) => x.gid) : [];
  const user: User & { home: string } = { uid, gid, home };
  if (additionalGids.length > 0) user.additionalGids = additionalGids;
  return user;
}

/** The config.json for an image whose rootfs is at `rootfs`. */
export function imageSpec(image: Image, rootfs: string, opts: BundleOptions = {}): Spec {
  const spec = baseSpec();
  const c = image.config.config ?? {};
  const proc = spec.process!;
  proc.args = processArgs(c.Entrypoint, c.Cmd, opts);
  proc.cwd = opts.workdir ?? (c.WorkingDir || '/');
  if (!proc.cwd.startsWith('/')) proc.cwd = '/' + proc.cwd;
  proc.terminal = opts.terminal ?? false;
  const userSpec = opts.user ?? c.User ?? '';
  const user = resolveUser(userSpec, readInRoot(rootfs, '/etc/passwd'), readInRoot(rootfs, '/etc/group'));
  const { home, ...u } = user;
  proc.user = u;
  // HOME from the user's passwd entry, unless the image or the caller sets it.
  proc.env = mergeEnv([`HOME=${userSpec !== '' ? home : '/root'}`], c.Env, opts.env);
  if (opts.hostname) spec.hostname = opts.hostname;
  if (opts.readonly) spec.root = { path: 'rootfs', readonly: true };

  const ann: Record<string, string> = { ...(c.Labels ?? {}) };
  ann['org.opencontainers.image.os'] = image.config.os;
  ann['org.opencontainers.image.architecture'] = image.config.architecture;
  if (image.config.variant) ann['org.opencontainers.image.variant'] = image.config.variant;
  if (image.config.author) ann['org.opencontainers.image.author'] = image.config.author;
  if (image.config.created) ann['org.opencontainers.image.created'] = image.config.created;
  if (c.StopSignal) ann['org.opencontainers.image.stopSignal'] = c.StopSignal;
  if (c.ExposedPorts && Object.keys(c.ExposedPorts).length > 0) ann['org.opencontainers.image.exposedPorts'] = Object.keys(c.ExposedPorts).join(',');
  if (c.Volumes && Object.keys(c.Volumes).length > 0) ann['mycontainer.image.volumes'] = Object.keys(c.Volumes).join(',');
  try {
    const r = parseReference(image.record.name);
    ann['org.opencontainers.image.ref.name'] = familiarName(r);
  } catch {
    // a record name we can't parse: no ref annotation
  }
  ann['mycontainer.image.id'] = image.id;
  ann['mycontainer.image.digest'] = image.record.digest;
  spec.annotations = ann;
  return spec;
}

/** Makes sure every layer of the image has its snapshot (a pull without unpack, a load). */
export async function ensureSnapshots(store: ContentStore, image: Image): Promise<string[]> {
  const snaps = new Snapshots(store.root);
  const diffIds = image.config.rootfs.diff_ids;
  for (let i = 0; i < diffIds.length; i++) {
    const d = diffIds[i]!;
    if (!snaps.has(d)) await unpackStored(store, snaps, image.manifest.layers[i]!, d);
  }
  return diffIds.length > 0 ? diffIds.map((d) => snaps.dir(d)) : [snaps.emptyDir()];
}

/**
 * Writes a bundle for `image` in `bundleDir`: rootfs/ (mounted overlay, or
 * a copy), upper/ and work/ for the overlay, config.json, and a record of
 * how the rootfs was made (for removeImageBundle).
 */
export async function imageToBundle(store: ContentStore, image: Image, bundleDir: string, opts: BundleOptions = {}): Promise<BundleResult> {
  const dir = path.resolve(bundleDir);
  const rootfs = path.join(dir, 'rootfs');
  if (fs.existsSync(path.join(dir, 'config.json')) || (fs.existsSync(rootfs) && fs.readdirSync(rootfs).length > 0)) {
    throw new RuntimeError(`cannot create a bundle in ${dir}: it already has a config.json or a rootfs`, { code: 'EEXIST' });
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const lowers = await ensureSnapshots(store, image);
  const mode = opts.rootfs ?? 'auto';
  let m: RootfsMount = { type: 'copy', target: rootfs, lowers };
  if (mode !== 'copy' && overlayAvailable()) {
    m = rootfsMount(lowers, path.join(dir, 'upper'), path.join(dir, 'work'), rootfs);
    try {
      mountRootfs(m);
    } catch (e) {
      if (mode === 'overlay') throw e;
      fs.rmSync(path.join(dir, 'upper'), { recursive: true, force: true });
      fs.rmSync(path.join(dir, 'work'), { recursive: true, force: true });
      m = { type: 'copy', target: rootfs, lowers };
    }
  } else if (mode === 'overlay') {
    throw new RuntimeError('overlayfs is not available on this host', { code: 'ENODEV' });
  }
  try {
    if (m.type === 'copy') {
      fs.mkdirSync(rootfs, { recursive: true, mode: 0o755 });
      copyRootfs(lowers, rootfs);
    }
    fs.writeFileSync(path.join(dir, ROOTFS_RECORD), JSON.stringify(m, null, 2) + '\n');
    const spec = imageSpec(image, rootfs, opts);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec, null, 2) + '\n');
    return { dir, spec, rootfs: m };
  } catch (e) {
    if (m.type === 'overlay') unmountRootfs(rootfs);
    throw wrap(e, `cannot create a bundle for ${image.record.name} in ${dir}`);
  }
}

/** Unmounts a bundle's overlay rootfs (if any) and removes the bundle dir. */
export function removeImageBundle(bundleDir: string): void {
  const dir = path.resolve(bundleDir);
  let m: RootfsMount | undefined;
  try {
    m = JSON.parse(fs.readFileSync(path.join(dir, ROOTFS_RECORD), 'utf8')) as RootfsMount;
  } catch {
    m = undefined;
  }
  if (m?.type === 'overlay') unmountRootfs(m.target);
  fs.rmSync(dir, { recursive: true, force: true });
}
