// StatefulSets (podManagementPolicy OrderedReady, updateStrategy
// RollingUpdate): pods with stable names NAME-0, NAME-1, ... made one at a
// time, each only once the one before is Running and Ready; scaled down
// from the highest ordinal; a new template replaces pods from the highest
// ordinal down, one at a time. Each pod's hostname is its name and its
// subdomain the governing service, as Kubernetes sets them.

import { createHash } from 'node:crypto';
import type { KubeObject } from '../api/objects';
import type { Client } from '../client';
import { typeOf } from '../client';
import { podReady } from './endpoints';
import { WorkQueue, queueOwners } from './queue';

const POD = typeOf('Pod');
const STS = typeOf('StatefulSet', 'apps');
const REVISION_LABEL = 'controller-revision-hash';

interface StsSpec {
  replicas?: number;
  serviceName?: string;
  podManagementPolicy?: string;
  template?: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: Record<string, unknown> };
}

const ordinalOf = (name: string, pod: string): number => {
  const m = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-(\\d+)$`).exec(pod);
  return m ? Number(m[1]) : -1;
};

export function startStatefulSetController(client: Client, log: (line: string) => void): () => void {
  const queue = new WorkQueue((key) => {
    const [ns, name] = key.split('/') as [string, string];
    const sts = client.get(STS, ns, name);
    if (!sts || sts.metadata.deletionTimestamp) return;
    const spec = (sts.spec ?? {}) as StsSpec;
    const want = spec.replicas ?? 1;
    const revision = `${name}-${createHash('sha256').update(JSON.stringify(spec.template ?? {})).digest('hex').slice(0, 10)}`;
    const uid = sts.metadata.uid as string;
    const pods = client.list(POD, ns).filter((p) => p.metadata.ownerReferences?.some((r) => r.uid === uid));
    const byOrdinal = new Map<number, KubeObject>();
    for (const p of pods) byOrdinal.set(ordinalOf(name, String(p.metadata.name)), p);
    const parallel = spec.podManagementPolicy === 'Parallel';
    const healthy = (p: KubeObject | undefined): boolean => !!p && !p.metadata.deletionTimestamp && (p.status as { phase?: string } | undefined)?.phase === 'Running' && podReady(p);
    // Up, in order: each waits for the one before (OrderedReady).
    for (let i = 0; i < want; i++) {
      const p = byOrdinal.get(i);
      if (p) {
        if (!parallel && !healthy(p)) return status();
        continue;
      }
      const podName = `${name}-${i}`;
      client.create(POD, ns, {
        apiVersion: 'v1', kind: 'Pod',
        metadata: {
          name: podName, namespace: ns,
          labels: { ...(spec.template?.metadata?.labels ?? {}), 'statefulset.kubernetes.io/pod-name': podName, [REVISION_LABEL]: revision, 'apps.kubernetes.io/pod-index': String(i) },
          annotations: { ...(spec.template?.metadata?.annotations ?? {}) },
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name, uid, controller: true, blockOwnerDeletion: true }],
        },
        spec: { ...structuredClone(spec.template?.spec ?? {}), hostname: podName, ...(spec.serviceName ? { subdomain: spec.serviceName } : {}) },
      });
      if (!parallel) return status();
    }
    // Down, from the highest ordinal, one at a time.
    const extra = [...byOrdinal.keys()].filter((i) => i >= want).sort((a, b) => b - a);
    const top = extra[0];
    if (top !== undefined) {
      const p = byOrdinal.get(top) as KubeObject;
      if (!p.metadata.deletionTimestamp) client.delete(POD, ns, String(p.metadata.name));
      return status();
    }
    // A new template: the highest outdated pod goes once all are healthy; it comes back with the new one.
    const outdated = [...byOrdinal.entries()].filter(([i, p]) => i < want && p.metadata.labels?.[REVISION_LABEL] !== revision).sort((a, b) => b[0] - a[0]);
    if (outdated.length > 0 && [...byOrdinal.values()].every(healthy)) client.delete(POD, ns, String((outdated[0] as [number, KubeObject])[1].metadata.name));
    return status();

    function status(): void {
      const now = client.list(POD, ns).filter((p) => p.metadata.ownerReferences?.some((r) => r.uid === uid) && !p.metadata.deletionTimestamp);
      const s = {
        observedGeneration: sts?.metadata.generation ?? 1,
        replicas: now.length,
        readyReplicas: now.filter(podReady).length,
        availableReplicas: now.filter(podReady).length,
        currentReplicas: now.filter((p) => p.metadata.labels?.[REVISION_LABEL] === revision).length,
        updatedReplicas: now.filter((p) => p.metadata.labels?.[REVISION_LABEL] === revision).length,
        currentRevision: revision,
        updateRevision: revision,
      };
      client.patchStatusIfChanged(STS, ns, name, sts?.status, s);
    }
  }, (key, e) => log(`statefulset controller: ${key}: ${(e as Error).message}`));
  const cancel = queueOwners(client, queue, STS, POD);
  return () => {
    cancel();
    queue.stop();
  };
}
