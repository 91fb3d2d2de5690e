// The kinds the API server serves, as discovery lists them: group, version,
// plural resource, scope, verbs, short names. One table drives discovery,
// routing and storage keys, so a kind added here is served everywhere.

export interface ResourceType {
  /** "" for the core group. */
  group: string;
  version: string;
  kind: string;
  /** Plural, lower case: the URL segment ("pods"). */
  resource: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  /** Subresources served ("status", "scale", "log"...). */
  subresources: string[];
  /** The key prefix in storage: the same for every version of a kind (extensions/v1beta1 and apps/v1 Deployments are one object). */
  storage: string;
}

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function t(group: string, version: string, kind: string, resource: string, namespaced: boolean, shortNames: string[] = [], subresources: string[] = [], storage?: string): ResourceType {
  return { group, version, kind, resource, singular: kind.toLowerCase(), namespaced, shortNames, subresources, storage: storage ?? `${group || 'core'}/${resource}` };
}

export const RESOURCES: readonly ResourceType[] = [
  t('', 'v1', 'Namespace', 'namespaces', false, ['ns'], ['status']),
  t('', 'v1', 'Node', 'nodes', false, ['no'], ['status']),
  t('', 'v1', 'Pod', 'pods', true, ['po'], ['status', 'log', 'exec', 'portforward', 'attach', 'binding']),
  t('', 'v1', 'Service', 'services', true, ['svc'], ['status']),
  t('', 'v1', 'Endpoints', 'endpoints', true, ['ep']),
  t('', 'v1', 'ConfigMap', 'configmaps', true, ['cm']),
  t('', 'v1', 'Secret', 'secrets', true),
  t('', 'v1', 'ServiceAccount', 'serviceaccounts', true, ['sa']),
  t('', 'v1', 'Event', 'events', true, ['ev']),
  t('', 'v1', 'ReplicationController', 'replicationcontrollers', true, ['rc'], ['status', 'scale']),
  t('', 'v1', 'ResourceQuota', 'resourcequotas', true, ['quota'], ['status']),
  t('', 'v1', 'LimitRange', 'limitranges', true, ['limits']),
  t('apps', 'v1', 'Deployment', 'deployments', true, ['deploy'], ['status', 'scale']),
  t('apps', 'v1', 'ReplicaSet', 'replicasets', true, ['rs'], ['status', 'scale']),
  t('apps', 'v1', 'StatefulSet', 'statefulsets', true, ['sts'], ['status', 'scale']),
  // Old tutorials' Deployments: the same objects as apps/v1's (no short name: "deploy" is apps/v1's).
  t('extensions', 'v1beta1', 'Deployment', 'deployments', true, [], ['status', 'scale'], 'apps/deployments'),
  // Listed so that kubectl, checking for a CRD of an unknown kind, finds none and says "no matches for kind".
  t('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions', false, ['crd', 'crds'], ['status']),
];

export function verbsOf(_r: ResourceType): string[] {
  return VERBS;
}

export function groupVersion(r: { group: string; version: string }): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

/** The type served at /api/v1/<resource> or /apis/<group>/<version>/<resource>. */
export function findResource(group: string, version: string, resource: string): ResourceType | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.resource === resource);
}

/** The type of an object by its apiVersion and kind. */
export function findKind(apiVersion: string, kind: string): ResourceType | undefined {
  return RESOURCES.find((r) => groupVersion(r) === apiVersion && r.kind === kind);
}

/** Groups and their versions, in discovery order. */
export function groups(): { name: string; versions: string[] }[] {
  const out: { name: string; versions: string[] }[] = [];
  for (const r of RESOURCES) {
    if (!r.group) continue;
    let g = out.find((x) => x.name === r.group);
    if (!g) out.push((g = { name: r.group, versions: [] }));
    if (!g.versions.includes(r.version)) g.versions.push(r.version);
  }
  return out;
}

/**
 * The storage key of an object: one prefix per kind, then namespace and
 * name ("/registry/core/pods/default/web"), so a list of a namespace, or of
 * all of them, is a prefix scan.
 */
export function keyOf(r: ResourceType, namespace: string | null, name?: string): string {
  const base = `/registry/${r.storage}/`;
  if (!r.namespaced) return name === undefined ? base : base + name;
  if (namespace === null) return base;
  return name === undefined ? `${base}${namespace}/` : `${base}${namespace}/${name}`;
}
