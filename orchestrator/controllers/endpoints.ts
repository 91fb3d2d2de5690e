// Endpoints: for each Service with a selector, the addresses of the pods it
// selects, ready ones in `addresses`, the others in `notReadyAddresses`,
// with the service's ports resolved to the pods' (a named targetPort is
// looked up in each pod's container ports). Level-triggered as the other
// controllers: a change to a service or to a pod queues the services of
// that namespace.

import type { KubeObject } from '../api/objects';
import { matchesLabels, selectorRequirements } from '../api/selectors';
import type { Client } from '../client';
import { typeOf } from '../client';
import { WorkQueue } from './queue';

const POD = typeOf('Pod');
const SERVICE = typeOf('Service');
const ENDPOINTS = typeOf('Endpoints');

interface ServicePort { name?: string; port: number; targetPort?: number | string; protocol?: string }

export function podReady(p: KubeObject): boolean {
  return ((p.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** The subsets of a service's Endpoints, from its pods (pure). */
export function endpointSubsets(svc: KubeObject, pods: KubeObject[]): Record<string, unknown>[] {
  const spec = (svc.spec ?? {}) as { selector?: Record<string, string>; ports?: ServicePort[]; publishNotReadyAddresses?: boolean };
  const reqs = selectorRequirements(spec.selector);
  const groups = new Map<string, { addresses: unknown[]; notReadyAddresses: unknown[]; ports: unknown[] }>();
  for (const p of pods) {
    const ip = (p.status as { podIP?: string } | undefined)?.podIP;
    if (!ip || p.metadata.deletionTimestamp || !matchesLabels(reqs, p.metadata.labels)) continue;
    const containerPorts = ((p.spec as { containers?: { ports?: { name?: string; containerPort: number }[] }[] }).containers ?? []).flatMap((c) => c.ports ?? []);
    const ports = (spec.ports ?? []).map((sp) => {
      const t = sp.targetPort ?? sp.port;
      const port = typeof t === 'number' ? t : containerPorts.find((c) => c.name === t)?.containerPort;
      return port === undefined ? null : { ...(sp.name ? { name: sp.name } : {}), port, protocol: sp.protocol ?? 'TCP' };
    }).filter((x) => x !== null);
    const key = JSON.stringify(ports);
    const g = groups.get(key) ?? { addresses: [], notReadyAddresses: [], ports };
    groups.set(key, g);
    const address = { ip, nodeName: (p.spec as { nodeName?: string }).nodeName, targetRef: { kind: 'Pod', namespace: p.metadata.namespace, name: p.metadata.name, uid: p.metadata.uid } };
    (podReady(p) || spec.publishNotReadyAddresses ? g.addresses : g.notReadyAddresses).push(address);
  }
  return [...groups.values()].map((g) => ({
    ...(g.addresses.length ? { addresses: g.addresses } : {}),
    ...(g.notReadyAddresses.length ? { notReadyAddresses: g.notReadyAddresses } : {}),
    ports: g.ports,
  }));
}

export function startEndpointsController(client: Client, log: (line: string) => void): () => void {
  const queue = new WorkQueue((key) => {
    const [ns, name] = key.split('/') as [string, string];
    const svc = client.get(SERVICE, ns, name);
    const cur = client.get(ENDPOINTS, ns, name);
    if (!svc) {
      if (cur && cur.metadata.labels?.['endpoints.mycontainer/managed'] === 'true') client.delete(ENDPOINTS, ns, name);
      return;
    }
    if (!(svc.spec as { selector?: unknown }).selector) return; // endpoints of a selector-less service are the user's
    const subsets = endpointSubsets(svc, client.list(POD, ns));
    if (cur && JSON.stringify(cur['subsets'] ?? []) === JSON.stringify(subsets)) return;
    const body = { apiVersion: 'v1', kind: 'Endpoints', metadata: { name, namespace: ns, labels: { ...(svc.metadata.labels ?? {}), 'endpoints.mycontainer/managed': 'true' } }, subsets };
    if (cur) client.patch(ENDPOINTS, ns, name, { subsets });
    else client.create(ENDPOINTS, ns, body);
  }, (key, e) => log(`endpoints controller: ${key}: ${(e as Error).message}`));
  for (const s of client.list(SERVICE, null)) queue.add(`${String(s.metadata.namespace)}/${String(s.metadata.name)}`);
  const cancel = client.watch([SERVICE, POD], (t, _e, o) => {
    const ns = o.metadata.namespace as string;
    if (t.kind === 'Service') return queue.add(`${ns}/${String(o.metadata.name)}`);
    for (const s of client.list(SERVICE, ns)) queue.add(`${ns}/${String(s.metadata.name)}`);
  });
  return () => {
    cancel();
    queue.stop();
  };
}
