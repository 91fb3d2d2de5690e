// The scheduler, in the server's process as k3s runs kube-scheduler: a pod
// without spec.nodeName is placed by fit.ts's filters and score and bound
// through pods/binding, the one write the API allows for it. A pod that
// fits nowhere stays Pending with PodScheduled=False (Unschedulable) and a
// FailedScheduling event in kube-scheduler's words; it is tried again when
// a node or a placed pod changes (a node's heartbeat counts, so every 10 s
// at most).

import type { KubeObject } from '../api/objects';
import type { Client } from '../client';
import { typeOf } from '../client';
import { WorkQueue } from '../controllers/queue';
import { schedule } from './fit';

const POD = typeOf('Pod');
const NODE = typeOf('Node');
const EVENT = typeOf('Event');

const unbound = (p: KubeObject): boolean => !(p.spec as { nodeName?: string } | undefined)?.nodeName && !p.metadata.deletionTimestamp;
const keyOf = (p: KubeObject): string => `${String(p.metadata.namespace)}/${String(p.metadata.name)}`;

/** An event about a pod, as the scheduler reports them (`kubectl describe`, `get events`). */
export function recordEvent(client: Client, pod: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string, component: string): void {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const ns = String(pod.metadata.namespace);
  client.create(EVENT, ns, {
    apiVersion: 'v1', kind: 'Event',
    metadata: { name: `${String(pod.metadata.name)}.${Date.now().toString(16)}${Math.floor(Math.random() * 0xfff).toString(16)}`, namespace: ns },
    involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace: ns, name: pod.metadata.name, uid: pod.metadata.uid },
    reason, message, type, source: { component }, reportingComponent: component,
    firstTimestamp: now, lastTimestamp: now, count: 1,
  });
}

export function startScheduler(client: Client, log: (line: string) => void): () => void {
  const queue = new WorkQueue((key) => sync(key), (key, e) => log(`scheduler: pod ${key}: ${(e as Error).message}`));
  const requeuePending = (): void => {
    for (const p of client.list(POD, null)) if (unbound(p)) queue.add(keyOf(p));
  };

  function sync(key: string): void {
    const [ns, name] = key.split('/') as [string, string];
    const pod = client.get(POD, ns, name);
    if (!pod || !unbound(pod)) return;
    const r = schedule(pod, client.list(NODE, null), client.list(POD, null));
    if ('node' in r) {
      client.bind(ns, name, r.node);
      log(`scheduler: ${key} → node ${r.node}`);
      recordEvent(client, pod, 'Normal', 'Scheduled', `Successfully assigned ${key} to ${r.node}`, 'default-scheduler');
      return;
    }
    const conds = ((pod.status as { conditions?: { type: string; message?: string }[] } | undefined)?.conditions) ?? [];
    if (conds.find((c) => c.type === 'PodScheduled')?.message === r.message) return; // said already
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    client.patchStatus(POD, ns, name, { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: r.message, lastProbeTime: null, lastTransitionTime: now }] });
    recordEvent(client, pod, 'Warning', 'FailedScheduling', r.message, 'default-scheduler');
    log(`scheduler: ${key}: ${r.message}`);
  }

  requeuePending();
  const cancel = client.watch([POD, NODE], (t, e, o) => {
    if (t.kind === 'Node') return requeuePending();
    if (unbound(o)) return queue.add(keyOf(o));
    // A placed pod that went or finished frees its node's resources.
    const phase = (o.status as { phase?: string } | undefined)?.phase;
    if (e.type === 'DELETED' || phase === 'Succeeded' || phase === 'Failed') requeuePending();
  });
  return () => {
    cancel();
    queue.stop();
  };
}
