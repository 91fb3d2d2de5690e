// Admission of new pods and objects into a namespace, as the API server's
// LimitRanger and ResourceQuota plugins (pure over what is listed):
//   LimitRange (type Container): default limits and requests filled in,
//     then min and max enforced;
//   ResourceQuota: pods, object counts, requests.cpu/memory, limits.cpu/memory
//     (and cpu/memory, meaning requests) summed over the namespace's live
//     pods plus the new one; over the hard limit is 403 Forbidden, nothing stored.

import type { KubeObject } from './objects';
import { quantity } from './quantity';

interface Containers { containers?: { name: string; resources?: { limits?: Record<string, string | number>; requests?: Record<string, string | number> } }[] }

interface LimitItem { type: string; default?: Record<string, string>; defaultRequest?: Record<string, string>; max?: Record<string, string>; min?: Record<string, string> }

/** Fills defaults from the namespace's LimitRanges; returns the violations ("maximum memory usage per Container is 1Gi, but limit is 2Gi"). */
export function applyLimitRanges(pod: KubeObject, ranges: KubeObject[]): string[] {
  const problems: string[] = [];
  const spec = (pod.spec ?? {}) as Containers;
  for (const lr of ranges) {
    for (const item of ((lr.spec as { limits?: LimitItem[] } | undefined)?.limits ?? []).filter((l) => l.type === 'Container')) {
      for (const c of spec.containers ?? []) {
        const res = (c.resources ??= {});
        // The API's own defaulting first: a limit the manifest gives is also its request.
        for (const [k, v] of Object.entries(res.limits ?? {})) (res.requests ??= {})[k] ??= v;
        for (const [k, v] of Object.entries(item.default ?? {})) (res.limits ??= {})[k] ??= v;
        for (const [k, v] of Object.entries(item.defaultRequest ?? {})) (res.requests ??= {})[k] ??= v;
        for (const [k, v] of Object.entries(res.limits ?? {})) (res.requests ??= {})[k] ??= v;
        for (const [k, v] of Object.entries(item.max ?? {})) {
          const lim = res.limits?.[k];
          if (lim === undefined) problems.push(`maximum ${k} usage per Container is ${v}.  No limit is specified`);
          else if ((quantity(lim) ?? 0) > (quantity(v) ?? Infinity)) problems.push(`maximum ${k} usage per Container is ${v}, but limit is ${lim}`);
        }
        for (const [k, v] of Object.entries(item.min ?? {})) {
          const req = res.requests?.[k] ?? res.limits?.[k];
          if (req !== undefined && (quantity(req) ?? 0) < (quantity(v) ?? 0)) problems.push(`minimum ${k} usage per Container is ${v}, but request is ${req}`);
        }
      }
    }
  }
  return problems;
}

/** What one object counts toward each quota resource. */
export function usageOf(o: KubeObject): Record<string, number> {
  const kind = o.kind.toLowerCase();
  const plural = kind.endsWith('s') ? `${kind}es` : `${kind}s`;
  const u: Record<string, number> = { [`count/${plural}`]: 1, [plural]: 1 };
  if (o.kind !== 'Pod') return u;
  const sum = (which: 'limits' | 'requests', r: string): number => ((o.spec as Containers).containers ?? []).reduce((n, c) => n + (quantity(c.resources?.[which]?.[r] ?? (which === 'requests' ? c.resources?.limits?.[r] : undefined)) ?? 0), 0);
  u['requests.cpu'] = u['cpu'] = sum('requests', 'cpu');
  u['requests.memory'] = u['memory'] = sum('requests', 'memory');
  u['limits.cpu'] = sum('limits', 'cpu');
  u['limits.memory'] = sum('limits', 'memory');
  return u;
}

/** Live objects count; finished or terminating pods do not. */
export function counts(o: KubeObject): boolean {
  const phase = (o.status as { phase?: string } | undefined)?.phase;
  return !(o.kind === 'Pod' && (phase === 'Succeeded' || phase === 'Failed' || o.metadata.deletionTimestamp));
}

/** The used amounts of a quota's resources over `objects`. */
export function quotaUsed(hard: Record<string, string>, objects: KubeObject[]): Record<string, number> {
  const used: Record<string, number> = Object.fromEntries(Object.keys(hard).map((k) => [k, 0]));
  for (const o of objects.filter(counts)) for (const [k, v] of Object.entries(usageOf(o))) if (k in used) used[k] = (used[k] ?? 0) + v;
  return used;
}

/** A quota the new object would exceed: the message kubectl prints, or null. */
export function exceeded(quota: KubeObject, objects: KubeObject[], next: KubeObject): string | null {
  const hard = ((quota.spec as { hard?: Record<string, string> } | undefined)?.hard ?? {});
  const used = quotaUsed(hard, objects);
  const add = usageOf(next);
  const over = Object.keys(hard).filter((k) => (add[k] ?? 0) > 0 && (used[k] ?? 0) + (add[k] ?? 0) > (quantity(hard[k]) ?? Infinity));
  if (over.length === 0) return null;
  const fmt = (vals: Record<string, number | string | undefined>): string => over.map((k) => `${k}=${fmtQty(k, vals[k])}`).join(',');
  return `exceeded quota: ${String(quota.metadata.name)}, requested: ${fmt(add)}, used: ${fmt(used)}, limited: ${over.map((k) => `${k}=${hard[k]}`).join(',')}`;
}

function fmtQty(k: string, v: number | string | undefined): string {
  if (typeof v !== 'number') return String(v ?? 0);
  if (k.endsWith('cpu') && !Number.isInteger(v)) return `${Math.round(v * 1000)}m`;
  if (k.endsWith('memory') && v >= 1024 * 1024 && v % (1024 * 1024) === 0) return `${v / (1024 * 1024)}Mi`;
  return String(v);
}
