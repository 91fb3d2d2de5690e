// docker's flag syntax: sizes, --restart, -v, --mount, --env-file, labels.
// Pure parsing into the engine's request types; bad input is refused with
// the flag named.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from '../../runtime/sys/errors';
import type { MountRequest, RestartPolicy } from '../containers';

/** `32m`, `1.5g`, `512`: bytes. */
export function parseSize(s: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmg]?)b?$/i.exec(s.trim());
  if (!m) throw new RuntimeError(`invalid ${what} "${s}": want a number with an optional unit (b, k, m, g)`, { code: 'EINVAL' });
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'b' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * mult);
}

export function parseRestart(s: string): RestartPolicy {
  const m = /^(no|always|unless-stopped|on-failure)(?::(\d+))?$/.exec(s);
  if (!m || (m[2] !== undefined && m[1] !== 'on-failure')) {
    throw new RuntimeError(`invalid --restart "${s}": want no, always, unless-stopped or on-failure[:N]`, { code: 'EINVAL' });
  }
  return { name: m[1] as RestartPolicy['name'], maximumRetryCount: m[2] ? Number(m[2]) : 0 };
}

/** `-v SRC:DST[:ro|rw]`: SRC absolute is a bind, else a volume name; `-v DST` an anonymous volume. */
export function parseVolume(spec: string): MountRequest {
  const parts = spec.split(':');
  const bad = (why: string): never => {
    throw new RuntimeError(`invalid -v "${spec}": ${why}`, { code: 'EINVAL' });
  };
  if (parts.length > 3 || parts.some((p) => p === '')) bad('want SOURCE:DESTINATION[:ro|rw]');
  let opts = '';
  if (parts.length === 3) opts = parts.pop()!;
  else if (parts.length === 2 && !parts[1]!.startsWith('/')) opts = parts.pop()!;
  if (opts && !opts.split(',').every((o) => ['ro', 'rw', 'z', 'Z'].includes(o))) bad(`unknown option "${opts}"`);
  const readonly = opts.split(',').includes('ro');
  if (parts.length === 1) {
    const dst = parts[0]!;
    if (!dst.startsWith('/')) bad('the container path must be absolute');
    const { anonymousVolumeName } = require('../volumes') as typeof import('../volumes');
    return { type: 'volume', source: anonymousVolumeName(), destination: dst, readonly };
  }
  const [src, dst] = parts as [string, string];
  if (!dst.startsWith('/')) bad('the container path must be absolute');
  if (src.startsWith('/')) return { type: 'bind', source: path.resolve(src), destination: dst, readonly };
  if (src.startsWith('.')) bad('a relative host path: use an absolute one');
  return { type: 'volume', source: src, destination: dst, readonly };
}

/** `--mount type=bind,source=/a,target=/b,readonly` */
export function parseMount(spec: string): MountRequest {
  const kv = new Map<string, string>();
  for (const item of spec.split(',')) {
    const [k, v] = item.includes('=') ? [item.slice(0, item.indexOf('=')), item.slice(item.indexOf('=') + 1)] : [item, 'true'];
    kv.set(k!.trim(), v!.trim());
  }
  const type = (kv.get('type') ?? 'volume') as MountRequest['type'];
  if (!['bind', 'volume', 'tmpfs'].includes(type)) throw new RuntimeError(`invalid --mount "${spec}": type must be bind, volume or tmpfs`, { code: 'EINVAL' });
  const dst = kv.get('target') ?? kv.get('destination') ?? kv.get('dst') ?? '';
  const src = kv.get('source') ?? kv.get('src') ?? '';
  if (!dst.startsWith('/')) throw new RuntimeError(`invalid --mount "${spec}": target must be an absolute path`, { code: 'EINVAL' });
  if (type === 'bind' && !src.startsWith('/')) throw new RuntimeError(`invalid --mount "${spec}": a bind needs an absolute source`, { code: 'EINVAL' });
  if (type === 'volume' && !src) throw new RuntimeError(`invalid --mount "${spec}": a volume needs a source (its name)`, { code: 'EINVAL' });
  const ro = kv.get('readonly') ?? kv.get('ro');
  return { type, source: type === 'bind' ? path.resolve(src) : src, destination: dst, readonly: ro === 'true' || ro === '1' };
}

function readEnvFile(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new RuntimeError(`cannot read --env-file ${file}: ${(e as Error).message}`, { code: 'ENOENT' });
  }
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((l) => (l.includes('=') ? l : `${l}=${process.env[l] ?? ''}`));
}

/** --env-file's lines, then -e's; `-e NAME` (no =) takes NAME from our environment, as docker. */
export function envList(env: readonly string[], envFiles: readonly string[]): string[] {
  const fromFiles = envFiles.flatMap(readEnvFile);
  const given = env.map(String).map((e) => (e.includes('=') ? e : `${e}=${process.env[e] ?? ''}`));
  return [...fromFiles, ...given];
}

/** `--label k=v` (or a bare `k`, empty). */
export function parseLabels(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list.map(String)) {
    const i = l.indexOf('=');
    out[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1);
  }
  return out;
}
