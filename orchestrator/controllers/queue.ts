// A work queue of keys, as Kubernetes controllers have: a key added while
// queued is queued once; a failed sync is retried with backoff. Syncs are
// level-triggered (they read the state, not the event), so coalescing
// events loses nothing.

import type { Client } from '../client';
import type { ResourceType } from '../api/resources';

export class WorkQueue {
  private readonly queued = new Set<string>();
  private readonly failures = new Map<string, number>();
  private scheduled = false;
  private stopped = false;

  constructor(
    private readonly sync: (key: string) => void,
    private readonly onError: (key: string, e: unknown) => void,
  ) {}

  add(key: string): void {
    if (this.stopped) return;
    this.queued.add(key);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private drain(): void {
    this.scheduled = false;
    const keys = [...this.queued];
    this.queued.clear();
    for (const k of keys) {
      if (this.stopped) return;
      try {
        this.sync(k);
        this.failures.delete(k);
      } catch (e) {
        const n = (this.failures.get(k) ?? 0) + 1;
        this.failures.set(k, n);
        this.onError(k, e);
        // 5 ms doubling to 10 s, as client-go's default rate limiter starts.
        setTimeout(() => this.add(k), Math.min(10000, 5 * 2 ** n)).unref();
      }
    }
  }

  stop(): void {
    this.stopped = true;
    this.queued.clear();
  }
}

/**
 * Queues "NAMESPACE/NAME" of every object of `owner`'s kind now, then on
 * every change to one of them or to an `owned` object it controls
 * (its controller ownerReference). Returns the watch's cancel.
 */
export function queueOwners(client: Client, queue: WorkQueue, owner: ResourceType, owned: ResourceType): () => void {
  for (const o of client.list(owner, null)) queue.add(`${String(o.metadata.namespace)}/${String(o.metadata.name)}`);
  return client.watch([owner, owned], (t, _e, o) => {
    const ns = String(o.metadata.namespace);
    if (t.kind === owner.kind) return queue.add(`${ns}/${String(o.metadata.name)}`);
    const ref = o.metadata.ownerReferences?.find((r) => r.controller && r.kind === owner.kind);
    if (ref) queue.add(`${ns}/${ref.name}`);
  });
}
