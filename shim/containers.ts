// CRI containers: CreateContainer, StartContainer, StopContainer,
// RemoveContainer, ContainerStatus, ListContainers, ExecSync.
//
// A CRI container is an engine container (engine/containers.ts) in the CRI's
// own store (<root>/cri): its bundle is made here from the image and the
// CRI config (shim/container-spec.ts), and it runs under the engine's
// monitor, which owns its stdio, writes the CRI log at kubelet's log_path,
// records its exit and outlives this server. What the CRI asked for
// (metadata, labels, the image as named, the sandbox) is kept beside the
// record in cri.json.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ContainerStore, initialState, liveStatus, writeJsonAtomic, type Container } from '../engine/containers';
import { removeContainer, startContainer, stopContainer } from '../engine/lifecycle';
import { hostBoundingCaps, hostNofileHard, minOomScoreAdj } from '../engine/host';
import { imageToBundle, removeImageBundle } from '../images/bundle';
import type { Image } from '../images/image';
import { messageOf } from '../runtime/sys/errors';
import type { ContainerConfig__Output } from './proto/generated/runtime/v1/ContainerConfig';
import type { Container as CriContainer } from './proto/generated/runtime/v1/Container';
import type { ContainerStatus } from './proto/generated/runtime/v1/ContainerStatus';
import type { ContainerFilter__Output } from './proto/generated/runtime/v1/ContainerFilter';
import { containerSpec } from './container-spec';
import { CriError, during, invalid, notFound, precondition } from './errors';
import { isoToNanos, liveState, nowNanos, type SandboxRecord } from './sandbox-store';
import { NS_TARGET, type SandboxContext } from './sandbox';

export const CONTAINER_CREATED = 0 as const;
export const CONTAINER_RUNNING = 1 as const;
export const CONTAINER_EXITED = 2 as const;
export const CONTAINER_UNKNOWN = 3 as const;

/** What the CRI asked for, kept beside the engine record. */
export interface CriInfo {
  sandboxId: string;
  metadata: { name: string; attempt: number };
  image: string;
  imageRef: string;
  imageId: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  logPath: string;
  mounts: ContainerConfig__Output['mounts'];
  createdAt: string;
  /** Close the process's stdin when the first attach that sent it ends (kubelet's stdin_once). */
  stdinOnce?: boolean;
}

export interface ContainerContext extends SandboxContext {
  containers: ContainerStore;
  findImage(name: string): Image;
}


const infoFile = (x: ContainerContext, id: string): string => path.join(x.paths.engine.dir(id), 'cri.json');

export function readInfo(x: ContainerContext, id: string): CriInfo | null {
  try {
    return JSON.parse(fs.readFileSync(infoFile(x, id), 'utf8')) as CriInfo;
  } catch {
    return null;
  }
}

/** A full id or a unique prefix; NOT_FOUND names the RPC and the id. */
export function resolveContainer(x: ContainerContext, op: string, ref: string): { c: Container; info: CriInfo } {
  if (!ref) throw invalid(`${op}: a container id is required`);
  // a whole id (what kubelet sends) is looked up directly; a prefix (crictl's short ids) lists them
  const whole = /^[0-9a-f]{64}$/.test(ref) && fs.existsSync(infoFile(x, ref));
  const ids = whole ? [ref] : x.containers.ids();
  const hits = ids.includes(ref) ? [ref] : /^[0-9a-f]+$/.test(ref) ? ids.filter((i) => i.startsWith(ref)) : [];
  const info = hits.length === 1 ? readInfo(x, hits[0]!) : null;
  if (!info) throw notFound(`${op}: container "${ref}" not found`);
  return { c: x.containers.read(hits[0]!), info };
}

export function criState(c: Container): 0 | 1 | 2 | 3 {
  const s = liveStatus(c);
  if (s === 'created') return CONTAINER_CREATED;
  if (s === 'running' || s === 'paused' || s === 'restarting') return CONTAINER_RUNNING;
  if (s === 'exited' || s === 'dead') return CONTAINER_EXITED;
  return CONTAINER_UNKNOWN;
}

