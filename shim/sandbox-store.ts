// Pod sandboxes on disk: <root>/cri/sandboxes/<id>/sandbox.json is the truth
// (the server keeps no state of its own that a restart would lose), written
// atomically. The namespaces a pod's containers join are the pause process's.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeJsonAtomic } from '../engine/containers';
import { procStat } from '../runtime/state';
import type { NetworkConfigList } from '../engine/cni';
import type { PodSandboxConfig__Output } from './proto/generated/runtime/v1/PodSandboxConfig';
import type { CriPaths } from './options';

export type SandboxState = 'SANDBOX_READY' | 'SANDBOX_NOTREADY';

export interface SandboxRecord {
  id: string;
  config: PodSandboxConfig__Output;
  runtimeHandler: string;
  /** Nanoseconds since the epoch, as a decimal string (int64 in the API). */
  createdAt: string;
  state: SandboxState;
  /** The pod's network namespace file; null with hostNetwork. */
  netns: string | null;
  ip: string;
  additionalIps: string[];
  /** The network list ADD ran with, and its result: DEL needs both. */
  cni: { list: NetworkConfigList; result: Record<string, unknown> | null } | null;
  pausePid: number;
  pauseStartTime: string;
}

export function nowNanos(): string {
  return (BigInt(Date.now()) * 1000000n).toString();
}

export function isoToNanos(iso: string): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) || t <= 0 ? '0' : (BigInt(t) * 1000000n).toString();
}

export class SandboxStore {
  constructor(readonly paths: CriPaths) {}

  file(id: string): string {
    return path.join(this.paths.sandboxDir(id), 'sandbox.json');
  }

  ids(): string[] {
    try {
      return fs.readdirSync(this.paths.sandboxes).filter((d) => fs.existsSync(this.file(d)));
    } catch {
      return [];
    }
  }

  get(id: string): SandboxRecord | null {
    try {
      return JSON.parse(fs.readFileSync(this.file(id), 'utf8')) as SandboxRecord;
    } catch {
      return null;
    }
  }

  all(): SandboxRecord[] {
    return this.ids().map((id) => this.get(id)).filter((s): s is SandboxRecord => s !== null);
  }

  write(s: SandboxRecord): void {
    writeJsonAtomic(this.file(s.id), s);
  }

  /** A full id, or a unique prefix of one (crictl passes short ids). */
  resolve(ref: string): SandboxRecord | null {
    const exact = this.get(ref);
    if (exact || !/^[0-9a-f]+$/.test(ref)) return exact;
    const hits = this.ids().filter((id) => id.startsWith(ref));
    return hits.length === 1 ? this.get(hits[0]!) : null;
  }
}

/** Whether the pause process still runs (pid and start time match). */
export function pauseAlive(s: SandboxRecord): boolean {
  if (s.pausePid <= 0) return false;
  const st = procStat(s.pausePid);
  return st !== null && st.state !== 'Z' && st.startTime === s.pauseStartTime;
}

/** READY only while the pause process holds the namespaces. */
export function liveState(s: SandboxRecord): SandboxState {
  return s.state === 'SANDBOX_READY' && pauseAlive(s) ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY';
}

/** kubelet's sandbox name, unique per pod attempt. */
export function sandboxName(c: PodSandboxConfig__Output): string {
  const m = c.metadata;
  return `${m?.name ?? ''}_${m?.namespace ?? ''}_${m?.uid ?? ''}_${m?.attempt ?? 0}`;
}
