// Server-side printing: `kubectl get` asks for a meta.k8s.io/v1 Table and
// prints its columns, so the columns of each kind are the API server's
// (those of Kubernetes' own printers); priority 1 columns show with -o wide.

import type { KubeObject } from './objects';
import type { ResourceType } from './resources';

interface Column {
  name: string;
  type: 'string' | 'integer' | 'date';
  format?: string;
  description: string;
  priority: number;
}

type Cell = string | number;
type Printer = { columns: Column[]; cells: (o: KubeObject) => Cell[] };

const col = (name: string, priority = 0, type: Column['type'] = 'string', format = ''): Column => ({ name, type, format, description: name, priority });

/** Kubernetes' duration.HumanDuration, as kubectl's AGE column. */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (d < 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (d < 365 * 2) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}

const age = (o: KubeObject): string => (o.metadata.creationTimestamp ? humanDuration(Date.now() - Date.parse(o.metadata.creationTimestamp)) : '<unknown>');
const get = (o: unknown, ...path: string[]): unknown => path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);
const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
const selectorText = (s: unknown): string => {
  const m = (get(s, 'matchLabels') ?? s) as Record<string, string> | undefined;
  return m && typeof m === 'object' ? Object.entries(m).filter(([, v]) => typeof v === 'string').map(([k, v]) => `${k}=${v}`).join(',') || '<none>' : '<none>';
};
const containersOf = (o: KubeObject): { name: string; image: string }[] => ((get(o, 'spec', 'template', 'spec', 'containers') ?? []) as { name: string; image: string }[]);

function podStatus(o: KubeObject): string {
  if (o.metadata.deletionTimestamp) return 'Terminating';
  const statuses = (get(o, 'status', 'containerStatuses') ?? []) as { state?: Record<string, { reason?: string }> }[];
  for (const s of statuses) {
    const waiting = s.state?.['waiting']?.reason;
    if (waiting) return waiting;
    const term = s.state?.['terminated']?.reason;
    if (term && get(o, 'status', 'phase') !== 'Succeeded') return term;
  }
  return String(get(o, 'status', 'reason') ?? get(o, 'status', 'phase') ?? 'Pending');
}

