// Discovery: what kubectl reads first to learn which kinds exist, where,
// and with which verbs (/api, /apis, /api/v1, /apis/GROUP/VERSION), and
// /version, which the kubectl dispatcher reads to pick a kubectl.

import { RESOURCES, groupVersion, groups, verbsOf, type ResourceType } from './resources';

/** The Kubernetes version we speak (the API machinery of that release). */
export const KUBE_VERSION = { major: '1', minor: '33', gitVersion: 'v1.33.0-mycontainer' };

export function versionDoc(): Record<string, unknown> {
  return {
    ...KUBE_VERSION,
    gitCommit: 'mycontainer',
    gitTreeState: 'clean',
    buildDate: '2026-01-01T00:00:00Z',
    goVersion: 'none (TypeScript on Node.js)',
    compiler: 'tsc',
    platform: 'linux/amd64',
  };
}

export function apiVersions(serverAddress: string): Record<string, unknown> {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function groupDoc(name: string, versions: string[]): Record<string, unknown> {
  const gv = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { name, versions: gv, preferredVersion: gv[0] };
}

export function apiGroupList(): Record<string, unknown> {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups().map((g) => groupDoc(g.name, g.versions)) };
}

export function apiGroup(name: string): Record<string, unknown> | null {
  const g = groups().find((x) => x.name === name);
  return g ? { kind: 'APIGroup', apiVersion: 'v1', ...groupDoc(g.name, g.versions) } : null;
}

/** The kinds `kubectl get all` lists. */
const ALL = ['Pod', 'Service', 'ReplicationController', 'Deployment', 'ReplicaSet', 'StatefulSet'];

function resourceEntries(r: ResourceType): Record<string, unknown>[] {
  const main = { name: r.resource, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: verbsOf(r), ...(r.shortNames.length ? { shortNames: r.shortNames } : {}), ...(ALL.includes(r.kind) ? { categories: ['all'] } : {}) };
  const subs = r.subresources.map((s) => {
    const kind = s === 'scale' ? 'Scale' : s === 'log' ? 'Pod' : s === 'binding' ? 'Binding' : s === 'exec' || s === 'portforward' || s === 'attach' ? 'PodExecOptions' : r.kind;
    const verbs = s === 'status' || s === 'scale' ? ['get', 'patch', 'update'] : s === 'log' ? ['get'] : s === 'binding' ? ['create'] : ['create', 'get'];
    return { name: `${r.resource}/${s}`, singularName: '', namespaced: r.namespaced, kind, verbs, ...(s === 'scale' ? { group: 'autoscaling', version: 'v1' } : {}) };
  });
  return [main, ...subs];
}

/** APIResourceList of one group version ("v1", "apps/v1"); null if we serve none. */
export function apiResourceList(gv: string): Record<string, unknown> | null {
  const rs = RESOURCES.filter((r) => groupVersion(r) === gv);
  if (rs.length === 0) return null;
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv, resources: rs.flatMap(resourceEntries) };
}
