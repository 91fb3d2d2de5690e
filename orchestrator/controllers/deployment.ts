// Deployments, as Kubernetes' deployment controller: each pod template
// gets a ReplicaSet named after its hash (pod-template-hash), revisions in
// the deployment.kubernetes.io/revision annotation; a rolling update
// scales the new one up within maxSurge and the old ones down within
// maxUnavailable, as their pods become ready (Recreate: old to zero
// first). The status fields and the Progressing and Available conditions
// are what `kubectl rollout status` reads; `rollout undo` puts an old
// template back, whose ReplicaSet then becomes the new one again.

import { createHash } from 'node:crypto';
import type { KubeObject } from '../api/objects';
import type { Client } from '../client';
import { typeOf } from '../client';
import { WorkQueue, queueOwners } from './queue';

const DEPLOYMENT = typeOf('Deployment', 'apps');
const RS = typeOf('ReplicaSet', 'apps');
const REVISION = 'deployment.kubernetes.io/revision';

interface DeploymentSpec {
  replicas?: number;
  selector?: { matchLabels?: Record<string, string> };
  template?: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: unknown };
  strategy?: { type?: string; rollingUpdate?: { maxSurge?: number | string; maxUnavailable?: number | string } };
  revisionHistoryLimit?: number;
}

interface RsStatus { replicas?: number; readyReplicas?: number; availableReplicas?: number }

/** A percentage of `total` ("25%", rounded up or down) or a number. */
export function scaled(v: number | string | undefined, total: number, roundUp: boolean, dflt: string): number {
  const x = v ?? dflt;
  if (typeof x === 'number') return x;
  const m = /^(\d+)%$/.exec(x);
  if (!m) return Number(x) || 0;
  const f = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(f) : Math.floor(f);
}

/**
 * JSON with keys in order, so that the same template hashes the same however it was written; null
 * and empty-object fields left out, as Go's decoding into the API types drops them (`rollout undo`
 * sends the old template back with `creationTimestamp: null` and `resources: {}`).
 */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const fields = Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])] as const).filter(([, c]) => c !== 'null' && c !== '{}');
    return `{${fields.map(([k, c]) => `${JSON.stringify(k)}:${c}`).join(',')}}`;
  }
  return JSON.stringify(v ?? null);
}

/** A pod template as canonical JSON, its pod-template-hash label left out: what two templates are compared by. */
function bareTemplate(template: unknown): string {
  const t = structuredClone((template ?? {}) as { metadata?: { labels?: Record<string, string> } });
  delete t.metadata?.labels?.['pod-template-hash'];
  return canonical(t);
}

/** The template's hash, as the pod-template-hash label (10 characters of [a-z0-9]); its own label left out. */
export function templateHash(template: unknown): string {
  return BigInt('0x' + createHash('sha256').update(bareTemplate(template)).digest('hex').slice(0, 15)).toString(36).slice(0, 10);
}

const replicasOf = (rs: KubeObject): number => (rs.spec as { replicas?: number }).replicas ?? 0;
const statusOf = (rs: KubeObject): RsStatus => (rs.status ?? {}) as RsStatus;
const revisionOf = (rs: KubeObject): number => Number(rs.metadata.annotations?.[REVISION] ?? 0);

