// What a container reads from the API besides its image: env from
// ConfigMaps, Secrets and the pod's own fields (valueFrom, envFrom), and
// volumes (configMap, secret, emptyDir, hostPath) as files under the pod's
// directory, bind-mounted by the CRI server. A reference that cannot be
// resolved is kubelet's CreateContainerConfigError, naming what is missing.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { KubeObject } from '../api/objects';

export class ConfigError extends Error {}

type Lookup = (kind: 'ConfigMap' | 'Secret', name: string) => KubeObject | null;

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    fieldRef?: { fieldPath: string };
  };
}

interface EnvFrom { prefix?: string; configMapRef?: { name: string; optional?: boolean }; secretRef?: { name: string; optional?: boolean } }

/** The data of a ConfigMap or Secret as strings (a Secret's is base64). */
function dataOf(kind: 'ConfigMap' | 'Secret', o: KubeObject): Record<string, string> {
  const d = (o['data'] ?? {}) as Record<string, string>;
  if (kind === 'ConfigMap') return { ...d, ...Object.fromEntries(Object.entries((o['binaryData'] ?? {}) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()])) };
  return { ...Object.fromEntries(Object.entries(d).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()])), ...((o['stringData'] ?? {}) as Record<string, string>) };
}

function fieldOf(pod: KubeObject, p: string): string {
  const v = p.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), pod);
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(p);
  if (m) return String((pod.metadata[m[1] as 'labels' | 'annotations'] ?? {})[m[2] as string] ?? '');
  return v === undefined || v === null ? '' : String(v);
}

/** The container's env with every reference resolved (pure over `lookup`); throws ConfigError naming what is missing. */
export function resolveEnv(pod: KubeObject, c: { env?: EnvVar[]; envFrom?: EnvFrom[] }, lookup: Lookup): { name: string; value: string }[] {
  const out: { name: string; value: string }[] = [];
  for (const f of c.envFrom ?? []) {
    const kind = f.configMapRef ? 'ConfigMap' : 'Secret';
    const ref = f.configMapRef ?? f.secretRef;
    if (!ref) continue;
    const o = lookup(kind, ref.name);
    if (!o) {
      if (ref.optional) continue;
      throw new ConfigError(`${kind.toLowerCase()} "${ref.name}" not found`);
    }
    for (const [k, v] of Object.entries(dataOf(kind, o))) out.push({ name: `${f.prefix ?? ''}${k}`, value: v });
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined || !e.valueFrom) {
      out.push({ name: e.name, value: e.value ?? '' });
      continue;
    }
    const ref = e.valueFrom.configMapKeyRef ?? e.valueFrom.secretKeyRef;
    if (ref) {
      const kind = e.valueFrom.configMapKeyRef ? 'ConfigMap' : 'Secret';
      const o = lookup(kind, ref.name);
      const v = o ? dataOf(kind, o)[ref.key] : undefined;
      if (v === undefined) {
        if (ref.optional) continue;
        throw new ConfigError(o ? `couldn't find key ${ref.key} in ${kind} ${String(pod.metadata.namespace)}/${ref.name}` : `${kind.toLowerCase()} "${ref.name}" not found`);
      }
      out.push({ name: e.name, value: v });
    } else if (e.valueFrom.fieldRef) out.push({ name: e.name, value: fieldOf(pod, e.valueFrom.fieldRef.fieldPath) });
  }
  return out;
}

interface Volume {
  name: string;
  configMap?: { name: string; items?: { key: string; path: string }[]; optional?: boolean; defaultMode?: number };
  secret?: { secretName: string; items?: { key: string; path: string }[]; optional?: boolean; defaultMode?: number };
  emptyDir?: object;
  hostPath?: { path: string };
}

/** A relative file path inside a volume: no "..", not absolute (as the API validates keys and items). */
function safeRelative(p: string): string {
  const n = path.posix.normalize(p);
  if (!p || path.posix.isAbsolute(p) || n === '..' || n.startsWith('../')) throw new ConfigError(`invalid path "${p}" in a volume`);
  return n;
}

/**
 * Makes the pod's volumes under `dir` (configMap and secret files written
 * fresh, emptyDir made once) and returns each volume's host path.
 */
export function prepareVolumes(pod: KubeObject, dir: string, lookup: Lookup): Map<string, { path: string; readOnly: boolean }> {
  const out = new Map<string, { path: string; readOnly: boolean }>();
  for (const v of ((pod.spec as { volumes?: Volume[] }).volumes ?? [])) {
    const at = path.join(dir, safeRelative(v.name));
    if (v.hostPath) {
      out.set(v.name, { path: v.hostPath.path, readOnly: false });
      continue;
    }
    if (v.emptyDir) {
      fs.mkdirSync(at, { recursive: true, mode: 0o777 });
      out.set(v.name, { path: at, readOnly: false });
      continue;
    }
    const kind = v.configMap ? 'ConfigMap' : v.secret ? 'Secret' : null;
    if (!kind) continue;
    const ref = v.configMap ?? v.secret;
    const name = v.configMap?.name ?? v.secret?.secretName ?? '';
    const o = lookup(kind, name);
    if (!o && !ref?.optional) throw new ConfigError(`${kind.toLowerCase()} "${name}" not found`);
    const data = o ? dataOf(kind, o) : {};
    const items = ref?.items ?? Object.keys(data).map((key) => ({ key, path: key }));
    for (const item of items) {
      if (data[item.key] === undefined) throw new ConfigError(`configmap references non-existent config key: ${item.key}`);
    }
    // Updated in place, never removed and made again: a running container of the pod has this
    // directory bind-mounted, and would be left looking at an emptied one.
    fs.mkdirSync(at, { recursive: true, mode: 0o755 });
    const wanted = new Set<string>();
    for (const item of items) {
      const file = path.join(at, safeRelative(item.path));
      wanted.add(file);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      // a new file renamed over the old one: a reader sees the old content or the new, never half
      const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
      fs.writeFileSync(tmp, data[item.key] as string, { mode: ref?.defaultMode ?? 0o644 });
      fs.chmodSync(tmp, ref?.defaultMode ?? 0o644); // writeFileSync's mode passes through the umask
      fs.renameSync(tmp, file);
    }
    removeOthers(at, wanted);
    // Read-only in every container, as Kubernetes mounts them.
    out.set(v.name, { path: at, readOnly: true });
  }
  return out;
}

/** Removes the files under `dir` that are not `wanted` (keys gone from the ConfigMap or Secret). */
function removeOthers(dir: string, wanted: Set<string>): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && ![...wanted].some((w) => w.startsWith(p + path.sep))) fs.rmSync(p, { recursive: true, force: true });
    else if (e.isDirectory()) removeOthers(p, wanted);
    else if (!wanted.has(p)) fs.rmSync(p, { force: true });
  }
}

/** The CRI mounts of a container's volumeMounts. */
export function containerMounts(c: { volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[] }, volumes: Map<string, { path: string; readOnly: boolean }>): { container_path: string; host_path: string; readonly: boolean }[] {
  return (c.volumeMounts ?? []).map((m) => {
    const v = volumes.get(m.name);
    if (v === undefined) throw new ConfigError(`volume "${m.name}" is not defined in the pod`);
    return { container_path: m.mountPath, host_path: m.subPath ? path.join(v.path, safeRelative(m.subPath)) : v.path, readonly: v.readOnly || (m.readOnly ?? false) };
  });
}
