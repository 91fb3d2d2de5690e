// CNI plugin chains, run as libcni runs them, for callers that take their
// network configuration from a conf dir (the CRI server: the first
// *.conflist/*.conf in /etc/cni/net.d, as kubelet clusters set it up).
// Asynchronous throughout: a long-lived server keeps answering while a
// plugin runs. Each plugin of a list runs with CNI_COMMAND=ADD in order,
// handed the previous result; DEL runs in reverse with the ADD's result.
//
// Network namespaces are files bound by `unshare --net=FILE`: they exist
// before any process joins them, so CNI configures them first.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile, spawnSync } from 'node:child_process';
import { RuntimeError, messageOf } from '../runtime/sys/errors';
import { umount2 } from '../runtime/sys/libc';

export const DEFAULT_CNI_BIN_DIRS = ['/usr/lib/cni', '/opt/cni/bin'];
export const DEFAULT_CNI_CONF_DIR = '/etc/cni/net.d';

export interface NetworkConfigList {
  cniVersion: string;
  name: string;
  plugins: Record<string, unknown>[];
  /** The file it came from (none for a list made in code). */
  file?: string;
}

/** Runtime config the plugins may ask for through `capabilities` (CNI CONVENTIONS.md). */
export interface CapabilityArgs {
  portMappings?: { hostPort: number; containerPort: number; protocol: string; hostIP: string }[];
  dns?: { servers: string[]; searches: string[]; options: string[] };
}

export interface Attachment {
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS pairs (K8S_POD_NAME=...). */
  args: [string, string][];
  capabilityArgs: CapabilityArgs;
}

function parseConf(file: string): NetworkConfigList {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new RuntimeError(`cannot load CNI config ${file}: ${messageOf(e)}`, { code: 'EINVAL' });
  }
  if (file.endsWith('.conflist')) {
    if (!Array.isArray(v['plugins']) || v['plugins'].length === 0) throw new RuntimeError(`cannot load CNI config ${file}: no "plugins"`, { code: 'EINVAL' });
    return { cniVersion: String(v['cniVersion'] ?? '0.4.0'), name: String(v['name'] ?? ''), plugins: v['plugins'] as Record<string, unknown>[], file };
  }
  // a single plugin's .conf is a list of one
  if (typeof v['type'] !== 'string') throw new RuntimeError(`cannot load CNI config ${file}: no "type"`, { code: 'EINVAL' });
  return { cniVersion: String(v['cniVersion'] ?? '0.4.0'), name: String(v['name'] ?? ''), plugins: [v], file };
}

/** The first network config of the dir in lexical order, as libcni's ConfFiles (null if none). */
export function loadDefaultNetwork(confDir: string): NetworkConfigList | null {
  let files: string[];
  try {
    files = fs.readdirSync(confDir).filter((f) => /\.(conflist|conf|json)$/.test(f)).sort();
  } catch {
    return null;
  }
  for (const f of files) {
    try {
      return parseConf(path.join(confDir, f));
    } catch {
      // libcni skips files it cannot load
    }
  }
  return null;
}

export function findPlugin(type: string, binDirs: readonly string[]): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(type)) throw new RuntimeError(`CNI plugin type "${type}" is not a plain name`, { code: 'EINVAL' });
  for (const d of binDirs) {
    const p = path.join(d, type);
    if (fs.existsSync(p)) return p;
  }
  throw new RuntimeError(`CNI plugin "${type}" not found in ${binDirs.join(':')} (Debian package containernetworking-plugins)`, { code: 'ENOENT' });
}

type Command = 'ADD' | 'DEL' | 'CHECK';

function pluginEnv(command: Command, a: Attachment, binDirs: readonly string[]): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: command,
    CNI_CONTAINERID: a.containerId,
    CNI_NETNS: a.netns,
    CNI_IFNAME: a.ifname,
    CNI_ARGS: a.args.map(([k, v]) => `${k}=${v}`).join(';'),
    CNI_PATH: binDirs.join(':'),
  };
}

/** A plugin's exit turned into its result (ADD) or null, or the error its JSON on stdout gives. */
function pluginOutcome(type: string, command: Command, failure: string | null, stdout: string, stderr: string): Record<string, unknown> | null {
  if (failure !== null) {
    let msg = '';
    try {
      const e = JSON.parse(stdout) as { msg?: string; details?: string };
      msg = `${e.msg ?? 'failed'}${e.details ? ` (${e.details})` : ''}`;
    } catch {
      msg = (stdout || stderr || failure).trim();
    }
    throw new RuntimeError(`CNI ${type} ${command}: ${msg}`, { code: 'ECNI' });
  }
  if (command !== 'ADD' || !stdout.trim()) return null;
  try {
    return JSON.parse(stdout) as Record<string, unknown>;
  } catch (e) {
    throw new RuntimeError(`CNI ${type} ADD: bad result: ${messageOf(e)}`, { code: 'ECNI' });
  }
}

