// The engine's operations on containers: create (image → bundle → record),
// start (a monitor per container), stop, kill, remove. The CLI and the
// monitor share them. Each leaves nothing behind when it fails: a create
// that fails half-way removes what it made.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError, messageOf, wrap } from '../runtime/sys/errors';
import { parseSignal } from '../runtime/sys/constants';
import type { RuntimeContext } from '../runtime/container';
import {
  ContainerStore, Paths, initialState, liveStatus, monitorAlive, withFileLock, writeJsonAtomic,
  type Container, type ContainerConfig, type HostConfig,
} from './containers';
import { generateName, newId, validName } from './names';
import { mark } from './timing';
import { TINI, engineSpec, hostsFile, resolvConf } from './spec';
import { hostBoundingCaps, hostNofileHard, readOr } from './host';
import type { ContentStore } from '../images/store';
import type { Image } from '../images/image';
import type { Spec } from '../runtime/spec/generated/config';

const rt = (): typeof import('../runtime/container') => require('../runtime/container') as typeof import('../runtime/container');
const net = (): typeof import('./network') => require('./network') as typeof import('./network');
const volumes = (): typeof import('./volumes') => require('./volumes') as typeof import('./volumes');

const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleepSync = (ms: number): void => void Atomics.wait(sleeper, 0, 0, ms);

export function runtimeContext(paths: Paths, warn: (msg: string) => void = (m) => process.stderr.write(`mycontainer: warning: ${m}\n`)): RuntimeContext {
  return { root: paths.runtimeRoot, debug: false, warn };
}

export interface CreateRequest {
  name?: string | undefined;
  config: Omit<ContainerConfig, 'image' | 'imageId' | 'args' | 'env' | 'workingDir' | 'user' | 'hostname' | 'stopSignal' | 'exposedPorts'> & {
    env: string[];
    workingDir?: string | undefined;
    user?: string | undefined;
    hostname?: string | undefined;
    stopSignal?: string | undefined;
  };
  hostConfig: HostConfig;
}

/** Files of the container dir bind-mounted into /etc. */
function hostFiles(paths: Paths, id: string): { hosts: string; hostname: string; resolvConf: string } {
  const d = paths.dir(id);
  return { hosts: path.join(d, 'hosts'), hostname: path.join(d, 'hostname'), resolvConf: path.join(d, 'resolv.conf') };
}

/** The cgroup of an engine container: <parent>/<id>, /mycontainer/<id> by default (docker: /docker/<id>). */
export function cgroupsPathFor(parent: string, id: string): string {
  return `${parent.replace(/\/+$/, '') || ''}/${id}`;
}

