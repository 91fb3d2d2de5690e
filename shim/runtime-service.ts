// RuntimeService, one handler per RPC: each checks its request, finds the
// pod or container (NOT_FOUND names it), serialises on the sandbox where
// the state changes, and calls sandbox.ts, containers.ts, stats.ts or the
// streaming server. Errors are thrown; server.ts turns them into statuses.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { liveStatus as liveStatusOf } from '../engine/containers';
import { loadDefaultNetwork } from '../engine/cni';
import { invalid, notFound, precondition } from './errors';
import { liveState, nowNanos, type SandboxRecord } from './sandbox-store';
import { hostNetwork, removePauseState, runPodSandbox, stopSandboxNetworkAndPause } from './sandbox';
import {
  containerStatus, createContainer, listContainers, readInfo, removeContainerCri, reopenContainerLog, resolveContainer, sandboxContainers,
  startContainerCri, stopContainerCri, type ContainerContext,
} from './containers';
import { containerStats, podSandboxStats, updateResources } from './stats';
import { execSync } from './exec';
import type { ContainerEvents } from './events';
import type { KeyedQueue } from './queue';
import type { StreamingServer } from './streaming/server';

/**
 * One RPC: its request as @grpc/proto-loader decodes it (each handler
 * names its own shape; `never` accepts them all without an `any`).
 */
export type Handler = (req: never) => Promise<unknown> | unknown;

