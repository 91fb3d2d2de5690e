// Kubernetes objects as the API server handles them: plain JSON with the
// usual metadata, the Status document errors travel in, and the checks and
// defaults every write goes through (pure functions; rest.ts stores).

import { randomUUID } from 'node:crypto';
import { groupVersion, type ResourceType } from './resources';

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[];
  finalizers?: string[];
  [k: string]: unknown;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: unknown;
  status?: unknown;
  [k: string]: unknown;
}

/** An API error: the HTTP code and the Status document kubectl prints. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: { name?: string; kind?: string; group?: string; causes?: { reason: string; message: string; field: string }[] },
  ) {
    super(message);
    this.name = 'ApiError';
  }

  status(): Record<string, unknown> {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason, ...(this.details ? { details: this.details } : {}), code: this.code };
  }
}

export function notFound(r: ResourceType, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${r.resource}${r.group ? '.' + r.group : ''} "${name}" not found`, { name, group: r.group, kind: r.resource });
}

export function conflict(r: ResourceType, name: string, why: string): ApiError {
  return new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${r.resource}${r.group ? '.' + r.group : ''} "${name}": ${why}`, { name, group: r.group, kind: r.resource });
}

/** 422 with the fields at fault, as kubectl shows them ("The Pod "x" is invalid: spec.containers: Required value"). */
export function invalid(r: ResourceType, name: string, causes: { field: string; message: string }[]): ApiError {
  const list = causes.map((c) => `${c.field}: ${c.message}`).join(', ');
  return new ApiError(422, 'Invalid', `${r.kind} "${name}" is invalid: ${list}`, {
    name, group: r.group, kind: r.kind,
    causes: causes.map((c) => ({ reason: 'FieldValueInvalid', message: c.message, field: c.field })),
  });
}

const NAME_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
/** DNS-1123 labels: namespaces and services are those. */
const LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The checks any object of `r` must pass before it is stored; [] when it does. */
export function validate(r: ResourceType, obj: KubeObject): { field: string; message: string }[] {
  const out: { field: string; message: string }[] = [];
  const name = obj.metadata?.name ?? '';
  const strict = r.kind === 'Namespace' || r.kind === 'Service';
  if (!name) out.push({ field: 'metadata.name', message: 'Required value: name or generateName is required' });
  else if (name.length > (strict ? 63 : 253) || !(strict ? LABEL_RE : NAME_RE).test(name)) {
    out.push({ field: 'metadata.name', message: `Invalid value: "${name}": a lowercase RFC 1123 ${strict ? 'label' : 'subdomain'} must consist of lower case alphanumeric characters, '-'${strict ? '' : " or '.'"}, and must start and end with an alphanumeric character` });
  }
  for (const [k, v] of Object.entries(obj.metadata?.labels ?? {})) {
    if (typeof v !== 'string') out.push({ field: `metadata.labels[${k}]`, message: 'Invalid value: a label value must be a string' });
  }
  if (r.kind === 'Pod') out.push(...validatePodSpec(obj.spec, 'spec'));
  if (['ReplicationController', 'ReplicaSet', 'Deployment', 'StatefulSet'].includes(r.kind)) {
    const spec = (obj.spec ?? {}) as { template?: { spec?: unknown }; replicas?: unknown };
    if (spec.replicas !== undefined && (typeof spec.replicas !== 'number' || spec.replicas < 0)) out.push({ field: 'spec.replicas', message: `Invalid value: ${JSON.stringify(spec.replicas)}: must be greater than or equal to 0` });
    if (!spec.template) out.push({ field: 'spec.template', message: 'Required value' });
    else out.push(...validatePodSpec(spec.template.spec, 'spec.template.spec'));
  }
  return out;
}

function validatePodSpec(spec: unknown, at: string): { field: string; message: string }[] {
  const out: { field: string; message: string }[] = [];
  const s = (spec ?? {}) as { containers?: unknown };
  if (!Array.isArray(s.containers) || s.containers.length === 0) {
    out.push({ field: `${at}.containers`, message: 'Required value' });
    return out;
  }
  s.containers.forEach((c: unknown, i: number) => {
    const x = (c ?? {}) as { name?: unknown; image?: unknown };
    if (typeof x.name !== 'string' || !LABEL_RE.test(x.name)) out.push({ field: `${at}.containers[${i}].name`, message: x.name === undefined ? 'Required value' : `Invalid value: ${JSON.stringify(x.name)}` });
    if (typeof x.image !== 'string' || !x.image) out.push({ field: `${at}.containers[${i}].image`, message: 'Required value' });
  });
  return out;
}

/** metadata for a new object: uid, creation time, generation, and the name from generateName. */
export function prepareCreate(r: ResourceType, obj: KubeObject, namespace: string | null): KubeObject {
  const meta: ObjectMeta = { ...(obj.metadata ?? {}) };
  if (!meta.name && meta.generateName) meta.name = meta.generateName + randomUUID().replace(/-/g, '').slice(0, 5);
  if (r.namespaced) meta.namespace = namespace ?? meta.namespace ?? 'default';
  else delete meta.namespace;
  meta.uid = randomUUID();
  meta.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  meta.generation = 1;
  delete meta.deletionTimestamp;
  const out: KubeObject = { ...obj, apiVersion: groupVersion(r), kind: r.kind, metadata: meta };
  applyDefaults(r, out);
  foldStringData(out);
  return out;
}