/** The CRI user (run_as_user, run_as_username, run_as_group) as imageSpec's "user[:group]". */
function userOf(cfg: ContainerConfig__Output): string | undefined {
  const sc = cfg.linux?.security_context;
  if (!sc) return undefined;
  const user = sc.run_as_user ? String(sc.run_as_user.value) : sc.run_as_username || '';
  const group = sc.run_as_group ? String(sc.run_as_group.value) : '';
  if (!user && group) throw invalid('CreateContainer: run_as_group needs run_as_user or run_as_username');
  if (!user) return undefined;
  return group ? `${user}:${group}` : user;
}

function deviceInfo(hostPath: string): { path: string; type: 'c' | 'b'; major: number; minor: number; fileMode: number; uid: number; gid: number } {
  const st = fs.statSync(hostPath);
  if (!st.isCharacterDevice() && !st.isBlockDevice()) throw invalid(`CreateContainer: ${hostPath} is not a device`);
  const rdev = st.rdev;
  return {
    path: hostPath,
    type: st.isCharacterDevice() ? 'c' : 'b',
    major: Math.floor(rdev / 256) & 0xfff,
    minor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00),
    fileMode: st.mode & 0o777,
    uid: st.uid,
    gid: st.gid,
  };
}

export async function createContainer(x: ContainerContext, sandboxId: string, cfg: ContainerConfig__Output): Promise<string> {
  const name = cfg.metadata?.name;
  if (!name) throw invalid('CreateContainer: metadata.name is required');
  const sandbox = x.store.resolve(sandboxId);
  if (!sandbox) throw notFound(`CreateContainer ${name}: sandbox "${sandboxId}" not found`);
  if (liveState(sandbox) !== 'SANDBOX_READY') throw precondition(`CreateContainer ${name}: sandbox ${sandbox.id} is not ready`);
  const op = `CreateContainer ${name} in sandbox ${sandbox.id.slice(0, 13)}`;
  const attempt = cfg.metadata?.attempt ?? 0;
  for (const id of x.containers.ids()) {
    const i = readInfo(x, id);
    if (i && i.sandboxId === sandbox.id && i.metadata.name === name && i.metadata.attempt === attempt) {
      throw new CriError(6, `${op}: a container named ${name} (attempt ${attempt}) already exists: ${id}`);
    }
  }
  const imageName = cfg.image?.image ?? '';
  if (!imageName) throw invalid(`${op}: image is required`);
  let image: Image;
  try {
    image = x.findImage(imageName);
  } catch (e) {
    throw notFound(`${op}: image "${imageName}" not found: ${messageOf(e)}`);
  }
  let targetPid = 0;
  if (cfg.linux?.security_context?.namespace_options?.pid === NS_TARGET) {
    const t = resolveContainer(x, op, cfg.linux.security_context.namespace_options.target_id);
    if (t.c.state.pid <= 0 || liveStatus(t.c) !== 'running') throw precondition(`${op}: target container ${t.c.id} is not running`);
    targetPid = t.c.state.pid;
  }
  const devices = cfg.devices.map((d) => {
    try {
      return deviceInfo(d.host_path);
    } catch (e) {
      if (e instanceof CriError) throw e;
      throw invalid(`${op}: device ${d.host_path}: ${messageOf(e)}`);
    }
  });
  const id = crypto.randomBytes(32).toString('hex');
  const paths = x.paths.engine;
  const logPath = sandbox.config.log_directory && cfg.log_path ? path.join(sandbox.config.log_directory, cfg.log_path) : '';
  const c: Container = {
    id,
    name: `${name}_${sandbox.config.metadata?.name ?? ''}_${sandbox.config.metadata?.namespace ?? ''}_${attempt}_${id.slice(0, 8)}`,
    created: new Date().toISOString(),
    config: {
      image: imageName, imageId: image.id, entrypoint: cfg.command.length > 0 ? cfg.command : null, cmd: cfg.args.length > 0 ? cfg.args : null,
      args: [], env: [], workingDir: cfg.working_dir || '', user: '', tty: cfg.tty, openStdin: cfg.stdin, hostname: '',
      labels: {}, stopSignal: image.config.config?.StopSignal || 'SIGTERM', stopTimeout: 30, exposedPorts: [],
    },
    hostConfig: {
      autoRemove: false, restartPolicy: { name: 'no', maximumRetryCount: 0 },
      networkMode: sandbox.netns ? `netns:${sandbox.netns}` : 'host',
      portBindings: [], mounts: [], memory: 0, nanoCpus: 0, pidsLimit: 0, readonlyRootfs: false, capAdd: [], capDrop: [],
      privileged: false, init: false, logMaxSize: 0, logMaxFiles: 1, cgroupParent: '', ...(logPath ? { logPath } : {}),
    },
    state: initialState(),
    network: null,
  };
  const info: CriInfo = {
    sandboxId: sandbox.id, metadata: { name, attempt }, image: imageName, imageRef: image.record.digest, imageId: image.id,
    labels: cfg.labels, annotations: cfg.annotations, logPath, mounts: cfg.mounts, createdAt: nowNanos(), stdinOnce: cfg.stdin_once,
  };
  const dir = paths.dir(id);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
    x.containers.write(c);
    const b = await imageToBundle(await imageStoreOf(x), image, paths.bundle(id), {
      entrypoint: c.config.entrypoint ?? undefined,
      cmd: c.config.cmd ?? undefined,
      env: cfg.envs.map((e) => `${e.key}=${e.value}`),
      user: userOf(cfg),
      workdir: cfg.working_dir || undefined,
      terminal: cfg.tty,
    });
    c.config.args = b.spec.process?.args ?? [];
    c.config.env = b.spec.process?.env ?? [];
    if (c.config.args.length === 0) throw invalid(`${op}: no command: the image has no entrypoint or cmd and none was given`);
    const sdir = x.paths.sandboxDir(sandbox.id);
    const spec = containerSpec({
      id, config: cfg, sandbox, spec: b.spec,
      sandboxFiles: { hostname: path.join(sdir, 'hostname'), hosts: path.join(sdir, 'hosts'), resolvConf: path.join(sdir, 'resolv.conf') },
      targetPid, devices, nofileHard: hostNofileHard(), minOomScoreAdj: minOomScoreAdj(), defaultCgroupParent: x.opts.defaultCgroupParent,
      readProfile: (f) => fs.readFileSync(f, 'utf8'),
      boundingCaps: hostBoundingCaps(),
    });
    for (const m of cfg.mounts) {
      // kubelet's volumes exist; a missing host path is made as a directory (containerd does the same)
      if (!fs.existsSync(m.host_path)) fs.mkdirSync(m.host_path, { recursive: true, mode: 0o755 });
    }
    writeJsonAtomic(path.join(b.dir, 'config.json'), spec);
    x.containers.write(c);
    if (logPath) fs.mkdirSync(path.dirname(logPath), { recursive: true, mode: 0o755 });
    writeJsonAtomic(infoFile(x, id), info);
    return id;
  } catch (e) {
    try {
      removeImageBundle(paths.bundle(id));
    } catch {
      // best effort
    }
    fs.rmSync(dir, { recursive: true, force: true });
    if (e instanceof CriError) throw e;
    const msg = messageOf(e);
    throw /must be absolute|seccomp|unknown capability|not a device/.test(msg) ? invalid(`${op}: ${msg}`) : during(op, e);
  }
}

