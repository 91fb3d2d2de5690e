// ResourceQuota status: `used` beside `hard`, recounted when pods or the
// kinds a quota counts change in its namespace (what kubectl describe
// quota shows). Refusing what would exceed it is admission's job
// (api/admission.ts); this only keeps the figures.

import { quotaUsed } from '../api/admission';
import type { KubeObject } from '../api/objects';
import { RESOURCES } from '../api/resources';
import type { Client } from '../client';
import { typeOf } from '../client';
import { WorkQueue } from './queue';

const QUOTA = typeOf('ResourceQuota');
const COUNTED = RESOURCES.filter((r) => r.namespaced && r.group !== 'extensions' && r.kind !== 'Event' && r.kind !== 'Endpoints');

function show(k: string, v: number): string {
  if (k.endsWith('cpu') && !Number.isInteger(v)) return `${Math.round(v * 1000)}m`;
  if (k.endsWith('memory') && v > 0 && v % (1024 * 1024) === 0) return `${v / (1024 * 1024)}Mi`;
  return String(v);
}

export function startQuotaController(client: Client, log: (line: string) => void): () => void {
  const queue = new WorkQueue((ns) => {
    for (const q of client.list(QUOTA, ns)) {
      const hard = ((q.spec as { hard?: Record<string, string> } | undefined)?.hard ?? {});
      const objects: KubeObject[] = COUNTED.flatMap((t) => client.list(t, ns));
      const used = Object.fromEntries(Object.entries(quotaUsed(hard, objects)).map(([k, v]) => [k, show(k, v)]));
      client.patchStatusIfChanged(QUOTA, ns, q.metadata.name as string, q.status, { hard, used });
    }
  }, (ns, e) => log(`quota controller: ${ns}: ${(e as Error).message}`));
  for (const q of client.list(QUOTA, null)) queue.add(String(q.metadata.namespace));
  const cancel = client.watch(COUNTED, (_t, _e, o) => queue.add(String(o.metadata.namespace)));
  return () => {
    cancel();
    queue.stop();
  };
}
