// The node lifecycle controller (kube-controller-manager's): a node whose
// agent has not posted status for the grace period (--node-monitor-grace-period,
// 40 s) turns Ready=Unknown; a node that is not Ready gets the NoSchedule
// taint the scheduler respects (node.kubernetes.io/unreachable or
// not-ready), and loses it once Ready again. Time is this controller's own:
// a heartbeat counts when it changes, not by the node's clock.
// NoExecute taints and eviction are not done: pods stay where they are.

import type { KubeObject } from '../api/objects';
import type { Client } from '../client';
import { typeOf } from '../client';

const NODE = typeOf('Node');
const UNREACHABLE = 'node.kubernetes.io/unreachable';
const NOT_READY = 'node.kubernetes.io/not-ready';

/** A node's taint (spec.taints[]). */
interface Taint { key: string; value?: string; effect: string }

interface Condition { type: string; status: string; reason?: string; message?: string; lastHeartbeatTime?: string; lastTransitionTime?: string }

/** The NoSchedule taint a node's Ready condition calls for, if any (pure). */
export function readinessTaint(ready: Condition | undefined): string | null {
  if (ready?.status === 'True') return null;
  return !ready || ready.status === 'Unknown' ? UNREACHABLE : NOT_READY;
}

export function startNodeLifecycleController(client: Client, log: (line: string) => void, graceMs = 40000): () => void {
  // name → the last heartbeat seen and when this controller saw it change
  const seen = new Map<string, { beat: string; at: number }>();

  function check(node: KubeObject): void {
    const name = node.metadata.name as string;
    const conds = ((node.status as { conditions?: Condition[] } | undefined)?.conditions) ?? [];
    let ready = conds.find((c) => c.type === 'Ready');
    const beat = ready?.lastHeartbeatTime ?? '';
    const last = seen.get(name);
    if (!last || last.beat !== beat) seen.set(name, { beat, at: Date.now() });
    else if (Date.now() - last.at > graceMs && ready?.status !== 'Unknown') {
      const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      ready = { type: 'Ready', status: 'Unknown', reason: 'NodeStatusUnknown', message: ready ? 'Kubelet stopped posting node status.' : 'Kubelet never posted node status.', ...(ready?.lastHeartbeatTime ? { lastHeartbeatTime: ready.lastHeartbeatTime } : {}), lastTransitionTime: now };
      client.patchStatus(NODE, null, name, { conditions: [...conds.filter((c) => c.type !== 'Ready'), ready] });
      log(`node lifecycle: node ${name}: no status for ${graceMs / 1000} s: Ready=Unknown`);
    }
    // A node that has not posted status yet gets the grace period first.
    const want = !ready && Date.now() - (seen.get(name)?.at ?? 0) <= graceMs ? null : readinessTaint(ready);
    const taints = ((node.spec as { taints?: Taint[] } | undefined)?.taints) ?? [];
    const others = taints.filter((t) => !((t.key === UNREACHABLE || t.key === NOT_READY) && t.effect === 'NoSchedule'));
    const next = want ? [...others, { key: want, effect: 'NoSchedule' }] : others;
    if (JSON.stringify(next) !== JSON.stringify(taints)) {
      client.patch(NODE, null, name, { spec: { taints: next.length ? next : null } });
      log(`node lifecycle: node ${name}: taints ${next.map((t) => `${t.key}:${t.effect}`).join(', ') || 'none'}`);
    }
  }

  const tick = (): void => {
    try {
      const nodes = client.list(NODE, null);
      for (const n of nodes) check(n);
      for (const name of seen.keys()) if (!nodes.some((n) => n.metadata.name === name)) seen.delete(name);
    } catch (e) {
      log(`node lifecycle: ${(e as Error).message}`);
    }
  };
  const timer = setInterval(tick, Math.min(5000, Math.max(500, graceMs / 4)));
  timer.unref();
  return () => clearInterval(timer);
}
