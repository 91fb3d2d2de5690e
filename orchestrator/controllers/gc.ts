// Garbage collection by ownerReferences: when an object goes, what it owned
// goes after it (Kubernetes' background propagation). `kubectl delete
// --cascade=orphan` strips the references first (api/rest.ts), so nothing
// is collected then.

import type { KubeObject } from '../api/objects';
import { RESOURCES } from '../api/resources';
import type { Client } from '../client';
import { WorkQueue } from './queue';

/** The kinds that own others (workloads), and those owned (pods, replica sets). */
const OWNERS = RESOURCES.filter((r) => ['ReplicationController', 'ReplicaSet', 'Deployment', 'StatefulSet'].includes(r.kind) && r.group !== 'extensions');
const DEPENDENTS = RESOURCES.filter((r) => ['Pod', 'ReplicaSet'].includes(r.kind));

export function startGarbageCollector(client: Client, log: (line: string) => void): () => void {
  // Keys are "namespace/uid" of owners that are gone.
  const queue = new WorkQueue((key) => {
    const [ns, uid] = key.split('/') as [string, string];
    for (const t of DEPENDENTS) {
      for (const o of client.list(t, ns)) {
        if (!o.metadata.ownerReferences?.some((r) => r.uid === uid)) continue;
        // Another owner still holds it: only this reference goes.
        const others = o.metadata.ownerReferences.filter((r) => r.uid !== uid);
        if (others.length > 0) client.patch(t, ns, o.metadata.name as string, { metadata: { ownerReferences: others } });
        else client.delete(t, ns, o.metadata.name as string);
      }
    }
  }, (key, e) => log(`garbage collector: ${key}: ${(e as Error).message}`));
  // What lost its owner while the server was down.
  const owners = new Set(OWNERS.flatMap((t) => client.list(t, null).map((o) => o.metadata.uid)));
  for (const t of DEPENDENTS) {
    for (const o of client.list(t, null)) {
      for (const r of o.metadata.ownerReferences ?? []) if (!owners.has(r.uid)) queue.add(`${String(o.metadata.namespace)}/${r.uid}`);
    }
  }
  const cancel = client.watch([...OWNERS, ...DEPENDENTS.filter((d) => !OWNERS.includes(d))], (_t, e, o: KubeObject) => {
    if (e.type === 'DELETED') queue.add(`${String(o.metadata.namespace)}/${String(o.metadata.uid)}`);
  });
  return () => {
    cancel();
    queue.stop();
  };
}