/** Fields the server sets, as Kubernetes' defaulting does for the ones our controllers read. */
function applyDefaults(r: ResourceType, obj: KubeObject): void {
  if (r.kind === 'Pod') {
    defaultPodSpec(obj.spec as Record<string, unknown>);
    obj.status = { phase: 'Pending', qosClass: 'BestEffort', ...(obj.status as object | undefined) };
  }
  if (r.kind === 'Namespace') {
    obj.spec = { finalizers: ['kubernetes'], ...(obj.spec as object | undefined) };
    obj.status = { phase: 'Active' };
  }
  if (['ReplicationController', 'ReplicaSet', 'Deployment', 'StatefulSet'].includes(r.kind)) {
    const spec = obj.spec as { replicas?: number; selector?: unknown; template?: { metadata?: { labels?: Record<string, string> }; spec?: Record<string, unknown> } };
    if (spec.replicas === undefined) spec.replicas = 1;
    // extensions/v1beta1 and v1 ReplicationControllers default the selector to the template's labels.
    if (spec.selector === undefined && spec.template?.metadata?.labels) spec.selector = r.kind === 'ReplicationController' ? { ...spec.template.metadata.labels } : { matchLabels: { ...spec.template.metadata.labels } };
    if (spec.template?.spec) defaultPodSpec(spec.template.spec);
  }
  if (r.kind === 'Service') {
    const spec = (obj.spec ?? (obj.spec = {})) as { type?: string; sessionAffinity?: string; ports?: { port: number; targetPort?: number | string; protocol?: string }[] };
    spec.type ??= 'ClusterIP';
    spec.sessionAffinity ??= 'None';
    for (const p of spec.ports ?? []) {
      p.protocol ??= 'TCP';
      p.targetPort ??= p.port;
    }
  }
}

function defaultPodSpec(spec: Record<string, unknown> | undefined): void {
  if (!spec) return;
  spec['restartPolicy'] ??= 'Always';
  spec['terminationGracePeriodSeconds'] ??= 30;
  spec['dnsPolicy'] ??= 'ClusterFirst';
  spec['schedulerName'] ??= 'default-scheduler';
  for (const c of (spec['containers'] as Record<string, unknown>[] | undefined) ?? []) {
    const image = String(c['image'] ?? '');
    c['imagePullPolicy'] ??= image.endsWith(':latest') || !/:[^/]+$/.test(image) ? 'Always' : 'IfNotPresent';
    c['terminationMessagePath'] ??= '/dev/termination-log';
    c['terminationMessagePolicy'] ??= 'File';
  }
}

/** An update keeps what the client may not change: uid, creation time; generation moves with spec. */
export function prepareUpdate(r: ResourceType, next: KubeObject, cur: KubeObject): KubeObject {
  const meta: ObjectMeta = { ...next.metadata, uid: cur.metadata.uid, creationTimestamp: cur.metadata.creationTimestamp, namespace: cur.metadata.namespace, name: cur.metadata.name };
  if (!r.namespaced) delete meta.namespace;
  if (cur.metadata.deletionTimestamp) meta.deletionTimestamp = cur.metadata.deletionTimestamp;
  const specChanged = JSON.stringify(next.spec) !== JSON.stringify(cur.spec);
  meta.generation = (cur.metadata.generation ?? 1) + (specChanged ? 1 : 0);
  const out = { ...next, apiVersion: groupVersion(r), kind: r.kind, metadata: meta };
  foldStringData(out);
  return out;
}

/** A Secret's stringData is write-only: it lands in data, base64, as the API server stores it. */
function foldStringData(o: KubeObject): void {
  if (o.kind !== 'Secret' || !o['stringData']) return;
  const data = { ...((o['data'] ?? {}) as Record<string, string>) };
  for (const [k, v] of Object.entries(o['stringData'] as Record<string, string>)) data[k] = Buffer.from(String(v)).toString('base64');
  o['data'] = data;
  delete o['stringData'];
  if (o['type'] === undefined) o['type'] = 'Opaque';
}

