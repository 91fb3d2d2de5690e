// Running as a non-root user (rootless). The runtime has no privilege in the
// host's user namespace, so everything that needs one moves inside the
// container's user namespace, or is skipped with a warning:
//
//   id maps     only a single mapping of our own uid/gid may be written by
//               us (gid_map after "deny" to setgroups); anything more goes
//               through the setuid newuidmap/newgidmap, which check
//               /etc/subuid and /etc/subgid
//   state dir   $XDG_RUNTIME_DIR/mycontainer, else /tmp/mycontainer-<uid>
//   node seal   made by native/nsexec inside the user namespace (spawn.ts)
//   cgroups     skipped, with one warning, without write access (no delegation)
//
// Pure decisions and small file operations only: no koffi, so the CLI can
// compute its default --root cheaply.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { RuntimeError, messageOf } from '../sys/errors';

function euid(): number {
  return process.geteuid?.() ?? 0;
}

function egid(): number {
  return process.getegid?.() ?? 0;
}

/** Without euid 0 we hold no capability in the host's user namespace. */
export function isRootless(): boolean {
  return euid() !== 0;
}

/** runc's choice for the state root: /run as root, $XDG_RUNTIME_DIR otherwise, /tmp/<name>-<uid> as the last resort. */
export function defaultRoot(env: NodeJS.ProcessEnv = process.env, uid: number = euid()): string {
  if (uid === 0) return '/run/mycontainer';
  const xdg = env['XDG_RUNTIME_DIR'];
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'mycontainer');
  return `/tmp/mycontainer-${uid}`;
}

/**
 * Makes the state root private to us (0700) and refuses one somebody else
 * owns: in /tmp another user could have made it first, to read or replace
 * our state files.
 */
export function ensureOwnRoot(root: string): void {
  try {
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new RuntimeError(`cannot make the state root ${root}: ${messageOf(e)}`, { cause: e });
  }
  const st = fs.lstatSync(root);
  if (!st.isDirectory() || st.uid !== euid()) {
    throw new RuntimeError(`state root ${root}: ${st.isDirectory() ? `owned by uid ${st.uid}` : 'not a directory'}, not by uid ${euid()}: refusing to keep container state there (use --root)`, { code: 'EPERM' });
  }
}

type IdMapping = { containerID: number; hostID: number; size: number };

/**
 * What a rootless config must satisfy before anything is made: a new user
 * namespace (nothing else gives us the privilege to mount), and the
 * container's root mapped to our own uid — the init runs as that root and
 * must reach exec.fifo and the sealed node binary in our private state root.
 */
export function checkRootlessConfig(hasUserns: boolean, uidMappings: IdMapping[] | undefined): void {
  if (!hasUserns) {
    throw new RuntimeError(`linux.namespaces: running as uid ${euid()} (not root), the container needs a new user namespace (see \`spec --rootless\`)`, { code: 'EPERM' });
  }
  const root = (uidMappings ?? []).find((m) => m.containerID === 0);
  if (root && root.hostID !== euid()) {
    throw new RuntimeError(
      `linux.uidMappings: running as uid ${euid()} (not root), container uid 0 must map to host uid ${euid()}, not ${root.hostID}: the container's root opens exec.fifo and runs the init from the state root, which only uid ${euid()} may enter (map other container ids to /etc/subuid ranges)`,
      { code: 'EPERM' },
    );
  }
}

function parseMap(text: string): IdMapping[] {
  return text.split('\n').filter(Boolean).map((l) => {
    const [c, h, s] = l.trim().split(/\s+/).map(Number);
    return { containerID: c ?? 0, hostID: h ?? 0, size: s ?? 0 };
  });
}

/** newuidmap/newgidmap on PATH or in /usr/bin (package uidmap), else null. */
function findTool(name: string): string | null {
  const dirs = [...(process.env['PATH'] ?? '').split(':').filter((d) => path.isAbsolute(d)), '/usr/bin', '/usr/sbin'];
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

export type MapMethod = 'direct' | 'helper';

/**
 * How one map gets written. As root: directly. Rootless: directly only for
 * the one mapping the kernel allows an unprivileged writer (size 1, our own
 * id); else through the setuid helper, which checks /etc/sub[ug]id.
 */
export function mapMethod(text: string, ownId: number, rootless: boolean): MapMethod {
  if (!rootless) return 'direct';
  const maps = parseMap(text);
  const only = maps.length === 1 ? maps[0] : undefined;
  return only && only.size === 1 && only.hostID === ownId ? 'direct' : 'helper';
}

/** Writes /proc/PID/uid_map and gid_map of a process that has just entered a new user namespace. */
export function writeIdMaps(pid: number, uidMap: string, gidMap: string): void {
  const rootless = isRootless();
  writeOne(pid, 'uid', uidMap, mapMethod(uidMap, euid(), rootless));
  writeOne(pid, 'gid', gidMap, mapMethod(gidMap, egid(), rootless));
}

function writeOne(pid: number, kind: 'uid' | 'gid', text: string, method: MapMethod): void {
  const field = `linux.${kind}Mappings`;
  const file = `/proc/${pid}/${kind}_map`;
  const shown = text.trim().split('\n').join(', ');
  if (method === 'direct') {
    try {
      // An unprivileged gid_map needs setgroups denied first (else a process could drop a group to gain access).
      if (kind === 'gid' && isRootless()) fs.writeFileSync(`/proc/${pid}/setgroups`, 'deny');
      fs.writeFileSync(file, text);
    } catch (e) {
      throw new RuntimeError(`${field}: cannot write ${file} ("${shown}"): ${messageOf(e)}`, { cause: e });
    }
    return;
  }
  const tool = `new${kind}map`;
  const bin = findTool(tool);
  if (bin === null) {
    throw new RuntimeError(
      `${field}: "${shown}" maps more than your own ${kind} (${kind === 'uid' ? euid() : egid()}), which needs ${tool} (Debian package uidmap), not found on PATH`,
      { code: 'EPERM' },
    );
  }
  const args = [String(pid), ...parseMap(text).flatMap((m) => [String(m.containerID), String(m.hostID), String(m.size)])];
  const r = spawnSync(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error || r.status !== 0) {
    const why = r.error ? messageOf(r.error) : (r.stderr.trim() || `exit ${r.status}`);
    throw new RuntimeError(`${field}: ${tool} ${args.join(' ')} refused "${shown}" (are the ranges in /etc/sub${kind}?): ${why}`, { code: 'EPERM' });
  }
}
