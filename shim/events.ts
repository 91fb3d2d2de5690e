// GetContainerEvents (kubelet's evented PLEG): the container events of
// what this server did (created, started, stopped, deleted), and exits seen
// by a poll of the records once a second while someone listens.

import { EventEmitter } from 'node:events';
import { liveStatus as liveStatusOf } from '../engine/containers';
import { containerStatus, readInfo, type ContainerContext } from './containers';
import { liveState, nowNanos } from './sandbox-store';

export const CONTAINER_CREATED_EVENT = 0;
export const CONTAINER_STARTED_EVENT = 1;
export const CONTAINER_STOPPED_EVENT = 2;
export const CONTAINER_DELETED_EVENT = 3;

export interface ContainerEvents {
  events: EventEmitter;
  emit(id: string, type: 0 | 1 | 2 | 3): void;
  close(): void;
}

export function containerEvents(x: ContainerContext): ContainerEvents {
  const { store, containers } = x;
  const events = new EventEmitter();
  /** What the poll last saw of each container: 1 running, 2 exited, 0 other. */
  const seen = new Map<string, number>();
  const emit = (id: string, type: 0 | 1 | 2 | 3): void => {
    // what an RPC did is seen: the poll must not report it again
    if (type === 3) seen.delete(id);
    else seen.set(id, type === 1 ? 1 : type === 2 ? 2 : 0);
    if (events.listenerCount('event') === 0) return;
    let statuses: unknown[] = [];
    let sandbox: unknown = null;
    try {
      const st = containerStatus(x, id);
      statuses = [st];
      const sid = readInfo(x, id)?.sandboxId;
      const sb = sid ? store.get(sid) : null;
      if (sb) sandbox = { id: sb.id, metadata: sb.config.metadata, state: liveState(sb) === 'SANDBOX_READY' ? 0 : 1, created_at: sb.createdAt, labels: sb.config.labels, annotations: sb.config.annotations };
    } catch {
      // deleted: no status
    }
    events.emit('event', { container_id: id, container_event_type: type, created_at: nowNanos(), pod_sandbox_status: sandbox, containers_statuses: statuses });
  };
  const poll = setInterval(() => {
    if (events.listenerCount('event') === 0) return;
    for (const c of containers.all()) {
      const st = liveStatusOf(c);
      const was = seen.get(c.id);
      const now = st === 'running' ? 1 : st === 'exited' ? 2 : 0;
      if (was === 1 && now === 2) emit(c.id, 2);
      seen.set(c.id, now);
    }
  }, 1000);
  poll.unref();
  return { events, emit, close: () => clearInterval(poll) };
}