export async function createContainer(paths: Paths, images: ContentStore, image: Image, req: CreateRequest): Promise<Container> {
  const store = new ContainerStore(paths);
  const id = newId();
  if (req.name !== undefined && !validName(req.name)) {
    throw new RuntimeError(`cannot create container: invalid name "${req.name}": use [a-zA-Z0-9][a-zA-Z0-9_.-]*`, { code: 'EINVAL' });
  }
  const ic = image.config.config ?? {};
  const c: Container = {
    id,
    name: '',
    created: new Date().toISOString(),
    config: {
      ...req.config,
      image: image.record.name,
      imageId: image.id,
      args: [],
      workingDir: req.config.workingDir ?? (ic.WorkingDir || '/'),
      user: req.config.user ?? ic.User ?? '',
      // docker: the short id, or with --network host the host's own name
      hostname: req.config.hostname ?? (req.hostConfig.networkMode === 'host' ? (require('node:os') as typeof import('node:os')).hostname() : id.slice(0, 12)),
      stopSignal: req.config.stopSignal ?? ic.StopSignal ?? 'SIGTERM',
      exposedPorts: Object.keys(ic.ExposedPorts ?? {}),
      labels: { ...(ic.Labels ?? {}), ...req.config.labels },
    },
    hostConfig: req.hostConfig,
    state: initialState(),
    network: null,
  };
  if (c.hostConfig.init && !fs.existsSync(TINI)) throw new RuntimeError(`cannot create container: --init needs ${TINI} (Debian package tini)`, { code: 'ENOENT' });
  if (parseSignal(c.config.stopSignal) === undefined) throw new RuntimeError(`cannot create container: unknown stop signal "${c.config.stopSignal}"`, { code: 'EINVAL' });
  // The name and the directory, together under the engine lock: two creates never take one name.
  withFileLock(paths.globalLock, () => {
    const taken = new Set(store.all().map((x) => x.name));
    if (req.name !== undefined) {
      if (taken.has(req.name)) {
        const other = store.all().find((x) => x.name === req.name)!;
        throw new RuntimeError(`cannot create container: the name "/${req.name}" is already in use by container ${other.id.slice(0, 12)}: remove or rename it`, { code: 'EEXIST' });
      }
      c.name = req.name;
    } else {
      c.name = generateName((n) => taken.has(n));
    }
    fs.mkdirSync(paths.dir(id), { recursive: true, mode: 0o711 });
    store.write(c);
  });
  try {
    const { imageToBundle } = require('../images/bundle') as typeof import('../images/bundle');
    const b = await imageToBundle(images, image, paths.bundle(id), {
      entrypoint: req.config.entrypoint ?? undefined,
      cmd: req.config.cmd ?? undefined,
      env: req.config.env,
      user: req.config.user,
      workdir: req.config.workingDir,
      terminal: c.config.tty,
      hostname: c.config.hostname,
      readonly: c.hostConfig.readonlyRootfs,
    });
    c.config.args = b.spec.process?.args ?? [];
    c.config.env = b.spec.process?.env ?? [];
    const volumeSources = volumes().prepareMounts(paths, c.hostConfig.mounts, b.dir);
    const files = hostFiles(paths, id);
    fs.writeFileSync(files.hostname, `${c.config.hostname}\n`);
    fs.writeFileSync(files.hosts, hostsFile(c.config.hostname, null));
    fs.writeFileSync(files.resolvConf, resolvConf(readOr('/etc/resolv.conf', ''), c.hostConfig.networkMode === 'host'));
    const spec = engineSpec({
      container: c,
      spec: b.spec,
      files,
      volumeSources,
      netnsPath: null,
      nofileHard: hostNofileHard(),
      boundingCaps: hostBoundingCaps(),
      cgroupsPath: cgroupsPathFor(c.hostConfig.cgroupParent || '/mycontainer', id),
    });
    writeJsonAtomic(path.join(b.dir, 'config.json'), spec);
    store.write(c);
    return c;
  } catch (e) {
    try {
      removeContainer(paths, id, { force: true });
    } catch {
      // best effort: the original error matters
    }
    throw wrap(e, `cannot create container from ${image.record.name}`);
  }
}

function mounted(target: string): boolean {
  return readOr('/proc/self/mountinfo', '').split('\n').some((l) => l.split(' ')[4] === target);
}

/** Before each start (first, restart, `start` after a reboot): rootfs mounted, network up, config.json current. */
export async function prepareStart(paths: Paths, c: Container): Promise<void> {
  const bundle = paths.bundle(c.id);
  const { ROOTFS_RECORD } = require('../images/bundle') as typeof import('../images/bundle');
  const m = JSON.parse(fs.readFileSync(path.join(bundle, ROOTFS_RECORD), 'utf8')) as import('../images/snapshots').RootfsMount;
  if (m.type === 'overlay' && !mounted(m.target)) {
    (require('../images/snapshots') as typeof import('../images/snapshots')).mountRootfs(m);
  }
  const configFile = path.join(bundle, 'config.json');
  const spec = JSON.parse(fs.readFileSync(configFile, 'utf8')) as Spec;
  const nsPath = await net().prepareNetwork(paths, c);
  const ns = spec.linux?.namespaces ?? [];
  const entry = ns.find((n) => n.type === 'network');
  if (entry) {
    if (nsPath) entry.path = nsPath;
    else delete entry.path;
  }
  const fresh = new ContainerStore(paths).read(c.id);
  const files = hostFiles(paths, c.id);
  fs.writeFileSync(files.hosts, hostsFile(c.config.hostname, fresh.network?.ipAddress ?? null));
  writeJsonAtomic(configFile, spec);
}