async function imageStoreOf(x: ContainerContext): Promise<import('../images/store').ContentStore> {
  const { ContentStore } = await import('../images/store');
  return new ContentStore(x.paths.imageRoot);
}

export async function startContainerCri(x: ContainerContext, ref: string): Promise<void> {
  const { c, info } = resolveContainer(x, 'StartContainer', ref);
  const op = `StartContainer ${info.metadata.name} (${c.id.slice(0, 13)})`;
  const status = liveStatus(c);
  if (status !== 'created') throw precondition(`${op}: the container is ${status}, not created`);
  const sandbox = x.store.get(info.sandboxId);
  if (!sandbox || liveState(sandbox) !== 'SANDBOX_READY') throw precondition(`${op}: its sandbox ${info.sandboxId.slice(0, 13)} is not ready`);
  try {
    // The server outlives its containers: it records their exits itself (no Node start); if it dies first, each monitor's exit command does.
    const launched = await startContainer(x.paths.engine, c.id, { attach: false, exitHere: true, warn: x.warn });
    void launched.awaitExit?.();
  } catch (e) {
    // the record says why (exited, with the error); kubelet reads it in ContainerStatus
    throw during(op, e);
  }
}

export async function stopContainerCri(x: ContainerContext, ref: string, timeoutSec: number): Promise<void> {
  const { c } = resolveContainer(x, 'StopContainer', ref);
  await stopContainer(x.paths.engine, c.id, Math.max(0, timeoutSec), { killAtOnce: true });
}

