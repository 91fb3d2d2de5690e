// The three patch types kubectl sends (pure):
//   application/merge-patch+json           RFC 7386: objects merge, null deletes, lists replace
//   application/strategic-merge-patch+json Kubernetes': lists of objects with a merge key
//                                          (containers by name, ports by containerPort...)
//                                          merge item by item; $patch: delete/replace,
//                                          $setElementOrder and $retainKeys directives
//   application/json-patch+json            RFC 6902 operations
// kubectl apply, edit, scale, label and annotate use the first two.

/** Parsed JSON: what the patch functions take and give (callers hold `unknown` from JSON.parse). */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const out: Record<string, Json> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

/** Merge keys of the Kubernetes lists kubectl patches, by field name (as the types' patchMergeKey tags). */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  volumes: 'name',
  env: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  imagePullSecrets: 'name',
  ownerReferences: 'uid',
  conditions: 'type',
  tolerations: 'key',
  hostAliases: 'ip',
  topologySpreadConstraints: 'topologyKey',
};

/** `ports` merge on containerPort in a container, on port in a Service. */
function mergeKeyOf(field: string, items: Json[]): string | null {
  if (field === 'ports') return items.some((i) => isObject(i) && 'containerPort' in i) ? 'containerPort' : 'port';
  return MERGE_KEYS[field] ?? null;
}

export function strategicMergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return patch;
  if (patch['$patch'] === 'replace') {
    const { $patch: _, ...rest } = patch;
    return stripDirectives(rest);
  }
  if (patch['$patch'] === 'delete') return null;
  const out: Record<string, Json> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$setElementOrder/') || k === '$retainKeys' || k === '$patch') continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const cur = out[field];
      if (Array.isArray(cur) && Array.isArray(v)) out[field] = cur.filter((x) => !v.includes(x));
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    const cur = out[k];
    if (Array.isArray(v)) {
      const key = mergeKeyOf(k, [...v, ...(Array.isArray(cur) ? cur : [])]);
      out[k] = key && Array.isArray(cur) ? mergeList(cur, v, key, patch[`$setElementOrder/${k}`]) : v.map(stripDirectives);
      continue;
    }
    out[k] = strategicMergePatch(cur ?? null, v);
  }
  return out;
}

function mergeList(cur: Json[], patch: Json[], key: string, order: Json | undefined): Json[] {
  const out = [...cur];
  for (const p of patch) {
    if (!isObject(p)) continue;
    const i = out.findIndex((c) => isObject(c) && c[key] === p[key]);
    if (p['$patch'] === 'delete') {
      if (i >= 0) out.splice(i, 1);
      continue;
    }
    if (i >= 0) out[i] = strategicMergePatch(out[i] as Json, p);
    else out.push(stripDirectives(p));
  }
  if (Array.isArray(order)) {
    const rank = (x: Json): number => {
      const r = order.findIndex((o) => isObject(o) && isObject(x) && o[key] === x[key]);
      return r < 0 ? order.length : r;
    };
    out.sort((a, b) => rank(a) - rank(b));
  }
  return out;
}

function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObject(v)) return v;
  const out: Record<string, Json> = {};
  for (const [k, x] of Object.entries(v)) if (!k.startsWith('$')) out[k] = stripDirectives(x);
  return out;
}

interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  value?: Json;
  from?: string;
}

/** RFC 6902; throws on a failed `test` or a path that is not there. */
export function jsonPatch(target: Json, ops: JsonPatchOp[]): Json {
  let doc = structuredClone(target);
  const parse = (p: string): string[] => p.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const parentOf = (path: string[]): { parent: Json; last: string } => {
    let cur: Json = doc;
    for (const seg of path.slice(0, -1)) {
      const next: Json | undefined = Array.isArray(cur) ? cur[Number(seg)] : isObject(cur) ? cur[seg] : undefined;
      if (next === undefined) throw new Error(`path /${path.join('/')}: /${seg} does not exist`);
      cur = next;
    }
    return { parent: cur, last: path[path.length - 1] ?? '' };
  };
  const get = (p: string): Json => {
    const path = parse(p);
    if (path.length === 0) return doc;
    const { parent, last } = parentOf(path);
    const v = Array.isArray(parent) ? parent[Number(last)] : isObject(parent) ? parent[last] : undefined;
    if (v === undefined) throw new Error(`path ${p} does not exist`);
    return v;
  };
  const put = (p: string, value: Json, insert: boolean): void => {
    const path = parse(p);
    if (path.length === 0) {
      doc = value;
      return;
    }
    const { parent, last } = parentOf(path);
    if (Array.isArray(parent)) {
      const i = last === '-' ? parent.length : Number(last);
      if (insert) parent.splice(i, 0, value);
      else parent[i] = value;
    } else if (isObject(parent)) parent[last] = value;
    else throw new Error(`path ${p}: its parent is not an object or a list`);
  };
  const remove = (p: string): void => {
    const { parent, last } = parentOf(parse(p));
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else if (isObject(parent) && last in parent) delete parent[last];
    else throw new Error(`path ${p} does not exist`);
  };
  for (const o of ops) {
    switch (o.op) {
      case 'add': put(o.path, o.value ?? null, true); break;
      case 'replace': get(o.path); put(o.path, o.value ?? null, false); break;
      case 'remove': remove(o.path); break;
      case 'copy': put(o.path, structuredClone(get(o.from ?? '')), true); break;
      case 'move': { const v = get(o.from ?? ''); remove(o.from ?? ''); put(o.path, v, true); break; }
      case 'test': if (JSON.stringify(get(o.path)) !== JSON.stringify(o.value)) throw new Error(`test failed at ${o.path}`); break;
      default: throw new Error(`unknown operation ${String((o as { op: unknown }).op)}`);
    }
  }
  return doc;
}
