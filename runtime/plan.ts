// From config.json to a plan: pure functions (file reads aside) that check
// the config and decide everything the container needs, before anything is
// created. `explain` prints this plan; `create` performs it.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Spec } from './spec/generated/config';
import { schemaErrors } from './spec/validate';
import { planNamespaces, type NamespacePlan } from './linux/namespaces';
import { planProcess, type ProcessPlan } from './linux/process';
import { ignoredWithoutMountNamespace, planRootfs, type RootfsPlan } from './linux/rootfs';
import { RuntimeError } from './sys/errors';

export interface ContainerPlan {
  spec: Spec;
  bundle: string;
  namespaces: NamespacePlan;
  process: ProcessPlan;
  rootfs: RootfsPlan;
  sysctl: { key: string; value: string }[];
  warnings: string[];
}

/** Reads and validates BUNDLE/config.json. Errors name the bundle and the field. */
export function loadSpec(bundle: string): Spec {
  const dir = path.resolve(bundle);
  const file = path.join(dir, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      const what = fs.existsSync(dir) ? `${file} does not exist` : `bundle directory ${dir} does not exist`;
      throw new RuntimeError(`cannot load bundle ${dir}: ${what}`, { code: 'ENOENT', cause: e });
    }
    throw new RuntimeError(`cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new RuntimeError(`cannot parse ${file}: ${(e as Error).message}`, { code: 'EINVAL', cause: e });
  }
  const errors = schemaErrors('oci-runtime/config-schema.json', recursivePropagationAsSchemaKnows(doc));
  if (errors.length > 0) {
    throw new RuntimeError(`invalid ${file} (runtime-spec schema):\n  ${errors.join('\n  ')}`, { code: 'EINVAL' });
  }
  const spec = doc as Spec;
  if (!spec.ociVersion.startsWith('1.')) {
    throw new RuntimeError(`${file}: ociVersion "${spec.ociVersion}" is not supported (1.x only)`, { code: 'EINVAL' });
  }
  return spec;
}

/**
 * containerd writes linux.rootfsPropagation "rslave" or "rshared", which the
 * published schema does not list but runc (and crun) accept: the schema sees
 * the flat form, the plan keeps the recursive one.
 */
function recursivePropagationAsSchemaKnows(doc: unknown): unknown {
  const linux = (doc as { linux?: { rootfsPropagation?: unknown } } | null)?.linux;
  const p = linux?.rootfsPropagation;
  if (typeof p !== 'string' || !/^r(private|shared|slave|unbindable)$/.test(p)) return doc;
  return { ...(doc as object), linux: { ...linux, rootfsPropagation: p.slice(1) } };
}

export function planContainer(spec: Spec, bundle: string, opts: { noPivot: boolean }): ContainerPlan {
  const warnings: string[] = [];
  const dir = path.resolve(bundle);
  if (!spec.root?.path) throw new RuntimeError('root.path: is required', { code: 'EINVAL' });
  const namespaces = planNamespaces(spec);
  const process = planProcess(spec, warnings);
  const rootfs = planRootfs(spec, dir, { noPivot: opts.noPivot });
  const ignored = ignoredWithoutMountNamespace(rootfs);
  if (ignored.length > 0) {
    warnings.push(`linux.namespaces has no mount namespace: the container shares the host's mounts, so ${ignored.join(', ')} ${ignored.length > 1 ? 'are' : 'is'} not applied (the init only chroots into root.path)`);
  }
  const sysctl = Object.entries(spec.linux?.sysctl ?? {}).map(([key, value]) => {
    if (!/^[a-z0-9_]+(\.[\w-]+)+$/i.test(key) || key.includes('..')) {
      throw new RuntimeError(`linux.sysctl: invalid key "${key}"`, { code: 'EINVAL' });
    }
    return { key, value: value ?? '' };
  });
  return { spec, bundle: dir, namespaces, process, rootfs, sysctl, warnings };
}
