// Named volumes: <root>/volumes/<name>/_data, as docker keeps them, with a
// small record beside it. `-v name:/dst` makes one when it is missing.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from '../runtime/sys/errors';
import { validName } from './names';
import { writeJsonAtomic, type MountRequest, type Paths } from './containers';

export interface Volume {
  name: string;
  driver: 'local';
  mountpoint: string;
  createdAt: string;
  labels: Record<string, string>;
}

export function volumeDir(paths: Paths, name: string): string {
  return path.join(paths.volumes, name);
}

export function createVolume(paths: Paths, name: string, labels: Record<string, string> = {}): Volume {
  if (!validName(name)) throw new RuntimeError(`cannot create volume "${name}": use [a-zA-Z0-9][a-zA-Z0-9_.-]*`, { code: 'EINVAL' });
  const dir = volumeDir(paths, name);
  const rec = path.join(dir, 'volume.json');
  if (fs.existsSync(rec)) return JSON.parse(fs.readFileSync(rec, 'utf8')) as Volume;
  fs.mkdirSync(path.join(dir, '_data'), { recursive: true, mode: 0o755 });
  const v: Volume = { name, driver: 'local', mountpoint: path.join(dir, '_data'), createdAt: new Date().toISOString(), labels };
  writeJsonAtomic(rec, v);
  return v;
}

export function listVolumes(paths: Paths): Volume[] {
  let names: string[];
  try {
    names = fs.readdirSync(paths.volumes);
  } catch {
    return [];
  }
  const out: Volume[] = [];
  for (const n of names.sort()) {
    try {
      out.push(JSON.parse(fs.readFileSync(path.join(paths.volumes, n, 'volume.json'), 'utf8')) as Volume);
    } catch {
      // not a volume
    }
  }
  return out;
}

export function inspectVolume(paths: Paths, name: string): Volume {
  try {
    return JSON.parse(fs.readFileSync(path.join(volumeDir(paths, name), 'volume.json'), 'utf8')) as Volume;
  } catch {
    throw new RuntimeError(`no such volume: ${name}`, { code: 'ENOENT' });
  }
}

/** A name for an anonymous volume (`-v /dst`, `volume create` without a name): 64 hex digits, as docker's. */
export function anonymousVolumeName(): string {
  return crypto.randomBytes(32).toString('hex');
}

/** `rm -v`: the container's anonymous volumes go with it. */
export function removeAnonymousVolumes(paths: Paths, mounts: readonly MountRequest[]): void {
  for (const m of mounts) if (m.type === 'volume' && /^[0-9a-f]{64}$/.test(m.source)) fs.rmSync(volumeDir(paths, m.source), { recursive: true, force: true });
}

/** The names of the containers (of ALL) that mount volume NAME. */
export function volumeUsers(all: readonly { name: string; hostConfig: { mounts: readonly MountRequest[] } }[], name: string): string[] {
  return all.filter((c) => c.hostConfig.mounts.some((m) => m.type === 'volume' && m.source === name)).map((c) => c.name);
}

/** `usedBy` lists the containers that mount it: docker refuses to remove those. */
export function removeVolume(paths: Paths, name: string, usedBy: string[]): void {
  inspectVolume(paths, name);
  if (usedBy.length > 0) throw new RuntimeError(`cannot remove volume ${name}: in use by container(s) ${usedBy.join(', ')}`, { code: 'EBUSY' });
  fs.rmSync(volumeDir(paths, name), { recursive: true, force: true });
}

/**
 * Host sources of the container's mounts, by destination: volumes made
 * when missing; bind sources must exist (docker -v makes a missing one; we
 * refuse, as --mount does, so a typo does not silently bind an empty dir).
 */
export function prepareMounts(paths: Paths, mounts: readonly MountRequest[], _bundle: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of mounts) {
    if (m.type === 'volume') out[m.destination] = createVolume(paths, m.source).mountpoint;
    else if (m.type === 'bind') {
      if (!fs.existsSync(m.source)) throw new RuntimeError(`bind mount source ${m.source} does not exist`, { code: 'ENOENT' });
      out[m.destination] = m.source;
    }
  }
  return out;
}
