// The REST verbs over storage, for every kind of resources.ts: get, list
// (label and field selectors, all namespaces), watch (chunked JSON events,
// from a resourceVersion), create, update (compare on resourceVersion:
// 409 when it moved), patch (merge, strategic merge, JSON patch), delete
// (a namespace takes what is in it), and the status and scale
// subresources. Errors are ApiErrors; server.ts writes them as Status.

import type { ServerResponse } from 'node:http';
import { StoreError, REVISION, type Store, type Stored, type WatchEvent } from '../storage/types';
import { ApiError, conflict, invalid, notFound, prepareCreate, prepareUpdate, strictProblems, validate, type KubeObject } from './objects';
import { jsonPatch, mergePatch, strategicMergePatch } from './patch';
import { RESOURCES, groupVersion, keyOf, type ResourceType } from './resources';
import { matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors';
import { toTable } from './table';
import { allocate, DEFAULT_SERVICE_NETWORK, type ServiceNetwork } from './allocate';
import { applyLimitRanges, exceeded } from './admission';

export interface Target {
  type: ResourceType;
  /** null: all namespaces (a list or watch), or a cluster-scoped kind. */
  namespace: string | null;
  name?: string;
  subresource?: string;
}

export interface Call {
  method: string;
  target: Target;
  query: URLSearchParams;
  /** The Accept header asks for a Table (kubectl get). */
  table: boolean;
  body: unknown;
  contentType: string;
}

/** What a handler answers: a JSON document, or a stream it writes itself (watch). */
export type Reply = { code: number; body: unknown } | { stream: (res: ServerResponse) => void };

/** The object's JSON for the store, its resourceVersion the revision the write will get. */
function withRevision(o: KubeObject): string {
  return JSON.stringify({ ...o, metadata: { ...o.metadata, resourceVersion: '' } }).replace('"resourceVersion":""', `"resourceVersion":${REVISION}`);
}

function parse(s: Stored): KubeObject {
  return JSON.parse(s.value) as KubeObject;
}

function storeError(e: unknown, t: Target): never {
  if (e instanceof StoreError) {
    const name = t.name ?? '';
    if (e.code === 'NotFound') throw notFound(t.type, name);
    if (e.code === 'AlreadyExists') throw new ApiError(409, 'AlreadyExists', `${t.type.resource}${t.type.group ? '.' + t.type.group : ''} "${name}" already exists`, { name, group: t.type.group, kind: t.type.resource });
    if (e.code === 'Conflict') throw conflict(t.type, name, 'the object has been modified; please apply your changes to the latest version and try again');
    if (e.code === 'Gone') throw new ApiError(410, 'Expired', `too old resource version: ${e.message}`);
  }
  throw e;
}

/** What `kubectl logs` reads: the node agent's (wired by server.ts, as the API server proxies to kubelet). */
export type PodLogs = (pod: KubeObject, q: URLSearchParams, res: ServerResponse, alive: () => boolean) => void;

export class Rest {
  /** Set when a node agent runs in this process. */
  podLogs: PodLogs | null = null;
  /** --service-cidr and --service-node-port-range. */
  serviceNetwork: ServiceNetwork = DEFAULT_SERVICE_NETWORK;

  constructor(private readonly store: Store) {}

  handle(c: Call): Reply {
    const t = c.target;
    if (t.subresource === 'status') return this.status(c);
    if (t.subresource === 'scale') return this.scale(c);
    if (t.subresource === 'binding' && t.type.kind === 'Pod') return this.bind(c);
    if (t.subresource === 'log' && t.type.kind === 'Pod' && c.method === 'GET') {
      const pod = this.read(t);
      const logs = this.podLogs;
      if (!logs) throw new ApiError(400, 'BadRequest', `no node agent runs here to read the logs of pod "${t.name ?? ''}" (start the server with --container-runtime-endpoint)`);
      const key = keyOf(t.type, t.namespace, t.name);
      const uid = pod.metadata.uid;
      return { stream: (res) => logs(pod, c.query, res, () => {
        const s = this.store.get(key);
        return s !== null && (JSON.parse(s.value) as KubeObject).metadata.uid === uid && !(JSON.parse(s.value) as KubeObject).metadata.deletionTimestamp;
      }) };
    }
    if (t.subresource) throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${t.type.resource}/${t.subresource})`);
    if (t.name === undefined) {
      if (c.method === 'GET') return c.query.get('watch') === 'true' || c.query.get('watch') === '1' ? this.watch(c) : this.list(c);
      if (c.method === 'POST') return this.create(c);
      if (c.method === 'DELETE') return this.deleteCollection(c);
    } else {
      if (c.method === 'GET') return { code: 200, body: this.output(c, this.read(t)) };
      if (c.method === 'PUT') return this.update(c);
      if (c.method === 'PATCH') return this.patch(c);
      if (c.method === 'DELETE') return this.remove(c);
    }
    throw new ApiError(405, 'MethodNotAllowed', `${c.method} is not supported on ${t.type.resource}`);
  }

  /** fieldValidation=Strict: unknown or mistyped fields are a 400, and nothing is written (Warn: a warning header; Ignore: nothing). */
  private strict(c: Call, obj: KubeObject): void {
    const mode = c.query.get('fieldValidation') ?? 'Warn';
    if (mode === 'Ignore') return;
    const problems = strictProblems(c.target.type, obj);
    if (problems.length === 0) return;
    if (mode === 'Strict') throw new ApiError(400, 'BadRequest', `${c.target.type.kind} in version "${c.target.type.version}" cannot be handled as a ${c.target.type.kind}: strict decoding error: ${problems.join(', ')}`);
    this.warnings.push(...problems);
  }

  /** Warnings for the response (Warning headers), cleared per request by the server. */
  warnings: string[] = [];

  /** The pod a streaming request names (exec, attach, port-forward). */
  pod(t: Target): KubeObject {
    return this.read(t);
  }

  private read(t: Target): KubeObject {
    const s = this.store.get(keyOf(t.type, t.namespace, t.name));
    if (!s) throw notFound(t.type, t.name ?? '');
    return parse(s);
  }

  /** The object as asked: itself (in the version of the URL), or a one-row Table. */
  private output(c: Call, o: KubeObject): unknown {
    return c.table ? toTable(c.target.type, [o], o.metadata.resourceVersion ?? '') : { ...o, apiVersion: groupVersion(c.target.type), kind: c.target.type.kind };
  }

  private selected(c: Call): (o: KubeObject) => boolean {
    let labels;
    let fields;
    try {
      labels = parseLabelSelector(c.query.get('labelSelector') ?? '');
      fields = parseFieldSelector(c.query.get('fieldSelector') ?? '');
    } catch (e) {
      throw new ApiError(400, 'BadRequest', `unable to parse the selector: ${(e as Error).message}`);
    }
    return (o) => matchesLabels(labels, o.metadata.labels) && fields(o);
  }

  private list(c: Call): Reply {
    const t = c.target;
    const { items, revision } = this.store.list(keyOf(t.type, t.namespace));
    const keep = this.selected(c);
    const objects = items.map(parse).filter(keep);
    if (c.table) return { code: 200, body: toTable(t.type, objects, String(revision), (c.query.get('includeObject') as 'None' | 'Metadata' | 'Object' | null) ?? 'Metadata') };
    return { code: 200, body: { kind: `${t.type.kind}List`, apiVersion: groupVersion(t.type), metadata: { resourceVersion: String(revision) }, items: objects.map((o) => ({ ...o, apiVersion: groupVersion(t.type), kind: t.type.kind })) } };
  }

  private watch(c: Call): Reply {
    const t = c.target;
    const keep = this.selected(c);
    const rv = c.query.get('resourceVersion');
    const timeout = Number(c.query.get('timeoutSeconds') ?? 1800);
    return {
      stream: (res) => {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache' });
        const send = (type: string, o: KubeObject): void => {
          const object = c.table ? toTable(t.type, [o], o.metadata.resourceVersion ?? '') : { ...o, apiVersion: groupVersion(t.type), kind: t.type.kind };
          res.write(JSON.stringify({ type, object }) + '\n');
        };
        // No resourceVersion, or "0": the current objects first, as ADDED (then what follows).
        let after = Number(rv ?? 0);
        if (!rv || rv === '0') {
          const { items, revision } = this.store.list(keyOf(t.type, t.namespace));
          for (const o of items.map(parse)) if (keep(o)) send('ADDED', o);
          after = revision;
        }
        const single = t.name;
        let cancel: () => void = () => {};
        try {
          cancel = this.store.watch(keyOf(t.type, t.namespace), after, (e: WatchEvent) => {
            const o = JSON.parse(e.value) as KubeObject;
            if (single !== undefined && o.metadata.name !== single) return;
            if (e.type === 'DELETED') o.metadata.resourceVersion = String(e.revision);
            if (keep(o)) send(e.type, o);
          });
        } catch (e) {
          if (e instanceof StoreError && e.code === 'Gone') {
            res.write(JSON.stringify({ type: 'ERROR', object: new ApiError(410, 'Expired', `too old resource version: ${after}`).status() }) + '\n');
            res.end();
            return;
          }
          throw e;
        }
        const timer = setTimeout(() => res.end(), Math.max(1, timeout) * 1000);
        res.on('close', () => {
          clearTimeout(timer);
          cancel();
        });
      },
    };
  }

  private create(c: Call): Reply {
    const t = c.target;
    const body = c.body as KubeObject;
    if (!body || typeof body !== 'object') throw new ApiError(400, 'BadRequest', 'the request body is not a JSON object');
    if (body.kind !== t.type.kind) throw new ApiError(400, 'BadRequest', `the kind of the object (${String(body.kind)}) does not match the resource ${t.type.resource} (${t.type.kind})`);
    if (t.type.namespaced && body.metadata?.namespace && body.metadata.namespace !== t.namespace) {
      throw new ApiError(400, 'BadRequest', `the namespace of the provided object (${body.metadata.namespace}) does not match the namespace sent on the request (${String(t.namespace)})`);
    }
    if (t.type.namespaced && t.namespace && t.namespace !== 'default' && !this.store.get(keyOf(nsType(), null, t.namespace))) {
      throw new ApiError(404, 'NotFound', `namespaces "${t.namespace}" not found`, { name: t.namespace, kind: 'namespaces' });
    }
    this.strict(c, body);
    const obj = prepareCreate(t.type, body, t.namespace);
    const name = obj.metadata.name ?? '';
    const problems = validate(t.type, obj);
    if (t.type.kind === 'Service' && problems.length === 0) problems.push(...allocate(obj.spec as never, this.takenByServices(), this.serviceNetwork));
    if (problems.length > 0) throw invalid(t.type, name, problems);
    if (t.type.namespaced) this.admit(t.type, obj);
    if (c.query.get('dryRun') === 'All') return { code: 201, body: obj };
    let s: Stored;
    try {
      s = this.store.create(keyOf(t.type, obj.metadata.namespace ?? null, name), withRevision(obj));
    } catch (e) {
      storeError(e, { ...t, name });
    }
    return { code: 201, body: parse(s) };
  }

  /** Writes `next` over the stored object, comparing on `expected` (its resourceVersion) when given. */
  private write(t: Target, next: KubeObject, cur: Stored, expected: string | undefined): KubeObject {
    const name = t.name ?? '';
    if (expected !== undefined && expected !== '' && Number(expected) !== cur.revision) {
      throw conflict(t.type, name, 'the object has been modified; please apply your changes to the latest version and try again');
    }
    const problems = validate(t.type, next);
    if (problems.length > 0) throw invalid(t.type, name, problems);
    try {
      return parse(this.store.update(keyOf(t.type, t.namespace, name), withRevision(next), cur.revision));
    } catch (e) {
      storeError(e, t);
    }
  }

  /** LimitRange defaults and bounds, then ResourceQuota: a refusal is 403 and stores nothing. */
  private admit(type: ResourceType, obj: KubeObject): void {
    const ns = obj.metadata.namespace ?? null;
    const byKind = (kind: string): KubeObject[] => {
      const r = RESOURCES.find((x) => x.kind === kind && x.group !== 'extensions') as ResourceType;
      return this.store.list(keyOf(r, ns)).items.map(parse);
    };
    const forbidden = (why: string): ApiError => new ApiError(403, 'Forbidden', `${type.resource} "${obj.metadata.name ?? ''}" is forbidden: ${why}`, { name: obj.metadata.name ?? '', kind: type.resource });
    if (type.kind === 'Pod') {
      const problems = applyLimitRanges(obj, byKind('LimitRange'));
      if (problems.length > 0) throw forbidden(`[${problems.join(', ')}]`);
    }
    const quotas = byKind('ResourceQuota');
    if (quotas.length === 0) return;
    const objects = type.kind === 'Pod' ? byKind('Pod') : [...byKind('Pod'), ...byKind(type.kind)];
    for (const q of quotas) {
      const why = exceeded(q, objects, obj);
      if (why) throw forbidden(why);
    }
  }

  /** The cluster IPs and node ports that services hold now. */
  private takenByServices(): { ips: Set<string>; ports: Set<number> } {
    const ips = new Set<string>();
    const ports = new Set<number>();
    const svc = RESOURCES.find((r) => r.kind === 'Service') as ResourceType;
    for (const s of this.store.list(keyOf(svc, null)).items) {
      const spec = (parse(s).spec ?? {}) as { clusterIP?: string; ports?: { nodePort?: number }[] };
      if (spec.clusterIP) ips.add(spec.clusterIP);
      for (const p of spec.ports ?? []) if (p.nodePort) ports.add(p.nodePort);
    }
    return { ips, ports };
  }

  /** An update keeps a service's cluster IP and node ports when the new spec leaves them out. */
  private keepAllocations(next: KubeObject, cur: KubeObject): void {
    if (next.kind !== 'Service') return;
    const n = (next.spec ?? {}) as { clusterIP?: string; clusterIPs?: string[]; ports?: { port: number; nodePort?: number }[] };
    const c = (cur.spec ?? {}) as typeof n;
    n.clusterIP ||= c.clusterIP;
    n.clusterIPs ??= c.clusterIPs;
    for (const p of n.ports ?? []) p.nodePort ??= c.ports?.find((x) => x.port === p.port)?.nodePort;
  }

  private current(t: Target): { s: Stored; o: KubeObject } {
    const s = this.store.get(keyOf(t.type, t.namespace, t.name));
    if (!s) throw notFound(t.type, t.name ?? '');
    return { s, o: parse(s) };
  }

  private update(c: Call): Reply {
    const t = c.target;
    const { s, o } = this.current(t);
    const body = c.body as KubeObject;
    if (!body?.metadata) throw new ApiError(400, 'BadRequest', 'the request body is not an object with metadata');
    if (body.metadata.name && body.metadata.name !== t.name) throw new ApiError(400, 'BadRequest', `the name of the object (${body.metadata.name}) does not match the name on the URL (${String(t.name)})`);
    this.strict(c, body);
    // The main resource does not change status (its subresource does).
    const next = prepareUpdate(t.type, { ...body, status: o.status }, o);
    this.keepAllocations(next, o);
    return { code: 200, body: this.write(t, next, s, body.metadata.resourceVersion) };
  }

  private applyPatch(c: Call, base: unknown): unknown {
    const type = c.contentType.split(';')[0]?.trim();
    try {
      if (type === 'application/merge-patch+json') return mergePatch(base as never, c.body as never);
      if (type === 'application/strategic-merge-patch+json') return strategicMergePatch(base as never, c.body as never);
      if (type === 'application/json-patch+json') return jsonPatch(base as never, c.body as never);
    } catch (e) {
      throw new ApiError(422, 'Invalid', `the patch could not be applied: ${(e as Error).message}`);
    }
    throw new ApiError(415, 'UnsupportedMediaType', `the patch type ${String(type)} is not supported (merge-patch+json, strategic-merge-patch+json, json-patch+json)`);
  }

  private patch(c: Call): Reply {
    const t = c.target;
    const { s, o } = this.current(t);
    const patched = this.applyPatch(c, o) as KubeObject;
    this.strict(c, patched);
    const next = prepareUpdate(t.type, { ...patched, status: o.status }, o);
    this.keepAllocations(next, o);
    return { code: 200, body: this.write(t, next, s, (c.body as { metadata?: { resourceVersion?: string } })?.metadata?.resourceVersion) };
  }

  private remove(c: Call): Reply {
    const t = c.target;
    const { s, o } = this.current(t);
    const pre = (c.body as { preconditions?: { resourceVersion?: string } } | null)?.preconditions?.resourceVersion;
    if (pre !== undefined && Number(pre) !== s.revision) throw conflict(t.type, t.name ?? '', 'the resourceVersion in the precondition does not match');
    // A pod on a node is stopped there first, within its grace period: the
    // node agent deletes the object once its containers are gone (kubectl waits).
    const opts = (c.body ?? {}) as { gracePeriodSeconds?: number };
    const spec = (o.spec ?? {}) as { nodeName?: string; terminationGracePeriodSeconds?: number };
    if (t.type.kind === 'Pod' && spec.nodeName && !o.metadata.deletionTimestamp && opts.gracePeriodSeconds !== 0) {
      const marked: KubeObject = { ...o, metadata: { ...o.metadata, deletionTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), deletionGracePeriodSeconds: opts.gracePeriodSeconds ?? spec.terminationGracePeriodSeconds ?? 30 } };
      try {
        return { code: 200, body: parse(this.store.update(keyOf(t.type, t.namespace, t.name), withRevision(marked), s.revision)) };
      } catch (e) {
        storeError(e, t);
      }
    }
    if (t.type.kind === 'Namespace') this.emptyNamespace(t.name ?? '');
    // kubectl delete --cascade=orphan: what this object owned stays, without the reference.
    if ((c.body as { propagationPolicy?: string } | null)?.propagationPolicy === 'Orphan' && t.namespace) this.orphan(t.namespace, o.metadata.uid ?? '');
    try {
      this.store.delete(keyOf(t.type, t.namespace, t.name), s.revision);
    } catch (e) {
      storeError(e, t);
    }
    return { code: 200, body: o };
  }

  private deleteCollection(c: Call): Reply {
    const t = c.target;
    const keep = this.selected(c);
    const deleted: KubeObject[] = [];
    for (const s of this.store.list(keyOf(t.type, t.namespace)).items) {
      const o = parse(s);
      if (!keep(o)) continue;
      try {
        this.store.delete(s.key, s.revision);
        deleted.push(o);
      } catch {
        // changed or gone meanwhile: the next list shows it
      }
    }
    return { code: 200, body: { kind: `${t.type.kind}List`, apiVersion: groupVersion(t.type), metadata: {}, items: deleted } };
  }

  private orphan(ns: string, uid: string): void {
    for (const r of RESOURCES) {
      if (!r.namespaced || r.group === 'extensions') continue;
      for (const s of this.store.list(keyOf(r, ns)).items) {
        const o = parse(s);
        const refs = o.metadata.ownerReferences ?? [];
        if (!refs.some((x) => x.uid === uid)) continue;
        o.metadata.ownerReferences = refs.filter((x) => x.uid !== uid);
        this.store.update(s.key, withRevision(o), s.revision);
      }
    }
  }

  /** Deleting a namespace deletes what is in it (Kubernetes' namespace controller, done at once). */
  private emptyNamespace(ns: string): void {
    for (const r of RESOURCES) {
      if (!r.namespaced || r.group === 'extensions') continue;
      for (const s of this.store.list(keyOf(r, ns)).items) {
        try {
          this.store.delete(s.key);
        } catch {
          // gone meanwhile
        }
      }
    }
  }

  private status(c: Call): Reply {
    const t = c.target;
    const { s, o } = this.current(t);
    if (c.method === 'GET') return { code: 200, body: o };
    if (c.method !== 'PUT' && c.method !== 'PATCH') throw new ApiError(405, 'MethodNotAllowed', `${c.method} is not supported on ${t.type.resource}/status`);
    const incoming = (c.method === 'PUT' ? c.body : this.applyPatch(c, o)) as KubeObject;
    // Only status changes here.
    const next: KubeObject = { ...o, status: incoming.status, metadata: { ...o.metadata } };
    const rv = c.method === 'PUT' ? incoming.metadata?.resourceVersion : undefined;
    return { code: 200, body: this.write(t, next, s, rv) };
  }

  /** pods/binding: the scheduler's one write, spec.nodeName set once (a second binding is a 409, as kube-apiserver's). */
  private bind(c: Call): Reply {
    const t = c.target;
    if (c.method !== 'POST') throw new ApiError(405, 'MethodNotAllowed', `${c.method} is not supported on pods/binding`);
    const target = (c.body as { target?: { kind?: string; name?: string } } | null)?.target;
    if (!target?.name || (target.kind !== undefined && target.kind !== '' && target.kind !== 'Node')) throw invalid(t.type, t.name ?? '', [{ field: 'target', message: 'Required value: a Node to bind to' }]);
    const { s, o } = this.current(t);
    const spec = (o.spec ?? {}) as { nodeName?: string };
    if (o.metadata.deletionTimestamp) throw new ApiError(409, 'Conflict', `Operation cannot be fulfilled on pods/binding "${t.name ?? ''}": pod ${t.name ?? ''} is being deleted, cannot be assigned to a host`);
    if (spec.nodeName) throw new ApiError(409, 'Conflict', `Operation cannot be fulfilled on pods/binding "${t.name ?? ''}": pod ${t.name ?? ''} is already assigned to node "${spec.nodeName}"`);
    this.write(t, { ...o, spec: { ...spec, nodeName: target.name } }, s, undefined);
    return { code: 201, body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 } };
  }

  /** autoscaling/v1 Scale over spec.replicas (kubectl scale). */
  private scale(c: Call): Reply {
    const t = c.target;
    if (!t.type.subresources.includes('scale')) throw new ApiError(404, 'NotFound', `${t.type.resource} has no scale subresource`);
    const { s, o } = this.current(t);
    const toScale = (x: KubeObject): Record<string, unknown> => ({
      kind: 'Scale', apiVersion: 'autoscaling/v1',
      metadata: { name: x.metadata.name, namespace: x.metadata.namespace, uid: x.metadata.uid, resourceVersion: x.metadata.resourceVersion, creationTimestamp: x.metadata.creationTimestamp },
      spec: { replicas: (x.spec as { replicas?: number }).replicas ?? 0 },
      status: { replicas: (x.status as { replicas?: number } | undefined)?.replicas ?? 0 },
    });
    if (c.method === 'GET') return { code: 200, body: toScale(o) };
    const incoming = (c.method === 'PUT' ? c.body : this.applyPatch(c, toScale(o))) as { spec?: { replicas?: number }; metadata?: { resourceVersion?: string } };
    const replicas = incoming.spec?.replicas;
    if (typeof replicas !== 'number' || replicas < 0) throw invalid(t.type, t.name ?? '', [{ field: 'spec.replicas', message: `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0` }]);
    const next = prepareUpdate(t.type, { ...o, spec: { ...(o.spec as object), replicas } }, o);
    return { code: 200, body: toScale(this.write(t, next, s, c.method === 'PUT' ? incoming.metadata?.resourceVersion : undefined)) };
  }
}

function nsType(): ResourceType {
  return RESOURCES.find((r) => r.kind === 'Namespace') as ResourceType;
}