const PRINTERS: Record<string, Printer> = {
  Pod: {
    columns: [col('Name', 0, 'string', 'name'), col('Ready'), col('Status'), col('Restarts', 0, 'string'), col('Age'), col('IP', 1), col('Node', 1), col('Nominated Node', 1), col('Readiness Gates', 1)],
    cells: (o) => {
      const statuses = (get(o, 'status', 'containerStatuses') ?? []) as { ready?: boolean; restartCount?: number }[];
      const total = ((get(o, 'spec', 'containers') ?? []) as unknown[]).length;
      const ready = statuses.filter((s) => s.ready).length;
      const restarts = statuses.reduce((n, s) => n + num(s.restartCount), 0);
      return [o.metadata.name ?? '', `${ready}/${total}`, podStatus(o), String(restarts), age(o), String(get(o, 'status', 'podIP') ?? '<none>'), String(get(o, 'spec', 'nodeName') ?? '<none>'), '<none>', '<none>'];
    },
  },
  Namespace: {
    columns: [col('Name', 0, 'string', 'name'), col('Status'), col('Age')],
    cells: (o) => [o.metadata.name ?? '', String(get(o, 'status', 'phase') ?? 'Active'), age(o)],
  },
  // Kubernetes' event printer: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE (SOURCE, FIRST SEEN, COUNT, NAME with -o wide)
  Event: {
    columns: [col('Last Seen'), col('Type'), col('Reason'), col('Object'), col('Subobject', 1), col('Source', 1), col('Message'), col('First Seen', 1), col('Count', 1), col('Name', 1, 'string', 'name')],
    cells: (o) => {
      const e = o as KubeObject & { lastTimestamp?: string; firstTimestamp?: string; eventTime?: string; type?: string; reason?: string; message?: string; count?: number; involvedObject?: { kind?: string; name?: string; fieldPath?: string }; source?: { component?: string; host?: string } };
      const ago = (t: string | undefined): string => (t ? humanDuration(Date.now() - Date.parse(t)) : '<unknown>');
      const inv = e.involvedObject ?? {};
      return [ago(e.lastTimestamp ?? e.eventTime), e.type ?? '', e.reason ?? '', `${(inv.kind ?? '').toLowerCase()}/${inv.name ?? ''}`, inv.fieldPath ?? '', [e.source?.component, e.source?.host].filter(Boolean).join(', '), e.message ?? '', ago(e.firstTimestamp ?? e.eventTime), e.count ?? 1, o.metadata.name ?? ''];
    },
  },
  Node: {
    columns: [col('Name', 0, 'string', 'name'), col('Status'), col('Roles'), col('Age'), col('Version'), col('Internal-IP', 1), col('External-IP', 1), col('OS-Image', 1), col('Kernel-Version', 1), col('Container-Runtime', 1)],
    cells: (o) => {
      const conditions = (get(o, 'status', 'conditions') ?? []) as { type: string; status: string }[];
      const ready = conditions.find((c) => c.type === 'Ready');
      const roles = Object.keys(o.metadata.labels ?? {}).filter((l) => l.startsWith('node-role.kubernetes.io/')).map((l) => l.slice('node-role.kubernetes.io/'.length));
      const info = (get(o, 'status', 'nodeInfo') ?? {}) as Record<string, string>;
      const addrs = (get(o, 'status', 'addresses') ?? []) as { type: string; address: string }[];
      // "Ready,SchedulingDisabled" after kubectl cordon, as kubectl prints it
      const status = (ready?.status === 'True' ? 'Ready' : 'NotReady') + (get(o, 'spec', 'unschedulable') === true ? ',SchedulingDisabled' : '');
      return [o.metadata.name ?? '', status, roles.join(',') || '<none>', age(o), info['kubeletVersion'] ?? '', addrs.find((a) => a.type === 'InternalIP')?.address ?? '<none>', '<none>', info['osImage'] ?? '', info['kernelVersion'] ?? '', info['containerRuntimeVersion'] ?? ''];
    },
  },
  Service: {
    columns: [col('Name', 0, 'string', 'name'), col('Type'), col('Cluster-IP'), col('External-IP'), col('Port(s)'), col('Age'), col('Selector', 1)],
    cells: (o) => {
      const ports = ((get(o, 'spec', 'ports') ?? []) as { port: number; nodePort?: number; protocol?: string }[]).map((p) => `${p.port}${p.nodePort ? ':' + p.nodePort : ''}/${p.protocol ?? 'TCP'}`);
      return [o.metadata.name ?? '', String(get(o, 'spec', 'type') ?? 'ClusterIP'), String(get(o, 'spec', 'clusterIP') ?? '<none>'), '<none>', ports.join(',') || '<none>', age(o), selectorText(get(o, 'spec', 'selector'))];
    },
  },
  Endpoints: {
    columns: [col('Name', 0, 'string', 'name'), col('Endpoints'), col('Age')],
    cells: (o) => {
      const eps: string[] = [];
      for (const s of (get(o, 'subsets') ?? []) as { addresses?: { ip: string }[]; ports?: { port: number }[] }[]) {
        for (const a of s.addresses ?? []) for (const p of s.ports ?? [{ port: 0 }]) eps.push(p.port ? `${a.ip}:${p.port}` : a.ip);
      }
      return [o.metadata.name ?? '', eps.length > 3 ? `${eps.slice(0, 3).join(',')} + ${eps.length - 3} more...` : eps.join(',') || '<none>', age(o)];
    },
  },
  ConfigMap: {
    columns: [col('Name', 0, 'string', 'name'), col('Data', 0, 'integer'), col('Age')],
    cells: (o) => [o.metadata.name ?? '', Object.keys((o['data'] ?? {}) as object).length + Object.keys((o['binaryData'] ?? {}) as object).length, age(o)],
  },
  Secret: {
    columns: [col('Name', 0, 'string', 'name'), col('Type'), col('Data', 0, 'integer'), col('Age')],
    cells: (o) => [o.metadata.name ?? '', String(o['type'] ?? 'Opaque'), Object.keys((o['data'] ?? {}) as object).length, age(o)],
  },
  Deployment: {
    columns: [col('Name', 0, 'string', 'name'), col('Ready'), col('Up-to-date', 0, 'integer'), col('Available', 0, 'integer'), col('Age'), col('Containers', 1), col('Images', 1), col('Selector', 1)],
    cells: (o) => [o.metadata.name ?? '', `${num(get(o, 'status', 'readyReplicas'))}/${num(get(o, 'spec', 'replicas'))}`, num(get(o, 'status', 'updatedReplicas')), num(get(o, 'status', 'availableReplicas')), age(o), containersOf(o).map((c) => c.name).join(','), containersOf(o).map((c) => c.image).join(','), selectorText(get(o, 'spec', 'selector'))],
  },
  StatefulSet: {
    columns: [col('Name', 0, 'string', 'name'), col('Ready'), col('Age'), col('Containers', 1), col('Images', 1)],
    cells: (o) => [o.metadata.name ?? '', `${num(get(o, 'status', 'readyReplicas'))}/${num(get(o, 'spec', 'replicas'))}`, age(o), containersOf(o).map((c) => c.name).join(','), containersOf(o).map((c) => c.image).join(',')],
  },
};

const REPLICAS: Printer = {
  columns: [col('Name', 0, 'string', 'name'), col('Desired', 0, 'integer'), col('Current', 0, 'integer'), col('Ready', 0, 'integer'), col('Age'), col('Containers', 1), col('Images', 1), col('Selector', 1)],
  cells: (o) => [o.metadata.name ?? '', num(get(o, 'spec', 'replicas')), num(get(o, 'status', 'replicas')), num(get(o, 'status', 'readyReplicas')), age(o), containersOf(o).map((c) => c.name).join(','), containersOf(o).map((c) => c.image).join(','), selectorText(get(o, 'spec', 'selector'))],
};
PRINTERS['ReplicaSet'] = REPLICAS;
PRINTERS['ReplicationController'] = REPLICAS;

const DEFAULT: Printer = {
  columns: [col('Name', 0, 'string', 'name'), col('Age')],
  cells: (o) => [o.metadata.name ?? '', age(o)],
};

/** A Table of `items`, with each row's object as PartialObjectMetadata (kubectl's default includeObject). */
export function toTable(r: ResourceType, items: KubeObject[], resourceVersion: string, includeObject: 'None' | 'Metadata' | 'Object' = 'Metadata'): Record<string, unknown> {
  const p = PRINTERS[r.kind] ?? DEFAULT;
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: p.columns,
    rows: items.map((o) => ({
      cells: p.cells(o),
      ...(includeObject === 'None' ? {} : { object: includeObject === 'Object' ? o : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata } }),
    })),
  };
}