/** After the last stop (no restart follows): network down, rootfs unmounted. */
export function afterStop(paths: Paths, c: Container): void {
  net().releaseNetwork(paths, c);
  mark('network released');
  const { unmountRootfs } = require('../images/snapshots') as typeof import('../images/snapshots');
  const target = path.join(paths.bundle(c.id), 'rootfs');
  if (mounted(target)) {
    const { ROOTFS_RECORD } = require('../images/bundle') as typeof import('../images/bundle');
    const m = JSON.parse(readOr(path.join(paths.bundle(c.id), ROOTFS_RECORD), '{}')) as { type?: string };
    if (m.type === 'overlay') unmountRootfs(target);
  }
}

/**
 * After a crash (the monitor killed, the host rebooted), a container whose
 * record says running has no one watching it: mark it exited and give back
 * its network (veth, IPAM lease, port rules). Every command that lists or
 * starts containers calls this first, so nothing stays held.
 */
export function reconcile(paths: Paths): void {
  const store = new ContainerStore(paths);
  for (const c of store.all()) {
    const s = c.state.status;
    if ((s === 'running' || s === 'paused' || s === 'restarting') && !monitorAlive(c.state)) {
      try {
        rt().remove(runtimeContext(paths), c.id, true);
      } catch {
        // nothing the runtime knows
      }
      try {
        afterStop(paths, c);
      } catch {
        // try again next time
      }
      store.update(c.id, (x) => {
        x.state.status = 'exited';
        x.state.pid = 0;
        x.state.exitCode = x.state.exitCode || 255;
        x.state.error = x.state.error || 'the monitor died';
        if (x.state.finishedAt.startsWith('0001')) x.state.finishedAt = new Date().toISOString();
        x.state.monitorPid = 0;
      });
    }
  }
}

/**
 * What docker does when its daemon starts: containers with --restart always
 * (or unless-stopped, when not stopped by hand) come back. Returns their names.
 */
export async function restoreContainers(paths: Paths, warn: (msg: string) => void): Promise<string[]> {
  reconcile(paths);
  const started: string[] = [];
  for (const c of new ContainerStore(paths).all()) {
    const p = c.hostConfig.restartPolicy.name;
    const wanted = p === 'always' || (p === 'unless-stopped' && !c.state.manuallyStopped);
    if (!wanted || liveStatus(c) !== 'exited') continue;
    try {
      await startContainer(paths, c.id, { attach: false });
      started.push(c.name);
    } catch (e) {
      warn(`cannot restore container ${c.name}: ${messageOf(e)}`);
    }
  }
  return started;
}

/**
 * Starts a container under its monitor (engine/launch.ts): returns once it
 * runs, or with `attach`, once it is created, with `begin` to start it after
 * the client's HELLO.
 */
export async function startContainer(paths: Paths, id: string, opts: import('./launch').LaunchOptions): Promise<import('./launch').Launched> {
  return (require('./launch') as typeof import('./launch')).launchContainer(paths, id, opts);
}

/** Whether the record says `done` (true too once the record is gone: --rm). */
function reached(store: ContainerStore, id: string, done: (c: Container) => boolean): boolean {
  let c: Container;
  try {
    c = store.read(id);
  } catch {
    return true;
  }
  return done(c);
}

/** Polls the record until `done` says so, or the time is up (false). */
function waitUntil(store: ContainerStore, id: string, timeoutMs: number, done: (c: Container) => boolean): boolean {
  const deadline = Date.now() + timeoutMs;
  while (!reached(store, id, done)) {
    if (Date.now() > deadline) return false;
    sleepSync(20);
  }
  return true;
}

/** The monitor is gone: the container stopped and will not restart. */
const waitMonitorGone = (store: ContainerStore, id: string, timeoutMs: number): boolean => waitUntil(store, id, timeoutMs, (c) => !monitorAlive(c.state));

function runtimeKill(paths: Paths, id: string, signal: string): void {
  try {
    rt().kill(runtimeContext(paths), id, signal, false);
  } catch (e) {
    const code = (e as RuntimeError).code;
    if (code !== 'ESRCH' && code !== 'ENOENT') throw e;
  }
}