export function startDeploymentController(client: Client, log: (line: string) => void): () => void {
  const queue = new WorkQueue((key) => sync(key), (key, e) => log(`deployment controller: ${key}: ${(e as Error).message}`));

  function sync(key: string): void {
    const [ns, name] = key.split('/') as [string, string];
    const d = client.get(DEPLOYMENT, ns, name);
    if (!d || d.metadata.deletionTimestamp) return;
    const spec = (d.spec ?? {}) as DeploymentSpec;
    const desired = spec.replicas ?? 1;
    const uid = d.metadata.uid as string;
    const owned = client.list(RS, ns).filter((rs) => rs.metadata.ownerReferences?.some((r) => r.uid === uid && r.controller));
    const hash = templateHash(spec.template);
    const maxRevision = Math.max(0, ...owned.map(revisionOf));
    // The new ReplicaSet is the one whose template is the Deployment's (kubernetes' EqualIgnoreHash): by
    // the hash label first, then by the templates themselves, so a `rollout undo` whose template came back
    // with other defaults or key order still finds its old ReplicaSet.
    const sameTemplate = (): KubeObject | undefined => {
      const wanted = bareTemplate(spec.template);
      return owned.find((rs) => bareTemplate((rs.spec as DeploymentSpec).template) === wanted);
    };
    let current = owned.find((rs) => rs.metadata.labels?.['pod-template-hash'] === hash) ?? sameTemplate();
    if (!current) {
      const labels = { ...(spec.template?.metadata?.labels ?? {}), 'pod-template-hash': hash };
      current = client.create(RS, ns, {
        apiVersion: 'apps/v1', kind: 'ReplicaSet',
        metadata: { name: `${name}-${hash}`, namespace: ns, labels, annotations: { [REVISION]: String(maxRevision + 1), 'deployment.kubernetes.io/desired-replicas': String(desired) }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name, uid, controller: true, blockOwnerDeletion: true }] },
        spec: { replicas: owned.length === 0 ? desired : 0, selector: { matchLabels: { ...(spec.selector?.matchLabels ?? spec.template?.metadata?.labels ?? {}), 'pod-template-hash': hash } }, template: { ...spec.template, metadata: { ...(spec.template?.metadata ?? {}), labels } } },
      });
      return queue.add(key); // the rest once it exists
    }
    if (revisionOf(current) < maxRevision) {
      // Rolled back to an older template: its ReplicaSet is the newest revision again.
      current = client.patch(RS, ns, current.metadata.name as string, { metadata: { annotations: { [REVISION]: String(maxRevision + 1) } } });
    }
    const old = owned.filter((rs) => rs.metadata.uid !== current?.metadata.uid);
    const recreate = spec.strategy?.type === 'Recreate';
    const surge = recreate ? 0 : scaled(spec.strategy?.rollingUpdate?.maxSurge, desired, true, '25%');
    let unavailable = recreate ? desired : scaled(spec.strategy?.rollingUpdate?.maxUnavailable, desired, false, '25%');
    if (surge === 0 && unavailable === 0) unavailable = 1;
    const scale = (rs: KubeObject, n: number): void => {
      if (replicasOf(rs) !== n) client.patch(RS, ns, rs.metadata.name as string, { spec: { replicas: n } });
    };
    const oldPods = old.reduce((n, rs) => n + Math.max(replicasOf(rs), statusOf(rs).replicas ?? 0), 0);
    if (recreate) {
      for (const rs of old) scale(rs, 0);
      if (oldPods === 0) scale(current, desired);
    } else {
      // Up: the new set grows while all pods stay within desired + maxSurge.
      const all = replicasOf(current) + old.reduce((n, rs) => n + replicasOf(rs), 0);
      if (replicasOf(current) < desired && all < desired + surge) scale(current, Math.min(desired, replicasOf(current) + desired + surge - all));
      if (replicasOf(current) > desired) scale(current, desired);
      // Down: old sets shrink while at least desired - maxUnavailable pods stay available.
      const available = owned.reduce((n, rs) => n + (statusOf(rs).availableReplicas ?? 0), 0);
      const newUnavailable = Math.max(0, replicasOf(current) - (statusOf(current).availableReplicas ?? 0));
      let removable = Math.max(0, all - (desired - unavailable) - newUnavailable);
      // First the old pods that are not available anyway, then the available ones.
      for (const rs of [...old].sort((a, b) => revisionOf(a) - revisionOf(b))) {
        const idle = Math.max(0, replicasOf(rs) - (statusOf(rs).availableReplicas ?? 0));
        if (idle > 0) scale(rs, replicasOf(rs) - idle);
      }
      removable = Math.max(0, Math.min(removable, available - (desired - unavailable)));
      for (const rs of [...old].sort((a, b) => revisionOf(a) - revisionOf(b))) {
        const fresh = client.get(RS, ns, rs.metadata.name as string) ?? rs;
        const cut = Math.min(removable, replicasOf(fresh));
        if (cut > 0) {
          scale(fresh, replicasOf(fresh) - cut);
          removable -= cut;
        }
      }
    }
    // Status, as kubectl rollout status reads it.
    const sets = client.list(RS, ns).filter((rs) => rs.metadata.ownerReferences?.some((r) => r.uid === uid && r.controller));
    const cur = sets.find((rs) => rs.metadata.uid === current?.metadata.uid);
    const sum = (f: (s: RsStatus) => number | undefined): number => sets.reduce((n, rs) => n + (f(statusOf(rs)) ?? 0), 0);
    const replicas = sum((s) => s.replicas);
    const availableReplicas = sum((s) => s.availableReplicas);
    const updatedReplicas = cur ? statusOf(cur).replicas ?? 0 : 0;
    const done = updatedReplicas === desired && replicas === desired && availableReplicas === desired;
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const prevConds = ((d.status as { conditions?: { type: string; status: string; reason: string; lastTransitionTime?: string }[] } | undefined)?.conditions ?? []);
    const cond = (type: string, ok: boolean, reason: string, message: string): Record<string, unknown> => {
      const was = prevConds.find((c) => c.type === type);
      const status = ok ? 'True' : 'False';
      return { type, status, reason, message, lastUpdateTime: was?.reason === reason ? (was as { lastUpdateTime?: string }).lastUpdateTime ?? now : now, lastTransitionTime: was?.status === status ? was.lastTransitionTime ?? now : now };
    };
    const status = {
      observedGeneration: d.metadata.generation ?? 1,
      replicas,
      updatedReplicas,
      readyReplicas: sum((s) => s.readyReplicas),
      availableReplicas,
      unavailableReplicas: Math.max(0, desired - availableReplicas),
      conditions: [
        cond('Available', availableReplicas >= desired - unavailable, availableReplicas >= desired - unavailable ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable', availableReplicas >= desired - unavailable ? 'Deployment has minimum availability.' : 'Deployment does not have minimum availability.'),
        cond('Progressing', true, done ? 'NewReplicaSetAvailable' : 'ReplicaSetUpdated', done ? `ReplicaSet "${String(cur?.metadata.name)}" has successfully progressed.` : `ReplicaSet "${String(cur?.metadata.name)}" is progressing.`),
      ],
    };
    const prev = JSON.stringify({ ...(d.status as object), conditions: undefined });
    if (prev !== JSON.stringify({ ...status, conditions: undefined }) || JSON.stringify(prevConds.map((c) => [c.type, c.status, c.reason])) !== JSON.stringify(status.conditions.map((c) => [c['type'], c['status'], c['reason']]))) {
      client.patchStatus(DEPLOYMENT, ns, name, status);
    }
    // spec.revisionHistoryLimit (10): the oldest ReplicaSets scaled to nothing go, as `rollout history` then shows.
    const idle = sets.filter((rs) => rs.metadata.uid !== cur?.metadata.uid && replicasOf(rs) === 0 && (statusOf(rs).replicas ?? 0) === 0).sort((a, b) => revisionOf(a) - revisionOf(b));
    for (const rs of idle.slice(0, Math.max(0, idle.length - (spec.revisionHistoryLimit ?? 10)))) {
      client.delete(RS, ns, rs.metadata.name as string);
    }
    // The revision on the Deployment, as kubectl rollout history shows it.
    const rev = String(revisionOf(cur ?? current));
    if (d.metadata.annotations?.[REVISION] !== rev) client.patch(DEPLOYMENT, ns, name, { metadata: { annotations: { [REVISION]: rev } } });
  }

  const cancel = queueOwners(client, queue, DEPLOYMENT, RS);
  return () => {
    cancel();
    queue.stop();
  };
}
