// ReplicationController and ReplicaSet: keep `spec.replicas` pods that match
// the selector, made from `spec.template`, each owned by the controller
// (ownerReferences, controller: true). Level-triggered, as Kubernetes'
// replica_set.go: a change to the owner or to any pod queues the owner's
// key, and sync reads what is there and acts on the difference: create
// pods with generateName, or delete the extra ones (those not running
// first, then the newest). Orphans that match are adopted.

import type { KubeObject } from '../api/objects';
import { matchesLabels, selectorRequirements } from '../api/selectors';
import type { Client } from '../client';
import { typeOf } from '../client';
import { WorkQueue } from './queue';

const POD = typeOf('Pod');
const KINDS = [typeOf('ReplicationController'), typeOf('ReplicaSet', 'apps')];

interface ReplicaSpec {
  replicas?: number;
  selector?: unknown;
  template?: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: unknown };
}

const keyOf = (kind: string, ns: string, name: string): string => `${kind}/${ns}/${name}`;

function owner(o: KubeObject): { kind: string; name: string; uid: string } | undefined {
  return o.metadata.ownerReferences?.find((r) => r.controller);
}

function active(p: KubeObject): boolean {
  const phase = (p.status as { phase?: string } | undefined)?.phase;
  return !p.metadata.deletionTimestamp && phase !== 'Succeeded' && phase !== 'Failed';
}

export function startReplicaControllers(client: Client, log: (line: string) => void): () => void {
  const queue = new WorkQueue((key) => sync(key), (key, e) => log(`replicas controller: ${key}: ${(e as Error).message}`));

  function sync(key: string): void {
    const [kind, ns, name] = key.split('/') as [string, string, string];
    const type = KINDS.find((k) => k.kind === kind);
    if (!type) return;
    const rc = client.get(type, ns, name);
    if (!rc || rc.metadata.deletionTimestamp) return; // gone: the garbage collector takes its pods
    const spec = (rc.spec ?? {}) as ReplicaSpec;
    const reqs = selectorRequirements(spec.selector ?? spec.template?.metadata?.labels);
    const uid = rc.metadata.uid as string;
    let mine: KubeObject[] = [];
    for (const p of client.list(POD, ns)) {
      const o = owner(p);
      if (o?.uid === uid) mine.push(p);
      else if (!o && reqs.length > 0 && active(p) && matchesLabels(reqs, p.metadata.labels)) {
        // An orphan that matches: adopt it, as Kubernetes does.
        mine.push(client.patch(POD, ns, p.metadata.name as string, { metadata: { ownerReferences: [ownerRef(rc)] } }));
      }
    }
    mine = mine.filter(active);
    const want = spec.replicas ?? 1;
    if (mine.length < want) {
      for (let i = mine.length; i < want; i++) {
        mine.push(client.create(POD, ns, {
          apiVersion: 'v1', kind: 'Pod',
          metadata: { generateName: `${name}-`, namespace: ns, labels: { ...(spec.template?.metadata?.labels ?? {}) }, annotations: { ...(spec.template?.metadata?.annotations ?? {}) }, ownerReferences: [ownerRef(rc)] },
          spec: structuredClone(spec.template?.spec ?? {}),
        }));
      }
    } else if (mine.length > want) {
      // Pods not running go first, then the newest.
      const rank = (p: KubeObject): number => ((p.status as { phase?: string } | undefined)?.phase === 'Running' ? 1 : 0);
      const extra = [...mine].sort((a, b) => rank(a) - rank(b) || String(b.metadata.creationTimestamp).localeCompare(String(a.metadata.creationTimestamp))).slice(0, mine.length - want);
      for (const p of extra) client.delete(POD, ns, p.metadata.name as string);
      mine = mine.filter((p) => !extra.includes(p));
    }
    const ready = mine.filter((p) => ((p.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')).length;
    const status = { replicas: mine.length, fullyLabeledReplicas: mine.length, readyReplicas: ready, availableReplicas: ready, observedGeneration: rc.metadata.generation ?? 1 };
    client.patchStatusIfChanged(type, ns, name, rc.status, status);
  }

  // Everything there now, then every change to an owner or a pod.
  for (const t of KINDS) for (const o of client.list(t, null)) queue.add(keyOf(t.kind, o.metadata.namespace as string, o.metadata.name as string));
  const cancel = client.watch([...KINDS, POD], (t, _e, o) => {
    const ns = o.metadata.namespace as string;
    if (t.kind !== 'Pod') return queue.add(keyOf(t.kind, ns, o.metadata.name as string));
    const own = owner(o);
    if (own) return queue.add(keyOf(own.kind, ns, own.name));
    // A new orphan may match some controller's selector.
    for (const k of KINDS) for (const c of client.list(k, ns)) queue.add(keyOf(k.kind, ns, c.metadata.name as string));
  });
  return () => {
    cancel();
    queue.stop();
  };
}

function ownerRef(o: KubeObject): { apiVersion: string; kind: string; name: string; uid: string; controller: boolean; blockOwnerDeletion: boolean } {
  return { apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name as string, uid: o.metadata.uid as string, controller: true, blockOwnerDeletion: true };
}