/** waitUntil for a long-lived server: polls without blocking its event loop. */
async function waitUntilAsync(store: ContainerStore, id: string, timeoutMs: number, done: (c: Container) => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!reached(store, id, done)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/**
 * `stop` (and the CRI's StopContainer): the stop signal, KILL after
 * `timeoutSec` (default the container's stop timeout), then the monitor
 * gone; the restart policy no longer applies. `killAtOnce` with a timeout
 * of 0 skips the stop signal, as the CRI asks. It never blocks the event
 * loop, so a server may call it.
 */
export async function stopContainer(paths: Paths, ref: string, timeoutSec?: number, opts: { killAtOnce?: boolean } = {}): Promise<Container> {
  const store = new ContainerStore(paths);
  const c = store.update(store.resolve(ref).id, (x) => {
    x.state.manuallyStopped = true;
  });
  const running = (x: Container): boolean => ['running', 'paused'].includes(liveStatus(x));
  if (liveStatus(c) === 'paused') {
    try {
      rt().pause(runtimeContext(paths), c.id, false);
    } catch {
      // thawed meanwhile
    }
  }
  if (running(c)) {
    const t = timeoutSec ?? c.config.stopTimeout;
    let exited = false;
    if (!(opts.killAtOnce && t <= 0)) {
      runtimeKill(paths, c.id, c.config.stopSignal);
      exited = await waitUntilAsync(store, c.id, t * 1000, (x) => !running(x));
    }
    if (!exited) {
      runtimeKill(paths, c.id, 'KILL');
      await waitUntilAsync(store, c.id, 10000, (x) => !running(x));
    }
  }
  await waitUntilAsync(store, c.id, 15000, (x) => !monitorAlive(x.state));
  return c;
}

export function killContainer(paths: Paths, ref: string, signal: string): Container {
  const store = new ContainerStore(paths);
  const c = store.resolve(ref);
  if (parseSignal(signal) === undefined) throw new RuntimeError(`cannot kill container ${c.name}: unknown signal "${signal}"`, { code: 'EINVAL' });
  const s = liveStatus(c);
  if (s !== 'running' && s !== 'paused') throw new RuntimeError(`cannot kill container ${c.name}: it is not running`, { code: 'EINVAL' });
  // docker: a kill by the user counts as a manual stop for unless-stopped/always
  store.update(c.id, (x) => {
    x.state.manuallyStopped = true;
  });
  runtimeKill(paths, c.id, signal);
  return c;
}

/**
 * `rm`: a running container only with `force` (KILL first). Removes the
 * runtime's state, the network, the rootfs mount, the bundle and the record.
 */
export function removeContainer(paths: Paths, id: string, opts: { force?: boolean; fromMonitor?: boolean } = {}): void {
  const store = new ContainerStore(paths);
  let c: Container;
  try {
    c = store.read(id);
  } catch {
    // a create that failed before its record: only the directory
    fs.rmSync(paths.dir(id), { recursive: true, force: true });
    return;
  }
  if (!opts.fromMonitor && monitorAlive(c.state)) {
    const s = liveStatus(c);
    if (!opts.force) throw new RuntimeError(`cannot remove container ${c.name}: it is ${s}: stop it first or use -f`, { code: 'EBUSY' });
    store.update(id, (x) => {
      x.state.manuallyStopped = true;
      x.hostConfig.autoRemove = false; // we remove it, not the monitor
    });
    runtimeKill(paths, id, 'KILL');
    if (!waitMonitorGone(store, id, 15000)) {
      try {
        process.kill(c.state.monitorPid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    c = store.read(id);
  }
  const problems: string[] = [];
  const step = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      problems.push(`${what}: ${messageOf(e)}`);
    }
  };
  step('runtime delete', () => rt().remove(runtimeContext(paths), id, true));
  step('network', () => net().releaseNetwork(paths, c));
  step('rootfs', () => (require('../images/bundle') as typeof import('../images/bundle')).removeImageBundle(paths.bundle(id)));
  fs.rmSync(paths.attachSocket(id), { force: true });
  if (problems.length > 0) throw new RuntimeError(`cannot remove container ${c.name} completely: ${problems.join('; ')}`, { code: 'EBUSY' });
  fs.rmSync(paths.dir(id), { recursive: true, force: true });
}
