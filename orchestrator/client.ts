// The API as the controllers use it, in process: the same REST handlers
// kubectl reaches (validation, defaults, resourceVersions, conflicts), so a
// controller's writes are what any client's would be; and the store's watch
// for what changed.

import { Rest } from './api/rest';
import type { KubeObject } from './api/objects';
import { RESOURCES, keyOf, type ResourceType } from './api/resources';
import type { Store, WatchEvent } from './storage/types';

export function typeOf(kind: string, group = ''): ResourceType {
  const t = RESOURCES.find((r) => r.kind === kind && r.group === group);
  if (!t) throw new Error(`no resource type for kind ${kind}`);
  return t;
}

export class Client {
  private readonly rest: Rest;

  constructor(private readonly store: Store) {
    this.rest = new Rest(store);
  }

  private call(method: string, type: ResourceType, namespace: string | null, name: string | undefined, body: unknown, opts: { sub?: string; query?: Record<string, string>; contentType?: string } = {}): unknown {
    const target = { type, namespace, ...(name !== undefined ? { name } : {}), ...(opts.sub ? { subresource: opts.sub } : {}) };
    const r = this.rest.handle({ method, target, query: new URLSearchParams(opts.query ?? {}), table: false, body, contentType: opts.contentType ?? 'application/json' });
    if ('stream' in r) throw new Error('unexpected stream');
    return r.body;
  }

  list(type: ResourceType, namespace: string | null): KubeObject[] {
    return (this.call('GET', type, namespace, undefined, null) as { items: KubeObject[] }).items;
  }

  get(type: ResourceType, namespace: string | null, name: string): KubeObject | null {
    const s = this.store.get(keyOf(type, namespace, name));
    return s ? (JSON.parse(s.value) as KubeObject) : null;
  }

  create(type: ResourceType, namespace: string | null, obj: unknown): KubeObject {
    return this.call('POST', type, namespace, undefined, obj) as KubeObject;
  }

  /** A merge patch of the object. */
  patch(type: ResourceType, namespace: string | null, name: string, patch: unknown): KubeObject {
    return this.call('PATCH', type, namespace, name, patch, { contentType: 'application/merge-patch+json' }) as KubeObject;
  }

  /** A merge patch of the status subresource. */
  patchStatus(type: ResourceType, namespace: string | null, name: string, status: unknown): KubeObject {
    return this.call('PATCH', type, namespace, name, { status }, { sub: 'status', contentType: 'application/merge-patch+json' }) as KubeObject;
  }

  /** Patches the status with `next` only if one of its fields differs from `current`'s (a level-triggered sync writes nothing when nothing changed). */
  patchStatusIfChanged(type: ResourceType, namespace: string | null, name: string, current: unknown, next: Record<string, unknown>): void {
    const cur = (current ?? {}) as Record<string, unknown>;
    if (Object.entries(next).some(([k, v]) => JSON.stringify(cur[k]) !== JSON.stringify(v))) this.patchStatus(type, namespace, name, next);
  }

  /** pods/binding: the scheduler's placement of a pod on a node. */
  bind(namespace: string, name: string, node: string): void {
    this.call('POST', typeOf('Pod'), namespace, name, { apiVersion: 'v1', kind: 'Binding', metadata: { name, namespace }, target: { apiVersion: 'v1', kind: 'Node', name: node } }, { sub: 'binding' });
  }

  delete(type: ResourceType, namespace: string | null, name: string): void {
    this.call('DELETE', type, namespace, name, null);
  }

  /** Every write to objects of `types` (in all namespaces), from now on. */
  watch(types: ResourceType[], onEvent: (type: ResourceType, e: WatchEvent, obj: KubeObject) => void): () => void {
    const cancels = types.map((t) => this.store.watch(keyOf(t, null), this.store.revision(), (e) => onEvent(t, e, JSON.parse(e.value) as KubeObject)));
    return () => cancels.forEach((c) => c());
  }
}
