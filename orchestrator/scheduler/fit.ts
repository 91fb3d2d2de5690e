// Where a pod may go (pure): kube-scheduler's filters that matter on a few
// machines, each saying why a node was turned down in the scheduler's own
// words, and its default score (the least requested node wins).
//
//   NodeUnschedulable   spec.unschedulable (kubectl cordon)
//   NodeName            spec.nodeName asked for by hand is bound by the API, not here
//   NodeAffinity        spec.nodeSelector against the node's labels
//   TaintToleration     NoSchedule and NoExecute taints the pod does not tolerate
//   NodeResourcesFit    requests (cpu, memory, pods) against allocatable minus what is placed

import type { KubeObject } from '../api/objects';
import { quantity } from '../api/quantity';

interface Resources { requests?: Record<string, string | number>; limits?: Record<string, string | number> }
interface PodSpec {
  nodeName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  containers?: { resources?: Resources }[];
  initContainers?: { resources?: Resources }[];
  overhead?: Record<string, string | number>;
}
export interface Toleration { key?: string; operator?: 'Exists' | 'Equal'; value?: string; effect?: string }
export interface Taint { key: string; value?: string; effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' }
interface NodeSpec { unschedulable?: boolean; taints?: Taint[] }

/** What a pod asks of a node: cpu in cores, memory in bytes, and one pod. */
export interface Request { cpu: number; memory: number; pods: number }

const request = (r: Resources | undefined, name: string): number =>
  // The API defaults requests to limits when only limits are given.
  quantity(r?.requests?.[name] ?? r?.limits?.[name]) ?? 0;

/** kube-scheduler's pod request: the containers' sum, or the largest init container if more (they run one at a time), plus overhead. */
export function podRequest(pod: KubeObject): Request {
  const spec = (pod.spec ?? {}) as PodSpec;
  const sum = (name: string): number => (spec.containers ?? []).reduce((n, c) => n + request(c.resources, name), 0);
  const init = (name: string): number => Math.max(0, ...(spec.initContainers ?? []).map((c) => request(c.resources, name)));
  const one = (name: string): number => Math.max(sum(name), init(name)) + (quantity(spec.overhead?.[name]) ?? 0);
  return { cpu: one('cpu'), memory: one('memory'), pods: 1 };
}

/** Pods that hold a node's resources: bound to it and not finished. */
export function holdsResources(p: KubeObject, node: string): boolean {
  const phase = (p.status as { phase?: string } | undefined)?.phase;
  return (p.spec as PodSpec | undefined)?.nodeName === node && phase !== 'Succeeded' && phase !== 'Failed';
}

export function tolerates(tolerations: Toleration[], taint: Taint): boolean {
  return tolerations.some((t) => {
    if (t.effect && t.effect !== taint.effect) return false;
    if ((t.operator ?? 'Equal') === 'Exists') return !t.key || t.key === taint.key;
    return t.key === taint.key && (t.value ?? '') === (taint.value ?? '');
  });
}

export interface NodeFit {
  node: KubeObject;
  /** Why it cannot take the pod, in kube-scheduler's words ("Insufficient cpu"); empty if it can. */
  reasons: string[];
  /** Free share left after the pod, averaged over cpu and memory: higher is better (LeastAllocated). */
  score: number;
}

/** Every filter on one node; `placed` are the pods already bound to it. */
export function fitNode(pod: KubeObject, node: KubeObject, placed: KubeObject[]): NodeFit {
  const spec = (pod.spec ?? {}) as PodSpec;
  const ns = (node.spec ?? {}) as NodeSpec;
  // Filters in kube-scheduler's order; a node is reported for the first that turns it down.
  const reason = (r: string): NodeFit => ({ node, reasons: [r], score: 0 });
  if (ns.unschedulable) return reason('node(s) were unschedulable');
  const untolerated = (ns.taints ?? []).find((t) => t.effect !== 'PreferNoSchedule' && !tolerates(spec.tolerations ?? [], t));
  if (untolerated) return reason(`node(s) had untolerated taint {${untolerated.key}: ${untolerated.value ?? ''}}`);
  const labels = node.metadata.labels ?? {};
  if (Object.entries(spec.nodeSelector ?? {}).some(([k, v]) => labels[k] !== v)) return reason("node(s) didn't match Pod's node affinity/selector");
  const alloc = ((node.status as { allocatable?: Record<string, string> } | undefined)?.allocatable) ?? {};
  const want = podRequest(pod);
  const used = placed.map(podRequest).reduce((a, b) => ({ cpu: a.cpu + b.cpu, memory: a.memory + b.memory, pods: a.pods + b.pods }), { cpu: 0, memory: 0, pods: 0 });
  const cap: Request = { cpu: quantity(alloc['cpu']) ?? 0, memory: quantity(alloc['memory']) ?? 0, pods: quantity(alloc['pods']) ?? 0 };
  // NodeResourcesFit names every resource short. A zero request always fits (a BestEffort pod is not refused for cpu).
  const reasons: string[] = [];
  if (used.pods + 1 > cap.pods) reasons.push('Too many pods');
  if (want.cpu > 0 && used.cpu + want.cpu > cap.cpu) reasons.push('Insufficient cpu');
  if (want.memory > 0 && used.memory + want.memory > cap.memory) reasons.push('Insufficient memory');
  const free = (k: 'cpu' | 'memory'): number => (cap[k] > 0 ? Math.max(0, cap[k] - used[k] - want[k]) / cap[k] : 0);
  return { node, reasons, score: (free('cpu') + free('memory')) / 2 };
}

/** The node to bind to (the best score, then the name), or kube-scheduler's FailedScheduling message. */
export function schedule(pod: KubeObject, nodes: KubeObject[], pods: KubeObject[]): { node: string } | { message: string } {
  if (nodes.length === 0) return { message: 'no nodes available to schedule pods' };
  const fits = nodes.map((n) => fitNode(pod, n, pods.filter((p) => holdsResources(p, n.metadata.name as string))));
  const ok = fits.filter((f) => f.reasons.length === 0).sort((a, b) => b.score - a.score || String(a.node.metadata.name).localeCompare(String(b.node.metadata.name)));
  if (ok[0]) return { node: ok[0].node.metadata.name as string };
  // "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector."
  const counts = new Map<string, number>();
  for (const f of fits) for (const r of f.reasons) counts.set(r, (counts.get(r) ?? 0) + 1);
  // sorted as strings, count first, as kube-scheduler's FitError sorts them
  const parts = [...counts].map(([r, n]) => `${n} ${r}`).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { message: `0/${nodes.length} nodes are available: ${parts.join(', ')}.` };
}