export async function removeContainerCri(x: ContainerContext, ref: string): Promise<void> {
  let found: ReturnType<typeof resolveContainer>;
  try {
    found = resolveContainer(x, 'RemoveContainer', ref);
  } catch (e) {
    if (e instanceof CriError && e.grpcCode === 5) return; // removing twice is fine (CRI: idempotent)
    throw e;
  }
  const { c, info } = found;
  await stopContainer(x.paths.engine, c.id, 0, { killAtOnce: true });
  try {
    removeContainer(x.paths.engine, c.id, { force: true });
  } catch (e) {
    throw during(`RemoveContainer ${info.metadata.name} (${c.id.slice(0, 13)})`, e);
  }
}

export function containerStatus(x: ContainerContext, ref: string): ContainerStatus {
  const { c, info } = resolveContainer(x, 'ContainerStatus', ref);
  const state = criState(c);
  let reason = '';
  if (state === CONTAINER_EXITED) reason = c.state.oomKilled ? 'OOMKilled' : c.state.exitCode === 0 ? 'Completed' : 'Error';
  return {
    id: c.id,
    metadata: info.metadata,
    state,
    created_at: info.createdAt,
    started_at: state === CONTAINER_CREATED ? '0' : isoToNanos(c.state.startedAt),
    finished_at: state === CONTAINER_EXITED ? isoToNanos(c.state.finishedAt) : '0',
    exit_code: state === CONTAINER_EXITED ? c.state.exitCode : 0,
    image: { image: info.image, annotations: {} },
    image_ref: info.imageRef,
    image_id: info.imageId,
    reason,
    message: c.state.error || '',
    labels: info.labels,
    annotations: info.annotations,
    mounts: info.mounts,
    log_path: info.logPath,
  };
}

export function criContainer(x: ContainerContext, c: Container, info: CriInfo): CriContainer {
  return {
    id: c.id, pod_sandbox_id: info.sandboxId, metadata: info.metadata, image: { image: info.image, annotations: {} },
    image_ref: info.imageRef, image_id: info.imageId, state: criState(c), created_at: info.createdAt, labels: info.labels, annotations: info.annotations,
  };
}

export function listContainers(x: ContainerContext, f: ContainerFilter__Output | null): CriContainer[] {
  const out: CriContainer[] = [];
  for (const c of x.containers.all()) {
    const info = readInfo(x, c.id);
    if (!info) continue;
    if (f?.id && !c.id.startsWith(f.id)) continue;
    if (f?.pod_sandbox_id && !info.sandboxId.startsWith(f.pod_sandbox_id)) continue;
    if (f?.state && criState(c) !== f.state.state) continue;
    if (f && Object.entries(f.label_selector ?? {}).some(([k, v]) => info.labels[k] !== v)) continue;
    out.push(criContainer(x, c, info));
  }
  return out;
}

/** The containers of one sandbox. */
export function sandboxContainers(x: ContainerContext, sandboxId: string): Container[] {
  return x.containers.all().filter((c) => readInfo(x, c.id)?.sandboxId === sandboxId);
}

export type { SandboxRecord };

/** ReopenContainerLog: the monitor opens log_path anew, after kubelet renamed the file away. */
export async function reopenContainerLog(x: ContainerContext, ref: string): Promise<void> {
  const { c, info } = resolveContainer(x, 'ReopenContainerLog', ref);
  const op = `ReopenContainerLog ${info.metadata.name} (${c.id.slice(0, 13)})`;
  if (liveStatus(c) !== 'running') throw precondition(`${op}: the container is not running`);
  const { F, FrameReader, frame } = await import('../engine/attach');
  await new Promise<void>((resolve, reject) => {
    const sock = net.connect(x.paths.engine.attachSocket(c.id));
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new CriError(4, `${op}: the monitor did not answer`));
    }, 5000);
    const reader = new FrameReader((type, payload) => {
      if (type !== F.LOG_REOPENED) return;
      clearTimeout(timer);
      sock.destroy();
      if (payload.length > 0) reject(new CriError(2, `${op}: ${payload.toString()}`));
      else resolve();
    });
    sock.on('connect', () => sock.write(frame(F.REOPEN_LOG)));
    sock.on('data', (d: Buffer) => reader.push(d));
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(new CriError(9, `${op}: cannot reach the container's monitor: ${e.message}`));
    });
  });
}