function runPlugin(command: Command, conf: Record<string, unknown>, a: Attachment, binDirs: readonly string[]): Promise<Record<string, unknown> | null> {
  const type = String(conf['type']);
  const file = findPlugin(type, binDirs);
  return new Promise((resolve, reject) => {
    const child = execFile(file, [], { env: pluginEnv(command, a, binDirs), encoding: 'utf8', timeout: 60000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      try {
        resolve(pluginOutcome(type, command, err ? err.message : null, stdout, stderr));
      } catch (e) {
        reject(e);
      }
    });
    child.stdin?.end(JSON.stringify(conf));
  });
}

/** runPlugin for callers that cannot wait asynchronously (the front end's teardown on rm). */
function runPluginSync(command: Command, conf: Record<string, unknown>, a: Attachment, binDirs: readonly string[]): Record<string, unknown> | null {
  const type = String(conf['type']);
  const r = spawnSync(findPlugin(type, binDirs), [], { input: JSON.stringify(conf), env: pluginEnv(command, a, binDirs), encoding: 'utf8', timeout: 30000 });
  const failure = r.status === 0 ? null : r.error?.message ?? `exit ${r.status}`;
  return pluginOutcome(type, command, failure, r.stdout ?? '', r.stderr ?? '');
}

export function pluginConf(list: NetworkConfigList, plugin: Record<string, unknown>, prev: Record<string, unknown> | null, caps: CapabilityArgs): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  const wanted = (plugin['capabilities'] ?? {}) as Record<string, boolean>;
  delete conf['capabilities'];
  if (prev) conf['prevResult'] = prev;
  const runtimeConfig: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(caps)) if (wanted[k] && v !== undefined) runtimeConfig[k] = v;
  if (Object.keys(runtimeConfig).length > 0) conf['runtimeConfig'] = runtimeConfig;
  return conf;
}

/** ADD through the whole list; on a failure the plugins done are DELeted in reverse. Returns the last result. */
export async function addNetwork(list: NetworkConfigList, a: Attachment, binDirs: readonly string[]): Promise<Record<string, unknown> | null> {
  let prev: Record<string, unknown> | null = null;
  const done: Record<string, unknown>[] = [];
  try {
    for (const plugin of list.plugins) {
      prev = (await runPlugin('ADD', pluginConf(list, plugin, prev, a.capabilityArgs), a, binDirs)) ?? prev;
      done.push(plugin);
    }
  } catch (e) {
    for (const plugin of done.reverse()) {
      await runPlugin('DEL', pluginConf(list, plugin, prev, a.capabilityArgs), a, binDirs).catch(() => null);
    }
    throw e;
  }
  return prev;
}

/** DEL through the list in reverse; every plugin runs, and the errors are joined. */
export async function delNetwork(list: NetworkConfigList, a: Attachment, prev: Record<string, unknown> | null, binDirs: readonly string[]): Promise<void> {
  const errors: string[] = [];
  for (const plugin of [...list.plugins].reverse()) {
    try {
      await runPlugin('DEL', pluginConf(list, plugin, prev, a.capabilityArgs), a, binDirs);
    } catch (e) {
      errors.push(messageOf(e));
    }
  }
  if (errors.length > 0) throw new RuntimeError(errors.join('; '), { code: 'ECNI' });
}

/** delNetwork, synchronously. */
export function delNetworkSync(list: NetworkConfigList, a: Attachment, prev: Record<string, unknown> | null, binDirs: readonly string[]): void {
  const errors: string[] = [];
  for (const plugin of [...list.plugins].reverse()) {
    try {
      runPluginSync('DEL', pluginConf(list, plugin, prev, a.capabilityArgs), a, binDirs);
    } catch (e) {
      errors.push(messageOf(e));
    }
  }
  if (errors.length > 0) throw new RuntimeError(errors.join('; '), { code: 'ECNI' });
}

/** lo up in a fresh namespace (the loopback plugin), for pods with no network config of their own. */
export async function loopbackUp(containerId: string, netns: string, binDirs: readonly string[]): Promise<void> {
  await runPlugin('ADD', { cniVersion: '1.0.0', name: 'lo', type: 'loopback' }, { containerId, netns, ifname: 'lo', args: [], capabilityArgs: {} }, binDirs);
}

/** A new network namespace bound at `file`. */
export function makeNetns(file: string): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o711 });
  fs.writeFileSync(file, '');
  return new Promise((resolve, reject) => {
    execFile('unshare', [`--net=${file}`, 'true'], { encoding: 'utf8' }, (err, _out, stderr) => {
      if (!err) return resolve();
      fs.rmSync(file, { force: true });
      reject(new RuntimeError(`cannot create the network namespace ${file}: ${(stderr || err.message).trim()}`, { code: 'ENETNS' }));
    });
  });
}

export function removeNetns(file: string): void {
  try {
    umount2(file, 2 /* MNT_DETACH */, 'release a network namespace');
  } catch {
    // not mounted
  }
  fs.rmSync(file, { force: true });
}

/** The pod IPs of an ADD result: IPv4 first, as kubelet orders them. */
export function resultIps(result: Record<string, unknown> | null): string[] {
  const ips = ((result?.['ips'] ?? []) as { address?: string }[]).map((i) => (i.address ?? '').split('/')[0] ?? '').filter(Boolean);
  return [...ips.filter((i) => !i.includes(':')), ...ips.filter((i) => i.includes(':'))];
}