export function runtimeHandlers(x: ContainerContext, q: KeyedQueue, streaming: StreamingServer, ev: ContainerEvents): Record<string, Handler> {
  const { opts, store, containers, paths } = x;
  const emit = ev.emit;
  const sandboxOf = (ref: string): SandboxRecord | null => store.resolve(ref);
  const containerSandbox = (ref: string): string => {
    try {
      return resolveContainer(x, 'lookup', ref).info.sandboxId;
    } catch {
      return `container:${ref}`;
    }
  };

  const stopSandbox = async (s: SandboxRecord): Promise<void> => {
    for (const c of sandboxContainers(x, s.id)) await stopContainerCri(x, c.id, 0);
    await stopSandboxNetworkAndPause(x, s);
  };

  return {
    Version: () => ({ version: '0.1.0', runtime_name: 'mycontainer', runtime_version: require('../../package.json').version as string, runtime_api_version: 'v1' }),
    Status: (r: { verbose: boolean }) => {
      const net = loadDefaultNetwork(opts.cniConfDir);
      const conditions = [
        { type: 'RuntimeReady', status: true, reason: '', message: '' },
        net
          ? { type: 'NetworkReady', status: true, reason: '', message: '' }
          : { type: 'NetworkReady', status: false, reason: 'NetworkPluginNotReady', message: `Network plugin returns error: no CNI network config found in ${opts.cniConfDir}` },
      ];
      return { status: { conditions }, info: r.verbose ? { config: JSON.stringify({ ...opts, cniConfig: net?.file ?? null }) } : {} };
    },
    UpdateRuntimeConfig: () => ({}),
    RunPodSandbox: async (r: { config: SandboxRecord['config'] | null; runtime_handler: string }) => {
      if (!r.config) throw invalid('RunPodSandbox: config is required');
      const name = `${r.config.metadata?.namespace ?? ''}/${r.config.metadata?.name ?? ''}`;
      return q.run(`name:${name}`, async () => ({ pod_sandbox_id: await runPodSandbox(x, r.config!, r.runtime_handler) }));
    },
    StopPodSandbox: async (r: { pod_sandbox_id: string }) => {
      const s = sandboxOf(r.pod_sandbox_id);
      if (!s) throw notFound(`StopPodSandbox: sandbox "${r.pod_sandbox_id}" not found`);
      return q.run(s.id, async () => {
        await stopSandbox(s);
        return {};
      });
    },
    RemovePodSandbox: async (r: { pod_sandbox_id: string }) => {
      const s = sandboxOf(r.pod_sandbox_id);
      if (!s) return {}; // CRI: idempotent
      return q.run(s.id, async () => {
        for (const c of sandboxContainers(x, s.id)) await removeContainerCri(x, c.id);
        await stopSandboxNetworkAndPause(x, s);
        removePauseState(x, s);
        fs.rmSync(paths.sandboxDir(s.id), { recursive: true, force: true });
        return {};
      });
    },
    PodSandboxStatus: (r: { pod_sandbox_id: string; verbose: boolean }) => {
      const s = sandboxOf(r.pod_sandbox_id);
      if (!s) throw notFound(`PodSandboxStatus: sandbox "${r.pod_sandbox_id}" not found`);
      const state = liveState(s);
      return {
        status: {
          id: s.id, metadata: s.config.metadata, state: state === 'SANDBOX_READY' ? 0 : 1, created_at: s.createdAt,
          network: { ip: s.ip, additional_ips: s.additionalIps.map((ip) => ({ ip })) },
          linux: { namespaces: { options: s.config.linux?.security_context?.namespace_options ?? {} } },
          labels: s.config.labels, annotations: s.config.annotations, runtime_handler: s.runtimeHandler,
        },
        info: r.verbose ? { info: JSON.stringify({ pid: s.pausePid, netns: s.netns, hostNetwork: hostNetwork(s.config), cni: s.cni?.list.file ?? null, config: s.config }) } : {},
        containers_statuses: [],
        timestamp: nowNanos(),
      };
    },
    ListPodSandbox: (r: { filter: { id: string; state: { state: number } | null; label_selector: Record<string, string> } | null }) => {
      const f = r.filter;
      const items = store.all().filter((s) => {
        const st = liveState(s) === 'SANDBOX_READY' ? 0 : 1;
        if (f?.id && !s.id.startsWith(f.id)) return false;
        if (f?.state && f.state.state !== st) return false;
        return !Object.entries(f?.label_selector ?? {}).some(([k, v]) => s.config.labels[k] !== v);
      });
      return {
        items: items.map((s) => ({
          id: s.id, metadata: s.config.metadata, state: liveState(s) === 'SANDBOX_READY' ? 0 : 1, created_at: s.createdAt,
          labels: s.config.labels, annotations: s.config.annotations, runtime_handler: s.runtimeHandler,
        })),
      };
    },
    CreateContainer: async (r: { pod_sandbox_id: string; config: Parameters<typeof createContainer>[2] | null }) => {
      if (!r.config) throw invalid('CreateContainer: config is required');
      const s = sandboxOf(r.pod_sandbox_id);
      if (!s) throw notFound(`CreateContainer ${r.config.metadata?.name ?? ''}: sandbox "${r.pod_sandbox_id}" not found`);
      return q.run(s.id, async () => {
        const id = await createContainer(x, s.id, r.config!);
        emit(id, 0);
        return { container_id: id };
      });
    },
    StartContainer: async (r: { container_id: string }) => q.run(containerSandbox(r.container_id), async () => {
      await startContainerCri(x, r.container_id);
      emit(resolveContainer(x, 'StartContainer', r.container_id).c.id, 1);
      return {};
    }),
    StopContainer: async (r: { container_id: string; timeout: string }) => {
      await stopContainerCri(x, r.container_id, Number(r.timeout));
      emit(resolveContainer(x, 'StopContainer', r.container_id).c.id, 2);
      return {};
    },
    RemoveContainer: async (r: { container_id: string }) => q.run(containerSandbox(r.container_id), async () => {
      let id = '';
      try {
        id = resolveContainer(x, 'RemoveContainer', r.container_id).c.id;
      } catch {
        // already gone
      }
      await removeContainerCri(x, r.container_id);
      if (id) emit(id, 3);
      return {};
    }),
    ListContainers: (r: { filter: Parameters<typeof listContainers>[1] }) => ({ containers: listContainers(x, r.filter) }),
    ContainerStatus: (r: { container_id: string; verbose: boolean }) => {
      const status = containerStatus(x, r.container_id);
      const info: Record<string, string> = {};
      if (r.verbose) {
        const c = containers.read(status.id!);
        info['info'] = JSON.stringify({ pid: c.state.pid, sandboxID: readInfo(x, c.id)?.sandboxId, runtimeSpec: JSON.parse(fs.readFileSync(path.join(paths.engine.bundle(c.id), 'config.json'), 'utf8')) as unknown, state: c.state });
      }
      return { status, info };
    },
    ExecSync: (r: { container_id: string; cmd: string[]; timeout: string }) => execSync(x, r.container_id, r.cmd, Number(r.timeout)),
    ContainerStats: (r: { container_id: string }) => ({ stats: containerStats(x, resolveContainer(x, 'ContainerStats', r.container_id).c) }),
    ListContainerStats: (r: { filter: { id: string; pod_sandbox_id: string; label_selector: Record<string, string> } | null }) => ({
      stats: listContainers(x, r.filter ? { id: r.filter.id, pod_sandbox_id: r.filter.pod_sandbox_id, label_selector: r.filter.label_selector, state: { state: 1 } } : { id: '', pod_sandbox_id: '', label_selector: {}, state: { state: 1 } })
        .map((c) => containerStats(x, containers.read(c.id!))),
    }),
    UpdateContainerResources: (r: { container_id: string; linux: Parameters<typeof updateResources>[2] }) => {
      const { c } = resolveContainer(x, 'UpdateContainerResources', r.container_id);
      updateResources(x, c, r.linux);
      return {};
    },
    Exec: (r: { container_id: string; cmd: string[]; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }) => {
      const { c, info } = resolveContainer(x, 'Exec', r.container_id);
      if (liveStatusOf(c) !== 'running') throw precondition(`Exec in ${info.metadata.name} (${c.id.slice(0, 13)}): the container is not running`);
      return streaming.getExec({ ...r, container_id: c.id });
    },
    Attach: (r: { container_id: string; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }) => {
      const { c, info } = resolveContainer(x, 'Attach', r.container_id);
      if (liveStatusOf(c) !== 'running') throw precondition(`Attach to ${info.metadata.name} (${c.id.slice(0, 13)}): the container is not running`);
      return streaming.getAttach({ ...r, container_id: c.id });
    },
    PortForward: (r: { pod_sandbox_id: string; port: number[] }) => {
      const s = sandboxOf(r.pod_sandbox_id);
      if (!s) throw notFound(`PortForward: sandbox "${r.pod_sandbox_id}" not found`);
      if (liveState(s) !== 'SANDBOX_READY') throw precondition(`PortForward to ${s.id.slice(0, 13)}: the sandbox is not ready`);
      return streaming.getPortForward({ ...r, pod_sandbox_id: s.id });
    },
    PodSandboxStats: (r: { pod_sandbox_id: string }) => {
      const s = sandboxOf(r.pod_sandbox_id);
      if (!s) throw notFound(`PodSandboxStats: sandbox "${r.pod_sandbox_id}" not found`);
      return { stats: podSandboxStats(x, s, sandboxContainers(x, s.id)) };
    },
    ListPodSandboxStats: (r: { filter: { id: string; label_selector: Record<string, string> } | null }) => ({
      stats: store.all()
        .filter((s) => liveState(s) === 'SANDBOX_READY' && (!r.filter?.id || s.id.startsWith(r.filter.id)) && !Object.entries(r.filter?.label_selector ?? {}).some(([k, v]) => s.config.labels[k] !== v))
        .map((s) => podSandboxStats(x, s, sandboxContainers(x, s.id))),
    }),
    ReopenContainerLog: async (r: { container_id: string }) => {
      await reopenContainerLog(x, r.container_id);
      return {};
    },
  };
}