// Strict field validation (fieldValidation=Strict, what kubectl 1.27+
// asks for): fields no Kubernetes type has are refused, by path, as the
// API server's strict decoder does. The kinds' fields as the API defines them.
const META = ['name', 'generateName', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'labels', 'annotations', 'ownerReferences', 'finalizers', 'managedFields', 'selfLink'];
const TOP: Record<string, string[]> = {
  ConfigMap: ['data', 'binaryData', 'immutable'],
  Secret: ['data', 'stringData', 'type', 'immutable'],
  Endpoints: ['subsets'],
  ServiceAccount: ['secrets', 'imagePullSecrets', 'automountServiceAccountToken'],
  Event: ['involvedObject', 'reason', 'message', 'source', 'firstTimestamp', 'lastTimestamp', 'count', 'type', 'eventTime', 'series', 'action', 'related', 'reportingComponent', 'reportingInstance'],
};
const POD_SPEC = ['volumes', 'initContainers', 'containers', 'ephemeralContainers', 'restartPolicy', 'terminationGracePeriodSeconds', 'activeDeadlineSeconds', 'dnsPolicy', 'nodeSelector', 'serviceAccountName', 'serviceAccount', 'automountServiceAccountToken', 'nodeName', 'hostNetwork', 'hostPID', 'hostIPC', 'shareProcessNamespace', 'securityContext', 'imagePullSecrets', 'hostname', 'subdomain', 'affinity', 'schedulerName', 'tolerations', 'hostAliases', 'priorityClassName', 'priority', 'dnsConfig', 'readinessGates', 'runtimeClassName', 'enableServiceLinks', 'preemptionPolicy', 'overhead', 'topologySpreadConstraints', 'setHostnameAsFQDN', 'os', 'hostUsers', 'schedulingGates', 'resourceClaims', 'resources'];
const CONTAINER = ['name', 'image', 'command', 'args', 'workingDir', 'ports', 'envFrom', 'env', 'resources', 'resizePolicy', 'restartPolicy', 'volumeMounts', 'volumeDevices', 'livenessProbe', 'readinessProbe', 'startupProbe', 'lifecycle', 'terminationMessagePath', 'terminationMessagePolicy', 'imagePullPolicy', 'securityContext', 'stdin', 'stdinOnce', 'tty'];
const WORKLOAD_SPEC: Record<string, string[]> = {
  ReplicationController: ['replicas', 'minReadySeconds', 'selector', 'template'],
  ReplicaSet: ['replicas', 'minReadySeconds', 'selector', 'template'],
  Deployment: ['replicas', 'selector', 'template', 'strategy', 'minReadySeconds', 'revisionHistoryLimit', 'paused', 'progressDeadlineSeconds', 'rollbackTo'],
  StatefulSet: ['replicas', 'selector', 'template', 'volumeClaimTemplates', 'serviceName', 'podManagementPolicy', 'updateStrategy', 'revisionHistoryLimit', 'minReadySeconds', 'persistentVolumeClaimRetentionPolicy', 'ordinals'],
};
const SERVICE_SPEC = ['ports', 'selector', 'clusterIP', 'clusterIPs', 'type', 'externalIPs', 'sessionAffinity', 'loadBalancerIP', 'loadBalancerSourceRanges', 'externalName', 'externalTrafficPolicy', 'healthCheckNodePort', 'publishNotReadyAddresses', 'sessionAffinityConfig', 'ipFamilies', 'ipFamilyPolicy', 'allocateLoadBalancerNodePorts', 'loadBalancerClass', 'internalTrafficPolicy', 'trafficDistribution'];

/** Fields of `obj` that its kind does not have ("spec.containers[0].imag"), and values of the wrong type. */
export function strictProblems(r: ResourceType, obj: KubeObject): string[] {
  const out: string[] = [];
  const unknown = (v: unknown, known: readonly string[], at: string): void => {
    if (!v || typeof v !== 'object' || Array.isArray(v)) return;
    for (const k of Object.keys(v)) if (!known.includes(k)) out.push(`unknown field "${at}${k}"`);
  };
  unknown(obj, ['apiVersion', 'kind', 'metadata', 'spec', 'status', ...(TOP[r.kind] ?? [])], '');
  unknown(obj.metadata, META, 'metadata.');
  const podSpec = (spec: unknown, at: string): void => {
    unknown(spec, POD_SPEC, `${at}.`);
    for (const list of ['containers', 'initContainers'] as const) {
      const cs = (spec as Record<string, unknown> | undefined)?.[list];
      if (cs !== undefined && !Array.isArray(cs)) out.push(`${at}.${list}: expected a list, got ${typeof cs}`);
      if (Array.isArray(cs)) cs.forEach((c, i) => unknown(c, CONTAINER, `${at}.${list}[${i}].`));
    }
  };
  if (r.kind === 'Pod') podSpec(obj.spec, 'spec');
  if (r.kind === 'Service') unknown(obj.spec, SERVICE_SPEC, 'spec.');
  const workload = WORKLOAD_SPEC[r.kind];
  if (workload) {
    unknown(obj.spec, workload, 'spec.');
    const spec = obj.spec as { replicas?: unknown; template?: { metadata?: unknown; spec?: unknown } } | undefined;
    if (spec?.replicas !== undefined && typeof spec.replicas !== 'number') out.push(`spec.replicas: expected an integer, got ${JSON.stringify(spec.replicas)}`);
    if (spec?.template) {
      unknown(spec.template, ['metadata', 'spec'], 'spec.template.');
      podSpec(spec.template.spec, 'spec.template.spec');
    }
  }
  return out;
}
